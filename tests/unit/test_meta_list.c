/*
 * test_meta_list.c - S3 listing semantics checked against a brute-force reference: random key
 * sets over an alphabet with '/', UTF-8 multibyte sequences and 0xFF bytes (plus keys past
 * LMDB's key limit), random prefix/delimiter/start_after/max_keys queries, and full paging via
 * next_marker. Multipart upload listing likewise, with key and upload-id markers. Seeded; the
 * seed is printed (CAIRN_TEST_SEED repeats a run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cu_main.h"
#include "md.h"

#define NKEYS 400
#define KEYCAP (MD_MAX_KEY + 1)

static unsigned seed;
static char keys[NKEYS][KEYCAP];
static size_t nkeys;

static const char *const atoms[] = {"a", "b", "/", "\xc3\xa9", "\xff", "z", "//", "a/"};

/* Copy src into dst (cap bytes), truncating; always NUL-terminated. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void rand_key(char *k)
{
    size_t len = 0, n = 1 + (size_t)rand() % 6;
    for (size_t i = 0; i < n; i++) {
        const char *a = atoms[rand() % 8];
        memcpy(k + len, a, strlen(a));
        len += strlen(a);
    }
    if (rand() % 40 == 0) { /* a long key, beyond LMDB's own key limit */
        size_t pad = 500 + (size_t)rand() % 400;
        memset(k + len, 'q', pad);
        len += pad;
        k[len++] = (char)(rand() % 2 ? '/' : 'r');
    }
    k[len] = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b); /* strcmp compares as unsigned char: memcmp order */
}

/* Reference entries: strings with a prefix flag. */
typedef struct {
    char s[KEYCAP];
    int is_prefix;
} ref_entry;

static size_t reference(const char *prefix, const char *delim, const char *after, ref_entry *out)
{
    size_t n = 0, plen = strlen(prefix);
    for (size_t i = 0; i < nkeys; i++) {
        const char *k = keys[i];
        if (strncmp(k, prefix, plen) != 0 || (after && strcmp(k, after) <= 0))
            continue;
        const char *d = delim && *delim ? strstr(k + plen, delim) : NULL;
        if (d) {
            size_t cl = (size_t)(d - k) + strlen(delim);
            char cp[KEYCAP];
            memcpy(cp, k, cl);
            cp[cl] = 0;
            if ((after && strcmp(cp, after) <= 0) || (n && strcmp(out[n - 1].s, cp) == 0))
                continue;
            memcpy(out[n].s, cp, cl + 1);
            out[n++].is_prefix = 1;
        } else {
            copy_str(out[n].s, KEYCAP, k);
            out[n++].is_prefix = 0;
        }
    }
    return n;
}

static md_store *md;
static ref_entry ref[NKEYS], got_all[NKEYS + 1];

static void load_keys(const char *dir)
{
    md_bucket b = {.name = "lb"}, b0 = {.name = "la"}, b2 = {.name = "lc"};
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 28, &md), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b0), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b2), CM_OK);
    for (size_t i = 0; i < NKEYS; i++)
        rand_key(keys[i]);
    qsort(keys, NKEYS, KEYCAP, cmp_str);
    nkeys = 0;
    for (size_t i = 0; i < NKEYS; i++) /* unique */
        if (nkeys == 0 || strcmp(keys[nkeys - 1], keys[i]) != 0)
            memmove(keys[nkeys++], keys[i], KEYCAP);
    for (size_t i = 0; i < nkeys; i++) {
        md_object o = {.key = keys[i], .size = i, .etag = "e"};
        CU_ASSERT_EQUAL(md_object_put(md, "lb", &o, NULL, NULL, NULL), CM_OK);
        /* Neighbouring buckets must never leak into lb's listing. */
        if (i % 7 == 0) {
            CU_ASSERT_EQUAL(md_object_put(md, "la", &o, NULL, NULL, NULL), CM_OK);
            CU_ASSERT_EQUAL(md_object_put(md, "lc", &o, NULL, NULL, NULL), CM_OK);
        }
    }
}

