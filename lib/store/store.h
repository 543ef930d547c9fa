/* store.h: the host agent's durable state and its vGPU claims engine.
 *
 * One vgm_store per agent, opened on state_dir/vgpumig.db (SQLite, WAL,
 * synchronous=FULL, foreign keys on).  Every function is safe to call from
 * several threads at once: calls are serialised on one connection by a mutex,
 * so a claim decision (choose devices + record them) is never interleaved with
 * another.  Sysfs writes are made with the mutex released (creates by the
 * claiming thread, removals on threads of their own with a deadline), so a
 * slow or blocked write stalls no other call.  Every call that changes state
 * has committed it to disk before it returns, so an API reply built from its
 * result is already durable.  The
 * store takes an exclusive lock on state_dir/vgpumig.lock: one agent per
 * state dir.
 *
 * The claims engine decides which vGPU on this host an incoming migration gets:
 *   1. the source's own id when it exists here, is free and has the same
 *      profile (the XML then needs no change);
 *   2. else an existing, unowned instance of the same profile name (and
 *      framebuffer);
 *   3. else a new instance on a parent that can hold it (homogeneous rule;
 *      GPUs already hosting the profile first, then the emptiest), created
 *      with the source's UUID when that UUID is free (mdev backend).
 * Matching is by profile NAME and framebuffer, never by the numeric type id.
 * A request for N devices is all or nothing.  See docs/state.md.
 *
 * Errors: functions return -errno and fill vgm_error with a stable reason:
 *   no_capacity (ENOSPC)      no free or creatable vGPU of a profile
 *   unknown_profile (ENODEV)  no parent on this host offers the profile
 *   invalid_id (EINVAL)       a malformed UUID / PCI address / migration id
 *   invalid_request (EINVAL)  missing fields, no devices, duplicate source ids
 *   conflict (EEXIST)         same migration_id, different request
 *   not_found (ENOENT)        no such claim
 *   claim_finished (ESTALE)   the claim was released or expired
 *   store_error (EIO)         SQLite failed (message names the statement, and for a
 *                             full disk or an I/O error what to do)
 *   claim_in_progress (EBUSY) the claim's devices are being created right now
 *   state_locked (EBUSY)      another agent holds state_dir
 *   device errors pass through with the device layer's reason. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/device.h"
#include "util/error.h"
#include "util/limit.h"

typedef struct vgm_store vgm_store;

/* A device some domain on this host uses (from libvirt): never handed out. */
typedef struct vgm_device_use {
	char *device_id;   /* mdev UUID or VF PCI address, lowercase */
	char *domain_uuid; /* the domain using it, may be NULL */
} vgm_device_use;

/* The device layer the engine calls.  NULL fields in vgm_store_opts.devops
 * mean lib/device (vgm_inventory_load, vgm_device_create, vgm_device_remove);
 * tests plug a double in here. */
typedef struct vgm_store_devops {
	int (*inventory_load)(void *ctx, vgm_host *h, vgm_inventory **out, vgm_error *err);
	void (*inventory_free)(void *ctx, vgm_inventory *inv);
	int (*create)(void *ctx, vgm_host *h, const char *parent, const char *type_id,
		      const char *uuid, char **out_id, vgm_error *err);
	int (*remove)(void *ctx, vgm_host *h, const char *id, vgm_error *err);
	void *ctx;
	/* The cheap reads that keep the cached inventory current (invcache.c):
	 * vgm_inventory_load_instances and vgm_inventory_load_parent.  NULL with
	 * lib/device's inventory_load: those; NULL with another inventory_load:
	 * every refresh is a full inventory_load. */
	int (*instances_load)(void *ctx, vgm_host *h, const vgm_inventory *known,
			      vgm_instance **out, size_t *n, vgm_error *err);
	int (*parent_load)(void *ctx, vgm_host *h, const char *address, vgm_parent *out,
			   vgm_error *err);
} vgm_store_devops;

