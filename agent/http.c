/* http.c: the agent's two HTTP servers (libmicrohttpd).
 *
 *   local  HTTP/1.1 on the unix socket (mode 0660, group socket_group);
 *          the caller's uid is read with SO_PEERCRED on every request: root,
 *          the agent's own uid or members of socket_group; anyone else gets
 *          the connection closed with no answer.  Group membership is the
 *          caller's primary and supplementary groups (SO_PEERGROUPS) or the
 *          user database.
 *   peer   HTTPS on `listen` with mutual TLS: the client must present a
 *          certificate that verifies against tls_ca, else the connection is
 *          closed with no answer.  Only routes marked .peer exist there.
 *
 * Both use a thread per connection, so a slow claim never blocks a hook.
 * A body is read into memory up to the route's limit; beyond it the request
 * gets 413 before any handler runs, so nothing changes. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "metrics.h"
#include "routes.h"
#include "util/fs.h"

#define MAX_CONNECTIONS 1024
#define CONNECTION_TIMEOUT_S 60
#define DISCARD_LIMIT (256ull << 20) /* declared bodies above this: 413 unread */

struct agent_server {
	agent *a;
	bool peer;
	struct MHD_Daemon *mhd;
	char *cert, *key, *ca; /* PEM, kept alive while the daemon runs */
};

static double now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool uid_in_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = ARRAY_SIZE(groups);

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	if (pw.pw_gid == gid)
		return true;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* The caller process's supplementary groups (SO_PEERGROUPS, Linux 4.13+):
 * counts a group granted by newgrp/setpriv that /etc/group does not list. */
static bool peer_has_group(int fd, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static bool local_caller_allowed(agent *a, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred uc;
	socklen_t len = sizeof(uc);
	bool has_group;
	gid_t gid;

	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return false;
	if (uc.uid == 0 || uc.uid == geteuid())
		return true;
	pthread_mutex_lock(&a->lock);
	has_group = a->cfg->socket_group != NULL;
	gid = a->cfg->socket_gid;
	pthread_mutex_unlock(&a->lock);
	if (has_group && (uc.gid == gid || peer_has_group(ci->connect_fd, gid) ||
			  uid_in_group(uc.uid, gid)))
		return true;
	log_warn("local API: refused uid %u (pid %d): not root and not in socket_group",
		 (unsigned)uc.uid, (int)uc.pid);
	return false;
}

static bool peer_cert_valid(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	const union MHD_ConnectionInfo *ai =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	unsigned status = 0;
	int r;
	char host[INET6_ADDRSTRLEN] = "?";

	if (!ci || !ci->tls_session)
		return false;
	r = gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status);
	if (r == 0 && status == 0)
		return true;
	if (ai && ai->client_addr)
		getnameinfo(ai->client_addr,
			    ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
								     sizeof(struct sockaddr_in),
			    host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	log_warn("peer API: refused %s: %s", host,
		 r < 0 ? gnutls_strerror(r) : "client certificate not signed by tls_ca (or expired)");
	return false;
}

static bool content_type_ok(agent_request *req)
{
	const char *want = req->route->content_type ? req->route->content_type : "application/json";
	const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n;

	if (req->body_len == 0)
		return true;
	if (!ct)
		return false;
	n = strcspn(ct, "; \t");
	if (strlen(want) == n && strncasecmp(ct, want, n) == 0)
		return true;
	/* XML routes take either XML media type */
	return n >= 4 && strncasecmp(ct + n - 4, "/xml", 4) == 0 && strstr(want, "/xml");
}

/* Every caller names its protocol range (api/protocol.h; none: a release
 * before protocol 2).  One that shares no version with ours is refused
 * before any handler runs, with both ranges named, so nothing changes. */
static bool protocol_ok(agent_request *req)
{
	const char *v = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, VGM_PROTOCOL_HEADER);
	_cleanup_free_ char *self = NULL;
	vgm_error err = { 0 };

	if (vgm_protocol_parse(v, &req->protocol, &err) == 0) {
		self = agent_host_name(req->a);
		if (vgm_protocol_accept(req->a->protocol, self ? self : "this agent", req->protocol,
					req->peer_api ? "the calling agent" : "the caller", &err) == 0)
			return true;
	}
	agent_reply_errorf(req, 400, err.reason, "%s", err.message);
	return false;
}

