/* test-model.c: the pre-copy plan (closed-form cases), non-convergence, the
 * controller on scripted job-stat sequences, and the simulator driving the
 * controller the way lib/migrate does. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "model/units.h"

#define MiB (1024ull * 1024ull)
#define GiB (1024ull * MiB)

static void assert_close(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9f, want %.9f (+-%g)", got, want, tol);
}

/* No fixed costs, whole rounds: the textbook geometric model. */
static vgm_model_input geometric(uint64_t ram, uint64_t bps, uint64_t dirty, uint64_t dl_ms)
{
	return (vgm_model_input){
		.ram_bytes = ram, .bandwidth_bps = bps, .dirty_bps = dirty, .downtime_limit_ms = dl_ms,
		.costs = { .bw_efficiency = 1.0 },
	};
}

static void test_units(void **state)
{
	(void)state;
	uint64_t v;
	vgm_error e = { 0 };
	assert_int_equal(vgm_parse_duration_ms("2s", &v, &e), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(vgm_parse_duration_ms("500ms", &v, &e), 0);
	assert_int_equal(v, 500);
	assert_int_equal(vgm_parse_duration_ms("1m", &v, &e), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(vgm_parse_duration_ms("1.5s", &v, &e), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(vgm_parse_duration_ms("250", &v, &e), 0);
	assert_int_equal(v, 250);
	assert_int_equal(vgm_parse_duration_ms("-2s", &v, &e), -EINVAL);
	assert_string_equal(e.reason, "bad_duration");
	assert_int_equal(vgm_parse_duration_ms("2 s", &v, &e), -EINVAL);
	assert_int_equal(vgm_parse_duration_ms("2x", &v, &e), -EINVAL);
	assert_int_equal(vgm_parse_duration_ms("", &v, &e), -EINVAL);
	assert_int_equal(vgm_parse_bandwidth_bps("100M", &v, &e), 0);
	assert_int_equal(v, 100 * MiB);
	assert_int_equal(vgm_parse_bandwidth_bps("1G", &v, &e), 0);
	assert_int_equal(v, GiB);
	assert_int_equal(vgm_parse_bandwidth_bps("100MiB/s", &v, &e), 0);
	assert_int_equal(v, 100 * MiB);
	assert_int_equal(vgm_parse_bandwidth_bps("1.5K", &v, &e), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(vgm_parse_bandwidth_bps("4096", &v, &e), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(vgm_parse_bandwidth_bps("0", &v, &e), -EINVAL);
	assert_int_equal(vgm_parse_bandwidth_bps("10Q", &v, &e), -EINVAL);
	assert_string_equal(e.reason, "bad_bandwidth");
	assert_int_equal(vgm_parse_bandwidth_bps("99999999999T", &v, &e), -EINVAL);
	char b[32];
	assert_string_equal(vgm_format_bytes(40 * MiB, b, sizeof(b)), "40.0 MiB");
	assert_string_equal(vgm_format_bytes(512, b, sizeof(b)), "512 B");
	assert_string_equal(vgm_format_bytes(3 * GiB / 2, b, sizeof(b)), "1.5 GiB");
	assert_string_equal(vgm_format_seconds(0.25, b, sizeof(b)), "250 ms");
	assert_string_equal(vgm_format_seconds(2.44, b, sizeof(b)), "2.4 s");
	assert_string_equal(vgm_format_seconds(185, b, sizeof(b)), "3m05s");
	assert_string_equal(vgm_format_seconds(-1, b, sizeof(b)), "never");
}

static void test_plan_idle_guest(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 100 * MiB, 0, 300);
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.total_s, 10.24, 1e-9);
	assert_close(p.downtime_s, 0, 1e-9);
	assert_int_equal(p.iterations, 3); /* setup sync, end of round 0, final sync */
	assert_int_equal(p.bytes_total, GiB);
	assert_string_equal(p.reason, "");
}

/* lambda = 1/2: rounds of 1024, 512, 256, 128, 64 MiB, then 32 MiB <= 38.4
 * MiB (128 MiB/s x 300 ms) goes in the stop-copy. */
static void test_plan_geometric_half(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 300);
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.lambda, 0.5, 1e-12);
	assert_close(p.precopy_s, 1984.0 / 128.0, 1e-9);
	assert_close(p.downtime_s, 32.0 / 128.0, 1e-9);
	assert_close(p.total_s, 15.75, 1e-9);
	assert_int_equal(p.iterations, 7);
	assert_int_equal(p.stop_copy_bytes, 32 * MiB);
	assert_int_equal(p.bytes_total, 2016 * MiB);
	assert_int_equal(p.threshold_bytes, (uint64_t)(128.0 * MiB * 0.3));

	/* Fixed costs add where the model says they do. */
	in.costs.setup_s = 1.0;
	in.costs.switchover_s = 0.05;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_close(p.total_s, 15.75 + 1.05, 1e-9);
	assert_close(p.downtime_s, 0.30, 1e-9);
}

static void test_plan_dirty_faster_than_link(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 20 * MiB, 40 * MiB, 300);
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_false(p.converges);
	assert_string_equal(p.reason,
			    "guest dirties 40.0 MiB/s but the link moves 20.0 MiB/s: pre-copy never converges");
	assert_true(p.total_s < 0);
	vgm_verdict v;
	vgm_model_verdict(&p, 2000, 0, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "not_converging");
	assert_string_equal(v.reason, p.reason);

	/* Same with QEMU's chunked loop: still never. */
	in.costs.chunk_s = 0.1;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_false(p.converges);
	assert_non_null(strstr(p.reason, "never converges"));
}

