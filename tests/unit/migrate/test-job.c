/* test-job.c: lib/migrate/job.c against fake operations (no libvirt, no
 * network, no store): every step fails in turn and the test checks what the
 * job recorded, what it undid and what it never did; the ambiguous libvirt
 * error is decided by where the VM runs; a job found in the store resumes
 * from its phase without starting libvirt's migration again. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/job.h"

#define SRC_UUID "c2177883-f1bb-47f0-914d-32a22e3a8804"
#define DST_UUID "5b1d1ec0-3a3b-4b0e-9d7e-2f1f0c9a7e01"
#define DOM_UUID "11111111-2222-4333-8444-555555555555"

static const char dom_xml[] =
	"<domain type='kvm'><name>vm1</name><uuid>" DOM_UUID "</uuid>"
	"<memory unit='KiB'>1048576</memory><devices>"
	"<hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
	"<source><address uuid='" SRC_UUID "'/></source></hostdev>"
	"</devices></domain>";

typedef struct fake {
	char trace[64][40];
	size_t n;
	const char *fail_at;          /* op name (or "record:<phase>") that fails */
	vgm_job_where where[8];       /* answers in turn; the last one repeats */
	size_t n_where, where_i;
	bool plan_ok;
	bool abort_in_check;
	vgm_job *job;
	char *migrate_live;
	vgm_ctl_config ctl;
	char finish_state[16];
	char finish_reason[48];
} fake;

static void add(fake *f, const char *prefix, const char *what)
{
	assert_true(f->n < 64);
	snprintf(f->trace[f->n++], sizeof(f->trace[0]), "%s%s", prefix, what);
}

static bool traced(const fake *f, const char *what)
{
	for (size_t i = 0; i < f->n; i++)
		if (STREQ(f->trace[i], what))
			return true;
	return false;
}

static int pos(const fake *f, const char *what)
{
	for (size_t i = 0; i < f->n; i++)
		if (STREQ(f->trace[i], what))
			return (int)i;
	return -1;
}

/* Every op: log, then fail when it is the chosen one. */
static int op(fake *f, const char *name, vgm_error *err)
{
	add(f, "", name);
	if (f->fail_at && STREQ(f->fail_at, name))
		return vgm_error_setr(err, EIO, "fake_failure", "%s failed (injected)", name);
	return 0;
}

static int f_inspect(void *ctx, vgm_job *j, vgm_job_domain *d, vgm_error *err)
{
	(void)j;
	int r = op(ctx, "inspect", err);
	if (r < 0)
		return r;
	d->name = strdup("vm1");
	snprintf(d->uuid, sizeof(d->uuid), DOM_UUID);
	d->memory_bytes = 1u << 30;
	d->xml_live = strdup(dom_xml);
	d->xml_persistent = strdup(dom_xml);
	d->n_vgpus = 1;
	d->vgpu_state_bytes = 4096;
	return 0;
}

static int f_check(void *ctx, vgm_job *j, vgm_error *err)
{
	fake *f = ctx;
	if (f->abort_in_check)
		vgm_job_request_abort(j, "operator said stop");
	return op(ctx, "peer_check", err);
}

static int f_claim(void *ctx, vgm_job *j, vgm_job_claim *c, vgm_error *err)
{
	(void)j;
	int r = op(ctx, "peer_claim", err);
	if (r < 0)
		return r;
	c->claim_id = strdup("99999999-0000-4000-8000-000000000001");
	c->source_ids = calloc(1, sizeof(char *));
	c->target_ids = calloc(1, sizeof(char *));
	c->source_ids[0] = strdup(SRC_UUID);
	c->target_ids[0] = strdup(DST_UUID);
	c->n = 1;
	return 0;
}

static int f_commit(void *ctx, vgm_job *j, const char *id, vgm_error *err)
{
	(void)j;
	(void)id;
	return op(ctx, "peer_commit", err);
}

static int f_release(void *ctx, vgm_job *j, const char *id, vgm_error *err)
{
	(void)j;
	assert_string_equal(id, "99999999-0000-4000-8000-000000000001");
	return op(ctx, "peer_release", err);
}

