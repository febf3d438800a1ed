/*
 * co.h - coordination through etcd: the only module that knows etcd (docs/coordination.md).
 *
 * cairn takes consensus from etcd (3.4, its v3 JSON gateway) and builds none of its own. This
 * module offers the few primitives the cluster needs on top of a small blocking HTTP/1.1 client:
 *
 *   co_client     keys and leases: get, put, prefix range, delete, compare-and-set, lease calls
 *   versioned doc co_get gives a value with its mod revision; co_cas writes only if the key is
 *                 still at that revision; co_doc watches a key from a background thread, calls
 *                 back with every new version in order, resumes after a reconnect from the last
 *                 revision it saw, and keeps the last value for readers while etcd is unreachable
 *                 (in memory, and optionally in a cache file that outlives a restart)
 *   liveness      co_keeper grants a lease and keeps it alive from a background thread; keys put
 *                 with it (co_member_register) vanish when the process dies; co_member_list
 *   leader        co_leader_acquire takes a named lease-bound key if free; its create revision is
 *                 a fencing token that only grows; co_fenced_put writes only while the token
 *                 still holds the key, so a stale leader's writes are refused
 *   co_key        the key layout /cairn/<cluster-id>/<kind>/<name>
 *
 * co_layout.h, the second header, is the node's view of the cluster layout and membership built
 * on these (the one part of coord/ that knows placement/, so this header does not include pl.h).
 *
 * Threading: a co_client is used by one thread at a time (it owns one keep-alive connection);
 * co_doc and co_keeper run their own threads with their own clients. Every call is bounded by the
 * configured timeout per endpoint tried. Errors: CM_ERR_UNAVAILABLE when no endpoint answered,
 * CM_ERR_UNCERTAIN when a compare-and-set was sent but its answer was lost (it may or may not have
 * been applied), CM_ERR_CONFLICT / CM_ERR_EXISTS / CM_ERR_PRECONDITION for refused compares,
 * CM_ERR_NOTFOUND for a missing key or an expired lease, CM_ERR_CORRUPT for an answer that does
 * not parse.
 */
#ifndef CO_H
#define CO_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

#define CO_MAX_ENDPOINTS 16
#define CO_DEFAULT_TIMEOUT_MS 2000

typedef struct {
    /* "http://host:port" each, tried in order; a failed one passes the turn to the next */
    const char *endpoints[CO_MAX_ENDPOINTS];
    int n_endpoints;
    int timeout_ms; /* per request and endpoint; 0 means CO_DEFAULT_TIMEOUT_MS */
} co_config;

/* Parse "URL,URL,..." into cfg (pointers into a copy kept in *storage, free()d by the caller). */
cm_err co_config_parse(const char *list, co_config *cfg, char **storage);

/*
 * Key layout (docs/coordination.md): everything of one cluster under /cairn/<cluster-id>/.
 * co_key writes "/cairn/<cluster>/<kind>" or, with a name, "/cairn/<cluster>/<kind>/<name>"
 * (a prefix ends in '/' when name is ""). Cluster ids and kinds are [A-Za-z0-9._-]+; names may
 * not contain '/' or NUL. CM_ERR_INVAL for a bad part, CM_ERR_TOOBIG when cap is too small.
 */
#define CO_KIND_LAYOUT "layout"        /* the layout document */
#define CO_KIND_LAYOUT_STAGED "staged" /* a staged layout change */
#define CO_KIND_NODES "nodes"          /* <node-id>: liveness registrations */
#define CO_KIND_LEADERS "leaders"      /* <partition>: leader leases */
cm_err co_key(char *out, size_t cap, const char *cluster, const char *kind, const char *name);

typedef struct co_client co_client;

/* A client over cfg's endpoints (copied). Connects lazily: creating one never fails on etcd. */
cm_err co_client_new(const co_config *cfg, co_client **out);
void co_client_free(co_client *c);
/* The endpoint the last request went to (or will go to first). */
const char *co_client_endpoint(const co_client *c);

/* One key with its value and etcd's bookkeeping. Strings are owned by the co_kv. */
typedef struct {
    char *key;
    uint8_t *value;
    size_t len;
    int64_t create_rev; /* revision that created this incarnation of the key: a fencing token */
    int64_t mod_rev;    /* revision of the last change: the document's version */
    int64_t version;    /* changes since creation */
    int64_t lease;      /* lease id, 0 when none */
} co_kv;

typedef struct {
    co_kv *kvs;
    size_t n;
    int64_t revision; /* the store's revision when the range was read */
} co_kvs;

void co_kv_release(co_kv *kv);
void co_kvs_release(co_kvs *kvs);

/* Read key. CM_ERR_NOTFOUND when absent (*rev still receives the store revision when non-NULL). */
cm_err co_get(co_client *c, const char *key, co_kv *out, int64_t *rev);
/* Every key starting with prefix, in key order (at most limit, 0 = all). */
cm_err co_range_prefix(co_client *c, const char *prefix, int64_t limit, co_kvs *out);
/* Put key = value (bound to lease unless 0). *rev receives the new revision when non-NULL. */
cm_err co_put(co_client *c, const char *key, const void *value, size_t len, int64_t lease,
              int64_t *rev);
