/*
 * gw_int.h - private to the gateway: the shared server state, the per-request context, and the
 * functions the operation files (gw_object.c, gw_bucket.c, gw_multipart.c) share.
 *
 * A request moves through phases: route + authenticate (gw_server.c), an operation's start
 * function (responds at once, or opens a body sink and asks net for the body), the body pipeline
 * (aws-chunked decoding, payload hashes, checksum, into the sink), the operation's finish function
 * once the body is complete and verified, and for GETs a streaming phase fed by on_drain.
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <pthread.h>

#include "cm_checksum.h"
#include "cm_md5.h"
#include "cm_alog.h"
#include "cm_cidr.h"
#include "cm_format.h"
#include "cm_mkey.h"
#include "cm_metrics.h"
#include "gw.h"
#include "gw_auth.h"
#include "ob.h"
#include "gw_err.h"
#include "gw_wire.h"
#include "md.h"

typedef struct gw_pool gw_pool;
typedef struct gw_cors_cache gw_cors_cache;
struct gw_cors_answer;
struct gw_post_op;
typedef struct gw_users gw_users;
typedef struct gw_pcache gw_pcache;

/* Who a request comes from (gw_authenticate). */
typedef enum {
    GW_PRIN_NONE = 0, /* no such (usable) key */
    GW_PRIN_ANON,     /* unsigned: the anonymous principal */
    GW_PRIN_ROOT,     /* the root credentials */
    GW_PRIN_USER,     /* a user's key (gw_req.user) */
} gw_principal;
typedef struct gw_stats gw_stats;

struct gw {
    gw_config cfg;
    char *data_dir, *region, *domain, *access_key, *secret_key; /* owned copies of cfg strings */
    char *website_domain;      /* "" when website requests are off */
    pthread_mutex_t cred_lock; /* access_key and secret_key: gw_set_credentials swaps them */
    char *metrics_token;       /* owned; "" = none (gw_metrics_acl.c) */
    cm_cidr_list metrics_allow;
    gw_ready_fn ready_fn; /* gw_set_ready_check */
    void *ready_arg;
    md_store *md;
    rp *rp; /* replicated object records on a cluster node (gw_set_repl); NULL: md only */
    ob_store *data;
    gw_pool *pool; /* worker threads for fsyncs and commits (gw_pool.c) */
    volatile int ready;
    uint64_t req_seq;       /* request id counter (atomic) */
    ob_scrub *scrub;        /* attached by gw_scrub_new, for the admin API (gw_admin.c) */
    struct gw_lc *lc;       /* the lifecycle worker, attached by gw_lc_start (gw_lifecycle.c) */
    uint64_t req_count[8];  /* requests by method, for /metrics (atomic; gw_admin.c) */
    gw_status_fn status_fn; /* extra /admin/status member (gw_set_status_extra) */
    gw_admin_fn admin_fn;   /* /admin/repair, /admin/object-cells (gw_set_admin_extra) */
    void *admin_arg;
    void *status_arg;
    gw_bucket_ns ns;          /* cluster mode's bucket namespace; all NULL: the local store alone */
    cm_mkey mkey;             /* wraps SSE data keys (cm_mkey_load at gw_new; gw_sse.c) */
    int have_mkey;            /* 0: no master key could be had; SSE-S3 is refused */
    struct gw_rewrap *rewrap; /* the master-key rewrap pass (gw_sse_rewrap.c); NULL: none */
    gw_cors_cache *cors;      /* parsed CORS configurations by bucket (gw_corsops.c) */
    gw_users *users;          /* users and their keys (gw_users.c) */
    gw_pcache *pcache;        /* parsed bucket policies (gw_authz.c) */

    /* the data directory's format stamp as read at gw_new (cm_format.h; /admin/status) */
    cm_format_stamp format;
    int have_format; /* 0: none could be read (cairn server checks and writes it before gw_new) */

    /* /metrics and the access log (gw_stats.c, docs/metrics.md) */
    gw_stats *stats;     /* request counters and latency histograms */
    cm_metrics *metrics; /* more /metrics sources (gw_metrics_registry) */
    cm_alog *access_log; /* NULL: off (gw_set_access_log) */
};

typedef struct gw_req gw_req;
typedef void (*gw_finish_fn)(gw_req *r);
typedef void (*gw_work_fn)(gw_req *r);

/* Where a request body goes. */
typedef enum {
    GW_SINK_NONE = 0,
    GW_SINK_DISCARD, /* body read and dropped (requests that take no body) */
    GW_SINK_MEMORY,  /* XML request bodies, up to mem_cap */
    GW_SINK_DATA     /* object or part data: inline buffer, then the erasure writer */
} gw_sink_kind;

struct gw_req {
    gw *g;
    net_req *net;
    char id[17]; /* request id, 16 hex chars */
    int head;    /* HEAD request: no body in the response */
    gw_query q;  /* decoded path and query parameters */
    char bucket[MD_BUCKET_MAX + 1];
    int vhost; /* the bucket came from a virtual-hosted Host header */
    /* A website request (Host "BUCKET.<website_domain>", gw_website.c): 1, and 2 once its error
     * is being answered (errors are HTML pages then); web: its configuration; web_status: an
     * error document's status (GetObject answers it instead of 200). */
    int website, web_status;
    struct gw_web_state *web;
    char *key; /* decoded object key, NULL for bucket-level requests */
    gw_auth_result auth;
    gw_principal principal;
    char user[MD_USER_NAME_MAX + 1]; /* GW_PRIN_USER: the user's name */
    int authz_per_key; /* DeleteObjects: each key is authorized on its own (gw_authz_key) */
    char peer_ip[48];  /* the client's address, for aws:SourceIp (set by gw_authorize) */

