/* cmd-evacuate.c: `vgpumig evacuate HOST ...` (empty this host of its vGPU
 * VMs) and `vgpumig evacuations [ID]` (show them).  The agent plans, stores
 * and runs the evacuation (agent/route-evacuate.c); this file starts it and
 * follows GET /v1/evacuations/{id} until it ends:
 *   terminal   one line per VM, redrawn in place;
 *   otherwise  a line each time a VM changes state;
 *   --json     one JSON object per change ({"event": "progress", ...}) and a
 *              last {"event": "done", ...}, fields as in docs/evacuate.md.
 * Ctrl-C stops following only: the evacuation goes on in the agent.  Exit 0
 * when every VM moved (or the dry run placed every VM), 1 otherwise. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "cli.h"
#include "model/units.h"
#include "store/evac.h"

#define EVAC_USAGE                                                                                 \
	"evacuate HOST [--to HOST]... [--parallel N] [--max-downtime T] [--dry-run] "             \
	"[--cold-fallback] [--json]"
#define EVACUATIONS_USAGE "evacuations [ID] [--json]"
#define POLL_MS 250

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_evac(int argc, char **argv, vgm_wire_evac_req *q, char **to)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "max-downtime", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "cold-fallback", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	vgm_error err = { 0 };
	char *end;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't' && q->n_to < VGM_WIRE_MAX_TARGETS)
			to[q->n_to++] = optarg;
		else if (c == 't')
			return cli_usage(EVAC_USAGE, "at most %d --to hosts", VGM_WIRE_MAX_TARGETS);
		else if (c == 'p') {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 64)
				return cli_usage(EVAC_USAGE, "--parallel: '%s' is not a number from 1 to 64", optarg);
			q->parallel = vgm_limit_of(v);
		} else if (c == 'd') {
			if (vgm_parse_duration_ms(optarg, &q->max_downtime_ms.value, &err) < 0)
				return cli_usage(EVAC_USAGE, "--max-downtime: %s", err.message);
			q->max_downtime_ms.set = true;
		} else if (c == 'n' || c == 'C')
			*(c == 'n' ? &q->dry_run : &q->cold_fallback) = true;
		else
			return cli_usage(EVAC_USAGE, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind != argc - 1)
		return cli_usage(EVAC_USAGE, optind >= argc ? "which host?" : "unexpected argument '%s'",
				 argv[argc - 1]);
	q->host = argv[optind];
	q->to = to;
	return CLI_OK;
}

static void pause_text(int64_t ms, char *buf, size_t n)
{
	if (ms < 0)
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%lld ms", (long long)ms);
}

static void print_vm(const vgm_evac_vm *v)
{
	char pause[32];
	pause_text(v->pause_ms, pause, sizeof(pause));
	printf("%-20s %-14s %-12s %-10s%s%s\x1b[K\n", v->domain_name, v->state,
	       v->target ? v->target : "-", pause, v->message ? "  " : "",
	       v->message ? v->message : "");
}

static void print_table(const vgm_evacuation *e)
{
	printf("%-20s %-14s %-12s %-10s\x1b[K\n", "DOMAIN", "STATE", "TARGET", "PAUSE");
	for (size_t i = 0; i < e->n_vms; i++)
		print_vm(&e->vms[i]);
}

static void counts(const vgm_evacuation *e, size_t *moved, size_t *cold, size_t *left)
{
	*moved = *cold = *left = 0;
	for (size_t i = 0; i < e->n_vms; i++) {
		*moved += STREQ(e->vms[i].state, "moved");
		*cold += STREQ(e->vms[i].state, "cold_moved");
		*left += STREQ(e->vms[i].state, "left_behind");
	}
}

static void print_json_event(const char *event, json_t *snap)
{
	json_t *ev = json_deep_copy(snap);
	json_object_set_new(ev, "event", json_string(event));
	char *line = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
	if (line)
		printf("%s\n", line);
	free(line);
	json_decref(ev);
	fflush(stdout);
}

/* Lines that changed since the last poll, for a log that is not a terminal. */
static void print_changes(const vgm_evacuation *prev, const vgm_evacuation *e)
{
	for (size_t i = 0; i < e->n_vms; i++) {
		const vgm_evac_vm *v = &e->vms[i];
		bool same = prev && i < prev->n_vms && STREQ(prev->vms[i].state, v->state) &&
			    STRPTR_EQ(prev->vms[i].target, v->target);
		if (!same)
			print_vm(v);
	}
	fflush(stdout);
}

typedef struct follow {
	const cli_ctx *ctx;
	bool tty;
	size_t drawn; /* lines of the last redraw */
	vgm_evacuation *prev;
	char *prev_json;
} follow;

static void show(follow *f, json_t *snap, vgm_evacuation *e)
{
	if (f->ctx->json) {
		char *now = json_dumps(snap, JSON_COMPACT | JSON_SORT_KEYS);
		if (now && (!f->prev_json || !STREQ(now, f->prev_json)))
			print_json_event("progress", snap);
		free(f->prev_json);
		f->prev_json = now;
	} else if (f->tty) {
		if (f->drawn)
			printf("\x1b[%zuA", f->drawn);
		print_table(e);
		f->drawn = e->n_vms + 1;
		fflush(stdout);
	} else {
		print_changes(f->prev, e);
	}
	vgm_evacuation_free(f->prev);
	f->prev = e;
}

