/*
 * md_int.h - private parts of meta/: the store struct, record codec helpers, the long-key layer
 * over LMDB and composite key builders. Not for use outside meta/.
 */
#ifndef MD_INT_H
#define MD_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <semaphore.h>

#include "cm_log.h"
#include "md.h"

#define MD_MOD "md"

/* ---- Group commit (md_commit.c) ---- */

/* Most ops a leader takes into one write transaction. */
#define MD_BATCH_MAX 256

/*
 * One write, applied by the batch leader inside txn (the batch's own, or a nested transaction
 * when another op of the batch failed: md_commit.c). arg is the op's private state: the function
 * reads and writes only it and the store. It returns the op's result and clears *wrote when it
 * succeeded without changing anything (nothing to commit); it must then have written nothing.
 * Anything it allocates stays in arg: the caller frees it after md_write returns, when the final
 * result may still be a failed commit.
 */
typedef cm_err (*md_apply_fn)(md_store *md, MDB_txn *txn, void *arg, int *wrote);

typedef struct md_op md_op;

/* A queued write. md_write keeps it on its stack; md_write_async callers embed it. */
struct md_op {
    md_apply_fn apply;
    void *arg;
    cm_err err;
    int wrote; /* changed the store (the nested transaction was committed into the batch) */
    /* Completion: fin(op) when set (on the commit thread, once err is final, as the commit
     * thread's last touch of op; it must not block: the next batch waits), else done is posted. */
    void (*fin)(md_op *op);
    sem_t done;
    md_op *next;
};

/* A leader's hook before it applies a batch of n ops (tests only; runs without the lock). */
typedef void (*md_batch_hook)(void *arg, size_t n);

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t queued_cv; /* signalled per enqueue while someone waits in md_gc_wait_queued */
    md_op *head, *tail;       /* ops waiting for a leader, in arrival order */
    size_t nqueued;
    pthread_cond_t work_cv; /* wakes the commit thread */
    pthread_t thread;       /* the commit thread (md_commit.c), started by the first write */
    int started, stop;
    int leading;   /* the commit thread is running a batch (no need to signal it) */
    int qwaiters;  /* threads in md_gc_wait_queued */
    size_t max;    /* batch limit (MD_BATCH_MAX; tests may lower it) */
    int fail_next; /* tests: this many next commits fail with fail_rc */
    int fail_rc;
    md_batch_hook hook;
    void *hook_arg;
    md_stats st;
} md_gc;

cm_err md_gc_init(md_gc *gc);
void md_gc_release(md_gc *gc);
/*
 * Run one write: queue it for the commit thread and wait until its batch is done. Returns the
 * op's result, or the batch's commit error (then nothing of the batch is durable).
 */
cm_err md_write(md_store *md, md_apply_fn apply, void *arg);
/* Queue op (apply, arg and fin set) without waiting; CM_OK, or an error and fin never runs. */
cm_err md_write_async(md_store *md, md_op *op);

/* Test hooks: batch limit, a hook before each batch, failing the next n commits with LMDB code
 * rc, and waiting until at least n ops are queued (no sleeping: signalled per enqueue). */
void md_gc_set_max(md_store *md, size_t max);
void md_gc_set_hook(md_store *md, md_batch_hook hook, void *arg);
void md_gc_fail_commits(md_store *md, int n, int rc);
void md_gc_wait_queued(md_store *md, size_t n);

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int failed; /* an allocation failed; the buffer is unusable */
} md_wbuf;

/* ---- Copies of the store on several drives (md_mirror.c) ---- */

#define MD_MIRRORS_MAX 3

/*
 * One copy of the store: an LMDB environment in a directory of its own. The first healthy one is
 * the primary (md->env, read and written by the batch leader); the others replay each batch's
 * write log on a thread of their own and commit in parallel with the primary.
 */
typedef struct {
    MDB_env *env;
    char *dir;
    size_t map_size;
    int failed;             /* a write or sync failed: never read or written again until rebuilt */
    int fail_next;          /* tests: this many next commits of this copy fail (EIO) */
    uint64_t fail_sync_seq; /* tests: the flush of this sequence number fails (EIO) */
    void (*sync_hook)(void *arg, int copy, uint64_t seq); /* tests: called before each flush */
    void *sync_hook_arg;
    /* the copy's commit thread (idle while it is the primary): one job per batch, or a sync */
    md_store *md;
    pthread_t thread;
    int started, stop;
    sem_t go, done;
    uint64_t seq; /* this job's sequence number */
    int sync_job; /* the job is a flush of the last commit (md_mirror_flush_start), not a batch */
    cm_err result;
    int flushing;     /* a flush job was posted and its result not taken yet (the leader's) */
    cm_err flush_err; /* its failure, when another copy's flush passed: marked failed next */
} md_mirror;

