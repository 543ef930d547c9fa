/* test-state.c: what the store keeps on disk and how it repairs it: schema
 * upgrades, durability across close/reopen, the one-agent lock, ownership
 * enforced by SQL, lease expiry, reconcile of every crash point (states
 * crafted with raw SQL, and real SIGKILLs of a forked claimant). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "store-test.h"
#include "store/store-internal.h"

#define A4C "NVIDIA A100-4C"

static vgm_claim *claim_ok(env *e, const char *mig, const char *src)
{
	vgm_claim_device_req d = dev_req(src, A4C, 4 * GIB);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(e->s, NULL, &req, &c, &err) < 0)
		fail_msg("claim failed: %s", vgm_error_message(&err));
	return c;
}

static vgm_reconcile_report reconcile_ok(env *e)
{
	vgm_reconcile_report rep;
	vgm_error err = {0};
	if (vgm_reconcile(e->s, NULL, &rep, &err) < 0)
		fail_msg("reconcile failed: %s", vgm_error_message(&err));
	return rep;
}

static void test_reopen(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, "mig-1", SRC1);
	env_close(e);
	env_open(e);
	assert_int_equal(vgm_store_schema_version(e->s), VGM_STORE_SCHEMA_VERSION);
	_cleanup_(vgm_claim_freep) vgm_claim *again = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &again, NULL), 0);
	assert_int_equal(again->state, VGM_CLAIM_HELD);
	assert_string_equal(again->devices[0].target_id, SRC1);
	assert_string_equal(again->domain_name, "gpu-vm-7");
	assert_true(again->devices[0].created);
	assert_int_equal(again->expires_at, c->expires_at);
}

static void test_journal_mode(void **state)
{
	env *e = *state;
	env_open(e);
	sqlite3 *db = NULL;
	char p[128];
	snprintf(p, sizeof(p), "%s/vgpumig.db", e->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(vgm_journal_append(e->s, "m", "d", "migrate", "ok", "x", NULL), 0);
	vgm_journal_entry *j = NULL;
	size_t n = 0;
	assert_int_equal(vgm_journal_list(e->s, NULL, 10, &j, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(j[0].detail, "x");
	assert_int_equal(j[0].time, e->now);
	vgm_journal_free(j, n);
	assert_int_equal(vgm_journal_append(e->s, NULL, NULL, "", "ok", NULL, NULL), -EINVAL);
}

static void test_state_locked(void **state)
{
	env *e = *state;
	env_open(e);
	vgm_store *second = NULL;
	vgm_error err = {0};
	assert_int_equal(env_try_open(e, &second, &err), -EBUSY);
	assert_string_equal(err.reason, "state_locked");
	assert_null(second);
}

/* A v0 file (user_version 0, no tables) is brought to the current version. */
static void test_schema_from_v0(void **state)
{
	env *e = *state;
	assert_int_equal(raw_exec(e, "PRAGMA user_version = 0"), SQLITE_OK);
	env_open(e);
	assert_int_equal(vgm_store_schema_version(e->s), VGM_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM sqlite_master WHERE name IN "
				      "('claims','claim_devices','devices_created','assignments',"
				      "'device_owners','journal','claims_domain')"),
			 7);
}

/* A v1 file with a claim keeps it through the upgrades (v2 indexes, v3 jobs
 * and the in-flight column). */
static void test_schema_from_v1(void **state)
{
	env *e = *state;
	char p[128];
	snprintf(p, sizeof(p), "%s/vgpumig.db", e->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(store_schema_upgrade(db, 1, NULL), 0);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO claims VALUES ('" SRC3 "', 'old', 'k', '" DOM_UUID
				      "', 'vm', 'host-a', 'held', 1, 2000000, 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(raw_count(e, "PRAGMA user_version"), 1);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM sqlite_master WHERE name = "
				      "'claims_domain'"),
			 0);
	env_open(e);
	assert_int_equal(vgm_store_schema_version(e->s), VGM_STORE_SCHEMA_VERSION);
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	assert_int_equal(vgm_claims_find_by_domain(e->s, DOM_UUID, &c, NULL), 0);
	assert_string_equal(c->migration_id, "old");
	assert_false(c->in_flight);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM sqlite_master WHERE name IN "
				      "('jobs','host_settings')"),
			 2);
}

