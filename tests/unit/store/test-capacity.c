/* test-capacity.c: vgm_store_capacity (what GET /v1/types and `vgpumig
 * check` report) against the claims engine itself: for every profile a
 * claim for exactly `available` devices succeeds and one more is refused,
 * on a host where VFs of one GPU share NVIDIA's per-GPU max_instance, with
 * devices of defined domains, owned devices and the homogeneous rule in
 * play. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"
#define A8C "NVIDIA A100-8C"
#define A40C "NVIDIA A100-40C"
#define VFS 8

/* Two A100-like GPUs, each with VFS SR-IOV VFs as mdev parents.  The fake's
 * per-parent count is the profile's max (as a VF listing the GPU-wide
 * number would), so only the chooser's rules keep it honest. */
static void catalog_vf_a100(fake_dev *f)
{
	for (unsigned g = 0; g < 2; g++) {
		char pf[32];
		snprintf(pf, sizeof(pf), "0000:%02x:00.0", 0x41 + g * 0x40);
		for (unsigned v = 0; v < VFS; v++) {
			char addr[32];
			snprintf(addr, sizeof(addr), "0000:%02x:00.%u", 0x41 + g * 0x40, v + 1);
			unsigned p = fake_add_parent(f, addr, pf, VGM_BACKEND_MDEV);
			fake_add_profile(f, p, "nvidia-471", A4C, 4 * GIB, 10);
			fake_add_profile(f, p, "nvidia-473", A8C, 8 * GIB, 5);
			fake_add_profile(f, p, "nvidia-476", A40C, 40 * GIB, 1);
		}
	}
}

static unsigned available(env *e, const char *profile)
{
	vgm_profile_capacity *c = NULL;
	size_t n = 0;
	vgm_error err = {0};
	assert_int_equal(vgm_store_capacity(e->s, NULL, &c, &n, &err), 0);
	unsigned v = 0;
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (STREQ(c[i].profile_name, profile)) {
			assert_false(found); /* one entry per profile */
			assert_int_equal(c[i].available, c[i].free_existing + c[i].creatable);
			v = c[i].available;
			found = true;
		}
	vgm_profile_capacity_free(c, n);
	assert_true(found);
	return v;
}

/* Claim n devices of profile at once; returns the claim or NULL (refused:
 * *reason says why). */
static vgm_claim *claim_n(env *e, const char *mig, const char *profile, unsigned n,
			  char *reason, size_t reason_len)
{
	vgm_claim_device_req d[VGM_CLAIM_MAX_DEVICES];
	char ids[VGM_CLAIM_MAX_DEVICES][40];
	for (unsigned i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "00000000-0000-4000-8000-%012u", 9000 + i);
		d[i] = dev_req(ids[i], profile, 0);
	}
	vgm_claim_request req = claim_req(mig, d, n);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(e->s, NULL, &req, &c, &err) < 0)
		snprintf(reason, reason_len, "%s", err.reason);
	return c;
}

/* available says n: n devices can be claimed, n + 1 cannot. */
static void assert_agrees(env *e, const char *profile, unsigned want)
{
	static int seq;
	char mig[32], reason[64] = "";
	unsigned n = available(e, profile);
	assert_int_equal(n, want);
	snprintf(mig, sizeof(mig), "over-%d", seq++);
	vgm_claim *c = claim_n(e, mig, profile, n + 1, reason, sizeof(reason));
	assert_null(c);
	assert_string_equal(reason, "no_capacity");
	if (n == 0)
		return;
	snprintf(mig, sizeof(mig), "exact-%d", seq++);
	c = claim_n(e, mig, profile, n, reason, sizeof(reason));
	if (!c)
		fail_msg("claim of %u %s refused (%s) though capacity said %u", n, profile, reason, n);
	assert_int_equal(available(e, profile), 0);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	vgm_claim_free(c);
	assert_int_equal(available(e, profile), n);
}

static void test_fresh_host(void **state)
{
	env *e = *state;
	catalog_vf_a100(e->f);
	env_open(e);
	assert_agrees(e, A4C, 2 * VFS); /* one vGPU per VF: 8 a GPU, under max 10 */
	assert_agrees(e, A8C, 2 * 5);   /* max_instance=5 per GPU, shared by its VFs */
	assert_agrees(e, A40C, 2);
}

static void test_defined_domains_and_owners(void **state)
{
	env *e = *state;
	catalog_vf_a100(e->f);
	/* three 8C devices on the first GPU made behind the agent's back; a
	 * defined (not running) domain references two of them */
	assert_int_equal(fake_add_instance(e->f, SRC1, 0, "nvidia-473"), 0);
	assert_int_equal(fake_add_instance(e->f, SRC2, 1, "nvidia-473"), 0);
	assert_int_equal(fake_add_instance(e->f, SRC3, 2, "nvidia-473"), 0);
	e->uses[0] = (vgm_device_use){.device_id = SRC1, .domain_uuid = DOM_UUID};
	e->uses[1] = (vgm_device_use){.device_id = SRC2, .domain_uuid = DOM_UUID};
	e->n_uses = 2;
	env_open(e);
	/* GPU 0: 1 free instance + room for 2 more (5 - 3); GPU 1: 5 */
	assert_agrees(e, A8C, 1 + 2 + 5);
	/* GPU 0 hosts 8C now: 4C and 40C fit on GPU 1 only */
	assert_agrees(e, A4C, VFS);
	assert_agrees(e, A40C, 1);
	vgm_profile_capacity *c = NULL;
	size_t n = 0;
	assert_int_equal(vgm_store_capacity(e->s, NULL, &c, &n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		if (STREQ(c[i].profile_name, A8C)) {
			assert_int_equal(c[i].held, 2);
			assert_int_equal(c[i].free_existing, 1);
			assert_int_equal(c[i].creatable, 7);
		}
	vgm_profile_capacity_free(c, n);
	/* every device of the GPU held: nothing of it counts */
	e->uses[2] = (vgm_device_use){.device_id = SRC3, .domain_uuid = DOM_UUID};
	e->n_uses = 3;
	assert_agrees(e, A8C, 2 + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_host, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_defined_domains_and_owners, env_setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
