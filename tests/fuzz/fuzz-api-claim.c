/* fuzz-api-claim.c: libFuzzer target for the claim request and claim reply
 * decoders (lib/api/wire), the first code that sees a peer's bytes.
 *
 * Invariants checked: a decode succeeds or fails with -EINVAL/-EFBIG/-ENOMEM
 * and a non-empty message; on success every id is valid and lowercase, every
 * device's kind matches its id form, and encode -> decode gives the same
 * request back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const vgm_wire_claim_req *r)
{
	vgm_wire_claim_req *r2 = NULL;
	json_t *j;
	char *text;

	if (!vgm_uuid_valid(r->domain_uuid) || !vgm_name_valid(r->migration_id) || r->n_devices == 0)
		abort();
	for (size_t i = 0; i < r->n_devices; i++) {
		const vgm_wire_device *d = &r->devices[i];
		bool mdev = STREQ(d->kind, "mdev");

		if (mdev ? !vgm_uuid_valid(d->source_id) : !vgm_pci_addr_valid(d->source_id))
			abort();
		for (const char *c = d->source_id; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				abort();
	}
	j = vgm_wire_claim_req_encode(r);
	if (!j)
		return;
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text && vgm_wire_claim_req_decode(text, strlen(text), &r2, NULL) == 0) {
		if (r2->n_devices != r->n_devices || !STREQ(r2->domain_uuid, r->domain_uuid))
			abort();
		vgm_wire_claim_req_free(r2);
	} else if (text) {
		abort(); /* what we encode we must accept */
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vgm_wire_claim_req *r = NULL;
	vgm_wire_claim *c = NULL;
	vgm_error err = { 0 };
	int ret;

	ret = vgm_wire_claim_req_decode((const char *)data, size, &r, &err);
	if (ret == 0)
		check_request(r);
	else if ((ret != -EINVAL && ret != -EFBIG && ret != -ENOMEM) || !err.message[0] || r)
		abort();
	vgm_wire_claim_req_free(r);
	ret = vgm_wire_claim_decode((const char *)data, size, &c, NULL);
	if (ret == 0 && !vgm_uuid_valid(c->claim_id) && !vgm_name_valid(c->claim_id))
		abort();
	vgm_wire_claim_free(c);
	return 0;
}
