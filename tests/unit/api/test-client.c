/* test-client.c: lib/api/client against a small libmicrohttpd server on a
 * unix socket in a temp dir: status and body passthrough, the agent's error
 * words kept unchanged, transport errors named clearly, reply size limit,
 * timeouts, and one client shared by many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/client.h"

typedef struct server {
	char dir[64];
	char path[128];
	struct MHD_Daemon *mhd;
} server;

typedef struct upload {
	char *data;
	size_t len;
} upload;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
			     const char *body, size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* /echo answers "METHOD CONTENT-TYPE BODY". */
static enum MHD_Result echo(struct MHD_Connection *conn, const char *method, upload *u)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	char *out = NULL;
	int n = asprintf(&out, "%s %s %.*s", method, ct ? ct : "-", (int)u->len,
			 u->data ? u->data : "");
	assert_true(n >= 0);
	enum MHD_Result r = reply(conn, 200, "text/plain", out, (size_t)n);
	free(out);
	return r;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *data_size, void **con_cls)
{
	upload *u = *con_cls;
	if (!u) {
		*con_cls = calloc(1, sizeof(upload));
		return MHD_YES;
	}
	if (*data_size) {
		u->data = realloc(u->data, u->len + *data_size + 1);
		memcpy(u->data + u->len, data, *data_size);
		u->len += *data_size;
		*data_size = 0;
		return MHD_YES;
	}
	if (STREQ(url, "/ok"))
		return reply(conn, 200, "application/json", "{\"a\": 1}", 8);
	if (STREQ(url, "/empty"))
		return reply(conn, 204, "application/json", "", 0);
	if (STREQ(url, "/conflict")) {
		const char *b = "{\"code\": \"no_capacity\", \"message\": \"no free vGPU of "
				"profile 'NVIDIA A100-4C' on host-b (0 of 7 left)\"}";
		return reply(conn, 409, "application/json", b, strlen(b));
	}
	if (STREQ(url, "/plain500"))
		return reply(conn, 500, "text/plain", "oops", 4);
	if (STREQ(url, "/notjson"))
		return reply(conn, 200, "application/json", "{nope", 5);
	if (STREQ(url, "/big")) {
		size_t len = 2u * 1024 * 1024;
		char *b = malloc(len);
		memset(b, 'x', len);
		struct MHD_Response *r = MHD_create_response_from_buffer(len, b, MHD_RESPMEM_MUST_FREE);
		enum MHD_Result ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (STREQ(url, "/slow")) {
		usleep(1500 * 1000);
		return reply(conn, 200, "application/json", "{}", 2);
	}
	return echo(conn, method, u);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	upload *u = *con_cls;
	if (u)
		free(u->data);
	free(u);
	*con_cls = NULL;
}

/* A bound unix socket at path (the path fits: tests use short temp dirs). */
static int bind_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int server_start(void **state)
{
	server *s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/vgm-client-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/agent.sock", s->dir);
	int fd = bind_unix(s->path);
	assert_int_equal(listen(fd, 64), 0);
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				  0, NULL, NULL, handler, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	assert_non_null(s->mhd);
	*state = s;
	return 0;
}

static int server_stop(void **state)
{
	server *s = *state;
	MHD_stop_daemon(s->mhd);
	unlink(s->path);
	rmdir(s->dir);
	free(s);
	return 0;
}

static vgm_client *client_for(server *s)
{
	vgm_client *c = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_client_new_unix(s->path, &c, &err), 0);
	return c;
}

static void test_json_ok(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	json_t *out = NULL;
	long status = 0;
	vgm_error err = { 0 };
	assert_int_equal(vgm_client_json(c, "GET", "/ok", NULL, &status, &out, &err), 0);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(out, "a")), 1);
	json_decref(out);
	/* 204 with no body: an empty object, still success */
	assert_int_equal(vgm_client_json(c, "DELETE", "/empty", NULL, &status, &out, &err), 0);
	assert_int_equal(status, 204);
	assert_true(json_is_object(out));
	json_decref(out);
}

