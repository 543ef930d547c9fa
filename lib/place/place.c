/* place.c: the evacuation placement (place.h has the rules and why).
 *
 * Working state: a copy of every GPU's (current profile, used) and every
 * target's free RAM, updated as VMs are placed; a VM is tried on a scratch
 * copy of one target's GPUs so a VM that fits only partly changes nothing
 * (all or nothing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place/place.h"

typedef struct gpu_state {
	const char *current; /* NULL: empty */
	unsigned used;
} gpu_state;

typedef struct tgt_state {
	gpu_state *gpus;
	uint64_t mem_left;
	size_t placed;
} tgt_state;

typedef struct placer {
	const vgm_place_input *in;
	tgt_state *t;
	gpu_state *scratch; /* max n_gpus of any target */
} placer;

static unsigned slot_cap(const vgm_place_gpu *g, const char *profile)
{
	for (size_t i = 0; i < g->n_slots; i++)
		if (g->slots[i].profile && STREQ(g->slots[i].profile, profile))
			return g->slots[i].max_instances;
	return 0;
}

/* The GPU for one vGPU of `profile`: one already hosting it with room
 * (packs), else the first empty GPU that offers it; -1 when none. */
static int pick_gpu(const vgm_place_target *t, const gpu_state *s, const char *profile)
{
	int empty = -1;
	for (size_t g = 0; g < t->n_gpus; g++) {
		unsigned cap = slot_cap(&t->gpus[g], profile);
		if (cap == 0)
			continue;
		if (s[g].current && STREQ(s[g].current, profile) && s[g].used < cap)
			return (int)g;
		if (!s[g].current && empty < 0)
			empty = (int)g;
	}
	return empty;
}

/* Try vm on target ti using the scratch copy.  Returns the number of empty
 * GPUs it would open, or -1 (why in miss: the first profile without room,
 * or NULL for RAM). */
static int try_fit(placer *p, size_t vi, size_t ti, size_t *gpu, const char **miss)
{
	const vgm_place_vm *vm = &p->in->vms[vi];
	const vgm_place_target *t = &p->in->targets[ti];
	const tgt_state *ts = &p->t[ti];
	if (t->mem_free_bytes.set && vm->ram_bytes > ts->mem_left) {
		*miss = NULL;
		return -1;
	}
	memcpy(p->scratch, ts->gpus, t->n_gpus * sizeof(*p->scratch));
	int opened = 0;
	for (size_t k = 0; k < vm->n_vgpus; k++) {
		int g = pick_gpu(t, p->scratch, vm->profiles[k]);
		if (g < 0) {
			*miss = vm->profiles[k];
			return -1;
		}
		if (!p->scratch[g].current) {
			p->scratch[g].current = vm->profiles[k];
			opened++;
		}
		p->scratch[g].used++;
		gpu[k] = (size_t)g;
	}
	return opened;
}

static void commit_fit(placer *p, size_t vi, size_t ti, const size_t *gpu)
{
	const vgm_place_vm *vm = &p->in->vms[vi];
	tgt_state *ts = &p->t[ti];
	for (size_t k = 0; k < vm->n_vgpus; k++) {
		gpu_state *g = &ts->gpus[gpu[k]];
		if (!g->current)
			g->current = vm->profiles[k];
		g->used++;
	}
	if (p->in->targets[ti].mem_free_bytes.set)
		ts->mem_left -= vm->ram_bytes;
	ts->placed++;
}

/* "2 x 'A', 1 x 'B'": the VM's needs, each profile once. */
static void describe_needs(const vgm_place_vm *vm, char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t k = 0; k < vm->n_vgpus && off < n; k++) {
		bool seen = false;
		unsigned count = 0;
		for (size_t j = 0; j < vm->n_vgpus; j++) {
			if (STREQ(vm->profiles[j], vm->profiles[k]))
				count++;
			if (j < k && STREQ(vm->profiles[j], vm->profiles[k]))
				seen = true;
		}
		if (!seen)
			off += (size_t)snprintf(buf + off, n - off, "%s%u x '%s'", off ? ", " : "",
						count, vm->profiles[k]);
	}
}

