/*
 * test_meta_tags.c - tags in the metadata store: object tags stored and read back with the
 * record, bucket tags (md_btags.c) set, replaced, removed, kept across a reopen and gone with the
 * bucket; and the read-modify-write the gateway's PutObjectTagging relies on: a record rewritten
 * with md_rec_put expecting the generation it read fails (CM_ERR_CONFLICT) once a PUT of the
 * same bytes (same ETag) replaced it in between, so the stale record, and the body it names,
 * never comes back.
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
    snprintf(b.owner, sizeof(b.owner), "AKIDEXAMPLE");
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

static void test_bucket_tags(void)
{
    md_store *md = open_store("btags");
    md_meta set[2] = {{"team", "storage"}, {"cost", ""}}, *got;
    size_t n;
    md_bucket b;
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", set, 2), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "nope", set, 2), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_tags_get(md, "nope", &got, &n), CM_ERR_NOTFOUND);
    md_close(md);
    md = open_store("btags");
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(got[0].name, "team");
    CU_ASSERT_STRING_EQUAL(got[0].value, "storage");
    CU_ASSERT_STRING_EQUAL(got[1].name, "cost");
    md_meta_free(got, n);
    /* The record keeps its other fields. */
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "b", &b), CM_OK);
    CU_ASSERT_STRING_EQUAL(b.owner, "AKIDEXAMPLE");
    CU_ASSERT_EQUAL(b.created_ms, 1700000000000LL);
    /* Replace, then remove. */
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", set + 1, 1), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_meta_free(got, n);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    /* A deleted and re-created bucket starts without tags. */
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", set, 2), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_OK);
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_close(md);
}

static md_object mk_obj(const char *key, const char *etag)
{
    md_object o = {0};
    o.key = (char *)key;
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = 5;
    return o;
}

static void test_object_tags_rmw(void)
{
    md_store *md = open_store("otags");
    md_meta tags[1] = {{"k", "v"}};
    md_object o = mk_obj("key", "e1"), got;
    mk_bucket(md, "b");
    o.tags = tags;
    o.ntags = 1;
    o.size = 1; /* the first body */
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "key", &got), CM_OK);
    CU_ASSERT_EQUAL_FATAL(got.ntags, 1);
    CU_ASSERT_STRING_EQUAL(got.tags[0].value, "v");
    md_object_release(&got);

    /* PutObjectTagging reads the record... */
    md_object read;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "key", &read), CM_OK);
    /* ...a PUT of the same bytes (same ETag, another body) commits in between... */
    md_object again = mk_obj("key", "e1");
    again.size = 2; /* stands for the new body */
    CU_ASSERT_EQUAL(md_object_put(md, "b", &again, NULL, NULL, NULL), CM_OK);
    /* ...so the rewrite of what was read is refused, and the PUT's record stays. */
    md_meta_free(read.tags, read.ntags);
    read.tags = NULL;
    read.ntags = 0;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &read, read.generation, NULL), CM_ERR_CONFLICT);
    md_object_release(&read);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "key", &got), CM_OK);
    CU_ASSERT_EQUAL(got.size, 2);
    CU_ASSERT_EQUAL(got.ntags, 0);
    md_object_release(&got);
    /* Read again, the rewrite applies to the record that won. */
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "key", &read), CM_OK);
    md_meta *copy = calloc(1, sizeof(*copy));
    copy[0].name = strdup("after");
    copy[0].value = strdup("race");
    read.tags = copy;
    read.ntags = 1;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &read, read.generation, NULL), CM_OK);
    md_object_release(&read);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "key", &got), CM_OK);
    CU_ASSERT_EQUAL(got.size, 2);
    CU_ASSERT_EQUAL_FATAL(got.ntags, 1);
    CU_ASSERT_STRING_EQUAL(got.tags[0].name, "after");
    md_object_release(&got);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"bucket_tags", test_bucket_tags}, {"object_tags_rmw", test_object_tags_rmw}, {NULL, NULL}};
    cu_add_suite("meta_tags", tests);
}
