/*
 * gw_sse.c - server-side encryption: the segment format and its stream (see gw_sse.h), the
 * plaintext read of an encrypted part, and the SSE request headers (docs/encryption.md).
 *
 * Keys: a data key per body, random; wrapped with cm_mkey_wrap under the master key (context
 * "sse-dek") for SSE-S3, or for SSE-C under HMAC-SHA256(customer key, "cairn-ssec-kek" | salt)
 * (context "ssec-dek"). The SSE-C object record keeps the salt and
 * HMAC-SHA256(customer key, "cairn-ssec-verify" | salt), which tells a wrong key (403) without
 * storing the key or an unsalted digest of it: the same customer key on two objects gives
 * unrelated verifiers, so records do not show which objects share a key.
 *
 * Memory: the stream holds one segment of plaintext and one of ciphertext; gw_sse_read holds the
 * ciphertext of at most GW_SSE_READ_SEGS segments at a time.
 */
#include "gw_sse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_mkey.h"
#include "cm_util.h"
#include "gw_int.h"

#define MOD "sse"

uint64_t gw_sse_stored_len(uint64_t plain, uint32_t seg)
{
    uint64_t nseg = (plain + seg - 1) / seg;
    return plain + nseg * GW_SSE_TAG;
}

static void seg_nonce(uint64_t idx, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    cm_put_be64(nonce + 4, idx);
}

cm_err gw_sse_seg_seal(const uint8_t key[GW_SSE_KEY], uint64_t idx, const uint8_t *in, size_t n,
                       uint8_t *out)
{
    uint8_t nonce[12];
    int outl = 0, finl = 0;
    cm_err rc = CM_ERR_INTERNAL;
    seg_nonce(idx, nonce);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
        EVP_EncryptUpdate(c, out, &outl, in, (int)n) == 1 &&
        EVP_EncryptFinal_ex(c, out + outl, &finl) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GW_SSE_TAG, out + n) == 1)
        rc = CM_OK;
    EVP_CIPHER_CTX_free(c);
    return rc;
}

cm_err gw_sse_seg_open(const uint8_t key[GW_SSE_KEY], uint64_t idx, const uint8_t *in,
                       size_t ct_len, uint8_t *out)
{
    uint8_t nonce[12], tag[GW_SSE_TAG];
    int outl = 0, finl = 0;
    if (ct_len <= GW_SSE_TAG)
        return CM_ERR_CORRUPT;
    size_t n = ct_len - GW_SSE_TAG;
    seg_nonce(idx, nonce);
    memcpy(tag, in + n, GW_SSE_TAG);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cm_err rc = CM_ERR_INTERNAL;
    if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
        EVP_DecryptUpdate(c, out, &outl, in, (int)n) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GW_SSE_TAG, tag) == 1)
        rc = EVP_DecryptFinal_ex(c, out + outl, &finl) == 1 ? CM_OK : CM_ERR_CORRUPT;
    EVP_CIPHER_CTX_free(c);
    if (rc != CM_OK)
        OPENSSL_cleanse(out, n); /* never hand on unauthenticated plaintext */
    return rc;
}

/* ---- stream ---- */

struct gw_sse_enc {
    uint8_t key[GW_SSE_KEY];
    uint32_t seg;
    uint64_t idx; /* next segment */
    size_t fill;  /* plaintext bytes in pt */
    uint8_t *pt;  /* seg bytes */
    uint8_t *ct;  /* seg + tag bytes */
};

cm_err gw_sse_enc_new(const uint8_t key[GW_SSE_KEY], uint32_t seg, gw_sse_enc **out)
{
    gw_sse_enc *e = calloc(1, sizeof(*e));
    if (!e || !(e->pt = malloc(seg)) || !(e->ct = malloc((size_t)seg + GW_SSE_TAG))) {
        gw_sse_enc_free(e);
        return CM_ERR_NOMEM;
    }
    memcpy(e->key, key, GW_SSE_KEY);
    e->seg = seg;
    *out = e;
    return CM_OK;
}

static cm_err seal_one(gw_sse_enc *e, gw_sse_emit emit, void *arg)
{
    cm_err err = gw_sse_seg_seal(e->key, e->idx, e->pt, e->fill, e->ct);
    if (err == CM_OK)
        err = emit(arg, e->ct, e->fill + GW_SSE_TAG);
    e->idx++;
    e->fill = 0;
    return err;
}