/* A guest that dirties fast but only a small buffer: rounds are capped by
 * the working set, which fits under the threshold. */
static void test_plan_working_set_fits(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 20 * MiB, 40 * MiB, 2000);
	in.working_set_bytes = 32 * MiB;
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.downtime_s, 32.0 / 20.0, 1e-9);
	assert_close(p.total_s, 1024.0 / 20.0 + 1.6, 1e-9);
	/* Under a tighter limit the buffer no longer fits: never. */
	in.downtime_limit_ms = 1000;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_false(p.converges);
}

static void test_plan_vgpu(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, GiB, 0, 300);
	in.vgpu_state_bytes = 4 * GiB;
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_false(p.converges);
	assert_non_null(strstr(p.reason, "vGPU state 4.0 GiB needs 4.0 s at 1.0 GiB/s"));
	assert_non_null(strstr(p.reason, "300 ms downtime limit"));

	/* 256 MiB of framebuffer at 1 GiB/s: a quarter second at switchover. */
	in.vgpu_state_bytes = 256 * MiB;
	in.downtime_limit_ms = 500;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.downtime_s, 0.25, 1e-9);
	assert_close(p.total_s, 1.25, 1e-9);
	assert_int_equal(p.bytes_total, GiB + 256 * MiB);

	/* A known vGPU pre-copy rate: the framebuffer is pre-copied like RAM. */
	in.vgpu_precopy = true;
	in.vgpu_dirty_bps = 0;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.downtime_s, 0, 1e-9);
	assert_close(p.total_s, 1.25, 1e-9);
}

/* The stop-copy ignores the cap: downtime is pending / link speed. */
static void test_plan_stop_copy_uncapped(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 300);
	in.link_bps = 1024 * MiB;
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_close(p.downtime_s, 32.0 / 1024.0, 1e-9);
	assert_close(p.precopy_s, 15.5, 1e-9);
}

static void test_plan_bad_input(void **state)
{
	(void)state;
	vgm_model_input in = geometric(0, MiB, 0, 300);
	vgm_plan p;
	vgm_error e = { 0 };
	assert_int_equal(vgm_model_plan(&in, &p, &e), -EINVAL);
	assert_string_equal(e.reason, "bad_plan_input");
	in = geometric(GiB, 0, 0, 300);
	assert_int_equal(vgm_model_plan(&in, &p, &e), -EINVAL);
	assert_non_null(strstr(e.message, "--bandwidth"));
}

/* QEMU's chunked loop converges like the geometric model but with more
 * syncs and a pause that stays under the limit. */
