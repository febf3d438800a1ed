/*
 * co_watch.c - background threads: co_doc follows one key with etcd's watch stream, co_keeper
 * keeps a lease alive.
 *
 * co_doc's invariant: last_rev is the revision up to which every change of the key was delivered
 * (or skipped as older than the version in the cache). A (re)started watch asks for changes from
 * last_rev + 1, so a reconnect, whether to the same member after a restart or to another member,
 * delivers what happened meanwhile, in order, exactly once. Only when etcd has compacted those
 * revisions away (the watch answers with compact_revision) is the key read again: the newest
 * version is delivered, the intermediate ones are gone. The first read after open is the same
 * re-read, and it delivers the version it finds whenever that differs from the cached one (not
 * only when newer: a cache file may predate an etcd rebuilt from scratch). The cache (value,
 * mod_rev) is what co_doc_cached returns, under the mutex; fn runs on the watch thread without the
 * mutex held, so it may call co_doc_cached. With a cache file, every delivered version is also
 * written there (only the watch thread writes it) before fn is called.
 *
 * Backoff after a failed read or stream: 100 ms doubling to 2 s, back to 100 ms once a stream
 * was established. Stopping is noticed within ~100 ms (the stream polls in slices) or within one
 * request timeout when a read is in flight.
 *
 * co_keeper sends a keepalive every ttl/3 seconds, and every 500 ms while etcd does not answer;
 * etcd's answer of TTL 0 means the lease already expired: alive turns 0 and the thread ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "co_int.h"

#define CACHE_MAGIC "cairndoc"
#define CACHE_HEAD 24 /* magic, mod_rev, length (big-endian) */
#define CACHE_MAX (64u << 20)

struct co_doc {
    co_client *client; /* the re-reads */
    co_http *http;     /* the watch stream */
    char *key;
    co_doc_fn fn;
    void *arg;
    pthread_t thread;
    int started;
    atomic_int stop;
    atomic_int connected;
    int need_sync; /* watch thread only */
    int64_t last_rev;
    char *cache_path;   /* NULL: memory only */
    pthread_mutex_t mu; /* guards the cache below */
    pthread_cond_t cv;  /* signalled when a version is cached */
    uint8_t *value;
    size_t len;
    int64_t mod_rev; /* 0: nothing cached (never seen, or deleted) */
};

/*
 * Cache file: "cairndoc", mod_rev and length (big-endian 64-bit), the value, CRC32C of all that
 * (big-endian 32-bit). Written to PATH.tmp, fsynced, renamed over PATH, directory fsynced.
 */
void co_cache_write(const char *path, const char *what, const uint8_t *value, size_t len,
                    int64_t mod_rev)
{
    if (!value) { /* the document was deleted: so is its cache */
        if (unlink(path) != 0 && errno != ENOENT)
            CM_WARN("coord", "unlink %s: %s", path, strerror(errno));
        return;
    }
    char tmp[4200], dir[4200];
    uint8_t head[CACHE_HEAD], tail[4];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    memcpy(head, CACHE_MAGIC, 8);
    cm_put_be64(head + 8, (uint64_t)mod_rev);
    cm_put_be64(head + 16, len);
    cm_put_be32(tail, cm_crc32c(cm_crc32c(0, head, sizeof(head)), value, len));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), ok = fd >= 0;
    ok = ok && write(fd, head, sizeof(head)) == (ssize_t)sizeof(head);
    ok = ok && (len == 0 || write(fd, value, len) == (ssize_t)len);
    ok = ok && write(fd, tail, 4) == 4 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0;
    cm_parent_dir(path, dir, sizeof(dir));
    int dfd = ok ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        ok = fsync(dfd) == 0;
        close(dfd);
    }
    if (!ok)
        CM_WARN("coord", "could not write the cache %s of %s: %s", path, what, strerror(errno));
}

cm_err co_cache_read(const char *path, const char *what, uint8_t **value, size_t *len,
                     int64_t *mod_rev)
{
    uint8_t head[CACHE_HEAD], tail[4], *v = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CM_ERR_NOTFOUND;
    cm_err e = CM_ERR_CORRUPT;
    uint64_t n = 0;
    if (fread(head, 1, sizeof(head), f) == sizeof(head) && memcmp(head, CACHE_MAGIC, 8) == 0 &&
        (n = cm_get_be64(head + 16)) <= CACHE_MAX && (v = malloc(n ? n : 1)) &&
        fread(v, 1, n, f) == n && fread(tail, 1, 4, f) == 4 &&
        cm_get_be32(tail) == cm_crc32c(cm_crc32c(0, head, sizeof(head)), v, n))
        e = CM_OK;
    fclose(f);
    if (e != CM_OK) {
        CM_WARN("coord", "cache %s of %s is damaged: ignored", path, what);
        free(v);
        return e;
    }
    *value = v;
    *len = n;
    *mod_rev = (int64_t)cm_get_be64(head + 8);
    return CM_OK;
}

