/* test-compat.c: lib/compat: version parsing, every pre-check failing on its
 * own and all passing together, facts JSON round trip and bad JSON, and facts
 * gathered from the hand-made sysfs trees (libvirt via its test:// driver). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "compat/compat.h"
#include "compat/nvml.h"

#define GiB (1ull << 30)
#define DATA "../data/sysfs"

static void test_version_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		unsigned v[3];
	} ok[] = {
		{ "6.1.0-27-amd64", { 6, 1, 0 } },
		{ "5.18", { 5, 18, 0 } },
		{ "10.0.2", { 10, 0, 2 } },
		{ "5.14.0-427.13.1.el9_4.x86_64", { 5, 14, 0 } },
		{ "6.8.0-rc3", { 6, 8, 0 } },
		{ "5.", { 5, 0, 0 } },
		{ "9", { 9, 0, 0 } },
		{ "550.90.05", { 550, 90, 5 } },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		unsigned v[3];
		assert_int_equal(vgm_version_parse(ok[i].s, v), 0);
		if (memcmp(v, ok[i].v, sizeof(v)) != 0)
			fail_msg("%s -> %u.%u.%u", ok[i].s, v[0], v[1], v[2]);
	}
	unsigned v[3];
	assert_int_equal(vgm_version_parse("abc", v), -EINVAL);
	assert_int_equal(vgm_version_parse("", v), -EINVAL);
	assert_int_equal(vgm_version_parse(NULL, v), -EINVAL);
	assert_int_equal(vgm_version_parse("v5.18", v), -EINVAL);
	assert_int_equal(vgm_version_parse("12345678901.1", v), -EINVAL);
}

static void test_version_cmp(void **state)
{
	(void)state;
	assert_true(vgm_version_cmp("6.1.0-27-amd64", "5.18") > 0);
	assert_true(vgm_version_cmp("5.18.0", "5.18") == 0);
	assert_true(vgm_version_cmp("5.17.15", "5.18") < 0);
	assert_true(vgm_version_cmp("5.4", "5.18") < 0); /* numeric, not lexical */
	assert_true(vgm_version_cmp("junk", "1.0") < 0);
	assert_true(vgm_version_cmp("1.0", "junk") > 0);
	char buf[32];
	assert_string_equal(vgm_version_format(9000000, buf, sizeof(buf)), "9.0.0");
	assert_string_equal(vgm_version_format(8006000, buf, sizeof(buf)), "8.6.0");
	assert_string_equal(vgm_version_format(10000002, buf, sizeof(buf)), "10.0.2");
}

/* ---- checks ---- */

static char *boards_a100[] = { "A100" };
static const vgm_nvml_summary nvml_live = { .verdict = 1 };

static vgm_facts good_facts(const char *name)
{
	vgm_facts f = {
		.host_name = (char *)name,
		.arch = "x86_64",
		.kernel_version = "6.1.0-27-amd64",
		.libvirt_version = 9000000,
		.qemu_version = 10000002,
		.backends = VGM_HAS_MDEV,
		.driver_version = "550.90.05",
		.ecc = VGM_ECC_ENABLED,
		.boards = boards_a100,
		.n_boards = 1,
		.protocol_version = VGM_PROTOCOL_VERSION,
		.nvml = true,
		.device_streaming = 1,
		.protocol_oldest = VGM_PROTOCOL_OLDEST,
	};
	return f;
}

typedef struct scenario {
	vgm_facts src, dst;
	vgm_hostdev hostdev;
	vgm_domain_info dom;
	vgm_profile_ref wanted[2];
	vgm_profile_ref offered[2];
	vgm_check_input in;
} scenario;

static void scenario_init(scenario *s)
{
	memset(s, 0, sizeof(*s));
	s->src = good_facts("host-a");
	s->dst = good_facts("host-b");
	s->hostdev = (vgm_hostdev){ .type = VGM_HOSTDEV_MDEV,
				    .id = "c2177883-f1bb-47f0-914d-32a22e3a8804" };
	s->dom = (vgm_domain_info){ .name = "gpu-vm-7", .hostdevs = &s->hostdev, .n_hostdevs = 1 };
	s->wanted[0] = (vgm_profile_ref){ "NVIDIA A100-4C", 4 * GiB, 0 };
	s->offered[0] = (vgm_profile_ref){ "NVIDIA A100-4C", 4 * GiB, 2 };
	s->offered[1] = (vgm_profile_ref){ "NVIDIA A100-10C", 10 * GiB, 1 };
	s->in = (vgm_check_input){ .source = &s->src, .target = &s->dst, .domain = &s->dom,
				   .wanted = s->wanted, .n_wanted = 1, .offered = s->offered,
				   .n_offered = 2, .nvml = &nvml_live };
}

