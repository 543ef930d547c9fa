/* scan.c: one walk over a parsed domain, shared by inspect and rewrite.
 *
 * Reads, with XPath only: name, uuid, <memory> (in bytes), <vcpu>, every
 * <devices><hostdev mode='subsystem'> of type mdev or pci in document order
 * (other types are not ours and are skipped), <devices><iommu>, and the
 * <vgpumig:vgpu> entries of our metadata namespace (matched by namespace URI,
 * whatever prefix the document uses).  Anything odd becomes a problem
 * sentence, never a failure: only allocation failure fails a scan.
 * Invariants: hostdev ids are canonical (lowercase UUID, "dddd:bb:ss.f") or
 * NULL when missing or invalid; hostdev problems come first in the list so
 * rewrite can refuse on exactly those. */
#include <string.h>

#include "domxml-internal.h"
#include "util/validate.h"

#define NS_PREFIX "vgm"

typedef struct pci_addr {
	unsigned long long v[4]; /* domain, bus, slot, function */
} pci_addr;

static const char *const pci_attr[4] = { "domain", "bus", "slot", "function" };
static const unsigned long long pci_max[4] = { 0xffff, 0xff, 0x1f, 0x7 };

static char *format_pci(const pci_addr *a)
{
	char *s = NULL;
	if (asprintf(&s, "%04llx:%02llx:%02llx.%llx", a->v[0], a->v[1], a->v[2], a->v[3]) < 0)
		return NULL;
	return s;
}

/* Read domain/bus/slot/function of an <address> (absent ones are 0, as in
 * libvirt).  On a bad value returns -EINVAL and names the attribute. */
static int read_pci(xmlNode *n, pci_addr *a, int *bad_attr, char **bad_val)
{
	for (int i = 0; i < 4; i++) {
		_cleanup_free_ char *v = domxml_attr(n, pci_attr[i]);
		a->v[i] = 0;
		if (v && domxml_parse_uint(v, pci_max[i], &a->v[i]) < 0) {
			*bad_attr = i;
			*bad_val = TAKE_PTR(v);
			return -EINVAL;
		}
	}
	return 0;
}

static void describe(char *buf, size_t n, const char *type, size_t index, const char *alias)
{
	if (alias)
		snprintf(buf, n, "%s hostdev #%zu (alias '%.40s')", type, index, alias);
	else
		snprintf(buf, n, "%s hostdev #%zu", type, index);
}

