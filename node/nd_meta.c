/*
 * nd_meta.c - the node RPC's metadata partition routes, served from the node's md_store
 * (docs/rpc.md "Metadata partitions", docs/replication.md).
 *
 * Routes (after ND_PREFIX "/meta/<bucket>"; strings in the query are percent-encoded; each may
 * carry epoch=E, the caller's layout epoch: below the node's fence (nd_service_config.epoch) the
 * call is refused 409 CM_ERR_STALE, above it it raises the fence; a record write is checked
 * again as the commit thread applies it, md_guard, and a Merkle read waits a turn of the commit
 * queue first, so a write admitted before the fence rose is in a later Merkle read or refused):
 *   GET  /rec?key=K                                   the stored record (tombstones included)
 *   GET  /rec?key=K&shard=S&nshards=N&fence=T         ... for a partition leader: T's barrier first
 *   PUT  /rec[?hint=<node>]                           merge the body's record (or keep a hint)
 *   PUT  /rec?shard=S&nshards=N&fence=T               ... of a partition leader: admit T with it
 *   PUT  /recs                                        merge each of the body's records (a batch,
 *        nd_meta_put_batch): one status byte per record once all are durable or failed
 *   POST /recget                                      the stored record of each of the body's keys
 *        (a batch of reads, nd_meta_get_batch)
 *   GET  /list?shard=S&nshards=N[&max=M][&prefix=P][&after=A]   a page of the partition
 *   GET  /merkle?shard=S&nshards=N&depth=D            the partition's leaf hashes
 *   POST /leafkeys?shard=S&nshards=N&depth=D          digest entries of the body's leaves
 *   GET  /tombs?shard=S&nshards=N&before=T[&max=M][&after=A]  the partition's tombstones < T
 *   POST /tombdrop?shard=S&nshards=N&mark=T           raise the mark, drop the body's tombstones
 *   POST /names   (bucket "-": every bucket)          one byte per blob id of the body (16 bytes
 *        each, sorted, at most ND_NAMES_MAX): 1 when a record of the store names it
 *        (md_names_mark; the orphan sweep's mark phase, a full walk of the store)
 * and, after ND_PREFIX "/cond/<bucket>", the conditional write handed to a partition's leader:
 *   POST ?[inm=1][&ifmatch=E][&unlocked=1|2][&ncsucc=MS&ncnewer=N[&nckey=K]][&del=1]   run
 *        the body's record through cfg.cond (unlocked: the record replaced must not be protected
 *        by Object Lock; 2: governance bypassed; ncsucc/ncnewer: md_cond.noncurrent with
 *        successor_ms and newer_min, a version deleted as noncurrent by the lifecycle; nckey:
 *        its noncurrent_key, the version's object key)
 *   POST ?lock=L[&hpart=P&hold=HEX]   the same with a lock change alone (nd_cond_parse): L 1..7
 *        md_cond.lock_change, bits 1 retention, 2 legal hold, 4 governance bypassed, the change
 *        carried in the body's record; 8 MD_COND_LOCK_KEEP, the body's record swapped in with
 *        the lock fields of the version the leader reads; 16 MD_COND_LOCK_LAYOUT, a repair's
 *        layout swap of part P from the cells HEX names (blob, size, k, m, each cell's drive and
 *        node) to the body's record's
 * (its own worker pool: a write waits for its key lock and two quorum round trips).
 * A request body (PUT, POST) needs Content-Length (at most ND_META_MAX) and X-Cairn-Crc32c, which
 * is checked before anything is applied (the signature covers it: a body damaged in flight is
 * refused; one forged on purpose to match the CRC is not, see docs/rpc.md).
 * Answers: 200 with the body (application/octet-stream), X-Cairn-Applied for a put, X-Cairn-More
 * for a list; errors as every route (X-Cairn-Error), plus X-Cairn-No-Bucket: 1 on a 404 for an
 * unknown bucket.
 *
 * Every md call but a record read or write runs on the service's worker pool (nd_sreq's job),
 * which also encodes the answer into an evbuffer; the loop parses, collects the request body and
 * sends, and does a record read (/rec GET, one LMDB lookup; not a leader's, whose barrier waits
 * for the group commit) itself (submit). A record write (/rec PUT, not a hint) is decoded on the
 * loop and queued for the store's commit thread (md_rec_receive_async), which schedules its answer
 * on the loop once the merge is durable or failed (put_start); the request is busy meanwhile. A
 * batch (/recs) queues each record so (batch_start) and the last merge to end, counted down
 * atomically on the commit thread, schedules the one answer.
 * With no pool (sync_threads < 0) every call runs inline on the loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "nd_int.h"

#define MOD "nd"
#define MREQ_JOB(j) ((nd_sreq *)(void *)((char *)(j)-offsetof(nd_sreq, work)))

enum {
    M_GET,
    M_PUT,
    M_LIST,
    M_MERKLE,
    M_LEAVES,
    M_COND,
    M_TOMBS,
    M_TDROP,
    M_NAMES,
    M_PUTS,
    M_GETS
};

struct batch_slot {
    nd_sreq *s;
    size_t i;
};

struct nd_mreq {
    int kind;
    char bucket[MD_BUCKET_MAX + 1];
    char key[MD_MAX_KEY + 1], prefix[MD_MAX_KEY + 1], after[MD_MAX_KEY + 1];
    int has_after;
    char hint[ND_NODE_ID_MAX];
    char from[ND_NODE_ID_MAX]; /* cond: the caller */
    nd_cond_args cond;         /* cond: the condition (nd_cond_parse) */
    md_shard part;
    uint64_t max, depth, fence;
    uint64_t epoch;  /* the caller's layout epoch (0: none, not fenced) */
    uint64_t before; /* tombs: the cutoff; tombdrop: the mark */
    uint32_t want_crc, crc;
    uint64_t want_len;
    struct evbuffer *in, *out;
    md_object rec; /* put on the commit thread: the body's record, until its answer */
    int have_rec;
    /* a batch put (M_PUTS): its records, their status bytes (written by the commit thread) and
     * the merges not answered yet, plus one held by the loop while it queues them */
    md_object *recs;
    size_t nrecs;
    uint8_t *st;
    struct batch_slot *slots;
    atomic_size_t left;
    cm_err err;
    const char *why;
    int no_bucket, applied, more;
};

