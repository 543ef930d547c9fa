/* profile.c: what an NVIDIA vGPU profile is, read from its name and description.
 *
 * The description is sysfs text from the vendor driver ("num_heads=1,
 * frl_config=60, framebuffer=4096M, max_resolution=4096x2160, max_instance=6")
 * and is treated as outside input: it is parsed into a scratch profile and
 * only moved into the caller's profile when the whole string is well formed,
 * so a bad description never leaves a half-filled profile behind.
 *
 * Profile names follow "<vendor> <board>-[<slices>-]<FB GB><class>[suffix]",
 * e.g. "GRID M10-2Q", "NVIDIA A100-4C", "NVIDIA H100-1-10C".  The board is
 * everything between the vendor word and the profile part, kept verbatim so
 * variants (A100D, H100XM, H200X) stay distinct boards. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device-internal.h"

#define DESC_MAX 4096 /* far above any real description */

const char *vgm_backend_to_string(vgm_backend b)
{
	return b == VGM_BACKEND_VF ? "vf" : "mdev";
}

void vgm_kv_array_free(vgm_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void vgm_profile_clear(vgm_profile *p)
{
	if (!p)
		return;
	free(p->type_id);
	free(p->name);
	free(p->description);
	free(p->device_api);
	free(p->max_resolution);
	vgm_kv_array_free(p->extra, p->n_extra);
	memset(p, 0, sizeof(*p));
}

/* Skip the vendor word ("NVIDIA ", "GRID ") if the name has one. */
static const char *name_skip_vendor(const char *name)
{
	const char *sp = strrchr(name, ' ');
	return sp ? sp + 1 : name;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The profile part of a name: its last '-' component, e.g. "10C", or NULL. */
static const char *name_profile_part(const char *name)
{
	const char *dash = strrchr(name_skip_vendor(name), '-');
	return dash && dash[1] ? dash + 1 : NULL;
}

char *vgm_profile_board(const char *name)
{
	if (!name)
		return NULL;
	const char *s = name_skip_vendor(name);
	const char *end = strrchr(s, '-');
	if (!end || end == s)
		return NULL;
	/* Drop MIG slice counts ("H100-1-10C" -> "H100"). */
	for (;;) {
		const char *prev = end;
		while (prev > s && prev[-1] != '-')
			prev--;
		if (prev == s || !all_digits(prev, (size_t)(end - prev)))
			break;
		end = prev - 1;
	}
	return strndup(s, (size_t)(end - s));
}

/* License class: the first letter after the framebuffer digits ("4C" -> 'C'). */
static char name_license_class(const char *name)
{
	const char *part = name ? name_profile_part(name) : NULL;
	if (!part || !isdigit((unsigned char)*part))
		return 0;
	while (isdigit((unsigned char)*part))
		part++;
	char c = (char)toupper((unsigned char)*part);
	return strchr("QCBA", c) && c ? c : 0;
}

uint64_t vgm_profile_framebuffer_from_name(const char *name)
{
	const char *part = name ? name_profile_part(name) : NULL;
	if (!part || !isdigit((unsigned char)*part))
		return 0;
	char *end = NULL;
	unsigned long gb = strtoul(part, &end, 10);
	if (!end || !isalpha((unsigned char)*end) || gb > 4096)
		return 0;
	return (uint64_t)gb << 30;
}

static int parse_uint(const char *key, const char *v, unsigned *out, vgm_error *err)
{
	char *end = NULL;
	if (!isdigit((unsigned char)v[0]))
		goto bad;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno || *end || x > UINT_MAX)
		goto bad;
	*out = (unsigned)x;
	return 0;
bad:
	return vgm_error_setr(err, EINVAL, "bad_description",
			      "vGPU description: %s='%.32s' is not an unsigned number", key, v);
}

static int parse_size(const char *v, uint64_t *out, vgm_error *err)
{
	char *end = NULL;
	unsigned shift = 0;
	if (!isdigit((unsigned char)v[0]))
		goto bad;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno)
		goto bad;
	switch (toupper((unsigned char)*end)) {
	case '\0': shift = 0; break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	default: goto bad;
	}
	if (*end && end[1])
		goto bad;
	if (x > (UINT64_MAX >> shift))
		goto bad;
	*out = (uint64_t)x << shift;
	return 0;
bad:
	return vgm_error_setr(err, EINVAL, "bad_description",
			      "vGPU description: framebuffer='%.32s' is not a size like 4096M", v);
}

