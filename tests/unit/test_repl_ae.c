/*
 * test_repl_ae.c - the coordinator's anti-entropy (rp_antientropy: converging replicas, collecting
 * tombstones) and its merged listings, over fake replicas (the fixture is rp_env.h, shared with
 * test_repl_coord.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "rp_env.h"

/* ---- anti-entropy ---- */

static void test_antientropy(void)
{
    env_up(1, 5000, RP_STRONG);
    char key[32], etag[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "key%04d", i);
        snprintf(etag, sizeof(etag), "e%d", i);
        /* Keys 0-99 miss on f2, 100-199 on f1, 200-219 are deleted without f0, rest in sync. */
        set_fault(2, i < 100, 0, 0);
        set_fault(1, i >= 100 && i < 200, 0, 0);
        CU_ASSERT_EQUAL(put(0, key, etag, NULL), CM_OK);
    }
    set_fault(1, 0, 0, 0);
    set_fault(2, 0, 0, 0);
    set_fault(0, 1, 0, 0);
    for (int i = 200; i < 220; i++) {
        snprintf(key, sizeof(key), "key%04d", i);
        CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, key, NULL, NULL, NULL), CM_OK);
    }
    set_fault(0, 0, 0, 0);
    rp_ae_result res;
    int runs = 0;
    do {
        CU_ASSERT_EQUAL_FATAL(rp_antientropy_run(E.c[0], B, 0, 2, 150, &res), CM_OK);
        runs++;
    } while (res.more && runs < 10);
    CU_ASSERT(runs >= 2 && runs <= 5); /* 220 differing keys, at most 150 a call */
    CU_ASSERT_EQUAL_FATAL(rp_antientropy_run(E.c[0], B, 0, 2, 150, &res), CM_OK);
    CU_ASSERT_EQUAL(res.leaves_differing, 0);
    CU_ASSERT_EQUAL(res.keys_repaired, 0);
    rp_stats st;
    rp_get_stats(E.c[0], &st);
    CU_ASSERT_EQUAL(st.ae_writes, 220);
    coords_free();
    md_object a = {0}, b = {0};
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "key%04d", i);
        CU_ASSERT_EQUAL(fake_rec(E.f[0], B, 0, key, &a), CM_OK);
        for (int f = 1; f < 3; f++) {
            CU_ASSERT_EQUAL(fake_rec(E.f[f], B, 0, key, &b), CM_OK);
            CU_ASSERT(same_version(&a, &b));
            md_object_release(&b);
        }
        CU_ASSERT_EQUAL(a.tombstone, i >= 200 && i < 220);
        md_object_release(&a);
    }
    env_down();
}

/* The etags fake i holds for keys "c<from>".."c<to-1>": how many are tombstones, absent, live. */
static void count_keys(int i, int from, int to, int *tomb, int *absent, int *live)
{
    md_object keep = {0};
    char key[32];
    *tomb = *absent = *live = 0;
    for (int k = from; k < to; k++) {
        snprintf(key, sizeof(key), "c%02d", k);
        const char *e = stored(i, key, &keep);
        *tomb += strcmp(e, "-") == 0;
        *absent += !*e;
        *live += *e && strcmp(e, "-") != 0;
    }
    md_object_release(&keep);
}

/* Wait for every replica write in flight (rp_free does), then new coordinators as env_up's. */
static void coords_settle(uint32_t nshards, int timeout_ms)
{
    coords_free();
    for (int i = 0; i < 2; i++) {
        rp_config cfg = config(i + 1, nshards, timeout_ms);
        cfg.keylocks = E.locks;
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &E.c[i]), CM_OK);
    }
}

static rp_ae_result collect(uint64_t before)
{
    rp_ae_result res;
    CU_ASSERT_EQUAL(rp_antientropy_collect(E.c[0], B, 0, 2, 1000, before, &res), CM_OK);
    return res;
}

/*
 * Tombstone collection (rp_antientropy_collect): not while a home is silent, lacks a tombstone
 * or holds another version of it (old records differ); then every old tombstone goes from every
 * home, a stale hint of a collected key is refused where it lands, and new writes are applied.
 */
