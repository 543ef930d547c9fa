/* bench-hook: what libvirt pays per `migrate begin` hook call.
 *
 *   bench-hook --hook PATH --socket PATH --xml FILE [--runs N] [--domain NAME]
 *
 * Each run does what libvirt's virCommand does: fork, exec the hook with
 * `DOMAIN migrate begin -` (VGPUMIG_SOCKET pointing at a running agent),
 * write the domain XML to its stdin, read all of its stdout, wait for it.
 * Prints min/p50/p90/p99/max in milliseconds and the number of runs that did
 * not exit 0 or printed nothing.  No assertions: numbers only. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-stats.h"
#include "util/fs.h"

typedef struct bench_opts {
	const char *hook, *socket, *xml_path, *domain;
	int runs;
} bench_opts;

static pid_t spawn_hook(const bench_opts *o, char *const envp[], int *in_fd, int *out_fd)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		char *argv[] = { (char *)o->hook, (char *)o->domain, "migrate", "begin", "-", NULL };
		execve(o->hook, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	*in_fd = in[1];
	*out_fd = out[0];
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	return pid;
}

/* Feed the XML and drain stdout at once (100 KB does not fit a pipe). */
static size_t pump(int in_fd, int out_fd, const char *xml, size_t len)
{
	size_t off = 0, got = 0;
	char buf[65536];
	while (out_fd >= 0) {
		struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN },
				       { .fd = in_fd, .events = POLLOUT } };
		if (poll(p, in_fd >= 0 ? 2 : 1, 30000) <= 0)
			break;
		if (in_fd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(in_fd, xml + off, len - off);
			if (n > 0)
				off += (size_t)n;
			if (n < 0 && errno != EAGAIN)
				off = len;
			if (off == len) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(out_fd, buf, sizeof(buf));
			if (n <= 0) {
				close(out_fd);
				out_fd = -1;
			} else
				got += (size_t)n;
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	return got;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
	*o = (bench_opts){ .runs = 500, .domain = "bench-vm" };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (STREQ(argv[i], "--hook"))
			o->hook = argv[i + 1];
		else if (STREQ(argv[i], "--socket"))
			o->socket = argv[i + 1];
		else if (STREQ(argv[i], "--xml"))
			o->xml_path = argv[i + 1];
		else if (STREQ(argv[i], "--domain"))
			o->domain = argv[i + 1];
		else if (STREQ(argv[i], "--runs"))
			o->runs = atoi(argv[i + 1]);
		else
			return -1;
	}
	return o->hook && o->socket && o->xml_path && o->runs > 0 && !(argc % 2 == 0) ? 0 : -1;
}

int main(int argc, char **argv)
{
	bench_opts o;
	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: bench-hook --hook PATH --socket PATH --xml FILE [--runs N] "
				"[--domain NAME]\n");
		return 2;
	}
	_cleanup_free_ char *xml = NULL;
	size_t len = 0;
	if (vgm_read_file(o.xml_path, 64u << 20, &xml, &len) < 0) {
		fprintf(stderr, "bench-hook: cannot read %s\n", o.xml_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	char sock_env[4200];
	snprintf(sock_env, sizeof(sock_env), "VGPUMIG_SOCKET=%s", o.socket);
	char *envp[] = { sock_env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

	double *t = calloc((size_t)o.runs, sizeof(double));
	int failed = 0;
	size_t out_len = 0;
	for (int i = 0; i < o.runs; i++) {
		double t0 = bench_now_ms();
		int in_fd, out_fd, status = 0;
		pid_t pid = spawn_hook(&o, envp, &in_fd, &out_fd);
		if (pid < 0) {
			perror("bench-hook: fork");
			return 1;
		}
		out_len = pump(in_fd, out_fd, xml, len);
		waitpid(pid, &status, 0);
		t[i] = bench_now_ms() - t0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out_len == 0)
			failed++;
	}
	bench_sort(t, (size_t)o.runs);
	printf("bench-hook: %d runs, fork+exec+round trip of a %zu-byte domain XML (reply %zu bytes)\n",
	       o.runs, len, out_len);
	printf("  min %.2f ms  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", t[0],
	       bench_pct(t, (size_t)o.runs, 50), bench_pct(t, (size_t)o.runs, 90), bench_pct(t, (size_t)o.runs, 99), t[o.runs - 1]);
	printf("  failed runs: %d\n", failed);
	free(t);
	return 0;
}