    /* Body pipeline. */
    gw_sink_kind sink;
    gw_finish_fn finish;      /* called once the body is complete and verified */
    gw_chunked *chunked;      /* aws-chunked decoder, when the payload is streamed */
    struct evbuffer *decoded; /* decoder output, drained into the sink */
    uint64_t body_len;        /* decoded payload bytes so far */
    int64_t expect_len;       /* decoded length announced by the client, -1 unknown */
    uint64_t max_len;         /* larger bodies are refused with EntityTooLarge */
    int hash_sha256;          /* verify x-amz-content-sha256 */
    cm_ck sha256;
    int have_md5; /* Content-MD5 given */
    uint8_t want_md5[16];
    cm_md5 md5; /* always computed for data (the ETag) */
    /* Plain data bodies on a CPU with the SIMD MD5: bytes the sink took but MD5 has not, at the
     * start of md5_buf (the request's body buffer), hashed with other requests' by this loop's
     * batch (gw_md5.c); the body is paused meanwhile. */
    int md5_wait;
    size_t md5_unhashed;
    struct evbuffer *md5_buf;
    size_t md5_seg, md5_nseg; /* the batch's scratch: where its segments are */
    cm_ck_alg ck_alg;         /* x-amz-checksum-* algorithm, when one is computed */
    int ck_active;
    cm_ck ck;
    char ck_want[72];       /* base64 from a header; "" if it comes in the trailer */
    const char *ck_trailer; /* trailer name to read the checksum from, or NULL */
    struct evbuffer *mem;   /* GW_SINK_MEMORY */
    size_t mem_cap;
    uint8_t *inl; /* GW_SINK_DATA: first inline_threshold bytes */
    size_t inl_len;
    ob_writer *writer; /* GW_SINK_DATA once the body outgrew the inline buffer */
    int room_wait;     /* body paused until the writer has room (ob_writer_on_room pending) */
    int failed;        /* an error response was sent; ignore further body */

    /* Results of the body, for the finish function. */
    uint8_t md5_digest[16];
    char ck_value[72]; /* base64 of the computed checksum when ck_active */
    md_layout layout;  /* where the data went (when writer was used) */
    int has_layout;    /* layout owned by the request: cleared once a record holds it */

    /* Response streaming (GET). */
    md_object obj; /* the object being read */
    int have_obj;
    int leased;                  /* obj's blobs are leased (released in on_done) */
    uint64_t send_pos, send_end; /* object offsets still to send: [send_pos, send_end) */
    gw_finish_fn drain;          /* produces more of a streaming response (from on_drain) */
    /* Offloaded work (gw_pool.c): owned by a worker while busy. */
    gw_work_fn job_work;
    gw_finish_fn job_done;
    gw_req *job_next;
    gw_req *job_prev;        /* with job_next: the pool's list of posted completions */
    gw_req *ret_next;        /* the next completion posted to the same loop (gw_pool.c) */
    struct event_base *base; /* the loop that owns the connection */
    int busy;                /* a worker holds the request (loop-thread flag) */
    int orphaned;            /* the connection closed while busy: free on completion */
    void *op;                /* operation-private state, freed by op_free */
    void (*op_free)(void *);
    cm_err meta_err;             /* a record read offloaded to a worker (gw_meta_remote) */
    gw_finish_fn meta_next;      /* what runs once a record a decision wanted is read */
    struct gw_sse_ctx *sse;      /* server-side encryption of this request (gw_sse.c), or NULL */
    struct gw_cors_answer *cors; /* a CORS rule allowed the request: headers for the answer */
    struct gw_post_op *post;     /* POST Object: the form being parsed (gw_post.c) */
    struct gw_known *known;      /* records read for decisions (gw_known.c), or NULL */
    /* Versioning (gw_version.c): headers every answer of this request carries once set,
     * errors included: x-amz-version-id (when not "") and x-amz-delete-marker: true. */
    char resp_version_id[MD_VID_LEN + 1];
    int resp_delete_marker;

    /* For /metrics and the access log (gw_stats.c). */
    uint64_t t0_ns; /* monotonic, at on_request */
    int opk;        /* gw_op of the request (gw_stats.h) */
    int s3err;      /* the gw_s3err gw_error sent; GW_OK when none */
};

/* ---- gw_server.c: responses and the body pipeline ---- */

