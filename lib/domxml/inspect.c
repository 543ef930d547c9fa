/* inspect.c: vgm_domxml_inspect, the read-only view of a domain.
 *
 * A domain that parses always inspects: what is wrong with it for migration
 * (an mdev without uuid, a device attached twice) is listed in problems
 * rather than failing, so an operator sees all of it at once.  Only input
 * that is not a domain at all (malformed, too large, DTD, other root) fails. */
#include <string.h>

#include "domxml-internal.h"

void vgm_domain_info_free(vgm_domain_info *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->uuid);
	for (size_t i = 0; i < d->n_hostdevs; i++) {
		vgm_hostdev *h = &d->hostdevs[i];
		free(h->id);
		free(h->model);
		free(h->display);
		free(h->ramfb);
		free(h->alias);
		free(h->guest_address);
	}
	free(d->hostdevs);
	for (size_t i = 0; i < d->n_meta; i++) {
		free(d->meta[i].id);
		free(d->meta[i].kind);
		free(d->meta[i].profile_name);
		free(d->meta[i].type_id);
		free(d->meta[i].nvml_metadata);
	}
	free(d->meta);
	free(d->meta_source.host);
	free(d->meta_source.driver_version);
	free(d->meta_source.ecc);
	for (size_t i = 0; i < d->n_problems; i++)
		free(d->problems[i]);
	free(d->problems);
	free(d);
}

int vgm_domxml_inspect(const char *xml, size_t len, vgm_domain_info **out, vgm_error *err)
{
	domxml_quiet q;
	domxml_quiet_begin(&q);
	_cleanup_(domxml_doc_freep) xmlDoc *doc = NULL;
	domxml_scan s;
	int r = domxml_parse(xml, len, &q, &doc, NULL, err);
	if (r == 0)
		r = domxml_scan_doc(doc, &s, err);
	if (r == 0) {
		*out = TAKE_PTR(s.info);
		domxml_scan_done(&s);
	}
	domxml_quiet_end(&q);
	return r;
}
