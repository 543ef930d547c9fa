/* public-client.c: the agent-client half of the public API
 * (include/vgpumig/vgpumig.h): claims, migrations, events over the agent's
 * HTTP API.
 *
 * vgpumig_client wraps the internal vgm_client (lib/api/client.c) and adds
 * nothing but the public error shape: requests are sent as text and replies
 * returned as text, so the JSON shapes documented in docs/vgpumigd.md are
 * the contract and no internal struct leaks through soname 0.  Request
 * bodies that the library builds (migrate, event) go through lib/api's
 * encoders, the one place wire keys are written. */
#include <string.h>

#include "api/client.h"
#include "api/wire.h"
#include "public-internal.h"
#include "util/validate.h"

#define DEFAULT_SOCKET "/run/vgpumig/vgpumigd.sock"

struct vgpumig_client {
	vgm_client *c;
};

static int client_wrap(vgm_client *c, vgpumig_client **out, vgpumig_error *err)
{
	vgpumig_client *p = calloc(1, sizeof(*p));

	if (!p) {
		vgm_client_free(c);
		return public_error_set(err, ENOMEM, "out_of_memory", "out of memory");
	}
	p->c = c;
	*out = p;
	return 0;
}

int vgpumig_client_open_unix(const char *socket_path, vgpumig_client **out, vgpumig_error *err)
{
	vgm_client *c = NULL;
	vgm_error e = { 0 };
	int r = vgm_client_new_unix(socket_path ? socket_path : DEFAULT_SOCKET, &c, &e);

	return r < 0 ? public_error_from(err, &e, r) : client_wrap(c, out, err);
}

int vgpumig_client_open_tls(const char *hostport, const char *cert, const char *key,
			    const char *ca, vgpumig_client **out, vgpumig_error *err)
{
	vgm_client *c = NULL;
	vgm_error e = { 0 };
	int r = vgm_client_new_tls(hostport, cert, key, ca, &c, &e);

	return r < 0 ? public_error_from(err, &e, r) : client_wrap(c, out, err);
}

void vgpumig_client_close(vgpumig_client *c)
{
	if (!c)
		return;
	vgm_client_free(c->c);
	free(c);
}

void vgpumig_client_set_timeout(vgpumig_client *c, long connect_ms, long total_ms)
{
	if (c)
		vgm_client_set_timeouts(c->c, connect_ms, total_ms);
}

/* One call with an already-built body (consumed). */
static int call_json(vgpumig_client *c, const char *method, const char *path, json_t *body,
		     char **reply_json, vgpumig_error *err)
{
	_cleanup_(json_decrefp) json_t *b = body;
	json_t *reply = NULL;
	vgm_error e = { 0 };
	long status = 0;
	int r;

	if (!c)
		return public_error_set(err, EINVAL, "invalid_argument", "no client given; open one first");
	r = vgm_client_json(c->c, method, path, b, &status, reply_json ? &reply : NULL, &e);
	if (r < 0)
		return public_error_from(err, &e, r);
	if (reply_json && (r = public_dump(reply, reply_json, err)) < 0)
		return r;
	return (int)status;
}

int vgpumig_client_call(vgpumig_client *c, const char *method, const char *path,
			const char *body_json, char **reply_json, vgpumig_error *err)
{
	json_t *body = NULL;
	json_error_t je;
	char msg[512];

	if (!method || !path || path[0] != '/')
		return public_error_set(err, EINVAL, "invalid_argument",
					"give a method and an API path starting with '/', e.g. GET /v1/host");
	if (body_json && !(body = json_loads(body_json, JSON_REJECT_DUPLICATES, &je))) {
		snprintf(msg, sizeof(msg), "request body for %s %s is not JSON: %s", method, path,
			 je.text);
		return public_error_set(err, EINVAL, "invalid_request", msg);
	}
	return call_json(c, method, path, body, reply_json, err);
}

/* "/v1/<what>/<id><suffix>" after checking id is one of ours (no path tricks). */
static int id_path(const char *what, const char *id, const char *suffix, char *buf, size_t n,
		   vgpumig_error *err)
{
	char label[32];
	vgm_error e = { 0 };
	int r;

	snprintf(label, sizeof(label), "%s id", what);
	if ((r = vgm_check_name(label, id, &e)) < 0)
		return public_error_from(err, &e, r);
	snprintf(buf, n, "/v1/%ss/%s%s", what, id, suffix);
	return 0;
}

