/* cold.c: the cold-migration job (cold.h has the steps, the rollback and the
 * invariants).  The job keeps a small "done" record of which effects have
 * happened, and the undo walks it newest first. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate/cold.h"

typedef struct cold_job {
	const vgm_cold_ops *ops;
	void *ud;
	vgm_cold_result *res;
	bool claimed, stopped, defined;
} cold_job;

static void enter(cold_job *j, const char *phase)
{
	j->res->phase = phase;
	if (j->ops->record)
		j->ops->record(j->ud, phase, "started", NULL);
}

static void record(cold_job *j, const char *phase, const char *outcome, const char *detail)
{
	if (j->ops->record)
		j->ops->record(j->ud, phase, outcome, detail);
}

/* Run one step; on failure prefix the error with the phase. */
static int step(cold_job *j, const char *phase, int r, vgm_error *err)
{
	if (r < 0) {
		vgm_error_prefix(err, "cold migration failed at %s", phase);
		record(j, phase, "failed", vgm_error_message(err));
		return r;
	}
	record(j, phase, "ok", NULL);
	return 0;
}

/* Graceful shutdown; with force, destroy once the timeout has passed. */
static int stop_source(cold_job *j, const vgm_cold_opts *o, vgm_error *err)
{
	uint64_t t = o->shutdown_timeout_ms ? o->shutdown_timeout_ms : VGM_COLD_DEFAULT_SHUTDOWN_MS;
	enter(j, "shutting_down");
	j->stopped = true; /* from here on the undo must make sure it runs again */
	int r = j->ops->shutdown(j->ud, t, err);
	if (r == -ETIMEDOUT && o->force) {
		record(j, "shutting_down", "timeout", "destroying (--force)");
		vgm_error_clear(err);
		enter(j, "destroying");
		r = j->ops->destroy(j->ud, err);
	} else if (r == -ETIMEDOUT) {
		vgm_error_prefix(err, "the guest did not shut down within %llu ms (use --force to "
				 "destroy it after the timeout)", (unsigned long long)t);
		record(j, "shutting_down", "failed", vgm_error_message(err));
		return r;
	}
	return step(j, j->res->phase, r, err);
}

static int rewrite(cold_job *j, const vgm_idmap *map, size_t n, char **xml, vgm_error *err)
{
	const char *src = j->ops->source_xml(j->ud);
	enter(j, "rewriting");
	if (!src)
		return step(j, "rewriting",
			    vgm_error_setr(err, EINVAL, "domain_not_persistent",
					   "the domain has no persistent definition to move; define it first"),
			    err);
	int r = vgm_domxml_rewrite(src, strlen(src), map, n,
				   VGM_REWRITE_ALLOW_UNMAPPED, xml, NULL, err);
	return step(j, "rewriting", r, err);
}

static void undo_one(cold_job *j, bool needed, int (*fn)(void *, vgm_error *), const char *name,
		     const char **failed, vgm_error *first)
{
	if (!needed)
		return;
	vgm_error e = { 0 };
	int r = fn(j->ud, &e);
	record(j, name, r < 0 ? "failed" : "ok", r < 0 ? vgm_error_message(&e) : NULL);
	if (r < 0 && !*failed) {
		*failed = name;
		*first = e;
	}
}

/* Undo, newest first.  Every undo step runs even when one before failed;
 * the first undo failure is appended to the original error. */
static void undo(cold_job *j, vgm_error *err)
{
	vgm_error u = { 0 };
	const char *failed = NULL;
	enter(j, "rolling_back");
	undo_one(j, j->defined, j->ops->undefine_target, "undefine_target", &failed, &u);
	undo_one(j, j->stopped, j->ops->start_source, "start_source", &failed, &u);
	undo_one(j, j->claimed, j->ops->release_target, "release_target", &failed, &u);
	j->res->rolled_back = !failed;
	j->res->rollback_failed = failed != NULL;
	if (failed) {
		vgm_error orig = *err;
		vgm_error_set_at(err, orig.file, orig.line, orig.code ? orig.code : EIO,
				 orig.reason[0] ? orig.reason : NULL,
				 "%s; the rollback failed too (%s: %s): check the domain on both hosts",
				 vgm_error_message(&orig), failed, vgm_error_message(&u));
	}
	record(j, "done", failed ? "rollback_failed" : "rolled_back", vgm_error_message(err));
}

/* After the point of no return: note a failure, go on. */
static void warn(cold_job *j, const char *phase, int r, vgm_error *e)
{
	if (r >= 0) {
		record(j, phase, "ok", NULL);
		return;
	}
	size_t off = strlen(j->res->warnings);
	snprintf(j->res->warnings + off, sizeof(j->res->warnings) - off, "%s%s: %s", off ? "; " : "",
		 phase, vgm_error_message(e));
	record(j, phase, "failed", vgm_error_message(e));
}

static int run_until_started(cold_job *j, const vgm_cold_opts *o, vgm_error *err)
{
	const vgm_idmap *map = NULL;
	size_t n = 0;
	_cleanup_free_ char *xml = NULL;
	enter(j, "checking");
	int r = step(j, "checking", j->ops->check(j->ud, err), err);
	if (r >= 0) {
		enter(j, "claiming");
		j->claimed = true; /* a timed-out claim may still be held: release it too */
		r = step(j, "claiming", j->ops->claim(j->ud, &map, &n, err), err);
	}
	if (r >= 0)
		r = rewrite(j, map, n, &xml, err);
	if (r >= 0)
		r = stop_source(j, o, err);
	if (r >= 0) {
		enter(j, "defining");
		j->defined = true; /* undefine is idempotent: no need to know how far it got */
		r = step(j, "defining", j->ops->define_target(j->ud, xml, err), err);
	}
	if (r >= 0) {
		enter(j, "starting");
		r = step(j, "starting", j->ops->start_target(j->ud, err), err);
	}
	return r;
}

int vgm_cold_run(const vgm_cold_ops *ops, void *ud, const vgm_cold_opts *o, vgm_cold_result *res,
		 vgm_error *err)
{
	*res = (vgm_cold_result){ .phase = "queued" };
	cold_job j = { .ops = ops, .ud = ud, .res = res };
	int r = run_until_started(&j, o, err);
	if (r < 0) {
		undo(&j, err);
		return r;
	}
	res->moved = true;
	vgm_error e = { 0 };
	enter(&j, "committing");
	warn(&j, "committing", ops->commit_target(ud, &e), &e);
	vgm_error_clear(&e);
	enter(&j, "releasing");
	warn(&j, "releasing", ops->release_source(ud, &e), &e);
	enter(&j, "done");
	record(&j, "done", res->warnings[0] ? "warnings" : "ok", res->warnings[0] ? res->warnings : NULL);
	return 0;
}
