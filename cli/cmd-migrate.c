/* cmd-migrate.c: plan, migrate, status and abort: the verbs that run live
 * migrations through the local agent (which does the work, see
 * agent/route-migrate.c).  Field names are documented in docs/cli-migrate.md.
 *
 * migrate starts a migration (POST /v1/migrations) and follows it by polling
 * GET /v1/migrations/{id} every 200 ms until it ends: a progress bar redrawn
 * in place on a terminal, plain lines otherwise, one JSON object per line
 * with --json.  Ctrl-C asks the agent to abort and waits for it to say so:
 * the VM keeps running on the source.  Exit 0 when the migration succeeded
 * (or the dry run found no obstacle), 1 with the agent's reason otherwise. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "api/wire.h"
#include "cli.h"
#include "model/units.h"

#define PLAN_USAGE "plan DOMAIN --to HOST [--bandwidth B] [--max-downtime T] [--timeout T] [--json]"
#define MIGRATE_USAGE                                                                              \
	"migrate DOMAIN --to HOST [--max-downtime T] [--bandwidth B] [--timeout T] [--dry-run] "   \
	"[--force] [--cold-fallback] [--json]"
#define STATUS_USAGE "status [--json]"
#define ABORT_USAGE "abort DOMAIN|MIGRATION_ID [--json]"
#define POLL_MS 200

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

typedef struct mig_args {
	const char *domain;
	const char *to;
	int64_t max_downtime_ms, bandwidth_bps, timeout_ms;
	bool dry_run, force;
	bool cold_fallback; /* a refused or failed live migration moves cold instead */
} mig_args;

static int parse_args(int argc, char **argv, const char *usage, bool migrate, mig_args *a)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "max-downtime", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "cold-fallback", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	*a = (mig_args){ .max_downtime_ms = -1, .bandwidth_bps = -1, .timeout_ms = -1 };
	vgm_error err = { 0 };
	uint64_t v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			a->to = optarg;
			break;
		case 'b':
			if (vgm_parse_bandwidth_bps(optarg, &v, &err) < 0)
				return cli_usage(usage, "%s", err.message);
			a->bandwidth_bps = (int64_t)v;
			break;
		case 'd':
		case 'T':
			if (vgm_parse_duration_ms(optarg, &v, &err) < 0 || v == 0)
				return cli_usage(usage, "%s", err.message[0] ? err.message
								    : "a duration must be above 0");
			*(c == 'd' ? &a->max_downtime_ms : &a->timeout_ms) = (int64_t)v;
			break;
		case 'n':
		case 'f':
		case 'C':
			if (!migrate)
				return cli_usage(usage, "unknown option '%s'", argv[optind - 1]);
			*(c == 'n' ? &a->dry_run : c == 'f' ? &a->force : &a->cold_fallback) = true;
			break;
		default:
			return cli_usage(usage, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage(usage, optind >= argc ? "which domain?" : "unexpected argument '%s'",
				 argv[argc - 1]);
	a->domain = argv[optind];
	if (!a->to)
		return cli_usage(usage, "--to HOST is required");
	return CLI_OK;
}

static json_t *request_body(const mig_args *a)
{
	vgm_wire_migration_req r = { (char *)a->domain, (char *)a->to, a->max_downtime_ms,
				     a->bandwidth_bps, a->timeout_ms, a->dry_run, a->force };
	return vgm_wire_migration_req_encode(&r);
}

static vgm_client *connect_agent(const cli_ctx *ctx, vgm_error *err)
{
	vgm_client *c = NULL;
	if (vgm_client_new_unix(ctx->socket_path, &c, err) < 0)
		return NULL;
	vgm_client_set_timeouts(c, 2000, 30000);
	return c;
}

