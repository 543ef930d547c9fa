/* test-controller.c: the switchover controller's rules (controller.c), each
 * on hand-made job-stat samples. */
#include "model-test.h"

/* ---- controller on hand-made samples: one test per rule (controller.c) ---- */

static vgm_job_sample smp(uint64_t ms, uint64_t iter, uint64_t remaining, uint64_t processed,
			  uint64_t dirty, uint64_t bps, uint64_t vfio)
{
	return (vgm_job_sample){
		.time_elapsed_ms = ms, .memory_total = GiB, .memory_remaining = remaining,
		.memory_processed = processed, .memory_iteration = iter,
		.memory_dirty_rate_bps = dirty, .memory_bps = bps, .vfio_data_transferred = vfio,
		.have = VGM_SAMPLE_HAVE_DIRTY | VGM_SAMPLE_HAVE_BPS | VGM_SAMPLE_HAVE_VFIO,
	};
}

static vgm_ctl_config ctl_cfg(void)
{
	vgm_ctl_config c = { .ram_bytes = GiB };
	c.costs = vgm_model_default_costs();
	c.costs.switchover_s = 0.05;
	return c;
}

static void start_all(vgm_ctl_state *s)
{
	while (vgm_ctl_start(s).kind != VGM_ACT_NONE)
		;
}

/* S1, S2, S3. */
static void test_ctl_start(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.bandwidth_cap_bps = vgm_limit_of(20 * MiB);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	vgm_action a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(a.value, 10); /* held low: the controller decides the switchover */
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_SET_BANDWIDTH);
	assert_int_equal(a.value, 20 * MiB);
	assert_int_equal(vgm_ctl_start(&s).kind, VGM_ACT_NONE);

	/* S1: the fixed cost alone is over the limit. */
	c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(40);
	vgm_ctl_init(&s, &c);
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.code, "downtime_exceeded");
	assert_string_equal(a.reason, "the fixed switchover cost 50 ms alone exceeds --max-downtime 40 ms");
	vgm_job_sample x = smp(100, 1, GiB, 0, 0, MiB, 0);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);

	/* A tight limit tightens the hold too: (60 - 50 ms) / 1.15. */
	c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(60);
	vgm_ctl_init(&s, &c);
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(a.value, 8);

	/* S2: stop-copy vGPU state over a declared link. */
	c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(1000);
	c.vgpu_stopcopy_bytes = 2 * GiB;
	c.link_bps = vgm_limit_of(GiB);
	vgm_ctl_init(&s, &c);
	a = vgm_ctl_start(&s);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.reason,
			    "the vGPU state that moves at switchover (2.0 GiB) needs 2.0 s over the 1.0 GiB/s "
			    "link plus 50 ms fixed cost, more than --max-downtime 1.0 s: raise --max-downtime "
			    "or use a faster link");

	/* ... never on an assumed link, never for state of unknown kind. */
	c.link_bps = VGM_LIMIT_UNSET;
	vgm_ctl_init(&s, &c);
	assert_int_equal(vgm_ctl_start(&s).kind, VGM_ACT_SET_DOWNTIME);
	c.link_bps = vgm_limit_of(GiB);
	c.vgpu_unknown_bytes = c.vgpu_stopcopy_bytes;
	c.vgpu_stopcopy_bytes = 0;
	vgm_ctl_init(&s, &c);
	assert_int_equal(vgm_ctl_start(&s).kind, VGM_ACT_SET_DOWNTIME);

	/* Start actions not taken before the first sample come out of step. */
	c = ctl_cfg();
	vgm_ctl_init(&s, &c);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_SET_DOWNTIME);
}

/* R2: the link from the first unthrottled round; the kind of unknown vGPUs. */
static void test_ctl_learn(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.vgpu_unknown_bytes = 256 * MiB;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	uint64_t rates[] = { 100 * MiB, 120 * MiB, 110 * MiB };
	for (int i = 0; i < 3; i++) {
		vgm_job_sample x = smp(2000 + 250 * i, 1, GiB, (i + 1) * 25 * MiB, 0, rates[i], 0);
		assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	}
	assert_close(s.link_bps, 120.0 * MiB, 1);
	assert_int_equal(s.unknown_precopy, VGM_PRECOPY_UNKNOWN);
	vgm_job_sample x = smp(2750, 1, GiB, 100 * MiB, 0, 100 * MiB, 0);
	vgm_ctl_step(&s, &x);
	assert_int_equal(s.unknown_precopy, VGM_PRECOPY_NO); /* 4 samples, no device data */

	/* Device data while RAM iterates: it pre-copies. */
	vgm_ctl_init(&s, &c);
	start_all(&s);
	x = smp(2000, 1, GiB, 25 * MiB, 0, 100 * MiB, 8 * MiB);
	vgm_ctl_step(&s, &x);
	assert_int_equal(s.unknown_precopy, VGM_PRECOPY_YES);

	/* libvirt < 10.6 (no vfio_data_transferred): stays unknown. */
	vgm_ctl_init(&s, &c);
	start_all(&s);
	for (int i = 0; i < 8; i++) {
		x = smp(2000 + 250 * i, 1, GiB, 25 * MiB * i, 0, 100 * MiB, 0);
		x.have &= ~VGM_SAMPLE_HAVE_VFIO;
		vgm_ctl_step(&s, &x);
	}
	assert_int_equal(s.unknown_precopy, VGM_PRECOPY_UNKNOWN);

	/* A cap hides the link: nothing learnt; a declared link stays. */
	c.bandwidth_cap_bps = vgm_limit_of(50 * MiB);
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_ctl_step(&s, &x);
	assert_close(s.link_bps, 0, 0);
	c.link_bps = vgm_limit_of(GiB);
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_ctl_step(&s, &x);
	assert_close(s.link_bps, (double)GiB, 0);
}

