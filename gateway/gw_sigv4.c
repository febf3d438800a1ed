/*
 * gw_sigv4.c - AWS Signature Version 4 for S3: header and presigned-query authentication.
 *
 * Functions over a borrowed gw_auth_request, safe from any thread. Secrets come from a callback
 * and are wiped from the stack after use.
 *
 * Signing-key cache: deriving the key costs four HMAC-SHA256 per request, yet a client signs with
 * the same key all day. verify() keeps derived keys in a small process-wide cache keyed by
 * (access key, date, region, service, SHA-256 of the secret): a changed secret misses, derives
 * afresh and the stale entry ages out; the secret itself is never stored. An entry keeps the
 * key's HMAC pad states too (cm_hmac_key), so the string to sign's MAC hashes two blocks fewer. 16
 * sets of 4 entries, least recently used replaced, each set behind its own mutex (held for a lookup
 * or a fill, never while deriving), so the size is fixed whatever the number of keys. The cache is
 * a memo: results are the same with or without it.
 *
 * Per request the query is parsed in one allocation, and the canonical request and then the string
 * to sign are built in one buffer on the stack (1 KiB; the heap only for a longer one).
 *
 * Canonical request (S3 flavour):
 *   METHOD \n PATH \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   PATH     the path bytes exactly as sent (S3 neither normalises nor double-encodes).
 *   QUERY    raw query split on '&', name/value split on the first '=', each percent-decoded and
 *            re-encoded RFC 3986 style ('/' encoded), sorted by name then value; a parameter
 *            without '=' has an empty value; presigned requests drop X-Amz-Signature.
 *   HEADERS  "name:value\n" for each signed name (lowercase), value trimmed with inner runs of
 *            blanks collapsed, repeated headers joined with ','.
 * String to sign: "AWS4-HMAC-SHA256\n" amz-date "\n" scope "\n" hex(sha256(canonical request)),
 * scope = yyyymmdd/region/s3/aws4_request. Signing key: HMAC chain "AWS4"+secret -> date ->
 * region -> service -> "aws4_request". Signatures are compared in constant time.
 *
 * Signed headers: `host` must be signed, and so must every x-amz-* header the request carries
 * (S3's rule; a presigned URL that signs only `host` admits no x-amz-* header at all), except the
 * ones whose value is an input of the signature anyway: x-amz-date (the string to sign's date)
 * and x-amz-content-sha256 (the payload line) with header auth, x-amz-content-sha256 with a
 * presigned URL when it is the payload line (no X-Amz-Content-Sha256 in the query).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "gw_auth.h"

#define SV4_ALGO "AWS4-HMAC-SHA256"
#define SV4_MAX_SKEW 900       /* seconds: 15 minutes */
#define SV4_MAX_EXPIRES 604800 /* seconds: 7 days */
#define SV4_MAX_QUERY_PARAMS 256

/* ---- a tiny growable string; oom sticks so callers check once at the end ---- */

/*
 * It starts in its own inline array, so a canonical request of ordinary size (a presigned GET's is
 * ~300 bytes) costs no allocation; only a longer one moves to the heap.
 */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
    char inl[1024];
} sv4_buf;

static void sb_init(sv4_buf *b)
{
    b->p = b->inl;
    b->n = 0;
    b->cap = sizeof(b->inl);
    b->oom = 0;
    b->inl[0] = '\0';
}

static void sb_release(sv4_buf *b)
{
    if (b->p != b->inl)
        free(b->p);
    b->p = b->inl;
}

