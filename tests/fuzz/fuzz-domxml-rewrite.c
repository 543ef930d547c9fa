/* fuzz-domxml-rewrite.c: libFuzzer target for vgm_domxml_rewrite with a
 * fixed map (two mdev UUIDs and one VF address).
 *
 * Any bytes: no crash, no leak, no UB; and when a rewrite succeeds its
 * output is a domain that inspects again, with the same number of hostdevs,
 * no hostdev still carries a mapped source id, and mapping the output back
 * gives the input again (compared as canonical XML, with host ids written in
 * one spelling), so the in-place patching can never change anything else. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "domxml/domxml.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const vgm_idmap fixed_map[] = {
	{ "c2177883-f1bb-47f0-914d-32a22e3a8804", "0b6e21f4-5d3a-4c8e-9f10-7a2b3c4d5e6f" },
	{ "4b20d080-1b54-4048-85b3-a6a62d165c02", "9e3f7a10-0c2d-4b5e-8f61-a1b2c3d4e502" },
	{ "0000:41:00.4", "0000:c1:01.3" },
};

/* Only the first n_map entries were given to the rewrite: an id of a later
 * entry may rightly stay. */
static void check_output(const char *in, size_t len, const char *out, size_t outlen, size_t n_map)
{
	vgm_domain_info *a = NULL, *b = NULL;
	if (vgm_domxml_inspect(in, len, &a, NULL) < 0 || vgm_domxml_inspect(out, outlen, &b, NULL) < 0)
		abort();
	if (a->n_hostdevs != b->n_hostdevs)
		abort();
	for (size_t i = 0; i < b->n_hostdevs; i++)
		for (size_t k = 0; k < n_map; k++)
			if (b->hostdevs[i].id && strcmp(b->hostdevs[i].id, fixed_map[k].src) == 0)
				abort();
	vgm_domain_info_free(a);
	vgm_domain_info_free(b);
}

static void ignore_error(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

/* Host ids in one spelling: uuids and metadata ids lowercase, pci source
 * addresses as four explicit hex attributes. */
static void normalise_ids(xmlDoc *doc)
{
	xmlXPathContext *xp = xmlXPathNewContext(doc);
	xmlXPathRegisterNs(xp, BAD_CAST "v", BAD_CAST VGM_METADATA_NS);
	xmlXPathObject *o = xmlXPathEvalExpression(
		BAD_CAST "/domain/devices/hostdev/source/address/@uuid | //v:vgpu/@id", xp);
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlAttr *a = (xmlAttr *)o->nodesetval->nodeTab[i];
		xmlChar *v = xmlNodeGetContent((xmlNode *)a);
		char low[64];
		vgm_id_normalize(v ? (const char *)v : "", low, sizeof(low));
		xmlSetProp(a->parent, a->name, BAD_CAST low);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
	o = xmlXPathEvalExpression(BAD_CAST "/domain/devices/hostdev[@type='pci']/source/address",
				   xp);
	static const char *const attrs[] = { "domain", "bus", "slot", "function" };
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlNode *n = o->nodesetval->nodeTab[i];
		for (int k = 0; k < 4; k++) {
			xmlChar *v = xmlGetNoNsProp(n, BAD_CAST attrs[k]);
			char buf[32];
			snprintf(buf, sizeof(buf), "%llx", v ? strtoull((const char *)v, NULL, 0) : 0);
			xmlSetProp(n, BAD_CAST attrs[k], BAD_CAST buf);
			xmlFree(v);
		}
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(xp);
}

static char *canonical(const char *xml, size_t len, int *clen)
{
	xmlDoc *doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET);
	if (!doc)
		abort(); /* rewrite accepted it, so must libxml2 */
	normalise_ids(doc);
	xmlChar *c = NULL;
	*clen = xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 1, &c);
	xmlFreeDoc(doc);
	return (char *)c;
}

/* A metadata entry that already names a target would be mapped back to a
 * source it never had: no round trip to expect then. */
static bool meta_names_target(const char *in, size_t len, size_t n_map)
{
	vgm_domain_info *d = NULL;
	bool found = false;
	if (vgm_domxml_inspect(in, len, &d, NULL) < 0)
		abort();
	for (size_t i = 0; i < d->n_meta; i++)
		for (size_t k = 0; k < n_map; k++)
			found |= strcmp(d->meta[i].id, fixed_map[k].dst) == 0;
	vgm_domain_info_free(d);
	return found;
}

static void check_round_trip(const char *in, size_t len, const char *out, size_t outlen,
			     size_t n_map)
{
	if (meta_names_target(in, len, n_map))
		return;
	vgm_idmap back[3];
	for (size_t i = 0; i < n_map; i++)
		back[i] = (vgm_idmap){ fixed_map[i].dst, fixed_map[i].src };
	char *again = NULL;
	size_t againlen = 0;
	if (vgm_domxml_rewrite(out, outlen, back, n_map, VGM_REWRITE_ALLOW_UNMAPPED, &again,
			       &againlen, NULL) < 0)
		abort();
	/* Nothing to map: the document comes back byte for byte, both ways. */
	if (n_map == 0 && (outlen != len || againlen != len || memcmp(out, in, len) != 0 ||
			   memcmp(again, in, len) != 0))
		abort();
	xmlSetStructuredErrorFunc(NULL, ignore_error);
	int l1 = 0, l2 = 0;
	char *c1 = canonical(in, len, &l1), *c2 = canonical(again, againlen, &l2);
	/* libxml2's C14N refuses some well-formed documents (an invalid
	 * namespace URI, say); then both sides must be refused alike. */
	if ((l1 < 0) != (l2 < 0))
		abort();
	if (l1 >= 0 && (l1 != l2 || memcmp(c1, c2, (size_t)l1) != 0))
		abort();
	xmlFree(c1);
	xmlFree(c2);
	free(again);
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
		check_output(xml, len, out, outlen, n_map);
		check_round_trip(xml, len, out, outlen, n_map);
		free(out);
	} else if (!err.message[0] || out) {
		abort();
	}
	return 0;
}
