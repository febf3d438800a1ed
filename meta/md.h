/*
 * md.h - metadata: object, bucket and multipart records in an LMDB store.
 *
 * This is the single-node metadata store. Records are encoded in a versioned binary format
 * (md_record.c) so that later replication can ship them unchanged. Every write is atomic and
 * durable when the call returns: concurrent writes from different threads are group-committed
 * (md_commit.c), each applied in its own nested LMDB transaction inside one shared write
 * transaction that is synced once, so one write's failure never affects another's. Conditional
 * writes check their condition inside their own (nested) transaction, after every write applied
 * before them, so two racing conditional PUTs can never both succeed.
 *
 * Key space (one LMDB environment, named databases):
 *   buckets   name                          -> md_bucket record
 *   objects   bucket \0 key                 -> md_object record (the current version)
 *   versions  bucket \0 key \0 BE64(~vstamp) -> md_object record (older versions, md_version.c)
 *   uploads   bucket \0 key \0 upload_id    -> md_upload record
 *   parts     upload_id \0 part_number(BE32)-> md_part record
 *   garbage   hlc(BE64) blob_id[16]         -> md_garbage record (bodies no record uses, and
 *                                              a repair's obsolete cells of a live body)
 *   hints     target \0 bucket \0 key        -> md_object record kept for another node
 *   tombmarks bucket \0 nshards(BE32) shard(BE32) -> hlc (BE64): tombstones collected below it
 *   fences    bucket \0 shard(BE32)        -> token (BE64): the highest partition-leader token
 *   lifecycle 'c' bucket / 's' name        -> a bucket's lifecycle configuration / the state of
 *                                              a background pass: the lifecycle worker's, the
 *                                              master-key rewrap's "sse-rewrap" (md_lifecycle.c)
 *   users     "u/" name | "k/" access key | "p/" bucket -> user, access key, bucket policy
 *                                              (md_users.c)
 *   intents   hlc(BE64) blob_id[16]         -> md_intent record (a cluster node's part bodies
 *                                              being written, md_intent.c)
 * Keys sort by their UTF-8 bytes (LMDB's default memcmp order), which is S3's listing order.
 *
 * Ownership: functions that fill an out-struct allocate its strings and arrays on the heap; the
 * caller releases them with the matching *_release function. Input structs are borrowed.
 *
 * Thread safety: an md_store may be used from any number of threads (LMDB readers do not block;
 * writers queue and share commits). The environment is opened with MDB_NOTLS.
 */
#ifndef MD_H
#define MD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

#define MD_MAX_CELLS 32
#define MD_MAX_KEY 1024
#define MD_BUCKET_MAX 63

typedef struct md_store md_store;

/* Where the chunks of one stored body (a whole object, or one multipart part) live. */
typedef struct {
    uint8_t blob[16];             /* blob id, the same on every drive that holds a cell */
    uint64_t size;                /* payload bytes */
    uint32_t cell_size;           /* bytes per cell of a full stripe */
    uint8_t k, m;                 /* erasure profile */
    uint8_t drives[MD_MAX_CELLS]; /* drive index holding cell i of every stripe; 0xFF = none */
    /* Node holding cell i (drives[i] is a drive of that node): its index in the cluster layout of
     * `epoch`. 0 on a single node, and for records written before nodes existed. */
    uint16_t nodes[MD_MAX_CELLS];
    uint64_t epoch; /* layout epoch the cells were placed under; 0 = the single-node layout */
    /* Transparent compression (docs/compression.md): with zalg != MD_Z_NONE the cells hold a
     * stored stream of `size` bytes: the body cut into frames of zframe bytes, each compressed
     * or kept raw, then a table of the frames' cumulative stored ends (u64 big-endian) at ztab.
     * zsize is the body's own length. Record field PT_COMP; such a record is format 3. */
    uint8_t zalg;
    uint32_t zframe;
    uint64_t zsize, ztab;
} md_layout;

enum { MD_Z_NONE = 0, MD_Z_ZSTD = 1 };

/* The body's length (what a read of the layout sees): zsize when compressed, else size. */
#define MD_LAYOUT_BODY_SIZE(l) ((l)->zalg != MD_Z_NONE ? (l)->zsize : (l)->size)

typedef enum {
    MD_CK_NONE = 0,
    MD_CK_CRC32,
    MD_CK_CRC32C,
    MD_CK_CRC64NVME,
    MD_CK_SHA1,
    MD_CK_SHA256
} md_cksum_alg;

typedef enum { MD_CKTYPE_FULL_OBJECT = 0, MD_CKTYPE_COMPOSITE = 1 } md_cksum_type;

/* Server-side encryption of an object (docs/encryption.md). */
typedef enum { MD_SSE_NONE = 0, MD_SSE_S3 = 1, MD_SSE_C = 2 } md_sse_mode;
#define MD_SSE_WRAPPED_MAX 80 /* a wrapped 32-byte data key is 65 bytes (cm_mkey.h) */
typedef struct {
    uint8_t mode;       /* md_sse_mode */
    uint8_t salt[16];   /* SSE-C: random salt of the key check and the key-wrapping key */
    uint8_t verify[32]; /* SSE-C: HMAC-SHA256 over the salt keyed by the customer's key */
} md_sse;

typedef struct {
    char *name; /* lowercase, without the "x-amz-meta-" prefix */
    char *value;
} md_meta;

typedef struct {
    uint32_t number; /* 1..10000 */
    uint64_t size;
    int64_t mtime_ms;
    char etag[33];        /* hex MD5 of the part, no quotes */
    md_cksum_alg ck_alg;  /* checksum of this part, if any */
    char ck_value[72];    /* base64 */
    uint8_t *inline_data; /* small parts may live inline (size bytes); NULL otherwise */
    md_layout layout;     /* when not inline */
    /* Set by the decoder: the record holds the body inline (also when the body was skipped, see
     * md_part_list), and its stored CRC32C when it has one (records before it have none). */
    uint8_t is_inline;
    uint8_t inline_crc_set;
    uint32_t inline_crc; /* CRC32C of the inline body; the encoder computes it when not set */
    /* Encryption at rest (docs/encryption.md): the body's data key wrapped by the master key
     * (SSE-S3) or by a key derived from the customer's (SSE-C), and the plaintext bytes per
     * sealed segment; sse_key_len 0 = stored as sent. An encrypted body is never inline. */
    uint32_t sse_seg;
    uint8_t sse_key_len;
    uint8_t sse_key[MD_SSE_WRAPPED_MAX];
} md_part;

/* The part holds (or, decoded without its body, held) its body inline. */
#define MD_PART_INLINE(p) ((p)->inline_data != NULL || (p)->is_inline)

/* ---- Replication primitives: hybrid logical clock, version vectors (md_clock.c) ---- */

/*
 * A hybrid logical clock timestamp: wall-clock milliseconds in the high 48 bits, a logical
 * counter in the low 16. Timestamps compare as plain integers; a node id breaks ties between
 * nodes (md_stamp). 0 = none (records written before replication).
 */
#define MD_HLC_MS(ts) ((int64_t)((ts) >> 16))
#define MD_HLC_LOGICAL(ts) ((uint32_t)((ts)&0xFFFF))
#define MD_HLC_MAKE(ms, logical) (((uint64_t)(ms) << 16) | ((uint64_t)(logical)&0xFFFF))
/* A received timestamp more than this far ahead of the local wall clock is refused. */
#define MD_HLC_MAX_DRIFT_MS 60000

typedef int64_t (*md_wall_fn)(void *arg); /* wall clock in ms since the epoch */

typedef struct {
    pthread_mutex_t mu;
    uint64_t last; /* the largest timestamp issued or received */
    uint32_t node;
    md_wall_fn wall; /* NULL = CLOCK_REALTIME */
    void *wall_arg;
} md_hlc;

/* wall may be NULL (the system clock); tests pass a clock they step. */
void md_hlc_init(md_hlc *c, uint32_t node, md_wall_fn wall, void *arg);
void md_hlc_release(md_hlc *c);
/* A timestamp for a local event: greater than every timestamp issued or received before. */
uint64_t md_hlc_now(md_hlc *c);
/*
 * Merge a timestamp received from another node and return (in *out) one for the receive event,
 * greater than both. CM_ERR_INVAL (clock unchanged) when received is more than
 * MD_HLC_MAX_DRIFT_MS ahead of the wall clock: one node's wrong clock cannot drag the cluster.
 */
cm_err md_hlc_update(md_hlc *c, uint64_t received, uint64_t *out);

/*
 * Version vector: per writing node, a count of the writes it coordinated (the cluster's
 * coordinator raises its own to its write's HLC) and the HLC of its latest.
 * Sorted by node id, at most MD_VV_MAX entries: an increment or merge that would exceed it drops
 * the entry with the oldest hlc (see docs/metadata.md, "Replication primitives").
 */
#define MD_VV_MAX 8
typedef struct {
    uint32_t node;
    uint64_t counter;
    uint64_t hlc;
} md_vv_entry;

typedef struct {
    uint32_t n;
    md_vv_entry e[MD_VV_MAX];
} md_vv;

typedef enum { MD_VV_EQUAL = 0, MD_VV_BEFORE, MD_VV_AFTER, MD_VV_CONCURRENT } md_vv_order;

