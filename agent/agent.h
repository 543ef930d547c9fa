/* agent.h: vgpumigd, the per-host agent; the state every part shares.
 *
 * Threads: the main thread runs the one event loop (signals through a
 * signalfd, the housekeeping timer through a timerfd) and is the only
 * thread that talks to libvirt on the agent's long-lived connection.
 * libmicrohttpd runs one thread per connection for the local and the peer
 * API; handlers use the store (which serialises itself), the device layer
 * and the caches below, never libvirt: a libvirt hook waits for our answer
 * while libvirt holds its locks.  Migration workers (jobs.c) open their own
 * short-lived libvirt connections; agent_stop joins them before anything
 * they use is freed.
 *
 * Locks: a->lock guards cfg (swapped on SIGHUP), the facts cache, the in-use
 * cache and the event queue; hold it only to copy or swap, never across I/O. */
#pragma once

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "compat/nvml.h"
#include "api/protocol.h"
#include "config.h"
#include "vgm-config.h"
#include "device/device.h"
#include "store/store.h"
#include "util/error.h"

struct agent_server;
typedef struct agent_metrics agent_metrics;
typedef struct agent_libvirt agent_libvirt;
typedef struct agent_jobs agent_jobs;

/* A hook event that needs libvirt to act on; handled by housekeeping. */
typedef struct agent_pending_event {
	char *domain_uuid;
	char *domain_name;
	struct agent_pending_event *next;
} agent_pending_event;

typedef struct agent {
	pthread_mutex_t lock;
	agent_config *cfg;      /* under lock; readers copy what they need */
	json_t *facts;          /* under lock: last host facts (GET /v1/host) */
	int64_t facts_at;       /* main thread: monotonic seconds of the last refresh */
	bool facts_complete;    /* main thread: has libvirt's versions (or runs without libvirt) */
	const char *crash_at;   /* test-only fault point (VGPUMIG_TEST_CRASH_AT) or NULL */
	vgm_protocol_range protocol; /* spoken; not native only under VGPUMIG_TEST_PROTOCOL */
	vgm_device_use *in_use; /* under lock: devices domains on this host use */
	size_t n_in_use;
	bool in_use_known;      /* under lock: in_use is libvirt's answer (last sync listed every domain) */
	size_t warned_blocked, warned_kept; /* main thread: counts the last warning named */
	bool jobs_resumed;       /* main thread: the first resume ran */
	int64_t jobs_resumed_at; /* main thread: monotonic seconds of the last job resume */
	agent_pending_event *events; /* under lock */
	/* route-evacuate.c: the one evacuation this host runs, its thread, and
	 * the lock that guards both (taken by API threads and agent_stop). */
	pthread_mutex_t evac_lock;
	struct evac_runner *evac_runner;
	pthread_t evac_thread;
	/* On-demand libvirt sync (agent_sync_now): a request thread bumps
	 * sync_wanted and writes wake_fd; the main thread syncs, then raises
	 * sync_done to it and broadcasts synced. */
	int wake_fd;                 /* eventfd, main loop polls it */
	uint64_t sync_wanted, sync_done; /* under lock */
	pthread_cond_t synced;

	vgm_host *host;
	vgm_store *store;
	agent_metrics *metrics;
	agent_libvirt *virt;    /* main thread only; NULL when libvirt_uri=none */
	vgm_nvml *nvml;         /* NULL when libnvidia-ml.so.1 cannot be used; thread-safe */
	agent_jobs *jobs;       /* migrations run from here (migrations.h) */

	int local_fd;
	struct agent_server *local; /* http.c */
	struct agent_server *peer;  /* NULL when listen is empty */
	int64_t started_at;
} agent;

