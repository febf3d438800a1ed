/*
 * test_erasure.c - the ISA-L Reed-Solomon codec: encode, then erase every combination of up to m
 * cells and check the rebuild is byte-exact, for several profiles and odd cell lengths.
 * Randomness comes from a fixed-seed xorshift so runs are reproducible; the seed is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "ec.h"

#define SEED 0x5eedc0deu

static uint64_t rng_state;

static uint8_t rnd8(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

typedef struct {
    int k, m;
    size_t len;
    uint8_t *orig[EC_MAX_CELLS]; /* encoded reference cells */
    uint8_t *work[EC_MAX_CELLS]; /* cells handed to ec_reconstruct */
} fixture;

static void fixture_init(fixture *f, ec_codec *c, size_t len)
{
    f->k = ec_k(c);
    f->m = ec_m(c);
    f->len = len;
    for (int i = 0; i < f->k + f->m; i++) {
        f->orig[i] = malloc(len ? len : 1);
        f->work[i] = malloc(len ? len : 1);
        CU_ASSERT_FATAL(f->orig[i] && f->work[i]);
    }
    for (int i = 0; i < f->k; i++)
        for (size_t j = 0; j < len; j++)
            f->orig[i][j] = rnd8();
    ec_encode(c, len, f->orig, f->orig + f->k);
}

static void fixture_release(fixture *f)
{
    for (int i = 0; i < f->k + f->m; i++) {
        free(f->orig[i]);
        free(f->work[i]);
    }
}

/* Erase the cells in mask (bit i = cell i), reconstruct, compare every cell. */
static int try_mask(ec_codec *c, fixture *f, unsigned mask)
{
    int present[EC_MAX_CELLS];
    for (int i = 0; i < f->k + f->m; i++) {
        present[i] = !(mask & (1u << i));
        if (present[i])
            memcpy(f->work[i], f->orig[i], f->len);
        else
            memset(f->work[i], 0xA5, f->len);
    }
    if (ec_reconstruct(c, f->len, f->work, present) != CM_OK)
        return 0;
    for (int i = 0; i < f->k + f->m; i++)
        if (memcmp(f->work[i], f->orig[i], f->len) != 0)
            return 0;
    return 1;
}

static void check_profile(int k, int m, size_t len)
{
    ec_codec *c = NULL;
    CU_ASSERT_FATAL(ec_new(k, m, &c) == CM_OK);
    CU_ASSERT_EQUAL(ec_k(c), k);
    CU_ASSERT_EQUAL(ec_m(c), m);
    fixture f;
    fixture_init(&f, c, len);
    int n = k + m, failures = 0;
    for (unsigned mask = 0; mask < (1u << n); mask++) {
        if (__builtin_popcount(mask) > m)
            continue;
        if (!try_mask(c, &f, mask)) {
            failures++;
            fprintf(stderr, "k=%d m=%d len=%zu mask=%#x failed (seed %#x)\n", k, m, len, mask,
                    SEED);
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    fixture_release(&f);
    ec_free(c);
}

static void test_profiles(void)
{
    static const int prof[][2] = {{4, 2}, {2, 1}, {8, 3}, {1, 0}, {1, 2}, {6, 3}};
    static const size_t lens[] = {1, 63, 64, 1000, 4096};
    for (size_t p = 0; p < sizeof(prof) / sizeof(prof[0]); p++)
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
            check_profile(prof[p][0], prof[p][1], lens[l]);
}

static void test_too_few(void)
{
    ec_codec *c = NULL;
    CU_ASSERT_FATAL(ec_new(4, 2, &c) == CM_OK);
    fixture f;
    fixture_init(&f, c, 100);
    int present[6] = {1, 0, 1, 0, 0, 1};
    CU_ASSERT_EQUAL(ec_reconstruct(c, f.len, f.work, present), CM_ERR_UNAVAILABLE);
    fixture_release(&f);
    ec_free(c);
}

static void test_parity_values_differ(void)
{
    /* Parity must depend on the data: flip one data byte and every parity cell changes. */
    ec_codec *c = NULL;
    CU_ASSERT_FATAL(ec_new(4, 2, &c) == CM_OK);
    fixture f;
    fixture_init(&f, c, 64);
    uint8_t p0[64], p1[64];
    memcpy(p0, f.orig[4], 64);
    memcpy(p1, f.orig[5], 64);
    f.orig[2][10] ^= 1;
    ec_encode(c, 64, f.orig, f.orig + 4);
    CU_ASSERT(memcmp(p0, f.orig[4], 64) != 0);
    CU_ASSERT(memcmp(p1, f.orig[5], 64) != 0);
    fixture_release(&f);
    ec_free(c);
}

static void test_invalid(void)
{
    ec_codec *c = NULL;
    CU_ASSERT_EQUAL(ec_new(0, 2, &c), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(ec_new(2, -1, &c), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(ec_new(30, 3, &c), CM_ERR_INVAL);
    ec_free(NULL);
}

void cu_register(void)
{
    rng_state = SEED;
    printf("test_erasure seed %#x\n", SEED);
    static const cu_test tests[] = {{"profiles_all_erasures", test_profiles},
                                    {"too_few_cells", test_too_few},
                                    {"parity_depends_on_data", test_parity_values_differ},
                                    {"invalid_profiles", test_invalid},
                                    {NULL, NULL}};
    cu_add_suite("erasure", tests);
}
