/* jobs.c: the durable record of the migrations this host runs as the source,
 * and the host's own settings (cordon).
 *
 * lib/migrate/job.c writes a job's phase here BEFORE the phase acts, so after
 * a crash the row says what may have happened: an agent that restarts finds
 * every job still "running" and resumes it from its phase (docs/state.md).
 * A limit that was not given is SQL NULL, never 0, so "no --max-downtime"
 * survives the restart as itself.  Rows are kept with the journal's
 * retention; a finished job's state never changes again. */
#include <string.h>

#include "store-internal.h"

#define JOB_COLUMNS                                                                                \
	"job_id, domain, domain_uuid, to_host, phase, state, claim_id, max_downtime_ms,"           \
	" bandwidth_bps, timeout_ms, dry_run, force, created_at, updated_at, error_code,"         \
	" error_message"

void vgm_job_rows_free(vgm_job_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		vgm_job_row *r = &rows[i];
		free(r->job_id);
		free(r->domain);
		free(r->domain_uuid);
		free(r->to_host);
		free(r->phase);
		free(r->state);
		free(r->claim_id);
		free(r->error_code);
		free(r->error_message);
	}
	free(rows);
}

static void bind_limit(sqlite3_stmt *st, int col, vgm_limit l)
{
	if (l.set)
		sqlite3_bind_int64(st, col, (int64_t)l.value);
	else
		sqlite3_bind_null(st, col);
}

static vgm_limit column_limit(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return VGM_LIMIT_UNSET;
	return vgm_limit_of((uint64_t)sqlite3_column_int64(st, col));
}

int vgm_jobs_insert(vgm_store *s, const vgm_job_row *row, vgm_error *err)
{
	if (!row->job_id || !row->domain || !row->to_host || !row->phase)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "a job needs an id, a domain, a target and a phase");
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO jobs(job_id, domain, domain_uuid, to_host, phase, state,"
			      " claim_id, max_downtime_ms, bandwidth_bps, timeout_ms, dry_run, force,"
			      " created_at, updated_at)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, row->job_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, row->domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, row->to_host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, row->phase, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, row->claim_id, -1, SQLITE_STATIC);
	bind_limit(st, 7, row->max_downtime_ms);
	bind_limit(st, 8, row->bandwidth_bps);
	bind_limit(st, 9, row->timeout_ms);
	sqlite3_bind_int(st, 10, row->dry_run);
	sqlite3_bind_int(st, 11, row->force);
	sqlite3_bind_int64(st, 12, row->created_at ? row->created_at : store_now(s));
	return store_step_done(s, st, "recording a migration job", err);
}

/* One UPDATE of a running job; ESTALE when it is finished or unknown. */
static int update_running(vgm_store *s, sqlite3_stmt *st, const char *job_id, const char *what,
			  vgm_error *err)
{
	int r = store_step_done(s, st, what, err);
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db) == 0)
		return vgm_error_setr(err, ESTALE, "job_finished",
				      "migration job %s is finished or unknown on %s", job_id,
				      s->host_name);
	return 0;
}

int vgm_jobs_set_phase(vgm_store *s, const char *job_id, const char *phase,
		       const char *domain_uuid, const char *claim_id, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "UPDATE jobs SET phase = ?2, domain_uuid = coalesce(?3, domain_uuid),"
			      " claim_id = coalesce(?4, claim_id), updated_at = ?5"
			      " WHERE job_id = ?1 AND state = 'running'",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, phase, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, claim_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_now(s));
	return update_running(s, st, job_id, "recording a job's phase", err);
}

int vgm_jobs_finish(vgm_store *s, const char *job_id, const char *state, const char *code,
		    const char *message, vgm_error *err)
{
	if (!state || !(STREQ(state, "succeeded") || STREQ(state, "failed") || STREQ(state, "aborted")))
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "a job ends succeeded, failed or aborted, not '%s'",
				      state ? state : "(null)");
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "UPDATE jobs SET state = ?2, phase = 'done', error_code = ?3,"
			      " error_message = ?4, updated_at = ?5"
			      " WHERE job_id = ?1 AND state = 'running'",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_now(s));
	return update_running(s, st, job_id, "recording a job's end", err);
}

