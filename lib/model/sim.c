/* sim.c: the simulator: QEMU's pre-copy loop (precopy.c) sampled the way
 * lib/migrate samples libvirt's job stats, with a policy (the controller, or
 * a benchmark's baseline) in the loop.
 *
 * A sample carries what virDomainGetJobStats gives on the source:
 * time_elapsed counts from the start call (setup included), memory_iteration
 * is 0 during setup and then counts bitmap syncs, memory_dirty_rate is 0 until
 * the second sync and then the RAM found dirty at the latest sync over its
 * period, memory_bps is what QEMU measured over its last 100 ms window (the
 * same figure its switchover threshold uses), memory_remaining in round 0
 * counts zero pages too, vfio_data_transferred counts the device's pre-copy
 * data (and its stop-copy state at the end).  Actions apply at the next
 * instant, like an API call from the monitor thread.
 * Invariant: the result's action list holds every non-NONE action in order
 * (up to VGM_SIM_MAX_ACTIONS). */
#include <math.h>
#include <string.h>

#include "model.h"
#include "precopy.h"

typedef struct sim {
	const vgm_sim_truth *truth;
	pc_state pc;
	double setup_s;
	double link_R;       /* what the link can do */
	double cap_R;        /* 0: no cap */
	double downtime_ms;  /* QEMU's downtime-limit */
	vgm_sim_result *out;
} sim;

static double now(const sim *m)
{
	return m->setup_s + m->pc.t;
}

static void apply_rates(sim *m)
{
	m->pc.p.R = m->cap_R > 0 ? fmin(m->cap_R, m->link_R) : m->link_R;
	m->pc.p.T = m->pc.p.R * m->downtime_ms / 1000.0;
	m->pc.p.chunk_bytes = m->truth->m.costs.chunk_s > 0 ? m->pc.p.R * m->truth->m.costs.chunk_s
							    : INFINITY;
}

/* Returns true when the action ends the migration. */
static bool apply(sim *m, const vgm_action *a, double t)
{
	vgm_sim_result *o = m->out;
	if (a->kind == VGM_ACT_NONE)
		return false;
	o->final = *a;
	if (o->n_actions < VGM_SIM_MAX_ACTIONS) {
		o->actions[o->n_actions] = *a;
		o->action_at_s[o->n_actions++] = t;
	}
	switch (a->kind) {
	case VGM_ACT_SET_DOWNTIME:
		m->downtime_ms = (double)a->value;
		apply_rates(m);
		break;
	case VGM_ACT_SET_BANDWIDTH:
		m->cap_R = (double)a->value;
		apply_rates(m);
		break;
	case VGM_ACT_ABORT:
		o->aborted = true;
		o->total_s = t;
		return true;
	case VGM_ACT_NONE:
		break;
	}
	return false;
}

static vgm_job_sample sample(const sim *m, bool started, double at)
{
	const vgm_model_input *in = &m->truth->m;
	const pc_state *s = &m->pc;
	vgm_job_sample x = { .time_elapsed_ms = (uint64_t)llround(at * 1000.0) };
	if (!started)
		return x;
	double ram = (double)in->ram_bytes, M0 = s->p.r[PC_RAM].M0;
	double rem = s->syncs <= 1 && M0 > 0 ? s->P[PC_RAM] * ram / M0 : s->P[PC_RAM];
	x.memory_total = in->ram_bytes;
	x.memory_remaining = (uint64_t)fmin(rem, ram);
	x.memory_processed = (uint64_t)s->sent[PC_RAM];
	x.memory_iteration = s->syncs;
	x.memory_bps = (uint64_t)pc_measured_bps(s, s->t);
	x.memory_dirty_rate_bps = s->syncs >= 2 ? (uint64_t)s->dirty_rate : 0;
	x.vfio_data_transferred = (uint64_t)s->sent[PC_DEV];
	x.data_total = x.memory_total;
	x.data_processed = x.memory_processed;
	x.data_remaining = x.memory_remaining;
	x.have = VGM_SAMPLE_HAVE_BPS | VGM_SAMPLE_HAVE_DIRTY | VGM_SAMPLE_HAVE_VFIO;
	return x;
}