static void sb_add(sv4_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = b->p == b->inl ? malloc(cap) : realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        if (b->p == b->inl)
            memcpy(p, b->inl, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sv4_buf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A heap copy of the string for the caller (NULL on allocation failure); b is released. */
static char *sb_take(sv4_buf *b)
{
    char *s = b->oom ? NULL : b->p == b->inl ? strdup(b->p) : b->p;
    if (s != b->p)
        sb_release(b);
    b->p = b->inl;
    return s;
}

/* ---- query parameters ---- */

typedef struct {
    char *name, *value;   /* decoded */
    char *ename, *evalue; /* canonical (re-encoded) */
} sv4_param;

typedef struct {
    sv4_param *v; /* one allocation: the parameters, then their strings */
    size_t n;
} sv4_query;

static void query_free(sv4_query *q)
{
    free(q->v);
    q->v = NULL;
    q->n = 0;
}

/* Decode s[0..len) into *at, then re-encode it after that; *at moves past both. */
static cm_err query_part(const char *s, size_t len, char **at, char **dec, char **enc)
{
    size_t dn = 0, ecap = 3 * len + 1;
    *dec = *at;
    cm_err err = cm_url_decode(s, len, *dec, len + 1, &dn);
    if (err != CM_OK)
        return err;
    *enc = *dec + dn + 1;
    size_t en = cm_url_encode(*dec, dn, 0, *enc, ecap);
    if (en == (size_t)-1)
        return CM_ERR_INTERNAL;
    *at = *enc + en + 1;
    return CM_OK;
}

/*
 * Parse the query part of target (after '?'); an absent query gives zero parameters. One malloc
 * for all of it (this runs on every presigned request): a component of n bytes decodes to at most
 * n and re-encodes to at most 3n, each plus a NUL, so 4 * (query length + parameters) bytes of
 * strings always suffice.
 */
static cm_err query_parse(const char *target, sv4_query *q)
{
    const char *s = strchr(target, '?');
    q->v = NULL;
    q->n = 0;
    if (!s)
        return CM_OK;
    s++;
    size_t qlen = strlen(s), segs = 0;
    for (const char *t = s; *t;) {
        size_t len = strcspn(t, "&");
        segs += len > 0;
        t += len + (t[len] == '&');
    }
    if (segs == 0)
        return CM_OK;
    if (segs > SV4_MAX_QUERY_PARAMS)
        return CM_ERR_TOOBIG;
    q->v = malloc(segs * sizeof(*q->v) + 4 * (qlen + segs));
    if (!q->v)
        return CM_ERR_NOMEM;
    char *at = (char *)(q->v + segs);
    while (*s) {
        size_t len = strcspn(s, "&");
        if (len > 0) {
            sv4_param *p = &q->v[q->n++];
            const char *eq = memchr(s, '=', len);
            size_t nlen = eq ? (size_t)(eq - s) : len;
            cm_err err = query_part(s, nlen, &at, &p->name, &p->ename);
            if (err == CM_OK)
                err = eq ? query_part(eq + 1, len - nlen - 1, &at, &p->value, &p->evalue)
                         : query_part("", 0, &at, &p->value, &p->evalue);
            if (err != CM_OK)
                return err;
        }
        s += len;
        if (*s == '&')
            s++;
    }
    return CM_OK;
}

static const char *query_get(const sv4_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->v[i].name, name) == 0)
            return q->v[i].value;
    return NULL;
}

static int param_cmp(const void *a, const void *b)
{
    const sv4_param *x = a, *y = b;
    int c = strcmp(x->ename, y->ename);
    return c ? c : strcmp(x->evalue, y->evalue);
}

/* ---- headers ---- */

static const char *header_get(const gw_auth_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0)
            return req->values[i];
    return NULL;
}

/* Append a header value trimmed, with inner runs of spaces and tabs collapsed to one space (whole
 * runs of other bytes at a time: this is on every request's path). */
static void add_trimmed(sv4_buf *b, const char *v)
{
    int started = 0;
    for (;;) {
        v += strspn(v, " \t");
        if (!*v)
            return;
        size_t n = strcspn(v, " \t");
        if (started)
            sb_add(b, " ", 1);
        sb_add(b, v, n);
        started = 1;
        v += n;
    }
}