typedef struct vgm_store_opts {
	const char *host_name;      /* used in messages; NULL: gethostname() */
	bool remove_released;       /* assignment release removes devices we created (default
				       when opts is NULL: true) */
	int64_t retention_seconds;  /* finished claims and journal rows older than this are
				       pruned by reconcile; 0: 7 days */
	/* Wall clock, seconds since the epoch; NULL: time(NULL).  Read once, at
	 * open: the store's time is that plus the monotonic time since, so a
	 * wall-clock step while the agent runs neither expires nor prolongs a
	 * lease.  Tests inject both clocks (same ctx). */
	int64_t (*clock)(void *ctx);
	int64_t (*monotonic_ms)(void *ctx); /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
	/* Devices used by domains on this host (the agent asks libvirt about
	 * every domain, running and defined).  NULL: nothing outside the store
	 * is in use.  An error means "cannot tell": the store then removes no
	 * device and hands out no existing instance.  *out is freed with
	 * vgm_device_uses_free. */
	int (*in_use)(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err);
	void *in_use_ctx;
	const vgm_store_devops *devops; /* NULL: lib/device */
	/* The engine reuses its last sysfs inventory (patched with its own
	 * creations and removals) for this long; changes made behind the
	 * agent's back are seen after it.  0: 2000 ms; < 0: read sysfs for every
	 * decision.  Reconcile always reads sysfs. */
	int64_t inventory_ttl_ms;
	/* How long a release or reconcile waits for a sysfs removal before it
	 * reports it blocked and goes on (the write goes on too, on its own
	 * thread, and its end is collected later).  0: 1000 ms. */
	int64_t remove_deadline_ms;
} vgm_store_opts;

void vgm_device_uses_free(vgm_device_use *u, size_t n);

/* Open (creating state_dir/vgpumig.db when missing, upgrading its schema).
 * opts may be NULL.  The store keeps no pointer to opts but does keep the
 * function pointers and contexts in it. */
int vgm_store_open(const char *state_dir, const vgm_store_opts *opts, vgm_store **out,
		   vgm_error *err);
void vgm_store_close(vgm_store *s);
DEFINE_FREEP(vgm_store, vgm_store_close)

/* Schema version of an open store (PRAGMA user_version). */
int vgm_store_schema_version(vgm_store *s);
#define VGM_STORE_SCHEMA_VERSION 3

/* ---- claims ---- */

typedef enum vgm_claim_state {
	VGM_CLAIM_PENDING = 0, /* being made (only seen after a crash; reconcile deletes it) */
	VGM_CLAIM_HELD,
	VGM_CLAIM_COMMITTED,
	VGM_CLAIM_RELEASED,
	VGM_CLAIM_EXPIRED,
} vgm_claim_state;

const char *vgm_claim_state_to_string(vgm_claim_state st); /* "held", ... */

typedef struct vgm_claim_device_req {
	const char *source_id;     /* mdev UUID or VF PCI address on the source */
	vgm_backend kind;
	const char *profile_name;  /* "NVIDIA A100-4C" */
	uint64_t framebuffer_bytes; /* 0: unknown, any framebuffer matches */
	const char *type_id;       /* source's type id: informational only */
} vgm_claim_device_req;

typedef struct vgm_claim_request {
	const char *migration_id;  /* 1..128 chars of [A-Za-z0-9_.:-] */
	const char *domain_uuid;
	const char *domain_name;
	const char *source_host;
	const vgm_claim_device_req *devices;
	size_t n_devices;          /* 1..VGM_CLAIM_MAX_DEVICES */
	int64_t lease_seconds;     /* <= 0: 300 */
	const char *requested_by;  /* who asked, for the journal ("peer host-a", "uid 0");
				      NULL: "agent" */
} vgm_claim_request;

#define VGM_CLAIM_MAX_DEVICES 64

