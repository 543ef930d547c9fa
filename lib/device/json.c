/* json.c: the inventory as JSON, one shape for the CLI (--json) and the agent.
 *
 * Field names are an interface (docs/cli-device.md); add fields, never rename.
 * Unknown values are JSON null, never an empty string or a made-up number. */
#include <jansson.h>

#include "device/device.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *instance_json(const vgm_instance *in)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "id", in->id, "kind",
			 vgm_backend_to_string(in->kind), "parent", in->parent, "type_id", in->type_id,
			 "profile", str_or_null(in->profile_name), "framebuffer_bytes",
			 (json_int_t)in->framebuffer_bytes);
}

json_t *vgm_inventory_devices_json(const vgm_inventory *inv)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < inv->n_instances; i++)
		if (json_array_append_new(arr, instance_json(&inv->instances[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return json_pack("{s:o, s:o}", "driver_version", str_or_null(inv->driver_version), "devices",
			 arr);
}

static json_t *extra_json(const vgm_profile *p)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < p->n_extra; i++)
		json_object_set_new(o, p->extra[i].key, json_string(p->extra[i].value));
	return o;
}

static json_t *profile_json(const vgm_profile *p)
{
	char cls[2] = { p->license_class, 0 };
	return json_pack("{s:s, s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:o}", "type_id",
			 p->type_id, "name", str_or_null(p->name), "available",
			 (json_int_t)p->available, "max_instances", (json_int_t)p->max_instances,
			 "framebuffer_bytes", (json_int_t)p->framebuffer_bytes, "class",
			 p->license_class ? json_string(cls) : json_null(), "description",
			 str_or_null(p->description), "device_api", str_or_null(p->device_api),
			 "num_heads", (json_int_t)p->num_heads, "frl_config",
			 (json_int_t)p->frl_config, "max_resolution", str_or_null(p->max_resolution),
			 "extra", extra_json(p));
}

static json_t *parent_json(const vgm_parent *p)
{
	json_t *types = json_array();
	for (size_t i = 0; types && i < p->n_profiles; i++)
		if (json_array_append_new(types, profile_json(&p->profiles[i])) < 0) {
			json_decref(types);
			return NULL;
		}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "address", p->address, "physfn",
			 p->physfn, "backend", vgm_backend_to_string(p->backend), "board",
			 str_or_null(p->board), "current_type_id", str_or_null(p->current_type_id),
			 "types", types);
}

json_t *vgm_inventory_types_json(const vgm_inventory *inv)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < inv->n_parents; i++)
		if (json_array_append_new(arr, parent_json(&inv->parents[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return json_pack("{s:o, s:o}", "driver_version", str_or_null(inv->driver_version), "parents",
			 arr);
}
