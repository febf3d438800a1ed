/*
 * fuzz_form.c - libFuzzer target for POST Object's multipart/form-data parser and policy check
 * (gw_post.h).
 *
 * The first input byte picks how the rest is split into feeds (so incremental parsing is
 * exercised, deterministically for a given input); the rest is a form body with boundary "XyZ".
 * When the file part begins, the fields go through the policy check as the gateway would, with
 * x-amz-signature replaced by the right signature of whatever the policy field holds, so the
 * base64 and JSON paths behind the signature are reached too. Oracles: no crash or sanitizer
 * report; the parser never keeps more than its bounds plus one feed; file output never larger
 * than the input; once the parser reports an error, it reports one again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "gw_post.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cm_err secret_of(void *arg, const char *ak, char *secret, size_t cap)
{
    (void)arg;
    (void)ak;
    snprintf(secret, cap, "fuzz-secret");
    return CM_OK;
}

static void check_policy(const gw_form *f)
{
    size_t n;
    const gw_form_field *fs = gw_form_fields(f, &n);
    gw_form_field *copy = calloc(n + 1, sizeof(*copy));
    uint8_t key[32], mac[32];
    char sig[65] = "";
    if (!copy)
        return;
    if (n)
        memcpy(copy, fs, n * sizeof(*copy));
    const gw_form_field *pol = gw_form_get(fs, n, "policy");
    if (pol) {
        gw_sigv4_signing_key("fuzz-secret", "20261205", "us-east-1", "s3", key);
        cm_hmac_sha256(key, 32, pol->value, strlen(pol->value), mac);
        cm_hex_encode(mac, 32, sig);
        for (size_t i = 0; i < n; i++)
            if (strcasecmp(copy[i].name, "x-amz-signature") == 0)
                copy[i].value = sig;
    }
    gw_post_request rq = {.bucket = "web",
                          .fields = copy,
                          .nfields = n,
                          .now = 1796464800,
                          .region = "us-east-1",
                          .secret = secret_of};
    gw_post_policy out;
    (void)gw_post_policy_check(&rq, &out);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_form *f = NULL;
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 97;
    data++, size--;
    if (gw_form_new("multipart/form-data; boundary=XyZ", &f) != GW_OK)
        return 0;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    gw_s3err e = GW_OK;
    int checked = 0;
    size_t bound = GW_FORM_MAX_FIELD_BYTES + GW_FORM_MAX_HEADER + GW_FORM_MAX_PREAMBLE + 16;
    for (size_t off = 0; off < size && e == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        evbuffer_add(in, data + off, n);
        e = gw_form_feed(f, in, out);
        if (e == GW_OK && !checked && gw_form_in_file(f)) {
            checked = 1;
            check_policy(f);
            e = gw_form_feed(f, in, out);
        }
        if (evbuffer_get_length(in) > bound + step)
            __builtin_trap();
    }
    if (evbuffer_get_length(out) > size)
        __builtin_trap();
    if (e != GW_OK && gw_form_feed(f, in, out) != e)
        __builtin_trap();
    (void)gw_form_filename(f);
    (void)gw_form_done(f);
    evbuffer_free(in);
    evbuffer_free(out);
    gw_form_free(f);
    return 0;
}