cm_err gw_sse_enc_update_some(gw_sse_enc *e, const uint8_t *p, size_t n, gw_sse_emit emit,
                              void *arg, size_t *used)
{
    *used = 0;
    while (n > 0) {
        size_t k = CM_MIN(n, e->seg - e->fill);
        memcpy(e->pt + e->fill, p, k);
        e->fill += k, p += k, n -= k;
        *used += k;
        if (e->fill == e->seg) {
            cm_err err = seal_one(e, emit, arg);
            if (err != CM_OK)
                return err;
        }
    }
    return CM_OK;
}

cm_err gw_sse_enc_update(gw_sse_enc *e, const uint8_t *p, size_t n, gw_sse_emit emit, void *arg)
{
    size_t used;
    return gw_sse_enc_update_some(e, p, n, emit, arg, &used);
}

cm_err gw_sse_enc_final(gw_sse_enc *e, gw_sse_emit emit, void *arg)
{
    return e->fill ? seal_one(e, emit, arg) : CM_OK;
}

void gw_sse_enc_free(gw_sse_enc *e)
{
    if (!e)
        return;
    if (e->pt)
        OPENSSL_cleanse(e->pt, e->seg);
    free(e->pt);
    free(e->ct);
    OPENSSL_cleanse(e->key, sizeof(e->key));
    free(e);
}

/* ---- reading ---- */

cm_err gw_sse_span(const md_part *p, uint64_t off, size_t len, uint64_t *c_off, size_t *c_len)
{
    uint64_t seg = p->sse_seg;
    if (seg == 0 || seg > GW_SSE_SEG_MAX)
        return CM_ERR_CORRUPT;
    if (off > p->size || len > p->size - off || len == 0)
        return CM_ERR_RANGE;
    uint64_t cseg = seg + GW_SSE_TAG;
    uint64_t first = off / seg, last = (off + len - 1) / seg;
    *c_off = first * cseg;
    *c_len =
        (size_t)(CM_MIN((last + 1) * cseg, gw_sse_stored_len(p->size, (uint32_t)seg)) - *c_off);
    return CM_OK;
}

cm_err gw_sse_open(const md_part *p, const uint8_t key[GW_SSE_KEY], uint64_t off, const uint8_t *ct,
                   void *buf, size_t len, uint8_t *pt)
{
    uint64_t seg = p->sse_seg, c_off;
    size_t c_len;
    uint8_t *out = buf;
    cm_err err = gw_sse_span(p, off, len, &c_off, &c_len);
    size_t cseg = (size_t)seg + GW_SSE_TAG;
    uint64_t first = off / seg;
    for (uint64_t i = first; err == CM_OK && len > 0; i++) {
        size_t at = (size_t)(i - first) * cseg;
        size_t clen = CM_MIN(cseg, c_len - at);
        size_t skip = (size_t)(off - i * seg);
        size_t plen = clen - GW_SSE_TAG;
        size_t take = CM_MIN(plen - skip, len);
        /* A whole segment decrypts straight into the caller's buffer; a piece of one goes
         * through pt, since only its checked plaintext may be handed on. */
        uint8_t *dst = skip == 0 && take == plen ? out : pt;
        if ((err = gw_sse_seg_open(key, i, ct + at, clen, dst)) != CM_OK)
            break;
        if (dst == pt)
            memcpy(out, pt + skip, take);
        out += take, off += take, len -= take;
    }
    if (pt)
        OPENSSL_cleanse(pt, (size_t)seg);
    return err;
}

