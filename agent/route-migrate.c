/* route-migrate.c: the migrations this agent runs as the SOURCE host
 * (DESIGN.md section 3): POST /v1/plan, POST /v1/migrations,
 * GET /v1/migrations, GET /v1/migrations/{id}, POST /v1/migrations/{id}/abort.
 *
 * A migration is a record in an in-memory registry plus a worker thread that
 * walks the steps: inspect the domain, check the target (its agent answers,
 * same protocol, no vIOMMU), claim vGPUs on the target agent, rewrite the
 * live and persistent XML with the claim's mapping, plan (refuse when the
 * plan cannot meet --max-downtime, unless force), migrate (lib/migrate, the
 * controller in the loop), then commit on the target and release here; on
 * any failure after the claim, release the target's claim.  Every step is
 * journalled in the store, so `vgpumig status` shows outcomes after a restart.
 *
 * libvirt: the worker (and the plan handler) open their own short-lived
 * connections.  This is safe next to the rule "handlers never call libvirt":
 * the only hook that blocks on an agent during a migration runs on the
 * TARGET (migrate begin) and talks to the target's agent; libmicrohttpd gives
 * every request its own thread, so a hook event arriving here meanwhile is
 * served.
 *
 * Invariants: reg_lock guards the registry and every mutable field of a
 * record; a record is freed only once finished (the worker is done with it);
 * rec->handle is non-NULL exactly while vgm_migration_run runs, so an abort
 * either reaches libvirt or is seen by the worker at its next step. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "api/client.h"
#include "api/wire.h"
#include "compat/compat.h"
#include "migrate/migrate.h"
#include "model/model.h"
#include "model/units.h"
#include "routes.h"
#include "util/validate.h"
#include "vgpus.h"

#define MIG_KEEP_FINISHED 64
#define MIG_DEFAULT_LINK_BPS (1024.0 * 1024 * 1024) /* assumed when nothing was measured */
#define MIG_DIRTY_FRESH_S 60
#define MIG_PEER_TIMEOUT_MS 60000L /* claims queue behind each other on a busy target */

typedef struct mig {
	struct mig *next;
	char id[VGM_UUID_LEN + 1];
	char *domain;
	char domain_uuid[40];
	char *to;
	int64_t max_downtime_ms, bandwidth_bps, timeout_ms;
	bool dry_run, force;
	const char *phase;   /* static strings */
	const char *state;   /* running | succeeded | failed | aborted */
	int64_t created_ns, call_ns, finished_ns;
	vgm_job_sample last;
	bool have_sample;
	double eta_s, expected_downtime_s;
	json_t *plan;
	json_t *claim;
	vgm_migration_summary sum;
	bool have_sum;
	char err_code[48];
	char err_msg[512];
	bool abort_requested;
	char abort_reason[256];
	vgm_migration *handle;
	bool finished;
	uint64_t vgpu_bytes;
	size_t n_vgpus;
	const char *phase_names[16]; /* when each phase began, ms after created */
	double phase_ms[16];
	size_t n_phases;
} mig;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mig *reg_head;

/* Measured figures reused by later plans (per peer link, per domain). */
typedef struct link_cache {
	char name[VGM_WIRE_MAX_ID + 1];
	double link_bps; /* 0: unknown */
	double setup_s;  /* 0: unknown; EWMA of the overhead outside pre-copy and pause */
} link_cache;
typedef struct dirty_cache { char uuid[40]; double bps; int64_t at; } dirty_cache;
static link_cache links[16];
static dirty_cache dirties[32];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- configuration snapshot ---- */

typedef struct mig_cfg {
	char *libvirt_uri, *host_name, *tls_cert, *tls_key, *tls_ca;
	char *peer_name, *peer_address, *peer_libvirt_uri;
	bool lab_mode;
} mig_cfg;

static void mig_cfg_clear(mig_cfg *c)
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

static int mig_cfg_get(agent *a, const char *to, mig_cfg *c, vgm_error *err)
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
			if (p->libvirt_uri)
				c->peer_libvirt_uri = dup0(p->libvirt_uri);
			else if (asprintf(&c->peer_libvirt_uri, "qemu+tcp://%s/system", p->name) < 0)
				c->peer_libvirt_uri = NULL;
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

typedef struct prep {
	virConnectPtr conn;
	virDomainPtr dom;
	vgm_lv_domain *lvd;
	vgm_domain_info *info;
	agent_vgpu *v;
	size_t n;
	uint64_t vgpu_state_bytes;    /* what QEMU will move at switchover */
	uint64_t vgpu_declared_bytes; /* framebuffer of every vGPU (lab ones too) */
	bool lab_vgpus;
} prep;

static void prep_clear(prep *p)
{
	agent_vgpus_free(p->v, p->n);
	vgm_domain_info_free(p->info);
	vgm_lv_domain_free(p->lvd);
	if (p->dom)
		virDomainFree(p->dom);
	vgm_lv_close(p->conn);
	memset(p, 0, sizeof(*p));
}

