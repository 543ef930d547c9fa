/* housekeeping.c: the periodic work of the main thread.
 *
 * One timer drives everything that is not a reply to a request: reconcile
 * (expired leases released, store and sysfs compared), the libvirt pass
 * (in-use cache, vGPU metadata, assignments of domains that left), the
 * hook events queued for that pass, and the facts cache.  A tick that fails
 * logs once and the next tick tries again; nothing here exits. */
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "metrics.h"
#include "migrations.h"
#include "routes.h"

#define FACTS_EVERY_S 30
/* Jobs whose outcome was unknown (libvirt unreachable) are asked again. */
#define RESUME_EVERY_S 60
/* The inventory cache's safety net: parents re-read per tick (every 5 s at
 * most), so a 256-parent host is read once over in about 80 s, a few
 * parents at a time and never under the store lock. */
#define INVENTORY_PARENTS_PER_TICK 16

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static json_t *report_json(const vgm_reconcile_report *r)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "released", (json_int_t)r->expired, "expired", (json_int_t)r->expired,
			      "auto_committed", (json_int_t)r->auto_committed, "pending_dropped",
			      (json_int_t)r->pending_dropped, "removed", (json_int_t)r->removed,
			      "remove_failed", (json_int_t)r->remove_failed, "remove_blocked",
			      (json_int_t)r->remove_blocked, "remove_kept", (json_int_t)r->remove_kept,
			      "dropped_created",
			      (json_int_t)r->dropped_created, "dropped_owned", (json_int_t)r->dropped_owned,
			      "pruned", (json_int_t)r->pruned);
	json_t *actions = json_array();

	for (size_t i = 0; actions && i < r->n_actions; i++)
		json_array_append_new(actions, json_string(r->actions[i]));
	if (o)
		json_object_set_new(o, "actions", actions ? actions : json_array());
	else
		json_decref(actions);
	return o;
}

/* Devices we created that should be gone but are not: the operator may have
 * to act (stop a VM, bring libvirt back).  The timer warns when the numbers
 * change, not on every tick; gc (an operator asking) always does. */
static void warn_removals(agent *a, const vgm_reconcile_report *rep, bool timer)
{
	bool changed = rep->remove_blocked != a->warned_blocked ||
		       rep->remove_kept != a->warned_kept;

	if (timer && !changed)
		return;
	if (timer) {
		a->warned_blocked = rep->remove_blocked;
		a->warned_kept = rep->remove_kept;
	}
	if (rep->remove_blocked)
		log_warn("reconcile: %zu vGPU removal(s) blocked in sysfs (device still open?); "
			 "retrying", rep->remove_blocked);
	if (rep->remove_kept)
		log_warn("reconcile: %zu unowned vGPU(s) this agent created kept: a domain uses "
			 "them or libvirt cannot tell; retrying", rep->remove_kept);
}

static int reconcile_logged(agent *a, vgm_reconcile_report *rep, bool timer, vgm_error *err)
{
	int r = vgm_reconcile(a->store, a->host, rep, err);

	for (size_t i = 0; r >= 0 && i < rep->n_actions; i++)
		log_info("reconcile: %s", rep->actions[i]);
	if (r >= 0)
		warn_removals(a, rep, timer);
	return r;
}

int agent_gc(agent *a, json_t **out, vgm_error *err)
{
	vgm_reconcile_report rep = { 0 };
	int r = reconcile_logged(a, &rep, false, err);

	*out = r < 0 ? NULL : report_json(&rep);
	vgm_reconcile_report_clear(&rep);
	if (r >= 0 && !*out)
		return vgm_error_set(err, ENOMEM, "out of memory");
	return r;
}

void agent_queue_event(agent *a, const char *domain_uuid, const char *domain_name)
{
	agent_pending_event *e = calloc(1, sizeof(*e));

	if (!e || !(e->domain_uuid = strdup(domain_uuid)) ||
	    !(e->domain_name = strdup(domain_name ? domain_name : "?"))) {
		if (e)
			free(e->domain_uuid);
		free(e);
		log_error("out of memory queueing the release of domain %s", domain_uuid);
		return;
	}
	pthread_mutex_lock(&a->lock);
	e->next = a->events;
	a->events = e;
	pthread_mutex_unlock(&a->lock);
}

/* Domains whose QEMU ended ("release end"): release their devices if they
 * left this host; keep them when the domain only shut down here. */
static void process_events(agent *a)
{
	agent_pending_event *e, *next;

	pthread_mutex_lock(&a->lock);
	e = a->events;
	a->events = NULL;
	pthread_mutex_unlock(&a->lock);
	for (; e; e = next) {
		int left = agent_virt_domain_left(a, e->domain_uuid);
		vgm_error err = { 0 };
		size_t n = 0;

		next = e->next;
		if (left < 0) { /* libvirt unreachable: try again next tick */
			e->next = NULL;
			agent_queue_event(a, e->domain_uuid, e->domain_name);
		} else if (left == 0) {
			log_debug("domain %s (%s) stopped but did not leave: its vGPUs stay assigned",
				  e->domain_name, e->domain_uuid);
		} else if (vgm_assignment_release_domain(a->store, a->host, e->domain_uuid, &n, &err) < 0) {
			log_error("releasing the vGPUs of domain %s (%s): %s", e->domain_name,
				  e->domain_uuid, vgm_error_message(&err));
		} else if (n) {
			log_info("domain %s (%s) left this host: released %zu vGPU assignment(s)",
				 e->domain_name, e->domain_uuid, n);
			agent_metrics_migration(a->metrics, "outgoing_succeeded");
		}
		free(e->domain_uuid);
		free(e->domain_name);
		free(e);
	}
}

