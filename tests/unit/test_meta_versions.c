/*
 * test_meta_versions.c - object versions in the metadata store (md_version.c, md_vlist.c):
 *   vid               ids are well-formed, fixed length, and sort newest first;
 *   never_enabled     a bucket that never had versioning keeps one "null" record per key;
 *   enabled           every PUT keeps the previous one; GET by id; a DELETE makes a marker;
 *                     deleting the marker by id promotes the previous version; deleting an older
 *                     one by id hands its body back; unknown and malformed ids;
 *   suspended         writes replace the null version wherever it is, and keep the others; a
 *                     DELETE makes a null marker;
 *   conditional       If-None-Match / If-Match test the latest version, markers count as absent;
 *   list_paging       ListObjectVersions in every page size: the same sequence, markers resume;
 *                     prefix/delimiter; listings of current objects skip markers;
 *   delete_many       DeleteObjects with version ids and markers, results per key;
 *   bucket_delete     a bucket holding only older versions or markers is not empty;
 *   tags_reopen       tags of an older version; everything survives a reopen;
 *   long_keys         keys past LMDB's key limit (md_kv.c groups), one a prefix of the other:
 *                     histories stay apart, paging across them, null versions found;
 *   failed_commit     a versioned PUT, DELETE and delete by id whose commit fails change nothing
 *                     (each is one transaction: the history is as before, nothing to free);
 *   lifecycle_race    a client's write or delete between the lifecycle's listing and its delete
 *                     of a noncurrent version (md_cond noncurrent): the wrong version is kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "cu_main.h"
#include "md.h"
#include "md_int.h" /* md_gc_fail_commits */

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name, uint8_t vers)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    if (vers)
        CU_ASSERT_EQUAL(md_bucket_set_versioning(md, name, vers), CM_OK);
}

/* PUT key with an inline body "etag" (the ETag is the body, enough to tell versions apart). */
static cm_err put(md_store *md, const char *b, const char *key, const char *etag,
                  const md_cond *cond, md_vres *res, md_object *old, int *had)
{
    md_object o = {0};
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    o.inline_data = (uint8_t *)etag;
    o.inline_len = strlen(etag);
    o.size = o.inline_len;
    return md_object_put_v(md, b, &o, cond, old, had, res);
}

static void put_ok(md_store *md, const char *b, const char *key, const char *etag, char *vid)
{
    md_vres res;
    CU_ASSERT_EQUAL_FATAL(put(md, b, key, etag, NULL, &res, NULL, NULL), CM_OK);
    if (vid)
        memcpy(vid, res.version_id, sizeof(res.version_id));
}

/* The etags (or "DM" for a marker) of key's versions, newest first, joined by ",". */
static void history(md_store *md, const char *b, const char *key, char *out, size_t cap)
{
    md_object *v;
    size_t n, off = 0;
    int more;
    out[0] = 0;
    CU_ASSERT_EQUAL_FATAL(md_key_versions(md, b, key, 100, &v, &n, &more), CM_OK);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? "," : "",
                                v[i].delete_marker ? "DM" : v[i].etag);
    md_objects_free(v, n);
}

