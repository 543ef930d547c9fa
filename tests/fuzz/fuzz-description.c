/* fuzz-description.c: libFuzzer target for the vGPU profile text parsers and
 * the host facts decoder (text a peer or the vendor driver hands us).
 *
 * Input: "NAME\nDESCRIPTION" (no newline: the whole input is the description).
 * Exercises vgm_profile_parse_description, the name rules (board, class,
 * framebuffer) and the VF creatable_vgpu_types parser on the same bytes, and
 * vgm_facts_from_json when the bytes are JSON.
 * Invariants checked: success or -EINVAL/-ENOMEM only; on failure the profile
 * keeps no parsed fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat/compat.h"
#include "device/device-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		vgm_facts *f = NULL;
		if (vgm_facts_from_json(j, &f, NULL) == 0) {
			json_t *back = vgm_facts_to_json(f);
			json_decref(back);
			vgm_facts_free(f);
		}
		json_decref(j);
	}

	vgm_kv *kv = NULL;
	size_t n = 0;
	if (vgm_vf_parse_creatable(buf, &kv, &n) == 0)
		vgm_kv_array_free(kv, n);

	char *nl = strchr(buf, '\n');
	const char *desc = buf;
	vgm_profile p = { 0 };
	if (nl) {
		*nl = '\0';
		p.name = strdup(buf);
		desc = nl + 1;
		free(vgm_profile_board(p.name));
		(void)vgm_profile_framebuffer_from_name(p.name);
	}
	vgm_error e = { 0 };
	int r = vgm_profile_parse_description(&p, desc, &e);
	if (r != 0 && r != -EINVAL && r != -ENOMEM)
		abort();
	if (r == -EINVAL && (p.n_extra || p.max_resolution || !e.message[0]))
		abort();
	vgm_profile_clear(&p);
	free(buf);
	return 0;
}
