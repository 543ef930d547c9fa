/* reconcile.c: make the store and sysfs agree, and run out leases.
 *
 * Runs at agent start and on the agent's housekeeping timer.  Steps 1-4 and
 * 6 run under the same lock as claims; a 'pending' claim here was left by a
 * process that died (the state dir lock rules out a second live agent)
 * unless it is in s->creating, being made right now with the lock down, and
 * then it is left alone.  Steps, in this order:
 *   1. pending claims: deleted (their devices are unowned now, for step 5);
 *   2. held claims past their lease: expired (or committed when the domain
 *      is already running on every one of their devices);
 *   3. owned devices (claim or assignment) gone from sysfs: the assignment is
 *      dropped, a held claim is released (it can no longer be served);
 *   4. devices_created rows whose device is gone: dropped;
 *   6. finished claims and journal rows older than the retention: pruned;
 *   5. last, with the lock down: devices we created that nothing owns are
 *      removed from sysfs by the removal pass (removal.c), which keeps every
 *      device a domain uses and removes nothing when in_use cannot tell.
 * Devices in sysfs that this agent did not create are never touched.  If
 * sysfs shows no vGPU parent at all (driver not loaded, emulator not
 * mounted), steps 3-5 are skipped rather than read as "everything vanished". */
#include <string.h>

#include "store-internal.h"

void vgm_reconcile_report_clear(vgm_reconcile_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_actions; i++)
		free(r->actions[i]);
	free(r->actions);
	memset(r, 0, sizeof(*r));
}

typedef struct rc_ctx {
	vgm_store *s;
	vgm_host *h;
	vgm_reconcile_report *rep;
	store_actions act;
	const vgm_inventory *inv;
	const vgm_device_use *uses;
	size_t n_uses;
} rc_ctx;

/* Text column 0 of every row of a query with an optional int64 parameter. */
static int select_ids(vgm_store *s, const char *sql, int64_t param, char ***out, size_t *n,
		      vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, param);
	return store_collect_text(s, st, "reading the store", out, n, err);
}

static int exec_bind(vgm_store *s, const char *sql, const char *a, int64_t b, const char *what,
		     vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	return store_step_done(s, st, what, err);
}

/* ---- 1. half-made claims ---- */

static int drop_pending(rc_ctx *c, vgm_error *err)
{
	char **ids = NULL;
	size_t n = 0;
	int r = select_ids(c->s, "SELECT claim_id FROM claims WHERE state = 'pending'", 0, &ids, &n,
			   err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (claim_is_creating(c->s, ids[i]))
			continue;
		r = claim_undo_pending(c->s, ids[i], err);
		if (r == 0) {
			c->rep->pending_dropped++;
			store_action(&c->act, "deleted half-made claim %s (agent stopped while "
					      "making it)", ids[i]);
		}
	}
	store_strv_free(ids, n);
	return r;
}

/* ---- 2. leases ---- */

static bool domain_runs_claim(const rc_ctx *c, const vgm_claim *cl)
{
	if (c->n_uses == 0 || cl->n_devices == 0)
		return false;
	for (size_t i = 0; i < cl->n_devices; i++) {
		bool used = false;
		for (size_t j = 0; j < c->n_uses && !used; j++)
			used = c->uses[j].device_id && c->uses[j].domain_uuid &&
			       strcasecmp(c->uses[j].device_id, cl->devices[i].target_id) == 0 &&
			       strcasecmp(c->uses[j].domain_uuid, cl->domain_uuid) == 0;
		if (!used)
			return false;
	}
	return true;
}