/* Feed the rounds: round 0 of 1 GiB, then n rounds of the given sizes, one
 * sample at each iteration start; returns the first non-NONE action. */
static vgm_action feed_rounds(vgm_ctl_state *s, const uint64_t *rounds, int n, uint64_t bps,
			      uint64_t *ms, uint64_t *it, uint64_t *processed)
{
	for (int i = 0; i <= n; i++) {
		*processed += i == 0 ? GiB : rounds[i - 1];
		*ms += 250;
		(*it)++;
		vgm_job_sample x = smp(*ms, *it, i < n ? rounds[i] : MiB, *processed, 0, bps, 0);
		vgm_action a = vgm_ctl_step(s, &x);
		if (a.kind != VGM_ACT_NONE)
			return a;
	}
	return (vgm_action){ 0 };
}

/* R4: rounds shrink by 4x, but the stop-copy vGPU state dominates the pause:
 * the next round would save 120 ms of a 4.2 s pause: switch now. */
static void test_ctl_switch_when_precopy_stops_paying(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.vgpu_stopcopy_bytes = 400 * MiB;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	uint64_t ms = 2000, it = 0, processed = 0;
	vgm_job_sample x = smp(ms, 1, GiB, 0, 0, 100 * MiB, 0);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	it = 1;
	uint64_t rounds[] = { 256 * MiB, 64 * MiB };
	vgm_action a = feed_rounds(&s, rounds, 2, 100 * MiB, &ms, &it, &processed);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_close(s.lambda, 0.25, 1e-9);
	/* Decided at the start of the 64 MiB round: 16 MiB will be dirty at its
	 * end, plus the 400 MiB; one more round would save 120 ms of 4.2 s. */
	assert_int_equal(a.value, (uint64_t)ceil((16.0 + 400.0) * 1.05 / 100.0 * 1000.0));
	assert_close(s.expected_downtime_s, 4.16 + 0.05, 1e-9);

	/* QEMU did not switch within two rounds' time (2 x 4.2 s): a quarter
	 * more.  The syncs meanwhile (every loop head) are not taken for rounds. */
	uint64_t first = a.value;
	x = smp(ms += 8000, it += 40, MiB, processed += 16 * MiB, 0, 100 * MiB, 0);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	assert_close(s.lambda, 0.25, 1e-9);
	x = smp(ms += 500, it += 5, MiB, processed += MiB, 0, 100 * MiB, 0);
	a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_true(a.value >= first * 5 / 4);

	/* No --max-downtime: a huge floor is no reason to abort. */
	c.vgpu_stopcopy_bytes = 100 * GiB;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	ms = 2000, it = 0, processed = 0;
	x = smp(ms, 1, GiB, 0, 0, 100 * MiB, 0);
	vgm_ctl_step(&s, &x);
	it = 1;
	a = feed_rounds(&s, rounds, 2, 100 * MiB, &ms, &it, &processed);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_true(a.value > 1000000);
	for (int i = 0; i < 20; i++) {
		x = smp(ms += 600000, ++it, MiB, processed += MiB, 0, 100 * MiB, 0);
		assert_int_not_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_ABORT);
	}
	assert_int_equal(s.downtime_set_ms, 2000000); /* QEMU's largest, and no abort */
}

/* R4 keeps iterating while rounds still shrink the pause a lot. */
static void test_ctl_keeps_iterating_while_it_pays(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	uint64_t ms = 2000, it = 1, processed = 0;
	uint64_t rounds[] = { 512 * MiB, 256 * MiB, 128 * MiB };
	vgm_action a = feed_rounds(&s, rounds, 3, 100 * MiB, &ms, &it, &processed);
	assert_int_equal(a.kind, VGM_ACT_NONE); /* each round halves a RAM-only pause */
	assert_close(s.lambda, 0.5, 1e-9);
}

