/* bench-start.c: command start -> virDomainMigrateToURI3 call, p50/p99.
 *
 *   bench-start SOCKET_A HOST_A SOCKET_B HOST_B DOMAIN [RUNS]
 *
 * Migrates DOMAIN back and forth between two agents (the lab's hostA and
 * hostB, whose unix sockets are reachable from the root namespace) RUNS times
 * (default 20).  For each run it takes the time right before POST
 * /v1/migrations (what `vgpumig migrate` does first) and the agent's record
 * of when it called virDomainMigrateToURI3 (created_at + start_to_call_ms in
 * the snapshot; one clock, one machine), then waits for the migration to end.
 * No --max-downtime is given, so no dirty-rate measurement (1 s) is made.
 * Prints every run, then p50/p99 of the client-side and agent-side figures
 * and the mean time at which each phase began. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-stats.h"
#include "api/client.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One migration from the agent at c to host `to`; fills client/agent ms. */
static int one_run(vgm_client *c, const char *domain, const char *to, double *client_ms,
		   double *agent_ms, json_t **phases)
{
	vgm_error err = { 0 };
	json_t *body = json_pack("{s:s, s:s}", "domain", domain, "to", to), *reply = NULL;
	double t0 = now_s();
	int r = vgm_client_json(c, "POST", "/v1/migrations", body, NULL, &reply, &err);
	json_decref(body);
	if (r < 0) {
		fprintf(stderr, "bench-start: %s\n", vgm_error_message(&err));
		return -1;
	}
	char path[160];
	snprintf(path, sizeof(path), "/v1/migrations/%s",
		 json_string_value(json_object_get(reply, "migration_id")));
	json_decref(reply);
	for (;;) {
		json_t *s = NULL;
		if (vgm_client_json(c, "GET", path, NULL, NULL, &s, &err) < 0) {
			fprintf(stderr, "bench-start: %s\n", vgm_error_message(&err));
			return -1;
		}
		const char *state = json_string_value(json_object_get(s, "state"));
		if (state && strcmp(state, "running") != 0) {
			json_t *stc = json_object_get(s, "start_to_call_ms");
			double created = json_number_value(json_object_get(s, "created_at"));
			bool ok = strcmp(state, "succeeded") == 0 && json_is_number(stc);
			if (ok) {
				*agent_ms = json_number_value(stc);
				*client_ms = (created + *agent_ms / 1000.0 - t0) * 1000.0;
				*phases = json_incref(json_object_get(s, "phase_started_ms"));
			} else {
				json_t *e = json_object_get(s, "error");
				fprintf(stderr, "bench-start: migration %s: %s\n", state,
					json_string_value(json_object_get(e, "message")));
			}
			json_decref(s);
			return ok ? 0 : -1;
		}
		json_decref(s);
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: bench-start SOCKET_A HOST_A SOCKET_B HOST_B DOMAIN [RUNS]\n");
		return 2;
	}
	int runs = argc > 6 ? atoi(argv[6]) : 20;
	if (runs < 1 || runs > 1000)
		runs = 20;
	vgm_client *c[2] = { NULL, NULL };
	vgm_error err = { 0 };
	for (int i = 0; i < 2; i++)
		if (vgm_client_new_unix(argv[1 + 2 * i], &c[i], &err) < 0) {
			fprintf(stderr, "bench-start: %s\n", vgm_error_message(&err));
			return 1;
		}
	double *cl = calloc((size_t)runs, sizeof(double)), *ag = calloc((size_t)runs, sizeof(double));
	json_t *sum = json_object();
	int n = 0;
	for (int i = 0; i < runs && cl && ag; i++) {
		int from = i % 2;
		json_t *ph = NULL;
		if (one_run(c[from], argv[5], argv[4 - 2 * from], &cl[n], &ag[n], &ph) < 0)
			break;
		printf("run %2d %s -> %s: client %.1f ms, agent %.1f ms\n", i + 1, argv[2 + 2 * from],
		       argv[4 - 2 * from], cl[n], ag[n]);
		const char *k;
		json_t *v;
		json_object_foreach(ph, k, v) {
			double prev = json_number_value(json_object_get(sum, k));
			json_object_set_new(sum, k, json_real(prev + json_number_value(v)));
		}
		json_decref(ph);
		n++;
	}
	if (n > 0) {
		printf("start -> virDomainMigrateToURI3, %d runs: client p50 %.1f ms p99 %.1f ms; "
		       "agent p50 %.1f ms p99 %.1f ms\n",
		       n, bench_pct(cl, (size_t)n, 50), bench_pct(cl, (size_t)n, 99), bench_pct(ag, (size_t)n, 50), bench_pct(ag, (size_t)n, 99));
		printf("mean phase start (ms after the request):");
		const char *k;
		json_t *v;
		json_object_foreach(sum, k, v)
			printf(" %s %.1f", k, json_number_value(v) / n);
		printf("\n");
	}
	json_decref(sum);
	free(cl);
	free(ag);
	vgm_client_free(c[0]);
	vgm_client_free(c[1]);
	return n == runs ? 0 : 1;
}