typedef struct vgm_claim_device {
	char *source_id;
	char *target_id;    /* the device on this host */
	vgm_backend kind;
	char *profile_name;
	uint64_t framebuffer_bytes;
	char *type_id;      /* type id on THIS host */
	bool created;       /* created for this claim (removed again on release) */
} vgm_claim_device;

typedef struct vgm_claim {
	char *claim_id;     /* UUID */
	char *migration_id;
	char *domain_uuid;
	char *domain_name;
	char *source_host;
	vgm_claim_state state;
	int64_t created_at;
	int64_t expires_at; /* 0 when committed or finished */
	int64_t updated_at;
	bool in_flight;     /* held, and the domain's QEMU started here (incoming) */
	vgm_claim_device *devices;
	size_t n_devices;
} vgm_claim;

void vgm_claim_free(vgm_claim *c);
void vgm_claims_free(vgm_claim *c, size_t n); /* an array from vgm_claims_list */
DEFINE_FREEP(vgm_claim, vgm_claim_free)

/* Claim devices for a migration.  The same request again (same migration_id,
 * same body) returns the same claim; a different body is "conflict".  On
 * success the claim is durable and held until expires_at. */
int vgm_claims_claim(vgm_store *s, vgm_host *h, const vgm_claim_request *req, vgm_claim **out,
		     vgm_error *err);
/* Held -> committed: its devices become assignments to the domain.
 * Idempotent; a released or expired claim is "claim_finished".  A held claim
 * past its lease that reconcile has not yet expired still commits. */
int vgm_claims_commit(vgm_store *s, vgm_host *h, const char *claim_id, vgm_error *err);
/* Held -> released, removing the devices created for it outside the store
 * lock (a device a domain uses, one in_use cannot vouch for, one that cannot
 * be removed now or whose removal blocks is kept and retried by reconcile).
 * A claim still being created is "claim_in_progress" (EBUSY).  Idempotent: releasing
 * a released or expired claim returns 0.  Releasing a committed claim frees
 * its assignments (as vgm_assignment_release_domain does for them). */
int vgm_claims_release(vgm_store *s, vgm_host *h, const char *claim_id, vgm_error *err);
/* Held -> in flight: the domain's QEMU started here for the incoming
 * migration (libvirt's "started begin" on the target), the switchover has not
 * been seen to succeed yet.  The claim stays held (its lease still runs, a
 * release still undoes it); only commit makes it an assignment.  Idempotent;
 * a committed claim is left as it is; a released or expired one is
 * "claim_finished". */
int vgm_claims_mark_in_flight(vgm_store *s, const char *claim_id, vgm_error *err);
/* The claim's true stage: "held", "in_flight", "committed", "released", ... */
const char *vgm_claim_stage(const vgm_claim *c);
int vgm_claims_get(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err);

/* Who changes a claim, and what they may do.  The journal row of the change
 * names actor.  With owner set, a claim whose source_host differs is
 * "not_found" (a peer neither sees nor touches another's claims); with
 * keep_committed, releasing a committed claim is refused with
 * "claim_committed" (EBUSY): a running domain uses its devices, and only
 * this host's agent, after asking libvirt, ends an assignment.  Checked
 * under the store lock, so no state change slips in between. */
typedef struct vgm_claim_caller {
	const char *actor;   /* NULL: "agent" */
	const char *owner;   /* NULL: any claim */
	bool keep_committed;
} vgm_claim_caller;

/* vgm_claims_commit / vgm_claims_release on behalf of who (NULL: the agent
 * itself, no restriction). */
int vgm_claims_commit_as(vgm_store *s, vgm_host *h, const char *claim_id,
			 const vgm_claim_caller *who, vgm_error *err);
int vgm_claims_release_as(vgm_store *s, vgm_host *h, const char *claim_id,
			  const vgm_claim_caller *who, vgm_error *err);
/* Claims, newest first; finished ones (released, expired) only if all. */
int vgm_claims_list(vgm_store *s, bool all, vgm_claim **out, size_t *n, vgm_error *err);
/* The newest held claim for a domain (hook path); -ENOENT when none. */
int vgm_claims_find_by_domain(vgm_store *s, const char *domain_uuid, vgm_claim **out,
			      vgm_error *err);

