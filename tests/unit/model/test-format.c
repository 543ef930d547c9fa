/* test-format.c: how times and vGPU progress read for people (lib/model/units.c):
 * relative within an hour, ISO 8601 beyond, "-" for unset; vGPU bytes sent
 * where libvirt reports them, else what moves at switchover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/units.h"

#define GiB (1ull << 30)

static void test_when(void **state)
{
	(void)state;
	char b[64];
	const int64_t now = 1795312800; /* 2026-11-22T02:00:00Z */
	assert_string_equal(vgm_format_when(now + 240, now, b, sizeof(b)), "in 4 min");
	assert_string_equal(vgm_format_when(now + 42, now, b, sizeof(b)), "in 42 s");
	assert_string_equal(vgm_format_when(now, now, b, sizeof(b)), "in 0 s");
	assert_string_equal(vgm_format_when(now - 185, now, b, sizeof(b)), "3 min ago");
	assert_string_equal(vgm_format_when(now - 59, now, b, sizeof(b)), "59 s ago");
	assert_string_equal(vgm_format_when(now + 3599, now, b, sizeof(b)), "in 60 min");
	assert_string_equal(vgm_format_when(now + 3600, now, b, sizeof(b)), "2026-11-22T03:00:00Z");
	assert_string_equal(vgm_format_when(now - 86400, now, b, sizeof(b)), "2026-11-21T02:00:00Z");
	assert_string_equal(vgm_format_when(0, now, b, sizeof(b)), "-"); /* committed: no lease */
	assert_string_equal(vgm_format_when(-5, now, b, sizeof(b)), "-");
	char tiny[4];
	vgm_format_when(now + 3600, now, tiny, sizeof(tiny)); /* cut, never overrun */
	assert_int_equal(strlen(tiny), 3);
}

static void test_vgpu_progress(void **state)
{
	(void)state;
	char b[96];
	assert_string_equal(vgm_format_vgpu_progress(1, 4 * GiB, 1 * GiB, b, sizeof(b)),
			    "vGPU 1 (1.0 GiB of 4.0 GiB sent)");
	assert_string_equal(vgm_format_vgpu_progress(2, 8 * GiB, 0, b, sizeof(b)),
			    "vGPU 2 (0 B of 8.0 GiB sent)");
	assert_string_equal(vgm_format_vgpu_progress(1, 4 * GiB, -1, b, sizeof(b)),
			    "vGPU 1 (4.0 GiB at switchover)");
	assert_string_equal(vgm_format_vgpu_progress(0, 0, -1, b, sizeof(b)), "no vGPU");
}

static void test_progress_percent(void **state)
{
	(void)state;
	/* RAM only when libvirt does not report the vGPU's bytes */
	assert_int_equal(vgm_progress_percent(4 * GiB, 1 * GiB, 4 * GiB, -1), 75);
	/* with them the vGPU counts: 3 of 4 GiB RAM + 1 of 4 GiB vGPU = 50 % */
	assert_int_equal(vgm_progress_percent(4 * GiB, 1 * GiB, 4 * GiB, (int64_t)GiB), 50);
	/* re-sent dirty vGPU state never counts past the framebuffer */
	assert_int_equal(vgm_progress_percent(4 * GiB, 0, 4 * GiB, (int64_t)(9 * GiB)), 100);
	assert_int_equal(vgm_progress_percent(0, 0, 0, -1), 0);
	assert_int_equal(vgm_progress_percent(1 * GiB, 2 * GiB, 0, -1), 0); /* odd stats: clamp */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_when),
		cmocka_unit_test(test_vgpu_progress),
		cmocka_unit_test(test_progress_percent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
