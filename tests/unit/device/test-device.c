/* test-device.c: lib/device against the hand-made sysfs trees in
 * tests/data/sysfs (m10: mdev on physical GPUs; a100: mdev on SR-IOV VFs;
 * h100: NVIDIA's VF interface).  Tests that write work on a private copy of a
 * tree; every refusal is checked to leave the whole tree byte-identical. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "device/device.h"
#include "util/fs.h"
#include "util/validate.h"

#define DATA "../data/sysfs" /* tests run in tests/unit */
#define GiB (1ull << 30)

static const char *M10_UUID = "c2177883-f1bb-47f0-914d-32a22e3a8804";

static vgm_inventory *load(const char *root)
{
	vgm_host *h = NULL;
	vgm_inventory *inv = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_host_new(root, &h, &e), 0);
	if (vgm_inventory_load(h, &inv, &e) < 0)
		fail_msg("inventory of %s: %s", root, vgm_error_message(&e));
	vgm_host_free(h);
	return inv;
}

/* A private copy of a data tree, removed by the caller with drop_tree(). */
static char *copy_tree(const char *name)
{
	char tmpl[] = "/tmp/vgm-test-device-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *cmd = NULL, *root = NULL;
	assert_true(asprintf(&cmd, "cp -a '%s/%s/.' '%s/'", DATA, name, tmpl) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	root = strdup(tmpl);
	return root;
}

static void drop_tree(char *root)
{
	char *cmd = NULL;
	assert_true(asprintf(&cmd, "rm -rf '%s'", root) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(root);
}

/* A digest of a tree: every path, its type, and every file's bytes.  nftw has
 * no user pointer, hence the one file-scope accumulator (tests only). */
static unsigned long long digest_acc;
static int digest_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	unsigned long long h = 14695981039346656037ull; /* order-independent: summed */
	for (const char *p = path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h ^= (unsigned long long)flag << 7 ^ (unsigned long long)st->st_size;
	if (flag == FTW_F) {
		char *buf = NULL;
		size_t n = 0;
		if (vgm_read_file(path, 1 << 20, &buf, &n) == 0)
			for (size_t i = 0; i < n; i++)
				h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
		free(buf);
	}
	digest_acc += h;
	return 0;
}

static unsigned long long tree_digest(const char *root)
{
	digest_acc = 0;
	assert_int_equal(nftw(root, digest_one, 16, FTW_PHYS), 0);
	return digest_acc;
}

static void test_m10_inventory(void **state)
{
	(void)state;
	vgm_inventory *inv = load(DATA "/m10");
	assert_string_equal(inv->driver_version, "535.183.04");
	assert_int_equal(inv->n_parents, 2);
	const vgm_parent *p = &inv->parents[0];
	assert_string_equal(p->address, "0000:3d:00.0");
	assert_string_equal(p->physfn, "0000:3d:00.0");
	assert_string_equal(p->board, "M10");
	assert_int_equal(p->backend, VGM_BACKEND_MDEV);
	/* "bad name" is skipped; ids sort in version order (nvidia-160 last). */
	assert_int_equal(inv->parents[1].n_profiles, 5);
	assert_string_equal(p->profiles[0].type_id, "nvidia-35");
	assert_string_equal(p->profiles[4].type_id, "nvidia-160");
	const vgm_profile *pr = vgm_parent_find_profile(p, "nvidia-38");
	assert_non_null(pr);
	assert_string_equal(pr->name, "GRID M10-2Q");
	assert_string_equal(pr->device_api, "vfio-pci");
	assert_int_equal(pr->available, 3);
	assert_int_equal(pr->max_instances, 4);
	assert_true(pr->framebuffer_bytes == 2 * GiB);
	assert_int_equal(pr->license_class, 'Q');
	assert_int_equal(vgm_parent_find_profile(p, "nvidia-37")->available, 0);
	assert_int_equal(vgm_parent_find_profile(&inv->parents[1], "nvidia-37")->available, 8);
	assert_null(vgm_parent_find_profile(p, "nvidia-999"));
	/* not-a-uuid is skipped. */
	assert_int_equal(inv->n_instances, 1);
	const vgm_instance *in = vgm_inventory_find_instance(inv, "C2177883-F1BB-47F0-914D-32A22E3A8804");
	assert_non_null(in);
	assert_int_equal(in->kind, VGM_BACKEND_MDEV);
	assert_string_equal(in->id, M10_UUID);
	assert_string_equal(in->parent, "0000:3d:00.0");
	assert_string_equal(in->type_id, "nvidia-38");
	assert_string_equal(in->profile_name, "GRID M10-2Q");
	assert_true(in->framebuffer_bytes == 2 * GiB);
	assert_null(vgm_inventory_find_parent(inv, "0000:99:00.0"));
	assert_non_null(vgm_inventory_find_parent(inv, "0000:3E:00.0"));
	vgm_inventory_free(inv);
}

static void test_a100_inventory(void **state)
{
	(void)state;
	vgm_inventory *inv = load(DATA "/a100");
	/* No sys/module/nvidia/version: taken from /proc/driver/nvidia/version. */
	assert_string_equal(inv->driver_version, "550.90.05");
	assert_int_equal(inv->n_parents, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(inv->parents[i].physfn, "0000:41:00.0");
		assert_string_equal(inv->parents[i].board, "A100");
		assert_int_equal(inv->parents[i].n_profiles, 3);
	}
	assert_string_equal(inv->parents[2].address, "0000:41:00.6");
	const vgm_profile *pr = vgm_parent_find_profile(&inv->parents[1], "nvidia-471");
	assert_string_equal(pr->name, "NVIDIA A100-4C");
	assert_int_equal(pr->available, 1);
	assert_true(pr->framebuffer_bytes == 4 * GiB);
	assert_int_equal(inv->n_instances, 1);
	assert_string_equal(inv->instances[0].parent, "0000:41:00.4");
	assert_string_equal(inv->instances[0].profile_name, "NVIDIA A100-4C");
	vgm_inventory_free(inv);
}

static void test_h100_inventory(void **state)
{
	(void)state;
	vgm_inventory *inv = load(DATA "/h100");
	assert_string_equal(inv->driver_version, "550.90.05");
	/* The PF has no nvidia/ interface: only the three VFs are parents. */
	assert_int_equal(inv->n_parents, 3);
	const vgm_parent *p4 = vgm_inventory_find_parent(inv, "0000:ca:00.4");
	const vgm_parent *p6 = vgm_inventory_find_parent(inv, "0000:ca:00.6");
	assert_int_equal(p4->backend, VGM_BACKEND_VF);
	assert_string_equal(p4->physfn, "0000:ca:00.0");
	assert_string_equal(p4->board, "H100");
	assert_string_equal(p4->current_type_id, "1414");
	assert_null(p6->current_type_id);
	/* Header and garbage lines are skipped. */
	assert_int_equal(p6->n_profiles, 3);
	const vgm_profile *pr = vgm_parent_find_profile(p6, "1417");
	assert_string_equal(pr->name, "NVIDIA H100-4C");
	assert_true(pr->framebuffer_bytes == 4 * GiB);
	assert_int_equal(pr->available, 1);
	assert_int_equal(pr->max_instances, 1);
	assert_int_equal(pr->license_class, 'C');
	assert_int_equal(vgm_parent_find_profile(p4, "1414")->available, 0);
	assert_true(vgm_parent_find_profile(p4, "1414")->framebuffer_bytes == 10 * GiB);
	assert_int_equal(inv->n_instances, 1);
	const vgm_instance *in = &inv->instances[0];
	assert_int_equal(in->kind, VGM_BACKEND_VF);
	assert_string_equal(in->id, "0000:ca:00.4");
	assert_string_equal(in->parent, "0000:ca:00.4");
	assert_string_equal(in->type_id, "1414");
	assert_string_equal(in->profile_name, "NVIDIA H100-1-10C");
	vgm_inventory_free(inv);
}

static void test_empty_host(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/vgm-test-empty-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	vgm_inventory *inv = load(tmpl);
	assert_null(inv->driver_version);
	assert_int_equal(inv->n_parents, 0);
	assert_int_equal(inv->n_instances, 0);
	vgm_inventory_free(inv);
	vgm_host *h = NULL;
	char *v = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_host_new(tmpl, &h, &e), 0);
	assert_int_equal(vgm_driver_version(h, &v, &e), -ENOENT);
	assert_string_equal(e.reason, "no_driver");
	vgm_host_free(h);
	rmdir(tmpl);
}

static void test_host_root(void **state)
{
	(void)state;
	vgm_host *h = NULL;
	unsetenv("VGPUMIG_SYSFS_ROOT");
	assert_int_equal(vgm_host_new(NULL, &h, NULL), 0);
	assert_string_equal(vgm_host_root(h), "/");
	vgm_host_free(h);
	setenv("VGPUMIG_SYSFS_ROOT", DATA "/m10", 1);
	assert_int_equal(vgm_host_new(NULL, &h, NULL), 0);
	assert_string_equal(vgm_host_root(h), DATA "/m10");
	vgm_host_free(h);
	assert_int_equal(vgm_host_new(DATA "/h100", &h, NULL), 0);
	assert_string_equal(vgm_host_root(h), DATA "/h100");
	vgm_host_free(h);
	unsetenv("VGPUMIG_SYSFS_ROOT");
	/* A root that does not exist is an error, not an empty host. */
	vgm_error e = { 0 };
	assert_int_equal(vgm_host_new("/nonexistent/vgpumig-root", &h, &e), -ENOENT);
	assert_string_equal(e.reason, "bad_sysfs_root");
	assert_non_null(strstr(e.message, "/nonexistent/vgpumig-root"));
	assert_int_equal(vgm_host_new(DATA "/m10/sys/module/nvidia/version", &h, &e), -ENOENT);
}

static void test_driver_version_proc_forms(void **state)
{
	(void)state;
	char *root = copy_tree("a100");
	vgm_host *h = NULL;
	char *v = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_host_new(root, &h, &e), 0);
	char *pv = vgm_path(root, "/proc/driver/nvidia/version");
	assert_int_equal(vgm_write_attr(pv, "NVRM version: NVIDIA UNIX Open Kernel Module for "
					    "x86_64  570.124.06  Release Build  (dvs-builder)\n"),
			 0);
	assert_int_equal(vgm_driver_version(h, &v, &e), 0);
	assert_string_equal(v, "570.124.06");
	free(v);
	FILE *f = fopen(pv, "w");
	fputs("something else entirely\n", f);
	fclose(f);
	assert_int_equal(vgm_driver_version(h, &v, &e), -EINVAL);
	assert_non_null(strstr(e.message, "NVRM version"));
	free(pv);
	vgm_host_free(h);
	drop_tree(root);
}

