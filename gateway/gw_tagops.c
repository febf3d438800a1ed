/*
 * gw_tagops.c - the tagging operations and GetObjectAttributes: Get/Put/DeleteObjectTagging
 * (?tagging on an object), Get/Put/DeleteBucketTagging (?tagging on a bucket), and
 * GetObjectAttributes (?attributes), which like GetObjectTagging reads a record without its body.
 *
 * Bucket tags live in the bucket's record of the local store (md_bucket_tags_set: one write op
 * rewrites it). On a cluster node the bucket namespace is etcd's and the local record only a
 * mirror, so they live in the namespace instead (gw_bucket_ns tags_set / tags_get: the bucket's
 * entry of the etcd bucket document, changed by compare-and-set, 503 while etcd does not answer;
 * read from the node's copy of that document, so GetBucketTagging never waits on etcd). At most
 * 50 tags, the limits of gw_tags_check; none is 404 NoSuchTagSet.
 *
 * Tags live in the object's record (md_object.tags; docs/metadata.md), so they are written with
 * the object (x-amz-tagging on PUT, CreateMultipartUpload, CopyObject) and replicate with it.
 * Changing the tags of an existing object is a read-modify-write of that record, which must
 * never bring back a body a racing PUT has replaced (that body's chunks are freed once the PUT
 * commits). On a single node the record is read with md_rec_get and the rewritten one committed
 * with md_rec_put expecting the generation read: one metadata write op that checks, in its own
 * transaction, that the key still holds the very record that was read (the generation is the
 * store's write counter for the key, bumped by every write, so unlike an ETag it tells two PUTs
 * of the same bytes apart). The new record uses the same bodies, so md_rec_put frees nothing.
 * When a racing write got there first (CM_ERR_CONFLICT) the tags are applied again to the record
 * that won (at most RMW_TRIES rounds, then 409 ConditionalRequestConflict, which SDKs retry). The
 * record keeps its ETag, Last-Modified and body: S3 does not change them when tags change.
 *
 * On a cluster node the record is read at quorum (rp_object_get) and the one with the new tags
 * written with rp_object_swap_keep_lock: the partition leader, under the key's lock, reads the
 * version again and writes the new tags as the successor of exactly that version (its HLC kept,
 * a swap entry of its version vector bumped), with the retention and hold it reads there, so a
 * racing retention change is never undone. A PUT or DELETE that got there first wins (the leader
 * then writes nothing), so a tag change never brings back a replaced body. Two tag changes of one
 * version racing each other both answer 200 and the one the leader writes last wins everywhere:
 * the other's tags are lost, as a PutObjectTagging is lost to a racing PUT (docs/replication.md,
 * "swap").
 *
 * ?versionId names one version (a versioned bucket's older versions included): its tags are read
 * with md_version_get and replaced with md_version_set_tags, one write op that rewrites only that
 * version's record (no read-modify-write race: the op reads and writes in one transaction). On a
 * cluster node a version's tags live in its version record (docs/versioning.md, "On a cluster"):
 * that record is read (rp_version_record) and swapped as above.
 *
 * Object requests run on a gateway worker (gw_offload): the record read (replicated on a cluster
 * node) and the commit may block. GetBucketTagging reads the local store on the loop (one read
 * transaction, as gw_bucket_check does; on a cluster node the namespace's memory); setting bucket
 * tags commits (or, on a cluster node, changes the etcd document) on a worker.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"
#include "rp.h"

#define TAGGING_XML_CAP (128 * 1024) /* 50 tags of 128 + 256 four-byte characters fit */
#define RMW_TRIES 4

typedef struct {
    md_meta *tags; /* the new tag set (PUT; NULL for DELETE) */
    size_t ntags;
    md_object obj; /* GET: the record read */
    gw_s3err s3err;
    cm_err err;
} tag_state;

static void tag_state_free(void *p)
{
    tag_state *st = p;
    if (!st)
        return;
    md_meta_free(st->tags, st->ntags);
    md_object_release(&st->obj);
    free(st);
}

/* The version named by ?versionId (checked well-formed by gw_version_param_ok); NULL: none. */
static const char *version_param(gw_req *r)
{
    return gw_query_get(&r->q, "versionId");
}