static cm_err sse_read(ob_store *st, const md_part *p, const uint8_t key[GW_SSE_KEY], uint64_t off,
                       void *buf, size_t len, uint8_t *scratch, int cached)
{
    uint64_t seg = p->sse_seg;
    uint8_t *out = buf;
    if (seg == 0 || seg > GW_SSE_SEG_MAX)
        return CM_ERR_CORRUPT;
    if (off > p->size || len > p->size - off)
        return CM_ERR_RANGE;
    if (len == 0)
        return CM_OK;
    size_t cseg = (size_t)seg + GW_SSE_TAG;
    int own = !scratch || seg != GW_SSE_SEG;
    uint8_t *ct = own ? malloc(cseg * GW_SSE_READ_SEGS + (size_t)seg) : scratch;
    uint8_t *pt = ct ? ct + cseg * GW_SSE_READ_SEGS : NULL;
    cm_err err = ct ? CM_OK : CM_ERR_NOMEM;
    while (err == CM_OK && len > 0) {
        /* at most GW_SSE_READ_SEGS segments per read */
        size_t n = (size_t)CM_MIN((uint64_t)len, GW_SSE_READ_SEGS * seg - off % seg);
        uint64_t c_off;
        size_t c_len;
        if ((err = gw_sse_span(p, off, n, &c_off, &c_len)) != CM_OK ||
            (err = cached ? ob_read_cached(st, &p->layout, c_off, ct, c_len)
                          : ob_read(st, &p->layout, c_off, ct, c_len)) != CM_OK ||
            (err = gw_sse_open(p, key, off, ct, out, n, pt)) != CM_OK)
            break;
        out += n, off += n, len -= n;
    }
    if (own)
        free(ct);
    return err;
}

cm_err gw_sse_read(ob_store *st, const md_part *p, const uint8_t key[GW_SSE_KEY], uint64_t off,
                   void *buf, size_t len, uint8_t *scratch)
{
    return sse_read(st, p, key, off, buf, len, scratch, 0);
}

cm_err gw_sse_read_cached(ob_store *st, const md_part *p, const uint8_t key[GW_SSE_KEY],
                          uint64_t off, void *buf, size_t len, uint8_t *scratch)
{
    return sse_read(st, p, key, off, buf, len, scratch, 1);
}

/* ---- request headers ---- */

static gw_s3err bad(char *msg, size_t cap, const char *text)
{
    snprintf(msg, cap, "%s", text);
    return GW_INVALID_ARGUMENT;
}

/* A header, or the same name hoisted into a presigned URL's query string (as gw_refuse.c reads
 * them: an SSE request parameter is never dropped). */
static const char *value(gw_req *r, const char *name)
{
    const char *v = gw_hdr(r, name);
    return v ? v : gw_query_get(&r->q, name);
}

gw_s3err gw_sse_parse(gw_req *r, int source, gw_sse_req *out, char *msg, size_t cap)
{
    static const char *const names[2][3] = {
        {"x-amz-server-side-encryption-customer-algorithm",
         "x-amz-server-side-encryption-customer-key",
         "x-amz-server-side-encryption-customer-key-md5"},
        {"x-amz-copy-source-server-side-encryption-customer-algorithm",
         "x-amz-copy-source-server-side-encryption-customer-key",
         "x-amz-copy-source-server-side-encryption-customer-key-md5"}};
    const char *const *name = names[source != 0];
    memset(out, 0, sizeof(*out));
    const char *alg = value(r, name[0]), *key = value(r, name[1]), *md5 = value(r, name[2]);
    const char *sse = source ? NULL : value(r, "x-amz-server-side-encryption");
    if (sse) {
        if (strncmp(sse, "aws:kms", 7) == 0) {
            snprintf(msg, cap,
                     "x-amz-server-side-encryption: %.40s asks for server-side encryption with "
                     "KMS keys (SSE-KMS), which this server does not provide: use AES256",
                     sse);
            return GW_UNSUPPORTED;
        }
        if (strcmp(sse, "AES256") != 0)
            return bad(msg, cap, "The encryption method specified is not supported");
        if (alg || key || md5)
            return bad(msg, cap,
                       "Server Side Encryption with Customer provided key is "
                       "incompatible with the encryption method specified");
        out->mode = MD_SSE_S3;
        return GW_OK;
    }
    if (!alg && !key && !md5)
        return GW_OK;
    if (!alg)
        return bad(msg, cap,
                   "Requests specifying Server Side Encryption with Customer provided "
                   "keys must provide a valid encryption algorithm.");
    if (strcmp(alg, "AES256") != 0)
        return bad(msg, cap, "The encryption algorithm specified is not valid.");
    if (!key)
        return bad(msg, cap,
                   "Requests specifying Server Side Encryption with Customer provided "
                   "keys must provide an appropriate secret key.");
    if (!md5)
        return bad(msg, cap,
                   "Requests specifying Server Side Encryption with Customer provided "
                   "keys must provide the client calculated MD5 of the secret key.");
    size_t n = 0;
    uint8_t d[16], want[16];
    if (cm_base64_decode(key, strlen(key), out->ckey, sizeof(out->ckey), &n) != CM_OK ||
        n != GW_SSE_KEY) {
        OPENSSL_cleanse(out->ckey, sizeof(out->ckey));
        return bad(msg, cap, "The secret key was invalid for the specified algorithm.");
    }
    if (cm_base64_decode(md5, strlen(md5), want, sizeof(want), &n) != CM_OK || n != 16 ||
        cm_ck_digest(CM_CK_MD5, out->ckey, GW_SSE_KEY, d) != CM_OK || !cm_ct_equal(d, want, 16)) {
        OPENSSL_cleanse(out->ckey, sizeof(out->ckey));
        return bad(msg, cap,
                   "The calculated MD5 hash of the key did not match the hash that was "
                   "provided.");
    }
    cm_base64_encode(d, 16, out->ckey_md5);
    out->mode = MD_SSE_C;
    return GW_OK;
}

