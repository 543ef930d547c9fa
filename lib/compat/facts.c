/* facts.c: gather one host's facts (uname, libvirt, sysfs).
 *
 * Gathering never fails because something is absent: a host without libvirt,
 * without an NVIDIA driver or without GPUs still has facts, with the missing
 * ones left 0/NULL and a note saying why.  Only allocation failure is an
 * error.  libvirt is asked through its API (never virsh), on a read-only
 * connection that is closed before returning. */
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

/* "ECC Mode: \t Enabled" in one GPU's information file. */
static vgm_ecc_mode ecc_from_information(const char *path)
{
	_cleanup_free_ char *text = NULL;
	if (vgm_read_file(path, 64 * 1024, &text, NULL) < 0)
		return VGM_ECC_UNKNOWN;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l += strspn(l, " \t");
		char *colon = strchr(l, ':');
		if (strncmp(l, "ECC", 3) != 0 || !colon)
			continue;
		char *v = colon + 1 + strspn(colon + 1, " \t");
		if (strncasecmp(v, "Enabled", 7) == 0)
			return VGM_ECC_ENABLED;
		if (strncasecmp(v, "Disabled", 8) == 0)
			return VGM_ECC_DISABLED;
	}
	return VGM_ECC_UNKNOWN;
}

vgm_ecc_mode vgm_ecc_mode_read(vgm_host *h)
{
	_cleanup_free_ char *dir = vgm_path(vgm_host_root(h), "/proc/driver/nvidia/gpus");
	vgm_ecc_mode all = VGM_ECC_UNKNOWN;
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d)
		return VGM_ECC_UNKNOWN;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!vgm_name_valid(e->d_name) || STREQ(e->d_name, ".") || STREQ(e->d_name, ".."))
			continue;
		_cleanup_free_ char *info = vgm_path(NULL, "%s/%s/information", dir, e->d_name);
		vgm_ecc_mode m = info ? ecc_from_information(info) : VGM_ECC_UNKNOWN;
		if (m == VGM_ECC_UNKNOWN)
			continue;
		all = all == VGM_ECC_UNKNOWN || all == m ? m : VGM_ECC_MIXED;
	}
	closedir(d);
	return all;
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
	f->ecc = vgm_ecc_mode_read(h);
	return 0;
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

int vgm_facts_gather(vgm_host *h, const char *host_name, const char *libvirt_uri,
		     vgm_facts **out, vgm_error *err)
{
	_cleanup_(vgm_facts_freep) vgm_facts *f = calloc(1, sizeof(*f));
	if (!f)
		return vgm_error_set(err, ENOMEM, "out of memory");
	f->protocol_version = VGM_PROTOCOL_VERSION;
	f->protocol_oldest = VGM_PROTOCOL_OLDEST;
	if (facts_from_uname(f, host_name) < 0 || facts_from_sysfs(h, f) < 0 ||
	    facts_from_libvirt(f, libvirt_uri) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory gathering host facts");
	*out = TAKE_PTR(f);
	return 0;
}
