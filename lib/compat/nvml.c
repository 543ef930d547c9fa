/* nvml.c: libnvidia-ml loaded with dlopen (see nvml.h).
 *
 * The prototypes below are NVIDIA's documented NVML ABI, declared here so
 * the build needs no NVML header: nvmlReturn_t and the enums are ints,
 * handles are pointers, vGPU type and instance ids are unsigned ints.  The
 * metadata structs are opaque to us: NVML tells their size (bufferSize), we
 * keep the bytes as they are and only hand them back to NVML.
 * Layout checked against the NVML reference (vGPU Migration group):
 *   nvmlVgpuPgpuCompatibility_t { vgpuVmCompatibility; compatibilityLimitCode; }
 *   nvmlEnableState_t: 0 disabled, 1 enabled.
 * vgm_compat_nvml_verdict at the end turns per-GPU verdicts into the one
 * summary lib/compat's "nvml" check words (compat.h). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat/compat.h"
#include "util/validate.h"

typedef int nvml_ret;
typedef struct nvml_device *nvml_dev;

#define NVML_SUCCESS 0
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_VGPU_VM_COMPATIBILITY_LIVE 0x8
#define NVML_DEVICE_VGPU_CAP_DEVICE_STREAMING 5
#define NVML_NAME_MAX 64
#define NVML_MAX_TYPES 256
#define NVML_MAX_VGPUS 512

typedef struct nvml_compat {
	int vm_compat;
	int limit;
} nvml_compat;

struct vgm_nvml {
	void *dl;
	nvml_ret (*init)(void);
	nvml_ret (*shutdown)(void);
	const char *(*error_string)(nvml_ret);
	nvml_ret (*driver_version)(char *, unsigned);
	nvml_ret (*count)(unsigned *);
	nvml_ret (*by_index)(unsigned, nvml_dev *);
	nvml_ret (*ecc_mode)(nvml_dev, int *, int *);
	nvml_ret (*vgpu_caps)(nvml_dev, int, unsigned *);             /* optional */
	nvml_ret (*supported)(nvml_dev, unsigned *, unsigned *);
	nvml_ret (*type_name)(unsigned, char *, unsigned *);
	nvml_ret (*type_fb)(unsigned, unsigned long long *);
	nvml_ret (*active)(nvml_dev, unsigned *, unsigned *);
	nvml_ret (*mdev_uuid)(unsigned, char *, unsigned);            /* optional */
	nvml_ret (*pci_id)(unsigned, char *, unsigned *);             /* optional */
	nvml_ret (*vgpu_md)(unsigned, void *, unsigned *);
	nvml_ret (*pgpu_md)(nvml_dev, void *, unsigned *);
	nvml_ret (*compat)(void *, void *, nvml_compat *);
};

static const char *nvml_text(const vgm_nvml *nv, nvml_ret r)
{
	const char *s = nv->error_string ? nv->error_string(r) : NULL;
	return s ? s : "NVML error";
}

/* dlsym into a function pointer without a cast between object and function. */
static bool sym(void *dl, const char *name, void *fnp, bool required)
{
	void *p = dlsym(dl, name);
	memcpy(fnp, &p, sizeof(p));
	return p || !required;
}

static bool resolve(vgm_nvml *nv)
{
	void *d = nv->dl;
	sym(d, "nvmlErrorString", &nv->error_string, false);
	return sym(d, "nvmlInit_v2", &nv->init, true) && sym(d, "nvmlShutdown", &nv->shutdown, true) &&
	       sym(d, "nvmlSystemGetDriverVersion", &nv->driver_version, true) &&
	       sym(d, "nvmlDeviceGetCount_v2", &nv->count, true) &&
	       sym(d, "nvmlDeviceGetHandleByIndex_v2", &nv->by_index, true) &&
	       sym(d, "nvmlDeviceGetEccMode", &nv->ecc_mode, true) &&
	       sym(d, "nvmlDeviceGetVgpuCapabilities", &nv->vgpu_caps, false) &&
	       sym(d, "nvmlDeviceGetSupportedVgpus", &nv->supported, true) &&
	       sym(d, "nvmlVgpuTypeGetName", &nv->type_name, true) &&
	       sym(d, "nvmlVgpuTypeGetFramebufferSize", &nv->type_fb, true) &&
	       sym(d, "nvmlDeviceGetActiveVgpus", &nv->active, true) &&
	       sym(d, "nvmlVgpuInstanceGetMdevUUID", &nv->mdev_uuid, false) &&
	       sym(d, "nvmlVgpuInstanceGetGpuPciId", &nv->pci_id, false) &&
	       sym(d, "nvmlVgpuInstanceGetMetadata", &nv->vgpu_md, true) &&
	       sym(d, "nvmlDeviceGetVgpuMetadata", &nv->pgpu_md, true) &&
	       sym(d, "nvmlGetVgpuCompatibility", &nv->compat, true);
}

