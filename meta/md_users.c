/*
 * md_users.c - users, their access keys and bucket policies, in the "users" database.
 *
 * Keys and values (all integers big-endian; byte 0 of every value is its format, 1):
 *   "u/" name        -> 1 | disabled u8 | created_ms i64
 *   "k/" access key  -> 1 | disabled u8 | created_ms i64 | user len u16 | user |
 *                       sealed len u16 | sealed (the secret, wrapped by the caller: the store
 *                       never sees a secret in clear)
 *   "p/" bucket      -> 1 | bucket created_ms i64 | policy JSON
 * A policy goes with its bucket (md_bucket_delete drops it in the same write) and carries its
 * bucket's creation time besides, so a bucket created again never inherits its predecessor's
 * policy - not even through a cluster node's local mirror, where buckets come and go by
 * gw_bucket_mirror_* (a stale record is ignored, and replaced by the next PutBucketPolicy).
 *
 * Every change is one write op (md_write): a user and its first key are created together, a user
 * is deleted with all its keys, so a key never names a missing user. Values that do not decode are
 * corruption (CM_ERR_CORRUPT, logged where found).
 *
 * Threading: as the store (reads in a read transaction, writes through md_write).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

#define FORMAT 1
#define KEY_MAX (2 + MD_BUCKET_MAX + MD_USER_NAME_MAX + MD_ACCESS_KEY_MAX)

/* "x/" + name into k (KEY_MAX + 1 bytes); 0 for a name too long or empty. */
static size_t make_key(char kind, const char *name, char *k)
{
    size_t n = strlen(name);
    if (n == 0 || n > KEY_MAX - 2)
        return 0;
    k[0] = kind;
    k[1] = '/';
    memcpy(k + 2, name, n);
    return n + 2;
}

static void put_str16(md_wbuf *w, const void *s, size_t n)
{
    uint8_t b[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    md_w_bytes(w, b, 2);
    md_w_bytes(w, s, n);
}

static void put_head(md_wbuf *w, uint8_t disabled, int64_t created_ms)
{
    uint8_t b[10] = {FORMAT, disabled};
    cm_put_be64(b + 2, (uint64_t)created_ms);
    md_w_bytes(w, b, sizeof(b));
}

static cm_err user_decode(const uint8_t *p, size_t n, const char *name, size_t nl, md_user *u)
{
    memset(u, 0, sizeof(*u));
    if (n != 10 || p[0] != FORMAT || nl > MD_USER_NAME_MAX)
        return MD_CORRUPT("bad user record");
    memcpy(u->name, name, nl);
    u->disabled = p[1];
    u->created_ms = (int64_t)cm_get_be64(p + 2);
    return CM_OK;
}

/* A u16-length string at p[*off] into out (cap bytes, NUL-terminated unless binary). */
static int get_str16(const uint8_t *p, size_t n, size_t *off, void *out, size_t cap, size_t *len)
{
    if (n - *off < 2)
        return -1;
    size_t l = (size_t)p[*off] << 8 | p[*off + 1];
    if (n - *off - 2 < l || l >= cap)
        return -1;
    memcpy(out, p + *off + 2, l);
    ((uint8_t *)out)[l] = 0;
    *off += 2 + l;
    if (len)
        *len = l;
    return 0;
}

cm_err md_user_key_decode(const uint8_t *p, size_t n, const char *ak, size_t al, md_user_key *k)
{
    size_t off = 10;
    uint8_t sealed[MD_SEALED_MAX + 1];
    memset(k, 0, sizeof(*k));
    if (n < 10 || p[0] != FORMAT || al > MD_ACCESS_KEY_MAX ||
        get_str16(p, n, &off, k->user, sizeof(k->user), NULL) != 0 ||
        get_str16(p, n, &off, sealed, sizeof(sealed), &k->sealed_len) != 0 || off != n)
        return MD_CORRUPT("bad access key record");
    memcpy(k->access_key, ak, al);
    memcpy(k->sealed, sealed, k->sealed_len);
    k->disabled = p[1];
    k->created_ms = (int64_t)cm_get_be64(p + 2);
    return CM_OK;
}

static int put_val(MDB_txn *txn, md_store *md, const char *k, size_t kl, md_wbuf *w, unsigned flags)
{
    if (w->failed)
        return ENOMEM;
    MDB_val mk = {kl, (void *)k}, mv = {w->len, w->p};
    return md_db_put(txn, md->users, &mk, &mv, flags);
}

static cm_err rc_err(int rc, const char *what)
{
    if (rc == MDB_KEYEXIST)
        return CM_ERR_EXISTS;
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc == ENOMEM)
        return CM_ERR_NOMEM;
    return rc ? md_mdb_err(rc, what) : CM_OK;
}

static void key_value(md_wbuf *w, const md_user_key *k)
{
    put_head(w, k->disabled, k->created_ms);
    put_str16(w, k->user, strlen(k->user));
    put_str16(w, k->sealed, k->sealed_len);
}

