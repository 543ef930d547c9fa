/* test-place.c: the evacuation placement: per-GPU caps, the homogeneous-type
 * rule, all-or-nothing per VM, RAM, the preference for GPUs already hosting a
 * profile, pause ordering, live-refused VMs and cold fallback, bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "place/place.h"

#define GiB (1024ull * 1024 * 1024)
#define P4 "NVIDIA A100-4C"
#define P10 "NVIDIA A100-10C"
#define P40 "NVIDIA A100-40C"

/* An A100 as the emulator presents it: caps per GPU by profile. */
static const vgm_place_slot a100[] = { { P4, 10 }, { P10, 4 }, { P40, 1 } };

static const char *const one4[] = { P4 };
static const char *const two4[] = { P4, P4 };
static const char *const one10[] = { P10 };
static const char *const mixed[] = { P10, P4 };
static const char *const one40[] = { P40 };

static vgm_place_gpu gpu(const char *cur, unsigned used)
{
	return (vgm_place_gpu){ "0000:41:00.0", a100, 3, cur, used };
}

static vgm_place_vm vm(const char *name, const char *const *p, size_t n, double pause)
{
	return (vgm_place_vm){ .name = name, .profiles = p, .n_vgpus = n, .ram_bytes = GiB,
			       .pause_s = pause };
}

static vgm_placement *place(const vgm_place_vm *vms, size_t nv, const vgm_place_target *t,
			    size_t nt, bool cold)
{
	vgm_place_input in = { vms, nv, t, nt };
	vgm_placement *pl = NULL;
	vgm_error e = { 0 };
	assert_int_equal(vgm_place(&in, cold, &pl, &e), 0);
	assert_non_null(pl);
	assert_int_equal(pl->n, nv);
	return pl;
}

static const vgm_place_entry *entry_of(const vgm_placement *pl, size_t vm_index)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->entries[i].vm == vm_index)
			return &pl->entries[i];
	fail_msg("VM %zu missing from the placement", vm_index);
	return NULL;
}

/* A GPU hosting 4C offers no 10C even with room left; an empty one does. */
static void test_homogeneous(void **state)
{
	(void)state;
	vgm_place_gpu g[] = { gpu(P4, 1), gpu(NULL, 0) };
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, g, 2 } };
	vgm_place_vm v[] = { vm("a", one10, 1, 1), vm("b", one4, 1, 2) };
	vgm_placement *pl = place(v, 2, t, 1, false);
	assert_int_equal(pl->n_placed, 2);
	assert_int_equal(entry_of(pl, 0)->gpu[0], 1); /* 10C opens the empty GPU */
	assert_int_equal(entry_of(pl, 1)->gpu[0], 0); /* 4C packs next to the 4C */
	vgm_placement_free(pl);

	/* Both GPUs hosting 4C: no 10C anywhere, with a reason naming it. */
	vgm_place_gpu full[] = { gpu(P4, 1), gpu(P4, 9) };
	vgm_place_target t2[] = { { "hostB", VGM_LIMIT_UNSET, full, 2 } };
	pl = place(v, 1, t2, 1, false);
	assert_int_equal(pl->n_placed, 0);
	assert_int_equal(pl->entries[0].target, -1);
	assert_string_equal(pl->entries[0].code, "no_capacity");
	assert_non_null(strstr(pl->entries[0].reason, "hostB: no room for '" P10 "'"));
	vgm_placement_free(pl);
}

