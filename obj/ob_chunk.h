/*
 * ob_chunk.h - the asynchronous chunk interface: what the object layer asks of a drive, wherever
 * the drive is (docs/chunks.md). A chunk is one blob on one drive (a cell column of a body), named
 * by its 16-byte id; it is written front to back by appends, made durable by a sync (with the
 * last append, or by seal), read by ranges, deleted, stat'ed and listed (paged, for repair).
 *
 * Two backends behind one function table (ob_chunk_ops):
 *   - local: the drives of this node (bs_store each); the blocking blobstore calls (append,
 *     fdatasync, read, delete) run on a worker pool (node/nd_work.c) and the completion is posted
 *     back to the caller's loop;
 *   - remote: the drives of another node, over the node RPC client (nd_client), whose calls are
 *     already asynchronous on the caller's loop.
 * A resolver (ob_resolver) maps a (node, drive) of the cluster layout to the backend that reaches
 * it and the drive number there.
 *
 * Contract, the same for both backends (tests/unit/test_obj_chunks.c runs one suite on each):
 *   - every call that returns CM_OK ends with exactly one ob_chunk_done on the caller's loop,
 *     never from inside the call that started it; a call that returns an error runs nothing;
 *   - append(off, body, crc): off must equal the chunk's length (0 creates it), else
 *     CM_ERR_CONFLICT with res.size = the length; the body's CRC32C must equal crc, else the
 *     chunk is deleted (nothing of it stays: the writer rewrites the cell) and CM_ERR_DIGEST;
 *     with OB_CHUNK_SYNC the completion comes once the chunk is durable. res.size = new length;
 *   - seal(len): the chunk is durable at length len (CM_ERR_CONFLICT, res.size = the length,
 *     when it has another length; an absent chunk seals only at 0);
 *   - read(off, len): res.data holds exactly len bytes (CM_ERR_RANGE past the end,
 *     CM_ERR_NOTFOUND for a missing chunk, CM_ERR_CORRUPT for a block failing its checksum;
 *     remote: CM_ERR_DIGEST for bytes damaged on the way, docs/rpc.md "Read integrity");
 *   - delete: durable; an unknown chunk is fine. stat: res.size. list: a page in id order;
 *   - errors: CM_ERR_NOTFOUND for a drive number the backend does not have, CM_ERR_UNAVAILABLE
 *     for an offline drive or an unreachable node, CM_ERR_TIMEOUT / CM_ERR_CLOSED from the wire.
 *
 * Bounds and backpressure: one call carries at most OB_CHUNK_MAX_IO bytes (an append's body, a
 * read's range), so a caller's memory per call in flight is bounded by what it asks for; a
 * writer streams a cell as a sequence of appends and keeps as many in flight as it wants to
 * spend memory on. A read's bytes are handed over once complete (the remote backend moves them
 * from the socket buffers without copying).
 *
 * Threading: a backend belongs to one loop (the base given at creation); calls and completions
 * run on that loop's thread. The local backend's stores are thread-safe and may be shared with
 * an ob_store or an nd_service.
 */
#ifndef OB_CHUNK_H
#define OB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "bs.h"
#include "cm_err.h"
#include "md.h"
#include "nd.h"
#include "pl.h"

struct evbuffer;
struct event_base;

#define OB_CHUNK_MAX_IO (16u << 20) /* bytes per append or read call */
#define OB_CHUNK_SYNC 1u            /* append: complete once durable */

typedef nd_chunk_ent ob_chunk_ent;

typedef struct {
    cm_err err;
    uint64_t size;            /* append, seal, stat: the chunk's length; read: bytes read */
    struct evbuffer *data;    /* read: the bytes (take them with evbuffer_add_buffer) */
    const ob_chunk_ent *list; /* list: nlist chunks in id order */
    size_t nlist;
    int more;            /* list: the page is full; ask again after its last id */
    const char *message; /* a reason when err != CM_OK */
} ob_chunk_result;

/* The end of a call, on the backend's loop; res and what it points to live during the call. */
typedef void (*ob_chunk_done)(void *arg, const ob_chunk_result *res);

