/* store.c: open and close the state database, and the small SQL helpers the
 * other store files share.
 *
 * Invariants: one agent per state dir (an exclusive flock on
 * state_dir/vgpumig.lock, taken before the database is touched, so rows a
 * previous process left half-made are known to belong to a dead process);
 * one SQLite connection, used only under s->lock; the connection runs with
 * WAL, synchronous=FULL (a COMMIT is on disk when it returns), foreign keys
 * and a busy timeout. */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "store-internal.h"
#include "util/fs.h"

/* ---- lock and clock ---- */

vgm_store *store_lock(vgm_store *s)
{
	pthread_mutex_lock(&s->lock);
	return s;
}

void store_unlockp(vgm_store **s)
{
	if (*s)
		pthread_mutex_unlock(&(*s)->lock);
}

int64_t store_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t store_mono_now_ms(vgm_store *s)
{
	return s->monotonic_ms ? s->monotonic_ms(s->clock_ctx) : store_mono_ms();
}

/* Leases are stored as wall seconds (they must survive a restart), but
 * measured on the monotonic clock while we run: the wall clock is read once,
 * at open, and time moves on from there with the monotonic clock.  A step of
 * the wall clock (NTP, an operator's date) thus neither expires every lease
 * at once nor makes them last for the length of a backwards step. */
int64_t store_now(vgm_store *s)
{
	return s->wall_at_open + (store_mono_now_ms(s) - s->mono_at_open_ms) / 1000;
}

static void store_clock_start(vgm_store *s)
{
	s->wall_at_open = s->clock ? s->clock(s->clock_ctx) : (int64_t)time(NULL);
	s->mono_at_open_ms = store_mono_now_ms(s);
}

/* ---- SQL helpers ---- */

/* What the operator can do about the failures that are not our bugs. */
static const char *sql_error_hint(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL:
		return "; the disk holding state_dir is full: free space there (nothing was "
		       "changed)";
	case SQLITE_IOERR:
		return "; the disk holding state_dir reports I/O errors: check it (nothing was "
		       "changed)";
	case SQLITE_READONLY:
		return "; state_dir is read-only: make it writable (nothing was changed)";
	default:
		return "";
	}
}

int store_sql_error(vgm_store *s, vgm_error *err, const char *what)
{
	return vgm_error_setr(err, EIO, "store_error", "state database: %s failed: %s%s", what,
			      sqlite3_errmsg(s->db), sql_error_hint(sqlite3_extended_errcode(s->db)));
}

int store_exec(vgm_store *s, const char *sql, vgm_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_sql_error(s, err, sql);
	return 0;
}

int store_prepare(vgm_store *s, const char *sql, sqlite3_stmt **out, vgm_error *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK)
		return store_sql_error(s, err, "preparing a statement");
	return 0;
}

int store_step_done(vgm_store *s, sqlite3_stmt *st, const char *what, vgm_error *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_sql_error(s, err, what);
	return 0;
}

int store_begin(vgm_store *s, vgm_error *err)
{
	return store_exec(s, "BEGIN IMMEDIATE", err);
}

int store_commit(vgm_store *s, vgm_error *err)
{
	int r = store_exec(s, "COMMIT", err);
	if (r < 0)
		store_rollback(s);
	return r;
}

void store_rollback(vgm_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

char *store_column_strdup(sqlite3_stmt *st, int col, bool *ok)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (!t)
		return NULL;
	char *d = strdup((const char *)t);
	if (!d)
		*ok = false;
	return d;
}

int store_count(vgm_store *s, const char *sql, const char *param, size_t *out, vgm_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, sql, &st, err);
	if (r < 0)
		return r;
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_sql_error(s, err, "counting rows");
	*out = (size_t)sqlite3_column_int64(st, 0);
	return 0;
}

void store_action(store_actions *a, const char *fmt, ...)
{
	if (!a || !a->lines)
		return;
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int k = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	char **grown = realloc(*a->lines, (*a->n + 1) * sizeof(char *));
	if (!grown) {
		free(line);
		return;
	}
	grown[(*a->n)++] = line;
	*a->lines = grown;
}