/* ---- the cached inventory (invcache.c) ---- */

/* A copy of the engine's inventory, kept current as described in
 * invcache.c (no full sysfs read once the store has one): for the agent's
 * other readers (check, host view, libvirt pass), so no request waits for a
 * full scan.  Free with vgm_inventory_free. */
int vgm_store_inventory_copy(vgm_store *s, vgm_host *h, vgm_inventory **out, vgm_error *err);
/* The same as a vgm_inventory_source: vgm_host_set_inventory_source(h,
 * vgm_store_inventory_source, store) makes vgm_inventory_load(h) answer from
 * the store's copy (the store must outlive that setting). */
int vgm_store_inventory_source(void *store, vgm_host *h, vgm_inventory **out, vgm_error *err);
/* The slow safety net: read the next max_parents parents again (round
 * robin, sysfs read without the store lock) and swap them in unless the
 * cache changed meanwhile (then the next call tries again).  A no-op before
 * the first full read.  *refreshed (optional): parents swapped in. */
int vgm_store_inventory_refresh(vgm_store *s, vgm_host *h, size_t max_parents, size_t *refreshed);

/* ---- capacity (capacity.c) ---- */

/* What a claim of one profile could get on this host now, counted by the
 * claims engine's own rules (per-GPU max_instance, one vGPU per VF,
 * NVIDIA's homogeneous rule; devices owned by live claims, assignments or
 * referenced by any domain libvirt knows, running or not, are taken). */
typedef struct vgm_profile_capacity {
	vgm_backend kind;
	char *profile_name;
	uint64_t framebuffer_bytes;
	unsigned available;     /* free_existing + creatable: a claim of this many succeeds */
	unsigned free_existing; /* existing instances nobody owns or uses */
	unsigned creatable;     /* new instances the GPUs have room for */
	unsigned held;          /* existing instances owned or used */
} vgm_profile_capacity;

/* One entry per (backend, profile name, framebuffer) the host offers, in
 * inventory order.  Each count is for that profile alone: profiles sharing a
 * GPU compete for it (homogeneous rule). */
int vgm_store_capacity(vgm_store *s, vgm_host *h, vgm_profile_capacity **out, size_t *n,
		       vgm_error *err);
void vgm_profile_capacity_free(vgm_profile_capacity *c, size_t n);

/* ---- assignments (devices handed to a domain by a committed claim) ---- */

typedef struct vgm_assignment {
	char *device_id;
	char *domain_uuid;
	char *domain_name;
	int64_t since;
	char *from_claim; /* may be NULL */
} vgm_assignment;

int vgm_assignments_list(vgm_store *s, vgm_assignment **out, size_t *n, vgm_error *err);
void vgm_assignments_free(vgm_assignment *a, size_t n);
/* Free a domain's assignments (source side after a successful migration, or
 * the domain is gone); devices we created are removed when remove_released.
 * *n_released (optional) = assignments freed.  No assignment is not an error. */
int vgm_assignment_release_domain(vgm_store *s, vgm_host *h, const char *domain_uuid,
				  size_t *n_released, vgm_error *err);

/* ---- reconcile ---- */

typedef struct vgm_reconcile_report {
	size_t expired;          /* held claims past their lease, now expired */
	size_t auto_committed;   /* past lease but the domain runs on them: committed */
	size_t pending_dropped;  /* half-made claims (crash) deleted */
	size_t removed;          /* devices removed from sysfs */
	size_t remove_failed;    /* removals that failed (retried next time) */
	size_t remove_blocked;   /* removals still running past the deadline */
	size_t remove_kept;      /* unowned devices kept: a domain uses them, or
				    in_use could not tell (retried next time) */
	size_t dropped_created;  /* devices_created rows whose device vanished */
	size_t dropped_owned;    /* claims/assignments whose device vanished */
	size_t pruned;           /* old finished claims and journal rows deleted */
	char **actions;          /* one human-readable line per action */
	size_t n_actions;
} vgm_reconcile_report;

