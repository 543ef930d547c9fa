/* patch.c: write a rewrite's few attribute changes into the original bytes.
 *
 * libxml2 can only re-serialise a whole tree, which changes the spelling of
 * everything (quotes, character references) even where nothing changed.  So
 * rewrite first edits the tree, then tries this: parse.c recorded where each
 * element's start tag ends; a start tag is the span from the last '<' before
 * that point (a '<' cannot occur inside attribute values) to its end, and the
 * attribute syntax inside it is small enough to tokenise exactly.  Each edit
 * replaces one attribute value between its quotes, or appends the attribute
 * in the tag's own quote style.
 *
 * Invariant: a splice is used only when the tag it found is provably the
 * element's own (the end offset comes from libxml2, the tag's name equals
 * the element's qualified name, the whole tag tokenises up to that end) and
 * the value between the quotes is, byte for byte, the value libxml2 read for
 * that attribute.  Anything else (another encoding, a value spelled with
 * character references, an offset that does not land on a tag end) makes
 * the caller serialise the edited tree instead; it never guesses.  The unit
 * tests and the rewrite fuzzer check the result against the edited tree. */
#include <string.h>
#include <strings.h>

#include "domxml-internal.h"

typedef struct splice {
	size_t off;
	size_t len;
	char text[DOMXML_EDIT_VALUE_MAX + 48];
} splice;

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The tag must open with the element's qualified name. */
static bool tag_names_element(const char *xml, size_t name, size_t name_end, const xmlNode *el)
{
	size_t plen = el->ns && el->ns->prefix ? strlen((const char *)el->ns->prefix) : 0;
	size_t llen = strlen((const char *)el->name);
	size_t want = plen ? plen + 1 + llen : llen;
	if (name_end - name != want)
		return false;
	if (plen && (memcmp(xml + name, el->ns->prefix, plen) != 0 || xml[name + plen] != ':'))
		return false;
	return memcmp(xml + name + (plen ? plen + 1 : 0), el->name, llen) == 0;
}

/* The value between the quotes must be exactly what libxml2 read. */
static int found(const char *xml, size_t val, size_t val_end, const domxml_edit *e, splice *sp)
{
	if (!e->old || strlen(e->old) != val_end - val || memcmp(xml + val, e->old, val_end - val))
		return 1;
	sp->off = val;
	sp->len = val_end - val;
	snprintf(sp->text, sizeof(sp->text), "%s", e->value);
	return 0;
}

/* Find attr in the start tag whose '>' or '/' is at end.  0 ok, 1 unusable. */
static int plan_splice(const char *xml, size_t end, const domxml_edit *e, splice *sp)
{
	size_t lt = end;
	while (lt > 0 && xml[lt] != '<')
		lt--;
	if (xml[lt] != '<')
		return 1;
	size_t p = lt + 1, insert_at, want = strlen(e->attr);
	while (p < end && !is_blank(xml[p]))
		p++;
	if (!tag_names_element(xml, lt + 1, p, e->element))
		return 1;
	insert_at = p;
	char quote = 0;
	for (;;) {
		while (p < end && is_blank(xml[p]))
			p++;
		if (p >= end)
			break;
		size_t name = p;
		while (p < end && !is_blank(xml[p]) && xml[p] != '=')
			p++;
		size_t name_len = p - name;
		while (p < end && is_blank(xml[p]))
			p++;
		if (p >= end || xml[p] != '=')
			return 1;
		for (p++; p < end && is_blank(xml[p]); p++)
			;
		if (p >= end || (xml[p] != '\'' && xml[p] != '"'))
			return 1;
		char q = xml[p++];
		size_t val = p;
		while (p < end && xml[p] != q)
			p++;
		if (p >= end)
			return 1;
		if (!quote)
			quote = q;
		if (name_len == want && memcmp(xml + name, e->attr, want) == 0)
			return found(xml, val, p, e, sp);
		insert_at = ++p;
	}
	if (e->old)
		return 1; /* libxml2 saw the attribute but we did not */
	quote = quote ? quote : '\'';
	sp->off = insert_at;
	sp->len = 0;
	snprintf(sp->text, sizeof(sp->text), " %s=%c%s%c", e->attr, quote, e->value, quote);
	return 0;
}

static int cmp_splice(const void *a, const void *b)
{
	const splice *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static char *apply_splices(const char *xml, size_t len, splice *sp, size_t n, size_t *outlen)
{
	size_t total = len;
	for (size_t i = 0; i < n; i++)
		total += strlen(sp[i].text);
	char *out = malloc(total + 1);
	if (!out)
		return NULL;
	size_t at = 0, w = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + w, xml + at, sp[i].off - at);
		w += sp[i].off - at;
		size_t t = strlen(sp[i].text);
		memcpy(out + w, sp[i].text, t);
		w += t;
		at = sp[i].off + sp[i].len;
	}
	memcpy(out + w, xml + at, len - at);
	w += len - at;
	out[w] = '\0';
	*outlen = w;
	return out;
}

static bool utf8_input(const xmlDoc *doc, const char *xml, size_t len)
{
	const unsigned char *b = (const unsigned char *)xml;
	if (len >= 2 && (b[0] == 0xfe || b[0] == 0xff || b[0] == 0 || b[1] == 0))
		return false; /* UTF-16/UCS-4: offsets are in converted text */
	return !doc->encoding || strcasecmp((const char *)doc->encoding, "UTF-8") == 0 ||
	       strcasecmp((const char *)doc->encoding, "UTF8") == 0;
}

static int plan_all(const char *xml, size_t len, const domxml_edit *e, size_t n, splice *sp)
{
	for (size_t i = 0; i < n; i++) {
		uintptr_t tag = (uintptr_t)e[i].element->_private;
		if (tag == 0 || tag - 1 >= len)
			return 1;
		size_t end = (size_t)(tag - 1);
		if ((xml[end] != '>' && xml[end] != '/') || plan_splice(xml, end, &e[i], &sp[i]))
			return 1;
	}
	qsort(sp, n, sizeof(*sp), cmp_splice);
	for (size_t i = 1; i < n; i++)
		if (sp[i].off < sp[i - 1].off + sp[i - 1].len ||
		    (sp[i].off == sp[i - 1].off && sp[i].len == 0 && sp[i - 1].len == 0 &&
		     strcmp(sp[i].text, sp[i - 1].text) == 0))
			return 1;
	return 0;
}

int domxml_patch(const char *xml, size_t len, xmlDoc *edited, const domxml_edit *e, size_t n,
		 char **out, size_t *outlen)
{
	if (!utf8_input(edited, xml, len))
		return 1;
	_cleanup_free_ splice *sp = calloc(n ? n : 1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	int r = plan_all(xml, len, e, n, sp);
	if (r)
		return r;
	*out = apply_splices(xml, len, sp, n, outlen ? outlen : &(size_t){ 0 });
	return *out ? 0 : -ENOMEM;
}
