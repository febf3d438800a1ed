/*
 * md_mpkey.c - the reserved key space that holds multipart records on a cluster node
 * (docs/multipart-cluster.md), and the shard of every key (md_shard_of).
 *
 * A cluster node keeps its multipart uploads and parts as records of the replicated record store
 * (repl/rp_upload.c), next to the object records of their bucket, under keys that no S3 key can
 * be: S3 keys are UTF-8, which never holds the byte 0xFF.
 *
 *   upload  FF 'u' esc(key) 01 01 upload_id
 *           FF 'u' esc(head) 01 03 hash 01 01 upload_id   (the long form)
 *   part    FF 'p' route upload_id 01 number 01 id
 *   version FF 'v' esc(key) 01 01 order
 *           FF 'v' esc(head) 01 03 hash 01 01 order   (the long form)
 *
 * esc() writes a 01 byte of the key as 01 02, so the separator 01 01 sorts below every
 * continuation of the key and upload keys sort by object key, then by upload id: the order of
 * ListMultipartUploads. route is the 8 hex digits of bytes 4..7 of SHA-256(key) (what the shard
 * of the key is taken from), so a part key has a fixed size whatever the object key's length;
 * number is the part number in 5 decimal digits, id 16 hex digits unique to one UploadPart (two
 * uploads of the same part number are two records; the newer by (hlc, node) wins).
 *
 * A version record (versioning on a cluster node, docs/versioning.md "On a cluster") is keyed
 * as an upload is, with its 32-hex-digit order id in place of the upload id: the order id is the
 * version id (or, for a `null` version, what its id would be), 16 hex digits of ~hlc first, so the
 * versions of one key sort newest first after its escaped key, and all of a bucket's versions
 * sort by object key, then newest first: the order of ListObjectVersions. A key whose escaped
 * form leaves no room for that within MD_MAX_KEY (more than 988 bytes escaped) has the long form
 * instead: head is its longest start that fits, hash the 64 hex digits of SHA-256(key). 01 03
 * never follows an escaped byte, so no key's versions share a prefix with another's, and the
 * long form sorts among the short ones by its head; the key itself is not in it (md_ver_split
 * refuses it), every caller names the key first. Every legal key has exactly one form. An
 * upload key has the same two forms (the upload id in place of the order); a long-form upload's
 * record holds its object key in an internal metadata entry (repl/rp_upload.c KEY_META), which
 * md_mpu_upload_long_id leaves to the caller to read.
 *
 * md_shard_of places every kind in the shard of its object key: the records of an upload live on
 * the partition homes of the object it becomes, one partition listing finds every part of an
 * upload, and a key's versions live with its record (a long-form version key by the hash in it:
 * hex digits 8..15, the bytes the shard is taken from; a long-form upload key alike). Every other
 * key (a malformed reserved key included) is placed by its own hash.
 */
#include <stdio.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "md_int.h"

#define ROUTE_HEX 8

static uint32_t key_hash(const uint8_t *key, size_t klen)
{
    uint8_t d[32];
    cm_sha256(key, klen, d); /* OpenSSL's low-level call: no allocation per key */
    return cm_get_be32(d + 4);
}

/* The object key of an upload key, unescaped into out (MD_MAX_KEY + 1 bytes); its length, or
 * (size_t)-1 when k is not a well-formed upload key. *rest gets the offset of the upload id. */
static size_t upload_key_object(const uint8_t *k, size_t kl, char *out, size_t *rest)
{
    size_t n = 0;
    for (size_t i = 2; i < kl; i++) {
        if (k[i] != 0x01) {
            if (n == MD_MAX_KEY)
                return (size_t)-1;
            out[n++] = (char)k[i];
            continue;
        }
        if (i + 1 >= kl)
            return (size_t)-1;
        if (k[i + 1] == 0x01) {
            out[n] = 0;
            *rest = i + 2;
            return n;
        }
        if (k[i + 1] != 0x02 || n == MD_MAX_KEY)
            return (size_t)-1;
        out[n++] = 0x01;
        i++;
    }
    return (size_t)-1;
}

static int hex_u32(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < ROUTE_HEX; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* The long form's FF kind esc(head) 01 03 hash 01 01 for key (VER_HASHED_HEAD: the room esc(head)
 * has): head the longest start of key whose escaped form fits, hash the 64 hex digits of
 * SHA-256(key). */
#define VER_HASH_HEX 64
#define VER_HASHED_HEAD (MD_MAX_KEY - 2 - 2 - VER_HASH_HEX - 2 - MD_MPU_ID_LEN)
static cm_err hashed_prefix(char kind, const char *key, char *out)
{
    uint8_t d[32];
    size_t n = 2, kl = strlen(key);
    if (kl > MD_MAX_KEY)
        return CM_ERR_INVAL;
    cm_sha256(key, kl, d);
    out[0] = (char)MD_MPU_MARK, out[1] = kind;
    for (size_t i = 0; i < kl && n + (key[i] == 0x01 ? 2 : 1) <= 2 + VER_HASHED_HEAD; i++) {
        out[n++] = key[i];
        if (key[i] == 0x01)
            out[n++] = 0x02;
    }
    out[n++] = 0x01, out[n++] = 0x03;
    for (int i = 0; i < 32; i++, n += 2)
        snprintf(out + n, 3, "%02x", d[i]);
    out[n++] = 0x01, out[n++] = 0x01;
    out[n] = 0;
    return CM_OK;
}

