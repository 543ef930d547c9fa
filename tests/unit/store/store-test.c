/* store-test.c: see store-test.h. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"

/* The wall clock is the test's time plus any step it made; the monotonic
 * clock only ever follows the test's time. */
static int64_t test_clock(void *ctx)
{
	return ((env *)ctx)->now + ((env *)ctx)->wall_step;
}

static int64_t test_monotonic_ms(void *ctx)
{
	return ((env *)ctx)->now * 1000;
}

static int test_uses(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err)
{
	env *e = ctx;
	if (e->uses_unknown)
		return vgm_error_setr(err, EAGAIN, "unavailable", "libvirt is not reachable");
	*out = calloc(e->n_uses + 1, sizeof(vgm_device_use));
	for (size_t i = 0; i < e->n_uses; i++) {
		(*out)[i].device_id = strdup(e->uses[i].device_id);
		(*out)[i].domain_uuid = e->uses[i].domain_uuid ? strdup(e->uses[i].domain_uuid) : NULL;
	}
	*n = e->n_uses;
	return 0;
}

int env_setup(void **state)
{
	env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/vgm-store-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	e->f = fake_new();
	e->now = 1000000;
	*state = e;
	return e->f ? 0 : -1;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

int env_teardown(void **state)
{
	env *e = *state;
	env_close(e);
	nftw(e->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	fake_free(e->f);
	free(e);
	return 0;
}

int env_try_open(env *e, vgm_store **out, vgm_error *err)
{
	vgm_store_devops ops = fake_devops(e->f);
	vgm_store_opts o = {
		.host_name = "host-b",
		.remove_released = !e->keep_released,
		.clock = test_clock,
		.monotonic_ms = test_monotonic_ms,
		.clock_ctx = e,
		.in_use = test_uses,
		.in_use_ctx = e,
		.devops = e->real_devices ? NULL : &ops,
		.inventory_ttl_ms = e->inventory_ttl_ms,
		.remove_deadline_ms = e->remove_deadline_ms,
	};
	return vgm_store_open(e->dir, &o, out, err);
}

void env_open(env *e)
{
	vgm_error err = {0};
	int r = env_try_open(e, &e->s, &err);
	if (r < 0)
		fail_msg("opening the store: %s", vgm_error_message(&err));
}

void env_close(env *e)
{
	vgm_store_close(e->s);
	e->s = NULL;
}

vgm_claim_device_req dev_req(const char *source_id, const char *profile, uint64_t fb)
{
	return (vgm_claim_device_req){.source_id = source_id,
				      .kind = VGM_BACKEND_MDEV,
				      .profile_name = profile,
				      .framebuffer_bytes = fb,
				      .type_id = "nvidia-999"};
}

vgm_claim_request claim_req(const char *migration_id, const vgm_claim_device_req *d, size_t n)
{
	return (vgm_claim_request){.migration_id = migration_id,
				   .domain_uuid = DOM_UUID,
				   .domain_name = "gpu-vm-7",
				   .source_host = "host-a",
				   .devices = d,
				   .n_devices = n,
				   .lease_seconds = 60};
}

static sqlite3 *raw_open(env *e)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/vgpumig.db", e->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	return db;
}

int raw_exec(env *e, const char *sql)
{
	sqlite3 *db = raw_open(e);
	int r = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return r;
}

long long raw_count(env *e, const char *sql)
{
	sqlite3 *db = raw_open(e);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long long n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}
