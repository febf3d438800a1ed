/*
 * md_replica.c - what a replica of a metadata partition needs from its store (repl/, docs/
 * replication.md): the merge-put, a filtered page of record summaries, the hint store, and the
 * wire form of digest entries.
 *
 * Merge-put (md_rec_merge): one group-commit op (which first admits a partition leader's token,
 * md_rec_receive_fenced) reads the stored version of the key, resolves it
 * against the incoming one (md_object_resolve) and writes the winner, turning the loser's bodies
 * that the winner does not name into garbage records in the same nested transaction: a crash
 * keeps both or neither. The very same version (equal digest) is a success that writes nothing,
 * so a retried or repeated put (read repair, hint delivery) costs no sync. A pointer of a
 * versioned key (docs/versioning.md, "On a cluster") makes no garbage; a new version's pointer
 * meeting a record from before versioning that it did not see (vectors) stores that record as
 * the key's null version in the same transaction (keep_unseen_plain). A record for a key the
 * store does not hold, stamped below its partition's tombstone collection mark, is refused
 * (md_tomb.c): it may be a version that a collected tombstone beat. A write with a layout guard
 * (md_guard: the node RPC's, which admitted the call's layout epoch when it arrived) checks the
 * node's fence again first, in the op: one that rose meanwhile refuses it (CM_ERR_STALE), and
 * md_merkle_leaves takes its hashes after a turn of the group commit (md_barrier). So a Merkle
 * read begun after the fence rose sees every write of the older layout that this store will
 * ever acknowledge (docs/replication.md, "The fence and the commit queue").
 *
 * Hints: database "hints", key target \0 bucket \0 key (through md_kv.c, so long keys work), value
 * the encoded record. A partition's stand-in keeps the record here, not among its own objects:
 * it is not a home of that partition, so the record must neither show in its listings nor in its
 * Merkle trees. Listing is one walk of target's range; delivery drops a hint only while it is the
 * version delivered (digest compared inside the dropping op). A put of a new hint is refused
 * once the database holds hints_max entries (mdb_stat inside the op: O(1), exact within the
 * batch), so a long outage of a home cannot fill a stand-in's disk with hints.
 *
 * Threading: as md_store.c (writes are group-commit ops, reads take their own read txn).
 * md_rec_receive_async queues the merge without waiting: the node RPC's loop and the cluster's
 * local replica hand a record write straight to the commit thread, whose completion returns it to
 * their loop, instead of holding a pool thread through the commit (two thread switches fewer per
 * replica write, docs/performance.md).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "md_int.h"

/* ---- shards (md_shard_of: md_mpkey.c) ---- */

int md_shard_keep(void *arg, const uint8_t *key, size_t klen)
{
    const md_shard *s = arg;
    return md_shard_of(key, klen, s->nshards) == s->shard;
}

/* ---- merge-put ---- */

typedef struct {
    const char *bucket;
    const md_object *rec;
    uint32_t shard;
    uint64_t fence; /* a partition leader's token, admitted in the transaction; 0: none */
    md_guard guard; /* the layout guard (bar NULL: none) */
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_wbuf w;
    int applied;
} merge_op;

static int same_version(const md_object *a, const md_object *b)
{
    uint8_t da[16], db[16];
    size_t kl = strlen(a->key);
    return strcmp(a->key, b->key) == 0 &&
           md_rec_digest((const uint8_t *)a->key, kl, a, da) == CM_OK &&
           md_rec_digest((const uint8_t *)b->key, kl, b, db) == CM_OK && memcmp(da, db, 16) == 0;
}

/* A cluster node's versioned key record (docs/versioning.md, "On a cluster"): an S3 key whose
 * record points to its latest version (vstamp set) and names no body itself. The body of the
 * record such a pointer replaces, or that loses to it, belongs to a version record (the `null`
 * version copied there first), so it is never garbage here. */
static int version_pointer(const md_object *o)
{
    return o->vstamp != 0 && o->key && (uint8_t)o->key[0] != MD_MPU_MARK && o->nparts == 0 &&
           !o->inline_data && o->inline_len == 0;
}

/* A new version's pointer (stamped at its version's stamp, rp_version.c) meeting plain, a live
 * record of the key from before versioning, that its writer did not see (its vector does not
 * dominate plain's): plain was written through a node that had not yet seen the bucket become
 * Enabled, after the versioned write read the key. Whichever wins, plain stays, as the key's null
 * version (md_ver_null_key, the key the writer would have copied it to): stored here unless that
 * key is (the writer's copy, or another replica's) or a collected tombstone refuses it. So the
 * write is never lost and its body keeps an owner. *wrote set when stored. */
