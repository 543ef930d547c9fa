/* evac-plan.c: the planning half of an evacuation (route-evacuate.c tells
 * the whole story): the configuration it needs, the running domains with
 * vGPUs (libvirt), each one's predicted pause (this agent's own POST
 * /v1/plan), each target's per-GPU capacity (GET /v1/capacity), and
 * lib/place's answer as the rows the store keeps. */
#include <errno.h>
#include <string.h>

#include "api/wire.h"
#include "evac.h"
#include "migrate/migrate.h"
#include "vgpus.h"

/* ---- configuration snapshot ---- */

void evac_cfg_clear(evac_cfg *c)
{
	free(c->host_name);
	free(c->socket);
	free(c->libvirt_uri);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	vgm_strv_free(c->peers, c->n_peers);
	vgm_strv_free(c->addrs, c->n_peers);
	*c = (evac_cfg){ 0 };
}

char *evac_dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

int evac_cfg_get(agent *a, evac_cfg *c, vgm_error *err)
{
	*c = (evac_cfg){ 0 };
	pthread_mutex_lock(&a->lock);
	const agent_config *cfg = a->cfg;
	bool no_libvirt = agent_config_no_libvirt(cfg);
	c->host_name = evac_dup0(cfg->host_name);
	c->socket = evac_dup0(cfg->socket);
	c->libvirt_uri = evac_dup0(cfg->libvirt_uri);
	c->tls_cert = evac_dup0(cfg->tls_cert);
	c->tls_key = evac_dup0(cfg->tls_key);
	c->tls_ca = evac_dup0(cfg->tls_ca);
	c->peers = calloc(cfg->n_peers + 1, sizeof(*c->peers));
	c->addrs = calloc(cfg->n_peers + 1, sizeof(*c->addrs));
	for (size_t i = 0; c->peers && c->addrs && i < cfg->n_peers; i++, c->n_peers++) {
		c->peers[i] = evac_dup0(cfg->peers[i].name);
		c->addrs[i] = evac_dup0(cfg->peers[i].address);
	}
	pthread_mutex_unlock(&a->lock);
	if (no_libvirt) {
		evac_cfg_clear(c);
		return vgm_error_setr(err, ENOTSUP, "no_libvirt",
				      "this agent runs with libvirt_uri=none; evacuations need libvirt");
	}
	if (!c->host_name || !c->socket || !c->peers || !c->addrs) {
		evac_cfg_clear(c);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static const char *peer_address(const evac_cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (c->peers[i] && STREQ(c->peers[i], name))
			return c->addrs[i];
	return NULL;
}

int self_client(const evac_cfg *c, vgm_client **out, vgm_error *err)
{
	int r = vgm_client_new_unix(c->socket, out, err);
	if (r >= 0)
		vgm_client_set_timeouts(*out, 2000, 60000);
	return r;
}

int peer_client(const evac_cfg *c, const char *name, vgm_client **out, vgm_error *err)
{
	const char *addr = peer_address(c, name);
	if (!addr)
		return vgm_error_setr(err, ENOENT, "unknown_peer",
				      "no peer '%s' in the agent config; add a [peer %s] section or leave it out of --to",
				      name, name);
	int r = vgm_client_new_tls(addr, c->tls_cert, c->tls_key, c->tls_ca, out, err);
	if (r >= 0)
		vgm_client_set_timeouts(*out, 5000, 30000);
	return r;
}

/* ---- the VMs here ---- */

void local_vms_free(local_vm *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		vgm_strv_free(v[i].profiles, v[i].n);
	}
	free(v);
}

/* One running domain: its vGPUs' profiles (0 vGPUs: not for evacuation). */
int read_vm(virDomainPtr dom, const vgm_inventory *inv, bool lab, local_vm *out)
{
	_cleanup_(vgm_lv_domain_freep) vgm_lv_domain *d = NULL;
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *info = NULL;
	agent_vgpu *v = NULL;
	size_t n = 0;
	if (vgm_lv_domain_read(dom, &d, NULL) < 0 || !d->active ||
	    vgm_domxml_inspect(d->xml_live, strlen(d->xml_live), &info, NULL) < 0 ||
	    agent_vgpus_local(info, inv, lab, &v, &n) < 0)
		return 0;
	*out = (local_vm){ .ram = d->memory_bytes, .name = strdup(d->name),
			   .profiles = calloc(n + 1, sizeof(char *)) };
	snprintf(out->uuid, sizeof(out->uuid), "%s", d->uuid);
	for (size_t i = 0; out->profiles && i < n; i++, out->n++)
		out->profiles[i] = strdup(v[i].profile_name ? v[i].profile_name : "unknown");
	agent_vgpus_free(v, n);
	if (n > 0 && out->name && out->profiles && out->n == n)
		return 1;
	free(out->name);
	vgm_strv_free(out->profiles, out->n);
	*out = (local_vm){ 0 };
	return 0;
}

static int discover(agent *a, const evac_cfg *c, local_vm **out, size_t *n, vgm_error *err)
{
	virConnectPtr conn = NULL;
	virDomainPtr *doms = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	int r = vgm_lv_open(c->libvirt_uri, &conn, err);
	if (r >= 0)
		r = vgm_inventory_load(a->host, &inv, err);
	int nd = r >= 0 ? virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE) : 0;
	if (nd < 0)
		r = vgm_error_setr(err, EIO, "libvirt_error", "cannot list the domains of this host");
	*out = calloc((size_t)nd + 1, sizeof(**out));
	*n = 0;
	for (int i = 0; i < nd; i++) {
		if (r >= 0 && *out && read_vm(doms[i], inv, agent_lab_mode(a), &(*out)[*n]) > 0)
			(*n)++;
		virDomainFree(doms[i]);
	}
	free(doms);
	vgm_lv_close(conn);
	if (r >= 0 && !*out)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	return r;
}

