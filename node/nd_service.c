/*
 * nd_service.c - the RPC handlers of a storage node (protocol in docs/rpc.md).
 *
 * Routes (all under ND_PREFIX, all authenticated first, nd_auth.c):
 *   PUT    /chunk/<drive>/<id>?off=N[&sync=0]  append the body at N (0 creates the chunk)
 *   PUT    ...?off=N&also=D[,D...]             the body is equal parts, one per drive, each
 *                                              appended at N: a node's cells of a stripe
 *   GET    /chunk/<drive>/<id>?off=N[&len=N]   read a range
 *   GET    ...?off=N&len=N&also=D[,D...]       the same range on more drives: a node's cells of
 *                                              a stripe, one after the other (read_parts)
 *   HEAD   /chunk/<drive>/<id>                 stat (X-Cairn-Size)
 *   DELETE /chunk/<drive>/<id>                 delete, durably (a nonce seen before: the first
 *                                              run's answer, nd_replay.c)
 *   GET    /info                               heartbeat: node id, clock, drives
 *   GET    /list/<drive>?after=<id>&max=N      a page of the drive's chunks (id, length)
 *   GET    /list/<drive>?...&age=1             ... with each chunk's age (bs_list_aged; at most
 *                                              ND_LIST_AGED_MAX: the orphan sweep)
 *   ...    /meta/<bucket>/...                  metadata partitions (nd_meta.c)
 *   POST   /cond/<bucket>?...                  a conditional write for its leader (nd_meta.c;
 *                                              a nonce seen before: as DELETE)
 * Errors: an HTTP status with X-Cairn-Error: <cm_err name> and a one-line text reason.
 *
 * Append: the body must have a Content-Length and an X-Cairn-Crc32c. It is appended as it
 * arrives, in blob calls of ND_APPEND_MIN..ND_PIECE bytes, each written straight from the
 * buffer chains the socket was read into (bs_appendv: no copy in user space between socket and
 * record, where a pull-up into one buffer was a copy), while its CRC32C runs over the same
 * bytes. At the end the CRC is compared: a mismatch deletes the chunk (its earlier pieces are
 * useless without the bad one, and a refused chunk leaves nothing behind) and answers 400
 * CM_ERR_DIGEST; otherwise bs_sync (unless sync=0) and 200 with the new length. Memory per
 * request: the net server's body buffer (read_high_water) and one piece. With also= the body is
 * one part per drive (at most ND_READ_PARTS, of equal length), each with its CRC32C in the
 * header's list, appended in turn at the same offset to its drive's chunk; a part whose CRC
 * does not match deletes the chunk on every part's drive, and the sync is each drive's.
 *
 * Read, on a plain connection: sent from the segment files by sendfile (bs_read_spans), neither
 * copied nor checksummed here. The answer's X-Cairn-Crc32c is the CRC32C the range was written
 * with, combined from the blobstore's stored block CRCs, and the reader checks the bytes against
 * it (nd_client.c). X-Cairn-Verify: reader tells it the bytes were not read here, so a mismatch
 * is rot on this drive: it reports CM_ERR_CORRUPT, as this node would have on reading the block,
 * and the caller reads another cell, or rebuilds this one (heal, scrubber). Only a block the
 * range cuts is read and verified here. A missing chunk is logged with whether and when it was
 * deleted on this drive (bs_deleted_ago), and that reason goes back to the reader. This took the
 * node's two copies (page cache to buffer, buffer to socket) and two CRC passes off a cluster GET.
 * A read with also= (read_parts) is the same range on several of the node's drives, one part
 * after the other, each with its CRC32C: a reader's cells of one stripe in one call; all or
 * nothing, by sendfile or, when that cannot be, read here part by part (docs/rpc.md, "Reading
 * several cells").
 * Read otherwise (TLS, or a range in more than ND_SPANS records): the first piece is read before
 * the response starts (so a corrupt chunk gets a clean status); the rest is read from on_drain,
 * one piece at a time straight into a buffer of the loop's pool added to the response by
 * reference (no fresh pages per piece: cm_bufpool.h), so at most about write_low_water +
 * ND_PIECE bytes wait per request. A block failing its checksum mid-stream aborts the
 * connection: the client sees a short body. A range that fits the first piece (a whole cell at
 * the default cell size) is answered with its X-Cairn-Crc32c, which the client checks, so bytes
 * damaged between the blobstore's check and the caller are refused, not used.
 *
 * Cold reads: a read of up to ND_WARM_MAX (1 MiB: a cell, a node's cells of a stripe, a heal's
 * group of stripes, a repair's read-back) whose pages the page cache does not hold (bs_cached:
 * cachestat) is read first by one of the read_threads workers (JOB_WARM, warm_first), then
 * answered on the loop as above from the cache; so a cold cell, or a drive that hangs, does not
 * stall the loop and every other call on it, and those workers are not the syncs'. Rot the
 * worker meets is the answer ("corrupt"). A longer read (a whole chunk, as `cairn node-rpc`
 * reads one) still reads on the loop.
 *
 * Threading: handlers run on whichever loop owns the connection; bs_store is thread-safe and the
 * counters are atomic. The durability step (bs_sync, and the delete of a refused or deleted
 * chunk) runs on a worker (nd_work.c) and the answer comes back on the request's loop, so an
 * fdatasync never stalls a loop. A request whose connection closes while it is busy is orphaned
 * (svc->orphans) and freed by its completion; at shutdown, one whose completion went to a loop
 * that had already stopped is freed by nd_service_free instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "cm_bufpool.h"
#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "nd_int.h"

#define MOD "nd"
#define ND_SPANS 64 /* a read sent by sendfile lies in at most this many records (else: read) */
/* A cold read of up to this many bytes (all parts) is read by a worker first (warm_first): a
 * cell, a node's cells of a stripe, a heal's group of stripes or a repair's read-back (1 MiB) */
#define ND_WARM_MAX (1u << 20)
#define SREQ_OF(j) ((nd_sreq *)(void *)((char *)(j)-offsetof(nd_sreq, work)))

