/*
 * test_meta.c - the LMDB metadata store: buckets, objects, conditional writes (including four
 * racing threads), long keys beyond LMDB's key limit, long values stored split, multipart uploads,
 * and persistence across reopen. Each test uses its own store directory under the per-process
 * scratch dir.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL(md_open(dir, 1 << 26, &md), CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    snprintf(b.owner, sizeof(b.owner), "AKIDEXAMPLE");
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

/* A plain object record: key, etag, size (not owned: strings point at the arguments). */
static md_object mk_obj(const char *key, const char *etag, uint64_t size)
{
    md_object o = {0};
    o.key = (char *)key;
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = size;
    o.mtime_ms = 1700000000123LL;
    return o;
}

static void test_buckets(void)
{
    md_store *md = open_store("buckets");
    md_bucket b, *all;
    size_t n;
    mk_bucket(md, "zeta");
    mk_bucket(md, "alpha");
    mk_bucket(md, "alpha-2");
    b = (md_bucket){.name = "alpha"};
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(md_bucket_get(md, "alpha", &b), CM_OK);
    CU_ASSERT_STRING_EQUAL(b.name, "alpha");
    CU_ASSERT_STRING_EQUAL(b.owner, "AKIDEXAMPLE");
    CU_ASSERT_EQUAL(b.created_ms, 1700000000000LL);
    CU_ASSERT_EQUAL(md_bucket_get(md, "nope", &b), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_bucket_list(md, &all, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(all[0].name, "alpha");
    CU_ASSERT_STRING_EQUAL(all[1].name, "alpha-2");
    CU_ASSERT_STRING_EQUAL(all[2].name, "zeta");
    free(all);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "alpha", NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "alpha", NULL, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_get(md, "alpha", &b), CM_ERR_NOTFOUND);
    md_close(md);
    md_close(NULL);
}

static void test_objects(void)
{
    md_store *md = open_store("objects");
    md_object o = mk_obj("dir/a.txt", "aaaa", 10), got, old;
    int had = -1;
    CU_ASSERT_EQUAL(md_object_put(md, "nob", &o, NULL, NULL, NULL), CM_ERR_NOTFOUND);
    mk_bucket(md, "b1");
    CU_ASSERT_EQUAL(md_object_put(md, "b1", &o, NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b1", "dir/a.txt", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.key, "dir/a.txt");
    CU_ASSERT_STRING_EQUAL(got.etag, "aaaa");
    CU_ASSERT_EQUAL(got.size, 10);
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_object_get(md, "b1", "dir/b.txt", &got), CM_ERR_NOTFOUND);
    /* Replacing hands back the old record. */
    o = mk_obj("dir/a.txt", "bbbb", 20);
    CU_ASSERT_EQUAL(md_object_put(md, "b1", &o, NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "aaaa");
    md_object_release(&old);
    /* Delete a missing key: fine, nothing returned. */
    CU_ASSERT_EQUAL(md_object_delete(md, "b1", "missing", NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    CU_ASSERT_EQUAL(md_object_delete(md, "b1", "dir/a.txt", NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "bbbb");
    md_object_release(&old);
    CU_ASSERT_EQUAL(md_object_get(md, "b1", "dir/a.txt", &got), CM_ERR_NOTFOUND);
    /* A delete marker is returned as a record. */
    o = mk_obj("gone", "", 0);
    o.delete_marker = 1;
    CU_ASSERT_EQUAL(md_object_put(md, "b1", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b1", "gone", &got), CM_OK);
    CU_ASSERT_EQUAL(got.delete_marker, 1);
    md_object_release(&got);
    md_close(md);
}

static void test_conditions(void)
{
    md_store *md = open_store("cond");
    mk_bucket(md, "b");
    md_object o = mk_obj("k", "e1", 1);
    md_cond inm = {.if_none_match_star = 1};
    md_cond im = {.if_match = "e1"}, im_bad = {.if_match = "zz"}, im_any = {.if_match = "*"};
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im, NULL, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im_any, NULL, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &inm, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &inm, NULL, NULL), CM_ERR_PRECONDITION);
    o = mk_obj("k", "e2", 2);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im_bad, NULL, NULL), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im_any, NULL, NULL), CM_OK);
    /* Delete with If-Match. */
    CU_ASSERT_EQUAL(md_object_delete(md, "b", "k", &im, NULL, NULL), CM_ERR_PRECONDITION);
    md_object got;
    CU_ASSERT_EQUAL(md_object_get(md, "b", "k", &got), CM_OK);
    md_object_release(&got);
    md_cond im2 = {.if_match = "e2"};
    CU_ASSERT_EQUAL(md_object_delete(md, "b", "k", &im2, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_delete(md, "b", "k", &im2, NULL, NULL), CM_ERR_NOTFOUND);
    /* A delete marker does not count as existing. */
    o = mk_obj("k", "", 0);
    o.delete_marker = 1;
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &im_any, NULL, NULL), CM_ERR_NOTFOUND);
    o = mk_obj("k", "e3", 3);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &inm, NULL, NULL), CM_OK);
    md_close(md);
}

typedef struct {
    md_store *md;
    pthread_barrier_t *bar;
    int id;
    int wins, losses;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char etag[16];
    snprintf(etag, sizeof(etag), "t%d", r->id);
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof(key), "lock-%d", i);
        md_object o = mk_obj(key, etag, 1);
        md_cond c = {.if_none_match_star = 1};
        pthread_barrier_wait(r->bar);
        cm_err e = md_object_put(r->md, "b", &o, &c, NULL, NULL);
        if (e == CM_OK)
            r->wins++;
        else if (e == CM_ERR_PRECONDITION)
            r->losses++;
    }
    return NULL;
}

static void test_conditional_race(void)
{
    md_store *md = open_store("race");
    mk_bucket(md, "b");
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 4);
    racer r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){md, &bar, i, 0, 0};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    int wins = 0, losses = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        wins += r[i].wins, losses += r[i].losses;
    }
    pthread_barrier_destroy(&bar);
    CU_ASSERT_EQUAL(wins, 50); /* exactly one winner per key */
    CU_ASSERT_EQUAL(losses, 150);
    md_close(md);
}

