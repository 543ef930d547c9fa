/* test-agent-config.c: vgpumigd's INI config (agent/config.c): defaults,
 * every key, peers, and each kind of error reported as FILE:LINE: message.
 * Lives with the API tests because the config decides what the API serves. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../agent/config.h"

static char path[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/vgm-config-test-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void write_config(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static agent_config *load_ok(const char *text)
{
	agent_config *c = NULL;
	vgm_error err = { 0 };

	write_config(text);
	if (agent_config_load(path, &c, &err) < 0)
		fail_msg("config rejected: %s", err.message);
	return c;
}

/* Expect a refusal naming line and containing want. */
static void expect_error(const char *text, unsigned line, const char *want)
{
	agent_config *c = (agent_config *)1;
	vgm_error err = { 0 };
	char prefix[96];

	write_config(text);
	assert_true(agent_config_load(path, &c, &err) < 0);
	assert_null(c);
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	if (strncmp(err.message, prefix, strlen(prefix)) != 0 || !strstr(err.message, want))
		fail_msg("config %s: got '%s', wanted '%s...%s'", text, err.message, prefix, want);
}

static void test_defaults(void **state)
{
	agent_config *c = load_ok("# only a comment\n[vgpumigd]\n");

	(void)state;
	assert_string_equal(c->socket, "/run/vgpumig/vgpumigd.sock");
	assert_string_equal(c->state_dir, "/var/lib/vgpumig");
	assert_string_equal(c->sysfs_root, "/");
	assert_string_equal(c->libvirt_uri, "qemu:///system");
	assert_null(c->listen);
	assert_null(c->socket_group);
	assert_int_equal(c->lease_seconds, 300);
	assert_int_equal(c->log_level, LOG_INFO_);
	assert_false(c->lab_mode);
	assert_true(c->remove_released);
	assert_non_null(c->host_name);
	assert_false(agent_config_no_libvirt(c));
	agent_config_free(c);
}

static void test_keys_and_peers(void **state)
{
	agent_config *c = load_ok("[vgpumigd]\n"
				  "  host_name = host-b  \n"
				  "state_dir = \"/tmp/st\"\n"
				  "socket=/tmp/a.sock\n"
				  "listen =\n"
				  "lease_seconds = 2\n"
				  "libvirt_uri = none\n"
				  "log_level = debug\n"
				  "lab_mode = yes\n"
				  "remove_released = false\n"
				  "socket_group = root\n"
				  "; comment\n"
				  "[peer host-a]\n"
				  "address = 198.51.100.1:7443\n"
				  "[peer host-c]\n"
				  "address = [::1]:7443\n"
				  "libvirt_uri = qemu+tcp://host-c/system\n"
				  "migration_tls = no\n");

	(void)state;
	assert_string_equal(c->host_name, "host-b");
	assert_string_equal(c->state_dir, "/tmp/st");
	assert_string_equal(c->socket, "/tmp/a.sock");
	assert_null(c->listen); /* empty: peer API off, no TLS files needed */
	assert_int_equal(c->lease_seconds, 2);
	assert_true(agent_config_no_libvirt(c));
	assert_int_equal(c->log_level, LOG_DEBUG_);
	assert_true(c->lab_mode);
	assert_false(c->remove_released);
	assert_int_equal(c->socket_gid, 0);
	assert_int_equal(c->n_peers, 2);
	assert_string_equal(agent_config_find_peer(c, "host-a")->address, "198.51.100.1:7443");
	assert_null(agent_config_find_peer(c, "host-a")->libvirt_uri);
	assert_string_equal(agent_config_find_peer(c, "host-c")->libvirt_uri, "qemu+tcp://host-c/system");
	assert_null(agent_config_find_peer(c, "host-x"));
	agent_config_free(c);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("foo = 1\n", 1, "outside a section");
	expect_error("[vgpumigd]\n\nfoo = 1\n", 3, "unknown key 'foo'");
	expect_error("[other]\n", 1, "unknown section [other]");
	expect_error("[vgpumigd\n", 1, "missing its ']'");
	expect_error("[vgpumigd]\njunk\n", 2, "expected 'key = value'");
	expect_error("[vgpumigd]\nlease_seconds = 5\nlease_seconds = 6\n", 3, "already set on line 2");
	expect_error("[vgpumigd]\nlease_seconds = 0\n", 2, "from 1 to 86400");
	expect_error("[vgpumigd]\nlease_seconds = 12x\n", 2, "lease_seconds '12x'");
	expect_error("[vgpumigd]\nlog_level = loud\n", 2, "error, warn, info or debug");
	expect_error("[vgpumigd]\nlab_mode = maybe\n", 2, "true or false");
	expect_error("[vgpumigd]\nhost_name = ../x\n", 2, "host_name '../x'");
	expect_error("[vgpumigd]\nsocket = relative.sock\n", 2, "absolute");
	expect_error("[vgpumigd]\nsocket_group = no-such-group-vgm\n", 2, "does not exist");
	expect_error("[vgpumigd]\nlisten = nope\n", 2, "HOST:PORT");
	expect_error("[vgpumigd]\n\nlisten = 127.0.0.1:7443\n", 3, "tls_cert is needed");
	expect_error("[vgpumigd]\nlisten = 127.0.0.1:7443\ntls_cert = /nonexistent/c.pem\n", 3,
		     "tls_cert '/nonexistent/c.pem' cannot be read");
	expect_error("[peer a/b]\n", 1, "peer name 'a/b'");
	expect_error("[peer x]\naddress = h:1\n[peer x]\n", 3, "defined twice");
	expect_error("[vgpumigd]\n[peer y]\nlibvirt_uri = qemu:///system\n", 2, "has no address");
	expect_error("[peer y]\naddress = h:99999\n", 2, "HOST:PORT");
	expect_error("[peer y]\nport = 1\n", 2, "unknown key 'port' in [peer y]");
	/* clear text only when the config says so */
	expect_error("[peer y]\naddress = h:1\nlibvirt_uri = qemu+tcp://y/system\n", 1,
		     "clear text while migration_tls is on");
	expect_error("[vgpumigd]\nmigration_tls = no\n[peer y]\naddress = h:1\n"
		     "migration_tls = yes\nlibvirt_uri = qemu+tcp://y/system\n", 3,
		     "use qemu+tls://");
	expect_error("[peer y]\naddress = h:1\ntls_fingerprint = sha256:abcd\n", 3,
		     "must be a SHA-256 fingerprint");
	expect_error("[peer y]\naddress = h:1\ntls_name = a/b\n", 3, "tls_name 'a/b'");
	expect_error("[peer y]\naddress = h:1\nmigration_tls = sometimes\n", 3, "true or false");
	expect_error("[vgpumigd]\nsocket_read_group = no-such-group-vgm\n", 2,
		     "socket_read_group 'no-such-group-vgm' does not exist");
}