static int f_plan(void *ctx, vgm_job *j, vgm_verdict *v, vgm_error *err)
{
	fake *f = ctx;
	(void)j;
	*v = (vgm_verdict){ .ok = f->plan_ok };
	snprintf(v->code, sizeof(v->code), f->plan_ok ? "ok" : "downtime_exceeded");
	snprintf(v->reason, sizeof(v->reason), f->plan_ok ? "fits" : "pause 9 s > 1 s");
	return op(ctx, "plan", err);
}

static int f_migrate(void *ctx, vgm_job *j, const char *live, const char *persist,
		     const vgm_ctl_config *ctl, vgm_error *err)
{
	fake *f = ctx;
	(void)j;
	(void)persist;
	free(f->migrate_live);
	f->migrate_live = live ? strdup(live) : NULL;
	f->ctl = *ctl;
	return op(ctx, "migrate", err);
}

static int f_monitor(void *ctx, vgm_job *j, const vgm_ctl_config *ctl, vgm_error *err)
{
	fake *f = ctx;
	(void)j;
	f->ctl = *ctl;
	return op(ctx, "monitor", err);
}

static vgm_job_where f_where(void *ctx, vgm_job *j)
{
	fake *f = ctx;
	assert_string_equal(vgm_job_domain_uuid(j), DOM_UUID);
	add(f, "", "where");
	if (!f->n_where)
		return VGM_WHERE_UNKNOWN;
	size_t i = f->where_i < f->n_where ? f->where_i++ : f->n_where - 1;
	return f->where[i];
}

static int f_release_source(void *ctx, vgm_job *j, vgm_error *err)
{
	(void)j;
	return op(ctx, "release_source", err);
}

static int f_record(void *ctx, vgm_job *j, const char *phase, vgm_error *err)
{
	char name[40];
	(void)j;
	snprintf(name, sizeof(name), "record:%s", phase);
	return op(ctx, name, err);
}

static void f_finish(void *ctx, vgm_job *j, const char *state, const vgm_error *why)
{
	fake *f = ctx;
	(void)j;
	add(f, "finish:", state);
	snprintf(f->finish_state, sizeof(f->finish_state), "%s", state);
	snprintf(f->finish_reason, sizeof(f->finish_reason), "%s", why ? why->reason : "");
}

static void f_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
}

static vgm_job_ops fake_ops(fake *f)
{
	return (vgm_job_ops){
		.inspect = f_inspect, .peer_check = f_check, .peer_claim = f_claim,
		.peer_commit = f_commit, .peer_release = f_release, .plan = f_plan,
		.migrate = f_migrate, .monitor = f_monitor, .where = f_where,
		.release_source = f_release_source, .record = f_record, .finish = f_finish,
		.sleep_ms = f_sleep, .ctx = f,
	};
}

static const vgm_job_params params = {
	.id = "mig-1", .domain = "vm1", .to = "host-b",
	.max_downtime_ms = { true, 1000 }, .bandwidth_bps = { false, 0 },
	.timeout_ms = { true, 60000 },
};

static int run_fresh(fake *f, const vgm_job_params *p, vgm_error *err)
{
	vgm_job_ops ops = fake_ops(f);
	vgm_job *j = NULL;
	assert_int_equal(vgm_job_new(p ? p : &params, &ops, &j, NULL), 0);
	f->job = j;
	int r = vgm_job_run(j, err);
	vgm_job_free(j);
	f->job = NULL;
	return r;
}

static void fake_done(fake *f)
{
	free(f->migrate_live);
}

static void expect_trace(const fake *f, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n && i < f->n; i++)
		if (!STREQ(f->trace[i], want[i]))
			fail_msg("step %zu: got %s, want %s", i, f->trace[i], want[i]);
	if (f->n != n)
		fail_msg("%zu steps, want %zu (last: %s)", f->n, n, f->n ? f->trace[f->n - 1] : "-");
}