static int prep_domain(agent *a, const mig_cfg *c, const char *domain, prep *p, vgm_error *err)
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

/* ---- plan ---- */

static link_cache cached_link(const char *peer)
{
	link_cache v = { .link_bps = 0 };
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (STREQ(links[i].name, peer))
			v = links[i];
	pthread_mutex_unlock(&reg_lock);
	return v;
}

/* link_bps 0 / setup_s 0: keep what is known. */
static void remember_link(const char *peer, double link_bps, double setup_s)
{
	pthread_mutex_lock(&reg_lock);
	size_t slot = 0;
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		if (STREQ(links[i].name, peer) || !links[i].name[0]) {
			slot = i;
			break;
		}
	}
	link_cache *c = &links[slot];
	if (!STREQ(c->name, peer))
		*c = (link_cache){ .link_bps = 0 };
	snprintf(c->name, sizeof(c->name), "%s", peer);
	if (link_bps > 0)
		c->link_bps = link_bps;
	if (setup_s > 0)
		c->setup_s = c->setup_s > 0 ? 0.5 * (c->setup_s + setup_s) : setup_s;
	pthread_mutex_unlock(&reg_lock);
}

static bool cached_dirty(const char *uuid, double *bps)
{
	bool ok = false;
	int64_t now = now_ns() / 1000000000;
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < ARRAY_SIZE(dirties); i++)
		if (STREQ(dirties[i].uuid, uuid) && now - dirties[i].at <= MIG_DIRTY_FRESH_S) {
			*bps = dirties[i].bps;
			ok = true;
		}
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

static void remember_dirty(const char *uuid, double bps)
{
	pthread_mutex_lock(&reg_lock);
	size_t slot = 0;
	int64_t oldest = INT64_MAX;
	for (size_t i = 0; i < ARRAY_SIZE(dirties); i++) {
		if (STREQ(dirties[i].uuid, uuid)) {
			slot = i;
			break;
		}
		if (dirties[i].at < oldest) {
			oldest = dirties[i].at;
			slot = i;
		}
	}
	snprintf(dirties[slot].uuid, sizeof(dirties[slot].uuid), "%s", uuid);
	dirties[slot].bps = bps;
	dirties[slot].at = now_ns() / 1000000000;
	pthread_mutex_unlock(&reg_lock);
}

typedef struct plan_req {
	const char *peer;
	int64_t max_downtime_ms, bandwidth_bps, timeout_ms;
	bool measure; /* measure the dirty rate now (1 s) unless a fresh figure exists */
} plan_req;

/* Plan from the domain's facts; *verdict_ok says whether it may go ahead. */
static int make_plan(prep *p, const plan_req *q, json_t **out, vgm_verdict *v, vgm_plan *pl,
		     vgm_error *err)
{
	double dirty = 0;
	const char *dirty_src = "not_measured";
	if (cached_dirty(p->lvd->uuid, &dirty)) {
		dirty_src = "recent";
	} else if (q->measure) {
		uint64_t bps = 0;
		int r = vgm_lv_dirty_rate(p->dom, 1, &bps, err);
		if (r < 0)
			return r;
		dirty = (double)bps;
		dirty_src = "measured";
		remember_dirty(p->lvd->uuid, dirty);
	}
	link_cache lc = cached_link(q->peer);
	double link = lc.link_bps;
	const char *link_src = link > 0 ? "measured" : "assumed";
	if (link <= 0)
		link = MIG_DEFAULT_LINK_BPS;
	double bw = q->bandwidth_bps > 0 ? fmin((double)q->bandwidth_bps, link) : link;
	vgm_model_costs costs = vgm_model_default_costs();
	if (lc.setup_s > 0)
		costs.setup_s = lc.setup_s; /* learnt from earlier migrations to this peer */
	uint64_t max_dt = q->max_downtime_ms > 0 ? (uint64_t)q->max_downtime_ms : 0;
	uint64_t dl = vgm_model_qemu_downtime_ms(&costs, max_dt);
	vgm_model_input in = {
		.ram_bytes = p->lvd->memory_bytes,
		.vgpu_state_bytes = p->vgpu_state_bytes,
		.bandwidth_bps = (uint64_t)bw,
		.link_bps = (uint64_t)link,
		.dirty_bps = (uint64_t)dirty,
		.downtime_limit_ms = dl ? dl : 1,
		.costs = costs,
	};
	int r = vgm_model_plan(&in, pl, err);
	if (r < 0)
		return r;
	vgm_model_verdict(pl, max_dt, q->timeout_ms > 0 ? (uint64_t)q->timeout_ms : 0, v);
	json_t *o = json_pack(
		"{s:I, s:I, s:I, s:b, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I}", "ram_bytes",
		(json_int_t)in.ram_bytes, "vgpu_state_bytes", (json_int_t)p->vgpu_state_bytes,
		"vgpu_declared_bytes", (json_int_t)p->vgpu_declared_bytes, "lab_vgpus", p->lab_vgpus,
		"dirty_rate_bps", (json_int_t)dirty, "dirty_rate_source", dirty_src, "bandwidth_bps",
		(json_int_t)bw, "bandwidth_source",
		q->bandwidth_bps > 0 ? "given" : link_src, "link_bps", (json_int_t)link,
		"downtime_limit_ms", (json_int_t)in.downtime_limit_ms, "max_downtime_ms",
		(json_int_t)max_dt, "timeout_ms", (json_int_t)(q->timeout_ms > 0 ? q->timeout_ms : 0));
	if (!o)
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_object_set_new(o, "setup_s", json_real(costs.setup_s));
	json_object_set_new(o, "converges", json_boolean(pl->converges));
	json_object_set_new(o, "iterations", json_integer(pl->iterations));
	json_object_set_new(o, "total_s", json_real(pl->total_s));
	json_object_set_new(o, "precopy_s", json_real(pl->precopy_s));
	json_object_set_new(o, "downtime_s", json_real(pl->downtime_s));
	json_object_set_new(o, "bytes_total", json_integer((json_int_t)pl->bytes_total));
	json_object_set_new(o, "lambda", json_real(pl->lambda));
	json_object_set_new(o, "reason", json_string(pl->reason));
	json_object_set_new(o, "verdict", json_pack("{s:b, s:s, s:s}", "ok", v->ok, "code", v->code,
						    "reason", v->reason));
	*out = o;
	return 0;
}

