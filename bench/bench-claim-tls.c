/* bench-claim-tls: claims over the peer API with mutual TLS, as a source
 * agent makes them (lib/api/client).
 *
 *   bench-claim-tls --peer HOST:PORT --cert C --key K --ca CA
 *                   [--runs N] [--concurrent M] [--profile NAME --type ID --fb-mib N]
 *
 * 0. N sequential GET /v1/host and GET /v1/types (a source's questions
 *    before it claims); p50/p99 each.
 * 1. N sequential round trips on one client (connection kept alive): claim
 *    one vGPU, then release it; min/p50/p99 for claim, release and both.
 * 2. M claims sent at once, one thread each, then all released: successes,
 *    errors (anything but 201), targets handed out twice, wall time, and
 *    p50/p99 of each claim's time to answer.
 * The target needs room for M vGPUs of the profile (default NVIDIA L40S-1B:
 * 32 per GPU, so 8 emulated L40S GPUs hold 256).  Numbers only. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-stats.h"
#include "api/client.h"
#include "util/validate.h"

typedef struct bench_opts {
	const char *peer, *cert, *key, *ca, *profile, *type;
	long fb_mib;
	int runs, concurrent;
} bench_opts;

typedef struct worker {
	const bench_opts *o;
	vgm_client *c;
	pthread_barrier_t *start;
	int index;
	long status;
	char claim_id[128];
	char target[128];
	char error[512];
	double ms; /* from the common start to this claim's answer */
} worker;

static json_t *claim_request(const bench_opts *o, const char *tag, int i)
{
	char mig[64], src[VGM_UUID_LEN + 1], dom[VGM_UUID_LEN + 1];
	snprintf(mig, sizeof(mig), "bench-%s-%d-%ld", tag, i, (long)time(NULL));
	if (vgm_uuid_generate(src) < 0 || vgm_uuid_generate(dom) < 0)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:I, s:s}]}", "migration_id", mig,
			 "domain_uuid", dom, "domain_name", "bench-vm", "source_host", "bench-source",
			 "devices", "source_id", src, "kind", "mdev", "profile_name", o->profile,
			 "framebuffer_bytes", (json_int_t)o->fb_mib * 1024 * 1024, "type_id", o->type);
}

/* Claim one vGPU: 0 and the claim id (and first target) on 201. */
static int claim_one(const bench_opts *o, vgm_client *c, const char *tag, int i, long *status,
		     char *id, size_t idsz, char *target, size_t tsz, vgm_error *err)
{
	json_t *req = claim_request(o, tag, i), *reply = NULL;
	if (!req)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = vgm_client_json(c, "POST", "/v1/claims", req, status, &reply, err);
	json_decref(req);
	if (r < 0)
		return r;
	snprintf(id, idsz, "%s", json_string_value(json_object_get(reply, "claim_id")) ?: "");
	json_t *m = json_array_get(json_object_get(reply, "mapping"), 0);
	snprintf(target, tsz, "%s", json_string_value(json_object_get(m, "target_id")) ?: "");
	json_decref(reply);
	return 0;
}

static int release_one(vgm_client *c, const char *id, vgm_error *err)
{
	char path[256];
	snprintf(path, sizeof(path), "/v1/claims/%s", id);
	return vgm_client_json(c, "DELETE", path, NULL, NULL, NULL, err);
}

/* What a source asks a target before it claims (`vgpumig check`, the
 * migration's checking step): GET /v1/host and GET /v1/types, the latter
 * the free-vGPU count over the target's whole inventory. */
static void peer_gets(const bench_opts *o, vgm_client *c)
{
	static const char *const paths[] = { "/v1/host", "/v1/types" };
	for (size_t k = 0; k < ARRAY_SIZE(paths); k++) {
		double *t = calloc((size_t)o->runs, sizeof(double));
		int errors = 0;
		for (int i = 0; t && i < o->runs; i++) {
			vgm_error err = { 0 };
			json_t *reply = NULL;
			double t0 = bench_now_ms();
			if (vgm_client_json(c, "GET", paths[k], NULL, NULL, &reply, &err) < 0)
				errors++;
			t[i] = bench_now_ms() - t0;
			json_decref(reply);
		}
		if (t)
			printf("GET %-10s over mTLS: %d runs, errors %d, p50 %.2f  p99 %.2f ms\n",
			       paths[k], o->runs, errors, bench_pct(t, (size_t)o->runs, 50),
			       bench_pct(t, (size_t)o->runs, 99));
		free(t);
	}
}