/* Keys longer than LMDB's 511-byte limit, several sharing their first 900 bytes. */
static void test_long_keys(void)
{
    md_store *md = open_store("long");
    mk_bucket(md, "b");
    char keys[5][MD_MAX_KEY + 1];
    const char tails[5] = {'c', 'a', 'e', 'b', 'd'};
    for (int i = 0; i < 5; i++) {
        memset(keys[i], 'x', MD_MAX_KEY);
        keys[i][MD_MAX_KEY] = 0;
        keys[i][900] = tails[i];
        if (i == 4)
            keys[i][950] = 0; /* a shorter one in the same group */
        md_object o = mk_obj(keys[i], "e", (uint64_t)i);
        CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    }
    md_object o = mk_obj("y", "e", 9);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    for (int i = 0; i < 5; i++) {
        md_object got;
        CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", keys[i], &got), CM_OK);
        CU_ASSERT_EQUAL(got.size, (uint64_t)i);
        CU_ASSERT_STRING_EQUAL(got.key, keys[i]);
        md_object_release(&got);
    }
    md_list_query q = {.max_keys = 100};
    md_list_result res;
    CU_ASSERT_EQUAL_FATAL(md_list_objects(md, "b", &q, &res), CM_OK);
    CU_ASSERT_EQUAL_FATAL(res.n, 6);
    for (size_t i = 0; i + 1 < res.n; i++)
        CU_ASSERT_TRUE(strcmp(res.entries[i].key, res.entries[i + 1].key) < 0);
    md_list_result_release(&res);
    /* Paging one at a time through the group. */
    q.max_keys = 1;
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL_FATAL(md_list_objects(md, "b", &q, &res), CM_OK);
        CU_ASSERT_EQUAL_FATAL(res.n, 1);
        CU_ASSERT_EQUAL(res.truncated, i < 5);
        static char marker[MD_MAX_KEY + 1];
        snprintf(marker, sizeof(marker), "%s", res.entries[0].key);
        q.start_after = marker;
        md_list_result_release(&res);
    }
    md_object old;
    int had;
    CU_ASSERT_EQUAL(md_object_delete(md, "b", keys[2], NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    md_object_release(&old);
    CU_ASSERT_EQUAL(md_object_delete(md, "b", keys[2], NULL, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    md_object got;
    CU_ASSERT_EQUAL(md_object_get(md, "b", keys[2], &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_object_get(md, "b", keys[3], &got), CM_OK);
    md_object_release(&got);
    md_close(md);
}

static void test_bucket_delete_conflict(void)
{
    md_store *md = open_store("bdel");
    mk_bucket(md, "a");
    mk_bucket(md, "ab");
    md_object o = mk_obj("k", "e", 1);
    CU_ASSERT_EQUAL(md_object_put(md, "ab", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_put(md, "a", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "a", NULL, NULL), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_object_delete(md, "a", "k", NULL, NULL, NULL), CM_OK);
    /* "ab" holding objects must not block "a". */
    CU_ASSERT_EQUAL(md_bucket_delete(md, "a", NULL, NULL), CM_OK);
    md_close(md);
}

/* A bucket whose only content is unfinished uploads is deleted with them (S3's rule), and the
 * removed parts come back for freeing; an object still blocks the delete and keeps the uploads. */
static void test_bucket_delete_uploads(void)
{
    md_store *md = open_store("bdelup");
    md_part *parts = NULL;
    size_t n = 0;
    mk_bucket(md, "c");
    mk_bucket(md, "cd");
    md_upload up = {.key = "k", .upload_id = "u1"}, up2 = {.key = "k2", .upload_id = "u2"};
    md_upload other = {.key = "k", .upload_id = "u3"};
    CU_ASSERT_EQUAL(md_upload_create(md, "c", &up), CM_OK);
    CU_ASSERT_EQUAL(md_upload_create(md, "c", &up2), CM_OK);
    CU_ASSERT_EQUAL(md_upload_create(md, "cd", &other), CM_OK);
    md_part p1 = {.number = 1, .size = 3, .etag = "e1"}, p2 = {.number = 2, .size = 4};
    p1.inline_data = (uint8_t *)"abc";
    p2.layout.blob[0] = 7;
    p2.layout.size = 4;
    CU_ASSERT_EQUAL(md_part_put(md, "c", "k", "u1", &p1, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_part_put(md, "c", "k2", "u2", &p2, NULL, NULL), CM_OK);
    md_object o = mk_obj("obj", "e", 1);
    CU_ASSERT_EQUAL(md_object_put(md, "c", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "c", &parts, &n), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(n, 0);
    md_upload got;
    CU_ASSERT_EQUAL(md_upload_get(md, "c", "k", "u1", &got), CM_OK);
    md_upload_release(&got);
    CU_ASSERT_EQUAL(md_object_delete(md, "c", "obj", NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_delete(md, "c", &parts, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_TRUE(parts[0].is_inline && !parts[0].inline_data); /* listed without its body */
    CU_ASSERT_EQUAL(parts[1].layout.blob[0], 7);
    CU_ASSERT_FALSE(MD_PART_INLINE(&parts[1]));
    md_parts_free(parts, n);
    md_bucket b;
    CU_ASSERT_EQUAL(md_bucket_get(md, "c", &b), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_upload_get(md, "c", "k", "u1", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_part_list(md, "u2", 0, 10, &parts, &n, &(int){0}), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_parts_free(parts, n);
    /* The neighbour bucket "cd" keeps its upload. */
    CU_ASSERT_EQUAL(md_upload_get(md, "cd", "k", "u3", &got), CM_OK);
    md_upload_release(&got);
    md_close(md);
}

static md_part mk_part(uint32_t num, const char *etag, uint64_t size)
{
    md_part p = {0};
    p.number = num;
    p.size = size;
    snprintf(p.etag, sizeof(p.etag), "%s", etag);
    p.layout.k = 4, p.layout.m = 2, p.layout.blob[0] = (uint8_t)num;
    return p;
}

static void test_multipart(void)
{
    md_store *md = open_store("mpu");
    md_upload up = {.key = "big/file", .upload_id = "0001-u", .initiated_ms = 5};
    up.tmpl.content_type = "text/plain";
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up), CM_ERR_NOTFOUND);
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up), CM_OK);
    md_upload got;
    CU_ASSERT_EQUAL_FATAL(md_upload_get(md, "b", "big/file", "0001-u", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.key, "big/file");
    CU_ASSERT_STRING_EQUAL(got.tmpl.content_type, "text/plain");
    CU_ASSERT_EQUAL(got.initiated_ms, 5);
    md_upload_release(&got);
    CU_ASSERT_EQUAL(md_upload_get(md, "b", "big/file", "nope", &got), CM_ERR_NOTFOUND);
    md_part old, *parts;
    int had;
    size_t n;
    int trunc;
    for (uint32_t i = 1; i <= 3; i++) {
        md_part p = mk_part(i, "p", 100 + i);
        CU_ASSERT_EQUAL(md_part_put(md, "b", "big/file", "0001-u", &p, &old, &had), CM_OK);
        CU_ASSERT_EQUAL(had, 0);
    }
    md_part p2 = mk_part(2, "p2new", 7);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "big/file", "0001-u", &p2, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    CU_ASSERT_EQUAL(old.size, 102);
    md_part_release(&old);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "big/file", "nope", &p2, &old, &had), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_part_list(md, "0001-u", 0, 2, &parts, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(trunc, 1);
    CU_ASSERT_EQUAL(parts[0].number, 1);
    CU_ASSERT_STRING_EQUAL(parts[1].etag, "p2new");
    md_parts_free(parts, n);
    CU_ASSERT_EQUAL_FATAL(md_part_list(md, "0001-u", 2, 10, &parts, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(trunc, 0);
    CU_ASSERT_EQUAL(parts[0].number, 3);
    CU_ASSERT_EQUAL(parts[0].layout.blob[0], 3);
    md_parts_free(parts, n);

    /* Complete with a failing condition changes nothing. */
    md_object o = mk_obj("big/file", "abc-3", 210);
    md_object prev = mk_obj("big/file", "old", 1);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &prev, NULL, NULL, NULL), CM_OK);
    md_cond inm = {.if_none_match_star = 1};
    md_object oldo;
    CU_ASSERT_EQUAL(md_upload_complete(md, "b", "0001-u", &o, &inm, &parts, &n, &oldo, &had),
                    CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(md_upload_get(md, "b", "big/file", "0001-u", &got), CM_OK);
    md_upload_release(&got);
    md_cond im = {.if_match = "old"};
    CU_ASSERT_EQUAL_FATAL(md_upload_complete(md, "b", "0001-u", &o, &im, &parts, &n, &oldo, &had),
                          CM_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(had, 1);
    CU_ASSERT_STRING_EQUAL(oldo.etag, "old");
    md_object_release(&oldo);
    md_parts_free(parts, n);
    CU_ASSERT_EQUAL(md_upload_get(md, "b", "big/file", "0001-u", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_part_list(md, "0001-u", 0, 10, &parts, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_parts_free(parts, n);
    md_object cur;
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "big/file", &cur), CM_OK);
    CU_ASSERT_STRING_EQUAL(cur.etag, "abc-3");
    md_object_release(&cur);
    CU_ASSERT_EQUAL(md_upload_complete(md, "b", "0001-u", &o, NULL, &parts, &n, NULL, NULL),
                    CM_ERR_NOTFOUND);

    /* Abort returns the parts; a second abort and later part puts find nothing. */
    md_upload up2 = {.key = "other", .upload_id = "0002-u"};
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up2), CM_OK);
    md_part p = mk_part(1, "x", 1);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "other", "0002-u", &p, NULL, NULL), CM_OK);
    p.number = 9;
    CU_ASSERT_EQUAL(md_part_put(md, "b", "other", "0002-u", &p, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_upload_abort(md, "b", "other", "0002-u", &parts, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 2);
    md_parts_free(parts, n);
    CU_ASSERT_EQUAL(md_upload_abort(md, "b", "other", "0002-u", &parts, &n), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "other", "0002-u", &p, NULL, NULL), CM_ERR_NOTFOUND);

    /* A part uploaded again after the object's part list was built: complete refuses. */
    md_upload up3 = {.key = "race", .upload_id = "0003-u"};
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up3), CM_OK);
    md_part first = mk_part(1, "first", 10), second = mk_part(1, "second", 10);
    second.layout.blob[1] = 2;
    CU_ASSERT_EQUAL(md_part_put(md, "b", "race", "0003-u", &first, NULL, NULL), CM_OK);
    md_object ro = mk_obj("race", "r-1", 10);
    ro.parts = &first;
    ro.nparts = 1;
    CU_ASSERT_EQUAL(md_part_put(md, "b", "race", "0003-u", &second, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_upload_complete(md, "b", "0003-u", &ro, NULL, &parts, &n, NULL, NULL),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_object_get(md, "b", "race", &cur), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_upload_get(md, "b", "race", "0003-u", &got), CM_OK);
    md_upload_release(&got);
    ro.parts = &second;
    CU_ASSERT_EQUAL(md_upload_complete(md, "b", "0003-u", &ro, NULL, &parts, &n, NULL, NULL),
                    CM_OK);
    md_parts_free(parts, n);
    md_close(md);
}

static void test_reopen(void)
{
    md_store *md = open_store("reopen");
    mk_bucket(md, "keep");
    md_object o = mk_obj("survives", "e", 77);
    o.content_type = "text/x";
    CU_ASSERT_EQUAL(md_object_put(md, "keep", &o, NULL, NULL, NULL), CM_OK);
    md_upload up = {.key = "mp", .upload_id = "u9"};
    CU_ASSERT_EQUAL(md_upload_create(md, "keep", &up), CM_OK);
    md_close(md);
    md = open_store("reopen");
    md_bucket b;
    CU_ASSERT_EQUAL(md_bucket_get(md, "keep", &b), CM_OK);
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "keep", "survives", &got), CM_OK);
    CU_ASSERT_EQUAL(got.size, 77);
    CU_ASSERT_STRING_EQUAL(got.content_type, "text/x");
    md_object_release(&got);
    md_upload gu;
    CU_ASSERT_EQUAL(md_upload_get(md, "keep", "mp", "u9", &gu), CM_OK);
    md_upload_release(&gu);
    md_close(md);
}

static void test_map_full(void)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/full", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 20, &md), CM_OK); /* 1 MiB map */
    md_map_set_max(md, 1 << 20); /* as on a file system with no room left: it cannot grow */
    mk_bucket(md, "b");
    static uint8_t body[64 * 1024];
    cm_err e = CM_OK;
    int i, saved = cm_log_threshold;
    cm_log_threshold = CM_LOG_ERROR; /* map-full is logged as a warning */
    for (i = 0; i < 100 && e == CM_OK; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        md_object o = mk_obj(key, "e", sizeof(body));
        o.inline_data = body;
        o.inline_len = sizeof(body);
        e = md_object_put(md, "b", &o, NULL, NULL, NULL);
    }
    cm_log_threshold = saved;
    CU_ASSERT_EQUAL(e, CM_ERR_NOSPC);
    CU_ASSERT_TRUE(i > 1);
    /* The store is still usable: earlier records read back, deletes free space. */
    md_object got;
    CU_ASSERT_EQUAL(md_object_get(md, "b", "k0", &got), CM_OK);
    CU_ASSERT_EQUAL(got.inline_len, sizeof(body));
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_object_delete(md, "b", "k0", NULL, NULL, NULL), CM_OK);
    md_close(md);
}

/*
 * A store opened with a 1 MiB map takes 8 MiB of inline bodies: the batch that does not fit is
 * rerun after the map grows, so no write fails, and the grown file reopens with its data.
 */
static void test_map_grows(void)
{
    char dir[512];
    md_store *md = NULL;
    md_stats st;
    static uint8_t body[64 * 1024];
    snprintf(dir, sizeof(dir), "%s/grow", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 20, &md), CM_OK);
    mk_bucket(md, "b");
    int saved = cm_log_threshold;
    cm_log_threshold = CM_LOG_ERROR; /* each growth logs */
    for (int i = 0; i < 128; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        memset(body, i, sizeof(body));
        md_object o = mk_obj(key, "e", sizeof(body));
        o.inline_data = body;
        o.inline_len = sizeof(body);
        CU_ASSERT_EQUAL_FATAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    }
    cm_log_threshold = saved;
    md_stats_get(md, &st);
    CU_ASSERT_TRUE(st.map_grows >= 3);         /* 1 -> 2 -> 4 -> 8 -> 16 MiB at least */
    CU_ASSERT_TRUE(st.map_size >= (8u << 20)); /* it holds 8 MiB of bodies */
    CU_ASSERT_EQUAL(st.commit_errors, 0);
    md_close(md);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 20, &md), CM_OK); /* the file is larger than asked */
    md_stats_get(md, &st);
    CU_ASSERT_TRUE(st.map_size >= (8u << 20));
    for (int i = 0; i < 128; i += 31) {
        char key[16];
        md_object got;
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", key, &got), CM_OK);
        CU_ASSERT_EQUAL(got.inline_len, sizeof(body));
        CU_ASSERT_EQUAL(got.inline_data[100], (uint8_t)i);
        CU_ASSERT_EQUAL(md_object_inline_verify(&got), CM_OK);
        md_object_release(&got);
    }
    md_close(md);
}

/* Bytes the heap holds now (glibc): what a call keeps allocated shows in the difference. */
static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

/*
 * Item 8: an upload of many inline parts. Listing, completing and aborting decode the parts
 * without their bodies: the heap grows by the md_part structs (~200 bytes each), not by the 64 KiB
 * bodies; the completed object still carries the bodies of the parts it keeps (read from their
 * records) with their CRCs, and records the upload id.
 */
#define MANY_PARTS 300
static void test_many_inline_parts(void)
{
    md_store *md = open_store("manyparts");
    static uint8_t body[64 * 1024];
    md_upload up = {.key = "big", .upload_id = "0001-many"};
    md_part *parts = NULL, *gone = NULL;
    size_t n = 0, ngone = 0;
    int trunc = 0;
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL_FATAL(md_upload_create(md, "b", &up), CM_OK);
    for (uint32_t i = 1; i <= MANY_PARTS; i++) {
        md_part p = {.number = i, .size = sizeof(body), .inline_data = body};
        memset(body, (int)i, sizeof(body));
        snprintf(p.etag, sizeof(p.etag), "%032x", i);
        CU_ASSERT_EQUAL_FATAL(md_part_put(md, "b", "big", "0001-many", &p, NULL, NULL), CM_OK);
    }
    size_t before = heap_in_use();
    CU_ASSERT_EQUAL_FATAL(md_part_list(md, "0001-many", 0, 10000, &parts, &n, &trunc), CM_OK);
    size_t held = heap_in_use() - before;
    CU_ASSERT_EQUAL_FATAL(n, MANY_PARTS);
    printf("\n  %d inline parts of 64 KiB listed: heap +%zu bytes (bodies: %zu)\n", MANY_PARTS,
           held, (size_t)MANY_PARTS * sizeof(body));
    CU_ASSERT_TRUE(held < (size_t)MANY_PARTS * 1024);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_TRUE(parts[i].is_inline && !parts[i].inline_data && parts[i].inline_crc_set);
        CU_ASSERT_TRUE(MD_PART_INLINE(&parts[i]));
    }
    /* Complete with parts 1 and the last, as listed (no bytes). */
    md_part keep[2] = {parts[0], parts[MANY_PARTS - 1]};
    md_object o = mk_obj("big", "x-2", 2 * sizeof(body));
    o.parts = keep;
    o.nparts = 2;
    before = heap_in_use();
    CU_ASSERT_EQUAL_FATAL(
        md_upload_complete(md, "b", "0001-many", &o, NULL, &gone, &ngone, NULL, NULL), CM_OK);
    held = heap_in_use() - before;
    CU_ASSERT_EQUAL(ngone, MANY_PARTS);
    CU_ASSERT_TRUE(held < (size_t)MANY_PARTS * 1024);
    for (size_t i = 0; i < ngone; i++)
        CU_ASSERT_TRUE(gone[i].is_inline && !gone[i].inline_data);
    md_parts_free(gone, ngone);
    md_parts_free(parts, n);
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "big", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.upload_id, "0001-many");
    CU_ASSERT_EQUAL_FATAL(got.nparts, 2);
    CU_ASSERT_TRUE(got.parts[0].inline_data && got.parts[1].inline_data);
    if (got.parts[0].inline_data && got.parts[1].inline_data) {
        CU_ASSERT_EQUAL(got.parts[0].inline_data[7], 1);
        CU_ASSERT_EQUAL(got.parts[1].inline_data[7], (uint8_t)MANY_PARTS);
    }
    CU_ASSERT_EQUAL(md_object_inline_verify(&got), CM_OK);
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_part_list(md, "0001-many", 0, 10, &parts, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_parts_free(parts, n);

    /* Abort returns the parts without bodies too. */
    md_upload up2 = {.key = "other", .upload_id = "0002-many"};
    CU_ASSERT_EQUAL_FATAL(md_upload_create(md, "b", &up2), CM_OK);
    for (uint32_t i = 1; i <= 20; i++) {
        md_part p = {.number = i, .size = sizeof(body), .inline_data = body};
        CU_ASSERT_EQUAL(md_part_put(md, "b", "other", "0002-many", &p, NULL, NULL), CM_OK);
    }
    CU_ASSERT_EQUAL_FATAL(md_upload_abort(md, "b", "other", "0002-many", &gone, &ngone), CM_OK);
    CU_ASSERT_EQUAL(ngone, 20);
    for (size_t i = 0; i < ngone; i++)
        CU_ASSERT_TRUE(gone[i].is_inline && !gone[i].inline_data);
    md_parts_free(gone, ngone);
    md_close(md);
}

