/*
 * md_fence.c - the fencing tokens of conditional writes (md.h, md_fence_admit; docs/
 * replication.md, "Conditional writes").
 *
 * A partition's leader stamps its writes with its token (the etcd create revision of its leader
 * key, larger for every new leader); the store keeps the highest token seen per partition and
 * refuses lower ones. The highest tokens are durable, so a replica that restarts still refuses a
 * replaced leader: database "fences", key bucket \0 shard(BE32), value the token (BE64). A token
 * is written in the transaction of the fenced write or barrier that raised it, and only when it
 * is higher than the stored one: a fenced write's row shares its sync, a barrier syncs only for a
 * new leader's first read here, and a leader's later reads and writes write no row.
 *
 * In memory, a chained hash of MD_FENCE_SLOTS lists (one entry per partition used since open,
 * under one mutex) holds the bar: filled lazily from the database on a partition's first use
 * after open, raised by every admission. It may run ahead of the database (an admission whose
 * transaction was rolled back, e.g. a flat batch run again nested, md_commit.c): refusing below it
 * is still right, since a token that was presented belongs to a leader at least that recent. So
 * the decision to write looks at the stored token (read in the transaction, which sees the batch's
 * earlier ops), never at the memory. Deleting a bucket drops its entries from both
 * (md_fence_drop_txn, in the bucket's delete transaction).
 *
 * Order: a fenced write admits its token inside its write transaction (md_rec_receive_fenced),
 * and a leader's read first runs md_fence_barrier, an op of the same group commit that only
 * admits. The store's write order thus puts every fenced write either before the barrier
 * (committed by the time the read looks) or after it (checked against the raised token).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

struct md_fence {
    struct md_fence *next;
    uint32_t shard;
    uint64_t token;
    char bucket[]; /* NUL-terminated */
};

static uint32_t slot_of(const char *bucket, uint32_t shard)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)bucket; *s; s++)
        h = (h ^ *s) * 16777619u;
    h = (h ^ shard) * 16777619u;
    return h % MD_FENCE_SLOTS;
}

/* The database key of (bucket, shard); CM_ERR_INVAL for a bucket name out of bounds. */
static cm_err fence_key(const char *bucket, uint32_t shard, uint8_t *k, size_t *kl)
{
    size_t bl = strlen(bucket);
    if (bl == 0 || bl > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    memcpy(k, bucket, bl);
    k[bl] = 0;
    cm_put_be32(k + bl + 1, shard);
    *kl = bl + 5;
    return CM_OK;
}

/* The token stored for key k (0: none). */
static cm_err fence_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t kl, uint64_t *token)
{
    MDB_val kv = {kl, (void *)k}, v;
    int rc = mdb_get(txn, md->fences, &kv, &v);
    *token = 0;
    if (rc == MDB_NOTFOUND)
        return CM_OK;
    if (rc)
        return md_mdb_err(rc, "get fence");
    if (v.mv_size != 8)
        return MD_CORRUPT("fence token length");
    *token = cm_get_be64(v.mv_data);
    return CM_OK;
}

/* The memory entry of (bucket, shard), loaded from the database when missing. fence_mu held. */
static cm_err fence_entry(md_store *md, MDB_txn *txn, const char *bucket, uint32_t shard,
                          const uint8_t *k, size_t kl, struct md_fence **out)
{
    uint32_t i = slot_of(bucket, shard);
    struct md_fence *f = md->fence[i];
    while (f && (f->shard != shard || strcmp(f->bucket, bucket) != 0))
        f = f->next;
    if (!f) {
        uint64_t stored;
        cm_err e = fence_read(txn, md, k, kl, &stored);
        if (e != CM_OK)
            return e;
        size_t bl = strlen(bucket);
        if (!(f = malloc(sizeof(*f) + bl + 1)))
            return CM_ERR_NOMEM;
        memcpy(f->bucket, bucket, bl + 1);
        f->shard = shard;
        f->token = stored;
        f->next = md->fence[i];
        md->fence[i] = f;
    }
    *out = f;
    return CM_OK;
}

cm_err md_fence_admit_txn(md_store *md, MDB_txn *txn, const char *bucket, uint32_t shard,
                          uint64_t token, int *wrote)
{
    uint8_t k[MD_BUCKET_MAX + 5];
    size_t kl;
    uint64_t stored = 0;
    struct md_fence *f;
    *wrote = 0;
    if (token == 0)
        return CM_OK;
    cm_err e = fence_key(bucket, shard, k, &kl);
    if (e != CM_OK)
        return e;
    pthread_mutex_lock(&md->fence_mu);
    e = fence_entry(md, txn, bucket, shard, k, kl, &f);
    if (e == CM_OK && token < f->token)
        e = CM_ERR_CONFLICT;
    if (e == CM_OK)
        e = fence_read(txn, md, k, kl, &stored);
    if (e == CM_OK && token > stored) {
        uint8_t b[8];
        cm_put_be64(b, token);
        MDB_val kv = {kl, k}, v = {sizeof(b), b};
        int rc = md_db_put(txn, md->fences, &kv, &v, 0);
        e = rc ? md_mdb_err(rc, "put fence") : CM_OK;
        *wrote = e == CM_OK;
    }
    if (e == CM_OK)
        f->token = token; /* not lower: checked above */
    pthread_mutex_unlock(&md->fence_mu);
    return e;
}

cm_err md_fence_drop_txn(md_store *md, MDB_txn *txn, const char *bucket)
{
    size_t bl = strlen(bucket);
    MDB_cursor *cur;
    MDB_val k = {bl + 1, (void *)bucket}, v; /* bucket \0: the bucket's entries follow */
    int rc = mdb_cursor_open(txn, md->fences, &cur);
    if (rc)
        return md_mdb_err(rc, "open fences");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != bl + 5 || memcmp(p, bucket, bl) != 0 || p[bl] != 0)
            break; /* past the bucket's entries */
        if ((rc = md_db_cursor_del(cur, md->fences)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return md_mdb_err(rc, "drop fences");
    /* Memory too; should the transaction roll back, the entries load again from the database. */
    pthread_mutex_lock(&md->fence_mu);
    for (int i = 0; i < MD_FENCE_SLOTS; i++)
        for (struct md_fence **pp = &md->fence[i]; *pp;) {
            struct md_fence *f = *pp;
            if (strcmp(f->bucket, bucket) == 0) {
                *pp = f->next;
                free(f);
            } else {
                pp = &f->next;
            }
        }
    pthread_mutex_unlock(&md->fence_mu);
    return CM_OK;
}

typedef struct {
    const char *bucket;
    uint32_t shard;
    uint64_t token;
} barrier_op;

static cm_err barrier_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    barrier_op *op = arg;
    /* writes only a raised token; otherwise its place in the write order is the point */
    return md_fence_admit_txn(md, txn, op->bucket, op->shard, op->token, wrote);
}

cm_err md_fence_admit(md_store *md, const char *bucket, uint32_t shard, uint64_t token)
{
    barrier_op op = {bucket, shard, token};
    return token == 0 ? CM_OK : md_write(md, barrier_apply, &op);
}

cm_err md_fence_barrier(md_store *md, const char *bucket, uint32_t shard, uint64_t token)
{
    return md_fence_admit(md, bucket, shard, token);
}

void md_fence_release(md_store *md)
{
    for (int i = 0; i < MD_FENCE_SLOTS; i++)
        while (md->fence[i]) {
            struct md_fence *f = md->fence[i];
            md->fence[i] = f->next;
            free(f);
        }
    pthread_mutex_destroy(&md->fence_mu);
}
