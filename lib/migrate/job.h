/* job.h: one live migration as a durable job, run by the SOURCE host.
 *
 * The job is the order of the steps and what undoes them; everything it
 * touches is an operation in vgm_job_ops (the target's agent, libvirt on both
 * hosts, this host's store and journal, the clock), so unit tests can fail
 * every step and check the rollback without libvirt.  Modelled on libvirt's
 * qemu_migration.c phases and on lib/store's devops.
 *
 * Phases, each recorded (ops->record, the store's jobs table) BEFORE it acts:
 *
 *   inspecting -> checking -> claiming -> rewriting -> planning -> migrating
 *     -> committing -> releasing -> done(succeeded)
 *   migrating fails -> deciding -> (where does the VM run?)
 *        target  -> committing -> releasing -> done(succeeded)
 *        source, nowhere -> releasing_target -> done(failed | aborted)
 *        unknown -> stays "deciding"; resumed later, the claim is kept
 *   any failure before migrating (libvirt never called) -> releasing_target
 *   dry run: planning -> releasing_target -> done(succeeded)
 *
 * Invariants:
 *   - an error from libvirt is ambiguous: after the migrate call the target's
 *     claim is released only once `where` says the VM runs on the source (or
 *     nowhere), committed only once it runs on the target;
 *   - a decision is recorded before it is carried out, so a restart repeats
 *     the same decision (commit and release are idempotent on the target)
 *     and never the other one: commit or release happens exactly once;
 *   - vgm_job_resume() continues a job from its recorded phase; the libvirt
 *     migration is never started twice (a resumed "migrating" job only
 *     monitors what libvirt still runs, or decides from where the VM is);
 *   - the controller's config is built in one place, vgm_job_ctl_config(),
 *     from the operator's limits carried unchanged as vgm_limit. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "util/error.h"
#include "util/limit.h"

#define VGM_JOB_ID_MAX 128

typedef struct vgm_job vgm_job;

/* Where the domain runs, asked of both libvirts. */
typedef enum vgm_job_where {
	VGM_WHERE_UNKNOWN = 0, /* a libvirt that matters could not be asked */
	VGM_WHERE_MOVING,      /* the source still runs the outgoing migration job */
	VGM_WHERE_SOURCE,      /* runs on the source, no migration job */
	VGM_WHERE_TARGET,      /* runs on the target after the switchover */
	VGM_WHERE_NOWHERE,     /* runs on neither (crashed, shut off) */
} vgm_job_where;

const char *vgm_job_where_to_string(vgm_job_where w);

/* What the source domain looks like in one libvirt. */
typedef enum vgm_lv_presence {
	VGM_LV_UNREACHABLE = 0, /* libvirt could not be asked */
	VGM_LV_ABSENT,          /* no such domain */
	VGM_LV_STOPPED,         /* defined, not running (incl. shut off by a migration) */
	VGM_LV_RUNNING,         /* running (or paused by a user), no job */
	VGM_LV_MIGRATING,       /* running with a migration job in progress */
	VGM_LV_INCOMING,        /* paused for an incoming migration (not switched over) */
} vgm_lv_presence;

/* The one rule from the two views to an answer (pure; see job.c). */
vgm_job_where vgm_job_where_combine(vgm_lv_presence source, vgm_lv_presence target);

/* What the job asked for; strings are copied. */
typedef struct vgm_job_params {
	const char *id;     /* migration id, 1..128 chars */
	const char *domain; /* name or UUID */
	const char *to;     /* the target host */
	vgm_limit max_downtime_ms, bandwidth_bps, timeout_ms;
	bool dry_run, force;
} vgm_job_params;

/* The domain, as inspect found it (owned by the job). */
typedef struct vgm_job_domain {
	char *name;
	char uuid[40];
	uint64_t memory_bytes;
	char *xml_live;        /* migratable XML */
	char *xml_persistent;  /* NULL when transient */
	size_t n_vgpus;
	uint64_t vgpu_state_bytes; /* framebuffers; pre-copied or not is decided in flight */
	vgm_limit link_bps;        /* measured by earlier migrations to this peer */
	vgm_limit dirty_rate_bps;  /* the guest's recently measured dirty rate */
} vgm_job_domain;

/* The target's claim: its id and the id map {source -> target}. */
typedef struct vgm_job_claim {
	char *claim_id;
	char **source_ids, **target_ids;
	size_t n;
} vgm_job_claim;

void vgm_job_claim_clear(vgm_job_claim *c);

