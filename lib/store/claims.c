/* claims.c: the claims engine: reserve vGPUs for an incoming migration,
 * durably, all or nothing, and give them back.
 *
 * CRASH-SAFETY PROTOCOL (a SIGKILL between any two lines leaves state that
 * vgm_reconcile repairs; reconcile runs at agent start, under the same lock):
 *
 *   claim
 *   C1. Under s->lock: read sysfs (or the cached copy, invcache.c), read the
 *       owned set, choose (choose.c).
 *       Nothing written yet: a crash here leaves nothing.
 *   C2. One transaction: claims row in state 'pending', its claim_devices
 *       (the triggers make the targets owned, so nobody else can choose
 *       them), and a devices_created row in state 'creating' for each device
 *       to create.  COMMIT (synchronous=FULL: on disk).  The intent is now
 *       durable BEFORE any sysfs write.
 *   C3. Create the devices in sysfs, one by one, WITHOUT s->lock (a slow
 *       create must not stall other claims, releases or hook answers); the
 *       claim id sits in s->creating meanwhile, so reconcile, a retry of the
 *       same migration and a release leave it alone, and the inventory cache
 *       already counts the devices, so other plans do not count on the room
 *       they take.  A crash here leaves a pending claim: reconcile deletes it
 *       and the removal pass removes every device recorded for it ('creating'
 *       or not; a missing one is fine).
 *   C4. One transaction: devices_created -> 'present', claim -> 'held' with
 *       expires_at, a journal row.  COMMIT.  Only now does the call return,
 *       so a reply never names a claim that is not durable.
 *   A claim that creates nothing (existing instances only) is written as
 *   'held' in C2 directly: there is no sysfs step to protect.
 *   A failure in C3 or C4 undoes in the same order reconcile would: delete
 *   the pending claim (undo_pending), then remove what was created, outside
 *   the lock (removal.c).
 *
 *   release (held)     R1. COMMIT claim -> 'released' (ownership drops with
 *                      it).  R2. without the lock, remove the devices created
 *                      for it from sysfs and their devices_created rows
 *                      (removal.c: never one a domain uses).  A crash between
 *                      R1 and R2 leaves created-but-unowned devices, which
 *                      reconcile removes.
 *   commit (held)      one transaction: claim -> 'committed', one
 *                      assignments row per device (ownership moves from the
 *                      claim to the assignment inside it), journal row.
 *
 * Invariants: a device has at most one owner, enforced by device_owners'
 * primary key (schema.c); every sysfs creation is preceded by a durable
 * devices_created row; a claim is only 'held' once all its devices exist;
 * claim decisions are serialised by s->lock, so two claims never choose
 * from the same snapshot; a devices_created row is never handed out (it is
 * ours and owned, or waiting to be removed); when in_use cannot tell which
 * devices domains use, no existing instance is handed out either. */
#include <string.h>

#include "choose.h"
#include "store-internal.h"
#include "util/validate.h"

/* ---- request checks ---- */

static int check_text(const char *what, const char *v, size_t max, vgm_error *err)
{
	if (!v || !v[0])
		return vgm_error_setr(err, EINVAL, "invalid_request", "the claim request has no %s",
				      what);
	if (strlen(v) > max)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "the claim request's %s is longer than %zu characters", what, max);
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return vgm_error_setr(err, EINVAL, "invalid_request",
					      "the claim request's %s contains control characters",
					      what);
	return 0;
}

static int check_device(const vgm_claim_request *req, size_t i, vgm_error *err)
{
	const vgm_claim_device_req *d = &req->devices[i];
	int r = d->kind == VGM_BACKEND_VF ? vgm_check_pci_addr("source VF", d->source_id, err)
					   : vgm_check_uuid("source vGPU", d->source_id, err);
	if (r == 0)
		r = check_text("profile name", d->profile_name, 128, err);
	if (r == 0 && d->type_id && d->type_id[0])
		r = vgm_check_name("source type id", d->type_id, err);
	for (size_t j = 0; r == 0 && j < i; j++)
		if (strcasecmp(req->devices[j].source_id, d->source_id) == 0)
			r = vgm_error_setr(err, EINVAL, "invalid_request",
					   "source device %s appears twice in the claim request",
					   d->source_id);
	return r;
}

