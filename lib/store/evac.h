/* evac.h: durable evacuations (one per `vgpumig evacuate` run on this host).
 *
 * An evacuation is its request (JSON as lib/api encodes it, kept so a
 * restarted agent can resume with the same limits) and one row per VM: the
 * start order (smallest predicted pause first), the placement, and where the
 * VM stands: pending -> migrating | cold_migrating -> moved | cold_moved |
 * left_behind (with a code and a sentence why).  Rows are written before
 * the agent acts on them, so after a crash every VM is in a known state and
 * a "migrating" row names the migration to ask about.
 *
 * Evacuation states: running (the agent works on it; resumed after a
 * restart) and done. */
#pragma once

#include "store/store.h"

typedef struct vgm_evac_vm {
	char *domain_uuid;
	char *domain_name;
	char *target;        /* NULL: not placed */
	char *state;         /* see above */
	char *migration_id;  /* NULL until a migration started */
	char *code;          /* NULL, or why it was left behind / how it failed */
	char *message;
	int64_t pause_ms;    /* predicted switchover; -1 unknown */
} vgm_evac_vm;

typedef struct vgm_evacuation {
	char *id;
	char *state;   /* running | done */
	char *request; /* JSON */
	int64_t created_at, updated_at;
	vgm_evac_vm *vms; /* in start order */
	size_t n_vms;
} vgm_evacuation;

void vgm_evacuation_free(vgm_evacuation *e);
DEFINE_FREEP(vgm_evacuation, vgm_evacuation_free)

/* Insert the evacuation and its VMs in one transaction ("exists" when the id
 * is taken, "evacuation_running" when another one still runs). */
int vgm_evac_create(vgm_store *s, const vgm_evacuation *e, vgm_error *err);
int vgm_evac_set_state(vgm_store *s, const char *id, const char *state, vgm_error *err);
/* Update one VM's target, state, migration id, code and message (by uuid). */
int vgm_evac_vm_set(vgm_store *s, const char *id, const vgm_evac_vm *vm, vgm_error *err);
int vgm_evac_get(vgm_store *s, const char *id, vgm_evacuation **out, vgm_error *err);
/* Ids, newest first; state NULL: all. */
int vgm_evac_list(vgm_store *s, const char *state, char ***ids, size_t *n, vgm_error *err);
