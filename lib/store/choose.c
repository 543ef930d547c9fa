/* choose.c: which vGPU on this host each device of a claim request gets.
 *
 * A pure decision over a snapshot: the inventory read from sysfs, and the set
 * of ids that are taken (owned by a live claim or an assignment, used by a
 * domain, or already chosen earlier in the same request).  Nothing is written
 * here; claims.c records and then carries out the plan.
 *
 * Per device, in order of preference:
 *   1. the source's own id, when an instance with that id exists here, is not
 *      taken, and has the same profile name (+ framebuffer);
 *   2. an existing instance of the same profile, not taken (lowest id first,
 *      so the choice is stable);
 *   3. a new instance on a parent offering the profile with room left, on a
 *      physical GPU that hosts no other type (NVIDIA's homogeneous rule).
 *      GPUs already hosting the profile come first, the fullest of them
 *      first (fill before spreading); else the emptiest GPU.  mdev instances
 *      get the source's UUID when nothing here uses it.
 * Matching is by profile name and framebuffer, never the numeric type id,
 * which differs between GPUs and driver versions.  The plan's own creations
 * count against room and the homogeneous rule, so N devices never share a
 * slot.
 *
 * Room on a parent is the least of: its available_instances, one vGPU per
 * SR-IOV VF, and what is left of NVIDIA's per-physical-GPU max_instance
 * (VFs of one GPU share it).  claim_capacity() counts with the very same
 * rules, so what GET /v1/types and `vgpumig check` report is what a claim
 * gets: both are one decision, made here.
 *
 * Cost: an index built once per call (parent of each instance, physical GPU
 * of each parent) keeps a decision near O(parents x instances), so a
 * 256-parent host answers in well under a millisecond. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "choose.h"
#include "util/validate.h"

/* Built once per decision: who sits where. */
typedef struct inv_index {
	size_t *gpu;          /* per parent: index of its physical GPU (first parent with that physfn) */
	size_t *inst_parent;  /* per instance: index of its parent, SIZE_MAX when unknown */
	unsigned *on_parent;  /* per parent: existing instances */
} inv_index;

typedef struct plan_state {
	const vgm_inventory *inv;
	const inv_index *ix;
	const char *const *taken;
	size_t n_taken;
	claim_choice *chosen;
	size_t n_chosen;
	unsigned *planned; /* creations planned per parent (index as inv->parents) */
} plan_state;

static bool fb_match(uint64_t want, uint64_t have)
{
	return want == 0 || have == 0 || want == have;
}

static bool profile_match(const vgm_claim_device_req *d, const char *name, uint64_t fb)
{
	return name && STREQ(name, d->profile_name) && fb_match(d->framebuffer_bytes, fb);
}

static bool is_taken(const plan_state *ps, const char *id)
{
	for (size_t i = 0; i < ps->n_taken; i++)
		if (ps->taken[i] && strcasecmp(ps->taken[i], id) == 0)
			return true;
	for (size_t i = 0; i < ps->n_chosen; i++)
		if (strcasecmp(ps->chosen[i].target_id, id) == 0)
			return true;
	return false;
}

static bool instance_fits(const plan_state *ps, const vgm_instance *in,
			  const vgm_claim_device_req *d)
{
	return in->kind == d->kind && profile_match(d, in->profile_name, in->framebuffer_bytes) &&
	       !is_taken(ps, in->id);
}

static const vgm_instance *pick_existing(const plan_state *ps, const vgm_claim_device_req *d)
{
	const vgm_inventory *inv = ps->inv;
	const vgm_instance *best = NULL;
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		if (strcasecmp(in->id, d->source_id) == 0 && instance_fits(ps, in, d))
			return in;
	}
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		if (instance_fits(ps, in, d) && (!best || strcmp(in->id, best->id) < 0))
			best = in;
	}
	return best;
}

static const char *physfn_of(const vgm_parent *p)
{
	return p->physfn ? p->physfn : p->address;
}

static size_t parent_index(const vgm_inventory *inv, const char *addr)
{
	for (size_t i = 0; addr && i < inv->n_parents; i++)
		if (strcasecmp(inv->parents[i].address, addr) == 0)
			return i;
	return SIZE_MAX;
}

