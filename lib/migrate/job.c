/* job.c: the migration job's steps, rollbacks and resume (see job.h).
 *
 * One thread runs a job (vgm_job_run); other threads may only request an
 * abort and read the phase, both under j->lock.  The job never calls
 * libvirt, the network or the store itself: every effect is an op, and each
 * phase is recorded before its first effect, so the recorded phase always
 * names the furthest effect that may have happened. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "domxml/domxml.h"
#include "job.h"

#define WHERE_TRIES 20          /* asking both libvirts: tries ... */
#define WHERE_RETRY_MS 500      /* ... this far apart (10 s in all) */

struct vgm_job {
	char *id, *domain, *to;
	vgm_job_params p; /* strings point at the copies above */
	vgm_job_ops ops;
	vgm_job_domain dom;
	vgm_job_claim claim;
	bool resumed;
	pthread_mutex_t lock; /* phase, abort */
	const char *phase;    /* static strings */
	bool abort_requested;
	char abort_reason[256];
};

static const char *const where_names[] = {
	[VGM_WHERE_UNKNOWN] = "unknown", [VGM_WHERE_MOVING] = "moving",
	[VGM_WHERE_SOURCE] = "source",   [VGM_WHERE_TARGET] = "target",
	[VGM_WHERE_NOWHERE] = "nowhere",
};

const char *vgm_job_where_to_string(vgm_job_where w)
{
	return (unsigned)w < ARRAY_SIZE(where_names) ? where_names[w] : "unknown";
}

/* A QEMU that runs on the target (not paused waiting for the stream) has
 * switched over: the source ended its side first, so the target alone is
 * proof.  The source alone is proof the other way only without a job: a
 * running source after a finished migration means the migration failed. */
vgm_job_where vgm_job_where_combine(vgm_lv_presence src, vgm_lv_presence tgt)
{
	if (tgt == VGM_LV_RUNNING || tgt == VGM_LV_MIGRATING)
		return VGM_WHERE_TARGET;
	if (src == VGM_LV_MIGRATING)
		return VGM_WHERE_MOVING;
	if (src == VGM_LV_RUNNING)
		return VGM_WHERE_SOURCE;
	if (src == VGM_LV_UNREACHABLE || tgt == VGM_LV_UNREACHABLE || tgt == VGM_LV_INCOMING)
		return VGM_WHERE_UNKNOWN; /* an incoming QEMU may still resume */
	return VGM_WHERE_NOWHERE;
}

void vgm_job_claim_clear(vgm_job_claim *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->source_ids ? c->source_ids[i] : NULL);
		free(c->target_ids ? c->target_ids[i] : NULL);
	}
	free(c->source_ids);
	free(c->target_ids);
	free(c->claim_id);
	memset(c, 0, sizeof(*c));
}

static void domain_clear(vgm_job_domain *d)
{
	free(d->name);
	free(d->xml_live);
	free(d->xml_persistent);
	memset(d, 0, sizeof(*d));
}

/* ---- life ---- */

static int job_alloc(const vgm_job_params *p, const vgm_job_ops *ops, vgm_job **out,
		     vgm_error *err)
{
	if (!p->id || !p->id[0] || strlen(p->id) > VGM_JOB_ID_MAX || !p->domain || !p->domain[0] ||
	    !p->to || !p->to[0])
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "a migration job needs an id (1..%d chars), a domain and a target",
				      VGM_JOB_ID_MAX);
	_cleanup_(vgm_job_freep) vgm_job *j = calloc(1, sizeof(*j));
	if (!j)
		return vgm_error_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&j->lock, NULL);
	j->p = *p;
	j->ops = *ops;
	j->id = strdup(p->id);
	j->domain = strdup(p->domain);
	j->to = strdup(p->to);
	if (!j->id || !j->domain || !j->to)
		return vgm_error_set(err, ENOMEM, "out of memory");
	j->p.id = j->id;
	j->p.domain = j->domain;
	j->p.to = j->to;
	j->phase = "queued";
	*out = TAKE_PTR(j);
	return 0;
}

int vgm_job_new(const vgm_job_params *p, const vgm_job_ops *ops, vgm_job **out, vgm_error *err)
{
	return job_alloc(p, ops, out, err);
}

