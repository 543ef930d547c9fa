/* fuzz-ctl-pipe.c: libFuzzer target for vgpumig-ctl-pipe's line decoders
 * (lib/api/wire-ctl) and the controller behind them.
 *
 * The input is tried as a config line and as a sample line.  Invariants
 * checked: decoders return 0 or -EINVAL/-EFBIG/-ENOMEM; a decoded config
 * starts a controller whose start actions end (NONE) within a few calls; a
 * decoded sample stepped through it yields an action the encoder accepts;
 * after an ABORT the controller answers NONE. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/wire-ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ok_or_abort(int r)
{
	if (r != 0 && r != -EINVAL && r != -EFBIG && r != -ENOMEM)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char base[] = "{\"config\": {\"ram_bytes\": 1073741824, \"max_downtime_ms\": 1000}}";
	vgm_ctl_config cfg;
	vgm_job_sample x;
	int rc = vgm_wire_ctl_config_decode((const char *)data, size, &cfg, NULL);
	ok_or_abort(rc);
	if (rc != 0 && vgm_wire_ctl_config_decode(base, sizeof(base) - 1, &cfg, NULL) != 0)
		abort();
	vgm_ctl_state s;
	vgm_ctl_init(&s, &cfg);
	int n = 0;
	for (vgm_action a = vgm_ctl_start(&s); a.kind != VGM_ACT_NONE; a = vgm_ctl_start(&s))
		if (++n > 4)
			abort();
	int rs = vgm_wire_ctl_sample_decode((const char *)data, size, &x, NULL);
	ok_or_abort(rs);
	if (rs != 0)
		return 0;
	for (int i = 0; i < 3; i++) {
		vgm_action a = vgm_ctl_step(&s, &x);
		json_t *j = vgm_wire_ctl_actions_encode("actions", &a, 1);
		if (!j)
			abort();
		json_decref(j);
		if (a.kind == VGM_ACT_ABORT && vgm_ctl_step(&s, &x).kind != VGM_ACT_NONE)
			abort();
		x.time_elapsed_ms += 250;
		x.memory_iteration++;
	}
	return 0;
}