/* ---- registry ---- */

static void mig_free(mig *m)
{
	if (!m)
		return;
	free(m->domain);
	free(m->to);
	json_decref(m->plan);
	json_decref(m->claim);
	free(m);
}

/* Drop finished records beyond MIG_KEEP_FINISHED (newest are first). */
static void prune_locked(void)
{
	size_t kept = 0;
	for (mig **pp = &reg_head; *pp;) {
		mig *m = *pp;
		if (m->finished && ++kept > MIG_KEEP_FINISHED) {
			*pp = m->next;
			mig_free(m);
			continue;
		}
		pp = &m->next;
	}
}

static mig *find_locked(const char *id)
{
	for (mig *m = reg_head; m; m = m->next)
		if (STREQ(m->id, id))
			return m;
	return NULL;
}

static void set_phase(mig *m, const char *phase)
{
	pthread_mutex_lock(&reg_lock);
	m->phase = phase;
	if (m->n_phases < ARRAY_SIZE(m->phase_names)) {
		m->phase_names[m->n_phases] = phase;
		m->phase_ms[m->n_phases++] = (double)(now_ns() - m->created_ns) / 1e6;
	}
	pthread_mutex_unlock(&reg_lock);
}

static bool abort_wanted(mig *m, char *why, size_t n)
{
	pthread_mutex_lock(&reg_lock);
	bool w = m->abort_requested;
	if (w && why)
		snprintf(why, n, "%s", m->abort_reason);
	pthread_mutex_unlock(&reg_lock);
	return w;
}

static json_t *sample_json(const mig *m)
{
	const vgm_job_sample *x = &m->last;
	json_t *o = json_pack("{s:I, s:I, s:I}", "total", (json_int_t)x->memory_total, "remaining",
			      (json_int_t)x->memory_remaining, "transferred",
			      (json_int_t)x->memory_processed);
	return o;
}

static json_t *snapshot_locked(const mig *m)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "migration_id", m->id,
			      "domain", m->domain, "domain_uuid", m->domain_uuid, "to", m->to,
			      "phase", m->phase, "state", m->state, "dry_run", m->dry_run, "force",
			      m->force);
	if (!o)
		return NULL;
	json_object_set_new(o, "created_at", json_real((double)m->created_ns / 1e9));
	json_object_set_new(o, "elapsed_ms", json_integer((json_int_t)m->last.time_elapsed_ms));
	json_object_set_new(o, "ram", sample_json(m));
	json_object_set_new(o, "vgpu", json_pack("{s:I, s:I, s:I}", "count", (json_int_t)m->n_vgpus,
						 "bytes", (json_int_t)m->vgpu_bytes, "transferred",
						 (json_int_t)m->last.vfio_data_transferred));
	json_object_set_new(o, "rate_bps", json_integer((json_int_t)m->last.memory_bps));
	json_object_set_new(o, "dirty_rate_bps",
			    json_integer((json_int_t)m->last.memory_dirty_rate_bps));
	json_object_set_new(o, "iteration", json_integer((json_int_t)m->last.memory_iteration));
	json_object_set_new(o, "eta_s", m->have_sample && m->eta_s >= 0 ? json_real(m->eta_s)
								       : json_null());
	json_object_set_new(o, "expected_downtime_ms",
			    m->have_sample ? json_integer((json_int_t)llround(m->expected_downtime_s * 1000))
					   : json_null());
	json_object_set_new(o, "plan", m->plan ? json_incref(m->plan) : json_null());
	json_object_set_new(o, "claim", m->claim ? json_incref(m->claim) : json_null());
	json_t *ph = json_object();
	for (size_t i = 0; ph && i < m->n_phases; i++)
		json_object_set_new(ph, m->phase_names[i], json_real(m->phase_ms[i]));
	json_object_set_new(o, "phase_started_ms", ph);
	json_object_set_new(o, "start_to_call_ms",
			    m->call_ns ? json_real((double)(m->call_ns - m->created_ns) / 1e6)
				       : json_null());
	if (m->have_sum)
		json_object_set_new(
			o, "result",
			json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "ok", m->sum.ok,
				  "total_ms", (json_int_t)m->sum.total_ms, "downtime_ms",
				  (json_int_t)m->sum.downtime_ms, "setup_ms", (json_int_t)m->sum.setup_ms,
				  "bytes", (json_int_t)m->sum.bytes, "iterations",
				  (json_int_t)m->sum.iterations, "wall_ms",
				  (json_int_t)(m->finished_ns && m->call_ns
						       ? (m->finished_ns - m->call_ns) / 1000000
						       : 0),
				  "from_destination", m->sum.from_destination));
	else
		json_object_set_new(o, "result", json_null());
	json_object_set_new(o, "error", m->err_code[0] ? json_pack("{s:s, s:s}", "code", m->err_code,
								  "message", m->err_msg)
						      : json_null());
	return o;
}

