/* test-domxml.c: lib/domxml against golden files and hostile input.
 *
 * Golden cases: every tests/data/domxml/NAME.xml has golden/NAME.inspect.json
 * (exactly what `vgpumig xml inspect --json` prints); when NAME.map exists
 * (lines SRC=DST, "allow-unmapped", '#' comments) its rewrite result is
 * golden/NAME.rewrite.xml, or golden/NAME.rewrite.err ("reason: message")
 * when the rewrite must be refused.  VGPUMIG_REGENERATE=1 rewrites the
 * golden files instead of comparing (review the diff before committing).
 *
 * Beyond the goldens, every successful rewrite is checked to change nothing
 * but the mapped ids: mapping the output back gives a document whose
 * canonical form (C14N, with host ids lowercased) equals the input's, and
 * inspect of the output equals inspect of the input with ids mapped. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "domxml/domxml.h"
#include "util/fs.h"
#include "util/validate.h"

#define MAX_MAP 16

static char data_dir[4096];

static void find_data_dir(void)
{
	const char *src = getenv("VGPUMIG_SRC");
	if (src)
		snprintf(data_dir, sizeof(data_dir), "%s/tests/data/domxml", src);
	else
		snprintf(data_dir, sizeof(data_dir), "../data/domxml");
}

static bool regenerate(void)
{
	const char *r = getenv("VGPUMIG_REGENERATE");
	return r && STREQ(r, "1");
}

static char *read_data(const char *name, size_t *len)
{
	char path[8192];
	char *buf = NULL;
	snprintf(path, sizeof(path), "%s/%s", data_dir, name);
	if (vgm_read_file(path, VGM_DOMXML_MAX * 2, &buf, len) < 0)
		return NULL;
	return buf;
}

static void write_data(const char *name, const char *buf, size_t len)
{
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", data_dir, name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void remove_data(const char *name)
{
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", data_dir, name);
	unlink(path);
}

/* Compare with (or regenerate) a golden file; false on mismatch. */
static bool check_golden(const char *name, const char *got, size_t len, const char *stale)
{
	if (regenerate()) {
		write_data(name, got, len);
		if (stale)
			remove_data(stale);
		return true;
	}
	size_t glen = 0;
	_cleanup_free_ char *want = read_data(name, &glen);
	if (!want) {
		print_error("golden file %s/%s is missing (run with VGPUMIG_REGENERATE=1)\n",
			    data_dir, name);
		return false;
	}
	if (glen != len || memcmp(want, got, len) != 0) {
		print_error("golden mismatch for %s; got:\n%.*s\n", name, (int)len, got);
		return false;
	}
	return true;
}

typedef struct map_file {
	char buf[MAX_MAP][80];
	vgm_idmap map[MAX_MAP];
	size_t n;
	unsigned flags;
} map_file;

static bool load_map(const char *name, map_file *m)
{
	size_t len = 0;
	_cleanup_free_ char *text = read_data(name, &len);
	memset(m, 0, sizeof(*m));
	if (!text)
		return false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (STREQ(line, "allow-unmapped")) {
			m->flags |= VGM_REWRITE_ALLOW_UNMAPPED;
			continue;
		}
		assert_true(m->n < MAX_MAP);
		snprintf(m->buf[m->n], sizeof(m->buf[m->n]), "%s", line);
		char *eq = strchr(m->buf[m->n], '=');
		assert_non_null(eq);
		*eq = '\0';
		m->map[m->n] = (vgm_idmap){ m->buf[m->n], eq + 1 };
		m->n++;
	}
	return true;
}

static char *info_json(const vgm_domain_info *d, size_t *len)
{
	json_t *j = vgm_domain_info_to_json(d);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	assert_non_null(s);
	char *out = NULL;
	assert_true(asprintf(&out, "%s\n", s) > 0);
	free(s);
	*len = strlen(out);
	return out;
}

/* C14N of a document with mdev uuids and metadata ids lowercased, so that
 * "same document" ignores only the spelling rewrite canonicalises. */