static void add_canonical_header(sv4_buf *b, const gw_auth_request *req, const char *name,
                                 size_t nlen)
{
    int seen = 0;
    char lower[128];
    if (nlen < sizeof(lower)) {
        for (size_t i = 0; i < nlen; i++)
            lower[i] = (char)tolower((unsigned char)name[i]);
        sb_add(b, lower, nlen);
    } else {
        for (size_t i = 0; i < nlen; i++) {
            char c = (char)tolower((unsigned char)name[i]);
            sb_add(b, &c, 1);
        }
    }
    sb_add(b, ":", 1);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strncasecmp(req->names[i], name, nlen) != 0 || req->names[i][nlen] != '\0')
            continue;
        if (seen++)
            sb_add(b, ",", 1);
        add_trimmed(b, req->values[i]);
    }
    sb_add(b, "\n", 1);
}

/* The canonical request over q, the parsed query of req->target (sorted here, in place), into b
 * (initialised here; the caller releases it). */
static void canonical_request(const gw_auth_request *req, sv4_query *q, const char *signed_headers,
                              const char *payload_hash, int presigned, sv4_buf *b)
{
    sb_init(b);
    const char *qm = strchr(req->target, '?');
    size_t plen = qm ? (size_t)(qm - req->target) : strlen(req->target);

    if (q->n > 1) /* qsort wants a non-NULL base even for zero items */
        qsort(q->v, q->n, sizeof(*q->v), param_cmp);
    sb_str(b, req->method);
    sb_add(b, "\n", 1);
    sb_add(b, req->target, plen);
    sb_add(b, "\n", 1);
    int first = 1;
    for (size_t i = 0; i < q->n; i++) {
        if (presigned && strcmp(q->v[i].name, "X-Amz-Signature") == 0)
            continue;
        if (!first)
            sb_add(b, "&", 1);
        first = 0;
        sb_str(b, q->v[i].ename);
        sb_add(b, "=", 1);
        sb_str(b, q->v[i].evalue);
    }
    sb_add(b, "\n", 1);
    for (const char *s = signed_headers; *s;) {
        size_t n = strcspn(s, ";");
        if (n > 0)
            add_canonical_header(b, req, s, n);
        s += n;
        if (*s == ';')
            s++;
    }
    sb_add(b, "\n", 1);
    sb_str(b, signed_headers);
    sb_add(b, "\n", 1);
    sb_str(b, payload_hash);
}

char *gw_sigv4_canonical_request(const gw_auth_request *req, const char *signed_headers,
                                 const char *payload_hash, int presigned)
{
    sv4_query q;
    char *c = NULL;
    if (query_parse(req->target, &q) == CM_OK) {
        sv4_buf b;
        canonical_request(req, &q, signed_headers, payload_hash, presigned, &b);
        c = sb_take(&b);
    }
    query_free(&q);
    return c;
}

void gw_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t out[32])
{
    uint8_t k[32];
    sv4_buf kb;
    sb_init(&kb);
    sb_str(&kb, "AWS4");
    sb_str(&kb, secret);
    if (kb.oom) {
        memset(out, 0, 32);
        sb_release(&kb);
        return;
    }
    cm_hmac_sha256(kb.p, kb.n, date, strlen(date), k);
    OPENSSL_cleanse(kb.p, kb.n);
    sb_release(&kb);
    cm_hmac_sha256(k, 32, region, strlen(region), k);
    cm_hmac_sha256(k, 32, service, strlen(service), k);
    cm_hmac_sha256(k, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k, sizeof(k));
}

/* ---- signing-key cache ---- */

#define SV4_CACHE_SETS 16
#define SV4_CACHE_WAYS 4

typedef struct {
    char access_key[128];
    char date[9];
    char region[64];
    char service[16];
    uint8_t secret_hash[32];
    uint8_t key[32];
    cm_hmac_key mac; /* key's HMAC pad states: the string to sign's MAC skips two blocks */
    uint64_t used;   /* the set's clock at the last hit or fill; 0 = empty */
} sv4_cached;

typedef struct {
    pthread_mutex_t lock;
    uint64_t clock;
    uint64_t hits, misses;
    sv4_cached way[SV4_CACHE_WAYS];
} sv4_set;