/* The per-GPU cap: a 40C GPU takes one, the second 40C VM stays. */
static void test_instance_cap(void **state)
{
	(void)state;
	vgm_place_gpu g[] = { gpu(NULL, 0) };
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, g, 1 } };
	vgm_place_vm v[] = { vm("a", one40, 1, 1), vm("b", one40, 1, 2) };
	vgm_placement *pl = place(v, 2, t, 1, false);
	assert_int_equal(pl->n_placed, 1);
	assert_int_equal(entry_of(pl, 0)->target, 0);
	assert_int_equal(entry_of(pl, 1)->target, -1);
	vgm_placement_free(pl);

	/* 4C: nine used of ten; one single-vGPU VM fits, a second does not. */
	vgm_place_gpu g4[] = { gpu(P4, 9) };
	vgm_place_target t4[] = { { "hostB", VGM_LIMIT_UNSET, g4, 1 } };
	vgm_place_vm v4[] = { vm("a", one4, 1, 1), vm("b", one4, 1, 2) };
	pl = place(v4, 2, t4, 1, false);
	assert_int_equal(pl->n_placed, 1);
	vgm_placement_free(pl);
}

/* All or nothing: a two-vGPU VM that fits only half leaves the slot it
 * tried free for the next VM. */
static void test_all_or_nothing(void **state)
{
	(void)state;
	vgm_place_gpu g[] = { gpu(P4, 9) };
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, g, 1 } };
	vgm_place_vm v[] = { vm("pair", two4, 2, 1), vm("single", one4, 1, 2) };
	vgm_placement *pl = place(v, 2, t, 1, false);
	assert_int_equal(entry_of(pl, 0)->target, -1);
	assert_non_null(strstr(entry_of(pl, 0)->reason, "2 x '" P4 "'"));
	assert_int_equal(entry_of(pl, 1)->target, 0);
	vgm_placement_free(pl);
}

/* The lab's evacuation: four VMs, neither target alone has room, all are
 * placed, each VM on one host, no GPU over its cap or mixed. */
static void test_split_across_targets(void **state)
{
	(void)state;
	vgm_place_gpu b[] = { gpu(P10, 2) }; /* room for two 10C */
	vgm_place_gpu c[] = { gpu(P4, 7) };  /* room for three 4C */
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, b, 1 },
				 { "hostC", VGM_LIMIT_UNSET, c, 1 } };
	vgm_place_vm v[] = { vm("vm1", one4, 1, 0.3), vm("vm2", two4, 2, 0.5),
			     vm("vm3", one10, 1, 0.2), vm("vm4", one10, 1, 0.4) };
	vgm_placement *pl = place(v, 4, t, 2, false);
	assert_int_equal(pl->n_placed, 4);
	assert_int_equal(entry_of(pl, 0)->target, 1);
	assert_int_equal(entry_of(pl, 1)->target, 1);
	assert_int_equal(entry_of(pl, 2)->target, 0);
	assert_int_equal(entry_of(pl, 3)->target, 0);
	/* smallest pause first */
	assert_int_equal(pl->entries[0].vm, 2);
	assert_int_equal(pl->entries[1].vm, 0);
	assert_int_equal(pl->entries[2].vm, 3);
	assert_int_equal(pl->entries[3].vm, 1);
	vgm_placement_free(pl);

	/* A mixed VM (10C + 4C) fits on neither host: all of its vGPUs must
	 * go to one host. */
	vgm_place_vm m[] = { vm("mixed", mixed, 2, 1) };
	pl = place(m, 1, t, 2, false);
	assert_int_equal(pl->n_placed, 0);
	assert_non_null(strstr(pl->entries[0].reason, "hostB: no room for '" P4 "'"));
	assert_non_null(strstr(pl->entries[0].reason, "hostC: no room for '" P10 "'"));
	vgm_placement_free(pl);
}

/* A host where the VM packs next to its profile beats one where it would
 * open an empty GPU; with equal cost the emptier plan spreads. */
