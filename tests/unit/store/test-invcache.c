/* test-invcache.c: the claims engine's cached inventory (invcache.c) with a
 * device double that has the cheap reads (instances alone, one parent) and
 * counts every read: own writes are patched in without any read, a change
 * behind the agent's back makes exactly its parent be read again, and the
 * slow safety net picks up what changes without an instance changing. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"
#define A8C "NVIDIA A100-8C"
#define A40C "NVIDIA A100-40C"

typedef struct counted {
	fake_dev *f;
	vgm_store_devops fake;
	unsigned full, instances, parents;
	char last_parent[32];
} counted;

static int c_full(void *ctx, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	counted *c = ctx;
	c->full++;
	return c->fake.inventory_load(c->f, h, out, err);
}

static void c_free(void *ctx, vgm_inventory *inv)
{
	counted *c = ctx;
	c->fake.inventory_free(c->f, inv);
}

static int c_create(void *ctx, vgm_host *h, const char *parent, const char *type_id,
		    const char *uuid, char **out_id, vgm_error *err)
{
	counted *c = ctx;
	return c->fake.create(c->f, h, parent, type_id, uuid, out_id, err);
}

static int c_remove(void *ctx, vgm_host *h, const char *id, vgm_error *err)
{
	counted *c = ctx;
	return c->fake.remove(c->f, h, id, err);
}

/* The double's cheap reads, cut out of a full read of the fake (not
 * counted as one). */
static int c_instances(void *ctx, vgm_host *h, const vgm_inventory *known, vgm_instance **out,
		       size_t *n, vgm_error *err)
{
	counted *c = ctx;
	vgm_inventory *inv = NULL;
	c->instances++;
	assert_int_equal(c->fake.inventory_load(c->f, h, &inv, err), 0);
	c->f->loads--;
	*out = inv->instances;
	*n = inv->n_instances;
	inv->instances = NULL;
	inv->n_instances = 0;
	c->fake.inventory_free(c->f, inv);
	return 0;
}

static int c_parent(void *ctx, vgm_host *h, const char *address, vgm_parent *out, vgm_error *err)
{
	counted *c = ctx;
	vgm_inventory *inv = NULL;
	int r = -ENOENT;
	c->parents++;
	snprintf(c->last_parent, sizeof(c->last_parent), "%s", address);
	assert_int_equal(c->fake.inventory_load(c->f, h, &inv, err), 0);
	c->f->loads--;
	for (size_t i = 0; i < inv->n_parents; i++)
		if (STREQ(inv->parents[i].address, address)) {
			*out = inv->parents[i];
			memset(&inv->parents[i], 0, sizeof(inv->parents[i]));
			r = 0;
		}
	c->fake.inventory_free(c->f, inv);
	return r;
}

typedef struct fixture {
	char dir[64];
	counted c;
	vgm_store *s;
	vgm_device_use uses[4];
	size_t n_uses;
} fixture;

static int fx_uses(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err)
{
	*out = NULL;
	*n = 0;
	return 0;
}

static void fx_open(fixture *x, int64_t ttl_ms)
{
	vgm_store_devops ops = {c_full, c_free, c_create, c_remove, &x->c, c_instances, c_parent};
	vgm_store_opts o = {.host_name = "host-b", .remove_released = true, .in_use = fx_uses,
			    .devops = &ops, .inventory_ttl_ms = ttl_ms};
	vgm_error err = {0};
	if (vgm_store_open(x->dir, &o, &x->s, &err) < 0)
		fail_msg("opening the store: %s", vgm_error_message(&err));
}

