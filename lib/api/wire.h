/* wire.h: the agent API's JSON messages, one codec shared by agent, CLI and hook.
 *
 * Every decoder takes untrusted JSON text (size-checked by the caller), checks
 * types, lengths and identifiers (validate.h) and, on error, fills vgm_error
 * with reason "invalid_request" and a sentence naming the field, e.g.
 *   field 'devices[0].source_id': '../x' is not a UUID or PCI address
 * Unknown fields are ignored (a newer peer may send more); missing required
 * fields are errors.  Encoders return a new jansson reference (or NULL on
 * allocation failure) that the caller dumps and drops.
 *
 * Invariants after a successful decode: every string is valid UTF-8 with no
 * control characters; ids are in canonical lowercase form; a device's kind
 * matches its id form (mdev -> UUID, vf -> PCI address). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/error.h"
#include "util/limit.h"

#define VGM_WIRE_MAX_DEVICES 64      /* per claim */
#define VGM_WIRE_MAX_ID 128          /* migration ids, claim ids, host names */
#define VGM_WIRE_MAX_TEXT 256        /* domain names, profile names */
#define VGM_WIRE_MAX_MESSAGE 4096    /* error messages */
#define VGM_WIRE_MAX_BODY (1u << 20) /* JSON bodies: 1 MiB */

/* ---- claim request: POST /v1/claims ---- */
typedef struct vgm_wire_device {
	char *source_id;    /* UUID (mdev) or PCI address (vf), lowercase */
	char *kind;         /* "mdev" | "vf" */
	char *profile_name; /* "NVIDIA A100-4C" */
	uint64_t framebuffer_bytes;
	char *type_id;      /* NULL when the source did not say */
} vgm_wire_device;

typedef struct vgm_wire_claim_req {
	char *migration_id;
	char *domain_uuid;
	char *domain_name;
	char *source_host;
	vgm_wire_device *devices;
	size_t n_devices;
} vgm_wire_claim_req;

void vgm_wire_claim_req_free(vgm_wire_claim_req *r);
DEFINE_FREEP(vgm_wire_claim_req, vgm_wire_claim_req_free)
int vgm_wire_claim_req_decode(const char *json, size_t len, vgm_wire_claim_req **out,
			     vgm_error *err);
json_t *vgm_wire_claim_req_encode(const vgm_wire_claim_req *r);

/* ---- claim reply: 201 from POST /v1/claims, items of GET /v1/claims ---- */
typedef struct vgm_wire_mapping {
	char *source_id;
	char *target_id;
	char *profile_name; /* NULL when not sent */
	bool created;       /* the target created this device for the claim */
} vgm_wire_mapping;

typedef struct vgm_wire_claim {
	char *claim_id;
	char *migration_id; /* NULL when not sent */
	char *domain_uuid;  /* NULL when not sent */
	char *domain_name;  /* NULL when not sent */
	char *source_host;  /* NULL when not sent */
	char *state;        /* "held" | "committed" | "released" | NULL */
	char *stage;        /* the true stage: state, or "in_flight" for a held claim
			       whose domain started here; NULL when not sent */
	int64_t expires_at; /* unix seconds; 0 when none */
	vgm_wire_mapping *mapping;
	size_t n_mapping;
} vgm_wire_claim;

void vgm_wire_claim_free(vgm_wire_claim *r);
DEFINE_FREEP(vgm_wire_claim, vgm_wire_claim_free)
int vgm_wire_claim_decode(const char *json, size_t len, vgm_wire_claim **out, vgm_error *err);
int vgm_wire_claim_from_json(json_t *o, vgm_wire_claim **out, vgm_error *err);
json_t *vgm_wire_claim_encode(const vgm_wire_claim *r);

/* ---- error body: {"code", "message"} ---- */
json_t *vgm_wire_error_encode(const char *code, const char *message);
/* Decode an error body into err (code -> reason, message -> message, errno
 * from http_status).  Returns -errno; on a body that is not an error object,
 * fills err with "agent answered HTTP <status>". */
