/* sim.c: the simulator: QEMU's pre-copy loop (precopy.c) sampled the way
 * lib/migrate samples libvirt's job stats, with the controller in the loop.
 *
 * A sample carries what virDomainGetJobStats gives on the source:
 * time_elapsed counts from the start call (setup included), memory_iteration
 * is 0 during setup and then counts bitmap syncs, memory_dirty_rate is 0 until
 * the second sync, memory_remaining in round 0 counts zero pages too (they
 * leave the bitmap as fast as the rest but cost almost no bandwidth),
 * vfio_data_transferred is 0 until the stop-copy.  Actions apply at the next
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

static void record(sim *m, const vgm_action *a, double t)
{
	vgm_sim_result *o = m->out;
	if (a->kind == VGM_ACT_NONE || o->n_actions >= VGM_SIM_MAX_ACTIONS)
		return;
	o->actions[o->n_actions] = *a;
	o->action_at_s[o->n_actions++] = t;
}

/* Returns true when the action ends the migration. */
static bool apply(sim *m, const vgm_action *a, double t)
{
	record(m, a, t);
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
		m->out->aborted = true;
		m->out->total_s = t;
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
	double ram = (double)in->ram_bytes;
	double rem = s->syncs <= 1 && s->p.M0 > 0 ? s->P * ram / s->p.M0 : s->P;
	x.memory_total = in->ram_bytes;
	x.memory_remaining = (uint64_t)fmin(rem, ram);
	x.memory_processed = (uint64_t)s->sent;
	x.memory_iteration = s->syncs;
	x.memory_bps = (uint64_t)s->p.R;
	x.memory_dirty_rate_bps = s->syncs >= 2 ? (uint64_t)s->p.D : 0;
	x.data_total = x.memory_total + in->vgpu_state_bytes;
	x.data_processed = x.memory_processed;
	x.data_remaining = x.memory_remaining + (uint64_t)s->p.F;
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
	o->bytes_total = (uint64_t)(s->sent + s->P + s->p.F);
	o->last = sample(m, true, o->total_s);
	o->last.memory_remaining = 0;
	o->last.data_remaining = 0;
	o->last.vfio_data_transferred = (uint64_t)s->p.F;
	o->last.memory_iteration = o->iterations;
	o->last.time_elapsed_ms = (uint64_t)llround(o->total_s * 1000.0);
}

/* Feed one sample to the controller; true when the migration ends. */
static bool tick(sim *m, vgm_ctl_state *ctl, bool started, double at)
{
	vgm_job_sample x = sample(m, started, at);
	m->out->n_samples++;
	m->out->last = x;
	if (!ctl)
		return false;
	vgm_action a = vgm_ctl_step(ctl, &x);
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
	pc_init(&m->pc, &p);
	m->setup_s = truth->m.costs.setup_s;
	m->link_R = p.R;
	m->downtime_ms = truth->m.downtime_limit_ms ? (double)truth->m.downtime_limit_ms
						    : VGM_DEFAULT_DOWNTIME_MS;
	apply_rates(m);
}

void vgm_sim_run(const vgm_sim_truth *truth, const vgm_ctl_config *cfg, vgm_sim_result *out)
{
	sim m;
	init_sim(&m, truth, out);
	double dt = truth->sample_interval_s > 0 ? truth->sample_interval_s : 0.25;
	double max_s = truth->max_s > 0 ? truth->max_s : 3600.0;
	vgm_ctl_state ctl_state, *ctl = NULL;
	if (cfg) {
		ctl = &ctl_state;
		vgm_ctl_init(ctl, cfg);
		for (vgm_action a = vgm_ctl_start(ctl); a.kind != VGM_ACT_NONE; a = vgm_ctl_start(ctl))
			if (apply(&m, &a, 0))
				return;
	}
	/* Setup: the job exists, nothing moves yet. */
	double t = dt;
	for (; t < m.setup_s; t += dt)
		if (tick(&m, ctl, false, t))
			return;
	while (now(&m) < max_s) {
		double step = t - now(&m);
		if (truth->dirty_change_at_s > 0 && now(&m) < truth->dirty_change_at_s &&
		    now(&m) + step >= truth->dirty_change_at_s) {
			pc_advance(&m.pc, truth->dirty_change_at_s - now(&m));
			m.pc.p.D = (double)truth->dirty_bps_after;
			step = t - now(&m);
		}
		if (!m.pc.end && step > 0)
			pc_advance(&m.pc, step);
		if (m.pc.end == PC_CONVERGED) {
			finish(&m);
			return;
		}
		if (m.pc.end) /* the engine gave up: QEMU would keep going; so do we, idle */
			m.pc.end = PC_RUNNING;
		if (tick(&m, ctl, true, now(&m)))
			return;
		t += dt;
	}
	out->total_s = now(&m);
}
