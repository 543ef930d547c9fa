/* facts-json.c: host facts to and from JSON (GET /v1/host, the peer exchange).
 *
 * The decoder reads a peer's answer, i.e. outside input: every field's type,
 * length and count is checked, strings must be printable text, versions must
 * be plain "major.minor.micro".  Unknown keys are ignored so a newer peer can
 * add facts; host_name and protocol_version are required.  Versions travel
 * as strings ("9.0.0"), null when unknown.  vgpu_types is informational and
 * not decoded; pgpu_metadata must be hex (NVML blobs, see nvml.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat/compat.h"

#define FACT_TEXT_MAX 256
#define FACT_NOTE_MAX 1024
#define FACT_LIST_MAX 64

static json_t *version_json(unsigned long long v)
{
	char buf[32];
	return v ? json_string(vgm_version_format(v, buf, sizeof(buf))) : json_null();
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *opt_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *tristate_json(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static json_t *types_json(const vgm_facts *f)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < f->n_vgpu_types; i++)
		if (json_array_append_new(a, json_pack("{s:s, s:I}", "name", f->vgpu_types[i].name,
						       "framebuffer_bytes",
						       (json_int_t)f->vgpu_types[i].framebuffer_bytes)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* What NVML added; peers read nvml, device_streaming and pgpu_metadata. */
static json_t *nvml_json(const vgm_facts *f, json_t *o)
{
	if (o && json_object_update_new(o, json_pack("{s:b, s:o, s:o, s:o}", "nvml", f->nvml,
						     "device_streaming",
						     tristate_json(f->device_streaming),
						     "pgpu_metadata",
						     strv_json(f->pgpu_metadata, f->n_pgpu_metadata),
						     "vgpu_types", types_json(f))) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *vgm_facts_to_json(const vgm_facts *f)
{
	json_t *backends = json_array();
	const char *first = NULL;
	for (int b = VGM_BACKEND_MDEV; backends && b <= VGM_BACKEND_VF; b++)
		if (f->backends & (1u << b)) {
			first = first ? first : vgm_backend_to_string((vgm_backend)b);
			json_array_append_new(backends, json_string(vgm_backend_to_string((vgm_backend)b)));
		}
	const char *ecc = vgm_ecc_to_string(f->ecc);
	return nvml_json(f, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o}", "host_name",
			 opt_str(f->host_name), "arch", opt_str(f->arch), "kernel_version",
			 opt_str(f->kernel_version), "libvirt_version",
			 version_json(f->libvirt_version), "qemu_version",
			 version_json(f->qemu_version), "backends", backends, "backend", opt_str(first),
			 "driver_version", opt_str(f->driver_version), "ecc_mode", opt_str(ecc),
			 "boards", strv_json(f->boards, f->n_boards), "protocol_version",
			 (json_int_t)f->protocol_version, "protocol_oldest",
			 (json_int_t)(f->protocol_oldest ? f->protocol_oldest : f->protocol_version),
			 "notes", strv_json(f->notes, f->n_notes)));
}

static int bad(vgm_error *err, const char *field, const char *why)
{
	return vgm_error_setr(err, EINVAL, "invalid_facts", "host facts: field '%s' %s", field, why);
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (iscntrl((unsigned char)s[i]))
			return false;
	return true;
}

/* Optional printable string; null or absent leaves *out NULL. */
static int get_text(const json_t *j, const char *key, size_t max, char **out, vgm_error *err)
{
	const json_t *v = json_object_get(j, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(err, key, "must be a string or null");
	if (!text_ok(json_string_value(v), max))
		return bad(err, key, "must be 1 to 256 printable characters");
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int get_version(const json_t *j, const char *key, unsigned long long *out, vgm_error *err)
{
	const json_t *v = json_object_get(j, key);
	unsigned p[3];
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s || strlen(s) > 32 || strspn(s, "0123456789.") != strlen(s) ||
	    vgm_version_parse(s, p) < 0 || p[1] > 999 || p[2] > 999 || p[0] > 1000000)
		return bad(err, key, "must be a version like \"9.0.0\" or null");
	*out = (unsigned long long)p[0] * 1000000 + p[1] * 1000ull + p[2];
	return 0;
}

static int get_strv(const json_t *j, const char *key, size_t max, char ***out, size_t *n,
		    vgm_error *err)
{
	const json_t *v = json_object_get(j, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > FACT_LIST_MAX)
		return bad(err, key, "must be an array of at most 64 strings");
	*out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));
		if (!s || !text_ok(s, max))
			return bad(err, key, "must hold short printable strings only");
		if (!((*out)[(*n)++] = strdup(s)))
			return -ENOMEM;
	}
	return 0;
}