void nd_meta_free(struct nd_mreq *m)
{
    if (m->have_rec)
        md_object_release(&m->rec);
    md_objects_free(m->recs, m->nrecs);
    free(m->st);
    free(m->slots);
    if (m->in)
        evbuffer_free(m->in);
    if (m->out)
        evbuffer_free(m->out);
    free(m);
}

/* Query parameter name, percent-decoded into out: 1 found, 0 absent, -1 malformed or too long. */
static int query_str(const char *q, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name), len;
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1, *end = strchr(v, '&');
            size_t vl = end ? (size_t)(end - v) : strlen(v);
            if (cm_url_decode(v, vl, out, cap, &len) != CM_OK || strlen(out) != len)
                return -1; /* bad escape, too long, or a NUL inside */
            return 1;
        }
    }
    return 0;
}

/* shard, nshards and depth (when want_depth) from the query. */
static const char *parse_part(const char *q, struct nd_mreq *m, int want_depth)
{
    uint64_t shard = 0, nshards = 0;
    if (nd_query_u64(q, "shard", &shard) != 1 || nd_query_u64(q, "nshards", &nshards) != 1 ||
        nshards == 0 || nshards > 65536 || shard >= nshards)
        return "bad shard or nshards";
    m->part.shard = (uint32_t)shard, m->part.nshards = (uint32_t)nshards;
    if (want_depth && (nd_query_u64(q, "depth", &m->depth) != 1 || m->depth < 1 ||
                       m->depth > MD_MERKLE_MAX_DEPTH))
        return "bad depth";
    return NULL;
}

/* What the route and query ask for; NULL when fine, else the reason of a 400. */
static const char *parse(net_req *req, const char *path, struct nd_mreq *m)
{
    const char *slash = strchr(path, '/'), *method = net_req_method(req);
    size_t bl = slash ? (size_t)(slash - path) : 0;
    if (bl == 0 || bl > MD_BUCKET_MAX)
        return "bad bucket";
    memcpy(m->bucket, path, bl);
    m->bucket[bl] = 0;
    const char *what = slash + 1, *qm = strchr(what, '?'), *q = qm ? qm + 1 : "";
    size_t wl = qm ? (size_t)(qm - what) : strlen(what);
    if (nd_query_u64(q, "epoch", &m->epoch) < 0)
        return "bad epoch";
    if (wl == 3 && strncmp(what, "rec", 3) == 0 && strcmp(method, "GET") == 0) {
        m->kind = M_GET;
        if (query_str(q, "key", m->key, sizeof(m->key)) != 1 || !m->key[0])
            return "bad key";
        int f = nd_query_u64(q, "fence", &m->fence);
        if (f < 0 || (f == 1 && m->fence == 0))
            return "bad fence";
        return f == 1 ? parse_part(q, m, 0) : NULL;
    }
    if (wl == 3 && strncmp(what, "rec", 3) == 0 && strcmp(method, "PUT") == 0) {
        m->kind = M_PUT;
        int h = query_str(q, "hint", m->hint, sizeof(m->hint));
        if (h < 0 || (h == 1 && !nd_node_id_valid(m->hint)))
            return "bad hint";
        int f = nd_query_u64(q, "fence", &m->fence);
        if (f < 0 || (f == 1 && (h == 1 || m->fence == 0)))
            return "bad fence";
        return f == 1 ? parse_part(q, m, 0) : NULL;
    }
    if (wl == 4 && strncmp(what, "recs", 4) == 0 && strcmp(method, "PUT") == 0) {
        m->kind = M_PUTS;
        return NULL;
    }
    if (wl == 6 && strncmp(what, "recget", 6) == 0 && strcmp(method, "POST") == 0) {
        m->kind = M_GETS;
        return NULL;
    }
    if (wl == 4 && strncmp(what, "list", 4) == 0 && strcmp(method, "GET") == 0) {
        m->kind = M_LIST;
        m->max = ND_META_LIST_MAX;
        int a = query_str(q, "after", m->after, sizeof(m->after));
        m->has_after = a == 1;
        if (a < 0 || query_str(q, "prefix", m->prefix, sizeof(m->prefix)) < 0 ||
            nd_query_u64(q, "max", &m->max) < 0 || m->max == 0)
            return "bad list query";
        m->max = CM_MIN(m->max, (uint64_t)ND_META_LIST_MAX);
        return parse_part(q, m, 0);
    }
    if (wl == 6 && strncmp(what, "merkle", 6) == 0 && strcmp(method, "GET") == 0) {
        m->kind = M_MERKLE;
        return parse_part(q, m, 1);
    }
    if (wl == 8 && strncmp(what, "leafkeys", 8) == 0 && strcmp(method, "POST") == 0) {
        m->kind = M_LEAVES;
        return parse_part(q, m, 1);
    }
    if (wl == 5 && strncmp(what, "tombs", 5) == 0 && strcmp(method, "GET") == 0) {
        m->kind = M_TOMBS;
        m->max = ND_META_LIST_MAX;
        int a = query_str(q, "after", m->after, sizeof(m->after));
        m->has_after = a == 1;
        if (a < 0 || nd_query_u64(q, "before", &m->before) != 1 || m->before == 0 ||
            nd_query_u64(q, "max", &m->max) < 0 || m->max == 0)
            return "bad tombs query";
        m->max = CM_MIN(m->max, (uint64_t)ND_META_LIST_MAX);
        return parse_part(q, m, 0);
    }
    if (wl == 8 && strncmp(what, "tombdrop", 8) == 0 && strcmp(method, "POST") == 0) {
        m->kind = M_TDROP;
        if (nd_query_u64(q, "mark", &m->before) != 1 || m->before == 0)
            return "bad mark";
        return parse_part(q, m, 0);
    }
    if (wl == 5 && strncmp(what, "names", 5) == 0 && strcmp(method, "POST") == 0) {
        m->kind = M_NAMES;
        return NULL;
    }
    return "no such meta route";
}

