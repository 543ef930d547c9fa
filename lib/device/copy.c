/* copy.c: deep copies of inventory pieces, so a cache owner (the store) can
 * hand a caller a snapshot it may keep and free while the cache moves on. */
#include <stdlib.h>
#include <string.h>

#include "device/device-internal.h"

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool dup_ok(const char *src, const char *dst)
{
	return !src || dst;
}

static int profile_copy(vgm_profile *d, const vgm_profile *s)
{
	*d = *s;
	d->type_id = dup0(s->type_id);
	d->name = dup0(s->name);
	d->description = dup0(s->description);
	d->device_api = dup0(s->device_api);
	d->max_resolution = dup0(s->max_resolution);
	d->extra = NULL;
	d->n_extra = 0;
	for (size_t i = 0; i < s->n_extra; i++) {
		vgm_kv *kv = vgm_array_push((void **)&d->extra, &d->n_extra, sizeof(*kv));
		if (!kv || !(kv->key = dup0(s->extra[i].key)) || !(kv->value = dup0(s->extra[i].value)))
			return -ENOMEM;
	}
	bool ok = dup_ok(s->type_id, d->type_id) && dup_ok(s->name, d->name) &&
		  dup_ok(s->description, d->description) && dup_ok(s->device_api, d->device_api) &&
		  dup_ok(s->max_resolution, d->max_resolution);
	return ok ? 0 : -ENOMEM;
}

static int parent_copy(vgm_parent *d, const vgm_parent *s)
{
	*d = *s;
	d->address = dup0(s->address);
	d->physfn = dup0(s->physfn);
	d->board = dup0(s->board);
	d->current_type_id = dup0(s->current_type_id);
	d->profiles = calloc(s->n_profiles + 1, sizeof(*d->profiles));
	d->n_profiles = 0;
	if (!d->profiles)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_profiles; i++, d->n_profiles++)
		if (profile_copy(&d->profiles[i], &s->profiles[i]) < 0) {
			d->n_profiles++; /* half-copied: cleared with the rest */
			return -ENOMEM;
		}
	bool ok = dup_ok(s->address, d->address) && dup_ok(s->physfn, d->physfn) &&
		  dup_ok(s->board, d->board) && dup_ok(s->current_type_id, d->current_type_id);
	return ok ? 0 : -ENOMEM;
}

static int instance_copy(vgm_instance *d, const vgm_instance *s)
{
	*d = *s;
	d->id = dup0(s->id);
	d->parent = dup0(s->parent);
	d->type_id = dup0(s->type_id);
	d->profile_name = dup0(s->profile_name);
	return dup_ok(s->id, d->id) && dup_ok(s->parent, d->parent) &&
			       dup_ok(s->type_id, d->type_id) &&
			       dup_ok(s->profile_name, d->profile_name)
		       ? 0
		       : -ENOMEM;
}

vgm_inventory *vgm_inventory_dup(const vgm_inventory *inv)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *d = calloc(1, sizeof(*d));
	if (!d || !(d->parents = calloc(inv->n_parents + 1, sizeof(*d->parents))) ||
	    !(d->instances = calloc(inv->n_instances + 1, sizeof(*d->instances))))
		return NULL;
	d->driver_version = dup0(inv->driver_version);
	if (inv->driver_version && !d->driver_version)
		return NULL;
	for (size_t i = 0; i < inv->n_parents; i++)
		if (parent_copy(&d->parents[d->n_parents++], &inv->parents[i]) < 0)
			return NULL;
	for (size_t i = 0; i < inv->n_instances; i++)
		if (instance_copy(&d->instances[d->n_instances++], &inv->instances[i]) < 0)
			return NULL;
	return TAKE_PTR(d);
}