static int push_hostdev(domxml_scan *s, size_t *cap)
{
	vgm_domain_info *d = s->info;
	if (d->n_hostdevs < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	vgm_hostdev *h = reallocarray(d->hostdevs, ncap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	d->hostdevs = h;
	xmlNode **src = reallocarray(s->hostdev_src, ncap, sizeof(*src));
	if (!src)
		return -ENOMEM;
	s->hostdev_src = src;
	*cap = ncap;
	return 0;
}

static int read_guest_side(xmlXPathContext *xp, xmlNode *node, vgm_hostdev *h)
{
	h->alias = domxml_attr(domxml_xpath_first(xp, node, "alias"), "name");
	xmlNode *ga = domxml_xpath_first(xp, node, "address[@type='pci']");
	pci_addr a;
	int bad_attr;
	_cleanup_free_ char *bad_val = NULL;
	if (ga && read_pci(ga, &a, &bad_attr, &bad_val) == 0) {
		h->guest_address = format_pci(&a);
		if (!h->guest_address)
			return -ENOMEM;
	}
	return 0;
}

static int scan_mdev(xmlXPathContext *xp, xmlNode *node, domxml_scan *s, size_t k)
{
	vgm_hostdev *h = &s->info->hostdevs[k];
	xmlNode *src = domxml_xpath_first(xp, node, "source/address");
	s->hostdev_src[k] = src;
	h->model = domxml_attr(node, "model");
	h->display = domxml_attr(node, "display");
	h->ramfb = domxml_attr(node, "ramfb");
	if (read_guest_side(xp, node, h) < 0)
		return -ENOMEM;

	char what[96];
	describe(what, sizeof(what), "mdev", k + 1, h->alias);
	_cleanup_free_ char *uuid = domxml_attr(src, "uuid");
	if (!uuid)
		return domxml_add_problem(s->info,
					  "%s has no <source><address uuid='...'/>; add the UUID of "
					  "its mediated device",
					  what);
	if (!vgm_uuid_valid(uuid))
		return domxml_add_problem(s->info, "%s has an invalid source uuid '%.64s'", what,
					  uuid);
	vgm_id_normalize(uuid, uuid, strlen(uuid) + 1);
	h->id = TAKE_PTR(uuid);
	return 0;
}

static int scan_pci(xmlXPathContext *xp, xmlNode *node, domxml_scan *s, size_t k)
{
	vgm_hostdev *h = &s->info->hostdevs[k];
	xmlNode *src = domxml_xpath_first(xp, node, "source/address");
	s->hostdev_src[k] = src;
	_cleanup_free_ char *managed = domxml_attr(node, "managed");
	h->managed = managed && STREQ(managed, "yes");
	if (read_guest_side(xp, node, h) < 0)
		return -ENOMEM;

	char what[96];
	describe(what, sizeof(what), "pci", k + 1, h->alias);
	if (!src)
		return domxml_add_problem(s->info, "%s has no <source><address .../>", what);
	pci_addr a;
	int bad = 0;
	_cleanup_free_ char *bad_val = NULL;
	if (read_pci(src, &a, &bad, &bad_val) < 0)
		return domxml_add_problem(s->info,
					  "%s has an invalid source address: %s='%.32s' (a number "
					  "from 0 to 0x%llx)",
					  what, pci_attr[bad], bad_val, pci_max[bad]);
	h->id = format_pci(&a);
	return h->id ? 0 : -ENOMEM;
}

static int scan_one_hostdev(xmlXPathContext *xp, xmlNode *node, domxml_scan *s, size_t *cap)
{
	_cleanup_free_ char *mode = domxml_attr(node, "mode");
	_cleanup_free_ char *type = domxml_attr(node, "type");
	if ((mode && !STREQ(mode, "subsystem")) || !type)
		return 0;
	bool mdev = STREQ(type, "mdev");
	if (!mdev && !STREQ(type, "pci"))
		return 0; /* usb, scsi, scsi_host: not vGPUs */
	if (push_hostdev(s, cap) < 0)
		return -ENOMEM;
	/* counted before filling so vgm_domain_info_free sees every string */
	size_t k = s->info->n_hostdevs++;
	vgm_hostdev *h = &s->info->hostdevs[k];
	memset(h, 0, sizeof(*h));
	h->type = mdev ? VGM_HOSTDEV_MDEV : VGM_HOSTDEV_PCI;
	s->hostdev_src[k] = NULL;
	return mdev ? scan_mdev(xp, node, s, k) : scan_pci(xp, node, s, k);
}

const char **domxml_hostdev_ids(const vgm_domain_info *d)
{
	const char **ids = calloc(d->n_hostdevs + 1, sizeof(*ids));
	for (size_t i = 0; ids && i < d->n_hostdevs; i++)
		ids[i] = d->hostdevs[i].id;
	return ids;
}

/* Report every id used by more than one hostdev, once, in sorted order. */
static int check_duplicates(domxml_scan *s)
{
	vgm_domain_info *d = s->info;
	_cleanup_free_ const char **ids = domxml_hostdev_ids(d);
	_cleanup_free_ domxml_id_ref *refs = NULL;
	size_t n;
	if (!ids || domxml_sort_ids(ids, d->n_hostdevs, &refs, &n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && STREQ(refs[j].id, refs[i].id))
			j++;
		if (j - i > 1) {
			bool mdev = d->hostdevs[refs[i].index].type == VGM_HOSTDEV_MDEV;
			int r = domxml_add_problem(d,
						   "%s %s is used by %zu hostdevs (#%zu and #%zu); a "
						   "device can be attached only once",
						   mdev ? "mdev uuid" : "pci address", refs[i].id,
						   j - i, refs[i].index + 1, refs[i + 1].index + 1);
			if (r < 0)
				return r;
		}
		i = j;
	}
	return 0;
}

static int scan_hostdevs(xmlXPathContext *xp, domxml_scan *s)
{
	_cleanup_(domxml_xpath_obj_freep) xmlXPathObject *o =
		domxml_xpath(xp, NULL, "/domain/devices/hostdev");
	size_t cap = 0;
	int nr = o ? o->nodesetval->nodeNr : 0;
	for (int i = 0; i < nr; i++) {
		int r = scan_one_hostdev(xp, o->nodesetval->nodeTab[i], s, &cap);
		if (r < 0)
			return r;
	}
	return check_duplicates(s);
}

static int scan_memory(xmlXPathContext *xp, vgm_domain_info *d)
{
	xmlNode *mem = domxml_xpath_first(xp, NULL, "/domain/memory");
	if (!mem)
		return domxml_add_problem(d, "domain has no <memory> element");
	_cleanup_free_ char *text = domxml_text(mem);
	_cleanup_free_ char *unit = domxml_attr(mem, "unit");
	if (!text)
		return -ENOMEM;
	unsigned long long v;
	int r = domxml_parse_uint(text, UINT64_MAX, &v);
	if (r == 0)
		r = domxml_scale_memory(v, unit, &d->memory_bytes);
	if (r < 0)
		return domxml_add_problem(d, "domain <memory unit='%.16s'>%.32s</memory> is not a "
					  "size libvirt accepts",
					  unit ? unit : "KiB", text);
	return 0;
}

static int scan_basics(xmlXPathContext *xp, vgm_domain_info *d)
{
	d->name = domxml_text(domxml_xpath_first(xp, NULL, "/domain/name"));
	d->uuid = domxml_text(domxml_xpath_first(xp, NULL, "/domain/uuid"));
	d->viommu = domxml_xpath_first(xp, NULL, "/domain/devices/iommu") != NULL;
	d->vcpus = 1; /* libvirt's default without <vcpu> */
	xmlNode *vcpu = domxml_xpath_first(xp, NULL, "/domain/vcpu");
	if (vcpu) {
		_cleanup_free_ char *text = domxml_text(vcpu);
		unsigned long long v;
		if (!text)
			return -ENOMEM;
		if (domxml_parse_uint(text, UINT32_MAX, &v) < 0 || v == 0) {
			d->vcpus = 0;
			if (domxml_add_problem(d, "domain <vcpu>%.32s</vcpu> is not a vCPU count",
					       text) < 0)
				return -ENOMEM;
		} else
			d->vcpus = (unsigned)v;
	}
	if (!d->name && domxml_add_problem(d, "domain has no <name> element") < 0)
		return -ENOMEM;
	return scan_memory(xp, d);
}

/* metadata.c */
int domxml_scan_metadata(xmlXPathContext *xp, domxml_scan *s);

int domxml_scan_doc(xmlDoc *doc, domxml_scan *s, vgm_error *err)
{
	memset(s, 0, sizeof(*s));
	s->info = calloc(1, sizeof(*s->info));
	_cleanup_(domxml_xpath_ctx_freep) xmlXPathContext *xp = xmlXPathNewContext(doc);
	if (!s->info || !xp ||
	    xmlXPathRegisterNs(xp, BAD_CAST NS_PREFIX, BAD_CAST VGM_METADATA_NS) != 0)
		goto oom;
	if (scan_hostdevs(xp, s) < 0)
		goto oom;
	s->n_hostdev_problems = s->info->n_problems;
	if (scan_basics(xp, s->info) < 0 || domxml_scan_metadata(xp, s) < 0)
		goto oom;
	return 0;
oom:
	domxml_scan_done(s);
	return vgm_error_set(err, ENOMEM, "out of memory while reading the domain XML");
}

void domxml_scan_done(domxml_scan *s)
{
	vgm_domain_info_free(s->info);
	free(s->hostdev_src);
	free(s->meta_node);
	memset(s, 0, sizeof(*s));
}
