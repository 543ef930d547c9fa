/* metadata.c: vgpumig's record of a domain's vGPUs inside <metadata>.
 *
 * In a domain the record reads
 *   <vgpumig:vgpus xmlns:vgpumig="VGM_METADATA_NS" host='host-a'
 *                  driver='550.90.05' ecc='enabled'>
 *     <vgpumig:vgpu id='UUID|dddd:bb:ss.f' kind='mdev|vf' profile='NVIDIA A100-4C'
 *                   type='nvidia-471' framebuffer='4294967296' lab='yes' nvml='HEX'/>
 *   </vgpumig:vgpus>
 * framebuffer is in bytes; lab='yes' marks an emulated vGPU declared by the
 * lab (no hostdev behind it).  host, driver and ecc are the source's facts and
 * nvml its NVML vGPU metadata, recorded so a target reached by plain virsh
 * can run the same checks as `vgpumig check` (all optional; an ecc or nvml
 * value of the wrong shape is dropped with a problem, never trusted).  Elements are matched by namespace URI, so any
 * prefix works.  Entries that cannot be trusted (bad id, unknown kind) are
 * reported as problems and left out of the list, so callers only ever see
 * canonical ids.
 *
 * vgm_domxml_format_metadata writes the element for virDomainSetMetadata,
 * which wants it WITHOUT prefix or namespace declaration ("<vgpus>...");
 * libvirt puts it in the namespace given as uri= with the prefix given as
 * key= (checked against libvirt 9.0: a prefixed element gets the prefix
 * twice, a declared namespace is refused). */
#include <string.h>

#include <libxml/xmlsave.h>

#include "compat/nvml.h"
#include "domxml-internal.h"
#include "util/validate.h"

int domxml_scan_metadata(xmlXPathContext *xp, domxml_scan *s);

static bool hex_ok(const char *s)
{
	size_t n = strlen(s);
	return n && n % 2 == 0 && n <= 2 * VGM_NVML_BLOB_MAX &&
	       strspn(s, "0123456789abcdef") == n;
}

/* host, driver and ecc on <vgpus>: short printable text, ecc one of three. */
static int read_source(xmlNode *root, vgm_domain_info *d)
{
	vgm_meta_source *src = &d->meta_source;
	src->host = domxml_attr(root, "host");
	src->driver_version = domxml_attr(root, "driver");
	src->ecc = domxml_attr(root, "ecc");
	if (src->host && !vgm_name_valid(src->host))
		free(TAKE_PTR(src->host));
	if (src->driver_version && (strlen(src->driver_version) > 64 ||
				    strspn(src->driver_version, "0123456789.") != strlen(src->driver_version)))
		free(TAKE_PTR(src->driver_version));
	if (src->ecc && !STREQ(src->ecc, "enabled") && !STREQ(src->ecc, "disabled") &&
	    !STREQ(src->ecc, "mixed")) {
		free(TAKE_PTR(src->ecc));
		return domxml_add_problem(d, "vgpumig metadata has ecc that is not 'enabled', "
					  "'disabled' or 'mixed'");
	}
	return 0;
}

static bool kind_fits(const char *kind, const char *id)
{
	return (STREQ(kind, "mdev") && vgm_uuid_valid(id)) ||
	       (STREQ(kind, "vf") && vgm_pci_addr_valid(id));
}

