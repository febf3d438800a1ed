/*
 * gw_users.c - users and their access keys (docs/users.md): the in-memory key table that
 * SigV4/SigV2 look secrets up in, and the admin API that manages them.
 *
 *   GET  /admin/users                                    every user and key (no secrets), JSON
 *   POST /admin/users?action=create&name=N               a user and its first key: answers
 *                                                        {"user","access_key","secret_key"}
 *   POST /admin/users?action=disable|enable|delete&name=N
 *   POST /admin/users?action=key-create&name=N           another key of user N (as create)
 *   POST /admin/users?action=key-disable|key-enable|key-delete&access_key=AK
 * Only the root credentials may call them (403 otherwise). On a cluster node the users and keys
 * live in etcd (a gw_user_ns, gw.h: coord/co_users.h behind cmd/cluster_users.c): the changes go
 * there, every node's follower calls gw_users_reload, and the table below is rebuilt from the
 * follower's memory; the secrets travel wrapped, so every node must share the master key.
 *
 * Secrets at rest: the users database holds each secret wrapped with AES-256-GCM under the master
 * key (common/cm_mkey.h; the context "cairn-user-secret:" + access key binds a wrapped secret to
 * its key). The key is the one gw_new loaded for encryption at rest (g->mkey): one load, one
 * copy in memory; a server that could not have one (SSE-S3 off) refuses to create users.
 *
 * The key table: a sorted array of (access key, user, secret, usable) rebuilt from the database
 * after every change and swapped in under a write lock; a request's lookup is a binary search
 * under the read lock and a copy of the secret - no LMDB read, no decryption on the request path.
 * A disabled key, or any key of a disabled user, is absent from the lookup (InvalidAccessKeyId),
 * so disabling takes effect with the next request.
 *
 * Threading: lookups from every event loop; changes on workers (the admin handlers offload the
 * commit and the rebuild), serialised by the store's write queue (on a cluster node: etcd's
 * compare-and-set) and the table's lock; on a cluster node the namespace follower's thread also
 * rebuilds the table (gw_users_reload), one rebuild at a time under reload_mu.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_mkey.h"
#include "cm_util.h"

#define MOD "users"
#define SECRET_LEN 40
#define AK_LEN 20
#define CTX_PREFIX "cairn-user-secret:"

typedef struct {
    char ak[MD_ACCESS_KEY_MAX + 1];
    char user[MD_USER_NAME_MAX + 1];
    char secret[64];
    int usable; /* neither the key nor its user is disabled */
} key_entry;

struct gw_users {
    pthread_rwlock_t lock;
    key_entry *keys; /* sorted by ak */
    size_t n;
    pthread_mutex_t reload_mu; /* one rebuild at a time: a slow one never swaps in older data */
    gw_user_ns ns;             /* list NULL: the local users database */
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const key_entry *)a)->ak, ((const key_entry *)b)->ak);
}

static int user_cmp(const void *name, const void *u)
{
    return strcmp(name, ((const md_user *)u)->name);
}

static void table_free(key_entry *e, size_t n)
{
    if (e)
        explicit_bzero(e, n * sizeof(*e));
    free(e);
}

/* The master key gw_new loaded (g->mkey): CM_ERR_IO (logged) when it could not have one. */
static cm_err master_key(const gw *g)
{
    if (g->have_mkey)
        return CM_OK;
    CM_ERROR(MOD,
             "no master key to wrap or unwrap user secrets: set %s or [server] "
             "master_key_file",
             CM_MKEY_ENV);
    return CM_ERR_IO;
}

static void secret_ctx(const char *ak, char *ctx, size_t cap)
{
    snprintf(ctx, cap, CTX_PREFIX "%s", ak);
}

/* Every user and key: from the namespace when there is one, else the local database. */
static cm_err users_list(gw *g, md_user **users, size_t *nu, md_user_key **keys, size_t *nk)
{
    const gw_user_ns *ns = &g->users->ns;
    return ns->list ? ns->list(ns->arg, users, nu, keys, nk)
                    : md_users_list(g->md, users, nu, keys, nk);
}

