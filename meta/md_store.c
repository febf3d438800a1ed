/*
 * md_store.c - the LMDB environment, bucket records and current object records.
 *
 * One environment per store directory with its named databases (see md.h for the key space; the
 * database "replica" holds the commit sequence number of a store kept in copies, md_mirror.c,
 * which also opens the copies: md_open is md_open_copies with one).
 * Opened with MDB_NOTLS because callers are worker threads that may hand a read transaction's
 * results across threads; commits are durable (no MDB_NOSYNC). Every public write is an op run
 * by the group commit (md_commit.c): its apply function runs in its own nested transaction of a
 * shared batch, and a conditional write reads the current record and checks the condition inside
 * that nested transaction, after every op ordered before it, so check-and-set stays atomic.
 * In a versioned bucket a write or delete also moves versions (md_version.c, md_vers_install and
 * md_vers_delete, called inside the same op), so "the record it replaced" is the version the op
 * destroyed, if any.
 * Records are encoded by the caller before queueing, so the batch leader does less serial work;
 * results (the replaced record) are handed out by the caller only once the batch is durable.
 *
 * The map starts at 1 GiB and grows on demand (md_map_grow, run by the group-commit leader when a
 * batch hits MDB_MAP_FULL, up to the file system's size): every read transaction holds map_lock
 * shared (md_txn_begin/md_txn_end), since a resize remaps the file under their slices.
 *
 * Errors: MDB_MAP_FULL (once the map cannot grow) -> CM_ERR_NOSPC, any other LMDB failure ->
 * CM_ERR_IO (logged with mdb_strerror); records that do not decode -> CM_ERR_CORRUPT (logged by
 * the codec).
 *
 * Threading: an md_store is shared by all threads; its only mutable state is the group commit
 * queue and counters (md_commit.c, under their own mutex) and, with copies, which copy is the
 * primary (md->env: changed by the leader with map_lock held exclusively, md_mirror.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cm_util.h"
#include "md_int.h"

cm_err md_mdb_err(int rc, const char *what)
{
    /* A full map is expected: the commit grows it and runs the batch again; md_map_grow warns
     * when it cannot grow any further. */
    if (rc == MDB_MAP_FULL) {
        CM_DEBUG(MD_MOD, "%s: %s", what, mdb_strerror(rc));
        return CM_ERR_NOSPC;
    }
    CM_ERROR(MD_MOD, "%s: %s", what, mdb_strerror(rc));
    return CM_ERR_IO;
}

/* ---- Keys ---- */

cm_err md_key_object(const char *bucket, const char *key, uint8_t *buf, size_t *len)
{
    size_t bl = strlen(bucket), kl = strlen(key);
    if (bl == 0 || bl > MD_BUCKET_MAX || kl > MD_MAX_KEY)
        return CM_ERR_INVAL;
    memcpy(buf, bucket, bl);
    buf[bl] = 0;
    memcpy(buf + bl + 1, key, kl);
    *len = bl + 1 + kl;
    return CM_OK;
}

cm_err md_key_upload(const char *bucket, const char *key, const char *upload_id, uint8_t *buf,
                     size_t *len)
{
    size_t il = strlen(upload_id);
    if (il == 0 || il > MD_UPLOAD_ID_MAX || *key == 0)
        return CM_ERR_INVAL;
    cm_err e = md_key_object(bucket, key, buf, len);
    if (e != CM_OK)
        return e;
    buf[(*len)++] = 0;
    memcpy(buf + *len, upload_id, il);
    *len += il;
    return CM_OK;
}

size_t md_key_part(const char *upload_id, uint32_t number, uint8_t *buf)
{
    size_t il = strnlen(upload_id, MD_UPLOAD_ID_MAX);
    memcpy(buf, upload_id, il);
    buf[il] = 0;
    cm_put_be32(buf + il + 1, number);
    return il + 5;
}

/* ---- Environment ---- */

cm_err md_txn_begin(md_store *md, int rdonly, MDB_txn **txn)
{
    if (rdonly)
        pthread_rwlock_rdlock(&md->map_lock);
    int rc = mdb_txn_begin(md->env, NULL, rdonly ? MDB_RDONLY : 0, txn);
    if (rc && rdonly)
        pthread_rwlock_unlock(&md->map_lock);
    return rc ? md_mdb_err(rc, "mdb_txn_begin") : CM_OK;
}

void md_txn_end(md_store *md, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&md->map_lock);
}