/* R3: the vGPU turns out to move at stop-copy and does not fit. */
static void test_ctl_floor_abort(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(1000);
	c.vgpu_unknown_bytes = 2 * GiB;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_action a = { 0 };
	int n = 0;
	for (; n < 10 && a.kind == VGM_ACT_NONE; n++) {
		vgm_job_sample x = smp(2000 + 250 * n, 1, GiB, n * 256 * MiB, 0, GiB, 0);
		a = vgm_ctl_step(&s, &x);
	}
	assert_int_equal(n, 4);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.code, "downtime_exceeded");
	assert_string_equal(a.reason,
			    "the smallest switchover this guest and link allow is 2.0 s (2.0 GiB of vGPU "
			    "state at stop-copy, 0 B of RAM and device data pre-copy cannot drain, link "
			    "1.0 GiB/s), more than --max-downtime 1.0 s");

	/* RAM rounds that stopped shrinking above the limit. */
	c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(500);
	vgm_ctl_init(&s, &c);
	start_all(&s);
	uint64_t ms = 2000, it = 1, processed = 0;
	uint64_t rounds[] = { 80 * MiB, 78 * MiB, 77 * MiB };
	a = feed_rounds(&s, rounds, 3, 100 * MiB, &ms, &it, &processed);
	/* At 78 MiB the rounds stop paying: the limit goes to the cap... */
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	assert_int_equal(a.value, (uint64_t)ceil((0.5 - 0.05) / 1.15 * 1000.0));
	/* ... and the next flat round proves the floor above the limit. */
	vgm_job_sample y = smp(ms += 250, ++it, MiB, processed += 77 * MiB, 0, 100 * MiB, 0);
	a = vgm_ctl_step(&s, &y);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_non_null(strstr(a.reason, "more than --max-downtime 500 ms"));
	assert_true(s.floor_s > 0.5);
}

/* R4 under --max-downtime: the limit never passes the cap; four failed
 * tries at the cap abort with the numbers. */
static void test_ctl_switch_capped(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.max_downtime_ms = vgm_limit_of(1000);
	c.link_bps = vgm_limit_of(100 * MiB);
	c.vgpu_stopcopy_bytes = 20 * MiB;
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	uint64_t ms = 2000, it = 1, processed = 0;
	uint64_t rounds[] = { 60 * MiB, 58 * MiB };
	vgm_action a = feed_rounds(&s, rounds, 2, 100 * MiB, &ms, &it, &processed);
	assert_int_equal(a.kind, VGM_ACT_SET_DOWNTIME);
	double cap = (1.0 - 0.05) / 1.15 * 1000.0;
	assert_true((double)a.value < cap);
	int aborted_after = 0;
	for (int i = 1; i <= 60 && a.kind != VGM_ACT_ABORT; i++) {
		vgm_job_sample x = smp(ms += 250, ++it, 58 * MiB, processed += 58 * MiB, 0, 100 * MiB, 0);
		a = vgm_ctl_step(&s, &x);
		if (a.kind == VGM_ACT_SET_DOWNTIME)
			assert_true((double)a.value <= ceil(cap));
		aborted_after = i;
	}
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_true(aborted_after <= 40); /* 4 tries, each given >= 1 s */
	assert_non_null(strstr(a.reason, "did not switch over within the largest limit"));
}

/* R1, R5. */
static void test_ctl_timeout(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.timeout_ms = vgm_limit_of(10000);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	/* Projection: 1 GiB at 10 MiB/s cannot fit in 10 s: three samples agree. */
	vgm_action a = { 0 };
	int n = 0;
	for (uint64_t ms = 500; a.kind == VGM_ACT_NONE && n < 10; ms += 250, n++) {
		vgm_job_sample x = smp(ms, 1, GiB - ms * 10 * MiB / 1000, 0, 0, 10 * MiB, 0);
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
	vgm_job_sample x = smp(9999, 3, MiB, 0, 0, 0, 0);
	x.have = 0;
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	x.time_elapsed_ms = 10000;
	a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_ABORT);
	assert_string_equal(a.reason, "migration did not finish within --timeout 10.0 s (iteration 3, 1.0 MiB of RAM still to send)");
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE); /* after ABORT, nothing */
}

/* R6. */
static void test_ctl_cap(void **state)
{
	(void)state;
	vgm_ctl_config c = ctl_cfg();
	c.bandwidth_cap_bps = vgm_limit_of(10 * MiB);
	vgm_ctl_state s;
	vgm_ctl_init(&s, &c);
	start_all(&s);
	vgm_job_sample x = smp(1000, 1, GiB, 0, 0, 40 * MiB, 0);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	assert_int_equal(vgm_ctl_step(&s, &x).kind, VGM_ACT_NONE);
	vgm_action a = vgm_ctl_step(&s, &x);
	assert_int_equal(a.kind, VGM_ACT_SET_BANDWIDTH);
	assert_int_equal(a.value, 10 * MiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_start),
		cmocka_unit_test(test_ctl_learn),
		cmocka_unit_test(test_ctl_switch_when_precopy_stops_paying),
		cmocka_unit_test(test_ctl_keeps_iterating_while_it_pays),
		cmocka_unit_test(test_ctl_floor_abort),
		cmocka_unit_test(test_ctl_switch_capped),
		cmocka_unit_test(test_ctl_timeout),
		cmocka_unit_test(test_ctl_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