static sv4_set sv4_cache[SV4_CACHE_SETS];
static pthread_once_t sv4_cache_once = PTHREAD_ONCE_INIT;

static void sv4_cache_init(void)
{
    for (int i = 0; i < SV4_CACHE_SETS; i++)
        pthread_mutex_init(&sv4_cache[i].lock, NULL);
}

static uint32_t fnv_str(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return (h ^ 0xff) * 16777619u; /* a separator, so ("ab","c") and ("a","bc") differ */
}

static int sv4_entry_matches(const sv4_cached *e, const gw_auth_result *scope,
                             const uint8_t secret_hash[32])
{
    return e->used && strcmp(e->access_key, scope->access_key) == 0 &&
           strcmp(e->date, scope->date) == 0 && strcmp(e->region, scope->region) == 0 &&
           strcmp(e->service, scope->service) == 0 && cm_ct_equal(e->secret_hash, secret_hash, 32);
}

/* 1 and the key in out (its MAC key in mac) when cached (the entry becomes most recently used),
 * else 0. */
static int sv4_cache_get(sv4_set *set, const gw_auth_result *scope, const uint8_t sh[32],
                         uint8_t out[32], cm_hmac_key *mac)
{
    int hit = 0;
    pthread_mutex_lock(&set->lock);
    for (int i = 0; i < SV4_CACHE_WAYS && !hit; i++) {
        sv4_cached *e = &set->way[i];
        if (sv4_entry_matches(e, scope, sh)) {
            memcpy(out, e->key, 32);
            *mac = e->mac;
            e->used = ++set->clock;
            set->hits++;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&set->lock);
    return hit;
}

/* Store a derived key over an empty or the least recently used entry of its set. */
static void sv4_cache_put(sv4_set *set, const gw_auth_result *scope, const uint8_t sh[32],
                          const uint8_t key[32], const cm_hmac_key *mac)
{
    pthread_mutex_lock(&set->lock);
    sv4_cached *victim = &set->way[0];
    for (int i = 0; i < SV4_CACHE_WAYS; i++) {
        sv4_cached *e = &set->way[i];
        if (sv4_entry_matches(e, scope, sh)) { /* another thread derived it meanwhile */
            victim = e;
            break;
        }
        if (e->used < victim->used)
            victim = e;
    }
    OPENSSL_cleanse(victim, sizeof(*victim));
    memcpy(victim->access_key, scope->access_key, sizeof(victim->access_key));
    memcpy(victim->date, scope->date, sizeof(victim->date));
    memcpy(victim->region, scope->region, sizeof(victim->region));
    memcpy(victim->service, scope->service, sizeof(victim->service));
    memcpy(victim->secret_hash, sh, 32);
    memcpy(victim->key, key, 32);
    victim->mac = *mac;
    victim->used = ++set->clock;
    set->misses++;
    pthread_mutex_unlock(&set->lock);
}

/* The signing key of out's scope under secret (and its MAC key into mac, for the caller to
 * release), from the cache or derived and cached. */
static void sv4_cached_signing_key(const char *secret, gw_auth_result *out, cm_hmac_key *mac)
{
    uint8_t sh[32];
    pthread_once(&sv4_cache_once, sv4_cache_init);
    cm_sha256(secret, strlen(secret), sh);
    uint32_t h = fnv_str(2166136261u, out->access_key);
    h = fnv_str(fnv_str(fnv_str(h, out->date), out->region), out->service);
    sv4_set *set = &sv4_cache[h % SV4_CACHE_SETS];
    int hit = sv4_cache_get(set, out, sh, out->signing_key, mac);
    if (!hit) {
        gw_sigv4_signing_key(secret, out->date, out->region, out->service, out->signing_key);
        cm_hmac_key_init(mac, out->signing_key, 32);
        sv4_cache_put(set, out, sh, out->signing_key, mac);
    }
    OPENSSL_cleanse(sh, sizeof(sh));
}

void gw_sigv4_cache_stats(uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    pthread_once(&sv4_cache_once, sv4_cache_init);
    for (int i = 0; i < SV4_CACHE_SETS; i++) {
        pthread_mutex_lock(&sv4_cache[i].lock);
        *hits += sv4_cache[i].hits;
        *misses += sv4_cache[i].misses;
        pthread_mutex_unlock(&sv4_cache[i].lock);
    }
}

/* ---- parsing the credential and the payload mode ---- */

typedef struct {
    const char *credential; /* AK/yyyymmdd/region/service/aws4_request */
    size_t cred_len;
    char signed_headers[1024];
    char signature[65];
} sv4_parts;

/* Split the credential into out's scope fields. Returns 0 or -1 on bad syntax. */
static int parse_credential(const char *c, size_t len, gw_auth_result *out)
{
    const char *slash[4];
    int found = 0;
    for (size_t i = len; i-- > 0 && found < 4;)
        if (c[i] == '/')
            slash[found++] = c + i;
    if (found < 4)
        return -1;
    /* slash[3] < slash[2] < slash[1] < slash[0] */
    size_t ak = (size_t)(slash[3] - c), dt = (size_t)(slash[2] - slash[3] - 1);
    size_t rg = (size_t)(slash[1] - slash[2] - 1), sv = (size_t)(slash[0] - slash[1] - 1);
    size_t term = len - (size_t)(slash[0] - c) - 1;
    if (ak == 0 || ak >= sizeof(out->access_key) || dt != 8 || rg == 0 ||
        rg >= sizeof(out->region) || sv == 0 || sv >= sizeof(out->service) || term != 12 ||
        memcmp(slash[0] + 1, "aws4_request", 12) != 0)
        return -1;
    for (size_t i = 0; i < 8; i++)
        if (!isdigit((unsigned char)slash[3][1 + i]))
            return -1;
    memcpy(out->access_key, c, ak);
    out->access_key[ak] = '\0';
    memcpy(out->date, slash[3] + 1, 8);
    out->date[8] = '\0';
    memcpy(out->region, slash[2] + 1, rg);
    out->region[rg] = '\0';
    memcpy(out->service, slash[1] + 1, sv);
    out->service[sv] = '\0';
    return 0;
}

static gw_s3err parse_payload_mode(const char *v, gw_auth_result *out)
{
    static const struct {
        const char *name;
        gw_payload_mode mode;
    } modes[] = {
        {"UNSIGNED-PAYLOAD", GW_PAYLOAD_UNSIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", GW_PAYLOAD_STREAMING_SIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", GW_PAYLOAD_STREAMING_SIGNED_TRAILER},
        {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER},
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(modes); i++) {
        if (strcmp(v, modes[i].name) == 0) {
            out->mode = modes[i].mode;
            return GW_OK;
        }
    }
    if (strlen(v) != 64)
        return GW_INVALID_ARGUMENT;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return GW_INVALID_ARGUMENT;
        out->payload_hash[i] = (char)tolower((unsigned char)v[i]);
    }
    out->payload_hash[64] = '\0';
    out->mode = GW_PAYLOAD_HASHED;
    return GW_OK;
}