static void save_cache(co_doc *d, const uint8_t *value, size_t len, int64_t mod_rev)
{
    if (d->cache_path)
        co_cache_write(d->cache_path, d->key, value, len, mod_rev);
}

/* Load the cache file into the cache; CM_ERR_NOTFOUND without one, CM_ERR_CORRUPT when damaged. */
static cm_err load_cache(co_doc *d)
{
    cm_err e = co_cache_read(d->cache_path, d->key, &d->value, &d->len, &d->mod_rev);
    if (e == CM_OK)
        d->last_rev = d->mod_rev;
    return e;
}

/* Update the cache and tell fn; value NULL when the key is gone. */
static void deliver(co_doc *d, const uint8_t *value, size_t len, int64_t mod_rev)
{
    uint8_t *copy = NULL;
    if (value) {
        copy = malloc(len ? len : 1);
        if (!copy) {
            CM_ERROR("coord", "no memory for version %lld of %s", (long long)mod_rev, d->key);
            return;
        }
        memcpy(copy, value, len);
    }
    pthread_mutex_lock(&d->mu);
    free(d->value);
    d->value = copy;
    d->len = value ? len : 0;
    d->mod_rev = value ? mod_rev : 0;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    save_cache(d, value, len, mod_rev);
    if (d->fn)
        d->fn(d->arg, value, len, mod_rev);
}

static cm_err sync_key(co_doc *d)
{
    co_kv kv;
    int64_t rev = 0;
    cm_err e = co_get(d->client, d->key, &kv, &rev);
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        return e;
    pthread_mutex_lock(&d->mu);
    int64_t cached = d->mod_rev;
    pthread_mutex_unlock(&d->mu);
    /* different, not only newer: a cache file may come from an etcd since rebuilt from scratch */
    if (e == CM_OK && kv.mod_rev != cached)
        deliver(d, kv.value, kv.len, kv.mod_rev);
    else if (e == CM_ERR_NOTFOUND && cached)
        deliver(d, NULL, 0, rev);
    if (e == CM_OK)
        co_kv_release(&kv);
    d->last_rev = rev; /* the read saw every change up to rev */
    return CM_OK;
}

/* One line of the watch stream; non-zero ends the stream. */
static int on_line(void *arg, const char *line, size_t len)
{
    co_doc *d = arg;
    json_t *msg = json_loadb(line, len, 0, NULL);
    json_t *res = json_object_get(msg, "result");
    int end = 0;
    if (!res) {
        CM_WARN("coord", "watch of %s: %.*s", d->key, (int)CM_MIN(len, 200), line);
        end = 1;
    } else if (co_json_i64(res, "compact_revision") > 0) {
        CM_INFO("coord", "watch of %s: revisions from %lld compacted away, reading it again",
                d->key, (long long)(d->last_rev + 1));
        d->need_sync = 1;
        end = 1;
    } else if (json_is_true(json_object_get(res, "canceled"))) {
        end = 1;
    } else {
        atomic_store(&d->connected, 1);
        json_t *evs = json_object_get(res, "events");
        for (size_t i = 0; i < json_array_size(evs) && !atomic_load(&d->stop); i++) {
            json_t *ev = json_array_get(evs, i);
            const char *type = json_string_value(json_object_get(ev, "type"));
            co_kv kv;
            if (co_json_kv(json_object_get(ev, "kv"), &kv) != CM_OK) {
                end = 1;
                break;
            }
            if (kv.mod_rev > d->last_rev) {
                int del = type && strcmp(type, "DELETE") == 0;
                deliver(d, del ? NULL : kv.value, del ? 0 : kv.len, kv.mod_rev);
                d->last_rev = kv.mod_rev;
            }
            co_kv_release(&kv);
        }
    }
    json_decref(msg);
    return end;
}

static cm_err watch_once(co_doc *d)
{
    char *k = co_b64(d->key, strlen(d->key));
    char rev[24];
    snprintf(rev, sizeof(rev), "%lld", (long long)(d->last_rev + 1));
    json_t *req =
        k ? json_pack("{s:{s:s,s:s}}", "create_request", "key", k, "start_revision", rev) : NULL;
    free(k);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return CM_ERR_NOMEM;
    cm_err e = co_http_stream(d->http, "/v3/watch", body, on_line, d, &d->stop);
    free(body);
    return e;
}