static void test_collect(void)
{
    env_up(1, 5000, RP_STRONG);
    char key[32];
    for (int k = 0; k < 30; k++) {
        snprintf(key, sizeof(key), "c%02d", k);
        CU_ASSERT_EQUAL(put(0, key, "v1", NULL), CM_OK);
    }
    /* c00: a write while f2 is down leaves a hint on the stand-in f3, then a delete */
    E.mode = RP_AVAILABLE;
    set_fault(2, 1, 0, 0);
    CU_ASSERT_EQUAL(put(0, "c00", "stale", NULL), CM_OK);
    set_fault(2, 0, 0, 0);
    E.mode = RP_STRONG;
    /* the stand-in's write may end after the put answered (W = 2 came first): wait for it */
    for (int i = 0; i < 500 && fake_hints(E.f[3], "f2") == 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    CU_ASSERT_EQUAL(fake_hints(E.f[3], "f2"), 1);
    for (int k = 0; k < 10; k++) { /* c00..c09: deleted everywhere */
        snprintf(key, sizeof(key), "c%02d", k);
        CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, key, NULL, NULL, NULL), CM_OK);
    }
    set_fault(2, 1, 0, 0); /* c10, c11: f2 lacks the delete; c12: f2 holds an older one */
    CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, "c10", NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, "c11", NULL, NULL, NULL), CM_OK);
    set_fault(2, 0, 0, 0);
    CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, "c12", NULL, NULL, NULL), CM_OK);
    set_fault(2, 1, 0, 0);
    CU_ASSERT_EQUAL(put(0, "c12", "v2", NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, "c12", NULL, NULL, NULL), CM_OK);
    set_fault(2, 0, 0, 0);
    coords_settle(1, 5000); /* the third home's writes have landed */
    uint64_t before = md_hlc_now(&E.clk[0]);
    uint64_t b2 = md_hlc_now(&E.clk[1]);
    before = (before > b2 ? before : b2) + 1; /* every write so far is older: a grace of 0 */
    /* f2 lacks two tombstones and holds another version of a third: repaired, not collected */
    rp_ae_result r = collect(before);
    CU_ASSERT_EQUAL(r.collect_skipped, 1);
    CU_ASSERT_EQUAL(r.tombs_collected, 0);
    CU_ASSERT_EQUAL(r.keys_repaired, 3);
    int tomb, absent, live;
    for (int i = 0; i < 3; i++) {
        count_keys(i, 0, 30, &tomb, &absent, &live);
        CU_ASSERT_EQUAL(tomb, 13);
        CU_ASSERT_EQUAL(live, 17);
    }
    /* a silent home: nothing is collected */
    set_fault(1, 1, 0, 0);
    r = collect(before);
    CU_ASSERT_EQUAL(r.collect_skipped, 1);
    CU_ASSERT_EQUAL(r.tombs_collected, 0);
    set_fault(1, 0, 0, 0);
    /* in sync: all 13 collected on all three homes; the live keys stay */
    r = collect(before);
    CU_ASSERT_EQUAL(r.collect_skipped, 0);
    CU_ASSERT_EQUAL(r.tombs_listed, 13);
    CU_ASSERT_EQUAL(r.tombs_collected, 13);
    for (int i = 0; i < 3; i++) {
        count_keys(i, 0, 30, &tomb, &absent, &live);
        CU_ASSERT_EQUAL(tomb, 0);
        CU_ASSERT_EQUAL(absent, 13);
        CU_ASSERT_EQUAL(live, 17);
    }
    r = collect(before); /* nothing left, nothing differs */
    CU_ASSERT_EQUAL(r.tombs_listed, 0);
    CU_ASSERT_EQUAL(r.leaves_differing, 0);
    rp_stats st;
    rp_get_stats(E.c[0], &st);
    CU_ASSERT_EQUAL(st.tombs_collected, 13);
    CU_ASSERT_EQUAL(st.collect_skipped, 2);
    /* the stale hint for c00 arrives now: f2 does not apply it (its mark is above it) */
    fake_counts fc;
    CU_ASSERT_EQUAL(fake_deliver_hints(E.f[3], E.f[2], 1), 1);
    fake_counts_get(E.f[2], &fc);
    CU_ASSERT_EQUAL(fc.refused, 1);
    md_object o;
    CU_ASSERT_EQUAL(rp_object_get(E.c[0], B, "c00", &o), CM_ERR_NOTFOUND);
    /* a new write of a collected key is applied everywhere */
    CU_ASSERT_EQUAL(put(1, "c01", "again", NULL), CM_OK);
    coords_free();
    md_object keep = {0};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(stored(i, "c00", &keep), "");
        CU_ASSERT_STRING_EQUAL(stored(i, "c01", &keep), "again");
    }
    md_object_release(&keep);
    env_down();
}

