/* cold.h: cold migration of a vGPU VM as a job over an operations table.
 *
 * When live migration is impossible (different host driver versions, a
 * profile the target only has under another board, a plan that cannot meet
 * the operator's pause), the VM can still move with a reboot: claim vGPUs on
 * the target, shut the guest down, define it on the target with its
 * persistent XML rewritten to the target's vGPU ids, start it there, commit
 * the claim and release the source.  Storage is assumed shared: `check`
 * must prove the target reaches every disk before anything stops.
 *
 * The job only sequences; every effect goes through vgm_cold_ops (libvirt
 * on both ends, the target agent, the store), so unit tests fail each step
 * and assert the rollback without libvirt.  `record` is called before each
 * phase acts (the agent journals it), so a crash leaves the last phase
 * durable.
 *
 * Rollback: any failure before the VM runs on the target undoes what was
 * done, newest first: undefine on the target, start the VM on the source
 * with its own vGPUs (which were never released), release the target's
 * claim.  Once the VM has started on the target (the point of no return)
 * failures of commit and source release are warnings: the target's reconcile
 * commits a claim whose domain runs, the source's gc releases what is left.
 *
 * Invariants: undo steps are idempotent in the ops contract (start_source
 * succeeds when the VM already runs, undefine_target when nothing is
 * defined, release_target when nothing is held); the source's vGPUs are
 * released only after the VM runs on the target. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domxml/domxml.h"
#include "util/error.h"

#define VGM_COLD_DEFAULT_SHUTDOWN_MS 120000

typedef struct vgm_cold_ops {
	/* Both ends fit (versions, profiles) and the target reaches every disk. */
	int (*check)(void *ud, vgm_error *err);
	/* The source's persistent (inactive) domain XML as check read it; NULL
	 * when the domain is transient. */
	const char *(*source_xml)(void *ud);
	/* Claim the VM's vGPUs on the target; *map stays valid until the job ends. */
	int (*claim)(void *ud, const vgm_idmap **map, size_t *n_map, vgm_error *err);
	/* Ask the guest to shut down; 0 once off, -ETIMEDOUT if it still runs. */
	int (*shutdown)(void *ud, uint64_t timeout_ms, vgm_error *err);
	int (*destroy)(void *ud, vgm_error *err);
	int (*define_target)(void *ud, const char *xml, vgm_error *err);
	int (*start_target)(void *ud, vgm_error *err);
	int (*commit_target)(void *ud, vgm_error *err);
	/* Undefine the VM here and release its vGPUs. */
	int (*release_source)(void *ud, vgm_error *err);
	/* ---- undo ---- */
	int (*undefine_target)(void *ud, vgm_error *err); /* stops it first if it runs */
	int (*start_source)(void *ud, vgm_error *err);
	int (*release_target)(void *ud, vgm_error *err);
	/* Durable record of a phase before it acts; may be NULL. */
	void (*record)(void *ud, const char *phase, const char *outcome, const char *detail);
} vgm_cold_ops;

typedef struct vgm_cold_opts {
	uint64_t shutdown_timeout_ms; /* 0: VGM_COLD_DEFAULT_SHUTDOWN_MS */
	bool force;                   /* destroy after the timeout instead of giving up */
} vgm_cold_opts;

typedef struct vgm_cold_result {
	const char *phase;   /* the last phase entered (static string) */
	bool moved;          /* the VM runs on the target */
	bool rolled_back;    /* a failure was undone; the VM runs on the source */
	bool rollback_failed; /* an undo step failed too: see err's message */
	char warnings[512];  /* failures after the point of no return, "" if none */
} vgm_cold_result;

/* Run the job.  0 when the VM runs on the target (warnings possible);
 * otherwise -errno with err naming the failed step and, when the undo
 * failed as well, what is left to fix by hand. */
int vgm_cold_run(const vgm_cold_ops *ops, void *ud, const vgm_cold_opts *o, vgm_cold_result *res,
		 vgm_error *err);
