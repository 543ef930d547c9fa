/* wire-evac.c: codecs of the evacuation messages in wire-ops.h: the
 * request, an evacuation's snapshot (built from the store's record, so the
 * agent and the CLI read the same fields) and a target's capacity (the
 * lib/place input, per physical GPU). */
#include <errno.h>
#include <string.h>

#include "api/wire-ops.h"
#include "api/wire.h"
#include "place/place.h"
#include "store/evac.h"
#include "util/validate.h"

#define INVALID "invalid_request"

void vgm_wire_evac_req_free(vgm_wire_evac_req *r)
{
	if (!r)
		return;
	free(r->host);
	vgm_strv_free(r->to, r->n_to);
	free(r);
}

static int get_names(json_t *o, const char *field, char ***out, size_t *n, vgm_error *err)
{
	json_t *arr = json_object_get(o, field), *v;
	size_t i;
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > VGM_WIRE_MAX_TARGETS)
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be a list of at most %d host names",
				      field, VGM_WIRE_MAX_TARGETS);
	if (!(*out = calloc(json_array_size(arr) + 1, sizeof(**out))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		if (!s || !vgm_name_valid(s))
			return vgm_error_setr(err, EINVAL, INVALID,
					      "field '%s[%zu]' must be a host name (letters, digits and _.:-)",
					      field, i);
		if (!((*out)[(*n)++] = strdup(s)))
			return vgm_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int get_limit(json_t *o, const char *field, vgm_limit *l, vgm_error *err)
{
	if (!json_object_get(o, field))
		return 0;
	l->set = true;
	return vgm_wire_get_u64(o, field, false, &l->value, err);
}

int vgm_wire_evac_req_decode(const char *json, size_t len, vgm_wire_evac_req **out, vgm_error *err)
{
	_cleanup_(vgm_wire_evac_req_freep) vgm_wire_evac_req *r = calloc(1, sizeof(*r));
	_cleanup_(json_decrefp) json_t *o = NULL;
	*out = NULL;
	int ret = vgm_wire_parse_object(json, len, &o, err);
	if (ret < 0)
		return ret;
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((ret = vgm_wire_get_string(o, "host", true, VGM_WIRE_MAX_ID, &r->host, err)) < 0 ||
	    (ret = get_names(o, "to", &r->to, &r->n_to, err)) < 0 ||
	    (ret = get_limit(o, "parallel", &r->parallel, err)) < 0 ||
	    (ret = get_limit(o, "max_downtime_ms", &r->max_downtime_ms, err)) < 0 ||
	    (ret = vgm_wire_get_bool(o, "dry_run", &r->dry_run, err)) < 0 ||
	    (ret = vgm_wire_get_bool(o, "cold_fallback", &r->cold_fallback, err)) < 0)
		return ret;
	if (r->parallel.set && (r->parallel.value < 1 || r->parallel.value > 64))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'parallel' must be 1 to 64");
	*out = TAKE_PTR(r);
	return 0;
}

json_t *vgm_wire_evac_req_encode(const vgm_wire_evac_req *r)
{
	json_t *to = json_array();
	for (size_t i = 0; to && i < r->n_to; i++)
		json_array_append_new(to, json_string(r->to[i]));
	json_t *o = to ? json_pack("{s:s, s:o, s:b, s:b}", "host", r->host, "to", to, "dry_run",
				   r->dry_run, "cold_fallback", r->cold_fallback)
		       : NULL;
	if (o && r->parallel.set)
		json_object_set_new(o, "parallel", json_integer((json_int_t)r->parallel.value));
	if (o && r->max_downtime_ms.set)
		json_object_set_new(o, "max_downtime_ms", json_integer((json_int_t)r->max_downtime_ms.value));
	return o;
}

/* ---- snapshot ---- */

static json_t *vm_json(const vgm_evac_vm *v)
{
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s?, s:s?}", "domain", v->domain_name,
			      "domain_uuid", v->domain_uuid, "target", v->target, "state", v->state,
			      "migration_id", v->migration_id, "code", v->code, "message", v->message);
	if (o)
		json_object_set_new(o, "pause_ms", v->pause_ms >= 0 ? json_integer(v->pause_ms)
								    : json_null());
	return o;
}

