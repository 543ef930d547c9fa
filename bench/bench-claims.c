/* bench-claims: how fast the claims engine claims and releases, in process.
 *
 *   bench-claims [--n N] [--threads T] [--sysfs-root DIR [--profile NAME]]
 *                [--state-dir PARENT]
 *
 * Each cycle claims one vGPU (which the engine creates, as it would for an
 * incoming migration whose UUID is free here) and releases it (removing it
 * again), so every cycle pays for its durable SQLite commits (WAL,
 * synchronous=FULL) and the device writes.  Without --sysfs-root the device
 * layer is the in-memory double of the unit tests (engine + SQLite cost
 * only); with it, the real device layer against that root, e.g. a
 * vgpu-sysfs-emu mount.  Prints claims/s and p50/p99 of claim, release and
 * the whole cycle, first sequential, then with T threads.  With a sysfs
 * root it first prints the one full inventory read the engine makes and
 * p50/p99 of vgm_store_capacity (GET /v1/types) and of the kept-current
 * copy every other reader gets (vgm_store_inventory_copy).  --state-dir
 * puts the SQLite file under PARENT (default /tmp); on a tmpfs such as
 * /dev/shm the fsyncs cost nothing, which isolates the engine's own cost
 * from the disk's. */
#include <getopt.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-stats.h"
#include "../tests/unit/store/fake-device.h"
#include "store/store.h"
#include "util/validate.h"

typedef struct bench {
	vgm_store *s;
	vgm_host *h;
	const char *profile;
	int n;
	double *claim_ms, *release_ms, *cycle_ms;
	int next; /* shared cycle counter */
	int round;
	pthread_mutex_t lock;
	int errors;
	char first_error[512];
} bench;

static void note_error(bench *b, const vgm_error *err)
{
	pthread_mutex_lock(&b->lock);
	if (b->errors++ == 0)
		snprintf(b->first_error, sizeof(b->first_error), "%s", vgm_error_message(err));
	pthread_mutex_unlock(&b->lock);
}

static void cycle(bench *b, int i)
{
	char mig[32], src[VGM_UUID_LEN + 1];
	snprintf(mig, sizeof(mig), "bench-%d-%d", b->round, i);
	vgm_uuid_generate(src);
	vgm_claim_device_req d = {.source_id = src, .kind = VGM_BACKEND_MDEV,
				  .profile_name = b->profile};
	vgm_claim_request req = {.migration_id = mig, .domain_uuid = src, .domain_name = "bench",
				 .source_host = "bench-src", .devices = &d, .n_devices = 1,
				 .lease_seconds = 300};
	vgm_claim *c = NULL;
	vgm_error err = {0};
	double t0 = bench_now_ms();
	if (vgm_claims_claim(b->s, b->h, &req, &c, &err) < 0) {
		note_error(b, &err);
		b->claim_ms[i] = b->release_ms[i] = b->cycle_ms[i] = 0;
		return;
	}
	double t1 = bench_now_ms();
	if (vgm_claims_release(b->s, b->h, c->claim_id, &err) < 0)
		note_error(b, &err);
	double t2 = bench_now_ms();
	vgm_claim_free(c);
	b->claim_ms[i] = t1 - t0;
	b->release_ms[i] = t2 - t1;
	b->cycle_ms[i] = t2 - t0;
}

static void *worker(void *arg)
{
	bench *b = arg;
	for (;;) {
		pthread_mutex_lock(&b->lock);
		int i = b->next < b->n ? b->next++ : -1;
		pthread_mutex_unlock(&b->lock);
		if (i < 0)
			return NULL;
		cycle(b, i);
	}
}

static void run(bench *b, int threads, const char *label)
{
	b->next = 0;
	b->errors = 0;
	b->round++;
	pthread_t t[64];
	double t0 = bench_now_ms();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, b);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double wall = bench_now_ms() - t0;
	printf("%-12s threads=%-3d cycles=%d wall=%.1f ms  claims/s=%.0f  errors=%d\n", label,
	       threads, b->n, wall, b->n / (wall / 1e3), b->errors);
	printf("%-12s claim   p50=%.3f ms p99=%.3f ms\n", "", bench_pct(b->claim_ms, (size_t)b->n, 50),
	       bench_pct(b->claim_ms, (size_t)b->n, 99));
	printf("%-12s release p50=%.3f ms p99=%.3f ms\n", "", bench_pct(b->release_ms, (size_t)b->n, 50),
	       bench_pct(b->release_ms, (size_t)b->n, 99));
	printf("%-12s cycle   p50=%.3f ms p99=%.3f ms\n", "", bench_pct(b->cycle_ms, (size_t)b->n, 50),
	       bench_pct(b->cycle_ms, (size_t)b->n, 99));
	if (b->errors)
		printf("%-12s first error: %s\n", "", b->first_error);
}

