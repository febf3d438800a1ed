/*
 * fuzz_cond.c - libFuzzer target for the Range and conditional headers of GET, HEAD and
 * CopyObject (gw_range_parse, gw_copy_range_parse, gw_etag_match, gw_cond_check).
 *
 * Input: byte 0 picks the object size (from a table that includes 0, 1 and huge sizes) and
 * whether the copy-source rules apply; bytes 1..8 are the object's mtime (big-endian ms, folded
 * into years 1970..9999); the rest is newline-separated header values in the order Range,
 * If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, x-amz-copy-source-range
 * ("-" or a missing line = header absent).
 *
 * Oracles, from the contracts in gw_wire.h rather than from the code:
 *  - an applied range lies inside the object ([first, last], first <= last < size), and so does a
 *    copy-source range that parses;
 *  - a range the target writes itself from two numbers of the input ("bytes=a-b", "bytes=a-",
 *    "bytes=-n") gives exactly the documented answer;
 *  - gw_cond_check answers 200, 304 or 412, never 304 for copy sources; a failing If-Match is
 *    always 412; a matching If-None-Match is never 200;
 *  - the object's own ETag matches in every form a client sends ("e", W/"e", bare e, *, inside a
 *    list), and If-Modified-Since / If-Unmodified-Since written from the object's mtime give 304
 *    and 200, one second earlier 200 and 412.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_util.h"
#include "fuzz_util.h"
#include "gw_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 6
#define ETAG "d41d8cd98f00b204e9800998ecf8427e"
#define MAX_SECONDS 253402300799LL /* 9999-12-31T23:59:59Z */

static const uint64_t sizes[] = {0, 1, 2, 10, 1000, 5u << 20, UINT64_MAX / 2, UINT64_MAX};

static void check_range(const char *hdr, uint64_t size)
{
    int applies = 0;
    uint64_t first = 0, last = 0;
    gw_s3err e = gw_range_parse(hdr, size, &applies, &first, &last);
    if (e != GW_OK && e != GW_INVALID_RANGE)
        abort();
    if (e == GW_OK && applies && (first > last || last >= size))
        abort();
    if (gw_copy_range_parse(hdr, size, &first, &last) == GW_OK && (first > last || last >= size))
        abort();
}

/* bytes=a-b, bytes=a- and bytes=-n built here: their answers are fully specified. */
static void check_written_range(uint64_t a, uint64_t b, uint64_t size)
{
    char hdr[64];
    int applies = 0;
    uint64_t first = 0, last = 0;
    gw_s3err e;

    snprintf(hdr, sizeof(hdr), "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)b);
    e = gw_range_parse(hdr, size, &applies, &first, &last);
    if (a > b) {
        if (e == GW_OK && applies)
            abort(); /* not a valid range: the whole object */
    } else if (a >= size) {
        if (e != GW_INVALID_RANGE)
            abort();
    } else if (e != GW_OK || !applies || first != a || last != (b < size ? b : size - 1)) {
        abort();
    }
    snprintf(hdr, sizeof(hdr), "bytes=%llu-", (unsigned long long)a);
    e = gw_range_parse(hdr, size, &applies, &first, &last);
    if (a >= size ? e != GW_INVALID_RANGE
                  : (e != GW_OK || !applies || first != a || last != size - 1))
        abort();
    snprintf(hdr, sizeof(hdr), "bytes=-%llu", (unsigned long long)b);
    e = gw_range_parse(hdr, size, &applies, &first, &last);
    if (b == 0 || size == 0) {
        if (e != GW_INVALID_RANGE)
            abort();
    } else if (e != GW_OK || !applies || last != size - 1 || first != (b >= size ? 0 : size - b)) {
        abort();
    }
}

static void check_etag_forms(const char *extra)
{
    char list[512];
    const char *forms[] = {"\"" ETAG "\"", "W/\"" ETAG "\"", ETAG, "*", " \"" ETAG "\" "};
    for (size_t i = 0; i < CM_ARRAY_LEN(forms); i++) {
        if (!gw_etag_match(forms[i], ETAG))
            abort();
        if (gw_etag_match(forms[i], NULL))
            abort(); /* no object: nothing matches, not even "*" */
    }
    /* The ETag after any well-formed tag still matches. */
    if (strlen(extra) < 200 && !strpbrk(extra, "\",\\")) {
        snprintf(list, sizeof(list), "\"%s\", \"" ETAG "\"", extra);
        if (!gw_etag_match(list, ETAG))
            abort();
    }
}

static void check_dates(int64_t mtime_ms)
{
    char d[32];
    time_t secs = (time_t)(mtime_ms >= 0 ? mtime_ms / 1000 : -((-mtime_ms + 999) / 1000));
    cm_time_rfc1123(secs, d);
    if (gw_cond_check(NULL, NULL, d, NULL, ETAG, mtime_ms, 0) != GW_NOT_MODIFIED ||
        gw_cond_check(NULL, NULL, NULL, d, ETAG, mtime_ms, 0) != GW_OK)
        abort();
    cm_time_rfc1123(secs - 1, d);
    if (gw_cond_check(NULL, NULL, d, NULL, ETAG, mtime_ms, 0) != GW_OK ||
        gw_cond_check(NULL, NULL, NULL, d, ETAG, mtime_ms, 1) != GW_PRECONDITION_FAILED)
        abort();
}

static void check_conditions(char *const f[NFIELDS], int64_t mtime_ms, int copy)
{
    gw_s3err e = gw_cond_check(f[1], f[2], f[3], f[4], ETAG, mtime_ms, copy);
    if (e != GW_OK && e != GW_NOT_MODIFIED && e != GW_PRECONDITION_FAILED)
        abort();
    if (copy && e == GW_NOT_MODIFIED)
        abort();
    if (f[1] && !gw_etag_match(f[1], ETAG) && e != GW_PRECONDITION_FAILED)
        abort();
    if (f[2] && gw_etag_match(f[2], ETAG) && e == GW_OK)
        abort();
    /* The same headers against a missing object never crash, and If-Match then fails. */
    e = gw_cond_check(f[1], f[2], f[3], f[4], NULL, mtime_ms, copy);
    if (f[1] && e != GW_PRECONDITION_FAILED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    uint64_t obj_size = sizes[data[0] % CM_ARRAY_LEN(sizes)];
    int copy = (data[0] >> 3) & 1;
    int64_t mtime_ms = (int64_t)(cm_get_be64(data + 1) % (uint64_t)(MAX_SECONDS * 1000));

    char *text = fuzz_text(data + 9, size - 9);
    if (!text)
        return 0;
    char *f[NFIELDS] = {0};
    size_t n = fuzz_lines(text, f, NFIELDS);
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i], "-") == 0)
            f[i] = NULL;
    if (f[0])
        check_range(f[0], obj_size);
    if (f[5])
        check_range(f[5], obj_size);
    check_written_range(cm_get_be64(data + 1) % 4096, (uint64_t)data[0] * 37 % 5000, obj_size);
    check_written_range(cm_get_be64(data + 1), obj_size - (data[0] & 3), obj_size);
    check_etag_forms(f[1] ? f[1] : "");
    check_dates(mtime_ms);
    check_conditions(f, mtime_ms, copy);
    free(text);
    return 0;
}