/* The route of a long-form key (the shard bytes of its hash), or -1 when k is not one; *id (may
 * be NULL) gets the offset of what follows the hash's 01 01. */
static int hashed_route(const uint8_t *k, size_t kl, uint32_t *route, size_t *id)
{
    for (size_t i = 2; i + 1 < kl; i++) {
        if (k[i] != 0x01)
            continue;
        if (k[i + 1] == 0x02) {
            i++;
            continue;
        }
        if (k[i + 1] != 0x03 || i + 2 + VER_HASH_HEX + 2 > kl)
            return -1;
        const uint8_t *h = k + i + 2;
        if (h[VER_HASH_HEX] != 0x01 || h[VER_HASH_HEX + 1] != 0x01)
            return -1;
        if (id)
            *id = (size_t)(h - k) + VER_HASH_HEX + 2;
        return hex_u32(h + 8, route); /* hex digits 8..15: bytes 4..7, as key_hash */
    }
    return -1;
}

uint32_t md_shard_of(const uint8_t *key, size_t klen, uint32_t nshards)
{
    if (nshards <= 1)
        return 0;
    if (klen > 2 && key[0] == MD_MPU_MARK && (key[1] == 'u' || key[1] == 'v')) {
        char obj[MD_MAX_KEY + 1];
        size_t rest, n = upload_key_object(key, klen, obj, &rest);
        if (n != (size_t)-1)
            return key_hash((const uint8_t *)obj, n) % nshards;
    }
    uint32_t route;
    if (klen > 2 && key[0] == MD_MPU_MARK && (key[1] == 'u' || key[1] == 'v') &&
        hashed_route(key, klen, &route, NULL) == 0)
        return route % nshards;
    if (klen >= 2 + ROUTE_HEX && key[0] == MD_MPU_MARK && key[1] == 'p' &&
        hex_u32(key + 2, &route) == 0)
        return route % nshards;
    return key_hash(key, klen) % nshards;
}

int md_mpu_id_valid(const char *upload_id)
{
    size_t n = 0;
    for (; upload_id && upload_id[n]; n++)
        if (!((upload_id[n] >= '0' && upload_id[n] <= '9') ||
              (upload_id[n] >= 'a' && upload_id[n] <= 'f')))
            return 0;
    return n == MD_MPU_ID_LEN;
}

/* esc(s) into out at *n (cap bytes); -1 when it does not fit. */
static int put_escaped(const char *s, char *out, size_t cap, size_t *n)
{
    for (; *s; s++) {
        size_t need = *s == 0x01 ? 2 : 1;
        if (*n + need >= cap)
            return -1;
        out[(*n)++] = *s;
        if (*s == 0x01)
            out[(*n)++] = 0x02;
    }
    return 0;
}

/* FF kind esc(key_prefix): the upload ('u') and version ('v') key spaces share this form. */
static cm_err kind_prefix(char kind, const char *key_prefix, char *out, size_t cap)
{
    size_t n = 2;
    if (cap < MD_MAX_KEY + 1)
        return CM_ERR_INVAL;
    out[0] = (char)MD_MPU_MARK, out[1] = kind;
    if (put_escaped(key_prefix ? key_prefix : "", out, MD_MAX_KEY + 1, &n) != 0)
        return CM_ERR_INVAL;
    out[n] = 0;
    return CM_OK;
}

/* FF kind esc(key) 01 01, or the long form when that leaves no room for an id. */
static cm_err key_prefix(char kind, const char *key, char *out, size_t cap)
{
    if (!*key || cap < MD_MAX_KEY + 1)
        return CM_ERR_INVAL;
    if (kind_prefix(kind, key, out, cap) == CM_OK) {
        size_t n = strlen(out);
        if (n + 2 + MD_MPU_ID_LEN <= MD_MAX_KEY) {
            out[n++] = 0x01, out[n++] = 0x01, out[n] = 0;
            return CM_OK;
        }
    }
    return hashed_prefix(kind, key, out);
}

/* key_prefix(kind, key) id, id MD_MPU_ID_LEN lowercase hex digits: every key has room. */
static cm_err kind_key(char kind, const char *key, const char *id, char *out, size_t cap)
{
    if (!*key || !md_mpu_id_valid(id) || key_prefix(kind, key, out, cap) != CM_OK)
        return CM_ERR_INVAL;
    memcpy(out + strlen(out), id, MD_MPU_ID_LEN + 1);
    return CM_OK;
}

