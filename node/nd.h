/*
 * nd.h - node RPC: the wire between cairn nodes (docs/rpc.md has the protocol).
 *
 * Server side (nd_service.c): an nd_service exposes the drives of this node (one bs_store each)
 * as HTTP/1.1 handlers under /_cairn/rpc/v1/, served by a net_server on its own port (the RPC
 * listener, separate from S3): chunk append (PUT, the body streamed into a blob, its CRC32C
 * verified before the answer, durable after bs_sync), chunk read (GET of a range, streamed out
 * with backpressure, every block verified by the blobstore), delete, stat (HEAD) and info (node
 * id, drives, their state and space; the heartbeat) and list (a page of a drive's chunks, for
 * repair and anti-entropy); and, from the node's md_store, the metadata partition routes (meta
 * get, merge-put, list, Merkle leaves, leaf keys; nd_meta.c). Every request is authenticated
 * with the cluster secret (HMAC-SHA256, nd_auth.c).
 *
 * Client side (nd_client.c): asynchronous calls on the caller's event loop over a pooled
 * keep-alive net_client (per peer, bounded), so one PUT can have cells in flight to many nodes
 * and a GET can read k of them at once. Each call ends with exactly one nd_done_fn from the loop.
 *
 * Fault layer (nd_fault.c): rules per (from-node, to-node) - refuse, lose, delay - consulted by
 * the client before each call; set and cleared at run time, shared by any number of clients.
 *
 * Threading: an nd_service may be used by every loop of a multi-threaded net_server (the stores
 * are thread-safe); an nd_client belongs to one loop thread; nd_faults is locked and may be
 * changed from any thread.
 */
#ifndef ND_H
#define ND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bs.h"
#include "cm_checksum.h"
#include "cm_err.h"
#include "md.h"
#include "net.h"

struct evbuffer;
struct event_base;

#define ND_PREFIX "/_cairn/rpc/v1"
#define ND_MAX_SKEW_S 300     /* default: refuse requests whose clock is further off */
#define ND_MAX_DRIVES 64      /* drives a node may expose */
#define ND_NODE_ID_MAX 64     /* node ids: 1..63 chars of [A-Za-z0-9._-] */
#define ND_PIECE (256 * 1024) /* the server appends / reads at most this much per blob call */
/* A read of one range on several drives (also=, docs/rpc.md "Reading several cells"): at most
 * this many parts and bytes in all (the size net_client receives into one pooled buffer). An
 * append to several drives (also=, "Appending several cells") has the same part limit; its bytes
 * are bounded as any append's. */
#define ND_READ_PARTS 4
#define ND_READ_PARTS_BYTES (256 * 1024)
#define ND_LIST_MAX 1000     /* chunks per list page (the answer stays below 64 KiB) */
#define ND_LIST_AGED_MAX 800 /* ... with ages (a line is at most 74 bytes: below 64 KiB) */
#define ND_APPEND_MIN                                                                              \
    (64 * 1024) /* ... and appends once this much body is buffered (or at end)                     \
                 */

/* X-Cairn-Crc32c's value with n CRCs (8 hex digits each, comma-separated; NULL is none) into out:
 * 1 when it is exactly that, else 0 (nd_client.c; the node's parts reads and appends). */
int nd_parse_crcs(const char *v, int n, uint32_t *out);

/* ---- appending from a buffer (nd_service.c; also the local chunk backend, obj/ob_chunk.c) ---- */

/* Append the first n (> 0) bytes of buf to blob id of bs at off straight from buf's chains
 * (bs_appendv: no copy; pulled up first only when they are more than 16), running *crc (a
 * cm_crc32c running value) over them. buf is not drained. */
cm_err nd_append_front(bs_store *bs, const bs_id *id, uint64_t off, struct evbuffer *buf, size_t n,
                       uint32_t *crc);

/* ---- authentication (nd_auth.c) ---- */

