/*
 * gw_md5.c - each event loop's MD5 batch: the ETags of the bodies a loop is receiving, hashed
 * together in the SIMD lanes of common/cm_md5.c rather than one after the other.
 *
 * MD5 was the largest single cost of a large PUT (docs/performance.md, "Eighth session"): one
 * stream runs at the latency of its dependency chain, and the lanes that would take the other
 * streams sit idle. A loop sees several bodies' bytes in one turn (epoll reports every connection
 * that has data), so on_body hands each plain data body's bytes to the sink as before (the one
 * copy into the stripe; SHA-256 and the x-amz-checksum as before) but leaves them in the body
 * buffer unhashed and undrained, pauses the body (net_req_pause_body: no more on_body, no
 * on_body_end, and the buffer is not touched, so the bytes stay where they are), and puts the
 * request on this loop's batch. The batch runs once per turn (an event made active with the
 * first request, after the read events already pending), hashes every request's bytes in one
 * cm_md5_update_many, drains them and resumes each body (unless it waits for writer room, which
 * room_ready then resumes). The bytes a body's MD5 sees are in body order: on_body is not called
 * again for a request before its deferred bytes are hashed.
 *
 * Lifetime: a request that ends (on_done) with bytes deferred is taken off the batch first; one
 * that failed meanwhile (an error response) has its bytes dropped unhashed. The batch of a thread
 * is reached through a pthread key and freed when the thread exits; its event is a one-shot
 * (event_base_once) that the loop frees if it never runs.
 *
 * Threading: each loop thread has its own batch; nothing is shared.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
    gw_req **r; /* requests with bytes deferred, in the order they came */
    size_t n, cap;
    int scheduled;              /* the batch's event is active on this thread's loop */
    cm_md5_job *jobs;           /* one per segment of deferred bytes */
    struct evbuffer_iovec *vec; /* the segments, each request's back to back */
    size_t cap_jobs;
} md5_batch;

static pthread_key_t batch_key;
static pthread_once_t batch_once = PTHREAD_ONCE_INIT;
static int batch_key_ok;

static void batch_destroy(void *arg)
{
    md5_batch *b = arg;
    free(b->r);
    free(b->jobs);
    free(b->vec);
    free(b);
}

static void batch_key_init(void)
{
    batch_key_ok = pthread_key_create(&batch_key, batch_destroy) == 0;
}

