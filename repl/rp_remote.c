/*
 * rp_remote.c - the remote replica backend: another node's md_store over the node RPC
 * (nd_meta_* in node/nd_client.c, served by node/nd_meta.c; rp_replica.h).
 *
 * A call encodes what it sends (md_object_encode for a put), starts the nd_client call on the
 * caller's loop, and decodes the answer in its completion: a record, length-prefixed records, the
 * leaf hashes, digest entries (leaf keys, tombstones) or a tombstone drop's flags. A body that does
 * not decode ends the call CM_ERR_CORRUPT. The client never completes inside the call that started
 * it (a refusing fault too ends from the loop), which gives the backend's contract for free.
 * Transport errors pass through: CM_ERR_UNAVAILABLE (refused, unreachable), CM_ERR_TIMEOUT,
 * CM_ERR_CLOSED. Every call carries the peer's epoch (nd_peer.epoch: the layout epoch of the
 * router that made the backend; 0 for none), and a node whose fence is above it answers
 * CM_ERR_STALE (docs/replication.md, "Layout changes: the handoff").
 *
 * Batched calls: a put that is a plain merge (no hint, no fence) and a get without a fence are
 * queued on the backend (merges and reads apart) and the backend's flush event activated; it runs
 * once the callbacks already due in this loop turn have run, and sends what was queued as one
 * nd_meta_put_batch / nd_meta_get_batch (one alone: nd_meta_put / nd_meta_get), framed and its
 * answer split by node/nd_batch.c (an answer of reads that is not exactly one per key fails every
 * key of the batch CM_ERR_CORRUPT). A batch holds one
 * bucket's records or keys, at most ND_META_BATCH_MAX (merges also at most RR_BATCH_BYTES); one
 * that does not fit starts the next. Each still gets its own rp_done with its own outcome (a read
 * its record, handed over), never inside the call that queued it. A node without the routes
 * (older version) answers CM_ERR_NOTFOUND without no_bucket: the batch is sent again one by one,
 * and so is every later call of this backend (no_batch); a batch refused whole as malformed or
 * too large is sent one by one too. Threading: the backend's calls and the flush run on the
 * client's loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cm_log.h"
#include "cm_util.h"
#include "rp_replica.h"

#define MOD "repl"

#define RR_BATCH_BYTES (1024 * 1024) /* a batch's body; a larger record goes alone */

typedef struct {
    uint8_t *buf; /* the encoded record */
    size_t len;
    rp_done done;
    void *arg;
} rr_pending;

typedef struct {
    rp_replica base;
    nd_client *cl;
    char id[ND_NODE_ID_MAX], host[PL_ADDR_MAX];
    nd_peer peer;
    /* merges queued in this loop turn, all of bucket, sent together by flush (batch_send) */
    struct event *flush;
    char bucket[MD_BUCKET_MAX + 1];
    rr_pending pend[ND_META_BATCH_MAX];
    size_t npend, pend_bytes;
    int no_batch; /* the node predates the batch routes: merges and reads go one by one */
    /* reads queued in this loop turn (no fence), all of gbucket; buf holds the key (a string) */
    char gbucket[MD_BUCKET_MAX + 1];
    rr_pending gpend[ND_META_BATCH_MAX];
    size_t ngpend;
} rr_backend;

static void batch_send(rr_backend *b, int reads);

enum { R_GET, R_PUT, R_LIST, R_MERKLE, R_LEAVES, R_TOMBS, R_TDROP };

typedef struct {
    int op;
    size_t nleaves; /* merkle: leaves expected; tomb_drop: entries sent */
    rp_done done;
    void *arg;
} rr_call;