json_t *vgm_wire_evacuation_encode(const vgm_evacuation *e)
{
	json_t *vms = json_array();
	json_int_t moved = 0, cold = 0, left = 0, pending = 0;
	for (size_t i = 0; vms && i < e->n_vms; i++) {
		const char *st = e->vms[i].state;
		moved += STREQ(st, "moved");
		cold += STREQ(st, "cold_moved");
		left += STREQ(st, "left_behind");
		pending += !STREQ(st, "moved") && !STREQ(st, "cold_moved") && !STREQ(st, "left_behind");
		json_array_append_new(vms, vm_json(&e->vms[i]));
	}
	return vms ? json_pack("{s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I}}", "evacuation_id", e->id,
			       "state", e->state, "vms", vms, "summary", "moved", moved, "cold_moved",
			       cold, "left_behind", left, "pending", pending)
		   : NULL;
}

static int vm_from_json(json_t *o, vgm_evac_vm *v, vgm_error *err)
{
	json_t *p = json_object_get(o, "pause_ms");
	int r;
	v->pause_ms = json_is_integer(p) ? json_integer_value(p) : -1;
	if ((r = vgm_wire_get_string(o, "domain", true, VGM_WIRE_MAX_TEXT, &v->domain_name, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "domain_uuid", true, VGM_WIRE_MAX_ID, &v->domain_uuid, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "target", false, VGM_WIRE_MAX_ID, &v->target, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "state", true, VGM_WIRE_MAX_ID, &v->state, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "migration_id", false, VGM_WIRE_MAX_ID, &v->migration_id, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "code", false, VGM_WIRE_MAX_ID, &v->code, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "message", false, VGM_WIRE_MAX_MESSAGE, &v->message, err)) < 0)
		return r;
	return 0;
}