static void dispatch(agent_request *req)
{
	if (!protocol_ok(req))
		return;
	if (req->body_too_large) {
		agent_reply_errorf(req, 413, "payload_too_large",
				   "request body is larger than %zu MiB; nothing was changed",
				   req->body_limit >> 20);
		return;
	}
	if (!content_type_ok(req)) {
		agent_reply_errorf(req, 415, "unsupported_media_type", "send the body as Content-Type: %s",
				   req->route->content_type ? req->route->content_type : "application/json");
		return;
	}
	if (req->route->handler(req) < 0 || !req->replied) {
		if (!req->replied)
			agent_reply_errorf(req, 500, "internal", "%s %s produced no reply", req->method,
					   req->url);
	}
}

static bool append_body(agent_request *req, const char *data, size_t size)
{
	char *p;
	size_t cap;

	if (req->body_too_large || size > req->body_limit - req->body_len) {
		req->body_too_large = true;
		free(req->body);
		req->body = NULL;
		req->body_len = 0;
		return false;
	}
	cap = req->body_len + size + 1;
	p = realloc(req->body, cap);
	if (!p)
		return false;
	memcpy(p + req->body_len, data, size);
	req->body = p;
	req->body_len += size;
	p[req->body_len] = '\0';
	return true;
}

static bool declared_too_large(agent_request *req)
{
	const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n;
	char *end;

	if (!cl)
		return false;
	errno = 0;
	n = strtoull(cl, &end, 10);
	return errno == 0 && end != cl && n > DISCARD_LIMIT;
}

/* First call for a request: authorise, route, set the body limit. */
static agent_request *request_begin(struct agent_server *srv, struct MHD_Connection *conn,
				    const char *url, const char *method)
{
	agent_request *req;
	bool other = false;

	if (srv->peer ? !peer_cert_valid(conn) : !local_caller_allowed(srv->a, conn))
		return NULL;
	req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->a = srv->a;
	req->conn = conn;
	req->method = method;
	req->url = url;
	req->peer_api = srv->peer;
	req->started = now_monotonic();
	req->route = agent_route_match(method, url, srv->peer, req, &other);
	req->body_limit = req->route && req->route->max_body ? req->route->max_body : AGENT_MAX_JSON;
	if (!req->route)
		req->status = other ? 405 : 404;
	return req;
}

