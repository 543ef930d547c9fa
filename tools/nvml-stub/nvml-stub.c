/* nvml-stub.c: a stand-in libnvidia-ml.so.1 for tests, built from the
 * emulator's board catalogs (tools/vgpu-sysfs-emu/catalog.c).
 *
 * vgpumig dlopens "libnvidia-ml.so.1"; tests put this library first on
 * LD_LIBRARY_PATH so the product crosses the same process boundary as on a
 * GPU host.  It answers only the entry points vgpumig uses.  What it
 * pretends is read at nvmlInit_v2 from the file named by $VGPUMIG_NVML_STUB,
 * one "key value" per line ('#' starts a comment):
 *   catalog A100          board (emulator catalog name), default A100
 *   gpus 2                physical GPUs, default 1
 *   driver 550.90.05      host driver version
 *   ecc enabled|disabled  ECC of every GPU; "ecc1 disabled" for GPU 1 only
 *   streaming yes|no      NVML_DEVICE_VGPU_CAP_DEVICE_STREAMING
 *   compat live|none [host_driver|guest_driver|gpu|other]
 *                         force nvmlGetVgpuCompatibility's verdict
 *   sysfs PATH            the emulator's mount: its mdevs and vendor-VF vGPUs
 *                         are the running vGPU instances (all on GPU 0)
 *   init fail             nvmlInit_v2 fails (driver not loaded)
 *   pad N                 N more opaque bytes in every metadata blob (a blob
 *                         bigger than a caller's first buffer)
 * The file is read again on every nvmlDeviceGetCount_v2.  A forced verdict
 * travels in the target GPU's metadata blob, so either host may compare.
 * Without a forced verdict the stub compares what NVIDIA's does: host driver
 * version, board and ECC of the vGPU's source against the physical GPU.
 *
 * The prototypes are declared here, not shared with lib/compat/nvml.c: a
 * stand-in must not share the declarations it is testing.  Metadata blobs
 * keep NVML's documented struct heads; their opaque tail is our own text. */
#include <dirent.h>
#include <stdarg.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../vgpu-sysfs-emu/catalog.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_GPUS 8
#define MAX_VGPUS 64
#define DRV_LEN 80

typedef int nvmlReturn_t;
typedef struct stub_gpu *nvmlDevice_t;
enum { OK = 0, E_INVALID = 2, E_NOT_SUPPORTED = 3, E_INSUFFICIENT = 7, E_NOT_FOUND = 6,
       E_DRIVER = 9, E_UNINIT = 1 };

typedef struct { unsigned minv, maxv; } vgpu_version;
typedef struct {
	unsigned version, revision;
	int guest_info_state;
	char guest_driver[DRV_LEN], host_driver[DRV_LEN];
	unsigned reserved[6], caps, guest_vgpu_version, opaque_size;
	char opaque[4];
} vgpu_md;
typedef struct {
	unsigned version, revision;
	char host_driver[DRV_LEN];
	unsigned caps, reserved[5];
	vgpu_version range;
	unsigned opaque_size;
	char opaque[4];
} pgpu_md;
typedef struct { int vm_compat, limit; } pgpu_compat;

struct stub_gpu { unsigned index; int ecc; };
typedef struct { char id[64]; unsigned type; } stub_vgpu;

static struct {
	const emu_catalog *cat;
	unsigned n_gpus;
	char driver[DRV_LEN];
	struct stub_gpu gpus[MAX_GPUS];
	int streaming;
	unsigned pad; /* extra opaque bytes in every blob (tests the size dance) */
	int forced_compat, forced_limit; /* -1: compute */
	stub_vgpu vgpus[MAX_VGPUS];
	unsigned n_vgpus;
	int up;
} st;

