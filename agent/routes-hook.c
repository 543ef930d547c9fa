/* routes-hook.c: POST /v1/hook/migrate-begin and POST /v1/hook/event,
 * the agent side of hook/vgpumig-hook (local API only).
 *
 * migrate-begin gets the incoming domain XML (libvirt on this host, the
 * migration TARGET, is waiting for the answer) and answers the XML libvirt
 * should start: byte-identical without vGPUs; else rewritten with the held
 * claim for the domain, or with a claim made now from the profiles the
 * source recorded in the domain's vgpumig metadata.  Before such a claim it
 * runs lib/compat's checks (driver, ECC, NVIDIA's verdict, board, vIOMMU) on
 * what the source recorded there, so a plain `virsh migrate` is refused in
 * the words `vgpumig check` uses.  (A held claim was checked by the source
 * agent when it made it.)  It must never call libvirt (libvirt holds the
 * domain's job while the hook runs).
 *
 * event maps libvirt hook operations to claim and assignment changes; see
 * docs/vgpumigd.md "Hook events" for the table and why. */
#include <string.h>
#include <time.h>

#include "api/wire.h"
#include "compat/compat.h"
#include "metrics.h"
#include "routes.h"
#include "util/validate.h"
#include "vgpus.h"

typedef struct hook_ctx {
	agent_request *req;
	vgm_domain_info *d;
	agent_vgpu *v;
	size_t n;
} hook_ctx;

static int reply_xml(agent_request *req, const char *xml, size_t len)
{
	return agent_reply_text(req, 200, "application/xml", xml, len);
}

/* Map each incoming vGPU through the claim.  Ids already equal to a
 * target (the migrating side wrote the destination XML itself) stay. */
static int build_map(const hook_ctx *h, const vgm_claim *c, vgm_idmap *map, size_t *n_map,
		     vgm_error *err)
{
	*n_map = 0;
	for (size_t i = 0; i < h->n; i++) {
		const char *id = h->v[i].id;
		bool done = false;

		for (size_t j = 0; j < c->n_devices && !done; j++) {
			if (strcasecmp(c->devices[j].source_id, id) == 0) {
				if (!STREQ(c->devices[j].source_id, c->devices[j].target_id))
					map[(*n_map)++] = (vgm_idmap){ id, c->devices[j].target_id };
				done = true;
			} else if (strcasecmp(c->devices[j].target_id, id) == 0) {
				done = true;
			}
		}
		if (!done)
			return vgm_error_setr(err, EBUSY, "claim_mismatch",
					      "claim %s for domain %s does not cover its vGPU %s; release the claim and start the migration again",
					      c->claim_id, h->d->name, id);
	}
	return 0;
}

static int rewrite_with_claim(hook_ctx *h, const vgm_claim *c)
{
	agent_request *req = h->req;
	_cleanup_free_ vgm_idmap *map = calloc(h->n + 1, sizeof(*map));
	_cleanup_free_ char *out = NULL;
	size_t n_map = 0, out_len = 0;
	vgm_error err = { 0 };

	if (!map)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	if (build_map(h, c, map, &n_map, &err) < 0)
		return agent_reply_error(req, &err);
	if (n_map == 0) {
		log_info("hook: domain %s uses claim %s; its vGPU ids need no change", h->d->name,
			 c->claim_id);
		return reply_xml(req, req->body, req->body_len);
	}
	if (vgm_domxml_rewrite(req->body, req->body_len, map, n_map, VGM_REWRITE_ALLOW_UNMAPPED, &out,
			       &out_len, &err) < 0)
		return agent_reply_error(req, &err);
	log_info("hook: domain %s rewritten with claim %s (%zu vGPU id(s) changed)", h->d->name,
		 c->claim_id, n_map);
	return reply_xml(req, out, out_len);
}

#define HOOK_SYNC_TIMEOUT_MS 3000