static int round_trips(const bench_opts *o, vgm_client *c)
{
	double *tc = calloc((size_t)o->runs, sizeof(double));
	double *tr = calloc((size_t)o->runs, sizeof(double));
	double *tt = calloc((size_t)o->runs, sizeof(double));
	int errors = 0;
	for (int i = 0; i < o->runs; i++) {
		vgm_error err = { 0 };
		char id[128], target[128];
		long status = 0;
		double t0 = bench_now_ms();
		int r = claim_one(o, c, "rt", i, &status, id, sizeof(id), target, sizeof(target), &err);
		double t1 = bench_now_ms();
		if (r == 0)
			r = release_one(c, id, &err);
		double t2 = bench_now_ms();
		if (r < 0 && errors++ == 0)
			fprintf(stderr, "bench-claim-tls: %s\n", vgm_error_message(&err));
		tc[i] = t1 - t0;
		tr[i] = t2 - t1;
		tt[i] = t2 - t0;
	}
	bench_sort(tc, (size_t)o->runs);
	bench_sort(tr, (size_t)o->runs);
	bench_sort(tt, (size_t)o->runs);
	printf("claim round trips over mTLS to %s: %d runs, errors %d\n", o->peer, o->runs, errors);
	printf("  claim          min %.2f  p50 %.2f  p99 %.2f ms\n", tc[0], bench_pct(tc, (size_t)o->runs, 50),
	       bench_pct(tc, (size_t)o->runs, 99));
	printf("  release        min %.2f  p50 %.2f  p99 %.2f ms\n", tr[0], bench_pct(tr, (size_t)o->runs, 50),
	       bench_pct(tr, (size_t)o->runs, 99));
	printf("  claim+release  min %.2f  p50 %.2f  p99 %.2f ms\n", tt[0], bench_pct(tt, (size_t)o->runs, 50),
	       bench_pct(tt, (size_t)o->runs, 99));
	free(tc);
	free(tr);
	free(tt);
	return errors;
}

static void *concurrent_claim(void *arg)
{
	worker *w = arg;
	vgm_error err = { 0 };
	pthread_barrier_wait(w->start);
	double t0 = bench_now_ms();
	if (claim_one(w->o, w->c, "cc", w->index, &w->status, w->claim_id, sizeof(w->claim_id),
		      w->target, sizeof(w->target), &err) < 0)
		snprintf(w->error, sizeof(w->error), "%s", vgm_error_message(&err));
	w->ms = bench_now_ms() - t0;
	return NULL;
}

static int count_twice(worker *w, int n)
{
	int twice = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n && w[i].target[0]; j++)
			if (STREQ(w[i].target, w[j].target))
				twice++;
	return twice;
}

static int concurrent(const bench_opts *o, vgm_client *c)
{
	int n = o->concurrent;
	worker *w = calloc((size_t)n, sizeof(worker));
	pthread_t *t = calloc((size_t)n, sizeof(pthread_t));
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		w[i] = (worker){ .o = o, .c = c, .start = &start, .index = i };
		pthread_create(&t[i], NULL, concurrent_claim, &w[i]);
	}
	double t0 = bench_now_ms();
	pthread_barrier_wait(&start);
	int ok = 0, errors = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (w[i].status == 201)
			ok++;
		else if (errors++ < 3)
			fprintf(stderr, "bench-claim-tls: claim %d: HTTP %ld %s\n", i, w[i].status, w[i].error);
	}
	double wall = bench_now_ms() - t0;
	printf("%d concurrent claims: %d succeeded, errors %d, targets handed out twice %d, "
	       "wall %.1f ms\n", n, ok, errors, count_twice(w, n), wall);
	double *lat = calloc((size_t)n, sizeof(double));
	for (int i = 0; lat && i < n; i++)
		lat[i] = w[i].ms;
	if (lat) {
		double p50 = bench_pct(lat, (size_t)n, 50), p99 = bench_pct(lat, (size_t)n, 99);
		printf("  time to answer  p50 %.1f  p99 %.1f  max %.1f ms\n", p50, p99, lat[n - 1]);
	}
	free(lat);
	int rel_errors = 0;
	for (int i = 0; i < n; i++)
		if (w[i].claim_id[0] && release_one(c, w[i].claim_id, NULL) < 0)
			rel_errors++;
	printf("  released them, errors %d\n", rel_errors);
	pthread_barrier_destroy(&start);
	free(w);
	free(t);
	return errors;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
	*o = (bench_opts){ .runs = 300, .concurrent = 256, .profile = "NVIDIA L40S-1B",
			   .type = "nvidia-1155", .fb_mib = 1024 };
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (STREQ(k, "--peer")) o->peer = v;
		else if (STREQ(k, "--cert")) o->cert = v;
		else if (STREQ(k, "--key")) o->key = v;
		else if (STREQ(k, "--ca")) o->ca = v;
		else if (STREQ(k, "--profile")) o->profile = v;
		else if (STREQ(k, "--type")) o->type = v;
		else if (STREQ(k, "--fb-mib")) o->fb_mib = atol(v);
		else if (STREQ(k, "--runs")) o->runs = atoi(v);
		else if (STREQ(k, "--concurrent")) o->concurrent = atoi(v);
		else return -1;
	}
	return o->peer && o->cert && o->key && o->ca && o->runs > 0 && o->concurrent >= 0 &&
			       argc % 2 == 1
		       ? 0
		       : -1;
}

int main(int argc, char **argv)
{
	bench_opts o;
	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: bench-claim-tls --peer HOST:PORT --cert C --key K --ca CA "
				"[--runs N] [--concurrent M] [--profile NAME --type ID --fb-mib N]\n");
		return 2;
	}
	vgm_error err = { 0 };
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	if (vgm_client_new_tls(o.peer, o.cert, o.key, o.ca, &c, &err) < 0) {
		fprintf(stderr, "bench-claim-tls: %s\n", vgm_error_message(&err));
		return 1;
	}
	vgm_client_set_timeouts(c, 10000, 120000);
	peer_gets(&o, c);
	round_trips(&o, c);
	if (o.concurrent > 0)
		concurrent(&o, c);
	return 0;
}
