/* vgpumig-hook: libvirt qemu hook (installed in /etc/libvirt/hooks/qemu.d/).
 *
 * libvirt runs it as `DOMAIN OP SUBOP EXTRA` with the domain XML on stdin.
 * On the destination of a migration, `DOMAIN migrate begin -` must print the
 * XML libvirt should use (empty output keeps it unchanged) or exit non-zero
 * with one line on stderr, which libvirt hands back to whoever started the
 * migration.  This program is a thin filter over the local agent:
 *
 *   migrate begin   XML -> POST /v1/hook/migrate-begin -> XML on stdout.
 *                   When the agent cannot be reached, a domain with no vGPU
 *                   and no vgpumig metadata is still printed back byte for
 *                   byte; one with a vGPU is refused.  "vGPU" is decided by
 *                   agent_vgpus_incoming (agent/vgpus.c), the agent's own
 *                   function, so both paths refuse the same domains.
 *   release end, stopped end, started begin
 *                   POST /v1/hook/event, best effort, 1 s at most, exit 0.
 *   anything else   exit 0, no output.
 *
 * Invariants: never calls libvirt (libvirt waits for us: that would
 * deadlock); never waits longer than the configured timeouts; never prints a
 * partial XML (the reply is complete in memory before one write); stdin is
 * read only up to HOOK_MAX_XML bytes.
 *
 * Options (environment overrides the optional file /etc/vgpumig/hook.conf,
 * itself overridable with VGPUMIG_HOOK_CONFIG): VGPUMIG_SOCKET / socket,
 * VGPUMIG_HOOK_CONNECT_TIMEOUT_MS / connect_timeout_ms,
 * VGPUMIG_HOOK_TIMEOUT_MS / timeout_ms, VGPUMIG_SYSFS_ROOT / sysfs_root
 * (the agent's sysfs_root; "/" on a real host). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "api/client.h" /* default timeouts only: the hook does not link libcurl */
#include "hook-http.h"
#include "domxml/domxml.h"
#include "util/fs.h"
#include "vgm-config.h"
#include "vgpus.h"

#define HOOK_MAX_XML (16u * 1024 * 1024)
#define HOOK_EVENT_TIMEOUT_MS 1000L
#define DEFAULT_SOCKET "/run/vgpumig/vgpumigd.sock"
#define DEFAULT_CONFIG VGM_SYSCONFDIR "/vgpumig/hook.conf"

typedef struct hook_opts {
	char socket[4096];
	char sysfs_root[4096];
	long connect_ms;
	long total_ms;
} hook_opts;

/* Events the agent wants to hear about (it commits or releases on them). */
static const char *const forwarded_events[][2] = {
	{ "release", "end" },
	{ "stopped", "end" },
	{ "started", "begin" },
};

static int fail(const char *fmt, ...) _printf_(1, 2);
static int fail(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++) /* libvirt shows one line */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "vgpumig: %s\n", line);
	return 1;
}

static long parse_ms(const char *s, long fallback)
{
	char *end = NULL;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || errno || end == s || *end || v <= 0 || v > 3600L * 1000)
		return fallback;
	return v;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* "key = value" lines, '#' comments; unknown keys are ignored so that a newer
 * file does not break an older hook.  A missing file is fine. */
static void load_config_file(const char *path, hook_opts *o)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[4200];
	while (f && fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		if (line[0] == '#' || !eq)
			continue;
		*eq = '\0';
		char *key = trim(line), *val = trim(eq + 1);
		if (STREQ(key, "socket") && val[0])
			snprintf(o->socket, sizeof(o->socket), "%s", val);
		else if (STREQ(key, "sysfs_root") && val[0])
			snprintf(o->sysfs_root, sizeof(o->sysfs_root), "%s", val);
		else if (STREQ(key, "connect_timeout_ms"))
			o->connect_ms = parse_ms(val, o->connect_ms);
		else if (STREQ(key, "timeout_ms"))
			o->total_ms = parse_ms(val, o->total_ms);
	}
}

static void load_options(hook_opts *o)
{
	snprintf(o->socket, sizeof(o->socket), "%s", DEFAULT_SOCKET);
	snprintf(o->sysfs_root, sizeof(o->sysfs_root), "/");
	o->connect_ms = VGM_CLIENT_CONNECT_TIMEOUT_MS;
	o->total_ms = VGM_CLIENT_TIMEOUT_MS;
	const char *cfg = getenv("VGPUMIG_HOOK_CONFIG");
	load_config_file(cfg && cfg[0] ? cfg : DEFAULT_CONFIG, o);
	const char *s = getenv("VGPUMIG_SOCKET");
	if (s && s[0])
		snprintf(o->socket, sizeof(o->socket), "%s", s);
	s = getenv("VGPUMIG_SYSFS_ROOT");
	if (s && s[0])
		snprintf(o->sysfs_root, sizeof(o->sysfs_root), "%s", s);
	o->connect_ms = parse_ms(getenv("VGPUMIG_HOOK_CONNECT_TIMEOUT_MS"), o->connect_ms);
	o->total_ms = parse_ms(getenv("VGPUMIG_HOOK_TIMEOUT_MS"), o->total_ms);
}