/* Write-log calls: every change an apply function makes goes through them, so that the batch
 * can be replayed into the other copies. They return the LMDB code. */
int md_db_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags);
int md_db_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k);
/* Delete the entry under cur (of database dbi). */
int md_db_cursor_del(MDB_cursor *cur, MDB_dbi dbi);
/* The leader: start recording a batch (reset), mark a point, drop what followed a mark. */
void md_wlog_reset(md_store *md);
size_t md_wlog_mark(md_store *md);
void md_wlog_truncate(md_store *md, size_t mark);
/*
 * Commit the primary's batch transaction txn and the batch's log on every healthy copy, in
 * parallel; mark copies whose commit failed and move the primary to the first healthy copy if it
 * failed. The copies whose last flush failed (md_mirror_flush_wait) take no part and are marked
 * too. CM_OK when at least one copy committed. NOSPC only when the primary's commit found the
 * map full and no copy committed (the caller grows the map and reruns the batch).
 */
cm_err md_mirror_commit(md_store *md, MDB_txn *txn);
/*
 * Flush every healthy copy's last commit (its meta page: the copies are opened MDB_NOMETASYNC), in
 * parallel, each on its own thread (the primary's too), without waiting: the leader applies the
 * next batch meanwhile. md_mirror_flush_wait collects the results: CM_OK when at least one copy
 * flushed, else the first error (nothing marked: every copy is as it was). The copies whose flush
 * failed while another's passed are marked failed by the next md_mirror_commit (which leaves them
 * out: the primary's open transaction cannot move to another copy) or md_mirror_flush_marks
 * (the leader holding no transaction). The leader waits for the flush before the next commit:
 * Linux reports a failed flush once, so a commit's fdatasync on the same file must not take the
 * error that belongs to the flush.
 */
void md_mirror_flush_start(md_store *md);
cm_err md_mirror_flush_wait(md_store *md);
void md_mirror_flush_marks(md_store *md);
/* Stop the copies' threads and close their environments (md_close). */
void md_mirror_close(md_store *md);
/* Tests: the next n commits of copy i fail with EIO; its flush of commit seq fails with EIO. */
void md_mirror_fail_commits(md_store *md, int i, int n);
void md_mirror_fail_sync(md_store *md, int i, uint64_t seq);
/* Tests: hook(arg, i, seq) runs on copy i's thread before each of its flushes (set while idle). */
void md_mirror_set_sync_hook(md_store *md, void (*hook)(void *, int, uint64_t), void *arg);

#define MD_FENCE_SLOTS 256
struct md_fence;
/* md_fence.c: free the fence table (md_close). */
void md_fence_release(md_store *md);
/* md_fence_admit inside the write transaction txn (an op's apply): *wrote = 1 when it stored a
 * raised token. CM_ERR_CONFLICT for a token lower than the partition's. */
cm_err md_fence_admit_txn(md_store *md, MDB_txn *txn, const char *bucket, uint32_t shard,
                          uint64_t token, int *wrote);
/* Forget bucket's tokens, stored and in memory (its delete transaction). */
cm_err md_fence_drop_txn(md_store *md, MDB_txn *txn, const char *bucket);
/* md_lifecycle.c: drop bucket's lifecycle configuration (its delete transaction). */
cm_err md_lc_drop_txn(md_store *md, MDB_txn *txn, const char *bucket);

