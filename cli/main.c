/* main.c: the vgpumig command: global options, then one verb.
 *
 * Global options may appear anywhere on the line (so "vgpumig devices --json"
 * and "vgpumig --json devices" mean the same); they are removed from argv
 * before the verb sees it.  Everything after "--" is left alone. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vgm-config.h"

#define DEFAULT_SOCKET "/run/vgpumig/vgpumigd.sock"

static const cli_verb *const verb_groups[] = {
	cli_device_verbs,
	cli_xml_verbs,
	cli_agent_verbs,
	cli_migrate_verbs,
	cli_cold_verbs,
	cli_evacuate_verbs,
};

static void print_help(FILE *f)
{
	fprintf(f, "usage: vgpumig [--json] [--socket PATH] [--sysfs-root PATH] VERB ...\n\n");
	for (size_t g = 0; g < ARRAY_SIZE(verb_groups); g++)
		for (const cli_verb *v = verb_groups[g]; v->name; v++)
			fprintf(f, "  vgpumig %s\n", v->usage);
	fprintf(f, "\nSee vgpumig(1).\n");
}

/* Take a global option (with its value, as "--opt V" or "--opt=V") out of
 * argv.  Returns 1 if argv[i] was one, 0 if not, -1 if its value is missing. */
static int take_value_opt(int *argc, char **argv, int i, const char *opt, const char **val)
{
	size_t n = strlen(opt);
	int used;
	if (strncmp(argv[i], opt, n) != 0)
		return 0;
	if (argv[i][n] == '=') {
		*val = argv[i] + n + 1;
		used = 1;
	} else if (argv[i][n] == '\0') {
		if (i + 1 >= *argc)
			return -1;
		*val = argv[i + 1];
		used = 2;
	} else
		return 0;
	memmove(argv + i, argv + i + used, (size_t)(*argc - i - used + 1) * sizeof(char *));
	*argc -= used;
	return 1;
}

static int strip_global_options(cli_ctx *ctx, int *argc, char **argv)
{
	for (int i = 1; i < *argc;) {
		if (STREQ(argv[i], "--"))
			break;
		if (STREQ(argv[i], "--json")) {
			ctx->json = true;
			memmove(argv + i, argv + i + 1, (size_t)(*argc - i) * sizeof(char *));
			(*argc)--;
			continue;
		}
		int r = take_value_opt(argc, argv, i, "--socket", &ctx->socket_path);
		if (r == 0)
			r = take_value_opt(argc, argv, i, "--sysfs-root", &ctx->sysfs_root);
		if (r < 0)
			return cli_usage("[--socket PATH] [--sysfs-root PATH] VERB ...",
					 "option '%s' needs a value", argv[i]);
		if (r == 0)
			i++;
	}
	return CLI_OK;
}

int main(int argc, char **argv)
{
	cli_ctx ctx = { .socket_path = DEFAULT_SOCKET };
	int r = strip_global_options(&ctx, &argc, argv);
	if (r != CLI_OK)
		return r;

	if (argc < 2) {
		print_help(stderr);
		return CLI_USAGE;
	}
	if (STREQ(argv[1], "--help") || STREQ(argv[1], "-h") || STREQ(argv[1], "help")) {
		print_help(stdout);
		return CLI_OK;
	}
	if (STREQ(argv[1], "--version")) {
		printf("vgpumig %s\n", VGM_VERSION);
		return CLI_OK;
	}
	for (size_t g = 0; g < ARRAY_SIZE(verb_groups); g++)
		for (const cli_verb *v = verb_groups[g]; v->name; v++)
			if (STREQ(v->name, argv[1]))
				return v->run(&ctx, argc - 1, argv + 1);

	fprintf(stderr, "vgpumig: unknown verb '%s'; run 'vgpumig --help' for the list\n", argv[1]);
	return CLI_USAGE;
}