/* Item 13: DeleteObjects' keys go in one op, so one commit (one sync) for the whole request. */
#define MANY_KEYS 300
static void test_delete_many_one_commit(void)
{
    md_store *md = open_store("delmany");
    static char names[MANY_KEYS + 2][1100];
    const char *keys[MANY_KEYS + 2];
    cm_err errs[MANY_KEYS + 2];
    md_object olds[MANY_KEYS + 2];
    int had[MANY_KEYS + 2];
    md_stats st0, st1;
    uint8_t small[10] = "0123456789";
    mk_bucket(md, "b");
    for (int i = 0; i < MANY_KEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "key-%04d", i);
        keys[i] = names[i];
        md_object o = mk_obj(names[i], "e", sizeof(small));
        o.inline_data = small;
        o.inline_len = sizeof(small);
        CU_ASSERT_EQUAL_FATAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    }
    snprintf(names[MANY_KEYS], sizeof(names[0]), "missing");
    memset(names[MANY_KEYS + 1], 'x', 1050); /* longer than a key may be */
    names[MANY_KEYS + 1][1050] = 0;
    keys[MANY_KEYS] = names[MANY_KEYS];
    keys[MANY_KEYS + 1] = names[MANY_KEYS + 1];
    md_stats_get(md, &st0);
    CU_ASSERT_EQUAL_FATAL(md_objects_delete(md, "b", keys, MANY_KEYS + 2, errs, olds, had), CM_OK);
    md_stats_get(md, &st1);
    CU_ASSERT_EQUAL(st1.commits - st0.commits, 1);
    CU_ASSERT_EQUAL(st1.ops - st0.ops, 1);
    for (int i = 0; i < MANY_KEYS; i++) {
        CU_ASSERT_EQUAL(errs[i], CM_OK);
        CU_ASSERT_EQUAL(had[i], 1);
        CU_ASSERT_PTR_NULL(olds[i].inline_data); /* decoded without the body */
        CU_ASSERT_STRING_EQUAL(olds[i].key, names[i]);
        md_object_release(&olds[i]);
    }
    CU_ASSERT_EQUAL(errs[MANY_KEYS], CM_OK);
    CU_ASSERT_EQUAL(had[MANY_KEYS], 0);
    CU_ASSERT_EQUAL(errs[MANY_KEYS + 1], CM_ERR_INVAL);
    md_list_query q = {.max_keys = 10};
    md_list_result res;
    CU_ASSERT_EQUAL(md_list_objects(md, "b", &q, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 0);
    md_list_result_release(&res);
    md_close(md);
}

