/* vgpus.h: which of a domain's devices are vGPUs, on this host or incoming.
 *
 * A running domain on this host: its mdev hostdevs and PCI hostdevs that are
 * vGPU instances in this host's inventory (and, in lab mode, metadata
 * entries with lab='yes' backed by an instance here).  An incoming domain
 * (hook path, XML from the source): every mdev vfio-pci hostdev, every PCI
 * hostdev that its vgpumig metadata lists or that is an NVIDIA device on
 * this host (a VF holding a vGPU: without metadata it is still a vGPU, to be
 * refused rather than passed), and in lab mode metadata entries with
 * lab='yes'; the ids are the SOURCE host's.  The agent's hook route and the
 * hook itself (when the agent is down) decide with this one function, so
 * both paths agree on what is a vGPU. */
#pragma once

#include "device/device.h"
#include "domxml/domxml.h"

typedef struct agent_vgpu {
	char *id;           /* UUID or VF address */
	char *kind;         /* "mdev" | "vf" */
	char *profile_name; /* NULL when unknown (incoming mdev without metadata) */
	char *type_id;      /* NULL when unknown */
	uint64_t framebuffer_bytes;
	bool lab;
} agent_vgpu;

void agent_vgpus_free(agent_vgpu *v, size_t n);

/* vGPUs of a domain that runs here, described from the inventory. */
int agent_vgpus_local(const vgm_domain_info *d, const vgm_inventory *inv, bool lab_mode,
		      agent_vgpu **out, size_t *n);
/* vGPUs of an incoming domain, described from its metadata where it has any.
 * h: this host, to recognise NVIDIA PCI devices; NULL: metadata only. */
int agent_vgpus_incoming(const vgm_domain_info *d, const vgm_host *h, bool lab_mode,
			 agent_vgpu **out, size_t *n);
/* Does the domain's metadata already say exactly this (ids and profiles)? */
bool agent_vgpus_match_meta(const vgm_domain_info *d, const agent_vgpu *v, size_t n);
