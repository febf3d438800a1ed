/*
 * gw_xmlparse.c - the XML request bodies S3 clients send: CompleteMultipartUpload,
 * DeleteObjects, PutBucketVersioning, CreateBucket's configuration, Tagging and
 * CORSConfiguration (gw_cors.h).
 *
 * Design: libxml2 builds a small tree (bodies are capped by the caller before parsing) and each
 * parser walks the root's element children by local name, so documents with or without the S3
 * namespace read the same. Everything in a body is untrusted:
 *  - a body longer than the cap is refused before libxml2 sees it;
 *  - any DOCTYPE is refused, both by a scan before parsing (no DTD is ever processed, so no
 *    entity can expand or load) and by checking the parsed tree; XML_PARSE_NONET forbids network
 *    access and XML_PARSE_NOENT stays off;
 *  - the body must be UTF-8 (S3 reads nothing else): a UTF-16/32 byte-order mark, a NUL, bytes
 *    that are not UTF-8 or a declaration of another encoding is MalformedXML before parsing;
 *  - libxml2 diagnostics are suppressed (library code never prints).
 * Results are copied into plain heap structs; the tree is freed before returning.
 *
 * Threading: libxml2 is initialised once (pthread_once); parsing is then reentrant.
 */
#include "gw_cors.h"
#include "gw_wire.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/*
 * The encoding named by an XML declaration at the start of the body ("<?xml ... encoding='X'?>"),
 * copied into out; "" when there is no declaration or it names none.
 */
static void declared_encoding(const char *xml, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    if (len < 5 || memcmp(xml, "<?xml", 5) != 0)
        return;
    const char *end = memmem(xml, len, "?>", 2);
    const char *p = end ? memmem(xml, (size_t)(end - xml), "encoding", 8) : NULL;
    if (!p)
        return;
    for (p += 8; p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '=');)
        p++;
    if (p >= end || (*p != '"' && *p != '\''))
        return;
    const char *v = p + 1, *q = memchr(v, *p, (size_t)(end - v));
    size_t n = q ? (size_t)(q - v) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/*
 * S3 reads request XML as UTF-8 only. A UTF-16 or UTF-32 body (byte-order mark, or NULs), one
 * declaring another encoding, or bytes that are not UTF-8 are refused before libxml2 sees them:
 * libxml2 would otherwise transcode them, and a key spelled in Latin-1 would name another key.
 * A UTF-8 byte-order mark is allowed.
 */
static int utf8_body(const char *xml, size_t len)
{
    const unsigned char *u = (const unsigned char *)xml;
    char enc[32];

    if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF)
        xml += 3, len -= 3;
    if (memchr(xml, 0, len) || !gw_utf8_valid(xml, len))
        return 0; /* also every UTF-16/32 byte-order mark: FE FF, FF FE, 00 00 FE FF */
    declared_encoding(xml, len, enc, sizeof(enc));
    return !enc[0] || strcasecmp(enc, "UTF-8") == 0 || strcasecmp(enc, "UTF8") == 0;
}

/* Parse xml into *doc and check the root's local name. */
static gw_s3err load(const char *xml, size_t len, size_t cap, const char *root, xmlDocPtr *doc,
                     xmlNodePtr *rootp)
{
    *doc = NULL;
    if (len > cap)
        return GW_ENTITY_TOO_LARGE;
    if (len == 0 || len > INT_MAX)
        return GW_MALFORMED_XML;
    if (!utf8_body(xml, len) || memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8))
        return GW_MALFORMED_XML;
    pthread_once(&xml_once, xml_init);
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    xmlDocPtr d = xmlReadMemory(xml, (int)len, NULL, "UTF-8", opts);
    if (!d)
        return GW_MALFORMED_XML;
    xmlNodePtr r = xmlDocGetRootElement(d);
    if (d->intSubset || d->extSubset || !r || !xmlStrEqual(r->name, BAD_CAST root)) {
        xmlFreeDoc(d);
        return GW_MALFORMED_XML;
    }
    *doc = d;
    *rootp = r;
    return GW_OK;
}

