/*
 * md_fence.c - the fencing tokens of conditional writes (md.h, md_fence_admit; docs/
 * replication.md, "Conditional writes").
 *
 * A partition's leader stamps its writes with its token (the etcd create revision of its leader
 * key, larger for every new leader); the store keeps the highest token seen per partition and
 * refuses lower ones. The table is a chained hash of MD_FENCE_SLOTS lists, one entry per partition
 * that ever received a fenced write, under one mutex (a check is a few compares). It lives in
 * memory only: after a restart the first token seen sets the bar again, which still refuses an
 * old leader once its successor wrote here (see docs for what that leaves open).
 *
 * Order: a fenced write admits its token inside its write transaction (md_rec_receive_fenced),
 * and a leader's read first runs md_fence_barrier, an op of the same group commit that only
 * admits. The store's write order thus puts every fenced write either before the barrier
 * (committed by the time the read looks) or after it (checked against the raised token).
 */
#include <stdlib.h>
#include <string.h>

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

cm_err md_fence_admit(md_store *md, const char *bucket, uint32_t shard, uint64_t token)
{
    if (token == 0)
        return CM_OK;
    uint32_t i = slot_of(bucket, shard);
    cm_err e = CM_OK;
    pthread_mutex_lock(&md->fence_mu);
    struct md_fence *f = md->fence[i];
    while (f && (f->shard != shard || strcmp(f->bucket, bucket) != 0))
        f = f->next;
    if (!f) {
        size_t bl = strlen(bucket);
        f = malloc(sizeof(*f) + bl + 1);
        if (f) {
            memcpy(f->bucket, bucket, bl + 1);
            f->shard = shard;
            f->token = token;
            f->next = md->fence[i];
            md->fence[i] = f;
        } else {
            e = CM_ERR_NOMEM;
        }
    } else if (token < f->token) {
        e = CM_ERR_CONFLICT;
    } else {
        f->token = token;
    }
    pthread_mutex_unlock(&md->fence_mu);
    return e;
}

typedef struct {
    const char *bucket;
    uint32_t shard;
    uint64_t token;
} barrier_op;

static cm_err barrier_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    barrier_op *op = arg;
    (void)txn;
    *wrote = 0; /* nothing to commit: its place in the write order is the point */
    return md_fence_admit(md, op->bucket, op->shard, op->token);
}

cm_err md_fence_barrier(md_store *md, const char *bucket, uint32_t shard, uint64_t token)
{
    barrier_op op = {bucket, shard, token};
    return token == 0 ? CM_OK : md_write(md, barrier_apply, &op);
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
