/* test-lv-life.c: the lifecycle calls of cold migration against libvirt's
 * test driver (test:///default, in-process, no daemon): define, start,
 * graceful shutdown, destroy, undefine, and that every undo-side call is
 * idempotent. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/migrate.h"

#define UUID "5d8f9d4e-2c61-4b8e-9a1c-3e2f8a7b6c50"

static const char xml[] = "<domain type='test'><name>cold-vm</name><uuid>" UUID "</uuid>"
			  "<memory unit='KiB'>65536</memory><os><type>hvm</type></os></domain>";

static void test_lifecycle(void **state)
{
	(void)state;
	virConnectPtr c = NULL;
	virDomainPtr d = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_lv_open("test:///default", &c, &e), 0);
	assert_int_equal(vgm_lv_define(c, xml, &d, &e), 0);
	assert_int_equal(virDomainIsActive(d), 0);
	assert_int_equal(vgm_lv_destroy(d, &e), 0); /* already off */
	assert_int_equal(vgm_lv_start(d, &e), 0);
	assert_int_equal(virDomainIsActive(d), 1);
	assert_int_equal(vgm_lv_start(d, &e), 0); /* already running */
	assert_int_equal(vgm_lv_shutdown_wait(d, 2000, &e), 0);
	assert_int_equal(virDomainIsActive(d), 0);
	assert_int_equal(vgm_lv_shutdown_wait(d, 2000, &e), 0); /* already off */
	assert_int_equal(vgm_lv_start(d, &e), 0);
	assert_int_equal(vgm_lv_destroy(d, &e), 0);
	assert_int_equal(virDomainIsActive(d), 0);
	assert_int_equal(vgm_lv_start(d, &e), 0);
	if (vgm_lv_undefine_uuid(c, UUID, &e) != 0)
		fail_msg("%s", e.message); /* stops it first */
	assert_null(virDomainLookupByUUIDString(c, UUID));
	assert_int_equal(vgm_lv_undefine_uuid(c, UUID, &e), 0); /* absent */
	/* a failing call carries libvirt's own words, not "no error" */
	assert_int_equal(vgm_lv_start(d, &e), -EIO);
	assert_non_null(strstr(e.message, "cannot start domain 'cold-vm'"));
	assert_null(strstr(e.message, "no error"));
	virDomainFree(d);

	assert_int_equal(vgm_lv_define(c, "<domain type='test'><name>x</name></domain>", &d, &e),
			 -EIO);
	assert_string_equal(e.reason, "libvirt_error");
	assert_non_null(strstr(e.message, "cannot define the domain"));
	vgm_lv_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