/* Count one write coordinated by node at hlc. */
void md_vv_increment(md_vv *vv, uint32_t node, uint64_t hlc);
/* out = pointwise maximum of a and b (out may be a or b). */
void md_vv_merge(const md_vv *a, const md_vv *b, md_vv *out);
/* a compared to b: MD_VV_BEFORE when a happened before b. */
md_vv_order md_vv_compare(const md_vv *a, const md_vv *b);
uint64_t md_vv_counter(const md_vv *vv, uint32_t node); /* 0 when absent */
/* Encoding: u8 n | n x (node u32 | counter u64 | hlc u64), big-endian. */
#define MD_VV_ENC_MAX (1 + MD_VV_MAX * 20)
size_t md_vv_encode(const md_vv *vv, uint8_t *buf); /* buf holds MD_VV_ENC_MAX */
/* CM_ERR_CORRUPT unless sorted, unique, n <= MD_VV_MAX and len exact. */
cm_err md_vv_decode(const uint8_t *buf, size_t len, md_vv *out);

typedef struct {
    char *key;
    char version_id[40]; /* "null", or MD_VID_LEN chars in a versioned bucket (md_version.c) */
    uint64_t size;
    int64_t mtime_ms;
    char etag[48]; /* "hex" or "hex-N", no quotes */
    int delete_marker;
    /* Stored response headers (NULL when not set). */
    char *content_type;
    char *cache_control;
    char *content_disposition;
    char *content_encoding;
    char *content_language;
    char *expires;
    char *website_redirect;
    char storage_class[24]; /* x-amz-storage-class as given; "" means STANDARD */
    md_meta *meta;
    size_t nmeta;
    md_meta *tags; /* object tags (name = key), in the order given; none in format-1 records */
    size_t ntags;
    /* Full-object or composite checksum. */
    md_cksum_alg ck_alg;
    md_cksum_type ck_type;
    char ck_value[72]; /* base64, with "-N" for composite */
    /* Body: inline bytes, or one or more parts (a simple PUT is one part numbered 0). */
    uint8_t *inline_data;
    size_t inline_len;
    uint8_t inline_crc_set; /* as for md_part: decoded from the record, or computed at encoding */
    uint32_t inline_crc;
    md_part *parts;
    size_t nparts;
    /* The multipart upload that made this record ("" otherwise): a retried Complete of that
     * upload finds its answer here while the key still holds this record. */
    char upload_id[64];
    md_sse sse; /* how the parts' bodies are encrypted (mode 0: not) */
    /* Replication (absent in older records: 0, an empty vector, not a tombstone). */
    uint64_t hlc;      /* HLC of the write that made this version */
    uint32_t hlc_node; /* the node that coordinated it: tie-break of equal hlc */
    md_vv vv;
    uint8_t tombstone; /* a deletion, kept so it can win against older versions */
    uint8_t acl;       /* canned ACL (md_acl); effective only when the bucket allows ACLs */
    /* Local write counter of the key on this store, bumped by every write (the store sets it;
     * replicas count on their own, so it is never compared across nodes). */
    uint64_t generation;
    /* Versioned buckets: the version's place in its key's history (md_version.c), larger is
     * newer; 0 for versions written while the bucket never had versioning. */
    uint64_t vstamp;
    /* Object Lock (md_lock.c, docs/object-lock.md): retention mode (MD_LOCK_*; 0: none) and its
     * end, and the legal hold. */
    uint8_t lock_mode;
    uint8_t legal_hold;
    int64_t lock_until_ms;
} md_object;

/*
 * Which of two versions of the same key wins: 0 for a, 1 for b. Causally newer (by version
 * vector) wins; concurrent versions (or equal vectors with different stamps) go to the larger
 * (hlc, hlc_node), S3's last-writer-wins, and *concurrent (may be NULL) is set so a versioned
 * bucket can keep the loser. Tombstones take part like any version. Deterministic and symmetric:
 * resolve(a, b) and resolve(b, a) pick the same version.
 */
int md_object_resolve(const md_object *a, const md_object *b, int *concurrent);

/*
 * Check every inline body of obj (its own, and each inline part's) against its stored CRC32C
 * (or, for records written before the CRC was stored, against a plain-MD5 ETag). CM_OK, or
 * CM_ERR_CORRUPT (logged with file:line) when a body does not match: never serve those bytes.
 */
cm_err md_object_inline_verify(const md_object *obj);
cm_err md_part_inline_verify(const md_part *part);

void md_object_release(md_object *obj); /* frees owned fields, leaves obj zeroed */
/* Deep copy. */
cm_err md_object_copy(const md_object *src, md_object *dst);

typedef struct {
    char name[MD_BUCKET_MAX + 1];
    int64_t created_ms;
    char owner[128];        /* access key id of the creator */
    uint8_t versioning;     /* MD_VERS_NEVER, MD_VERS_ENABLED or MD_VERS_SUSPENDED (md_version.c) */
    uint8_t sse_default;    /* default encryption of new objects: MD_SSE_NONE or MD_SSE_S3 */
    uint8_t sse_bucket_key; /* BucketKeyEnabled as given (recorded, changes nothing) */
    uint8_t acl;            /* canned ACL (md_acl) */
    uint8_t pab;            /* PublicAccessBlock flags (MD_PAB_*); 0: not configured */
    uint8_t ownership;      /* object ownership (md_ownership) */
    /* Object Lock (BT_LOCK): enabled for good once set; the default retention of new versions
     * (lock_mode MD_LOCK_*, 0: none) lasts lock_period days or years (lock_unit MD_LOCK_DAYS..). */
    uint8_t lock_enabled;
    uint8_t lock_mode;
    uint8_t lock_unit;
    uint32_t lock_period;
} md_bucket;

/* Canned ACLs (docs/users.md): what a bucket or object grants beyond its owner. */
typedef enum {
    MD_ACL_PRIVATE = 0,
    MD_ACL_PUBLIC_READ = 1,
    MD_ACL_PUBLIC_READ_WRITE = 2,
    MD_ACL_AUTHENTICATED_READ = 3,
    MD_ACL_OWNER_FULL_CONTROL = 4, /* bucket-owner-full-control: private for cairn's one account */
} md_acl;

/* PublicAccessBlock flags of a bucket (md_bucket.pab). */
#define MD_PAB_BLOCK_ACLS 0x01
#define MD_PAB_IGNORE_ACLS 0x02
#define MD_PAB_BLOCK_POLICY 0x04
#define MD_PAB_RESTRICT 0x08
#define MD_PAB_SET 0x80 /* a configuration was put (GetPublicAccessBlock answers it) */

/* Object ownership (md_bucket.ownership); BucketOwnerEnforced (ACLs disabled) by default. */
typedef enum {
    MD_OWN_ENFORCED = 0,
    MD_OWN_PREFERRED = 1,
    MD_OWN_WRITER = 2,
} md_ownership;

typedef struct {
    char *key;
    char upload_id[64];
    int64_t initiated_ms;
    char owner[128];
    md_object tmpl; /* headers, metadata and checksum algorithm/type chosen at create */
} md_upload;

void md_upload_release(md_upload *up);

/* ---- Store ---- */

/*
 * Open or create the store in dir (created if missing). map_size is the initial LMDB map (address
 * space; the file grows as used), 0 = 1 GiB. A write that finds the map full grows it (doubling,
 * at most 16 GiB at a time, up to the size of the file system holding dir) and is retried, so
 * CM_ERR_NOSPC means the file system is the limit.
 */
cm_err md_open(const char *dir, size_t map_size, md_store **out);
/*
 * Open or create the store kept in n copies (1..3), one LMDB environment in each of dirs[]
 * (created if missing; put them on different drives). Every write is committed on every healthy
 * copy in parallel and answered once all of them are durable; a copy whose write or sync fails is
 * marked failed (a file "failed" in its directory, logged, counted) and neither read nor written
 * again by this process. At open the copy with the highest commit sequence number wins; copies
 * that are behind, missing, unreadable or marked failed are rebuilt from it. legacy (may be NULL):
 * the directory of a single-environment store from before the copies; if it holds one and no copy
 * is fresher, the copies are built from it and it is renamed to legacy.migrated. A copy that can
 * be neither opened nor rebuilt (its drive is unwritable) is failed and the store opens without
 * it. CM_ERR_CORRUPT when copies exist but none is usable as a source, CM_ERR_IO when no copy
 * opens. n == 1 is md_open (no sequence numbers, no log).
 */
cm_err md_open_copies(const char *const *dirs, int n, const char *legacy, size_t map_size,
                      md_store **out);
/*
 * The server's layout under data_dir: with ncopies > 1 and more than one drive, min(ncopies,
 * ndrives, 3) copies in drive0/meta, drive1/meta, ... (each drive folder a disk of its own), and
 * data_dir/meta as the legacy store to migrate; otherwise one environment in data_dir/meta
 * (cluster nodes, one drive), refused with CM_ERR_INVAL when drive0/meta holds a copy instead.
 */
cm_err md_open_data(const char *data_dir, int ndrives, int ncopies, md_store **out);
void md_close(md_store *md); /* NULL is a no-op */
/*
 * CM_OK while the store can serve; CM_ERR_IO once LMDB had a fatal error (a failed meta-page
 * write puts the environment in MDB_PANIC: every later transaction fails until the process
 * reopens it, i.e. restarts). Cheap: one read transaction.
 */
cm_err md_check(md_store *md);

/* Group commit counters since md_open (a consistent snapshot; see docs/metadata.md). */
typedef struct {
    uint64_t ops;            /* write calls applied */
    uint64_t ops_committed;  /* of those, made durable by a successful commit */
    uint64_t ops_failed;     /* returned an error of their own (condition, NOTFOUND, NOSPC, ...) */
    uint64_t batches;        /* batches run by a leader */
    uint64_t batches_nested; /* of those, run again op by op (nested) after an op failed */
    uint64_t commits;        /* write transactions committed: one sync each */
    uint64_t commit_errors;  /* commits that failed (every op of the batch got the error) */
    uint64_t max_batch;      /* most ops in one batch */
    uint64_t map_size;       /* LMDB map size now (bytes of address space) */
    uint64_t map_grows;      /* times the map grew because a batch filled it */
    int copies;              /* copies of the store (md_open_copies; 1 for md_open) */
    int copies_healthy;      /* of those, not marked failed */
    int copy_failed[3];      /* per copy: marked failed */
    uint64_t copy_failures;  /* copies marked failed since open */
    uint64_t seq;            /* the store's commit sequence number (copies only) */
    uint64_t syncs;          /* flushes of a committed batch's meta page (copies only) */
} md_stats;