static vgm_check_list *run(const scenario *s)
{
	vgm_check_list *l = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_compat_check(&s->in, &l, &e), 0);
	return l;
}

/* Exactly one check fails, with this code, and its message holds words. */
static void expect_only(const scenario *s, const char *code, const char *words)
{
	vgm_check_list *l = run(s);
	const vgm_check_result *r = vgm_check_list_find(l, code);
	if (!r || l->n_failed != 1) {
		for (size_t i = 0; i < l->n; i++)
			print_message("%s %s: %s\n", l->items[i].ok ? "ok  " : "FAIL",
				      l->items[i].code, l->items[i].message);
		fail_msg("want only %s to fail, %zu failed", code, l->n_failed);
	}
	if (!strstr(r->message, words))
		fail_msg("message '%s' lacks '%s'", r->message, words);
	assert_false(r->ok);
	vgm_check_list_free(l);
}

static void test_all_pass(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	vgm_check_list *l = run(&s);
	assert_int_equal(l->n_failed, 0);
	static const char *names[] = { "arch", "kernel", "libvirt", "qemu", "protocol", "driver",
				       "ecc", "viommu", "postcopy", "board", "profile",
				       "framebuffer" };
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		bool seen = false;
		for (size_t i = 0; i < l->n; i++)
			seen |= STREQ(l->items[i].name, names[k]);
		if (!seen)
			fail_msg("no '%s' check in the report", names[k]);
	}
	for (size_t i = 0; i < l->n; i++) {
		assert_true(l->items[i].ok);
		assert_string_equal(l->items[i].code, "ok");
		assert_non_null(l->items[i].message);
	}
	/* Per-host checks appear once per host. */
	size_t libvirt = 0;
	for (size_t i = 0; i < l->n; i++)
		libvirt += STREQ(l->items[i].name, "libvirt");
	assert_int_equal(libvirt, 2);
	json_t *j = vgm_check_list_to_json(l);
	assert_int_equal(json_array_size(j), l->n);
	json_t *first = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(first, "name")), "arch");
	assert_string_equal(json_string_value(json_object_get(first, "host")), "host-a");
	assert_true(json_is_true(json_object_get(first, "ok")));
	json_decref(j);
	vgm_check_list_free(l);
}

static void test_host_checks_fail(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	s.dst.arch = "aarch64";
	expect_only(&s, "arch_unsupported",
		    "host-b is aarch64; NVIDIA supports vGPU live migration on x86_64 hosts only");
	scenario_init(&s);
	s.src.kernel_version = "5.10.0-28-amd64";
	expect_only(&s, "kernel_too_old",
		    "host-a runs Linux 5.10.0-28-amd64; vGPU live migration needs Linux >= 5.18");
	scenario_init(&s);
	s.dst.libvirt_version = 8000000;
	expect_only(&s, "libvirt_too_old",
		    "host-b runs libvirt 8.0.0; vGPU live migration needs libvirt >= 8.6.0 on both hosts");
	scenario_init(&s);
	s.dst.libvirt_version = 8005000;
	expect_only(&s, "libvirt_too_old", "libvirt 8.5.0");
	scenario_init(&s);
	s.src.qemu_version = 7002022;
	expect_only(&s, "qemu_too_old",
		    "host-a runs QEMU 7.2.22; vGPU live migration needs QEMU >= 8.1.0 on both hosts");
	scenario_init(&s);
	/* two releases ahead: no common version; both named, the older to upgrade */
	s.dst.protocol_version = VGM_PROTOCOL_VERSION + 2;
	s.dst.protocol_oldest = VGM_PROTOCOL_VERSION + 1;
	char want[160];
	snprintf(want, sizeof(want),
		 "host-b speaks vgpumig protocol %u-%u; host-a speaks %u-%u; hosts must be at most one "
		 "release apart: upgrade host-a first",
		 VGM_PROTOCOL_VERSION + 1, VGM_PROTOCOL_VERSION + 2, VGM_PROTOCOL_OLDEST,
		 VGM_PROTOCOL_VERSION);
	expect_only(&s, "protocol_unsupported", want);
	scenario_init(&s);
	s.dst.protocol_version = s.dst.protocol_oldest = 1;
	s.src.protocol_version = s.src.protocol_oldest = 3;
	expect_only(&s, "protocol_unsupported", "upgrade host-b first");
}

