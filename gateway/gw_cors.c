/*
 * gw_cors.c - CORS rule matching and the Access-Control-* answer (gw_cors.h says the rules).
 *
 * Header lists (Access-Control-Request-Headers) are walked in place, one comma-separated token at
 * a time, without copying. A preflight is not authenticated, so what it may cost is bounded: a
 * list naming more than GW_CORS_MAX_REQ_HEADERS headers is allowed by no rule, and the rules'
 * patterns are bounded by the document's size (GW_CORS_XML_CAP).
 */
#include "gw_cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_err.h"

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", GW_CORS_GET},
               {"PUT", GW_CORS_PUT},
               {"POST", GW_CORS_POST},
               {"DELETE", GW_CORS_DELETE},
               {"HEAD", GW_CORS_HEAD}};

unsigned gw_cors_method_bit(const char *method)
{
    for (size_t i = 0; method && i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

static int eq_n(const char *a, const char *b, size_t n, int nocase)
{
    return nocase ? strncasecmp(a, b, n) == 0 : strncmp(a, b, n) == 0;
}

/* s[0..n) matches pattern (one `*` at most; a second one is taken literally). */
static int wildcard_n(const char *pattern, const char *s, size_t n, int nocase)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return strlen(pattern) == n && eq_n(pattern, s, n, nocase);
    size_t pre = (size_t)(star - pattern), post = strlen(star + 1);
    return pre + post <= n && eq_n(pattern, s, pre, nocase) &&
           eq_n(star + 1, s + n - post, post, nocase);
}

int gw_cors_wildcard(const char *pattern, const char *s, int nocase)
{
    return wildcard_n(pattern, s, strlen(s), nocase);
}

/* The next token of a comma-separated list at *p: its start and length (0 at the end). */
static size_t next_token(const char **p, const char **tok)
{
    const char *s = *p;
    while (*s == ',' || *s == ' ' || *s == '\t')
        s++;
    const char *e = s;
    while (*e && *e != ',')
        e++;
    size_t n = (size_t)(e - s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *tok = s;
    *p = e;
    return n;
}

static int header_allowed(const gw_cors_rule *rule, const char *h, size_t n)
{
    for (size_t i = 0; i < rule->nheaders; i++)
        if (wildcard_n(rule->headers[i], h, n, 1))
            return 1;
    return 0;
}

static int headers_allowed(const gw_cors_rule *rule, const char *list)
{
    const char *p = list, *tok;
    size_t n;
    while ((n = next_token(&p, &tok)) > 0) /* 0 only at the end: separators are skipped */
        if (!header_allowed(rule, tok, n))
            return 0;
    return 1;
}

/* The rule's origin pattern matching origin, or NULL. */
static const char *origin_match(const gw_cors_rule *rule, const char *origin)
{
    for (size_t i = 0; i < rule->norigins; i++)
        if (gw_cors_wildcard(rule->origins[i], origin, 0))
            return rule->origins[i];
    return NULL;
}

/* How many headers a comma-separated list names. */
static size_t count_tokens(const char *list)
{
    const char *p = list, *tok;
    size_t n = 0;
    while (next_token(&p, &tok) > 0)
        n++;
    return n;
}

const gw_cors_rule *gw_cors_match(const gw_cors_config *c, const char *origin, const char *method,
                                  const char *req_headers)
{
    unsigned bit = gw_cors_method_bit(method);
    if (!c || !origin || !bit)
        return NULL;
    /* Preflights are unauthenticated: the work one may cause is bounded (headers x patterns). */
    if (req_headers && count_tokens(req_headers) > GW_CORS_MAX_REQ_HEADERS)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        const gw_cors_rule *rule = &c->rules[i];
        if ((rule->methods & bit) && origin_match(rule, origin) &&
            (!req_headers || headers_allowed(rule, req_headers)))
            return rule;
    }
    return NULL;
}

/* names[0..n) joined with ", " (heap); NULL when n is 0 or out of memory (*nomem set). */
static char *join(const char *const *names, size_t n, int *nomem)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 2;
    if (n == 0)
        return NULL;
    char *s = malloc(len), *p = s;
    if (!s) {
        *nomem = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - s), "%s%s", i ? ", " : "", names[i]);
    return s;
}

cm_err gw_cors_answer_make(const gw_cors_rule *rule, const char *origin, const char *req_headers,
                           gw_cors_answer *out)
{
    const char *names[5];
    size_t nm = 0;
    int nomem = 0;
    const char *pat = origin_match(rule, origin);

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (rule->methods & methods[i].bit)
            names[nm++] = methods[i].name;
    out->credentials = !(pat && strcmp(pat, "*") == 0);
    out->allow_origin = strdup(out->credentials ? origin : "*");
    out->allow_methods = join(names, nm, &nomem);
    out->expose = join((const char *const *)rule->expose, rule->nexpose, &nomem);
    out->max_age = rule->max_age;
    if (req_headers && req_headers[0])
        nomem |= !(out->allow_headers = strdup(req_headers));
    if (nomem || !out->allow_origin) {
        gw_cors_answer_release(out);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

void gw_cors_answer_release(gw_cors_answer *a)
{
    if (!a)
        return;
    free(a->allow_origin);
    free(a->allow_methods);
    free(a->allow_headers);
    free(a->expose);
    memset(a, 0, sizeof(*a));
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void gw_cors_config_release(gw_cors_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        gw_cors_rule *r = &c->rules[i];
        free(r->id);
        strv_free(r->origins, r->norigins);
        strv_free(r->headers, r->nheaders);
        strv_free(r->expose, r->nexpose);
    }
    free(c->rules);
    memset(c, 0, sizeof(*c));
}
