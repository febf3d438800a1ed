/*
 * gw_post.c - POST Object: a browser's HTML form upload (multipart/form-data POST to the bucket's
 * URL), authorised by the SigV4-signed policy the form carries rather than by request headers.
 *
 * Phases, on the request's loop: gw_op_post_object checks the bucket and the Content-Type and
 * starts the body (gw_body_to_form). Every read goes through gw_post_feed: the form parser
 * (gw_form.c) keeps the fields, bounded, until the file part begins; then, before a byte of the
 * file is taken, the policy is checked (gw_post_policy_check: signature, expiration, conditions),
 * and so are the fields that decide what is stored (key, acl, success_action_status, tagging,
 * storage class): a refused form stores nothing and the rest of its body is read and dropped.
 * The file's bytes then go to the data sink like a PUT's body, with the policy's
 * content-length-range maximum as the sink's limit (EntityTooLarge as soon as it is passed) and
 * its minimum checked at the end (EntityTooSmall). The commit is PutObject's (gw_put_commit),
 * with the record's headers and metadata from the form fields; the answer is S3's: 204 (or 200,
 * or 201 with a PostResponse document, as success_action_status asks), or a 303 to
 * success_action_redirect / redirect with bucket, key and etag in the query.
 *
 * Memory: the fields (gw_post.h's bounds) plus PutObject's; never the file. Time: the fields
 * are read before anything authenticates the client, so they must arrive within
 * post_fields_timeout_ms (gw_config; RequestTimeout, connection closed); the file is then as slow
 * as a PUT's body may be (net's io timeout).
 *
 * Fields that a PutObject would send as headers (acl, x-amz-storage-class,
 * x-amz-server-side-encryption, x-amz-object-lock-*, ...) go through the same refusal table
 * (gw_refuse_check): what cairn does not do is 501 NotImplemented, never silently dropped.
 *
 * On a cluster node the commit is PutObject's replicated one (gw_put_commit) and a bucket not
 * mirrored here yet is first resolved, as for every request (gw_server.c routes POST Object
 * through gw_bucket_resolve). A decision there that needs the key's record (a bucket policy's
 * s3:ExistingObjectTag condition) cannot read it on the loop: the fields are all known when the
 * file part begins (S3 requires the file to be the form's last field), so the body is paused
 * there (net_req_pause_body), the record is read asynchronously (gw_known_fetch, one quorum read)
 * and the form is decided again; the body is then resumed, its file taken or, refused, dropped.
 * Not done: Signature Version 2 forms are refused (AccessDenied).
 */
#include "gw_int.h"
#include "gw_post.h"
#include "gw_refuse.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "gw"

struct gw_post_op {
    gw_form *form;
    int checked;      /* the policy allowed the form (the file is being taken) */
    int64_t start_ms; /* when the request began (post_fields_timeout_ms) */
    uint64_t min_len; /* content-length-range minimum */
    uint64_t max_len; /* and maximum */
    int fetched;      /* the key's record was read for the decision (gw_known_fetch) */
    int status;       /* success_action_status: 200, 201 or 204 */
    char *redirect;   /* success_action_redirect or redirect, NULL when none */
    md_meta *tags;    /* the tagging field's tag set */
    size_t ntags;
};

void gw_post_free(struct gw_post_op *p)
{
    if (!p)
        return;
    gw_form_free(p->form);
    free(p->redirect);
    md_meta_free(p->tags, p->ntags);
    free(p);
}

static const char *field(gw_req *r, const char *name)
{
    size_t n;
    const gw_form_field *fs = gw_form_fields(r->post->form, &n);
    const gw_form_field *f = gw_form_get(fs, n, name);
    return f ? f->value : NULL;
}

static const char *form_value(void *arg, const char *name)
{
    return field(arg, name);
}

/*
 * The fields that decide what is stored, checked before the file is taken. GW_OK, or the error
 * to answer with its message in msg.
 */
