/*
 * gw_authz.c - who may do what (docs/users.md): the table naming each S3 operation's IAM action,
 * and the decision for a request.
 *
 * Decision for a request of principal P on bucket B (key K), action A:
 *   1. root: allowed (the administrator; even a Deny cannot lock root out of a bucket).
 *   2. no bucket named (ListBuckets) or CreateBucket: any user; anonymous is denied.
 *   3. B's policy: a matching Deny denies (explicit deny wins, for the owner too, except the
 *      owner's own Get/Put/DeleteBucketPolicy, so a policy can always be repaired); a matching
 *      Allow allows, unless it allows only through "*" and the request is anonymous while B's
 *      PublicAccessBlock has RestrictPublicBuckets.
 *   4. P owns B: allowed.
 *   5. ACLs, when B's ownership is not BucketOwnerEnforced and IgnorePublicAcls is off: B's
 *      public-read grants ListBucket (and the version and upload listings), public-read-write
 *      also PutObject and DeleteObject, authenticated-read the listings to users; an object's
 *      public-read (authenticated-read) grants GetObject of it to everyone (users).
 *   6. otherwise AccessDenied: 403 S3 XML before any body is read, nothing changed.
 * A bucket that does not exist answers NoSuchBucket here (so no write of a principal other than
 * root can start before the bucket is there and race its creation); an invalid bucket name is
 * left to the operation, which refuses it before reading anything. A copy (x-amz-copy-source) needs
 * GetObject on its source as well; a write with x-amz-object-lock-* headers also needs
 * s3:PutObjectRetention / s3:PutObjectLegalHold (gw_lock_write_allowed). DeleteObjects decides per
 * key (gw_authz_key, on the worker), as S3 does.
 *
 * Cost: root requests pay nothing; others read the bucket record (one LMDB read) and evaluate its
 * policy, parsed once and cached (gw_pcache below) - and read the object record only when an
 * object ACL or an s3:ExistingObjectTag condition may decide. On a single node all reads are of
 * the local store, on the loop thread: LMDB reads do not block. On a cluster node the bucket's
 * owner comes from the local mirror of the namespace (a bucket not mirrored yet was resolved on a
 * worker before this runs) and its ACL, access block, ownership and policy from the namespace
 * follower's memory (gw_bucket_access, gw_bucket_policy: never etcd); a policy changed through
 * another node drops its cache entry when the follower applies it (gw_bucket_access_changed).
 * An object's ACL and the tags of an s3:ExistingObjectTag condition come from its record
 * (gw_known.c): on a cluster node a quorum read the loop must not wait for, so a decision that
 * needs a record it has not read yet stops (DECIDE_PENDING), the record is read asynchronously
 * (gw_known_fetch) and the request is decided again from the start.
 */
#include "gw_int.h"
#include "gw_policy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"

#define MOD "authz"

/* ---- the action table ---- */

enum { ON_BUCKET = 1, ON_OBJECT = 2 };

typedef struct {
    const char *method; /* NULL: any */
    int on;
    const char *param; /* a query parameter that must be present, NULL: none needed */
    const char *action;
} action_row;

