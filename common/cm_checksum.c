/*
 * cm_checksum.c - the digests S3 uses behind one streaming interface.
 *
 * MD5, SHA-1 and SHA-256 are OpenSSL EVP digests; the cm_ck union holds the EVP_MD_CTX pointer,
 * which final/release free (so release after final is a no-op: the pointer is cleared). The
 * EVP_MDs are fetched once per process (EVP_MD_fetch under pthread_once) and kept: passing the
 * legacy EVP_sha256() makes OpenSSL 3 look the algorithm up in its method store (a lock and a
 * reference count) on every init, which doubled the cost of a short SHA-256. HMAC-SHA256 is in
 * cm_hmac.c (RFC 2104 over SHA-256 states kept by value; HMAC() in OpenSSL 3 fetches the HMAC and
 * SHA-256 implementations by name on every call: 1.07 us per short message against 0.15 us).
 *
 * CRC running-value convention (all three): the value passed in and returned is the finished CRC
 * of the bytes so far, 0 for no bytes, so cm_crcX(cm_crcX(0, a), b) == cm_crcX(0, a || b), as
 * with zlib's crc32(). Internally each CRC un-inverts the running value, runs the register and
 * inverts again.
 *   - CRC32 (IEEE, reflected 0xEDB88320): ISA-L crc32_gzip_refl already uses zlib's convention.
 *   - CRC32C (Castagnoli): ISA-L crc32_iscsi takes the raw register and does not invert at the end,
 *     so we pass ~crc in and invert the result. (Both ISA-L functions dispatch at run time to
 *     their PCLMULQDQ / VPCLMULQDQ folding versions.)
 *   - CRC64NVME (reflected poly 0x9a6c9329ac4bc9b5, init/xorout all ones): slicing-by-8 tables,
 *     and on x86-64 CPUs with PCLMULQDQ a folding version (see "CRC64NVME by carry-less
 *     multiplication" below). Tables, constants and the CPU check are set up once under
 *     pthread_once; after that they are read-only and shared by all threads.
 *
 * Digests are written big-endian, the byte order S3 base64-encodes in x-amz-checksum-*.
 */
#include "cm_checksum.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include "cm_util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC64_CLMUL 1
#include <immintrin.h>
#endif

#define CRC64NVME_POLY 0x9a6c9329ac4bc9b5ULL
#define CRC64_CLMUL_MIN 64 /* shorter inputs go to the tables (the setup would not pay) */

