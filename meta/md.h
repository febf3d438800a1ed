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
 *   uploads   bucket \0 key \0 upload_id    -> md_upload record
 *   parts     upload_id \0 part_number(BE32)-> md_part record
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
} md_layout;

typedef enum {
    MD_CK_NONE = 0,
    MD_CK_CRC32,
    MD_CK_CRC32C,
    MD_CK_CRC64NVME,
    MD_CK_SHA1,
    MD_CK_SHA256
} md_cksum_alg;

typedef enum { MD_CKTYPE_FULL_OBJECT = 0, MD_CKTYPE_COMPOSITE = 1 } md_cksum_type;

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
} md_part;

/* The part holds (or, decoded without its body, held) its body inline. */
#define MD_PART_INLINE(p) ((p)->inline_data != NULL || (p)->is_inline)

typedef struct {
    char *key;
    char version_id[40]; /* "null" until versioning exists */
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
} md_object;

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
    char owner[128];    /* access key id of the creator */
    uint8_t versioning; /* 0 never enabled, 1 enabled, 2 suspended (recorded; not yet used) */
} md_bucket;

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
void md_close(md_store *md); /* NULL is a no-op */
/*
 * CM_OK while the store can serve; CM_ERR_IO once LMDB had a fatal error (a failed meta-page
 * write puts the environment in MDB_PANIC: every later transaction fails until the process
 * reopens it, i.e. restarts). Cheap: one read transaction.
 */
cm_err md_check(md_store *md);

/* Group commit counters since md_open (a consistent snapshot; see docs/metadata.md). */
typedef struct {
    uint64_t ops;           /* write calls applied (each in its own nested transaction) */
    uint64_t ops_committed; /* of those, made durable by a successful commit */
    uint64_t ops_failed;    /* returned an error of their own (condition, NOTFOUND, NOSPC, ...) */
    uint64_t batches;       /* batches run by a leader */
    uint64_t commits;       /* write transactions committed: one sync each */
    uint64_t commit_errors; /* commits that failed (every op of the batch got the error) */
    uint64_t max_batch;     /* most ops in one batch */
    uint64_t map_size;      /* LMDB map size now (bytes of address space) */
    uint64_t map_grows;     /* times the map grew because a batch filled it */
} md_stats;

void md_stats_get(md_store *md, md_stats *out);

/* ---- Buckets ---- */

cm_err md_bucket_create(md_store *md, const md_bucket *b);            /* CM_ERR_EXISTS */
cm_err md_bucket_get(md_store *md, const char *name, md_bucket *out); /* CM_ERR_NOTFOUND */
/*
 * Delete the bucket: CM_ERR_NOTFOUND, or CM_ERR_CONFLICT when it still holds objects. Unfinished
 * multipart uploads do not keep it (S3 deletes them with the bucket): they and their parts are
 * removed in the same op, and the removed part records (decoded without inline bodies) go to
 * *parts so the caller frees their chunks (md_parts_free); parts may be NULL.
 */
cm_err md_bucket_delete(md_store *md, const char *name, md_part **parts, size_t *n);
/* All buckets in name order; *out is a heap array the caller frees with free(). */
cm_err md_bucket_list(md_store *md, md_bucket **out, size_t *n);

/* ---- Objects ---- */

/* Condition checked atomically with a write (NULL = unconditional). */
typedef struct {
    int if_none_match_star; /* fail if a current, non-delete-marker object exists */
    const char *if_match;   /* etag (no quotes) the current object must have; "*" = must exist */
} md_cond;

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
 * longer has old_blob (the object changed meanwhile: the caller drops its rebuilt data);
 * CM_ERR_INVAL when new_layout->size differs from the part's size. Nothing else in the record
 * changes. Defined in md_repair.c.
 */
cm_err md_object_replace_layout(md_store *md, const char *bucket, const char *key,
                                size_t part_index, const uint8_t old_blob[16],
                                const md_layout *new_layout);

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
    md_object obj; /* record summary: size, etag, mtime_ms, version_id, ck fields (no body) */
} md_list_entry;

typedef struct {
    md_list_entry *entries; /* in key order, objects and prefixes interleaved */
    size_t n;
    int truncated;
    char *next_marker; /* when truncated: last key or prefix returned (resume after it) */
} md_list_result;

/*
 * S3 listing over the current records of a bucket: keys with the prefix, after start_after, with
 * keys containing the delimiter after the prefix rolled up into common prefixes (each counted once
 * toward max_keys, and never repeated on a later page that starts after it).
 */
cm_err md_list_objects(md_store *md, const char *bucket, const md_list_query *q,
                       md_list_result *out);
void md_list_result_release(md_list_result *res);

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

/* ---- Record encoding (exposed for tests and later replication) ---- */

/* Encode into a heap buffer (*buf, *len); decode validates every length (CM_ERR_CORRUPT). */
cm_err md_object_encode(const md_object *obj, uint8_t **buf, size_t *len);
cm_err md_object_decode(const uint8_t *buf, size_t len, md_object *out);

#endif