static void test_happy_path(void **state)
{
	(void)state;
	fake f = { .plan_ok = true };
	vgm_error err = { 0 };
	assert_int_equal(run_fresh(&f, NULL, &err), 0);
	static const char *const want[] = {
		"record:inspecting", "inspect",	    "record:checking",  "peer_check",
		"record:claiming",   "peer_claim",  "record:rewriting", "record:planning",
		"plan",		     "record:migrating", "migrate",	"record:committing",
		"peer_commit",	     "record:releasing", "release_source", "finish:succeeded",
	};
	expect_trace(&f, want, ARRAY_SIZE(want));
	/* libvirt got the target's vGPU, and the limits unchanged */
	assert_non_null(strstr(f.migrate_live, DST_UUID));
	assert_null(strstr(f.migrate_live, SRC_UUID));
	assert_true(f.ctl.max_downtime_ms.set);
	assert_int_equal(f.ctl.max_downtime_ms.value, 1000);
	assert_true(f.ctl.timeout_ms.set);
	assert_int_equal(f.ctl.timeout_ms.value, 60000);
	assert_false(f.ctl.bandwidth_cap_bps.set);
	/* pre-copy or not is decided in flight */
	assert_int_equal(f.ctl.vgpu_unknown_bytes, 4096);
	fake_done(&f);
}

/* Every step before libvirt fails in turn: nothing is committed, libvirt is
 * never called, the claim (once made) is released after recording it. */
static void test_each_step_fails(void **state)
{
	(void)state;
	static const char *const steps[] = {
		"record:inspecting", "inspect",		"record:checking", "peer_check",
		"record:claiming",   "peer_claim",	"record:rewriting", "record:planning",
		"plan",		     "record:migrating",
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		fake f = { .plan_ok = true, .fail_at = steps[i] };
		vgm_error err = { 0 };
		assert_true(run_fresh(&f, NULL, &err) < 0);
		assert_string_equal(err.reason, "fake_failure");
		assert_string_equal(f.finish_state, "failed");
		assert_false(traced(&f, "migrate"));
		assert_false(traced(&f, "peer_commit"));
		assert_false(traced(&f, "release_source"));
		bool claimed = pos(&f, "peer_claim") >= 0 && !STREQ(steps[i], "peer_claim");
		assert_int_equal(traced(&f, "peer_release"), claimed);
		if (claimed)
			assert_int_equal(pos(&f, "record:releasing_target") + 1,
					 pos(&f, "peer_release"));
		fake_done(&f);
	}
}

static void test_plan_refused_and_forced(void **state)
{
	(void)state;
	fake f = { .plan_ok = false };
	vgm_error err = { 0 };
	assert_int_equal(run_fresh(&f, NULL, &err), -EDOM);
	assert_string_equal(err.reason, "downtime_exceeded");
	assert_true(traced(&f, "peer_release"));
	assert_false(traced(&f, "migrate"));
	fake_done(&f);
	fake g = { .plan_ok = false };
	vgm_job_params p = params;
	p.force = true;
	assert_int_equal(run_fresh(&g, &p, &err), 0);
	assert_true(traced(&g, "migrate"));
	fake_done(&g);
}

static void test_dry_run(void **state)
{
	(void)state;
	fake f = { .plan_ok = true };
	vgm_job_params p = params;
	p.dry_run = true;
	assert_int_equal(run_fresh(&f, &p, NULL), 0);
	assert_false(traced(&f, "migrate"));
	assert_false(traced(&f, "peer_commit"));
	assert_true(traced(&f, "peer_release"));
	assert_string_equal(f.finish_state, "succeeded");
	fake_done(&f);
}

static void test_abort_before_claim(void **state)
{
	(void)state;
	fake f = { .plan_ok = true, .abort_in_check = true };
	vgm_error err = { 0 };
	assert_int_equal(run_fresh(&f, NULL, &err), -ECANCELED);
	assert_string_equal(f.finish_state, "aborted");
	assert_false(traced(&f, "peer_claim"));
	assert_non_null(strstr(err.message, "operator said stop"));
	fake_done(&f);
}

/* libvirt failed, the VM stayed: the claim goes back only after `where`. */
static void test_migrate_fails_vm_on_source(void **state)
{
	(void)state;
	fake f = { .plan_ok = true, .fail_at = "migrate", .where = { VGM_WHERE_SOURCE }, .n_where = 1 };
	vgm_error err = { 0 };
	assert_true(run_fresh(&f, NULL, &err) < 0);
	assert_true(pos(&f, "record:deciding") < pos(&f, "where"));
	assert_true(pos(&f, "where") < pos(&f, "peer_release"));
	assert_false(traced(&f, "peer_commit"));
	assert_false(traced(&f, "release_source"));
	assert_string_equal(f.finish_state, "failed");
	fake_done(&f);
}