int vgm_nvml_open(const char *lib, vgm_nvml **out, vgm_error *err)
{
	_cleanup_free_ vgm_nvml *nv = calloc(1, sizeof(*nv));
	if (!nv)
		return vgm_error_set(err, ENOMEM, "out of memory");
	lib = lib ? lib : VGM_NVML_LIB;
	nv->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!nv->dl)
		return vgm_error_set(err, ENOENT, "NVML not loaded: %s", dlerror());
	if (!resolve(nv)) {
		dlclose(nv->dl);
		return vgm_error_set(err, ENOENT, "NVML not used: %s lacks a vGPU entry point (%s)",
				     lib, dlerror());
	}
	nvml_ret r = nv->init();
	if (r != NVML_SUCCESS) {
		vgm_error_set(err, ENOENT, "NVML not initialised: %s", nvml_text(nv, r));
		dlclose(nv->dl);
		return -ENOENT;
	}
	*out = TAKE_PTR(nv);
	return 0;
}

void vgm_nvml_close(vgm_nvml *nv)
{
	if (!nv)
		return;
	nv->shutdown();
	dlclose(nv->dl);
	free(nv);
}

int vgm_nvml_driver_version(vgm_nvml *nv, char **out, vgm_error *err)
{
	char buf[96] = "";
	nvml_ret r = nv->driver_version(buf, sizeof(buf) - 1);
	if (r != NVML_SUCCESS || !buf[0])
		return vgm_error_set(err, EIO, "NVML did not report the driver version: %s",
				     nvml_text(nv, r));
	return (*out = strdup(buf)) ? 0 : vgm_error_set(err, ENOMEM, "out of memory");
}

/* ---- hex ---- */