int gw_sigv4_parse_signature(const char *s, size_t len, char out[65])
{
    if (len != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return 0;
}

/* True when the ';'-separated list names `name` (any case). */
static int list_has(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ";");
        if (n == len && strncasecmp(s, name, len) == 0)
            return 1;
        s += n;
        if (*s == ';')
            s++;
    }
    return 0;
}

static int signs_host(const char *list)
{
    return list_has(list, "host");
}

/*
 * S3's rule: every x-amz-* header of the request is covered by the signature, either named in
 * `signed_list` or in `covered` (headers whose value is an input of the signature anyway, such as
 * x-amz-content-sha256, the canonical request's last line). Otherwise GW_ACCESS_DENIED, with the
 * message and the header's name in out. "x-amzn-trace-id" is not an x-amz-* header.
 */
static gw_s3err check_amz_signed(const gw_auth_request *req, const char *signed_list,
                                 const char *covered, gw_auth_result *out)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->names[i];
        if (strncasecmp(name, "x-amz-", 6) != 0 || list_has(signed_list, name) ||
            list_has(covered, name))
            continue;
        size_t n = 0;
        for (; name[n] && n + 1 < sizeof(out->unsigned_header); n++)
            out->unsigned_header[n] = (char)tolower((unsigned char)name[n]);
        out->unsigned_header[n] = '\0';
        out->message = GW_MSG_HEADERS_NOT_SIGNED;
        return GW_ACCESS_DENIED;
    }
    return GW_OK;
}