static uint64_t crc64_table[8][256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;
static int crc64_use_clmul;

/* Folding constants, each bit-reflected (see crc64_build): {lo, hi} multipliers for folding a
 * 128-bit lane forward by 512 and by 128 bits, the 128 -> 64 step, and Barrett's quotient. */
static struct {
    uint64_t k512[2], k128[2], k64, mu;
} crc64_k;

static EVP_MD *ck_md[3]; /* MD5, SHA-1, SHA-256, fetched once, never freed */
static pthread_once_t ck_md_once = PTHREAD_ONCE_INIT;

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

static void ck_md_fetch(void)
{
    ck_md[CM_CK_MD5] = EVP_MD_fetch(NULL, "MD5", NULL);
    ck_md[CM_CK_SHA1] = EVP_MD_fetch(NULL, "SHA1", NULL);
    ck_md[CM_CK_SHA256] = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The fetched digest of alg; the legacy handle when a fetch failed (slower, still correct). */
static const EVP_MD *ck_evp_md(cm_ck_alg alg)
{
    pthread_once(&ck_md_once, ck_md_fetch);
    switch (alg) {
    case CM_CK_MD5:
        return ck_md[alg] ? ck_md[alg] : EVP_md5();
    case CM_CK_SHA1:
        return ck_md[alg] ? ck_md[alg] : EVP_sha1();
    case CM_CK_SHA256:
        return ck_md[alg] ? ck_md[alg] : EVP_sha256();
    default:
        return NULL;
    }
}

static int ck_is_digest(cm_ck_alg alg)
{
    return alg == CM_CK_MD5 || alg == CM_CK_SHA1 || alg == CM_CK_SHA256;
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
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
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
    if (ck_is_digest(ck->alg) && ck->u.evp) {
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

/*
 * CRC64NVME by carry-less multiplication (the folding method of Intel's white paper "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ", reworked for this polynomial).
 *
 * Notation: the CRC of a message M is M(x) * x^64 mod P(x), with P = x^64 + p(x) and the first
 * byte's bit 0 the highest coefficient (a reflected CRC). Loading 16 message bytes little-endian
 * into a 128-bit register puts the coefficient of x^(127-j) in bit j: the register holds a
 * 128-bit polynomial S bit-reversed. Its low qword is rev64(S_hi), its high qword rev64(S_lo),
 * where S = S_hi * x^64 + S_lo. The CRC register itself is rev64 of the CRC polynomial, so
 * XOR-ing it into the first 8 bytes applies the initial value.
 *
 * Product of reflected operands: clmul(rev64(a), rev64(b)) = rev128(a * b * x) - the product
 * lands one bit short of where rev128 would put it, so every multiplier below is x^(n-1) rather
 * than x^n.
 *
 * Folding a lane forward by D bits: S * x^D == S_hi * (x^(D+64) mod P) + S_lo * (x^D mod P), a
 * polynomial of degree < 128 again, so
 *     S' = clmul(lo, rev64(x^(D+63) mod P)) ^ clmul(hi, rev64(x^(D-1) mod P)),
 * then the message block D bits further on is XOR-ed in. Four lanes run 512 bits apart (64 bytes
 * per step, independent multiplies), are folded into one by 128-bit steps, and any 16-byte blocks
 * left follow the same way. Then the 128-bit S becomes the CRC register:
 *   1. U = S * x^64 mod-equivalent in 128 bits: a fold by D = 64 (x^63 mod P = x^63, whose
 *      multiplier is 1, so the high qword just moves down): U = clmul(lo, rev64(x^127 mod P))
 *      ^ (S >> 64). Low qword rev64(U_hi), high qword rev64(U_lo).
 *   2. Barrett: U mod P = U_lo + low64(q * p) with q = U_hi + hi64(U_hi * m), m = the low 64
 *      bits of mu = floor(x^128 / P). In the reflected register the hi64 sits one bit low (the
 *      extra x), so it is shifted up by one, and low64(q * p) comes out at bits 63..126.
 * Bytes after the last full 16-byte block go through the tables from the reduced register.
 *
 * The constants are derived at start-up from the polynomial alone: x^n mod P by n reflected
 * shift-and-reduce steps (the bit-at-a-time CRC register), mu by long division; the tests
 * compare the result with the table code on random data, lengths and alignments.
 */
static uint64_t rev64(uint64_t v)
{
    uint64_t r = 0;
    for (int i = 0; i < 64; i++, v >>= 1)
        r = (r << 1) | (v & 1);
    return r;
}

/* rev64(x^n mod P): start from x^0 (bit 63) and multiply by x n times. */
static uint64_t crc64_xpow(unsigned n)
{
    uint64_t r = 1ULL << 63;
    while (n--)
        r = (r & 1) ? (r >> 1) ^ CRC64NVME_POLY : r >> 1;
    return r;
}

/* rev64 of the low 64 bits of floor(x^128 / P), by long division in plain bit order. */
static uint64_t crc64_mu(void)
{
    const uint64_t p = rev64(CRC64NVME_POLY);
    unsigned __int128 rem = (unsigned __int128)p << 64; /* x^128 - x^64 * P */
    uint64_t q = 0;
    for (int d = 127; d >= 64; d--) {
        if ((uint64_t)(rem >> d) & 1) {
            q |= 1ULL << (d - 64);
            rem ^= ((unsigned __int128)1 << d) ^ ((unsigned __int128)p << (d - 64));
        }
    }
    return rev64(q);
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
    crc64_k.k512[0] = crc64_xpow(512 + 63);
    crc64_k.k512[1] = crc64_xpow(512 - 1);
    crc64_k.k128[0] = crc64_xpow(128 + 63);
    crc64_k.k128[1] = crc64_xpow(128 - 1);
    crc64_k.k64 = crc64_xpow(127);
    crc64_k.mu = crc64_mu();
#ifdef CRC64_CLMUL
    __builtin_cpu_init();
    crc64_use_clmul = __builtin_cpu_supports("pclmul");
#endif
}

/* Run the raw (un-inverted) register over p with the slicing-by-8 tables. */
static uint64_t crc64_tables(uint64_t c, const uint8_t *p, size_t len)
{
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
    return c;
}

#ifdef CRC64_CLMUL
#define CLMUL_FN __attribute__((target("pclmul,sse2")))

CLMUL_FN static inline __m128i clmul_fold(__m128i x, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

CLMUL_FN static inline __m128i clmul_load(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

CLMUL_FN static inline uint64_t clmul_hi64(__m128i x)
{
    return (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x));
}

/* 128-bit folded state -> CRC register: the fold by 64, then Barrett (see above). */
CLMUL_FN static uint64_t clmul_reduce(__m128i x)
{
    __m128i k64 = _mm_cvtsi64_si128((long long)crc64_k.k64);
    __m128i u = _mm_xor_si128(_mm_clmulepi64_si128(x, k64, 0x00), _mm_srli_si128(x, 8));
    __m128i t = _mm_clmulepi64_si128(u, _mm_cvtsi64_si128((long long)crc64_k.mu), 0x00);
    uint64_t q = (uint64_t)_mm_cvtsi128_si64(u) ^ ((uint64_t)_mm_cvtsi128_si64(t) << 1);
    __m128i qp = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)q),
                                      _mm_cvtsi64_si128((long long)CRC64NVME_POLY), 0x00);
    uint64_t low = (clmul_hi64(qp) << 1) | ((uint64_t)_mm_cvtsi128_si64(qp) >> 63);
    return clmul_hi64(u) ^ low;
}

/* The raw register over p[0..len), len >= 64. */
CLMUL_FN static uint64_t crc64_clmul(uint64_t c, const uint8_t *p, size_t len)
{
    const __m128i k512 = _mm_set_epi64x((long long)crc64_k.k512[1], (long long)crc64_k.k512[0]);
    const __m128i k128 = _mm_set_epi64x((long long)crc64_k.k128[1], (long long)crc64_k.k128[0]);
    __m128i x0 = _mm_xor_si128(clmul_load(p), _mm_cvtsi64_si128((long long)c));
    __m128i x1 = clmul_load(p + 16), x2 = clmul_load(p + 32), x3 = clmul_load(p + 48);
    p += 64;
    len -= 64;
    for (; len >= 64; p += 64, len -= 64) {
        x0 = _mm_xor_si128(clmul_fold(x0, k512), clmul_load(p));
        x1 = _mm_xor_si128(clmul_fold(x1, k512), clmul_load(p + 16));
        x2 = _mm_xor_si128(clmul_fold(x2, k512), clmul_load(p + 32));
        x3 = _mm_xor_si128(clmul_fold(x3, k512), clmul_load(p + 48));
    }
    x1 = _mm_xor_si128(clmul_fold(x0, k128), x1);
    x2 = _mm_xor_si128(clmul_fold(x1, k128), x2);
    x3 = _mm_xor_si128(clmul_fold(x2, k128), x3);
    for (; len >= 16; p += 16, len -= 16)
        x3 = _mm_xor_si128(clmul_fold(x3, k128), clmul_load(p));
    return crc64_tables(clmul_reduce(x3), p, len);
}
#endif

uint64_t cm_crc64nvme_table(uint64_t crc, const void *data, size_t len)
{
    pthread_once(&crc64_once, crc64_build);
    return ~crc64_tables(~crc, data, len);
}

uint64_t cm_crc64nvme(uint64_t crc, const void *data, size_t len)
{
    pthread_once(&crc64_once, crc64_build);
#ifdef CRC64_CLMUL
    if (crc64_use_clmul && len >= CRC64_CLMUL_MIN)
        return ~crc64_clmul(~crc, data, len);
#endif
    return ~crc64_tables(~crc, data, len);
}

const char *cm_crc64nvme_impl(void)
{
    pthread_once(&crc64_once, crc64_build);
    return crc64_use_clmul ? "pclmul" : "table";
}

/*
 * CRC combination: the CRC of A||B from crc(A), crc(B) and len(B), without the bytes. Running
 * len(B) zero bytes through A's register multiplies it by x^(8 len(B)) modulo the polynomial
 * (the pre/post inversions cancel out: the result is that product XOR crc(B)). The power is
 * assembled from x^(2^i), i = 3..63, kept per polynomial in a table built once: one modular
 * multiplication per set bit of len(B), so combining a 64 KiB block's CRC costs a single
 * 32-step multiplication (the node's chunk reads chain one per stored block: nd_service.c).
 * Polynomials are in the CRCs' reflected bit order: the top bit of the width is x^0.
 */
typedef struct {
    uint64_t poly;
    int width;
    pthread_once_t once;
    uint64_t pow2[64]; /* x^(2^i) modulo poly */
} crc_powers;

/* a * b modulo the polynomial, all in reflected order */
static uint64_t gf2_mulmod(uint64_t a, uint64_t b, uint64_t poly, int width)
{
    uint64_t prod = 0;
    for (uint64_t bit = 1ull << (width - 1); a != 0; bit >>= 1) {
        if (a & bit) {
            prod ^= b;
            a ^= bit;
        }
        b = (b & 1) ? (b >> 1) ^ poly : b >> 1; /* b * x */
    }
    return prod;
}

static void powers_build(crc_powers *t)
{
    t->pow2[0] = 1ull << (t->width - 2); /* x^1 */
    for (int i = 1; i < 64; i++)
        t->pow2[i] = gf2_mulmod(t->pow2[i - 1], t->pow2[i - 1], t->poly, t->width);
}

static crc_powers crc32_pow = {0xedb88320u, 32, PTHREAD_ONCE_INIT, {0}};
static crc_powers crc32c_pow = {0x82f63b78u, 32, PTHREAD_ONCE_INIT, {0}};
static crc_powers crc64_pow = {CRC64NVME_POLY, 64, PTHREAD_ONCE_INIT, {0}};
static void crc32_pow_build(void)
{
    powers_build(&crc32_pow);
}
static void crc32c_pow_build(void)
{
    powers_build(&crc32c_pow);
}
static void crc64_pow_build(void)
{
    powers_build(&crc64_pow);
}

static uint64_t crc_combine(const crc_powers *t, uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    /* x^(8 len2): bit i of len2 contributes x^(2^(i+3)); lengths below 2^61 bytes */
    for (int i = 3; len2 != 0 && i < 64; i++, len2 >>= 1)
        if (len2 & 1)
            crc1 = gf2_mulmod(t->pow2[i], crc1, t->poly, t->width);
    return crc1 ^ crc2;
}

uint32_t cm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    pthread_once(&crc32_pow.once, crc32_pow_build);
    return (uint32_t)crc_combine(&crc32_pow, crc1, crc2, len2);
}

uint32_t cm_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    pthread_once(&crc32c_pow.once, crc32c_pow_build);
    return (uint32_t)crc_combine(&crc32c_pow, crc1, crc2, len2);
}

uint64_t cm_crc64nvme_combine(uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    pthread_once(&crc64_pow.once, crc64_pow_build);
    return crc_combine(&crc64_pow, crc1, crc2, len2);
}
