/* check.c: the pre-checks of a vGPU live migration, as pure functions.
 *
 * Inputs are the facts of both hosts, the domain, the profiles its vGPUs use
 * and the profiles the target offers; no I/O happens here.  Every check adds
 * exactly one result per subject (per host, per profile name, or per pair),
 * passed or failed, so a report lists everything that was looked at.  The
 * limits come from NVIDIA's and Red Hat's support statements (FACTS.md 1-2):
 * x86_64, Linux >= 5.18, QEMU >= 8.1, libvirt >= 8.6.0, same driver, same
 * ECC mode, same board, same profile and framebuffer, no vIOMMU, no post-copy. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat/compat.h"

#define ONE_GIB (1ull << 30)

static int add(vgm_check_list *l, const char *name, const char *host, const char *code,
	       const char *fmt, ...) _printf_(5, 6);

static int add(vgm_check_list *l, const char *name, const char *host, const char *code,
	       const char *fmt, ...)
{
	vgm_check_result *n = realloc(l->items, (l->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	l->items = n;
	vgm_check_result *r = &n[l->n++];
	memset(r, 0, sizeof(*r));
	r->ok = STREQ(code, "ok");
	r->unknown = STREQ(code, "ecc_unknown") || STREQ(code, "nvml_unknown") ||
		     STREQ(code, "streaming_unknown");
	l->n_failed += !r->ok && !r->unknown;
	l->n_unknown += r->unknown;
	va_list ap;
	va_start(ap, fmt);
	int k = vasprintf(&r->message, fmt, ap);
	va_end(ap);
	if (k < 0)
		r->message = NULL;
	r->name = strdup(name);
	r->host = host ? strdup(host) : NULL;
	r->code = strdup(code);
	return r->message && r->name && r->code && (!host || r->host) ? 0 : -ENOMEM;
}

void vgm_check_list_free(vgm_check_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].host);
		free(l->items[i].code);
		free(l->items[i].message);
	}
	free(l->items);
	free(l);
}

int vgm_check_list_refusal(const vgm_check_list *l, vgm_error *err)
{
	const vgm_check_result *first = NULL;
	char more[256] = "";
	size_t used = 0, n_more = 0;
	for (size_t i = 0; i < l->n; i++) {
		const vgm_check_result *c = &l->items[i];
		if (c->ok || c->unknown)
			continue;
		if (!first) {
			first = c;
			continue;
		}
		n_more++;
		if (used < sizeof(more))
			used += (size_t)snprintf(more + used, sizeof(more) - used, "%s%s",
						 n_more > 1 ? ", " : "", c->code);
	}
	if (!first)
		return 0;
	if (!n_more)
		return vgm_error_setr(err, EINVAL, first->code, "%s", first->message);
	return vgm_error_setr(err, EINVAL, first->code, "%s; %zu more check%s failed (%s)",
			      first->message, n_more, n_more == 1 ? "" : "s", more);
}

const vgm_check_result *vgm_check_list_find(const vgm_check_list *l, const char *code)
{
	for (size_t i = 0; i < l->n; i++)
		if (!l->items[i].ok && STREQ(l->items[i].code, code))
			return &l->items[i];
	return NULL;
}

static const char *host_of(const vgm_facts *f, const char *fallback)
{
	return f->host_name ? f->host_name : fallback;
}

static const char *why_unknown(const vgm_facts *f)
{
	return f->n_notes ? f->notes[0] : "not reported";
}

static int check_arch(vgm_check_list *l, const vgm_facts *f, const char *host)
{
	if (f->arch && STREQ(f->arch, VGM_REQUIRED_ARCH))
		return add(l, "arch", host, "ok", "%s is %s", host, f->arch);
	return add(l, "arch", host, "arch_unsupported",
		   "%s is %s; NVIDIA supports vGPU live migration on %s hosts only", host,
		   f->arch ? f->arch : "of unknown architecture", VGM_REQUIRED_ARCH);
}

static int check_kernel(vgm_check_list *l, const vgm_facts *f, const char *host)
{
	unsigned v[3];
	if (!f->kernel_version || vgm_version_parse(f->kernel_version, v) < 0)
		return add(l, "kernel", host, "version_unknown",
			   "%s did not report a usable kernel version (%s); vGPU live migration "
			   "needs Linux >= %s on both hosts",
			   host, f->kernel_version ? f->kernel_version : why_unknown(f), VGM_MIN_KERNEL);
	if (vgm_version_cmp(f->kernel_version, VGM_MIN_KERNEL) >= 0)
		return add(l, "kernel", host, "ok", "%s runs Linux %s (>= %s)", host, f->kernel_version,
			   VGM_MIN_KERNEL);
	return add(l, "kernel", host, "kernel_too_old",
		   "%s runs Linux %s; vGPU live migration needs Linux >= %s (VFIO migration v2) on "
		   "both hosts", host, f->kernel_version, VGM_MIN_KERNEL);
}

/* libvirt or QEMU: a version in libvirt's encoding against a minimum. */
static int check_component(vgm_check_list *l, const char *host, const vgm_facts *f,
			    const char *what, unsigned long long have, const char *min,
			    const char *code)
{
	char buf[32];
	unsigned m[3];
	vgm_version_parse(min, m);
	unsigned long long need = m[0] * 1000000ull + m[1] * 1000ull + m[2];
	const char *name = STREQ(what, "libvirt") ? "libvirt" : "qemu";
	if (!have)
		return add(l, name, host, "version_unknown",
			   "%s did not report its %s version (%s); vGPU live migration needs %s "
			   ">= %s on both hosts",
			   host, what, why_unknown(f), what, min);
	vgm_version_format(have, buf, sizeof(buf));
	if (have >= need)
		return add(l, name, host, "ok", "%s runs %s %s (>= %s)", host, what, buf, min);
	return add(l, name, host, code,
		   "%s runs %s %s; vGPU live migration needs %s >= %s on both hosts", host, what, buf,
		   what, min);
}