static cm_err decode_list(const nd_result *nr, md_object **out, size_t *n)
{
    size_t cnt = 0, off = 0;
    while (off + 4 <= nr->body_len) { /* count first: one allocation */
        off += 4 + cm_get_be32(nr->body + off);
        cnt++;
    }
    if (off != nr->body_len)
        return CM_ERR_CORRUPT;
    md_object *a = calloc(cnt ? cnt : 1, sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    cm_err e = CM_OK;
    off = 0;
    for (*n = 0; e == CM_OK && *n < cnt; (*n)++) {
        size_t len = cm_get_be32(nr->body + off);
        e = md_object_decode(nr->body + off + 4, len, &a[*n]);
        off += 4 + len;
    }
    if (e != CM_OK) {
        md_objects_free(a, *n);
        *n = 0;
        return e;
    }
    *out = a;
    return CM_OK;
}

static cm_err decode_infos(const nd_result *nr, md_rec_info **out, size_t *n)
{
    md_rec_info *a = NULL;
    size_t cap = 0, off = 0, used;
    cm_err e = CM_OK;
    *n = 0;
    while (e == CM_OK && off < nr->body_len) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            md_rec_info *p = realloc(a, nc * sizeof(*p));
            if (!p) {
                e = CM_ERR_NOMEM;
                break;
            }
            a = p, cap = nc;
        }
        if ((e = md_rec_info_decode(nr->body + off, nr->body_len - off, &used, &a[*n])) == CM_OK)
            (*n)++, off += used;
    }
    if (e != CM_OK) {
        md_rec_infos_free(a, *n);
        *n = 0;
        return e;
    }
    *out = a;
    return CM_OK;
}

static void rr_finish(void *arg, const nd_result *nr)
{
    rr_call *c = arg;
    rp_result res;
    md_object rec, *recs = NULL;
    md_rec_info *infos = NULL;
    size_t nrecs = 0, ninfos = 0;
    int have_rec = 0;
    memset(&res, 0, sizeof(res));
    res.err = nr->err;
    if (res.err == CM_ERR_STALE) /* this node's layout is behind: its watch brings the new one */
        CM_DEBUG(MOD, "a replica refused a call: %s", nr->message ? nr->message : "");
    res.no_bucket = nr->no_bucket;
    res.message = nr->message;
    if (res.err == CM_OK) {
        switch (c->op) {
        case R_GET:
            res.err = md_object_decode(nr->body, nr->body_len, &rec);
            have_rec = res.err == CM_OK;
            res.rec = res.take = have_rec ? &rec : NULL; /* released after the call */
            break;
        case R_PUT:
            res.applied = nr->applied;
            break;
        case R_LIST:
            res.err = decode_list(nr, &recs, &nrecs);
            res.recs = recs, res.nrecs = nrecs, res.truncated = nr->more;
            break;
        case R_MERKLE:
            res.err = nr->body_len == 16 * c->nleaves ? CM_OK : CM_ERR_CORRUPT;
            res.hashes = nr->body, res.nleaves = c->nleaves;
            break;
        case R_TDROP:
            res.err = nr->body_len == c->nleaves ? CM_OK : CM_ERR_CORRUPT;
            res.dropped = nr->body, res.ndropped = c->nleaves;
            break;
        default: /* leaf keys, tombs */
            res.err = decode_infos(nr, &infos, &ninfos);
            res.infos = infos, res.ninfos = ninfos, res.truncated = nr->more;
            break;
        }
        if (res.err != CM_OK) {
            res.message = "the node's answer does not decode";
            res.rec = res.take = NULL, res.recs = NULL, res.nrecs = 0;
            res.hashes = NULL, res.nleaves = 0;
            res.dropped = NULL, res.ndropped = 0;
        }
    }
    c->done(c->arg, &res);
    if (have_rec)
        md_object_release(&rec);
    md_objects_free(recs, nrecs);
    md_rec_infos_free(infos, ninfos);
    free(c);
}

static rr_call *rr_call_new(int op, rp_done done, void *arg)
{
    rr_call *c = calloc(1, sizeof(*c));
    if (c)
        c->op = op, c->done = done, c->arg = arg;
    return c;
}