/* HMAC-SHA256(customer key, label | salt): the verifier or the key-wrapping key. */
static void ssec_derive(const uint8_t ckey[GW_SSE_KEY], const char *label, const uint8_t salt[16],
                        uint8_t out[32])
{
    uint8_t msg[64];
    size_t ll = strlen(label);
    memcpy(msg, label, ll);
    memcpy(msg + ll, salt, 16);
    cm_hmac_sha256(ckey, GW_SSE_KEY, msg, ll + 16, out);
}

gw_s3err gw_sse_usable(gw_req *r, const md_sse *s, char *msg, size_t cap)
{
    if (s->mode != MD_SSE_S3 || r->g->have_mkey)
        return GW_OK;
    snprintf(msg, cap, GW_SSE_NO_MKEY_MSG);
    return GW_UNSUPPORTED;
}

cm_err gw_sse_object_init(const gw_sse_req *given, uint8_t bucket_default, md_sse *out)
{
    memset(out, 0, sizeof(*out));
    out->mode = given->mode != MD_SSE_NONE ? given->mode : bucket_default;
    if (out->mode != MD_SSE_C)
        return CM_OK;
    if (cm_random(out->salt, sizeof(out->salt)) != CM_OK)
        return CM_ERR_INTERNAL;
    ssec_derive(given->ckey, "cairn-ssec-verify", out->salt, out->verify);
    return CM_OK;
}

gw_s3err gw_sse_check(const md_sse *stored, const gw_sse_req *given, char *msg, size_t cap)
{
    if (stored->mode != MD_SSE_C) {
        if (given->mode == MD_SSE_C) {
            snprintf(msg, cap, "The encryption parameters are not applicable to this object.");
            return GW_INVALID_REQUEST;
        }
        return GW_OK;
    }
    if (given->mode != MD_SSE_C) {
        snprintf(msg, cap,
                 "The object was stored using a form of Server Side Encryption. The "
                 "correct parameters must be provided to retrieve the object.");
        return GW_INVALID_REQUEST;
    }
    uint8_t v[32];
    ssec_derive(given->ckey, "cairn-ssec-verify", stored->salt, v);
    if (!cm_ct_equal(v, stored->verify, sizeof(v))) {
        snprintf(msg, cap,
                 "The provided customer key does not match the key the object was "
                 "encrypted with.");
        return GW_ACCESS_DENIED;
    }
    return GW_OK;
}

/* The key that wraps data keys of objects encrypted as s. CM_ERR_UNSUPPORTED for SSE-S3 on a
 * server without a master key (never wrap under an unset one). */
static cm_err wrapping_key(gw *g, const md_sse *s, const gw_sse_req *given, cm_mkey *kek,
                           const char **ctx)
{
    if (s->mode == MD_SSE_C) {
        uint8_t k[32];
        ssec_derive(given->ckey, "cairn-ssec-kek", s->salt, k);
        cm_mkey_set(kek, k);
        OPENSSL_cleanse(k, sizeof(k));
        *ctx = "ssec-dek";
        return CM_OK;
    }
    if (!g->have_mkey)
        return CM_ERR_UNSUPPORTED;
    *kek = g->mkey;
    *ctx = "sse-dek";
    return CM_OK;
}

