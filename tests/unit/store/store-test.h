/* store-test.h: the fixture shared by the store's unit tests: a temp state
 * dir, a fake device layer (fake-device.h), a settable clock and a settable
 * list of devices "used by domains", plus request builders and raw SQL access
 * for checking what is on disk. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fake-device.h"
#include "store/store.h"

#define SRC1 "c2177883-f1bb-47f0-914d-32a22e3a8804"
#define SRC2 "5b1d1ec0-3a3b-4b0e-9d7e-2f1f0c9a7e01"
#define SRC3 "9e0c6b9a-7d1e-4c5a-8b6f-1a2b3c4d5e6f"
#define OTHER1 "aaaaaaaa-1111-4111-8111-111111111111"
#define OTHER2 "bbbbbbbb-2222-4222-8222-222222222222"
#define DOM_UUID "11111111-2222-4333-8444-555555555555"

typedef struct env {
	char dir[64];
	fake_dev *f;
	vgm_store *s;
	int64_t now;       /* the test's time: both clocks follow it */
	int64_t wall_step; /* the wall clock stepped by this much */
	int64_t remove_deadline_ms;
	bool uses_unknown; /* in_use fails: "cannot tell" */
	bool keep_released; /* opts.remove_released = !keep_released */
	bool real_devices;  /* lib/device instead of the fake */
	int64_t inventory_ttl_ms;
	vgm_device_use uses[8];
	size_t n_uses;
} env;

int env_setup(void **state);
int env_teardown(void **state);
/* Open e->s (asserting success). */
void env_open(env *e);
void env_close(env *e);
int env_try_open(env *e, vgm_store **out, vgm_error *err);

vgm_claim_device_req dev_req(const char *source_id, const char *profile, uint64_t fb);
vgm_claim_request claim_req(const char *migration_id, const vgm_claim_device_req *d, size_t n);

/* Raw access to the database file, bypassing the store. */
int raw_exec(env *e, const char *sql);
long long raw_count(env *e, const char *sql);
