/* routes-claims.c: POST/GET /v1/claims, GET /v1/claims/{id},
 * POST /v1/claims/{id}/commit, DELETE /v1/claims/{id} (local and peer API).
 *
 * Thin: decode with lib/api/wire (which validates every id), call the
 * store's claims engine (durable before it returns, so the reply never
 * promises more than the disk holds), encode the claim.
 *
 * Authorisation on the peer API: a claim belongs to the peer whose
 * certificate made it (its source_host is that peer's name; a body naming
 * another host is refused).  A peer sees, commits and releases only its own
 * claims (others' are 404), and may not release a committed one.  Local
 * admins see and may change everything.  Every change is journalled with
 * req->actor. */
#include <string.h>

#include "api/wire.h"
#include "routes.h"
#include "util/validate.h"

json_t *agent_claim_json(const vgm_claim *c)
{
	vgm_wire_claim w = {
		.claim_id = c->claim_id,
		.migration_id = c->migration_id,
		.domain_uuid = c->domain_uuid,
		.domain_name = c->domain_name,
		.source_host = c->source_host,
		.state = (char *)vgm_claim_state_to_string(c->state),
		.stage = (char *)vgm_claim_stage(c),
		.expires_at = c->expires_at,
		.n_mapping = c->n_devices,
	};
	_cleanup_free_ vgm_wire_mapping *map = calloc(c->n_devices + 1, sizeof(*map));

	if (!map)
		return NULL;
	for (size_t i = 0; i < c->n_devices; i++)
		map[i] = (vgm_wire_mapping){ c->devices[i].source_id, c->devices[i].target_id,
					     c->devices[i].profile_name, c->devices[i].created };
	w.mapping = map;
	return vgm_wire_claim_encode(&w);
}

/* Store request from a decoded wire request (borrowing its strings). */
static int claim_from_wire(agent *a, const vgm_wire_claim_req *w, vgm_claim_device_req *devs,
			   vgm_claim_request *req)
{
	for (size_t i = 0; i < w->n_devices; i++)
		devs[i] = (vgm_claim_device_req){
			.source_id = w->devices[i].source_id,
			.kind = STREQ(w->devices[i].kind, "vf") ? VGM_BACKEND_VF : VGM_BACKEND_MDEV,
			.profile_name = w->devices[i].profile_name,
			.framebuffer_bytes = w->devices[i].framebuffer_bytes,
			.type_id = w->devices[i].type_id,
		};
	*req = (vgm_claim_request){
		.migration_id = w->migration_id,
		.domain_uuid = w->domain_uuid,
		.domain_name = w->domain_name,
		.source_host = w->source_host,
		.devices = devs,
		.n_devices = w->n_devices,
		.lease_seconds = agent_lease_seconds(a),
	};
	return 0;
}

/* The store's view of the caller: peers are held to their own claims. */
static vgm_claim_caller claim_caller(const agent_request *req)
{
	return (vgm_claim_caller){
		.actor = req->actor,
		.owner = req->peer_name,
		.keep_committed = req->peer_name != NULL,
	};
}

int route_claims_create(agent_request *req)
{
	_cleanup_(vgm_wire_claim_req_freep) vgm_wire_claim_req *w = NULL;
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	_cleanup_free_ vgm_claim_device_req *devs = NULL;
	vgm_claim_request sreq;
	vgm_error err = { 0 };

	if (vgm_wire_claim_req_decode(req->body, req->body_len, &w, &err) < 0)
		return agent_reply_error(req, &err);
	if (req->peer_name && w->source_host && !STREQ(w->source_host, req->peer_name)) {
		log_warn("claim refused: %s asked for a claim as source_host '%s'", req->actor,
			 w->source_host);
		return agent_reply_errorf(req, 403, "forbidden",
					  "source_host '%.64s' is not the peer your certificate names "
					  "('%s'); a peer claims only for itself",
					  w->source_host, req->peer_name);
	}
	devs = calloc(w->n_devices, sizeof(*devs));
	if (!devs)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	claim_from_wire(req->a, w, devs, &sreq);
	if (req->peer_name)
		sreq.source_host = req->peer_name;
	sreq.requested_by = req->actor;
	if (vgm_claims_claim(req->a->store, req->a->host, &sreq, &c, &err) < 0) {
		log_info("claim for %s (%s, migration %s) from %s refused: %s", w->domain_name,
			 w->domain_uuid, w->migration_id, req->actor, vgm_error_message(&err));
		return agent_reply_error(req, &err);
	}
	agent_test_crash_point(req->a, "claim-after-write");
	log_info("claim %s for %s (migration %s, %zu vGPU(s)) held until %lld, asked by %s",
		 c->claim_id, c->domain_name, c->migration_id, c->n_devices,
		 (long long)c->expires_at, req->actor);
	return agent_reply_json(req, 201, agent_claim_json(c));
}

