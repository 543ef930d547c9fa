/* cmd-device.c: the device verbs of vgpumig: devices, types, create, remove.
 *
 * These are offline verbs: they use lib/device directly on the sysfs root
 * (--sysfs-root, else $VGPUMIG_SYSFS_ROOT, else /).  Text output is an
 * aligned table for people; --json is the interface for scripts and has the
 * same shape as the agent's GET /v1/devices (docs/cli-device.md). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "device/device.h"

#define USAGE_DEVICES "devices [--json]"
#define USAGE_TYPES "types [--json]"
#define USAGE_CREATE "create --parent PCI-ADDRESS --type TYPE-ID [--uuid UUID] [--json]"
#define USAGE_REMOVE "remove ID [--json]"

static const struct option help_only[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* getopt's own messages are off (opterr = 0): one "vgpumig: ..." line names
 * the bad option instead. */
static int bad_option(const char *usage, int argc, char **argv)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	return cli_usage(usage, "unknown option '%s'", arg);
}

/* Parse a verb with no options of its own; returns -1 to go on, else an exit code. */
static int parse_no_options(int argc, char **argv, const char *usage, int max_args)
{
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", help_only, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: vgpumig %s\n", usage);
			return CLI_OK;
		}
		return bad_option(usage, argc, argv);
	}
	if (argc - optind > max_args)
		return cli_usage(usage, "unexpected argument '%s'", argv[optind + max_args]);
	return -1;
}

static int load_inventory(cli_ctx *ctx, vgm_host **h, vgm_inventory **inv)
{
	vgm_error err = { 0 };
	if (vgm_host_new(ctx->sysfs_root, h, &err) < 0 || vgm_inventory_load(*h, inv, &err) < 0)
		return cli_fail(&err);
	return CLI_OK;
}

static void format_size(uint64_t b, char *buf, size_t n)
{
	if (b == 0)
		snprintf(buf, n, "-");
	else if (b % (1ull << 30) == 0)
		snprintf(buf, n, "%" PRIu64 " GiB", b >> 30);
	else
		snprintf(buf, n, "%" PRIu64 " MiB", b >> 20);
}

/* Column widths: the longest cell of each column, header included. */
static void widen(int *w, const char *s)
{
	int n = (int)strlen(s);
	if (n > *w)
		*w = n;
}

static void print_devices_table(const vgm_inventory *inv)
{
	int w[5] = { 0 };
	const char *hdr[] = { "ID", "KIND", "PARENT", "TYPE", "PROFILE" };
	for (int c = 0; c < 5; c++)
		widen(&w[c], hdr[c]);
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		widen(&w[0], in->id);
		widen(&w[2], in->parent);
		widen(&w[3], in->type_id);
		widen(&w[4], in->profile_name ? in->profile_name : "?");
	}
	printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], hdr[0], w[1], hdr[1], w[2], hdr[2], w[3],
	       hdr[3], w[4], hdr[4], "FRAMEBUFFER");
	for (size_t i = 0; i < inv->n_instances; i++) {
		const vgm_instance *in = &inv->instances[i];
		char fb[32];
		format_size(in->framebuffer_bytes, fb, sizeof(fb));
		printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], in->id, w[1],
		       vgm_backend_to_string(in->kind), w[2], in->parent, w[3], in->type_id, w[4],
		       in->profile_name ? in->profile_name : "?", fb);
	}
}