/* Delete key (or every key under it when prefix); *deleted counts them when non-NULL. */
cm_err co_delete(co_client *c, const char *key, int prefix, int64_t *deleted);
/*
 * Compare-and-set: write key = value only if its mod revision is still expect_rev (0: only if the
 * key does not exist). CM_OK with *new_rev; CM_ERR_CONFLICT when the key changed meanwhile (then
 * *new_rev receives its current mod revision, 0 when absent); CM_ERR_UNCERTAIN when the answer was
 * lost (read the key again to learn the outcome).
 */
cm_err co_cas(co_client *c, const char *key, const void *value, size_t len, int64_t expect_rev,
              int64_t lease, int64_t *new_rev);
/*
 * Drop the history before revision rev (etcd keeps every old version until compacted; an admin or
 * a periodic job compacts). Watches that still needed it re-read their key (see co_doc).
 */
cm_err co_compact(co_client *c, int64_t rev);

/* What one member says about itself (etcd's maintenance status), for health checks. */
typedef struct {
    uint64_t member_id; /* the member that answered */
    uint64_t leader_id; /* its Raft leader, 0 when it has none */
    int64_t revision;   /* the store's revision as this member has applied it */
    int64_t raft_term;
    int64_t db_size; /* bytes */
    char version[24];
} co_status_info;

cm_err co_status(co_client *c, co_status_info *out);

/* Leases. ttl in seconds. keepalive: CM_ERR_NOTFOUND once the lease has expired. */
cm_err co_lease_grant(co_client *c, int64_t ttl, int64_t *id);
cm_err co_lease_keepalive(co_client *c, int64_t id, int64_t *ttl_left);
cm_err co_lease_revoke(co_client *c, int64_t id);

/*
 * co_doc: follow one key (a versioned document such as the layout). A background thread reads the
 * key, then watches it from the next revision; fn is called on that thread with each new version
 * in revision order (value NULL, len 0 when the key was deleted). After a lost connection it
 * reconnects with a backoff and resumes from the last revision seen, so no version is skipped
 * unless etcd compacted it away (then it re-reads the key: the newest version is still seen).
 */
typedef void (*co_doc_fn)(void *arg, const uint8_t *value, size_t len, int64_t mod_rev);
typedef struct co_doc co_doc;

/*
 * cache_path (NULL: memory only) keeps the last version on disk as well (written atomically, with
 * a CRC32C): a node restarted while etcd is unreachable starts from the version it last saw. A
 * cached version found at open is the first one delivered; a missing or damaged file is ignored
 * (logged). CM_ERR_INVAL when cfg names no usable endpoint.
 */
cm_err co_doc_open(const co_config *cfg, const char *key, const char *cache_path, co_doc_fn fn,
                   void *arg, co_doc **out);
void co_doc_free(co_doc *d);
/* Wait until a version is cached (from etcd or the cache file): CM_OK, or CM_ERR_TIMEOUT. */
cm_err co_doc_wait(co_doc *d, int timeout_ms);
/*
 * The last version seen (a malloc'd copy in *value, free() it), whether etcd answers or not.
 * CM_ERR_NOTFOUND when no version was seen yet or the key was deleted.
 */
cm_err co_doc_cached(co_doc *d, uint8_t **value, size_t *len, int64_t *mod_rev);
/* 1 while the watch stream is connected. */
int co_doc_connected(co_doc *d);

/*
 * co_keeper: a lease of ttl seconds kept alive by a background thread (a keepalive every ttl/3).
 * co_keeper_alive turns 0 when etcd reported the lease expired (the thread then stops: the keys
 * bound to it are gone, and the owner must register again with a new keeper).
 */
typedef struct co_keeper co_keeper;

cm_err co_keeper_start(const co_config *cfg, int64_t ttl, co_keeper **out);
int64_t co_keeper_lease(const co_keeper *k);
int co_keeper_alive(co_keeper *k);
/* Stop keeping the lease; revoke it (its keys vanish at once) when revoke, else let it expire. */
void co_keeper_free(co_keeper *k, int revoke);

/* Liveness: register prefix+name = value under lease; list the members under prefix. */
cm_err co_member_register(co_client *c, const char *prefix, const char *name, const void *value,
                          size_t len, int64_t lease);
cm_err co_member_list(co_client *c, const char *prefix, co_kvs *out);

/*
 * Leader lease for a named resource (key): take it when free, bound to lease (renewal is the
 * lease's keepalive). CM_OK with *token (the key's create revision, larger for every new holder);
 * already held under the same lease counts as acquired. CM_ERR_EXISTS when someone else holds it
 * (*token then receives the holder's token).
 */
cm_err co_leader_acquire(co_client *c, const char *key, int64_t lease, const void *value,
                         size_t len, int64_t *token);
/* Give it up, only if still held with token (never deletes a newer holder's key). */
cm_err co_leader_release(co_client *c, const char *key, int64_t token);
/* Write key = value only while leader_key is still held with token: CM_ERR_PRECONDITION if not. */
cm_err co_fenced_put(co_client *c, const char *leader_key, int64_t token, const char *key,
                     const void *value, size_t len, int64_t *rev);

#endif
