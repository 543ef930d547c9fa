/* wire-ctl.c: see wire-ctl.h.  Kept apart from wire.c (the agent API) as
 * its own small protocol; it reuses wire.c's field getters so the checks and
 * the error sentences are the same. */
#include <errno.h>
#include <string.h>

#include "wire-ctl.h"
#include "wire.h"

#define INVALID "invalid_request"

/* An optional limit: absent or null is unset. */
static int get_limit(json_t *o, const char *field, vgm_limit *out, vgm_error *err)
{
	json_t *v = json_object_get(o, field);
	*out = VGM_LIMIT_UNSET;
	if (!v || json_is_null(v))
		return 0;
	uint64_t n = 0;
	int r = vgm_wire_get_u64(o, field, true, &n, err);
	if (r < 0)
		return r;
	*out = vgm_limit_of(n);
	return 0;
}

/* The object under the line's only key. */
static int line_object(const char *json, size_t len, const char *key, json_t **root, json_t **body,
		       vgm_error *err)
{
	int r = vgm_wire_parse_object(json, len, root, err);
	if (r < 0)
		return r;
	*body = json_object_get(*root, key);
	if (!json_is_object(*body))
		return vgm_error_setr(err, EINVAL, INVALID, "expected a line {\"%s\": {...}}", key);
	return 0;
}

static int decode_vgpu(json_t *g, size_t i, vgm_ctl_config *cfg, vgm_error *err)
{
	if (!json_is_object(g))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'vgpus[%zu]' must be an object", i);
	uint64_t fb = 0;
	int r = vgm_wire_get_u64(g, "framebuffer_bytes", true, &fb, err);
	if (r < 0)
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field 'vgpus[%zu].framebuffer_bytes' must be a non-negative integer", i);
	json_t *p = json_object_get(g, "precopy");
	if (!p || json_is_null(p))
		cfg->vgpu_unknown_bytes += fb;
	else if (json_is_true(p))
		cfg->vgpu_precopy_bytes += fb;
	else if (json_is_false(p))
		cfg->vgpu_stopcopy_bytes += fb;
	else
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field 'vgpus[%zu].precopy' must be true, false or null", i);
	return 0;
}

int vgm_wire_ctl_config_decode(const char *json, size_t len, vgm_ctl_config *cfg, vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *c = NULL;
	int r = line_object(json, len, "config", &root, &c, err);
	if (r < 0)
		return r;
	memset(cfg, 0, sizeof(*cfg));
	cfg->costs = vgm_model_default_costs();
	if ((r = vgm_wire_get_u64(c, "ram_bytes", true, &cfg->ram_bytes, err)) < 0 ||
	    (r = get_limit(c, "max_downtime_ms", &cfg->max_downtime_ms, err)) < 0 ||
	    (r = get_limit(c, "timeout_ms", &cfg->timeout_ms, err)) < 0 ||
	    (r = get_limit(c, "bandwidth_bps", &cfg->bandwidth_cap_bps, err)) < 0 ||
	    (r = get_limit(c, "link_bps", &cfg->link_bps, err)) < 0 ||
	    (r = get_limit(c, "dirty_rate_bps", &cfg->dirty_rate_bps, err)) < 0)
		return r;
	if (cfg->ram_bytes == 0)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'ram_bytes' must be above 0");
	json_t *v = json_object_get(c, "vgpus");
	if (v && !json_is_null(v) && !json_is_array(v))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'vgpus' must be an array");
	if (json_array_size(v) > VGM_WIRE_CTL_MAX_VGPUS)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'vgpus' has more than %d entries",
				      VGM_WIRE_CTL_MAX_VGPUS);
	for (size_t i = 0; i < json_array_size(v); i++)
		if ((r = decode_vgpu(json_array_get(v, i), i, cfg, err)) < 0)
			return r;
	return 0;
}

/* One job stat: absent or null leaves it unreported (0, its flag clear). */
static int get_stat(json_t *o, const char *field, uint64_t *out, unsigned flag, unsigned *have,
		    vgm_error *err)
{
	json_t *v = json_object_get(o, field);
	if (!v || json_is_null(v))
		return 0;
	*have |= flag;
	return vgm_wire_get_u64(o, field, true, out, err);
}

int vgm_wire_ctl_sample_decode(const char *json, size_t len, vgm_job_sample *x, vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *s = NULL;
	int r = line_object(json, len, "sample", &root, &s, err);
	if (r < 0)
		return r;
	memset(x, 0, sizeof(*x));
	unsigned have = 0, ignore = 0;
	uint64_t pages = 0, page_size = 4096;
	if ((r = get_stat(s, "time_elapsed", &x->time_elapsed_ms, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "data_total", &x->data_total, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "data_processed", &x->data_processed, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "data_remaining", &x->data_remaining, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_total", &x->memory_total, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_processed", &x->memory_processed, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_remaining", &x->memory_remaining, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_dirty_rate", &pages, VGM_SAMPLE_HAVE_DIRTY, &have, err)) < 0 ||
	    (r = get_stat(s, "memory_page_size", &page_size, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_iteration", &x->memory_iteration, 0, &ignore, err)) < 0 ||
	    (r = get_stat(s, "memory_bps", &x->memory_bps, VGM_SAMPLE_HAVE_BPS, &have, err)) < 0 ||
	    (r = get_stat(s, "vfio_data_transferred", &x->vfio_data_transferred, VGM_SAMPLE_HAVE_VFIO,
			  &have, err)) < 0)
		return r;
	x->memory_dirty_rate_bps = pages * (page_size ? page_size : 4096);
	x->have = have;
	return 0;
}

static json_t *action_encode(const vgm_action *a)
{
	switch (a->kind) {
	case VGM_ACT_SET_DOWNTIME:
		return json_pack("{s:I}", "set_downtime_ms", (json_int_t)a->value);
	case VGM_ACT_SET_BANDWIDTH:
		return json_pack("{s:I}", "set_bandwidth_bps", (json_int_t)a->value);
	case VGM_ACT_ABORT:
		return json_pack("{s:{s:s, s:s}}", "abort", "code", a->code, "reason", a->reason);
	case VGM_ACT_NONE:
		break;
	}
	return NULL;
}

json_t *vgm_wire_ctl_actions_encode(const char *key, const vgm_action *a, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++)
		if (a[i].kind != VGM_ACT_NONE && json_array_append_new(list, action_encode(&a[i])) < 0) {
			json_decref(list);
			return NULL;
		}
	return list ? json_pack("{s:o}", key, list) : NULL;
}

json_t *vgm_wire_ctl_refuse_encode(const vgm_action *a)
{
	return json_pack("{s:{s:s, s:s}}", "refuse", "code", a->code, "reason", a->reason);
}

json_t *vgm_wire_ctl_error_encode(const vgm_error *err)
{
	return json_pack("{s:o}", "error",
			 vgm_wire_error_encode(err->reason[0] ? err->reason : INVALID, err->message));
}