void md_stats_get(md_store *md, md_stats *out);

/* ---- Buckets ---- */

cm_err md_bucket_create(md_store *md, const md_bucket *b); /* CM_ERR_EXISTS */
/*
 * Bucket tags (md_btags.c), kept in the bucket's record: only this store's copy, so a cluster
 * node does not serve them (the bucket namespace lives in etcd). get: a heap array the caller
 * frees with md_meta_free (none: NULL, 0). set: replace the whole set (n 0 removes it) in one
 * write op; the record keeps every other field. CM_ERR_NOTFOUND without the bucket.
 */
cm_err md_bucket_tags_get(md_store *md, const char *name, md_meta **tags, size_t *n);
cm_err md_bucket_tags_set(md_store *md, const char *name, const md_meta *tags, size_t n);
/* Set the bucket's default encryption (MD_SSE_NONE removes it), keeping its tags and the rest
 * of its record. CM_ERR_NOTFOUND when the bucket does not exist. */
cm_err md_bucket_sse_set(md_store *md, const char *name, uint8_t mode, uint8_t bucket_key);
/*
 * The bucket's CORS configuration (md_btags.c), the XML document PutBucketCors accepted, in the
 * bucket's record (a single node's; see the tags above). get: a heap NUL-terminated copy the
 * caller frees (none: NULL, 0). set: replace it (xml NULL removes it) in one write op keeping
 * every other field. CM_ERR_NOTFOUND without the bucket.
 */
cm_err md_bucket_cors_get(md_store *md, const char *name, char **xml, size_t *len);
cm_err md_bucket_cors_set(md_store *md, const char *name, const char *xml, size_t len);
/* The same for the website configuration (PutBucketWebsite's XML; docs/website.md). */
cm_err md_bucket_website_get(md_store *md, const char *name, char **xml, size_t *len);
cm_err md_bucket_website_set(md_store *md, const char *name, const char *xml, size_t len);
/*
 * Replace access settings of a bucket (md_btags.c): those of `fields` (MD_ACCESS_*) taken from
 * `from`, in one write op that keeps every other field and the tags. CM_ERR_NOTFOUND without the
 * bucket. A single node's store only (cluster nodes refuse the requests that change them).
 */
#define MD_ACCESS_ACL 1u
#define MD_ACCESS_PAB 2u
#define MD_ACCESS_OWNERSHIP 4u
cm_err md_bucket_access_set(md_store *md, const char *name, const md_bucket *from, unsigned fields);
void md_meta_free(md_meta *pairs, size_t n); /* an array of heap pairs; NULL is a no-op */
cm_err md_bucket_get(md_store *md, const char *name, md_bucket *out); /* CM_ERR_NOTFOUND */
/*
 * Delete the bucket: CM_ERR_NOTFOUND, or CM_ERR_CONFLICT when it still holds objects (a record
 * that is not a tombstone: tombstones are deletions kept for replication). Unfinished
 * multipart uploads do not keep it (S3 deletes them with the bucket): they and their parts are
 * removed in the same op, and the removed part records (decoded without inline bodies) go to
 * *parts so the caller frees their chunks (md_parts_free); parts may be NULL.
 */
cm_err md_bucket_delete(md_store *md, const char *name, md_part **parts, size_t *n);
/* All buckets in name order; *out is a heap array the caller frees with free(). */
cm_err md_bucket_list(md_store *md, md_bucket **out, size_t *n);
/*
 * Bucket lifecycle (md_lifecycle.c, database "lifecycle"): a bucket's configuration document
 * (opaque bytes; dropped with the bucket) and the lifecycle worker's named state blobs. set:
 * CM_ERR_NOTFOUND when the bucket does not exist. get: *out a NUL-terminated heap copy (free),
 * CM_ERR_NOTFOUND when there is none. del: CM_OK when there was none. md_lc_buckets: the
 * buckets with a configuration whose name sorts after `after` (NULL: from the first), in name
 * order, at most max (free with md_lc_names_free; none: NULL, 0).
 */
cm_err md_lc_config_set(md_store *md, const char *bucket, const void *doc, size_t len);
cm_err md_lc_config_get(md_store *md, const char *bucket, char **doc, size_t *len);
cm_err md_lc_config_del(md_store *md, const char *bucket);
cm_err md_lc_buckets(md_store *md, const char *after, size_t max, char ***names, size_t *n);
void md_lc_names_free(char **names, size_t n);
cm_err md_lc_state_set(md_store *md, const char *name, const void *v, size_t len);
cm_err md_lc_state_get(md_store *md, const char *name, void **v, size_t *len);

/*
 * Master-key rotation (md_rewrap.c; docs/encryption.md): a pass over every secret wrapped under
 * the master key: the data keys in `objects`, then `versions`, then `parts` (uploads in
 * progress), then the access keys' secrets in `users`, each in key order. The caller keeps the
 * cursor (zeroed: from the start; phase MD_REWRAP_DONE: finished) and may store it to resume. fn
 * re-wraps one wrapped secret in place (same length): CM_OK with *changed, or an error that stops
 * the step; kind says what it is (MD_REWRAP_SSE_S3: an object's data key; MD_REWRAP_PART: an
 * upload's part, SSE-S3 or SSE-C, fn tells them apart; MD_REWRAP_USER: the secret of access key
 * name). md_rewrap_step does up to max records after the cursor in one write transaction, the
 * records whose secrets changed patched in place, and advances the cursor; counts are added to
 * *add. An error (fn's, a record that does not decode: its key as "bucket/key" in bad) writes
 * nothing of the step and leaves the cursor.
 */
typedef enum {
    MD_REWRAP_OBJECTS = 0,
    MD_REWRAP_VERSIONS = 1,
    MD_REWRAP_PARTS = 2,
    MD_REWRAP_USERS = 3,
    MD_REWRAP_DONE = 4
} md_rewrap_phase;
typedef enum { MD_REWRAP_PART = 0, MD_REWRAP_SSE_S3 = 1, MD_REWRAP_USER = 2 } md_rewrap_kind;
typedef struct {
    uint8_t phase;                                       /* md_rewrap_phase */
    uint8_t after[MD_BUCKET_MAX + MD_MAX_KEY + 64 + 32]; /* the last record done in phase */
    size_t after_len;                                    /* 0: from the phase's first record */
} md_rewrap_cursor;
typedef struct {
    uint64_t records, keys, rewrapped;
} md_rewrap_counts;
typedef cm_err (*md_rewrap_fn)(void *arg, uint8_t *wrapped, size_t len, md_rewrap_kind kind,
                               const char *name, int *changed);
cm_err md_rewrap_step(md_store *md, md_rewrap_cursor *cur, size_t max, md_rewrap_fn fn, void *arg,
                      md_rewrap_counts *add, char *bad, size_t bad_cap);
/* The whole store in one read transaction (a snapshot), fn asked about every wrapped key as by a
 * step but nothing written: got->rewrapped counts those fn said would change. Errors as a step. */
cm_err md_rewrap_verify(md_store *md, md_rewrap_fn fn, void *arg, md_rewrap_counts *got, char *bad,
                        size_t bad_cap);

/* ---- Users, access keys and bucket policies (md_users.c; docs/users.md) ---- */

#define MD_USER_NAME_MAX 64
#define MD_ACCESS_KEY_MAX 32
#define MD_SEALED_MAX 160 /* a wrapped secret key (cm_mkey_wrap of up to 127 bytes) */

typedef struct {
    char name[MD_USER_NAME_MAX + 1];
    int64_t created_ms;
    uint8_t disabled;
} md_user;

typedef struct {
    char access_key[MD_ACCESS_KEY_MAX + 1];
    char user[MD_USER_NAME_MAX + 1];
    int64_t created_ms;
    uint8_t disabled;
    uint8_t sealed[MD_SEALED_MAX]; /* the secret key, wrapped under the master key by the caller */
    size_t sealed_len;
} md_user_key;

/* A new user with its first key, in one write: CM_ERR_EXISTS when the name or the key is taken. */
cm_err md_user_create(md_store *md, const md_user *u, const md_user_key *k);
/* Disable or enable a user (its keys stay as they are): CM_ERR_NOTFOUND. */
cm_err md_user_set_disabled(md_store *md, const char *name, int disabled);
/* Delete a user and every key of it: CM_ERR_NOTFOUND. */
cm_err md_user_delete(md_store *md, const char *name);
/* Another key of an existing user: CM_ERR_NOTFOUND (no user), CM_ERR_EXISTS (key taken). */
cm_err md_user_key_add(md_store *md, const md_user_key *k);
cm_err md_user_key_set_disabled(md_store *md, const char *access_key, int disabled); /* NOTFOUND */
cm_err md_user_key_delete(md_store *md, const char *access_key);                     /* NOTFOUND */
/* Every user and every key, in name / access key order: heap arrays the caller frees. */
cm_err md_users_list(md_store *md, md_user **users, size_t *nu, md_user_key **keys, size_t *nk);
/*
 * The policy of the bucket incarnation created at created_ms (a policy left by a deleted bucket of
 * the same name is not this one's: CM_ERR_NOTFOUND, as when there is none). get: *json is a heap
 * NUL-terminated copy (len bytes). set: len 0 deletes it (CM_OK when there was none).
 */
cm_err md_bucket_policy_get(md_store *md, const char *bucket, int64_t created_ms, char **json,
                            size_t *len);
