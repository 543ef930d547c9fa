/* test-protocol.c: the peer protocol's version ranges (lib/api/protocol.c):
 * header parsing, the common version, refusals naming both ranges, and the
 * range a test switch may pick. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/protocol.h"

static vgm_protocol_range R(unsigned a, unsigned b)
{
	return (vgm_protocol_range){ a, b };
}

static void test_parse(void **state)
{
	(void)state;
	vgm_protocol_range r;
	vgm_error e = { 0 };

	assert_int_equal(vgm_protocol_parse(NULL, &r, &e), 0); /* pre-2 release: no header */
	assert_int_equal(r.oldest, 1);
	assert_int_equal(r.newest, 1);
	assert_int_equal(vgm_protocol_parse("1-2", &r, &e), 0);
	assert_int_equal(r.oldest, 1);
	assert_int_equal(r.newest, 2);
	assert_int_equal(vgm_protocol_parse("7", &r, &e), 0);
	assert_int_equal(r.oldest, 7);
	assert_int_equal(r.newest, 7);
	static const char *bad[] = { "", "x", "0", "2-1", "1-", "-1", "1-2-3", "1 ", " 1", "+1",
				     "99999999999", "1-0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = R(5, 5);
		assert_int_equal(vgm_protocol_parse(bad[i], &r, &e), -EINVAL);
		assert_string_equal(e.reason, "invalid_request");
		assert_non_null(strstr(e.message, "Vgpumig-Protocol"));
		assert_int_equal(r.oldest, 5); /* untouched */
	}
}

static void test_format(void **state)
{
	(void)state;
	char b[32];

	vgm_protocol_format(R(1, 2), b, sizeof(b));
	assert_string_equal(b, "1-2");
	vgm_protocol_format(R(3, 3), b, sizeof(b));
	assert_string_equal(b, "3");
}

static void test_common(void **state)
{
	(void)state;
	assert_int_equal(vgm_protocol_common(R(1, 2), R(1, 1)), 1); /* new <-> previous release */
	assert_int_equal(vgm_protocol_common(R(1, 2), R(2, 3)), 2); /* new <-> next release */
	assert_int_equal(vgm_protocol_common(R(1, 2), R(1, 2)), 2);
	assert_int_equal(vgm_protocol_common(R(1, 2), R(3, 4)), 0); /* two releases apart */
	assert_int_equal(vgm_protocol_common(R(3, 4), R(1, 2)), 0);
}

static void test_accept(void **state)
{
	(void)state;
	vgm_error e = { 0 };

	assert_int_equal(vgm_protocol_accept(R(1, 2), "host-b", R(1, 1), "host-a", &e), 0);
	assert_int_equal(vgm_protocol_accept(R(1, 2), "host-b", R(3, 4), "host-a", &e), -EPROTO);
	assert_string_equal(e.reason, "protocol_unsupported");
	assert_string_equal(e.message, "host-a speaks vgpumig protocol 3-4; host-b speaks 1-2; hosts "
				       "must be at most one release apart: upgrade host-b first");
	assert_int_equal(vgm_protocol_accept(R(5, 6), "host-b", R(1, 1), "host-a", &e), -EPROTO);
	assert_non_null(strstr(e.message, "upgrade host-a first"));
}

static void test_for(void **state)
{
	(void)state;
	vgm_protocol_range r;
	vgm_error e = { 0 };

	assert_int_equal(vgm_protocol_for(VGM_PROTOCOL_VERSION, &r, &e), 0);
	assert_int_equal(r.newest, VGM_PROTOCOL_VERSION);
	assert_int_equal(r.oldest, VGM_PROTOCOL_OLDEST);
	assert_int_equal(vgm_protocol_for(VGM_PROTOCOL_OLDEST, &r, &e), 0);
	assert_int_equal(r.newest, VGM_PROTOCOL_OLDEST);
	assert_int_equal(vgm_protocol_for(VGM_PROTOCOL_VERSION + 1, &r, &e), -EINVAL);
	assert_non_null(strstr(e.message, "not one this vgpumig speaks"));
	assert_int_equal(vgm_protocol_for(0, &r, &e), -EINVAL);
	/* the native range is "own and the one before" */
	assert_int_equal(vgm_protocol_native().newest - vgm_protocol_native().oldest, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),  cmocka_unit_test(test_format),
		cmocka_unit_test(test_common), cmocka_unit_test(test_accept),
		cmocka_unit_test(test_for),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
