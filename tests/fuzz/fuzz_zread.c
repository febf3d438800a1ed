/*
 * fuzz_zread.c - libFuzzer target for compressed bodies (obj/ob_zstd.c, docs/compression.md):
 * stored streams are bytes from disk, so hostile input.
 *
 * Input: bytes 0..1 the frame size (1..4096), 2..3 the body size, 4..5 the table offset, 6..9 a
 * range (offset, length, both taken modulo the body size), the rest the stored stream.
 *
 * Oracles: no crash, overrun, leak or sanitizer report; a read answers CM_OK, CM_ERR_CORRUPT,
 * CM_ERR_RANGE or CM_ERR_NOMEM, nothing else; when both the whole body and the range read CM_OK,
 * the range's bytes are the whole's at that offset (a stream cannot decode two ways). And the
 * stream bytes, written as a body through a compressing writer with the same frame size, read
 * back exactly (whole and the range).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "ob_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

typedef struct {
    const uint8_t *p;
    size_t len, cap;
    uint8_t *own;
} stream;

static cm_err src(void *arg, uint64_t off, void *buf, size_t len)
{
    stream *s = arg;
    if (off > s->len || len > s->len - off)
        return CM_ERR_RANGE;
    memcpy(buf, s->p + off, len);
    return CM_OK;
}

static cm_err sink(void *arg, const void *data, size_t len)
{
    stream *s = arg;
    if (s->len + len > s->cap) {
        size_t cap = (s->len + len) * 2;
        uint8_t *p = realloc(s->own, cap);
        if (!p)
            return CM_ERR_NOMEM;
        s->own = p;
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->own + s->len, data, len);
    s->len += len;
    return CM_OK;
}

static int allowed(cm_err e)
{
    return e == CM_OK || e == CM_ERR_CORRUPT || e == CM_ERR_RANGE || e == CM_ERR_NOMEM;
}

/* Hostile stream: whatever the layout says, reads stay in bounds and agree with each other. */
static void read_forged(const uint8_t *data, size_t size)
{
    md_layout lay;
    memset(&lay, 0, sizeof(lay));
    stream s = {data + 10, size - 10, 0, NULL};
    lay.zalg = MD_Z_ZSTD;
    lay.zframe = 1 + (uint32_t)(be16(data) % 4096);
    lay.zsize = be16(data + 2);
    lay.ztab = be16(data + 4);
    lay.size = s.len;
    if (lay.zsize == 0)
        return;
    uint64_t off = be16(data + 6) % lay.zsize;
    size_t len = (size_t)(be16(data + 8) % (lay.zsize - off + 1));
    uint8_t *whole = malloc(lay.zsize), *part = malloc(len + 1);
    if (!whole || !part)
        abort();
    cm_err ew = ob_z_read(&lay, 0, whole, lay.zsize, src, &s);
    cm_err ep = ob_z_read(&lay, off, part, len, src, &s);
    if (!allowed(ew) || !allowed(ep))
        abort();
    if (ew == CM_OK && ep == CM_OK && memcmp(whole + off, part, len) != 0)
        abort();
    free(whole);
    free(part);
}

/* The stream bytes as a body: stored through the writer, they read back exactly. */
static void round_trip(const uint8_t *data, size_t size)
{
    const uint8_t *body = data + 10;
    size_t n = size - 10;
    uint32_t frame = 1 + (uint32_t)(be16(data) % 4096);
    stream s = {NULL, 0, 0, NULL};
    md_layout lay;
    memset(&lay, 0, sizeof(lay));
    ob_zw *z = NULL;
    if (ob_zw_new(1, frame, &z) != CM_OK)
        return;
    size_t cut = n ? be16(data + 2) % (n + 1) : 0; /* two writes, split anywhere */
    if (ob_zw_write(z, body, cut, sink, &s) != CM_OK ||
        ob_zw_write(z, body + cut, n - cut, sink, &s) != CM_OK ||
        ob_zw_finish(z, sink, &s, &lay) != CM_OK) {
        ob_zw_free(z);
        free(s.own);
        return; /* out of memory */
    }
    ob_zw_free(z);
    lay.size = s.len;
    if (lay.zalg == MD_Z_NONE) { /* stored as it came */
        if (s.len != n || (n && memcmp(s.own, body, n) != 0))
            abort();
    } else if (n > 0) {
        uint8_t *got = malloc(n);
        if (!got || ob_z_read(&lay, 0, got, n, src, &s) != CM_OK || memcmp(got, body, n) != 0)
            abort();
        uint64_t off = be16(data + 6) % n;
        size_t len = (size_t)(be16(data + 8) % (n - off + 1));
        if (ob_z_read(&lay, off, got, len, src, &s) != CM_OK || memcmp(got, body + off, len))
            abort();
        free(got);
    }
    free(s.own);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_log_threshold = -1; /* corruption is logged at ERROR: expected here */
    if (size < 10)
        return 0;
    read_forged(data, size);
    round_trip(data, size);
    return 0;
}
