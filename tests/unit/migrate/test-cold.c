/* test-cold.c: the cold-migration job against a fake pair of hosts: the
 * happy path (the target's XML carries the claimed vGPU ids), a failure at
 * every step before the point of no return with the rollback that must
 * follow (VM running on the source with its own vGPUs, nothing left on the
 * target), --force after a shutdown timeout, a failing rollback, and
 * warnings after the point of no return. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/cold.h"

#define SRC_UUID "c2177883-f1bb-47f0-914d-32a22e3a8804"
#define DST_UUID "9b9c0f2e-55d4-4a8e-9d0e-1f4b3c2a1d00"

static const char domain_xml[] =
	"<domain type='kvm'><name>gpu-vm</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
	"<memory unit='KiB'>1048576</memory><os><type arch='x86_64'>hvm</type></os><devices>"
	"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='" SRC_UUID
	"'/></source></hostdev></devices></domain>";

typedef struct fake {
	const char *fail;      /* the op that fails */
	const char *fail_undo; /* an undo op that fails */
	int fail_errno;
	bool shutdown_hangs;   /* shutdown returns -ETIMEDOUT */
	bool transient;        /* no persistent XML */
	/* the world */
	bool src_running, src_defined, src_vgpus;
	bool dst_defined, dst_running, claim_held, claim_committed;
	char *dst_xml;
	char calls[512];
	char phases[1024];
	vgm_idmap map[1];
} fake;

static int op(fake *f, const char *name, vgm_error *err)
{
	size_t off = strlen(f->calls);
	snprintf(f->calls + off, sizeof(f->calls) - off, "%s%s", off ? " " : "", name);
	if ((f->fail && STREQ(f->fail, name)) || (f->fail_undo && STREQ(f->fail_undo, name)))
		return vgm_error_setr(err, f->fail_errno ? f->fail_errno : EIO, "injected",
				      "injected failure of %s", name);
	return 0;
}

static int f_check(void *ud, vgm_error *err) { return op(ud, "check", err); }
static const char *f_source_xml(void *ud) { return ((fake *)ud)->transient ? NULL : domain_xml; }

static int f_claim(void *ud, const vgm_idmap **map, size_t *n, vgm_error *err)
{
	fake *f = ud;
	f->claim_held = true; /* a failed claim call may still have claimed */
	int r = op(f, "claim", err);
	f->map[0] = (vgm_idmap){ SRC_UUID, DST_UUID };
	*map = f->map;
	*n = 1;
	return r;
}

static int f_shutdown(void *ud, uint64_t timeout_ms, vgm_error *err)
{
	fake *f = ud;
	assert_int_equal(timeout_ms, 5000);
	int r = op(f, "shutdown", err);
	if (r < 0)
		return r;
	if (f->shutdown_hangs)
		return vgm_error_set(err, ETIMEDOUT, "guest still running");
	f->src_running = false;
	return 0;
}

static int f_destroy(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "destroy", err);
	if (r >= 0)
		f->src_running = false;
	return r;
}

static int f_define(void *ud, const char *xml, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "define", err);
	if (r >= 0) {
		f->dst_defined = true;
		f->dst_xml = strdup(xml);
	}
	return r;
}

static int f_start_target(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "start_target", err);
	if (r >= 0)
		f->dst_running = true;
	return r;
}

static int f_commit(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "commit", err);
	if (r >= 0)
		f->claim_committed = true;
	return r;
}

static int f_release_source(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "release_source", err);
	if (r >= 0)
		f->src_defined = f->src_vgpus = false;
	return r;
}

static int f_undefine_target(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "undefine_target", err);
	if (r >= 0)
		f->dst_defined = f->dst_running = false;
	return r;
}

static int f_start_source(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "start_source", err);
	if (r >= 0)
		f->src_running = true;
	return r;
}

static int f_release_target(void *ud, vgm_error *err)
{
	fake *f = ud;
	int r = op(f, "release_target", err);
	if (r >= 0)
		f->claim_held = false;
	return r;
}

static void f_record(void *ud, const char *phase, const char *outcome, const char *detail)
{
	fake *f = ud;
	size_t off = strlen(f->phases);
	snprintf(f->phases + off, sizeof(f->phases) - off, "%s%s:%s", off ? " " : "", phase, outcome);
}

static const vgm_cold_ops ops = {
	f_check, f_source_xml, f_claim, f_shutdown, f_destroy, f_define, f_start_target, f_commit,
	f_release_source, f_undefine_target, f_start_source, f_release_target, f_record,
};

static int run(fake *f, bool force, vgm_cold_result *res, vgm_error *err)
{
	f->src_running = f->src_defined = f->src_vgpus = true;
	vgm_cold_opts o = { 5000, force };
	return vgm_cold_run(&ops, f, &o, res, err);
}

static void assert_back_on_source(const fake *f, const vgm_cold_result *res)
{
	assert_true(res->rolled_back);
	assert_false(res->moved);
	assert_true(f->src_running);
	assert_true(f->src_vgpus);
	assert_false(f->dst_defined);
	assert_false(f->dst_running);
	assert_false(f->claim_held);
}