static void test_vid(void)
{
    char a[MD_VID_LEN + 1], b[MD_VID_LEN + 1];
    uint8_t r1[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r2[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    md_vid_make(1000, r1, a);
    md_vid_make(1001, r2, b);
    CU_ASSERT_EQUAL(strlen(a), MD_VID_LEN);
    CU_ASSERT(md_vid_valid(a) && md_vid_valid(b) && md_vid_valid("null"));
    CU_ASSERT(strcmp(b, a) < 0); /* newer sorts first */
    CU_ASSERT(!md_vid_valid("") && !md_vid_valid("NULL") && !md_vid_valid(NULL));
    CU_ASSERT(!md_vid_valid("0123456789abcdef0123456789abcdeF"));
    CU_ASSERT(!md_vid_valid("0123456789abcdef0123456789abcde"));
    CU_ASSERT(!md_vid_valid("../../0123456789abcdef0123456789"));
}

static void test_never_enabled(void)
{
    md_store *md = open_store("never");
    md_object old, got;
    int had;
    md_vres res;
    char h[256];
    mk_bucket(md, "b", 0);
    put_ok(md, "b", "k", "e1", NULL);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e2", NULL, &res, &old, &had), CM_OK);
    CU_ASSERT_STRING_EQUAL(res.version_id, "null");
    CU_ASSERT_FALSE(res.versioned);
    CU_ASSERT_EQUAL_FATAL(had, 1); /* replaced: its body to free */
    CU_ASSERT_STRING_EQUAL(old.etag, "e1");
    md_object_release(&old);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2");
    CU_ASSERT_EQUAL(md_version_get(md, "b", "k", "null", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "e2");
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    md_object_release(&old);
    CU_ASSERT_FALSE(res.delete_marker);
    CU_ASSERT_EQUAL(md_object_get(md, "b", "k", &got), CM_ERR_NOTFOUND);
    md_close(md);
}

static void test_enabled(void)
{
    md_store *md = open_store("enabled");
    char v1[40], v2[40], v3[40], h[256];
    md_object old, got;
    int had;
    md_vres res;
    md_bucket b;
    mk_bucket(md, "b", MD_VERS_ENABLED);
    CU_ASSERT_EQUAL(md_bucket_get(md, "b", &b), CM_OK);
    CU_ASSERT_EQUAL(b.versioning, MD_VERS_ENABLED);
    put_ok(md, "b", "k", "e1", v1);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e2", NULL, &res, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0); /* kept as an older version: nothing to free */
    CU_ASSERT(res.versioned);
    memcpy(v2, res.version_id, sizeof(res.version_id));
    put_ok(md, "b", "k", "e3", v3);
    CU_ASSERT(md_vid_valid(v1) && strcmp(v1, "null") != 0);
    CU_ASSERT(strcmp(v3, v2) < 0 && strcmp(v2, v1) < 0); /* newest first */
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e3,e2,e1");
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", "k", v2, &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "e2");
    CU_ASSERT_EQUAL(got.inline_len, 2); /* the body came along */
    md_object_release(&got);
    /* Unknown: a good stamp with another tail, the null version, a malformed id. */
    char fake[40];
    memcpy(fake, v2, sizeof(fake));
    fake[MD_VID_LEN - 1] = fake[MD_VID_LEN - 1] == '0' ? '1' : '0';
    CU_ASSERT_EQUAL(md_version_get(md, "b", "k", fake, &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_version_get(md, "b", "k", "null", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_version_get(md, "b", "k", "xyz", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", "xyz", NULL, &old, &had, &res), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", fake, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    /* A plain DELETE: a marker on top, nothing destroyed. */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    CU_ASSERT(res.delete_marker);
    char dm[40];
    memcpy(dm, res.version_id, sizeof(res.version_id));
    CU_ASSERT(strcmp(dm, v3) < 0);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "k", &got), CM_OK);
    CU_ASSERT(got.delete_marker);
    md_object_release(&got);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "DM,e3,e2,e1");
    /* Delete the older e2 for good: its body comes back to be freed. */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", v2, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL_FATAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "e2");
    CU_ASSERT_STRING_EQUAL(res.version_id, v2);
    md_object_release(&old);
    /* Delete the marker by id: e3 is the latest again. */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", dm, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT(res.delete_marker);
    if (had)
        md_object_release(&old);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "k", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "e3");
    CU_ASSERT_STRING_EQUAL(got.version_id, v3);
    md_object_release(&got);
    /* Delete the latest e3 by id: e1 promoted; then e1: the key is gone. */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", v3, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    md_object_release(&old);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e1");
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", v1, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 1);
    md_object_release(&old);
    CU_ASSERT_EQUAL(md_object_get(md, "b", "k", &got), CM_ERR_NOTFOUND);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "");
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_OK);
    md_close(md);
}

