/* test-wire.c: the agent API's JSON codecs (lib/api/wire): round trips,
 * and every kind of bad input refused with a message naming the field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/wire.h"

#define UUID1 "c2177883-f1bb-47f0-914d-32a22e3a8804"
#define UUID2 "11111111-2222-3333-4444-555555555555"

static const char good_claim[] =
	"{\"migration_id\":\"m-1\",\"domain_uuid\":\"C2177883-F1BB-47F0-914D-32A22E3A8804\","
	"\"domain_name\":\"gpu vm 7\",\"source_host\":\"host-a\",\"extra\":42,"
	"\"devices\":[{\"source_id\":\"" UUID2 "\",\"kind\":\"mdev\",\"profile_name\":\"NVIDIA A100-4C\","
	"\"framebuffer_bytes\":4294967296,\"type_id\":\"nvidia-471\"},"
	"{\"source_id\":\"0000:41:00.4\",\"kind\":\"vf\",\"profile_name\":\"NVIDIA H100-1-10C\"}]}";

static void test_claim_request_decode(void **state)
{
	vgm_wire_claim_req *r = NULL;
	vgm_error err = { 0 };

	(void)state;
	assert_int_equal(vgm_wire_claim_req_decode(good_claim, strlen(good_claim), &r, &err), 0);
	assert_string_equal(r->migration_id, "m-1");
	assert_string_equal(r->domain_uuid, UUID1); /* lowercased */
	assert_string_equal(r->domain_name, "gpu vm 7");
	assert_int_equal(r->n_devices, 2);
	assert_string_equal(r->devices[0].kind, "mdev");
	assert_int_equal(r->devices[0].framebuffer_bytes, 4294967296ull);
	assert_string_equal(r->devices[0].type_id, "nvidia-471");
	assert_string_equal(r->devices[1].source_id, "0000:41:00.4");
	assert_null(r->devices[1].type_id);
	assert_int_equal(r->devices[1].framebuffer_bytes, 0);
	vgm_wire_claim_req_free(r);
}

static void test_claim_request_roundtrip(void **state)
{
	vgm_wire_claim_req *r = NULL, *r2 = NULL;
	char *text;
	json_t *j;

	(void)state;
	assert_int_equal(vgm_wire_claim_req_decode(good_claim, strlen(good_claim), &r, NULL), 0);
	j = vgm_wire_claim_req_encode(r);
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_int_equal(vgm_wire_claim_req_decode(text, strlen(text), &r2, NULL), 0);
	assert_string_equal(r2->domain_uuid, r->domain_uuid);
	assert_int_equal(r2->n_devices, r->n_devices);
	for (size_t i = 0; i < r->n_devices; i++) {
		assert_string_equal(r2->devices[i].source_id, r->devices[i].source_id);
		assert_string_equal(r2->devices[i].profile_name, r->devices[i].profile_name);
		assert_int_equal(r2->devices[i].framebuffer_bytes, r->devices[i].framebuffer_bytes);
	}
	free(text);
	vgm_wire_claim_req_free(r);
	vgm_wire_claim_req_free(r2);
}

/* Decode json and expect EINVAL with a message containing want. */
static void expect_bad_claim(const char *json, const char *want)
{
	vgm_wire_claim_req *r = (vgm_wire_claim_req *)1;
	vgm_error err = { 0 };
	int ret = vgm_wire_claim_req_decode(json, strlen(json), &r, &err);

	if (ret >= 0 || !strstr(err.message, want))
		fail_msg("input %s: got %d '%s', wanted a message with '%s'", json, ret, err.message, want);
	assert_null(r);
	assert_string_equal(err.reason, "invalid_request");
	assert_int_equal(err.code, EINVAL);
}

#define HEAD "{\"migration_id\":\"m\",\"domain_uuid\":\"" UUID1 "\",\"domain_name\":\"d\",\"source_host\":\"a\","
#define DEV(id, kind) "{\"source_id\":\"" id "\",\"kind\":\"" kind "\",\"profile_name\":\"P\"}"