static void test_agent_error_unchanged(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	vgm_error err = { 0 };
	long status = 0;
	json_t *body = json_pack("{s:s}", "migration_id", "m1");
	int r = vgm_client_json(c, "POST", "/conflict", body, &status, NULL, &err);
	json_decref(body);
	assert_int_equal(r, -EBUSY);
	assert_int_equal(status, 409);
	assert_string_equal(err.reason, "no_capacity");
	assert_string_equal(err.message,
			    "no free vGPU of profile 'NVIDIA A100-4C' on host-b (0 of 7 left)");

	r = vgm_client_json(c, "GET", "/plain500", NULL, &status, NULL, &err);
	assert_int_equal(r, -EIO);
	assert_non_null(strstr(err.message, "HTTP 500"));

	r = vgm_client_json(c, "GET", "/notjson", NULL, NULL, NULL, &err);
	assert_int_equal(r, 0); /* no out: the body is not decoded */
	json_t *out = NULL;
	r = vgm_client_json(c, "GET", "/notjson", NULL, NULL, &out, &err);
	assert_int_equal(r, -EPROTO);
	assert_string_equal(err.reason, "bad_reply");
	assert_null(out);
}

static void test_raw_request(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	vgm_error err = { 0 };
	_cleanup_free_ char *reply = NULL;
	size_t len = 0;
	long status = 0;
	const char xml[] = "<domain type='kvm'>\n  <name>x</name>\n</domain>\n";
	assert_int_equal(vgm_client_request(c, "POST", "/echo", xml, sizeof(xml) - 1, "text/xml",
					    &status, &reply, &len, &err),
			 0);
	assert_int_equal(status, 200);
	assert_string_equal(reply, "POST text/xml <domain type='kvm'>\n  <name>x</name>\n</domain>\n");
	assert_int_equal(len, strlen(reply));
	free(TAKE_PTR(reply));

	/* a large body is sent whole, without a 100-continue pause */
	size_t big = 300 * 1024;
	_cleanup_free_ char *b = malloc(big);
	memset(b, 'y', big);
	assert_int_equal(vgm_client_request(c, "PUT", "/echo", b, big, NULL, &status, &reply, &len,
					    &err),
			 0);
	assert_int_equal(len, strlen("PUT application/json ") + big);
}

static void test_reply_limit(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	vgm_client_set_max_reply(c, 1024 * 1024);
	vgm_error err = { 0 };
	char *reply = NULL;
	int r = vgm_client_request(c, "GET", "/big", NULL, 0, NULL, NULL, &reply, NULL, &err);
	assert_int_equal(r, -EFBIG);
	assert_null(reply);
	assert_string_equal(err.reason, "reply_too_large");
}

static void test_timeout(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	vgm_client_set_timeouts(c, 200, 300);
	vgm_error err = { 0 };
	int r = vgm_client_json(c, "GET", "/slow", NULL, NULL, NULL, &err);
	assert_int_equal(r, -ETIMEDOUT);
	assert_string_equal(err.reason, "agent_timeout");
	assert_non_null(strstr(err.message, "did not answer in time"));
	/* the client still works after a timeout */
	json_t *out = NULL;
	assert_int_equal(vgm_client_json(c, "GET", "/ok", NULL, NULL, &out, &err), 0);
	json_decref(out);
}