static const char *pick_prefix(char *buf)
{
    int r = rand() % 4;
    if (r == 0)
        return "";
    if (r == 1) {
        rand_key(buf);
        buf[rand() % 3] = 0;
        return buf;
    }
    const char *k = keys[(size_t)rand() % nkeys];
    size_t l = (size_t)rand() % (strlen(k) + 1);
    memcpy(buf, k, l);
    buf[l] = 0;
    return buf;
}

/* Page through with next_marker; the pages must concatenate to the reference. */
static int check_query(const char *prefix, const char *delim, const char *after, size_t max)
{
    size_t nref = reference(prefix, delim, after, ref), ngot = 0;
    static char marker[KEYCAP];
    md_list_query q = {prefix, delim, after, max};
    for (int pages = 0; pages < NKEYS + 2; pages++) {
        md_list_result res;
        if (md_list_objects(md, "lb", &q, &res) != CM_OK)
            return 0;
        for (size_t i = 0; i < res.n && ngot < NKEYS + 1; i++, ngot++) {
            snprintf(got_all[ngot].s, KEYCAP, "%s", res.entries[i].key);
            got_all[ngot].is_prefix = res.entries[i].is_prefix;
            if (!res.entries[i].is_prefix && res.entries[i].obj.etag[0] != 'e')
                ngot = NKEYS + 1; /* summary fields missing */
        }
        int more = res.truncated;
        if (res.n > max || (more && (!res.next_marker || res.n == 0 ||
                                     strcmp(res.next_marker, res.entries[res.n - 1].key))))
            ngot = NKEYS + 1;
        if (more)
            snprintf(marker, sizeof(marker), "%s", res.next_marker);
        md_list_result_release(&res);
        if (!more)
            break;
        q.start_after = marker;
    }
    if (ngot != nref) {
        fprintf(stderr, "seed %u: prefix '%s' delim '%s' after '%s' max %zu: %zu vs %zu\n", seed,
                prefix, delim ? delim : "", after ? after : "", max, ngot, nref);
        return 0;
    }
    for (size_t i = 0; i < nref; i++)
        if (strcmp(ref[i].s, got_all[i].s) || ref[i].is_prefix != got_all[i].is_prefix)
            return 0;
    return 1;
}