/* First match wins: subresources before the plain operation. */
static const action_row actions[] = {
    /* bucket subresources */
    {"GET", ON_BUCKET, "policyStatus", "s3:GetBucketPolicyStatus"},
    {"GET", ON_BUCKET, "policy", "s3:GetBucketPolicy"},
    {"PUT", ON_BUCKET, "policy", "s3:PutBucketPolicy"},
    {"DELETE", ON_BUCKET, "policy", "s3:DeleteBucketPolicy"},
    {"GET", ON_BUCKET, "acl", "s3:GetBucketAcl"},
    {"PUT", ON_BUCKET, "acl", "s3:PutBucketAcl"},
    {"GET", ON_BUCKET, "publicAccessBlock", "s3:GetBucketPublicAccessBlock"},
    {NULL, ON_BUCKET, "publicAccessBlock", "s3:PutBucketPublicAccessBlock"},
    {"GET", ON_BUCKET, "ownershipControls", "s3:GetBucketOwnershipControls"},
    {NULL, ON_BUCKET, "ownershipControls", "s3:PutBucketOwnershipControls"},
    {"GET", ON_BUCKET, "tagging", "s3:GetBucketTagging"},
    {NULL, ON_BUCKET, "tagging", "s3:PutBucketTagging"},
    {"GET", ON_BUCKET, "versioning", "s3:GetBucketVersioning"},
    {"PUT", ON_BUCKET, "versioning", "s3:PutBucketVersioning"},
    {"GET", ON_BUCKET, "lifecycle", "s3:GetLifecycleConfiguration"},
    {NULL, ON_BUCKET, "lifecycle", "s3:PutLifecycleConfiguration"},
    {"GET", ON_BUCKET, "cors", "s3:GetBucketCORS"},
    {NULL, ON_BUCKET, "cors", "s3:PutBucketCORS"},
    {"GET", ON_BUCKET, "website", "s3:GetBucketWebsite"},
    {"PUT", ON_BUCKET, "website", "s3:PutBucketWebsite"},
    {"DELETE", ON_BUCKET, "website", "s3:DeleteBucketWebsite"},
    {"GET", ON_BUCKET, "object-lock", "s3:GetBucketObjectLockConfiguration"},
    {"PUT", ON_BUCKET, "object-lock", "s3:PutBucketObjectLockConfiguration"},
    {"GET", ON_BUCKET, "encryption", "s3:GetEncryptionConfiguration"},
    {NULL, ON_BUCKET, "encryption", "s3:PutEncryptionConfiguration"},
    {"GET", ON_BUCKET, "location", "s3:GetBucketLocation"},
    {"GET", ON_BUCKET, "logging", "s3:GetBucketLogging"},
    {"GET", ON_BUCKET, "uploads", "s3:ListBucketMultipartUploads"},
    {"GET", ON_BUCKET, "versions", "s3:ListBucketVersions"},
    {"POST", ON_BUCKET, "delete", "s3:DeleteObject"},
    {"GET", ON_BUCKET, NULL, "s3:ListBucket"},
    {"HEAD", ON_BUCKET, NULL, "s3:ListBucket"},
    {"PUT", ON_BUCKET, NULL, "s3:CreateBucket"},
    {"DELETE", ON_BUCKET, NULL, "s3:DeleteBucket"},
    {"POST", ON_BUCKET, NULL, "s3:PutObject"}, /* a browser form upload (POST Object) */
    /* object subresources */
    {"GET", ON_OBJECT, "acl", "s3:GetObjectAcl"},
    {"PUT", ON_OBJECT, "acl", "s3:PutObjectAcl"},
    {"GET", ON_OBJECT, "tagging", "s3:GetObjectTagging"},
    {"PUT", ON_OBJECT, "tagging", "s3:PutObjectTagging"},
    {"DELETE", ON_OBJECT, "tagging", "s3:DeleteObjectTagging"},
    {"GET", ON_OBJECT, "retention", "s3:GetObjectRetention"},
    {"PUT", ON_OBJECT, "retention", "s3:PutObjectRetention"},
    {"GET", ON_OBJECT, "legal-hold", "s3:GetObjectLegalHold"},
    {"PUT", ON_OBJECT, "legal-hold", "s3:PutObjectLegalHold"},
    {"GET", ON_OBJECT, "attributes", "s3:GetObjectAttributes"},
    {"GET", ON_OBJECT, "uploadId", "s3:ListMultipartUploadParts"},
    {"DELETE", ON_OBJECT, "uploadId", "s3:AbortMultipartUpload"},
    {"GET", ON_OBJECT, "versionId", "s3:GetObjectVersion"},
    {"HEAD", ON_OBJECT, "versionId", "s3:GetObjectVersion"},
    {"DELETE", ON_OBJECT, "versionId", "s3:DeleteObjectVersion"},
    {"POST", ON_OBJECT, "restore", "s3:RestoreObject"},
    {"GET", ON_OBJECT, NULL, "s3:GetObject"},
    {"HEAD", ON_OBJECT, NULL, "s3:GetObject"},
    {"PUT", ON_OBJECT, NULL, "s3:PutObject"},  /* PutObject, CopyObject, UploadPart(Copy) */
    {"POST", ON_OBJECT, NULL, "s3:PutObject"}, /* Create/CompleteMultipartUpload */
    {"DELETE", ON_OBJECT, NULL, "s3:DeleteObject"},
};