/* ---- device layer defaults ---- */

static int real_inventory_load(void *ctx, vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	return vgm_inventory_scan(h, out, err);
}

static void real_inventory_free(void *ctx, vgm_inventory *inv)
{
	vgm_inventory_free(inv);
}

static int real_create(void *ctx, vgm_host *h, const char *parent, const char *type_id,
		       const char *uuid, char **out_id, vgm_error *err)
{
	return vgm_device_create(h, parent, type_id, uuid, out_id, err);
}

static int real_remove(void *ctx, vgm_host *h, const char *id, vgm_error *err)
{
	return vgm_device_remove(h, id, err);
}

static int real_instances_load(void *ctx, vgm_host *h, const vgm_inventory *known,
			       vgm_instance **out, size_t *n, vgm_error *err)
{
	return vgm_inventory_load_instances(h, known, out, n, err);
}

static int real_parent_load(void *ctx, vgm_host *h, const char *address, vgm_parent *out,
			    vgm_error *err)
{
	return vgm_inventory_load_parent(h, address, out, err);
}

static void set_devops(vgm_store *s, const vgm_store_devops *d)
{
	s->devops = (vgm_store_devops){real_inventory_load, real_inventory_free, real_create,
				       real_remove, NULL, real_instances_load, real_parent_load};
	if (!d)
		return;
	if (d->inventory_load && d->inventory_load != real_inventory_load) {
		/* a double's full read: its cheap reads or none (refresh = full read) */
		s->devops.instances_load = d->instances_load;
		s->devops.parent_load = d->parent_load;
	}
	s->devops.ctx = d->ctx;
	if (d->inventory_load)
		s->devops.inventory_load = d->inventory_load;
	if (d->inventory_free)
		s->devops.inventory_free = d->inventory_free;
	if (d->create)
		s->devops.create = d->create;
	if (d->remove)
		s->devops.remove = d->remove;
}

int store_load_uses(vgm_store *s, vgm_device_use **out, size_t *n, vgm_error *err)
{
	*out = NULL;
	*n = 0;
	if (!s->in_use)
		return 0;
	int r = s->in_use(s->in_use_ctx, out, n, err);
	if (r < 0)
		vgm_error_prefix(err, "listing the devices domains use");
	return r;
}

void vgm_device_uses_free(vgm_device_use *u, size_t n)
{
	for (size_t i = 0; u && i < n; i++) {
		free(u[i].device_id);
		free(u[i].domain_uuid);
	}
	free(u);
}

/* ---- open / close ---- */

/* A wall clock stepped back while we were down would put "now" before rows
 * we already wrote; start from the newest of them instead, so time in the
 * store never runs backwards. */
static void store_clock_floor(vgm_store *s)
{
	size_t latest = 0;
	if (store_count(s, "SELECT coalesce(max(updated_at), 0) FROM claims", NULL, &latest,
			NULL) == 0 && (int64_t)latest > s->wall_at_open)
		s->wall_at_open = (int64_t)latest;
}

static int take_dir_lock(vgm_store *s, const char *state_dir, vgm_error *err)
{
	_cleanup_free_ char *p = vgm_path(NULL, "%s/vgpumig.lock", state_dir);
	if (!p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return vgm_error_setr(err, errno, "store_error",
				      "cannot open %s: %s; check that state_dir exists and is "
				      "writable", p, strerror(errno));
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			return vgm_error_setr(err, EBUSY, "state_locked",
					      "state dir %s is in use by another vgpumigd; stop "
					      "it or give this one its own state_dir", state_dir);
		return vgm_error_setr(err, e, "store_error", "cannot lock %s: %s", p,
				      strerror(e));
	}
	return 0;
}

