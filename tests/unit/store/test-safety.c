/* test-safety.c: the store never removes a device a domain uses, never
 * removes anything when in_use cannot tell, never holds its lock across a
 * sysfs write (a blocked remove or a slow create stalls no other claim), and
 * keeps leases honest when the wall clock steps. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"

static vgm_claim *claim_one(env *e, const char *mig, const char *src)
{
	vgm_claim_device_req d = dev_req(src, A4C, 0);
	vgm_claim_request req = claim_req(mig, &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	if (vgm_claims_claim(e->s, NULL, &req, &c, &err) < 0)
		fail_msg("claim %s: %s", mig, vgm_error_message(&err));
	return c;
}

static vgm_reconcile_report reconcile_ok(env *e)
{
	vgm_reconcile_report rep;
	vgm_error err = {0};
	if (vgm_reconcile(e->s, NULL, &rep, &err) < 0)
		fail_msg("reconcile: %s", vgm_error_message(&err));
	return rep;
}

static bool any_action(const vgm_reconcile_report *rep, const char *needle)
{
	for (size_t i = 0; i < rep->n_actions; i++)
		if (strstr(rep->actions[i], needle))
			return true;
	return false;
}

/* A device we created and nothing owns, that a domain uses (a VM defined on
 * it), survives release and reconcile; once no domain uses it, it goes. */
static void test_used_device_kept(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", SRC1);
	assert_true(c->devices[0].created);
	e->uses[0] = (vgm_device_use){(char *)SRC1, (char *)DOM_UUID};
	e->n_uses = 1;
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	assert_true(fake_has(e->f, SRC1));
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 0);
	assert_int_equal(rep.remove_kept, 1);
	assert_true(any_action(&rep, "uses it"));
	vgm_reconcile_report_clear(&rep);
	assert_true(fake_has(e->f, SRC1));
	assert_int_equal(e->f->remove_calls, 0);
	/* a device waiting for removal is never handed out */
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_one(e, "mig-2", SRC1);
	assert_string_not_equal(c2->devices[0].target_id, SRC1);
	e->n_uses = 0;
	rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 1);
	vgm_reconcile_report_clear(&rep);
	assert_false(fake_has(e->f, SRC1));
}

/* in_use fails (libvirt down): claims still work, but only with new devices;
 * nothing at all is removed; when in_use answers again, the removals happen. */
static void test_cannot_tell(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", SRC1);
	assert_true(c->devices[0].created);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	e->uses_unknown = true;
	/* the source's own UUID exists here and is free: not handed out blind */
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_one(e, "mig-2", OTHER1);
	assert_string_not_equal(c2->devices[0].target_id, OTHER1);
	assert_true(c2->devices[0].created);
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, NULL), 0);
	assert_int_equal(vgm_claims_release(e->s, NULL, c2->claim_id, NULL), 0);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 0);
	assert_int_equal(rep.remove_kept, 2);
	assert_true(any_action(&rep, "cannot tell"));
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(e->f->remove_calls, 0);
	assert_int_equal(fake_count(e->f), 3);
	e->uses_unknown = false;
	rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 2);
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(fake_count(e->f), 1);
	assert_true(fake_has(e->f, OTHER1)); /* the operator's: never touched */
}

typedef struct bg_call {
	env *e;
	const char *mig, *src;
	const char *claim_id; /* release this instead of claiming */
	int r;
	bool done;
} bg_call;