gw_s3err gw_xml_load(const char *xml, size_t len, size_t cap, const char *root, void **doc,
                     void **rootp)
{
    xmlDocPtr d;
    xmlNodePtr r = NULL;
    gw_s3err e = load(xml, len, cap, root, &d, &r);
    *doc = d;
    *rootp = r;
    return e;
}

static int is_elem(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

static size_t count_children(xmlNodePtr parent, const char *name)
{
    size_t n = 0;
    for (xmlNodePtr c = parent->children; c; c = c->next)
        n += is_elem(c, name);
    return n;
}

/* First child element with that name, or NULL. */
static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (is_elem(c, name))
            return c;
    }
    return NULL;
}

/* The element's text as a heap string (malloc), or NULL when out of memory. */
static char *text_of(xmlNodePtr n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

/* Trim ASCII whitespace in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

char *gw_xml_node_text(void *node, int trim_it)
{
    char *t = text_of(node);
    if (t && trim_it) {
        char *s = trim(t);
        memmove(t, s, strlen(s) + 1);
    }
    return t;
}

/* Copy the trimmed text of n into out[cap]; 0 when it does not fit, -1 when out of memory. */
static int text_into(xmlNodePtr n, char *out, size_t cap)
{
    char *t = text_of(n);
    if (!t)
        return -1;
    char *s = trim(t);
    size_t len = strlen(s);
    int ok = len < cap;
    if (ok)
        memcpy(out, s, len + 1);
    free(t);
    return ok;
}

/* PartNumber: GW_MALFORMED_XML unless all digits, GW_INVALID_ARGUMENT outside 1..10000. */
static gw_s3err part_number(xmlNodePtr n, uint32_t *out)
{
    char *t = text_of(n);
    if (!t)
        return GW_INTERNAL;
    char *s = trim(t);
    size_t len = strlen(s);
    gw_s3err e = GW_OK;
    if (len == 0 || strspn(s, "0123456789") != len)
        e = GW_MALFORMED_XML;
    else if (len > 9 || strtoul(s, NULL, 10) < 1 || strtoul(s, NULL, 10) > GW_MAX_PARTS)
        e = GW_INVALID_ARGUMENT;
    else
        *out = (uint32_t)strtoul(s, NULL, 10);
    free(t);
    return e;
}

/* ETag without surrounding quotes (some clients send it bare). */
static gw_s3err part_etag(xmlNodePtr n, char *out, size_t cap)
{
    char *t = text_of(n);
    if (!t)
        return GW_INTERNAL;
    char *s = trim(t);
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s[--len] = '\0', s++, len--;
    gw_s3err e = GW_OK;
    if (len == 0)
        e = GW_MALFORMED_XML;
    else if (len >= cap)
        e = GW_INVALID_PART;
    else
        memcpy(out, s, len + 1);
    free(t);
    return e;
}

static gw_s3err part_checksum(xmlNodePtr part, gw_complete_part *p)
{
    for (int a = MD_CK_CRC32; a <= MD_CK_SHA256; a++) {
        char name[32];
        snprintf(name, sizeof(name), "Checksum%s", gw_cksum_name((md_cksum_alg)a));
        xmlNodePtr c = child(part, name);
        if (!c)
            continue;
        int r = text_into(c, p->ck_value, sizeof(p->ck_value));
        if (r < 0)
            return GW_INTERNAL;
        if (r == 0)
            return GW_INVALID_PART;
        p->ck_alg = (md_cksum_alg)a;
        return GW_OK;
    }
    return GW_OK;
}

static gw_s3err parse_part(xmlNodePtr part, gw_complete_part *p)
{
    xmlNodePtr num = child(part, "PartNumber"), tag = child(part, "ETag");
    if (!num || !tag)
        return GW_MALFORMED_XML;
    gw_s3err e = part_number(num, &p->number);
    if (e == GW_OK)
        e = part_etag(tag, p->etag, sizeof(p->etag));
    if (e == GW_OK)
        e = part_checksum(part, p);
    return e;
}

gw_s3err gw_parse_complete(const char *xml, size_t len, size_t cap, gw_complete_req *out)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    memset(out, 0, sizeof(*out));
    gw_s3err e = load(xml, len, cap, "CompleteMultipartUpload", &doc, &root);
    if (e != GW_OK)
        return e;
    size_t n = count_children(root, "Part");
    if (n == 0 || n > GW_MAX_PARTS) {
        e = GW_MALFORMED_XML;
        goto free_doc;
    }
    out->parts = calloc(n, sizeof(*out->parts));
    if (!out->parts) {
        e = GW_INTERNAL;
        goto free_doc;
    }
    for (xmlNodePtr c = root->children; c && e == GW_OK; c = c->next) {
        if (!is_elem(c, "Part"))
            continue;
        gw_complete_part *p = &out->parts[out->n];
        e = parse_part(c, p);
        if (e == GW_OK && out->n > 0 && p->number <= out->parts[out->n - 1].number)
            e = GW_INVALID_PART_ORDER;
        out->n++;
    }
free_doc:
    xmlFreeDoc(doc);
    if (e != GW_OK)
        gw_complete_req_release(out);
    return e;
}

