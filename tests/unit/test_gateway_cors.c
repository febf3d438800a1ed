/*
 * test_gateway_cors.c - CORS configurations (gw_cors.h): the CORSConfiguration parser with valid
 * and invalid documents (S3's errors and messages), the one-wildcard matcher, rule matching in
 * document order (origin, method, requested headers) and the Access-Control-* answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "gw_cors.h"

static gw_s3err parse(const char *xml, gw_cors_config *c, char *msg)
{
    return gw_parse_cors(xml, strlen(xml), GW_CORS_XML_CAP, c, msg, 200);
}

static const char doc[] =
    "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<CORSRule><ID>app</ID><AllowedOrigin>https://app.example.com</AllowedOrigin>"
    "<AllowedOrigin>https://*.cdn.example.com</AllowedOrigin>"
    "<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
    "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
    "<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>"
    "<MaxAgeSeconds> 3000 </MaxAgeSeconds></CORSRule>"
    "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    "<AllowedMethod>HEAD</AllowedMethod></CORSRule></CORSConfiguration>";

static void test_parse(void)
{
    gw_cors_config c;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(doc, &c, msg), GW_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_STRING_EQUAL(c.rules[0].id, "app");
    CU_ASSERT_EQUAL(c.rules[0].norigins, 2);
    CU_ASSERT_EQUAL(c.rules[0].methods, GW_CORS_GET | GW_CORS_PUT);
    CU_ASSERT_EQUAL(c.rules[0].nheaders, 2);
    CU_ASSERT_EQUAL(c.rules[0].nexpose, 2);
    CU_ASSERT_EQUAL(c.rules[0].max_age, 3000);
    CU_ASSERT_PTR_NULL(c.rules[1].id);
    CU_ASSERT_EQUAL(c.rules[1].max_age, -1);
    CU_ASSERT_EQUAL(c.rules[1].methods, GW_CORS_GET | GW_CORS_HEAD);
    gw_cors_config_release(&c);
    CU_ASSERT_PTR_NULL(c.rules);
}

static void test_parse_errors(void)
{
    gw_cors_config c;
    char msg[200];
    static const char *const malformed[] = {
        "",
        "<CORSConfiguration/>",
        "<Other><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        "</CORSRule></Other>",
        "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
        "</CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>"
        "</CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
        "</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
        "</AllowedMethod><MaxAgeSeconds>9999999999</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        "<!DOCTYPE x><CORSConfiguration/>",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        CU_ASSERT_EQUAL(parse(malformed[i], &c, msg), GW_MALFORMED_XML);
        CU_ASSERT_PTR_NULL(c.rules);
    }
    CU_ASSERT_EQUAL(parse("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                          "<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
                          &c, msg),
                    GW_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(
        msg, "Found unsupported HTTP method in CORS config. Unsupported method is PATCH");
    CU_ASSERT_EQUAL(parse("<CORSConfiguration><CORSRule><AllowedOrigin>http://*.*.com"
                          "</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
                          "</CORSConfiguration>",
                          &c, msg),
                    GW_INVALID_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "can not have more than one wildcard"));
    CU_ASSERT_EQUAL(parse("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                          "<AllowedMethod>GET</AllowedMethod><AllowedHeader>a*b*</AllowedHeader>"
                          "</CORSRule></CORSConfiguration>",
                          &c, msg),
                    GW_INVALID_REQUEST);

    /* 100 rules are allowed, 101 are not. */
    static const char rule[] =
        "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
    size_t cap = 64 + 101 * sizeof(rule);
    char *big = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (int n = 100; n <= 101; n++) {
        size_t len = (size_t)snprintf(big, cap, "<CORSConfiguration>");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, cap - len, "%s", rule);
        snprintf(big + len, cap - len, "</CORSConfiguration>");
        CU_ASSERT_EQUAL(parse(big, &c, msg), n == 100 ? GW_OK : GW_MALFORMED_XML);
        gw_cors_config_release(&c);
    }
    free(big);
}

