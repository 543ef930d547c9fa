/* rewrite.c: vgm_domxml_rewrite, source host ids -> target host ids.
 *
 * Only host-side identities change: <source><address uuid> of mdev hostdevs,
 * <source><address domain bus slot function> of pci hostdevs, and the id of
 * matching vgpumig metadata entries.  Guest addresses, aliases, display,
 * ramfb and every other node stay as parsed.
 *
 * Invariants:
 *  - The map is checked as a whole first: both sides UUIDs or both PCI
 *    addresses, no source twice, no target twice (case-insensitive).
 *  - Every map source must be in the domain; every vfio-pci mdev must be
 *    mapped unless VGM_REWRITE_ALLOW_UNMAPPED (vfio-ccw and vfio-ap mdevs are
 *    not GPUs and never need a mapping); a domain whose hostdevs have
 *    problems is refused; the result may not attach one id twice.
 *  - When nothing changes the output is the input, byte for byte.  Otherwise
 *    the new values are patched into the input bytes (patch.c), so every
 *    other byte stays; only where that cannot be proven right does libxml2
 *    serialise the edited tree, without reformatting (quoting and character
 *    references may change spelling, never meaning; the XML declaration is
 *    written only if the input had one). */
#include <string.h>
#include <strings.h>

#include <libxml/xmlsave.h>

#include "domxml-internal.h"
#include "util/validate.h"

typedef struct map_entry {
	char src[VGM_UUID_LEN + 1];
	char dst[VGM_UUID_LEN + 1];
	bool used;
} map_entry;

static int cmp_src(const void *a, const void *b)
{
	return strcmp(((const map_entry *)a)->src, ((const map_entry *)b)->src);
}

static int cmp_dst(const void *a, const void *b)
{
	return strcmp(((const map_entry *)a)->dst, ((const map_entry *)b)->dst);
}

static int check_pair(const vgm_idmap *m, vgm_error *err)
{
	const char *src = m->src ? m->src : "", *dst = m->dst ? m->dst : "";
	if ((vgm_uuid_valid(src) && vgm_uuid_valid(dst)) ||
	    (vgm_pci_addr_valid(src) && vgm_pci_addr_valid(dst)))
		return 0;
	return vgm_error_setr(err, EINVAL, "invalid_map",
			      "map entry '%.40s=%.40s': source and target must both be UUIDs "
			      "or both PCI addresses (dddd:bb:ss.f)",
			      src, dst);
}

/* Validate and canonicalise the map; *out is sorted by source. */
static int load_map(const vgm_idmap *map, size_t n, map_entry **out, vgm_error *err)
{
	_cleanup_free_ map_entry *e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (check_pair(&map[i], err) < 0)
			return -EINVAL;
		vgm_id_normalize(map[i].src, e[i].src, sizeof(e[i].src));
		vgm_id_normalize(map[i].dst, e[i].dst, sizeof(e[i].dst));
	}
	qsort(e, n, sizeof(*e), cmp_dst);
	for (size_t i = 1; i < n; i++)
		if (STREQ(e[i].dst, e[i - 1].dst))
			return vgm_error_setr(err, EINVAL, "invalid_map",
					      "map sends both %s and %s to %s; each target can "
					      "take one device",
					      e[i - 1].src, e[i].src, e[i].dst);
	qsort(e, n, sizeof(*e), cmp_src);
	for (size_t i = 1; i < n; i++)
		if (STREQ(e[i].src, e[i - 1].src))
			return vgm_error_setr(err, EINVAL, "invalid_map",
					      "map names source %s twice; give one target per "
					      "device",
					      e[i].src);
	*out = TAKE_PTR(e);
	return 0;
}

static map_entry *find(map_entry *e, size_t n, const char *id)
{
	map_entry key = { 0 };
	if (!id)
		return NULL;
	snprintf(key.src, sizeof(key.src), "%s", id);
	return bsearch(&key, e, n, sizeof(*e), cmp_src);
}

/* Refuse what inspect only reports: the hostdevs must be sound. */
static int check_problems(const domxml_scan *s, vgm_error *err)
{
	if (s->n_hostdev_problems == 0)
		return 0;
	if (s->n_hostdev_problems == 1)
		return vgm_error_setr(err, EINVAL, "domain_problem", "cannot rewrite: %s",
				      s->info->problems[0]);
	return vgm_error_setr(err, EINVAL, "domain_problem", "cannot rewrite: %s (and %zu more "
			      "problems; see 'vgpumig xml inspect')",
			      s->info->problems[0], s->n_hostdev_problems - 1);
}

