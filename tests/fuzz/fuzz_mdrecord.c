/*
 * fuzz_mdrecord.c - libFuzzer target for the metadata record codec (meta/md_record.c): the bytes
 * LMDB hands back are decoded as an object, bucket, upload or part record.
 *
 * Input: byte 0 selects the decoder (0 object, 1 bucket, 2 upload, 3 part; the object decoder
 * also runs in summary mode), the rest is the record.
 *
 * Oracles: no crash, leak or sanitizer report; a record that decodes re-encodes, the re-encoded
 * record decodes, and encoding that again gives the same bytes (decode(encode(x)) is a fixed
 * point; the first encoding may differ from the input, which can hold unknown or repeated
 * fields); a summary decode succeeds whenever the full decode does and agrees on the fields it
 * keeps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "md_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bytes(const md_wbuf *a, const md_wbuf *b)
{
    if (a->len != b->len || memcmp(a->p, b->p, a->len) != 0)
        abort();
}

static void object_round_trip(const uint8_t *rec, size_t len)
{
    md_object o, again, summary;
    md_wbuf w1 = {0}, w2 = {0};
    if (md_object_decode(rec, len, &o) != CM_OK)
        return;
    if (md_object_decode_ex(rec, len, 1, &summary) != CM_OK)
        abort();
    if (summary.size != o.size || summary.mtime_ms != o.mtime_ms ||
        summary.delete_marker != o.delete_marker || strcmp(summary.etag, o.etag) != 0 ||
        strcmp(summary.version_id, o.version_id) != 0 || (o.key && !summary.key) ||
        (o.key && strcmp(o.key, summary.key) != 0))
        abort();
    md_object_release(&summary);
    if (md_object_encode_w(&o, &w1) != CM_OK)
        abort();
    if (md_object_decode(w1.p, w1.len, &again) != CM_OK)
        abort();
    if (md_object_encode_w(&again, &w2) != CM_OK)
        abort();
    same_bytes(&w1, &w2);
    md_object_release(&again);
    md_object_release(&o);
    md_w_free(&w1);
    md_w_free(&w2);
}

static void bucket_release(md_bucket *b)
{
    (void)b; /* fixed-size fields only */
}

/* decode, encode, decode the encoding, encode again: the two encodings must be equal. */
#define ROUND_TRIP(name, type, decode, encode, release)                                            \
    static void name(const uint8_t *rec, size_t len)                                               \
    {                                                                                              \
        type x, again;                                                                             \
        md_wbuf w1 = {0}, w2 = {0};                                                                \
        if (decode(rec, len, &x) != CM_OK)                                                         \
            return;                                                                                \
        if (encode(&x, &w1) != CM_OK || decode(w1.p, w1.len, &again) != CM_OK ||                   \
            encode(&again, &w2) != CM_OK)                                                          \
            abort();                                                                               \
        same_bytes(&w1, &w2);                                                                      \
        release(&again);                                                                           \
        release(&x);                                                                               \
        md_w_free(&w1);                                                                            \
        md_w_free(&w2);                                                                            \
    }

ROUND_TRIP(bucket_round_trip, md_bucket, md_bucket_decode, md_bucket_encode, bucket_release)
ROUND_TRIP(upload_round_trip, md_upload, md_upload_decode, md_upload_encode, md_upload_release)
ROUND_TRIP(part_round_trip, md_part, md_part_decode, md_part_encode, md_part_release)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_log_threshold = -1; /* corrupt records are the normal case here: no log lines */
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
        object_round_trip(data + 1, size - 1);
        break;
    case 1:
        bucket_round_trip(data + 1, size - 1);
        break;
    case 2:
        upload_round_trip(data + 1, size - 1);
        break;
    default:
        part_round_trip(data + 1, size - 1);
        break;
    }
    return 0;
}
