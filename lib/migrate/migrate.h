/* migrate.h: the libvirt side of a live migration.
 *
 * What it does: open connections, read a domain's migratable XML (live and
 * persistent), measure the guest's dirty rate (virDomainStartDirtyRateCalc,
 * results from the DIRTYRATE domain stats group), and run one live migration:
 * virDomainMigrateToURI3 (LIVE | PEER2PEER | PERSIST_DEST | UNDEFINE_SOURCE,
 * DEST_XML + PERSIST_XML, never POSTCOPY) in a worker thread while the
 * calling thread polls virDomainGetJobStats, feeds the lib/model controller
 * and applies its actions (max downtime, max speed, abort).  The summary comes
 * from the destination domain's completed job stats (the source domain is
 * gone after UNDEFINE_SOURCE).
 *
 * Invariants: POSTCOPY is refused, never set; the downtime limit is applied
 * before the migration starts; an abort request (from any thread) or a
 * controller ABORT leads to exactly one virDomainAbortJob; vgm_migration_run
 * returns only after the worker thread has been joined. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "model/model.h"
#include "util/error.h"

/* Open a libvirt connection; errors are silenced on it (the caller reports). */
int vgm_lv_open(const char *uri, virConnectPtr *out, vgm_error *err);
void vgm_lv_close(virConnectPtr c);
/* Look a domain up by name or UUID.  reason "domain_not_found" when absent. */
int vgm_lv_lookup(virConnectPtr c, const char *name, virDomainPtr *out, vgm_error *err);

typedef struct vgm_lv_domain {
	char *name;
	char uuid[40];
	bool active;
	bool persistent;
	uint64_t memory_bytes;  /* current memory */
	char *xml_live;         /* VIR_DOMAIN_XML_MIGRATABLE | SECURE */
	char *xml_persistent;   /* INACTIVE | MIGRATABLE | SECURE; NULL when transient */
} vgm_lv_domain;

int vgm_lv_domain_read(virDomainPtr dom, vgm_lv_domain **out, vgm_error *err);
void vgm_lv_domain_free(vgm_lv_domain *d);
DEFINE_FREEP(vgm_lv_domain, vgm_lv_domain_free)

/* Measure the dirty rate over `seconds` (1..60); blocks that long.  *bps in
 * bytes/s (libvirt reports whole MiB/s). */
int vgm_lv_dirty_rate(virDomainPtr dom, int seconds, uint64_t *bps, vgm_error *err);

/* Job stats (typed params) -> sample.  page_size from the stats or 4096. */
void vgm_lv_sample_from_params(virTypedParameterPtr p, int n, vgm_job_sample *x);

typedef struct vgm_migration_opts {
	const char *dest_uri;       /* the peer's libvirt_uri (PEER2PEER: source libvirtd dials it) */
	const char *dest_xml;       /* live migratable XML rewritten for the target; NULL: none */
	const char *persist_xml;    /* persistent XML rewritten for the target; NULL: none */
	uint64_t bandwidth_bps;     /* 0: unlimited (a sticky cap from earlier runs is cleared) */
	bool postcopy;              /* refused: VFIO devices cannot do post-copy */
	unsigned poll_ms;           /* 0: 250 */
	vgm_ctl_config ctl;
} vgm_migration_opts;

typedef struct vgm_migration_summary {
	bool ok;
	bool aborted;               /* by request or by the controller */
	char code[48];              /* "", "aborted", controller's code, "migration_failed" */
	char reason[512];
	uint64_t total_ms;          /* time_elapsed of the completed job */
	uint64_t downtime_ms;
	uint64_t setup_ms;
	uint64_t bytes;             /* data_processed */
	uint64_t iterations;
	uint64_t vfio_bytes;
	bool from_destination;      /* numbers from the destination's completed stats */
	int64_t call_realtime_ns;   /* CLOCK_REALTIME at the virDomainMigrateToURI3 call */
} vgm_migration_summary;

typedef struct vgm_migration vgm_migration;

/* Called from the monitoring thread after every sample (and once with
 * x == NULL right before the libvirt call).  a is the controller's action
 * for this sample (NONE mostly). */
typedef void (*vgm_migration_progress_fn)(void *userdata, const vgm_job_sample *x,
					  const vgm_ctl_state *ctl, const vgm_action *a);

int vgm_migration_new(const vgm_migration_opts *o, vgm_migration **out, vgm_error *err);
void vgm_migration_free(vgm_migration *m);
DEFINE_FREEP(vgm_migration, vgm_migration_free)
/* Thread-safe; the first reason wins.  The run loop aborts the job at its
 * next poll (within poll_ms). */
void vgm_migration_request_abort(vgm_migration *m, const char *reason);
/* Run the migration to its end.  dconn (optional) is a connection to the
 * destination, used for the completed-job summary.  Returns 0 when the
 * migration succeeded; otherwise -errno with err (reason "migration_aborted",
 * the controller's code, or "migration_failed" with libvirt's message) and
 * the summary still filled. */
int vgm_migration_run(vgm_migration *m, virDomainPtr dom, virConnectPtr dconn,
		      vgm_migration_progress_fn cb, void *userdata, vgm_migration_summary *sum,
		      vgm_error *err);

/* Fill the summary's numbers from the destination's completed job stats of
 * domain uuid (nothing changes when dconn is NULL or has no such stats). */
void vgm_migration_summarize_dest(virConnectPtr dconn, const char *uuid,
				  vgm_migration_summary *sum);

/* The typed parameters and flags the migration uses (exposed for tests). */
int vgm_migration_build_params(const vgm_migration_opts *o, virTypedParameterPtr *params,
			       int *n, unsigned *flags, vgm_error *err);

/* ---- lifecycle for cold migration (lv-life.c) ---- */
/* Ask the guest to shut down and wait until it is off: 0, or -ETIMEDOUT
 * (reason "shutdown_timeout") when it still runs after timeout_ms. */
int vgm_lv_shutdown_wait(virDomainPtr dom, uint64_t timeout_ms, vgm_error *err);
int vgm_lv_destroy(virDomainPtr dom, vgm_error *err);   /* 0 when already off */
int vgm_lv_start(virDomainPtr dom, vgm_error *err);     /* 0 when already running */
int vgm_lv_define(virConnectPtr c, const char *xml, virDomainPtr *out, vgm_error *err);
int vgm_lv_undefine(virDomainPtr dom, vgm_error *err);  /* stops it first */
int vgm_lv_undefine_uuid(virConnectPtr c, const char *uuid, vgm_error *err); /* 0 when absent */