static void test_prefers_packing_then_spread(void **state)
{
	(void)state;
	vgm_place_gpu b[] = { gpu(NULL, 0) };
	vgm_place_gpu c[] = { gpu(P4, 1) };
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, b, 1 },
				 { "hostC", VGM_LIMIT_UNSET, c, 1 } };
	vgm_place_vm v[] = { vm("a", one4, 1, 1) };
	vgm_placement *pl = place(v, 1, t, 2, false);
	assert_int_equal(pl->entries[0].target, 1);
	vgm_placement_free(pl);

	vgm_place_gpu b2[] = { gpu(P4, 0) }, c2[] = { gpu(P4, 0) };
	vgm_place_target t2[] = { { "hostB", VGM_LIMIT_UNSET, b2, 1 },
				  { "hostC", VGM_LIMIT_UNSET, c2, 1 } };
	vgm_place_vm v2[] = { vm("a", one4, 1, 1), vm("b", one4, 1, 2) };
	pl = place(v2, 2, t2, 2, false);
	assert_int_not_equal(entry_of(pl, 0)->target, entry_of(pl, 1)->target);
	vgm_placement_free(pl);
}

static void test_ram(void **state)
{
	(void)state;
	vgm_place_gpu g[] = { gpu(NULL, 0) };
	vgm_place_target t[] = { { "hostB", vgm_limit_of(GiB + GiB / 2), g, 1 } };
	vgm_place_vm v[] = { vm("a", one4, 1, 1), vm("b", one4, 1, 2) };
	vgm_placement *pl = place(v, 2, t, 1, false);
	assert_int_equal(pl->n_placed, 1);
	assert_non_null(strstr(entry_of(pl, 1)->reason, "hostB: 512 MiB RAM free"));
	vgm_placement_free(pl);
}

/* Unknown pauses go last; live-refused VMs stay unless cold fallback. */
static void test_refused_and_unknown_pause(void **state)
{
	(void)state;
	vgm_place_gpu g[] = { gpu(NULL, 0) };
	vgm_place_target t[] = { { "hostB", VGM_LIMIT_UNSET, g, 1 } };
	vgm_place_vm v[] = { vm("unknown", one4, 1, -1), vm("refused", one4, 1, 0.1),
			     vm("quick", one4, 1, 0.5) };
	v[1].live_refused = true;
	v[1].refused_reason = "driver 550.54 here, 535.129 on hostB";
	vgm_placement *pl = place(v, 3, t, 1, false);
	assert_int_equal(pl->entries[0].vm, 1);
	assert_int_equal(pl->entries[2].vm, 0);
	assert_string_equal(entry_of(pl, 1)->code, "live_refused");
	assert_non_null(strstr(entry_of(pl, 1)->reason, "535.129"));
	assert_int_equal(pl->n_placed, 2);
	vgm_placement_free(pl);

	pl = place(v, 3, t, 1, true);
	assert_int_equal(pl->n_placed, 3);
	assert_string_equal(entry_of(pl, 1)->code, "cold");
	assert_int_equal(entry_of(pl, 1)->target, 0);
	vgm_placement_free(pl);
}

static void test_no_target_and_bad_input(void **state)
{
	(void)state;
	vgm_place_vm v[] = { vm("a", one4, 1, 1) };
	vgm_placement *pl = place(v, 1, NULL, 0, false);
	assert_string_equal(pl->entries[0].code, "no_target");
	vgm_placement_free(pl);

	vgm_error e = { 0 };
	vgm_place_vm bad[] = { vm(NULL, one4, 1, 1) };
	vgm_place_input in = { bad, 1, NULL, 0 };
	pl = (vgm_placement *)&e; /* must be reset to NULL */
	assert_int_equal(vgm_place(&in, false, &pl, &e), -EINVAL);
	assert_null(pl);
	assert_string_equal(e.reason, "invalid_request");
	vgm_place_vm big[] = { vm("big", one4, VGM_PLACE_MAX_VGPUS + 1, 1) };
	in.vms = big;
	assert_int_equal(vgm_place(&in, false, &pl, &e), -EINVAL);
	assert_string_equal(e.reason, "too_many_vgpus");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_homogeneous),
		cmocka_unit_test(test_instance_cap),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_split_across_targets),
		cmocka_unit_test(test_prefers_packing_then_spread),
		cmocka_unit_test(test_ram),
		cmocka_unit_test(test_refused_and_unknown_pause),
		cmocka_unit_test(test_no_target_and_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
