/* job-ops.c: the operations lib/migrate/job.c drives, as this agent does
 * them: libvirt here and on the target (short-lived connections of the
 * worker's own), the target's agent over mutual TLS, this host's store and
 * journal.  Each op also keeps the record `vgpumig status` shows (under the
 * manager's lock).
 *
 * libvirt: the worker opens its own connections.  This is safe next to the
 * rule "handlers never call libvirt": the only hook that blocks on an agent
 * during a migration runs on the TARGET (migrate begin) and talks to the
 * target's agent; libmicrohttpd gives every request its own thread, so a
 * hook event arriving here meanwhile is served.
 *
 * The target's host facts and types are fetched in a thread of their own
 * while inspect reads the domain (start-to-libvirt overhead); peer_check
 * joins it. */
#include <errno.h>
#include <string.h>

#include "api/client.h"
#include "compat/compat.h"
#include "migrations.h"
#include "util/validate.h"
#include "vgpus.h"

#define MIG_PEER_TIMEOUT_MS 60000L /* claims queue behind each other on a busy target */

/* ---- configuration snapshot ---- */

void mig_cfg_clear(mig_cfg *c)
{
	free(c->libvirt_uri);
	free(c->host_name);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->peer_name);
	free(c->peer_address);
	free(c->peer_libvirt_uri);
	memset(c, 0, sizeof(*c));
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

