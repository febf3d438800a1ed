/*
 * rp_upload.h - multipart uploads over the replicated metadata (docs/multipart-cluster.md): what
 * a cluster node's gateway calls instead of the local md_upload_* / md_part_* so that any node
 * serves any upload and losing a node loses no acknowledged part.
 *
 * Uploads and parts are records of the bucket in a reserved key space (md_mpkey.c: keys that no
 * S3 key can be, sorting after them all, placed in the shard of their object key), written and
 * read through the same quorum coordinator as object records (rp.h): replication, read repair,
 * hints and anti-entropy are theirs. rp_list_objects never shows them.
 *
 *   - an upload record: the upload's template (headers, metadata, checksum algorithm and type,
 *     storage class), mtime_ms = initiation time, the owner in a metadata entry (and in upload_id
 *     when it fits, so listings, which carry summaries, show it);
 *   - a part record, one per UploadPart (its key ends with a random id): the md_part as the
 *     record's one part (its layout, or its body inline), summary fields as the part's. The part
 *     of a number is its newest record by (hlc, hlc_node), the same answer on every node. What
 *     an UploadPart killed half-way leaves is reclaimed through its intent (md_intent,
 *     rp_part_put_id, rp_part_intent_decide);
 *   - Complete claims the upload (rp_upload_claim: one compare-and-set of the upload record
 *     through the partition leader, so of two Completes, or a Complete and an Abort, one wins),
 *     writes the object record (through rp_object_put), then a tombstone for the upload
 *     and one per part record: a part the object keeps gets a tombstone that still names its body
 *     (so no replica turns it into garbage), every other one a plain tombstone, whose merge on
 *     each replica turns its body into a durable garbage record (reclaimed by ob_gc_run after the
 *     grace period). Abort does the same with no kept part (or the parts of the object this upload
 *     made, when a Complete of it stopped half-way).
 *
 * Every call blocks a worker thread (as rp_object_*); errors as rp_object_*: CM_ERR_NOTFOUND for
 * an upload that does not exist (or an upload id that is not one: 32 lowercase hex digits),
 * CM_ERR_UNAVAILABLE without a quorum, CM_ERR_INVAL for a key too long to carry an upload.
 */
#ifndef RP_UPLOAD_H
#define RP_UPLOAD_H

#include "rp.h"

/* Store the new upload up (upload_id set by the caller). CM_ERR_NOTFOUND: no such bucket. */
cm_err rp_upload_create(rp *c, const char *bucket, const md_upload *up);
/* The upload's record (release with md_upload_release). */
cm_err rp_upload_get(rp *c, const char *bucket, const char *key, const char *upload_id,
                     md_upload *out);
/* Record one UploadPart of an existing upload (checked by a quorum read first). CM_ERR_NOTFOUND:
 * no such upload, or it ended while the record was written (then the record is tombstoned). */
cm_err rp_part_put(rp *c, const char *bucket, const char *key, const char *upload_id,
                   const md_part *part);
/*
 * rp_part_put under record id `id` (the key of the part record: md_mpu_part_key), chosen by the
 * caller before the body's first cell for its intent (md_intent, docs/multipart-cluster.md
 * "Reclaiming a killed UploadPart"). *settled: the record's fate no longer needs the intent: it
 * was written and the upload read open after it, or it was tombstoned (the upload ended), or the
 * object the upload became uses the body. 0 on any error, and when the second read of the upload
 * failed (the answer is CM_OK then: the part is recorded).
 */
cm_err rp_part_put_id(rp *c, const char *bucket, const char *key, const char *upload_id,
                      uint64_t id, const md_part *part, int *settled);
/*
 * Decide an intent its writer left (md_intent_list): the part record (number, id) of the upload
 * read at quorum, tombstones included. *verdict RP_INTENT_FREE when no record names the body blob
 * (a tombstone is written first when the key has no version at all, so that a copy the read
 * missed cannot bring the record back): the caller frees the body (md_intent_to_garbage).
 * RP_INTENT_OWNED: a record owns it (a record of an open upload, whose Complete or Abort ends it;
 * a Complete's tombstone keeping it; or a record of an ended upload, which gets a plain tombstone
 * here: its replicas make the body garbage): the caller drops the intent. A bucket gone with its
 * records frees the body. old: the intent is older than the tombstone grace (half of it, for a
 * margin), so a Complete's tombstone of its record may have been collected: then a body no
 * record names is freed only when the object the upload made reads without it, owned when the
 * object names it, and otherwise RP_INTENT_HELD: the caller keeps the intent and reports it
 * (never freed blindly). CM_ERR_INVAL: (number, id, upload_id) make no part record key (nothing
 * can decide it); other errors, of the reads and writes: try again later.
 */
