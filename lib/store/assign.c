/* assign.c: assignments, the devices a committed claim handed to a domain.
 *
 * An assignment lives until the domain leaves this host (source side after
 * a successful migration) or its claim is released.  Freeing one drops the
 * ownership in the same transaction; the devices this agent created are then
 * removed from sysfs when remove_released is set, or handed to the pool (their
 * devices_created rows deleted, so reconcile never removes them) when not. */
#include <string.h>

#include "store-internal.h"
#include "util/validate.h"

static int assignment_row(sqlite3_stmt *st, vgm_assignment *a)
{
	bool ok = true;
	a->device_id = store_column_strdup(st, 0, &ok);
	a->domain_uuid = store_column_strdup(st, 1, &ok);
	a->domain_name = store_column_strdup(st, 2, &ok);
	a->since = sqlite3_column_int64(st, 3);
	a->from_claim = store_column_strdup(st, 4, &ok);
	return ok ? 0 : -ENOMEM;
}

int vgm_assignments_list(vgm_store *s, vgm_assignment **out, size_t *n, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT device_id, domain_uuid, domain_name, since, from_claim"
			      " FROM assignments ORDER BY device_id",
			      &st, err);
	if (r < 0)
		return r;
	vgm_assignment *v = NULL;
	size_t k = 0;
	int fail = 0;
	while (fail == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_assignment *g = realloc(v, (k + 1) * sizeof(*v));
		if (!g) {
			fail = -ENOMEM;
			break;
		}
		v = g;
		memset(&v[k], 0, sizeof(v[k]));
		fail = assignment_row(st, &v[k++]);
	}
	if (fail < 0 || r != SQLITE_DONE) {
		vgm_assignments_free(v, k);
		return fail < 0 ? vgm_error_set(err, ENOMEM, "out of memory")
				: store_sql_error(s, err, "reading assignments");
	}
	*out = v;
	*n = k;
	return 0;
}

void vgm_assignments_free(vgm_assignment *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		free(a[i].device_id);
		free(a[i].domain_uuid);
		free(a[i].domain_name);
		free(a[i].from_claim);
	}
	free(a);
}

static int run_for_domain(vgm_store *s, const char *sql, const char *du, const char *what,
			  vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, du, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, store_now(s));
	return store_step_done(s, st, what, err);
}

static int release_domain_tx(vgm_store *s, const char *du, size_t n, vgm_error *err)
{
	int r = 0;
	if (!s->remove_released)
		r = run_for_domain(s,
				   "DELETE FROM devices_created WHERE id IN"
				   " (SELECT device_id FROM assignments WHERE domain_uuid = ?1)",
				   du, "keeping released devices", err);
	if (r == 0)
		r = run_for_domain(s, "DELETE FROM assignments WHERE domain_uuid = ?1", du,
				   "freeing a domain's assignments", err);
	/* A committed claim whose every device is free again is over. */
	if (r == 0)
		r = run_for_domain(s,
				   "UPDATE claims SET state = 'released', updated_at = ?2"
				   " WHERE domain_uuid = ?1"
				   " AND state = 'committed' AND NOT EXISTS (SELECT 1 FROM assignments"
				   " WHERE from_claim = claims.claim_id)",
				   du, "closing committed claims", err);
	if (r == 0) {
		char detail[64];
		snprintf(detail, sizeof(detail), "%zu device(s) freed", n);
		r = store_journal_add(s, NULL, du, "release-domain", "ok", detail, err);
	}
	return r;
}

/* 1 when assignments were freed (devices may wait for removal). */
static int release_domain_locked(vgm_store *s, const char *du, size_t *n_released,
				 vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	size_t n = 0;
	int r = store_count(s, "SELECT count(*) FROM assignments WHERE domain_uuid = ?1", du, &n, err);
	if (r < 0)
		return r;
	if (n_released)
		*n_released = n;
	if (n == 0)
		return 0;
	r = store_begin(s, err);
	if (r == 0)
		r = release_domain_tx(s, du, n, err);
	if (r == 0)
		r = store_commit(s, err);
	else
		store_rollback(s);
	return r < 0 ? r : 1;
}

int vgm_assignment_release_domain(vgm_store *s, vgm_host *h, const char *domain_uuid,
				  size_t *n_released, vgm_error *err)
{
	int r = vgm_check_uuid("domain uuid", domain_uuid, err);
	if (r < 0)
		return r;
	char du[VGM_UUID_LEN + 1];
	vgm_id_normalize(domain_uuid, du, sizeof(du));
	r = release_domain_locked(s, du, n_released, err);
	if (r <= 0)
		return r;
	/* Outside the lock: removal.c keeps what a domain uses. */
	return store_removal_pass(s, h, NULL, NULL, err);
}