static char *canonical(const char *xml, size_t len)
{
	xmlDoc *doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET);
	assert_non_null(doc);
	xmlXPathContext *xp = xmlXPathNewContext(doc);
	xmlXPathRegisterNs(xp, BAD_CAST "v", BAD_CAST VGM_METADATA_NS);
	xmlXPathObject *o = xmlXPathEvalExpression(
		BAD_CAST "/domain/devices/hostdev/source/address/@uuid | //v:vgpu/@id", xp);
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlAttr *a = (xmlAttr *)o->nodesetval->nodeTab[i];
		xmlChar *v = xmlNodeGetContent((xmlNode *)a);
		char low[64];
		vgm_id_normalize((const char *)v, low, sizeof(low));
		xmlSetProp(a->parent, a->name, BAD_CAST low);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(xp);
	xmlChar *c14n = NULL;
	assert_true(xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 1, &c14n) > 0);
	char *out = strdup((const char *)c14n);
	xmlFree(c14n);
	xmlFreeDoc(doc);
	return out;
}

static const char *mapped(const map_file *m, const char *id)
{
	char low[64];
	if (!id)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		vgm_id_normalize(m->map[i].src, low, sizeof(low));
		if (STREQ(low, id))
			return m->map[i].dst;
	}
	return id;
}

static bool same_id(const char *a, const char *b)
{
	char x[64], y[64];
	if (!a || !b)
		return a == b;
	vgm_id_normalize(a, x, sizeof(x));
	vgm_id_normalize(b, y, sizeof(y));
	return STREQ(x, y);
}

/* The output must differ from the input in the mapped ids only. */
static void check_only_ids_changed(const char *in, size_t inlen, const char *out, size_t outlen,
				   const map_file *m)
{
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *a = NULL, *b = NULL;
	assert_int_equal(vgm_domxml_inspect(in, inlen, &a, NULL), 0);
	assert_int_equal(vgm_domxml_inspect(out, outlen, &b, NULL), 0);
	assert_int_equal(a->n_hostdevs, b->n_hostdevs);
	for (size_t i = 0; i < a->n_hostdevs; i++) {
		assert_true(same_id(b->hostdevs[i].id, mapped(m, a->hostdevs[i].id)));
		assert_true(STRPTR_EQ(a->hostdevs[i].guest_address, b->hostdevs[i].guest_address));
		assert_true(STRPTR_EQ(a->hostdevs[i].alias, b->hostdevs[i].alias));
		assert_true(STRPTR_EQ(a->hostdevs[i].model, b->hostdevs[i].model));
	}
	assert_int_equal(a->n_meta, b->n_meta);
	for (size_t i = 0; i < a->n_meta; i++)
		assert_true(same_id(b->meta[i].id, mapped(m, a->meta[i].id)));

	/* map back and compare canonical forms */
	vgm_idmap back[MAX_MAP];
	for (size_t i = 0; i < m->n; i++)
		back[i] = (vgm_idmap){ m->map[i].dst, m->map[i].src };
	_cleanup_free_ char *again = NULL;
	size_t againlen = 0;
	vgm_error err = { 0 };
	int r = vgm_domxml_rewrite(out, outlen, back, m->n, VGM_REWRITE_ALLOW_UNMAPPED, &again,
				   &againlen, &err);
	if (r < 0)
		fail_msg("mapping back failed: %s", err.message);
	_cleanup_free_ char *c1 = canonical(in, inlen), *c2 = canonical(again, againlen);
	assert_string_equal(c1, c2);
}

static bool run_rewrite_case(const char *base, const char *in, size_t inlen)
{
	char name[512], golden[600], other[600];
	map_file m;
	snprintf(name, sizeof(name), "%s.map", base);
	if (!load_map(name, &m))
		return true;
	_cleanup_free_ char *out = NULL;
	size_t outlen = 0;
	vgm_error err = { 0 };
	int r = vgm_domxml_rewrite(in, inlen, m.map, m.n, m.flags, &out, &outlen, &err);
	snprintf(golden, sizeof(golden), "golden/%s.rewrite.%s", base, r < 0 ? "err" : "xml");
	snprintf(other, sizeof(other), "golden/%s.rewrite.%s", base, r < 0 ? "xml" : "err");
	if (r < 0) {
		char msg[700];
		int n = snprintf(msg, sizeof(msg), "%s: %s\n", err.reason, err.message);
		return check_golden(golden, msg, (size_t)n, other);
	}
	assert_int_equal(strlen(out), outlen);
	check_only_ids_changed(in, inlen, out, outlen, &m);
	return check_golden(golden, out, outlen, other);
}

