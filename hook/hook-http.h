/* hook-http.h: one HTTP/1.1 request to the local agent over its unix socket.
 *
 * Why not lib/api/client (libcurl): libvirt runs the hook as a new process
 * for every event, and loading libcurl-gnutls (gnutls, p11-kit, krb5, ldap,
 * ssh2...) costs several milliseconds per exec before main() runs, more than
 * the hook's whole budget.  The hook needs no TLS, so it writes the request
 * itself and parses the reply with http-parser (libhttp-parser), a small
 * well-known C parser with no dependencies.  Messages match the client's
 * words so users see the same sentence from the CLI and from libvirt.
 *
 * Deadlines: connect_ms bounds connect(); total_ms bounds the whole
 * exchange.  The reply is complete in memory before it is returned. */
#pragma once

#include <stddef.h>

#include "util/error.h"

typedef struct hook_http_reply {
	int status;
	char *body; /* NUL-terminated, malloc'd; "" when empty */
	size_t len;
} hook_http_reply;

typedef struct hook_http_req {
	const char *socket_path;
	const char *method;
	const char *path;
	const char *content_type;
	const char *body;
	size_t body_len;
	long connect_ms;
	long total_ms;
	size_t max_reply;
} hook_http_req;

/* 0 when an HTTP reply arrived (any status); -errno with err filled on
 * transport failures, timeouts, malformed or oversized replies. */
int hook_http_request(const hook_http_req *req, hook_http_reply *out, vgm_error *err);
void hook_http_reply_clear(hook_http_reply *r);

/* Fill err from a non-2xx reply {"code","message"}: the agent's message as
 * is, or a sentence naming the status. */
void hook_http_reply_error(const hook_http_reply *r, const char *socket_path, vgm_error *err);
