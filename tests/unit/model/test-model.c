/* test-model.c: units, the pre-copy plan (closed-form cases, device
 * pre-copy, the stopping rule), the verdict, and the simulator driving the
 * controller the way lib/migrate does (test-controller.c has the
 * controller's rules on hand-made samples). */
#include "model-test.h"

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
	in.vgpu_precopy = VGM_PRECOPY_YES;
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

/* Device pre-copy: a second region; QEMU may not switch before the device's
 * initial data is out (switchover-ack), however generous the limit. */
static void test_plan_device_precopy(void **state)
{
	(void)state;
	vgm_model_input in = geometric(16 * MiB, GiB, 0, 2000);
	in.costs.chunk_s = 0.1;
	in.vgpu_state_bytes = GiB;
	in.vgpu_precopy = VGM_PRECOPY_NO;
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	/* All of it fits in 2 s at once: QEMU switches at the first check. */
	assert_true(p.converges);
	assert_true(p.precopy_s < 0.01);
	assert_close(p.downtime_s, (16.0 + 1024.0) / 1024.0, 0.01);
	in.vgpu_precopy = VGM_PRECOPY_YES;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_true(p.precopy_s >= (1024.0 + 16.0) / 1024.0 - 1e-6); /* the device's data first */
	assert_true(p.downtime_s < 0.01);
	/* Unknown is planned as stop-copy: the longer pause. */
	in.vgpu_precopy = VGM_PRECOPY_UNKNOWN;
	vgm_plan u;
	assert_int_equal(vgm_model_plan(&in, &u, NULL), 0);
	assert_true(u.downtime_s > 0.9);
}

/* The controller's rule in the plan (downtime_limit_ms 0): lambda 1/2, 1 GiB
 * of stop-copy vGPU state; rounds of 512, 256, 128 MiB each save at least
 * 5% of the pause, the one after 64 MiB would save 0.25 s of 8.5 s: stop. */
static void test_plan_stops_when_precopy_stops_paying(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 0);
	in.costs.gain_min = 0.05;
	in.vgpu_state_bytes = GiB;
	in.vgpu_precopy = VGM_PRECOPY_NO;
	vgm_plan p;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_true(p.converges);
	assert_close(p.downtime_s, (64.0 + 1024.0) / 128.0, 1e-9);
	assert_close(p.precopy_s, (1024.0 + 512.0 + 256.0 + 128.0) / 128.0, 1e-9);
	assert_int_equal(p.iterations, 6);
	assert_close(p.downtime_floor_s, -1, 0); /* link not known: no floor */
	in.link_known = true;
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_close(p.downtime_floor_s, 1024.0 / 128.0, 1e-9);
	vgm_verdict v;
	vgm_model_verdict(&p, 5000, 0, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "downtime_exceeded");
	vgm_model_verdict(&p, 9000, 0, &v);
	assert_true(v.ok); /* 8.5 s expected fits 9 s */
	in.vgpu_precopy = VGM_PRECOPY_UNKNOWN; /* may yet pre-copy: no floor from it */
	assert_int_equal(vgm_model_plan(&in, &p, NULL), 0);
	assert_close(p.downtime_floor_s, 0, 1e-9);
}

/* Random writes in a working set saturate: a page written twice in a round
 * is sent once, so the rounds are smaller than the linear model's. */
static void test_plan_random_dirty(void **state)
{
	(void)state;
	vgm_model_input in = geometric(GiB, 128 * MiB, 64 * MiB, 0);
	in.working_set_bytes = 64 * MiB;
	vgm_plan lin, rnd;
	assert_int_equal(vgm_model_plan(&in, &lin, NULL), 0);
	in.random_dirty = true;
	assert_int_equal(vgm_model_plan(&in, &rnd, NULL), 0);
	assert_true(lin.converges && rnd.converges);
	assert_true(rnd.bytes_total < lin.bytes_total);
	/* Round 1 is the whole working set either way (8 s of round 0). */
	assert_true(rnd.bytes_total > GiB + 63 * MiB);
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
	/* An expected pause over the limit is the controller's to beat; only
	 * physics (stop-copy state over a known link) refuses. */
	vgm_model_verdict(&p, 200, 0, &v);
	assert_true(v.ok);
	p.downtime_floor_s = 0.5;
	vgm_model_verdict(&p, 200, 0, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "downtime_exceeded");
	assert_string_equal(v.reason, "the vGPU state that moves at switchover needs 500 ms over the known link, "
				      "more than --max-downtime 200 ms: raise --max-downtime or use a faster link");
	p.downtime_floor_s = -1;
	vgm_model_verdict(&p, 0, 10000, &v);
	assert_false(v.ok);
	assert_string_equal(v.code, "timeout_exceeded");
	assert_non_null(strstr(v.reason, "exceeds --timeout 10.0 s"));

	vgm_model_costs c = { .switchover_s = 0.03 };
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 2000), 1970);
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 20), 0);
	assert_int_equal(vgm_model_qemu_downtime_ms(&c, 0), 300);
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
		assert_int_equal(r.last.memory_iteration, p.iterations);
		assert_int_equal(r.last.memory_remaining, 0);
	}
}

