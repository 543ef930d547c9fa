/* wire.c: JSON codecs for the agent API (see wire.h).
 *
 * Decoders never trust their input: every field is type-checked, every
 * string length-bounded and free of control characters, every id validated
 * before it can reach a path or the store.  Error messages always name the
 * field with its JSON path ("devices[2].kind") so an operator can find it. */
#include "api/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "util/validate.h"

#define INVALID "invalid_request"

int vgm_wire_parse_object(const char *json, size_t len, json_t **out, vgm_error *err)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (!json || len == 0)
		return vgm_error_setr(err, EINVAL, INVALID, "request body is empty; send a JSON object");
	if (len > VGM_WIRE_MAX_BODY)
		return vgm_error_setr(err, EFBIG, "payload_too_large",
				      "request body is %zu bytes; the limit is %u", len, VGM_WIRE_MAX_BODY);
	v = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return vgm_error_setr(err, EINVAL, INVALID, "malformed JSON at line %d column %d: %s",
				      jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return vgm_error_setr(err, EINVAL, INVALID, "request body is not a JSON object");
	}
	*out = v;
	return 0;
}

static bool text_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Read a string field; label is how errors name it ("devices[0].kind"). */
static int get_string_labeled(json_t *o, const char *field, const char *label, bool required,
			      size_t max, char **out, vgm_error *err)
{
	json_t *v = json_object_get(o, field);
	size_t n;

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return vgm_error_setr(err, EINVAL, INVALID, "field '%s' is missing", label);
		return 0;
	}
	if (!json_is_string(v))
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be a string", label);
	n = json_string_length(v);
	if (n == 0 || n > max)
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be 1 to %zu bytes long (got %zu)",
				      label, max, n);
	if (strlen(json_string_value(v)) != n || !text_clean(json_string_value(v), n))
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' contains control characters", label);
	*out = strdup(json_string_value(v));
	return *out ? 0 : vgm_error_set(err, ENOMEM, "out of memory");
}

int vgm_wire_get_string(json_t *o, const char *field, bool required, size_t max, char **out,
			vgm_error *err)
{
	return get_string_labeled(o, field, field, required, max, out, err);
}

int vgm_wire_get_u64(json_t *o, const char *field, bool required, uint64_t *out, vgm_error *err)
{
	json_t *v = json_object_get(o, field);

	if (!v || json_is_null(v)) {
		if (required)
			return vgm_error_setr(err, EINVAL, INVALID, "field '%s' is missing", field);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be a non-negative integer",
				      field);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int vgm_wire_get_bool(json_t *o, const char *field, bool *out, vgm_error *err)
{
	json_t *v = json_object_get(o, field);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be true or false", field);
	*out = json_is_true(v);
	return 0;
}

/* Fields that become ids: checked against validate.h, then lowercased. */
static int get_uuid(json_t *o, const char *field, const char *label, bool required, char **out,
		    vgm_error *err)
{
	int r = vgm_wire_get_string(o, field, required, VGM_UUID_LEN + 1, out, err);

	if (r < 0 || !*out)
		return r;
	if (!vgm_uuid_valid(*out)) {
		r = vgm_error_setr(err, EINVAL, INVALID, "field '%s': '%s' is not a UUID", label, *out);
		free(*out);
		*out = NULL;
		return r;
	}
	vgm_id_normalize(*out, *out, strlen(*out) + 1);
	return 0;
}

static int get_name(json_t *o, const char *field, const char *label, bool required, char **out,
		    vgm_error *err)
{
	int r = vgm_wire_get_string(o, field, required, VGM_WIRE_MAX_ID, out, err);

	if (r < 0 || !*out)
		return r;
	if (!vgm_name_valid(*out)) {
		r = vgm_error_setr(err, EINVAL, INVALID,
				   "field '%s': '%s' may only use letters, digits and _.:- (and not be . or ..)",
				   label, *out);
		free(*out);
		*out = NULL;
	}
	return r;
}

/* A string field of an array element, named "<prefix>.<field>" in errors. */
static int get_elem_string(json_t *o, const char *prefix, const char *field, bool required,
			   size_t max, char **out, vgm_error *err)
{
	char label[64];

	snprintf(label, sizeof(label), "%s.%s", prefix, field);
	return get_string_labeled(o, field, label, required, max, out, err);
}

/* ---- claim request ---- */

static void wire_device_clear(vgm_wire_device *d)
{
	free(d->source_id);
	free(d->kind);
	free(d->profile_name);
	free(d->type_id);
}

void vgm_wire_claim_req_free(vgm_wire_claim_req *r)
{
	if (!r)
		return;
	free(r->migration_id);
	free(r->domain_uuid);
	free(r->domain_name);
	free(r->source_host);
	for (size_t i = 0; i < r->n_devices; i++)
		wire_device_clear(&r->devices[i]);
	free(r->devices);
	free(r);
}

static int decode_device_id(vgm_wire_device *d, const char *label, vgm_error *err)
{
	bool mdev = STREQ(d->kind, "mdev");

	if (mdev ? !vgm_uuid_valid(d->source_id) : !vgm_pci_addr_valid(d->source_id)) {
		bool any = vgm_uuid_valid(d->source_id) || vgm_pci_addr_valid(d->source_id);

		if (!any)
			return vgm_error_setr(err, EINVAL, INVALID,
					      "field '%s.source_id': '%s' is not a UUID or PCI address", label,
					      d->source_id);
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field '%s.source_id': '%s' does not match kind '%s' (mdev needs a UUID, vf a PCI address)",
				      label, d->source_id, d->kind);
	}
	vgm_id_normalize(d->source_id, d->source_id, strlen(d->source_id) + 1);
	return 0;
}