/* The parts of a request the signature covers (see docs/rpc.md, "Canonical string"). */
typedef struct {
    const char *method; /* "PUT" */
    const char *target; /* request-target as sent, with the query */
    const char *node;   /* the caller's node id */
    const char *to;     /* the called node's id (a request for one node is refused by another) */
    const char *date;   /* unix seconds, decimal */
    const char *nonce;  /* 32 hex chars, fresh per request */
    const char *length; /* Content-Length as sent, "0" without a body */
    const char *crc32c; /* X-Cairn-Crc32c as sent (8 hex), "-" when absent */
} nd_canon;

/* Signature: lowercase hex HMAC-SHA256 of the canonical string under key (the cluster secret's,
 * cm_hmac_key_init), into out[65]. */
void nd_sign(const cm_hmac_key *key, const nd_canon *c, char out[65]);
/*
 * Check a request's headers against the secret's key at time now (unix seconds), as a request
 * for node self: CM_OK, or CM_ERR_AUTH with *why naming the reason (missing header, clock skew
 * beyond max_skew_s, bad signature: also one made for another node).
 */
cm_err nd_auth_check(const cm_hmac_key *key, int max_skew_s, int64_t now, const char *self,
                     const net_req *req, const char **why);
/* 1 when id is a valid node id. */
int nd_node_id_valid(const char *id);

/* ---- server (nd_service.c) ---- */

/*
 * A conditional write handed to this node as a partition's leader (POST /cond/<bucket>,
 * docs/replication.md "Conditional writes"): a put of rec, or with del a delete of rec->key (rec
 * then carries the key only), under cond. What the callback returns is the answer: CM_OK,
 * CM_ERR_PRECONDITION, CM_ERR_NOTFOUND, CM_ERR_UNAVAILABLE, or CM_ERR_CONFLICT for "this node is
 * not the partition's leader" (the caller looks the leader up again). On a worker; may block.
 */
typedef struct {
    const char *bucket;
    const md_object *rec;
    int del;
    const md_cond *cond;
    const char *from; /* the calling node's id */
} nd_cond_req;
typedef cm_err (*nd_cond_fn)(void *arg, const nd_cond_req *r);

typedef struct {
    const char *path; /* the drive's directory (for its free space) */
    bs_store *bs;     /* NULL: the drive is offline */
} nd_drive;

typedef struct {
    const char *node_id;
    const uint8_t *secret; /* the cluster secret */
    size_t secret_len;
    const nd_drive *drives;
    int ndrives;
    int max_skew_s;   /* 0 = ND_MAX_SKEW_S */
    int sync_threads; /* workers for bs_sync and meta ops; 0 = 2, < 0 = inline on the loop */
    md_store *md;     /* metadata partitions served (borrowed); NULL: meta ops answer 503 */
    md_hlc *clock;    /* this node's clock (borrowed): meta puts merge their records' stamps
                       * into it (md_hlc_update) and refuse one stamped more than
                       * MD_HLC_MAX_DRIFT_MS ahead; NULL: no clock is kept */
    nd_cond_fn cond;  /* the conditional-write route; NULL: it answers 503 */
    void *cond_arg;
    int cond_threads; /* its own workers (a write holds one up to its leader's timeout); 0 = 8 */
    /* The layout fence (borrowed; NULL: none): the node's adopted layout epoch, raised by the
     * node as it adopts one and here by any meta call (nd_peer.epoch) that carries a higher one;
     * a meta call carrying a lower one is refused CM_ERR_STALE (409), nothing read or written
     * (docs/replication.md, "Layout changes: the handoff"). A call without one is not fenced. */
    _Atomic uint64_t *epoch;
    /* Workers that read a cell the page cache does not hold before the loop sends it (a drive
     * that hangs holds them, not the syncs); 0 = 4; none when sync_threads < 0 (read on the
     * loop) */
    int read_threads;
} nd_service_config;

typedef struct nd_service nd_service;

