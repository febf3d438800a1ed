/*
 * test_meta_record.c - the metadata record codec: every field round-trips, copies are deep, and
 * decoding random, truncated or bit-flipped bytes returns CM_ERR_CORRUPT or a valid record, never
 * a crash (run under ASan to catch overreads), also when cut in two pieces; a record in two
 * pieces decodes as the whole does.
 * Randomness is seeded; the seed is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static unsigned seed;

static char *xstrdup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    memcpy(d, s, strlen(s) + 1);
    return d;
}

/* An object with every field set: inline body, metadata, one inline and one chunked part. */
static void full_object(md_object *o)
{
    memset(o, 0, sizeof(*o));
    o->key = xstrdup("photos/2026/caf\xc3\xa9.jpg");
    snprintf(o->version_id, sizeof(o->version_id), "null");
    o->size = 5;
    o->mtime_ms = -1234567890123LL;
    snprintf(o->etag, sizeof(o->etag), "0123456789abcdef0123456789abcdef-2");
    o->delete_marker = 0;
    o->content_type = xstrdup("image/jpeg");
    o->cache_control = xstrdup("max-age=60");
    o->content_disposition = xstrdup("attachment");
    o->content_encoding = xstrdup("gzip");
    o->content_language = xstrdup("fr");
    o->expires = xstrdup("Wed, 25 Nov 2026 16:00:00 GMT");
    o->website_redirect = xstrdup("/other");
    snprintf(o->storage_class, sizeof(o->storage_class), "STANDARD_IA");
    o->nmeta = 2;
    o->meta = calloc(2, sizeof(md_meta));
    o->meta[0] = (md_meta){xstrdup("color"), xstrdup("blue")};
    o->meta[1] = (md_meta){xstrdup("empty"), xstrdup("")};
    o->ck_alg = MD_CK_CRC64NVME;
    o->ck_type = MD_CKTYPE_COMPOSITE;
    snprintf(o->ck_value, sizeof(o->ck_value), "AAAAAAAAAAA=-2");
    o->inline_data = malloc(5);
    memcpy(o->inline_data, "hello", 5);
    o->inline_len = 5;
    o->nparts = 2;
    o->parts = calloc(2, sizeof(md_part));
    md_part *p = &o->parts[0];
    p->number = 1, p->size = 3, p->mtime_ms = 42;
    snprintf(p->etag, sizeof(p->etag), "ffffffffffffffffffffffffffffffff");
    p->ck_alg = MD_CK_SHA256;
    snprintf(p->ck_value, sizeof(p->ck_value), "c2hhMjU2");
    p->inline_data = malloc(3);
    memcpy(p->inline_data, "abc", 3);
    p = &o->parts[1];
    p->number = 10000, p->size = 1ULL << 40, p->mtime_ms = 43;
    snprintf(p->etag, sizeof(p->etag), "00000000000000000000000000000000");
    for (int i = 0; i < 16; i++)
        p->layout.blob[i] = (uint8_t)(i * 17);
    p->layout.size = 1ULL << 40;
    p->layout.cell_size = 262144;
    p->layout.k = 4, p->layout.m = 2;
    memset(p->layout.drives, 0xFF, sizeof(p->layout.drives));
    for (int i = 0; i < 6; i++)
        p->layout.drives[i] = (uint8_t)(i + 3);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int part_eq(const md_part *a, const md_part *b)
{
    if (a->number != b->number || a->size != b->size || a->mtime_ms != b->mtime_ms ||
        strcmp(a->etag, b->etag) || a->ck_alg != b->ck_alg || strcmp(a->ck_value, b->ck_value))
        return 0;
    if (!a->inline_data != !b->inline_data)
        return 0;
    if (a->inline_data)
        return memcmp(a->inline_data, b->inline_data, (size_t)a->size) == 0;
    return memcmp(&a->layout, &b->layout, sizeof(a->layout)) == 0;
}

static int obj_eq(const md_object *a, const md_object *b)
{
    if (!str_eq(a->key, b->key) || strcmp(a->version_id, b->version_id) || a->size != b->size ||
        a->mtime_ms != b->mtime_ms || strcmp(a->etag, b->etag) ||
        a->delete_marker != b->delete_marker || !str_eq(a->content_type, b->content_type) ||
        !str_eq(a->cache_control, b->cache_control) ||
        !str_eq(a->content_disposition, b->content_disposition) ||
        !str_eq(a->content_encoding, b->content_encoding) ||
        !str_eq(a->content_language, b->content_language) || !str_eq(a->expires, b->expires) ||
        !str_eq(a->website_redirect, b->website_redirect) ||
        strcmp(a->storage_class, b->storage_class) || a->nmeta != b->nmeta ||
        a->ck_alg != b->ck_alg || a->ck_type != b->ck_type || strcmp(a->ck_value, b->ck_value) ||
        a->inline_len != b->inline_len || !a->inline_data != !b->inline_data ||
        a->nparts != b->nparts)
        return 0;
    for (size_t i = 0; i < a->nmeta; i++)
        if (!str_eq(a->meta[i].name, b->meta[i].name) ||
            !str_eq(a->meta[i].value, b->meta[i].value))
            return 0;
    if (a->inline_data && memcmp(a->inline_data, b->inline_data, a->inline_len))
        return 0;
    for (size_t i = 0; i < a->nparts; i++)
        if (!part_eq(&a->parts[i], &b->parts[i]))
            return 0;
    return 1;
}

static void test_object_roundtrip(void)
{
    md_object o, d, c;
    uint8_t *buf;
    size_t len;
    full_object(&o);
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], 1); /* format version */
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_TRUE(obj_eq(&o, &d));
    CU_ASSERT_EQUAL_FATAL(md_object_copy(&o, &c), CM_OK);
    CU_ASSERT_TRUE(obj_eq(&o, &c));
    CU_ASSERT_PTR_NOT_EQUAL(c.key, o.key);
    CU_ASSERT_PTR_NOT_EQUAL(c.parts[0].inline_data, o.parts[0].inline_data);
    md_object_release(&c);
    CU_ASSERT_PTR_NULL(c.key);
    CU_ASSERT_EQUAL(c.nparts, 0);
    md_object_release(&d);
    md_object_release(&o);
    md_object_release(NULL);
    free(buf);
}

