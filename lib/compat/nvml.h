/* nvml.h: what vgpumig asks NVIDIA's management library, loaded at run time.
 *
 * libnvidia-ml.so.1 is dlopen()ed, never linked: a host without the NVIDIA
 * driver (or a build machine) needs no NVML, and then every fact NVML would
 * give is "unknown".  Only the documented, stable entry points are used
 * (nvmlInit_v2, nvmlSystemGetDriverVersion, nvmlDeviceGetCount_v2,
 * nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetEccMode,
 * nvmlDeviceGetVgpuCapabilities, nvmlDeviceGetSupportedVgpus,
 * nvmlVgpuTypeGetName, nvmlVgpuTypeGetFramebufferSize,
 * nvmlDeviceGetActiveVgpus, nvmlVgpuInstanceGetMdevUUID,
 * nvmlVgpuInstanceGetGpuPciId, nvmlVgpuInstanceGetMetadata,
 * nvmlDeviceGetVgpuMetadata, nvmlGetVgpuCompatibility); the optional ones
 * (capabilities, mdev UUID, PCI id) may be missing in older drivers.
 *
 * NVIDIA's migration verdict compares a vGPU's metadata (read on the source,
 * an opaque blob) with a physical GPU's metadata (read on the target); both
 * travel as lowercase hex so they fit in JSON and in domain XML.  The handle
 * is safe to share between threads (NVML is thread-safe once initialised). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define VGM_NVML_LIB "libnvidia-ml.so.1"
#define VGM_NVML_BLOB_MAX 4096 /* bytes of one metadata blob we accept */

typedef struct vgm_nvml vgm_nvml;

/* One vGPU type a GPU supports. */
typedef struct vgm_nvml_type {
	char *name; /* "NVIDIA A100-4C" */
	uint64_t framebuffer_bytes;
} vgm_nvml_type;

/* One physical GPU. */
typedef struct vgm_nvml_gpu {
	int ecc;       /* 1 enabled, 0 disabled, -1 unknown */
	int streaming; /* vGPU migration data streaming: 1, 0, -1 unknown */
	char *pgpu_metadata; /* hex, NULL when NVML has none */
	vgm_nvml_type *types;
	size_t n_types;
} vgm_nvml_gpu;

/* NVIDIA's verdict for one vGPU on one physical GPU. */
typedef struct vgm_nvml_verdict {
	bool live;           /* NVML_VGPU_VM_COMPATIBILITY_LIVE */
	unsigned vm_compat;  /* nvmlVgpuVmCompatibility_t bits */
	unsigned limit;      /* nvmlVgpuPgpuCompatibilityLimitCode_t bits */
} vgm_nvml_verdict;

/* Load and initialise NVML from lib (NULL: VGM_NVML_LIB, found through the
 * normal library search path).  -ENOENT with the loader's or NVML's reason
 * when it cannot be used; the caller treats that as "no NVML". */
int vgm_nvml_open(const char *lib, vgm_nvml **out, vgm_error *err);
void vgm_nvml_close(vgm_nvml *nv); /* nvmlShutdown and dlclose; NULL ok */
DEFINE_FREEP(vgm_nvml, vgm_nvml_close)

int vgm_nvml_driver_version(vgm_nvml *nv, char **out, vgm_error *err);
/* Every GPU NVML sees, in index order. */
int vgm_nvml_gpus(vgm_nvml *nv, vgm_nvml_gpu **out, size_t *n, vgm_error *err);
void vgm_nvml_gpus_free(vgm_nvml_gpu *g, size_t n);
/* The metadata of the running vGPU whose mdev UUID or VF address is id, as
 * hex.  -ENOENT when NVML knows no such vGPU. */
int vgm_nvml_vgpu_metadata(vgm_nvml *nv, const char *id, char **hex, vgm_error *err);
/* nvmlGetVgpuCompatibility for a vGPU blob and a physical GPU blob (hex).
 * -EINVAL when a blob is not hex of a sane size. */
int vgm_nvml_compat(vgm_nvml *nv, const char *vgpu_hex, const char *pgpu_hex,
		    vgm_nvml_verdict *out, vgm_error *err);
/* "host driver", "guest driver", "GPU", "other" or "none" for limit bits. */
const char *vgm_nvml_limit_text(unsigned limit);