/* Peers: identity binding, migration encryption and its default URI. */
static void test_peer_security(void **state)
{
	agent_config *c = load_ok("[vgpumigd]\n"
				  "socket_read_group = root\n"
				  "[peer a]\naddress = h:1\n"
				  "[peer b]\naddress = h:2\nmigration_tls = no\ntls_name = b.example\n"
				  "tls_fingerprint = 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
				  "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n");
	const agent_peer *a = agent_config_find_peer(c, "a"), *b = agent_config_find_peer(c, "b");
	char *uri;

	(void)state;
	assert_non_null(c->socket_read_group);
	assert_int_equal(c->socket_read_gid, 0);
	assert_true(agent_peer_migration_tls(c, a));
	uri = agent_peer_libvirt_uri(c, a);
	assert_string_equal(uri, "qemu+tls://a/system");
	free(uri);
	assert_false(a->has_fingerprint);
	assert_null(a->tls_name);
	assert_false(agent_peer_migration_tls(c, b));
	uri = agent_peer_libvirt_uri(c, b);
	assert_string_equal(uri, "qemu+tcp://b/system");
	free(uri);
	assert_string_equal(b->tls_name, "b.example");
	assert_true(b->has_fingerprint);
	assert_int_equal(b->fingerprint[0], 0x00);
	assert_int_equal(b->fingerprint[10], 0xaa);
	assert_int_equal(b->fingerprint[31], 0xff);
	agent_config_free(c);
}

static void test_split_hostport(void **state)
{
	char *host = NULL;
	unsigned port = 0;

	(void)state;
	assert_int_equal(agent_split_hostport("127.0.0.1:7443", &host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7443);
	free(host);
	assert_int_equal(agent_split_hostport("[::1]:1", &host, &port), 0);
	assert_string_equal(host, "::1");
	free(host);
	assert_int_equal(agent_split_hostport("host", &host, &port), -EINVAL);
	assert_int_equal(agent_split_hostport(":80", &host, &port), -EINVAL);
	assert_int_equal(agent_split_hostport("h:0", &host, &port), -EINVAL);
	assert_int_equal(agent_split_hostport("[::1]80", &host, &port), -EINVAL);
	assert_null(host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_and_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_security, setup, teardown),
		cmocka_unit_test(test_split_hostport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