static void test_suspended(void)
{
    md_store *md = open_store("suspended");
    char v1[40], h[256];
    md_object old, got;
    int had;
    md_vres res;
    mk_bucket(md, "b", 0);
    put_ok(md, "b", "k", "n0", NULL); /* a null version from before versioning */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    put_ok(md, "b", "k", "e1", v1);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_SUSPENDED), CM_OK);
    /* The null version is an older one: the suspended PUT destroys it and keeps e1. */
    CU_ASSERT_EQUAL(put(md, "b", "k", "s1", NULL, &res, &old, &had), CM_OK);
    CU_ASSERT_STRING_EQUAL(res.version_id, "null");
    CU_ASSERT(res.versioned);
    CU_ASSERT_EQUAL_FATAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "n0");
    md_object_release(&old);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "s1,e1");
    /* The latest is null: replaced in place. */
    CU_ASSERT_EQUAL(put(md, "b", "k", "s2", NULL, &res, &old, &had), CM_OK);
    CU_ASSERT_EQUAL_FATAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "s1");
    md_object_release(&old);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "s2,e1");
    /* Re-enabled: a new version on top of the null one, which keeps its place (newer than e1). */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    put_ok(md, "b", "k", "e2", NULL);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,s2,e1");
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", "k", "null", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "s2");
    md_object_release(&got);
    /* Suspended DELETE: a null marker, destroying s2. */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_SUSPENDED), CM_OK);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT(res.delete_marker);
    CU_ASSERT_STRING_EQUAL(res.version_id, "null");
    CU_ASSERT_EQUAL_FATAL(had, 1);
    CU_ASSERT_STRING_EQUAL(old.etag, "s2");
    md_object_release(&old);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "DM,e2,e1");
    /* Unversioned state cannot come back. */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_NEVER), CM_ERR_INVAL);
    md_close(md);
}

static void test_conditional(void)
{
    md_store *md = open_store("cond");
    md_cond inm = {.if_none_match_star = 1}, im = {.if_match = "e1"};
    md_vres res;
    char h[256];
    mk_bucket(md, "b", MD_VERS_ENABLED);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e1", &inm, &res, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e2", &inm, &res, NULL, NULL), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e2", &im, &res, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e3", &im, &res, NULL, NULL), CM_ERR_PRECONDITION);
    /* Behind a marker the key is absent for both conditions. */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, NULL, NULL, &res), CM_OK);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e3", &im, &res, NULL, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(put(md, "b", "k", "e3", &inm, &res, NULL, NULL), CM_OK);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e3,DM,e2,e1");
    md_close(md);
}

/* PUT key (body "etag") written at mtime ms; its version id into vid. */
static void put_at(md_store *md, const char *b, const char *key, const char *etag, int64_t ms,
                   char *vid)
{
    md_object o = {0};
    md_vres res;
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    o.inline_data = (uint8_t *)etag;
    o.inline_len = o.size = strlen(etag);
    o.mtime_ms = ms;
    CU_ASSERT_EQUAL_FATAL(md_object_put_v(md, b, &o, NULL, NULL, NULL, &res), CM_OK);
    memcpy(vid, res.version_id, sizeof(res.version_id));
}

/* The lifecycle's delete of version i of a key listed as vs (newest first) as noncurrent: the
 * condition gw_lifecycle.c's version_apply builds from the listing. */
static cm_err lc_delete(md_store *md, const char *key, const md_object *vs, size_t i)
{
    md_cond c = {.noncurrent = 1, .successor_ms = vs[i - 1].mtime_ms, .newer_min = (uint32_t)i};
    md_object old;
    int had = 0;
    cm_err e = md_object_delete_v(md, "b", key, vs[i].version_id, &c, &old, &had, NULL);
    if (had)
        md_object_release(&old);
    return e;
}

