/*
 * fuzz_chunked.c - libFuzzer target for the aws-chunked decoder.
 *
 * The first input byte picks how the rest is split into feeds (so incremental parsing is
 * exercised, deterministically for a given input); the rest goes through an unsigned-trailer
 * decoder (expecting x-amz-checksum-crc32) and through a signed-trailer decoder keyed with AWS's
 * example credentials. Oracles: no crash or sanitizer report, output never larger than input,
 * and once a decoder reports an error, further feeds report the same error.
 */
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "gw_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(gw_payload_mode mode, const char *trailer, const uint8_t *data, size_t size,
                size_t step)
{
    gw_auth_result a;
    gw_chunked *d = NULL;
    memset(&a, 0, sizeof(a));
    a.mode = mode;
    memcpy(a.date, "20130524", 9);
    memcpy(a.amz_date, "20130524T000000Z", 17);
    memcpy(a.region, "us-east-1", 10);
    memcpy(a.service, "s3", 3);
    memcpy(a.seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
           65);
    gw_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", a.date, a.region, a.service,
                         a.signing_key);
    if (gw_chunked_new(&a, trailer, &d) != CM_OK)
        return;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    gw_s3err e = GW_OK;
    for (size_t off = 0; off < size && e == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        evbuffer_add(in, data + off, n);
        e = gw_chunked_feed(d, in, out);
    }
    if (evbuffer_get_length(out) > size)
        __builtin_trap();
    if (e != GW_OK) {
        if (gw_chunked_feed(d, in, out) != e || gw_chunked_done(d))
            __builtin_trap();
    }
    (void)gw_chunked_trailer(d, "x-amz-checksum-crc32");
    evbuffer_free(in);
    evbuffer_free(out);
    gw_chunked_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    if (data[0] >= 192)
        step = size; /* one feed */
    run(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "x-amz-checksum-crc32", data + 1, size - 1, step);
    run(GW_PAYLOAD_STREAMING_SIGNED_TRAILER, NULL, data + 1, size - 1, step);
    run(GW_PAYLOAD_STREAMING_SIGNED, NULL, data + 1, size - 1, step);
    return 0;
}
