/* plan.c: the pre-copy plan, the mid-migration projection and the verdict.
 *
 * Both the plan and the projection run the one engine of precopy.c, so the
 * controller and the plan can never disagree about what "converges" means. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "precopy.h"
#include "units.h"

vgm_model_costs vgm_model_default_costs(void)
{
	/* Calibrated on the lab (libvirt 9.0, QEMU 10, TCG, veth): docs/model.md. */
	return (vgm_model_costs){
		.setup_s = 1.5,
		.sync_s = 0.010,
		.switchover_s = 0.030,
		.bw_efficiency = 1.0,
		.chunk_s = 0.1,
		.bw_margin = 0.15,
		.gain_min = 0.05,
	};
}

uint64_t vgm_model_qemu_downtime_ms(const vgm_model_costs *c, uint64_t max_downtime_ms)
{
	if (max_downtime_ms == 0)
		return VGM_DEFAULT_DOWNTIME_MS;
	double fixed_ms = c->switchover_s * 1000.0;
	if ((double)max_downtime_ms <= fixed_ms + 1.0)
		return 0;
	return (uint64_t)floor((double)max_downtime_ms - fixed_ms);
}

#define PLAN_MAX_S (30.0 * 86400.0) /* a plan longer than this does not converge in practice */

static void explain(pc_end e, const pc_params *p, uint64_t dl_ms, char *buf, size_t n)
{
	char a[32], b[32], c[32];
	switch (e) {
	case PC_RUNNING:
	case PC_CONVERGED:
		buf[0] = '\0';
		break;
	case PC_DIRTY_FASTER:
		snprintf(buf, n, "guest dirties %s/s but the link moves %s/s: pre-copy never converges",
			 vgm_format_bytes((uint64_t)(p->r[PC_RAM].D + p->r[PC_DEV].D), a, sizeof(a)),
			 vgm_format_bytes((uint64_t)p->R, b, sizeof(b)));
		break;
	case PC_FIXED_POINT:
		snprintf(buf, n,
			 "guest dirties %s/s at %s/s of link: the dirty RAM per round stops shrinking above the %s "
			 "that fit in the %llu ms downtime limit: pre-copy never converges",
			 vgm_format_bytes((uint64_t)(p->r[PC_RAM].D + p->r[PC_DEV].D), a, sizeof(a)),
			 vgm_format_bytes((uint64_t)p->R, b, sizeof(b)),
			 vgm_format_bytes((uint64_t)p->T, c, sizeof(c)), (unsigned long long)dl_ms);
		break;
	case PC_VGPU_TOO_BIG:
		snprintf(buf, n,
			 "vGPU state %s needs %s at %s/s, more than the %llu ms downtime limit: "
			 "raise --max-downtime or the bandwidth",
			 vgm_format_bytes((uint64_t)p->F, a, sizeof(a)),
			 vgm_format_seconds(p->F / p->R, b, sizeof(b)),
			 vgm_format_bytes((uint64_t)p->R, c, sizeof(c)), (unsigned long long)dl_ms);
		break;
	case PC_TOO_LONG:
		snprintf(buf, n, "pre-copy would take more than 30 days (or 2 million transfer steps): it does not converge in practice");
		break;
	}
}

void pc_params_from_input(const vgm_model_input *in, pc_params *p)
{
	const vgm_model_costs *c = &in->costs;
	double eff = c->bw_efficiency > 0 ? c->bw_efficiency : 1.0;
	double vg = (double)in->vgpu_state_bytes;
	bool pre = in->vgpu_precopy == VGM_PRECOPY_YES;
	memset(p, 0, sizeof(*p));
	p->R = (double)in->bandwidth_bps * eff;
	p->R_link = (double)(in->link_bps ? in->link_bps : in->bandwidth_bps) * eff;
	p->r[PC_RAM].D = (double)in->dirty_bps;
	p->r[PC_RAM].W = (double)(in->working_set_bytes ? in->working_set_bytes : in->ram_bytes);
	p->r[PC_RAM].M0 = (double)(in->ram_nonzero_bytes && in->ram_nonzero_bytes < in->ram_bytes
					   ? in->ram_nonzero_bytes
					   : in->ram_bytes);
	if (pre) {
		p->r[PC_DEV].M0 = vg;
		p->r[PC_DEV].D = (double)in->vgpu_dirty_bps;
		p->r[PC_DEV].W = (double)(in->vgpu_working_set_bytes ? in->vgpu_working_set_bytes
								     : in->vgpu_state_bytes);
	}
	p->F = pre ? 0.0 : vg;
	p->adaptive = in->downtime_limit_ms == 0;
	/* Adaptive: QEMU holds a 10 ms limit until the controller lets it go. */
	p->T = p->R * (p->adaptive ? 10.0 : (double)in->downtime_limit_ms) / 1000.0;
	p->sync_s = c->sync_s;
	p->switchover_s = c->switchover_s;
	p->chunk_bytes = c->chunk_s > 0 ? p->R * c->chunk_s : INFINITY;
	p->jitter = c->bw_jitter;
	p->random_dirty = in->random_dirty;
	p->gain_min = c->gain_min > 0 ? c->gain_min : 0.05;
}