static int expire_one(rc_ctx *c, const vgm_claim *cl, vgm_error *err)
{
	bool running = domain_runs_claim(c, cl);
	int r = store_begin(c->s, err);
	if (r == 0 && running)
		r = claim_commit_tx(c->s, cl, err);
	if (r == 0 && !running)
		r = claim_set_state(c->s, cl->claim_id, VGM_CLAIM_EXPIRED, err);
	if (r == 0 && !running)
		r = store_journal_add(c->s, cl->migration_id, cl->domain_name, "expire", "ok",
				      cl->claim_id, err);
	if (r < 0) {
		store_rollback(c->s);
		return r;
	}
	r = store_commit(c->s, err);
	if (r < 0)
		return r;
	if (running) {
		c->rep->auto_committed++;
		store_action(&c->act, "claim %s (migration %s) ran out its lease but domain %s "
				      "runs on its devices: committed", cl->claim_id,
			     cl->migration_id, cl->domain_name);
	} else {
		c->rep->expired++;
		store_action(&c->act, "claim %s (migration %s, domain %s) expired: lease ended "
				      "without a commit", cl->claim_id, cl->migration_id,
			     cl->domain_name);
	}
	return 0;
}

static int expire_leases(rc_ctx *c, vgm_error *err)
{
	char **ids = NULL;
	size_t n = 0;
	int r = select_ids(c->s,
			   "SELECT claim_id FROM claims WHERE state = 'held' AND expires_at <= ?1",
			   store_now(c->s), &ids, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		_cleanup_(vgm_claim_freep) vgm_claim *cl = NULL;
		r = claim_load(c->s, ids[i], &cl, err);
		if (r == 0)
			r = expire_one(c, cl, err);
	}
	store_strv_free(ids, n);
	return r;
}

/* ---- 3, 4. vanished devices ---- */

static bool in_sysfs(const rc_ctx *c, const char *id)
{
	for (size_t i = 0; i < c->inv->n_instances; i++)
		if (strcasecmp(c->inv->instances[i].id, id) == 0)
			return true;
	return false;
}

static int drop_owner(rc_ctx *c, const char *dev, const char *claim_id, vgm_error *err)
{
	int r;
	if (!claim_id) {
		r = exec_bind(c->s, "DELETE FROM assignments WHERE device_id = ?1", dev, 0,
			      "dropping an assignment", err);
		if (r == 0)
			store_action(&c->act, "assignment of %s dropped: the device is gone "
					      "from sysfs", dev);
	} else {
		r = store_begin(c->s, err);
		if (r == 0)
			r = claim_set_state(c->s, claim_id, VGM_CLAIM_RELEASED, err);
		if (r == 0)
			r = store_journal_add(c->s, NULL, NULL, "release", "device-vanished",
					      claim_id, err);
		if (r == 0)
			r = store_commit(c->s, err);
		else
			store_rollback(c->s);
		if (r == 0)
			store_action(&c->act, "claim %s released: its device %s is gone from "
					      "sysfs", claim_id, dev);
	}
	if (r == 0)
		c->rep->dropped_owned++;
	return r;
}

static int drop_vanished_owned(rc_ctx *c, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s, "SELECT device_id, claim_id FROM device_owners", &st, err);
	if (r < 0)
		return r;
	char **dev = NULL, **cl = NULL;
	size_t n = 0;
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *owner = (const char *)sqlite3_column_text(st, 1);
		/* a claim being made owns devices that do not exist yet */
		if (in_sysfs(c, id) || (owner && claim_is_creating(c->s, owner)))
			continue;
		bool ok = true;
		char **g1 = realloc(dev, (n + 1) * sizeof(char *));
		if (g1)
			dev = g1;
		char **g2 = realloc(cl, (n + 1) * sizeof(char *));
		if (g2)
			cl = g2;
		if (!g1 || !g2) {
			r = vgm_error_set(err, ENOMEM, "out of memory");
			break;
		}
		dev[n] = store_column_strdup(st, 0, &ok);
		cl[n] = store_column_strdup(st, 1, &ok);
		n++;
		if (!ok)
			r = vgm_error_set(err, ENOMEM, "out of memory");
	}
	sqlite3_finalize(TAKE_PTR(st));
	for (size_t i = 0; r == 0 && i < n; i++)
		r = drop_owner(c, dev[i], cl[i], err);
	store_strv_free(dev, n);
	store_strv_free(cl, n);
	return r;
}

