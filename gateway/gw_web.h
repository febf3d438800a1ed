/*
 * gw_web.h - website configurations (PutBucketWebsite) and their routing: which redirect, if any,
 * answers a website request, and where it points (docs/website.md).
 *
 * Pure functions with no state, tested without a server (tests/unit/test_gateway_website.c). The
 * parser and the engine are gw_webcfg.c (libxml2 through gw_xml_load, as every request body); the
 * operations and the serving of website requests are gw_website.c.
 *
 * Routing follows S3: the rules are tried in document order and the first whose Condition holds
 * wins. A condition holds when every element it has holds: KeyPrefixEquals is a prefix of the
 * requested key (the key as asked, before the index document is appended), and
 * HttpErrorCodeReturnedEquals equals the error the request would get; a rule without Condition
 * holds for every request. Rules with an error-code condition are only tried once the request has
 * failed; the others before the object is looked up.
 */
#ifndef GW_WEB_H
#define GW_WEB_H

#include <stddef.h>

#include "gw_err.h"

#define GW_WEB_XML_CAP (64u * 1024) /* a PutBucketWebsite body */
#define GW_WEB_MAX_RULES 50         /* S3's limit of routing rules */

typedef struct {
    char *prefix;         /* Condition KeyPrefixEquals; NULL: none */
    int error_code;       /* Condition HttpErrorCodeReturnedEquals (4xx, 5xx); 0: none */
    char *protocol;       /* Redirect Protocol ("http", "https"); NULL: the request's */
    char *host;           /* Redirect HostName; NULL: the request's Host */
    char *replace_prefix; /* ReplaceKeyPrefixWith; NULL: none */
    char *replace_key;    /* ReplaceKeyWith; NULL: none */
    int http_code;        /* HttpRedirectCode (3xx); 0: 301 */
} gw_web_rule;

typedef struct {
    char *index_suffix;      /* IndexDocument Suffix ("index.html"); NULL only with redirect_all */
    char *error_key;         /* ErrorDocument Key; NULL: none */
    char *redirect_host;     /* RedirectAllRequestsTo HostName; NULL: not a redirecting site */
    char *redirect_protocol; /* its Protocol; NULL: the request's */
    gw_web_rule *rules;
    size_t nrules;
} gw_web_config;

/*
 * Parse a WebsiteConfiguration document into out (released with gw_web_config_release). Errors as
 * S3's: GW_MALFORMED_XML (not the document, an element given twice, a rule without Redirect),
 * GW_INVALID_ARGUMENT with msg set (no IndexDocument without RedirectAllRequestsTo, a Suffix that
 * is empty or holds a slash, RedirectAllRequestsTo with other elements, a protocol other than
 * http/https, an empty Condition, ReplaceKeyWith with ReplaceKeyPrefixWith, a redirect code not
 * 3xx (or 300), an error code not 4xx/5xx, more than GW_WEB_MAX_RULES rules, a HostName that is
 * not a host name), GW_ENTITY_TOO_LARGE past cap; a value with a control character is
 * GW_MALFORMED_XML. msg (msg_cap bytes) is "" when S3 says nothing more.
 */
gw_s3err gw_parse_website(const char *xml, size_t len, size_t cap, gw_web_config *out, char *msg,
                          size_t msg_cap);
void gw_web_config_release(gw_web_config *c);

/* The first rule of c whose condition holds for key (as requested) and error_code (0: the request
 * has not failed: only rules without an error-code condition can hold); NULL when none does. */
const gw_web_rule *gw_web_match(const gw_web_config *c, const char *key, int error_code);

/*
 * The Location of a redirect (heap string; NULL when out of memory): protocol://host/ then the
 * key - ReplaceKeyWith, or the key with the rule's KeyPrefixEquals replaced by
 * ReplaceKeyPrefixWith, or the key as requested. rule NULL: RedirectAllRequestsTo of c (the key
 * kept). req_protocol and req_host are the request's ("http", its Host header).
 */
char *gw_web_location(const gw_web_config *c, const gw_web_rule *rule, const char *key,
                      const char *req_protocol, const char *req_host);
/* The status of a redirect by rule (NULL: RedirectAllRequestsTo, 301). */
int gw_web_redirect_code(const gw_web_rule *rule);

#endif
