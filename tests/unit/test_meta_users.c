/*
 * test_meta_users.c - the users database (md_users.c): users created with their first key, more
 * keys, names and keys taken refused, disabling, deleting a user with all its keys, everything kept
 * across a reopen; bucket policies tied to their bucket's incarnation; and a bucket's access
 * settings (md_bucket_access_set) rewritten without losing its tags, and its tags rewritten
 * without losing them; an object's canned ACL kept in its record.
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

static md_user_key key(const char *ak, const char *user, const char *sealed)
{
    md_user_key k = {.created_ms = 7};
    snprintf(k.access_key, sizeof(k.access_key), "%s", ak);
    snprintf(k.user, sizeof(k.user), "%s", user);
    k.sealed_len = strlen(sealed);
    memcpy(k.sealed, sealed, k.sealed_len);
    return k;
}

static md_user user(const char *name)
{
    md_user u = {.created_ms = 5};
    snprintf(u.name, sizeof(u.name), "%s", name);
    return u;
}

static void list(md_store *md, md_user **u, size_t *nu, md_user_key **k, size_t *nk)
{
    CU_ASSERT_EQUAL_FATAL(md_users_list(md, u, nu, k, nk), CM_OK);
}

static void test_users(void)
{
    md_store *md = open_store("users");
    md_user a = user("alice"), b = user("bob"), *us;
    md_user_key ka = key("CKA", "alice", "sealed-a"), kb = key("CKB", "bob", "sealed-b");
    md_user_key kb2 = key("CKB2", "bob", "sealed-b2"), *ks;
    size_t nu, nk;
    CU_ASSERT_EQUAL(md_user_create(md, &a, &ka), CM_OK);
    CU_ASSERT_EQUAL(md_user_create(md, &b, &kb), CM_OK);
    CU_ASSERT_EQUAL(md_user_create(md, &a, &kb2), CM_ERR_EXISTS); /* name taken */
    md_user c = user("carol");
    CU_ASSERT_EQUAL(md_user_create(md, &c, &ka), CM_ERR_EXISTS); /* key taken: carol not made */
    CU_ASSERT_EQUAL(md_user_key_add(md, &kb2), CM_OK);
    md_user_key orphan = key("CKX", "nobody", "s");
    CU_ASSERT_EQUAL(md_user_key_add(md, &orphan), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_user_key_set_disabled(md, "CKB", 1), CM_OK);
    CU_ASSERT_EQUAL(md_user_set_disabled(md, "alice", 1), CM_OK);
    CU_ASSERT_EQUAL(md_user_set_disabled(md, "zed", 1), CM_ERR_NOTFOUND);
    md_close(md);

    md = open_store("users");
    list(md, &us, &nu, &ks, &nk);
    CU_ASSERT_EQUAL_FATAL(nu, 2);
    CU_ASSERT_EQUAL_FATAL(nk, 3);
    CU_ASSERT_STRING_EQUAL(us[0].name, "alice");
    CU_ASSERT_TRUE(us[0].disabled);
    CU_ASSERT_EQUAL(us[0].created_ms, 5);
    CU_ASSERT_FALSE(us[1].disabled);
    CU_ASSERT_STRING_EQUAL(ks[0].access_key, "CKA");
    CU_ASSERT_STRING_EQUAL(ks[1].access_key, "CKB");
    CU_ASSERT_TRUE(ks[1].disabled);
    CU_ASSERT_STRING_EQUAL(ks[2].user, "bob");
    CU_ASSERT_EQUAL(ks[2].sealed_len, strlen("sealed-b2"));
    CU_ASSERT_EQUAL(memcmp(ks[2].sealed, "sealed-b2", ks[2].sealed_len), 0);
    free(us);
    free(ks);

    /* deleting a user takes every key of it, and only those */
    CU_ASSERT_EQUAL(md_user_delete(md, "bob"), CM_OK);
    CU_ASSERT_EQUAL(md_user_delete(md, "bob"), CM_ERR_NOTFOUND);
    list(md, &us, &nu, &ks, &nk);
    CU_ASSERT_EQUAL(nu, 1);
    CU_ASSERT_EQUAL_FATAL(nk, 1);
    CU_ASSERT_STRING_EQUAL(ks[0].access_key, "CKA");
    free(us);
    free(ks);
    CU_ASSERT_EQUAL(md_user_key_delete(md, "CKA"), CM_OK);
    CU_ASSERT_EQUAL(md_user_key_delete(md, "CKA"), CM_ERR_NOTFOUND);
    md_close(md);
}