static void test_claim_request_errors(void **state)
{
	(void)state;
	expect_bad_claim("", "empty");
	expect_bad_claim("{", "malformed JSON");
	expect_bad_claim("[1]", "not a JSON object");
	expect_bad_claim("{\"a\":1,\"a\":2}", "malformed JSON");
	expect_bad_claim(HEAD "\"devices\":[" DEV("../x", "mdev") "]}",
			 "field 'devices[0].source_id': '../x' is not a UUID or PCI address");
	expect_bad_claim(HEAD "\"devices\":[" DEV("0000:41:00.4", "mdev") "]}",
			 "does not match kind 'mdev'");
	expect_bad_claim(HEAD "\"devices\":[" DEV(UUID2, "gpu") "]}", "'devices[0].kind'");
	expect_bad_claim(HEAD "\"devices\":[" DEV(UUID2, "mdev") "," DEV(UUID2, "mdev") "]}",
			 "listed twice");
	expect_bad_claim(HEAD "\"devices\":[]}", "1 to 64 devices");
	expect_bad_claim(HEAD "\"devices\":{}}", "'devices' must be an array");
	expect_bad_claim(HEAD "\"devices\":[1]}", "'devices[0]' must be an object");
	expect_bad_claim(HEAD "\"devices\":[{\"source_id\":\"" UUID2 "\",\"kind\":\"mdev\"}]}",
			 "field 'devices[0].profile_name' is missing");
	expect_bad_claim(HEAD "\"devices\":[{\"source_id\":\"" UUID2
			      "\",\"kind\":\"mdev\",\"profile_name\":\"P\",\"framebuffer_bytes\":-1}]}",
			 "'devices[0].framebuffer_bytes' must be a non-negative integer");
	expect_bad_claim(HEAD "\"devices\":[{\"source_id\":\"" UUID2
			      "\",\"kind\":\"mdev\",\"profile_name\":\"P\",\"type_id\":\"../../x\"}]}",
			 "'devices[0].type_id'");
	expect_bad_claim(HEAD "\"devices\":[{\"source_id\":\"" UUID2
			      "\",\"kind\":\"mdev\",\"profile_name\":\"a\\nb\"}]}",
			 "control characters");
	expect_bad_claim("{\"migration_id\":\"../etc\",\"domain_uuid\":\"" UUID1
			 "\",\"domain_name\":\"d\",\"source_host\":\"a\",\"devices\":[" DEV(UUID2, "mdev") "]}",
			 "field 'migration_id'");
	expect_bad_claim("{\"migration_id\":\"m\",\"domain_uuid\":\"nope\",\"domain_name\":\"d\","
			 "\"source_host\":\"a\",\"devices\":[" DEV(UUID2, "mdev") "]}",
			 "field 'domain_uuid': 'nope' is not a UUID");
	expect_bad_claim("{\"migration_id\":5}", "field 'migration_id' must be a string");
	expect_bad_claim("{\"migration_id\":\"m\"}", "field 'domain_uuid' is missing");
	expect_bad_claim("{\"migration_id\":\"m\",\"domain_uuid\":\"" UUID1
			 "\",\"domain_name\":\"d\",\"source_host\":\"a\\u0001b\",\"devices\":[]}",
			 "control characters");
}

static void test_too_large(void **state)
{
	size_t n = VGM_WIRE_MAX_BODY + 1;
	char *big = malloc(n + 1);
	vgm_wire_claim_req *r = NULL;
	vgm_error err = { 0 };

	(void)state;
	memset(big, ' ', n);
	big[n] = '\0';
	assert_int_equal(vgm_wire_claim_req_decode(big, n, &r, &err), -EFBIG);
	assert_string_equal(err.reason, "payload_too_large");
	free(big);
}

