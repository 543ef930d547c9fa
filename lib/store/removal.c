/* removal.c: take the devices this agent created out of sysfs once nothing
 * owns them, without ever removing one a VM uses and without ever stalling
 * the store on a sysfs write.
 *
 * Why threads: current kernels do not answer EBUSY to a write to an mdev's
 * `remove` while the device is open; the write blocks until the VM lets go.
 * A blocked write cannot be cancelled, so each removal runs on a thread of
 * its own, the pass waits for it at most remove_deadline_ms, and a write
 * still running after that is reported as blocked and collected by a later
 * pass.  Nothing is lost: the devices_created row stays until the device is
 * known to be gone, and a device with a removal running gets no second one.
 *
 * Rules, in the order a pass applies them:
 *   1. results of earlier removals are collected (a removed or vanished
 *      device forgets its row; a failure is reported and retried);
 *   2. candidates are devices_created rows no claim or assignment owns; the
 *      claims engine counts every devices_created row as taken, so a
 *      candidate cannot gain an owner while it is being removed;
 *   3. in_use is asked about all domains (the agent asks libvirt, running
 *      and defined); a device a domain uses is kept, and when in_use fails
 *      ("cannot tell") nothing at all is removed;
 *   4. the rest are removed, each on its own thread.
 * s->lock is held only to read and write rows, never across the in_use call
 * or a sysfs write, so claims and hook answers go on meanwhile.
 *
 * Lifetime: the remover (its lock, condition and jobs) is shared by the store
 * and every running worker, and freed by whichever lets go last, so closing
 * the store while a write is blocked in the kernel is safe. */
#include <string.h>

#include "store-internal.h"

typedef struct store_removal {
	struct store_removal *next;
	struct store_remover *rm;
	char *id;
	vgm_store_devops ops; /* copied: the worker needs no store */
	vgm_host *h;
	int64_t started_ms;
	unsigned pass;
	bool done;
	int result;
	vgm_error err;
} store_removal;

typedef struct store_remover {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job finished */
	unsigned refs;       /* the store + each running worker */
	store_removal *jobs;
} store_remover;

static void removal_free(store_removal *j)
{
	if (!j)
		return;
	free(j->id);
	free(j);
}

static void remover_free(store_remover *rm)
{
	for (store_removal *j = rm->jobs, *next; j; j = next) {
		next = j->next;
		removal_free(j);
	}
	pthread_cond_destroy(&rm->cond);
	pthread_mutex_destroy(&rm->lock);
	free(rm);
}

/* Drop one reference; rm->lock held on entry, released on return. */
static void remover_unref_unlock(store_remover *rm)
{
	bool last = --rm->refs == 0;
	pthread_mutex_unlock(&rm->lock);
	if (last)
		remover_free(rm);
}

int store_remover_new(vgm_store *s)
{
	store_remover *rm = calloc(1, sizeof(*rm));
	pthread_condattr_t ca;
	if (!rm)
		return -ENOMEM;
	pthread_mutex_init(&rm->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rm->cond, &ca);
	pthread_condattr_destroy(&ca);
	rm->refs = 1;
	s->remover = rm;
	return 0;
}

void store_remover_release(vgm_store *s)
{
	if (!s->remover)
		return;
	pthread_mutex_lock(&s->remover->lock);
	remover_unref_unlock(TAKE_PTR(s->remover));
}

static void *removal_worker(void *arg)
{
	store_removal *j = arg;
	vgm_error err = {0};
	int r = j->ops.remove(j->ops.ctx, j->h, j->id, &err);
	store_remover *rm = j->rm;
	pthread_mutex_lock(&rm->lock);
	j->result = r;
	j->err = err;
	j->done = true;
	pthread_cond_broadcast(&rm->cond);
	remover_unref_unlock(rm);
	return NULL;
}

static bool removal_running(store_remover *rm, const char *id)
{
	for (store_removal *j = rm->jobs; j; j = j->next)
		if (strcasecmp(j->id, id) == 0)
			return true;
	return false;
}

/* Start removing id on its own thread; 0, or -errno when no thread. */
static int removal_start(vgm_store *s, vgm_host *h, const char *id, unsigned pass)
{
	store_remover *rm = s->remover;
	store_removal *j = calloc(1, sizeof(*j));
	if (!j || !(j->id = strdup(id))) {
		removal_free(j);
		return -ENOMEM;
	}
	*j = (store_removal){.rm = rm, .id = j->id, .ops = s->devops, .h = h,
			     .started_ms = store_mono_ms(), .pass = pass};
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&rm->lock);
	rm->refs++;
	int k = pthread_create(&t, &at, removal_worker, j);
	if (k == 0) {
		j->next = rm->jobs;
		rm->jobs = j;
	} else
		rm->refs--;
	pthread_mutex_unlock(&rm->lock);
	pthread_attr_destroy(&at);
	if (k != 0)
		removal_free(j);
	return -k;
}

