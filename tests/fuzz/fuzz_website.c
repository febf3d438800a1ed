/*
 * fuzz_website.c - libFuzzer target for the website configuration (gw_parse_website, the body of
 * PutBucketWebsite) and the routing engine (gw_web_match, gw_web_location).
 *
 * Input: the document, then optionally a NUL and a key to route. Oracles: no crash, leak or
 * sanitizer report; an accepted document either redirects everything (a host, no index, no rules)
 * or has a non-empty index suffix without '/', at most 50 rules, codes in their ranges and never
 * both replacements; a matched rule's conditions hold for the key; every Location starts with
 * http:// or https:// and holds no control character or space (it becomes a header).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rule(const gw_web_rule *r)
{
    if ((r->error_code && (r->error_code < 400 || r->error_code > 599)) ||
        (r->http_code && (r->http_code < 301 || r->http_code > 399)) ||
        (r->replace_key && r->replace_prefix))
        abort();
}

static void check_location(const gw_web_config *c, const gw_web_rule *r, const char *key)
{
    char *loc = gw_web_location(c, r, key, "http", "site.example");
    if (!loc)
        abort();
    if (strncmp(loc, "http://", 7) != 0 && strncmp(loc, "https://", 8) != 0)
        abort();
    for (const char *p = loc; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            abort();
    free(loc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    size_t dlen = size;
    const uint8_t *nul = memchr(data, 0, size);
    char *key = NULL;
    if (nul) {
        dlen = (size_t)(nul - data);
        key = strndup((const char *)nul + 1, size - dlen - 1);
    }
    gw_web_config c;
    char msg[200];
    if (gw_parse_website(doc, dlen, 1 << 20, &c, msg, sizeof(msg)) != GW_OK) {
        free(key);
        return 0;
    }
    if (c.redirect_host ? (c.index_suffix || c.nrules || !c.redirect_host[0])
                        : (!c.index_suffix || !c.index_suffix[0] || strchr(c.index_suffix, '/')))
        abort();
    if (c.nrules > GW_WEB_MAX_RULES)
        abort();
    for (size_t i = 0; i < c.nrules; i++)
        check_rule(&c.rules[i]);
    const char *k = key ? key : "docs/a b.html";
    for (int code = 0; code <= 404; code += 404) {
        const gw_web_rule *r = gw_web_match(&c, k, code);
        if (r && ((r->error_code && r->error_code != code) ||
                  (r->prefix && strncmp(k, r->prefix, strlen(r->prefix)) != 0)))
            abort();
        if (r)
            check_location(&c, r, k);
    }
    if (c.redirect_host)
        check_location(&c, NULL, k);
    gw_web_config_release(&c);
    free(key);
    return 0;
}
