/*
 * gw.h - the S3 gateway: turns HTTP requests from net/ into S3 operations over the metadata
 * store (meta/) and the erasure-coded data path (ob.h).
 *
 * One gw serves every event loop of the server; its state (stores, credentials, configuration)
 * is shared and thread-safe. Each request gets a gw_req (private) that lives from on_request to
 * on_done and owns everything the request allocated.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"
#include "net.h"
#include "ob.h"
#include "rp.h"

typedef struct gw gw;

typedef struct {
    const char *data_dir;   /* holds drive0..drive(N-1)/ (and meta/ with one metadata copy) */
    const char *region;     /* default "us-east-1" */
    const char *domain;     /* virtual-hosted style: "<bucket>.<domain>"; default "localhost" */
    const char *access_key; /* the root credentials */
    const char *secret_key;
    /* "<bucket>.<website_domain>" is a website request (docs/website.md); NULL or "": off */
    const char *website_domain;
    int ndrives, k, m;        /* default 6 drives, 4 + 2 */
    uint32_t cell_size;       /* default 256 KiB */
    size_t inline_threshold;  /* bodies up to this size live in the metadata record; 64 KiB */
    uint64_t max_object_size; /* single PUT limit; 5 GiB */
    int workers;              /* threads for fsyncs and commits; default 64 */
    int workers_queue;        /* jobs waiting for a worker past which the pool is saturated
                                 (gw_pool.c); default 4096 */
    int sigv2_off;            /* refuse Signature Version 2 requests; default 0 (accepted) */
    int meta_copies;    /* metadata copies on drive0.. (md_open_data); default 3, 1 = DATA/meta */
    int compression;    /* transparent compression of stored bodies (docs/compression.md); 1 */
    int compress_level; /* its zstd level; default 1 */
    /* Who may read /metrics (gw_metrics_acl.c): a request with "Authorization: Bearer TOKEN"
     * from anywhere, or any request from an address in the allow list ("CIDR,...") */
    const char *metrics_token; /* NULL or "" = no token */
    const char *metrics_allow; /* default "127.0.0.0/8,::1" (loopback only); "" = none */
    /* The master key of encryption at rest and of user secrets (cm_mkey_load): NULL or "" = env
     * CAIRN_MASTER_KEY, else data_dir + ".key" (created on first start). Read only by gw_new. */
    const char *master_key_file;
    int post_fields_timeout_ms; /* POST Object: the form's fields before the file must arrive
                                   within this of the request's start; default 30000 */
    const bs_io *io; /* the drives' I/O table: NULL = POSIX; tests inject faults with it */
} gw_config;

/* Fill the defaults above (data_dir "./cairn-data", credentials NULL). */
void gw_config_defaults(gw_config *cfg);

/*
 * Open the stores under cfg->data_dir (creating them on first start). CM_ERR_INVAL for a bad
 * configuration, CM_ERR_UNAVAILABLE when too few drives can be opened, CM_ERR_IO otherwise (each
 * logged). cfg is copied.
 */
cm_err gw_new(const gw_config *cfg, gw **out);
void gw_free(gw *g); /* NULL is a no-op */
/*
 * Call once the event loops have exited (net_server_run returned) and before net_server_free:
 * waits for the worker jobs still running (a long copy, a stalled fsync) and frees the requests
 * they held, so no job returns to a loop that is gone. NULL is a no-op.
 */
void gw_quiesce(gw *g);

/* The object store under g (borrowed until gw_free): a cluster node's RPC serves its drives. */
ob_store *gw_object_store(gw *g);
/* Its metadata store (the local one: buckets, uploads, this node's replicas of partitions). */
md_store *gw_meta_store(gw *g);

/* The net callbacks; pass the gw as their arg. */
const net_handler *gw_net_handler(void);

/*
 * Create a scrubber (ob_scrub_new) over g's object store and metadata, with g's inline threshold,
 * and attach it so the admin API (/admin/scrub, /admin/status, /metrics) reports and triggers
 * it. cfg NULL = defaults. Start it with ob_scrub_start.
 */
cm_err gw_scrub_new(gw *g, const ob_scrub_config *cfg, ob_scrub **out);
/*
 * Master-key rotation (gw_sse_rewrap.c, docs/encryption.md), after gw_new (on a cluster node
 * after gw_set_repl: its pass goes through the replicated records): check the master keys that may
 * still wrap data keys against those loaded (a missing one is logged), resume a rewrap pass that
 * was running. *out NULL when the server has no master key. stop: a running pass ends its step and
 * resumes at the next start (NULL: nothing).
 */
