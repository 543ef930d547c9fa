/* test-claims.c: the claims engine's choices and life cycle, against the
 * fake device layer: same-UUID preference, reuse, creation and placement,
 * all or nothing, idempotency and conflict, commit, release, VF backend,
 * 100 parallel claims for 8 devices. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"
#define A8C "NVIDIA A100-8C"
#define A40C "NVIDIA A100-40C"

static vgm_claim *claim_ok(env *e, const vgm_claim_request *req)
{
	vgm_claim *c = NULL;
	vgm_error err = {0};
	int r = vgm_claims_claim(e->s, NULL, req, &c, &err);
	if (r < 0)
		fail_msg("claim failed: %s (%s)", vgm_error_message(&err), err.reason);
	assert_non_null(c);
	assert_int_equal(c->state, VGM_CLAIM_HELD);
	assert_int_equal(c->n_devices, req->n_devices);
	return c;
}

static int claim_err(env *e, const vgm_claim_request *req, vgm_error *err)
{
	vgm_claim *c = NULL;
	int r = vgm_claims_claim(e->s, NULL, req, &c, err);
	assert_null(c);
	assert_true(r < 0);
	return r;
}

static void test_same_uuid_existing(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	assert_int_equal(fake_add_instance(e->f, SRC1, 1, "nvidia-471"), 0);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 4 * GIB);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_equal(c->devices[0].target_id, SRC1);
	assert_false(c->devices[0].created);
	assert_string_equal(c->devices[0].type_id, "nvidia-471");
	assert_int_equal(e->f->creates, 0);
	assert_true(c->expires_at == e->now + 60);
}

static void test_same_uuid_created(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 4 * GIB);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_equal(c->devices[0].target_id, SRC1);
	assert_true(c->devices[0].created);
	assert_true(fake_has(e->f, SRC1));
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created WHERE state='present'"),
			 1);
}

static void test_reuse_existing(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 4 * GIB);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_equal(c->devices[0].target_id, OTHER1);
	assert_false(c->devices[0].created);
	assert_int_equal(e->f->creates, 0);
}

/* The source's UUID exists here but with another profile: not taken, and a
 * new 4C goes to the GPU that does not host 8C (homogeneous rule). */
static void test_source_id_other_profile(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	assert_int_equal(fake_add_instance(e->f, SRC1, 0, "nvidia-472"), 0);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_not_equal(c->devices[0].target_id, SRC1);
	assert_true(c->devices[0].created);
	assert_string_equal(fake_parent_of(e->f, c->devices[0].target_id), "0000:02:00.0");
}

/* GPUs already hosting the profile are filled first; another profile goes
 * to a GPU it can live on. */
static void test_fill_first(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 3);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 1, "nvidia-471"), 0);
	env_open(e);
	vgm_claim_device_req d1 = dev_req(SRC1, A4C, 4 * GIB);
	vgm_claim_request r1 = claim_req("mig-1", &d1, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c1 = claim_ok(e, &r1);
	assert_string_equal(c1->devices[0].target_id, OTHER1); /* reuse first */
	vgm_claim_device_req d2 = dev_req(SRC2, A4C, 4 * GIB);
	vgm_claim_request r2 = claim_req("mig-2", &d2, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_ok(e, &r2);
	assert_true(c2->devices[0].created);
	assert_string_equal(fake_parent_of(e->f, SRC2), "0000:02:00.0"); /* fill GPU 2 */
	vgm_claim_device_req d3 = dev_req(SRC3, A8C, 8 * GIB);
	vgm_claim_request r3 = claim_req("mig-3", &d3, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c3 = claim_ok(e, &r3);
	assert_string_equal(fake_parent_of(e->f, SRC3), "0000:01:00.0"); /* emptiest, first */
}

static void test_mixed_profiles(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	env_open(e);
	vgm_claim_device_req d[2] = {dev_req(SRC1, A4C, 4 * GIB), dev_req(SRC2, A8C, 8 * GIB)};
	vgm_claim_request req = claim_req("mig-1", d, 2);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	const char *p1 = fake_parent_of(e->f, SRC1), *p2 = fake_parent_of(e->f, SRC2);
	assert_non_null(p1);
	assert_non_null(p2);
	assert_string_not_equal(p1, p2); /* one type per GPU */
	assert_string_equal(c->devices[1].profile_name, A8C);
}

static void test_all_or_nothing_plan(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d[3] = {dev_req(SRC1, A4C, 0), dev_req(SRC2, A4C, 0),
				     dev_req(SRC3, A40C, 0)};
	vgm_claim_request req = claim_req("mig-1", d, 3);
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &req, &err), -ENOSPC);
	assert_string_equal(err.reason, "no_capacity");
	assert_string_equal(err.message,
			    "no free vGPU of profile 'NVIDIA A100-40C' on host-b (0 of 0 available; "
			    "0 assigned; 1 GPU(s) offering it host another vGPU type (counting this "
			    "request's other devices), and NVIDIA allows one type per GPU)");
	assert_int_equal(fake_count(e->f), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
}

/* The second of three creations fails: the first is removed, nothing kept. */
static void test_all_or_nothing_rollback(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 2);
	e->f->fail_create_at = 2;
	e->f->fail_create_errno = EIO;
	env_open(e);
	vgm_claim_device_req d[3] = {dev_req(SRC1, A4C, 0), dev_req(SRC2, A8C, 0),
				     dev_req(SRC3, A4C, 0)};
	vgm_claim_request req = claim_req("mig-1", d, 3);
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &req, &err), -EIO);
	assert_string_equal(err.reason, "create_failed");
	assert_non_null(strstr(err.message, SRC2));
	assert_int_equal(e->f->creates, 1);
	assert_int_equal(e->f->removes, 1);
	assert_int_equal(fake_count(e->f), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claim_devices"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
	/* the same migration can try again and succeed */
	e->f->fail_create_at = 0;
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_int_equal(fake_count(e->f), 3);
}

