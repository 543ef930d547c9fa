/* hook-http.c: see hook-http.h.
 *
 * Invariants: the socket is O_CLOEXEC and non-blocking after connect; every
 * wait is a poll() bounded by the one total deadline; SIGPIPE never fires
 * (MSG_NOSIGNAL); the reply body never grows past max_reply. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <jansson.h>

#include "hook-http.h"

typedef struct reply_state {
	hook_http_reply *out;
	size_t cap, max;
	bool done, too_big, oom;
} reply_state;

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int unreachable(const char *path, int e, vgm_error *err)
{
	const char *words = e == ENOENT ? "no such socket" :
			    e == ECONNREFUSED ? "connection refused" :
			    (e == EACCES || e == EPERM) ? "permission denied" : strerror(e);
	if (e == EACCES || e == EPERM)
		return vgm_error_setr(err, e, "agent_unreachable",
				      "cannot reach the vgpumig agent at %s (%s); run as root or as a "
				      "member of the agent's socket_group",
				      path, words);
	return vgm_error_setr(err, e, "agent_unreachable",
			      "cannot reach the vgpumig agent at %s (%s); is vgpumigd running?", path,
			      words);
}

/* The agent closes silently on callers it does not know, and (rarely) when
 * it is stopping or every connection slot is taken.  libvirt runs the hook
 * as root, whom the agent always knows: then the cause is load, not rights.
 * Connection limits below that answer 503 with the reason instead. */
static int closed_without_answer(const hook_http_req *req, vgm_error *err)
{
	if (geteuid() == 0)
		return vgm_error_setr(err, ECONNRESET, "agent_refused",
				      "the vgpumig agent at %s closed the connection without an "
				      "answer although the hook runs as root: the agent is stopping "
				      "or overloaded; see its log (warnings name the cause)",
				      req->socket_path);
	return vgm_error_setr(err, ECONNRESET, "agent_refused",
			      "the vgpumig agent at %s closed the connection without an answer; run "
			      "as root or as a member of the agent's socket_group",
			      req->socket_path);
}

static int timed_out(const hook_http_req *req, vgm_error *err)
{
	return vgm_error_setr(err, ETIMEDOUT, "agent_timeout",
			      "the vgpumig agent at %s did not answer in time (connect limit %ld ms, "
			      "total %ld ms)",
			      req->socket_path, req->connect_ms, req->total_ms);
}

static int connect_unix(const hook_http_req *req, int *out, vgm_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(req->socket_path);
	if (n == 0 || n >= sizeof(sa.sun_path))
		return vgm_error_setr(err, EINVAL, "bad_socket",
				      "agent socket path '%s' is empty or longer than %zu bytes",
				      req->socket_path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, req->socket_path, n + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vgm_error_set(err, errno, "cannot make a socket: %m");
	/* A unix connect() blocks only while the agent's backlog is full, for
	 * at most SO_SNDTIMEO. */
	struct timeval tv = { .tv_sec = req->connect_ms / 1000,
			      .tv_usec = (req->connect_ms % 1000) * 1000 };
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EAGAIN || errno == EINPROGRESS || errno == ETIMEDOUT)
			return timed_out(req, err);
		return unreachable(req->socket_path, errno, err);
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return vgm_error_set(err, errno, "cannot set up the agent socket: %m");
	*out = TAKE_FD(fd);
	return 0;
}

