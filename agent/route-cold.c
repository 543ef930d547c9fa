/* route-cold.c: cold migration as the SOURCE host runs it
 * (POST /v1/cold-migrations, local) and the TARGET's shared-storage check
 * (POST /v1/disks/check, peer API).
 *
 * The steps and the rollback live in lib/migrate/cold.c; this file supplies
 * its operations table: libvirt on both ends (the target's libvirt_uri from
 * the peer section, as PEER2PEER migration uses it), the target agent's
 * claim API, and this host's store (journal and assignments).  Each phase is
 * journalled under the job's id before it acts, so `vgpumig status` shows
 * how far a cold migration got even after a restart.
 *
 * The request runs to its end in the request's own thread (libmicrohttpd
 * gives each connection one): the CLI waits for the outcome, and no worker
 * outlives the request.  Handlers must not call libvirt only where a hook
 * could be waiting on this agent; the target's hooks talk to the target's
 * agent, so opening connections here is as safe as in route-migrate.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "api/wire.h"
#include "migrate/cold.h"
#include "migrate/migrate.h"
#include "routes.h"
#include "util/validate.h"
#include "vgpus.h"

#define COLD_PEER_TIMEOUT_MS 60000L

/* Test-only fault injection (test builds only, meson option test_hooks):
 * VGPUMIG_TEST_FAIL_AT=<op> makes that operation fail (integration and lab
 * tests assert the rollback with real libvirt). */
static int injected(const char *op, vgm_error *err)
{
#if VGM_TEST_HOOKS
	const char *at = getenv("VGPUMIG_TEST_FAIL_AT");
	if (at && STREQ(at, op))
		return vgm_error_setr(err, EIO, "injected_fault", "%s failed (VGPUMIG_TEST_FAIL_AT)",
				      op);
#else
	(void)op;
	(void)err;
#endif
	return 0;
}

typedef struct cold_ctx {
	agent *a;
	const vgm_wire_cold_req *q;
	char id[48];
	/* config snapshot */
	char *libvirt_uri, *host_name, *tls_cert, *tls_key, *tls_ca;
	char *peer_address, *peer_libvirt_uri;
	bool lab_mode;
	/* the domain here */
	virConnectPtr conn;
	virDomainPtr dom;
	vgm_lv_domain *lvd;
	agent_vgpu *v;
	size_t n;
	/* the target */
	vgm_client *peer;
	virConnectPtr dconn;
	virDomainPtr tdom;
	vgm_wire_claim *claim;
	vgm_idmap *map;
} cold_ctx;