static int get_backends(const json_t *j, unsigned *out, vgm_error *err)
{
	const json_t *v = json_object_get(j, "backends");
	if (!v || json_is_null(v)) {
		const char *one = json_string_value(json_object_get(j, "backend"));
		if (one)
			*out |= STREQ(one, "vf") ? VGM_HAS_VF : STREQ(one, "mdev") ? VGM_HAS_MDEV : 0;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > 8)
		return bad(err, "backends", "must be an array like [\"mdev\"]");
	for (size_t i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));
		if (!s)
			return bad(err, "backends", "must hold strings");
		*out |= STREQ(s, "vf") ? VGM_HAS_VF : STREQ(s, "mdev") ? VGM_HAS_MDEV : 0;
	}
	return 0;
}

static int get_ecc(const json_t *j, vgm_ecc_mode *out, vgm_error *err)
{
	const json_t *v = json_object_get(j, "ecc_mode");
	if (!v || json_is_null(v))
		return 0;
	*out = vgm_ecc_from_string(json_string_value(v));
	if (*out == VGM_ECC_UNKNOWN)
		return bad(err, "ecc_mode", "must be \"enabled\", \"disabled\", \"mixed\" or null");
	return 0;
}

static int get_nvml(const json_t *j, vgm_facts *f, vgm_error *err)
{
	const json_t *nv = json_object_get(j, "nvml"), *ds = json_object_get(j, "device_streaming");
	if ((nv && !json_is_boolean(nv)) || (ds && !json_is_boolean(ds) && !json_is_null(ds)))
		return bad(err, nv && !json_is_boolean(nv) ? "nvml" : "device_streaming",
			   "must be true, false (or null)");
	f->nvml = json_is_true(nv);
	f->device_streaming = json_is_boolean(ds) ? json_is_true(ds) : -1;
	int r = get_strv(j, "pgpu_metadata", 2 * VGM_NVML_BLOB_MAX, &f->pgpu_metadata,
			 &f->n_pgpu_metadata, err);
	for (size_t i = 0; r >= 0 && i < f->n_pgpu_metadata; i++)
		if (strspn(f->pgpu_metadata[i], "0123456789abcdef") != strlen(f->pgpu_metadata[i]))
			r = bad(err, "pgpu_metadata", "must hold lowercase hex strings");
	return r;
}

static int get_required(const json_t *j, vgm_facts *f, vgm_error *err)
{
	const json_t *pv = json_object_get(j, "protocol_version");
	if (!json_is_string(json_object_get(j, "host_name")))
		return bad(err, "host_name", "is required and must be a string");
	if (!json_is_integer(pv) || json_integer_value(pv) < 1 || json_integer_value(pv) > 1000000)
		return bad(err, "protocol_version", "is required and must be an integer from 1");
	f->protocol_version = (unsigned)json_integer_value(pv);
	/* protocol_oldest arrived with protocol 2; before it a host spoke one version */
	const json_t *po = json_object_get(j, "protocol_oldest");
	f->protocol_oldest = f->protocol_version;
	if (po && !json_is_null(po)) {
		if (!json_is_integer(po) || json_integer_value(po) < 1 ||
		    json_integer_value(po) > (json_int_t)f->protocol_version)
			return bad(err, "protocol_oldest", "must be an integer from 1 to protocol_version");
		f->protocol_oldest = (unsigned)json_integer_value(po);
	}
	return get_text(j, "host_name", FACT_TEXT_MAX, &f->host_name, err);
}

int vgm_facts_from_json(const json_t *j, vgm_facts **out, vgm_error *err)
{
	if (!json_is_object(j))
		return vgm_error_setr(err, EINVAL, "invalid_facts", "host facts must be a JSON object");
	_cleanup_(vgm_facts_freep) vgm_facts *f = calloc(1, sizeof(*f));
	if (!f)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r;
	if ((r = get_required(j, f, err)) < 0 ||
	    (r = get_text(j, "arch", FACT_TEXT_MAX, &f->arch, err)) < 0 ||
	    (r = get_text(j, "kernel_version", FACT_TEXT_MAX, &f->kernel_version, err)) < 0 ||
	    (r = get_text(j, "driver_version", FACT_TEXT_MAX, &f->driver_version, err)) < 0 ||
	    (r = get_version(j, "libvirt_version", &f->libvirt_version, err)) < 0 ||
	    (r = get_version(j, "qemu_version", &f->qemu_version, err)) < 0 ||
	    (r = get_backends(j, &f->backends, err)) < 0 || (r = get_ecc(j, &f->ecc, err)) < 0 ||
	    (r = get_strv(j, "boards", 64, &f->boards, &f->n_boards, err)) < 0 ||
	    (r = get_strv(j, "notes", FACT_NOTE_MAX, &f->notes, &f->n_notes, err)) < 0 ||
	    (r = get_nvml(j, f, err)) < 0)
		return r == -ENOMEM ? vgm_error_set(err, ENOMEM, "out of memory") : r;
	*out = TAKE_PTR(f);
	return 0;
}
