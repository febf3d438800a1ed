/*
 * test_gateway_website.c - website configurations (gw_web.h): the WebsiteConfiguration parser
 * with valid documents and each of S3's refusals (error and message), and the routing engine:
 * rules in document order, prefix and error-code conditions, a rule without condition, and the
 * Location of each kind of redirect (replace key, replace prefix, protocol and host, the
 * request's own, RedirectAllRequestsTo, keys that need percent-encoding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "gw_web.h"

static gw_s3err parse(const char *xml, gw_web_config *c, char *msg)
{
    return gw_parse_website(xml, strlen(xml), GW_WEB_XML_CAP, c, msg, 200);
}

#define SITE "<WebsiteConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
#define END "</WebsiteConfiguration>"
#define INDEX "<IndexDocument><Suffix>index.html</Suffix></IndexDocument>"

static const char doc[] = SITE INDEX
    "<ErrorDocument><Key> errors/404.html </Key></ErrorDocument>"
    "<RoutingRules>"
    "<RoutingRule><Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>"
    "<Redirect><ReplaceKeyPrefixWith>documents/</ReplaceKeyPrefixWith></Redirect></RoutingRule>"
    "<RoutingRule><Condition><KeyPrefixEquals>img/</KeyPrefixEquals>"
    "<HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>"
    "<Redirect><Protocol>https</Protocol><HostName>cdn.example.com</HostName>"
    "<HttpRedirectCode>302</HttpRedirectCode></Redirect></RoutingRule>"
    "<RoutingRule><Condition><HttpErrorCodeReturnedEquals>403</HttpErrorCodeReturnedEquals>"
    "</Condition><Redirect><ReplaceKeyWith>login.html</ReplaceKeyWith></Redirect></RoutingRule>"
    "<RoutingRule><Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>"
    "<Redirect><HostName>never.example.com</HostName></Redirect></RoutingRule>"
    "</RoutingRules>" END;

static void test_parse(void)
{
    gw_web_config c;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(doc, &c, msg), GW_OK);
    CU_ASSERT_STRING_EQUAL(c.index_suffix, "index.html");
    CU_ASSERT_STRING_EQUAL(c.error_key, "errors/404.html"); /* trimmed */
    CU_ASSERT_PTR_NULL(c.redirect_host);
    CU_ASSERT_EQUAL_FATAL(c.nrules, 4);
    CU_ASSERT_STRING_EQUAL(c.rules[0].prefix, "docs/");
    CU_ASSERT_EQUAL(c.rules[0].error_code, 0);
    CU_ASSERT_STRING_EQUAL(c.rules[0].replace_prefix, "documents/");
    CU_ASSERT_EQUAL(c.rules[1].error_code, 404);
    CU_ASSERT_EQUAL(c.rules[1].http_code, 302);
    CU_ASSERT_STRING_EQUAL(c.rules[1].protocol, "https");
    CU_ASSERT_PTR_NULL(c.rules[2].prefix);
    CU_ASSERT_STRING_EQUAL(c.rules[2].replace_key, "login.html");
    gw_web_config_release(&c);
    CU_ASSERT_PTR_NULL(c.rules);

    CU_ASSERT_EQUAL_FATAL(parse(SITE "<RedirectAllRequestsTo><HostName>www.example.com</HostName>"
                                     "</RedirectAllRequestsTo>" END,
                                &c, msg),
                          GW_OK);
    CU_ASSERT_STRING_EQUAL(c.redirect_host, "www.example.com");
    CU_ASSERT_PTR_NULL(c.redirect_protocol);
    CU_ASSERT_PTR_NULL(c.index_suffix);
    gw_web_config_release(&c);
}

