/*
 * gw_chunked.c - incremental aws-chunked body decoder (signed chunks, unsigned chunks, trailers).
 *
 * Wire format:
 *   chunk   = hex-size [";chunk-signature=" 64hex] CRLF data CRLF       (repeated)
 *   last    = "0" [";chunk-signature=" 64hex] CRLF
 *   then    CRLF                                   (no trailer)
 *     or    *(name ":" value CRLF) ["x-amz-trailer-signature:" 64hex CRLF] CRLF   (trailer modes)
 * The body is done once the final empty line is read, and it must end there: the decoder is fed
 * the whole HTTP body, so a byte after that line (Content-Length larger than the aws-chunked
 * stream, or data appended to it) fails the request with IncompleteBody, the length and the
 * framing disagree. Bare LF is accepted where CRLF is due (some
 * hand-written clients), and in the signed-trailer mode an empty line right after the last chunk
 * (the layout of AWS's own example) is skipped, since that mode must still send its signature.
 *
 * Signatures (signed modes), chained from the seed signature of the request:
 *   chunk:   HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n" prev "\n"
 *                      hex(sha256("")) "\n" hex(sha256(data)))
 *   trailer: HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n" date "\n" scope "\n" prev "\n"
 *                      hex(sha256(each trailer as "name:value\n")))
 * Trailer names are hashed lowercased and values trimmed; for what SDKs send this is the bytes as
 * received.
 *
 * Memory: chunk data is hashed and moved to `out` as it arrives (evbuffer_remove_buffer moves
 * chains, no copy), so a chunk is never held whole. Header lines are capped at 4 KiB, trailers at
 * 16 KiB in total. Any error is sticky. One decoder per request; not thread-safe.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "gw_auth.h"

#define CK_LINE_MAX 4096
#define CK_TRAILER_MAX 16384
#define CK_TRAILERS_MAX 32

typedef enum {
    CK_HEADER,   /* expecting a chunk header line */
    CK_DATA,     /* inside chunk data */
    CK_DATA_END, /* expecting the CRLF after chunk data */
    CK_TRAILER,  /* after the last chunk: trailer lines until the empty line */
    CK_DONE,
    CK_FAILED,
} ck_state;

typedef struct {
    char *name; /* lowercased */
    char *value;
} ck_trailer;

struct gw_chunked {
    ck_state state;
    gw_s3err err;
    int signed_chunks;  /* every chunk carries a signature */
    int trailer_signed; /* an x-amz-trailer-signature must close the trailer */
    int trailer_mode;   /* trailers are expected */
    uint8_t key[32];
    char amz_date[17];
    char scope[128];
    char prev_sig[65];
    char chunk_sig[65]; /* signature announced by the current chunk header */
    uint64_t remaining; /* bytes of data left in the current chunk */
    cm_ck data_hash;    /* SHA-256 of the current chunk's data */
    int hashing;
    char *want_trailer; /* x-amz-trailer, lowercased, or NULL */
    ck_trailer trailers[CK_TRAILERS_MAX];
    size_t ntrailers, trailer_bytes;
    cm_ck trailer_hash;
    int trailer_hashing, trailer_sig_seen, trailer_lines;
};

