/* emu.h: the emulated host: physical GPUs, vGPU parents, instances, faults.
 *
 * The model owns the tree (tree.h) and keeps it in step with its state:
 * creating a vGPU adds the nodes the kernel would add (the instance
 * directory, its links, the type's devices/ entry, the /sys/bus/mdev link,
 * an IOMMU group), removing it takes them away.  Counters that the kernel
 * computes on read (available_instances, creatable_vgpu_types) are computed
 * by show callbacks from the state, so they can never drift.
 *
 * Capacity rules (NVIDIA): a physical GPU hosts one vGPU type at a time
 * (homogeneous rule) and at most that type's max_instance; on SR-IOV boards
 * each VF holds at most one vGPU.
 *
 * Locking: every entry point from FUSE takes emu->lock (a mutex) for the
 * whole operation, so the multi-threaded FUSE loop is as safe as -s.  The
 * blocking faults (block-remove, slow-create) wait on fault_cond, which lets
 * go of the lock while they wait, so every other operation goes on. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "catalog.h"
#include "tree.h"

#define EMU_MAX_BUSY 64
#define EMU_MAX_SLOW_CREATE_MS 600000

/* Instance ids a fault applies to (UUIDs or VF addresses). */
typedef struct emu_idset {
	char ids[EMU_MAX_BUSY][37];
	unsigned n;
} emu_idset;

typedef struct emu_gpu emu_gpu;
typedef struct emu_parent emu_parent;
typedef struct emu_instance emu_instance;
typedef struct emu emu;

struct emu_gpu {
	emu *emu;
	char addr[13];
	unsigned index;
	int active_profile; /* index into the catalog's profiles, -1 when empty */
	unsigned used;      /* instances on this GPU */
	bool ecc;           /* ECC mode shown in its information file */
};

/* A PCI function that can hold vGPUs: the GPU itself (M10) or one VF. */
struct emu_parent {
	emu *emu;
	char addr[13];
	emu_gpu *gpu;
	bool is_vf;
	unsigned used;   /* instances on this function */
	char *dev_path;  /* absolute in-tree path of its /sys/devices dir */
	tree_node *dev_dir;
};

/* The (parent, profile) pair behind one mdev type directory's attributes. */
typedef struct emu_type_ref {
	emu_parent *parent;
	unsigned profile;
} emu_type_ref;

struct emu_instance {
	char id[37];        /* lowercase UUID (mdev) or VF address (vendor VF) */
	emu_parent *parent;
	unsigned profile;
	unsigned iommu_group;
	emu_instance *next;
};

struct emu {
	pthread_mutex_t lock;
	const emu_catalog *cat;
	char *driver_version;
	time_t started; /* mtime of every node */
	tree_node *root;
	emu_gpu *gpus;
	unsigned n_gpus;
	emu_parent *parents;
	unsigned n_parents;
	emu_type_ref *type_refs; /* n_parents x n_profiles */
	emu_instance *instances;
	unsigned next_iommu_group;
	/* fault injection (control.c) */
	int fail_create_errno; /* 0: none; else the next create fails with it */
	emu_idset busy;         /* remove fails EBUSY */
	emu_idset blocked;      /* remove waits until unblocked (current kernels) */
	unsigned slow_create_ms; /* every create takes this long first */
	pthread_cond_t fault_cond; /* signalled when a fault is lifted */
	bool single_thread;     /* -s: a blocking fault would stall the only thread */
};

/* Build the whole tree for catalog cat with n_gpus physical GPUs. */
emu *emu_new(const emu_catalog *cat, unsigned n_gpus, const char *driver_version, bool ecc);
void emu_free(emu *e);

/* Capacity (callers hold the lock). */
unsigned emu_available(const emu_parent *p, unsigned profile);
/* Create/remove; return 0 or -errno as the kernel would. */
int emu_create(emu_parent *p, unsigned profile, const char *id);
int emu_remove(emu_instance *inst);
emu_instance *emu_find_instance(emu *e, const char *id);
emu_instance *emu_parent_instance(emu_parent *p);

/* model-sysfs.c: build the static tree and per-instance nodes. */
void emu_build_tree(emu *e);
void emu_instance_add_nodes(emu *e, emu_instance *inst);
void emu_instance_remove_nodes(emu *e, emu_instance *inst);

/* control.c: the fault-injection control file and its hooks. */
void emu_control_add(emu *e);
/* Consume the pending create fault: return -errno or 0. */
int emu_fault_take_create(emu *e);
bool emu_fault_busy(const emu *e, const char *id);
/* With e->lock held: wait while id's removal is blocked, or for the slow
 * create delay (both end early when the fault is lifted). */
void emu_fault_wait_remove(emu *e, const char *id);
void emu_fault_wait_create(emu *e);
