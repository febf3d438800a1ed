/*
 * gw_http.c - HTTP-level S3 rules: request-target and query parsing, Range and
 * x-amz-copy-source-range, conditional requests (If-Match and friends), bucket-name and key
 * rules, x-amz-copy-source, and x-amz-meta-* collection.
 *
 * Decisions (each one a place where S3 servers broke clients; see S3-NOTES.md):
 *  - '+' in a path is a plus; in a query string it is a space (form encoding; SDKs send a real
 *    plus as %2B). %00 is refused anywhere: keys and parameters are C strings here.
 *  - Range: only a single, well-formed byte range applies. A malformed header or a multi-range
 *    is ignored and the whole object served (as S3 does); a range starting at or past the end
 *    is 416.
 *  - Entity tags compare by their opaque part: W/ and quotes are stripped (our ETags are all
 *    strong, and clients echo what we sent, sometimes without quotes).
 *  - Conditional requests follow RFC 7232 section 6: If-Match beats If-Unmodified-Since,
 *    If-None-Match beats If-Modified-Since; dates compare in whole seconds.
 *
 * Threading: pure functions; results are heap copies owned by the caller.
 */
#include "gw_wire.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cm_util.h"

/* ---- request target and query ---- */

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/*
 * Decode s[0..n) into a new heap string; form = '+' means space. Refuses bad escapes and %00.
 * Returns NULL on failure (*bad set when the input, not memory, was at fault).
 */
static char *decode(const char *s, size_t n, int form, size_t *outlen, int *bad)
{
    char *out = malloc(n + 1);
    size_t len = 0;
    *bad = 0;
    if (!out)
        return NULL;
    cm_err e =
        form ? cm_url_decode_form(s, n, out, n + 1, &len) : cm_url_decode(s, n, out, n + 1, &len);
    if (e != CM_OK || memchr(out, 0, len)) {
        *bad = 1;
        free(out);
        return NULL;
    }
    if (outlen)
        *outlen = len;
    return out;
}

/*
 * Decode s[0..n) into *at (NUL-terminated; *at moves past it); form = '+' means space. Returns
 * the decoded string, or NULL for a bad escape or %00. *at has room: decoding never grows.
 */
static char *decode_into(const char *s, size_t n, int form, char **at, size_t *outlen)
{
    char *out = *at;
    size_t len = 0;
    cm_err e =
        form ? cm_url_decode_form(s, n, out, n + 1, &len) : cm_url_decode(s, n, out, n + 1, &len);
    if (e != CM_OK || memchr(out, 0, len))
        return NULL;
    if (outlen)
        *outlen = len;
    *at = out + len + 1;
    return out;
}

static char *copy_into(const char *s, size_t n, char **at)
{
    char *out = *at;
    memcpy(out, s, n);
    out[n] = '\0';
    *at = out + n + 1;
    return out;
}

/* One "name[=value]" segment of the query, decoded into *at. */
static gw_s3err add_param(gw_query *q, const char *s, size_t n, char **at)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq ? (size_t)(eq - s) : n;
    gw_qparam *p = &q->params[q->n];
    p->has_value = eq != NULL;
    p->name = decode_into(s, nlen, 1, at, NULL);
    p->value = !p->name ? NULL
               : eq     ? decode_into(eq + 1, n - nlen - 1, 1, at, NULL)
                        : copy_into("", 0, at);
    if (!p->value)
        return GW_BAD_REQUEST;
    q->n++;
    return GW_OK;
}

static gw_s3err parse_query(gw_query *q, const char *s, size_t n, char **at)
{
    for (const char *end = s + n; s < end;) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        size_t len = amp ? (size_t)(amp - s) : (size_t)(end - s);
        if (len > 0) {
            gw_s3err e = add_param(q, s, len, at);
            if (e != GW_OK)
                return e;
        }
        s += len + 1;
    }
    return GW_OK;
}

/*
 * One allocation per request holds all of it (this runs on every request): the parameter array,
 * then the raw path and query, the decoded path, and each parameter's decoded name and value.
 * Decoding never lengthens a string, so the raw lengths plus a NUL each bound the strings.
 */
