/* http-guard.c: who may hold a connection, how many, and for how long.
 *
 * libmicrohttpd runs a thread per connection and, left alone, keeps a
 * connection for as long as bytes trickle in.  The guard sees every
 * connection from accept to close (NOTIFY_CONNECTION) and enforces:
 *
 *   local API  the caller's uid is read (SO_PEERCRED) at accept: a uid that
 *              is neither root, the agent's own, socket_group nor
 *              socket_read_group is closed with no answer once its request
 *              head arrives (http.c), or at the deadline.  Other
 *              uids may hold LOCAL_PER_UID connections each and
 *              LOCAL_UNPRIVILEGED together; the rest of LOCAL_MAX is kept
 *              for root (libvirt's hook) and the agent's uid.  A refused
 *              caller gets "503 busy" with the reason, so the hook can say
 *              what happened.
 *   peer API   PEER_PER_ADDRESS connections per client address that have not
 *              (yet) proved a peer identity; beyond it the connection is
 *              closed before the TLS handshake.  Authenticated connections
 *              do not count, so a flood from one address neither starves the
 *              port nor a real peer behind the same address.
 *   both       an absolute deadline: HEADER_DEADLINE_S from accept (or from
 *              the last reply) to a complete request head, including the
 *              TLS handshake; BODY_DEADLINE_S more for the body.  No deadline
 *              while a handler runs.  The watchdog thread shuts expired
 *              connections down (shutdown(2): MHD then closes them itself).
 *
 * Every limit hit is a warning, at most one per second per server with a
 * count of those suppressed, so a flood cannot flood the log too.
 *
 * Safety: an agent_conn is unlinked under srv->lock in the CLOSED
 * notification, which MHD sends before it closes the fd, and the watchdog
 * only calls shutdown() on a linked conn under the same lock, so it never
 * touches a reused fd. */
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "http-internal.h"

#define LOCAL_MAX 1024
#define LOCAL_UNPRIVILEGED (LOCAL_MAX - 128)
#define LOCAL_PER_UID 64
#define PEER_MAX 1024
#define PEER_PER_ADDRESS 128 /* not yet authenticated; a real peer's burst of
				claims fits, one address cannot take the port */
#define HEADER_DEADLINE_S 10
#define BODY_DEADLINE_S 60

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rate-limited warning: one per second per server. */
static void guard_warn(agent_server *srv, const char *fmt, ...) _printf_(2, 3);
static void guard_warn(agent_server *srv, const char *fmt, ...)
{
	char line[512];
	unsigned skipped;
	double now = now_mono();
	va_list ap;

	pthread_mutex_lock(&srv->warn_lock);
	if (now - srv->warn_last < 1.0) {
		srv->warn_suppressed++;
		pthread_mutex_unlock(&srv->warn_lock);
		return;
	}
	srv->warn_last = now;
	skipped = srv->warn_suppressed;
	srv->warn_suppressed = 0;
	pthread_mutex_unlock(&srv->warn_lock);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (skipped)
		log_warn("%s API: %s (%u similar warnings in the last second not shown)",
			 srv->peer ? "peer" : "local", line, skipped);
	else
		log_warn("%s API: %s", srv->peer ? "peer" : "local", line);
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

static bool member(int fd, uid_t uid, gid_t primary, gid_t gid)
{
	return primary == gid || peer_has_group(fd, gid) || uid_in_group(uid, gid);
}

agent_role agent_guard_local_role(agent *a, int fd, uid_t uid, gid_t gid)
{
	bool admin_set, read_set;
	gid_t admin_gid, read_gid;

	if (uid == 0 || uid == geteuid())
		return AGENT_ROLE_ADMIN;
	pthread_mutex_lock(&a->lock);
	admin_set = a->cfg->socket_group != NULL;
	admin_gid = a->cfg->socket_gid;
	read_set = a->cfg->socket_read_group != NULL;
	read_gid = a->cfg->socket_read_gid;
	pthread_mutex_unlock(&a->lock);
	if (admin_set && member(fd, uid, gid, admin_gid))
		return AGENT_ROLE_ADMIN;
	if (read_set && member(fd, uid, gid, read_gid))
		return AGENT_ROLE_READ;
	return AGENT_ROLE_NONE;
}

/* Connections open with the same key that count against its limit (peer
 * API: not yet authenticated), under srv->lock. */
static size_t count_key(const agent_server *srv, const char *key, size_t *unprivileged)
{
	size_t n = 0;

	*unprivileged = 0;
	for (const agent_conn *c = srv->conns; c; c = c->next) {
		n += STREQ(c->key, key) && !c->peer[0];
		*unprivileged += !c->privileged;
	}
	return n;
}

/* A short, complete HTTP answer written straight to a refused local
 * connection (nothing else has been read or written on it yet). */
static void answer_busy(int fd, const char *why)
{
	char body[400], msg[600];
	int n;

	snprintf(body, sizeof(body),
		 "{\"code\":\"busy\",\"message\":\"the vgpumig agent refused the connection: %s; "
		 "close idle connections or try again\"}", why);
	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
	if (n > 0)
		(void)send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void describe_local(agent_conn *c)
{
	struct ucred uc = { .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(uc);

	c->role = AGENT_ROLE_NONE;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		snprintf(c->addr, sizeof(c->addr), "unknown caller");
		return;
	}
	c->uid = uc.uid;
	c->privileged = uc.uid == 0 || uc.uid == geteuid();
	snprintf(c->addr, sizeof(c->addr), "uid %u (pid %d)", (unsigned)uc.uid, (int)uc.pid);
	snprintf(c->key, sizeof(c->key), "uid %u", (unsigned)uc.uid);
	c->role = agent_guard_local_role(c->srv->a, c->fd, uc.uid, uc.gid);
}

static void describe_peer(agent_conn *c, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ai =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ai ? ai->client_addr : NULL;

	snprintf(c->addr, sizeof(c->addr), "?");
	if (sa)
		getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
							    sizeof(struct sockaddr_in),
			    c->addr, sizeof(c->addr), NULL, 0, NI_NUMERICHOST);
	snprintf(c->key, sizeof(c->key), "%s", c->addr);
}

/* Under srv->lock: NULL if c may stay, else why not. */
static const char *over_limit(agent_server *srv, agent_conn *c, char *buf, size_t size)
{
	size_t unpriv, same = count_key(srv, c->key, &unpriv);

	if (srv->peer && same >= PEER_PER_ADDRESS)
		snprintf(buf, size, "%s already has %zu unauthenticated connections open (limit %d per address)",
			 c->addr, same, PEER_PER_ADDRESS);
	else if (!srv->peer && !c->privileged && same >= LOCAL_PER_UID)
		snprintf(buf, size, "%s already has %zu connections open (limit %d per uid)", c->key,
			 same, LOCAL_PER_UID);
	else if (!srv->peer && !c->privileged && unpriv >= LOCAL_UNPRIVILEGED)
		snprintf(buf, size, "%zu connections of non-root callers are open (limit %d; the "
			 "rest is kept for root and the agent)", unpriv, LOCAL_UNPRIVILEGED);
	else
		return NULL;
	return buf;
}

static void conn_started(agent_server *srv, struct MHD_Connection *conn, void **ctx)
{
	const union MHD_ConnectionInfo *fi =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	agent_conn *c = calloc(1, sizeof(*c));
	const char *why = NULL;
	char buf[256];

	if (!c || !fi) {
		free(c);
		if (fi)
			shutdown(fi->connect_fd, SHUT_RDWR);
		return;
	}
	c->srv = srv;
	c->fd = fi->connect_fd;
	if (srv->peer)
		describe_peer(c, conn);
	else
		describe_local(c);
	pthread_mutex_lock(&srv->lock);
	if (!srv->peer && c->role == AGENT_ROLE_NONE)
		why = "";
	else
		why = over_limit(srv, c, buf, sizeof(buf));
	c->deadline = now_mono() + HEADER_DEADLINE_S;
	c->phase = srv->peer ? "the TLS handshake and a request head" : "a request head";
	if ((c->next = srv->conns))
		c->next->prev = c;
	srv->conns = c;
	srv->n_conns++;
	pthread_mutex_unlock(&srv->lock);
	*ctx = c;
	if (srv->peer) {
		const union MHD_ConnectionInfo *ti =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);

		if (ti && ti->tls_session)
			agent_tls_session_setup(c, (gnutls_session_t)ti->tls_session);
		else
			why = "no TLS session";
	}
	if (!why)
		return;
	if (!*why) {
		/* Read its request head (bounded by the deadline) and close without
		 * an answer then, so the client sees a closed connection rather
		 * than a failed connect. */
		guard_warn(srv, "refused %s: not root and not in socket_group or socket_read_group",
			   c->addr);
		return;
	}
	guard_warn(srv, "refused a connection: %s", why);
	if (!srv->peer)
		answer_busy(c->fd, why);
	shutdown(c->fd, SHUT_RDWR);
}

