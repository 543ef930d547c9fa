/* claim-rows.c: claims as C objects: reading them from the database, freeing
 * them, and the read-only queries (get, list, find by domain).
 *
 * Invariants: a vgm_claim returned to a caller is a complete copy (its
 * devices in request order) taken under the store lock; the caller owns it.
 * An array of one claim is also a claim, so single lookups reuse
 * claims_select and the result is freed with vgm_claim_free. */
#include <string.h>

#include "store-internal.h"
#include "util/validate.h"

static const char *const state_names[] = {"pending", "held", "committed", "released",
					  "expired"};

const char *vgm_claim_state_to_string(vgm_claim_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "unknown";
}

vgm_claim_state claim_state_from_string(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(state_names); i++)
		if (STREQ(s, state_names[i]))
			return (vgm_claim_state)i;
	return VGM_CLAIM_RELEASED;
}

static vgm_backend kind_from_string(const char *s)
{
	return s && STREQ(s, "vf") ? VGM_BACKEND_VF : VGM_BACKEND_MDEV;
}

/* ---- claim objects ---- */

static void claim_devices_free(vgm_claim_device *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++) {
		free(d[i].source_id);
		free(d[i].target_id);
		free(d[i].profile_name);
		free(d[i].type_id);
	}
	free(d);
}

static void claim_clear(vgm_claim *c)
{
	free(c->claim_id);
	free(c->migration_id);
	free(c->domain_uuid);
	free(c->domain_name);
	free(c->source_host);
	claim_devices_free(c->devices, c->n_devices);
}

void vgm_claim_free(vgm_claim *c)
{
	if (!c)
		return;
	claim_clear(c);
	free(c);
}

void vgm_claims_free(vgm_claim *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		claim_clear(&c[i]);
	free(c);
}

#define CLAIM_COLUMNS                                                                              \
	"claim_id, migration_id, domain_uuid, domain_name, source_host, state, created_at,"       \
	" coalesce(expires_at, 0), updated_at, in_flight_at IS NOT NULL"

static int claim_row(sqlite3_stmt *st, vgm_claim *c)
{
	bool ok = true;
	c->claim_id = store_column_strdup(st, 0, &ok);
	c->migration_id = store_column_strdup(st, 1, &ok);
	c->domain_uuid = store_column_strdup(st, 2, &ok);
	c->domain_name = store_column_strdup(st, 3, &ok);
	c->source_host = store_column_strdup(st, 4, &ok);
	c->state = claim_state_from_string((const char *)sqlite3_column_text(st, 5));
	c->created_at = sqlite3_column_int64(st, 6);
	c->expires_at = sqlite3_column_int64(st, 7);
	c->updated_at = sqlite3_column_int64(st, 8);
	c->in_flight = sqlite3_column_int(st, 9) != 0;
	return ok ? 0 : -ENOMEM;
}

static int claim_device_row(sqlite3_stmt *st, vgm_claim_device *d)
{
	bool ok = true;
	d->source_id = store_column_strdup(st, 0, &ok);
	d->target_id = store_column_strdup(st, 1, &ok);
	d->kind = kind_from_string((const char *)sqlite3_column_text(st, 2));
	d->profile_name = store_column_strdup(st, 3, &ok);
	d->framebuffer_bytes = (uint64_t)sqlite3_column_int64(st, 4);
	d->type_id = store_column_strdup(st, 5, &ok);
	d->created = sqlite3_column_int(st, 6) != 0;
	return ok ? 0 : -ENOMEM;
}

static int claim_load_devices(vgm_store *s, vgm_claim *c, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT source_id, target_id, kind, profile_name, framebuffer_bytes,"
			      " type_id, created_by_us FROM claim_devices WHERE claim_id = ?1"
			      " ORDER BY seq",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, c->claim_id, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_claim_device *g = realloc(c->devices, (c->n_devices + 1) * sizeof(*g));
		if (!g)
			return vgm_error_set(err, ENOMEM, "out of memory");
		c->devices = g;
		memset(&g[c->n_devices], 0, sizeof(*g));
		if (claim_device_row(st, &g[c->n_devices++]) < 0)
			return vgm_error_set(err, ENOMEM, "out of memory");
	}
	if (r != SQLITE_DONE)
		return store_sql_error(s, err, "reading a claim's devices");
	return 0;
}

