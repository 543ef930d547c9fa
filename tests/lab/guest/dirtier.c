/* dirtier: the lab guest's workload.  Runs as the last step of the guest's
 * /init, statically linked, with no library but libc.
 *
 * It keeps a buffer of SIZE MiB and rewrites the first 16 bytes of every page,
 * page after page, at RATE MiB/s (pages touched per second x 4 KiB), so the
 * hypervisor sees a steady dirty rate during a live migration.  Each stamp
 * holds the page index and the pass number; before a page is overwritten, the
 * stamp of the previous pass is checked.  A write lost by the migration (a
 * page sent before its last change and never re-sent) shows up as a stamp
 * from an older pass, a page copied to the wrong place as a wrong index.
 *
 * Output on the serial console (stdout), one line each, flushed at once:
 *   DIRTIER size_mib=N rate_mib=N pages=N
 *   beat N t=SECONDS pass=N bad=N maxgap_ms=N   once a second
 *   MISMATCH page=N pass=N found_pass=N found_page=N   first 20 lost writes
 * maxgap_ms is the longest pause the guest itself saw between two work ticks
 * in the last second (a migration's switchover shows up there, as far as the
 * guest clock notices it).
 *
 * Invariant: after pass P has touched page i, the stamp of page i is
 * {i, P}; before it has, the stamp is {i, P - 1} (pass 0 expects the
 * initial stamp written by stamp_all()). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define TICKS_PER_SEC 20
#define MAX_REPORTED 20

struct stamp {
	uint64_t page;
	uint64_t pass;
};

struct dirtier {
	unsigned char *buf;
	uint64_t npages;
	uint64_t next;  /* next page to touch */
	uint64_t pass;  /* pass number of the current sweep, starts at 1 */
	uint64_t bad;
	uint64_t pages_per_tick;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long arg_or(int argc, char **argv, int i, long dflt)
{
	char *end;
	long v;

	if (argc <= i)
		return dflt;
	errno = 0;
	v = strtol(argv[i], &end, 10);
	if (errno || *end || v < 0)
		return dflt;
	return v;
}

static void stamp_all(struct dirtier *d)
{
	for (uint64_t i = 0; i < d->npages; i++) {
		struct stamp s = { .page = i, .pass = 0 };
		memcpy(d->buf + i * PAGE, &s, sizeof(s));
	}
}

static void check_and_touch(struct dirtier *d)
{
	unsigned char *p = d->buf + d->next * PAGE;
	struct stamp s;

	memcpy(&s, p, sizeof(s));
	if (s.page != d->next || s.pass != d->pass - 1) {
		if (++d->bad <= MAX_REPORTED)
			printf("MISMATCH page=%" PRIu64 " pass=%" PRIu64 " found_pass=%" PRIu64
			       " found_page=%" PRIu64 "\n", d->next, d->pass, s.pass, s.page);
	}
	s.page = d->next;
	s.pass = d->pass;
	memcpy(p, &s, sizeof(s));
	if (++d->next == d->npages) {
		d->next = 0;
		d->pass++;
	}
}

static void run(struct dirtier *d)
{
	const double tick = 1.0 / TICKS_PER_SEC;
	double start = now(), last_beat = start, last_tick = start, maxgap = 0;
	uint64_t beat = 0;

	for (;;) {
		double t0 = now(), left;

		if (t0 - last_tick > maxgap)
			maxgap = t0 - last_tick;
		last_tick = t0;
		for (uint64_t i = 0; i < d->pages_per_tick; i++)
			check_and_touch(d);
		if (t0 - last_beat >= 1.0) {
			printf("beat %" PRIu64 " t=%.1f pass=%" PRIu64 " bad=%" PRIu64 " maxgap_ms=%.0f\n",
			       ++beat, t0 - start, d->pass, d->bad, maxgap * 1000);
			fflush(stdout);
			last_beat = t0;
			maxgap = 0;
		}
		left = tick - (now() - t0);
		if (left > 0)
			usleep((useconds_t)(left * 1e6));
	}
}

int main(int argc, char **argv)
{
	long size_mib = arg_or(argc, argv, 1, 32);
	long rate_mib = arg_or(argc, argv, 2, 8);
	struct dirtier d = { .pass = 1 };

	if (size_mib < 1)
		size_mib = 1;
	d.npages = (uint64_t)size_mib * (1024 * 1024 / PAGE);
	d.pages_per_tick = (uint64_t)rate_mib * (1024 * 1024 / PAGE) / TICKS_PER_SEC;
	d.buf = mmap(NULL, d.npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d.buf == MAP_FAILED) {
		printf("DIRTIER-FAILED mmap %ld MiB: %s\n", size_mib, strerror(errno));
		return 1;
	}
	stamp_all(&d);
	printf("DIRTIER size_mib=%ld rate_mib=%ld pages=%" PRIu64 "\n", size_mib, rate_mib, d.npages);
	fflush(stdout);
	run(&d);
	return 0;
}
