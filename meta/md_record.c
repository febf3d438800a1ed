/*
 * md_record.c - the versioned binary encoding of metadata records.
 *
 * Every record starts with a format byte (MD_FORMAT_V1, or MD_FORMAT_V2 for an object or upload
 * record that carries tags) followed by TLV fields:
 *     tag u8 | length u32 big-endian | value
 * Integers are big-endian fixed width (u8/u32/u64; int64 stored as its two's complement u64);
 * strings are raw bytes whose length is the TLV length. Absent optional fields are simply not
 * written, so a field's presence is the presence of its tag. Decoders skip tags they do not know,
 * so later versions can add fields without breaking old readers. Repeated fields (metadata pairs,
 * parts) are repeated tags; nested records (a part inside an object, the template object inside an
 * upload) are TLVs whose value is the nested record's own fields.
 *
 * An inline body is followed by its CRC32C (computed at encoding for a new body, carried over when
 * a decoded record is re-encoded, so damage is never laundered); md_object_inline_verify checks
 * it, or a plain-MD5 ETag for records written before the CRC. Decoders may skip inline bodies
 * (MD_DECODE_NOBODY, md_part_decode_ex) for callers that only free chunks or list parts.
 *
 * Tags (OT_TAG, name/value pairs like OT_META) are the one field that bumps the format byte: a
 * reader from before them would skip them and, re-encoding the record (a repair, a copy), drop
 * them silently; with format 2 it refuses the record instead. Records without tags keep format 1
 * byte for byte, and every format-1 record decodes as before (no tags). A compressed body
 * (PT_COMP in a part, docs/compression.md) makes the object or part record format 3 for the same
 * reason: a reader that skipped the field would serve the stored stream as the body. Format 3
 * may carry tags too; readers accept 1, 2 and 3.
 *
 * Encryption fields (OT_SSE, PT_SSE, BT_SSE: docs/encryption.md) make the format byte
 * MD_FORMAT_V3 for the same reason, more strongly: a reader that dropped them would serve
 * ciphertext as the object, or write new objects of a bucket in the clear. An encrypted part never
 * has an inline body (decoding refuses one).
 *
 * Object Lock fields (OT_LOCK_MODE, OT_LOCK_UNTIL, OT_LEGAL_HOLD, BT_LOCK: docs/object-lock.md)
 * take format 3 too: a reader that dropped a retention or a bucket's lock would let deletes
 * through that must be refused.
 *
 * A version's order stamp (OT_VSTAMP, md_version.c) needs no format bump: the version id
 * (OT_VERSION_ID, known to every reader) says which version a record is; a reader that dropped the
 * stamp would only misplace a null version in its key's history, not serve or expose other data.
 *
 * Replication fields (hlc, version vector, tombstone) are optional like the rest; the generation,
 * when present, is always the last field, so the store can set it in an encoded record in place
 * (md_object_encode_stored, md_object_set_generation). Garbage records (md_rec.c) share the codec.
 *
 * Decoding trusts nothing: every length is checked against the buffer and against the size of
 * the field it fills; a bad record returns CM_ERR_CORRUPT with the place logged. Decoded records
 * own heap copies of everything (the input buffer may be LMDB's map, valid only in a txn).
 *
 * Threading: pure functions, no shared state.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "md_int.h"

/* Object fields. */
enum {
    OT_KEY = 1,
    OT_VERSION_ID,
    OT_SIZE,
    OT_MTIME,
    OT_ETAG,
    OT_DELETE_MARKER,
    OT_CONTENT_TYPE,
    OT_CACHE_CONTROL,
    OT_CONTENT_DISPOSITION,
    OT_CONTENT_ENCODING,
    OT_CONTENT_LANGUAGE,
    OT_EXPIRES,
    OT_WEBSITE_REDIRECT,
    OT_META,          /* u32 name length | name | value */
    OT_CKSUM,         /* alg u8 | type u8 | value */
    OT_INLINE,        /* body bytes */
    OT_PART,          /* nested part fields */
    OT_STORAGE_CLASS, /* absent = STANDARD (records written before it existed, too) */
    OT_INLINE_CRC,    /* u32 CRC32C of the inline body */
    OT_UPLOAD_ID,     /* the multipart upload that made the record */
    OT_HLC,           /* u64 hlc | u32 node (replication; absent = 0) */
    OT_VV,            /* version vector (md_vv_encode) */
    OT_TOMBSTONE,     /* u8 1: the version is a deletion */
    OT_GENERATION,    /* u64, always the last field (the store patches it in place) */
    OT_TAG,           /* u32 key length | key | value (format 2; written before OT_GENERATION) */
    /* u64: the order stamp of a version of a versioned bucket (md_version.c); absent = 0 */
    OT_VSTAMP = 26,
    /* Encryption (format 3): u8 mode | (SSE-C) salt[16] | verifier[32]. 33-37 are reserved for
     * encryption too. */
    OT_SSE = 32,
    OT_ACL = 38, /* u8 canned ACL (md_acl), absent = private (docs/users.md) */
    /* Object Lock (md_lock.c; format 3: a reader that dropped them would let a delete through;
     * 43 reserved) */
    OT_LOCK_MODE = 40,  /* u8 MD_LOCK_GOVERNANCE or MD_LOCK_COMPLIANCE */
    OT_LOCK_UNTIL = 41, /* u64 retain-until, ms since the epoch */
    OT_LEGAL_HOLD = 42, /* u8 1: on */
};
/* Part fields. */
enum {
    PT_NUMBER = 1,
    PT_SIZE,
    PT_MTIME,
    PT_ETAG,
    PT_CKSUM,
    PT_INLINE,
    PT_LAYOUT,
    PT_INLINE_CRC,
    PT_COMP = 9, /* alg u8 | frame u32 | body size u64 | table offset u64: compression (format 3) */
    PT_SSE = 10  /* u32 plaintext bytes per segment | wrapped data key (format 3; 11 reserved) */
};
#define COMP_LEN 21
#define COMP_FRAME_MAX (16u << 20) /* larger frames are refused: a reader's buffer is one frame */
/* Bucket and upload fields. */
/* Bucket fields; those after BT_TAG are numbered explicitly, so that fields added on parallel
 * branches cannot collide. Access settings (docs/users.md) are each u8 and absent when 0: the
 * canned ACL (md_acl), the PublicAccessBlock flags (MD_PAB_*), the object ownership
 * (md_ownership). */
enum {
    BT_NAME = 1,
    BT_CREATED,
    BT_OWNER,
    BT_VERSIONING,
    BT_TAG,            /* format 2, as OT_TAG */
    BT_SSE = 10,       /* u8 default mode | u8 bucket key enabled (format 3; 11 reserved) */
    BT_ACL = 12,       /* u8 md_acl */
    BT_PAB = 13,       /* u8 MD_PAB_* flags */
    BT_OWNERSHIP = 14, /* u8 md_ownership */
    BT_CORS = 16,      /* the CORS configuration, XML as PutBucketCors received it (md_btags.c) */
    BT_LOCK = 18,      /* Object Lock: u8 enabled | u8 mode | u8 unit | u32 period (format 3; 19
                          reserved) */
    BT_WEBSITE = 20    /* the website configuration, XML as PutBucketWebsite received it (21
                          reserved) */
};
enum { UT_KEY = 1, UT_UPLOAD_ID, UT_INITIATED, UT_OWNER, UT_TMPL };