/* A client's DELETE of version vid of key, between the lifecycle's listing and its delete. */
static void client_delete(md_store *md, const char *key, const char *vid)
{
    md_object old;
    int had = 0;
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", key, vid, NULL, &old, &had, NULL), CM_OK);
    if (had)
        md_object_release(&old);
}

static void listing(md_store *md, const char *key, md_object **vs, size_t *n)
{
    int more;
    CU_ASSERT_EQUAL_FATAL(md_key_versions(md, "b", key, 100, vs, n, &more), CM_OK);
}

/*
 * The lifecycle lists a key's versions, then deletes a noncurrent one by id; a client's write or
 * delete in between changes which version is noncurrent, its successor or how many are newer.
 * Unconditioned (before md_cond's noncurrent check) each case below removed the wrong version:
 * the current one, one whose NoncurrentDays restarted, one NewerNoncurrentVersions keeps.
 */
static void test_lifecycle_race(void)
{
    md_store *md = open_store("lcrace");
    char v[5][40], h[256];
    md_object *vs;
    size_t n;
    mk_bucket(md, "b", MD_VERS_ENABLED);

    /* the latest deleted by id: the listed noncurrent e2 is current now and stays */
    put_at(md, "b", "a", "e1", 1000, v[1]);
    put_at(md, "b", "a", "e2", 2000, v[2]);
    put_at(md, "b", "a", "e3", 3000, v[3]);
    listing(md, "a", &vs, &n);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    client_delete(md, "a", v[3]);
    CU_ASSERT_EQUAL(lc_delete(md, "a", vs, 1), CM_ERR_PRECONDITION);
    history(md, "b", "a", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,e1");
    /* e1's successor is e2 as listed, but e2 is no longer noncurrent: one newer version less */
    CU_ASSERT_EQUAL(lc_delete(md, "a", vs, 2), CM_ERR_PRECONDITION);
    history(md, "b", "a", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,e1");
    md_objects_free(vs, n);

    /* the successor deleted: f1 is noncurrent since f3's later write, its age starts again */
    put_at(md, "b", "c", "f1", 1000, v[1]);
    put_at(md, "b", "c", "f2", 2000, v[2]);
    put_at(md, "b", "c", "f3", 9000, v[3]);
    listing(md, "c", &vs, &n);
    client_delete(md, "c", v[2]);
    CU_ASSERT_EQUAL(lc_delete(md, "c", vs, 2), CM_ERR_PRECONDITION);
    history(md, "b", "c", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "f3,f1");
    md_objects_free(vs, n);

    /* fewer newer versions: g1 had two newer noncurrent ones, now one (NewerNoncurrentVersions
     * 1 keeps it), its successor unchanged */
    put_at(md, "b", "d", "g1", 1000, v[1]);
    put_at(md, "b", "d", "g2", 2000, v[2]);
    put_at(md, "b", "d", "g3", 3000, v[3]);
    put_at(md, "b", "d", "g4", 4000, v[4]);
    listing(md, "d", &vs, &n);
    client_delete(md, "d", v[4]);
    CU_ASSERT_EQUAL(lc_delete(md, "d", vs, 3), CM_ERR_PRECONDITION);
    history(md, "b", "d", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "g3,g2,g1");
    md_objects_free(vs, n);

    /* a write in between that changes nothing for the listed version: deleted as listed */
    put_at(md, "b", "e", "h1", 1000, v[1]);
    put_at(md, "b", "e", "h2", 2000, v[2]);
    listing(md, "e", &vs, &n);
    put_at(md, "b", "e", "h3", 3000, v[3]);
    CU_ASSERT_EQUAL(lc_delete(md, "e", vs, 1), CM_OK);
    history(md, "b", "e", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "h3,h2");
    md_objects_free(vs, n);

    /* a suspended write replacing the null successor: k1's successor is written later now */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    put_at(md, "b", "s", "k1", 1000, v[1]);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_SUSPENDED), CM_OK);
    put_at(md, "b", "s", "n2", 2000, v[2]);
    listing(md, "s", &vs, &n);
    put_at(md, "b", "s", "n3", 9000, v[3]);
    CU_ASSERT_EQUAL(lc_delete(md, "s", vs, 1), CM_ERR_PRECONDITION);
    history(md, "b", "s", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "n3,k1");
    md_objects_free(vs, n);
    md_close(md);
}