static void test_policies_and_access(void)
{
    md_store *md = open_store("policies");
    md_bucket b = {.created_ms = 100}, got;
    md_meta tags[1] = {{"team", "web"}}, *gt;
    char *json;
    size_t len, n;
    snprintf(b.name, sizeof(b.name), "site");
    snprintf(b.owner, sizeof(b.owner), "alice");
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_policy_get(md, "site", 100, &json, &len), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_policy_set(md, "site", 100, "{\"a\":1}", 7), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_policy_get(md, "site", 100, &json, &len), CM_OK);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_STRING_EQUAL(json, "{\"a\":1}");
    free(json);
    /* another incarnation of the bucket does not inherit it */
    CU_ASSERT_EQUAL(md_bucket_policy_get(md, "site", 101, &json, &len), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_policy_set(md, "site", 100, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_policy_set(md, "site", 100, NULL, 0), CM_OK); /* none: fine */
    CU_ASSERT_EQUAL(md_bucket_policy_get(md, "site", 100, &json, &len), CM_ERR_NOTFOUND);

    /* settings and tags rewrite the record without losing each other */
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "site", tags, 1), CM_OK);
    md_bucket set = b;
    set.acl = MD_ACL_PUBLIC_READ;
    set.pab = MD_PAB_SET | MD_PAB_RESTRICT;
    set.ownership = MD_OWN_PREFERRED;
    CU_ASSERT_EQUAL(md_bucket_access_set(md, "site", &set, MD_ACCESS_ACL | MD_ACCESS_PAB), CM_OK);
    set.acl = MD_ACL_PRIVATE; /* only the fields named change */
    CU_ASSERT_EQUAL(md_bucket_access_set(md, "site", &set, MD_ACCESS_OWNERSHIP), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_access_set(md, "nope", &set, MD_ACCESS_ACL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "site", tags, 1), CM_OK);
    md_close(md);
    md = open_store("policies");
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "site", &got), CM_OK);
    CU_ASSERT_EQUAL(got.acl, MD_ACL_PUBLIC_READ);
    CU_ASSERT_EQUAL(got.pab, MD_PAB_SET | MD_PAB_RESTRICT);
    CU_ASSERT_EQUAL(got.ownership, MD_OWN_PREFERRED);
    CU_ASSERT_STRING_EQUAL(got.owner, "alice");
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "site", &gt, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_meta_free(gt, n);

    /* an object's ACL lives in its record */
    md_object o = {0}, r;
    o.key = "index.html";
    o.etag[0] = 'e';
    o.acl = MD_ACL_PUBLIC_READ;
    CU_ASSERT_EQUAL(md_object_put(md, "site", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "site", "index.html", &r), CM_OK);
    CU_ASSERT_EQUAL(r.acl, MD_ACL_PUBLIC_READ);
    md_object_release(&r);

    /* the policy goes with its bucket */
    CU_ASSERT_EQUAL(md_bucket_policy_set(md, "site", 100, "{}", 2), CM_OK);
    CU_ASSERT_EQUAL(md_object_delete(md, "site", "index.html", NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "site", NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK); /* even with the same created_ms */
    CU_ASSERT_EQUAL(md_bucket_policy_get(md, "site", 100, &json, &len), CM_ERR_NOTFOUND);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"users", test_users}, {"policies_and_access", test_policies_and_access}, {NULL, NULL}};
    cu_add_suite("meta_users", tests);
}
