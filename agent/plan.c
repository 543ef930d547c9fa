/* plan.c: the migration plan (expected total time and pause) from the
 * domain's facts and what earlier migrations measured: POST /v1/plan, and
 * the job's planning phase (job-ops.c).
 *
 * Measured figures are reused: the link's rate and fixed overhead per peer,
 * the guest's dirty rate per domain for MIG_DIRTY_FRESH_S; they live in the
 * agent's job manager under its lock (no file-static state). */
#include <math.h>
#include <string.h>

#include "migrations.h"
#include "model/units.h"

#define MIG_DEFAULT_LINK_BPS (1024.0 * 1024 * 1024) /* assumed when nothing was measured */
#define MIG_DIRTY_FRESH_S 60

link_cache jobs_cached_link(agent_jobs *m, const char *peer)
{
	link_cache v = { .link_bps = 0 };
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < ARRAY_SIZE(m->links); i++)
		if (STREQ(m->links[i].name, peer))
			v = m->links[i];
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* link_bps 0 / setup_s 0: keep what is known. */
void jobs_remember_link(agent *a, const char *peer, double link_bps, double setup_s)
{
	agent_jobs *m = a->jobs;
	pthread_mutex_lock(&m->lock);
	size_t slot = 0;
	for (size_t i = 0; i < ARRAY_SIZE(m->links); i++) {
		if (STREQ(m->links[i].name, peer) || !m->links[i].name[0]) {
			slot = i;
			break;
		}
	}
	link_cache *c = &m->links[slot];
	if (!STREQ(c->name, peer))
		*c = (link_cache){ .link_bps = 0 };
	snprintf(c->name, sizeof(c->name), "%s", peer);
	if (link_bps > 0)
		c->link_bps = link_bps;
	if (setup_s > 0)
		c->setup_s = c->setup_s > 0 ? 0.5 * (c->setup_s + setup_s) : setup_s;
	pthread_mutex_unlock(&m->lock);
}

bool jobs_cached_dirty(agent_jobs *m, const char *uuid, double *bps)
{
	bool ok = false;
	int64_t now = mig_now_ns() / 1000000000;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < ARRAY_SIZE(m->dirties); i++)
		if (STREQ(m->dirties[i].uuid, uuid) && now - m->dirties[i].at <= MIG_DIRTY_FRESH_S) {
			*bps = m->dirties[i].bps;
			ok = true;
		}
	pthread_mutex_unlock(&m->lock);
	return ok;
}

static void remember_dirty(agent_jobs *m, const char *uuid, double bps)
{
	pthread_mutex_lock(&m->lock);
	size_t slot = 0;
	int64_t oldest = INT64_MAX;
	for (size_t i = 0; i < ARRAY_SIZE(m->dirties); i++) {
		if (STREQ(m->dirties[i].uuid, uuid)) {
			slot = i;
			break;
		}
		if (m->dirties[i].at < oldest) {
			oldest = m->dirties[i].at;
			slot = i;
		}
	}
	snprintf(m->dirties[slot].uuid, sizeof(m->dirties[slot].uuid), "%s", uuid);
	m->dirties[slot].bps = bps;
	m->dirties[slot].at = mig_now_ns() / 1000000000;
	pthread_mutex_unlock(&m->lock);
}


/* Plan from the domain's facts; *verdict_ok says whether it may go ahead. */
int make_plan(agent *a, prep *p, const plan_req *q, json_t **out, vgm_verdict *v, vgm_plan *pl,
	      vgm_error *err)
{
	double dirty = 0;
	const char *dirty_src = "not_measured";
	if (jobs_cached_dirty(a->jobs, p->lvd->uuid, &dirty)) {
		dirty_src = "recent";
	} else if (q->measure) {
		uint64_t bps = 0;
		int r = vgm_lv_dirty_rate(p->dom, 1, &bps, err);
		if (r < 0)
			return r;
		dirty = (double)bps;
		dirty_src = "measured";
		remember_dirty(a->jobs, p->lvd->uuid, dirty);
	}
	link_cache lc = jobs_cached_link(a->jobs, q->peer);
	double link = lc.link_bps;
	const char *link_src = link > 0 ? "measured" : "assumed";
	if (link <= 0)
		link = MIG_DEFAULT_LINK_BPS;
	uint64_t cap = vgm_limit_or(q->bandwidth_bps, 0); /* 0: uncapped */
	double bw = cap > 0 ? fmin((double)cap, link) : link;
	vgm_model_costs costs = vgm_model_default_costs();
	if (lc.setup_s > 0)
		costs.setup_s = lc.setup_s; /* learnt from earlier migrations to this peer */
	uint64_t max_dt = vgm_limit_or(q->max_downtime_ms, 0);
	uint64_t timeout = vgm_limit_or(q->timeout_ms, 0);
	vgm_model_input in = {
		.ram_bytes = p->lvd->memory_bytes,
		.vgpu_state_bytes = p->vgpu_state_bytes,
		.bandwidth_bps = (uint64_t)bw,
		.link_bps = (uint64_t)link,
		.link_known = lc.link_bps > 0,
		.dirty_bps = (uint64_t)dirty,
		.downtime_limit_ms = 0, /* the controller's rule decides the switchover */
		.costs = costs,
	};
	int r = vgm_model_plan(&in, pl, err);
	if (r < 0)
		return r;
	vgm_model_verdict(pl, max_dt, timeout, v);
	json_t *o = json_pack(
		"{s:I, s:I, s:I, s:b, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I}", "ram_bytes",
		(json_int_t)in.ram_bytes, "vgpu_state_bytes", (json_int_t)p->vgpu_state_bytes,
		"vgpu_declared_bytes", (json_int_t)p->vgpu_declared_bytes, "lab_vgpus", p->lab_vgpus,
		"dirty_rate_bps", (json_int_t)dirty, "dirty_rate_source", dirty_src, "bandwidth_bps",
		(json_int_t)bw, "bandwidth_source",
		cap > 0 ? "given" : link_src, "link_bps", (json_int_t)link,
		"downtime_limit_ms", (json_int_t)in.downtime_limit_ms, "max_downtime_ms",
		(json_int_t)max_dt, "timeout_ms", (json_int_t)timeout);
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

int route_plan(agent_request *req)
{
	_cleanup_(vgm_wire_migration_req_freep) vgm_wire_migration_req *q = NULL;
	mig_cfg c;
	int r = mig_request_begin(req, &q, &c);
	if (r <= 0)
		return r;
	vgm_error err = { 0 };
	prep p;
	plan_req pq = { c.peer_name, q->max_downtime_ms, q->bandwidth_bps, q->timeout_ms, true };
	json_t *plan = NULL;
	vgm_verdict v;
	vgm_plan pl;
	r = prep_domain(req->a, &c, q->domain, &p, &err);
	if (r >= 0)
		r = make_plan(req->a, &p, &pq, &plan, &v, &pl, &err);
	if (r >= 0) {
		json_object_set_new(plan, "domain", json_string(p.lvd->name));
		json_object_set_new(plan, "to", json_string(c.peer_name));
		json_object_set_new(plan, "vgpus", json_integer((json_int_t)p.n));
	}
	prep_clear(&p);
	mig_cfg_clear(&c);
	return r < 0 ? agent_reply_error(req, &err) : agent_reply_json(req, 200, plan);
}