static void test_wildcard(void)
{
    CU_ASSERT_TRUE(gw_cors_wildcard("*", "", 0));
    CU_ASSERT_TRUE(gw_cors_wildcard("*", "https://x", 0));
    CU_ASSERT_TRUE(gw_cors_wildcard("https://*.example.com", "https://a.b.example.com", 0));
    CU_ASSERT_FALSE(gw_cors_wildcard("https://*.example.com", "https://example.com", 0));
    CU_ASSERT_FALSE(gw_cors_wildcard("https://*.example.com", "http://a.example.com", 0));
    /* prefix and suffix must not overlap: "ab*ba" needs at least 4 characters */
    CU_ASSERT_FALSE(gw_cors_wildcard("ab*ba", "aba", 0));
    CU_ASSERT_TRUE(gw_cors_wildcard("ab*ba", "abba", 0));
    CU_ASSERT_FALSE(gw_cors_wildcard("https://App.example.com", "https://app.example.com", 0));
    CU_ASSERT_TRUE(gw_cors_wildcard("X-Amz-*", "x-amz-date", 1));
    CU_ASSERT_TRUE(gw_cors_wildcard("exact", "exact", 0));
    CU_ASSERT_FALSE(gw_cors_wildcard("exact", "exact2", 0));
}

static void test_match(void)
{
    gw_cors_config c;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(doc, &c, msg), GW_OK);
    const gw_cors_rule *r0 = &c.rules[0], *r1 = &c.rules[1];

    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "PUT", NULL), r0);
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://x.cdn.example.com", "GET", NULL), r0);
    /* the first rule does not allow HEAD: the second one (any origin) does */
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "HEAD", NULL), r1);
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://other.org", "GET", NULL), r1);
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, "https://other.org", "PUT", NULL));
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, "https://app.example.com", "DELETE", NULL));
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, "https://app.example.com", "PATCH", NULL));
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, NULL, "GET", NULL));
    CU_ASSERT_PTR_NULL(gw_cors_match(NULL, "https://app.example.com", "GET", NULL));

    /* requested headers: every one must match a pattern, case-insensitively */
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "PUT",
                                      "content-type, X-Amz-Date,x-amz-content-sha256"),
                        r0);
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "PUT", " , ,"), r0);
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "PUT", ""), r0);
    CU_ASSERT_PTR_NULL(
        gw_cors_match(&c, "https://app.example.com", "PUT", "content-type, authorization"));
    /* rule 1 allows no header at all */
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, "https://other.org", "GET", "x-custom"));
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://other.org", "GET", ""), r1);
    /* at most GW_CORS_MAX_REQ_HEADERS requested headers, however allowed each one is */
    char list[8 * (GW_CORS_MAX_REQ_HEADERS + 1)];
    size_t len = 0;
    for (int i = 0; i < GW_CORS_MAX_REQ_HEADERS; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%sx-amz-%d", i ? "," : "", i % 10);
    CU_ASSERT_PTR_EQUAL(gw_cors_match(&c, "https://app.example.com", "PUT", list), r0);
    snprintf(list + len, sizeof(list) - len, ",x-amz-a");
    CU_ASSERT_PTR_NULL(gw_cors_match(&c, "https://app.example.com", "PUT", list));
    gw_cors_config_release(&c);
}

static void test_answer(void)
{
    gw_cors_config c;
    gw_cors_answer a;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(doc, &c, msg), GW_OK);
    CU_ASSERT_EQUAL_FATAL(
        gw_cors_answer_make(&c.rules[0], "https://app.example.com", "Content-Type", &a), CM_OK);
    CU_ASSERT_STRING_EQUAL(a.allow_origin, "https://app.example.com");
    CU_ASSERT_STRING_EQUAL(a.allow_methods, "GET, PUT");
    CU_ASSERT_STRING_EQUAL(a.allow_headers, "Content-Type");
    CU_ASSERT_STRING_EQUAL(a.expose, "ETag, x-amz-request-id");
    CU_ASSERT_EQUAL(a.max_age, 3000);
    CU_ASSERT_TRUE(a.credentials);
    gw_cors_answer_release(&a);
    CU_ASSERT_EQUAL_FATAL(gw_cors_answer_make(&c.rules[1], "https://other.org", NULL, &a), CM_OK);
    CU_ASSERT_STRING_EQUAL(a.allow_origin, "*");
    CU_ASSERT_FALSE(a.credentials);
    CU_ASSERT_PTR_NULL(a.allow_headers);
    CU_ASSERT_PTR_NULL(a.expose);
    CU_ASSERT_EQUAL(a.max_age, -1);
    CU_ASSERT_STRING_EQUAL(a.allow_methods, "GET, HEAD");
    gw_cors_answer_release(&a);
    gw_cors_answer_release(NULL);
    gw_cors_config_release(&c);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"parse", test_parse},       {"parse errors", test_parse_errors},
        {"wildcard", test_wildcard}, {"match", test_match},
        {"answer", test_answer},     {NULL, NULL}};
    cu_add_suite("gateway cors", tests);
}