/* Send an S3 error (XML body unless HEAD) with a message (NULL = the default). */
void gw_error(gw_req *r, gw_s3err e, const char *message);
/* Map a cm_err from a store to an S3 error response. */
void gw_error_cm(gw_req *r, cm_err e);
/* Start a response with the common headers (request id, server). */
void gw_resp_start(gw_req *r, int status, int64_t len);
/* Send a 200 XML document held in buf (consumed). */
void gw_resp_xml(gw_req *r, int status, struct evbuffer *buf);
/* Accept the body into memory (up to cap bytes), then call finish. */
void gw_body_to_memory(gw_req *r, size_t cap, gw_finish_fn finish);
/* Accept the body as object data (inline buffer, then erasure writer), then call finish. */
void gw_body_to_data(gw_req *r, uint64_t max_len, gw_finish_fn finish);
/* Accept a POST Object form (r->post set): each read goes through gw_post_feed, the file's bytes
 * then into the data sink as gw_body_to_data's, up to max_len; finish once the body ended. */
void gw_body_to_form(gw_req *r, uint64_t max_len, gw_finish_fn finish);
/*
 * Authenticate the request (SigV4 or SigV2, header or presigned; root or a user's key) into
 * r->auth and r->principal. An unsigned request is the anonymous principal (GW_OK), except on a
 * cluster node without the namespace's access settings (gw_bucket_ns access_get), which refuses
 * it with GW_ACCESS_DENIED; gw_authorize decides what it may do.
 */
gw_s3err gw_authenticate(gw_req *r);
/* The secret of the root access key (a gw_secret_fn; arg is the gw), under cred_lock (a SIGHUP may
 * swap the pair); CM_ERR_NOTFOUND for any other key. gw_users_secret looks here first, then at
 * the users' keys: what every signature is checked with, header, presigned or a POST form's. */
cm_err gw_lookup_secret(void *arg, const char *access_key, char *secret, size_t cap);
/* 1 when access_key is the root access key (under cred_lock). */
int gw_is_root_key(gw *g, const char *access_key);
/* 1 on a cluster node (a bucket namespace or replicated records). */
int gw_cluster_node(const gw *g);
/* On a cluster node (a namespace with access_get): b's acl, pab and ownership as the namespace
 * holds them (the local mirror's are not kept up to date); elsewhere b as it is. Never blocks. */
void gw_bucket_access(gw *g, md_bucket *b);
/* b's policy JSON (*json malloc'd, NUL-ended): the namespace's on a cluster node, else the users
 * database's. CM_ERR_NOTFOUND when it has none. Never blocks on etcd. */
cm_err gw_bucket_policy(gw *g, const md_bucket *b, char **json, size_t *len);
/* 1 when bucket exists; otherwise NoSuchBucket (or the store's failure) is sent, 0 returned. */
int gw_bucket_check(gw_req *r, const char *bucket);
/* gw_bucket_check that keeps the bucket's local record in *b (for gw_sse_bucket_default). */
int gw_bucket_fetch(gw_req *r, const char *bucket, md_bucket *b);
/* Header value or NULL. */
const char *gw_hdr(gw_req *r, const char *name);
/* ---- gw_admin.c: admin API and metrics on the S3 port ---- */

/*
 * Called by on_request before S3 routing: answers /admin/scrub, /admin/status and /metrics and
 * returns 1; returns 0 for every other request. Also counts the request for /metrics.
 */
int gw_admin_route(gw_req *r);
/* Send an admin answer: a body of type (consumed), or a {"error","message"} JSON document. */
void gw_admin_send(gw_req *r, int status, const char *type, struct evbuffer *b);
void gw_admin_json(gw_req *r, int status, const char *code, const char *msg);

/* ---- gw_users.c: users and access keys ---- */

/* Load the key table (secrets unwrapped with g->mkey: call after the master key is loaded). */
cm_err gw_users_open(gw *g);
void gw_users_close(gw_users *u); /* NULL is a no-op */
/* The gw_secret_fn of every request: root's key, else a usable user key (arg: the gw). */
cm_err gw_users_secret(void *arg, const char *access_key, char *secret, size_t cap);
/* Whose key access_key is: GW_PRIN_ROOT, GW_PRIN_USER (name into user), or GW_PRIN_NONE. */
gw_principal gw_users_who(gw *g, const char *access_key, char *user, size_t cap);
/* /admin/users (GET lists, POST changes); root only. */
void gw_users_admin(gw_req *r, int post);
/* The master-key rewrap of the access keys of a namespace (gw_user_ns, etcd on a cluster): fn
 * (kind MD_REWRAP_USER, name the access key) re-wraps each secret, key_reseal stores it; *moved
 * counts them. An error names the key into bad ("k/" + access key). */
cm_err gw_users_reseal(gw *g, md_rewrap_fn fn, void *arg, uint64_t *moved, char *bad, size_t cap);

/* ---- gw_sse_rewrap.c: master-key rotation (docs/encryption.md) ---- */

/* GET /admin/sse/rewrap: the pass's status; POST: start or resume it (202, or 409 running). */
void gw_rewrap_admin(gw_req *r, int post);

/* ---- gw_authz.c, gw_access.c: authorization and the access subresources ---- */

/*
 * Decide whether r may do what it asks (docs/users.md): root always; a bucket's owner unless its
 * policy denies; others (users, anonymous) when the policy or an effective ACL allows. Returns 1
 * to go on, 0 when AccessDenied (or another error) has been sent - or, on a cluster node whose
 * decision needs an object record (an object ACL, an s3:ExistingObjectTag condition) not read yet,
 * when that read was started: again(r) then runs on r's loop and calls gw_authorize again.
 * Reads the bucket record, its policy and, when needed, the object's record (gw_known.c).
 */