int mig_cfg_get(agent *a, const char *to, mig_cfg *c, vgm_error *err)
{
	memset(c, 0, sizeof(*c));
	int r = 0;
	pthread_mutex_lock(&a->lock);
	const agent_config *cfg = a->cfg;
	const agent_peer *p = to ? agent_config_find_peer(cfg, to) : NULL;
	if (to && !p) {
		r = vgm_error_setr(err, ENOENT, "unknown_peer",
				   "no peer '%s' in %s; add a [peer %s] section with its address and libvirt_uri",
				   to, cfg->path ? cfg->path : "the agent config", to);
	} else if (agent_config_no_libvirt(cfg)) {
		r = vgm_error_setr(err, ENOTSUP, "no_libvirt",
				   "this agent runs with libvirt_uri=none; migrations need libvirt");
	} else {
		c->libvirt_uri = dup0(cfg->libvirt_uri);
		c->host_name = dup0(cfg->host_name);
		c->tls_cert = dup0(cfg->tls_cert);
		c->tls_key = dup0(cfg->tls_key);
		c->tls_ca = dup0(cfg->tls_ca);
		c->lab_mode = cfg->lab_mode;
		if (p) {
			c->peer_name = dup0(p->name);
			c->peer_address = dup0(p->address);
			c->peer_libvirt_uri = agent_peer_libvirt_uri(cfg, p);
			c->migration_tls = agent_peer_migration_tls(cfg, p);
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (r == 0 && (!c->host_name || (to && (!c->peer_name || !c->peer_libvirt_uri)))) {
		mig_cfg_clear(c);
		r = vgm_error_set(err, ENOMEM, "out of memory");
	}
	return r;
}

/* ---- the domain as this host sees it ---- */


void prep_clear(prep *p)
{
	agent_vgpus_free(p->v, p->n);
	vgm_domain_info_free(p->info);
	vgm_lv_domain_free(p->lvd);
	if (p->dom)
		virDomainFree(p->dom);
	vgm_lv_close(p->conn);
	memset(p, 0, sizeof(*p));
}

int prep_domain(agent *a, const mig_cfg *c, const char *domain, prep *p, vgm_error *err)
{
	memset(p, 0, sizeof(*p));
	int r = vgm_lv_open(c->libvirt_uri, &p->conn, err);
	if (r >= 0)
		r = vgm_lv_lookup(p->conn, domain, &p->dom, err);
	if (r >= 0)
		r = vgm_lv_domain_read(p->dom, &p->lvd, err);
	if (r < 0)
		return r;
	if (!p->lvd->active)
		return vgm_error_setr(err, EINVAL, "domain_not_running",
				      "domain '%s' is not running; start it, or use 'vgpumig cold-migrate'",
				      p->lvd->name);
	r = vgm_domxml_inspect(p->lvd->xml_live, strlen(p->lvd->xml_live), &p->info, err);
	if (r < 0)
		return r;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	r = vgm_inventory_load(a->host, &inv, err);
	if (r < 0)
		return r;
	if (agent_vgpus_local(p->info, inv, c->lab_mode, &p->v, &p->n) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++) {
		p->vgpu_declared_bytes += p->v[i].framebuffer_bytes;
		/* Lab vGPUs have no device behind them: QEMU moves nothing. */
		if (p->v[i].lab)
			p->lab_vgpus = true;
		else
			p->vgpu_state_bytes += p->v[i].framebuffer_bytes;
	}
	return 0;
}


/* ---- the worker's context ---- */

struct job_ctx {
	agent *a;
	mig *m;
	mig_cfg c;
	prep p;
	vgm_client *peer;
	struct peer_fetch *pf;
	double rate_sum; /* memory_bps samples while RAM moved */
	unsigned rate_n;
};

/* What the target says about itself (GET /v1/host, GET /v1/types), fetched
 * in a thread of its own while this host inspects the domain. */
typedef struct peer_fetch {
	job_ctx *j;
	json_t *facts, *types;
	int r;
	vgm_error err;
	pthread_t t;
	bool started;
} peer_fetch;

static void *peer_fetch_main(void *arg)
{
	peer_fetch *pf = arg;
	vgm_client *c = pf->j->peer;
	pf->r = vgm_client_json(c, "GET", "/v1/host", NULL, NULL, &pf->facts, &pf->err);
	if (pf->r >= 0)
		pf->r = vgm_client_json(c, "GET", "/v1/types", NULL, NULL, &pf->types, &pf->err);
	if (pf->r < 0)
		vgm_error_prefix(&pf->err, "target %s is not ready", pf->j->m->to);
	return NULL;
}

static int ensure_peer(job_ctx *j, vgm_error *err)
{
	if (j->peer)
		return 0;
	int r = vgm_client_new_tls(j->c.peer_address, j->c.tls_cert, j->c.tls_key, j->c.tls_ca,
				   &j->peer, err);
	if (r >= 0) {
		vgm_client_set_timeouts(j->peer, 5000, MIG_PEER_TIMEOUT_MS);
		vgm_client_set_protocol(j->peer, j->a->protocol); /* a->protocol is fixed at start */
	}
	return r;
}

static int peer_fetch_start(job_ctx *j, peer_fetch *pf, vgm_error *err)
{
	*pf = (peer_fetch){ .j = j };
	int r = ensure_peer(j, err);
	if (r < 0)
		return r;
	if (pthread_create(&pf->t, NULL, peer_fetch_main, pf) != 0)
		return vgm_error_set(err, EAGAIN, "cannot start a thread");
	pf->started = true;
	return 0;
}

static void peer_fetch_clear(peer_fetch *pf)
{
	if (pf->started)
		pthread_join(pf->t, NULL);
	pf->started = false;
	json_decref(pf->facts);
	json_decref(pf->types);
	pf->facts = pf->types = NULL;
}

/* The target's vGPU profiles; the strings point into pf->types. */
static int peer_offered(const peer_fetch *pf, vgm_profile_ref **out, size_t *n, vgm_error *err)
{
	json_t *arr = json_object_get(pf->types, "profiles"), *it;
	size_t i;
	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) > 4096)
		return vgm_error_setr(err, EPROTO, "bad_reply", "%s sent no usable profile list",
				      pf->j->m->to);
	if (!(*out = calloc(json_array_size(arr) + 1, sizeof(**out))))
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, it) {
		const char *name = json_string_value(json_object_get(it, "name"));
		json_int_t fb = json_integer_value(json_object_get(it, "framebuffer_bytes"));
		json_int_t av = json_integer_value(json_object_get(it, "available"));
		if (name && fb >= 0 && av >= 0 && av <= 1000000)
			(*out)[(*n)++] = (vgm_profile_ref){ name, (uint64_t)fb, (unsigned)av };
	}
	return 0;
}

/* lib/compat's checks on both hosts' facts, the domain and the profiles. */
static int run_compat(job_ctx *j, const peer_fetch *pf, const vgm_facts *tf, vgm_error *err)
{
	json_t *mine = agent_facts_get(j->a);
	_cleanup_(vgm_facts_freep) vgm_facts *sf = NULL;
	_cleanup_(vgm_check_list_freep) vgm_check_list *l = NULL;
	_cleanup_free_ vgm_profile_ref *offered = NULL;
	_cleanup_free_ vgm_profile_ref *wanted = calloc(j->p.n + 1, sizeof(*wanted));
	size_t n_offered = 0;
	int r = mine ? vgm_facts_from_json(mine, &sf, err) : vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0 && !wanted)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0)
		r = peer_offered(pf, &offered, &n_offered, err);
	for (size_t i = 0; r >= 0 && i < j->p.n; i++)
		wanted[i] = (vgm_profile_ref){ j->p.v[i].profile_name ? j->p.v[i].profile_name : "",
					       j->p.v[i].framebuffer_bytes, 0 };
	vgm_nvml_summary nvml;
	agent_nvml_verdict(j->a, j->p.info, j->p.v, j->p.n, true, tf, &nvml);
	vgm_check_input in = { sf, tf, j->p.info, wanted, j->p.n, offered, n_offered, false, &nvml };
	if (r >= 0)
		r = vgm_compat_check(&in, &l, err);
	if (r >= 0)
		r = vgm_check_list_refusal(l, err);
	json_decref(mine);
	return r;
}