static vgm_protocol_range facts_protocol(const vgm_facts *f)
{
	unsigned oldest = f->protocol_oldest ? f->protocol_oldest : f->protocol_version;

	return (vgm_protocol_range){ oldest, f->protocol_version };
}

/* Hosts one release apart speak a common version (rolling upgrades);
 * further apart they do not, and the message names both and which to
 * upgrade.  The pair is judged once, on the target's row (other == NULL on
 * the source's row, which only states what the source speaks). */
static int check_protocol(vgm_check_list *l, const vgm_facts *f, const char *host,
			  const vgm_facts *other, const char *other_host)
{
	vgm_protocol_range mine = facts_protocol(f), theirs = other ? facts_protocol(other) : mine;
	unsigned common = vgm_protocol_common(mine, theirs);
	vgm_error e = { 0 };
	char buf[32];

	vgm_protocol_format(mine, buf, sizeof(buf));
	if (!other)
		return add(l, "protocol", host, "ok", "%s speaks vgpumig protocol %s", host, buf);
	if (common)
		return add(l, "protocol", host, "ok", "%s speaks vgpumig protocol %s; %s uses %u",
			   host, buf, other_host, common);
	vgm_protocol_accept(theirs, other_host, mine, host, &e);
	return add(l, "protocol", host, "protocol_unsupported", "%s", e.message);
}

static int check_host(vgm_check_list *l, const vgm_facts *f, const char *host,
		      const vgm_facts *other, const char *other_host)
{
	int r;
	if ((r = check_arch(l, f, host)) < 0 || (r = check_kernel(l, f, host)) < 0 ||
	    (r = check_component(l, host, f, "libvirt", f->libvirt_version, VGM_MIN_LIBVIRT,
				 "libvirt_too_old")) < 0 ||
	    (r = check_component(l, host, f, "QEMU", f->qemu_version, VGM_MIN_QEMU,
				 "qemu_too_old")) < 0)
		return r;
	return check_protocol(l, f, host, other, other_host);
}

static int check_driver(vgm_check_list *l, const vgm_facts *s, const char *sh,
			const vgm_facts *t, const char *th)
{
	if (!s->driver_version || !t->driver_version)
		return add(l, "driver", NULL, "driver_mismatch",
			   "%s reports no NVIDIA vGPU host driver; vGPU live migration needs the same "
			   "host driver version on both hosts",
			   !s->driver_version ? sh : th);
	if (STREQ(s->driver_version, t->driver_version))
		return add(l, "driver", NULL, "ok", "%s and %s run NVIDIA driver %s", sh, th,
			   s->driver_version);
	return add(l, "driver", NULL, "driver_mismatch",
		   "%s runs NVIDIA driver %s and %s runs %s; vGPU live migration needs the same host "
		   "driver version on both hosts",
		   sh, s->driver_version, th, t->driver_version);
}