static void conn_closed(agent_server *srv, agent_conn *c)
{
	pthread_mutex_lock(&srv->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	pthread_mutex_unlock(&srv->lock);
	free(c);
}

void agent_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	agent_server *srv = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(srv, conn, socket_context);
	else if (*socket_context)
		conn_closed(srv, *socket_context);
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		*socket_context = NULL;
}

agent_conn *agent_guard_conn(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

void agent_guard_set_deadline(agent_conn *c, unsigned seconds, const char *phase)
{
	pthread_mutex_lock(&c->srv->lock);
	c->deadline = seconds ? now_mono() + seconds : 0;
	c->phase = phase;
	pthread_mutex_unlock(&c->srv->lock);
}

unsigned agent_guard_body_deadline(void)
{
	return BODY_DEADLINE_S;
}

unsigned agent_guard_header_deadline(void)
{
	return HEADER_DEADLINE_S;
}

static void expire(agent_server *srv, double now)
{
	for (agent_conn *c = srv->conns; c; c = c->next) {
		if (c->deadline == 0 || c->deadline > now)
			continue;
		guard_warn(srv, "closed the connection of %s: no %s within its deadline", c->addr,
			   c->phase);
		c->deadline = 0; /* once */
		shutdown(c->fd, SHUT_RDWR);
	}
}

static void *watchdog(void *arg)
{
	agent_server *srv = arg;
	struct timespec ts;

	pthread_mutex_lock(&srv->lock);
	while (!srv->stopping) {
		expire(srv, now_mono());
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srv->wake, &srv->lock, &ts);
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

int agent_guard_start(agent_server *srv, vgm_error *err)
{
	int r = pthread_create(&srv->watchdog, NULL, watchdog, srv);

	if (r != 0)
		return vgm_error_set(err, r, "cannot start the connection watchdog: %s", strerror(r));
	srv->watchdog_running = true;
	return 0;
}

void agent_guard_stop(agent_server *srv)
{
	if (!srv->watchdog_running)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_cond_signal(&srv->wake);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->watchdog, NULL);
	srv->watchdog_running = false;
}

unsigned agent_guard_max_connections(bool peer)
{
	return peer ? PEER_MAX : LOCAL_MAX;
}
