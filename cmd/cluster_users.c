/*
 * cmd/cluster_users.c - `cairn server` in cluster mode: the gateway's users and access keys
 * (gw_user_ns) on the cluster's users document in etcd (coord/co_users.h).
 *
 * Converts records between meta/'s md_user / md_user_key (what gw_users.c works with) and
 * coord/'s co_user / co_user_key (the same fields; coord/ does not know meta/). The gateway's
 * changes go to co_users_apply on its workers; every version the follower applies (another
 * node's change, or this node's own) rebuilds the gateway's key table (gw_users_reload on the
 * follower's thread), so a request never reads etcd. The follower's cache file is
 * DATA/users.cache (wrapped secrets only, as in etcd).
 */
#include "cmd.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "co_users.h"
#include "gw.h"

#define MOD "server"

_Static_assert(CO_USER_NAME_MAX == MD_USER_NAME_MAX + 1 &&
                   CO_ACCESS_KEY_MAX == MD_ACCESS_KEY_MAX + 1 && CO_SEALED_MAX == MD_SEALED_MAX,
               "the users document holds md_user / md_user_key fields");

typedef struct {
    co_users *f;
    gw *g;
    atomic_int ready; /* the gateway took the namespace: the follower's changes reload its table */
} users_ctx;

static users_ctx uctx; /* the server has one gateway and one users document */

static cm_err ns_list(void *arg, md_user **users, size_t *nu, md_user_key **keys, size_t *nk)
{
    co_users_doc d;
    cm_err e = co_users_snapshot(((users_ctx *)arg)->f, &d);
    *users = NULL;
    *keys = NULL;
    *nu = *nk = 0;
    if (e != CM_OK)
        return e;
    if ((d.nusers && !(*users = calloc(d.nusers, sizeof(**users)))) ||
        (d.nkeys && !(*keys = calloc(d.nkeys, sizeof(**keys))))) {
        free(*users);
        *users = NULL;
        co_users_doc_release(&d);
        return CM_ERR_NOMEM;
    }
    for (size_t i = 0; i < d.nusers; i++) {
        md_user *u = &(*users)[i];
        memcpy(u->name, d.users[i].name, sizeof(u->name));
        u->created_ms = d.users[i].created_ms;
        u->disabled = d.users[i].disabled;
    }
    for (size_t i = 0; i < d.nkeys; i++) {
        md_user_key *k = &(*keys)[i];
        memcpy(k->access_key, d.keys[i].ak, sizeof(k->access_key));
        memcpy(k->user, d.keys[i].user, sizeof(k->user));
        k->created_ms = d.keys[i].created_ms;
        k->disabled = d.keys[i].disabled;
        memcpy(k->sealed, d.keys[i].sealed, sizeof(k->sealed));
        k->sealed_len = d.keys[i].sealed_len;
    }
    *nu = d.nusers;
    *nk = d.nkeys;
    co_users_doc_release(&d);
    return CM_OK;
}

static void to_co_key(const md_user_key *k, co_user_key *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->ak, k->access_key, sizeof(c->ak));
    memcpy(c->user, k->user, sizeof(c->user));
    c->created_ms = k->created_ms;
    c->disabled = k->disabled;
    memcpy(c->sealed, k->sealed, sizeof(c->sealed));
    c->sealed_len = k->sealed_len;
}

/* Apply ch and wipe the copy of the wrapped secret it carried. */
static cm_err apply(void *arg, co_user_change *ch)
{
    cm_err e = co_users_apply(((users_ctx *)arg)->f, ch);
    explicit_bzero(ch, sizeof(*ch));
    return e;
}

static cm_err ns_create(void *arg, const md_user *u, const md_user_key *k)
{
    co_user_change ch = {.kind = CO_UCH_CREATE};
    memcpy(ch.user.name, u->name, sizeof(ch.user.name));
    ch.user.created_ms = u->created_ms;
    ch.user.disabled = u->disabled;
    to_co_key(k, &ch.key);
    return apply(arg, &ch);
}

static cm_err ns_key_add(void *arg, const md_user_key *k)
{
    co_user_change ch = {.kind = CO_UCH_KEY_ADD};
    to_co_key(k, &ch.key);
    return apply(arg, &ch);
}

static cm_err ns_set_disabled(void *arg, const char *name, int disabled)
{
    co_user_change ch = {.kind = CO_UCH_DISABLE, .name = name, .disabled = disabled};
    return apply(arg, &ch);
}

static cm_err ns_remove(void *arg, const char *name)
{
    co_user_change ch = {.kind = CO_UCH_DELETE, .name = name};
    return apply(arg, &ch);
}

static cm_err ns_key_set_disabled(void *arg, const char *ak, int disabled)
{
    co_user_change ch = {.kind = CO_UCH_KEY_DISABLE, .ak = ak, .disabled = disabled};
    return apply(arg, &ch);
}

static cm_err ns_key_remove(void *arg, const char *ak)
{
    co_user_change ch = {.kind = CO_UCH_KEY_DELETE, .ak = ak};
    return apply(arg, &ch);
}

static cm_err ns_key_reseal(void *arg, const md_user_key *k, const uint8_t *old, size_t old_len)
{
    co_user_change ch = {.kind = CO_UCH_KEY_RESEAL, .old = old, .old_len = old_len};
    to_co_key(k, &ch.key);
    return apply(arg, &ch);
}

/* The follower's thread: another version of the document, so another key table. */
static void on_changed(void *arg)
{
    users_ctx *x = arg;
    if (!atomic_load(&x->ready))
        return; /* gw_set_user_ns builds the first table itself */
    cm_err e = gw_users_reload(x->g);
    if (e != CM_OK)
        CM_WARN(MOD, "the users document changed but the key table was not rebuilt: %s",
                cm_err_str(e));
}

cm_err cmd_cluster_users_start(gw *g, const co_config *cfg, const char *cluster,
                               const char *data_dir, co_users **out)
{
    char cache[4200];
    uctx.g = g;
    snprintf(cache, sizeof(cache), "%s/users.cache", data_dir);
    cm_err e = co_users_open(cfg, cluster, cache, on_changed, &uctx, &uctx.f);
    if (e != CM_OK)
        return e;
    gw_user_ns ns = {.list = ns_list,
                     .create = ns_create,
                     .key_add = ns_key_add,
                     .set_disabled = ns_set_disabled,
                     .remove = ns_remove,
                     .key_set_disabled = ns_key_set_disabled,
                     .key_remove = ns_key_remove,
                     .key_reseal = ns_key_reseal,
                     .arg = &uctx};
    e = gw_set_user_ns(g, &ns);
    atomic_store(&uctx.ready, 1);
    if (e == CM_OK) /* a version applied between the first table and ready */
        e = gw_users_reload(g);
    if (e != CM_OK) {
        co_users_free(uctx.f);
        uctx.f = NULL;
        return e;
    }
    CM_INFO(MOD, "cluster %s: users and keys follow the users document in etcd", cluster);
    *out = uctx.f;
    return CM_OK;
}