int vgm_wire_error_decode(const char *json, size_t len, int http_status, vgm_error *err);
/* The errno a stable reason stands for (used by clients); EIO when unknown. */
int vgm_wire_reason_errno(const char *reason);
/* The HTTP status for a vgm_error (invalid_* -> 400, not_found -> 404, ...). */
int vgm_wire_error_status(const vgm_error *e);

/* ---- hook event: POST /v1/hook/event ---- */
typedef struct vgm_wire_hook_event {
	char *domain_uuid; /* may be NULL: the hook only knows names for some ops */
	char *domain_name;
	char *op;          /* libvirt hook operation: "release", "stopped", "started", ... */
	char *sub_op;      /* "begin" | "end" | "-" */
} vgm_wire_hook_event;

void vgm_wire_hook_event_free(vgm_wire_hook_event *e);
DEFINE_FREEP(vgm_wire_hook_event, vgm_wire_hook_event_free)
int vgm_wire_hook_event_decode(const char *json, size_t len, vgm_wire_hook_event **out, vgm_error *err);
json_t *vgm_wire_hook_event_encode(const vgm_wire_hook_event *e);

/* ---- migration request: POST /v1/migrations (also /v1/plan, /v1/check) ---- */
typedef struct vgm_wire_migration_req {
	char *domain;      /* name or UUID */
	char *to;          /* peer host name */
	vgm_limit max_downtime_ms; /* not set when not given; carried to the controller as is */
	vgm_limit bandwidth_bps;
	vgm_limit timeout_ms;
	bool dry_run;
	bool force;
} vgm_wire_migration_req;

void vgm_wire_migration_req_free(vgm_wire_migration_req *r);
DEFINE_FREEP(vgm_wire_migration_req, vgm_wire_migration_req_free)
int vgm_wire_migration_req_decode(const char *json, size_t len, vgm_wire_migration_req **out,
				 vgm_error *err);
json_t *vgm_wire_migration_req_encode(const vgm_wire_migration_req *r);

/* ---- host cordon: POST /v1/host/cordon {"reason"?}, and the state in
 * GET /v1/host ("cordoned", "cordon_reason") ---- */
/* reason: NULL when the body is empty or has none. */
int vgm_wire_cordon_req_decode(const char *json, size_t len, char **reason, vgm_error *err);
json_t *vgm_wire_cordon_req_encode(const char *reason);
/* Add the cordon state to a host object (GET /v1/host, cordon replies). */
int vgm_wire_cordon_set(json_t *host, bool cordoned, const char *reason);

/* ---- small checked readers, reused by other decoders ---- */
/* Parse text into an object; "body is not a JSON object" style errors. */
int vgm_wire_parse_object(const char *json, size_t len, json_t **out, vgm_error *err);
/* Required (or optional: *out = NULL when absent) string field, 1..max bytes,
 * no control characters. */
int vgm_wire_get_string(json_t *o, const char *field, bool required, size_t max, char **out,
			vgm_error *err);
/* Optional non-negative integer; *out unchanged when absent. */
int vgm_wire_get_u64(json_t *o, const char *field, bool required, uint64_t *out, vgm_error *err);
int vgm_wire_get_bool(json_t *o, const char *field, bool *out, vgm_error *err);

/* ---- GET /v1/host on the local API: the configured peers ----
 * {"NAME": {"address", "libvirt_uri", "migration": "tls" | "clear text"}};
 * "clear text" appears only when the agent's config says so for that peer. */
typedef struct vgm_wire_peer_info {
	const char *name;
	const char *address;
	const char *libvirt_uri;
	bool migration_tls;
} vgm_wire_peer_info;

json_t *vgm_wire_peers_encode(const vgm_wire_peer_info *p, size_t n);