cm_err nd_service_new(const nd_service_config *cfg, nd_service **out)
{
    *out = NULL;
    if (!nd_node_id_valid(cfg->node_id) || cfg->ndrives < 0 || cfg->ndrives > ND_MAX_DRIVES ||
        cfg->secret_len == 0)
        return CM_ERR_INVAL;
    nd_service *svc = calloc(1, sizeof(*svc));
    if (!svc)
        return CM_ERR_NOMEM;
    snprintf(svc->node_id, sizeof(svc->node_id), "%s", cfg->node_id);
    cm_hmac_key_init(&svc->key, cfg->secret, cfg->secret_len);
    svc->ndrives = cfg->ndrives;
    svc->max_skew_s = cfg->max_skew_s > 0 ? cfg->max_skew_s : ND_MAX_SKEW_S;
    svc->md = cfg->md;
    svc->clock = cfg->clock;
    svc->epoch = cfg->epoch;
    svc->cond = cfg->cond;
    svc->cond_arg = cfg->cond_arg;
    pthread_mutex_init(&svc->async_mu, NULL);
    pthread_cond_init(&svc->async_cv, NULL);
    for (int i = 0; i < cfg->ndrives; i++) {
        svc->drives[i].bs = cfg->drives[i].bs;
        svc->paths[i] = strdup(cfg->drives[i].path ? cfg->drives[i].path : "");
        if (!svc->paths[i])
            goto nomem;
        svc->drives[i].path = svc->paths[i];
    }
    if (nd_replay_new(ND_REPLAY_CAP, &svc->replay) != CM_OK)
        goto nomem;
    if (cfg->sync_threads >= 0 &&
        (nd_work_new(cfg->sync_threads ? cfg->sync_threads : 2, &svc->work) != CM_OK ||
         nd_work_new(cfg->read_threads > 0 ? cfg->read_threads : 4, &svc->read_work) != CM_OK))
        goto nomem;
    if (cfg->cond &&
        nd_work_new(cfg->cond_threads > 0 ? cfg->cond_threads : 8, &svc->cond_work) != CM_OK)
        goto nomem;
    *out = svc;
    return CM_OK;
nomem:
    nd_service_free(svc);
    return CM_ERR_NOMEM;
}

void nd_service_free(nd_service *svc)
{
    if (!svc)
        return;
    nd_work_free(svc->cond_work);
    nd_work_free(svc->read_work);
    nd_work_free(svc->work);
    pthread_mutex_lock(&svc->async_mu);
    while (svc->async_n > 0) /* their answers, like the pools', are scheduled on stopped loops */
        pthread_cond_wait(&svc->async_cv, &svc->async_mu);
    pthread_mutex_unlock(&svc->async_mu);
    /* Requests whose connection the grace period cut while they were busy: their completion went
     * to a loop that has stopped and will never run it (the base frees the scheduled call, not
     * its argument), and nothing else refers to them. */
    for (nd_sreq *s = svc->orphans, *next; s; s = next) {
        next = s->orph_next;
        nd_sreq_free(s);
    }
    pthread_cond_destroy(&svc->async_cv);
    pthread_mutex_destroy(&svc->async_mu);
    for (int i = 0; i < svc->ndrives; i++)
        free(svc->paths[i]);
    nd_replay_free(svc->replay);
    cm_hmac_key_release(&svc->key);
    free(svc);
}

void nd_async_begin(nd_service *svc)
{
    pthread_mutex_lock(&svc->async_mu);
    svc->async_n++;
    pthread_mutex_unlock(&svc->async_mu);
}

void nd_async_end(nd_service *svc)
{
    pthread_mutex_lock(&svc->async_mu);
    if (--svc->async_n == 0)
        pthread_cond_broadcast(&svc->async_cv);
    pthread_mutex_unlock(&svc->async_mu);
}

void nd_service_get_stats(nd_service *svc, nd_service_stats *out)
{
    out->requests = atomic_load(&svc->requests);
    out->auth_refused = atomic_load(&svc->auth_refused);
    out->digest_refused = atomic_load(&svc->digest_refused);
    out->appended = atomic_load(&svc->appended);
    out->read = atomic_load(&svc->read);
    out->warmed = atomic_load(&svc->warmed);
    out->replayed = atomic_load(&svc->replayed);
    out->replay_evicted = nd_replay_evicted(svc->replay);
}

/* ---- answers ---- */

static int status_of(cm_err e)
{
    switch (e) {
    case CM_ERR_NOTFOUND:
        return 404;
    case CM_ERR_AUTH:
        return 401;
    case CM_ERR_INVAL:
    case CM_ERR_DIGEST:
        return 400;
    case CM_ERR_CONFLICT:
    case CM_ERR_STALE:
        return 409;
    case CM_ERR_PRECONDITION:
        return 412;
    case CM_ERR_RANGE:
        return 416;
    case CM_ERR_NOSPC:
        return 507;
    case CM_ERR_UNAVAILABLE:
        return 503;
    case CM_ERR_TOOBIG:
        return 413;
    default:
        return 500;
    }
}

void nd_answer_error_ex(net_req *req, cm_err e, const char *why, const char *hname,
                        const char *hval)
{
    char body[300];
    int n = snprintf(body, sizeof(body), "%s: %s\n", cm_err_name(e), why ? why : cm_err_str(e));
    net_resp_start(req, status_of(e), n);
    net_resp_header(req, "X-Cairn-Error", cm_err_name(e));
    net_resp_header(req, "X-Cairn-Reason", why ? why : cm_err_str(e)); /* HEAD has no body */
    if (hname)
        net_resp_header(req, hname, hval);
    net_resp_header(req, "Content-Type", "text/plain");
    net_resp_write(req, body, (size_t)n);
    net_resp_end(req);
}

static void answer_error(net_req *req, cm_err e, const char *why)
{
    nd_answer_error_ex(req, e, why, NULL, NULL);
}

static void answer_size(net_req *req, int status, uint64_t size)
{
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, size);
    net_resp_start(req, status, 0);
    net_resp_header(req, "X-Cairn-Size", v);
    net_resp_end(req);
}

/* ---- parsing the target ---- */

