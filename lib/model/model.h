/* model.h: the pre-copy migration model (pure arithmetic, no I/O).
 *
 * Three parts share one picture of a QEMU live migration:
 *   plan       what a migration should cost before it starts: total time,
 *              switchover (downtime), iterations, whether it converges, and a
 *              verdict against the operator's --max-downtime / --timeout with
 *              the reason in numbers;
 *   controller a pure function (state, job-stat sample) -> action that keeps
 *              the downtime inside the operator's limit and aborts early when
 *              the samples show the limit cannot be met before the timeout;
 *   simulator  replays the model as libvirt job stats would arrive, feeding
 *              the controller and applying its actions, so the controller is
 *              tested exactly as lib/migrate drives it.
 *
 * The model (docs/model.md has the derivation and the measured accuracy):
 * pre-copy round 0 sends the guest's non-zero RAM V0 at bandwidth R; while a
 * round of V bytes is sent (V/R seconds plus a bitmap sync) the guest dirties
 * D bytes/s, so the next round holds min(D*(V/R + sync), W) bytes (W: the
 * writable working set, default all RAM).  QEMU's stopping rule: switch over
 * when the pending bytes (dirty RAM plus the vGPU stop-copy state F) are at
 * most R * downtime-limit, checked between chunks of ~100 ms of transfer
 * (precopy.h).  Downtime = pending / link speed (the stop-copy ignores the
 * bandwidth cap) + a fixed switchover cost.
 * vGPU framebuffer is assumed to move at switchover (GPUs have no dirty bits
 * for vRAM) unless a vGPU pre-copy dirty rate is given; then it is pre-copied
 * like RAM.
 *
 * Invariants: every function is deterministic and allocation-free; byte
 * counts are uint64_t, times are double seconds inside the model and
 * milliseconds at the edges that libvirt speaks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/limit.h"

#define VGM_MIB (1024.0 * 1024.0)
#define VGM_DEFAULT_DOWNTIME_MS 300 /* QEMU's downtime-limit default */

/* Fixed costs, calibrated on the lab (docs/model.md). */
typedef struct vgm_model_costs {
	double setup_s;         /* start call -> first RAM byte (connections, dest QEMU start) */
	double sync_s;          /* per-iteration dirty-bitmap sync */
	double switchover_s;    /* fixed part of the downtime: CPU/device state, dest resume */
	double bw_efficiency;   /* effective / nominal bandwidth (1.0 = perfect link) */
	double chunk_s;         /* transfer time between two checks of QEMU's loop
				 * (BUFFER_DELAY, 100 ms); 0: whole rounds (geometric model) */
	double bw_margin;       /* how far QEMU's 100 ms bandwidth measurement may overshoot
				 * the rate the stop-copy really gets (0.15: 15%) */
	double gain_min;        /* a pre-copy round must shrink the pause by this fraction */
	double bw_jitter;       /* simulator truth only: +- spread of QEMU's measurement */
} vgm_model_costs;

/* The defaults documented in docs/model.md. */
vgm_model_costs vgm_model_default_costs(void);

/* Whether a vGPU's state moves in pre-copy (VFIO pre-copy, QEMU >= 8.1 and a
 * driver that supports it) or all at stop-copy.  UNKNOWN: decide in flight
 * from vfio_data_transferred; never a reason to refuse. */
typedef enum vgm_precopy {
	VGM_PRECOPY_UNKNOWN = 0,
	VGM_PRECOPY_NO,
	VGM_PRECOPY_YES,
} vgm_precopy;

typedef struct vgm_model_input {
	uint64_t ram_bytes;               /* guest RAM */
	uint64_t ram_nonzero_bytes;       /* RAM sent in round 0; 0: all of ram_bytes */
	uint64_t vgpu_state_bytes;        /* sum of vGPU framebuffers */
	uint64_t vgpu_dirty_bps;          /* vGPU write rate during pre-copy (precopy YES) */
	uint64_t vgpu_working_set_bytes;  /* cap on vGPU dirty bytes per round; 0: all of it */
	vgm_precopy vgpu_precopy;         /* UNKNOWN is planned as NO (the longer pause) */
	uint64_t bandwidth_bps;           /* pre-copy bandwidth (the cap, or the link) bytes/s (> 0) */
	uint64_t link_bps;                /* uncapped link for the stop-copy; 0: bandwidth_bps */
	bool link_known;                  /* link_bps was declared or measured, not assumed */
	uint64_t dirty_bps;               /* guest RAM dirty rate, bytes per second */
	uint64_t working_set_bytes;       /* cap on dirty bytes per round; 0: ram_bytes */
	bool random_dirty;                /* writes land at random in the working set */
	uint64_t downtime_limit_ms;       /* QEMU downtime-limit; 0: the controller's rule
					   * (switch over when more pre-copy stops paying) */
	vgm_model_costs costs;
} vgm_model_input;

