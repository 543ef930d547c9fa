/* bench-plan.c: plan accuracy, predicted against measured, over lab runs.
 *
 *   bench-plan RESULTS.jsonl
 *
 * Each line (written by bench/plan-accuracy.sh) is
 *   {"dirty_bps": D, "working_set_bytes": W, "bandwidth_bps": B, "done": SNAPSHOT}
 * where D and W are what the lab guest really does (its dirtier's rate and
 * buffer) and SNAPSHOT is the last `vgpumig migrate --json` event.  For each
 * run it prints the measured total (libvirt call -> return) and downtime
 * (destination's completed job stats) against
 *   plan   the agent's own plan (its dirty-rate measurement; under TCG
 *          QEMU's dirty-bitmap mode reports 0, see docs/model.md)
 *   model  lib/model fed the guest's true dirty rate and working set
 * with the error in percent, then the mean absolute errors and the fixed
 * costs the runs imply (for calibrating vgm_model_default_costs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/model.h"

static double num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static double err_pct(double pred, double meas)
{
	return meas > 0 && pred >= 0 ? 100.0 * (pred - meas) / meas : NAN;
}

typedef struct acc {
	double sum_abs[4];
	int n[4];
	double setup_sum, switch_sum;
	int n_cal;
} acc;

static void add(acc *a, int i, double e)
{
	if (isfinite(e)) {
		a->sum_abs[i] += fabs(e);
		a->n[i]++;
	}
}

static void one(json_t *line, acc *a)
{
	json_t *done = json_object_get(line, "done"), *plan = json_object_get(done, "plan"),
	       *res = json_object_get(done, "result");
	if (!json_is_object(plan) || !json_is_object(res) || !json_is_true(json_object_get(res, "ok"))) {
		printf("%-8s run did not complete: %s\n", "skip",
		       json_string_value(json_object_get(json_object_get(done, "error"), "message")));
		return;
	}
	vgm_model_input in = {
		.ram_bytes = (uint64_t)num(plan, "ram_bytes"),
		.bandwidth_bps = (uint64_t)num(line, "bandwidth_bps"),
		.link_bps = (uint64_t)num(plan, "link_bps"),
		.dirty_bps = (uint64_t)num(line, "dirty_bps"),
		.working_set_bytes = (uint64_t)num(line, "working_set_bytes"),
		.downtime_limit_ms = (uint64_t)num(plan, "downtime_limit_ms"),
		.costs = vgm_model_default_costs(),
	};
	if (!in.bandwidth_bps)
		in.bandwidth_bps = in.link_bps;
	vgm_plan m;
	if (vgm_model_plan(&in, &m, NULL) < 0)
		return;
	double wall = num(res, "wall_ms") / 1000.0, dt = num(res, "downtime_ms") / 1000.0;
	double pt = num(plan, "total_s"), pd = num(plan, "downtime_s");
	double e[4] = { err_pct(pt, wall), err_pct(pd, dt), err_pct(m.total_s, wall),
			err_pct(m.downtime_s, dt) };
	for (int i = 0; i < 4; i++)
		add(a, i, e[i]);
	printf("%6.1f %6.1f %6.1f | %7.2f %6.0f | %7.2f %+6.0f%% %6.0f %+6.0f%% | %7.2f %+6.0f%% %6.0f %+6.0f%% | %3.0f\n",
	       num(line, "dirty_bps") / VGM_MIB, num(line, "working_set_bytes") / VGM_MIB,
	       num(line, "bandwidth_bps") / VGM_MIB, wall, dt * 1000, pt, e[0], pd * 1000, e[1],
	       m.total_s, e[2], m.downtime_s * 1000, e[3], num(res, "iterations"));
	/* What the fixed costs would have to be for the model to hit the run. */
	if (m.converges) {
		a->setup_sum += wall - dt - m.precopy_s;
		a->switch_sum += dt - (m.downtime_s - in.costs.switchover_s);
		a->n_cal++;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bench-plan RESULTS.jsonl (see bench/plan-accuracy.sh)\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "re");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	printf("%6s %6s %6s | %7s %6s | %7s %7s %6s %7s | %7s %7s %6s %7s | %3s\n", "dirty", "wset",
	       "bw", "total", "down", "plan", "err", "p.down", "err", "model", "err", "m.down", "err",
	       "it");
	printf("%6s %6s %6s | %7s %6s | %7s %7s %6s %7s | %7s %7s %6s %7s |\n", "MiB/s", "MiB",
	       "MiB/s", "s", "ms", "s", "", "ms", "", "s", "", "ms", "");
	acc a = { 0 };
	char buf[1 << 16];
	while (fgets(buf, sizeof(buf), f)) {
		json_t *line = json_loads(buf, 0, NULL);
		if (line)
			one(line, &a);
		json_decref(line);
	}
	fclose(f);
	const char *names[4] = { "plan total", "plan downtime", "model total", "model downtime" };
	for (int i = 0; i < 4; i++)
		if (a.n[i])
			printf("mean |error| %-15s %5.1f%% over %d runs\n", names[i], a.sum_abs[i] / a.n[i],
			       a.n[i]);
	if (a.n_cal)
		printf("implied fixed costs: setup+finish %.2f s, switchover %.0f ms (defaults: %.2f s, %.0f ms)\n",
		       a.setup_sum / a.n_cal, 1000 * a.switch_sum / a.n_cal,
		       vgm_model_default_costs().setup_s, 1000 * vgm_model_default_costs().switchover_s);
	return 0;
}