static void *bg_run(void *arg)
{
	bg_call *b = arg;
	if (b->claim_id)
		b->r = vgm_claims_release(b->e->s, NULL, b->claim_id, NULL);
	else {
		vgm_claim_device_req d = dev_req(b->src, A4C, 0);
		vgm_claim_request req = claim_req(b->mig, &d, 1);
		vgm_claim *c = NULL;
		b->r = vgm_claims_claim(b->e->s, NULL, &req, &c, NULL);
		vgm_claim_free(c);
	}
	__atomic_store_n(&b->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void wait_flag(const int *v)
{
	for (int i = 0; i < 5000 && !__atomic_load_n(v, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	assert_true(__atomic_load_n(v, __ATOMIC_SEQ_CST));
}

/* A remove that blocks (kernel waiting for the VM to let go): the release
 * returns after the deadline, other claims and releases go on meanwhile, the
 * removal is reported blocked and not started twice, and once it finishes the
 * device is forgotten: nothing lost. */
static void test_blocked_remove(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	e->remove_deadline_ms = 50;
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", SRC1);
	__atomic_store_n(&e->f->block_remove, 1, __ATOMIC_SEQ_CST);
	bg_call rel = {.e = e, .claim_id = c->claim_id};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bg_run, &rel), 0);
	wait_flag(&e->f->in_remove);
	/* the store lock is free while the remove blocks */
	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_one(e, "mig-2", SRC2);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rel.r, 0);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.remove_blocked, 1);
	assert_true(any_action(&rep, "blocked"));
	vgm_reconcile_report_clear(&rep);
	assert_int_equal(__atomic_load_n(&e->f->in_remove, __ATOMIC_SEQ_CST), 1); /* not twice */
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created WHERE id = '" SRC1 "'"),
			 1);
	__atomic_store_n(&e->f->block_remove, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 5000 && __atomic_load_n(&e->f->in_remove, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	usleep(20000);
	rep = reconcile_ok(e);
	assert_int_equal(rep.removed, 1);
	assert_int_equal(rep.remove_blocked, 0);
	vgm_reconcile_report_clear(&rep);
	assert_false(fake_has(e->f, SRC1));
	assert_int_equal(raw_count(e, "SELECT count(*) FROM devices_created WHERE id = '" SRC1 "'"),
			 0);
}

/* A slow create holds only its own claim: another claim, a release and
 * reconcile run meanwhile; the slow claim is not mistaken for a crash
 * leftover, and a retry of it is told to wait. */
static void test_slow_create(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	assert_int_equal(fake_add_instance(e->f, OTHER1, 0, "nvidia-471"), 0);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c0 = claim_one(e, "mig-0", OTHER1);
	__atomic_store_n(&e->f->block_create, 1, __ATOMIC_SEQ_CST);
	bg_call slow = {.e = e, .mig = "mig-slow", .src = SRC1}; /* nothing free: creates */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bg_run, &slow), 0);
	wait_flag(&e->f->in_create);
	assert_int_equal(vgm_claims_release(e->s, NULL, c0->claim_id, NULL), 0);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", OTHER1); /* reuses */
	assert_string_equal(c->devices[0].target_id, OTHER1);
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.pending_dropped, 0);
	assert_int_equal(rep.dropped_owned, 0);
	vgm_reconcile_report_clear(&rep);
	vgm_error err = {0};
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-slow", &d, 1);
	vgm_claim *again = NULL;
	assert_int_equal(vgm_claims_claim(e->s, NULL, &req, &again, &err), -EBUSY);
	assert_string_equal(err.reason, "claim_in_progress");
	assert_false(__atomic_load_n(&slow.done, __ATOMIC_SEQ_CST));
	__atomic_store_n(&e->f->block_create, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(slow.r, 0);
	assert_int_equal(raw_count(e, "SELECT count(*) FROM claims WHERE state = 'held'"), 2);
	assert_true(fake_has(e->f, SRC1));
}

static vgm_claim *claim_state(env *e, const char *id)
{
	vgm_claim *c = NULL;
	assert_int_equal(vgm_claims_get(e->s, id, &c, NULL), 0);
	return c;
}

/* The wall clock jumps an hour ahead: no lease expires early.  It jumps an
 * hour back: leases still end after their length of real time. */
static void test_clock_steps(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", SRC1); /* 300 s */
	e->wall_step = 3600;
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.expired, 0);
	vgm_reconcile_report_clear(&rep);
	_cleanup_(vgm_claim_freep) vgm_claim *still = claim_state(e, c->claim_id);
	assert_int_equal(still->state, VGM_CLAIM_HELD);

	_cleanup_(vgm_claim_freep) vgm_claim *c2 = claim_one(e, "mig-2", SRC2);
	e->wall_step = -3600;
	e->now += 301;
	rep = reconcile_ok(e);
	assert_int_equal(rep.expired, 2); /* both ran 301 s of real time */
	vgm_reconcile_report_clear(&rep);
}

/* A wall clock stepped back while the agent was down: the store's time does
 * not run backwards past what it already wrote, so a held lease still ends
 * after its length of real time from the restart at the latest. */
static void test_clock_back_across_restart(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	_cleanup_(vgm_claim_freep) vgm_claim *c = claim_one(e, "mig-1", SRC1);
	env_close(e);
	e->wall_step = -86400;
	env_open(e);
	e->now += 301;
	vgm_reconcile_report rep = reconcile_ok(e);
	assert_int_equal(rep.expired, 1);
	vgm_reconcile_report_clear(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_used_device_kept, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_cannot_tell, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_blocked_remove, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_slow_create, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_clock_steps, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_clock_back_across_restart, env_setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
