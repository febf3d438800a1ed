/*
 * cmd/bench_data.c - the deterministic object content of `cairn bench`.
 *
 * One 1 MiB pattern is drawn from the seed (splitmix64) and stored twice in a row. An object's
 * bytes are the pattern read cyclically from an offset that a hash of (seed, key) picks, so every
 * PUT of a key writes the same bytes, a GET can check them without having kept anything, and two
 * keys almost never share their bytes (a GET answered with another key's body fails the check).
 * PUT bodies are appended to the output evbuffer by reference: no generation, no copy per request.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int bench_content_init(bench_content *c, uint64_t seed)
{
    c->seed = seed;
    c->pattern = malloc(2 * BENCH_PAT);
    if (!c->pattern)
        return -1;
    uint64_t st = seed;
    for (size_t i = 0; i < BENCH_PAT; i += 8) {
        uint64_t v = splitmix64(&st);
        memcpy(c->pattern + i, &v, 8);
    }
    memcpy(c->pattern + BENCH_PAT, c->pattern, BENCH_PAT);
    return 0;
}

void bench_content_release(bench_content *c)
{
    free(c->pattern);
    c->pattern = NULL;
}

/* FNV-1a of the key, mixed with the seed. */
uint64_t bench_key_hash(const bench_content *c, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    uint64_t st = h ^ c->seed;
    return splitmix64(&st);
}

int bench_content_add(const bench_content *c, struct evbuffer *out, uint64_t off, uint64_t n)
{
    uint64_t pos = 0;
    while (pos < n) {
        size_t start = (size_t)((off + pos) % BENCH_PAT);
        size_t len = n - pos < BENCH_PAT ? (size_t)(n - pos) : BENCH_PAT;
        if (evbuffer_add_reference(out, c->pattern + start, len, NULL, NULL) != 0)
            return -1;
        pos += len;
    }
    return 0;
}

int bench_content_check(const bench_content *c, uint64_t off, uint64_t pos, const void *data,
                        size_t len)
{
    const uint8_t *d = data;
    while (len > 0) {
        size_t start = (size_t)((off + pos) % BENCH_PAT);
        size_t n = len < BENCH_PAT ? len : BENCH_PAT;
        if (memcmp(c->pattern + start, d, n) != 0)
            return 0;
        d += n;
        pos += n;
        len -= n;
    }
    return 1;
}