typedef struct ob_chunks ob_chunks;

typedef struct {
    cm_err (*append)(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                     struct evbuffer *body, uint32_t crc32c, unsigned flags, ob_chunk_done done,
                     void *arg);
    cm_err (*seal)(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len, ob_chunk_done done,
                   void *arg);
    cm_err (*read)(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                   ob_chunk_done done, void *arg);
    cm_err (*del)(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg);
    cm_err (*stat)(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg);
    cm_err (*list)(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max, ob_chunk_done done,
                   void *arg);
    void (*free)(ob_chunks *c);
    /* optional (NULL: not offered): the same range on several drives in one call */
    cm_err (*read_parts)(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id, uint64_t off,
                         uint64_t len, ob_chunk_done done, void *arg);
    /* optional (NULL: not offered): equal appends to several drives in one call */
    cm_err (*append_parts)(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                           uint64_t off, struct evbuffer *body, const uint32_t *crcs,
                           unsigned flags, ob_chunk_done done, void *arg);
} ob_chunk_ops;

/* Every backend starts with this. */
struct ob_chunks {
    const ob_chunk_ops *ops;
};

/*
 * The calls (dispatch through c->ops). append moves the whole of body (which holds exactly the
 * bytes to append, at most OB_CHUNK_MAX_IO) out of the caller's buffer: the caller may free body
 * on return. list returns up to max (capped at ND_LIST_MAX) chunks with ids above *after (NULL:
 * from the first). CM_ERR_INVAL for an empty or oversized append or read.
 */
cm_err ob_chunk_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                       struct evbuffer *body, uint32_t crc32c, unsigned flags, ob_chunk_done done,
                       void *arg);
cm_err ob_chunk_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len,
                     ob_chunk_done done, void *arg);
cm_err ob_chunk_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                     ob_chunk_done done, void *arg);
/*
 * [off, off+len) of chunk id on each of drives[0..n) of the backend's node in one call (the
 * remote backend: nd_read_parts, whose limits apply): res.data holds the n ranges back to back.
 * All or nothing (a failure says nothing of which part failed). CM_ERR_UNSUPPORTED when the
 * backend does not offer it (the local one: its reads cost no call).
 */
cm_err ob_chunk_read_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                           uint64_t off, uint64_t len, ob_chunk_done done, void *arg);
/*
 * n appends at off in one call, to chunk id on each of drives[0..n) of the backend's node (the
 * remote backend: nd_append_parts): body is the n cells back to back, of equal length, crcs[i]
 * the CRC32C of cell i; moved out of body as append does. One answer for all (res.size each
 * chunk's new length); on a failure any of them may or may not be appended, as for a failed
 * append. CM_ERR_UNSUPPORTED when the backend does not offer it.
 */
cm_err ob_chunk_append_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                             uint64_t off, struct evbuffer *body, const uint32_t *crcs,
                             unsigned flags, ob_chunk_done done, void *arg);
int ob_chunk_has_append_parts(const ob_chunks *c);
cm_err ob_chunk_delete(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                       void *arg);
cm_err ob_chunk_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg);
cm_err ob_chunk_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max,
                     ob_chunk_done done, void *arg);
/* Free a backend with no call in flight. NULL is a no-op. */
void ob_chunks_free(ob_chunks *c);

/*
 * The local backend over drives[0..ndrives) (stores borrowed; a NULL store is an offline drive),
 * completing on base's loop, which must have been created after evthread_use_pthreads (the
 * workers post completions to it). nthreads workers run the blocking calls (0 = 4): a sync
 * occupies one for an fdatasync, so reads queue behind at most nthreads syncs.
 */
cm_err ob_chunks_local_new(struct event_base *base, const nd_drive *drives, int ndrives,
                           int nthreads, ob_chunks **out);
/*
 * A second local backend over the same drives and workers as local, completing on base's loop
 * (same rules as ob_chunks_local_new's, but a cell's read, 32 KiB to ND_PIECE, runs on the loop
 * itself: a gateway loop's reads). Freed before local; local's pool stays local's.
 * CM_ERR_INVAL when local is not a local backend, CM_ERR_NOMEM.
 */