/* Parse "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (any order). */
static gw_s3err parse_authorization(const char *h, sv4_parts *p)
{
    size_t alen = strlen(SV4_ALGO);
    if (strncmp(h, SV4_ALGO, alen) != 0 || (h[alen] != ' ' && h[alen] != '\t'))
        return GW_AUTH_HEADER_MALFORMED;
    int have = 0;
    for (const char *s = h + alen; *s;) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        size_t n = strcspn(s, ",");
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n > 11 && strncmp(s, "Credential=", 11) == 0) {
            p->credential = s + 11;
            p->cred_len = n - 11;
            have |= 1;
        } else if (n > 14 && strncmp(s, "SignedHeaders=", 14) == 0) {
            if (n - 14 >= sizeof(p->signed_headers))
                return GW_AUTH_HEADER_MALFORMED;
            memcpy(p->signed_headers, s + 14, n - 14);
            p->signed_headers[n - 14] = '\0';
            have |= 2;
        } else if (n > 10 && strncmp(s, "Signature=", 10) == 0) {
            if (gw_sigv4_parse_signature(s + 10, n - 10, p->signature) != 0)
                return GW_AUTH_HEADER_MALFORMED;
            have |= 4;
        } else if (n > 0) {
            return GW_AUTH_HEADER_MALFORMED;
        }
        s += strcspn(s, ",");
    }
    return have == 7 ? GW_OK : GW_AUTH_HEADER_MALFORMED;
}

/* Check the scope against the server: service s3, our region. */
static gw_s3err check_scope(const gw_auth_result *out, const char *region, gw_s3err malformed)
{
    if (strcmp(out->service, "s3") != 0)
        return malformed;
    if (strcmp(out->region, region) != 0)
        return GW_AUTH_HEADER_MALFORMED; /* the gateway names the expected region */
    return GW_OK;
}

/*
 * Derive the key, compute the signature over the canonical request and compare. q is the query
 * already parsed (presigned: gw_auth_check parsed it to find the X-Amz-* parameters), or NULL.
 */
static gw_s3err verify(const gw_auth_request *req, sv4_query *q, const sv4_parts *p,
                       const char *payload, gw_secret_fn secret_fn, void *secret_arg,
                       gw_auth_result *out)
{
    char secret[256];
    if (secret_fn(secret_arg, out->access_key, secret, sizeof(secret)) != CM_OK)
        return GW_INVALID_ACCESS_KEY;
    secret[sizeof(secret) - 1] = '\0';
    cm_hmac_key mac;
    sv4_cached_signing_key(secret, out, &mac);
    OPENSSL_cleanse(secret, sizeof(secret));

    /* the canonical request, then the string to sign, in one buffer: no allocation for either
     * when the request is of ordinary size */
    sv4_query own = {0};
    if (!q && query_parse(req->target, &own) != CM_OK) {
        query_free(&own);
        cm_hmac_key_release(&mac);
        return out->presigned ? GW_AUTH_QUERY_ERROR : GW_AUTH_HEADER_MALFORMED;
    }
    sv4_buf b;
    canonical_request(req, q ? q : &own, p->signed_headers, payload, out->presigned, &b);
    query_free(&own);
    uint8_t h[32], sig[32];
    char hhex[65];
    if (b.oom) {
        sb_release(&b);
        cm_hmac_key_release(&mac);
        return GW_INTERNAL;
    }
    cm_sha256(b.p, b.n, h);
    cm_hex_encode(h, 32, hhex);

    b.n = 0;
    sb_str(&b, SV4_ALGO "\n");
    sb_str(&b, out->amz_date);
    sb_add(&b, "\n", 1);
    sb_str(&b, out->date);
    sb_add(&b, "/", 1);
    sb_str(&b, out->region);
    sb_add(&b, "/", 1);
    sb_str(&b, out->service);
    sb_str(&b, "/aws4_request\n");
    sb_str(&b, hhex);
    if (b.oom) {
        sb_release(&b);
        cm_hmac_key_release(&mac);
        return GW_INTERNAL;
    }
    cm_hmac_sha256_keyed(&mac, b.p, b.n, sig);
    cm_hmac_key_release(&mac);
    sb_release(&b);
    cm_hex_encode(sig, 32, out->seed_signature);
    if (!cm_ct_equal(out->seed_signature, p->signature, 64)) {
        OPENSSL_cleanse(out->signing_key, sizeof(out->signing_key));
        return GW_SIGNATURE_MISMATCH;
    }
    return GW_OK;
}

