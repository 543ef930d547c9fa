/* fake-device.h: an in-memory stand-in for lib/device, plugged into the store
 * through vgm_store_devops, so the claims engine can be tested with real
 * create/remove semantics (available_instances, NVIDIA's homogeneous rule,
 * EEXIST, EBUSY) and injected faults, without a FUSE mount.
 *
 * The state lives in one MAP_SHARED mapping with no pointers inside, so a
 * forked child that is SIGKILLed in the middle of a claim leaves its sysfs
 * effects visible to the parent, as a kernel would. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define FAKE_MAX_PARENTS 16
#define FAKE_MAX_PROFILES 6
#define FAKE_MAX_INSTANCES 256

typedef struct fake_profile {
	char type_id[24];
	char name[48];
	uint64_t fb;
	unsigned max; /* instances per parent */
} fake_profile;

typedef struct fake_parent {
	char address[32];
	char physfn[32];
	vgm_backend backend;
	fake_profile profiles[FAKE_MAX_PROFILES];
	unsigned n_profiles;
} fake_parent;

typedef struct fake_instance {
	bool used;
	char id[40];
	unsigned parent;
	unsigned profile;
} fake_instance;

typedef struct fake_dev {
	fake_parent parents[FAKE_MAX_PARENTS];
	unsigned n_parents;
	fake_instance inst[FAKE_MAX_INSTANCES];
	unsigned creates, removes;   /* successful calls */
	unsigned create_calls, remove_calls;
	unsigned loads;              /* inventory reads */
	unsigned fail_create_at;     /* 1-based create call that fails; 0: none */
	int fail_create_errno;
	unsigned kill_create_after;  /* SIGKILL self after this many successful creates */
	unsigned kill_create_before; /* SIGKILL self at this create call (1-based) */
	unsigned kill_remove_before; /* SIGKILL self before this remove call (1-based) */
	char busy[40];               /* remove of this id fails EBUSY */
	/* Blocking faults, read atomically (the store calls from other threads):
	 * a remove of any id blocks while block_remove is set (as current
	 * kernels block while the device is open), a create while block_create
	 * is; in_remove / in_create say a call is waiting there. */
	int block_remove, block_create;
	int in_remove, in_create;
} fake_dev;

fake_dev *fake_new(void);
void fake_free(fake_dev *f);
unsigned fake_add_parent(fake_dev *f, const char *address, const char *physfn, vgm_backend b);
void fake_add_profile(fake_dev *f, unsigned parent, const char *type_id, const char *name,
		      uint64_t fb, unsigned max);
/* An instance made behind the store's back (the operator's); returns 0 or -errno. */
int fake_add_instance(fake_dev *f, const char *id, unsigned parent, const char *type_id);
bool fake_has(const fake_dev *f, const char *id);
unsigned fake_count(const fake_dev *f);
/* Drop an instance without the store knowing (as if the operator removed it). */
void fake_drop(fake_dev *f, const char *id);
/* Parent address of an instance, NULL when absent. */
const char *fake_parent_of(const fake_dev *f, const char *id);
vgm_store_devops fake_devops(fake_dev *f);

/* Standard catalogs. A100-like mdev host: n GPUs 0000:0N:00.0, one parent
 * each, profiles A100-4C (nvidia-471, max 10), A100-8C (nvidia-472, max 5),
 * A100-40C (nvidia-475, max 1). */
void fake_catalog_a100(fake_dev *f, unsigned n_gpus);
/* H100-like VF host: one GPU 0000:41:00.0 with n VFs 0000:41:00.4.., each
 * offering H100-1-10C (type 1414) and H100-2-20C (type 1415). */
void fake_catalog_h100(fake_dev *f, unsigned n_vfs);

#define GIB (1024ULL * 1024 * 1024)