static void test_minimal_roundtrip(void)
{
    /* A delete marker: no key, no strings, empty (but present) inline body. */
    md_object o = {0}, d;
    uint8_t *buf;
    size_t len;
    o.delete_marker = 1;
    o.inline_data = malloc(1);
    o.inline_len = 0;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_TRUE(obj_eq(&o, &d));
    CU_ASSERT_PTR_NULL(d.key);
    CU_ASSERT_PTR_NOT_NULL(d.inline_data);
    md_object_release(&d);
    md_object_release(&o);
    free(buf);
}

static void test_unknown_field_skipped(void)
{
    md_object o = {0}, d;
    uint8_t *buf;
    size_t len;
    int saved = cm_log_threshold;
    o.key = xstrdup("k");
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    /* Append a field from a "future" version: tag 200, 3 bytes. */
    uint8_t *b2 = malloc(len + 8);
    memcpy(b2, buf, len);
    memcpy(b2 + len, "\xc8\x00\x00\x00\x03xyz", 8);
    CU_ASSERT_EQUAL(md_object_decode(b2, len + 8, &d), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.key, "k");
    md_object_release(&d);
    /* A field whose length runs past the end is corrupt. */
    cm_log_threshold = -1; /* the corruption below is expected */
    b2[len + 4] = 9;
    CU_ASSERT_EQUAL(md_object_decode(b2, len + 8, &d), CM_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(d.key);
    b2[0] = 4; /* unknown format version (3: a compressed or encrypted body) */
    CU_ASSERT_EQUAL(md_object_decode(b2, len, &d), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_object_decode(b2, 0, &d), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
    free(b2);
    free(buf);
    md_object_release(&o);
}

/*
 * The storage class (tag 18) came later: a record without it, as written before, decodes as
 * STANDARD (""), the field survives a listing's summary decode, and one too long is corrupt.
 */
static void test_storage_class(void)
{
    static const uint8_t old_record[] = {1, 1, 0, 0, 0, 1, 'k', 3, 0, 0,
                                         0, 8, 0, 0, 0, 0, 0,   0, 0, 9};
    md_object o = {0}, d;
    uint8_t *buf;
    size_t len;
    int saved = cm_log_threshold;

    CU_ASSERT_EQUAL_FATAL(md_object_decode(old_record, sizeof(old_record), &d), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.key, "k");
    CU_ASSERT_EQUAL(d.size, 9);
    CU_ASSERT_STRING_EQUAL(d.storage_class, "");
    md_object_release(&d);

    o.key = xstrdup("k");
    snprintf(o.storage_class, sizeof(o.storage_class), "REDUCED_REDUNDANCY");
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode_ex(buf, len, 1, &d), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.storage_class, "REDUCED_REDUNDANCY");
    md_object_release(&d);
    free(buf);
    o.storage_class[0] = '\0'; /* STANDARD is not written at all */
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(len, 1 + 5 + 1 + 5 + 8 + 5 + 8 + 5 + 0 + 5 +
                             0); /* format, key, size, mtime, empty version and etag */
    free(buf);
    md_object_release(&o);

    uint8_t big[1 + 5 + 30] = {1, 18, 0, 0, 0, 30};
    memset(big + 6, 'A', 30);
    cm_log_threshold = -1;
    CU_ASSERT_EQUAL(md_object_decode(big, sizeof(big), &d), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
}

static void test_bad_fields(void)
{
    md_object d;
    int saved = cm_log_threshold;
    cm_log_threshold = -1;
    /* size field of 7 bytes */
    static const uint8_t bad_size[] = {1, 3, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7};
    CU_ASSERT_EQUAL(md_object_decode(bad_size, sizeof(bad_size), &d), CM_ERR_CORRUPT);
    /* etag longer than its 48-byte slot */
    uint8_t big[1 + 5 + 60] = {1, 5, 0, 0, 0, 60};
    memset(big + 6, 'a', 60);
    CU_ASSERT_EQUAL(md_object_decode(big, sizeof(big), &d), CM_ERR_CORRUPT);
    /* unknown checksum algorithm */
    static const uint8_t bad_ck[] = {1, 15, 0, 0, 0, 2, 99, 0};
    CU_ASSERT_EQUAL(md_object_decode(bad_ck, sizeof(bad_ck), &d), CM_ERR_CORRUPT);
    /* nested part with inline bytes that disagree with its size (size 5, 2 bytes) */
    static const uint8_t bad_part[] = {1, 17, 0, 0, 0, 20, 2, 0, 0, 0, 8, 0,   0,
                                       0, 0,  0, 0, 0, 5,  6, 0, 0, 0, 2, 'x', 'y'};
    CU_ASSERT_EQUAL(md_object_decode(bad_part, sizeof(bad_part), &d), CM_ERR_CORRUPT);
    /* metadata pair whose name length runs past the field */
    static const uint8_t bad_meta[] = {1, 14, 0, 0, 0, 5, 0, 0, 0, 9, 'a'};
    CU_ASSERT_EQUAL(md_object_decode(bad_meta, sizeof(bad_meta), &d), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
}

/* Decoding must return OK or CORRUPT for any input; the record is released either way. */
/* Decode a[0, cut) || a[cut, n) from two tight heap blocks (ASan sees an overread of either). */
static cm_err decode_cut(const uint8_t *buf, size_t n, size_t cut, int mode, md_object *out)
{
    uint8_t *a = malloc(cut ? cut : 1), *b = malloc(n - cut ? n - cut : 1);
    memcpy(a, buf, cut);
    memcpy(b, buf + cut, n - cut);
    cm_err e = md_object_decode_split((md_slice){a, cut}, (md_slice){b, n - cut}, mode, out);
    free(a);
    free(b);
    return e;
}

/* Forged or damaged bytes decode as a record or CM_ERR_CORRUPT, whole and cut in two at a random
 * place (a split value as md_kv gives it), in the summary mode listings use. */
static void decode_any(const uint8_t *b, size_t n)
{
    md_object d;
    cm_err e = md_object_decode(b, n, &d);
    CU_ASSERT(e == CM_OK || e == CM_ERR_CORRUPT);
    md_object_release(&d);
    e = decode_cut(b, n, n ? (size_t)rand() % (n + 1) : 0, MD_DECODE_SUMMARY, &d);
    CU_ASSERT(e == CM_OK || e == CM_ERR_CORRUPT);
    md_object_release(&d);
}

static void test_fuzz(void)
{
    md_object o;
    uint8_t *buf;
    size_t len;
    int saved = cm_log_threshold;
    full_object(&o);
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    md_object_release(&o);
    cm_log_threshold = -1; /* thousands of corruption reports otherwise */
    srand(seed);
    for (size_t cut = 0; cut <= len; cut++) /* every truncation, in a tight heap block */
    {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, buf, cut);
        decode_any(t, cut);
        free(t);
    }
    uint8_t *m = malloc(len);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, buf, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            m[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
        decode_any(m, (size_t)rand() % (len + 1));
    }
    free(m);
    uint8_t rnd[256];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rand() % sizeof(rnd);
        for (size_t i = 0; i < n; i++)
            rnd[i] = (uint8_t)rand();
        if (n)
            rnd[0] = 1; /* get past the version byte most of the time */
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, rnd, n);
        decode_any(t, n);
        free(t);
    }
    cm_log_threshold = saved;
    free(buf);
}

