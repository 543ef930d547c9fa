/* test-dbfaults.c: the state database's disk fills up or fails.  A VFS shim
 * (the default VFS of this test process) makes every write to the database
 * files answer SQLITE_FULL or SQLITE_IOERR_WRITE on demand, as a full or
 * failing disk would.  The store must refuse what it cannot record with one
 * clear error that says what to do, leave no device behind for a refused
 * claim, and lose none of the claims it had. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"

/* ---- the shim: the default VFS with writes that fail on demand ---- */

static int shim_fail; /* 0, SQLITE_FULL or SQLITE_IOERR_WRITE */
static sqlite3_vfs *real_vfs;

typedef struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
} shim_file;

#define REAL(f) (((shim_file *)(f))->real)

static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (shim_fail)
		return shim_fail;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int shim_sync(sqlite3_file *f, int fl)
{
	return shim_fail ? SQLITE_IOERR_FSYNC : REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_reserved(sqlite3_file *f, int *o)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o);
}
static int shim_fcntl(sqlite3_file *f, int op, void *a)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int shim_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int shim_shm_lock(sqlite3_file *f, int off, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}
static void shim_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods shim_methods = {
	2, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock,
	shim_unlock, shim_reserved, shim_fcntl, shim_sector, shim_devchar, shim_shm_map,
	shim_shm_lock, shim_shm_barrier, shim_shm_unmap, NULL, NULL,
};

static int shim_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	shim_file *s = (shim_file *)f;
	s->real = (sqlite3_file *)(s + 1);
	int r = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
	s->base.pMethods = r == SQLITE_OK ? &shim_methods : NULL;
	return r;
}

static sqlite3_vfs shim_vfs;

static void shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "faulty";
	shim_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	shim_vfs.pNext = NULL;
	sqlite3_vfs_register(&shim_vfs, 1);
}

/* ---- tests ---- */

static vgm_claim *claim_one(env *e, const char *mig, const char *src)
{
	vgm_claim_device_req d = dev_req(src, A4C, 0);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(e->s, NULL, &req, &c, &err) < 0)
		fail_msg("claim %s: %s", mig, vgm_error_message(&err));
	return c;
}

static int claim_fails(env *e, const char *mig, const char *src, vgm_error *err)
{
	vgm_claim_device_req d = dev_req(src, A4C, 0);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	int r = vgm_claims_claim(e->s, NULL, &req, &c, err);
	assert_null(c);
	return r;
}

static void assert_state(env *e, const char *claim_id, vgm_claim_state st)
{
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_get(e->s, claim_id, &c, &err) < 0)
		fail_msg("claim %s lost: %s", claim_id, vgm_error_message(&err));
	assert_int_equal(c->state, st);
	vgm_claim_free(c);
}

/* One disk failure: new claims and changes are refused with a message that
 * says what to do, and nothing the store had is lost or changed. */
static void disk_fault_case(env *e, int fault, const char *hint)
{
	fake_catalog_a100(e->f, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *held = claim_one(e, "mig-1", SRC1);
	_cleanup_(vgm_claim_freep) vgm_claim *done = claim_one(e, "mig-2", SRC2);
	assert_int_equal(vgm_claims_commit(e->s, NULL, done->claim_id, NULL), 0);
	unsigned devices = fake_count(e->f);

	shim_fail = fault;
	vgm_error err = {0};
	assert_int_equal(claim_fails(e, "mig-3", SRC3, &err), -EIO); /* would create */
	assert_string_equal(err.reason, "store_error");
	if (!strstr(err.message, hint))
		fail_msg("no hint '%s' in: %s", hint, err.message);
	assert_null(strchr(err.message, '\n'));
	vgm_error_clear(&err);
	assert_int_equal(claim_fails(e, "mig-4", OTHER1, &err), -EIO); /* would reuse */
	assert_true(vgm_claims_commit(e->s, NULL, held->claim_id, &err) < 0);
	assert_true(vgm_claims_release(e->s, NULL, held->claim_id, &err) < 0);
	/* reads still answer, and say what they had */
	assert_state(e, held->claim_id, VGM_CLAIM_HELD);
	assert_state(e, done->claim_id, VGM_CLAIM_COMMITTED);
	vgm_reconcile_report rep = {0};
	(void)vgm_reconcile(e->s, NULL, &rep, NULL); /* may fail; must change nothing */
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(fake_count(e->f), devices); /* no device left by a refused claim */

	shim_fail = 0;
	env_close(e);
	env_open(e); /* and after a restart */
	assert_state(e, held->claim_id, VGM_CLAIM_HELD);
	assert_state(e, done->claim_id, VGM_CLAIM_COMMITTED);
	assert_int_equal(fake_count(e->f), devices);
	assert_int_equal(vgm_claims_commit(e->s, NULL, held->claim_id, NULL), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *after = claim_one(e, "mig-3", SRC3);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 3);
}

static void test_disk_full(void **state)
{
	disk_fault_case(*state, SQLITE_FULL, "is full: free space");
}

static void test_disk_io_error(void **state)
{
	disk_fault_case(*state, SQLITE_IOERR_WRITE, "I/O errors: check it");
}

static int reset(void **state)
{
	shim_fail = 0;
	return env_teardown(state);
}

int main(void)
{
	shim_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_full, env_setup, reset),
		cmocka_unit_test_setup_teardown(test_disk_io_error, env_setup, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