int gw_authorize(gw_req *r, gw_finish_fn again);
/* The same decision for action on bucket/key on behalf of r's principal, without answering
 * (DeleteObjects' keys, a copy's source): 1 allowed. Safe on a worker. */
int gw_authz_key(gw_req *r, const char *bucket, const char *key, const char *action);
/* The same for the anonymous principal on r->bucket (website requests; key NULL: the bucket);
 * -1 on a cluster node's loop when the record it needs is not read yet (gw_known_fetch it, then
 * ask again). */
int gw_authz_anonymous(gw_req *r, const char *key, const char *action);
/* POST Object: may the principal its form's policy was signed by (r->principal, r->user) write
 * r->key into r->bucket? 1 allowed (root, or a user the owner, policy or ACL allows), 0 denied,
 * -1 as gw_authz_anonymous. */
int gw_authz_post(gw_req *r);
/* The cache of parsed policies: new (NULL when out of memory), free, and forget a bucket's entry
 * (call after every change of its policy, once committed). */
gw_pcache *gw_pcache_new(void);
void gw_pcache_free(gw_pcache *pc);
void gw_pcache_forget(gw_pcache *pc, const char *bucket);
/* The owner id of the buckets r creates: root's access key, or the user's name ("" for an
 * anonymous request). */
const char *gw_owner_id(const gw_req *r);
/* ?policy, ?policyStatus, ?publicAccessBlock, ?ownershipControls, ?acl on a bucket; ?acl on an
 * object. Return 1 when they answered the request. */
int gw_access_bucket_op(gw_req *r, const md_bucket *b);
int gw_access_object_op(gw_req *r);
/* x-amz-acl of a write or CreateBucket: the canned ACL into *acl, checked against the bucket's
 * ownership (own) and PublicAccessBlock (pab); the error to answer otherwise. */
gw_s3err gw_acl_from_request(gw_req *r, uint8_t own, uint8_t pab, uint8_t *acl);
/* "BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter" into *out (md_ownership);
 * -1 for another value. */
int gw_ownership_parse(const char *v, uint8_t *out);
/* GET /admin/drives (buckets 0) or /admin/buckets (1), authenticated (gw_admin_lists.c). */
void gw_admin_lists(gw_req *r, int buckets);

/* GET|HEAD /_console/...: the embedded web console (gw_console.c); 1 when answered. */
int gw_console_route(gw_req *r);

/* ---- request bodies (leasing, reading and freeing them is the object layer's: ob.h) ---- */

/*
 * Inline bodies are served only once they match their stored CRC32C: GW_OK, or GW_INTERNAL after
 * an error log line naming bucket/key (gw_object.c). Every path that sends or copies inline bytes
 * (GET, ranged HEAD, CopyObject and UploadPartCopy sources) calls it first.
 */
gw_s3err gw_inline_check(gw_req *r, const char *bucket, const char *key, const md_object *o);
/*
 * Make the request's body data durable: flush the writer's last stripe and fdatasync the drives
 * (sets r->layout/has_layout). CM_OK at once for inline bodies. Blocking: call it from a worker.
 */
cm_err gw_body_seal(gw_req *r);
/*
 * Free a request and everything it owns (the end of on_done, or of an orphaned job). Never waits
 * on a disk: deletes are queued (ob_delete_async), or handed to a worker when a queue is full.
 */
void gw_req_free(gw_req *r);
/* gw_md5.c: this loop's MD5 batch. Whether r's body bytes go through it (a data body whose MD5
 * context has the SIMD lanes). */
int gw_md5_batched(const gw_req *r);
/* The sink took the first n bytes of buf (r's body buffer, not drained): pause r's body, and
 * have them hashed, drained and the body resumed by this loop's batch, later in this loop turn.
 * When the batch cannot be scheduled they are hashed and drained at once. */
void gw_md5_defer(gw_req *r, struct evbuffer *buf, size_t n);
/* r ends (on_done) with bytes deferred: take it out of the batch. */
void gw_md5_forget(gw_req *r);

/* ---- gw_pool.c: blocking work off the event loops ---- */

/* nthreads workers; past max_queued waiting jobs the pool is saturated (gw_offload). */
cm_err gw_pool_new(int nthreads, size_t max_queued, gw_pool **out);
/* Should a new request of g be refused (503 SlowDown) before it starts: a cluster node whose
 * workers are saturated (gw_offload then queues past the bound rather than block a loop). */
int gw_pool_refuses(gw_pool *p, const gw *g);
/*
 * The event loops have exited: wait for the running and queued jobs and free their requests
 * (a job finishing from now on never goes back to a loop). gw_offload then runs jobs inline.
 */
void gw_pool_stop(gw_pool *p);
void gw_pool_free(gw_pool *p); /* stops first; NULL is a no-op */
/* Completions posted back to the loops so far, and how many event_base_once runs carried them
 * (fewer: the completions posted to a loop before it ran them share one run). */
void gw_pool_return_counts(gw_pool *p, uint64_t *returned, uint64_t *runs);
/*
 * Run work(r) on a worker thread, then done(r) on r's event loop. While it runs the request
 * belongs to the worker: the loop must not touch it, and work must not use r->net. A saturated
 * pool runs it inline on a single node (a local commit), and queues it anyway on a cluster node
 * (work may wait on other nodes: never on a loop).
 */
