/*
 * ob_zstd.c - transparent compression of bodies (docs/compression.md): the zstd codec, the
 * writer's framing with its adaptive test, and ranged reads of a compressed body.
 *
 * Stored stream. A compressed body is cut into frames of `frame` bytes (the store's stripe
 * payload, k x cell_size, so a GET piece is one frame; the last frame may be shorter). Each frame
 * is one zstd frame (content size and XXH64 content checksum on) when that is smaller than the
 * frame, else its bytes as they are ("raw"). The frames are written back to back, followed by a
 * table of n u64 big-endian values, the stored end offset of each frame. That stream is what the
 * erasure writer sees: it is cut into stripes, encoded and CRC-covered like any body, so the
 * scrubber, heal and repair never need to know it is compressed. The layout records the stream's
 * length (`size`), the body's length (`zsize`), the frame size and where the table starts.
 * A frame's stored length equal to its body length means raw; smaller means zstd.
 *
 * Adaptive test. The first frame of every body is compressed; unless that saves at least 1/8,
 * the body is stored uncompressed (a plain layout, no table), so an incompressible body costs one
 * frame's compression attempt. Once a body is compressed, a frame that does not shrink is stored
 * raw, and after OB_Z_MISSES such frames in a row only every OB_Z_RETRY-th frame is tried, so a
 * compressible head followed by random data does not pay for compressing the rest.
 *
 * Reads. A range maps to frames; the table entries around them are read (one small read), raw
 * frames are read straight into the caller's buffer, compressed ones into a scratch buffer and
 * decoded into the caller's buffer (whole frame) or a frame buffer (part of it). Memory: at most
 * two frame buffers per call. Stored bytes are hostile input: every table entry is checked
 * (monotonic, within the stream, not longer than its frame), decoding is bounded by the frame's
 * length and must produce exactly it, and the content checksum must match; anything else is
 * CM_ERR_CORRUPT, never a crash or a short body.
 *
 * Offloading (ob_zw_offload, the gateway's PUT bodies). Compressing a compressible frame costs
 * milliseconds; on the event loop it delayed every other connection of that loop. A writer that
 * offloads holds up to OB_Z_SLOTS frames, each being filled, queued or compressing on the
 * runner's workers (each slot has its own buffers, from cm_bufpool's shared pool and given back
 * to it, and its own zstd context). Frames go to the sink in order, on the owner's loop (an event
 * the worker activates) or in the owner's next write; when no slot is free write_some takes nothing
 * more (CM_AGAIN) and the gateway stops reading the socket, so a PUT's memory stays at OB_Z_SLOTS
 * frames whatever its size. While the first frame is tested the others wait (its result decides),
 * so the adaptive test costs what it did. The skip rule is applied as frames leave, in order, so
 * the stream is byte for byte the inline one: a frame compressed where the rule skips is sent raw,
 * one not compressed where it tries goes back to a worker first (only at the edges of a run of raw
 * frames). ob_zw_finish runs on a worker: it takes the sink from the loop's event (`finishing`,
 * after any `pumping` ends), compresses the frames still queued itself (their jobs then do nothing:
 * a finisher never waits on the pool's queue, so a pool whose workers are all finishing PUTs
 * cannot deadlock) and waits only for frames a worker is compressing. ob_zw_free with jobs not
 * run yet marks z dead and the last of them frees it.
 *
 * Partial sinks (ob_zw_sink_some: a cluster writer's window, which takes what fits and answers
 * CM_AGAIN when full). The head frame, once decided, is `sending` until the sink took all of its
 * stored bytes (send/send_len point into its slot, which is not freed or refilled meanwhile);
 * frames behind it keep compressing, and write_some answers CM_AGAIN when no slot is free. The
 * owner gets z's step run again when the sink has room (the window activates z's event, or the
 * next write_some). A blocking owner (ob_zw_write, ob_zw_finish) sends the rest with its own sink.
 *
 * Threading: an ob_zw belongs to its owner (the writer's thread: its loop when offloading, then
 * the finisher); a slot in S_BUSY belongs to whoever moved it there from S_RUN (a worker or the
 * finisher); the slot states, `running` and the flags are under mu.
 * The read is re-entrant (its buffers are per call).
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cm_bufpool.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ob_int.h"

#define MOD "obj"
#define OB_Z_MISSES 4 /* raw frames in a row before trying only some */
#define OB_Z_RETRY 16 /* then try every this many frames */
#define OB_Z_SLOTS 3  /* frames an offloading writer holds: filling, waiting, compressing */

