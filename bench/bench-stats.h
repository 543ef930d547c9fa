/* bench-stats.h: the clock and percentiles every bench program reports with.
 * Percentiles are nearest-rank over the samples sorted in place. */
#pragma once

#include <stdlib.h>
#include <time.h>

static inline double bench_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline void bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
}

/* The p-th percentile (p in percent: 50, 99) of v; sorts v. */
static inline double bench_pct(double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	bench_sort(v, n);
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}