typedef struct {
    uint64_t requests;
    uint64_t auth_refused;   /* unauthenticated, skewed or badly signed */
    uint64_t digest_refused; /* request bodies (appends, meta) that failed their CRC32C */
    uint64_t appended;       /* body bytes appended */
    uint64_t read;           /* body bytes read and sent */
    uint64_t warmed;         /* reads whose range a worker read first (not in the page cache) */
    uint64_t replayed;       /* DELETEs and cond writes answered from memory (nonce ran before) */
    uint64_t replay_evicted; /* ... forgotten before they expired (the memory was full) */
} nd_service_stats;

/*
 * Copy what cfg says (drives' stores are borrowed and must outlive the service). Shut down in
 * this order: net_server_stop and the end of net_server_run, nd_service_free (waits for the sync
 * workers and the commit thread, whose answers went to the server's loops, then frees the
 * requests whose connection the grace period cut while they were busy: the stopped loops never
 * run their answers), net_server_free.
 */
cm_err nd_service_new(const nd_service_config *cfg, nd_service **out);
void nd_service_free(nd_service *svc); /* NULL is a no-op */
/* The handler to give net_server_new, with the service as its arg. */
extern const net_handler nd_service_handler;
void nd_service_get_stats(nd_service *svc, nd_service_stats *out);

/* ---- worker pool (nd_work.c) ---- */

/*
 * Blocking work handed off an event loop: run on a worker thread, then done on the loop of base
 * (created after evthread_use_pthreads, as net_server_new arranges for its loops). The job is the
 * queue node: embed it in the caller's state. Until done runs the job belongs to the pool.
 */
typedef struct nd_job nd_job;
struct nd_job {
    void (*run)(nd_job *j);  /* on a worker: the blocking part */
    void (*done)(nd_job *j); /* afterwards, on base's loop */
    struct event_base *base;
    nd_job *next; /* the pool's */
};
typedef struct nd_work nd_work;

/* Start nthreads (>= 1) workers. */
cm_err nd_work_new(int nthreads, nd_work **out);
/* Run what is queued, then join the workers (their done callbacks are still scheduled on their
 * loops, which must run them). NULL is a no-op. */
void nd_work_free(nd_work *w);
/* Queue j (w NULL: run and done right here, in the caller's thread). */
void nd_work_submit(nd_work *w, nd_job *j);

/* ---- fault layer (nd_fault.c) ---- */

typedef enum {
    ND_FAULT_NONE = 0,
    ND_FAULT_REFUSE, /* the call fails at once as if the connection were refused */
    ND_FAULT_LOSE,   /* the request is lost: the call times out after the io timeout */
    ND_FAULT_DELAY,  /* the request leaves delay_ms late */
} nd_fault_kind;

typedef struct nd_faults nd_faults;

cm_err nd_faults_new(nd_faults **out);
void nd_faults_free(nd_faults *f); /* NULL is a no-op */
/* Set the rule for calls from node `from` to node `to` ("*" matches any node). */
cm_err nd_fault_set(nd_faults *f, const char *from, const char *to, nd_fault_kind kind,
                    int delay_ms);
/* Remove the rule (from, to); NULL, NULL removes every rule. */
void nd_fault_clear(nd_faults *f, const char *from, const char *to);
/* The rule for a call from -> to: an exact rule first, then wildcards. */
nd_fault_kind nd_fault_get(nd_faults *f, const char *from, const char *to, int *delay_ms);
/*
 * Add rules from a spec such as "n1>n2:refuse,n2>n3:delay=50,*>n4:lose" (what CAIRN_RPC_FAULTS
 * holds in integration tests). CM_ERR_INVAL on a malformed spec (no rule of it is added).
 */
cm_err nd_faults_parse(nd_faults *f, const char *spec);

/* ---- client (nd_client.c) ---- */

typedef struct nd_client nd_client;
typedef struct nd_op nd_op;

typedef struct {
    const char *node_id; /* this node: the signer, and the "from" of fault rules */
    const uint8_t *secret;
    size_t secret_len;
    net_client_config net;  /* the pool; zero fields = net defaults */
    nd_faults *faults;      /* NULL = none; borrowed */
    int64_t clock_offset_s; /* added to the clock when signing (tests of skew) */
} nd_client_config;