/* Rolling upgrade: a host one release back (which sent no protocol_oldest)
 * and one release ahead both pass; the target's row names the common one. */
static void test_protocol_one_release_apart(void **state)
{
	(void)state;
	scenario s;
	const vgm_check_result *r = NULL;
	vgm_check_list *l = NULL;
	unsigned dst[][2] = { { VGM_PROTOCOL_VERSION - 1, VGM_PROTOCOL_VERSION - 1 },
			      { VGM_PROTOCOL_VERSION, VGM_PROTOCOL_VERSION + 1 } };
	unsigned common[] = { VGM_PROTOCOL_VERSION - 1, VGM_PROTOCOL_VERSION };
	char want[64];

	for (size_t i = 0; i < ARRAY_SIZE(dst); i++) {
		scenario_init(&s);
		s.dst.protocol_oldest = dst[i][0];
		s.dst.protocol_version = dst[i][1];
		assert_int_equal(vgm_compat_check(&s.in, &l, NULL), 0);
		assert_int_equal(l->n_failed, 0);
		for (size_t k = 0; k < l->n; k++)
			if (STREQ(l->items[k].name, "protocol") && l->items[k].host &&
			    STREQ(l->items[k].host, "host-b"))
				r = &l->items[k];
		assert_non_null(r);
		snprintf(want, sizeof(want), "host-a uses %u", common[i]);
		assert_non_null(strstr(r->message, want));
		vgm_check_list_free(l);
	}
}

static void test_unknown_versions_fail(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	char *note = "libvirt at qemu:///system not reachable: no socket";
	s.dst.libvirt_version = 0;
	s.dst.notes = &note;
	s.dst.n_notes = 1;
	expect_only(&s, "version_unknown", "host-b did not report its libvirt version (libvirt at");
	scenario_init(&s);
	s.dst.kernel_version = NULL;
	expect_only(&s, "version_unknown", "host-b did not report a usable kernel version");
	scenario_init(&s);
	s.dst.arch = NULL;
	expect_only(&s, "arch_unsupported", "unknown architecture");
}

static void test_pair_checks_fail(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	s.dst.driver_version = "550.54.14";
	expect_only(&s, "driver_mismatch",
		    "host-a runs NVIDIA driver 550.90.05 and host-b runs 550.54.14; vGPU live "
		    "migration needs the same host driver version on both hosts");
	scenario_init(&s);
	s.src.driver_version = NULL;
	expect_only(&s, "driver_mismatch", "host-a reports no NVIDIA vGPU host driver");
	scenario_init(&s);
	s.dst.ecc = VGM_ECC_DISABLED;
	expect_only(&s, "ecc_mismatch", "host-a has ECC enabled and host-b has ECC disabled");
	scenario_init(&s);
	s.src.ecc = VGM_ECC_MIXED;
	expect_only(&s, "ecc_mismatch", "host-a has GPUs with ECC enabled and others");
	/* Unknown ECC on one side is reported as unknown: neither ok nor failed. */
	scenario_init(&s);
	s.dst.ecc = VGM_ECC_UNKNOWN;
	vgm_check_list *l = run(&s);
	assert_int_equal(l->n_failed, 0);
	assert_int_equal(l->n_unknown, 1);
	const vgm_check_result *r = NULL;
	for (size_t i = 0; i < l->n; i++)
		r = STREQ(l->items[i].name, "ecc") ? &l->items[i] : r;
	assert_non_null(r);
	assert_false(r->ok);
	assert_true(r->unknown);
	assert_string_equal(r->code, "ecc_unknown");
	assert_non_null(strstr(r->message, "ECC mode of host-b is unknown"));
	json_t *j = vgm_check_list_to_json(l);
	bool seen = false;
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *c = json_array_get(j, i);
		if (STREQ(json_string_value(json_object_get(c, "code")), "ecc_unknown"))
			seen = STREQ(json_string_value(json_object_get(c, "status")), "unknown");
	}
	assert_true(seen);
	json_decref(j);
	vgm_check_list_free(l);
}

