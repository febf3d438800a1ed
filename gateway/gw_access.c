/*
 * gw_access.c - the access subresources (docs/users.md): Put/Get/DeleteBucketPolicy,
 * GetBucketPolicyStatus, Put/Get/DeletePublicAccessBlock, Put/Get/DeleteBucketOwnershipControls,
 * Put/GetBucketAcl and Put/GetObjectAcl with canned ACLs, and the x-amz-acl of writes.
 *
 * Where they live: the policy JSON in the users database (md_bucket_policy_*), tied to the
 * bucket's creation time; the canned ACL, PublicAccessBlock flags and object ownership in the
 * bucket record (md_bucket_access_set); an object's canned ACL in its record (OT_ACL). ACLs are
 * canned only: a grant document in a body is NotImplemented (send x-amz-acl). With the default
 * ownership, BucketOwnerEnforced, ACLs are disabled as in S3: an ACL other than private /
 * bucket-owner-full-control is AccessControlListNotSupported.
 *
 * Every change is a metadata commit run on a worker. On a cluster node the bucket's settings and
 * policy are members of its record in the namespace (gw_bucket_ns access_set / policy_set, on the
 * worker; reads from the follower's memory: gw_bucket_access, gw_bucket_policy); an object's ACL
 * is in its replicated record: GetObjectAcl reads it at quorum on a worker, PutObjectAcl writes
 * the record read with the new ACL as the successor of exactly that version (through the
 * partition leader, keeping the lock fields it reads: rp_object_swap_keep_lock). A
 * cluster node without those namespace functions answers 501 to every change and "not
 * configured" to reads.
 */
#include "gw_int.h"
#include "gw_policy.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"
#include "rp.h"

#define ACCESS_XML_CAP (64u * 1024)
#define CLUSTER_MSG "bucket policies, ACLs and access blocks are not cluster-wide on this node"
#define XSI "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
#define ALL_USERS "http://acs.amazonaws.com/groups/global/AllUsers"
#define AUTH_USERS "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"

static const char *const ownership_names[] = {"BucketOwnerEnforced", "BucketOwnerPreferred",
                                              "ObjectWriter"};

typedef struct {
    md_bucket b; /* the bucket as read, with the new settings */
    char *json;  /* PutBucketPolicy: the policy */
    size_t len;
    int policy;      /* the change is the policy (else the settings in b named by fields) */
    unsigned fields; /* MD_ACCESS_* */
    char *key;       /* PutObjectAcl: the object */
    uint8_t acl;
    cm_err err;
} access_state;

static void access_state_free(void *p)
{
    access_state *st = p;
    if (!st)
        return;
    free(st->json);
    free(st->key);
    free(st);
}

static void no_content(gw_req *r)
{
    gw_resp_start(r, 204, -1);
    net_resp_end(r->net);
}

/* ---- canned ACLs ---- */

gw_s3err gw_acl_from_request(gw_req *r, uint8_t own, uint8_t pab, uint8_t *acl)
{
    const char *v = gw_hdr(r, "x-amz-acl");
    *acl = MD_ACL_PRIVATE;
    if (!v || strcasecmp(v, "private") == 0 || strcasecmp(v, "bucket-owner-full-control") == 0)
        return GW_OK;
    if (strcasecmp(v, "public-read") == 0)
        *acl = MD_ACL_PUBLIC_READ;
    else if (strcasecmp(v, "public-read-write") == 0)
        *acl = MD_ACL_PUBLIC_READ_WRITE;
    else if (strcasecmp(v, "authenticated-read") == 0)
        *acl = MD_ACL_AUTHENTICATED_READ;
    else
        return GW_INVALID_ARGUMENT;
    if (own == MD_OWN_ENFORCED)
        return GW_ACL_NOT_SUPPORTED;
    if ((pab & MD_PAB_BLOCK_ACLS) && *acl != MD_ACL_AUTHENTICATED_READ)
        return GW_ACCESS_DENIED; /* BlockPublicAcls refuses a public ACL */
    return GW_OK;
}