cm_err md_bucket_policy_set(md_store *md, const char *bucket, int64_t created_ms, const char *json,
                            size_t len);

/* ---- Objects ---- */

/* Condition checked atomically with a write (NULL = unconditional). */
typedef struct {
    int if_none_match_star; /* fail if a current, non-delete-marker object exists */
    const char *if_match;   /* etag (no quotes) the current object must have; "*" = must exist */
    int bypass_governance;  /* a version deleted by id may be under GOVERNANCE retention */
    /* The record the write replaces must not be protected by Object Lock (md_lock_protects with
     * bypass_governance, now): else CM_ERR_LOCKED. A cluster's delete of a version record in a
     * bucket with lock, checked by the partition's leader (docs/object-lock.md, "On a cluster"). */
    int unlocked;
    /* A version deleted by id as noncurrent (lifecycle, docs/lifecycle.md): in the delete's
     * transaction it must still be noncurrent, its successor (the next newer version) written at
     * successor_ms, and at least newer_min versions (the latest included) newer than it; else
     * CM_ERR_PRECONDITION. So a client's write or delete between the lifecycle's listing and its
     * delete cannot make it remove the current version or one the rule keeps. */
    int noncurrent;
    int64_t successor_ms;
    uint32_t newer_min;
    /* With noncurrent, on a cluster: the version's object key (borrowed; NULL from an older
     * node), which a long-form version key does not hold. The leader uses it only when the
     * version key belongs to it (md_ver_key_prefix), else refuses (CM_ERR_PRECONDITION). */
    const char *noncurrent_key;
    /* A cluster's PutObjectRetention / PutObjectLegalHold, decided by the partition's leader
     * (docs/object-lock.md, "On a cluster"): MD_COND_LOCK_* bits. The write's record names the
     * version record (its key) and carries the change (lock_mode, lock_until_ms, legal_hold);
     * the leader applies it with md_lock_apply (bypass_governance) to the record it reads:
     * CM_ERR_LOCKED, CM_ERR_NOTFOUND (no version, or a delete marker). */
    int lock_change;
    /* With lock_change MD_COND_LOCK_LAYOUT: the part whose layout the repair healed, and the
     * layout it healed (borrowed). */
    uint32_t heal_part;
    const md_layout *heal_old;
} md_cond;
#define MD_COND_LOCK_RETENTION 1
#define MD_COND_LOCK_HOLD 2
/* Alone (not with the bits above): a swap of the write's record (a tag, ACL or key re-wrap
 * change of a record read at quorum) whose lock fields are not the writer's to change: the leader
 * writes the record with the lock fields of the version it reads (rp_object_swap_keep_lock). */
#define MD_COND_LOCK_KEEP 8
/* Alone: a repair's layout swap (cmd/cluster_repair.c, rp_object_swap_layout): part heal_part of
 * the version the leader reads must name exactly heal_old's cells (md_layout_same_cells), else
 * CM_ERR_PRECONDITION and nothing is written; the leader writes that version with only the part's
 * layout replaced by the write's record's (every other field, the lock fields included, as read).
 */
#define MD_COND_LOCK_LAYOUT 16

/* Check cond against the current record (cur NULL when absent; a tombstone or delete marker is
 * no object): CM_OK, CM_ERR_PRECONDITION, or CM_ERR_NOTFOUND (if_match and no object). The rule
 * of md_object_put, also used by the replicated coordinator (repl/). */
cm_err md_cond_check(const md_cond *cond, const md_object *cur);

/*
 * Get the current record of bucket/key. CM_ERR_NOTFOUND when absent (a delete marker is returned
 * as a record with delete_marker set).
 */
cm_err md_object_get(md_store *md, const char *bucket, const char *key, md_object *out);
/*
 * Make obj the current record of bucket/key (obj->key names it). When cond is given it is checked
 * in the same transaction: CM_ERR_PRECONDITION when it fails; CM_ERR_NOTFOUND when if_match is set
 * and there is no current object. If a previous record was replaced and old is non-NULL, it is
 * moved into *old (so the caller can free its chunks) and *had_old set to 1.
 * CM_ERR_NOTFOUND also when the bucket does not exist.
 */
cm_err md_object_put(md_store *md, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old);
/*
 * md_object_put without waiting for the commit: obj is encoded before the call returns; bucket
 * and cond are borrowed until done runs. done runs exactly once, on the store's commit thread,
 * when the put's batch is durable or failed: err and the replaced record as md_object_put gives
 * them (old is done's to release when had_old). done must not block: the next batch waits for it.
 * Returns CM_OK when queued; otherwise the error, and done never runs.
 */
typedef void (*md_put_done_fn)(void *arg, cm_err err, md_object *old, int had_old);
cm_err md_object_put_async(md_store *md, const char *bucket, const md_object *obj,
                           const md_cond *cond, md_put_done_fn done, void *arg);
/*
 * Remove bucket/key. The removed record goes to *old when non-NULL (*had_old = 1). Removing a
 * missing key is CM_OK with *had_old = 0. cond (if_match only) as for put.
 */
cm_err md_object_delete(md_store *md, const char *bucket, const char *key, const md_cond *cond,
                        md_object *old, int *had_old);

/*
 * DeleteObjects: remove the n keys of bucket in one op (one nested transaction of one group
 * commit, so one sync at most for the whole request). errs[i] is each key's own result (CM_OK
 * also for a key that was not there, CM_ERR_INVAL for a key too long, CM_ERR_CORRUPT for a record
 * that does not decode, which is left in place); olds[i] (decoded without inline bodies, release
 * each with md_object_release) and had_old[i] the removed record, for freeing its chunks. Returns
 * CM_OK, or the transaction's failure, which then is every key's result and nothing was removed.
 */
cm_err md_objects_delete(md_store *md, const char *bucket, const char *const *keys, size_t n,
                         cm_err *errs, md_object *olds, int *had_old);

/*
 * Self-repair: replace the layout of part part_index of bucket/key's current record with
 * new_layout, in one write transaction, if that part is still stored under old_blob (the body the
 * caller rebuilt). CM_ERR_CONFLICT when the record is gone, is a delete marker, or the part no
 * longer has old_blob (the object changed meanwhile: the caller drops its rebuilt data; in a
 * versioned bucket the key's older versions are searched first, and the one storing old_blob is
 * swapped instead: md_repair.c);
 * CM_ERR_INVAL when new_layout->size differs from the part's size. Nothing else in the record
 * changes. Defined in md_repair.c.
 */
cm_err md_object_replace_layout(md_store *md, const char *bucket, const char *key,
                                size_t part_index, const uint8_t old_blob[16],
                                const md_layout *new_layout);

/* a and b name the same blob, size and cells (node and drive of each of the k + m). Defined in
 * md_repair.c. */
int md_layout_same_cells(const md_layout *a, const md_layout *b);

/* ---- Listing ---- */

typedef struct {
    const char *prefix;      /* "" or NULL = all */
    const char *delimiter;   /* NULL or "" = none */
    const char *start_after; /* exclusive; NULL = from the start */
    size_t max_keys;         /* entries + common prefixes returned at most (0 = none) */
} md_list_query;

typedef struct {
    char *key;     /* object key, or the common prefix */
    int is_prefix; /* 1 for a common prefix: only key is set */
    int is_latest; /* md_list_versions: the key's latest version (md_list_objects: always 0) */
    md_object obj; /* record summary: size, etag, mtime_ms, version_id, ck fields (no body) */
} md_list_entry;

typedef struct {
    md_list_entry *entries; /* in key order, objects and prefixes interleaved */
    size_t n;
    int truncated;
    char *next_marker; /* when truncated: last key or prefix returned (resume after it) */
    /* md_list_versions, when truncated after a version: its version id (NULL after a prefix) */
    char *next_version_marker;
} md_list_result;

/*
 * S3 listing over the current records of a bucket (delete markers are skipped: a key whose latest
 * version is a marker is not listed): keys with the prefix, after start_after, with
 * keys containing the delimiter after the prefix rolled up into common prefixes (each counted once
 * toward max_keys, and never repeated on a later page that starts after it).
 */
cm_err md_list_objects(md_store *md, const char *bucket, const md_list_query *q,
                       md_list_result *out);
void md_list_result_release(md_list_result *res);

/* ---- Object Lock (md_lock.c; docs/object-lock.md) ---- */

#define MD_LOCK_GOVERNANCE 1
#define MD_LOCK_COMPLIANCE 2
#define MD_LOCK_DAYS 1
#define MD_LOCK_YEARS 2
#define MD_LOCK_MAX_DAYS 36500 /* a default retention of at most 100 years */
#define MD_LOCK_MAX_YEARS 100

/*
 * 1 when version o may not be destroyed at now_ms: its legal hold is on, or its retention runs
 * past now_ms in COMPLIANCE mode, or in GOVERNANCE mode without bypass. A delete marker is never
 * protected (S3 keeps no lock on markers).
 */
int md_lock_protects(const md_object *o, int64_t now_ms, int bypass);
/*
 * Whether the retention of cur may become (mode, until_ms) at now_ms: CM_OK, or CM_ERR_LOCKED
 * when that shortens or removes a running retention (GOVERNANCE: allowed with bypass) or
 * downgrades a running COMPLIANCE one. Lengthening, and GOVERNANCE to COMPLIANCE, are allowed.
 */
cm_err md_lock_change_ok(const md_object *cur, uint8_t mode, int64_t until_ms, int64_t now_ms,
                         int bypass);
/* The end of a default retention of period units (MD_LOCK_DAYS or MD_LOCK_YEARS: calendar
 * years, UTC) starting at now_ms; CM_ERR_RANGE outside 1..MD_LOCK_MAX_*. */
