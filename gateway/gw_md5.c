/*
 * gw_md5.c - the process's MD5 batch: the ETags of the bodies the event loops are receiving,
 * hashed together in the SIMD lanes of common/cm_md5.c rather than one after the other.
 *
 * MD5 was the largest single cost of a large PUT (docs/performance.md, "Eighth session"): one
 * stream runs at the latency of its dependency chain, and the lanes that would take the other
 * streams sit idle. A loop sees several bodies' bytes in one turn (epoll reports every connection
 * that has data), so on_body hands each plain data body's bytes to the sink as before (the one
 * copy into the stripe; SHA-256 and the x-amz-checksum as before) but leaves them in the body
 * buffer unhashed and undrained, pauses the body (net_req_pause_body: no more on_body, no
 * on_body_end, and the buffer is not touched, so the bytes stay where they are), and puts the
 * request on this loop's batch. Small bodies too: at c=64 one turn brings many 4 KiB bodies,
 * whose MD5s then share the lanes (hashing bodies of up to 64 KiB at once cost 7-16 % more server
 * CPU per 4 KiB PUT under cairn bench; docs/performance.md, "Ninth session").
 *
 * The batch runs once per turn (an event made active with the first request, after the read
 * events already pending): its requests and their segments become a flight. Uploads spread over
 * the loops (SO_REUSEPORT), so one loop's flight alone fills one or two of eight lanes; the loops
 * therefore meet in `share`: a loop whose batch runs takes every flight other loops published
 * and hashes them with its own in one cm_md5_update_many; finding none, it publishes its own when
 * another loop is receiving bodies (that loop's batch is scheduled, or ran within PARTNER_NS: its
 * next one takes the flight), else it hashes its own alone. A published flight that no loop took
 * within retract_after is taken back and hashed by its own loop (retract_run), so a loop that
 * stops or stalls cannot hold another's bodies. A flight hashed elsewhere goes back to its loop's
 * done list and that loop's done_run (event_base_once from the hashing thread; the bases are
 * thread-safe, evthread_use_pthreads) drains the bytes and resumes each body (unless it waits for
 * writer room, which room_ready then resumes). The bytes a body's MD5 sees are in body order:
 * on_body is not called again for a request before its deferred bytes are hashed, and a request is
 * in one flight at a time.
 *
 * Cross-thread reads: while a flight is published or taken, its requests' body buffers are
 * paused, so their owning loop neither appends to nor drains the hashed segments; the hashing
 * thread reads those bytes and writes the requests' MD5 contexts only between taking the flight
 * and marking it done, both under share.lock.
 *
 * Lifetime: a request that ends (on_done) with bytes deferred is taken out of its batch or flight
 * first, waiting (share.hashed) while another loop is hashing that flight; one that failed
 * meanwhile has its bytes dropped unhashed. A loop's batch is reached through a pthread key and
 * freed when the thread exits (its published flights withdrawn, taken ones waited for); its
 * events are one-shots (event_base_once) that the loop frees if they never run.
 *
 * Threading: `share` is the one state the loops have in common (process-wide, as the lanes are
 * per core not per gateway), under share.lock; everything else of a batch is its loop's. The
 * counters (/metrics, gw_md5_metrics) are process-wide too.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

enum { FL_OWN, FL_PUBLISHED, FL_TAKEN, FL_DONE };

typedef struct md5_batch md5_batch;

/* One batch's requests and jobs, once its loop ran it. */
struct md5_flight {
    md5_batch *owner;
    gw_req **r; /* its requests; each r->md5_flight points here */
    size_t n;
    cm_md5_job *jobs;
    int nj;
    int state;               /* FL_*; under share.lock once published */
    struct md5_flight *next; /* in share.waiting, or in the owner's done list */
};
typedef struct md5_flight md5_flight;

