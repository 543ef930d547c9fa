/* fake-device.c: see fake-device.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake-device.h"
#include "util/validate.h"

fake_dev *fake_new(void)
{
	void *p = mmap(NULL, sizeof(fake_dev), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(fake_dev));
	return p;
}

void fake_free(fake_dev *f)
{
	if (f)
		munmap(f, sizeof(*f));
}

unsigned fake_add_parent(fake_dev *f, const char *address, const char *physfn, vgm_backend b)
{
	fake_parent *p = &f->parents[f->n_parents];
	snprintf(p->address, sizeof(p->address), "%s", address);
	snprintf(p->physfn, sizeof(p->physfn), "%s", physfn ? physfn : address);
	p->backend = b;
	return f->n_parents++;
}

void fake_add_profile(fake_dev *f, unsigned parent, const char *type_id, const char *name,
		      uint64_t fb, unsigned max)
{
	fake_parent *p = &f->parents[parent];
	fake_profile *t = &p->profiles[p->n_profiles++];
	snprintf(t->type_id, sizeof(t->type_id), "%s", type_id);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->fb = fb;
	t->max = max;
}

static int find_inst(const fake_dev *f, const char *id)
{
	for (int i = 0; i < FAKE_MAX_INSTANCES; i++)
		if (f->inst[i].used && strcasecmp(f->inst[i].id, id) == 0)
			return i;
	return -1;
}

bool fake_has(const fake_dev *f, const char *id)
{
	return find_inst(f, id) >= 0;
}

unsigned fake_count(const fake_dev *f)
{
	unsigned n = 0;
	for (int i = 0; i < FAKE_MAX_INSTANCES; i++)
		n += f->inst[i].used;
	return n;
}

void fake_drop(fake_dev *f, const char *id)
{
	int i = find_inst(f, id);
	if (i >= 0)
		f->inst[i].used = false;
}

const char *fake_parent_of(const fake_dev *f, const char *id)
{
	int i = find_inst(f, id);
	return i < 0 ? NULL : f->parents[f->inst[i].parent].address;
}

static int find_parent(const fake_dev *f, const char *address)
{
	for (unsigned i = 0; i < f->n_parents; i++)
		if (strcmp(f->parents[i].address, address) == 0)
			return (int)i;
	return -1;
}

static int find_profile(const fake_parent *p, const char *type_id)
{
	for (unsigned i = 0; i < p->n_profiles; i++)
		if (strcmp(p->profiles[i].type_id, type_id) == 0)
			return (int)i;
	return -1;
}

/* available_instances as the driver computes it: 0 when the GPU hosts
 * another type (homogeneous), else max minus what the parent holds. */
static unsigned available(const fake_dev *f, unsigned pi, unsigned ti)
{
	const fake_parent *p = &f->parents[pi];
	unsigned on_parent = 0;
	for (int i = 0; i < FAKE_MAX_INSTANCES; i++) {
		const fake_instance *in = &f->inst[i];
		if (!in->used)
			continue;
		const fake_parent *q = &f->parents[in->parent];
		if (strcmp(q->physfn, p->physfn) != 0)
			continue;
		if (strcmp(q->profiles[in->profile].type_id, p->profiles[ti].type_id) != 0)
			return 0;
		on_parent += in->parent == pi;
	}
	unsigned max = p->backend == VGM_BACKEND_VF ? 1 : p->profiles[ti].max;
	return on_parent >= max ? 0 : max - on_parent;
}

static int add_instance(fake_dev *f, const char *id, unsigned parent, unsigned profile)
{
	for (int i = 0; i < FAKE_MAX_INSTANCES; i++)
		if (!f->inst[i].used) {
			f->inst[i] = (fake_instance){.used = true, .parent = parent,
						     .profile = profile};
			vgm_id_normalize(id, f->inst[i].id, sizeof(f->inst[i].id));
			return 0;
		}
	return -ENOSPC;
}

int fake_add_instance(fake_dev *f, const char *id, unsigned parent, const char *type_id)
{
	int ti = find_profile(&f->parents[parent], type_id);
	if (ti < 0 || fake_has(f, id) || available(f, parent, (unsigned)ti) == 0)
		return -EINVAL;
	return add_instance(f, id, parent, (unsigned)ti);
}

static void fill_profile(const fake_dev *f, unsigned pi, unsigned ti, vgm_profile *out)
{
	const fake_profile *t = &f->parents[pi].profiles[ti];
	out->type_id = strdup(t->type_id);
	out->name = strdup(t->name);
	out->framebuffer_bytes = t->fb;
	out->max_instances = t->max;
	out->available = available(f, pi, ti);
}

static void fill_parent(const fake_dev *f, unsigned pi, vgm_parent *out)
{
	const fake_parent *p = &f->parents[pi];
	out->address = strdup(p->address);
	out->physfn = strdup(p->physfn);
	out->backend = p->backend;
	out->profiles = calloc(p->n_profiles, sizeof(vgm_profile));
	out->n_profiles = p->n_profiles;
	for (unsigned t = 0; t < p->n_profiles; t++)
		fill_profile(f, pi, t, &out->profiles[t]);
	for (int i = 0; p->backend == VGM_BACKEND_VF && i < FAKE_MAX_INSTANCES; i++)
		if (f->inst[i].used && f->inst[i].parent == pi)
			out->current_type_id = strdup(p->profiles[f->inst[i].profile].type_id);
}

