/* baselines.h: the five systems vgpumig is compared with, as policies over
 * lib/model's simulator (vgm_sim_policy).  Bench-only: they are not product
 * code.  Each sees only what libvirt's job stats show it, polls at its own
 * interval and acts through the same two knobs (downtime limit, abort).
 * Rules from issue 7 and FACTS.md section 6:
 *   QEMU default  300 ms, no timeout
 *   Nova          500 ms in 10 steps, 75 s per GiB apart (RAM in GiB floored
 *                 at 2); abort after 800 s per GiB; polls every 0.5 s
 *   KubeVirt      completion budget 150 s x ceil(RAM bytes / 10^9); abort at
 *                 the budget; polls every 0.4 s
 *   KubeVirt forced  at the budget sets the downtime to min(2 x budget s,
 *                 2000 s) and aborts at twice the budget
 *   Proxmox       100 ms, doubled after 5 polls where the RAM left grew or is
 *                 zero; polls every 1 s (0.1 s once the RAM left is below
 *                 what one poll sends) */
#pragma once

#include "model/model.h"

typedef enum baseline_kind {
	BASE_QEMU = 0,
	BASE_NOVA,
	BASE_KUBEVIRT,
	BASE_KUBEVIRT_FORCED,
	BASE_PROXMOX,
	BASE_COUNT,
} baseline_kind;

typedef struct baseline {
	baseline_kind kind;
	uint64_t ram_bytes;
	unsigned started;      /* start actions handed out */
	unsigned step_done;    /* Nova: downtime steps applied */
	bool forced;           /* KubeVirt: switchover forced */
	uint64_t downtime_ms;  /* Proxmox: current limit */
	uint64_t last_rem;     /* Proxmox: RAM left at the previous poll */
	bool have_last;
	unsigned no_progress;  /* Proxmox: polls without progress */
	vgm_sim_policy *pol;   /* to change the poll interval */
} baseline;

const char *baseline_name(baseline_kind k);
/* Fill pol (and b) for a run of a guest with ram_bytes of RAM. */
void baseline_policy(baseline *b, baseline_kind k, uint64_t ram_bytes, vgm_sim_policy *pol);
