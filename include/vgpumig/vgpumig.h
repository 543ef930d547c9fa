/* vgpumig.h: the public, stable C interface of libvgpumig (soname libvgpumig.so.0).
 *
 * For orchestrators (Nova, KubeVirt, a custom scheduler) that place and move VMs
 * with NVIDIA vGPUs between libvirt hosts running vgpumigd.  Everything here is
 * exported under the version node VGPUMIG_0; nothing else in the library is.
 * docs/libvgpumig.md describes each call; docs/example-orchestrator.c uses them.
 *
 * Conventions (kept for the life of soname 0):
 *   - every function returns 0 (or a count) on success and a negative errno on
 *     failure, and then fills *err when err is not NULL: err->reason is a
 *     stable machine code ("invalid_xml", "no_capacity", ...), err->message one
 *     sentence that names the thing and the fix;
 *   - results that are documents (inventory, inspect, check results, agent
 *     replies) are NUL-terminated JSON text in the shapes docs/cli-*.md and
 *     docs/vgpumigd.md document; the caller frees them with vgpumig_free();
 *   - the library keeps no global state, never prints and never exits; a
 *     vgpumig_client may be shared between threads once set up.
 *
 * Link with `pkg-config --cflags --libs vgpumig`. */
#ifndef VGPUMIG_VGPUMIG_H
#define VGPUMIG_VGPUMIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vgpumig_error {
	int code;          /* positive errno */
	char reason[48];   /* stable code; "" when unset */
	char message[512]; /* one sentence, no trailing newline */
} vgpumig_error;

/* The library's release ("0.1.0") and the peer protocol versions it speaks. */
const char *vgpumig_version(void);
void vgpumig_protocol_range(unsigned *oldest, unsigned *newest);

/* Release anything this library returned as char *. */
void vgpumig_free(void *p);

/* ---- inventory: what vGPUs this host has and can create ---- */
/* sysfs_root: "/" on a real host, an emulator mount in tests, NULL for
 * $VGPUMIG_SYSFS_ROOT or "/".  devices_json / types_json (either may be NULL)
 * get the JSON of `vgpumig devices --json` / `vgpumig types --json`. */
int vgpumig_inventory(const char *sysfs_root, char **devices_json, char **types_json,
		      vgpumig_error *err);

/* ---- domain XML ---- */
/* The JSON of `vgpumig xml inspect --json`: vGPUs, vIOMMU, memory, problems. */
int vgpumig_domxml_inspect(const char *xml, size_t len, char **json, vgpumig_error *err);

#define VGPUMIG_REWRITE_ALLOW_UNMAPPED 1u /* leave unmapped mdevs as they are */

/* Rewrite host-side vGPU identities: src[i] (UUID or VF PCI address) becomes
 * dst[i]; nothing else in the document changes.  *out is the new XML. */
int vgpumig_domxml_rewrite(const char *xml, size_t len, const char *const *src,
			   const char *const *dst, size_t n, unsigned flags, char **out,
			   vgpumig_error *err);

/* ---- plan: expected total time and switchover of a pre-copy migration ---- */
typedef struct vgpumig_plan_input {
	uint64_t ram_bytes;         /* guest RAM (> 0) */
	uint64_t vgpu_state_bytes;  /* sum of vGPU framebuffers, moved at switchover */
	uint64_t bandwidth_bps;     /* bytes per second (> 0) */
	uint64_t dirty_bps;         /* guest RAM dirty rate, bytes per second */
	uint64_t max_downtime_ms;   /* operator's switchover limit; 0: none */
	uint64_t timeout_ms;        /* operator's total limit; 0: none */
} vgpumig_plan_input;

typedef struct vgpumig_plan {
	int converges;          /* 1 when pre-copy converges */
	int ok;                 /* 1 when the plan meets both limits */
	unsigned iterations;    /* pre-copy rounds as libvirt counts them */
	double total_ms;        /* -1 when it does not converge */
	double downtime_ms;     /* -1 when it does not converge */
	uint64_t bytes_total;   /* bytes on the wire */
	char verdict[48];       /* "ok", "not_converging", "downtime_exceeded", "timeout_exceeded" */
	char reason[384];       /* one sentence with the numbers */
} vgpumig_plan;