/* Every page size lists the same sequence; markers resume exactly after the last entry. */
static void test_list_paging(void)
{
    md_store *md = open_store("paging");
    const char *keys[] = {"a", "a/x", "a/y", "b", "ba", "c"};
    char all[64][80];
    size_t nall = 0;
    mk_bucket(md, "b", MD_VERS_ENABLED);
    for (size_t i = 0; i < 6; i++)
        for (size_t v = 0; v <= i % 3; v++) {
            char e[16];
            snprintf(e, sizeof(e), "%s%zu", keys[i], v);
            put_ok(md, "b", keys[i], e, NULL);
        }
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "ba", NULL, NULL, NULL, NULL, NULL), CM_OK);
    /* One page: key order, newest first within a key, IsLatest on each key's first. */
    md_vlist_query q = {.max_keys = 1000};
    md_list_result r;
    CU_ASSERT_EQUAL_FATAL(md_list_versions(md, "b", &q, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 1 + 2 + 3 + 1 + 3 + 3);
    CU_ASSERT_FALSE(r.truncated);
    for (size_t i = 0; i < r.n; i++) {
        const md_list_entry *e = &r.entries[i];
        int first = i == 0 || strcmp(r.entries[i - 1].key, e->key) != 0;
        CU_ASSERT_EQUAL(e->is_latest, first);
        if (i > 0)
            CU_ASSERT(strcmp(r.entries[i - 1].key, e->key) <= 0);
        snprintf(all[nall++], sizeof(all[0]), "%s %s", e->key, e->obj.version_id);
    }
    CU_ASSERT(r.entries[7].obj.delete_marker); /* "ba": the marker first */
    CU_ASSERT_STRING_EQUAL(r.entries[8].obj.etag, "ba1");
    md_list_result_release(&r);
    for (size_t page = 1; page <= 4; page++) {
        char km[80] = "", vm[40] = "";
        size_t got = 0;
        for (int more = 1; more;) {
            md_vlist_query pq = {
                .max_keys = page, .key_marker = km[0] ? km : NULL, .vid_marker = vm[0] ? vm : NULL};
            CU_ASSERT_EQUAL_FATAL(md_list_versions(md, "b", &pq, &r), CM_OK);
            CU_ASSERT(r.n <= page);
            for (size_t i = 0; i < r.n && got < 64; i++, got++) {
                char s[80];
                snprintf(s, sizeof(s), "%s %s", r.entries[i].key, r.entries[i].obj.version_id);
                CU_ASSERT_STRING_EQUAL(s, all[got]);
            }
            more = r.truncated;
            if (more) {
                CU_ASSERT_PTR_NOT_NULL_FATAL(r.next_version_marker);
                snprintf(km, sizeof(km), "%s", r.next_marker);
                snprintf(vm, sizeof(vm), "%s", r.next_version_marker);
            }
            md_list_result_release(&r);
        }
        CU_ASSERT_EQUAL(got, nall);
    }
    /* A key marker alone skips every version of that key. */
    md_vlist_query km = {.max_keys = 1000, .key_marker = "a/y"};
    CU_ASSERT_EQUAL(md_list_versions(md, "b", &km, &r), CM_OK);
    CU_ASSERT_STRING_EQUAL(r.entries[0].key, "b");
    md_list_result_release(&r);
    /* Delimiter: "a/" rolls up once; prefix narrows. */
    md_vlist_query dq = {.max_keys = 1000, .delimiter = "/"};
    CU_ASSERT_EQUAL(md_list_versions(md, "b", &dq, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 1 + 1 + 1 + 3 + 3);
    CU_ASSERT(r.entries[1].is_prefix);
    CU_ASSERT_STRING_EQUAL(r.entries[1].key, "a/");
    md_list_result_release(&r);
    md_vlist_query pq = {.max_keys = 1000, .prefix = "b"};
    CU_ASSERT_EQUAL(md_list_versions(md, "b", &pq, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 1 + 3);
    md_list_result_release(&r);
    /* ListObjects: latest non-marker versions only ("ba" hidden by its marker). */
    md_list_query lq = {.max_keys = 1000};
    CU_ASSERT_EQUAL(md_list_objects(md, "b", &lq, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 5);
    for (size_t i = 0; i < r.n; i++)
        CU_ASSERT(strcmp(r.entries[i].key, "ba") != 0);
    md_list_result_release(&r);
    /* A prefix whose keys are all behind markers is no directory; a page that ends before only
     * deleted keys is not truncated. */
    put_ok(md, "b", "z/1", "z", NULL);
    put_ok(md, "b", "z/2", "z", NULL);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "z/1", NULL, NULL, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "z/2", NULL, NULL, NULL, NULL, NULL), CM_OK);
    md_list_query dl = {.max_keys = 1000, .delimiter = "/"};
    CU_ASSERT_EQUAL(md_list_objects(md, "b", &dl, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 4); /* a, a/, b, c */
    for (size_t i = 0; i < r.n; i++)
        CU_ASSERT(strcmp(r.entries[i].key, "z/") != 0);
    md_list_result_release(&r);
    md_list_query exact = {.max_keys = 5};
    CU_ASSERT_EQUAL(md_list_objects(md, "b", &exact, &r), CM_OK);
    CU_ASSERT_EQUAL(r.n, 5);
    CU_ASSERT_FALSE(r.truncated);
    md_list_result_release(&r);
    put_ok(md, "b", "z/2", "z2", NULL); /* live again: the prefix is back */
    CU_ASSERT_EQUAL(md_list_objects(md, "b", &dl, &r), CM_OK);
    CU_ASSERT_EQUAL_FATAL(r.n, 5);
    CU_ASSERT(r.entries[4].is_prefix && strcmp(r.entries[4].key, "z/") == 0);
    md_list_result_release(&r);
    md_close(md);
}

static void test_delete_many(void)
{
    md_store *md = open_store("many");
    char v1[40], v2[40], h[256];
    mk_bucket(md, "b", MD_VERS_ENABLED);
    put_ok(md, "b", "k", "e1", v1);
    put_ok(md, "b", "k", "e2", v2);
    put_ok(md, "b", "j", "j1", NULL);
    const char *keys[] = {"k", "j", "k", "zz"};
    const char *vids[] = {v1, NULL, "null", NULL};
    cm_err errs[4];
    md_object olds[4];
    int had[4];
    md_vres res[4];
    CU_ASSERT_EQUAL(md_objects_delete_v(md, "b", keys, vids, 4, errs, olds, had, res), CM_OK);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(errs[i], CM_OK);
        if (had[i])
            md_object_release(&olds[i]);
    }
    CU_ASSERT_EQUAL(had[0], 1); /* v1 destroyed */
    CU_ASSERT_STRING_EQUAL(res[0].version_id, v1);
    CU_ASSERT(res[1].delete_marker && res[3].delete_marker); /* markers, even for "zz" */
    CU_ASSERT_EQUAL(had[2], 0);                              /* no null version */
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2");
    history(md, "b", "j", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "DM,j1");
    history(md, "b", "zz", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "DM");
    md_close(md);
}

static void test_bucket_delete(void)
{
    md_store *md = open_store("bdel");
    char v1[40], dm[40];
    md_vres res;
    mk_bucket(md, "b", MD_VERS_ENABLED);
    put_ok(md, "b", "k", "e1", v1);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, NULL, NULL, &res), CM_OK);
    memcpy(dm, res.version_id, sizeof(dm));
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", v1, NULL, NULL, NULL, &res), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_ERR_CONFLICT); /* the marker */
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", "k", dm, NULL, NULL, NULL, &res), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_OK);
    md_close(md);
}