static void test_nvml_verdict_checks(void **state)
{
	(void)state;
	scenario s;
	vgm_nvml_summary v = { .verdict = 0, .limit = 0x1, .id = "c2177883-f1bb-47f0-914d-32a22e3a8804" };
	scenario_init(&s);
	s.in.nvml = &v;
	expect_only(&s, "nvml_incompatible",
		    "NVML says vGPU c2177883-f1bb-47f0-914d-32a22e3a8804 cannot migrate live from "
		    "host-a to host-b (limited by the host driver)");
	v = (vgm_nvml_summary){ .verdict = 1 };
	vgm_check_list *l = run(&s);
	assert_int_equal(l->n_failed, 0);
	assert_int_equal(l->n_unknown, 0);
	vgm_check_list_free(l);
	v = (vgm_nvml_summary){ .verdict = -1, .why = "libnvidia-ml.so.1 not loaded" };
	l = run(&s);
	assert_int_equal(l->n_failed, 0);
	assert_int_equal(l->n_unknown, 1);
	bool seen = false;
	for (size_t i = 0; i < l->n; i++)
		seen |= STREQ(l->items[i].code, "nvml_unknown") &&
			strstr(l->items[i].message, "libnvidia-ml.so.1 not loaded");
	assert_true(seen);
	vgm_check_list_free(l);
	/* streaming: known on both and off on one: ok, says what moves when */
	scenario_init(&s);
	v = (vgm_nvml_summary){ .verdict = 1 };
	s.in.nvml = &v;
	s.dst.device_streaming = 0;
	l = run(&s);
	assert_int_equal(l->n_failed + l->n_unknown, 0);
	vgm_check_list_free(l);
}

/* The hook's subset says a mismatch in the same words as the full check. */
static void test_incoming_same_words(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	s.src.driver_version = "535.104.06";
	s.src.ecc = VGM_ECC_DISABLED;
	vgm_check_list *full = run(&s), *in = NULL;
	assert_int_equal(vgm_compat_check_incoming(&s.in, &in, NULL), 0);
	const char *codes[] = { "driver_mismatch", "ecc_mismatch" };
	for (size_t k = 0; k < 2; k++) {
		const vgm_check_result *a = vgm_check_list_find(full, codes[k]);
		const vgm_check_result *b = vgm_check_list_find(in, codes[k]);
		assert_non_null(a);
		assert_non_null(b);
		assert_string_equal(a->message, b->message);
	}
	assert_int_equal(in->n_failed, 2);
	/* refusal: the first sentence, and the codes of the rest */
	vgm_error e = { 0 };
	assert_int_equal(vgm_check_list_refusal(in, &e), -EINVAL);
	assert_string_equal(e.reason, "driver_mismatch");
	assert_non_null(strstr(e.message, vgm_check_list_find(in, "driver_mismatch")->message));
	assert_non_null(strstr(e.message, "; 1 more check failed (ecc_mismatch)"));
	vgm_check_list_free(in);
	vgm_check_list_free(full);
	/* nothing recorded (a domain without metadata): no driver line, ECC unknown */
	vgm_facts bare = { .host_name = "host-a" };
	s.in.source = &bare;
	s.in.n_wanted = 0;
	assert_int_equal(vgm_compat_check_incoming(&s.in, &in, NULL), 0);
	assert_int_equal(in->n_failed, 0);
	assert_true(in->n_unknown > 0);
	assert_int_equal(vgm_check_list_refusal(in, NULL), 0); /* unknowns do not refuse */
	assert_null(vgm_check_list_find(in, "driver_mismatch"));
	for (size_t i = 0; i < in->n; i++)
		assert_false(STREQ(in->items[i].name, "driver"));
	vgm_check_list_free(in);
	/* a vIOMMU shows in the XML alone and is refused */
	s.dom.viommu = true;
	assert_int_equal(vgm_compat_check_incoming(&s.in, &in, NULL), 0);
	assert_non_null(vgm_check_list_find(in, "viommu_present"));
	vgm_check_list_free(in);
}

static void test_board_mismatch(void **state)
{
	(void)state;
	scenario s;
	char *h200[] = { "H200X" };
	scenario_init(&s);
	s.wanted[0] = (vgm_profile_ref){ "NVIDIA H100XM-1-10C", 10 * GiB, 0 };
	s.offered[0] = (vgm_profile_ref){ "NVIDIA H100XM-1-10C", 10 * GiB, 1 };
	s.dst.boards = h200;
	expect_only(&s, "board_mismatch",
		    "host-b has H200X, the domain's vGPUs are on H100XM; vGPU live migration needs "
		    "the same board family");
	scenario_init(&s);
	s.dst.n_boards = 0;
	expect_only(&s, "board_mismatch", "host-b has no NVIDIA vGPU board");
}