/* Largest LMDB value in dbi and the number of entries (raw, below the long-key layer). */
static size_t raw_max_value(md_store *md, MDB_txn *txn, MDB_dbi dbi, size_t *entries)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t max = 0;
    *entries = 0;
    CU_ASSERT_EQUAL_FATAL(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        max = v.mv_size > max ? v.mv_size : max;
        (*entries)++;
    }
    mdb_cursor_close(cur);
    (void)md;
    return max;
}

#define LONG_N 2000
#define LONG_LEN 1000
#define LONG_PREFIX 600
/* The 1000-byte key number i: a 600-byte shared prefix, then filler, then i at the very end. */
static void long_key(char *k, int i)
{
    memset(k, 'p', LONG_PREFIX);
    memset(k + LONG_PREFIX, 'q', LONG_LEN - LONG_PREFIX);
    char num[16];
    snprintf(num, sizeof(num), "%08d", i);
    memcpy(k + LONG_LEN - 8, num, 8);
}

/* Entries and overflow pages of dbi (LMDB's own count). */
static void raw_stat(MDB_txn *txn, MDB_dbi dbi, size_t *entries, size_t *overflow)
{
    MDB_stat st;
    CU_ASSERT_EQUAL_FATAL(mdb_stat(txn, dbi, &st), 0);
    *entries = st.ms_entries;
    *overflow = st.ms_overflow_pages;
}

