/*
 * ob_zstd.c - transparent compression of bodies (docs/compression.md): the zstd codec, the
 * writer's framing with its adaptive test, and ranged reads of a compressed body.
 *
 * Stored stream. A compressed body is cut into frames of `frame` bytes (the store's stripe
 * payload, k x cell_size, so a GET piece is one frame; the last frame may be shorter). Each frame
 * is one zstd frame (content size and XXH64 content checksum on) when that is smaller than the
 * frame, else its bytes as they are ("raw"). The frames are written back to back, followed by a
 * table of n u64 big-endian values, the stored end offset of each frame. That stream is what the
 * erasure writer sees: it is cut into stripes, encoded and CRC-covered like any body, so the
 * scrubber, heal and repair never need to know it is compressed. The layout records the stream's
 * length (`size`), the body's length (`zsize`), the frame size and where the table starts.
 * A frame's stored length equal to its body length means raw; smaller means zstd.
 *
 * Adaptive test. The first frame of every body is compressed; unless that saves at least 1/8,
 * the body is stored uncompressed (a plain layout, no table), so an incompressible body costs one
 * frame's compression attempt. Once a body is compressed, a frame that does not shrink is stored
 * raw, and after OB_Z_MISSES such frames in a row only every OB_Z_RETRY-th frame is tried, so a
 * compressible head followed by random data does not pay for compressing the rest.
 *
 * Reads. A range maps to frames; the table entries around them are read (one small read), raw
 * frames are read straight into the caller's buffer, compressed ones into a scratch buffer and
 * decoded into the caller's buffer (whole frame) or a frame buffer (part of it). Memory: at most
 * two frame buffers per call. Stored bytes are hostile input: every table entry is checked
 * (monotonic, within the stream, not longer than its frame), decoding is bounded by the frame's
 * length and must produce exactly it, and the content checksum must match; anything else is
 * CM_ERR_CORRUPT, never a crash or a short body.
 *
 * Threading: an ob_zw belongs to its writer; the read is re-entrant (its buffers are per call).
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cm_log.h"
#include "cm_util.h"
#include "ob_int.h"

#define MOD "obj"
#define OB_Z_MISSES 4 /* raw frames in a row before trying only some */
#define OB_Z_RETRY 16 /* then try every this many frames */

struct ob_zw {
    int level;
    uint32_t frame;
    int state;        /* Z_TEST until the first frame is decided, then Z_ON or Z_RAW */
    uint8_t *in;      /* the frame being filled */
    size_t fill;      /* bytes in it */
    uint8_t *out;     /* compressed frame (ZSTD_compressBound(frame)) */
    size_t out_cap;   /* its capacity */
    ZSTD_CCtx *cctx;  /* created on the first frame */
    uint64_t *ends;   /* stored end of each frame */
    size_t n, cap;    /* frames written, capacity of ends */
    uint64_t stored;  /* stored bytes sent to the sink */
    uint64_t logical; /* body bytes taken */
    int misses;       /* raw frames in a row */
    uint32_t skip;    /* frames left to store raw without trying */
};

enum { Z_TEST, Z_ON, Z_RAW };

int ob_z_worth(size_t raw, size_t packed)
{
    return packed > 0 && packed <= raw - raw / 8;
}

static cm_err cctx_ready(ob_zw *z)
{
    if (z->cctx)
        return CM_OK;
    z->out_cap = ZSTD_compressBound(z->frame);
    z->out = malloc(z->out_cap);
    z->cctx = ZSTD_createCCtx();
    if (!z->out || !z->cctx)
        return CM_ERR_NOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, z->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)))
        return CM_ERR_INVAL;
    return CM_OK;
}

size_t ob_z_compress(ob_zw *z, const uint8_t *src, size_t n)
{
    if (cctx_ready(z) != CM_OK)
        return 0; /* no memory: store the frame raw, the body stays correct */
    size_t r = ZSTD_compress2(z->cctx, z->out, z->out_cap, src, n);
    return ZSTD_isError(r) || r >= n ? 0 : r;
}

cm_err ob_z_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t expect)
{
    unsigned long long content = ZSTD_getFrameContentSize(src, n);
    if (content != expect) /* also ZSTD_CONTENTSIZE_ERROR / _UNKNOWN: not our frame */
        return CM_ERR_CORRUPT;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return CM_ERR_NOMEM;
    /* dst holds exactly expect bytes: the decoder can never write past it. */
    size_t r = ZSTD_decompressDCtx(d, dst, expect, src, n);
    ZSTD_freeDCtx(d);
    return ZSTD_isError(r) || r != expect ? CM_ERR_CORRUPT : CM_OK;
}