/* The recorded phase as one of ours (the store gives a copy). */
static const char *known_phase(const char *phase)
{
	static const char *const phases[] = {
		"queued",    "inspecting", "checking",  "claiming",  "rewriting",        "planning",
		"migrating", "deciding",   "committing", "releasing", "releasing_target",
	};
	for (size_t i = 0; phase && i < ARRAY_SIZE(phases); i++)
		if (STREQ(phases[i], phase))
			return phases[i];
	return NULL;
}

int vgm_job_new_resumed(const vgm_job_params *p, const char *phase, const char *domain_uuid,
			const char *claim_id, const vgm_job_ops *ops, vgm_job **out,
			vgm_error *err)
{
	const char *ph = known_phase(phase);
	if (!ph)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "migration job %s has an unknown phase '%s'; it cannot be resumed",
				      p->id ? p->id : "?", phase ? phase : "(null)");
	_cleanup_(vgm_job_freep) vgm_job *j = NULL;
	int r = job_alloc(p, ops, &j, err);
	if (r < 0)
		return r;
	j->phase = ph;
	j->resumed = true;
	snprintf(j->dom.uuid, sizeof(j->dom.uuid), "%s", domain_uuid ? domain_uuid : "");
	if (claim_id && !(j->claim.claim_id = strdup(claim_id)))
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = TAKE_PTR(j);
	return 0;
}

void vgm_job_free(vgm_job *j)
{
	if (!j)
		return;
	domain_clear(&j->dom);
	vgm_job_claim_clear(&j->claim);
	free(j->id);
	free(j->domain);
	free(j->to);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

void vgm_job_request_abort(vgm_job *j, const char *reason)
{
	pthread_mutex_lock(&j->lock);
	bool first = !j->abort_requested;
	if (first) {
		j->abort_requested = true;
		snprintf(j->abort_reason, sizeof(j->abort_reason), "%s",
			 reason ? reason : "aborted by the operator");
	}
	pthread_mutex_unlock(&j->lock);
	if (first && j->ops.abort)
		j->ops.abort(j->ops.ctx, j, reason ? reason : "aborted by the operator");
}

bool vgm_job_abort_requested(vgm_job *j, char *why, size_t n)
{
	pthread_mutex_lock(&j->lock);
	bool w = j->abort_requested;
	if (w && why)
		snprintf(why, n, "%s", j->abort_reason);
	pthread_mutex_unlock(&j->lock);
	return w;
}

const char *vgm_job_id(const vgm_job *j) { return j->id; }
const char *vgm_job_to(const vgm_job *j) { return j->to; }
const char *vgm_job_domain_uuid(const vgm_job *j) { return j->dom.uuid; }
const char *vgm_job_claim_id(const vgm_job *j) { return j->claim.claim_id; }
const vgm_job_params *vgm_job_get_params(const vgm_job *j) { return &j->p; }
const vgm_job_domain *vgm_job_get_domain(const vgm_job *j) { return &j->dom; }
const vgm_job_claim *vgm_job_get_claim(const vgm_job *j) { return &j->claim; }

const char *vgm_job_domain_name(const vgm_job *j)
{
	return j->dom.name ? j->dom.name : j->domain;
}

const char *vgm_job_phase(const vgm_job *j)
{
	vgm_job *w = (vgm_job *)j; /* the lock is not part of the value */
	pthread_mutex_lock(&w->lock);
	const char *p = j->phase;
	pthread_mutex_unlock(&w->lock);
	return p;
}

void vgm_job_ctl_config(const vgm_job *j, vgm_ctl_config *out)
{
	*out = (vgm_ctl_config){
		.max_downtime_ms = j->p.max_downtime_ms,
		.timeout_ms = j->p.timeout_ms,
		.bandwidth_cap_bps = j->p.bandwidth_bps,
		.ram_bytes = j->dom.memory_bytes,
		/* pre-copy or not: decided in flight from vfio_data_transferred */
		.vgpu_unknown_bytes = j->dom.vgpu_state_bytes,
		/* learnt from earlier migrations to this peer; else learnt in flight */
		.link_bps = j->dom.link_bps,
		.dirty_rate_bps = j->dom.dirty_rate_bps,
		.costs = vgm_model_default_costs(),
	};
}

/* ---- steps ---- */

/* Record the phase before it acts; a job that cannot record stops. */
static int enter(vgm_job *j, const char *phase, vgm_error *err)
{
	pthread_mutex_lock(&j->lock);
	j->phase = phase;
	pthread_mutex_unlock(&j->lock);
	int r = j->ops.record(j->ops.ctx, j, phase, err);
	if (r < 0)
		vgm_error_prefix(err, "cannot record phase %s of migration %s", phase, j->id);
	return r;
}

static void journal(vgm_job *j, const char *step, const char *outcome, const char *detail)
{
	if (j->ops.journal)
		j->ops.journal(j->ops.ctx, j, step, outcome, detail);
}

static int check_abort(vgm_job *j, vgm_error *err)
{
	char why[256];
	if (!vgm_job_abort_requested(j, why, sizeof(why)))
		return 0;
	return vgm_error_setr(err, ECANCELED, "migration_aborted", "migration aborted: %s", why);
}

static int step_inspect(vgm_job *j, vgm_error *err)
{
	int r = enter(j, "inspecting", err);
	if (r >= 0)
		r = j->ops.inspect(j->ops.ctx, j, &j->dom, err);
	if (r < 0)
		return r;
	char d[128];
	snprintf(d, sizeof(d), "%zu vGPU(s), %llu MiB RAM", j->dom.n_vgpus,
		 (unsigned long long)(j->dom.memory_bytes >> 20));
	journal(j, "inspect", "ok", d);
	return 0;
}

static int step_check(vgm_job *j, vgm_error *err)
{
	int r = enter(j, "checking", err);
	if (r >= 0)
		r = j->ops.peer_check(j->ops.ctx, j, err);
	if (r >= 0)
		journal(j, "check", "ok", NULL);
	return r;
}

static int step_claim(vgm_job *j, vgm_error *err)
{
	if (j->dom.n_vgpus == 0)
		return 0;
	int r = enter(j, "claiming", err);
	if (r >= 0)
		r = j->ops.peer_claim(j->ops.ctx, j, &j->claim, err);
	if (r >= 0 && !j->claim.claim_id)
		r = vgm_error_setr(err, EPROTO, "bad_reply", "%s answered the claim without an id",
				   j->to);
	if (r >= 0)
		journal(j, "claim", "ok", j->claim.claim_id);
	return r;
}

/* Live and persistent XML with the target's ids; the claim id is recorded
 * with this phase, so a restart from here on can release it. */
static int step_rewrite(vgm_job *j, char **live, char **persist, vgm_error *err)
{
	*live = *persist = NULL;
	if (!j->claim.claim_id)
		return 0;
	int r = enter(j, "rewriting", err);
	if (r < 0)
		return r;
	_cleanup_free_ vgm_idmap *map = calloc(j->claim.n + 1, sizeof(*map));
	if (!map)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < j->claim.n; i++)
		map[i] = (vgm_idmap){ j->claim.source_ids[i], j->claim.target_ids[i] };
	const vgm_job_domain *d = &j->dom;
	r = vgm_domxml_rewrite(d->xml_live, strlen(d->xml_live), map, j->claim.n,
			       VGM_REWRITE_ALLOW_UNMAPPED, live, NULL, err);
	if (r >= 0 && d->xml_persistent)
		r = vgm_domxml_rewrite(d->xml_persistent, strlen(d->xml_persistent), map, j->claim.n,
				       VGM_REWRITE_ALLOW_UNMAPPED, persist, NULL, err);
	if (r >= 0)
		journal(j, "rewrite", "ok", NULL);
	return r;
}