static void index_clear(inv_index *ix)
{
	free(ix->gpu);
	free(ix->inst_parent);
	free(ix->on_parent);
}

static int index_build(const vgm_inventory *inv, inv_index *ix)
{
	ix->gpu = calloc(inv->n_parents + 1, sizeof(size_t));
	ix->on_parent = calloc(inv->n_parents + 1, sizeof(unsigned));
	ix->inst_parent = calloc(inv->n_instances + 1, sizeof(size_t));
	if (!ix->gpu || !ix->on_parent || !ix->inst_parent)
		return -ENOMEM;
	for (size_t i = 0; i < inv->n_parents; i++) {
		ix->gpu[i] = i;
		for (size_t j = 0; j < i; j++)
			if (ix->gpu[j] == j &&
			    STREQ(physfn_of(&inv->parents[j]), physfn_of(&inv->parents[i]))) {
				ix->gpu[i] = j;
				break;
			}
	}
	for (size_t k = 0; k < inv->n_instances; k++) {
		ix->inst_parent[k] = parent_index(inv, inv->instances[k].parent);
		if (ix->inst_parent[k] != SIZE_MAX)
			ix->on_parent[ix->inst_parent[k]]++;
	}
	return 0;
}

/* Types on physical GPU gpu (a parent index from ix->gpu), existing and
 * planned: other_type when any differs from type_id; *same counts those of
 * type_id. */
static void gpu_types(const plan_state *ps, size_t gpu, const char *type_id, bool *other_type,
		      unsigned *same)
{
	const vgm_inventory *inv = ps->inv;
	*other_type = false;
	*same = 0;
	for (size_t i = 0; i < inv->n_instances; i++) {
		size_t p = ps->ix->inst_parent[i];
		if (p == SIZE_MAX || ps->ix->gpu[p] != gpu)
			continue;
		if (STREQ(inv->instances[i].type_id, type_id))
			(*same)++;
		else
			*other_type = true;
	}
	for (size_t i = 0; i < ps->n_chosen; i++) {
		const claim_choice *c = &ps->chosen[i];
		size_t p = c->create ? parent_index(inv, c->parent) : SIZE_MAX;
		if (p == SIZE_MAX || ps->ix->gpu[p] != gpu)
			continue;
		if (STREQ(c->type_id, type_id))
			(*same)++;
		else
			*other_type = true;
	}
}

static const vgm_profile *parent_profile(const vgm_parent *p, const vgm_claim_device_req *d)
{
	if (p->backend != d->kind)
		return NULL;
	for (size_t j = 0; j < p->n_profiles; j++)
		if (profile_match(d, p->profiles[j].name, p->profiles[j].framebuffer_bytes))
			return &p->profiles[j];
	return NULL;
}

/* Room left on parent i for profile prof, counting the plan, by the parent's
 * own numbers: its available_instances, and one vGPU per SR-IOV VF (an
 * Ampere VF hosting an mdev, or a VF of NVIDIA's vendor interface), which
 * holds even when a cached count lags behind. */
static unsigned parent_room(const plan_state *ps, size_t i, const vgm_profile *prof)
{
	const vgm_parent *p = &ps->inv->parents[i];
	if (p->backend == VGM_BACKEND_VF && p->current_type_id)
		return 0;
	bool is_vf = p->backend == VGM_BACKEND_VF || !STREQ(physfn_of(p), p->address);
	unsigned planned = ps->planned ? ps->planned[i] : 0;
	if (is_vf)
		return ps->ix->on_parent[i] + planned == 0 && prof->available > 0;
	return prof->available > planned ? prof->available - planned : 0;
}

/* Room on the physical GPU of parent i for prof: NVIDIA's max_instance
 * (from an mdev type's description) is per physical GPU, so VFs of one GPU
 * share it; same = instances of the type on the GPU, existing and planned.
 * UINT_MAX when the driver publishes no per-GPU limit (vendor VF interface:
 * each VF's creatable list already says what fits). */