/* ---- the worker ---- */

typedef struct job {
	agent *a;
	mig *m;
	mig_cfg c;
	prep p;
	vgm_client *peer;
	char *claim_id;
	vgm_wire_claim *claim;
	double rate_sum; /* memory_bps samples while RAM moved */
	unsigned rate_n;
} job;

static void journal(job *j, const char *step, const char *outcome, const char *detail)
{
	vgm_journal_append(j->a->store, j->m->id, j->m->domain, step, outcome, detail, NULL);
	log_info("migration %s (%s -> %s): %s %s%s%s", j->m->id, j->m->domain, j->m->to, step,
		 outcome, detail ? ": " : "", detail ? detail : "");
}

static int step_inspect(job *j, vgm_error *err)
{
	set_phase(j->m, "inspecting");
	int r = prep_domain(j->a, &j->c, j->m->domain, &j->p, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&reg_lock);
	snprintf(j->m->domain_uuid, sizeof(j->m->domain_uuid), "%s", j->p.lvd->uuid);
	j->m->vgpu_bytes = j->p.vgpu_declared_bytes;
	j->m->n_vgpus = j->p.n;
	pthread_mutex_unlock(&reg_lock);
	char d[128];
	snprintf(d, sizeof(d), "%zu vGPU(s), %llu MiB RAM", j->p.n,
		 (unsigned long long)(j->p.lvd->memory_bytes >> 20));
	journal(j, "inspect", "ok", d);
	return 0;
}

/* What the target says about itself (GET /v1/host, GET /v1/types), fetched
 * in a thread of its own while this host inspects the domain. */
typedef struct peer_fetch {
	job *j;
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

static int peer_fetch_start(job *j, peer_fetch *pf, vgm_error *err)
{
	*pf = (peer_fetch){ .j = j };
	int r = vgm_client_new_tls(j->c.peer_address, j->c.tls_cert, j->c.tls_key, j->c.tls_ca,
				   &j->peer, err);
	if (r < 0)
		return r;
	vgm_client_set_timeouts(j->peer, 5000, MIG_PEER_TIMEOUT_MS);
	vgm_client_set_protocol(j->peer, j->a->protocol);
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
static int run_compat(job *j, const peer_fetch *pf, const vgm_facts *tf, vgm_error *err)
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
	vgm_check_input in = { sf, tf, j->p.info, wanted, j->p.n, offered, n_offered, false };
	if (r >= 0)
		r = vgm_compat_check(&in, &l, err);
	for (size_t i = 0; r >= 0 && i < l->n; i++)
		if (!l->items[i].ok) {
			r = vgm_error_setr(err, EINVAL, l->items[i].code, "%s", l->items[i].message);
			break;
		}
	json_decref(mine);
	return r;
}

/* The target answered (pf), and lib/compat finds nothing that stops the
 * migration (versions, protocol, driver, ECC, board, profile, vIOMMU). */
static int step_check(job *j, peer_fetch *pf, vgm_error *err)
{
	set_phase(j->m, "checking");
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
	if (r < 0)
		return r;
	journal(j, "check", "ok", NULL);
	return 0;
}

static int step_claim(job *j, vgm_error *err)
{
	if (j->p.n == 0)
		return 0;
	set_phase(j->m, "claiming");
	vgm_wire_device *devs = calloc(j->p.n, sizeof(*devs));
	if (!devs)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < j->p.n; i++)
		devs[i] = (vgm_wire_device){ j->p.v[i].id, j->p.v[i].kind, j->p.v[i].profile_name,
					     j->p.v[i].framebuffer_bytes, j->p.v[i].type_id };
	vgm_wire_claim_req req = { j->m->id, j->p.lvd->uuid, j->p.lvd->name, j->c.host_name, devs,
				   j->p.n };
	json_t *body = vgm_wire_claim_req_encode(&req);
	free(devs);
	if (!body)
		return vgm_error_set(err, ENOMEM, "out of memory");
	json_t *reply = NULL;
	int r = vgm_client_json(j->peer, "POST", "/v1/claims", body, NULL, &reply, err);
	/* A claim is idempotent per migration id: after a timeout the target may
	 * hold it already, so ask again rather than leave it to its lease. */
	for (int retry = 0; r < 0 && retry < 2 && STREQ(err->reason, "agent_timeout"); retry++) {
		journal(j, "claim", "retry", err->message);
		vgm_error_clear(err);
		r = vgm_client_json(j->peer, "POST", "/v1/claims", body, NULL, &reply, err);
	}
	json_decref(body);
	if (r < 0)
		return r;
	r = vgm_wire_claim_from_json(reply, &j->claim, err);
	if (r >= 0 && !(j->claim_id = strdup(j->claim->claim_id)))
		r = vgm_error_set(err, ENOMEM, "out of memory");
	if (r >= 0) {
		pthread_mutex_lock(&reg_lock);
		j->m->claim = json_incref(reply);
		pthread_mutex_unlock(&reg_lock);
		journal(j, "claim", "ok", j->claim_id);
	}
	json_decref(reply);
	return r;
}

