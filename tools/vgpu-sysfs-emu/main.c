/* main.c: vgpu-sysfs-emu, a FUSE emulation of NVIDIA vGPU sysfs.
 *
 *   vgpu-sysfs-emu --catalog NAME [--gpus N] [--driver-version V]
 *                  [--ecc on|off] [-f] [-s] [-d] [-o OPT] MOUNTPOINT
 *
 * Our options are taken out of argv; the rest (-f, -s, -d, -o, the
 * mountpoint) goes to libfuse's command-line parser.  We mount first and
 * daemonize after (unless -f), so the parent returns only once the mount is
 * live; we serve until `fusermount3 -u MOUNTPOINT` (or SIGTERM/SIGINT) and
 * exit 0.  The steps of fuse_main() are spelled out to pick the loop's
 * configuration ourselves.  See docs/vgpu-sysfs-emu.md. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "vgm-config.h"
#include "fuse-ops.h"
#include "xalloc.h"

#define DEFAULT_DRIVER "550.90.05"

typedef struct emu_opts {
	const char *catalog;
	const char *driver_version;
	const char *gpus;
	const char *ecc;
} emu_opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vgpu-sysfs-emu --catalog NAME [--gpus N] [--driver-version V]\n"
		"                      [--ecc on|off] [-f] [-s] [-d] [-o OPT] MOUNTPOINT\n"
		"catalogs: %s\n"
		"Unmount with: fusermount3 -u MOUNTPOINT\n",
		emu_catalog_names());
}

/* Match "--name VALUE" or "--name=VALUE" at argv[*i]: 0 if it is another
 * argument, 1 when taken (*out set, *i past the value), -1 if the value is
 * missing. */
static int take_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

/* Split argv into our options and libfuse's; returns 0, or 2 on usage error. */
static int parse_args(int argc, char **argv, emu_opts *o, int *fargc, char **fargv)
{
	static const char *const names[] = { "--catalog", "--gpus", "--driver-version", "--ecc" };
	const char **slots[] = { &o->catalog, &o->gpus, &o->driver_version, &o->ecc };
	*fargc = 0;
	fargv[(*fargc)++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("vgpu-sysfs-emu %s (libfuse %s)\n", VGM_VERSION, fuse_pkgversion());
			exit(0);
		}
		int taken = 0;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !taken; k++)
			taken = take_opt(argc, argv, &i, names[k], slots[k]);
		if (taken < 0) {
			fprintf(stderr, "vgpu-sysfs-emu: %s needs a value\n", argv[i]);
			return 2;
		}
		if (!taken)
			fargv[(*fargc)++] = argv[i];
	}
	fargv[*fargc] = NULL;
	return 0;
}

static bool version_ok(const char *v)
{
	if (!*v || strlen(v) > 32)
		return false;
	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return false;
	return true;
}

static int check_opts(const emu_opts *o, const emu_catalog **cat, unsigned *gpus, bool *ecc)
{
	if (!o->catalog) {
		fprintf(stderr, "vgpu-sysfs-emu: --catalog is required (%s)\n",
			emu_catalog_names());
		return 2;
	}
	*cat = emu_catalog_find(o->catalog);
	if (!*cat) {
		fprintf(stderr, "vgpu-sysfs-emu: unknown catalog '%s' (known: %s)\n", o->catalog,
			emu_catalog_names());
		return 2;
	}
	*gpus = (*cat)->default_gpus;
	if (o->gpus) {
		char *end;
		unsigned long n = strtoul(o->gpus, &end, 10);
		if (*end || !isdigit((unsigned char)o->gpus[0]) || n < 1 || n > (*cat)->max_gpus) {
			fprintf(stderr, "vgpu-sysfs-emu: --gpus must be 1..%u for %s\n",
				(*cat)->max_gpus, (*cat)->name);
			return 2;
		}
		*gpus = (unsigned)n;
	}
	if (!version_ok(o->driver_version)) {
		fprintf(stderr, "vgpu-sysfs-emu: --driver-version '%s' is not like 550.90.05\n",
			o->driver_version);
		return 2;
	}
	*ecc = (*cat)->ecc_default;
	if (o->ecc) {
		if (strcmp(o->ecc, "on") != 0 && strcmp(o->ecc, "off") != 0) {
			fprintf(stderr, "vgpu-sysfs-emu: --ecc takes on or off\n");
			return 2;
		}
		*ecc = strcmp(o->ecc, "on") == 0;
	}
	return 0;
}

/* Mount, daemonize unless foreground, serve, unmount.  Returns an exit code. */
static int serve(struct fuse_args *args, emu *e)
{
	struct fuse_cmdline_opts opts;
	int r = 1;
	if (fuse_parse_cmdline(args, &opts) != 0)
		return 2;
	e->single_thread = opts.singlethread;
	if (!opts.mountpoint) {
		fprintf(stderr, "vgpu-sysfs-emu: no MOUNTPOINT given\n");
		usage(stderr);
		return 2;
	}
	struct fuse *f = fuse_new(args, &emu_fuse_ops, sizeof(emu_fuse_ops), e);
	if (!f)
		goto out;
	if (fuse_mount(f, opts.mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(opts.foreground) != 0 ||
	    fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		goto out_unmount;
	/* The loops return 0 when unmounted, the signal number after SIGTERM,
	 * SIGINT or SIGHUP (a normal way to stop us), -errno on failure. */
	if (opts.singlethread) {
		r = fuse_loop(f) < 0 ? 1 : 0;
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, (unsigned)opts.clone_fd);
		fuse_loop_cfg_set_max_threads(lc, opts.max_threads);
		r = fuse_loop_mt(f, lc) < 0 ? 1 : 0;
		fuse_loop_cfg_destroy(lc);
	}
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out:
	free(opts.mountpoint);
	return r;
}

int main(int argc, char **argv)
{
	emu_opts o = { .driver_version = DEFAULT_DRIVER };
	char **fargv = xcalloc((size_t)argc + 4, sizeof(char *));
	int fargc;
	const emu_catalog *cat;
	unsigned gpus;
	bool ecc;
	int r = parse_args(argc, argv, &o, &fargc, fargv);
	if (r == 0)
		r = check_opts(&o, &cat, &gpus, &ecc);
	if (r != 0) {
		if (r == 2)
			usage(stderr);
		free(fargv);
		return r;
	}
	fargv[fargc++] = (char *)"-o";
	fargv[fargc++] = (char *)"fsname=vgpu-sysfs-emu,subtype=vgpu-sysfs-emu";
	fargv[fargc] = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);
	emu *e = emu_new(cat, gpus, o.driver_version, ecc);
	r = serve(&args, e);
	fuse_opt_free_args(&args);
	emu_free(e);
	free(fargv);
	return r;
}