typedef struct vgm_plan {
	bool converges;
	unsigned iterations;      /* as libvirt counts them (memory_iteration: bitmap syncs) */
	double total_s;           /* setup + pre-copy + downtime; -1 when it does not converge */
	double precopy_s;         /* time spent in pre-copy rounds */
	double downtime_s;        /* expected switchover; -1 when it does not converge */
	double downtime_floor_s;  /* physics: stop-copy vGPU state / known link + fixed cost;
				   * -1 when the link is not known */
	uint64_t bytes_total;     /* bytes on the wire (RAM rounds + stop-copy + vGPU) */
	uint64_t stop_copy_bytes; /* RAM + vGPU bytes moved while paused */
	double lambda;            /* D / R_effective */
	uint64_t threshold_bytes; /* R_effective * downtime limit */
	double effective_bps;
	char reason[320];         /* why it does not converge; "" when it does */
} vgm_plan;

/* Compute the plan.  -EINVAL (with err) for impossible inputs (no RAM, no
 * bandwidth).  A plan that does not converge is not an error: see
 * plan->converges and plan->reason. */
int vgm_model_plan(const vgm_model_input *in, vgm_plan *plan, vgm_error *err);

/* Verdict of a plan against the operator's limits. */
typedef struct vgm_verdict {
	bool ok;
	char code[48];     /* "ok", "not_converging", "downtime_exceeded", "timeout_exceeded" */
	char reason[384];
} vgm_verdict;

/* max_downtime_ms / timeout_ms: 0 = no limit.  --max-downtime refuses only
 * on physics (plan->downtime_floor_s above it); a longer expected switchover
 * is for the controller to beat or abort on with the numbers. */
void vgm_model_verdict(const vgm_plan *plan, uint64_t max_downtime_ms, uint64_t timeout_ms,
		       vgm_verdict *v);

/* The QEMU downtime-limit to set so the whole switchover (pending/R plus the
 * fixed cost) stays within max_downtime_ms; 0 when the fixed cost alone is
 * over the limit.  max_downtime_ms 0 means QEMU's default. */
uint64_t vgm_model_qemu_downtime_ms(const vgm_model_costs *c, uint64_t max_downtime_ms);

/* Seconds left from the middle of a migration: remaining_bytes unsent in the
 * bitmap, round_dirty_bytes dirtied since the last sync; negative when it
 * never converges. */
double vgm_model_project_s(uint64_t remaining_bytes, uint64_t round_dirty_bytes, double dirty_bps,
			   double bps, uint64_t threshold_bytes, uint64_t vgpu_state_bytes,
			   const vgm_model_costs *c);

/* ---- job-stat samples (what lib/migrate reads from virDomainGetJobStats) ---- */

enum {
	VGM_SAMPLE_HAVE_DIRTY = 1u << 0,  /* memory_dirty_rate present */
	VGM_SAMPLE_HAVE_BPS = 1u << 1,    /* memory_bps present */
	VGM_SAMPLE_HAVE_VFIO = 1u << 2,   /* vfio_data_transferred present (libvirt >= 10.6) */
};

typedef struct vgm_job_sample {
	uint64_t time_elapsed_ms;
	uint64_t data_total, data_processed, data_remaining;
	uint64_t memory_total, memory_processed, memory_remaining;
	uint64_t memory_dirty_rate_bps;   /* pages/s * page size */
	uint64_t memory_iteration;
	uint64_t memory_bps;
	uint64_t vfio_data_transferred;
	unsigned have;
} vgm_job_sample;

/* ---- switchover controller (controller.c has the rules) ---- */

typedef struct vgm_ctl_config {
	vgm_limit max_downtime_ms;   /* the operator's limit on the measured pause */
	vgm_limit timeout_ms;
	vgm_limit bandwidth_cap_bps; /* caps pre-copy only */
	vgm_limit link_bps;          /* declared (config) or learnt from earlier migrations;
				      * unset: learnt from the first unthrottled round */
	vgm_limit dirty_rate_bps;    /* measured before the start (unique bytes/s over 1 s) */
	uint64_t ram_bytes;
	uint64_t vgpu_precopy_bytes;  /* framebuffers known to pre-copy */
	uint64_t vgpu_stopcopy_bytes; /* framebuffers known to move at stop-copy */
	uint64_t vgpu_unknown_bytes;  /* framebuffers not known either way: decided in flight */
	vgm_model_costs costs;
} vgm_ctl_config;

