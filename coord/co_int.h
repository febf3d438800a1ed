/*
 * co_int.h - coord/ internals: the blocking HTTP/1.1 client (co_http.c), the JSON helpers
 * shared by the etcd calls (co_kv.c) and the cache file (co_watch.c).
 */
#ifndef CO_INT_H
#define CO_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "co.h"

typedef struct co_http co_http;

cm_err co_http_new(const co_config *cfg, co_http **out);
void co_http_free(co_http *h);
const char *co_http_endpoint(const co_http *h);

/*
 * POST body to path; on CM_OK *resp (malloc'd, NUL-terminated) holds the body of a 2xx answer.
 * Tries each endpoint at most once, starting with the current one. A request that may not be
 * repeated (!idempotent) is not sent again once it may have reached a server: its lost answer is
 * CM_ERR_UNCERTAIN. A non-2xx answer is CM_ERR_UNAVAILABLE for 5xx (next endpoint tried when
 * idempotent) and CM_ERR_INVAL otherwise.
 */
cm_err co_http_post(co_http *h, const char *path, const char *body, int idempotent, char **resp,
                    size_t *resp_len);

/*
 * POST body to path and read the streamed answer line by line (etcd's watch), calling fn for each
 * non-empty line; returns when fn returns non-zero (CM_OK), when *stop becomes set (CM_OK), or
 * when the stream ends or fails (CM_ERR_CLOSED, CM_ERR_UNAVAILABLE...). The connect and the answer
 * head are bounded by the timeout; the stream itself may be quiet for any time (TCP keepalive
 * notices a dead peer).
 */
typedef int (*co_line_fn)(void *arg, const char *line, size_t len);
cm_err co_http_stream(co_http *h, const char *path, const char *body, co_line_fn fn, void *arg,
                      const atomic_int *stop);

/* JSON helpers (co_kv.c). 64-bit numbers arrive as strings in etcd's JSON; absent means 0. */
int64_t co_json_i64(json_t *obj, const char *name);
/* kv from an etcd KeyValue object (base64 key and value). */
cm_err co_json_kv(json_t *obj, co_kv *out);
/* A base64 string for data (malloc'd). */
char *co_b64(const void *data, size_t len);
/* The CLOCK_REALTIME time timeout_ms from now, for pthread_cond_timedwait. */
void co_deadline(struct timespec *until, int timeout_ms);
/*
 * A follower's wait for a version (co_layout_wait, co_buckets_wait): lock mu and wait on cv (which
 * is broadcast under mu whenever a version is applied) until reached(arg, target) holds, at most
 * timeout_ms. CM_OK, or CM_ERR_TIMEOUT.
 */
cm_err co_wait_version(pthread_mutex_t *mu, pthread_cond_t *cv, int timeout_ms,
                       int (*reached)(const void *arg, uint64_t target), const void *arg,
                       uint64_t target);
/*
 * dst = src with its endpoint strings copied into storage (CO_MAX_ENDPOINTS entries, NULL or
 * strdup'd: the owner frees them). CM_ERR_NOMEM.
 */
cm_err co_config_copy(co_config *dst, char **storage, const co_config *src);
/* Sleep ms milliseconds, in steps, returning early (1) when *stop is set. */
int co_sleep(int ms, const atomic_int *stop);

/*
 * A document's cache file (co_watch.c; format there): write value at mod_rev atomically and
 * durably (value NULL: remove the file; failures are logged, what names the document), read it
 * back (*value malloc'd). Read: CM_ERR_NOTFOUND without a file, CM_ERR_CORRUPT (logged) when
 * damaged. co_doc keeps the last version seen in one; co_layout the last one it adopted.
 */
void co_cache_write(const char *path, const char *what, const uint8_t *value, size_t len,
                    int64_t mod_rev);
cm_err co_cache_read(const char *path, const char *what, uint8_t **value, size_t *len,
                     int64_t *mod_rev);

/*
 * A node following one etcd document (co_follow.c; co_buckets.c and co_users.c embed one): the
 * document's key, a copy of the etcd configuration, its cache file, the mutex and condition the
 * owner guards its applied version with, and the watch (co_doc). open: read the cache file and
 * hand it to apply, run cached() when it applied (before the watch starts), then watch the key:
 * each version goes to apply on the watch thread and, when applied, to the cache file and to
 * after() (optional). apply answers 1 when the version became the applied one. release stops the
 * watch (no callback runs afterwards) and frees the rest; it is safe after a failed open.
 */
typedef struct {
    co_config cfg;
    char *cfg_storage[CO_MAX_ENDPOINTS];
    char key[256];
    char *cache_path; /* NULL: none */
    const char *what; /* "the users document": for the log and the cache */
    int (*apply)(void *arg, const uint8_t *value, size_t len, int64_t mod_rev);
    void (*after)(void *arg);
    void *arg;
    co_doc *doc;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a version was applied (the owner broadcasts it) */
} co_follow;

cm_err co_follow_open(co_follow *fl, const co_config *cfg, const char *cluster, const char *kind,
                      const char *cache_path, void (*cached)(void *arg));
void co_follow_release(co_follow *fl);

#endif
