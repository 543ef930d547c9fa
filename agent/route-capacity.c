/* route-capacity.c: GET /v1/capacity (peer API), what an evacuation may
 * place on this host, per physical GPU (lib/place's input): the profiles
 * each parent offers with their per-parent instance cap, the profile it
 * hosts now (any instance on it fixes the type: NVIDIA parents are
 * homogeneous) and how many of its instances are taken (held or committed
 * by a claim, assigned, or used by a domain libvirt reports).  Instances
 * nobody owns are not counted as taken: a claim reuses them.
 *
 * Also the client side: agent_capacity_fetch asks a peer for it. */
#include <errno.h>
#include <string.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "place/place.h"
#include "routes.h"

typedef struct owned {
	char **ids;
	size_t n;
} owned;

static bool owned_has(const owned *o, const char *id)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcasecmp(o->ids[i], id) == 0)
			return true;
	return false;
}

static int owned_add(owned *o, const char *id)
{
	char **g = realloc(o->ids, (o->n + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	o->ids = g;
	if (!(g[o->n] = strdup(id)))
		return -ENOMEM;
	o->n++;
	return 0;
}

/* Every device a claim, an assignment or a running domain holds. */
static int owned_load(agent *a, owned *o, vgm_error *err)
{
	vgm_claim *c = NULL;
	vgm_assignment *asg = NULL;
	size_t nc = 0, na = 0;
	int r = vgm_claims_list(a->store, false, &c, &nc, err);
	if (r >= 0)
		r = vgm_assignments_list(a->store, &asg, &na, err);
	for (size_t i = 0; r >= 0 && i < nc; i++)
		for (size_t k = 0; r >= 0 && k < c[i].n_devices; k++)
			r = owned_add(o, c[i].devices[k].target_id);
	for (size_t i = 0; r >= 0 && i < na; i++)
		r = owned_add(o, asg[i].device_id);
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; r >= 0 && i < a->n_in_use; i++)
		r = owned_add(o, a->in_use[i].device_id);
	pthread_mutex_unlock(&a->lock);
	vgm_claims_free(c, nc);
	vgm_assignments_free(asg, na);
	return r == -ENOMEM ? vgm_error_set(err, ENOMEM, "out of memory") : r;
}

static bool on_gpu(const vgm_inventory *inv, const char *physfn, const char *parent)
{
	const vgm_parent *p = vgm_inventory_find_parent(inv, parent);
	return p && STRPTR_EQ(p->physfn, physfn);
}

/* One physical GPU (all parents sharing a physfn: the GPU itself, or its
 * SR-IOV VFs on Ampere and later) as lib/place sees it; strings point into
 * the inventory.  A profile's cap is the driver's max_instance, never more
 * than the GPU has parents when each parent holds one vGPU (VFs); unknown:
 * what is available now plus what exists, and then every existing instance
 * counts as taken. */
static int gpu_of(const vgm_inventory *inv, const vgm_parent *first, const owned *o,
		  vgm_place_gpu *g, vgm_place_slot **slots)
{
	unsigned existing = 0, taken = 0, parents = 0;
	const char *current = NULL;
	for (size_t i = 0; i < inv->n_parents; i++)
		parents += STRPTR_EQ(inv->parents[i].physfn, first->physfn);
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		if (!in->parent || !on_gpu(inv, first->physfn, in->parent))
			continue;
		existing++;
		taken += owned_has(o, in->id);
		if (!current)
			current = in->profile_name;
	}
	if (!(*slots = calloc(first->n_profiles + 1, sizeof(**slots))))
		return -ENOMEM;
	bool cap_known = true, per_parent_one = parents > 1;
	for (size_t k = 0; k < first->n_profiles; k++) {
		const vgm_profile *pr = &first->profiles[k];
		unsigned avail = 0;
		for (size_t i = 0; i < inv->n_parents; i++)
			if (STRPTR_EQ(inv->parents[i].physfn, first->physfn) && k < inv->parents[i].n_profiles)
				avail += inv->parents[i].profiles[k].available;
		unsigned cap = pr->max_instances ? pr->max_instances : avail + existing;
		if (per_parent_one)
			cap = MIN(cap, parents);
		(*slots)[k] = (vgm_place_slot){ pr->name, cap };
		if (current && pr->name && STREQ(pr->name, current))
			cap_known = pr->max_instances > 0;
	}
	*g = (vgm_place_gpu){ first->physfn, *slots, first->n_profiles, current,
			      cap_known ? taken : existing };
	return 0;
}

int route_capacity(agent_request *req)
{
	vgm_error err = { 0 };
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	_cleanup_free_ char *host = agent_host_name(req->a);
	owned o = { 0 };
	int r = vgm_inventory_load(req->a->host, &inv, &err);
	if (r >= 0)
		r = owned_load(req->a, &o, &err);
	vgm_place_gpu *gpus = r >= 0 ? calloc(inv->n_parents + 1, sizeof(*gpus)) : NULL;
	vgm_place_slot **slots = r >= 0 ? calloc(inv->n_parents + 1, sizeof(*slots)) : NULL;
	size_t n = 0;
	if (r >= 0 && (!gpus || !slots || !host))
		r = vgm_error_set(&err, ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < inv->n_parents; i++) {
		const vgm_parent *p = &inv->parents[i];
		bool seen = false; /* one entry per physical GPU: its first parent */
		for (size_t k = 0; k < i && !seen; k++)
			seen = STRPTR_EQ(inv->parents[k].physfn, p->physfn);
		if (seen)
			continue;
		if (gpu_of(inv, p, &o, &gpus[n], &slots[n]) < 0)
			r = vgm_error_set(&err, ENOMEM, "out of memory");
		n++;
	}
	json_t *body = NULL;
	if (r >= 0) {
		vgm_place_target t = { host, VGM_LIMIT_UNSET, gpus, n };
		body = vgm_wire_capacity_encode(&t);
	}
	for (size_t i = 0; slots && i < n; i++)
		free(slots[i]);
	free(slots);
	free(gpus);
	vgm_strv_free(o.ids, o.n);
	if (r < 0)
		return agent_reply_error(req, &err);
	return body ? agent_reply_json(req, 200, body)
		    : agent_reply_errorf(req, 500, "internal", "out of memory");
}

int agent_capacity_fetch(vgm_client *peer, const char *name, vgm_place_target *out, vgm_error *err)
{
	json_t *reply = NULL;
	int r = vgm_client_json(peer, "GET", "/v1/capacity", NULL, NULL, &reply, err);
	if (r >= 0)
		r = vgm_wire_capacity_from_json(reply, out, err);
	json_decref(reply);
	if (r < 0)
		vgm_error_prefix(err, "asking %s for its vGPU capacity", name);
	return r;
}
