/* vgpumig-ctl-pipe: the switchover controller behind a pipe.
 *
 *   vgpumig-ctl-pipe < lines.jsonl
 *
 * Runs lib/model's controller, the code vgpumigd runs for `vgpumig migrate`
 * and for the migrations it steers, on JSON lines: the first line is the
 * migration's config, every later line one sample of libvirt's job stats;
 * one answer line per input line, flushed at once, so an outside simulator
 * or a trace recorded on a real host can drive it (lib/api/wire-ctl.h has
 * the protocol, docs/performance.md the examples).  A bad line gets an
 * {"error": ...} answer and changes nothing; the pipe ends at end of input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire-ctl.h"
#include "api/wire.h"

#define START_MAX_ACTIONS 8

typedef struct pipe_state {
	vgm_ctl_state ctl;
	bool configured;
} pipe_state;

static json_t *on_config(pipe_state *p, const char *line, size_t len, vgm_error *err)
{
	vgm_ctl_config cfg;
	if (vgm_wire_ctl_config_decode(line, len, &cfg, err) < 0)
		return vgm_wire_ctl_error_encode(err);
	vgm_ctl_init(&p->ctl, &cfg);
	p->configured = true;
	vgm_action acts[START_MAX_ACTIONS];
	size_t n = 0;
	for (vgm_action a = vgm_ctl_start(&p->ctl); a.kind != VGM_ACT_NONE && n < START_MAX_ACTIONS;
	     a = vgm_ctl_start(&p->ctl)) {
		if (a.kind == VGM_ACT_ABORT)
			return vgm_wire_ctl_refuse_encode(&a);
		acts[n++] = a;
	}
	return vgm_wire_ctl_actions_encode("start", acts, n);
}

static json_t *on_sample(pipe_state *p, const char *line, size_t len, vgm_error *err)
{
	vgm_job_sample x;
	if (strstr(line, "\"config\"") && vgm_wire_ctl_sample_decode(line, len, &x, NULL) < 0) {
		vgm_error_setr(err, EINVAL, "invalid_request",
			       "the config was already given; start a new pipe for another migration");
		return vgm_wire_ctl_error_encode(err);
	}
	if (vgm_wire_ctl_sample_decode(line, len, &x, err) < 0)
		return vgm_wire_ctl_error_encode(err);
	vgm_action a = vgm_ctl_step(&p->ctl, &x);
	return vgm_wire_ctl_actions_encode("actions", &a, 1);
}

static json_t *answer(pipe_state *p, const char *line, size_t len)
{
	vgm_error err = { 0 };
	if (len > VGM_WIRE_MAX_BODY) {
		vgm_error_setr(&err, EFBIG, "invalid_request", "line longer than %u bytes",
			       VGM_WIRE_MAX_BODY);
		return vgm_wire_ctl_error_encode(&err);
	}
	return p->configured ? on_sample(p, line, len, &err) : on_config(p, line, len, &err);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: %s < LINES.jsonl  (protocol: docs/performance.md)\n", argv[0]);
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	pipe_state p = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		json_t *a = answer(&p, line, (size_t)n);
		char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
		json_decref(a);
		if (!text) {
			fprintf(stderr, "vgpumig-ctl-pipe: out of memory\n");
			free(line);
			return 1;
		}
		printf("%s\n", text);
		fflush(stdout);
		free(text);
	}
	free(line);
	return 0;
}
