/*
 * cm_checksum.c - the digests S3 uses behind one streaming interface.
 *
 * MD5, SHA-1 and SHA-256 are OpenSSL EVP digests; the cm_ck union holds the EVP_MD_CTX pointer,
 * which final/release free (so release after final is a no-op: the pointer is cleared).
 *
 * CRC running-value convention (all three): the value passed in and returned is the finished CRC
 * of the bytes so far, 0 for no bytes, so cm_crcX(cm_crcX(0, a), b) == cm_crcX(0, a || b), as
 * with zlib's crc32(). Internally each CRC un-inverts the running value, runs the register and
 * inverts again.
 *   - CRC32 (IEEE, reflected 0xEDB88320): ISA-L crc32_gzip_refl already uses zlib's convention.
 *   - CRC32C (Castagnoli): ISA-L crc32_iscsi takes the raw register and does not invert at the end,
 *     so we pass ~crc in and invert the result.
 *   - CRC64NVME (reflected poly 0x9a6c9329ac4bc9b5, init/xorout all ones): slicing-by-8 tables
 *     built once under pthread_once; after that they are read-only and shared by all threads.
 *
 * Digests are written big-endian, the byte order S3 base64-encodes in x-amz-checksum-*.
 */
#include "cm_checksum.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cm_util.h"

#define CRC64NVME_POLY 0x9a6c9329ac4bc9b5ULL

static uint64_t crc64_table[8][256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static const struct {
    const char *name;
    size_t len;
} ck_info[CM_CK__COUNT] = {
    [CM_CK_MD5] = {"md5", 16},       [CM_CK_SHA1] = {"sha1", 20},
    [CM_CK_SHA256] = {"sha256", 32}, [CM_CK_CRC32] = {"crc32", 4},
    [CM_CK_CRC32C] = {"crc32c", 4},  [CM_CK_CRC64NVME] = {"crc64nvme", 8},
};

size_t cm_ck_len(cm_ck_alg alg)
{
    return (unsigned)alg < CM_CK__COUNT ? ck_info[alg].len : 0;
}

const char *cm_ck_name(cm_ck_alg alg)
{
    return (unsigned)alg < CM_CK__COUNT ? ck_info[alg].name : "unknown";
}

cm_err cm_ck_parse(const char *name, cm_ck_alg *alg)
{
    for (int i = 0; i < CM_CK__COUNT; i++) {
        if (name && strcasecmp(name, ck_info[i].name) == 0) {
            *alg = (cm_ck_alg)i;
            return CM_OK;
        }
    }
    return CM_ERR_INVAL;
}

static const EVP_MD *ck_evp_md(cm_ck_alg alg)
{
    switch (alg) {
    case CM_CK_MD5:
        return EVP_md5();
    case CM_CK_SHA1:
        return EVP_sha1();
    case CM_CK_SHA256:
        return EVP_sha256();
    default:
        return NULL;
    }
}

cm_err cm_ck_init(cm_ck *ck, cm_ck_alg alg)
{
    memset(ck, 0, sizeof(*ck));
    if ((unsigned)alg >= CM_CK__COUNT)
        return CM_ERR_INVAL;
    ck->alg = alg;
    const EVP_MD *md = ck_evp_md(alg);
    if (!md)
        return CM_OK; /* CRCs start at 0 */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return CM_ERR_NOMEM;
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return CM_ERR_INTERNAL;
    }
    ck->u.evp = ctx;
    return CM_OK;
}

void cm_ck_update(cm_ck *ck, const void *data, size_t len)
{
    switch (ck->alg) {
    case CM_CK_CRC32:
        ck->u.crc32 = cm_crc32(ck->u.crc32, data, len);
        break;
    case CM_CK_CRC32C:
        ck->u.crc32 = cm_crc32c(ck->u.crc32, data, len);
        break;
    case CM_CK_CRC64NVME:
        ck->u.crc64 = cm_crc64nvme(ck->u.crc64, data, len);
        break;
    default:
        if (ck->u.evp)
            EVP_DigestUpdate(ck->u.evp, data, len);
        break;
    }
}

void cm_ck_final(cm_ck *ck, uint8_t *out)
{
    switch (ck->alg) {
    case CM_CK_CRC32:
    case CM_CK_CRC32C:
        cm_put_be32(out, ck->u.crc32);
        break;
    case CM_CK_CRC64NVME:
        cm_put_be64(out, ck->u.crc64);
        break;
    default:
        if (ck->u.evp) {
            unsigned int n = 0;
            EVP_DigestFinal_ex(ck->u.evp, out, &n);
        }
        break;
    }
    cm_ck_release(ck);
}