/* ---- on a worker ---- */

static cm_err run_get(nd_service *svc, struct nd_mreq *m)
{
    md_object o;
    uint8_t *buf;
    size_t len;
    if (m->fence &&
        md_shard_of((const uint8_t *)m->key, strlen(m->key), m->part.nshards) != m->part.shard) {
        m->why = "a key of another shard";
        return CM_ERR_INVAL;
    }
    cm_err e = md_fence_barrier(svc->md, m->bucket, m->part.shard, m->fence); /* 0: none */
    if (e == CM_ERR_CONFLICT)
        m->why = "a newer partition leader read or wrote here (fencing token too low)";
    if (e == CM_OK)
        e = md_rec_lookup(svc->md, m->bucket, m->key, &o, &m->no_bucket);
    if (e != CM_OK)
        return e;
    e = md_object_encode(&o, &buf, &len);
    md_object_release(&o);
    if (e == CM_OK) {
        if (evbuffer_add(m->out, buf, len) != 0)
            e = CM_ERR_NOMEM;
        free(buf);
    }
    return e;
}

/* What a merge (not a hint) answered, as m's reason and flags. */
static void merged(struct nd_mreq *m, cm_err e)
{
    m->no_bucket = e == CM_ERR_NOTFOUND;
    if (e == CM_ERR_CONFLICT)
        m->why = "a newer partition leader read or wrote here (fencing token too low)";
    else if (e == CM_ERR_INVAL)
        m->why = "the record's stamp is too far ahead of this node's clock";
    else if (e == CM_ERR_STALE)
        m->why = "this node's layout fence rose above the call's epoch before the write applied";
}

/* A record write's layout guard (md_guard): the fence admitted the call's epoch on arrival
 * (epoch_refused), the commit thread checks it again as it applies the write. */
static md_guard guard_of(const nd_service *svc, const struct nd_mreq *m)
{
    return (md_guard){svc->epoch, m->epoch};
}

/* The request body's record is for the bucket's shard that the query names (fenced), and has a
 * key; otherwise m->why says why not. */
static int record_fits(struct nd_mreq *m, const md_object *o)
{
    if (o->key && *o->key &&
        (!m->fence ||
         md_shard_of((const uint8_t *)o->key, strlen(o->key), m->part.nshards) == m->part.shard))
        return 1;
    m->why = "a record without a key, or of another shard";
    return 0;
}

/* The request body as a record (md_object_release it). */
static cm_err body_record(struct nd_mreq *m, md_object *o)
{
    size_t len = evbuffer_get_length(m->in);
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    if (!p && len)
        return CM_ERR_NOMEM;
    cm_err e = md_object_decode(p, len, o);
    if (e != CM_OK)
        m->why = "the body is not a record";
    return e;
}

static cm_err run_put(nd_service *svc, struct nd_mreq *m)
{
    md_object o;
    cm_err e = body_record(m, &o);
    if (e != CM_OK)
        return e;
    if (!record_fits(m, &o)) {
        e = CM_ERR_INVAL;
    } else if (!m->hint[0]) {
        md_guard g = guard_of(svc, m);
        e = md_rec_receive_fenced(svc->md, svc->clock, m->bucket, m->part.shard, m->fence, &g, &o,
                                  &m->applied);
        merged(m, e);
    } else {
        e = md_rec_receive(svc->md, svc->clock, m->bucket, &o, m->hint, &m->applied);
        if (e == CM_ERR_INVAL)
            m->why = "the record's stamp is too far ahead of this node's clock";
        else if (e == CM_ERR_UNAVAILABLE)
            m->why = "this node holds as many hints as it may ([cluster] hints_max)";
    }
    md_object_release(&o);
    return e;
}

/* A batch's body as records (m->recs, m->nrecs, with m->st and m->slots): each a u32 length and
 * a record with a key, at most ND_META_BATCH_MAX (nd_batch_split); otherwise m->why says what is
 * wrong. */
static cm_err body_records(struct nd_mreq *m)
{
    nd_batch_item items[ND_META_BATCH_MAX];
    size_t len = evbuffer_get_length(m->in);
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    if (!p && len)
        return CM_ERR_NOMEM;
    size_t n = nd_batch_split(p, len, 0, items);
    if (n == 0) {
        m->why = "the body is not 1 to ND_META_BATCH_MAX framed records";
        return CM_ERR_INVAL;
    }
    m->recs = calloc(n, sizeof(*m->recs));
    m->st = calloc(n, 1);
    m->slots = calloc(n, sizeof(*m->slots));
    if (!m->recs || !m->st || !m->slots)
        return CM_ERR_NOMEM;
    cm_err e = CM_OK;
    for (size_t i = 0; e == CM_OK && i < n; i++) {
        e = md_object_decode(items[i].p, items[i].len, &m->recs[i]);
        if (e == CM_OK) /* decoded: released with the request */
            m->nrecs = i + 1;
        if (e == CM_OK && (!m->recs[i].key || !*m->recs[i].key))
            e = CM_ERR_INVAL;
    }
    if (e != CM_OK)
        m->why = "a record of the body does not decode or has no key";
    return e;
}