static int fake_load(void *ctx, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	fake_dev *f = ctx;
	f->loads++;
	vgm_inventory *inv = calloc(1, sizeof(*inv));
	inv->parents = calloc(f->n_parents + 1, sizeof(vgm_parent));
	inv->n_parents = f->n_parents;
	for (unsigned i = 0; i < f->n_parents; i++)
		fill_parent(f, i, &inv->parents[i]);
	inv->instances = calloc(fake_count(f) + 1, sizeof(vgm_instance));
	for (int i = 0; i < FAKE_MAX_INSTANCES; i++) {
		const fake_instance *in = &f->inst[i];
		if (!in->used)
			continue;
		const fake_parent *p = &f->parents[in->parent];
		vgm_instance *o = &inv->instances[inv->n_instances++];
		o->kind = p->backend;
		o->id = strdup(in->id);
		o->parent = strdup(p->address);
		o->type_id = strdup(p->profiles[in->profile].type_id);
		o->profile_name = strdup(p->profiles[in->profile].name);
		o->framebuffer_bytes = p->profiles[in->profile].fb;
	}
	*out = inv;
	return 0;
}

static void fake_inventory_free(void *ctx, vgm_inventory *inv)
{
	for (size_t i = 0; i < inv->n_parents; i++) {
		vgm_parent *p = &inv->parents[i];
		for (size_t t = 0; t < p->n_profiles; t++) {
			free(p->profiles[t].type_id);
			free(p->profiles[t].name);
		}
		free(p->profiles);
		free(p->address);
		free(p->physfn);
		free(p->current_type_id);
	}
	for (size_t i = 0; i < inv->n_instances; i++) {
		free(inv->instances[i].id);
		free(inv->instances[i].parent);
		free(inv->instances[i].type_id);
		free(inv->instances[i].profile_name);
	}
	free(inv->parents);
	free(inv->instances);
	free(inv);
}

/* Wait while *block is set, saying so in *in. */
static void fake_wait(int *block, int *in)
{
	if (!__atomic_load_n(block, __ATOMIC_SEQ_CST))
		return;
	__atomic_add_fetch(in, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(block, __ATOMIC_SEQ_CST))
		usleep(1000);
	__atomic_sub_fetch(in, 1, __ATOMIC_SEQ_CST);
}

static int fake_create(void *ctx, vgm_host *h, const char *parent, const char *type_id,
		       const char *uuid, char **out_id, vgm_error *err)
{
	fake_dev *f = ctx;
	fake_wait(&f->block_create, &f->in_create);
	f->create_calls++;
	if (f->kill_create_before && f->create_calls == f->kill_create_before)
		raise(SIGKILL);
	if (f->fail_create_at && f->create_calls == f->fail_create_at)
		return vgm_error_setr(err, f->fail_create_errno, "create_failed",
				      "injected create failure");
	int pi = find_parent(f, parent);
	int ti = pi < 0 ? -1 : find_profile(&f->parents[pi], type_id);
	if (ti < 0)
		return vgm_error_setr(err, ENOENT, "unknown_type", "no type %s on %s", type_id,
				      parent);
	if (available(f, (unsigned)pi, (unsigned)ti) == 0)
		return vgm_error_setr(err, ENOSPC, "no_capacity", "no room on %s", parent);
	char id[40];
	if (f->parents[pi].backend == VGM_BACKEND_VF)
		snprintf(id, sizeof(id), "%s", parent);
	else if (uuid)
		snprintf(id, sizeof(id), "%s", uuid);
	else
		vgm_uuid_generate(id);
	if (fake_has(f, id))
		return vgm_error_setr(err, EEXIST, "exists", "%s exists", id);
	add_instance(f, id, (unsigned)pi, (unsigned)ti);
	f->creates++;
	if (f->kill_create_after && f->creates == f->kill_create_after)
		raise(SIGKILL);
	if (out_id)
		*out_id = strdup(id);
	return 0;
}

static int fake_remove(void *ctx, vgm_host *h, const char *id, vgm_error *err)
{
	fake_dev *f = ctx;
	fake_wait(&f->block_remove, &f->in_remove);
	f->remove_calls++;
	if (f->kill_remove_before && f->remove_calls == f->kill_remove_before)
		raise(SIGKILL);
	int i = find_inst(f, id);
	if (i < 0)
		return vgm_error_setr(err, ENOENT, "not_found", "no vGPU %s", id);
	if (strcasecmp(f->busy, id) == 0)
		return vgm_error_setr(err, EBUSY, "in_use", "vGPU %s is in use", id);
	f->inst[i].used = false;
	f->removes++;
	return 0;
}

vgm_store_devops fake_devops(fake_dev *f)
{
	return (vgm_store_devops){.inventory_load = fake_load, .inventory_free = fake_inventory_free,
				  .create = fake_create, .remove = fake_remove, .ctx = f};
}

void fake_catalog_a100(fake_dev *f, unsigned n_gpus)
{
	for (unsigned g = 0; g < n_gpus; g++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "0000:%02x:00.0", g + 1);
		unsigned p = fake_add_parent(f, addr, NULL, VGM_BACKEND_MDEV);
		fake_add_profile(f, p, "nvidia-471", "NVIDIA A100-4C", 4 * GIB, 10);
		fake_add_profile(f, p, "nvidia-472", "NVIDIA A100-8C", 8 * GIB, 5);
		fake_add_profile(f, p, "nvidia-475", "NVIDIA A100-40C", 40 * GIB, 1);
	}
}

void fake_catalog_h100(fake_dev *f, unsigned n_vfs)
{
	for (unsigned v = 0; v < n_vfs; v++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "0000:41:%02x.%u", (v + 4) / 8, (v + 4) % 8);
		unsigned p = fake_add_parent(f, addr, "0000:41:00.0", VGM_BACKEND_VF);
		fake_add_profile(f, p, "1414", "NVIDIA H100-1-10C", 10 * GIB, 1);
		fake_add_profile(f, p, "1415", "NVIDIA H100-2-20C", 20 * GIB, 1);
	}
}