enum { Z_TEST, Z_ON, Z_RAW };                           /* the body's state */
enum { S_FREE, S_FILL, S_PEND, S_RUN, S_BUSY, S_DONE }; /* a frame slot's */

typedef struct zslot {
    ob_job job; /* first: the worker gets &job back */
    ob_zw *z;
    int state;       /* S_*: RUN queued on the runner, BUSY compressing; under z->mu */
    int compressed;  /* packed holds the compression's result (else not tried yet) */
    uint8_t *in;     /* the frame's body bytes */
    size_t n;        /* bytes in it */
    uint8_t *out;    /* compressed frame (ZSTD_compressBound(frame)) */
    size_t packed;   /* its length; 0 = stored raw */
    ZSTD_CCtx *cctx; /* created on the slot's first compression */
} zslot;

struct ob_zw {
    int level;
    uint32_t frame;
    int state;                 /* Z_TEST until the first frame is decided, then Z_ON or Z_RAW */
    zslot slots[OB_Z_SLOTS];   /* frame f lives in slots[f % nslots] */
    int nslots;                /* 1 when compressing inline, OB_Z_SLOTS with a runner */
    uint64_t drained, filling; /* next frame to send to the sink, frame being filled */
    ob_zsink sink;
    ob_zsink_some sink_some; /* the loop's sink, which may take part; NULL: sink takes all */
    void *arg;
    int sending;         /* the head frame is decided; send_len of its bytes still to go */
    const uint8_t *send; /* into the head slot's in or out */
    size_t send_len;
    cm_err err;       /* sticky: the sink failed */
    uint64_t *ends;   /* stored end of each frame */
    size_t n, cap;    /* frames written, capacity of ends */
    uint64_t stored;  /* stored bytes sent to the sink */
    uint64_t logical; /* body bytes taken */
    int misses;       /* raw frames in a row */
    uint32_t skip;    /* frames left to store raw without trying */
    /* Handing compression to workers (ob_zw_offload); under mu from here on. */
    ob_runner run;
    void *run_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot became S_DONE, or pumping ended */
    struct event *ev;  /* on the owner's loop: a slot is done */
    int running;       /* jobs handed to the runner whose slot_run has not ended */
    int pumping;       /* the loop's event is sending frames to the sink */
    int finishing;     /* ob_zw_finish owns the sink: the event does nothing */
    int dead;          /* ob_zw_free ran: the last job frees z */
    void (*room)(void *arg);
    void *room_arg;
};

int ob_z_worth(size_t raw, size_t packed)
{
    return packed > 0 && packed <= raw - raw / 8;
}

/* Compress the slot's frame; its packed length, 0 when it does not shrink (or no memory). */
static size_t slot_compress(zslot *s, int level, uint32_t frame)
{
    if (!s->cctx) {
        if (!s->out && !(s->out = cm_bufpool_take_shared(ZSTD_compressBound(frame))))
            return 0; /* no memory: store the frame raw, the body stays correct */
        if (!(s->cctx = ZSTD_createCCtx()) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1))) {
            ZSTD_freeCCtx(s->cctx);
            s->cctx = NULL;
            return 0;
        }
    }
    size_t r = ZSTD_compress2(s->cctx, s->out, ZSTD_compressBound(frame), s->in, s->n);
    return ZSTD_isError(r) || r >= s->n ? 0 : r;
}

cm_err ob_z_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t expect)
{
    unsigned long long content = ZSTD_getFrameContentSize(src, n);
    if (content != expect) /* also ZSTD_CONTENTSIZE_ERROR / _UNKNOWN: not our frame */
        return CM_ERR_CORRUPT;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return CM_ERR_NOMEM;
    /* dst holds exactly expect bytes: the decoder can never write past it. */
    size_t r = ZSTD_decompressDCtx(d, dst, expect, src, n);
    ZSTD_freeDCtx(d);
    return ZSTD_isError(r) || r != expect ? CM_ERR_CORRUPT : CM_OK;
}