static gw_s3err check_fields(gw_req *r, char *msg, size_t cap)
{
    struct gw_post_op *p = r->post;
    const char *key = field(r, "key");
    const char *status = field(r, "success_action_status");
    const char *redirect = field(r, "success_action_redirect");
    const char *tagging = field(r, "tagging");
    gw_s3err e;

    if (!key || !key[0]) {
        snprintf(msg, cap,
                 "Bucket POST must contain a field named 'key'.  If it is specified, "
                 "please check the order of the fields.");
        return GW_INVALID_ARGUMENT;
    }
    free(r->key);
    if (!(r->key = gw_post_key(key, gw_form_filename(p->form))))
        return GW_INTERNAL;
    if ((e = gw_key_check(r->key, strlen(r->key))) != GW_OK)
        return e;
    /* acl, storage class, encryption, object lock...: the fields a PutObject would carry as
     * headers, accepted or refused by the same table (gw_refuse.c). */
    if ((e = gw_refuse_check_cluster(GW_RF_PUT, form_value, r, r->auth.access_key, msg, cap)) !=
        GW_OK)
        return e;
    p->status = 204;
    if (status && (strcmp(status, "200") == 0 || strcmp(status, "201") == 0))
        p->status = atoi(status); /* S3: any other value answers 204 */
    if (!redirect)
        redirect = field(r, "redirect");
    if (redirect && redirect[0] && !(p->redirect = strdup(redirect)))
        return GW_INTERNAL;
    if (tagging) {
        if ((e = gw_parse_tagging(tagging, strlen(tagging), 64 * 1024, &p->tags, &p->ntags)) !=
            GW_OK)
            return e;
        return gw_tags_check(p->tags, p->ntags, GW_MAX_OBJECT_TAGS, msg, cap);
    }
    return GW_OK;
}

static void authorize_again(gw_req *r);

/*
 * May the signer write the key? 0: yes, the file is taken from now on. -1: refused (answered), or
 * (a cluster node whose decision needs the key's record: an s3:ExistingObjectTag condition) the
 * body is paused while the record is read, and authorize_again decides again.
 */
static int authorize_form(gw_req *r)
{
    struct gw_post_op *p = r->post;
    int ok = gw_authz_post(r);
    if (ok < 0 && !p->fetched) {
        p->fetched = 1; /* one read: the decision then finds the record among those read */
        net_req_pause_body(r->net);
        gw_known_fetch(r, authorize_again);
        return -1;
    }
    if (ok <= 0) {
        CM_DEBUG(MOD, "req=%s POST Object to %s/%s denied", r->id, r->bucket, r->key);
        gw_error(r, ok < 0 ? GW_INTERNAL : GW_ACCESS_DENIED, NULL);
        return -1;
    }
    p->checked = 1;
    r->max_len = CM_MIN(r->max_len, p->max_len);
    return 0;
}

/* Loop: the record the decision wanted was read (gw_known_fetch); decide again, then go on
 * reading the body: the file's bytes, or (refused) the rest, dropped. */
static void authorize_again(gw_req *r)
{
    if (r->meta_err != CM_OK)
        gw_error_cm(r, r->meta_err);
    else
        (void)authorize_form(r);
    net_req_resume_body(r->net); /* net hands on_body what it still buffers */
}

/* The file part began: check the policy and the fields, then open the sink to the file. */
static int check_form(gw_req *r)
{
    struct gw_post_op *p = r->post;
    gw_post_policy pol;
    char msg[320] = "";
    size_t n;
    const gw_form_field *fs = gw_form_fields(p->form, &n);
    gw_post_request pr = {.bucket = r->bucket,
                          .fields = fs,
                          .nfields = n,
                          .now = time(NULL),
                          .region = r->g->region,
                          .secret = gw_users_secret,
                          .secret_arg = r->g};
    gw_s3err e = gw_post_policy_check(&pr, &pol);
    if (e == GW_OK) {
        snprintf(r->auth.access_key, sizeof(r->auth.access_key), "%s", pol.access_key);
        r->principal = gw_users_who(r->g, pol.access_key, r->user, sizeof(r->user));
        e = check_fields(r, msg, sizeof(msg));
    } else
        snprintf(msg, sizeof(msg), "%s", pol.message);
    if (e != GW_OK) {
        CM_DEBUG(MOD, "req=%s POST Object to %s refused: %s %s", r->id, r->bucket, gw_s3err_code(e),
                 msg);
        gw_error(r, e, msg[0] ? msg : NULL);
        return -1;
    }
    p->min_len = pol.min_len;
    p->max_len = pol.max_len;
    return authorize_form(r);
}

