/* precopy.h: the one pre-copy engine behind the plan, the projection and the
 * simulator (internal to lib/model).
 *
 * It follows QEMU's migration thread (migration_iteration_run): at every loop
 * head, when the pending estimate (unsent dirty data) is below the threshold
 * (measured bandwidth x downtime-limit), QEMU syncs the dirty bitmap (one
 * "iteration" in libvirt's memory_iteration) and switches over if the exact
 * pending (RAM, the device's pre-copy residual and the device's stop-copy
 * state) is at most the threshold and the destination has acknowledged the
 * device's initial data (switchover-ack); otherwise it sends one chunk (the
 * work between two loop heads: ~100 ms of transfer).  With chunk_bytes =
 * INFINITY a chunk is a whole round: the classic geometric model of FACTS.md
 * section 7.  Stop-copy runs uncapped at R_link.
 *
 * Two regions are pre-copied side by side: guest RAM (region 0) and vGPU state
 * that the device pre-copies (region 1, VFIO pre-copy); they share the link in
 * proportion to what each has pending.  The threshold uses the bandwidth QEMU
 * *measured* over its last 100 ms window, which the engine perturbs by up to
 * +-jitter (a deterministic function of the window) like a real TCP stream.
 *
 * In adaptive mode the engine stops the way the controller does (model.h:
 * "more pre-copy stops paying"): after each whole round, switch over when the
 * next round would shrink the pause by less than gain_min of it.
 *
 * Invariants: pending and dirty bytes never go negative; dirty bytes since the
 * last sync never exceed the working set; time only moves forward. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

typedef enum pc_end {
	PC_RUNNING = 0,
	PC_CONVERGED,
	PC_DIRTY_FASTER, /* dirty rate >= bandwidth: rounds never shrink */
	PC_FIXED_POINT,  /* rounds stopped shrinking above the threshold (sync overhead) */
	PC_VGPU_TOO_BIG, /* vGPU stop-copy state alone is above the threshold */
	PC_TOO_LONG,
} pc_end;

enum { PC_RAM = 0, PC_DEV = 1, PC_NREG = 2 };

typedef struct pc_region {
	double M0; /* bytes of round 0 */
	double W;  /* working set: cap on dirty bytes per sync */
	double D;  /* write rate, bytes/s */
} pc_region;

typedef struct pc_params {
	pc_region r[PC_NREG];
	double R;           /* pre-copy bandwidth (cap), bytes/s */
	double R_link;      /* stop-copy bandwidth, bytes/s */
	double F;           /* vGPU stop-copy bytes */
	double T;           /* threshold bytes (R * downtime limit) */
	double sync_s;
	double switchover_s;
	double chunk_bytes; /* INFINITY: whole rounds */
	double jitter;      /* measured bandwidth = R * (1 +- jitter) per 100 ms window */
	bool random_dirty;  /* writes land at random in W (the dirty set saturates) */
	bool adaptive;      /* stop by the controller's rule, not by T */
	double gain_min;    /* adaptive: a round must shrink the pause by this fraction */
} pc_params;

typedef struct pc_state {
	pc_params p;
	double t;              /* seconds since the first byte */
	double P[PC_NREG];     /* pending: dirty bytes in the bitmap, unsent */
	double Ds[PC_NREG];    /* dirtied since the last sync */
	double sent[PC_NREG];  /* bytes sent in pre-copy */
	double chunk_left;     /* bytes left in the chunk being sent */
	double sync_left;      /* seconds left in a bitmap sync */
	double last_sync_t;    /* when the latest sync happened */
	double dirty_rate;     /* RAM bytes found dirty at the latest sync / its period */
	double prev_pending;   /* adaptive: pending at the previous sync */
	unsigned syncs;        /* bitmap syncs so far (the setup sync counts) */
	double best_P;         /* smallest pending seen at a sync */
	unsigned since_best;
	double downtime;       /* set when converged */
	double stop_bytes;     /* set when converged: bytes moved while paused */
	unsigned long steps;   /* loop iterations so far (bounded) */
	pc_end end;
} pc_state;

void pc_init(pc_state *s, const pc_params *p);
/* Run for dt seconds of migration time, or until it ends. */
void pc_advance(pc_state *s, double dt);
/* Run to the end (bounded by max_s of migration time). */
void pc_run(pc_state *s, double max_s);
/* The bandwidth QEMU measured in the 100 ms window around time t. */
double pc_measured_bps(const pc_state *s, double t);
/* Total pending of both regions. */
double pc_pending(const pc_state *s);
/* The engine's parameters for a model input (defined in plan.c). */
void pc_params_from_input(const vgm_model_input *in, pc_params *p);