/* No claim yet: claim now from the metadata's profiles, if it has them all. */
static int claim_from_metadata(hook_ctx *h, vgm_claim **out, vgm_error *err)
{
	agent *a = h->req->a;
	_cleanup_free_ vgm_claim_device_req *devs = calloc(h->n, sizeof(*devs));
	_cleanup_free_ char *host = agent_host_name(a);
	char mig_id[96];
	vgm_claim_request creq;

	if (!devs || !host)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].profile_name)
			return vgm_error_setr(err, ENOENT, "no_claim",
					      "domain %s has vGPUs but no claim on %s and no vgpumig metadata for %s; start the migration with 'vgpumig migrate' or let the source agent record metadata",
					      h->d->name, host, h->v[i].id);
		devs[i] = (vgm_claim_device_req){
			.source_id = h->v[i].id,
			.kind = STREQ(h->v[i].kind, "vf") ? VGM_BACKEND_VF : VGM_BACKEND_MDEV,
			.profile_name = h->v[i].profile_name,
			.framebuffer_bytes = h->v[i].framebuffer_bytes,
			.type_id = h->v[i].type_id,
		};
	}
	snprintf(mig_id, sizeof(mig_id), "hook-%s-%lld", h->d->uuid, (long long)time(NULL));
	creq = (vgm_claim_request){
		.migration_id = mig_id,
		.domain_uuid = h->d->uuid,
		.domain_name = h->d->name ? h->d->name : h->d->uuid,
		.source_host = "hook",
		.devices = devs,
		.n_devices = h->n,
		.lease_seconds = agent_lease_seconds(a),
	};
	/* The in-use view is refreshed once per housekeeping tick; a domain
	 * defined here since then may hold one of these ids.  Refresh it now
	 * (libvirt runs this hook before it adds the incoming domain, so asking
	 * libvirt for the list cannot wait on this migration). */
	if (a->virt && agent_sync_now(a, HOOK_SYNC_TIMEOUT_MS) < 0)
		log_warn("hook: libvirt's domain list did not refresh within %d ms; choosing "
			 "vGPUs for %s from the view of the last tick", HOOK_SYNC_TIMEOUT_MS,
			 h->d->name);
	return vgm_claims_claim(a->store, a->host, &creq, out, err);
}

/* Before claiming: the checks `vgpumig check` runs (lib/compat, same
 * words), on what the source recorded in the domain's metadata against this
 * host's facts; a domain without a record is checked on its XML alone. */
static int check_incoming(hook_ctx *h, vgm_error *err)
{
	agent *a = h->req->a;
	const vgm_meta_source *ms = &h->d->meta_source;
	_cleanup_(vgm_facts_freep) vgm_facts *mine = NULL;
	_cleanup_(vgm_check_list_freep) vgm_check_list *l = NULL;
	_cleanup_free_ vgm_profile_ref *wanted = calloc(h->n + 1, sizeof(*wanted));
	vgm_facts src = { .host_name = ms->host ? ms->host : "the source host",
			  .driver_version = ms->driver_version,
			  .ecc = vgm_ecc_from_string(ms->ecc) };
	vgm_nvml_summary nvml;
	json_t *fj = agent_facts_get(a);
	size_t nw = 0;
	int r = fj && wanted ? vgm_facts_from_json(fj, &mine, err)
			     : vgm_error_set(err, ENOMEM, "out of memory");

	json_decref(fj);
	if (r < 0)
		return r;
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].profile_name)
			wanted[nw++] = (vgm_profile_ref){ h->v[i].profile_name,
							  h->v[i].framebuffer_bytes, 0 };
	agent_nvml_verdict(a, h->d, h->v, h->n, false, mine, &nvml);
	vgm_check_input in = { .source = &src, .target = mine, .domain = h->d, .wanted = wanted,
			       .n_wanted = nw, .nvml = &nvml };
	if ((r = vgm_compat_check_incoming(&in, &l, err)) < 0)
		return r;
	return vgm_check_list_refusal(l, err);
}

static int hook_with_vgpus(hook_ctx *h)
{
	agent_request *req = h->req;
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	vgm_error err = { 0 };
	int r;

	if (!h->d->uuid || !vgm_uuid_valid(h->d->uuid))
		return agent_reply_errorf(req, 400, "invalid_xml",
					  "domain %s has vGPUs but no valid <uuid>",
					  h->d->name ? h->d->name : "?");
	r = vgm_claims_find_by_domain(req->a->store, h->d->uuid, &c, &err);
	if (r == -ENOENT) {
		vgm_error_clear(&err);
		if (check_incoming(h, &err) < 0) {
			log_info("hook: incoming domain %s refused: %s", h->d->name,
				 vgm_error_message(&err));
			return agent_reply_error(req, &err);
		}
		if (claim_from_metadata(h, &c, &err) < 0) {
			return agent_reply_error(req, &err);
		}
		log_info("hook: claimed %zu vGPU(s) for incoming domain %s from its metadata (claim %s)",
			 c->n_devices, h->d->name, c->claim_id);
	} else if (r < 0) {
		return agent_reply_error(req, &err);
	}
	return rewrite_with_claim(h, c);
}

