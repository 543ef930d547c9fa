/* routes.h: the agent's HTTP routes and the request/reply helpers they use.
 *
 * A route is one line in agent_routes[] (routes.c):
 *     { "POST", "/v1/claims/{}/commit", route_claim_commit, .peer = true },
 * "{}" matches one path segment (no '/'), captured in req->params[] in
 * order.  Routes are local-only unless .peer is set; the peer API (mTLS)
 * answers 404 for the others.  Bodies are read by http.c up to .max_body
 * (0: AGENT_MAX_JSON) and refused with 413 beyond, before any handler runs;
 * a POST with a body must carry .content_type (NULL: application/json).
 *
 * A handler replies exactly once, with agent_reply_json, agent_reply_text
 * or agent_reply_error, and returns 0 (or -errno if even that failed). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "agent.h"

#define AGENT_MAX_JSON (256u * 1024)      /* default body limit */
#define AGENT_MAX_CLAIM (64u * 1024)      /* claims: 64 devices need ~20 KiB */
#define AGENT_MAX_EVENT (16u * 1024)      /* hook events: a few names */
#define AGENT_MAX_XML (16u * 1024 * 1024) /* 16 MiB: hook domain XML */
#define AGENT_MAX_PARAMS 4

struct MHD_Connection;
struct MHD_Response;

/* Who may call what.  Local callers: root, the agent's uid and members of
 * socket_group are ADMIN; members of socket_read_group are READ (routes
 * marked .read only); others get nothing.  Peer API callers are PEER, with
 * the [peer NAME] their certificate proved in req->peer_name. */
typedef enum agent_role {
	AGENT_ROLE_NONE = 0,
	AGENT_ROLE_READ,
	AGENT_ROLE_ADMIN,
	AGENT_ROLE_PEER,
} agent_role;

typedef struct agent_request {
	agent *a;
	struct MHD_Connection *conn;
	const struct agent_route *route;
	const char *method;
	const char *url;
	bool peer_api;                  /* arrived on the mTLS peer API */
	agent_role role;
	const char *peer_name;          /* peer API: the authenticated peer, else NULL */
	char actor[160];                /* who asked, for logs and the journal:
					   "peer host-a" or "uid 0" */
	vgm_protocol_range protocol;    /* the caller's, from its Vgpumig-Protocol header */
	char params[AGENT_MAX_PARAMS][129];
	size_t n_params;
	char *body;                     /* NUL-terminated, may be NULL */
	size_t body_len;
	size_t body_limit;
	bool body_too_large;
	int status;                     /* set by the reply helpers */
	bool replied;
	double started;                 /* monotonic seconds */
} agent_request;

typedef struct agent_route {
	const char *method;
	const char *pattern;
	int (*handler)(agent_request *req);
	bool peer;                /* also on the peer API */
	bool read;                /* the read-only local role may call it */
	size_t max_body;          /* 0: AGENT_MAX_JSON */
	const char *content_type; /* for bodies; NULL: application/json */
} agent_route;

extern const agent_route agent_routes[]; /* ends with { NULL } */

/* Find the route for method + path: *allowed_other is set when the path
 * matches a route with another method (405, not 404). */
const agent_route *agent_route_match(const char *method, const char *path, bool peer_api,
				     agent_request *req, bool *allowed_other);

/* ---- replies ---- */
int agent_reply_json(agent_request *req, int status, json_t *body); /* steals body */
int agent_reply_text(agent_request *req, int status, const char *content_type,
		     const char *text, size_t len);
/* {"code","message"} with the status vgm_wire_error_status() gives. */
int agent_reply_error(agent_request *req, const vgm_error *e);
int agent_reply_errorf(agent_request *req, int status, const char *code, const char *fmt, ...)
	_printf_(4, 5);

/* Parse req's body as a JSON object (replying 400 itself on failure). */
json_t *agent_request_json(agent_request *req);
/* Query string value or NULL. */
const char *agent_request_query(agent_request *req, const char *key);

/* JSON form of a store claim (wire.h's claim reply). */
json_t *agent_claim_json(const vgm_claim *c);

/* ---- handlers ---- */
int route_host(agent_request *req);
int route_host_cordon(agent_request *req); /* POST /v1/host/{cordon,uncordon} */
int route_devices(agent_request *req);
int route_metrics(agent_request *req);
int route_gc(agent_request *req);
int route_claims_create(agent_request *req);
int route_claims_list(agent_request *req);
int route_claim_get(agent_request *req);
int route_claim_commit(agent_request *req);
int route_claim_release(agent_request *req);
int route_hook_migrate_begin(agent_request *req);
int route_hook_event(agent_request *req);
int route_plan(agent_request *req);              /* plan.c */
int route_migrations_create(agent_request *req); /* route-migrate.c */
int route_migrations_list(agent_request *req);
int route_migration_get(agent_request *req);
int route_migration_abort(agent_request *req);
int route_check(agent_request *req); /* route-check.c */
int route_types(agent_request *req); /* route-check.c */
int route_cold_create(agent_request *req); /* route-cold.c */
int route_disks_check(agent_request *req);

struct vgm_wire_cold_req;
struct vgm_cold_result;
/* Run one cold migration from this host to its end (route-cold.c).  id is
 * the job's id (claims are idempotent per id, so a job run again after a
 * restart finds its claim): "" makes a new one, written back.  Used by the
 * route and by evacuation. */
int agent_cold_migrate(agent *a, const struct vgm_wire_cold_req *q, char id[48],
		       struct vgm_cold_result *res, vgm_error *err);

int route_capacity(agent_request *req); /* route-capacity.c */
struct vgm_client;
struct vgm_place_target;
/* GET /v1/capacity of a peer, decoded (free with vgm_wire_capacity_free). */
int agent_capacity_fetch(struct vgm_client *peer, const char *name, struct vgm_place_target *out,
			 vgm_error *err);

int route_evacuations_create(agent_request *req); /* route-evacuate.c */
int route_evacuations_list(agent_request *req);
int route_evacuation_get(agent_request *req);
/* Resume a running evacuation found in the store (after the API is up), and
 * stop and join its threads (before anything they use is freed). */
void agent_evacuations_resume(agent *a);
void agent_evacuations_stop(agent *a);