static int drop_vanished_created(rc_ctx *c, vgm_error *err)
{
	char **ids = NULL;
	size_t n = 0;
	int r = select_ids(c->s,
			   "SELECT id FROM devices_created WHERE id NOT IN"
			   " (SELECT device_id FROM device_owners)",
			   0, &ids, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (in_sysfs(c, ids[i]))
			continue;
		r = exec_bind(c->s, "DELETE FROM devices_created WHERE id = ?1", ids[i], 0,
			      "forgetting a vanished device", err);
		if (r == 0) {
			c->rep->dropped_created++;
			store_action(&c->act, "forgot %s: created by this agent but gone from "
					      "sysfs", ids[i]);
		}
	}
	store_strv_free(ids, n);
	return r;
}

/* ---- 6. retention ---- */

static int delete_before(vgm_store *s, const char *sql, int64_t before, size_t *n,
			 vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, before);
	r = store_step_done(s, st, "pruning old rows", err);
	if (r == 0)
		*n += (size_t)sqlite3_changes(s->db);
	return r;
}

static int prune(rc_ctx *c, vgm_error *err)
{
	int64_t before = store_now(c->s) - c->s->retention_seconds;
	size_t n = 0;
	int r = delete_before(c->s,
			      "DELETE FROM claims WHERE state IN ('released','expired')"
			      " AND updated_at < ?1",
			      before, &n, err);
	if (r == 0)
		r = delete_before(c->s, "DELETE FROM journal WHERE time < ?1", before, &n, err);
	c->rep->pruned += n;
	if (n)
		store_action(&c->act, "pruned %zu finished claims and journal rows older than "
				      "%lld s", n, (long long)c->s->retention_seconds);
	return r;
}

/* ---- the pass ---- */

/* 1 when sysfs shows vGPU parents, so the removal pass may run. */
static int compare_with_sysfs(rc_ctx *c, vgm_error *err)
{
	const vgm_inventory *inv = NULL;
	int r = store_inventory_get(c->s, c->h, true, &inv, NULL, err);
	if (r < 0)
		return r;
	c->inv = inv;
	if (inv->n_parents == 0)
		store_action(&c->act, "sysfs shows no vGPU parent; not comparing the store with "
				      "it (is the NVIDIA driver loaded?)");
	else {
		r = drop_vanished_owned(c, err);
		if (r == 0)
			r = drop_vanished_created(c, err);
	}
	c->inv = NULL;
	return r < 0 ? r : inv->n_parents > 0;
}

/* Steps 1-4 and 6; 1 when the removal pass may run. */
static int reconcile_locked(vgm_store *s, vgm_host *h, vgm_reconcile_report *rep,
			    vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	rc_ctx c = {.s = s, .h = h, .rep = rep, .act = {&rep->actions, &rep->n_actions}};
	vgm_device_use *uses = NULL;
	size_t n_uses = 0;
	int r = store_load_uses(s, &uses, &n_uses, err);
	c.uses = uses;
	c.n_uses = n_uses;
	/* in_use failing ("cannot tell") only means no lease is auto-committed
	 * here and nothing is removed below. */
	if (r < 0)
		vgm_error_clear(err);
	r = drop_pending(&c, err);
	if (r == 0)
		r = expire_leases(&c, err);
	int sysfs_ok = r == 0 ? compare_with_sysfs(&c, err) : r;
	r = sysfs_ok < 0 ? sysfs_ok : 0;
	if (r == 0)
		r = prune(&c, err);
	vgm_device_uses_free(uses, n_uses);
	return r < 0 ? r : sysfs_ok;
}

int vgm_reconcile(vgm_store *s, vgm_host *h, vgm_reconcile_report *report, vgm_error *err)
{
	vgm_reconcile_report local = {0};
	vgm_reconcile_report *rep = report ? report : &local;
	memset(rep, 0, sizeof(*rep));
	int r = reconcile_locked(s, h, rep, err);
	if (r > 0)
		r = store_removal_pass(s, h, NULL, rep, err);
	vgm_reconcile_report_clear(&local);
	return r < 0 ? r : 0;
}