static void test_plan_chunked(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 300);
	in.costs.chunk_s = 0.1;
	vgm_plan p, g;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	in.costs.chunk_s = 0;
	assert_int_equal(vgm_model_plan(&in, &g, NULL), 0);
	assert_true(p.converges);
	assert_true(p.downtime_s <= 0.3 + 1e-9);
	assert_true(p.iterations >= g.iterations);
	assert_true(p.total_s > 8.0 && p.total_s < 2 * g.total_s);
}

static void test_verdict(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 300);
	vgm_plan p;
	vgm_verdict v;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	vgm_model_verdict(&p, 2000, 60000, &v);
	assert_true(v.ok);
	assert_string_equal(v.code, "ok");
	assert_string_equal(v.reason,
			    "expected total 15.8 s in 7 iterations, switchover 250 ms within --max-downtime 2.0 s");
	vgm_model_verdict(&p, 200, 0, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "downtime_exceeded");
	assert_string_equal(v.reason, "expected switchover 250 ms exceeds --max-downtime 200 ms");
	vgm_model_verdict(&p, 0, 10000, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "timeout_exceeded");
	assert_non_null(strstr(v.reason, "exceeds --timeout 10.0 s"));

	vgm_model_costs c = { .switchover_s = 0.03 };
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 2000), 1970);
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 20), 0);
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 0), 300);
}

/* ---- controller on scripted samples ---- */

static vgm_job_sample smp(uint64_t ms, uint64_t iter, uint64_t remaining, uint64_t dirty, uint64_t bps)
{
	return (vgm_job_sample){
		.time_elapsed_ms = ms, .memory_total = GiB, .memory_remaining = remaining,
		.memory_iteration = iter, .memory_dirty_rate_bps = dirty, .memory_bps = bps,
		.have = VGM_SAMPLE_HAVE_DIRTY | VGM_SAMPLE_HAVE_BPS,
	};
}

static vgm_ctl_config ctl_cfg(uint64_t max_dt, uint64_t timeout, uint64_t cap)
{
	vgm_ctl_config c = { .max_downtime_ms = max_dt, .timeout_ms = timeout, .bandwidth_cap_bps = cap };
	c.costs = vgm_model_default_costs();
	c.costs.switchover_s = 0.05;
	return c;
}

static void test_ctl_start(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(2000, 0, 20 * MiB);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	vgm_action a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(a.value, 1950);
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_SET_BANDWIDTH);
	assert_int_equal(a.value, 20 * MiB);
	assert_int_equal(vgm_ctl_start(&s).kind, VGM_ACT_NONE);

	/* A limit below the fixed switchover cost is refused at once. */
	c = ctl_cfg(40, 0, 0);
	vgm_ctl_init(&s, &c);
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.code, "downtime_exceeded");
	assert_string_equal(a.reason, "the fixed switchover cost 50 ms alone exceeds --max-downtime 40 ms");
	vgm_job_sample x = smp(100, 1, GiB, 0, MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);

	/* Start actions not taken before the first sample come out of step. */
	c = ctl_cfg(1000, 0, 0);
	vgm_ctl_init(&s, &c);
	a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(a.value, 950);
}

static void start_all(vgm_ctl_state *s)
{
	while (vgm_ctl_start(s).kind != VGM_ACT_NONE)
		;
}

static void test_ctl_healthy(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(2000, 120000, 0);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	/* 1 GiB at 128 MiB/s, guest dirtying 16 MiB/s: shrinking every round. */
	uint64_t rem = GiB, ms = 0;
	for (uint64_t it = 1; it <= 4; it++) {
		for (int k = 0; k < 8; k++, ms += 250) {
			vgm_job_sample x = smp(ms, it, rem, it >= 2 ? 16 * MiB : 0, 128 * MiB);
			vgm_action a = vgm_ctl_step(&s, &x);
			assert_int_equal(a.kind, VGM_ACT_NONE);
			rem = rem > 32 * MiB ? rem - 32 * MiB : 0;
		}
		rem = rem / 4 + 16 * MiB;
	}
	assert_true(s.eta_s >= 0);
	assert_true(s.expected_downtime_s > 0 && s.expected_downtime_s < 2.0);
}