static vgm_host *host_at(const char *root)
{
	vgm_host *h = NULL;
	assert_int_equal(vgm_host_new(root, &h, NULL), 0);
	return h;
}

static char *read_at(const char *root, const char *rel)
{
	char *p = vgm_path(root, "%s", rel), *s = NULL;
	assert_int_equal(vgm_read_attr(p, &s), 0);
	free(p);
	return s;
}

static void test_mdev_create(void **state)
{
	(void)state;
	char *root = copy_tree("m10");
	vgm_host *h = host_at(root);
	char *id = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_device_create(h, "0000:3E:00.0", "nvidia-38",
					   "AAAAAAAA-2222-3333-4444-555555555555", &id, &e),
			 0);
	assert_string_equal(id, "aaaaaaaa-2222-3333-4444-555555555555");
	char *w = read_at(root, "/sys/class/mdev_bus/0000:3e:00.0/mdev_supported_types/nvidia-38/create");
	assert_string_equal(w, id);
	free(w);
	free(id);
	/* Without a UUID one is generated. */
	assert_int_equal(vgm_device_create(h, "0000:3e:00.0", "nvidia-37", NULL, &id, &e), 0);
	assert_true(vgm_uuid_valid(id));
	w = read_at(root, "/sys/class/mdev_bus/0000:3e:00.0/mdev_supported_types/nvidia-37/create");
	assert_string_equal(w, id);
	free(w);
	free(id);
	vgm_host_free(h);
	drop_tree(root);
}