void gw_complete_req_release(gw_complete_req *r)
{
    free(r->parts);
    memset(r, 0, sizeof(*r));
}

/* Quiet / booleans: true or false, case-insensitive, surrounding space allowed. */
static gw_s3err parse_bool(xmlNodePtr n, int *out)
{
    char v[8];
    int r = text_into(n, v, sizeof(v));
    if (r < 0)
        return GW_INTERNAL;
    if (r > 0 && strcasecmp(v, "true") == 0)
        *out = 1;
    else if (r > 0 && strcasecmp(v, "false") == 0)
        *out = 0;
    else
        return GW_MALFORMED_XML;
    return GW_OK;
}

static gw_s3err parse_object(xmlNodePtr obj, gw_delete_obj *o)
{
    xmlNodePtr key = child(obj, "Key"), ver = child(obj, "VersionId");
    if (!key)
        return GW_MALFORMED_XML;
    o->key = text_of(key); /* keys are not trimmed: spaces are part of them */
    if (!o->key)
        return GW_INTERNAL;
    if (ver) {
        o->version_id = text_of(ver);
        if (!o->version_id)
            return GW_INTERNAL;
        char *t = trim(o->version_id);
        memmove(o->version_id, t, strlen(t) + 1);
    }
    return GW_OK;
}

gw_s3err gw_parse_delete(const char *xml, size_t len, size_t cap, gw_delete_req *out)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    memset(out, 0, sizeof(*out));
    gw_s3err e = load(xml, len, cap, "Delete", &doc, &root);
    if (e != GW_OK)
        return e;
    xmlNodePtr quiet = child(root, "Quiet");
    if (quiet)
        e = parse_bool(quiet, &out->quiet);
    size_t n = count_children(root, "Object");
    if (e == GW_OK && (n == 0 || n > GW_MAX_DELETE))
        e = GW_MALFORMED_XML;
    if (e == GW_OK && !(out->objs = calloc(n, sizeof(*out->objs))))
        e = GW_INTERNAL;
    for (xmlNodePtr c = e == GW_OK ? root->children : NULL; c && e == GW_OK; c = c->next) {
        if (is_elem(c, "Object"))
            e = parse_object(c, &out->objs[out->n++]);
    }
    xmlFreeDoc(doc);
    if (e != GW_OK)
        gw_delete_req_release(out);
    return e;
}

void gw_delete_req_release(gw_delete_req *r)
{
    for (size_t i = 0; r->objs && i < r->n; i++) {
        free(r->objs[i].key);
        free(r->objs[i].version_id);
    }
    free(r->objs);
    memset(r, 0, sizeof(*r));
}

