/* evac.h: what the two halves of evacuation share: evac-plan.c finds the
 * VMs, asks the targets and places (in the request), route-evacuate.c runs
 * and resumes the result.  See route-evacuate.c for the whole story. */
#pragma once

#include <libvirt/libvirt.h>

#include "api/client.h"
#include "api/wire-ops.h"
#include "place/place.h"
#include "routes.h"
#include "store/evac.h"

typedef struct evac_cfg {
	char *host_name, *socket, *libvirt_uri, *tls_cert, *tls_key, *tls_ca;
	char **peers, **addrs;
	size_t n_peers;
} evac_cfg;

typedef struct local_vm {
	char uuid[40];
	char *name;
	char **profiles;
	size_t n;
	uint64_t ram;
} local_vm;

typedef struct planning {
	local_vm *vms;
	size_t n_vms;
	vgm_place_vm *pvms;
	char **refusals;            /* per VM: the plan's reason when refused */
	vgm_place_target *targets;  /* decoded capacities (own their strings) */
	size_t n_targets;
	vgm_placement *placement;
} planning;

char *evac_dup0(const char *s);
int evac_cfg_get(agent *a, evac_cfg *c, vgm_error *err);
void evac_cfg_clear(evac_cfg *c);
/* This agent's own local API; a peer's API over mutual TLS. */
int self_client(const evac_cfg *c, vgm_client **out, vgm_error *err);
int peer_client(const evac_cfg *c, const char *name, vgm_client **out, vgm_error *err);

/* One running domain with vGPUs: 1, filled; 0 not one (nothing to free). */
int read_vm(virDomainPtr dom, const vgm_inventory *inv, bool lab, local_vm *out);
void local_vms_free(local_vm *v, size_t n);

/* Discover, predict, ask the targets, place. */
int plan_evacuation(agent *a, const evac_cfg *c, const vgm_wire_evac_req *q, planning *p,
		    vgm_error *err);
/* The targets only (--to, else every peer), with their capacity. */
int load_targets(const evac_cfg *c, const vgm_wire_evac_req *q, planning *p, vgm_error *err);
void planning_clear(planning *p);
/* The placement as the evacuation's VM rows (strings borrowed from p). */
vgm_evac_vm *record_vms(const planning *p);
