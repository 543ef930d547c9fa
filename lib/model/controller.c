/* controller.c: the switchover controller, a pure function from job-stat
 * samples to actions (see model.h).  Its objective is the pause: finish with
 * the smallest switchover this guest and link allow, inside --max-downtime
 * when one is given, and abort only when the samples prove a limit cannot
 * be met.
 *
 * Before the start (vgm_ctl_start):
 *   S1 refuse when the fixed switchover cost alone exceeds --max-downtime;
 *   S2 refuse when the vGPU state known to move at stop-copy cannot cross a
 *      *known* link within --max-downtime (physics; never on an assumed link);
 *   S3 hold QEMU's downtime limit low (10 ms, less under a tight limit) so
 *      QEMU keeps iterating until the controller lets it switch; set the
 *      --bandwidth cap.
 * On every sample (vgm_ctl_step), in this order:
 *   R1 --timeout reached: abort;
 *   R2 learn: the link (best rate QEMU measured while uncapped, unless
 *      declared), whether the vGPUs of unknown kind pre-copy
 *      (vfio_data_transferred growing while RAM iterates: yes; RAM moving and
 *      no device data for 4 samples: no), and per round the RAM (and device)
 *      bytes and how much each round shrinks the next (lambda);
 *   R3 --max-downtime: abort as soon as the smallest pause the samples allow
 *      (stop-copy vGPU state + what pre-copy cannot drain, over the link, +
 *      the fixed cost) is above it, with those numbers;
 *   R4 switch: when one more round would shrink the expected pause by less
 *      than gain_min of it (or rounds stopped shrinking, lambda >= 0.9), set
 *      the downtime limit so QEMU's own test (pending <= measured bandwidth x
 *      limit) passes at the end of this round; if QEMU has not switched two
 *      iterations later, raise it by a quarter (no --max-downtime: without
 *      bound, never an abort for downtime).  With --max-downtime T the limit
 *      never exceeds (T - fixed cost) x link / (highest measured bandwidth x
 *      (1 + bw_margin)), so the measured pause stays inside T even when QEMU's
 *      100 ms bandwidth figure overshoots what the stop-copy gets;
 *   R5 the projected completion is past --timeout for 3 samples: abort;
 *   R6 a bandwidth cap overshot by 25% for 3 samples is set again.
 * Invariant: after an ABORT every later call returns NONE. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "units.h"

#define CTL_CONFIRM_SAMPLES 3u
#define CTL_HOLD_MS 10u           /* S3: QEMU's limit while pre-copy still pays */
#define CTL_QEMU_MAX_MS 2000000u  /* QEMU's largest downtime-limit */
#define CTL_LAMBDA_FLAT 0.9       /* rounds shrinking by less than 10%: stop paying */
#define CTL_LAMBDA_STUCK 0.95     /* ... by less than 5%, twice: they will not shrink */
#define CTL_SWITCH_SLACK 1.05     /* threshold over the expected pending (no T) */
#define CTL_VFIO_IDLE_SAMPLES 4u

enum { START_CHECK = 1u << 0, START_DOWNTIME = 1u << 1, START_BANDWIDTH = 1u << 2 };

void vgm_ctl_init(vgm_ctl_state *s, const vgm_ctl_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	if (s->cfg.costs.gain_min <= 0)
		s->cfg.costs.gain_min = 0.05;
	s->pending_start = START_CHECK | START_DOWNTIME |
			   (cfg->bandwidth_cap_bps.set ? START_BANDWIDTH : 0);
	s->link_bps = cfg->link_bps.set ? (double)cfg->link_bps.value : 0;
	s->eta_s = -1;
	s->floor_s = -1;
	s->expected_downtime_s = -1;
}

static vgm_action act(vgm_action_kind kind, uint64_t value)
{
	return (vgm_action){ .kind = kind, .value = value };
}

static vgm_action none(void)
{
	return act(VGM_ACT_NONE, 0);
}

static vgm_action abort_act(vgm_ctl_state *s, const char *code, const char *fmt, ...)
	_printf_(3, 4);