cm_err ob_zw_new(int level, uint32_t frame, ob_zw **out)
{
    if (frame == 0 || frame > OB_Z_FRAME_MAX)
        return CM_ERR_INVAL;
    ob_zw *z = calloc(1, sizeof(*z));
    if (!z)
        return CM_ERR_NOMEM;
    z->level = level;
    z->frame = frame;
    z->nslots = 1;
    for (int i = 0; i < OB_Z_SLOTS; i++)
        z->slots[i].z = z;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv, NULL);
    *out = z;
    return CM_OK;
}

static void zw_destroy(ob_zw *z)
{
    for (int i = 0; i < OB_Z_SLOTS; i++) {
        ZSTD_freeCCtx(z->slots[i].cctx);
        cm_bufpool_put_shared(z->slots[i].in, z->frame); /* the next body's frames */
        cm_bufpool_put_shared(z->slots[i].out, ZSTD_compressBound(z->frame));
    }
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    free(z->ends);
    free(z);
}

void ob_zw_free(ob_zw *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&z->mu);
    struct event *ev = z->ev;
    z->ev = NULL; /* workers no longer signal it */
    pthread_mutex_unlock(&z->mu);
    if (ev)
        event_free(ev); /* waits for its callback if it runs on another thread (never on ours) */
    pthread_mutex_lock(&z->mu);
    z->dead = 1;
    int last = z->running == 0;
    pthread_mutex_unlock(&z->mu);
    if (last)
        zw_destroy(z); /* otherwise the last running job does */
}

int ob_zw_raw(const ob_zw *z)
{
    return z->state == Z_RAW && z->drained == z->filling &&
           z->slots[z->filling % (uint64_t)z->nslots].n == 0;
}

static cm_err note_frame(ob_zw *z, size_t stored)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? 2 * z->cap : 64;
        uint64_t *e = realloc(z->ends, cap * sizeof(*e));
        if (!e)
            return CM_ERR_NOMEM;
        z->ends = e;
        z->cap = cap;
    }
    z->ends[z->n++] = z->stored + stored; /* the frames before it have all gone */
    return CM_OK;
}

/* Stored bytes to the sink; *took of them went (all of them unless sink_some says CM_AGAIN). */
static cm_err zsend(ob_zw *z, const uint8_t *p, size_t n, size_t *took)
{
    cm_err e;
    *took = 0;
    if (z->sink_some)
        e = z->sink_some(z->arg, p, n, took);
    else if ((e = z->sink(z->arg, p, n)) == CM_OK)
        *took = n;
    z->stored += *took;
    return e;
}

static void slot_set(ob_zw *z, zslot *s, int state)
{
    pthread_mutex_lock(&z->mu);
    s->state = state;
    pthread_mutex_unlock(&z->mu);
}

/* Worker side: compress one frame (unless ob_zw_finish took it back while it was queued), hand
 * it back to the owner. The last job of a freed z frees it. */
static void slot_run(ob_job *j)
{
    zslot *s = (zslot *)j;
    ob_zw *z = s->z;
    pthread_mutex_lock(&z->mu);
    int mine = s->state == S_RUN;
    if (mine)
        s->state = S_BUSY;
    pthread_mutex_unlock(&z->mu);
    if (mine) {
        s->packed = slot_compress(s, z->level, z->frame);
        s->compressed = 1;
    }
    pthread_mutex_lock(&z->mu);
    if (mine)
        s->state = S_DONE;
    int last = --z->running == 0 && z->dead;
    if (mine && !z->dead) {
        if (z->ev)
            event_active(z->ev, EV_TIMEOUT, 1);
        pthread_cond_broadcast(&z->cv);
    }
    pthread_mutex_unlock(&z->mu);
    if (last)
        zw_destroy(z);
}

