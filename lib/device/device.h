/* device.h: vGPU inventory and lifecycle, one model for both NVIDIA backends.
 *
 *   mdev backend  /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/...
 *                 instances /sys/bus/mdev/devices/<uuid> (mdev_type link -> type dir)
 *   VF backend    /sys/bus/pci/devices/<VF>/nvidia/{creatable_vgpu_types,current_vgpu_type}
 *                 (Ada/Hopper/Blackwell, vGPU 17+, kernel >= 6.8; no mdev at all)
 *
 * A parent is a PCI function that can host vGPUs (a physical GPU, or an SR-IOV
 * VF on Ampere and later).  A profile is one vGPU type on a parent.  An
 * instance is a created vGPU: an mdev (id = UUID) or a VF holding a vGPU type
 * (id = the VF's PCI address).
 *
 * Every path is built from vgm_host's sysfs root.  Identifiers from outside
 * are validated (validate.h) before any path is built from them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

typedef enum vgm_backend {
	VGM_BACKEND_MDEV = 0,
	VGM_BACKEND_VF = 1,
} vgm_backend;

const char *vgm_backend_to_string(vgm_backend b); /* "mdev" | "vf" */

typedef struct vgm_kv {
	char *key;
	char *value;
} vgm_kv;

typedef struct vgm_profile {
	char *type_id;     /* "nvidia-471" (mdev) or "1414" (VF) */
	char *name;        /* "NVIDIA A100-4C", "GRID M10-2Q" */
	char *description; /* raw description, may be NULL (VF backend has none) */
	char *device_api;  /* "vfio-pci", NULL when unknown */
	uint64_t framebuffer_bytes;
	unsigned max_instances;  /* per parent; 0 when unknown */
	unsigned available;      /* available_instances now */
	char license_class;      /* 'Q','C','B','A' from the name, or 0 */
	unsigned num_heads;      /* 0 when absent */
	unsigned frl_config;     /* 0 when absent */
	char *max_resolution;    /* "4096x2160", NULL when absent */
	vgm_kv *extra;           /* description keys we do not know, in order */
	size_t n_extra;
} vgm_profile;

typedef struct vgm_parent {
	char *address;    /* PCI address of the parent */
	char *physfn;     /* PCI address of the physical GPU (== address when not a VF) */
	char *board;      /* board family from profile names ("A100", "M10"), or NULL */
	vgm_backend backend;
	vgm_profile *profiles;
	size_t n_profiles;
	char *current_type_id; /* VF backend: the type a VF holds, NULL if none */
} vgm_parent;

typedef struct vgm_instance {
	vgm_backend kind;
	char *id;       /* UUID (mdev) or VF PCI address (vf) */
	char *parent;   /* parent PCI address */
	char *type_id;
	char *profile_name;  /* NULL when the type is unknown */
	uint64_t framebuffer_bytes;
} vgm_instance;

typedef struct vgm_inventory {
	char *driver_version; /* NULL when no NVIDIA driver is loaded */
	vgm_parent *parents;
	size_t n_parents;
	vgm_instance *instances;
	size_t n_instances;
} vgm_inventory;

typedef struct vgm_host vgm_host;

/* sysfs_root: "/" on a real host; NULL means $VGPUMIG_SYSFS_ROOT or "/". */
int vgm_host_new(const char *sysfs_root, vgm_host **out, vgm_error *err);
void vgm_host_free(vgm_host *h);
const char *vgm_host_root(const vgm_host *h);

/* The host's inventory: from its inventory source when one is set, else a
 * full sysfs read (vgm_inventory_scan). */
int vgm_inventory_load(vgm_host *h, vgm_inventory **out, vgm_error *err);
/* A full read of sysfs, whatever source is set. */
int vgm_inventory_scan(vgm_host *h, vgm_inventory **out, vgm_error *err);
/* A full read of a 256-parent host takes seconds; an owner of a copy it
 * keeps current (the agent's store: vgm_store_inventory_source) installs
 * itself here so every reader of the host (checks, facts, the libvirt pass)
 * shares that copy instead of scanning.  load hands back a copy the caller
 * frees, and must itself read sysfs with vgm_inventory_scan, never
 * vgm_inventory_load.  NULL load: scan again. */
