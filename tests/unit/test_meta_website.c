/*
 * test_meta_website.c - the bucket's website configuration in its record (md_btags.c, BT_WEBSITE):
 * set, read back, replaced, removed, kept across a reopen, gone with the bucket; kept by the
 * other settings' rewrites (tags, CORS) and keeping them, and kept with a field this reader does
 * not know.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "md.h"
#include "md_int.h"

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

static void expect_doc(md_store *md, int website, const char *want)
{
    char *xml = NULL;
    size_t len = 0;
    cm_err e = website ? md_bucket_website_get(md, "b", &xml, &len)
                       : md_bucket_cors_get(md, "b", &xml, &len);
    CU_ASSERT_EQUAL_FATAL(e, CM_OK);
    if (!want) {
        CU_ASSERT_PTR_NULL(xml);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT_STRING_EQUAL(xml, want);
    free(xml);
}

static void test_website_record(void)
{
    md_store *md = open_store("web");
    md_meta tags[1] = {{"k", "v"}}, *got = NULL;
    size_t n = 0;
    char *xml;

    mk_bucket(md, "b");
    expect_doc(md, 1, NULL);
    CU_ASSERT_EQUAL(md_bucket_website_get(md, "nope", &xml, &n), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "nope", "<w/>", 4), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w1/>", 5), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<c/>", 4), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", tags, 1), CM_OK);
    expect_doc(md, 1, "<w1/>"); /* kept by the CORS and tag rewrites */
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w2/>", 5), CM_OK);
    expect_doc(md, 1, "<w2/>");
    expect_doc(md, 0, "<c/>"); /* and keeps them */
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_meta_free(got, n);
    md_close(md);

    md = open_store("web"); /* durable */
    expect_doc(md, 1, "<w2/>");
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", NULL, 0), CM_OK);
    expect_doc(md, 1, NULL);
    expect_doc(md, 0, "<c/>");
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w3/>", 5), CM_OK);
    md_part *parts = NULL;
    size_t np = 0;
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", &parts, &np), CM_OK);
    free(parts);
    mk_bucket(md, "b"); /* a re-created bucket starts without one */
    expect_doc(md, 1, NULL);
    md_close(md);
}

static void test_unknown_field_kept(void)
{
    md_bucket b = {0};
    md_wbuf w = {0}, w2 = {0}, w3 = {0};
    char *xml;
    size_t len;
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode(&b, &w), CM_OK);
    static const uint8_t unknown[] = {201, 0, 0, 0, 2, 'h', 'i'};
    md_w_bytes(&w, unknown, sizeof(unknown));
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode_website(w.p, w.len, "<w/>", 4, &w2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode_cors(w2.p, w2.len, "<c/>", 4, &w3), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(memmem(w3.p, w3.len, unknown, sizeof(unknown)));
    CU_ASSERT_EQUAL(md_bucket_website_decode(w3.p, w3.len, &xml, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(xml, "<w/>");
    free(xml);
    CU_ASSERT_EQUAL(md_bucket_cors_decode(w3.p, w3.len, &xml, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(xml, "<c/>");
    free(xml);
    md_w_free(&w);
    md_w_free(&w2);
    md_w_free(&w3);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"website record", test_website_record},
                                    {"unknown field kept", test_unknown_field_kept},
                                    {NULL, NULL}};
    cu_add_suite("meta website", tests);
}