/* A layout address "host:port" into host (cap bytes) and port. The host is a numeric address
 * (IPv6 in brackets) or a DNS name, which the RPC client resolves at each new connection without
 * blocking its loop (net_client.c). CM_ERR_INVAL for anything else. */
cm_err nd_addr_parse(const char *addr, char *host, size_t cap, int *port);

/* A peer as the layout names it; borrowed for the call. */
typedef struct {
    const char *id;   /* its node id: signed, so a node refuses a call meant for another */
    const char *host; /* numeric address */
    int port;         /* its RPC port */
    uint64_t epoch;   /* meta calls: the caller's layout epoch, sent as epoch= (0: none) */
} nd_peer;

typedef struct {
    uint32_t index;
    char state[16]; /* "ok", "failed" (writes refused after an I/O error), "offline" */
    uint64_t blobs, live_bytes, used_bytes;
    uint64_t free_bytes, total_bytes; /* of the filesystem */
} nd_drive_info;

typedef struct {
    char node_id[ND_NODE_ID_MAX];
    int64_t time; /* the node's clock, unix seconds */
    uint32_t ndrives;
    nd_drive_info drives[ND_MAX_DRIVES];
} nd_node_info;

/* One chunk of a list page. */
typedef struct {
    bs_id id;
    uint64_t size;
    int64_t age_s; /* nd_list_aged: seconds since its last write (bs_list_aged); else -1 */
} nd_chunk_ent;

typedef struct {
    cm_err err;               /* CM_OK, the node's error, or the transport's */
    int status;               /* HTTP status, 0 when no response came */
    uint64_t size;            /* the chunk's length (append, stat, read) */
    const char *message;      /* a reason when err != CM_OK ("" otherwise) */
    const nd_node_info *info; /* nd_info only, on success */
    const nd_chunk_ent *list; /* nd_list only, on success: nlist chunks in id order */
    size_t nlist;
    int more; /* nd_list: the page is full; ask again after its last id; nd_meta_list too */
    /* meta ops (on success): the answer's body (a record, length-prefixed records, leaf hashes
     * or digest entries; docs/rpc.md) */
    const uint8_t *body;
    size_t body_len;
    int applied;   /* nd_meta_put: the node holds the record now */
    int no_bucket; /* meta ops' CM_ERR_NOTFOUND: the bucket is unknown */
} nd_result;

/* The end of a call, on the client's loop. res is valid during the callback only. */
typedef void (*nd_done_fn)(void *arg, const nd_result *res);
/* Read data: take what you can; bytes left pause the transfer until nd_op_resume. */
typedef void (*nd_data_fn)(void *arg, nd_op *op, struct evbuffer *data);
/* Append body producer: add more of the body to out (never past the declared length). */
typedef void (*nd_send_fn)(void *arg, nd_op *op, struct evbuffer *out);

cm_err nd_client_new(struct event_base *base, const nd_client_config *cfg, nd_client **out);
/* Calls still running end with CM_ERR_CLOSED (their callbacks run). NULL is a no-op. */
void nd_client_free(nd_client *cl);
/* The pool underneath (stats, open connections). */
net_client *nd_client_net(nd_client *cl);
/* The loop the client runs on (the one it was made with). */
struct event_base *nd_client_base(nd_client *cl);

/*
 * Append len bytes to chunk id on drive `drive` of peer at chunk offset off (0 creates it; else
 * it must equal the chunk's length). The body is body (moved, no copy) and what send produces
 * after it; crc32c is the CRC32C of these len bytes, checked by the node before it answers: on a
 * mismatch the chunk is deleted (nothing of it is kept) and the call ends CM_ERR_DIGEST. With
 * sync the answer comes after bs_sync (durable). res.size = the chunk's new length.
 * Not retried (not idempotent). *op (may be NULL) is valid until done returns.
 */
