/* config.h: vgpumigd's configuration (INI), see docs/vgpumigd.md.
 *
 * A config is parsed and checked completely before anyone uses it: on any
 * problem the load fails with "FILE:LINE: message" and nothing changes, so a
 * SIGHUP reload swaps configs only when the new one is sound. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

#define AGENT_DEFAULT_CONFIG "/etc/vgpumig/vgpumigd.conf"

enum { LOG_ERR_ = 0, LOG_WARN_ = 1, LOG_INFO_ = 2, LOG_DEBUG_ = 3 };

typedef struct agent_peer {
	char *name;        /* the section's NAME, as used by `--to NAME` */
	char *address;     /* HOST:PORT of its mTLS API */
	char *libvirt_uri; /* NULL: qemu+tls://NAME/system (qemu+tcp:// when migration_tls is off) */
	char *tls_name;    /* name its certificate must carry (DNS SAN, else CN); NULL: NAME */
	unsigned char fingerprint[32]; /* pinned SHA-256 of its certificate (DER) */
	bool has_fingerprint;
	int migration_tls; /* -1: the [vgpumigd] default; 0 clear text; 1 VIR_MIGRATE_TLS */
	unsigned line;     /* of its section header, for messages */
} agent_peer;

typedef struct agent_config {
	char *path;
	char *host_name;
	char *state_dir;
	char *sysfs_root;
	char *socket;
	char *listen;       /* NULL or "": peer API off */
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_crl;      /* NULL: no revocation list */
	char *libvirt_uri;  /* "none": run without libvirt */
	char *socket_group; /* NULL: root only; admin role */
	gid_t socket_gid;
	char *socket_read_group; /* NULL: none; read-only role */
	gid_t socket_read_gid;
	int log_level;
	unsigned lease_seconds;
	bool lab_mode;
	bool remove_released;
	bool migration_tls; /* default for peers: encrypt migrations (VIR_MIGRATE_TLS) */
	agent_peer *peers;
	size_t n_peers;
} agent_config;

int agent_config_load(const char *path, agent_config **out, vgm_error *err);
void agent_config_free(agent_config *c);
DEFINE_FREEP(agent_config, agent_config_free)
/* Parse a whole config from memory; path names it in messages.  What
 * agent_config_load does after reading the file (the fuzz target calls it). */
int agent_config_parse(const char *path, char *text, agent_config **out, vgm_error *err);
/* Peers from the drop-in directory peers.d beside the config file
 * (config-peers.c): every *.conf there holds one [peer NAME] section. */
int agent_config_load_peers_d(agent_config *c, const char *config_path, vgm_error *err);
/* Parse text (a drop-in's, modified in place) as [peer] sections only, into c. */
int agent_config_parse_peers(agent_config *c, const char *path, char *text, vgm_error *err);
const agent_peer *agent_config_find_peer(const agent_config *c, const char *name);
/* Does this peer's migration use TLS (VIR_MIGRATE_TLS)? */
bool agent_peer_migration_tls(const agent_config *c, const agent_peer *p);
/* The peer's libvirt URI, malloc'd: its libvirt_uri or the default for its
 * migration_tls (qemu+tls://NAME/system, or qemu+tcp:// when it is off). */
char *agent_peer_libvirt_uri(const agent_config *c, const agent_peer *p);
bool agent_config_no_libvirt(const agent_config *c);
/* Split "HOST:PORT" ("[::1]:7443" too); host is malloc'd. */
int agent_split_hostport(const char *s, char **host, unsigned *port);
const char *agent_log_level_name(int level);