static void test_no_capacity_message(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	for (int i = 0; i < 5; i++) {
		char mig[16];
		snprintf(mig, sizeof(mig), "mig-%d", i);
		vgm_claim_device_req d = dev_req(SRC1, A8C, 8 * GIB);
		d.source_id = i % 2 ? SRC1 : SRC2;
		vgm_claim_request req = claim_req(mig, &d, 1);
		vgm_claim_free(claim_ok(e, &req));
	}
	vgm_claim_device_req d = dev_req(SRC3, A8C, 8 * GIB);
	vgm_claim_request req = claim_req("mig-last", &d, 1);
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &req, &err), -ENOSPC);
	assert_string_equal(err.message, "no free vGPU of profile 'NVIDIA A100-8C' on host-b "
					 "(0 of 5 available; 5 assigned)");
}

static void test_bad_requests(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_error err = {0};
	vgm_claim_device_req d = dev_req(SRC1, "NVIDIA A100-3C", 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	assert_int_equal(claim_err(e, &req, &err), -ENODEV);
	assert_string_equal(err.reason, "unknown_profile");
	d = dev_req(SRC1, A4C, 5 * GIB); /* framebuffer differs */
	assert_int_equal(claim_err(e, &req, &err), -ENODEV);
	d = dev_req("../../../etc/passwd", A4C, 0);
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_id");
	d = dev_req(SRC1, A4C, 0);
	req.migration_id = "a/../b";
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_id");
	req = claim_req("mig-1", &d, 1);
	req.domain_uuid = "not-a-uuid";
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_id");
	req = claim_req("mig-1", &d, 0);
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_request");
	vgm_claim_device_req two[2] = {dev_req(SRC1, A4C, 0), dev_req(SRC1, A4C, 0)};
	req = claim_req("mig-1", two, 2);
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_request");
	d.kind = VGM_BACKEND_VF; /* a UUID is not a VF address */
	req = claim_req("mig-1", &d, 1);
	assert_int_equal(claim_err(e, &req, &err), -EINVAL);
	assert_int_equal(fake_count(e->f), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 0);
}

static void test_idempotent_and_conflict(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d[2] = {dev_req(SRC1, A4C, 0), dev_req(SRC2, A4C, 0)};
	vgm_claim_request req = claim_req("mig-1", d, 2);
	_cleanup_(vgm_claim_freep) vgm_claim *a = claim_ok(e, &req);
	req.lease_seconds = 999; /* not part of the request's identity */
	_cleanup_(vgm_claim_freep) vgm_claim *b = claim_ok(e, &req);
	assert_string_equal(a->claim_id, b->claim_id);
	for (int i = 0; i < 2; i++)
		assert_string_equal(a->devices[i].target_id, b->devices[i].target_id);
	assert_int_equal(e->f->creates, 2);
	req.domain_name = "another-vm";
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &req, &err), -EEXIST);
	assert_string_equal(err.reason, "conflict");
	assert_non_null(strstr(err.message, a->claim_id));
	req = claim_req("mig-1", d, 1); /* fewer devices: also a different request */
	assert_int_equal(claim_err(e, &req, &err), -EEXIST);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims"), 1);
}

