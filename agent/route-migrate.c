/* route-migrate.c: the migration routes of the SOURCE host (DESIGN.md
 * section 3): POST /v1/migrations, GET /v1/migrations, GET
 * /v1/migrations/{id}, POST /v1/migrations/{id}/abort.  POST /v1/plan is in
 * plan.c.
 *
 * Thin: a request is decoded and checked here, the job manager (jobs.c)
 * starts it, lib/migrate/job.c runs it; replies are snapshots of the
 * manager's records (under its lock), and after a restart of the rows the
 * store's jobs table keeps. */
#include <math.h>
#include <string.h>

#include "migrations.h"

static json_t *limit_json(vgm_limit l)
{
	return l.set ? json_integer((json_int_t)l.value) : json_null();
}

/* The operator's limits as given: null when not given. */
static json_t *limits_json(const mig *m)
{
	return json_pack("{s:o, s:o, s:o}", "max_downtime_ms", limit_json(m->max_downtime_ms),
			 "bandwidth_bps", limit_json(m->bandwidth_bps), "timeout_ms",
			 limit_json(m->timeout_ms));
}

static json_t *sample_json(const mig *m)
{
	const vgm_job_sample *x = &m->last;
	json_t *o = json_pack("{s:I, s:I, s:I}", "total", (json_int_t)x->memory_total, "remaining",
			      (json_int_t)x->memory_remaining, "transferred",
			      (json_int_t)x->memory_processed);
	return o;
}

/* vGPU bytes sent where libvirt reports them (vfio_data_transferred, libvirt
 * >= 10.6); else null, and at_switchover says what moves when the guest stops. */
static json_t *vgpu_json(const mig *m)
{
	bool sent = (m->last.have & VGM_SAMPLE_HAVE_VFIO) != 0;
	return json_pack("{s:I, s:I, s:o, s:I}", "count", (json_int_t)m->n_vgpus, "bytes",
			 (json_int_t)m->vgpu_bytes, "transferred",
			 sent ? json_integer((json_int_t)m->last.vfio_data_transferred) : json_null(),
			 "at_switchover", (json_int_t)(sent ? 0 : m->vgpu_bytes));
}

static json_t *snapshot_locked(const mig *m)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "migration_id", m->id,
			      "domain", m->domain, "domain_uuid", m->domain_uuid, "to", m->to,
			      "phase", m->phase, "state", m->state, "dry_run", m->dry_run, "force",
			      m->force, "resumed", m->resumed);
	if (!o)
		return NULL;
	json_object_set_new(o, "created_at", json_real((double)m->created_ns / 1e9));
	json_object_set_new(o, "limits", limits_json(m));
	json_object_set_new(o, "elapsed_ms", json_integer((json_int_t)m->last.time_elapsed_ms));
	json_object_set_new(o, "ram", sample_json(m));
	json_object_set_new(o, "vgpu", vgpu_json(m));
	json_object_set_new(o, "rate_bps", json_integer((json_int_t)m->last.memory_bps));
	json_object_set_new(o, "dirty_rate_bps",
			    json_integer((json_int_t)m->last.memory_dirty_rate_bps));
	json_object_set_new(o, "iteration", json_integer((json_int_t)m->last.memory_iteration));
	json_object_set_new(o, "eta_s", m->have_sample && m->eta_s >= 0 ? json_real(m->eta_s)
								       : json_null());
	json_object_set_new(o, "expected_downtime_ms",
			    m->have_sample ? json_integer((json_int_t)llround(m->expected_downtime_s * 1000))
					   : json_null());
	json_object_set_new(o, "plan", m->plan ? json_incref(m->plan) : json_null());
	json_object_set_new(o, "claim", m->claim ? json_incref(m->claim) : json_null());
	json_t *ph = json_object();
	for (size_t i = 0; ph && i < m->n_phases; i++)
		json_object_set_new(ph, m->phase_names[i], json_real(m->phase_ms[i]));
	json_object_set_new(o, "phase_started_ms", ph);
	json_object_set_new(o, "start_to_call_ms",
			    m->call_ns ? json_real((double)(m->call_ns - m->created_ns) / 1e6)
				       : json_null());
	if (m->have_sum)
		json_object_set_new(
			o, "result",
			json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "ok", m->sum.ok,
				  "total_ms", (json_int_t)m->sum.total_ms, "downtime_ms",
				  (json_int_t)m->sum.downtime_ms, "setup_ms", (json_int_t)m->sum.setup_ms,
				  "bytes", (json_int_t)m->sum.bytes, "iterations",
				  (json_int_t)m->sum.iterations, "wall_ms",
				  (json_int_t)(m->finished_ns && m->call_ns
						       ? (m->finished_ns - m->call_ns) / 1000000
						       : 0),
				  "from_destination", m->sum.from_destination));
	else
		json_object_set_new(o, "result", json_null());
	json_object_set_new(o, "error", m->err_code[0] ? json_pack("{s:s, s:s}", "code", m->err_code,
								  "message", m->err_msg)
						      : json_null());
	return o;
}


/* ---- routes ---- */

int mig_request_begin(agent_request *req, vgm_wire_migration_req **q, mig_cfg *c)
{
	vgm_error err = { 0 };
	if (vgm_wire_migration_req_decode(req->body ? req->body : "", req->body_len, q, &err) < 0)
		return agent_reply_error(req, &err);
	_cleanup_free_ char *me = agent_host_name(req->a);
	if (me && STREQ(me, (*q)->to))
		return agent_reply_errorf(req, 400, "invalid_request",
					  "'%s' is this host; migrate to another host", (*q)->to);
	if (mig_cfg_get(req->a, (*q)->to, c, &err) < 0)
		return agent_reply_error(req, &err);
	return 1;
}