static void test_claim_reply(void **state)
{
	vgm_wire_mapping m[] = { { (char *)UUID2, (char *)UUID1, (char *)"NVIDIA A100-4C", true } };
	vgm_wire_claim c = { .claim_id = (char *)UUID1, .state = (char *)"held", .expires_at = 1700000000,
			     .mapping = m, .n_mapping = 1 };
	vgm_wire_claim *d = NULL;
	vgm_error err = { 0 };
	json_t *j = vgm_wire_claim_encode(&c);
	char *text = json_dumps(j, JSON_COMPACT);

	(void)state;
	assert_null(json_object_get(j, "migration_id")); /* NULL fields are left out */
	assert_int_equal(vgm_wire_claim_decode(text, strlen(text), &d, &err), 0);
	assert_string_equal(d->claim_id, UUID1);
	assert_string_equal(d->state, "held");
	assert_int_equal(d->expires_at, 1700000000);
	assert_int_equal(d->n_mapping, 1);
	assert_string_equal(d->mapping[0].target_id, UUID1);
	assert_true(d->mapping[0].created);
	vgm_wire_claim_free(d);
	free(text);
	json_decref(j);

	const char bad[] = "{\"claim_id\":\"" UUID1 "\",\"mapping\":[{\"source_id\":\"" UUID2
			   "\",\"target_id\":\"/etc/passwd\"}]}";
	assert_int_equal(vgm_wire_claim_decode(bad, strlen(bad), &d, &err), -EINVAL);
	assert_non_null(strstr(err.message, "mapping[0].target_id"));
	assert_null(d);
}

static void test_errors(void **state)
{
	vgm_error e = { 0 }, d = { 0 };
	json_t *j = vgm_wire_error_encode("no_capacity", "no free vGPU");
	char *text = json_dumps(j, JSON_COMPACT);

	(void)state;
	assert_string_equal(text, "{\"code\":\"no_capacity\",\"message\":\"no free vGPU\"}");
	assert_int_equal(vgm_wire_error_decode(text, strlen(text), 409, &d), -EBUSY);
	assert_string_equal(d.reason, "no_capacity");
	assert_string_equal(d.message, "no free vGPU");
	assert_int_equal(vgm_wire_error_decode("<html>", 6, 502, &d), -EIO);
	assert_non_null(strstr(d.message, "HTTP 502"));
	free(text);
	json_decref(j);

	vgm_error_setr(&e, EINVAL, "invalid_id", "x");
	assert_int_equal(vgm_wire_error_status(&e), 400);
	vgm_error_setr(&e, ENOENT, "not_found", "x");
	assert_int_equal(vgm_wire_error_status(&e), 404);
	vgm_error_setr(&e, ENOSPC, "no_capacity", "x");
	assert_int_equal(vgm_wire_error_status(&e), 409);
	vgm_error_setr(&e, ENODEV, "unknown_profile", "x");
	assert_int_equal(vgm_wire_error_status(&e), 409);
	vgm_error_setr(&e, EIO, "store_error", "x");
	assert_int_equal(vgm_wire_error_status(&e), 500);
	vgm_error_setr(&e, EFBIG, "payload_too_large", "x");
	assert_int_equal(vgm_wire_error_status(&e), 413);
	vgm_error_set(&e, EIO, "x");
	assert_int_equal(vgm_wire_error_status(&e), 500);
	vgm_error_set(&e, EINVAL, "x");
	assert_int_equal(vgm_wire_error_status(&e), 400);
	assert_int_equal(vgm_wire_reason_errno("invalid_request"), EINVAL);
	assert_int_equal(vgm_wire_reason_errno("no_capacity"), ENOSPC);
	assert_int_equal(vgm_wire_reason_errno("something_new"), EIO);
}