int vgm_model_plan(const vgm_model_input *in, vgm_plan *plan, vgm_error *err)
{
	memset(plan, 0, sizeof(*plan));
	if (in->ram_bytes == 0)
		return vgm_error_setr(err, EINVAL, "bad_plan_input", "the domain's RAM size is 0");
	if (in->bandwidth_bps == 0)
		return vgm_error_setr(err, EINVAL, "bad_plan_input",
				      "the bandwidth is 0; give --bandwidth (e.g. 1G)");
	pc_params p;
	pc_params_from_input(in, &p);
	pc_state s;
	pc_init(&s, &p);
	pc_run(&s, PLAN_MAX_S);

	plan->lambda = (p.r[PC_RAM].D + p.r[PC_DEV].D) / p.R;
	plan->effective_bps = p.R;
	plan->threshold_bytes = (uint64_t)p.T;
	plan->converges = s.end == PC_CONVERGED;
	/* libvirt counts the setup sync, each sync in pre-copy, and the final
	 * sync inside the stop-copy (ram_save_complete). */
	plan->iterations = s.syncs + 1;
	plan->precopy_s = s.t;
	plan->downtime_s = plan->converges ? s.downtime : -1;
	/* Physics only: state of unknown kind may yet pre-copy. */
	double surely_stop = in->vgpu_precopy == VGM_PRECOPY_NO ? p.F : 0;
	plan->downtime_floor_s = in->link_known ? surely_stop / p.R_link + p.switchover_s : -1;
	plan->total_s = plan->converges ? in->costs.setup_s + s.t + s.downtime : -1;
	plan->stop_copy_bytes = (uint64_t)(plan->converges ? s.stop_bytes : pc_pending(&s) + p.F);
	plan->bytes_total = (uint64_t)(s.sent[PC_RAM] + s.sent[PC_DEV]) + plan->stop_copy_bytes;
	explain(s.end, &p, in->downtime_limit_ms, plan->reason, sizeof(plan->reason));
	return 0;
}

double vgm_model_project_s(uint64_t remaining_bytes, uint64_t round_dirty_bytes, double dirty_bps,
			   double bps, uint64_t threshold_bytes, uint64_t vgpu_state_bytes,
			   const vgm_model_costs *c)
{
	/* Without a working-set cap, rounds only grow when the guest dirties
	 * faster than the link: never, and no need to walk them. */
	if (bps <= 0 || dirty_bps >= bps)
		return -1;
	pc_params p = {
		.R = bps, .R_link = bps, .F = (double)vgpu_state_bytes,
		.T = (double)threshold_bytes, .sync_s = c->sync_s, .switchover_s = c->switchover_s,
		.chunk_bytes = c->chunk_s > 0 ? bps * c->chunk_s : INFINITY,
		.r[PC_RAM] = { .M0 = (double)remaining_bytes, .W = INFINITY, .D = dirty_bps },
	};
	pc_state s;
	pc_init(&s, &p);
	s.Ds[PC_RAM] = (double)round_dirty_bytes;
	pc_run(&s, PLAN_MAX_S);
	return s.end == PC_CONVERGED ? s.t + s.downtime : -1;
}

void vgm_model_verdict(const vgm_plan *plan, uint64_t max_downtime_ms, uint64_t timeout_ms,
		       vgm_verdict *v)
{
	char a[32], b[32], c[32];
	memset(v, 0, sizeof(*v));
	if (!plan->converges) {
		snprintf(v->code, sizeof(v->code), "not_converging");
		snprintf(v->reason, sizeof(v->reason), "%s", plan->reason);
		return;
	}
	if (max_downtime_ms && plan->downtime_floor_s * 1000.0 > (double)max_downtime_ms) {
		snprintf(v->code, sizeof(v->code), "downtime_exceeded");
		snprintf(v->reason, sizeof(v->reason),
			 "the vGPU state that moves at switchover needs %s over the known link, more than "
			 "--max-downtime %s: raise --max-downtime or use a faster link",
			 vgm_format_seconds(plan->downtime_floor_s, a, sizeof(a)),
			 vgm_format_seconds((double)max_downtime_ms / 1000.0, b, sizeof(b)));
		return;
	}
	if (timeout_ms && plan->total_s * 1000.0 > (double)timeout_ms) {
		snprintf(v->code, sizeof(v->code), "timeout_exceeded");
		snprintf(v->reason, sizeof(v->reason),
			 "expected total time %s (%u iterations) exceeds --timeout %s",
			 vgm_format_seconds(plan->total_s, a, sizeof(a)), plan->iterations,
			 vgm_format_seconds((double)timeout_ms / 1000.0, b, sizeof(b)));
		return;
	}
	v->ok = true;
	snprintf(v->code, sizeof(v->code), "ok");
	snprintf(v->reason, sizeof(v->reason),
		 "expected total %s in %u iterations, switchover %s%s%s",
		 vgm_format_seconds(plan->total_s, a, sizeof(a)), plan->iterations,
		 vgm_format_seconds(plan->downtime_s, b, sizeof(b)),
		 max_downtime_ms ? " within --max-downtime " : "",
		 max_downtime_ms ? vgm_format_seconds((double)max_downtime_ms / 1000.0, c, sizeof(c)) : "");
}
