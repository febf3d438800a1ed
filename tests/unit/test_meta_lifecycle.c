/*
 * test_meta_lifecycle.c - database "lifecycle" (md_lifecycle.c): a bucket's configuration set,
 * replaced, read back after a reopen, refused for a missing bucket, listed in name order after a
 * marker, removed, and dropped with its bucket (a re-created bucket has none); the worker's
 * state blobs written, overwritten and kept across a reopen; every write reaching each metadata
 * copy (a store of three copies whose first is lost still reads them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "md.h"

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

static void expect_doc(md_store *md, const char *bucket, const char *want)
{
    char *doc = NULL;
    size_t len = 0;
    cm_err e = md_lc_config_get(md, bucket, &doc, &len);
    if (!want) {
        CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
        CU_ASSERT_PTR_NULL(doc);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(e, CM_OK);
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT_STRING_EQUAL(doc, want);
    free(doc);
}

static void test_config(void)
{
    md_store *md = open_store("config");
    mk_bucket(md, "b");
    mk_bucket(md, "a");
    mk_bucket(md, "c");
    expect_doc(md, "b", NULL);
    CU_ASSERT_EQUAL(md_lc_config_set(md, "nope", "<x/>", 4), CM_ERR_NOTFOUND);
    expect_doc(md, "nope", NULL);
    CU_ASSERT_EQUAL(md_lc_config_set(md, "b", "<one/>", 6), CM_OK);
    CU_ASSERT_EQUAL(md_lc_config_set(md, "b", "<two/>", 6), CM_OK); /* replaced */
    CU_ASSERT_EQUAL(md_lc_config_set(md, "c", "<c/>", 4), CM_OK);
    CU_ASSERT_EQUAL(md_lc_config_set(md, "a", "<a/>", 4), CM_OK);
    md_close(md);
    md = open_store("config");
    expect_doc(md, "b", "<two/>");

    char **names;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(md_lc_buckets(md, NULL, 10, &names, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(names[0], "a");
    CU_ASSERT_STRING_EQUAL(names[1], "b");
    CU_ASSERT_STRING_EQUAL(names[2], "c");
    md_lc_names_free(names, n);
    CU_ASSERT_EQUAL_FATAL(md_lc_buckets(md, "a", 1, &names, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(names[0], "b"); /* after the marker, at most max */
    md_lc_names_free(names, n);
    CU_ASSERT_EQUAL(md_lc_buckets(md, "c", 5, &names, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(names); /* nothing to free */
    /* State blobs are not configurations. */
    CU_ASSERT_EQUAL(md_lc_state_set(md, "cursor", "z", 1), CM_OK);
    CU_ASSERT_EQUAL(md_lc_buckets(md, "b", 5, &names, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_lc_names_free(names, n);

    CU_ASSERT_EQUAL(md_lc_config_del(md, "a"), CM_OK);
    CU_ASSERT_EQUAL(md_lc_config_del(md, "a"), CM_OK); /* none: still fine */
    expect_doc(md, "a", NULL);
    /* Deleting the bucket drops its configuration; a re-created bucket starts without one. */
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_OK);
    mk_bucket(md, "b");
    expect_doc(md, "b", NULL);
    expect_doc(md, "c", "<c/>");
    md_close(md);
}

static void test_state(void)
{
    md_store *md = open_store("state");
    void *v;
    size_t len;
    CU_ASSERT_EQUAL(md_lc_state_get(md, "cursor", &v, &len), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_lc_state_set(md, "cursor", "\0\1\2", 3), CM_OK);
    CU_ASSERT_EQUAL(md_lc_state_set(md, "last", "L", 1), CM_OK);
    CU_ASSERT_EQUAL(md_lc_state_set(md, "cursor", "\3\4", 2), CM_OK);
    md_close(md);
    md = open_store("state");
    CU_ASSERT_EQUAL_FATAL(md_lc_state_get(md, "cursor", &v, &len), CM_OK);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(v, "\3\4", 2), 0);
    free(v);
    /* An empty blob (the worker's "no pass under way") reads back empty. */
    CU_ASSERT_EQUAL(md_lc_state_set(md, "cursor", NULL, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_lc_state_get(md, "cursor", &v, &len), CM_OK);
    CU_ASSERT_EQUAL(len, 0);
    free(v);
    CU_ASSERT_EQUAL(md_lc_state_set(md, "", "x", 1), CM_ERR_INVAL);
    md_close(md);
}

/* Written through the write log: each metadata copy holds the rows. */
static void test_copies(void)
{
    char dir[512], cmd[1200];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/copies", cu_tmpdir());
    const char *dirs[3];
    char d[3][600];
    for (int i = 0; i < 3; i++) {
        snprintf(d[i], sizeof(d[i]), "%s/m%d", dir, i);
        dirs[i] = d[i];
    }
    CU_ASSERT_FATAL(md_open_copies(dirs, 3, NULL, 1 << 26, &md) == CM_OK);
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(md_lc_config_set(md, "b", "<doc/>", 6), CM_OK);
    CU_ASSERT_EQUAL(md_lc_state_set(md, "last", "L", 1), CM_OK);
    md_close(md);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d[0]); /* lose the first copy */
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_FATAL(md_open_copies(dirs, 3, NULL, 1 << 26, &md) == CM_OK); /* rebuilt from 1, 2 */
    expect_doc(md, "b", "<doc/>");
    void *v;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_lc_state_get(md, "last", &v, &len), CM_OK);
    CU_ASSERT_EQUAL(len, 1);
    free(v);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"config", test_config}, {"state", test_state}, {"copies", test_copies}, {NULL, NULL}};
    cu_add_suite("meta_lifecycle", tests);
}
