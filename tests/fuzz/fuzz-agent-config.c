/* fuzz-agent-config.c: libFuzzer target for vgpumigd's config parser
 * (agent/config.c), which reads a file an operator (or a config-management
 * tool) wrote and is re-read on every SIGHUP.
 *
 * Invariants checked: a parse either succeeds or fails with a message of
 * the form "fuzz.conf:LINE: ..." and no config; a config that parses is
 * sound as a whole: host name valid, socket and state_dir absolute, every
 * peer has an address that splits into HOST:PORT, and no peer is migrated
 * over qemu+tcp:// while migration_tls is on for it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const agent_config *c)
{
	if (!vgm_name_valid(c->host_name) || c->socket[0] != '/' || c->state_dir[0] != '/')
		abort();
	for (size_t i = 0; i < c->n_peers; i++) {
		const agent_peer *p = &c->peers[i];
		char *host = NULL, *uri = agent_peer_libvirt_uri(c, p);
		unsigned port;

		if (!p->address || agent_split_hostport(p->address, &host, &port) < 0 || !uri)
			abort();
		if (agent_peer_migration_tls(c, p) && strncmp(uri, "qemu+tcp://", 11) == 0)
			abort();
		if (agent_config_find_peer(c, p->name) != p)
			abort();
		free(host);
		free(uri);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	agent_config *c = NULL;
	vgm_error err = { 0 };

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (agent_config_parse("fuzz.conf", text, &c, &err) == 0) {
		check_config(c);
		agent_config_free(c);
	} else if (c || strncmp(err.message, "fuzz.conf:", 10) != 0) {
		abort();
	}
	free(text);
	return 0;
}
