/*
 * co_layout.c - a node follows the layout document and keeps itself registered (co_layout.h).
 *
 * Two background threads, neither on a request path: co_doc's watch thread calls on_version with
 * each new version of the layout key; this file's member thread, every refresh period, makes sure
 * the node is registered (a new co_keeper lease and co_member_register whenever the lease is gone,
 * e.g. after an outage longer than the TTL, or the key is missing from the list, or the value
 * changed: co_layout_report's epoch and handoff flag) and reads the member list. co_layout_leave (a
 * graceful stop) has the member thread revoke the lease at once and register no more. The adopted
 * topology, its epoch and revision, and the last member list live under one mutex; readers copy
 * them out and never touch etcd. Every node ever listed is remembered with its registered address
 * and when it was last listed, so the status can show a node that went down and since when.
 *
 * Adoption rule: a version is adopted only when pl_topology_decode accepts it (it validates) and
 * its epoch is not below the adopted one. A deleted key, a document that does not parse or
 * validate, and an older epoch (an admin writing a stale copy by hand) are logged and counted in
 * "rejected"; the node keeps serving on what it has. The same epoch again is adopted: the first
 * read after open delivers the version the cache file may already have given, and an etcd restored
 * from a backup may hold the same epoch at another revision.
 *
 * Cache file: the last adopted version (co_cache_write, written by the watch thread after
 * adopting), read and adopted at open, so a node restarted while etcd is unreachable serves on
 * the last layout it accepted. co_doc itself runs without a cache file: its cache would hold the
 * last version seen, which may be one this node rejected. Without the file, co_doc re-reads the
 * key at start, and the version found is adopted when its epoch is not lower.
 */
#include "co_layout.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_int.h"

#define MOD "layout"

struct co_layout {
    co_config cfg;
    char *cfg_storage[CO_MAX_ENDPOINTS];
    char cluster[PL_NAME_MAX], node_id[PL_NAME_MAX], addr[PL_ADDR_MAX];
    char s3[CO_LAYOUT_S3_MAX]; /* "" when not given */
    char members_prefix[256];
    char *cache_path; /* the last adopted version (NULL: none kept) */
    int64_t ttl;
    int refresh_ms;
    co_doc *doc;
    co_client *client; /* member thread only */
    co_keeper *keeper; /* member thread only */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a layout was adopted, or stop was set */
    int stop;
    int leaving;       /* co_layout_leave: revoke the lease, register no more */
    int left;          /* the member thread revoked it (or held none) */
    pl_topology *topo; /* adopted; NULL while none */
    co_layout_status st;
    uint64_t rep_epoch; /* co_layout_report (under mu) */
    int rep_handoff;
    char reg_value[2 * PL_ADDR_MAX + 128]; /* the member value last registered (member thread) */
};

/* ---- the layout document ---- */

/* Adopt the version or count it rejected (logged); 1 when adopted. */
static int adopt(co_layout *l, const uint8_t *value, size_t len, int64_t mod_rev)
{
    pl_topology *t = NULL;
    char err[256] = "";
    if (!value) {
        CM_WARN(MOD, "layout key deleted at revision %lld: keeping the last layout",
                (long long)mod_rev);
    } else if (pl_topology_decode(value, len, &t, err, sizeof(err)) != CM_OK) {
        CM_WARN(MOD, "layout at revision %lld ignored: %s", (long long)mod_rev, err);
        t = NULL;
    }
    pthread_mutex_lock(&l->mu);
    if (t && l->topo && t->epoch < l->topo->epoch) {
        CM_WARN(MOD, "layout at revision %lld ignored: epoch %llu is older than the adopted %llu",
                (long long)mod_rev, (unsigned long long)t->epoch,
                (unsigned long long)l->topo->epoch);
        pl_topology_free(t);
        t = NULL;
    }
    if (t) {
        pl_topology_free(l->topo);
        l->topo = t;
        l->st.epoch = t->epoch;
        l->st.mod_rev = mod_rev;
        l->st.adopted++;
        l->st.in_layout = l->node_id[0] && pl_topology_find(t, l->node_id) >= 0;
        if (l->node_id[0] && !l->st.in_layout)
            CM_WARN(MOD, "this node (%s) is not in layout epoch %llu", l->node_id,
                    (unsigned long long)t->epoch);
        CM_INFO(MOD, "adopted layout epoch %llu (revision %lld): %d nodes",
                (unsigned long long)t->epoch, (long long)mod_rev, t->nnodes);
        pthread_cond_broadcast(&l->cv);
    } else {
        l->st.rejected++;
    }
    pthread_mutex_unlock(&l->mu);
    return t != NULL;
}