/* Request time from x-amz-date, else Date; fills out->amz_date. */
static gw_s3err request_time(const gw_auth_request *req, time_t *t, gw_auth_result *out)
{
    const char *d = header_get(req, "x-amz-date");
    if (d) {
        if (cm_time_parse_amzdate(d, t) != CM_OK)
            return GW_ACCESS_DENIED;
    } else {
        d = header_get(req, "date");
        if (!d || cm_time_parse_http(d, t) != CM_OK)
            return GW_ACCESS_DENIED; /* "AWS authentication requires a valid Date..." */
    }
    cm_time_amzdate(*t, out->amz_date);
    return GW_OK;
}

static gw_s3err check_header_auth(const gw_auth_request *req, const char *authz, const char *region,
                                  gw_secret_fn secret_fn, void *secret_arg, gw_auth_result *out)
{
    sv4_parts p;
    memset(&p, 0, sizeof(p));
    gw_s3err e = parse_authorization(authz, &p);
    if (e != GW_OK)
        return e;
    if (parse_credential(p.credential, p.cred_len, out) != 0 || !signs_host(p.signed_headers))
        return GW_AUTH_HEADER_MALFORMED;
    if ((e = check_scope(out, region, GW_AUTH_HEADER_MALFORMED)) != GW_OK)
        return e;
    time_t t;
    if ((e = request_time(req, &t, out)) != GW_OK)
        return e;
    if (memcmp(out->amz_date, out->date, 8) != 0)
        return GW_AUTH_HEADER_MALFORMED; /* credential date differs from the request date */
    if (t > req->now + SV4_MAX_SKEW || t < req->now - SV4_MAX_SKEW)
        return GW_REQUEST_TIME_TOO_SKEWED;
    const char *payload = header_get(req, "x-amz-content-sha256");
    if (!payload)
        return GW_MISSING_SECURITY_HEADER;
    if ((e = parse_payload_mode(payload, out)) != GW_OK)
        return e;
    /* x-amz-date is the string to sign's date line, x-amz-content-sha256 the payload line */
    if ((e = check_amz_signed(req, p.signed_headers, "x-amz-content-sha256;x-amz-date", out)) !=
        GW_OK)
        return e;
    return verify(req, NULL, &p, payload, secret_fn, secret_arg, out);
}

