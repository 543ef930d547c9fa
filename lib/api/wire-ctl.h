/* wire-ctl.h: the JSON lines of vgpumig-ctl-pipe, the switchover controller
 * behind a pipe for outside simulators and recorded traces (docs/performance.md).
 *
 * In:  {"config": {"ram_bytes": N, "vgpus": [{"framebuffer_bytes": N,
 *                  "precopy": true|false|null}], "max_downtime_ms": N|null,
 *                  "timeout_ms": N|null, "bandwidth_bps": N|null,
 *                  "link_bps": N|null, "dirty_rate_bps": N|null}}      (first line)
 *      {"sample": {JOB STATS}}                                       (every later line)
 *      where JOB STATS uses virDomainGetJobStats' names: time_elapsed,
 *      data_total, data_processed, data_remaining, memory_total,
 *      memory_processed, memory_remaining, memory_dirty_rate (pages/s),
 *      memory_page_size, memory_iteration, memory_bps, vfio_data_transferred;
 *      absent (or null) = not reported.
 * Out: {"start": [ACTION...]} or {"refuse": {"code", "reason"}} for the config,
 *      {"actions": [ACTION...]} for a sample,
 *      {"error": {"code": "invalid_request", "message"}} for a bad line;
 *      ACTION is {"set_downtime_ms": N}, {"set_bandwidth_bps": N} or
 *      {"abort": {"code", "reason"}}.
 * null and absent mean the same: not given / not known.  Decoders fill
 * vgm_error (reason "invalid_request") naming the field. */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "model/model.h"
#include "util/error.h"

#define VGM_WIRE_CTL_MAX_VGPUS 16

/* A config line into a controller config (costs: vgm_model_default_costs). */
int vgm_wire_ctl_config_decode(const char *json, size_t len, vgm_ctl_config *cfg, vgm_error *err);
/* A sample line into a job sample, as lib/migrate reads libvirt's stats. */
int vgm_wire_ctl_sample_decode(const char *json, size_t len, vgm_job_sample *x, vgm_error *err);
/* {key: [ACTION...]} for the n actions (NONE ones are skipped). */
json_t *vgm_wire_ctl_actions_encode(const char *key, const vgm_action *a, size_t n);
/* {"refuse": {"code", "reason"}} */
json_t *vgm_wire_ctl_refuse_encode(const vgm_action *a);
/* {"error": {"code", "message"}} */
json_t *vgm_wire_ctl_error_encode(const vgm_error *err);