cm_err nd_append(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, uint64_t off,
                 uint64_t len, uint32_t crc32c, struct evbuffer *body, nd_send_fn send, int sync,
                 nd_done_fn done, void *arg, nd_op **op);
/*
 * The same append on each of drives[0..n) of peer (2 <= n <= ND_READ_PARTS): body (moved) is n
 * parts of equal length, part i appended at off to chunk id on drives[i], crcs[i] its CRC32C; a
 * node's cells of a stripe in one call (PUT ...&also=). One answer for all: res.size is each
 * chunk's new length; on a failure any part may or may not have been appended (as for a failed
 * nd_append); a part's CRC mismatch deletes every part's chunk (CM_ERR_DIGEST). A node that
 * predates also= refuses the CRC list (CM_ERR_INVAL) before it appends anything.
 */
cm_err nd_append_parts(nd_client *cl, const nd_peer *peer, const uint32_t *drives, int n,
                       const bs_id *id, uint64_t off, const uint32_t *crcs, struct evbuffer *body,
                       int sync, nd_done_fn done, void *arg, nd_op **out);
/*
 * Read len bytes at off (len UINT64_MAX = to the end), handed to data as they arrive.
 * CM_ERR_NOTFOUND, CM_ERR_RANGE, CM_ERR_CORRUPT (a block failed its checksum on the node) or a
 * transport error; a transfer cut short ends CM_ERR_CLOSED. res.size = the chunk's length.
 */
cm_err nd_read(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, uint64_t off,
               uint64_t len, nd_data_fn data, nd_done_fn done, void *arg, nd_op **op);
/*
 * The same range [off, off+len) of chunk id on each of drives[0..n) of peer (2 <= n <=
 * ND_READ_PARTS, n x len <= ND_READ_PARTS_BYTES): one call for a node's cells of a stripe
 * (GET ...&also=). The parts arrive back to back, n x len bytes handed to data as for nd_read,
 * each checked against its own CRC32C. All or nothing: a part missing, short, rotten or damaged
 * fails the call as nd_read would fail for it (read them one by one to learn which).
 * CM_ERR_INVAL for a bad n or len.
 */
cm_err nd_read_parts(nd_client *cl, const nd_peer *peer, const uint32_t *drives, int n,
                     const bs_id *id, uint64_t off, uint64_t len, nd_data_fn data, nd_done_fn done,
                     void *arg, nd_op **out);
/* Delete a chunk, durably (deleting an unknown chunk is CM_OK). */
cm_err nd_delete(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id,
                 nd_done_fn done, void *arg);
/* Length of a chunk in res.size (CM_ERR_NOTFOUND when absent). */
cm_err nd_stat(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, nd_done_fn done,
               void *arg);
/* Heartbeat: the node's id, clock and drives in res.info. */
cm_err nd_info(nd_client *cl, const nd_peer *peer, nd_done_fn done, void *arg);
/*
 * A page of the chunks on drive `drive` of peer, in id order: up to max (capped at ND_LIST_MAX)
 * with ids above *after (NULL: from the first), in res.list / res.nlist; res.more when the page is
 * full. For repair and anti-entropy walks.
 */
cm_err nd_list(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *after, size_t max,
               nd_done_fn done, void *arg);
/* nd_list with each chunk's age (res.list[i].age_s); max capped at ND_LIST_AGED_MAX. */
cm_err nd_list_aged(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *after,
                    size_t max, nd_done_fn done, void *arg);