cm_err md_lock_default_until(int64_t now_ms, uint8_t unit, uint32_t period, int64_t *until_ms);
/*
 * PutObjectLockConfiguration: enable Object Lock on the bucket (for good) with the default
 * retention of from (lock_mode 0: none). CM_ERR_LOCKED when the bucket's versioning is not
 * Enabled (S3's InvalidBucketState); CM_ERR_NOTFOUND.
 */
cm_err md_bucket_lock_set(md_store *md, const char *name, const md_bucket *from);
/*
 * Set the retention (set_retention: mode 0 removes it) and/or the legal hold (set_hold) of
 * version vid of bucket/key ("null" for the null version; the latest when vid is NULL), checking
 * md_lock_change_ok at now in the same transaction. CM_ERR_NOTFOUND (no such version, or a delete
 * marker), CM_ERR_LOCKED.
 */
typedef struct {
    int set_retention;
    uint8_t mode;
    int64_t until_ms;
    int set_hold;
    uint8_t legal_hold;
    int bypass_governance;
} md_lock_change;
cm_err md_version_set_lock(md_store *md, const char *bucket, const char *key, const char *vid,
                           const md_lock_change *ch);
/* The change ch made to version o at now_ms (md_lock_change_ok decides a retention): CM_OK, or
 * CM_ERR_LOCKED with o unchanged. What md_version_set_lock applies, and a cluster node to the
 * version record it swaps. */
cm_err md_lock_apply(md_object *o, const md_lock_change *ch, int64_t now_ms);

/* ---- Versions (md_version.c; docs/versioning.md) ---- */

/*
 * A bucket's versioning state (md_bucket.versioning). NEVER: every write replaces the key's one
 * record, version id "null" (what every bucket did before versioning existed). ENABLED: every
 * write (PUT, Complete, Copy, a plain DELETE's delete marker) makes a new version with a fresh id
 * and keeps the one it replaces. SUSPENDED: writes make the version "null", replacing the key's
 * null version (wherever it is in the history) and keeping every other one. A bucket never
 * returns to NEVER.
 *
 * Storage: `objects` holds each key's latest version (a delete marker, when that is the latest),
 * so every reader of current records (GET, listings, conditions, repair) is unchanged; database
 * `versions` holds the older ones under bucket \0 key \0 BE64(~vstamp), i.e. newest first. A key
 * has entries in `versions` only while it has a record in `objects`. Each change is one write op
 * (one LMDB transaction): a crash leaves it wholly done or not at all.
 *
 * Version ids (MD_VID_LEN lowercase hex digits): 16 of ~vstamp, so ids of one key sort newest
 * first, then 16 random ones (an id cannot be guessed from another). vstamps are assigned by the
 * store when the write commits, larger than the key's latest and than any stamp issued before by
 * this process (ms << 16 | counter), so a key's history is in commit order.
 */
#define MD_VERS_NEVER 0
#define MD_VERS_ENABLED 1
#define MD_VERS_SUSPENDED 2
#define MD_VID_LEN 32

/* What a write did to a key's versions (every field set by the _v calls on CM_OK). */
typedef struct {
    char version_id[MD_VID_LEN + 1]; /* the version made (PUT, marker) or removed (by id) */
    int delete_marker;               /* that version is a delete marker */
    int versioned;                   /* the bucket is not MD_VERS_NEVER: answer x-amz-version-id */
} md_vres;

/* 1 when vid is "null" or MD_VID_LEN lowercase hex digits (a well-formed id). */
int md_vid_valid(const char *vid);
/* The id of a version with vstamp, random part rnd (out: MD_VID_LEN + 1 bytes). */
void md_vid_make(uint64_t vstamp, const uint8_t rnd[8], char *out);
/* Set the bucket's state (ENABLED or SUSPENDED; CM_ERR_INVAL otherwise). CM_ERR_NOTFOUND. */
cm_err md_bucket_set_versioning(md_store *md, const char *name, uint8_t state);

/*
 * The version vid of bucket/key (the latest or an older one; delete markers included).
 * CM_ERR_NOTFOUND when the key has no such version (or vid is malformed).
 */
cm_err md_version_get(md_store *md, const char *bucket, const char *key, const char *vid,
                      md_object *out);

/*
 * md_object_put, md_object_put_async, md_upload_complete that also report what they made (res
 * may be NULL): the bucket's state decides (see above). In a versioned bucket *old is only the
 * version the write destroyed (SUSPENDED: the key's previous null version), never the one it made
 * noncurrent. cond is checked against the key's latest version, in the same transaction.
 * md_object_put_async_v fills *res (kept by the caller until done runs) before done runs.
 */
cm_err md_object_put_v(md_store *md, const char *bucket, const md_object *obj, const md_cond *cond,
                       md_object *old, int *had_old, md_vres *res);
cm_err md_object_put_async_v(md_store *md, const char *bucket, const md_object *obj,
                             const md_cond *cond, md_vres *res, md_put_done_fn done, void *arg);
cm_err md_upload_complete_v(md_store *md, const char *bucket, const char *upload_id,
                            const md_object *obj, const md_cond *cond, md_part **parts, size_t *n,
                            md_object *old, int *had_old, md_vres *res);

/*
 * DeleteObject. vid NULL: delete the key; in a NEVER bucket its record goes (as md_object_delete),
 * otherwise a delete marker becomes the latest version (ENABLED: a new id; SUSPENDED: "null",
 * destroying the previous null version), even when the key has no version. vid given: destroy that
 * version; the latest's removal makes the newest older version the latest. An unknown (well-formed)
 * version is CM_OK with *had_old = 0; a malformed one CM_ERR_INVAL. cond (if_match) is checked
 * against the latest (vid NULL) or the version named. *old: the destroyed version (bodies to
 * free). res: the marker made, or the version removed.
 */
cm_err md_object_delete_v(md_store *md, const char *bucket, const char *key, const char *vid,
                          const md_cond *cond, md_object *old, int *had_old, md_vres *res);
/* DeleteObjects with a version id per key (vids NULL, or vids[i] NULL: the key), one op as
 * md_objects_delete; res (may be NULL) holds n results. */
cm_err md_objects_delete_v(md_store *md, const char *bucket, const char *const *keys,
                           const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                           int *had_old, md_vres *res);
/* The same, bypassing GOVERNANCE retention when bypass (the caller checked the permission);
 * a key whose version is protected (md_lock_protects) is left with errs[i] CM_ERR_LOCKED. */
cm_err md_objects_delete_vb(md_store *md, const char *bucket, const char *const *keys,
                            const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                            int *had_old, md_vres *res, int bypass);

/*
 * Replace the tags of version vid of bucket/key (the latest or an older one, not a delete marker:
 * CM_ERR_NOTFOUND) in one write op; the body and every other field stay.
 */
cm_err md_version_set_tags(md_store *md, const char *bucket, const char *key, const char *vid,
                           const md_meta *tags, size_t ntags);

/*
 * The versions of one key, newest first, as summaries (MD_DECODE_SUMMARY fields: no bodies,
 * headers or tags): [0] is the latest (is_latest in the md_list_entry sense), the rest older.
 * At most max; *truncated when more exist. *out: md_objects_free. None: CM_OK, n 0. For the
 * lifecycle worker: version i > 0 became noncurrent when version i - 1 was written (its
 * mtime_ms); [0].delete_marker with n == 1 is an expired object delete marker; destroy a version
 * with md_object_delete_v(vid) (hand its *old to ob_free_object_data). To walk every key of a
 * bucket, those whose latest is a delete marker included (md_list_objects skips them), page
 * through md_list_versions.
 */
cm_err md_key_versions(md_store *md, const char *bucket, const char *key, size_t max,
                       md_object **out, size_t *n, int *truncated);

/* ListObjectVersions: prefix/delimiter as md_list_query; after (key_marker, vid_marker). */
typedef struct {
    const char *prefix, *delimiter;
    const char *key_marker; /* NULL: from the start */
    const char *vid_marker; /* with key_marker: resume after this version of key_marker */
    size_t max_keys;        /* versions + common prefixes returned at most */
} md_vlist_query;

/*
 * Every version (delete markers too) of the keys in key order, newest first within a key;
 * is_latest set on each key's latest. Truncated: next_marker is the last key (or prefix) and
 * next_version_marker its version id. A vid_marker that no longer exists resumes at the next
 * older version (or, for "null", the next key).
 */
cm_err md_list_versions(md_store *md, const char *bucket, const md_vlist_query *q,
                        md_list_result *out);

/* Call fn for every older (noncurrent) version of bucket, decoded without inline bodies (fsck:
 * the bodies they name are live). fn returning non-CM_OK stops the walk with that error. */
typedef cm_err (*md_version_fn)(void *arg, const md_object *o);
cm_err md_versions_walk(md_store *md, const char *bucket, md_version_fn fn, void *arg);

/* ---- Multipart uploads ---- */

/* Store a new upload (up->upload_id set by the caller, unique). CM_ERR_NOTFOUND: no bucket. */
cm_err md_upload_create(md_store *md, const char *bucket, const md_upload *up);
/* CM_ERR_NOTFOUND when no such upload for bucket/key. */
cm_err md_upload_get(md_store *md, const char *bucket, const char *key, const char *upload_id,
                     md_upload *out);
/*
 * Record a part of an existing upload (CM_ERR_NOTFOUND if the upload is gone). A part with the
 * same number is replaced; the replaced record goes to *old (*had_old = 1) so its chunks can be
 * freed.
 */
cm_err md_part_put(md_store *md, const char *bucket, const char *key, const char *upload_id,
                   const md_part *part, md_part *old, int *had_old);
void md_part_release(md_part *part);
/*
 * Parts with number > after, in order, at most max; *truncated set when more follow. Parts are
 * decoded without their inline bodies (is_inline set, inline_data NULL): a listing of 10,000
 * inline parts holds 10,000 md_part structs (about 2 MB), not their 640 MiB of bodies.
 */
