/*
 * gw_tagging.c - the wire side of S3 tags: checking a tag set against S3's limits, reading the
 * x-amz-tagging header (a URL query string) and writing the <Tagging> document. The XML body of
 * PutObjectTagging / PutBucketTagging is parsed by gw_parse_tagging (gw_xmlparse.c); the
 * requests themselves are served by gw_tagops.c.
 *
 * Limits (S3 API reference, "Categorizing your storage using tags" and the S3Tag type):
 *  - at most 10 tags per object (more: 400 BadRequest), 50 per bucket (more: 400 InvalidTag);
 *  - keys 1..128 Unicode characters, values 0..256, counted in code points of valid UTF-8;
 *  - keys unique (case-sensitive) and not starting with "aws:" (any case);
 *  - characters: letters, digits, white space and + - = . _ : / @ (S3's pattern
 *    [\p{L}\p{Z}\p{N}_.:/=+\-@]*). ASCII is checked exactly. Beyond ASCII cairn has no Unicode
 *    category table: every code point from U+00A0 on is taken as a letter, digit or space, so a
 *    non-ASCII symbol S3 would refuse is accepted; C0 and C1 controls are always refused.
 * A refused tag set is answered InvalidTag with a message naming what was wrong.
 *
 * Pure functions, no state.
 */
#include "gw_wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"

/* Code points in s, or -1 when s is not valid UTF-8 or holds a character tags cannot have. */
static long tag_chars(const char *s)
{
    size_t len = strlen(s);
    long n = 0;
    if (!gw_utf8_valid(s, len))
        return -1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            if (!isalnum(*p) && !strchr(" +-=._:/@", *p))
                return -1;
        } else if (*p == 0xC2 && p[1] < 0xA0) {
            return -1; /* U+0080..U+009F: C1 controls */
        }
        n += (*p & 0xC0) != 0x80; /* count lead bytes only */
    }
    return n;
}

gw_s3err gw_tags_check(const md_meta *tags, size_t n, size_t max, char *msg, size_t cap)
{
    if (n > max) {
        snprintf(msg, cap, "%s tags cannot be greater than %zu",
                 max == GW_MAX_OBJECT_TAGS ? "Object" : "Bucket", max);
        return max == GW_MAX_OBJECT_TAGS ? GW_BAD_REQUEST : GW_INVALID_TAG;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = tags[i].name, *v = tags[i].value;
        long kc = tag_chars(k), vc = tag_chars(v);
        if (kc < 1) {
            snprintf(msg, cap, "The TagKey you have provided is invalid");
            return GW_INVALID_TAG;
        }
        if (kc > GW_TAG_KEY_MAX) {
            snprintf(msg, cap, "The TagKey you have provided is too long, max %d", GW_TAG_KEY_MAX);
            return GW_INVALID_TAG;
        }
        if (strncasecmp(k, "aws:", 4) == 0) {
            snprintf(msg, cap, "Your TagKey cannot be prefixed with aws:");
            return GW_INVALID_TAG;
        }
        if (vc < 0) {
            snprintf(msg, cap, "The TagValue you have provided is invalid");
            return GW_INVALID_TAG;
        }
        if (vc > GW_TAG_VALUE_MAX) {
            snprintf(msg, cap, "The TagValue you have provided is too long, max %d",
                     GW_TAG_VALUE_MAX);
            return GW_INVALID_TAG;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(tags[j].name, k) == 0) {
                snprintf(msg, cap, "Cannot provide multiple Tags with the same key");
                return GW_INVALID_TAG;
            }
        }
    }
    return GW_OK;
}

/* Decode one form-encoded component ('+' is a space, %XX a byte) into a heap string. */
static char *form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *tmp = malloc(len + 1);
    size_t n = 0;
    if (!out || !tmp)
        goto fail;
    for (size_t i = 0; i < len; i++)
        tmp[i] = s[i] == '+' ? ' ' : s[i];
    if (cm_url_decode(tmp, len, out, len + 1, &n) != CM_OK || memchr(out, 0, n))
        goto fail;
    free(tmp);
    return out;
fail:
    free(tmp);
    free(out);
    return NULL;
}

gw_s3err gw_tags_from_query(const char *hdr, md_meta **tags, size_t *n, char *msg, size_t cap)
{
    md_meta *t = NULL;
    size_t cnt = 0;
    const char *p = hdr;
    *tags = NULL;
    *n = 0;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (len > 0) {
            /* Bounded before decoding: a header cannot make more pairs than S3 would read. */
            md_meta *grown =
                cnt < 4 * GW_MAX_BUCKET_TAGS ? realloc(t, (cnt + 1) * sizeof(*t)) : NULL;
            if (!grown)
                goto bad;
            t = grown;
            t[cnt].name = form_decode(p, klen);
            t[cnt].value = eq ? form_decode(eq + 1, len - klen - 1) : strdup("");
            cnt++;
            if (!t[cnt - 1].name || !t[cnt - 1].value)
                goto bad;
            for (size_t j = 0; j + 1 < cnt; j++) {
                if (strcmp(t[j].name, t[cnt - 1].name) == 0)
                    goto bad;
            }
        }
        p += len + (end != NULL);
    }
    *tags = t;
    *n = cnt;
    return GW_OK;
bad:
    md_meta_free(t, cnt);
    snprintf(msg, cap,
             "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
             "parameters without tag name duplicates.");
    return GW_INVALID_ARGUMENT;
}

gw_s3err gw_tags_copy(const md_meta *src, size_t n, md_meta **out, size_t *nout)
{
    md_meta *t = n ? calloc(n, sizeof(*t)) : NULL;
    *out = NULL;
    *nout = 0;
    if (n && !t)
        return GW_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        t[i].name = strdup(src[i].name);
        t[i].value = strdup(src[i].value);
        if (!t[i].name || !t[i].value) {
            md_meta_free(t, n);
            return GW_INTERNAL;
        }
    }
    *out = t;
    *nout = n;
    return GW_OK;
}

cm_err gw_xml_tagging(struct evbuffer *buf, const md_meta *tags, size_t n)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "Tagging");
    gw_xml_open(&x, "TagSet");
    for (size_t i = 0; i < n; i++) {
        gw_xml_open(&x, "Tag");
        gw_xml_text(&x, "Key", tags[i].name);
        gw_xml_text(&x, "Value", tags[i].value);
        gw_xml_close(&x, "Tag");
    }
    gw_xml_close(&x, "TagSet");
    gw_xml_close(&x, "Tagging");
    return gw_xml_status(&x);
}