cm_err ob_chunks_local_share(ob_chunks *local, struct event_base *base, ob_chunks **out);
/* The remote backend: the drives of peer (copied) through cl (borrowed, same loop). */
cm_err ob_chunks_remote_new(nd_client *cl, const nd_peer *peer, ob_chunks **out);

/*
 * (node, drive) -> backend. Built from a topology: the node whose id is self resolves to local
 * (borrowed), every other node to a remote backend over cl to its address ("host:port", the RPC
 * port). Drive numbers on a node are the layout's drive ids (pl_drive.id, the drive folder's
 * number), which is how a node exposes them over the RPC.
 */
typedef struct ob_resolver ob_resolver;

cm_err ob_resolver_new(const pl_topology *t, const char *self, ob_chunks *local, nd_client *cl,
                       ob_resolver **out);
void ob_resolver_free(ob_resolver *r); /* frees the remote backends; NULL is a no-op */
/* The backend of node (its index in the topology), or NULL when out of range; is_local (may be
 * NULL) tells whether it is this node. */
ob_chunks *ob_resolve(ob_resolver *r, int node, int *is_local);
/* The backend of a placed cell (pl_place's indices into the topology) and, in *drive, the drive
 * number to give it (the drive's id); NULL when the cell is not in the topology. */
ob_chunks *ob_resolve_cell(ob_resolver *r, const pl_cell *c, uint32_t *drive);

/*
 * A first user of the interface (ob_stripe.c): one body written as erasure-coded stripes to its
 * k+m placed cells through a resolver, from one loop. One stripe is in flight at a time, its
 * k+m cell appends in parallel to their backends (full stripes' data cells are sent straight
 * from the body; parity and a padded last stripe from one stripe buffer); the last stripe's
 * appends sync. A cell whose append fails is dropped for the rest of the body. The body is
 * acknowledged (done with CM_OK and its layout) when at least k+1 cells of every stripe are
 * durable (k when m = 0); dropped cells read 0xFF in layout.drives and their chunks are deleted.
 * Otherwise done gets CM_ERR_UNAVAILABLE and every chunk written is deleted. Not used by the
 * gateway yet (docs/chunks.md).
 */
typedef struct {
    int k, m;
    uint32_t cell_size;   /* bytes per cell of a full stripe, a multiple of 64 */
    uint64_t epoch;       /* of the topology the cells were placed in (goes to the layout) */
    const pl_cell *cells; /* k+m cells (pl_place) */
    const bs_id *id;      /* the chunk id on every cell; NULL: a new random one */
} ob_put_config;

/* lay is valid during the call (on CM_OK only). */
typedef void (*ob_put_done)(void *arg, cm_err err, const md_layout *lay);

/*
 * Write body[0..len) (borrowed until done runs; len > 0). CM_ERR_INVAL for a bad profile,
 * CM_ERR_UNAVAILABLE (nothing started) when fewer than k+1 cells resolve to a backend.
 */
cm_err ob_put_body(ob_resolver *r, const ob_put_config *cfg, const void *body, size_t len,
                   ob_put_done done, void *arg);

/*
 * The read side (ob_stripe.c): bytes [off, off+len) of the body at lay, read stripe by stripe
 * through the resolver. Each stripe asks k cells at once (its data cells, parity in place of the
 * missing ones); a cell that fails is replaced by another until k have arrived, then missing data
 * cells are rebuilt with the codec. data holds exactly len bytes (CM_OK only; take them with
 * evbuffer_add_buffer). CM_ERR_RANGE past the body's end, CM_ERR_INVAL for len 0 or above
 * OB_CHUNK_MAX_IO; done gets CM_ERR_UNAVAILABLE when fewer than k cells of a stripe can be read.
 */
typedef void (*ob_get_done)(void *arg, cm_err err, struct evbuffer *data);
cm_err ob_get_range(ob_resolver *r, const md_layout *lay, uint64_t off, uint64_t len,
                    ob_get_done done, void *arg);

#endif
