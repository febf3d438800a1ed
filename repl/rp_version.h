/*
 * rp_version.h - bucket versioning over the replicated metadata (docs/versioning.md, "On a
 * cluster"): what a cluster node's gateway calls instead of the single node's md_*_v calls for a
 * bucket whose versioning is Enabled.
 *
 * A version is one more replicated record (rp.h): its key is in the reserved version space
 * (md_ver_key: FF 'v' esc(key) 01 01 order), on the partition of its object key, and it is
 * written once, never changed (a permanent delete tombstones it; its body then becomes garbage
 * on every replica, reclaimed after the grace period as any replaced body). The key's ordinary
 * record is a pointer to its latest version: the version's summary fields (size, etag, mtime,
 * storage class, delete marker), its order id in version_id, vstamp set, and no body, so
 * ListObjects reads it as before and the body has one owner. Both records of one write carry one
 * stamp of this node's clock (rp_stamp), and the version id is made from it (16 hex digits of ~hlc,
 * 8 of ~node, 8 random): the pointer is written at that stamp with a vector of its own
 * (rp_object_put_at), so when two PUTs of a key race, every replica keeps the pointer of the larger
 * (hlc, node), which is the version that sorts first: one latest everywhere, and the other version
 * stays, noncurrent.
 *
 * Order of a write: a quorum read of the key's record (its clock merged: the new stamp is after
 * it; a record written before versioning is first copied into the version space as the `null`
 * version), the version record, then the pointer. A failed pointer write leaves a version that
 * no pointer names (the PUT answered 503): it is listed (not as latest) and can be read or
 * deleted by id. Every call blocks a worker thread; CM_ERR_UNAVAILABLE without a quorum.
 */
#ifndef RP_VERSION_H
#define RP_VERSION_H

#include "rp.h"

/* 1 when rec (a key's record, or a listing summary of it) points to a version record. */
int rp_version_pointer(const md_object *rec);
/*
 * obj (key: the S3 key; body and fields as a plain PUT's) becomes the key's new latest version.
 * res: its id. suspended (the bucket's versioning is Suspended): the version is the key's null
 * one, and every older null version goes for good. cond (If-None-Match / If-Match, may be NULL)
 * is decided on the latest version by the key's partition leader, which then writes the version
 * record and the pointer (rp_cond_execute, one compare-and-set among conditional writes):
 * CM_ERR_PRECONDITION, CM_ERR_NOTFOUND as rp_object_put; CM_ERR_CONFLICT (nothing written) when a
 * write landed between this node's read and the leader's. With suspended, the older null versions
 * are removed after the leader wrote the new one, as without a condition.
 */
cm_err rp_version_put(rp *c, const char *bucket, const md_object *obj, int suspended,
                      const md_cond *cond, md_vres *res);
/* DELETE without an id: a delete marker becomes the latest (also on a key with no version);
 * suspended and cond (If-Match) as for rp_version_put. */
cm_err rp_version_mark(rp *c, const char *bucket, const char *key, int suspended,
                       const md_cond *cond, md_vres *res);
/*
 * DELETE with an id: destroy version vid ("null" included) for good; when it was the latest, the
 * next one becomes it (none left: the key's record is deleted). An unknown id is CM_OK with
 * *had 0. res: the id and whether it was a delete marker. cond->unlocked (a bucket with Object
 * Lock): a version protected (md_lock_protects, cond->bypass_governance) is CM_ERR_LOCKED, checked
 * on the version read and again by the partition's leader as it deletes the version record.
 */
cm_err rp_version_delete(rp *c, const char *bucket, const char *key, const char *vid,
                         const md_cond *cond, md_vres *res, int *had);
/* The whole version vid of key ("null": the record written before versioning, or the version
 * copied from it), out->key the S3 key. CM_ERR_NOTFOUND. */
cm_err rp_version_get(rp *c, const char *bucket, const char *key, const char *vid, md_object *out);
/* The record that holds version vid of key (NULL: the latest) as it is stored, under its own key
 * (a version key, or key itself for a record from before versioning): what a change of that one
 * version swaps (rp_object_swap). CM_ERR_NOTFOUND. */
cm_err rp_version_record(rp *c, const char *bucket, const char *key, const char *vid,
                         md_object *out);
/* rec, a key's record read with rp_object_get: when it is a pointer, replaced by the version it
 * names (key set back to the S3 key). CM_ERR_NOTFOUND when that version is gone meanwhile. */
cm_err rp_version_follow(rp *c, const char *bucket, md_object *rec);
/* The pieces of rp_version_follow for a caller that reads asynchronously: the key of the version
 * a pointer names (its version_id is that version's order id), the order id of a version record
 * (the last MD_VID_LEN bytes of its key), and setting a version record's key to the S3 key. */
cm_err rp_version_target(const md_object *pointer, char vkey[MD_MAX_KEY + 1]);
const char *rp_version_order(const md_object *v);
cm_err rp_version_adopt(md_object *v, const char *key);
/* ListObjectVersions (md_list_versions' contract) over the cluster. */
cm_err rp_version_list(rp *c, const char *bucket, const md_vlist_query *q, md_list_result *out);
/* CM_OK when the bucket holds no version record, CM_ERR_CONFLICT when it does. */
cm_err rp_version_none(rp *c, const char *bucket);

#endif
