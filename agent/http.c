/* http.c: the agent's two HTTP servers (libmicrohttpd) and the request
 * flow from first byte to handler.
 *
 *   local  HTTP/1.1 on the unix socket (mode 0660, group socket_group; 0666
 *          when socket_read_group is set, since the file can carry only one
 *          group: the uid check below is the gate either way).  The
 *          caller's uid is read with SO_PEERCRED when it connects
 *          (http-guard.c): root, the agent's own uid and members of
 *          socket_group are admins; members of socket_read_group may call
 *          the routes marked .read and get 403 elsewhere; anyone else has
 *          the connection closed with no answer.
 *   peer   HTTPS on `listen` with mutual TLS (peer-tls.c): the handshake
 *          fails unless the client's certificate proves one [peer NAME];
 *          requests carry that name.  Only routes marked .peer exist there.
 *
 * Both use a thread per connection, so a slow claim never blocks a hook;
 * http-guard.c bounds how many connections each source may hold and for how
 * long.  A body is read into memory up to the route's limit; beyond it the
 * request gets 413 before any handler runs, so nothing changes.
 *
 * SIGHUP (agent_http_reload): new TLS credentials for new handshakes, and
 * the socket's group and mode re-applied. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <microhttpd.h>
#include <netdb.h>

#include "http-internal.h"
#include "metrics.h"
#include "util/fs.h"

#define CONNECTION_IDLE_S 30
#define DISCARD_LIMIT (256ull << 20) /* declared bodies above this: 413 unread */

static double now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static bool role_allows(agent_request *req)
{
	_cleanup_free_ char *admin = NULL;

	if (req->role != AGENT_ROLE_READ || req->route->read)
		return true;
	pthread_mutex_lock(&req->a->lock);
	admin = req->a->cfg->socket_group ? strdup(req->a->cfg->socket_group) : NULL;
	pthread_mutex_unlock(&req->a->lock);
	log_warn("local API: refused %s %s to %s: read-only role (socket_read_group)", req->method,
		 req->url, req->actor);
	agent_reply_errorf(req, 403, "forbidden",
			   "%s is in the agent's read-only group; %s %s changes state and needs root%s%s",
			   req->actor, req->method, req->url, admin ? " or group " : "",
			   admin ? admin : "");
	return false;
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
	agent_conn *c = agent_guard_conn(req->conn);

	if (!protocol_ok(req))
		return;
	if (req->body_too_large) {
		log_warn("%s %s from %s: body over the route's limit of %zu KiB refused",
			 req->method, req->url, req->actor, req->body_limit >> 10);
		agent_reply_errorf(req, 413, "payload_too_large",
				   "request body is larger than %zu KiB, the limit of %s %s; nothing was changed",
				   req->body_limit >> 10, req->method, req->route->pattern);
		return;
	}
	if (!role_allows(req))
		return;
	if (c)
		agent_guard_set_deadline(c, 0, "a reply"); /* handlers may take their time */
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

/* Who asked, from the connection the guard described. */
static bool request_caller(agent_request *req, const agent_conn *c)
{
	if (!c)
		return false;
	if (req->peer_api) {
		if (!c->peer[0])
			return false; /* the handshake verifies; this is belt and braces */
		req->role = AGENT_ROLE_PEER;
		req->peer_name = c->peer;
		snprintf(req->actor, sizeof(req->actor), "peer %s", c->peer);
		return true;
	}
	req->role = c->role;
	snprintf(req->actor, sizeof(req->actor), "uid %u", (unsigned)c->uid);
	return c->role != AGENT_ROLE_NONE;
}

/* First call for a request: authorise, route, set the body limit. */
static agent_request *request_begin(struct agent_server *srv, struct MHD_Connection *conn,
				    const char *url, const char *method)
{
	agent_conn *c = agent_guard_conn(conn);
	agent_request *req;
	bool other = false;

	req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->a = srv->a;
	req->conn = conn;
	req->method = method;
	req->url = url;
	req->peer_api = srv->peer;
	if (!request_caller(req, c)) {
		free(req);
		return NULL;
	}
	agent_guard_set_deadline(c, agent_guard_body_deadline(), "complete request body");
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
	agent_conn *c;

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
	if ((c = agent_guard_conn(conn)))
		agent_guard_set_deadline(c, agent_guard_header_deadline(), "next request head");
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	/* its own connection limit (the guard keeps room below it): a warning */
	if (strcasestr(line, "connection limit"))
		log_warn("microhttpd: %s", line);
	else
		log_debug("microhttpd: %s", line);
}

/* Mode and group of the socket file: see the file head for why 0666. */
static int socket_apply_access(const agent_config *c, vgm_error *err)
{
	mode_t mode = c->socket_read_group ? 0666 : 0660;

	if (chmod(c->socket, mode) < 0 ||
	    chown(c->socket, (uid_t)-1, c->socket_group ? c->socket_gid : getegid()) < 0)
		return vgm_error_set(err, errno, "cannot set mode/group of %s: %s", c->socket,
				     strerror(errno));
	return 0;
}

static int local_socket_open(const agent_config *c, vgm_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *dir = strdup(c->socket);
	char *slash;
	int r;

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
	if ((r = socket_apply_access(c, err)) < 0)
		return r;
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
				     MHD_OPTION_HTTPS_CERT_CALLBACK, agent_tls_retrieve,
				     MHD_OPTION_HTTPS_MEM_TRUST, srv->ca_pem,
				     MHD_OPTION_HTTPS_PRIORITIES, agent_tls_priorities,
				     MHD_OPTION_NOTIFY_CONNECTION, agent_guard_notify, srv,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				     MHD_OPTION_CONNECTION_LIMIT, agent_guard_max_connections(true),
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_IDLE_S,
				     MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_NOTIFY_CONNECTION, agent_guard_notify, srv,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				     MHD_OPTION_CONNECTION_LIMIT, agent_guard_max_connections(false),
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_IDLE_S,
				     MHD_OPTION_END);
	if (!d)
		vgm_error_set(err, EIO, "cannot start the %s API server (libmicrohttpd refused; run with log_level=debug)",
			      srv->peer ? "peer" : "local");
	return d;
}