static void cold_ctx_clear(cold_ctx *x)
{
	free(x->libvirt_uri);
	free(x->host_name);
	free(x->tls_cert);
	free(x->tls_key);
	free(x->tls_ca);
	free(x->peer_address);
	free(x->peer_libvirt_uri);
	agent_vgpus_free(x->v, x->n);
	vgm_lv_domain_free(x->lvd);
	if (x->dom)
		virDomainFree(x->dom);
	if (x->tdom)
		virDomainFree(x->tdom);
	vgm_lv_close(x->conn);
	vgm_lv_close(x->dconn);
	vgm_client_free(x->peer);
	vgm_wire_claim_free(x->claim);
	free(x->map);
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* What the job needs from the config, copied under the lock. */
static int cold_cfg_get(cold_ctx *x, vgm_error *err)
{
	int r = 0;
	pthread_mutex_lock(&x->a->lock);
	const agent_config *cfg = x->a->cfg;
	const agent_peer *p = agent_config_find_peer(cfg, x->q->to);
	if (!p)
		r = vgm_error_setr(err, ENOENT, "unknown_peer",
				   "no peer '%s' in %s; add a [peer %s] section with its address and libvirt_uri",
				   x->q->to, cfg->path ? cfg->path : "the agent config", x->q->to);
	else if (agent_config_no_libvirt(cfg))
		r = vgm_error_setr(err, ENOTSUP, "no_libvirt",
				   "this agent runs with libvirt_uri=none; cold migrations need libvirt");
	if (r == 0) {
		x->libvirt_uri = dup0(cfg->libvirt_uri);
		x->host_name = dup0(cfg->host_name);
		x->tls_cert = dup0(cfg->tls_cert);
		x->tls_key = dup0(cfg->tls_key);
		x->tls_ca = dup0(cfg->tls_ca);
		x->peer_address = dup0(p->address);
		x->lab_mode = cfg->lab_mode;
		x->peer_libvirt_uri = agent_peer_libvirt_uri(cfg, p);
	}
	pthread_mutex_unlock(&x->a->lock);
	if (r == 0 && (!x->host_name || !x->peer_address || !x->peer_libvirt_uri))
		r = vgm_error_set(err, ENOMEM, "out of memory");
	return r;
}

/* ---- checks ---- */

static int source_domain(cold_ctx *x, vgm_error *err)
{
	int r = vgm_lv_open(x->libvirt_uri, &x->conn, err);
	if (r >= 0)
		r = vgm_lv_lookup(x->conn, x->q->domain, &x->dom, err);
	if (r >= 0)
		r = vgm_lv_domain_read(x->dom, &x->lvd, err);
	if (r < 0)
		return r;
	if (!x->lvd->active || !x->lvd->xml_persistent)
		return vgm_error_setr(err, EINVAL, "domain_not_running",
				      "domain '%s' must be running and persistent to cold-migrate; start it (or define it) first",
				      x->lvd->name);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *info = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	r = vgm_domxml_inspect(x->lvd->xml_live, strlen(x->lvd->xml_live), &info, err);
	if (r >= 0)
		r = vgm_inventory_load(x->a->host, &inv, err);
	if (r >= 0 && agent_vgpus_local(info, inv, x->lab_mode, &x->v, &x->n) < 0)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	return r;
}

static int open_target(cold_ctx *x, vgm_error *err)
{
	int r = vgm_client_new_tls(x->peer_address, x->tls_cert, x->tls_key, x->tls_ca, &x->peer, err);
	if (r < 0)
		return r;
	vgm_client_set_timeouts(x->peer, 5000, COLD_PEER_TIMEOUT_MS);
	if ((r = vgm_lv_open(x->peer_libvirt_uri, &x->dconn, err)) < 0)
		return r;
	virDomainPtr there = virDomainLookupByUUIDString(x->dconn, x->lvd->uuid);
	if (!there)
		there = virDomainLookupByName(x->dconn, x->lvd->name);
	if (there) {
		virDomainFree(there);
		return vgm_error_setr(err, EEXIST, "domain_exists",
				      "%s already has a domain named '%s' or with its UUID; undefine it there first",
				      x->q->to, x->lvd->name);
	}
	return 0;
}

/* Storage is assumed shared: the target must see every disk before the
 * guest is stopped. */
static int disks_reachable(cold_ctx *x, vgm_error *err)
{
	char **paths = NULL, **missing = NULL;
	size_t n = 0, n_missing = 0;
	const char *xml = x->lvd->xml_persistent;
	int r = vgm_domxml_disk_paths(xml, strlen(xml), &paths, &n, err);
	json_t *body = r >= 0 ? vgm_wire_paths_encode("paths", paths, n) : NULL, *reply = NULL;
	if (r >= 0 && !body)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0)
		r = vgm_client_json(x->peer, "POST", "/v1/disks/check", body, NULL, &reply, err);
	if (r >= 0)
		r = vgm_wire_paths_from_json(reply, "missing", &missing, &n_missing, err);
	if (r >= 0 && n_missing > 0)
		r = vgm_error_setr(err, ENOENT, "storage_unreachable",
				   "%s cannot reach %s%s; cold migration assumes storage shared by both hosts: make it reachable there first",
				   x->q->to, missing[0], n_missing > 1 ? " (and more)" : "");
	vgm_strv_free(paths, n);
	vgm_strv_free(missing, n_missing);
	json_decref(body);
	json_decref(reply);
	return r;
}

static const char *op_source_xml(void *ud)
{
	cold_ctx *x = ud;
	return x->lvd ? x->lvd->xml_persistent : NULL;
}

