/*
 * test_placement.c - drive choice: distinct drives, even spread of every cell role over many ids,
 * offline drives skipped, determinism, too few drives. Ids come from a seeded xorshift.
 */
#include <stdio.h>
#include <string.h>

#include "cu_main.h"
#include "pl.h"

#define SEED 0xC0FFEEu

static uint64_t rng = SEED;

static void rand_id(uint8_t id[16])
{
    for (int i = 0; i < 16; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        id[i] = (uint8_t)(rng >> 32);
    }
}

static void test_distinct_and_deterministic(void)
{
    uint8_t online[12], id[16], out[12], again[12];
    memset(online, 1, sizeof(online));
    for (int iter = 0; iter < 1000; iter++) {
        int nd = 6 + iter % 7, nc = 6, n = 0;
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_choose(id, nd, online, nc, out, &n), CM_OK);
        CU_ASSERT_EQUAL(n, nc);
        unsigned seen = 0;
        for (int i = 0; i < nc; i++) {
            CU_ASSERT(out[i] < nd);
            CU_ASSERT((seen & (1u << out[i])) == 0);
            seen |= 1u << out[i];
        }
        CU_ASSERT_EQUAL(pl_choose(id, nd, online, nc, again, &n), CM_OK);
        CU_ASSERT_EQUAL(memcmp(out, again, (size_t)nc), 0);
    }
}

static void test_spread(void)
{
    enum { ND = 6, IDS = 60000 };
    uint8_t online[ND], id[16], out[ND];
    int count[ND][ND] = {{0}}; /* [cell][drive] */
    memset(online, 1, sizeof(online));
    for (int iter = 0; iter < IDS; iter++) {
        int n;
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_choose(id, ND, online, ND, out, &n), CM_OK);
        for (int c = 0; c < ND; c++)
            count[c][out[c]]++;
    }
    /* each (cell, drive) pair expects IDS/ND = 10000; allow +-5% */
    int bad = 0;
    for (int c = 0; c < ND; c++)
        for (int d = 0; d < ND; d++)
            bad += count[c][d] < 9500 || count[c][d] > 10500;
    CU_ASSERT_EQUAL(bad, 0);
    if (bad)
        printf("spread uneven (seed %#x)\n", SEED);
}

static void test_offline(void)
{
    uint8_t online[8] = {1, 0, 1, 1, 0, 1, 1, 1}, id[16], out[8];
    for (int iter = 0; iter < 500; iter++) {
        int n;
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_choose(id, 8, online, 6, out, &n), CM_OK);
        for (int i = 0; i < 6; i++)
            CU_ASSERT(online[out[i]]);
    }
    /* 6 of 8 online, 7 wanted: partial list, UNAVAILABLE */
    int n = 0;
    CU_ASSERT_EQUAL(pl_choose(id, 8, online, 7, out, &n), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_EQUAL(out[6], PL_NONE);
    for (int i = 0; i < 6; i++)
        CU_ASSERT(online[out[i]]);
}

static void test_invalid(void)
{
    uint8_t online[4] = {1, 1, 1, 1}, id[16] = {0}, out[8];
    int n;
    CU_ASSERT_EQUAL(pl_choose(id, 4, online, 5, out, &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_choose(id, 0, online, 1, out, &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_choose(id, 4, online, 0, out, &n), CM_ERR_INVAL);
    CU_ASSERT(pl_start(id, 4) >= 0 && pl_start(id, 4) < 4);
}

void cu_register(void)
{
    printf("test_placement seed %#x\n", SEED);
    static const cu_test tests[] = {{"distinct_deterministic", test_distinct_and_deterministic},
                                    {"spread", test_spread},
                                    {"offline_skipped", test_offline},
                                    {"invalid", test_invalid},
                                    {NULL, NULL}};
    cu_add_suite("placement", tests);
}