static void finish(sim *m)
{
	vgm_sim_result *o = m->out;
	pc_state *s = &m->pc;
	o->completed = true;
	o->downtime_s = s->downtime;
	o->total_s = now(m) + s->downtime;
	o->iterations = s->syncs + 1;
	o->bytes_total = (uint64_t)(s->sent[PC_RAM] + s->sent[PC_DEV] + s->stop_bytes);
	o->last = sample(m, true, o->total_s);
	o->last.memory_remaining = 0;
	o->last.data_remaining = 0;
	o->last.vfio_data_transferred = (uint64_t)(s->sent[PC_DEV] + s->P[PC_DEV] + s->p.F);
	o->last.memory_iteration = o->iterations;
}

/* Feed one sample to the policy; true when the migration ends. */
static bool tick(sim *m, vgm_sim_policy *pol, bool started, double at)
{
	vgm_job_sample x = sample(m, started, at);
	m->out->n_samples++;
	m->out->last = x;
	if (!pol)
		return false;
	vgm_action a = pol->step(pol->ud, &x);
	return apply(m, &a, at);
}

static void init_sim(sim *m, const vgm_sim_truth *truth, vgm_sim_result *out)
{
	memset(m, 0, sizeof(*m));
	memset(out, 0, sizeof(*out));
	m->truth = truth;
	m->out = out;
	pc_params p;
	pc_params_from_input(&truth->m, &p);
	p.adaptive = false; /* QEMU's own rule; the policy moves the limit */
	pc_init(&m->pc, &p);
	m->pc.end = PC_RUNNING;
	m->setup_s = truth->m.costs.setup_s;
	m->link_R = p.R;
	m->downtime_ms = truth->m.downtime_limit_ms ? (double)truth->m.downtime_limit_ms
						    : VGM_DEFAULT_DOWNTIME_MS;
	apply_rates(m);
}

/* Advance the truth to time t (the guest may change its dirty rate). */
static void advance_to(sim *m, double t)
{
	const vgm_sim_truth *truth = m->truth;
	double change = truth->dirty_change_at_s;
	if (change > 0 && now(m) < change && t >= change) {
		pc_advance(&m->pc, change - now(m));
		m->pc.p.r[PC_RAM].D = (double)truth->dirty_bps_after;
	}
	m->pc.steps = 0; /* the bound is per call here: the simulation has its own */
	if (!m->pc.end && t > now(m))
		pc_advance(&m->pc, t - now(m));
	if (m->pc.end != PC_CONVERGED && m->pc.end) {
		/* The engine's stall verdict is its opinion: QEMU keeps going. */
		m->pc.end = PC_RUNNING;
		m->pc.since_best = 0;
	}
}

void vgm_sim_run_policy(const vgm_sim_truth *truth, vgm_sim_policy *pol, vgm_sim_result *out)
{
	sim m;
	init_sim(&m, truth, out);
	double dflt = truth->sample_interval_s > 0 ? truth->sample_interval_s : 0.25;
	double max_s = truth->max_s > 0 ? truth->max_s : 3600.0;
	if (pol && pol->start)
		for (vgm_action a = pol->start(pol->ud); a.kind != VGM_ACT_NONE; a = pol->start(pol->ud))
			if (apply(&m, &a, 0)) {
				out->refused = true;
				return;
			}
	double t = 0;
	while (t < max_s) {
		t += pol && pol->poll_s > 0 ? pol->poll_s : dflt;
		bool started = t >= m.setup_s;
		if (started)
			advance_to(&m, t);
		if (m.pc.end == PC_CONVERGED) {
			finish(&m);
			return;
		}
		if (tick(&m, pol, started, started ? now(&m) : t))
			return;
	}
	out->total_s = t;
}

static vgm_action ctl_start(void *ud)
{
	return vgm_ctl_start(ud);
}

static vgm_action ctl_step(void *ud, const vgm_job_sample *x)
{
	return vgm_ctl_step(ud, x);
}

void vgm_sim_run(const vgm_sim_truth *truth, const vgm_ctl_config *cfg, vgm_sim_result *out)
{
	vgm_ctl_state ctl;
	vgm_sim_policy pol = { .start = ctl_start, .step = ctl_step, .ud = &ctl };
	if (cfg)
		vgm_ctl_init(&ctl, cfg);
	vgm_sim_run_policy(truth, cfg ? &pol : NULL, out);
}
