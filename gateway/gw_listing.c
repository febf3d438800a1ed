/*
 * gw_listing.c - the S3 response documents: the four listings (ListObjects V1 and V2,
 * ListObjectVersions, ListMultipartUploads), ListParts, ListBuckets and the small results of
 * multipart, copy, batch delete, location and versioning.
 *
 * Design: each function writes one whole document through the gw_xml writer from the records
 * meta/ returned plus the parameters the handler got, so a handler is "query the store, call
 * one function, send the buffer". Element names come from botocore's S3 model; the order of the
 * top-level elements follows AWS's own responses (request echo first, then entries: Contents
 * before CommonPrefixes), which every SDK parser accepts.
 *
 * Encoding: with encoding-type=url, the fields listed in gw_wire.h are percent-encoded with
 * cm_url_encode keeping '/' before XML escaping (which then has nothing left to escape).
 *
 * Continuation tokens: standard base64 of the key to resume after; opaque to clients, and any
 * string that does not decode back to a key is InvalidArgument.
 *
 * Threading: pure functions over caller-owned buffers.
 */
#include "gw_wire.h"

#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

/* The stored class, or STANDARD (never stored: see docs/s3-headers.md). */
static const char *storage_class(const md_object *o)
{
    return o->storage_class[0] ? o->storage_class : "STANDARD";
}

/* <name>value</name>, percent-encoded first when enc is set; NULL value = empty element. */
static void text_enc(gw_xml *x, const char *name, const char *s, int enc)
{
    if (!enc || !s) {
        gw_xml_text(x, name, s);
        return;
    }
    size_t len = strlen(s), cap = 3 * len + 1;
    char small[256];
    char *buf = cap <= sizeof(small) ? small : malloc(cap);
    if (!buf) {
        x->failed = 1;
        return;
    }
    size_t n = cm_url_encode(s, len, 1, buf, cap);
    gw_xml_text_n(x, name, buf, n);
    if (buf != small)
        free(buf);
}

/* Only when s is given. */
static void opt_enc(gw_xml *x, const char *name, const char *s, int enc)
{
    if (s)
        text_enc(x, name, s, enc);
}

static void owner(gw_xml *x, const char *tag, const char *id, const char *name)
{
    gw_xml_open(x, tag);
    gw_xml_text(x, "ID", id);
    gw_xml_text(x, "DisplayName", name ? name : id);
    gw_xml_close(x, tag);
}

static void common_prefix(gw_xml *x, const char *prefix, int enc)
{
    gw_xml_open(x, "CommonPrefixes");
    text_enc(x, "Prefix", prefix, enc);
    gw_xml_close(x, "CommonPrefixes");
}

/* Checksum<alg> element, e.g. <ChecksumCRC32C>base64</ChecksumCRC32C>. */
static void checksum(gw_xml *x, md_cksum_alg alg, const char *value)
{
    const char *name = gw_cksum_name(alg);
    if (!name || !value || !*value)
        return;
    char tag[32] = "Checksum";
    size_t n = strlen(name);
    memcpy(tag + 8, name, n + 1);
    gw_xml_text(x, tag, value);
}

static void contents(gw_xml *x, const gw_list_params *p, const md_list_entry *e, int with_owner)
{
    gw_xml_open(x, "Contents");
    text_enc(x, "Key", e->key, p->encoding_url);
    gw_xml_time(x, "LastModified", e->obj.mtime_ms);
    gw_xml_etag(x, "ETag", e->obj.etag);
    if (gw_cksum_name(e->obj.ck_alg))
        gw_xml_text(x, "ChecksumAlgorithm", gw_cksum_name(e->obj.ck_alg));
    gw_xml_u64(x, "Size", e->obj.size);
    gw_xml_text(x, "StorageClass", storage_class(&e->obj));
    if (with_owner && p->owner_id)
        owner(x, "Owner", p->owner_id, p->owner_name);
    gw_xml_close(x, "Contents");
}

/* Contents for every live object, then CommonPrefixes. */
static void entries(gw_xml *x, const gw_list_params *p, const md_list_result *res, int with_owner)
{
    for (size_t i = 0; i < res->n; i++) {
        const md_list_entry *e = &res->entries[i];
        if (!e->is_prefix && !e->obj.delete_marker)
            contents(x, p, e, with_owner);
    }
    for (size_t i = 0; i < res->n; i++) {
        if (res->entries[i].is_prefix)
            common_prefix(x, res->entries[i].key, p->encoding_url);
    }
}

static size_t key_count(const md_list_result *res)
{
    size_t count = 0;
    for (size_t i = 0; i < res->n; i++)
        count += res->entries[i].is_prefix || !res->entries[i].obj.delete_marker;
    return count;
}