void gw_offload(gw_req *r, gw_work_fn work, gw_finish_fn done);
/* Run work(r) on a worker and free r there (no answer: the connection is gone). */
void gw_dispose(gw_req *r, gw_work_fn work);
/* An ob_runner (ctx = the pool): run a writer's data job on a worker; -1 once stopping. */
int gw_pool_job(void *pool, ob_job *j);
/*
 * A job that another thread completes without a worker (the metadata commit thread, for inline
 * PUTs): gw_async_begin hands r over as gw_offload does; the completing thread then either calls
 * gw_async_end(r) (done(r) runs on r's loop) or gw_async_continue(r, work) (work(r) on a worker
 * first; it must not block the completing thread, so it queues even past the pool's bound).
 * gw_pool_stop waits for these too.
 */
void gw_async_begin(gw_req *r, gw_finish_fn done);
void gw_async_end(gw_req *r);
void gw_async_continue(gw_req *r, gw_work_fn work);

/*
 * Give r a zeroed operation state of size bytes (freed by state_free) and offload work/done with
 * it; a 500 is sent when it cannot be allocated (gw_bucket.c). The worker may run at once, so the
 * state is not returned: one that needs filling is allocated, filled, then given to gw_offload.
 */
void gw_offload_state(gw_req *r, size_t size, void (*state_free)(void *), gw_work_fn work,
                      gw_finish_fn done);
/* Free the chunks of every part not stored inline, then the array (md_parts_free). Blocking. */
void gw_free_parts(gw *g, md_part *parts, size_t n);

/* ---- gw_known.c: object records a decision reads ---- */

/*
 * The current record of bucket/key for a decision: CM_OK with *out (tmp, or a record r read
 * before: release with gw_known_done), CM_ERR_NOTFOUND (none, or a delete marker), a store's
 * failure, or - on a cluster node, for a record r has not read yet - CM_AGAIN: the key is
 * remembered; gw_known_fetch reads it (from the loop, without blocking: done(r) runs on r's loop
 * with r->meta_err CM_OK, or the read's failure) and the decision is run again.
 */
typedef struct gw_known gw_known;
cm_err gw_known_read(gw_req *r, const char *bucket, const char *key, md_object *tmp,
                     const md_object **out);
void gw_known_done(const md_object *got, md_object *tmp);
int gw_known_wanted(const gw_req *r); /* a decision met CM_AGAIN */
void gw_known_fetch(gw_req *r, gw_finish_fn done);
/* The same read blocking, for a decision on a worker: CM_OK, or the read's failure. */
cm_err gw_known_load(gw_req *r);
void gw_known_free(gw_known *k); /* NULL is a no-op */

/* ---- gw_meta.c: object records, local or replicated ---- */

/* 1 on a cluster node: record calls wait on other nodes, so loop handlers offload them. */
int gw_meta_remote(const gw *g);
cm_err gw_meta_get(gw *g, const char *bucket, const char *key, md_object *out);
/* The record with its local blobs leased (ob_lease_release when done), as ob_object_get_leased. */
cm_err gw_meta_get_leased(gw *g, const char *bucket, const char *key, md_object *out);
cm_err gw_meta_put(gw *g, const char *bucket, const md_object *obj, const md_cond *cond,
                   md_object *old, int *had_old);
cm_err gw_meta_delete(gw *g, const char *bucket, const char *key, const md_cond *cond,
                      md_object *old, int *had_old);
/*
 * DeleteObject's path (gw_object.c): delete bucket/key under cond (vid NULL: the current object,
 * which in a versioned bucket makes a delete marker; else that version, for good), then free the
 * data it no longer needs once no GET reads it; res (or NULL) gets the version made or deleted.
 * The lifecycle worker expires objects through it, so an expiration does exactly what a client's
 * DELETE does. Blocking: a worker or the lifecycle thread.
 */
cm_err gw_object_remove(gw *g, const char *bucket, const char *key, const char *vid,
                        const md_cond *cond, md_vres *res);
cm_err gw_meta_delete_many(gw *g, const char *bucket, const char *const *keys, size_t n,
                           cm_err *errs, md_object *olds, int *had_old);
cm_err gw_meta_list(gw *g, const char *bucket, const md_list_query *q, md_list_result *out);
/*
 * The same reporting the version made or removed (res may be NULL; md_object_put_v and friends).
 * vid names the version to delete (NULL: the key). A cluster node's bucket with versioning
 * Enabled or Suspended keeps its versions as replicated records (repl/rp_version.h); in its
 * other buckets "null" is the key's record, any other id a version that does not exist (nothing
 * deleted), and res says "null", not versioned.
 */
cm_err gw_meta_put_v(gw *g, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old, md_vres *res);
cm_err gw_meta_delete_v(gw *g, const char *bucket, const char *key, const char *vid,
                        const md_cond *cond, md_object *old, int *had_old, md_vres *res);
cm_err gw_meta_delete_many_v(gw *g, const char *bucket, const char *const *keys,
                             const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                             int *had_old, md_vres *res);
/* The same, bypassing GOVERNANCE retention (md_objects_delete_vb; a cluster node keeps no
 * locks). */
