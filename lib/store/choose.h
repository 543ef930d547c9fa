/* choose.h: the device choice of the claims engine (choose.c), kept apart
 * from the SQL so it can be read and tested as one decision. */
#pragma once

#include "store.h"

typedef struct claim_choice {
	char *target_id; /* device on this host */
	char *parent;    /* its parent PCI address */
	char *type_id;   /* local type id */
	uint64_t framebuffer_bytes;
	bool create;     /* to be created for the claim */
} claim_choice;

/* Fill out[0..req->n_devices) or fail with no_capacity / unknown_profile and
 * leave out cleared.  taken: ids nobody may get (owned or in use). */
int claim_choose(const vgm_inventory *inv, const char *const *taken, size_t n_taken,
		 const vgm_claim_request *req, const char *host, claim_choice *out,
		 vgm_error *err);
void claim_choices_clear(claim_choice *c, size_t n);

/* What a claim for devices of one profile could get now, by the rules
 * claim_choose applies (the two cannot disagree: a claim for
 * free_existing + creatable devices of the profile succeeds, one more is
 * refused).  profile_name points into the inventory. */
typedef struct claim_capacity {
	vgm_backend kind;
	const char *profile_name;
	uint64_t framebuffer_bytes;
	unsigned free_existing; /* instances nobody owns or uses */
	unsigned held;          /* instances owned or used (taken) */
	unsigned creatable;     /* new instances the GPUs still have room for */
} claim_capacity;

/* One entry per (backend, profile name, framebuffer) the host offers; free
 * *out with free(), also after an error (-ENOMEM). */
int claim_capacity_list(const vgm_inventory *inv, const char *const *taken, size_t n_taken,
			claim_capacity **out, size_t *n);
