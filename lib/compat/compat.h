/* compat.h: host facts and the pre-checks of a vGPU live migration.
 *
 * Facts describe one host (versions, architecture, vGPU backend and driver,
 * ECC mode, board families, protocol).  They are gathered on each host
 * (vgm_facts_gather) and exchanged as JSON (vgm_facts_to_json /
 * vgm_facts_from_json; the decoder treats its input as untrusted).
 *
 * Checks (vgm_compat_check) are pure functions of the two hosts' facts, the
 * domain, the vGPU profiles the domain needs and the profiles the target
 * offers, so they unit-test without a host.  Every result carries a stable
 * code (the API's "code") and one sentence that names the host, what was
 * found and what is needed:
 *   "host-b runs libvirt 8.0.0; vGPU live migration needs libvirt >= 8.6.0 on both hosts"
 *
 * Codes: arch_unsupported, kernel_too_old, libvirt_too_old, qemu_too_old,
 * version_unknown, protocol_unsupported, driver_mismatch, ecc_mismatch,
 * board_mismatch, profile_unavailable, framebuffer_mismatch, viommu_present,
 * postcopy_forbidden, nvml_incompatible; "ok" for a check that passed.
 * A check whose fact could not be read (no NVML) is "unknown" with code
 * ecc_unknown, nvml_unknown or streaming_unknown: reported, never "ok", and
 * not a failure (hosts without NVML still migrate; the operator is told
 * what was not compared). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat/nvml.h"
#include "api/protocol.h" /* VGM_PROTOCOL_VERSION, the peer protocol range */
#include "device/device.h"
#include "domxml/domxml.h"
#include "util/error.h"

#define VGM_MIN_LIBVIRT "8.6.0"
#define VGM_MIN_QEMU "8.1.0"
#define VGM_MIN_KERNEL "5.18"
#define VGM_REQUIRED_ARCH "x86_64"

/* ---- versions ---- */

/* Parse the leading "major[.minor[.micro]]" of s ("6.1.0-27-amd64" ->
 * 6,1,0; "5.18" -> 5,18,0).  -EINVAL when s does not start with a digit or a
 * part does not fit. */
int vgm_version_parse(const char *s, unsigned v[3]);
/* <0, 0, >0 as a is older, equal, newer than b; unparsable sorts oldest. */
int vgm_version_cmp(const char *a, const char *b);
/* libvirt's encoding (major * 1000000 + minor * 1000 + micro) as "9.0.0".
 * buf needs 32 bytes; returns buf. */
char *vgm_version_format(unsigned long long v, char *buf, size_t n);

/* ---- facts ---- */

typedef enum vgm_ecc_mode {
	VGM_ECC_UNKNOWN = 0,
	VGM_ECC_DISABLED,
	VGM_ECC_ENABLED,
	VGM_ECC_MIXED, /* GPUs on this host differ */
} vgm_ecc_mode;

const char *vgm_ecc_to_string(vgm_ecc_mode m); /* NULL for unknown */
vgm_ecc_mode vgm_ecc_from_string(const char *s); /* UNKNOWN for NULL or other text */

enum {
	VGM_HAS_MDEV = 1u << VGM_BACKEND_MDEV,
	VGM_HAS_VF = 1u << VGM_BACKEND_VF,
};

typedef struct vgm_facts {
	char *host_name;
	char *arch;                         /* uname machine, "x86_64" */
	char *kernel_version;               /* uname release, "6.1.0-27-amd64" */
	unsigned long long libvirt_version; /* libvirt encoding; 0 = unknown */
	unsigned long long qemu_version;    /* hypervisor version, same encoding; 0 = unknown */
	unsigned backends;                  /* VGM_HAS_MDEV | VGM_HAS_VF */
	char *driver_version;               /* NVIDIA host driver; NULL = none */
	vgm_ecc_mode ecc;                   /* NVML only; UNKNOWN without it */
	bool nvml;                          /* NVML answered on this host */
	int device_streaming;               /* vGPU migration data streaming: 1, 0, -1 unknown */
	char **pgpu_metadata;               /* NVML metadata of each GPU, hex */
	size_t n_pgpu_metadata;
	vgm_nvml_type *vgpu_types;          /* vGPU types NVML reports (first GPU of each board) */
	size_t n_vgpu_types;
	char **boards; /* board families present, sorted, unique */
	size_t n_boards;
	unsigned protocol_version; /* newest spoken (to this reader: the common one) */
	unsigned protocol_oldest;  /* oldest spoken; == protocol_version when not sent */
	char **notes; /* why a fact is missing ("libvirt not reachable: ...") */
	size_t n_notes;
} vgm_facts;

void vgm_facts_free(vgm_facts *f);
DEFINE_FREEP(vgm_facts, vgm_facts_free)

/* Gather this host's facts.  host_name NULL: gethostname().  libvirt_uri
 * NULL: libvirt is not asked (versions stay 0, a note says so); a URI that
 * cannot be reached is not an error either (versions 0, a note with libvirt's
 * reason).  Sysfs facts come from h; a host with no NVIDIA driver is fine.
 * nv (NULL: no NVML) gives the driver version, ECC, streaming capability,
 * vGPU types and GPU metadata; without it ECC and streaming stay unknown
 * (sysfs has no honest source for them) and a note says why. */