EXPORT nvmlReturn_t nvmlInit_v2(void);
EXPORT nvmlReturn_t nvmlShutdown(void);
EXPORT const char *nvmlErrorString(nvmlReturn_t r);
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned len);
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *n);
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d);
EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, int *cur, int *pending);
EXPORT nvmlReturn_t nvmlDeviceGetVgpuCapabilities(nvmlDevice_t d, int cap, unsigned *res);
EXPORT nvmlReturn_t nvmlDeviceGetSupportedVgpus(nvmlDevice_t d, unsigned *n, unsigned *ids);
EXPORT nvmlReturn_t nvmlVgpuTypeGetName(unsigned id, char *name, unsigned *size);
EXPORT nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(unsigned id, unsigned long long *fb);
EXPORT nvmlReturn_t nvmlDeviceGetActiveVgpus(nvmlDevice_t d, unsigned *n, unsigned *v);
EXPORT nvmlReturn_t nvmlVgpuInstanceGetMdevUUID(unsigned v, char *uuid, unsigned size);
EXPORT nvmlReturn_t nvmlVgpuInstanceGetGpuPciId(unsigned v, char *id, unsigned *len);
EXPORT nvmlReturn_t nvmlVgpuInstanceGetMetadata(unsigned v, vgpu_md *md, unsigned *size);
EXPORT nvmlReturn_t nvmlDeviceGetVgpuMetadata(nvmlDevice_t d, pgpu_md *md, unsigned *size);
EXPORT nvmlReturn_t nvmlGetVgpuCompatibility(vgpu_md *v, pgpu_md *p, pgpu_compat *c);

/* ---- state ---- */

/* snprintf that may cut (paths and ids here are short); vsnprintf keeps
 * -Wformat-truncation quiet about that on purpose. */