/* The IAM action of r, or NULL for a request no table row names (only root may make it). */
static const char *action_of(gw_req *r)
{
    const char *m = net_req_method(r->net);
    int on = r->key ? ON_OBJECT : ON_BUCKET;
    for (size_t i = 0; i < CM_ARRAY_LEN(actions); i++) {
        const action_row *a = &actions[i];
        if (a->on != on || (a->method && strcmp(a->method, m) != 0))
            continue;
        if (a->param ? gw_query_find(&r->q, a->param) != NULL : 1)
            return a->action;
    }
    return NULL;
}

/* ---- the decision ---- */

const char *gw_owner_id(const gw_req *r)
{
    if (r->principal == GW_PRIN_ANON)
        return ""; /* owns nothing: an x-amz-expected-bucket-owner never names it */
    /* root: the key it signed with (r->auth is the request's own copy; g's pair may be swapped by
     * a SIGHUP at any time) */
    return r->principal == GW_PRIN_USER ? r->user : r->auth.access_key;
}

static int is_listing(const char *action)
{
    return strcmp(action, "s3:ListBucket") == 0 || strcmp(action, "s3:ListBucketVersions") == 0 ||
           strcmp(action, "s3:ListBucketMultipartUploads") == 0;
}

/* What a bucket's canned ACL grants the principal. */
static int bucket_acl_allows(const gw_req *r, uint8_t acl, const char *action)
{
    int anyone = acl == MD_ACL_PUBLIC_READ || acl == MD_ACL_PUBLIC_READ_WRITE ||
                 (acl == MD_ACL_AUTHENTICATED_READ && r->principal == GW_PRIN_USER);
    if (anyone && is_listing(action))
        return 1;
    return acl == MD_ACL_PUBLIC_READ_WRITE &&
           (strcmp(action, "s3:PutObject") == 0 || strcmp(action, "s3:DeleteObject") == 0);
}

static int object_acl_allows(const gw_req *r, uint8_t acl)
{
    return acl == MD_ACL_PUBLIC_READ || acl == MD_ACL_PUBLIC_READ_WRITE ||
           (acl == MD_ACL_AUTHENTICATED_READ && r->principal == GW_PRIN_USER);
}

/* The peer address without its port ("[::1]:5" -> "::1"), into out. */
static void peer_ip(gw_req *r, char *out, size_t cap)
{
    const char *p = net_req_peer(r->net);
    const char *colon = p ? strrchr(p, ':') : NULL;
    size_t n = colon ? (size_t)(colon - p) : p ? strlen(p) : 0;
    if (p && p[0] == '[' && n >= 2 && p[n - 1] == ']') {
        p++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)CM_MIN(n, cap - 1), p ? p : "");
}

/* DECIDE_PENDING: a cluster node's decision needs a record not read yet (gw_known.c). */
typedef enum {
    DECIDE_ALLOW,
    DECIDE_DENY,
    DECIDE_NO_BUCKET,
    DECIDE_BAD_NAME,
    DECIDE_PENDING
} decision;

/* ---- parsed policies, cached ---- */

#define PCACHE_SLOTS 256

typedef struct {
    char bucket[MD_BUCKET_MAX + 1];
    int64_t created_ms; /* the bucket incarnation the entry is for */
    gw_policy *p;       /* NULL: the bucket has no policy */
    int used;
} pslot;

/*
 * One slot per bucket name hash (a collision just evicts): a request of a user or anonymous to a
 * bucket reads and parses its policy once, not per request. Entries are dropped by
 * gw_pcache_forget after every policy change (a commit on this node, or on a cluster node the
 * namespace follower applying another node's change, after the new version is readable);
 * a bucket created again has another created_ms, so an entry never outlives its bucket's
 * incarnation. A miss that raced a change (gen moved while it read the store) is not kept.
 */