#define LAYOUT_LEN (16 + 8 + 4 + 1 + 1 + MD_MAX_CELLS)
/* With the placement fields appended: epoch u64 | nodes u16[MD_MAX_CELLS]. */
#define LAYOUT_LEN_NODES (LAYOUT_LEN + 8 + 2 * MD_MAX_CELLS)

cm_err md_corrupt_at(const char *file, int line, const char *what)
{
    if (CM_LOG_ERROR <= cm_log_threshold)
        cm_log_write(CM_LOG_ERROR, MD_MOD, file, line, "corrupt metadata record: %s", what);
    return CM_ERR_CORRUPT;
}

/* ---- Writer ---- */

void md_w_bytes(md_wbuf *w, const void *data, size_t len)
{
    if (w->failed || len == 0)
        return;
    char *p = (char *)w->p;
    if (cm_buf_room(&p, &w->cap, w->len, len, 256) != CM_OK) {
        w->failed = 1;
        return;
    }
    w->p = (uint8_t *)p;
    memcpy(w->p + w->len, data, len);
    w->len += len;
}

void md_w_free(md_wbuf *w)
{
    free(w->p);
    memset(w, 0, sizeof(*w));
}

static void w_u8(md_wbuf *w, uint8_t v)
{
    md_w_bytes(w, &v, 1);
}

static void w_tlv(md_wbuf *w, uint8_t tag, const void *data, size_t len)
{
    uint8_t hdr[5] = {tag};
    cm_put_be32(hdr + 1, (uint32_t)len);
    md_w_bytes(w, hdr, 5);
    md_w_bytes(w, data, len);
}

static void w_str(md_wbuf *w, uint8_t tag, const char *s)
{
    if (s)
        w_tlv(w, tag, s, strlen(s));
}

static void w_u64(md_wbuf *w, uint8_t tag, uint64_t v)
{
    uint8_t b[8];
    cm_put_be64(b, v);
    w_tlv(w, tag, b, 8);
}

static void w_u32(md_wbuf *w, uint8_t tag, uint32_t v)
{
    uint8_t b[4];
    cm_put_be32(b, v);
    w_tlv(w, tag, b, 4);
}

/* Open a nested TLV; returns the offset to patch with md_w_end. */
static size_t w_begin(md_wbuf *w, uint8_t tag)
{
    size_t mark = w->len;
    w_tlv(w, tag, NULL, 0);
    return mark;
}

static void w_end(md_wbuf *w, size_t mark)
{
    if (!w->failed)
        cm_put_be32(w->p + mark + 1, (uint32_t)(w->len - mark - 5));
}