static bool digits_then(const char **s, char stop)
{
	const char *p = *s;
	while (isdigit((unsigned char)*p))
		p++;
	if (p == *s || p - *s > 6 || *p != stop)
		return false;
	*s = p;
	return true;
}

static int parse_resolution(const char *v, char **out, vgm_error *err)
{
	const char *s = v;
	if (!digits_then(&s, 'x') || (s++, !digits_then(&s, '\0')))
		return vgm_error_setr(err, EINVAL, "bad_description",
				      "vGPU description: max_resolution='%.32s' is not WIDTHxHEIGHT", v);
	free(*out);
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

static int add_extra(vgm_profile *p, const char *k, const char *v)
{
	vgm_kv *n = realloc(p->extra, (p->n_extra + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->extra = n;
	n[p->n_extra].key = strdup(k);
	n[p->n_extra].value = strdup(v);
	p->n_extra++;
	return n[p->n_extra - 1].key && n[p->n_extra - 1].value ? 0 : -ENOMEM;
}

static bool key_valid(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' && *k != '.')
			return false;
	return true;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int parse_pair(vgm_profile *p, char *item, vgm_error *err)
{
	char *eq = strchr(item, '=');
	if (!eq)
		return vgm_error_setr(err, EINVAL, "bad_description",
				      "vGPU description: '%.48s' is not key=value", item);
	*eq = '\0';
	char *k = trim(item), *v = trim(eq + 1);
	if (!key_valid(k))
		return vgm_error_setr(err, EINVAL, "bad_description",
				      "vGPU description: key '%.48s' is not a plain word", k);
	if (STREQ(k, "framebuffer"))
		return parse_size(v, &p->framebuffer_bytes, err);
	if (STREQ(k, "max_instance"))
		return parse_uint(k, v, &p->max_instances, err);
	if (STREQ(k, "num_heads"))
		return parse_uint(k, v, &p->num_heads, err);
	if (STREQ(k, "frl_config"))
		return parse_uint(k, v, &p->frl_config, err);
	if (STREQ(k, "max_resolution"))
		return parse_resolution(v, &p->max_resolution, err);
	return add_extra(p, k, v);
}

static void profile_take_parsed(vgm_profile *p, vgm_profile *tmp)
{
	free(p->max_resolution);
	vgm_kv_array_free(p->extra, p->n_extra);
	p->framebuffer_bytes = tmp->framebuffer_bytes;
	p->max_instances = tmp->max_instances;
	p->num_heads = tmp->num_heads;
	p->frl_config = tmp->frl_config;
	p->max_resolution = TAKE_PTR(tmp->max_resolution);
	p->extra = TAKE_PTR(tmp->extra);
	p->n_extra = tmp->n_extra;
	tmp->n_extra = 0;
}

int vgm_profile_parse_description(vgm_profile *p, const char *desc, vgm_error *err)
{
	if (p->name)
		p->license_class = name_license_class(p->name);
	if (!desc)
		return 0;
	size_t len = strnlen(desc, DESC_MAX + 1);
	if (len > DESC_MAX)
		return vgm_error_setr(err, EINVAL, "bad_description",
				      "vGPU description is longer than %d bytes", DESC_MAX);
	_cleanup_free_ char *copy = strdup(desc);
	if (!copy)
		return -ENOMEM;
	vgm_profile tmp = { 0 };
	int r = 0;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (!*trim(item))
			continue;
		r = parse_pair(&tmp, item, err);
		if (r < 0)
			break;
	}
	if (r == 0)
		profile_take_parsed(p, &tmp);
	vgm_profile_clear(&tmp);
	return r == -ENOMEM ? vgm_error_set(err, ENOMEM, "out of memory") : r;
}