static int step_plan(vgm_job *j, vgm_error *err)
{
	int r = enter(j, "planning", err);
	vgm_verdict v = { .ok = false };
	if (r >= 0)
		r = j->ops.plan(j->ops.ctx, j, &v, err);
	if (r < 0)
		return r;
	journal(j, "plan", v.ok ? "ok" : (j->p.force ? "forced" : "refused"), v.reason);
	if (!v.ok && !j->p.force)
		return vgm_error_setr(err, EDOM, v.code[0] ? v.code : "plan_refused",
				      "%s (use --force to try anyway)", v.reason);
	return 0;
}

/* ---- outcomes ---- */

static void pause_ms(vgm_job *j, unsigned ms)
{
	if (j->ops.sleep_ms) {
		j->ops.sleep_ms(j->ops.ctx, ms);
		return;
	}
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Ask both libvirts until the answer is definite: libvirt may be
 * restarting, or (settle) still finishing the job right after the call
 * returned; without settle a running job is an answer (resume watches it). */
static vgm_job_where ask_where(vgm_job *j, bool settle)
{
	vgm_job_where w = VGM_WHERE_UNKNOWN;
	for (int i = 0; i < WHERE_TRIES; i++) {
		if (i)
			pause_ms(j, WHERE_RETRY_MS);
		w = j->ops.where(j->ops.ctx, j);
		if (w != VGM_WHERE_UNKNOWN && (w != VGM_WHERE_MOVING || !settle))
			break;
	}
	journal(j, "where", vgm_job_where_to_string(w), NULL);
	return w;
}

/* The VM runs on the target: commit its claim there, free ours.  A failed
 * commit is left to the target: its libvirt sync commits a claim whose
 * domain runs there; a failed release here is retried by the sweep. */
static int land(vgm_job *j, vgm_error *err)
{
	int r = enter(j, "committing", err);
	if (r < 0)
		return r;
	vgm_error e = { 0 };
	if (j->claim.claim_id) {
		if (j->ops.peer_commit(j->ops.ctx, j, j->claim.claim_id, &e) < 0)
			journal(j, "commit", "failed", vgm_error_message(&e));
		else
			journal(j, "commit", "ok", j->claim.claim_id);
	}
	r = enter(j, "releasing", err);
	if (r < 0)
		return r;
	vgm_error_clear(&e);
	if (j->ops.release_source(j->ops.ctx, j, &e) < 0)
		journal(j, "release_source", "failed", vgm_error_message(&e));
	else
		journal(j, "release_source", "ok", NULL);
	return 0;
}

/* The VM did not move (or libvirt was never called): give the target's
 * claim back.  cause (and err) is the job's result, kept as it is. */
static int roll_back(vgm_job *j, int cause, vgm_error *err)
{
	if (!j->claim.claim_id)
		return cause;
	vgm_error e = { 0 };
	if (enter(j, "releasing_target", &e) < 0) {
		/* Not recorded, so not done: the claim's lease ends it. */
		journal(j, "release_target", "skipped", vgm_error_message(&e));
		return cause;
	}
	if (j->ops.peer_release(j->ops.ctx, j, j->claim.claim_id, &e) < 0)
		journal(j, "release_target", "failed", vgm_error_message(&e));
	else
		journal(j, "release_target", "ok", j->claim.claim_id);
	(void)err;
	return cause;
}

static int outcome_unknown(vgm_job *j, vgm_error *err)
{
	char what[sizeof(err->message)];
	snprintf(what, sizeof(what), "%s", err->message[0] ? err->message : "migration interrupted");
	return vgm_error_setr(err, EINPROGRESS, "outcome_unknown",
			      "%s; where domain %s runs cannot be learnt from libvirt on this host "
			      "and on %s now, so the target's claim is kept; the agent asks again "
			      "(see 'vgpumig status')",
			      what, vgm_job_domain_name(j), j->to);
}

/* After the libvirt call failed: only the VM's location decides. */
static int decide(vgm_job *j, int cause, vgm_error *err)
{
	vgm_error e = { 0 };
	if (enter(j, "deciding", &e) < 0) {
		*err = e;
		return outcome_unknown(j, err);
	}
	switch (ask_where(j, true)) {
	case VGM_WHERE_TARGET:
		journal(j, "decide", "target", "libvirt reported a failure but the VM runs on the target");
		vgm_error_clear(err);
		return land(j, err);
	case VGM_WHERE_SOURCE:
	case VGM_WHERE_NOWHERE:
		return roll_back(j, cause, err);
	case VGM_WHERE_MOVING:
	case VGM_WHERE_UNKNOWN:
		break;
	}
	return outcome_unknown(j, err);
}

static int step_migrate(vgm_job *j, const char *live, const char *persist, vgm_error *err)
{
	int r = enter(j, "migrating", err);
	if (r < 0)
		return roll_back(j, r, err);
	vgm_ctl_config ctl;
	vgm_job_ctl_config(j, &ctl);
	journal(j, "migrate", "started", j->to);
	r = j->ops.migrate(j->ops.ctx, j, live, persist, &ctl, err);
	bool aborted = r < 0 && (STREQ(err->reason, "migration_aborted") ||
				 vgm_job_abort_requested(j, NULL, 0));
	journal(j, "migrate", r >= 0 ? "ok" : aborted ? "aborted" : "failed",
		r >= 0 ? NULL : vgm_error_message(err));
	if (r >= 0)
		return land(j, err);
	return decide(j, r, err);
}

static int run_fresh(vgm_job *j, vgm_error *err)
{
	int r = step_inspect(j, err);
	if (r >= 0)
		r = check_abort(j, err);
	if (r >= 0)
		r = step_check(j, err);
	if (r >= 0)
		r = check_abort(j, err);
	if (r >= 0)
		r = step_claim(j, err);
	_cleanup_free_ char *live = NULL, *persist = NULL;
	if (r >= 0)
		r = step_rewrite(j, &live, &persist, err);
	if (r >= 0)
		r = step_plan(j, err);
	if (r >= 0)
		r = check_abort(j, err);
	if (r < 0)
		return roll_back(j, r, err);
	if (j->p.dry_run) {
		journal(j, "dry_run", "ok", "stopped before the libvirt call");
		return roll_back(j, 0, err);
	}
	return step_migrate(j, live, persist, err);
}

/* ---- resume ---- */

static bool phase_in(const char *ph, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (STREQ(ph, set[i]))
			return true;
	return false;
}

/* Was migrating (or deciding) when the agent stopped: watch what libvirt
 * still runs, never start it again, then decide from where the VM is. */
static int resume_migrating(vgm_job *j, vgm_error *err)
{
	vgm_job_where w = ask_where(j, false);
	if (w == VGM_WHERE_MOVING) {
		vgm_ctl_config ctl;
		vgm_job_ctl_config(j, &ctl);
		journal(j, "monitor", "attached", NULL);
		vgm_error e = { 0 };
		int r = j->ops.monitor(j->ops.ctx, j, &ctl, &e);
		journal(j, "monitor", r >= 0 ? "ended" : "failed", r >= 0 ? NULL : e.message);
		w = ask_where(j, true);
	}
	if (w == VGM_WHERE_TARGET)
		return land(j, err);
	if (w == VGM_WHERE_SOURCE || w == VGM_WHERE_NOWHERE)
		return roll_back(j,
				 vgm_error_setr(err, EIO, "migration_failed",
						"the migration did not complete: domain %s runs %s",
						vgm_job_domain_name(j),
						w == VGM_WHERE_SOURCE ? "on this host" : "nowhere"),
				 err);
	vgm_error_setr(err, EIO, "migration_interrupted", "the agent restarted during the migration");
	return outcome_unknown(j, err);
}

static int resume(vgm_job *j, vgm_error *err)
{
	static const char *const before_libvirt[] = { "queued",    "inspecting", "checking",
						      "claiming",  "rewriting",  "planning",
						      "releasing_target" };
	const char *ph = j->phase;
	journal(j, "resume", ph, j->claim.claim_id);
	if (STREQ(ph, "migrating") || STREQ(ph, "deciding"))
		return resume_migrating(j, err);
	if (STREQ(ph, "committing"))
		return land(j, err);
	if (STREQ(ph, "releasing")) {
		int r = enter(j, "releasing", err);
		vgm_error e = { 0 };
		if (r >= 0 && j->ops.release_source(j->ops.ctx, j, &e) < 0)
			journal(j, "release_source", "failed", vgm_error_message(&e));
		return r;
	}
	if (!phase_in(ph, before_libvirt, ARRAY_SIZE(before_libvirt)))
		return vgm_error_setr(err, EINVAL, "invalid_request", "unknown phase %s", ph);
	int r = vgm_error_setr(err, ECONNRESET, "agent_restarted",
			       "the agent restarted while the migration was %s, before libvirt was "
			       "called; the VM did not move%s",
			       ph, j->claim.claim_id ? ", and the target's claim is released"
			       : STREQ(ph, "claiming") ? "; a claim the target made ends with its lease"
						       : "");
	return roll_back(j, r, err);
}

static bool is_abort(vgm_job *j, const vgm_error *err)
{
	return STREQ(err->reason, "migration_aborted") || vgm_job_abort_requested(j, NULL, 0);
}

int vgm_job_run(vgm_job *j, vgm_error *err)
{
	vgm_error local = { 0 };
	vgm_error *e = err ? err : &local;
	int r = j->resumed ? resume(j, e) : run_fresh(j, e);
	if (r == -EINPROGRESS) {
		journal(j, "decide", "unknown", e->message);
		return r;
	}
	const char *state = r >= 0 ? "succeeded" : is_abort(j, e) ? "aborted" : "failed";
	pthread_mutex_lock(&j->lock);
	j->phase = "done";
	pthread_mutex_unlock(&j->lock);
	journal(j, "done", state, r >= 0 ? NULL : vgm_error_message(e));
	if (j->ops.finish)
		j->ops.finish(j->ops.ctx, j, state, r >= 0 ? NULL : e);
	return r;
}