/* Live and persistent XML with the target's ids. */
static int step_rewrite(job *j, char **live, char **persist, vgm_error *err)
{
	*live = *persist = NULL;
	if (!j->claim)
		return 0;
	set_phase(j->m, "rewriting");
	vgm_idmap *map = calloc(j->claim->n_mapping + 1, sizeof(*map));
	if (!map)
		return vgm_error_set(err, ENOMEM, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < j->claim->n_mapping; i++)
		map[n++] = (vgm_idmap){ j->claim->mapping[i].source_id, j->claim->mapping[i].target_id };
	const vgm_lv_domain *d = j->p.lvd;
	int r = vgm_domxml_rewrite(d->xml_live, strlen(d->xml_live), map, n,
				   VGM_REWRITE_ALLOW_UNMAPPED, live, NULL, err);
	if (r >= 0 && d->xml_persistent)
		r = vgm_domxml_rewrite(d->xml_persistent, strlen(d->xml_persistent), map, n,
				       VGM_REWRITE_ALLOW_UNMAPPED, persist, NULL, err);
	free(map);
	if (r >= 0)
		journal(j, "rewrite", "ok", NULL);
	return r;
}

static int step_plan(job *j, vgm_plan *pl, vgm_error *err)
{
	set_phase(j->m, "planning");
	const mig *m = j->m;
	plan_req q = { j->c.peer_name, m->max_downtime_ms, m->bandwidth_bps, m->timeout_ms,
		       m->max_downtime_ms > 0 || m->timeout_ms > 0 };
	json_t *plan = NULL;
	vgm_verdict v;
	int r = make_plan(&j->p, &q, &plan, &v, pl, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&reg_lock);
	j->m->plan = plan;
	pthread_mutex_unlock(&reg_lock);
	journal(j, "plan", v.ok ? "ok" : (m->force ? "forced" : "refused"), v.reason);
	if (!v.ok && !m->force)
		return vgm_error_setr(err, EDOM, v.code, "%s (use --force to try anyway)", v.reason);
	return 0;
}

static void on_progress(void *ud, const vgm_job_sample *x, const vgm_ctl_state *ctl,
			const vgm_action *a)
{
	job *j = ud;
	pthread_mutex_lock(&reg_lock);
	if (!x && !j->m->call_ns)
		j->m->call_ns = now_ns(); /* called right before virDomainMigrateToURI3 */
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
	pthread_mutex_unlock(&reg_lock);
	if (a && a->kind == VGM_ACT_ABORT)
		journal(j, "controller", "abort", a->reason);
	else if (a && a->kind != VGM_ACT_NONE)
		journal(j, "controller", a->kind == VGM_ACT_SET_DOWNTIME ? "set_downtime" : "set_bandwidth",
			NULL);
}

/* After a success: the link's rate (when uncapped) and the time spent
 * outside pre-copy and the pause (connections, destination start, finish). */
static void learn_link(job *j, const vgm_migration_summary *sum)
{
	double avg = j->rate_sum / j->rate_n;
	double wall = (double)(now_ns() - j->m->call_ns) / 1e9;
	double setup = wall - (double)sum->bytes / avg - (double)sum->downtime_ms / 1000.0;
	remember_link(j->c.peer_name, j->m->bandwidth_bps > 0 ? 0 : avg, setup);
}