static char *slurp(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	*len = ftell(f);
	rewind(f);
	buf = malloc((size_t)*len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
	fclose(f);
	return buf;
}

/* A file from a newer vgpumig (a host downgraded) is refused, naming both
 * versions, and left byte for byte as it was: not even switched to WAL. */
static void test_schema_newer_refused(void **state)
{
	env *e = *state;
	char path[128];
	long n0, n1;
	assert_int_equal(raw_exec(e, "PRAGMA journal_mode=DELETE; CREATE TABLE future(x);"
				     "PRAGMA user_version = 99"), SQLITE_OK);
	snprintf(path, sizeof(path), "%s/vgpumig.db", e->dir);
	_cleanup_free_ char *before = slurp(path, &n0);
	vgm_store *s = NULL;
	vgm_error err = {0};
	assert_int_equal(env_try_open(e, &s, &err), -EPROTO);
	assert_null(s);
	assert_string_equal(err.reason, "store_schema_newer");
	assert_non_null(strstr(err.message, "schema version 99, newer than this vgpumig "
					    "understands (" ));
	assert_non_null(strstr(err.message, "left untouched"));
	_cleanup_free_ char *after = slurp(path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, (size_t)n0);
	assert_int_equal(raw_count(e, "PRAGMA user_version"), 99);
}

/* Whatever the code path, SQLite refuses a second owner for a device. */
static void test_double_owner_refused_by_sql(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, "mig-1", SRC1);
	assert_int_equal(raw_exec(e, "INSERT INTO assignments VALUES ('" SRC1 "', '" DOM_UUID
				     "', 'x', 1, NULL)"),
			 SQLITE_CONSTRAINT);
	assert_int_equal(raw_exec(e, "BEGIN;"
				     "INSERT INTO claims VALUES ('" SRC2 "', 'mig-2', 'k', '" DOM_UUID
				     "', 'vm', 'h', 'held', 1, 2, 1, NULL);"
				     "INSERT INTO claim_devices VALUES ('" SRC2 "', 0, '" SRC3
				     "', '" SRC1 "', 'mdev', 'p', 0, 't', 0);"
				     "COMMIT;"),
			 SQLITE_CONSTRAINT);
	raw_exec(e, "ROLLBACK");
	assert_int_equal(raw_exec(e, "INSERT INTO device_owners(device_id, claim_id) VALUES ('" SRC1
				     "', '" SRC2 "')"),
			 SQLITE_CONSTRAINT);
	assert_int_equal(raw_exec(e, "UPDATE claims SET state = 'held' WHERE state = 'released'"),
			 SQLITE_OK);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	assert_int_equal(raw_exec(e, "UPDATE claims SET state = 'held'"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
}

static void test_lease_expiry(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, "mig-1", SRC1);
	e->now += 59;
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.expired, 0);
	assert_int_equal(rep.n_actions, 0);
	vgm_reconcile_report_clear(&rep);
	e->now += 1;
	rep = reconcile_ok(e);
	assert_int_equal(rep.expired, 1);
	assert_int_equal(rep.removed, 1);
	assert_true(rep.n_actions >= 2);
	assert_non_null(strstr(rep.actions[0], "expired"));
	vgm_reconcile_report_clear(&rep);
	assert_false(fake_has(e->f, SRC1));
	_cleanup_(vgm_claim_freep) vgm_claim *after = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &after, NULL), 0);
	assert_int_equal(after->state, VGM_CLAIM_EXPIRED);
	vgm_error err = {0};
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, &err), -ESTALE);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, &err), 0);
	/* retention: gone after 7 days */
	e->now += 8 * 86400;
	rep = reconcile_ok(e);
	assert_true(rep.pruned >= 1);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
}

/* Past its lease, but the domain already runs on the devices: committed. */
static void test_lease_autocommit(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, "mig-1", SRC1);
	e->uses[0] = (vgm_device_use){.device_id = SRC1, .domain_uuid = DOM_UUID};
	e->n_uses = 1;
	e->now += 3600;
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	vgm_reconcile_report rep = reconcile_ok(e); /* also reads sysfs afresh */
	assert_int_equal(rep.auto_committed, 1);
	assert_int_equal(rep.expired, 0);
	vgm_reconcile_report_clear(&rep);
	assert_true(fake_has(e->f, SRC1));
	assert_int_equal(raw_count(e, "SELECT count(*) FROM assignments"), 1);
	/* and a device some domain uses is never handed out */
	e->uses[1] = (vgm_device_use){.device_id = OTHER1, .domain_uuid = SRC3};
	e->n_uses = 2;
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_ok(e, "mig-2", SRC2);
	assert_string_equal(c2->devices[0].target_id, SRC2);
}

/* Crash between C2 and C3/C4: a pending claim whose device was (or was not)
 * created.  The operator's own instance is never touched. */
static void test_reconcile_pending(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	assert_int_equal(fake_add_instance(e->f, SRC1, 0, "nvidia-471"), 0); /* written */
	env_open(e);
	env_close(e);
	assert_int_equal(raw_exec(e, "INSERT INTO claims VALUES ('" SRC3 "', 'mig-x', 'k', '" DOM_UUID
				     "', 'vm', 'h', 'pending', 1, NULL, 1, NULL);"
				     "INSERT INTO claim_devices VALUES ('" SRC3 "', 0, '" SRC1 "', '"
				     SRC1 "', 'mdev', 'p', 0, 'nvidia-471', 1);"
				     "INSERT INTO claim_devices VALUES ('" SRC3 "', 1, '" SRC2 "', '"
				     SRC2 "', 'mdev', 'p', 0, 'nvidia-471', 1);"
				     "INSERT INTO devices_created VALUES ('" SRC1 "', 'mdev', "
				     "'0000:01:00.0', 'nvidia-471', 1, '" SRC3 "', 'creating');"
				     "INSERT INTO devices_created VALUES ('" SRC2 "', 'mdev', "
				     "'0000:01:00.0', 'nvidia-471', 1, '" SRC3 "', 'creating');"),
			 SQLITE_OK);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 2);
	env_open(e);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.pending_dropped, 1);
	assert_int_equal(rep.removed, 1);
	vgm_reconcile_report_clear(&rep);
	assert_false(fake_has(e->f, SRC1));
	assert_true(fake_has(e->f, OTHER1));
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
}