typedef struct gw_rewrap gw_rewrap;
cm_err gw_rewrap_start(gw *g, gw_rewrap **out);
void gw_rewrap_stop(gw *g, gw_rewrap *rw);
/* Detach s from g (NULL g allowed) and free it (ob_scrub_free). Call before gw_free. */
void gw_scrub_free(gw *g, ob_scrub *s);

/* /health/ready answers 200 only after this is set (and 503 again while shutting down). */
void gw_set_ready(gw *g, int ready);

/*
 * /metrics (docs/metrics.md): the registry whose sources are rendered after the gateway's own
 * metrics; add sources before serving (cm_metrics.h). Borrowed until gw_free.
 */
typedef struct cm_metrics cm_metrics;
cm_metrics *gw_metrics_registry(gw *g);
/* The JSON access log: one line per request into l (cm_alog.h), NULL = off. Set before serving;
 * l must outlive the serving (close it after the loops stop). */
typedef struct cm_alog cm_alog;
void gw_set_access_log(gw *g, cm_alog *l);

/*
 * A further condition of /health/ready (a cluster node: registered as a member, layout known):
 * fn returns 1 when ready, else 0 with a one-line reason in why. It runs on an event-loop thread
 * for every probe, so it must be cheap and never block. Set before serving.
 */
typedef int (*gw_ready_fn)(void *arg, char *why, size_t cap);
void gw_set_ready_check(gw *g, gw_ready_fn fn, void *arg);

/*
 * Replace the root credentials (SIGHUP reloads them). Requests already authenticated keep going;
 * the next signature is checked against the new pair. CM_ERR_NOMEM leaves the old pair.
 */
cm_err gw_set_credentials(gw *g, const char *access_key, const char *secret_key);

/*
 * An extra member of GET /admin/status (e.g. the cluster view, cmd/server.c): fn writes
 * `"name":value` in JSON into out (at most cap bytes) and returns its length, 0 for nothing. It
 * runs on an event-loop thread, so it must not block. Set before serving.
 */
typedef size_t (*gw_status_fn)(void *arg, char *out, size_t cap);
void gw_set_status_extra(gw *g, gw_status_fn fn, void *arg);

/*
 * The cluster's admin routes (cmd/cluster_repair.c): GET|POST /admin/repair and
 * GET /admin/object-cells?bucket=B&key=K, answered by fn on a worker thread (it may block):
 * route is "repair" or "object-cells", bucket and key the decoded query parameters ("" when
 * absent); fn writes a JSON document into out (at most cap bytes) and returns the HTTP status.
 * Without it those paths answer 503. Set before serving.
 */
typedef int (*gw_admin_fn)(void *arg, const char *route, int post, const char *bucket,
                           const char *key, char *out, size_t cap);
void gw_set_admin_extra(gw *g, gw_admin_fn fn, void *arg);

/*
 * The bucket namespace, when it is not the local metadata store alone (cluster mode: cmd/server.c
 * connects it to coord/co_buckets.h; without one nothing below is used and the single-node code
 * path is unchanged). Every function blocks (bounded by the etcd client's deadlines) and is
 * called on a worker, never on an event loop:
 *   create    add the bucket cluster-wide with its consistency mode (CreateBucket's
 *             x-cairn-consistency; an existing bucket keeps its own): CM_OK, CM_ERR_EXISTS with
 *             *have, else a failure (CM_ERR_UNAVAILABLE when etcd does not answer: 503)
 *   remove    CM_OK, CM_ERR_NOTFOUND, else a failure
 *   lookup    the bucket's record, as fresh as the namespace can tell (CM_OK or CM_ERR_NOTFOUND)
 *   is_empty  "is the bucket empty cluster-wide?": CM_OK when empty, CM_ERR_CONFLICT when not
 * The gateway mirrors the outcome into its local store (object records live under local md
 * buckets): CreateBucket commits the bucket locally after create, DeleteBucket deletes it locally
 * after remove, and a request for a bucket the local store does not know asks lookup (on a
 * worker) and commits it locally before it is served. The owner mirrors the namespace's other
 * changes with gw_bucket_mirror_add/remove.
 * One more, optional, answers from memory and may be called on an event loop (HeadBucket's
 * x-cairn-consistency; NULL: strong):
 *   consistency  the bucket's mode as this node knows it (RP_STRONG for one it does not know)
 */
