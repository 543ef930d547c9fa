/* peer-tls.c: the peer API's TLS: which protocol, which certificate we
 * show, and who the client is.
 *
 * Trust model: tls_ca signs every agent's certificate, but being signed is
 * not enough.  A client is a peer only when, during the handshake, its
 * certificate
 *   1. verifies against tls_ca (and is not on tls_crl, when one is set),
 *   2. carries the TLS client purpose (extended key usage clientAuth),
 *   3. names exactly one [peer NAME] of the config: a DNS SAN equal to the
 *      peer's tls_name (default NAME), or its CN when it has no DNS SAN; no
 *      wildcards; and, when the peer has tls_fingerprint, is that very
 *      certificate (SHA-256 of its DER).
 * Anything else fails the handshake: no HTTP request is ever read from it,
 * and a warning names the certificate's subject and the reason.
 *
 * Reload: credentials (certificate, key, CA, CRL) are one agent_tls, swapped
 * under srv->lock.  gnutls keeps pointers to the certificate and key it was
 * given while a handshake runs, so replaced sets are kept until the server
 * stops (a few KiB per reload). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "http-internal.h"
#include "util/fs.h"

#define MAX_CHAIN 8

/* TLS 1.3 and 1.2; in 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305. */
const char agent_tls_priorities[] =
	"SECURE192:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
	"+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
	"%SERVER_PRECEDENCE";

struct agent_tls {
	gnutls_pcert_st pcert[MAX_CHAIN];
	unsigned n_pcert;
	gnutls_privkey_t key;
	gnutls_x509_trust_list_t trust; /* tls_ca + tls_crl */
};

void agent_tls_free(agent_tls *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n_pcert; i++)
		gnutls_pcert_deinit(&t->pcert[i]);
	if (t->key)
		gnutls_privkey_deinit(t->key);
	if (t->trust)
		gnutls_x509_trust_list_deinit(t->trust, 1);
	free(t);
}

static int tls_error(vgm_error *err, const char *what, const char *path, int r)
{
	return vgm_error_setr(err, EINVAL, "invalid_config", "%s %s: %s", what, path,
			      gnutls_strerror(r));
}

static int load_trust(agent_tls *t, const agent_config *c, vgm_error *err)
{
	_cleanup_free_ char *ca = NULL, *crl = NULL;
	gnutls_datum_t ca_d, crl_d;
	int r;

	if ((r = vgm_read_file(c->tls_ca, 1u << 20, &ca, NULL)) < 0 ||
	    (c->tls_crl && (r = vgm_read_file(c->tls_crl, 8u << 20, &crl, NULL)) < 0))
		return vgm_error_set(err, -r, "cannot read tls_ca %s or tls_crl %s: %s", c->tls_ca,
				     c->tls_crl ? c->tls_crl : "(none)", strerror(-r));
	if ((r = gnutls_x509_trust_list_init(&t->trust, 0)) < 0)
		return tls_error(err, "cannot set up trust for", c->tls_ca, r);
	ca_d = (gnutls_datum_t){ (unsigned char *)ca, (unsigned)strlen(ca) };
	crl_d = (gnutls_datum_t){ (unsigned char *)crl, crl ? (unsigned)strlen(crl) : 0 };
	r = gnutls_x509_trust_list_add_trust_mem(t->trust, &ca_d, crl ? &crl_d : NULL,
						 GNUTLS_X509_FMT_PEM, GNUTLS_TL_VERIFY_CRL, 0);
	if (r <= 0)
		return tls_error(err, "no usable CA certificate in tls_ca", c->tls_ca,
				 r < 0 ? r : GNUTLS_E_NO_CERTIFICATE_FOUND);
	if (crl) {
		/* add_trust_mem drops CRLs whose signature does not verify: count them */
		r = gnutls_x509_trust_list_add_trust_mem(t->trust, NULL, &crl_d, GNUTLS_X509_FMT_PEM,
							 GNUTLS_TL_VERIFY_CRL, 0);
		if (r < 0)
			return tls_error(err, "unusable CRL in tls_crl", c->tls_crl, r);
		if (r == 0)
			return vgm_error_setr(err, EINVAL, "invalid_config",
					      "tls_crl %s holds no CRL signed by tls_ca %s", c->tls_crl,
					      c->tls_ca);
	}
	return 0;
}

