/* util.c: small helpers of lib/domxml: XPath lookups relative to a node,
 * attribute and text copies, libvirt's number and memory-unit rules, and the
 * problem list.  All results are malloc'd (never xmlChar owned by libxml2)
 * so callers free them with free(). */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "domxml-internal.h"

int domxml_add_problem(vgm_domain_info *d, const char *fmt, ...)
{
	char **p = reallocarray(d->problems, d->n_problems + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	d->problems = p;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&p[d->n_problems], fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	d->n_problems++;
	return 0;
}

xmlXPathObject *domxml_xpath(xmlXPathContext *xp, xmlNode *node, const char *expr)
{
	xmlXPathObject *o = node ? xmlXPathNodeEval(node, BAD_CAST expr, xp)
				 : xmlXPathEvalExpression(BAD_CAST expr, xp);
	if (o && (o->type != XPATH_NODESET || !o->nodesetval || o->nodesetval->nodeNr == 0)) {
		xmlXPathFreeObject(o);
		return NULL;
	}
	return o;
}

xmlNode *domxml_xpath_first(xmlXPathContext *xp, xmlNode *node, const char *expr)
{
	_cleanup_(domxml_xpath_obj_freep) xmlXPathObject *o = domxml_xpath(xp, node, expr);
	return o ? o->nodesetval->nodeTab[0] : NULL;
}

char *domxml_attr(xmlNode *n, const char *name)
{
	if (!n)
		return NULL;
	_cleanup_(domxml_xmlfreep) xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	return v ? strdup((const char *)v) : NULL;
}

char *domxml_text(xmlNode *n)
{
	if (!n)
		return NULL;
	_cleanup_(domxml_xmlfreep) xmlChar *v = xmlNodeGetContent(n);
	if (!v)
		return strdup("");
	const char *s = (const char *)v;
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

int domxml_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL; /* no sign, no empty string */
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno == ERANGE || v > max)
		return -ERANGE;
	while (end && isspace((unsigned char)*end))
		end++;
	if (errno != 0 || !end || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* libvirt's virScaleInteger: b|bytes, then k/M/G/T/P/E with "" or "iB" for
 * powers of 1024 and "B" for powers of 1000, case-insensitive.  <memory>
 * without a unit is KiB. */
int domxml_scale_memory(unsigned long long value, const char *unit, uint64_t *out)
{
	unsigned long long scale;
	if (!unit || !*unit) {
		scale = 1024;
	} else if ((tolower((unsigned char)unit[0]) == 'b' && !unit[1]) ||
		   strcasecmp(unit, "bytes") == 0) {
		scale = 1;
	} else {
		unsigned long long base;
		if (!unit[1] || strcasecmp(unit + 1, "iB") == 0)
			base = 1024;
		else if (tolower((unsigned char)unit[1]) == 'b' && !unit[2])
			base = 1000;
		else
			return -EINVAL;
		static const char order[] = "kmgtpe";
		const char *at = strchr(order, tolower((unsigned char)unit[0]));
		if (!at || !*at)
			return -EINVAL;
		scale = 1;
		for (const char *c = order; c <= at; c++)
			scale *= base;
	}
	if (value != 0 && scale > UINT64_MAX / value)
		return -ERANGE;
	*out = value * scale;
	return 0;
}

static int cmp_id_ref(const void *a, const void *b)
{
	const domxml_id_ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

int domxml_sort_ids(const char *const *ids, size_t n, domxml_id_ref **out, size_t *n_out)
{
	domxml_id_ref *r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i])
			r[k++] = (domxml_id_ref){ ids[i], i };
	qsort(r, k, sizeof(*r), cmp_id_ref);
	*out = r;
	*n_out = k;
	return 0;
}

bool domxml_sorted_has(const domxml_id_ref *refs, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(refs[mid].id, id);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}