int vgm_wire_evacuation_from_json(json_t *o, vgm_evacuation **out, vgm_error *err)
{
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = calloc(1, sizeof(*e));
	json_t *vms = json_object_get(o, "vms"), *v;
	size_t i;
	*out = NULL;
	if (!e)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r;
	if ((r = vgm_wire_get_string(o, "evacuation_id", true, VGM_WIRE_MAX_ID, &e->id, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "state", true, VGM_WIRE_MAX_ID, &e->state, err)) < 0)
		return r;
	if (!json_is_array(vms) || json_array_size(vms) > 4096)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'vms' must be a list");
	if (!(e->vms = calloc(json_array_size(vms) + 1, sizeof(*e->vms))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(vms, i, v) {
		e->n_vms++;
		if ((r = vm_from_json(v, &e->vms[i], err)) < 0)
			return r;
	}
	*out = TAKE_PTR(e);
	return 0;
}

/* ---- capacity ---- */

json_t *vgm_wire_capacity_encode(const vgm_place_target *t)
{
	json_t *gpus = json_array();
	for (size_t g = 0; gpus && g < t->n_gpus; g++) {
		const vgm_place_gpu *p = &t->gpus[g];
		json_t *slots = json_array();
		for (size_t k = 0; slots && k < p->n_slots; k++)
			json_array_append_new(slots, json_pack("{s:s, s:I}", "profile", p->slots[k].profile,
							       "max_instances",
							       (json_int_t)p->slots[k].max_instances));
		json_array_append_new(gpus, slots ? json_pack("{s:s, s:s?, s:I, s:o}", "address",
							      p->address, "current_profile",
							      p->current_profile, "used",
							      (json_int_t)p->used, "slots", slots)
						  : NULL);
	}
	return gpus ? json_pack("{s:s, s:o}", "host", t->name, "gpus", gpus) : NULL;
}

void vgm_wire_capacity_free(vgm_place_target *t)
{
	for (size_t g = 0; t->gpus && g < t->n_gpus; g++) {
		vgm_place_gpu *p = (vgm_place_gpu *)&t->gpus[g];
		for (size_t k = 0; p->slots && k < p->n_slots; k++)
			free((char *)p->slots[k].profile);
		free((void *)p->slots);
		free((char *)p->address);
		free((char *)p->current_profile);
	}
	free((void *)t->gpus);
	free((char *)t->name);
	*t = (vgm_place_target){ 0 };
}

static int slots_from_json(json_t *arr, vgm_place_gpu *p, vgm_error *err)
{
	json_t *s;
	size_t k;
	vgm_place_slot *slots = calloc(json_array_size(arr) + 1, sizeof(*slots));
	if (!slots)
		return vgm_error_set(err, ENOMEM, "out of memory");
	p->slots = slots;
	json_array_foreach(arr, k, s) {
		uint64_t max = 0;
		int r = vgm_wire_get_u64(s, "max_instances", true, &max, err);
		if (r >= 0)
			r = vgm_wire_get_string(s, "profile", true, VGM_WIRE_MAX_TEXT,
						(char **)&slots[k].profile, err);
		if (r < 0)
			return r;
		slots[k].max_instances = (unsigned)MIN(max, 1024);
		p->n_slots++;
	}
	return 0;
}

static int gpu_from_json(json_t *o, vgm_place_gpu *p, vgm_error *err)
{
	uint64_t used = 0;
	json_t *slots = json_object_get(o, "slots");
	int r;
	if ((r = vgm_wire_get_string(o, "address", true, VGM_WIRE_MAX_ID, (char **)&p->address, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "current_profile", false, VGM_WIRE_MAX_TEXT,
				     (char **)&p->current_profile, err)) < 0 ||
	    (r = vgm_wire_get_u64(o, "used", true, &used, err)) < 0)
		return r;
	p->used = (unsigned)MIN(used, 1024);
	if (!json_is_array(slots) || json_array_size(slots) > 64)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'gpus[].slots' must be a list");
	return slots_from_json(slots, p, err);
}

int vgm_wire_capacity_from_json(json_t *o, vgm_place_target *out, vgm_error *err)
{
	json_t *gpus = json_object_get(o, "gpus"), *g;
	size_t i;
	*out = (vgm_place_target){ 0 };
	int r = vgm_wire_get_string(o, "host", true, VGM_WIRE_MAX_ID, (char **)&out->name, err);
	if (r >= 0 && (!json_is_array(gpus) || json_array_size(gpus) > 256))
		r = vgm_error_setr(err, EINVAL, INVALID, "field 'gpus' must be a list of at most 256");
	vgm_place_gpu *arr = r >= 0 ? calloc(json_array_size(gpus) + 1, sizeof(*arr)) : NULL;
	if (r >= 0 && !arr)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	out->gpus = arr;
	if (r >= 0)
		json_array_foreach(gpus, i, g) {
			out->n_gpus++;
			if ((r = gpu_from_json(g, &arr[i], err)) < 0)
				break;
		}
	if (r < 0)
		vgm_wire_capacity_free(out);
	return r;
}

/* ---- the migration API as an evacuation reads it ---- */

void vgm_wire_mig_brief_clear(vgm_wire_mig_brief *b)
{
	free(b->migration_id);
	free(b->state);
	free(b->code);
	free(b->message);
	*b = (vgm_wire_mig_brief){ 0 };
}

int vgm_wire_mig_brief_from_json(json_t *o, vgm_wire_mig_brief *out, vgm_error *err)
{
	json_t *e = json_object_get(o, "error");
	int r;
	*out = (vgm_wire_mig_brief){ 0 };
	if ((r = vgm_wire_get_string(o, "migration_id", false, VGM_WIRE_MAX_ID, &out->migration_id,
				     err)) < 0 ||
	    (r = vgm_wire_get_string(o, "state", false, VGM_WIRE_MAX_ID, &out->state, err)) < 0 ||
	    (json_is_object(e) &&
	     ((r = vgm_wire_get_string(e, "code", false, VGM_WIRE_MAX_ID, &out->code, err)) < 0 ||
	      (r = vgm_wire_get_string(e, "message", false, VGM_WIRE_MAX_MESSAGE, &out->message,
				       err)) < 0)))
		vgm_wire_mig_brief_clear(out);
	return r;
}

void vgm_wire_plan_brief_clear(vgm_wire_plan_brief *b)
{
	free(b->code);
	free(b->reason);
	*b = (vgm_wire_plan_brief){ 0 };
}

int vgm_wire_plan_brief_from_json(json_t *o, vgm_wire_plan_brief *out, vgm_error *err)
{
	json_t *d = json_object_get(o, "downtime_s"), *v = json_object_get(o, "verdict");
	*out = (vgm_wire_plan_brief){ .downtime_s = -1 };
	if (!json_is_number(d) || !json_is_object(v) || !json_is_boolean(json_object_get(v, "ok")))
		return vgm_error_setr(err, EPROTO, "bad_reply",
				      "the plan reply has no 'downtime_s' or 'verdict.ok'");
	out->downtime_s = json_number_value(d);
	out->ok = json_is_true(json_object_get(v, "ok"));
	int r = vgm_wire_get_string(v, "code", false, VGM_WIRE_MAX_ID, &out->code, err);
	if (r >= 0)
		r = vgm_wire_get_string(v, "reason", false, VGM_WIRE_MAX_MESSAGE, &out->reason, err);
	if (r < 0)
		vgm_wire_plan_brief_clear(out);
	return r;
}