static struct agent_server *server_new(agent *a, bool peer)
{
	struct agent_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->a = a;
	s->peer = peer;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->warn_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	return s;
}

static void server_free(struct agent_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd); /* every connection closed: no conn left */
	agent_guard_stop(s);
	agent_tls_free(s->tls);
	for (size_t i = 0; i < s->n_old_tls; i++)
		agent_tls_free(s->old_tls[i]);
	free(s->old_tls);
	free(s->ca_pem);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->warn_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Start srv on fd (taken over on success): watchdog first, so no
 * connection ever runs without its deadline. */
static int server_run(struct agent_server *srv, int fd, vgm_error *err)
{
	int r = agent_guard_start(srv, err);

	if (r < 0)
		return r;
	srv->mhd = mhd_start(srv, fd, err);
	return srv->mhd ? 0 : -EIO;
}

static int peer_start(agent *a, const agent_config *c, vgm_error *err)
{
	struct agent_server *srv = server_new(a, true);
	agent_tls *t = NULL;
	int fd, r;

	if (!srv)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((r = agent_tls_load(c, &t, err)) < 0 ||
	    (r = vgm_read_file(c->tls_ca, 1u << 20, &srv->ca_pem, NULL)) < 0) {
		agent_tls_free(t);
		server_free(srv);
		return r == -ENOENT || r == -EACCES ?
			vgm_error_set(err, -r, "cannot read tls_ca %s: %s", c->tls_ca, strerror(-r)) : r;
	}
	agent_tls_install(srv, t);
	fd = tcp_socket_open(c->listen, err);
	if (fd < 0) {
		server_free(srv);
		return fd;
	}
	if ((r = server_run(srv, fd, err)) < 0) {
		close(fd);
		server_free(srv);
		return r;
	}
	a->peer = srv;
	log_info("peer API (mutual TLS 1.2+, %zu peer(s)%s) on %s", c->n_peers,
		 c->tls_crl ? ", CRL checked" : "", c->listen);
	return 0;
}

int agent_http_start(agent *a, vgm_error *err)
{
	const agent_config *c = a->cfg; /* main thread, before any handler runs */
	struct agent_server *srv;
	int fd, r;

	fd = local_socket_open(c, err);
	if (fd < 0)
		return fd;
	srv = server_new(a, false);
	if (!srv) {
		close(fd);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	if ((r = server_run(srv, fd, err)) < 0) {
		close(fd);
		server_free(srv);
		return r;
	}
	a->local = srv;
	a->local_fd = fd;
	log_info("local API on %s", c->socket);
	if (c->listen)
		return peer_start(a, c, err);
	return 0;
}

void agent_http_reload(agent *a)
{
	agent_config *c = a->cfg; /* main thread: the only writer of a->cfg */
	agent_tls *t = NULL;
	vgm_error err = { 0 };

	if (a->local && socket_apply_access(c, &err) < 0)
		log_error("reload: %s", vgm_error_message(&err));
	if (!a->peer)
		return;
	if (agent_tls_load(c, &t, &err) < 0) {
		log_error("reload: keeping the running TLS credentials: %s", vgm_error_message(&err));
		return;
	}
	if (agent_tls_install(a->peer, t) < 0) {
		agent_tls_free(t);
		log_error("reload: out of memory; keeping the running TLS credentials");
		return;
	}
	log_info("reload: TLS certificate, key, CA%s reloaded for new connections",
		 c->tls_crl ? " and CRL" : "");
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