int vgpumig_client_host(vgpumig_client *c, char **facts_json, vgpumig_error *err)
{
	int r = call_json(c, "GET", "/v1/host", NULL, facts_json, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_claims(vgpumig_client *c, char **claims_json, vgpumig_error *err)
{
	int r = call_json(c, "GET", "/v1/claims", NULL, claims_json, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_claim(vgpumig_client *c, const char *request_json, char **claim_json,
			 vgpumig_error *err)
{
	_cleanup_(vgm_wire_claim_req_freep) vgm_wire_claim_req *req = NULL;
	vgm_error e = { 0 };
	int r;

	/* decode first: a bad request is refused here with the field named */
	if (!request_json)
		return public_error_set(err, EINVAL, "invalid_request", "no claim request given");
	if ((r = vgm_wire_claim_req_decode(request_json, strlen(request_json), &req, &e)) < 0)
		return public_error_from(err, &e, r);
	r = call_json(c, "POST", "/v1/claims", vgm_wire_claim_req_encode(req), claim_json, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_claim_commit(vgpumig_client *c, const char *claim_id, vgpumig_error *err)
{
	char path[256];
	int r = id_path("claim", claim_id, "/commit", path, sizeof(path), err);
	if (r < 0)
		return r;
	r = call_json(c, "POST", path, NULL, NULL, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_claim_release(vgpumig_client *c, const char *claim_id, vgpumig_error *err)
{
	char path[256];
	int r = id_path("claim", claim_id, "", path, sizeof(path), err);
	if (r < 0)
		return r;
	r = call_json(c, "DELETE", path, NULL, NULL, err);
	return r < 0 ? r : 0;
}

/* The public API's -1 ("agent default") is the wire's "not given". */
static vgm_limit public_limit(int64_t v)
{
	return v < 0 ? VGM_LIMIT_UNSET : vgm_limit_of((uint64_t)v);
}

int vgpumig_client_migrate(vgpumig_client *c, const char *domain, const char *to,
			   const vgpumig_migrate_options *opts, char **migration_json,
			   vgpumig_error *err)
{
	vgm_wire_migration_req req = {
		.domain = (char *)domain,
		.to = (char *)to,
		.max_downtime_ms = public_limit(opts ? opts->max_downtime_ms : -1),
		.bandwidth_bps = public_limit(opts ? opts->bandwidth_bps : -1),
		.timeout_ms = public_limit(opts ? opts->timeout_ms : -1),
		.dry_run = opts && opts->dry_run,
		.force = opts && opts->force,
	};

	if (!domain || !to)
		return public_error_set(err, EINVAL, "invalid_argument",
					"name the domain and the target host");
	int r = call_json(c, "POST", "/v1/migrations", vgm_wire_migration_req_encode(&req),
			  migration_json, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_migration(vgpumig_client *c, const char *id, char **json, vgpumig_error *err)
{
	char path[256] = "/v1/migrations";
	int r = id ? id_path("migration", id, "", path, sizeof(path), err) : 0;
	if (r < 0)
		return r;
	r = call_json(c, "GET", path, NULL, json, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_migration_abort(vgpumig_client *c, const char *id, vgpumig_error *err)
{
	char path[256];
	int r = id_path("migration", id, "/abort", path, sizeof(path), err);
	if (r < 0)
		return r;
	r = call_json(c, "POST", path, NULL, NULL, err);
	return r < 0 ? r : 0;
}

int vgpumig_client_event(vgpumig_client *c, const char *domain_name, const char *domain_uuid,
			 const char *op, const char *sub_op, vgpumig_error *err)
{
	vgm_wire_hook_event ev = {
		.domain_name = (char *)domain_name,
		.domain_uuid = (char *)domain_uuid,
		.op = (char *)op,
		.sub_op = (char *)(sub_op ? sub_op : "-"),
	};

	if (!domain_name || !op)
		return public_error_set(err, EINVAL, "invalid_argument",
					"an event needs the domain name and the operation");
	int r = call_json(c, "POST", "/v1/hook/event", vgm_wire_hook_event_encode(&ev), NULL, err);
	return r < 0 ? r : 0;
}