int nd_query_u64(const char *q, const char *name, uint64_t *v)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            char *end;
            if (p[n + 1] < '0' || p[n + 1] > '9')
                return -1;
            errno = 0;
            *v = strtoull(p + n + 1, &end, 10);
            return errno == 0 && (*end == '\0' || *end == '&') ? 1 : -1; /* ERANGE: too big */
        }
    }
    return 0;
}

/* "/chunk/<drive>/<32 hex>[?query]" after the prefix. */
static cm_err parse_chunk(nd_service *svc, const char *path, nd_sreq *s, const char **query)
{
    char *end;
    if (strncmp(path, "/chunk/", 7) != 0)
        return CM_ERR_NOTFOUND;
    path += 7;
    if (*path < '0' || *path > '9')
        return CM_ERR_INVAL;
    unsigned long d = strtoul(path, &end, 10);
    if (*end != '/' || strlen(end + 1) < 32)
        return CM_ERR_INVAL;
    if (cm_hex_decode(end + 1, 32, s->id.b, sizeof(s->id.b)) != CM_OK)
        return CM_ERR_INVAL;
    const char *rest = end + 33;
    if (*rest != '\0' && *rest != '?')
        return CM_ERR_INVAL;
    *query = *rest == '?' ? rest + 1 : "";
    if (d >= (unsigned long)svc->ndrives)
        return CM_ERR_NOTFOUND;
    s->bs = svc->drives[d].bs;
    return s->bs ? CM_OK : CM_ERR_UNAVAILABLE;
}

/* ---- info ---- */

static void serve_info(nd_service *svc, net_req *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        answer_error(req, CM_ERR_NOMEM, NULL);
        return;
    }
    evbuffer_add_printf(b, "node %s\ntime %" PRId64 "\n", svc->node_id, cm_now_ms() / 1000);
    for (int i = 0; i < svc->ndrives; i++) {
        bs_stats st = {0};
        struct statvfs vfs;
        const char *state = "offline";
        uint64_t avail = 0, total = 0;
        if (svc->drives[i].bs) {
            bs_get_stats(svc->drives[i].bs, &st);
            state = bs_error(svc->drives[i].bs) == CM_OK ? "ok" : "failed";
        }
        if (svc->drives[i].path[0] && statvfs(svc->drives[i].path, &vfs) == 0) {
            avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        }
        evbuffer_add_printf(
            b, "drive %d %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i,
            state, st.blobs, st.live_bytes, st.used_bytes, avail, total);
    }
    net_resp_start(req, 200, (int64_t)evbuffer_get_length(b));
    net_resp_header(req, "Content-Type", "text/plain");
    net_resp_write_buffer(req, b);
    net_resp_end(req);
    evbuffer_free(b);
}

/* ---- append ---- */

static int parse_also(const nd_service *svc, const nd_sreq *s, const char *q, bs_store **bs);

/*
 * An append: the body goes to chunk s->id at off on s's drive, or with also= the body is n parts
 * of equal length, each appended at off to the chunk on its drive (a writer's cells of a stripe
 * on this node, docs/rpc.md "Appending several cells"), X-Cairn-Crc32c one CRC per part. Every
 * part's chunk must be off long (409 with the first one's length otherwise).
 */
static void start_append(net_req *req, nd_sreq *s, const char *query)
{
    uint64_t sync = 1, size = 0, len = (uint64_t)net_req_content_length(req);
    if (net_req_chunked(req) || !net_req_header(req, "Content-Length")) {
        answer_error(req, CM_ERR_INVAL, "an append needs a Content-Length");
        return;
    }
    int np = parse_also(s->svc, s, query, s->pbs);
    if (np < 0) {
        answer_error(req, np == -1 ? CM_ERR_INVAL : CM_ERR_UNAVAILABLE,
                     np == -1 ? "bad also" : "a drive of also is missing or offline");
        return;
    }
    if (np > 1 && (len == 0 || len % (uint64_t)np != 0)) {
        answer_error(req, CM_ERR_INVAL, "parts: a body of n equal parts");
        return;
    }
    if (!nd_parse_crcs(net_req_header(req, "X-Cairn-Crc32c"), np, s->pwant) ||
        (np > 1 && atomic_load(&s->svc->no_append_parts))) {
        answer_error(req, CM_ERR_INVAL, "an append needs X-Cairn-Crc32c (8 hex digits per part)");
        return;
    }
    if (nd_query_u64(query, "off", &s->off) < 0 || nd_query_u64(query, "sync", &sync) < 0) {
        answer_error(req, CM_ERR_INVAL, "bad off or sync");
        return;
    }
    for (int i = 0; i < np; i++) {
        cm_err e = bs_size(s->pbs[i], &s->id, &size);
        if (e == CM_ERR_NOTFOUND)
            size = 0;
        else if (e != CM_OK) {
            answer_error(req, e, NULL);
            return;
        }
        if (size != s->off) {
            char v[24];
            snprintf(v, sizeof(v), "%" PRIu64, size);
            net_resp_start(req, 409, 0);
            net_resp_header(req, "X-Cairn-Error", cm_err_name(CM_ERR_CONFLICT));
            net_resp_header(req, "X-Cairn-Size", v); /* where the writer must continue */
            net_resp_end(req);
            return;
        }
    }
    s->op = OP_APPEND;
    s->nparts = np;
    s->part = 0;
    s->start = s->off;
    s->plen = len / (uint64_t)np;
    s->sync = sync != 0;
    s->end = s->off + s->plen;
    net_req_read_body(req);
}

/* Chains one piece may span: the net server reads bodies in 64 KiB steps (net_conn.c), so a
 * piece of ND_PIECE takes 5 at most; more (a body read in small bits) are pulled up first. */
#define APPEND_IOV 16

cm_err nd_append_front(bs_store *bs, const bs_id *id, uint64_t off, struct evbuffer *buf, size_t n,
                       uint32_t *crc)
{
    struct evbuffer_iovec v[APPEND_IOV];
    int nv = evbuffer_peek(buf, (ev_ssize_t)n, NULL, v, APPEND_IOV);
    if (nv > APPEND_IOV) {
        v[0].iov_base = evbuffer_pullup(buf, (ev_ssize_t)n);
        v[0].iov_len = n;
        nv = 1;
        if (!v[0].iov_base)
            return CM_ERR_NOMEM;
    }
    size_t left = n;
    for (int i = 0; i < nv; i++) { /* the last chain may hold more than the piece */
        v[i].iov_len = CM_MIN(v[i].iov_len, left);
        left -= v[i].iov_len;
        *crc = cm_crc32c(*crc, v[i].iov_base, v[i].iov_len);
    }
    /* evbuffer_iovec has struct iovec's layout (libevent's buffer.h) */
    return bs_appendv(bs, id, off, (const struct iovec *)v, nv);
}