static const char empty_sha_hex[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

cm_err gw_chunked_new(const gw_auth_result *auth, const char *trailer_name, gw_chunked **out)
{
    gw_chunked *d = calloc(1, sizeof(*d));
    if (!d)
        return CM_ERR_NOMEM;
    gw_payload_mode m = auth->mode;
    d->signed_chunks = m == GW_PAYLOAD_STREAMING_SIGNED || m == GW_PAYLOAD_STREAMING_SIGNED_TRAILER;
    d->trailer_signed = m == GW_PAYLOAD_STREAMING_SIGNED_TRAILER;
    d->trailer_mode = m != GW_PAYLOAD_STREAMING_SIGNED;
    if (d->signed_chunks) {
        memcpy(d->key, auth->signing_key, 32);
        memcpy(d->amz_date, auth->amz_date, sizeof(d->amz_date));
        memcpy(d->prev_sig, auth->seed_signature, sizeof(d->prev_sig));
        d->amz_date[16] = d->prev_sig[64] = '\0';
        snprintf(d->scope, sizeof(d->scope), "%.8s/%s/%s/aws4_request", auth->date, auth->region,
                 auth->service[0] ? auth->service : "s3");
    }
    if (trailer_name && *trailer_name) {
        d->want_trailer = strdup(trailer_name);
        if (!d->want_trailer) {
            free(d);
            return CM_ERR_NOMEM;
        }
        for (char *p = d->want_trailer; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    d->state = CK_HEADER;
    *out = d;
    return CM_OK;
}

void gw_chunked_free(gw_chunked *d)
{
    if (!d)
        return;
    if (d->hashing)
        cm_ck_release(&d->data_hash);
    if (d->trailer_hashing)
        cm_ck_release(&d->trailer_hash);
    for (size_t i = 0; i < d->ntrailers; i++) {
        free(d->trailers[i].name);
        free(d->trailers[i].value);
    }
    free(d->want_trailer);
    memset(d->key, 0, sizeof(d->key));
    free(d);
}

int gw_chunked_done(const gw_chunked *d)
{
    return d->state == CK_DONE;
}

const char *gw_chunked_trailer(const gw_chunked *d, const char *name)
{
    for (size_t i = 0; i < d->ntrailers; i++)
        if (strcasecmp(d->trailers[i].name, name) == 0)
            return d->trailers[i].value;
    return NULL;
}

static gw_s3err fail(gw_chunked *d, gw_s3err e)
{
    d->state = CK_FAILED;
    d->err = e;
    return e;
}

/*
 * Take one line (without its CRLF/LF) from in into buf. Returns 1 with a line, 0 when more input
 * is needed, -1 when the line exceeds CK_LINE_MAX.
 */
static int read_line(struct evbuffer *in, char *buf, size_t *len)
{
    size_t avail = evbuffer_get_length(in);
    size_t look = CM_MIN(avail, (size_t)CK_LINE_MAX + 2);
    ev_ssize_t got = evbuffer_copyout(in, buf, look);
    if (got < 0)
        return -1;
    char *nl = memchr(buf, '\n', (size_t)got);
    if (!nl)
        return look > CK_LINE_MAX + 1 ? -1 : 0; /* room for the CR of a full line */
    size_t n = (size_t)(nl - buf);
    evbuffer_drain(in, n + 1);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > CK_LINE_MAX)
        return -1;
    buf[n] = '\0';
    *len = n;
    return 1;
}

/* HMAC over the string to sign of a chunk or of the trailer, compared with `claimed`. */
static int sig_ok(gw_chunked *d, const char *kind, const char *mid, const char *hash_hex,
                  const char *claimed)
{
    char sts[512];
    uint8_t mac[32];
    char hex[65];
    int n = snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s\n%s%s", kind, d->amz_date, d->scope,
                     d->prev_sig, mid, hash_hex);
    if (n < 0 || (size_t)n >= sizeof(sts))
        return 0;
    cm_hmac_sha256(d->key, 32, sts, (size_t)n, mac);
    cm_hex_encode(mac, 32, hex);
    if (!cm_ct_equal(hex, claimed, 64))
        return 0;
    memcpy(d->prev_sig, hex, sizeof(d->prev_sig));
    return 1;
}

static int chunk_sig_ok(gw_chunked *d, const char *data_hash_hex)
{
    char mid[80];
    snprintf(mid, sizeof(mid), "%s\n", empty_sha_hex);
    return sig_ok(d, "AWS4-HMAC-SHA256-PAYLOAD", mid, data_hash_hex, d->chunk_sig);
}

/* "hex-size[;ext...]": size into d->remaining, chunk-signature into d->chunk_sig. */
static gw_s3err parse_chunk_header(gw_chunked *d, const char *s, size_t n)
{
    size_t i = 0;
    uint64_t size = 0;
    while (i < n && isxdigit((unsigned char)s[i])) {
        if (i == 15)
            return GW_INVALID_REQUEST; /* > 2^60 bytes: nonsense */
        int c = tolower((unsigned char)s[i]);
        size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        i++;
    }
    if (i == 0)
        return GW_INVALID_REQUEST;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    int have_sig = 0;
    while (i < n) {
        if (s[i] != ';')
            return GW_INVALID_REQUEST;
        i++;
        size_t e = i;
        while (e < n && s[e] != ';')
            e++;
        static const char key[] = "chunk-signature=";
        if (e - i > sizeof(key) - 1 && memcmp(s + i, key, sizeof(key) - 1) == 0) {
            size_t v = i + sizeof(key) - 1;
            if (d->signed_chunks && gw_sigv4_parse_signature(s + v, e - v, d->chunk_sig) != 0)
                return GW_SIGNATURE_MISMATCH;
            have_sig = 1;
        }
        i = e;
    }
    if (d->signed_chunks && !have_sig)
        return GW_SIGNATURE_MISMATCH;
    d->remaining = size;
    return GW_OK;
}

static gw_s3err step_header(gw_chunked *d, struct evbuffer *in, int *progress)
{
    char line[CK_LINE_MAX + 3];
    size_t n = 0;
    int r = read_line(in, line, &n);
    if (r < 0)
        return GW_INVALID_ARGUMENT;
    if (r == 0)
        return GW_OK;
    *progress = 1;
    gw_s3err e = parse_chunk_header(d, line, n);
    if (e != GW_OK)
        return e;
    if (d->remaining == 0) {
        if (d->signed_chunks && !chunk_sig_ok(d, empty_sha_hex))
            return GW_SIGNATURE_MISMATCH;
        d->state = CK_TRAILER;
        return GW_OK;
    }
    if (d->signed_chunks) {
        if (cm_ck_init(&d->data_hash, CM_CK_SHA256) != CM_OK)
            return GW_INTERNAL;
        d->hashing = 1;
    }
    d->state = CK_DATA;
    return GW_OK;
}

/* Hash (when signed) and move up to d->remaining bytes from in to out, without copying. */
static gw_s3err step_data(gw_chunked *d, struct evbuffer *in, struct evbuffer *out, int *progress)
{
    size_t n = (size_t)CM_MIN((uint64_t)evbuffer_get_length(in), d->remaining);
    while (n > 0) {
        size_t take = n;
        if (d->hashing) {
            struct evbuffer_iovec v[8];
            int k = evbuffer_peek(in, (ev_ssize_t)n, NULL, v, 8);
            take = 0;
            for (int i = 0; i < k && i < 8 && take < n; i++) {
                size_t part = CM_MIN(v[i].iov_len, n - take);
                cm_ck_update(&d->data_hash, v[i].iov_base, part);
                take += part;
            }
        }
        if (take == 0 || evbuffer_remove_buffer(in, out, take) != (int)take)
            return GW_INTERNAL;
        n -= take;
        d->remaining -= take;
        *progress = 1;
    }
    if (d->remaining > 0)
        return GW_OK;
    if (d->hashing) {
        uint8_t h[32];
        char hex[65];
        cm_ck_final(&d->data_hash, h);
        d->hashing = 0;
        cm_hex_encode(h, 32, hex);
        if (!chunk_sig_ok(d, hex))
            return GW_SIGNATURE_MISMATCH;
    }
    d->state = CK_DATA_END;
    return GW_OK;
}

/* The CRLF (or LF) that closes chunk data; anything else means the size was wrong. */
static gw_s3err step_data_end(gw_chunked *d, struct evbuffer *in, int *progress)
{
    unsigned char c[2];
    ev_ssize_t got = evbuffer_copyout(in, c, 2);
    if (got <= 0)
        return GW_OK;
    if (c[0] == '\n') {
        evbuffer_drain(in, 1);
    } else if (c[0] == '\r') {
        if (got < 2)
            return GW_OK;
        if (c[1] != '\n')
            return GW_INCOMPLETE_BODY;
        evbuffer_drain(in, 2);
    } else {
        return GW_INCOMPLETE_BODY;
    }
    *progress = 1;
    d->state = CK_HEADER;
    return GW_OK;
}

/* Trim blanks from both ends of s[0..*n); returns the new start. */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && (*s == ' ' || *s == '\t'))
        s++, (*n)--;
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

