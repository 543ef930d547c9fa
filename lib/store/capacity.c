/* capacity.c: how many vGPUs of each profile a claim on this host could get
 * now (GET /v1/types, `vgpumig check`, placement).
 *
 * The count is made under the store lock from the same three inputs as a
 * claim decision (the cached inventory, the devices live claims and
 * assignments own, the devices any defined domain references) by
 * choose.c's claim_capacity_list, which applies the chooser's own rules:
 * per-GPU max_instance, one vGPU per VF, the homogeneous rule.  So a check
 * that says "n free" and a claim for n devices of that profile agree. */
#include <stdlib.h>
#include <string.h>

#include "choose.h"
#include "store-internal.h"

void vgm_profile_capacity_free(vgm_profile_capacity *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].profile_name);
	free(c);
}

static int capacity_copy(const claim_capacity *in, size_t n, vgm_profile_capacity **out,
			 size_t *n_out)
{
	vgm_profile_capacity *c = calloc(n + 1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		c[i] = (vgm_profile_capacity){.kind = in[i].kind,
					      .profile_name = strdup(in[i].profile_name),
					      .framebuffer_bytes = in[i].framebuffer_bytes,
					      .free_existing = in[i].free_existing,
					      .creatable = in[i].creatable,
					      .held = in[i].held,
					      .available = in[i].free_existing + in[i].creatable};
		if (!c[i].profile_name) {
			vgm_profile_capacity_free(c, i);
			return -ENOMEM;
		}
	}
	*out = c;
	*n_out = n;
	return 0;
}

int vgm_store_capacity(vgm_store *s, vgm_host *h, vgm_profile_capacity **out, size_t *n,
		       vgm_error *err)
{
	_cleanup_(store_unlockp) _unused_ vgm_store *locked = store_lock(s);
	const vgm_inventory *inv = NULL;
	vgm_device_use *uses = NULL;
	claim_capacity *cap = NULL;
	char **taken = NULL;
	size_t n_uses = 0, n_taken = 0, n_cap = 0;
	*out = NULL;
	*n = 0;
	bool unknown = false;
	int r = store_inventory_get(s, h, false, &inv, NULL, err);
	if (r == 0 && store_load_uses(s, &uses, &n_uses, NULL) < 0)
		unknown = true; /* as a claim would: only new devices count */
	if (r == 0)
		r = store_taken_ids(s, inv, unknown, uses, n_uses, &taken, &n_taken, err);
	if (r == 0 && (claim_capacity_list(inv, (const char *const *)taken, n_taken, &cap,
					   &n_cap) < 0 ||
		       capacity_copy(cap, n_cap, out, n) < 0))
		r = vgm_error_set(err, ENOMEM, "out of memory counting free vGPUs");
	free(cap);
	store_taken_free(taken, n_taken, n_uses);
	vgm_device_uses_free(uses, n_uses);
	return r;
}