static char *hex_encode(const unsigned char *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	for (size_t i = 0; s && i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	if (s)
		s[2 * n] = '\0';
	return s;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A blob NVML gave us, hex-encoded; NULL on any bad input. */
static unsigned char *hex_decode(const char *s, size_t *n)
{
	size_t len = s ? strlen(s) : 0;
	if (len == 0 || len % 2 || len / 2 > VGM_NVML_BLOB_MAX)
		return NULL;
	unsigned char *b = malloc(len / 2);
	for (size_t i = 0; b && i < len / 2; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(b);
			return NULL;
		}
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	*n = len / 2;
	return b;
}

static nvml_ret md_call(vgm_nvml *nv, nvml_dev dev, unsigned vgpu, void *buf, unsigned *size)
{
	return dev ? nv->pgpu_md(dev, buf, size) : nv->vgpu_md(vgpu, buf, size);
}

/* A metadata blob as hex, or NULL.  A real buffer from the first call (a
 * NULL one is not documented as allowed); when NVML says it is too small it
 * also says the size it needs, and the second call gets that. */
static char *metadata_hex(vgm_nvml *nv, nvml_dev dev, unsigned vgpu)
{
	unsigned size = 1024;
	_cleanup_free_ unsigned char *buf = calloc(1, size);
	if (!buf)
		return NULL;
	nvml_ret r = md_call(nv, dev, vgpu, buf, &size);
	if (r == NVML_ERROR_INSUFFICIENT_SIZE && size > 1024 && size <= VGM_NVML_BLOB_MAX) {
		free(buf);
		if (!(buf = calloc(1, size)))
			return NULL;
		r = md_call(nv, dev, vgpu, buf, &size);
	}
	return r == NVML_SUCCESS && size && size <= VGM_NVML_BLOB_MAX ? hex_encode(buf, size) : NULL;
}

/* ---- GPUs ---- */

static int gpu_types(vgm_nvml *nv, nvml_dev dev, vgm_nvml_gpu *g)
{
	unsigned ids[NVML_MAX_TYPES], n = NVML_MAX_TYPES;
	if (nv->supported(dev, &n, ids) != NVML_SUCCESS || n == 0)
		return 0;
	n = MIN(n, NVML_MAX_TYPES);
	if (!(g->types = calloc(n, sizeof(*g->types))))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		char name[NVML_NAME_MAX + 1] = "";
		unsigned size = NVML_NAME_MAX;
		unsigned long long fb = 0;
		if (nv->type_name(ids[i], name, &size) != NVML_SUCCESS || !name[0])
			continue;
		nv->type_fb(ids[i], &fb);
		vgm_nvml_type *t = &g->types[g->n_types++];
		t->framebuffer_bytes = fb;
		if (!(t->name = strdup(name)))
			return -ENOMEM;
	}
	return 0;
}

static int gpu_read(vgm_nvml *nv, nvml_dev dev, vgm_nvml_gpu *g)
{
	int cur = 0, pending = 0;
	unsigned cap = 0;
	g->ecc = nv->ecc_mode(dev, &cur, &pending) == NVML_SUCCESS ? cur == 1 : -1;
	g->streaming = -1;
	if (nv->vgpu_caps &&
	    nv->vgpu_caps(dev, NVML_DEVICE_VGPU_CAP_DEVICE_STREAMING, &cap) == NVML_SUCCESS)
		g->streaming = cap != 0;
	g->pgpu_metadata = metadata_hex(nv, dev, 0);
	return gpu_types(nv, dev, g);
}

void vgm_nvml_gpus_free(vgm_nvml_gpu *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++) {
		for (size_t j = 0; j < g[i].n_types; j++)
			free(g[i].types[j].name);
		free(g[i].types);
		free(g[i].pgpu_metadata);
	}
	free(g);
}

