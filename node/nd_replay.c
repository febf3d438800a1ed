/*
 * nd_replay.c - the node's memory of recent chunk DELETEs and conditional writes by nonce, so that
 * such a call sent again with the same signature (an attacker's replay of captured traffic, or the
 * client's own retry after a lost connection) gets the first run's answer instead of running
 * again (docs/rpc.md, "Authentication": a chunk id is reused when a heal writes a cell back to a
 * drive it was deleted from, so a replayed DELETE would delete the rebuilt cell; a replayed
 * If-None-Match create would bring back an object deleted since).
 *
 * An entry lives until its call's date plus the allowed skew: after that the signature is refused
 * anyway (nd_auth.c). Entries sit in a ring in arrival order (about date order), indexed by a
 * chained hash of the nonce. At capacity the oldest entry goes first even if it has not expired:
 * a replay of that call would then run again, as before this cache existed; the eviction is
 * counted (nd_service_stats.replay_evicted) so that an operator sees the window is not covered.
 * Memory: ND_REPLAY_CAP entries of 40 bytes and a bucket array, allocated once. A call that ended
 * before it ran (a conditional write whose body was refused) stays "running" until it expires.
 *
 * Thread-safe (one mutex): the service's loops all call it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "nd_int.h"

#define NONE UINT32_MAX

typedef struct {
    uint8_t nonce[16];
    int64_t expire_s;
    uint32_t next; /* the bucket's chain */
    int done;      /* 0: running (no answer yet) */
    cm_err err;
} rp_ent;

struct nd_replay {
    pthread_mutex_t mu;
    uint32_t cap, nbuckets;
    uint32_t head, n; /* the ring: oldest entry, entries */
    rp_ent *ring;
    uint32_t *bucket;
    uint64_t evicted;
};

static uint32_t bucket_of(const nd_replay *r, const uint8_t nonce[16])
{
    uint64_t h;
    memcpy(&h, nonce + 8, sizeof(h)); /* the client's counter half: spreads well */
    h ^= cm_get_be64(nonce);
    h *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) % r->nbuckets;
}

cm_err nd_replay_new(uint32_t cap, nd_replay **out)
{
    nd_replay *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r || cap == 0)
        goto fail;
    r->cap = cap;
    r->nbuckets = cap;
    r->ring = calloc(cap, sizeof(*r->ring));
    r->bucket = malloc((size_t)cap * sizeof(*r->bucket));
    if (!r->ring || !r->bucket)
        goto fail;
    for (uint32_t i = 0; i < cap; i++)
        r->bucket[i] = NONE;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return CM_OK;
fail:
    if (r) {
        free(r->ring);
        free(r->bucket);
    }
    free(r);
    return cap == 0 ? CM_ERR_INVAL : CM_ERR_NOMEM;
}

void nd_replay_free(nd_replay *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->ring);
    free(r->bucket);
    free(r);
}

/* The oldest entry leaves the ring and its bucket's chain. */
static void drop_oldest(nd_replay *r)
{
    uint32_t i = r->head;
    uint32_t *at = &r->bucket[bucket_of(r, r->ring[i].nonce)];
    while (*at != NONE && *at != i)
        at = &r->ring[*at].next;
    if (*at == i)
        *at = r->ring[i].next;
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

static rp_ent *find(nd_replay *r, const uint8_t nonce[16])
{
    for (uint32_t i = r->bucket[bucket_of(r, nonce)]; i != NONE; i = r->ring[i].next)
        if (memcmp(r->ring[i].nonce, nonce, 16) == 0)
            return &r->ring[i];
    return NULL;
}

int nd_replay_begin(nd_replay *r, const uint8_t nonce[16], int64_t expire_s, int64_t now_s,
                    cm_err *err)
{
    pthread_mutex_lock(&r->mu);
    while (r->n > 0 && r->ring[r->head].expire_s < now_s)
        drop_oldest(r);
    rp_ent *e = find(r, nonce);
    int state = e ? (e->done ? ND_REPLAY_DONE : ND_REPLAY_RUNNING) : ND_REPLAY_NEW;
    if (e && e->done)
        *err = e->err;
    if (!e) {
        if (r->n == r->cap) {
            drop_oldest(r);
            r->evicted++;
        }
        uint32_t i = (r->head + r->n) % r->cap, b = bucket_of(r, nonce);
        r->ring[i] = (rp_ent){.expire_s = expire_s, .next = r->bucket[b]};
        memcpy(r->ring[i].nonce, nonce, 16);
        r->bucket[b] = i;
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    return state;
}

void nd_replay_end(nd_replay *r, const uint8_t nonce[16], cm_err err)
{
    pthread_mutex_lock(&r->mu);
    rp_ent *e = find(r, nonce); /* gone when evicted meanwhile: nothing to remember */
    if (e) {
        e->done = 1;
        e->err = err;
    }
    pthread_mutex_unlock(&r->mu);
}

uint64_t nd_replay_evicted(nd_replay *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->evicted;
    pthread_mutex_unlock(&r->mu);
    return n;
}
