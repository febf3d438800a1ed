/*
 * test_gateway_sse.c - the encryption of bodies (gw_sse.c): segment arithmetic at its edges, the
 * GCM round trip of a segment, every tampered byte of a segment (ciphertext and tag) caught, a
 * segment opened under the wrong index or key refused, the stream (segments of random sizes fed
 * in random splits; seeded, seed printed) equal to sealing segment by segment, also when fed with
 * partial takes (a cluster writer's full window), ranges decrypted from a buffer of stored
 * segments (the cluster GET), data keys wrapped
 * and unwrapped for SSE-S3 (a wrong master key refused) and SSE-C (a wrong customer key refused,
 * the verifier telling right from wrong), and the PutBucketEncryption parser.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_util.h"
#include "cu_main.h"
#include "gw_int.h"
#include "gw_sse.h"

static const uint8_t KEY[GW_SSE_KEY] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                        23, 24, 25, 26, 27, 28, 29, 30, 31};

static void test_stored_len(void)
{
    CU_ASSERT_EQUAL(gw_sse_stored_len(0, GW_SSE_SEG), 0);
    CU_ASSERT_EQUAL(gw_sse_stored_len(1, GW_SSE_SEG), 17);
    CU_ASSERT_EQUAL(gw_sse_stored_len(GW_SSE_SEG - 1, GW_SSE_SEG), GW_SSE_SEG - 1 + 16);
    CU_ASSERT_EQUAL(gw_sse_stored_len(GW_SSE_SEG, GW_SSE_SEG), GW_SSE_SEG + 16);
    CU_ASSERT_EQUAL(gw_sse_stored_len(GW_SSE_SEG + 1, GW_SSE_SEG), GW_SSE_SEG + 1 + 32);
    CU_ASSERT_EQUAL(gw_sse_stored_len(5ULL << 30, GW_SSE_SEG), (5ULL << 30) + 81920ULL * 16);
    CU_ASSERT_EQUAL(gw_sse_stored_len(10, 4), 10 + 3 * 16);
}

static void test_segment_round_trip_and_tamper(void)
{
    uint8_t pt[1000], ct[1016], back[1000];
    uint8_t other[GW_SSE_KEY];
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 7);
    CU_ASSERT_EQUAL_FATAL(gw_sse_seg_seal(KEY, 5, pt, sizeof(pt), ct), CM_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(ct, pt, 64), 0);
    CU_ASSERT_EQUAL_FATAL(gw_sse_seg_open(KEY, 5, ct, sizeof(ct), back), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, pt, sizeof(pt)), 0);
    /* Every flipped byte, ciphertext or tag, is caught; the output is wiped. */
    int caught = 0;
    for (size_t i = 0; i < sizeof(ct); i++) {
        ct[i] ^= 0x01;
        memset(back, 0xEE, sizeof(back));
        if (gw_sse_seg_open(KEY, 5, ct, sizeof(ct), back) == CM_ERR_CORRUPT && back[0] == 0)
            caught++;
        ct[i] ^= 0x01;
    }
    CU_ASSERT_EQUAL(caught, (int)sizeof(ct));
    /* Another index (a swapped segment), another key, a cut tag. */
    CU_ASSERT_EQUAL(gw_sse_seg_open(KEY, 6, ct, sizeof(ct), back), CM_ERR_CORRUPT);
    memcpy(other, KEY, sizeof(other));
    other[0] ^= 0x80;
    CU_ASSERT_EQUAL(gw_sse_seg_open(other, 5, ct, sizeof(ct), back), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(gw_sse_seg_open(KEY, 5, ct, sizeof(ct) - 1, back), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(gw_sse_seg_open(KEY, 5, ct, 16, back), CM_ERR_CORRUPT);
    /* The same plaintext under two indexes gives two ciphertexts (the nonce is the index). */
    uint8_t ct2[1016];
    CU_ASSERT_EQUAL(gw_sse_seg_seal(KEY, 6, pt, sizeof(pt), ct2), CM_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(ct, ct2, sizeof(ct)), 0);
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} sink;

static cm_err collect(void *arg, const uint8_t *p, size_t n)
{
    sink *s = arg;
    if (s->len + n > s->cap)
        return CM_ERR_TOOBIG;
    memcpy(s->p + s->len, p, n);
    s->len += n;
    return CM_OK;
}

static void test_stream_matches_segments(void)
{
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    const uint32_t seg = 4096;
    for (int round = 0; round < 30; round++) {
        size_t n = (size_t)(rand() % (5 * seg + 3));
        uint8_t *pt = malloc(n + 1), *one = malloc(seg + 16), *dec = malloc(seg);
        size_t stored = (size_t)gw_sse_stored_len(n, seg);
        sink s = {malloc(stored + 1), 0, stored};
        gw_sse_enc *e = NULL;
        for (size_t i = 0; i < n; i++)
            pt[i] = (uint8_t)rand();
        CU_ASSERT_EQUAL_FATAL(gw_sse_enc_new(KEY, seg, &e), CM_OK);
        for (size_t off = 0; off < n;) {
            size_t k = (size_t)(rand() % (2 * seg) + 1); /* CM_MIN evaluates twice */
            k = CM_MIN(n - off, k);
            CU_ASSERT_EQUAL(gw_sse_enc_update(e, pt + off, k, collect, &s), CM_OK);
            off += k;
        }
        CU_ASSERT_EQUAL(gw_sse_enc_final(e, collect, &s), CM_OK);
        gw_sse_enc_free(e);
        CU_ASSERT_EQUAL(s.len, stored);
        if (s.len != stored)
            fprintf(stderr, "stream seed %u: %zu bytes, want %zu\n", seed, s.len, stored);
        /* Segment i of the stream is seal(i, plaintext segment i), and opens back. */
        for (size_t i = 0; (uint64_t)i * seg < n && s.len == stored; i++) {
            size_t plen = CM_MIN((size_t)seg, n - i * seg);
            CU_ASSERT_EQUAL(gw_sse_seg_seal(KEY, i, pt + i * seg, plen, one), CM_OK);
            CU_ASSERT_EQUAL(memcmp(one, s.p + i * (seg + 16), plen + 16), 0);
            CU_ASSERT_EQUAL(gw_sse_seg_open(KEY, i, s.p + i * (seg + 16), plen + 16, dec), CM_OK);
            CU_ASSERT_EQUAL(memcmp(dec, pt + i * seg, plen), 0);
        }
        free(pt);
        free(one);
        free(dec);
        free(s.p);
    }
}

/* A cluster writer's full window: every other segment is taken but answered CM_AGAIN. */
typedef struct {
    sink s;
    int calls;
} busy_sink;

static cm_err collect_busy(void *arg, const uint8_t *p, size_t n)
{
    busy_sink *b = arg;
    cm_err err = collect(&b->s, p, n);
    return err == CM_OK && b->calls++ % 2 == 0 ? CM_AGAIN : err;
}

/* The stream fed with gw_sse_enc_update_some, resumed after each CM_AGAIN from what it says it
 * used, equals the one-call stream; and every range of it opens back (gw_sse_span, gw_sse_open:
 * the cluster GET's decryption of segments read into a buffer). */
static void test_stream_partial_and_ranges(void)
{
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    const uint32_t seg = GW_SSE_SEG;
    md_part part = {.sse_seg = seg};
    for (int round = 0; round < 6; round++) {
        size_t n = (size_t)(rand() % (5 * seg + 3)) + 1;
        uint8_t *pt = malloc(n), *got = malloc(n), *scratch = malloc(seg);
        size_t stored = (size_t)gw_sse_stored_len(n, seg);
        busy_sink b = {{malloc(stored), 0, stored}, 0};
        gw_sse_enc *e = NULL;
        int agains = 0;
        for (size_t i = 0; i < n; i++)
            pt[i] = (uint8_t)rand();
        CU_ASSERT_EQUAL_FATAL(gw_sse_enc_new(KEY, seg, &e), CM_OK);
        for (size_t off = 0; off < n;) {
            size_t k = (size_t)(rand() % (3 * seg) + 1), used = 0;
            k = CM_MIN(n - off, k);
            cm_err err = gw_sse_enc_update_some(e, pt + off, k, collect_busy, &b, &used);
            CU_ASSERT(err == CM_OK || err == CM_AGAIN);
            CU_ASSERT(used <= k && (err == CM_AGAIN || used == k));
            agains += err == CM_AGAIN;
            off += used;
        }
        CU_ASSERT_EQUAL(gw_sse_enc_final(e, collect, &b.s), CM_OK);
        gw_sse_enc_free(e);
        CU_ASSERT_EQUAL_FATAL(b.s.len, stored);
        CU_ASSERT(agains >= (int)(n / seg) / 2);
        part.size = n;
        for (int r = 0; r < 20; r++) {
            uint64_t off = (uint64_t)rand() % n, c_off = 0;
            size_t len = (size_t)(rand() % (n - off)) + 1, c_len = 0;
            CU_ASSERT_EQUAL_FATAL(gw_sse_span(&part, off, len, &c_off, &c_len), CM_OK);
            CU_ASSERT(c_off + c_len <= stored && c_off % (seg + GW_SSE_TAG) == 0);
            CU_ASSERT_EQUAL(gw_sse_open(&part, KEY, off, b.s.p + c_off, got, len, scratch), CM_OK);
            CU_ASSERT_EQUAL(memcmp(got, pt + off, len), 0);
            if (memcmp(got, pt + off, len) != 0)
                fprintf(stderr, "range seed %u: %" PRIu64 "+%zu of %zu\n", seed, off, len, n);
        }
        /* a flipped stored byte inside the span: refused, never handed on */
        b.s.p[stored / 2] ^= 1;
        CU_ASSERT_EQUAL(gw_sse_open(&part, KEY, 0, b.s.p, got, n, scratch), CM_ERR_CORRUPT);
        uint64_t c_off;
        size_t c_len;
        CU_ASSERT_EQUAL(gw_sse_span(&part, n, 1, &c_off, &c_len), CM_ERR_RANGE);
        free(pt);
        free(got);
        free(scratch);
        free(b.s.p);
    }
}

static void test_wrapped_keys(void)
{
    gw *g = calloc(1, sizeof(*g)), *g2 = calloc(1, sizeof(*g2));
    CU_ASSERT_FATAL(g && g2);
    uint8_t mk[32], key[GW_SSE_KEY], back[GW_SSE_KEY];
    memset(mk, 0x11, sizeof(mk));
    cm_mkey_set(&g->mkey, mk);
    mk[31] = 0x12;
    cm_mkey_set(&g2->mkey, mk);
    g2->have_mkey = 1;
    /* SSE-S3: wrapped by the master key; another master key cannot unwrap it. */
    md_sse s3 = {.mode = MD_SSE_S3};
    gw_sse_req none = {0};
    md_part p;
    memset(&p, 0, sizeof(p));
    /* Never under an unset master key (a server that could not get one). */
    CU_ASSERT_EQUAL(gw_sse_part_new_key(g, &s3, &none, &p, key), CM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(p.sse_key_len, 0);
    g->have_mkey = 1;
    CU_ASSERT_EQUAL_FATAL(gw_sse_part_new_key(g, &s3, &none, &p, key), CM_OK);
    CU_ASSERT_EQUAL(p.sse_seg, GW_SSE_SEG);
    CU_ASSERT_EQUAL(p.sse_key_len, cm_mkey_wrapped_len(GW_SSE_KEY));
    CU_ASSERT(memmem(p.sse_key, p.sse_key_len, key, 8) == NULL);
    CU_ASSERT_EQUAL(gw_sse_part_key(g, &s3, &none, &p, back), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, key, sizeof(key)), 0);
    CU_ASSERT_EQUAL(gw_sse_part_key(g2, &s3, &none, &p, back), CM_ERR_AUTH);
    p.sse_key[20] ^= 1;
    CU_ASSERT_EQUAL(gw_sse_part_key(g, &s3, &none, &p, back), CM_ERR_CORRUPT);
    /* SSE-C: the verifier tells the key; the data key unwraps with it only. */
    gw_sse_req c1 = {.mode = MD_SSE_C}, c2 = {.mode = MD_SSE_C};
    memset(c1.ckey, 0x21, sizeof(c1.ckey));
    memset(c2.ckey, 0x22, sizeof(c2.ckey));
    md_sse sc;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(gw_sse_object_init(&c1, MD_SSE_S3, &sc), CM_OK);
    CU_ASSERT_EQUAL(sc.mode, MD_SSE_C); /* the request's choice beats the bucket default */
    CU_ASSERT_EQUAL(gw_sse_check(&sc, &c1, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(gw_sse_check(&sc, &c2, msg, sizeof(msg)), GW_ACCESS_DENIED);
    CU_ASSERT_EQUAL(gw_sse_check(&sc, &none, msg, sizeof(msg)), GW_INVALID_REQUEST);
    CU_ASSERT_EQUAL(gw_sse_check(&s3, &c1, msg, sizeof(msg)), GW_INVALID_REQUEST);
    CU_ASSERT_EQUAL(gw_sse_check(&s3, &none, msg, sizeof(msg)), GW_OK);
    memset(&p, 0, sizeof(p));
    CU_ASSERT_EQUAL_FATAL(gw_sse_part_new_key(g, &sc, &c1, &p, key), CM_OK);
    CU_ASSERT_EQUAL(gw_sse_part_key(g2, &sc, &c1, &p, back), CM_OK); /* no master key in it */
    CU_ASSERT_EQUAL(memcmp(back, key, sizeof(key)), 0);
    CU_ASSERT_NOT_EQUAL(gw_sse_part_key(g, &sc, &c2, &p, back), CM_OK);
    /* Two objects under one customer key keep unrelated verifiers (fresh salts). */
    md_sse sc2;
    CU_ASSERT_EQUAL_FATAL(gw_sse_object_init(&c1, MD_SSE_NONE, &sc2), CM_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(sc.verify, sc2.verify, sizeof(sc.verify)), 0);
    /* No request headers: the bucket default. */
    CU_ASSERT_EQUAL(gw_sse_object_init(&none, MD_SSE_S3, &sc2), CM_OK);
    CU_ASSERT_EQUAL(sc2.mode, MD_SSE_S3);
    free(g);
    free(g2);
}

static gw_s3err parse_enc(const char *xml, int *bk)
{
    char msg[200];
    return gw_parse_encryption(xml, strlen(xml), 65536, bk, msg, sizeof(msg));
}

static void test_parse_encryption(void)
{
    int bk = -1;
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/"
                              "doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault>"
                              "<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionBy"
                              "Default></Rule></ServerSideEncryptionConfiguration>",
                              &bk),
                    GW_OK);
    CU_ASSERT_EQUAL(bk, 0);
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncrypti"
                              "onByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEn"
                              "cryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>"
                              "</ServerSideEncryptionConfiguration>",
                              &bk),
                    GW_OK);
    CU_ASSERT_EQUAL(bk, 1);
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncrypti"
                              "onByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSide"
                              "EncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
                              &bk),
                    GW_UNSUPPORTED);
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncrypti"
                              "onByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncr"
                              "yptionByDefault></Rule></ServerSideEncryptionConfiguration>",
                              &bk),
                    GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration></ServerSideEncryptionConfigur"
                              "ation>",
                              &bk),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(parse_enc("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncrypti"
                              "onByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEn"
                              "cryptionByDefault></Rule><Rule/></ServerSideEncryptionConfigurati"
                              "on>",
                              &bk),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(parse_enc("<Other/>", &bk), GW_MALFORMED_XML);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"stored_len", test_stored_len},
        {"segment_round_trip_and_tamper", test_segment_round_trip_and_tamper},
        {"stream_matches_segments", test_stream_matches_segments},
        {"stream_partial_and_ranges", test_stream_partial_and_ranges},
        {"wrapped_keys", test_wrapped_keys},
        {"parse_encryption", test_parse_encryption},
        {NULL, NULL},
    };
    cu_add_suite("gateway_sse", tests);
}
