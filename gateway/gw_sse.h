/*
 * gw_sse.h - server-side encryption of object bodies (SSE-S3 and SSE-C), docs/encryption.md.
 *
 * A body (a whole object, or one multipart part) is encrypted under its own random 32-byte data
 * key with AES-256-GCM, in segments of GW_SSE_SEG plaintext bytes: segment i is stored as its
 * ciphertext followed by its 16-byte tag at offset i * (GW_SSE_SEG + 16), under the nonce
 * 0x00000000 || i (64-bit big-endian). A fresh key per body makes the index a unique nonce; the
 * index in the nonce stops segments being swapped, and the record's plaintext size (and the
 * layout's stored size) stops them being dropped. A range read decrypts only the segments it
 * touches. The data key is stored wrapped (cm_mkey.h format) in the part's record: by the master
 * key for SSE-S3, by a key derived from the customer's key and a per-object salt for SSE-C.
 *
 * The segment functions are pure; the request helpers work on a gw_req (its loop thread), and
 * gw_sse_read blocks on the drives (a worker's call); gw_sse_read_cached takes only what the page
 * cache holds (a GET's loop, as ob_read_cached).
 */
#ifndef GW_SSE_H
#define GW_SSE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "cm_err.h"
#include "gw_err.h"
#include "md.h"
#include "ob.h"

#define GW_SSE_SEG (64 * 1024) /* plaintext bytes per segment */
#define GW_SSE_TAG 16
#define GW_SSE_KEY 32

/* Stored (ciphertext) bytes of plain plaintext bytes in segments of seg bytes. */
uint64_t gw_sse_stored_len(uint64_t plain, uint32_t seg);
/* Encrypt segment idx (n plaintext bytes, 1..seg) into out (n + GW_SSE_TAG bytes). */
cm_err gw_sse_seg_seal(const uint8_t key[GW_SSE_KEY], uint64_t idx, const uint8_t *in, size_t n,
                       uint8_t *out);
/* Decrypt segment idx (ct_len bytes with its tag) into out (ct_len - GW_SSE_TAG bytes).
 * CM_ERR_CORRUPT when the tag does not verify (altered bytes, wrong key, wrong index). */
cm_err gw_sse_seg_open(const uint8_t key[GW_SSE_KEY], uint64_t idx, const uint8_t *in,
                       size_t ct_len, uint8_t *out);

/* A stream of plaintext sealed segment by segment; each sealed segment goes to emit. */
typedef cm_err (*gw_sse_emit)(void *arg, const uint8_t *p, size_t n);
typedef struct gw_sse_enc gw_sse_enc;
cm_err gw_sse_enc_new(const uint8_t key[GW_SSE_KEY], uint32_t seg, gw_sse_enc **out);
cm_err gw_sse_enc_update(gw_sse_enc *e, const uint8_t *p, size_t n, gw_sse_emit emit, void *arg);
/* The same, stopping at the first segment whose emit fails (CM_AGAIN included: that segment was
 * sealed and handed to emit): *used gets the plaintext bytes taken, that segment's included. */
cm_err gw_sse_enc_update_some(gw_sse_enc *e, const uint8_t *p, size_t n, gw_sse_emit emit,
                              void *arg, size_t *used);
/* Seal the last, partial segment (nothing for an empty stream). */
cm_err gw_sse_enc_final(gw_sse_enc *e, gw_sse_emit emit, void *arg);
void gw_sse_enc_free(gw_sse_enc *e); /* NULL is a no-op; wipes the key */

/* Largest segment a record may name (a bigger one is corrupt: reads hold 17 segments). */
#define GW_SSE_SEG_MAX (1024 * 1024)
/* gw_sse_read reads this many segments with one ob_read (1 MiB of plaintext), and needs these
 * scratch bytes for a part of GW_SSE_SEG segments. */
#define GW_SSE_READ_SEGS 16
#define GW_SSE_READ_SCRATCH (GW_SSE_READ_SEGS * (GW_SSE_SEG + GW_SSE_TAG) + GW_SSE_SEG)

/*
 * Read len plaintext bytes at offset off of an encrypted part (p->sse_*, stored in p->layout)
 * with its unwrapped data key: reads the covering segments with ob_read, checks and decrypts
 * them. scratch: GW_SSE_READ_SCRATCH bytes the caller keeps across calls (used when the part's
 * segments are GW_SSE_SEG), or NULL to allocate per call. Blocking (see the file-top).
 * CM_ERR_CORRUPT when a tag fails or the segment size is out of range, CM_ERR_RANGE past the end.
 */