cm_err gw_sse_part_new_key(gw *g, const md_sse *s, const gw_sse_req *given, md_part *p,
                           uint8_t key[GW_SSE_KEY])
{
    cm_mkey kek;
    const char *ctx;
    size_t n = 0;
    if (cm_random(key, GW_SSE_KEY) != CM_OK)
        return CM_ERR_INTERNAL;
    cm_err err = wrapping_key(g, s, given, &kek, &ctx);
    if (err != CM_OK)
        return err;
    err = cm_mkey_wrap(&kek, ctx, key, GW_SSE_KEY, p->sse_key, sizeof(p->sse_key), &n);
    cm_mkey_wipe(&kek);
    if (err != CM_OK)
        return err;
    p->sse_key_len = (uint8_t)n;
    p->sse_seg = GW_SSE_SEG;
    return CM_OK;
}

cm_err gw_sse_part_key(gw *g, const md_sse *s, const gw_sse_req *given, const md_part *p,
                       uint8_t key[GW_SSE_KEY])
{
    cm_mkey kek;
    const char *ctx;
    size_t n = 0;
    if (!p->sse_key_len || s->mode == MD_SSE_NONE)
        return CM_ERR_CORRUPT; /* an encrypted part in a record that says it is not */
    cm_err err = wrapping_key(g, s, given, &kek, &ctx);
    if (err != CM_OK)
        return err;
    err = cm_mkey_unwrap(&kek, ctx, p->sse_key, p->sse_key_len, key, GW_SSE_KEY, &n);
    cm_mkey_wipe(&kek);
    if (err == CM_OK && n != GW_SSE_KEY)
        err = CM_ERR_CORRUPT;
    uint8_t id[4];
    char idh[9];
    if (err == CM_ERR_AUTH && s->mode == MD_SSE_S3 &&
        cm_mkey_wrapped_id(p->sse_key, p->sse_key_len, id)) {
        cm_mkey_id_hex(id, idh);
        CM_ERROR(MOD,
                 "an SSE-S3 data key is wrapped under master key %s, which this server does not "
                 "hold: list it after the primary in %s or master_key_file until a rewrap pass "
                 "has moved every data key (docs/encryption.md)",
                 idh, CM_MKEY_ENV);
    }
    return err;
}

gw_s3err gw_sse_key_check(gw *g, const md_object *o, char *msg, size_t cap)
{
    uint8_t key[GW_SSE_KEY];
    for (size_t i = 0; o->sse.mode == MD_SSE_S3 && i < o->nparts; i++) {
        if (!o->parts[i].sse_key_len)
            continue;
        static const gw_sse_req none;
        cm_err err = gw_sse_part_key(g, &o->sse, &none, &o->parts[i], key);
        OPENSSL_cleanse(key, sizeof(key));
        if (err != CM_ERR_AUTH)
            return GW_OK; /* read on: anything else is found (and logged) where it is read */
        snprintf(msg, cap, "%s", GW_SSE_OTHER_MKEY_MSG);
        return GW_INTERNAL;
    }
    return GW_OK;
}

void gw_sse_headers(gw_req *r, const md_sse *s, const gw_sse_req *given)
{
    if (s->mode == MD_SSE_S3) {
        net_resp_header(r->net, "x-amz-server-side-encryption", "AES256");
    } else if (s->mode == MD_SSE_C && given->mode == MD_SSE_C) {
        net_resp_header(r->net, "x-amz-server-side-encryption-customer-algorithm", "AES256");
        net_resp_header(r->net, "x-amz-server-side-encryption-customer-key-MD5", given->ckey_md5);
    }
}

/* ---- request state ---- */

gw_sse_ctx *gw_sse_ctx_of(gw_req *r)
{
    if (!r->sse)
        r->sse = calloc(1, sizeof(*r->sse));
    return r->sse;
}