static cm_err keep_unseen_plain(md_store *md, MDB_txn *txn, const char *bucket,
                                const md_object *pointer, const md_object *plain, int *wrote)
{
    char vkey[MD_MAX_KEY + 1];
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_object copy = *plain, cur;
    int found = 0, refused = 0;
    if (!version_pointer(pointer) || pointer->vstamp != pointer->hlc || plain->vstamp ||
        plain->tombstone || md_vv_compare(&pointer->vv, &plain->vv) == MD_VV_AFTER ||
        md_ver_null_key(plain, vkey, sizeof(vkey)) != CM_OK ||
        md_key_object(bucket, vkey, k, &kl) != CM_OK)
        return CM_OK;
    cm_err e = md_object_read(txn, md, k, kl, &cur, &found);
    if (e != CM_OK || found) {
        if (found)
            md_object_release(&cur);
        return e;
    }
    copy.key = vkey;
    snprintf(copy.version_id, sizeof(copy.version_id), "null");
    copy.vstamp = plain->hlc ? plain->hlc : 1;
    if ((e = md_tomb_refuses(txn, md, bucket, &copy, &refused)) != CM_OK || refused)
        return e;
    if ((e = md_object_write(txn, md, k, kl, &copy, NULL)) == CM_OK)
        *wrote = 1;
    return e;
}

/* The merge proper, once the bucket is known and the token admitted. */
static cm_err merge_record(md_store *md, MDB_txn *txn, merge_op *op, int *wrote)
{
    md_object cur;
    int found = 0;
    size_t added = 0;
    cm_err e = md_object_read(txn, md, op->k, op->kl, &cur, &found);
    if (e != CM_OK)
        return e;
    if (!found) {
        int refused = 0; /* below a tombstone collection mark (md_tomb.c) */
        if ((e = md_tomb_refuses(txn, md, op->bucket, op->rec, &refused)) != CM_OK || refused) {
            *wrote = 0;
            return e;
        }
        op->applied = 1;
        return md_object_put_stored(txn, md, op->k, op->kl, &op->w, NULL);
    }
    if (cur.generation == 0)
        cur.generation = 1; /* a record from before generations */
    uint64_t stamp = CM_MAX(cur.hlc, op->rec->hlc);
    if (same_version(&cur, op->rec)) {
        op->applied = 1;
        *wrote = 0;
    } else if (md_object_resolve(&cur, op->rec, NULL) == 1) {
        op->applied = 1;
        if (!version_pointer(&cur) && !version_pointer(op->rec))
            e = md_garbage_add(txn, md, op->bucket, &cur, op->rec, stamp, NULL);
        else
            e = keep_unseen_plain(md, txn, op->bucket, op->rec, &cur, wrote);
        if (e == CM_OK)
            e = md_object_put_stored(txn, md, op->k, op->kl, &op->w, &cur);
    } else {
        if (!version_pointer(&cur) && !version_pointer(op->rec))
            e = md_garbage_add(txn, md, op->bucket, op->rec, &cur, stamp, &added);
        *wrote = added > 0;
        if (e == CM_OK && version_pointer(&cur))
            e = keep_unseen_plain(md, txn, op->bucket, &cur, op->rec, wrote);
    }
    md_object_release(&cur);
    return e;
}

static cm_err merge_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    merge_op *op = arg;
    int fenced = 0; /* the token raised: stored in this transaction */
    MDB_val bk = {strlen(op->bucket), (void *)op->bucket}, bv;
    op->applied = 0;
    /* the node's layout fence rose since it admitted the call: what it would write now could
     * come after a settling Merkle read of this store (md_guard) */
    if (op->guard.bar && op->guard.epoch && atomic_load(op->guard.bar) > op->guard.epoch)
        return CM_ERR_STALE;
    int rc = mdb_get(txn, md->buckets, &bk, &bv);
    if (rc)
        return rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "get bucket");
    cm_err e = md_fence_admit_txn(md, txn, op->bucket, op->shard, op->fence, &fenced);
    if (e == CM_OK)
        e = merge_record(md, txn, op, wrote);
    if (fenced)
        *wrote = 1;
    return e;
}

