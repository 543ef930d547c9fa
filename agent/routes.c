/* routes.c: the route table, path matching and the reply helpers.
 *
 * Every reply goes through agent_reply_*, which records the status for the
 * request metrics and logs server errors once.  Other helpers add routes by
 * adding one line to agent_routes[] and one declaration to routes.h. */
#include "routes.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <microhttpd.h>

#include "api/wire.h"

const agent_route agent_routes[] = {
	{ "GET", "/v1/host", route_host, .peer = true },
	{ "GET", "/v1/devices", route_devices, .peer = false },
	{ "GET", "/metrics", route_metrics, .peer = false },
	{ "POST", "/v1/gc", route_gc, .peer = false },
	{ "POST", "/v1/claims", route_claims_create, .peer = true },
	{ "GET", "/v1/claims", route_claims_list, .peer = true },
	{ "GET", "/v1/claims/{}", route_claim_get, .peer = true },
	{ "POST", "/v1/claims/{}/commit", route_claim_commit, .peer = true },
	{ "DELETE", "/v1/claims/{}", route_claim_release, .peer = true },
	{ "POST", "/v1/hook/migrate-begin", route_hook_migrate_begin, .max_body = AGENT_MAX_XML,
	  .content_type = "application/xml" },
	{ "POST", "/v1/hook/event", route_hook_event, .peer = false },
	{ "POST", "/v1/plan", route_plan, .peer = false },
	{ "POST", "/v1/migrations", route_migrations_create, .peer = false },
	{ "GET", "/v1/migrations", route_migrations_list, .peer = false },
	{ "GET", "/v1/migrations/{}", route_migration_get, .peer = false },
	{ "POST", "/v1/migrations/{}/abort", route_migration_abort, .peer = false },
	{ "POST", "/v1/check", route_check, .max_body = AGENT_MAX_XML },   /* route-check.c */
	{ "GET", "/v1/types", route_types, .peer = true },                  /* route-check.c */
	{ "POST", "/v1/cold-migrations", route_cold_create, .peer = false }, /* route-cold.c */
	{ "POST", "/v1/disks/check", route_disks_check, .peer = true },      /* route-cold.c */
	{ "GET", "/v1/capacity", route_capacity, .peer = true },             /* route-capacity.c */
	{ "POST", "/v1/evacuations", route_evacuations_create, .peer = false }, /* route-evacuate.c */
	{ "GET", "/v1/evacuations", route_evacuations_list, .peer = false },
	{ "GET", "/v1/evacuations/{}", route_evacuation_get, .peer = false },
	{ .method = NULL },
};

/* Match path against pattern segment by segment; "{}" captures one. */
static bool path_match(const char *pattern, const char *path, agent_request *req)
{
	size_t n = 0;

	while (*pattern && *path) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			size_t len = strcspn(path, "/");

			if (len == 0 || len >= sizeof(req->params[0]) || n >= AGENT_MAX_PARAMS)
				return false;
			memcpy(req->params[n], path, len);
			req->params[n++][len] = '\0';
			pattern += 2;
			path += len;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	if (*pattern || *path)
		return false;
	req->n_params = n;
	return true;
}

const agent_route *agent_route_match(const char *method, const char *path, bool peer_api,
				     agent_request *req, bool *allowed_other)
{
	*allowed_other = false;
	for (const agent_route *r = agent_routes; r->method; r++) {
		if (peer_api && !r->peer)
			continue;
		if (!path_match(r->pattern, path, req))
			continue;
		if (STREQ(r->method, method))
			return r;
		*allowed_other = true;
	}
	req->n_params = 0;
	return NULL;
}

static int queue(agent_request *req, int status, struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (!resp)
		return -ENOMEM;
	r = MHD_queue_response(req->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	req->status = status;
	req->replied = true;
	return r == MHD_YES ? 0 : -EIO;
}

int agent_reply_text(agent_request *req, int status, const char *content_type, const char *text,
		     size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return queue(req, status, resp);
}

int agent_reply_json(agent_request *req, int status, json_t *body)
{
	char *text;
	struct MHD_Response *resp;

	if (!body)
		return agent_reply_errorf(req, 500, "internal", "out of memory building the reply");
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		return agent_reply_errorf(req, 500, "internal", "out of memory building the reply");
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return -ENOMEM;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return queue(req, status, resp);
}

static int reply_error_body(agent_request *req, int status, const char *code, const char *msg)
{
	char *text;
	struct MHD_Response *resp;
	json_t *o = vgm_wire_error_encode(code, msg);

	if (status >= 500)
		log_error("%s %s: %s", req->method, req->url, msg);
	else
		log_debug("%s %s: %d %s: %s", req->method, req->url, status, code, msg);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return -ENOMEM;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return -ENOMEM;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return queue(req, status, resp);
}

int agent_reply_error(agent_request *req, const vgm_error *e)
{
	const char *code = e && e->reason[0] ? e->reason : "internal";

	return reply_error_body(req, vgm_wire_error_status(e), code, vgm_error_message(e));
}

int agent_reply_errorf(agent_request *req, int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_error_body(req, status, code, msg);
}

json_t *agent_request_json(agent_request *req)
{
	vgm_error err = { 0 };
	json_t *o = NULL;

	if (vgm_wire_parse_object(req->body, req->body_len, &o, &err) < 0) {
		agent_reply_error(req, &err);
		return NULL;
	}
	return o;
}

const char *agent_request_query(agent_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}