/* Value number i of n bytes (the split mark first for every third): differs per value and byte. */
static void split_value(uint8_t *v, size_t n, int i)
{
    for (size_t j = 0; j < n; j++)
        v[j] = (uint8_t)(j * 7 + (size_t)i * 13 + (j >> 8));
    if (i % 3 == 0 && n > 0)
        v[0] = 0xF5;
}

/* The length of the LMDB key that stores a key of klen bytes (md_kv.c's levels). */
static size_t lmdb_key_len(size_t klen)
{
    while (klen > MD_KV_SHORT)
        klen = 9 + klen - (MD_KV_SHORT + 1);
    return klen;
}

/*
 * Long values whose last overflow page would be mostly empty are stored split (md_kv.c): a
 * record with a 4 KiB body takes one overflow page, not two. Every size around the page
 * boundaries reads back whole through md_kv_get and an iterator, under a short key and under a
 * key of a lower level; values starting with the split mark (short, long, split) round-trip;
 * overwriting a split value with an unsplit one, and deleting, leave no spill entry behind; a
 * lazy iterator gives a split value as its two pieces, unjoined.
 */
static void test_split_values(void)
{
    static const size_t sizes[] = {0,    1,    2000, 4079, 4080, 4081, 4346,
                                   5000, 6000, 8176, 8177, 8500, 65836};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    md_store *md = open_store("split");
    MDB_txn *txn;
    md_slice v;
    size_t entries, ov, ov_objects, nsplit = 0;
    static uint8_t val[70000], keys[2][NS][2 + LONG_LEN];
    size_t kl[2] = {8, 2 + LONG_LEN};
    for (int lv = 0; lv < 2; lv++)
        for (int i = 0; i < NS; i++) {
            keys[lv][i][0] = 'b';
            if (lv)
                long_key((char *)keys[lv][i] + 2, i);
            else
                snprintf((char *)keys[lv][i] + 2, 7, "k%04d", i);
        }
    CU_ASSERT_EQUAL_FATAL(md_txn_begin(md, 0, &txn), CM_OK);
    for (int lv = 0; lv < 2; lv++)
        for (int i = 0; i < NS; i++) {
            split_value(val, sizes[i], i + lv);
            CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, keys[lv][i], kl[lv], val, sizes[i]),
                                  CM_OK);
            nsplit += md_kv_split_head(lmdb_key_len(kl[lv]), sizes[i]) > 0;
        }
    raw_stat(txn, md->spill, &entries, &ov);
    CU_ASSERT_EQUAL(entries, nsplit);
    CU_ASSERT_TRUE(nsplit >= 8); /* 4346 (a 4 KiB body's record), 5000, 8500, 65836, both keys */
    for (int lv = 0; lv < 2; lv++)
        for (int i = 0; i < NS; i++) {
            split_value(val, sizes[i], i + lv);
            CU_ASSERT_EQUAL_FATAL(md_kv_get(txn, md->objects, keys[lv][i], kl[lv], &v), CM_OK);
            CU_ASSERT_TRUE(v.n == sizes[i] && memcmp(v.p, val, v.n) == 0);
        }
    md_kv_iter it;
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
    cm_err e = md_kv_iter_seek(&it, (const uint8_t *)"b", 2);
    int n = 0;
    for (; e == CM_OK; e = md_kv_iter_next(&it), n++) {
        int lv = it.key.n == kl[1], i = -1;
        for (int j = 0; j < NS; j++)
            if (it.key.n == kl[lv] && memcmp(it.key.p, keys[lv][j], kl[lv]) == 0)
                i = j;
        CU_ASSERT_TRUE_FATAL(i >= 0);
        split_value(val, sizes[i], i + lv);
        CU_ASSERT_TRUE(it.val.n == sizes[i] && memcmp(it.val.p, val, it.val.n) == 0);
    }
    CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(n, 2 * NS);
    md_kv_iter_close(&it);

    /* A lazy iterator (md_rec_walk's): a split value is never joined, its two pieces are
     * given as they lie; asked for every other entry (the ones skipped stand for keys a walk's
     * filter refuses), and a value skipped never leaks into the next entry's. */
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
    it.lazy = 1;
    e = md_kv_iter_seek(&it, (const uint8_t *)"b", 2);
    int lazy_split = 0;
    for (n = 0; e == CM_OK; e = md_kv_iter_next(&it), n++) {
        int lv = it.key.n == kl[1], i = -1;
        for (int j = 0; j < NS; j++)
            if (it.key.n == kl[lv] && memcmp(it.key.p, keys[lv][j], kl[lv]) == 0)
                i = j;
        CU_ASSERT_TRUE_FATAL(i >= 0);
        int split = md_kv_split_head(lmdb_key_len(kl[lv]), sizes[i]) > 0;
        lazy_split += split;
        CU_ASSERT_TRUE(split ? it.val.p == NULL && it.val.n == 0 : it.val.n == sizes[i]);
        if (n % 2 == 0)
            continue;
        md_slice head, tail;
        CU_ASSERT_EQUAL_FATAL(md_kv_iter_parts(&it, &head, &tail), CM_OK);
        split_value(val, sizes[i], i + lv);
        CU_ASSERT_TRUE(head.n + tail.n == sizes[i] && (split ? tail.n > 0 : tail.n == 0));
        CU_ASSERT_TRUE((head.n == 0 || memcmp(head.p, val, head.n) == 0) &&
                       (tail.n == 0 || memcmp(tail.p, val + head.n, tail.n) == 0));
    }
    CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(n, 2 * NS);
    CU_ASSERT_EQUAL((size_t)lazy_split, nsplit);
    md_kv_iter_close(&it);

    /* One more record of a 4 KiB body (4,346 bytes): one overflow page more, not two. */
    raw_stat(txn, md->objects, &entries, &ov_objects);
    raw_stat(txn, md->spill, &entries, &ov);
    printf("\n  %d values: %zu split; overflow pages: %zu in the entries, %zu spilled\n", 2 * NS,
           nsplit, ov_objects, ov);
    size_t before = ov_objects + ov;
    uint8_t k4[] = {'b', 0, 'f', 'o', 'u', 'r'};
    split_value(val, 4346, 1);
    CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, k4, sizeof(k4), val, 4346), CM_OK);
    raw_stat(txn, md->objects, &entries, &ov_objects);
    raw_stat(txn, md->spill, &entries, &ov);
    CU_ASSERT_EQUAL(ov_objects + ov, before + 1);

    /* Overwritten by short values, then deleted: no spill entry is left. */
    for (int lv = 0; lv < 2; lv++)
        for (int i = 0; i < NS; i += 2)
            CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, keys[lv][i], kl[lv], val, 3), CM_OK);
    split_value(val, 5000, 1);
    CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, k4, sizeof(k4), val, 5000), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_kv_get(txn, md->objects, k4, sizeof(k4), &v), CM_OK);
    CU_ASSERT_TRUE(v.n == 5000 && memcmp(v.p, val, 5000) == 0);
    for (int lv = 0; lv < 2; lv++)
        for (int i = 0; i < NS; i++)
            CU_ASSERT_EQUAL_FATAL(md_kv_del(txn, md->objects, keys[lv][i], kl[lv]), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_kv_del(txn, md->objects, k4, sizeof(k4)), CM_OK);
    raw_stat(txn, md->spill, &entries, &ov);
    CU_ASSERT_EQUAL(entries, 0);
    CU_ASSERT_EQUAL(md_txn_commit(txn), CM_OK);
    md_close(md);
}