static int op_check(void *ud, vgm_error *err)
{
	cold_ctx *x = ud;
	int r = source_domain(x, err);
	if (r >= 0)
		r = open_target(x, err);
	if (r >= 0)
		r = disks_reachable(x, err);
	return r;
}

/* ---- claim on the target (same request as a live migration's) ---- */

static int claim_mapping(cold_ctx *x, const vgm_idmap **map, size_t *n, vgm_error *err)
{
	if (!(x->map = calloc(x->claim->n_mapping + 1, sizeof(*x->map))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < x->claim->n_mapping; i++)
		x->map[i] = (vgm_idmap){ x->claim->mapping[i].source_id, x->claim->mapping[i].target_id };
	*map = x->map;
	*n = x->claim->n_mapping;
	return 0;
}

static int op_claim(void *ud, const vgm_idmap **map, size_t *n, vgm_error *err)
{
	cold_ctx *x = ud;
	*map = NULL;
	*n = 0;
	if (x->n == 0)
		return 0;
	_cleanup_free_ vgm_wire_device *devs = calloc(x->n, sizeof(*devs));
	if (!devs)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < x->n; i++)
		devs[i] = (vgm_wire_device){ x->v[i].id, x->v[i].kind, x->v[i].profile_name,
					     x->v[i].framebuffer_bytes, x->v[i].type_id };
	vgm_wire_claim_req req = { x->id, x->lvd->uuid, x->lvd->name, x->host_name, devs, x->n };
	json_t *body = vgm_wire_claim_req_encode(&req), *reply = NULL;
	if (!body)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = vgm_client_json(x->peer, "POST", "/v1/claims", body, NULL, &reply, err);
	json_decref(body);
	if (r >= 0)
		r = vgm_wire_claim_from_json(reply, &x->claim, err);
	json_decref(reply);
	return r < 0 ? r : claim_mapping(x, map, n, err);
}

static int claim_call(cold_ctx *x, const char *method, const char *suffix, vgm_error *err)
{
	if (!x->claim)
		return 0;
	char path[256];
	snprintf(path, sizeof(path), "/v1/claims/%s%s", x->claim->claim_id, suffix);
	return vgm_client_json(x->peer, method, path, NULL, NULL, NULL, err);
}

static int op_commit_target(void *ud, vgm_error *err)
{
	return claim_call(ud, "POST", "/commit", err);
}

static int op_release_target(void *ud, vgm_error *err)
{
	return claim_call(ud, "DELETE", "", err);
}

/* ---- libvirt on both ends ---- */

static int op_shutdown(void *ud, uint64_t timeout_ms, vgm_error *err)
{
	return vgm_lv_shutdown_wait(((cold_ctx *)ud)->dom, timeout_ms, err);
}

static int op_destroy(void *ud, vgm_error *err)
{
	return vgm_lv_destroy(((cold_ctx *)ud)->dom, err);
}

static int op_define_target(void *ud, const char *xml, vgm_error *err)
{
	cold_ctx *x = ud;
	if (injected("define_target", err) < 0)
		return -EIO;
	return vgm_lv_define(x->dconn, xml, &x->tdom, err);
}

static int op_start_target(void *ud, vgm_error *err)
{
	cold_ctx *x = ud;
	agent_test_crash_point(x->a, "cold_start_target");
	if (injected("start_target", err) < 0)
		return -EIO;
	return vgm_lv_start(x->tdom, err);
}

static int op_undefine_target(void *ud, vgm_error *err)
{
	cold_ctx *x = ud;
	return vgm_lv_undefine_uuid(x->dconn, x->lvd->uuid, err);
}

static int op_start_source(void *ud, vgm_error *err)
{
	return vgm_lv_start(((cold_ctx *)ud)->dom, err);
}

/* The definition lives on the target now; keeping it here would let both
 * hosts start the VM.  Then its vGPUs here are free. */
static int op_release_source(void *ud, vgm_error *err)
{
	cold_ctx *x = ud;
	size_t n = 0;
	int r = vgm_lv_undefine(x->dom, err);
	if (r >= 0)
		r = vgm_assignment_release_domain(x->a->store, x->a->host, x->lvd->uuid, &n, err);
	return r;
}