static md5_batch *batch_get(void)
{
    pthread_once(&batch_once, batch_key_init);
    if (!batch_key_ok)
        return NULL;
    md5_batch *b = pthread_getspecific(batch_key);
    if (!b && (b = calloc(1, sizeof(*b))) && pthread_setspecific(batch_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

int gw_md5_batched(const gw_req *r)
{
    return r->sink == GW_SINK_DATA && r->md5.simd;
}

/* Hash r's deferred bytes alone and drain them (the batch could not take r). */
static void hash_now(gw_req *r, struct evbuffer *buf, size_t n)
{
    struct evbuffer_iovec vec[16];
    while (n > 0) {
        int nv = evbuffer_peek(buf, (ev_ssize_t)n, NULL, vec, 16);
        size_t done = 0;
        for (int i = 0; i < nv && i < 16; i++) {
            size_t k = vec[i].iov_len < n - done ? vec[i].iov_len : n - done;
            cm_md5_update(&r->md5, vec[i].iov_base, k);
            done += k;
        }
        if (done == 0)
            break;
        evbuffer_drain(buf, done);
        n -= done;
    }
}

/* The jobs of every deferred request: its segments, taken in turns across requests (one from
 * each, then the next of each) so that the kernel's windows hold several contexts. Returns how
 * many, or -1 when memory ran out. */
static int batch_jobs(md5_batch *b)
{
    size_t total = 0, most = 0;
    for (size_t i = 0; i < b->n; i++) {
        gw_req *r = b->r[i];
        size_t k = r->failed ? 0
                             : (size_t)evbuffer_peek(r->md5_buf, (ev_ssize_t)r->md5_unhashed, NULL,
                                                     NULL, 0);
        r->md5_nseg = k;
        total += k;
        most = k > most ? k : most;
    }
    if (total > b->cap_jobs) {
        cm_md5_job *j = realloc(b->jobs, total * sizeof(*j));
        struct evbuffer_iovec *v = realloc(b->vec, total * sizeof(*v));
        if (j)
            b->jobs = j;
        if (v)
            b->vec = v;
        if (!j || !v)
            return -1;
        b->cap_jobs = total;
    }
    size_t at = 0;
    for (size_t i = 0; i < b->n; i++) { /* each request's segments, back to back */
        gw_req *r = b->r[i];
        r->md5_seg = at;
        if (!r->md5_nseg)
            continue;
        evbuffer_peek(r->md5_buf, (ev_ssize_t)r->md5_unhashed, NULL, b->vec + at, (int)r->md5_nseg);
        size_t last = at + r->md5_nseg - 1, before = 0;
        for (size_t s = at; s < last; s++)
            before += b->vec[s].iov_len;
        b->vec[last].iov_len = r->md5_unhashed - before; /* the last one only partly */
        at += r->md5_nseg;
    }
    size_t nj = 0;
    for (size_t turn = 0; turn < most; turn++) {
        for (size_t i = 0; i < b->n; i++) {
            gw_req *r = b->r[i];
            if (turn >= r->md5_nseg)
                continue;
            const struct evbuffer_iovec *v = &b->vec[r->md5_seg + turn];
            b->jobs[nj].m = &r->md5;
            b->jobs[nj].p = v->iov_base;
            b->jobs[nj].n = v->iov_len;
            nj++;
        }
    }
    return (int)nj;
}

static void batch_run(evutil_socket_t fd, short what, void *arg)
{
    md5_batch *b = arg;
    (void)fd;
    (void)what;
    b->scheduled = 0;
    int nj = batch_jobs(b);
    if (nj > 0)
        cm_md5_update_many(b->jobs, nj);
    /* Take the list first: resuming can bring on_body, which may defer into a new batch. */
    size_t n = b->n;
    gw_req **list = b->r;
    b->r = NULL;
    b->n = b->cap = 0;
    for (size_t i = 0; i < n; i++) {
        gw_req *r = list[i];
        if (nj < 0 && !r->failed)
            hash_now(r, r->md5_buf, r->md5_unhashed);
        else
            evbuffer_drain(r->md5_buf, r->md5_unhashed);
        r->md5_wait = 0;
        r->md5_unhashed = 0;
        r->md5_buf = NULL;
        if (!r->room_wait)
            net_req_resume_body(r->net);
    }
    free(list);
}

void gw_md5_defer(gw_req *r, struct evbuffer *buf, size_t n)
{
    md5_batch *b = batch_get();
    if (b && b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        gw_req **l = realloc(b->r, cap * sizeof(*l));
        if (l) {
            b->r = l;
            b->cap = cap;
        }
    }
    if (!b || b->n == b->cap ||
        (!b->scheduled &&
         event_base_once(net_req_base(r->net), -1, EV_TIMEOUT, batch_run, b, NULL) != 0)) {
        hash_now(r, buf, n);
        return;
    }
    b->scheduled = 1;
    b->r[b->n++] = r;
    r->md5_wait = 1;
    r->md5_unhashed = n;
    r->md5_buf = buf;
    net_req_pause_body(r->net);
}

void gw_md5_forget(gw_req *r)
{
    md5_batch *b = batch_get();
    for (size_t i = 0; b && i < b->n; i++) {
        if (b->r[i] == r) {
            b->r[i] = b->r[--b->n];
            break;
        }
    }
    r->md5_wait = 0;
    r->md5_buf = NULL;
}