cm_err ob_zw_new(int level, uint32_t frame, ob_zw **out)
{
    if (frame == 0 || frame > OB_Z_FRAME_MAX)
        return CM_ERR_INVAL;
    ob_zw *z = calloc(1, sizeof(*z));
    if (!z || !(z->in = malloc(frame))) {
        free(z);
        return CM_ERR_NOMEM;
    }
    z->level = level;
    z->frame = frame;
    *out = z;
    return CM_OK;
}

void ob_zw_free(ob_zw *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->cctx);
    free(z->in);
    free(z->out);
    free(z->ends);
    free(z);
}

int ob_zw_raw(const ob_zw *z)
{
    return z->state == Z_RAW;
}

static cm_err note_frame(ob_zw *z, size_t stored)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? 2 * z->cap : 64;
        uint64_t *e = realloc(z->ends, cap * sizeof(*e));
        if (!e)
            return CM_ERR_NOMEM;
        z->ends = e;
        z->cap = cap;
    }
    z->stored += stored;
    z->ends[z->n++] = z->stored;
    return CM_OK;
}

/* Decide and send the frame in z->in (fill bytes) to the sink. */
static cm_err flush_frame(ob_zw *z, ob_zsink sink, void *arg)
{
    size_t n = z->fill, packed = 0;
    int tried = z->state != Z_ON || z->skip == 0;
    z->fill = 0;
    if (tried)
        packed = ob_z_compress(z, z->in, n);
    else
        z->skip--;
    if (z->state == Z_TEST) {
        z->state = ob_z_worth(n, packed) ? Z_ON : Z_RAW;
        if (z->state == Z_RAW) { /* the body goes uncompressed: no table, no frames */
            z->stored += n;
            return sink(arg, z->in, n);
        }
    }
    if (tried && packed != 0)
        z->misses = 0;
    else if (tried && ++z->misses >= OB_Z_MISSES)
        z->skip = OB_Z_RETRY - 1; /* misses stays high: one more miss skips again */
    cm_err e = note_frame(z, packed ? packed : n);
    return e != CM_OK ? e : sink(arg, packed ? z->out : z->in, packed ? packed : n);
}

cm_err ob_zw_write(ob_zw *z, const void *data, size_t len, ob_zsink sink, void *arg)
{
    const uint8_t *p = data;
    z->logical += len;
    while (len > 0) {
        if (z->state == Z_RAW) {
            z->stored += len;
            return sink(arg, p, len);
        }
        size_t n = CM_MIN(len, z->frame - z->fill);
        memcpy(z->in + z->fill, p, n); /* a frame must be whole before it is compressed */
        z->fill += n;
        p += n;
        len -= n;
        if (z->fill == z->frame) {
            cm_err e = flush_frame(z, sink, arg);
            if (e != CM_OK)
                return e;
        }
    }
    return CM_OK;
}

cm_err ob_zw_write_some(ob_zw *z, const void *data, size_t len, ob_zsink sink, void *arg,
                        size_t *used)
{
    const uint8_t *p = data;
    *used = 0;
    while (len > 0 && z->state != Z_RAW) {
        size_t n = CM_MIN(len, z->frame - z->fill);
        memcpy(z->in + z->fill, p, n);
        z->fill += n;
        z->logical += n;
        *used += n;
        p += n;
        len -= n;
        if (z->fill == z->frame) {
            cm_err e = flush_frame(z, sink, arg);
            if (e != CM_OK)
                return e;
        }
    }
    return CM_OK;
}

cm_err ob_zw_finish(ob_zw *z, ob_zsink sink, void *arg, md_layout *lay)
{
    cm_err e = z->fill > 0 ? flush_frame(z, sink, arg) : CM_OK;
    lay->zalg = MD_Z_NONE;
    lay->zframe = 0;
    lay->zsize = lay->ztab = 0;
    if (e != CM_OK || z->state != Z_ON)
        return e;
    uint8_t b[512];
    uint64_t tab = z->stored;
    for (size_t i = 0; e == CM_OK && i < z->n; i += sizeof(b) / 8) {
        size_t c = CM_MIN(z->n - i, sizeof(b) / 8);
        for (size_t j = 0; j < c; j++)
            cm_put_be64(b + 8 * j, z->ends[i + j]);
        e = sink(arg, b, 8 * c);
    }
    z->stored += 8 * (uint64_t)z->n;
    lay->zalg = MD_Z_ZSTD;
    lay->zframe = z->frame;
    lay->zsize = z->logical;
    lay->ztab = tab;
    return e;
}

