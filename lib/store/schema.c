/* schema.c: the versioned schema of vgpumig.db and its upgrade steps.
 *
 * PRAGMA user_version is the schema version: 0 is an empty file, step k
 * brings version k-1 to k, and each step runs in its own transaction together
 * with the user_version bump, so a crash mid-upgrade leaves the old version
 * intact.  A file newer than this program is refused, never touched.  To
 * change the schema, append a step; never edit a released one.
 *
 * Ownership is enforced by SQLite, not only by C: device_owners has one row
 * per owned device (device_id PRIMARY KEY), filled by triggers when a claim
 * device is inserted for a live (pending or held) claim and when an
 * assignment is inserted, and emptied when the claim leaves the live states or
 * the assignment is deleted.  A second owner for a device therefore fails
 * with a UNIQUE constraint error whatever code path tries it. */
#include <string.h>

#include "store-internal.h"

static const char schema_v1[] =
	"CREATE TABLE claims ("
	"  claim_id TEXT PRIMARY KEY,"
	"  migration_id TEXT NOT NULL UNIQUE,"
	"  request_key TEXT NOT NULL,"
	"  domain_uuid TEXT NOT NULL,"
	"  domain_name TEXT NOT NULL,"
	"  source_host TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('pending','held','committed','released','expired')),"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE TABLE claim_devices ("
	"  claim_id TEXT NOT NULL REFERENCES claims(claim_id) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL,"
	"  source_id TEXT NOT NULL,"
	"  target_id TEXT NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('mdev','vf')),"
	"  profile_name TEXT NOT NULL,"
	"  framebuffer_bytes INTEGER NOT NULL,"
	"  type_id TEXT NOT NULL,"
	"  created_by_us INTEGER NOT NULL CHECK (created_by_us IN (0,1)),"
	"  PRIMARY KEY (claim_id, seq),"
	"  UNIQUE (claim_id, source_id),"
	"  UNIQUE (claim_id, target_id));"
	"CREATE TABLE devices_created ("
	"  id TEXT PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('mdev','vf')),"
	"  parent TEXT NOT NULL,"
	"  type_id TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  for_claim TEXT REFERENCES claims(claim_id) ON DELETE SET NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('creating','present')));"
	"CREATE TABLE assignments ("
	"  device_id TEXT PRIMARY KEY,"
	"  domain_uuid TEXT NOT NULL,"
	"  domain_name TEXT NOT NULL,"
	"  since INTEGER NOT NULL,"
	"  from_claim TEXT REFERENCES claims(claim_id) ON DELETE SET NULL);"
	"CREATE TABLE device_owners ("
	"  device_id TEXT PRIMARY KEY,"
	"  claim_id TEXT REFERENCES claims(claim_id) ON DELETE CASCADE,"
	"  assignment TEXT REFERENCES assignments(device_id) ON DELETE CASCADE,"
	"  CHECK ((claim_id IS NULL) != (assignment IS NULL)));"
	"CREATE TABLE journal ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  migration_id TEXT,"
	"  domain TEXT,"
	"  step TEXT NOT NULL,"
	"  outcome TEXT NOT NULL,"
	"  detail TEXT);"
	"CREATE TRIGGER claim_devices_own AFTER INSERT ON claim_devices"
	"  WHEN (SELECT state FROM claims WHERE claim_id = NEW.claim_id) IN ('pending','held')"
	"  BEGIN INSERT INTO device_owners(device_id, claim_id)"
	"        VALUES (NEW.target_id, NEW.claim_id); END;"
	"CREATE TRIGGER claims_disown AFTER UPDATE OF state ON claims"
	"  WHEN NEW.state NOT IN ('pending','held')"
	"  BEGIN DELETE FROM device_owners WHERE claim_id = NEW.claim_id; END;"
	"CREATE TRIGGER claims_final BEFORE UPDATE OF state ON claims"
	"  WHEN OLD.state IN ('released','expired') AND NEW.state != OLD.state"
	"  BEGIN SELECT RAISE(ABORT, 'a released or expired claim is final'); END;"
	"CREATE TRIGGER assignments_own AFTER INSERT ON assignments"
	"  BEGIN INSERT INTO device_owners(device_id, assignment)"
	"        VALUES (NEW.device_id, NEW.device_id); END;";

/* v2: indexes for the hook path (claims by domain), the journal by migration
 * and the reconcile scan of devices by claim. */
static const char schema_v2[] =
	"CREATE INDEX claims_domain ON claims(domain_uuid, state);"
	"CREATE INDEX journal_migration ON journal(migration_id, id);"
	"CREATE INDEX devices_created_claim ON devices_created(for_claim);";

/* v3: durable migration jobs (lib/migrate/job.c records each phase here
 * before it acts; a NULL limit is "not given"), host settings (cordon), the
 * claim's in-flight stage (a held claim whose domain's QEMU has started on
 * this host, libvirt's "started begin", but whose switchover is not yet known
 * to have succeeded), and durable evacuations (evac.c): the request and one
 * row per VM, so a restarted agent resumes where it stopped. */
static const char schema_v3[] =
	"CREATE TABLE jobs ("
	"  job_id TEXT PRIMARY KEY,"
	"  domain TEXT NOT NULL,"
	"  domain_uuid TEXT,"
	"  to_host TEXT NOT NULL,"
	"  phase TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('running','succeeded','failed','aborted')),"
	"  claim_id TEXT,"
	"  max_downtime_ms INTEGER,"
	"  bandwidth_bps INTEGER,"
	"  timeout_ms INTEGER,"
	"  dry_run INTEGER NOT NULL CHECK (dry_run IN (0,1)),"
	"  force INTEGER NOT NULL CHECK (force IN (0,1)),"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  error_code TEXT,"
	"  error_message TEXT);"
	"CREATE INDEX jobs_state ON jobs(state, created_at);"
	"CREATE TABLE host_settings ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"ALTER TABLE claims ADD COLUMN in_flight_at INTEGER;"
	"CREATE TABLE evacuations ("
	"  evacuation_id TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL CHECK (state IN ('running','done')),"
	"  request TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE TABLE evacuation_vms ("
	"  evacuation_id TEXT NOT NULL REFERENCES evacuations(evacuation_id) ON DELETE CASCADE,"
	"  domain_uuid TEXT NOT NULL,"
	"  domain_name TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  pause_ms INTEGER,"
	"  target TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('pending','migrating','cold_migrating','moved',"
	"    'cold_moved','left_behind')),"
	"  migration_id TEXT,"
	"  code TEXT,"
	"  message TEXT,"
	"  PRIMARY KEY (evacuation_id, domain_uuid));";

static const char *const steps[] = {schema_v1, schema_v2, schema_v3};

_Static_assert(sizeof(steps) / sizeof(steps[0]) == VGM_STORE_SCHEMA_VERSION,
	       "one upgrade step per schema version");

static int db_error(sqlite3 *db, vgm_error *err, const char *what)
{
	return vgm_error_setr(err, EIO, "store_error", "%s failed: %s", what, sqlite3_errmsg(db));
}

static int user_version(sqlite3 *db, int *out, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		return db_error(db, err, "reading the schema version");
	*out = sqlite3_column_int(st, 0);
	return 0;
}

static int apply_step(sqlite3 *db, int to, vgm_error *err)
{
	char bump[64];
	snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", to);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(db, err, "starting a schema upgrade");
	if (sqlite3_exec(db, steps[to - 1], NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, bump, NULL, NULL, NULL) != SQLITE_OK) {
		int r = vgm_error_setr(err, EIO, "store_error",
				       "upgrading the state schema to version %d failed: %s", to,
				       sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int r = db_error(db, err, "committing a schema upgrade");
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return 0;
}

/* A newer vgpumig wrote this file (a host downgraded past a schema change):
 * refuse before anything writes to it, not even the WAL switch, so the newer
 * release can take it back as it left it. */
int store_schema_check(sqlite3 *db, vgm_error *err)
{
	int v = 0;
	int r = user_version(db, &v, err);
	if (r < 0)
		return r;
	if (v > VGM_STORE_SCHEMA_VERSION)
		return vgm_error_setr(err, EPROTO, "store_schema_newer",
				      "the state database has schema version %d, newer than this "
				      "vgpumig understands (%d); it was left untouched: reinstall the "
				      "newer vgpumigd (docs/upgrades.md)",
				      v, VGM_STORE_SCHEMA_VERSION);
	return 0;
}

int store_schema_upgrade(sqlite3 *db, int target, vgm_error *err)
{
	int v = 0;
	int r = store_schema_check(db, err);
	if (r < 0 || (r = user_version(db, &v, err)) < 0)
		return r;
	for (int to = v + 1; to <= target && to <= VGM_STORE_SCHEMA_VERSION; to++) {
		r = apply_step(db, to, err);
		if (r < 0)
			return r;
	}
	return 0;
}