cm_err gw_users_reseal(gw *g, md_rewrap_fn fn, void *arg, uint64_t *moved, char *bad, size_t cap)
{
    md_user *users = NULL;
    md_user_key *keys = NULL;
    size_t nu = 0, nk = 0;
    if (!g->users)
        return CM_OK; /* no users here */
    const gw_user_ns *ns = &g->users->ns;
    cm_err e = ns->key_reseal ? users_list(g, &users, &nu, &keys, &nk) : CM_ERR_INVAL;
    for (size_t i = 0; e == CM_OK && i < nk; i++) {
        md_user_key k = keys[i];
        int changed = 0;
        snprintf(bad, cap, "k/%s", keys[i].access_key);
        e = fn(arg, k.sealed, k.sealed_len, MD_REWRAP_USER, k.access_key, &changed);
        if (e == CM_OK && changed)
            e = ns->key_reseal(ns->arg, &k, keys[i].sealed, keys[i].sealed_len);
        if (e == CM_ERR_NOTFOUND) /* deleted or made again meanwhile: under the primary */
            e = CM_OK;
        else if (e == CM_OK && changed)
            ++*moved;
        explicit_bzero(&k, sizeof(k));
    }
    if (keys)
        explicit_bzero(keys, nk * sizeof(*keys));
    free(keys);
    free(users);
    return e;
}

/* Rebuild the key table from the store (blocking: call from a worker or before serving). */
static cm_err reload(gw *g)
{
    gw_users *u = g->users;
    md_user *users = NULL;
    md_user_key *keys = NULL;
    size_t nu = 0, nk = 0, n = 0;
    key_entry *t = NULL;
    pthread_mutex_lock(&u->reload_mu);
    cm_err e = users_list(g, &users, &nu, &keys, &nk);
    if (e == CM_OK && nk > 0)
        e = master_key(g);
    if (e == CM_OK && nk > 0 && !(t = calloc(nk, sizeof(*t))))
        e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < nk; i++) {
        key_entry *k = &t[n];
        char ctx[96];
        size_t len = 0;
        /* users come in name order (their keys' byte order), so a binary search finds one */
        const md_user *owner =
            nu ? bsearch(keys[i].user, users, nu, sizeof(*users), user_cmp) : NULL;
        secret_ctx(keys[i].access_key, ctx, sizeof(ctx));
        cm_err ue = cm_mkey_unwrap(&g->mkey, ctx, keys[i].sealed, keys[i].sealed_len,
                                   (uint8_t *)k->secret, sizeof(k->secret) - 1, &len);
        if (ue != CM_OK) { /* that key is unusable; the others still work */
            CM_ERROR(MOD,
                     "access key %s: cannot unwrap its secret (%s): %s%s; the key is refused here",
                     keys[i].access_key, cm_err_str(ue),
                     ue == CM_ERR_AUTH ? "it was wrapped under another master key" : "damaged",
                     ue == CM_ERR_AUTH && u->ns.list
                         ? " - every node of a cluster must share the master key (CAIRN_MASTER_KEY "
                           "or [server] master_key_file)"
                         : "");
            continue;
        }
        k->secret[len] = '\0';
        snprintf(k->ak, sizeof(k->ak), "%s", keys[i].access_key);
        snprintf(k->user, sizeof(k->user), "%s", keys[i].user);
        k->usable = owner && !owner->disabled && !keys[i].disabled;
        n++;
    }
    if (keys)
        explicit_bzero(keys, nk * sizeof(*keys));
    free(keys);
    free(users);
    if (e != CM_OK) {
        pthread_mutex_unlock(&u->reload_mu);
        table_free(t, nk);
        return e;
    }
    if (t)
        qsort(t, n, sizeof(*t), entry_cmp);
    pthread_rwlock_wrlock(&u->lock);
    key_entry *old = u->keys;
    size_t oldn = u->n;
    u->keys = t;
    u->n = n;
    pthread_rwlock_unlock(&u->lock);
    pthread_mutex_unlock(&u->reload_mu);
    table_free(old, oldn);
    return CM_OK;
}

