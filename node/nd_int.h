/*
 * nd_int.h - private layout of the RPC service: the service and its per-request state (its
 * durability step runs on the worker pool of nd_work.c, which keeps fdatasync off the loops).
 */
#ifndef ND_INT_H
#define ND_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "nd.h"

typedef struct nd_sreq nd_sreq;

/*
 * nd_replay.c: the answers of recent chunk DELETEs and conditional writes by nonce, for cap calls
 * at most. begin: the
 * call with this nonce is new (ND_REPLAY_NEW: remembered as running until nd_replay_end, or
 * until expire_s), still running (ND_REPLAY_RUNNING), or done (ND_REPLAY_DONE, its result in
 * *err). Entries past their expiry are dropped as now_s passes it; at capacity the oldest goes
 * (counted: nd_replay_evicted).
 */
typedef struct nd_replay nd_replay;
enum { ND_REPLAY_NEW, ND_REPLAY_RUNNING, ND_REPLAY_DONE };
#define ND_REPLAY_CAP 65536
cm_err nd_replay_new(uint32_t cap, nd_replay **out);
void nd_replay_free(nd_replay *r); /* NULL is a no-op */
int nd_replay_begin(nd_replay *r, const uint8_t nonce[16], int64_t expire_s, int64_t now_s,
                    cm_err *err);
void nd_replay_end(nd_replay *r, const uint8_t nonce[16], cm_err err);
uint64_t nd_replay_evicted(nd_replay *r);

struct nd_service {
    char node_id[ND_NODE_ID_MAX];
    cm_hmac_key key; /* the cluster secret's, for checking requests */
    int ndrives;
    nd_drive drives[ND_MAX_DRIVES];
    char *paths[ND_MAX_DRIVES];
    int max_skew_s;
    nd_replay *replay;       /* recent DELETEs and cond writes by nonce (nd_replay.c) */
    atomic_ullong replayed;  /* calls answered from it */
    nd_work *work;           /* NULL: syncs and meta ops run inline on the loop */
    md_store *md;            /* metadata partitions (borrowed); NULL: none */
    md_hlc *clock;           /* this node's clock (borrowed); NULL: none */
    _Atomic uint64_t *epoch; /* the layout fence (borrowed, nd_service_config.epoch); NULL: none */
    nd_cond_fn cond;         /* the conditional-write route (NULL: 503), on cond_work */
    void *cond_arg;
    nd_work *cond_work;
    nd_work *read_work; /* JOB_WARM: cold reads (NULL: read on the loop) */
    atomic_uint_fast64_t requests, auth_refused, digest_refused, appended, read, warmed;
    atomic_int no_batch_route;  /* tests: answer PUT /recs as a node that predates it */
    atomic_int no_append_parts; /* tests: refuse parts appends as a node that predates them */
    /* record writes queued on md's commit thread (nd_meta.c): nd_service_free waits for 0 */
    pthread_mutex_t async_mu;
    pthread_cond_t async_cv;
    int async_n;
    /* under async_mu: requests orphaned while busy, until their completion frees them; those
     * whose completion went to a loop that never ran again are freed by nd_service_free */
    nd_sreq *orphans;
};

enum { OP_NONE, OP_APPEND, OP_READ, OP_DELETE, OP_META };

/* What a worker does for a request before it is answered. */
enum { JOB_SYNC, JOB_DROP, JOB_DELETE, JOB_WARM };

