/* catalog.h: the NVIDIA boards vgpu-sysfs-emu can pretend to be.
 *
 * A catalog names a board, how its vGPUs are exposed (layout), its PCI
 * identity and topology, and its vGPU profiles with the numbers the NVIDIA
 * host driver publishes (framebuffer, max instances per physical GPU,
 * heads, frame-rate limiter, resolution).  Type ids follow the driver's
 * shapes ("nvidia-471" for mdev types, a bare number such as "1414" on the
 * vendor VF interface); they are plausible, not copied from a given driver
 * release, and must not be relied on across catalogs (as on real hosts).
 *
 * The data is constant; nothing here changes at run time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum emu_layout {
	EMU_MDEV_ON_PF,   /* Maxwell..Turing: each physical GPU is an mdev parent (M10) */
	EMU_MDEV_ON_VF,   /* Ampere, Ada on older kernels: SR-IOV VFs are mdev parents */
	EMU_VENDOR_VF,    /* Ada/Hopper/Blackwell, vGPU 17+, kernel >= 6.8: no mdev */
} emu_layout;

typedef struct emu_profile {
	unsigned type_num;   /* nvidia-<n> or the VF interface id */
	const char *name;    /* "NVIDIA A100-4C", "GRID M10-2Q" */
	unsigned fb_mib;
	unsigned max_instance; /* per physical GPU */
	unsigned num_heads;
	unsigned frl_config;
	const char *max_resolution;
} emu_profile;

typedef struct emu_catalog {
	const char *name;        /* --catalog value: "M10", "A100", "L40S", "H100" */
	const char *model;       /* /proc/driver/nvidia/gpus/.../information "Model:" */
	unsigned device_id;      /* PCI device id of the physical function */
	unsigned vf_device_id;   /* PCI device id of the VFs (0: no SR-IOV) */
	emu_layout layout;
	unsigned n_vfs;          /* VFs per physical GPU (0 for EMU_MDEV_ON_PF) */
	unsigned gpus_per_board; /* physical GPUs per board (M10: 4) */
	unsigned default_gpus;
	unsigned max_gpus;
	bool ecc_default;
	const emu_profile *profiles;
	size_t n_profiles;
} emu_catalog;

/* Case-insensitive lookup by name; NULL if unknown. */
const emu_catalog *emu_catalog_find(const char *name);
/* "M10, A100, L40S, H100" for messages. */
const char *emu_catalog_names(void);

/* PCI address of physical GPU i ("0000:41:00.0") and the absolute in-tree
 * path of the directory that holds it ("/sys/devices/pci0000:40/0000:40:01.1"). */
void emu_catalog_gpu_addr(const emu_catalog *c, unsigned i, char out[13]);
void emu_catalog_gpu_bridge(const emu_catalog *c, unsigned i, char *out, size_t outsz);
/* PCI address of VF k (0-based) of physical GPU i: VF offset 4, stride 1. */
void emu_catalog_vf_addr(const emu_catalog *c, unsigned i, unsigned k, char out[13]);