static unsigned gpu_room(const vgm_parent *p, const vgm_profile *prof, unsigned same)
{
	if (p->backend != VGM_BACKEND_MDEV || prof->max_instances == 0)
		return UINT_MAX;
	return prof->max_instances > same ? prof->max_instances - same : 0;
}

typedef struct parent_pick {
	size_t index;
	const vgm_profile *prof;
	unsigned same;  /* instances of this type on its GPU */
	unsigned room;
} parent_pick;

/* Better: hosts the profile already (fullest first), else the emptiest. */
static bool pick_better(const parent_pick *a, const parent_pick *b)
{
	if ((a->same > 0) != (b->same > 0))
		return a->same > 0;
	if (a->same > 0)
		return a->room < b->room || (a->room == b->room && a->same > b->same);
	return a->room > b->room;
}

/* Everything that limits a creation of d's profile on parent i. */
static bool parent_candidate(const plan_state *ps, size_t i, const vgm_claim_device_req *d,
			     parent_pick *out)
{
	const vgm_parent *p = &ps->inv->parents[i];
	const vgm_profile *prof = parent_profile(p, d);
	if (!prof)
		return false;
	bool other = false;
	*out = (parent_pick){.index = i, .prof = prof};
	gpu_types(ps, ps->ix->gpu[i], prof->type_id, &other, &out->same);
	unsigned room = parent_room(ps, i, prof), cap = gpu_room(p, prof, out->same);
	out->room = other ? 0 : room < cap ? room : cap;
	return out->room > 0;
}

static bool pick_parent(const plan_state *ps, const vgm_claim_device_req *d, parent_pick *out)
{
	bool found = false;
	for (size_t i = 0; i < ps->inv->n_parents; i++) {
		parent_pick c;
		if (!parent_candidate(ps, i, d, &c))
			continue;
		if (!found || pick_better(&c, out)) {
			*out = c;
			found = true;
		}
	}
	return found;
}

static bool profile_known(const vgm_inventory *inv, const vgm_claim_device_req *d)
{
	for (size_t i = 0; i < inv->n_parents; i++)
		if (parent_profile(&inv->parents[i], d))
			return true;
	return false;
}

static bool has_instance(const vgm_inventory *inv, const char *id)
{
	for (size_t i = 0; i < inv->n_instances; i++)
		if (strcasecmp(inv->instances[i].id, id) == 0)
			return true;
	return false;
}

static int new_mdev_id(const plan_state *ps, const vgm_claim_device_req *d, char **out)
{
	char uuid[VGM_UUID_LEN + 1];
	bool source_free = vgm_uuid_valid(d->source_id) && !is_taken(ps, d->source_id) &&
			   !has_instance(ps->inv, d->source_id);
	if (source_free)
		vgm_id_normalize(d->source_id, uuid, sizeof(uuid));
	else if (vgm_uuid_generate(uuid) < 0)
		return -EIO;
	*out = strdup(uuid);
	return *out ? 0 : -ENOMEM;
}

static int plan_create(plan_state *ps, const vgm_claim_device_req *d, const parent_pick *pp,
		       claim_choice *c)
{
	const vgm_parent *p = &ps->inv->parents[pp->index];
	c->create = true;
	c->parent = strdup(p->address);
	c->type_id = strdup(pp->prof->type_id);
	c->framebuffer_bytes = pp->prof->framebuffer_bytes;
	if (!c->parent || !c->type_id)
		return -ENOMEM;
	if (d->kind == VGM_BACKEND_VF)
		c->target_id = strdup(p->address);
	else if (new_mdev_id(ps, d, &c->target_id) < 0)
		return -ENOMEM;
	if (!c->target_id)
		return -ENOMEM;
	ps->planned[pp->index]++;
	return 0;
}

static int plan_existing(const vgm_instance *in, claim_choice *c)
{
	c->target_id = strdup(in->id);
	c->type_id = strdup(in->type_id);
	c->parent = strdup(in->parent);
	c->framebuffer_bytes = in->framebuffer_bytes;
	return c->target_id && c->type_id && c->parent ? 0 : -ENOMEM;
}