typedef struct {
    cm_err (*create)(void *arg, const md_bucket *want, rp_consistency mode, md_bucket *have);
    cm_err (*remove)(void *arg, const char *name);
    cm_err (*lookup)(void *arg, const char *name, md_bucket *out);
    cm_err (*is_empty)(void *arg, const char *name);
    void *arg;
    rp_consistency (*consistency)(void *arg, const char *name); /* never blocks */
    /* Optional (NULL: Put/DeleteBucketTagging answer 501): the bucket's tags in the namespace.
     * tags_set replaces them (n 0: none; blocks; CM_ERR_NOTFOUND, CM_ERR_UNAVAILABLE as create)
     * and returns once tags_get on this node reads them back; tags_get answers from memory
     * (*out: md_meta_free; CM_ERR_NOTFOUND for a bucket it does not know). */
    cm_err (*tags_set)(void *arg, const char *name, const md_meta *tags, size_t n);
    cm_err (*tags_get)(void *arg, const char *name, md_meta **out, size_t *n);
    /* Optional (NULL: Put/DeleteBucketCors answer 501): the bucket's CORS configuration (the XML
     * PutBucketCors accepted) in the namespace, as the tags: cors_set replaces it (NULL: none;
     * blocks; CM_ERR_TOOBIG past what the namespace keeps), cors_get copies it from memory
     * (*xml: free; NULL when none; CM_ERR_NOTFOUND for a bucket it does not know). */
    cm_err (*cors_set)(void *arg, const char *name, const char *xml);
    cm_err (*cors_get)(void *arg, const char *name, char **xml);
    /* Optional (NULL: the access subresources' changes answer 501 and unsigned requests are
     * refused): the bucket's access settings in the namespace (docs/users.md). access_get sets
     * the acl, pab and ownership of *b as this node last saw them and policy_get copies the policy
     * (*json: free; NULL when none), both from memory, never waiting (CM_ERR_NOTFOUND for a bucket
     * unknown here); access_set (those of the acl, pab and ownership of *b that fields,
     * MD_ACCESS_*, names) and policy_set (NULL: none) replace them cluster-wide, blocking as
     * tags_set, returning once this node reads them back. */
    cm_err (*access_get)(void *arg, const char *name, md_bucket *b);
    cm_err (*policy_get)(void *arg, const char *name, char **json);
    cm_err (*access_set)(void *arg, const char *name, const md_bucket *b, unsigned fields);
    cm_err (*policy_set)(void *arg, const char *name, const char *json);
    /* Optional (NULL: Put/DeleteBucketWebsite answer 501, website requests a 501 page): the
     * bucket's website configuration (the XML PutBucketWebsite accepted), as cors_set/cors_get. */
    cm_err (*website_set)(void *arg, const char *name, const char *xml);
    cm_err (*website_get)(void *arg, const char *name, char **xml);
    /* Optional (NULL: PutBucketVersioning answers 501): the bucket's versioning state in the
     * namespace (MD_VERS_ENABLED or MD_VERS_SUSPENDED; blocks as tags_set, returning once this
     * node reads it back); access_get answers it in b->versioning. */
    cm_err (*versioning_set)(void *arg, const char *name, uint8_t state);
    /* Optional (NULL: ?encryption and SSE answer 501): the bucket's default encryption in the
     * namespace (docs/encryption.md). access_get also sets *b's sse_default and sse_bucket_key;
     * sse_set replaces them cluster-wide from *b (sse_default MD_SSE_NONE: removed), blocking
     * as access_set. */
    cm_err (*sse_set)(void *arg, const char *name, const md_bucket *b);
    /* Optional (NULL: PutBucketLifecycleConfiguration answers 501): the bucket's lifecycle
     * configuration (the document gw_lifecycle.c stores), as website_set/website_get;
     * lifecycle_next names the first bucket after `after` (NULL: the first) that has one, in name
     * order, from memory (CM_ERR_NOTFOUND: none). */
    cm_err (*lifecycle_set)(void *arg, const char *name, const char *xml);
    cm_err (*lifecycle_get)(void *arg, const char *name, char **xml);
    cm_err (*lifecycle_next)(void *arg, const char *after, char *out, size_t cap);
    /* Optional (NULL: Object Lock answers 501): the bucket's Object Lock configuration in the
     * namespace (docs/object-lock.md, "On a cluster"). create takes want->lock_enabled (with
     * versioning Enabled), access_get also sets *b's lock_enabled, lock_mode, lock_unit and
     * lock_period, lock_set turns lock on with *b's default retention (CM_ERR_LOCKED when the
     * versioning is not Enabled), blocking as access_set. */
    cm_err (*lock_set)(void *arg, const char *name, const md_bucket *b);
} gw_bucket_ns;

