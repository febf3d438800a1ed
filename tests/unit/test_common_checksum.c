/*
 * test_common_checksum.c - digests and CRCs against published vectors (RFC 1321, FIPS 180,
 * RFC 4231, CRC catalogue "123456789" checks), and streaming over random splits (seeded; the seed
 * is printed). The CRC64NVME folding path is checked bit for bit against the table code, and
 * HMAC-SHA256 against OpenSSL's HMAC(), on seeded random inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"

static void check_hex(cm_ck_alg alg, const char *msg, const char *want)
{
    uint8_t d[CM_CK_MAX_DIGEST];
    char hex[2 * CM_CK_MAX_DIGEST + 1];
    CU_ASSERT_EQUAL_FATAL(cm_ck_digest(alg, msg, strlen(msg), d), CM_OK);
    cm_hex_encode(d, cm_ck_len(alg), hex);
    CU_ASSERT_STRING_EQUAL(hex, want);
    if (strcmp(hex, want) != 0)
        fprintf(stderr, "%s(\"%.20s\") = %s, want %s\n", cm_ck_name(alg), msg, hex, want);
}

static void test_names(void)
{
    cm_ck_alg a;
    CU_ASSERT_EQUAL(cm_ck_parse("CRC32C", &a), CM_OK);
    CU_ASSERT_EQUAL(a, CM_CK_CRC32C);
    CU_ASSERT_EQUAL(cm_ck_parse("crc64nvme", &a), CM_OK);
    CU_ASSERT_EQUAL(a, CM_CK_CRC64NVME);
    CU_ASSERT_EQUAL(cm_ck_parse("Sha256", &a), CM_OK);
    CU_ASSERT_EQUAL(a, CM_CK_SHA256);
    CU_ASSERT_EQUAL(cm_ck_parse("crc16", &a), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_ck_parse("", &a), CM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(cm_ck_name(CM_CK_CRC64NVME), "crc64nvme");
    size_t want[] = {16, 20, 32, 4, 4, 8};
    for (int i = 0; i < CM_CK__COUNT; i++)
        CU_ASSERT_EQUAL(cm_ck_len((cm_ck_alg)i), want[i]);
}

static void test_md5_rfc1321(void)
{
    check_hex(CM_CK_MD5, "", "d41d8cd98f00b204e9800998ecf8427e");
    check_hex(CM_CK_MD5, "a", "0cc175b9c0f1b6a831c399e269772661");
    check_hex(CM_CK_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72");
    check_hex(CM_CK_MD5, "message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    check_hex(CM_CK_MD5, "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
    check_hex(CM_CK_MD5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
              "d174ab98d277d9f5a5611c2c9f419d9f");
    check_hex(CM_CK_MD5,
              "1234567890123456789012345678901234567890123456789012345678901234567890123456789"
              "0",
              "57edf4a22be3c955ac49da2e2107b67a");
}

static void test_sha_fips(void)
{
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_hex(CM_CK_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_hex(CM_CK_SHA1, two, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    check_hex(CM_CK_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_hex(CM_CK_SHA256, "abc",
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_hex(CM_CK_SHA256, two,
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_hex(CM_CK_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_crc_check_values(void)
{
    const char *s = "123456789";
    CU_ASSERT_EQUAL(cm_crc32(0, s, 9), 0xCBF43926u);
    CU_ASSERT_EQUAL(cm_crc32c(0, s, 9), 0xE3069283u);
    CU_ASSERT_EQUAL(cm_crc64nvme(0, s, 9), 0xAE8B14860A799888ull);
    CU_ASSERT_EQUAL(cm_crc32(0, s, 0), 0);
    CU_ASSERT_EQUAL(cm_crc32c(0, s, 0), 0);
    CU_ASSERT_EQUAL(cm_crc64nvme(0, s, 0), 0);
    /* big-endian digests through the streaming API */
    check_hex(CM_CK_CRC32, s, "cbf43926");
    check_hex(CM_CK_CRC32C, s, "e3069283");
    check_hex(CM_CK_CRC64NVME, s, "ae8b14860a799888");
    check_hex(CM_CK_CRC32, "", "00000000");
    /* base64 as S3 sends it: x-amz-checksum-crc32 of "hello world" is DUoRhQ== */
    uint8_t d[4];
    char b64[16];
    cm_ck_digest(CM_CK_CRC32, "hello world", 11, d);
    cm_base64_encode(d, 4, b64);
    CU_ASSERT_STRING_EQUAL(b64, "DUoRhQ==");
}