__attribute__((format(printf, 3, 4))) static void put(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

static int limit_code(const char *s)
{
	if (!s || !*s)
		return 0;
	if (strcmp(s, "host_driver") == 0)
		return 0x1;
	if (strcmp(s, "guest_driver") == 0)
		return 0x2;
	return strcmp(s, "gpu") == 0 ? 0x4 : (int)0x80000000u;
}

static void set_key(const char *k, const char *v, const char *v2, int *init_fails)
{
	if (strcmp(k, "catalog") == 0 && emu_catalog_find(v))
		st.cat = emu_catalog_find(v);
	else if (strcmp(k, "gpus") == 0)
		st.n_gpus = (unsigned)atoi(v) > MAX_GPUS ? MAX_GPUS : (unsigned)atoi(v);
	else if (strcmp(k, "driver") == 0)
		put(st.driver, sizeof(st.driver), "%s", v);
	else if (strcmp(k, "ecc") == 0)
		for (unsigned i = 0; i < MAX_GPUS; i++)
			st.gpus[i].ecc = strcmp(v, "enabled") == 0;
	else if (strncmp(k, "ecc", 3) == 0 && (unsigned)atoi(k + 3) < MAX_GPUS)
		st.gpus[atoi(k + 3)].ecc = strcmp(v, "enabled") == 0;
	else if (strcmp(k, "pad") == 0)
		st.pad = (unsigned)atoi(v) > 3000 ? 3000 : (unsigned)atoi(v);
	else if (strcmp(k, "streaming") == 0)
		st.streaming = strcmp(v, "yes") == 0;
	else if (strcmp(k, "compat") == 0) {
		st.forced_compat = strcmp(v, "live") == 0 ? 0x8 | 0x1 : 0;
		st.forced_limit = limit_code(v2);
	} else if (strcmp(k, "init") == 0)
		*init_fails = strcmp(v, "fail") == 0;
}

static void add_vgpu(const char *id, unsigned type)
{
	if (st.n_vgpus < MAX_VGPUS && type) {
		put(st.vgpus[st.n_vgpus].id, sizeof(st.vgpus[0].id), "%s", id);
		st.vgpus[st.n_vgpus++].type = type;
	}
}

/* mdevs (mdev_type -> .../nvidia-471) and vendor VFs (nvidia/current_vgpu_type). */
static void scan_sysfs(const char *root)
{
	char path[PATH_MAX], link[PATH_MAX];
	put(path, sizeof(path), "%s/sys/bus/mdev/devices", root);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		put(path, sizeof(path), "%s/sys/bus/mdev/devices/%s/mdev_type", root, e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		const char *dash = n > 0 ? (link[n] = '\0', strrchr(link, '-')) : NULL;
		if (dash && e->d_name[0] != '.')
			add_vgpu(e->d_name, (unsigned)atoi(dash + 1));
	}
	if (d)
		closedir(d);
	put(path, sizeof(path), "%s/sys/bus/pci/devices", root);
	d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		put(path, sizeof(path), "%s/sys/bus/pci/devices/%s/nvidia/current_vgpu_type",
			 root, e->d_name);
		FILE *f = fopen(path, "re");
		unsigned t = 0;
		if (f && fscanf(f, "%u", &t) == 1 && e->d_name[0] != '.')
			add_vgpu(e->d_name, t);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static int load_state(void)
{
	int init_fails = 0;
	memset(&st, 0, sizeof(st));
	st.cat = emu_catalog_find("A100");
	st.n_gpus = 1;
	st.forced_compat = st.forced_limit = -1;
	put(st.driver, sizeof(st.driver), "550.90.05");
	for (unsigned i = 0; i < MAX_GPUS; i++)
		st.gpus[i] = (struct stub_gpu){ i, 1 };
	const char *file = getenv("VGPUMIG_NVML_STUB");
	FILE *f = file ? fopen(file, "re") : NULL;
	char line[512], k[64], v[PATH_MAX], v2[64];
	while (f && fgets(line, sizeof(line), f)) {
		v2[0] = '\0';
		if (line[0] == '#' || sscanf(line, "%63s %4095s %63s", k, v, v2) < 2)
			continue;
		if (strcmp(k, "sysfs") == 0)
			scan_sysfs(v);
		else
			set_key(k, v, v2, &init_fails);
	}
	if (f)
		fclose(f);
	return init_fails ? E_DRIVER : OK;
}

/* ---- the API ---- */

nvmlReturn_t nvmlInit_v2(void)
{
	nvmlReturn_t r = load_state();
	st.up = r == OK;
	return r;
}

nvmlReturn_t nvmlShutdown(void)
{
	st.up = 0;
	return OK;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
	switch (r) {
	case OK: return "Success";
	case E_DRIVER: return "Driver Not Loaded";
	case E_INSUFFICIENT: return "Insufficient Size";
	case E_NOT_FOUND: return "Not Found";
	case E_NOT_SUPPORTED: return "Not Supported";
	default: return "Unknown Error";
	}
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned len)
{
	if (!st.up)
		return E_UNINIT;
	if (!v || len <= strlen(st.driver))
		return E_INSUFFICIENT;
	snprintf(v, len, "%s", st.driver);
	return OK;
}

/* The state is read again here, so a test may change ECC or the verdict
 * while a process holds NVML open, and newly created vGPUs appear (as with
 * the real library, which reports the driver's live state). */
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *n)
{
	if (st.up)
		st.up = load_state() == OK;
	*n = st.up ? st.n_gpus : 0;
	return st.up ? OK : E_UNINIT;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d)
{
	if (!st.up || i >= st.n_gpus)
		return E_INVALID;
	*d = &st.gpus[i];
	return OK;
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, int *cur, int *pending)
{
	*cur = *pending = d->ecc;
	return OK;
}

nvmlReturn_t nvmlDeviceGetVgpuCapabilities(nvmlDevice_t d, int cap, unsigned *res)
{
	if (cap != 5)
		return E_NOT_SUPPORTED;
	*res = (unsigned)st.streaming;
	return OK;
}

nvmlReturn_t nvmlDeviceGetSupportedVgpus(nvmlDevice_t d, unsigned *n, unsigned *ids)
{
	unsigned want = (unsigned)st.cat->n_profiles;
	if (*n < want) {
		*n = want;
		return E_INSUFFICIENT;
	}
	for (unsigned i = 0; i < want; i++)
		ids[i] = st.cat->profiles[i].type_num;
	*n = want;
	return OK;
}

static const emu_profile *profile(unsigned id)
{
	for (size_t i = 0; st.cat && i < st.cat->n_profiles; i++)
		if (st.cat->profiles[i].type_num == id)
			return &st.cat->profiles[i];
	return NULL;
}

nvmlReturn_t nvmlVgpuTypeGetName(unsigned id, char *name, unsigned *size)
{
	const emu_profile *p = profile(id);
	if (!p)
		return E_INVALID;
	if (*size <= strlen(p->name)) {
		*size = (unsigned)strlen(p->name) + 1;
		return E_INSUFFICIENT;
	}
	snprintf(name, *size, "%s", p->name);
	return OK;
}

nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(unsigned id, unsigned long long *fb)
{
	const emu_profile *p = profile(id);
	if (!p)
		return E_INVALID;
	*fb = (unsigned long long)p->fb_mib << 20;
	return OK;
}

nvmlReturn_t nvmlDeviceGetActiveVgpus(nvmlDevice_t d, unsigned *n, unsigned *v)
{
	unsigned have = d->index == 0 ? st.n_vgpus : 0;
	if (*n < have) {
		*n = have;
		return E_INSUFFICIENT;
	}
	for (unsigned i = 0; i < have; i++)
		v[i] = i + 1; /* instance ids start at 1 */
	*n = have;
	return OK;
}

static const stub_vgpu *instance(unsigned v)
{
	return v >= 1 && v <= st.n_vgpus ? &st.vgpus[v - 1] : NULL;
}

nvmlReturn_t nvmlVgpuInstanceGetMdevUUID(unsigned v, char *uuid, unsigned size)
{
	const stub_vgpu *i = instance(v);
	if (!i || strchr(i->id, ':'))
		return E_NOT_FOUND; /* a vendor VF has no mdev */
	snprintf(uuid, size, "%s", i->id);
	return OK;
}

nvmlReturn_t nvmlVgpuInstanceGetGpuPciId(unsigned v, char *id, unsigned *len)
{
	const stub_vgpu *i = instance(v);
	if (!i || !strchr(i->id, ':'))
		return E_NOT_FOUND;
	snprintf(id, *len, "%s", i->id);
	return OK;
}

/* Copy a blob of head + opaque text into buf when it fits. */
static nvmlReturn_t give(void *buf, unsigned *size, const void *head, size_t head_len,
			 const char *opaque)
{
	size_t len = strlen(opaque) + 1, need = head_len + len + st.pad;
	if (!buf || *size < need) {
		*size = (unsigned)need;
		return E_INSUFFICIENT;
	}
	memcpy(buf, head, head_len);
	memcpy((char *)buf + head_len, opaque, len);
	memset((char *)buf + head_len + len, 'p', st.pad);
	*size = (unsigned)need;
	return OK;
}

nvmlReturn_t nvmlVgpuInstanceGetMetadata(unsigned v, vgpu_md *md, unsigned *size)
{
	const stub_vgpu *i = instance(v);
	if (!i)
		return E_NOT_FOUND;
	vgpu_md h = { .version = 1, .revision = 1, .guest_info_state = 0 };
	char opaque[128];
	snprintf(h.host_driver, sizeof(h.host_driver), "%s", st.driver);
	snprintf(opaque, sizeof(opaque), "board=%s;ecc=%d;type=%u", st.cat->name, st.gpus[0].ecc,
		 i->type);
	h.opaque_size = (unsigned)strlen(opaque) + 1;
	return give(md, size, &h, offsetof(vgpu_md, opaque), opaque);
}

nvmlReturn_t nvmlDeviceGetVgpuMetadata(nvmlDevice_t d, pgpu_md *md, unsigned *size)
{
	pgpu_md h = { .version = 1, .revision = 1, .range = { 0x10000, 0x120000 } };
	char opaque[128];
	snprintf(h.host_driver, sizeof(h.host_driver), "%s", st.driver);
	snprintf(opaque, sizeof(opaque), "board=%s;ecc=%d;force=%d:%d", st.cat->name, d->ecc,
		 st.forced_compat, st.forced_limit);
	h.opaque_size = (unsigned)strlen(opaque) + 1;
	return give(md, size, &h, offsetof(pgpu_md, opaque), opaque);
}

/* "board=A100;ecc=1..." up to the first ';' after key, into out. */
static void opaque_get(const char *opaque, const char *key, char *out, size_t n)
{
	const char *p = strstr(opaque, key);
	size_t len = p ? strcspn(p + strlen(key), ";") : 0;
	snprintf(out, n, "%.*s", (int)len, p ? p + strlen(key) : "");
}

nvmlReturn_t nvmlGetVgpuCompatibility(vgpu_md *v, pgpu_md *p, pgpu_compat *c)
{
	char vb[32], pb[32], ve[4], pe[4], force[32];
	int fc = -1, fl = 0;
	if (!v || !p || !c)
		return E_INVALID;
	/* a verdict forced on the target travels in its GPU's blob, so either
	 * host may compare, as with the real library */
	opaque_get(p->opaque, "force=", force, sizeof(force));
	if (sscanf(force, "%d:%d", &fc, &fl) == 2 && fc >= 0) {
		*c = (pgpu_compat){ fc, fl };
		return OK;
	}
	opaque_get(v->opaque, "board=", vb, sizeof(vb));
	opaque_get(p->opaque, "board=", pb, sizeof(pb));
	opaque_get(v->opaque, "ecc=", ve, sizeof(ve));
	opaque_get(p->opaque, "ecc=", pe, sizeof(pe));
	if (strncmp(v->host_driver, p->host_driver, DRV_LEN) != 0)
		*c = (pgpu_compat){ 0, 0x1 };
	else if (strcmp(vb, pb) != 0)
		*c = (pgpu_compat){ 0, 0x4 };
	else if (strcmp(ve, pe) != 0)
		*c = (pgpu_compat){ 0, (int)0x80000000u };
	else
		*c = (pgpu_compat){ 0x8 | 0x1, 0 };
	return OK;
}
