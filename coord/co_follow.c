/*
 * co_follow.c - what every follower of one etcd document shares (co_int.h's co_follow): the
 * start from the cache file, the watch handing each version to the owner's apply, the cache
 * written with each version applied, and the teardown. The owner (co_buckets.c, co_users.c)
 * keeps its decoded version under fl->mu and broadcasts fl->cv when it changes.
 *
 * Threading: open and release on the owner's thread; apply, the cache write and after() on the
 * watch thread (cached() on the opener's, before the watch starts).
 */
#include <stdlib.h>
#include <string.h>

#include "co_int.h"

static void on_version(void *arg, const uint8_t *value, size_t len, int64_t mod_rev)
{
    co_follow *fl = arg;
    if (!fl->apply(fl->arg, value, len, mod_rev))
        return;
    if (fl->cache_path)
        co_cache_write(fl->cache_path, fl->what, value, len, mod_rev);
    if (fl->after)
        fl->after(fl->arg);
}

cm_err co_follow_open(co_follow *fl, const co_config *cfg, const char *cluster, const char *kind,
                      const char *cache_path, void (*cached)(void *arg))
{
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    if (!cfg || cfg->n_endpoints < 1 || !cluster)
        return CM_ERR_INVAL;
    cm_err e = co_key(fl->key, sizeof(fl->key), cluster, kind, NULL);
    if (e == CM_OK)
        e = co_config_copy(&fl->cfg, fl->cfg_storage, cfg);
    if (e == CM_OK && cache_path && !(fl->cache_path = strdup(cache_path)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK && fl->cache_path) {
        uint8_t *value = NULL;
        size_t len;
        int64_t rev;
        if (co_cache_read(fl->cache_path, fl->what, &value, &len, &rev) == CM_OK &&
            fl->apply(fl->arg, value, len, rev) && cached)
            cached(fl->arg);
        free(value);
    }
    if (e == CM_OK)
        e = co_doc_open(&fl->cfg, fl->key, NULL, on_version, fl, &fl->doc);
    return e;
}

void co_follow_release(co_follow *fl)
{
    co_doc_free(fl->doc); /* joins the watch thread: no callback runs after this */
    fl->doc = NULL;
    for (int i = 0; i < CO_MAX_ENDPOINTS; i++) {
        free(fl->cfg_storage[i]);
        fl->cfg_storage[i] = NULL;
    }
    free(fl->cache_path);
    fl->cache_path = NULL;
    pthread_cond_destroy(&fl->cv);
    pthread_mutex_destroy(&fl->mu);
}
