/* cmd-agent.c: the verbs that ask the local agent (host, claims, gc, check).
 *
 * Each verb is one request on the agent's unix socket (--socket) and prints
 * the reply: the JSON as is with --json, else a short text form.  An error
 * reply is printed with the agent's own message (cli_fail); the CLI adds
 * nothing but the "vgpumig: " prefix.  Field names are documented in
 * docs/cli-agent.md. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/client.h"
#include "cli.h"
#include "model/units.h"
#include "util/fs.h"

#define CHECK_USAGE "check DOMAIN --to HOST [--xml FILE|-] [--json]"
#define CHECK_XML_MAX (16u * 1024 * 1024)

/* One request to the local agent; *out gets the decoded JSON reply. */
static int agent_call(const cli_ctx *ctx, const char *method, const char *path, json_t *body,
		      json_t **out)
{
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	if (vgm_client_new_unix(ctx->socket_path, &c, &err) < 0 ||
	    vgm_client_json(c, method, path, body, NULL, out, &err) < 0)
		return cli_fail(&err);
	return CLI_OK;
}

static bool scalars_only(json_t *arr)
{
	size_t i;
	json_t *it;
	json_array_foreach(arr, i, it)
		if (json_is_object(it) || json_is_array(it))
			return false;
	return true;
}

static void print_scalar(FILE *f, json_t *v)
{
	if (json_is_string(v))
		fputs(json_string_value(v), f);
	else if (json_is_integer(v))
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%g", json_real_value(v));
	else if (json_is_true(v))
		fputs("yes", f);
	else if (json_is_false(v))
		fputs("no", f);
	else if (json_is_null(v))
		fputs("-", f);
	else if (json_is_array(v) && scalars_only(v)) {
		size_t i;
		json_t *it;
		if (json_array_size(v) == 0)
			fputs("-", f);
		json_array_foreach(v, i, it) {
			if (i)
				fputs(", ", f);
			print_scalar(f, it);
		}
	} else {
		char *s = json_dumps(v, JSON_COMPACT);
		fputs(s ? s : "?", f);
		free(s);
	}
}

/* Unix times ("..._at" keys) get a human reading after the raw number:
 * "gathered_at: 1795312847 (12 s ago)". */
static void print_when(const char *key, json_t *v)
{
	size_t n = strlen(key);
	char buf[64];
	if (n < 3 || !STREQ(key + n - 3, "_at") || !json_is_number(v))
		return;
	printf(" (%s)", vgm_format_when((int64_t)json_number_value(v), time(NULL), buf, sizeof(buf)));
}

/* "key: value" lines; nested objects as "outer.inner: value". */
static void print_fields(const char *prefix, json_t *obj)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (json_is_object(v)) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
			print_fields(sub, v);
			continue;
		}
		printf("%s%s: ", prefix, key);
		print_scalar(stdout, v);
		print_when(key, v);
		putchar('\n');
	}
}

static int no_args(const cli_ctx *ctx, int argc, char **argv, const char *usage)
{
	if (argc > 1)
		return cli_usage(usage, "unexpected argument '%s'", argv[1]);
	return CLI_OK;
}

