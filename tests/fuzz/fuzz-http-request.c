/* fuzz-http-request.c: libFuzzer target for the agent's HTTP request layer:
 * everything from the first byte on the local socket to a handler's reply
 * (libmicrohttpd's parser, http.c's caller check, routing, content type and
 * body limits, http-guard.c's connection tracking, and the handlers behind
 * every route, with bodies from the input).
 *
 * One agent runs for the whole session on a temp state dir, an empty sysfs
 * root and libvirt_uri = none; each input is written raw to a new connection
 * to its unix socket, the write side is closed, and the reply read.
 *
 * Invariants checked: the agent answers every input with nothing at all or
 * a well-formed HTTP/1.x status line, never a 5xx other than 503 (busy),
 * and keeps accepting connections. */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "metrics.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static agent A = { .lock = PTHREAD_MUTEX_INITIALIZER, .synced = PTHREAD_COND_INITIALIZER,
		   .local_fd = -1, .wake_fd = -1 };
static char sock_path[108];
static char state_root[] = "/tmp/vgm-fuzz-http-XXXXXX";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* libFuzzer ends with exit(): leave no state dir behind. */
static void cleanup(void)
{
	agent_http_stop(&A);
	nftw(state_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#if VGM_TEST_HOOKS
void agent_test_crash_point(agent *a, const char *point)
{
	(void)a;
	(void)point;
}
#endif

static void die(const char *what, const vgm_error *err)
{
	fprintf(stderr, "fuzz-http-request: %s: %s\n", what, err ? vgm_error_message(err) : "");
	exit(1);
}

static void write_config(const char *dir, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("cannot write the config", NULL);
	fprintf(f, "[vgpumigd]\nhost_name = fuzz\nstate_dir = %s/state\nsysfs_root = %s/sysfs\n"
		   "socket = %s/a.sock\nlibvirt_uri = none\nlog_level = error\n"
		   "[peer host-a]\naddress = 127.0.0.1:1\nmigration_tls = no\n", dir, dir, dir);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[160];
	vgm_error err = { 0 };
	vgm_store_opts opts = { .host_name = "fuzz" };

	(void)argc;
	(void)argv;
	if (!mkdtemp(state_root))
		die("mkdtemp", NULL);
	snprintf(path, sizeof(path), "%s/sysfs", state_root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/state", state_root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/vgpumigd.conf", state_root);
	write_config(state_root, path);
	if (agent_config_load(path, &A.cfg, &err) < 0)
		die("config", &err);
	agent_log_set_level(LOG_ERR_);
	A.wake_fd = -1;
	if (vgm_host_new(A.cfg->sysfs_root, &A.host, &err) < 0 ||
	    vgm_store_open(A.cfg->state_dir, &opts, &A.store, &err) < 0)
		die("store", &err);
	if (agent_metrics_new(&A.metrics) < 0)
		die("metrics", NULL);
	if (agent_http_start(&A, &err) < 0)
		die("http", &err);
	snprintf(sock_path, sizeof(sock_path), "%s", A.cfg->socket);
	atexit(cleanup);
	return 0;
}

static int connect_agent(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort(); /* the agent stopped accepting */
	return fd;
}

/* Send all of data (the agent may close early: that is an answer too). */
static void send_all(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t n = send(fd, data, size, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		data += n;
		size -= (size_t)n;
	}
}

static size_t read_reply(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (got < cap - 1 && poll(&p, 1, 5000) > 0) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reply[4096];
	int fd = connect_agent();
	size_t n;
	int status = 0;

	send_all(fd, data, size);
	shutdown(fd, SHUT_WR);
	n = read_reply(fd, reply, sizeof(reply));
	close(fd);
	if (n == 0)
		return 0;
	if (sscanf(reply, "HTTP/1.%*1[01] %3d ", &status) != 1 || status < 100 || status > 599)
		abort();
	if (status >= 500 && status != 503)
		abort();
	return 0;
}