struct gw_pcache {
    pthread_rwlock_t lock;
    uint64_t gen; /* bumped by every gw_pcache_forget */
    pslot s[PCACHE_SLOTS];
};

gw_pcache *gw_pcache_new(void)
{
    gw_pcache *pc = calloc(1, sizeof(*pc));
    if (pc)
        pthread_rwlock_init(&pc->lock, NULL);
    return pc;
}

void gw_pcache_free(gw_pcache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < PCACHE_SLOTS; i++)
        gw_policy_free(pc->s[i].p);
    pthread_rwlock_destroy(&pc->lock);
    free(pc);
}

static size_t slot_of(const char *bucket)
{
    return cm_crc32c(0, bucket, strlen(bucket)) % PCACHE_SLOTS;
}

void gw_pcache_forget(gw_pcache *pc, const char *bucket)
{
    pslot *s = &pc->s[slot_of(bucket)];
    pthread_rwlock_wrlock(&pc->lock);
    pc->gen++;
    if (s->used && strcmp(s->bucket, bucket) == 0) {
        gw_policy_free(s->p);
        memset(s, 0, sizeof(*s));
    }
    pthread_rwlock_unlock(&pc->lock);
}

/* Evaluate p for c, reading the object's tags first when a condition needs them (a record a
 * cluster node has not read yet: the effect is not used, the decision runs again once it is). */
static gw_policy_effect eval_with(gw_req *r, const char *bucket, const char *key, gw_policy_ctx *c,
                                  const gw_policy *p, int *public_only)
{
    md_object tmp;
    const md_object *o = NULL;
    if (key && gw_policy_uses_tags(p) && gw_known_read(r, bucket, key, &tmp, &o) == CM_OK) {
        c->tags = o->tags;
        c->ntags = o->ntags;
    }
    gw_policy_effect eff = gw_policy_eval(p, c, public_only);
    if (o)
        gw_known_done(o, &tmp);
    c->tags = NULL;
    c->ntags = 0;
    return eff;
}

/* b's policy (cached, else read and parsed) evaluated for c; a broken stored policy denies. */
static gw_policy_effect cached_eval(gw_req *r, const md_bucket *b, const char *key,
                                    gw_policy_ctx *c, int *public_only)
{
    gw_pcache *pc = r->g->pcache;
    pslot *s = &pc->s[slot_of(b->name)];
    gw_policy_effect eff;
    pthread_rwlock_rdlock(&pc->lock);
    if (s->used && s->created_ms == b->created_ms && strcmp(s->bucket, b->name) == 0) {
        eff = s->p ? eval_with(r, b->name, key, c, s->p, public_only) : GW_POLICY_NONE;
        pthread_rwlock_unlock(&pc->lock);
        return eff;
    }
    uint64_t gen = pc->gen; /* read before the store, so a change after it is seen below */
    pthread_rwlock_unlock(&pc->lock);

    char *json = NULL, msg[160];
    size_t len = 0;
    gw_policy *p = NULL;
    cm_err e = gw_bucket_policy(r->g, b, &json, &len);
    if (e != CM_OK && e != CM_ERR_NOTFOUND) {
        CM_ERROR(MOD, "bucket %s: its policy cannot be read (%s): denying", b->name, cm_err_str(e));
        return GW_POLICY_DENY;
    }
    if (e == CM_OK && gw_policy_parse(json, len, b->name, &p, msg, sizeof(msg)) != GW_OK) {
        CM_ERROR(MOD, "bucket %s: its stored policy does not parse (%s): denying", b->name, msg);
        free(json);
        return GW_POLICY_DENY;
    }
    free(json);
    eff = p ? eval_with(r, b->name, key, c, p, public_only) : GW_POLICY_NONE;
    pthread_rwlock_wrlock(&pc->lock);
    if (pc->gen == gen) {
        gw_policy_free(s->p);
        snprintf(s->bucket, sizeof(s->bucket), "%s", b->name);
        s->created_ms = b->created_ms;
        s->p = p;
        s->used = 1;
        p = NULL; /* the cache's now */
    }
    pthread_rwlock_unlock(&pc->lock);
    gw_policy_free(p);
    return eff;
}

