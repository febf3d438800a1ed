/*
 * gw_webcfg.c - the website configuration (PutBucketWebsite): its parser and the routing engine
 * (gw_web.h). The body is loaded by gw_xml_load (gw_xmlparse.c: size cap, UTF-8 only, no DTD)
 * and walked here; every element may appear at most once where S3 allows one, and what S3
 * refuses is refused with its error and message, so a document accepted here means the same as
 * in S3. No state; the configuration is a handful of heap strings.
 */
#include "gw_web.h"
#include "gw_wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cm_util.h"

static int is_elem(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

/* The only child element called name (*out NULL when absent); -1 when there are several. */
static int only_child(xmlNodePtr parent, const char *name, xmlNodePtr *out)
{
    *out = NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (!is_elem(c, name))
            continue;
        if (*out)
            return -1;
        *out = c;
    }
    return 0;
}

/* The trimmed text of parent's child name into *out (heap; NULL when absent). Control characters
 * (a "&#13;&#10;" in a HostName) are refused: values end up in Location headers. */
static gw_s3err text_child(xmlNodePtr parent, const char *name, char **out)
{
    xmlNodePtr n;
    *out = NULL;
    if (only_child(parent, name, &n) != 0)
        return GW_MALFORMED_XML;
    if (!n)
        return GW_OK;
    char *s = gw_xml_node_text(n, 1);
    if (!s)
        return GW_INTERNAL;
    for (size_t i = 0; s[i]; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) { /* would reach a Location header */
            free(s);
            return GW_MALFORMED_XML;
        }
    *out = s;
    return GW_OK;
}

static gw_s3err bad(char *msg, size_t cap, const char *text)
{
    snprintf(msg, cap, "%s", text);
    return GW_INVALID_ARGUMENT;
}

static int protocol_ok(const char *p)
{
    return !p || strcmp(p, "http") == 0 || strcmp(p, "https") == 0;
}

/* A host name as a Location can carry it: letters, digits, '.', '-', '_', a ':port', an IPv6
 * literal's brackets and colons. */
static int host_ok(const char *h)
{
    if (!h)
        return 1;
    if (!h[0])
        return 0;
    for (; *h; h++)
        if (!isalnum((unsigned char)*h) && !strchr(".-_:[]", *h))
            return 0;
    return 1;
}

static const char HOST_MSG[] = "The HostName of a redirect is not a valid host name.";

static const char PROTOCOL_MSG[] = "Invalid protocol, protocol can be http or https. If not "
                                   "defined the protocol will be selected automatically.";

/* A status code of three digits, or -1. */
static int status_code(const char *s)
{
    if (!s || strlen(s) != 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        !isdigit((unsigned char)s[2]))
        return -1;
    return atoi(s);
}

static gw_s3err parse_condition(xmlNodePtr cn, gw_web_rule *r, char *msg, size_t cap)
{
    char *code = NULL;
    gw_s3err e = text_child(cn, "KeyPrefixEquals", &r->prefix);
    if (e == GW_OK)
        e = text_child(cn, "HttpErrorCodeReturnedEquals", &code);
    if (e == GW_OK && !r->prefix && !code)
        e = bad(msg, cap,
                "Condition cannot be empty. To redirect all requests without a condition, the "
                "condition element shouldn't be present.");
    if (e == GW_OK && code) {
        r->error_code = status_code(code);
        if (r->error_code < 400 || r->error_code > 599) {
            snprintf(msg, cap,
                     "The provided HTTP error code (%.16s) is not valid. Valid codes are 4XX or "
                     "5XX.",
                     code);
            e = GW_INVALID_ARGUMENT;
        }
    }
    free(code);
    return e;
}