static void leave_behind(placer *p, vgm_place_entry *e, const char **miss, const bool *ram_short)
{
	const vgm_place_vm *vm = &p->in->vms[e->vm];
	char needs[160];
	describe_needs(vm, needs, sizeof(needs));
	if (p->in->n_targets == 0) {
		snprintf(e->code, sizeof(e->code), "no_target");
		snprintf(e->reason, sizeof(e->reason),
			 "no target host for '%s'; name one with --to or add a [peer] to the agent config",
			 vm->name);
		return;
	}
	snprintf(e->code, sizeof(e->code), "no_capacity");
	size_t off = (size_t)snprintf(e->reason, sizeof(e->reason), "no target has room for '%s' (%s)",
				      vm->name, vm->n_vgpus ? needs : "no vGPU");
	for (size_t t = 0; t < p->in->n_targets && off < sizeof(e->reason); t++) {
		const char *tn = p->in->targets[t].name;
		if (ram_short[t])
			off += (size_t)snprintf(e->reason + off, sizeof(e->reason) - off,
						"; %s: %llu MiB RAM free", tn,
						(unsigned long long)(p->t[t].mem_left >> 20));
		else
			off += (size_t)snprintf(e->reason + off, sizeof(e->reason) - off,
						"; %s: no room for '%s'", tn, miss[t]);
	}
}

static int place_one(placer *p, vgm_place_entry *e, bool cold_fallback)
{
	const vgm_place_vm *vm = &p->in->vms[e->vm];
	size_t nt = p->in->n_targets;
	if (vm->live_refused && !cold_fallback) {
		snprintf(e->code, sizeof(e->code), "live_refused");
		snprintf(e->reason, sizeof(e->reason), "'%s' cannot move live: %s (--cold-fallback moves it cold)",
			 vm->name, vm->refused_reason ? vm->refused_reason : "the plan refused it");
		return 0;
	}
	_cleanup_free_ const char **miss = calloc(nt + 1, sizeof(*miss));
	_cleanup_free_ bool *ram_short = calloc(nt + 1, sizeof(*ram_short));
	if (!miss || !ram_short)
		return -ENOMEM;
	size_t gpu[VGM_PLACE_MAX_VGPUS], best_gpu[VGM_PLACE_MAX_VGPUS];
	int best = -1, best_opened = 0;
	for (size_t t = 0; t < nt; t++) {
		int opened = try_fit(p, e->vm, t, gpu, &miss[t]);
		if (opened < 0) {
			ram_short[t] = !miss[t];
			continue;
		}
		if (best < 0 || opened < best_opened ||
		    (opened == best_opened && p->t[t].placed < p->t[best].placed)) {
			best = (int)t;
			best_opened = opened;
			memcpy(best_gpu, gpu, sizeof(gpu));
		}
	}
	if (best < 0) {
		leave_behind(p, e, miss, ram_short);
		return 0;
	}
	e->target = best;
	memcpy(e->gpu, best_gpu, sizeof(e->gpu));
	commit_fit(p, e->vm, (size_t)best, best_gpu);
	if (vm->live_refused)
		snprintf(e->code, sizeof(e->code), "cold");
	return 1;
}

static int validate(const vgm_place_input *in, vgm_error *err)
{
	for (size_t i = 0; i < in->n_vms; i++) {
		const vgm_place_vm *vm = &in->vms[i];
		if (!vm->name || (vm->n_vgpus && !vm->profiles))
			return vgm_error_setr(err, EINVAL, "invalid_request",
					      "VM %zu of the placement has no name or no profile list", i);
		if (vm->n_vgpus > VGM_PLACE_MAX_VGPUS)
			return vgm_error_setr(err, EINVAL, "too_many_vgpus",
					      "'%s' has %zu vGPUs; placement handles at most %d per VM",
					      vm->name, vm->n_vgpus, VGM_PLACE_MAX_VGPUS);
		for (size_t k = 0; k < vm->n_vgpus; k++)
			if (!vm->profiles[k])
				return vgm_error_setr(err, EINVAL, "invalid_request",
						      "vGPU %zu of '%s' has no profile name", k, vm->name);
	}
	for (size_t t = 0; t < in->n_targets; t++) {
		const vgm_place_target *tg = &in->targets[t];
		if (!tg->name || (tg->n_gpus && !tg->gpus))
			return vgm_error_setr(err, EINVAL, "invalid_request",
					      "target %zu of the placement has no name or no GPU list", t);
		for (size_t g = 0; g < tg->n_gpus; g++)
			if (tg->gpus[g].n_slots && !tg->gpus[g].slots)
				return vgm_error_setr(err, EINVAL, "invalid_request",
						      "GPU %zu of %s has no profile list", g, tg->name);
	}
	return 0;
}

