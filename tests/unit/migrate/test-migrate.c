/* test-migrate.c: lib/migrate against libvirt's built-in test driver
 * (test:///default, no daemon): migration parameters and flags, post-copy
 * refusal, job-stat parsing, domain facts, and a migration the driver cannot
 * run failing cleanly (the real runs are the lab tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/migrate.h"

static void test_params(void **state)
{
	(void)state;
	vgm_migration_opts o = {
		.dest_uri = "qemu+tcp://hostB/system",
		.dest_xml = "<domain>live</domain>",
		.persist_xml = "<domain>persistent</domain>",
		.bandwidth_bps = 20u * 1024 * 1024 + 1,
	};
	virTypedParameterPtr p = NULL;
	int n = 0;
	unsigned flags = 0;
	assert_int_equal(vgm_migration_build_params(&o, &p, &n, &flags, NULL), 0);
	assert_int_equal(n, 3);
	const char *s = NULL;
	assert_int_equal(virTypedParamsGetString(p, n, VIR_MIGRATE_PARAM_DEST_XML, &s), 1);
	assert_string_equal(s, "<domain>live</domain>");
	assert_int_equal(virTypedParamsGetString(p, n, VIR_MIGRATE_PARAM_PERSIST_XML, &s), 1);
	assert_string_equal(s, "<domain>persistent</domain>");
	unsigned long long bw = 0;
	assert_int_equal(virTypedParamsGetULLong(p, n, VIR_MIGRATE_PARAM_BANDWIDTH, &bw), 1);
	assert_int_equal(bw, 21); /* MiB/s, rounded up */
	/* encrypted unless the options say clear text */
	assert_int_equal(flags, VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
					VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_TLS);
	assert_int_equal(flags & VIR_MIGRATE_POSTCOPY, 0);
	virTypedParamsFree(p, n);

	/* No cap, no XML: no parameters at all; clear text only when asked. */
	o = (vgm_migration_opts){ .dest_uri = "qemu+tcp://hostB/system", .clear_text = true };
	assert_int_equal(vgm_migration_build_params(&o, &p, &n, &flags, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(flags & VIR_MIGRATE_TLS, 0);
	virTypedParamsFree(p, n);
}

static void test_postcopy_refused(void **state)
{
	(void)state;
	vgm_migration_opts o = { .dest_uri = "qemu+tcp://hostB/system", .postcopy = true };
	virTypedParameterPtr p = NULL;
	int n = 0;
	unsigned flags = 0;
	vgm_error e = { 0 };
	assert_int_equal(vgm_migration_build_params(&o, &p, &n, &flags, &e), -ENOTSUP);
	assert_string_equal(e.reason, "postcopy_refused");
	assert_null(p);
	o = (vgm_migration_opts){ 0 };
	assert_int_equal(vgm_migration_build_params(&o, &p, &n, &flags, &e), -EINVAL);
	assert_non_null(strstr(e.message, "[peer]"));
}

static void test_sample_parse(void **state)
{
	(void)state;
	virTypedParameterPtr p = NULL;
	int n = 0, max = 0;
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_TIME_ELAPSED, 5176);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_REMAINING, 7856000);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_TOTAL, 201326592);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_ITERATION, 2);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, 1622);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, 4096);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_MEMORY_BPS, 20971520);
	virTypedParamsAddULLong(&p, &n, &max, VIR_DOMAIN_JOB_DATA_PROCESSED, 99);
	vgm_job_sample x;
	vgm_lv_sample_from_params(p, n, &x);
	assert_int_equal(x.time_elapsed_ms, 5176);
	assert_int_equal(x.memory_remaining, 7856000);
	assert_int_equal(x.memory_total, 201326592);
	assert_int_equal(x.memory_iteration, 2);
	assert_int_equal(x.memory_dirty_rate_bps, 1622u * 4096u);
	assert_int_equal(x.memory_bps, 20971520);
	assert_int_equal(x.data_processed, 99);
	assert_int_equal(x.have, VGM_SAMPLE_HAVE_DIRTY | VGM_SAMPLE_HAVE_BPS);
	virTypedParamsAddULLong(&p, &n, &max, "vfio_data_transferred", 4096);
	vgm_lv_sample_from_params(p, n, &x);
	assert_int_equal(x.vfio_data_transferred, 4096);
	assert_true(x.have & VGM_SAMPLE_HAVE_VFIO);
	virTypedParamsFree(p, n);
}

