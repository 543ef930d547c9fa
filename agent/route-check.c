/* route-check.c: POST /v1/check (local) and GET /v1/types (peer).
 *
 * POST /v1/check {"domain": NAME|UUID, "to": PEER, "postcopy"?: bool,
 *                 "domain_xml"?: "<domain...>"}
 *   -> 200 {"domain", "from", "to", "ok", "checks": [{"name","host","ok","code","message"}]}
 * This agent is the source.  It reads the domain (libvirt, on a read-only
 * connection of its own; this route is never on a hook path, so it cannot
 * deadlock with libvirt; or, only when the agent runs with libvirt_uri=none,
 * the request's domain_xml, for tests), finds its vGPUs and their profiles
 * (this host's inventory, else the domain's vgpumig metadata), takes its own
 * facts, asks the peer over mutual TLS for its facts (GET /v1/host) and the
 * profiles it can still give (GET /v1/types), then runs lib/compat's checks.
 * A failed check is a 200 with ok=false: the request worked, the migration
 * would not.  Only failing to run the checks at all (unknown peer, peer
 * unreachable, domain unreadable) is an error reply.
 *
 * GET /v1/types -> {"host", "profiles": [{"name","framebuffer_bytes","available"}]}
 *   per profile name and framebuffer: exactly what a claim of that profile
 *   alone could get now (vgm_store_capacity: the claims engine's own count,
 *   with per-GPU caps, the homogeneous rule, and devices of every defined
 *   domain taken), so check, dry-run and migrate agree. */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "api/client.h"
#include "compat/compat.h"
#include "migrate/migrate.h"
#include "routes.h"
#include "util/validate.h"
#include "vgpus.h"

#define CHECK_PEER_CONNECT_MS 2000L
#define CHECK_PEER_TIMEOUT_MS 10000L

typedef struct check_cfg {
	char *host_name, *libvirt_uri, *tls_cert, *tls_key, *tls_ca, *peer_address;
	bool lab_mode, no_libvirt;
	vgm_protocol_range protocol; /* what this agent speaks */
} check_cfg;

static void check_cfg_clear(check_cfg *c)
{
	free(c->host_name);
	free(c->libvirt_uri);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->peer_address);
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Copy what the check needs from the config, under the lock. */
static int check_cfg_get(agent *a, const char *to, check_cfg *c, vgm_error *err)
{
	int r = 0;
	pthread_mutex_lock(&a->lock);
	const agent_config *cfg = a->cfg;
	const agent_peer *p = agent_config_find_peer(cfg, to);
	if (!p)
		r = vgm_error_setr(err, ENOENT, "unknown_peer",
				   "no peer '%s' in %s; add a [peer %s] section with its address", to,
				   cfg->path ? cfg->path : "the agent config", to);
	else if (!cfg->tls_cert || !cfg->tls_key || !cfg->tls_ca)
		r = vgm_error_setr(err, EINVAL, "no_tls",
				   "this agent has no tls_cert, tls_key and tls_ca, so it cannot ask "
				   "peer '%s' for its facts; set them in %s",
				   to, cfg->path ? cfg->path : "the agent config");
	else {
		c->host_name = dup0(cfg->host_name);
		c->libvirt_uri = dup0(cfg->libvirt_uri);
		c->tls_cert = dup0(cfg->tls_cert);
		c->tls_key = dup0(cfg->tls_key);
		c->tls_ca = dup0(cfg->tls_ca);
		c->peer_address = dup0(p->address);
		c->lab_mode = cfg->lab_mode;
		c->protocol = a->protocol;
		c->no_libvirt = agent_config_no_libvirt(cfg);
	}
	pthread_mutex_unlock(&a->lock);
	if (r == 0 && (!c->host_name || !c->tls_cert || !c->tls_key || !c->tls_ca ||
		       !c->peer_address || !c->libvirt_uri))
		r = vgm_error_set(err, ENOMEM, "out of memory");
	return r;
}