static int step_migrate(job *j, const char *live, const char *persist, vgm_error *err)
{
	set_phase(j->m, "migrating");
	const mig *m = j->m;
	vgm_migration_opts o = {
		.dest_uri = j->c.peer_libvirt_uri, .dest_xml = live, .persist_xml = persist,
		.bandwidth_bps = m->bandwidth_bps > 0 ? (uint64_t)m->bandwidth_bps : 0,
		.ctl = {
			.max_downtime_ms = m->max_downtime_ms > 0 ? (uint64_t)m->max_downtime_ms : 0,
			.timeout_ms = m->timeout_ms > 0 ? (uint64_t)m->timeout_ms : 0,
			.bandwidth_cap_bps = m->bandwidth_bps > 0 ? (uint64_t)m->bandwidth_bps : 0,
			.vgpu_state_bytes = j->p.vgpu_state_bytes,
			.costs = vgm_model_default_costs(),
		},
	};
	vgm_migration *h = NULL;
	int r = vgm_migration_new(&o, &h, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&reg_lock);
	j->m->handle = h;
	if (j->m->abort_requested)
		vgm_migration_request_abort(h, j->m->abort_reason);
	pthread_mutex_unlock(&reg_lock);
	journal(j, "migrate", "started", j->c.peer_libvirt_uri);
	vgm_migration_summary sum;
	r = vgm_migration_run(h, j->p.dom, NULL, on_progress, j, &sum, err);
	if (r >= 0) {
		/* The summary comes from the destination (the source domain is
		 * gone); connecting only now keeps it off the start path. */
		virConnectPtr dconn = NULL;
		vgm_error derr = { 0 };
		if (vgm_lv_open(j->c.peer_libvirt_uri, &dconn, &derr) < 0)
			log_warn("migration %s: no summary from %s: %s", m->id, m->to, derr.message);
		vgm_migration_summarize_dest(dconn, j->p.lvd->uuid, &sum);
		vgm_lv_close(dconn);
	}
	pthread_mutex_lock(&reg_lock);
	j->m->handle = NULL;
	j->m->sum = sum;
	j->m->have_sum = true;
	if (sum.call_realtime_ns)
		j->m->call_ns = sum.call_realtime_ns;
	j->m->finished_ns = now_ns();
	pthread_mutex_unlock(&reg_lock);
	vgm_migration_free(h);
	if (r >= 0 && j->rate_n > 0)
		learn_link(j, &sum);
	journal(j, "migrate", r >= 0 ? "ok" : (sum.aborted ? "aborted" : "failed"),
		r >= 0 ? NULL : sum.reason);
	return r;
}

static void commit_and_release(job *j)
{
	set_phase(j->m, "committing");
	vgm_error err = { 0 };
	if (j->claim_id) {
		char path[256];
		snprintf(path, sizeof(path), "/v1/claims/%s/commit", j->claim_id);
		if (vgm_client_json(j->peer, "POST", path, NULL, NULL, NULL, &err) < 0)
			/* The VM runs on the target: its reconcile commits the claim
			 * on its own when the lease runs out (auto_committed). */
			journal(j, "commit", "failed", err.message);
		else
			journal(j, "commit", "ok", j->claim_id);
	}
	set_phase(j->m, "releasing");
	size_t n = 0;
	vgm_error_clear(&err);
	if (vgm_assignment_release_domain(j->a->store, j->a->host, j->p.lvd->uuid, &n, &err) < 0)
		journal(j, "release_source", "failed", err.message);
	else
		journal(j, "release_source", "ok", NULL);
}

static void release_target(job *j)
{
	if (!j->claim_id || !j->peer)
		return;
	char path[256];
	vgm_error err = { 0 };
	snprintf(path, sizeof(path), "/v1/claims/%s", j->claim_id);
	if (vgm_client_json(j->peer, "DELETE", path, NULL, NULL, NULL, &err) < 0)
		/* The claim's lease runs out on the target: it releases itself. */
		journal(j, "release_target", "failed", err.message);
	else
		journal(j, "release_target", "ok", j->claim_id);
}

static int check_abort(job *j, vgm_error *err)
{
	char why[256];
	if (!abort_wanted(j->m, why, sizeof(why)))
		return 0;
	return vgm_error_setr(err, ECANCELED, "migration_aborted", "migration aborted: %s", why);
}

static int run_steps(job *j, vgm_error *err)
{
	peer_fetch pf;
	int r = peer_fetch_start(j, &pf, err);
	if (r >= 0)
		r = step_inspect(j, err);
	if (r >= 0)
		r = check_abort(j, err);
	if (r >= 0)
		r = step_check(j, &pf, err);
	peer_fetch_clear(&pf);
	if (r >= 0)
		r = check_abort(j, err);
	if (r >= 0)
		r = step_claim(j, err);
	_cleanup_free_ char *live = NULL, *persist = NULL;
	vgm_plan pl;
	if (r >= 0)
		r = step_rewrite(j, &live, &persist, err);
	if (r >= 0)
		r = step_plan(j, &pl, err);
	if (r >= 0)
		r = check_abort(j, err);
	if (r >= 0 && j->m->dry_run) {
		journal(j, "dry_run", "ok", "stopped before the libvirt call");
		release_target(j);
		return 0;
	}
	if (r >= 0)
		r = step_migrate(j, live, persist, err);
	if (r >= 0)
		commit_and_release(j);
	else
		release_target(j);
	return r;
}