/* A merge's outcome as the status byte of a batch's answer. */
static uint8_t batch_status(cm_err e, int applied)
{
    if (e == CM_OK)
        return applied ? ND_BATCH_APPLIED : ND_BATCH_KEPT;
    return e == CM_ERR_NOTFOUND ? ND_BATCH_NO_BUCKET
           : e == CM_ERR_INVAL  ? ND_BATCH_INVALID
           : e == CM_ERR_STALE  ? ND_BATCH_STALE
                                : ND_BATCH_FAILED;
}

/* A batch put without the commit thread (no pool: inline on the loop, as every call then). */
static cm_err run_puts(nd_service *svc, struct nd_mreq *m)
{
    cm_err e = body_records(m);
    for (size_t i = 0; e == CM_OK && i < m->nrecs; i++) {
        int applied = 0;
        md_guard g = guard_of(svc, m);
        cm_err r =
            md_rec_receive_fenced(svc->md, svc->clock, m->bucket, 0, 0, &g, &m->recs[i], &applied);
        m->st[i] = batch_status(r, applied);
    }
    if (e == CM_OK && evbuffer_add(m->out, m->st, m->nrecs) != 0)
        e = CM_ERR_NOMEM;
    return e;
}

/* u32 length | bytes, into out. */
static cm_err add_framed(struct evbuffer *out, const uint8_t *p, size_t len)
{
    uint8_t h[4];
    cm_put_be32(h, (uint32_t)len);
    return evbuffer_add(out, h, 4) == 0 && evbuffer_add(out, p, len) == 0 ? CM_OK : CM_ERR_NOMEM;
}

/* One key's answer in a batch of reads: its status byte, and for a record its framed bytes. */
static cm_err add_read(nd_service *svc, struct nd_mreq *m, const char *key)
{
    md_object o;
    int no_bucket = 0;
    uint8_t *buf, st;
    size_t len;
    cm_err e = md_rec_lookup(svc->md, m->bucket, key, &o, &no_bucket);
    if (e != CM_OK) {
        st = e != CM_ERR_NOTFOUND ? ND_BATCH_FAILED
             : no_bucket          ? ND_BATCH_NO_BUCKET
                                  : ND_BATCH_ABSENT;
        return evbuffer_add(m->out, &st, 1) == 0 ? CM_OK : CM_ERR_NOMEM;
    }
    e = md_object_encode(&o, &buf, &len);
    md_object_release(&o);
    if (e != CM_OK)
        return e;
    st = ND_BATCH_FOUND;
    e = evbuffer_add(m->out, &st, 1) == 0 ? add_framed(m->out, buf, len) : CM_ERR_NOMEM;
    free(buf);
    return e;
}

/* A batch of reads (M_GETS), on the loop as a single read is: the body's keys (u16 length | key
 * each, 1 to ND_META_BATCH_MAX, nd_batch_split), each answered in order; an answer past
 * ND_META_MAX is refused whole (the caller asks one by one). */
static cm_err run_gets(nd_service *svc, struct nd_mreq *m)
{
    nd_batch_item items[ND_META_BATCH_MAX];
    size_t len = evbuffer_get_length(m->in);
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    if (!p && len)
        return CM_ERR_NOMEM;
    size_t n = nd_batch_split(p, len, 1, items);
    if (n == 0) {
        m->why = "the body is not 1 to ND_META_BATCH_MAX framed keys";
        return CM_ERR_INVAL;
    }
    cm_err e = CM_OK;
    for (size_t i = 0; e == CM_OK && i < n; i++) {
        memcpy(m->key, items[i].p, items[i].len);
        m->key[items[i].len] = 0;
        e = add_read(svc, m, m->key);
        if (e == CM_OK && evbuffer_get_length(m->out) > ND_META_MAX)
            e = CM_ERR_TOOBIG;
    }
    return e;
}

static cm_err run_list(nd_service *svc, struct nd_mreq *m)
{
    md_object *o;
    size_t n;
    int truncated;
    cm_err e = md_rec_scan(svc->md, m->bucket, m->prefix, m->has_after ? m->after : NULL,
                           md_shard_keep, &m->part, (size_t)m->max, &o, &n, &truncated);
    if (e != CM_OK) {
        m->no_bucket = e == CM_ERR_NOTFOUND;
        return e;
    }
    m->more = truncated;
    for (size_t i = 0; e == CM_OK && i < n; i++) {
        uint8_t *buf;
        size_t len;
        if (evbuffer_get_length(m->out) >= ND_META_PAGE_BYTES) {
            m->more = 1; /* the page is full by bytes: the caller continues after the last */
            break;
        }
        if ((e = md_object_encode(&o[i], &buf, &len)) == CM_OK) {
            e = add_framed(m->out, buf, len);
            free(buf);
        }
    }
    md_objects_free(o, n);
    return e;
}

