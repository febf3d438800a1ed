/*
 * pl_int.h - helpers shared by the placement files (not part of the module's interface).
 */
#ifndef PL_INT_H
#define PL_INT_H

#include <stdint.h>

/* A 64-bit finaliser (murmur3's fmix64): every input bit flips about half the output bits. */
static inline uint64_t pl_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* The 16 id bytes folded to one well-mixed word (also pl_start's rotation). */
static inline uint64_t pl_id_hash(const uint8_t id[16])
{
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) {
        a = (a << 8) | id[i];
        b = (b << 8) | id[8 + i];
    }
    return pl_mix64(a ^ pl_mix64(b));
}

#endif