/* The X-Amz-* parameters of a presigned URL into p and out; GW_AUTH_QUERY_ERROR when bad. */
static gw_s3err parse_presigned(const sv4_query *q, sv4_parts *p, gw_auth_result *out,
                                long *expires, time_t *t)
{
    const char *algo = query_get(q, "X-Amz-Algorithm");
    const char *cred = query_get(q, "X-Amz-Credential");
    const char *date = query_get(q, "X-Amz-Date");
    const char *exp = query_get(q, "X-Amz-Expires");
    const char *sh = query_get(q, "X-Amz-SignedHeaders");
    const char *sig = query_get(q, "X-Amz-Signature");
    if (!algo || strcmp(algo, SV4_ALGO) != 0 || !cred || !date || !exp || !sh || !sig)
        return GW_AUTH_QUERY_ERROR;
    if (parse_credential(cred, strlen(cred), out) != 0 ||
        gw_sigv4_parse_signature(sig, strlen(sig), p->signature) != 0 ||
        strlen(sh) >= sizeof(p->signed_headers) || !signs_host(sh))
        return GW_AUTH_QUERY_ERROR;
    memcpy(p->signed_headers, sh, strlen(sh) + 1); /* length checked above */
    char *end = NULL;
    *expires = strtol(exp, &end, 10);
    if (!*exp || *end || *expires < 1 || *expires > SV4_MAX_EXPIRES)
        return GW_AUTH_QUERY_ERROR;
    if (strlen(date) != 16 || cm_time_parse_amzdate(date, t) != CM_OK ||
        memcmp(date, out->date, 8) != 0)
        return GW_AUTH_QUERY_ERROR;
    memcpy(out->amz_date, date, 17);
    return GW_OK;
}

static gw_s3err check_presigned(const gw_auth_request *req, sv4_query *q, const char *region,
                                gw_secret_fn secret_fn, void *secret_arg, gw_auth_result *out)
{
    sv4_parts p;
    long expires = 0;
    memset(&p, 0, sizeof(p));
    out->presigned = 1;
    time_t t = 0;
    gw_s3err e = parse_presigned(q, &p, out, &expires, &t);
    if (e != GW_OK)
        return e;
    if ((e = check_scope(out, region, GW_AUTH_QUERY_ERROR)) != GW_OK)
        return e;
    if (req->now > t + expires) {
        out->message = "Request has expired";
        return GW_ACCESS_DENIED;
    }
    if (t > req->now + SV4_MAX_SKEW) {
        out->message = "Request is not yet valid";
        return GW_ACCESS_DENIED;
    }
    /* the payload line of the canonical request: the query's hash, else the header's */
    const char *covered = "";
    const char *payload = query_get(q, "X-Amz-Content-Sha256");
    if (!payload && (payload = header_get(req, "x-amz-content-sha256")) != NULL)
        covered = "x-amz-content-sha256";
    if (!payload)
        payload = "UNSIGNED-PAYLOAD";
    if ((e = parse_payload_mode(payload, out)) != GW_OK)
        return e;
    if ((e = check_amz_signed(req, p.signed_headers, covered, out)) != GW_OK)
        return e;
    return verify(req, q, &p, payload, secret_fn, secret_arg, out);
}

gw_s3err gw_auth_check(const gw_auth_request *req, const char *region, gw_secret_fn secret,
                       void *secret_arg, gw_auth_result *out)
{
    memset(out, 0, sizeof(*out));
    const char *authz = header_get(req, "authorization");
    if (authz && strncmp(authz, "AWS ", 4) == 0)
        return gw_sigv2_check(req, req->vhost_bucket, secret, secret_arg, out);
    if (authz)
        return check_header_auth(req, authz, region, secret, secret_arg, out);
    sv4_query q;
    gw_s3err e;
    if (query_parse(req->target, &q) != CM_OK) {
        e = GW_INVALID_ARGUMENT; /* a malformed %-escape in the query */
    } else if (query_get(&q, "X-Amz-Algorithm") || query_get(&q, "X-Amz-Credential") ||
               query_get(&q, "X-Amz-Signature")) {
        e = check_presigned(req, &q, region, secret, secret_arg, out);
    } else if (query_get(&q, "AWSAccessKeyId") && query_get(&q, "Signature")) {
        e = gw_sigv2_check(req, req->vhost_bucket, secret, secret_arg, out);
    } else {
        out->anonymous = 1;
        out->mode = GW_PAYLOAD_UNSIGNED;
        e = GW_OK;
    }
    query_free(&q);
    return e;
}