static void test_success(void **state)
{
	(void)state;
	fake f = { 0 };
	vgm_cold_result res;
	vgm_error err = { 0 };
	assert_int_equal(run(&f, false, &res, &err), 0);
	assert_string_equal(f.calls,
			    "check claim shutdown define start_target commit release_source");
	assert_true(res.moved);
	assert_string_equal(res.warnings, "");
	assert_string_equal(res.phase, "done");
	assert_non_null(strstr(f.dst_xml, DST_UUID));
	assert_null(strstr(f.dst_xml, SRC_UUID));
	assert_false(f.src_defined);
	assert_true(f.dst_running && f.claim_committed);
	/* every phase recorded before it acts */
	assert_non_null(strstr(f.phases, "shutting_down:started shutting_down:ok defining:started"));
	free(f.dst_xml);
}

/* A failure at each step before the point of no return: what was done is
 * undone, newest first, and the VM runs on the source again. */
static void test_fail_every_step(void **state)
{
	(void)state;
	static const struct {
		const char *fail;
		const char *phase;
		const char *calls;
	} cases[] = {
		{ "check", "checking", "check" },
		{ "claim", "claiming", "check claim release_target" },
		{ "shutdown", "shutting_down", "check claim shutdown start_source release_target" },
		{ "define", "defining",
		  "check claim shutdown define undefine_target start_source release_target" },
		{ "start_target", "starting",
		  "check claim shutdown define start_target undefine_target start_source release_target" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake f = { .fail = cases[i].fail };
		vgm_cold_result res;
		vgm_error err = { 0 };
		assert_int_equal(run(&f, false, &res, &err), -EIO);
		assert_string_equal(f.calls, cases[i].calls);
		assert_back_on_source(&f, &res);
		assert_string_equal(err.reason, "injected");
		char want[96];
		snprintf(want, sizeof(want), "cold migration failed at %s", cases[i].phase);
		assert_non_null(strstr(err.message, want));
		assert_non_null(strstr(f.phases, "done:rolled_back"));
		free(f.dst_xml);
	}
}

static void test_shutdown_timeout(void **state)
{
	(void)state;
	fake f = { .shutdown_hangs = true };
	vgm_cold_result res;
	vgm_error err = { 0 };
	assert_int_equal(run(&f, false, &res, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.message, "use --force"));
	assert_string_equal(f.calls, "check claim shutdown start_source release_target");
	assert_back_on_source(&f, &res);

	fake g = { .shutdown_hangs = true };
	assert_int_equal(run(&g, true, &res, &err), 0);
	assert_string_equal(g.calls,
			    "check claim shutdown destroy define start_target commit release_source");
	assert_true(res.moved);
	free(g.dst_xml);

	fake h = { .shutdown_hangs = true, .fail = "destroy" };
	assert_int_equal(run(&h, true, &res, &err), -EIO);
	assert_back_on_source(&h, &res);
	assert_non_null(strstr(err.message, "at destroying"));
}

/* The undo itself fails: the error says so and what to look at; the other
 * undo steps still run. */
static void test_rollback_fails(void **state)
{
	(void)state;
	fake f = { .fail = "start_target", .fail_undo = "start_source" };
	vgm_cold_result res;
	vgm_error err = { 0 };
	assert_int_equal(run(&f, false, &res, &err), -EIO);
	assert_true(res.rollback_failed);
	assert_false(res.rolled_back);
	assert_non_null(strstr(err.message, "at starting"));
	assert_non_null(strstr(err.message, "rollback failed too (start_source"));
	assert_false(f.claim_held); /* release_target ran anyway */
	assert_false(f.dst_defined);
	free(f.dst_xml);
}

/* After the VM runs on the target, commit and release failures are
 * warnings, never a rollback. */
static void test_after_point_of_no_return(void **state)
{
	(void)state;
	fake f = { .fail = "commit" };
	vgm_cold_result res;
	vgm_error err = { 0 };
	assert_int_equal(run(&f, false, &res, &err), 0);
	assert_true(res.moved);
	assert_true(f.dst_running);
	assert_false(f.src_running);
	assert_non_null(strstr(res.warnings, "committing: injected failure of commit"));
	assert_string_equal(f.calls,
			    "check claim shutdown define start_target commit release_source");
	free(f.dst_xml);

	fake g = { .fail = "release_source" };
	assert_int_equal(run(&g, false, &res, &err), 0);
	assert_non_null(strstr(res.warnings, "releasing"));
	assert_non_null(strstr(g.phases, "done:warnings"));
	free(g.dst_xml);
}

static void test_not_persistent(void **state)
{
	(void)state;
	fake f = { .transient = true };
	vgm_cold_result res;
	vgm_error err = { 0 };
	assert_int_equal(run(&f, false, &res, &err), -EINVAL);
	assert_string_equal(err.reason, "domain_not_persistent");
	assert_string_equal(f.calls, "check claim release_target");
	assert_true(f.src_running);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_fail_every_step),
		cmocka_unit_test(test_shutdown_timeout),
		cmocka_unit_test(test_rollback_fails),
		cmocka_unit_test(test_after_point_of_no_return),
		cmocka_unit_test(test_not_persistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