static int check_ecc(vgm_check_list *l, const vgm_facts *s, const char *sh, const vgm_facts *t,
		     const char *th)
{
	if (s->ecc == VGM_ECC_UNKNOWN || t->ecc == VGM_ECC_UNKNOWN)
		return add(l, "ecc", NULL, "ecc_unknown",
			   "ECC mode of %s is unknown (NVML not available there); not compared: vGPU "
			   "live migration needs the same ECC mode on both hosts (see nvidia-smi -q)",
			   s->ecc == VGM_ECC_UNKNOWN ? sh : th);
	if (s->ecc == VGM_ECC_MIXED || t->ecc == VGM_ECC_MIXED)
		return add(l, "ecc", NULL, "ecc_mismatch",
			   "%s has GPUs with ECC enabled and others with ECC disabled; set one ECC "
			   "mode on every GPU of both hosts",
			   s->ecc == VGM_ECC_MIXED ? sh : th);
	if (s->ecc == t->ecc)
		return add(l, "ecc", NULL, "ok", "ECC is %s on %s and %s", vgm_ecc_to_string(s->ecc),
			   sh, th);
	return add(l, "ecc", NULL, "ecc_mismatch",
		   "%s has ECC %s and %s has ECC %s; vGPU live migration needs the same ECC mode on "
		   "both hosts",
		   sh, vgm_ecc_to_string(s->ecc), th, vgm_ecc_to_string(t->ecc));
}

/* NVIDIA's own verdict (nvmlGetVgpuCompatibility), computed by the caller. */
static int check_nvml(vgm_check_list *l, const vgm_nvml_summary *v, const char *sh,
		      const char *th)
{
	if (!v || v->verdict < 0)
		return add(l, "nvml", NULL, "nvml_unknown",
			   "NVIDIA's compatibility verdict for %s -> %s is unknown (%s); not asked",
			   sh, th, v && v->why[0] ? v->why : "NVML not available");
	if (v->verdict > 0)
		return add(l, "nvml", NULL, "ok",
			   "NVML says the domain's vGPUs can migrate live from %s to %s", sh, th);
	return add(l, "nvml", NULL, "nvml_incompatible",
		   "NVML says vGPU %s cannot migrate live from %s to %s (limited by %s); use "
		   "matching drivers and GPUs, or 'vgpumig cold-migrate'",
		   v->id, sh, th, vgm_nvml_limit_text(v->limit));
}

/* Device streaming moves vGPU state during pre-copy; without it the whole
 * framebuffer moves at switchover.  Not a blocker, but the plan depends on it. */
static int check_streaming(vgm_check_list *l, const vgm_facts *s, const char *sh,
			   const vgm_facts *t, const char *th)
{
	if (s->device_streaming < 0 || t->device_streaming < 0)
		return add(l, "streaming", NULL, "streaming_unknown",
			   "whether %s streams vGPU state during pre-copy is unknown (NVML not "
			   "available there); the plan assumes the framebuffer moves at switchover",
			   s->device_streaming < 0 ? sh : th);
	if (s->device_streaming && t->device_streaming)
		return add(l, "streaming", NULL, "ok",
			   "%s and %s stream vGPU state during pre-copy", sh, th);
	return add(l, "streaming", NULL, "ok",
		   "%s does not stream vGPU state during pre-copy; its framebuffer moves at "
		   "switchover", !s->device_streaming ? sh : th);
}

static bool facts_have_board(const vgm_facts *f, const char *b)
{
	for (size_t i = 0; i < f->n_boards; i++)
		if (STREQ(f->boards[i], b))
			return true;
	return false;
}

static void join_boards(const vgm_facts *f, char *buf, size_t n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < f->n_boards && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", f->boards[i]);
	if (!f->n_boards)
		snprintf(buf, n, "no NVIDIA vGPU board");
}

/* Is wanted[i] the first of its board (or name) among wanted[0..i]? */
static bool first_of_board(const vgm_profile_ref *w, size_t i, const char *board)
{
	for (size_t j = 0; j < i; j++) {
		_cleanup_free_ char *b = vgm_profile_board(w[j].name);
		if (b && STREQ(b, board))
			return false;
	}
	return true;
}