/*
 * Forged split entries (a disk or a bug that left a mark without its tail): an unknown kind, a
 * head shorter than its header, a head naming a spill id that is not there. Each reads as
 * CM_ERR_CORRUPT through get and through an iterator, never as a value.
 */
static void test_split_values_forged(void)
{
    static const uint8_t forged[][12] = {
        {0xF5, 0x07, 'x'},                          /* unknown kind */
        {0xF5, 0x01, 0, 0, 0},                      /* shorter than mark, kind and id */
        {0xF5, 0x01, 0, 0, 0, 0, 0, 0, 0, 42, 'h'}, /* id 42: no such tail */
    };
    static const size_t len[] = {3, 5, 11};
    md_store *md = open_store("splitforged");
    MDB_txn *txn;
    md_slice v;
    for (size_t i = 0; i < sizeof(len) / sizeof(len[0]); i++) {
        uint8_t k[] = {'b', 0, 'f', (uint8_t)('0' + i)};
        MDB_val mk = {sizeof(k), k}, mv = {len[i], (void *)forged[i]};
        CU_ASSERT_EQUAL_FATAL(md_txn_begin(md, 0, &txn), CM_OK);
        CU_ASSERT_EQUAL_FATAL(mdb_put(txn, md->objects, &mk, &mv, 0), 0);
        CU_ASSERT_EQUAL(md_kv_get(txn, md->objects, k, sizeof(k), &v), CM_ERR_CORRUPT);
        md_kv_iter it;
        CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
        CU_ASSERT_EQUAL(md_kv_iter_seek(&it, k, sizeof(k)), CM_ERR_CORRUPT);
        md_kv_iter_close(&it);
        mdb_txn_abort(txn);
    }
    md_close(md);
}