static void test_profile_checks_fail(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	s.in.n_offered = 1;
	s.in.offered = &s.offered[1];
	expect_only(&s, "profile_unavailable", "host-b offers no vGPU of profile 'NVIDIA A100-4C'");
	scenario_init(&s);
	s.offered[0].available = 1;
	s.wanted[1] = s.wanted[0];
	s.in.n_wanted = 2;
	expect_only(&s, "profile_unavailable",
		    "host-b has 1 free vGPU of profile 'NVIDIA A100-4C' and the domain needs 2");
	scenario_init(&s);
	s.offered[0].framebuffer_bytes = 8 * GiB;
	expect_only(&s, "framebuffer_mismatch",
		    "profile 'NVIDIA A100-4C' has 4 GiB of framebuffer on host-a and 8 GiB on host-b");
	/* Two vGPUs of two profiles: each profile checked once. */
	scenario_init(&s);
	s.wanted[1] = (vgm_profile_ref){ "NVIDIA A100-10C", 10 * GiB, 0 };
	s.in.n_wanted = 2;
	vgm_check_list *l = run(&s);
	size_t profiles = 0;
	for (size_t i = 0; i < l->n; i++)
		profiles += STREQ(l->items[i].name, "profile");
	assert_int_equal(profiles, 2);
	assert_int_equal(l->n_failed, 0);
	vgm_check_list_free(l);
}

static void test_domain_checks_fail(void **state)
{
	(void)state;
	scenario s;
	scenario_init(&s);
	s.dom.viommu = true;
	expect_only(&s, "viommu_present", "domain 'gpu-vm-7' has a vIOMMU");
	scenario_init(&s);
	s.in.postcopy = true;
	expect_only(&s, "postcopy_forbidden",
		    "post-copy was requested for domain 'gpu-vm-7', which has 1 vGPU;");
	/* Post-copy for a domain without vGPUs is allowed. */
	scenario_init(&s);
	s.in.postcopy = true;
	s.dom.n_hostdevs = 0;
	s.in.n_wanted = 0;
	vgm_check_list *l = run(&s);
	assert_int_equal(l->n_failed, 0);
	vgm_check_list_free(l);
	/* No facts: a usage error, not a crash. */
	vgm_check_input bad = { 0 };
	vgm_error e = { 0 };
	assert_int_equal(vgm_compat_check(&bad, &l, &e), -EINVAL);
}

/* ---- facts JSON ---- */

static void test_facts_json_round_trip(void **state)
{
	(void)state;
	char *notes[] = { "libvirt not asked: no libvirt URI given" };
	char *boards[] = { "A100", "H100" };
	vgm_facts f = good_facts("host-a");
	f.backends = VGM_HAS_MDEV | VGM_HAS_VF;
	f.boards = boards;
	f.n_boards = 2;
	f.notes = notes;
	f.n_notes = 1;
	f.ecc = VGM_ECC_DISABLED;
	json_t *j = vgm_facts_to_json(&f);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "libvirt_version")), "9.0.0");
	assert_string_equal(json_string_value(json_object_get(j, "backend")), "mdev");
	char *text = json_dumps(j, 0);
	json_decref(j);
	j = json_loads(text, 0, NULL);
	free(text);
	vgm_facts *g = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_facts_from_json(j, &g, &e), 0);
	json_decref(j);
	assert_string_equal(g->host_name, "host-a");
	assert_string_equal(g->arch, "x86_64");
	assert_string_equal(g->kernel_version, "6.1.0-27-amd64");
	assert_true(g->libvirt_version == 9000000);
	assert_true(g->qemu_version == 10000002);
	assert_int_equal(g->backends, VGM_HAS_MDEV | VGM_HAS_VF);
	assert_string_equal(g->driver_version, "550.90.05");
	assert_int_equal(g->ecc, VGM_ECC_DISABLED);
	assert_int_equal(g->n_boards, 2);
	assert_string_equal(g->boards[1], "H100");
	assert_int_equal(g->protocol_version, VGM_PROTOCOL_VERSION);
	assert_int_equal(g->protocol_oldest, VGM_PROTOCOL_OLDEST);
	assert_int_equal(g->n_notes, 1);
	assert_string_equal(g->notes[0], notes[0]);
	vgm_facts_free(g);

	/* Unknowns travel as null; the agent's single "backend" is understood. */
	j = json_pack("{s:s, s:i, s:n, s:n, s:s, s:s, s:b}", "host_name", "host-c",
		      "protocol_version", 1, "libvirt_version", "ecc_mode", "backend", "vf",
		      "agent_version", "0.1.0", "lab_mode", 1);
	assert_int_equal(vgm_facts_from_json(j, &g, &e), 0);
	json_decref(j);
	assert_true(g->libvirt_version == 0);
	assert_int_equal(g->protocol_oldest, 1); /* a pre-2 host sends no protocol_oldest */
	assert_int_equal(g->ecc, VGM_ECC_UNKNOWN);
	assert_int_equal(g->backends, VGM_HAS_VF);
	assert_null(g->arch);
	vgm_facts_free(g);
}

