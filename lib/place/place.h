/* place.h: where the vGPU VMs of a host being emptied should go (pure, no I/O).
 *
 * Input: the VMs to move (the vGPU profile of each of their vGPUs, RAM, the
 * predicted pause from lib/model's plan, whether live migration is possible
 * at all) and, per target host, its free RAM and its physical GPUs: for each
 * GPU the profiles it can host with their per-GPU instance cap, the profile
 * it hosts now (NVIDIA GPUs are homogeneous: a GPU holding one type offers no
 * other type) and how many instances are in use.
 *
 * Output: one entry per VM, ordered smallest predicted pause first (the order
 * an evacuation starts them in: short pauses free their slots soonest and
 * hurt least), each either placed (one target host, and for every vGPU the
 * GPU on that host) or left behind with a stable code and a sentence why.
 *
 * Rules (docs/evacuate.md):
 *   - all vGPUs of a VM go to ONE host, all or nothing;
 *   - a GPU takes a profile only if it hosts nothing or already hosts that
 *     profile, and never more instances than the profile's per-GPU cap;
 *   - VMs are placed most-vGPUs first (first-fit decreasing packs better
 *     than pause order; the output order is by pause regardless);
 *   - for one VM, a host where it fits without opening an empty GPU wins
 *     (empty GPUs stay free for other profiles), then the host given fewer
 *     VMs so far (spreads the concurrent migrations), then input order.
 *
 * Invariants: deterministic for a given input; the input is never modified;
 * re-planning after a failure is a second call with fresh capacities. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/limit.h"

#define VGM_PLACE_MAX_VGPUS 16

typedef struct vgm_place_vm {
	const char *name;
	const char *const *profiles; /* one profile name per vGPU */
	size_t n_vgpus;
	uint64_t ram_bytes;
	double pause_s;              /* predicted pause; < 0 unknown (sorted last) */
	bool live_refused;           /* the plan refused a live migration */
	const char *refused_reason;  /* why (shown when live_refused) */
} vgm_place_vm;

typedef struct vgm_place_slot {
	const char *profile;   /* a profile this GPU can host */
	unsigned max_instances; /* per-GPU cap of that profile */
} vgm_place_slot;

typedef struct vgm_place_gpu {
	const char *address;        /* PCI address, for the report */
	const vgm_place_slot *slots;
	size_t n_slots;
	const char *current_profile; /* hosted now; NULL or "" when empty */
	unsigned used;               /* instances of current_profile in use or held */
} vgm_place_gpu;

typedef struct vgm_place_target {
	const char *name;
	vgm_limit mem_free_bytes;    /* unset: RAM not checked */
	const vgm_place_gpu *gpus;
	size_t n_gpus;
} vgm_place_target;

typedef struct vgm_place_input {
	const vgm_place_vm *vms;
	size_t n_vms;
	const vgm_place_target *targets;
	size_t n_targets;
} vgm_place_input;

typedef struct vgm_place_entry {
	size_t vm;                         /* index into input vms */
	int target;                        /* index into input targets; -1: left behind */
	size_t gpu[VGM_PLACE_MAX_VGPUS];   /* per vGPU: GPU index on the target */
	char code[32];                     /* "" placed; "no_capacity", "live_refused", ... */
	char reason[256];
} vgm_place_entry;

typedef struct vgm_placement {
	vgm_place_entry *entries; /* n_vms of them, smallest pause first */
	size_t n;
	size_t n_placed;
} vgm_placement;

/* Compute a placement.  -EINVAL with err for malformed input (a VM without
 * a name, more than VGM_PLACE_MAX_VGPUS vGPUs, a GPU with a NULL slot list).
 * VMs refused live (live_refused) are placed when cold_fallback is set (a
 * cold migration needs the same capacity) and left behind otherwise. */
int vgm_place(const vgm_place_input *in, bool cold_fallback, vgm_placement **out, vgm_error *err);
void vgm_placement_free(vgm_placement *p);
DEFINE_FREEP(vgm_placement, vgm_placement_free)
