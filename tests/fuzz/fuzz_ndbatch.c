/*
 * fuzz_ndbatch.c - libFuzzer target for the node RPC's batch routes (PUT /meta/<b>/recs, POST
 * /meta/<b>/recget; node/nd_batch.c): the bodies a node splits after the HMAC check
 * (node/nd_meta.c body_records, run_gets) and the answer to a batch of reads that the caller
 * splits (repl/rp_remote.c reads_finish). A peer's bug, or a node holding the cluster secret,
 * must not crash either side or make one key's answer pass for another's.
 *
 * Input: byte 0 selects what the rest is (mod 4):
 *   0  a batch put's body, split and each record decoded as the node does;
 *   1  a batch of reads' body, split as the node does;
 *   2  byte 1 says how many keys were asked (1 + byte % ND_META_BATCH_MAX), the rest is the
 *      node's answer, split and each record decoded as the caller does;
 *   3  items to frame (each a u16 length, taken mod MD_MAX_KEY + 1, and that many bytes): a body
 *      of records, one of keys and an answer of them, framed as the caller and the node write
 *      them (nd_batch_frame), split back.
 *
 * Oracles, from the contract in nd.h rather than from the code:
 *  - what splits is 1..ND_META_BATCH_MAX items lying in order inside the body, keys of
 *    1..MD_MAX_KEY bytes without NUL, and framing them again gives the body byte for byte (so
 *    nothing was skipped or left over);
 *  - a record that decodes re-encodes, and the batch of the re-encodings splits and decodes to
 *    records that encode to the same bytes (md_object_decode's fixed point, through the batch);
 *  - an answer that splits holds exactly one known status per key, a record only for
 *    ND_BATCH_FOUND, and writing it again gives the answer byte for byte;
 *  - what the caller frames the node splits back to the same items, whenever the batch is one a
 *    caller may send (1..ND_META_BATCH_MAX items; keys 1..MD_MAX_KEY bytes without NUL); any
 *    other batch of keys is refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "md.h"
#include "nd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The largest body mode 3 frames: one item more than a batch holds, each at its longest with the
 * longest header (an answer's status byte and u32 length are no longer). */
#define FRAMED_MAX ((ND_META_BATCH_MAX + 1) * (4 + MD_MAX_KEY + 1))

static void same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen || memcmp(a, b, alen) != 0)
        abort();
}

/* items[0..n) of body (split with keys) are the whole body, in order, framed again. */
static void check_items(const uint8_t *body, size_t len, int keys, const nd_batch_item *items,
                        size_t n)
{
    if (n == 0 || n > ND_META_BATCH_MAX)
        abort();
    uint8_t *again = malloc(len ? len : 1);
    size_t off = 0;
    if (!again)
        return;
    for (size_t i = 0; i < n; i++) {
        const nd_batch_item *it = &items[i];
        if (len - off < ND_BATCH_HDR(keys) || it->p != body + off + ND_BATCH_HDR(keys) ||
            it->len > len - off - ND_BATCH_HDR(keys))
            abort(); /* not the next item of the body */
        if (keys && (it->len == 0 || it->len > MD_MAX_KEY || memchr(it->p, 0, it->len)))
            abort();
        off += nd_batch_frame(again + off, keys, it->p, it->len);
    }
    same_bytes(body, len, again, off);
    free(again);
}

/* The records of a split batch put, decoded as the node does; those that decode go through a
 * batch of their encodings and must come back the same. */
static void records_round_trip(const nd_batch_item *items, size_t n)
{
    uint8_t *enc[ND_META_BATCH_MAX] = {0}, *body = NULL;
    size_t elen[ND_META_BATCH_MAX], m = 0, len = 0;
    nd_batch_item again[ND_META_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        md_object o;
        if (md_object_decode(items[i].p, items[i].len, &o) != CM_OK)
            continue;
        if (md_object_encode(&o, &enc[m], &elen[m]) != CM_OK)
            abort();
        md_object_release(&o);
        len += 4 + elen[m++];
    }
    if (m && (body = malloc(len))) {
        size_t off = 0;
        for (size_t i = 0; i < m; i++)
            off += nd_batch_frame(body + off, 0, enc[i], elen[i]);
        if (nd_batch_split(body, len, 0, again) != m)
            abort();
        for (size_t i = 0; i < m; i++) {
            md_object o;
            uint8_t *e2;
            size_t l2;
            if (md_object_decode(again[i].p, again[i].len, &o) != CM_OK ||
                md_object_encode(&o, &e2, &l2) != CM_OK)
                abort();
            md_object_release(&o);
            same_bytes(enc[i], elen[i], e2, l2);
            free(e2);
        }
    }
    free(body);
    for (size_t i = 0; i < m; i++)
        free(enc[i]);
}

