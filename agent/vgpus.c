/* vgpus.c: see vgpus.h.  Pure functions of an inspected domain and an
 * inventory: no I/O, so both the hook route and the libvirt pass use them. */
#include "vgpus.h"

#include <errno.h>
#include <string.h>

void agent_vgpus_free(agent_vgpu *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].id);
		free(v[i].kind);
		free(v[i].profile_name);
		free(v[i].type_id);
	}
	free(v);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int push(agent_vgpu **arr, size_t *n, const char *id, const char *kind, const char *profile,
		const char *type_id, uint64_t fb, bool lab)
{
	agent_vgpu *p;

	for (size_t i = 0; i < *n; i++)
		if (STREQ((*arr)[i].id, id))
			return 0; /* a lab entry and a hostdev for one id: count once */
	p = realloc(*arr, (*n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*arr = p;
	p = &p[(*n)++];
	*p = (agent_vgpu){ strdup(id), strdup(kind), dup_or_null(profile), dup_or_null(type_id), fb, lab };
	return p->id && p->kind ? 0 : -ENOMEM;
}

static const vgm_meta_vgpu *meta_find(const vgm_domain_info *d, const char *id)
{
	for (size_t i = 0; i < d->n_meta; i++)
		if (d->meta[i].id && strcasecmp(d->meta[i].id, id) == 0)
			return &d->meta[i];
	return NULL;
}

static int push_instance(agent_vgpu **out, size_t *n, const vgm_instance *in, bool lab)
{
	return push(out, n, in->id, vgm_backend_to_string(in->kind), in->profile_name, in->type_id,
		    in->framebuffer_bytes, lab);
}

int agent_vgpus_local(const vgm_domain_info *d, const vgm_inventory *inv, bool lab_mode,
		      agent_vgpu **out, size_t *n)
{
	int r = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; r >= 0 && i < d->n_hostdevs; i++) {
		const vgm_hostdev *h = &d->hostdevs[i];
		const vgm_instance *in = h->id ? vgm_inventory_find_instance(inv, h->id) : NULL;

		if (in)
			r = push_instance(out, n, in, false);
	}
	for (size_t i = 0; lab_mode && r >= 0 && i < d->n_meta; i++) {
		const vgm_instance *in = d->meta[i].lab && d->meta[i].id ?
						 vgm_inventory_find_instance(inv, d->meta[i].id) : NULL;

		if (in)
			r = push_instance(out, n, in, true);
	}
	if (r < 0) {
		agent_vgpus_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

int agent_vgpus_incoming(const vgm_domain_info *d, const vgm_host *host, bool lab_mode,
			 agent_vgpu **out, size_t *n)
{
	int r = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; r >= 0 && i < d->n_hostdevs; i++) {
		const vgm_hostdev *h = &d->hostdevs[i];
		const vgm_meta_vgpu *m = h->id ? meta_find(d, h->id) : NULL;
		bool mdev_gpu = h->type == VGM_HOSTDEV_MDEV && h->id &&
				(!h->model || STREQ(h->model, "vfio-pci"));

		bool vf = h->type == VGM_HOSTDEV_PCI && h->id &&
			  (m || (host && vgm_pci_is_nvidia(host, h->id)));

		if (mdev_gpu || vf)
			r = push(out, n, h->id, mdev_gpu ? "mdev" : "vf", m ? m->profile_name : NULL,
				 m ? m->type_id : NULL, m ? m->framebuffer_bytes : 0, false);
	}
	for (size_t i = 0; lab_mode && r >= 0 && i < d->n_meta; i++) {
		const vgm_meta_vgpu *m = &d->meta[i];

		if (m->lab && m->id && m->kind)
			r = push(out, n, m->id, m->kind, m->profile_name, m->type_id,
				 m->framebuffer_bytes, true);
	}
	if (r < 0) {
		agent_vgpus_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

bool agent_vgpus_match_meta(const vgm_domain_info *d, const agent_vgpu *v, size_t n)
{
	if (d->n_meta != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const vgm_meta_vgpu *m = meta_find(d, v[i].id);

		if (!m || !STRPTR_EQ(m->profile_name, v[i].profile_name) ||
		    !STRPTR_EQ(m->type_id, v[i].type_id) || m->framebuffer_bytes != v[i].framebuffer_bytes ||
		    m->lab != v[i].lab)
			return false;
	}
	return true;
}