static int fx_setup(void **state)
{
	fixture *x = calloc(1, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/vgm-invcache-XXXXXX");
	if (!x || !mkdtemp(x->dir))
		return -1;
	x->c.f = fake_new();
	x->c.fake = fake_devops(x->c.f);
	fake_catalog_a100(x->c.f, 4); /* 0000:01:00.0 .. 0000:04:00.0 */
	*state = x;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static int fx_teardown(void **state)
{
	fixture *x = *state;
	vgm_store_close(x->s);
	nftw(x->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	fake_free(x->c.f);
	free(x);
	return 0;
}

static vgm_claim *claim1(fixture *x, const char *mig, const char *src, const char *profile)
{
	vgm_claim_device_req d = dev_req(src, profile, 0);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(x->s, NULL, &req, &c, &err) < 0)
		fail_msg("claim %s: %s", mig, vgm_error_message(&err));
	return c;
}

static unsigned avail(fixture *x, const char *profile)
{
	vgm_profile_capacity *cap = NULL;
	size_t n = 0;
	unsigned v = 0;
	assert_int_equal(vgm_store_capacity(x->s, NULL, &cap, &n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		if (STREQ(cap[i].profile_name, profile))
			v = cap[i].available;
	vgm_profile_capacity_free(cap, n);
	return v;
}

/* Our own creations and removals: patched in, nothing read again. */
static void test_own_writes_patched(void **state)
{
	fixture *x = *state;
	fx_open(x, 3600 * 1000);
	vgm_claim *c1 = claim1(x, "m1", SRC1, A4C), *c2 = claim1(x, "m2", SRC2, A4C);
	assert_int_equal(x->c.full, 1);
	assert_int_equal(avail(x, A4C), 40 - 2);
	assert_int_equal(vgm_claims_release(x->s, NULL, c1->claim_id, NULL), 0);
	assert_int_equal(avail(x, A4C), 40 - 1);
	assert_false(fake_has(x->c.f, SRC1));
	assert_int_equal(x->c.full, 1);
	assert_int_equal(x->c.instances, 0);
	assert_int_equal(x->c.parents, 0);
	/* the snapshot for the agent's readers is the patched view */
	vgm_inventory *inv = NULL;
	assert_int_equal(vgm_store_inventory_copy(x->s, NULL, &inv, NULL), 0);
	assert_int_equal(inv->n_instances, 1);
	assert_string_equal(inv->instances[0].id, SRC2);
	assert_string_equal(inv->instances[0].profile_name, A4C);
	vgm_inventory_free(inv);
	assert_int_equal(x->c.full, 1);
	vgm_claim_free(c1);
	vgm_claim_free(c2);
}

/* Every decision checks sysfs (ttl < 0): instances are read each time, and
 * only a parent whose instances changed behind our back is read again. */
static void test_change_rereads_its_parent(void **state)
{
	fixture *x = *state;
	fx_open(x, -1);
	vgm_claim *c1 = claim1(x, "m1", SRC1, A4C);
	vgm_claim *c0 = claim1(x, "m0", SRC3, A4C);
	unsigned inst = x->c.instances;
	assert_int_equal(x->c.full, 1); /* the first decision reads everything once */
	assert_true(inst >= 1);          /* later ones read the instances again */
	assert_int_equal(x->c.parents, 0); /* our own creations needed no re-read */
	/* an operator makes an 8C on the third GPU */
	assert_int_equal(fake_add_instance(x->c.f, OTHER1, 2, "nvidia-472"), 0);
	/* 8C: none beside 4C on GPU 1; on GPU 3 the free one + 4 more; 5 on 2 and 4 */
	assert_int_equal(avail(x, A8C), 1 + 4 + 5 + 5);
	assert_int_equal(x->c.parents, 1);
	assert_string_equal(x->c.last_parent, "0000:03:00.0");
	assert_true(x->c.instances > inst);
	assert_int_equal(x->c.full, 1);
	/* it is free, so a claim gets it; the GPU hosts 8C now, so no 4C there */
	vgm_claim *c2 = claim1(x, "m2", SRC2, A8C);
	assert_string_equal(c2->devices[0].target_id, OTHER1);
	assert_false(c2->devices[0].created);
	assert_int_equal(avail(x, A4C), 10 - 2 + 10 + 10);
	/* removed behind our back: the parent is read again, the count grows */
	fake_drop(x->c.f, SRC1);
	unsigned parents = x->c.parents;
	assert_int_equal(avail(x, A4C), 10 - 1 + 10 + 10);
	assert_int_equal(x->c.parents, parents + 1);
	assert_string_equal(x->c.last_parent, "0000:01:00.0");
	assert_int_equal(x->c.full, 1);
	vgm_claim_free(c0);
	vgm_claim_free(c1);
	vgm_claim_free(c2);
}

/* With a long ttl a change behind our back is not seen by a cached answer,
 * is seen once anything asks for a checked view (reconcile), and counts
 * that change with no instance changing come in through the safety net. */
static void test_refresh_sees_changes(void **state)
{
	fixture *x = *state;
	fx_open(x, 3600 * 1000);
	assert_int_equal(avail(x, A4C), 40);
	assert_int_equal(fake_add_instance(x->c.f, OTHER1, 0, "nvidia-475"), 0); /* a 40C */
	assert_int_equal(avail(x, A4C), 40); /* cached */
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(x->s, NULL, &rep, NULL), 0);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(avail(x, A4C), 30);
	assert_int_equal(x->c.full, 1);
	/* the driver now allows 6 4C per GPU (say, after an update): no instance
	 * changed, so only the safety net sees it, a few parents at a time */
	for (unsigned p = 0; p < 4; p++)
		x->c.f->parents[p].profiles[0].max = 6;
	size_t n = 0;
	assert_int_equal(vgm_store_inventory_refresh(x->s, NULL, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(vgm_store_inventory_refresh(x->s, NULL, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(avail(x, A4C), 18);
	assert_int_equal(x->c.full, 1);
}

/* A GPU's last vGPU goes: every type is offered on it again at once, with
 * no read (the homogeneous rule lifts; no instance shows that). */
static void test_emptied_gpu(void **state)
{
	fixture *x = *state;
	/* read while the first GPU hosts a 4C: the fake shows 0 8C there */
	assert_int_equal(fake_add_instance(x->c.f, OTHER1, 0, "nvidia-471"), 0);
	fx_open(x, 3600 * 1000);
	assert_int_equal(avail(x, A8C), 3 * 5);
	vgm_claim *c = claim1(x, "m1", SRC1, A4C); /* takes the free OTHER1 */
	assert_string_equal(c->devices[0].target_id, OTHER1);
	assert_int_equal(vgm_claims_release(x->s, NULL, c->claim_id, NULL), 0);
	assert_int_equal(avail(x, A8C), 3 * 5); /* OTHER1 stays: not ours */
	vgm_claim *d = claim1(x, "m2", SRC2, A40C);
	assert_true(d->devices[0].created);
	assert_int_equal(avail(x, A8C), 2 * 5);
	assert_int_equal(vgm_claims_release(x->s, NULL, d->claim_id, NULL), 0);
	assert_int_equal(avail(x, A8C), 3 * 5);
	/* the operator removes OTHER1: once the instances are read again, its
	 * GPU offers 8C again, though the fake's last read of it said 0 */
	fake_drop(x->c.f, OTHER1);
	vgm_reconcile_report rep;
	assert_int_equal(vgm_reconcile(x->s, NULL, &rep, NULL), 0);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(avail(x, A8C), 4 * 5);
	/* and our own last removal on a GPU lifts the rule as well, also when
	 * the full read (a restart) saw that GPU hosting 4C */
	vgm_claim *e = claim1(x, "m3", SRC3, A4C);
	vgm_store_close(x->s);
	fx_open(x, 3600 * 1000);
	assert_int_equal(avail(x, A8C), 3 * 5);
	unsigned reads = x->c.parents + x->c.instances + x->c.full;
	assert_int_equal(vgm_claims_release(x->s, NULL, e->claim_id, NULL), 0);
	assert_int_equal(avail(x, A8C), 4 * 5);
	assert_int_equal(x->c.parents + x->c.instances + x->c.full, reads);
	vgm_claim_free(c);
	vgm_claim_free(d);
	vgm_claim_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_own_writes_patched, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_change_rereads_its_parent, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_refresh_sees_changes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_emptied_gpu, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