int route_migrations_create(agent_request *req)
{
	_cleanup_(vgm_wire_migration_req_freep) vgm_wire_migration_req *q = NULL;
	mig_cfg c;
	int r = mig_request_begin(req, &q, &c);
	if (r <= 0)
		return r;
	mig_cfg_clear(&c); /* checked here; the job takes its own copy */
	vgm_error err = { 0 };
	char id[VGM_UUID_LEN + 1];
	if (agent_jobs_start(req->a, q, id, &err) < 0)
		return agent_reply_error(req, &err);
	return agent_reply_json(req, 202, json_pack("{s:s}", "migration_id", id));
}

/* Jobs the store knows of that are not in memory (older than the records
 * kept, or from before a restart). */
static json_t *recent_from_store(agent *a, json_t *seen)
{
	json_t *arr = json_array();
	vgm_job_row *rows = NULL;
	size_t n = 0;
	if (!arr || vgm_jobs_list(a->store, false, 100, &rows, &n, NULL) < 0)
		return arr;
	for (size_t i = 0; i < n; i++) {
		if (json_object_get(seen, rows[i].job_id))
			continue;
		json_object_set_new(seen, rows[i].job_id, json_true());
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:I}",
						     "migration_id", rows[i].job_id, "domain",
						     rows[i].domain, "to", rows[i].to_host, "state",
						     rows[i].state, "phase", rows[i].phase, "code",
						     rows[i].error_code, "message",
						     rows[i].error_message, "time",
						     (json_int_t)rows[i].updated_at));
	}
	vgm_job_rows_free(rows, n);
	return arr;
}

/* Journalled outcomes that no job row covers: cold migrations (route-cold.c
 * journals its phases) and migrations from before the jobs table. */
static void recent_from_journal(agent *a, json_t *seen, json_t *arr)
{
	vgm_journal_entry *e = NULL;
	size_t n = 0;
	if (!arr || vgm_journal_list(a->store, NULL, 200, &e, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!e[i].migration_id || !STREQ(e[i].step, "done") ||
		    json_object_get(seen, e[i].migration_id))
			continue;
		json_object_set_new(seen, e[i].migration_id, json_true());
		json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s?, s:I}", "migration_id",
						     e[i].migration_id, "domain", e[i].domain,
						     "state", e[i].outcome, "message", e[i].detail,
						     "time", (json_int_t)e[i].time));
	}
	vgm_journal_free(e, n);
}

int route_migrations_list(agent_request *req)
{
	agent_jobs *m = req->a->jobs;
	json_t *list = json_array(), *seen = json_object();
	pthread_mutex_lock(&m->lock);
	for (mig *r = m->head; r && list && seen; r = r->next) {
		json_array_append_new(list, snapshot_locked(r));
		json_object_set_new(seen, r->id, json_true());
	}
	pthread_mutex_unlock(&m->lock);
	json_t *recent = recent_from_store(req->a, seen);
	recent_from_journal(req->a, seen, recent);
	json_decref(seen);
	return agent_reply_json(req, 200, json_pack("{s:o, s:o}", "migrations", list, "recent", recent));
}

static mig *find_locked(agent_jobs *m, const char *id)
{
	for (mig *r = m->head; r; r = r->next)
		if (STREQ(r->id, id))
			return r;
	return NULL;
}

int route_migration_get(agent_request *req)
{
	agent_jobs *m = req->a->jobs;
	pthread_mutex_lock(&m->lock);
	mig *r = find_locked(m, req->params[0]);
	json_t *snap = r ? snapshot_locked(r) : NULL;
	pthread_mutex_unlock(&m->lock);
	if (snap)
		return agent_reply_json(req, 200, snap);
	return agent_reply_errorf(req, 404, "not_found",
				  "no migration '%s' on this host; see 'vgpumig status'", req->params[0]);
}

int route_migration_abort(agent_request *req)
{
	json_t *body = req->body_len ? agent_request_json(req) : NULL;
	if (req->body_len && !body)
		return 0; /* agent_request_json replied */
	const char *reason = body ? json_string_value(json_object_get(body, "reason")) : NULL;
	agent_jobs *m = req->a->jobs;
	pthread_mutex_lock(&m->lock);
	mig *r = find_locked(m, req->params[0]);
	bool finished = r && r->finished;
	/* The job outlives the request: records are freed only by a pruner
	 * after this lock, and only finished ones. */
	vgm_job *job = r && !finished ? r->job : NULL;
	pthread_mutex_unlock(&m->lock);
	if (job)
		vgm_job_request_abort(job, reason ? reason : "aborted by the operator");
	pthread_mutex_lock(&m->lock);
	json_t *snap = r ? snapshot_locked(r) : NULL;
	pthread_mutex_unlock(&m->lock);
	json_decref(body);
	if (!r)
		return agent_reply_errorf(req, 404, "not_found",
					  "no migration '%s' on this host; see 'vgpumig status'",
					  req->params[0]);
	if (finished) {
		json_decref(snap);
		return agent_reply_errorf(req, 409, "migration_finished",
					  "migration '%s' has already finished", req->params[0]);
	}
	return agent_reply_json(req, 202, snap);
}
