/* test-inventory-parts.c: the reads a kept-current inventory is built from
 * (one parent, the instances alone), the deep copy, and the host's
 * inventory source, each checked against a full read of the tests/data/sysfs
 * trees (m10: mdev on GPUs, a100: mdev on VFs, h100: NVIDIA's VF interface). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "device/device.h"

#define DATA "../data/sysfs" /* tests run in tests/unit */

static const char *const trees[] = { DATA "/m10", DATA "/a100", DATA "/h100" };

static vgm_host *host(const char *root)
{
	vgm_host *h = NULL;
	assert_int_equal(vgm_host_new(root, &h, NULL), 0);
	return h;
}

static vgm_inventory *scan(vgm_host *h)
{
	vgm_inventory *inv = NULL;
	vgm_error e = { 0 };
	if (vgm_inventory_scan(h, &inv, &e) < 0)
		fail_msg("scan: %s", vgm_error_message(&e));
	return inv;
}

/* Same JSON forms (devices and types) for both. */
static void assert_same(const vgm_inventory *a, const vgm_inventory *b)
{
	json_t *da = vgm_inventory_devices_json(a), *db = vgm_inventory_devices_json(b);
	json_t *ta = vgm_inventory_types_json(a), *tb = vgm_inventory_types_json(b);
	assert_true(json_equal(da, db));
	assert_true(json_equal(ta, tb));
	json_decref(da);
	json_decref(db);
	json_decref(ta);
	json_decref(tb);
}

/* Every parent read on its own equals the one in the full read. */
static void test_parent_read(void **state)
{
	for (size_t t = 0; t < sizeof(trees) / sizeof(trees[0]); t++) {
		vgm_host *h = host(trees[t]);
		vgm_inventory *full = scan(h);
		vgm_inventory one = { .driver_version = full->driver_version,
				      .instances = full->instances, .n_instances = full->n_instances };
		assert_true(full->n_parents > 0);
		one.parents = calloc(full->n_parents, sizeof(vgm_parent));
		for (size_t i = 0; i < full->n_parents; i++) {
			vgm_error e = { 0 };
			if (vgm_inventory_load_parent(h, full->parents[i].address,
						      &one.parents[one.n_parents++], &e) < 0)
				fail_msg("%s: %s", full->parents[i].address, vgm_error_message(&e));
		}
		assert_same(full, &one);
		for (size_t i = 0; i < one.n_parents; i++)
			vgm_parent_clear(&one.parents[i]);
		free(one.parents);
		vgm_inventory_free(full);
		vgm_host_free(h);
	}
}

static void test_parent_read_refusals(void **state)
{
	vgm_host *h = host(DATA "/a100");
	vgm_parent p = { 0 };
	vgm_error e = { 0 };
	assert_int_equal(vgm_inventory_load_parent(h, "0000:99:00.0", &p, &e), -ENOENT);
	assert_string_equal(e.reason, "no_parent");
	assert_non_null(strstr(e.message, "0000:99:00.0"));
	assert_int_equal(vgm_inventory_load_parent(h, "../../etc", &p, &e), -EINVAL);
	assert_string_equal(e.reason, "invalid_id");
	assert_null(p.address);
	vgm_host_free(h);
}

/* The instances alone, named from an earlier read, equal the full read's. */
static void test_instances_read(void **state)
{
	for (size_t t = 0; t < sizeof(trees) / sizeof(trees[0]); t++) {
		vgm_host *h = host(trees[t]);
		vgm_inventory *full = scan(h);
		vgm_inventory mixed = *full;
		assert_int_equal(vgm_inventory_load_instances(h, full, &mixed.instances,
							      &mixed.n_instances, NULL), 0);
		assert_same(full, &mixed);
		vgm_instances_free(mixed.instances, mixed.n_instances);
		/* without an earlier read: mdev instances found, but unnamed */
		vgm_instance *bare = NULL;
		size_t n = 0;
		assert_int_equal(vgm_inventory_load_instances(h, NULL, &bare, &n, NULL), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(bare[i].kind, VGM_BACKEND_MDEV);
			assert_null(bare[i].profile_name);
			assert_non_null(vgm_inventory_find_instance(full, bare[i].id));
		}
		vgm_instances_free(bare, n);
		vgm_inventory_free(full);
		vgm_host_free(h);
	}
}

static void test_dup(void **state)
{
	for (size_t t = 0; t < sizeof(trees) / sizeof(trees[0]); t++) {
		vgm_host *h = host(trees[t]);
		vgm_inventory *full = scan(h), *copy = vgm_inventory_dup(full);
		assert_non_null(copy);
		assert_same(full, copy);
		assert_true(full->n_parents == 0 || copy->parents[0].address != full->parents[0].address);
		vgm_inventory_free(full);
		vgm_inventory_free(copy);
		vgm_host_free(h);
	}
}

static int calls;

static int counting_source(void *ctx, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	calls++;
	*out = vgm_inventory_dup(ctx);
	return *out ? 0 : -ENOMEM;
}

/* With a source set, vgm_inventory_load answers from it; a scan still reads sysfs. */
static void test_source(void **state)
{
	vgm_host *h = host(DATA "/a100");
	vgm_inventory *full = scan(h), *got = NULL;
	vgm_inventory empty = { 0 };
	vgm_host_set_inventory_source(h, counting_source, &empty);
	assert_int_equal(vgm_inventory_load(h, &got, NULL), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(got->n_parents, 0);
	vgm_inventory_free(got);
	vgm_inventory *again = scan(h);
	assert_int_equal(calls, 1);
	assert_same(full, again);
	vgm_host_set_inventory_source(h, NULL, NULL);
	assert_int_equal(vgm_inventory_load(h, &got, NULL), 0);
	assert_int_equal(calls, 1);
	assert_same(full, got);
	vgm_inventory_free(got);
	vgm_inventory_free(again);
	vgm_inventory_free(full);
	vgm_host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_read), cmocka_unit_test(test_parent_read_refusals),
		cmocka_unit_test(test_instances_read), cmocka_unit_test(test_dup),
		cmocka_unit_test(test_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