/* Append n bytes from the front of body to the part being appended (n stays within it). */
static void append_piece(nd_sreq *s, struct evbuffer *body, size_t n)
{
    if (s->err == CM_OK) {
        s->err = nd_append_front(s->pbs[s->part], &s->id, s->off, body, n, &s->pcrc[s->part]);
        if (s->err == CM_OK) {
            s->off += n;
            atomic_fetch_add(&s->svc->appended, n);
        }
    }
    evbuffer_drain(body, n);
    if (s->off == s->end && s->part + 1 < s->nparts) { /* the next part starts over at start */
        s->part++;
        s->off = s->start;
    }
}

static void on_body(net_req *req, struct evbuffer *body, void *arg)
{
    nd_sreq *s = net_req_data(req);
    (void)arg;
    if (s && s->op == OP_META) {
        nd_meta_body(s, body);
        return;
    }
    if (!s || s->op != OP_APPEND)
        return;
    /* small pieces wait for more, except a part's last one and the body's last one */
    int last = net_req_body_received(req) == (uint64_t)net_req_content_length(req);
    for (;;) {
        size_t have = evbuffer_get_length(body), room = (size_t)(s->end - s->off);
        if (have == 0 || (have < ND_APPEND_MIN && have < room && !last))
            break;
        append_piece(s, body, CM_MIN(CM_MIN(have, room), (size_t)ND_PIECE));
    }
}

static void on_body_end(net_req *req, void *arg)
{
    nd_sreq *s = net_req_data(req);
    (void)arg;
    if (s && s->op == OP_META) {
        nd_meta_body_end(s);
        return;
    }
    if (!s || s->op != OP_APPEND)
        return;
    cm_err e = s->err;
    if (e == CM_OK && (s->off != s->end || s->part + 1 != s->nparts))
        e = CM_ERR_INTERNAL; /* on_body takes the last bytes when they arrive: cannot happen */
    for (int i = 0; e == CM_OK && i < s->nparts; i++)
        if (s->pcrc[i] != s->pwant[i]) {
            atomic_fetch_add(&s->svc->digest_refused, 1);
            CM_WARN(MOD, "peer=%s append refused: part %d's CRC32C %08x, header says %08x",
                    net_req_peer(req), i, s->pcrc[i], s->pwant[i]);
            nd_sreq_submit(s, JOB_DROP);
            return;
        }
    if (e == CM_OK && s->sync) {
        nd_sreq_submit(s, JOB_SYNC);
        return;
    }
    if (e != CM_OK)
        answer_error(req, e, NULL);
    else
        answer_size(req, 200, s->off);
}

/* Worker: read each part's range (ND_PIECE at a time, into a buffer of this thread's pool) so
 * the page cache holds it when the loop sends it; the first failure. */
static cm_err warm(nd_sreq *s)
{
    uint8_t *buf = cm_bufpool_take(ND_PIECE);
    if (!buf)
        return CM_OK; /* the loop reads it then */
    cm_err e = CM_OK;
    uint64_t end = s->start + s->plen;
    for (int i = 0; e == CM_OK && i < s->nparts; i++)
        for (uint64_t at = s->start; e == CM_OK && at < end; at += ND_PIECE)
            e = bs_read(s->pbs[i], &s->id, at, buf, (size_t)CM_MIN(ND_PIECE, end - at));
    cm_bufpool_put(buf, ND_PIECE);
    return e;
}

/* On a worker (or inline): the durability step, on each part's drive for an append; or a cold
 * read's warm-up (JOB_WARM). */
static void run_job(nd_job *j)
{
    nd_sreq *s = SREQ_OF(j);
    if (s->job == JOB_WARM) {
        s->err = warm(s);
        return;
    }
    cm_err e = CM_OK;
    int n = s->op == OP_APPEND ? s->nparts : 1;
    bs_store **bs = s->op == OP_APPEND ? s->pbs : &s->bs;
    for (int i = 0; e == CM_OK && i < n; i++) {
        if (s->job != JOB_SYNC)
            e = bs_delete(bs[i], &s->id);
        if (e == CM_OK)
            e = bs_sync(bs[i]);
    }
    s->err = e;
}

int nd_sreq_returned(nd_sreq *s)
{
    s->busy = 0;
    if (!s->orphaned)
        return 0;
    nd_service *svc = s->svc;
    pthread_mutex_lock(&svc->async_mu);
    if (s->orph_prev)
        s->orph_prev->orph_next = s->orph_next;
    else
        svc->orphans = s->orph_next;
    if (s->orph_next)
        s->orph_next->orph_prev = s->orph_prev;
    pthread_mutex_unlock(&svc->async_mu);
    nd_sreq_free(s);
    return 1;
}

static void read_warmed(nd_sreq *s);

/* Back on the request's loop: answer, or free a request whose connection closed meanwhile. */
static void job_done(nd_job *j)
{
    nd_sreq *s = SREQ_OF(j);
    if (s->replay) /* remembered whether or not its caller still waits (a retry will ask) */
        nd_replay_end(s->svc->replay, s->nonce, s->err);
    if (nd_sreq_returned(s))
        return;
    if (s->job == JOB_WARM)
        read_warmed(s);
    else if (s->job == JOB_DROP)
        answer_error(s->req, CM_ERR_DIGEST, "body CRC32C does not match X-Cairn-Crc32c");
    else if (s->err != CM_OK)
        answer_error(s->req, s->err, NULL);
    else
        answer_size(s->req, 200, s->job == JOB_SYNC ? s->off : 0);
}

static void submit_to(nd_sreq *s, nd_work *pool, int job)
{
    s->job = job;
    s->work.run = run_job;
    s->work.done = job_done;
    s->work.base = net_req_base(s->req);
    s->busy = pool != NULL;
    nd_work_submit(pool, &s->work);
}