/*
 * A record in two pieces (a split value as it lies in the store, md_kv.c) decodes as the whole
 * does, in every mode and at every cut: equal re-encodings; truncated ones fail alike.
 */
static void test_decode_split(void)
{
    md_object o, whole, two;
    uint8_t *buf, *e1, *e2;
    size_t len, l1, l2;
    static const int modes[] = {MD_DECODE_FULL, MD_DECODE_SUMMARY, MD_DECODE_NOBODY};
    full_object(&o);
    free(o.inline_data);
    o.inline_len = 300;
    o.inline_data = malloc(o.inline_len);
    for (size_t i = 0; i < o.inline_len; i++)
        o.inline_data[i] = (uint8_t)(i * 7);
    o.hlc = 0x0102030405060708ULL, o.hlc_node = 9, o.tombstone = 0;
    md_vv_increment(&o.vv, 9, o.hlc);
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    md_object_release(&o);
    int compared = 0, saved = cm_log_threshold;
    for (int m = 0; m < 3; m++) {
        CU_ASSERT_EQUAL_FATAL(md_object_decode_ex(buf, len, modes[m], &whole), CM_OK);
        CU_ASSERT_EQUAL_FATAL(md_object_encode(&whole, &e1, &l1), CM_OK);
        CU_ASSERT_EQUAL(whole.inline_data != NULL, modes[m] == MD_DECODE_FULL);
        for (size_t cut = 0; cut <= len; cut++) {
            CU_ASSERT_EQUAL_FATAL(decode_cut(buf, len, cut, modes[m], &two), CM_OK);
            CU_ASSERT_EQUAL_FATAL(md_object_encode(&two, &e2, &l2), CM_OK);
            CU_ASSERT_TRUE(l1 == l2 && memcmp(e1, e2, l1) == 0);
            compared++;
            free(e2);
            md_object_release(&two);
        }
        free(e1);
        md_object_release(&whole);
    }
    CU_ASSERT_EQUAL(compared, 3 * (int)(len + 1));
    cm_log_threshold = -1; /* the truncated records' reports */
    for (size_t n = 0; n < len; n += 7)
        for (size_t cut = 0; cut <= n; cut += 5) {
            cm_err a = md_object_decode_ex(buf, n, MD_DECODE_SUMMARY, &whole);
            cm_err b = decode_cut(buf, n, cut, MD_DECODE_SUMMARY, &two);
            CU_ASSERT_EQUAL(a, b);
            if (a == CM_OK)
                md_object_release(&whole);
            if (b == CM_OK)
                md_object_release(&two);
        }
    cm_log_threshold = saved;
    free(buf);
}

