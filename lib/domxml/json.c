/* json.c: the JSON form of vgm_domain_info, shared by `vgpumig xml inspect
 * --json`, the agent and the golden tests so there is one spelling of it.
 * Every key is always present; a value the domain does not give is null
 * (see docs/cli-xml.md). */
#include "domxml.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *hostdev_json(const vgm_hostdev *h)
{
	if (h->type == VGM_HOSTDEV_MDEV)
		return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "type", "mdev", "uuid",
				 str_or_null(h->id), "model", str_or_null(h->model), "display",
				 str_or_null(h->display), "ramfb", str_or_null(h->ramfb), "alias",
				 str_or_null(h->alias), "guest_address",
				 str_or_null(h->guest_address));
	return json_pack("{s:s, s:o, s:b, s:o, s:o}", "type", "pci", "address",
			 str_or_null(h->id), "managed", h->managed, "alias", str_or_null(h->alias),
			 "guest_address", str_or_null(h->guest_address));
}

static json_t *meta_json(const vgm_meta_vgpu *m)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:I, s:b}", "id", m->id, "kind", m->kind,
			 "profile", str_or_null(m->profile_name), "type", str_or_null(m->type_id),
			 "framebuffer_bytes", (json_int_t)m->framebuffer_bytes, "lab", m->lab);
}

static int append_all(json_t *arr, json_t *(*fn)(const void *), const void *base, size_t size,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, fn((const char *)base + i * size)) < 0)
			return -ENOMEM;
	return 0;
}

static json_t *hostdev_json_v(const void *p) { return hostdev_json(p); }
static json_t *meta_json_v(const void *p) { return meta_json(p); }
static json_t *problem_json_v(const void *p) { return json_string(*(char *const *)p); }

json_t *vgm_domain_info_to_json(const vgm_domain_info *d)
{
	json_t *hostdevs = json_array(), *meta = json_array(), *problems = json_array();
	json_t *o = json_pack("{s:o, s:o, s:I, s:I, s:b, s:o, s:o, s:o}", "name",
			      str_or_null(d->name), "uuid", str_or_null(d->uuid), "memory_bytes",
			      (json_int_t)d->memory_bytes, "vcpus", (json_int_t)d->vcpus, "viommu",
			      d->viommu, "hostdevs", hostdevs, "vgpus_metadata", meta, "problems",
			      problems);
	if (!o)
		return NULL;
	if (append_all(hostdevs, hostdev_json_v, d->hostdevs, sizeof(*d->hostdevs),
		       d->n_hostdevs) < 0 ||
	    append_all(meta, meta_json_v, d->meta, sizeof(*d->meta), d->n_meta) < 0 ||
	    append_all(problems, problem_json_v, d->problems, sizeof(*d->problems),
			d->n_problems) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}