void nd_sreq_submit(nd_sreq *s, int job)
{
    submit_to(s, s->svc->work, job);
}

/* ---- read ---- */

/*
 * The next piece of the range (n bytes at s->off) into a new evbuffer *out, by reference to a
 * buffer of this loop's pool that the evbuffer gives back once the socket took it (cm_bufpool.h:
 * a fresh 256 KiB buffer per piece was an mmap and 64 page faults per cell served); its CRC32C
 * into *crc when crc is not NULL.
 */
static cm_err read_piece(nd_sreq *s, size_t n, struct evbuffer **out, uint32_t *crc)
{
    struct evbuffer *b = evbuffer_new();
    void *buf = b ? cm_bufpool_take(ND_PIECE) : NULL;
    cm_err e = buf ? bs_read(s->bs, &s->id, s->off, buf, n) : CM_ERR_NOMEM;
    if (e == CM_OK && crc)
        *crc = cm_crc32c(0, buf, n);
    if (e == CM_OK &&
        evbuffer_add_reference(b, buf, n, cm_bufpool_cleanup, (void *)(uintptr_t)ND_PIECE) != 0)
        e = CM_ERR_NOMEM;
    if (e != CM_OK) {
        cm_bufpool_put(buf, ND_PIECE);
        if (b)
            evbuffer_free(b);
        return e;
    }
    *out = b;
    return CM_OK;
}

/* Read the next piece of the range into the response. */
static cm_err send_piece(net_req *req, nd_sreq *s)
{
    size_t n = (size_t)CM_MIN(s->end - s->off, (uint64_t)ND_PIECE);
    struct evbuffer *b;
    cm_err e = read_piece(s, n, &b, NULL);
    if (e != CM_OK)
        return e;
    net_resp_write_buffer(req, b);
    evbuffer_free(b);
    s->off += n;
    atomic_fetch_add(&s->svc->read, n);
    return CM_OK;
}

/*
 * A read of a chunk this drive does not have: a reader asks only for cells a record names, so
 * this is worth a line in the log, saying whether the chunk was deleted here lately and when (a
 * GET cut short "not found" is then matched with whoever deleted it; docs/chunks.md, "A GET and a
 * concurrent heal"); the reason goes back to the reader too.
 */
static void read_missing(net_req *req, const nd_sreq *s)
{
    char hex[33], why[96];
    int64_t ago = 0;
    bs_id_hex(&s->id, hex);
    if (bs_deleted_ago(s->bs, &s->id, &ago))
        snprintf(why, sizeof(why), "no such chunk: deleted here %lld ms ago", (long long)ago);
    else
        snprintf(why, sizeof(why), "no such chunk: not among this drive's last deletes");
    CM_WARN(MOD, "peer=%s read of chunk %s: %s", net_req_peer(req), hex, why);
    answer_error(req, CM_ERR_NOTFOUND, why);
}

/* The spans' bytes to the response by sendfile (their descriptors are the response's then).
 * -1 when out of memory: the request is aborted and every descriptor closed. */
static int queue_spans(net_req *req, const bs_span *sp, size_t n)
{
    size_t i = 0;
    while (i < n && net_resp_write_file(req, sp[i].fd, sp[i].pos, sp[i].len) == 0)
        i++;
    if (i == n)
        return 0;
    while (++i < n) /* the failed one's descriptor is closed, the rest are ours */
        close(sp[i].fd);
    CM_WARN(MOD, "peer=%s read: cannot queue the chunk's bytes", net_req_peer(req));
    net_req_abort(req);
    return -1;
}

/*
 * A read of up to ND_WARM_MAX in all whose pages (on any of the n drives) the page cache does
 * not hold: a worker reads it first (JOB_WARM), and read_warmed answers it from the cache, so
 * the loop, which sends it by sendfile or reads it here, does not wait on the disk. 1 when the
 * job was submitted (the request is the worker's now).
 */
static int warm_first(nd_sreq *s, bs_store **bs, int n, uint64_t len)
{
    if (s->warmed || len > ND_WARM_MAX / (uint64_t)n || !s->svc->read_work)
        return 0;
    int cold = 0;
    for (int i = 0; i < n && !cold; i++)
        cold = !bs_cached(bs[i], &s->id, s->off, len);
    if (!cold)
        return 0;
    for (int i = 0; i < n; i++)
        s->pbs[i] = bs[i];
    s->nparts = n, s->start = s->off, s->plen = len;
    atomic_fetch_add(&s->svc->warmed, 1);
    submit_to(s, s->svc->read_work, JOB_WARM);
    return 1;
}

static void close_spans(const bs_span *sp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(sp[i].fd);
}

/*
 * Answer the range [s->off, s->end) by sendfile from the segment files (the file-top comment
 * says why and what checks it). 0 when the range is not for this (more records than ND_SPANS, a
 * store not on plain files, no descriptor to spare): start_read reads it instead. size: the
 * chunk's, for X-Cairn-Size.
 */
static int send_spans(net_req *req, nd_sreq *s, const char *size)
{
    bs_span sp[ND_SPANS];
    size_t n;
    uint32_t sum;
    uint64_t len = s->end - s->off;
    cm_err e = bs_read_spans(s->bs, &s->id, s->off, len, sp, ND_SPANS, &n, &sum);
    if (e == CM_ERR_TOOBIG || e == CM_ERR_UNSUPPORTED || e == CM_AGAIN)
        return 0;
    if (e == CM_ERR_NOTFOUND) /* deleted since start_read's size: say when, as there */
        read_missing(req, s);
    else if (e != CM_OK)
        answer_error(req, e, NULL);
    if (e != CM_OK)
        return 1;
    char crc[9];
    snprintf(crc, sizeof(crc), "%08" PRIx32, sum);
    net_resp_start(req, 200, (int64_t)len);
    net_resp_header(req, "X-Cairn-Size", size);
    net_resp_header(req, "X-Cairn-Crc32c", crc);
    net_resp_header(req, "X-Cairn-Verify", "reader"); /* not read here: a mismatch is rot */
    net_resp_header(req, "Content-Type", "application/octet-stream");
    if (queue_spans(req, sp, n) != 0)
        return 1;
    s->off = s->end;
    atomic_fetch_add(&s->svc->read, len);
    net_resp_end(req);
    return 1;
}