static cm_err run_merkle(nd_service *svc, struct nd_mreq *m)
{
    uint8_t *h;
    size_t n;
    cm_err e = md_merkle_leaves(svc->md, m->bucket, (int)m->depth, md_shard_keep, &m->part, &h, &n);
    if (e != CM_OK) {
        m->no_bucket = e == CM_ERR_NOTFOUND;
        return e;
    }
    if (evbuffer_add(m->out, h, n * 16) != 0)
        e = CM_ERR_NOMEM;
    free(h);
    return e;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Digest entries into m->out, at most ND_META_MAX bytes. */
static cm_err add_infos(struct nd_mreq *m, const md_rec_info *ri, size_t n, const char *why)
{
    uint8_t buf[MD_REC_INFO_ENC_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t bl = md_rec_info_encode(&ri[i], buf);
        if (evbuffer_get_length(m->out) + bl > ND_META_MAX) {
            m->why = why;
            return CM_ERR_TOOBIG;
        }
        if (evbuffer_add(m->out, buf, bl) != 0)
            return CM_ERR_NOMEM;
    }
    return CM_OK;
}

static cm_err run_leaves(nd_service *svc, struct nd_mreq *m)
{
    size_t len = evbuffer_get_length(m->in), nl = len / 4, width = (size_t)1 << (4 * m->depth);
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    if (len % 4 || (!p && len)) {
        m->why = "the body is not a list of u32 leaves";
        return CM_ERR_INVAL;
    }
    size_t *leaves = malloc((nl ? nl : 1) * sizeof(*leaves));
    if (!leaves)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < nl; i++) {
        leaves[i] = cm_get_be32(p + 4 * i);
        if (leaves[i] >= width) {
            free(leaves);
            m->why = "a leaf beyond the tree";
            return CM_ERR_INVAL;
        }
    }
    qsort(leaves, nl, sizeof(*leaves), cmp_size);
    md_rec_info *ri = NULL;
    size_t n = 0;
    cm_err e = md_merkle_leaf_keys_ex(svc->md, m->bucket, (int)m->depth, md_shard_keep, &m->part,
                                      leaves, nl, &ri, &n);
    free(leaves);
    m->no_bucket = e == CM_ERR_NOTFOUND;
    if (e == CM_OK)
        e = add_infos(m, ri, n, "too many keys in these leaves: ask for fewer");
    md_rec_infos_free(ri, n);
    return e;
}

static cm_err run_tombs(nd_service *svc, struct nd_mreq *m)
{
    md_rec_info *ri = NULL;
    size_t n = 0;
    int truncated = 0;
    cm_err e = md_rec_tombs(svc->md, m->bucket, &m->part, m->before, m->has_after ? m->after : NULL,
                            (size_t)m->max, &ri, &n, &truncated);
    m->no_bucket = e == CM_ERR_NOTFOUND;
    m->more = truncated;
    if (e == CM_OK)
        e = add_infos(m, ri, n, "too many tombstones: ask for fewer");
    md_rec_infos_free(ri, n);
    return e;
}

/* The body's digest entries (at most ND_META_LIST_MAX), then md_rec_collect. */
static cm_err run_tdrop(nd_service *svc, struct nd_mreq *m)
{
    size_t len = evbuffer_get_length(m->in), off = 0, n = 0, used;
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    md_rec_info *ri = calloc(ND_META_LIST_MAX, sizeof(*ri));
    uint8_t *dropped = malloc(ND_META_LIST_MAX);
    cm_err e = ri && dropped && (p || !len) ? CM_OK : CM_ERR_NOMEM;
    while (e == CM_OK && off < len) {
        if (n == ND_META_LIST_MAX) {
            e = CM_ERR_INVAL;
            m->why = "more than ND_META_LIST_MAX tombstones";
        } else if ((e = md_rec_info_decode(p + off, len - off, &used, &ri[n])) == CM_OK) {
            n++, off += used;
        } else {
            e = CM_ERR_INVAL;
            m->why = "the body is not a list of digest entries";
        }
    }
    if (e == CM_OK) {
        e = md_rec_collect(svc->md, m->bucket, &m->part, m->before, ri, n, dropped);
        m->no_bucket = e == CM_ERR_NOTFOUND;
    }
    if (e == CM_OK && evbuffer_add(m->out, dropped, n) != 0)
        e = CM_ERR_NOMEM;
    md_rec_infos_free(ri, n);
    free(dropped);
    return e;
}

/* The body's blob ids; one byte each back, 1 when a record names it. */
static cm_err run_names(nd_service *svc, struct nd_mreq *m)
{
    size_t len = evbuffer_get_length(m->in), n = len / 16;
    const uint8_t *p = evbuffer_pullup(m->in, (ev_ssize_t)len);
    if (len % 16 || n == 0 || n > ND_NAMES_MAX || !p) {
        m->why = "the body is not 1..ND_NAMES_MAX blob ids";
        return CM_ERR_INVAL;
    }
    uint8_t *named = malloc(n);
    if (!named)
        return CM_ERR_NOMEM;
    cm_err e = md_names_mark(svc->md, (const uint8_t(*)[16])p, n, named, NULL);
    if (e == CM_ERR_INVAL)
        m->why = "the blob ids are not sorted";
    if (e == CM_OK && evbuffer_add(m->out, named, n) != 0)
        e = CM_ERR_NOMEM;
    free(named);
    return e;
}

static cm_err run_cond(nd_service *svc, struct nd_mreq *m)
{
    md_object o;
    cm_err e = body_record(m, &o);
    if (e != CM_OK)
        return e;
    nd_cond_req r = {m->bucket, &o, m->cond.del, &m->cond.cond, m->from};
    if (!o.key || !*o.key) {
        e = CM_ERR_INVAL;
        m->why = "a record without a key";
    } else {
        e = svc->cond(svc->cond_arg, &r);
        if (e == CM_ERR_CONFLICT)
            m->why = "not the partition's leader";
    }
    md_object_release(&o);
    return e;
}

static void meta_run(nd_job *j)
{
    nd_sreq *s = MREQ_JOB(j);
    struct nd_mreq *m = s->meta;
    switch (m->kind) {
    case M_GET:
        m->err = run_get(s->svc, m);
        break;
    case M_PUT:
        m->err = run_put(s->svc, m);
        break;
    case M_PUTS:
        m->err = run_puts(s->svc, m);
        break;
    case M_GETS:
        m->err = run_gets(s->svc, m);
        break;
    case M_LIST:
        m->err = run_list(s->svc, m);
        break;
    case M_MERKLE:
        m->err = run_merkle(s->svc, m);
        break;
    case M_COND:
        m->err = run_cond(s->svc, m);
        break;
    case M_TOMBS:
        m->err = run_tombs(s->svc, m);
        break;
    case M_TDROP:
        m->err = run_tdrop(s->svc, m);
        break;
    case M_NAMES:
        m->err = run_names(s->svc, m);
        break;
    default:
        m->err = run_leaves(s->svc, m);
        break;
    }
}

