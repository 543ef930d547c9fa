/* precopy.c: see precopy.h. */
#include <math.h>
#include <string.h>

#include "precopy.h"

#define PC_STALL_SYNCS 64u /* syncs without a new smallest pending: it will never converge */
#define PC_MAX_STEPS 2000000u /* chunks + syncs: bounds the CPU a plan or projection may take */

void pc_init(pc_state *s, const pc_params *p)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	s->P = p->M0;
	s->syncs = 1; /* the setup sync */
	s->best_P = INFINITY;
	if (p->F > p->T)
		s->end = PC_VGPU_TOO_BIG;
}

static void dirty(pc_state *s, double secs)
{
	s->Ds = fmin(s->p.W, s->Ds + s->p.D * secs);
}

static void sync_and_check(pc_state *s)
{
	s->syncs++;
	s->P += s->Ds;
	s->Ds = 0;
	s->sync_left = s->p.sync_s;
	if (s->P + s->p.F <= s->p.T) {
		s->downtime = (s->P + s->p.F) / s->p.R_link + s->p.switchover_s;
		s->end = PC_CONVERGED;
		return;
	}
	if (s->P < s->best_P * (1.0 - 1e-9)) {
		s->best_P = s->P;
		s->since_best = 0;
	} else if (++s->since_best >= PC_STALL_SYNCS) {
		s->end = s->p.D >= s->p.R ? PC_DIRTY_FASTER : PC_FIXED_POINT;
	}
}

/* The loop head of QEMU's migration thread. */
static void loop_head(pc_state *s)
{
	bool whole_rounds = isinf(s->p.chunk_bytes);
	if (whole_rounds ? s->P <= 0 : s->P < s->p.T) {
		sync_and_check(s);
		if (s->end)
			return;
	}
	s->chunk_left = whole_rounds ? s->P : fmin(s->p.chunk_bytes, s->P);
	if (s->chunk_left <= 0 && s->p.D <= 0 && s->sync_left <= 0)
		s->end = PC_FIXED_POINT; /* nothing to send, nothing dirtied, still above: stuck */
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
		s->P = fmax(0, s->P - bytes);
		s->sent += bytes;
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
