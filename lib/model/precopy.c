/* precopy.c: see precopy.h. */
#include <math.h>
#include <string.h>

#include "precopy.h"

#define PC_STALL_SYNCS 64u    /* syncs without a new smallest pending: it will never converge */
#define PC_MAX_STEPS 2000000u /* chunks + syncs: bounds the CPU a plan or projection may take */
#define PC_WINDOW_S 0.1       /* QEMU measures its bandwidth over BUFFER_DELAY (100 ms) */

double pc_pending(const pc_state *s)
{
	return s->P[PC_RAM] + s->P[PC_DEV];
}

/* A deterministic value in [-1, 1] per measurement window (splitmix64). */
static double window_noise(double t)
{
	uint64_t x = (uint64_t)(t / PC_WINDOW_S) + 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	x ^= x >> 31;
	return (double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

double pc_measured_bps(const pc_state *s, double t)
{
	return s->p.R * (1.0 + s->p.jitter * window_noise(t));
}

void pc_init(pc_state *s, const pc_params *p)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	for (int i = 0; i < PC_NREG; i++)
		s->P[i] = p->r[i].M0;
	s->syncs = 1; /* the setup sync */
	s->best_P = INFINITY;
	s->prev_pending = pc_pending(s);
	if (!p->adaptive && p->F > p->T * (1.0 + p->jitter))
		s->end = PC_VGPU_TOO_BIG;
}

static void dirty(pc_state *s, double secs)
{
	for (int i = 0; i < PC_NREG; i++) {
		const pc_region *r = &s->p.r[i];
		if (r->W <= 0 || r->D <= 0)
			continue;
		if (s->p.random_dirty)
			s->Ds[i] += (r->W - s->Ds[i]) * -expm1(-r->D * secs / r->W);
		else
			s->Ds[i] = fmin(r->W, s->Ds[i] + r->D * secs);
	}
}

/* The share of region i's working set still unsent: a page dirtied again
 * before it went out costs nothing more.  Round 0's unsent pages are spread
 * over the whole region, later pending pages lie in the working set. */
static double unsent_fraction(const pc_state *s, int i)
{
	const pc_region *r = &s->p.r[i];
	if (r->W <= 0 || r->M0 <= 0)
		return 0;
	double initial_left = fmax(0, r->M0 - s->sent[i]);
	double later = fmax(0, s->P[i] - initial_left);
	return fmin(1.0, initial_left / r->M0 + later / r->W);
}

static void converge(pc_state *s, double pend)
{
	s->stop_bytes = pend + s->p.F;
	s->downtime = s->stop_bytes / s->p.R_link + s->p.switchover_s;
	s->end = PC_CONVERGED;
}

/* The controller's rule (model.h): stop when one more round would shrink
 * the pause by less than gain_min of it, or the rounds stopped shrinking. */
static bool round_stops_paying(const pc_state *s, double pend)
{
	if (s->prev_pending <= 0)
		return true;
	double lambda = pend / s->prev_pending;
	double pause = (pend + s->p.F) / s->p.R_link + s->p.switchover_s;
	double gain = lambda < 1 ? pend * (1 - lambda) / s->p.R_link : 0;
	return lambda >= 0.9 || gain < s->p.gain_min * pause || pend <= s->p.T;
}

static void sync_and_check(pc_state *s)
{
	s->syncs++;
	double period = s->t - s->last_sync_t;
	s->dirty_rate = period > 0 ? s->Ds[PC_RAM] / period : 0;
	s->last_sync_t = s->t;
	for (int i = 0; i < PC_NREG; i++) {
		s->P[i] += s->Ds[i] * (1.0 - unsent_fraction(s, i));
		s->Ds[i] = 0;
	}
	s->sync_left = s->p.sync_s;
	double pend = pc_pending(s);
	/* switchover-ack: the destination must have the device's initial data. */
	bool acked = s->sent[PC_DEV] >= s->p.r[PC_DEV].M0 * (1.0 - 1e-9);
	double T = s->p.T * pc_measured_bps(s, s->t) / s->p.R;
	if (acked && (s->p.adaptive ? round_stops_paying(s, pend) : pend + s->p.F <= T)) {
		converge(s, pend);
		return;
	}
	s->prev_pending = pend;
	if (pend < s->best_P * (1.0 - 1e-9)) {
		s->best_P = pend;
		s->since_best = 0;
	} else if (++s->since_best >= PC_STALL_SYNCS) {
		double D = s->p.r[PC_RAM].D + s->p.r[PC_DEV].D;
		s->end = D >= s->p.R ? PC_DIRTY_FASTER : PC_FIXED_POINT;
	}
}

/* The loop head of QEMU's migration thread. */
static void loop_head(pc_state *s)
{
	bool whole_rounds = isinf(s->p.chunk_bytes);
	double pend = pc_pending(s);
	double T = s->p.T * pc_measured_bps(s, s->t) / s->p.R;
	if (whole_rounds ? pend <= 0 : pend < T) {
		sync_and_check(s);
		if (s->end)
			return;
		pend = pc_pending(s);
	}
	s->chunk_left = whole_rounds ? pend : fmin(s->p.chunk_bytes, pend);
	if (s->chunk_left <= 0 && s->p.r[PC_RAM].D <= 0 && s->p.r[PC_DEV].D <= 0 &&
	    s->sync_left <= 0)
		s->end = PC_FIXED_POINT; /* nothing to send, nothing dirtied, still above: stuck */
}

/* Send bytes, shared between the regions in proportion to what each has. */
static void send(pc_state *s, double bytes)
{
	double pend = pc_pending(s);
	for (int i = 0; i < PC_NREG && pend > 0; i++) {
		double b = bytes * s->P[i] / pend;
		s->P[i] = fmax(0, s->P[i] - b);
		s->sent[i] += b;
	}
}

void pc_advance(pc_state *s, double dt)
{
	while (dt > 1e-12 && !s->end) {
		if (++s->steps > PC_MAX_STEPS) {
			s->end = PC_TOO_LONG;
			break;
		}
		if (s->sync_left > 0) {
			double d = fmin(dt, s->sync_left);
			s->sync_left -= d;
			s->t += d;
			dirty(s, d);
			dt -= d;
			continue;
		}
		if (s->chunk_left <= 0) {
			loop_head(s);
			if (s->chunk_left <= 0)
				continue; /* a sync started (or it ended) */
		}
		double bytes = fmin(s->chunk_left, s->p.R * dt);
		double d = bytes / s->p.R;
		s->chunk_left -= bytes;
		send(s, bytes);
		s->t += d;
		dirty(s, d);
		dt -= d;
		if (bytes <= 0)
			break;
	}
}

void pc_run(pc_state *s, double max_s)
{
	while (!s->end) {
		if (s->t >= max_s) {
			s->end = PC_TOO_LONG;
			break;
		}
		pc_advance(s, 1.0);
	}
}