static void test_parse_errors(void)
{
    gw_web_config c;
    char msg[200];
    static const char *const malformed[] = {
        "",
        "<Other>" INDEX "</Other>",
        SITE INDEX INDEX END,
        SITE INDEX "<IndexDocument/>" END,
        SITE INDEX "<RoutingRules></RoutingRules>" END,
        SITE INDEX "<RoutingRules><RoutingRule><Condition><KeyPrefixEquals>a</KeyPrefixEquals>"
                   "</Condition></RoutingRule></RoutingRules>" END,
        SITE INDEX "<RoutingRules><RoutingRule><Redirect><HostName>a</HostName><HostName>b"
                   "</HostName></Redirect></RoutingRule></RoutingRules>" END,
        SITE "<RedirectAllRequestsTo><Protocol>https</Protocol></RedirectAllRequestsTo>" END,
        SITE "<RedirectAllRequestsTo><HostName>a&#13;&#10;Set-Cookie: x=1</HostName>"
             "</RedirectAllRequestsTo>" END,
        SITE INDEX "<RoutingRules><RoutingRule><Redirect><ReplaceKeyWith>a&#10;b</ReplaceKeyWith>"
                   "</Redirect></RoutingRule></RoutingRules>" END,
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        gw_s3err e = parse(malformed[i], &c, msg);
        if (e != GW_MALFORMED_XML)
            printf("\n  malformed[%zu]: %d\n", i, (int)e);
        CU_ASSERT_EQUAL(e, GW_MALFORMED_XML);
    }
    static const struct {
        const char *xml, *msg;
    } invalid[] = {
        {SITE "<ErrorDocument><Key>e.html</Key></ErrorDocument>" END,
         "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty"},
        {SITE "<IndexDocument><Suffix>a/b.html</Suffix></IndexDocument>" END,
         "The IndexDocument Suffix is not well formed"},
        {SITE "<IndexDocument><Suffix> </Suffix></IndexDocument>" END,
         "The IndexDocument Suffix is not well formed"},
        {SITE INDEX "<ErrorDocument><Key></Key></ErrorDocument>" END,
         "The ErrorDocument Key is not well formed"},
        {SITE INDEX "<RedirectAllRequestsTo><HostName>x</HostName></RedirectAllRequestsTo>" END,
         "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules."},
        {SITE "<RedirectAllRequestsTo><HostName>x</HostName><Protocol>ftp</Protocol>"
              "</RedirectAllRequestsTo>" END,
         "Invalid protocol, protocol can be http or https. If not defined the protocol will be "
         "selected automatically."},
        {SITE INDEX "<RoutingRules><RoutingRule><Condition></Condition><Redirect><HostName>x"
                    "</HostName></Redirect></RoutingRule></RoutingRules>" END,
         "Condition cannot be empty. To redirect all requests without a condition, the condition "
         "element shouldn't be present."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect><ReplaceKeyWith>a</ReplaceKeyWith>"
                    "<ReplaceKeyPrefixWith>b</ReplaceKeyPrefixWith></Redirect></RoutingRule>"
                    "</RoutingRules>" END,
         "You can only define ReplaceKeyPrefix or ReplaceKey but not both."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect><HttpRedirectCode>300"
                    "</HttpRedirectCode></Redirect></RoutingRule></RoutingRules>" END,
         "The provided HTTP redirect code (300) is not valid. Valid codes are 3XX except 300."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect><HttpRedirectCode>3o1"
                    "</HttpRedirectCode></Redirect></RoutingRule></RoutingRules>" END,
         "The provided HTTP redirect code (3o1) is not valid. Valid codes are 3XX except 300."},
        {SITE INDEX "<RoutingRules><RoutingRule><Condition><HttpErrorCodeReturnedEquals>302"
                    "</HttpErrorCodeReturnedEquals></Condition><Redirect><HostName>x</HostName>"
                    "</Redirect></RoutingRule></RoutingRules>" END,
         "The provided HTTP error code (302) is not valid. Valid codes are 4XX or 5XX."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect><Protocol>gopher</Protocol>"
                    "</Redirect></RoutingRule></RoutingRules>" END,
         "Invalid protocol, protocol can be http or https. If not defined the protocol will be "
         "selected automatically."},
        {SITE "<RedirectAllRequestsTo><HostName>www example.com</HostName>"
              "</RedirectAllRequestsTo>" END,
         "The HostName of a redirect is not a valid host name."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect><HostName>a/b</HostName></Redirect>"
                    "</RoutingRule></RoutingRules>" END,
         "The HostName of a redirect is not a valid host name."},
        {SITE INDEX "<RoutingRules><RoutingRule><Redirect></Redirect></RoutingRule>"
                    "</RoutingRules>" END,
         "Redirect must contain at least one element."},
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        gw_s3err e = parse(invalid[i].xml, &c, msg);
        CU_ASSERT_EQUAL(e, GW_INVALID_ARGUMENT);
        CU_ASSERT_STRING_EQUAL(msg, invalid[i].msg);
        if (e != GW_INVALID_ARGUMENT || strcmp(msg, invalid[i].msg) != 0)
            printf("\n  invalid[%zu]: %d %s\n", i, (int)e, msg);
    }
}