static bool needs_mapping(const vgm_hostdev *h)
{
	if (h->type != VGM_HOSTDEV_MDEV)
		return false; /* a pci hostdev may be any device: map it only if asked */
	return !h->model || (!STREQ(h->model, "vfio-ccw") && !STREQ(h->model, "vfio-ap"));
}

/* Mark used entries and check coverage; final[i] is hostdev i's id after. */
static int plan_hostdevs(const domxml_scan *s, map_entry *e, size_t n, unsigned flags,
			 const char **final, vgm_error *err)
{
	const vgm_domain_info *d = s->info;
	for (size_t i = 0; i < d->n_hostdevs; i++) {
		const vgm_hostdev *h = &d->hostdevs[i];
		map_entry *m = find(e, n, h->id);
		final[i] = m ? m->dst : h->id;
		if (m)
			m->used = true;
		else if (needs_mapping(h) && !(flags & VGM_REWRITE_ALLOW_UNMAPPED))
			return vgm_error_setr(err, EINVAL, "unmapped_vgpu",
					      "mdev %s (hostdev #%zu) of domain '%.64s' has no "
					      "target; add --map %s=TARGET or pass "
					      "--allow-unmapped",
					      h->id, i + 1, d->name ? d->name : "", h->id);
	}
	for (size_t i = 0; i < d->n_meta; i++) {
		map_entry *m = find(e, n, d->meta[i].id);
		if (m)
			m->used = true;
	}
	for (size_t i = 0; i < n; i++)
		if (!e[i].used)
			return vgm_error_setr(err, ENOENT, "unknown_id",
					      "map source %s is not a hostdev or vgpumig metadata "
					      "entry of domain '%.64s'; check the id with 'vgpumig "
					      "xml inspect'",
					      e[i].src, d->name ? d->name : "");
	return 0;
}

static int check_final_unique(const char **final, size_t n, vgm_error *err)
{
	_cleanup_free_ domxml_id_ref *refs = NULL;
	size_t k;
	if (domxml_sort_ids(final, n, &refs, &k) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 1; i < k; i++)
		if (STREQ(refs[i].id, refs[i - 1].id))
			return vgm_error_setr(err, EEXIST, "id_conflict",
					      "after rewriting, hostdevs #%zu and #%zu would both "
					      "use %s; map the other one too",
					      refs[i - 1].index + 1, refs[i].index + 1, refs[i].id);
	return 0;
}

typedef struct edit_list {
	domxml_edit *e;
	size_t n;
	size_t cap;
} edit_list;

/* Set the attribute in the tree and remember the edit for patch.c. */
static int edit(edit_list *l, xmlNode *n, const char *attr, const char *value)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		domxml_edit *e = reallocarray(l->e, cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	domxml_edit *e = &l->e[l->n];
	e->old = domxml_attr(n, attr);
	if (!xmlSetProp(n, BAD_CAST attr, BAD_CAST value)) {
		free(e->old);
		return -ENOMEM;
	}
	e->element = n;
	e->attr = attr;
	snprintf(e->value, sizeof(e->value), "%s", value);
	l->n++;
	return 0;
}

/* Keep the attribute's spelling: libvirt's 0x-hex widths, or decimal. */
static int set_pci_attr(edit_list *l, xmlNode *n, const char *name, unsigned v, int width)
{
	_cleanup_free_ char *old = domxml_attr(n, name);
	char buf[16];
	if (!old && v == 0)
		return 0; /* an absent attribute already means 0 */
	bool hex = !old || strncasecmp(old, "0x", 2) == 0;
	if (hex)
		snprintf(buf, sizeof(buf), "0x%0*x", width, v);
	else
		snprintf(buf, sizeof(buf), "%u", v);
	if (old && STREQ(old, buf))
		return 0;
	return edit(l, n, name, buf);
}

static int apply_pci(edit_list *l, xmlNode *n, const char *dst)
{
	unsigned dom, bus, slot, fn;
	if (sscanf(dst, "%4x:%2x:%2x.%1x", &dom, &bus, &slot, &fn) != 4)
		return -EINVAL; /* cannot happen: dst was validated */
	if (set_pci_attr(l, n, "domain", dom, 4) < 0 || set_pci_attr(l, n, "bus", bus, 2) < 0 ||
	    set_pci_attr(l, n, "slot", slot, 2) < 0 || set_pci_attr(l, n, "function", fn, 1) < 0)
		return -ENOMEM;
	return 0;
}