/* Text of an optional enum-like element: 1 = matched a, 2 = matched b, 0 = absent, -1 other. */
static int parse_choice(xmlNodePtr parent, const char *name, const char *a, const char *b)
{
    xmlNodePtr n = child(parent, name);
    char v[16];
    if (!n)
        return 0;
    if (text_into(n, v, sizeof(v)) <= 0)
        return -1;
    return strcmp(v, a) == 0 ? 1 : strcmp(v, b) == 0 ? 2 : -1;
}

gw_s3err gw_parse_versioning(const char *xml, size_t len, size_t cap, gw_versioning *status,
                             int *mfa_delete)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    gw_s3err e = load(xml, len, cap, "VersioningConfiguration", &doc, &root);
    if (e != GW_OK)
        return e;
    int st = parse_choice(root, "Status", "Enabled", "Suspended");
    int mfa = parse_choice(root, "MfaDelete", "Enabled", "Disabled");
    xmlFreeDoc(doc);
    if (st < 0 || mfa < 0)
        return GW_MALFORMED_XML;
    *status = st == 1 ? GW_VERS_ENABLED : st == 2 ? GW_VERS_SUSPENDED : GW_VERS_UNSET;
    if (mfa_delete)
        *mfa_delete = mfa == 1;
    return GW_OK;
}

gw_s3err gw_parse_create_bucket(const char *xml, size_t len, size_t cap, char **location)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    *location = NULL;
    size_t blank = 0;
    while (blank < len && isspace((unsigned char)xml[blank]))
        blank++;
    if (blank == len)
        return GW_OK;
    gw_s3err e = load(xml, len, cap, "CreateBucketConfiguration", &doc, &root);
    if (e != GW_OK)
        return e;
    xmlNodePtr lc = child(root, "LocationConstraint");
    if (lc) {
        char *t = text_of(lc);
        if (!t) {
            e = GW_INTERNAL;
        } else if (*trim(t)) {
            char *s = trim(t);
            memmove(t, s, strlen(s) + 1);
            *location = t;
        } else {
            free(t);
        }
    }
    xmlFreeDoc(doc);
    return e;
}

/* One <Tag>: exactly one Key and one Value (either may be empty text). */
static gw_s3err parse_tag(xmlNodePtr tag, md_meta *out)
{
    xmlNodePtr k = child(tag, "Key"), v = child(tag, "Value");
    if (count_children(tag, "Key") != 1 || count_children(tag, "Value") != 1)
        return GW_MALFORMED_XML;
    out->name = text_of(k);
    out->value = text_of(v);
    return out->name && out->value ? GW_OK : GW_INTERNAL;
}

gw_s3err gw_parse_tagging(const char *xml, size_t len, size_t cap, md_meta **tags, size_t *n)
{
    xmlDocPtr doc;
    xmlNodePtr root, set;
    md_meta *t = NULL;
    size_t cnt = 0;
    *tags = NULL;
    *n = 0;
    gw_s3err e = load(xml, len, cap, "Tagging", &doc, &root);
    if (e != GW_OK)
        return e;
    if (count_children(root, "TagSet") != 1 || !(set = child(root, "TagSet"))) {
        e = GW_MALFORMED_XML;
        goto out;
    }
    size_t want = count_children(set, "Tag");
    if (want > 4 * GW_MAX_BUCKET_TAGS) {
        e = GW_MALFORMED_XML;
        goto out;
    }
    if (want && !(t = calloc(want, sizeof(*t)))) {
        e = GW_INTERNAL;
        goto out;
    }
    for (xmlNodePtr c = set->children; c && e == GW_OK; c = c->next) {
        if (is_elem(c, "Tag"))
            e = parse_tag(c, &t[cnt++]);
    }
out:
    xmlFreeDoc(doc);
    if (e != GW_OK) {
        md_meta_free(t, cnt);
        return e;
    }
    *tags = t;
    *n = cnt;
    return GW_OK;
}