static cm_err merge(md_store *md, const char *bucket, uint32_t shard, uint64_t fence,
                    const md_guard *guard, const md_object *rec, int *applied)
{
    merge_op op = {.bucket = bucket, .rec = rec, .shard = shard, .fence = fence};
    if (guard)
        op.guard = *guard;
    *applied = 0;
    if (!rec->key || !*rec->key || md_key_object(bucket, rec->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_object_encode_stored(rec, &op.w);
    if (e == CM_OK)
        e = md_write(md, merge_apply, &op);
    md_w_free(&op.w);
    *applied = e == CM_OK && op.applied;
    return e;
}

cm_err md_rec_merge(md_store *md, const char *bucket, const md_object *rec, int *applied)
{
    return merge(md, bucket, 0, 0, NULL, rec, applied);
}

/* The received stamp merged into the clock; CM_ERR_INVAL when it is too far ahead. */
static cm_err clock_take(md_hlc *clock, const md_object *rec)
{
    uint64_t now;
    return clock && rec->hlc && md_hlc_update(clock, rec->hlc, &now) != CM_OK ? CM_ERR_INVAL
                                                                              : CM_OK;
}

cm_err md_rec_receive_fenced(md_store *md, md_hlc *clock, const char *bucket, uint32_t shard,
                             uint64_t token, const md_guard *guard, const md_object *rec,
                             int *applied)
{
    *applied = 0;
    cm_err e = clock_take(clock, rec);
    return e == CM_OK ? merge(md, bucket, shard, token, guard, rec, applied) : e;
}

typedef struct {
    md_op op; /* first: fin gets it back */
    merge_op m;
    md_rec_done_fn done;
    void *arg;
} merge_async;

static void merge_async_fin(md_op *op)
{
    merge_async *a = (merge_async *)op;
    md_rec_done_fn done = a->done;
    void *arg = a->arg;
    int applied = op->err == CM_OK && a->m.applied;
    cm_err e = op->err;
    md_w_free(&a->m.w);
    free(a);
    done(arg, e, applied);
}

cm_err md_rec_receive_async(md_store *md, md_hlc *clock, const char *bucket, uint32_t shard,
                            uint64_t token, const md_guard *guard, const md_object *rec,
                            md_rec_done_fn done, void *arg)
{
    if (clock_take(clock, rec) != CM_OK)
        return CM_ERR_INVAL;
    merge_async *a = calloc(1, sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    a->m = (merge_op){.bucket = bucket, .rec = rec, .shard = shard, .fence = token};
    if (guard)
        a->m.guard = *guard;
    a->done = done;
    a->arg = arg;
    a->op.apply = merge_apply;
    a->op.arg = &a->m;
    a->op.fin = merge_async_fin;
    cm_err e = CM_ERR_INVAL;
    if (rec->key && *rec->key && md_key_object(bucket, rec->key, a->m.k, &a->m.kl) == CM_OK)
        e = md_object_encode_stored(rec, &a->m.w);
    if (e == CM_OK)
        e = md_write_async(md, &a->op);
    if (e != CM_OK) {
        md_w_free(&a->m.w);
        free(a);
    }
    return e;
}

cm_err md_rec_receive(md_store *md, md_hlc *clock, const char *bucket, const md_object *rec,
                      const char *hint_for, int *applied)
{
    *applied = 0;
    if (clock_take(clock, rec) != CM_OK)
        return CM_ERR_INVAL;
    if (!hint_for)
        return md_rec_merge(md, bucket, rec, applied);
    cm_err e = md_hint_put(md, hint_for, bucket, rec);
    *applied = e == CM_OK;
    return e;
}

/* ---- filtered reads ---- */

static cm_err bucket_known(md_store *md, const char *bucket)
{
    md_bucket b;
    return md_bucket_get(md, bucket, &b);
}

cm_err md_rec_lookup(md_store *md, const char *bucket, const char *key, md_object *out,
                     int *no_bucket)
{
    cm_err e = md_rec_get(md, bucket, key, out);
    *no_bucket = e == CM_ERR_NOTFOUND && bucket_known(md, bucket) == CM_ERR_NOTFOUND;
    return e;
}

cm_err md_merkle_leaves(md_store *md, const char *bucket, int depth, md_key_filter filter,
                        void *farg, uint8_t **hashes, size_t *n)
{
    md_merkle *t;
    *hashes = NULL, *n = 0;
    cm_err e = md_barrier(md); /* ordered after every queued write (md.h) */
    if (e == CM_OK)
        e = bucket_known(md, bucket);
    if (e == CM_OK)
        e = md_merkle_build_ex(md, bucket, depth, filter, farg, &t);
    if (e != CM_OK)
        return e;
    size_t width = (size_t)1 << (4 * depth);
    if (!(*hashes = malloc(width * 16))) {
        md_merkle_free(t);
        return CM_ERR_NOMEM;
    }
    for (size_t i = 0; i < width; i++)
        memcpy(*hashes + 16 * i, md_merkle_node(t, depth, i), 16);
    *n = width;
    md_merkle_free(t);
    return CM_OK;
}

typedef struct {
    const char *prefix;
    size_t plen, max, n, cap;
    md_key_filter filter;
    void *farg;
    md_object *a;
    int truncated;
} scan_ctx;

/* The walk's key filter: the caller's, but a key past the prefix is kept so that scan_one sees it
 * and ends the walk (else a walk would go on over every later key of other partitions). */
static int scan_keep(void *arg, const uint8_t *key, size_t klen)
{
    const scan_ctx *c = arg;
    if (klen < c->plen || memcmp(key, c->prefix, c->plen) != 0)
        return 1;
    return !c->filter || c->filter(c->farg, key, klen);
}

static cm_err scan_one(void *arg, const uint8_t *key, size_t klen, const md_object *o, int *stop)
{
    scan_ctx *c = arg;
    if (klen < c->plen || memcmp(key, c->prefix, c->plen) != 0) {
        *stop = 1; /* keys sort: past the prefix's range */
        return CM_OK;
    }
    if (c->n == c->max) {
        c->truncated = 1;
        *stop = 1;
        return CM_OK;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        md_object *p = realloc(c->a, nc * sizeof(*p));
        if (!p)
            return CM_ERR_NOMEM;
        c->a = p, c->cap = nc;
    }
    cm_err e = md_object_copy(o, &c->a[c->n]);
    if (e == CM_OK)
        c->n++;
    return e;
}

cm_err md_rec_scan(md_store *md, const char *bucket, const char *prefix, const char *after,
                   md_key_filter filter, void *farg, size_t max, md_object **out, size_t *n,
                   int *truncated)
{
    scan_ctx c = {.prefix = prefix ? prefix : "", .max = max, .filter = filter, .farg = farg};
    c.plen = strlen(c.prefix);
    *out = NULL, *n = 0, *truncated = 0;
    cm_err e = bucket_known(md, bucket);
    if (e != CM_OK)
        return e;
    /* start at the later of after (exclusive) and the prefix (inclusive) */
    int from_after = after && strcmp(after, c.prefix) >= 0;
    e = md_rec_walk_from(md, bucket, from_after ? after : c.prefix, !from_after, scan_keep, &c,
                         scan_one, &c);
    if (e != CM_OK) {
        md_objects_free(c.a, c.n);
        return e;
    }
    *out = c.a, *n = c.n, *truncated = c.truncated;
    return CM_OK;
}

void md_objects_free(md_object *objs, size_t n)
{
    for (size_t i = 0; objs && i < n; i++)
        md_object_release(&objs[i]);
    free(objs);
}

/* ---- hints ---- */

/* target \0 bucket \0 key (key may be "" for the start of a range). */
static cm_err hint_key(const char *target, const char *bucket, const char *key, uint8_t *buf,
                       size_t *len)
{
    size_t tl = strlen(target);
    if (tl == 0 || tl > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    memcpy(buf, target, tl);
    buf[tl] = 0;
    *len = tl + 1;
    if (!bucket)
        return CM_OK;
    size_t kl;
    cm_err e = md_key_object(bucket, key, buf + tl + 1, &kl);
    *len += kl;
    return e;
}

typedef struct {
    const md_object *rec;
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_wbuf w;
    int dropped;
} hint_op;

static cm_err hint_read(MDB_txn *txn, md_store *md, const hint_op *op, int mode, md_object *cur,
                        int *found)
{
    md_slice v;
    cm_err e = md_kv_get(txn, md->hints, op->k, op->kl, &v);
    *found = 0;
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e == CM_OK)
        e = md_object_decode_ex(v.p, v.n, mode, cur);
    *found = e == CM_OK;
    return e;
}

static cm_err hint_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    hint_op *op = arg;
    md_object cur;
    int found;
    cm_err e = hint_read(txn, md, op, MD_DECODE_SUMMARY, &cur, &found);
    if (e != CM_OK)
        return e;
    int keep = found && md_object_resolve(&cur, op->rec, NULL) == 0;
    if (found)
        md_object_release(&cur);
    if (keep) {
        *wrote = 0; /* the stored hint is newer */
        return CM_OK;
    }
    uint64_t max = atomic_load_explicit(&md->hints_max, memory_order_relaxed);
    MDB_stat st;
    if (!found && max && mdb_stat(txn, md->hints, &st) == 0 && st.ms_entries >= max) {
        atomic_fetch_add_explicit(&md->hints_refused, 1, memory_order_relaxed);
        *wrote = 0;
        return CM_ERR_UNAVAILABLE; /* full: the coordinator tries the next stand-in */
    }
    return md_kv_put(txn, md->hints, op->k, op->kl, op->w.p, op->w.len);
}

cm_err md_hint_put(md_store *md, const char *target, const char *bucket, const md_object *rec)
{
    hint_op op = {.rec = rec};
    if (!rec->key || !*rec->key || hint_key(target, bucket, rec->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_object_encode_w(rec, &op.w);
    if (e == CM_OK)
        e = md_write(md, hint_put_apply, &op);
    md_w_free(&op.w);
    return e;
}

static cm_err hint_drop_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    hint_op *op = arg;
    md_object cur;
    int found;
    cm_err e = hint_read(txn, md, op, MD_DECODE_SUMMARY, &cur, &found);
    op->dropped = 0;
    if (e != CM_OK || !found) {
        *wrote = 0;
        return e;
    }
    op->dropped = same_version(&cur, op->rec);
    md_object_release(&cur);
    if (!op->dropped) {
        *wrote = 0; /* superseded by a newer hint: it stays */
        return CM_OK;
    }
    return md_kv_del(txn, md->hints, op->k, op->kl);
}

cm_err md_hint_drop(md_store *md, const char *target, const char *bucket, const md_object *rec,
                    int *dropped)
{
    hint_op op = {.rec = rec};
    if (dropped)
        *dropped = 0;
    if (!rec->key || hint_key(target, bucket, rec->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_write(md, hint_drop_apply, &op);
    if (dropped)
        *dropped = e == CM_OK && op.dropped;
    return e;
}

/* Split a hint's full key after target \0 into bucket and key. */
static cm_err hint_split(const uint8_t *p, size_t n, md_hint *h)
{
    const uint8_t *z = memchr(p, 0, n);
    if (!z || z == p)
        return MD_CORRUPT("hint key without a bucket");
    size_t bl = (size_t)(z - p); /* the key is the record's own */
    if (!(h->bucket = malloc(bl + 1)))
        return CM_ERR_NOMEM;
    memcpy(h->bucket, p, bl);
    h->bucket[bl] = 0;
    return CM_OK;
}

cm_err md_hint_list(md_store *md, const char *target, const char *after_bucket,
                    const char *after_key, size_t max, md_hint **out, size_t *n, int *truncated)
{
    uint8_t k[MD_KEYBUF];
    size_t kl, tl;
    MDB_txn *txn;
    md_kv_iter it;
    *out = NULL, *n = 0, *truncated = 0;
    if (hint_key(target, NULL, NULL, k, &tl) != CM_OK)
        return CM_ERR_INVAL;
    kl = tl;
    if (after_bucket && hint_key(target, after_bucket, after_key ? after_key : "", k, &kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->hints, &it)) != CM_OK) {
        md_txn_end(md, txn);
        return e;
    }
    md_hint *a = NULL;
    size_t cnt = 0;
    for (e = md_kv_iter_seek(&it, k, kl); e == CM_OK; e = md_kv_iter_next(&it)) {
        if (it.key.n < tl || memcmp(it.key.p, k, tl) != 0)
            break; /* past the target */
        if (after_bucket && it.key.n == kl && memcmp(it.key.p, k, kl) == 0)
            continue; /* exclusive */
        if (cnt == max) {
            *truncated = 1;
            break;
        }
        md_hint *p = realloc(a, (cnt + 1) * sizeof(*p));
        if (!p) {
            e = CM_ERR_NOMEM;
            break;
        }
        a = p;
        memset(&a[cnt], 0, sizeof(a[cnt]));
        cnt++; /* counted now so a failure below frees what is set */
        if ((e = hint_split(it.key.p + tl, it.key.n - tl, &a[cnt - 1])) != CM_OK ||
            (e = md_object_decode(it.val.p, it.val.n, &a[cnt - 1].rec)) != CM_OK)
            break;
    }
    md_kv_iter_close(&it);
    md_txn_end(md, txn);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (e != CM_OK) {
        md_hints_free(a, cnt);
        *truncated = 0;
        return e;
    }
    *out = a, *n = cnt;
    return CM_OK;
}

void md_hints_free(md_hint *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].bucket);
        md_object_release(&h[i].rec);
    }
    free(h);
}

cm_err md_hint_targets(md_store *md, char ***targets, size_t *n)
{
    MDB_txn *txn;
    md_kv_iter it;
    uint8_t k[MD_BUCKET_MAX + 2] = {1}; /* level 0 keys start at 0x01 (md_kv.c) */
    size_t kl = 1;
    *targets = NULL, *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->hints, &it)) == CM_OK) {
        /* one seek per target: past target \0 is target \1 */
        while ((e = md_kv_iter_seek(&it, k, kl)) == CM_OK) {
            const uint8_t *z = memchr(it.key.p, 0, it.key.n);
            size_t tl = z ? (size_t)(z - it.key.p) : 0;
            if (tl == 0 || tl > MD_BUCKET_MAX) {
                e = MD_CORRUPT("hint key without a target");
                break;
            }
            char **p = realloc(*targets, (*n + 1) * sizeof(*p));
            if (!p || !(p[*n] = malloc(tl + 1))) {
                if (p)
                    *targets = p;
                e = CM_ERR_NOMEM;
                break;
            }
            *targets = p;
            memcpy(p[*n], it.key.p, tl);
            p[(*n)++][tl] = 0;
            memcpy(k, it.key.p, tl);
            k[tl] = 1;
            kl = tl + 1;
        }
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (e != CM_OK) {
        md_keys_free(*targets, *n);
        *targets = NULL, *n = 0;
    }
    return e;
}

