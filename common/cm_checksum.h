/*
 * cm_checksum.h - the digests S3 uses: MD5 (ETag, Content-MD5), SHA-1, SHA-256 (SigV4 and
 * x-amz-checksum-sha256), CRC32 (IEEE), CRC32C (Castagnoli) and CRC64NVME.
 *
 * One streaming interface for all of them (init / update / final), so a body can be hashed as it
 * passes. CRCs use ISA-L (CRC32, CRC32C) or, for CRC64NVME (which this ISA-L does not
 * have), carry-less-multiply folding on x86-64 CPUs with PCLMULQDQ and a slicing-by-8 table
 * elsewhere. Digests are big-endian byte strings as S3 transmits them (base64 of these bytes).
 */
#ifndef CM_CHECKSUM_H
#define CM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

typedef enum {
    CM_CK_MD5 = 0,
    CM_CK_SHA1,
    CM_CK_SHA256,
    CM_CK_CRC32,
    CM_CK_CRC32C,
    CM_CK_CRC64NVME,
    CM_CK__COUNT
} cm_ck_alg;

#define CM_CK_MAX_DIGEST 32

typedef struct {
    cm_ck_alg alg;
    union {
        uint32_t crc32;
        uint64_t crc64;
        void *evp; /* EVP_MD_CTX for MD5 / SHA-* */
    } u;
} cm_ck;

/* Digest length in bytes (16, 20, 32, 4, 4, 8). */
size_t cm_ck_len(cm_ck_alg alg);
/* "md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme" */
const char *cm_ck_name(cm_ck_alg alg);
/* Parse a name case-insensitively ("CRC32C", "crc64nvme"); CM_ERR_INVAL if unknown. */
cm_err cm_ck_parse(const char *name, cm_ck_alg *alg);

cm_err cm_ck_init(cm_ck *ck, cm_ck_alg alg);
void cm_ck_update(cm_ck *ck, const void *data, size_t len);
/* Write cm_ck_len bytes to out and release the context. */
void cm_ck_final(cm_ck *ck, uint8_t *out);
/* Release without a result (abort paths). Safe after final. */
void cm_ck_release(cm_ck *ck);
/* One-shot digest. */
cm_err cm_ck_digest(cm_ck_alg alg, const void *data, size_t len, uint8_t *out);

/* Raw CRC helpers (the running value convention of each: pass 0 to start). */
uint32_t cm_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t cm_crc32(uint32_t crc, const void *data, size_t len);
uint64_t cm_crc64nvme(uint64_t crc, const void *data, size_t len);
/* CRC64NVME by the portable slicing-by-8 tables only: the reference the fast path is tested
 * against. Same convention and result as cm_crc64nvme. */
uint64_t cm_crc64nvme_table(uint64_t crc, const void *data, size_t len);
/* The CRC64NVME implementation cm_crc64nvme uses on this CPU: "pclmul" or "table". */
const char *cm_crc64nvme_impl(void);

/*
 * CRC of A||B from crc(A), crc(B) and len(B) (no data needed): how a multipart object's
 * FULL_OBJECT checksum is derived from its parts' checksums.
 */
uint32_t cm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
uint32_t cm_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
uint64_t cm_crc64nvme_combine(uint64_t crc1, uint64_t crc2, uint64_t len2);

/* SHA-256 of msg into out[32], allocating nothing: the same digest as cm_ck_digest(CM_CK_SHA256),
 * cheaper for short messages. cm_hmac.c. */
void cm_sha256(const void *msg, size_t len, uint8_t out[32]);

/* HMAC-SHA256 of msg under key into out[32] (out may alias key). cm_hmac.c. */
void cm_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, uint8_t *out);

/*
 * A key for many HMAC-SHA256s: the SHA-256 states after its inner and outer pad blocks, computed
 * once by cm_hmac_key_init, so a MAC under it hashes the message and one block less than
 * cm_hmac_sha256 and allocates nothing. Read-only after init: threads may share one. It holds
 * key material: cm_hmac_key_release wipes it (no allocation to free). The layout is private to
 * cm_hmac.c (OpenSSL's SHA256_CTX, copied in and out).
 */
typedef struct {
    uint64_t state[2][16]; /* [0] after K0 ^ ipad, [1] after K0 ^ opad */
} cm_hmac_key;

void cm_hmac_key_init(cm_hmac_key *k, const void *key, size_t keylen);
void cm_hmac_key_release(cm_hmac_key *k);
/* HMAC-SHA256 of msg under k into out[32]; the same result as cm_hmac_sha256 under k's key. */
void cm_hmac_sha256_keyed(const cm_hmac_key *k, const void *msg, size_t msglen, uint8_t *out);

#endif
