/*
 * net_tls.c - TLS for the HTTP server: the server's SSL_CTX (certificate chain, private key,
 * protocol settings), its reload, and the few OpenSSL calls the connection code needs, so that
 * net_conn.c includes no OpenSSL header.
 *
 * Settings (fixed, not configurable): TLS 1.2 minimum, 1.3 preferred (OpenSSL picks the highest
 * both sides speak); TLS 1.2 suites are ECDHE with AEAD only (AES-GCM, ChaCha20-Poly1305), in the
 * server's order; TLS 1.3 suites are OpenSSL's defaults; no compression, no renegotiation; ALPN
 * answers "http/1.1" when the client offers it (and nothing otherwise: a client offering only h2
 * gets no ALPN and speaks HTTP/1.1 or leaves). SSL_MODE_RELEASE_BUFFERS gives an idle connection's
 * 2 x ~17 KiB record buffers back (an idle TLS connection measured ~16 KiB, docs/tls.md).
 *
 * The private key file is opened once and checked on that descriptor (fstat, no race with a
 * rename): refused when "other" users may read it, a warning when its group may (the Debian
 * ssl-cert group convention). A passphrase-protected key is refused (no prompt on a service).
 *
 * Reload: net_tls_reload builds a whole new SSL_CTX from the same paths; only when that succeeded
 * does it replace the current one, under tls->lock. A connection takes the current context at
 * accept (SSL_new, which holds its own reference), so connections already open keep the
 * certificate they were accepted with, and the old context is freed by OpenSSL when the last of
 * them closes. A failed reload leaves the current context in place and says why.
 *
 * Threading: net_tls_bev_new runs on the loop threads, net_tls_reload on any thread (the signal
 * thread); the lock covers only the pointer swap and SSL_new.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <event2/bufferevent_ssl.h>

#include "cm_log.h"
#include "net_int.h"

struct net_tls {
    pthread_mutex_t lock;
    SSL_CTX *ctx;  /* the context new connections take */
    SSL_CTX *cctx; /* with a CA only: the client side, for net_client */
    char *cert_file, *key_file;
    char *ca_file; /* NULL: no peer certificates asked for (the S3 port) */
};

/* TLS 1.2 suites: forward secret (ECDHE), authenticated encryption only, strongest first. */
#define NET_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

/* The first queued OpenSSL error as text (the queue is then cleared). */
static void ssl_error(const char *what, const char *path, char *err, size_t cap)
{
    char detail[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    snprintf(err, cap, "%s %s: %s", what, path, detail);
}

/* A key with a passphrase cannot be read by a service: never prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static EVP_PKEY *key_read(const char *path, char *err, size_t cap)
{
    struct stat st;
    EVP_PKEY *key = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot open TLS key %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, cap, "TLS key %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, cap, "TLS key %s may be read or written by every user (mode %03o): chmod 600",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return NULL;
    }
    if (st.st_mode & S_IRGRP)
        CM_WARN("net", "TLS key %s is readable by its group (mode %03o)", path,
                (unsigned)(st.st_mode & 0777));
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(err, cap, "cannot read TLS key %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!key)
        ssl_error("cannot load the TLS key (PEM, no passphrase)", path, err, cap);
    return key;
}

/* ALPN: HTTP/1.1 is all this server speaks. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Log what a context serves: subject, serial, expiry (and warn when it has expired). */
static void cert_describe(SSL_CTX *ctx, const char *path, const char *verb)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    char subject[256] = "?", serial[80] = "?", until[64] = "?";
    if (!x)
        return;
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(serial, sizeof(serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, X509_get0_notAfter(x))) {
        int n = BIO_read(b, until, (int)sizeof(until) - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    CM_INFO("net", "TLS certificate %s from %s: %s, serial %s, valid until %s", verb, path, subject,
            serial, until);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        CM_WARN("net", "TLS certificate %s has expired (%s)", path, until);
}

/*
 * Peers of the cluster: the certificate presented must chain to the CA (a server asks for one and
 * refuses a peer without). Any certificate the CA signed is a peer: no name is compared (the
 * RPC's HMAC then says which node it is).
 */
static int ctx_peers(SSL_CTX *ctx, const char *ca, int client, char *err, size_t cap)
{
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        ssl_error("cannot load the TLS CA (PEM)", ca, err, cap);
        return -1;
    }
    if (!client) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (client ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT), NULL);
    return 0;
}