static int check_request(const vgm_claim_request *req, vgm_error *err)
{
	if (!req->migration_id || !vgm_name_valid(req->migration_id))
		return vgm_error_setr(err, EINVAL, "invalid_id",
				      "migration id '%.64s' is not valid; use 1-128 characters of "
				      "A-Z a-z 0-9 _ . : -",
				      req->migration_id ? req->migration_id : "");
	int r = vgm_check_uuid("domain uuid", req->domain_uuid, err);
	if (r == 0)
		r = check_text("domain name", req->domain_name, 255, err);
	if (r == 0)
		r = check_text("source host", req->source_host, 255, err);
	if (r == 0 && (req->n_devices == 0 || req->n_devices > VGM_CLAIM_MAX_DEVICES || !req->devices))
		r = vgm_error_setr(err, EINVAL, "invalid_request",
				   "a claim needs 1 to %d devices, not %zu", VGM_CLAIM_MAX_DEVICES,
				   req->n_devices);
	for (size_t i = 0; r == 0 && i < req->n_devices; i++)
		r = check_device(req, i, err);
	return r;
}

/* The request's identity, for idempotency: everything but the lease. */
static char *request_key(const vgm_claim_request *req)
{
	char *key = NULL, *next = NULL;
	char du[VGM_UUID_LEN + 1];
	vgm_id_normalize(req->domain_uuid, du, sizeof(du));
	if (asprintf(&key, "%s\x1f%s\x1f%s", du, req->domain_name, req->source_host) < 0)
		return NULL;
	for (size_t i = 0; i < req->n_devices; i++) {
		const vgm_claim_device_req *d = &req->devices[i];
		char sid[VGM_UUID_LEN + 1];
		vgm_id_normalize(d->source_id, sid, sizeof(sid));
		int k = asprintf(&next, "%s\x1e%s\x1f%s\x1f%s\x1f%llu\x1f%s", key, sid,
				 vgm_backend_to_string(d->kind), d->profile_name,
				 (unsigned long long)d->framebuffer_bytes,
				 d->type_id ? d->type_id : "");
		free(key);
		if (k < 0)
			return NULL;
		key = TAKE_PTR(next);
	}
	return key;
}

/* ---- who asked ---- */

