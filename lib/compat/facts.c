/* facts.c: gather one host's facts (uname, libvirt, sysfs, NVML).
 *
 * Gathering never fails because something is absent: a host without libvirt,
 * without an NVIDIA driver or without GPUs still has facts, with the missing
 * ones left 0/NULL and a note saying why.  Only allocation failure is an
 * error.  libvirt is asked through its API (never virsh), on a read-only
 * connection that is closed before returning.  ECC comes from NVML only:
 * NVIDIA's /proc/driver/nvidia/gpus/<addr>/information has no ECC line, so
 * without NVML the ECC mode is unknown, never guessed. */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "compat/compat.h"
#include "util/fs.h"
#include "util/validate.h"

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void vgm_facts_free(vgm_facts *f)
{
	if (!f)
		return;
	free(f->host_name);
	free(f->arch);
	free(f->kernel_version);
	free(f->driver_version);
	strv_free(f->boards, f->n_boards);
	strv_free(f->notes, f->n_notes);
	strv_free(f->pgpu_metadata, f->n_pgpu_metadata);
	for (size_t i = 0; i < f->n_vgpu_types; i++)
		free(f->vgpu_types[i].name);
	free(f->vgpu_types);
	free(f);
}

const char *vgm_ecc_to_string(vgm_ecc_mode m)
{
	switch (m) {
	case VGM_ECC_DISABLED: return "disabled";
	case VGM_ECC_ENABLED: return "enabled";
	case VGM_ECC_MIXED: return "mixed";
	default: return NULL;
	}
}

vgm_ecc_mode vgm_ecc_from_string(const char *s)
{
	if (s && STREQ(s, "enabled"))
		return VGM_ECC_ENABLED;
	if (s && STREQ(s, "disabled"))
		return VGM_ECC_DISABLED;
	if (s && STREQ(s, "mixed"))
		return VGM_ECC_MIXED;
	return VGM_ECC_UNKNOWN;
}

int vgm_facts_add_note(vgm_facts *f, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	char **n = realloc(f->notes, (f->n_notes + 1) * sizeof(*n));
	if (!n) {
		free(s);
		return -ENOMEM;
	}
	f->notes = n;
	f->notes[f->n_notes++] = s;
	return 0;
}

