/* jobs.c: the agent's job manager: the migrations this host runs as the
 * source, their worker threads, and their resume after a restart.
 *
 * A migration is a row in the store's jobs table (written before the worker
 * starts), a lib/migrate job (the steps), a job_ctx (the ops, job-ops.c) and
 * a record here that `vgpumig status` reads.  Workers are joinable: a
 * record is unlinked and freed only after its worker was joined, by whoever
 * prunes it (outside the lock) or by agent_jobs_stop(), which runs after
 * the HTTP servers stopped (no request thread left) on the main thread.
 *
 * Restart: agent_jobs_resume() (at start, after libvirt's view and the
 * reconcile, and again every RESUME_EVERY_S for jobs whose outcome was
 * unknown) turns every "running" row without a live worker into a resumed
 * job; lib/migrate/job.c continues it from its recorded phase. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "migrations.h"

#define MIG_KEEP_FINISHED 64

typedef struct worker_arg {
	agent *a;
	mig *r;
} worker_arg;

int64_t mig_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int agent_jobs_new(agent_jobs **out)
{
	agent_jobs *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void mig_free(mig *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->to);
	json_decref(r->plan);
	json_decref(r->claim);
	vgm_job_free(r->job);
	job_ctx_free(r->ctx);
	free(r);
}

void mig_set_phase(agent_jobs *m, mig *r, const char *phase)
{
	pthread_mutex_lock(&m->lock);
	r->phase = phase;
	if (r->n_phases < ARRAY_SIZE(r->phase_names)) {
		r->phase_names[r->n_phases] = phase;
		r->phase_ms[r->n_phases++] = (double)(mig_now_ns() - r->created_ns) / 1e6;
	}
	pthread_mutex_unlock(&m->lock);
}

static mig *mig_new(const char *id, const char *domain, const char *to)
{
	mig *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->domain = strdup(domain);
	r->to = strdup(to);
	if (!r->domain || !r->to) {
		mig_free(r);
		return NULL;
	}
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->phase = "queued";
	r->state = "running";
	r->created_ns = mig_now_ns();
	r->eta_s = -1;
	return r;
}

/* Finished records beyond MIG_KEEP_FINISHED (newest first), unlinked under
 * the lock, joined and freed outside it. */
static void prune(agent_jobs *m)
{
	mig *gone = NULL;
	size_t kept = 0;
	pthread_mutex_lock(&m->lock);
	for (mig **pp = &m->head; *pp;) {
		mig *r = *pp;
		if (r->finished && ++kept > MIG_KEEP_FINISHED) {
			*pp = r->next;
			r->next = gone;
			gone = r;
			continue;
		}
		pp = &r->next;
	}
	pthread_mutex_unlock(&m->lock);
	for (mig *next; gone; gone = next) {
		next = gone->next;
		if (gone->has_thread)
			pthread_join(gone->thread, NULL);
		mig_free(gone);
	}
}

static void *worker_main(void *arg)
{
	worker_arg *w = arg;
	vgm_error err = { 0 };
	int r = vgm_job_run(w->r->job, &err);
	if (r == -EINPROGRESS)
		log_warn("migration %s: %s", w->r->id, vgm_error_message(&err));
	job_ctx_release(w->r->ctx);
	agent_jobs *m = w->a->jobs;
	pthread_mutex_lock(&m->lock);
	if (r == -EINPROGRESS) {
		snprintf(w->r->err_code, sizeof(w->r->err_code), "%s", err.reason);
		snprintf(w->r->err_msg, sizeof(w->r->err_msg), "%s", err.message);
	}
	w->r->finished = true; /* the worker is done; the row may still be running */
	pthread_mutex_unlock(&m->lock);
	free(w);
	return NULL;
}

static int spawn(agent *a, mig *r, vgm_error *err)
{
	worker_arg *w = calloc(1, sizeof(*w));
	if (!w)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*w = (worker_arg){ a, r };
	int e = pthread_create(&r->thread, NULL, worker_main, w);
	if (e != 0) {
		free(w);
		return vgm_error_set(err, e, "cannot start the migration thread");
	}
	r->has_thread = true;
	return 0;
}

static bool domain_busy_locked(agent_jobs *m, const char *domain)
{
	for (mig *r = m->head; r; r = r->next)
		/* a finished worker may leave its job running: outcome unknown */
		if ((!r->finished || STREQ(r->state, "running")) &&
		    (STREQ(r->domain, domain) || STREQ(r->domain_uuid, domain)))
			return true;
	return false;
}