/*
 * "also=D[,D...]" in a read's query: the other drives of this node whose chunk s->id holds the
 * same range (a node's cells of one stripe: one call for them all, docs/rpc.md "Reading several
 * cells"). bs[0] is s's drive, then one store per drive named, distinct. The number of parts (1:
 * no also), -1 for a malformed list, -2 for a drive that does not exist or is offline.
 */
static int parse_also(const nd_service *svc, const nd_sreq *s, const char *q, bs_store **bs)
{
    const char *p = NULL;
    for (const char *a = q; a && *a && !p; a = strchr(a, '&') ? strchr(a, '&') + 1 : NULL)
        if (strncmp(a, "also=", 5) == 0)
            p = a + 5;
    int n = 0;
    bs[n++] = s->bs;
    while (p) {
        char *end;
        if (*p < '0' || *p > '9' || n == ND_READ_PARTS)
            return -1;
        unsigned long d = strtoul(p, &end, 10);
        if (d >= (unsigned long)svc->ndrives || !svc->drives[d].bs)
            return -2;
        for (int i = 0; i < n; i++)
            if (bs[i] == svc->drives[d].bs)
                return -1;
        bs[n++] = svc->drives[d].bs;
        if (*end != ',' && *end != '&' && *end != '\0')
            return -1;
        p = *end == ',' ? end + 1 : NULL;
    }
    return n;
}

/*
 * A read of [s->off, s->off + len) of chunk s->id on n drives (bs): the parts back to back,
 * X-Cairn-Parts: n and X-Cairn-Crc32c: one CRC per part, comma-separated. All or nothing: a part
 * missing, short or unreadable answers the call's error (the reader then asks the cells one by
 * one, which says which). Sent by sendfile as a single range is (X-Cairn-Verify: reader), or,
 * on TLS or when a part cannot be, read here, each part whole (n x len <= ND_READ_PARTS_BYTES).
 */
static void read_parts(net_req *req, nd_sreq *s, bs_store **bs, int n, uint64_t len)
{
    uint32_t crc[ND_READ_PARTS];
    struct evbuffer *b[ND_READ_PARTS] = {NULL};
    bs_span sp[ND_SPANS];
    size_t used = 0;
    uint64_t size = 0;
    cm_err e = CM_OK;
    if (len == 0 || len == UINT64_MAX || len > ND_READ_PARTS_BYTES / (uint64_t)n) {
        answer_error(req, CM_ERR_INVAL, "parts: a length, at most ND_READ_PARTS_BYTES in all");
        return;
    }
    for (int i = 0; i < n && e == CM_OK; i++) {
        uint64_t sz = 0;
        s->bs = bs[i]; /* a missing part's drive, for read_missing */
        e = bs_size(bs[i], &s->id, &sz);
        if (e == CM_OK && (s->off > sz || len > sz - s->off))
            e = CM_ERR_RANGE;
        size = i == 0 ? sz : size;
    }
    if (e == CM_OK && warm_first(s, bs, n, len))
        return;
    int spans = !net_req_tls(req);
    for (int i = 0; e == CM_OK && spans && i < n; i++) {
        size_t k = 0;
        s->bs = bs[i];
        e = bs_read_spans(bs[i], &s->id, s->off, len, sp + used, ND_SPANS - used, &k, &crc[i]);
        used += k;
        if (e == CM_ERR_TOOBIG || e == CM_ERR_UNSUPPORTED || e == CM_AGAIN) {
            spans = 0; /* read them all instead */
            e = CM_OK;
        }
        if (!spans || e != CM_OK) {
            close_spans(sp, used);
            used = 0;
        }
    }
    for (int i = 0; e == CM_OK && !spans && i < n; i++) {
        s->bs = bs[i];
        e = read_piece(s, (size_t)len, &b[i], &crc[i]);
    }
    if (e != CM_OK) {
        for (int i = 0; i < n; i++)
            if (b[i])
                evbuffer_free(b[i]);
        if (e == CM_ERR_NOTFOUND)
            read_missing(req, s);
        else
            answer_error(req, e, e == CM_ERR_RANGE ? "range beyond a part's end" : NULL);
        return;
    }
    char v[24], np[12], crcs[ND_READ_PARTS * 9];
    size_t at = 0;
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(crcs + at, sizeof(crcs) - at, "%s%08" PRIx32, i ? "," : "", crc[i]);
    snprintf(v, sizeof(v), "%" PRIu64, size);
    snprintf(np, sizeof(np), "%d", n);
    net_resp_start(req, 200, (int64_t)(len * (uint64_t)n));
    net_resp_header(req, "X-Cairn-Size", v);
    net_resp_header(req, "X-Cairn-Parts", np);
    net_resp_header(req, "X-Cairn-Crc32c", crcs);
    if (spans)
        net_resp_header(req, "X-Cairn-Verify", "reader");
    net_resp_header(req, "Content-Type", "application/octet-stream");
    if (spans && queue_spans(req, sp, used) != 0)
        return;
    for (int i = 0; i < n; i++)
        if (b[i]) {
            net_resp_write_buffer(req, b[i]);
            evbuffer_free(b[i]);
        }
    atomic_fetch_add(&s->svc->read, len * (uint64_t)n);
    net_resp_end(req);
}

static void read_range(net_req *req, nd_sreq *s, uint64_t len);

static void start_read(net_req *req, nd_sreq *s, const char *query)
{
    uint64_t len = UINT64_MAX;
    bs_store *parts[ND_READ_PARTS];
    if (nd_query_u64(query, "off", &s->off) < 0 || nd_query_u64(query, "len", &len) < 0) {
        answer_error(req, CM_ERR_INVAL, "bad off or len");
        return;
    }
    int np = parse_also(s->svc, s, query, parts);
    if (np < 0) {
        answer_error(req, np == -1 ? CM_ERR_INVAL : CM_ERR_UNAVAILABLE,
                     np == -1 ? "bad also" : "a drive of also is missing or offline");
        return;
    }
    if (np > 1)
        read_parts(req, s, parts, np, len);
    else
        read_range(req, s, len);
}

