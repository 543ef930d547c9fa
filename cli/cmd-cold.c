/* cmd-cold.c: `vgpumig cold-migrate DOMAIN --to HOST [--shutdown-timeout T]
 * [--force]`: move a VM with a reboot when live migration is impossible
 * (agent/route-cold.c and lib/migrate/cold.c do the work; the request
 * returns when the VM runs on the target or, after any failure, on this
 * host again).  Also used by `migrate --cold-fallback`.  Output is one line,
 * or the agent's reply with --json; docs/cli-migrate.md documents both. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "cli.h"
#include "migrate/cold.h"
#include "model/units.h"

#define COLD_USAGE "cold-migrate DOMAIN --to HOST [--shutdown-timeout T] [--force] [--json]"
#define COLD_SLACK_MS 120000 /* checks, define, start and release around the shutdown */

int cli_cold_run(const cli_ctx *ctx, const char *domain, const char *to, vgm_limit timeout_ms,
		 bool force)
{
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	if (vgm_client_new_unix(ctx->socket_path, &c, &err) < 0)
		return cli_fail(&err);
	vgm_client_set_timeouts(c, 2000,
				(long)(vgm_limit_or(timeout_ms, VGM_COLD_DEFAULT_SHUTDOWN_MS) +
				       COLD_SLACK_MS));
	vgm_wire_cold_req q = { (char *)domain, (char *)to, timeout_ms, force };
	json_t *body = vgm_wire_cold_req_encode(&q), *reply = NULL;
	if (!ctx->json)
		printf("cold migration: %s -> %s (the guest shuts down and boots on %s)\n", domain, to,
		       to);
	fflush(stdout);
	int r = body ? vgm_client_json(c, "POST", "/v1/cold-migrations", body, NULL, &reply, &err)
		     : vgm_error_set(&err, ENOMEM, "out of memory");
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	if (ctx->json)
		return cli_print_json(reply);
	_cleanup_(vgm_wire_cold_result_freep) vgm_wire_cold_result *res = NULL;
	r = vgm_wire_cold_result_from_json(reply, &res, &err);
	json_decref(reply);
	if (r < 0)
		return cli_fail(&err);
	printf("%s now runs on %s (job %s)\n", res->domain, res->to, res->id);
	if (res->warnings)
		fprintf(stderr, "vgpumig: warning: %s\n", res->warnings);
	return CLI_OK;
}

static int cmd_cold_migrate(cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "shutdown-timeout", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL;
	vgm_limit timeout = VGM_LIMIT_UNSET;
	bool force = false;
	vgm_error err = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			to = optarg;
		else if (c == 'f')
			force = true;
		else if (c == 's' && vgm_parse_duration_ms(optarg, &timeout.value, &err) >= 0 &&
			 timeout.value > 0)
			timeout.set = true;
		else if (c == 's')
			return cli_usage(COLD_USAGE, "--shutdown-timeout: %s",
					 err.message[0] ? err.message : "a duration must be above 0");
		else
			return cli_usage(COLD_USAGE, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind != argc - 1)
		return cli_usage(COLD_USAGE, optind >= argc ? "which domain?" : "unexpected argument '%s'",
				 argv[argc - 1]);
	if (!to)
		return cli_usage(COLD_USAGE, "--to HOST is required");
	return cli_cold_run(ctx, argv[optind], to, timeout, force);
}

const cli_verb cli_cold_verbs[] = {
	{ "cold-migrate", cmd_cold_migrate, COLD_USAGE },
	{ NULL, NULL, NULL },
};
