/*
 * nd_batch.c - the framing of the node RPC's batch routes (nd.h, nd_meta_put_batch and
 * nd_meta_get_batch): what the caller (repl/rp_remote.c) writes, what the node (nd_meta.c) reads
 * back, and the batch of reads' answer as the caller reads it. Pure functions over byte arrays;
 * no allocation, no I/O, any thread.
 *
 * Formats (big-endian lengths):
 *   PUT /recs body     1..ND_META_BATCH_MAX of  u32 length | md_object_encode'd record
 *   POST /recget body  1..ND_META_BATCH_MAX of  u16 length | key (1..MD_MAX_KEY bytes, no NUL)
 *   POST /recget answer, one per key in order:  ND_BATCH_FOUND | u32 length | record
 *                                           or  ND_BATCH_ABSENT, _NO_BUCKET, _FAILED alone
 * Invariant: a body or answer is accepted only when it frames exactly (no byte left over, no item
 * cut short), so framing again what was split gives back the same bytes; items point into the
 * bytes they were split from.
 */
#include <string.h>

#include "cm_util.h"
#include "nd.h"

size_t nd_batch_frame(uint8_t *out, int keys, const uint8_t *item, size_t len)
{
    if (keys) {
        out[0] = (uint8_t)(len >> 8);
        out[1] = (uint8_t)len;
    } else {
        cm_put_be32(out, (uint32_t)len);
    }
    memcpy(out + ND_BATCH_HDR(keys), item, len);
    return ND_BATCH_HDR(keys) + len;
}

/* The length in the item header at p (ND_BATCH_HDR(keys) bytes). */
static size_t item_len(const uint8_t *p, int keys)
{
    return keys ? (size_t)(p[0] << 8 | p[1]) : cm_get_be32(p);
}

size_t nd_batch_split(const uint8_t *body, size_t len, int keys, nd_batch_item *items)
{
    size_t off = 0, n = 0, hl = ND_BATCH_HDR(keys);
    while (off < len) {
        if (n == ND_META_BATCH_MAX || len - off < hl)
            return 0;
        size_t il = item_len(body + off, keys);
        if (il > len - off - hl)
            return 0;
        const uint8_t *p = body + off + hl;
        if (keys && (il == 0 || il > MD_MAX_KEY || memchr(p, 0, il)))
            return 0;
        items[n++] = (nd_batch_item){p, il, 0};
        off += hl + il;
    }
    return n;
}

cm_err nd_batch_answer(const uint8_t *body, size_t len, size_t n, nd_batch_item *items)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (off == len)
            return CM_ERR_CORRUPT; /* fewer answers than keys */
        uint8_t st = body[off++];
        items[i] = (nd_batch_item){NULL, 0, st};
        if (st == ND_BATCH_ABSENT || st == ND_BATCH_NO_BUCKET || st == ND_BATCH_FAILED)
            continue;
        if (st != ND_BATCH_FOUND || len - off < 4 || cm_get_be32(body + off) > len - off - 4)
            return CM_ERR_CORRUPT;
        items[i].len = cm_get_be32(body + off);
        items[i].p = body + off + 4;
        off += 4 + items[i].len;
    }
    return off == len ? CM_OK : CM_ERR_CORRUPT;
}