/*
 * co_doc's callback (on its watch thread, which alone writes the cache file): the cache keeps the
 * last adopted version, never a rejected one, so a restart during an outage comes up on a layout
 * this node accepted.
 */
static void on_version(void *arg, const uint8_t *value, size_t len, int64_t mod_rev)
{
    co_layout *l = arg;
    if (adopt(l, value, len, mod_rev) && l->cache_path)
        co_cache_write(l->cache_path, "the layout", value, len, mod_rev);
}

/* At open: the cached version, adopted like any other (a damaged file is logged and ignored). */
static void load_cached(co_layout *l)
{
    uint8_t *value = NULL;
    size_t len;
    int64_t rev;
    if (co_cache_read(l->cache_path, "the layout", &value, &len, &rev) != CM_OK)
        return;
    if (adopt(l, value, len, rev))
        CM_INFO(MOD, "starting on the cached layout (%s) until etcd answers", l->cache_path);
    free(value);
}

/* ---- membership ---- */

/* A lease and the member key under it, when either is missing or the value changed. */
static void ensure_registered(co_layout *l, int listed)
{
    char value[sizeof(l->reg_value)];
    pthread_mutex_lock(&l->mu);
    uint64_t epoch = l->rep_epoch;
    int handoff = l->rep_handoff;
    pthread_mutex_unlock(&l->mu);
    int n = l->s3[0]
                ? snprintf(value, sizeof(value), "{\"addr\":\"%s\",\"s3\":\"%s\"", l->addr, l->s3)
                : snprintf(value, sizeof(value), "{\"addr\":\"%s\"", l->addr);
    if (epoch) /* what `layout apply` checks (co_layout_report) */
        n += snprintf(value + n, sizeof(value) - (size_t)n, ",\"epoch\":%llu,\"handoff\":%d",
                      (unsigned long long)epoch, handoff);
    n += snprintf(value + n, sizeof(value) - (size_t)n, "}");
    if (n < 0 || (size_t)n >= sizeof(value)) /* cannot be: addr and s3 are bounded */
        return;
    if (l->keeper && co_keeper_alive(l->keeper) && listed && strcmp(value, l->reg_value) == 0)
        return;
    if (!l->keeper || !co_keeper_alive(l->keeper)) {
        co_keeper_free(l->keeper, 0);
        l->keeper = NULL;
        if (co_keeper_start(&l->cfg, l->ttl, &l->keeper) != CM_OK)
            return; /* etcd unreachable: next period */
    }
    cm_err e = co_member_register(l->client, l->members_prefix, l->node_id, value, (size_t)n,
                                  co_keeper_lease(l->keeper));
    if (e == CM_OK)
        memcpy(l->reg_value, value, (size_t)n + 1);
    if (e == CM_OK && !listed)
        CM_INFO(MOD, "registered as member %s (lease %llx, ttl %lld s)", l->node_id,
                (unsigned long long)co_keeper_lease(l->keeper), (long long)l->ttl);
    else if (e != CM_OK)
        CM_WARN(MOD, "cannot register as member %s: %s", l->node_id, cm_err_str(e));
}

/* 1 for a node id as placement spells them: 1..PL_NAME_MAX-1 of [A-Za-z0-9._-]. */
static int node_name_ok(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n > 0 && n < PL_NAME_MAX && s[n] == '\0';
}

/*
 * The string member name of a member value ({"addr":"host:port","s3":"URL"}) into out ("" when
 * there is none); it ends at a quote, a backslash or a control character, so it can be put in
 * JSON as it is.
 */
static void member_str(const co_kv *kv, const char *name, char *out, size_t cap)
{
    char pat[32];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    const uint8_t *p = kv->len > 0 ? memmem(kv->value, kv->len, pat, (size_t)pl) : NULL;
    size_t n = 0;
    if (p) {
        p += pl;
        size_t left = kv->len - (size_t)(p - kv->value);
        while (n < left && n + 1 < cap && p[n] != '"' && p[n] != '\\' && p[n] >= 0x20)
            n++;
        memcpy(out, p, n);
    }
    out[n] = '\0';
}