static int check_boards(vgm_check_list *l, const vgm_check_input *in, const char *th)
{
	char have[256];
	int r = 0;
	join_boards(in->target, have, sizeof(have));
	for (size_t i = 0; r >= 0 && i < in->n_wanted; i++) {
		_cleanup_free_ char *b = vgm_profile_board(in->wanted[i].name);
		if (!b)
			r = add(l, "board", th, "board_mismatch",
				"profile '%s' names no board family; vGPU live migration needs the "
				"same board on both hosts",
				in->wanted[i].name ? in->wanted[i].name : "");
		else if (!first_of_board(in->wanted, i, b))
			continue;
		else if (facts_have_board(in->target, b))
			r = add(l, "board", th, "ok", "%s has %s GPUs", th, b);
		else
			r = add(l, "board", th, "board_mismatch",
				"%s has %s, the domain's vGPUs are on %s; vGPU live migration needs "
				"the same board family (no H100 <-> H200 <-> H800, no 80GB PCIe <-> "
				"94GB NVL)",
				th, have, b);
	}
	return r;
}

static bool first_of_name(const vgm_profile_ref *w, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (STRPTR_EQ(w[j].name, w[i].name))
			return false;
	return true;
}

static void fb_text(uint64_t b, char *buf, size_t n)
{
	if (b % ONE_GIB == 0)
		snprintf(buf, n, "%llu GiB", (unsigned long long)(b / ONE_GIB));
	else
		snprintf(buf, n, "%llu MiB", (unsigned long long)(b >> 20));
}

/* Profile offered at all, enough free, and the same framebuffer. */
static int check_one_profile(vgm_check_list *l, const vgm_check_input *in, size_t i,
			     const char *sh, const char *th)
{
	const vgm_profile_ref *w = &in->wanted[i];
	unsigned need = 0, free_n = 0;
	uint64_t other_fb = 0;
	bool offered = false;
	for (size_t j = 0; j < in->n_wanted; j++)
		need += STRPTR_EQ(in->wanted[j].name, w->name);
	for (size_t j = 0; j < in->n_offered; j++) {
		const vgm_profile_ref *o = &in->offered[j];
		if (!w->name || !o->name || !STREQ(o->name, w->name))
			continue;
		offered = true;
		free_n += o->available;
		if (o->framebuffer_bytes && w->framebuffer_bytes &&
		    o->framebuffer_bytes != w->framebuffer_bytes)
			other_fb = o->framebuffer_bytes;
	}
	const char *name = w->name ? w->name : "";
	int r;
	if (!offered)
		r = add(l, "profile", th, "profile_unavailable",
			"%s offers no vGPU of profile '%s'; the target needs the same profile name",
			th, name);
	else if (free_n < need)
		r = add(l, "profile", th, "profile_unavailable",
			"%s has %u free vGPU%s of profile '%s' and the domain needs %u; free or add "
			"one on %s",
			th, free_n, free_n == 1 ? "" : "s", name, need, th);
	else
		r = add(l, "profile", th, "ok", "%s has %u free vGPU%s of profile '%s' (%u needed)",
			th, free_n, free_n == 1 ? "" : "s", name, need);
	if (r < 0 || !offered)
		return r;
	char a[32], b[32];
	fb_text(w->framebuffer_bytes, a, sizeof(a));
	fb_text(other_fb, b, sizeof(b));
	if (other_fb)
		return add(l, "framebuffer", th, "framebuffer_mismatch",
			   "profile '%s' has %s of framebuffer on %s and %s on %s; vGPU live "
			   "migration needs the same framebuffer size",
			   name, a, sh, b, th);
	return add(l, "framebuffer", th, "ok", "profile '%s' has %s of framebuffer on both hosts",
		   name, a);
}

static int check_profiles(vgm_check_list *l, const vgm_check_input *in, const char *sh,
			  const char *th)
{
	if (in->n_wanted == 0)
		return add(l, "profile", th, "ok", "the domain uses no vGPU; nothing to match on %s",
			   th);
	int r = 0;
	for (size_t i = 0; r >= 0 && i < in->n_wanted; i++)
		if (first_of_name(in->wanted, i))
			r = check_one_profile(l, in, i, sh, th);
	return r;
}