/* Note the version a request acted on for its answer (x-amz-version-id), as GET does. */
static void note_version(gw_req *r, const md_object *o, const char *vid)
{
    int null = !o->version_id[0] || strcmp(o->version_id, "null") == 0;
    if (vid || !null)
        snprintf(r->resp_version_id, sizeof(r->resp_version_id), "%.*s", MD_VID_LEN,
                 null ? "null" : o->version_id);
}

/* Map a record read: GW_OK when o is an object (delete markers are no object): the latest, or
 * the version ?versionId names. */
static gw_s3err read_current(gw_req *r, md_object *o, cm_err *err)
{
    const char *vid = version_param(r);
    *err = vid ? gw_meta_get_version(r->g, r->bucket, r->key, vid, o)
               : gw_meta_get(r->g, r->bucket, r->key, o);
    if (*err == CM_ERR_NOTFOUND)
        return vid ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY;
    if (*err != CM_OK)
        return gw_s3err_from_cm(*err);
    if (vid && strcmp(vid, o->version_id[0] ? o->version_id : "null") != 0) {
        md_object_release(o);
        return GW_NO_SUCH_VERSION;
    }
    if (o->delete_marker || o->tombstone) {
        md_object_release(o);
        return vid ? GW_METHOD_NOT_ALLOWED : GW_NO_SUCH_KEY;
    }
    note_version(r, o, vid);
    return GW_OK;
}

static void read_work(gw_req *r)
{
    tag_state *st = r->op;
    st->s3err = read_current(r, &st->obj, &st->err);
}