cm_err md_check(md_store *md)
{
    MDB_txn *txn;
    /* LMDB refuses every transaction once the environment had a fatal error (MDB_PANIC). */
    pthread_rwlock_rdlock(&md->map_lock);
    int rc = mdb_txn_begin(md->env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&md->map_lock);
    if (rc)
        return md_mdb_err(rc, "metadata store unusable (restart required)");
    return CM_OK;
}

/* ---- Map size ---- */

/* The size of the file system holding dir: the map never needs to be larger than that (1 TiB
 * when it cannot be told). */
static size_t fs_size(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0 || sv.f_blocks == 0)
        return (size_t)1 << 40;
    return (size_t)sv.f_blocks * sv.f_frsize;
}

cm_err md_map_grow(md_store *md)
{
    size_t step = md->map_size < MD_MAP_STEP_MAX ? md->map_size : MD_MAP_STEP_MAX;
    size_t want = md->map_size + step;
    if (want > md->map_max)
        want = md->map_max;
    if (want <= md->map_size) {
        CM_WARN(MD_MOD, "metadata map full at its limit of %zu bytes: the write is refused",
                md->map_size);
        return CM_ERR_NOSPC;
    }
    /* Wait out every read transaction: resizing remaps the file under their slices. */
    pthread_rwlock_wrlock(&md->map_lock);
    int rc = mdb_env_set_mapsize(md->env, want);
    pthread_rwlock_unlock(&md->map_lock);
    if (rc)
        return md_mdb_err(rc, "mdb_env_set_mapsize");
    CM_INFO(MD_MOD, "metadata map grown from %zu to %zu bytes", md->map_size, want);
    pthread_mutex_lock(&md->gc.mu);
    md->map_size = want;
    md->gc.st.map_size = want;
    md->gc.st.map_grows++;
    pthread_mutex_unlock(&md->gc.mu);
    return CM_OK;
}

void md_map_set_max(md_store *md, size_t max)
{
    pthread_mutex_lock(&md->gc.mu);
    md->map_max = max;
    pthread_mutex_unlock(&md->gc.mu);
}

cm_err md_txn_commit(MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    return rc ? md_mdb_err(rc, "mdb_txn_commit") : CM_OK;
}

/* Open (creating) the databases of env in a fixed order, so that every copy of the store gets
 * the same handles: the first sets md's, the others must match them. */
cm_err md_env_dbs(md_store *md, MDB_env *env, int first)
{
    static const char *const names[] = {"buckets", "objects",  "uploads",   "parts",  "garbage",
                                        "hints",   "replica",  "tombmarks", "fences", "lifecycle",
                                        "users",   "versions", "intents",   "spill"};
    MDB_dbi *slots[] = {&md->buckets, &md->objects,  &md->uploads,   &md->parts,  &md->garbage,
                        &md->hints,   &md->replica,  &md->tombmarks, &md->fences, &md->lifecycle,
                        &md->users,   &md->versions, &md->intents,   &md->spill};
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc)
        return md_mdb_err(rc, "mdb_txn_begin");
    for (size_t i = 0; !rc && i < sizeof(names) / sizeof(names[0]); i++) {
        MDB_dbi d;
        rc = mdb_dbi_open(txn, names[i], MDB_CREATE, &d);
        if (!rc && first)
            *slots[i] = d;
        else if (!rc && d != *slots[i]) {
            mdb_txn_abort(txn);
            return MD_CORRUPT("database handles differ between copies");
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return md_mdb_err(rc, "mdb_dbi_open");
    }
    MDB_stat st;
    if ((rc = mdb_env_stat(env, &st)) != 0) {
        mdb_txn_abort(txn);
        return md_mdb_err(rc, "mdb_env_stat");
    }
    cm_err e = md_kv_spill_init(md->spill, st.ms_psize);
    if (e != CM_OK) {
        mdb_txn_abort(txn);
        return e;
    }
    return md_txn_commit(txn);
}

cm_err md_env_open(const char *dir, size_t map_size, unsigned flags, MDB_env **out, size_t *got_map)
{
    MDB_env *env;
    *out = NULL;
    int rc = mdb_env_create(&env);
    if (rc)
        return md_mdb_err(rc, "mdb_env_create");
    rc = mdb_env_set_maxdbs(env, 16); /* 14 used (md_env_dbs) */
    if (!rc)
        rc = mdb_env_set_mapsize(env, map_size ? map_size : MD_MAP_INITIAL);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS | flags, 0644);
    if (rc) {
        mdb_env_close(env);
        return md_mdb_err(rc, dir);
    }
    /* A file larger than the asked-for map (grown by an earlier run) sets the size. */
    MDB_envinfo info;
    mdb_env_info(env, &info);
    *got_map = info.me_mapsize;
    int dead = 0;
    mdb_reader_check(env, &dead); /* clear reader slots of crashed processes */
    *out = env;
    return CM_OK;
}