/* ---- planning ---- */

void planning_clear(planning *p)
{
	for (size_t i = 0; i < p->n_targets; i++)
		vgm_wire_capacity_free(&p->targets[i]);
	free(p->targets);
	vgm_strv_free(p->refusals, p->n_vms);
	free(p->pvms);
	local_vms_free(p->vms, p->n_vms);
	vgm_placement_free(p->placement);
	*p = (planning){ 0 };
}

/* The predicted pause of one VM towards `to` (this agent's own plan). */
static void predict(vgm_client *self, const local_vm *v, const char *to, vgm_limit max_dt,
		    vgm_place_vm *pv, char **refusal)
{
	vgm_wire_migration_req q = { (char *)v->uuid, (char *)to,
				     max_dt.set ? (int64_t)max_dt.value : -1, -1, -1, false, false };
	json_t *body = vgm_wire_migration_req_encode(&q), *reply = NULL;
	vgm_wire_plan_brief b = { .downtime_s = -1 };
	vgm_error err = { 0 };
	pv->pause_s = -1;
	if (body && vgm_client_json(self, "POST", "/v1/plan", body, NULL, &reply, &err) >= 0 &&
	    vgm_wire_plan_brief_from_json(reply, &b, &err) >= 0) {
		pv->pause_s = b.downtime_s;
		pv->live_refused = !b.ok;
		if (!b.ok)
			*refusal = evac_dup0(b.reason ? b.reason : b.code);
	} else {
		log_info("evacuation: no pause prediction for %s: %s", v->name, vgm_error_message(&err));
	}
	pv->refused_reason = *refusal;
	vgm_wire_plan_brief_clear(&b);
	json_decref(body);
	json_decref(reply);
}

/* The targets: --to, else every peer; each asked for its capacity. */
int load_targets(const evac_cfg *c, const vgm_wire_evac_req *q, planning *p, vgm_error *err)
{
	size_t n = q->n_to ? q->n_to : c->n_peers;
	if (!(p->targets = calloc(n + 1, sizeof(*p->targets))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *name = q->n_to ? q->to[i] : c->peers[i];
		if (STREQ(name, c->host_name))
			return vgm_error_setr(err, EINVAL, "invalid_request",
					      "'%s' is the host being emptied; leave it out of --to", name);
		_cleanup_(vgm_client_freep) vgm_client *pc = NULL;
		int r = peer_client(c, name, &pc, err);
		if (r >= 0)
			r = agent_capacity_fetch(pc, name, &p->targets[p->n_targets], err);
		if (r < 0)
			return r;
		p->n_targets++;
	}
	return 0;
}

int plan_evacuation(agent *a, const evac_cfg *c, const vgm_wire_evac_req *q, planning *p,
			   vgm_error *err)
{
	_cleanup_(vgm_client_freep) vgm_client *self = NULL;
	int r = discover(a, c, &p->vms, &p->n_vms, err);
	if (r >= 0)
		r = load_targets(c, q, p, err);
	if (r >= 0)
		r = self_client(c, &self, err);
	if (r >= 0 && (!(p->pvms = calloc(p->n_vms + 1, sizeof(*p->pvms))) ||
		       !(p->refusals = calloc(p->n_vms + 1, sizeof(*p->refusals)))))
		r = vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < p->n_vms; i++) {
		const local_vm *v = &p->vms[i];
		p->pvms[i] = (vgm_place_vm){ .name = v->name, .profiles = (const char *const *)v->profiles,
					     .n_vgpus = v->n, .ram_bytes = v->ram };
		predict(self, v, p->n_targets ? p->targets[0].name : c->host_name, q->max_downtime_ms,
			&p->pvms[i], &p->refusals[i]);
	}
	vgm_place_input in = { p->pvms, p->n_vms, p->targets, p->n_targets };
	if (r >= 0)
		r = vgm_place(&in, q->cold_fallback, &p->placement, err);
	return r;
}

/* The placement as the evacuation's record (strings borrowed from p). */
vgm_evac_vm *record_vms(const planning *p)
{
	vgm_evac_vm *vms = calloc(p->placement->n + 1, sizeof(*vms));
	for (size_t i = 0; vms && i < p->placement->n; i++) {
		const vgm_place_entry *e = &p->placement->entries[i];
		const vgm_place_vm *pv = &p->pvms[e->vm];
		bool placed = e->target >= 0;
		vms[i] = (vgm_evac_vm){
			.domain_uuid = p->vms[e->vm].uuid, .domain_name = p->vms[e->vm].name,
			.target = placed ? (char *)p->targets[e->target].name : NULL,
			.state = placed ? "pending" : "left_behind",
			/* placed: "" live, "cold" when only a cold move is possible */
			.code = placed && !e->code[0] ? NULL : (char *)e->code,
			.message = placed ? NULL : (char *)e->reason,
			.pause_ms = pv->pause_s >= 0 ? (int64_t)(pv->pause_s * 1000.0 + 0.5) : -1,
		};
	}
	return vms;
}

