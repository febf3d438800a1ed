/*
 * fuzz_sigv4.c - libFuzzer target for request authentication: the Authorization header parsers
 * (SigV4 and SigV2), the presigned-query parsers and the canonical request builder.
 *
 * The input is split on newlines into: method, request-target, then "name:value" header lines.
 * Oracles: no crash or sanitizer report; any result is a valid gw_s3err; an anonymous result
 * never carries an access key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "gw_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32

static cm_err secret(void *arg, const char *access_key, char *out, size_t cap)
{
    (void)arg;
    if (strcmp(access_key, "AKIAIOSFODNN7EXAMPLE") != 0)
        return CM_ERR_NOTFOUND;
    snprintf(out, cap, "%s", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    return CM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    char *lines[MAX_HEADERS + 2];

    if (!text)
        return 0;
    size_t nlines = fuzz_lines(text, lines, MAX_HEADERS + 2);
    if (nlines < 2) {
        free(text);
        return 0;
    }
    size_t nh = 0;
    for (size_t i = 2; i < nlines; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        names[nh] = lines[i];
        values[nh++] = colon + 1;
    }
    gw_auth_request req = {.method = lines[0],
                           .target = lines[1],
                           .nheaders = nh,
                           .names = names,
                           .values = values,
                           .now = 1369353600, /* 2013-05-24, the AWS examples' date */
                           .vhost_bucket = nh & 1 ? "examplebucket" : NULL};
    gw_auth_result res;
    gw_s3err e = gw_auth_check(&req, "us-east-1", secret, NULL, &res);
    if ((unsigned)e >= GW_S3ERR__COUNT || (e == GW_OK && res.anonymous && res.access_key[0]))
        abort();
    char *canon = gw_sigv4_canonical_request(&req, "host;x-amz-date", "UNSIGNED-PAYLOAD", 0);
    free(canon);
    free(text);
    return 0;
}