static void finish_job(job *j, int r, const vgm_error *err)
{
	pthread_mutex_lock(&reg_lock);
	mig *m = j->m;
	if (r >= 0) {
		m->state = "succeeded";
		m->phase = m->dry_run ? "dry_run_done" : "done";
	} else {
		bool aborted = STREQ(err->reason, "migration_aborted") ||
			       (m->have_sum && m->sum.aborted) || m->abort_requested;
		m->state = aborted ? "aborted" : "failed";
		m->phase = "done";
		snprintf(m->err_code, sizeof(m->err_code), "%s", err->reason[0] ? err->reason : "failed");
		snprintf(m->err_msg, sizeof(m->err_msg), "%s", vgm_error_message(err));
	}
	if (!m->finished_ns)
		m->finished_ns = now_ns();
	m->finished = true;
	const char *state = m->state;
	pthread_mutex_unlock(&reg_lock);
	journal(j, "done", state, r >= 0 ? NULL : vgm_error_message(err));
}

static void *job_main(void *arg)
{
	job *j = arg;
	vgm_error err = { 0 };
	int r = run_steps(j, &err);
	finish_job(j, r, &err);
	prep_clear(&j->p);
	vgm_wire_claim_free(j->claim);
	free(j->claim_id);
	vgm_client_free(j->peer);
	mig_cfg_clear(&j->c);
	free(j);
	pthread_mutex_lock(&reg_lock);
	prune_locked();
	pthread_mutex_unlock(&reg_lock);
	return NULL;
}

/* ---- routes ---- */

static int decode_req(agent_request *req, vgm_wire_migration_req **out)
{
	vgm_error err = { 0 };
	if (vgm_wire_migration_req_decode(req->body ? req->body : "", req->body_len, out, &err) < 0)
		return agent_reply_error(req, &err);
	return 1;
}

int route_plan(agent_request *req)
{
	_cleanup_(vgm_wire_migration_req_freep) vgm_wire_migration_req *q = NULL;
	int r = decode_req(req, &q);
	if (r <= 0)
		return r;
	vgm_error err = { 0 };
	mig_cfg c;
	if (mig_cfg_get(req->a, q->to, &c, &err) < 0)
		return agent_reply_error(req, &err);
	prep p;
	plan_req pq = { c.peer_name, q->max_downtime_ms, q->bandwidth_bps, q->timeout_ms, true };
	json_t *plan = NULL;
	vgm_verdict v;
	vgm_plan pl;
	r = prep_domain(req->a, &c, q->domain, &p, &err);
	if (r >= 0)
		r = make_plan(&p, &pq, &plan, &v, &pl, &err);
	if (r >= 0) {
		json_object_set_new(plan, "domain", json_string(p.lvd->name));
		json_object_set_new(plan, "to", json_string(c.peer_name));
		json_object_set_new(plan, "vgpus", json_integer((json_int_t)p.n));
	}
	prep_clear(&p);
	mig_cfg_clear(&c);
	return r < 0 ? agent_reply_error(req, &err) : agent_reply_json(req, 200, plan);
}

static bool domain_busy_locked(const char *domain)
{
	for (mig *m = reg_head; m; m = m->next)
		if (!m->finished && (STREQ(m->domain, domain) || STREQ(m->domain_uuid, domain)))
			return true;
	return false;
}

static mig *mig_new(const vgm_wire_migration_req *q)
{
	mig *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->domain = strdup(q->domain);
	m->to = strdup(q->to);
	if (!m->domain || !m->to || vgm_uuid_generate(m->id) < 0) {
		mig_free(m);
		return NULL;
	}
	m->max_downtime_ms = q->max_downtime_ms;
	m->bandwidth_bps = q->bandwidth_bps;
	m->timeout_ms = q->timeout_ms;
	m->dry_run = q->dry_run;
	m->force = q->force;
	m->phase = "queued";
	m->state = "running";
	m->created_ns = now_ns();
	m->eta_s = -1;
	return m;
}

static int start_job(agent *a, mig *m, mig_cfg *c, vgm_error *err)
{
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return vgm_error_set(err, ENOMEM, "out of memory");
	j->a = a;
	j->m = m;
	j->c = *c;
	memset(c, 0, sizeof(*c));
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		*c = j->c;
		free(j);
		return vgm_error_set(err, r, "cannot start the migration thread");
	}
	return 0;
}