/* JOB_WARM's end, on the loop: rot or a failed read found by the worker is the answer (logged
 * there); otherwise the read starts again, now from the cache (a chunk deleted meanwhile is
 * found missing as usual). */
static void read_warmed(nd_sreq *s)
{
    s->warmed = 1;
    s->off = s->start;
    if (s->err == CM_ERR_CORRUPT || s->err == CM_ERR_IO) {
        answer_error(s->req, s->err, NULL);
        return;
    }
    s->err = CM_OK;
    if (s->nparts > 1)
        read_parts(s->req, s, s->pbs, s->nparts, s->plen);
    else
        read_range(s->req, s, s->rlen);
}

/* A read of [s->off, s->off + len) of s's chunk (len UINT64_MAX: to its end). */
static void read_range(net_req *req, nd_sreq *s, uint64_t len)
{
    s->rlen = len;
    cm_err e = bs_size(s->bs, &s->id, &s->size);
    if (e == CM_ERR_NOTFOUND) {
        read_missing(req, s);
        return;
    }
    if (e != CM_OK) {
        answer_error(req, e, NULL);
        return;
    }
    if (s->off > s->size || (len != UINT64_MAX && len > s->size - s->off)) {
        answer_error(req, CM_ERR_RANGE, "range beyond the chunk's end");
        return;
    }
    s->end = len == UINT64_MAX ? s->size : s->off + len;
    s->op = OP_READ;
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, s->size);
    if (s->end == s->off) {
        answer_size(req, 200, s->size);
        return;
    }
    if (warm_first(s, &s->bs, 1, s->end - s->off))
        return;
    if (!net_req_tls(req) && send_spans(req, s, v))
        return;
    /* the first piece before the status line: a corrupt or unreadable chunk gets a clean error */
    struct evbuffer *first;
    size_t n = (size_t)CM_MIN(s->end - s->off, (uint64_t)ND_PIECE);
    uint32_t sum;
    int whole = s->off + n == s->end; /* the whole range is here: its CRC32C goes with it */
    e = read_piece(s, n, &first, whole ? &sum : NULL);
    if (e == CM_ERR_NOTFOUND) { /* deleted since its size was read */
        read_missing(req, s);
        return;
    }
    if (e != CM_OK) {
        answer_error(req, e, NULL);
        return;
    }
    net_resp_start(req, 200, (int64_t)(s->end - s->off));
    net_resp_header(req, "X-Cairn-Size", v);
    if (whole) {
        char crc[9];
        snprintf(crc, sizeof(crc), "%08" PRIx32, sum);
        net_resp_header(req, "X-Cairn-Crc32c", crc);
    }
    net_resp_header(req, "Content-Type", "application/octet-stream");
    net_resp_write_buffer(req, first);
    evbuffer_free(first);
    s->off += n;
    atomic_fetch_add(&s->svc->read, n);
    if (s->off == s->end)
        net_resp_end(req);
}

static void on_drain(net_req *req, void *arg)
{
    nd_sreq *s = net_req_data(req);
    (void)arg;
    if (!s || s->op != OP_READ || s->off >= s->end)
        return;
    while (s->off < s->end && net_resp_pending(req) < ND_PIECE) {
        cm_err e = send_piece(req, s);
        if (e != CM_OK) {
            CM_WARN(MOD, "peer=%s read failed mid-stream at %" PRIu64 ": %s", net_req_peer(req),
                    s->off, cm_err_name(e));
            net_req_abort(req);
            return;
        }
    }
    if (s->off == s->end)
        net_resp_end(req);
}

/* ---- list ---- */

/* GET /list/<drive>[?after=<32 hex>][&max=N][&age=1]: a page of the drive's chunks in id order,
 * one "<id> <length>" line each ("<id> <length> <age seconds>" with age=1); X-Cairn-More: 1 when
 * the page is full (ask again after its last id). */
static void serve_list(nd_service *svc, net_req *req, const char *path)
{
    char *end;
    const char *q = strchr(path, '?'), *after = q ? strstr(q, "after=") : NULL;
    uint64_t max = ND_LIST_MAX, aged = 0;
    bs_id from, *ids = NULL;
    uint64_t *sizes = NULL;
    int64_t *ages = NULL;
    size_t n = 0;
    if (*path < '0' || *path > '9') {
        answer_error(req, CM_ERR_INVAL, "bad list path");
        return;
    }
    unsigned long d = strtoul(path, &end, 10);
    if ((*end != '\0' && *end != '?') || (q && nd_query_u64(q + 1, "max", &max) < 0) || max == 0 ||
        (q && nd_query_u64(q + 1, "age", &aged) < 0) || aged > 1 ||
        (after && (strlen(after + 6) < 32 || cm_hex_decode(after + 6, 32, from.b, 16) != CM_OK))) {
        answer_error(req, CM_ERR_INVAL, "bad list query");
        return;
    }
    if (d >= (unsigned long)svc->ndrives) {
        answer_error(req, CM_ERR_NOTFOUND, "no such drive");
        return;
    }
    if (!svc->drives[d].bs) {
        answer_error(req, CM_ERR_UNAVAILABLE, "drive offline");
        return;
    }
    max = CM_MIN(max, (uint64_t)(aged ? ND_LIST_AGED_MAX : ND_LIST_MAX));
    struct evbuffer *b = evbuffer_new();
    ids = malloc(max * sizeof(*ids));
    sizes = malloc(max * sizeof(*sizes));
    ages = aged ? malloc(max * sizeof(*ages)) : NULL;
    cm_err e = b && ids && sizes && (ages || !aged) ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK)
        e = bs_list_aged(svc->drives[d].bs, after ? &from : NULL, ids, sizes, ages, (size_t)max,
                         &n);
    for (size_t i = 0; e == CM_OK && i < n; i++) {
        char hex[33];
        bs_id_hex(&ids[i], hex);
        if (aged)
            evbuffer_add_printf(b, "%s %" PRIu64 " %" PRId64 "\n", hex, sizes[i], ages[i]);
        else
            evbuffer_add_printf(b, "%s %" PRIu64 "\n", hex, sizes[i]);
    }
    free(ids);
    free(sizes);
    free(ages);
    if (e != CM_OK) {
        if (b)
            evbuffer_free(b);
        answer_error(req, e, NULL);
        return;
    }
    net_resp_start(req, 200, (int64_t)evbuffer_get_length(b));
    net_resp_header(req, "Content-Type", "text/plain");
    net_resp_header(req, "X-Cairn-More", n == max ? "1" : "0");
    net_resp_write_buffer(req, b);
    net_resp_end(req);
    evbuffer_free(b);
}