int agent_tls_load(const agent_config *c, agent_tls **out, vgm_error *err)
{
	_cleanup_free_ char *cert = NULL, *key = NULL;
	agent_tls *t = calloc(1, sizeof(*t));
	gnutls_datum_t cd, kd;
	int r;

	*out = NULL;
	if (!t)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((r = vgm_read_file(c->tls_cert, 1u << 20, &cert, NULL)) < 0 ||
	    (r = vgm_read_file(c->tls_key, 1u << 20, &key, NULL)) < 0) {
		agent_tls_free(t);
		return vgm_error_set(err, -r, "cannot read tls_cert %s or tls_key %s: %s", c->tls_cert,
				     c->tls_key, strerror(-r));
	}
	cd = (gnutls_datum_t){ (unsigned char *)cert, (unsigned)strlen(cert) };
	kd = (gnutls_datum_t){ (unsigned char *)key, (unsigned)strlen(key) };
	t->n_pcert = MAX_CHAIN;
	if ((r = gnutls_pcert_list_import_x509_raw(t->pcert, &t->n_pcert, &cd, GNUTLS_X509_FMT_PEM,
						    0)) < 0) {
		t->n_pcert = 0;
		agent_tls_free(t);
		return tls_error(err, "unusable certificate in tls_cert", c->tls_cert, r);
	}
	if ((r = gnutls_privkey_init(&t->key)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(t->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		agent_tls_free(t);
		return tls_error(err, "unusable key in tls_key", c->tls_key, r);
	}
	if ((r = load_trust(t, c, err)) < 0) {
		agent_tls_free(t);
		return r;
	}
	*out = t;
	return 0;
}

int agent_tls_install(agent_server *srv, agent_tls *t)
{
	agent_tls **old;

	pthread_mutex_lock(&srv->lock);
	old = srv->tls ? realloc(srv->old_tls, (srv->n_old_tls + 1) * sizeof(*old)) : srv->old_tls;
	if (srv->tls && !old) {
		pthread_mutex_unlock(&srv->lock);
		return -ENOMEM;
	}
	srv->old_tls = old;
	if (srv->tls)
		srv->old_tls[srv->n_old_tls++] = srv->tls;
	srv->tls = t;
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

int agent_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req,
		       const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
		       unsigned *n_pcert, gnutls_privkey_t *key)
{
	agent_conn *c = gnutls_session_get_ptr(session);

	if (!c)
		return -1;
	pthread_mutex_lock(&c->srv->lock);
	*pcert = c->srv->tls->pcert;
	*n_pcert = c->srv->tls->n_pcert;
	*key = c->srv->tls->key;
	pthread_mutex_unlock(&c->srv->lock);
	return 0;
}

static bool has_client_purpose(gnutls_x509_crt_t crt)
{
	for (unsigned i = 0;; i++) {
		char oid[128];
		size_t len = sizeof(oid);
		int r = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, NULL);

		if (r < 0)
			return false;
		if (STREQ(oid, GNUTLS_KP_TLS_WWW_CLIENT))
			return true;
	}
}

static bool fingerprint_matches(gnutls_x509_crt_t crt, const agent_peer *p)
{
	unsigned char fp[32];
	size_t len = sizeof(fp);

	return gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &len) == 0 &&
	       len == sizeof(fp) && memcmp(fp, p->fingerprint, sizeof(fp)) == 0;
}

/* The one configured peer this certificate names: 0 and name copied, or a
 * reason for the warning. */
