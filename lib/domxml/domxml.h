/* domxml.h: libvirt domain XML, read and rewritten with libxml2 + XPath.
 *
 * inspect finds what migration cares about: memory, vCPUs, every <hostdev>
 * (mdev and pci), a vIOMMU, and vgpumig's own <metadata> record of vGPU
 * profiles.  rewrite changes host-side identities only:
 *   mdev: <hostdev type='mdev'><source><address uuid='...'/>
 *   pci:  <hostdev type='pci'><source><address domain= bus= slot= function=/>
 * plus the matching entries in vgpumig's metadata; nothing else in the
 * document changes (guest address, alias, display, ramfb all stay).
 *
 * Input is untrusted: size-limited, no network, no entity expansion, no DTD. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "util/error.h"

#define VGM_DOMXML_MAX (8u * 1024 * 1024) /* 8 MiB: far above any real domain */
#define VGM_METADATA_NS "http://vgpumig.dev/xmlns/domain/1"
#define VGM_METADATA_PREFIX "vgpumig"

typedef enum vgm_hostdev_type {
	VGM_HOSTDEV_MDEV = 0,
	VGM_HOSTDEV_PCI = 1,
} vgm_hostdev_type;

typedef struct vgm_hostdev {
	vgm_hostdev_type type;
	char *id;            /* mdev: UUID (NULL if missing); pci: "0000:41:00.4" */
	char *model;         /* mdev model attr: vfio-pci, vfio-ccw, vfio-ap; NULL for pci */
	char *display;       /* "on"/"off"/NULL */
	char *ramfb;         /* "on"/"off"/NULL */
	char *alias;         /* NULL if none */
	char *guest_address; /* guest PCI address "0000:00:05.0", NULL if none */
	bool managed;        /* pci: managed='yes' */
} vgm_hostdev;

/* One vGPU as recorded in <metadata><vgpumig:vgpus>; lab=true marks an
 * emulated vGPU declared by the lab (no hostdev behind it). */
typedef struct vgm_meta_vgpu {
	char *id;            /* UUID or VF PCI address */
	char *kind;          /* "mdev" | "vf" */
	char *profile_name;
	char *type_id;       /* NULL if unknown */
	uint64_t framebuffer_bytes;
	bool lab;
	char *nvml_metadata; /* NVML's vGPU metadata on the source, hex; NULL if none */
} vgm_meta_vgpu;

/* What the source host recorded about itself next to the vGPUs (attributes
 * of <vgpumig:vgpus>), so a target can check a migration it did not start;
 * NULL members when not recorded. */
typedef struct vgm_meta_source {
	char *host;           /* host='host-a' */
	char *driver_version; /* driver='550.90.05' */
	char *ecc;            /* ecc='enabled|disabled|mixed' */
} vgm_meta_source;

typedef struct vgm_domain_info {
	char *name;
	char *uuid;
	uint64_t memory_bytes;
	unsigned vcpus;
	vgm_hostdev *hostdevs;
	size_t n_hostdevs;
	bool viommu;
	vgm_meta_vgpu *meta;
	size_t n_meta;
	vgm_meta_source meta_source;
	char **problems; /* human sentences; empty when the domain is sound */
	size_t n_problems;
} vgm_domain_info;

int vgm_domxml_inspect(const char *xml, size_t len, vgm_domain_info **out, vgm_error *err);
void vgm_domain_info_free(vgm_domain_info *d);
DEFINE_FREEP(vgm_domain_info, vgm_domain_info_free)

/* The inspect JSON of docs/cli-xml.md (every key present, absent values
 * null); NULL on allocation failure. */
json_t *vgm_domain_info_to_json(const vgm_domain_info *d);

typedef struct vgm_idmap {
	const char *src; /* UUID or PCI address */
	const char *dst;
} vgm_idmap;

enum {
	/* Leave mdev hostdevs without a mapping as they are instead of failing. */
	VGM_REWRITE_ALLOW_UNMAPPED = 1u << 0,
};

/* Rewrite host-side ids per map.  A map entry whose src is not in the
 * domain is an error; so is an mdev hostdev left unmapped unless
 * VGM_REWRITE_ALLOW_UNMAPPED.  *out is NUL-terminated, *outlen optional. */
int vgm_domxml_rewrite(const char *xml, size_t len, const vgm_idmap *map, size_t n_map,
		       unsigned flags, char **out, size_t *outlen, vgm_error *err);

/* Build the metadata element text for virDomainSetMetadata(dom,
 * VIR_DOMAIN_METADATA_ELEMENT, text, VGM_METADATA_PREFIX, VGM_METADATA_NS, ...).
 * The text is "<vgpus><vgpu id= kind= profile= type= framebuffer= lab=/>..."
 * WITHOUT prefix or namespace declaration: libvirt puts the element in the
 * namespace uri= under prefix key=, so it reads back as <vgpumig:vgpus>.
 * framebuffer is in bytes; lab='yes' only when set.  Ids are lowercased; an
 * id that does not fit its kind (mdev: UUID, vf: PCI address) is EINVAL. */
int vgm_domxml_format_metadata(const vgm_meta_vgpu *v, size_t n, char **out, vgm_error *err);
/* As above, with the source's facts as attributes of <vgpus> (src may be
 * NULL) and each entry's nvml_metadata as nvml='hex'. */
int vgm_domxml_format_metadata_src(const vgm_meta_source *src, const vgm_meta_vgpu *v, size_t n,
				   char **out, vgm_error *err);

/* The absolute host paths a domain needs to start: file and block disk
 * sources and the direct-boot kernel/initrd (disks.c says what is left out
 * and why).  *out is NULL-terminated, each path once; free with
 * vgm_strv_free(*out, *n_out). */
int vgm_domxml_disk_paths(const char *xml, size_t len, char ***out, size_t *n_out, vgm_error *err);