/* ---- listing ---- */

/* The keys of the listing tests: rollups at several depths, neighbours of the delimiter in byte
 * order ('-' < '/'), empty segments, UTF-8, and one large prefix. */
static int list_keys(char keys[][32], size_t max)
{
    size_t n = 0;
    for (int i = 0; i < 20 && n < max; i++)
        snprintf(keys[n++], 32, "a/b/c%02d", i);
    for (int i = 0; i < 20 && n < max; i++)
        snprintf(keys[n++], 32, "a/x%02d", i);
    for (int i = 0; i < 10 && n < max; i++)
        snprintf(keys[n++], 32, "a-%02d", i);
    for (int i = 0; i < 10 && n < max; i++)
        snprintf(keys[n++], 32, "b/%02d/z", i);
    for (int i = 0; i < 10 && n < max; i++)
        snprintf(keys[n++], 32, "b%02d", i);
    static const char *odd[] = {"c", "c/", "c//d", "c/d/", "d", "\xc3\xa9/1", "\xc3\xa9/2"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]) && n < max; i++)
        snprintf(keys[n++], 32, "%s", odd[i]);
    for (int i = 0; i < 240 && n < max; i++)
        snprintf(keys[n++], 32, "big/%04d", i);
    return (int)n;
}

typedef struct {
    int ci, from, to;
    char (*keys)[32];
} loader;

static void *load_loop(void *arg)
{
    loader *l = arg;
    for (int i = l->from; i < l->to; i++) {
        const char *k = l->keys[i];
        if (i % 11 == 5)
            CU_ASSERT_EQUAL(rp_object_delete(E.c[l->ci], B, k, NULL, NULL, NULL), CM_OK);
        if (i % 11 != 5 || i % 2)
            CU_ASSERT_EQUAL(put(l->ci, k, i % 7 ? "e1" : "e2", NULL), CM_OK);
    }
    return NULL;
}

/* Write the keys through both coordinators, 4 threads; every 11th key is deleted (half of them
 * written again after), with one replica down for the first half so replicas disagree. The
 * reference store gets the surviving keys. */
static md_store *list_env(char keys[][32], int *nkeys)
{
    env_up(8, 5000, RP_STRONG);
    *nkeys = list_keys(keys, 400);
    for (int i = 0; i < *nkeys; i++) /* some keys first written with another etag */
        if (i % 5 == 0)
            CU_ASSERT_EQUAL(put(0, keys[i], "old", NULL), CM_OK);
    set_fault(1, 1, 0, 0);
    loader l[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        l[t] = (loader){t % 2, *nkeys * t / 4, *nkeys * (t + 1) / 4, keys};
        if (t == 2) {
            pthread_join(th[0], NULL);
            pthread_join(th[1], NULL);
            set_fault(1, 0, 0, 0);
        }
        pthread_create(&th[t], NULL, load_loop, &l[t]);
    }
    pthread_join(th[2], NULL);
    pthread_join(th[3], NULL);
    char path[300];
    snprintf(path, sizeof(path), "%s/ref", E.dir);
    md_store *ref = NULL;
    CU_ASSERT_EQUAL_FATAL(md_open(path, 0, &ref), CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", B);
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(ref, &b), CM_OK);
    for (int i = 0; i < *nkeys; i++) {
        if (i % 11 == 5 && i % 2 == 0)
            continue;
        md_object o = mkobj(keys[i], i % 7 ? "e1" : "e2");
        CU_ASSERT_EQUAL(md_object_put(ref, B, &o, NULL, NULL, NULL), CM_OK);
        md_object_release(&o);
    }
    return ref;
}