struct md_store {
    MDB_env *env;
    MDB_dbi buckets, objects, uploads, parts, garbage, hints;
    MDB_dbi replica;   /* "replica": the commit sequence number of this copy ("seq") */
    MDB_dbi tombmarks; /* per partition: tombstones collected below this hlc (md_tomb.c) */
    MDB_dbi fences;    /* per partition: the highest partition-leader token (md_fence.c) */
    MDB_dbi lifecycle; /* bucket lifecycle configurations, the worker's state (md_lifecycle.c) */
    MDB_dbi users;     /* users, access keys and bucket policies (md_users.c) */
    MDB_dbi versions;  /* older versions of keys of versioned buckets (md_version.c) */
    MDB_dbi intents;   /* part bodies being written on a cluster node (md_intent.c) */
    MDB_dbi spill;     /* the page-filling tails of split long values (md_kv.c) */
    uint64_t life;     /* this opening of the store, random (md_intent.c) */
    /* The last version stamp issued (md_version.c): only apply functions touch it, and they all
     * run on the commit thread, one at a time. */
    uint64_t vstamp_last;
    md_gc gc;
    /* Copies (md_mirror.c): nmir 1 = a single environment, no write log. primary and mir[].failed
     * change on the leader, with map_lock held exclusively (readers use md->env). */
    md_mirror mir[MD_MIRRORS_MAX];
    int nmir, primary;
    uint64_t seq; /* commits of this store's batches (the leader's) */
    md_wbuf wlog; /* the running batch's writes */
    uint64_t copy_failures;
    int wlog_on; /* record into wlog (nmir > 1) */
    /*
     * The leader's pipeline (copies only, md_commit.c): pend is the last batch committed on some
     * copy whose flush (md_mirror_flush_start) is running and which is not answered yet; synced is
     * set by md_mirror_commit when a batch's commit succeeded on some copy (its meta page then
     * needs that flush).
     */
    md_op *pend;
    int synced;
    /*
     * Map growth (md_map_grow): LMDB may change its map size only while no transaction of the
     * process is open, since a read transaction's slices point into the map. Read transactions
     * hold map_lock shared (md_txn_begin/md_txn_end); the leader, the only writer, grows the map
     * between batches with it held exclusively. Writer-preferring, so steady readers cannot
     * starve a growth. map_size and map_max are the leader's (read under gc.mu for stats).
     */
    pthread_rwlock_t map_lock;
    size_t map_size, map_max;
    /* the highest leader token per partition, loaded lazily from "fences" (md_fence.c) */
    pthread_mutex_t fence_mu;
    struct md_fence *fence[MD_FENCE_SLOTS];
    /* the bound on the hints database's entries (0: none) and the puts it refused (md_replica.c) */
    _Atomic uint64_t hints_max, hints_refused;
};

/* Default initial map and the most a growth adds at once. */
#define MD_MAP_INITIAL ((size_t)1 << 30)
#define MD_MAP_STEP_MAX ((size_t)16 << 30)

/* Double the map (at most MD_MAP_STEP_MAX more, never past map_max). Only the group-commit leader
 * calls it, with no transaction of its own open. CM_ERR_NOSPC when it cannot grow. */
cm_err md_map_grow(md_store *md);
/* Lower the growth ceiling (tests). */
void md_map_set_max(md_store *md, size_t max);

/* Longest composite key: bucket \0 key \0 upload_id. */
#define MD_UPLOAD_ID_MAX 63
#define MD_KEYBUF (MD_BUCKET_MAX + 1 + MD_MAX_KEY + 1 + MD_UPLOAD_ID_MAX + 1)

/* Log where corruption was first seen (file:line of the check) and return CM_ERR_CORRUPT. */
cm_err md_corrupt_at(const char *file, int line, const char *what);
#define MD_CORRUPT(what) md_corrupt_at(__FILE__, __LINE__, (what))

/* Map an LMDB return code (not MDB_SUCCESS) to cm_err, logging what failed. */
cm_err md_mdb_err(int rc, const char *what);

/* ---- Record codec (md_record.c) ---- */

#define MD_FORMAT_V1 1
#define MD_FORMAT_V2 2 /* an object record with tags (OT_TAG); otherwise as V1 */
/* A record with a field whose silent loss by an older reader would corrupt or expose data: a
 * compressed body (PT_COMP) or encryption (OT_SSE, PT_SSE, BT_SSE); an older reader refuses it. */
#define MD_FORMAT_V3 3

typedef struct {
    const uint8_t *p;
    size_t n;
} md_slice;

void md_w_bytes(md_wbuf *w, const void *data, size_t len);
void md_w_free(md_wbuf *w);