gw_s3err gw_query_parse(gw_query *q, const char *target, size_t len)
{
    memset(q, 0, sizeof(*q));
    const char *end = memchr(target, '#', len);
    if (end)
        len = (size_t)(end - target);
    /* absolute-form: skip scheme and authority (origin-form, starting with '/', is the usual) */
    const char *sep = len > 3 && target[0] != '/' ? memmem(target, len, "://", 3) : NULL;
    if (sep) {
        const char *host = sep + 3;
        const char *slash = memchr(host, '/', len - (size_t)(host - target));
        if (slash) {
            len -= (size_t)(slash - target);
            target = slash;
        } else {
            target = "/";
            len = 1;
        }
    }
    if (len == 0 || target[0] != '/')
        return GW_BAD_REQUEST;
    const char *qm = memchr(target, '?', len);
    size_t plen = qm ? (size_t)(qm - target) : len;
    size_t qlen = qm ? len - plen - 1 : 0;
    const char *query = qm ? qm + 1 : "";
    size_t segs = 1;
    for (const char *a = query; (a = memchr(a, '&', qlen - (size_t)(a - query))) != NULL; a++)
        segs++;
    q->params = malloc(segs * sizeof(*q->params) + 2 * (plen + 1) + 2 * (qlen + 1) + 2 * segs);
    if (!q->params)
        return GW_INTERNAL;
    char *at = (char *)(q->params + segs);
    gw_s3err e = GW_BAD_REQUEST;
    q->raw_path = copy_into(target, plen, &at);
    q->raw_query = copy_into(query, qlen, &at);
    q->path = decode_into(target, plen, 0, &at, &q->path_len);
    if (q->path && (e = parse_query(q, q->raw_query, qlen, &at)) == GW_OK)
        return GW_OK;
    gw_query_release(q);
    return e;
}

void gw_query_release(gw_query *q)
{
    free(q->params); /* the strings live in the same block */
    memset(q, 0, sizeof(*q));
}

const gw_qparam *gw_query_find(const gw_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++) {
        /* the first byte first: lookups of subresources (acl, tagging, ...) would otherwise pay a
         * strcmp call for each X-Amz-* parameter of every presigned request */
        if (q->params[i].name[0] == name[0] && strcmp(q->params[i].name, name) == 0)
            return &q->params[i];
    }
    return NULL;
}

const char *gw_query_get(const gw_query *q, const char *name)
{
    const gw_qparam *p = gw_query_find(q, name);
    return p ? p->value : NULL;
}

/* ---- numbers and ranges ---- */

/* Digits at *s into *v (saturating at UINT64_MAX); returns how many digits were read. */
static size_t digits(const char **s, uint64_t *v)
{
    size_t n = 0;
    *v = 0;
    for (; isdigit((unsigned char)**s); (*s)++, n++) {
        unsigned d = (unsigned)(**s - '0');
        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    return n;
}

gw_s3err gw_parse_count(const char *s, uint64_t dflt, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!s) {
        *out = dflt;
        return GW_OK;
    }
    if (digits(&s, &v) == 0 || *s)
        return GW_INVALID_ARGUMENT;
    *out = v > max ? max : v;
    return GW_OK;
}

static const char *skip_sp(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* "bytes" [sp] "=" [sp]: the position after, or NULL. */
static const char *range_unit(const char *s)
{
    s = skip_sp(s);
    if (strncasecmp(s, "bytes", 5) != 0)
        return NULL;
    s = skip_sp(s + 5);
    return *s == '=' ? skip_sp(s + 1) : NULL;
}

gw_s3err gw_range_parse(const char *hdr, uint64_t size, int *applies, uint64_t *first,
                        uint64_t *last)
{
    uint64_t a, b;
    *applies = 0;
    const char *s = hdr ? range_unit(hdr) : NULL;
    if (!s || strchr(s, ','))
        return GW_OK;
    if (*s == '-') { /* suffix: the last b bytes */
        s++;
        if (digits(&s, &b) == 0 || *skip_sp(s))
            return GW_OK;
        if (b == 0 || size == 0)
            return GW_INVALID_RANGE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        *applies = 1;
        return GW_OK;
    }
    if (digits(&s, &a) == 0 || *(s = skip_sp(s)) != '-')
        return GW_OK;
    s = skip_sp(s + 1);
    int have_b = digits(&s, &b) > 0;
    if (*skip_sp(s) || (have_b && b < a))
        return GW_OK;
    if (a >= size)
        return GW_INVALID_RANGE;
    *first = a;
    *last = !have_b || b >= size ? size - 1 : b;
    *applies = 1;
    return GW_OK;
}

gw_s3err gw_copy_range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last)
{
    uint64_t a, b;
    if (!hdr || strncmp(hdr, "bytes=", 6) != 0)
        return GW_INVALID_ARGUMENT;
    const char *s = hdr + 6;
    if (digits(&s, &a) == 0 || *s++ != '-' || digits(&s, &b) == 0 || *s || b < a)
        return GW_INVALID_ARGUMENT;
    if (b >= size)
        return GW_INVALID_RANGE;
    *first = a;
    *last = b;
    return GW_OK;
}