void cm_ck_release(cm_ck *ck)
{
    if (ck_evp_md(ck->alg) && ck->u.evp) {
        EVP_MD_CTX_free(ck->u.evp);
        ck->u.evp = NULL;
    }
}

cm_err cm_ck_digest(cm_ck_alg alg, const void *data, size_t len, uint8_t *out)
{
    cm_ck ck;
    cm_err err = cm_ck_init(&ck, alg);
    if (err != CM_OK)
        return err;
    cm_ck_update(&ck, data, len);
    cm_ck_final(&ck, out);
    return CM_OK;
}

uint32_t cm_crc32(uint32_t crc, const void *data, size_t len)
{
    if (len == 0)
        return crc;
    return crc32_gzip_refl(crc, data, len);
}

uint32_t cm_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t reg = ~crc;
    /* crc32_iscsi takes an int length: feed huge buffers in slices */
    while (len > 0) {
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        reg = crc32_iscsi((unsigned char *)p, n, reg);
        p += n;
        len -= (size_t)n;
    }
    return ~reg;
}

static void crc64_build(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC64NVME_POLY : c >> 1;
        crc64_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = crc64_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = (c >> 8) ^ crc64_table[0][c & 0xff];
            crc64_table[t][i] = c;
        }
    }
}

uint64_t cm_crc64nvme(uint64_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    pthread_once(&crc64_once, crc64_build);
    while (len >= 8) {
        /* byte-wise little-endian load keeps this alignment- and endian-agnostic */
        uint64_t w = c;
        for (int i = 0; i < 8; i++)
            w ^= (uint64_t)p[i] << (8 * i);
        c = crc64_table[7][w & 0xff] ^ crc64_table[6][(w >> 8) & 0xff] ^
            crc64_table[5][(w >> 16) & 0xff] ^ crc64_table[4][(w >> 24) & 0xff] ^
            crc64_table[3][(w >> 32) & 0xff] ^ crc64_table[2][(w >> 40) & 0xff] ^
            crc64_table[1][(w >> 48) & 0xff] ^ crc64_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ crc64_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

void cm_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, uint8_t *out)
{
    unsigned int n = 32;
    /* HMAC() wants a non-NULL key pointer even for an empty key */
    static const uint8_t empty = 0;
    HMAC(EVP_sha256(), keylen ? key : &empty, (int)keylen, msg, msglen, out, &n);
}

/*
 * CRC combination: the CRC of A||B from crc(A), crc(B) and len(B), without the bytes. Appending
 * len(B) zero bytes to A's CRC register is a linear map over GF(2); it is built by repeated
 * squaring of the one-zero-bit operator (as zlib does), so the cost is O(width^2 log len).
 * The pre/post inversion of these CRCs cancels out in this formulation.
 */
static uint64_t gf2_times(const uint64_t *mat, uint64_t vec)
{
    uint64_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void gf2_square(uint64_t *square, const uint64_t *mat, int width)
{
    for (int n = 0; n < width; n++)
        square[n] = gf2_times(mat, mat[n]);
}

static uint64_t crc_combine(uint64_t crc1, uint64_t crc2, uint64_t len2, uint64_t poly, int width)
{
    uint64_t even[64], odd[64], row = 1;

    if (len2 == 0)
        return crc1;
    odd[0] = poly; /* the operator for one zero bit */
    for (int n = 1; n < width; n++, row <<= 1)
        odd[n] = row;
    gf2_square(even, odd, width); /* two zero bits */
    gf2_square(odd, even, width); /* four zero bits */
    do {                          /* apply len2 zero bytes: 8 bits and up, by squaring */
        gf2_square(even, odd, width);
        if (len2 & 1)
            crc1 = gf2_times(even, crc1);
        len2 >>= 1;
        if (!len2)
            break;
        gf2_square(odd, even, width);
        if (len2 & 1)
            crc1 = gf2_times(odd, crc1);
        len2 >>= 1;
    } while (len2);
    return crc1 ^ crc2;
}

uint32_t cm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return (uint32_t)crc_combine(crc1, crc2, len2, 0xedb88320u, 32);
}

uint32_t cm_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return (uint32_t)crc_combine(crc1, crc2, len2, 0x82f63b78u, 32);
}

uint64_t cm_crc64nvme_combine(uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    return crc_combine(crc1, crc2, len2, CRC64NVME_POLY, 64);
}
