/* evac.c: the evacuations and evacuation_vms tables (evac.h).  Every write
 * is one statement or one transaction, so a crash leaves either the old or
 * the new row, never half of a VM's update. */
#include <string.h>

#include "evac.h"
#include "store-internal.h"

void vgm_evacuation_free(vgm_evacuation *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_vms; i++) {
		vgm_evac_vm *v = &e->vms[i];
		free(v->domain_uuid);
		free(v->domain_name);
		free(v->target);
		free(v->state);
		free(v->migration_id);
		free(v->code);
		free(v->message);
	}
	free(e->vms);
	free(e->id);
	free(e->state);
	free(e->request);
	free(e);
}

static int insert_vm(vgm_store *s, const char *id, size_t seq, const vgm_evac_vm *v, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO evacuation_vms(evacuation_id, domain_uuid, domain_name, seq,"
			      " pause_ms, target, state, migration_id, code, message)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v->domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, v->domain_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)seq);
	if (v->pause_ms >= 0)
		sqlite3_bind_int64(st, 5, v->pause_ms);
	sqlite3_bind_text(st, 6, v->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, v->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, v->migration_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, v->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, v->message, -1, SQLITE_STATIC);
	return store_step_done(s, st, "recording an evacuated VM", err);
}

static int insert_evac(vgm_store *s, const vgm_evacuation *e, vgm_error *err)
{
	size_t running = 0;
	int r = store_count(s, "SELECT count(*) FROM evacuations WHERE state = ?1", "running",
			    &running, err);
	if (r < 0)
		return r;
	if (running > 0)
		return vgm_error_setr(err, EBUSY, "evacuation_running",
				      "an evacuation of this host is still running; follow it with 'vgpumig evacuate --status' or wait for it");
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if ((r = store_prepare(s,
			       "INSERT INTO evacuations(evacuation_id, state, request, created_at, updated_at)"
			       " VALUES (?1, ?2, ?3, ?4, ?4)",
			       &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->request, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now(s));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT)
		return vgm_error_setr(err, EEXIST, "exists", "evacuation %s exists already", e->id);
	return rc == SQLITE_DONE ? 0 : store_sql_error(s, err, "recording an evacuation");
}

int vgm_evac_create(vgm_store *s, const vgm_evacuation *e, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	int r = store_begin(s, err);
	if (r < 0)
		return r;
	r = insert_evac(s, e, err);
	for (size_t i = 0; r >= 0 && i < e->n_vms; i++)
		r = insert_vm(s, e->id, i, &e->vms[i], err);
	if (r >= 0)
		r = store_commit(s, err);
	if (r < 0)
		store_rollback(s);
	return r;
}

int vgm_evac_set_state(vgm_store *s, const char *id, const char *state, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "UPDATE evacuations SET state = ?2, updated_at = ?3 WHERE evacuation_id = ?1",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, store_now(s));
	return store_step_done(s, st, "updating an evacuation", err);
}

int vgm_evac_vm_set(vgm_store *s, const char *id, const vgm_evac_vm *v, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "UPDATE evacuation_vms SET target = ?3, state = ?4, migration_id = ?5,"
			      " code = ?6, message = ?7 WHERE evacuation_id = ?1 AND domain_uuid = ?2",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v->domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, v->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, v->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, v->migration_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, v->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, v->message, -1, SQLITE_STATIC);
	return store_step_done(s, st, "updating an evacuated VM", err);
}

static int load_vms(vgm_store *s, vgm_evacuation *e, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT domain_uuid, domain_name, target, state, migration_id, code, message,"
			      " coalesce(pause_ms, -1) FROM evacuation_vms WHERE evacuation_id = ?1 ORDER BY seq",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	bool ok = true;
	while (ok && (r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_evac_vm *g = realloc(e->vms, (e->n_vms + 1) * sizeof(*g));
		if (!g)
			return vgm_error_set(err, ENOMEM, "out of memory");
		e->vms = g;
		vgm_evac_vm *v = &g[e->n_vms++];
		*v = (vgm_evac_vm){ store_column_strdup(st, 0, &ok), store_column_strdup(st, 1, &ok),
				    store_column_strdup(st, 2, &ok), store_column_strdup(st, 3, &ok),
				    store_column_strdup(st, 4, &ok), store_column_strdup(st, 5, &ok),
				    store_column_strdup(st, 6, &ok), sqlite3_column_int64(st, 7) };
	}
	if (!ok)
		return vgm_error_set(err, ENOMEM, "out of memory");
	return r == SQLITE_DONE ? 0 : store_sql_error(s, err, "reading an evacuation");
}

int vgm_evac_get(vgm_store *s, const char *id, vgm_evacuation **out, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = calloc(1, sizeof(*e));
	*out = NULL;
	int r = e ? store_prepare(s,
				  "SELECT evacuation_id, state, request, created_at, updated_at"
				  " FROM evacuations WHERE evacuation_id = ?1",
				  &st, err)
		  : vgm_error_set(err, ENOMEM, "out of memory");
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(st)) != SQLITE_ROW)
		return r == SQLITE_DONE ? vgm_error_setr(err, ENOENT, "not_found",
							 "no evacuation '%s' on this host", id)
					: store_sql_error(s, err, "reading an evacuation");
	bool ok = true;
	e->id = store_column_strdup(st, 0, &ok);
	e->state = store_column_strdup(st, 1, &ok);
	e->request = store_column_strdup(st, 2, &ok);
	e->created_at = sqlite3_column_int64(st, 3);
	e->updated_at = sqlite3_column_int64(st, 4);
	if (!ok)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((r = load_vms(s, e, err)) < 0)
		return r;
	*out = TAKE_PTR(e);
	return 0;
}

int vgm_evac_list(vgm_store *s, const char *state, char ***ids, size_t *n, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT evacuation_id FROM evacuations WHERE ?1 IS NULL OR state = ?1"
			      " ORDER BY created_at DESC, rowid DESC",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	return store_collect_text(s, st, "listing evacuations", ids, n, err);
}