/*
 * Inline bodies carry a CRC32C: a flipped body byte is caught, re-encoding a damaged record keeps
 * the stored CRC (a layout swap or a copy must not launder the damage), and a record written
 * before the CRC existed is checked against its plain-MD5 ETag.
 */
static void test_inline_crc(void)
{
    static const uint8_t body[] = "hello, inline body";
    md_object o = {0}, d, d2;
    uint8_t *buf, *buf2;
    size_t len, len2;
    o.key = "k";
    o.size = sizeof(body);
    /* MD5 of body, the ETag a PUT gives it */
    uint8_t md5[16];
    cm_ck_digest(CM_CK_MD5, body, sizeof(body), md5);
    cm_hex_encode(md5, 16, o.etag);
    o.inline_data = (uint8_t *)body;
    o.inline_len = sizeof(body);
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_TRUE(d.inline_crc_set);
    CU_ASSERT_EQUAL(d.inline_crc, cm_crc32c(0, body, sizeof(body)));
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_OK);
    int saved = cm_log_threshold;
    cm_log_threshold = -1; /* corruption is logged */
    d.inline_data[3] ^= 0x20;
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_ERR_CORRUPT);
    /* Re-encoded, the damaged body keeps the CRC of the good one. */
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&d, &buf2, &len2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf2, len2, &d2), CM_OK);
    CU_ASSERT_EQUAL(md_object_inline_verify(&d2), CM_ERR_CORRUPT);
    md_object_release(&d2);
    free(buf2);
    md_object_release(&d);

    /* A record from before the CRC: cut the CRC field (tag 19, 4-byte value) off the end. */
    CU_ASSERT_EQUAL_FATAL(buf[len - 9], 19);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len - 9, &d), CM_OK);
    CU_ASSERT_FALSE(d.inline_crc_set);
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_OK);
    d.inline_data[0] ^= 1;
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_ERR_CORRUPT); /* MD5 differs from ETag */
    md_object_release(&d);

    /* An inline part: same rules, and decoding without the body keeps is_inline and the CRC. */
    md_part p = {.number = 1, .size = sizeof(body), .inline_data = (uint8_t *)body};
    md_object mp = {.key = "m", .size = sizeof(body), .parts = &p, .nparts = 1};
    snprintf(mp.etag, sizeof(mp.etag), "%.32s-1", o.etag);
    snprintf(mp.upload_id, sizeof(mp.upload_id), "00000190abcdef0123456789");
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&mp, &buf2, &len2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf2, len2, &d), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.upload_id, mp.upload_id);
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_OK);
    d.parts[0].inline_data[5] ^= 4;
    CU_ASSERT_EQUAL(md_object_inline_verify(&d), CM_ERR_CORRUPT);
    md_object_release(&d);
    cm_log_threshold = saved;
    free(buf2);
    free(buf);
}