cm_err md_bucket_encode(const md_bucket *b, md_wbuf *w);
/* The bucket record with its tags (BT_TAG pairs; format 2 when there are any). */
cm_err md_bucket_encode_tags(const md_bucket *b, const md_meta *tags, size_t ntags, md_wbuf *w);
/* Only the tags of an encoded bucket record (heap array, md_meta_free; none: NULL, 0). */
cm_err md_bucket_tags_decode(const uint8_t *buf, size_t len, md_meta **tags, size_t *ntags);
/* An encoded bucket record (buf) rewritten with another tag set (none: ntags 0), or another CORS
 * configuration (none: xml NULL): every other field is kept byte for byte, also fields this
 * reader does not know (another branch's), so one setting never drops another. */
cm_err md_bucket_retag(const uint8_t *buf, size_t len, const md_meta *tags, size_t ntags,
                       md_wbuf *w);
cm_err md_bucket_encode_cors(const uint8_t *buf, size_t len, const char *xml, size_t xml_len,
                             md_wbuf *w);
/* The same, replacing the default encryption (BT_SSE; mode MD_SSE_NONE removes it). */
cm_err md_bucket_encode_sse(const uint8_t *buf, size_t len, uint8_t mode, uint8_t bucket_key,
                            md_wbuf *w);
/* The same, replacing the access settings named by fields (MD_ACCESS_*) with from's. */
cm_err md_bucket_encode_access(const uint8_t *buf, size_t len, const md_bucket *from,
                               unsigned fields, md_wbuf *w);
/* The same, with another versioning state (BT_VERSIONING). */
cm_err md_bucket_encode_versioning(const uint8_t *buf, size_t len, uint8_t state, md_wbuf *w);
/* The same, with Object Lock enabled and from's default retention (BT_LOCK, format 3). */
cm_err md_bucket_encode_lock(const uint8_t *buf, size_t len, const md_bucket *from, md_wbuf *w);
/*
 * A bucket setting's change (md_btags.c): in one write op, fn gets the stored record of `name`
 * and writes the new one into w (through an md_bucket_encode_* above, so every other field is
 * kept); fn may refuse (its error is returned) or leave w empty: no change, nothing written.
 * CM_ERR_NOTFOUND when there is no such bucket; `what` names the write in errors.
 */
typedef cm_err (*md_rewrite_fn)(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w);
cm_err md_bucket_rewrite(md_store *md, const char *name, md_rewrite_fn fn, const void *arg,
                         const char *what);
/* The stored record of bucket `name` (v valid in txn); CM_ERR_NOTFOUND when there is none. */
cm_err md_bucket_record(MDB_txn *txn, md_store *md, const char *name, MDB_val *v);
/* The CORS configuration of an encoded bucket record (heap, NUL-terminated; none: NULL, 0). */
cm_err md_bucket_cors_decode(const uint8_t *buf, size_t len, char **xml, size_t *xml_len);
/* The same two for the website configuration (BT_WEBSITE, PutBucketWebsite's XML). */
cm_err md_bucket_encode_website(const uint8_t *buf, size_t len, const char *xml, size_t xml_len,
                                md_wbuf *w);
cm_err md_bucket_website_decode(const uint8_t *buf, size_t len, char **xml, size_t *xml_len);
cm_err md_bucket_decode(const uint8_t *buf, size_t len, md_bucket *out);
cm_err md_upload_encode(const md_upload *up, md_wbuf *w);
cm_err md_upload_decode(const uint8_t *buf, size_t len, md_upload *out);
cm_err md_part_encode(const md_part *part, md_wbuf *w);
cm_err md_part_decode(const uint8_t *buf, size_t len, md_part *out);
/* nobody: skip the inline body (is_inline and the CRC are still set). */
cm_err md_part_decode_ex(const uint8_t *buf, size_t len, int nobody, md_part *out);
/* Object encoding into w. Decode modes: FULL; SUMMARY skips the body, parts, headers,
 * metadata and tags (listings); NOBODY is FULL without inline bodies (what freeing a record's data
 * needs).
 */
#define MD_DECODE_FULL 0
#define MD_DECODE_SUMMARY 1
#define MD_DECODE_NOBODY 2
cm_err md_object_encode_w(const md_object *obj, md_wbuf *w);
cm_err md_object_decode_ex(const uint8_t *buf, size_t len, int mode, md_object *out);
/* The same for a record stored as two pieces a || b (a split value, md_kv_iter_parts), without
 * joining them: only a field that straddles the cut and that mode reads is copied. */