/*
 * Start compressing a full frame (on a worker when z has a runner). Unless forced, a frame the
 * skip rule will most likely store raw (z->skip > 0 now, as of the frames sent so far) is not
 * compressed: slot_emit applies the rule exactly, in order, and sends it back here (forced) in
 * the rare case it is to be tried after all.
 */
static void slot_submit(ob_zw *z, zslot *s, int force)
{
    s->packed = 0;
    s->compressed = 0;
    if (!force && z->state == Z_ON && z->skip > 0) {
        slot_set(z, s, S_DONE);
        return;
    }
    if (z->run && !z->finishing) { /* finishing: the finisher's thread compresses what is left */
        pthread_mutex_lock(&z->mu);
        s->state = S_RUN;
        z->running++;
        pthread_mutex_unlock(&z->mu);
        s->job.run = slot_run;
        if (z->run(z->run_ctx, &s->job) == 0)
            return;
        pthread_mutex_lock(&z->mu); /* the workers are stopping: here */
        z->running--;
        pthread_mutex_unlock(&z->mu);
    }
    slot_set(z, s, S_BUSY);
    s->packed = slot_compress(s, z->level, z->frame);
    s->compressed = 1;
    slot_set(z, s, S_DONE);
}

/* Whether the frame at the head is tried, by the rule applied in order (a compressed head). */
static int head_tried(const ob_zw *z)
{
    return z->state != Z_ON || z->skip == 0;
}

/* Decide the head frame as the rule says (frames leave in order): its stored bytes are the ones
 * to send next. */
static cm_err slot_emit(ob_zw *z, zslot *s)
{
    int tried = head_tried(z);
    size_t packed = tried ? s->packed : 0;
    if (!tried)
        z->skip--;
    z->sending = 1;
    z->send = packed ? s->out : s->in;
    z->send_len = packed ? packed : s->n;
    if (z->state == Z_TEST) {
        z->state = ob_z_worth(s->n, packed) ? Z_ON : Z_RAW;
        if (z->state == Z_RAW) { /* the body goes uncompressed: no table, no frames */
            z->send = s->in;
            z->send_len = s->n;
            return CM_OK;
        }
    }
    if (tried && packed != 0)
        z->misses = 0;
    else if (tried && ++z->misses >= OB_Z_MISSES)
        z->skip = OB_Z_RETRY - 1; /* misses stays high: one more miss skips again */
    return note_frame(z, z->send_len);
}

static int slot_state(ob_zw *z, zslot *s)
{
    pthread_mutex_lock(&z->mu);
    int st = s->state;
    pthread_mutex_unlock(&z->mu);
    return st;
}

/* Offer the head frame's unsent bytes to the sink; once they all went the frame has left and its
 * slot is free. CM_AGAIN: a partial sink took some (the rest is offered at the next step). */
static cm_err head_send(ob_zw *z)
{
    size_t took = 0;
    cm_err e = zsend(z, z->send, z->send_len, &took);
    z->send += took;
    z->send_len -= took;
    if (e == CM_AGAIN && z->send_len > 0)
        return e;
    if (e != CM_OK && e != CM_AGAIN)
        return e;
    zslot *s = &z->slots[z->drained % (uint64_t)z->nslots];
    slot_set(z, s, S_FREE); /* a queued job the finisher took back may still look at it */
    s->n = 0;
    z->sending = 0;
    z->drained++;
    return CM_OK;
}

/*
 * The owner's step: send the done frames at the head to the sink, in order (a partial sink may
 * leave the head frame half sent: the next step goes on with it), and start the full ones that
 * may start (while the first frame is being tested, nothing else is: its result decides). A body
 * found not worth compressing sends everything it holds, raw, the frame being filled too.
 */