int route_migrations_create(agent_request *req)
{
	_cleanup_(vgm_wire_migration_req_freep) vgm_wire_migration_req *q = NULL;
	int r = decode_req(req, &q);
	if (r <= 0)
		return r;
	vgm_error err = { 0 };
	mig_cfg c;
	if (mig_cfg_get(req->a, q->to, &c, &err) < 0)
		return agent_reply_error(req, &err);
	if (STREQ(c.peer_name, c.host_name)) {
		mig_cfg_clear(&c);
		return agent_reply_errorf(req, 400, "invalid_request",
					  "'%s' is this host; migrate to another host", q->to);
	}
	mig *m = mig_new(q);
	if (!m) {
		mig_cfg_clear(&c);
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	}
	pthread_mutex_lock(&reg_lock);
	bool busy = domain_busy_locked(q->domain);
	if (!busy) {
		m->next = reg_head;
		reg_head = m;
	}
	pthread_mutex_unlock(&reg_lock);
	if (busy) {
		mig_free(m);
		mig_cfg_clear(&c);
		return agent_reply_errorf(req, 409, "migration_in_progress",
					  "domain '%s' is already migrating; see 'vgpumig status'",
					  q->domain);
	}
	if (start_job(req->a, m, &c, &err) < 0) {
		pthread_mutex_lock(&reg_lock);
		m->finished = true;
		m->state = "failed";
		snprintf(m->err_code, sizeof(m->err_code), "internal");
		pthread_mutex_unlock(&reg_lock);
		mig_cfg_clear(&c);
		return agent_reply_error(req, &err);
	}
	vgm_journal_append(req->a->store, m->id, q->domain, "start", "ok", q->to, NULL);
	return agent_reply_json(req, 202, json_pack("{s:s}", "migration_id", m->id));
}

/* Outcomes the journal knows of that are no longer in memory (restart). */
static json_t *recent_from_journal(agent *a, json_t *seen)
{
	json_t *arr = json_array();
	vgm_journal_entry *e = NULL;
	size_t n = 0;
	if (!arr || vgm_journal_list(a->store, NULL, 200, &e, &n, NULL) < 0)
		return arr;
	for (size_t i = 0; i < n; i++) {
		if (!e[i].migration_id || !STREQ(e[i].step, "done") ||
		    json_object_get(seen, e[i].migration_id))
			continue;
		json_object_set_new(seen, e[i].migration_id, json_true());
		json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s?, s:I}", "migration_id",
						     e[i].migration_id, "domain", e[i].domain,
						     "state", e[i].outcome, "message", e[i].detail,
						     "time", (json_int_t)e[i].time));
	}
	vgm_journal_free(e, n);
	return arr;
}

int route_migrations_list(agent_request *req)
{
	json_t *list = json_array(), *seen = json_object();
	pthread_mutex_lock(&reg_lock);
	for (mig *m = reg_head; m && list && seen; m = m->next) {
		json_array_append_new(list, snapshot_locked(m));
		json_object_set_new(seen, m->id, json_true());
	}
	pthread_mutex_unlock(&reg_lock);
	json_t *recent = recent_from_journal(req->a, seen);
	json_decref(seen);
	return agent_reply_json(req, 200, json_pack("{s:o, s:o}", "migrations", list, "recent", recent));
}

int route_migration_get(agent_request *req)
{
	pthread_mutex_lock(&reg_lock);
	mig *m = find_locked(req->params[0]);
	json_t *snap = m ? snapshot_locked(m) : NULL;
	pthread_mutex_unlock(&reg_lock);
	if (snap)
		return agent_reply_json(req, 200, snap);
	return agent_reply_errorf(req, 404, "not_found",
				  "no migration '%s' on this host; see 'vgpumig status'", req->params[0]);
}

int route_migration_abort(agent_request *req)
{
	json_t *body = req->body_len ? agent_request_json(req) : NULL;
	if (req->body_len && !body)
		return 0; /* agent_request_json replied */
	const char *reason = body ? json_string_value(json_object_get(body, "reason")) : NULL;
	pthread_mutex_lock(&reg_lock);
	mig *m = find_locked(req->params[0]);
	bool finished = m && m->finished;
	if (m && !finished && !m->abort_requested) {
		m->abort_requested = true;
		snprintf(m->abort_reason, sizeof(m->abort_reason), "%s",
			 reason ? reason : "aborted by the operator");
		if (m->handle)
			vgm_migration_request_abort(m->handle, m->abort_reason);
	}
	json_t *snap = m ? snapshot_locked(m) : NULL;
	pthread_mutex_unlock(&reg_lock);
	json_decref(body);
	if (!m)
		return agent_reply_errorf(req, 404, "not_found",
					  "no migration '%s' on this host; see 'vgpumig status'",
					  req->params[0]);
	if (finished) {
		json_decref(snap);
		return agent_reply_errorf(req, 409, "migration_finished",
					  "migration '%s' has already finished", req->params[0]);
	}
	return agent_reply_json(req, 202, snap);
}