void agent_housekeeping(agent *a)
{
	vgm_reconcile_report rep = { 0 };
	vgm_error err = { 0 };
	json_t *facts;

	/* libvirt first: the reconcile commits a claim whose VM runs here and
	 * expires the others, and removes devices only with a fresh view of what
	 * every domain uses.  While libvirt cannot be reached, agent_in_use
	 * fails and the reconcile expires and removes nothing. */
	if (a->virt) {
		agent_virt_sync(a);
		process_events(a);
	}
	if (reconcile_logged(a, &rep, true, &err) < 0)
		log_error("reconcile: %s", vgm_error_message(&err));
	for (size_t i = 0; i < rep.expired; i++)
		agent_metrics_migration(a->metrics, "incoming_expired");
	vgm_reconcile_report_clear(&rep);
	/* At start (after the reconcile) and then every RESUME_EVERY_S: jobs the
	 * store says are running and no worker runs. */
	if (a->jobs && (!a->jobs_resumed || now_s() - a->jobs_resumed_at >= RESUME_EVERY_S)) {
		a->jobs_resumed = true;
		a->jobs_resumed_at = now_s();
		agent_jobs_resume(a);
	}
	vgm_store_inventory_refresh(a->store, a->host, INVENTORY_PARENTS_PER_TICK, NULL);
	/* facts change rarely (driver upgrade, libvirt restart) and cost a full
	 * inventory read: refresh them every FACTS_EVERY_S, not every tick.  Facts
	 * taken before libvirt answered lack its versions, and a peer's pre-check
	 * would refuse us for that: retry those on every tick. */
	if (a->facts && a->facts_complete && now_s() - a->facts_at < FACTS_EVERY_S)
		return;
	a->facts_at = now_s();
	facts = agent_facts_collect(a, a->virt);
	if (facts) {
		a->facts_complete = !a->virt ||
				    json_is_string(json_object_get(facts, "libvirt_version"));
		pthread_mutex_lock(&a->lock);
		json_decref(a->facts);
		a->facts = facts;
		pthread_mutex_unlock(&a->lock);
	}
}

int agent_in_use(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err)
{
	agent *a = ctx;
	vgm_device_use *copy;
	size_t i;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&a->lock);
	if (!a->in_use_known) {
		int r = vgm_error_setr(err, EHOSTUNREACH, "libvirt_unreachable",
				       "libvirt at %s cannot be reached, so %s cannot tell which vGPUs "
				       "its VMs use; claims, lease expiry and device removal wait until "
				       "libvirtd answers",
				       a->cfg->libvirt_uri, a->cfg->host_name);
		pthread_mutex_unlock(&a->lock);
		return r;
	}
	copy = calloc(a->n_in_use + 1, sizeof(*copy));
	for (i = 0; copy && i < a->n_in_use; i++) {
		copy[i].device_id = strdup(a->in_use[i].device_id);
		copy[i].domain_uuid = a->in_use[i].domain_uuid ? strdup(a->in_use[i].domain_uuid) : NULL;
	}
	pthread_mutex_unlock(&a->lock);
	if (!copy)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = copy;
	*n = i;
	return 0;
}

unsigned agent_lease_seconds(agent *a)
{
	unsigned v;

	pthread_mutex_lock(&a->lock);
	v = a->cfg->lease_seconds;
	pthread_mutex_unlock(&a->lock);
	return v;
}

bool agent_lab_mode(agent *a)
{
	bool v;

	pthread_mutex_lock(&a->lock);
	v = a->cfg->lab_mode;
	pthread_mutex_unlock(&a->lock);
	return v;
}

char *agent_host_name(agent *a)
{
	char *v;

	pthread_mutex_lock(&a->lock);
	v = strdup(a->cfg->host_name);
	pthread_mutex_unlock(&a->lock);
	return v;
}

int agent_sync_now(agent *a, int timeout_ms)
{
	uint64_t one = 1, want;
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->lock);
	want = ++a->sync_wanted;
	pthread_mutex_unlock(&a->lock);
	if (write(a->wake_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&a->lock);
	while (a->sync_done < want && r == 0)
		r = pthread_cond_timedwait(&a->synced, &a->lock, &until);
	r = a->sync_done >= want ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&a->lock);
	return r;
}

void agent_sync_requested(agent *a)
{
	uint64_t n, want;

	if (read(a->wake_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&a->lock);
	want = a->sync_wanted;
	pthread_mutex_unlock(&a->lock);
	/* Every request counted so far is served by this one sync. */
	if (a->virt)
		agent_virt_sync(a);
	pthread_mutex_lock(&a->lock);
	a->sync_done = want;
	pthread_cond_broadcast(&a->synced);
	pthread_mutex_unlock(&a->lock);
}
