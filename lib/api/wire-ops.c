/* wire-ops.c: codecs of wire-ops.h (cold migration, the disk check).  The
 * agent and the CLI never spell these keys themselves. */
#include <errno.h>
#include <string.h>

#include "api/wire-ops.h"
#include "api/wire.h"
#include "util/validate.h"

#define INVALID "invalid_request"

void vgm_wire_cold_req_free(vgm_wire_cold_req *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->to);
	free(r);
}

int vgm_wire_cold_req_decode(const char *json, size_t len, vgm_wire_cold_req **out, vgm_error *err)
{
	_cleanup_(vgm_wire_cold_req_freep) vgm_wire_cold_req *r = calloc(1, sizeof(*r));
	_cleanup_(json_decrefp) json_t *o = NULL;
	*out = NULL;
	int ret = vgm_wire_parse_object(json, len, &o, err);
	if (ret < 0)
		return ret;
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((ret = vgm_wire_get_string(o, "domain", true, VGM_WIRE_MAX_TEXT, &r->domain, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "to", true, VGM_WIRE_MAX_ID, &r->to, err)) < 0 ||
	    (ret = vgm_wire_get_bool(o, "force", &r->force, err)) < 0)
		return ret;
	if (!vgm_name_valid(r->to))
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field 'to': '%s' may only use letters, digits and _.:- (and not be . or ..)",
				      r->to);
	if (json_object_get(o, "shutdown_timeout_ms")) {
		r->shutdown_timeout_ms.set = true;
		if ((ret = vgm_wire_get_u64(o, "shutdown_timeout_ms", false,
					    &r->shutdown_timeout_ms.value, err)) < 0)
			return ret;
	}
	*out = TAKE_PTR(r);
	return 0;
}

json_t *vgm_wire_cold_req_encode(const vgm_wire_cold_req *r)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "domain", r->domain, "to", r->to, "force", r->force);
	if (o && r->shutdown_timeout_ms.set)
		json_object_set_new(o, "shutdown_timeout_ms",
				    json_integer((json_int_t)r->shutdown_timeout_ms.value));
	return o;
}

void vgm_wire_cold_result_free(vgm_wire_cold_result *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->domain);
	free(r->to);
	free(r->warnings);
	free(r);
}

int vgm_wire_cold_result_from_json(json_t *o, vgm_wire_cold_result **out, vgm_error *err)
{
	_cleanup_(vgm_wire_cold_result_freep) vgm_wire_cold_result *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int ret;
	if ((ret = vgm_wire_get_string(o, "id", true, VGM_WIRE_MAX_ID, &r->id, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "domain", true, VGM_WIRE_MAX_TEXT, &r->domain, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "to", true, VGM_WIRE_MAX_ID, &r->to, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "warnings", false, VGM_WIRE_MAX_MESSAGE, &r->warnings,
				       err)) < 0)
		return ret;
	*out = TAKE_PTR(r);
	return 0;
}

json_t *vgm_wire_cold_result_encode(const vgm_wire_cold_result *r)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id", r->id, "domain", r->domain, "to", r->to,
			 "state", "moved", "warnings", r->warnings);
}

/* An absolute path with no ".." component and no control characters. */
static bool path_ok(const char *p, size_t n)
{
	if (n == 0 || n > VGM_WIRE_MAX_PATH || p[0] != '/' || strlen(p) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return !strstr(p, "/../") && !(n >= 3 && STREQ(p + n - 3, "/.."));
}

int vgm_wire_paths_from_json(json_t *o, const char *field, char ***out, size_t *n, vgm_error *err)
{
	json_t *arr = json_object_get(o, field), *v;
	size_t i;
	*out = NULL;
	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) > VGM_WIRE_MAX_PATHS)
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be an array of at most %d paths",
				      field, VGM_WIRE_MAX_PATHS);
	char **p = calloc(json_array_size(arr) + 1, sizeof(*p));
	if (!p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		if (!s || !path_ok(s, json_string_length(v))) {
			vgm_strv_free(p, i);
			return vgm_error_setr(err, EINVAL, INVALID,
					      "field '%s[%zu]' must be an absolute path without '..' or control characters",
					      field, i);
		}
		if (!(p[i] = strdup(s))) {
			vgm_strv_free(p, i);
			return vgm_error_set(err, ENOMEM, "out of memory");
		}
	}
	*out = p;
	*n = i;
	return 0;
}

int vgm_wire_paths_decode(const char *json, size_t len, const char *field, char ***out, size_t *n,
			  vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	int r = vgm_wire_parse_object(json, len, &o, err);
	return r < 0 ? r : vgm_wire_paths_from_json(o, field, out, n, err);
}

json_t *vgm_wire_paths_encode(const char *field, char *const *paths, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_string(paths[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return arr ? json_pack("{s:o}", field, arr) : NULL;
}
