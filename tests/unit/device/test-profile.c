/* test-profile.c: the NVIDIA description parser, board family, license class
 * and framebuffer-from-name rules of lib/device/profile.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device/device.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static void test_description_full(void **state)
{
	(void)state;
	vgm_profile p = { .name = strdup("GRID P40-4C") };
	vgm_error e = { 0 };
	assert_int_equal(vgm_profile_parse_description(
				 &p,
				 "num_heads=1, frl_config=60, framebuffer=4096M, "
				 "max_resolution=4096x2160, max_instance=6",
				 &e),
			 0);
	assert_int_equal(p.num_heads, 1);
	assert_int_equal(p.frl_config, 60);
	assert_true(p.framebuffer_bytes == 4096 * MiB);
	assert_string_equal(p.max_resolution, "4096x2160");
	assert_int_equal(p.max_instances, 6);
	assert_int_equal(p.license_class, 'C');
	assert_int_equal(p.n_extra, 0);
	vgm_profile_clear(&p);
	assert_null(p.name);
}

static void test_description_extra_in_order(void **state)
{
	(void)state;
	vgm_profile p = { 0 };
	assert_int_equal(vgm_profile_parse_description(
				 &p, "zeta=1,framebuffer=2G , alpha = two words,, mig=yes", NULL),
			 0);
	assert_true(p.framebuffer_bytes == 2 * GiB);
	assert_int_equal(p.n_extra, 3);
	assert_string_equal(p.extra[0].key, "zeta");
	assert_string_equal(p.extra[0].value, "1");
	assert_string_equal(p.extra[1].key, "alpha");
	assert_string_equal(p.extra[1].value, "two words");
	assert_string_equal(p.extra[2].key, "mig");
	/* A second parse replaces, not appends. */
	assert_int_equal(vgm_profile_parse_description(&p, "framebuffer=512", NULL), 0);
	assert_int_equal(p.n_extra, 0);
	assert_true(p.framebuffer_bytes == 512);
	vgm_profile_clear(&p);
}

static void test_description_empty(void **state)
{
	(void)state;
	vgm_profile p = { 0 };
	assert_int_equal(vgm_profile_parse_description(&p, "", NULL), 0);
	assert_int_equal(vgm_profile_parse_description(&p, "  ,  ", NULL), 0);
	assert_int_equal(vgm_profile_parse_description(&p, NULL, NULL), 0);
	assert_true(p.framebuffer_bytes == 0);
	vgm_profile_clear(&p);
}

static void test_description_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
		"num_heads",
		"=5",
		"framebuffer=abcM",
		"framebuffer=4096X",
		"framebuffer=4096MM",
		"framebuffer=",
		"framebuffer=99999999999999999999G",
		"framebuffer=17179869184G",
		"max_instance=-1",
		"max_instance=99999999999",
		"max_instance=6x",
		"num_heads= ",
		"max_resolution=4096x",
		"max_resolution=x2160",
		"max_resolution=4096x2160x1",
		"max_resolution=4096 x 2160",
		"frl_config=60, bad key=1",
		"num_heads=1, frl_config",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vgm_profile p = { .framebuffer_bytes = 7, .max_instances = 3 };
		vgm_error e = { 0 };
		int r = vgm_profile_parse_description(&p, bad[i], &e);
		if (r != -EINVAL)
			fail_msg("'%s' gave %d, want -EINVAL", bad[i], r);
		assert_string_equal(e.reason, "bad_description");
		assert_non_null(strstr(e.message, "vGPU description"));
		/* Nothing half-parsed leaks into the profile. */
		assert_true(p.framebuffer_bytes == 7);
		assert_int_equal(p.max_instances, 3);
		assert_null(p.max_resolution);
		assert_int_equal(p.n_extra, 0);
		vgm_profile_clear(&p);
	}
}

static void test_description_too_long(void **state)
{
	(void)state;
	char *big = malloc(10000);
	memset(big, 'a', 9999);
	big[0] = 'k';
	big[1] = '=';
	big[9999] = '\0';
	vgm_profile p = { 0 };
	vgm_error e = { 0 };
	assert_int_equal(vgm_profile_parse_description(&p, big, &e), -EINVAL);
	assert_non_null(strstr(e.message, "longer than"));
	free(big);
	vgm_profile_clear(&p);
}

static void check_board(const char *name, const char *want)
{
	char *b = vgm_profile_board(name);
	if (!want)
		assert_null(b);
	else {
		assert_non_null(b);
		assert_string_equal(b, want);
	}
	free(b);
}

static void test_board(void **state)
{
	(void)state;
	check_board("NVIDIA A100-4C", "A100");
	check_board("GRID M10-2Q", "M10");
	check_board("NVIDIA H100-1-10C", "H100");
	check_board("NVIDIA L40S-1B", "L40S");
	check_board("NVIDIA A100D-1-10C", "A100D");
	check_board("NVIDIA H100XM-1-10C", "H100XM");
	check_board("NVIDIA H200X-1-18C", "H200X");
	check_board("NVIDIA H800-4C", "H800");
	check_board("NVIDIA RTX6000-Ada-4Q", "RTX6000-Ada");
	check_board("NVIDIA A100-1-5CME", "A100");
	check_board("nonsense", NULL);
	check_board("-4C", NULL);
	check_board(NULL, NULL);
}

static void test_class_and_framebuffer(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		char cls;
		uint64_t fb;
	} cases[] = {
		{ "GRID M10-0B", 'B', 0 },
		{ "GRID M10-8Q", 'Q', 8 * GiB },
		{ "NVIDIA A100-1-5CME", 'C', 5 * GiB },
		{ "NVIDIA A40-48A", 'A', 48 * GiB },
		{ "NVIDIA H100-1-10C", 'C', 10 * GiB },
		{ "NVIDIA H100-4C", 'C', 4 * GiB },
		{ "NVIDIA L40S-1B", 'B', 1 * GiB },
		{ "NVIDIA T4-16X", 0, 16 * GiB },
		{ "no profile", 0, 0 },
		{ "NVIDIA A100-C", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vgm_profile p = { .name = strdup(cases[i].name) };
		assert_int_equal(vgm_profile_parse_description(&p, NULL, NULL), 0);
		if (p.license_class != cases[i].cls)
			fail_msg("%s: class %d, want %d", cases[i].name, p.license_class, cases[i].cls);
		assert_true(vgm_profile_framebuffer_from_name(cases[i].name) == cases[i].fb);
		vgm_profile_clear(&p);
	}
	assert_true(vgm_profile_framebuffer_from_name(NULL) == 0);
}

static void test_backend_names(void **state)
{
	(void)state;
	assert_string_equal(vgm_backend_to_string(VGM_BACKEND_MDEV), "mdev");
	assert_string_equal(vgm_backend_to_string(VGM_BACKEND_VF), "vf");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_description_full),
		cmocka_unit_test(test_description_extra_in_order),
		cmocka_unit_test(test_description_empty),
		cmocka_unit_test(test_description_malformed),
		cmocka_unit_test(test_description_too_long),
		cmocka_unit_test(test_board),
		cmocka_unit_test(test_class_and_framebuffer),
		cmocka_unit_test(test_backend_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