/* The engine's one full read, then what readers pay afterwards. */
static void inventory_reads(bench *b)
{
	enum { RUNS = 200 };
	double cap[RUNS], copy[RUNS];
	vgm_error err = {0};
	double t0 = bench_now_ms();
	vgm_inventory *inv = NULL;
	if (vgm_store_inventory_copy(b->s, b->h, &inv, &err) < 0) {
		fprintf(stderr, "bench-claims: %s\n", vgm_error_message(&err));
		return;
	}
	printf("first (full) inventory read: %.1f ms, %zu parents\n", bench_now_ms() - t0,
	       inv->n_parents);
	vgm_inventory_free(inv);
	for (int i = 0; i < RUNS; i++) {
		vgm_profile_capacity *c = NULL;
		size_t n = 0;
		t0 = bench_now_ms();
		vgm_store_capacity(b->s, b->h, &c, &n, NULL);
		double t1 = bench_now_ms();
		vgm_profile_capacity_free(c, n);
		vgm_store_inventory_copy(b->s, b->h, &inv, NULL);
		copy[i] = bench_now_ms() - t1;
		cap[i] = t1 - t0;
		vgm_inventory_free(inv);
	}
	printf("free counts (GET /v1/types)  p50=%.3f ms p99=%.3f ms\n", bench_pct(cap, RUNS, 50),
	       bench_pct(cap, RUNS, 99));
	printf("inventory copy for a reader  p50=%.3f ms p99=%.3f ms\n", bench_pct(copy, RUNS, 50),
	       bench_pct(copy, RUNS, 99));
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

int main(int argc, char **argv)
{
	int n = 2000, threads = 8;
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *root = NULL, *profile = NULL, *state_parent = "/tmp";
	static const struct option opts[] = {{"n", required_argument, NULL, 'n'},
					     {"threads", required_argument, NULL, 't'},
					     {"sysfs-root", required_argument, NULL, 'r'},
					     {"profile", required_argument, NULL, 'p'},
					     {"state-dir", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (c == 'n')
			n = atoi(optarg);
		else if (c == 't')
			threads = atoi(optarg);
		else if (c == 'r')
			root = optarg;
		else if (c == 'p')
			profile = optarg;
		else if (c == 's')
			state_parent = optarg;
		else {
			fprintf(stderr, "usage: bench-claims [--n N] [--threads T] "
					"[--sysfs-root DIR [--profile NAME]] [--state-dir PARENT]\n");
			return 2;
		}
	}
	if (n < 1 || threads < 1 || threads > 64)
		return 2;
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/bench-claims-XXXXXX", state_parent);
	if (!mkdtemp(dir))
		return 1;
	fake_dev *f = fake_new();
	vgm_store_devops ops = fake_devops(f);
	vgm_store_opts o = {.host_name = "bench", .remove_released = true};
	bench b = {.n = n, .profile = profile ? profile : "NVIDIA A100-4C"};
	pthread_mutex_init(&b.lock, NULL);
	vgm_error err = {0};
	if (root) {
		if (vgm_host_new(root, &b.h, &err) < 0)
			goto fail;
	} else {
		fake_catalog_a100(f, 4);
		o.devops = &ops;
	}
	if (vgm_store_open(dir, &o, &b.s, &err) < 0)
		goto fail;
	b.claim_ms = calloc((size_t)n, sizeof(double));
	b.release_ms = calloc((size_t)n, sizeof(double));
	b.cycle_ms = calloc((size_t)n, sizeof(double));
	printf("bench-claims: %d claim+release cycles, device layer: %s, state in %s\n", n,
	       root ? root : "in-memory double", state_parent);
	if (root)
		inventory_reads(&b);
	run(&b, 1, "sequential");
	run(&b, threads, "parallel");
	vgm_store_close(b.s);
	vgm_host_free(b.h);
	free(b.claim_ms);
	free(b.release_ms);
	free(b.cycle_ms);
	fake_free(f);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
fail:
	fprintf(stderr, "bench-claims: %s\n", vgm_error_message(&err));
	fake_free(f);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 1;
}
