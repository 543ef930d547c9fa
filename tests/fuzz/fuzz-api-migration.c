/* fuzz-api-migration.c: libFuzzer target for the migration request decoder
 * (POST /v1/migrations, /v1/plan, /v1/check bodies; lib/api/wire).
 *
 * Invariants checked: success or -EINVAL/-EFBIG/-ENOMEM; on success "to" is
 * a safe name, a limit not given carries no value, and encode -> decode gives
 * the same limits (given or not, and their values) back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int limit_eq(vgm_limit a, vgm_limit b)
{
	return a.set == b.set && a.value == b.value;
}

static void check(const vgm_wire_migration_req *r)
{
	vgm_wire_migration_req *r2 = NULL;
	json_t *j;
	char *text;

	if (!vgm_name_valid(r->to) || !r->domain || (!r->max_downtime_ms.set && r->max_downtime_ms.value) ||
	    (!r->bandwidth_bps.set && r->bandwidth_bps.value) || (!r->timeout_ms.set && r->timeout_ms.value))
		abort();
	j = vgm_wire_migration_req_encode(r);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return;
	if (vgm_wire_migration_req_decode(text, strlen(text), &r2, NULL) != 0 ||
	    !limit_eq(r2->max_downtime_ms, r->max_downtime_ms) ||
	    !limit_eq(r2->bandwidth_bps, r->bandwidth_bps) || !limit_eq(r2->timeout_ms, r->timeout_ms) ||
	    r2->dry_run != r->dry_run || r2->force != r->force)
		abort();
	vgm_wire_migration_req_free(r2);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vgm_wire_migration_req *r = NULL;
	vgm_error err = { 0 };
	int ret = vgm_wire_migration_req_decode((const char *)data, size, &r, &err);

	if (ret == 0)
		check(r);
	else if ((ret != -EINVAL && ret != -EFBIG && ret != -ENOMEM) || r)
		abort();
	vgm_wire_migration_req_free(r);
	return 0;
}