static const char *identify_peer(agent *a, gnutls_x509_crt_t crt, char *name, size_t size)
{
	const char *why = NULL;
	size_t found = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const agent_peer *p = &a->cfg->peers[i];

		if (!gnutls_x509_crt_check_hostname2(crt, p->tls_name ? p->tls_name : p->name,
						     GNUTLS_VERIFY_DO_NOT_ALLOW_WILDCARDS))
			continue;
		if (p->has_fingerprint && !fingerprint_matches(crt, p)) {
			why = "it names a peer but is not the certificate pinned by its tls_fingerprint";
			continue;
		}
		if (found++ == 0)
			snprintf(name, size, "%s", p->name);
	}
	pthread_mutex_unlock(&a->lock);
	if (found == 1)
		return NULL;
	if (found > 1)
		return "it matches more than one [peer] section; give each peer its own tls_name";
	return why ? why : "it names no [peer NAME] of this agent's config (DNS SAN or CN = NAME or tls_name)";
}

/* NULL when the chain verifies against tls_ca/tls_crl and the leaf may act
 * as a TLS client; else why not. */
static const char *verify_chain(agent_server *srv, gnutls_x509_crt_t *crts, unsigned n,
				char *buf, size_t size)
{
	unsigned status = 0;
	gnutls_datum_t out = { 0 };
	int r;

	pthread_mutex_lock(&srv->lock);
	r = gnutls_x509_trust_list_verify_crt2(srv->tls->trust, crts, n, NULL, 0,
					       0, &status, NULL);
	pthread_mutex_unlock(&srv->lock);
	if (r < 0)
		return gnutls_strerror(r);
	if (status) {
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
			snprintf(buf, size, "%s", (const char *)out.data);
			gnutls_free(out.data);
			return buf;
		}
		return "it does not verify against tls_ca";
	}
	if (!has_client_purpose(crts[0]))
		return "it lacks the TLS client purpose (extended key usage clientAuth)";
	return NULL;
}

static void refuse(agent_conn *c, gnutls_x509_crt_t leaf, const char *why)
{
	gnutls_datum_t dn = { 0 };

	if (leaf && gnutls_x509_crt_get_dn3(leaf, &dn, 0) == 0) {
		log_warn("peer API: refused %s, certificate '%s': %s", c->addr, (const char *)dn.data, why);
		gnutls_free(dn.data);
	} else {
		log_warn("peer API: refused %s: %s", c->addr, why);
	}
}

static int verify_session(gnutls_session_t session)
{
	agent_conn *c = gnutls_session_get_ptr(session);
	unsigned n = 0;
	const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
	gnutls_x509_crt_t crts[MAX_CHAIN] = { 0 };
	const char *why = NULL;
	char buf[512], name[129] = "";

	if (!c)
		return GNUTLS_E_CERTIFICATE_ERROR;
	if (!raw || n == 0) {
		refuse(c, NULL, "it sent no client certificate");
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	n = MIN(n, MAX_CHAIN);
	for (unsigned i = 0; i < n && !why; i++)
		if (gnutls_x509_crt_init(&crts[i]) < 0 ||
		    gnutls_x509_crt_import(crts[i], &raw[i], GNUTLS_X509_FMT_DER) < 0)
			why = "its certificate cannot be parsed";
	if (!why)
		why = verify_chain(c->srv, crts, n, buf, sizeof(buf));
	if (!why)
		why = identify_peer(c->srv->a, crts[0], name, sizeof(name));
	if (why) {
		refuse(c, crts[0], why);
	} else {
		pthread_mutex_lock(&c->srv->lock); /* the guard counts by it */
		snprintf(c->peer, sizeof(c->peer), "%s", name);
		pthread_mutex_unlock(&c->srv->lock);
	}
	for (unsigned i = 0; i < n; i++)
		if (crts[i])
			gnutls_x509_crt_deinit(crts[i]);
	return why ? GNUTLS_E_CERTIFICATE_ERROR : 0;
}

void agent_tls_session_setup(agent_conn *c, gnutls_session_t session)
{
	gnutls_session_set_ptr(session, c);
	gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(session, verify_session);
}