/*
 * A layout names (node, drive) per cell and the layout epoch. The single-node layout (node 0,
 * epoch 0) is written in the original 62-byte field, so it and every record stored before the
 * fields existed decode as node 0 / epoch 0; other layouts append epoch and nodes (72 bytes).
 */
static void test_layout_nodes(void)
{
    md_object o, d;
    uint8_t *buf, *buf2;
    size_t len, len2;
    full_object(&o);
    md_layout *l = &o.parts[1].layout;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.parts[1].layout.epoch, 0);
    for (int i = 0; i < MD_MAX_CELLS; i++)
        CU_ASSERT_EQUAL(d.parts[1].layout.nodes[i], 0);
    md_object_release(&d);

    l->epoch = 0x0102030405060708ULL;
    for (int i = 0; i < 6; i++)
        l->nodes[i] = (uint16_t)(0x100 * i + 7); /* both bytes of the u16 used */
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf2, &len2), CM_OK);
    CU_ASSERT_EQUAL(len2 - len, 8 + 2 * MD_MAX_CELLS);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf2, len2, &d), CM_OK);
    CU_ASSERT_TRUE(obj_eq(&o, &d)); /* the whole layout, nodes and epoch included */
    CU_ASSERT_EQUAL(d.parts[1].layout.nodes[5], 0x507);
    md_object_release(&d);

    /* Only the epoch set: still the long form, so nothing is lost. */
    memset(l->nodes, 0, sizeof(l->nodes));
    l->epoch = 1;
    free(buf2);
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf2, &len2), CM_OK);
    CU_ASSERT_EQUAL(len2 - len, 8 + 2 * MD_MAX_CELLS);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf2, len2, &d), CM_OK);
    CU_ASSERT_EQUAL(d.parts[1].layout.epoch, 1);
    md_object_release(&d);
    md_object_release(&o);
    free(buf2);
    free(buf);
}