/* A journal row for a change: detail is "CLAIM_ID by ACTOR". */
static int journal_by(vgm_store *s, const char *migration_id, const char *domain,
		      const char *step, const char *claim_id, const char *actor, vgm_error *err)
{
	_cleanup_free_ char *detail = NULL;
	if (asprintf(&detail, "%s by %s", claim_id, actor ? actor : "agent") < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	return store_journal_add(s, migration_id, domain, step, "ok", detail, err);
}

/* ---- C2: record the intent ---- */

static int64_t lease_end(vgm_store *s, const vgm_claim_request *req)
{
	return store_now(s) + (req->lease_seconds > 0 ? req->lease_seconds : 300);
}

/* held: no device to create, so the claim is complete in one transaction. */
static int insert_claim_row(vgm_store *s, const vgm_claim_request *req, const char *key,
			    const char *claim_id, bool held, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO claims(claim_id, migration_id, request_key, domain_uuid,"
			      " domain_name, source_host, state, created_at, expires_at, updated_at)"
			      " VALUES (?1, ?2, ?3, lower(?4), ?5, ?6, ?8, ?7, ?9, ?7)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, claim_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->migration_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, req->domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, req->domain_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, req->source_host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, store_now(s));
	sqlite3_bind_text(st, 8, held ? "held" : "pending", -1, SQLITE_STATIC);
	if (held)
		sqlite3_bind_int64(st, 9, lease_end(s, req));
	return store_step_done(s, st, "recording a claim", err);
}

static int insert_claim_device(vgm_store *s, const char *claim_id, size_t seq,
			       const vgm_claim_device_req *d, const claim_choice *c, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO claim_devices(claim_id, seq, source_id, target_id, kind,"
			      " profile_name, framebuffer_bytes, type_id, created_by_us)"
			      " VALUES (?1, ?2, lower(?3), lower(?4), ?5, ?6, ?7, ?8, ?9)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, claim_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	sqlite3_bind_text(st, 3, d->source_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->target_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, vgm_backend_to_string(d->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, d->profile_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)(c->framebuffer_bytes ? c->framebuffer_bytes
								 : d->framebuffer_bytes));
	sqlite3_bind_text(st, 8, c->type_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, c->create);
	return store_step_done(s, st, "recording a claimed device", err);
}

static int insert_created_intent(vgm_store *s, const char *claim_id, vgm_backend kind,
				 const claim_choice *c, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO devices_created(id, kind, parent, type_id, created_at,"
			      " for_claim, state) VALUES (lower(?1), ?2, ?3, ?4, ?5, ?6, 'creating')",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, c->target_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, vgm_backend_to_string(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->parent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->type_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_now(s));
	sqlite3_bind_text(st, 6, claim_id, -1, SQLITE_STATIC);
	return store_step_done(s, st, "recording a device to create", err);
}

static int record_claim(vgm_store *s, const vgm_claim_request *req, const char *key,
			const char *claim_id, const claim_choice *ch, bool held, vgm_error *err)
{
	int r = store_begin(s, err);
	if (r < 0)
		return r;
	r = insert_claim_row(s, req, key, claim_id, held, err);
	for (size_t i = 0; r == 0 && i < req->n_devices; i++) {
		r = insert_claim_device(s, claim_id, i, &req->devices[i], &ch[i], err);
		if (r == 0 && ch[i].create)
			r = insert_created_intent(s, claim_id, req->devices[i].kind, &ch[i], err);
	}
	if (r == 0 && held)
		r = journal_by(s, req->migration_id, req->domain_name, "claim", claim_id,
			       req->requested_by, err);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* ---- undo ---- */

/* Forget a pending claim.  Its devices_created rows stay (for_claim becomes
 * NULL): unowned now, they are removed by the next removal pass, outside the
 * lock, so this never waits on sysfs. */
int claim_undo_pending(vgm_store *s, const char *claim_id, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "DELETE FROM claims WHERE claim_id = ?1 AND state = 'pending'",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, claim_id, -1, SQLITE_STATIC);
	return store_step_done(s, st, "deleting a half-made claim", err);
}

/* ---- claims being created outside the lock (s->creating, under s->lock) ---- */

bool claim_is_creating(vgm_store *s, const char *claim_id)
{
	for (size_t i = 0; i < s->n_creating; i++)
		if (STREQ(s->creating[i], claim_id))
			return true;
	return false;
}

static int creating_add(vgm_store *s, const char *claim_id, vgm_error *err)
{
	char (*g)[VGM_UUID_LEN + 1] = realloc(s->creating, (s->n_creating + 1) * sizeof(*g));
	if (!g)
		return vgm_error_set(err, ENOMEM, "out of memory");
	s->creating = g;
	snprintf(g[s->n_creating++], sizeof(g[0]), "%s", claim_id);
	return 0;
}

static void creating_del(vgm_store *s, const char *claim_id)
{
	for (size_t i = 0; i < s->n_creating; i++)
		if (STREQ(s->creating[i], claim_id)) {
			memmove(&s->creating[i], &s->creating[i + 1],
				(s->n_creating - i - 1) * sizeof(s->creating[0]));
			s->n_creating--;
			return;
		}
}

static int in_progress_error(vgm_store *s, const char *claim_id, vgm_error *err)
{
	return vgm_error_setr(err, EBUSY, "claim_in_progress",
			      "claim %s on %s is still creating its vGPUs; ask again in a moment",
			      claim_id, s->host_name);
}

/* ---- C3, C4 ---- */

/* C3; the caller does NOT hold s->lock.  *done: devices before this index
 * were created by us. */
static int create_devices(vgm_store *s, vgm_host *h, const vgm_claim_request *req,
			  const claim_choice *ch, size_t *done, vgm_error *err)
{
	for (size_t i = 0; i < req->n_devices; i++) {
		*done = i;
		if (!ch[i].create)
			continue;
		const char *uuid = req->devices[i].kind == VGM_BACKEND_MDEV ? ch[i].target_id : NULL;
		_cleanup_free_ char *made = NULL;
		int r = s->devops.create(s->devops.ctx, h, ch[i].parent, ch[i].type_id, uuid, &made,
					 err);
		if (r < 0) {
			vgm_error_prefix(err, "claiming a '%s' vGPU on %s for source %s",
					 req->devices[i].profile_name, s->host_name,
					 req->devices[i].source_id);
			return r;
		}
	}
	*done = req->n_devices;
	return 0;
}

/* After a failed C3: the devices from the failed one on were not made by us
 * (a create that fails EEXIST names someone else's device): forget their
 * rows so no removal pass ever touches them. */
static void forget_uncreated(vgm_store *s, const vgm_claim_request *req, const claim_choice *ch,
			     size_t from)
{
	for (size_t i = from; i < req->n_devices; i++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (!ch[i].create || store_prepare(s, "DELETE FROM devices_created WHERE id = lower(?1)",
						   &st, NULL) < 0)
			continue;
		sqlite3_bind_text(st, 1, ch[i].target_id, -1, SQLITE_STATIC);
		(void)store_step_done(s, st, "forgetting a device not created", NULL);
	}
}

static int finish_claim(vgm_store *s, const vgm_claim_request *req, const char *claim_id,
			vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *dc = NULL, *cl = NULL;
	int r = store_begin(s, err);
	if (r == 0)
		r = store_prepare(s,
				  "UPDATE devices_created SET state = 'present' WHERE for_claim = ?1",
				  &dc, err);
	if (r == 0)
		r = store_prepare(s,
				  "UPDATE claims SET state = 'held', expires_at = ?2, updated_at = ?3"
				  " WHERE claim_id = ?1 AND state = 'pending'",
				  &cl, err);
	if (r == 0) {
		sqlite3_bind_text(dc, 1, claim_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(cl, 1, claim_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(cl, 2, lease_end(s, req));
		sqlite3_bind_int64(cl, 3, store_now(s));
		r = store_step_done(s, dc, "marking devices created", err);
	}
	if (r == 0)
		r = store_step_done(s, cl, "marking a claim held", err);
	if (r == 0)
		r = journal_by(s, req->migration_id, req->domain_name, "claim", claim_id,
			       req->requested_by, err);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* ---- claim ---- */

/* An earlier claim for this migration id: 1 with *out set when it answers the
 * request, 0 when there is none (or a crash leftover was cleared), <0 error. */
static int existing_claim(vgm_store *s, vgm_host *h, const vgm_claim_request *req,
			  const char *key, vgm_claim **out, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT claim_id, request_key, state FROM claims"
				 " WHERE migration_id = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, req->migration_id, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return 0;
	if (r != SQLITE_ROW)
		return store_sql_error(s, err, "looking up a migration's claim");
	char id[VGM_UUID_LEN + 1];
	snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 0));
	vgm_claim_state state = claim_state_from_string((const char *)sqlite3_column_text(st, 2));
	if (!STREQ((const char *)sqlite3_column_text(st, 1), key))
		return vgm_error_setr(err, EEXIST, "conflict",
				      "migration %s already has claim %s on %s for a different "
				      "request; use a new migration id", req->migration_id, id,
				      s->host_name);
	sqlite3_finalize(TAKE_PTR(st));
	if (state == VGM_CLAIM_PENDING && claim_is_creating(s, id))
		return in_progress_error(s, id, err);
	if (state == VGM_CLAIM_PENDING) {
		r = claim_undo_pending(s, id, err);
		return r < 0 ? r : 0;
	}
	if (state == VGM_CLAIM_RELEASED || state == VGM_CLAIM_EXPIRED)
		return vgm_error_setr(err, ESTALE, "claim_finished",
				      "claim %s for migration %s on %s was %s; start the migration "
				      "again with a new migration id", id, req->migration_id,
				      s->host_name, vgm_claim_state_to_string(state));
	r = claim_load(s, id, out, err);
	return r < 0 ? r : 1;
}

/* Devices no claim may get: owned ones, ours waiting to be removed, those
 * domains use, and, when in_use cannot tell (unknown), every existing
 * instance: then only new devices are handed out. */
int store_taken_ids(vgm_store *s, const vgm_inventory *inv, bool unknown,
			    const vgm_device_use *uses, size_t n_uses, char ***out, size_t *n,
			    vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT device_id FROM device_owners UNION"
				 " SELECT id FROM devices_created", &st, err);
	if (r < 0)
		return r;
	size_t cap = n_uses + 16;
	char **v = calloc(cap, sizeof(char *));
	if (!v)
		return vgm_error_set(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (; k < n_uses; k++)
		v[k] = uses[k].device_id; /* borrowed: freed with the uses */
	*out = v;
	*n = k;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			char **g = realloc(v, (cap *= 2) * sizeof(char *));
			if (!g)
				return vgm_error_set(err, ENOMEM, "out of memory");
			*out = v = g;
		}
		bool ok = true;
		v[k] = store_column_strdup(st, 0, &ok);
		if (!ok)
			return vgm_error_set(err, ENOMEM, "out of memory");
		*n = ++k;
	}
	if (r != SQLITE_DONE)
		return store_sql_error(s, err, "reading owned devices");
	for (size_t i = 0; unknown && i < inv->n_instances; i++) {
		if (k == cap) {
			char **g = realloc(v, (cap *= 2) * sizeof(char *));
			if (!g)
				return vgm_error_set(err, ENOMEM, "out of memory");
			*out = v = g;
		}
		if (!(v[k] = strdup(inv->instances[i].id)))
			return vgm_error_set(err, ENOMEM, "out of memory");
		*n = ++k;
	}
	return 0;
}

void store_taken_free(char **v, size_t n, size_t n_borrowed)
{
	for (size_t i = n_borrowed; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* C1: read sysfs and the owned set, choose. */
static bool plan_creates_all(const vgm_claim_request *req, const claim_choice *ch)
{
	for (size_t i = 0; i < req->n_devices; i++)
		if (!ch[i].create)
			return false;
	return true;
}

static int choose_from(vgm_store *s, vgm_host *h, bool fresh, bool *loaded,
		       const vgm_claim_request *req, claim_choice *ch, vgm_error *err)
{
	const vgm_inventory *inv = NULL;
	vgm_device_use *uses = NULL;
	size_t n_uses = 0, n_taken = 0;
	char **taken = NULL;
	bool unknown = false;
	int r = store_inventory_get(s, h, fresh, &inv, loaded, err);
	if (r == 0 && store_load_uses(s, &uses, &n_uses, NULL) < 0)
		unknown = true; /* cannot tell: create, never hand out what exists */
	if (r == 0)
		r = store_taken_ids(s, inv, unknown, uses, n_uses, &taken, &n_taken, err);
	if (r == 0)
		r = claim_choose(inv, (const char *const *)taken, n_taken, req, s->host_name, ch,
				 err);
	store_taken_free(taken, n_taken, n_uses);
	vgm_device_uses_free(uses, n_uses);
	return r;
}

/* C1.  A plan made from the cached inventory is trusted only when it creates
 * every device (a creation that races with someone else fails cleanly); a
 * plan that hands out existing instances, or a refusal, is made again from a
 * fresh read of sysfs, so neither rests on a stale view. */
static int plan_claim(vgm_store *s, vgm_host *h, const vgm_claim_request *req, claim_choice *ch,
		      bool *from_cache, vgm_error *err)
{
	bool loaded = false;
	int r = choose_from(s, h, false, &loaded, req, ch, err);
	*from_cache = !loaded;
	if (loaded || (r == 0 && plan_creates_all(req, ch)))
		return r;
	*from_cache = false;
	if (r == 0)
		claim_choices_clear(ch, req->n_devices);
	vgm_error_clear(err);
	return choose_from(s, h, true, &loaded, req, ch, err);
}

/* Note the creations in the cache before they happen, so plans made while
 * the lock is down count the room they take. */
static void note_creations(vgm_store *s, const vgm_claim_request *req, const claim_choice *ch)
{
	for (size_t i = 0; i < req->n_devices; i++)
		if (ch[i].create)
			store_inventory_note_create(s, ch[i].target_id, ch[i].parent, ch[i].type_id);
}

/* C3 without the lock, then C4 (or the undo) with it again.  *undone: the
 * claim was deleted and its devices wait for the removal pass. */
static int create_unlocked(vgm_store *s, vgm_host *h, const vgm_claim_request *req,
			   const char *claim_id, const claim_choice *ch, bool *undone,
			   vgm_error *err)
{
	int r = creating_add(s, claim_id, err);
	if (r < 0) {
		*undone = claim_undo_pending(s, claim_id, NULL) == 0;
		return r;
	}
	note_creations(s, req, ch);
	pthread_mutex_unlock(&s->lock);
	size_t done = 0;
	r = create_devices(s, h, req, ch, &done, err);
	pthread_mutex_lock(&s->lock);
	creating_del(s, claim_id);
	if (r < 0) {
		store_inventory_suspect(s);
		forget_uncreated(s, req, ch, done);
	}
	if (r == 0)
		r = finish_claim(s, req, claim_id, err);
	/* The caller reports the first error; a failing undo is left to
	 * reconcile (the claim is still pending, so it will be found). */
	if (r < 0)
		*undone = claim_undo_pending(s, claim_id, NULL) == 0;
	return r;
}

/* *stale is set when the kernel refused a creation that a plan made from the
 * cached inventory allowed (someone created a vGPU behind our back); the
 * claim was undone and may be tried again from a fresh read. */
static int make_claim(vgm_store *s, vgm_host *h, const vgm_claim_request *req, const char *key,
		      vgm_claim **out, bool *stale, bool *undone, vgm_error *err)
{
	claim_choice ch[VGM_CLAIM_MAX_DEVICES] = {0};
	char claim_id[VGM_UUID_LEN + 1];
	bool from_cache = false;
	int r = plan_claim(s, h, req, ch, &from_cache, err);
	if (r < 0)
		return r;
	if (vgm_uuid_generate(claim_id) < 0)
		r = vgm_error_set(err, EIO, "could not generate a claim id");
	bool create = false;
	for (size_t i = 0; i < req->n_devices; i++)
		create |= ch[i].create;
	if (r == 0)
		r = record_claim(s, req, key, claim_id, ch, !create, err);
	if (r == 0 && create) {
		r = create_unlocked(s, h, req, claim_id, ch, undone, err);
		*stale = from_cache && (r == -ENOSPC || r == -EEXIST || r == -EBUSY);
	}
	claim_choices_clear(ch, req->n_devices);
	if (r < 0)
		return r;
	return claim_load(s, claim_id, out, err);
}

/* A cordoned host takes no new claim; a repeated request for a claim made
 * before the cordon still gets its answer (existing_claim comes first). */
static int refuse_if_cordoned(vgm_store *s, vgm_error *err)
{
	bool cordoned = false;
	_cleanup_free_ char *why = NULL;
	int r = store_cordon_get(s, &cordoned, &why, err);
	if (r < 0 || !cordoned)
		return r;
	return vgm_error_setr(err, EBUSY, "host_cordoned",
			      "host '%s' is cordoned%s%s%s and accepts no incoming migration; run "
			      "'vgpumig host uncordon' on %s first",
			      s->host_name, why ? " (" : "", why ? why : "", why ? ")" : "",
			      s->host_name);
}

static int claim_locked(vgm_store *s, vgm_host *h, const vgm_claim_request *req,
			const char *key, vgm_claim **out, bool *undone, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	int r = existing_claim(s, h, req, key, out, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = refuse_if_cordoned(s, err);
	if (r < 0)
		return r;
	bool stale = false;
	r = make_claim(s, h, req, key, out, &stale, undone, err);
	if (r < 0 && stale) {
		/* Plan once more from a view checked against sysfs before refusing. */
		store_inventory_suspect(s);
		vgm_error_clear(err);
		r = make_claim(s, h, req, key, out, &stale, undone, err);
	}
	return r;
}

int vgm_claims_claim(vgm_store *s, vgm_host *h, const vgm_claim_request *req, vgm_claim **out,
		     vgm_error *err)
{
	int r = check_request(req, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *key = request_key(req);
	if (!key)
		return vgm_error_set(err, ENOMEM, "out of memory");
	bool undone = false;
	r = claim_locked(s, h, req, key, out, &undone, err);
	if (undone) /* what a failed claim created goes now, not at the next reconcile */
		(void)store_removal_pass(s, h, NULL, NULL, NULL);
	return r;
}

/* ---- commit ---- */

static int insert_assignment(vgm_store *s, const vgm_claim *c, const vgm_claim_device *d,
			     vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "INSERT INTO assignments(device_id, domain_uuid, domain_name, since,"
			      " from_claim) VALUES (?1, ?2, ?3, ?4, ?5)",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, d->target_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->domain_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->domain_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now(s));
	sqlite3_bind_text(st, 5, c->claim_id, -1, SQLITE_STATIC);
	return store_step_done(s, st, "recording an assignment", err);
}

static int commit_tx_by(vgm_store *s, const vgm_claim *c, const char *actor, vgm_error *err)
{
	int r = claim_set_state(s, c->claim_id, VGM_CLAIM_COMMITTED, err);
	for (size_t i = 0; r == 0 && i < c->n_devices; i++)
		r = insert_assignment(s, c, &c->devices[i], err);
	if (r == 0)
		r = journal_by(s, c->migration_id, c->domain_name, "commit", c->claim_id, actor, err);
	return r;
}

int claim_commit_tx(vgm_store *s, const vgm_claim *c, vgm_error *err)
{
	return commit_tx_by(s, c, "reconcile", err);
}

static int finished_error(vgm_store *s, const vgm_claim *c, vgm_error *err)
{
	return vgm_error_setr(err, ESTALE, "claim_finished",
			      "claim %s on %s is %s; it can no longer be committed, start the "
			      "migration again", c->claim_id, s->host_name,
			      c->state == VGM_CLAIM_PENDING ? "unfinished (agent restarted)"
							    : vgm_claim_state_to_string(c->state));
}

/* A claim named by outside input, on behalf of who: a claim another owner
 * holds does not exist for them. */
static int claim_load_for(vgm_store *s, const char *claim_id, const vgm_claim_caller *who,
			  vgm_claim **out, vgm_error *err)
{
	int r = claim_load_outside(s, claim_id, out, err);
	if (r < 0 || !who || !who->owner || STREQ((*out)->source_host, who->owner))
		return r;
	vgm_claim_free(*out);
	*out = NULL;
	return vgm_error_setr(err, ENOENT, "not_found", "no claim %s for %s on %s", claim_id,
			      who->owner, s->host_name);
}

int vgm_claims_commit(vgm_store *s, vgm_host *h, const char *claim_id, vgm_error *err)
{
	return vgm_claims_commit_as(s, h, claim_id, NULL, err);
}

int vgm_claims_commit_as(vgm_store *s, vgm_host *h, const char *claim_id,
			 const vgm_claim_caller *who, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	int r = claim_load_for(s, claim_id, who, &c, err);
	if (r < 0)
		return r;
	if (c->state == VGM_CLAIM_COMMITTED)
		return 0;
	if (c->state == VGM_CLAIM_PENDING && claim_is_creating(s, c->claim_id))
		return in_progress_error(s, c->claim_id, err);
	if (c->state != VGM_CLAIM_HELD)
		return finished_error(s, c, err);
	r = store_begin(s, err);
	if (r == 0)
		r = commit_tx_by(s, c, who ? who->actor : NULL, err);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* ---- release ---- */

static int release_tx(vgm_store *s, const vgm_claim *c, const char *actor, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_begin(s, err);
	if (r == 0 && c->state == VGM_CLAIM_COMMITTED) {
		r = store_prepare(s, "DELETE FROM assignments WHERE from_claim = ?1", &st, err);
		if (r == 0) {
			sqlite3_bind_text(st, 1, c->claim_id, -1, SQLITE_STATIC);
			r = store_step_done(s, st, "freeing a claim's assignments", err);
		}
	}
	if (r == 0 && c->state == VGM_CLAIM_COMMITTED && !s->remove_released) {
		/* kept devices become the pool's: no longer ours to remove */
		sqlite3_finalize(TAKE_PTR(st));
		r = store_prepare(s, "DELETE FROM devices_created WHERE for_claim = ?1", &st, err);
		if (r == 0) {
			sqlite3_bind_text(st, 1, c->claim_id, -1, SQLITE_STATIC);
			r = store_step_done(s, st, "keeping released devices", err);
		}
	}
	if (r == 0)
		r = claim_set_state(s, c->claim_id, VGM_CLAIM_RELEASED, err);
	if (r == 0)
		r = journal_by(s, c->migration_id, c->domain_name, "release", c->claim_id, actor, err);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* R1; id gets the claim's normalised id, or "" when its devices lost the
 * link to it (a half-made claim deleted). */
static int release_locked(vgm_store *s, const char *claim_id, const vgm_claim_caller *who,
			  char id[VGM_UUID_LEN + 1], vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	int r = claim_load_for(s, claim_id, who, &c, err);
	if (r < 0)
		return r;
	snprintf(id, VGM_UUID_LEN + 1, "%s", c->claim_id);
	if (c->state == VGM_CLAIM_COMMITTED && who && who->keep_committed)
		return vgm_error_setr(err, EBUSY, "claim_committed",
				      "claim %s on %s is committed: domain %s runs on its vGPUs; only "
				      "%s's own agent ends that, once libvirt shows the domain has left",
				      c->claim_id, s->host_name, c->domain_name, s->host_name);
	if (c->state == VGM_CLAIM_PENDING && claim_is_creating(s, c->claim_id))
		return in_progress_error(s, c->claim_id, err);
	if (c->state == VGM_CLAIM_PENDING) {
		id[0] = '\0';
		return claim_undo_pending(s, c->claim_id, err);
	}
	if (c->state != VGM_CLAIM_RELEASED && c->state != VGM_CLAIM_EXPIRED)
		return release_tx(s, c, who ? who->actor : NULL, err);
	return 0;
}

int vgm_claims_release(vgm_store *s, vgm_host *h, const char *claim_id, vgm_error *err)
{
	return vgm_claims_release_as(s, h, claim_id, NULL, err);
}

int vgm_claims_release_as(vgm_store *s, vgm_host *h, const char *claim_id,
			  const vgm_claim_caller *who, vgm_error *err)
{
	char id[VGM_UUID_LEN + 1];
	int r = release_locked(s, claim_id, who, id, err);
	if (r < 0)
		return r;
	/* R2, also on a repeated release: finish removals an earlier one left. */
	return store_removal_pass(s, h, id[0] ? id : NULL, NULL, err);
}