/* Fill *m from one element; 1 = keep, 0 = skipped with a problem. */
static int read_entry(xmlNode *n, vgm_meta_vgpu *m, vgm_domain_info *d)
{
	_cleanup_free_ char *id = domxml_attr(n, "id");
	_cleanup_free_ char *kind = domxml_attr(n, "kind");
	_cleanup_free_ char *fb = domxml_attr(n, "framebuffer");
	_cleanup_free_ char *lab = domxml_attr(n, "lab");
	if (!id || (!vgm_uuid_valid(id) && !vgm_pci_addr_valid(id)))
		return domxml_add_problem(d, "vgpumig metadata entry has an invalid id '%.64s'",
					  id ? id : "");
	vgm_id_normalize(id, id, strlen(id) + 1);
	if (!kind)
		kind = strdup(vgm_uuid_valid(id) ? "mdev" : "vf");
	if (!kind)
		return -ENOMEM;
	if (!kind_fits(kind, id))
		return domxml_add_problem(d,
					  "vgpumig metadata entry %s has kind '%.16s'; use 'mdev' "
					  "for a UUID or 'vf' for a PCI address",
					  id, kind);
	unsigned long long bytes = 0;
	if (fb && domxml_parse_uint(fb, UINT64_MAX, &bytes) < 0 &&
	    domxml_add_problem(d, "vgpumig metadata entry %s has framebuffer='%.32s', not a "
			       "number of bytes", id, fb) < 0)
		return -ENOMEM;
	m->framebuffer_bytes = bytes;
	m->lab = lab && STREQ(lab, "yes");
	m->profile_name = domxml_attr(n, "profile");
	m->type_id = domxml_attr(n, "type");
	m->nvml_metadata = domxml_attr(n, "nvml");
	if (m->nvml_metadata && !hex_ok(m->nvml_metadata)) {
		free(TAKE_PTR(m->nvml_metadata));
		if (domxml_add_problem(d, "vgpumig metadata entry %s has an nvml value that is not "
				       "lowercase hex of at most %d bytes", id, VGM_NVML_BLOB_MAX) < 0)
			return -ENOMEM;
	}
	m->id = TAKE_PTR(id);
	m->kind = TAKE_PTR(kind);
	return 1;
}

static int report_entry(vgm_domain_info *d, const vgm_meta_vgpu *m, bool twice, bool attached)
{
	if (twice)
		return domxml_add_problem(d, "vgpumig metadata lists vGPU %s twice", m->id);
	if (!m->lab && !attached)
		return domxml_add_problem(d,
					  "vgpumig metadata lists vGPU %s, but no hostdev of the "
					  "domain has that id (only lab='yes' entries may stand "
					  "alone)",
					  m->id);
	return 0;
}

/* A non-lab entry must describe a hostdev of the domain, and no id twice. */
static int check_entries(domxml_scan *s)
{
	vgm_domain_info *d = s->info;
	_cleanup_free_ const char **hids = domxml_hostdev_ids(d);
	_cleanup_free_ const char **mids = calloc(d->n_meta + 1, sizeof(*mids));
	_cleanup_free_ domxml_id_ref *h = NULL, *m = NULL;
	size_t nh, nm;
	if (!hids || !mids)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_meta; i++)
		mids[i] = d->meta[i].id;
	if (domxml_sort_ids(hids, d->n_hostdevs, &h, &nh) < 0 ||
	    domxml_sort_ids(mids, d->n_meta, &m, &nm) < 0)
		return -ENOMEM;
	/* sorted by (id, index): an entry whose predecessor has its id is a repeat */
	for (size_t i = 0; i < nm; i++) {
		bool twice = i > 0 && STREQ(m[i].id, m[i - 1].id);
		if (i > 1 && twice && STREQ(m[i].id, m[i - 2].id))
			continue; /* say it once */
		int r = report_entry(d, &d->meta[m[i].index], twice,
				     domxml_sorted_has(h, nh, m[i].id));
		if (r < 0)
			return r;
	}
	return 0;
}

int domxml_scan_metadata(xmlXPathContext *xp, domxml_scan *s)
{
	_cleanup_(domxml_xpath_obj_freep) xmlXPathObject *o =
		domxml_xpath(xp, NULL, "/domain/metadata/vgm:vgpus/vgm:vgpu");
	int nr = o ? o->nodesetval->nodeNr : 0;
	if (nr == 0)
		return 0;
	vgm_domain_info *d = s->info;
	if (read_source(o->nodesetval->nodeTab[0]->parent, d) < 0)
		return -ENOMEM;
	d->meta = calloc((size_t)nr, sizeof(*d->meta));
	s->meta_node = calloc((size_t)nr, sizeof(*s->meta_node));
	if (!d->meta || !s->meta_node)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		xmlNode *n = o->nodesetval->nodeTab[i];
		int r = read_entry(n, &d->meta[d->n_meta], d);
		if (r < 0)
			return r;
		if (r > 0)
			s->meta_node[d->n_meta++] = n;
	}
	return check_entries(s);
}