static int summary(const follow *f, json_t *snap, const vgm_evacuation *e, const char *host)
{
	size_t moved, cold, left;
	counts(e, &moved, &cold, &left);
	if (f->ctx->json) {
		print_json_event("done", snap);
	} else {
		printf("evacuated %s: %zu moved, %zu cold-migrated, %zu left behind\n", host, moved, cold,
		       left);
		for (size_t i = 0; i < e->n_vms; i++)
			if (STREQ(e->vms[i].state, "left_behind"))
				printf("  left behind: %s: %s\n", e->vms[i].domain_name,
				       e->vms[i].message ? e->vms[i].message : e->vms[i].code);
	}
	return left ? cli_failf("%zu VM(s) left behind on %s", left, host) : CLI_OK;
}

static int follow_evacuation(follow *f, vgm_client *c, const char *id, const char *host)
{
	char path[160];
	snprintf(path, sizeof(path), "/v1/evacuations/%s", id);
	for (;;) {
		json_t *snap = NULL;
		vgm_evacuation *e = NULL;
		vgm_error err = { 0 };
		if (vgm_client_json(c, "GET", path, NULL, NULL, &snap, &err) < 0 ||
		    vgm_wire_evacuation_from_json(snap, &e, &err) < 0) {
			json_decref(snap);
			return cli_fail(&err);
		}
		bool done = STREQ(e->state, "done");
		show(f, snap, e);
		if (done) {
			int r = summary(f, snap, e, host);
			json_decref(snap);
			return r;
		}
		json_decref(snap);
		if (interrupted)
			return cli_failf("stopped following; evacuation %s goes on in the agent ('vgpumig evacuations %s')",
					 id, id);
		struct timespec ts = { 0, POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static int dry_run_report(const cli_ctx *ctx, json_t *reply, const vgm_evacuation *e)
{
	if (ctx->json)
		return cli_print_json(json_incref(reply));
	print_table(e);
	size_t left = 0;
	for (size_t i = 0; i < e->n_vms; i++)
		left += STREQ(e->vms[i].state, "left_behind");
	printf("dry run: %zu of %zu VM(s) placed, in this order\n", e->n_vms - left, e->n_vms);
	fflush(stdout);
	return left ? cli_failf("%zu VM(s) would be left behind", left) : CLI_OK;
}

static int cmd_evacuate(cli_ctx *ctx, int argc, char **argv)
{
	char *to[VGM_WIRE_MAX_TARGETS];
	vgm_wire_evac_req q = { 0 };
	int r = parse_evac(argc, argv, &q, to);
	if (r != CLI_OK)
		return r;
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	if (vgm_client_new_unix(ctx->socket_path, &c, &err) < 0)
		return cli_fail(&err);
	vgm_client_set_timeouts(c, 2000, 300000); /* planning measures every VM's dirty rate */
	json_t *body = vgm_wire_evac_req_encode(&q), *reply = NULL;
	r = body ? vgm_client_json(c, "POST", "/v1/evacuations", body, NULL, &reply, &err)
		 : vgm_error_set(&err, ENOMEM, "out of memory");
	json_decref(body);
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = NULL;
	if (r >= 0)
		r = vgm_wire_evacuation_from_json(reply, &e, &err);
	if (r < 0) {
		json_decref(reply);
		return cli_fail(&err);
	}
	if (q.dry_run) {
		r = dry_run_report(ctx, reply, e);
		json_decref(reply);
		return r;
	}
	json_decref(reply);
	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	follow f = { .ctx = ctx, .tty = isatty(STDOUT_FILENO) == 1 };
	if (!ctx->json)
		printf("evacuation %s of %s: %zu VM(s)\n", e->id, q.host, e->n_vms);
	r = follow_evacuation(&f, c, e->id, q.host);
	vgm_evacuation_free(f.prev);
	free(f.prev_json);
	return r;
}

static int cmd_evacuations(cli_ctx *ctx, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return cli_usage(EVACUATIONS_USAGE, "unexpected argument '%s'", argv[argc - 1]);
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	json_t *reply = NULL;
	char path[160];
	snprintf(path, sizeof(path), "/v1/evacuations%s%s", argc == 2 ? "/" : "", argc == 2 ? argv[1] : "");
	if (vgm_client_new_unix(ctx->socket_path, &c, &err) < 0 ||
	    vgm_client_json(c, "GET", path, NULL, NULL, &reply, &err) < 0)
		return cli_fail(&err);
	if (ctx->json || argc == 1)
		return cli_print_json(reply);
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = NULL;
	int r = vgm_wire_evacuation_from_json(reply, &e, &err);
	json_decref(reply);
	if (r < 0)
		return cli_fail(&err);
	printf("evacuation %s: %s\n", e->id, e->state);
	print_table(e);
	return CLI_OK;
}

const cli_verb cli_evacuate_verbs[] = {
	{ "evacuate", cmd_evacuate, EVAC_USAGE },
	{ "evacuations", cmd_evacuations, EVACUATIONS_USAGE },
	{ NULL, NULL, NULL },
};
