/*
 * test_gateway_policy.c - the bucket policy parser and evaluator (gw_policy.c): allow, explicit
 * deny winning over allow, Action/NotAction and Resource wildcards, principal matching (everyone,
 * the account, a named user, anonymous), the conditions (s3:prefix, aws:SourceIp,
 * aws:SecureTransport, s3:ExistingObjectTag, negated operators on absent keys), IsPublic, and the
 * malformed policies refused with a message.
 */
#include <stdio.h>
#include <string.h>

#include "cu_main.h"
#include "gw_policy.h"

#define ARN "arn:aws:s3:::pics"

static gw_policy *parse(const char *json)
{
    gw_policy *p = NULL;
    char msg[200];
    gw_s3err e = gw_policy_parse(json, strlen(json), "pics", &p, msg, sizeof(msg));
    if (e != GW_OK)
        fprintf(stderr, "parse failed: %s\n", msg);
    CU_ASSERT_EQUAL_FATAL(e, GW_OK);
    return p;
}

/* The effect for user (NULL: anonymous), action, resource suffix ("" or "/key"). */
static gw_policy_effect eval(const gw_policy *p, const char *user, const char *action,
                             const char *res)
{
    char r[256];
    snprintf(r, sizeof(r), ARN "%s", res);
    gw_policy_ctx c = {.user = user, .action = action, .resource = r, .source_ip = "10.1.2.3"};
    return gw_policy_eval(p, &c, NULL);
}

static void test_allow_and_deny(void)
{
    gw_policy *p = parse(
        "{\"Version\":\"2012-10-17\",\"Statement\":["
        "{\"Sid\":\"a\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
        "[\"arn:aws:iam::123456789012:user/bob\"]},\"Action\":[\"s3:GetObject\",\"s3:List*\"],"
        "\"Resource\":[\"" ARN "/pub/*\",\"" ARN "\"]},"
        "{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "/pub/secret?.txt\"}]}");
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObject", "/pub/a.jpg"), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:getobject", "/pub/a.jpg"), GW_POLICY_ALLOW); /* nocase */
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:ListBucket", ""), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:ListBucketVersions", ""), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:PutObject", "/pub/a.jpg"), GW_POLICY_NONE);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObject", "/priv/a.jpg"), GW_POLICY_NONE);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObject", "/PUB/a.jpg"), GW_POLICY_NONE); /* case */
    CU_ASSERT_EQUAL(eval(p, "carol", "s3:GetObject", "/pub/a.jpg"), GW_POLICY_NONE);
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:GetObject", "/pub/a.jpg"), GW_POLICY_NONE);
    /* explicit deny wins over the allow, for everyone; ? is one character */
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObject", "/pub/secret1.txt"), GW_POLICY_DENY);
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:GetObject", "/pub/secret1.txt"), GW_POLICY_DENY);
    int pub = -1; /* set whatever decides (a fuzz find: a Deny left it unset) */
    gw_policy_ctx dc = {.action = "s3:GetObject", .resource = ARN "/pub/secret1.txt"};
    CU_ASSERT_EQUAL(gw_policy_eval(p, &dc, &pub), GW_POLICY_DENY);
    CU_ASSERT_EQUAL(pub, 0);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObject", "/pub/secret12.txt"), GW_POLICY_ALLOW);
    CU_ASSERT_FALSE(gw_policy_is_public(p));
    gw_policy_free(p);
}

static void test_principals_and_not_action(void)
{
    int pub = 0;
    gw_policy *p = parse("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},"
                         "\"NotAction\":[\"s3:Delete*\",\"s3:Put*\"],\"Resource\":\"" ARN "/*\"}}");
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:GetObject", "/x"), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, "bob", "s3:GetObjectTagging", "/x"), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:DeleteObject", "/x"), GW_POLICY_NONE);
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:PutObject", "/x"), GW_POLICY_NONE);
    gw_policy_ctx c = {.action = "s3:GetObject", .resource = ARN "/x"};
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, &pub), GW_POLICY_ALLOW);
    CU_ASSERT_TRUE(pub); /* only "*" allowed it */
    CU_ASSERT_TRUE(gw_policy_is_public(p));
    gw_policy_free(p);

    /* an account id and the account root ARN name every user, never anonymous */
    p = parse("{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"123456789012\"},"
              "\"Action\":\"s3:GetObject\",\"Resource\":\"" ARN "/a\"},"
              "{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::1:root\"},"
              "\"Action\":\"s3:PutObject\",\"Resource\":\"" ARN "/a\"}]}");
    CU_ASSERT_EQUAL(eval(p, "anyone", "s3:GetObject", "/a"), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, "anyone", "s3:PutObject", "/a"), GW_POLICY_ALLOW);
    CU_ASSERT_EQUAL(eval(p, NULL, "s3:GetObject", "/a"), GW_POLICY_NONE);
    c.user = "anyone";
    c.resource = ARN "/a";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, &pub), GW_POLICY_ALLOW);
    CU_ASSERT_FALSE(pub);
    CU_ASSERT_FALSE(gw_policy_is_public(p));
    gw_policy_free(p);
}