cm_err gw_users_reload(gw *g)
{
    return g->users ? reload(g) : CM_ERR_INVAL;
}

cm_err gw_set_user_ns(gw *g, const gw_user_ns *ns)
{
    if (!g->users)
        return CM_ERR_INVAL;
    g->users->ns = *ns;
    return reload(g);
}

cm_err gw_users_open(gw *g)
{
    gw_users *u = calloc(1, sizeof(*u));
    if (!u)
        return CM_ERR_NOMEM;
    pthread_rwlock_init(&u->lock, NULL);
    pthread_mutex_init(&u->reload_mu, NULL);
    g->users = u;
    cm_err e = reload(g);
    if (e != CM_OK) {
        g->users = NULL;
        gw_users_close(u);
    }
    return e;
}

void gw_users_close(gw_users *u)
{
    if (!u)
        return;
    table_free(u->keys, u->n);
    pthread_rwlock_destroy(&u->lock);
    pthread_mutex_destroy(&u->reload_mu);
    free(u);
}

/* The usable entry of access_key, or NULL; call under the read lock. */
static const key_entry *find_usable(const gw_users *u, const char *access_key)
{
    key_entry want;
    if (strlen(access_key) > MD_ACCESS_KEY_MAX || !u->keys)
        return NULL;
    snprintf(want.ak, sizeof(want.ak), "%s", access_key);
    const key_entry *k = bsearch(&want, u->keys, u->n, sizeof(want), entry_cmp);
    return k && k->usable ? k : NULL;
}

cm_err gw_users_secret(void *arg, const char *access_key, char *secret, size_t cap)
{
    gw *g = arg;
    cm_err e = gw_lookup_secret(g, access_key, secret, cap); /* root first, under cred_lock */
    if (e != CM_ERR_NOTFOUND)
        return e;
    if (!g->users)
        return CM_ERR_NOTFOUND;
    pthread_rwlock_rdlock(&g->users->lock);
    const key_entry *k = find_usable(g->users, access_key);
    if (k) {
        size_t n = strlen(k->secret);
        e = n + 1 > cap ? CM_ERR_TOOBIG : CM_OK;
        if (e == CM_OK)
            memcpy(secret, k->secret, n + 1);
    }
    pthread_rwlock_unlock(&g->users->lock);
    return e;
}

gw_principal gw_users_who(gw *g, const char *access_key, char *user, size_t cap)
{
    gw_principal p = GW_PRIN_NONE;
    if (gw_is_root_key(g, access_key))
        return GW_PRIN_ROOT;
    if (!g->users)
        return GW_PRIN_NONE;
    pthread_rwlock_rdlock(&g->users->lock);
    const key_entry *k = find_usable(g->users, access_key);
    if (k) {
        snprintf(user, cap, "%s", k->user);
        p = GW_PRIN_USER;
    }
    pthread_rwlock_unlock(&g->users->lock);
    return p;
}

/* ---- the admin API ---- */

/* A user name as IAM allows them (letters, digits, +=,.@_-), not "root", not root's key. */
static int name_ok(gw *g, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MD_USER_NAME_MAX || strcmp(s, "root") == 0 || strcmp(s, "*") == 0 ||
        gw_is_root_key(g, s))
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-") == n;
}

typedef struct {
    char action[16];
    char name[MD_USER_NAME_MAX + 1];
    char ak[MD_ACCESS_KEY_MAX + 1];
    char secret[SECRET_LEN + 1];
    cm_err err;
    int status;
    struct evbuffer *out; /* list: the JSON document */
} admin_state;

static void admin_state_free(void *p)
{
    admin_state *st = p;
    if (!st)
        return;
    if (st->out)
        evbuffer_free(st->out);
    explicit_bzero(st->secret, sizeof(st->secret));
    free(st);
}

