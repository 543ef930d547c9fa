/* fuzz-domxml-rewrite.c: libFuzzer target for vgm_domxml_rewrite with a
 * fixed map (two mdev UUIDs and one VF address).
 *
 * Any bytes: no crash, no leak, no UB; and when a rewrite succeeds its
 * output is a domain that inspects again, with the same number of hostdevs,
 * and no hostdev still carries a mapped source id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const vgm_idmap fixed_map[] = {
	{ "c2177883-f1bb-47f0-914d-32a22e3a8804", "0b6e21f4-5d3a-4c8e-9f10-7a2b3c4d5e6f" },
	{ "4b20d080-1b54-4048-85b3-a6a62d165c02", "9e3f7a10-0c2d-4b5e-8f61-a1b2c3d4e502" },
	{ "0000:41:00.4", "0000:c1:01.3" },
};

static void check_output(const char *in, size_t len, const char *out, size_t outlen)
{
	vgm_domain_info *a = NULL, *b = NULL;
	if (vgm_domxml_inspect(in, len, &a, NULL) < 0 || vgm_domxml_inspect(out, outlen, &b, NULL) < 0)
		abort();
	if (a->n_hostdevs != b->n_hostdevs)
		abort();
	for (size_t i = 0; i < b->n_hostdevs; i++)
		for (size_t k = 0; k < sizeof(fixed_map) / sizeof(fixed_map[0]); k++)
			if (b->hostdevs[i].id && strcmp(b->hostdevs[i].id, fixed_map[k].src) == 0)
				abort();
	vgm_domain_info_free(a);
	vgm_domain_info_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first byte picks the flags and how much of the map is used */
	if (size < 1)
		return 0;
	unsigned flags = data[0] & 1 ? VGM_REWRITE_ALLOW_UNMAPPED : 0;
	size_t n_map = (size_t)(data[0] >> 1) % 4;
	const char *xml = (const char *)data + 1;
	size_t len = size - 1;
	char *out = NULL;
	size_t outlen = 0;
	vgm_error err = { 0 };
	if (vgm_domxml_rewrite(xml, len, fixed_map, n_map, flags, &out, &outlen, &err) == 0) {
		if (!out || out[outlen] != '\0')
			abort();
		check_output(xml, len, out, outlen);
		free(out);
	} else if (!err.message[0] || out) {
		abort();
	}
	return 0;
}