size_t md_fs_size(const char *dir)
{
    return fs_size(dir);
}

md_store *md_store_alloc(void)
{
    md_store *md = calloc(1, sizeof(*md));
    if (!md)
        return NULL;
    if (md_gc_init(&md->gc) != CM_OK) {
        free(md);
        return NULL;
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&md->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&md->fence_mu, NULL);
    if (cm_random(&md->life, sizeof(md->life)) != CM_OK || md->life == 0)
        md->life = (uint64_t)cm_now_ms() | 1; /* any value other openings are unlikely to take */
    return md;
}

cm_err md_open(const char *dir, size_t map_size, md_store **out)
{
    return md_open_copies(&dir, 1, NULL, map_size, out);
}

void md_close(md_store *md)
{
    if (!md)
        return;
    md_gc_release(&md->gc); /* first: joins the commit thread, which uses the copies */
    md_mirror_close(md);    /* the copies' threads and every environment */
    pthread_rwlock_destroy(&md->map_lock);
    md_fence_release(md);
    free(md);
}

/* ---- Buckets ---- */

typedef struct {
    MDB_val k;
    md_wbuf w; /* encoded bucket record */
} bucket_create_op;

static cm_err bucket_create_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    bucket_create_op *op = arg;
    (void)wrote;
    MDB_val v = {op->w.len, op->w.p};
    int rc = md_db_put(txn, md->buckets, &op->k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return CM_ERR_EXISTS;
    return rc ? md_mdb_err(rc, "put bucket") : CM_OK;
}

cm_err md_bucket_create(md_store *md, const md_bucket *b)
{
    size_t nl = strnlen(b->name, sizeof(b->name));
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    bucket_create_op op = {.k = {nl, (void *)b->name}};
    cm_err e = md_bucket_encode(b, &op.w);
    if (e == CM_OK)
        e = md_write(md, bucket_create_apply, &op);
    md_w_free(&op.w);
    return e;
}

static cm_err bucket_read(MDB_txn *txn, md_store *md, const char *name, md_bucket *out)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_NOTFOUND;
    MDB_val k = {nl, (void *)name}, v;
    int rc = mdb_get(txn, md->buckets, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc)
        return md_mdb_err(rc, "get bucket");
    md_bucket tmp;
    return md_bucket_decode(v.mv_data, v.mv_size, out ? out : &tmp);
}

cm_err md_bucket_get(md_store *md, const char *name, md_bucket *out)
{
    MDB_txn *txn;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = bucket_read(txn, md, name, out);
    md_txn_end(md, txn);
    return e;
}

/*
 * CM_ERR_CONFLICT when bucket holds an object: a record under bucket \0 that is not a tombstone.
 * Tombstones are deletions kept for replication (cluster mode): a bucket whose keys were all
 * deleted holds only them and is empty. A single node writes none, so there the first key decides;
 * in cluster mode the walk decodes the summary of each tombstone before the first live record.
 */
static cm_err bucket_holds_objects(MDB_txn *txn, MDB_dbi dbi, const char *bucket)
{
    uint8_t k[MD_BUCKET_MAX + 1];
    size_t kl;
    md_kv_iter it;
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e == CM_OK)
        e = md_kv_iter_open(txn, dbi, &it);
    if (e != CM_OK)
        return e;
    for (e = md_kv_iter_seek(&it, k, kl); e == CM_OK; e = md_kv_iter_next(&it)) {
        if (it.key.n < kl || memcmp(it.key.p, k, kl) != 0)
            break; /* past the bucket's keys */
        md_object o;
        e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_SUMMARY, &o);
        if (e != CM_OK)
            break;
        int tombstone = o.tombstone;
        md_object_release(&o);
        if (!tombstone) {
            e = CM_ERR_CONFLICT;
            break;
        }
    }
    md_kv_iter_close(&it);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

typedef struct {
    const char *name;
    md_part *parts; /* parts of the removed uploads (no bodies) */
    size_t nparts;
} bucket_delete_op;