/*
 * Metadata partitions (served from the node's md_store; docs/rpc.md, docs/replication.md). A
 * partition is the keys of bucket in shard of nshards (md_shard_of). Records travel as
 * md_object_encode'd bytes; res.body holds the answer.
 *   get:       the stored record of key (tombstones included) in res.body;
 *   put:       merge rec (len bytes) into the node's store (md_rec_merge), res.applied; with
 *              hint_for the node keeps it as a hint for that node instead (md_hint_put);
 *   list:      records of the partition (summaries) after `after` with prefix, at most max:
 *              res.body = (u32 length | record)*, res.more;
 *   merkle:    the MD_MERKLE_FANOUT^depth leaf hashes (16 bytes each) of the partition's tree;
 *   leaf_keys: the digest entries (md_rec_info_encode, concatenated) of the partition's keys in
 *              the given leaves.
 *   tombs:     digest entries of the partition's tombstones stamped below before, after `after`,
 *              at most max (<= ND_META_LIST_MAX): res.body as leaf_keys', res.more (md_rec_tombs);
 *   tomb_drop: raise the partition's collection mark to mark and drop each given tombstone still
 *              held at that version (md_rec_collect): res.body = one byte per entry, 1 = dropped.
 * Bodies are bounded by ND_META_MAX (CM_ERR_TOOBIG beyond); a list page also by
 * ND_META_PAGE_BYTES. A node without a store answers CM_ERR_UNAVAILABLE.
 */
#define ND_META_MAX (16 * 1024 * 1024)   /* a meta request or answer body (depth-5 leaves) */
#define ND_META_PAGE_BYTES (1024 * 1024) /* a list page ends once its records pass this */
#define ND_META_LIST_MAX 1000            /* records per list page */

typedef struct {
    const char *bucket;
    uint32_t shard, nshards; /* shard < nshards <= 65536 */
} nd_part;

cm_err nd_meta_get(nd_client *cl, const nd_peer *peer, const char *bucket, const char *key,
                   nd_done_fn done, void *arg);
/* get for a partition leader: the node first admits fence for partition p in its write order
 * (md_fence_barrier); a lower token than it saw is CM_ERR_CONFLICT, nothing read. */
cm_err nd_meta_get_fenced(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t fence,
                          const char *key, nd_done_fn done, void *arg);
cm_err nd_meta_put(nd_client *cl, const nd_peer *peer, const char *bucket, const uint8_t *rec,
                   size_t len, const char *hint_for, nd_done_fn done, void *arg);
/* put of a partition leader's conditional write: the node admits fence for partition p in the
 * write's transaction (md_rec_receive_fenced); a lower token than it saw is CM_ERR_CONFLICT,
 * nothing stored. */
cm_err nd_meta_put_fenced(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t fence,
                          const uint8_t *rec, size_t len, nd_done_fn done, void *arg);
/*
 * put of several records of bucket at once (merges, never hints or a leader's): body is n
 * records, each a u32 big-endian length and the md_object_encode'd bytes, n <= ND_META_BATCH_MAX.
 * The node merges each as put does and answers once every one is durable or failed: res.body is
 * one status byte per record, in order (ND_BATCH_APPLIED, _KEPT merged but not newer, _NO_BUCKET,
 * _INVALID its stamp is too far ahead, _STALE the node's layout fence rose above the call's epoch
 * before the record was applied (md_guard), _FAILED). A body that does not frame, or a record
 * without a key, fails the whole call CM_ERR_INVAL, a record that does not decode CM_ERR_CORRUPT; a
 * node that predates the route answers CM_ERR_NOTFOUND without res.no_bucket (callers then send the
 * records one by one).
 */
#define ND_META_BATCH_MAX 64
enum {
    ND_BATCH_APPLIED = 'A',
    ND_BATCH_KEPT = 'K',
    ND_BATCH_NO_BUCKET = 'B',
    ND_BATCH_INVALID = 'I',
    ND_BATCH_FAILED = 'F',
    ND_BATCH_STALE = 'S',
    ND_BATCH_FOUND = 'R',
    ND_BATCH_ABSENT = 'N'
};
cm_err nd_meta_put_batch(nd_client *cl, const nd_peer *peer, const char *bucket,
                         const uint8_t *body, size_t len, nd_done_fn done, void *arg);
/*
 * get of several keys of bucket at once: body is n keys, each a u16 big-endian length and the
 * key (1..MD_MAX_KEY bytes, no NUL), n <= ND_META_BATCH_MAX. res.body answers each in order: a
 * status byte, ND_BATCH_FOUND followed by the record (u32 length | md_object_encode'd bytes),
 * or ND_BATCH_ABSENT, _NO_BUCKET, _FAILED alone. A body that does not frame is CM_ERR_INVAL, an
 * answer past ND_META_MAX CM_ERR_TOOBIG; a node that predates the route answers as for
 * nd_meta_put_batch.
 */
