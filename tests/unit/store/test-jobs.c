/* test-jobs.c: the store's durable migration jobs, the cordon and the
 * claim's in-flight stage: what is recorded survives a close and reopen,
 * a finished job never changes again, an unset limit stays unset. */
#include <errno.h>
#include <string.h>

#include "store-test.h"

#define A4C "NVIDIA A100-4C"

static void test_job_lifecycle(void **state)
{
	env *e = *state;
	env_open(e);
	vgm_job_row row = { .job_id = "mig-1", .domain = "vm1", .to_host = "host-b",
			    .phase = "queued", .max_downtime_ms = vgm_limit_of(0),
			    .bandwidth_bps = VGM_LIMIT_UNSET, .timeout_ms = vgm_limit_of(9000),
			    .force = true };
	vgm_error err = {0};
	assert_int_equal(vgm_jobs_insert(e->s, &row, &err), 0);
	assert_int_equal(vgm_jobs_set_phase(e->s, "mig-1", "claiming", DOM_UUID, NULL, &err), 0);
	assert_int_equal(vgm_jobs_set_phase(e->s, "mig-1", "migrating", NULL, SRC1, &err), 0);
	env_close(e);
	env_open(e); /* durable */
	vgm_job_row *j = NULL;
	size_t n = 0;
	assert_int_equal(vgm_jobs_list(e->s, true, 0, &j, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(j[0].phase, "migrating");
	assert_string_equal(j[0].state, "running");
	assert_string_equal(j[0].domain_uuid, DOM_UUID);
	assert_string_equal(j[0].claim_id, SRC1);
	assert_true(j[0].max_downtime_ms.set); /* 0 given is not "unset" */
	assert_int_equal(j[0].max_downtime_ms.value, 0);
	assert_false(j[0].bandwidth_bps.set);
	assert_int_equal(j[0].timeout_ms.value, 9000);
	assert_true(j[0].force);
	assert_false(j[0].dry_run);
	vgm_job_rows_free(j, n);
	assert_int_equal(vgm_jobs_finish(e->s, "mig-1", "failed", "x", "went wrong", &err), 0);
	/* final: no phase change, no second end */
	assert_int_equal(vgm_jobs_set_phase(e->s, "mig-1", "releasing", NULL, NULL, &err), -ESTALE);
	assert_string_equal(err.reason, "job_finished");
	assert_int_equal(vgm_jobs_finish(e->s, "mig-1", "succeeded", NULL, NULL, &err), -ESTALE);
	assert_int_equal(vgm_jobs_finish(e->s, "mig-1", "bogus", NULL, NULL, &err), -EINVAL);
	assert_int_equal(vgm_jobs_list(e->s, true, 0, &j, &n, &err), 0);
	assert_int_equal(n, 0);
	vgm_job_rows_free(j, n);
	assert_int_equal(vgm_jobs_list(e->s, false, 0, &j, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(j[0].state, "failed");
	assert_string_equal(j[0].error_message, "went wrong");
	vgm_job_rows_free(j, n);
	/* the same id twice is refused by SQL */
	assert_true(vgm_jobs_insert(e->s, &row, &err) < 0);
}

static void test_cordon(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request before = claim_req("mig-before", &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	assert_int_equal(vgm_claims_claim(e->s, NULL, &before, &c, &err), 0);
	vgm_claim_free(c);
	assert_int_equal(vgm_host_cordon_set(e->s, true, "driver upgrade", &err), 0);
	env_close(e);
	env_open(e); /* survives a restart */
	bool on = false;
	char *why = NULL;
	assert_int_equal(vgm_host_cordon_get(e->s, &on, &why, &err), 0);
	assert_true(on);
	assert_string_equal(why, "driver upgrade");
	free(why);
	vgm_claim_device_req d2 = dev_req(SRC2, A4C, 0);
	vgm_claim_request req = claim_req("mig-2", &d2, 1);
	c = NULL;
	assert_int_equal(vgm_claims_claim(e->s, NULL, &req, &c, &err), -EBUSY);
	assert_string_equal(err.reason, "host_cordoned");
	assert_non_null(strstr(err.message, "driver upgrade"));
	assert_non_null(strstr(err.message, "uncordon"));
	assert_null(c);
	/* asking again for a claim made before the cordon still answers */
	assert_int_equal(vgm_claims_claim(e->s, NULL, &before, &c, &err), 0);
	vgm_claim_free(c);
	assert_int_equal(vgm_host_cordon_set(e->s, false, NULL, &err), 0);
	assert_int_equal(vgm_host_cordon_get(e->s, &on, NULL, &err), 0);
	assert_false(on);
	assert_int_equal(vgm_claims_claim(e->s, NULL, &req, &c, &err), 0);
	vgm_claim_free(c);
}

static void test_in_flight_stage(void **state)
{
	env *e = *state;
	fake_catalog_a100(e->f, 1);
	env_open(e);
	vgm_claim_device_req d = dev_req(SRC1, A4C, 0);
	vgm_claim_request req = claim_req("mig-1", &d, 1);
	vgm_claim *c = NULL;
	vgm_error err = {0};
	assert_int_equal(vgm_claims_claim(e->s, NULL, &req, &c, &err), 0);
	assert_string_equal(vgm_claim_stage(c), "held");
	assert_int_equal(vgm_claims_mark_in_flight(e->s, c->claim_id, &err), 0);
	assert_int_equal(vgm_claims_mark_in_flight(e->s, c->claim_id, &err), 0); /* idempotent */
	_cleanup_(vgm_claim_freep) vgm_claim *g = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &g, &err), 0);
	assert_int_equal(g->state, VGM_CLAIM_HELD); /* not an assignment yet */
	assert_string_equal(vgm_claim_stage(g), "in_flight");
	assert_true(g->expires_at > 0);
	size_t n = 99;
	vgm_assignment *as = NULL;
	assert_int_equal(vgm_assignments_list(e->s, &as, &n, NULL), 0);
	assert_int_equal(n, 0);
	vgm_assignments_free(as, n);
	assert_int_equal(vgm_claims_commit(e->s, NULL, c->claim_id, &err), 0);
	vgm_claim_free(g);
	g = NULL;
	assert_int_equal(vgm_claims_get(e->s, c->claim_id, &g, &err), 0);
	assert_string_equal(vgm_claim_stage(g), "committed");
	assert_int_equal(vgm_claims_release(e->s, NULL, c->claim_id, &err), 0);
	assert_int_equal(vgm_claims_mark_in_flight(e->s, c->claim_id, &err), -ESTALE);
	vgm_claim_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_job_lifecycle, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_cordon, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_in_flight_stage, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