static cm_err bucket_delete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    bucket_delete_op *op = arg;
    const char *name = op->name;
    (void)wrote;
    md_parts_free(op->parts, op->nparts); /* a rerun after the map grew */
    op->parts = NULL, op->nparts = 0;
    cm_err e = bucket_read(txn, md, name, NULL);
    if (e == CM_OK)
        e = bucket_holds_objects(txn, md->objects, name);
    if (e == CM_OK)
        e = md_vers_bucket_empty(txn, md, name); /* older versions keep it too */
    if (e == CM_OK)
        e = md_uploads_remove_bucket(txn, md, name, &op->parts, &op->nparts);
    if (e == CM_OK) {
        MDB_val k = {strlen(name), (void *)name};
        int rc = md_db_del(txn, md->buckets, &k);
        e = rc ? md_mdb_err(rc, "del bucket") : CM_OK;
    }
    if (e == CM_OK)
        e = md_fence_drop_txn(md, txn, name); /* its partitions' leader tokens */
    if (e == CM_OK)
        e = md_lc_drop_txn(md, txn, name); /* its lifecycle configuration */
    if (e == CM_OK)
        e = md_bucket_policy_drop_txn(md, txn, name); /* its policy (md_users.c) */
    return e;
}

cm_err md_bucket_delete(md_store *md, const char *name, md_part **parts, size_t *n)
{
    bucket_delete_op op = {.name = name};
    cm_err e = md_write(md, bucket_delete_apply, &op);
    if (e == CM_OK && parts) {
        *parts = op.parts, *n = op.nparts;
    } else {
        md_parts_free(op.parts, op.nparts);
        if (parts)
            *parts = NULL, *n = 0;
    }
    return e;
}

static cm_err bucket_collect(MDB_txn *txn, md_store *md, md_bucket **out, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, md->buckets, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    cm_err e = CM_OK;
    while (e == CM_OK && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            md_bucket *a = realloc(*out, cap * sizeof(*a));
            if (!a) {
                e = CM_ERR_NOMEM;
                break;
            }
            *out = a;
        }
        e = md_bucket_decode(v.mv_data, v.mv_size, &(*out)[*n]);
        if (e == CM_OK)
            (*n)++;
    }
    if (e == CM_OK && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "list buckets");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_bucket_list(md_store *md, md_bucket **out, size_t *n)
{
    MDB_txn *txn;
    *out = NULL;
    *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = bucket_collect(txn, md, out, n);
    md_txn_end(md, txn);
    if (e != CM_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return e;
}

/* ---- Objects ---- */

cm_err md_cond_check(const md_cond *cond, const md_object *cur)
{
    if (!cond)
        return CM_OK;
    int live = cur && !cur->delete_marker && !cur->tombstone;
    if (cond->if_none_match_star && live)
        return CM_ERR_PRECONDITION;
    if (cond->if_match) {
        if (!live)
            return CM_ERR_NOTFOUND;
        if (strcmp(cond->if_match, "*") != 0 && strcmp(cond->if_match, cur->etag) != 0)
            return CM_ERR_PRECONDITION;
    }
    if (cond->unlocked && live && md_lock_protects(cur, cm_now_ms(), cond->bypass_governance))
        return CM_ERR_LOCKED;
    return CM_OK;
}

static cm_err object_read_mode(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, int mode,
                               md_object *cur, int *found)
{
    md_slice v;
    *found = 0;
    memset(cur, 0, sizeof(*cur));
    cm_err e = md_kv_get(txn, md->objects, k, klen, &v);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e == CM_OK)
        e = md_object_decode_ex(v.p, v.n, mode, cur);
    *found = e == CM_OK;
    return e;
}

cm_err md_object_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, md_object *cur,
                      int *found)
{
    return object_read_mode(txn, md, k, klen, MD_DECODE_FULL, cur, found);
}

cm_err md_object_put_stored(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, md_wbuf *w,
                            const md_object *prev)
{
    md_object_set_generation(w, prev ? prev->generation + 1 : 1);
    return md_kv_put(txn, md->objects, k, klen, w->p, w->len);
}

cm_err md_object_write(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen,
                       const md_object *obj, const md_object *prev)
{
    md_wbuf w = {0};
    uint64_t prev_gen = prev ? prev->generation : 0; /* prev may be obj itself */
    cm_err e = md_object_encode_stored(obj, &w);
    if (e == CM_OK) {
        md_object_set_generation(&w, prev_gen + 1);
        e = md_kv_put(txn, md->objects, k, klen, w.p, w.len);
    }
    md_w_free(&w);
    return e;
}