static void test_facts_json_bad(void **state)
{
	(void)state;
	static const struct {
		const char *json, *field;
	} cases[] = {
		{ "[]", "JSON object" },
		{ "{\"protocol_version\": 1}", "host_name" },
		{ "{\"host_name\": \"a\"}", "protocol_version" },
		{ "{\"host_name\": \"a\", \"protocol_version\": \"1\"}", "protocol_version" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 0}", "protocol_version" },
		{ "{\"host_name\": \"\", \"protocol_version\": 1}", "host_name" },
		{ "{\"host_name\": \"a\\u0007b\", \"protocol_version\": 1}", "host_name" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"arch\": 64}", "arch" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"protocol_oldest\": 2}",
		  "protocol_oldest" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 2, \"protocol_oldest\": \"1\"}",
		  "protocol_oldest" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"libvirt_version\": \"9.x\"}",
		  "libvirt_version" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"qemu_version\": 10000002}",
		  "qemu_version" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"qemu_version\": \"8.1000.0\"}",
		  "qemu_version" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"ecc_mode\": \"on\"}", "ecc_mode" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"boards\": \"A100\"}", "boards" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"boards\": [1]}", "boards" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"backends\": {}}", "backends" },
		{ "{\"host_name\": \"a\", \"protocol_version\": 1, \"notes\": [\"\"]}", "notes" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loads(cases[i].json, 0, NULL);
		assert_non_null(j);
		vgm_facts *f = NULL;
		vgm_error e = { 0 };
		int r = vgm_facts_from_json(j, &f, &e);
		json_decref(j);
		if (r != -EINVAL || f || !STREQ(e.reason, "invalid_facts") ||
		    !strstr(e.message, cases[i].field))
			fail_msg("%s: r=%d message=%s", cases[i].json, r, e.message);
	}
	/* Oversized: a 300-character host name, 65 boards. */
	char big[301];
	memset(big, 'h', 300);
	big[300] = '\0';
	json_t *j = json_pack("{s:s, s:i}", "host_name", big, "protocol_version", 1);
	vgm_facts *f = NULL;
	assert_int_equal(vgm_facts_from_json(j, &f, NULL), -EINVAL);
	json_decref(j);
	json_t *boards = json_array();
	for (int i = 0; i < 65; i++)
		json_array_append_new(boards, json_string("A100"));
	j = json_pack("{s:s, s:i, s:o}", "host_name", "a", "protocol_version", 1, "boards", boards);
	assert_int_equal(vgm_facts_from_json(j, &f, NULL), -EINVAL);
	assert_null(f);
	json_decref(j);
}

/* ---- gathering ---- */

static vgm_facts *gather(const char *tree, const char *uri)
{
	vgm_host *h = NULL;
	vgm_facts *f = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_host_new(tree, &h, &e), 0);
	if (vgm_facts_gather(h, NULL, "host-a", uri, &f, &e) < 0)
		fail_msg("gather: %s", vgm_error_message(&e));
	vgm_host_free(h);
	return f;
}

static bool has_note(const vgm_facts *f, const char *words)
{
	for (size_t i = 0; i < f->n_notes; i++)
		if (strstr(f->notes[i], words))
			return true;
	return false;
}