static void op_record(void *ud, const char *phase, const char *outcome, const char *detail)
{
	cold_ctx *x = ud;
	vgm_journal_append(x->a->store, x->id, x->q->domain, phase, outcome, detail, NULL);
	log_info("cold migration %s (%s -> %s): %s %s%s%s", x->id, x->q->domain, x->q->to, phase,
		 outcome, detail ? ": " : "", detail ? detail : "");
}

static const vgm_cold_ops cold_ops = {
	.check = op_check,
	.source_xml = op_source_xml,
	.claim = op_claim,
	.shutdown = op_shutdown,
	.destroy = op_destroy,
	.define_target = op_define_target,
	.start_target = op_start_target,
	.commit_target = op_commit_target,
	.release_source = op_release_source,
	.undefine_target = op_undefine_target,
	.start_source = op_start_source,
	.release_target = op_release_target,
	.record = op_record,
};

/* ---- routes ---- */

/* Run one cold migration to its end; *res says how it ended. */
int agent_cold_migrate(agent *a, const vgm_wire_cold_req *q, char id[48], vgm_cold_result *res,
		       vgm_error *err)
{
	cold_ctx x = { .a = a, .q = q };
	char uuid[VGM_UUID_LEN + 1];
	if (!id[0] && vgm_uuid_generate(uuid) < 0)
		return vgm_error_set(err, ENOMEM, "cannot generate a job id");
	if (!id[0])
		snprintf(id, 48, "cold-%s", uuid);
	snprintf(x.id, sizeof(x.id), "%s", id);
	int r = cold_cfg_get(&x, err);
	if (r >= 0 && STREQ(x.host_name, q->to))
		r = vgm_error_setr(err, EINVAL, "invalid_request",
				   "'%s' is this host; cold-migrate to another host", q->to);
	if (r >= 0) {
		vgm_cold_opts o = { .shutdown_timeout_ms = vgm_limit_or(q->shutdown_timeout_ms, 0),
				    .force = q->force };
		r = vgm_cold_run(&cold_ops, &x, &o, res, err);
	}
	cold_ctx_clear(&x);
	return r;
}

int route_cold_create(agent_request *req)
{
	_cleanup_(vgm_wire_cold_req_freep) vgm_wire_cold_req *q = NULL;
	vgm_error err = { 0 };
	if (vgm_wire_cold_req_decode(req->body ? req->body : "", req->body_len, &q, &err) < 0)
		return agent_reply_error(req, &err);
	char id[48] = "";
	vgm_cold_result res;
	if (agent_cold_migrate(req->a, q, id, &res, &err) < 0)
		return agent_reply_error(req, &err);
	vgm_wire_cold_result out = { id, q->domain, q->to, res.warnings[0] ? res.warnings : NULL };
	json_t *body = vgm_wire_cold_result_encode(&out);
	return body ? agent_reply_json(req, 200, body)
		    : agent_reply_errorf(req, 500, "internal", "out of memory");
}

/* Peer API: which of these paths does this host not see?  Existence only
 * (stat); nothing is opened or read. */
int route_disks_check(agent_request *req)
{
	char **paths = NULL, **missing = NULL;
	size_t n = 0, n_missing = 0;
	vgm_error err = { 0 };
	if (vgm_wire_paths_decode(req->body ? req->body : "", req->body_len, "paths", &paths, &n,
				  &err) < 0)
		return agent_reply_error(req, &err);
	if (!(missing = calloc(n + 1, sizeof(*missing)))) {
		vgm_strv_free(paths, n);
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	}
	struct stat st;
	for (size_t i = 0; i < n; i++)
		if (stat(paths[i], &st) < 0)
			missing[n_missing++] = paths[i];
	json_t *body = vgm_wire_paths_encode("missing", missing, n_missing);
	free(missing); /* borrowed strings */
	vgm_strv_free(paths, n);
	return body ? agent_reply_json(req, 200, body)
		    : agent_reply_errorf(req, 500, "internal", "out of memory");
}