/* Placement order: most vGPUs first, then most RAM, then input order
 * (qsort_r: the library keeps no globals). */
static int by_size(const void *a, const void *b, void *ctx)
{
	const vgm_place_input *in = ctx;
	const vgm_place_entry *x = a, *y = b;
	const vgm_place_vm *vx = &in->vms[x->vm], *vy = &in->vms[y->vm];
	if (vx->n_vgpus != vy->n_vgpus)
		return vx->n_vgpus > vy->n_vgpus ? -1 : 1;
	if (vx->ram_bytes != vy->ram_bytes)
		return vx->ram_bytes > vy->ram_bytes ? -1 : 1;
	return x->vm < y->vm ? -1 : 1;
}

/* Output order: smallest known pause first, unknown last, then input order. */
static int by_pause(const void *a, const void *b, void *ctx)
{
	const vgm_place_input *in = ctx;
	const vgm_place_entry *x = a, *y = b;
	double px = in->vms[x->vm].pause_s, py = in->vms[y->vm].pause_s;
	if ((px < 0) != (py < 0))
		return px < 0 ? 1 : -1;
	if (px >= 0 && px != py)
		return px < py ? -1 : 1;
	return x->vm < y->vm ? -1 : 1;
}

static void placer_clear(placer *p)
{
	for (size_t t = 0; p->t && t < p->in->n_targets; t++)
		free(p->t[t].gpus);
	free(p->t);
	free(p->scratch);
}

static int placer_init(placer *p, const vgm_place_input *in)
{
	size_t max_gpus = 1;
	*p = (placer){ .in = in, .t = calloc(in->n_targets + 1, sizeof(*p->t)) };
	if (!p->t)
		return -ENOMEM;
	for (size_t t = 0; t < in->n_targets; t++) {
		const vgm_place_target *tg = &in->targets[t];
		max_gpus = MAX(max_gpus, tg->n_gpus);
		if (!(p->t[t].gpus = calloc(tg->n_gpus + 1, sizeof(gpu_state))))
			return -ENOMEM;
		p->t[t].mem_left = tg->mem_free_bytes.value;
		for (size_t g = 0; g < tg->n_gpus; g++) {
			const char *cur = tg->gpus[g].current_profile;
			p->t[t].gpus[g] = (gpu_state){ cur && cur[0] ? cur : NULL, tg->gpus[g].used };
		}
	}
	p->scratch = calloc(max_gpus, sizeof(*p->scratch));
	return p->scratch ? 0 : -ENOMEM;
}

int vgm_place(const vgm_place_input *in, bool cold_fallback, vgm_placement **out, vgm_error *err)
{
	*out = NULL;
	int r = validate(in, err);
	if (r < 0)
		return r;
	_cleanup_(vgm_placement_freep) vgm_placement *pl = calloc(1, sizeof(*pl));
	placer p;
	r = placer_init(&p, in);
	if (r >= 0 && (!pl || !(pl->entries = calloc(in->n_vms + 1, sizeof(*pl->entries)))))
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < in->n_vms; i++)
		pl->entries[i] = (vgm_place_entry){ .vm = i, .target = -1 };
	if (r >= 0) {
		pl->n = in->n_vms;
		qsort_r(pl->entries, pl->n, sizeof(*pl->entries), by_size, (void *)in);
	}
	for (size_t i = 0; r >= 0 && i < pl->n; i++) {
		r = place_one(&p, &pl->entries[i], cold_fallback);
		if (r > 0)
			pl->n_placed++;
	}
	placer_clear(&p);
	if (r < 0)
		return vgm_error_set(err, -r, "out of memory");
	qsort_r(pl->entries, pl->n, sizeof(*pl->entries), by_pause, (void *)in);
	*out = TAKE_PTR(pl);
	return 0;
}

void vgm_placement_free(vgm_placement *p)
{
	if (!p)
		return;
	free(p->entries);
	free(p);
}