static void test_hmac_rfc4231(void)
{
    uint8_t key1[20], out[32];
    char hex[65];
    memset(key1, 0x0b, sizeof(key1));
    cm_hmac_sha256(key1, sizeof(key1), "Hi There", 8, out);
    cm_hex_encode(out, 32, hex);
    CU_ASSERT_STRING_EQUAL(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    const char *msg2 = "what do ya want for nothing?";
    cm_hmac_sha256("Jefe", 4, msg2, strlen(msg2), out);
    cm_hex_encode(out, 32, hex);
    CU_ASSERT_STRING_EQUAL(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* case 6: a key longer than the block is hashed first */
    uint8_t key6[131];
    const char *msg6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    memset(key6, 0xaa, sizeof(key6));
    cm_hmac_sha256(key6, sizeof(key6), msg6, strlen(msg6), out);
    cm_hex_encode(out, 32, hex);
    CU_ASSERT_STRING_EQUAL(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* Our RFC 2104 construction equals OpenSSL's HMAC() for key lengths around the block size,
 * empty keys and messages, and output aliasing the key (as the SigV4 key chain does); and so
 * does a precomputed key (cm_hmac_key) over several messages in turn. */
static void test_hmac_matches_openssl(void)
{
    unsigned seed = (unsigned)time(NULL);
    printf("(hmac seed %u) ", seed);
    srand(seed);
    uint8_t key[200], msg[300], want[32], got[32];
    for (int round = 0; round < 300; round++) {
        size_t kl = round < 140 ? (size_t)round : (size_t)rand() % sizeof(key);
        for (size_t i = 0; i < kl; i++)
            key[i] = (uint8_t)rand();
        cm_hmac_key k;
        cm_hmac_key_init(&k, key, kl);
        size_t ml;
        for (int m = 0; m < 3; m++) {
            ml = (size_t)rand() % sizeof(msg);
            for (size_t i = 0; i < ml; i++)
                msg[i] = (uint8_t)rand();
            unsigned n = 32;
            HMAC(EVP_sha256(), key, (int)kl, msg, ml, want, &n);
            cm_hmac_sha256_keyed(&k, msg, ml, got);
            CU_ASSERT_EQUAL(memcmp(want, got, 32), 0);
        }
        cm_hmac_key_release(&k);
        cm_hmac_sha256(key, kl, msg, ml, got);
        CU_ASSERT_EQUAL(memcmp(want, got, 32), 0);
        if (kl == 32) {
            cm_hmac_sha256(key, kl, msg, ml, key); /* out aliases key */
            CU_ASSERT_EQUAL(memcmp(want, key, 32), 0);
        }
    }
}

/* cm_sha256 equals the EVP digest (cm_ck_digest) at every length around the block and padding
 * edges (55, 56, 64 bytes) and beyond, and FIPS 180's "abc". */
static void test_sha256_one_shot(void)
{
    uint8_t msg[300], want[32], got[32];
    char hex[65];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof(msg); n++) {
        CU_ASSERT_EQUAL_FATAL(cm_ck_digest(CM_CK_SHA256, msg, n, want), CM_OK);
        cm_sha256(msg, n, got);
        CU_ASSERT_EQUAL(memcmp(want, got, 32), 0);
    }
    cm_sha256("abc", 3, got);
    cm_hex_encode(got, 32, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The precomputed key (cm_hmac_key) against RFC 4231's HMAC-SHA256 vectors: each key used for
 * two messages (its states must not change), case 5 truncated to 128 bits as the RFC gives it. */
static void test_hmac_keyed_rfc4231(void)
{
    static const struct {
        uint8_t kbyte;
        size_t klen; /* kbyte repeated; 0x01 = the bytes 1..klen (case 4) */
        const char *msg;
        uint8_t mbyte; /* msg NULL: mbyte repeated 50 times */
        const char *want;
    } v[] = {
        {0x0b, 20, "Hi There", 0,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {0xaa, 20, NULL, 0xdd, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {0x01, 25, NULL, 0xcd, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {0x0c, 20, "Test With Truncation", 0, "a3b6167473100ee06e0c796c2955552b"},
        {0xaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 0,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {0xaa, 131,
         "This is a test using a larger than block-size key and a larger than block-size data. "
         "The key needs to be hashed before being used by the HMAC algorithm.",
         0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    uint8_t key[131], msg[50], out[32];
    char hex[65];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        for (size_t j = 0; j < v[i].klen; j++)
            key[j] = v[i].kbyte == 0x01 ? (uint8_t)(j + 1) : v[i].kbyte;
        memset(msg, v[i].mbyte, sizeof(msg));
        const void *m = v[i].msg ? (const void *)v[i].msg : msg;
        size_t ml = v[i].msg ? strlen(v[i].msg) : sizeof(msg);
        cm_hmac_key k;
        cm_hmac_key_init(&k, key, v[i].klen);
        for (int twice = 0; twice < 2; twice++) {
            cm_hmac_sha256_keyed(&k, m, ml, out);
            cm_hex_encode(out, 32, hex);
            hex[strlen(v[i].want)] = '\0';
            CU_ASSERT_STRING_EQUAL(hex, v[i].want);
        }
        cm_hmac_key_release(&k);
        uint8_t zero[sizeof(k)] = {0};
        CU_ASSERT_EQUAL(memcmp(&k, zero, sizeof(k)), 0); /* wiped */
    }
}

/* Streaming over random splits equals one-shot, for every algorithm and the raw CRC helpers. */
static void test_streaming_random_splits(void)
{
    unsigned seed = (unsigned)time(NULL);
    printf("\n  checksum split seed %u\n", seed);
    srand(seed);
    static uint8_t buf[70000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (int round = 0; round < 20; round++) {
        size_t len = (size_t)rand() % sizeof(buf);
        for (int a = 0; a < CM_CK__COUNT; a++) {
            uint8_t one[CM_CK_MAX_DIGEST], inc[CM_CK_MAX_DIGEST];
            cm_ck ck;
            cm_ck_digest((cm_ck_alg)a, buf, len, one);
            CU_ASSERT_EQUAL_FATAL(cm_ck_init(&ck, (cm_ck_alg)a), CM_OK);
            size_t off = 0;
            while (off < len) {
                size_t step = (size_t)rand() % 3000; /* CM_MIN evaluates twice */
                size_t n = CM_MIN(len - off, step);
                cm_ck_update(&ck, buf + off, n);
                off += n;
            }
            cm_ck_final(&ck, inc);
            cm_ck_release(&ck); /* safe after final */
            CU_ASSERT_EQUAL(memcmp(one, inc, cm_ck_len((cm_ck_alg)a)), 0);
        }
        size_t cut = len ? (size_t)rand() % len : 0;
        CU_ASSERT_EQUAL(cm_crc32(cm_crc32(0, buf, cut), buf + cut, len - cut),
                        cm_crc32(0, buf, len));
        CU_ASSERT_EQUAL(cm_crc32c(cm_crc32c(0, buf, cut), buf + cut, len - cut),
                        cm_crc32c(0, buf, len));
        CU_ASSERT_EQUAL(cm_crc64nvme(cm_crc64nvme(0, buf, cut), buf + cut, len - cut),
                        cm_crc64nvme(0, buf, len));
    }
}

/* The slicing-by-8 path must agree with a plain bit-at-a-time CRC64NVME at every alignment. */
static void test_crc64_bitwise(void)
{
    uint8_t buf[67];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t start = 0; start < 8; start++) {
        uint64_t c = ~0ull;
        for (size_t i = start; i < sizeof(buf); i++) {
            c ^= buf[i];
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0x9a6c9329ac4bc9b5ull : c >> 1;
        }
        CU_ASSERT_EQUAL(cm_crc64nvme(0, buf + start, sizeof(buf) - start), ~c);
    }
}

/*
 * cm_crc64nvme (PCLMULQDQ folding where the CPU has it) equals the table code bit for bit: every
 * length 0..300 (the fold thresholds and tails), then random lengths up to 70,000 at random
 * alignments with random running values.
 */
static void test_crc64_fast_matches_table(void)
{
    static uint8_t buf[70000 + 64];
    unsigned seed = (unsigned)time(NULL);
    printf("(crc64 %s, seed %u) ", cm_crc64nvme_impl(), seed);
    srand(seed);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (size_t len = 0; len <= 300; len++) {
        size_t off = len % 16;
        CU_ASSERT_EQUAL(cm_crc64nvme(0, buf + off, len), cm_crc64nvme_table(0, buf + off, len));
    }
    for (int round = 0; round < 400; round++) {
        size_t len = (size_t)rand() % 70001, off = (size_t)rand() % 64;
        uint64_t start = round % 4 == 0 ? 0 : ((uint64_t)rand() << 33) ^ (uint64_t)rand();
        uint64_t fast = cm_crc64nvme(start, buf + off, len);
        uint64_t slow = cm_crc64nvme_table(start, buf + off, len);
        CU_ASSERT_EQUAL(fast, slow);
        if (fast != slow)
            fprintf(stderr, "crc64 mismatch len %zu off %zu start %016llx\n", len, off,
                    (unsigned long long)start);
    }
    /* the catalogue check value through a buffer long enough for the fast path: 123456789 is
     * only 9 bytes, so also the all-zero 4 KiB block against a bit-at-a-time reference */
    static const uint8_t zero[4096];
    uint64_t c = ~0ull;
    for (size_t i = 0; i < sizeof(zero); i++) {
        c ^= zero[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x9a6c9329ac4bc9b5ull : c >> 1;
    }
    CU_ASSERT_EQUAL(cm_crc64nvme(0, zero, sizeof(zero)), ~c);
    CU_ASSERT_EQUAL(cm_crc64nvme(0, "123456789", 9), 0xAE8B14860A799888ull);
}

static void test_release_without_final(void)
{
    cm_ck ck;
    CU_ASSERT_EQUAL(cm_ck_init(&ck, CM_CK_SHA256), CM_OK);
    cm_ck_update(&ck, "abc", 3);
    cm_ck_release(&ck);
    cm_ck_release(&ck);
    CU_ASSERT_EQUAL(cm_ck_init(&ck, (cm_ck_alg)42), CM_ERR_INVAL);
}

/* combine(crc(A), crc(B), |B|) == crc(A||B) for every CRC, over seeded random splits. */
static void test_crc_combine(void)
{
    uint8_t buf[5000];
    unsigned seed = (unsigned)time(NULL);
    printf("(combine seed %u) ", seed);
    srand(seed);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (int round = 0; round < 50; round++) {
        size_t total = (size_t)rand() % sizeof(buf), cut = total ? (size_t)rand() % total : 0;
        size_t blen = total - cut;
        CU_ASSERT_EQUAL(cm_crc32_combine(cm_crc32(0, buf, cut), cm_crc32(0, buf + cut, blen), blen),
                        cm_crc32(0, buf, total));
        CU_ASSERT_EQUAL(
            cm_crc32c_combine(cm_crc32c(0, buf, cut), cm_crc32c(0, buf + cut, blen), blen),
            cm_crc32c(0, buf, total));
        CU_ASSERT_EQUAL(
            cm_crc64nvme_combine(cm_crc64nvme(0, buf, cut), cm_crc64nvme(0, buf + cut, blen), blen),
            cm_crc64nvme(0, buf, total));
    }
    /* chained block by block, as a node combines a chunk's stored 64 KiB block CRCs, with a
     * short last block: long lengths take the high powers of the table */
    size_t big = 5 * 65536 + 777;
    uint8_t *b = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < big; i++)
        b[i] = (uint8_t)rand();
    uint32_t c32 = 0, c32c = 0;
    uint64_t c64 = 0;
    for (size_t at = 0; at < big; at += 65536) {
        size_t n = CM_MIN(big - at, (size_t)65536);
        c32 = cm_crc32_combine(c32, cm_crc32(0, b + at, n), n);
        c32c = cm_crc32c_combine(c32c, cm_crc32c(0, b + at, n), n);
        c64 = cm_crc64nvme_combine(c64, cm_crc64nvme(0, b + at, n), n);
    }
    CU_ASSERT_EQUAL(c32, cm_crc32(0, b, big));
    CU_ASSERT_EQUAL(c32c, cm_crc32c(0, b, big));
    CU_ASSERT_EQUAL(c64, cm_crc64nvme(0, b, big));
    free(b);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"names", test_names},
        {"md5_rfc1321", test_md5_rfc1321},
        {"sha_fips", test_sha_fips},
        {"crc_check_values", test_crc_check_values},
        {"hmac_rfc4231", test_hmac_rfc4231},
        {"hmac_matches_openssl", test_hmac_matches_openssl},
        {"hmac_keyed_rfc4231", test_hmac_keyed_rfc4231},
        {"sha256_one_shot", test_sha256_one_shot},
        {"crc64_fast_matches_table", test_crc64_fast_matches_table},
        {"streaming_random_splits", test_streaming_random_splits},
        {"crc64_bitwise", test_crc64_bitwise},
        {"release_without_final", test_release_without_final},
        {"crc_combine", test_crc_combine},
        {NULL, NULL},
    };
    cu_add_suite("checksum", tests);
}