/* Load claims matching a WHERE clause with one text parameter. */
static int claims_select(vgm_store *s, const char *where, const char *param, vgm_claim **out,
			 size_t *n, vgm_error *err)
{
	_cleanup_free_ char *sql = NULL;
	if (asprintf(&sql, "SELECT " CLAIM_COLUMNS " FROM claims %s", where) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	vgm_claim *v = NULL;
	size_t k = 0;
	int fail = 0;
	while (fail == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
		vgm_claim *g = realloc(v, (k + 1) * sizeof(*v));
		if (!g) {
			fail = vgm_error_set(err, ENOMEM, "out of memory");
			break;
		}
		v = g;
		memset(&v[k], 0, sizeof(v[k]));
		if (claim_row(st, &v[k++]) < 0)
			fail = vgm_error_set(err, ENOMEM, "out of memory");
		else
			fail = claim_load_devices(s, &v[k - 1], err);
	}
	if (fail < 0 || r != SQLITE_DONE) {
		vgm_claims_free(v, k);
		return fail < 0 ? fail : store_sql_error(s, err, "reading claims");
	}
	*out = v;
	*n = k;
	return 0;
}

int claim_load(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err)
{
	vgm_claim *v = NULL;
	size_t n = 0;
	int r = claims_select(s, "WHERE claim_id = ?1", claim_id, &v, &n, err);
	if (r < 0)
		return r;
	if (n == 0) {
		free(v);
		return vgm_error_setr(err, ENOENT, "not_found",
				      "no claim %s on %s; list claims with 'vgpumig claims'", claim_id,
				      s->host_name);
	}
	*out = v; /* an array of one is a claim */
	return 0;
}

int claim_set_state(vgm_store *s, const char *claim_id, vgm_claim_state st, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = store_prepare(s,
			      "UPDATE claims SET state = ?2, updated_at = ?3,"
			      " expires_at = CASE WHEN ?2 = 'held' THEN expires_at END"
			      " WHERE claim_id = ?1",
			      &q, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(q, 1, claim_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, vgm_claim_state_to_string(st), -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, store_now(s));
	return store_step_done(s, q, "changing a claim's state", err);
}

const char *vgm_claim_stage(const vgm_claim *c)
{
	if (c->state == VGM_CLAIM_HELD && c->in_flight)
		return "in_flight";
	return vgm_claim_state_to_string(c->state);
}

int claim_load_outside(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err)
{
	char id[VGM_UUID_LEN + 1];
	int r = vgm_check_uuid("claim id", claim_id, err);
	if (r < 0)
		return r;
	vgm_id_normalize(claim_id, id, sizeof(id));
	return claim_load(s, id, out, err);
}

int vgm_claims_mark_in_flight(vgm_store *s, const char *claim_id, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	int r = claim_load_outside(s, claim_id, &c, err);
	if (r < 0)
		return r;
	const char *id = c->claim_id;
	if (c->state == VGM_CLAIM_RELEASED || c->state == VGM_CLAIM_EXPIRED)
		return vgm_error_setr(err, ESTALE, "claim_finished", "claim %s on %s is %s", id,
				      s->host_name, vgm_claim_state_to_string(c->state));
	if (c->state != VGM_CLAIM_HELD || c->in_flight)
		return 0;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	r = store_prepare(s, "UPDATE claims SET in_flight_at = ?2, updated_at = ?2 WHERE claim_id = ?1",
			  &q, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, store_now(s));
	r = store_step_done(s, q, "marking a claim in flight", err);
	if (r >= 0)
		r = store_journal_add(s, c->migration_id, c->domain_name, "in_flight", "ok", id, err);
	return r;
}

/* ---- queries ---- */

int vgm_claims_get(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	return claim_load_outside(s, claim_id, out, err);
}

int vgm_claims_list(vgm_store *s, bool all, vgm_claim **out, size_t *n, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	return claims_select(s,
			     all ? "ORDER BY created_at DESC, rowid DESC"
				 : "WHERE state IN ('pending','held','committed')"
				   " ORDER BY created_at DESC, rowid DESC",
			     NULL, out, n, err);
}

int vgm_claims_find_by_domain(vgm_store *s, const char *domain_uuid, vgm_claim **out,
			      vgm_error *err)
{
	int r = vgm_check_uuid("domain uuid", domain_uuid, err);
	if (r < 0)
		return r;
	char du[VGM_UUID_LEN + 1];
	vgm_id_normalize(domain_uuid, du, sizeof(du));
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	vgm_claim *v = NULL;
	size_t n = 0;
	r = claims_select(s,
			  "WHERE domain_uuid = ?1 AND state = 'held'"
			  " ORDER BY created_at DESC, rowid DESC LIMIT 1",
			  du, &v, &n, err);
	if (r < 0)
		return r;
	if (n == 0) {
		free(v);
		return vgm_error_setr(err, ENOENT, "not_found", "no held claim for domain %s on %s",
				      du, s->host_name);
	}
	*out = v;
	return 0;
}

int store_collect_text(vgm_store *s, sqlite3_stmt *st, const char *what, char ***out, size_t *n,
		       vgm_error *err)
{
	int r;

	*out = NULL;
	*n = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		bool ok = true;
		char **g = realloc(*out, (*n + 1) * sizeof(char *));
		if (!g)
			return vgm_error_set(err, ENOMEM, "out of memory");
		*out = g;
		g[*n] = store_column_strdup(st, 0, &ok);
		if (!ok)
			return vgm_error_set(err, ENOMEM, "out of memory");
		(*n)++;
	}
	return r == SQLITE_DONE ? 0 : store_sql_error(s, err, what);
}

void store_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}