int vgm_nvml_gpus(vgm_nvml *nv, vgm_nvml_gpu **out, size_t *n, vgm_error *err)
{
	unsigned count = 0;
	nvml_ret r = nv->count(&count);
	if (r != NVML_SUCCESS)
		return vgm_error_set(err, EIO, "NVML did not count the GPUs: %s", nvml_text(nv, r));
	vgm_nvml_gpu *g = calloc(count + 1, sizeof(*g));
	if (!g)
		return vgm_error_set(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (unsigned i = 0; i < count; i++) {
		nvml_dev dev = NULL;
		if (nv->by_index(i, &dev) != NVML_SUCCESS)
			continue;
		if (gpu_read(nv, dev, &g[k++]) < 0) {
			vgm_nvml_gpus_free(g, k);
			return vgm_error_set(err, ENOMEM, "out of memory");
		}
	}
	*out = g;
	*n = k;
	return 0;
}

/* ---- vGPUs ---- */

/* Does vGPU instance v have mdev UUID or VF address id? */
static bool instance_is(vgm_nvml *nv, unsigned v, const char *id)
{
	char buf[96] = "";
	unsigned len = sizeof(buf) - 1;
	if (vgm_uuid_valid(id))
		return nv->mdev_uuid && nv->mdev_uuid(v, buf, len) == NVML_SUCCESS &&
		       strcasecmp(buf, id) == 0;
	if (!nv->pci_id || nv->pci_id(v, buf, &len) != NVML_SUCCESS)
		return false;
	char a[VGM_UUID_LEN + 1], b[VGM_UUID_LEN + 1];
	vgm_id_normalize(buf, a, sizeof(a));
	vgm_id_normalize(id, b, sizeof(b));
	return STREQ(a, b);
}

int vgm_nvml_vgpu_metadata(vgm_nvml *nv, const char *id, char **hex, vgm_error *err)
{
	unsigned count = 0;
	nv->count(&count);
	for (unsigned i = 0; i < count; i++) {
		nvml_dev dev = NULL;
		unsigned vs[NVML_MAX_VGPUS], n = NVML_MAX_VGPUS;
		if (nv->by_index(i, &dev) != NVML_SUCCESS ||
		    nv->active(dev, &n, vs) != NVML_SUCCESS)
			continue;
		for (unsigned k = 0; k < MIN(n, NVML_MAX_VGPUS); k++) {
			if (!instance_is(nv, vs[k], id))
				continue;
			*hex = metadata_hex(nv, NULL, vs[k]);
			return *hex ? 0 : vgm_error_set(err, EIO, "NVML gave no metadata for vGPU %s", id);
		}
	}
	return vgm_error_set(err, ENOENT, "NVML knows no running vGPU %s", id);
}

int vgm_nvml_compat(vgm_nvml *nv, const char *vgpu_hex, const char *pgpu_hex,
		    vgm_nvml_verdict *out, vgm_error *err)
{
	size_t nv_len = 0, np_len = 0;
	_cleanup_free_ unsigned char *v = hex_decode(vgpu_hex, &nv_len);
	_cleanup_free_ unsigned char *p = hex_decode(pgpu_hex, &np_len);
	if (!v || !p)
		return vgm_error_set(err, EINVAL, "NVML vGPU metadata is not hex of at most %d bytes",
				     VGM_NVML_BLOB_MAX);
	nvml_compat c = { 0, 0 };
	nvml_ret r = nv->compat(v, p, &c);
	if (r != NVML_SUCCESS)
		return vgm_error_set(err, EIO, "nvmlGetVgpuCompatibility failed: %s", nvml_text(nv, r));
	*out = (vgm_nvml_verdict){ (c.vm_compat & NVML_VGPU_VM_COMPATIBILITY_LIVE) != 0,
				   (unsigned)c.vm_compat, (unsigned)c.limit };
	return 0;
}

const char *vgm_nvml_limit_text(unsigned limit)
{
	if (limit & 0x1)
		return "the host driver";
	if (limit & 0x2)
		return "the guest driver";
	if (limit & 0x4)
		return "the GPU hardware";
	return limit ? "a factor NVML does not name" : "nothing";
}

/* ---- the verdict over a domain ---- */

static void unknown_because(vgm_nvml_summary *out, const char *fmt, ...) _printf_(2, 3);
static void unknown_because(vgm_nvml_summary *out, const char *fmt, ...)
{
	va_list ap;
	out->verdict = -1;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

/* The first target GPU that takes the vGPU live, else the last refusal. */
static int one_vgpu(vgm_nvml *nv, const char *hex, const vgm_facts *t, vgm_nvml_verdict *v,
		    vgm_error *e)
{
	int r = -ENOENT;
	for (size_t g = 0; g < t->n_pgpu_metadata; g++) {
		r = vgm_nvml_compat(nv, hex, t->pgpu_metadata[g], v, e);
		if (r < 0 || v->live)
			return r;
	}
	return r;
}

void vgm_compat_nvml_verdict(vgm_nvml *nv, const char *const *ids, const char *const *vgpu_hex,
			     size_t n, const vgm_facts *target, vgm_nvml_summary *out)
{
	memset(out, 0, sizeof(*out));
	out->verdict = 1;
	if (!nv)
		return unknown_because(out, "%s not loaded on the host that compares", VGM_NVML_LIB);
	if (!target->n_pgpu_metadata)
		return unknown_because(out, "%s reported no GPU metadata through NVML",
				       target->host_name ? target->host_name : "the target");
	for (size_t i = 0; i < n && out->verdict > 0; i++) {
		vgm_nvml_verdict v = { 0 };
		vgm_error e = { 0 };
		snprintf(out->id, sizeof(out->id), "%s", ids[i]);
		if (!vgpu_hex[i])
			return unknown_because(out, "NVML gave no metadata for vGPU %s", ids[i]);
		int r = one_vgpu(nv, vgpu_hex[i], target, &v, &e);
		if (r < 0)
			return unknown_because(out, "%s", vgm_error_message(&e));
		out->verdict = v.live;
		out->limit = v.limit;
	}
	if (out->verdict > 0)
		out->id[0] = '\0';
}
