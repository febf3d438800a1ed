/*
 * bs_format.c - encoding and validation of segment and record headers (pure, no I/O).
 *
 * The byte layouts are listed in bs_int.h and docs/storage.md. Everything read from disk is
 * untrusted: decode checks the magic, the CRC32C, the record type, that reserved bytes are zero and
 * that the block count matches the data length, and reports any mismatch as CM_ERR_CORRUPT (the
 * caller logs where). This is the parser the libFuzzer target tests/fuzz/fuzz_record.c drives.
 *
 * CRC32C is the Castagnoli CRC as usually defined (init and final xor 0xFFFFFFFF; "123456789" ->
 * 0xE3069283), computed with ISA-L's crc32_iscsi.
 *
 * Salt: a record header's CRC covers a random 64-bit salt of the store first (kept in every
 * version 2 segment header, never exposed), so bytes a client stores can never pass for a record
 * header when recovery searches for the next valid one. Version 1 segments (stores written
 * before the salt) use none. A version 2 segment header also carries the synced-up-to mark,
 * rewritten in place after sync rounds with its own CRC, so a torn mark never spoils the header.
 */
#include <isa-l/crc.h>
#include <limits.h>
#include <string.h>

#include "bs_int.h"
#include "cm_util.h"

uint32_t bs_crc32c_more(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        crc = crc32_iscsi((unsigned char *)p, n, crc);
        p += n;
        len -= (size_t)n;
    }
    return crc;
}

uint32_t bs_crc32c(const void *data, size_t len)
{
    return bs_crc32c_end(bs_crc32c_more(BS_CRC_INIT, data, len));
}

/* CRC32C of bytes 8..24 of a version 2 header: segment number, salt and the mark itself. */
static uint32_t mark_crc(const uint8_t *hdr)
{
    return bs_crc32c(hdr + 8, 16);
}

void bs_seg_mark_encode(uint64_t synced, uint8_t hdr[BS_SEG_HDR])
{
    uint64_t units = synced / BS_ALIGN;
    cm_put_be32(hdr + 20,
                units > UINT32_MAX ? UINT32_MAX : (uint32_t)units); /* a lower mark is safe */
    cm_put_be32(hdr + 24, mark_crc(hdr));
}

void bs_seg_hdr_encode(uint32_t segno, uint64_t salt, uint64_t synced, uint8_t out[BS_SEG_HDR])
{
    memset(out, 0, BS_SEG_HDR);
    cm_put_be32(out, BS_SEG_MAGIC);
    cm_put_be32(out + 4, BS_SEG_VERSION);
    cm_put_be32(out + 8, segno);
    cm_put_be64(out + 12, salt);
    cm_put_be32(out + 28, bs_crc32c(out, 20));
    bs_seg_mark_encode(synced, out);
}

cm_err bs_seg_hdr_decode(const uint8_t in[BS_SEG_HDR], bs_seg_info *out)
{
    uint32_t version = cm_get_be32(in + 4);
    if (cm_get_be32(in) != BS_SEG_MAGIC || (version != 1 && version != BS_SEG_VERSION))
        return CM_ERR_CORRUPT;
    /* Version 1 covers its 16 zero bytes; version 2 only the fixed part (the mark changes). */
    if (cm_get_be32(in + 28) != bs_crc32c(in, version == 1 ? 28 : 20))
        return CM_ERR_CORRUPT;
    out->version = version;
    out->segno = cm_get_be32(in + 8);
    out->salt = version == 1 ? 0 : cm_get_be64(in + 12);
    out->synced = 0;
    /* A mark torn by a crash only loses what it adds: it is not corruption. */
    if (version != 1 && cm_get_be32(in + 24) == mark_crc(in))
        out->synced = (uint64_t)cm_get_be32(in + 20) * BS_ALIGN;
    return CM_OK;
}

uint64_t bs_seg_salt_guess(const uint8_t in[BS_SEG_HDR])
{
    return cm_get_be32(in + 4) == BS_SEG_VERSION ? cm_get_be64(in + 12) : 0;
}

uint32_t bs_blocks_for(uint32_t len)
{
    return (uint32_t)(((uint64_t)len + BS_BLOCK - 1) / BS_BLOCK);
}

uint64_t bs_rec_size(uint32_t len)
{
    uint64_t n = BS_REC_HDR + 4ull * bs_blocks_for(len) + len;
    return (n + BS_ALIGN - 1) & ~(uint64_t)(BS_ALIGN - 1);
}

uint64_t bs_data_fit(uint64_t space)
{
    if (space < BS_REC_HDR + BS_ALIGN + 4)
        return 0;
    /* d = space - hdr - worst padding - 4 per block of that; the record then needs <= space. */
    uint64_t d = space - BS_REC_HDR - BS_ALIGN;
    d -= 4 * ((d + BS_BLOCK - 1) / BS_BLOCK);
    return d > BS_REC_MAX_DATA ? BS_REC_MAX_DATA : d;
}

/* The header CRC: CRC32C of the 8-byte big-endian salt followed by bytes 0..43 (salt 0: none). */
static uint32_t rec_crc(uint64_t salt, const uint8_t *hdr)
{
    uint8_t s[8];
    uint32_t crc = 0xFFFFFFFFu;
    if (salt != 0) {
        cm_put_be64(s, salt);
        crc = crc32_iscsi(s, sizeof(s), crc);
    }
    return crc32_iscsi((unsigned char *)hdr, 44, crc) ^ 0xFFFFFFFFu;
}

void bs_rec_encode(const bs_rec_hdr *h, uint64_t salt, uint8_t out[BS_REC_HDR])
{
    memset(out, 0, BS_REC_HDR);
    cm_put_be32(out, BS_REC_MAGIC);
    out[4] = h->type;
    memcpy(out + 8, h->id.b, 16);
    cm_put_be64(out + 24, h->off);
    cm_put_be32(out + 32, h->len);
    cm_put_be32(out + 36, h->nblocks);
    cm_put_be32(out + 44, rec_crc(salt, out));
}

cm_err bs_rec_decode(const uint8_t in[BS_REC_HDR], uint64_t salt, bs_rec_hdr *h)
{
    if (cm_get_be32(in) != BS_REC_MAGIC || cm_get_be32(in + 44) != rec_crc(salt, in))
        return CM_ERR_CORRUPT;
    if (in[5] || in[6] || in[7] || cm_get_be32(in + 40) != 0)
        return CM_ERR_CORRUPT;
    h->type = in[4];
    memcpy(h->id.b, in + 8, 16);
    h->off = cm_get_be64(in + 24);
    h->len = cm_get_be32(in + 32);
    h->nblocks = cm_get_be32(in + 36);
    if (h->type != BS_REC_PUT && h->type != BS_REC_DELETE)
        return CM_ERR_CORRUPT;
    if (h->type == BS_REC_DELETE && (h->len != 0 || h->nblocks != 0 || h->off != 0))
        return CM_ERR_CORRUPT;
    if (h->len > BS_REC_MAX_DATA || h->nblocks != bs_blocks_for(h->len))
        return CM_ERR_CORRUPT;
    if (h->off > UINT64_MAX - h->len)
        return CM_ERR_CORRUPT;
    return CM_OK;
}