struct nd_sreq {
    nd_service *svc;
    net_req *req;
    int op;
    bs_store *bs;
    bs_id id;
    uint64_t off;  /* append: where the next piece goes; read: next offset to send */
    uint64_t end;  /* read: the end of the range; append: off + Content-Length */
    uint64_t size; /* read: the chunk's length */
    int sync;
    /* append: the body is nparts parts of plen bytes, each appended at `start` to its own drive
     * (pbs: s->bs, then those of also=; 1 part without also=), pcrc/pwant its CRC32C: running,
     * and told; part: the one being appended (s->off is where its next piece goes) */
    int nparts, part;
    bs_store *pbs[ND_READ_PARTS];
    uint32_t pcrc[ND_READ_PARTS], pwant[ND_READ_PARTS];
    uint64_t start, plen;
    /* read: the length asked (UINT64_MAX: to the chunk's end); warmed: a worker read the range
     * (JOB_WARM: nparts parts of plen bytes at start, pbs their drives) because the page cache
     * did not hold it, so the loop sends it without waiting on the disk */
    uint64_t rlen;
    int warmed;
    cm_err err; /* append: first failure (the rest of the body is ignored); job result */
    /* offloaded job (nd_work.c): owned by a worker while busy */
    int job;
    nd_job work;
    int busy;                       /* a worker holds the request (loop-thread flag) */
    int orphaned;                   /* the connection closed while busy: free on completion */
    nd_sreq *orph_prev, *orph_next; /* svc->orphans, while orphaned */
    struct nd_mreq *meta;           /* OP_META: the metadata op's state (nd_meta.c) */
    int replay; /* a DELETE or cond write in svc->replay under nonce: its end goes there */
    uint8_t nonce[16];
};

/*
 * nd_service.c: run job on s (on a worker when the service has them, else right here), then
 * answer on s's loop. While busy the request belongs to the worker.
 */
void nd_sreq_submit(nd_sreq *s, int job);
void nd_sreq_free(nd_sreq *s);
/* A busy request's completion, back on its loop: 1 when the request was orphaned meanwhile (it is
 * freed now and must not be touched), else 0 (answer it). */
int nd_sreq_returned(nd_sreq *s);
/* An error answer: status from e, X-Cairn-Error, X-Cairn-Reason, the text body; plus one more
 * header when hname is not NULL. */
void nd_answer_error_ex(net_req *req, cm_err e, const char *why, const char *hname,
                        const char *hval);
/* A chunk DELETE or a conditional write whose nonce ran before: answered from svc->replay (1),
 * or remembered as running for s (0: run it, and nd_replay_end its result). */
int nd_replayed(nd_service *svc, net_req *req, nd_sreq *s);
/* Query parameter name as a u64: 1 found, 0 absent, -1 malformed (or above UINT64_MAX). */
int nd_query_u64(const char *q, const char *name, uint64_t *v);

/* nd_meta.c: the metadata partition routes (path after "/meta/"), their request body, its end. */
void nd_meta_serve(nd_service *svc, net_req *req, nd_sreq *s, const char *path);
/* The conditional-write route (path after "/cond/"), served like a meta put. */
void nd_cond_serve(nd_service *svc, net_req *req, nd_sreq *s, const char *path);
/*
 * The query of the cond route (nd_cond_write's target after "?"), parsed: the condition, whether
 * the write is a delete, and what cond points to (if_match at ifmatch, noncurrent_key at nckey,
 * heal_old at heal_old: the struct is used where it was parsed, never copied). NULL when the query
 * is one nd_cond_write could have sent, else the reason of a 400. Pure (no I/O): a fuzz target
 * drives it.
 */
#define ND_CELLS_MAX (26 + 3 * MD_MAX_CELLS) /* heal_old on the wire (hold=), bytes */
#define ND_PARTS_MAX 10000                   /* parts of one record: hpart is below */
typedef struct {
    md_cond cond;
    int del;
    char ifmatch[MD_MAX_KEY + 1];
    char nckey[MD_MAX_KEY + 1]; /* noncurrent_key points here */
    md_layout heal_old;
} nd_cond_args;
const char *nd_cond_parse(const char *q, nd_cond_args *a);
/* nd_client.c: the target of a cond write of bucket (ND_PREFIX "/cond/<bucket>?..."), as
 * nd_cond_write sends it: its length, or 0 when cond is no condition that route carries (or the
 * target would not fit cap). */
size_t nd_cond_target(const char *bucket, int del, const md_cond *cond, char *out, size_t cap);
void nd_meta_body(nd_sreq *s, struct evbuffer *body);
void nd_meta_body_end(nd_sreq *s);
void nd_meta_free(struct nd_mreq *m);
/* nd_service.c: count a record write handed to md's commit thread, and its end (after its
 * completion was scheduled on its loop: the last touch of the service by that thread). */
void nd_async_begin(nd_service *svc);
void nd_async_end(nd_service *svc);

#endif