/* Page through one query on both sides; 1 when every page agrees. */
static int same_pages(md_store *ref, md_list_query q, int *pages)
{
    char *marker = NULL;
    int ok = 1;
    for (*pages = 0; ok && *pages < 500; (*pages)++) {
        md_list_result a, b;
        q.start_after = marker;
        if (md_list_objects(ref, B, &q, &a) != CM_OK)
            return 0;
        if (rp_list_objects(E.c[*pages % 2], B, &q, &b) != CM_OK) {
            md_list_result_release(&a);
            return 0;
        }
        ok = a.n == b.n && a.truncated == b.truncated && !a.next_marker == !b.next_marker &&
             (!a.next_marker || strcmp(a.next_marker, b.next_marker) == 0);
        for (size_t i = 0; ok && i < a.n; i++)
            ok = strcmp(a.entries[i].key, b.entries[i].key) == 0 &&
                 a.entries[i].is_prefix == b.entries[i].is_prefix &&
                 strcmp(a.entries[i].obj.etag, b.entries[i].obj.etag) == 0;
        int more = a.truncated;
        free(marker);
        marker = a.next_marker ? strdup(a.next_marker) : NULL;
        md_list_result_release(&a);
        md_list_result_release(&b);
        if (!more)
            break;
    }
    free(marker);
    return ok;
}

static void test_list_matches_md(void)
{
    static char keys[400][32];
    int nkeys;
    md_store *ref = list_env(keys, &nkeys);
    static const char *prefixes[] = {"",  "a",  "a/",   "a/b/", "b",
                                     "c", "c/", "big/", "zz",   "\xc3\xa9"};
    static const char *delims[] = {NULL, "/", "-", "b/", "//"};
    static const size_t maxes[] = {1, 2, 3, 10, 1000};
    unsigned seed = 20261204;
    int queries = 0, checked = 0;
    for (int i = 0; i < 150; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        md_list_query q = {0};
        q.prefix = prefixes[r % 10];
        q.delimiter = delims[(r / 10) % 5];
        q.max_keys = maxes[(r / 50) % 5];
        if (q.max_keys < 3 && !*q.prefix && !q.delimiter)
            q.max_keys = 7; /* 300 pages of one key each add time and nothing else */
        int pages;
        int ok = same_pages(ref, q, &pages);
        if (!ok)
            fprintf(stderr, "listing differs: prefix '%s' delimiter '%s' max %zu\n", q.prefix,
                    q.delimiter ? q.delimiter : "", q.max_keys);
        CU_ASSERT(ok);
        queries++;
        checked += pages;
    }
    /* Markers that are not keys: inside a rolled-up prefix, before everything, past the end. */
    static const char *markers[] = {"a/b", "a/b/", "a/b/zz", "", "b/05", "\xff"};
    for (size_t m = 0; m < sizeof(markers) / sizeof(markers[0]); m++) {
        md_list_result a, b;
        md_list_query q = {"", "/", markers[m], 3};
        CU_ASSERT_EQUAL_FATAL(md_list_objects(ref, B, &q, &a), CM_OK);
        CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c[0], B, &q, &b), CM_OK);
        CU_ASSERT_EQUAL(a.n, b.n);
        for (size_t i = 0; i < a.n && i < b.n; i++)
            CU_ASSERT_STRING_EQUAL(a.entries[i].key, b.entries[i].key);
        md_list_result_release(&a);
        md_list_result_release(&b);
    }
    CU_ASSERT(queries == 150 && checked > 300);
    md_close(ref);
    env_down();
}

/* A shard page that holds only tombstones (deleted keys) is no end of the shard: the next page
 * is read before the merge goes on. Before, such a cursor was skipped for that round, so a key
 * of another shard was listed first: keys out of order, and with max_keys 1 the deleted shard's
 * next live key never listed (the marker was past it). */