struct md5_batch {
    gw_req **r; /* requests with bytes deferred since the batch last ran, in the order they came */
    size_t n, cap;
    struct event_base *base;    /* this thread's loop */
    int scheduled;              /* batch_run is active on the loop (under share.lock) */
    md5_flight *done;           /* hashed by other loops, to finish here (under share.lock) */
    int done_posted;            /* done_run is active on the loop (under share.lock) */
    int taken;                  /* its flights another loop is hashing (under share.lock) */
    uint64_t last_ns;           /* when it last ran (CLOCK_MONOTONIC_COARSE; under share.lock) */
    md5_batch *next;            /* in share.batches */
    struct evbuffer_iovec *vec; /* scratch: the segments of one batch */
    size_t cap_vec;
    cm_md5_job *mix; /* scratch: the jobs of every flight one kernel call takes */
    size_t cap_mix;
};

/* The process's loops meet here. Holds no bytes: flights point into their loops' body buffers. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t hashed; /* a taken flight became done */
    md5_flight *waiting;   /* published, for the next loop whose batch runs */
    int scheduled;         /* loops whose batch_run is active */
    md5_batch *batches;    /* every loop's (md5_batch.next) */
} share = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, NULL};

/* /metrics (relaxed atomic adds): kernel calls, those that took other loops' flights, flights
 * taken back by retract_run. Process-wide, as `share` is. */
static uint64_t md5_calls, md5_calls_shared, md5_retracted;

static pthread_key_t batch_key;
static pthread_once_t batch_once = PTHREAD_ONCE_INIT;
static int batch_key_ok;

static void flight_free(md5_flight *f)
{
    if (!f)
        return;
    free(f->r);
    free(f->jobs);
    free(f);
}

/* Take b's flights out of share.waiting (under share.lock): they are b's own again. */
static md5_flight *withdraw(md5_batch *b)
{
    md5_flight *mine = NULL;
    for (md5_flight **p = &share.waiting; *p;) {
        md5_flight *f = *p;
        if (f->owner == b) {
            *p = f->next;
            f->state = FL_OWN;
            f->next = mine;
            mine = f;
        } else {
            p = &f->next;
        }
    }
    return mine;
}

/* Free flights whose loop ended before it finished them. Their requests, if any are left, end
 * later from another thread (net_server_free: on_done, gw_md5_forget), which must not find the
 * flight. */
static void abandon(md5_flight *list)
{
    while (list) {
        md5_flight *next = list->next;
        for (size_t i = 0; i < list->n; i++)
            list->r[i]->md5_flight = NULL;
        flight_free(list);
        list = next;
    }
}

