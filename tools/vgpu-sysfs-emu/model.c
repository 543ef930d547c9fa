/* model.c: state and kernel semantics of the emulated host (see emu.h).
 *
 * Error numbers follow the kernel's mdev core where it decides (EINVAL for
 * a malformed UUID, EEXIST for a UUID in use) and document our choice where
 * the NVIDIA driver decides and its behaviour is not public: a create with
 * no capacity left fails with ENOSPC (the mdev core's own accounting would
 * say EUSERS, NVIDIA's driver does its own). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emu.h"
#include "xalloc.h"

static void emu_add_parents(emu *e)
{
	const emu_catalog *c = e->cat;
	unsigned per_gpu = c->layout == EMU_MDEV_ON_PF ? 1 : c->n_vfs;
	e->n_parents = e->n_gpus * per_gpu;
	e->parents = xcalloc(e->n_parents, sizeof(*e->parents));
	for (unsigned i = 0; i < e->n_gpus; i++) {
		for (unsigned k = 0; k < per_gpu; k++) {
			emu_parent *p = &e->parents[i * per_gpu + k];
			p->emu = e;
			p->gpu = &e->gpus[i];
			p->is_vf = c->layout != EMU_MDEV_ON_PF;
			if (p->is_vf)
				emu_catalog_vf_addr(c, i, k, p->addr);
			else
				memcpy(p->addr, e->gpus[i].addr, sizeof(p->addr));
		}
	}
	e->type_refs = xcalloc((size_t)e->n_parents * c->n_profiles, sizeof(*e->type_refs));
	for (unsigned i = 0; i < e->n_parents; i++)
		for (unsigned t = 0; t < c->n_profiles; t++)
			e->type_refs[i * c->n_profiles + t] = (emu_type_ref){ &e->parents[i], t };
}

emu *emu_new(const emu_catalog *cat, unsigned n_gpus, const char *driver_version, bool ecc)
{
	emu *e = xcalloc(1, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->fault_cond, NULL);
	e->cat = cat;
	e->driver_version = xstrdup(driver_version);
	e->started = time(NULL);
	e->n_gpus = n_gpus;
	e->gpus = xcalloc(n_gpus, sizeof(*e->gpus));
	for (unsigned i = 0; i < n_gpus; i++) {
		e->gpus[i].emu = e;
		e->gpus[i].index = i;
		e->gpus[i].active_profile = -1;
		e->gpus[i].ecc = ecc;
		emu_catalog_gpu_addr(cat, i, e->gpus[i].addr);
	}
	emu_add_parents(e);
	e->root = tree_new_root();
	emu_build_tree(e);
	emu_control_add(e);
	return e;
}

void emu_free(emu *e)
{
	if (!e)
		return;
	while (e->instances) {
		emu_instance *next = e->instances->next;
		free(e->instances);
		e->instances = next;
	}
	for (unsigned i = 0; i < e->n_parents; i++)
		free(e->parents[i].dev_path);
	tree_remove(e->root);
	free(e->type_refs);
	free(e->parents);
	free(e->gpus);
	free(e->driver_version);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

unsigned emu_available(const emu_parent *p, unsigned profile)
{
	const emu_gpu *g = p->gpu;
	unsigned max = p->emu->cat->profiles[profile].max_instance;
	if (g->active_profile >= 0 && (unsigned)g->active_profile != profile)
		return 0; /* homogeneous rule */
	if (g->used >= max)
		return 0;
	if (p->is_vf)
		return p->used == 0 ? 1 : 0; /* a VF holds at most one vGPU */
	return max - g->used;
}

emu_instance *emu_find_instance(emu *e, const char *id)
{
	for (emu_instance *i = e->instances; i; i = i->next)
		if (strcasecmp(i->id, id) == 0)
			return i;
	return NULL;
}

emu_instance *emu_parent_instance(emu_parent *p)
{
	for (emu_instance *i = p->emu->instances; i; i = i->next)
		if (i->parent == p)
			return i;
	return NULL;
}

int emu_create(emu_parent *p, unsigned profile, const char *id)
{
	emu *e = p->emu;
	emu_fault_wait_create(e);
	if (emu_find_instance(e, id))
		return -EEXIST;
	int r = emu_fault_take_create(e);
	if (r < 0)
		return r;
	if (emu_available(p, profile) == 0)
		return -ENOSPC;
	emu_instance *inst = xcalloc(1, sizeof(*inst));
	for (size_t k = 0; id[k] && k < sizeof(inst->id) - 1; k++)
		inst->id[k] = (char)tolower((unsigned char)id[k]);
	inst->parent = p;
	inst->profile = profile;
	inst->iommu_group = e->next_iommu_group++;
	inst->next = e->instances;
	e->instances = inst;
	p->used++;
	p->gpu->used++;
	p->gpu->active_profile = (int)profile;
	emu_instance_add_nodes(e, inst);
	return 0;
}

int emu_remove(emu_instance *inst)
{
	emu_parent *p = inst->parent;
	emu *e = p->emu;
	if (emu_fault_busy(e, inst->id))
		return -EBUSY;
	char id[sizeof(inst->id)];
	memcpy(id, inst->id, sizeof(id));
	emu_fault_wait_remove(e, id);
	/* the lock was down while we waited: the instance may be gone */
	if (!(inst = emu_find_instance(e, id)))
		return -ENODEV;
	emu_instance_remove_nodes(e, inst);
	for (emu_instance **pp = &e->instances; *pp; pp = &(*pp)->next) {
		if (*pp == inst) {
			*pp = inst->next;
			break;
		}
	}
	p->used--;
	if (--p->gpu->used == 0)
		p->gpu->active_profile = -1;
	free(inst);
	return 0;
}