static void test_gather_from_trees(void **state)
{
	(void)state;
	vgm_facts *f = gather(DATA "/a100", NULL);
	assert_string_equal(f->host_name, "host-a");
	assert_non_null(f->arch);
	assert_non_null(f->kernel_version);
	assert_string_equal(f->driver_version, "550.90.05");
	assert_int_equal(f->backends, VGM_HAS_MDEV);
	assert_int_equal(f->n_boards, 1);
	assert_string_equal(f->boards[0], "A100");
	/* the tree's information file says "ECC Mode: Enabled", but NVIDIA's
	 * real file has no such line: without NVML, ECC is unknown */
	assert_int_equal(f->ecc, VGM_ECC_UNKNOWN);
	assert_false(f->nvml);
	assert_int_equal(f->device_streaming, -1);
	assert_true(has_note(f, "NVML"));
	assert_int_equal(f->protocol_version, VGM_PROTOCOL_VERSION);
	assert_true(f->libvirt_version == 0 && f->qemu_version == 0);
	assert_true(has_note(f, "libvirt not asked"));
	vgm_facts_free(f);

	f = gather(DATA "/h100", NULL);
	assert_int_equal(f->backends, VGM_HAS_VF);
	assert_string_equal(f->boards[0], "H100");
	assert_int_equal(f->ecc, VGM_ECC_UNKNOWN);
	vgm_facts_free(f);

	f = gather(DATA "/m10", NULL);
	assert_string_equal(f->driver_version, "535.183.04");
	assert_string_equal(f->boards[0], "M10");
	vgm_facts_free(f);
}

static void test_gather_libvirt(void **state)
{
	(void)state;
	/* libvirt's built-in test driver needs no daemon. */
	vgm_facts *f = gather(DATA "/m10", "test:///default");
	assert_true(f->libvirt_version >= 8006000);
	assert_true(f->qemu_version > 0);
	vgm_facts_free(f);
	/* A host where libvirt cannot be reached still has facts. */
	f = gather(DATA "/m10", "qemu+unix:///system?socket=/nonexistent/vgpumig-test.sock");
	assert_true(f->libvirt_version == 0 && f->qemu_version == 0);
	assert_true(has_note(f, "not reachable"));
	assert_string_equal(f->driver_version, "535.183.04");
	vgm_facts_free(f);
}

/* ---- NVML through the stand-in library (tools/nvml-stub) ---- */

static char stub_state[64];