static int decode_device(json_t *o, size_t i, vgm_wire_device *d, vgm_error *err)
{
	char label[32];
	const char *prefix = label;
	int r;

	snprintf(label, sizeof(label), "devices[%zu]", i);
	if (!json_is_object(o))
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s' must be an object", label);
	if ((r = get_elem_string(o, prefix, "source_id", true, VGM_WIRE_MAX_ID, &d->source_id, err)) < 0 ||
	    (r = get_elem_string(o, prefix, "kind", true, 8, &d->kind, err)) < 0 ||
	    (r = get_elem_string(o, prefix, "profile_name", true, VGM_WIRE_MAX_TEXT, &d->profile_name, err)) < 0)
		return r;
	if (!STREQ(d->kind, "mdev") && !STREQ(d->kind, "vf"))
		return vgm_error_setr(err, EINVAL, INVALID, "field '%s.kind': '%s' must be \"mdev\" or \"vf\"",
				      label, d->kind);
	if ((r = decode_device_id(d, label, err)) < 0)
		return r;
	if (json_object_get(o, "framebuffer_bytes") &&
	    (!json_is_integer(json_object_get(o, "framebuffer_bytes")) ||
	     json_integer_value(json_object_get(o, "framebuffer_bytes")) < 0))
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field '%s.framebuffer_bytes' must be a non-negative integer", label);
	if ((r = vgm_wire_get_u64(o, "framebuffer_bytes", false, &d->framebuffer_bytes, err)) < 0)
		return r;
	if ((r = get_elem_string(o, prefix, "type_id", false, VGM_WIRE_MAX_ID, &d->type_id, err)) < 0)
		return r;
	if (d->type_id && !vgm_name_valid(d->type_id))
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field '%s.type_id': '%s' may only use letters, digits and _.:-", label,
				      d->type_id);
	return 0;
}

static int decode_devices(json_t *o, vgm_wire_claim_req *r, vgm_error *err)
{
	json_t *arr = json_object_get(o, "devices");
	size_t n;
	int ret;

	if (!arr)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'devices' is missing");
	if (!json_is_array(arr))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'devices' must be an array");
	n = json_array_size(arr);
	if (n == 0 || n > VGM_WIRE_MAX_DEVICES)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'devices' must hold 1 to %d devices (got %zu)",
				      VGM_WIRE_MAX_DEVICES, n);
	r->devices = calloc(n, sizeof(*r->devices));
	if (!r->devices)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r->n_devices = i + 1;
		if ((ret = decode_device(json_array_get(arr, i), i, &r->devices[i], err)) < 0)
			return ret;
		for (size_t j = 0; j < i; j++)
			if (STREQ(r->devices[j].source_id, r->devices[i].source_id))
				return vgm_error_setr(err, EINVAL, INVALID,
						      "field 'devices[%zu].source_id': '%s' is listed twice", i,
						      r->devices[i].source_id);
	}
	return 0;
}