cm_err md_object_decode_split(md_slice a, md_slice b, int mode, md_object *out);
/* Encode for storing: the generation field comes last with a placeholder value, which
 * md_object_set_generation then sets inside the encoded record (after the store read the
 * previous generation, in the writing transaction). */
cm_err md_object_encode_stored(const md_object *obj, md_wbuf *w);
void md_object_set_generation(md_wbuf *w, uint64_t gen);
/* Rewrite an encoded object record with version id vid and stamp vstamp (every other field kept,
 * in order, so a stored record's generation stays last). w is replaced; CM_ERR_NOMEM leaves it. */
cm_err md_object_set_version(md_wbuf *w, const char *vid, uint64_t vstamp);
/* Garbage record value: layout, bucket and key (md_rec.c keys it by hlc and blob). */
cm_err md_garbage_encode(const md_garbage *g, md_wbuf *w);
cm_err md_garbage_decode(const uint8_t *buf, size_t len, md_garbage *out);
cm_err md_intent_encode(const md_intent *in, md_wbuf *w);
/* md_garbage_put inside the caller's write transaction (md_rec.c). */
cm_err md_garbage_put_in(MDB_txn *txn, md_store *md, const md_garbage *g, size_t n);
cm_err md_intent_decode(const uint8_t *buf, size_t len, md_intent *out);

/* ---- Versioned records (md_rec.c) ---- */

/* The replica-independent digest of a record: key, hlc, hlc_node, tombstone, vector. */
cm_err md_rec_digest(const uint8_t *key, size_t klen, const md_object *o, uint8_t out[16]);
/* Called per record of a walk with the key relative to its bucket and the record decoded as a
 * summary (generation at least 1); set *stop to end the walk. */
typedef cm_err (*md_rec_fn)(void *arg, const uint8_t *key, size_t klen, const md_object *o,
                            int *stop);
/*
 * Walk bucket's records with key > after (NULL: all) in key order, in one read transaction.
 * filter (NULL: every record) is asked first, on the key alone: a record it refuses is neither
 * joined (a split value, md_kv.c) nor decoded. A partition's walk over a bucket whose other
 * partitions' records share the store costs their keys only.
 */
cm_err md_rec_walk(md_store *md, const char *bucket, const char *after, md_key_filter filter,
                   void *farg, md_rec_fn fn, void *arg);
/* The same from the key `from` (NULL: the start), which is included when inclusive. */
cm_err md_rec_walk_from(md_store *md, const char *bucket, const char *from, int inclusive,
                        md_key_filter filter, void *farg, md_rec_fn fn, void *arg);
/* Each stored body of old that obj does not name becomes a garbage record stamped hlc; *added
 * (may be NULL) counts them. */
cm_err md_garbage_add(MDB_txn *txn, md_store *md, const char *bucket, const md_object *old,
                      const md_object *obj, uint64_t hlc, size_t *added);
/* Append an entry for key/o to a growing array. */
cm_err md_rec_info_add(md_rec_info **a, size_t *n, size_t *cap, const uint8_t *key, size_t klen,
                       const md_object *o);

/* md_users.c: an access key record ("k/" + ak, ak al bytes) decoded (md_rewrap.c reads them). */
cm_err md_user_key_decode(const uint8_t *p, size_t n, const char *ak, size_t al, md_user_key *k);

/* md_tomb.c: *refused = 1 when rec is not a tombstone and is stamped below the collection mark of
 * its partition in bucket (md_rec_merge refuses it for a key it does not hold). */
cm_err md_tomb_refuses(MDB_txn *txn, md_store *md, const char *bucket, const md_object *rec,
                       int *refused);

/* ---- Keys of any length over LMDB's 511-byte key limit (md_kv.c) ---- */

/*
 * Keys up to MD_KV_SHORT bytes are stored as they are. A longer key continues in a group under
 * its first MD_KV_SHORT + 1 bytes, as a key one level down (a tree of at most three levels for
 * the longest composite key): one LMDB lookup per level, whatever the number of keys sharing a
 * prefix. The mapping keeps memcmp order, so iteration yields full keys in order. Groups of
 * older stores (one value holding every key) are read as they are and converted when written.
 *
 * A long value that would leave most of its last overflow page empty (a record with a 4 KiB
 * body) is stored split: its head in the entry, its page-filling rest in the "spill" database
 * (md_kv.c). Readers get it whole: md_kv_get joins it into a buffer of the calling thread, valid
 * until that thread's next md_kv_get; an iterator joins into its own, valid until it moves.
 */