static void test_unreachable(void **state)
{
	server *s = *state;
	char path[200];
	snprintf(path, sizeof(path), "%s/missing.sock", s->dir);
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_client_new_unix(path, &c, &err), 0);
	assert_true(vgm_client_json(c, "GET", "/v1/host", NULL, NULL, NULL, &err) < 0);
	char want[300];
	snprintf(want, sizeof(want),
		 "cannot reach the vgpumig agent at %s (no such socket); is vgpumigd running?", path);
	assert_string_equal(err.message, want);
	assert_string_equal(err.reason, "agent_unreachable");

	/* a socket file nobody listens on */
	snprintf(path, sizeof(path), "%s/dead.sock", s->dir);
	int fd = bind_unix(path);
	vgm_client_free(c);
	assert_int_equal(vgm_client_new_unix(path, &c, &err), 0);
	assert_int_equal(vgm_client_json(c, "GET", "/v1/host", NULL, NULL, NULL, &err), -ECONNREFUSED);
	snprintf(want, sizeof(want),
		 "cannot reach the vgpumig agent at %s (connection refused); is vgpumigd running?",
		 path);
	assert_string_equal(err.message, want);
	close(fd);
	unlink(path);
}

static void test_bad_arguments(void **state)
{
	vgm_client *c = NULL;
	vgm_error err = { 0 };
	assert_int_equal(vgm_client_new_unix("", &c, &err), -EINVAL);
	assert_int_equal(vgm_client_new_tls("no-port", "c", "k", "a", &c, &err), -EINVAL);
	assert_non_null(strstr(err.message, "HOST:PORT"));
	assert_int_equal(vgm_client_new_tls("h/x:1", "c", "k", "a", &c, &err), -EINVAL);
	assert_int_equal(vgm_client_new_tls("h:1", NULL, "k", "a", &c, &err), -EINVAL);
	assert_int_equal(vgm_client_new_tls("[::1]:8443", "c", "k", "a", &c, &err), 0);
	assert_string_equal(vgm_client_target(c), "[::1]:8443");
	vgm_client_free(c);
	c = client_for(*state);
	assert_int_equal(vgm_client_request(c, "GET", "v1/host", NULL, 0, NULL, NULL, NULL, NULL, &err),
			 -EINVAL);
	vgm_client_free(c);
}

#define N_THREADS 8
#define N_REQUESTS 40

static void *hammer(void *arg)
{
	vgm_client *c = arg;
	intptr_t failures = 0;
	for (int i = 0; i < N_REQUESTS; i++) {
		char body[64];
		int n = snprintf(body, sizeof(body), "{\"i\": %d}", i);
		char *reply = NULL;
		long status = 0;
		char want[96];
		snprintf(want, sizeof(want), "POST application/json %s", body);
		if (vgm_client_request(c, "POST", "/echo", body, (size_t)n, NULL, &status, &reply,
				       NULL, NULL) < 0 ||
		    status != 200 || !STREQ(reply, want))
			failures++;
		free(reply);
	}
	return (void *)failures;
}

static void test_threads_share_client(void **state)
{
	_cleanup_(vgm_client_freep) vgm_client *c = client_for(*state);
	pthread_t t[N_THREADS];
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, c), 0);
	intptr_t failures = 0;
	for (int i = 0; i < N_THREADS; i++) {
		void *ret = NULL;
		pthread_join(t[i], &ret);
		failures += (intptr_t)ret;
	}
	assert_int_equal(failures, 0);
}

static void test_reply_error_direct(void **state)
{
	vgm_error err = { 0 };
	const char *b = "{\"code\":\"bad_request\",\"message\":\"field 'devices' is missing\"}";
	assert_int_equal(vgm_client_reply_error(400, b, strlen(b), "x", &err), -EINVAL);
	assert_string_equal(err.message, "field 'devices' is missing");
	assert_int_equal(vgm_client_reply_error(403, "", 0, "sock", &err), -EACCES);
	assert_string_equal(err.reason, "agent_error");
	assert_int_equal(vgm_client_reply_error(413, "{}", 2, "sock", &err), -EFBIG);
	assert_int_equal(vgm_client_reply_error(404, "[1]", 3, "sock", &err), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_ok),
		cmocka_unit_test(test_agent_error_unchanged),
		cmocka_unit_test(test_raw_request),
		cmocka_unit_test(test_reply_limit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_threads_share_client),
		cmocka_unit_test(test_reply_error_direct),
	};
	return cmocka_run_group_tests(tests, server_start, server_stop);
}