int vgm_wire_claim_req_decode(const char *json, size_t len, vgm_wire_claim_req **out, vgm_error *err)
{
	_cleanup_(vgm_wire_claim_req_freep) vgm_wire_claim_req *r = NULL;
	_cleanup_(json_decrefp) json_t *o = NULL;
	int ret;

	*out = NULL;
	if ((ret = vgm_wire_parse_object(json, len, &o, err)) < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((ret = get_name(o, "migration_id", "migration_id", true, &r->migration_id, err)) < 0 ||
	    (ret = get_uuid(o, "domain_uuid", "domain_uuid", true, &r->domain_uuid, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "domain_name", true, VGM_WIRE_MAX_TEXT, &r->domain_name, err)) < 0 ||
	    (ret = get_name(o, "source_host", "source_host", true, &r->source_host, err)) < 0 ||
	    (ret = decode_devices(o, r, err)) < 0)
		return ret;
	*out = TAKE_PTR(r);
	return 0;
}

/* json_pack with "s?" for optional strings (NULL -> null, then dropped). */
static json_t *obj_drop_nulls(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;

	if (!o)
		return NULL;
	json_object_foreach_safe(o, tmp, k, v)
		if (json_is_null(v))
			json_object_del(o, k);
	return o;
}

json_t *vgm_wire_claim_req_encode(const vgm_wire_claim_req *r)
{
	json_t *devs = json_array(), *o;

	if (!devs)
		return NULL;
	for (size_t i = 0; i < r->n_devices; i++) {
		const vgm_wire_device *d = &r->devices[i];

		if (json_array_append_new(devs, obj_drop_nulls(json_pack(
			"{s:s, s:s, s:s, s:I, s:s?}", "source_id", d->source_id, "kind", d->kind,
			"profile_name", d->profile_name, "framebuffer_bytes", (json_int_t)d->framebuffer_bytes,
			"type_id", d->type_id))) < 0) {
			json_decref(devs);
			return NULL;
		}
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "migration_id", r->migration_id, "domain_uuid",
		      r->domain_uuid, "domain_name", r->domain_name, "source_host", r->source_host,
		      "devices", devs);
	return o;
}

/* ---- claim reply ---- */

void vgm_wire_claim_free(vgm_wire_claim *r)
{
	if (!r)
		return;
	free(r->claim_id);
	free(r->migration_id);
	free(r->domain_uuid);
	free(r->domain_name);
	free(r->source_host);
	free(r->state);
	free(r->stage);
	for (size_t i = 0; i < r->n_mapping; i++) {
		free(r->mapping[i].source_id);
		free(r->mapping[i].target_id);
		free(r->mapping[i].profile_name);
	}
	free(r->mapping);
	free(r);
}

static int decode_mapping(json_t *o, size_t i, vgm_wire_mapping *m, vgm_error *err)
{
	char prefix[40];
	int r;

	snprintf(prefix, sizeof(prefix), "mapping[%zu]", i);
	if (!json_is_object(o))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'mapping[%zu]' must be an object", i);
	if ((r = get_elem_string(o, prefix, "source_id", true, VGM_WIRE_MAX_ID, &m->source_id, err)) < 0 ||
	    (r = get_elem_string(o, prefix, "target_id", true, VGM_WIRE_MAX_ID, &m->target_id, err)) < 0 ||
	    (r = get_elem_string(o, prefix, "profile_name", false, VGM_WIRE_MAX_TEXT, &m->profile_name, err)) < 0 ||
	    (r = vgm_wire_get_bool(o, "created", &m->created, err)) < 0)
		return r;
	if (!vgm_uuid_valid(m->target_id) && !vgm_pci_addr_valid(m->target_id))
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field 'mapping[%zu].target_id': '%s' is not a UUID or PCI address", i,
				      m->target_id);
	if (!vgm_uuid_valid(m->source_id) && !vgm_pci_addr_valid(m->source_id))
		return vgm_error_setr(err, EINVAL, INVALID,
				      "field 'mapping[%zu].source_id': '%s' is not a UUID or PCI address", i,
				      m->source_id);
	vgm_id_normalize(m->source_id, m->source_id, strlen(m->source_id) + 1);
	vgm_id_normalize(m->target_id, m->target_id, strlen(m->target_id) + 1);
	return 0;
}