static gw_s3err trailer_hash_init(gw_chunked *d)
{
    if (d->trailer_hashing)
        return GW_OK;
    if (cm_ck_init(&d->trailer_hash, CM_CK_SHA256) != CM_OK)
        return GW_INTERNAL;
    d->trailer_hashing = 1;
    return GW_OK;
}

static gw_s3err check_trailer_sig(gw_chunked *d, const char *v, size_t vn)
{
    char claimed[65], hex[65];
    uint8_t h[32];
    if (gw_sigv4_parse_signature(v, vn, claimed) != 0 || trailer_hash_init(d) != GW_OK)
        return GW_SIGNATURE_MISMATCH;
    cm_ck_final(&d->trailer_hash, h);
    d->trailer_hashing = 0;
    cm_hex_encode(h, 32, hex);
    if (!sig_ok(d, "AWS4-HMAC-SHA256-TRAILER", "", hex, claimed))
        return GW_SIGNATURE_MISMATCH;
    d->trailer_sig_seen = 1;
    return GW_OK;
}

static gw_s3err add_trailer(gw_chunked *d, const char *name, size_t nn, const char *v, size_t vn)
{
    d->trailer_bytes += nn + vn + 2;
    if (d->ntrailers == CK_TRAILERS_MAX || d->trailer_bytes > CK_TRAILER_MAX)
        return GW_INVALID_ARGUMENT;
    ck_trailer *t = &d->trailers[d->ntrailers];
    t->name = strndup(name, nn);
    t->value = strndup(v, vn);
    if (!t->name || !t->value) {
        free(t->name);
        free(t->value);
        return GW_INTERNAL;
    }
    d->ntrailers++;
    for (char *p = t->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (d->trailer_signed) {
        if (trailer_hash_init(d) != GW_OK)
            return GW_INTERNAL;
        cm_ck_update(&d->trailer_hash, t->name, nn);
        cm_ck_update(&d->trailer_hash, ":", 1);
        cm_ck_update(&d->trailer_hash, t->value, vn);
        cm_ck_update(&d->trailer_hash, "\n", 1);
    }
    return GW_OK;
}

/* The empty line after the last chunk or the trailer: the body ends here, if it may. */
static gw_s3err trailer_end(gw_chunked *d)
{
    if (d->trailer_signed && !d->trailer_sig_seen) {
        if (d->trailer_lines == 0)
            return GW_OK; /* AWS's example puts a CRLF before the trailer: skip it */
        return GW_SIGNATURE_MISMATCH;
    }
    if (d->want_trailer && !gw_chunked_trailer(d, d->want_trailer))
        return GW_INVALID_REQUEST; /* announced in x-amz-trailer, never sent */
    d->state = CK_DONE;
    return GW_OK;
}

static gw_s3err step_trailer(gw_chunked *d, struct evbuffer *in, int *progress)
{
    char line[CK_LINE_MAX + 3];
    size_t n = 0;
    int r = read_line(in, line, &n);
    if (r < 0)
        return GW_INVALID_ARGUMENT;
    if (r == 0)
        return GW_OK;
    *progress = 1;
    if (n == 0)
        return trailer_end(d);
    if (!d->trailer_mode || d->trailer_sig_seen)
        return GW_INVALID_REQUEST;
    d->trailer_lines++;
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return GW_INVALID_REQUEST;
    size_t nn = (size_t)(colon - line), vn = n - nn - 1;
    const char *name = trim(line, &nn), *v = trim(colon + 1, &vn);
    if (nn == 0 || memchr(line, '\0', n))
        return GW_INVALID_REQUEST; /* a NUL is no header byte, and would cut the copies short */
    if (nn == 23 && strncasecmp(name, "x-amz-trailer-signature", 23) == 0)
        return d->trailer_signed ? check_trailer_sig(d, v, vn) : GW_OK;
    return add_trailer(d, name, nn, v, vn);
}

gw_s3err gw_chunked_feed(gw_chunked *d, struct evbuffer *in, struct evbuffer *out)
{
    for (;;) {
        int progress = 0;
        gw_s3err e = GW_OK;
        switch (d->state) {
        case CK_HEADER:
            e = step_header(d, in, &progress);
            break;
        case CK_DATA:
            e = step_data(d, in, out, &progress);
            break;
        case CK_DATA_END:
            e = step_data_end(d, in, &progress);
            break;
        case CK_TRAILER:
            e = step_trailer(d, in, &progress);
            break;
        case CK_DONE:
            if (evbuffer_get_length(in) > 0)
                return fail(d, GW_INCOMPLETE_BODY); /* bytes after the final chunk */
            return GW_OK;
        case CK_FAILED:
            return d->err;
        }
        if (e != GW_OK)
            return fail(d, e);
        if (!progress)
            return GW_OK;
    }
}