static size_t domain_vgpus(const vgm_check_input *in)
{
	size_t n = 0;
	for (size_t i = 0; in->domain && i < in->domain->n_hostdevs; i++)
		n += in->domain->hostdevs[i].type == VGM_HOSTDEV_MDEV;
	return MAX(n, in->n_wanted);
}

static int check_domain(vgm_check_list *l, const vgm_check_input *in)
{
	const char *dn = in->domain && in->domain->name ? in->domain->name : "the domain";
	if (in->domain && !in->domain->name)
		dn = "?";
	size_t n = domain_vgpus(in);
	int r = 0;
	if (in->domain && in->domain->viommu)
		r = add(l, "viommu", NULL, "viommu_present",
			"domain '%s' has a vIOMMU (<iommu> device); VFIO devices cannot migrate with "
			"a vIOMMU: remove it from the domain",
			dn);
	else if (in->domain)
		r = add(l, "viommu", NULL, "ok", "domain '%s' has no vIOMMU", dn);
	if (r < 0)
		return r;
	if (!in->postcopy)
		return add(l, "postcopy", NULL, "ok", "post-copy not requested");
	if (n == 0)
		return add(l, "postcopy", NULL, "ok", "post-copy requested; %s has no vGPU", dn);
	return add(l, "postcopy", NULL, "postcopy_forbidden",
		   "post-copy was requested for %s%s%s, which has %zu vGPU%s; vGPU state cannot move "
		   "after switchover: migrate with pre-copy only",
		   in->domain ? "domain '" : "", dn, in->domain ? "'" : "", n, n == 1 ? "" : "s");
}

int vgm_compat_check(const vgm_check_input *in, vgm_check_list **out, vgm_error *err)
{
	if (!in || !in->source || !in->target)
		return vgm_error_set(err, EINVAL, "compat check needs the facts of both hosts");
	_cleanup_(vgm_check_list_freep) vgm_check_list *l = calloc(1, sizeof(*l));
	if (!l)
		return vgm_error_set(err, ENOMEM, "out of memory");
	const char *sh = host_of(in->source, "source host");
	const char *th = host_of(in->target, "target host");
	int r;
	if ((r = check_host(l, in->source, sh, NULL, NULL)) < 0 ||
	    (r = check_host(l, in->target, th, in->source, sh)) < 0 ||
	    (r = check_driver(l, in->source, sh, in->target, th)) < 0 ||
	    (r = check_ecc(l, in->source, sh, in->target, th)) < 0 ||
	    (r = check_nvml(l, in->nvml, sh, th)) < 0 ||
	    (r = check_streaming(l, in->source, sh, in->target, th)) < 0 ||
	    (r = check_domain(l, in)) < 0 || (r = check_boards(l, in, th)) < 0 ||
	    (r = check_profiles(l, in, sh, th)) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = TAKE_PTR(l);
	return 0;
}

int vgm_compat_check_incoming(const vgm_check_input *in, vgm_check_list **out, vgm_error *err)
{
	if (!in || !in->source || !in->target)
		return vgm_error_set(err, EINVAL, "compat check needs the facts of both hosts");
	_cleanup_(vgm_check_list_freep) vgm_check_list *l = calloc(1, sizeof(*l));
	if (!l)
		return vgm_error_set(err, ENOMEM, "out of memory");
	const char *sh = host_of(in->source, "source host");
	const char *th = host_of(in->target, "target host");
	int r = 0;
	/* no recorded driver: the XML says nothing about it, so no line */
	if (in->source->driver_version)
		r = check_driver(l, in->source, sh, in->target, th);
	if (r < 0 || (r = check_ecc(l, in->source, sh, in->target, th)) < 0 ||
	    (r = check_nvml(l, in->nvml, sh, th)) < 0 || (r = check_domain(l, in)) < 0 ||
	    (r = check_boards(l, in, th)) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = TAKE_PTR(l);
	return 0;
}

json_t *vgm_check_list_to_json(const vgm_check_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < l->n; i++) {
		const vgm_check_result *c = &l->items[i];
		const char *status = c->ok ? "ok" : c->unknown ? "unknown" : "failed";
		if (json_array_append_new(a, json_pack("{s:s, s:o, s:b, s:s, s:s, s:s}", "name",
							c->name, "host",
							c->host ? json_string(c->host) : json_null(),
							"ok", c->ok, "status", status, "code", c->code,
							"message", c->message)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}
