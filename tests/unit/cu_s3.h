/*
 * cu_s3.h - a SigV4-signed S3 request head (header authorization) for tests that talk HTTP to a
 * gateway in the process over a raw socket, so they control when body bytes are sent; the
 * answer read back, and the gateway's test config.
 */
#ifndef CU_S3_H
#define CU_S3_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "gw.h"
#include "gw_auth.h"

typedef struct {
    const char *method, *target; /* target: path[?query] as sent */
    int port;                    /* of 127.0.0.1, the Host */
    const char *region, *access_key, *secret_key;
    const char *payload; /* x-amz-content-sha256; NULL = UNSIGNED-PAYLOAD */
    uint64_t len;        /* Content-Length */
    int64_t decoded;     /* x-amz-decoded-content-length (signed) when >= 0 */
    const char *extra;   /* more header lines ("Name: v\r\n"), unsigned; NULL = none */
} cu_s3_req;

/* Write the head (through its blank line, Connection: close) into out; its length, or -1. */
static inline int cu_s3_head(const cu_s3_req *q, char *out, size_t cap)
{
    char host[32], amzdate[17], date[9], scope[64], hhex[65], sig[65], sts[256], dlen[24];
    uint8_t h[32], key[32], mac[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amzdate, 8);
    date[8] = '\0';
    snprintf(host, sizeof(host), "127.0.0.1:%d", q->port);
    snprintf(dlen, sizeof(dlen), "%lld", (long long)q->decoded);
    int dec = q->decoded >= 0;
    const char *names[] = {"host", "x-amz-content-sha256", "x-amz-date",
                           "x-amz-decoded-content-length"};
    const char *values[] = {host, q->payload ? q->payload : "UNSIGNED-PAYLOAD", amzdate, dlen};
    const char *signed_names = dec ? "host;x-amz-content-sha256;x-amz-date;"
                                     "x-amz-decoded-content-length"
                                   : "host;x-amz-content-sha256;x-amz-date";
    gw_auth_request ar = {.method = q->method,
                          .target = q->target,
                          .nheaders = dec ? 4 : 3,
                          .names = names,
                          .values = values};
    char *creq = gw_sigv4_canonical_request(&ar, signed_names, values[1], 0);
    if (!creq)
        return -1;
    cm_ck_digest(CM_CK_SHA256, creq, strlen(creq), h);
    free(creq);
    cm_hex_encode(h, 32, hhex);
    snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, q->region);
    int n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amzdate, scope, hhex);
    gw_sigv4_signing_key(q->secret_key, date, q->region, "s3", key);
    cm_hmac_sha256(key, 32, sts, (size_t)n, mac);
    cm_hex_encode(mac, 32, sig);
    n = snprintf(out, cap,
                 "%s %s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\nx-amz-content-sha256: %s\r\n"
                 "Content-Length: %llu\r\n%s%s%s%sConnection: close\r\n"
                 "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                 "Signature=%s\r\n\r\n",
                 q->method, q->target, host, amzdate, values[1], (unsigned long long)q->len,
                 dec ? "x-amz-decoded-content-length: " : "", dec ? dlen : "", dec ? "\r\n" : "",
                 q->extra ? q->extra : "", q->access_key, scope, signed_names, sig);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* Read a whole answer (the server closes: Connection: close) into out, NUL-terminated; close fd.
 * The HTTP status, 0 when there was none. */
static inline int cu_s3_answer(int fd, char *out, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.1 %d", &status);
    return status;
}

/* A test gateway's config: the defaults, its store in dir (created), the region and the root
 * credentials. 0, or -1 when dir cannot be made. */
static inline int cu_gw_config(gw_config *gc, const char *dir, const char *region, const char *ak,
                               const char *sk)
{
    if (cm_mkdir_durable(dir, 0755) != CM_OK)
        return -1;
    gw_config_defaults(gc);
    gc->data_dir = dir;
    gc->region = region;
    gc->access_key = ak;
    gc->secret_key = sk;
    return 0;
}

#endif