/* Wait until every removal of this pass finished or the deadline passed. */
static void removals_wait(store_remover *rm, unsigned pass, int64_t deadline_ms)
{
	struct timespec until = {deadline_ms / 1000, (deadline_ms % 1000) * 1000000L};
	pthread_mutex_lock(&rm->lock);
	for (;;) {
		bool waiting = false;
		for (store_removal *j = rm->jobs; j && !waiting; j = j->next)
			waiting = j->pass == pass && !j->done;
		if (!waiting || pthread_cond_timedwait(&rm->cond, &rm->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&rm->lock);
}

/* Take the finished jobs off the list (the caller owns them). */
static store_removal *removals_take_done(store_remover *rm)
{
	store_removal *done = NULL, **pp = &rm->jobs;
	pthread_mutex_lock(&rm->lock);
	while (*pp) {
		store_removal *j = *pp;
		if (!j->done) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		j->next = done;
		done = j;
	}
	pthread_mutex_unlock(&rm->lock);
	return done;
}

static void count(size_t *c)
{
	(*c)++;
}

/* Rule 1 for one finished job; the caller holds s->lock. */
static int removal_settle(vgm_store *s, const store_removal *j, vgm_reconcile_report *rep,
			  store_actions *act, vgm_error *err)
{
	if (j->result < 0 && j->result != -ENOENT) {
		store_inventory_suspect(s);
		count(&rep->remove_failed);
		store_action(act, "could not remove %s (created by this agent, owned by nothing): "
				  "%s; will retry", j->id, vgm_error_message(&j->err));
		return 0;
	}
	store_inventory_note_remove(s, j->id);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "DELETE FROM devices_created WHERE id = ?1"
				 " AND id NOT IN (SELECT device_id FROM device_owners)", &st, err);
	if (r == 0) {
		sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
		r = store_step_done(s, st, "forgetting a removed device", err);
	}
	if (r == 0 && j->result == 0) {
		count(&rep->removed);
		store_action(act, "removed %s (created by this agent, owned by nothing)", j->id);
	}
	return r;
}

static int removals_collect(vgm_store *s, vgm_reconcile_report *rep, store_actions *act,
			    vgm_error *err)
{
	store_removal *done = removals_take_done(s->remover);
	int r = 0;
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = done ? store_lock(s) : NULL;
	for (store_removal *j = done, *next; j; j = next) {
		next = j->next;
		if (r == 0)
			r = removal_settle(s, j, rep, act, err);
		removal_free(j);
	}
	return r;
}

/* Rule 2: unowned created devices with no removal running. */
static int removal_candidates(vgm_store *s, const char *claim_id, char ***out, size_t *n,
			      vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT id FROM devices_created WHERE (?1 IS NULL OR for_claim = ?1)"
			      " AND id NOT IN (SELECT device_id FROM device_owners) ORDER BY id",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, claim_id, -1, SQLITE_STATIC);
	r = store_collect_text(s, st, "listing devices to remove", out, n, err);
	if (r < 0)
		return r;
	size_t k = 0;
	pthread_mutex_lock(&s->remover->lock);
	for (size_t i = 0; i < *n; i++) {
		if (removal_running(s->remover, (*out)[i]))
			free((*out)[i]);
		else
			(*out)[k++] = (*out)[i];
	}
	pthread_mutex_unlock(&s->remover->lock);
	*n = k;
	return 0;
}

static const vgm_device_use *find_use(const vgm_device_use *u, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (u[i].device_id && strcasecmp(u[i].device_id, id) == 0)
			return &u[i];
	return NULL;
}

/* Rules 3 and 4 for the candidates; returns how many removals started. */
static size_t removals_start_unused(vgm_store *s, vgm_host *h, char **ids, size_t n,
				    unsigned pass, vgm_reconcile_report *rep, store_actions *act)
{
	vgm_device_use *uses = NULL;
	size_t n_uses = 0, started = 0;
	vgm_error uerr = {0};
	if (store_load_uses(s, &uses, &n_uses, &uerr) < 0) {
		rep->remove_kept += n;
		store_action(act, "removing none of %zu unowned device(s) this agent created: "
				  "cannot tell which devices VMs use (%s); kept until it can",
			     n, vgm_error_message(&uerr));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const vgm_device_use *u = find_use(uses, n_uses, ids[i]);
		if (u) {
			count(&rep->remove_kept);
			store_action(act, "kept %s (created by this agent, owned by no claim): domain "
					  "%s uses it", ids[i], u->domain_uuid ? u->domain_uuid : "?");
		} else if (removal_start(s, h, ids[i], pass) < 0) {
			count(&rep->remove_failed);
			store_action(act, "could not start removing %s: no thread; will retry", ids[i]);
		} else
			started++;
	}
	vgm_device_uses_free(uses, n_uses);
	return started;
}

static void removals_report_blocked(vgm_store *s, vgm_reconcile_report *rep, store_actions *act)
{
	store_remover *rm = s->remover;
	int64_t now = store_mono_ms();
	pthread_mutex_lock(&rm->lock);
	for (store_removal *j = rm->jobs; j; j = j->next) {
		if (j->done || now - j->started_ms < s->remove_deadline_ms)
			continue;
		count(&rep->remove_blocked);
		store_action(act, "removal of %s blocked for %lld ms (the device is probably still "
				  "open); it is retried until it finishes", j->id,
			     (long long)(now - j->started_ms));
	}
	pthread_mutex_unlock(&rm->lock);
}

int store_removal_pass(vgm_store *s, vgm_host *h, const char *claim_id,
		       vgm_reconcile_report *rep_in, vgm_error *err)
{
	vgm_reconcile_report local = {0};
	vgm_reconcile_report *rep = rep_in ? rep_in : &local;
	store_actions act = {&rep->actions, &rep->n_actions};
	char **ids = NULL;
	size_t n = 0;
	int r = removals_collect(s, rep, &act, err);
	if (r == 0)
		r = removal_candidates(s, claim_id, &ids, &n, err);
	if (r == 0 && n > 0) {
		pthread_mutex_lock(&s->remover->lock);
		unsigned pass = ++s->removal_pass;
		pthread_mutex_unlock(&s->remover->lock);
		if (removals_start_unused(s, h, ids, n, pass, rep, &act) > 0) {
			removals_wait(s->remover, pass, store_mono_ms() + s->remove_deadline_ms);
			r = removals_collect(s, rep, &act, err);
		}
	}
	store_strv_free(ids, n);
	removals_report_blocked(s, rep, &act);
	vgm_reconcile_report_clear(&local);
	return r;
}
