/* store-internal.h: what the files of lib/store share and nobody else sees.
 *
 * Invariants: s->db is used only with s->lock held (every public entry point
 * takes it once, at the top, through store_lock()); helpers named store_* and
 * claim_* below assume the lock is held.  Functions that write run inside one
 * BEGIN IMMEDIATE ... COMMIT so a call is all or nothing on disk. */
#pragma once

#include <pthread.h>
#include <sqlite3.h>

#include "store.h"
#include "util/validate.h"

struct vgm_store {
	sqlite3 *db;
	pthread_mutex_t lock;
	int lock_fd;
	char *host_name;
	bool remove_released;
	int64_t retention_seconds;
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
	int (*in_use)(void *ctx, vgm_device_use **out, size_t *n, vgm_error *err);
	void *in_use_ctx;
	vgm_store_devops devops; /* every field set */
	/* invcache.c: last inventory, patched with our own writes */
	vgm_inventory *inv;
	vgm_host *inv_host;
	int64_t inv_loaded_ms;
	int64_t inventory_ttl_ms; /* <= 0: always read sysfs */
	char **inv_dirty;         /* parents to read again before the next decision */
	size_t n_inv_dirty;
	uint64_t inv_gen;         /* changes with every change to inv */
	size_t inv_cursor;        /* next parent for vgm_store_inventory_refresh */
	/* removal.c: removals running outside the lock (has its own lock) */
	struct store_remover *remover;
	int64_t remove_deadline_ms;
	unsigned removal_pass; /* under remover's lock */
	/* claims.c: claims whose devices are being created outside the lock;
	 * under s->lock.  A 'pending' claim not listed here is a crash leftover. */
	char (*creating)[VGM_UUID_LEN + 1];
	size_t n_creating;
	/* store.c: the store clock is wall time at open plus monotonic time since */
	int64_t (*monotonic_ms)(void *ctx);
	int64_t wall_at_open, mono_at_open_ms;
};

static inline void sqlite3_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Lock / unlock; used as `_cleanup_(store_unlockp) vgm_store *locked = store_lock(s);` */
vgm_store *store_lock(vgm_store *s);
void store_unlockp(vgm_store **s);

/* Seconds since the epoch, immune to wall-clock steps while the store is
 * open (store.c). */
int64_t store_now(vgm_store *s);
int64_t store_mono_ms(void);

/* Fill err with "store_error" naming what failed and SQLite's words. */
int store_sql_error(vgm_store *s, vgm_error *err, const char *what);
int store_exec(vgm_store *s, const char *sql, vgm_error *err);
int store_prepare(vgm_store *s, const char *sql, sqlite3_stmt **out, vgm_error *err);
/* Step a statement that returns no rows (SQLITE_DONE expected). */
int store_step_done(vgm_store *s, sqlite3_stmt *st, const char *what, vgm_error *err);
int store_begin(vgm_store *s, vgm_error *err);
int store_commit(vgm_store *s, vgm_error *err);
void store_rollback(vgm_store *s);
/* A text column as a malloc'd string (NULL for SQL NULL); -ENOMEM sets *ok false. */
char *store_column_strdup(sqlite3_stmt *st, int col, bool *ok);
/* Text column 0 of every remaining row of a prepared, bound statement, into a
 * new array (*out, *n); what names the read in an error.  Free with
 * store_strv_free(), also after an error. */
int store_collect_text(vgm_store *s, sqlite3_stmt *st, const char *what, char ***out, size_t *n,
		       vgm_error *err);
void store_strv_free(char **v, size_t n);
/* Count rows of a one-integer query with one optional text parameter. */
int store_count(vgm_store *s, const char *sql, const char *param, size_t *out, vgm_error *err);

/* schema.c: bring the database to VGM_STORE_SCHEMA_VERSION, or only up to
 * target (tests build old files with it). */