static cm_err grow(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return CM_OK;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, nc * size);
    if (!p)
        return CM_ERR_NOMEM;
    *arr = p;
    *cap = nc;
    return CM_OK;
}

/* ---- writes ---- */

typedef struct {
    const md_user *u;
    const md_user_key *k;
    const char *name;
    int disabled;
    char kind; /* 'u' or 'k' for set_disabled / delete */
} user_op;

static cm_err create_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    user_op *op = arg;
    char k[KEY_MAX + 1];
    md_wbuf w = {0};
    size_t kl;
    int rc = 0;
    (void)wrote;
    if (op->u) {
        if (!(kl = make_key('u', op->u->name, k)))
            return CM_ERR_INVAL;
        put_head(&w, op->u->disabled, op->u->created_ms);
        rc = put_val(txn, md, k, kl, &w, MDB_NOOVERWRITE);
        md_w_free(&w);
    } else { /* a key of an existing user */
        MDB_val mk = {0, k}, mv;
        if (!(mk.mv_size = make_key('u', op->k->user, k)))
            return CM_ERR_NOTFOUND;
        rc = mdb_get(txn, md->users, &mk, &mv);
    }
    if (rc == 0) {
        if (!(kl = make_key('k', op->k->access_key, k)) || op->k->sealed_len > MD_SEALED_MAX)
            return CM_ERR_INVAL;
        key_value(&w, op->k);
        rc = put_val(txn, md, k, kl, &w, MDB_NOOVERWRITE);
        md_w_free(&w);
    }
    return rc_err(rc, "put user");
}

cm_err md_user_create(md_store *md, const md_user *u, const md_user_key *k)
{
    user_op op = {.u = u, .k = k};
    return md_write(md, create_apply, &op);
}

cm_err md_user_key_add(md_store *md, const md_user_key *k)
{
    user_op op = {.k = k};
    return md_write(md, create_apply, &op);
}

static cm_err disable_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    user_op *op = arg;
    char k[KEY_MAX + 1];
    MDB_val mk = {0, k}, mv;
    md_wbuf w = {0};
    (void)wrote;
    if (!(mk.mv_size = make_key(op->kind, op->name, k)))
        return CM_ERR_NOTFOUND;
    int rc = mdb_get(txn, md->users, &mk, &mv);
    if (rc == 0 && (mv.mv_size < 2 || ((uint8_t *)mv.mv_data)[0] != FORMAT))
        return MD_CORRUPT("bad user or key record");
    if (rc == 0) {
        md_w_bytes(&w, mv.mv_data, mv.mv_size); /* copied: put may move the page it points at */
        if (!w.failed)
            w.p[1] = (uint8_t)(op->disabled != 0);
        rc = put_val(txn, md, k, mk.mv_size, &w, 0);
        md_w_free(&w);
    }
    return rc_err(rc, "set user disabled");
}

cm_err md_user_set_disabled(md_store *md, const char *name, int disabled)
{
    user_op op = {.name = name, .disabled = disabled, .kind = 'u'};
    return md_write(md, disable_apply, &op);
}

cm_err md_user_key_set_disabled(md_store *md, const char *access_key, int disabled)
{
    user_op op = {.name = access_key, .disabled = disabled, .kind = 'k'};
    return md_write(md, disable_apply, &op);
}

/* Delete every "k/" record naming user: collected first, then deleted one by one (a user has
 * few keys; deleting under a cursor would need its repositioning rules). */
static int delete_keys_of(MDB_txn *txn, md_store *md, const char *user)
{
    MDB_cursor *cur;
    MDB_val k = {2, (void *)"k/"}, v;
    char(*doomed)[MD_ACCESS_KEY_MAX + 3] = NULL;
    size_t n = 0, cap = 0;
    int rc = mdb_cursor_open(txn, md->users, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 2 && memcmp(k.mv_data, "k/", 2) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        md_user_key uk;
        if (md_user_key_decode(v.mv_data, v.mv_size, (const char *)k.mv_data + 2, k.mv_size - 2,
                               &uk) != CM_OK) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (strcmp(uk.user, user) != 0)
            continue;
        if (grow((void **)&doomed, n, &cap, sizeof(*doomed)) != CM_OK) {
            rc = ENOMEM;
            break;
        }
        memcpy(doomed[n++], k.mv_data, k.mv_size);
        doomed[n - 1][k.mv_size] = '\0';
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || (rc == 0))
        rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_val dk = {strlen(doomed[i]), doomed[i]};
        rc = md_db_del(txn, md->users, &dk);
    }
    free(doomed);
    return rc;
}

static cm_err delete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    user_op *op = arg;
    char k[KEY_MAX + 1];
    MDB_val mk = {0, k};
    (void)wrote;
    if (!(mk.mv_size = make_key(op->kind, op->name, k)))
        return CM_ERR_NOTFOUND;
    int rc = md_db_del(txn, md->users, &mk);
    if (rc == 0 && op->kind == 'u')
        rc = delete_keys_of(txn, md, op->name);
    return rc_err(rc, "delete user");
}