/* The nd call's result: free the call when it did not start. */
static cm_err rr_started(rr_call *c, cm_err e)
{
    if (e != CM_OK)
        free(c);
    return e;
}

static cm_err rr_get(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    rr_call *c = rr_call_new(R_GET, done, arg);
    nd_part np = {p->bucket, p->shard, p->nshards};
    if (!c)
        return CM_ERR_NOMEM;
    if (p->fence)
        return rr_started(c, nd_meta_get_fenced(b->cl, &b->peer, &np, p->fence, key, rr_finish, c));
    if (!b->no_batch && b->flush) { /* queued, sent with the others of this loop turn */
        size_t kl = strlen(key);
        char *k = kl > 0 && kl <= MD_MAX_KEY ? strdup(key) : NULL;
        if (k) {
            free(c);
            if (b->ngpend > 0 &&
                (strcmp(b->gbucket, p->bucket) != 0 || b->ngpend == ND_META_BATCH_MAX))
                batch_send(b, 1);
            if (b->ngpend == 0) {
                snprintf(b->gbucket, sizeof(b->gbucket), "%s", p->bucket);
                event_active(b->flush, EV_TIMEOUT, 0);
            }
            b->gpend[b->ngpend++] = (rr_pending){(uint8_t *)k, kl, done, arg};
            return CM_OK;
        }
    }
    return rr_started(c, nd_meta_get(b->cl, &b->peer, p->bucket, key, rr_finish, c));
}

