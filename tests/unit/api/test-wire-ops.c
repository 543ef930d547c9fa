/* test-wire-ops.c: codecs of the cold-migration request and reply and of
 * the disk check: round trips, and every bad field named in the error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/wire-ops.h"
#include "place/place.h"
#include "store/evac.h"

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static void test_cold_req(void **state)
{
	(void)state;
	vgm_wire_cold_req in = { "gpu-vm", "hostB", vgm_limit_of(30000), true };
	_cleanup_free_ char *s = dump(vgm_wire_cold_req_encode(&in));
	vgm_wire_cold_req *r = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_wire_cold_req_decode(s, strlen(s), &r, &e), 0);
	assert_string_equal(r->domain, "gpu-vm");
	assert_string_equal(r->to, "hostB");
	assert_true(r->shutdown_timeout_ms.set);
	assert_int_equal(r->shutdown_timeout_ms.value, 30000);
	assert_true(r->force);
	vgm_wire_cold_req_free(r);

	/* not given stays unset, never a magic 0 */
	const char *bare = "{\"domain\":\"d\",\"to\":\"hostB\"}";
	assert_int_equal(vgm_wire_cold_req_decode(bare, strlen(bare), &r, &e), 0);
	assert_false(r->shutdown_timeout_ms.set);
	assert_false(r->force);
	vgm_wire_cold_req_free(r);

	static const struct { const char *json, *words; } bad[] = {
		{ "{\"to\":\"hostB\"}", "field 'domain' is missing" },
		{ "{\"domain\":\"d\",\"to\":\"../x\"}", "field 'to': '../x'" },
		{ "{\"domain\":\"d\",\"to\":\"b\",\"shutdown_timeout_ms\":-1}", "shutdown_timeout_ms" },
		{ "{\"domain\":\"d\",\"to\":\"b\",\"force\":\"yes\"}", "field 'force'" },
		{ "[1]", "JSON object" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vgm_error_clear(&e);
		assert_int_equal(vgm_wire_cold_req_decode(bad[i].json, strlen(bad[i].json), &r, &e),
				 -EINVAL);
		assert_null(r);
		if (!strstr(e.message, bad[i].words))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].json, e.message, bad[i].words);
	}
}

static void test_cold_result(void **state)
{
	(void)state;
	vgm_wire_cold_result in = { "cold-1", "gpu-vm", "hostB", "releasing: busy" };
	json_t *o = vgm_wire_cold_result_encode(&in);
	vgm_wire_cold_result *r = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_wire_cold_result_from_json(o, &r, &e), 0);
	assert_string_equal(r->id, "cold-1");
	assert_string_equal(r->warnings, "releasing: busy");
	vgm_wire_cold_result_free(r);
	json_object_del(o, "id");
	assert_int_equal(vgm_wire_cold_result_from_json(o, &r, &e), -EINVAL);
	assert_non_null(strstr(e.message, "'id'"));
	json_decref(o);
}