static void get_tagging_done(gw_req *r)
{
    tag_state *st = r->op;
    if (st->s3err != GW_OK) {
        gw_error(r, st->s3err, NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (!buf || gw_xml_tagging(buf, st->obj.tags, st->obj.ntags) != CM_OK)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
}

/* The new tag set in place of o's (a copy of st->tags; NULL for DELETE). */
static gw_s3err replace_tags(tag_state *st, md_object *o)
{
    md_meta *tags = NULL;
    size_t n = 0;
    gw_s3err e = gw_tags_copy(st->tags, st->ntags, &tags, &n);
    if (e != GW_OK)
        return e;
    md_meta_free(o->tags, o->ntags);
    o->tags = tags;
    o->ntags = n;
    return GW_OK;
}

/* Worker, cluster node: the record of the version read at quorum (a version record in a
 * versioned bucket), its tags replaced, written as the successor of exactly that version
 * (rp_object_swap; see the file-top comment). */
static void set_tags_swap(gw_req *r)
{
    tag_state *st = r->op;
    const char *vid = version_param(r);
    md_object o;
    st->err = gw_meta_version_record(r->g, r->bucket, r->key, vid, &o);
    if (st->err == CM_OK && (o.delete_marker || o.tombstone)) {
        md_object_release(&o);
        st->s3err = vid ? GW_METHOD_NOT_ALLOWED : GW_NO_SUCH_KEY;
        return;
    }
    if (st->err != CM_OK) {
        st->s3err = st->err != CM_ERR_NOTFOUND ? gw_s3err_from_cm(st->err)
                    : vid                      ? GW_NO_SUCH_VERSION
                                               : GW_NO_SUCH_KEY;
        return;
    }
    note_version(r, &o, vid);
    if ((st->s3err = replace_tags(st, &o)) == GW_OK) {
        st->err = rp_object_swap_keep_lock(r->g->rp, r->bucket, &o);
        st->s3err = st->err == CM_OK ? GW_OK : gw_s3err_from_cm(st->err);
    }
    md_object_release(&o);
}

/*
 * Worker: replace the tags of the current record, committed only if the key still holds the
 * record read (see the file-top comment).
 */
static void set_tags_work(gw_req *r)
{
    tag_state *st = r->op;
    const char *vid = version_param(r);
    if (r->g->rp) {
        set_tags_swap(r);
        return;
    }
    if (vid) { /* one version: its tags replaced in one write op */
        st->err = md_version_set_tags(r->g->md, r->bucket, r->key, vid, st->tags, st->ntags);
        st->s3err = st->err == CM_OK             ? GW_OK
                    : st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_VERSION
                                                 : gw_s3err_from_cm(st->err);
        snprintf(r->resp_version_id, sizeof(r->resp_version_id), "%.*s", MD_VID_LEN, vid);
        return;
    }
    for (int i = 0; i < RMW_TRIES; i++) {
        md_object o;
        st->err = md_rec_get(r->g->md, r->bucket, r->key, &o);
        if (st->err == CM_OK && (o.delete_marker || o.tombstone)) {
            md_object_release(&o);
            st->err = CM_ERR_NOTFOUND;
        }
        if (st->err != CM_OK) {
            st->s3err = st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_KEY : gw_s3err_from_cm(st->err);
            return;
        }
        if ((st->s3err = replace_tags(st, &o)) != GW_OK) {
            md_object_release(&o);
            return;
        }
        note_version(r, &o, NULL);
        st->err = md_rec_put(r->g->md, r->bucket, &o, o.generation, NULL);
        md_object_release(&o);
        if (st->err != CM_ERR_CONFLICT) {
            st->s3err = st->err == CM_OK             ? GW_OK
                        : st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_KEY
                                                     : gw_s3err_from_cm(st->err);
            return;
        }
    }
    st->s3err = GW_CONDITIONAL_CONFLICT;
}

static void set_tags_done(gw_req *r)
{
    tag_state *st = r->op;
    if (st->s3err != GW_OK) {
        gw_error(r, st->s3err, NULL);
        return;
    }
    gw_resp_start(r, st->tags ? 200 : 204, st->tags ? 0 : -1);
    net_resp_end(r->net);
}

/*
 * The Tagging body into st->tags, checked against max tags: GW_OK, or the error has been sent.
 * An empty set is an empty array, not NULL, so that set_tags_done tells PUT from DELETE.
 */
static gw_s3err tag_body(gw_req *r, tag_state *st, size_t max)
{
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    char msg[200] = "";
    gw_s3err e =
        gw_parse_tagging(xml ? xml : "", xml ? len : 0, TAGGING_XML_CAP, &st->tags, &st->ntags);
    if (e == GW_OK)
        e = gw_tags_check(st->tags, st->ntags, max, msg, sizeof(msg));
    if (e == GW_OK && !st->tags && !(st->tags = calloc(1, sizeof(*st->tags))))
        e = GW_INTERNAL;
    if (e != GW_OK)
        gw_error(r, e, msg[0] ? msg : NULL);
    return e;
}

static void put_tagging_finish(gw_req *r)
{
    if (tag_body(r, r->op, GW_MAX_OBJECT_TAGS) == GW_OK)
        gw_offload(r, set_tags_work, set_tags_done);
}

/* A Put*Tagging request: its body (with the integrity header S3 requires) to memory. */
static void read_tag_body(gw_req *r, gw_finish_fn finish)
{
    tag_state *st;
    if (!gw_checksum_given(r)) {
        /* S3 requires an integrity check of this body (httpChecksum required in its model). */
        gw_error(r, GW_INVALID_REQUEST, "Missing required header for this request: Content-MD5");
        return;
    }
    if (!(st = calloc(1, sizeof(*st)))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = tag_state_free;
    gw_body_to_memory(r, TAGGING_XML_CAP, finish);
}

int gw_checksum_given(gw_req *r)
{
    static const char *const names[] = {"content-md5",           "x-amz-checksum-crc32",
                                        "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
                                        "x-amz-checksum-sha1",   "x-amz-checksum-sha256",
                                        "x-amz-trailer"};
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
        if (gw_hdr(r, names[i]))
            return 1;
    }
    return 0;
}

void gw_op_object_tagging(gw_req *r)
{
    const char *m = net_req_method(r->net);
    int get = strcmp(m, "GET") == 0 || r->head;
    int put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;

    if (!get && !put && !del) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket) || !gw_version_param_ok(r))
        return; /* NoSuchBucket sent, not the NoSuchKey a record read would give */
    if (get) {
        gw_offload_state(r, sizeof(tag_state), tag_state_free, read_work, get_tagging_done);
        return;
    }
    if (del) {
        gw_offload_state(r, sizeof(tag_state), tag_state_free, set_tags_work, set_tags_done);
        return;
    }
    read_tag_body(r, put_tagging_finish);
}

/* ---- GetObjectAttributes ---- */

enum { ATTR_ETAG = 1, ATTR_CHECKSUM = 2, ATTR_PARTS = 4, ATTR_CLASS = 8, ATTR_SIZE = 16 };