static int decode_mappings(json_t *o, vgm_wire_claim *r, vgm_error *err)
{
	json_t *arr = json_object_get(o, "mapping");
	size_t n;
	int ret;

	if (!arr || !json_is_array(arr))
		return vgm_error_setr(err, EINVAL, INVALID, "field 'mapping' must be an array");
	n = json_array_size(arr);
	if (n > VGM_WIRE_MAX_DEVICES)
		return vgm_error_setr(err, EINVAL, INVALID, "field 'mapping' holds %zu entries; the limit is %d",
				      n, VGM_WIRE_MAX_DEVICES);
	r->mapping = calloc(n ? n : 1, sizeof(*r->mapping));
	if (!r->mapping)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r->n_mapping = i + 1;
		if ((ret = decode_mapping(json_array_get(arr, i), i, &r->mapping[i], err)) < 0)
			return ret;
	}
	return 0;
}

int vgm_wire_claim_from_json(json_t *o, vgm_wire_claim **out, vgm_error *err)
{
	_cleanup_(vgm_wire_claim_freep) vgm_wire_claim *r = calloc(1, sizeof(*r));
	json_t *exp;
	int ret;

	*out = NULL;
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if (!json_is_object(o))
		return vgm_error_setr(err, EINVAL, INVALID, "claim is not a JSON object");
	if ((ret = get_name(o, "claim_id", "claim_id", true, &r->claim_id, err)) < 0 ||
	    (ret = get_name(o, "migration_id", "migration_id", false, &r->migration_id, err)) < 0 ||
	    (ret = get_uuid(o, "domain_uuid", "domain_uuid", false, &r->domain_uuid, err)) < 0 ||
	    (ret = vgm_wire_get_string(o, "domain_name", false, VGM_WIRE_MAX_TEXT, &r->domain_name, err)) < 0 ||
	    (ret = get_name(o, "source_host", "source_host", false, &r->source_host, err)) < 0 ||
	    (ret = get_name(o, "state", "state", false, &r->state, err)) < 0 ||
	    (ret = get_name(o, "stage", "stage", false, &r->stage, err)) < 0 ||
	    (ret = decode_mappings(o, r, err)) < 0)
		return ret;
	exp = json_object_get(o, "expires_at");
	if (exp && !json_is_null(exp)) {
		if (!json_is_integer(exp))
			return vgm_error_setr(err, EINVAL, INVALID, "field 'expires_at' must be an integer");
		r->expires_at = json_integer_value(exp);
	}
	*out = TAKE_PTR(r);
	return 0;
}

int vgm_wire_claim_decode(const char *json, size_t len, vgm_wire_claim **out, vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	int r;

	*out = NULL;
	if ((r = vgm_wire_parse_object(json, len, &o, err)) < 0)
		return r;
	return vgm_wire_claim_from_json(o, out, err);
}

json_t *vgm_wire_claim_encode(const vgm_wire_claim *r)
{
	json_t *map = json_array();

	if (!map)
		return NULL;
	for (size_t i = 0; i < r->n_mapping; i++) {
		const vgm_wire_mapping *m = &r->mapping[i];

		if (json_array_append_new(map, obj_drop_nulls(json_pack(
			"{s:s, s:s, s:s?, s:b}", "source_id", m->source_id, "target_id", m->target_id,
			"profile_name", m->profile_name, "created", m->created))) < 0) {
			json_decref(map);
			return NULL;
		}
	}
	return obj_drop_nulls(json_pack(
		"{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:o}", "claim_id", r->claim_id,
		"migration_id", r->migration_id, "domain_uuid", r->domain_uuid, "domain_name",
		r->domain_name, "source_host", r->source_host, "state", r->state, "stage", r->stage,
		"expires_at", (json_int_t)r->expires_at, "mapping", map));
}

/* ---- errors ---- */

json_t *vgm_wire_error_encode(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code && *code ? code : "internal", "message",
			 message ? message : "");
}