static cm_err w_result(md_wbuf *w)
{
    if (w->failed) {
        md_w_free(w);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

/* ---- Reader ---- */

typedef struct {
    const uint8_t *p;
    size_t n, off;
} rbuf;

/* Next TLV: CM_OK, CM_ERR_NOTFOUND at a clean end, CM_ERR_CORRUPT when truncated. */
static cm_err r_tlv(rbuf *r, uint8_t *tag, md_slice *val)
{
    if (r->off == r->n)
        return CM_ERR_NOTFOUND;
    if (r->n - r->off < 5)
        return MD_CORRUPT("truncated field header");
    uint32_t len = cm_get_be32(r->p + r->off + 1);
    if (r->n - r->off - 5 < len)
        return MD_CORRUPT("field length beyond record");
    *tag = r->p[r->off];
    val->p = r->p + r->off + 5;
    val->n = len;
    r->off += 5 + (size_t)len;
    return CM_OK;
}

static cm_err r_version(const uint8_t *buf, size_t len, rbuf *r)
{
    if (len < 1)
        return MD_CORRUPT("empty record");
    if (buf[0] != MD_FORMAT_V1 && buf[0] != MD_FORMAT_V2 && buf[0] != MD_FORMAT_V3)
        return MD_CORRUPT("unknown record format version");
    r->p = buf + 1, r->n = len - 1, r->off = 0;
    return CM_OK;
}

static cm_err f_u64(md_slice v, uint64_t *out)
{
    if (v.n != 8)
        return MD_CORRUPT("bad u64 field length");
    *out = cm_get_be64(v.p);
    return CM_OK;
}

static cm_err f_i64(md_slice v, int64_t *out)
{
    uint64_t u = 0;
    cm_err e = f_u64(v, &u);
    *out = (int64_t)u;
    return e;
}

static cm_err f_u32(md_slice v, uint32_t *out)
{
    if (v.n != 4)
        return MD_CORRUPT("bad u32 field length");
    *out = cm_get_be32(v.p);
    return CM_OK;
}

static cm_err f_u8(md_slice v, uint8_t *out)
{
    if (v.n != 1)
        return MD_CORRUPT("bad u8 field length");
    *out = v.p[0];
    return CM_OK;
}

/* Copy a string into a fixed char array (NUL-terminated). */
static cm_err f_fixed(md_slice v, char *out, size_t cap)
{
    if (v.n >= cap || memchr(v.p, 0, v.n))
        return MD_CORRUPT("string field too long for its slot");
    memcpy(out, v.p, v.n);
    out[v.n] = 0;
    return CM_OK;
}

/* Replace *out with a heap copy of the string. */
static cm_err f_str(md_slice v, char **out)
{
    if (memchr(v.p, 0, v.n))
        return MD_CORRUPT("NUL inside string field");
    char *s = malloc(v.n + 1);
    if (!s)
        return CM_ERR_NOMEM;
    memcpy(s, v.p, v.n);
    s[v.n] = 0;
    free(*out);
    *out = s;
    return CM_OK;
}

static cm_err f_blob(md_slice v, uint8_t **out)
{
    uint8_t *b = malloc(v.n ? v.n : 1);
    if (!b)
        return CM_ERR_NOMEM;
    memcpy(b, v.p, v.n);
    free(*out);
    *out = b;
    return CM_OK;
}

static cm_err f_cksum(uint8_t alg, md_cksum_alg *out)
{
    if (alg > MD_CK_SHA256)
        return MD_CORRUPT("unknown checksum algorithm");
    *out = (md_cksum_alg)alg;
    return CM_OK;
}

/* ---- Parts and layouts ---- */

/* Cells placed somewhere other than node 0 of epoch 0 (the single-node layout). */
static int layout_has_nodes(const md_layout *l)
{
    int any = l->epoch != 0;
    for (int i = 0; i < MD_MAX_CELLS; i++)
        any |= l->nodes[i] != 0;
    return any;
}

/*
 * The encoded layout, into b (LAYOUT_LEN_NODES bytes); returns its length. The single-node
 * layout is written in the original 62 bytes, so its records stay byte for byte what they were;
 * the placement fields are appended only when they say something.
 */
static size_t layout_bytes(const md_layout *l, uint8_t *b)
{
    memcpy(b, l->blob, 16);
    cm_put_be64(b + 16, l->size);
    cm_put_be32(b + 24, l->cell_size);
    b[28] = l->k, b[29] = l->m;
    memcpy(b + 30, l->drives, MD_MAX_CELLS);
    if (!layout_has_nodes(l))
        return LAYOUT_LEN;
    cm_put_be64(b + LAYOUT_LEN, l->epoch);
    for (int i = 0; i < MD_MAX_CELLS; i++) {
        b[LAYOUT_LEN + 8 + 2 * i] = (uint8_t)(l->nodes[i] >> 8);
        b[LAYOUT_LEN + 9 + 2 * i] = (uint8_t)l->nodes[i];
    }
    return LAYOUT_LEN_NODES;
}

static void w_layout(md_wbuf *w, const md_layout *l)
{
    uint8_t b[LAYOUT_LEN_NODES];
    size_t n = layout_bytes(l, b);
    w_tlv(w, PT_LAYOUT, b, n);
}

static cm_err f_layout(md_slice v, md_layout *l)
{
    /* Longer is allowed: a later version may append fields. */
    if (v.n < LAYOUT_LEN)
        return MD_CORRUPT("short layout field");
    memcpy(l->blob, v.p, 16);
    l->size = cm_get_be64(v.p + 16);
    l->cell_size = cm_get_be32(v.p + 24);
    l->k = v.p[28], l->m = v.p[29];
    memcpy(l->drives, v.p + 30, MD_MAX_CELLS);
    l->epoch = 0; /* records before the placement fields: node 0 of epoch 0 */
    memset(l->nodes, 0, sizeof(l->nodes));
    if (v.n >= LAYOUT_LEN_NODES) {
        l->epoch = cm_get_be64(v.p + LAYOUT_LEN);
        for (int i = 0; i < MD_MAX_CELLS; i++)
            l->nodes[i] =
                (uint16_t)(v.p[LAYOUT_LEN + 8 + 2 * i] << 8 | v.p[LAYOUT_LEN + 9 + 2 * i]);
    }
    if ((unsigned)l->k + l->m > MD_MAX_CELLS)
        return MD_CORRUPT("layout k+m exceeds cell count");
    return CM_OK;
}

/*
 * The CRC32C stored with an inline body: the one the record was decoded with, so re-encoding a
 * record (a layout swap, a copy through the codec) never launders a damaged body into a valid
 * one; computed from the bytes for a new body.
 */
static uint32_t inline_crc(const uint8_t *data, size_t len, int have, uint32_t crc)
{
    return have ? crc : cm_crc32c(0, data, len);
}

static void w_part_fields(md_wbuf *w, const md_part *p)
{
    w_u32(w, PT_NUMBER, p->number);
    w_u64(w, PT_SIZE, p->size);
    w_u64(w, PT_MTIME, (uint64_t)p->mtime_ms);
    w_str(w, PT_ETAG, p->etag);
    if (p->ck_alg != MD_CK_NONE) {
        size_t mark = w_begin(w, PT_CKSUM);
        w_u8(w, (uint8_t)p->ck_alg);
        md_w_bytes(w, p->ck_value, strnlen(p->ck_value, sizeof(p->ck_value) - 1));
        w_end(w, mark);
    }
    if (p->inline_data) {
        w_tlv(w, PT_INLINE, p->inline_data, (size_t)p->size);
        w_u32(w, PT_INLINE_CRC,
              inline_crc(p->inline_data, (size_t)p->size, p->inline_crc_set, p->inline_crc));
    } else {
        w_layout(w, &p->layout);
        if (p->layout.zalg != MD_Z_NONE) {
            uint8_t b[COMP_LEN];
            b[0] = p->layout.zalg;
            cm_put_be32(b + 1, p->layout.zframe);
            cm_put_be64(b + 5, p->layout.zsize);
            cm_put_be64(b + 13, p->layout.ztab);
            w_tlv(w, PT_COMP, b, sizeof(b));
        }
    }
    if (p->sse_key_len) {
        size_t mark = w_begin(w, PT_SSE);
        uint8_t b[4];
        cm_put_be32(b, p->sse_seg);
        md_w_bytes(w, b, 4);
        md_w_bytes(w, p->sse_key, CM_MIN(p->sse_key_len, sizeof(p->sse_key)));
        w_end(w, mark);
    }
}

/* The stored-stream fields of a layout; the reader checks the stream itself (ob_zstd.c). */
static cm_err f_comp(md_slice v, md_layout *l)
{
    if (v.n < COMP_LEN)
        return MD_CORRUPT("short compression field");
    l->zalg = v.p[0];
    l->zframe = cm_get_be32(v.p + 1);
    l->zsize = cm_get_be64(v.p + 5);
    l->ztab = cm_get_be64(v.p + 13);
    if (l->zalg != MD_Z_ZSTD)
        return MD_CORRUPT("unknown compression algorithm");
    if (l->zframe == 0 || l->zframe > COMP_FRAME_MAX)
        return MD_CORRUPT("compression frame size out of range");
    return CM_OK;
}

static int part_compressed(const md_part *p)
{
    return !p->inline_data && p->layout.zalg != MD_Z_NONE;
}

static cm_err part_field(md_part *p, uint8_t tag, md_slice v, int nobody)
{
    switch (tag) {
    case PT_NUMBER:
        return f_u32(v, &p->number);
    case PT_SIZE:
        return f_u64(v, &p->size);
    case PT_MTIME:
        return f_i64(v, &p->mtime_ms);
    case PT_ETAG:
        return f_fixed(v, p->etag, sizeof(p->etag));
    case PT_CKSUM:
        if (v.n < 1)
            return MD_CORRUPT("empty part checksum field");
        if (f_cksum(v.p[0], &p->ck_alg) != CM_OK)
            return CM_ERR_CORRUPT;
        return f_fixed((md_slice){v.p + 1, v.n - 1}, p->ck_value, sizeof(p->ck_value));
    case PT_INLINE:
        p->is_inline = 1;
        return nobody ? CM_OK : f_blob(v, &p->inline_data);
    case PT_INLINE_CRC:
        p->inline_crc_set = 1;
        return f_u32(v, &p->inline_crc);
    case PT_LAYOUT:
        return f_layout(v, &p->layout);
    case PT_COMP:
        return f_comp(v, &p->layout);
    case PT_SSE:
        if (v.n < 5 || v.n - 4 > sizeof(p->sse_key))
            return MD_CORRUPT("bad part encryption field length");
        p->sse_seg = cm_get_be32(v.p);
        if (p->sse_seg == 0)
            return MD_CORRUPT("zero encryption segment size");
        p->sse_key_len = (uint8_t)(v.n - 4);
        memcpy(p->sse_key, v.p + 4, v.n - 4);
        return CM_OK;
    default:
        return CM_OK; /* a field from a later version */
    }
}

static cm_err part_fields(md_slice body, int nobody, md_part *out)
{
    rbuf r = {body.p, body.n, 0};
    uint8_t tag;
    md_slice v;
    cm_err e;
    memset(out, 0, sizeof(*out));
    size_t inline_len = 0;
    while ((e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag == PT_INLINE)
            inline_len = v.n;
        if ((e = part_field(out, tag, v, nobody)) != CM_OK)
            goto fail;
    }
    if (e != CM_ERR_NOTFOUND)
        goto fail;
    if (out->is_inline && inline_len != out->size) {
        e = MD_CORRUPT("inline part length differs from its size");
        goto fail;
    }
    if (out->is_inline && out->sse_key_len) {
        e = MD_CORRUPT("encrypted part with an inline body");
        goto fail;
    }
    return CM_OK;
fail:
    md_part_release(out);
    return e;
}

cm_err md_part_encode(const md_part *part, md_wbuf *w)
{
    w_u8(w, part_compressed(part) || part->sse_key_len ? MD_FORMAT_V3 : MD_FORMAT_V1);
    w_part_fields(w, part);
    return w_result(w);
}

cm_err md_part_decode_ex(const uint8_t *buf, size_t len, int nobody, md_part *out)
{
    rbuf r;
    memset(out, 0, sizeof(*out));
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    return part_fields((md_slice){r.p, r.n}, nobody, out);
}

cm_err md_part_decode(const uint8_t *buf, size_t len, md_part *out)
{
    return md_part_decode_ex(buf, len, 0, out);
}

void md_part_release(md_part *part)
{
    if (!part)
        return;
    free(part->inline_data);
    memset(part, 0, sizeof(*part));
}

void md_parts_free(md_part *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        md_part_release(&parts[i]);
    free(parts);
}

/* ---- Objects ---- */

/* The optional header strings, in tag order OT_CONTENT_TYPE.. so code can loop over them. */
static char **obj_header(md_object *o, int i)
{
    char **h[] = {&o->content_type,     &o->cache_control,    &o->content_disposition,
                  &o->content_encoding, &o->content_language, &o->expires,
                  &o->website_redirect};
    return h[i];
}
#define OBJ_NHEADERS 7

/* A name/value pair (metadata, tag): u32 name length | name | value. */
static void w_pair(md_wbuf *w, uint8_t tag, const md_meta *m)
{
    size_t mark = w_begin(w, tag);
    uint8_t b[4];
    const char *name = m->name ? m->name : "";
    const char *value = m->value ? m->value : "";
    cm_put_be32(b, (uint32_t)strlen(name));
    md_w_bytes(w, b, 4);
    md_w_bytes(w, name, strlen(name));
    md_w_bytes(w, value, strlen(value));
    w_end(w, mark);
}

static void w_object_fields(md_wbuf *w, const md_object *o)
{
    md_object *m = (md_object *)o; /* obj_header only reads through it here */
    w_str(w, OT_KEY, o->key);
    w_str(w, OT_VERSION_ID, o->version_id);
    w_u64(w, OT_SIZE, o->size);
    w_u64(w, OT_MTIME, (uint64_t)o->mtime_ms);
    w_str(w, OT_ETAG, o->etag);
    if (o->delete_marker)
        w_tlv(w, OT_DELETE_MARKER, "\1", 1);
    for (int i = 0; i < OBJ_NHEADERS; i++)
        w_str(w, (uint8_t)(OT_CONTENT_TYPE + i), *obj_header(m, i));
    for (size_t i = 0; i < o->nmeta; i++)
        w_pair(w, OT_META, &o->meta[i]);
    if (o->ck_alg != MD_CK_NONE) {
        size_t mark = w_begin(w, OT_CKSUM);
        uint8_t b[2] = {(uint8_t)o->ck_alg, (uint8_t)o->ck_type};
        md_w_bytes(w, b, 2);
        md_w_bytes(w, o->ck_value, strnlen(o->ck_value, sizeof(o->ck_value) - 1));
        w_end(w, mark);
    }
    if (o->storage_class[0])
        w_str(w, OT_STORAGE_CLASS, o->storage_class);
    if (o->inline_data) {
        w_tlv(w, OT_INLINE, o->inline_data, o->inline_len);
        w_u32(w, OT_INLINE_CRC,
              inline_crc(o->inline_data, o->inline_len, o->inline_crc_set, o->inline_crc));
    }
    if (o->upload_id[0])
        w_str(w, OT_UPLOAD_ID, o->upload_id);
    for (size_t i = 0; i < o->nparts; i++) {
        size_t mark = w_begin(w, OT_PART);
        w_part_fields(w, &o->parts[i]);
        w_end(w, mark);
    }
    if (o->hlc || o->hlc_node) {
        uint8_t b[12];
        cm_put_be64(b, o->hlc);
        cm_put_be32(b + 8, o->hlc_node);
        w_tlv(w, OT_HLC, b, sizeof(b));
    }
    if (o->vv.n) {
        uint8_t b[MD_VV_ENC_MAX];
        w_tlv(w, OT_VV, b, md_vv_encode(&o->vv, b));
    }
    if (o->tombstone)
        w_tlv(w, OT_TOMBSTONE, "\1", 1);
    for (size_t i = 0; i < o->ntags; i++)
        w_pair(w, OT_TAG, &o->tags[i]);
    if (o->sse.mode != MD_SSE_NONE) {
        size_t mark = w_begin(w, OT_SSE);
        w_u8(w, o->sse.mode);
        if (o->sse.mode == MD_SSE_C) {
            md_w_bytes(w, o->sse.salt, sizeof(o->sse.salt));
            md_w_bytes(w, o->sse.verify, sizeof(o->sse.verify));
        }
        w_end(w, mark);
    }
    if (o->acl)
        w_tlv(w, OT_ACL, &o->acl, 1);
    if (o->vstamp)
        w_u64(w, OT_VSTAMP, o->vstamp);
    if (o->lock_mode) {
        w_tlv(w, OT_LOCK_MODE, &o->lock_mode, 1);
        w_u64(w, OT_LOCK_UNTIL, (uint64_t)o->lock_until_ms);
    }
    if (o->legal_hold)
        w_tlv(w, OT_LEGAL_HOLD, &o->legal_hold, 1);
    if (o->generation)
        w_u64(w, OT_GENERATION, o->generation);
}

/*
 * The format byte of an object record: 3 when it is encrypted (an older reader must refuse it
 * rather than serve or re-encode it without its keys) or locked (dropping the lock would let a
 * delete through), 2 with tags, else 1.
 */
static uint8_t md_object_format(const md_object *o)
{
    if (o->sse.mode != MD_SSE_NONE || o->lock_mode || o->legal_hold)
        return MD_FORMAT_V3;
    for (size_t i = 0; i < o->nparts; i++) /* a reader that skipped PT_COMP or PT_SSE would serve
                                              the stored bytes */
        if (o->parts[i].sse_key_len || part_compressed(&o->parts[i]))
            return MD_FORMAT_V3;
    return o->ntags ? MD_FORMAT_V2 : MD_FORMAT_V1;
}

cm_err md_object_encode_w(const md_object *obj, md_wbuf *w)
{
    /* Format 2 only when it says more than format 1 could: an untagged record stays byte for byte
     * what it was, and a reader from before tags refuses a tagged record rather than dropping its
     * tags when it re-encodes it. */
    w_u8(w, md_object_format(obj));
    w_object_fields(w, obj);
    return w_result(w);
}

cm_err md_object_encode_stored(const md_object *obj, md_wbuf *w)
{
    md_object o = *obj; /* shallow: only the generation differs */
    o.generation = 1;   /* any non-zero value, so the field is written (last) */
    return md_object_encode_w(&o, w);
}

void md_object_set_generation(md_wbuf *w, uint64_t gen)
{
    cm_put_be64(w->p + w->len - 8, gen);
}

cm_err md_object_set_version(md_wbuf *w, const char *vid, uint64_t vstamp)
{
    md_wbuf out = {0};
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e;
    if (w->len < 1 || r_version(w->p, w->len, &r) != CM_OK)
        return MD_CORRUPT("version stamped on a bad record");
    w_u8(&out, w->p[0]);
    w_str(&out, OT_VERSION_ID, vid);
    w_u64(&out, OT_VSTAMP, vstamp);
    /* The other fields in their order, so the generation stays last. */
    while ((e = r_tlv(&r, &tag, &v)) == CM_OK)
        if (tag != OT_VERSION_ID && tag != OT_VSTAMP)
            w_tlv(&out, tag, v.p, v.n);
    if (e == CM_ERR_NOTFOUND)
        e = w_result(&out);
    if (e != CM_OK) {
        md_w_free(&out);
        return e;
    }
    md_w_free(w);
    *w = out;
    return CM_OK;
}

cm_err md_object_encode(const md_object *obj, uint8_t **buf, size_t *len)
{
    md_wbuf w = {0};
    cm_err e = md_object_encode_w(obj, &w);
    if (e != CM_OK)
        return e;
    *buf = w.p;
    *len = w.len;
    return CM_OK;
}

/* Append a decoded name/value pair to *pairs (metadata or tags). */
static cm_err obj_pair(md_meta **pairs, size_t *n, md_slice v)
{
    if (v.n < 4 || v.n - 4 < cm_get_be32(v.p))
        return MD_CORRUPT("name/value pair name beyond field");
    size_t nlen = cm_get_be32(v.p);
    md_meta *m = realloc(*pairs, (*n + 1) * sizeof(*m));
    if (!m)
        return CM_ERR_NOMEM;
    *pairs = m;
    m = &m[*n];
    memset(m, 0, sizeof(*m));
    (*n)++; /* counted now so release frees a half-filled pair */
    cm_err e = f_str((md_slice){v.p + 4, nlen}, &m->name);
    if (e == CM_OK)
        e = f_str((md_slice){v.p + 4 + nlen, v.n - 4 - nlen}, &m->value);
    return e;
}

static cm_err obj_part(md_object *o, md_slice v, int nobody)
{
    md_part *p = realloc(o->parts, (o->nparts + 1) * sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    o->parts = p;
    cm_err e = part_fields(v, nobody, &o->parts[o->nparts]);
    if (e == CM_OK)
        o->nparts++;
    return e;
}

static cm_err obj_cksum(md_object *o, md_slice v)
{
    if (v.n < 2)
        return MD_CORRUPT("short object checksum field");
    if (f_cksum(v.p[0], &o->ck_alg) != CM_OK)
        return CM_ERR_CORRUPT;
    if (v.p[1] > MD_CKTYPE_COMPOSITE)
        return MD_CORRUPT("unknown checksum type");
    o->ck_type = (md_cksum_type)v.p[1];
    return f_fixed((md_slice){v.p + 2, v.n - 2}, o->ck_value, sizeof(o->ck_value));
}

static cm_err obj_sse(md_sse *s, md_slice v)
{
    if (v.n < 1 || v.p[0] < MD_SSE_S3 || v.p[0] > MD_SSE_C)
        return MD_CORRUPT("unknown encryption mode");
    if (v.n != (v.p[0] == MD_SSE_C ? 1 + sizeof(s->salt) + sizeof(s->verify) : 1))
        return MD_CORRUPT("bad encryption field length");
    s->mode = v.p[0];
    if (s->mode == MD_SSE_C) {
        memcpy(s->salt, v.p + 1, sizeof(s->salt));
        memcpy(s->verify, v.p + 1 + sizeof(s->salt), sizeof(s->verify));
    }
    return CM_OK;
}

static cm_err obj_field(md_object *o, uint8_t tag, md_slice v, int mode)
{
    if (tag >= OT_CONTENT_TYPE && tag < OT_CONTENT_TYPE + OBJ_NHEADERS)
        return mode == MD_DECODE_SUMMARY ? CM_OK : f_str(v, obj_header(o, tag - OT_CONTENT_TYPE));
    switch (tag) {
    case OT_KEY:
        return f_str(v, &o->key);
    case OT_VERSION_ID:
        return f_fixed(v, o->version_id, sizeof(o->version_id));
    case OT_SIZE:
        return f_u64(v, &o->size);
    case OT_MTIME:
        return f_i64(v, &o->mtime_ms);
    case OT_ETAG:
        return f_fixed(v, o->etag, sizeof(o->etag));
    case OT_DELETE_MARKER: {
        uint8_t b = 0;
        cm_err e = f_u8(v, &b);
        o->delete_marker = b != 0;
        return e;
    }
    case OT_META:
        return mode == MD_DECODE_SUMMARY ? CM_OK : obj_pair(&o->meta, &o->nmeta, v);
    case OT_TAG:
        return mode == MD_DECODE_SUMMARY ? CM_OK : obj_pair(&o->tags, &o->ntags, v);
    case OT_CKSUM:
        return obj_cksum(o, v);
    case OT_INLINE:
        if (mode != MD_DECODE_FULL)
            return CM_OK;
        o->inline_len = v.n;
        return f_blob(v, &o->inline_data);
    case OT_INLINE_CRC:
        o->inline_crc_set = 1;
        return f_u32(v, &o->inline_crc);
    case OT_UPLOAD_ID:
        return f_fixed(v, o->upload_id, sizeof(o->upload_id));
    case OT_PART:
        return mode == MD_DECODE_SUMMARY ? CM_OK : obj_part(o, v, mode == MD_DECODE_NOBODY);
    case OT_STORAGE_CLASS:
        return f_fixed(v, o->storage_class, sizeof(o->storage_class));
    case OT_HLC:
        if (v.n != 12)
            return MD_CORRUPT("bad hlc field length");
        o->hlc = cm_get_be64(v.p);
        o->hlc_node = cm_get_be32(v.p + 8);
        return CM_OK;
    case OT_VV:
        return md_vv_decode(v.p, v.n, &o->vv);
    case OT_TOMBSTONE:
        return f_u8(v, &o->tombstone);
    case OT_GENERATION:
        return f_u64(v, &o->generation);
    case OT_SSE:
        return obj_sse(&o->sse, v);
    case OT_ACL:
        return f_u8(v, &o->acl);
    case OT_VSTAMP:
        return f_u64(v, &o->vstamp);
    case OT_LOCK_MODE:
        if (v.n != 1 || v.p[0] < MD_LOCK_GOVERNANCE || v.p[0] > MD_LOCK_COMPLIANCE)
            return MD_CORRUPT("unknown object lock mode");
        o->lock_mode = v.p[0];
        return CM_OK;
    case OT_LOCK_UNTIL:
        return f_i64(v, &o->lock_until_ms);
    case OT_LEGAL_HOLD:
        return f_u8(v, &o->legal_hold);
    default:
        return CM_OK;
    }
}

/* Bytes [off, off + n) of the value a || b: a pointer into a or b when they lie in one of them,
 * else copied into tmp (n bytes, the caller's). */
static const uint8_t *two_at(md_slice a, md_slice b, size_t off, size_t n, uint8_t *tmp)
{
    if (off + n <= a.n)
        return a.p + off;
    if (off >= a.n)
        return b.p + (off - a.n);
    size_t k = a.n - off;
    memcpy(tmp, a.p + off, k);
    memcpy(tmp + k, b.p, n - k);
    return tmp;
}

/* obj_field ignores the value of tag in mode (it does not look at the slice). */
static int obj_field_skipped(uint8_t tag, int mode)
{
    if (mode == MD_DECODE_FULL)
        return 0;
    if (tag == OT_INLINE)
        return 1;
    return mode == MD_DECODE_SUMMARY &&
           (tag == OT_META || tag == OT_TAG || tag == OT_PART ||
            (tag >= OT_CONTENT_TYPE && tag < OT_CONTENT_TYPE + OBJ_NHEADERS));
}

cm_err md_object_decode_split(md_slice a, md_slice b, int mode, md_object *out)
{
    size_t total = a.n + b.n, off = 1;
    uint8_t hdr[5];
    cm_err e = CM_OK;
    memset(out, 0, sizeof(*out));
    if (total < 1)
        return MD_CORRUPT("empty record");
    uint8_t version = *two_at(a, b, 0, 1, hdr);
    if (version != MD_FORMAT_V1 && version != MD_FORMAT_V2 && version != MD_FORMAT_V3)
        return MD_CORRUPT("unknown record format version");
    while (e == CM_OK && off < total) {
        if (total - off < 5) {
            e = MD_CORRUPT("truncated field header");
            break;
        }
        const uint8_t *h = two_at(a, b, off, 5, hdr);
        uint8_t tag = h[0];
        uint32_t len = cm_get_be32(h + 1);
        if (total - off - 5 < len) {
            e = MD_CORRUPT("field length beyond record");
            break;
        }
        md_slice v = {NULL, 0};
        uint8_t *tmp = NULL;
        if (!obj_field_skipped(tag, mode)) { /* a skipped body is never copied */
            size_t vo = off + 5;
            if (vo < a.n && vo + len > a.n && !(tmp = malloc(len))) {
                e = CM_ERR_NOMEM;
                break;
            }
            v = (md_slice){two_at(a, b, vo, len, tmp), len};
        }
        e = obj_field(out, tag, v, mode);
        free(tmp);
        off += 5 + (size_t)len;
    }
    if (e == CM_OK)
        return CM_OK;
    md_object_release(out);
    return e;
}

cm_err md_object_decode_ex(const uint8_t *buf, size_t len, int mode, md_object *out)
{
    return md_object_decode_split((md_slice){buf, len}, (md_slice){NULL, 0}, mode, out);
}

cm_err md_object_decode(const uint8_t *buf, size_t len, md_object *out)
{
    return md_object_decode_ex(buf, len, 0, out);
}

void md_meta_free(md_meta *pairs, size_t n)
{
    for (size_t i = 0; pairs && i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
}

void md_object_release(md_object *obj)
{
    if (!obj)
        return;
    free(obj->key);
    for (int i = 0; i < OBJ_NHEADERS; i++)
        free(*obj_header(obj, i));
    for (size_t i = 0; i < obj->nmeta; i++) {
        free(obj->meta[i].name);
        free(obj->meta[i].value);
    }
    free(obj->meta);
    md_meta_free(obj->tags, obj->ntags);
    free(obj->inline_data);
    md_parts_free(obj->parts, obj->nparts);
    memset(obj, 0, sizeof(*obj));
}

cm_err md_object_copy(const md_object *src, md_object *dst)
{
    /* Through the codec: one well-tested path that copies every field, present and future. */
    md_wbuf w = {0};
    cm_err e = md_object_encode_w(src, &w);
    if (e != CM_OK) {
        memset(dst, 0, sizeof(*dst));
        return e;
    }
    e = md_object_decode(w.p, w.len, dst);
    md_w_free(&w);
    return e;
}

/* ---- Inline body checks ---- */

/* Does an inline body match what its record says about it? */
static cm_err inline_check(const uint8_t *data, size_t len, int crc_set, uint32_t crc,
                           const char *etag)
{
    if (crc_set)
        return cm_crc32c(0, data, len) == crc ? CM_OK : MD_CORRUPT("inline body CRC32C mismatch");
    /* A record written before the CRC was stored: a plain-MD5 ETag is the body's digest. */
    uint8_t want[16], got[16];
    if (strlen(etag) != 32 || cm_hex_decode(etag, 32, want, 16) != CM_OK ||
        cm_ck_digest(CM_CK_MD5, data, len, got) != CM_OK)
        return CM_OK; /* nothing to check against */
    return memcmp(want, got, 16) == 0 ? CM_OK : MD_CORRUPT("inline body MD5 differs from its ETag");
}

cm_err md_part_inline_verify(const md_part *part)
{
    if (!part->inline_data)
        return CM_OK;
    return inline_check(part->inline_data, (size_t)part->size, part->inline_crc_set,
                        part->inline_crc, part->etag);
}

cm_err md_object_inline_verify(const md_object *obj)
{
    cm_err e = CM_OK;
    if (obj->inline_data)
        e = inline_check(obj->inline_data, obj->inline_len, obj->inline_crc_set, obj->inline_crc,
                         obj->etag);
    for (size_t i = 0; e == CM_OK && i < obj->nparts; i++)
        e = md_part_inline_verify(&obj->parts[i]);
    return e;
}

/* ---- Buckets and uploads ---- */

static void w_bucket_lock(md_wbuf *w, const md_bucket *b)
{
    uint8_t f[7] = {1, b->lock_mode, b->lock_unit};
    cm_put_be32(f + 3, b->lock_period);
    w_tlv(w, BT_LOCK, f, sizeof(f));
}

static cm_err bucket_lock(md_bucket *b, md_slice v)
{
    if (v.n != 7 || v.p[0] != 1 || v.p[1] > MD_LOCK_COMPLIANCE || v.p[2] > MD_LOCK_YEARS)
        return MD_CORRUPT("bad object lock field");
    b->lock_enabled = 1;
    b->lock_mode = v.p[1];
    b->lock_unit = v.p[2];
    b->lock_period = cm_get_be32(v.p + 3);
    return CM_OK;
}

cm_err md_bucket_encode_tags(const md_bucket *b, const md_meta *tags, size_t ntags, md_wbuf *w)
{
    /* as md_object_encode_w; default encryption lost by an older reader would store new objects
     * in the clear, so it takes format 3 */
    w_u8(w, b->sse_default || b->lock_enabled ? MD_FORMAT_V3 : ntags ? MD_FORMAT_V2 : MD_FORMAT_V1);
    w_tlv(w, BT_NAME, b->name, strnlen(b->name, sizeof(b->name) - 1));
    w_u64(w, BT_CREATED, (uint64_t)b->created_ms);
    w_tlv(w, BT_OWNER, b->owner, strnlen(b->owner, sizeof(b->owner) - 1));
    w_tlv(w, BT_VERSIONING, &b->versioning, 1);
    if (b->sse_default) {
        uint8_t sse[2] = {b->sse_default, b->sse_bucket_key};
        w_tlv(w, BT_SSE, sse, sizeof(sse));
    }
    for (size_t i = 0; i < ntags; i++)
        w_pair(w, BT_TAG, &tags[i]);
    if (b->acl)
        w_tlv(w, BT_ACL, &b->acl, 1);
    if (b->pab)
        w_tlv(w, BT_PAB, &b->pab, 1);
    if (b->ownership)
        w_tlv(w, BT_OWNERSHIP, &b->ownership, 1);
    if (b->lock_enabled)
        w_bucket_lock(w, b);
    return w_result(w);
}

cm_err md_bucket_encode(const md_bucket *b, md_wbuf *w)
{
    return md_bucket_encode_tags(b, NULL, 0, w);
}

/*
 * Rewrite an encoded bucket record into w without its `drop` fields (all of them: BT_TAG
 * repeats), keeping every other field, known to this reader or not, byte for byte. The format
 * byte is kept, raised to at least min_format.
 */
#define BT_BIT(t) (1u << (t)) /* bucket field numbers stay below 32 */

static cm_err bucket_rewrite(const uint8_t *buf, size_t len, uint32_t drop, uint8_t min_format,
                             md_wbuf *w)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    w_u8(w, buf[0] > min_format ? buf[0] : min_format);
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag >= 32 || !(drop & BT_BIT(tag)))
            w_tlv(w, tag, v.p, v.n);
    }
    if (e != CM_ERR_NOTFOUND) {
        md_w_free(w);
        return e;
    }
    return CM_OK;
}

cm_err md_bucket_retag(const uint8_t *buf, size_t len, const md_meta *tags, size_t ntags,
                       md_wbuf *w)
{
    cm_err e = bucket_rewrite(buf, len, BT_BIT(BT_TAG), ntags ? MD_FORMAT_V2 : MD_FORMAT_V1, w);
    for (size_t i = 0; e == CM_OK && i < ntags; i++)
        w_pair(w, BT_TAG, &tags[i]);
    return e == CM_OK ? w_result(w) : e;
}

/* The record with the one document field tag (BT_CORS, BT_WEBSITE) replaced (xml NULL: none). */
static cm_err encode_doc(const uint8_t *buf, size_t len, uint8_t tag, const char *xml,
                         size_t xml_len, md_wbuf *w)
{
    cm_err e = bucket_rewrite(buf, len, BT_BIT(tag), MD_FORMAT_V1, w);
    if (e == CM_OK && xml)
        w_tlv(w, tag, xml, xml_len);
    return e == CM_OK ? w_result(w) : e;
}

cm_err md_bucket_encode_cors(const uint8_t *buf, size_t len, const char *xml, size_t xml_len,
                             md_wbuf *w)
{
    return encode_doc(buf, len, BT_CORS, xml, xml_len, w);
}

cm_err md_bucket_encode_website(const uint8_t *buf, size_t len, const char *xml, size_t xml_len,
                                md_wbuf *w)
{
    return encode_doc(buf, len, BT_WEBSITE, xml, xml_len, w);
}

cm_err md_bucket_encode_sse(const uint8_t *buf, size_t len, uint8_t mode, uint8_t bucket_key,
                            md_wbuf *w)
{
    /* default encryption lost by an older reader would store new objects in the clear: format 3 */
    cm_err e = bucket_rewrite(buf, len, BT_BIT(BT_SSE), mode ? MD_FORMAT_V3 : MD_FORMAT_V1, w);
    if (e == CM_OK && mode) {
        uint8_t sse[2] = {mode, bucket_key};
        w_tlv(w, BT_SSE, sse, sizeof(sse));
    }
    return e == CM_OK ? w_result(w) : e;
}

cm_err md_bucket_encode_access(const uint8_t *buf, size_t len, const md_bucket *from,
                               unsigned fields, md_wbuf *w)
{
    uint32_t drop = (fields & MD_ACCESS_ACL ? BT_BIT(BT_ACL) : 0) |
                    (fields & MD_ACCESS_PAB ? BT_BIT(BT_PAB) : 0) |
                    (fields & MD_ACCESS_OWNERSHIP ? BT_BIT(BT_OWNERSHIP) : 0);
    cm_err e = bucket_rewrite(buf, len, drop, MD_FORMAT_V1, w);
    if (e == CM_OK && (fields & MD_ACCESS_ACL) && from->acl)
        w_tlv(w, BT_ACL, &from->acl, 1);
    if (e == CM_OK && (fields & MD_ACCESS_PAB) && from->pab)
        w_tlv(w, BT_PAB, &from->pab, 1);
    if (e == CM_OK && (fields & MD_ACCESS_OWNERSHIP) && from->ownership)
        w_tlv(w, BT_OWNERSHIP, &from->ownership, 1);
    return e == CM_OK ? w_result(w) : e;
}

cm_err md_bucket_encode_versioning(const uint8_t *buf, size_t len, uint8_t state, md_wbuf *w)
{
    cm_err e = bucket_rewrite(buf, len, BT_BIT(BT_VERSIONING), MD_FORMAT_V1, w);
    if (e == CM_OK)
        w_tlv(w, BT_VERSIONING, &state, 1);
    return e == CM_OK ? w_result(w) : e;
}

cm_err md_bucket_encode_lock(const uint8_t *buf, size_t len, const md_bucket *from, md_wbuf *w)
{
    /* a lock lost by an older reader would let deletes through: format 3 */
    cm_err e = bucket_rewrite(buf, len, BT_BIT(BT_LOCK), MD_FORMAT_V3, w);
    if (e == CM_OK)
        w_bucket_lock(w, from);
    return e == CM_OK ? w_result(w) : e;
}

static cm_err doc_decode(const uint8_t *buf, size_t len, uint8_t want, char **xml, size_t *xml_len)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    *xml = NULL;
    *xml_len = 0;
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag != want)
            continue;
        free(*xml);
        if (!(*xml = malloc(v.n + 1)))
            return CM_ERR_NOMEM;
        memcpy(*xml, v.p, v.n);
        (*xml)[v.n] = '\0';
        *xml_len = v.n;
    }
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    free(*xml);
    *xml = NULL;
    *xml_len = 0;
    return e;
}

