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
} vgm_model_costs;

/* The defaults documented in docs/model.md. */
vgm_model_costs vgm_model_default_costs(void);

typedef struct vgm_model_input {
	uint64_t ram_bytes;               /* guest RAM */
	uint64_t ram_nonzero_bytes;       /* RAM sent in round 0; 0: all of ram_bytes */
	uint64_t vgpu_state_bytes;        /* sum of vGPU framebuffers (stop-copy state) */
	uint64_t vgpu_dirty_bps;          /* vGPU pre-copy dirty rate; 0: moved at switchover */
	bool vgpu_precopy;                /* true: vGPU state is pre-copied at vgpu_dirty_bps */
	uint64_t bandwidth_bps;           /* pre-copy bandwidth (the cap, or the link) bytes/s (> 0) */
	uint64_t link_bps;                /* uncapped link for the stop-copy; 0: bandwidth_bps */
	uint64_t dirty_bps;               /* guest RAM dirty rate, bytes per second */
	uint64_t working_set_bytes;       /* cap on dirty bytes per round; 0: ram_bytes */
	uint64_t downtime_limit_ms;       /* QEMU downtime-limit; 0: 300 */
	vgm_model_costs costs;
} vgm_model_input;

typedef struct vgm_plan {
	bool converges;
	unsigned iterations;      /* as libvirt counts them (memory_iteration: bitmap syncs) */
	double total_s;           /* setup + pre-copy + downtime; -1 when it does not converge */
	double precopy_s;         /* time spent in pre-copy rounds */
	double downtime_s;        /* expected switchover; -1 when it does not converge */
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

/* max_downtime_ms / timeout_ms: 0 = no limit. */
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

/* ---- convergence controller ---- */

typedef struct vgm_ctl_config {
	uint64_t max_downtime_ms;   /* operator's limit; 0 = QEMU default */
	uint64_t timeout_ms;        /* 0 = none */
	uint64_t bandwidth_cap_bps; /* 0 = unlimited */
	uint64_t vgpu_state_bytes;  /* stop-copy vGPU state QEMU will move */
	unsigned stall_iterations;  /* K: abort when remaining has not shrunk for K iterations (0: 3) */
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
	uint64_t iteration;           /* last memory_iteration seen */
	uint64_t best_remaining;      /* smallest remaining at an iteration start */
	uint64_t best_iteration;
	uint64_t last_round_start;    /* remaining at the latest iteration start */
	uint64_t prev_round_start;    /* ... and at the one before (0: none yet) */
	unsigned fast_dirty_samples;  /* consecutive samples with dirty >= bandwidth */
	unsigned over_timeout_samples; /* consecutive samples projecting past --timeout */
	unsigned over_cap_samples;    /* consecutive samples above the bandwidth cap */
	double expected_downtime_s;   /* from the last sample */
	double eta_s;                 /* projected seconds left; < 0 never */
	bool aborted;
} vgm_ctl_state;

void vgm_ctl_init(vgm_ctl_state *s, const vgm_ctl_config *cfg);
/* Actions to apply before the migration starts, one per call, until NONE. */
vgm_action vgm_ctl_start(vgm_ctl_state *s);
/* One job-stat sample in, one action out.  After ABORT, always NONE. */
vgm_action vgm_ctl_step(vgm_ctl_state *s, const vgm_job_sample *x);

/* ---- simulator ---- */

typedef struct vgm_sim_truth {
	vgm_model_input m;          /* the guest and link as they really are */
	double dirty_change_at_s;   /* > 0: from then on the guest dirties dirty_bps_after */
	uint64_t dirty_bps_after;
	double sample_interval_s;   /* 0: 0.25 */
	double max_s;               /* hard stop of the simulation (0: 3600) */
} vgm_sim_truth;

#define VGM_SIM_MAX_ACTIONS 16

typedef struct vgm_sim_result {
	bool completed;
	bool aborted;
	double total_s;
	double downtime_s;
	unsigned iterations;
	uint64_t bytes_total;
	unsigned n_samples;
	vgm_job_sample last;
	vgm_action actions[VGM_SIM_MAX_ACTIONS]; /* non-NONE actions in order */
	double action_at_s[VGM_SIM_MAX_ACTIONS];
	unsigned n_actions;
} vgm_sim_result;

/* Run the truth through QEMU's pre-copy loop, sampling like lib/migrate does
 * and obeying the controller (cfg may be NULL: no controller, QEMU alone with
 * truth.m.downtime_limit_ms). */
void vgm_sim_run(const vgm_sim_truth *truth, const vgm_ctl_config *cfg, vgm_sim_result *out);
