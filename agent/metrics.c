/* metrics.c: request counters, latency histograms and migration outcomes.
 *
 * Small linear tables under one mutex: the label space is bounded by the
 * route table times a handful of status codes, so a search is cheaper than
 * a hash and easy to read. */
#include "metrics.h"

#include <pthread.h>
#include <string.h>

static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				  0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BUCKETS ARRAY_SIZE(buckets)
#define MAX_SERIES 256

typedef struct req_series {
	const char *method; /* static strings: from the route table or literals */
	const char *route;
	int status;
	unsigned long long count;
} req_series;

typedef struct lat_series {
	const char *method;
	const char *route;
	unsigned long long bucket[N_BUCKETS];
	unsigned long long count;
	double sum;
} lat_series;

typedef struct mig_series {
	char outcome[32];
	unsigned long long count;
} mig_series;

struct agent_metrics {
	pthread_mutex_t lock;
	req_series req[MAX_SERIES];
	size_t n_req;
	lat_series lat[MAX_SERIES];
	size_t n_lat;
	mig_series mig[16];
	size_t n_mig;
};

int agent_metrics_new(agent_metrics **out)
{
	agent_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

void agent_metrics_free(agent_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const char *known_method(const char *method)
{
	static const char *const methods[] = { "GET", "POST", "DELETE", "PUT", "HEAD", "PATCH" };

	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (STREQ(method, methods[i]))
			return methods[i];
	return "other";
}

void agent_metrics_request(agent_metrics *m, const char *method, const char *route, int status,
			   double seconds)
{
	size_t i;

	method = known_method(method);
	route = route ? route : "unmatched";
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n_req; i++)
		if (m->req[i].status == status && STREQ(m->req[i].route, route) &&
		    m->req[i].method == method)
			break;
	if (i == m->n_req && i < MAX_SERIES)
		m->req[m->n_req++] = (req_series){ method, route, status, 0 };
	if (i < MAX_SERIES)
		m->req[i].count++;
	for (i = 0; i < m->n_lat; i++)
		if (STREQ(m->lat[i].route, route) && m->lat[i].method == method)
			break;
	if (i == m->n_lat && i < MAX_SERIES)
		m->lat[m->n_lat++] = (lat_series){ .method = method, .route = route };
	if (i < MAX_SERIES) {
		for (size_t b = 0; b < N_BUCKETS; b++)
			if (seconds <= buckets[b])
				m->lat[i].bucket[b]++;
		m->lat[i].count++;
		m->lat[i].sum += seconds;
	}
	pthread_mutex_unlock(&m->lock);
}

void agent_metrics_migration(agent_metrics *m, const char *outcome)
{
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n_mig; i++)
		if (STREQ(m->mig[i].outcome, outcome))
			break;
	if (i == m->n_mig && i < ARRAY_SIZE(m->mig)) {
		snprintf(m->mig[i].outcome, sizeof(m->mig[i].outcome), "%s", outcome);
		m->n_mig++;
	}
	if (i < ARRAY_SIZE(m->mig))
		m->mig[i].count++;
	pthread_mutex_unlock(&m->lock);
}

void agent_metrics_format(agent_metrics *m, FILE *out)
{
	pthread_mutex_lock(&m->lock);
	fputs("# HELP vgpumig_http_requests_total HTTP requests answered, by route and status.\n"
	      "# TYPE vgpumig_http_requests_total counter\n", out);
	for (size_t i = 0; i < m->n_req; i++)
		fprintf(out, "vgpumig_http_requests_total{method=\"%s\",route=\"%s\",code=\"%d\"} %llu\n",
			m->req[i].method, m->req[i].route, m->req[i].status, m->req[i].count);
	fputs("# HELP vgpumig_http_request_duration_seconds Time from request start to reply.\n"
	      "# TYPE vgpumig_http_request_duration_seconds histogram\n", out);
	for (size_t i = 0; i < m->n_lat; i++) {
		const lat_series *l = &m->lat[i];

		for (size_t b = 0; b < N_BUCKETS; b++)
			fprintf(out,
				"vgpumig_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
				l->method, l->route, buckets[b], l->bucket[b]);
		fprintf(out, "vgpumig_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
			l->method, l->route, l->count);
		fprintf(out, "vgpumig_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
			l->method, l->route, l->sum);
		fprintf(out, "vgpumig_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
			l->method, l->route, l->count);
	}
	fputs("# HELP vgpumig_migrations_total Migrations by outcome.\n"
	      "# TYPE vgpumig_migrations_total counter\n", out);
	for (size_t i = 0; i < m->n_mig; i++)
		fprintf(out, "vgpumig_migrations_total{outcome=\"%s\"} %llu\n", m->mig[i].outcome,
			m->mig[i].count);
	pthread_mutex_unlock(&m->lock);
}