cm_err nd_meta_get_batch(nd_client *cl, const nd_peer *peer, const char *bucket,
                         const uint8_t *body, size_t len, nd_done_fn done, void *arg);
/*
 * The batch routes' framing (nd_batch.c), shared by callers and the node. keys: 1 for a batch of
 * reads' keys (u16 length each), 0 for a batch put's records (u32 length each).
 * nd_batch_frame: one item at out (ND_BATCH_HDR(keys) + len bytes, the caller's), returns that
 * size; len fits the header (a key at most MD_MAX_KEY bytes).
 * nd_batch_split: body's items into items (ND_META_BATCH_MAX of them, pointing into body): how
 * many, 0 when body is not 1..ND_META_BATCH_MAX whole items (for keys also: 1..MD_MAX_KEY bytes,
 * no NUL) with nothing left over. The records are not decoded.
 * nd_batch_answer: a batch of reads' answer to n keys into items[0..n): each status (.st) and,
 * for ND_BATCH_FOUND, the record's bytes (.p, .len; NULL, 0 for the others). CM_ERR_CORRUPT
 * unless the answer is exactly n answers of known statuses.
 */
#define ND_BATCH_HDR(keys) ((keys) ? 2u : 4u)
typedef struct {
    const uint8_t *p;
    size_t len;
    uint8_t st;
} nd_batch_item;
size_t nd_batch_frame(uint8_t *out, int keys, const uint8_t *item, size_t len);
size_t nd_batch_split(const uint8_t *body, size_t len, int keys, nd_batch_item *items);
cm_err nd_batch_answer(const uint8_t *body, size_t len, size_t n, nd_batch_item *items);
cm_err nd_meta_list(nd_client *cl, const nd_peer *peer, const nd_part *p, const char *prefix,
                    const char *after, size_t max, nd_done_fn done, void *arg);
cm_err nd_meta_merkle(nd_client *cl, const nd_peer *peer, const nd_part *p, int depth,
                      nd_done_fn done, void *arg);
cm_err nd_meta_leaf_keys(nd_client *cl, const nd_peer *peer, const nd_part *p, int depth,
                         const uint32_t *leaves, size_t nleaves, nd_done_fn done, void *arg);
cm_err nd_meta_tombs(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t before,
                     const char *after, size_t max, nd_done_fn done, void *arg);
cm_err nd_meta_tomb_drop(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t mark,
                         const md_rec_info *infos, size_t ninfos, nd_done_fn done, void *arg);
/*
 * names: which of ids (n of them, 16 bytes each, sorted ascending, n <= ND_NAMES_MAX) a record
 * of peer's store names, any bucket, any kind (md_names_mark): res.body = one byte per id, 1 =
 * named. A full walk of the peer's records per call: the orphan sweep's mark phase.
 */
#define ND_NAMES_MAX 65536
cm_err nd_meta_names(nd_client *cl, const nd_peer *peer, const uint8_t (*ids)[16], size_t n,
                     nd_done_fn done, void *arg);

/*
 * Hand a conditional write to peer, the leader of its partition (nd_cond_req above): rec (len
 * bytes, md_object_encode'd; for a delete, a record holding the key) put or, with del, its key
 * deleted under cond (If-None-Match, If-Match, unlocked with bypass_governance). res.err is the
 * leader's outcome (CM_ERR_CONFLICT: peer is not the leader; CM_ERR_LOCKED).
 */
cm_err nd_cond_write(nd_client *cl, const nd_peer *peer, const char *bucket, const uint8_t *rec,
                     size_t len, int del, const md_cond *cond, nd_done_fn done, void *arg);

/* Continue a read paused by data leaving bytes, or an append whose producer had nothing. */
void nd_op_resume(nd_op *op);

#endif