typedef enum vgm_action_kind {
	VGM_ACT_NONE = 0,
	VGM_ACT_SET_DOWNTIME,  /* value: ms */
	VGM_ACT_SET_BANDWIDTH, /* value: bytes/s */
	VGM_ACT_ABORT,         /* reason, code */
} vgm_action_kind;

typedef struct vgm_action {
	vgm_action_kind kind;
	uint64_t value;
	char code[48];
	char reason[384];
} vgm_action;

typedef struct vgm_ctl_state {
	vgm_ctl_config cfg;
	unsigned pending_start;       /* start actions not handed out yet */
	uint64_t downtime_set_ms;     /* what QEMU was told */
	double link_bps;              /* declared, or the best rate seen uncapped; 0: not yet */
	double bw_max;                /* highest bandwidth QEMU reported (its threshold uses it) */
	double bw_sum;                /* sum and count of those reports (their mean) */
	unsigned bw_n;
	unsigned tries_at_cap;        /* switch attempts at the --max-downtime cap that failed */
	vgm_precopy unknown_precopy;  /* what the samples say about vgpu_unknown_bytes */
	unsigned vfio_idle_samples;   /* samples with RAM moving and no device data */
	uint64_t last_ms, last_vfio;  /* previous sample */
	uint64_t iteration;           /* last memory_iteration seen */
	uint64_t iter_processed, iter_vfio; /* counters at the latest iteration change */
	double round;                 /* RAM + device bytes of the last round */
	double prev_round;            /* ... of the one before */
	double lambda;                /* next round / this round */
	uint64_t switch_iteration;    /* iteration at which the controller asked for a switchover */
	uint64_t switch_ms;           /* ... and when */
	bool capped;                  /* --max-downtime held the limit below what it wanted */
	unsigned flat_rounds;         /* consecutive rounds that shrank by less than 5% */
	double expected_downtime_s;   /* pause if QEMU switched at the end of this round */
	double floor_s;               /* smallest pause the samples allow so far */
	double eta_s;                 /* projected seconds left; < 0 never */
	unsigned over_timeout_samples; /* consecutive samples projecting past --timeout */
	unsigned over_cap_samples;    /* consecutive samples above the bandwidth cap */
	bool aborted;
} vgm_ctl_state;

void vgm_ctl_init(vgm_ctl_state *s, const vgm_ctl_config *cfg);
/* Actions to apply before the migration starts, one per call, until NONE.
 * An ABORT here is a refusal: nothing has started. */
vgm_action vgm_ctl_start(vgm_ctl_state *s);
/* One job-stat sample in, one action out.  After ABORT, always NONE. */
vgm_action vgm_ctl_step(vgm_ctl_state *s, const vgm_job_sample *x);

/* ---- simulator ---- */

typedef struct vgm_sim_truth {
	vgm_model_input m;          /* the guest and link as they really are (precopy YES or NO) */
	double dirty_change_at_s;   /* > 0: from then on the guest dirties dirty_bps_after */
	uint64_t dirty_bps_after;
	double sample_interval_s;   /* 0: 0.25 */
	double max_s;               /* hard stop of the simulation (0: 3600) */
} vgm_sim_truth;

/* Whatever steers the simulated migration: the controller (vgm_sim_run) or a
 * benchmark's baseline policy, seen through the same job stats. */
typedef struct vgm_sim_policy {
	vgm_action (*start)(void *ud);  /* before the start, until NONE; ABORT = refused */
	vgm_action (*step)(void *ud, const vgm_job_sample *x);
	void *ud;
	double poll_s;                  /* seconds to the next sample; step may change it */
} vgm_sim_policy;

#define VGM_SIM_MAX_ACTIONS 16

typedef struct vgm_sim_result {
	bool completed;
	bool aborted;
	bool refused;               /* aborted before the start */
	double total_s;
	double downtime_s;
	unsigned iterations;
	uint64_t bytes_total;
	unsigned n_samples;
	vgm_job_sample last;
	vgm_action actions[VGM_SIM_MAX_ACTIONS]; /* non-NONE actions in order */
	double action_at_s[VGM_SIM_MAX_ACTIONS];
	unsigned n_actions;
	vgm_action final;           /* the last non-NONE action (the abort, when aborted) */
} vgm_sim_result;

/* Run the truth through QEMU's pre-copy loop, sampling like lib/migrate does
 * and obeying the controller (cfg may be NULL: no controller, QEMU alone with
 * truth.m.downtime_limit_ms). */
void vgm_sim_run(const vgm_sim_truth *truth, const vgm_ctl_config *cfg, vgm_sim_result *out);
/* The same under any policy (pol->poll_s 0: the truth's sample interval). */
void vgm_sim_run_policy(const vgm_sim_truth *truth, vgm_sim_policy *pol, vgm_sim_result *out);