static void pump(ob_zw *z)
{
    while (z->err == CM_OK) {
        if (z->sending) {
            cm_err e = head_send(z);
            if (e == CM_AGAIN)
                break;
            z->err = e;
            continue;
        }
        zslot *s = &z->slots[z->drained % (uint64_t)z->nslots];
        if (z->drained == z->filling) {
            if (z->state != Z_RAW || s->n == 0)
                break;
            slot_set(z, s, S_PEND); /* z is empty otherwise: the frame being filled goes too */
            z->filling++;
        }
        int st = slot_state(z, s);
        if (st == S_PEND && z->state != Z_RAW && (z->state == Z_ON || z->drained == 0)) {
            slot_submit(z, s, 0);
            st = slot_state(z, s);
        }
        if (st == S_DONE && z->state == Z_ON && head_tried(z) &&
            !s->compressed) { /* the rule says try it after all */
            slot_submit(z, s, 1);
            st = slot_state(z, s);
        }
        if (st != S_DONE && !(st == S_PEND && z->state == Z_RAW))
            break;
        if (z->state == Z_RAW) {
            z->sending = 1;
            z->send = s->in;
            z->send_len = s->n;
        } else {
            z->err = slot_emit(z, s);
        }
    }
    for (uint64_t f = z->drained + 1; z->state == Z_ON && f < z->filling; f++) {
        zslot *s = &z->slots[f % (uint64_t)z->nslots];
        if (slot_state(z, s) == S_PEND) /* only the owner moves a slot out of S_PEND */
            slot_submit(z, s, 0);
    }
}

/* The slot being filled is full (or the body ended): queue it. */
static void frame_full(ob_zw *z, zslot *s)
{
    slot_set(z, s, S_PEND);
    z->filling++;
    pump(z);
}

cm_err ob_zw_write_some(ob_zw *z, const void *data, size_t len, size_t *taken)
{
    const uint8_t *p = data;
    *taken = 0;
    pump(z);
    while (z->err == CM_OK && len > 0) {
        if (z->state == Z_RAW && z->drained == z->filling) { /* z holds nothing: straight on */
            size_t took = 0;
            cm_err e = zsend(z, p, len, &took);
            z->logical += took;
            *taken += took;
            return e;
        }
        zslot *s = &z->slots[z->filling % (uint64_t)z->nslots];
        int st = slot_state(z, s);
        if (st == S_FREE) {
            if (!s->in && !(s->in = cm_bufpool_take_shared(z->frame)))
                return CM_ERR_NOMEM;
            slot_set(z, s, st = S_FILL);
            s->n = 0;
        }
        if (st != S_FILL)
            return CM_AGAIN; /* every slot holds a frame not sent yet */
        size_t n = CM_MIN(len, z->frame - s->n);
        memcpy(s->in + s->n, p, n); /* a frame must be whole before it is compressed */
        s->n += n;
        p += n;
        len -= n;
        z->logical += n;
        *taken += n;
        if (s->n == z->frame)
            frame_full(z, s);
    }
    return z->err;
}

/*
 * The head frame, for an owner that may block (ob_zw_finish on a worker): still queued, it is
 * taken back and compressed here (its job, when a worker gets it, does nothing), else waited for
 * while a worker compresses it. Never waiting on the queue: a finisher holding the last free
 * worker of a busy pool must not wait for a job behind it.
 */
static void head_ready(ob_zw *z)
{
    zslot *s = &z->slots[z->drained % (uint64_t)z->nslots];
    pthread_mutex_lock(&z->mu);
    int take = s->state == S_RUN;
    if (take)
        s->state = S_BUSY;
    while (!take && s->state == S_BUSY)
        pthread_cond_wait(&z->cv, &z->mu);
    pthread_mutex_unlock(&z->mu);
    if (take) {
        s->packed = slot_compress(s, z->level, z->frame);
        slot_set(z, s, S_DONE);
    }
}

cm_err ob_zw_write(ob_zw *z, const void *data, size_t len, ob_zsink sink, void *arg)
{
    const uint8_t *p = data;
    if (z->ev)
        return CM_ERR_INVAL; /* an offloading writer's owner is its loop: write_some only */
    z->sink = sink;
    z->sink_some = NULL;
    z->arg = arg;
    for (;;) {
        size_t taken = 0;
        cm_err e = ob_zw_write_some(z, p, len, &taken);
        p += taken;
        len -= taken;
        if (e != CM_AGAIN)
            return e;
        head_ready(z);
    }
}