/* Set before serving (copied). */
void gw_set_bucket_ns(gw *g, const gw_bucket_ns *ns);
/* The namespace's owner tells of a bucket whose access settings changed (another node's change):
 * its parsed policy is dropped from the cache. Any thread. */
void gw_bucket_access_changed(gw *g, const char *name);

/*
 * Users and access keys, when they are not the local users database (cluster mode:
 * cmd/cluster_users.c connects them to coord/co_users.h; without one the single-node code runs).
 * list copies the users and keys as this node last saw them (memory, never waits; users sorted
 * by name, keys by access key, as md_users_list); the others change them cluster-wide with
 * md_users.c's answers (CM_ERR_EXISTS, CM_ERR_NOTFOUND; CM_ERR_UNAVAILABLE when etcd does not
 * answer), block (on a worker) and return once list on this node shows the change. The owner
 * calls gw_users_reload after every change it learns of (another node's), so the key table
 * follows.
 */
typedef struct {
    cm_err (*list)(void *arg, md_user **users, size_t *nu, md_user_key **keys, size_t *nk);
    cm_err (*create)(void *arg, const md_user *u, const md_user_key *k);
    cm_err (*key_add)(void *arg, const md_user_key *k);
    cm_err (*set_disabled)(void *arg, const char *name, int disabled);
    cm_err (*remove)(void *arg, const char *name);
    cm_err (*key_set_disabled)(void *arg, const char *access_key, int disabled);
    cm_err (*key_remove)(void *arg, const char *access_key);
    /* the key's wrapped secret old -> k->sealed (the master-key rewrap); CM_ERR_NOTFOUND when it
     * is neither any more. NULL: the rewrap cannot move access keys of this namespace */
    cm_err (*key_reseal)(void *arg, const md_user_key *k, const uint8_t *old, size_t old_len);
    void *arg;
} gw_user_ns;

/* Set before serving (copied), then the key table is rebuilt from it. */
cm_err gw_set_user_ns(gw *g, const gw_user_ns *ns);
/* Rebuild the key table from its source (blocking: a worker or the owner's thread). */
cm_err gw_users_reload(gw *g);
/*
 * Emptiness as the gateway's object records say (gw_meta_list: on a cluster node the replicated
 * listing, from a read quorum of every shard, so it is cluster-wide; else this node's store). No
 * object record, tombstones and unfinished uploads do not count (as in S3): CM_OK when empty,
 * CM_ERR_CONFLICT when not, CM_ERR_NOTFOUND without the bucket, CM_ERR_UNAVAILABLE without a
 * quorum. Blocks on a cluster node: call it from a worker.
 */
cm_err gw_bucket_empty(gw *g, const char *name);
/*
 * Mirror a namespace change into the local store (blocking: a commit). add: an existing bucket
 * is left as it is. remove: the bucket and its unfinished uploads (their chunks freed), only when
 * the local record is that incarnation (created_ms equal; created_ms 0: whichever is there), so a
 * late removal of a deleted bucket never deletes its re-creation; one holding object records
 * here (a record that is not a tombstone) is kept (CM_ERR_CONFLICT, logged). A missing one, or
 * another incarnation, is CM_OK.
 */
cm_err gw_bucket_mirror_add(gw *g, const md_bucket *b);
cm_err gw_bucket_mirror_remove(gw *g, const char *name, int64_t created_ms);

/*
 * A cluster node: object records go to the replicated metadata (repl/rp.h) instead of the local
 * store (gw_meta.c). c is borrowed and must outlive the serving; set before serving.
 */
typedef struct rp rp;
void gw_set_repl(gw *g, rp *c);

#endif