/* Devices gone from sysfs behind the store's back. */
static void test_reconcile_vanished(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *a = claim_ok(e, "mig-1", SRC1); /* reuses OTHER1 */
	assert_string_equal(a->devices[0].target_id, OTHER1);
	assert_int_equal(vgm_claims_commit(e->s, NULL, a->claim_id, NULL), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *b = claim_ok(e, "mig-2", SRC2); /* creates SRC2 */
	fake_drop(e->f, OTHER1);
	fake_drop(e->f, SRC2);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.dropped_owned, 2);
	assert_int_equal(rep.dropped_created, 1);
	assert_int_equal(rep.removed, 0);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM assignments"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *b2 = NULL;
	assert_int_equal(vgm_claims_get(e->s, b->claim_id, &b2, NULL), 0);
	assert_int_equal(b2->state, VGM_CLAIM_RELEASED);
}

/* No vGPU parent visible at all: nothing is read as vanished. */
static void test_reconcile_no_parents(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *a = claim_ok(e, "mig-1", SRC1);
	unsigned saved = e->f->n_parents;
	e->f->n_parents = 0;
	fake_drop(e->f, SRC1);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.dropped_owned, 0);
	assert_int_equal(rep.n_actions, 1);
	assert_non_null(strstr(rep.actions[0], "no vGPU parent"));
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 1);
	e->f->n_parents = saved;
}

/* A claimant SIGKILLed after k of 3 creations (k = 0 is before any sysfs
 * write, k = 3 is after all of them but before the claim is held). */
static void crash_claim_after(env *e, unsigned k)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fake_dev *f = e->f; /* shared with the parent: counters are cumulative */
		if (k == 0) {
			/* die right after the intent is durable, before any sysfs write */
			f->kill_create_before = f->create_calls + 1;
		} else {
			f->kill_create_after = f->creates + k;
		}
		env_open(e);
		vgm_claim_device_req d[3] = {dev_req(SRC1, A4C, 0), dev_req(SRC2, A4C, 0),
					     dev_req(SRC3, A4C, 0)};
		vgm_claim_request req = claim_req("mig-crash", d, 3);
		vgm_claim *c = NULL;
		vgm_claims_claim(e->s, NULL, &req, &c, NULL);
		_exit(3); /* not reached */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	e->f->kill_create_before = e->f->kill_create_after = 0;
	assert_int_equal(fake_count(e->f), 1 + k);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims WHERE state = 'pending'"), 1);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 3);
	env_open(e);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.pending_dropped, 1);
	assert_int_equal(rep.removed, k);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(fake_count(e->f), 1); /* only the operator's */
	assert_true(fake_has(e->f, OTHER1));
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
	/* and the migration can claim again, and give it back */
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-crash", &d, 1);
	vgm_claim *c = NULL;
	assert_int_equal(vgm_claims_claim(e->s, NULL, &req, &c, NULL), 0);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	vgm_claim_free(c);
	env_close(e);
	assert_int_equal(raw_exec(e, "DELETE FROM claims; DELETE FROM journal"), SQLITE_OK);
}

static void test_crash_during_claim(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 1, "nvidia-472"), 0);
	env_open(e); /* create the file, then leave it to the child */
	env_close(e);
	for (unsigned k = 0; k <= 3; k++)
		crash_claim_after(e, k);
}

/* A release SIGKILLed after the claim is released on disk but before its
 * device is removed: reconcile removes it. */
static void test_crash_during_release(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, "mig-1", SRC1);
	env_close(e);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		e->f->kill_remove_before = e->f->remove_calls + 1;
		env_open(e);
		vgm_claims_release(e->s, NULL, c->claim_id, NULL);
		_exit(3);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	e->f->kill_remove_before = 0;
	assert_true(fake_has(e->f, SRC1));
	env_open(e);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 1);
	vgm_reconcile_report_clear(&rep);
	assert_false(fake_has(e->f, SRC1));
	_cleanup_(vgm_claim_freep) vgm_claim *after = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &after, NULL), 0);
	assert_int_equal(after->state, VGM_CLAIM_RELEASED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reopen, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_journal_mode, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_state_locked, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_schema_from_v0, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_schema_from_v1, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_schema_newer_refused, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_double_owner_refused_by_sql, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_lease_autocommit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_pending, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_vanished, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_no_parents, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_claim, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_release, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