cm_err gw_sse_read(ob_store *st, const md_part *p, const uint8_t key[GW_SSE_KEY], uint64_t off,
                   void *buf, size_t len, uint8_t *scratch);
/* gw_sse_read for an event loop: the stored segments with ob_read_cached, so CM_AGAIN (buf
 * partly written) when the page cache does not hold them or a cell needs rebuilding: read it
 * again with gw_sse_read on a worker. */
cm_err gw_sse_read_cached(ob_store *st, const md_part *p, const uint8_t key[GW_SSE_KEY],
                          uint64_t off, void *buf, size_t len, uint8_t *scratch);

/* The stored bytes [*c_off, *c_off + *c_len) of the segments that hold plaintext [off, off+len)
 * of encrypted part p (len > 0). CM_ERR_CORRUPT for a segment size out of range, CM_ERR_RANGE
 * past the end. */
cm_err gw_sse_span(const md_part *p, uint64_t off, size_t len, uint64_t *c_off, size_t *c_len);
/* Check and decrypt plaintext [off, off+len) of p from ct, the stored bytes gw_sse_span names,
 * into buf; pt: p->sse_seg bytes of scratch (wiped after). CM_ERR_CORRUPT when a tag fails. */
cm_err gw_sse_open(const md_part *p, const uint8_t key[GW_SSE_KEY], uint64_t off, const uint8_t *ct,
                   void *buf, size_t len, uint8_t *pt);

/* What a request's SSE headers ask for (the target's, or a copy source's). */
typedef struct {
    uint8_t mode;             /* MD_SSE_NONE, MD_SSE_S3 (only for the target), MD_SSE_C */
    uint8_t ckey[GW_SSE_KEY]; /* SSE-C: the customer's key (never stored) */
    char ckey_md5[32];        /* SSE-C: base64 MD5 of the key, for response headers */
} gw_sse_req;

typedef struct gw_req gw_req;
typedef struct gw gw;

/*
 * Parse the SSE headers of r into *out (source: the x-amz-copy-source-server-side-encryption-
 * customer-* headers instead). No headers: mode NONE. Errors (msg says which): InvalidArgument for
 * a bad algorithm, key or key MD5, or SSE-S3 with SSE-C; NotImplemented for aws:kms.
 */
gw_s3err gw_sse_parse(gw_req *r, int source, gw_sse_req *out, char *msg, size_t cap);
/* The encryption a new object gets from the request and the bucket's default: out->mode and,
 * for SSE-C, a fresh salt and the key's verifier. */
cm_err gw_sse_object_init(const gw_sse_req *given, uint8_t bucket_default, md_sse *out);
/*
 * May a request with given read (or copy from) an object stored with stored? SSE-C objects need
 * the same customer key (400 InvalidRequest without one, 403 AccessDenied with another); SSE-C
 * headers on an object that is not SSE-C are 400 InvalidRequest.
 */
gw_s3err gw_sse_check(const md_sse *stored, const gw_sse_req *given, char *msg, size_t cap);
/* Give part p a fresh data key (into key) wrapped into p->sse_key for an object encrypted as s. */
cm_err gw_sse_part_new_key(gw *g, const md_sse *s, const gw_sse_req *given, md_part *p,
                           uint8_t key[GW_SSE_KEY]);
/* Unwrap part p's data key (given: the request's customer key for SSE-C). */
cm_err gw_sse_part_key(gw *g, const md_sse *s, const gw_sse_req *given, const md_part *p,
                       uint8_t key[GW_SSE_KEY]);
/* GW_OK unless o is SSE-S3 and its first part's data key was wrapped under another master key
 * than this server's (a cluster node given another key than its peers): then GW_INTERNAL with
 * GW_SSE_OTHER_MKEY_MSG in msg, answered before any byte of the body. */
gw_s3err gw_sse_key_check(gw *g, const md_object *o, char *msg, size_t cap);
#define GW_SSE_OTHER_MKEY_MSG                                                                      \
    "The object's data key is wrapped under another master key than this server's: every node "    \
    "of a cluster needs the same master key (docs/encryption.md)"
/* x-amz-server-side-encryption (SSE-S3) or the customer algorithm and key MD5 (SSE-C). */
void gw_sse_headers(gw_req *r, const md_sse *s, const gw_sse_req *given);