static void test_ctl_dirty_faster(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(2000, 0, 0);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_job_sample x = smp(5000, 1, 100 * MiB, 0, 20 * MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x = smp(5250, 2, 200 * MiB, 40 * MiB, 20 * MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	/* Iteration 3 starts with as much left as iteration 2: not shrinking. */
	x = smp(15250, 3, 200 * MiB, 40 * MiB, 20 * MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x.time_elapsed_ms += 250;
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x.time_elapsed_ms += 250;
	vgm_action a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.code, "not_converging");
	assert_string_equal(a.reason,
			    "guest dirties 40.0 MiB/s but the link moves 20.0 MiB/s: pre-copy never converges");
	x.time_elapsed_ms += 250;
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	assert_int_equal(vgm_ctl_start(&s).kind, VGM_ACT_NONE);

	/* A dirty-rate spike while the rounds shrink is no reason to abort
	 * (QEMU reports the rate of the last, possibly tiny, sync period). */
	vgm_ctl_init(&s, &c);
	start_all(&s);
	x = smp(5250, 2, 200 * MiB, 70 * MiB, 20 * MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x = smp(9000, 3, 40 * MiB, 70 * MiB, 20 * MiB);
	for (int k = 0; k < 10; k++, x.time_elapsed_ms += 250)
		assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
}

/* The dirty rate looks fine but the RAM left at each iteration start does not
 * shrink (a hot working set above the threshold): abort after K iterations. */
static void test_ctl_stall(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(300, 0, 0);
	c.stall_iterations = 3;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_action a = { 0 };
	uint64_t it;
	for (it = 2; it <= 10 && a.kind == VGM_ACT_NONE; it++) {
		vgm_job_sample x = smp(it * 1000, it, 30 * MiB, 10 * MiB, 20 * MiB);
		a = vgm_ctl_step(&s, &x);
	}
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_int_equal(it - 1, 5); /* best at iteration 2, three iterations later */
	assert_string_equal(a.code, "not_converging");
	assert_non_null(strstr(a.reason, "has not shrunk for 3 iterations (iteration 5: 30.0 MiB; best 30.0 MiB at iteration 2)"));
	assert_non_null(strstr(a.reason, "250 ms downtime limit needs it under 5.0 MiB"));
}

static void test_ctl_timeout(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(2000, 10000, 0);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	/* Projection: 1 GiB at 10 MiB/s cannot fit in 10 s: three samples agree. */
	vgm_action a = { 0 };
	int n = 0;
	for (uint64_t ms = 500; a.kind == VGM_ACT_NONE && n < 10; ms += 250, n++) {
		vgm_job_sample x = smp(ms, 1, GiB - ms * 10 * MiB / 1000, 0, 10 * MiB);
		a = vgm_ctl_step(&s, &x);
	}
	assert_int_equal(n, 3);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.code, "timeout_exceeded");
	assert_non_null(strstr(a.reason, "projected completion"));
	assert_non_null(strstr(a.reason, "exceeds --timeout 10.0 s"));

	/* Plain timeout: no bandwidth figure at all, the clock alone decides. */
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_job_sample x = smp(9999, 3, MiB, 0, 0);
	x.have = 0;
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x.time_elapsed_ms = 10000;
	a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.reason, "migration did not finish within --timeout 10.0 s (iteration 3, 1.0 MiB of RAM still to send)");
}

static void test_ctl_vgpu_and_cap(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg(1000, 0, 0);
	c.vgpu_state_bytes = 2 * GiB;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_job_sample x = smp(1000, 1, GiB, 0, GiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_ABORT);

	c = ctl_cfg(1000, 0, 10 * MiB);
	vgm_ctl_init(&s, &c);
	start_all(&s);
	x = smp(1000, 1, GiB, 0, 40 * MiB);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	vgm_action a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_SET_BANDWIDTH);
	assert_int_equal(a.value, 10 * MiB);
}

/* ---- simulator ---- */