/* On the owner's loop: a worker finished a frame. Send what is ready, then tell a waiting
 * writer that it has room. */
static void on_slot_done(evutil_socket_t fd, short what, void *arg)
{
    ob_zw *z = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&z->mu);
    int mine = !z->finishing;
    z->pumping = mine;
    pthread_mutex_unlock(&z->mu);
    if (!mine)
        return;
    pump(z);
    int st = slot_state(z, &z->slots[z->filling % (uint64_t)z->nslots]);
    int room = z->err != CM_OK || (z->state == Z_RAW && z->drained == z->filling) || st == S_FREE ||
               st == S_FILL;
    void (*fn)(void *) = room ? z->room : NULL;
    pthread_mutex_lock(&z->mu);
    z->pumping = 0;
    if (fn)
        z->room = NULL;
    pthread_cond_broadcast(&z->cv);
    pthread_mutex_unlock(&z->mu);
    if (fn)
        fn(z->room_arg);
}

cm_err ob_zw_offload(ob_zw *z, struct event_base *base, ob_runner run, void *ctx, ob_zsink sink,
                     void *arg)
{
    if (z->filling > 0 || z->slots[0].n > 0 || z->ev)
        return CM_ERR_INVAL; /* before the first byte, once */
    if (!(z->ev = event_new(base, -1, 0, on_slot_done, z)))
        return CM_ERR_NOMEM;
    z->run = run;
    z->run_ctx = ctx;
    z->sink = sink;
    z->arg = arg;
    z->nslots = OB_Z_SLOTS;
    return CM_OK;
}

int ob_zw_offloads(const ob_zw *z)
{
    return z->ev != NULL;
}

cm_err ob_zw_on_room(ob_zw *z, void (*fn)(void *arg), void *arg)
{
    if (!z->ev)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&z->mu);
    z->room = fn;
    z->room_arg = arg;
    event_active(z->ev, EV_TIMEOUT, 1); /* it checks for room itself, after this call returns */
    pthread_mutex_unlock(&z->mu);
    return CM_OK;
}

void ob_zw_sink_some(ob_zw *z, ob_zsink_some sink, void *arg)
{
    z->sink_some = sink;
    z->arg = arg;
}

struct event *ob_zw_event(const ob_zw *z)
{
    return z->ev;
}

cm_err ob_zw_finish(ob_zw *z, ob_zsink sink, void *arg, md_layout *lay)
{
    pthread_mutex_lock(&z->mu); /* from here the loop's event leaves the sink to us */
    while (z->pumping)
        pthread_cond_wait(&z->cv, &z->mu);
    z->finishing = 1;
    z->room = NULL;
    pthread_mutex_unlock(&z->mu);
    z->sink = sink; /* a head frame the loop's sink left half sent goes on through this one */
    z->sink_some = NULL;
    z->arg = arg;
    zslot *cur = &z->slots[z->filling % (uint64_t)z->nslots];
    if (z->err == CM_OK && slot_state(z, cur) == S_FILL && cur->n > 0)
        frame_full(z, cur);
    while (z->err == CM_OK && z->drained < z->filling) {
        head_ready(z);
        pump(z);
    }
    cm_err e = z->err;
    lay->zalg = MD_Z_NONE;
    lay->zframe = 0;
    lay->zsize = lay->ztab = 0;
    if (e != CM_OK || z->state != Z_ON)
        return e;
    uint8_t b[512];
    uint64_t tab = z->stored;
    for (size_t i = 0; e == CM_OK && i < z->n; i += sizeof(b) / 8) {
        size_t c = CM_MIN(z->n - i, sizeof(b) / 8);
        for (size_t j = 0; j < c; j++)
            cm_put_be64(b + 8 * j, z->ends[i + j]);
        e = z->sink(z->arg, b, 8 * c);
    }
    z->stored += 8 * (uint64_t)z->n;
    lay->zalg = MD_Z_ZSTD;
    lay->zframe = z->frame;
    lay->zsize = z->logical;
    lay->ztab = tab;
    return e;
}

void ob_zw_counts(const ob_zw *z, uint64_t *logical, uint64_t *stored)
{
    *logical = z->logical;
    *stored = z->stored;
}