/* The domain's XML: from libvirt, or from the request when there is none. */
static int domain_xml(const check_cfg *c, const char *domain, const char *given, char **out,
		      vgm_error *err)
{
	if (c->no_libvirt) {
		if (!given)
			return vgm_error_setr(err, EINVAL, "invalid_request",
					      "this agent runs with libvirt_uri=none; send the domain "
					      "XML in field 'domain_xml' (vgpumig check --xml FILE)");
		*out = strdup(given);
		return *out ? 0 : vgm_error_set(err, ENOMEM, "out of memory");
	}
	if (given)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "field 'domain_xml' is only for an agent without libvirt; this "
				      "one reads domain '%s' from %s",
				      domain, c->libvirt_uri);
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	_cleanup_(vgm_lv_domain_freep) vgm_lv_domain *d = NULL;
	int r = vgm_lv_open(c->libvirt_uri, &conn, err);
	if (r >= 0)
		r = vgm_lv_lookup(conn, domain, &dom, err);
	if (r >= 0)
		r = vgm_lv_domain_read(dom, &d, err);
	if (dom)
		virDomainFree(dom);
	vgm_lv_close(conn);
	if (r < 0)
		return r;
	*out = TAKE_PTR(d->xml_live);
	return 0;
}

/* ---- the domain's vGPUs ---- */

typedef struct wanted_set {
	agent_vgpu *local, *incoming;
	size_t n_local, n_incoming;
	vgm_profile_ref *refs; /* point into local/incoming */
	size_t n_refs;
	const char *unknown; /* first vGPU whose profile nobody knows */
} wanted_set;

static void wanted_clear(wanted_set *w)
{
	agent_vgpus_free(w->local, w->n_local);
	agent_vgpus_free(w->incoming, w->n_incoming);
	free(w->refs);
}

static bool has_id(const agent_vgpu *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i].id, id) == 0)
			return true;
	return false;
}

/* This host's inventory first (the domain runs here), then the metadata. */
static int wanted_load(agent *a, const vgm_domain_info *d, bool lab, wanted_set *w,
		       vgm_error *err)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	int r = vgm_inventory_load(a->host, &inv, err);
	if (r < 0)
		return r;
	if (agent_vgpus_local(d, inv, lab, &w->local, &w->n_local) < 0 ||
	    agent_vgpus_incoming(d, NULL, lab, &w->incoming, &w->n_incoming) < 0 ||
	    !(w->refs = calloc(w->n_local + w->n_incoming + 1, sizeof(*w->refs))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n_local; i++)
		w->refs[w->n_refs++] = (vgm_profile_ref){ w->local[i].profile_name,
							  w->local[i].framebuffer_bytes, 0 };
	for (size_t i = 0; i < w->n_incoming; i++) {
		const agent_vgpu *v = &w->incoming[i];
		if (has_id(w->local, w->n_local, v->id))
			continue;
		if (!v->profile_name) {
			if (!w->unknown)
				w->unknown = v->id;
			continue;
		}
		w->refs[w->n_refs++] = (vgm_profile_ref){ v->profile_name, v->framebuffer_bytes, 0 };
	}
	return 0;
}

/* ---- the peer ---- */

typedef struct peer_view {
	json_t *facts_json, *types_json;
	vgm_facts *facts;
	vgm_profile_ref *offered; /* names point into types_json */
	size_t n_offered;
} peer_view;

static void peer_view_clear(peer_view *p)
{
	json_decref(p->facts_json);
	json_decref(p->types_json);
	vgm_facts_free(p->facts);
	free(p->offered);
}