/* An answer to n keys that split: known statuses, a record only when found, the same bytes when
 * written again; its records decoded as the caller does. */
static void check_answer(const uint8_t *ans, size_t len, size_t n, const nd_batch_item *items)
{
    uint8_t *again = malloc(len ? len : 1);
    size_t off = 0;
    if (!again)
        return;
    for (size_t i = 0; i < n; i++) {
        const nd_batch_item *it = &items[i];
        if (off == len)
            abort(); /* more answers than bytes */
        again[off++] = it->st;
        if (it->st != ND_BATCH_FOUND) {
            if (it->p || it->len ||
                (it->st != ND_BATCH_ABSENT && it->st != ND_BATCH_NO_BUCKET &&
                 it->st != ND_BATCH_FAILED))
                abort();
            continue;
        }
        if (len - off < 4 || it->p != ans + off + 4 || it->len > len - off - 4)
            abort();
        off += nd_batch_frame(again + off, 0, it->p, it->len);
        md_object o;
        if (md_object_decode(it->p, it->len, &o) == CM_OK)
            md_object_release(&o);
    }
    same_bytes(ans, len, again, off);
    free(again);
}

/* Mode 3: the items the input describes, framed by the caller's rules, split by the node's. */
static void framed_round_trip(const uint8_t *data, size_t size)
{
    nd_batch_item want[ND_META_BATCH_MAX + 1], got[ND_META_BATCH_MAX];
    size_t n = 0, off = 0;
    int keys_ok = 1;
    while (n <= ND_META_BATCH_MAX && size - off >= 2) {
        size_t il = (size_t)(data[off] << 8 | data[off + 1]) % (MD_MAX_KEY + 1);
        if (il > size - off - 2)
            break;
        want[n++] = (nd_batch_item){data + off + 2, il, 0};
        keys_ok &= il > 0 && !memchr(data + off + 2, 0, il);
        off += 2 + il;
    }
    uint8_t *body = malloc(FRAMED_MAX);
    if (!body)
        return;
    for (int keys = 0; keys <= 1; keys++) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += nd_batch_frame(body + len, keys, want[i].p, want[i].len);
        size_t m = nd_batch_split(body, len, keys, got);
        int sendable = n >= 1 && n <= ND_META_BATCH_MAX && (!keys || keys_ok);
        if (m != (sendable ? n : 0))
            abort();
        for (size_t i = 0; i < m; i++)
            same_bytes(want[i].p, want[i].len, got[i].p, got[i].len);
    }
    /* the same items as records found, with every other key absent, as a node answers */
    size_t len = 0, asked = CM_MIN(n, (size_t)ND_META_BATCH_MAX);
    for (size_t i = 0; i < asked; i++) {
        body[len++] = i % 2 ? ND_BATCH_ABSENT : ND_BATCH_FOUND;
        if (i % 2 == 0)
            len += nd_batch_frame(body + len, 0, want[i].p, want[i].len);
    }
    if (asked && nd_batch_answer(body, len, asked, got) != CM_OK)
        abort();
    for (size_t i = 0; i < asked; i++)
        if (i % 2 == 0)
            same_bytes(want[i].p, want[i].len, got[i].p, got[i].len);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nd_batch_item items[ND_META_BATCH_MAX];
    cm_log_threshold = -1; /* records that do not decode are the normal case here */
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    data++, size--;
    if (mode == 0 || mode == 1) {
        size_t n = nd_batch_split(data, size, mode, items);
        if (n) {
            check_items(data, size, mode, items, n);
            if (mode == 0)
                records_round_trip(items, n);
        }
    } else if (mode == 2 && size >= 1) {
        size_t n = 1 + data[0] % ND_META_BATCH_MAX;
        if (nd_batch_answer(data + 1, size - 1, n, items) == CM_OK)
            check_answer(data + 1, size - 1, n, items);
    } else if (mode == 3) {
        framed_round_trip(data, size);
    }
    return 0;
}