#define MD_KV_SHORT 480
#define MD_KV_LEVELS 4

/* The spill database's handle and the environment's page size (md_env_dbs, every open). */
cm_err md_kv_spill_init(MDB_dbi spill, size_t psize);
/* The head length of a split value of vlen bytes under an LMDB key of klen bytes; 0: unsplit. */
size_t md_kv_split_head(size_t klen, size_t vlen);
cm_err md_kv_get(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, md_slice *val);
cm_err md_kv_put(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen);
cm_err md_kv_del(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen); /* NOTFOUND */

typedef struct {
    MDB_cursor *cur;
    MDB_val k, v;      /* current LMDB entry of this level */
    size_t base;       /* bytes of the full key given by the groups above */
    uint8_t prefix[9]; /* 0x00 | group id: every entry of this level's group starts with it */
} md_kv_level;

typedef struct {
    MDB_txn *txn;
    MDB_dbi dbi;
    md_kv_level lv[MD_KV_LEVELS];
    int depth;               /* the level the current entry is on */
    int in_legacy;           /* inside an old-format group (level 0) */
    size_t gnext;            /* offset of its next entry */
    unsigned long steps;     /* cursor moves and group entries read (tests bound the work) */
    uint8_t kbuf[MD_KEYBUF]; /* the current full key when it lives below level 0 */
    md_slice key, val;       /* current full key and value */
    uint8_t *join;           /* the current value when it is stored split (heap, grown) */
    size_t join_cap;
    int lazy;        /* set by the caller: a split value is not joined (md_kv_iter_parts) */
    MDB_val pending; /* lazy: the entry (head) of the current split value; val is empty */
} md_kv_iter;

cm_err md_kv_iter_open(MDB_txn *txn, MDB_dbi dbi, md_kv_iter *it);
/* Position at the first full key >= key; CM_ERR_NOTFOUND when none. */
cm_err md_kv_iter_seek(md_kv_iter *it, const uint8_t *key, size_t klen);
cm_err md_kv_iter_next(md_kv_iter *it);
/* The current value as two pieces, value = head || tail (slices valid as val is): with
 * it->lazy set a split value's head and spilled tail as they lie in the map, without a copy
 * (val is empty for it); any other value is head, with an empty tail. */
cm_err md_kv_iter_parts(md_kv_iter *it, md_slice *head, md_slice *tail);
void md_kv_iter_close(md_kv_iter *it);
/* md_rec.c: the record under it as a summary (MD_DECODE_SUMMARY); with it->lazy set a split
 * value is decoded where it lies, unjoined. */
cm_err md_rec_summary_at(md_kv_iter *it, md_object *o);

/* Smallest key greater than every key starting with key[0..*klen): in place. 0 when none. */
int md_key_successor(uint8_t *key, size_t *klen);

/* ---- Listing helpers (md_list.c), shared by md_vlist.c ---- */

/* A NUL-terminated heap copy of p[0..n) (NULL: no memory). */
char *md_list_dup(const uint8_t *p, size_t n);
/* memcmp order of the bytes a[0..an) against the string b. */
int md_list_cmp(const uint8_t *a, size_t an, const char *b);
/* Length of the common prefix of rel (a key relative to its bucket) for prefix length plen and
 * delimiter delim (NULL or "": none), or 0 when rel does not roll up. */
size_t md_list_rollup(const uint8_t *rel, size_t n, size_t plen, const char *delim);
/* Seek it past every key that starts with full[0..boff + n) (boff: bytes of "bucket \0");
 * CM_ERR_NOTFOUND when nothing can follow. */
cm_err md_list_seek_past(md_kv_iter *it, size_t boff, const uint8_t *full, size_t n);

/* ---- Versions inside a write op (md_version.c) ---- */

/* `versions` keys: bucket \0 key, then \0 and BE64(~vstamp). */
#define MD_VSUFFIX 9
/* The vstamp in a well-formed (md_vid_valid) id that is not "null". */
uint64_t md_vid_stamp(const char *vid);
/* Is the `versions` entry under it an older version of the key k (bucket \0 key, kl bytes)? */
int md_vers_of_key(const md_kv_iter *it, const uint8_t *k, size_t kl);