/* With nothing to change, rewrite returns the input byte for byte. */
static void check_identity(const char *in, size_t inlen, const vgm_domain_info *d)
{
	bool sound = true;
	for (size_t i = 0; i < d->n_hostdevs; i++)
		sound &= d->hostdevs[i].id != NULL;
	_cleanup_free_ char *out = NULL;
	size_t outlen = 0;
	int r = vgm_domxml_rewrite(in, inlen, NULL, 0, VGM_REWRITE_ALLOW_UNMAPPED, &out, &outlen,
				   NULL);
	if (!sound || d->n_problems > 0)
		return; /* may be refused; covered by the goldens */
	assert_int_equal(r, 0);
	assert_int_equal(outlen, inlen);
	assert_memory_equal(out, in, inlen);
}

static bool run_case(const char *file)
{
	char base[256], name[600];
	snprintf(base, sizeof(base), "%.*s", (int)(strlen(file) - 4), file);
	size_t inlen = 0;
	_cleanup_free_ char *in = read_data(file, &inlen);
	assert_non_null(in);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	vgm_error err = { 0 };
	if (vgm_domxml_inspect(in, inlen, &d, &err) < 0)
		fail_msg("%s: inspect failed: %s", file, err.message);
	size_t jlen = 0;
	_cleanup_free_ char *json = info_json(d, &jlen);
	snprintf(name, sizeof(name), "golden/%s.inspect.json", base);
	bool ok = check_golden(name, json, jlen, NULL);
	check_identity(in, inlen, d);
	return run_rewrite_case(base, in, inlen) && ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void **state)
{
	(void)state;
	DIR *dir = opendir(data_dir);
	assert_non_null(dir);
	char *names[256];
	size_t n = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		size_t len = strlen(e->d_name);
		if (len > 4 && STREQ(e->d_name + len - 4, ".xml") && n < ARRAY_SIZE(names))
			names[n++] = strdup(e->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), cmp_str);
	assert_true(n >= 15); /* the cases of docs/cli-xml.md are all there */
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!run_case(names[i])) {
			print_error("case %s failed\n", names[i]);
			failed++;
		}
		free(names[i]);
	}
	if (failed)
		fail_msg("%zu of %zu golden cases differ", failed, n);
}

/* ---- hostile and malformed input ---- */

/* Run fn with stderr captured; returns what was written to it. */
static size_t stderr_bytes_during(void (*fn)(void))
{
	char path[] = "/tmp/vgm-domxml-stderr-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	return (size_t)st.st_size;
}

static void expect_inspect_error(const char *xml, int code, const char *reason, const char *part)
{
	vgm_domain_info *d = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_domxml_inspect(xml, strlen(xml), &d, &err), -code);
	assert_null(d);
	assert_string_equal(err.reason, reason);
	if (part && !strstr(err.message, part))
		fail_msg("message '%s' lacks '%s'", err.message, part);
	char *out = NULL;
	assert_int_equal(vgm_domxml_rewrite(xml, strlen(xml), NULL, 0, 0, &out, NULL, &err), -code);
	assert_null(out);
}

static const char billion_laughs[] =
	"<?xml version='1.0'?>\n<!DOCTYPE domain [\n <!ENTITY a 'aaaaaaaaaa'>\n"
	" <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n <!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n"
	" <!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n <!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>\n"
	" <!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>\n <!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>\n"
	" <!ENTITY h '&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;'>\n <!ENTITY i '&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;'>\n"
	"]>\n<domain type='kvm'><name>&i;</name><memory>1</memory></domain>\n";

static void hostile_inputs(void)
{
	expect_inspect_error("<domain><name>x</name>", EINVAL, "malformed_xml", "line 1");
	expect_inspect_error("<domain>\n<name>x</nam></domain>", EINVAL, "malformed_xml",
			     "line 2");
	expect_inspect_error("<domain><name>&undeclared;</name></domain>", EINVAL,
			     "malformed_xml", "undeclared");
	expect_inspect_error("", EINVAL, "malformed_xml", "empty");
	expect_inspect_error("<?xml version='1.0'?>", EINVAL, "malformed_xml", NULL);
	expect_inspect_error(billion_laughs, EINVAL, "dtd_refused", "must not contain a DTD");
	expect_inspect_error("<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
			     "<domain><name>&x;</name></domain>",
			     EINVAL, "dtd_refused", NULL);
	expect_inspect_error("<!DOCTYPE domain SYSTEM 'http://198.51.100.9/domain.dtd'>"
			     "<domain><name>x</name></domain>",
			     EINVAL, "dtd_refused", NULL);
	expect_inspect_error("<domcapabilities/>", EINVAL, "not_a_domain", "<domcapabilities>");
	expect_inspect_error("<x:domain xmlns:x='urn:x'/>", EINVAL, "not_a_domain", NULL);
	expect_inspect_error("<domain><name>\xff\xfe</name></domain>", EINVAL, "malformed_xml",
			     NULL);
}