/* x-amz-object-attributes: a comma-separated list of names. 0 when empty or a name is unknown. */
static unsigned parse_attributes(const char *v)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"ETag", ATTR_ETAG},
                 {"Checksum", ATTR_CHECKSUM},
                 {"ObjectParts", ATTR_PARTS},
                 {"StorageClass", ATTR_CLASS},
                 {"ObjectSize", ATTR_SIZE}};
    unsigned set = 0;
    while (v && *v) {
        const char *end = strchr(v, ',');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        const char *s = v;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        unsigned bit = 0;
        for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
            if (strlen(names[i].name) == len && strncmp(names[i].name, s, len) == 0)
                bit = names[i].bit;
        }
        if (!bit)
            return 0;
        set |= bit;
        v = end ? end + 1 : s + len;
    }
    return set;
}

/* The ObjectParts element: parts after marker, at most max of them. */
static void xml_object_parts(gw_xml *x, const md_object *o, uint64_t marker, uint64_t max)
{
    size_t first = 0;
    int with_parts = o->nparts && o->parts[0].ck_alg != MD_CK_NONE;
    gw_xml_open(x, "ObjectParts");
    gw_xml_u64(x, "PartsCount", o->nparts);
    while (first < o->nparts && o->parts[first].number <= marker)
        first++;
    if (with_parts) {
        /* S3 lists the parts only of objects uploaded with checksums; cairn's always have one,
         * unless the record predates them. */
        gw_xml_u64(x, "PartNumberMarker", marker);
        size_t end = first + max < o->nparts ? first + max : o->nparts;
        if (end > first)
            gw_xml_u64(x, "NextPartNumberMarker", o->parts[end - 1].number);
        gw_xml_u64(x, "MaxParts", max);
        gw_xml_bool(x, "IsTruncated", end < o->nparts);
        for (size_t i = first; i < end; i++) {
            const md_part *p = &o->parts[i];
            char name[40];
            gw_xml_open(x, "Part");
            gw_xml_u64(x, "PartNumber", p->number);
            gw_xml_u64(x, "Size", p->size);
            snprintf(name, sizeof(name), "Checksum%s", gw_cksum_name(p->ck_alg));
            gw_xml_text(x, name, p->ck_value);
            gw_xml_close(x, "Part");
        }
    }
    gw_xml_close(x, "ObjectParts");
}

static cm_err xml_attributes(struct evbuffer *buf, const md_object *o, unsigned attrs,
                             uint64_t marker, uint64_t max)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "GetObjectAttributesResponse");
    if (attrs & ATTR_ETAG)
        gw_xml_text(&x, "ETag", o->etag); /* S3 gives it without quotes here */
    if ((attrs & ATTR_CHECKSUM) && o->ck_alg != MD_CK_NONE) {
        char name[40];
        snprintf(name, sizeof(name), "Checksum%s", gw_cksum_name(o->ck_alg));
        gw_xml_open(&x, "Checksum");
        gw_xml_text(&x, name, o->ck_value);
        gw_xml_text(&x, "ChecksumType",
                    o->ck_type == MD_CKTYPE_COMPOSITE ? "COMPOSITE" : "FULL_OBJECT");
        gw_xml_close(&x, "Checksum");
    }
    /* A multipart object's parts are numbered from 1; a single PUT's one part is number 0. */
    if ((attrs & ATTR_PARTS) && o->nparts && o->parts[0].number > 0)
        xml_object_parts(&x, o, marker, max);
    if (attrs & ATTR_CLASS)
        gw_xml_text(&x, "StorageClass", o->storage_class[0] ? o->storage_class : "STANDARD");
    if (attrs & ATTR_SIZE)
        gw_xml_u64(&x, "ObjectSize", o->size);
    gw_xml_close(&x, "GetObjectAttributesResponse");
    return gw_xml_status(&x);
}