typedef int (*vgm_inventory_source)(void *ctx, vgm_host *h, vgm_inventory **out,
				    vgm_error *err);
void vgm_host_set_inventory_source(vgm_host *h, vgm_inventory_source load, void *ctx);
void vgm_inventory_free(vgm_inventory *inv);
void vgm_parent_clear(vgm_parent *p);
void vgm_instances_free(vgm_instance *v, size_t n);
/* A deep copy; NULL on allocation failure. */
vgm_inventory *vgm_inventory_dup(const vgm_inventory *inv);

/* Per-parent reads, for a cache kept current without full scans
 * (lib/store/invcache.c).  One parent's profiles and counts (sorted as in a
 * full read); "no_parent" (-ENOENT) when address is no vGPU parent now. */
int vgm_inventory_load_parent(vgm_host *h, const char *address, vgm_parent *out, vgm_error *err);
/* The instances alone: the mdev bus directory, and current_vgpu_type of the
 * VF parents known has.  An id known already has keeps known's parent and
 * type (no link walk); profile names come from known's parents (NULL for an
 * instance on a parent known lacks).  Sorted by id; free with
 * vgm_instances_free. */
int vgm_inventory_load_instances(vgm_host *h, const vgm_inventory *known, vgm_instance **out,
				 size_t *n, vgm_error *err);
const vgm_parent *vgm_inventory_find_parent(const vgm_inventory *inv, const char *address);
const vgm_instance *vgm_inventory_find_instance(const vgm_inventory *inv, const char *id);
const vgm_profile *vgm_parent_find_profile(const vgm_parent *p, const char *type_id);

/* Create a vGPU of type_id on parent.  mdev: uuid may be NULL (one is
 * generated); VF backend: parent is the VF, uuid must be NULL.  On success
 * *out_id (optional) is the new instance id. */
int vgm_device_create(vgm_host *h, const char *parent, const char *type_id, const char *uuid,
		      char **out_id, vgm_error *err);
/* Remove an instance by id (UUID or VF address).  EBUSY -> "in use". */
int vgm_device_remove(vgm_host *h, const char *id, vgm_error *err);

/* Host vGPU driver version, from /sys/module/nvidia/version or
 * /proc/driver/nvidia/version.  -ENOENT when neither exists. */
int vgm_driver_version(vgm_host *h, char **out, vgm_error *err);
/* Is the PCI device at addr on this host an NVIDIA one (vendor 0x10de)?
 * false for a malformed or absent address. */
bool vgm_pci_is_nvidia(const vgm_host *h, const char *addr);

/* Parse an NVIDIA description ("num_heads=1, frl_config=60, framebuffer=4096M,
 * max_resolution=4096x2160, max_instance=6") into p's fields; unknown keys go
 * to p->extra.  Also derives license_class from p->name when set. */
int vgm_profile_parse_description(vgm_profile *p, const char *desc, vgm_error *err);
/* Board family from a profile name: "NVIDIA A100-4C" -> "A100", "GRID M10-2Q" -> "M10". */
char *vgm_profile_board(const char *name);
/* Framebuffer from a profile name's size part: "A100-4C" and "H100-1-10C"
 * give 4 and 10 GiB; 0 when the name has no size. */
uint64_t vgm_profile_framebuffer_from_name(const char *name);
void vgm_profile_clear(vgm_profile *p);

/* The JSON forms shared by `vgpumig devices|types --json` and the agent's
 * GET /v1/devices (documented in docs/cli-device.md).  New references; NULL
 * only on allocation failure. */
struct json_t *vgm_inventory_devices_json(const vgm_inventory *inv);
struct json_t *vgm_inventory_types_json(const vgm_inventory *inv);

DEFINE_FREEP(vgm_host, vgm_host_free)
DEFINE_FREEP(vgm_inventory, vgm_inventory_free)