static int64_t jint(json_t *o, const char *path)
{
	/* "a.b" walks one level of nesting */
	char key[64];
	const char *dot = strchr(path, '.');
	if (dot) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		return jint(json_object_get(o, key), dot + 1);
	}
	json_t *v = json_object_get(o, path);
	return json_is_integer(v) ? json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static double jreal(json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* ---- plan ---- */

static void print_plan(json_t *p)
{
	char a[32], b[32], c[32];
	printf("plan: %s -> %s\n", jstr(p, "domain"), jstr(p, "to"));
	printf("  RAM %s; %" JSON_INTEGER_FORMAT " vGPU(s), framebuffer %s%s\n",
	       vgm_format_bytes((uint64_t)jint(p, "ram_bytes"), a, sizeof(a)),
	       json_integer_value(json_object_get(p, "vgpus")),
	       vgm_format_bytes((uint64_t)jint(p, "vgpu_declared_bytes"), b, sizeof(b)),
	       json_is_true(json_object_get(p, "lab_vgpus")) ? " (lab: emulated, not moved by QEMU)" : "");
	printf("  guest dirties %s/s (%s); bandwidth %s/s (%s)\n",
	       vgm_format_bytes((uint64_t)jint(p, "dirty_rate_bps"), a, sizeof(a)),
	       jstr(p, "dirty_rate_source"),
	       vgm_format_bytes((uint64_t)jint(p, "bandwidth_bps"), b, sizeof(b)),
	       jstr(p, "bandwidth_source"));
	if (json_is_true(json_object_get(p, "converges")))
		printf("  expected total %s in %" JSON_INTEGER_FORMAT " iterations, switchover %s "
		       "(QEMU downtime limit %s)\n",
		       vgm_format_seconds(jreal(p, "total_s", -1), a, sizeof(a)),
		       (json_int_t)jint(p, "iterations"),
		       vgm_format_seconds(jreal(p, "downtime_s", -1), b, sizeof(b)),
		       vgm_format_seconds((double)jint(p, "downtime_limit_ms") / 1000.0, c, sizeof(c)));
	else
		printf("  does not converge: %s\n", jstr(p, "reason"));
	json_t *v = json_object_get(p, "verdict");
	printf("  verdict: %s: %s\n", json_is_true(json_object_get(v, "ok")) ? "ok" : "refused",
	       jstr(v, "reason"));
}

static int cmd_plan(cli_ctx *ctx, int argc, char **argv)
{
	mig_args a;
	int r = parse_args(argc, argv, PLAN_USAGE, false, &a);
	if (r != CLI_OK)
		return r;
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = connect_agent(ctx, &err);
	json_t *body = request_body(&a), *reply = NULL;
	if (!c || !body || vgm_client_json(c, "POST", "/v1/plan", body, NULL, &reply, &err) < 0) {
		json_decref(body);
		return cli_fail(&err);
	}
	json_decref(body);
	json_t *v = json_object_get(reply, "verdict");
	bool ok = json_is_true(json_object_get(v, "ok"));
	_cleanup_free_ char *reason = strdup(jstr(v, "reason"));
	if (ctx->json)
		cli_print_json(reply);
	else {
		print_plan(reply);
		json_decref(reply);
	}
	return ok ? CLI_OK : cli_failf("%s", reason ? reason : "the plan refuses this migration");
}

/* ---- migrate ---- */

typedef struct follow {
	const cli_ctx *ctx;
	bool tty;
	bool bar_drawn;
	char last_phase[32];
	int64_t last_line_ms;
} follow;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The snapshot's vgpu object: sent bytes, or -1 when libvirt does not say. */
static void vgpu_progress(json_t *s, char *buf, size_t n)
{
	json_t *v = json_object_get(s, "vgpu"), *sent = json_object_get(v, "transferred");
	vgm_format_vgpu_progress((unsigned)jint(v, "count"), (uint64_t)jint(v, "bytes"),
				 json_is_integer(sent) ? json_integer_value(sent) : -1, buf, n);
}

/* "RAM 80.0 MiB sent, 112.0 MiB left of 192.0 MiB, vGPU 1 (1.0 GiB of 4.0 GiB sent),
 * 20.0 MiB/s, iteration 2, ETA 3.2 s, switchover ~15 ms" */
static void progress_text(json_t *s, char *buf, size_t n)
{
	char a[32], b[32], c[32], d[96], e[32], f[32], g[32];
	json_t *ram = json_object_get(s, "ram");
	uint64_t total = (uint64_t)jint(ram, "total"), rem = (uint64_t)jint(ram, "remaining");
	json_t *eta = json_object_get(s, "eta_s"), *dt = json_object_get(s, "expected_downtime_ms");
	if (total == 0) {
		snprintf(buf, n, "%s", STREQ(jstr(s, "phase"), "migrating")
					       ? "waiting for the destination to start"
					       : jstr(s, "phase"));
		return;
	}
	vgpu_progress(s, d, sizeof(d));
	snprintf(buf, n,
		 "RAM %s sent, %s left of %s, %s, %s/s, iteration %"
		 JSON_INTEGER_FORMAT ", ETA %s, switchover ~%s",
		 vgm_format_bytes((uint64_t)jint(ram, "transferred"), a, sizeof(a)),
		 vgm_format_bytes(rem, b, sizeof(b)), vgm_format_bytes(total, c, sizeof(c)),
		 d,
		 vgm_format_bytes((uint64_t)jint(s, "rate_bps"), e, sizeof(e)),
		 (json_int_t)jint(s, "iteration"),
		 json_is_number(eta) ? vgm_format_seconds(json_number_value(eta), f, sizeof(f)) : "-",
		 json_is_integer(dt) ? vgm_format_seconds((double)json_integer_value(dt) / 1000.0, g,
							 sizeof(g))
				     : "-");
}

static void draw_bar(follow *f, json_t *s)
{
	char text[320];
	json_t *ram = json_object_get(s, "ram"), *v = json_object_get(s, "vgpu");
	json_t *sent = json_object_get(v, "transferred");
	int pct = STREQ(jstr(s, "phase"), "migrating")
			  ? vgm_progress_percent((uint64_t)jint(ram, "total"),
						 (uint64_t)jint(ram, "remaining"),
						 (uint64_t)jint(v, "bytes"),
						 json_is_integer(sent) ? json_integer_value(sent) : -1)
			  : 0;
	char bar[21];
	for (int i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	progress_text(s, text, sizeof(text));
	fprintf(stdout, "\r\033[K%-10s [%s] %3d%% %s", jstr(s, "phase"), bar, pct, text);
	fflush(stdout);
	f->bar_drawn = true;
}

static void show_progress(follow *f, json_t *s)
{
	if (f->ctx->json) {
		json_t *ev = json_deep_copy(s);
		json_object_set_new(ev, "event", json_string("progress"));
		char *line = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
		if (line)
			printf("%s\n", line);
		fflush(stdout);
		free(line);
		json_decref(ev);
		return;
	}
	if (f->tty) {
		draw_bar(f, s);
		return;
	}
	const char *phase = jstr(s, "phase");
	bool changed = !STREQ(phase, f->last_phase);
	if (!changed && (!STREQ(phase, "migrating") || mono_ms() - f->last_line_ms < 1000))
		return;
	snprintf(f->last_phase, sizeof(f->last_phase), "%s", phase);
	f->last_line_ms = mono_ms();
	if (STREQ(phase, "migrating")) {
		char text[320];
		progress_text(s, text, sizeof(text));
		printf("migrating: %s\n", text);
	} else {
		printf("%s\n", phase);
	}
	fflush(stdout);
}

static void print_summary(json_t *s)
{
	char a[32], b[32], c[32];
	json_t *res = json_object_get(s, "result");
	if (STREQ(jstr(s, "state"), "succeeded") && json_is_true(json_object_get(s, "dry_run"))) {
		json_t *v = json_object_get(json_object_get(s, "plan"), "verdict");
		printf("dry run: %s could migrate to %s (%s); the target's claim was released\n",
		       jstr(s, "domain"), jstr(s, "to"), jstr(v, "reason"));
		return;
	}
	if (!json_is_object(res))
		return;
	printf("%s %s to %s: total %s, downtime %s, %s sent, %" JSON_INTEGER_FORMAT " iterations\n",
	       json_is_true(json_object_get(res, "ok")) ? "migrated" : "did not migrate",
	       jstr(s, "domain"), jstr(s, "to"),
	       vgm_format_seconds((double)jint(res, "total_ms") / 1000.0, a, sizeof(a)),
	       vgm_format_seconds((double)jint(res, "downtime_ms") / 1000.0, b, sizeof(b)),
	       vgm_format_bytes((uint64_t)jint(res, "bytes"), c, sizeof(c)),
	       (json_int_t)jint(res, "iterations"));
}

static int finish(follow *f, json_t *s)
{
	if (f->bar_drawn)
		fputc('\n', stdout);
	const char *state = jstr(s, "state");
	bool ok = STREQ(state, "succeeded");
	if (f->ctx->json) {
		json_t *ev = json_deep_copy(s);
		json_object_set_new(ev, "event", json_string("done"));
		char *line = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
		if (line)
			printf("%s\n", line);
		free(line);
		json_decref(ev);
	} else
		print_summary(s);
	fflush(stdout);
	if (ok)
		return CLI_OK;
	json_t *e = json_object_get(s, "error");
	return cli_failf("%s", json_is_object(e) ? jstr(e, "message") : state);
}

static int request_abort(vgm_client *c, const char *id, const char *reason, vgm_error *err)
{
	char path[160];
	snprintf(path, sizeof(path), "/v1/migrations/%s/abort", id);
	json_t *body = json_pack("{s:s}", "reason", reason);
	int r = vgm_client_json(c, "POST", path, body, NULL, NULL, err);
	json_decref(body);
	return r;
}

/* Poll until the migration ends; returns its last snapshot. */
static json_t *follow_migration(follow *f, vgm_client *c, const char *id, vgm_error *err)
{
	char path[160];
	bool abort_sent = false;
	snprintf(path, sizeof(path), "/v1/migrations/%s", id);
	for (;;) {
		if (interrupted && !abort_sent) {
			vgm_error aerr = { 0 };
			abort_sent = true;
			if (request_abort(c, id, "interrupted by Ctrl-C", &aerr) < 0 &&
			    !STREQ(aerr.reason, "migration_finished"))
				fprintf(stderr, "\nvgpumig: %s\n", vgm_error_message(&aerr));
			else if (!f->ctx->json)
				fprintf(stderr, "\nvgpumig: aborting; the VM stays on the source\n");
		}
		json_t *s = NULL;
		if (vgm_client_json(c, "GET", path, NULL, NULL, &s, err) < 0)
			return NULL;
		if (!STREQ(jstr(s, "state"), "running"))
			return s;
		show_progress(f, s);
		json_decref(s);
		struct timespec ts = { 0, POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static int cmd_migrate(cli_ctx *ctx, int argc, char **argv)
{
	mig_args a;
	int r = parse_args(argc, argv, MIGRATE_USAGE, true, &a);
	if (r != CLI_OK)
		return r;
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = connect_agent(ctx, &err);
	json_t *body = request_body(&a), *reply = NULL;
	if (!c || !body ||
	    vgm_client_json(c, "POST", "/v1/migrations", body, NULL, &reply, &err) < 0) {
		json_decref(body);
		return cli_fail(&err);
	}
	json_decref(body);
	_cleanup_free_ char *id = strdup(jstr(reply, "migration_id"));
	json_decref(reply);
	if (!id || !id[0])
		return cli_failf("the agent did not return a migration id");
	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	follow f = { .ctx = ctx, .tty = isatty(STDOUT_FILENO) == 1 };
	if (!ctx->json && !f.tty)
		printf("migration %s: %s -> %s\n", id, a.domain, a.to);
	json_t *s = follow_migration(&f, c, id, &err);
	if (!s) {
		if (f.bar_drawn)
			fputc('\n', stdout);
		return cli_fail(&err);
	}
	r = finish(&f, s);
	/* Failed, not aborted by the operator: the VM still runs here. */
	bool fallback = r != CLI_OK && a.cold_fallback && !a.dry_run && STREQ(jstr(s, "state"), "failed");
	json_decref(s);
	if (fallback) {
		fprintf(stderr, "vgpumig: live migration failed; moving %s cold (--cold-fallback)\n",
			a.domain);
		return cli_cold_run(ctx, a.domain, a.to, VGM_LIMIT_UNSET, a.force);
	}
	return r;
}

/* ---- status / abort ---- */

static int fetch_list(const cli_ctx *ctx, vgm_client **c, json_t **out)
{
	vgm_error err = { 0 };
	*c = connect_agent(ctx, &err);
	if (!*c || vgm_client_json(*c, "GET", "/v1/migrations", NULL, NULL, out, &err) < 0)
		return cli_fail(&err);
	return CLI_OK;
}

static int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage(STATUS_USAGE, "unexpected argument '%s'", argv[1]);
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	json_t *list = NULL;
	int r = fetch_list(ctx, &c, &list);
	if (r != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(list);
	size_t i;
	json_t *m;
	printf("%-36s  %-16s  %-10s  %-10s  %s\n", "MIGRATION", "DOMAIN", "TO", "STATE", "DETAIL");
	json_array_foreach(json_object_get(list, "migrations"), i, m) {
		char text[320] = "";
		json_t *e = json_object_get(m, "error");
		if (STREQ(jstr(m, "state"), "running"))
			progress_text(m, text, sizeof(text));
		else if (json_is_object(e))
			snprintf(text, sizeof(text), "%s", jstr(e, "message"));
		printf("%-36s  %-16s  %-10s  %-10s  %s%s%s\n", jstr(m, "migration_id"),
		       jstr(m, "domain"), jstr(m, "to"), jstr(m, "state"), jstr(m, "phase"),
		       text[0] ? ": " : "", text);
	}
	json_array_foreach(json_object_get(list, "recent"), i, m)
		printf("%-36s  %-16s  %-10s  %-10s  %s\n", jstr(m, "migration_id"), jstr(m, "domain"),
		       "-", jstr(m, "state"), jstr(m, "message"));
	json_decref(list);
	return CLI_OK;
}

static int cmd_abort(cli_ctx *ctx, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(ABORT_USAGE, argc < 2 ? "which domain?" : "unexpected argument '%s'",
				 argv[argc - 1]);
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	json_t *list = NULL;
	int r = fetch_list(ctx, &c, &list);
	if (r != CLI_OK)
		return r;
	size_t i;
	json_t *m;
	_cleanup_free_ char *id = NULL;
	json_array_foreach(json_object_get(list, "migrations"), i, m)
		if (!id && STREQ(jstr(m, "state"), "running") &&
		    (STREQ(jstr(m, "domain"), argv[1]) || STREQ(jstr(m, "domain_uuid"), argv[1]) ||
		     STREQ(jstr(m, "migration_id"), argv[1])))
			id = strdup(jstr(m, "migration_id"));
	json_decref(list);
	if (!id)
		return cli_failf("no migration of '%s' is running on this host; see 'vgpumig status'",
				 argv[1]);
	vgm_error err = { 0 };
	if (request_abort(c, id, "aborted by 'vgpumig abort'", &err) < 0)
		return cli_fail(&err);
	char path[160];
	snprintf(path, sizeof(path), "/v1/migrations/%s", id);
	json_t *s = NULL;
	for (int k = 0; k < 600; k++) { /* up to 2 minutes */
		json_decref(s);
		s = NULL;
		if (vgm_client_json(c, "GET", path, NULL, NULL, &s, &err) < 0)
			return cli_fail(&err);
		if (!STREQ(jstr(s, "state"), "running"))
			break;
		struct timespec ts = { 0, POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (ctx->json)
		return cli_print_json(s);
	printf("migration %s of %s: %s\n", id, jstr(s, "domain"), jstr(s, "state"));
	bool aborted = !STREQ(jstr(s, "state"), "running");
	json_decref(s);
	return aborted ? CLI_OK : cli_failf("migration %s has not stopped yet", id);
}

const cli_verb cli_migrate_verbs[] = {
	{ "plan", cmd_plan, PLAN_USAGE },
	{ "migrate", cmd_migrate, MIGRATE_USAGE },
	{ "status", cmd_status, STATUS_USAGE },
	{ "abort", cmd_abort, ABORT_USAGE },
	{ NULL, NULL, NULL },
};
