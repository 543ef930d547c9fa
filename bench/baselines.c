/* baselines.c: see baselines.h. */
#include <math.h>
#include <string.h>

#include "baselines.h"

#define GIB_F (1024.0 * 1024.0 * 1024.0)

const char *baseline_name(baseline_kind k)
{
	static const char *const names[] = {
		"QEMU default (300 ms, no timeout)",
		"Nova (500 ms in 10 steps, 75 s/GiB apart; abort after 800 s/GiB)",
		"KubeVirt (150 s/GiB completion budget, abort)",
		"KubeVirt forced switchover",
		"Proxmox (100 ms, doubled after 5 polls without progress)",
	};
	return k < BASE_COUNT ? names[k] : "?";
}

static vgm_action act(vgm_action_kind kind, uint64_t v)
{
	return (vgm_action){ .kind = kind, .value = v };
}

static vgm_action abort_at(const char *code, const char *why)
{
	vgm_action a = act(VGM_ACT_ABORT, 0);
	strncpy(a.code, code, sizeof(a.code) - 1);
	strncpy(a.reason, why, sizeof(a.reason) - 1);
	return a;
}

static double nova_gib(const baseline *b)
{
	return fmax(2.0, floor((double)b->ram_bytes / GIB_F));
}

static double kubevirt_budget_s(const baseline *b)
{
	return 150.0 * ceil((double)b->ram_bytes / 1e9);
}

static vgm_action start(void *ud)
{
	baseline *b = ud;
	if (b->started++)
		return act(VGM_ACT_NONE, 0);
	switch (b->kind) {
	case BASE_NOVA:
		b->step_done = 1;
		return act(VGM_ACT_SET_DOWNTIME, 50); /* step 0: base = 500 / 10 */
	case BASE_PROXMOX:
		b->downtime_ms = 100;
		return act(VGM_ACT_SET_DOWNTIME, 100);
	default:
		return act(VGM_ACT_SET_DOWNTIME, 300); /* QEMU's own default */
	}
}

static vgm_action nova_step(baseline *b, double t)
{
	double gib = nova_gib(b), delay = 75.0 * gib;
	if (t >= 800.0 * gib)
		return abort_at("nova_timeout", "live_migration_completion_timeout");
	if (b->step_done <= 10 && t >= delay * b->step_done) {
		double base = 50.0, offset = (500.0 - base) / 10.0;
		uint64_t ms = (uint64_t)(base + offset * b->step_done);
		b->step_done++;
		return act(VGM_ACT_SET_DOWNTIME, ms);
	}
	return act(VGM_ACT_NONE, 0);
}

static vgm_action kubevirt_step(baseline *b, double t)
{
	double budget = kubevirt_budget_s(b);
	if (b->kind == BASE_KUBEVIRT && t >= budget)
		return abort_at("kubevirt_timeout", "completion timeout per GiB reached");
	if (b->kind == BASE_KUBEVIRT_FORCED && t >= 2 * budget)
		return abort_at("kubevirt_timeout", "forced switchover did not finish");
	if (b->kind == BASE_KUBEVIRT_FORCED && t >= budget && !b->forced) {
		b->forced = true;
		return act(VGM_ACT_SET_DOWNTIME, (uint64_t)(fmin(2 * budget, 2000.0) * 1000.0));
	}
	return act(VGM_ACT_NONE, 0);
}

static vgm_action proxmox_step(baseline *b, const vgm_job_sample *x)
{
	if (x->memory_iteration == 0)
		return act(VGM_ACT_NONE, 0);
	uint64_t rem = x->memory_remaining;
	b->pol->poll_s = (double)rem < (double)x->memory_bps * 1.0 ? 0.1 : 1.0;
	if (b->have_last && (rem > b->last_rem || rem == 0))
		b->no_progress++;
	b->last_rem = rem;
	b->have_last = true;
	if (b->no_progress >= 5) {
		b->no_progress = 0;
		b->downtime_ms *= 2;
		return act(VGM_ACT_SET_DOWNTIME, b->downtime_ms);
	}
	return act(VGM_ACT_NONE, 0);
}

static vgm_action step(void *ud, const vgm_job_sample *x)
{
	baseline *b = ud;
	double t = (double)x->time_elapsed_ms / 1000.0;
	switch (b->kind) {
	case BASE_NOVA:
		return nova_step(b, t);
	case BASE_KUBEVIRT:
	case BASE_KUBEVIRT_FORCED:
		return kubevirt_step(b, t);
	case BASE_PROXMOX:
		return proxmox_step(b, x);
	default:
		return act(VGM_ACT_NONE, 0);
	}
}

void baseline_policy(baseline *b, baseline_kind k, uint64_t ram_bytes, vgm_sim_policy *pol)
{
	static const double poll_s[] = { 1.0, 0.5, 0.4, 0.4, 1.0 };
	memset(b, 0, sizeof(*b));
	b->kind = k;
	b->ram_bytes = ram_bytes;
	b->pol = pol;
	*pol = (vgm_sim_policy){ .start = start, .step = step, .ud = b, .poll_s = poll_s[k] };
}