static void grant(gw_xml *x, struct evbuffer *buf, const char *group, const char *id,
                  const char *perm)
{
    evbuffer_add_printf(buf, "<Grant><Grantee " XSI " xsi:type=\"%s\">",
                        group ? "Group" : "CanonicalUser");
    if (group) {
        gw_xml_text(x, "URI", group);
    } else {
        gw_xml_text(x, "ID", id);
        gw_xml_text(x, "DisplayName", id);
    }
    gw_xml_close(x, "Grantee");
    gw_xml_text(x, "Permission", perm);
    gw_xml_close(x, "Grant");
}

void gw_send_acl(gw_req *r, const char *owner, uint8_t acl)
{
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    if (!buf) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "AccessControlPolicy");
    gw_xml_open(&x, "Owner");
    gw_xml_text(&x, "ID", owner);
    gw_xml_text(&x, "DisplayName", owner);
    gw_xml_close(&x, "Owner");
    gw_xml_open(&x, "AccessControlList");
    grant(&x, buf, NULL, owner, "FULL_CONTROL");
    if (acl == MD_ACL_PUBLIC_READ || acl == MD_ACL_PUBLIC_READ_WRITE)
        grant(&x, buf, ALL_USERS, NULL, "READ");
    if (acl == MD_ACL_PUBLIC_READ_WRITE)
        grant(&x, buf, ALL_USERS, NULL, "WRITE");
    if (acl == MD_ACL_AUTHENTICATED_READ)
        grant(&x, buf, AUTH_USERS, NULL, "READ");
    gw_xml_close(&x, "AccessControlList");
    gw_xml_close(&x, "AccessControlPolicy");
    gw_send_doc(r, buf, gw_xml_status(&x));
}

/* PUT ?acl: the canned ACL of x-amz-acl; a grant document is not served. */
static gw_s3err put_acl_value(gw_req *r, const md_bucket *b, uint8_t *acl)
{
    if (!gw_hdr(r, "x-amz-acl")) {
        int64_t cl = net_req_content_length(r->net);
        return cl > 0 || net_req_chunked(r->net) ? GW_UNSUPPORTED : GW_MALFORMED_XML;
    }
    return gw_acl_from_request(r, b->ownership, b->pab, acl);
}

/* ---- commits (workers) ---- */

static void access_work(gw_req *r)
{
    access_state *st = r->op;
    const gw_bucket_ns *ns = &r->g->ns;
    if (st->policy) {
        st->err = ns->policy_set ? ns->policy_set(ns->arg, st->b.name, st->json)
                                 : md_bucket_policy_set(r->g->md, st->b.name, st->b.created_ms,
                                                        st->json, st->len);
        gw_pcache_forget(r->g->pcache, st->b.name); /* even on failure: the store decides */
    } else if (ns->access_set) {
        st->err = ns->access_set(ns->arg, st->b.name, &st->b, st->fields);
    } else
        st->err = md_bucket_access_set(r->g->md, st->b.name, &st->b, st->fields);
}

static void access_done(gw_req *r)
{
    access_state *st = r->op;
    if (st->err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
    else if (st->err != CM_OK)
        gw_error_cm(r, st->err);
    else if (strcmp(net_req_method(r->net), "DELETE") == 0 || st->policy)
        no_content(r);
    else {
        gw_resp_start(r, 200, 0);
        net_resp_end(r->net);
    }
}

/* Offload the change described by st (taken). */
static void commit(gw_req *r, access_state *st)
{
    r->op = st;
    r->op_free = access_state_free;
    gw_offload(r, access_work, access_done);
}

static access_state *state_for(gw_req *r, const md_bucket *b)
{
    access_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return NULL;
    }
    st->b = *b;
    return st;
}

/* ---- policy ---- */