static void *doc_thread(void *arg)
{
    co_doc *d = arg;
    int backoff = 100;
    d->need_sync = 1;
    if (d->fn && d->mod_rev) /* the version loaded from the cache file */
        d->fn(d->arg, d->value, d->len, d->mod_rev);
    while (!atomic_load(&d->stop)) {
        if (d->need_sync) {
            cm_err e = sync_key(d);
            if (e != CM_OK) {
                CM_DEBUG("coord", "read of %s: %s", d->key, cm_err_name(e));
                co_sleep(backoff, &d->stop);
                backoff = CM_MIN(backoff * 2, 2000);
                continue;
            }
            d->need_sync = 0;
        }
        cm_err e = watch_once(d);
        int was = atomic_exchange(&d->connected, 0);
        if (atomic_load(&d->stop))
            break;
        CM_INFO("coord", "watch of %s ended (%s); resuming from revision %lld", d->key,
                cm_err_name(e), (long long)(d->last_rev + 1));
        backoff = was ? 100 : CM_MIN(backoff * 2, 2000);
        co_sleep(backoff, &d->stop);
    }
    return NULL;
}

cm_err co_doc_open(const co_config *cfg, const char *key, const char *cache_path, co_doc_fn fn,
                   void *arg, co_doc **out)
{
    co_doc *d = calloc(1, sizeof(*d));
    if (!d)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->fn = fn;
    d->arg = arg;
    d->key = strdup(key);
    d->cache_path = cache_path ? strdup(cache_path) : NULL;
    cm_err e = d->key && (d->cache_path || !cache_path) ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK && d->cache_path)
        load_cache(d); /* none or damaged: start from etcd alone */
    if (e == CM_OK)
        e = co_client_new(cfg, &d->client);
    if (e == CM_OK)
        e = co_http_new(cfg, &d->http);
    if (e == CM_OK && pthread_create(&d->thread, NULL, doc_thread, d) != 0)
        e = CM_ERR_NOMEM;
    if (e != CM_OK) {
        co_doc_free(d);
        return e;
    }
    d->started = 1;
    *out = d;
    return CM_OK;
}

void co_doc_free(co_doc *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, 1);
    if (d->started)
        pthread_join(d->thread, NULL);
    co_http_free(d->http);
    co_client_free(d->client);
    free(d->key);
    free(d->cache_path);
    free(d->value);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

cm_err co_doc_wait(co_doc *d, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    cm_err e = CM_OK;
    pthread_mutex_lock(&d->mu);
    while (!d->mod_rev && e == CM_OK)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT)
            e = d->mod_rev ? CM_OK : CM_ERR_TIMEOUT;
    pthread_mutex_unlock(&d->mu);
    return e;
}

cm_err co_doc_cached(co_doc *d, uint8_t **value, size_t *len, int64_t *mod_rev)
{
    cm_err e = CM_ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    if (d->mod_rev) {
        *value = malloc(d->len ? d->len : 1);
        if (!*value) {
            e = CM_ERR_NOMEM;
        } else {
            memcpy(*value, d->value, d->len);
            *len = d->len;
            if (mod_rev)
                *mod_rev = d->mod_rev;
            e = CM_OK;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return e;
}

int co_doc_connected(co_doc *d)
{
    return atomic_load(&d->connected);
}

struct co_keeper {
    co_client *client;
    int64_t lease, ttl;
    pthread_t thread;
    atomic_int stop;
    atomic_int alive;
};

static void *keeper_thread(void *arg)
{
    co_keeper *k = arg;
    int wait_ms = (int)(k->ttl * 1000 / 3);
    while (!co_sleep(wait_ms, &k->stop)) {
        cm_err e = co_lease_keepalive(k->client, k->lease, NULL);
        if (e == CM_ERR_NOTFOUND) {
            CM_WARN("coord", "lease %llx expired", (unsigned long long)k->lease);
            atomic_store(&k->alive, 0);
            break;
        }
        wait_ms = e == CM_OK ? (int)(k->ttl * 1000 / 3) : 500;
    }
    return NULL;
}

cm_err co_keeper_start(const co_config *cfg, int64_t ttl, co_keeper **out)
{
    if (ttl < 1)
        return CM_ERR_INVAL;
    co_keeper *k = calloc(1, sizeof(*k));
    if (!k)
        return CM_ERR_NOMEM;
    k->ttl = ttl;
    cm_err e = co_client_new(cfg, &k->client);
    if (e == CM_OK)
        e = co_lease_grant(k->client, ttl, &k->lease);
    atomic_store(&k->alive, 1);
    if (e == CM_OK && pthread_create(&k->thread, NULL, keeper_thread, k) != 0)
        e = CM_ERR_NOMEM;
    if (e != CM_OK) {
        co_client_free(k->client);
        free(k);
        return e;
    }
    *out = k;
    return CM_OK;
}

int64_t co_keeper_lease(const co_keeper *k)
{
    return k->lease;
}

int co_keeper_alive(co_keeper *k)
{
    return atomic_load(&k->alive);
}

void co_keeper_free(co_keeper *k, int revoke)
{
    if (!k)
        return;
    atomic_store(&k->stop, 1);
    pthread_join(k->thread, NULL);
    if (revoke && atomic_load(&k->alive))
        co_lease_revoke(k->client, k->lease);
    co_client_free(k->client);
    free(k);
}