struct refusal {
	const char *parent, *type, *uuid;
	int code;
	const char *reason, *words;
};

static void expect_refusals(const char *tree, const struct refusal *c, size_t n)
{
	char *root = copy_tree(tree);
	vgm_host *h = host_at(root);
	unsigned long long before = tree_digest(root);
	for (size_t i = 0; i < n; i++) {
		vgm_error e = { 0 };
		char *id = NULL;
		int r = vgm_device_create(h, c[i].parent, c[i].type, c[i].uuid, &id, &e);
		if (r != -c[i].code || !STREQ(e.reason, c[i].reason) || !strstr(e.message, c[i].words))
			fail_msg("create %s %s: r=%d reason=%s message=%s", c[i].parent, c[i].type, r,
				 e.reason, e.message);
		assert_null(id);
		assert_true(tree_digest(root) == before);
	}
	vgm_host_free(h);
	drop_tree(root);
}

static void test_mdev_create_refused(void **state)
{
	(void)state;
	static const struct refusal cases[] = {
		{ "0000:3d:00.0", "nvidia-37", NULL, ENOSPC, "no_capacity",
		  "no free instance of type 'nvidia-37' (GRID M10-1Q) on 0000:3d:00.0 (0 available)" },
		{ "0000:3d:00.0", "nvidia-38", "c2177883-f1bb-47f0-914d-32a22e3a8804", EEXIST, "exists",
		  "a vGPU with UUID c2177883-f1bb-47f0-914d-32a22e3a8804 already exists" },
		{ "0000:3d:00.0", "../../x", NULL, EINVAL, "invalid_name", "'../../x'" },
		{ "0000:3d:00.0", "..", NULL, EINVAL, "invalid_name", "type id" },
		{ "0000:3d:00.0", "nvidia-38/../../../x", NULL, EINVAL, "invalid_name", "type id" },
		{ "0000:3d:00.0/..", "nvidia-38", NULL, EINVAL, "invalid_id", "PCI address" },
		{ "../../etc", "nvidia-38", NULL, EINVAL, "invalid_id", "parent" },
		{ "0000:3e:00.0", "nvidia-38", "not-a-uuid", EINVAL, "invalid_id", "not a UUID" },
		{ "0000:3e:00.0", "nvidia-38", "../../../../../../tmp/x-aaaa-bbbb-cccc-dddddddddd", EINVAL,
		  "invalid_id", "UUID" },
		{ "0000:99:00.0", "nvidia-38", NULL, ENOENT, "unknown_parent", "0000:99:00.0" },
		{ "0000:3e:00.0", "nvidia-999", NULL, ENOENT, "unknown_type", "nvidia-999" },
	};
	expect_refusals("m10", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_remove(void **state)
{
	(void)state;
	char *root = copy_tree("m10");
	vgm_host *h = host_at(root);
	vgm_error e = { 0 };
	unsigned long long before = tree_digest(root);
	assert_int_equal(vgm_device_remove(h, "11111111-2222-3333-4444-555555555555", &e), -ENOENT);
	assert_string_equal(e.reason, "not_found");
	assert_int_equal(vgm_device_remove(h, "../../../etc/passwd", &e), -EINVAL);
	assert_string_equal(e.reason, "invalid_id");
	assert_int_equal(vgm_device_remove(h, NULL, &e), -EINVAL);
	assert_int_equal(vgm_device_remove(h, "0000:3d:00.0", &e), -ENOENT); /* not a VF */
	assert_true(tree_digest(root) == before);
	assert_int_equal(vgm_device_remove(h, "C2177883-F1BB-47F0-914D-32A22E3A8804", &e), 0);
	char *w = read_at(root, "/sys/bus/mdev/devices/c2177883-f1bb-47f0-914d-32a22e3a8804/remove");
	assert_string_equal(w, "1");
	free(w);
	/* A remove attribute that cannot be written is reported with the id. */
	char *rm = vgm_path(root, "/sys/bus/mdev/devices/%s/remove", M10_UUID);
	assert_int_equal(unlink(rm), 0);
	assert_int_equal(mkdir(rm, 0755), 0);
	assert_int_equal(vgm_device_remove(h, M10_UUID, &e), -EISDIR);
	assert_string_equal(e.reason, "remove_failed");
	assert_non_null(strstr(e.message, M10_UUID));
	free(rm);
	vgm_host_free(h);
	drop_tree(root);
}

static void test_vf_create_remove(void **state)
{
	(void)state;
	char *root = copy_tree("h100");
	vgm_host *h = host_at(root);
	char *id = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_device_create(h, "0000:ca:00.5", "1415", NULL, &id, &e), 0);
	assert_string_equal(id, "0000:ca:00.5");
	free(id);
	char *w = read_at(root, "/sys/bus/pci/devices/0000:ca:00.5/nvidia/current_vgpu_type");
	assert_string_equal(w, "1415");
	free(w);
	vgm_inventory *inv = load(root);
	assert_int_equal(inv->n_instances, 2);
	assert_string_equal(inv->instances[1].id, "0000:ca:00.5");
	assert_string_equal(inv->instances[1].profile_name, "NVIDIA H100-2-20C");
	vgm_inventory_free(inv);

	assert_int_equal(vgm_device_remove(h, "0000:ca:00.4", &e), 0);
	w = read_at(root, "/sys/bus/pci/devices/0000:ca:00.4/nvidia/current_vgpu_type");
	/* One write of "0" at offset 0; a plain file (unlike sysfs) keeps the old
	 * bytes after it, so "1414" became "0414". */
	assert_string_equal(w, "0414");
	free(w);
	assert_int_equal(vgm_device_remove(h, "0000:ca:00.6", &e), -ENOENT);
	assert_string_equal(e.reason, "not_found");
	vgm_host_free(h);
	drop_tree(root);
}

static void test_vf_create_refused(void **state)
{
	(void)state;
	static const struct refusal cases[] = {
		{ "0000:ca:00.4", "1417", NULL, EBUSY, "no_capacity", "already holds a vGPU of type 1414" },
		{ "0000:ca:00.5", "9999", NULL, ENOSPC, "no_capacity", "no free instance of type '9999'" },
		{ "0000:ca:00.5", "1414", "c2177883-f1bb-47f0-914d-32a22e3a8804", EINVAL, "invalid_id",
		  "drop --uuid" },
		{ "0000:ca:00.5", "abc", NULL, EINVAL, "invalid_name", "VF vGPU type" },
		{ "0000:ca:00.5", "0", NULL, EINVAL, "invalid_name", "VF vGPU type" },
		{ "0000:ca:00.5", "../1414", NULL, EINVAL, "invalid_name", "type id" },
		{ "0000:ca:00.0", "1414", NULL, ENOENT, "unknown_parent", "not a vGPU parent" },
	};
	expect_refusals("h100", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_json(void **state)
{
	(void)state;
	vgm_inventory *inv = load(DATA "/h100");
	json_t *d = vgm_inventory_devices_json(inv);
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "driver_version")), "550.90.05");
	json_t *dev = json_array_get(json_object_get(d, "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(dev, "id")), "0000:ca:00.4");
	assert_string_equal(json_string_value(json_object_get(dev, "kind")), "vf");
	assert_string_equal(json_string_value(json_object_get(dev, "profile")), "NVIDIA H100-1-10C");
	assert_true(json_integer_value(json_object_get(dev, "framebuffer_bytes")) == 10 * (json_int_t)GiB);
	json_decref(d);
	json_t *t = vgm_inventory_types_json(inv);
	json_t *parents = json_object_get(t, "parents");
	assert_int_equal(json_array_size(parents), 3);
	json_t *p0 = json_array_get(parents, 0);
	assert_string_equal(json_string_value(json_object_get(p0, "backend")), "vf");
	assert_string_equal(json_string_value(json_object_get(p0, "physfn")), "0000:ca:00.0");
	json_t *ty = json_array_get(json_object_get(p0, "types"), 2);
	assert_string_equal(json_string_value(json_object_get(ty, "class")), "C");
	assert_true(json_is_null(json_object_get(ty, "description")));
	json_decref(t);
	vgm_inventory_free(inv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_m10_inventory),	  cmocka_unit_test(test_a100_inventory),
		cmocka_unit_test(test_h100_inventory),	  cmocka_unit_test(test_empty_host),
		cmocka_unit_test(test_host_root),	  cmocka_unit_test(test_driver_version_proc_forms),
		cmocka_unit_test(test_mdev_create),	  cmocka_unit_test(test_mdev_create_refused),
		cmocka_unit_test(test_remove),		  cmocka_unit_test(test_vf_create_remove),
		cmocka_unit_test(test_vf_create_refused), cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