cm_err md_object_read_one(md_store *md, const char *bucket, const char *key, md_object *out,
                          int *found)
{
    uint8_t k[MD_KEYBUF];
    size_t kl;
    MDB_txn *txn;
    memset(out, 0, sizeof(*out));
    *found = 0;
    if (md_key_object(bucket, key, k, &kl) != CM_OK)
        return CM_OK; /* a key that cannot be stored is not there */
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = md_object_read(txn, md, k, kl, out, found);
    md_txn_end(md, txn);
    return e;
}

cm_err md_object_get(md_store *md, const char *bucket, const char *key, md_object *out)
{
    int found;
    cm_err e = md_object_read_one(md, bucket, key, out, &found);
    if (e == CM_OK && found && out->tombstone) { /* a deletion kept for replication */
        md_object_release(out);
        found = 0;
    }
    return e == CM_OK && !found ? CM_ERR_NOTFOUND : e;
}

/* Hand the replaced record to the caller, or free it. */
static void give_old(md_object *cur, int found, md_object *old, int *had_old)
{
    if (old) {
        *old = *cur;
        memset(cur, 0, sizeof(*cur));
    } else {
        md_object_release(cur);
    }
    if (had_old)
        *had_old = found;
}

static void clear_old(md_object *old, int *had_old)
{
    if (old)
        memset(old, 0, sizeof(*old));
    if (had_old)
        *had_old = 0;
}

/* State of one put or delete: the key, its input and the record it replaced (or, in a versioned
 * bucket, the version it destroyed: md_vers_install). */
typedef struct {
    const char *bucket;
    const char *key, *vid; /* delete: the key and the version to destroy (NULL: the key) */
    const md_cond *cond;
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_wbuf w; /* put: the encoded new record */
    md_object cur;
    int found;
    md_vres *res;
} object_op;

/* Drop what an earlier run of the op left (the map grew and the batch reran). */
static void object_op_reset(object_op *op)
{
    if (op->found)
        md_object_release(&op->cur);
    op->found = 0;
}

static cm_err object_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    object_op *op = arg;
    (void)wrote;
    object_op_reset(op);
    cm_err e = bucket_read(txn, md, op->bucket, NULL);
    if (e == CM_OK)
        e = md_object_read(txn, md, op->k, op->kl, &op->cur, &op->found);
    if (e == CM_OK)
        e = md_cond_check(op->cond, op->found ? &op->cur : NULL);
    if (e == CM_OK)
        e = md_vers_install(md, txn, op->bucket, op->k, op->kl, &op->w, 0, &op->cur, &op->found,
                            op->res);
    return e;
}

/* Hand the replaced record to the caller when e is CM_OK, else free it. */
static void object_op_finish(object_op *op, cm_err e, md_object *old, int *had_old)
{
    if (e == CM_OK)
        give_old(&op->cur, op->found, old, had_old);
    else if (op->found)
        md_object_release(&op->cur);
}

cm_err md_object_put(md_store *md, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old)
{
    return md_object_put_v(md, bucket, obj, cond, old, had_old, NULL);
}

