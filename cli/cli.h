/* cli.h: shared pieces of the vgpumig command.
 *
 * main.c strips the global options (--json, --socket PATH, --sysfs-root PATH)
 * wherever they appear, then dispatches to a verb.  Each cmd-*.c file owns a
 * group of verbs and exports a NULL-terminated table.  A verb returns the
 * process exit code: 0 ok, 1 refused or failed (one line on stderr), 2 usage. */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "util/error.h"
#include "util/limit.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef struct cli_ctx {
	bool json;
	const char *socket_path; /* local agent socket */
	const char *sysfs_root;  /* NULL: $VGPUMIG_SYSFS_ROOT or "/" */
} cli_ctx;

typedef struct cli_verb {
	const char *name;
	int (*run)(cli_ctx *ctx, int argc, char **argv); /* argv[0] is the verb */
	const char *usage;                               /* one line, after "vgpumig " */
} cli_verb;

extern const cli_verb cli_device_verbs[];
extern const cli_verb cli_xml_verbs[];
extern const cli_verb cli_agent_verbs[];
extern const cli_verb cli_migrate_verbs[];
extern const cli_verb cli_cold_verbs[];
extern const cli_verb cli_evacuate_verbs[];

/* Print "vgpumig: <message>" on stderr; returns CLI_FAILED. */
int cli_fail(const vgm_error *err);
int cli_failf(const char *fmt, ...) _printf_(1, 2);
/* Print "vgpumig: <message>" and the verb's usage on stderr; returns CLI_USAGE. */
int cli_usage(const char *verb_usage, const char *fmt, ...) _printf_(2, 3);
/* Dump a JSON value on stdout (indented, newline) and drop the reference. */
int cli_print_json(json_t *v);

/* Cold-migrate through the local agent and report (cmd-cold.c); also the
 * fallback of `migrate --cold-fallback`. */
int cli_cold_run(const cli_ctx *ctx, const char *domain, const char *to, vgm_limit timeout_ms,
		 bool force);