int gw_post_feed(gw_req *r, struct evbuffer *body)
{
    struct gw_post_op *p = r->post;
    /* The fields are not authenticated yet: net's io timeout alone would let a byte a minute
     * hold the connection for ever. */
    if (!p->checked && cm_now_ms() - p->start_ms > r->g->cfg.post_fields_timeout_ms) {
        gw_error(r, GW_REQUEST_TIMEOUT, NULL);
        net_resp_close_after(r->net); /* a client this slow is not read on */
        return -1;
    }
    gw_s3err e = gw_form_feed(p->form, body, r->decoded);
    if (e == GW_OK && !p->checked && gw_form_in_file(p->form)) {
        if (check_form(r) != 0)
            return -1;
        e = gw_form_feed(p->form, body, r->decoded); /* the file's first bytes */
    }
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return -1;
    }
    return 0;
}

/* ---- the record and the answer ---- */

static char *dup_field(gw_req *r, const char *name)
{
    const char *v = field(r, name);
    return v ? strdup(v) : NULL;
}

static gw_s3err post_fill(gw_req *r, md_object *o, char *msg, size_t cap)
{
    size_t n;
    const gw_form_field *fs = gw_form_fields(r->post->form, &n);
    gw_meta_set ms;
    gw_s3err e = GW_OK;
    (void)msg;
    (void)cap;

    gw_meta_init(&ms);
    for (size_t i = 0; i < n && e == GW_OK; i++)
        e = gw_meta_add(&ms, fs[i].name, fs[i].value);
    if (e != GW_OK) {
        gw_meta_release(&ms);
        return e;
    }
    o->meta = ms.items;
    o->nmeta = ms.n;
    o->content_type = dup_field(r, "content-type");
    if (!o->content_type)
        o->content_type = strdup("binary/octet-stream");
    o->cache_control = dup_field(r, "cache-control");
    o->content_disposition = dup_field(r, "content-disposition");
    o->content_encoding = dup_field(r, "content-encoding");
    o->expires = dup_field(r, "expires");
    o->website_redirect = dup_field(r, "x-amz-website-redirect-location");
    gw_storage_class_of(field(r, "x-amz-storage-class"), o->storage_class,
                        sizeof(o->storage_class));
    o->tags = r->post->tags; /* the record owns them now */
    o->ntags = r->post->ntags;
    r->post->tags = NULL;
    r->post->ntags = 0;
    return o->content_type ? GW_OK : GW_INTERNAL;
}

/* "http://host/bucket/key" (path style) or "http://host/key" (virtual-hosted), key encoded. */
static char *location_of(gw_req *r)
{
    const char *host = gw_hdr(r, "host");
    size_t klen = strlen(r->key), cap = 3 * klen + 1;
    char *ek = malloc(cap);
    if (!ek)
        return NULL;
    cm_url_encode(r->key, klen, 1, ek, cap);
    size_t n = strlen(ek) + strlen(r->bucket) + (host ? strlen(host) : 0) + 16;
    char *loc = malloc(n);
    if (loc && r->vhost)
        snprintf(loc, n, "http://%s/%s", host ? host : "", ek);
    else if (loc)
        snprintf(loc, n, "http://%s/%s/%s", host ? host : "", r->bucket, ek);
    free(ek);
    return loc;
}

