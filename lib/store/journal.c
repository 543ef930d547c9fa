/* journal.c: the append-only record of every migration step on this host.
 *
 * Rows are never changed; reconcile prunes rows older than the retention.
 * The claims engine writes its own rows (claim, commit, release, expire)
 * inside the transaction that makes the change, so the journal never says
 * something happened that the store does not show. */
#include <string.h>

#include "store-internal.h"

int store_journal_add(vgm_store *s, const char *migration_id, const char *domain,
		      const char *step, const char *outcome, const char *detail, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO journal(time, migration_id, domain, step, outcome, detail)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, store_now(s));
	sqlite3_bind_text(st, 2, migration_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, step, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
	return store_step_done(s, st, "appending to the journal", err);
}

int vgm_journal_append(vgm_store *s, const char *migration_id, const char *domain,
		       const char *step, const char *outcome, const char *detail, vgm_error *err)
{
	if (!step || !step[0] || !outcome || !outcome[0])
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "a journal entry needs a step and an outcome");
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	return store_journal_add(s, migration_id, domain, step, outcome, detail, err);
}

static int journal_row(sqlite3_stmt *st, vgm_journal_entry *e)
{
	bool ok = true;
	e->id = sqlite3_column_int64(st, 0);
	e->time = sqlite3_column_int64(st, 1);
	e->migration_id = store_column_strdup(st, 2, &ok);
	e->domain = store_column_strdup(st, 3, &ok);
	e->step = store_column_strdup(st, 4, &ok);
	e->outcome = store_column_strdup(st, 5, &ok);
	e->detail = store_column_strdup(st, 6, &ok);
	return ok ? 0 : -ENOMEM;
}

int vgm_journal_list(vgm_store *s, const char *migration_id, size_t limit,
		     vgm_journal_entry **out, size_t *n, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT id, time, migration_id, domain, step, outcome, detail"
			      " FROM journal WHERE ?1 IS NULL OR migration_id = ?1"
			      " ORDER BY id DESC LIMIT ?2",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, migration_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : 100);
	vgm_journal_entry *v = NULL;
	size_t k = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_journal_entry *g = realloc(v, (k + 1) * sizeof(*v));
		if (!g)
			break;
		v = g;
		memset(&v[k], 0, sizeof(v[k]));
		if (journal_row(st, &v[k++]) < 0)
			break;
	}
	if (r != SQLITE_DONE) {
		vgm_journal_free(v, k);
		if (r == SQLITE_ROW)
			return vgm_error_set(err, ENOMEM, "out of memory");
		return store_sql_error(s, err, "reading the journal");
	}
	*out = v;
	*n = k;
	return 0;
}

void vgm_journal_free(vgm_journal_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].migration_id);
		free(e[i].domain);
		free(e[i].step);
		free(e[i].outcome);
		free(e[i].detail);
	}
	free(e);
}