static bool visible(const agent_request *req, const vgm_claim *c)
{
	return !req->peer_name || STREQ(c->source_host, req->peer_name);
}

/* An assignment a peer may see: made from one of its own claims.  Looked up
 * in the store (not in the listed page), so old claims count too. */
static bool from_own_claim(agent_request *req, const vgm_assignment *as)
{
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;

	return as->from_claim && vgm_claims_get(req->a->store, as->from_claim, &c, NULL) == 0 &&
	       visible(req, c);
}

int route_claims_list(agent_request *req)
{
	const char *all_s = agent_request_query(req, "all");
	bool all = all_s && (STREQ(all_s, "1") || STREQ(all_s, "true") || STREQ(all_s, "yes"));
	vgm_claim *claims = NULL;
	vgm_assignment *asg = NULL;
	size_t n = 0, n_asg = 0;
	vgm_error err = { 0 };
	json_t *arr, *assigned;

	if (vgm_claims_list(req->a->store, all, &claims, &n, &err) < 0)
		return agent_reply_error(req, &err);
	if (vgm_assignments_list(req->a->store, &asg, &n_asg, &err) < 0) {
		vgm_claims_free(claims, n);
		return agent_reply_error(req, &err);
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (visible(req, &claims[i]))
			json_array_append_new(arr, agent_claim_json(&claims[i]));
	/* What each claim became: the devices domains on this host hold now. */
	assigned = json_array();
	for (size_t i = 0; assigned && i < n_asg; i++)
		if (!req->peer_name || from_own_claim(req, &asg[i]))
			json_array_append_new(assigned,
				      json_pack("{s:s, s:s, s:s?, s:I, s:s?}", "device_id",
						asg[i].device_id, "domain_uuid", asg[i].domain_uuid,
						"domain_name", asg[i].domain_name, "since",
						(json_int_t)asg[i].since, "from_claim",
						asg[i].from_claim));
	vgm_claims_free(claims, n);
	vgm_assignments_free(asg, n_asg);
	if (!arr || !assigned) {
		json_decref(arr);
		json_decref(assigned);
		return agent_reply_json(req, 200, NULL);
	}
	return agent_reply_json(req, 200,
				json_pack("{s:o, s:o}", "claims", arr, "assignments", assigned));
}

/* The {id} of /v1/claims/{id}: a UUID, checked before the store sees it. */
static const char *claim_id_param(agent_request *req)
{
	const char *id = req->params[0];

	if (!vgm_uuid_valid(id)) {
		agent_reply_errorf(req, 400, "invalid_id", "claim id '%.64s' is not a UUID", id);
		return NULL;
	}
	return id;
}

static int reply_claim(agent_request *req, const char *id)
{
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	vgm_error err = { 0 };

	if (vgm_claims_get(req->a->store, id, &c, &err) < 0)
		return agent_reply_error(req, &err);
	if (!visible(req, c))
		return agent_reply_errorf(req, 404, "not_found", "no claim %s for %s", id,
					  req->peer_name);
	return agent_reply_json(req, 200, agent_claim_json(c));
}

int route_claim_get(agent_request *req)
{
	const char *id = claim_id_param(req);

	return id ? reply_claim(req, id) : 0;
}

int route_claim_commit(agent_request *req)
{
	const char *id = claim_id_param(req);
	vgm_error err = { 0 };

	vgm_claim_caller who = claim_caller(req);

	if (!id)
		return 0;
	if (vgm_claims_commit_as(req->a->store, req->a->host, id, &who, &err) < 0)
		return agent_reply_error(req, &err);
	agent_test_crash_point(req->a, "commit-after-write");
	log_info("claim %s committed by %s", id, req->actor);
	return reply_claim(req, id);
}

int route_claim_release(agent_request *req)
{
	const char *id = claim_id_param(req);
	vgm_error err = { 0 };

	vgm_claim_caller who = claim_caller(req);

	if (!id)
		return 0;
	if (vgm_claims_release_as(req->a->store, req->a->host, id, &who, &err) < 0) {
		if (STREQ(err.reason, "claim_committed"))
			log_warn("refused to release claim %s for %s: %s", id, req->actor,
				 vgm_error_message(&err));
		return agent_reply_error(req, &err);
	}
	log_info("claim %s released by %s", id, req->actor);
	return reply_claim(req, id);
}