int vgpumig_plan_compute(const vgpumig_plan_input *in, vgpumig_plan *out, vgpumig_error *err);

/* ---- check: every pre-check between two hosts (and a domain) ---- */
/* source_facts / target_facts: the JSON of GET /v1/host from each agent.
 * domain_xml may be NULL (host checks only).  *results_json gets
 * [{"name","host","ok","code","message"}, ...]; returns the number of failed
 * checks (0: migration may go ahead) or a negative errno. */
int vgpumig_check(const char *source_facts, const char *target_facts, const char *domain_xml,
		  size_t xml_len, char **results_json, vgpumig_error *err);

/* ---- client for an agent's HTTP API ---- */
typedef struct vgpumig_client vgpumig_client;

/* The local agent on its unix socket (NULL: /run/vgpumig/vgpumigd.sock). */
int vgpumig_client_open_unix(const char *socket_path, vgpumig_client **out, vgpumig_error *err);
/* A peer agent at "host:port" with mutual TLS (PEM files). */
int vgpumig_client_open_tls(const char *hostport, const char *cert, const char *key,
			    const char *ca, vgpumig_client **out, vgpumig_error *err);
void vgpumig_client_close(vgpumig_client *c);
/* Limits per request (defaults 2 s to connect, 10 s in all; 0 keeps one).
 * Set before sharing the client between threads. */
void vgpumig_client_set_timeout(vgpumig_client *c, long connect_ms, long total_ms);

/* Any API call: method "GET"/"POST"/"DELETE", path "/v1/...", body JSON text
 * or NULL.  2xx: returns the HTTP status and *reply_json (optional) gets the
 * reply; any other status: a negative errno with the agent's code and message
 * in *err. */
int vgpumig_client_call(vgpumig_client *c, const char *method, const char *path,
			const char *body_json, char **reply_json, vgpumig_error *err);

/* Host facts (GET /v1/host), the input of vgpumig_check. */
int vgpumig_client_host(vgpumig_client *c, char **facts_json, vgpumig_error *err);
/* Claims: list (GET /v1/claims), create (POST /v1/claims, request as in
 * docs/vgpumigd.md; idempotent per migration_id), commit, release. */
int vgpumig_client_claims(vgpumig_client *c, char **claims_json, vgpumig_error *err);
int vgpumig_client_claim(vgpumig_client *c, const char *request_json, char **claim_json,
			 vgpumig_error *err);
int vgpumig_client_claim_commit(vgpumig_client *c, const char *claim_id, vgpumig_error *err);
int vgpumig_client_claim_release(vgpumig_client *c, const char *claim_id, vgpumig_error *err);

/* Migrations driven by the local agent. */
typedef struct vgpumig_migrate_options {
	int64_t max_downtime_ms; /* -1: agent default */
	int64_t bandwidth_bps;   /* -1: agent default */
	int64_t timeout_ms;      /* -1: agent default */
	int dry_run;             /* 1: check and plan only */
	int force;               /* 1: start even when the plan exceeds a limit */
} vgpumig_migrate_options;

/* opts may be NULL (all defaults).  *migration_json gets the agent's reply
 * with the migration's id and state. */
int vgpumig_client_migrate(vgpumig_client *c, const char *domain, const char *to,
			   const vgpumig_migrate_options *opts, char **migration_json,
			   vgpumig_error *err);
/* One migration (id from vgpumig_client_migrate) or, with id NULL, all. */
int vgpumig_client_migration(vgpumig_client *c, const char *id, char **json, vgpumig_error *err);
int vgpumig_client_migration_abort(vgpumig_client *c, const char *id, vgpumig_error *err);

/* Tell the agent about a domain lifecycle event (what the libvirt hook
 * sends: op "started", "stopped", "release", ...; sub_op "begin"/"end"/"-"),
 * for orchestrators that start and stop VMs without libvirt's hook. */
int vgpumig_client_event(vgpumig_client *c, const char *domain_name, const char *domain_uuid,
			 const char *op, const char *sub_op, vgpumig_error *err);

#ifdef __cplusplus
}
#endif

#endif