#define RP_INTENT_OWNED 0
#define RP_INTENT_FREE 1
#define RP_INTENT_HELD 2
cm_err rp_part_intent_decide(rp *c, const char *bucket, const char *key, const char *upload_id,
                             uint32_t number, uint64_t id, const uint8_t *blob, int old,
                             int *verdict);
/*
 * The current part of each number > after, in order, at most max (*truncated when more follow),
 * as summaries: number, size, mtime, etag and checksum, no layout or body. ids (may be NULL)
 * gets a heap array of each part record's id (for rp_part_fetch), freed by the caller.
 */
cm_err rp_part_list(rp *c, const char *bucket, const char *key, const char *upload_id,
                    uint32_t after, size_t max, md_part **parts, size_t *n, int *truncated,
                    uint64_t **ids);
/* The whole part record (layout, or body inline) of part number with id. CM_ERR_CONFLICT when
 * it is gone (an Abort or Complete of the upload ran meanwhile). Release with md_part_release. */
cm_err rp_part_fetch(rp *c, const char *bucket, const char *key, const char *upload_id,
                     uint32_t number, uint64_t id, md_part *out);
/*
 * End the upload after a Complete wrote the object record: tombstone the upload and every part
 * record, keeping (naming in its tombstone) the bodies of the nkept parts the object uses, given
 * with their record ids. The first error stops it (what is left is garbage no record frees: see
 * the doc).
 */
cm_err rp_upload_end(rp *c, const char *bucket, const char *key, const char *upload_id,
                     const md_part *kept, const uint64_t *kept_ids, size_t nkept);
/*
 * Claim the upload for a Complete that keeps the nkept parts (with their record ids) before it
 * writes the object (docs/multipart-cluster.md, "Ending an upload"): one compare-and-set of the
 * upload record through its partition's leader. CM_OK: claimed (or claimed before by a Complete
 * keeping the same part records: a retry, stamped anew); CM_ERR_NOTFOUND: the upload ended, or
 * another Complete (other part records) claimed it. The object must be written within
 * RP_CLAIM_WRITE_MS of the call (on the caller's monotonic clock), or not at all; an Abort takes
 * over a claim once one node has seen it unchanged for RP_CLAIM_STALE_MS on its own monotonic
 * clock (rp_config.mono: a Complete that died and was never retried; no two nodes' clocks are
 * compared). unclaim: give the upload
 * back (the object write was refused, e.g. its If-Match failed), if the claim is still this one.
 */
#define RP_CLAIM_WRITE_MS 60000
#define RP_CLAIM_STALE_MS 300000
cm_err rp_upload_claim(rp *c, const char *bucket, const char *key, const char *upload_id,
                       const md_part *kept, const uint64_t *kept_ids, size_t nkept);
cm_err rp_upload_unclaim(rp *c, const char *bucket, const char *key, const char *upload_id,
                         const md_part *kept, const uint64_t *kept_ids, size_t nkept);
/* Abort: CM_ERR_NOTFOUND when the upload does not exist, or a Complete claimed it (and is not
 * stale); otherwise the upload's tombstone (a compare-and-set: a claim landing meanwhile wins)
 * and every part record's, keeping the parts of the object record of key when this very upload
 * made it. */
cm_err rp_upload_abort(rp *c, const char *bucket, const char *key, const char *upload_id);
/* Abort every upload of the bucket (DeleteBucket: S3 drops them with it). The first error
 * other than an upload ended meanwhile stops it. */
cm_err rp_upload_abort_all(rp *c, const char *bucket);
/* ListMultipartUploads of the bucket (md_upload_list_query's contract and result). */
cm_err rp_upload_list(rp *c, const char *bucket, const md_upload_query *q, md_upload_list *out);

#endif
