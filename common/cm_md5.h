/*
 * cm_md5.h - MD5 of several independent streams at once (the ETags of the PUTs one event loop is
 * receiving), in the SIMD lanes of one instruction stream.
 *
 * MD5 of one stream is a chain of 64 dependent steps per block, so one stream cannot go faster
 * than the chain's latency; a vector instruction runs that chain for eight streams in the time of
 * one. cm_md5_update_many takes a batch of (context, bytes) jobs and feeds whole 64-byte blocks of
 * up to eight contexts through one kernel call. On CPUs with AVX-512F and AVX-512VL the kernel
 * uses 256-bit registers (three-input logic and rotate in one instruction each), and a stream
 * hashed alone runs on the general registers, which are faster for one; elsewhere every
 * context is OpenSSL's MD5 (cm_ck) and a batch is hashed job after job. Results are the same MD5
 * either way (tests/unit/test_common_md5.c checks both against OpenSSL).
 *
 * A context belongs to one thread at a time; cm_md5_update_many is reentrant (no shared state
 * besides the CPU check, made once).
 */
#ifndef CM_MD5_H
#define CM_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "cm_checksum.h"
#include "cm_err.h"

typedef struct {
    int simd;      /* 1: the fields below; 0: ck */
    uint32_t h[4]; /* chaining value */
    uint64_t len;  /* bytes taken so far; len % 64 of them wait in buf */
    uint8_t buf[64];
    cm_ck ck; /* OpenSSL's MD5 (no AVX-512 on this CPU) */
} cm_md5;

/* One job of a batch: add n bytes at p to m. */
typedef struct {
    cm_md5 *m;
    const void *p;
    size_t n;
} cm_md5_job;

/* Start a context: the SIMD kernel when the CPU has it, else OpenSSL. CM_ERR_NOMEM (OpenSSL). */
cm_err cm_md5_init(cm_md5 *m);
/* The same, on OpenSSL whatever the CPU (tests compare the two paths). */
cm_err cm_md5_init_openssl(cm_md5 *m);
void cm_md5_update(cm_md5 *m, const void *p, size_t n);
/*
 * Apply njobs jobs, each as cm_md5_update(job.m, job.p, job.n) would: jobs naming the same
 * context are applied in array order; jobs of different contexts share the kernel's lanes. The
 * contexts must all come from the same init (all SIMD or all OpenSSL).
 */
void cm_md5_update_many(const cm_md5_job *jobs, int njobs);
/* Write the 16-byte digest and release the context. */
void cm_md5_final(cm_md5 *m, uint8_t out[16]);
/* Release without a result (abort paths); safe after final and on a zeroed context. */
void cm_md5_release(cm_md5 *m);
/* "avx512vl-x8" or "openssl": what cm_md5_init picks on this CPU. */
const char *cm_md5_impl(void);

#endif
