/*
 * test_common_md5.c - cm_md5 (common/cm_md5.c): RFC 1321's vectors, every length 0-300 in one
 * update, and batches of 1-20 contexts with random lengths (up to 70,000 bytes), random splits
 * into jobs and random interleavings (per context in order), each digest compared with OpenSSL's
 * MD5 of the whole stream. Both paths are run: the CPU's (where it has AVX-512VL: the scalar code
 * for a stream alone, one context per batch or the last busy lane of a window, and the SIMD lanes
 * for several) and the OpenSSL one. Seeded; the seed is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_checksum.h"
#include "cm_md5.h"
#include "cm_util.h"
#include "cu_main.h"

typedef cm_err (*init_fn)(cm_md5 *m);
static const init_fn inits[2] = {cm_md5_init, cm_md5_init_openssl};

static unsigned seed;

static unsigned rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) & 0xffffff;
}

static void test_rfc1321(void)
{
    static const char *const msg[] = {
        "",
        "a",
        "abc",
        "message digest",
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
    };
    static const char *const want[] = {
        "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
        "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
        "c3fcd3d76192e4007dfb496cca67e13b", "d174ab98d277d9f5a5611c2c9f419d9f",
        "57edf4a22be3c955ac49da2e2107b67a",
    };
    printf("\ncm_md5 on this CPU: %s\n", cm_md5_impl());
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < sizeof(msg) / sizeof(msg[0]); i++) {
            cm_md5 m;
            uint8_t d[16];
            char hex[33];
            CU_ASSERT_EQUAL_FATAL(inits[f](&m), CM_OK);
            cm_md5_update(&m, msg[i], strlen(msg[i]));
            cm_md5_final(&m, d);
            cm_hex_encode(d, 16, hex);
            CU_ASSERT_STRING_EQUAL(hex, want[i]);
            cm_md5_release(&m); /* after final: nothing left to free */
        }
    }
}

static void test_every_length(void)
{
    uint8_t buf[300], d[16], ref[16];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (int f = 0; f < 2; f++) {
        for (size_t n = 0; n <= sizeof(buf); n++) {
            cm_md5 m;
            CU_ASSERT_EQUAL_FATAL(inits[f](&m), CM_OK);
            cm_md5_update(&m, buf, n);
            cm_md5_final(&m, d);
            CU_ASSERT_EQUAL_FATAL(cm_ck_digest(CM_CK_MD5, buf, n, ref), CM_OK);
            CU_ASSERT_EQUAL(memcmp(d, ref, 16), 0);
        }
    }
}

#define MAX_CTX 20
#define MAX_LEN 70000
#define MAX_JOBS 400

/* One round: nctx streams of random lengths, each cut into random pieces; the pieces go through
 * cm_md5_update_many in batches of random size, interleaved at random but in order per stream. */
static void batch_round(init_fn init, int nctx, const uint8_t *data)
{
    cm_md5 m[MAX_CTX];
    size_t len[MAX_CTX], off[MAX_CTX], pos[MAX_CTX];
    cm_md5_job jobs[MAX_JOBS];
    for (int c = 0; c < nctx; c++) {
        CU_ASSERT_EQUAL_FATAL(init(&m[c]), CM_OK);
        unsigned r = rnd() % 4;
        len[c] = r == 0 ? rnd() % 200 : r == 1 ? rnd() % 5000 : rnd() % MAX_LEN;
        off[c] = rnd() % 64; /* unaligned starts */
        pos[c] = 0;
    }
    for (;;) {
        int nj = 0, left = 0;
        int batch = 1 + (int)(rnd() % 60);
        while (nj < batch) {
            int c = (int)(rnd() % (unsigned)nctx);
            if (pos[c] == len[c]) {
                int any = 0;
                for (int e = 0; e < nctx; e++)
                    any |= pos[e] < len[e];
                if (!any)
                    break;
                continue;
            }
            size_t rest = len[c] - pos[c];
            unsigned kind = rnd() % 4;
            size_t n = kind == 0 ? rnd() % 70 : kind == 1 ? rnd() % 700 : rnd() % (rest + 1);
            if (n > rest)
                n = rest;
            jobs[nj].m = &m[c];
            jobs[nj].p = data + off[c] + pos[c];
            jobs[nj].n = n;
            pos[c] += n;
            nj++;
        }
        cm_md5_update_many(jobs, nj);
        for (int c = 0; c < nctx; c++)
            left |= pos[c] < len[c];
        if (!left)
            break;
    }
    for (int c = 0; c < nctx; c++) {
        uint8_t d[16], ref[16];
        cm_md5_final(&m[c], d);
        CU_ASSERT_EQUAL_FATAL(cm_ck_digest(CM_CK_MD5, data + off[c], len[c], ref), CM_OK);
        CU_ASSERT_EQUAL(memcmp(d, ref, 16), 0);
        if (memcmp(d, ref, 16) != 0)
            fprintf(stderr, "md5 batch mismatch: seed %u, %d contexts, context %d, len %zu\n", seed,
                    nctx, c, len[c]);
    }
}

static void test_batches_match_openssl(void)
{
    uint8_t *data = malloc(MAX_LEN + 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    seed = (unsigned)time(NULL);
    printf("\ntest_common_md5 seed %u\n", seed);
    for (size_t i = 0; i < MAX_LEN + 64; i++)
        data[i] = (uint8_t)rnd();
    for (int f = 0; f < 2; f++)
        for (int nctx = 1; nctx <= MAX_CTX; nctx++)
            for (int round = 0; round < (f ? 2 : 12); round++)
                batch_round(inits[f], nctx, data);
    free(data);
}

static void test_release_unfinished(void)
{
    for (int f = 0; f < 2; f++) {
        cm_md5 m;
        CU_ASSERT_EQUAL_FATAL(inits[f](&m), CM_OK);
        cm_md5_update(&m, "abc", 3);
        cm_md5_release(&m); /* ASan: the OpenSSL context is freed */
    }
    cm_md5 z;
    memset(&z, 0, sizeof(z));
    cm_md5_release(&z);
    cm_md5_update_many(NULL, 0);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"rfc1321", test_rfc1321},
        {"every_length", test_every_length},
        {"batches_match_openssl", test_batches_match_openssl},
        {"release_unfinished", test_release_unfinished},
        {NULL, NULL},
    };
    cu_add_suite("md5", tests);
}