cm_err gw_xml_list_v2(struct evbuffer *buf, const gw_list_params *p, const md_list_result *res)
{
    gw_xml x;
    int enc = p->encoding_url;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListBucketResult");
    gw_xml_text(&x, "Name", p->bucket);
    text_enc(&x, "Prefix", p->prefix ? p->prefix : "", enc);
    opt_enc(&x, "Delimiter", p->delimiter, enc);
    gw_xml_u64(&x, "MaxKeys", p->max_keys);
    if (enc)
        gw_xml_text(&x, "EncodingType", "url");
    gw_xml_u64(&x, "KeyCount", key_count(res));
    opt_enc(&x, "ContinuationToken", p->continuation_token, 0);
    if (res->truncated && res->next_marker) {
        char *tok = gw_token_encode(res->next_marker);
        if (!tok)
            x.failed = 1;
        gw_xml_text(&x, "NextContinuationToken", tok);
        free(tok);
    }
    opt_enc(&x, "StartAfter", p->start_after, enc);
    gw_xml_bool(&x, "IsTruncated", res->truncated);
    entries(&x, p, res, p->fetch_owner);
    gw_xml_close(&x, "ListBucketResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_list_v1(struct evbuffer *buf, const gw_list_params *p, const md_list_result *res)
{
    gw_xml x;
    int enc = p->encoding_url;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListBucketResult");
    gw_xml_text(&x, "Name", p->bucket);
    text_enc(&x, "Prefix", p->prefix ? p->prefix : "", enc);
    text_enc(&x, "Marker", p->marker ? p->marker : "", enc);
    if (res->truncated && res->next_marker && p->delimiter && *p->delimiter)
        text_enc(&x, "NextMarker", res->next_marker, enc);
    gw_xml_u64(&x, "MaxKeys", p->max_keys);
    opt_enc(&x, "Delimiter", p->delimiter, enc);
    if (enc)
        gw_xml_text(&x, "EncodingType", "url");
    gw_xml_bool(&x, "IsTruncated", res->truncated);
    entries(&x, p, res, 1);
    gw_xml_close(&x, "ListBucketResult");
    return gw_xml_status(&x);
}

static const char *version_of(const md_object *o)
{
    return o->version_id[0] ? o->version_id : "null";
}

static void version_entry(gw_xml *x, const gw_list_params *p, const md_list_entry *e)
{
    const md_object *o = &e->obj;
    const char *tag = o->delete_marker ? "DeleteMarker" : "Version";
    gw_xml_open(x, tag);
    text_enc(x, "Key", e->key, p->encoding_url);
    gw_xml_text(x, "VersionId", version_of(o));
    gw_xml_bool(x, "IsLatest", e->is_latest);
    gw_xml_time(x, "LastModified", o->mtime_ms);
    if (!o->delete_marker) {
        gw_xml_etag(x, "ETag", o->etag);
        if (gw_cksum_name(o->ck_alg))
            gw_xml_text(x, "ChecksumAlgorithm", gw_cksum_name(o->ck_alg));
        gw_xml_u64(x, "Size", o->size);
        gw_xml_text(x, "StorageClass", storage_class(o));
    }
    if (p->owner_id)
        owner(x, "Owner", p->owner_id, p->owner_name);
    gw_xml_close(x, tag);
}

cm_err gw_xml_list_versions(struct evbuffer *buf, const gw_list_params *p,
                            const md_list_result *res)
{
    gw_xml x;
    int enc = p->encoding_url;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListVersionsResult");
    gw_xml_text(&x, "Name", p->bucket);
    text_enc(&x, "Prefix", p->prefix ? p->prefix : "", enc);
    text_enc(&x, "KeyMarker", p->key_marker ? p->key_marker : "", enc);
    gw_xml_text(&x, "VersionIdMarker", p->version_id_marker ? p->version_id_marker : "");
    if (res->truncated && res->next_marker) {
        text_enc(&x, "NextKeyMarker", res->next_marker, enc);
        const md_list_entry *last = res->n ? &res->entries[res->n - 1] : NULL;
        if (res->next_version_marker)
            gw_xml_text(&x, "NextVersionIdMarker", res->next_version_marker);
        else if (last && !last->is_prefix)
            gw_xml_text(&x, "NextVersionIdMarker", version_of(&last->obj));
    }
    gw_xml_u64(&x, "MaxKeys", p->max_keys);
    opt_enc(&x, "Delimiter", p->delimiter, enc);
    if (enc)
        gw_xml_text(&x, "EncodingType", "url");
    gw_xml_bool(&x, "IsTruncated", res->truncated);
    for (size_t i = 0; i < res->n; i++) {
        if (!res->entries[i].is_prefix)
            version_entry(&x, p, &res->entries[i]);
    }
    for (size_t i = 0; i < res->n; i++) {
        if (res->entries[i].is_prefix)
            common_prefix(&x, res->entries[i].key, enc);
    }
    gw_xml_close(&x, "ListVersionsResult");
    return gw_xml_status(&x);
}

static void upload_entry(gw_xml *x, const md_upload *u, int enc)
{
    gw_xml_open(x, "Upload");
    text_enc(x, "Key", u->key, enc);
    gw_xml_text(x, "UploadId", u->upload_id);
    owner(x, "Initiator", u->owner, NULL);
    owner(x, "Owner", u->owner, NULL);
    gw_xml_text(x, "StorageClass", storage_class(&u->tmpl));
    gw_xml_time(x, "Initiated", u->initiated_ms);
    if (gw_cksum_name(u->tmpl.ck_alg))
        gw_xml_text(x, "ChecksumAlgorithm", gw_cksum_name(u->tmpl.ck_alg));
    gw_xml_close(x, "Upload");
}

cm_err gw_xml_list_uploads(struct evbuffer *buf, const gw_uploads_params *p,
                           const md_upload_list *res)
{
    gw_xml x;
    int enc = p->encoding_url;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListMultipartUploadsResult");
    gw_xml_text(&x, "Bucket", p->bucket);
    text_enc(&x, "KeyMarker", p->key_marker ? p->key_marker : "", enc);
    gw_xml_text(&x, "UploadIdMarker", p->upload_id_marker ? p->upload_id_marker : "");
    if (res->truncated) {
        opt_enc(&x, "NextKeyMarker", res->next_key_marker, enc);
        opt_enc(&x, "NextUploadIdMarker", res->next_upload_id_marker, 0);
    }
    opt_enc(&x, "Delimiter", p->delimiter, enc);
    text_enc(&x, "Prefix", p->prefix ? p->prefix : "", enc);
    gw_xml_u64(&x, "MaxUploads", p->max_uploads);
    if (enc)
        gw_xml_text(&x, "EncodingType", "url");
    gw_xml_bool(&x, "IsTruncated", res->truncated);
    for (size_t i = 0; i < res->n; i++)
        upload_entry(&x, &res->uploads[i], enc);
    for (size_t i = 0; i < res->nprefixes; i++)
        common_prefix(&x, res->prefixes[i], enc);
    gw_xml_close(&x, "ListMultipartUploadsResult");
    return gw_xml_status(&x);
}

static void part_entry(gw_xml *x, const md_part *pt)
{
    gw_xml_open(x, "Part");
    gw_xml_u64(x, "PartNumber", pt->number);
    gw_xml_time(x, "LastModified", pt->mtime_ms);
    gw_xml_etag(x, "ETag", pt->etag);
    gw_xml_u64(x, "Size", pt->size);
    checksum(x, pt->ck_alg, pt->ck_value);
    gw_xml_close(x, "Part");
}

cm_err gw_xml_list_parts(struct evbuffer *buf, const gw_parts_params *p, const md_part *parts,
                         size_t n, int truncated)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListPartsResult");
    gw_xml_text(&x, "Bucket", p->bucket);
    gw_xml_text(&x, "Key", p->key);
    gw_xml_text(&x, "UploadId", p->upload_id);
    if (p->owner_id) {
        owner(&x, "Initiator", p->owner_id, NULL);
        owner(&x, "Owner", p->owner_id, NULL);
    }
    gw_xml_text(&x, "StorageClass",
                p->storage_class && p->storage_class[0] ? p->storage_class : "STANDARD");
    gw_xml_u64(&x, "PartNumberMarker", p->part_number_marker);
    gw_xml_u64(&x, "NextPartNumberMarker", n ? parts[n - 1].number : p->part_number_marker);
    gw_xml_u64(&x, "MaxParts", p->max_parts);
    gw_xml_bool(&x, "IsTruncated", truncated);
    for (size_t i = 0; i < n; i++)
        part_entry(&x, &parts[i]);
    if (gw_cksum_name(p->ck_alg))
        gw_xml_text(&x, "ChecksumAlgorithm", gw_cksum_name(p->ck_alg));
    gw_xml_close(&x, "ListPartsResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_list_buckets(struct evbuffer *buf, const char *owner_id, const char *owner_name,
                           const md_bucket *buckets, size_t n)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ListAllMyBucketsResult");
    owner(&x, "Owner", owner_id, owner_name);
    gw_xml_open(&x, "Buckets");
    for (size_t i = 0; i < n; i++) {
        gw_xml_open(&x, "Bucket");
        gw_xml_text(&x, "Name", buckets[i].name);
        gw_xml_time(&x, "CreationDate", buckets[i].created_ms);
        gw_xml_close(&x, "Bucket");
    }
    gw_xml_close(&x, "Buckets");
    gw_xml_close(&x, "ListAllMyBucketsResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_initiate(struct evbuffer *buf, const char *bucket, const char *key,
                       const char *upload_id)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "InitiateMultipartUploadResult");
    gw_xml_text(&x, "Bucket", bucket);
    gw_xml_text(&x, "Key", key);
    gw_xml_text(&x, "UploadId", upload_id);
    gw_xml_close(&x, "InitiateMultipartUploadResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_complete(struct evbuffer *buf, const char *location, const char *bucket,
                       const char *key, const char *etag, md_cksum_alg ck_alg,
                       md_cksum_type ck_type, const char *ck_value)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "CompleteMultipartUploadResult");
    gw_xml_text(&x, "Location", location);
    gw_xml_text(&x, "Bucket", bucket);
    gw_xml_text(&x, "Key", key);
    gw_xml_etag(&x, "ETag", etag);
    if (gw_cksum_name(ck_alg) && ck_value && *ck_value) {
        checksum(&x, ck_alg, ck_value);
        gw_xml_text(&x, "ChecksumType",
                    ck_type == MD_CKTYPE_COMPOSITE ? "COMPOSITE" : "FULL_OBJECT");
    }
    gw_xml_close(&x, "CompleteMultipartUploadResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_copy_result(struct evbuffer *buf, int part, const char *etag, int64_t mtime_ms,
                          md_cksum_alg ck_alg, const char *ck_value)
{
    const char *root = part ? "CopyPartResult" : "CopyObjectResult";
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, root);
    gw_xml_etag(&x, "ETag", etag);
    gw_xml_time(&x, "LastModified", mtime_ms);
    checksum(&x, ck_alg, ck_value);
    gw_xml_close(&x, root);
    return gw_xml_status(&x);
}