/* libvirt failed, but the VM did arrive: it keeps its vGPU there. */
static void test_migrate_fails_vm_on_target(void **state)
{
	(void)state;
	fake f = { .plan_ok = true, .fail_at = "migrate",
		   .where = { VGM_WHERE_UNKNOWN, VGM_WHERE_MOVING, VGM_WHERE_TARGET }, .n_where = 3 };
	vgm_error err = { 0 };
	assert_int_equal(run_fresh(&f, NULL, &err), 0);
	assert_false(traced(&f, "peer_release"));
	assert_true(traced(&f, "peer_commit"));
	assert_true(traced(&f, "release_source"));
	assert_string_equal(f.finish_state, "succeeded");
	fake_done(&f);
}

/* Nobody can say where the VM is: keep the claim, leave the job open. */
static void test_migrate_fails_where_unknown(void **state)
{
	(void)state;
	fake f = { .plan_ok = true, .fail_at = "migrate", .where = { VGM_WHERE_UNKNOWN }, .n_where = 1 };
	vgm_error err = { 0 };
	assert_int_equal(run_fresh(&f, NULL, &err), -EINPROGRESS);
	assert_string_equal(err.reason, "outcome_unknown");
	assert_non_null(strstr(err.message, "injected"));
	assert_false(traced(&f, "peer_release"));
	assert_false(traced(&f, "peer_commit"));
	assert_false(traced(&f, "finish:failed"));
	assert_string_equal(f.trace[pos(&f, "record:deciding")], "record:deciding");
	fake_done(&f);
}

/* A commit that fails after the VM landed is not a failed migration. */
static void test_commit_fails_still_succeeds(void **state)
{
	(void)state;
	fake f = { .plan_ok = true, .fail_at = "peer_commit" };
	assert_int_equal(run_fresh(&f, NULL, NULL), 0);
	assert_true(traced(&f, "release_source"));
	assert_false(traced(&f, "peer_release"));
	fake_done(&f);
}

static int resume(fake *f, const char *phase, const char *claim_id, vgm_error *err)
{
	vgm_job_ops ops = fake_ops(f);
	vgm_job *j = NULL;
	assert_int_equal(vgm_job_new_resumed(&params, phase, DOM_UUID, claim_id, &ops, &j, NULL), 0);
	int r = vgm_job_run(j, err);
	vgm_job_free(j);
	return r;
}

#define CLAIM "99999999-0000-4000-8000-000000000001"

static void test_resume_still_migrating(void **state)
{
	(void)state;
	fake f = { .where = { VGM_WHERE_MOVING, VGM_WHERE_TARGET }, .n_where = 2 };
	assert_int_equal(resume(&f, "migrating", CLAIM, NULL), 0);
	assert_true(traced(&f, "monitor"));
	assert_false(traced(&f, "migrate")); /* never started twice */
	assert_true(pos(&f, "monitor") < pos(&f, "peer_commit"));
	assert_true(traced(&f, "release_source"));
	assert_int_equal(f.ctl.max_downtime_ms.value, 1000); /* the controller continues */
	fake_done(&f);
}

static void test_resume_migration_ended(void **state)
{
	(void)state;
	fake f = { .where = { VGM_WHERE_SOURCE }, .n_where = 1 };
	vgm_error err = { 0 };
	assert_true(resume(&f, "migrating", CLAIM, &err) < 0);
	assert_false(traced(&f, "monitor"));
	assert_true(traced(&f, "peer_release"));
	assert_false(traced(&f, "peer_commit"));
	assert_string_equal(f.finish_state, "failed");
	fake_done(&f);
	fake g = { .where = { VGM_WHERE_TARGET }, .n_where = 1 };
	assert_int_equal(resume(&g, "deciding", CLAIM, NULL), 0);
	assert_true(traced(&g, "peer_commit"));
	assert_false(traced(&g, "peer_release"));
	fake_done(&g);
}