static void batch_destroy(void *arg)
{
    md5_batch *b = arg;
    pthread_mutex_lock(&share.lock);
    if (b->scheduled) /* the loop ended before its batch ran */
        share.scheduled--;
    for (md5_batch **p = &share.batches; *p; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    md5_flight *left = withdraw(b); /* not to be taken now */
    while (b->taken > 0)            /* another loop hashes one: it hands it to b->done */
        pthread_cond_wait(&share.hashed, &share.lock);
    while (b->done) {
        md5_flight *f = b->done;
        b->done = f->next;
        f->next = left;
        left = f;
    }
    pthread_mutex_unlock(&share.lock);
    abandon(left);
    free(b->r);
    free(b->vec);
    free(b->mix);
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
    if (!b && (b = calloc(1, sizeof(*b)))) {
        if (pthread_setspecific(batch_key, b) != 0) {
            free(b);
            return NULL;
        }
        pthread_mutex_lock(&share.lock);
        b->next = share.batches;
        share.batches = b;
        pthread_mutex_unlock(&share.lock);
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

/* The jobs of every request of f: its segments, taken in turns across requests (one from each,
 * then the next of each) so that the kernel's windows hold several contexts. -1: no memory. */
static int flight_jobs(md5_batch *b, md5_flight *f)
{
    size_t total = 0, most = 0;
    for (size_t i = 0; i < f->n; i++) {
        gw_req *r = f->r[i];
        size_t k = r->failed ? 0
                             : (size_t)evbuffer_peek(r->md5_buf, (ev_ssize_t)r->md5_unhashed, NULL,
                                                     NULL, 0);
        r->md5_nseg = k;
        total += k;
        most = k > most ? k : most;
    }
    if (total > b->cap_vec) {
        struct evbuffer_iovec *v = realloc(b->vec, total * sizeof(*v));
        if (!v)
            return -1;
        b->vec = v;
        b->cap_vec = total;
    }
    if (total && !(f->jobs = malloc(total * sizeof(*f->jobs))))
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < f->n; i++) { /* each request's segments, back to back */
        gw_req *r = f->r[i];
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
    int nj = 0;
    for (size_t turn = 0; turn < most; turn++) {
        for (size_t i = 0; i < f->n; i++) {
            gw_req *r = f->r[i];
            if (turn >= r->md5_nseg)
                continue;
            const struct evbuffer_iovec *v = &b->vec[r->md5_seg + turn];
            f->jobs[nj++] = (cm_md5_job){.m = &r->md5, .p = v->iov_base, .n = v->iov_len};
        }
    }
    return nj;
}

static void flight_finish(md5_flight *f);

/* The batch's requests become a flight with its jobs. NULL when there were none, or when memory
 * ran out: then each request is hashed alone and resumed here. */
static md5_flight *flight_make(md5_batch *b)
{
    if (!b->n)
        return NULL;
    gw_req **list = b->r;
    size_t n = b->n;
    b->r = NULL;
    b->n = b->cap = 0;
    md5_flight *f = calloc(1, sizeof(*f));
    if (f) {
        f->owner = b;
        f->r = list;
        f->n = n;
        f->nj = flight_jobs(b, f);
    }
    if (f && f->nj >= 0) {
        for (size_t i = 0; i < n; i++)
            list[i]->md5_flight = f;
        return f;
    }
    for (size_t i = 0; i < n; i++) {
        gw_req *r = list[i];
        if (!r->failed)
            hash_now(r, r->md5_buf, r->md5_unhashed);
        else
            evbuffer_drain(r->md5_buf, r->md5_unhashed);
        r->md5_unhashed = 0;
    }
    if (f) {
        f->nj = 0;
        flight_finish(f);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        list[i]->md5_wait = 0;
        list[i]->md5_buf = NULL;
        if (!list[i]->room_wait)
            net_req_resume_body(list[i]->net);
    }
    free(list);
    return NULL;
}

/* On the owner's loop: drain what was hashed, resume each body (unless it waits for writer room,
 * which room_ready then resumes), free f. The list is f's own: resuming can bring on_body, which
 * may defer into the batch again. */
static void flight_finish(md5_flight *f)
{
    for (size_t i = 0; i < f->n; i++) {
        gw_req *r = f->r[i];
        evbuffer_drain(r->md5_buf, r->md5_unhashed);
        r->md5_wait = 0;
        r->md5_unhashed = 0;
        r->md5_buf = NULL;
        r->md5_flight = NULL;
        if (!r->room_wait)
            net_req_resume_body(r->net);
    }
    flight_free(f);
}

/* One kernel call for f and the flights in take, their jobs taken in turns. */
static void hash_flights(md5_batch *b, md5_flight *f, md5_flight *take)
{
    if (!f && !take)
        return;
    int shared = 0;
    for (md5_flight *t = take; t && !shared; t = t->next)
        shared = t->owner != b;
    __atomic_add_fetch(&md5_calls, 1, __ATOMIC_RELAXED);
    if (shared)
        __atomic_add_fetch(&md5_calls_shared, 1, __ATOMIC_RELAXED);
    size_t total = f ? (size_t)f->nj : 0, most = total;
    for (md5_flight *t = take; t; t = t->next) {
        total += (size_t)t->nj;
        most = (size_t)t->nj > most ? (size_t)t->nj : most;
    }
    if (!take || total > b->cap_mix) {
        cm_md5_job *m = take ? realloc(b->mix, total * sizeof(*m)) : NULL;
        if (!m) { /* alone, or no memory to mix them: one call each */
            if (f)
                cm_md5_update_many(f->jobs, f->nj);
            for (md5_flight *t = take; t; t = t->next)
                cm_md5_update_many(t->jobs, t->nj);
            return;
        }
        b->mix = m;
        b->cap_mix = total;
    }
    int n = 0;
    for (size_t j = 0; j < most; j++) {
        if (f && j < (size_t)f->nj)
            b->mix[n++] = f->jobs[j];
        for (md5_flight *t = take; t; t = t->next)
            if (j < (size_t)t->nj)
                b->mix[n++] = t->jobs[j];
    }
    cm_md5_update_many(b->mix, n);
}

static void finish_list(md5_flight *list)
{
    while (list) {
        md5_flight *next = list->next;
        flight_finish(list);
        list = next;
    }
}

/* A published flight's loop takes it back after this long, should the batch it waited for not
 * run (its loop stopped), or finishes it if it was hashed but its done_run could not be posted:
 * the flight's bodies must not stay paused. */
static const struct timeval retract_after = {0, 3000};

/* Another loop whose batch ran this recently is receiving bodies: its next batch will come. */
#define PARTNER_NS 2000000ull

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void retract_run(evutil_socket_t fd, short what, void *arg)
{
    md5_batch *b = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&share.lock);
    md5_flight *mine = withdraw(b);
    md5_flight *done = b->done; /* taken and hashed, should the taker's post have failed */
    b->done = NULL;
    pthread_mutex_unlock(&share.lock);
    if (mine) {
        __atomic_add_fetch(&md5_retracted, 1, __ATOMIC_RELAXED);
        hash_flights(b, NULL, mine);
        finish_list(mine);
    }
    finish_list(done);
}

static void done_run(evutil_socket_t fd, short what, void *arg)
{
    md5_batch *b = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&share.lock);
    md5_flight *list = b->done;
    b->done = NULL;
    b->done_posted = 0;
    pthread_mutex_unlock(&share.lock);
    finish_list(list);
}

/*
 * The loop's batch, once per turn. Its requests become a flight; then, under the lock: flights
 * other loops published are taken, to be hashed with this one in one call; with none waiting, a
 * flight is published when another loop is receiving bodies (its batch is about to run, or ran
 * last and lately: its next one takes this flight; retract_run takes it back should none come),
 * else hashed here alone. Flights taken from other loops go back to them done (their done_run).
 */
static void batch_run(evutil_socket_t fd, short what, void *arg)
{
    md5_batch *b = arg;
    (void)fd;
    (void)what;
    md5_flight *f = flight_make(b);
    uint64_t now = now_ns();
    pthread_mutex_lock(&share.lock);
    int partner = share.scheduled > 1;
    for (md5_batch *o = share.batches; o && !partner; o = o->next)
        partner = o != b && now < o->last_ns + PARTNER_NS;
    b->last_ns = now;
    b->scheduled = 0;
    share.scheduled--;
    md5_flight *take = share.waiting;
    share.waiting = NULL;
    if (!take && f && partner &&
        event_base_once(b->base, -1, EV_TIMEOUT, retract_run, b, &retract_after) == 0) {
        f->state = FL_PUBLISHED;
        f->next = NULL;
        share.waiting = f;
        pthread_mutex_unlock(&share.lock);
        return;
    }
    for (md5_flight *t = take; t; t = t->next) {
        t->state = FL_TAKEN;
        t->owner->taken++;
    }
    pthread_mutex_unlock(&share.lock);

    hash_flights(b, f, take);

    md5_flight *mine = NULL;
    pthread_mutex_lock(&share.lock);
    while (take) {
        md5_flight *t = take;
        take = t->next;
        t->state = FL_DONE;
        md5_batch *o = t->owner;
        o->taken--;
        if (o == b) { /* published here earlier, taken back before another loop came */
            t->next = mine;
            mine = t;
            continue;
        }
        t->next = o->done;
        o->done = t;
        /* Should this fail (no memory), o's retract_run finishes t. */
        if (!o->done_posted && event_base_once(o->base, -1, EV_TIMEOUT, done_run, o, NULL) == 0)
            o->done_posted = 1;
    }
    md5_flight *late = b->done; /* done by others, not yet finished (a failed post) */
    b->done = NULL;
    pthread_cond_broadcast(&share.hashed);
    pthread_mutex_unlock(&share.lock);
    if (f)
        flight_finish(f);
    finish_list(mine);
    finish_list(late);
}

/* The thread runs a new loop (the main thread runs loop 0 of each server it starts): what was
 * pending on the old one never ran, and its requests have ended (gw_md5_forget). */
static void batch_rebase(md5_batch *b, struct event_base *base)
{
    pthread_mutex_lock(&share.lock);
    if (b->scheduled)
        share.scheduled--;
    b->scheduled = 0;
    b->done_posted = 0;
    md5_flight *left = b->done;
    b->done = NULL;
    pthread_mutex_unlock(&share.lock);
    abandon(left);
    b->base = base;
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
    if (!b || b->n == b->cap) {
        hash_now(r, buf, n);
        return;
    }
    if (b->base != net_req_base(r->net)) /* a new loop on this thread: the old one's is gone */
        batch_rebase(b, net_req_base(r->net));
    if (!b->scheduled) {
        if (event_base_once(b->base, -1, EV_TIMEOUT, batch_run, b, NULL) != 0) {
            hash_now(r, buf, n);
            return;
        }
        pthread_mutex_lock(&share.lock);
        b->scheduled = 1;
        share.scheduled++;
        pthread_mutex_unlock(&share.lock);
    }
    b->r[b->n++] = r;
    r->md5_wait = 1;
    r->md5_unhashed = n;
    r->md5_buf = buf;
    r->md5_flight = NULL;
    net_req_pause_body(r->net);
}

/* Take r and its jobs out of f (under share.lock, f not being hashed). */
static void flight_drop(md5_flight *f, gw_req *r)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->r[i] != r)
            f->r[k++] = f->r[i];
    f->n = k;
    int nj = 0;
    for (int j = 0; j < f->nj; j++) /* in order: a context's jobs must stay in order */
        if (f->jobs[j].m != &r->md5)
            f->jobs[nj++] = f->jobs[j];
    f->nj = nj;
}