/* A guest with 512 MiB of stop-copy vGPU state of unknown kind, RAM dirtied
 * at random in 128 MiB: no options finishes near the floor. */
static vgm_sim_truth vgpu_guest(void)
{
	vgm_sim_truth t = { .m = geometric(2 * GiB, GiB, 200 * MiB, 0) };
	t.m.costs = vgm_model_default_costs();
	t.m.costs.bw_jitter = 0.1;
	t.m.working_set_bytes = 128 * MiB;
	t.m.random_dirty = true;
	t.m.vgpu_state_bytes = 512 * MiB;
	t.m.vgpu_precopy = VGM_PRECOPY_NO;
	return t;
}

static void test_sim_controller_no_options(void **state)
{
	(void)state;
	vgm_sim_truth t = vgpu_guest();
	vgm_ctl_config c = { .ram_bytes = 2 * GiB, .vgpu_unknown_bytes = 512 * MiB };
	c.costs = t.m.costs;
	vgm_sim_result r;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.completed);
	double floor_s = 0.5 + t.m.costs.switchover_s;
	assert_true(r.downtime_s >= floor_s);
	assert_true(r.downtime_s <= 1.1 * floor_s);
	/* QEMU alone at 300 ms never switches over. */
	t.m.downtime_limit_ms = 300;
	t.max_s = 120;
	vgm_sim_run(&t, NULL, &r);
	assert_false(r.completed);
}

static void test_sim_controller_max_downtime(void **state)
{
	(void)state;
	vgm_sim_truth t = vgpu_guest();
	vgm_ctl_config c = { .ram_bytes = 2 * GiB, .vgpu_unknown_bytes = 512 * MiB };
	c.costs = t.m.costs;
	c.max_downtime_ms = vgm_limit_of(1000);
	vgm_sim_result r;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.completed);
	assert_true(r.downtime_s <= 1.0);
	/* 400 ms is below the 512 MiB / 1 GiB/s the vGPU needs: aborted early,
	 * with the numbers, not refused (the link was not known). */
	c.max_downtime_ms = vgm_limit_of(400);
	vgm_sim_run(&t, &c, &r);
	assert_true(r.aborted);
	assert_false(r.refused);
	assert_string_equal(r.final.code, "downtime_exceeded");
	assert_non_null(strstr(r.final.reason, "512.0 MiB of vGPU state at stop-copy"));
	assert_true(r.total_s < 5);
	/* Declared link: refused before the start. */
	c.link_bps = vgm_limit_of(GiB);
	c.vgpu_stopcopy_bytes = 512 * MiB;
	c.vgpu_unknown_bytes = 0;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.refused);
}

/* The guest turns hot mid-way: still finishes, near the new floor. */
static void test_sim_controller_guest_turns_hot(void **state)
{
	(void)state;
	vgm_sim_truth t = vgpu_guest();
	t.m.dirty_bps = 0;
	t.dirty_change_at_s = 3.5;
	t.dirty_bps_after = 2 * GiB;
	vgm_ctl_config c = { .ram_bytes = 2 * GiB, .vgpu_unknown_bytes = 512 * MiB };
	c.costs = t.m.costs;
	vgm_sim_result r;
	vgm_sim_run(&t, &c, &r);
	assert_true(r.completed);
	/* 128 MiB working set re-dirtied faster than the link: at most it all. */
	assert_true(r.downtime_s <= 1.15 * (640.0 / 1024.0) + 0.05);
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
		cmocka_unit_test(test_plan_device_precopy),
		cmocka_unit_test(test_plan_stops_when_precopy_stops_paying),
		cmocka_unit_test(test_plan_random_dirty),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_sim_matches_plan),
		cmocka_unit_test(test_sim_controller_no_options),
		cmocka_unit_test(test_sim_controller_max_downtime),
		cmocka_unit_test(test_sim_controller_guest_turns_hot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