static void test_commit(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	_cleanup_(vgm_claim_freep) vgm_claim *found = NULL;
	assert_int_equal(vgm_claims_find_by_domain(e->s, DOM_UUID, &found, NULL), 0);
	assert_string_equal(found->claim_id, c->claim_id);
	vgm_error err = {0};
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, &err), 0);
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, &err), 0); /* idempotent */
	_cleanup_(vgm_claim_freep) vgm_claim *after = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &after, NULL), 0);
	assert_int_equal(after->state, VGM_CLAIM_COMMITTED);
	assert_int_equal(after->expires_at, 0);
	vgm_assignment *as = NULL;
	size_t n = 0;
	assert_int_equal(vgm_assignments_list(e->s, &as, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(as[0].device_id, SRC1);
	assert_string_equal(as[0].domain_uuid, DOM_UUID);
	assert_string_equal(as[0].from_claim, c->claim_id);
	vgm_assignments_free(as, n);
	vgm_store_counts k;
	assert_int_equal(vgm_store_counts_get(e->s, &k, NULL), 0);
	assert_int_equal(k.claims[VGM_CLAIM_COMMITTED], 1);
	assert_int_equal(k.assignments, 1);
	assert_int_equal(k.owned_devices, 1);
	vgm_claim *none = NULL;
	assert_int_equal(vgm_claims_find_by_domain(e->s, DOM_UUID, &none, &err), -ENOENT);
	assert_int_equal(vgm_claims_commit(e->s, NULL, "00000000-0000-4000-8000-000000000000", &err),
			 -ENOENT);
	assert_string_equal(err.reason, "not_found");
	/* journal: claim then commit, newest first */
	vgm_journal_entry *j = NULL;
	assert_int_equal(vgm_journal_list(e->s, "mig-1", 0, &j, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(j[0].step, "commit");
	assert_string_equal(j[1].step, "claim");
	vgm_journal_free(j, n);
}

static void test_release(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	env_open(e);
	vgm_claim_device_req d[2] = {dev_req(SRC1, A4C, 0), dev_req(SRC2, A4C, 0)};
	vgm_claim_request req = claim_req("mig-1", d, 2);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_equal(c->devices[0].target_id, OTHER1); /* the operator's, reused */
	assert_string_equal(c->devices[1].target_id, SRC2);   /* created */
	vgm_error err = {0};
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, &err), 0);
	assert_true(fake_has(e->f, OTHER1));
	assert_false(fake_has(e->f, SRC2));
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, &err), 0); /* idempotent */
	assert_int_equal(e->f->removes, 1);
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, &err), -ESTALE);
	assert_string_equal(err.reason, "claim_finished");
	assert_int_equal(claim_err(e, &req, &err), -ESTALE); /* same migration id again */
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created"), 0);
	vgm_claim *list = NULL;
	size_t n = 9;
	assert_int_equal(vgm_claims_list(e->s, false, &list, &n, NULL), 0);
	assert_int_equal(n, 0);
	vgm_claims_free(list, n);
	assert_int_equal(vgm_claims_list(e->s, true, &list, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].state, VGM_CLAIM_RELEASED);
	vgm_claims_free(list, n);
}

/* A device that cannot be removed now (EBUSY) is retried by reconcile. */
static void test_release_busy(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	snprintf(e->f->busy, sizeof(e->f->busy), "%s", SRC1);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	assert_true(fake_has(e->f, SRC1));
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(e->s, NULL, &rep, NULL), 0);
	assert_int_equal(rep.remove_failed, 1);
	vgm_reconcile_report_clear(&rep);
	e->f->busy[0] = '\0';
	assert_int_equal(vgm_reconcile(e->s, NULL, &rep, NULL), 0);
	assert_int_equal(rep.removed, 1);
	assert_false(fake_has(e->f, SRC1));
	vgm_reconcile_report_clear(&rep);
}