void ob_zw_counts(const ob_zw *z, uint64_t *logical, uint64_t *stored)
{
    *logical = z->logical;
    *stored = z->stored;
}

/* ---- reads ---- */

cm_err ob_z_check(const md_layout *lay)
{
    if (lay->zalg != MD_Z_ZSTD || lay->zframe == 0 || lay->zframe > OB_Z_FRAME_MAX)
        return CM_ERR_CORRUPT;
    uint64_t n = lay->zsize / lay->zframe + (lay->zsize % lay->zframe != 0);
    if (lay->ztab > lay->size || (lay->size - lay->ztab) / 8 != n || (lay->size - lay->ztab) % 8)
        return CM_ERR_CORRUPT;
    return CM_OK;
}

typedef struct {
    const md_layout *lay;
    ob_zsrc src;
    void *arg;
    uint8_t *packed; /* a compressed frame, read from the stream */
    uint8_t *whole;  /* a decoded frame, when only part of it is wanted */
} zread;

/* Bytes [a, b) of frame f, stored at [start, end), into dst. */
static cm_err read_frame(zread *r, uint64_t f, uint64_t start, uint64_t end, uint64_t a, uint64_t b,
                         uint8_t *dst)
{
    const md_layout *lay = r->lay;
    uint64_t flen = CM_MIN((uint64_t)lay->zframe, lay->zsize - f * lay->zframe);
    if (end < start || end > lay->ztab || end - start > flen) {
        CM_ERROR(MOD, "compressed body: frame %llu has a bad table entry", (unsigned long long)f);
        return CM_ERR_CORRUPT;
    }
    if (end - start == flen) /* raw */
        return r->src(r->arg, start + a, dst, (size_t)(b - a));
    if (!r->packed && !(r->packed = malloc(lay->zframe)))
        return CM_ERR_NOMEM;
    cm_err e = r->src(r->arg, start, r->packed, (size_t)(end - start));
    int whole = a == 0 && b == flen;
    if (e == CM_OK && !whole && !r->whole && !(r->whole = malloc(lay->zframe)))
        e = CM_ERR_NOMEM;
    if (e != CM_OK)
        return e;
    e = ob_z_decode(r->packed, (size_t)(end - start), whole ? dst : r->whole, (size_t)flen);
    if (e == CM_ERR_CORRUPT)
        CM_ERROR(MOD, "compressed body: frame %llu does not decode", (unsigned long long)f);
    if (e == CM_OK && !whole)
        memcpy(dst, r->whole + a, (size_t)(b - a));
    return e;
}

cm_err ob_z_read(const md_layout *lay, uint64_t off, void *buf, size_t len, ob_zsrc src, void *arg)
{
    if (off > lay->zsize || len > lay->zsize - off)
        return CM_ERR_RANGE;
    if (len == 0)
        return CM_OK;
    cm_err e = ob_z_check(lay);
    if (e != CM_OK) {
        CM_ERROR(MOD, "compressed body: layout does not match its stream");
        return e;
    }
    uint64_t F = lay->zframe, f0 = off / F, f1 = (off + len - 1) / F;
    uint64_t t0 = f0 > 0 ? f0 - 1 : 0, nt = f1 - t0 + 1; /* table entries wanted */
    uint8_t *tab = malloc((size_t)nt * 8);
    if (!tab)
        return CM_ERR_NOMEM;
    e = src(arg, lay->ztab + 8 * t0, tab, (size_t)nt * 8);
    zread r = {lay, src, arg, NULL, NULL};
    uint8_t *out = buf;
    for (uint64_t f = f0; e == CM_OK && f <= f1; f++) {
        uint64_t start = f > 0 ? cm_get_be64(tab + 8 * (f - 1 - t0)) : 0;
        uint64_t end = cm_get_be64(tab + 8 * (f - t0));
        uint64_t a = CM_MAX(off, f * F) - f * F;
        uint64_t b = CM_MIN(off + len, f * F + F) - f * F;
        b = CM_MIN(b, lay->zsize - f * F);
        e = read_frame(&r, f, start, end, a, b, out);
        out += b - a;
    }
    free(tab);
    free(r.packed);
    free(r.whole);
    return e;
}