cm_err md_part_list(md_store *md, const char *upload_id, uint32_t after, size_t max,
                    md_part **parts, size_t *n, int *truncated);
void md_parts_free(md_part *parts, size_t n);
/*
 * Atomically: check cond against the current object, write obj as the current record of
 * bucket/key, and delete the upload and all its part records. The part records that existed are
 * returned in *parts (caller frees the chunks of those not used by obj, then md_parts_free) and the
 * replaced object in *old. CM_ERR_NOTFOUND when the upload is gone; CM_ERR_CONFLICT (and nothing
 * changed) when a part obj names is no longer the recorded one (replaced by a concurrent upload).
 */
/* obj->parts may name inline parts without their bytes (as md_part_list returns them): the
 * bodies are read from the part records. The record stores upload_id (md_object.upload_id). */
cm_err md_upload_complete(md_store *md, const char *bucket, const char *upload_id,
                          const md_object *obj, const md_cond *cond, md_part **parts, size_t *n,
                          md_object *old, int *had_old);
/*
 * The record md_upload_complete would store for obj, without storing it or touching the upload: a
 * deep copy (release with md_object_release) with upload_id set and the inline parts' bodies read
 * from their part records. For a cluster node, which stores the record through the replicated
 * metadata and then drops the upload with md_upload_abort. CM_ERR_CONFLICT when an inline part was
 * replaced since it was listed, CM_ERR_NOTFOUND when it is gone.
 */
cm_err md_upload_assemble(md_store *md, const char *upload_id, const md_object *obj,
                          md_object *out);
/* Delete the upload and its part records, returned in *parts. CM_ERR_NOTFOUND if unknown. */
cm_err md_upload_abort(md_store *md, const char *bucket, const char *key, const char *upload_id,
                       md_part **parts, size_t *n);

typedef struct {
    const char *prefix;
    const char *delimiter;
    const char *key_marker; /* uploads with key > marker, or key == marker and id > id marker */
    const char *upload_id_marker;
    size_t max_uploads;
} md_upload_query;

typedef struct {
    md_upload *uploads; /* entries with key == NULL-free; prefixes listed separately */
    size_t n;
    char **prefixes; /* common prefixes, in order */
    size_t nprefixes;
    int truncated;
    char *next_key_marker;
    char *next_upload_id_marker;
} md_upload_list;

cm_err md_upload_list_query(md_store *md, const char *bucket, const md_upload_query *q,
                            md_upload_list *out);
void md_upload_list_release(md_upload_list *res);

/* ---- Versioned records: the store as a replica sees it (md_rec.c) ---- */

/*
 * Every object write (S3 calls included) sets the record's generation to the previous one + 1
 * (1 for a new key). md_rec_put writes a record as given (hlc, vv, tombstone included) if the
 * key's generation is expect (0 = the key must be absent; MD_GEN_ANY = no check), else
 * CM_ERR_CONFLICT; CM_ERR_NOTFOUND when the bucket does not exist. *gen (may be NULL) gets the
 * new generation. In the same transaction, each stored body of the replaced record that the new
 * record does not use becomes a garbage record stamped with obj->hlc (md_garbage_list). A
 * tombstone is a record like any other: md_object_get and listings treat it as absent.
 */
#define MD_GEN_ANY UINT64_MAX
cm_err md_rec_put(md_store *md, const char *bucket, const md_object *obj, uint64_t expect,
                  uint64_t *gen);
/* The record as stored, tombstones included (CM_ERR_NOTFOUND when none). */
cm_err md_rec_get(md_store *md, const char *bucket, const char *key, md_object *out);

/* One key in a raw listing or a Merkle leaf. */
typedef struct {
    char *key;
    uint64_t generation;
    uint64_t hlc;
    uint32_t hlc_node;
    uint8_t tombstone;
    uint8_t digest[16]; /* of key, hlc, hlc_node, vv, tombstone: equal on replicas in sync */
} md_rec_info;

/*
 * Keys of bucket after `after` (NULL = from the start) in byte order, at most max, tombstones
 * included; *truncated when more follow (resume after the last key). *out is a heap array.
 */
cm_err md_rec_list(md_store *md, const char *bucket, const char *after, size_t max,
                   md_rec_info **out, size_t *n, int *truncated);
void md_rec_infos_free(md_rec_info *infos, size_t n);
/* Keys present in only one of two sorted lists, or with different digests (heap array of heap
 * strings, in order; free with md_keys_free). */
cm_err md_rec_diff(const md_rec_info *a, size_t na, const md_rec_info *b, size_t nb, char ***keys,
                   size_t *n);
void md_keys_free(char **keys, size_t n);

/* ---- Merkle summaries for anti-entropy (md_merkle.c) ---- */

/*
 * A tree of MD_MERKLE_FANOUT children per node over a bucket's keys. Leaf i holds the keys whose
 * hash's top bits are i (so two replicas place a key alike whatever else they hold); a leaf's
 * hash is the lane-wise sum of its keys' digests, an inner node's a SHA-256 of its children.
 * Level 0 is the root; level depth has FANOUT^depth leaves.
 */
#define MD_MERKLE_FANOUT 16
#define MD_MERKLE_MAX_DEPTH 5
typedef struct md_merkle md_merkle;

/* depth 1..MD_MERKLE_MAX_DEPTH; md_merkle_depth_for picks about 8 keys per leaf. */
cm_err md_merkle_build(md_store *md, const char *bucket, int depth, md_merkle **out);
int md_merkle_depth_for(uint64_t nkeys);
void md_merkle_free(md_merkle *t);
int md_merkle_depth(const md_merkle *t);
uint64_t md_merkle_count(const md_merkle *t); /* keys summarised */
/* The 16-byte hash of node index at level (NULL when out of range). */
const uint8_t *md_merkle_node(const md_merkle *t, int level, size_t index);
size_t md_merkle_leaf_of(const md_merkle *t, const char *key); /* 0 if hashing fails */
/*
 * Walk two trees of the same depth top-down, descending only into differing nodes: the differing
 * leaves go to *leaves (heap, ascending), the hashes compared to *compared (what a remote walk
 * exchanges). CM_ERR_INVAL for different depths.
 */
cm_err md_merkle_diff(const md_merkle *a, const md_merkle *b, size_t **leaves, size_t *n,
                      size_t *compared);
/* The keys of bucket in the given leaves (sorted ascending), in key order. */
cm_err md_merkle_leaf_keys(md_store *md, const char *bucket, const md_merkle *t,
                           const size_t *leaves, size_t nleaves, md_rec_info **out, size_t *n);
/* The same over the keys that pass filter only (NULL: all), e.g. one shard of the bucket, so two
 * replicas of a partition compare alike whatever else their stores hold. The leaf keys answer
 * CM_ERR_NOTFOUND for an unknown bucket (so does md_merkle_leaf_keys). */
/* Keep a key (1) or skip it (0); key holds no NUL, klen bytes. */
typedef int (*md_key_filter)(void *arg, const uint8_t *key, size_t klen);
cm_err md_merkle_build_ex(md_store *md, const char *bucket, int depth, md_key_filter filter,
                          void *farg, md_merkle **out);
cm_err md_merkle_leaf_keys_ex(md_store *md, const char *bucket, int depth, md_key_filter filter,
                              void *farg, const size_t *leaves, size_t nleaves, md_rec_info **out,
                              size_t *n);

/* ---- What a replica of a partition needs (md_replica.c; docs/replication.md) ---- */

/*
 * The shard of nshards (>= 1) a key belongs to: bytes 4..7 of SHA-256(key), big-endian, mod
 * nshards (bytes 0..3 number the key's Merkle leaf; the shard takes other bits so that the leaves
 * of one shard are used evenly). A multipart record's key takes its object key's shard (below).
 * Stable: the partitioning of a cluster depends on it.
 */
uint32_t md_shard_of(const uint8_t *key, size_t klen, uint32_t nshards);

/*
 * The reserved key space of multipart records on a cluster node (md_mpkey.c, docs/
 * multipart-cluster.md): keys that start with MD_MPU_MARK, which no S3 key (UTF-8) holds, and
 * sort after every S3 key. md_shard_of places an upload's and its parts' records in the shard of
 * the object key. Upload ids are MD_MPU_ID_LEN lowercase hex digits (md_mpu_id_valid).
 *   md_mpu_upload_key:    the upload record's key (CM_ERR_INVAL: an empty key or a bad id); a
 *                         key longer than MD_MAX_KEY - 36 bytes escaped has the long form FF 'u'
 *                         esc(head) 01 03 hash 01 01 upload_id, as a version key (below);
 *   md_mpu_upload_key_prefix: the prefix of the upload keys of key alone (either form; its
 *                         01 01 included), out MD_MAX_KEY + 1 bytes;
 *   md_mpu_upload_long_id: the id (MD_MPU_ID_LEN + 1) of a long-form upload key (CM_ERR_CORRUPT
 *                         for anything else; the key is in the record, not in its key);
 *   md_mpu_upload_prefix: the prefix of the short-form upload keys of object keys starting with
 *                         key_prefix (a long form is in it when its head starts with key_prefix);
 *   md_mpu_upload_split:  key (MD_MAX_KEY + 1 bytes) and id (MD_MPU_ID_LEN + 1) of a short-form
 *                         upload key;
 *   md_mpu_prefix_split:  the key prefix of a common prefix of upload keys;
 *   md_mpu_part_prefix:   the prefix of every part key of one upload;
 *   md_mpu_part_key:      the key of one UploadPart's record (number 1..99999, id unique to it);
 *   md_mpu_part_split:    number and id of a part key whose prefix is prefix_len bytes.
 * out holds at least MD_MAX_KEY + 1 bytes. CM_ERR_CORRUPT for a key that is not of the kind.
 */
