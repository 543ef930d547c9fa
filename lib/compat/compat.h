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
 * postcopy_forbidden; "ok" for a check that passed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	vgm_ecc_mode ecc;
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
 * reason).  Sysfs facts come from h; a host with no NVIDIA driver is fine. */
int vgm_facts_gather(vgm_host *h, const char *host_name, const char *libvirt_uri,
		     vgm_facts **out, vgm_error *err);
/* ECC mode from ROOT/proc/driver/nvidia/gpus/<addr>/information "ECC ...: Enabled|Disabled". */
vgm_ecc_mode vgm_ecc_mode_read(vgm_host *h);
/* Add a note (copied).  -ENOMEM on failure. */
int vgm_facts_add_note(vgm_facts *f, const char *fmt, ...) _printf_(2, 3);

/* JSON: {"host_name", "arch", "kernel_version", "libvirt_version": "9.0.0"|null,
 * "qemu_version", "backends": ["mdev"], "backend": "mdev"|null, "driver_version",
 * "ecc_mode": "enabled"|"disabled"|"mixed"|null, "boards": [...],
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
} vgm_check_input;

typedef struct vgm_check_result {
	char *name;    /* "libvirt", "driver", "profile", ... */
	char *host;    /* the host it is about; NULL when about the pair or the domain */
	bool ok;
	char *code;    /* stable code, "ok" when passed */
	char *message; /* one sentence */
} vgm_check_result;

typedef struct vgm_check_list {
	vgm_check_result *items;
	size_t n;
	size_t n_failed;
} vgm_check_list;

void vgm_check_list_free(vgm_check_list *l);
DEFINE_FREEP(vgm_check_list, vgm_check_list_free)

/* Run every check; results in a fixed order (per-host checks source then
 * target, then pair, domain and profile checks).  Fails only on ENOMEM or a
 * NULL facts pointer. */
int vgm_compat_check(const vgm_check_input *in, vgm_check_list **out, vgm_error *err);
/* The first failed result with this code, or NULL. */
const vgm_check_result *vgm_check_list_find(const vgm_check_list *l, const char *code);
/* [{"name","host","ok","code","message"}], a new reference or NULL. */
struct json_t *vgm_check_list_to_json(const vgm_check_list *l);
