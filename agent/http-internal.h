/* http-internal.h: what http.c, http-guard.c and peer-tls.c share.
 *
 * One agent_server per API (local unix socket, peer mTLS port).  Every TCP
 * or unix connection gets an agent_conn from the moment libmicrohttpd
 * accepts it (NOTIFY_CONNECTION started) until it is closed; it carries who
 * the caller is (local uid and role, or the authenticated peer name) and the
 * deadline the guard's watchdog enforces.
 *
 * Lock order: srv->lock (connections, TLS credentials) may be taken with
 * a->lock held inside it, never the other way round. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "routes.h"

struct MHD_Daemon;
typedef struct agent_tls agent_tls;

typedef struct agent_conn {
	struct agent_server *srv;
	int fd;
	char addr[64];      /* peer: client IP; local: "uid N (pid P)" */
	char key[64];       /* what the per-source limit counts: IP or uid */
	bool privileged;    /* local: root or the agent's uid (uses the reserve) */
	uid_t uid;          /* local API */
	agent_role role;    /* local API; peer API: AGENT_ROLE_PEER once verified */
	char peer[129];     /* peer API: the [peer NAME] the certificate proved */
	double deadline;    /* monotonic; 0 while a handler runs */
	const char *phase;  /* what the deadline waits for, for the warning */
	struct agent_conn *prev, *next;
} agent_conn;

typedef struct agent_server {
	agent *a;
	bool peer;
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;   /* conns, n_conns, tls, old_tls */
	agent_conn *conns;
	size_t n_conns;
	agent_tls *tls;         /* peer API: current credentials */
	agent_tls **old_tls;    /* replaced on reload: sessions may still use them */
	size_t n_old_tls;
	char *ca_pem;           /* peer API: for MHD's certificate request */
	pthread_mutex_t warn_lock; /* warn_last, warn_suppressed */
	double warn_last;
	unsigned warn_suppressed;
	pthread_t watchdog;
	bool watchdog_running, stopping;
	pthread_cond_t wake;
} agent_server;

/* ---- http-guard.c: connection limits and deadlines ---- */
int agent_guard_start(agent_server *srv, vgm_error *err);
void agent_guard_stop(agent_server *srv);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the agent_server). */
void agent_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			enum MHD_ConnectionNotificationCode toe);
/* The connection's context, or NULL. */
agent_conn *agent_guard_conn(struct MHD_Connection *conn);
/* Deadline for the connection's next step: seconds from now; 0: none. */
void agent_guard_set_deadline(agent_conn *c, unsigned seconds, const char *phase);
unsigned agent_guard_header_deadline(void); /* seconds */
unsigned agent_guard_body_deadline(void);
unsigned agent_guard_max_connections(bool peer);
/* The local caller's role from its uid and groups (under a->lock). */
agent_role agent_guard_local_role(agent *a, int fd, uid_t uid, gid_t gid);

/* ---- peer-tls.c: the peer API's TLS ---- */
/* TLS 1.2+ with AEAD ciphers only (gnutls priority string). */
extern const char agent_tls_priorities[];
int agent_tls_load(const agent_config *c, agent_tls **out, vgm_error *err);
void agent_tls_free(agent_tls *t);
/* Install the current credentials; the old ones stay alive until stop. */
int agent_tls_install(agent_server *srv, agent_tls *t);
/* Set up a new session (from the connection notification): require a
 * client certificate and verify it during the handshake. */
void agent_tls_session_setup(agent_conn *c, gnutls_session_t session);
/* MHD_OPTION_HTTPS_CERT_CALLBACK: the current certificate and key. */
int agent_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req,
		       const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
		       unsigned *n_pcert, gnutls_privkey_t *key);