static void release_domain_case(env *e, bool keep)
{
	e->keep_released = keep;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, NULL), 0);
	size_t n = 0;
	assert_int_equal(vgm_assignment_release_domain(e->s, NULL, DOM_UUID, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(fake_has(e->f, SRC1), keep);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM assignments"), 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims WHERE state='released'"), 1);
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(e->s, NULL, &rep, NULL), 0);
	assert_int_equal(rep.removed, 0);
	assert_int_equal(fake_has(e->f, SRC1), keep); /* kept devices are the pool's now */
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(vgm_assignment_release_domain(e->s, NULL, DOM_UUID, &n, NULL), 0);
	assert_int_equal(n, 0);
}

static void test_release_domain_remove(void **state)
{
	release_domain_case(*state, false);
}

static void test_release_domain_keep(void **state)
{
	release_domain_case(*state, true);
}

static void test_vf_backend(void **state)
{
	env *e = *state;
	fake_catalog_h100(e->f, 4);
	env_open(e);
	vgm_claim_device_req d[2] = {dev_req("0000:81:00.4", "NVIDIA H100-1-10C", 10 * GIB),
				     dev_req("0000:81:00.5", "NVIDIA H100-1-10C", 10 * GIB)};
	d[0].kind = d[1].kind = VGM_BACKEND_VF;
	vgm_claim_request req = claim_req("mig-vf", d, 2);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_ok(e, &req);
	assert_string_equal(c->devices[0].target_id, "0000:41:00.4");
	assert_string_equal(c->devices[1].target_id, "0000:41:00.5");
	assert_true(c->devices[0].created);
	assert_string_equal(c->devices[0].type_id, "1414");
	assert_true(fake_has(e->f, "0000:41:00.4"));
	/* homogeneous: the GPU now hosts 1-10C only */
	vgm_claim_device_req big = dev_req("0000:81:00.6", "NVIDIA H100-2-20C", 20 * GIB);
	big.kind = VGM_BACKEND_VF;
	vgm_claim_request r2 = claim_req("mig-vf2", &big, 1);
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &r2, &err), -ENOSPC);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	assert_int_equal(fake_count(e->f), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_ok(e, &r2);
	assert_string_equal(c2->devices[0].target_id, "0000:41:00.4");
}

/* The engine's inventory is read once and patched with its own writes.  A
 * plan from the cached copy is used as is only when it creates everything;
 * refusals and reuse of existing instances are checked against sysfs. */
static vgm_claim *claim_src(env *e, const char *mig, const char *src)
{
	vgm_claim_device_req d = dev_req(src, A4C, 0);
	vgm_claim_request req = claim_req(mig, &d, 1);
	return claim_ok(e, &req);
}

static void test_inventory_cache(void **state)
{
	env *e = *state;
	e->inventory_ttl_ms = 3600 * 1000;
	unsigned p = fake_add_parent(e->f, "0000:01:00.0", NULL, VGM_BACKEND_MDEV);
	fake_add_profile(e->f, p, "nvidia-471", A4C, 4 * GIB, 2);
	env_open(e);
	vgm_claim *c[5] = {claim_src(e, "mig-0", SRC1), claim_src(e, "mig-1", SRC2)};
	assert_int_equal(e->f->loads, 1);
	vgm_claim_device_req d = dev_req(SRC3, A4C, 0);
	vgm_claim_request req = claim_req("mig-2", &d, 1);
	vgm_error err = {0};
	assert_int_equal(claim_err(e, &req, &err), -ENOSPC);
	assert_string_equal(err.message, "no free vGPU of profile 'NVIDIA A100-4C' on host-b "
					 "(0 of 2 available; 2 assigned)");
	assert_int_equal(e->f->loads, 2); /* a refusal is checked against sysfs */
	assert_int_equal(vgm_claims_release(e->s, NULL, c[0]->claim_id, NULL), 0);
	c[2] = claim_ok(e, &req);
	assert_string_equal(c[2]->devices[0].target_id, SRC3);
	assert_int_equal(e->f->loads, 2); /* the release and creation were patched in */
	/* removed behind the agent's back: reconcile reads sysfs and repairs */
	fake_drop(e->f, SRC2);
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(e->s, NULL, &rep, NULL), 0);
	assert_int_equal(rep.dropped_owned, 1);
	vgm_reconcile_report_clear(&rep);
	c[3] = claim_src(e, "mig-3", OTHER1);
	assert_true(c[3]->devices[0].created);
	assert_int_equal(e->f->loads, 3);
	/* a free instance the cache knows, gone from sysfs: not handed out */
	assert_int_equal(vgm_claims_release(e->s, NULL, c[3]->claim_id, NULL), 0);
	assert_int_equal(fake_add_instance(e->f, OTHER2, p, "nvidia-471"), 0);
	assert_int_equal(vgm_reconcile(e->s, NULL, &rep, NULL), 0);
	vgm_reconcile_report_clear(&rep);
	fake_drop(e->f, OTHER2);
	c[4] = claim_src(e, "mig-4", SRC1);
	assert_string_equal(c[4]->devices[0].target_id, SRC1);
	assert_true(c[4]->devices[0].created);
	assert_int_equal(e->f->loads, 5);
	assert_int_equal(fake_count(e->f), 2);
	for (int i = 0; i < 5; i++)
		vgm_claim_free(c[i]);
}