/* Link a new record unless the agent stops or the domain is migrating. */
static int link_record(agent_jobs *m, mig *r, vgm_error *err)
{
	pthread_mutex_lock(&m->lock);
	int ret = 0;
	if (m->stopping)
		ret = vgm_error_setr(err, ESHUTDOWN, "agent_stopping",
				     "the agent is stopping; start the migration again once it runs");
	else if (domain_busy_locked(m, r->domain))
		ret = vgm_error_setr(err, EBUSY, "migration_in_progress",
				     "domain '%s' is already migrating; see 'vgpumig status'",
				     r->domain);
	else {
		r->next = m->head;
		m->head = r;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static void unlink_record(agent_jobs *m, mig *r)
{
	pthread_mutex_lock(&m->lock);
	for (mig **pp = &m->head; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

static vgm_job_params params_of(const mig *r)
{
	return (vgm_job_params){ r->id, r->domain, r->to, r->max_downtime_ms, r->bandwidth_bps,
				 r->timeout_ms, r->dry_run, r->force };
}

static int store_row(agent *a, const mig *r, vgm_error *err)
{
	vgm_job_row row = { .job_id = (char *)r->id, .domain = r->domain, .to_host = r->to,
			    .phase = "queued", .max_downtime_ms = r->max_downtime_ms,
			    .bandwidth_bps = r->bandwidth_bps, .timeout_ms = r->timeout_ms,
			    .dry_run = r->dry_run, .force = r->force };
	return vgm_jobs_insert(a->store, &row, err);
}

/* The record is linked; make the job, write its row, start the worker. */
static int launch(agent *a, mig *r, const char *phase, const vgm_job_row *resumed, vgm_error *err)
{
	int ret = job_ctx_new(a, r, &r->ctx, err);
	vgm_job_ops ops = r->ctx ? job_ctx_ops(r->ctx) : (vgm_job_ops){ 0 };
	vgm_job_params p = params_of(r);
	if (ret >= 0 && resumed)
		ret = vgm_job_new_resumed(&p, phase, resumed->domain_uuid, resumed->claim_id, &ops,
					  &r->job, err);
	else if (ret >= 0)
		ret = vgm_job_new(&p, &ops, &r->job, err);
	if (ret >= 0 && !resumed)
		ret = store_row(a, r, err);
	if (ret >= 0)
		ret = spawn(a, r, err);
	return ret;
}

int agent_jobs_start(agent *a, const vgm_wire_migration_req *q, char *id, vgm_error *err)
{
	char uuid[VGM_UUID_LEN + 1];
	if (vgm_uuid_generate(uuid) < 0)
		return vgm_error_set(err, EIO, "cannot generate a migration id");
	mig *r = mig_new(uuid, q->domain, q->to);
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	r->max_downtime_ms = q->max_downtime_ms;
	r->bandwidth_bps = q->bandwidth_bps;
	r->timeout_ms = q->timeout_ms;
	r->dry_run = q->dry_run;
	r->force = q->force;
	int ret = link_record(a->jobs, r, err);
	if (ret < 0) {
		mig_free(r);
		return ret;
	}
	ret = launch(a, r, "queued", NULL, err);
	if (ret < 0) {
		unlink_record(a->jobs, r);
		mig_free(r);
		return ret;
	}
	snprintf(id, VGM_UUID_LEN + 1, "%s", r->id);
	prune(a->jobs);
	return 0;
}

/* A record for a row found in the store. */
static mig *mig_from_row(const vgm_job_row *row)
{
	mig *r = mig_new(row->job_id, row->domain, row->to_host);
	if (!r)
		return NULL;
	r->max_downtime_ms = row->max_downtime_ms;
	r->bandwidth_bps = row->bandwidth_bps;
	r->timeout_ms = row->timeout_ms;
	r->dry_run = row->dry_run;
	r->force = row->force;
	r->resumed = true;
	r->created_ns = row->created_at * 1000000000;
	snprintf(r->domain_uuid, sizeof(r->domain_uuid), "%s", row->domain_uuid ? row->domain_uuid : "");
	r->phase = "resuming";
	return r;
}

/* Drop a finished record of this id (its worker ended with the outcome
 * unknown); true when a live worker still runs it. */
static bool take_over(agent_jobs *m, const char *id)
{
	mig *old = NULL;
	bool live = false;
	pthread_mutex_lock(&m->lock);
	for (mig **pp = &m->head; *pp; pp = &(*pp)->next) {
		if (!STREQ((*pp)->id, id))
			continue;
		live = !(*pp)->finished;
		if (!live) {
			old = *pp;
			*pp = old->next;
		}
		break;
	}
	pthread_mutex_unlock(&m->lock);
	if (old && old->has_thread)
		pthread_join(old->thread, NULL);
	mig_free(old);
	return live;
}

static void resume_row(agent *a, const vgm_job_row *row)
{
	if (take_over(a->jobs, row->job_id))
		return;
	mig *r = mig_from_row(row);
	vgm_error err = { 0 };
	int ret = r ? link_record(a->jobs, r, &err) : vgm_error_set(&err, ENOMEM, "out of memory");
	if (ret >= 0) {
		ret = launch(a, r, row->phase, row, &err);
		if (ret < 0)
			unlink_record(a->jobs, r);
	}
	if (ret < 0) {
		log_error("migration %s of %s (phase %s) cannot be resumed now: %s", row->job_id,
			  row->domain, row->phase, vgm_error_message(&err));
		mig_free(r);
		return;
	}
	log_info("migration %s of %s to %s: resuming from phase %s", row->job_id, row->domain,
		 row->to_host, row->phase);
}

void agent_jobs_resume(agent *a)
{
	vgm_job_row *rows = NULL;
	size_t n = 0;
	vgm_error err = { 0 };
	if (vgm_jobs_list(a->store, true, 1000, &rows, &n, &err) < 0) {
		log_error("listing unfinished migrations: %s", vgm_error_message(&err));
		return;
	}
	for (size_t i = 0; i < n; i++)
		resume_row(a, &rows[i]);
	vgm_job_rows_free(rows, n);
	prune(a->jobs);
}

void agent_jobs_stop(agent_jobs *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	size_t n = 0;
	for (mig *r = m->head; r; r = r->next)
		n += !r->finished;
	pthread_mutex_unlock(&m->lock);
	/* No request thread is left and only this thread prunes now, so the
	 * list and its jobs stay put while the workers are told to stop. */
	for (mig *r = m->head; r; r = r->next)
		if (r->job)
			vgm_job_request_abort(r->job, "the agent is stopping");
	if (n)
		log_info("stopping: aborting %zu running migration(s)", n);
	for (mig *r = m->head, *next; r; r = next) {
		next = r->next;
		if (r->has_thread)
			pthread_join(r->thread, NULL);
		mig_free(r);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}
