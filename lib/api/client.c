/* client.c: see client.h.
 *
 * Invariants: the vgm_client fields other than the idle-handle slot never
 * change once the client is shared; curl_global_init runs exactly once per
 * process (pthread_once, the only process-wide state here, because libcurl
 * demands it); every request either hands its easy handle back to the idle
 * slot or frees it; the reply buffer never grows past max_reply. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "protocol.h"

struct vgm_client {
	bool tls;
	char *target;   /* socket path, or host:port */
	char *base_url; /* "http://localhost" or "https://host:port" */
	char *cert, *key, *ca;
	long connect_ms, total_ms;
	size_t max_reply;
	vgm_protocol_range protocol; /* sent on every request (protocol.h) */
	pthread_mutex_t lock; /* guards idle */
	CURL *idle;           /* one handle kept for connection reuse */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int client_alloc(bool tls, const char *target, vgm_client **out, vgm_error *err)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return vgm_error_setr(err, EIO, "curl_init", "cannot initialise libcurl: %s",
				      curl_easy_strerror(curl_init_rc));
	vgm_client *c = calloc(1, sizeof(*c));
	if (!c)
		return vgm_error_set(err, ENOMEM, "out of memory");
	c->tls = tls;
	c->connect_ms = VGM_CLIENT_CONNECT_TIMEOUT_MS;
	c->total_ms = VGM_CLIENT_TIMEOUT_MS;
	c->max_reply = VGM_CLIENT_MAX_REPLY;
	c->protocol = vgm_protocol_native();
	pthread_mutex_init(&c->lock, NULL);
	c->target = strdup(target);
	if (!c->target) {
		vgm_client_free(c);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

int vgm_client_new_unix(const char *socket_path, vgm_client **out, vgm_error *err)
{
	if (!socket_path || !socket_path[0])
		return vgm_error_setr(err, EINVAL, "bad_socket", "no agent socket path given");
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	int r = client_alloc(false, socket_path, &c, err);
	if (r < 0)
		return r;
	c->base_url = strdup("http://localhost");
	if (!c->base_url)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = TAKE_PTR(c);
	return 0;
}

static bool hostport_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1] || strlen(s) > 255)
		return false;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	for (const char *p = s; p < colon; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_[]:", *p))
			return false;
	return true;
}

int vgm_client_new_tls(const char *hostport, const char *cert, const char *key, const char *ca,
		       vgm_client **out, vgm_error *err)
{
	if (!hostport || !hostport_valid(hostport))
		return vgm_error_setr(err, EINVAL, "bad_address",
				      "peer address '%s' is not HOST:PORT; fix the peer's address",
				      hostport ? hostport : "");
	if (!cert || !key || !ca)
		return vgm_error_setr(err, EINVAL, "tls_config",
				      "mutual TLS to %s needs tls_cert, tls_key and tls_ca", hostport);
	_cleanup_(vgm_client_freep) vgm_client *c = NULL;
	int r = client_alloc(true, hostport, &c, err);
	if (r < 0)
		return r;
	if (asprintf(&c->base_url, "https://%s", hostport) < 0) {
		c->base_url = NULL;
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	c->cert = strdup(cert);
	c->key = strdup(key);
	c->ca = strdup(ca);
	if (!c->cert || !c->key || !c->ca)
		return vgm_error_set(err, ENOMEM, "out of memory");
	*out = TAKE_PTR(c);
	return 0;
}

void vgm_client_free(vgm_client *c)
{
	if (!c)
		return;
	if (c->idle)
		curl_easy_cleanup(c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c->target);
	free(c->base_url);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c);
}

void vgm_client_set_timeouts(vgm_client *c, long connect_ms, long total_ms)
{
	if (connect_ms > 0)
		c->connect_ms = connect_ms;
	if (total_ms > 0)
		c->total_ms = total_ms;
}

void vgm_client_set_protocol(vgm_client *c, vgm_protocol_range r)
{
	c->protocol = r;
}

void vgm_client_set_max_reply(vgm_client *c, size_t max_bytes)
{
	if (max_bytes > 0)
		c->max_reply = max_bytes;
}

const char *vgm_client_target(const vgm_client *c)
{
	return c->target;
}

/* ---- easy handles ---- */