/*
 * A request's encryption state (r->sse; freed with the request): its headers, the encryption of
 * the body it writes and that body's stream, and for a GET the data key of the part being sent.
 */
typedef struct gw_sse_ctx {
    gw_sse_req given; /* the request's SSE headers */
    md_sse obj;       /* how the body being written is encrypted (mode 0: it is not) */
    md_part keyed;    /* its sse_seg / sse_key (gw_sse_attach copies them into the part) */
    gw_sse_enc *enc;  /* its stream, between gw_sse_begin_body and gw_body_seal */
    /* The rest of a sealed segment a cluster writer's full window did not take (in enc's
     * ciphertext buffer): offered again before any more plaintext is sealed. */
    const uint8_t *pend;
    size_t pend_len;
    uint8_t *scratch; /* GET: GW_SSE_READ_SCRATCH bytes for gw_sse_read, allocated once */
    size_t dek_part;  /* GET: the part whose data key dek is (valid when have_dek) */
    int have_dek;
    uint8_t dek[GW_SSE_KEY];
} gw_sse_ctx;

/* r->sse, allocated on first use (NULL: out of memory). */
gw_sse_ctx *gw_sse_ctx_of(gw_req *r);
void gw_sse_ctx_free(gw_sse_ctx *c); /* NULL is a no-op; wipes the keys */
/* 1 when g serves encryption: a single node, or a cluster node whose bucket namespace keeps
 * the default encryption (gw_bucket_ns sse_set). */
int gw_sse_served(const gw *g);
/*
 * Parse r's SSE headers into r->sse->given (the caller sends the error when not GW_OK). Where
 * encryption is not served (gw_sse_served) any SSE header is refused with NotImplemented.
 */
gw_s3err gw_sse_request(gw_req *r, char *msg, size_t cap);
/* The body about to be received is encrypted as obj: a fresh data key and its stream. Every
 * byte then goes to the erasure writer sealed (gw_body_seal seals the last segment). */
cm_err gw_sse_begin_body(gw_req *r, const md_sse *obj);
/* Body pipeline hooks (gw_server.c): plaintext in, without waiting (*taken: the bytes taken;
 * CM_AGAIN: a cluster writer's window is full, offer the rest once it has room); the final
 * segment, with what the window had not taken yet, on the sealing worker. */
cm_err gw_sse_body_write(gw_req *r, const uint8_t *p, size_t n, size_t *taken);
cm_err gw_sse_body_final(gw_req *r);
/* Copy the written body's key fields (sse_seg, sse_key) into part p. */
void gw_sse_attach(const gw_req *r, md_part *p);
/* A 200 XML answer (gw_resp_xml) with s's SSE headers (s NULL: none). */
void gw_sse_resp_xml(gw_req *r, const md_sse *s, struct evbuffer *buf);
/* The same for a CopyObject, with its x-amz-copy-source-version-id (src_vid NULL: none). */
void gw_sse_resp_xml_copy(gw_req *r, const md_sse *s, struct evbuffer *buf, const char *src_vid);
/* Copy part from's key fields (sse_seg, sse_key) into part to. */
void gw_sse_copy_key(const md_part *from, md_part *to);
/* ?encryption on an existing bucket b: Get/Put/DeleteBucketEncryption (NotImplemented where
 * encryption is not served); a cluster node's is a member of the bucket's namespace record. */
void gw_op_bucket_encryption(gw_req *r, const md_bucket *b);
/* The default encryption of r's bucket (MD_SSE_NONE when it has none, or where not served).
 * local: the bucket's local record as gw_bucket_fetch just read it in the same loop turn (a
 * PutObject's head read it once, not twice), or NULL to read it here. */
uint8_t gw_sse_bucket_default(gw_req *r, const md_bucket *local);
/* GW_OK unless s is SSE-S3 and the server has no master key (501 with msg; gw_new). */
gw_s3err gw_sse_usable(gw_req *r, const md_sse *s, char *msg, size_t cap);
#define GW_SSE_NO_MKEY_MSG                                                                         \
    "SSE-S3 needs a master key, which this server has not got: set CAIRN_MASTER_KEY or "           \
    "[server] master_key_file (docs/encryption.md)"
/* The refusal's message where encryption is not served. */
#define GW_SSE_CLUSTER_MSG                                                                         \
    "Server-side encryption is not supported on this cluster node (no bucket namespace)"

#endif