/* One merge by the single route (rr_finish answers it); the buffer stays the caller's. */
static cm_err put_one(rr_backend *b, const char *bucket, const uint8_t *buf, size_t len,
                      rp_done done, void *arg)
{
    rr_call *c = rr_call_new(R_PUT, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    return rr_started(c, nd_meta_put(b->cl, &b->peer, bucket, buf, len, NULL, rr_finish, c));
}

/* One read by the single route (rr_finish answers it). */
static cm_err get_one(rr_backend *b, const char *bucket, const char *key, rp_done done, void *arg)
{
    rr_call *c = rr_call_new(R_GET, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    return rr_started(c, nd_meta_get(b->cl, &b->peer, bucket, key, rr_finish, c));
}

typedef struct {
    rr_backend *b;
    int reads; /* a batch of reads (keys in pend[].buf), not merges */
    char bucket[MD_BUCKET_MAX + 1];
    rr_pending pend[ND_META_BATCH_MAX];
    size_t n;
} rr_batch;

static void reads_finish(rr_batch *t, const nd_result *nr);

static void batch_free(rr_batch *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->pend[i].buf);
    free(t);
}

/* Each record of t ends with e (message why). */
static void batch_fail(rr_batch *t, cm_err e, const char *why)
{
    rp_result res;
    memset(&res, 0, sizeof(res));
    res.err = e;
    res.message = why;
    for (size_t i = 0; i < t->n; i++)
        t->pend[i].done(t->pend[i].arg, &res);
}

static void batch_finish(void *arg, const nd_result *nr)
{
    rr_batch *t = arg;
    rp_result res;
    if (nr->err == CM_ERR_INVAL || nr->err == CM_ERR_TOOBIG ||
        (nr->err == CM_ERR_NOTFOUND && !nr->no_bucket)) {
        /* a node of an older version (no such route), or a batch it refused whole: one by one,
         * each record getting its own answer */
        if (nr->err == CM_ERR_NOTFOUND && !t->b->no_batch) {
            CM_INFO(MOD, "node %s has no batch routes: record calls go one by one", t->b->id);
            t->b->no_batch = 1;
        }
        for (size_t i = 0; i < t->n; i++) {
            cm_err e = t->reads ? get_one(t->b, t->bucket, (const char *)t->pend[i].buf,
                                          t->pend[i].done, t->pend[i].arg)
                                : put_one(t->b, t->bucket, t->pend[i].buf, t->pend[i].len,
                                          t->pend[i].done, t->pend[i].arg);
            if (e != CM_OK) {
                memset(&res, 0, sizeof(res));
                res.err = e;
                t->pend[i].done(t->pend[i].arg, &res);
            }
        }
        batch_free(t);
        return;
    }
    if (t->reads && nr->err == CM_OK) {
        reads_finish(t, nr);
        batch_free(t);
        return;
    }
    if (nr->err != CM_OK || nr->body_len != t->n) {
        batch_fail(t, nr->err != CM_OK ? nr->err : CM_ERR_CORRUPT,
                   nr->err != CM_OK ? nr->message : "the node's answer does not decode");
        batch_free(t);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        uint8_t st = nr->body[i];
        memset(&res, 0, sizeof(res));
        res.applied = st == ND_BATCH_APPLIED;
        res.err = st == ND_BATCH_APPLIED || st == ND_BATCH_KEPT ? CM_OK
                  : st == ND_BATCH_NO_BUCKET                    ? CM_ERR_NOTFOUND
                  : st == ND_BATCH_INVALID                      ? CM_ERR_INVAL
                  : st == ND_BATCH_FAILED                       ? CM_ERR_IO
                  : st == ND_BATCH_STALE                        ? CM_ERR_STALE
                                                                : CM_ERR_CORRUPT;
        res.no_bucket = st == ND_BATCH_NO_BUCKET;
        if (st == ND_BATCH_INVALID)
            res.message = "the record's stamp is too far ahead of the node's clock";
        else if (st == ND_BATCH_STALE)
            res.message = "the node's layout fence rose above this call's epoch";
        else if (res.err != CM_OK && !res.no_bucket)
            res.message = "the node could not store the record";
        t->pend[i].done(t->pend[i].arg, &res);
    }
    batch_free(t);
}

/* A batch of reads answered: each key's status, and its record handed over (rp_result.take). An
 * answer that is not exactly one answer per key (nd_batch_answer) fails every key CM_ERR_CORRUPT:
 * with a byte too many or too few, which answer is whose cannot be told. */
static void reads_finish(rr_batch *t, const nd_result *nr)
{
    nd_batch_item items[ND_META_BATCH_MAX];
    int framed = nd_batch_answer(nr->body, nr->body_len, t->n, items) == CM_OK;
    for (size_t i = 0; i < t->n; i++) {
        rp_result res;
        md_object rec;
        int have = 0;
        memset(&res, 0, sizeof(res));
        uint8_t st = framed ? items[i].st : 0;
        if (st == ND_BATCH_FOUND) {
            res.err = md_object_decode(items[i].p, items[i].len, &rec);
            have = res.err == CM_OK;
            res.rec = res.take = have ? &rec : NULL;
        } else if (st == ND_BATCH_ABSENT || st == ND_BATCH_NO_BUCKET) {
            res.err = CM_ERR_NOTFOUND;
            res.no_bucket = st == ND_BATCH_NO_BUCKET;
        } else if (st == ND_BATCH_FAILED) {
            res.err = CM_ERR_IO;
            res.message = "the node could not read the record";
        } else {
            res.err = CM_ERR_CORRUPT;
        }
        if (res.err == CM_ERR_CORRUPT)
            res.message = "the node's answer does not decode";
        t->pend[i].done(t->pend[i].arg, &res);
        if (have)
            md_object_release(&rec);
    }
}

static void batch_failed_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    batch_fail(arg, CM_ERR_NOMEM, "the batch could not be sent");
    batch_free(arg);
}

/* Send the queued merges: one alone by the single route, more as one batch. Never completes a
 * record inside this call (it may run inside rr_put of another record). */