/* Edit the tree, listing every attribute changed in l. */
static int apply(domxml_scan *s, map_entry *e, size_t n, edit_list *l)
{
	vgm_domain_info *d = s->info;
	for (size_t i = 0; i < d->n_hostdevs; i++) {
		map_entry *m = find(e, n, d->hostdevs[i].id);
		if (!m || STREQ(m->src, m->dst))
			continue;
		int r = d->hostdevs[i].type == VGM_HOSTDEV_MDEV
				? edit(l, s->hostdev_src[i], "uuid", m->dst)
				: apply_pci(l, s->hostdev_src[i], m->dst);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < d->n_meta; i++) {
		map_entry *m = find(e, n, d->meta[i].id);
		if (m && !STREQ(m->src, m->dst) && edit(l, s->meta_node[i], "id", m->dst) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int serialise(xmlDoc *doc, bool decl, char **out, size_t *outlen)
{
	xmlBuffer *buf = xmlBufferCreate();
	if (!buf)
		return -ENOMEM;
	const char *enc = doc->encoding ? (const char *)doc->encoding : "UTF-8";
	xmlSaveCtxt *save = xmlSaveToBuffer(buf, enc, decl ? 0 : XML_SAVE_NO_DECL);
	int r = -EIO;
	if (save) {
		long w = xmlSaveDoc(save, doc);
		if (xmlSaveClose(save) >= 0 && w >= 0) {
			size_t len = (size_t)xmlBufferLength(buf);
			*out = malloc(len + 1);
			r = *out ? 0 : -ENOMEM;
			if (*out) {
				memcpy(*out, xmlBufferContent(buf), len);
				(*out)[len] = '\0';
				if (outlen)
					*outlen = len;
			}
		}
	}
	xmlBufferFree(buf);
	return r;
}

static int copy_input(const char *xml, size_t len, char **out, size_t *outlen)
{
	*out = malloc(len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, xml, len);
	(*out)[len] = '\0';
	if (outlen)
		*outlen = len;
	return 0;
}

/* Output: the input itself when nothing changed, else the input with the
 * changed values patched in, else (when patching is not safe) libxml2's
 * serialisation of the edited tree. */
static int produce(const char *xml, size_t len, xmlDoc *doc, bool decl, const edit_list *l,
		   char **out, size_t *outlen)
{
	if (l->n == 0)
		return copy_input(xml, len, out, outlen);
	int r = domxml_patch(xml, len, doc, l->e, l->n, out, outlen);
	if (r <= 0)
		return r;
	return serialise(doc, decl, out, outlen);
}

static int rewrite_doc(xmlDoc *doc, bool decl, const char *xml, size_t len, map_entry *e,
		       size_t n, unsigned flags, char **out, size_t *outlen, vgm_error *err)
{
	domxml_scan s;
	int r = domxml_scan_doc(doc, &s, err);
	if (r < 0)
		return r;
	_cleanup_free_ const char **final = calloc(s.info->n_hostdevs + 1, sizeof(*final));
	edit_list l = { 0 };
	if (!final)
		r = vgm_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = check_problems(&s, err);
	if (r == 0)
		r = plan_hostdevs(&s, e, n, flags, final, err);
	if (r == 0)
		r = check_final_unique(final, s.info->n_hostdevs, err);
	if (r == 0 && apply(&s, e, n, &l) < 0)
		r = vgm_error_set(err, ENOMEM, "out of memory while editing the domain XML");
	if (r == 0 && produce(xml, len, doc, decl, &l, out, outlen) < 0)
		r = vgm_error_set(err, EIO, "cannot write the rewritten domain XML");
	for (size_t i = 0; i < l.n; i++)
		free(l.e[i].old);
	free(l.e);
	domxml_scan_done(&s);
	return r;
}

int vgm_domxml_rewrite(const char *xml, size_t len, const vgm_idmap *map, size_t n_map,
		       unsigned flags, char **out, size_t *outlen, vgm_error *err)
{
	_cleanup_free_ map_entry *e = NULL;
	int r = load_map(map, n_map, &e, err);
	if (r < 0)
		return r;
	domxml_quiet q;
	domxml_quiet_begin(&q);
	_cleanup_(domxml_doc_freep) xmlDoc *doc = NULL;
	bool decl = false;
	r = domxml_parse(xml, len, &q, &doc, &decl, err);
	if (r == 0)
		r = rewrite_doc(doc, decl, xml, len, e, n_map, flags, out, outlen, err);
	domxml_quiet_end(&q);
	return r;
}
