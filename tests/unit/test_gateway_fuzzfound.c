/*
 * test_gateway_fuzzfound.c - what the fuzz targets (tests/fuzz/) found in the gateway, one test
 * per finding; the inputs themselves are in tests/fuzz/corpus/<target>/ (seeds and regress-*).
 *
 *  - fuzz_sigv2: AWS sorts the x-amz-* headers of the SigV2 StringToSign by their lowercased
 *    names. gw_sigv2.c sorted the names as received, so a request mixing "X-Amz-Meta-..." with
 *    "x-amz-acl" (AWS's own upload example) was answered SignatureDoesNotMatch.
 *  - fuzz_chunked: a trailer line holding a NUL byte was copied with strndup (stopping at the
 *    NUL) and then hashed for its full length, reading past the copy (ASan heap-buffer-overflow
 *    in signed-trailer mode; in unsigned-trailer mode the value was silently cut at the NUL).
 */
#include <string.h>

#include <event2/buffer.h>

#include "cu_main.h"
#include "gw_auth.h"

#define AK "AKIAIOSFODNN7EXAMPLE"

static cm_err secret(void *arg, const char *access_key, char *out, size_t cap)
{
    (void)arg;
    if (strcmp(access_key, AK) != 0)
        return CM_ERR_NOTFOUND;
    if (cap < 41)
        return CM_ERR_TOOBIG;
    memcpy(out, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 41);
    return CM_OK;
}

/* AWS's "Upload" example of RESTAuthentication (path-style target, Date header). */
static void test_upload_example_mixed_case(void)
{
    const char *names[] = {"User-Agent",
                           "Host",
                           "Date",
                           "x-amz-acl",
                           "content-type",
                           "Content-MD5",
                           "X-Amz-Meta-ReviewedBy",
                           "X-Amz-Meta-ReviewedBy",
                           "X-Amz-Meta-FileChecksum",
                           "X-Amz-Meta-ChecksumAlgorithm",
                           "Content-Disposition",
                           "Content-Encoding",
                           "Content-Length",
                           "Authorization"};
    const char *values[] = {"curl/7.15.5",
                            "static.johnsmith.net:8080",
                            "Tue, 27 Mar 2007 21:06:08 +0000",
                            "public-read",
                            "application/x-download",
                            "4gJE4saaMU4BqNR0kLY+lw==",
                            "joe@johnsmith.net",
                            "jane@johnsmith.net",
                            "0x02661779",
                            "crc32",
                            "attachment; filename=database.dat",
                            "gzip",
                            "5913339",
                            "AWS " AK ":ilyl83RwaSoYIEdixDQcA4OnAnc="};
    gw_auth_request req = {.method = "PUT",
                           .target = "/static.johnsmith.net/db-backup.dat.gz",
                           .nheaders = sizeof(names) / sizeof(names[0]),
                           .names = names,
                           .values = values,
                           .now = 1175029568}; /* the example's Date */
    gw_auth_result r;
    memset(&r, 0, sizeof(r));
    CU_ASSERT_EQUAL(gw_sigv2_check(&req, NULL, secret, NULL, &r), GW_OK);
    CU_ASSERT_STRING_EQUAL(r.access_key, AK);

    /* The same names in another case and order sign the same string. */
    names[3] = "X-AMZ-ACL";
    names[6] = "x-amz-meta-reviewedby";
    names[9] = "x-Amz-meta-checksumalgorithm";
    CU_ASSERT_EQUAL(gw_sigv2_check(&req, NULL, secret, NULL, &r), GW_OK);
    values[7] = "someone@else"; /* a signed value changed */
    CU_ASSERT_EQUAL(gw_sigv2_check(&req, NULL, secret, NULL, &r), GW_SIGNATURE_MISMATCH);
}

/*
 * A NUL inside a trailer line is refused, not cut short (unsigned-trailer mode; the signed mode's
 * over-read is the corpus input regress-trailer-nul-overread, which ASan reports).
 */
static void test_chunked_trailer_nul(void)
{
    static const char body[] = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhC\0mhg==\r\n\r\n";
    gw_auth_result a;
    gw_chunked *d = NULL;
    memset(&a, 0, sizeof(a));
    a.mode = GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, "x-amz-checksum-crc32", &d), CM_OK);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, body, sizeof(body) - 1);
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_INVALID_REQUEST);
    CU_ASSERT_FALSE(gw_chunked_done(d));
    CU_ASSERT_PTR_NULL(gw_chunked_trailer(d, "x-amz-checksum-crc32"));
    evbuffer_free(in);
    evbuffer_free(out);
    gw_chunked_free(d);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"sigv2_upload_example_mixed_case", test_upload_example_mixed_case},
        {"chunked_trailer_nul", test_chunked_trailer_nul},
        {NULL, NULL},
    };
    cu_add_suite("fuzzfound", tests);
}
