/* invcache.c: the claims engine's view of sysfs, kept current between calls.
 *
 * A full read of a 256-parent host is tens of thousands of sysfs reads (every
 * attribute of every type of every parent): seconds on a busy host or the
 * FUSE emulator.  No request may wait for one, so after the first read the
 * store keeps the inventory and keeps it current three ways:
 *   - its own creations and removals are patched in (note_create/remove);
 *   - when the copy is older than inventory_ttl_ms, or a decision needs a
 *     view checked against sysfs (a refusal, reconcile), the INSTANCES are
 *     read again (one directory of the mdev bus, one attribute per VF: cheap)
 *     and every parent whose instances changed behind our back is read again
 *     on its own (per-parent read);
 *   - a slow safety net (vgm_store_inventory_refresh, from the agent's
 *     housekeeping) re-reads a few parents per tick, outside the lock, and
 *     swaps them in, so what changes without an instance changing (a driver
 *     update's counts) is seen within one pass over the host.
 * Without the cheap reads (a device double that has only inventory_load) a
 * refresh is a full read, as before.
 *
 * Invariants: the cache is touched only under s->lock; inv_gen changes with
 * every change to it, so a parent read outside the lock is swapped in only
 * when nothing moved meanwhile.  After a device write whose outcome is
 * unknown the cache is dropped, so the next decision reads sysfs.  The patch
 * keeps what choose.c relies on: instances (with profile name and
 * framebuffer), each profile's available count on its parent, a VF's
 * current type; per-GPU caps and the homogeneous rule are derived from the
 * instances, and when a GPU's last vGPU goes every type is offered on it
 * again (gpu_emptied).  On NVIDIA's VF interface a VF's creatable list
 * depends on its siblings, so a write there marks the GPU's other VFs for a
 * re-read. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-internal.h"

static bool cheap_reads(const vgm_store *s)
{
	return s->devops.instances_load && s->devops.parent_load;
}

static void dirty_clear(vgm_store *s)
{
	store_strv_free(s->inv_dirty, s->n_inv_dirty);
	s->inv_dirty = NULL;
	s->n_inv_dirty = 0;
}

void store_inventory_drop(vgm_store *s)
{
	if (s->inv)
		s->devops.inventory_free(s->devops.ctx, s->inv);
	s->inv = NULL;
	s->inv_host = NULL;
	s->inv_gen++;
	dirty_clear(s);
}

void store_inventory_suspect(vgm_store *s)
{
	s->inv_loaded_ms = INT64_MIN / 2; /* the next decision refreshes */
	s->inv_gen++;
}

static vgm_parent *find_parent(vgm_inventory *inv, const char *address)
{
	for (size_t i = 0; inv && address && i < inv->n_parents; i++)
		if (strcasecmp(inv->parents[i].address, address) == 0)
			return &inv->parents[i];
	return NULL;
}

static vgm_profile *find_profile(vgm_parent *p, const char *type_id)
{
	for (size_t i = 0; p && i < p->n_profiles; i++)
		if (STREQ(p->profiles[i].type_id, type_id))
			return &p->profiles[i];
	return NULL;
}

/* ---- parents to read again ---- */

static int dirty_add(vgm_store *s, const char *address)
{
	for (size_t i = 0; i < s->n_inv_dirty; i++)
		if (strcasecmp(s->inv_dirty[i], address) == 0)
			return 0;
	char **g = realloc(s->inv_dirty, (s->n_inv_dirty + 1) * sizeof(char *));
	if (!g)
		return -ENOMEM;
	s->inv_dirty = g;
	if (!(g[s->n_inv_dirty] = strdup(address)))
		return -ENOMEM;
	s->n_inv_dirty++;
	return 0;
}

/* The parent, and on the VF interface every VF of its physical GPU.  Only
 * with per-parent reads (else the next full read settles everything). */
static int dirty_add_gpu(vgm_store *s, const char *address)
{
	if (!cheap_reads(s))
		return 0;
	const vgm_parent *p = find_parent(s->inv, address);
	int r = dirty_add(s, address);
	for (size_t i = 0; r == 0 && p && p->backend == VGM_BACKEND_VF && i < s->inv->n_parents; i++) {
		const vgm_parent *q = &s->inv->parents[i];
		if (q->physfn && p->physfn && STREQ(q->physfn, p->physfn))
			r = dirty_add(s, q->address);
	}
	return r;
}

static int cmp_parent(const void *a, const void *b)
{
	return strcmp(((const vgm_parent *)a)->address, ((const vgm_parent *)b)->address);
}