/* 100 claims at once for 8 free devices: 8 win, 92 get no_capacity, no
 * device has two owners. */
#define N_THREADS 100
typedef struct racer {
	env *e;
	int i;
	int r;
	char reason[48];
	char target[40];
} racer;

static void *race(void *arg)
{
	racer *x = arg;
	char mig[32], src[40];
	snprintf(mig, sizeof(mig), "race-%d", x->i);
	snprintf(src, sizeof(src), "00000000-0000-4000-8000-%012d", x->i);
	vgm_claim_device_req d = dev_req(src, A4C, 4 * GIB);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	x->r = vgm_claims_claim(x->e->s, NULL, &req, &c, &err);
	snprintf(x->reason, sizeof(x->reason), "%s", err.reason);
	if (c)
		snprintf(x->target, sizeof(x->target), "%s", c->devices[0].target_id);
	vgm_claim_free(c);
	return NULL;
}

static void test_parallel_claims(void **state)
{
	env *e = *state;
	unsigned p = fake_add_parent(e->f, "0000:01:00.0", NULL, VGM_BACKEND_MDEV);
	fake_add_profile(e->f, p, "nvidia-471", A4C, 4 * GIB, 8);
	env_open(e);
	static racer rs[N_THREADS];
	pthread_t t[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		rs[i] = (racer){.e = e, .i = i};
		assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (rs[i].r == 0) {
			ok++;
			for (int j = 0; j < i; j++)
				if (rs[j].r == 0)
					assert_string_not_equal(rs[i].target, rs[j].target);
		} else {
			assert_int_equal(rs[i].r, -ENOSPC);
			assert_string_equal(rs[i].reason, "no_capacity");
		}
	}
	assert_int_equal(ok, 8);
	assert_int_equal(fake_count(e->f), 8);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM device_owners"), 8);
	assert_int_equal(raw_count(e, "SELECT count(DISTINCT target_id) FROM claim_devices"), 8);
}

/* The same race with sysfs read for every decision. */
static void test_parallel_claims_uncached(void **state)
{
	env *e = *state;
	e->inventory_ttl_ms = -1;
	test_parallel_claims(state);
	assert_true(e->f->loads > 8);
}

/* A vGPU made behind the engine's back takes the slot its cached inventory
 * still shows free: the kernel refuses the planned creation, and the engine
 * plans again from sysfs instead of refusing (here: it finds that vGPU free
 * and hands it out). */
static void test_cache_stale_creation(void **state)
{
	env *e = *state;
	e->inventory_ttl_ms = 3600 * 1000;
	unsigned p = fake_add_parent(e->f, "0000:01:00.0", NULL, VGM_BACKEND_MDEV);
	fake_add_profile(e->f, p, "nvidia-471", A4C, 4 * GIB, 2);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c0 = claim_src(e, "mig-0", SRC1);
	assert_int_equal(e->f->loads, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, p, "nvidia-471"), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *c1 = claim_src(e, "mig-1", SRC2);
	assert_int_equal(e->f->loads, 2);
	assert_string_equal(c1->devices[0].target_id, OTHER1);
	assert_false(c1->devices[0].created);
	assert_int_equal(fake_count(e->f), 2); /* nothing half-made is left */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_uuid_existing, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_same_uuid_created, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_reuse_existing, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_source_id_other_profile, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fill_first, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_mixed_profiles, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing_plan, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing_rollback, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_no_capacity_message, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_and_conflict, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_commit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_release, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_release_busy, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_release_domain_remove, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_release_domain_keep, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_vf_backend, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_inventory_cache, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_cache_stale_creation, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_parallel_claims, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_parallel_claims_uncached, env_setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