static void test_hook_event(void **state)
{
	vgm_wire_hook_event *e = NULL;
	vgm_error err = { 0 };
	const char ok[] = "{\"domain_uuid\":\"" UUID1 "\",\"domain_name\":\"vm\",\"op\":\"release\",\"sub_op\":\"end\"}";
	const char bad_op[] = "{\"domain_name\":\"vm\",\"op\":\"rm -rf /\"}";
	const char no_name[] = "{\"op\":\"release\"}";
	json_t *j;

	(void)state;
	assert_int_equal(vgm_wire_hook_event_decode(ok, strlen(ok), &e, &err), 0);
	assert_string_equal(e->op, "release");
	assert_string_equal(e->sub_op, "end");
	j = vgm_wire_hook_event_encode(e);
	assert_string_equal(json_string_value(json_object_get(j, "domain_uuid")), UUID1);
	json_decref(j);
	vgm_wire_hook_event_free(e);
	assert_int_equal(vgm_wire_hook_event_decode(bad_op, strlen(bad_op), &e, &err), -EINVAL);
	assert_non_null(strstr(err.message, "field 'op'"));
	assert_int_equal(vgm_wire_hook_event_decode(no_name, strlen(no_name), &e, &err), -EINVAL);
	assert_non_null(strstr(err.message, "'domain_name' is missing"));
}

static void test_migration_request(void **state)
{
	vgm_wire_migration_req *r = NULL, *r2 = NULL;
	vgm_error err = { 0 };
	const char ok[] = "{\"domain\":\"gpu-vm-7\",\"to\":\"host-b\",\"max_downtime_ms\":2000,\"dry_run\":true}";
	const char bad[] = "{\"domain\":\"gpu-vm-7\",\"to\":\"host-b\",\"timeout_ms\":\"soon\"}";
	const char bad_to[] = "{\"domain\":\"gpu-vm-7\",\"to\":\"host/b\"}";
	json_t *j;
	char *text;

	(void)state;
	assert_int_equal(vgm_wire_migration_req_decode(ok, strlen(ok), &r, &err), 0);
	assert_true(r->max_downtime_ms.set);
	assert_int_equal(r->max_downtime_ms.value, 2000);
	assert_false(r->bandwidth_bps.set);
	assert_false(r->timeout_ms.set);
	assert_true(r->dry_run);
	assert_false(r->force);
	j = vgm_wire_migration_req_encode(r);
	text = json_dumps(j, 0);
	assert_int_equal(vgm_wire_migration_req_decode(text, strlen(text), &r2, &err), 0);
	assert_int_equal(r2->max_downtime_ms.value, 2000);
	assert_false(r2->bandwidth_bps.set);
	vgm_wire_migration_req_free(r2);
	r2 = NULL;
	/* 0 is a value, not "unset", both ways */
	r->bandwidth_bps = vgm_limit_of(0);
	json_decref(j);
	free(text);
	j = vgm_wire_migration_req_encode(r);
	text = json_dumps(j, 0);
	assert_int_equal(vgm_wire_migration_req_decode(text, strlen(text), &r2, &err), 0);
	assert_true(r2->bandwidth_bps.set);
	assert_int_equal(r2->bandwidth_bps.value, 0);
	free(text);
	json_decref(j);
	vgm_wire_migration_req_free(r);
	vgm_wire_migration_req_free(r2);
	assert_int_equal(vgm_wire_migration_req_decode(bad, strlen(bad), &r, &err), -EINVAL);
	assert_non_null(strstr(err.message, "'timeout_ms'"));
	assert_int_equal(vgm_wire_migration_req_decode(bad_to, strlen(bad_to), &r, &err), -EINVAL);
	assert_non_null(strstr(err.message, "field 'to'"));
}

/* GET /v1/host's peers: how migrations to each travel. */
static void test_peers(void **state)
{
	(void)state;
	vgm_wire_peer_info p[] = {
		{ "host-a", "10.0.0.1:7443", "qemu+tls://host-a/system", true },
		{ "host-c", "10.0.0.3:7443", "qemu+tcp://host-c/system", false },
	};
	json_t *o = vgm_wire_peers_encode(p, 2);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "host-a"), "migration")),
			    "tls");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "host-c"), "migration")),
			    "clear text");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "host-c"), "address")),
			    "10.0.0.3:7443");
	json_decref(o);
	o = vgm_wire_peers_encode(NULL, 0);
	assert_int_equal(json_object_size(o), 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_request_decode),
		cmocka_unit_test(test_claim_request_roundtrip),
		cmocka_unit_test(test_claim_request_errors),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_claim_reply),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hook_event),
		cmocka_unit_test(test_migration_request),
		cmocka_unit_test(test_peers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