static void test_list_vs_reference(void)
{
    char dir[512], pbuf[KEYCAP], abuf[KEYCAP];
    snprintf(dir, sizeof(dir), "%s/list", cu_tmpdir());
    srand(seed);
    load_keys(dir);
    static const char *const delims[] = {NULL, "", "/", "\xff", "a/", "\xc3\xa9"};
    int bad = 0;
    for (int iter = 0; iter < 400; iter++) {
        const char *prefix = pick_prefix(pbuf);
        const char *delim = delims[rand() % 6];
        const char *after = NULL;
        if (rand() % 2)
            after = pick_prefix(abuf);
        size_t max = rand() % 5 == 0 ? 1000 : 1 + (size_t)rand() % 7;
        if (!check_query(prefix, delim, after, max))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* Whole listing in one page equals the sorted key set. */
    CU_ASSERT_TRUE(check_query("", NULL, NULL, 100000));
    md_close(md);
}

static void test_list_edges(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/edges", cu_tmpdir());
    md_bucket b = {.name = "e"};
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 24, &md), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    const char *ks[] = {"a/1", "a/2", "a/b/3", "b", "c/\xff\xff", "c/\xff\xff/x", "d"};
    for (size_t i = 0; i < 7; i++) {
        md_object o = {.key = (char *)ks[i], .etag = "e"};
        CU_ASSERT_EQUAL(md_object_put(md, "e", &o, NULL, NULL, NULL), CM_OK);
    }
    md_list_result res;
    md_list_query q = {NULL, "/", NULL, 0};
    CU_ASSERT_EQUAL(md_list_objects(md, "e", &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 0);
    CU_ASSERT_EQUAL(res.truncated, 0); /* max-keys=0: S3 says not truncated */
    md_list_result_release(&res);
    q = (md_list_query){NULL, "/", "a/", 10};
    CU_ASSERT_EQUAL_FATAL(md_list_objects(md, "e", &q, &res), CM_OK);
    CU_ASSERT_EQUAL_FATAL(res.n, 3); /* "a/" not repeated */
    CU_ASSERT_STRING_EQUAL(res.entries[0].key, "b");
    CU_ASSERT_STRING_EQUAL(res.entries[1].key, "c/");
    CU_ASSERT_EQUAL(res.entries[1].is_prefix, 1);
    CU_ASSERT_STRING_EQUAL(res.entries[2].key, "d");
    md_list_result_release(&res);
    q = (md_list_query){"c/", "/", NULL, 2};
    CU_ASSERT_EQUAL_FATAL(md_list_objects(md, "e", &q, &res), CM_OK);
    CU_ASSERT_EQUAL_FATAL(res.n, 2);
    CU_ASSERT_STRING_EQUAL(res.entries[0].key, "c/\xff\xff");
    CU_ASSERT_STRING_EQUAL(res.entries[1].key, "c/\xff\xff/");
    CU_ASSERT_EQUAL(res.truncated, 0);
    md_list_result_release(&res);
    q = (md_list_query){NULL, NULL, NULL, 7};
    CU_ASSERT_EQUAL(md_list_objects(md, "e", &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 7);
    CU_ASSERT_EQUAL(res.truncated, 0); /* exactly max: nothing more */
    md_list_result_release(&res);
    q.max_keys = 6;
    CU_ASSERT_EQUAL(md_list_objects(md, "e", &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.truncated, 1);
    CU_ASSERT_STRING_EQUAL(res.next_marker, "c/\xff\xff/x");
    md_list_result_release(&res);
    CU_ASSERT_EQUAL(md_list_objects(md, "nobucket", &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 0);
    md_list_result_release(&res);
    md_close(md);
}

/* ---- Upload listing ---- */

typedef struct {
    char key[32], id[16];
} up_ref;

static up_ref ups[300];
static size_t nups;

static int cmp_up(const void *a, const void *b)
{
    const up_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->id, y->id);
}

/* Reference: entries as "U:key:id" or "P:prefix" strings, in order. */
static size_t up_reference(const md_upload_query *q, char out[][64])
{
    size_t n = 0, plen = strlen(q->prefix);
    for (size_t i = 0; i < nups; i++) {
        const up_ref *u = &ups[i];
        if (strncmp(u->key, q->prefix, plen) != 0)
            continue;
        const char *d = q->delimiter ? strstr(u->key + plen, q->delimiter) : NULL;
        char e[64];
        if (d) {
            int cl = (int)(d - u->key) + 1;
            snprintf(e, sizeof(e), "P:%.*s", cl, u->key);
            if (q->key_marker && strcmp(e + 2, q->key_marker) <= 0)
                continue;
            if (n && strcmp(out[n - 1], e) == 0)
                continue;
        } else {
            if (q->key_marker) {
                int c = strcmp(u->key, q->key_marker);
                if (c < 0 ||
                    (c == 0 && (!q->upload_id_marker || strcmp(u->id, q->upload_id_marker) <= 0)))
                    continue;
            }
            if (snprintf(e, sizeof(e), "U:%s:%s", u->key, u->id) >= (int)sizeof(e))
                CU_FAIL("reference key too long for the test buffer");
        }
        copy_str(out[n++], 64, e);
    }
    return n;
}

/* Merge one page's uploads and prefixes back into one ordered stream of reference strings. */
static size_t merge_page(const md_upload_list *res, char got[][64], size_t ng)
{
    size_t iu = 0, ip = 0;
    while ((iu < res->n || ip < res->nprefixes) && ng < 300) {
        int take_p = ip < res->nprefixes &&
                     (iu == res->n || strcmp(res->prefixes[ip], res->uploads[iu].key) < 0);
        if (take_p) {
            snprintf(got[ng++], 64, "P:%s", res->prefixes[ip++]);
        } else {
            snprintf(got[ng++], 64, "U:%.30s:%.20s", res->uploads[iu].key,
                     res->uploads[iu].upload_id);
            iu++;
        }
    }
    return ng;
}

/* Page through with the next markers; returns the entry count, counting oversize pages in *bad. */
static size_t page_uploads(md_upload_query q, char got[][64], int *bad)
{
    char km[64] = "", im[64] = "";
    size_t ng = 0;
    for (int page = 0; page < 300; page++) {
        md_upload_list res;
        if (md_upload_list_query(md, "ub", &q, &res) != CM_OK) {
            (*bad)++;
            break;
        }
        ng = merge_page(&res, got, ng);
        if (res.n + res.nprefixes > q.max_uploads)
            (*bad)++;
        int more = res.truncated;
        if (more) {
            snprintf(km, sizeof(km), "%s", res.next_key_marker);
            snprintf(im, sizeof(im), "%s",
                     res.next_upload_id_marker ? res.next_upload_id_marker : "");
        }
        md_upload_list_release(&res);
        if (!more)
            break;
        q.key_marker = km;
        q.upload_id_marker = im[0] ? im : NULL;
    }
    return ng;
}

static void test_upload_listing(void)
{
    char dir[512];
    static char want[300][64], got[300][64];
    snprintf(dir, sizeof(dir), "%s/uplist", cu_tmpdir());
    md_bucket b = {.name = "ub"}, b2 = {.name = "ub2"};
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 24, &md), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b2), CM_OK);
    srand(seed);
    nups = 0;
    static const char *const kk[] = {"a", "a/x", "a/y", "ab", "b/c/d", "b/e", "c"};
    for (size_t i = 0; i < 7; i++)
        for (int j = 0; j < 1 + rand() % 4; j++) {
            up_ref *u = &ups[nups++];
            snprintf(u->key, sizeof(u->key), "%s", kk[i]);
            snprintf(u->id, sizeof(u->id), "%08x-%d", (unsigned)rand(), j);
            md_upload up = {.key = u->key};
            snprintf(up.upload_id, sizeof(up.upload_id), "%s", u->id);
            CU_ASSERT_EQUAL(md_upload_create(md, "ub", &up), CM_OK);
            CU_ASSERT_EQUAL(md_upload_create(md, "ub2", &up), CM_OK);
        }
    qsort(ups, nups, sizeof(ups[0]), cmp_up);
    static const char *const prefixes[] = {"", "a", "b/"};
    static const char *const delims[] = {NULL, "/"};
    int bad = 0;
    for (size_t pi = 0; pi < 3; pi++)
        for (size_t di = 0; di < 2; di++)
            for (size_t max = 1; max <= 5; max++) {
                md_upload_query q = {prefixes[pi], delims[di], NULL, NULL, max};
                size_t nw = up_reference(&q, want);
                size_t ng = page_uploads(q, got, &bad);
                if (ng != nw)
                    bad++;
                for (size_t i = 0; i < nw && i < ng; i++)
                    if (strcmp(want[i], got[i]))
                        bad++;
            }
    CU_ASSERT_EQUAL(bad, 0);
    /* key_marker without an id marker skips every upload of that key. */
    md_upload_query q = {"", NULL, "a", NULL, 100};
    md_upload_list res;
    CU_ASSERT_EQUAL_FATAL(md_upload_list_query(md, "ub", &q, &res), CM_OK);
    CU_ASSERT_TRUE(res.n > 0 && strcmp(res.uploads[0].key, "a/x") == 0);
    CU_ASSERT_EQUAL(res.truncated, 0);
    CU_ASSERT_PTR_NULL(res.next_key_marker);
    md_upload_list_release(&res);
    md_close(md);
}

void cu_register(void)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("test_meta_list seed=%u (set CAIRN_TEST_SEED to repeat)\n", seed);
    static const cu_test tests[] = {{"list_vs_reference", test_list_vs_reference},
                                    {"list_edges", test_list_edges},
                                    {"upload_listing", test_upload_listing},
                                    {NULL, NULL}};
    cu_add_suite("meta_list", tests);
}