/* ---- on the loop ---- */

static void meta_done(nd_job *j)
{
    nd_sreq *s = MREQ_JOB(j);
    struct nd_mreq *m = s->meta;
    if (s->replay) /* a conditional write's result, for a replay of it (nd_replayed) */
        nd_replay_end(s->svc->replay, s->nonce, m->err);
    if (nd_sreq_returned(s))
        return;
    net_req *req = s->req;
    if (m->err != CM_OK) {
        const char *why = m->why ? m->why : m->no_bucket ? "no such bucket" : NULL;
        nd_answer_error_ex(req, m->err, why, m->no_bucket ? "X-Cairn-No-Bucket" : NULL, "1");
        return;
    }
    net_resp_start(req, 200, (int64_t)evbuffer_get_length(m->out));
    net_resp_header(req, "Content-Type", "application/octet-stream");
    if (m->kind == M_PUT)
        net_resp_header(req, "X-Cairn-Applied", m->applied ? "1" : "0");
    if (m->kind == M_LIST || m->kind == M_TOMBS)
        net_resp_header(req, "X-Cairn-More", m->more ? "1" : "0");
    net_resp_write_buffer(req, m->out);
    net_resp_end(req);
}

static void put_answer(evutil_socket_t fd, short what, void *arg)
{
    nd_sreq *s = arg;
    (void)fd, (void)what;
    meta_done(&s->work);
}

/* A record write's end, on the store's commit thread: hand the answer to the request's loop. */
static void put_committed(void *arg, cm_err err, int applied)
{
    static const struct timeval now = {0, 0};
    nd_sreq *s = arg;
    nd_service *svc = s->svc; /* s may be gone once its answer is scheduled */
    s->meta->err = err;
    s->meta->applied = applied;
    merged(s->meta, err);
    if (event_base_once(s->work.base, -1, EV_TIMEOUT, put_answer, s, &now) != 0)
        CM_ERROR(MOD, "a committed record write cannot return to its loop; dropping it");
    nd_async_end(svc);
}

/* A record write (M_PUT, not a hint): decoded on the loop and queued for the store's commit
 * thread, whose completion comes back to the loop; so no pool thread sits through the commit
 * (two thread switches fewer per write, docs/performance.md "Cluster"). */
static void put_start(nd_sreq *s)
{
    struct nd_mreq *m = s->meta;
    nd_service *svc = s->svc;
    cm_err e = body_record(m, &m->rec);
    m->have_rec = e == CM_OK;
    if (e == CM_OK && !record_fits(m, &m->rec))
        e = CM_ERR_INVAL;
    if (e == CM_OK) {
        s->busy = 1;
        nd_async_begin(svc);
        md_guard g = guard_of(svc, m);
        e = md_rec_receive_async(svc->md, svc->clock, m->bucket, m->part.shard, m->fence, &g,
                                 &m->rec, put_committed, s);
        if (e != CM_OK) {
            nd_async_end(svc);
            merged(m, e);
        }
    }
    if (e != CM_OK) {
        m->err = e;
        meta_done(&s->work);
    }
}

/* A batch's merge ended (on the commit thread; on the loop for one that could not be queued, and
 * for the loop's own count): the last one hands the answer to the request's loop. */
static void batch_one_done(nd_sreq *s)
{
    static const struct timeval now = {0, 0};
    if (atomic_fetch_sub(&s->meta->left, 1) != 1)
        return;
    if (evbuffer_add(s->meta->out, s->meta->st, s->meta->nrecs) != 0)
        s->meta->err = CM_ERR_NOMEM;
    if (event_base_once(s->work.base, -1, EV_TIMEOUT, put_answer, s, &now) != 0)
        CM_ERROR(MOD, "a committed record batch cannot return to its loop; dropping it");
}

static void batch_committed(void *arg, cm_err err, int applied)
{
    struct batch_slot *slot = arg;
    nd_sreq *s = slot->s;
    nd_service *svc = s->svc; /* s may be gone once its answer is scheduled */
    s->meta->st[slot->i] = batch_status(err, applied);
    batch_one_done(s);
    nd_async_end(svc);
}

/* A batch put (M_PUTS): every record queued for the commit thread as put_start queues one, and
 * one answer once the last is durable or failed. */
static void batch_start(nd_sreq *s)
{
    struct nd_mreq *m = s->meta;
    nd_service *svc = s->svc;
    cm_err e = body_records(m);
    if (e != CM_OK) {
        m->err = e;
        meta_done(&s->work);
        return;
    }
    s->busy = 1;
    atomic_store(&m->left, m->nrecs + 1);
    for (size_t i = 0; i < m->nrecs; i++) {
        m->slots[i] = (struct batch_slot){s, i};
        nd_async_begin(svc);
        md_guard g = guard_of(svc, m);
        e = md_rec_receive_async(svc->md, svc->clock, m->bucket, 0, 0, &g, &m->recs[i],
                                 batch_committed, &m->slots[i]);
        if (e != CM_OK) {
            nd_async_end(svc);
            m->st[i] = batch_status(e, 0);
            batch_one_done(s);
        }
    }
    batch_one_done(s); /* the loop's own count: the answer may go now */
}

/* A record read (M_GET) runs on the loop: one LMDB lookup costs microseconds, as on a single
 * node's gateway, while the trip through the pool costs two thread switches (measured in
 * docs/performance.md, "Cluster"). A record write goes to the commit thread (put_start). Other
 * writes and scans (fdatasync, long walks) go to the pool. */
static void submit(nd_sreq *s)
{
    s->work.run = meta_run;
    s->work.done = meta_done;
    s->work.base = net_req_base(s->req);
    if (s->meta->kind == M_PUT && !s->meta->hint[0] && s->svc->work) {
        put_start(s);
        return;
    }
    if (s->meta->kind == M_PUTS && s->svc->work) {
        batch_start(s);
        return;
    }
    int inline_read = (s->meta->kind == M_GET && !s->meta->fence) || /* a barrier waits: pool */
                      s->meta->kind == M_GETS;
    nd_work *pool = inline_read ? NULL : s->meta->kind == M_COND ? s->svc->cond_work : s->svc->work;
    s->busy = pool != NULL;
    nd_work_submit(pool, &s->work);
}