cm_err md_bucket_cors_decode(const uint8_t *buf, size_t len, char **xml, size_t *xml_len)
{
    return doc_decode(buf, len, BT_CORS, xml, xml_len);
}

cm_err md_bucket_website_decode(const uint8_t *buf, size_t len, char **xml, size_t *xml_len)
{
    return doc_decode(buf, len, BT_WEBSITE, xml, xml_len);
}

cm_err md_bucket_tags_decode(const uint8_t *buf, size_t len, md_meta **tags, size_t *ntags)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    *tags = NULL;
    *ntags = 0;
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag == BT_TAG)
            e = obj_pair(tags, ntags, v);
    }
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    md_meta_free(*tags, *ntags);
    *tags = NULL;
    *ntags = 0;
    return e;
}

cm_err md_bucket_decode(const uint8_t *buf, size_t len, md_bucket *out)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    memset(out, 0, sizeof(*out));
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag == BT_NAME)
            e = f_fixed(v, out->name, sizeof(out->name));
        else if (tag == BT_CREATED)
            e = f_i64(v, &out->created_ms);
        else if (tag == BT_OWNER)
            e = f_fixed(v, out->owner, sizeof(out->owner));
        else if (tag == BT_VERSIONING)
            e = f_u8(v, &out->versioning);
        else if (tag == BT_SSE && (v.n != 2 || v.p[0] != MD_SSE_S3))
            e = MD_CORRUPT("bad bucket encryption field");
        else if (tag == BT_SSE)
            out->sse_default = v.p[0], out->sse_bucket_key = v.p[1];
        else if (tag == BT_ACL)
            e = f_u8(v, &out->acl);
        else if (tag == BT_PAB)
            e = f_u8(v, &out->pab);
        else if (tag == BT_OWNERSHIP)
            e = f_u8(v, &out->ownership);
        else if (tag == BT_LOCK)
            e = bucket_lock(out, v);
    }
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