/* The number after "name": in a member value (co_layout_report's fields); 0 when there is none. */
static uint64_t member_u64(const co_kv *kv, const char *name)
{
    char pat[32];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":", name);
    const uint8_t *p = kv->len > 0 ? memmem(kv->value, kv->len, pat, (size_t)pl) : NULL;
    uint64_t v = 0;
    if (!p)
        return 0;
    for (p += pl; p < kv->value + kv->len && *p >= '0' && *p <= '9' && v < UINT64_MAX / 10; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

/* Note name as listed now (under the lock): its entry in st.seen, added when new and room left. */
static void note_seen(co_layout *l, const co_kv *kv, const char *name, int64_t now)
{
    int i = 0;
    while (i < l->st.nseen && strcmp(l->st.seen[i].id, name) != 0)
        i++;
    if (i == l->st.nseen) {
        if (i == CO_LAYOUT_MEMBERS)
            return;
        l->st.nseen++;
        memcpy(l->st.seen[i].id, name, strlen(name) + 1);
    }
    member_str(kv, "addr", l->st.seen[i].addr, sizeof(l->st.seen[i].addr));
    member_str(kv, "s3", l->st.seen[i].s3, sizeof(l->st.seen[i].s3));
    l->st.seen[i].epoch = member_u64(kv, "epoch");
    l->st.seen[i].handoff = member_u64(kv, "handoff") != 0;
    l->st.seen[i].live = 1;
    l->st.seen[i].last_seen_ms = now;
}

/*
 * Read the member list into the status; 1 when this node is in it, -1 when etcd did not answer.
 * A key under the prefix that is not a node id (written by hand) is not a member.
 */
static int refresh_members(co_layout *l)
{
    co_kvs kvs;
    if (co_member_list(l->client, l->members_prefix, &kvs) != CM_OK)
        return -1;
    size_t plen = strlen(l->members_prefix);
    int self = 0, n = 0;
    int64_t now = cm_now_ms();
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->st.nseen; i++)
        l->st.seen[i].live = 0;
    for (size_t i = 0; i < kvs.n; i++) {
        const char *name = kvs.kvs[i].key + plen;
        if (!node_name_ok(name))
            continue;
        self |= l->node_id[0] && strcmp(name, l->node_id) == 0;
        if (n < CO_LAYOUT_MEMBERS)
            memcpy(l->st.members[n], name, strlen(name) + 1);
        n++;
        note_seen(l, &kvs.kvs[i], name, now);
    }
    l->st.nmembers = n;
    l->st.registered = self;
    l->st.members_read_ms = now;
    pthread_mutex_unlock(&l->mu);
    co_kvs_release(&kvs);
    return self;
}