/* 50 rules are S3's limit; 51 are refused; past the cap the body is too large. */
static void test_rule_limit(void)
{
    static const char rule[] = "<RoutingRule><Redirect><HostName>x</HostName></Redirect>"
                               "</RoutingRule>";
    char *xml = malloc(sizeof(rule) * 51 + 256), msg[200];
    gw_web_config c;
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    for (int n = 50; n <= 51; n++) {
        size_t len = (size_t)snprintf(xml, 256, SITE INDEX "<RoutingRules>");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(xml + len, sizeof(rule), "%s", rule);
        snprintf(xml + len, 256, "</RoutingRules>" END);
        gw_s3err e = parse(xml, &c, msg);
        CU_ASSERT_EQUAL(e, n == 50 ? GW_OK : GW_INVALID_ARGUMENT);
        if (e == GW_OK) {
            CU_ASSERT_EQUAL(c.nrules, 50);
            gw_web_config_release(&c);
        }
    }
    CU_ASSERT_EQUAL(gw_parse_website(xml, strlen(xml), 100, &c, msg, sizeof(msg)),
                    GW_ENTITY_TOO_LARGE);
    free(xml);
}

static void expect_location(const gw_web_config *c, const gw_web_rule *r, const char *key,
                            const char *want)
{
    char *loc = gw_web_location(c, r, key, "http", "site.web.test:8080");
    CU_ASSERT_PTR_NOT_NULL_FATAL(loc);
    CU_ASSERT_STRING_EQUAL(loc, want);
    if (strcmp(loc, want) != 0)
        printf("\n  %s -> %s, want %s\n", key, loc, want);
    free(loc);
}

static void test_routing(void)
{
    gw_web_config c;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(doc, &c, msg), GW_OK);

    /* before the lookup (no error): only rules without an error-code condition */
    const gw_web_rule *r = gw_web_match(&c, "docs/a b.html", 0);
    CU_ASSERT_PTR_EQUAL(r, &c.rules[0]); /* the first of the two docs/ rules */
    CU_ASSERT_EQUAL(gw_web_redirect_code(r), 301);
    expect_location(&c, r, "docs/a b.html", "http://site.web.test:8080/documents/a%20b.html");
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "img/x.png", 0));
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "index.html", 0));
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "doc", 0));

    /* after an error: the error-code rules, prefix and code both holding */
    r = gw_web_match(&c, "img/x.png", 404);
    CU_ASSERT_PTR_EQUAL(r, &c.rules[1]);
    CU_ASSERT_EQUAL(gw_web_redirect_code(r), 302);
    expect_location(&c, r, "img/x.png", "https://cdn.example.com/img/x.png");
    r = gw_web_match(&c, "img/x.png", 403);
    CU_ASSERT_PTR_EQUAL(r, &c.rules[2]); /* 403 with any key */
    expect_location(&c, r, "img/x.png", "http://site.web.test:8080/login.html");
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "other.html", 404));
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "img/x.png", 500));
    gw_web_config_release(&c);

    /* a rule without condition matches everything; RedirectAllRequestsTo keeps the key */
    CU_ASSERT_EQUAL_FATAL(parse(SITE INDEX
                                "<RoutingRules><RoutingRule><Redirect><Protocol>https"
                                "</Protocol></Redirect></RoutingRule></RoutingRules>" END,
                                &c, msg),
                          GW_OK);
    r = gw_web_match(&c, "", 0);
    CU_ASSERT_PTR_EQUAL(r, &c.rules[0]);
    expect_location(&c, r, "a/%b", "https://site.web.test:8080/a/%25b");
    gw_web_config_release(&c);
    CU_ASSERT_EQUAL_FATAL(parse(SITE "<RedirectAllRequestsTo><HostName>www.example.com</HostName>"
                                     "<Protocol>https</Protocol></RedirectAllRequestsTo>" END,
                                &c, msg),
                          GW_OK);
    CU_ASSERT_PTR_NULL(gw_web_match(&c, "x", 0));
    CU_ASSERT_EQUAL(gw_web_redirect_code(NULL), 301);
    expect_location(&c, NULL, "a/b.html", "https://www.example.com/a/b.html");
    expect_location(&c, NULL, "", "https://www.example.com/");
    gw_web_config_release(&c);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"parse", test_parse},
                                    {"parse errors", test_parse_errors},
                                    {"rule limit", test_rule_limit},
                                    {"routing", test_routing},
                                    {NULL, NULL}};
    cu_add_suite("gateway website", tests);
}