/*
 * Item 13: 2,000 keys of 1,000 bytes sharing a 600-byte prefix (all in one group of the old
 * scheme, which rewrote the whole 2 MB group for every write). Every key reads back and lists in
 * order; no LMDB value is larger than a record (so no write rewrites other keys); a seek into the
 * middle takes a handful of cursor steps, a full walk one per key; deleting every key removes
 * the groups too.
 */
static void test_long_keys_shared_prefix(void)
{
    md_store *md = open_store("longshared");
    static uint8_t keys[LONG_N][2 + LONG_LEN];
    static int order[LONG_N];
    MDB_txn *txn;
    md_slice v;
    size_t kl = 2 + LONG_LEN, entries;
    srand(8);
    for (int i = 0; i < LONG_N; i++) {
        keys[i][0] = 'b', keys[i][1] = 0;
        long_key((char *)keys[i] + 2, i);
        order[i] = i;
    }
    for (int i = LONG_N - 1; i > 0; i--) { /* shuffled insertion and deletion order */
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    CU_ASSERT_EQUAL_FATAL(md_txn_begin(md, 0, &txn), CM_OK);
    for (int i = 0; i < LONG_N; i++) {
        uint32_t val = (uint32_t)order[i];
        CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, keys[order[i]], kl, (uint8_t *)&val, 4),
                              CM_OK);
    }
    size_t max = raw_max_value(md, txn, md->objects, &entries);
    printf("\n  %d keys of %d bytes: largest LMDB value %zu bytes, %zu LMDB entries\n", LONG_N,
           LONG_LEN, max, entries);
    CU_ASSERT_TRUE(max <= 16);
    for (int i = 0; i < LONG_N; i++) {
        CU_ASSERT_EQUAL_FATAL(md_kv_get(txn, md->objects, keys[i], kl, &v), CM_OK);
        CU_ASSERT_TRUE(v.n == 4 && memcmp(v.p, &(uint32_t){(uint32_t)i}, 4) == 0);
    }
    md_kv_iter it;
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_seek(&it, keys[LONG_N / 2], kl), CM_OK);
    printf("  seek into the middle: %lu cursor steps\n", it.steps);
    CU_ASSERT_TRUE(it.steps <= 8);
    CU_ASSERT_TRUE(it.key.n == kl && memcmp(it.key.p, keys[LONG_N / 2], kl) == 0);
    it.steps = 0;
    cm_err e = md_kv_iter_seek(&it, (const uint8_t *)"b", 2);
    int n = 0;
    for (; e == CM_OK; e = md_kv_iter_next(&it), n++)
        CU_ASSERT_TRUE_FATAL(it.key.n == kl && memcmp(it.key.p, keys[n], kl) == 0);
    printf("  walk of %d keys: %lu cursor steps\n", n, it.steps);
    CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(n, LONG_N);
    CU_ASSERT_TRUE(it.steps <= LONG_N + 16);
    md_kv_iter_close(&it);
    for (int i = 0; i < LONG_N; i++)
        CU_ASSERT_EQUAL_FATAL(md_kv_del(txn, md->objects, keys[order[i]], kl), CM_OK);
    CU_ASSERT_EQUAL(md_kv_del(txn, md->objects, keys[0], kl), CM_ERR_NOTFOUND);
    raw_max_value(md, txn, md->objects, &entries);
    CU_ASSERT_EQUAL(entries, 1); /* only the group id counter is left */
    CU_ASSERT_EQUAL(md_txn_commit(txn), CM_OK);
    md_close(md);
}