int vgm_facts_gather(vgm_host *h, vgm_nvml *nv, const char *host_name, const char *libvirt_uri,
		     vgm_facts **out, vgm_error *err);
/* Add a note (copied).  -ENOMEM on failure. */
int vgm_facts_add_note(vgm_facts *f, const char *fmt, ...) _printf_(2, 3);

/* JSON: {"host_name", "arch", "kernel_version", "libvirt_version": "9.0.0"|null,
 * "qemu_version", "backends": ["mdev"], "backend": "mdev"|null, "driver_version",
 * "ecc_mode": "enabled"|"disabled"|"mixed"|null, "boards": [...],
 * "nvml": bool, "device_streaming": bool|null, "pgpu_metadata": [hex...],
 * "vgpu_types": [{"name", "framebuffer_bytes"}],
 * "protocol_version": 1, "notes": [...]}.  Returns a new reference or NULL. */
struct json_t *vgm_facts_to_json(const vgm_facts *f);
/* Decode untrusted facts: types, lengths and counts checked, unknown keys
 * ignored; host_name and protocol_version are required.  reason
 * "invalid_facts" with a sentence naming the field on error. */
int vgm_facts_from_json(const struct json_t *j, vgm_facts **out, vgm_error *err);

/* ---- checks ---- */

/* A vGPU profile as the checks see it: wanted by the domain, or offered by
 * the target (available = instances it can still provide). */
typedef struct vgm_profile_ref {
	const char *name; /* "NVIDIA A100-4C" */
	uint64_t framebuffer_bytes;
	unsigned available; /* offered only */
} vgm_profile_ref;

typedef struct vgm_check_input {
	const vgm_facts *source;
	const vgm_facts *target;
	const vgm_domain_info *domain; /* may be NULL: no domain checks */
	const vgm_profile_ref *wanted; /* one entry per vGPU of the domain */
	size_t n_wanted;
	const vgm_profile_ref *offered; /* the target's profiles */
	size_t n_offered;
	bool postcopy; /* post-copy requested */
	/* NVIDIA's verdict (vgm_compat_nvml_verdict); NULL: not asked, unknown */
	const struct vgm_nvml_summary *nvml;
} vgm_check_input;

/* nvmlGetVgpuCompatibility over every vGPU of a domain and every GPU of the
 * target: a vGPU passes when one target GPU takes it live. */
typedef struct vgm_nvml_summary {
	int verdict;      /* 1 all live, 0 one refused, -1 unknown */
	unsigned limit;   /* of the refused vGPU */
	char id[64];      /* the refused vGPU, or the one without metadata */
	char why[192];    /* why unknown */
} vgm_nvml_summary;

/* Fill *out from the vGPUs' metadata blobs (hex, NULL where the source had
 * none) and the target's GPU blobs; nv NULL: unknown.  Never fails: an NVML
 * error makes the verdict unknown with the reason in why. */
void vgm_compat_nvml_verdict(vgm_nvml *nv, const char *const *ids, const char *const *vgpu_hex,
			     size_t n, const vgm_facts *target, vgm_nvml_summary *out);

typedef struct vgm_check_result {
	char *name;    /* "libvirt", "driver", "profile", ... */
	char *host;    /* the host it is about; NULL when about the pair or the domain */
	bool ok;
	bool unknown;  /* a fact it needs could not be read: not ok, not failed */
	char *code;    /* stable code, "ok" when passed */
	char *message; /* one sentence */
} vgm_check_result;

typedef struct vgm_check_list {
	vgm_check_result *items;
	size_t n;
	size_t n_failed;  /* unknowns are not failures */
	size_t n_unknown;
} vgm_check_list;

void vgm_check_list_free(vgm_check_list *l);
DEFINE_FREEP(vgm_check_list, vgm_check_list_free)

/* Run every check; results in a fixed order (per-host checks source then
 * target, then pair, domain and profile checks).  Fails only on ENOMEM or a
 * NULL facts pointer. */
int vgm_compat_check(const vgm_check_input *in, vgm_check_list **out, vgm_error *err);
/* 0 when nothing failed (unknowns allowed); else -EINVAL with the first
 * failure's code as reason and its sentence as message, followed by the codes
 * of any other failures: "...; 2 more checks failed (ecc_mismatch,
 * nvml_incompatible)". */
int vgm_check_list_refusal(const vgm_check_list *l, vgm_error *err);
/* The first failed result with this code, or NULL. */
const vgm_check_result *vgm_check_list_find(const vgm_check_list *l, const char *code);
/* The checks a target runs on an incoming domain before claiming (hook
 * path): driver, ECC, NVIDIA's verdict, vIOMMU and board, with the same
 * words as vgm_compat_check.  in->source holds what the source recorded in
 * the domain's metadata (driver_version, ecc, host_name) and may be sparse. */
int vgm_compat_check_incoming(const vgm_check_input *in, vgm_check_list **out, vgm_error *err);
/* [{"name","host","ok","status":"ok"|"failed"|"unknown","code","message"}],
 * a new reference or NULL. */
struct json_t *vgm_check_list_to_json(const vgm_check_list *l);
