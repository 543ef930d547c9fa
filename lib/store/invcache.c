/* invcache.c: the claims engine's view of sysfs, kept between calls.
 *
 * Reading the whole inventory costs thousands of sysfs reads (one per type
 * attribute of every parent); on a busy host or the FUSE emulator that is
 * most of a claim's time.  So the store keeps the last inventory and patches
 * it with its own creations and removals, which it knows exactly.  Changes
 * made by others (an operator bypassing the agent) are picked up when the copy
 * is older than inventory_ttl_ms, and reconcile always reads sysfs afresh.
 * claims.c trusts a cached copy only for plans that create every device.
 *
 * Invariants: the cache is touched only under s->lock; after a device write
 * whose outcome is unknown (an error other than ENOENT) it is dropped, so the
 * next decision reads sysfs.  The patch keeps what choose.c relies on:
 * instances (with profile name and framebuffer), each profile's available
 * count on its parent, and a VF's current type.  The homogeneous rule is
 * derived from the instances, so other types' counts need no patching. */
#include <string.h>
#include <time.h>

#include "store-internal.h"

void store_inventory_drop(vgm_store *s)
{
	if (s->inv)
		s->devops.inventory_free(s->devops.ctx, s->inv);
	s->inv = NULL;
	s->inv_host = NULL;
}

int store_inventory_get(vgm_store *s, vgm_host *h, bool fresh, const vgm_inventory **out,
			bool *loaded, vgm_error *err)
{
	if (loaded)
		*loaded = false;
	bool valid = s->inv && s->inv_host == h && s->inventory_ttl_ms > 0 &&
		     store_mono_ms() - s->inv_loaded_ms < s->inventory_ttl_ms;
	if (!fresh && valid) {
		*out = s->inv;
		return 0;
	}
	store_inventory_drop(s);
	vgm_inventory *inv = NULL;
	int r = s->devops.inventory_load(s->devops.ctx, h, &inv, err);
	if (r < 0)
		return r;
	s->inv = inv;
	s->inv_host = h;
	s->inv_loaded_ms = store_mono_ms();
	*out = inv;
	if (loaded)
		*loaded = true;
	return 0;
}

static vgm_parent *find_parent(vgm_inventory *inv, const char *address)
{
	for (size_t i = 0; i < inv->n_parents; i++)
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
		if (p && p->backend == VGM_BACKEND_VF) {
			free(p->current_type_id);
			p->current_type_id = NULL;
		}
		free(in->id);
		free(in->parent);
		free(in->type_id);
		free(in->profile_name);
		memmove(in, in + 1, (inv->n_instances - i - 1) * sizeof(*in));
		inv->n_instances--;
		return;
	}
}