static int open_db(vgm_store *s, const char *state_dir, vgm_error *err)
{
	_cleanup_free_ char *p = vgm_path(NULL, "%s/vgpumig.db", state_dir);
	if (!p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(p, &s->db, flags, NULL) != SQLITE_OK) {
		int r = vgm_error_setr(err, EIO, "store_error", "cannot open state database %s: %s",
				       p, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return r;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 1);
	int r = store_schema_check(s->db, err); /* before anything writes */
	if (r == 0)
		r = store_exec(s, "PRAGMA journal_mode=WAL", err);
	if (r == 0)
		r = store_exec(s, "PRAGMA synchronous=FULL", err);
	if (r == 0)
		r = store_exec(s, "PRAGMA foreign_keys=ON", err);
	if (r == 0)
		r = store_schema_upgrade(s->db, VGM_STORE_SCHEMA_VERSION, err);
	if (r < 0)
		vgm_error_prefix(err, "%s", p);
	return r;
}

static int set_options(vgm_store *s, const vgm_store_opts *o, vgm_error *err)
{
	char hn[256] = "";
	const char *name = o ? o->host_name : NULL;
	if (!name || !name[0]) {
		if (gethostname(hn, sizeof(hn) - 1) < 0 || !hn[0])
			snprintf(hn, sizeof(hn), "this host");
		name = hn;
	}
	s->host_name = strdup(name);
	if (!s->host_name)
		return vgm_error_set(err, ENOMEM, "out of memory");
	s->remove_released = o ? o->remove_released : true;
	s->retention_seconds = o && o->retention_seconds > 0 ? o->retention_seconds : 7 * 86400;
	if (o) {
		s->clock = o->clock;
		s->monotonic_ms = o->monotonic_ms;
		s->clock_ctx = o->clock_ctx;
		s->in_use = o->in_use;
		s->in_use_ctx = o->in_use_ctx;
	}
	set_devops(s, o ? o->devops : NULL);
	s->inventory_ttl_ms = !o || o->inventory_ttl_ms == 0 ? 2000 : o->inventory_ttl_ms;
	s->remove_deadline_ms = o && o->remove_deadline_ms > 0 ? o->remove_deadline_ms : 1000;
	store_clock_start(s);
	if (store_remover_new(s) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	return 0;
}

int vgm_store_open(const char *state_dir, const vgm_store_opts *opts, vgm_store **out,
		   vgm_error *err)
{
	if (!state_dir || !state_dir[0])
		return vgm_error_setr(err, EINVAL, "invalid_request", "no state_dir given");
	_cleanup_(vgm_store_closep) vgm_store *s = calloc(1, sizeof(*s));
	if (!s)
		return vgm_error_set(err, ENOMEM, "out of memory");
	s->lock_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	int r = set_options(s, opts, err);
	if (r == 0)
		r = take_dir_lock(s, state_dir, err);
	if (r == 0)
		r = open_db(s, state_dir, err);
	if (r < 0)
		return r;
	store_clock_floor(s);
	*out = TAKE_PTR(s);
	return 0;
}

void vgm_store_close(vgm_store *s)
{
	if (!s)
		return;
	store_inventory_drop(s);
	store_remover_release(s);
	free(s->creating);
	if (s->db)
		sqlite3_close(s->db);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->host_name);
	free(s);
}

int vgm_store_schema_version(vgm_store *s)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	size_t v = 0;
	int r = store_count(s, "PRAGMA user_version", NULL, &v, NULL);
	return r < 0 ? r : (int)v;
}

/* ---- metrics ---- */

int vgm_store_counts_get(vgm_store *s, vgm_store_counts *out, vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	memset(out, 0, sizeof(*out));
	for (int st = VGM_CLAIM_PENDING; st <= VGM_CLAIM_EXPIRED; st++) {
		int r = store_count(s, "SELECT count(*) FROM claims WHERE state = ?1",
				    vgm_claim_state_to_string((vgm_claim_state)st), &out->claims[st],
				    err);
		if (r < 0)
			return r;
	}
	int r = store_count(s, "SELECT count(*) FROM assignments", NULL, &out->assignments, err);
	if (r == 0)
		r = store_count(s, "SELECT count(*) FROM devices_created", NULL,
				&out->devices_created, err);
	if (r == 0)
		r = store_count(s, "SELECT count(*) FROM device_owners", NULL, &out->owned_devices,
				err);
	return r;
}
