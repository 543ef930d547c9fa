/* test-real-device.c: the claims engine through the real device layer
 * (lib/device) on private copies of the tests/data/sysfs trees.  On plain
 * files an mdev "create" makes no directory, so mdev trees cover the paths
 * that use existing instances; the H100 tree (NVIDIA's VF interface, where
 * creating is writing current_vgpu_type) covers the whole cycle: reuse,
 * create, the homogeneous rule, release writing 0 back, lease expiry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"
#include "util/fs.h"

#define DATA "../data/sysfs" /* tests run in tests/unit */
#define H10C "NVIDIA H100-1-10C"

typedef struct real_env {
	env *e;
	char root[128];
	vgm_host *h;
} real_env;

static void copy_tree(real_env *r, const char *name)
{
	snprintf(r->root, sizeof(r->root), "%s/sysfs", r->e->dir);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/%s/.' '%s/'", r->root, DATA, name,
		 r->root);
	assert_int_equal(system(cmd), 0);
	vgm_error err = {0};
	assert_int_equal(vgm_host_new(r->root, &r->h, &err), 0);
	r->e->real_devices = true;
	env_open(r->e);
}

static char *vf_type(real_env *r, const char *vf)
{
	char *p = vgm_path(r->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type", vf);
	char *v = NULL;
	assert_int_equal(vgm_read_attr(p, &v), 0);
	free(p);
	return v;
}

static void assert_vf_type(real_env *r, const char *vf, const char *want)
{
	char *v = vf_type(r, vf);
	assert_string_equal(v, want);
	free(v);
}

/* The kernel's attribute holds what was last written; a plain file that held
 * "1414" reads "0414" after the device layer writes "0" (no O_TRUNC, as
 * sysfs wants).  Check the write happened, then settle the file as the
 * kernel would. */
static void assert_vf_removed(real_env *r, const char *vf)
{
	char *v = vf_type(r, vf);
	assert_int_equal(v[0], '0');
	free(v);
	char *p = vgm_path(r->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type", vf);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs("0\n", f);
	fclose(f);
	free(p);
}

static vgm_claim *vf_claim(real_env *r, const char *mig, const char *src, const char *profile,
			   vgm_error *err)
{
	vgm_claim_device_req d = dev_req(src, profile, 0);
	d.kind = VGM_BACKEND_VF;
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	int k = vgm_claims_claim(r->e->s, r->h, &req, &c, err);
	assert_true(k == 0 || !c);
	return c;
}

static void test_h100_cycle(void **state)
{
	real_env r = {.e = *state};
	copy_tree(&r, "h100");
	vgm_error err = {0};
	/* the source's own VF address holds the same profile here: no rewrite */
	vgm_claim *same = vf_claim(&r, "mig-1", "0000:ca:00.4", H10C, &err);
	if (!same)
		fail_msg("claim: %s", vgm_error_message(&err));
	assert_string_equal(same->devices[0].target_id, "0000:ca:00.4");
	assert_false(same->devices[0].created);
	/* another source VF: a free VF gets the type written */
	vgm_claim *made = vf_claim(&r, "mig-2", "0000:81:00.4", H10C, &err);
	if (!made)
		fail_msg("claim: %s", vgm_error_message(&err));
	assert_true(made->devices[0].created);
	assert_string_equal(made->devices[0].type_id, "1414");
	assert_vf_type(&r, made->devices[0].target_id, "1414");
	/* the GPU hosts 1-10C now: a 2-20C cannot be placed on it */
	vgm_claim *big = vf_claim(&r, "mig-3", "0000:81:00.5", "NVIDIA H100-2-20C", &err);
	assert_null(big);
	assert_string_equal(err.reason, "no_capacity");
	/* release: what the claim created is removed (type 0) */
	assert_int_equal(vgm_claims_release(r.e->s, r.h, made->claim_id, &err), 0);
	assert_vf_removed(&r, made->devices[0].target_id);
	/* lease expiry through reconcile removes what the claim created */
	vgm_claim *late = vf_claim(&r, "mig-4", "0000:81:00.6", H10C, &err);
	assert_non_null(late);
	assert_true(late->devices[0].created);
	r.e->now += 3600;
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(r.e->s, r.h, &rep, &err), 0);
	assert_int_equal(rep.expired, 2);  /* both claims ran out */
	assert_int_equal(rep.removed, 1);  /* only the one it created */
	vgm_reconcile_report_clear(&rep);
	assert_vf_removed(&r, late->devices[0].target_id);
	assert_int_equal(vgm_claims_release(r.e->s, r.h, same->claim_id, &err), 0);
	assert_vf_type(&r, "0000:ca:00.4", "1414"); /* not ours: never removed */
	vgm_claim_free(same);
	vgm_claim_free(made);
	vgm_claim_free(late);
	vgm_host_free(r.h);
}

/* mdev on Ampere VFs: the source's UUID exists here as an unowned instance
 * of the same profile: claimed as is, committed, and never removed. */
static void test_a100_same_uuid(void **state)
{
	real_env r = {.e = *state};
	copy_tree(&r, "a100");
	vgm_inventory *inv = NULL;
	assert_int_equal(vgm_inventory_load(r.h, &inv, NULL), 0);
	assert_true(inv->n_instances >= 1);
	const vgm_instance *in = &inv->instances[0];
	vgm_claim_device_req d = dev_req(in->id, in->profile_name, in->framebuffer_bytes);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(r.e->s, r.h, &req, &c, &err) < 0)
		fail_msg("claim: %s", vgm_error_message(&err));
	assert_string_equal(c->devices[0].target_id, in->id);
	assert_false(c->devices[0].created);
	assert_string_equal(c->devices[0].type_id, in->type_id);
	assert_int_equal(vgm_claims_commit(r.e->s, r.h, c->claim_id, &err), 0);
	size_t n = 0;
	assert_int_equal(vgm_assignment_release_domain(r.e->s, r.h, DOM_UUID, &n, &err), 0);
	assert_int_equal(n, 1);
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(r.e->s, r.h, &rep, &err), 0);
	assert_int_equal(rep.removed, 0);
	vgm_reconcile_report_clear(&rep);
	char *p = vgm_path(r.root, "/sys/bus/mdev/devices/%s", in->id);
	assert_true(vgm_exists(p));
	free(p);
	vgm_claim_free(c);
	vgm_inventory_free(inv);
	vgm_host_free(r.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_h100_cycle, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_a100_same_uuid, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