void gw_sse_ctx_free(gw_sse_ctx *c)
{
    if (!c)
        return;
    gw_sse_enc_free(c->enc);
    free(c->scratch); /* ciphertext, and a piece of plaintext wiped after each read */
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

int gw_sse_served(const gw *g)
{
    return !gw_meta_remote(g) || g->ns.sse_set;
}

gw_s3err gw_sse_request(gw_req *r, char *msg, size_t cap)
{
    gw_sse_ctx *c = gw_sse_ctx_of(r);
    if (!c)
        return GW_INTERNAL;
    gw_s3err e = gw_sse_parse(r, 0, &c->given, msg, cap);
    if (e == GW_OK && c->given.mode != MD_SSE_NONE && !gw_sse_served(r->g)) {
        snprintf(msg, cap, GW_SSE_CLUSTER_MSG);
        return GW_UNSUPPORTED;
    }
    return e;
}

cm_err gw_sse_begin_body(gw_req *r, const md_sse *obj)
{
    gw_sse_ctx *c = gw_sse_ctx_of(r);
    uint8_t key[GW_SSE_KEY];
    if (!c)
        return CM_ERR_NOMEM;
    c->obj = *obj;
    if (obj->mode == MD_SSE_NONE)
        return CM_OK;
    cm_err err = gw_sse_part_new_key(r->g, obj, &c->given, &c->keyed, key);
    if (err == CM_OK)
        err = gw_sse_enc_new(key, c->keyed.sse_seg, &c->enc);
    OPENSSL_cleanse(key, sizeof(key));
    return err;
}

/* Offer the pending rest of a sealed segment to the writer: CM_AGAIN while some is left. */
static cm_err offer_pending(gw_req *r)
{
    gw_sse_ctx *c = r->sse;
    size_t taken = 0;
    cm_err err = ob_writer_write_some(r->writer, c->pend, c->pend_len, &taken);
    c->pend += taken;
    c->pend_len -= taken;
    if (err != CM_OK && err != CM_AGAIN)
        return err;
    return c->pend_len ? CM_AGAIN : CM_OK;
}

/* A sealed segment to the erasure writer (created for the first). The loop's non-waiting write:
 * what a cluster writer's full window does not take stays pending (it points into the stream's
 * ciphertext buffer, which the next segment would overwrite: nothing more is sealed until it
 * went), and CM_AGAIN makes the request wait for room. */
static cm_err emit_loop(void *arg, const uint8_t *p, size_t n)
{
    gw_req *r = arg;
    cm_err err = CM_OK;
    if (!r->writer && (err = ob_writer_new(r->g->data, &r->writer)) != CM_OK)
        return err;
    r->sse->pend = p;
    r->sse->pend_len = n;
    return offer_pending(r);
}

cm_err gw_sse_body_write(gw_req *r, const uint8_t *p, size_t n, size_t *taken)
{
    cm_err err;
    *taken = 0;
    if (r->sse->pend_len && (err = offer_pending(r)) != CM_OK)
        return err;
    return gw_sse_enc_update_some(r->sse->enc, p, n, emit_loop, r, taken);
}

/* The last segment, on the worker that seals the body. */
static cm_err emit_worker(void *arg, const uint8_t *p, size_t n)
{
    gw_req *r = arg;
    cm_err err = CM_OK;
    if (!r->writer && (err = ob_writer_new(r->g->data, &r->writer)) != CM_OK)
        return err;
    return ob_writer_write(r->writer, p, n);
}

cm_err gw_sse_body_final(gw_req *r)
{
    if (!r->sse || !r->sse->enc)
        return CM_OK;
    cm_err err = CM_OK;
    if (r->sse->pend_len) /* what the window did not take when the body ended */
        err = ob_writer_write(r->writer, r->sse->pend, r->sse->pend_len);
    r->sse->pend_len = 0;
    if (err == CM_OK)
        err = gw_sse_enc_final(r->sse->enc, emit_worker, r);
    gw_sse_enc_free(r->sse->enc);
    r->sse->enc = NULL;
    return err;
}

void gw_sse_attach(const gw_req *r, md_part *p)
{
    if (r->sse && r->sse->obj.mode != MD_SSE_NONE)
        gw_sse_copy_key(&r->sse->keyed, p);
}

uint8_t gw_sse_bucket_default(gw_req *r, const md_bucket *local)
{
    md_bucket b = {0};
    const gw_bucket_ns *ns = &r->g->ns;
    if (!gw_sse_served(r->g))
        return MD_SSE_NONE;
    /* A cluster node: the namespace's setting (from memory), not the local mirror's. */
    if (!ns->access_get && local)
        return local->sse_default;
    cm_err err = ns->access_get ? ns->access_get(ns->arg, r->bucket, &b)
                                : md_bucket_get(r->g->md, r->bucket, &b);
    return err == CM_OK ? b.sse_default : MD_SSE_NONE;
}

void gw_sse_resp_xml(gw_req *r, const md_sse *s, struct evbuffer *buf)
{
    gw_sse_resp_xml_copy(r, s, buf, NULL);
}

void gw_sse_resp_xml_copy(gw_req *r, const md_sse *s, struct evbuffer *buf, const char *src_vid)
{
    static const gw_sse_req none;
    gw_resp_start(r, 200, (int64_t)evbuffer_get_length(buf));
    if (src_vid)
        net_resp_header(r->net, "x-amz-copy-source-version-id", src_vid);
    net_resp_header(r->net, "Content-Type", "application/xml");
    if (s)
        gw_sse_headers(r, s, r->sse ? &r->sse->given : &none);
    net_resp_write_buffer(r->net, buf);
    net_resp_end(r->net);
}

void gw_sse_copy_key(const md_part *from, md_part *to)
{
    to->sse_seg = from->sse_seg;
    to->sse_key_len = from->sse_key_len;
    memcpy(to->sse_key, from->sse_key, sizeof(to->sse_key));
}

/* ---- bucket default encryption ---- */

#define ENC_XML_CAP (64u * 1024)

/* Put/DeleteBucketEncryption's outcome, between the worker and the loop. */
typedef struct {
    uint8_t mode, bucket_key;
    cm_err err;
} bucket_enc_state;

static void bucket_enc_work(gw_req *r)
{
    bucket_enc_state *st = r->op;
    if (r->g->ns.sse_set) { /* a cluster node: the bucket's member of the namespace */
        md_bucket b = {.sse_default = st->mode, .sse_bucket_key = st->bucket_key};
        st->err = r->g->ns.sse_set(r->g->ns.arg, r->bucket, &b);
    } else
        st->err = md_bucket_sse_set(r->g->md, r->bucket, st->mode, st->bucket_key);
}

static void bucket_enc_done(gw_req *r)
{
    bucket_enc_state *st = r->op;
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, st->mode ? 200 : 204, st->mode ? 0 : -1);
    net_resp_end(r->net);
}