static void test_list_deleted_page(void)
{
    env_up(2, 5000, RP_STRONG);
    char key[32], live[32] = "", other[32] = "";
    int deleted = 0;
    for (int i = 0; i < 400 && (deleted < 40 || !live[0] || !other[0]); i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        if (rp_shard_of(key, 2) == 1) {
            if (!other[0] && live[0]) /* the first key of shard 1 after the live one */
                snprintf(other, sizeof(other), "%s", key);
            continue;
        }
        if (live[0])
            continue;
        CU_ASSERT_EQUAL_FATAL(put(0, key, "e", NULL), CM_OK);
        if (deleted < 40) {
            CU_ASSERT_EQUAL_FATAL(rp_object_delete(E.c[0], B, key, NULL, NULL, NULL), CM_OK);
            deleted++;
        } else if (!live[0]) {
            snprintf(live, sizeof(live), "%s", key);
        }
    }
    CU_ASSERT_FATAL(live[0] && other[0] && strcmp(live, other) < 0);
    CU_ASSERT_EQUAL_FATAL(put(1, other, "e", NULL), CM_OK);
    md_list_query q = {"", NULL, NULL, 1};
    md_list_result res;
    CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c[0], B, &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 1);
    CU_ASSERT(res.n == 1 && strcmp(res.entries[0].key, live) == 0);
    md_list_result_release(&res);
    q.max_keys = 10;
    CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c[0], B, &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 2);
    CU_ASSERT(res.n == 2 && strcmp(res.entries[0].key, live) == 0 &&
              strcmp(res.entries[1].key, other) == 0);
    md_list_result_release(&res);
    env_down();
}

static unsigned list_calls(unsigned *listed)
{
    unsigned n = 0;
    *listed = 0;
    for (int i = 0; i < NF; i++) {
        fake_counts c;
        fake_counts_get(E.f[i], &c);
        n += c.lists;
        *listed += c.listed;
    }
    return n;
}

/* A page costs the same replica calls whether it is the first or the last of a large prefix,
 * and a rolled-up prefix costs a page per shard, not its keys. */
static void test_list_steady_cost(void)
{
    static char keys[400][32];
    int nkeys;
    md_store *ref = list_env(keys, &nkeys);
    md_list_query q = {"big/", NULL, NULL, 20};
    char *marker = NULL;
    unsigned calls[32], recs[32], l0, r0, l1, r1;
    int pages = 0;
    for (; pages < 32; pages++) {
        md_list_result res;
        q.start_after = marker;
        l0 = list_calls(&r0);
        CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c[0], B, &q, &res), CM_OK);
        l1 = list_calls(&r1);
        calls[pages] = l1 - l0;
        recs[pages] = r1 - r0;
        free(marker);
        marker = res.next_marker ? strdup(res.next_marker) : NULL;
        int more = res.truncated;
        md_list_result_release(&res);
        if (!more)
            break;
    }
    free(marker);
    CU_ASSERT(pages >= 9); /* ~220 live keys, 20 a page */
    /* page = (20 + 1) * 2 / 8 + 16 = 21 records per shard: each page reads every shard once
     * from its 3 homes (24 calls), a shard whose page ran out once more. */
    for (int p = 0; p < pages; p++) {
        CU_ASSERT(calls[p] >= 24 && calls[p] <= 48);
        CU_ASSERT(recs[p] <= 48 * 21);
    }
    /* Delimiter at the root, from after b09: big/ (220 keys) rolls up; each rolled-up prefix
     * costs at most one more page per shard (the seek past it), whatever it holds. */
    md_list_query d = {"", "/", "b09", 8};
    md_list_result res;
    l0 = list_calls(&r0);
    CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c[0], B, &d, &res), CM_OK);
    l1 = list_calls(&r1);
    size_t ncp = 0;
    for (size_t i = 0; i < res.n; i++)
        ncp += res.entries[i].is_prefix;
    CU_ASSERT_EQUAL(ncp, 3); /* big/ c/ é/ */
    CU_ASSERT(l1 - l0 <= 24 * (ncp + 1));
    CU_ASSERT(r1 - r0 <= (l1 - l0) * 16);
    md_list_result_release(&res);
    md_close(ref);
    env_down();
}

void cu_register(void)
{
    static const cu_test ae[] = {
        {"converge", test_antientropy}, {"collect", test_collect}, {NULL, NULL}};
    static const cu_test list[] = {{"matches_md_list", test_list_matches_md},
                                   {"steady_cost", test_list_steady_cost},
                                   {"deleted_page", test_list_deleted_page},
                                   {NULL, NULL}};
    cu_add_suite("repl_antientropy", ae);
    cu_add_suite("repl_list", list);
}
