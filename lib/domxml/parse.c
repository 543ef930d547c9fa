/* parse.c: untrusted domain XML bytes -> libxml2 tree.
 *
 * Invariants: nothing is parsed before the size check; the parser never
 * touches the network, never loads a DTD and never expands entities, and a
 * document with any DOCTYPE is refused the moment the parser sees it (so an
 * internal subset full of entity declarations, the "billion laughs", is
 * never even read to its end).  libxml2 reports errors through per-thread
 * handlers that we swap for the length of a call: its words end up in the
 * vgm_error, never on stderr.  xmlInitParser runs exactly once
 * (pthread_once); everything else is per call, so several threads may parse
 * at the same time. */
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/parserInternals.h>

#include "domxml-internal.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
	xmlInitParser();
}

/* Keep the first error only: later ones are usually consequences of it. */
static void quiet_structured(void *data, xmlErrorPtr e)
{
	domxml_quiet *q = data;
	if (!q || !e || q->first[0] || e->level < XML_ERR_ERROR)
		return;
	snprintf(q->first, sizeof(q->first), "%s", e->message ? e->message : "unknown error");
	size_t n = strlen(q->first);
	while (n > 0 && (q->first[n - 1] == '\n' || q->first[n - 1] == ' '))
		q->first[--n] = '\0';
	q->line = e->line;
	q->col = e->int2;
}

static void quiet_generic(void *data, const char *msg, ...)
{
	(void)data;
	(void)msg;
}

void domxml_quiet_begin(domxml_quiet *q)
{
	pthread_once(&init_once, init_libxml);
	memset(q, 0, sizeof(*q));
	q->saved_serror = xmlStructuredError;
	q->saved_sctx = xmlStructuredErrorContext;
	q->saved_generic = xmlGenericError;
	q->saved_gctx = xmlGenericErrorContext;
	xmlSetStructuredErrorFunc(q, quiet_structured);
	xmlSetGenericErrorFunc(q, quiet_generic);
}

void domxml_quiet_end(domxml_quiet *q)
{
	xmlSetStructuredErrorFunc(q->saved_sctx, q->saved_serror);
	xmlSetGenericErrorFunc(q->saved_gctx, q->saved_generic);
}

/* SAX hook: called as soon as "<!DOCTYPE name ...>" starts. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	(void)name;
	(void)ext;
	(void)sys;
	xmlParserCtxt *ctxt = ctx;
	*(bool *)ctxt->_private = true;
	xmlStopParser(ctxt);
}

/* SAX hook around libxml2's own element handler: remember in the new node
 * where its start tag ends in the input (offset of its '>' or "/>", plus
 * one so that 0 means unknown).  rewrite uses it to patch attribute values
 * in place instead of re-serialising the whole document. */
static void record_start_tag(void *ctx, const xmlChar *localname, const xmlChar *prefix,
			     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
			     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	xmlParserCtxt *ctxt = ctx;
	xmlNode *before = ctxt->node;
	xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces,
			      nb_attributes, nb_defaulted, attributes);
	xmlParserInput *in = ctxt->input;
	if (ctxt->node && ctxt->node != before && in && in->cur >= in->base) {
		size_t off = (size_t)in->consumed + (size_t)(in->cur - in->base);
		ctxt->node->_private = (void *)(uintptr_t)(off + 1);
	}
}

/* libxml2 itself decides on a declaration by these bytes (after a BOM). */
static bool has_xml_decl(const char *xml, size_t len)
{
	const unsigned char *p = (const unsigned char *)xml;
	if (len >= 2 && ((p[0] == 0xfe && p[1] == 0xff) || (p[0] == 0xff && p[1] == 0xfe)))
		return true; /* UTF-16 needs its declaration to be read back */
	if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
		p += 3;
		len -= 3;
	}
	return len >= 6 && memcmp(p, "<?xml", 5) == 0 &&
	       (p[5] == ' ' || p[5] == '\t' || p[5] == '\r' || p[5] == '\n');
}

static int parse_error(const domxml_quiet *q, vgm_error *err)
{
	if (!q->first[0])
		return vgm_error_setr(err, EINVAL, "malformed_xml", "domain XML is not well-formed");
	return vgm_error_setr(err, EINVAL, "malformed_xml",
			      "domain XML is not well-formed: line %d column %d: %s", q->line,
			      q->col, q->first);
}

static int check_root(xmlDoc *doc, vgm_error *err)
{
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root)
		return vgm_error_setr(err, EINVAL, "malformed_xml", "domain XML has no root element");
	if (root->ns || !xmlStrEqual(root->name, BAD_CAST "domain"))
		return vgm_error_setr(err, EINVAL, "not_a_domain",
				      "XML root element is <%.40s>, not <domain>; give a libvirt "
				      "domain XML (virsh dumpxml)",
				      (const char *)root->name);
	return 0;
}

int domxml_parse(const char *xml, size_t len, domxml_quiet *q, xmlDoc **out, bool *had_decl,
		 vgm_error *err)
{
	if (len > VGM_DOMXML_MAX)
		return vgm_error_setr(err, EFBIG, "too_large",
				      "domain XML is %zu bytes, more than the limit of %u bytes; "
				      "is this really a domain definition?",
				      len, VGM_DOMXML_MAX);
	if (!xml || len == 0)
		return vgm_error_setr(err, EINVAL, "malformed_xml", "domain XML is empty");

	xmlParserCtxt *ctxt = xmlCreateMemoryParserCtxt(xml, (int)len);
	if (!ctxt)
		return vgm_error_set(err, ENOMEM, "cannot allocate an XML parser");
	/* No XML_PARSE_NOENT, DTDLOAD or DTDATTR: entities stay unexpanded and
	 * no DTD is ever fetched; the DOCTYPE hook below refuses any DTD. */
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
				     XML_PARSE_COMPACT);
	bool saw_doctype = false;
	ctxt->_private = &saw_doctype;
	ctxt->sax->internalSubset = refuse_doctype;
	ctxt->sax->externalSubset = NULL;
	ctxt->sax->entityDecl = NULL;
	ctxt->sax->startElementNs = record_start_tag;
	ctxt->replaceEntities = 0;
	ctxt->loadsubset = 0;
	ctxt->validate = 0;

	xmlParseDocument(ctxt);
	xmlDoc *doc = ctxt->myDoc;
	bool ok = ctxt->wellFormed && !saw_doctype;
	ctxt->myDoc = NULL;
	xmlFreeParserCtxt(ctxt);

	int r = 0;
	if (saw_doctype)
		r = vgm_error_setr(err, EINVAL, "dtd_refused",
				   "domain XML must not contain a DTD (<!DOCTYPE ...>); libvirt "
				   "never writes one, so remove it");
	else if (!ok || !doc)
		r = parse_error(q, err);
	else
		r = check_root(doc, err);
	if (r < 0) {
		if (doc)
			xmlFreeDoc(doc);
		return r;
	}
	*out = doc;
	if (had_decl)
		*had_decl = has_xml_decl(xml, len);
	return 0;
}