static int write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_domain_xml(char **xml, size_t *len)
{
	int r = vgm_read_fd(STDIN_FILENO, HOOK_MAX_XML, xml, len);
	if (r == -EFBIG)
		return fail("the domain XML on stdin is larger than %u MiB; refusing it",
			    HOOK_MAX_XML / (1024 * 1024));
	if (r < 0)
		return fail("cannot read the domain XML from stdin: %s", strerror(-r));
	return 0;
}

/* With the agent down: NULL when vgpumig has nothing to do with this
 * domain (no vGPU by the agent's own rule, no vgpumig metadata), else what
 * makes it ours, for the refusal.  An XML we cannot inspect is not passed on
 * unchanged: we refuse rather than guess. */
static const char *domain_vgpu(const hook_opts *o, const char *xml, size_t len, char *buf,
			       size_t size)
{
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	agent_vgpu *v = NULL;
	size_t n = 0;

	if (vgm_domxml_inspect(xml, len, &d, NULL) < 0)
		return "a domain XML it cannot read";
	if (vgm_host_new(o->sysfs_root, &h, NULL) < 0 ||
	    agent_vgpus_incoming(d, h, true, &v, &n) < 0)
		return "a domain it cannot classify";
	if (n > 0)
		snprintf(buf, size, "%s vGPU %s", v[0].kind, v[0].id);
	else if (d->n_meta > 0)
		snprintf(buf, size, "vgpumig metadata");
	agent_vgpus_free(v, n);
	return n > 0 || d->n_meta > 0 ? buf : NULL;
}

/* The agent answers for every domain (a domain without vGPU comes back
 * byte-identical), so the XML is parsed here only when the agent cannot be
 * reached: then a domain with nothing for vgpumig still passes unchanged and
 * only a vGPU domain fails.  Parsing first would cost every call the parse
 * of a large XML twice. */
static int hook_migrate_begin(const hook_opts *o, const char *domain_name)
{
	_cleanup_free_ char *xml = NULL;
	size_t len = 0;
	if (read_domain_xml(&xml, &len) != 0)
		return 1;

	vgm_error err = { 0 };
	hook_http_req req = {
		.socket_path = o->socket, .method = "POST", .path = "/v1/hook/migrate-begin",
		.content_type = "application/xml", .body = xml, .body_len = len,
		.connect_ms = o->connect_ms, .total_ms = o->total_ms, .max_reply = HOOK_MAX_XML,
	};
	hook_http_reply reply;
	if (hook_http_request(&req, &reply, &err) < 0) {
		char what[300];
		const char *why = domain_vgpu(o, xml, len, what, sizeof(what));

		if (!why)
			return write_all(xml, len) < 0 ? fail("cannot write the domain XML to stdout") : 0;
		return fail("%s (domain %s has %s, and only the agent can give it a vGPU here)",
			    vgm_error_message(&err), domain_name, why);
	}
	int r = 0;
	if (reply.status < 200 || reply.status > 299) {
		hook_http_reply_error(&reply, o->socket, &err);
		r = fail("%s", vgm_error_message(&err));
	} else if (write_all(reply.body, reply.len) < 0) /* 204 or empty: XML unchanged */
		r = fail("cannot write the domain XML to stdout");
	hook_http_reply_clear(&reply);
	return r;
}

static bool is_forwarded(const char *op, const char *sub_op)
{
	for (size_t i = 0; i < ARRAY_SIZE(forwarded_events); i++)
		if (STREQ(op, forwarded_events[i][0]) && STREQ(sub_op, forwarded_events[i][1]))
			return true;
	return false;
}

/* Best effort: the agent also finds out on its reconcile timer, so any
 * failure here is silent and never delays libvirt beyond 1 s. */
static int hook_event(const hook_opts *o, const char *domain, const char *op, const char *sub_op)
{
	_cleanup_free_ char *xml = NULL;
	size_t len = 0;
	if (vgm_read_fd(STDIN_FILENO, HOOK_MAX_XML, &xml, &len) < 0)
		len = 0;
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	if (len > 0)
		(void)vgm_domxml_inspect(xml, len, &d, NULL);

	json_t *body = json_pack("{s:s, s:s, s:s}", "domain_name", domain, "op", op, "sub_op", sub_op);
	if (body && d && d->uuid)
		json_object_set_new(body, "domain_uuid", json_string(d->uuid));
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (text) {
		hook_http_req req = {
			.socket_path = o->socket, .method = "POST", .path = "/v1/hook/event",
			.content_type = "application/json", .body = text, .body_len = strlen(text),
			.connect_ms = MIN(o->connect_ms, HOOK_EVENT_TIMEOUT_MS),
			.total_ms = HOOK_EVENT_TIMEOUT_MS, .max_reply = 65536,
		};
		hook_http_reply reply;
		if (hook_http_request(&req, &reply, NULL) == 0)
			hook_http_reply_clear(&reply);
	}
	json_decref(body);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: vgpumig-hook DOMAIN OPERATION SUB-OPERATION [EXTRA]\n"
				"(run by libvirt from /etc/libvirt/hooks/qemu.d/)\n");
		return 2;
	}
	const char *domain = argv[1], *op = argv[2], *sub_op = argv[3];
	hook_opts o;
	load_options(&o);
	if (STREQ(op, "migrate") && STREQ(sub_op, "begin"))
		return hook_migrate_begin(&o, domain);
	if (is_forwarded(op, sub_op))
		return hook_event(&o, domain, op, sub_op);
	return 0;
}