static void test_hostile(void **state)
{
	(void)state;
	/* libxml2 must say nothing on stderr: its words go into vgm_error */
	assert_int_equal(stderr_bytes_during(hostile_inputs), 0);
}

static void test_size_limit(void **state)
{
	(void)state;
	static const char head[] = "<domain><name>big</name><memory>1</memory><!--";
	static const char tail[] = "--></domain>";
	char *buf = malloc(VGM_DOMXML_MAX + 2);
	assert_non_null(buf);
	memset(buf, 'x', VGM_DOMXML_MAX + 1);
	memcpy(buf, head, strlen(head));
	memcpy(buf + VGM_DOMXML_MAX - strlen(tail), tail, strlen(tail));
	/* exactly at the limit: accepted */
	vgm_domain_info *d = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_domxml_inspect(buf, VGM_DOMXML_MAX, &d, &err), 0);
	assert_string_equal(d->name, "big");
	vgm_domain_info_free(d);
	d = NULL;
	/* one byte more: refused before parsing */
	assert_int_equal(vgm_domxml_inspect(buf, VGM_DOMXML_MAX + 1, &d, &err), -EFBIG);
	assert_string_equal(err.reason, "too_large");
	assert_null(d);
	char *out = NULL;
	assert_int_equal(vgm_domxml_rewrite(buf, VGM_DOMXML_MAX + 1, NULL, 0, 0, &out, NULL, &err),
			 -EFBIG);
	free(buf);
}

/* ---- memory units and small documents ---- */

static vgm_domain_info *inspect_str(const char *xml)
{
	vgm_domain_info *d = NULL;
	vgm_error err = { 0 };
	if (vgm_domxml_inspect(xml, strlen(xml), &d, &err) < 0)
		fail_msg("inspect failed: %s", err.message);
	return d;
}