cm_err gw_xml_delete_result(struct evbuffer *buf, int quiet, const gw_delete_outcome *o, size_t n)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "DeleteResult");
    for (size_t i = 0; i < n; i++) {
        if (o[i].err == GW_OK && quiet)
            continue;
        const char *tag = o[i].err == GW_OK ? "Deleted" : "Error";
        gw_xml_open(&x, tag);
        gw_xml_text(&x, "Key", o[i].key);
        if (o[i].version_id)
            gw_xml_text(&x, "VersionId", o[i].version_id);
        if (o[i].err == GW_OK && o[i].delete_marker) {
            gw_xml_bool(&x, "DeleteMarker", 1);
            if (o[i].marker_version_id[0])
                gw_xml_text(&x, "DeleteMarkerVersionId", o[i].marker_version_id);
        }
        if (o[i].err != GW_OK) {
            const char *msg =
                o[i].message && *o[i].message ? o[i].message : gw_s3err_message(o[i].err);
            gw_xml_text(&x, "Code", gw_s3err_code(o[i].err));
            gw_xml_text(&x, "Message", msg);
        }
        gw_xml_close(&x, tag);
    }
    gw_xml_close(&x, "DeleteResult");
    return gw_xml_status(&x);
}

cm_err gw_xml_location(struct evbuffer *buf, const char *region)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "LocationConstraint");
    if (region && strcmp(region, "us-east-1") != 0)
        gw_xml_escape(&x, region, strlen(region));
    gw_xml_close(&x, "LocationConstraint");
    return gw_xml_status(&x);
}

