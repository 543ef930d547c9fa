/* precopy.h: the one pre-copy engine behind the plan, the projection and the
 * simulator (internal to lib/model).
 *
 * It follows QEMU's migration thread (migration_iteration_run): at every loop
 * head, when the pending estimate (unsent dirty RAM) is below the threshold
 * R * downtime-limit, QEMU syncs the dirty bitmap (one "iteration" in libvirt's
 * memory_iteration) and switches over if the exact pending (RAM plus the vGPU
 * stop-copy state) is at most the threshold; otherwise it sends one chunk (the
 * work between two loop heads: ~100 ms of transfer under a bandwidth cap).
 * With chunk_bytes = INFINITY a chunk is a whole round and this is the classic
 * geometric model of FACTS.md section 7.  Stop-copy runs uncapped at link_bps.
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

typedef struct pc_params {
	double R;           /* pre-copy bandwidth (cap), bytes/s */
	double R_link;      /* stop-copy bandwidth, bytes/s */
	double D;           /* dirty rate bytes/s */
	double W;           /* working-set cap on dirty bytes per sync */
	double F;           /* vGPU stop-copy bytes */
	double T;           /* threshold bytes (R * downtime limit) */
	double sync_s;
	double switchover_s;
	double chunk_bytes; /* INFINITY: whole rounds */
	double M0;          /* bytes of round 0 */
} pc_params;

typedef struct pc_state {
	pc_params p;
	double t;           /* seconds since the first byte */
	double P;           /* pending: dirty bytes in the bitmap, unsent */
	double Ds;          /* dirtied since the last sync */
	double chunk_left;  /* bytes left in the chunk being sent */
	double sync_left;   /* seconds left in a bitmap sync */
	double sent;        /* bytes sent in pre-copy */
	unsigned syncs;     /* bitmap syncs so far (the setup sync counts) */
	double best_P;      /* smallest pending seen at a sync */
	unsigned since_best;
	double downtime;    /* set when converged */
	unsigned long steps; /* loop iterations so far (bounded) */
	pc_end end;
} pc_state;

void pc_init(pc_state *s, const pc_params *p);
/* Run for dt seconds of migration time, or until it ends. */
void pc_advance(pc_state *s, double dt);
/* Run to the end (bounded by max_s of migration time). */
void pc_run(pc_state *s, double max_s);
/* The engine's parameters for a model input (defined in plan.c). */
void pc_params_from_input(const vgm_model_input *in, pc_params *p);
