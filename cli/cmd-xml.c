/* cmd-xml.c: `vgpumig xml inspect|rewrite`, offline verbs on a domain XML.
 *
 * One verb, "xml", whose run() dispatches the sub-verb.  Both read a file or
 * stdin ("-") with the library's size limit, call lib/domxml and print; they
 * never talk to an agent.  inspect succeeds (exit 0) even when the domain has
 * problems: they are part of what it reports.  See docs/cli-xml.md. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "domxml/domxml.h"
#include "util/fs.h"

#define XML_USAGE                                                                                  \
	"xml inspect [--json] FILE|-  |  xml rewrite --map SRC=DST [--map SRC=DST ...] "          \
	"[--allow-unmapped] FILE|-"
#define INSPECT_USAGE "xml inspect [--json] FILE|-"
#define REWRITE_USAGE "xml rewrite --map SRC=DST [--map SRC=DST ...] [--allow-unmapped] FILE|-"

static int read_input(const char *path, char **buf, size_t *len)
{
	int r = STREQ(path, "-") ? vgm_read_fd(STDIN_FILENO, VGM_DOMXML_MAX, buf, len)
				 : vgm_read_file(path, VGM_DOMXML_MAX, buf, len);
	if (r == -EFBIG)
		return cli_failf("%s is larger than %u bytes, the limit for a domain XML",
				 STREQ(path, "-") ? "standard input" : path, VGM_DOMXML_MAX);
	if (r < 0)
		return cli_failf("cannot read %s: %s", STREQ(path, "-") ? "standard input" : path,
				 strerror(-r));
	return CLI_OK;
}

/* getopt with opterr = 0 and ":" first: say what was wrong ourselves. */
static int bad_option(const char *usage, int c, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";
	if (c == ':')
		return cli_usage(usage, "option '%s' needs a value", opt);
	return cli_usage(usage, "unknown option '%s'", opt);
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static void print_hostdev(const vgm_hostdev *h)
{
	if (h->type == VGM_HOSTDEV_MDEV)
		printf("  mdev  %-36s  model=%s display=%s ramfb=%s alias=%s guest=%s\n",
		       h->id ? h->id : "(no uuid)", or_dash(h->model), or_dash(h->display),
		       or_dash(h->ramfb), or_dash(h->alias), or_dash(h->guest_address));
	else
		printf("  pci   %-36s  managed=%s alias=%s guest=%s\n",
		       h->id ? h->id : "(invalid)", h->managed ? "yes" : "no", or_dash(h->alias),
		       or_dash(h->guest_address));
}

static void print_info(const vgm_domain_info *d)
{
	printf("name:     %s\n", or_dash(d->name));
	printf("uuid:     %s\n", or_dash(d->uuid));
	printf("memory:   %" PRIu64 " bytes (%.1f GiB)\n", d->memory_bytes,
	       (double)d->memory_bytes / (1024.0 * 1024 * 1024));
	printf("vcpus:    %u\n", d->vcpus);
	printf("viommu:   %s\n", d->viommu ? "yes (blocks vGPU migration)" : "no");
	printf("hostdevs: %zu\n", d->n_hostdevs);
	for (size_t i = 0; i < d->n_hostdevs; i++)
		print_hostdev(&d->hostdevs[i]);
	if (d->n_meta)
		printf("vgpumig metadata: %zu\n", d->n_meta);
	for (size_t i = 0; i < d->n_meta; i++) {
		const vgm_meta_vgpu *m = &d->meta[i];
		printf("  %-4s  %-36s  profile='%s' type=%s framebuffer=%" PRIu64 "%s\n", m->kind,
		       m->id, or_dash(m->profile_name), or_dash(m->type_id), m->framebuffer_bytes,
		       m->lab ? " lab" : "");
	}
	printf("problems: %zu\n", d->n_problems);
	for (size_t i = 0; i < d->n_problems; i++)
		printf("  - %s\n", d->problems[i]);
}

static int run_inspect(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	bool json = ctx->json;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'h') {
			printf("usage: vgpumig %s\n", INSPECT_USAGE);
			return CLI_OK;
		} else
			return bad_option(INSPECT_USAGE, c, argv);
	}
	if (argc - optind != 1)
		return cli_usage(INSPECT_USAGE, "give exactly one FILE (or - for stdin)");

	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_input(argv[optind], &buf, &len);
	if (r != CLI_OK)
		return r;
	vgm_error err = { 0 };
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	if (vgm_domxml_inspect(buf, len, &d, &err) < 0)
		return cli_fail(&err);
	if (json)
		return cli_print_json(vgm_domain_info_to_json(d));
	print_info(d);
	return fflush(stdout) == 0 ? CLI_OK : cli_failf("cannot write to standard output");
}

/* "SRC=DST" -> map entry pointing into arg (split in place). */
static int parse_map_arg(char *arg, vgm_idmap *m)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1])
		return cli_usage(REWRITE_USAGE, "--map wants SRC=DST, got '%s'", arg);
	*eq = '\0';
	m->src = arg;
	m->dst = eq + 1;
	return CLI_OK;
}

static int write_output(const cli_ctx *ctx, const char *out, size_t len)
{
	if (ctx->json) {
		json_t *s = json_stringn(out, len);
		if (!s)
			return cli_failf("rewritten XML is not UTF-8; run without --json");
		return cli_print_json(json_pack("{s:o}", "xml", s));
	}
	if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0)
		return cli_failf("cannot write to standard output");
	return CLI_OK;
}

static int run_rewrite(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = { { "map", required_argument, NULL, 'm' },
					      { "allow-unmapped", no_argument, NULL, 'a' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	_cleanup_free_ vgm_idmap *map = calloc((size_t)argc + 1, sizeof(*map));
	size_t n_map = 0;
	unsigned flags = 0;
	int c;
	if (!map)
		return cli_failf("out of memory");
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'm') {
			int r = parse_map_arg(optarg, &map[n_map++]);
			if (r != CLI_OK)
				return r;
		} else if (c == 'a')
			flags |= VGM_REWRITE_ALLOW_UNMAPPED;
		else if (c == 'h') {
			printf("usage: vgpumig %s\n", REWRITE_USAGE);
			return CLI_OK;
		} else
			return bad_option(REWRITE_USAGE, c, argv);
	}
	if (argc - optind != 1)
		return cli_usage(REWRITE_USAGE, "give exactly one FILE (or - for stdin)");

	_cleanup_free_ char *buf = NULL, *out = NULL;
	size_t len = 0, outlen = 0;
	int r = read_input(argv[optind], &buf, &len);
	if (r != CLI_OK)
		return r;
	vgm_error err = { 0 };
	if (vgm_domxml_rewrite(buf, len, map, n_map, flags, &out, &outlen, &err) < 0)
		return cli_fail(&err);
	return write_output(ctx, out, outlen);
}

static int run_xml(cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(XML_USAGE, "xml needs a sub-verb: inspect or rewrite");
	if (STREQ(argv[1], "inspect"))
		return run_inspect(ctx, argc - 1, argv + 1);
	if (STREQ(argv[1], "rewrite"))
		return run_rewrite(ctx, argc - 1, argv + 1);
	if (STREQ(argv[1], "--help") || STREQ(argv[1], "-h")) {
		printf("usage: vgpumig %s\n", XML_USAGE);
		return CLI_OK;
	}
	return cli_usage(XML_USAGE, "unknown xml sub-verb '%s'", argv[1]);
}

const cli_verb cli_xml_verbs[] = {
	{ "xml", run_xml, XML_USAGE },
	{ NULL, NULL, NULL },
};
