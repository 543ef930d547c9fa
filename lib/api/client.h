/* client.h: HTTP client for the vgpumig agent API (libcurl).
 *
 * One client talks to one agent: the local one over its unix socket
 * (plain HTTP, peer uid checked by the agent) or a peer over TCP with mutual
 * TLS (our certificate and key, the fleet CA; host name verified).
 *
 * A client is immutable after setup and safe to share between threads: each
 * request runs on its own curl easy handle (one idle handle is kept for
 * connection reuse, guarded by a mutex).  Transport failures become one
 * sentence naming the agent and the likely fix; an agent's error reply
 * {"code","message"} becomes a vgm_error with reason = code and the agent's
 * message unchanged, so every boundary shows the agent's own words. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/protocol.h"
#include "util/error.h"

#define VGM_CLIENT_CONNECT_TIMEOUT_MS 2000L
#define VGM_CLIENT_TIMEOUT_MS 10000L
#define VGM_CLIENT_MAX_REPLY (64u * 1024 * 1024)

typedef struct vgm_client vgm_client;

/* Local agent on a unix socket. */
int vgm_client_new_unix(const char *socket_path, vgm_client **out, vgm_error *err);
/* Peer agent at "host:port" ("[v6]:port" too) with mutual TLS. */
int vgm_client_new_tls(const char *hostport, const char *cert, const char *key, const char *ca,
		       vgm_client **out, vgm_error *err);
void vgm_client_free(vgm_client *c);
DEFINE_FREEP(vgm_client, vgm_client_free)

/* Set before sharing the client between threads.  0 keeps the default. */
void vgm_client_set_timeouts(vgm_client *c, long connect_ms, long total_ms);
void vgm_client_set_max_reply(vgm_client *c, size_t max_bytes);
/* The protocol range sent in the Vgpumig-Protocol header; default: this
 * build's (protocol.h).  An agent on VGPUMIG_TEST_PROTOCOL sends its own. */
void vgm_client_set_protocol(vgm_client *c, vgm_protocol_range r);
/* What this client talks to, for messages: the socket path or host:port. */
const char *vgm_client_target(const vgm_client *c);

/* One request.  body may be NULL (no body); content_type NULL means
 * "application/json" when there is a body.  Returns 0 whenever an HTTP reply
 * arrived, whatever its status (*status); transport failures, timeouts and
 * replies above the size limit return -errno with err filled.  *reply is
 * NUL-terminated and malloc'd (possibly empty); reply and reply_len may be
 * NULL. */
int vgm_client_request(vgm_client *c, const char *method, const char *path, const char *body,
		       size_t body_len, const char *content_type, long *status, char **reply,
		       size_t *reply_len, vgm_error *err);

/* Send a JSON body (NULL for none) and decode a JSON reply.  2xx: returns 0,
 * *out (optional) gets the decoded value (a new empty object for an empty
 * body), *status (optional) the status.  Anything else: -errno with err from
 * the agent's {"code","message"} (see vgm_client_reply_error). */
int vgm_client_json(vgm_client *c, const char *method, const char *path, json_t *body,
		    long *status, json_t **out, vgm_error *err);

/* Fill err from a non-2xx reply: reason = its "code", message = its
 * "message" unchanged; a reply that is not such JSON gets a message naming
 * the status.  Returns the negative errno matching the status (400 EINVAL,
 * 401/403 EACCES, 404 ENOENT, 409 EBUSY, 413 EFBIG, 503 EAGAIN, else EIO). */
int vgm_client_reply_error(long status, const char *reply, size_t len, const char *target,
			   vgm_error *err);