static int job_row(sqlite3_stmt *st, vgm_job_row *j)
{
	bool ok = true;
	j->job_id = store_column_strdup(st, 0, &ok);
	j->domain = store_column_strdup(st, 1, &ok);
	j->domain_uuid = store_column_strdup(st, 2, &ok);
	j->to_host = store_column_strdup(st, 3, &ok);
	j->phase = store_column_strdup(st, 4, &ok);
	j->state = store_column_strdup(st, 5, &ok);
	j->claim_id = store_column_strdup(st, 6, &ok);
	j->max_downtime_ms = column_limit(st, 7);
	j->bandwidth_bps = column_limit(st, 8);
	j->timeout_ms = column_limit(st, 9);
	j->dry_run = sqlite3_column_int(st, 10) != 0;
	j->force = sqlite3_column_int(st, 11) != 0;
	j->created_at = sqlite3_column_int64(st, 12);
	j->updated_at = sqlite3_column_int64(st, 13);
	j->error_code = store_column_strdup(st, 14, &ok);
	j->error_message = store_column_strdup(st, 15, &ok);
	return ok ? 0 : -ENOMEM;
}

int vgm_jobs_list(vgm_store *s, bool unfinished, size_t limit, vgm_job_row **out, size_t *n,
		  vgm_error *err)
{
	*out = NULL;
	*n = 0;
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT " JOB_COLUMNS " FROM jobs WHERE ?1 = 0 OR state = 'running'"
			      " ORDER BY created_at DESC, rowid DESC LIMIT ?2",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int(st, 1, unfinished);
	sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : 100);
	vgm_job_row *v = NULL;
	size_t k = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_job_row *g = realloc(v, (k + 1) * sizeof(*v));
		if (!g) {
			vgm_job_rows_free(v, k);
			return vgm_error_set(err, ENOMEM, "out of memory");
		}
		v = g;
		memset(&v[k], 0, sizeof(v[k]));
		if (job_row(st, &v[k++]) < 0) {
			vgm_job_rows_free(v, k);
			return vgm_error_set(err, ENOMEM, "out of memory");
		}
	}
	if (r != SQLITE_DONE) {
		vgm_job_rows_free(v, k);
		return store_sql_error(s, err, "reading migration jobs");
	}
	*out = v;
	*n = k;
	return 0;
}

/* ---- host settings ---- */

int vgm_host_cordon_set(vgm_store *s, bool cordoned, const char *reason, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      cordoned ? "INSERT OR REPLACE INTO host_settings(key, value, updated_at)"
					 " VALUES ('cordon', coalesce(?1, ''), ?2)"
				       : "DELETE FROM host_settings WHERE key = 'cordon'",
			      &st, err);
	if (r < 0)
		return r;
	if (cordoned) {
		sqlite3_bind_text(st, 1, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, store_now(s));
	}
	return store_step_done(s, st, cordoned ? "cordoning the host" : "uncordoning the host",
			       err);
}

/* Lock held. */
int store_cordon_get(vgm_store *s, bool *cordoned, char **reason, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT value FROM host_settings WHERE key = 'cordon'", &st, err);
	if (r < 0)
		return r;
	if (reason)
		*reason = NULL;
	r = sqlite3_step(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return store_sql_error(s, err, "reading the cordon");
	*cordoned = r == SQLITE_ROW;
	if (*cordoned && reason) {
		bool ok = true;
		char *v = store_column_strdup(st, 0, &ok);
		if (!ok)
			return vgm_error_set(err, ENOMEM, "out of memory");
		if (v && !v[0])
			v = (free(v), NULL);
		*reason = v;
	}
	return 0;
}

int vgm_host_cordon_get(vgm_store *s, bool *cordoned, char **reason, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	return store_cordon_get(s, cordoned, reason, err);
}