/* Before libvirt: roll back what the record says was taken. */
static void test_resume_before_libvirt(void **state)
{
	(void)state;
	fake f = { 0 };
	vgm_error err = { 0 };
	assert_true(resume(&f, "claiming", NULL, &err) < 0);
	assert_string_equal(err.reason, "agent_restarted");
	assert_non_null(strstr(err.message, "lease"));
	assert_false(traced(&f, "peer_release"));
	assert_false(traced(&f, "where"));
	fake_done(&f);
	fake g = { 0 };
	assert_true(resume(&g, "planning", CLAIM, &err) < 0);
	assert_true(traced(&g, "peer_release"));
	assert_false(traced(&g, "where"));
	assert_string_equal(g.finish_state, "failed");
	fake_done(&g);
}

/* A decision once recorded is carried out again, never reversed. */
static void test_resume_decided(void **state)
{
	(void)state;
	fake f = { .where = { VGM_WHERE_SOURCE }, .n_where = 1 };
	assert_int_equal(resume(&f, "committing", CLAIM, NULL), 0);
	assert_true(traced(&f, "peer_commit"));
	assert_true(traced(&f, "release_source"));
	assert_false(traced(&f, "where"));
	assert_false(traced(&f, "peer_release"));
	fake_done(&f);
	fake g = { 0 };
	assert_true(resume(&g, "releasing_target", CLAIM, NULL) < 0);
	assert_true(traced(&g, "peer_release"));
	assert_false(traced(&g, "peer_commit"));
	fake_done(&g);
	vgm_job_ops ops = fake_ops(&g);
	vgm_job *j = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_job_new_resumed(&params, "bogus", NULL, NULL, &ops, &j, &err), -EINVAL);
	assert_non_null(strstr(err.message, "bogus"));
}

static void test_where_combine(void **state)
{
	(void)state;
	assert_int_equal(vgm_job_where_combine(VGM_LV_UNREACHABLE, VGM_LV_RUNNING), VGM_WHERE_TARGET);
	assert_int_equal(vgm_job_where_combine(VGM_LV_MIGRATING, VGM_LV_INCOMING), VGM_WHERE_MOVING);
	assert_int_equal(vgm_job_where_combine(VGM_LV_RUNNING, VGM_LV_UNREACHABLE), VGM_WHERE_SOURCE);
	assert_int_equal(vgm_job_where_combine(VGM_LV_RUNNING, VGM_LV_ABSENT), VGM_WHERE_SOURCE);
	assert_int_equal(vgm_job_where_combine(VGM_LV_STOPPED, VGM_LV_INCOMING), VGM_WHERE_UNKNOWN);
	assert_int_equal(vgm_job_where_combine(VGM_LV_UNREACHABLE, VGM_LV_ABSENT), VGM_WHERE_UNKNOWN);
	assert_int_equal(vgm_job_where_combine(VGM_LV_STOPPED, VGM_LV_UNREACHABLE), VGM_WHERE_UNKNOWN);
	assert_int_equal(vgm_job_where_combine(VGM_LV_ABSENT, VGM_LV_STOPPED), VGM_WHERE_NOWHERE);
}

static void test_bad_params(void **state)
{
	(void)state;
	fake f = { 0 };
	vgm_job_ops ops = fake_ops(&f);
	vgm_job_params p = params;
	p.to = "";
	vgm_job *j = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_job_new(&p, &ops, &j, &err), -EINVAL);
	assert_null(j);
	assert_string_equal(err.reason, "invalid_request");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),
		cmocka_unit_test(test_each_step_fails),
		cmocka_unit_test(test_plan_refused_and_forced),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_abort_before_claim),
		cmocka_unit_test(test_migrate_fails_vm_on_source),
		cmocka_unit_test(test_migrate_fails_vm_on_target),
		cmocka_unit_test(test_migrate_fails_where_unknown),
		cmocka_unit_test(test_commit_fails_still_succeeds),
		cmocka_unit_test(test_resume_still_migrating),
		cmocka_unit_test(test_resume_migration_ended),
		cmocka_unit_test(test_resume_before_libvirt),
		cmocka_unit_test(test_resume_decided),
		cmocka_unit_test(test_where_combine),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