/* A fresh key for st->name: access key "CK" + 18, secret of 40, the secret wrapped. */
static cm_err new_key(gw *g, admin_state *st, md_user_key *k)
{
    char ctx[96];
    memset(k, 0, sizeof(*k));
    memcpy(st->ak, "CK", 2);
    if (cm_random_string(st->ak + 2, AK_LEN - 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != CM_OK ||
        cm_random_string(st->secret, SECRET_LEN,
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
            CM_OK)
        return CM_ERR_INTERNAL;
    cm_err e = master_key(g);
    if (e != CM_OK)
        return e;
    snprintf(k->access_key, sizeof(k->access_key), "%s", st->ak);
    snprintf(k->user, sizeof(k->user), "%s", st->name);
    k->created_ms = cm_now_ms();
    secret_ctx(st->ak, ctx, sizeof(ctx));
    return cm_mkey_wrap(&g->mkey, ctx, st->secret, SECRET_LEN, k->sealed, sizeof(k->sealed),
                        &k->sealed_len);
}

static void list_json(gw *g, admin_state *st)
{
    md_user *users = NULL;
    md_user_key *keys = NULL;
    size_t nu = 0, nk = 0;
    if ((st->err = users_list(g, &users, &nu, &keys, &nk)) != CM_OK ||
        !(st->out = evbuffer_new())) {
        st->err = st->err != CM_OK ? st->err : CM_ERR_NOMEM;
    } else {
        evbuffer_add_printf(st->out, "{\"users\":[");
        for (size_t i = 0; i < nu; i++) {
            evbuffer_add_printf(st->out,
                                "%s{\"name\":\"%s\",\"disabled\":%s,\"created_ms\":%lld,\"keys\":[",
                                i ? "," : "", users[i].name, users[i].disabled ? "true" : "false",
                                (long long)users[i].created_ms);
            int first = 1;
            for (size_t j = 0; j < nk; j++)
                if (strcmp(keys[j].user, users[i].name) == 0) {
                    evbuffer_add_printf(st->out, "%s{\"access_key\":\"%s\",\"disabled\":%s}",
                                        first ? "" : ",", keys[j].access_key,
                                        keys[j].disabled ? "true" : "false");
                    first = 0;
                }
            evbuffer_add_printf(st->out, "]}");
        }
        evbuffer_add_printf(st->out, "]}\n");
    }
    if (keys)
        explicit_bzero(keys, nk * sizeof(*keys));
    free(keys);
    free(users);
}

/* Worker: the change, then the table rebuilt so the next request sees it. */
static void admin_work(gw_req *r)
{
    admin_state *st = r->op;
    gw *g = r->g;
    const gw_user_ns *ns = &g->users->ns;
    md_user_key k;
    const char *a = st->action;
    if (strcmp(a, "list") == 0) {
        list_json(g, st);
        return;
    }
    if (strcmp(a, "create") == 0 || strcmp(a, "key-create") == 0) {
        md_user u = {.created_ms = cm_now_ms()};
        snprintf(u.name, sizeof(u.name), "%s", st->name);
        st->err = new_key(g, st, &k);
        if (st->err == CM_OK && a[0] == 'c')
            st->err = ns->list ? ns->create(ns->arg, &u, &k) : md_user_create(g->md, &u, &k);
        else if (st->err == CM_OK)
            st->err = ns->list ? ns->key_add(ns->arg, &k) : md_user_key_add(g->md, &k);
        explicit_bzero(&k, sizeof(k));
    } else if (strcmp(a, "disable") == 0 || strcmp(a, "enable") == 0) {
        st->err = ns->list ? ns->set_disabled(ns->arg, st->name, a[0] == 'd')
                           : md_user_set_disabled(g->md, st->name, a[0] == 'd');
    } else if (strcmp(a, "delete") == 0) {
        st->err = ns->list ? ns->remove(ns->arg, st->name) : md_user_delete(g->md, st->name);
    } else if (strcmp(a, "key-disable") == 0 || strcmp(a, "key-enable") == 0) {
        st->err = ns->list ? ns->key_set_disabled(ns->arg, st->ak, a[4] == 'd')
                           : md_user_key_set_disabled(g->md, st->ak, a[4] == 'd');
    } else if (strcmp(a, "key-delete") == 0) {
        st->err = ns->list ? ns->key_remove(ns->arg, st->ak) : md_user_key_delete(g->md, st->ak);
    }
    if (st->err == CM_OK)
        st->err = reload(g);
}

static void admin_done(gw_req *r)
{
    admin_state *st = r->op;
    struct evbuffer *b = evbuffer_new();
    int status = st->err == CM_OK                                              ? 200
                 : st->err == CM_ERR_NOTFOUND                                  ? 404
                 : st->err == CM_ERR_EXISTS                                    ? 409
                 : st->err == CM_ERR_UNAVAILABLE || st->err == CM_ERR_CONFLICT ? 503
                                                                               : 500;
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    if (st->err != CM_OK)
        evbuffer_add_printf(b, "{\"error\":\"%s\",\"message\":\"%s\"}\n",
                            status == 404   ? "NotFound"
                            : status == 409 ? "AlreadyExists"
                            : status == 503 ? "ServiceUnavailable"
                                            : "InternalError",
                            cm_err_str(st->err));
    else if (st->out)
        evbuffer_add_buffer(b, st->out);
    else if (st->secret[0])
        evbuffer_add_printf(b, "{\"user\":\"%s\",\"access_key\":\"%s\",\"secret_key\":\"%s\"}\n",
                            st->name, st->ak, st->secret);
    else
        evbuffer_add_printf(b, "{\"ok\":true}\n");
    gw_admin_send(r, status, "application/json", b);
    evbuffer_free(b);
}

void gw_users_admin(gw_req *r, int post)
{
    static const char *const actions[] = {"create",     "disable",     "enable",     "delete",
                                          "key-create", "key-disable", "key-enable", "key-delete"};
    const char *t = net_req_target(r->net);
    gw_query q;
    if (r->principal != GW_PRIN_ROOT) {
        gw_admin_json(r, 403, "AccessDenied", "only the root credentials manage users");
        return;
    }
    if (gw_cluster_node(r->g) && !r->g->users->ns.list) {
        gw_admin_json(r, 501, "NotImplemented",
                      "this cluster node does not follow the cluster's users: root key only");
        return;
    }
    if (gw_query_parse(&q, t, strlen(t)) != GW_OK) {
        gw_admin_json(r, 400, "InvalidRequest", "the request URI could not be decoded");
        return;
    }
    const char *action = post ? gw_query_get(&q, "action") : "list";
    const char *name = gw_query_get(&q, "name"), *ak = gw_query_get(&q, "access_key");
    size_t i = 0;
    while (post && action && i < CM_ARRAY_LEN(actions) && strcmp(action, actions[i]) != 0)
        i++;
    const char *bad = NULL;
    if (post && (!action || i == CM_ARRAY_LEN(actions)))
        bad = "action must be create, disable, enable, delete, key-create, key-disable, "
              "key-enable or key-delete";
    else if (post && strncmp(action, "key-", 4) == 0 && strcmp(action, "key-create") != 0 &&
             (!ak || !ak[0] || strlen(ak) > MD_ACCESS_KEY_MAX))
        bad = "give access_key=AK";
    else if (post && (strncmp(action, "key-", 4) != 0 || strcmp(action, "key-create") == 0) &&
             !name_ok(r->g, name))
        bad = "give name=NAME: 1 to 64 of A-Z a-z 0-9 + = , . @ _ -, not root";
    admin_state *st = bad ? NULL : calloc(1, sizeof(*st));
    if (st) {
        snprintf(st->action, sizeof(st->action), "%s", action);
        snprintf(st->name, sizeof(st->name), "%s", name ? name : "");
        snprintf(st->ak, sizeof(st->ak), "%s", ak ? ak : "");
    }
    gw_query_release(&q);
    if (bad) {
        gw_admin_json(r, 400, "InvalidRequest", bad);
        return;
    }
    if (!st) {
        net_req_abort(r->net);
        return;
    }
    r->op = st;
    r->op_free = admin_state_free;
    gw_offload(r, admin_work, admin_done);
}
