/*
 * fuzz_xml.c - libFuzzer target for the S3 request bodies parsed with libxml2
 * (CompleteMultipartUpload, Delete, VersioningConfiguration, CreateBucketConfiguration, Tagging)
 * and for the query-string, range, copy-source and x-amz-tagging parsers that see client bytes.
 *
 * Oracles: no crash, leak or sanitizer report; parsed results respect the documented bounds
 * (1..10000 parts with strictly ascending numbers in 1..10000, NUL-terminated ETags and checksums,
 * 1..1000 delete entries, at most 4 x 50 tags whose every key and value is a string).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_bodies(const char *xml, size_t len)
{
    gw_complete_req c;
    if (gw_parse_complete(xml, len, 1 << 20, &c) == GW_OK) {
        if (c.n < 1 || c.n > GW_MAX_PARTS)
            abort();
        for (size_t i = 0; i < c.n; i++) {
            const gw_complete_part *p = &c.parts[i];
            if (p->number < 1 || p->number > GW_MAX_PARTS ||
                (i > 0 && p->number <= c.parts[i - 1].number))
                abort();
            if (!memchr(p->etag, 0, sizeof(p->etag)) ||
                !memchr(p->ck_value, 0, sizeof(p->ck_value)))
                abort();
        }
        gw_complete_req_release(&c);
    }
    gw_delete_req d;
    if (gw_parse_delete(xml, len, 1 << 20, &d) == GW_OK) {
        if (d.n < 1 || d.n > GW_MAX_DELETE)
            abort();
        gw_delete_req_release(&d);
    }
    gw_versioning v;
    int mfa;
    gw_parse_versioning(xml, len, 1 << 20, &v, &mfa);
    char *loc = NULL;
    if (gw_parse_create_bucket(xml, len, 1 << 20, &loc) == GW_OK)
        free(loc);
    md_meta *tags;
    size_t n;
    char msg[200];
    if (gw_parse_tagging(xml, len, 1 << 20, &tags, &n) == GW_OK) {
        if (n > 4 * GW_MAX_BUCKET_TAGS)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (!tags[i].name || !tags[i].value)
                abort();
        }
        gw_tags_check(tags, n, GW_MAX_OBJECT_TAGS, msg, sizeof(msg));
        md_meta_free(tags, n);
    }
}

static void parse_lines(const char *s, size_t len)
{
    char *z = malloc(len + 1);
    if (!z)
        return;
    memcpy(z, s, len);
    z[len] = '\0';
    gw_query q;
    if (gw_query_parse(&q, z, strlen(z)) == GW_OK)
        gw_query_release(&q);
    int applies;
    uint64_t first, last;
    if (gw_range_parse(z, 1000, &applies, &first, &last) == GW_OK && applies &&
        (first > last || last >= 1000))
        abort();
    gw_copy_source cs;
    if (gw_copy_source_parse(z, &cs) == GW_OK)
        gw_copy_source_release(&cs);
    gw_etag_match(z, "d41d8cd98f00b204e9800998ecf8427e");
    md_meta *tags;
    size_t n;
    char msg[200];
    if (gw_tags_from_query(z, &tags, &n, msg, sizeof(msg)) == GW_OK) {
        gw_tags_check(tags, n, GW_MAX_OBJECT_TAGS, msg, sizeof(msg));
        md_meta_free(tags, n);
    }
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_bodies((const char *)data, size);
    parse_lines((const char *)data, size);
    return 0;
}