static const struct {
	const char *reason;
	int err;
	int status;
} reason_table[] = {
	{ "not_found", ENOENT, 404 },
	{ "forbidden", EACCES, 403 },
	{ "method_not_allowed", EOPNOTSUPP, 405 },
	{ "payload_too_large", EFBIG, 413 },
	{ "unsupported_media_type", EPROTO, 415 },
	{ "unavailable", EAGAIN, 503 },
	{ "internal", EIO, 500 },
	{ "io_error", EIO, 500 },
	{ "store_error", EIO, 500 },
	{ "no_capacity", ENOSPC, 409 },
	{ "conflict", EEXIST, 409 },
	{ "unknown_profile", ENODEV, 409 },
	{ "claim_finished", ESTALE, 409 },
};

int vgm_wire_reason_errno(const char *reason)
{
	if (!reason)
		return EIO;
	if (strncmp(reason, "invalid", 7) == 0)
		return EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(reason_table); i++)
		if (STREQ(reason, reason_table[i].reason))
			return reason_table[i].err;
	return EIO;
}

int vgm_wire_error_status(const vgm_error *e)
{
	const char *reason = e ? e->reason : "";
	size_t n = strlen(reason);

	if (strncmp(reason, "invalid", 7) == 0)
		return 400;
	for (size_t i = 0; i < ARRAY_SIZE(reason_table); i++)
		if (STREQ(reason, reason_table[i].reason))
			return reason_table[i].status;
	if (n > 10 && STREQ(reason + n - 10, "_not_found"))
		return 404;
	if (n > 0) /* any other stable reason is a refusal: the request was fine, the state says no */
		return 409;
	switch (e ? e->code : EIO) {
	case EINVAL: return 400;
	case ENOENT: return 404;
	case EFBIG: case E2BIG: return 413;
	case EEXIST: case EBUSY: case ENOSPC: return 409;
	default: return 500;
	}
}

static int status_errno(int status)
{
	switch (status) {
	case 400: return EINVAL;
	case 403: return EACCES;
	case 404: return ENOENT;
	case 409: return EBUSY;
	case 413: return EFBIG;
	case 503: return EAGAIN;
	default: return EIO;
	}
}

int vgm_wire_error_decode(const char *json, size_t len, int http_status, vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	const char *code, *msg;
	int r;

	if (vgm_wire_parse_object(json, len, &o, NULL) < 0)
		return vgm_error_setr(err, status_errno(http_status), "internal",
				      "agent answered HTTP %d without an error body", http_status);
	code = json_string_value(json_object_get(o, "code"));
	msg = json_string_value(json_object_get(o, "message"));
	if (!code || !msg)
		return vgm_error_setr(err, status_errno(http_status), "internal",
				      "agent answered HTTP %d without an error body", http_status);
	if (*msg)
		r = vgm_error_setr(err, status_errno(http_status), code, "%.*s", VGM_WIRE_MAX_MESSAGE, msg);
	else
		r = vgm_error_setr(err, status_errno(http_status), code,
				   "agent answered HTTP %d (%.64s) without a message", http_status, code);
	return r;
}

/* ---- hook event ---- */

void vgm_wire_hook_event_free(vgm_wire_hook_event *e)
{
	if (!e)
		return;
	free(e->domain_uuid);
	free(e->domain_name);
	free(e->op);
	free(e->sub_op);
	free(e);
}

