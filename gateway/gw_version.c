/*
 * gw_version.c - versioning on the wire (docs/versioning.md): PutBucketVersioning, the
 * ?versionId parameter, and the x-amz-version-id / x-amz-delete-marker headers.
 *
 * The versions themselves live in the metadata store (meta/md_version.c); the handlers of
 * gw_object.c, gw_copy.c, gw_multipart.c, gw_bucket.c and gw_tagops.c pass the version a request
 * names and report the version a write made with the helpers here. The headers are set on the
 * request (gw_req.resp_version_id, resp_delete_marker) and go out with whatever answer follows,
 * errors included, as S3 sends them on a 404/405 for a delete marker.
 *
 * PutBucketVersioning: Status Enabled or Suspended (a bucket never goes back to unversioned);
 * MfaDelete Enabled is refused (501: no MFA devices here), Disabled accepted. The state is
 * committed on a worker (an fsync). On a cluster node the state is the bucket's "versioning"
 * member of the etcd bucket document (gw_bucket_ns versioning_set), and its versions replicated
 * records (repl/rp_version.h).
 *
 * Threading: loop handlers; the commit runs on a gateway worker.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSIONING_XML_CAP (16u * 1024)

static int is_null(const char *vid)
{
    return !vid[0] || strcmp(vid, "null") == 0;
}

int gw_version_param_ok(gw_req *r)
{
    const char *vid = gw_query_get(&r->q, "versionId");
    if (!vid || md_vid_valid(vid))
        return 1;
    gw_error(r, GW_INVALID_ARGUMENT, "Invalid version id specified");
    return 0;
}

void gw_version_answer(gw_req *r, const md_vres *res)
{
    if (res->versioned)
        snprintf(r->resp_version_id, sizeof(r->resp_version_id), "%s", res->version_id);
    r->resp_delete_marker = res->delete_marker;
}

int gw_version_read_answer(gw_req *r, const md_object *o, const char *vid)
{
    if (vid && (is_null(vid) ? !is_null(o->version_id) : strcmp(vid, o->version_id) != 0)) {
        gw_error(r, GW_NO_SUCH_VERSION, NULL); /* a cluster bucket never versioned: null only */
        return 1;
    }
    if (vid || !is_null(o->version_id))
        snprintf(r->resp_version_id, sizeof(r->resp_version_id), "%.*s", MD_VID_LEN,
                 is_null(o->version_id) ? "null" : o->version_id);
    if (!o->delete_marker)
        return 0;
    r->resp_delete_marker = 1;
    if (vid)
        gw_error(r, GW_METHOD_NOT_ALLOWED,
                 "The specified method is not allowed against a "
                 "delete marker.");
    else
        gw_error(r, GW_NO_SUCH_KEY, NULL);
    return 1;
}

typedef struct {
    uint8_t state;
    cm_err err;
} versioning_state;

static void versioning_work(gw_req *r)
{
    versioning_state *st = r->op;
    const gw_bucket_ns *ns = &r->g->ns;
    st->err = gw_meta_remote(r->g) ? ns->versioning_set(ns->arg, r->bucket, st->state)
                                   : md_bucket_set_versioning(r->g->md, r->bucket, st->state);
}

static void versioning_done(gw_req *r)
{
    versioning_state *st = r->op;
    if (st->err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
    else if (st->err == CM_ERR_LOCKED) /* md_bucket_set_versioning: Object Lock stays Enabled */
        gw_error(r, GW_INVALID_BUCKET_STATE,
                 "An Object Lock configuration is present on this bucket, so the versioning "
                 "state cannot be changed.");
    else if (st->err != CM_OK)
        gw_error_cm(r, st->err);
    else {
        gw_resp_start(r, 200, 0);
        net_resp_end(r->net);
    }
}

static void versioning_finish(gw_req *r)
{
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    gw_versioning status;
    int mfa = 0;
    gw_s3err e = gw_parse_versioning(xml ? xml : "", len, VERSIONING_XML_CAP, &status, &mfa);
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (mfa) {
        gw_error(r, GW_UNSUPPORTED, "MFA Delete is not supported: no MFA devices on this server");
        return;
    }
    if (status == GW_VERS_UNSET) {
        gw_error(r, GW_MALFORMED_XML, "The versioning configuration needs a Status");
        return;
    }
    if (gw_meta_remote(r->g) && !r->g->ns.versioning_set) {
        gw_error(r, GW_UNSUPPORTED, "Bucket versioning needs the cluster's bucket namespace");
        return;
    }
    versioning_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    st->state = status == GW_VERS_ENABLED ? MD_VERS_ENABLED : MD_VERS_SUSPENDED;
    r->op = st;
    r->op_free = free;
    gw_offload(r, versioning_work, versioning_done);
}

void gw_put_versioning(gw_req *r)
{
    gw_body_to_memory(r, VERSIONING_XML_CAP, versioning_finish);
}