/* Does parent i offer d's profile on a GPU that hosts another type? */
static bool parent_blocked(const plan_state *ps, size_t i, const vgm_claim_device_req *d)
{
	const vgm_profile *prof = parent_profile(&ps->inv->parents[i], d);
	bool other = false;
	unsigned same = 0;
	if (prof)
		gpu_types(ps, ps->ix->gpu[i], prof->type_id, &other, &same);
	return prof && other;
}

/* Physical GPUs that offer the profile but host another type. */
static unsigned gpus_blocked(const plan_state *ps, const vgm_claim_device_req *d)
{
	unsigned n = 0;
	for (size_t i = 0; i < ps->inv->n_parents; i++) {
		if (!parent_blocked(ps, i, d))
			continue;
		bool seen = false;
		for (size_t j = ps->ix->gpu[i]; j < i && !seen; j++)
			seen = ps->ix->gpu[j] == ps->ix->gpu[i] && parent_blocked(ps, j, d);
		n += !seen;
	}
	return n;
}

/* What a claim of d's profile alone could still get from ps's snapshot
 * (counting the plan so far): free instances and creatable ones, the latter
 * per physical GPU as the smaller of its parents' room and the GPU's cap. */
static void profile_capacity(const plan_state *ps, const vgm_claim_device_req *d,
			     unsigned *free_existing, unsigned *held, unsigned *creatable)
{
	const vgm_inventory *inv = ps->inv;
	plan_state bare = {.inv = inv, .ix = ps->ix, .taken = ps->taken, .n_taken = ps->n_taken};
	*free_existing = *held = *creatable = 0;
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		if (in->kind != d->kind || !profile_match(d, in->profile_name, in->framebuffer_bytes))
			continue;
		if (is_taken(&bare, in->id))
			(*held)++;
		else
			(*free_existing)++;
	}
	/* Parents of one GPU: room summed, then capped by the GPU's max_instance
	 * (the same for all of them: one type, one GPU). */
	for (size_t g = 0; g < inv->n_parents; g++) {
		if (ps->ix->gpu[g] != g)
			continue;
		unsigned sum = 0, cap = UINT_MAX;
		for (size_t j = g; j < inv->n_parents; j++) {
			parent_pick c;
			if (ps->ix->gpu[j] != g || !parent_candidate(ps, j, d, &c))
				continue;
			unsigned room = parent_room(ps, j, c.prof), gc = gpu_room(&inv->parents[j], c.prof, c.same);
			sum += room;
			cap = gc < cap ? gc : cap;
		}
		*creatable += sum < cap ? sum : cap;
	}
}

/* Words for a refusal: what this host has left of the profile, counting the
 * devices chosen earlier in the same request. */
static int no_capacity(const plan_state *ps, const vgm_claim_device_req *d,
		       const vgm_claim_request *req, const char *host, vgm_error *err)
{
	plan_state bare = {.inv = ps->inv, .ix = ps->ix, .taken = ps->taken, .n_taken = ps->n_taken};
	unsigned need = 0, avail = 0, held = 0, creatable = 0;
	for (size_t i = 0; i < req->n_devices; i++)
		need += profile_match(d, req->devices[i].profile_name,
				      req->devices[i].framebuffer_bytes);
	/* several of one profile: what the host has for them; one: what is left
	 * beside the request's other devices */
	profile_capacity(need > 1 ? &bare : ps, d, &avail, &held, &creatable);
	avail += creatable;
	char why[200] = "";
	unsigned blocked = gpus_blocked(ps, d);
	if (blocked)
		snprintf(why, sizeof(why),
			 "; %u GPU(s) offering it host another vGPU type%s, and NVIDIA allows one "
			 "type per GPU", blocked,
			 blocked > gpus_blocked(&bare, d) ? " (counting this request's other devices)"
							  : "");
	if (need > 1)
		return vgm_error_setr(err, ENOSPC, "no_capacity",
				      "not enough free vGPUs of profile '%s' on %s: this migration "
				      "needs %u (%u of %u available; %u assigned%s)",
				      d->profile_name, host, need, avail, avail + held, held, why);
	return vgm_error_setr(err, ENOSPC, "no_capacity",
			      "no free vGPU of profile '%s' on %s (%u of %u available; %u assigned%s)",
			      d->profile_name, host, avail, avail + held, held, why);
}

