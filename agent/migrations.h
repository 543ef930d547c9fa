/* migrations.h: what the agent's migration files share (jobs.c, job-ops.c,
 * plan.c, route-migrate.c): the job manager hanging off `agent`, the record
 * each migration shows to `vgpumig status`, and the configuration snapshot
 * a job works from.
 *
 * The steps themselves are lib/migrate/job.c; this side only supplies the
 * operations (job-ops.c), owns the worker threads and keeps what the
 * operator sees.  Invariants: agent_jobs.lock guards the registry, every
 * mutable field of a record and the measured-link caches; a record is freed
 * only after its worker has been joined; agent_jobs_stop() aborts every job
 * and joins every worker before the store and the config are freed. */
#pragma once

#include <pthread.h>

#include "api/wire.h"
#include "domxml/domxml.h"
#include "util/validate.h"
#include "migrate/job.h"
#include "migrate/migrate.h"
#include "routes.h"

#define MIG_PHASES_MAX 24

/* One migration as `vgpumig status` shows it. */
typedef struct mig {
	struct mig *next;
	char id[VGM_UUID_LEN + 1];
	char *domain;
	char domain_uuid[40];
	char *to;
	vgm_limit max_downtime_ms, bandwidth_bps, timeout_ms;
	bool dry_run, force, resumed;
	const char *phase; /* static strings */
	const char *state; /* running | succeeded | failed | aborted */
	int64_t created_ns, call_ns, finished_ns;
	vgm_job_sample last;
	bool have_sample;
	double eta_s, expected_downtime_s;
	json_t *plan;
	json_t *claim;
	vgm_migration_summary sum;
	bool have_sum;
	char err_code[48];
	char err_msg[512];
	vgm_migration *handle; /* non-NULL while libvirt's migration runs or is watched */
	bool finished;         /* the worker is done with the record */
	uint64_t vgpu_bytes;
	size_t n_vgpus;
	const char *phase_names[MIG_PHASES_MAX]; /* when each phase began, ms after created */
	double phase_ms[MIG_PHASES_MAX];
	size_t n_phases;
	/* the worker */
	vgm_job *job;
	struct job_ctx *ctx; /* freed with the record: an abort may still reach it */
	pthread_t thread;
	bool has_thread;
} mig;

typedef struct link_cache {
	char name[VGM_WIRE_MAX_ID + 1];
	double link_bps; /* 0: unknown */
	double setup_s;  /* 0: unknown; EWMA of the overhead outside pre-copy and pause */
} link_cache;

typedef struct dirty_cache {
	char uuid[40];
	double bps;
	int64_t at;
} dirty_cache;

/* The job manager: one per agent. */
typedef struct agent_jobs {
	pthread_mutex_t lock;
	mig *head;           /* newest first */
	bool stopping;       /* no new job once set */
	link_cache links[16];
	dirty_cache dirties[32];
} agent_jobs;

/* ---- configuration snapshot (copied under a->lock) ---- */

typedef struct mig_cfg {
	char *libvirt_uri, *host_name, *tls_cert, *tls_key, *tls_ca;
	char *peer_name, *peer_address, *peer_libvirt_uri;
	bool lab_mode;
	bool migration_tls; /* false only where the config says clear text explicitly */
} mig_cfg;

int mig_cfg_get(agent *a, const char *to, mig_cfg *c, vgm_error *err);
void mig_cfg_clear(mig_cfg *c);

/* ---- the domain as this host sees it (job-ops.c) ---- */

typedef struct prep {
	virConnectPtr conn;
	virDomainPtr dom;
	vgm_lv_domain *lvd;
	vgm_domain_info *info;
	struct agent_vgpu *v;
	size_t n;
	uint64_t vgpu_state_bytes;    /* what QEMU will move at switchover */
	uint64_t vgpu_declared_bytes; /* framebuffer of every vGPU (lab ones too) */
	bool lab_vgpus;
} prep;

int prep_domain(agent *a, const mig_cfg *c, const char *domain, prep *p, vgm_error *err);
void prep_clear(prep *p);

/* ---- plan (plan.c) ---- */

typedef struct plan_req {
	const char *peer;
	vgm_limit max_downtime_ms, bandwidth_bps, timeout_ms;
	bool measure; /* measure the dirty rate now (1 s) unless a fresh figure exists */
} plan_req;

int make_plan(agent *a, prep *p, const plan_req *q, json_t **out, vgm_verdict *v, vgm_plan *pl,
	      vgm_error *err);
/* After a success: what the link did (0: keep what is known). */
void jobs_remember_link(agent *a, const char *peer, double link_bps, double setup_s);
/* What earlier migrations measured: the link to a peer (link_bps 0: not
 * known) and a domain's recent dirty rate (false: none fresh). */
link_cache jobs_cached_link(agent_jobs *m, const char *peer);
bool jobs_cached_dirty(agent_jobs *m, const char *uuid, double *bps);

/* POST /v1/plan and /v1/migrations: decode the body, refuse this host as
 * the target, snapshot the config for the peer.  Replies itself on error
 * (returns <= 0 then); 1 when *q and *c are set (clear c). */
int mig_request_begin(agent_request *req, vgm_wire_migration_req **q, mig_cfg *c);

/* ---- the manager (jobs.c) ---- */

int64_t mig_now_ns(void);
int agent_jobs_new(agent_jobs **out);
/* Abort every running job and join every worker; then free. */
void agent_jobs_stop(agent_jobs *m);
/* Start a migration; *id (VGM_UUID_LEN + 1) gets its id. */
int agent_jobs_start(agent *a, const vgm_wire_migration_req *q, char *id, vgm_error *err);
/* Resume the jobs the store says are still running and no worker runs. */
void agent_jobs_resume(agent *a);
void mig_set_phase(agent_jobs *m, mig *r, const char *phase);

/* ---- operations for lib/migrate/job.c (job-ops.c) ---- */

typedef struct job_ctx job_ctx;
/* A worker's context: ops bound to record r of agent a. */
int job_ctx_new(agent *a, mig *r, job_ctx **out, vgm_error *err);
void job_ctx_free(job_ctx *c);
/* The worker is done: close connections, keep what an abort touches. */
void job_ctx_release(job_ctx *c);
vgm_job_ops job_ctx_ops(job_ctx *c);