static void test_tags_reopen(void)
{
    md_store *md = open_store("tags");
    char v1[40], v2[40], h[256];
    md_meta tags[1] = {{"color", "blue"}};
    md_object got;
    mk_bucket(md, "b", MD_VERS_ENABLED);
    put_ok(md, "b", "k", "e1", v1);
    put_ok(md, "b", "k", "e2", v2);
    CU_ASSERT_EQUAL(md_version_set_tags(md, "b", "k", v1, tags, 1), CM_OK);
    CU_ASSERT_EQUAL(md_version_set_tags(md, "b", "k", "null", tags, 1), CM_ERR_NOTFOUND);
    md_close(md);
    md = open_store("tags");
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", "k", v1, &got), CM_OK);
    CU_ASSERT_EQUAL_FATAL(got.ntags, 1);
    CU_ASSERT_STRING_EQUAL(got.tags[0].value, "blue");
    CU_ASSERT_EQUAL(got.inline_len, 2);
    md_object_release(&got);
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", "k", v2, &got), CM_OK);
    CU_ASSERT_EQUAL(got.ntags, 0);
    md_object_release(&got);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,e1");
    /* A new version after the reopen still sorts newest. */
    char v3[40];
    put_ok(md, "b", "k", "e3", v3);
    CU_ASSERT(strcmp(v3, v2) < 0);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e3,e2,e1");
    md_close(md);
}

