/* route-evacuate.c: empty this host of its vGPU VMs (POST /v1/evacuations,
 * GET /v1/evacuations[/{id}]), durable and resumable.
 *
 * Planning (in the request, evac-plan.c): the running domains with vGPUs (libvirt), the
 * predicted pause of each (this agent's own POST /v1/plan against the first
 * target: the same model `vgpumig plan` shows), each target's capacity per
 * physical GPU (its GET /v1/capacity), then lib/place.  A dry run answers
 * the placement; otherwise it is stored (lib/store evac.h) before anything
 * moves, the host is cordoned, and a runner starts.
 *
 * Running: `parallel` worker threads take the next pending VM in start order
 * (smallest pause first) whose target has fewer than EVAC_PER_TARGET
 * migrations running, and move it through this agent's own migration API
 * (POST /v1/migrations, then GET /v1/migrations/{id} until it ends), so an
 * evacuation runs exactly the migrations `vgpumig migrate` runs.  A failure
 * re-plans that VM with fresh capacities on the other targets (a target may
 * have filled), up to EVAC_MAX_TRIES; then, with cold_fallback, it moves
 * cold (route-cold.c); else it is left behind with the reason.  Every VM's
 * state is written to the store before the step it names.
 *
 * Resume: at start the agent finds a running evacuation in the store; VMs
 * that were migrating are settled first (libvirt drives a peer-to-peer
 * migration on its own, so the runner waits for the domain's job to end,
 * then asks libvirt whether the domain is still here) and the rest goes on.
 *
 * Invariants: one evacuation runs per host (the store refuses a second);
 * runner state is guarded by r->lock; agent_evacuations_stop joins every
 * worker before the agent frees anything they use. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "api/wire.h"
#include "migrate/cold.h"
#include "migrate/migrate.h"
#include "place/place.h"
#include "routes.h"
#include "store/evac.h"
#include "util/validate.h"
#include "evac.h"
#include "vgpus.h"

#define EVAC_DEFAULT_PARALLEL 2
#define EVAC_PER_TARGET 2
#define EVAC_MAX_TRIES 3
#define EVAC_POLL_MS 250
#define EVAC_SETTLE_S 900 /* longest wait for a migration left running by a restart */

/* ---- the runner ---- */

typedef struct runner {
	agent *a;
	evac_cfg c;
	vgm_wire_evac_req *q;
	vgm_evacuation *e;   /* VM states, under lock; every change also goes to the store */
	unsigned *tries;     /* per VM */
	bool *settle;        /* per VM: was migrating when the agent restarted */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	pthread_t threads[64];
	size_t n_threads;
} runner;

static pthread_mutex_t runners_lock = PTHREAD_MUTEX_INITIALIZER;