static void *member_thread(void *arg)
{
    co_layout *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        int leaving = l->leaving;
        uint64_t reported = l->rep_epoch; /* what ensure_registered writes below */
        int handoff = l->rep_handoff;
        pthread_mutex_unlock(&l->mu);
        if (leaving && !l->left) {
            co_keeper_free(l->keeper, 1); /* the member key goes with its lease */
            l->keeper = NULL;
            CM_INFO(MOD, "left the member list (%s)", l->node_id);
            pthread_mutex_lock(&l->mu);
            l->left = 1;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
        }
        int listed = refresh_members(l);
        if (l->node_id[0] && listed >= 0 && !leaving)
            ensure_registered(l, listed);
        if (l->node_id[0] && listed == 0 && !leaving) /* registered just now: show it at once */
            refresh_members(l);
        struct timespec until;
        co_deadline(&until, l->refresh_ms);
        pthread_mutex_lock(&l->mu);
        while (!l->stop && l->leaving == leaving && l->rep_epoch == reported &&
               l->rep_handoff == handoff &&
               pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

void co_layout_report(co_layout *l, uint64_t epoch, int handoff)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->rep_epoch = epoch;
    l->rep_handoff = handoff != 0;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* ---- lifetime and readers ---- */

cm_err co_layout_open(const co_layout_config *cfg, co_layout **out)
{
    char key[256], self_key[256];
    if (!cfg->etcd || cfg->etcd->n_endpoints < 1 || !cfg->cluster ||
        co_key(key, sizeof(key), cfg->cluster, CO_KIND_LAYOUT, NULL) != CM_OK)
        return CM_ERR_INVAL;
    co_layout *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    cm_err e = co_config_copy(&l->cfg, l->cfg_storage, cfg->etcd);
    l->ttl = cfg->ttl > 0 ? cfg->ttl : CO_LAYOUT_TTL;
    l->refresh_ms = cfg->refresh_ms > 0 ? cfg->refresh_ms : 1000;
    size_t clen = strlen(cfg->cluster), nlen = cfg->node_id ? strlen(cfg->node_id) : 0;
    if (clen >= sizeof(l->cluster) || nlen >= sizeof(l->node_id) ||
        (cfg->node_id &&
         co_key(self_key, sizeof(self_key), cfg->cluster, CO_KIND_NODES, cfg->node_id) != CM_OK) ||
        (cfg->node_id && (!node_name_ok(cfg->node_id) || !cfg->addr ||
                          strlen(cfg->addr) >= sizeof(l->addr) || strpbrk(cfg->addr, "\"\\"))) ||
        (cfg->s3 && (strlen(cfg->s3) >= sizeof(l->s3) || strpbrk(cfg->s3, "\"\\"))))
        e = CM_ERR_INVAL;
    if (e == CM_OK) {
        memcpy(l->cluster, cfg->cluster, clen + 1);
        memcpy(l->node_id, cfg->node_id ? cfg->node_id : "", nlen + 1);
        memcpy(l->addr, cfg->addr ? cfg->addr : "", cfg->addr ? strlen(cfg->addr) + 1 : 1);
        snprintf(l->s3, sizeof(l->s3), "%s", cfg->s3 ? cfg->s3 : "");
    }
    if (e == CM_OK)
        e = co_key(l->members_prefix, sizeof(l->members_prefix), cfg->cluster, CO_KIND_NODES, "");
    if (e == CM_OK && cfg->cache_path && !(l->cache_path = strdup(cfg->cache_path)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK && l->cache_path)
        load_cached(l);
    if (e == CM_OK)
        e = co_client_new(&l->cfg, &l->client);
    /* no co_doc cache: co_layout keeps its own of adopted versions only */
    if (e == CM_OK)
        e = co_doc_open(&l->cfg, key, NULL, on_version, l, &l->doc);
    if (e == CM_OK && pthread_create(&l->thread, NULL, member_thread, l) != 0)
        e = CM_ERR_NOMEM;
    if (e != CM_OK) {
        co_layout_free(l);
        return e;
    }
    l->started = 1;
    *out = l;
    return CM_OK;
}

void co_layout_free(co_layout *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->thread, NULL);
    co_doc_free(l->doc);
    co_keeper_free(l->keeper, 1); /* a clean stop leaves the member list at once */
    co_client_free(l->client);
    for (int i = 0; i < CO_MAX_ENDPOINTS; i++)
        free(l->cfg_storage[i]);
    pl_topology_free(l->topo);
    free(l->cache_path);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void co_layout_leave(co_layout *l, int wait_ms)
{
    if (!l)
        return;
    struct timespec until;
    co_deadline(&until, wait_ms);
    pthread_mutex_lock(&l->mu);
    l->leaving = 1;
    pthread_cond_broadcast(&l->cv);
    while (l->started && !l->stop && !l->left &&
           pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&l->mu);
}

cm_err co_layout_current(co_layout *l, pl_topology **out, int64_t *mod_rev)
{
    cm_err e = CM_ERR_NOTFOUND;
    pthread_mutex_lock(&l->mu);
    if (l->topo)
        e = pl_topology_clone(l->topo, out);
    if (e == CM_OK && mod_rev)
        *mod_rev = l->st.mod_rev;
    pthread_mutex_unlock(&l->mu);
    return e;
}

void co_layout_get_status(co_layout *l, co_layout_status *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    pthread_mutex_unlock(&l->mu);
    out->connected = co_doc_connected(l->doc);
    out->ttl_s = l->ttl;
}

static int epoch_adopted(const void *arg, uint64_t epoch)
{
    const co_layout *l = arg;
    return l->topo && l->topo->epoch >= epoch;
}

cm_err co_layout_wait(co_layout *l, uint64_t epoch, int timeout_ms)
{
    return co_wait_version(&l->mu, &l->cv, timeout_ms, epoch_adopted, l, epoch);
}