cm_err gw_meta_delete_many_vb(gw *g, const char *bucket, const char *const *keys,
                              const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                              int *had_old, md_vres *res, int bypass);
/* A cluster node's (gw_meta_remote) record calls without a worker, from r's loop (r handed over
 * as by gw_async_begin): done(r) runs on r's loop with r->meta_err set, and for the read r->obj
 * (leased, as gw_meta_get_leased) when CM_OK. The put is unconditional (obj borrowed). */
void gw_meta_get_leased_async(gw_req *r, gw_finish_fn done);
void gw_meta_put_async(gw_req *r, const md_object *obj, gw_finish_fn done);
/* A cluster node: 1 when bucket's versioning is not "never enabled" (the namespace's state, from
 * memory); its writes then go through a worker (gw_meta_put_v). 0 on a single node. */
int gw_meta_versioned(gw *g, const char *bucket);
/* The same: the state itself (MD_VERS_*; MD_VERS_NEVER on a single node). */
uint8_t gw_meta_versioning(gw *g, const char *bucket);
/* Version vid of bucket/key (md_version_get; on a cluster node rp_version_get). Blocking. */
cm_err gw_meta_get_version(gw *g, const char *bucket, const char *key, const char *vid,
                           md_object *out);
/* A cluster node: the record holding version vid (NULL: the latest) under its own key, for a
 * change of that version alone (rp_version_record). Blocking. */
cm_err gw_meta_version_record(gw *g, const char *bucket, const char *key, const char *vid,
                              md_object *out);
/* The same with its local blobs leased (ob_version_get_leased on a single node). */
cm_err gw_meta_get_version_leased(gw *g, const char *bucket, const char *key, const char *vid,
                                  md_object *out);
/* A cluster node's worker: r->obj (leased) = the version ?versionId of r->key, r->meta_err. */
void gw_meta_get_version_work(gw_req *r);
/* A cluster node: ListObjectVersions (rp_version_list) and whether the bucket holds versions
 * (CM_OK: none, CM_ERR_CONFLICT). Blocking: a worker. */
cm_err gw_meta_list_versions(gw *g, const char *bucket, const md_vlist_query *q,
                             md_list_result *out);
cm_err gw_meta_no_versions(gw *g, const char *bucket);

/* ---- operations ---- */

/*
 * gw_version.c: versioning. PutBucketVersioning; gw_version_param_ok answers 400 for a malformed
 * ?versionId (returns 0; 1 when absent or well-formed); gw_version_answer sets the version
 * headers of a write's answer from what it did; gw_version_read_answer those of a GET/HEAD of o
 * read for ?versionId vid (NULL: the latest) and answers a delete marker (405 by id, else 404
 * NoSuchKey) or a version the record is not (NoSuchVersion): returns 1 when it answered.
 */
void gw_put_versioning(gw_req *r);
int gw_version_param_ok(gw_req *r);
void gw_version_answer(gw_req *r, const md_vres *res);
int gw_version_read_answer(gw_req *r, const md_object *o, const char *vid);

/*
 * Cluster mode: when r names a bucket this node's store does not know (and is not its
 * CreateBucket), ask the namespace on a worker, commit the bucket here if it exists, then call
 * then(r); returns 1. Returns 0 (nothing done) otherwise: call then(r) yourself (gw_bucket.c).
 */
int gw_bucket_resolve(gw_req *r, gw_finish_fn then);
/* Free the calling thread's pool of GET read buffers (gw_object.c; gw_free, after the loops). */
void gw_get_buffers_release(void);

void gw_op_list_buckets(gw_req *r);
void gw_op_bucket(gw_req *r);         /* every request addressed to a bucket (no key) */
void gw_op_object(gw_req *r);         /* every request addressed to an object */
void gw_op_multipart(gw_req *r);      /* requests with ?uploads or ?uploadId on an object */
void gw_op_copy(gw_req *r, int part); /* CopyObject (part 0) or UploadPartCopy (part 1) */
/* gw_tagops.c: ?tagging (GET, PUT, DELETE) on an object and on an existing bucket, and
 * GET ?attributes on an object. */
void gw_op_object_tagging(gw_req *r);
void gw_op_object_attributes(gw_req *r);
void gw_op_bucket_tagging(gw_req *r);
/* gw_lifecycle.c: ?lifecycle (GET, PUT, DELETE) on an existing bucket. */
void gw_op_bucket_lifecycle(gw_req *r);
/* gw_bdoc.c: a bucket setting kept as one XML document (CORS, website), described by a gw_bdoc:
 * its Put/Get/Delete subresource (gw_op_bdoc, on an existing bucket), whether this node serves it
 * (a single node, or a cluster node whose namespace keeps it) and a read of it (*xml heap, NULL
 * when none; CM_ERR_NOTFOUND: no bucket; a cluster node reads the namespace's memory). */