static int verb_devices(cli_ctx *ctx, int argc, char **argv)
{
	int r = parse_no_options(argc, argv, USAGE_DEVICES, 0);
	if (r >= 0)
		return r;
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	if ((r = load_inventory(ctx, &h, &inv)) != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(vgm_inventory_devices_json(inv));
	print_devices_table(inv);
	return CLI_OK;
}

enum { T_PARENT, T_BACKEND, T_TYPE, T_NAME, T_FB, T_AVAIL, T_MAX, T_CLASS, T_BOARD, T_COLS };

static void type_row(const vgm_parent *p, const vgm_profile *pr, char cells[T_COLS][64])
{
	snprintf(cells[T_PARENT], 64, "%s", p->address);
	snprintf(cells[T_BACKEND], 64, "%s", vgm_backend_to_string(p->backend));
	snprintf(cells[T_TYPE], 64, "%s", pr->type_id);
	snprintf(cells[T_NAME], 64, "%s", pr->name ? pr->name : "?");
	format_size(pr->framebuffer_bytes, cells[T_FB], 64);
	snprintf(cells[T_AVAIL], 64, "%u", pr->available);
	if (pr->max_instances)
		snprintf(cells[T_MAX], 64, "%u", pr->max_instances);
	else
		snprintf(cells[T_MAX], 64, "-");
	snprintf(cells[T_CLASS], 64, "%c", pr->license_class ? pr->license_class : '-');
	snprintf(cells[T_BOARD], 64, "%s", p->board ? p->board : "-");
}

static void print_type_line(const int *w, char cells[T_COLS][64])
{
	for (int c = 0; c + 1 < T_COLS; c++)
		printf("%-*s  ", w[c], cells[c]);
	printf("%s\n", cells[T_COLS - 1]);
}

static void print_types_table(const vgm_inventory *inv)
{
	static const char *hdr[T_COLS] = { "PARENT", "BACKEND", "TYPE", "NAME", "FRAMEBUFFER",
					   "AVAIL", "MAX", "CLASS", "BOARD" };
	char cells[T_COLS][64];
	int w[T_COLS] = { 0 };
	for (int c = 0; c < T_COLS; c++)
		widen(&w[c], hdr[c]);
	for (size_t i = 0; i < inv->n_parents; i++)
		for (size_t j = 0; j < inv->parents[i].n_profiles; j++) {
			type_row(&inv->parents[i], &inv->parents[i].profiles[j], cells);
			for (int c = 0; c < T_COLS; c++)
				widen(&w[c], cells[c]);
		}
	for (int c = 0; c < T_COLS; c++)
		snprintf(cells[c], 64, "%s", hdr[c]);
	print_type_line(w, cells);
	for (size_t i = 0; i < inv->n_parents; i++)
		for (size_t j = 0; j < inv->parents[i].n_profiles; j++) {
			type_row(&inv->parents[i], &inv->parents[i].profiles[j], cells);
			print_type_line(w, cells);
		}
}

static int verb_types(cli_ctx *ctx, int argc, char **argv)
{
	int r = parse_no_options(argc, argv, USAGE_TYPES, 0);
	if (r >= 0)
		return r;
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	if ((r = load_inventory(ctx, &h, &inv)) != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(vgm_inventory_types_json(inv));
	print_types_table(inv);
	return CLI_OK;
}

static int create_parse(int argc, char **argv, const char **parent, const char **type,
			const char **uuid)
{
	static const struct option opts[] = {
		{ "parent", required_argument, NULL, 'p' },
		{ "type", required_argument, NULL, 't' },
		{ "uuid", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:t:u:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': *parent = optarg; break;
		case 't': *type = optarg; break;
		case 'u': *uuid = optarg; break;
		case 'h': printf("usage: vgpumig %s\n", USAGE_CREATE); return CLI_OK;
		case ':': return cli_usage(USAGE_CREATE, "option '%s' needs a value", argv[optind - 1]);
		default: return bad_option(USAGE_CREATE, argc, argv);
		}
	}
	if (optind < argc)
		return cli_usage(USAGE_CREATE, "unexpected argument '%s'", argv[optind]);
	if (!*parent || !*type)
		return cli_usage(USAGE_CREATE, "create needs --parent and --type");
	return -1;
}

static int verb_create(cli_ctx *ctx, int argc, char **argv)
{
	const char *parent = NULL, *type = NULL, *uuid = NULL;
	int r = create_parse(argc, argv, &parent, &type, &uuid);
	if (r >= 0)
		return r;
	vgm_error err = { 0 };
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	_cleanup_free_ char *id = NULL;
	if (vgm_host_new(ctx->sysfs_root, &h, &err) < 0 ||
	    vgm_device_create(h, parent, type, uuid, &id, &err) < 0)
		return cli_fail(&err);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s, s:s}", "id", id, "parent", parent,
						"type_id", type));
	printf("%s\n", id);
	return CLI_OK;
}

static int verb_remove(cli_ctx *ctx, int argc, char **argv)
{
	int r = parse_no_options(argc, argv, USAGE_REMOVE, 1);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return cli_usage(USAGE_REMOVE, "remove needs the vGPU id (UUID or VF address)");
	vgm_error err = { 0 };
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	if (vgm_host_new(ctx->sysfs_root, &h, &err) < 0 ||
	    vgm_device_remove(h, argv[optind], &err) < 0)
		return cli_fail(&err);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s}", "removed", argv[optind]));
	return CLI_OK;
}

const cli_verb cli_device_verbs[] = {
	{ "devices", verb_devices, USAGE_DEVICES },
	{ "types", verb_types, USAGE_TYPES },
	{ "create", verb_create, USAGE_CREATE },
	{ "remove", verb_remove, USAGE_REMOVE },
	{ NULL, NULL, NULL },
};