/* A group written by the old format (one value with every key) reads as before; the first write
 * converts it. */
static void test_long_keys_legacy_group(void)
{
    md_store *md = open_store("longlegacy");
    static uint8_t keys[3][2 + LONG_LEN];
    md_wbuf w = {0};
    uint8_t b4[4], fmt = 1;
    MDB_txn *txn;
    md_slice v;
    size_t kl = 2 + LONG_LEN;
    md_w_bytes(&w, &fmt, 1);
    for (int i = 0; i < 3; i++) {
        keys[i][0] = 'b', keys[i][1] = 0;
        long_key((char *)keys[i] + 2, i * 10);
        cm_put_be32(b4, (uint32_t)kl);
        md_w_bytes(&w, b4, 4);
        md_w_bytes(&w, keys[i], kl);
        cm_put_be32(b4, 1);
        md_w_bytes(&w, b4, 4);
        md_w_bytes(&w, &(uint8_t){(uint8_t)('a' + i)}, 1);
    }
    CU_ASSERT_EQUAL_FATAL(md_txn_begin(md, 0, &txn), CM_OK);
    MDB_val gk = {MD_KV_SHORT + 1, keys[0]}, gv = {w.len, w.p};
    CU_ASSERT_EQUAL_FATAL(mdb_put(txn, md->objects, &gk, &gv, 0), 0);
    md_w_free(&w);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(md_kv_get(txn, md->objects, keys[i], kl, &v), CM_OK);
        CU_ASSERT_TRUE(v.n == 1 && v.p[0] == 'a' + i);
    }
    md_kv_iter it;
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_seek(&it, keys[1], kl), CM_OK);
    CU_ASSERT_TRUE(it.val.n == 1 && it.val.p[0] == 'b');
    CU_ASSERT_EQUAL(md_kv_iter_next(&it), CM_OK);
    CU_ASSERT_TRUE(it.val.n == 1 && it.val.p[0] == 'c');
    CU_ASSERT_EQUAL(md_kv_iter_next(&it), CM_ERR_NOTFOUND);
    md_kv_iter_close(&it);
    /* A write converts the group; everything stays readable and in order. */
    static uint8_t extra[2 + LONG_LEN];
    extra[0] = 'b', extra[1] = 0;
    long_key((char *)extra + 2, 15);
    CU_ASSERT_EQUAL_FATAL(md_kv_put(txn, md->objects, extra, kl, (const uint8_t *)"x", 1), CM_OK);
    MDB_val now;
    CU_ASSERT_EQUAL_FATAL(mdb_get(txn, md->objects, &gk, &now), 0);
    CU_ASSERT_TRUE(now.mv_size == 9 && ((uint8_t *)now.mv_data)[0] == 2);
    const char want[] = "abxc";
    CU_ASSERT_EQUAL_FATAL(md_kv_iter_open(txn, md->objects, &it), CM_OK);
    cm_err e = md_kv_iter_seek(&it, (const uint8_t *)"b", 2);
    for (int i = 0; i < 4; i++, e = md_kv_iter_next(&it))
        CU_ASSERT_TRUE_FATAL(e == CM_OK && it.val.n == 1 && it.val.p[0] == want[i]);
    CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
    md_kv_iter_close(&it);
    CU_ASSERT_EQUAL(md_kv_del(txn, md->objects, keys[1], kl), CM_OK);
    CU_ASSERT_EQUAL(md_kv_get(txn, md->objects, keys[1], kl, &v), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_kv_get(txn, md->objects, keys[2], kl, &v), CM_OK);
    CU_ASSERT_EQUAL(md_txn_commit(txn), CM_OK);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"buckets", test_buckets},
                                    {"objects", test_objects},
                                    {"conditions", test_conditions},
                                    {"conditional_race", test_conditional_race},
                                    {"long_keys", test_long_keys},
                                    {"bucket_delete_conflict", test_bucket_delete_conflict},
                                    {"bucket_delete_uploads", test_bucket_delete_uploads},
                                    {"multipart", test_multipart},
                                    {"reopen", test_reopen},
                                    {"map_full", test_map_full},
                                    {"map_grows", test_map_grows},
                                    {"many_inline_parts", test_many_inline_parts},
                                    {"delete_many_one_commit", test_delete_many_one_commit},
                                    {"long_keys_shared_prefix", test_long_keys_shared_prefix},
                                    {"long_keys_legacy_group", test_long_keys_legacy_group},
                                    {"split_values", test_split_values},
                                    {"split_values_forged", test_split_values_forged},
                                    {NULL, NULL}};
    cu_add_suite("meta_store", tests);
}
