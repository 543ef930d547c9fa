/* fuzz-api-hook-event.c: libFuzzer target for the hook event decoder and the
 * error-body decoder (lib/api/wire).
 *
 * Invariants checked: success or -EINVAL/-EFBIG/-ENOMEM; on success op and
 * sub_op are safe names and domain_uuid, when present, a valid UUID; the
 * error decoder always leaves a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/wire.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vgm_wire_hook_event *e = NULL;
	vgm_error err = { 0 };
	int ret = vgm_wire_hook_event_decode((const char *)data, size, &e, &err);

	if (ret == 0) {
		if (!vgm_name_valid(e->op) || (e->sub_op && !vgm_name_valid(e->sub_op)) ||
		    (e->domain_uuid && !vgm_uuid_valid(e->domain_uuid)) || !e->domain_name)
			abort();
		json_decref(vgm_wire_hook_event_encode(e));
	} else if ((ret != -EINVAL && ret != -EFBIG && ret != -ENOMEM) || e) {
		abort();
	}
	vgm_wire_hook_event_free(e);
	vgm_error_clear(&err);
	if (vgm_wire_error_decode((const char *)data, size, 409, &err) >= 0 || !err.message[0])
		abort();
	return 0;
}