cm_err md_upload_encode(const md_upload *up, md_wbuf *w)
{
    uint8_t format = md_object_format(&up->tmpl); /* as md_object_encode_w */
    w_u8(w, format);
    w_str(w, UT_KEY, up->key);
    w_tlv(w, UT_UPLOAD_ID, up->upload_id, strnlen(up->upload_id, sizeof(up->upload_id) - 1));
    w_u64(w, UT_INITIATED, (uint64_t)up->initiated_ms);
    w_tlv(w, UT_OWNER, up->owner, strnlen(up->owner, sizeof(up->owner) - 1));
    size_t mark = w_begin(w, UT_TMPL);
    w_u8(w, format);
    w_object_fields(w, &up->tmpl);
    w_end(w, mark);
    return w_result(w);
}

static cm_err upload_field(md_upload *up, uint8_t tag, md_slice v)
{
    switch (tag) {
    case UT_KEY:
        return f_str(v, &up->key);
    case UT_UPLOAD_ID:
        return f_fixed(v, up->upload_id, sizeof(up->upload_id));
    case UT_INITIATED:
        return f_i64(v, &up->initiated_ms);
    case UT_OWNER:
        return f_fixed(v, up->owner, sizeof(up->owner));
    case UT_TMPL:
        md_object_release(&up->tmpl);
        return md_object_decode(v.p, v.n, &up->tmpl);
    default:
        return CM_OK;
    }
}