enum { GW_BDOC_CORS, GW_BDOC_WEBSITE };
typedef struct {
    int kind;               /* GW_BDOC_* */
    const char *name;       /* "CORS", "Website": for messages */
    size_t cap;             /* the largest body */
    gw_s3err none;          /* Get without one */
    int need_md5;           /* Put requires Content-MD5 (or an x-amz-checksum-*) */
    void (*changed)(gw *g); /* after every set (NULL: nothing) */
} gw_bdoc;
extern const gw_bdoc gw_bdoc_cors, gw_bdoc_website;
void gw_op_bdoc(gw_req *r, const gw_bdoc *d);
int gw_bdoc_served(const gw *g, const gw_bdoc *d);
cm_err gw_bdoc_fetch(gw *g, const gw_bdoc *d, const char *bucket, char **xml, size_t *len);
/* gw_corsops.c: ?cors on an existing bucket; the OPTIONS preflight (unauthenticated); the
 * evaluation of a request's Origin (sets r->cors) and its headers (from gw_resp_start). */
void gw_op_bucket_cors(gw_req *r);
/* gw_website.c: ?website on an existing bucket; a website request (r->website set by the
 * router: GET/HEAD, anonymous, HTML errors); the error of one (from gw_error: 1 when answered -
 * a redirect rule or the error document - else 0 and gw_error writes gw_web_error_page). */
typedef struct gw_web_state gw_web_state;
void gw_op_bucket_website(gw_req *r);
void gw_website_request(gw_req *r);
int gw_website_error(gw_req *r, gw_s3err e, const char *message);
void gw_web_error_page(gw_req *r, int status, const char *code, const char *message);
void gw_web_state_free(gw_web_state *ws); /* NULL is a no-op */
/* gw_object.c: answer GetObject of key (replacing r->key) for a website; status 0: as GetObject
 * (conditions, ranges), else the whole object with that status (an error document). */
void gw_object_serve(gw_req *r, const char *key, int status);
void gw_cors_preflight(gw_req *r);
void gw_cors_request(gw_req *r);
void gw_cors_headers(gw_req *r);
cm_err gw_cors_cache_new(gw_cors_cache **out);
void gw_cors_cache_free(gw_cors_cache *c); /* NULL is a no-op */
/* This node changed a bucket's CORS configuration (or deleted the bucket): forget them all. */
void gw_cors_invalidate(gw *g);
/* gw_post.c: POST Object (a multipart/form-data POST to a bucket; not authenticated by headers:
 * the form's signed policy is). gw_post_feed parses more of the form from body, the file's bytes
 * into r->decoded, and checks the policy when the file begins: 0, or -1 once an error is answered.
 */
void gw_op_post_object(gw_req *r);
int gw_post_feed(gw_req *r, struct evbuffer *body);
void gw_post_free(struct gw_post_op *p); /* NULL is a no-op */
/* 1 when the request carries Content-MD5 or an x-amz-checksum-* (header or trailer). */
int gw_checksum_given(gw_req *r);

/* ---- gw_lock.c: Object Lock (docs/object-lock.md) ---- */

/* ?object-lock on a bucket (b: its local record), ?retention / ?legal-hold on an object. */
void gw_op_bucket_object_lock(gw_req *r, const md_bucket *b);
void gw_op_object_lock(gw_req *r);
/*
 * The retention and legal hold of a new version o from the x-amz-object-lock-* headers, or (no
 * mode given, use_default) the bucket's default retention. GW_INVALID_ARGUMENT / _REQUEST with
 * S3's message in msg for a bad or incomplete header, a date not in the future, or lock headers
 * on a bucket without Object Lock.
 */
gw_s3err gw_lock_from_request(gw_req *r, md_object *o, int use_default, char *msg, size_t cap);
/* The bucket's default retention on o, when it has one (CompleteMultipartUpload). */
void gw_lock_default(gw_req *r, md_object *o);
/* 1 (and answered InvalidRequest) when a PUT with lock headers has no Content-MD5 / checksum. */
int gw_lock_put_refused(gw_req *r);
/* 1 when r's principal may set what its x-amz-object-lock-* headers ask (S3: a write with them
 * also needs s3:PutObjectRetention for mode/date, s3:PutObjectLegalHold for the legal hold, on
 * top of s3:PutObject); 0 otherwise (nothing answered). Reads the bucket record (any thread). */
int gw_lock_write_allowed(gw_req *r);
/* The x-amz-object-lock-* headers of a GET / HEAD answer: the retention's only when r may
 * s3:GetObjectRetention, the legal hold's only when it may s3:GetObjectLegalHold (as S3). */
void gw_lock_headers(gw_req *r, const md_object *o);
/* 1 when r asks x-amz-bypass-governance-retention: true and may (root, or a principal allowed
 * s3:BypassGovernanceRetention on bucket/key). May read the bucket record (any thread). */
int gw_lock_bypass(gw_req *r, const char *bucket, const char *key);
/* Wire values, for the unit tests: an ISO 8601 UTC date ("2030-01-01T00:00:00[.fff]Z") into ms
 * since the epoch (0: not one); "GOVERNANCE" / "COMPLIANCE" into MD_LOCK_* (0: neither). */
int gw_lock_parse_date(const char *s, int64_t *ms);
uint8_t gw_lock_mode_of(const char *s);
/* The bodies of PutObjectLockConfiguration, PutObjectRetention (an empty <Retention/>: mode 0)
 * and PutObjectLegalHold: GW_MALFORMED_XML, or GW_INVALID_ARGUMENT (msg) for a bad period. */