static gw_s3err parse_redirect(xmlNodePtr rn, gw_web_rule *r, char *msg, size_t cap)
{
    char *code = NULL;
    gw_s3err e = text_child(rn, "Protocol", &r->protocol);
    if (e == GW_OK)
        e = text_child(rn, "HostName", &r->host);
    if (e == GW_OK)
        e = text_child(rn, "ReplaceKeyPrefixWith", &r->replace_prefix);
    if (e == GW_OK)
        e = text_child(rn, "ReplaceKeyWith", &r->replace_key);
    if (e == GW_OK)
        e = text_child(rn, "HttpRedirectCode", &code);
    if (e != GW_OK)
        goto out;
    if (!protocol_ok(r->protocol))
        e = bad(msg, cap, PROTOCOL_MSG);
    else if (r->replace_prefix && r->replace_key)
        e = bad(msg, cap, "You can only define ReplaceKeyPrefix or ReplaceKey but not both.");
    else if (!host_ok(r->host))
        e = bad(msg, cap, HOST_MSG);
    else if (!r->protocol && !r->host && !r->replace_prefix && !r->replace_key && !code)
        e = bad(msg, cap, "Redirect must contain at least one element.");
    else if (code) {
        r->http_code = status_code(code);
        if (r->http_code < 301 || r->http_code > 399) {
            snprintf(msg, cap,
                     "The provided HTTP redirect code (%.16s) is not valid. Valid codes are 3XX "
                     "except 300.",
                     code);
            e = GW_INVALID_ARGUMENT;
        }
    }
out:
    free(code);
    return e;
}

static gw_s3err parse_rule(xmlNodePtr rn, gw_web_rule *r, char *msg, size_t cap)
{
    xmlNodePtr cond, redir;
    if (only_child(rn, "Condition", &cond) != 0 || only_child(rn, "Redirect", &redir) != 0 ||
        !redir)
        return GW_MALFORMED_XML;
    gw_s3err e = cond ? parse_condition(cond, r, msg, cap) : GW_OK;
    return e == GW_OK ? parse_redirect(redir, r, msg, cap) : e;
}

static gw_s3err parse_rules(xmlNodePtr root, gw_web_config *out, char *msg, size_t cap)
{
    xmlNodePtr rules;
    size_t want = 0;
    if (only_child(root, "RoutingRules", &rules) != 0)
        return GW_MALFORMED_XML;
    if (!rules)
        return GW_OK;
    for (xmlNodePtr c = rules->children; c; c = c->next)
        want += is_elem(c, "RoutingRule");
    if (want == 0)
        return GW_MALFORMED_XML;
    if (want > GW_WEB_MAX_RULES)
        return bad(msg, cap, "The number of routing rules must not exceed allowed limit of 50.");
    if (!(out->rules = calloc(want, sizeof(*out->rules))))
        return GW_INTERNAL;
    gw_s3err e = GW_OK;
    for (xmlNodePtr c = rules->children; c && e == GW_OK; c = c->next)
        if (is_elem(c, "RoutingRule"))
            e = parse_rule(c, &out->rules[out->nrules++], msg, cap);
    return e;
}

/* IndexDocument, ErrorDocument and RedirectAllRequestsTo. */
static gw_s3err parse_site(xmlNodePtr root, gw_web_config *out, char *msg, size_t cap)
{
    xmlNodePtr index, error, all, rules;
    if (only_child(root, "IndexDocument", &index) != 0 ||
        only_child(root, "ErrorDocument", &error) != 0 ||
        only_child(root, "RedirectAllRequestsTo", &all) != 0 ||
        only_child(root, "RoutingRules", &rules) != 0)
        return GW_MALFORMED_XML;
    gw_s3err e = GW_OK;
    if (all) {
        if (index || error || rules)
            return bad(msg, cap,
                       "RedirectAllRequestsTo cannot be provided in conjunction with other "
                       "Routing Rules.");
        if ((e = text_child(all, "HostName", &out->redirect_host)) != GW_OK ||
            (e = text_child(all, "Protocol", &out->redirect_protocol)) != GW_OK)
            return e;
        if (!out->redirect_host || !out->redirect_host[0])
            return GW_MALFORMED_XML;
        if (!host_ok(out->redirect_host))
            return bad(msg, cap, HOST_MSG);
        return protocol_ok(out->redirect_protocol) ? GW_OK : bad(msg, cap, PROTOCOL_MSG);
    }
    if (!index)
        return bad(msg, cap,
                   "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo "
                   "is empty");
    if ((e = text_child(index, "Suffix", &out->index_suffix)) != GW_OK)
        return e;
    if (!out->index_suffix || !out->index_suffix[0] || strchr(out->index_suffix, '/'))
        return bad(msg, cap, "The IndexDocument Suffix is not well formed");
    if (error) {
        if ((e = text_child(error, "Key", &out->error_key)) != GW_OK)
            return e;
        if (!out->error_key || !out->error_key[0])
            return bad(msg, cap, "The ErrorDocument Key is not well formed");
    }
    return GW_OK;
}