static void bucket_enc_put(gw_req *r)
{
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    char msg[200];
    int bk = 0;
    gw_s3err e = gw_parse_encryption(xml ? xml : "", len, ENC_XML_CAP, &bk, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    if (!r->g->have_mkey) {
        gw_error(r, GW_UNSUPPORTED, GW_SSE_NO_MKEY_MSG);
        return;
    }
    /* Filled before it is offloaded: from then on the worker owns it. */
    bucket_enc_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    st->mode = MD_SSE_S3;
    st->bucket_key = (uint8_t)bk;
    r->op = st;
    r->op_free = free;
    gw_offload(r, bucket_enc_work, bucket_enc_done);
}

static void bucket_enc_get(gw_req *r, const md_bucket *given)
{
    md_bucket copy = *given, *b = &copy;
    gw_bucket_access(r->g, b); /* a cluster node: the namespace's setting */
    if (b->sse_default == MD_SSE_NONE) {
        gw_error(r, GW_NO_SUCH_SSE_CONFIG, NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    if (!buf) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ServerSideEncryptionConfiguration");
    gw_xml_open(&x, "Rule");
    gw_xml_open(&x, "ApplyServerSideEncryptionByDefault");
    gw_xml_text(&x, "SSEAlgorithm", "AES256");
    gw_xml_close(&x, "ApplyServerSideEncryptionByDefault");
    gw_xml_bool(&x, "BucketKeyEnabled", b->sse_bucket_key);
    gw_xml_close(&x, "Rule");
    gw_xml_close(&x, "ServerSideEncryptionConfiguration");
    if (gw_xml_status(&x) != CM_OK)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    evbuffer_free(buf);
}

void gw_op_bucket_encryption(gw_req *r, const md_bucket *b)
{
    const char *m = net_req_method(r->net);
    if (!gw_sse_served(r->g)) {
        gw_error(r, GW_UNSUPPORTED, GW_SSE_CLUSTER_MSG);
        return;
    }
    if (strcmp(m, "GET") == 0 || r->head) {
        bucket_enc_get(r, b);
    } else if (strcmp(m, "PUT") == 0) {
        gw_body_to_memory(r, ENC_XML_CAP, bucket_enc_put);
    } else if (strcmp(m, "DELETE") == 0) {
        /* a zeroed state: mode NONE removes the configuration */
        gw_offload_state(r, sizeof(bucket_enc_state), free, bucket_enc_work, bucket_enc_done);
    } else {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
    }
}