static void batch_send(rr_backend *b, int reads)
{
    static const struct timeval now = {0, 0};
    rr_pending *pend = reads ? b->gpend : b->pend;
    size_t n = reads ? b->ngpend : b->npend, len = 0;
    if (n == 0)
        return;
    if (reads)
        b->ngpend = 0;
    else
        b->npend = 0, b->pend_bytes = 0;
    rr_batch *t = calloc(1, sizeof(*t));
    uint8_t *body = NULL;
    cm_err e = CM_ERR_NOMEM;
    if (t) {
        t->b = b, t->n = n, t->reads = reads;
        memcpy(t->bucket, reads ? b->gbucket : b->bucket, sizeof(t->bucket));
        memcpy(t->pend, pend, n * sizeof(*t->pend));
        if (n == 1) {
            e = reads ? get_one(b, t->bucket, (const char *)t->pend[0].buf, t->pend[0].done,
                                t->pend[0].arg)
                      : put_one(b, t->bucket, t->pend[0].buf, t->pend[0].len, t->pend[0].done,
                                t->pend[0].arg);
            if (e == CM_OK) {
                batch_free(t);
                return;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                len += ND_BATCH_HDR(reads) + t->pend[i].len;
            if ((body = malloc(len))) {
                size_t off = 0;
                for (size_t i = 0; i < n; i++)
                    off += nd_batch_frame(body + off, reads, t->pend[i].buf, t->pend[i].len);
                e = reads
                        ? nd_meta_get_batch(b->cl, &b->peer, t->bucket, body, len, batch_finish, t)
                        : nd_meta_put_batch(b->cl, &b->peer, t->bucket, body, len, batch_finish, t);
                free(body);
                if (e == CM_OK)
                    return;
            }
        }
        if (event_base_once(nd_client_base(b->cl), -1, EV_TIMEOUT, batch_failed_later, t, &now) ==
            0)
            return;
    }
    /* out of memory even for the deferred failure: end them here rather than never (an op
     * holds a reference per call until its answer, and rp_free waits for every op) */
    rp_result res;
    memset(&res, 0, sizeof(res));
    res.err = CM_ERR_NOMEM;
    res.message = "the batch could not be sent";
    CM_ERROR(MOD, "%zu record writes to node %s could not be sent", n, b->id);
    for (size_t i = 0; i < n; i++) {
        rr_pending *q = t ? &t->pend[i] : &pend[i];
        q->done(q->arg, &res);
        if (!t)
            free(q->buf);
    }
    if (t)
        batch_free(t);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    batch_send(arg, 0);
    batch_send(arg, 1);
}

static cm_err rr_put(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                     rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    uint8_t *buf;
    size_t len;
    cm_err e = md_object_encode(rec, &buf, &len);
    if (e != CM_OK)
        return e;
    if (!hint_for && !p->fence && !b->no_batch && b->flush && len + 4 <= RR_BATCH_BYTES) {
        /* a merge: queued, and sent with the others of this loop turn (flush_cb) */
        if (b->npend > 0 && (strcmp(b->bucket, p->bucket) != 0 || b->npend == ND_META_BATCH_MAX ||
                             b->pend_bytes + len + 4 > RR_BATCH_BYTES))
            batch_send(b, 0);
        if (b->npend == 0) {
            snprintf(b->bucket, sizeof(b->bucket), "%s", p->bucket);
            event_active(b->flush, EV_TIMEOUT, 0);
        }
        b->pend[b->npend++] = (rr_pending){buf, len, done, arg};
        b->pend_bytes += len + 4;
        return CM_OK;
    }
    rr_call *c = rr_call_new(R_PUT, done, arg);
    nd_part np = {p->bucket, p->shard, p->nshards};
    if (!c)
        e = CM_ERR_NOMEM;
    else if (p->fence && !hint_for)
        e = nd_meta_put_fenced(b->cl, &b->peer, &np, p->fence, buf, len, rr_finish, c);
    else
        e = nd_meta_put(b->cl, &b->peer, p->bucket, buf, len, hint_for, rr_finish, c);
    free(buf);
    return c ? rr_started(c, e) : e;
}

static cm_err rr_list(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                      size_t max, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    nd_part np = {p->bucket, p->shard, p->nshards};
    rr_call *c = rr_call_new(R_LIST, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    return rr_started(c, nd_meta_list(b->cl, &b->peer, &np, prefix, after, max, rr_finish, c));
}

static cm_err rr_merkle(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    nd_part np = {p->bucket, p->shard, p->nshards};
    rr_call *c = rr_call_new(R_MERKLE, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    c->nleaves = (size_t)1 << (4 * depth);
    return rr_started(c, nd_meta_merkle(b->cl, &b->peer, &np, depth, rr_finish, c));
}

static cm_err rr_leaf_keys(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                           size_t nleaves, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    nd_part np = {p->bucket, p->shard, p->nshards};
    rr_call *c = rr_call_new(R_LEAVES, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    return rr_started(
        c, nd_meta_leaf_keys(b->cl, &b->peer, &np, depth, leaves, nleaves, rr_finish, c));
}

static cm_err rr_tombs(rp_replica *r, const rp_part *p, uint64_t before, const char *after,
                       size_t max, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    nd_part np = {p->bucket, p->shard, p->nshards};
    rr_call *c = rr_call_new(R_TOMBS, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    return rr_started(c, nd_meta_tombs(b->cl, &b->peer, &np, before, after, max, rr_finish, c));
}

static cm_err rr_tomb_drop(rp_replica *r, const rp_part *p, uint64_t mark, const md_rec_info *infos,
                           size_t n, rp_done done, void *arg)
{
    rr_backend *b = (rr_backend *)r;
    nd_part np = {p->bucket, p->shard, p->nshards};
    rr_call *c = rr_call_new(R_TDROP, done, arg);
    if (!c)
        return CM_ERR_NOMEM;
    c->nleaves = n;
    return rr_started(c, nd_meta_tomb_drop(b->cl, &b->peer, &np, mark, infos, n, rr_finish, c));
}

static void rr_free(rp_replica *r)
{
    rr_backend *b = (rr_backend *)r;
    if (b->flush)
        event_free(b->flush);
    rp_result res;
    memset(&res, 0, sizeof(res));
    res.err = CM_ERR_CLOSED; /* none is left once no op uses the router (rp_set_router) */
    for (size_t i = 0; i < b->npend; i++) {
        b->pend[i].done(b->pend[i].arg, &res);
        free(b->pend[i].buf);
    }
    for (size_t i = 0; i < b->ngpend; i++) {
        b->gpend[i].done(b->gpend[i].arg, &res);
        free(b->gpend[i].buf);
    }
    free(r);
}

static const rp_replica_ops rr_ops = {rr_get,       rr_put,  rr_list,  rr_merkle,
                                      rr_leaf_keys, rr_free, rr_tombs, rr_tomb_drop};

cm_err rp_replica_remote_new(nd_client *cl, const nd_peer *peer, rp_replica **out)
{
    *out = NULL;
    if (!cl || !peer || !nd_node_id_valid(peer->id) || !peer->host ||
        strlen(peer->host) >= PL_ADDR_MAX || peer->port <= 0 || peer->port > 65535)
        return CM_ERR_INVAL;
    rr_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return CM_ERR_NOMEM;
    b->base.ops = &rr_ops;
    b->cl = cl;
    snprintf(b->id, sizeof(b->id), "%s", peer->id);
    snprintf(b->host, sizeof(b->host), "%s", peer->host);
    b->peer.id = b->id, b->peer.host = b->host, b->peer.port = peer->port;
    b->peer.epoch = peer->epoch;
    b->base.node_id = b->id;
    /* the loop's own turn ends before flush runs: the merges queued meanwhile go together */
    b->flush = event_new(nd_client_base(cl), -1, 0, flush_cb, b);
    if (!b->flush) {
        free(b);
        return CM_ERR_NOMEM;
    }
    *out = &b->base;
    return CM_OK;
}