/* Put a freshly read parent (taken over) in place of the cached one; NULL
 * fresh: the parent is gone. */
static int parent_swap_in(vgm_inventory *inv, const char *address, vgm_parent *fresh)
{
	vgm_parent *old = find_parent(inv, address);
	if (old) {
		vgm_parent_clear(old);
		if (fresh) {
			*old = *fresh;
			return 0;
		}
		memmove(old, old + 1, (size_t)(inv->parents + inv->n_parents - old - 1) * sizeof(*old));
		inv->n_parents--;
		return 0;
	}
	if (!fresh)
		return 0;
	vgm_parent *g = realloc(inv->parents, (inv->n_parents + 1) * sizeof(*g));
	if (!g) {
		vgm_parent_clear(fresh);
		return -ENOMEM;
	}
	inv->parents = g;
	g[inv->n_parents++] = *fresh;
	qsort(inv->parents, inv->n_parents, sizeof(*g), cmp_parent);
	return 0;
}

/* Profile name and framebuffer of instances from their (re-read) parents. */
static int instances_resolve(vgm_inventory *inv)
{
	for (size_t i = 0; i < inv->n_instances; i++) {
		vgm_instance *in = &inv->instances[i];
		vgm_profile *t = find_profile(find_parent(inv, in->parent), in->type_id);
		if (!t || !t->name || (in->profile_name && STREQ(in->profile_name, t->name)))
			continue;
		free(in->profile_name);
		if (!(in->profile_name = strdup(t->name)))
			return -ENOMEM;
		in->framebuffer_bytes = t->framebuffer_bytes;
	}
	return 0;
}

static int reload_dirty(vgm_store *s, vgm_host *h, vgm_error *err)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < s->n_inv_dirty; i++) {
		vgm_parent fresh = {0};
		vgm_error perr = {0};
		int k = s->devops.parent_load(s->devops.ctx, h, s->inv_dirty[i], &fresh, &perr);
		if (k < 0 && k != -ENOENT) {
			vgm_error_set(err, -k, "%s", vgm_error_message(&perr));
			r = k;
		} else
			r = parent_swap_in(s->inv, s->inv_dirty[i], k == 0 ? &fresh : NULL);
	}
	if (r == 0)
		r = instances_resolve(s->inv);
	dirty_clear(s);
	s->inv_gen++;
	return r;
}

/* ---- a GPU whose last vGPU went ---- */

static const char *gpu_of(const vgm_parent *p)
{
	return p->physfn ? p->physfn : p->address;
}

static bool gpu_has_instances(vgm_inventory *inv, const char *gpu)
{
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_parent *p = find_parent(inv, inv->instances[i].parent);
		if (p && STREQ(gpu_of(p), gpu))
			return true;
	}
	return false;
}

/* NVIDIA's homogeneous rule lifts when a GPU's last vGPU goes: every type is
 * offered again on all its parents, which no instance shows.  Set the counts
 * an empty GPU has (a VF holding an mdev: 1; a GPU: max_instance), or read
 * the parent again where a count is unknown (the vendor VF interface, whose
 * creatable lists change). */
static int gpu_emptied(vgm_store *s, const char *gpu_name)
{
	_cleanup_free_ char *gpu = strdup(gpu_name);
	int r = gpu ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < s->inv->n_parents; i++) {
		vgm_parent *q = &s->inv->parents[i];
		if (!STREQ(gpu_of(q), gpu))
			continue;
		bool vf = !STREQ(gpu_of(q), q->address), unknown = q->backend == VGM_BACKEND_VF;
		for (size_t j = 0; !unknown && j < q->n_profiles; j++) {
			vgm_profile *t = &q->profiles[j];
			unknown = !vf && t->max_instances == 0;
			t->available = vf ? 1 : t->max_instances;
		}
		if (unknown && cheap_reads(s))
			r = dirty_add(s, q->address);
	}
	s->inv_gen++;
	return r;
}

/* ---- refresh: instances read again, changed parents re-read ---- */

static const vgm_instance *find_instance(const vgm_instance *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i].id, id) == 0)
			return &v[i];
	return NULL;
}

static bool same_place(const vgm_instance *a, const vgm_instance *b)
{
	return b && strcasecmp(a->parent, b->parent) == 0 && STREQ(a->type_id, b->type_id);
}