static void test_memory_units(void **state)
{
	(void)state;
	static const struct {
		const char *unit;
		uint64_t bytes_for_3;
	} cases[] = {
		{ NULL, 3ull << 10 },	       { "b", 3 },		    { "bytes", 3 },
		{ "KB", 3000 },		       { "k", 3ull << 10 },	    { "KiB", 3ull << 10 },
		{ "MB", 3000000 },	       { "M", 3ull << 20 },	    { "MiB", 3ull << 20 },
		{ "GB", 3000000000ull },       { "G", 3ull << 30 },	    { "GiB", 3ull << 30 },
		{ "TB", 3000000000000ull },    { "T", 3ull << 40 },	    { "TiB", 3ull << 40 },
		{ "mib", 3ull << 20 },	       { "PiB", 3ull << 50 },	    { "EiB", 3ull << 60 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char xml[256];
		if (cases[i].unit)
			snprintf(xml, sizeof(xml),
				 "<domain><name>m</name><memory unit='%s'> 3 </memory></domain>",
				 cases[i].unit);
		else
			snprintf(xml, sizeof(xml),
				 "<domain><name>m</name><memory>3</memory></domain>");
		_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = inspect_str(xml);
		assert_int_equal(d->memory_bytes, cases[i].bytes_for_3);
		assert_int_equal(d->n_problems, 0);
		assert_int_equal(d->vcpus, 1); /* libvirt's default without <vcpu> */
	}
	static const char *const bad[] = {
		"<domain><name>m</name><memory unit='parsecs'>3</memory></domain>",
		"<domain><name>m</name><memory unit='EiB'>16</memory></domain>", /* 2^64 */
		"<domain><name>m</name><memory>-1</memory></domain>",
		"<domain><name>m</name><memory>12abc</memory></domain>",
		"<domain><name>m</name></domain>",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = inspect_str(bad[i]);
		assert_int_equal(d->memory_bytes, 0);
		assert_int_equal(d->n_problems, 1);
		assert_non_null(strstr(d->problems[0], "memory"));
	}
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *v =
		inspect_str("<domain><name>v</name><memory>1</memory><vcpu>zero</vcpu></domain>");
	assert_int_equal(v->vcpus, 0);
	assert_int_equal(v->n_problems, 1);
}

/* ---- rewrite rules ---- */

static const char two_mdevs[] =
	"<domain type='kvm'><name>two</name><memory>1</memory><devices>\n"
	"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
	"<address uuid='11111111-1111-4111-8111-111111111111'/></source></hostdev>\n"
	"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
	"<address uuid='22222222-2222-4222-8222-222222222222'/></source></hostdev>\n"
	"<hostdev mode='subsystem' type='pci'><source>"
	"<address domain='0x0000' bus='0x41' slot='0x00' function='0x4'/></source></hostdev>\n"
	"</devices></domain>\n";
#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"
#define U4 "44444444-4444-4444-8444-444444444444"

static int rewrite_two(const vgm_idmap *map, size_t n, unsigned flags, vgm_error *err,
		       char **out)
{
	return vgm_domxml_rewrite(two_mdevs, strlen(two_mdevs), map, n, flags, out, NULL, err);
}

static void expect_rewrite_error(const vgm_idmap *map, size_t n, unsigned flags, int code,
				 const char *reason, const char *part)
{
	vgm_error err = { 0 };
	char *out = NULL;
	assert_int_equal(rewrite_two(map, n, flags, &err, &out), -code);
	assert_null(out);
	assert_string_equal(err.reason, reason);
	if (part && !strstr(err.message, part))
		fail_msg("message '%s' lacks '%s'", err.message, part);
}

static void test_map_validation(void **state)
{
	(void)state;
	const vgm_idmap mixed[] = { { U1, "0000:41:00.5" } };
	expect_rewrite_error(mixed, 1, 0, EINVAL, "invalid_map", "both be UUIDs");
	const vgm_idmap junk[] = { { U1, "../../x" } };
	expect_rewrite_error(junk, 1, 0, EINVAL, "invalid_map", "../../x");
	const vgm_idmap dup_src2[] = { { U1, U3 }, { "11111111-1111-4111-8111-111111111111", U4 } };
	expect_rewrite_error(dup_src2, 2, 0, EINVAL, "invalid_map", "twice");
	const vgm_idmap dup_dst[] = { { U1, U3 }, { U2, "33333333-3333-4333-8333-333333333333" } };
	expect_rewrite_error(dup_dst, 2, 0, EINVAL, "invalid_map", U3);
	const vgm_idmap unknown[] = { { U1, U3 }, { U2, U4 }, { "0000:42:00.0", "0000:43:00.0" } };
	expect_rewrite_error(unknown, 3, 0, ENOENT, "unknown_id", "0000:42:00.0");
	const vgm_idmap partial[] = { { U1, U3 } };
	expect_rewrite_error(partial, 1, 0, EINVAL, "unmapped_vgpu", U2);
	/* U1 -> U2 while U2 stays: one device twice */
	const vgm_idmap clash[] = { { U1, U2 } };
	expect_rewrite_error(clash, 1, VGM_REWRITE_ALLOW_UNMAPPED, EEXIST, "id_conflict", U2);
}

static void test_rewrite_rules(void **state)
{
	(void)state;
	vgm_error err = { 0 };
	/* a swap is fine: the ids stay unique */
	_cleanup_free_ char *swapped = NULL;
	const vgm_idmap swap[] = { { U1, U2 }, { U2, U1 } };
	assert_int_equal(rewrite_two(swap, 2, 0, &err, &swapped), 0);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = inspect_str(swapped);
	assert_string_equal(d->hostdevs[0].id, U2);
	assert_string_equal(d->hostdevs[1].id, U1);
	assert_string_equal(d->hostdevs[2].id, "0000:41:00.4");
	/* patched in place: same bytes up to the first changed value */
	assert_int_equal(strlen(swapped), strlen(two_mdevs));
	assert_memory_equal(swapped, two_mdevs, strstr(two_mdevs, U1) - two_mdevs);

	/* partial map with ALLOW_UNMAPPED; the pci hostdev never needs one */
	_cleanup_free_ char *partial = NULL;
	const vgm_idmap one[] = { { "11111111-1111-4111-8111-111111111111", U3 },
				  { "0000:41:00.4", "0000:c1:1f.7" } };
	assert_int_equal(rewrite_two(one, 2, VGM_REWRITE_ALLOW_UNMAPPED, &err, &partial), 0);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *p = inspect_str(partial);
	assert_string_equal(p->hostdevs[0].id, U3);
	assert_string_equal(p->hostdevs[1].id, U2);
	assert_string_equal(p->hostdevs[2].id, "0000:c1:1f.7");

	/* an absent pci attribute means 0; a non-zero value is added in the
	 * tag's quote style */
	static const char nodomain[] =
		"<domain><name>n</name><memory>1</memory><devices>"
		"<hostdev mode=\"subsystem\" type=\"pci\"><source>"
		"<address bus=\"0x41\" slot=\"0x00\"   function=\"0x4\" /></source></hostdev>"
		"</devices></domain>";
	const vgm_idmap dom1[] = { { "0000:41:00.4", "0001:41:00.4" } };
	_cleanup_free_ char *withdom = NULL;
	assert_int_equal(vgm_domxml_rewrite(nodomain, strlen(nodomain), dom1, 1, 0, &withdom, NULL,
					    &err),
			 0);
	assert_non_null(strstr(withdom, "<address bus=\"0x41\" slot=\"0x00\"   function=\"0x4\" "
					"domain=\"0x0001\" />"));

	/* a non-UTF-8 document cannot be patched byte-wise: libxml2 writes it in
	 * its own encoding, declaration kept */
	static const char latin1[] =
		"<?xml version='1.0' encoding='ISO-8859-1'?>\n<domain><name>caf\xe9</name>"
		"<memory>1</memory><devices><hostdev mode='subsystem' type='mdev' "
		"model='vfio-pci'><source><address uuid='" U1 "'/></source></hostdev>"
		"</devices></domain>\n";
	const vgm_idmap l1[] = { { U1, U3 } };
	_cleanup_free_ char *lout = NULL;
	assert_int_equal(vgm_domxml_rewrite(latin1, strlen(latin1), l1, 1, 0, &lout, NULL, &err),
			 0);
	assert_non_null(strstr(lout, "encoding=\"ISO-8859-1\""));
	assert_non_null(strstr(lout, "<name>caf\xe9</name>"));
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *ld = inspect_str(lout);
	assert_string_equal(ld->hostdevs[0].id, U3);
	assert_string_equal(ld->name, "caf\xc3\xa9");

	/* odd but well-formed spelling: blanks around '=', a '>' in another
	 * value, attributes on several lines: still patched in place */
	static const char odd[] =
		"<domain><name>o</name><memory>1</memory><devices>"
		"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
		"<address x='1>2'\n\t  uuid =\n \"" U1 "\"  y=\"'\"/></source></hostdev>"
		"</devices></domain>";
	static const char odd_want[] =
		"<domain><name>o</name><memory>1</memory><devices>"
		"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
		"<address x='1>2'\n\t  uuid =\n \"" U3 "\"  y=\"'\"/></source></hostdev>"
		"</devices></domain>";
	_cleanup_free_ char *oddout = NULL;
	assert_int_equal(vgm_domxml_rewrite(odd, strlen(odd), l1, 1, 0, &oddout, NULL, &err), 0);
	assert_string_equal(oddout, odd_want);

	/* a value spelled with a character reference is not patched blindly:
	 * libxml2 writes the edited tree (same meaning) */
	static const char charref[] =
		"<domain><name>c</name><memory>1</memory><devices>"
		"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
		"<address uuid='&#x31;1111111-1111-4111-8111-111111111111'/></source></hostdev>"
		"</devices></domain>";
	_cleanup_free_ char *crout = NULL;
	assert_int_equal(vgm_domxml_rewrite(charref, strlen(charref), l1, 1, 0, &crout, NULL, &err),
			 0);
	assert_non_null(strstr(crout, "<address uuid=\"" U3 "\"/>"));
	assert_memory_equal(crout, "<domain>", 8); /* no declaration added */

	/* identity mappings change nothing: byte-identical output */
	_cleanup_free_ char *same = NULL;
	const vgm_idmap ident[] = { { U1, "11111111-1111-4111-8111-111111111111" }, { U2, U2 } };
	assert_int_equal(rewrite_two(ident, 2, 0, &err, &same), 0);
	assert_string_equal(same, two_mdevs);
}

static void test_format_metadata(void **state)
{
	(void)state;
	vgm_meta_vgpu v[] = {
		{ .id = "C2177883-F1BB-47F0-914D-32A22E3A8804", .kind = "mdev",
		  .profile_name = "NVIDIA A100-4C", .type_id = "nvidia-471",
		  .framebuffer_bytes = 4294967296ull, .lab = true },
		{ .id = "0000:41:00.4", .kind = "vf", .profile_name = "odd \"name\" & <co>",
		  .framebuffer_bytes = 0 },
	};
	char *out = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_domxml_format_metadata(v, 2, &out, &err), 0);
	assert_string_equal(out,
			    "<vgpus><vgpu id=\"c2177883-f1bb-47f0-914d-32a22e3a8804\" kind=\"mdev\" "
			    "profile=\"NVIDIA A100-4C\" type=\"nvidia-471\" framebuffer=\"4294967296\" "
			    "lab=\"yes\"/><vgpu id=\"0000:41:00.4\" kind=\"vf\" "
			    "profile=\"odd &quot;name&quot; &amp; &lt;co&gt;\" framebuffer=\"0\"/>"
			    "</vgpus>");

	/* what libvirt stores (our element in our namespace) reads back the same */
	char xml[2048];
	snprintf(xml, sizeof(xml),
		 "<domain><name>m</name><memory>1</memory><metadata>"
		 "<vgpumig:vgpus xmlns:vgpumig='%s'>"
		 "<vgpumig:vgpu id='c2177883-f1bb-47f0-914d-32a22e3a8804' kind='mdev' "
		 "profile='NVIDIA A100-4C' type='nvidia-471' framebuffer='4294967296' lab='yes'/>"
		 "</vgpumig:vgpus></metadata></domain>",
		 VGM_METADATA_NS);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = inspect_str(xml);
	assert_int_equal(d->n_meta, 1);
	assert_string_equal(d->meta[0].id, "c2177883-f1bb-47f0-914d-32a22e3a8804");
	assert_string_equal(d->meta[0].profile_name, "NVIDIA A100-4C");
	assert_int_equal(d->meta[0].framebuffer_bytes, 4294967296ull);
	assert_true(d->meta[0].lab);
	free(out);

	out = NULL;
	assert_int_equal(vgm_domxml_format_metadata(NULL, 0, &out, &err), 0);
	assert_string_equal(out, "<vgpus/>");
	free(out);
	out = NULL;
	vgm_meta_vgpu bad = { .id = "0000:41:00.4", .kind = "mdev" };
	assert_int_equal(vgm_domxml_format_metadata(&bad, 1, &out, &err), -EINVAL);
	assert_string_equal(err.reason, "invalid_id");
	assert_null(out);
}

