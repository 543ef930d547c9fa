/* migration.c: one live migration, driven and watched (see migrate.h).
 *
 * Two threads: the worker makes the blocking virDomainMigrateToURI3 call; the
 * caller's thread polls job stats every poll_ms, runs the controller, applies
 * its actions and reports progress.  Shared state (abort request, worker
 * outcome) sits behind one mutex; `done` is set by the worker last.
 * libvirt connections and domain objects are thread-safe. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "migrate.h"

struct vgm_migration {
	vgm_migration_opts o;
	char *dest_uri, *dest_xml, *persist_xml;
	pthread_mutex_t lock;
	bool abort_requested;
	char abort_reason[384];
	/* worker */
	virDomainPtr dom;
	virTypedParameterPtr params;
	int nparams;
	unsigned flags;
	int worker_rc;
	char worker_msg[512];
	int64_t call_ns;
	virConnectPtr worker_conn;
	char uuid[VIR_UUID_STRING_BUFLEN];
	atomic_bool done;
};

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vgm_migration_build_params(const vgm_migration_opts *o, virTypedParameterPtr *params,
			       int *n, unsigned *flags, vgm_error *err)
{
	int max = 0;
	*params = NULL;
	*n = 0;
	if (virInitialize() < 0) /* idempotent; the typed-param helpers need it */
		return vgm_error_setr(err, EIO, "libvirt_error", "cannot initialise libvirt");
	if (o->postcopy)
		return vgm_error_setr(err, ENOTSUP, "postcopy_refused",
				      "post-copy is never used: VFIO devices (vGPUs) cannot migrate post-copy");
	if (!o->dest_uri || !o->dest_uri[0])
		return vgm_error_setr(err, EINVAL, "bad_request",
				      "no destination libvirt URI; set libvirt_uri in the agent's [peer] section");
	int r = 0;
	if (o->dest_xml)
		r |= virTypedParamsAddString(params, n, &max, VIR_MIGRATE_PARAM_DEST_XML, o->dest_xml);
	if (o->persist_xml)
		r |= virTypedParamsAddString(params, n, &max, VIR_MIGRATE_PARAM_PERSIST_XML,
					     o->persist_xml);
	if (o->bandwidth_bps) {
		/* libvirt takes MiB/s: round up so a cap below 1 MiB/s still caps. */
		unsigned long long mib = (o->bandwidth_bps + (1u << 20) - 1) >> 20;
		r |= virTypedParamsAddULLong(params, n, &max, VIR_MIGRATE_PARAM_BANDWIDTH, mib);
	}
	if (r < 0) {
		virTypedParamsFree(*params, *n);
		*params = NULL;
		*n = 0;
		return vgm_error_set(err, ENOMEM, "out of memory building migration parameters");
	}
	*flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
		 VIR_MIGRATE_UNDEFINE_SOURCE;
	/* Guest RAM and vGPU state are secrets: encrypted unless told otherwise. */
	if (!o->clear_text)
		*flags |= VIR_MIGRATE_TLS;
	return 0;
}