/* A complete server (or, with a CA, client) context from t's files, or NULL with err set. */
static SSL_CTX *ctx_build(const net_tls *t, int client, char *err, size_t cap)
{
    const char *cert = t->cert_file, *key_path = t->key_file;
    EVP_PKEY *key = NULL;
    SSL_CTX *ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
    if (!ctx) {
        ssl_error("cannot create a TLS context for", cert, err, cap);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, NET_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        ssl_error("cannot set the TLS ciphers for", cert, err, cap);
        goto fail;
    }
    if (!client) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"cairn", 5);
    }
    if (t->ca_file && ctx_peers(ctx, t->ca_file, client, err, cap) != 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_error("cannot load the TLS certificate chain (PEM)", cert, err, cap);
        goto fail;
    }
    if (!(key = key_read(key_path, err, cap)))
        goto fail;
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error("TLS key does not match the certificate", key_path, err, cap);
        goto fail;
    }
    EVP_PKEY_free(key);
    return ctx;
fail:
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return NULL;
}

/* Both contexts t needs (the client one only with a CA); 0, or -1 with err set. */
static int ctx_build_all(const net_tls *t, SSL_CTX **ctx, SSL_CTX **cctx, char *err, size_t cap)
{
    *cctx = NULL;
    if (!(*ctx = ctx_build(t, 0, err, cap)))
        return -1;
    if (t->ca_file && !(*cctx = ctx_build(t, 1, err, cap))) {
        SSL_CTX_free(*ctx);
        *ctx = NULL;
        return -1;
    }
    return 0;
}

cm_err net_tls_new_peers(const char *ca_file, const char *cert_file, const char *key_file,
                         net_tls **out, char *err, size_t errcap)
{
    *out = NULL;
    net_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&t->lock, NULL);
    t->cert_file = strdup(cert_file);
    t->key_file = strdup(key_file);
    t->ca_file = ca_file ? strdup(ca_file) : NULL;
    if (!t->cert_file || !t->key_file || (ca_file && !t->ca_file)) {
        net_tls_free(t);
        return CM_ERR_NOMEM;
    }
    if (ctx_build_all(t, &t->ctx, &t->cctx, err, errcap) != 0) {
        net_tls_free(t);
        return CM_ERR_INVAL;
    }
    cert_describe(t->ctx, cert_file, "loaded");
    *out = t;
    return CM_OK;
}

cm_err net_tls_new(const char *cert_file, const char *key_file, net_tls **out, char *err,
                   size_t errcap)
{
    return net_tls_new_peers(NULL, cert_file, key_file, out, err, errcap);
}

cm_err net_tls_reload(net_tls *t, char *err, size_t errcap)
{
    SSL_CTX *fresh, *cfresh;
    if (ctx_build_all(t, &fresh, &cfresh, err, errcap) != 0) {
        CM_WARN("net", "TLS reload failed, still serving the previous certificate: %s", err);
        return CM_ERR_INVAL;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx, *cold = t->cctx;
    t->ctx = fresh;
    t->cctx = cfresh;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* open connections hold their own references */
    SSL_CTX_free(cold);
    cert_describe(fresh, t->cert_file, "reloaded");
    return CM_OK;
}

void net_tls_free(net_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    SSL_CTX_free(t->cctx);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ---- for net_conn.c ---- */

struct bufferevent *net_tls_bev_new(net_tls *t, struct event_base *base, evutil_socket_t fd)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* libevent freed ssl (BEV_OPT_CLOSE_ON_FREE); the caller closes fd */
    /* a client closing without close_notify after a whole response is an ordinary EOF */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *net_tls_client_bev_new(net_tls *t, struct event_base *base)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = t->cctx ? SSL_new(t->cctx) : NULL;
    pthread_mutex_unlock(&t->lock);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev; /* NULL: libevent freed ssl (BEV_OPT_CLOSE_ON_FREE) */
}

void net_tls_close_notify(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    /* one non-blocking write of the alert straight to the socket; the output buffer is empty */
    if (ssl && SSL_is_init_finished(ssl) && SSL_shutdown(ssl) < 0)
        ERR_clear_error();
}

int net_tls_failure(struct bufferevent *bev, char *why, size_t cap)
{
    unsigned long e;
    int plain = 0, named = 0;
    snprintf(why, cap, "connection closed");
    /* libevent keeps OpenSSL's errors and, first, the SSL_get_error code (library 0): skip that */
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        int reason = ERR_GET_REASON(e);
        if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)
            plain = 1;
        if (ERR_GET_LIB(e) != 0 && !named++)
            ERR_error_string_n(e, why, cap);
    }
    return plain;
}