/* The source's facts and NVML blob: written, read back, bad shapes dropped. */
static void test_metadata_source(void **state)
{
	(void)state;
	vgm_meta_source src = { .host = "host-a", .driver_version = "550.90.05", .ecc = "enabled" };
	vgm_meta_vgpu v = { .id = "c2177883-f1bb-47f0-914d-32a22e3a8804", .kind = "mdev",
			    .profile_name = "NVIDIA A100-4C", .framebuffer_bytes = 4294967296ull,
			    .nvml_metadata = "0a0b" };
	char *out = NULL;
	assert_int_equal(vgm_domxml_format_metadata_src(&src, &v, 1, &out, NULL), 0);
	assert_string_equal(out,
			    "<vgpus host=\"host-a\" driver=\"550.90.05\" ecc=\"enabled\">"
			    "<vgpu id=\"c2177883-f1bb-47f0-914d-32a22e3a8804\" kind=\"mdev\" "
			    "profile=\"NVIDIA A100-4C\" framebuffer=\"4294967296\" nvml=\"0a0b\"/>"
			    "</vgpus>");
	free(out);
	char xml[2048];
	snprintf(xml, sizeof(xml),
		 "<domain><name>m</name><memory>1</memory><metadata>"
		 "<vgpumig:vgpus xmlns:vgpumig='%s' host='host-a' driver='550.90.05' ecc='enabled'>"
		 "<vgpumig:vgpu id='c2177883-f1bb-47f0-914d-32a22e3a8804' kind='mdev' "
		 "profile='NVIDIA A100-4C' framebuffer='4294967296' lab='yes' nvml='0a0b'/>"
		 "</vgpumig:vgpus></metadata></domain>",
		 VGM_METADATA_NS);
	vgm_domain_info *d = inspect_str(xml);
	assert_string_equal(d->meta_source.host, "host-a");
	assert_string_equal(d->meta_source.driver_version, "550.90.05");
	assert_string_equal(d->meta_source.ecc, "enabled");
	assert_string_equal(d->meta[0].nvml_metadata, "0a0b");
	assert_int_equal(d->n_problems, 0);
	vgm_domain_info_free(d);
	/* untrusted shapes are dropped (and ecc / nvml reported), never used */
	snprintf(xml, sizeof(xml),
		 "<domain><name>m</name><memory>1</memory><metadata>"
		 "<vgpumig:vgpus xmlns:vgpumig='%s' host='../x' driver='5; rm' ecc='on'>"
		 "<vgpumig:vgpu id='c2177883-f1bb-47f0-914d-32a22e3a8804' kind='mdev' "
		 "profile='NVIDIA A100-4C' lab='yes' nvml='XYZ'/>"
		 "</vgpumig:vgpus></metadata></domain>",
		 VGM_METADATA_NS);
	d = inspect_str(xml);
	assert_null(d->meta_source.host);
	assert_null(d->meta_source.driver_version);
	assert_null(d->meta_source.ecc);
	assert_null(d->meta[0].nvml_metadata);
	assert_int_equal(d->n_problems, 2);
	vgm_domain_info_free(d);
}