/* ---- entity tags and preconditions ---- */

/*
 * The next entity tag of a list at *p: its opaque part in [*tag, *tag + *len), *quoted set when
 * it was in quotes. 0 at the end of the list.
 */
static int next_tag(const char **p, const char **tag, size_t *len, int *quoted)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (!*s)
        return 0;
    if (s[0] == 'W' && s[1] == '/')
        s += 2;
    *quoted = *s == '"';
    if (*quoted) {
        const char *close = strchr(s + 1, '"');
        *tag = s + 1;
        *len = close ? (size_t)(close - s - 1) : strlen(s + 1);
        s = close ? close + 1 : s + 1 + *len;
    } else {
        *tag = s;
        *len = strcspn(s, ", \t");
        s += *len;
    }
    *p = s;
    return 1;
}

int gw_etag_match(const char *list, const char *etag)
{
    const char *p = list, *tag;
    size_t len, elen;
    int quoted;
    if (!list || !etag)
        return 0;
    elen = strlen(etag);
    if (elen >= 2 && etag[0] == '"' && etag[elen - 1] == '"')
        etag++, elen -= 2;
    while (next_tag(&p, &tag, &len, &quoted)) {
        if (len == 1 && tag[0] == '*' && !quoted)
            return 1;
        if (len == elen && memcmp(tag, etag, len) == 0)
            return 1;
    }
    return 0;
}

/* 1 when the header is a valid HTTP date, with its value in *t. */
static int http_date(const char *s, time_t *t)
{
    return s && cm_time_parse_http(skip_sp(s), t) == CM_OK;
}

gw_s3err gw_cond_check(const char *if_match, const char *if_none_match,
                       const char *if_modified_since, const char *if_unmodified_since,
                       const char *etag, int64_t mtime_ms, int copy_source)
{
    time_t t;
    int64_t mtime = mtime_ms >= 0 ? mtime_ms / 1000 : -((-mtime_ms + 999) / 1000);
    gw_s3err not_modified = copy_source ? GW_PRECONDITION_FAILED : GW_NOT_MODIFIED;
    if (if_match) {
        if (!gw_etag_match(if_match, etag))
            return GW_PRECONDITION_FAILED;
    } else if (http_date(if_unmodified_since, &t) && mtime > (int64_t)t) {
        return GW_PRECONDITION_FAILED;
    }
    if (if_none_match) {
        if (gw_etag_match(if_none_match, etag))
            return not_modified;
    } else if (http_date(if_modified_since, &t) && mtime <= (int64_t)t) {
        return not_modified;
    }
    return GW_OK;
}

/* ---- names and keys ---- */

static int is_ipv4_like(const char *s)
{
    int groups = 0;
    while (*s) {
        size_t n = strspn(s, "0123456789");
        if (n == 0 || n > 3)
            return 0;
        s += n;
        groups++;
        if (*s == '.' && s[1])
            s++;
        else if (*s)
            return 0;
    }
    return groups == 4;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

gw_s3err gw_bucket_name_check(const char *name)
{
    static const char *const bad_prefix[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const bad_suffix[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                             "--table-s3"};
    size_t len = name ? strlen(name) : 0;
    if (len < 3 || len > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len)
        return GW_INVALID_BUCKET_NAME;
    if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[len - 1]))
        return GW_INVALID_BUCKET_NAME;
    if (strstr(name, "..") || strstr(name, ".-") || strstr(name, "-.") || is_ipv4_like(name))
        return GW_INVALID_BUCKET_NAME;
    for (size_t i = 0; i < CM_ARRAY_LEN(bad_prefix); i++) {
        if (strncmp(name, bad_prefix[i], strlen(bad_prefix[i])) == 0)
            return GW_INVALID_BUCKET_NAME;
    }
    for (size_t i = 0; i < CM_ARRAY_LEN(bad_suffix); i++) {
        if (ends_with(name, len, bad_suffix[i]))
            return GW_INVALID_BUCKET_NAME;
    }
    return GW_OK;
}

gw_s3err gw_key_check(const char *key, size_t len)
{
    if (!key || len == 0)
        return GW_INVALID_ARGUMENT;
    if (len > MD_MAX_KEY)
        return GW_KEY_TOO_LONG;
    if (memchr(key, 0, len) || !gw_utf8_valid(key, len))
        return GW_INVALID_ARGUMENT;
    return GW_OK;
}

/* ---- x-amz-copy-source ---- */