gw_s3err gw_lock_parse_config(const char *xml, size_t len, md_bucket *out, char *msg, size_t cap);
gw_s3err gw_lock_parse_retention(const char *xml, size_t len, uint8_t *mode, int64_t *until);
gw_s3err gw_lock_parse_legal_hold(const char *xml, size_t len, uint8_t *on);
/* The x-amz-tagging header of a write into o->tags (none when absent), checked against S3's
 * limits; the error to answer otherwise, its message in msg[cap] (gw_object.c). */
gw_s3err gw_object_tags_from_request(gw_req *r, md_object *o, char *msg, size_t cap);

/* Record part p of the request's upload, freeing the part it replaced. No r->net: worker-safe. */
cm_err gw_part_record(gw_req *r, md_part *p);
/*
 * A cluster node's intent for a part body in cells (docs/multipart-cluster.md, "Reclaiming a
 * killed UploadPart"): begun on a worker once the body's writer w exists, before its first byte
 * (UploadPart, UploadPartCopy); gw_part_intent_record records p as gw_part_record does (under
 * the intent's record id when p's body is the intent's) and drops the intent once the record is
 * settled; gw_part_intent_end, as the request ends, releases one still held (the node's
 * maintenance decides it). A zeroed one holds nothing.
 */
typedef struct {
    md_intent in;
    md_store *md;
    int held;
} gw_part_intent;
cm_err gw_part_intent_begin(gw_req *r, ob_writer *w, gw_part_intent *pi);
cm_err gw_part_intent_record(gw_req *r, gw_part_intent *pi, md_part *p);
void gw_part_intent_end(gw_part_intent *pi);
/* Answer an UploadPart (ETag and checksum headers) or an UploadPartCopy (XML), or err. */
void gw_part_reply(gw_req *r, const md_part *p, int is_copy, cm_err err);
/*
 * gw_object.c: commit the request's verified body (gw_body_seal'd or inline) as object r->key,
 * as PutObject does, with the record's headers, metadata and tags from fill (the error to answer
 * otherwise, its message in msg[cap]) and the success answered by answer. r->op must be free:
 * it takes the put state. POST Object (gw_post.c) uses it.
 */
typedef gw_s3err (*gw_put_fill_fn)(gw_req *r, md_object *o, char *msg, size_t cap);
typedef void (*gw_put_answer_fn)(gw_req *r, const md_object *o);
void gw_put_commit(gw_req *r, gw_put_fill_fn fill, gw_put_answer_fn answer);
/* The ETag and checksum headers of a written object (PutObject's answer). */
void gw_put_result_headers(gw_req *r, const md_object *o);
/* Content-Type, Cache-Control, ..., x-amz-meta-* of the request into o (heap copies). */
gw_s3err gw_object_headers_from_request(gw_req *r, md_object *o);
/* The x-amz-acl of a write into o->acl (gw_acl_from_request with the bucket's settings). */
gw_s3err gw_object_acl_from_request(gw_req *r, md_object *o);
/*
 * Give a single-body record its body: one part (number 0; size, mtime and etag from o) stored at
 * layout, or, when layout is NULL, the inline bytes (borrowed).
 */
void gw_object_attach_body(md_object *o, md_part *part, const md_layout *layout, uint8_t *inl,
                           size_t inl_len);
/* If-None-Match: * / If-Match of a write into c (etag copied into etag_buf). */
gw_s3err gw_write_cond(gw_req *r, md_cond *c, char *etag_buf, size_t cap);
md_cksum_alg gw_md_alg(cm_ck_alg a);
cm_ck_alg gw_cm_alg(md_cksum_alg a); /* MD_CK_NONE maps to CRC64NVME, S3's default */
/* "x-amz-checksum-crc32c" for MD_CK_CRC32C (out: cap bytes, 40 is enough). */
void gw_ck_header_name(md_cksum_alg alg, char *out, size_t cap);
/* Send buf as a 200 XML answer, or a 500 when building it failed; frees buf (gw_bucket.c). */
void gw_send_doc(gw_req *r, struct evbuffer *buf, cm_err built);
/* The fixed owner-only ACL document (a private ACL owned by the signer). */
void gw_send_owner_acl(gw_req *r);
/* The AccessControlPolicy of owner and a canned ACL: the owner's FULL_CONTROL plus the groups'
 * grants of acl (gw_access.c). */
void gw_send_acl(gw_req *r, const char *owner, uint8_t acl);

/* /metrics: 1 when r may read it; otherwise answers 401 or 403 and returns 0 (gw_metrics_acl.c). */
int gw_metrics_allowed(gw_req *r);

/* ---- gw_stats.c: request metrics and the access log (docs/metrics.md) ---- */

cm_err gw_stats_new(gw_stats **out);
void gw_stats_free(gw_stats *s); /* NULL is a no-op */
/* At on_request: start the clock. */
void gw_stats_begin(gw_req *r);
/* Name r's S3 operation (r->opk) from its method, bucket, key, query and headers. */
void gw_stats_classify(gw_req *r);
/* At on_done (r->net still valid): count the request, observe its latency, log its line. */
void gw_stats_end(gw_req *r);
/* The request families of /metrics; blocking-free, any thread. */
void gw_stats_write(gw *g, FILE *f);

#endif