gw_s3err gw_parse_encryption(const char *xml, size_t len, size_t cap, int *bucket_key, char *msg,
                             size_t msg_cap)
{
    xmlDocPtr doc;
    xmlNodePtr root, rule, def, alg, bk;
    char v[32];
    *bucket_key = 0;
    msg[0] = '\0';
    gw_s3err e = load(xml, len, cap, "ServerSideEncryptionConfiguration", &doc, &root);
    if (e != GW_OK)
        return e;
    e = GW_MALFORMED_XML;
    if (count_children(root, "Rule") != 1 || !(rule = child(root, "Rule")) ||
        !(def = child(rule, "ApplyServerSideEncryptionByDefault")) ||
        !(alg = child(def, "SSEAlgorithm")) || text_into(alg, v, sizeof(v)) <= 0)
        goto out;
    if ((bk = child(rule, "BucketKeyEnabled")) && (e = parse_bool(bk, bucket_key)) != GW_OK)
        goto out;
    if (strcmp(v, "aws:kms") == 0 || strcmp(v, "aws:kms:dsse") == 0) {
        snprintf(msg, msg_cap,
                 "SSEAlgorithm %s asks for server-side encryption with KMS keys, which this "
                 "server does not provide: use AES256",
                 v);
        e = GW_UNSUPPORTED;
    } else if (strcmp(v, "AES256") != 0) {
        snprintf(msg, msg_cap, "The server-side encryption algorithm provided is not valid");
        e = GW_INVALID_ARGUMENT;
    } else if (child(def, "KMSMasterKeyID")) {
        snprintf(msg, msg_cap, "a KMSMasterKeyID is not applicable to AES256");
        e = GW_INVALID_ARGUMENT;
    } else {
        e = GW_OK;
    }
out:
    xmlFreeDoc(doc);
    return e;
}

/* ---- CORSConfiguration (gw_cors.h) ---- */

/* Every child element `name` of parent as trimmed heap strings into *v, *n. */
static gw_s3err texts_of(xmlNodePtr parent, const char *name, char ***v, size_t *n)
{
    size_t want = count_children(parent, name);
    *n = 0;
    if (want && !(*v = calloc(want, sizeof(char *))))
        return GW_INTERNAL;
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (!is_elem(c, name))
            continue;
        char *t = text_of(c);
        if (!t)
            return GW_INTERNAL;
        char *s = trim(t);
        memmove(t, s, strlen(s) + 1);
        (*v)[(*n)++] = t;
    }
    return GW_OK;
}

/* At most one `*` in each of v[0..n); else InvalidRequest with S3's message. */
static gw_s3err one_wildcard(char **v, size_t n, const char *what, char *msg, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *star = strchr(v[i], '*');
        if (star && strchr(star + 1, '*')) {
            snprintf(msg, cap, "%s \"%s\" can not have more than one wildcard.", what, v[i]);
            return GW_INVALID_REQUEST;
        }
    }
    return GW_OK;
}