/* Evaluate b's policy (if any) for action on bucket/key: GW_POLICY_*. */
static gw_policy_effect policy_effect(gw_req *r, const md_bucket *b, const char *key,
                                      const char *action)
{
    char res[MD_BUCKET_MAX + MD_MAX_KEY + 32];
    int public_only = 0;
    snprintf(res, sizeof(res), "arn:aws:s3:::%s%s%s", b->name, key ? "/" : "", key ? key : "");
    gw_policy_ctx c = {.user = r->principal == GW_PRIN_USER ? r->user : NULL,
                       .action = action,
                       .resource = res,
                       .source_ip = r->peer_ip};
    if (is_listing(action) && !key) {
        const char *pf = gw_query_get(&r->q, "prefix");
        c.prefix = pf ? pf : "";
        c.delimiter = gw_query_get(&r->q, "delimiter");
    }
    gw_policy_effect eff = cached_eval(r, b, key, &c, &public_only);
    if (eff == GW_POLICY_ALLOW && public_only && r->principal == GW_PRIN_ANON &&
        (b->pab & MD_PAB_RESTRICT))
        eff = GW_POLICY_NONE; /* RestrictPublicBuckets: public grants reach users only */
    return eff;
}

static int policy_admin(const char *action)
{
    return strcmp(action, "s3:GetBucketPolicy") == 0 || strcmp(action, "s3:PutBucketPolicy") == 0 ||
           strcmp(action, "s3:DeleteBucketPolicy") == 0;
}

static decision decide(gw_req *r, const char *bucket, const char *key, const char *action)
{
    md_bucket b;
    if (r->principal == GW_PRIN_ROOT)
        return DECIDE_ALLOW;
    if (gw_bucket_name_check(bucket) != GW_OK)
        return DECIDE_BAD_NAME;
    cm_err e = md_bucket_get(r->g->md, bucket, &b);
    if (e != CM_OK) { /* a failing store denies: never guess in the requester's favour */
        if (e != CM_ERR_NOTFOUND)
            CM_WARN(MOD, "req=%s bucket %s: %s: denying", r->id, bucket, cm_err_str(e));
        return e == CM_ERR_NOTFOUND ? DECIDE_NO_BUCKET : DECIDE_DENY;
    }
    gw_bucket_access(r->g, &b); /* a cluster node: the namespace's settings */
    int owner = r->principal == GW_PRIN_USER && strcmp(b.owner, r->user) == 0;
    if (!action) /* an operation the table does not name: root's and the owner's */
        return owner ? DECIDE_ALLOW : DECIDE_DENY;
    gw_policy_effect eff = policy_effect(r, &b, key, action);
    if (gw_known_wanted(r))
        return DECIDE_PENDING;
    if (eff == GW_POLICY_DENY)
        return owner && policy_admin(action) ? DECIDE_ALLOW : DECIDE_DENY;
    if (eff == GW_POLICY_ALLOW || owner)
        return DECIDE_ALLOW;
    if (b.ownership == MD_OWN_ENFORCED || (b.pab & MD_PAB_IGNORE_ACLS))
        return DECIDE_DENY;
    if (bucket_acl_allows(r, b.acl, action))
        return DECIDE_ALLOW;
    if (key &&
        (strcmp(action, "s3:GetObject") == 0 || strcmp(action, "s3:GetObjectVersion") == 0)) {
        md_object tmp;
        const md_object *o;
        int ok = 0;
        cm_err re = gw_known_read(r, bucket, key, &tmp, &o);
        if (re == CM_AGAIN)
            return DECIDE_PENDING;
        if (re == CM_OK) {
            ok = object_acl_allows(r, o->acl);
            gw_known_done(o, &tmp);
        }
        return ok ? DECIDE_ALLOW : DECIDE_DENY;
    }
    return DECIDE_DENY;
}

int gw_authz_key(gw_req *r, const char *bucket, const char *key, const char *action)
{
    decision d = decide(r, bucket, key, action);
    /* a cluster node's record on a worker: read blocking, outside the decision (no lock held) */
    if (d == DECIDE_PENDING && r->busy && gw_known_load(r) == CM_OK)
        d = decide(r, bucket, key, action);
    return d == DECIDE_ALLOW;
}

