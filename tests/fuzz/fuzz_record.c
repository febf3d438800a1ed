/*
 * fuzz_record.c - libFuzzer target for the blob store's on-disk parsers.
 *
 * Two things are driven with the input: the record and segment header decoders directly (a header
 * that decodes must re-encode to the same bytes, and its size arithmetic must not overflow), and
 * the whole recovery scan: the input becomes the body of a segment file (after a valid segment
 * header) in a scratch drive directory that bs_open recovers. Recovery must never crash, hang or
 * trust a length it has not checked against the file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoders(const uint8_t *data, size_t size)
{
    bs_rec_hdr h;
    uint8_t again[BS_REC_HDR];
    bs_seg_info info;
    static const uint64_t salts[2] = {0, 0x5EED5A1705A1700Dull};
    for (int i = 0; i < 2; i++) {
        if (size >= BS_REC_HDR && bs_rec_decode(data, salts[i], &h) == CM_OK) {
            bs_rec_encode(&h, salts[i], again);
            if (memcmp(again, data, BS_REC_HDR) != 0)
                abort();
            if (bs_rec_size(h.len) < BS_REC_HDR)
                abort();
        }
    }
    if (size >= BS_SEG_HDR && bs_seg_hdr_decode(data, &info) == CM_OK &&
        (info.synced % BS_ALIGN != 0 || (info.version == 1 && info.salt != 0)))
        abort();
}

static void check_recovery(const uint8_t *data, size_t size)
{
    static char dir[64];
    char path[128];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz-record-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        cm_log_threshold = -1; /* silence: corrupt input is the normal case here */
    }
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    uint8_t hdr[BS_SEG_HDR];
    bs_seg_hdr_encode(1, 0, 0, hdr); /* salt 0: the input's records can validate */
    if (fd < 0 || write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
        write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    bs_store *bs = NULL;
    if (bs_open(dir, NULL, &bs) == CM_OK) {
        bs_stats st;
        bs_get_stats(bs, &st);
        bs_close(bs);
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decoders(data, size);
    check_recovery(data, size);
    return 0;
}