static void put_policy_finish(gw_req *r)
{
    access_state *st = r->op;
    size_t len = evbuffer_get_length(r->mem);
    const char *json = (const char *)evbuffer_pullup(r->mem, -1);
    char msg[200];
    gw_policy *p = NULL;
    gw_s3err e = gw_policy_parse(json ? json : "", len, st->b.name, &p, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    int pub = gw_policy_is_public(p);
    gw_policy_free(p);
    if (pub && (st->b.pab & MD_PAB_BLOCK_POLICY)) {
        gw_error(r, GW_ACCESS_DENIED, "BlockPublicPolicy refuses a public bucket policy");
        return;
    }
    if (!(st->json = malloc(len + 1))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    memcpy(st->json, json, len);
    st->json[len] = '\0';
    st->len = len;
    st->policy = 1;
    gw_offload(r, access_work, access_done); /* st is r->op (read_body) */
}

static void get_policy(gw_req *r, const md_bucket *b, int status)
{
    char *json = NULL, msg[160];
    size_t len = 0;
    cm_err e = gw_bucket_policy(r->g, b, &json, &len);
    if (e != CM_OK) {
        gw_error(r, e == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET_POLICY : gw_s3err_from_cm(e), NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        free(json);
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if (status) { /* GetBucketPolicyStatus */
        gw_policy *p = NULL;
        gw_xml x;
        int pub = gw_policy_parse(json, len, b->name, &p, msg, sizeof(msg)) == GW_OK &&
                  gw_policy_is_public(p);
        gw_policy_free(p);
        gw_xml_init(&x, buf);
        gw_xml_begin(&x);
        gw_xml_open_root(&x, "PolicyStatus");
        gw_xml_text(&x, "IsPublic", pub ? "true" : "false");
        gw_xml_close(&x, "PolicyStatus");
        free(json);
        gw_send_doc(r, buf, gw_xml_status(&x));
        return;
    }
    evbuffer_add(buf, json, len);
    free(json);
    gw_resp_start(r, 200, (int64_t)evbuffer_get_length(buf));
    net_resp_header(r->net, "Content-Type", "application/json");
    net_resp_write_buffer(r->net, buf);
    net_resp_end(r->net);
    evbuffer_free(buf);
}

/* ---- public access block and ownership ---- */

static void get_pab(gw_req *r, const md_bucket *b)
{
    static const char *const names[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                        "RestrictPublicBuckets"};
    if (!(b->pab & MD_PAB_SET)) {
        gw_error(r, GW_NO_SUCH_PAB, NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "PublicAccessBlockConfiguration");
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++)
        gw_xml_text(&x, names[i], b->pab & (1u << i) ? "true" : "false");
    gw_xml_close(&x, "PublicAccessBlockConfiguration");
    gw_send_doc(r, buf, gw_xml_status(&x));
}

static void put_pab_finish(gw_req *r)
{
    access_state *st = r->op;
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    uint8_t flags;
    gw_s3err e = gw_parse_public_access_block(xml ? xml : "", len, ACCESS_XML_CAP, &flags);
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    st->b.pab = flags | MD_PAB_SET;
    st->fields = MD_ACCESS_PAB;
    gw_offload(r, access_work, access_done); /* st is r->op (read_body) */
}

static void get_ownership(gw_req *r, const md_bucket *b)
{
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "OwnershipControls");
    gw_xml_open(&x, "Rule");
    gw_xml_text(&x, "ObjectOwnership",
                ownership_names[b->ownership < CM_ARRAY_LEN(ownership_names) ? b->ownership : 0]);
    gw_xml_close(&x, "Rule");
    gw_xml_close(&x, "OwnershipControls");
    gw_send_doc(r, buf, gw_xml_status(&x));
}

int gw_ownership_parse(const char *v, uint8_t *out)
{
    for (size_t i = 0; i < CM_ARRAY_LEN(ownership_names); i++)
        if (strcmp(v, ownership_names[i]) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    return -1;
}

static void put_ownership_finish(gw_req *r)
{
    access_state *st = r->op;
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    char v[32];
    gw_s3err e = gw_parse_ownership(xml ? xml : "", len, ACCESS_XML_CAP, v, sizeof(v));
    if (e == GW_OK && gw_ownership_parse(v, &st->b.ownership) != 0)
        e = GW_MALFORMED_XML;
    st->fields = MD_ACCESS_OWNERSHIP;
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    gw_offload(r, access_work, access_done); /* st is r->op (read_body) */
}

/* Read the body of a configuration PUT into memory, then finish with st in r->op. */
static void read_body(gw_req *r, access_state *st, size_t cap, gw_finish_fn finish)
{
    r->op = st;
    r->op_free = access_state_free;
    gw_body_to_memory(r, cap, finish);
}

/* ---- routing ---- */

static int cluster_refuses(gw_req *r, int change)
{
    if (!gw_cluster_node(r->g) || (r->g->ns.access_set && r->g->ns.policy_set))
        return 0;
    if (change)
        gw_error(r, GW_UNSUPPORTED, CLUSTER_MSG);
    else if (gw_query_find(&r->q, "policy") || gw_query_find(&r->q, "policyStatus"))
        gw_error(r, GW_NO_SUCH_BUCKET_POLICY, NULL);
    else if (gw_query_find(&r->q, "publicAccessBlock"))
        gw_error(r, GW_NO_SUCH_PAB, NULL);
    else
        return 0; /* acl, ownershipControls: the defaults, from the local record */
    return 1;
}

int gw_access_bucket_op(gw_req *r, const md_bucket *local)
{
    md_bucket settings = *local, *b = &settings;
    gw_bucket_access(r->g, b); /* a cluster node: the namespace's settings */
    const gw_query *q = &r->q;
    const char *m = net_req_method(r->net);
    int get = strcmp(m, "GET") == 0 || r->head, put = strcmp(m, "PUT") == 0;
    int del = strcmp(m, "DELETE") == 0;
    int policy = gw_query_find(q, "policy") != NULL,
        status = gw_query_find(q, "policyStatus") != NULL;
    int pab = gw_query_find(q, "publicAccessBlock") != NULL;
    int own = gw_query_find(q, "ownershipControls") != NULL, acl = gw_query_find(q, "acl") != NULL;
    access_state *st;

    if (!policy && !status && !pab && !own && !acl)
        return 0;
    if (!get && !put && !del) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return 1;
    }
    if (cluster_refuses(r, !get))
        return 1;
    if (get) {
        if (policy || status)
            get_policy(r, b, status);
        else if (pab)
            get_pab(r, b);
        else if (own)
            get_ownership(r, b);
        else
            gw_send_acl(r, b->owner, b->ownership == MD_OWN_ENFORCED ? MD_ACL_PRIVATE : b->acl);
        return 1;
    }
    if (status || (acl && del)) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return 1;
    }
    if (!(st = state_for(r, b)))
        return 1;
    if (del) {
        st->policy = policy;
        st->b.pab = 0;
        st->b.ownership = MD_OWN_ENFORCED;
        st->fields = pab ? MD_ACCESS_PAB : own ? MD_ACCESS_OWNERSHIP : 0;
        commit(r, st);
    } else if (policy) {
        read_body(r, st, GW_POLICY_MAX, put_policy_finish);
    } else if (pab) {
        read_body(r, st, ACCESS_XML_CAP, put_pab_finish);
    } else if (own) {
        read_body(r, st, ACCESS_XML_CAP, put_ownership_finish);
    } else {
        st->fields = MD_ACCESS_ACL;
        gw_s3err e = put_acl_value(r, b, &st->b.acl);
        if (e != GW_OK) {
            free(st);
            gw_error(r, e,
                     e == GW_UNSUPPORTED ? "Only canned ACLs are served: send x-amz-acl" : NULL);
            return 1;
        }
        commit(r, st);
    }
    return 1;
}

/* ---- object ACLs ---- */

#define ACL_RMW_TRIES 8

/* Worker: the current record with its ACL replaced, committed only if the key still holds it.
 * A cluster node reads it at quorum and writes the successor of exactly the version read
 * (rp_object_swap_keep_lock, as a tag change: gw_tagops.c), so a racing PUT or DELETE wins
 * everywhere. */
static void object_acl_work(gw_req *r)
{
    access_state *st = r->op;
    md_object o;
    if (gw_meta_remote(r->g)) {
        if ((st->err = gw_meta_get(r->g, r->bucket, r->key, &o)) != CM_OK)
            return;
        o.acl = st->acl;
        st->err = rp_object_swap_keep_lock(r->g->rp, r->bucket, &o);
        md_object_release(&o);
        return;
    }
    for (int i = 0; i < ACL_RMW_TRIES; i++) {
        st->err = md_object_get(r->g->md, r->bucket, r->key, &o);
        if (st->err != CM_OK)
            return;
        o.acl = st->acl;
        st->err = md_rec_put(r->g->md, r->bucket, &o, o.generation, NULL);
        md_object_release(&o);
        if (st->err != CM_ERR_CONFLICT)
            return;
    }
}

static void object_acl_done(gw_req *r)
{
    access_state *st = r->op;
    if (st->err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_KEY, NULL);
    else if (st->err == CM_ERR_CONFLICT)
        gw_error(r, GW_CONDITIONAL_CONFLICT, NULL);
    else if (st->err != CM_OK)
        gw_error_cm(r, st->err);
    else {
        gw_resp_start(r, 200, 0);
        net_resp_end(r->net);
    }
}

/* Worker (a cluster node) or loop: the object's ACL, for GetObjectAcl. */
static void get_object_acl_work(gw_req *r)
{
    access_state *st = r->op;
    md_object o;
    if ((st->err = gw_meta_get(r->g, r->bucket, r->key, &o)) != CM_OK)
        return;
    st->acl = o.delete_marker ? MD_ACL_PRIVATE : o.acl;
    st->err = o.delete_marker ? CM_ERR_NOTFOUND : CM_OK;
    md_object_release(&o);
}

static void get_object_acl_done(gw_req *r)
{
    access_state *st = r->op;
    if (st->err != CM_OK)
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_KEY : gw_s3err_from_cm(st->err), NULL);
    else
        gw_send_acl(r, st->b.owner, st->b.ownership == MD_OWN_ENFORCED ? MD_ACL_PRIVATE : st->acl);
}

int gw_access_object_op(gw_req *r)
{
    const char *m = net_req_method(r->net);
    int get = strcmp(m, "GET") == 0 || r->head;
    md_bucket b;
    if (!gw_query_find(&r->q, "acl") || (!get && strcmp(m, "PUT") != 0))
        return 0;
    cm_err e = md_bucket_get(r->g->md, r->bucket, &b); /* the owner (a cluster node's mirror) */
    if (e != CM_OK) {
        gw_error(r, e == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(e), NULL);
        return 1;
    }
    gw_bucket_access(r->g, &b); /* a cluster node: the namespace's ownership and access block */
    access_state *st = state_for(r, &b);
    if (!st)
        return 1;
    if (get) {
        r->op = st;
        r->op_free = access_state_free;
        if (gw_meta_remote(r->g)) { /* a quorum read: not on the loop */
            gw_offload(r, get_object_acl_work, get_object_acl_done);
        } else {
            get_object_acl_work(r);
            get_object_acl_done(r);
        }
        return 1;
    }
    gw_s3err s3 = put_acl_value(r, &b, &st->acl);
    if (s3 != GW_OK) {
        free(st);
        gw_error(r, s3,
                 s3 == GW_UNSUPPORTED ? "Only canned ACLs are served: send x-amz-acl" : NULL);
        return 1;
    }
    r->op = st;
    r->op_free = access_state_free;
    gw_offload(r, object_acl_work, object_acl_done);
    return 1;
}