gw_s3err gw_parse_website(const char *xml, size_t len, size_t cap, gw_web_config *out, char *msg,
                          size_t msg_cap)
{
    void *dv, *rv;
    memset(out, 0, sizeof(*out));
    msg[0] = '\0';
    gw_s3err e = gw_xml_load(xml, len, cap, "WebsiteConfiguration", &dv, &rv);
    if (e != GW_OK)
        return e;
    if ((e = parse_site(rv, out, msg, msg_cap)) == GW_OK)
        e = parse_rules(rv, out, msg, msg_cap);
    xmlFreeDoc(dv);
    if (e != GW_OK)
        gw_web_config_release(out);
    return e;
}

void gw_web_config_release(gw_web_config *c)
{
    for (size_t i = 0; i < c->nrules; i++) {
        gw_web_rule *r = &c->rules[i];
        free(r->prefix);
        free(r->protocol);
        free(r->host);
        free(r->replace_prefix);
        free(r->replace_key);
    }
    free(c->rules);
    free(c->index_suffix);
    free(c->error_key);
    free(c->redirect_host);
    free(c->redirect_protocol);
    memset(c, 0, sizeof(*c));
}

const gw_web_rule *gw_web_match(const gw_web_config *c, const char *key, int error_code)
{
    for (size_t i = 0; i < c->nrules; i++) {
        const gw_web_rule *r = &c->rules[i];
        if (r->error_code && r->error_code != error_code)
            continue;
        if (r->prefix && strncmp(key, r->prefix, strlen(r->prefix)) != 0)
            continue;
        return r;
    }
    return NULL;
}

int gw_web_redirect_code(const gw_web_rule *rule)
{
    return rule && rule->http_code ? rule->http_code : 301;
}

char *gw_web_location(const gw_web_config *c, const gw_web_rule *rule, const char *key,
                      const char *req_protocol, const char *req_host)
{
    const char *proto = rule ? rule->protocol : c->redirect_protocol;
    const char *host = rule ? rule->host : c->redirect_host;
    const char *head = key, *tail = "";
    if (rule && rule->replace_key) {
        head = rule->replace_key;
    } else if (rule && rule->replace_prefix) {
        head = rule->replace_prefix;
        tail = key + (rule->prefix ? strlen(rule->prefix) : 0);
    }
    size_t hl = strlen(head), tl = strlen(tail);
    size_t ecap = 3 * (hl + tl) + 1;
    char *enc = malloc(ecap);
    if (!enc)
        return NULL;
    size_t n = cm_url_encode(head, hl, 1, enc, ecap);
    if (n != (size_t)-1)
        n = cm_url_encode(tail, tl, 1, enc + n, ecap - n);
    if (n == (size_t)-1) {
        free(enc);
        return NULL;
    }
    proto = proto ? proto : req_protocol;
    host = host ? host : req_host;
    size_t cap = strlen(proto) + strlen(host) + strlen(enc) + 8;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "%s://%s/%s", proto, host, enc);
    free(enc);
    return out;
}