int vgm_wire_hook_event_decode(const char *json, size_t len, vgm_wire_hook_event **out, vgm_error *err)
{
	_cleanup_(vgm_wire_hook_event_freep) vgm_wire_hook_event *e = NULL;
	_cleanup_(json_decrefp) json_t *o = NULL;
	int r;

	*out = NULL;
	if ((r = vgm_wire_parse_object(json, len, &o, err)) < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((r = get_uuid(o, "domain_uuid", "domain_uuid", false, &e->domain_uuid, err)) < 0 ||
	    (r = vgm_wire_get_string(o, "domain_name", true, VGM_WIRE_MAX_TEXT, &e->domain_name, err)) < 0 ||
	    (r = get_name(o, "op", "op", true, &e->op, err)) < 0 ||
	    (r = get_name(o, "sub_op", "sub_op", false, &e->sub_op, err)) < 0)
		return r;
	*out = TAKE_PTR(e);
	return 0;
}

json_t *vgm_wire_hook_event_encode(const vgm_wire_hook_event *e)
{
	return obj_drop_nulls(json_pack("{s:s?, s:s, s:s, s:s?}", "domain_uuid", e->domain_uuid,
					"domain_name", e->domain_name, "op", e->op, "sub_op", e->sub_op));
}

/* ---- host cordon ---- */

int vgm_wire_cordon_req_decode(const char *json, size_t len, char **reason, vgm_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	int r;

	*reason = NULL;
	if (len == 0)
		return 0;
	if ((r = vgm_wire_parse_object(json, len, &o, err)) < 0)
		return r;
	return vgm_wire_get_string(o, "reason", false, 256, reason, err);
}

json_t *vgm_wire_cordon_req_encode(const char *reason)
{
	return obj_drop_nulls(json_pack("{s:s?}", "reason", reason));
}

int vgm_wire_cordon_set(json_t *host, bool cordoned, const char *reason)
{
	if (json_object_set_new(host, "cordoned", json_boolean(cordoned)) < 0 ||
	    json_object_set_new(host, "cordon_reason", reason ? json_string(reason) : json_null()) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- migration request ---- */

void vgm_wire_migration_req_free(vgm_wire_migration_req *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->to);
	free(r);
}

/* An optional limit: absent (or null) is "not set", never 0. */
static int get_limit(json_t *o, const char *field, vgm_limit *out, vgm_error *err)
{
	uint64_t v = 0;
	int r;

	*out = VGM_LIMIT_UNSET;
	if (json_is_null(json_object_get(o, field)) || !json_object_get(o, field))
		return 0;
	if ((r = vgm_wire_get_u64(o, field, false, &v, err)) < 0)
		return r;
	if (v > INT64_MAX)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "field '%s' is too large", field);
	*out = vgm_limit_of(v);
	return 0;
}

static void set_limit(json_t *o, const char *field, vgm_limit l)
{
	if (o && l.set)
		json_object_set_new(o, field, json_integer((json_int_t)l.value));
}

int vgm_wire_migration_req_decode(const char *json, size_t len, vgm_wire_migration_req **out,
				 vgm_error *err)
{
	_cleanup_(vgm_wire_migration_req_freep) vgm_wire_migration_req *r = NULL;
	_cleanup_(json_decrefp) json_t *o = NULL;
	int ret;

	*out = NULL;
	if ((ret = vgm_wire_parse_object(json, len, &o, err)) < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((ret = vgm_wire_get_string(o, "domain", true, VGM_WIRE_MAX_TEXT, &r->domain, err)) < 0 ||
	    (ret = get_name(o, "to", "to", true, &r->to, err)) < 0 ||
	    (ret = get_limit(o, "max_downtime_ms", &r->max_downtime_ms, err)) < 0 ||
	    (ret = get_limit(o, "bandwidth_bps", &r->bandwidth_bps, err)) < 0 ||
	    (ret = get_limit(o, "timeout_ms", &r->timeout_ms, err)) < 0 ||
	    (ret = vgm_wire_get_bool(o, "dry_run", &r->dry_run, err)) < 0 ||
	    (ret = vgm_wire_get_bool(o, "force", &r->force, err)) < 0)
		return ret;
	*out = TAKE_PTR(r);
	return 0;
}

json_t *vgm_wire_migration_req_encode(const vgm_wire_migration_req *r)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "domain", r->domain, "to", r->to, "dry_run",
			      r->dry_run, "force", r->force);

	set_limit(o, "max_downtime_ms", r->max_downtime_ms);
	set_limit(o, "bandwidth_bps", r->bandwidth_bps);
	set_limit(o, "timeout_ms", r->timeout_ms);
	return o;
}

json_t *vgm_wire_peers_encode(const vgm_wire_peer_info *p, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++) {
		json_t *e = json_pack("{s:s, s:s, s:s}", "address", p[i].address, "libvirt_uri",
				      p[i].libvirt_uri, "migration",
				      p[i].migration_tls ? "tls" : "clear text");
		if (!e || json_object_set_new(o, p[i].name, e) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