/* Mark the parents whose instances differ between the cache and now. */
static int instances_diff(vgm_store *s, const vgm_instance *now, size_t n)
{
	const vgm_inventory *inv = s->inv;
	int r = 0;
	for (size_t i = 0; r == 0 && i < inv->n_instances; i++) {
		const vgm_instance *x = find_instance(now, n, inv->instances[i].id);
		if (!same_place(&inv->instances[i], x))
			r = dirty_add_gpu(s, inv->instances[i].parent);
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!same_place(&now[i], find_instance(inv->instances, inv->n_instances, now[i].id)))
			r = dirty_add_gpu(s, now[i].parent);
	return r;
}

static int inventory_refresh(vgm_store *s, vgm_host *h, vgm_error *err)
{
	vgm_instance *now = NULL;
	size_t n = 0;
	int r = s->devops.instances_load(s->devops.ctx, h, s->inv, &now, &n, err);
	if (r < 0)
		return r;
	r = instances_diff(s, now, n);
	vgm_instance *old = s->inv->instances;
	size_t n_old = s->inv->n_instances;
	s->inv->instances = now;
	s->inv->n_instances = n;
	for (size_t i = 0; r == 0 && i < n_old; i++) {
		const vgm_parent *p = find_parent(s->inv, old[i].parent);
		if (p && !gpu_has_instances(s->inv, gpu_of(p)))
			r = gpu_emptied(s, gpu_of(p));
	}
	vgm_instances_free(old, n_old);
	if (r == 0)
		r = reload_dirty(s, h, err);
	else
		vgm_error_set(err, -r, "out of memory");
	s->inv_loaded_ms = store_mono_ms();
	return r;
}

static int inventory_full_load(vgm_store *s, vgm_host *h, vgm_error *err)
{
	store_inventory_drop(s);
	vgm_inventory *inv = NULL;
	int r = s->devops.inventory_load(s->devops.ctx, h, &inv, err);
	if (r < 0)
		return r;
	s->inv = inv;
	s->inv_host = h;
	s->inv_loaded_ms = store_mono_ms();
	return 0;
}

int store_inventory_get(vgm_store *s, vgm_host *h, bool fresh, const vgm_inventory **out,
			bool *loaded, vgm_error *err)
{
	if (loaded)
		*loaded = false;
	bool have = s->inv && s->inv_host == h;
	bool valid = have && s->inventory_ttl_ms > 0 &&
		     store_mono_ms() - s->inv_loaded_ms < s->inventory_ttl_ms;
	if (!fresh && valid && (!s->n_inv_dirty || reload_dirty(s, h, NULL) == 0)) {
		*out = s->inv;
		return 0;
	}
	/* A refresh that fails half way is not trusted: read everything. */
	if (!have || !cheap_reads(s) || inventory_refresh(s, h, NULL) < 0) {
		int r = inventory_full_load(s, h, err);
		if (r < 0)
			return r;
	}
	*out = s->inv;
	if (loaded)
		*loaded = true;
	return 0;
}

/* ---- patches for our own writes ---- */

static int fill_instance(vgm_instance *in, const vgm_parent *p, const vgm_profile *t,
			 const char *id)
{
	in->kind = p->backend;
	in->id = strdup(id);
	in->parent = strdup(p->address);
	in->type_id = strdup(t->type_id);
	in->profile_name = t->name ? strdup(t->name) : NULL;
	in->framebuffer_bytes = t->framebuffer_bytes;
	return in->id && in->parent && in->type_id && (!t->name || in->profile_name) ? 0 : -ENOMEM;
}

void store_inventory_note_create(vgm_store *s, const char *id, const char *parent,
				 const char *type_id)
{
	if (!s->inv)
		return;
	vgm_parent *p = find_parent(s->inv, parent);
	vgm_profile *t = find_profile(p, type_id);
	vgm_instance *grown = t ? realloc(s->inv->instances,
					  (s->inv->n_instances + 1) * sizeof(vgm_instance))
				: NULL;
	if (!grown) {
		store_inventory_drop(s);
		return;
	}
	s->inv->instances = grown;
	vgm_instance *in = &grown[s->inv->n_instances++];
	memset(in, 0, sizeof(*in));
	char *cur = p->backend == VGM_BACKEND_VF ? strdup(type_id) : NULL;
	if (fill_instance(in, p, t, id) < 0 || (p->backend == VGM_BACKEND_VF && !cur)) {
		free(cur);
		store_inventory_drop(s); /* frees the half-filled instance too */
		return;
	}
	if (t->available > 0)
		t->available--;
	if (cur) {
		free(p->current_type_id);
		p->current_type_id = cur;
	}
	s->inv_gen++;
	if (p->backend == VGM_BACKEND_VF && dirty_add_gpu(s, parent) < 0)
		store_inventory_drop(s);
}

