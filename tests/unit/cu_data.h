/*
 * cu_data.h - deterministic data for the storage tests: a seeded xorshift64 generator, a byte
 * pattern that is a function of (salt, tag, offset) so any stored byte can be checked without
 * keeping a copy, and blob ids derived from a tag.
 */
#ifndef CU_DATA_H
#define CU_DATA_H

#include <stdint.h>
#include <string.h>

#include "bs.h"

static inline uint64_t cu_xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static inline uint8_t cu_pattern(uint64_t salt, uint32_t tag, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)tag << 32) ^ salt;
    x ^= x >> 29;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

/* A blob id made of the tag and a marker byte (distinct markers keep suites' ids apart). */
static inline bs_id cu_tag_id(uint32_t tag, uint8_t marker)
{
    bs_id id;
    memset(&id, 0, sizeof(id));
    memcpy(id.b, &tag, sizeof(tag));
    id.b[15] = marker;
    return id;
}

#endif
