/* test-evac.c: durable evacuations: create with VMs in start order, update a
 * VM, read back after reopening the store (what a restarted agent sees), one
 * running evacuation at a time, and a v2 file upgraded to hold them. */
#include <stdio.h>
#include <string.h>

#include "store-test.h"
#include "store/evac.h"
#include "store/store-internal.h"

static vgm_evac_vm vm(const char *uuid, const char *name, const char *target, int64_t pause_ms)
{
	return (vgm_evac_vm){ .domain_uuid = (char *)uuid, .domain_name = (char *)name,
			      .target = (char *)target, .state = target ? "pending" : "left_behind",
			      .code = target ? NULL : "no_capacity",
			      .message = target ? NULL : "no target has room", .pause_ms = pause_ms };
}

static void test_roundtrip_and_resume(void **state)
{
	env *e = *state;
	env_open(e);
	vgm_evac_vm vms[] = { vm(SRC1, "small", "hostB", 80), vm(SRC2, "big", "hostC", -1),
			      vm(SRC3, "stuck", NULL, 300) };
	vgm_evacuation ev = { "evac-1", "running", "{\"host\":\"hostA\"}", 0, 0, vms, 3 };
	vgm_error err = { 0 };
	assert_int_equal(vgm_evac_create(e->s, &ev, &err), 0);

	vgm_evac_vm upd = vm(SRC1, "small", "hostB", 80);
	upd.state = "migrating";
	upd.migration_id = "m-1";
	assert_int_equal(vgm_evac_vm_set(e->s, "evac-1", &upd, &err), 0);

	env_close(e); /* the agent restarts */
	env_open(e);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(vgm_evac_list(e->s, "running", &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "evac-1");
	store_strv_free(ids, n);
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *got = NULL;
	assert_int_equal(vgm_evac_get(e->s, "evac-1", &got, &err), 0);
	assert_string_equal(got->request, "{\"host\":\"hostA\"}");
	assert_int_equal(got->n_vms, 3);
	assert_string_equal(got->vms[0].domain_name, "small");
	assert_string_equal(got->vms[0].state, "migrating");
	assert_string_equal(got->vms[0].migration_id, "m-1");
	assert_int_equal(got->vms[0].pause_ms, 80);
	assert_int_equal(got->vms[1].pause_ms, -1);
	assert_null(got->vms[2].target);
	assert_string_equal(got->vms[2].code, "no_capacity");

	/* one running evacuation at a time; a finished one does not count */
	vgm_evacuation second = { "evac-2", "running", "{}", 0, 0, NULL, 0 };
	assert_int_equal(vgm_evac_create(e->s, &second, &err), -EBUSY);
	assert_string_equal(err.reason, "evacuation_running");
	assert_int_equal(vgm_evac_set_state(e->s, "evac-1", "done", &err), 0);
	assert_int_equal(vgm_evac_create(e->s, &second, &err), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM evacuation_vms"), 3);

	/* a state the schema does not know is refused and changes nothing */
	upd.state = "teleported";
	assert_true(vgm_evac_vm_set(e->s, "evac-1", &upd, &err) < 0);
	assert_string_equal(err.reason, "store_error");
	vgm_evacuation *none = NULL;
	assert_int_equal(vgm_evac_get(e->s, "nope", &none, &err), -ENOENT);
	assert_null(none);
}

/* A v2 file (before evacuations) gains the tables and keeps its claims. */
static void test_upgrade_from_v2(void **state)
{
	env *e = *state;
	char p[128];
	snprintf(p, sizeof(p), "%s/vgpumig.db", e->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(store_schema_upgrade(db, 2, NULL), 0);
	sqlite3_close(db);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM sqlite_master WHERE name = 'evacuations'"),
			 0);
	env_open(e);
	assert_int_equal(vgm_store_schema_version(e->s), VGM_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM sqlite_master WHERE name IN "
				      "('evacuations','evacuation_vms')"),
			 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_and_resume, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v2, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
