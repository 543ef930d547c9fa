/* wire-ops.h: the JSON messages of the operator verbs built on migration:
 * cold migration (POST /v1/cold-migrations) and the target's shared-storage
 * check (POST /v1/disks/check, peer API).  Same rules as wire.h: decoders
 * check every field of untrusted input and name the field in errors;
 * encoders return a new reference or NULL on allocation failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "util/error.h"
#include "util/limit.h"

#define VGM_WIRE_MAX_PATHS 256
#define VGM_WIRE_MAX_PATH 4096

/* ---- POST /v1/cold-migrations ---- */
typedef struct vgm_wire_cold_req {
	char *domain;                  /* name or UUID */
	char *to;                      /* peer host name */
	vgm_limit shutdown_timeout_ms; /* unset: the agent's default */
	bool force;                    /* destroy after the timeout */
} vgm_wire_cold_req;

void vgm_wire_cold_req_free(vgm_wire_cold_req *r);
DEFINE_FREEP(vgm_wire_cold_req, vgm_wire_cold_req_free)
int vgm_wire_cold_req_decode(const char *json, size_t len, vgm_wire_cold_req **out, vgm_error *err);
json_t *vgm_wire_cold_req_encode(const vgm_wire_cold_req *r);

/* ---- its 200 reply (failures are error bodies) ---- */
typedef struct vgm_wire_cold_result {
	char *id;       /* the journal's migration id */
	char *domain;
	char *to;
	char *warnings; /* NULL when none */
} vgm_wire_cold_result;

void vgm_wire_cold_result_free(vgm_wire_cold_result *r);
DEFINE_FREEP(vgm_wire_cold_result, vgm_wire_cold_result_free)
int vgm_wire_cold_result_from_json(json_t *o, vgm_wire_cold_result **out, vgm_error *err);
json_t *vgm_wire_cold_result_encode(const vgm_wire_cold_result *r);

/* ---- POST /v1/disks/check: {"paths": [...]} -> {"missing": [...]} ---- */
/* Absolute paths, at most VGM_WIRE_MAX_PATHS of VGM_WIRE_MAX_PATH bytes,
 * no "..", no control characters.  *out is NULL-terminated; free it with
 * vgm_strv_free(*out, *n). */
int vgm_wire_paths_from_json(json_t *o, const char *field, char ***out, size_t *n, vgm_error *err);
int vgm_wire_paths_decode(const char *json, size_t len, const char *field, char ***out, size_t *n,
			  vgm_error *err);
json_t *vgm_wire_paths_encode(const char *field, char *const *paths, size_t n);

/* ---- POST /v1/evacuations ---- */
#define VGM_WIRE_MAX_TARGETS 32

typedef struct vgm_wire_evac_req {
	char *host;               /* the host to empty: must be the agent's own */
	char **to;                /* target hosts; n_to 0: every configured peer */
	size_t n_to;
	vgm_limit parallel;       /* migrations at once; unset: the agent's default */
	vgm_limit max_downtime_ms;
	bool dry_run;
	bool cold_fallback;
} vgm_wire_evac_req;

void vgm_wire_evac_req_free(vgm_wire_evac_req *r);
DEFINE_FREEP(vgm_wire_evac_req, vgm_wire_evac_req_free)
int vgm_wire_evac_req_decode(const char *json, size_t len, vgm_wire_evac_req **out, vgm_error *err);
json_t *vgm_wire_evac_req_encode(const vgm_wire_evac_req *r);

/* ---- an evacuation's snapshot (GET /v1/evacuations/{id}, the POST reply) ---- */
struct vgm_evacuation;
/* {"evacuation_id", "state", "vms": [{"domain", "domain_uuid", "target",
 * "state", "pause_ms", "migration_id", "code", "message"}], "summary":
 * {"moved", "cold_moved", "left_behind", "pending"}} */
json_t *vgm_wire_evacuation_encode(const struct vgm_evacuation *e);
int vgm_wire_evacuation_from_json(json_t *o, struct vgm_evacuation **out, vgm_error *err);

/* ---- GET /v1/capacity (peer): what an evacuation can place on a host ---- */
struct vgm_place_target;
/* {"host", "gpus": [{"address", "current_profile", "used", "slots":
 * [{"profile", "max_instances"}]}]} */
json_t *vgm_wire_capacity_encode(const struct vgm_place_target *t);
/* The decoded target owns its strings and arrays: free with
 * vgm_wire_capacity_free. */
int vgm_wire_capacity_from_json(json_t *o, struct vgm_place_target *out, vgm_error *err);
void vgm_wire_capacity_free(struct vgm_place_target *t);

/* ---- what an evacuation reads of the migration API ---- */
/* The outcome fields of a migration snapshot (GET /v1/migrations/{id}, or
 * the {"migration_id"} of the POST reply): strings are copies, NULL when
 * absent. */
typedef struct vgm_wire_mig_brief {
	char *migration_id;
	char *state;   /* running | succeeded | failed | aborted */
	char *code;    /* error.code */
	char *message; /* error.message */
} vgm_wire_mig_brief;
void vgm_wire_mig_brief_clear(vgm_wire_mig_brief *b);
int vgm_wire_mig_brief_from_json(json_t *o, vgm_wire_mig_brief *out, vgm_error *err);
/* POST /v1/plan's reply: expected pause (seconds, < 0 when it does not
 * converge) and the verdict. */
typedef struct vgm_wire_plan_brief {
	double downtime_s;
	bool ok;
	char *code;
	char *reason;
} vgm_wire_plan_brief;
void vgm_wire_plan_brief_clear(vgm_wire_plan_brief *b);
int vgm_wire_plan_brief_from_json(json_t *o, vgm_wire_plan_brief *out, vgm_error *err);