cm_err md_object_put_v(md_store *md, const char *bucket, const md_object *obj, const md_cond *cond,
                       md_object *old, int *had_old, md_vres *res)
{
    object_op op = {.bucket = bucket, .cond = cond, .res = res};
    clear_old(old, had_old);
    if (!obj->key || !*obj->key || md_key_object(bucket, obj->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_object_encode_stored(obj, &op.w);
    if (e == CM_OK)
        e = md_write(md, object_put_apply, &op);
    md_w_free(&op.w);
    object_op_finish(&op, e, old, had_old);
    return e;
}

typedef struct {
    md_op op; /* first: fin gets it back */
    object_op o;
    md_put_done_fn done;
    void *arg;
} put_async;

static void put_async_fin(md_op *op)
{
    put_async *a = (put_async *)op;
    md_object old = {0};
    int had_old = 0;
    md_w_free(&a->o.w);
    object_op_finish(&a->o, op->err, &old, &had_old);
    a->done(a->arg, op->err, &old, had_old);
    free(a);
}

cm_err md_object_put_async(md_store *md, const char *bucket, const md_object *obj,
                           const md_cond *cond, md_put_done_fn done, void *arg)
{
    return md_object_put_async_v(md, bucket, obj, cond, NULL, done, arg);
}

cm_err md_object_put_async_v(md_store *md, const char *bucket, const md_object *obj,
                             const md_cond *cond, md_vres *res, md_put_done_fn done, void *arg)
{
    put_async *a = calloc(1, sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    a->o.bucket = bucket;
    a->o.cond = cond;
    a->o.res = res;
    a->done = done;
    a->arg = arg;
    a->op.apply = object_put_apply;
    a->op.arg = &a->o;
    a->op.fin = put_async_fin;
    cm_err e = CM_ERR_INVAL;
    if (obj->key && *obj->key && md_key_object(bucket, obj->key, a->o.k, &a->o.kl) == CM_OK)
        e = md_object_encode_stored(obj, &a->o.w);
    if (e == CM_OK)
        e = md_write_async(md, &a->op);
    if (e != CM_OK) {
        md_w_free(&a->o.w);
        free(a);
    }
    return e;
}

static cm_err object_delete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    object_op *op = arg;
    object_op_reset(op);
    return md_vers_delete(md, txn, op->bucket, op->key, op->vid, op->cond, MD_DECODE_FULL, &op->cur,
                          &op->found, op->res, wrote);
}

cm_err md_object_delete(md_store *md, const char *bucket, const char *key, const md_cond *cond,
                        md_object *old, int *had_old)
{
    return md_object_delete_v(md, bucket, key, NULL, cond, old, had_old, NULL);
}

cm_err md_object_delete_v(md_store *md, const char *bucket, const char *key, const char *vid,
                          const md_cond *cond, md_object *old, int *had_old, md_vres *res)
{
    object_op op = {.bucket = bucket, .key = key, .vid = vid, .cond = cond, .res = res};
    clear_old(old, had_old);
    if (md_key_object(bucket, key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_write(md, object_delete_apply, &op);
    object_op_finish(&op, e, old, had_old);
    return e;
}

/* ---- Many deletes in one op (DeleteObjects) ---- */

typedef struct {
    const char *bucket;
    const char *const *keys;
    const char *const *vids; /* NULL, or per key (NULL: the key) */
    size_t n;
    cm_err *errs;
    md_object *olds; /* decoded without inline bodies */
    int *had;
    md_vres *res; /* NULL or n */
    int bypass;   /* x-amz-bypass-governance-retention, granted */
} delete_many_op;

static void delete_many_reset(delete_many_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        if (op->had[i])
            md_object_release(&op->olds[i]);
        op->had[i] = 0;
        op->errs[i] = CM_OK;
    }
}

static cm_err delete_many_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    delete_many_op *op = arg;
    size_t ndel = 0;
    delete_many_reset(op);
    for (size_t i = 0; i < op->n; i++) {
        int w = 1;
        md_cond bypass = {.bypass_governance = op->bypass};
        cm_err e = md_vers_delete(md, txn, op->bucket, op->keys[i], op->vids ? op->vids[i] : NULL,
                                  &bypass, MD_DECODE_NOBODY, &op->olds[i], &op->had[i],
                                  op->res ? &op->res[i] : NULL, &w);
        if (e == CM_ERR_IO || e == CM_ERR_NOSPC || e == CM_ERR_NOMEM)
            return e; /* the transaction itself failed: every key fails */
        if (e != CM_OK && op->had[i])
            md_object_release(&op->olds[i]), op->had[i] = 0;
        op->errs[i] = e;
        ndel += w && e == CM_OK;
    }
    if (ndel == 0)
        *wrote = 0;
    return CM_OK;
}

cm_err md_objects_delete(md_store *md, const char *bucket, const char *const *keys, size_t n,
                         cm_err *errs, md_object *olds, int *had_old)
{
    return md_objects_delete_v(md, bucket, keys, NULL, n, errs, olds, had_old, NULL);
}

cm_err md_objects_delete_v(md_store *md, const char *bucket, const char *const *keys,
                           const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                           int *had_old, md_vres *res)
{
    return md_objects_delete_vb(md, bucket, keys, vids, n, errs, olds, had_old, res, 0);
}

cm_err md_objects_delete_vb(md_store *md, const char *bucket, const char *const *keys,
                            const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                            int *had_old, md_vres *res, int bypass)
{
    delete_many_op op = {bucket, keys, vids, n, errs, olds, had_old, res, bypass};
    memset(olds, 0, n * sizeof(*olds));
    memset(had_old, 0, n * sizeof(*had_old));
    cm_err e = md_write(md, delete_many_apply, &op);
    if (e != CM_OK) {
        delete_many_reset(&op);
        for (size_t i = 0; i < n; i++)
            errs[i] = e;
    }
    return e;
}