#define MD_MPU_MARK 0xFF
#define MD_MPU_ID_LEN 32
#define MD_MPU_PART_KEY_MAX (2 + 8 + MD_MPU_ID_LEN + 1 + 5 + 1 + 16 + 1)
int md_mpu_id_valid(const char *upload_id);
cm_err md_mpu_upload_key(const char *key, const char *upload_id, char *out, size_t cap);
cm_err md_mpu_upload_prefix(const char *key_prefix, char *out, size_t cap);
cm_err md_mpu_upload_split(const char *ukey, char *key, char *upload_id);
cm_err md_mpu_upload_key_prefix(const char *key, char *out, size_t cap);
cm_err md_mpu_upload_long_id(const char *ukey, char *upload_id);
cm_err md_mpu_prefix_split(const char *uprefix, char *key_prefix);
cm_err md_mpu_part_prefix(const char *key, const char *upload_id, char *out, size_t cap);
cm_err md_mpu_part_key(const char *key, const char *upload_id, uint32_t number, uint64_t id,
                       char *out, size_t cap);
cm_err md_mpu_part_split(const char *pkey, size_t prefix_len, uint32_t *number, uint64_t *id);
/*
 * Version records of a cluster node (docs/versioning.md, "On a cluster"), in the same reserved
 * space, in the shard of their object key: FF 'v' esc(key) 01 01 order, order the version's 32
 * lowercase hex digits (md_mpu_id_valid) that sort newest first. A key too long for that (more
 * than MD_MAX_KEY - 36 bytes escaped) has the long form FF 'v' esc(head) 01 03 hash 01 01 order:
 * head its longest start that fits, hash the 64 hex digits of SHA-256(key); every S3 key has one.
 *   md_ver_prefix:     the prefix of the short-form version keys of object keys starting with
 *                      key_prefix;
 *   md_ver_key_prefix: the prefix of the version keys of key alone (either form; its 01 01
 *                      included), out MD_MAX_KEY + 1 bytes;
 *   md_ver_key:        one version's key (CM_ERR_INVAL: an empty key or a bad order);
 *   md_ver_split:      key (MD_MAX_KEY + 1 bytes) and order (MD_MPU_ID_LEN + 1) of a short-form
 *                      version key (CM_ERR_CORRUPT for the long form: its key is not in it).
 */
cm_err md_ver_prefix(const char *key_prefix, char *out, size_t cap);
cm_err md_ver_key_prefix(const char *key, char *out, size_t cap);
cm_err md_ver_key(const char *key, const char *order, char *out, size_t cap);
cm_err md_ver_split(const char *vkey, char *key, char *order);
/* The version key of the `null` version a record from before versioning (plain, its key an S3
 * key) becomes once a pointer replaces it: its order made from plain's own stamp (~hlc, ~node,
 * zeros), so every node copying it names the same key (rp_version.c keep_null, md_rec_merge). */
cm_err md_ver_null_key(const md_object *plain, char *out, size_t cap);
/* A key filter (md_key_filter) that keeps the keys of one shard; arg is an md_shard. */
typedef struct {
    uint32_t shard, nshards;
} md_shard;
int md_shard_keep(void *arg, const uint8_t *key, size_t klen);

/*
 * Merge-put: store rec (hlc, vector, tombstone as given) unless the stored version of its key wins
 * md_object_resolve, in one write transaction. *applied = 1 when the store now holds rec (also
 * when it held that very version already: same key, stamp, vector and tombstone; then nothing is
 * written), 0 when its own version won. The loser's stored bodies that the winner does not name
 * (the replaced record's, or rec's when it lost) become garbage records stamped with the larger
 * of the two hlcs, except where a versioned key's pointer is one side: then none, and a record
 * from before versioning that a new version's pointer did not see (vectors) is stored as the
 * key's null version (md_ver_null_key) unless that key is there (docs/versioning.md, "On a
 * cluster"). CM_ERR_NOTFOUND when the bucket does not exist.
 */
cm_err md_rec_merge(md_store *md, const char *bucket, const md_object *rec, int *applied);
/* What a replica does with a received record: with a clock, merge the record's stamp into it
 * (md_hlc_update; CM_ERR_INVAL, nothing stored, for a stamp more than MD_HLC_MAX_DRIFT_MS ahead
 * of the wall clock); then md_hint_put for hint_for (not NULL) or md_rec_merge. */
/*
 * Fencing of conditional writes (docs/replication.md, "Conditional writes"): each partition
 * (bucket, shard) has the highest partition-leader token this store has seen. A write with token
 * (> 0) is admitted when it is not lower (and raises the highest to it); lower is CM_ERR_CONFLICT,
 * so a leader that was replaced cannot write here once its successor did. token 0 is admitted and
 * changes nothing. Durable (database "fences", md_fence.c): a write op of the group commit, the
 * same as md_fence_barrier, that syncs only when it raises the stored token; a reopened store
 * still refuses what it refused before. Deleting a bucket forgets its tokens.
 */
cm_err md_fence_admit(md_store *md, const char *bucket, uint32_t shard, uint64_t token);

cm_err md_rec_receive(md_store *md, md_hlc *clock, const char *bucket, const md_object *rec,
                      const char *hint_for, int *applied);
/*
 * The layout guard of a replica write (docs/replication.md, "The fence and the commit queue"): the
 * node admitted the write's call under layout epoch `epoch` against its fence `bar` (borrowed: the
 * node's nd_service_config.epoch, which only rises). The commit thread checks it again as it
 * applies the write: when *bar rose above epoch meanwhile, the write is refused CM_ERR_STALE,
 * nothing stored. So in the store's write order a write of an older layout either comes before the
 * fence rose, and a md_merkle_leaves begun after the rise sees it (that read is ordered after every
 * queued write), or is refused. bar NULL or epoch 0: not guarded.
 */
typedef struct {
    const _Atomic uint64_t *bar;
    uint64_t epoch;
} md_guard;
/* md_rec_receive of a partition leader's write (never a hint): token is admitted
 * (md_fence_admit) inside the merge's write transaction, so the admission and the write are one
 * step of the store's write order (md_fence_barrier); CM_ERR_CONFLICT, nothing stored, for a token
 * lower than the partition's. token 0: md_rec_receive without a hint. guard (NULL: none): see
 * md_guard; checked in the same transaction, before the token. */
cm_err md_rec_receive_fenced(md_store *md, md_hlc *clock, const char *bucket, uint32_t shard,
                             uint64_t token, const md_guard *guard, const md_object *rec,
                             int *applied);
/*
 * md_rec_receive_fenced (token 0: md_rec_receive without a hint) without waiting for the commit:
 * the clock is updated and rec encoded before the call returns, but rec and bucket are borrowed
 * until done runs (the merge reads them in the commit). done runs exactly once, on the store's
 * commit thread, when the merge's batch is durable or failed, with what md_rec_receive_fenced
 * would have returned and set; it must not block (the next batch waits for it). Returns CM_OK
 * when queued; otherwise the error (CM_ERR_INVAL for a stamp too far ahead or a bad key), and
 * done never runs.
 */
typedef void (*md_rec_done_fn)(void *arg, cm_err err, int applied);
cm_err md_rec_receive_async(md_store *md, md_hlc *clock, const char *bucket, uint32_t shard,
                            uint64_t token, const md_guard *guard, const md_object *rec,
                            md_rec_done_fn done, void *arg);
/*
 * A partition leader's read barrier: admit token (> 0) for (bucket, shard) in the store's write
 * order. Once it returned CM_OK, every fenced write admitted before it is committed (a read made
 * afterwards sees it), and a fenced write with a lower token that comes later is refused; so a
 * replaced leader's write cannot land between its successor's read and its successor's write.
 * CM_ERR_CONFLICT for a token lower than the partition's. Costs a turn of the group commit; a
 * sync only when it raised the stored token (a new leader's first barrier on this replica).
 */
cm_err md_fence_barrier(md_store *md, const char *bucket, uint32_t shard, uint64_t token);
/* A turn of the group commit that writes nothing: returns once every write queued before it is
 * committed or failed (it shares their batch or follows it; no sync of its own). */
cm_err md_barrier(md_store *md);

/*
 * A page of bucket's records as summaries (MD_DECODE_SUMMARY: no bodies, parts, headers,
 * metadata or tags; tombstones included) in key order: keys after `after` (NULL: from the start)
 * that start with prefix (NULL or "": all) and pass filter (NULL: all), at most max. *out is a heap
 * array (md_objects_free); *truncated when more follow. CM_ERR_NOTFOUND for an unknown bucket.
 */
cm_err md_rec_scan(md_store *md, const char *bucket, const char *prefix, const char *after,
                   md_key_filter filter, void *farg, size_t max, md_object **out, size_t *n,
                   int *truncated);
void md_objects_free(md_object *objs, size_t n);
/* md_rec_get that tells an unknown bucket apart: *no_bucket = 1 when CM_ERR_NOTFOUND is because
 * the bucket does not exist. */
cm_err md_rec_lookup(md_store *md, const char *bucket, const char *key, md_object *out,
                     int *no_bucket);
/* The leaf hashes of bucket's Merkle tree of depth over the keys filter keeps: *hashes a heap
 * array of *n x 16 bytes (n = MD_MERKLE_FANOUT^depth). CM_ERR_NOTFOUND for an unknown bucket.
 * Read after a turn of the group commit (md_barrier): every write queued before the call is in
 * the hashes once durable, never committed after they were taken (a handoff's settling run
 * relies on it, md_guard). Blocks for that turn: worker threads. */