static void stub_write(const char *text)
{
	FILE *f = fopen(stub_state, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static vgm_nvml *stub_open(void)
{
	char lib[4096];
	const char *build = getenv("VGPUMIG_BUILD");
	vgm_nvml *nv = NULL;
	vgm_error e = { 0 };
	snprintf(lib, sizeof(lib), "%s/tools/libnvidia-ml.so.1", build ? build : "../../build");
	if (vgm_nvml_open(lib, &nv, &e) < 0)
		fail_msg("open %s: %s", lib, vgm_error_message(&e));
	return nv;
}

static vgm_facts *gather_nvml(vgm_nvml *nv)
{
	vgm_host *h = NULL;
	vgm_facts *f = NULL;
	assert_int_equal(vgm_host_new(DATA "/a100", &h, NULL), 0);
	assert_int_equal(vgm_facts_gather(h, nv, "host-a", NULL, &f, NULL), 0);
	vgm_host_free(h);
	return f;
}

static void test_nvml_stub(void **state)
{
	(void)state;
	char sysfs[4096], text[4400];
	const char *uuid = "5b3c1a2e-8f4d-4c6b-9a7e-1d2f3a4b5c6d";
	snprintf(stub_state, sizeof(stub_state), "/tmp/vgm-nvml-stub-%d", (int)getpid());
	assert_non_null(realpath(DATA "/a100", sysfs));
	snprintf(text, sizeof(text), "catalog A100\ngpus 2\ndriver 550.127.05\necc enabled\n"
		 "streaming yes\nsysfs %s\n", sysfs);
	stub_write(text);
	setenv("VGPUMIG_NVML_STUB", stub_state, 1);
	vgm_nvml *nv = stub_open();
	vgm_facts *f = gather_nvml(nv);
	assert_true(f->nvml);
	assert_string_equal(f->driver_version, "550.127.05"); /* NVML over sysfs */
	assert_int_equal(f->ecc, VGM_ECC_ENABLED);
	assert_int_equal(f->device_streaming, 1);
	assert_int_equal(f->n_pgpu_metadata, 2);
	bool four_c = false;
	for (size_t i = 0; i < f->n_vgpu_types; i++)
		four_c |= STREQ(f->vgpu_types[i].name, "NVIDIA A100-4C") &&
			  f->vgpu_types[i].framebuffer_bytes == 4 * GiB;
	assert_true(four_c);
	/* the facts JSON carries it to a peer */
	json_t *j = vgm_facts_to_json(f);
	vgm_facts *back = NULL;
	assert_int_equal(vgm_facts_from_json(j, &back, NULL), 0);
	assert_true(back->nvml && back->device_streaming == 1 && back->n_pgpu_metadata == 2);
	json_decref(j);

	/* the source's vGPU against these GPUs: live */
	char *blob = NULL;
	assert_int_equal(vgm_nvml_vgpu_metadata(nv, uuid, &blob, NULL), 0);
	assert_int_equal(vgm_nvml_vgpu_metadata(nv, "00000000-0000-4000-8000-000000000000", NULL,
						NULL), -ENOENT);
	const char *ids[] = { uuid }, *blobs[] = { blob };
	vgm_nvml_summary sum;
	vgm_compat_nvml_verdict(nv, ids, blobs, 1, back, &sum);
	assert_int_equal(sum.verdict, 1);
	/* NVIDIA says no (forced): the refused vGPU and the limit are named */
	snprintf(text, sizeof(text), "gpus 2\necc1 disabled\ncompat none gpu\nsysfs %s\n", sysfs);
	stub_write(text);
	vgm_facts_free(f);
	f = gather_nvml(nv); /* the target's GPU blobs carry the verdict */
	vgm_compat_nvml_verdict(nv, ids, blobs, 1, f, &sum);
	assert_int_equal(sum.verdict, 0);
	assert_int_equal(sum.limit, 0x4);
	assert_string_equal(sum.id, uuid);
	/* one GPU with ECC off: mixed */
	assert_int_equal(f->ecc, VGM_ECC_MIXED);
	/* a blob bigger than the first buffer: NVML names the size, we ask again */
	snprintf(text, sizeof(text), "gpus 1\npad 2000\nsysfs %s\n", sysfs);
	stub_write(text);
	char *big = NULL;
	assert_int_equal(vgm_nvml_vgpu_metadata(nv, uuid, &big, NULL), 0);
	assert_true(strlen(big) > 4000 && strlen(big) < 2 * VGM_NVML_BLOB_MAX);
	free(big);
	/* bad blobs are refused before NVML sees them */
	vgm_nvml_verdict v;
	assert_int_equal(vgm_nvml_compat(nv, "xyz", back->pgpu_metadata[0], &v, NULL), -EINVAL);
	blobs[0] = NULL;
	vgm_compat_nvml_verdict(nv, ids, blobs, 1, back, &sum);
	assert_int_equal(sum.verdict, -1);
	vgm_compat_nvml_verdict(NULL, ids, blobs, 1, back, &sum);
	assert_int_equal(sum.verdict, -1);
	assert_non_null(strstr(sum.why, "not loaded"));
	free(blob);
	vgm_facts_free(back);
	vgm_facts_free(f);
	vgm_nvml_close(nv);
	unlink(stub_state);
}

static void test_nvml_absent(void **state)
{
	(void)state;
	vgm_nvml *nv = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_nvml_open("/nonexistent/libnvidia-ml.so.1", &nv, &e), -ENOENT);
	assert_null(nv);
	assert_non_null(strstr(vgm_error_message(&e), "NVML not loaded"));
	/* the driver is not loaded: NVML's init fails and says so */
	snprintf(stub_state, sizeof(stub_state), "/tmp/vgm-nvml-stub-%d", (int)getpid());
	stub_write("init fail\n");
	setenv("VGPUMIG_NVML_STUB", stub_state, 1);
	char lib[4096];
	const char *build = getenv("VGPUMIG_BUILD");
	snprintf(lib, sizeof(lib), "%s/tools/libnvidia-ml.so.1", build ? build : "../../build");
	vgm_error_clear(&e);
	assert_int_equal(vgm_nvml_open(lib, &nv, &e), -ENOENT);
	assert_non_null(strstr(vgm_error_message(&e), "Driver Not Loaded"));
	unlink(stub_state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_parse),
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_all_pass),
		cmocka_unit_test(test_host_checks_fail),
		cmocka_unit_test(test_protocol_one_release_apart),
		cmocka_unit_test(test_unknown_versions_fail),
		cmocka_unit_test(test_pair_checks_fail),
		cmocka_unit_test(test_board_mismatch),
		cmocka_unit_test(test_profile_checks_fail),
		cmocka_unit_test(test_domain_checks_fail),
		cmocka_unit_test(test_facts_json_round_trip),
		cmocka_unit_test(test_facts_json_bad),
		cmocka_unit_test(test_gather_from_trees),
		cmocka_unit_test(test_gather_libvirt),
		cmocka_unit_test(test_nvml_verdict_checks),
		cmocka_unit_test(test_incoming_same_words),
		cmocka_unit_test(test_nvml_stub),
		cmocka_unit_test(test_nvml_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