static int offered_from_json(json_t *types, peer_view *p, const char *peer, vgm_error *err)
{
	json_t *arr = json_object_get(types, "profiles"), *it;
	size_t i;
	if (!json_is_array(arr) || json_array_size(arr) > 4096)
		return vgm_error_setr(err, EPROTO, "bad_reply",
				      "peer %s sent no usable profile list (GET /v1/types)", peer);
	if (!(p->offered = calloc(json_array_size(arr) + 1, sizeof(*p->offered))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, it) {
		const char *name = json_string_value(json_object_get(it, "name"));
		json_int_t fb = json_integer_value(json_object_get(it, "framebuffer_bytes"));
		json_int_t av = json_integer_value(json_object_get(it, "available"));
		if (!name || fb < 0 || av < 0 || av > 1000000)
			return vgm_error_setr(err, EPROTO, "bad_reply",
					      "peer %s sent a malformed profile entry %zu", peer, i);
		p->offered[p->n_offered++] = (vgm_profile_ref){ name, (uint64_t)fb, (unsigned)av };
	}
	return 0;
}

static int peer_view_load(const check_cfg *c, const char *to, peer_view *p, vgm_error *err)
{
	_cleanup_(vgm_client_freep) vgm_client *cl = NULL;
	int r = vgm_client_new_tls(c->peer_address, c->tls_cert, c->tls_key, c->tls_ca, &cl, err);
	if (r < 0)
		return r;
	vgm_client_set_timeouts(cl, CHECK_PEER_CONNECT_MS, CHECK_PEER_TIMEOUT_MS);
	vgm_client_set_protocol(cl, c->protocol);
	if ((r = vgm_client_json(cl, "GET", "/v1/host", NULL, NULL, &p->facts_json, err)) < 0 ||
	    (r = vgm_facts_from_json(p->facts_json, &p->facts, err)) < 0) {
		vgm_error_prefix(err, "asking peer %s for its facts", to);
		return r;
	}
	if ((r = vgm_client_json(cl, "GET", "/v1/types", NULL, NULL, &p->types_json, err)) < 0) {
		vgm_error_prefix(err, "asking peer %s for its vGPU profiles", to);
		return r;
	}
	return offered_from_json(p->types_json, p, to, err);
}

/* ---- the check ---- */

typedef struct check_req {
	const char *domain, *to, *xml;
	bool postcopy;
} check_req;

static int check_req_parse(json_t *body, check_req *q, vgm_error *err)
{
	json_t *pc = json_object_get(body, "postcopy");
	q->domain = json_string_value(json_object_get(body, "domain"));
	q->to = json_string_value(json_object_get(body, "to"));
	q->xml = json_string_value(json_object_get(body, "domain_xml"));
	if (!q->domain || !q->domain[0] || strlen(q->domain) > 256)
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "field 'domain' is missing or not a domain name or UUID");
	if (!q->to || !vgm_name_valid(q->to))
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "field 'to' is missing or not a peer name");
	if ((pc && !json_is_boolean(pc)) ||
	    (json_object_get(body, "domain_xml") && !q->xml))
		return vgm_error_setr(err, EINVAL, "invalid_request",
				      "field 'postcopy' must be true or false and 'domain_xml' a string");
	q->postcopy = json_is_true(pc);
	return 0;
}

static json_t *unknown_profile_check(const char *host, const char *domain, const char *id)
{
	char msg[512];
	snprintf(msg, sizeof(msg),
		 "vGPU %s of domain %s is not on %s and the domain's vgpumig metadata does not "
		 "name its profile; record it with the source agent or give the profile",
		 id, domain, host);
	return json_pack("{s:s, s:s, s:b, s:s, s:s}", "name", "profile", "host", host, "ok", 0,
			 "code", "profile_unknown", "message", msg);
}