/* ---- reads ---- */

cm_err ob_z_check(const md_layout *lay)
{
    if (lay->zalg != MD_Z_ZSTD || lay->zframe == 0 || lay->zframe > OB_Z_FRAME_MAX)
        return CM_ERR_CORRUPT;
    uint64_t n = lay->zsize / lay->zframe + (lay->zsize % lay->zframe != 0);
    if (lay->ztab > lay->size || (lay->size - lay->ztab) / 8 != n || (lay->size - lay->ztab) % 8)
        return CM_ERR_CORRUPT;
    return CM_OK;
}

typedef struct {
    const md_layout *lay;
    ob_zsrc src;
    void *arg;
    uint8_t *packed; /* a compressed frame, read from the stream */
    uint8_t *whole;  /* a decoded frame, when only part of it is wanted */
} zread;

/* Bytes [a, b) of frame f, stored at [start, end), into dst. */
static cm_err read_frame(zread *r, uint64_t f, uint64_t start, uint64_t end, uint64_t a, uint64_t b,
                         uint8_t *dst)
{
    const md_layout *lay = r->lay;
    uint64_t flen = CM_MIN((uint64_t)lay->zframe, lay->zsize - f * lay->zframe);
    if (end < start || end > lay->ztab || end - start > flen) {
        CM_ERROR(MOD, "compressed body: frame %llu has a bad table entry", (unsigned long long)f);
        return CM_ERR_CORRUPT;
    }
    if (end - start == flen) /* raw */
        return r->src(r->arg, start + a, dst, (size_t)(b - a));
    if (!r->packed && !(r->packed = malloc(lay->zframe)))
        return CM_ERR_NOMEM;
    cm_err e = r->src(r->arg, start, r->packed, (size_t)(end - start));
    int whole = a == 0 && b == flen;
    if (e == CM_OK && !whole && !r->whole && !(r->whole = malloc(lay->zframe)))
        e = CM_ERR_NOMEM;
    if (e != CM_OK)
        return e;
    e = ob_z_decode(r->packed, (size_t)(end - start), whole ? dst : r->whole, (size_t)flen);
    if (e == CM_ERR_CORRUPT)
        CM_ERROR(MOD, "compressed body: frame %llu does not decode", (unsigned long long)f);
    if (e == CM_OK && !whole)
        memcpy(dst, r->whole + a, (size_t)(b - a));
    return e;
}

cm_err ob_z_read(const md_layout *lay, uint64_t off, void *buf, size_t len, ob_zsrc src, void *arg)
{
    if (off > lay->zsize || len > lay->zsize - off)
        return CM_ERR_RANGE;
    if (len == 0)
        return CM_OK;
    cm_err e = ob_z_check(lay);
    if (e != CM_OK) {
        CM_ERROR(MOD, "compressed body: layout does not match its stream");
        return e;
    }
    uint64_t F = lay->zframe, f0 = off / F, f1 = (off + len - 1) / F;
    uint64_t t0 = f0 > 0 ? f0 - 1 : 0, nt = f1 - t0 + 1; /* table entries wanted */
    uint8_t *tab = malloc((size_t)nt * 8);
    if (!tab)
        return CM_ERR_NOMEM;
    e = src(arg, lay->ztab + 8 * t0, tab, (size_t)nt * 8);
    zread r = {lay, src, arg, NULL, NULL};
    uint8_t *out = buf;
    for (uint64_t f = f0; e == CM_OK && f <= f1; f++) {
        uint64_t start = f > 0 ? cm_get_be64(tab + 8 * (f - 1 - t0)) : 0;
        uint64_t end = cm_get_be64(tab + 8 * (f - t0));
        uint64_t a = CM_MAX(off, f * F) - f * F;
        uint64_t b = CM_MIN(off + len, f * F + F) - f * F;
        b = CM_MIN(b, lay->zsize - f * F);
        e = read_frame(&r, f, start, end, a, b, out);
        out += b - a;
    }
    free(tab);
    free(r.packed);
    free(r.whole);
    return e;
}