cm_err md_hint_count(md_store *md, uint64_t *n)
{
    MDB_txn *txn;
    md_kv_iter it;
    uint8_t start = 1; /* level 0 keys start at 0x01 (md_kv.c) */
    *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->hints, &it)) == CM_OK) {
        for (e = md_kv_iter_seek(&it, &start, 1); e == CM_OK; e = md_kv_iter_next(&it))
            (*n)++;
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

void md_hint_set_max(md_store *md, uint64_t max)
{
    atomic_store_explicit(&md->hints_max, max, memory_order_relaxed);
}

uint64_t md_hint_refused(md_store *md)
{
    return atomic_load_explicit(&md->hints_refused, memory_order_relaxed);
}

/* ---- digest entries on the wire ---- */

size_t md_rec_info_encode(const md_rec_info *ri, uint8_t *buf)
{
    size_t kl = strlen(ri->key);
    uint8_t *p = buf;
    p[0] = (uint8_t)(kl >> 8), p[1] = (uint8_t)kl;
    memcpy(p + 2, ri->key, kl);
    p += 2 + kl;
    cm_put_be64(p, ri->generation);
    cm_put_be64(p + 8, ri->hlc);
    cm_put_be32(p + 16, ri->hlc_node);
    p[20] = ri->tombstone;
    memcpy(p + 21, ri->digest, 16);
    return (size_t)(p + 37 - buf);
}

cm_err md_rec_info_decode(const uint8_t *buf, size_t len, size_t *used, md_rec_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 2)
        return MD_CORRUPT("short digest entry");
    size_t kl = ((size_t)buf[0] << 8) | buf[1];
    if (kl == 0 || kl > MD_MAX_KEY || len < 2 + kl + 37 || memchr(buf + 2, 0, kl))
        return MD_CORRUPT("bad digest entry");
    if (!(out->key = malloc(kl + 1)))
        return CM_ERR_NOMEM;
    memcpy(out->key, buf + 2, kl);
    out->key[kl] = 0;
    const uint8_t *p = buf + 2 + kl;
    out->generation = cm_get_be64(p);
    out->hlc = cm_get_be64(p + 8);
    out->hlc_node = cm_get_be32(p + 16);
    out->tombstone = p[20];
    memcpy(out->digest, p + 21, 16);
    *used = 2 + kl + 37;
    return CM_OK;
}