static void test_paths(void **state)
{
	(void)state;
	char *in[] = { "/var/lib/images/a.qcow2", "/dev/vg0/b" };
	_cleanup_free_ char *s = dump(vgm_wire_paths_encode("paths", in, 2));
	char **p = NULL;
	size_t n = 0;
	vgm_error e = { 0 };
	assert_int_equal(vgm_wire_paths_decode(s, strlen(s), "paths", &p, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(p[1], "/dev/vg0/b");
	assert_null(p[2]);
	vgm_strv_free(p, n);

	static const char *const bad[] = {
		"{\"paths\":[\"relative/x\"]}",
		"{\"paths\":[\"/a/../etc/shadow\"]}",
		"{\"paths\":[\"/a/..\"]}",
		"{\"paths\":[\"/a\\nb\"]}",
		"{\"paths\":[3]}",
		"{\"paths\":\"/a\"}",
		"{}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vgm_wire_paths_decode(bad[i], strlen(bad[i]), "paths", &p, &n, &e),
				 -EINVAL);
		assert_null(p);
		assert_non_null(strstr(e.message, "paths"));
	}
	json_t *many = json_array();
	for (int i = 0; i <= VGM_WIRE_MAX_PATHS; i++)
		json_array_append_new(many, json_string("/a"));
	json_t *o = json_pack("{s:o}", "paths", many);
	assert_int_equal(vgm_wire_paths_from_json(o, "paths", &p, &n, &e), -EINVAL);
	json_decref(o);
}

static void test_evac_req(void **state)
{
	(void)state;
	char *to[] = { "hostB", "hostC" };
	vgm_wire_evac_req in = { "hostA", to, 2, vgm_limit_of(3), vgm_limit_of(500), true, true };
	_cleanup_free_ char *s = dump(vgm_wire_evac_req_encode(&in));
	_cleanup_(vgm_wire_evac_req_freep) vgm_wire_evac_req *r = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_wire_evac_req_decode(s, strlen(s), &r, &e), 0);
	assert_string_equal(r->host, "hostA");
	assert_int_equal(r->n_to, 2);
	assert_string_equal(r->to[1], "hostC");
	assert_true(r->parallel.set && r->parallel.value == 3);
	assert_true(r->max_downtime_ms.set && r->max_downtime_ms.value == 500);
	assert_true(r->dry_run && r->cold_fallback);
	static const struct { const char *json, *words; } bad[] = {
		{ "{}", "'host' is missing" },
		{ "{\"host\":\"a\",\"to\":[\"../b\"]}", "'to[0]'" },
		{ "{\"host\":\"a\",\"to\":\"b\"}", "'to' must be a list" },
		{ "{\"host\":\"a\",\"parallel\":0}", "'parallel' must be 1 to 64" },
		{ "{\"host\":\"a\",\"parallel\":65}", "'parallel' must be 1 to 64" },
		{ "{\"host\":\"a\",\"dry_run\":1}", "'dry_run'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vgm_wire_evac_req *x = NULL;
		assert_int_equal(vgm_wire_evac_req_decode(bad[i].json, strlen(bad[i].json), &x, &e),
				 -EINVAL);
		assert_null(x);
		if (!strstr(e.message, bad[i].words))
			fail_msg("'%s': '%s' lacks '%s'", bad[i].json, e.message, bad[i].words);
	}
}

static void test_evacuation_snapshot(void **state)
{
	(void)state;
	vgm_evac_vm vms[] = {
		{ "u1", "vm1", "hostB", "moved", "m1", NULL, NULL, 80 },
		{ "u2", "vm2", NULL, "left_behind", NULL, "no_capacity", "no room", -1 },
		{ "u3", "vm3", "hostC", "cold_moved", "cold-1", NULL, NULL, 120 },
		{ "u4", "vm4", "hostC", "migrating", "m4", NULL, NULL, 90 },
	};
	vgm_evacuation e = { "ev-1", "running", "{}", 0, 0, vms, 4 };
	json_t *o = vgm_wire_evacuation_encode(&e);
	json_t *sum = json_object_get(o, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "moved")), 1);
	assert_int_equal(json_integer_value(json_object_get(sum, "cold_moved")), 1);
	assert_int_equal(json_integer_value(json_object_get(sum, "left_behind")), 1);
	assert_int_equal(json_integer_value(json_object_get(sum, "pending")), 1);
	vgm_evacuation *back = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_wire_evacuation_from_json(o, &back, &err), 0);
	assert_int_equal(back->n_vms, 4);
	assert_null(back->vms[1].target);
	assert_int_equal(back->vms[1].pause_ms, -1);
	assert_string_equal(back->vms[2].migration_id, "cold-1");
	vgm_evacuation_free(back);
	json_object_del(json_array_get(json_object_get(o, "vms"), 3), "state");
	assert_int_equal(vgm_wire_evacuation_from_json(o, &back, &err), -EINVAL);
	assert_non_null(strstr(err.message, "'state'"));
	json_decref(o);
}

static void test_capacity(void **state)
{
	(void)state;
	vgm_place_slot slots[] = { { "NVIDIA A100-4C", 10 }, { "NVIDIA A100-40C", 1 } };
	vgm_place_gpu gpus[] = { { "0000:41:00.0", slots, 2, "NVIDIA A100-4C", 3 },
				 { "0000:42:00.0", slots, 2, NULL, 0 } };
	vgm_place_target t = { "hostB", VGM_LIMIT_UNSET, gpus, 2 };
	json_t *o = vgm_wire_capacity_encode(&t);
	vgm_place_target back;
	vgm_error e = { 0 };
	assert_int_equal(vgm_wire_capacity_from_json(o, &back, &e), 0);
	assert_string_equal(back.name, "hostB");
	assert_int_equal(back.n_gpus, 2);
	assert_string_equal(back.gpus[0].current_profile, "NVIDIA A100-4C");
	assert_int_equal(back.gpus[0].used, 3);
	assert_null(back.gpus[1].current_profile);
	assert_int_equal(back.gpus[1].slots[1].max_instances, 1);
	vgm_wire_capacity_free(&back);
	json_object_del(json_array_get(json_object_get(o, "gpus"), 1), "used");
	assert_int_equal(vgm_wire_capacity_from_json(o, &back, &e), -EINVAL);
	assert_non_null(strstr(e.message, "'used'"));
	assert_null(back.gpus);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_req),
		cmocka_unit_test(test_cold_result),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_evac_req),
		cmocka_unit_test(test_evacuation_snapshot),
		cmocka_unit_test(test_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