static void test_long_keys(void)
{
    md_store *md = open_store("long");
    static char k1[1025], k2[1025];
    char h[256], vids[6][40];
    memset(k1, 'x', 1000);
    k1[1000] = 0;
    memcpy(k2, k1, 1000);
    memcpy(k2 + 1000, "yz", 3); /* k1 is a prefix of k2 */
    mk_bucket(md, "b", MD_VERS_ENABLED);
    put_ok(md, "b", k1, "a1", vids[0]);
    put_ok(md, "b", k2, "b1", vids[1]);
    put_ok(md, "b", k1, "a2", vids[2]);
    put_ok(md, "b", k2, "b2", vids[3]);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_SUSPENDED), CM_OK);
    put_ok(md, "b", k1, "a3", vids[4]);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    put_ok(md, "b", k1, "a4", vids[5]);
    history(md, "b", k1, h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "a4,a3,a2,a1");
    history(md, "b", k2, h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "b2,b1");
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", k1, "null", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "a3");
    md_object_release(&got);
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", k2, vids[1], &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "b1");
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_version_get(md, "b", k1, vids[1], &got), CM_ERR_NOTFOUND);
    /* Paged by one: a1..a4 of k1 newest first, then k2's. */
    const char *want[] = {"a4", "a3", "a2", "a1", "b2", "b1"};
    char km[1100] = "", vm[40] = "";
    size_t got_n = 0;
    for (int more = 1; more && got_n < 10;) {
        md_vlist_query q = {
            .max_keys = 1, .key_marker = km[0] ? km : NULL, .vid_marker = vm[0] ? vm : NULL};
        md_list_result r;
        CU_ASSERT_EQUAL_FATAL(md_list_versions(md, "b", &q, &r), CM_OK);
        if (r.n == 1 && got_n < 6)
            CU_ASSERT_STRING_EQUAL(r.entries[0].obj.etag, want[got_n]);
        got_n += r.n;
        more = r.truncated;
        if (more) {
            snprintf(km, sizeof(km), "%s", r.next_marker);
            snprintf(vm, sizeof(vm), "%s", r.next_version_marker);
        }
        md_list_result_release(&r);
    }
    CU_ASSERT_EQUAL(got_n, 6);
    /* Deleting k1's versions leaves k2's alone. */
    for (int i = 0; i < 6; i += 2) {
        md_object old;
        int had;
        CU_ASSERT_EQUAL(
            md_object_delete_v(md, "b", k1, i == 4 ? "null" : vids[i], NULL, &old, &had, NULL),
            CM_OK);
        CU_ASSERT_EQUAL(had, 1);
        if (had)
            md_object_release(&old);
    }
    CU_ASSERT_EQUAL(md_object_delete_v(md, "b", k1, vids[5], NULL, NULL, NULL, NULL), CM_OK);
    history(md, "b", k1, h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "");
    history(md, "b", k2, h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "b2,b1");
    md_close(md);
}