void gw_md5_forget(gw_req *r)
{
    md5_flight *f = r->md5_flight;
    if (!f) {
        md5_batch *b = batch_get();
        for (size_t i = 0; b && i < b->n; i++) {
            if (b->r[i] == r) {
                b->r[i] = b->r[--b->n];
                break;
            }
        }
    } else {
        pthread_mutex_lock(&share.lock);
        while (f->state == FL_TAKEN) /* another loop is reading r's bytes: let it finish */
            pthread_cond_wait(&share.hashed, &share.lock);
        flight_drop(f, r);
        if (f->state == FL_PUBLISHED && f->n == 0) { /* nothing left for anyone to take */
            for (md5_flight **p = &share.waiting; *p; p = &(*p)->next) {
                if (*p == f) {
                    *p = f->next;
                    break;
                }
            }
            flight_free(f);
        }
        pthread_mutex_unlock(&share.lock);
    }
    r->md5_wait = 0;
    r->md5_buf = NULL;
    r->md5_flight = NULL;
}

cm_err gw_md5_metrics(cm_metrics *m)
{
    cm_err err = cm_metrics_add_counter(m, "cairn_md5_batches_total",
                                        "MD5 kernel calls of the loops' body batches", &md5_calls);
    if (err == CM_OK)
        err = cm_metrics_add_counter(m, "cairn_md5_batches_shared_total",
                                     "MD5 kernel calls that took another loop's bodies too",
                                     &md5_calls_shared);
    if (err == CM_OK)
        err = cm_metrics_add_counter(m, "cairn_md5_batches_retracted_total",
                                     "bodies offered to other loops and hashed by their own loop",
                                     &md5_retracted);
    return err;
}