/* Wait for events on fd until the deadline: 0 ready, -ETIMEDOUT. */
static int wait_fd(int fd, short events, long deadline)
{
	for (;;) {
		long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, (int)MIN(left, 60000L));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const char *buf, size_t len, long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- reply parsing (http-parser callbacks) ---- */

static int on_body(http_parser *p, const char *at, size_t len)
{
	reply_state *st = p->data;
	hook_http_reply *o = st->out;
	if (len > st->max - o->len) {
		st->too_big = true;
		return 1;
	}
	if (o->len + len + 1 > st->cap) {
		size_t cap = MAX(MAX(st->cap * 2, o->len + len + 1), (size_t)8192);
		char *b = realloc(o->body, cap);
		if (!b) {
			st->oom = true;
			return 1;
		}
		o->body = b;
		st->cap = cap;
	}
	memcpy(o->body + o->len, at, len);
	o->len += len;
	o->body[o->len] = '\0';
	return 0;
}

static int on_complete(http_parser *p)
{
	reply_state *st = p->data;
	st->done = true;
	st->out->status = (int)p->status_code;
	return 0;
}

static int read_reply(int fd, const hook_http_req *req, long deadline, hook_http_reply *out,
		      vgm_error *err)
{
	http_parser_settings s;
	http_parser_settings_init(&s);
	s.on_body = on_body;
	s.on_message_complete = on_complete;
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	reply_state st = { .out = out, .max = req->max_reply };
	p.data = &st;
	size_t got = 0;
	char buf[65536];
	while (!st.done) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLIN, deadline);
			if (r == -ETIMEDOUT)
				return timed_out(req, err);
			if (r < 0)
				return vgm_error_set(err, -r, "reading from the agent at %s failed: %s",
						     req->socket_path, strerror(-r));
			continue;
		}
		if (n < 0)
			return vgm_error_set(err, errno, "reading from the agent at %s failed: %m",
					     req->socket_path);
		if (n == 0 && got == 0)
			return closed_without_answer(req, err);
		got += (size_t)n;
		size_t used = http_parser_execute(&p, &s, buf, (size_t)n);
		if (st.too_big)
			return vgm_error_setr(err, EFBIG, "reply_too_large",
					      "the reply from the vgpumig agent at %s exceeds %zu bytes",
					      req->socket_path, req->max_reply);
		if (st.oom)
			return vgm_error_set(err, ENOMEM, "out of memory");
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || (used != (size_t)n && !st.done) ||
		    (n == 0 && !st.done))
			return vgm_error_setr(err, EPROTO, "bad_reply",
					      "the vgpumig agent at %s sent a malformed or incomplete "
					      "reply (%s)",
					      req->socket_path,
					      http_errno_description(HTTP_PARSER_ERRNO(&p)));
	}
	return 0;
}

static int format_head(const hook_http_req *req, char **out)
{
	int n;
	if (req->body)
		n = asprintf(out,
			     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			     "Accept: application/json, application/xml\r\n"
			     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			     req->method, req->path,
			     req->content_type ? req->content_type : "application/json", req->body_len);
	else
		n = asprintf(out, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
			     req->method, req->path);
	return n < 0 ? -ENOMEM : 0;
}

int hook_http_request(const hook_http_req *req, hook_http_reply *out, vgm_error *err)
{
	*out = (hook_http_reply){ 0 };
	long deadline = now_ms() + req->total_ms;
	_cleanup_close_ int fd = -1;
	int r = connect_unix(req, &fd, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *head = NULL;
	if (format_head(req, &head) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	r = send_all(fd, head, strlen(head), deadline);
	if (r == 0 && req->body)
		r = send_all(fd, req->body, req->body_len, deadline);
	if (r == -ETIMEDOUT)
		return timed_out(req, err);
	/* EPIPE/ECONNRESET: the agent may have answered early (413, refusal);
	 * read what it sent before judging. */
	r = read_reply(fd, req, deadline, out, err);
	if (r < 0) {
		hook_http_reply_clear(out);
		return r;
	}
	if (!out->body && !(out->body = strdup(""))) {
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

void hook_http_reply_clear(hook_http_reply *r)
{
	free(r->body);
	*r = (hook_http_reply){ 0 };
}

void hook_http_reply_error(const hook_http_reply *r, const char *socket_path, vgm_error *err)
{
	json_t *j = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *code = json_string_value(json_object_get(j, "code"));
	const char *msg = json_string_value(json_object_get(j, "message"));
	int e = r->status == 409 ? EBUSY : r->status == 404 ? ENOENT : r->status == 413 ? EFBIG :
		r->status >= 400 && r->status < 500 ? EINVAL : EIO;
	if (msg && msg[0])
		vgm_error_setr(err, e, code ? code : "agent_error", "%s", msg);
	else
		vgm_error_setr(err, e, "agent_error",
			       "the vgpumig agent at %s answered HTTP %d without an explanation",
			       socket_path, r->status);
	json_decref(j);
}