/* ---- several threads at once ---- */

typedef struct thread_arg {
	const char *xml;
	size_t len;
	const char *want; /* expected rewrite output */
	size_t wantlen;
	int failures;
} thread_arg;

static const vgm_idmap large_map[] = {
	{ "5d2b8f14-6a3c-4e97-b0d1-8c7f2e9a4b01", "8e1a4c7d-2b5f-4a93-9c06-3d8e1b4f7a21" },
	{ "5d2b8f14-6a3c-4e97-b0d1-8c7f2e9a4b02", "8e1a4c7d-2b5f-4a93-9c06-3d8e1b4f7a22" },
};

static void *thread_main(void *p)
{
	thread_arg *a = p;
	for (int i = 0; i < 40; i++) {
		vgm_domain_info *d = NULL;
		char *out = NULL;
		size_t outlen = 0;
		if (vgm_domxml_inspect(a->xml, a->len, &d, NULL) < 0 || d->n_hostdevs != 2)
			a->failures++;
		vgm_domain_info_free(d);
		if (vgm_domxml_rewrite(a->xml, a->len, large_map, 2, 0, &out, &outlen, NULL) < 0 ||
		    outlen != a->wantlen || memcmp(out, a->want, outlen) != 0)
			a->failures++;
		free(out);
		vgm_error err = { 0 };
		if (vgm_domxml_inspect("<domain><oops></domain>", 23, &d, &err) != -EINVAL ||
		    !STREQ(err.reason, "malformed_xml"))
			a->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	size_t len = 0, wantlen = 0;
	_cleanup_free_ char *xml = read_data("large-realistic.xml", &len);
	_cleanup_free_ char *want = NULL;
	assert_non_null(xml);
	assert_int_equal(vgm_domxml_rewrite(xml, len, large_map, 2, 0, &want, &wantlen, NULL), 0);
	pthread_t t[8];
	thread_arg args[8];
	for (int i = 0; i < 8; i++) {
		args[i] = (thread_arg){ xml, len, want, wantlen, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
}

/* Cold migration checks these on the target: file/block disks and the
 * direct-boot kernel/initrd, each once; network disks and empty cdroms not. */
static void test_disk_paths(void **state)
{
	(void)state;
	static const char xml[] =
		"<domain type='kvm'><name>d</name><os><type>hvm</type><kernel>/lab/vmlinuz</kernel>"
		"<initrd>/lab/initrd.img</initrd></os><devices>"
		"<disk type='file' device='disk'><source file='/var/lib/images/a.qcow2'/></disk>"
		"<disk type='block' device='disk'><source dev='/dev/vg0/b'/></disk>"
		"<disk type='file' device='disk'><source file='/var/lib/images/a.qcow2'/></disk>"
		"<disk type='network' device='disk'><source protocol='rbd' name='pool/c'/></disk>"
		"<disk type='file' device='cdrom'/></devices></domain>";
	char **p = NULL;
	size_t n = 0;
	vgm_error e = { 0 };
	assert_int_equal(vgm_domxml_disk_paths(xml, strlen(xml), &p, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_string_equal(p[0], "/var/lib/images/a.qcow2");
	assert_string_equal(p[1], "/dev/vg0/b");
	assert_string_equal(p[2], "/lab/vmlinuz");
	assert_string_equal(p[3], "/lab/initrd.img");
	assert_null(p[4]);
	vgm_strv_free(p, n);
	assert_int_equal(vgm_domxml_disk_paths("<domain", 7, &p, &n, &e), -EINVAL);
}

int main(void)
{
	find_data_dir();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_size_limit),	cmocka_unit_test(test_memory_units),
		cmocka_unit_test(test_map_validation), cmocka_unit_test(test_rewrite_rules),
		cmocka_unit_test(test_format_metadata), cmocka_unit_test(test_metadata_source),
		cmocka_unit_test(test_threads), cmocka_unit_test(test_disk_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