void vgm_reconcile_report_clear(vgm_reconcile_report *r);

/* Compare the store with sysfs and repair: see docs/state.md.  Devices in
 * sysfs that this agent did not create are never touched; removals run
 * outside the store lock, never on a device in_use names or when in_use
 * fails (lib/store/removal.c). */
int vgm_reconcile(vgm_store *s, vgm_host *h, vgm_reconcile_report *report, vgm_error *err);

/* ---- journal ---- */

typedef struct vgm_journal_entry {
	int64_t id;
	int64_t time;
	char *migration_id; /* may be NULL */
	char *domain;       /* may be NULL */
	char *step;
	char *outcome;      /* "ok", "failed", ... */
	char *detail;       /* may be NULL */
} vgm_journal_entry;

int vgm_journal_append(vgm_store *s, const char *migration_id, const char *domain,
		       const char *step, const char *outcome, const char *detail, vgm_error *err);
/* Newest first; migration_id NULL: all; limit 0: 100. */
int vgm_journal_list(vgm_store *s, const char *migration_id, size_t limit,
		     vgm_journal_entry **out, size_t *n, vgm_error *err);
void vgm_journal_free(vgm_journal_entry *e, size_t n);

/* ---- migration jobs (lib/migrate/job.c records its phases here) ---- */

typedef struct vgm_job_row {
	char *job_id;         /* the migration id */
	char *domain;         /* as the operator named it */
	char *domain_uuid;    /* NULL until inspected */
	char *to_host;
	char *phase;          /* the phase the job entered last (recorded before it acts) */
	char *state;          /* running | succeeded | failed | aborted */
	char *claim_id;       /* the target's claim, NULL until claimed */
	vgm_limit max_downtime_ms, bandwidth_bps, timeout_ms;
	bool dry_run, force;
	int64_t created_at, updated_at;
	char *error_code, *error_message; /* NULL unless failed or aborted */
} vgm_job_row;

void vgm_job_rows_free(vgm_job_row *rows, size_t n);
/* A new running job (state and phase from the row; error ignored). */
int vgm_jobs_insert(vgm_store *s, const vgm_job_row *row, vgm_error *err);
/* Enter a phase; domain_uuid / claim_id NULL keep what is recorded. */
int vgm_jobs_set_phase(vgm_store *s, const char *job_id, const char *phase,
		       const char *domain_uuid, const char *claim_id, vgm_error *err);
/* The end: state succeeded | failed | aborted; code/message may be NULL. */
int vgm_jobs_finish(vgm_store *s, const char *job_id, const char *state, const char *code,
		    const char *message, vgm_error *err);
/* Newest first; only running ones when unfinished; limit 0: 100. */
int vgm_jobs_list(vgm_store *s, bool unfinished, size_t limit, vgm_job_row **out, size_t *n,
		  vgm_error *err);

/* ---- host settings ---- */

/* Cordon: a cordoned host refuses new incoming claims ("host_cordoned"),
 * whichever path asks (API or hook); claims already made are kept.  reason
 * may be NULL.  Survives restarts. */
int vgm_host_cordon_set(vgm_store *s, bool cordoned, const char *reason, vgm_error *err);
/* *reason (optional) is malloc'd, NULL when not cordoned or none given. */
int vgm_host_cordon_get(vgm_store *s, bool *cordoned, char **reason, vgm_error *err);

/* ---- metrics ---- */

typedef struct vgm_store_counts {
	size_t claims[VGM_CLAIM_EXPIRED + 1]; /* by vgm_claim_state */
	size_t assignments;
	size_t devices_created;
	size_t owned_devices; /* devices held by a live claim or an assignment */
} vgm_store_counts;

int vgm_store_counts_get(vgm_store *s, vgm_store_counts *out, vgm_error *err);