static void test_conditions(void)
{
    gw_policy *p = parse(
        "{\"Statement\":["
        "{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:ListBucket\","
        "\"Resource\":\"" ARN "\",\"Condition\":{\"StringLike\":{\"s3:prefix\":[\"pub/*\",\"\"]}}},"
        "{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\","
        "\"Resource\":\"" ARN "/*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":"
        "[\"10.1.0.0/16\",\"2001:db8::/32\"]},\"StringEquals\":"
        "{\"s3:ExistingObjectTag/class\":\"public\"}}},"
        "{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"" ARN "/*\","
        "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":false},\"NotIpAddress\":"
        "{\"aws:SourceIp\":\"10.1.2.0/24\"}}}]}");
    md_meta pub_tag = {"class", "public"}, other_tag = {"class", "secret"};
    gw_policy_ctx c = {.action = "s3:ListBucket", .resource = ARN, .source_ip = "10.1.2.3"};
    CU_ASSERT_TRUE(gw_policy_uses_tags(p));
    c.prefix = "pub/photos/";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_ALLOW);
    c.prefix = "";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_ALLOW);
    c.prefix = "priv/";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_NONE);
    c.prefix = NULL; /* an absent key fails a positive operator */
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_NONE);

    c.action = "s3:GetObject";
    c.resource = ARN "/k";
    c.tags = &pub_tag;
    c.ntags = 1;
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_ALLOW);
    c.tags = &other_tag;
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_NONE);
    c.tags = &pub_tag;
    c.source_ip = "2001:db8:1::5";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_DENY); /* plain HTTP, not 10.1.2/24 */
    c.secure = 1;
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_ALLOW);
    c.source_ip = "10.2.0.1";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_NONE);
    c.secure = 0;
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_DENY);
    c.source_ip = NULL; /* NotIpAddress holds for a request without an address */
    CU_ASSERT_EQUAL(gw_policy_eval(p, &c, NULL), GW_POLICY_DENY);
    /* the public statements are narrowed... except the listing one */
    CU_ASSERT_TRUE(gw_policy_is_public(p));
    gw_policy_free(p);

    p = parse("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:Get*\","
              "\"Resource\":\"" ARN "/*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":"
              "\"192.168.0.0/24\"},\"StringNotEquals\":{\"aws:username\":\"mallory\"}}}}");
    CU_ASSERT_FALSE(gw_policy_is_public(p)); /* fixed source addresses */
    gw_policy_ctx d = {.action = "s3:GetObject", .resource = ARN "/x", .source_ip = "192.168.0.9"};
    CU_ASSERT_EQUAL(gw_policy_eval(p, &d, NULL), GW_POLICY_ALLOW); /* anonymous: no username */
    d.user = "mallory";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &d, NULL), GW_POLICY_NONE);
    d.user = "bob";
    d.source_ip = "192.168.1.9";
    CU_ASSERT_EQUAL(gw_policy_eval(p, &d, NULL), GW_POLICY_NONE);
    gw_policy_free(p);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "",
        "{not json",
        "[]",
        "{\"Version\":\"2012-10-17\"}",
        "{\"Version\":\"2011-01-01\",\"Statement\":[]}",
        "{\"Statement\":[]}",
        "{\"Statement\":{\"Effect\":\"Maybe\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"iam:*\","
        "\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"arn:aws:s3:::other/*\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"arn:aws:s3:::picsx\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"x\"},"
        "\"Action\":\"s3:*\",\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"bob\"},"
        "\"Action\":\"s3:*\",\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"NotPrincipal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN
        "\",\"Condition\":{\"DateGreaterThan\":{\"aws:CurrentTime\":\"x\"}}}}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "\",\"Condition\":{\"StringEquals\":{\"aws:Referer\":\"x\"}}}}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN
        "\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/33\"}}}}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "\",\"Condition\":{\"IpAddress\":{\"s3:prefix\":\"10.0.0.0/8\"}}}}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"Resource\":\"" ARN "\",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"maybe\"}}}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\","
        "\"NotAction\":\"s3:Get*\",\"Resource\":\"" ARN "\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Effect\":\"Deny\",\"Principal\":\"*\","
        "\"Action\":\"s3:*\",\"Resource\":\"" ARN "\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_policy *p = (gw_policy *)1;
        char msg[200];
        gw_s3err e = gw_policy_parse(bad[i], strlen(bad[i]), "pics", &p, msg, sizeof(msg));
        if (e != GW_MALFORMED_POLICY)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(e, GW_MALFORMED_POLICY);
        CU_ASSERT_PTR_NULL(p);
        CU_ASSERT_TRUE(msg[0] != '\0');
    }
}

static void test_glob(void)
{
    CU_ASSERT_TRUE(gw_policy_glob("*", "", 0));
    CU_ASSERT_TRUE(gw_policy_glob("a*b*c", "axxbyyc", 0));
    CU_ASSERT_FALSE(gw_policy_glob("a*b*c", "axxbyy", 0));
    CU_ASSERT_TRUE(gw_policy_glob("a?c", "abc", 0));
    CU_ASSERT_FALSE(gw_policy_glob("a?c", "ac", 0));
    CU_ASSERT_TRUE(gw_policy_glob("*.jpg", "x.jpg.jpg", 0));
    CU_ASSERT_TRUE(gw_policy_glob("S3:get*", "s3:GetObject", 1));
    CU_ASSERT_FALSE(gw_policy_glob("S3:get*", "s3:GetObject", 0));
}

void cu_register(void)
{
    static const cu_test tests[] = {{"allow_and_deny", test_allow_and_deny},
                                    {"principals_and_not_action", test_principals_and_not_action},
                                    {"conditions", test_conditions},
                                    {"malformed", test_malformed},
                                    {"glob", test_glob},
                                    {NULL, NULL}};
    cu_add_suite("gateway_policy", tests);
}