/* ---- libvirt here ---- */

static int op_inspect(void *ctx, vgm_job *job, vgm_job_domain *d, vgm_error *err)
{
	job_ctx *j = ctx;
	(void)job;
	int r = peer_fetch_start(j, j->pf, err);
	if (r >= 0)
		r = prep_domain(j->a, &j->c, j->m->domain, &j->p, err);
	if (r < 0)
		return r;
	const vgm_lv_domain *l = j->p.lvd;
	d->name = strdup(l->name);
	d->xml_live = strdup(l->xml_live);
	d->xml_persistent = l->xml_persistent ? strdup(l->xml_persistent) : NULL;
	if (!d->name || !d->xml_live || (l->xml_persistent && !d->xml_persistent))
		return vgm_error_set(err, ENOMEM, "out of memory");
	snprintf(d->uuid, sizeof(d->uuid), "%s", l->uuid);
	d->memory_bytes = l->memory_bytes;
	d->n_vgpus = j->p.n;
	d->vgpu_state_bytes = j->p.vgpu_state_bytes;
	double link = jobs_cached_link(j->a->jobs, j->c.peer_name).link_bps, dirty = 0;
	if (link > 0)
		d->link_bps = vgm_limit_of((uint64_t)link);
	if (jobs_cached_dirty(j->a->jobs, l->uuid, &dirty))
		d->dirty_rate_bps = vgm_limit_of((uint64_t)dirty);
	agent_jobs *m = j->a->jobs;
	pthread_mutex_lock(&m->lock);
	snprintf(j->m->domain_uuid, sizeof(j->m->domain_uuid), "%s", l->uuid);
	j->m->vgpu_bytes = j->p.vgpu_declared_bytes;
	j->m->n_vgpus = j->p.n;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- the target's agent ---- */

/* The target answered, and lib/compat finds nothing that stops the
 * migration (versions, protocol, driver, ECC, board, profile, vIOMMU). */
static int op_peer_check(void *ctx, vgm_job *job, vgm_error *err)
{
	job_ctx *j = ctx;
	peer_fetch *pf = j->pf;
	(void)job;
	if (pf->started) {
		pthread_join(pf->t, NULL);
		pf->started = false;
	}
	if (pf->r < 0) {
		*err = pf->err;
		return pf->r;
	}
	_cleanup_(vgm_facts_freep) vgm_facts *tf = NULL;
	int r = vgm_facts_from_json(pf->facts, &tf, err);
	if (r >= 0)
		r = run_compat(j, pf, tf, err);
	return r;
}

static int claim_to_job(const vgm_wire_claim *w, vgm_job_claim *out, vgm_error *err)
{
	out->claim_id = strdup(w->claim_id);
	out->source_ids = calloc(w->n_mapping + 1, sizeof(char *));
	out->target_ids = calloc(w->n_mapping + 1, sizeof(char *));
	if (!out->claim_id || !out->source_ids || !out->target_ids)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n_mapping; i++, out->n++) {
		out->source_ids[i] = strdup(w->mapping[i].source_id);
		out->target_ids[i] = strdup(w->mapping[i].target_id);
		if (!out->source_ids[i] || !out->target_ids[i])
			return vgm_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static json_t *claim_body(job_ctx *j)
{
	_cleanup_free_ vgm_wire_device *devs = calloc(j->p.n + 1, sizeof(*devs));
	if (!devs)
		return NULL;
	for (size_t i = 0; i < j->p.n; i++)
		devs[i] = (vgm_wire_device){ j->p.v[i].id, j->p.v[i].kind, j->p.v[i].profile_name,
					     j->p.v[i].framebuffer_bytes, j->p.v[i].type_id };
	vgm_wire_claim_req req = { j->m->id, j->p.lvd->uuid, j->p.lvd->name, j->c.host_name, devs,
				   j->p.n };
	return vgm_wire_claim_req_encode(&req);
}

static int op_peer_claim(void *ctx, vgm_job *job, vgm_job_claim *out, vgm_error *err)
{
	job_ctx *j = ctx;
	_cleanup_(json_decrefp) json_t *body = claim_body(j);
	_cleanup_(json_decrefp) json_t *reply = NULL;
	if (!body)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = vgm_client_json(j->peer, "POST", "/v1/claims", body, NULL, &reply, err);
	/* A claim is idempotent per migration id: after a timeout the target may
	 * hold it already, so ask again rather than leave it to its lease. */
	for (int retry = 0; r < 0 && retry < 2 && STREQ(err->reason, "agent_timeout"); retry++) {
		vgm_journal_append(j->a->store, j->m->id, j->m->domain, "claim", "retry",
				   err->message, NULL);
		vgm_error_clear(err);
		r = vgm_client_json(j->peer, "POST", "/v1/claims", body, NULL, &reply, err);
	}
	_cleanup_(vgm_wire_claim_freep) vgm_wire_claim *w = NULL;
	if (r >= 0)
		r = vgm_wire_claim_from_json(reply, &w, err);
	if (r >= 0)
		r = claim_to_job(w, out, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&j->a->jobs->lock);
	j->m->claim = json_incref(reply);
	pthread_mutex_unlock(&j->a->jobs->lock);
	(void)job;
	return 0;
}

static int claim_call(job_ctx *j, const char *method, const char *claim_id, const char *suffix,
		      vgm_error *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/v1/claims/%s%s", claim_id, suffix);
	int r = ensure_peer(j, err);
	if (r >= 0)
		r = vgm_client_json(j->peer, method, path, NULL, NULL, NULL, err);
	return r;
}

static int op_peer_commit(void *ctx, vgm_job *job, const char *claim_id, vgm_error *err)
{
	(void)job;
	return claim_call(ctx, "POST", claim_id, "/commit", err);
}

static int op_peer_release(void *ctx, vgm_job *job, const char *claim_id, vgm_error *err)
{
	(void)job;
	return claim_call(ctx, "DELETE", claim_id, "", err);
}

static int op_plan(void *ctx, vgm_job *job, vgm_verdict *v, vgm_error *err)
{
	job_ctx *j = ctx;
	const mig *m = j->m;
	plan_req q = { j->c.peer_name, m->max_downtime_ms, m->bandwidth_bps, m->timeout_ms,
		       m->max_downtime_ms.set || m->timeout_ms.set };
	json_t *plan = NULL;
	vgm_plan pl;
	int r = make_plan(j->a, &j->p, &q, &plan, v, &pl, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&j->a->jobs->lock);
	j->m->plan = plan;
	pthread_mutex_unlock(&j->a->jobs->lock);
	(void)job;
	return 0;
}

/* ---- libvirt's migration ---- */

static void on_progress(void *ud, const vgm_job_sample *x, const vgm_ctl_state *ctl,
			const vgm_action *a)
{
	job_ctx *j = ud;
	agent_jobs *m = j->a->jobs;
	pthread_mutex_lock(&m->lock);
	if (!x && !j->m->call_ns)
		j->m->call_ns = mig_now_ns(); /* called right before virDomainMigrateToURI3 */
	if (x && x->memory_bps > 0 && x->memory_iteration > 0) {
		j->rate_sum += (double)x->memory_bps;
		j->rate_n++;
	}
	if (x) {
		j->m->last = *x;
		j->m->have_sample = true;
		j->m->eta_s = ctl->eta_s;
		j->m->expected_downtime_s = ctl->expected_downtime_s;
	}
	pthread_mutex_unlock(&m->lock);
	const char *what = !a || a->kind == VGM_ACT_NONE ? NULL
			   : a->kind == VGM_ACT_ABORT	     ? "abort"
			   : a->kind == VGM_ACT_SET_DOWNTIME ? "set_downtime"
							     : "set_bandwidth";
	if (what)
		vgm_journal_append(j->a->store, j->m->id, j->m->domain, "controller", what,
				   a->kind == VGM_ACT_ABORT ? a->reason : NULL, NULL);
}

/* After a success: the link's rate (when uncapped) and the time spent
 * outside pre-copy and the pause (connections, destination start, finish). */
static void learn_link(job_ctx *j, const vgm_migration_summary *sum)
{
	double avg = j->rate_sum / j->rate_n;
	double wall = (double)(mig_now_ns() - j->m->call_ns) / 1e9;
	double setup = wall - (double)sum->bytes / avg - (double)sum->downtime_ms / 1000.0;
	jobs_remember_link(j->a, j->c.peer_name, j->m->bandwidth_bps.set ? 0 : avg, setup);
}

/* The handle is visible to abort requests while libvirt's job runs. */
static int handle_new(job_ctx *j, const vgm_migration_opts *o, vgm_migration **out,
		      vgm_error *err)
{
	int r = vgm_migration_new(o, out, err);
	if (r < 0)
		return r;
	char why[256];
	pthread_mutex_lock(&j->a->jobs->lock);
	j->m->handle = *out;
	pthread_mutex_unlock(&j->a->jobs->lock);
	if (vgm_job_abort_requested(j->m->job, why, sizeof(why)))
		vgm_migration_request_abort(*out, why);
	return 0;
}

static void handle_done(job_ctx *j, vgm_migration *h, const vgm_migration_summary *sum)
{
	pthread_mutex_lock(&j->a->jobs->lock);
	j->m->handle = NULL;
	j->m->sum = *sum;
	j->m->have_sum = true;
	if (sum->call_realtime_ns)
		j->m->call_ns = sum->call_realtime_ns;
	j->m->finished_ns = mig_now_ns();
	pthread_mutex_unlock(&j->a->jobs->lock);
	vgm_migration_free(h);
}

static int op_migrate(void *ctx, vgm_job *job, const char *live, const char *persist,
		      const vgm_ctl_config *ctl, vgm_error *err)
{
	job_ctx *j = ctx;
	(void)job;
	vgm_migration_opts o = {
		.dest_uri = j->c.peer_libvirt_uri, .dest_xml = live, .persist_xml = persist,
		.clear_text = !j->c.migration_tls,
		.bandwidth_bps = vgm_limit_or(j->m->bandwidth_bps, 0), .ctl = *ctl,
	};
	vgm_migration *h = NULL;
	int r = handle_new(j, &o, &h, err);
	if (r < 0)
		return r;
	vgm_migration_summary sum;
	r = vgm_migration_run(h, j->p.dom, NULL, on_progress, j, &sum, err);
	if (r >= 0) {
		/* The summary comes from the destination (the source domain is
		 * gone); connecting only now keeps it off the start path. */
		virConnectPtr dconn = NULL;
		vgm_error derr = { 0 };
		if (vgm_lv_open(j->c.peer_libvirt_uri, &dconn, &derr) < 0)
			log_warn("migration %s: no summary from %s: %s", j->m->id, j->m->to,
				 derr.message);
		vgm_migration_summarize_dest(dconn, j->p.lvd->uuid, &sum);
		vgm_lv_close(dconn);
	}
	handle_done(j, h, &sum);
	if (r >= 0 && j->rate_n > 0)
		learn_link(j, &sum);
	return r;
}

/* After a restart: watch the job libvirt still runs for the domain. */
static int op_monitor(void *ctx, vgm_job *job, const vgm_ctl_config *ctl, vgm_error *err)
{
	job_ctx *j = ctx;
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	int r = vgm_lv_open(j->c.libvirt_uri, &conn, err);
	if (r >= 0)
		r = vgm_lv_lookup(conn, vgm_job_domain_uuid(job), &dom, err);
	vgm_migration_opts o = { .dest_uri = j->c.peer_libvirt_uri, .ctl = *ctl };
	vgm_migration *h = NULL;
	if (r >= 0)
		r = handle_new(j, &o, &h, err);
	if (r >= 0) {
		vgm_migration_summary sum;
		r = vgm_migration_attach(h, dom, on_progress, j, &sum, err);
		handle_done(j, h, &sum);
	}
	if (dom)
		virDomainFree(dom);
	vgm_lv_close(conn);
	return r;
}

static vgm_lv_presence presence_at(const char *uri, const char *uuid, bool incoming_side)
{
	virConnectPtr c = NULL;
	if (!uri || vgm_lv_open(uri, &c, NULL) < 0)
		return VGM_LV_UNREACHABLE;
	vgm_lv_presence p = vgm_lv_domain_presence(c, uuid, incoming_side);
	vgm_lv_close(c);
	return p;
}

static vgm_job_where op_where(void *ctx, vgm_job *job)
{
	job_ctx *j = ctx;
	const char *uuid = vgm_job_domain_uuid(job);
	if (!uuid[0])
		return VGM_WHERE_UNKNOWN;
	vgm_lv_presence src = presence_at(j->c.libvirt_uri, uuid, false);
	vgm_lv_presence tgt = presence_at(j->c.peer_libvirt_uri, uuid, true);
	return vgm_job_where_combine(src, tgt);
}

/* ---- this host ---- */

static int op_release_source(void *ctx, vgm_job *job, vgm_error *err)
{
	job_ctx *j = ctx;
	size_t n = 0;
	return vgm_assignment_release_domain(j->a->store, j->a->host, vgm_job_domain_uuid(job), &n,
					     err);
}

static int op_record(void *ctx, vgm_job *job, const char *phase, vgm_error *err)
{
	job_ctx *j = ctx;
	const char *uuid = vgm_job_domain_uuid(job);
	int r = vgm_jobs_set_phase(j->a->store, j->m->id, phase, uuid[0] ? uuid : NULL,
				   vgm_job_claim_id(job), err);
	if (r < 0)
		return r;
	mig_set_phase(j->a->jobs, j->m, phase);
	/* crash-safety tests: SIGKILL right after a phase is durable */
	char point[64];
	snprintf(point, sizeof(point), "job-%s", phase);
	agent_test_crash_point(j->a, point);
	return 0;
}

static void op_finish(void *ctx, vgm_job *job, const char *state, const vgm_error *why)
{
	job_ctx *j = ctx;
	vgm_error err = { 0 };
	(void)job;
	if (vgm_jobs_finish(j->a->store, j->m->id, state, why ? why->reason : NULL,
			    why ? vgm_error_message(why) : NULL, &err) < 0)
		log_error("migration %s: %s", j->m->id, vgm_error_message(&err));
	agent_jobs *m = j->a->jobs;
	pthread_mutex_lock(&m->lock);
	mig *r = j->m;
	r->state = state;
	r->phase = r->dry_run && !why ? "dry_run_done" : "done";
	if (why) {
		snprintf(r->err_code, sizeof(r->err_code), "%s", why->reason[0] ? why->reason : "failed");
		snprintf(r->err_msg, sizeof(r->err_msg), "%s", vgm_error_message(why));
	}
	if (!r->finished_ns)
		r->finished_ns = mig_now_ns();
	pthread_mutex_unlock(&m->lock);
}

static void op_journal(void *ctx, vgm_job *job, const char *step, const char *outcome,
		       const char *detail)
{
	job_ctx *j = ctx;
	(void)job;
	vgm_journal_append(j->a->store, j->m->id, j->m->domain, step, outcome, detail, NULL);
	log_info("migration %s (%s -> %s): %s %s%s%s", j->m->id, j->m->domain, j->m->to, step,
		 outcome, detail ? ": " : "", detail ? detail : "");
}

static void op_abort(void *ctx, vgm_job *job, const char *reason)
{
	job_ctx *j = ctx;
	(void)job;
	pthread_mutex_lock(&j->a->jobs->lock);
	if (j->m->handle)
		vgm_migration_request_abort(j->m->handle, reason);
	pthread_mutex_unlock(&j->a->jobs->lock);
}

/* ---- the context ---- */

int job_ctx_new(agent *a, mig *r, job_ctx **out, vgm_error *err)
{
	job_ctx *j = calloc(1, sizeof(*j));
	if (!j || !(j->pf = calloc(1, sizeof(*j->pf)))) {
		free(j);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	j->a = a;
	j->m = r;
	int ret = mig_cfg_get(a, r->to, &j->c, err);
	if (ret < 0) {
		job_ctx_free(j);
		return ret;
	}
	*out = j;
	return 0;
}

void job_ctx_release(job_ctx *j)
{
	if (j->pf)
		peer_fetch_clear(j->pf);
	prep_clear(&j->p);
	vgm_client_free(TAKE_PTR(j->peer));
}

void job_ctx_free(job_ctx *j)
{
	if (!j)
		return;
	job_ctx_release(j);
	free(j->pf);
	mig_cfg_clear(&j->c);
	free(j);
}

vgm_job_ops job_ctx_ops(job_ctx *j)
{
	return (vgm_job_ops){
		.inspect = op_inspect, .peer_check = op_peer_check, .peer_claim = op_peer_claim,
		.peer_commit = op_peer_commit, .peer_release = op_peer_release, .plan = op_plan,
		.migrate = op_migrate, .monitor = op_monitor, .where = op_where,
		.release_source = op_release_source, .record = op_record, .finish = op_finish,
		.journal = op_journal, .abort = op_abort, .ctx = j,
	};
}