/* ---- dispatch ---- */

/*
 * A chunk DELETE or a conditional write whose nonce ran before (a replay of captured traffic, or
 * the client's retry of a call whose answer it lost) is answered as its first run was, or 503
 * while that still runs, and not run again: a DELETE's chunk may have been written back since (a
 * heal), a conditional write's key deleted and its condition true again. 1 when answered. A new
 * one is remembered (s->replay) until its signature's date passes out of the allowed skew; its
 * run's end records its result (job_done, nd_meta.c meta_done).
 */
int nd_replayed(nd_service *svc, net_req *req, nd_sreq *s)
{
    const char *nonce = net_req_header(req, "X-Cairn-Nonce");
    const char *date = net_req_header(req, "X-Cairn-Date");
    cm_err e = CM_OK;
    if (!nonce || !date || cm_hex_decode(nonce, 32, s->nonce, 16) != CM_OK)
        return 0; /* nd_auth_check let nothing else through */
    int64_t now = cm_now_ms() / 1000;
    int st =
        nd_replay_begin(svc->replay, s->nonce, strtoll(date, NULL, 10) + svc->max_skew_s, now, &e);
    if (st == ND_REPLAY_NEW) {
        s->replay = 1;
        return 0;
    }
    atomic_fetch_add(&svc->replayed, 1);
    CM_WARN(MOD, "peer=%s %s %s: nonce seen before (a replay or a retry): %s", net_req_peer(req),
            net_req_method(req), net_req_target(req),
            st == ND_REPLAY_RUNNING ? "still running" : "answered as its first run");
    if (st == ND_REPLAY_RUNNING)
        answer_error(req, CM_ERR_UNAVAILABLE, "the same call is still running");
    else if (e != CM_OK)
        answer_error(req, e, NULL);
    else
        answer_size(req, 200, 0);
    return 1;
}

static void serve_chunk(nd_service *svc, net_req *req, nd_sreq *s, const char *path)
{
    const char *m = net_req_method(req), *query = "";
    uint64_t size = 0;
    cm_err e = parse_chunk(svc, path, s, &query);
    if (e != CM_OK) {
        answer_error(req, e, e == CM_ERR_UNAVAILABLE ? "drive offline" : "no such chunk path");
        return;
    }
    if (strcmp(m, "PUT") == 0) {
        start_append(req, s, query);
    } else if (strcmp(m, "GET") == 0) {
        start_read(req, s, query);
    } else if (strcmp(m, "HEAD") == 0) {
        e = bs_size(s->bs, &s->id, &size);
        if (e == CM_OK)
            answer_size(req, 200, size);
        else
            answer_error(req, e, NULL);
    } else if (strcmp(m, "DELETE") == 0) {
        if (nd_replayed(svc, req, s))
            return;
        s->op = OP_DELETE;
        nd_sreq_submit(s, JOB_DELETE);
    } else {
        answer_error(req, CM_ERR_UNSUPPORTED, "method not allowed on a chunk");
    }
}

static void on_request(net_req *req, void *arg)
{
    nd_service *svc = arg;
    const char *target = net_req_target(req), *why;
    atomic_fetch_add(&svc->requests, 1);
    if (strncmp(target, ND_PREFIX "/", strlen(ND_PREFIX) + 1) != 0) {
        answer_error(req, CM_ERR_NOTFOUND, "not an RPC path");
        return;
    }
    if (nd_auth_check(&svc->key, svc->max_skew_s, cm_now_ms() / 1000, svc->node_id, req, &why) !=
        CM_OK) {
        atomic_fetch_add(&svc->auth_refused, 1);
        CM_WARN(MOD, "peer=%s %s %s refused: %s", net_req_peer(req), net_req_method(req), target,
                why);
        answer_error(req, CM_ERR_AUTH, why);
        return;
    }
    const char *path = target + strlen(ND_PREFIX);
    if (strcmp(path, "/info") == 0 && strcmp(net_req_method(req), "GET") == 0) {
        serve_info(svc, req);
        return;
    }
    if (strncmp(path, "/list/", 6) == 0 && strcmp(net_req_method(req), "GET") == 0) {
        serve_list(svc, req, path + 6);
        return;
    }
    nd_sreq *s = calloc(1, sizeof(*s));
    if (!s) {
        answer_error(req, CM_ERR_NOMEM, NULL);
        return;
    }
    s->svc = svc;
    s->req = req;
    s->op = OP_NONE;
    net_req_set_data(req, s);
    if (strncmp(path, "/meta/", 6) == 0)
        nd_meta_serve(svc, req, s, path + 6);
    else if (strncmp(path, "/cond/", 6) == 0)
        nd_cond_serve(svc, req, s, path + 6);
    else
        serve_chunk(svc, req, s, path);
}

static void on_done(net_req *req, int aborted, void *arg)
{
    nd_sreq *s = net_req_data(req);
    (void)aborted;
    (void)arg;
    if (!s || !s->busy) {
        nd_sreq_free(s);
        return;
    }
    nd_service *svc = s->svc; /* a worker holds it: the completion frees it (nd_sreq_returned) */
    s->orphaned = 1;
    pthread_mutex_lock(&svc->async_mu);
    s->orph_prev = NULL;
    s->orph_next = svc->orphans;
    if (svc->orphans)
        svc->orphans->orph_prev = s;
    svc->orphans = s;
    pthread_mutex_unlock(&svc->async_mu);
}

void nd_sreq_free(nd_sreq *s)
{
    if (s && s->meta)
        nd_meta_free(s->meta);
    free(s);
}

const net_handler nd_service_handler = {
    .on_request = on_request,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_drain = on_drain,
    .on_done = on_done,
};