/* ---- logging (stderr, "level: message") ---- */
void agent_log_set_level(int level);
int agent_log_get_level(void);
void agent_log(int level, const char *fmt, ...) _printf_(2, 3);
#define log_error(...) agent_log(LOG_ERR_, __VA_ARGS__)
#define log_warn(...) agent_log(LOG_WARN_, __VA_ARGS__)
#define log_info(...) agent_log(LOG_INFO_, __VA_ARGS__)
#define log_debug(...) agent_log(LOG_DEBUG_, __VA_ARGS__)

/* Test-only fault injection: SIGKILL ourselves when point is the one named
 * in VGPUMIG_TEST_CRASH_AT (crash-safety tests); a no-op otherwise.  Built
 * only with -Dtest_hooks (on for test builds): production binaries neither
 * read the variable nor contain the code. */
#if VGM_TEST_HOOKS
void agent_test_crash_point(agent *a, const char *point);
#else
static inline void agent_test_crash_point(agent *a, const char *point)
{
	(void)a;
	(void)point;
}
#endif

/* Ask the main thread to refresh the in-use view from libvirt now and wait
 * for it, at most timeout_ms.  0 when a sync that started after the call
 * finished; -ETIMEDOUT otherwise (the caller goes on with the older view). */
int agent_sync_now(agent *a, int timeout_ms);
/* Main thread: run the requested syncs (called when wake_fd is readable). */
void agent_sync_requested(agent *a);

/* ---- config snapshot helpers (copy under the lock) ---- */
unsigned agent_lease_seconds(agent *a);
bool agent_lab_mode(agent *a);
char *agent_host_name(agent *a); /* malloc'd */

/* ---- HTTP servers (http.c) ---- */
int agent_http_start(agent *a, vgm_error *err);
void agent_http_stop(agent *a);
/* Main thread, after a reload swapped a->cfg: TLS credentials for new
 * connections, the socket's mode and group re-applied. */
void agent_http_reload(agent *a);

/* ---- housekeeping (housekeeping.c), main thread ---- */
void agent_housekeeping(agent *a);
/* Run reconcile now; fills *out with a JSON report (POST /v1/gc). */
int agent_gc(agent *a, json_t **out, vgm_error *err);
void agent_queue_event(agent *a, const char *domain_uuid, const char *domain_name);
/* The store's in_use callback: a copy of the cache, or "unavailable" when
 * the last libvirt pass could not read every domain (cannot tell). */
int agent_in_use(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err);

/* ---- host facts (facts.c) ---- */
/* Collect facts; virt may be NULL (no versions). */
json_t *agent_facts_collect(agent *a, agent_libvirt *virt);
json_t *agent_facts_get(agent *a); /* cached copy, collecting when none yet */
/* Load NVML into a->nvml (left NULL, with one log line, when unusable). */
void agent_nvml_open(agent *a);
struct agent_vgpu;
struct vgm_domain_info;
struct vgm_facts;
struct vgm_nvml_summary;
/* NVIDIA's verdict for the vGPUs v of domain d on the target whose facts
 * are given.  Each vGPU's metadata comes from this host's NVML when
 * live_here (the domain runs here: the source), else from what the source
 * recorded in d's metadata (the hook path, where this host is the target). */
void agent_nvml_verdict(agent *a, const struct vgm_domain_info *d, const struct agent_vgpu *v,
			size_t n, bool live_here, const struct vgm_facts *target,
			struct vgm_nvml_summary *out);

/* ---- libvirt (virt.c), main thread only ---- */
int agent_virt_open(const char *uri, agent_libvirt **out, vgm_error *err);
void agent_virt_close(agent_libvirt *v);
/* Versions for facts; 0 when unknown. */
void agent_virt_versions(agent_libvirt *v, unsigned long long *libvirt, unsigned long long *qemu);
/* One pass over the domains: refresh the in-use cache, record vGPU
 * metadata for running domains, release assignments of domains that left. */
void agent_virt_sync(agent *a);
/* After "release end": has this domain left the host (gone, or shut off by a
 * migration)?  1 yes, 0 no, <0 unknown (libvirt down). */
int agent_virt_domain_left(agent *a, const char *domain_uuid);