/*
 * Make the stored record w the latest version of the key k (bucket \0 key), by the bucket's
 * versioning state: cur (*found) is the key's latest as the op read it. On return cur (*found)
 * is the version the write destroyed, if any (the replaced record of an unversioned bucket, or
 * the previous null version of a suspended one): the op hands it to its caller to free its
 * bodies. marker: w is a delete marker. res may be NULL. CM_ERR_NOTFOUND: no bucket.
 */
cm_err md_vers_install(md_store *md, MDB_txn *txn, const char *bucket, const uint8_t *k, size_t kl,
                       md_wbuf *w, int marker, md_object *cur, int *found, md_vres *res);
/*
 * DeleteObject's change (md_object_delete_v) inside an op: reads the key's latest itself (decoded
 * with mode), leaves the destroyed version in cur (*found), clears *wrote when nothing changed.
 */
cm_err md_vers_delete(md_store *md, MDB_txn *txn, const char *bucket, const char *key,
                      const char *vid, const md_cond *cond, int mode, md_object *cur, int *found,
                      md_vres *res, int *wrote);
/* CM_ERR_CONFLICT when bucket has older versions left (bucket deletion). */
cm_err md_vers_bucket_empty(MDB_txn *txn, md_store *md, const char *bucket);

/* ---- Composite keys (md_store.c) ---- */

/* bucket \0 key (key may be "" for the bucket's range start). CM_ERR_INVAL when too long. */
cm_err md_key_object(const char *bucket, const char *key, uint8_t *buf, size_t *len);
/* bucket \0 key \0 upload_id. */
cm_err md_key_upload(const char *bucket, const char *key, const char *upload_id, uint8_t *buf,
                     size_t *len);
/* upload_id \0 BE32(number). */
size_t md_key_part(const char *upload_id, uint32_t number, uint8_t *buf);

/* The store struct with its locks and group commit, no environment yet (md_open_copies). */
md_store *md_store_alloc(void);
/* Open (creating) the LMDB environment in dir with LMDB flags (MDB_NOTLS always; copies add
 * MDB_NOMETASYNC: md_mirror.c); *got_map is its map size. */
cm_err md_env_open(const char *dir, size_t map_size, unsigned flags, MDB_env **env,
                   size_t *got_map);
/* Open env's databases: the first copy sets md's handles, the others must get the same. */
/* Delete bucket's policy, if any, inside txn (the bucket's deletion: md_store.c). */
cm_err md_bucket_policy_drop_txn(md_store *md, MDB_txn *txn, const char *bucket);
cm_err md_env_dbs(md_store *md, MDB_env *env, int first);
/* Size of the file system holding dir (the map's ceiling). */
size_t md_fs_size(const char *dir);
/* After a failed commit of md->env: CM_ERR_UNCERTAIN when it may be durable, else e. */
cm_err md_commit_outcome(md_store *md, cm_err e);

cm_err md_txn_begin(md_store *md, int rdonly, MDB_txn **txn);
/* End a read transaction begun by md_txn_begin(md, 1, ...). */
void md_txn_end(md_store *md, MDB_txn *txn);
cm_err md_txn_commit(MDB_txn *txn);
/* Read and decode bucket/key's current record; *found 0 when absent. */
cm_err md_object_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, md_object *cur,
                      int *found);
/* The same in a read transaction of its own, by bucket and key (tombstones included). */
cm_err md_object_read_one(md_store *md, const char *bucket, const char *key, md_object *out,
                          int *found);
/* Remove every upload of bucket and its parts; the parts (no bodies) are appended to *parts. */
cm_err md_uploads_remove_bucket(MDB_txn *txn, md_store *md, const char *bucket, md_part **parts,
                                size_t *n);
/* Encode obj and store it under k with generation prev->generation + 1 (1 when prev is NULL). */
cm_err md_object_write(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen,
                       const md_object *obj, const md_object *prev);
/* Store w (md_object_encode_stored) under k with generation prev's + 1 (prev NULL: absent). */
cm_err md_object_put_stored(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, md_wbuf *w,
                            const md_object *prev);

#endif