/*
 * A compressed body (PT_COMP, docs/compression.md) round-trips in object and part records and
 * makes them format 3, which an older reader refuses; records without one keep their format.
 * A field naming an unknown algorithm or an oversized frame is corrupt.
 */
static void test_compression_field(void)
{
    md_object o, d;
    md_part pd;
    md_wbuf w = {0};
    uint8_t *buf;
    size_t len;
    full_object(&o);
    md_layout *l = &o.parts[1].layout;
    l->zalg = MD_Z_ZSTD;
    l->zframe = 1 << 20;
    l->zsize = 5000000;
    l->ztab = 1234560;
    l->size = l->ztab + 8 * 5;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_TRUE(obj_eq(&o, &d));
    CU_ASSERT_EQUAL(MD_LAYOUT_BODY_SIZE(&d.parts[1].layout), 5000000);
    CU_ASSERT_EQUAL(MD_LAYOUT_BODY_SIZE(&d.parts[0].layout), d.parts[0].layout.size);
    md_object_release(&d);
    buf[0] = 4; /* a format from after this reader: refused */
    int saved = cm_log_threshold;
    cm_log_threshold = -1;
    CU_ASSERT_EQUAL(md_object_decode(buf, len, &d), CM_ERR_CORRUPT);
    free(buf);

    CU_ASSERT_EQUAL_FATAL(md_part_encode(&o.parts[1], &w), CM_OK);
    CU_ASSERT_EQUAL(w.p[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_part_decode(w.p, w.len, &pd), CM_OK);
    CU_ASSERT_TRUE(part_eq(&o.parts[1], &pd));
    md_part_release(&pd);
    md_w_free(&w);

    l->zframe = 32u << 20; /* larger than any reader's frame buffer */
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(md_object_decode(buf, len, &d), CM_ERR_CORRUPT);
    free(buf);
    l->zframe = 1 << 20;
    l->zalg = 7; /* unknown algorithm: encoded as given, refused when read */
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(md_object_decode(buf, len, &d), CM_ERR_CORRUPT);
    free(buf);
    cm_log_threshold = saved;

    l->zalg = MD_Z_NONE;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V1);
    free(buf);
    md_object_release(&o);
}

/*
 * Tags (OT_TAG) round-trip in object and upload records; a record with tags is format 2, one
 * without stays format 1 byte for byte, and a format-1 record from before tags decodes with none.
 */