int route_hook_migrate_begin(agent_request *req)
{
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	hook_ctx h = { .req = req };
	vgm_error err = { 0 };
	int r;

	if (!req->body || req->body_len == 0)
		return agent_reply_errorf(req, 400, "invalid_xml", "the hook sent no domain XML");
	if (vgm_domxml_inspect(req->body, req->body_len, &d, &err) < 0) {
		vgm_error_prefix(&err, "incoming domain XML");
		return agent_reply_error(req, &err);
	}
	h.d = d;
	if (agent_vgpus_incoming(d, agent_lab_mode(req->a), &h.v, &h.n) < 0)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	r = h.n == 0 ? reply_xml(req, req->body, req->body_len) : hook_with_vgpus(&h);
	agent_vgpus_free(h.v, h.n);
	return r;
}

/* ---- events ---- */

static bool op_is(const vgm_wire_hook_event *e, const char *op, const char *sub)
{
	return STREQ(e->op, op) && e->sub_op && STREQ(e->sub_op, sub);
}

/* "started begin": the domain's QEMU runs here now (incoming or fresh):
 * a held claim for it becomes an assignment. */
static const char *event_started(agent *a, const vgm_wire_hook_event *e, vgm_error *err)
{
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	int r = vgm_claims_find_by_domain(a->store, e->domain_uuid, &c, err);

	if (r == -ENOENT)
		return "none";
	if (r < 0 || vgm_claims_commit(a->store, a->host, c->claim_id, err) < 0)
		return NULL;
	log_info("hook: domain %s started here: claim %s committed", e->domain_name, c->claim_id);
	agent_metrics_migration(a->metrics, "incoming_committed");
	return "committed";
}

/* "stopped end" / "release end": QEMU is gone.  A held claim (an incoming
 * migration that failed) is released now; assignments are released once
 * the domain has left (checked against libvirt by housekeeping, or at once
 * when the agent runs without libvirt). */
static const char *event_stopped(agent *a, const vgm_wire_hook_event *e, vgm_error *err)
{
	_cleanup_(vgm_claim_freep) vgm_claim *c = NULL;
	size_t n = 0;
	int r = vgm_claims_find_by_domain(a->store, e->domain_uuid, &c, err);

	if (r < 0 && r != -ENOENT)
		return NULL;
	vgm_error_clear(err);
	if (c) {
		if (vgm_claims_release(a->store, a->host, c->claim_id, err) < 0)
			return NULL;
		log_info("hook: domain %s stopped before its claim %s was committed: released",
			 e->domain_name, c->claim_id);
		agent_metrics_migration(a->metrics, "incoming_failed");
		return "released_claim";
	}
	if (a->virt) {
		agent_queue_event(a, e->domain_uuid, e->domain_name);
		return "queued";
	}
	if (vgm_assignment_release_domain(a->store, a->host, e->domain_uuid, &n, err) < 0)
		return NULL;
	if (n)
		log_info("hook: domain %s stopped: released %zu vGPU assignment(s)", e->domain_name, n);
	return n ? "released_assignments" : "none";
}

int route_hook_event(agent_request *req)
{
	_cleanup_(vgm_wire_hook_event_freep) vgm_wire_hook_event *e = NULL;
	vgm_error err = { 0 };
	const char *action = "none";

	if (vgm_wire_hook_event_decode(req->body, req->body_len, &e, &err) < 0)
		return agent_reply_error(req, &err);
	log_debug("hook event: %s %s %s (%s)", e->domain_name, e->op, e->sub_op ? e->sub_op : "-",
		  e->domain_uuid ? e->domain_uuid : "no uuid");
	if (op_is(e, "started", "begin") || op_is(e, "stopped", "end") || op_is(e, "release", "end")) {
		if (!e->domain_uuid)
			return agent_reply_errorf(req, 400, "invalid_request",
						  "field 'domain_uuid' is needed for '%s %s'", e->op, e->sub_op);
		action = op_is(e, "started", "begin") ? event_started(req->a, e, &err) :
							event_stopped(req->a, e, &err);
	}
	if (!action)
		return agent_reply_error(req, &err);
	return agent_reply_json(req, 200, json_pack("{s:s}", "action", action));
}
