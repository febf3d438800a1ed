/*
 * cmd/bench_sign.c - SigV4 signing for `cairn bench`.
 *
 * Requests are signed over host, x-amz-content-sha256 and x-amz-date with the payload hash
 * UNSIGNED-PAYLOAD: hashing a body would cost the client as much CPU as the server spends on it and
 * distort the measurement (the server still computes the ETag MD5 of every body). The signing key
 * (four HMACs) is derived once per UTC day and cached, and the x-amz-date string once per second,
 * so a request costs one SHA-256 of its canonical request and one HMAC.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "gw_auth.h"

#define SIGNED_HEADERS "host;x-amz-content-sha256;x-amz-date"

static void refresh(bench_signer *s, time_t now)
{
    if (now == s->amz_time && s->amz_date[0])
        return;
    s->amz_time = now;
    cm_time_amzdate(now, s->amz_date);
    if (memcmp(s->date, s->amz_date, 8) != 0 || !s->date[0]) {
        memcpy(s->date, s->amz_date, 8);
        s->date[8] = '\0';
        gw_sigv4_signing_key(s->secret_key, s->date, s->region, "s3", s->key);
        s->derivations++;
    }
}

void bench_sign(bench_signer *s, time_t now, const char *method, const char *host, const char *path,
                const char *query, char amz_date[17], char *auth, size_t authcap)
{
    char creq[2048], sts[512];
    uint8_t digest[32], sig[32];
    char hex[65], sighex[65];

    refresh(s, now);
    snprintf(creq, sizeof(creq),
             "%s\n%s\n%s\nhost:%s\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:%s\n\n"
             "%s\nUNSIGNED-PAYLOAD",
             method, path, query, host, s->amz_date, SIGNED_HEADERS);
    cm_ck_digest(CM_CK_SHA256, creq, strlen(creq), digest);
    cm_hex_encode(digest, sizeof(digest), hex);
    int n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s",
                     s->amz_date, s->date, s->region, hex);
    cm_hmac_sha256(s->key, sizeof(s->key), sts, (size_t)n, sig);
    cm_hex_encode(sig, sizeof(sig), sighex);
    memcpy(amz_date, s->amz_date, 17);
    snprintf(auth, authcap,
             "AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, SignedHeaders=%s, "
             "Signature=%s",
             s->access_key, s->date, s->region, SIGNED_HEADERS, sighex);
}