static void test_tags(void)
{
    static const uint8_t old_record[] = {1, 1, 0, 0, 0, 1, 'k', 3, 0, 0,
                                         0, 8, 0, 0, 0, 0, 0,   0, 0, 9};
    md_object o = {0}, d;
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_decode(old_record, sizeof(old_record), &d), CM_OK);
    CU_ASSERT_EQUAL(d.ntags, 0);
    CU_ASSERT_PTR_NULL(d.tags);
    CU_ASSERT_EQUAL(d.size, 9);
    md_object_release(&d);

    o.key = xstrdup("k");
    o.size = 9;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V1);
    free(buf);

    o.ntags = 2;
    o.tags = calloc(2, sizeof(md_meta));
    o.tags[0] = (md_meta){xstrdup("project"), xstrdup("cairn")};
    o.tags[1] = (md_meta){xstrdup("caf\xc3\xa9"), xstrdup("")};
    o.generation = 7;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V2);
    CU_ASSERT_EQUAL(cm_get_be64(buf + len - 8), 7); /* the generation is still last */
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL_FATAL(d.ntags, 2);
    CU_ASSERT_STRING_EQUAL(d.tags[0].name, "project");
    CU_ASSERT_STRING_EQUAL(d.tags[0].value, "cairn");
    CU_ASSERT_STRING_EQUAL(d.tags[1].name, "caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(d.tags[1].value, "");
    md_object_release(&d);
    /* A listing's summary decode skips them, as it skips metadata. */
    CU_ASSERT_EQUAL_FATAL(md_object_decode_ex(buf, len, MD_DECODE_SUMMARY, &d), CM_OK);
    CU_ASSERT_EQUAL(d.ntags, 0);
    CU_ASSERT_STRING_EQUAL(d.key, "k");
    md_object_release(&d);
    /* A pair whose name length runs past its field is corrupt, not a crash. */
    int saved = cm_log_threshold;
    cm_log_threshold = -1;
    int found = 0;
    for (size_t i = 1; !found && i + 9 < len; i++) {
        if (buf[i] == 25 && cm_get_be32(buf + i + 1) == 16) { /* OT_TAG, the "project" pair */
            cm_put_be32(buf + i + 5, 99);
            CU_ASSERT_EQUAL(md_object_decode(buf, len, &d), CM_ERR_CORRUPT);
            found = 1;
        }
    }
    CU_ASSERT(found);
    cm_log_threshold = saved;
    free(buf);

    md_upload up = {0}, du;
    md_wbuf w = {0};
    up.key = xstrdup("k");
    snprintf(up.upload_id, sizeof(up.upload_id), "u1");
    CU_ASSERT_EQUAL_FATAL(md_object_copy(&o, &up.tmpl), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_upload_encode(&up, &w), CM_OK);
    CU_ASSERT_EQUAL(w.p[0], MD_FORMAT_V2);
    CU_ASSERT_EQUAL_FATAL(md_upload_decode(w.p, w.len, &du), CM_OK);
    CU_ASSERT_EQUAL_FATAL(du.tmpl.ntags, 2);
    CU_ASSERT_STRING_EQUAL(du.tmpl.tags[1].name, "caf\xc3\xa9");
    md_upload_release(&du);
    md_upload_release(&up);
    md_w_free(&w);
    md_object_release(&o);
}

void cu_register(void)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("test_meta_record seed=%u (set CAIRN_TEST_SEED to repeat)\n", seed);
    static const cu_test tests[] = {{"object_roundtrip", test_object_roundtrip},
                                    {"minimal_roundtrip", test_minimal_roundtrip},
                                    {"unknown_field_skipped", test_unknown_field_skipped},
                                    {"bad_fields", test_bad_fields},
                                    {"storage_class", test_storage_class},
                                    {"fuzz", test_fuzz},
                                    {"inline_crc", test_inline_crc},
                                    {"layout_nodes", test_layout_nodes},
                                    {"tags", test_tags},
                                    {"compression_field", test_compression_field},
                                    {"decode_split", test_decode_split},
                                    {NULL, NULL}};
    cu_add_suite("meta_record", tests);
}
