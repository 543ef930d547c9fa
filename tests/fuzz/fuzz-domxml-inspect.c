/* fuzz-domxml-inspect.c: libFuzzer target for vgm_domxml_inspect.
 *
 * Any bytes: no crash, no leak, no UB; and when inspect succeeds, every id it
 * hands out is canonical (callers build sysfs paths from them) and the JSON
 * form can be built. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domxml.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const vgm_domain_info *d)
{
	for (size_t i = 0; i < d->n_hostdevs; i++) {
		const vgm_hostdev *h = &d->hostdevs[i];
		if (h->id && h->type == VGM_HOSTDEV_MDEV && !vgm_uuid_valid(h->id))
			abort();
		if (h->id && h->type == VGM_HOSTDEV_PCI && !vgm_pci_addr_valid(h->id))
			abort();
		if (h->guest_address && strlen(h->guest_address) != 12)
			abort();
	}
	for (size_t i = 0; i < d->n_meta; i++)
		if (!vgm_uuid_valid(d->meta[i].id) && !vgm_pci_addr_valid(d->meta[i].id))
			abort();
	json_t *j = vgm_domain_info_to_json(d);
	if (!j)
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vgm_domain_info *d = NULL;
	vgm_error err = { 0 };
	if (vgm_domxml_inspect((const char *)data, size, &d, &err) == 0) {
		check_info(d);
		vgm_domain_info_free(d);
	} else if (!err.message[0] || d) {
		abort(); /* a failure always says why and hands out nothing */
	}
	return 0;
}