int gw_authz_anonymous(gw_req *r, const char *key, const char *action)
{
    r->principal = GW_PRIN_ANON;
    peer_ip(r, r->peer_ip, sizeof(r->peer_ip));
    decision d = decide(r, r->bucket, key, action);
    return d == DECIDE_PENDING ? -1 : d == DECIDE_ALLOW;
}

int gw_authz_post(gw_req *r)
{
    if (r->principal == GW_PRIN_ROOT)
        return 1;
    peer_ip(r, r->peer_ip, sizeof(r->peer_ip));
    if (r->principal != GW_PRIN_USER)
        return 0;
    decision d = decide(r, r->bucket, r->key, "s3:PutObject");
    return d == DECIDE_PENDING ? -1 : d == DECIDE_ALLOW;
}

/* A copy's source must be readable too (CopyObject, UploadPartCopy). */
static int copy_source_allowed(gw_req *r)
{
    const char *hdr = gw_hdr(r, "x-amz-copy-source");
    gw_copy_source cs;
    if (!hdr || strcmp(net_req_method(r->net), "PUT") != 0 || !r->key)
        return 1;
    if (gw_copy_source_parse(hdr, &cs) != GW_OK)
        return 1; /* the copy answers its own InvalidArgument */
    /* a source bucket that does not exist is the copy's NoSuchBucket to answer */
    decision d =
        decide(r, cs.bucket, cs.key, cs.version_id ? "s3:GetObjectVersion" : "s3:GetObject");
    gw_copy_source_release(&cs);
    return d == DECIDE_PENDING ? -1 : d != DECIDE_DENY;
}

/* Loop: the record a decision wanted was read (gw_known_fetch); decide again. */
static void authorize_again(gw_req *r)
{
    if (r->meta_err != CM_OK)
        gw_error_cm(r, r->meta_err);
    else
        r->meta_next(r);
}

/* Read the record the decision wants, then run again(r) (which decides again). */
static int pending(gw_req *r, gw_finish_fn again)
{
    r->meta_next = again;
    gw_known_fetch(r, authorize_again);
    return 0;
}

int gw_authorize(gw_req *r, gw_finish_fn again)
{
    const char *m = net_req_method(r->net);
    if (r->principal == GW_PRIN_ROOT)
        return 1;
    peer_ip(r, r->peer_ip, sizeof(r->peer_ip)); /* kept: DeleteObjects decides on a worker */
    if (!r->bucket[0] || (!r->key && strcmp(m, "PUT") == 0 && r->q.n == 0)) {
        /* ListBuckets (filtered to the user's buckets) and CreateBucket: any user */
        if (r->principal == GW_PRIN_USER)
            return 1;
        gw_error(r, GW_ACCESS_DENIED, NULL);
        return 0;
    }
    const char *action = action_of(r);
    if (action && strcmp(action, "s3:DeleteObject") == 0 && !r->key) {
        r->authz_per_key = 1; /* DeleteObjects: each key on the worker */
        return 1;
    }
    decision d = decide(r, r->bucket, r->key, action);
    if (d == DECIDE_PENDING)
        return pending(r, again);
    int copy = d == DECIDE_ALLOW ? copy_source_allowed(r) : 0;
    if (copy < 0)
        return pending(r, again);
    if (copy && gw_lock_write_allowed(r))
        return 1;
    if (d == DECIDE_BAD_NAME)
        return 1; /* the operation answers InvalidBucketName or NoSuchBucket before anything */
    if (d == DECIDE_NO_BUCKET) { /* answered here: a write must not race the bucket's creation */
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
        return 0;
    }
    CM_DEBUG(MOD, "req=%s denied: %s on %s/%s by %s", r->id, action ? action : "(unnamed)",
             r->bucket, r->key ? r->key : "", r->principal == GW_PRIN_USER ? r->user : "anonymous");
    gw_error(r, GW_ACCESS_DENIED, NULL);
    return 0;
}