cm_err md_upload_decode(const uint8_t *buf, size_t len, md_upload *out)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e;
    memset(out, 0, sizeof(*out));
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while ((e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if ((e = upload_field(out, tag, v)) != CM_OK)
            break;
    }
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    md_upload_release(out);
    return e;
}

void md_upload_release(md_upload *up)
{
    if (!up)
        return;
    free(up->key);
    md_object_release(&up->tmpl);
    memset(up, 0, sizeof(*up));
}

/* ---- Garbage records ---- */

enum { GT_LAYOUT = 1, GT_BUCKET, GT_KEY };

cm_err md_garbage_encode(const md_garbage *g, md_wbuf *w)
{
    w_u8(w, MD_FORMAT_V1);
    uint8_t b[LAYOUT_LEN_NODES];
    size_t n = layout_bytes(&g->layout, b);
    w_tlv(w, GT_LAYOUT, b, n);
    w_str(w, GT_BUCKET, g->bucket);
    w_str(w, GT_KEY, g->key);
    return w_result(w);
}

cm_err md_garbage_decode(const uint8_t *buf, size_t len, md_garbage *out)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    int have_layout = 0;
    memset(out, 0, sizeof(*out));
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag == GT_LAYOUT)
            e = f_layout(v, &out->layout), have_layout = 1;
        else if (tag == GT_BUCKET)
            e = f_str(v, &out->bucket);
        else if (tag == GT_KEY)
            e = f_str(v, &out->key);
    }
    if (e == CM_ERR_NOTFOUND)
        e = have_layout ? CM_OK : MD_CORRUPT("garbage record without layout");
    if (e != CM_OK) {
        free(out->bucket);
        free(out->key);
        memset(out, 0, sizeof(*out));
    }
    return e;
}