typedef struct vgm_job_ops {
	/* libvirt here: fill the domain (strings malloc'd; the job frees them). */
	int (*inspect)(void *ctx, vgm_job *j, vgm_job_domain *out, vgm_error *err);
	/* target agent: host facts, types and every compatibility check */
	int (*peer_check)(void *ctx, vgm_job *j, vgm_error *err);
	int (*peer_claim)(void *ctx, vgm_job *j, vgm_job_claim *out, vgm_error *err);
	int (*peer_commit)(void *ctx, vgm_job *j, const char *claim_id, vgm_error *err);
	int (*peer_release)(void *ctx, vgm_job *j, const char *claim_id, vgm_error *err);
	/* the plan and its verdict against the limits (no side effect) */
	int (*plan)(void *ctx, vgm_job *j, vgm_verdict *v, vgm_error *err);
	/* libvirt: start the migration and watch it to its end (0: succeeded) */
	int (*migrate)(void *ctx, vgm_job *j, const char *live_xml, const char *persist_xml,
		       const vgm_ctl_config *ctl, vgm_error *err);
	/* libvirt: watch an outgoing migration already running (after a
	 * restart), applying the controller, until it ends */
	int (*monitor)(void *ctx, vgm_job *j, const vgm_ctl_config *ctl, vgm_error *err);
	/* both libvirts: where the domain (j's uuid) runs now */
	vgm_job_where (*where)(void *ctx, vgm_job *j);
	/* this host: free the domain's vGPU assignments (after it left) */
	int (*release_source)(void *ctx, vgm_job *j, vgm_error *err);
	/* store: the job enters phase (durable before it returns); the job
	 * stops when this fails, as it could not be resumed */
	int (*record)(void *ctx, vgm_job *j, const char *phase, vgm_error *err);
	/* store: the end (state succeeded | failed | aborted) */
	void (*finish)(void *ctx, vgm_job *j, const char *state, const vgm_error *why);
	/* journal: what happened, for the operator */
	void (*journal)(void *ctx, vgm_job *j, const char *step, const char *outcome,
			const char *detail);
	/* forward an abort to a running migrate/monitor (may be NULL) */
	void (*abort)(void *ctx, vgm_job *j, const char *reason);
	void (*sleep_ms)(void *ctx, unsigned ms); /* NULL: nanosleep */
	void *ctx;
} vgm_job_ops;

/* A new job (phase "queued"). */
int vgm_job_new(const vgm_job_params *p, const vgm_job_ops *ops, vgm_job **out, vgm_error *err);
/* A job found in the store: continue from phase; domain_uuid and claim_id as
 * recorded (either may be NULL). */
int vgm_job_new_resumed(const vgm_job_params *p, const char *phase, const char *domain_uuid,
			const char *claim_id, const vgm_job_ops *ops, vgm_job **out,
			vgm_error *err);
void vgm_job_free(vgm_job *j);
DEFINE_FREEP(vgm_job, vgm_job_free)

/* Run (or resume) to the end.  0: succeeded; otherwise -errno with err.
 * -EINPROGRESS (reason "outcome_unknown"): where the VM runs could not be
 * learnt; the job stays in phase "deciding" for the next resume. */
int vgm_job_run(vgm_job *j, vgm_error *err);

/* Thread-safe: stop at the next step; a running migration is aborted
 * through ops->abort.  The first reason wins. */
void vgm_job_request_abort(vgm_job *j, const char *reason);
bool vgm_job_abort_requested(vgm_job *j, char *why, size_t n);

/* Accessors (the strings live as long as the job). */
const char *vgm_job_id(const vgm_job *j);
const char *vgm_job_domain_name(const vgm_job *j); /* the request's, or the inspected name */
const char *vgm_job_domain_uuid(const vgm_job *j); /* "" until known */
const char *vgm_job_to(const vgm_job *j);
const char *vgm_job_claim_id(const vgm_job *j);    /* NULL until claimed */
const char *vgm_job_phase(const vgm_job *j);       /* thread-safe snapshot not needed: static */
const vgm_job_params *vgm_job_get_params(const vgm_job *j);
const vgm_job_domain *vgm_job_get_domain(const vgm_job *j);
const vgm_job_claim *vgm_job_get_claim(const vgm_job *j);

/* The controller's config from the job's limits and the domain: the one
 * place where limits become controller settings. */
void vgm_job_ctl_config(const vgm_job *j, vgm_ctl_config *out);