static void reply_unrouted(agent_request *req)
{
	if (req->status == 405)
		agent_reply_errorf(req, 405, "method_not_allowed", "%s is not allowed on %s", req->method,
				   req->url);
	else
		agent_reply_errorf(req, 404, "not_found", "no such API path: %s %s%s", req->method,
				   req->url, req->peer_api ? " (peer API)" : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct agent_server *srv = cls;
	agent_request *req = *con_cls;

	if (!req) {
		req = request_begin(srv, conn, url, method);
		if (!req)
			return MHD_NO; /* no answer: connection closed */
		*con_cls = req;
		if (req->route && declared_too_large(req)) {
			/* answer before reading a huge body; MHD closes afterwards.
			 * Smaller oversized bodies are read and dropped, so clients
			 * that send everything before reading still see the 413. */
			req->body_too_large = true;
			dispatch(req);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (req->route && !req->replied)
			append_body(req, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->replied)
		return MHD_YES;
	if (!req->route)
		reply_unrouted(req);
	else
		dispatch(req);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct agent_server *srv = cls;
	agent_request *req = *con_cls;

	if (!req)
		return;
	double secs = now_monotonic() - req->started;

	agent_metrics_request(srv->a->metrics, req->method, req->route ? req->route->pattern : NULL,
			      req->replied ? req->status : 499, secs);
	log_debug("%s %s %s -> %d (%.1f ms, %zu byte body)", srv->peer ? "peer" : "local",
		  req->method, req->url, req->replied ? req->status : 499, secs * 1e3, req->body_len);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("microhttpd: %s", line);
}

static int local_socket_open(const agent_config *c, vgm_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *dir = strdup(c->socket);
	char *slash;

	if (!dir)
		return vgm_error_set(err, ENOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return vgm_error_setr(err, errno, "io_error", "cannot create %s: %s", dir, strerror(errno));
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vgm_error_set(err, errno, "socket(AF_UNIX): %s", strerror(errno));
	if (unlink(c->socket) < 0 && errno != ENOENT)
		return vgm_error_set(err, errno, "cannot remove stale %s: %s", c->socket, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return vgm_error_set(err, errno, "cannot bind %s: %s", c->socket, strerror(errno));
	if (chmod(c->socket, 0660) < 0 ||
	    (c->socket_group && chown(c->socket, (uid_t)-1, c->socket_gid) < 0))
		return vgm_error_set(err, errno, "cannot set mode/group of %s: %s", c->socket,
				     strerror(errno));
	if (listen(fd, 256) < 0)
		return vgm_error_set(err, errno, "cannot listen on %s: %s", c->socket, strerror(errno));
	return TAKE_FD(fd);
}

static int tcp_socket_open(const char *hostport, vgm_error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	_cleanup_free_ char *host = NULL;
	_cleanup_close_ int fd = -1;
	char port_s[8];
	unsigned port;
	int one = 1, r;

	if (agent_split_hostport(hostport, &host, &port) < 0)
		return vgm_error_setr(err, EINVAL, "invalid_config", "listen '%s' must be HOST:PORT", hostport);
	snprintf(port_s, sizeof(port_s), "%u", port);
	if ((r = getaddrinfo(host, port_s, &hints, &ai)) != 0)
		return vgm_error_set(err, ENOENT, "cannot resolve listen address '%s': %s", host,
				     gai_strerror(r));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 256) < 0) {
		r = errno;
		freeaddrinfo(ai);
		return vgm_error_set(err, r, "cannot listen on %s: %s", hostport, strerror(r));
	}
	freeaddrinfo(ai);
	return TAKE_FD(fd);
}

static struct MHD_Daemon *mhd_start(struct agent_server *srv, int fd, vgm_error *err)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	if (srv->peer)
		d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_request, srv,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_HTTPS_MEM_CERT, srv->cert,
				     MHD_OPTION_HTTPS_MEM_KEY, srv->key,
				     MHD_OPTION_HTTPS_MEM_TRUST, srv->ca,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				     MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				     MHD_OPTION_END);
	if (!d)
		vgm_error_set(err, EIO, "cannot start the %s API server (libmicrohttpd refused; run with log_level=debug)",
			      srv->peer ? "peer" : "local");
	return d;
}

static void server_free(struct agent_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	free(s->cert);
	free(s->key);
	free(s->ca);
	free(s);
}

static int peer_start(agent *a, const agent_config *c, vgm_error *err)
{
	struct agent_server *srv = calloc(1, sizeof(*srv));
	int fd, r;

	if (!srv)
		return vgm_error_set(err, ENOMEM, "out of memory");
	srv->a = a;
	srv->peer = true;
	if ((r = vgm_read_file(c->tls_cert, 1u << 20, &srv->cert, NULL)) < 0 ||
	    (r = vgm_read_file(c->tls_key, 1u << 20, &srv->key, NULL)) < 0 ||
	    (r = vgm_read_file(c->tls_ca, 1u << 20, &srv->ca, NULL)) < 0) {
		server_free(srv);
		return vgm_error_set(err, -r, "cannot read the TLS files (%s, %s, %s): %s", c->tls_cert,
				     c->tls_key, c->tls_ca, strerror(-r));
	}
	fd = tcp_socket_open(c->listen, err);
	if (fd < 0) {
		server_free(srv);
		return fd;
	}
	srv->mhd = mhd_start(srv, fd, err);
	if (!srv->mhd) {
		close(fd);
		server_free(srv);
		return -EIO;
	}
	a->peer = srv;
	log_info("peer API (mutual TLS) on %s", c->listen);
	return 0;
}

int agent_http_start(agent *a, vgm_error *err)
{
	const agent_config *c = a->cfg; /* main thread, before any handler runs */
	struct agent_server *srv;
	int fd;

	fd = local_socket_open(c, err);
	if (fd < 0)
		return fd;
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		close(fd);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	srv->a = a;
	srv->mhd = mhd_start(srv, fd, err);
	if (!srv->mhd) {
		close(fd);
		free(srv);
		return -EIO;
	}
	a->local = srv;
	a->local_fd = fd;
	log_info("local API on %s", c->socket);
	if (c->listen)
		return peer_start(a, c, err);
	return 0;
}

void agent_http_stop(agent *a)
{
	/* MHD_stop_daemon closes the listening sockets it was given */
	server_free(a->local);
	a->local = NULL;
	a->local_fd = -1;
	server_free(a->peer);
	a->peer = NULL;
}