static int cmd_host(cli_ctx *ctx, int argc, char **argv)
{
	int r = no_args(ctx, argc, argv, "host [--json]");
	json_t *reply = NULL;
	if (r == CLI_OK)
		r = agent_call(ctx, "GET", "/v1/host", NULL, &reply);
	if (r != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(reply);
	print_fields("", reply);
	json_decref(reply);
	return CLI_OK;
}

static const char *str_or_dash(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && s[0] ? s : "-";
}

/* "src->dst" per device, comma separated, "+" marks a device created for it. */
static void print_claim_devices(json_t *devices)
{
	size_t i;
	json_t *d;
	if (json_array_size(devices) == 0)
		fputs("-", stdout);
	json_array_foreach(devices, i, d) {
		printf("%s%s->%s%s", i ? "," : "", str_or_dash(d, "source_id"),
		       str_or_dash(d, "target_id"), json_is_true(json_object_get(d, "created")) ? "+" : "");
	}
}

static void print_claims_table(json_t *claims)
{
	if (json_array_size(claims) == 0) {
		printf("no claims\n");
		return;
	}
	printf("%-36s  %-9s  %-20s  %-12s  %-20s  %s\n", "CLAIM", "STATE", "DOMAIN", "FROM",
	       "EXPIRES", "DEVICES (source->target, + created)");
	size_t i;
	json_t *c;
	json_array_foreach(claims, i, c) {
		json_t *exp = json_object_get(c, "expires_at");
		printf("%-36s  %-9s  %-20s  %-12s  ", str_or_dash(c, "claim_id"),
		       str_or_dash(c, "state"), str_or_dash(c, "domain_name"),
		       str_or_dash(c, "source_host"));
		char when[64] = "-";
		if (json_is_string(exp))
			snprintf(when, sizeof(when), "%s", json_string_value(exp));
		else if (json_is_integer(exp))
			vgm_format_when(json_integer_value(exp), time(NULL), when, sizeof(when));
		printf("%-20s  ", when);
		json_t *devs = json_object_get(c, "mapping");
		print_claim_devices(devs ? devs : json_object_get(c, "devices"));
		putchar('\n');
	}
}

/* Devices domains on this host hold now (what committed claims became). */
static void print_assignments_table(json_t *assignments)
{
	size_t i;
	json_t *a;
	if (json_array_size(assignments) == 0)
		return;
	printf("\n%-36s  %-20s  %-36s  %s\n", "ASSIGNED DEVICE", "DOMAIN", "DOMAIN UUID", "SINCE");
	json_array_foreach(assignments, i, a) {
		char since[64];
		vgm_format_when(json_integer_value(json_object_get(a, "since")), time(NULL), since,
				sizeof(since));
		printf("%-36s  %-20s  %-36s  %s\n", str_or_dash(a, "device_id"),
		       str_or_dash(a, "domain_name"), str_or_dash(a, "domain_uuid"), since);
	}
}

static int cmd_claims(cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "claims [--all] [--json]";
	const char *path = "/v1/claims";
	int r = CLI_OK;
	if (argc > 1 && STREQ(argv[1], "--all")) {
		path = "/v1/claims?all=1";
		argc--;
		argv++;
	}
	r = no_args(ctx, argc, argv, usage);
	json_t *reply = NULL;
	if (r == CLI_OK)
		r = agent_call(ctx, "GET", path, NULL, &reply);
	if (r != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(reply);
	json_t *claims = json_is_array(reply) ? reply : json_object_get(reply, "claims");
	print_claims_table(claims);
	print_assignments_table(json_object_get(reply, "assignments"));
	json_decref(reply);
	return CLI_OK;
}

static int cmd_gc(cli_ctx *ctx, int argc, char **argv)
{
	int r = no_args(ctx, argc, argv, "gc [--json]");
	json_t *reply = NULL;
	if (r == CLI_OK)
		r = agent_call(ctx, "POST", "/v1/gc", NULL, &reply);
	if (r != CLI_OK)
		return r;
	if (ctx->json)
		return cli_print_json(reply);
	/* Numbers first, then what reconcile did, one action per line. */
	json_t *actions = json_incref(json_object_get(reply, "actions"));
	json_object_del(reply, "actions");
	print_fields("", reply);
	size_t i;
	json_t *act;
	json_array_foreach(actions, i, act)
		printf("action: %s\n", json_string_value(act) ? json_string_value(act) : "?");
	json_decref(actions);
	json_decref(reply);
	return CLI_OK;
}

/* Parse `check DOMAIN --to HOST [--xml FILE|-]` into a request body. */
static int check_request(int argc, char **argv, json_t **out)
{
	const char *domain = NULL, *to = NULL, *xml_file = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = STREQ(argv[i], "--to") ? &to : STREQ(argv[i], "--xml") ? &xml_file : NULL;
		if (slot) {
			if (i + 1 >= argc)
				return cli_usage(CHECK_USAGE, "option '%s' needs a value", argv[i]);
			*slot = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage(CHECK_USAGE, "unknown option '%s'", argv[i]);
		else if (!domain)
			domain = argv[i];
		else
			return cli_usage(CHECK_USAGE, "unexpected argument '%s'", argv[i]);
	}
	if (!domain || !to)
		return cli_usage(CHECK_USAGE, "%s", !domain ? "missing DOMAIN" : "missing --to HOST");

	json_t *body = json_pack("{s:s, s:s}", "domain", domain, "to", to);
	if (!body)
		return cli_failf("out of memory");
	if (xml_file) {
		_cleanup_free_ char *xml = NULL;
		int r = STREQ(xml_file, "-") ? vgm_read_fd(0, CHECK_XML_MAX, &xml, NULL)
					     : vgm_read_file(xml_file, CHECK_XML_MAX, &xml, NULL);
		if (r < 0) {
			json_decref(body);
			return cli_failf("cannot read the domain XML '%s': %s", xml_file, strerror(-r));
		}
		json_object_set_new(body, "domain_xml", json_string(xml));
	}
	*out = body;
	return CLI_OK;
}

/* An "unknown" check (a fact nobody could read) does not fail the run. */
static bool check_unknown(json_t *c)
{
	const char *st = json_string_value(json_object_get(c, "status"));
	return st && STREQ(st, "unknown");
}

static bool all_checks_pass(json_t *checks)
{
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c)
		if (!json_is_true(json_object_get(c, "ok")) && !check_unknown(c))
			return false;
	return json_is_array(checks);
}

static void print_checks(json_t *checks)
{
	int width = 4;
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c)
		width = MAX(width, (int)strlen(str_or_dash(c, "name")));
	json_array_foreach(checks, i, c) {
		bool ok = json_is_true(json_object_get(c, "ok"));
		printf("%-4s %-*s  %s\n", ok ? "ok" : check_unknown(c) ? "??" : "FAIL", width,
		       str_or_dash(c, "name"), str_or_dash(c, "message"));
	}
}

static int cmd_check(cli_ctx *ctx, int argc, char **argv)
{
	json_t *body = NULL, *reply = NULL;
	int r = check_request(argc, argv, &body);
	if (r != CLI_OK)
		return r;
	r = agent_call(ctx, "POST", "/v1/check", body, &reply);
	json_decref(body);
	if (r != CLI_OK)
		return r;
	json_t *checks = json_object_get(reply, "checks");
	if (!json_is_array(checks)) {
		json_decref(reply);
		return cli_failf("the agent's check reply has no \"checks\" list; is it the same "
				 "vgpumig version?");
	}
	bool pass = all_checks_pass(checks);
	if (ctx->json) {
		r = cli_print_json(reply);
		return r != CLI_OK ? r : pass ? CLI_OK : CLI_FAILED;
	}
	print_checks(checks);
	json_decref(reply);
	return pass ? CLI_OK : CLI_FAILED;
}

const cli_verb cli_agent_verbs[] = {
	{ "host", cmd_host, "host [--json]" },
	{ "claims", cmd_claims, "claims [--all] [--json]" },
	{ "gc", cmd_gc, "gc [--json]" },
	{ "check", cmd_check, CHECK_USAGE },
	{ NULL, NULL, NULL },
};