static int choose_one(plan_state *ps, const vgm_claim_request *req, size_t k, const char *host,
		      vgm_error *err)
{
	const vgm_claim_device_req *d = &req->devices[k];
	claim_choice *c = &ps->chosen[k];
	if (!profile_known(ps->inv, d))
		return vgm_error_setr(err, ENODEV, "unknown_profile",
				      "%s offers no %s vGPU profile '%s'%s; the target needs the "
				      "same profile as the source (see 'vgpumig types' there)",
				      host, vgm_backend_to_string(d->kind), d->profile_name,
				      d->framebuffer_bytes ? " with that framebuffer" : "");
	const vgm_instance *in = pick_existing(ps, d);
	parent_pick pp = {0};
	int r;
	if (in)
		r = plan_existing(in, c);
	else if (pick_parent(ps, d, &pp))
		r = plan_create(ps, d, &pp, c);
	else
		return no_capacity(ps, d, req, host, err);
	if (r < 0)
		return vgm_error_set(err, -r, "out of memory choosing a vGPU");
	ps->n_chosen = k + 1;
	return 0;
}

int claim_choose(const vgm_inventory *inv, const char *const *taken, size_t n_taken,
		 const vgm_claim_request *req, const char *host, claim_choice *out,
		 vgm_error *err)
{
	_cleanup_free_ unsigned *planned = calloc(inv->n_parents + 1, sizeof(unsigned));
	_cleanup_(index_clear) inv_index ix = {0};
	if (!planned || index_build(inv, &ix) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	plan_state ps = {.inv = inv, .ix = &ix, .taken = taken, .n_taken = n_taken, .chosen = out,
			 .planned = planned};
	for (size_t k = 0; k < req->n_devices; k++) {
		int r = choose_one(&ps, req, k, host, err);
		if (r < 0) {
			claim_choices_clear(out, req->n_devices);
			return r;
		}
	}
	return 0;
}

/* Has out[0..n) an entry for this profile (kind, name, framebuffer)? */
static bool capacity_listed(const claim_capacity *out, size_t n, vgm_backend kind,
			    const vgm_profile *prof)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].kind == kind && STREQ(out[i].profile_name, prof->name) &&
		    out[i].framebuffer_bytes == prof->framebuffer_bytes)
			return true;
	return false;
}

int claim_capacity_list(const vgm_inventory *inv, const char *const *taken, size_t n_taken,
			claim_capacity **out, size_t *n)
{
	_cleanup_(index_clear) inv_index ix = {0};
	*out = NULL;
	*n = 0;
	if (index_build(inv, &ix) < 0)
		return -ENOMEM;
	plan_state ps = {.inv = inv, .ix = &ix, .taken = taken, .n_taken = n_taken};
	for (size_t i = 0; i < inv->n_parents; i++)
		for (size_t j = 0; j < inv->parents[i].n_profiles; j++) {
			const vgm_profile *prof = &inv->parents[i].profiles[j];
			vgm_backend kind = inv->parents[i].backend;
			if (!prof->name || capacity_listed(*out, *n, kind, prof))
				continue;
			claim_capacity *c = realloc(*out, (*n + 1) * sizeof(**out));
			if (!c)
				return -ENOMEM; /* the caller frees *out */
			*out = c;
			c = &c[(*n)++];
			*c = (claim_capacity){.kind = kind, .profile_name = prof->name,
					      .framebuffer_bytes = prof->framebuffer_bytes};
			vgm_claim_device_req d = {.kind = kind, .profile_name = prof->name,
						  .framebuffer_bytes = prof->framebuffer_bytes};
			profile_capacity(&ps, &d, &c->free_existing, &c->held, &c->creatable);
		}
	return 0;
}

void claim_choices_clear(claim_choice *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].target_id);
		free(c[i].parent);
		free(c[i].type_id);
		memset(&c[i], 0, sizeof(c[i]));
	}
}