static int run_checks(agent *a, const check_req *q, const check_cfg *c, json_t **out,
		      vgm_error *err)
{
	_cleanup_free_ char *xml = NULL;
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	_cleanup_(vgm_facts_freep) vgm_facts *mine = NULL;
	_cleanup_(vgm_check_list_freep) vgm_check_list *list = NULL;
	wanted_set w = { 0 };
	peer_view p = { 0 };
	json_t *facts = agent_facts_get(a);
	int r = domain_xml(c, q->domain, q->xml, &xml, err);
	if (r >= 0)
		r = vgm_domxml_inspect(xml, strlen(xml), &d, err);
	if (r >= 0)
		r = wanted_load(a, d, c->lab_mode, &w, err);
	if (r >= 0)
		r = facts ? vgm_facts_from_json(facts, &mine, err)
			  : vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0)
		r = peer_view_load(c, q->to, &p, err);
	vgm_nvml_summary nvml = { .verdict = -1 };
	if (r >= 0 && w.n_local) /* the domain's vGPUs run here: ask NVML now */
		agent_nvml_verdict(a, d, w.local, w.n_local, true, p.facts, &nvml);
	else if (r >= 0)
		agent_nvml_verdict(a, d, w.incoming, w.n_incoming, false, p.facts, &nvml);
	if (r >= 0) {
		vgm_check_input in = { .source = mine, .target = p.facts, .domain = d,
				       .wanted = w.refs, .n_wanted = w.n_refs, .offered = p.offered,
				       .n_offered = p.n_offered, .postcopy = q->postcopy,
				       .nvml = &nvml };
		r = vgm_compat_check(&in, &list, err);
	}
	json_t *checks = r >= 0 ? vgm_check_list_to_json(list) : NULL;
	if (checks && w.unknown)
		json_array_append_new(checks, unknown_profile_check(c->host_name, q->domain, w.unknown));
	if (r >= 0 && !checks)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0)
		*out = json_pack("{s:s, s:s, s:s, s:b, s:o}", "domain", d->name ? d->name : q->domain,
				 "from", c->host_name, "to", q->to, "ok",
				 list->n_failed == 0 && !w.unknown, "checks", checks);
	if (r >= 0 && !*out)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	json_decref(facts);
	wanted_clear(&w);
	peer_view_clear(&p);
	return r;
}

int route_check(agent_request *req)
{
	vgm_error err = { 0 };
	json_t *body = agent_request_json(req), *out = NULL;
	if (!body)
		return 0; /* agent_request_json replied */
	check_req q = { 0 };
	check_cfg c = { 0 };
	int r = check_req_parse(body, &q, &err);
	if (r >= 0)
		r = check_cfg_get(req->a, q.to, &c, &err);
	if (r >= 0)
		r = run_checks(req->a, &q, &c, &out, &err);
	check_cfg_clear(&c);
	json_decref(body);
	return r < 0 ? agent_reply_error(req, &err) : agent_reply_json(req, 200, out);
}

/* ---- GET /v1/types ---- */

/* Add n to the entry for (name, fb), making it when new. */
static int tally(json_t *profiles, const char *name, uint64_t fb, unsigned n)
{
	size_t i;
	json_t *it;
	json_array_foreach(profiles, i, it) {
		if (STREQ(json_string_value(json_object_get(it, "name")), name) &&
		    (uint64_t)json_integer_value(json_object_get(it, "framebuffer_bytes")) == fb) {
			json_int_t v = json_integer_value(json_object_get(it, "available"));
			return json_object_set_new(it, "available", json_integer(v + n));
		}
	}
	return json_array_append_new(profiles, json_pack("{s:s, s:I, s:I}", "name", name,
							 "framebuffer_bytes", (json_int_t)fb,
							 "available", (json_int_t)n));
}

int route_types(agent_request *req)
{
	vgm_error err = { 0 };
	vgm_profile_capacity *cap = NULL;
	size_t n = 0;
	if (vgm_store_capacity(req->a->store, req->a->host, &cap, &n, &err) < 0)
		return agent_reply_error(req, &err);
	json_t *profiles = json_array();
	int r = profiles ? 0 : -1;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = tally(profiles, cap[i].profile_name, cap[i].framebuffer_bytes, cap[i].available);
	vgm_profile_capacity_free(cap, n);
	_cleanup_free_ char *host = agent_host_name(req->a);
	if (r < 0 || !host) {
		json_decref(profiles);
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	}
	return agent_reply_json(req, 200,
				json_pack("{s:s, s:o}", "host", host, "profiles", profiles));
}