/* ---- Intent records (md_intent.c) ---- */

enum { IT_LAYOUT = 1, IT_BUCKET, IT_KEY, IT_UPLOAD, IT_NUMBER, IT_ID, IT_LIFE };

cm_err md_intent_encode(const md_intent *in, md_wbuf *w)
{
    w_u8(w, MD_FORMAT_V1);
    uint8_t b[LAYOUT_LEN_NODES];
    size_t n = layout_bytes(&in->layout, b);
    w_tlv(w, IT_LAYOUT, b, n);
    w_str(w, IT_BUCKET, in->bucket);
    w_str(w, IT_KEY, in->key);
    w_str(w, IT_UPLOAD, in->upload_id);
    w_u32(w, IT_NUMBER, in->number);
    w_u64(w, IT_ID, in->id);
    w_u64(w, IT_LIFE, in->life);
    return w_result(w);
}

cm_err md_intent_decode(const uint8_t *buf, size_t len, md_intent *out)
{
    rbuf r;
    uint8_t tag;
    md_slice v;
    cm_err e = CM_OK;
    unsigned have = 0;
    memset(out, 0, sizeof(*out));
    if (r_version(buf, len, &r) != CM_OK)
        return CM_ERR_CORRUPT;
    while (e == CM_OK && (e = r_tlv(&r, &tag, &v)) == CM_OK) {
        if (tag >= IT_LAYOUT && tag <= IT_LIFE)
            have |= 1u << tag;
        if (tag == IT_LAYOUT)
            e = f_layout(v, &out->layout);
        else if (tag == IT_BUCKET)
            e = f_str(v, &out->bucket);
        else if (tag == IT_KEY)
            e = f_str(v, &out->key);
        else if (tag == IT_UPLOAD)
            e = f_fixed(v, out->upload_id, sizeof(out->upload_id));
        else if (tag == IT_NUMBER)
            e = f_u32(v, &out->number);
        else if (tag == IT_ID)
            e = f_u64(v, &out->id);
        else if (tag == IT_LIFE)
            e = f_u64(v, &out->life);
    }
    if (e == CM_ERR_NOTFOUND) /* every field but life is needed to decide the intent */
        e = (have | 1u << IT_LIFE) == 0xFEu ? CM_OK : MD_CORRUPT("intent record lacks a field");
    if (e != CM_OK) {
        free(out->bucket);
        free(out->key);
        memset(out, 0, sizeof(*out));
    }
    return e;
}
