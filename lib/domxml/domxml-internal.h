/* domxml-internal.h: pieces shared by the files of lib/domxml.
 *
 * parse.c turns untrusted bytes into an xmlDoc (size limit, no DTD, no
 * network, no entity expansion, libxml2's complaints captured instead of
 * printed); scan.c walks a parsed domain once and records, next to the
 * public vgm_domain_info, the nodes that rewrite.c later edits.  Both inspect
 * and rewrite go through the same scan so they can never disagree about
 * which hostdevs a domain has. */
#pragma once

#include <stdbool.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "domxml.h"

/* Thread-local libxml2 error handlers, swapped for the length of one call so
 * that nothing libxml2 says reaches stderr and the first complaint can be
 * reported to our caller. */
typedef struct domxml_quiet {
	xmlStructuredErrorFunc saved_serror;
	void *saved_sctx;
	xmlGenericErrorFunc saved_generic;
	void *saved_gctx;
	char first[200]; /* first error libxml2 raised, "" if none */
	int line;
	int col;
} domxml_quiet;

void domxml_quiet_begin(domxml_quiet *q);
void domxml_quiet_end(domxml_quiet *q);

/* Parse a domain XML.  On success *doc is the tree and *had_decl tells
 * whether the input began with an XML declaration. */
int domxml_parse(const char *xml, size_t len, domxml_quiet *q, xmlDoc **doc, bool *had_decl,
		 vgm_error *err);

static inline void domxml_doc_freep(xmlDoc **d)
{
	if (*d)
		xmlFreeDoc(*d);
}
static inline void domxml_xpath_ctx_freep(xmlXPathContext **c)
{
	if (*c)
		xmlXPathFreeContext(*c);
}
static inline void domxml_xpath_obj_freep(xmlXPathObject **o)
{
	if (*o)
		xmlXPathFreeObject(*o);
}
static inline void domxml_xmlfreep(xmlChar **s)
{
	if (*s)
		xmlFree(*s);
}

/* The result of walking one domain. */
typedef struct domxml_scan {
	vgm_domain_info *info;
	xmlNode **hostdev_src;    /* per hostdev: its <source><address>, or NULL */
	xmlNode **meta_node;      /* per metadata entry: its <vgpumig:vgpu> */
	size_t n_hostdev_problems; /* the first n problems concern hostdevs */
} domxml_scan;

int domxml_scan_doc(xmlDoc *doc, domxml_scan *s, vgm_error *err);
void domxml_scan_done(domxml_scan *s);

/* Record a problem sentence (printf style); -ENOMEM on allocation failure. */
int domxml_add_problem(vgm_domain_info *d, const char *fmt, ...) _printf_(2, 3);

/* Evaluate expr relative to node (NULL: the document root) and return the
 * node set, or NULL when nothing matched.  Caller frees with
 * xmlXPathFreeObject. */
xmlXPathObject *domxml_xpath(xmlXPathContext *xp, xmlNode *node, const char *expr);
/* The first node expr selects, or NULL. */
xmlNode *domxml_xpath_first(xmlXPathContext *xp, xmlNode *node, const char *expr);
/* strdup of an attribute (NULL if absent). */
char *domxml_attr(xmlNode *n, const char *name);
/* strdup of a node's text content with surrounding blanks removed. */
char *domxml_text(xmlNode *n);

/* Parse an unsigned number as libvirt does (base 0: 0x hex, decimal). */
int domxml_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* Scale <memory unit=...> value to bytes; -EINVAL bad unit, -ERANGE overflow. */
int domxml_scale_memory(unsigned long long value, const char *unit, uint64_t *out);

/* Ids sorted for duplicate checks and lookups (O(n log n) whatever the
 * input holds).  NULL ids are left out; index is the position in ids. */
typedef struct domxml_id_ref {
	const char *id;
	size_t index;
} domxml_id_ref;
int domxml_sort_ids(const char *const *ids, size_t n, domxml_id_ref **out, size_t *n_out);
bool domxml_sorted_has(const domxml_id_ref *refs, size_t n, const char *id);
/* The hostdevs' ids as an array (entries may be NULL); NULL on ENOMEM. */
const char **domxml_hostdev_ids(const vgm_domain_info *d);

/* One attribute rewrite has set on an element (patch.c replays it on the
 * original bytes). */
#define DOMXML_EDIT_VALUE_MAX 40
typedef struct domxml_edit {
	xmlNode *element;
	const char *attr; /* static string */
	char value[DOMXML_EDIT_VALUE_MAX];
	char *old;        /* value before the edit, NULL if the attribute was absent */
} domxml_edit;

/* Apply edits to the input bytes, keeping every other byte.  0: *out set;
 * 1: cannot be done safely here (caller serialises the tree); -ENOMEM. */
int domxml_patch(const char *xml, size_t len, xmlDoc *edited, const domxml_edit *e, size_t n,
		 char **out, size_t *outlen);