static CURL *handle_take(vgm_client *c)
{
	pthread_mutex_lock(&c->lock);
	CURL *h = TAKE_PTR(c->idle);
	pthread_mutex_unlock(&c->lock);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

static void handle_give_back(vgm_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (!c->idle)
		c->idle = TAKE_PTR(h);
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- reply buffer ---- */

typedef struct reply_buf {
	char *data;
	size_t len, cap, max;
	bool too_big;
} reply_buf;

static size_t reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	reply_buf *b = userdata;
	size_t n = size * nmemb;
	if (n > b->max - b->len) {
		b->too_big = true;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = MAX(b->cap * 2, b->len + n + 1);
		cap = MAX(cap, (size_t)4096);
		char *p = realloc(b->data, cap);
		if (!p)
			return 0;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* ---- transport errors ---- */

static const char *os_errno_words(long e)
{
	switch (e) {
	case ENOENT: return "no such socket";
	case ECONNREFUSED: return "connection refused";
	case EACCES: return "permission denied";
	case EPERM: return "permission denied";
	case ENETUNREACH: return "network unreachable";
	case EHOSTUNREACH: return "host unreachable";
	case ETIMEDOUT: return "timed out";
	default: return NULL;
	}
}

static const char *agent_kind(const vgm_client *c)
{
	return c->tls ? "vgpumig peer agent" : "vgpumig agent";
}

static int connect_error(vgm_client *c, CURL *h, CURLcode rc, const char *errbuf, vgm_error *err)
{
	long os = 0;
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os);
	const char *words = os_errno_words(os);
	char detail[300];
	snprintf(detail, sizeof(detail), "%s", words ? words : (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
	if (c->tls)
		return vgm_error_setr(err, os > 0 ? (int)os : ECONNREFUSED, "agent_unreachable",
				      "cannot reach the %s at %s (%s); is vgpumigd running there and "
				      "listening on that address?",
				      agent_kind(c), c->target, detail);
	if (os == EACCES || os == EPERM)
		return vgm_error_setr(err, EACCES, "agent_unreachable",
				      "cannot reach the %s at %s (%s); run as root or as a member of "
				      "the agent's socket_group",
				      agent_kind(c), c->target, detail);
	return vgm_error_setr(err, os > 0 ? (int)os : ECONNREFUSED, "agent_unreachable",
			      "cannot reach the %s at %s (%s); is vgpumigd running?", agent_kind(c),
			      c->target, detail);
}

static int transport_error(vgm_client *c, CURL *h, CURLcode rc, const char *errbuf,
			   const reply_buf *b, vgm_error *err)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return connect_error(c, h, rc, errbuf, err);
	case CURLE_OPERATION_TIMEDOUT:
		return vgm_error_setr(err, ETIMEDOUT, "agent_timeout",
				      "the %s at %s did not answer in time (connect limit %ld ms, "
				      "total %ld ms)",
				      agent_kind(c), c->target, c->connect_ms, c->total_ms);
	case CURLE_GOT_NOTHING:
		return vgm_error_setr(err, ECONNRESET, "agent_refused",
				      "the %s at %s closed the connection without an answer%s",
				      agent_kind(c), c->target,
				      c->tls ? "; check that both hosts' certificates come from the "
					       "fleet CA"
					     : "; run as root or as a member of the agent's "
					       "socket_group");
	case CURLE_WRITE_ERROR:
		if (b->too_big)
			return vgm_error_setr(err, EFBIG, "reply_too_large",
					      "the reply from the %s at %s exceeds %zu bytes",
					      agent_kind(c), c->target, b->max);
		return vgm_error_set(err, ENOMEM, "out of memory reading the reply from %s",
				     c->target);
	default:
		break;
	}
	if (c->tls && (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
		       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
		       rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR))
		return vgm_error_setr(err, EPROTO, "tls_failed",
				      "mutual TLS with the %s at %s failed (%s); check tls_cert, "
				      "tls_key and tls_ca on both hosts",
				      agent_kind(c), c->target,
				      errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return vgm_error_setr(err, EIO, "agent_io", "talking to the %s at %s failed: %s",
			      agent_kind(c), c->target, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* ---- requests ---- */

static void curl_slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

static int setup_handle(vgm_client *c, CURL *h, const char *method, const char *path,
			const char *body, size_t body_len, struct curl_slist *headers)
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", c->base_url, path) < 0)
		return -ENOMEM;
	CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	SET(CURLOPT_TIMEOUT_MS, c->total_ms);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_PROTOCOLS_STR, c->tls ? "https" : "http");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	if (c->tls) {
		SET(CURLOPT_SSLCERT, c->cert);
		SET(CURLOPT_SSLKEY, c->key);
		SET(CURLOPT_CAINFO, c->ca);
		SET(CURLOPT_CAPATH, NULL);
		SET(CURLOPT_SSL_VERIFYPEER, 1L);
		SET(CURLOPT_SSL_VERIFYHOST, 2L);
	} else {
		SET(CURLOPT_UNIX_SOCKET_PATH, c->target);
	}
	if (body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		SET(CURLOPT_POSTFIELDS, body);
	}
	if (!STREQ(method, body ? "POST" : "GET"))
		SET(CURLOPT_CUSTOMREQUEST, method);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

static struct curl_slist *make_headers(const vgm_client *c, const char *body,
				       const char *content_type)
{
	struct curl_slist *l = curl_slist_append(NULL, "Expect:"); /* no 100-continue wait */
	if (!l)
		return NULL;
	struct curl_slist *n = curl_slist_append(l, "Accept: application/json, text/xml");
	if (!n)
		goto fail;
	l = n;
	char pv[64], range[32];
	vgm_protocol_format(c->protocol, range, sizeof(range));
	snprintf(pv, sizeof(pv), VGM_PROTOCOL_HEADER ": %s", range);
	if (!(n = curl_slist_append(l, pv)))
		goto fail;
	l = n;
	if (body) {
		char ct[200];
		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 content_type ? content_type : "application/json");
		n = curl_slist_append(l, ct);
		if (!n)
			goto fail;
		l = n;
	}
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

int vgm_client_request(vgm_client *c, const char *method, const char *path, const char *body,
		       size_t body_len, const char *content_type, long *status, char **reply,
		       size_t *reply_len, vgm_error *err)
{
	if (!path || path[0] != '/')
		return vgm_error_set(err, EINVAL, "API path '%s' must start with '/'",
				     path ? path : "");
	_cleanup_(curl_slist_freep) struct curl_slist *headers = make_headers(c, body, content_type);
	CURL *h = handle_take(c);
	if (!headers || !h) {
		if (h)
			curl_easy_cleanup(h);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	reply_buf b = { .max = c->max_reply };
	int r = setup_handle(c, h, method, path, body, body_len, headers);
	if (r == 0)
		r = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
				    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_write) == CURLE_OK &&
				    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b) == CURLE_OK
			    ? 0
			    : -EINVAL;
	if (r < 0) {
		curl_easy_cleanup(h);
		return vgm_error_set(err, -r, "cannot set up a request to %s", c->target);
	}
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		r = transport_error(c, h, rc, errbuf, &b, err);
		curl_easy_cleanup(h); /* a failed connection is not worth keeping */
		free(b.data);
		return r;
	}
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	handle_give_back(c, h);
	if (!b.data && !(b.data = strdup(""))) /* empty body: still a string */
		return vgm_error_set(err, ENOMEM, "out of memory");
	if (status)
		*status = code;
	if (reply_len)
		*reply_len = b.len;
	if (reply)
		*reply = b.data;
	else
		free(b.data);
	return 0;
}

/* ---- JSON ---- */

static int status_errno(long status)
{
	switch (status) {
	case 400: return EINVAL;
	case 401:
	case 403: return EACCES;
	case 404: return ENOENT;
	case 409: return EBUSY;
	case 413: return EFBIG;
	case 422: return EINVAL;
	case 503: return EAGAIN;
	case 504: return ETIMEDOUT;
	default: return EIO;
	}
}

int vgm_client_reply_error(long status, const char *reply, size_t len, const char *target,
			   vgm_error *err)
{
	int code = status_errno(status);
	json_t *j = reply && len ? json_loadb(reply, len, 0, NULL) : NULL;
	const char *reason = j ? json_string_value(json_object_get(j, "code")) : NULL;
	const char *message = j ? json_string_value(json_object_get(j, "message")) : NULL;
	int r;
	if (message && message[0])
		r = vgm_error_setr(err, code, reason ? reason : "agent_error", "%s", message);
	else
		r = vgm_error_setr(err, code, reason ? reason : "agent_error",
				   "the vgpumig agent at %s answered HTTP %ld without an explanation",
				   target ? target : "?", status);
	json_decref(j);
	return r;
}

int vgm_client_json(vgm_client *c, const char *method, const char *path, json_t *body,
		    long *status, json_t **out, vgm_error *err)
{
	_cleanup_free_ char *text = NULL;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return vgm_error_set(err, ENOMEM, "cannot encode the request to %s", c->target);
	_cleanup_free_ char *reply = NULL;
	size_t len = 0;
	long st = 0;
	int r = vgm_client_request(c, method, path, text, text ? strlen(text) : 0, NULL, &st, &reply,
				   &len, err);
	if (r < 0)
		return r;
	if (status)
		*status = st;
	if (st < 200 || st > 299)
		return vgm_client_reply_error(st, reply, len, c->target, err);
	if (!out)
		return 0;
	if (len == 0) {
		*out = json_object();
		return *out ? 0 : vgm_error_set(err, ENOMEM, "out of memory");
	}
	json_error_t jerr;
	*out = json_loadb(reply, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return vgm_error_setr(err, EPROTO, "bad_reply",
				      "the %s at %s sent a reply that is not JSON (%s)",
				      agent_kind(c), c->target, jerr.text);
	return 0;
}