cm_err gw_xml_versioning(struct evbuffer *buf, gw_versioning status)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "VersioningConfiguration");
    if (status == GW_VERS_ENABLED)
        gw_xml_text(&x, "Status", "Enabled");
    else if (status == GW_VERS_SUSPENDED)
        gw_xml_text(&x, "Status", "Suspended");
    gw_xml_close(&x, "VersioningConfiguration");
    return gw_xml_status(&x);
}

char *gw_token_encode(const char *marker)
{
    size_t len = strlen(marker);
    char *out = malloc(cm_base64_len(len) + 1);
    if (out)
        cm_base64_encode(marker, len, out);
    return out;
}

gw_s3err gw_token_decode(const char *token, char **marker)
{
    *marker = NULL;
    size_t len = strlen(token), n;
    if (len == 0 || len > GW_TOKEN_MAX)
        return GW_INVALID_ARGUMENT;
    char *out = malloc(len + 1); /* decoded is always shorter than the base64 */
    if (!out)
        return GW_INTERNAL;
    if (cm_base64_decode(token, len, out, len, &n) != CM_OK || n == 0 || memchr(out, 0, n)) {
        free(out);
        return GW_INVALID_ARGUMENT;
    }
    out[n] = '\0';
    *marker = out;
    return GW_OK;
}
