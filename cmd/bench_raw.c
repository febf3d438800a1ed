/*
 * cmd/bench_raw.c - `cairn bench --raw`: what one core can do, in-process, with the code the
 * server uses: ISA-L Reed-Solomon 4+2 encode (erasure/ec.h, 256 KiB cells, MB/s of data in), and
 * the digests of common/cm_checksum.h (MD5, SHA-256, CRC32C, CRC64NVME) over a 1 MiB buffer, and
 * MD5 of 2 and 4 streams at once (common/cm_md5.h: the buffer's halves or quarters, one context
 * each, hashed by one cm_md5_update_many; MB/s of all streams together, as a loop hashing that
 * many uploads gets). Each kernel runs repeatedly for the given time on one thread; MB is 10^6
 * bytes.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_md5.h"
#include "ec.h"

#define RAW_BUF ((size_t)1 << 20)
#define EC_CELL ((size_t)256 << 10)

typedef struct {
    const char *name;
    double mbps;
} raw_result;

typedef struct {
    uint8_t *buf;
    ec_codec *ec;
    uint8_t *parity[2];
    volatile uint64_t sink; /* keeps the compiler from dropping the work */
} raw_ctx;

/* MD5 of the buffer cut into n streams, hashed together. */
static void md5_streams(raw_ctx *x, int n)
{
    cm_md5 m[4];
    cm_md5_job jobs[4];
    uint8_t d[16];
    for (int i = 0; i < n; i++) {
        cm_md5_init(&m[i]);
        jobs[i].m = &m[i];
        jobs[i].p = x->buf + (size_t)i * (RAW_BUF / (size_t)n);
        jobs[i].n = RAW_BUF / (size_t)n;
    }
    cm_md5_update_many(jobs, n);
    for (int i = 0; i < n; i++) {
        cm_md5_final(&m[i], d);
        x->sink += d[0];
    }
}

/* Process `bytes` bytes once with kernel i. */
static size_t run_kernel(raw_ctx *x, int i)
{
    uint8_t d[32];
    switch (i) {
    case 0: {
        uint8_t *data[4];
        for (int k = 0; k < 4; k++)
            data[k] = x->buf + (size_t)k * EC_CELL;
        ec_encode(x->ec, EC_CELL, data, x->parity);
        x->sink += x->parity[0][0];
        return 4 * EC_CELL;
    }
    case 1:
        cm_ck_digest(CM_CK_MD5, x->buf, RAW_BUF, d);
        break;
    case 2:
        cm_ck_digest(CM_CK_SHA256, x->buf, RAW_BUF, d);
        break;
    case 3:
        x->sink += cm_crc32c(0, x->buf, RAW_BUF);
        return RAW_BUF;
    case 5:
    case 6:
        md5_streams(x, i == 5 ? 2 : 4);
        return RAW_BUF;
    default:
        x->sink += cm_crc64nvme(0, x->buf, RAW_BUF);
        return RAW_BUF;
    }
    x->sink += d[0];
    return RAW_BUF;
}

static double measure(raw_ctx *x, int i, double seconds)
{
    uint64_t bytes = 0, t0 = bench_now_ns(), limit = (uint64_t)(seconds * 1e9), el;
    run_kernel(x, i); /* warm caches and lazy initialisation */
    t0 = bench_now_ns();
    do {
        bytes += run_kernel(x, i);
        el = bench_now_ns() - t0;
    } while (el < limit);
    return (double)bytes / ((double)el / 1e9) / 1e6;
}

int bench_raw(double seconds, int json)
{
    static const char *const names[] = {"ec_4+2_encode", "md5",    "sha256", "crc32c",
                                        "crc64nvme",     "md5_x2", "md5_x4"};
    enum { NKERNELS = sizeof(names) / sizeof(names[0]) };
    raw_result res[NKERNELS];
    raw_ctx x = {0};
    int rc = 1;

    x.buf = malloc(RAW_BUF);
    x.parity[0] = malloc(EC_CELL);
    x.parity[1] = malloc(EC_CELL);
    if (!x.buf || !x.parity[0] || !x.parity[1] || ec_new(4, 2, &x.ec) != CM_OK) {
        fprintf(stderr, "cairn bench: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < RAW_BUF; i++)
        x.buf[i] = (uint8_t)(i * 2654435761u >> 13);
    for (int i = 0; i < NKERNELS; i++) {
        res[i].name = names[i];
        res[i].mbps = measure(&x, i, seconds);
    }
    if (json) {
        printf("{\"raw\": {");
        for (int i = 0; i < NKERNELS; i++)
            printf("%s\"%s\": %.1f", i ? ", " : "", res[i].name, res[i].mbps);
        printf("}, \"unit\": \"MB/s per core\"}\n");
    } else {
        printf("%-16s %12s\n", "kernel", "MB/s/core");
        for (int i = 0; i < NKERNELS; i++)
            printf("%-16s %12.1f\n", res[i].name, res[i].mbps);
    }
    rc = 0;
out:
    ec_free(x.ec);
    free(x.parity[0]);
    free(x.parity[1]);
    free(x.buf);
    return rc;
}