static gw_s3err parse_cors_rule(xmlNodePtr rn, gw_cors_rule *r, char *msg, size_t cap)
{
    char **ms = NULL;
    size_t nms = 0;
    xmlNodePtr x;
    gw_s3err e;

    r->max_age = -1;
    if (count_children(rn, "ID") > 1 || count_children(rn, "MaxAgeSeconds") > 1)
        return GW_MALFORMED_XML;
    if ((x = child(rn, "ID"))) {
        if (!(r->id = text_of(x)))
            return GW_INTERNAL;
        if (strlen(r->id) > 255)
            return GW_MALFORMED_XML;
    }
    if ((x = child(rn, "MaxAgeSeconds"))) {
        char buf[24], *end;
        if (text_into(x, buf, sizeof(buf)) != 1 || !isdigit((unsigned char)buf[0]))
            return GW_MALFORMED_XML;
        long long v = strtoll(buf, &end, 10);
        if (*end || v > INT32_MAX)
            return GW_MALFORMED_XML;
        r->max_age = v;
    }
    if ((e = texts_of(rn, "AllowedOrigin", &r->origins, &r->norigins)) != GW_OK ||
        (e = texts_of(rn, "AllowedHeader", &r->headers, &r->nheaders)) != GW_OK ||
        (e = texts_of(rn, "ExposeHeader", &r->expose, &r->nexpose)) != GW_OK ||
        (e = texts_of(rn, "AllowedMethod", &ms, &nms)) != GW_OK)
        goto out;
    if (r->norigins == 0 || nms == 0) {
        e = GW_MALFORMED_XML;
        goto out;
    }
    for (size_t i = 0; i < nms; i++) {
        unsigned bit = gw_cors_method_bit(ms[i]);
        if (!bit) {
            snprintf(msg, cap,
                     "Found unsupported HTTP method in CORS config. Unsupported method is %s",
                     ms[i]);
            e = GW_INVALID_REQUEST;
            goto out;
        }
        r->methods |= bit;
    }
    if ((e = one_wildcard(r->origins, r->norigins, "AllowedOrigin", msg, cap)) == GW_OK)
        e = one_wildcard(r->headers, r->nheaders, "AllowedHeader", msg, cap);
out:
    for (size_t i = 0; i < nms; i++)
        free(ms[i]);
    free(ms);
    return e;
}

gw_s3err gw_parse_cors(const char *xml, size_t len, size_t cap, gw_cors_config *out, char *msg,
                       size_t msg_cap)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    memset(out, 0, sizeof(*out));
    msg[0] = '\0';
    gw_s3err e = load(xml, len, cap, "CORSConfiguration", &doc, &root);
    if (e != GW_OK)
        return e;
    size_t want = count_children(root, "CORSRule");
    if (want == 0 || want > GW_CORS_MAX_RULES) {
        e = GW_MALFORMED_XML;
        goto out;
    }
    if (!(out->rules = calloc(want, sizeof(*out->rules)))) {
        e = GW_INTERNAL;
        goto out;
    }
    for (xmlNodePtr c = root->children; c && e == GW_OK; c = c->next) {
        if (is_elem(c, "CORSRule"))
            e = parse_cors_rule(c, &out->rules[out->n++], msg, msg_cap);
    }
out:
    xmlFreeDoc(doc);
    if (e != GW_OK)
        gw_cors_config_release(out);
    return e;
}

gw_s3err gw_parse_public_access_block(const char *xml, size_t len, size_t cap, uint8_t *flags)
{
    static const char *const names[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                        "RestrictPublicBuckets"};
    xmlDocPtr doc;
    xmlNodePtr root;
    gw_s3err e = load(xml, len, cap, "PublicAccessBlockConfiguration", &doc, &root);
    *flags = 0;
    for (size_t i = 0; e == GW_OK && i < sizeof(names) / sizeof(names[0]); i++) {
        xmlNodePtr n = child(root, names[i]);
        int on = 0;
        if (n && count_children(root, names[i]) > 1)
            e = GW_MALFORMED_XML;
        else if (n && (e = parse_bool(n, &on)) == GW_OK && on)
            *flags |= (uint8_t)(1u << i);
    }
    if (doc)
        xmlFreeDoc(doc);
    return e;
}

gw_s3err gw_parse_ownership(const char *xml, size_t len, size_t cap, char *out, size_t outcap)
{
    xmlDocPtr doc;
    xmlNodePtr root, rule, own;
    gw_s3err e = load(xml, len, cap, "OwnershipControls", &doc, &root);
    if (e != GW_OK)
        return e;
    if (count_children(root, "Rule") != 1 || !(rule = child(root, "Rule")) ||
        count_children(rule, "ObjectOwnership") != 1 || !(own = child(rule, "ObjectOwnership")) ||
        text_into(own, out, outcap) <= 0)
        e = GW_MALFORMED_XML;
    xmlFreeDoc(doc);
    return e;
}