/* "versionId=..." as the only query parameter of a copy source. */
static gw_s3err copy_version(const char *q, char **out)
{
    int bad;
    if (strncmp(q, "versionId=", 10) != 0 || strchr(q, '&') || !q[10])
        return GW_INVALID_ARGUMENT;
    *out = decode(q + 10, strlen(q + 10), 0, NULL, &bad);
    return *out ? GW_OK : bad ? GW_INVALID_ARGUMENT : GW_INTERNAL;
}

gw_s3err gw_copy_source_parse(const char *hdr, gw_copy_source *out)
{
    memset(out, 0, sizeof(*out));
    if (!hdr)
        return GW_INVALID_ARGUMENT;
    const char *s = hdr[0] == '/' ? hdr + 1 : hdr;
    const char *qm = strchr(s, '?');
    size_t n = qm ? (size_t)(qm - s) : strlen(s), len;
    int bad;
    gw_s3err e = qm ? copy_version(qm + 1, &out->version_id) : GW_OK;
    if (e != GW_OK)
        goto fail;
    char *path = decode(s, n, 0, &len, &bad);
    if (!path) {
        e = bad ? GW_INVALID_ARGUMENT : GW_INTERNAL;
        goto fail;
    }
    char *slash = strchr(path, '/');
    if (!slash || slash == path || gw_bucket_name_check((*slash = '\0', path)) != GW_OK) {
        free(path);
        e = GW_INVALID_ARGUMENT;
        goto fail;
    }
    out->bucket = path; /* the key is copied out of the same buffer */
    out->key = dup_n(slash + 1, len - (size_t)(slash + 1 - path));
    e = !out->key ? GW_INTERNAL : gw_key_check(out->key, strlen(out->key));
    if (e == GW_OK)
        return GW_OK;
fail:
    gw_copy_source_release(out);
    return e;
}

void gw_copy_source_release(gw_copy_source *cs)
{
    free(cs->bucket);
    free(cs->key);
    free(cs->version_id);
    memset(cs, 0, sizeof(*cs));
}

/* ---- x-amz-meta-* ---- */

void gw_meta_init(gw_meta_set *m)
{
    memset(m, 0, sizeof(*m));
}

static md_meta *meta_find(gw_meta_set *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->items[i].name, name) == 0)
            return &m->items[i];
    }
    return NULL;
}

/* Append ",value" to an existing entry. */
static gw_s3err meta_join(gw_meta_set *m, md_meta *it, const char *value, size_t vlen)
{
    size_t old = strlen(it->value);
    if (m->total + 1 + vlen > GW_META_MAX)
        return GW_METADATA_TOO_LARGE;
    char *v = realloc(it->value, old + 1 + vlen + 1);
    if (!v)
        return GW_INTERNAL;
    v[old] = ',';
    memcpy(v + old + 1, value, vlen + 1);
    it->value = v;
    m->total += 1 + vlen;
    return GW_OK;
}

gw_s3err gw_meta_add(gw_meta_set *m, const char *name, const char *value)
{
    static const char prefix[] = "x-amz-meta-";
    if (!name || strncasecmp(name, prefix, sizeof(prefix) - 1) != 0)
        return GW_OK;
    const char *sub = name + sizeof(prefix) - 1;
    size_t nlen = strlen(sub), vlen;
    value = value ? value : "";
    vlen = strlen(value);
    if (nlen == 0)
        return GW_OK;
    char *lname = dup_n(sub, nlen);
    if (!lname)
        return GW_INTERNAL;
    for (size_t i = 0; i < nlen; i++)
        lname[i] = (char)tolower((unsigned char)lname[i]);
    md_meta *it = meta_find(m, lname);
    gw_s3err e = GW_OK;
    if (it) {
        e = meta_join(m, it, value, vlen);
    } else if (m->total + nlen + vlen > GW_META_MAX) {
        e = GW_METADATA_TOO_LARGE;
    } else if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        md_meta *items = realloc(m->items, cap * sizeof(*items));
        if (items)
            m->items = items, m->cap = cap;
        e = items ? GW_OK : GW_INTERNAL;
    }
    if (e != GW_OK || it) {
        free(lname);
        return e;
    }
    char *v = dup_n(value, vlen);
    if (!v) {
        free(lname);
        return GW_INTERNAL;
    }
    m->items[m->n++] = (md_meta){.name = lname, .value = v};
    m->total += nlen + vlen;
    return GW_OK;
}

void gw_meta_release(gw_meta_set *m)
{
    for (size_t i = 0; m->items && i < m->n; i++) {
        free(m->items[i].name);
        free(m->items[i].value);
    }
    free(m->items);
    memset(m, 0, sizeof(*m));
}
