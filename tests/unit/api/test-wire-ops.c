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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_req),
		cmocka_unit_test(test_cold_result),
		cmocka_unit_test(test_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
