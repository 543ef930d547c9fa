/* test-util.c: validation of identifiers, root-relative paths, error reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/validate.h"

static void test_uuid(void **state)
{
	(void)state;
	assert_true(vgm_uuid_valid("c2177883-f1bb-47f0-914d-32a22e3a8804"));
	assert_true(vgm_uuid_valid("C2177883-F1BB-47F0-914D-32A22E3A8804"));
	assert_false(vgm_uuid_valid("c2177883-f1bb-47f0-914d-32a22e3a880"));
	assert_false(vgm_uuid_valid("c2177883f1bb-47f0-914d-32a22e3a88044"));
	assert_false(vgm_uuid_valid("../../../../etc/passwd-aaaaaaaaaaaaaaaa"));
	assert_false(vgm_uuid_valid(""));
	assert_false(vgm_uuid_valid(NULL));
	char u[VGM_UUID_LEN + 1], v[VGM_UUID_LEN + 1];
	assert_int_equal(vgm_uuid_generate(u), 0);
	assert_int_equal(vgm_uuid_generate(v), 0);
	assert_true(vgm_uuid_valid(u));
	assert_int_equal(u[14], '4');
	assert_string_not_equal(u, v);
}

static void test_pci(void **state)
{
	(void)state;
	assert_true(vgm_pci_addr_valid("0000:41:00.4"));
	assert_true(vgm_pci_addr_valid("0000:ca:1f.7"));
	assert_false(vgm_pci_addr_valid("0000:41:20.0")); /* slot > 0x1f */
	assert_false(vgm_pci_addr_valid("0000:41:00.8")); /* function > 7 */
	assert_false(vgm_pci_addr_valid("41:00.4"));
	assert_false(vgm_pci_addr_valid("0000:41:00.4/../x"));
}

static void test_name(void **state)
{
	(void)state;
	assert_true(vgm_name_valid("nvidia-471"));
	assert_true(vgm_name_valid("i915-GVTg_V5_8"));
	assert_false(vgm_name_valid(".."));
	assert_false(vgm_name_valid("../../x"));
	assert_false(vgm_name_valid("a/b"));
	assert_false(vgm_name_valid(""));
	vgm_error e = { 0 };
	assert_int_equal(vgm_check_name("type id", "../../x", &e), -EINVAL);
	assert_string_equal(e.reason, "invalid_name");
	assert_non_null(strstr(e.message, "'../../x'"));
	/* A newline in outside input must not split the one-line message. */
	assert_int_equal(vgm_check_uuid("vGPU", "abc\ndef", &e), -EINVAL);
	assert_null(strchr(e.message, '\n'));
	assert_non_null(strstr(e.message, "'abc?def'"));
}

static void test_path(void **state)
{
	(void)state;
	_cleanup_free_ char *a = vgm_path("/", "/sys/class/%s", "mdev_bus");
	_cleanup_free_ char *b = vgm_path("/tmp/emu/", "/sys/class/%s", "mdev_bus");
	_cleanup_free_ char *c = vgm_path(NULL, "/proc");
	assert_string_equal(a, "/sys/class/mdev_bus");
	assert_string_equal(b, "/tmp/emu/sys/class/mdev_bus");
	assert_string_equal(c, "/proc");
}

static void test_error(void **state)
{
	(void)state;
	vgm_error e = { 0 };
	assert_int_equal(vgm_error_setr(&e, ENOSPC, "no_capacity", "no room on %s", "gpu0"), -ENOSPC);
	vgm_error_prefix(&e, "host-b");
	assert_string_equal(vgm_error_message(&e), "host-b: no room on gpu0");
	assert_string_equal(e.reason, "no_capacity");
	assert_int_equal(vgm_error_set(NULL, EINVAL, "x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid), cmocka_unit_test(test_pci), cmocka_unit_test(test_name),
		cmocka_unit_test(test_path), cmocka_unit_test(test_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