cm_err md_user_delete(md_store *md, const char *name)
{
    user_op op = {.name = name, .kind = 'u'};
    return md_write(md, delete_apply, &op);
}

cm_err md_user_key_delete(md_store *md, const char *access_key)
{
    user_op op = {.name = access_key, .kind = 'k'};
    return md_write(md, delete_apply, &op);
}

/* ---- reads ---- */

static cm_err list_txn(MDB_txn *txn, md_store *md, md_user **users, size_t *nu, md_user_key **keys,
                       size_t *nk)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cu = 0, ck = 0;
    cm_err e = CM_OK;
    int rc = mdb_cursor_open(txn, md->users, &cur);
    if (rc)
        return md_mdb_err(rc, "users cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && e == CM_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *kp = k.mv_data;
        if (k.mv_size < 3 || kp[1] != '/')
            continue;
        if (kp[0] == 'u' && (e = grow((void **)users, *nu, &cu, sizeof(**users))) == CM_OK &&
            (e = user_decode(v.mv_data, v.mv_size, kp + 2, k.mv_size - 2, &(*users)[*nu])) == CM_OK)
            (*nu)++;
        else if (kp[0] == 'k' && (e = grow((void **)keys, *nk, &ck, sizeof(**keys))) == CM_OK &&
                 (e = md_user_key_decode(v.mv_data, v.mv_size, kp + 2, k.mv_size - 2,
                                         &(*keys)[*nk])) == CM_OK)
            (*nk)++;
    }
    mdb_cursor_close(cur);
    if (e == CM_OK && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "users cursor");
    return e;
}

cm_err md_users_list(md_store *md, md_user **users, size_t *nu, md_user_key **keys, size_t *nk)
{
    MDB_txn *txn;
    *users = NULL;
    *keys = NULL;
    *nu = *nk = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = list_txn(txn, md, users, nu, keys, nk);
    md_txn_end(md, txn);
    if (e != CM_OK) {
        free(*users);
        free(*keys);
        *users = NULL;
        *keys = NULL;
        *nu = *nk = 0;
    }
    return e;
}

/* ---- bucket policies ---- */

cm_err md_bucket_policy_get(md_store *md, const char *bucket, int64_t created_ms, char **json,
                            size_t *len)
{
    MDB_txn *txn;
    char k[KEY_MAX + 1];
    MDB_val mk = {0, k}, mv;
    *json = NULL;
    *len = 0;
    if (!(mk.mv_size = make_key('p', bucket, k)))
        return CM_ERR_NOTFOUND;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    int rc = mdb_get(txn, md->users, &mk, &mv);
    const uint8_t *p = mv.mv_data;
    if (rc == 0 && (mv.mv_size < 9 || p[0] != FORMAT))
        e = MD_CORRUPT("bad bucket policy record");
    else if (rc == 0 && (int64_t)cm_get_be64(p + 1) != created_ms)
        e = CM_ERR_NOTFOUND; /* a deleted bucket's */
    else if (rc == 0 && !(*json = malloc(mv.mv_size - 9 + 1)))
        e = CM_ERR_NOMEM;
    else if (rc == 0) {
        *len = mv.mv_size - 9;
        memcpy(*json, p + 9, *len);
        (*json)[*len] = '\0';
    } else {
        e = rc_err(rc, "get bucket policy");
    }
    md_txn_end(md, txn);
    return e;
}

cm_err md_bucket_policy_drop_txn(md_store *md, MDB_txn *txn, const char *bucket)
{
    char k[KEY_MAX + 1];
    MDB_val mk = {0, k};
    if (!(mk.mv_size = make_key('p', bucket, k)))
        return CM_OK;
    int rc = md_db_del(txn, md->users, &mk);
    return rc == MDB_NOTFOUND ? CM_OK : rc_err(rc, "drop bucket policy");
}

typedef struct {
    const char *bucket;
    int64_t created_ms;
    const char *json;
    size_t len;
} policy_op;

static cm_err policy_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    policy_op *op = arg;
    char k[KEY_MAX + 1];
    MDB_val mk = {0, k};
    md_wbuf w = {0};
    if (!(mk.mv_size = make_key('p', op->bucket, k)))
        return CM_ERR_INVAL;
    if (op->len == 0) {
        int rc = md_db_del(txn, md->users, &mk);
        if (rc == MDB_NOTFOUND)
            *wrote = 0;
        return rc == MDB_NOTFOUND ? CM_OK : rc_err(rc, "delete bucket policy");
    }
    uint8_t h[9] = {FORMAT};
    cm_put_be64(h + 1, (uint64_t)op->created_ms);
    md_w_bytes(&w, h, sizeof(h));
    md_w_bytes(&w, op->json, op->len);
    int rc = put_val(txn, md, k, mk.mv_size, &w, 0);
    md_w_free(&w);
    return rc_err(rc, "put bucket policy");
}

cm_err md_bucket_policy_set(md_store *md, const char *bucket, int64_t created_ms, const char *json,
                            size_t len)
{
    policy_op op = {bucket, created_ms, json, len};
    return md_write(md, policy_apply, &op);
}