static void test_failed_commit(void)
{
    md_store *md = open_store("failed");
    char v1[40], v2[40], h[256];
    md_object old;
    int had = 0;
    md_vres res;
    mk_bucket(md, "b", MD_VERS_ENABLED);
    put_ok(md, "b", "k", "e1", v1);
    put_ok(md, "b", "k", "e2", v2);
    md_gc_fail_commits(md, 1, EIO);
    CU_ASSERT_NOT_EQUAL(put(md, "b", "k", "e3", NULL, &res, &old, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    md_gc_fail_commits(md, 1, EIO);
    CU_ASSERT_NOT_EQUAL(md_object_delete_v(md, "b", "k", NULL, NULL, &old, &had, &res), CM_OK);
    md_gc_fail_commits(md, 1, EIO);
    CU_ASSERT_NOT_EQUAL(md_object_delete_v(md, "b", "k", v2, NULL, &old, &had, &res), CM_OK);
    CU_ASSERT_EQUAL(had, 0);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,e1");
    md_close(md);
    md = open_store("failed");
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e2,e1");
    /* The next write works and still sorts newest. */
    char v3[40];
    put_ok(md, "b", "k", "e3", v3);
    CU_ASSERT(strcmp(v3, v2) < 0);
    history(md, "b", "k", h, sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "e3,e2,e1");
    md_close(md);
}

/* Versioning is a bucket setting like the others (md_bucket_rewrite): the other fields (tags
 * here) are kept, setting the state the bucket already has writes nothing (no commit), and a
 * missing bucket is NOTFOUND. */
static void test_set_rewrite(void)
{
    md_store *md = open_store("set_rewrite");
    md_meta tag = {"team", "blue"}, *tags = NULL;
    md_bucket b;
    md_stats s0, s1;
    size_t n = 0;
    mk_bucket(md, "b", 0);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_set(md, "b", &tag, 1), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    md_stats_get(md, &s0);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    md_stats_get(md, &s1);
    CU_ASSERT_EQUAL(s1.commits, s0.commits); /* no change, no write */
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_SUSPENDED), CM_OK);
    md_stats_get(md, &s1);
    CU_ASSERT_EQUAL(s1.commits, s0.commits + 1);
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "b", &b), CM_OK);
    CU_ASSERT_EQUAL(b.versioning, MD_VERS_SUSPENDED);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &tags, &n), CM_OK);
    CU_ASSERT(n == 1 && strcmp(tags[0].name, "team") == 0 && strcmp(tags[0].value, "blue") == 0);
    md_meta_free(tags, n);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "nob", MD_VERS_ENABLED), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", 7), CM_ERR_INVAL);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"vid", test_vid},
                                    {"never_enabled", test_never_enabled},
                                    {"enabled", test_enabled},
                                    {"suspended", test_suspended},
                                    {"conditional", test_conditional},
                                    {"list_paging", test_list_paging},
                                    {"delete_many", test_delete_many},
                                    {"bucket_delete", test_bucket_delete},
                                    {"tags_reopen", test_tags_reopen},
                                    {"long_keys", test_long_keys},
                                    {"failed_commit", test_failed_commit},
                                    {"lifecycle_race", test_lifecycle_race},
                                    {"set_rewrite", test_set_rewrite},
                                    {NULL, NULL}};
    cu_add_suite("meta_versions", tests);
}