static vgm_action abort_act(vgm_ctl_state *s, const char *code, const char *fmt, ...)
{
	vgm_action a = act(VGM_ACT_ABORT, 0);
	snprintf(a.code, sizeof(a.code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a.reason, sizeof(a.reason), fmt, ap);
	va_end(ap);
	s->aborted = true;
	return a;
}

static double fixed_s(const vgm_ctl_state *s)
{
	return s->cfg.costs.switchover_s;
}

static double max_dt_s(const vgm_ctl_state *s)
{
	return (double)s->cfg.max_downtime_ms.value / 1000.0;
}

/* vGPU bytes that surely move at stop-copy (lower bound) and that may
 * (upper bound: unknown counts until the samples say it pre-copies). */
static double stop_bytes_lb(const vgm_ctl_state *s)
{
	return (double)s->cfg.vgpu_stopcopy_bytes +
	       (s->unknown_precopy == VGM_PRECOPY_NO ? (double)s->cfg.vgpu_unknown_bytes : 0);
}

static double stop_bytes_ub(const vgm_ctl_state *s)
{
	return (double)s->cfg.vgpu_stopcopy_bytes +
	       (s->unknown_precopy != VGM_PRECOPY_YES ? (double)s->cfg.vgpu_unknown_bytes : 0);
}

static double precopy_bytes(const vgm_ctl_state *s)
{
	return (double)s->cfg.vgpu_precopy_bytes +
	       (s->unknown_precopy == VGM_PRECOPY_YES ? (double)s->cfg.vgpu_unknown_bytes : 0);
}

/* S1, S2: what physics already rules out. */
static vgm_action check_start(vgm_ctl_state *s)
{
	char a[32], b[32], c[32], d[32], e[32];
	if (!s->cfg.max_downtime_ms.set)
		return none();
	if (fixed_s(s) >= max_dt_s(s))
		return abort_act(s, "downtime_exceeded",
				 "the fixed switchover cost %s alone exceeds --max-downtime %s",
				 vgm_format_seconds(fixed_s(s), a, sizeof(a)),
				 vgm_format_seconds(max_dt_s(s), b, sizeof(b)));
	double F = (double)s->cfg.vgpu_stopcopy_bytes;
	if (s->link_bps <= 0 || F / s->link_bps + fixed_s(s) <= max_dt_s(s))
		return none();
	return abort_act(s, "downtime_exceeded",
			 "the vGPU state that moves at switchover (%s) needs %s over the %s/s link plus %s "
			 "fixed cost, more than --max-downtime %s: raise --max-downtime or use a faster link",
			 vgm_format_bytes((uint64_t)F, a, sizeof(a)),
			 vgm_format_seconds(F / s->link_bps, b, sizeof(b)),
			 vgm_format_bytes((uint64_t)s->link_bps, c, sizeof(c)),
			 vgm_format_seconds(fixed_s(s), d, sizeof(d)),
			 vgm_format_seconds(max_dt_s(s), e, sizeof(e)));
}

vgm_action vgm_ctl_start(vgm_ctl_state *s)
{
	if (s->aborted)
		return none();
	if (s->pending_start & START_CHECK) {
		s->pending_start &= ~START_CHECK;
		vgm_action a = check_start(s);
		if (a.kind != VGM_ACT_NONE)
			return a;
	}
	if (s->pending_start & START_DOWNTIME) {
		s->pending_start &= ~START_DOWNTIME;
		/* Even the hold must keep a tight --max-downtime (QEMU may switch
		 * under it on its own when little is pending). */
		double hold = CTL_HOLD_MS;
		if (s->cfg.max_downtime_ms.set)
			hold = fmin(hold, (max_dt_s(s) - fixed_s(s)) * 1000.0 / (1.0 + s->cfg.costs.bw_margin));
		s->downtime_set_ms = (uint64_t)fmax(1, floor(hold));
		return act(VGM_ACT_SET_DOWNTIME, s->downtime_set_ms);
	}
	if (s->pending_start & START_BANDWIDTH) {
		s->pending_start &= ~START_BANDWIDTH;
		return act(VGM_ACT_SET_BANDWIDTH, s->cfg.bandwidth_cap_bps.value);
	}
	return none();
}

static vgm_action check_timeout(vgm_ctl_state *s, const vgm_job_sample *x)
{
	char a[32], b[32];
	if (!s->cfg.timeout_ms.set || x->time_elapsed_ms < s->cfg.timeout_ms.value)
		return none();
	return abort_act(s, "timeout_exceeded",
			 "migration did not finish within --timeout %s (iteration %llu, %s of RAM still to send)",
			 vgm_format_seconds((double)s->cfg.timeout_ms.value / 1000.0, a, sizeof(a)),
			 (unsigned long long)x->memory_iteration,
			 vgm_format_bytes(x->memory_remaining, b, sizeof(b)));
}

/* R2: the link and the kind of the unknown vGPUs. */
static void learn_link_and_device(vgm_ctl_state *s, const vgm_job_sample *x, double bps)
{
	bool moving = x->memory_iteration >= 1 && bps > 0;
	if (moving) {
		s->bw_max = fmax(s->bw_max, bps);
		s->bw_sum += bps;
		s->bw_n++;
		/* QEMU's mbps counts the whole stream (RAM and device data). */
		if (!s->cfg.link_bps.set && !s->cfg.bandwidth_cap_bps.set)
			s->link_bps = fmax(s->link_bps, bps);
	}
	if (!(x->have & VGM_SAMPLE_HAVE_VFIO) || !s->cfg.vgpu_unknown_bytes ||
	    s->unknown_precopy != VGM_PRECOPY_UNKNOWN || !moving)
		return;
	if ((double)x->vfio_data_transferred > (double)s->cfg.vgpu_precopy_bytes)
		s->unknown_precopy = VGM_PRECOPY_YES;
	else if (x->vfio_data_transferred == 0 && ++s->vfio_idle_samples >= CTL_VFIO_IDLE_SAMPLES)
		s->unknown_precopy = VGM_PRECOPY_NO;
}

/* R2: per round, from the counters at each new iteration (several syncs
 * between two samples share the bytes evenly).  A round is RAM and device
 * pre-copy data together: both shrink (or not) with the same link. */
static void learn_rounds(vgm_ctl_state *s, const vgm_job_sample *x, double bps)
{
	if (x->memory_iteration <= s->iteration)
		return;
	double n = (double)(x->memory_iteration - s->iteration);
	/* After the limit went up QEMU syncs every 100 ms: those are no rounds,
	 * unless --max-downtime capped the limit below the pending bytes. */
	if (s->iteration >= 1 && (!s->switch_iteration || s->capped)) {
		double sent = (double)(x->memory_processed - s->iter_processed);
		if (x->vfio_data_transferred >= s->iter_vfio)
			sent += (double)(x->vfio_data_transferred - s->iter_vfio);
		s->prev_round = s->round;
		s->round = sent / n;
		if (s->prev_round > 0)
			s->lambda = fmin(1.0, s->round / s->prev_round);
		else if ((x->have & VGM_SAMPLE_HAVE_DIRTY) && bps > 0)
			s->lambda = fmin(1.0, (double)x->memory_dirty_rate_bps / bps);
		bool flat = s->prev_round > 0 && s->lambda >= CTL_LAMBDA_STUCK;
		s->flat_rounds = flat ? s->flat_rounds + 1 : 0;
	}
	s->iteration = x->memory_iteration;
	s->iter_processed = x->memory_processed;
	s->iter_vfio = x->vfio_data_transferred;
}

/* Bytes of the round in flight: what the last round implies, or more if the
 * remaining counter already shows more. */
static double round_in_flight(const vgm_ctl_state *s, const vgm_job_sample *x)
{
	return fmax(s->lambda * s->round, (double)x->memory_remaining);
}

/* The pause if QEMU switched at the end of this round (extra rounds: 0) or
 * after more rounds. */
static double pause_after(const vgm_ctl_state *s, const vgm_job_sample *x, int extra)
{
	double left = round_in_flight(s, x) * pow(s->lambda, 1 + extra);
	return (left + stop_bytes_ub(s)) / s->link_bps + fixed_s(s);
}

/* The RAM a guest known to dirty d bytes/s (unique pages over 1 s) leaves
 * at least, over link L: the fixed point of rounds with the smallest
 * working set that figure allows (d x 1 s), tau = d/L (1 - e^-tau). */
static double dirty_floor_bytes(double d, double L)
{
	double a = d / L, tau = a;
	if (a <= 1.0)
		return 0;
	for (int i = 0; i < 200; i++)
		tau = a * -expm1(-tau);
	return tau * L;
}

/* The smallest pause the samples prove: stop-copy state that surely moves
 * then, plus what rounds that stopped shrinking (or the dirty rate measured
 * before the start) leave. */
static double floor_lb(const vgm_ctl_state *s, const vgm_job_sample *x)
{
	double left = 0;
	if (s->flat_rounds >= 2)
		left = s->lambda * round_in_flight(s, x);
	if (s->cfg.dirty_rate_bps.set)
		left = fmax(left, dirty_floor_bytes((double)s->cfg.dirty_rate_bps.value, s->link_bps));
	return (stop_bytes_lb(s) + left) / s->link_bps + fixed_s(s);
}

/* The largest QEMU limit whose switchover stays inside --max-downtime even
 * when QEMU's bandwidth figure overshoots by bw_margin. */
static double limit_cap_ms(const vgm_ctl_state *s)
{
	if (!s->cfg.max_downtime_ms.set)
		return CTL_QEMU_MAX_MS;
	double bw = fmax(s->bw_max, s->link_bps) * (1.0 + s->cfg.costs.bw_margin);
	return fmax(1, (max_dt_s(s) - fixed_s(s)) * s->link_bps / bw * 1000.0);
}

/* R3. */
static vgm_action check_floor(vgm_ctl_state *s, const vgm_job_sample *x)
{
	char a[32], b[32], c[32], d[32], e[32];
	if (!s->cfg.max_downtime_ms.set || s->link_bps <= 0)
		return none();
	s->floor_s = floor_lb(s, x);
	if (s->floor_s <= max_dt_s(s))
		return none();
	return abort_act(s, "downtime_exceeded",
			 "the smallest switchover this guest and link allow is %s (%s of vGPU state at "
			 "stop-copy, %s of RAM and device data pre-copy cannot drain, link %s/s), more than "
			 "--max-downtime %s",
			 vgm_format_seconds(s->floor_s, a, sizeof(a)),
			 vgm_format_bytes((uint64_t)stop_bytes_lb(s), b, sizeof(b)),
			 vgm_format_bytes((uint64_t)fmax(0, (s->floor_s - fixed_s(s)) * s->link_bps -
							       stop_bytes_lb(s)),
					  c, sizeof(c)),
			 vgm_format_bytes((uint64_t)s->link_bps, d, sizeof(d)),
			 vgm_format_seconds(max_dt_s(s), e, sizeof(e)));
}

static bool more_precopy_pays(const vgm_ctl_state *s, const vgm_job_sample *x)
{
	if (s->prev_round <= 0 || (double)x->vfio_data_transferred < precopy_bytes(s))
		return true; /* round 0 (or the device's initial data) still going */
	if (s->lambda >= CTL_LAMBDA_FLAT)
		return false;
	double now = pause_after(s, x, 0), later = pause_after(s, x, 1);
	return now - later >= s->cfg.costs.gain_min * now;
}

static vgm_action set_limit(vgm_ctl_state *s, double ms)
{
	uint64_t v = (uint64_t)fmax(1, ceil(ms));
	if (v == s->downtime_set_ms)
		return none();
	s->downtime_set_ms = v;
	return act(VGM_ACT_SET_DOWNTIME, v);
}

/* R4: let QEMU switch at the end of this round, with the smallest limit
 * that should pass its test; raise it when QEMU did not switch. */
static vgm_action check_switch(vgm_ctl_state *s, const vgm_job_sample *x)
{
	char a[32], b[32], c[32];
	if (s->link_bps <= 0 || s->bw_n == 0)
		return none();
	s->expected_downtime_s = pause_after(s, x, 0);
	bool retry = s->switch_iteration > 0;
	if (!retry && more_precopy_pays(s, x))
		return none();
	/* Once the limit is up QEMU syncs at every loop head: give it two
	 * rounds' time (at least a second) before deciding it did not switch. */
	double pend = (s->expected_downtime_s - fixed_s(s)) * s->link_bps;
	if (retry && (double)x->time_elapsed_ms <
			     (double)s->switch_ms + fmax(1000.0, 2000.0 * pend / s->link_bps))
		return none();
	s->switch_iteration = x->memory_iteration;
	s->switch_ms = x->time_elapsed_ms;
	/* Against the highest bandwidth QEMU reported: it re-checks every
	 * 100 ms, and passes as soon as its measurement is that high. */
	double ms = pend * CTL_SWITCH_SLACK / s->bw_max * 1000.0, cap = limit_cap_ms(s);
	if (retry)
		ms = fmax(ms, (double)s->downtime_set_ms * 1.25);
	s->capped = ms >= cap;
	if (!s->capped)
		return set_limit(s, ms);
	if (s->cfg.max_downtime_ms.set && retry && (double)s->downtime_set_ms >= floor(cap) &&
	    ++s->tries_at_cap >= 4)
		return abort_act(s, "downtime_exceeded",
				 "QEMU did not switch over within the largest limit that keeps the pause under "
				 "--max-downtime %s for 4 rounds (expected pause %s, link %s/s)",
				 vgm_format_seconds(max_dt_s(s), a, sizeof(a)),
				 vgm_format_seconds(s->expected_downtime_s, b, sizeof(b)),
				 vgm_format_bytes((uint64_t)s->link_bps, c, sizeof(c)));
	return set_limit(s, cap);
}

static void project(vgm_ctl_state *s, const vgm_job_sample *x, double bps)
{
	double D = (x->have & VGM_SAMPLE_HAVE_DIRTY) ? (double)x->memory_dirty_rate_bps : 0;
	if (bps <= 0) {
		s->eta_s = -1;
		return;
	}
	/* The projection asks when QEMU would switch under the limit in force
	 * or the one the controller will end up giving, whichever is larger. */
	double pend_ok = fmax(bps * (double)s->downtime_set_ms / 1000.0,
			      s->expected_downtime_s > 0
				      ? (s->expected_downtime_s - fixed_s(s)) * s->link_bps
				      : 0);
	s->eta_s = vgm_model_project_s(x->memory_remaining, 0, D, bps, (uint64_t)(pend_ok * 1.05),
				       (uint64_t)stop_bytes_ub(s), &s->cfg.costs);
}

/* R5. */
static vgm_action check_projection(vgm_ctl_state *s, const vgm_job_sample *x)
{
	char a[32], b[32], c[32], d[32];
	double elapsed = (double)x->time_elapsed_ms / 1000.0;
	bool over = s->cfg.timeout_ms.set && s->eta_s >= 0 &&
		    (elapsed + s->eta_s) * 1000.0 > (double)s->cfg.timeout_ms.value;
	s->over_timeout_samples = over ? s->over_timeout_samples + 1 : 0;
	if (s->over_timeout_samples < CTL_CONFIRM_SAMPLES)
		return none();
	return abort_act(s, "timeout_exceeded",
			 "projected completion %s (elapsed %s + %s to go at iteration %llu) exceeds --timeout %s",
			 vgm_format_seconds(elapsed + s->eta_s, a, sizeof(a)),
			 vgm_format_seconds(elapsed, b, sizeof(b)), vgm_format_seconds(s->eta_s, c, sizeof(c)),
			 (unsigned long long)x->memory_iteration,
			 vgm_format_seconds((double)s->cfg.timeout_ms.value / 1000.0, d, sizeof(d)));
}

/* R6. */
static vgm_action check_cap(vgm_ctl_state *s, double bps)
{
	double cap = (double)s->cfg.bandwidth_cap_bps.value;
	bool over = s->cfg.bandwidth_cap_bps.set && bps > 1.25 * cap;
	s->over_cap_samples = over ? s->over_cap_samples + 1 : 0;
	if (s->over_cap_samples < CTL_CONFIRM_SAMPLES)
		return none();
	s->over_cap_samples = 0;
	return act(VGM_ACT_SET_BANDWIDTH, s->cfg.bandwidth_cap_bps.value);
}

vgm_action vgm_ctl_step(vgm_ctl_state *s, const vgm_job_sample *x)
{
	if (s->aborted)
		return none();
	if (s->pending_start)
		return vgm_ctl_start(s);
	double bps = (x->have & VGM_SAMPLE_HAVE_BPS) ? (double)x->memory_bps : 0;
	vgm_action a = check_timeout(s, x);
	if (a.kind != VGM_ACT_NONE)
		return a;
	learn_link_and_device(s, x, bps);
	learn_rounds(s, x, bps);
	s->last_ms = x->time_elapsed_ms;
	s->last_vfio = x->vfio_data_transferred;
	a = check_floor(s, x);
	if (a.kind == VGM_ACT_NONE)
		a = check_switch(s, x);
	project(s, x, bps);
	if (a.kind == VGM_ACT_NONE)
		a = check_projection(s, x);
	if (a.kind == VGM_ACT_NONE)
		a = check_cap(s, bps);
	return a;
}