void store_inventory_note_remove(vgm_store *s, const char *id)
{
	vgm_inventory *inv = s->inv;
	for (size_t i = 0; inv && i < inv->n_instances; i++) {
		vgm_instance *in = &inv->instances[i];
		if (strcasecmp(in->id, id) != 0)
			continue;
		vgm_parent *p = find_parent(inv, in->parent);
		vgm_profile *t = find_profile(p, in->type_id);
		if (t && (t->max_instances == 0 || t->available < t->max_instances))
			t->available++;
		bool vf = p && p->backend == VGM_BACKEND_VF;
		if (vf) {
			free(p->current_type_id);
			p->current_type_id = NULL;
		}
		char *parent = TAKE_PTR(in->parent);
		free(in->id);
		free(in->type_id);
		free(in->profile_name);
		memmove(in, in + 1, (inv->n_instances - i - 1) * sizeof(*in));
		inv->n_instances--;
		s->inv_gen++;
		int r = vf ? dirty_add_gpu(s, parent) : 0;
		if (r == 0 && p && !gpu_has_instances(inv, gpu_of(p)))
			r = gpu_emptied(s, gpu_of(p));
		if (r < 0)
			store_inventory_drop(s);
		free(parent);
		return;
	}
}

/* ---- for the agent: snapshots, and the slow safety net ---- */

int vgm_store_inventory_copy(vgm_store *s, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	const vgm_inventory *inv = NULL;
	int r = store_inventory_get(s, h, false, &inv, NULL, err);
	if (r < 0)
		return r;
	if (!(*out = vgm_inventory_dup(inv)))
		return vgm_error_set(err, ENOMEM, "out of memory copying the vGPU inventory");
	return 0;
}

int vgm_store_inventory_source(void *store, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	return vgm_store_inventory_copy(store, h, out, err);
}

typedef struct parent_read {
	char *address;
	vgm_parent fresh;
	int r; /* 0 read, -ENOENT gone, other: failed (kept as cached) */
} parent_read;

/* Under the lock: the next max parents after the cursor. */
static size_t refresh_pick(vgm_store *s, size_t max, parent_read *out)
{
	size_t n = 0, np = s->inv->n_parents;
	for (; n < max && n < np; n++) {
		size_t i = (s->inv_cursor + n) % np;
		if (!(out[n].address = strdup(s->inv->parents[i].address)))
			break;
	}
	s->inv_cursor = np ? (s->inv_cursor + n) % np : 0;
	return n;
}

/* Under the lock: swap in what was read, if the cache did not move. */
static size_t refresh_apply(vgm_store *s, vgm_host *h, uint64_t gen, parent_read *rd, size_t n)
{
	size_t swapped = 0;
	if (!s->inv || s->inv_host != h || s->inv_gen != gen)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (rd[i].r != 0 && rd[i].r != -ENOENT)
			continue;
		if (parent_swap_in(s->inv, rd[i].address, rd[i].r == 0 ? &rd[i].fresh : NULL) < 0) {
			store_inventory_drop(s);
			return swapped;
		}
		memset(&rd[i].fresh, 0, sizeof(rd[i].fresh)); /* taken over */
		swapped++;
	}
	if (instances_resolve(s->inv) < 0)
		store_inventory_drop(s);
	else
		s->inv_gen++;
	return swapped;
}

int vgm_store_inventory_refresh(vgm_store *s, vgm_host *h, size_t max_parents, size_t *refreshed)
{
	parent_read *rd = calloc(max_parents + 1, sizeof(*rd));
	size_t n = 0;
	uint64_t gen = 0;
	if (refreshed)
		*refreshed = 0;
	if (!rd)
		return -ENOMEM;
	vgm_store *locked = store_lock(s);
	if (s->inv && s->inv_host == h && cheap_reads(s)) {
		n = refresh_pick(s, max_parents, rd);
		gen = s->inv_gen;
	}
	store_unlockp(&locked);
	for (size_t i = 0; i < n; i++) /* sysfs reads without the lock */
		rd[i].r = s->devops.parent_load(s->devops.ctx, h, rd[i].address, &rd[i].fresh, NULL);
	locked = store_lock(s);
	size_t done = n ? refresh_apply(s, h, gen, rd, n) : 0;
	store_unlockp(&locked);
	for (size_t i = 0; i < n; i++) {
		vgm_parent_clear(&rd[i].fresh);
		free(rd[i].address);
	}
	free(rd);
	if (refreshed)
		*refreshed = done;
	return 0;
}
