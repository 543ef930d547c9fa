/* disks.c: the host files a domain needs to start, for cold migration's
 * "does the target reach this storage" check (storage is assumed shared).
 *
 * Listed: the source of every file or block <disk> (cdroms without media
 * have none) and the direct-boot <kernel>/<initrd>.  Network disks are
 * left out: they are reached by address, not path.  Firmware (<loader>,
 * <nvram>) is host-local by libvirt's design and is left out too. */
#include <string.h>

#include "domxml-internal.h"

static int add_path(char ***paths, size_t *n, char *p)
{
	if (!p || !p[0] || p[0] != '/') {
		free(p);
		return 0;
	}
	for (size_t i = 0; i < *n; i++)
		if (STREQ((*paths)[i], p)) {
			free(p);
			return 0;
		}
	char **grown = realloc(*paths, (*n + 2) * sizeof(**paths));
	if (!grown) {
		free(p);
		return -ENOMEM;
	}
	*paths = grown;
	grown[(*n)++] = p;
	grown[*n] = NULL;
	return 0;
}

static int collect(xmlXPathContext *xp, char ***paths, size_t *n)
{
	static const char *const exprs[] = {
		"/domain/devices/disk[@type='file']/source/@file",
		"/domain/devices/disk[@type='block']/source/@dev",
		"/domain/os/kernel",
		"/domain/os/initrd",
	};
	for (size_t e = 0; e < ARRAY_SIZE(exprs); e++) {
		_cleanup_(domxml_xpath_obj_freep) xmlXPathObject *o = domxml_xpath(xp, NULL, exprs[e]);
		for (int i = 0; o && i < o->nodesetval->nodeNr; i++)
			if (add_path(paths, n, domxml_text(o->nodesetval->nodeTab[i])) < 0)
				return -ENOMEM;
	}
	return 0;
}

int vgm_domxml_disk_paths(const char *xml, size_t len, char ***out, size_t *n_out, vgm_error *err)
{
	domxml_quiet q;
	domxml_quiet_begin(&q);
	_cleanup_(domxml_doc_freep) xmlDoc *doc = NULL;
	_cleanup_(domxml_xpath_ctx_freep) xmlXPathContext *xp = NULL;
	char **paths = calloc(1, sizeof(*paths));
	size_t n = 0;
	int r = paths ? domxml_parse(xml, len, &q, &doc, NULL, err) : -ENOMEM;
	if (r == 0 && !(xp = xmlXPathNewContext(doc)))
		r = -ENOMEM;
	if (r == 0)
		r = collect(xp, &paths, &n);
	domxml_quiet_end(&q);
	if (r == -ENOMEM)
		vgm_error_set(err, ENOMEM, "out of memory");
	if (r < 0) {
		vgm_strv_free(paths, n);
		return r;
	}
	*out = paths;
	*n_out = n;
	return 0;
}
