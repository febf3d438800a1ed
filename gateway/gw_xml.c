/*
 * gw_xml.c - the XML writer behind every S3 response body, and the S3 error document.
 *
 * Design: responses are small and regular, so they are written straight into an evbuffer with
 * no tree and no library: open/close tags are fixed strings, text goes through one escaping
 * loop that copies runs of safe bytes with a single evbuffer_add. A writer keeps a sticky
 * failure flag so handlers check for allocation failure once per document.
 *
 * Escaping (XML 1.0, the encoding S3 documents are in): & < > " ' become the five predefined
 * entities; TAB, LF and CR are written as character references so that a parser's end-of-line
 * normalisation cannot change a key; everything XML 1.0 cannot carry at all (the other C0
 * controls, malformed UTF-8, UTF-16 surrogates, U+FFFE, U+FFFF) becomes U+FFFD, one per bad
 * byte. Valid UTF-8 passes through untouched.
 *
 * Threading: pure functions over caller-owned buffers.
 */
#include "gw_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/*
 * Length of the well-formed UTF-8 sequence at p[0..n) (1..4) with its code point in *cp, or 0
 * when the bytes there are not one (overlong forms, surrogates and values above U+10FFFF too).
 */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int gw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

void gw_xml_init(gw_xml *x, struct evbuffer *buf)
{
    x->buf = buf;
    x->failed = 0;
}

cm_err gw_xml_status(const gw_xml *x)
{
    return x->failed ? CM_ERR_NOMEM : CM_OK;
}

static void put(gw_xml *x, const char *s, size_t len)
{
    if (len && evbuffer_add(x->buf, s, len) != 0)
        x->failed = 1;
}

static void puts_(gw_xml *x, const char *s)
{
    put(x, s, strlen(s));
}

void gw_xml_begin(gw_xml *x)
{
    puts_(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void gw_xml_open_root(gw_xml *x, const char *name)
{
    put(x, "<", 1);
    puts_(x, name);
    puts_(x, " xmlns=\"" GW_XMLNS "\">");
}

void gw_xml_open(gw_xml *x, const char *name)
{
    put(x, "<", 1);
    puts_(x, name);
    put(x, ">", 1);
}

void gw_xml_close(gw_xml *x, const char *name)
{
    put(x, "</", 2);
    puts_(x, name);
    put(x, ">", 1);
}

/* The replacement for the byte (or sequence) at p, and how many bytes it covers; NULL = keep. */
static const char *escape_one(const unsigned char *p, size_t n, size_t *adv)
{
    unsigned char c = p[0];
    uint32_t cp;
    *adv = 1;
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\t':
        return "&#x9;";
    case '\n':
        return "&#xA;";
    case '\r':
        return "&#xD;";
    default:
        break;
    }
    if (c >= 0x20 && c < 0x80)
        return NULL;
    if (c < 0x20)
        return replacement;
    size_t len = utf8_seq(p, n, &cp);
    if (len == 0)
        return replacement;
    *adv = len;
    return (cp == 0xFFFE || cp == 0xFFFF) ? replacement : NULL;
}

void gw_xml_escape(gw_xml *x, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0, i = 0;
    while (i < len) {
        size_t adv;
        const char *rep = escape_one(p + i, len - i, &adv);
        if (!rep) {
            i += adv;
            continue;
        }
        put(x, s + start, i - start);
        puts_(x, rep);
        i += adv;
        start = i;
    }
    put(x, s + start, len - start);
}

void gw_xml_text_n(gw_xml *x, const char *name, const char *text, size_t len)
{
    gw_xml_open(x, name);
    if (text)
        gw_xml_escape(x, text, len);
    gw_xml_close(x, name);
}

void gw_xml_text(gw_xml *x, const char *name, const char *text)
{
    gw_xml_text_n(x, name, text, text ? strlen(text) : 0);
}

void gw_xml_etag(gw_xml *x, const char *name, const char *etag)
{
    gw_xml_open(x, name);
    puts_(x, "&quot;");
    if (etag)
        gw_xml_escape(x, etag, strlen(etag));
    puts_(x, "&quot;");
    gw_xml_close(x, name);
}

static void raw_element(gw_xml *x, const char *name, const char *text, int n)
{
    if (n < 0) {
        x->failed = 1;
        return;
    }
    gw_xml_open(x, name);
    put(x, text, (size_t)n);
    gw_xml_close(x, name);
}

void gw_xml_i64(gw_xml *x, const char *name, int64_t v)
{
    char num[24];
    raw_element(x, name, num, snprintf(num, sizeof(num), "%" PRId64, v));
}

void gw_xml_u64(gw_xml *x, const char *name, uint64_t v)
{
    char num[24];
    raw_element(x, name, num, snprintf(num, sizeof(num), "%" PRIu64, v));
}

void gw_xml_bool(gw_xml *x, const char *name, int v)
{
    raw_element(x, name, v ? "true" : "false", v ? 4 : 5);
}

void gw_xml_time(gw_xml *x, const char *name, int64_t unix_ms)
{
    char ts[32];
    cm_time_iso8601(unix_ms, ts);
    raw_element(x, name, ts, (int)strlen(ts));
}

cm_err gw_xml_error(struct evbuffer *buf, gw_s3err e, const char *message, const char *resource,
                    const char *request_id)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    if (!message || !*message)
        message = gw_s3err_message(e);
    gw_xml_begin(&x);
    gw_xml_open(&x, "Error");
    gw_xml_text(&x, "Code", gw_s3err_code(e));
    gw_xml_text(&x, "Message", message);
    gw_xml_text(&x, "Resource", resource);
    gw_xml_text(&x, "RequestId", request_id);
    gw_xml_close(&x, "Error");
    return gw_xml_status(&x);
}

static const char *const ck_names[] = {
    [MD_CK_CRC32] = "CRC32", [MD_CK_CRC32C] = "CRC32C", [MD_CK_CRC64NVME] = "CRC64NVME",
    [MD_CK_SHA1] = "SHA1",   [MD_CK_SHA256] = "SHA256",
};

const char *gw_cksum_name(md_cksum_alg alg)
{
    if (alg <= MD_CK_NONE || (size_t)alg >= CM_ARRAY_LEN(ck_names))
        return NULL;
    return ck_names[alg];
}

md_cksum_alg gw_cksum_parse(const char *name)
{
    for (size_t i = MD_CK_CRC32; name && i < CM_ARRAY_LEN(ck_names); i++) {
        if (strcasecmp(name, ck_names[i]) == 0)
            return (md_cksum_alg)i;
    }
    return MD_CK_NONE;
}