int store_schema_upgrade(sqlite3 *db, int target, vgm_error *err);
/* -EPROTO when the file's schema is newer than this build's; writes nothing. */
int store_schema_check(sqlite3 *db, vgm_error *err);

/* journal.c: append inside the caller's transaction. */
int store_journal_add(vgm_store *s, const char *migration_id, const char *domain,
		      const char *step, const char *outcome, const char *detail, vgm_error *err);

/* invcache.c: the inventory for a decision (owned by the store, valid until
 * the next store_* call); fresh forces a sysfs read; *loaded (optional) says
 * whether sysfs was read. */
int store_inventory_get(vgm_store *s, vgm_host *h, bool fresh, const vgm_inventory **out,
			bool *loaded, vgm_error *err);
void store_inventory_note_create(vgm_store *s, const char *id, const char *parent,
				 const char *type_id);
void store_inventory_note_remove(vgm_store *s, const char *id);
void store_inventory_drop(vgm_store *s);
/* After a device write whose outcome is unknown: the next decision checks
 * the copy against sysfs (instances read again, the parents that differ
 * re-read; a full read only without per-parent reads), instead of dropping
 * it and paying a full read. */
void store_inventory_suspect(vgm_store *s);

/* jobs.c: the cordon, lock held; reason optional. */
int store_cordon_get(vgm_store *s, bool *cordoned, char **reason, vgm_error *err);

/* claim-rows.c and claims.c, shared with reconcile.c and assign.c */
vgm_claim_state claim_state_from_string(const char *s);
int claim_load(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err);
/* claim_load of an id from outside: checked ("invalid_id") and normalised. */
int claim_load_outside(vgm_store *s, const char *claim_id, vgm_claim **out, vgm_error *err);
int claim_set_state(vgm_store *s, const char *claim_id, vgm_claim_state st, vgm_error *err);
/* Commit a held claim inside the caller's transaction. */
int claim_commit_tx(vgm_store *s, const vgm_claim *c, vgm_error *err);
/* Remove from sysfs (if present) and forget the devices we created that no
 * claim or assignment owns now, limited to one claim when claim_id != NULL.
 * Each removal is appended to actions (may be NULL); counts are added. */
typedef struct store_actions {
	char ***lines;
	size_t *n;
} store_actions;
/* removal.c.  Called WITHOUT s->lock.  Remove from sysfs the devices we
 * created that no claim or assignment owns (only those created for claim_id
 * when it is not NULL), unless a domain uses them or in_use cannot tell;
 * each removal runs on its own thread and is waited for at most
 * remove_deadline_ms.  rep (may be NULL) gets the counts and action lines. */
int store_removal_pass(vgm_store *s, vgm_host *h, const char *claim_id,
		       vgm_reconcile_report *rep, vgm_error *err);
int store_remover_new(vgm_store *s);
void store_remover_release(vgm_store *s);
/* Forget a pending (half-made) claim; the devices recorded for it stay in
 * devices_created, unowned, for the next removal pass. */
int claim_undo_pending(vgm_store *s, const char *claim_id, vgm_error *err);
/* claims.c: is this pending claim being made right now (outside the lock)? */
bool claim_is_creating(vgm_store *s, const char *claim_id);
void store_action(store_actions *a, const char *fmt, ...) _printf_(2, 3);
/* Ids nobody may be given (claims.c): the uses (borrowed, first n_uses
 * entries), every device a live claim or an assignment owns, ours waiting
 * to be removed, and when the uses are unknown every instance of inv.  Free
 * with store_taken_free(v, n, n_uses), also after an error. */
int store_taken_ids(vgm_store *s, const vgm_inventory *inv, bool unknown,
		    const vgm_device_use *uses, size_t n_uses, char ***out, size_t *n,
		    vgm_error *err);
void store_taken_free(char **v, size_t n, size_t n_borrowed);
/* The device uses the agent reported (in_use callback); empty when none. */
int store_load_uses(vgm_store *s, vgm_device_use **out, size_t *n, vgm_error *err);
