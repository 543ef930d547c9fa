/* routes-host.c: GET /v1/host, GET /v1/devices, GET /metrics, POST /v1/gc,
 * POST /v1/host/cordon, POST /v1/host/uncordon.
 *
 * Read-only views of this host, except gc, which runs the same reconcile
 * as the housekeeping timer and reports what it did, and the cordon, which
 * the store keeps (it survives restarts) and its claims engine enforces. */
#include <stdio.h>
#include <string.h>

#include "api/wire.h"
#include "metrics.h"
#include "api/wire.h"
#include "routes.h"
#include "util/validate.h"

/* The peers and how migrations to each travel: local API only (a peer need
 * not learn this host's other peers). */
static json_t *peers_json(agent *a)
{
	vgm_wire_peer_info *p;
	char **uris;
	json_t *o = NULL;
	size_t n;

	pthread_mutex_lock(&a->lock);
	n = a->cfg->n_peers;
	p = calloc(n + 1, sizeof(*p));
	uris = calloc(n + 1, sizeof(*uris));
	for (size_t i = 0; p && uris && i < n; i++) {
		const agent_peer *c = &a->cfg->peers[i];

		uris[i] = agent_peer_libvirt_uri(a->cfg, c);
		p[i] = (vgm_wire_peer_info){ c->name, c->address, uris[i] ? uris[i] : "",
					     agent_peer_migration_tls(a->cfg, c) };
	}
	if (p && uris)
		o = vgm_wire_peers_encode(p, n);
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; uris && i < n; i++)
		free(uris[i]);
	free(uris);
	free(p);
	return o;
}

/* The facts with the cordon state, which changes without a facts refresh. */
static int reply_host(agent_request *req, int status)
{
	json_t *facts = agent_facts_get(req->a);
	_cleanup_free_ char *why = NULL;
	bool cordoned = false;
	vgm_error err = { 0 };

	if (!facts)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	if (vgm_host_cordon_get(req->a->store, &cordoned, &why, &err) < 0) {
		json_decref(facts);
		return agent_reply_error(req, &err);
	}
	if (vgm_wire_cordon_set(facts, cordoned, why) < 0) {
		json_decref(facts);
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	}
	if (!req->peer_api)
		json_object_set_new(facts, "peers", peers_json(req->a));
	/* protocol_version is the version this caller and we share (the highest
	 * both speak), so a peer of the previous release, which compares it for
	 * equality, sees its own; protocol_oldest tells newer peers our range. */
	json_object_set_new(facts, "protocol_version",
			    json_integer(vgm_protocol_common(req->a->protocol, req->protocol)));
	return agent_reply_json(req, status, facts);
}

int route_host(agent_request *req)
{
	return reply_host(req, 200);
}

int route_host_cordon(agent_request *req)
{
	_cleanup_free_ char *reason = NULL;
	vgm_error err = { 0 };
	bool on = STREQ(req->params[0], "cordon");

	if (!on && !STREQ(req->params[0], "uncordon"))
		return agent_reply_errorf(req, 404, "not_found",
					  "no /v1/host/%s; use /v1/host/cordon or /v1/host/uncordon",
					  req->params[0]);
	if (vgm_wire_cordon_req_decode(req->body ? req->body : "", req->body_len, &reason, &err) < 0 ||
	    vgm_host_cordon_set(req->a->store, on, reason, &err) < 0)
		return agent_reply_error(req, &err);
	_cleanup_free_ char *host = agent_host_name(req->a);
	log_info("host %s: incoming migrations are %s%s%s", host ? host : "?",
		 on ? "refused (cordoned)" : "accepted again (uncordoned)", reason ? ": " : "",
		 reason ? reason : "");
	return reply_host(req, 200);
}

int route_devices(agent_request *req)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	vgm_error err = { 0 };

	if (vgm_inventory_load(req->a->host, &inv, &err) < 0)
		return agent_reply_error(req, &err);
	return agent_reply_json(req, 200, vgm_inventory_devices_json(inv));
}

int route_gc(agent_request *req)
{
	vgm_error err = { 0 };
	json_t *report = NULL;

	if (agent_gc(req->a, &report, &err) < 0)
		return agent_reply_error(req, &err);
	return agent_reply_json(req, 200, report);
}

