/*
 * bs_index.c - the in-memory index: blob id -> blob (size and sorted extent list).
 *
 * An open-addressing hash table of blob pointers with linear probing. Deletion shifts later
 * members of the probe run back (no tombstones), so lookups never degrade after many deletes. The
 * table doubles when it passes 70% load. Blob ids are random, but the hash still mixes all 16
 * bytes (splitmix64 finaliser) so that patterned ids from tests or tools spread too.
 *
 * Threading: none here; bs_store.c guards the index with its idx_lock.
 */
#include <stdlib.h>
#include <string.h>

#include "bs_int.h"
#include "cm_util.h"

#define BS_INDEX_MIN 64

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t id_hash(const bs_id *id)
{
    return (size_t)mix64(cm_get_be64(id->b) ^ mix64(cm_get_be64(id->b + 8)));
}

cm_err bs_index_init(bs_index *ix)
{
    ix->slots = calloc(BS_INDEX_MIN, sizeof(*ix->slots));
    if (!ix->slots)
        return CM_ERR_NOMEM;
    ix->cap = BS_INDEX_MIN;
    ix->count = 0;
    return CM_OK;
}

void bs_index_release(bs_index *ix)
{
    if (!ix->slots)
        return;
    for (size_t i = 0; i < ix->cap; i++)
        bs_blob_free(ix->slots[i]);
    free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}

static size_t find_slot(const bs_index *ix, const bs_id *id)
{
    size_t mask = ix->cap - 1, i = id_hash(id) & mask;
    while (ix->slots[i] && memcmp(ix->slots[i]->id.b, id->b, 16) != 0)
        i = (i + 1) & mask;
    return i;
}

bs_blob *bs_index_get(const bs_index *ix, const bs_id *id)
{
    return ix->slots[find_slot(ix, id)];
}

static cm_err grow(bs_index *ix)
{
    bs_index big = {calloc(ix->cap * 2, sizeof(*ix->slots)), ix->cap * 2, ix->count};
    if (!big.slots)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->slots[i])
            big.slots[find_slot(&big, &ix->slots[i]->id)] = ix->slots[i];
    free(ix->slots);
    *ix = big;
    return CM_OK;
}

cm_err bs_index_put(bs_index *ix, bs_blob *b)
{
    if ((ix->count + 1) * 10 > ix->cap * 7) {
        cm_err e = grow(ix);
        if (e != CM_OK)
            return e;
    }
    ix->slots[find_slot(ix, &b->id)] = b;
    ix->count++;
    return CM_OK;
}

bs_blob *bs_index_remove(bs_index *ix, const bs_id *id)
{
    size_t mask = ix->cap - 1, i = find_slot(ix, id);
    bs_blob *b = ix->slots[i];
    if (!b)
        return NULL;
    ix->slots[i] = NULL;
    ix->count--;
    /* Backward shift: move later run members whose home is at or before the hole into it. */
    for (size_t j = (i + 1) & mask; ix->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(&ix->slots[j]->id) & mask;
        int movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            ix->slots[i] = ix->slots[j];
            ix->slots[j] = NULL;
            i = j;
        }
    }
    return b;
}

bs_blob *bs_blob_new(const bs_id *id)
{
    bs_blob *b = calloc(1, sizeof(*b));
    if (b)
        b->id = *id;
    return b;
}

void bs_blob_free(bs_blob *b)
{
    if (!b)
        return;
    free(b->ext);
    free(b);
}

cm_err bs_blob_add_ext(bs_blob *b, const bs_ext *e)
{
    if (b->next == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 4;
        bs_ext *n = realloc(b->ext, cap * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        b->ext = n;
        b->cap = cap;
    }
    b->ext[b->next++] = *e;
    return CM_OK;
}

cm_err bs_blob_insert_ext(bs_blob *b, uint32_t i, const bs_ext *e)
{
    cm_err err = bs_blob_add_ext(b, e); /* grows the array; the copy lands at the end */
    if (err != CM_OK)
        return err;
    memmove(&b->ext[i + 1], &b->ext[i], (b->next - 1 - i) * sizeof(*b->ext));
    b->ext[i] = *e;
    return CM_OK;
}

uint32_t bs_blob_first_ext(const bs_blob *b, uint64_t off)
{
    uint32_t lo = 0, hi = b->next;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->ext[mid].boff + b->ext[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