int vgm_migration_new(const vgm_migration_opts *o, vgm_migration **out, vgm_error *err)
{
	vgm_migration *m = calloc(1, sizeof(*m));
	if (!m)
		return vgm_error_set(err, ENOMEM, "out of memory");
	m->o = *o;
	m->dest_uri = o->dest_uri ? strdup(o->dest_uri) : NULL;
	m->dest_xml = o->dest_xml ? strdup(o->dest_xml) : NULL;
	m->persist_xml = o->persist_xml ? strdup(o->persist_xml) : NULL;
	m->o.dest_uri = m->dest_uri;
	m->o.dest_xml = m->dest_xml;
	m->o.persist_xml = m->persist_xml;
	if (!m->o.poll_ms)
		m->o.poll_ms = 250;
	pthread_mutex_init(&m->lock, NULL);
	if ((o->dest_uri && !m->dest_uri) || (o->dest_xml && !m->dest_xml) ||
	    (o->persist_xml && !m->persist_xml)) {
		vgm_migration_free(m);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	*out = m;
	return 0;
}

void vgm_migration_free(vgm_migration *m)
{
	if (!m)
		return;
	virTypedParamsFree(m->params, m->nparams);
	free(m->dest_uri);
	free(m->dest_xml);
	free(m->persist_xml);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void vgm_migration_request_abort(vgm_migration *m, const char *reason)
{
	pthread_mutex_lock(&m->lock);
	if (!m->abort_requested) {
		m->abort_requested = true;
		snprintf(m->abort_reason, sizeof(m->abort_reason), "%s",
			 reason ? reason : "aborted by request");
	}
	pthread_mutex_unlock(&m->lock);
}

/* The blocking call runs on a connection of its own, so that a slow or
 * stuck reply to it can never hold up the monitor's stats and abort calls. */
static void *worker(void *arg)
{
	vgm_migration *m = arg;
	int r = -1;
	virDomainPtr d = m->worker_conn ? virDomainLookupByUUIDString(m->worker_conn, m->uuid) : NULL;
	int64_t t = realtime_ns();
	pthread_mutex_lock(&m->lock);
	m->call_ns = t;
	pthread_mutex_unlock(&m->lock);
	if (d)
		r = virDomainMigrateToURI3(d, m->o.dest_uri, m->params, (unsigned)m->nparams, m->flags);
	pthread_mutex_lock(&m->lock);
	m->worker_rc = r;
	if (r < 0) {
		const char *msg = virGetLastErrorMessage();
		snprintf(m->worker_msg, sizeof(m->worker_msg), "%s", msg ? msg : "unknown libvirt error");
	}
	pthread_mutex_unlock(&m->lock);
	if (d)
		virDomainFree(d);
	atomic_store(&m->done, true);
	return NULL;
}

/* Apply one controller action to the running (or about to run) job. */
static int apply(vgm_migration *m, const vgm_action *a, vgm_error *err)
{
	switch (a->kind) {
	case VGM_ACT_SET_DOWNTIME:
		if (virDomainMigrateSetMaxDowntime(m->dom, a->value, 0) < 0)
			return vgm_error_setr(err, EIO, "libvirt_error",
					      "cannot set the migration downtime limit to %llu ms: %s",
					      (unsigned long long)a->value, virGetLastErrorMessage());
		return 0;
	case VGM_ACT_SET_BANDWIDTH: {
		unsigned long mib = (unsigned long)((a->value + (1u << 20) - 1) >> 20);
		if (virDomainMigrateSetMaxSpeed(m->dom, mib, 0) < 0)
			return vgm_error_setr(err, EIO, "libvirt_error",
					      "cannot set the migration bandwidth to %lu MiB/s: %s", mib,
					      virGetLastErrorMessage());
		return 0;
	}
	case VGM_ACT_ABORT:
		vgm_migration_request_abort(m, a->reason);
		return 0;
	case VGM_ACT_NONE:
		return 0;
	}
	return 0;
}

/* Before the start: the controller's start actions, and clear a sticky cap. */
static int prepare(vgm_migration *m, vgm_ctl_state *ctl, vgm_error *err)
{
	if (!m->o.bandwidth_bps)
		virDomainMigrateSetMaxSpeed(m->dom, 0, 0); /* best effort: 0 = unlimited */
	for (vgm_action a = vgm_ctl_start(ctl); a.kind != VGM_ACT_NONE; a = vgm_ctl_start(ctl)) {
		if (a.kind == VGM_ACT_ABORT)
			return vgm_error_setr(err, ECANCELED, a.code, "%s", a.reason);
		int r = apply(m, &a, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool take_abort(vgm_migration *m, char *reason, size_t n)
{
	pthread_mutex_lock(&m->lock);
	bool req = m->abort_requested;
	if (req)
		snprintf(reason, n, "%s", m->abort_reason);
	pthread_mutex_unlock(&m->lock);
	return req;
}

typedef struct monitor {
	vgm_ctl_state ctl;
	bool abort_sent;   /* virDomainAbortJob succeeded */
	bool abort_wanted; /* requested (by the caller or the controller) */
	char abort_code[48];
	char abort_reason[384];
	vgm_job_sample last;
	bool have_last;
} monitor;

static void poll_once(vgm_migration *m, monitor *mon, vgm_migration_progress_fn cb, void *ud)
{
	if (!mon->abort_sent && take_abort(m, mon->abort_reason, sizeof(mon->abort_reason))) {
		if (!mon->abort_code[0])
			snprintf(mon->abort_code, sizeof(mon->abort_code), "migration_aborted");
		/* Fails while libvirt has not begun the job yet: retried next poll. */
		mon->abort_sent = virDomainAbortJob(m->dom) == 0;
		mon->abort_wanted = true;
		return;
	}
	int type = VIR_DOMAIN_JOB_NONE, n = 0;
	virTypedParameterPtr p = NULL;
	if (virDomainGetJobStats(m->dom, &type, &p, &n, 0) < 0 || type == VIR_DOMAIN_JOB_NONE) {
		virTypedParamsFree(p, n);
		return;
	}
	vgm_job_sample x;
	vgm_lv_sample_from_params(p, n, &x);
	virTypedParamsFree(p, n);
	mon->last = x;
	mon->have_last = true;
	vgm_action a = mon->abort_sent ? (vgm_action){ 0 } : vgm_ctl_step(&mon->ctl, &x);
	if (a.kind == VGM_ACT_ABORT) {
		snprintf(mon->abort_code, sizeof(mon->abort_code), "%s", a.code);
		vgm_migration_request_abort(m, a.reason);
	} else
		(void)apply(m, &a, NULL); /* a failed tuning call is not fatal */
	if (cb)
		cb(ud, &x, &mon->ctl, &a);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void vgm_migration_summarize_dest(virConnectPtr dconn, const char *uuid, vgm_migration_summary *s)
{
	virDomainPtr d = dconn ? virDomainLookupByUUIDString(dconn, uuid) : NULL;
	if (!d)
		return;
	int type = 0, n = 0;
	virTypedParameterPtr p = NULL;
	if (virDomainGetJobStats(d, &type, &p, &n, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0 && n > 0) {
		vgm_job_sample x;
		vgm_lv_sample_from_params(p, n, &x);
		unsigned long long v = 0;
		if (virTypedParamsGetULLong(p, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
			s->downtime_ms = v;
		if (virTypedParamsGetULLong(p, n, VIR_DOMAIN_JOB_SETUP_TIME, &v) == 1)
			s->setup_ms = v;
		s->total_ms = x.time_elapsed_ms;
		s->bytes = x.data_processed ? x.data_processed : x.memory_processed;
		s->iterations = x.memory_iteration;
		s->vfio_bytes = x.vfio_data_transferred;
		s->from_destination = true;
	}
	virTypedParamsFree(p, n);
	virDomainFree(d);
}

static int finish(vgm_migration *m, monitor *mon, virConnectPtr dconn, const char *uuid,
		  vgm_migration_summary *s, vgm_error *err)
{
	pthread_mutex_lock(&m->lock);
	int rc = m->worker_rc;
	s->call_realtime_ns = m->call_ns;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", m->worker_msg);
	pthread_mutex_unlock(&m->lock);
	if (mon->have_last) {
		s->total_ms = mon->last.time_elapsed_ms;
		s->bytes = mon->last.data_processed;
		s->iterations = mon->last.memory_iteration;
		s->vfio_bytes = mon->last.vfio_data_transferred;
	}
	if (rc == 0) {
		s->ok = true;
		vgm_migration_summarize_dest(dconn, uuid, s);
		return 0;
	}
	if (mon->abort_wanted) {
		s->aborted = true;
		snprintf(s->code, sizeof(s->code), "%s", mon->abort_code);
		snprintf(s->reason, sizeof(s->reason), "%s", mon->abort_reason);
		return vgm_error_setr(err, ECANCELED, s->code, "migration aborted: %s", s->reason);
	}
	snprintf(s->code, sizeof(s->code), "migration_failed");
	snprintf(s->reason, sizeof(s->reason), "%s", msg);
	return vgm_error_setr(err, EIO, "migration_failed", "migration failed: %s", msg);
}

int vgm_migration_run(vgm_migration *m, virDomainPtr dom, virConnectPtr dconn,
		      vgm_migration_progress_fn cb, void *userdata, vgm_migration_summary *sum,
		      vgm_error *err)
{
	memset(sum, 0, sizeof(*sum));
	char uuid[VIR_UUID_STRING_BUFLEN] = "";
	if (virDomainGetUUIDString(dom, uuid) < 0)
		return vgm_error_setr(err, EIO, "libvirt_error", "cannot read the domain's UUID");
	m->dom = dom;
	int r = vgm_migration_build_params(&m->o, &m->params, &m->nparams, &m->flags, err);
	if (r < 0)
		return r;
	monitor mon = { 0 };
	vgm_ctl_init(&mon.ctl, &m->o.ctl);
	r = prepare(m, &mon.ctl, err);
	if (r < 0) {
		snprintf(sum->code, sizeof(sum->code), "%s", err ? err->reason : "refused");
		snprintf(sum->reason, sizeof(sum->reason), "%s", err ? err->message : "");
		return r;
	}
	char why[384];
	if (take_abort(m, why, sizeof(why))) {
		sum->aborted = true;
		snprintf(sum->code, sizeof(sum->code), "migration_aborted");
		snprintf(sum->reason, sizeof(sum->reason), "%s", why);
		return vgm_error_setr(err, ECANCELED, "migration_aborted", "migration aborted: %s", why);
	}
	_cleanup_free_ char *uri = virConnectGetURI(virDomainGetConnect(dom));
	snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);
	r = vgm_lv_open(uri, &m->worker_conn, err);
	if (r < 0)
		return r;
	if (cb)
		cb(userdata, NULL, &mon.ctl, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, m) != 0) {
		vgm_lv_close(TAKE_PTR(m->worker_conn));
		return vgm_error_set(err, EAGAIN, "cannot start the migration thread");
	}
	int64_t next = mono_ms() + m->o.poll_ms;
	while (!atomic_load(&m->done)) {
		sleep_ms(20);
		if (atomic_load(&m->done))
			break;
		if (mono_ms() < next && !take_abort(m, why, sizeof(why)))
			continue;
		if (mon.abort_wanted && mono_ms() < next)
			continue;
		next = mono_ms() + m->o.poll_ms;
		poll_once(m, &mon, cb, userdata);
	}
	pthread_join(t, NULL);
	vgm_lv_close(TAKE_PTR(m->worker_conn));
	return finish(m, &mon, dconn, uuid, sum, err);
}

static bool job_running(virDomainPtr dom)
{
	virDomainJobInfo job;
	return virDomainGetJobInfo(dom, &job) == 0 && job.type != VIR_DOMAIN_JOB_NONE;
}

int vgm_migration_attach(vgm_migration *m, virDomainPtr dom, vgm_migration_progress_fn cb,
			 void *userdata, vgm_migration_summary *sum, vgm_error *err)
{
	memset(sum, 0, sizeof(*sum));
	m->dom = dom;
	monitor mon = { 0 };
	vgm_ctl_init(&mon.ctl, &m->o.ctl);
	/* The start actions again: the restart may have come before they were
	 * applied, and applying them twice sets the same limits. */
	for (vgm_action a = vgm_ctl_start(&mon.ctl); a.kind != VGM_ACT_NONE;
	     a = vgm_ctl_start(&mon.ctl))
		if (a.kind != VGM_ACT_ABORT)
			(void)apply(m, &a, NULL);
	char why[384];
	while (job_running(dom)) {
		int64_t next = mono_ms() + m->o.poll_ms;
		while (mono_ms() < next && !take_abort(m, why, sizeof(why)))
			sleep_ms(20);
		poll_once(m, &mon, cb, userdata);
	}
	if (mon.have_last) {
		sum->total_ms = mon.last.time_elapsed_ms;
		sum->bytes = mon.last.data_processed;
		sum->iterations = mon.last.memory_iteration;
		sum->vfio_bytes = mon.last.vfio_data_transferred;
	}
	if (mon.abort_wanted) {
		sum->aborted = true;
		snprintf(sum->code, sizeof(sum->code), "%s", mon.abort_code);
		snprintf(sum->reason, sizeof(sum->reason), "%s", mon.abort_reason);
	}
	(void)err;
	return 0;
}