/* Is id among the target devices of live claims (state) or assignments? */
static bool id_in(const char *id, char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (STREQ(ids[i], id))
			return true;
	return false;
}

typedef struct owned_ids {
	char **claimed;
	size_t n_claimed;
	char **assigned;
	size_t n_assigned;
} owned_ids;

static void owned_ids_clear(owned_ids *o)
{
	for (size_t i = 0; i < o->n_claimed; i++)
		free(o->claimed[i]);
	for (size_t i = 0; i < o->n_assigned; i++)
		free(o->assigned[i]);
	free(o->claimed);
	free(o->assigned);
}

static int owned_ids_load(agent *a, owned_ids *o, vgm_error *err)
{
	vgm_claim *claims = NULL;
	vgm_assignment *asg = NULL;
	size_t nc = 0, na = 0, total = 0;
	int r;

	if ((r = vgm_claims_list(a->store, false, &claims, &nc, err)) < 0)
		return r;
	for (size_t i = 0; i < nc; i++)
		total += claims[i].state == VGM_CLAIM_HELD ? claims[i].n_devices : 0;
	o->claimed = calloc(total + 1, sizeof(char *));
	for (size_t i = 0; o->claimed && i < nc; i++)
		for (size_t j = 0; claims[i].state == VGM_CLAIM_HELD && j < claims[i].n_devices; j++)
			o->claimed[o->n_claimed++] = TAKE_PTR(claims[i].devices[j].target_id);
	vgm_claims_free(claims, nc);
	if ((r = vgm_assignments_list(a->store, &asg, &na, err)) < 0)
		return r;
	o->assigned = calloc(na + 1, sizeof(char *));
	for (size_t i = 0; o->assigned && i < na; i++)
		o->assigned[o->n_assigned++] = TAKE_PTR(asg[i].device_id);
	vgm_assignments_free(asg, na);
	if (!o->claimed || !o->assigned)
		return vgm_error_set(err, ENOMEM, "out of memory");
	return 0;
}

static void format_devices(agent *a, FILE *out)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	owned_ids own = { 0 };
	size_t free_n = 0, claimed = 0, assigned = 0;

	if (vgm_inventory_load(a->host, &inv, NULL) < 0 || owned_ids_load(a, &own, NULL) < 0) {
		owned_ids_clear(&own);
		return;
	}
	for (size_t i = 0; i < inv->n_instances; i++) {
		const char *id = inv->instances[i].id;

		if (id_in(id, own.assigned, own.n_assigned))
			assigned++;
		else if (id_in(id, own.claimed, own.n_claimed))
			claimed++;
		else
			free_n++;
	}
	owned_ids_clear(&own);
	fprintf(out, "# HELP vgpumig_devices vGPU instances on this host by state.\n"
		     "# TYPE vgpumig_devices gauge\n"
		     "vgpumig_devices{state=\"free\"} %zu\n"
		     "vgpumig_devices{state=\"claimed\"} %zu\n"
		     "vgpumig_devices{state=\"assigned\"} %zu\n",
		free_n, claimed, assigned);
}

static void format_claims(agent *a, FILE *out)
{
	vgm_store_counts c;

	if (vgm_store_counts_get(a->store, &c, NULL) < 0)
		return;
	fputs("# HELP vgpumig_claims Claims in the store by state.\n# TYPE vgpumig_claims gauge\n", out);
	for (int st = VGM_CLAIM_PENDING; st <= VGM_CLAIM_EXPIRED; st++)
		fprintf(out, "vgpumig_claims{state=\"%s\"} %zu\n", vgm_claim_state_to_string(st),
			c.claims[st]);
	fprintf(out, "# HELP vgpumig_assignments Devices assigned to domains.\n"
		     "# TYPE vgpumig_assignments gauge\nvgpumig_assignments %zu\n",
		c.assignments);
}

int route_metrics(agent_request *req)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	format_devices(req->a, out);
	format_claims(req->a, out);
	agent_metrics_format(req->a->metrics, out);
	fclose(out);
	return agent_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