static void read_body(net_req *req, struct nd_mreq *m);

/* A new request state on s; NULL (answered) when out of memory. */
static struct nd_mreq *mreq_new(net_req *req, nd_sreq *s)
{
    struct nd_mreq *m = calloc(1, sizeof(*m));
    if (!m || !(m->out = evbuffer_new()) || !(m->in = evbuffer_new())) {
        if (m)
            nd_meta_free(m);
        nd_answer_error_ex(req, CM_ERR_NOMEM, NULL, NULL, NULL);
        return NULL;
    }
    s->meta = m;
    s->op = OP_META;
    return m;
}

/* A flag of the query: 0 or 1 (absent: 0); -1 for anything else. */
static int query_flag(const char *q, const char *name, int *out)
{
    uint64_t v = 0;
    if (nd_query_u64(q, name, &v) < 0 || v > 1)
        return -1;
    *out = (int)v;
    return 0;
}

/* heal_old as nd_cond_write sends it (hold=): hex of blob (16), size (u64), k, m, then each of
 * the k + m cells' drive (u8) and node (u16), big-endian; 0, or -1 when malformed. */
static int query_layout(const char *q, md_layout *out)
{
    char hex[2 * ND_CELLS_MAX + 1];
    uint8_t raw[ND_CELLS_MAX];
    if (query_str(q, "hold", hex, sizeof(hex)) != 1)
        return -1;
    size_t n = strlen(hex) / 2;
    if (strlen(hex) % 2 || n < 26 || cm_hex_decode(hex, 2 * n, raw, n) != CM_OK)
        return -1;
    memset(out, 0, sizeof(*out));
    memcpy(out->blob, raw, 16);
    out->size = cm_get_be64(raw + 16);
    out->k = raw[24], out->m = raw[25];
    size_t cells = (size_t)out->k + out->m;
    if (out->k == 0 || cells > MD_MAX_CELLS || n != 26 + 3 * cells)
        return -1;
    for (size_t i = 0; i < cells; i++) {
        out->drives[i] = raw[26 + 3 * i];
        out->nodes[i] = (uint16_t)(raw[27 + 3 * i] << 8 | raw[28 + 3 * i]);
    }
    return 0;
}

/* The lock= part of the query (set: it is there): 1..7 a lock change (bits 1, 2 which, 4 the
 * bypass), 8 a swap keeping the lock fields, 16 a repair's layout swap with hpart and hold; alone,
 * never with another condition or a delete. */
static const char *parse_lock(const char *q, uint64_t lock, nd_cond_args *a)
{
    md_cond *c = &a->cond;
    uint64_t part = 0;
    if (a->del || c->if_none_match_star || c->if_match || c->unlocked || c->noncurrent)
        return "a lock change goes alone";
    if (lock >= 1 && lock <= 7 && (lock & 3)) {
        c->lock_change = (int)(lock & 3), c->bypass_governance = (lock & 4) != 0;
    } else if (lock == MD_COND_LOCK_KEEP) {
        c->lock_change = MD_COND_LOCK_KEEP;
    } else if (lock == MD_COND_LOCK_LAYOUT) {
        if (nd_query_u64(q, "hpart", &part) != 1 || part >= ND_PARTS_MAX ||
            query_layout(q, &a->heal_old) != 0)
            return "bad layout swap";
        c->lock_change = MD_COND_LOCK_LAYOUT;
        c->heal_part = (uint32_t)part, c->heal_old = &a->heal_old;
    } else {
        return "bad lock";
    }
    return NULL;
}

const char *nd_cond_parse(const char *q, nd_cond_args *a)
{
    md_cond *c = &a->cond;
    uint64_t unlocked = 0, lock = 0, succ = 0, newer = 0;
    memset(a, 0, sizeof(*a));
    int im = query_str(q, "ifmatch", a->ifmatch, sizeof(a->ifmatch));
    int nk = query_str(q, "nckey", a->nckey, sizeof(a->nckey));
    int ns = nd_query_u64(q, "ncsucc", &succ), nn = nd_query_u64(q, "ncnewer", &newer);
    int lk = nd_query_u64(q, "lock", &lock);
    if (im < 0 || query_flag(q, "inm", &c->if_none_match_star) != 0 ||
        query_flag(q, "del", &a->del) != 0 || nd_query_u64(q, "unlocked", &unlocked) < 0 ||
        unlocked > 2 || ns < 0 || nn < 0 || ns != nn || succ > INT64_MAX || newer > UINT32_MAX ||
        lk < 0 || nk < 0 || (nk == 1 && (ns != 1 || !a->nckey[0])))
        return "bad conditional write";
    c->if_match = im == 1 ? a->ifmatch : NULL;
    c->unlocked = unlocked != 0, c->bypass_governance = unlocked == 2;
    c->noncurrent = ns == 1, c->successor_ms = (int64_t)succ, c->newer_min = (uint32_t)newer;
    c->noncurrent_key = nk == 1 ? a->nckey : NULL;
    if (lk == 1)
        return parse_lock(q, lock, a);
    char none[1];
    if (query_str(q, "hpart", none, 1) != 0 || query_str(q, "hold", none, 1) != 0)
        return "hpart and hold only with lock=16";
    if (!c->if_none_match_star && !c->if_match && !c->unlocked && !c->noncurrent)
        return "no condition";
    return NULL;
}