static void attributes_done(gw_req *r)
{
    tag_state *st = r->op;
    const md_object *o = &st->obj;
    uint64_t max, marker;
    unsigned attrs = parse_attributes(gw_hdr(r, "x-amz-object-attributes"));
    char lm[40];

    if (st->s3err != GW_OK) {
        gw_error(r, st->s3err, NULL);
        return;
    }
    gw_s3err e = gw_cond_check(gw_hdr(r, "if-match"), gw_hdr(r, "if-none-match"),
                               gw_hdr(r, "if-modified-since"), gw_hdr(r, "if-unmodified-since"),
                               o->etag, o->mtime_ms, 0);
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    gw_parse_count(gw_hdr(r, "x-amz-max-parts"), 1000, 1000, &max);
    gw_parse_count(gw_hdr(r, "x-amz-part-number-marker"), 0, GW_MAX_PARTS, &marker);
    struct evbuffer *buf = evbuffer_new();
    if (!buf || xml_attributes(buf, o, attrs, marker, max) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
    } else {
        cm_time_rfc1123((time_t)(o->mtime_ms / 1000), lm);
        gw_resp_start(r, 200, (int64_t)evbuffer_get_length(buf));
        net_resp_header(r->net, "Content-Type", "application/xml");
        net_resp_header(r->net, "Last-Modified", lm);
        net_resp_write_buffer(r->net, buf);
        net_resp_end(r->net);
    }
    if (buf)
        evbuffer_free(buf);
}

void gw_op_object_attributes(gw_req *r)
{
    uint64_t v;

    if (strcmp(net_req_method(r->net), "GET") != 0 || r->head) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (!parse_attributes(gw_hdr(r, "x-amz-object-attributes"))) {
        gw_error(r, GW_INVALID_ARGUMENT,
                 gw_hdr(r, "x-amz-object-attributes")
                     ? "Invalid attribute name specified."
                     : "The x-amz-object-attributes header specifying the attributes to be "
                       "retrieved is either missing or empty");
        return;
    }
    if (gw_parse_count(gw_hdr(r, "x-amz-max-parts"), 1000, 1000, &v) != GW_OK ||
        gw_parse_count(gw_hdr(r, "x-amz-part-number-marker"), 0, GW_MAX_PARTS, &v) != GW_OK) {
        gw_error(r, GW_INVALID_ARGUMENT, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket) || !gw_version_param_ok(r))
        return;
    gw_offload_state(r, sizeof(tag_state), tag_state_free, read_work, attributes_done);
}

/* ---- Bucket tagging ---- */

static void bucket_tags_work(gw_req *r)
{
    tag_state *st = r->op;
    const gw_bucket_ns *ns = &r->g->ns;
    st->err = ns->tags_set ? ns->tags_set(ns->arg, r->bucket, st->tags, st->ntags)
                           : md_bucket_tags_set(r->g->md, r->bucket, st->tags, st->ntags);
}

static void bucket_tags_done(gw_req *r)
{
    tag_state *st = r->op;
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, 204, -1);
    net_resp_end(r->net);
}

static void put_bucket_tagging_finish(gw_req *r)
{
    if (tag_body(r, r->op, GW_MAX_BUCKET_TAGS) == GW_OK)
        gw_offload(r, bucket_tags_work, bucket_tags_done);
}

static void get_bucket_tagging(gw_req *r)
{
    md_meta *tags = NULL;
    size_t n = 0;
    const gw_bucket_ns *ns = &r->g->ns;
    cm_err err = ns->tags_get ? ns->tags_get(ns->arg, r->bucket, &tags, &n)
                              : md_bucket_tags_get(r->g->md, r->bucket, &tags, &n);
    struct evbuffer *buf = NULL;
    if (err == CM_OK && n == 0)
        gw_error(r, GW_NO_SUCH_TAG_SET, NULL);
    else if (err != CM_OK)
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
    else if (!(buf = evbuffer_new()) || gw_xml_tagging(buf, tags, n) != CM_OK)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
    md_meta_free(tags, n);
}

void gw_op_bucket_tagging(gw_req *r)
{
    const char *m = net_req_method(r->net);

    if (strcmp(m, "GET") == 0 || r->head) {
        get_bucket_tagging(r); /* one read transaction: no worker needed */
        return;
    }
    if (strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (gw_meta_remote(r->g) && !r->g->ns.tags_set) {
        gw_error(r, GW_UNSUPPORTED,
                 "Bucket tags are not available on a cluster node without a bucket namespace "
                 "that keeps them");
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        gw_offload_state(r, sizeof(tag_state), tag_state_free, bucket_tags_work, bucket_tags_done);
        return;
    }
    read_tag_body(r, put_bucket_tagging_finish);
}