/* The redirect target with bucket, key and etag appended to its query, as S3 does. */
static char *redirect_to(gw_req *r, const char *base, const char *etag)
{
    size_t blen = strlen(r->bucket), klen = strlen(r->key), elen = strlen(etag) + 2;
    size_t cap = strlen(base) + 3 * (blen + klen + elen) + 32;
    char *out = malloc(cap), *eb = malloc(3 * blen + 1), *ek = malloc(3 * klen + 1);
    char *ee = malloc(3 * elen + 1), quoted[80];
    if (out && eb && ek && ee) {
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        cm_url_encode(r->bucket, blen, 0, eb, 3 * blen + 1);
        cm_url_encode(r->key, klen, 0, ek, 3 * klen + 1);
        cm_url_encode(quoted, strlen(quoted), 0, ee, 3 * elen + 1);
        snprintf(out, cap, "%s%sbucket=%s&key=%s&etag=%s", base, strchr(base, '?') ? "&" : "?", eb,
                 ek, ee);
    } else {
        free(out);
        out = NULL;
    }
    free(eb);
    free(ek);
    free(ee);
    return out;
}

static void post_answer(gw_req *r, const md_object *o)
{
    struct gw_post_op *p = r->post;
    char *loc = location_of(r);
    if (p->redirect) {
        char *to = redirect_to(r, p->redirect, o->etag);
        if (!to) {
            free(loc);
            gw_error(r, GW_INTERNAL, NULL);
            return;
        }
        gw_resp_start(r, 303, 0);
        net_resp_header(r->net, "Location", to);
        gw_put_result_headers(r, o);
        net_resp_end(r->net);
        free(to);
        free(loc);
        return;
    }
    if (p->status == 201) {
        struct evbuffer *buf = evbuffer_new();
        gw_xml x;
        char q[64];
        if (!buf) {
            free(loc);
            gw_error(r, GW_INTERNAL, NULL);
            return;
        }
        snprintf(q, sizeof(q), "\"%s\"", o->etag);
        gw_xml_init(&x, buf);
        gw_xml_begin(&x);
        gw_xml_open(&x, "PostResponse");
        gw_xml_text(&x, "Location", loc ? loc : "");
        gw_xml_text(&x, "Bucket", r->bucket);
        gw_xml_text(&x, "Key", r->key);
        gw_xml_text(&x, "ETag", q);
        gw_xml_close(&x, "PostResponse");
        if (gw_xml_status(&x) != CM_OK) {
            gw_error(r, GW_INTERNAL, NULL);
        } else {
            gw_resp_start(r, 201, (int64_t)evbuffer_get_length(buf));
            net_resp_header(r->net, "Content-Type", "application/xml");
            if (loc)
                net_resp_header(r->net, "Location", loc);
            gw_put_result_headers(r, o);
            net_resp_write_buffer(r->net, buf);
            net_resp_end(r->net);
        }
        evbuffer_free(buf);
        free(loc);
        return;
    }
    gw_resp_start(r, p->status, p->status == 204 ? -1 : 0);
    if (loc)
        net_resp_header(r->net, "Location", loc);
    gw_put_result_headers(r, o);
    net_resp_end(r->net);
    free(loc);
}

/* The body ended: the form must have held its file, whole, within the size range. */
static void post_finish(gw_req *r)
{
    struct gw_post_op *p = r->post;
    if (!gw_form_in_file(p->form)) {
        gw_error(r, GW_INVALID_ARGUMENT, "POST requires exactly one file upload per request.");
        return;
    }
    if (!gw_form_done(p->form)) {
        gw_error(r, GW_MALFORMED_POST, NULL);
        return;
    }
    if (r->body_len < p->min_len) {
        gw_error(r, GW_ENTITY_TOO_SMALL,
                 "Your proposed upload is smaller than the minimum allowed size");
        return;
    }
    gw_put_commit(r, post_fill, post_answer);
}

void gw_op_post_object(gw_req *r)
{
    gw_s3err e;
    if (gw_bucket_name_check(r->bucket) != GW_OK) {
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket))
        return;
    if (!(r->post = calloc(1, sizeof(*r->post)))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->post->start_ms = cm_now_ms();
    if ((e = gw_form_new(gw_hdr(r, "content-type"), &r->post->form)) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    gw_body_to_form(r, r->g->cfg.max_object_size, post_finish);
}