cm_err md_merkle_leaves(md_store *md, const char *bucket, int depth, md_key_filter filter,
                        void *farg, uint8_t **hashes, size_t *n);

/*
 * Hints (sloppy quorum): records this node keeps for another node that did not answer, until it
 * is delivered. Database "hints", key target \0 bucket \0 key, value the record; one hint per
 * (target, bucket, key): a put keeps the winner of md_object_resolve (no garbage: the bodies are
 * accounted for by the replicas).
 */
typedef struct {
    char *bucket;
    md_object rec;
} md_hint;

cm_err md_hint_put(md_store *md, const char *target, const char *bucket, const md_object *rec);
/* Hints for target after (after_bucket, after_key) (NULL: from the first) in (bucket, key) order,
 * at most max; *out a heap array (md_hints_free), *truncated when more follow. */
cm_err md_hint_list(md_store *md, const char *target, const char *after_bucket,
                    const char *after_key, size_t max, md_hint **out, size_t *n, int *truncated);
void md_hints_free(md_hint *h, size_t n);
/* Drop target's hint for bucket/rec->key if it is still the version rec (same digest): a newer
 * hint stored meanwhile stays. *dropped (may be NULL) says whether it went. */
cm_err md_hint_drop(md_store *md, const char *target, const char *bucket, const md_object *rec,
                    int *dropped);
/* The nodes that have hints, in byte order (heap array of heap strings: md_keys_free). */
cm_err md_hint_targets(md_store *md, char ***targets, size_t *n);
/* How many hints are stored (all targets). */
cm_err md_hint_count(md_store *md, uint64_t *n);
/* Bound the hints this store keeps (docs/replication.md "Hints"): once the hints database holds
 * max entries (a hint is one, a key past 511 bytes one per level of md_kv.c; 0 = no bound), a
 * put of a hint for a new (target, bucket, key) is refused with CM_ERR_UNAVAILABLE and counted;
 * replacing a stored hint by a newer version still works. Any thread, at any time. */
void md_hint_set_max(md_store *md, uint64_t max);
/* Hint puts refused by that bound since the store opened. */
uint64_t md_hint_refused(md_store *md);

/*
 * Tombstone collection (md_tomb.c; docs/replication.md, "Tombstone collection"). Each partition
 * (bucket, shard of nshards) has a durable mark, 0 until a collection: "tombstones of this
 * partition stamped below this hlc may have been dropped here". md_rec_merge refuses (applies
 * nothing, *applied = 0, no garbage) a record that is not a tombstone, is stamped below its
 * partition's mark and whose key the store does not hold: it may be an old version that a
 * collected tombstone superseded. A tombstone is always merged (it can only delete).
 *
 * md_rec_tombs: the partition's tombstones stamped below `before`, keys after `after` (NULL: from
 * the start) in key order, at most max, as digest entries (*out: md_rec_infos_free); *truncated
 * when more follow. CM_ERR_NOTFOUND for an unknown bucket.
 *
 * md_rec_collect: in one write transaction, raise the partition's mark to `mark` (never lowers
 * it) and drop each infos[i] whose key still holds that very tombstone (same digest: key, hlc,
 * node, vector; the generation is local to a store, so the digest is what replicas compare) and
 * is stamped below mark; dropped[i] (n bytes, may be NULL) says which went. A key of another
 * shard, a live record or another version stays. CM_ERR_NOTFOUND for an unknown bucket;
 * CM_ERR_INVAL for a mark of 0 or ahead of this host's wall clock (it would refuse new writes).
 *
 * md_tomb_mark: the partition's mark (0: none).
 */
cm_err md_rec_tombs(md_store *md, const char *bucket, const md_shard *part, uint64_t before,
                    const char *after, size_t max, md_rec_info **out, size_t *n, int *truncated);
cm_err md_rec_collect(md_store *md, const char *bucket, const md_shard *part, uint64_t mark,
                      const md_rec_info *infos, size_t n, uint8_t *dropped);
cm_err md_tomb_mark(md_store *md, const char *bucket, const md_shard *part, uint64_t *mark);
/* A deep copy of n digest entries (*out: md_rec_infos_free; NULL when n is 0). */
cm_err md_rec_infos_copy(const md_rec_info *in, size_t n, md_rec_info **out);

/* Wire form of a digest entry (the node RPC's leaf-keys answer): u16 keylen | key | generation
 * u64 | hlc u64 | hlc_node u32 | tombstone u8 | digest[16], big-endian. */
#define MD_REC_INFO_ENC_MAX (2 + MD_MAX_KEY + 8 + 8 + 4 + 1 + 16)
size_t md_rec_info_encode(const md_rec_info *ri, uint8_t *buf); /* buf: MD_REC_INFO_ENC_MAX */
/* Decode one entry from buf (len bytes available), *used bytes taken. CM_ERR_CORRUPT. */
cm_err md_rec_info_decode(const uint8_t *buf, size_t len, size_t *used, md_rec_info *out);

/* ---- Garbage: bodies no record uses any more (md_rec.c) ---- */

typedef struct {
    uint64_t hlc; /* when it became garbage */
    md_layout layout;
    char *bucket, *key; /* whose record it belonged to (for logs) */
} md_garbage;

/* Garbage with hlc < before, oldest first, at most max; *out is a heap array. */
cm_err md_garbage_list(md_store *md, uint64_t before, size_t max, md_garbage **out, size_t *n);
void md_garbage_free(md_garbage *g, size_t n);
/* Drop entries once their chunks are reclaimed (missing ones are ignored). */
cm_err md_garbage_drop(md_store *md, const md_garbage *g, size_t n);
/*
 * Record g[0..n) as garbage of the caller's own (a repair's obsolete cells, a reclaim put off:
 * ob_gc_run), each at its hlc; when an entry holds (hlc, blob) already, the hlc is moved up one
 * logical tick until free, so none is overwritten. One transaction.
 */
cm_err md_garbage_put(md_store *md, const md_garbage *g, size_t n);

/*
 * ---- Intents: part bodies being written on a cluster node (md_intent.c) ----
 *
 * An UploadPart on a cluster node records an intent in its node's own store before the first
 * cell of the part's body is written, and drops it once the part's record is settled (recorded
 * under an open upload, or tombstoned): docs/multipart-cluster.md, "Reclaiming a killed
 * UploadPart". An intent its writer left (the process died, or the request failed before the
 * record was settled) is decided later by this node's maintenance: freed (turned into a garbage
 * record) unless a record names the body. Database "intents", key hlc (u64 BE) | blob id.
 *
 * life: which opening of the store wrote it (md_intent_put stamps it). An intent of this opening
 * is its writer's until released (life 0): md_intent_list never returns one of this opening that
 * is not released, so an UploadPart still streaming its body is never decided under it.
 */
typedef struct {
    uint64_t hlc;     /* when it was written */
    md_layout layout; /* the body's blob and the cells its writer placed */
    char *bucket, *key;
    char upload_id[MD_MPU_ID_LEN + 1];
    uint32_t number; /* the part record's key: md_mpu_part_key(key, upload_id, number, id) */
    uint64_t id;
    uint64_t life;
} md_intent;

/* Store in (in->hlc and layout.blob are its key); in->life is set to this opening's. */
cm_err md_intent_put(md_store *md, md_intent *in);
/* Drop in (a missing one is ignored). */
cm_err md_intent_drop(md_store *md, const md_intent *in);
/* Mark in released (life 0): its writer is done with it. Never waits (from an event loop): the
 * write is queued; a failure leaves the intent to the store's next opening. The stored intent
 * is changed (its columns as md_intent_move_async left them); a dropped one stays dropped. */
cm_err md_intent_release_async(md_store *md, const md_intent *in);
/*
 * The intent (hlc, blob) now names (node, drive) for column col: the writer handed that column
 * off to a drive the intent did not name (docs/multipart-cluster.md, "Reclaiming a killed
 * UploadPart"). Never waits: done(arg, err) runs on the store's commit thread once the change is
 * durable (or failed; it must not block); a dropped intent is left dropped (done with CM_OK).
 * CM_OK, or an error and done never runs.
 */
cm_err md_intent_move_async(md_store *md, uint64_t hlc, const uint8_t *blob, int col, uint16_t node,
                            uint8_t drive, void (*done)(void *arg, cm_err e), void *arg);
/* Intents with hlc < before that are decidable (another opening's, or released), oldest first,
 * at most max; *out is a heap array (md_intents_free). */
cm_err md_intent_list(md_store *md, uint64_t before, size_t max, md_intent **out, size_t *n);
void md_intents_free(md_intent *a, size_t n);
/* Decided "free": one transaction drops in and records its layout as garbage at in->hlc, under
 * bucket and its part key, for ob_gc_run. */
cm_err md_intent_to_garbage(md_store *md, const md_intent *in);

/*
 * ---- Names: the mark phase of the cluster's orphan sweep (md_names.c) ----
 *
 * named[i] = 1 when a record of this store names blob ids[i] (n ids, sorted ascending, no
 * duplicates; CM_ERR_INVAL otherwise): an object, version or hint record (any part, tombstones
 * and the cluster's multipart and version records included), a multipart part or upload, a
 * garbage record or an UploadPart intent. *records (may be NULL): values read. A value that does
 * not decode is CM_ERR_CORRUPT (nothing may be taken for unnamed then).
 */
cm_err md_names_mark(md_store *md, const uint8_t (*ids)[16], size_t n, uint8_t *named,
                     uint64_t *records);

/* ---- Record encoding (exposed for tests and later replication) ---- */

/* Encode into a heap buffer (*buf, *len); decode validates every length (CM_ERR_CORRUPT). */
cm_err md_object_encode(const md_object *obj, uint8_t **buf, size_t *len);
cm_err md_object_decode(const uint8_t *buf, size_t len, md_object *out);

#endif