void nd_cond_serve(nd_service *svc, net_req *req, nd_sreq *s, const char *path)
{
    if (!svc->cond || !svc->md) {
        nd_answer_error_ex(req, CM_ERR_UNAVAILABLE, "this node runs no conditional writes", NULL,
                           NULL);
        return;
    }
    struct nd_mreq *m = mreq_new(req, s);
    if (!m)
        return;
    m->kind = M_COND;
    const char *qm = strchr(path, '?'), *q = qm ? qm + 1 : "";
    size_t bl = qm ? (size_t)(qm - path) : strlen(path);
    const char *from = net_req_header(req, "X-Cairn-Node");
    const char *why = strcmp(net_req_method(req), "POST") != 0 || bl == 0 || bl > MD_BUCKET_MAX ||
                              memchr(path, '/', bl)
                          ? "bad conditional write"
                          : nd_cond_parse(q, &m->cond);
    if (why) {
        nd_answer_error_ex(req, CM_ERR_INVAL, why, NULL, NULL);
        return;
    }
    if (nd_replayed(svc, req, s))
        return;
    memcpy(m->bucket, path, bl);
    m->bucket[bl] = 0;
    snprintf(m->from, sizeof(m->from), "%s", from ? from : "");
    read_body(req, m);
}

/*
 * The layout fence: a call from a node on an older layout than this node's is refused (its op
 * counts this replica as failed until the caller's layout watch brings the newer layout), and a
 * newer one raises this node's fence to it, so that from now on this node refuses the older
 * layout's calls even before it adopted the newer one itself (docs/replication.md, "Layout
 * changes: the handoff"). Any authenticated peer can raise it: the cluster secret is trusted with
 * every record already. 1 when refused (answered).
 */
static int epoch_refused(nd_service *svc, net_req *req, uint64_t epoch)
{
    if (!svc->epoch || !epoch)
        return 0;
    uint64_t have = atomic_load(svc->epoch);
    while (epoch > have && !atomic_compare_exchange_weak(svc->epoch, &have, epoch))
        ;
    if (epoch >= have)
        return 0;
    char why[128];
    snprintf(why, sizeof(why), "layout epoch %" PRIu64 " is older than this node's %" PRIu64, epoch,
             have);
    CM_DEBUG(MOD, "peer=%s meta call refused: %s", net_req_peer(req), why);
    nd_answer_error_ex(req, CM_ERR_STALE, why, NULL, NULL);
    return 1;
}

void nd_meta_serve(nd_service *svc, net_req *req, nd_sreq *s, const char *path)
{
    if (!svc->md) {
        nd_answer_error_ex(req, CM_ERR_UNAVAILABLE, "this node serves no metadata", NULL, NULL);
        return;
    }
    struct nd_mreq *m = mreq_new(req, s);
    if (!m)
        return;
    const char *why = parse(req, path, m);
    if (why) {
        nd_answer_error_ex(req,
                           strcmp(why, "no such meta route") == 0 ? CM_ERR_NOTFOUND : CM_ERR_INVAL,
                           why, NULL, NULL);
        return;
    }
    if ((m->kind == M_PUTS || m->kind == M_GETS) && atomic_load(&svc->no_batch_route)) {
        nd_answer_error_ex(req, CM_ERR_NOTFOUND, "no such meta route", NULL, NULL);
        return;
    }
    if (epoch_refused(svc, req, m->epoch))
        return;
    if (m->kind != M_PUT && m->kind != M_PUTS && m->kind != M_GETS && m->kind != M_LEAVES &&
        m->kind != M_TDROP && m->kind != M_NAMES) {
        submit(s);
        return;
    }
    read_body(req, m);
}

/* A request with a body: check its framing, then collect it (nd_meta_body, nd_meta_body_end). */
static void read_body(net_req *req, struct nd_mreq *m)
{
    const char *crc = net_req_header(req, "X-Cairn-Crc32c");
    int64_t cl = net_req_content_length(req);
    uint8_t raw[4];
    if (net_req_chunked(req) || !net_req_header(req, "Content-Length") || cl <= 0) {
        nd_answer_error_ex(req, CM_ERR_INVAL, "a meta body needs a Content-Length", NULL, NULL);
        return;
    }
    if (cl > ND_META_MAX) {
        nd_answer_error_ex(req, CM_ERR_TOOBIG, "meta body over ND_META_MAX", NULL, NULL);
        return;
    }
    if (!crc || strlen(crc) != 8 || cm_hex_decode(crc, 8, raw, 4) != CM_OK) {
        nd_answer_error_ex(req, CM_ERR_INVAL, "a meta body needs X-Cairn-Crc32c (8 hex digits)",
                           NULL, NULL);
        return;
    }
    m->want_crc = cm_get_be32(raw);
    m->want_len = (uint64_t)cl;
    net_req_read_body(req);
}

void nd_meta_body(nd_sreq *s, struct evbuffer *body)
{
    struct nd_mreq *m = s->meta;
    while (evbuffer_get_length(body) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(body, -1, NULL, &v, 1) < 1)
            break;
        m->crc = cm_crc32c(m->crc, v.iov_base, v.iov_len);
        evbuffer_remove_buffer(body, m->in, v.iov_len); /* moves, no copy */
    }
}

void nd_meta_body_end(nd_sreq *s)
{
    struct nd_mreq *m = s->meta;
    if (evbuffer_get_length(m->in) != m->want_len) {
        nd_answer_error_ex(s->req, CM_ERR_INVAL, "short meta body", NULL, NULL);
        return;
    }
    if (m->crc != m->want_crc) {
        atomic_fetch_add(&s->svc->digest_refused, 1);
        CM_WARN(MOD, "peer=%s meta body refused: CRC32C %08x, header says %08x",
                net_req_peer(s->req), m->crc, m->want_crc);
        nd_answer_error_ex(s->req, CM_ERR_DIGEST, "body CRC32C does not match X-Cairn-Crc32c", NULL,
                           NULL);
        return;
    }
    submit(s);
}