static cm_err kind_split(char kind, const char *k, char *key, char *id)
{
    size_t rest, kl = strlen(k);
    if (kl < 2 || (uint8_t)k[0] != MD_MPU_MARK || k[1] != kind ||
        upload_key_object((const uint8_t *)k, kl, key, &rest) == (size_t)-1 ||
        !md_mpu_id_valid(k + rest))
        return CM_ERR_CORRUPT;
    memcpy(id, k + rest, MD_MPU_ID_LEN + 1);
    return CM_OK;
}

cm_err md_mpu_upload_prefix(const char *key_prefix, char *out, size_t cap)
{
    return kind_prefix('u', key_prefix, out, cap);
}

cm_err md_mpu_upload_key(const char *key, const char *upload_id, char *out, size_t cap)
{
    return kind_key('u', key, upload_id, out, cap);
}

cm_err md_mpu_upload_split(const char *ukey, char *key, char *upload_id)
{
    return kind_split('u', ukey, key, upload_id);
}

cm_err md_mpu_upload_key_prefix(const char *key, char *out, size_t cap)
{
    return key_prefix('u', key, out, cap);
}

cm_err md_mpu_upload_long_id(const char *ukey, char *upload_id)
{
    uint32_t route;
    size_t id, kl = strlen(ukey);
    if (kl < 2 || (uint8_t)ukey[0] != MD_MPU_MARK || ukey[1] != 'u' ||
        hashed_route((const uint8_t *)ukey, kl, &route, &id) != 0 || kl != id + MD_MPU_ID_LEN ||
        !md_mpu_id_valid(ukey + id))
        return CM_ERR_CORRUPT;
    memcpy(upload_id, ukey + id, MD_MPU_ID_LEN + 1);
    return CM_OK;
}

cm_err md_ver_prefix(const char *key_prefix, char *out, size_t cap)
{
    return kind_prefix('v', key_prefix, out, cap);
}

cm_err md_ver_key(const char *key, const char *order, char *out, size_t cap)
{
    return kind_key('v', key, order, out, cap);
}

cm_err md_ver_key_prefix(const char *key, char *out, size_t cap)
{
    return key_prefix('v', key, out, cap);
}

cm_err md_ver_null_key(const md_object *plain, char *out, size_t cap)
{
    char order[MD_VID_LEN + 1];
    uint8_t tail[8] = {0};
    cm_put_be32(tail, ~plain->hlc_node);
    md_vid_make(plain->hlc, tail, order);
    return md_ver_key(plain->key, order, out, cap);
}

cm_err md_ver_split(const char *vkey, char *key, char *order)
{
    return kind_split('v', vkey, key, order);
}

cm_err md_mpu_prefix_split(const char *uprefix, char *key_prefix)
{
    char tmp[MD_MAX_KEY + 4];
    size_t rest, kl = strlen(uprefix);
    if (kl < 2 || kl > MD_MAX_KEY || (uint8_t)uprefix[0] != MD_MPU_MARK || uprefix[1] != 'u')
        return CM_ERR_CORRUPT;
    /* A common prefix ends inside the key: close it as a key would be, then unescape. */
    memcpy(tmp, uprefix, kl);
    tmp[kl] = 0x01, tmp[kl + 1] = 0x01, tmp[kl + 2] = 0;
    return upload_key_object((const uint8_t *)tmp, kl + 2, key_prefix, &rest) == (size_t)-1
               ? CM_ERR_CORRUPT
               : CM_OK;
}

cm_err md_mpu_part_prefix(const char *key, const char *upload_id, char *out, size_t cap)
{
    if (!*key || strlen(key) > MD_MAX_KEY || !md_mpu_id_valid(upload_id) ||
        cap < MD_MPU_PART_KEY_MAX)
        return CM_ERR_INVAL;
    snprintf(out, cap, "%c%c%08x%s%c", (char)MD_MPU_MARK, 'p',
             key_hash((const uint8_t *)key, strlen(key)), upload_id, 0x01);
    return CM_OK;
}

cm_err md_mpu_part_key(const char *key, const char *upload_id, uint32_t number, uint64_t id,
                       char *out, size_t cap)
{
    cm_err e = md_mpu_part_prefix(key, upload_id, out, cap);
    if (e != CM_OK || number < 1 || number > 99999)
        return e != CM_OK ? e : CM_ERR_INVAL;
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%05u%c%016llx", number, 0x01, (unsigned long long)id);
    return CM_OK;
}

cm_err md_mpu_part_split(const char *pkey, size_t prefix_len, uint32_t *number, uint64_t *id)
{
    const char *p = pkey + prefix_len;
    unsigned num = 0;
    unsigned long long v = 0;
    int used = 0;
    if (strlen(pkey) != prefix_len + 5 + 1 + 16 || p[5] != 0x01 || sscanf(p, "%5u", &num) != 1 ||
        num < 1 || sscanf(p + 6, "%16llx%n", &v, &used) != 1 || used != 16)
        return CM_ERR_CORRUPT;
    *number = num;
    *id = v;
    return CM_OK;
}
