/* test-config-peers.c: the peers.d drop-in directory (agent/config-peers.c):
 * peers from files beside the config, name order, skipped names, and every
 * error as FILE:LINE: message with nothing loaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../agent/config.h"

static char dir[64], conf[128], peers[128];

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", name[0] == '/' ? "" : peers, name);
	f = fopen(name[0] == '/' ? name : p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vgm-peers-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conf, sizeof(conf), "%s/vgpumigd.conf", dir);
	snprintf(peers, sizeof(peers), "%s/peers.d", dir);
	put(conf, "[vgpumigd]\nhost_name = host-a\nlibvirt_uri = none\n"
		  "[peer host-b]\naddress = 10.0.0.2:7443\n");
	return mkdir(peers, 0755);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static agent_config *load_ok(void)
{
	agent_config *c = NULL;
	vgm_error e = { 0 };

	if (agent_config_load(conf, &c, &e) < 0)
		fail_msg("load failed: %s", e.message);
	return c;
}

static void load_fails(const char *want)
{
	agent_config *c = NULL;
	vgm_error e = { 0 };

	assert_int_equal(agent_config_load(conf, &c, &e), -EINVAL);
	assert_null(c);
	assert_string_equal(e.reason, "invalid_config");
	if (!strstr(e.message, want))
		fail_msg("message '%s' lacks '%s'", e.message, want);
}

static void test_no_dir_no_dropins(void **state)
{
	(void)state;
	assert_int_equal(rmdir(peers), 0);
	agent_config *c = load_ok();
	assert_int_equal(c->n_peers, 1);
	agent_config_free(c);
	assert_int_equal(mkdir(peers, 0755), 0);
}

static void test_dropins_in_name_order(void **state)
{
	(void)state;
	put("host-d.conf", "# written by configuration management\n[peer host-d]\naddress = 10.0.0.4:7443\n"
			   "libvirt_uri = qemu+tls://host-d/system\n");
	put("host-c.conf", "[peer host-c]\naddress = 10.0.0.3:7443\n");
	put("host-e.conf.dpkg-old", "[peer host-e]\naddress = 10.0.0.5:7443\n");
	put(".host-f.conf", "[peer host-f]\naddress = 10.0.0.6:7443\n");
	put("README", "not a peer\n");
	agent_config *c = load_ok();
	assert_int_equal(c->n_peers, 3);
	assert_string_equal(c->peers[0].name, "host-b"); /* the main file's first */
	assert_string_equal(c->peers[1].name, "host-c");
	assert_string_equal(c->peers[2].name, "host-d");
	assert_string_equal(agent_config_find_peer(c, "host-d")->libvirt_uri, "qemu+tls://host-d/system");
	assert_null(agent_config_find_peer(c, "host-e"));
	assert_null(agent_config_find_peer(c, "host-f"));
	agent_config_free(c);
}

static void test_errors(void **state)
{
	char want[256];

	(void)state;
	put("host-c.conf", "[peer host-c]\naddress = 10.0.0.3:7443\n");
	put("x.conf", "[peer host-b]\naddress = 10.0.0.9:7443\n");
	snprintf(want, sizeof(want), "%s/x.conf:1: peer 'host-b' is defined twice", peers);
	load_fails(want);
	put("x.conf", "[peer host-x]\naddress = 10.0.0.9:7443\n[peer host-y]\naddress = 10.0.0.8:7443\n");
	snprintf(want, sizeof(want), "%s/x.conf:3: a second peer ([peer host-y]); put each peer in its own file", peers);
	load_fails(want);
	put("x.conf", "# nothing\n");
	snprintf(want, sizeof(want), "%s/x.conf:0: no [peer NAME] section", peers);
	load_fails(want);
	put("x.conf", "[peer host-x]\nlibvirt_uri = qemu:///system\n");
	snprintf(want, sizeof(want), "%s/x.conf:1: [peer host-x] has no address", peers);
	load_fails(want);
	put("x.conf", "[vgpumigd]\nlog_level = debug\n");
	snprintf(want, sizeof(want), "%s/x.conf:1: [vgpumigd] belongs in the main config", peers);
	load_fails(want);
	put("x.conf", "[peer host-x]\naddress = nowhere\n");
	snprintf(want, sizeof(want), "%s/x.conf:2: address 'nowhere' must be HOST:PORT", peers);
	load_fails(want);
	put("x.conf", "address = 10.0.0.1:1\n");
	snprintf(want, sizeof(want), "%s/x.conf:1: key 'address' outside a section", peers);
	load_fails(want);
	unlink(strcat(strcpy(want, peers), "/x.conf"));
	assert_int_equal(mkdir(want, 0755), 0);
	load_fails("x.conf:0: not a regular file");
	assert_int_equal(rmdir(want), 0);
	agent_config_free(load_ok());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_dir_no_dropins),
		cmocka_unit_test(test_dropins_in_name_order),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