static void test_domain_facts(void **state)
{
	(void)state;
	virConnectPtr c = NULL;
	assert_int_equal(vgm_lv_open("test:///default", &c, NULL), 0);
	virDomainPtr d = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_lv_lookup(c, "no-such-vm", &d, &e), -ENOENT);
	assert_string_equal(e.reason, "domain_not_found");
	assert_int_equal(vgm_lv_lookup(c, "test", &d, NULL), 0);
	vgm_lv_domain *f = NULL;
	assert_int_equal(vgm_lv_domain_read(d, &f, NULL), 0);
	assert_string_equal(f->name, "test");
	assert_true(f->active);
	assert_true(f->persistent);
	assert_true(f->memory_bytes > 0);

	/* The test driver measures no dirty rate in either mode: one clear
	 * error, after trying both, and no mode reported. */
	uint64_t bps = 7;
	const char *mode = NULL;
	assert_int_equal(vgm_lv_dirty_rate_mode(d, 1, &bps, &mode, &e), -EIO);
	assert_string_equal(e.reason, "dirty_rate_failed");
	assert_non_null(strstr(e.message, "cannot start measuring the dirty rate of 'test'"));
	assert_null(mode);
	assert_int_equal(bps, 7);
	assert_int_equal(vgm_lv_dirty_rate_mode(d, 0, &bps, &mode, &e), -EINVAL);
	assert_non_null(strstr(f->xml_live, "<domain"));
	assert_non_null(f->xml_persistent);
	/* Lookup by UUID finds the same domain. */
	virDomainPtr d2 = NULL;
	assert_int_equal(vgm_lv_lookup(c, f->uuid, &d2, NULL), 0);
	assert_string_equal(virDomainGetName(d2), "test");
	virDomainFree(d2);

	/* A migration the test driver cannot run fails cleanly, no hang. */
	vgm_migration_opts o = { .dest_uri = "test:///default", .ctl = { .max_downtime_ms = { .set = true, .value = 500 } } };
	o.ctl.costs = vgm_model_default_costs();
	vgm_migration *m = NULL;
	assert_int_equal(vgm_migration_new(&o, &m, NULL), 0);
	vgm_migration_summary s;
	assert_true(vgm_migration_run(m, d, NULL, NULL, NULL, &s, &e) < 0);
	assert_false(s.ok);
	assert_true(s.code[0] != '\0');
	vgm_migration_free(m);

	/* An abort requested before the start: nothing is started. */
	assert_int_equal(vgm_migration_new(&o, &m, NULL), 0);
	vgm_migration_request_abort(m, "operator pressed Ctrl-C");
	vgm_migration_request_abort(m, "second reason loses");
	int r = vgm_migration_run(m, d, NULL, NULL, NULL, &s, &e);
	assert_true(r < 0);
	vgm_migration_free(m);
	vgm_lv_domain_free(f);
	virDomainFree(d);
	vgm_lv_close(c);
}

/* Presence as the job's `where` sees it, and attaching to a domain with no
 * migration job returns at once without starting one. */
static void test_presence_and_attach(void **state)
{
	(void)state;
	virConnectPtr c = NULL;
	assert_int_equal(vgm_lv_open("test:///default", &c, NULL), 0);
	virDomainPtr d = NULL;
	assert_int_equal(vgm_lv_lookup(c, "test", &d, NULL), 0);
	char uuid[VIR_UUID_STRING_BUFLEN];
	assert_int_equal(virDomainGetUUIDString(d, uuid), 0);
	assert_int_equal(vgm_lv_domain_presence(NULL, uuid, false), VGM_LV_UNREACHABLE);
	assert_int_equal(vgm_lv_domain_presence(c, uuid, false), VGM_LV_RUNNING);
	assert_int_equal(vgm_lv_domain_presence(c, uuid, true), VGM_LV_RUNNING);
	assert_int_equal(vgm_lv_domain_presence(c, "00000000-0000-4000-8000-000000000000", false),
			 VGM_LV_ABSENT);
	assert_int_equal(virDomainSuspend(d), 0); /* paused by a user: still runs here */
	assert_int_equal(vgm_lv_domain_presence(c, uuid, true), VGM_LV_RUNNING);
	assert_int_equal(virDomainResume(d), 0);
	vgm_migration_opts o = { .dest_uri = "test:///default", .poll_ms = 10 };
	vgm_migration *m = NULL;
	assert_int_equal(vgm_migration_new(&o, &m, NULL), 0);
	vgm_migration_summary sum;
	assert_int_equal(vgm_migration_attach(m, d, NULL, NULL, &sum, NULL), 0);
	assert_false(sum.aborted);
	vgm_migration_free(m);
	assert_int_equal(virDomainDestroy(d), 0);
	assert_int_equal(vgm_lv_domain_presence(c, uuid, false), VGM_LV_STOPPED);
	virDomainFree(d);
	vgm_lv_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_postcopy_refused),
		cmocka_unit_test(test_sample_parse),
		cmocka_unit_test(test_domain_facts),
		cmocka_unit_test(test_presence_and_attach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