static int check_format_input(const vgm_meta_vgpu *m, vgm_error *err)
{
	if (!m->id || !m->kind || !kind_fits(m->kind, m->id))
		return vgm_error_setr(err, EINVAL, "invalid_id",
				      "metadata vGPU '%.64s' of kind '%.16s' is not valid: kind "
				      "'mdev' needs a UUID, kind 'vf' a PCI address",
				      m->id ? m->id : "", m->kind ? m->kind : "");
	return 0;
}

static int add_entry(xmlNode *root, const vgm_meta_vgpu *m)
{
	char fb[32], id[VGM_UUID_LEN + 1];
	snprintf(fb, sizeof(fb), "%llu", (unsigned long long)m->framebuffer_bytes);
	vgm_id_normalize(m->id, id, sizeof(id));
	xmlNode *n = xmlNewChild(root, NULL, BAD_CAST "vgpu", NULL);
	if (!n || !xmlNewProp(n, BAD_CAST "id", BAD_CAST id) ||
	    !xmlNewProp(n, BAD_CAST "kind", BAD_CAST m->kind) ||
	    (m->profile_name && !xmlNewProp(n, BAD_CAST "profile", BAD_CAST m->profile_name)) ||
	    (m->type_id && !xmlNewProp(n, BAD_CAST "type", BAD_CAST m->type_id)) ||
	    !xmlNewProp(n, BAD_CAST "framebuffer", BAD_CAST fb) ||
	    (m->lab && !xmlNewProp(n, BAD_CAST "lab", BAD_CAST "yes")) ||
	    (m->nvml_metadata && !xmlNewProp(n, BAD_CAST "nvml", BAD_CAST m->nvml_metadata)))
		return -ENOMEM;
	return 0;
}

static int add_source(xmlNode *root, const vgm_meta_source *src)
{
	if (!src)
		return 0;
	if ((src->host && !xmlNewProp(root, BAD_CAST "host", BAD_CAST src->host)) ||
	    (src->driver_version &&
	     !xmlNewProp(root, BAD_CAST "driver", BAD_CAST src->driver_version)) ||
	    (src->ecc && !xmlNewProp(root, BAD_CAST "ecc", BAD_CAST src->ecc)))
		return -ENOMEM;
	return 0;
}

static int dump_element(xmlDoc *doc, char **out)
{
	xmlBuffer *buf = xmlBufferCreate();
	if (!buf)
		return -ENOMEM;
	xmlSaveCtxt *save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL);
	int r = -ENOMEM;
	if (save) {
		long w = xmlSaveTree(save, xmlDocGetRootElement(doc));
		if (xmlSaveClose(save) >= 0 && w >= 0) {
			*out = strdup((const char *)xmlBufferContent(buf));
			r = *out ? 0 : -ENOMEM;
		}
	}
	xmlBufferFree(buf);
	return r;
}

int vgm_domxml_format_metadata(const vgm_meta_vgpu *v, size_t n, char **out, vgm_error *err)
{
	return vgm_domxml_format_metadata_src(NULL, v, n, out, err);
}

int vgm_domxml_format_metadata_src(const vgm_meta_source *src, const vgm_meta_vgpu *v, size_t n,
				   char **out, vgm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (check_format_input(&v[i], err) < 0)
			return -EINVAL;
	domxml_quiet q;
	domxml_quiet_begin(&q);
	_cleanup_(domxml_doc_freep) xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNode *root = doc ? xmlNewDocNode(doc, NULL, BAD_CAST "vgpus", NULL) : NULL;
	int r = root ? add_source(root, src) : -ENOMEM;
	if (root)
		xmlDocSetRootElement(doc, root);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = add_entry(root, &v[i]);
	if (r == 0)
		r = dump_element(doc, out);
	domxml_quiet_end(&q);
	if (r < 0)
		return vgm_error_set(err, -r, "cannot build the vgpumig metadata element");
	return 0;
}