static int board_add(vgm_facts *f, const char *b)
{
	size_t i = 0;
	while (i < f->n_boards && strcmp(f->boards[i], b) < 0)
		i++;
	if (i < f->n_boards && STREQ(f->boards[i], b))
		return 0;
	char **n = realloc(f->boards, (f->n_boards + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->boards = n;
	memmove(n + i + 1, n + i, (f->n_boards - i) * sizeof(*n));
	f->n_boards++;
	return (n[i] = strdup(b)) ? 0 : -ENOMEM;
}

static int facts_from_sysfs(vgm_host *h, vgm_facts *f)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	vgm_error e = { 0 };
	int r = vgm_driver_version(h, &f->driver_version, &e);
	if (r == -ENOMEM)
		return r;
	if (r < 0 && vgm_facts_add_note(f, "%s", vgm_error_message(&e)) < 0)
		return -ENOMEM;
	r = vgm_inventory_load(h, &inv, &e);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return vgm_facts_add_note(f, "%s", vgm_error_message(&e));
	for (size_t i = 0; i < inv->n_parents; i++) {
		f->backends |= 1u << inv->parents[i].backend;
		if (inv->parents[i].board && board_add(f, inv->parents[i].board) < 0)
			return -ENOMEM;
	}
	if (!inv->n_parents && vgm_facts_add_note(f, "no vGPU parents under %s", vgm_host_root(h)) < 0)
		return -ENOMEM;
	return 0;
}

static vgm_ecc_mode ecc_merge(vgm_ecc_mode all, int gpu)
{
	vgm_ecc_mode m = gpu < 0 ? VGM_ECC_UNKNOWN : gpu ? VGM_ECC_ENABLED : VGM_ECC_DISABLED;
	if (m == VGM_ECC_UNKNOWN)
		return all;
	return all == VGM_ECC_UNKNOWN || all == m ? m : VGM_ECC_MIXED;
}

/* Types of the GPU are added once per name (boards repeat them). */
static int types_add(vgm_facts *f, const vgm_nvml_gpu *g)
{
	for (size_t i = 0; i < g->n_types; i++) {
		bool seen = false;
		for (size_t j = 0; j < f->n_vgpu_types && !seen; j++)
			seen = STREQ(f->vgpu_types[j].name, g->types[i].name);
		if (seen)
			continue;
		vgm_nvml_type *n = realloc(f->vgpu_types, (f->n_vgpu_types + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		f->vgpu_types = n;
		n[f->n_vgpu_types].framebuffer_bytes = g->types[i].framebuffer_bytes;
		if (!(n[f->n_vgpu_types++].name = strdup(g->types[i].name)))
			return -ENOMEM;
	}
	return 0;
}

static int facts_from_gpus(vgm_facts *f, vgm_nvml_gpu *g, size_t n)
{
	int streaming = n ? 1 : -1;
	f->pgpu_metadata = calloc(n + 1, sizeof(char *));
	if (!f->pgpu_metadata)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		f->ecc = ecc_merge(f->ecc, g[i].ecc);
		streaming = g[i].streaming < 0 || streaming < 0 ? -1 : streaming && g[i].streaming;
		if (g[i].pgpu_metadata)
			f->pgpu_metadata[f->n_pgpu_metadata++] = TAKE_PTR(g[i].pgpu_metadata);
		if (types_add(f, &g[i]) < 0)
			return -ENOMEM;
	}
	f->device_streaming = streaming;
	return 0;
}

/* NVML's view, over sysfs's driver version where both exist: NVML is what
 * nvmlGetVgpuCompatibility compares. */
static int facts_from_nvml(vgm_facts *f, vgm_nvml *nv)
{
	vgm_nvml_gpu *g = NULL;
	size_t n = 0;
	vgm_error e = { 0 };
	char *v = NULL;
	f->device_streaming = -1;
	if (!nv)
		return vgm_facts_add_note(f, "NVML (%s) not loaded: ECC mode and vGPU migration "
					  "capabilities are unknown", VGM_NVML_LIB);
	if (vgm_nvml_driver_version(nv, &v, &e) == 0) {
		free(f->driver_version);
		f->driver_version = v;
	}
	int r = vgm_nvml_gpus(nv, &g, &n, &e);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return vgm_facts_add_note(f, "%s", vgm_error_message(&e));
	f->nvml = true;
	r = facts_from_gpus(f, g, n);
	vgm_nvml_gpus_free(g, n);
	return r;
}

/* libvirt prints errors on stderr by default; the library reports them
 * through notes instead.  This handler is process-wide in libvirt, which is
 * what the agent wants as well (it sets the same). */
static void quiet_libvirt(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

static int facts_from_libvirt(vgm_facts *f, const char *uri)
{
	if (!uri)
		return vgm_facts_add_note(f, "libvirt not asked: no libvirt URI given");
	virSetErrorFunc(NULL, quiet_libvirt);
	virConnectPtr c = virConnectOpenReadOnly(uri);
	if (!c) {
		virErrorPtr e = virGetLastError();
		return vgm_facts_add_note(f, "libvirt at %s not reachable: %s", uri,
					  e && e->message ? e->message : "unknown error");
	}
	unsigned long lib = 0, hv = 0;
	if (virConnectGetLibVersion(c, &lib) == 0)
		f->libvirt_version = lib;
	if (virConnectGetVersion(c, &hv) == 0)
		f->qemu_version = hv;
	virConnectClose(c);
	if (!f->qemu_version)
		return vgm_facts_add_note(f, "libvirt at %s did not report a hypervisor version", uri);
	return 0;
}

static int facts_from_uname(vgm_facts *f, const char *host_name)
{
	struct utsname u;
	char hn[256] = "";
	bool have_uname = uname(&u) == 0;
	if (!host_name) {
		if (gethostname(hn, sizeof(hn) - 1) < 0)
			snprintf(hn, sizeof(hn), "%s", have_uname ? u.nodename : "unknown");
		host_name = hn;
	}
	if (!(f->host_name = strdup(host_name)))
		return -ENOMEM;
	if (!have_uname)
		return vgm_facts_add_note(f, "uname failed: %s", strerror(errno));
	f->arch = strdup(u.machine);
	f->kernel_version = strdup(u.release);
	return f->arch && f->kernel_version ? 0 : -ENOMEM;
}

int vgm_facts_gather(vgm_host *h, vgm_nvml *nv, const char *host_name, const char *libvirt_uri,
		     vgm_facts **out, vgm_error *err)
{
	_cleanup_(vgm_facts_freep) vgm_facts *f = calloc(1, sizeof(*f));
	if (!f)
		return vgm_error_set(err, ENOMEM, "out of memory");
	f->protocol_version = VGM_PROTOCOL_VERSION;
	f->protocol_oldest = VGM_PROTOCOL_OLDEST;
	if (facts_from_uname(f, host_name) < 0 || facts_from_sysfs(h, f) < 0 ||
	    facts_from_nvml(f, nv) < 0 || facts_from_libvirt(f, libvirt_uri) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory gathering host facts");
	*out = TAKE_PTR(f);
	return 0;
}