static void test_sim_matches_plan(void **state)
{
	(void)state;
	vgm_sim_truth t = { .m = geometric(GiB, 128 * MiB, 64 * MiB, 300) };
	t.m.costs = vgm_model_default_costs();
	for (int chunked = 0; chunked < 2; chunked++) {
		t.m.costs.chunk_s = chunked ? 0.1 : 0;
		vgm_plan p;
		vgm_sim_result r;
		assert_int_equal(vgm_model_plan(&t.m, &p, NULL), 0);
		vgm_sim_run(&t, NULL, &r);
		assert_true(r.completed);
		assert_false(r.aborted);
		assert_close(r.total_s, p.total_s, 1e-6);
		assert_close(r.downtime_s, p.downtime_s, 1e-6);
		assert_int_equal(r.iterations, p.iterations);
		assert_true(r.n_samples >= (unsigned)(p.total_s / 0.25) - 1);
		assert_int_equal(r.last.memory_iteration, p.iterations);
		assert_int_equal(r.last.memory_remaining, 0);
	}
}

static void test_sim_controller_healthy(void **state)
{
	(void)state;
	vgm_sim_truth t = { .m = geometric(GiB, 128 * MiB, 32 * MiB, 300) };
	t.m.costs = vgm_model_default_costs();
	vgm_ctl_config c = ctl_cfg(500, 60000, 0);
	c.costs = t.m.costs;
	vgm_sim_result r;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.completed);
	assert_true(r.downtime_s * 1000 <= 500);
	assert_int_equal(r.n_actions, 1);
	assert_int_equal(r.actions[0].kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(r.actions[0].value, 500 - 30);
}

static void test_sim_controller_aborts(void **state)
{
	(void)state;
	/* Dirtying 40 MiB/s over a 20 MiB/s link: aborted soon after round 0. */
	vgm_sim_truth t = { .m = geometric(512 * MiB, 20 * MiB, 40 * MiB, 300) };
	t.m.costs = vgm_model_default_costs();
	vgm_ctl_config c = ctl_cfg(2000, 0, 0);
	c.costs = t.m.costs;
	vgm_sim_result r;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.aborted);
	assert_false(r.completed);
	assert_int_equal(r.actions[r.n_actions - 1].kind, VGM_ACT_ABORT);
	assert_string_equal(r.actions[r.n_actions - 1].reason,
			    "guest dirties 40.0 MiB/s but the link moves 20.0 MiB/s: pre-copy never converges");
	assert_true(r.total_s < 3 * 512.0 / 20.0 + 5.0); /* round 0, then two more to see it */

	/* The guest turns hot mid-way: 2 MiB/s, then 60 MiB/s from 10 s on. */
	t.m.dirty_bps = 2 * MiB;
	t.dirty_change_at_s = 10;
	t.dirty_bps_after = 60 * MiB;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.aborted);
	assert_true(r.action_at_s[r.n_actions - 1] > 10);

	/* Far too much RAM for the timeout: aborted early, long before it. */
	t = (vgm_sim_truth){ .m = geometric(8 * GiB, 10 * MiB, MiB, 300) };
	t.m.costs = vgm_model_default_costs();
	c = ctl_cfg(2000, 60000, 0);
	c.costs = t.m.costs;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.aborted);
	assert_string_equal(r.actions[r.n_actions - 1].code, "timeout_exceeded");
	assert_true(r.total_s < 5.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_plan_idle_guest),
		cmocka_unit_test(test_plan_geometric_half),
		cmocka_unit_test(test_plan_dirty_faster_than_link),
		cmocka_unit_test(test_plan_working_set_fits),
		cmocka_unit_test(test_plan_vgpu),
		cmocka_unit_test(test_plan_stop_copy_uncapped),
		cmocka_unit_test(test_plan_bad_input),
		cmocka_unit_test(test_plan_chunked),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_ctl_start),
		cmocka_unit_test(test_ctl_healthy),
		cmocka_unit_test(test_ctl_dirty_faster),
		cmocka_unit_test(test_ctl_stall),
		cmocka_unit_test(test_ctl_timeout),
		cmocka_unit_test(test_ctl_vgpu_and_cap),
		cmocka_unit_test(test_sim_matches_plan),
		cmocka_unit_test(test_sim_controller_healthy),
		cmocka_unit_test(test_sim_controller_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