static void runner_free(runner *r)
{
	if (!r)
		return;
	evac_cfg_clear(&r->c);
	vgm_wire_evac_req_free(r->q);
	vgm_evacuation_free(r->e);
	free(r->tries);
	free(r->settle);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

static void set_str(char **dst, const char *src)
{
	char *n = evac_dup0(src);
	free(*dst);
	*dst = n;
}

/* Change VM i (lock held) and write it to the store. */
static void vm_update_locked(runner *r, size_t i, const char *state, const char *target,
			     const char *mig, const char *code, const char *msg)
{
	vgm_evac_vm *v = &r->e->vms[i];
	set_str(&v->state, state);
	set_str(&v->target, target);
	set_str(&v->migration_id, mig);
	set_str(&v->code, code);
	set_str(&v->message, msg);
	vgm_error err = { 0 };
	if (vgm_evac_vm_set(r->a->store, r->e->id, v, &err) < 0)
		log_error("evacuation %s: recording %s: %s", r->e->id, v->domain_name, err.message);
	log_info("evacuation %s: %s %s%s%s%s%s", r->e->id, v->domain_name, state,
		 target ? " -> " : "", target ? target : "", msg ? ": " : "", msg ? msg : "");
}

static bool is_active(const char *state)
{
	return STREQ(state, "migrating") || STREQ(state, "cold_migrating");
}

/* The next pending VM (start order) whose target has room; -1 none. */
static int next_vm_locked(runner *r)
{
	for (size_t i = 0; i < r->e->n_vms; i++) {
		const vgm_evac_vm *v = &r->e->vms[i];
		if (!STREQ(v->state, "pending") || !v->target)
			continue;
		unsigned busy = 0;
		for (size_t k = 0; k < r->e->n_vms; k++)
			busy += is_active(r->e->vms[k].state) && r->e->vms[k].target &&
				STREQ(r->e->vms[k].target, v->target);
		if (busy < EVAC_PER_TARGET)
			return (int)i;
	}
	return -1;
}

static bool any_active_locked(const runner *r)
{
	for (size_t i = 0; i < r->e->n_vms; i++)
		if (is_active(r->e->vms[i].state))
			return true;
	return false;
}

static bool stopping(runner *r)
{
	pthread_mutex_lock(&r->lock);
	bool s = r->stop;
	pthread_mutex_unlock(&r->lock);
	return s;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- one VM ---- */

typedef struct move {
	char uuid[40];
	char name[VGM_WIRE_MAX_TEXT + 1];
	char target[VGM_WIRE_MAX_ID + 1];
	bool cold;
} move;

static int poll_migration(runner *r, vgm_client *self, const char *id, vgm_wire_mig_brief *b,
			  vgm_error *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/v1/migrations/%s", id);
	for (;;) {
		json_t *reply = NULL;
		vgm_wire_mig_brief_clear(b);
		int rc = vgm_client_json(self, "GET", path, NULL, NULL, &reply, err);
		if (rc >= 0)
			rc = vgm_wire_mig_brief_from_json(reply, b, err);
		json_decref(reply);
		if (rc < 0)
			return rc;
		if (b->state && !STREQ(b->state, "running"))
			return 0;
		if (stopping(r))
			return -ECANCELED;
		nap_ms(EVAC_POLL_MS);
	}
}

/* A live migration through this agent's own API: 1 moved, 0 failed (b
 * says why), -ECANCELED when the agent stops meanwhile. */
static int move_live(runner *r, size_t i, const move *m, vgm_wire_mig_brief *b)
{
	_cleanup_(vgm_client_freep) vgm_client *self = NULL;
	vgm_error err = { 0 };
	vgm_limit dt = r->q->max_downtime_ms;
	vgm_wire_migration_req q = { (char *)m->uuid, (char *)m->target, dt.set ? (int64_t)dt.value : -1,
				     -1, -1, false, false };
	json_t *body = vgm_wire_migration_req_encode(&q), *reply = NULL;
	int rc = body ? self_client(&r->c, &self, &err) : vgm_error_set(&err, ENOMEM, "out of memory");
	if (rc >= 0)
		rc = vgm_client_json(self, "POST", "/v1/migrations", body, NULL, &reply, &err);
	if (rc >= 0)
		rc = vgm_wire_mig_brief_from_json(reply, b, &err);
	json_decref(body);
	json_decref(reply);
	if (rc >= 0 && !b->migration_id)
		rc = vgm_error_setr(&err, EPROTO, "bad_reply", "the agent started no migration");
	if (rc >= 0) {
		_cleanup_free_ char *id = strdup(b->migration_id);
		pthread_mutex_lock(&r->lock);
		vm_update_locked(r, i, "migrating", m->target, id, NULL, NULL);
		pthread_mutex_unlock(&r->lock);
		rc = id ? poll_migration(r, self, id, b, &err) : -ENOMEM;
		if (rc >= 0 && !b->migration_id)
			b->migration_id = evac_dup0(id);
	}
	if (rc == -ECANCELED)
		return rc;
	if (rc < 0) {
		vgm_wire_mig_brief_clear(b);
		b->code = evac_dup0(err.reason[0] ? err.reason : "migration_failed");
		b->message = evac_dup0(vgm_error_message(&err));
		return 0;
	}
	return STREQ(b->state, "succeeded") ? 1 : 0;
}

/* Where the VM can go now, other than `failed`: fresh capacities, the
 * VM as libvirt shows it.  NULL when nowhere (or it is no longer here). */
static char *replan(runner *r, const move *m)
{
	evac_cfg *c = &r->c;
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	local_vm v = { 0 };
	bool have = vgm_lv_open(c->libvirt_uri, &conn, NULL) >= 0 &&
		    vgm_lv_lookup(conn, m->uuid, &dom, NULL) >= 0 &&
		    vgm_inventory_load(r->a->host, &inv, NULL) >= 0 &&
		    read_vm(dom, inv, agent_lab_mode(r->a), &v) > 0;
	if (dom)
		virDomainFree(dom);
	vgm_lv_close(conn);
	char *target = NULL;
	planning p = { 0 };
	vgm_error err = { 0 };
	vgm_wire_evac_req q = *r->q;
	if (have && load_targets(c, &q, &p, &err) >= 0) {
		vgm_place_vm pv = { v.name, (const char *const *)v.profiles, v.n, v.ram, -1, false, NULL };
		size_t kept = 0;
		for (size_t t = 0; t < p.n_targets; t++)
			if (!STREQ(p.targets[t].name, m->target))
				kept++;
		_cleanup_free_ vgm_place_target *others = calloc(kept + 1, sizeof(*others));
		for (size_t t = 0, k = 0; others && t < p.n_targets; t++)
			if (!STREQ(p.targets[t].name, m->target))
				others[k++] = p.targets[t];
		vgm_place_input in = { &pv, 1, others, kept };
		_cleanup_(vgm_placement_freep) vgm_placement *pl = NULL;
		if (others && vgm_place(&in, true, &pl, &err) >= 0 && pl->entries[0].target >= 0)
			target = evac_dup0(others[pl->entries[0].target].name);
	} else if (have) {
		log_warn("evacuation %s: re-planning %s: %s", r->e->id, m->name, err.message);
	}
	planning_clear(&p);
	free(v.name);
	vgm_strv_free(v.profiles, v.n);
	return target;
}

/* The job id is recorded before the job runs: after a restart the same id
 * finds the same claim on the target instead of leaving it to its lease. */
static void move_cold(runner *r, size_t i, const move *m)
{
	vgm_wire_cold_req q = { (char *)m->uuid, (char *)m->target, VGM_LIMIT_UNSET, false };
	char id[48] = "", uuid[VGM_UUID_LEN + 1];
	vgm_cold_result res;
	vgm_error err = { 0 };
	pthread_mutex_lock(&r->lock);
	const char *known = r->e->vms[i].migration_id;
	if (known && !strncmp(known, "cold-", 5))
		snprintf(id, sizeof(id), "%s", known);
	else if (vgm_uuid_generate(uuid) >= 0)
		snprintf(id, sizeof(id), "cold-%s", uuid);
	vm_update_locked(r, i, "cold_migrating", m->target, id[0] ? id : NULL, "cold", NULL);
	pthread_mutex_unlock(&r->lock);
	int rc = agent_cold_migrate(r->a, &q, id, &res, &err);
	pthread_mutex_lock(&r->lock);
	if (rc >= 0)
		vm_update_locked(r, i, "cold_moved", m->target, id, res.warnings[0] ? "warnings" : NULL,
				 res.warnings[0] ? res.warnings : NULL);
	else
		vm_update_locked(r, i, "left_behind", m->target, id[0] ? id : NULL,
				 err.reason[0] ? err.reason : "cold_failed", vgm_error_message(&err));
	pthread_mutex_unlock(&r->lock);
}

/* A live move failed: another target, else cold (when allowed), else left
 * behind.  Returns true when the caller should move it cold now. */
static bool after_failure(runner *r, size_t i, move *m, const vgm_wire_mig_brief *b)
{
	bool aborted = b->state && STREQ(b->state, "aborted");
	_cleanup_free_ char *other = aborted ? NULL : replan(r, m);
	pthread_mutex_lock(&r->lock);
	bool cold = false;
	const char *code = b->code ? b->code : "migration_failed";
	if (other && ++r->tries[i] < EVAC_MAX_TRIES) {
		vm_update_locked(r, i, "pending", other, NULL, code, b->message);
	} else if (r->q->cold_fallback && !aborted) {
		vm_update_locked(r, i, "cold_migrating", m->target, NULL, "cold", b->message);
		cold = true;
	} else {
		vm_update_locked(r, i, "left_behind", m->target, b->migration_id, code, b->message);
	}
	pthread_mutex_unlock(&r->lock);
	return cold;
}

static void run_one(runner *r, size_t i, move *m)
{
	if (!m->cold) {
		vgm_wire_mig_brief b = { 0 };
		int rc = move_live(r, i, m, &b);
		if (rc > 0) {
			pthread_mutex_lock(&r->lock);
			vm_update_locked(r, i, "moved", m->target, b.migration_id, NULL, NULL);
			pthread_mutex_unlock(&r->lock);
		}
		m->cold = rc == 0 && after_failure(r, i, m, &b);
		vgm_wire_mig_brief_clear(&b);
		if (!m->cold)
			return;
	}
	move_cold(r, i, m);
}

static void *worker(void *arg)
{
	runner *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		int i = next_vm_locked(r);
		if (i < 0) {
			if (!any_active_locked(r))
				break;
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		vgm_evac_vm *v = &r->e->vms[i];
		move m = { .cold = v->code && STREQ(v->code, "cold") };
		snprintf(m.uuid, sizeof(m.uuid), "%s", v->domain_uuid);
		snprintf(m.name, sizeof(m.name), "%s", v->domain_name);
		snprintf(m.target, sizeof(m.target), "%s", v->target);
		/* taken before the lock drops, so no other worker starts it */
		_cleanup_free_ char *mig = m.cold ? evac_dup0(v->migration_id) : NULL;
		vm_update_locked(r, (size_t)i, m.cold ? "cold_migrating" : "migrating", m.target, mig,
				 m.cold ? "cold" : NULL, NULL);
		pthread_mutex_unlock(&r->lock);
		run_one(r, (size_t)i, &m);
		pthread_mutex_lock(&r->lock);
		pthread_cond_broadcast(&r->cond);
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- resume: VMs that were moving when the agent stopped ---- */

/* Wait for the domain's libvirt job to end (a peer-to-peer migration goes
 * on without us), then: still running here -> pending again; gone -> moved. */
static void settle_one(runner *r, virConnectPtr conn, size_t i)
{
	pthread_mutex_lock(&r->lock);
	char uuid[40];
	snprintf(uuid, sizeof(uuid), "%s", r->e->vms[i].domain_uuid);
	bool was_cold = STREQ(r->e->vms[i].state, "cold_migrating");
	pthread_mutex_unlock(&r->lock);
	virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
	for (int s = 0; dom && s < EVAC_SETTLE_S * 2 && !stopping(r); s++) {
		virDomainJobInfo ji;
		if (virDomainGetJobInfo(dom, &ji) < 0 || ji.type == VIR_DOMAIN_JOB_NONE)
			break;
		nap_ms(500);
	}
	bool here = dom && virDomainIsActive(dom) == 1;
	if (dom)
		virDomainFree(dom);
	if (stopping(r))
		return;
	pthread_mutex_lock(&r->lock);
	vgm_evac_vm *v = &r->e->vms[i];
	_cleanup_free_ char *target = evac_dup0(v->target), *mig = evac_dup0(v->migration_id);
	if (here)
		vm_update_locked(r, i, "pending", target, was_cold ? mig : NULL, was_cold ? "cold" : NULL,
				 "resumed after an agent restart");
	else
		vm_update_locked(r, i, was_cold ? "cold_moved" : "moved", target, mig, NULL,
				 "finished while the agent was down");
	pthread_mutex_unlock(&r->lock);
}

static void settle(runner *r)
{
	virConnectPtr conn = NULL;
	vgm_error err = { 0 };
	if (vgm_lv_open(r->c.libvirt_uri, &conn, &err) < 0) {
		log_error("evacuation %s: cannot resume: %s", r->e->id, err.message);
		return;
	}
	for (size_t i = 0; i < r->e->n_vms && !stopping(r); i++)
		if (r->settle[i])
			settle_one(r, conn, i);
	vgm_lv_close(conn);
}

/* ---- the runner's life ---- */

/* The host refuses incoming claims while it is emptied.  `vgpumig host
 * cordon` lives in another part of the agent: asked through the local API,
 * and an agent without it only logs. */
static void evac_cordon(runner *r)
{
	_cleanup_(vgm_client_freep) vgm_client *self = NULL;
	vgm_error err = { 0 };
	if (self_client(&r->c, &self, &err) >= 0 &&
	    vgm_client_json(self, "POST", "/v1/host/cordon", NULL, NULL, NULL, &err) >= 0)
		log_info("evacuation %s: %s cordoned", r->e->id, r->c.host_name);
	else
		log_info("evacuation %s: %s not cordoned: %s", r->e->id, r->c.host_name,
			 vgm_error_message(&err));
}

static void *runner_main(void *arg)
{
	runner *r = arg;
	evac_cordon(r);
	settle(r);
	size_t n = r->q->parallel.set ? r->q->parallel.value : EVAC_DEFAULT_PARALLEL;
	for (size_t t = 0; t < MIN(n, ARRAY_SIZE(r->threads)); t++)
		if (pthread_create(&r->threads[t], NULL, worker, r) == 0)
			r->n_threads++;
	for (size_t t = 0; t < r->n_threads; t++)
		pthread_join(r->threads[t], NULL);
	if (!stopping(r)) {
		vgm_error err = { 0 };
		if (r->n_threads == 0)
			log_error("evacuation %s: no worker thread could start", r->e->id);
		else if (vgm_evac_set_state(r->a->store, r->e->id, "done", &err) < 0)
			log_error("evacuation %s: %s", r->e->id, err.message);
		else
			log_info("evacuation %s: done", r->e->id);
	}
	return NULL;
}

typedef struct runner_slot {
	runner *r;
	pthread_t main;
} runner_slot;

static runner_slot slot;

/* Join and free a runner whose work has ended (runners_lock held). */
static void reap_locked(bool force)
{
	if (!slot.r)
		return;
	if (force) {
		pthread_mutex_lock(&slot.r->lock);
		slot.r->stop = true;
		pthread_cond_broadcast(&slot.r->cond);
		pthread_mutex_unlock(&slot.r->lock);
	}
	pthread_join(slot.main, NULL);
	runner_free(slot.r);
	slot.r = NULL;
}

static int runner_start(agent *a, const char *id, bool resumed, vgm_error *err)
{
	runner *r = calloc(1, sizeof(*r));
	if (!r)
		return vgm_error_set(err, ENOMEM, "out of memory");
	r->a = a;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	int rc = evac_cfg_get(a, &r->c, err);
	if (rc >= 0)
		rc = vgm_evac_get(a->store, id, &r->e, err);
	if (rc >= 0)
		rc = vgm_wire_evac_req_decode(r->e->request, strlen(r->e->request), &r->q, err);
	if (rc >= 0 && (!(r->tries = calloc(r->e->n_vms + 1, sizeof(*r->tries))) ||
			!(r->settle = calloc(r->e->n_vms + 1, sizeof(*r->settle)))))
		rc = vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; rc >= 0 && resumed && i < r->e->n_vms; i++)
		r->settle[i] = is_active(r->e->vms[i].state);
	pthread_mutex_lock(&runners_lock);
	reap_locked(false); /* the previous one has finished: the store said so */
	if (rc >= 0 && pthread_create(&slot.main, NULL, runner_main, r) != 0)
		rc = vgm_error_set(err, EAGAIN, "cannot start the evacuation thread");
	if (rc >= 0)
		slot.r = r;
	pthread_mutex_unlock(&runners_lock);
	if (rc < 0)
		runner_free(r);
	return rc;
}

void agent_evacuations_resume(agent *a)
{
	char **ids = NULL;
	size_t n = 0;
	vgm_error err = { 0 };
	if (vgm_evac_list(a->store, "running", &ids, &n, &err) < 0)
		log_error("evacuations: %s", err.message);
	for (size_t i = 0; i < n && i < 1; i++) {
		if (runner_start(a, ids[i], true, &err) < 0)
			log_error("evacuation %s: cannot resume: %s", ids[i], err.message);
		else
			log_info("evacuation %s: resumed after a restart", ids[i]);
	}
	vgm_strv_free(ids, n);
}

void agent_evacuations_stop(agent *a)
{
	(void)a;
	pthread_mutex_lock(&runners_lock);
	reap_locked(true);
	pthread_mutex_unlock(&runners_lock);
}

/* ---- routes ---- */

static int reply_record(agent_request *req, int status, const vgm_evacuation *e)
{
	json_t *body = vgm_wire_evacuation_encode(e);
	return body ? agent_reply_json(req, status, body)
		    : agent_reply_errorf(req, 500, "internal", "out of memory");
}

/* Store the plan, then start moving. */
static int start_evacuation(agent_request *req, const vgm_wire_evac_req *q, vgm_evacuation *e)
{
	vgm_error err = { 0 };
	char uuid[VGM_UUID_LEN + 1], id[64];
	_cleanup_free_ char *request = NULL;
	json_t *rq = vgm_wire_evac_req_encode(q);
	if (rq)
		request = json_dumps(rq, JSON_COMPACT);
	json_decref(rq);
	if (!request || vgm_uuid_generate(uuid) < 0)
		return agent_reply_errorf(req, 500, "internal", "out of memory");
	snprintf(id, sizeof(id), "evac-%s", uuid);
	e->id = id;
	e->state = "running";
	e->request = request;
	int r = vgm_evac_create(req->a->store, e, &err);
	if (r >= 0)
		r = runner_start(req->a, id, false, &err);
	if (r < 0)
		return agent_reply_error(req, &err);
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *stored = NULL;
	if (vgm_evac_get(req->a->store, id, &stored, &err) < 0)
		return agent_reply_error(req, &err);
	return reply_record(req, 202, stored);
}

int route_evacuations_create(agent_request *req)
{
	_cleanup_(vgm_wire_evac_req_freep) vgm_wire_evac_req *q = NULL;
	vgm_error err = { 0 };
	if (vgm_wire_evac_req_decode(req->body ? req->body : "", req->body_len, &q, &err) < 0)
		return agent_reply_error(req, &err);
	evac_cfg c;
	if (evac_cfg_get(req->a, &c, &err) < 0)
		return agent_reply_error(req, &err);
	if (!STREQ(q->host, c.host_name)) {
		int rc = agent_reply_errorf(req, 400, "not_this_host",
					    "this agent runs %s, not %s: run 'vgpumig evacuate %s' on %s itself",
					    c.host_name, q->host, q->host, q->host);
		evac_cfg_clear(&c);
		return rc;
	}
	planning p = { 0 };
	int r = plan_evacuation(req->a, &c, q, &p, &err);
	evac_cfg_clear(&c);
	_cleanup_free_ vgm_evac_vm *vms = r >= 0 ? record_vms(&p) : NULL;
	if (r >= 0 && !vms)
		r = vgm_error_set(&err, ENOMEM, "out of memory");
	if (r < 0) {
		planning_clear(&p);
		return agent_reply_error(req, &err);
	}
	vgm_evacuation e = { "dry-run", "dry_run", NULL, 0, 0, vms, p.placement->n };
	r = q->dry_run ? reply_record(req, 200, &e) : start_evacuation(req, q, &e);
	planning_clear(&p);
	return r;
}

int route_evacuations_list(agent_request *req)
{
	char **ids = NULL;
	size_t n = 0;
	vgm_error err = { 0 };
	if (vgm_evac_list(req->a->store, NULL, &ids, &n, &err) < 0)
		return agent_reply_error(req, &err);
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n && i < 20; i++) {
		_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = NULL;
		if (vgm_evac_get(req->a->store, ids[i], &e, &err) >= 0)
			json_array_append_new(arr, vgm_wire_evacuation_encode(e));
	}
	vgm_strv_free(ids, n);
	return arr ? agent_reply_json(req, 200, json_pack("{s:o}", "evacuations", arr))
		   : agent_reply_errorf(req, 500, "internal", "out of memory");
}

int route_evacuation_get(agent_request *req)
{
	_cleanup_(vgm_evacuation_freep) vgm_evacuation *e = NULL;
	vgm_error err = { 0 };
	if (vgm_evac_get(req->a->store, req->params[0], &e, &err) < 0)
		return agent_reply_error(req, &err);
	return reply_record(req, 200, e);
}
