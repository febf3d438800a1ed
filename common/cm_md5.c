/*
 * cm_md5.c - MD5 (RFC 1321) of up to eight streams per kernel call, AVX-512VL lanes (cm_md5.h).
 *
 * Kernel. md5_x8 runs nb blocks of eight independent lanes: lane i's chaining value is *h[i] and
 * its blocks are at p[i], p[i] + step[i], ...; a lane with nothing to do points at a zero block
 * with step 0 and a scratch chaining value, so the code has no per-lane branches. Each block's
 * sixteen message words are loaded as two 32-byte rows per lane and transposed (8x8 of 32-bit
 * words) so that vector j holds word j of every lane. A step is then
 * a = b + rol(a + K + W + f(b, c, d), s) with f one vpternlogd (F 0xca, G 0xe4, H 0x96, I 0x39:
 * the truth tables of the RFC's functions over inputs b, c, d) and rol one vprold: the chain
 * through b is four instructions, as for one scalar stream, so eight lanes cost about what one
 * does. One lane does cost more than the scalar code on the general registers (md5_scalar):
 * measured on this project's 2-core EPYC, 430-470 MB/s against 700-770 MB/s (OpenSSL's MD5
 * 660-760), while eight lanes took 3,400-3,800 MB/s. So a stream hashed alone (cm_md5_update,
 * and a batch step with one busy lane) runs md5_scalar; two or more busy lanes run md5_x8 (two
 * streams on the general registers, their steps interleaved, measured no faster than two lanes).
 *
 * Scheduling. cm_md5_update_many gives each lane a context and walks that context's jobs in
 * order; the bytes of a job that do not start on a block boundary of its stream (len % 64 != 0)
 * first fill the context's buffer, whose block is then compressed alone, and bytes after the
 * last whole block go to the buffer. Whole blocks run in batches of the smallest count any busy
 * lane has left, so lanes finish together or are refilled with the next context; when only one
 * lane is busy its blocks run on md5_scalar. Jobs are taken in windows of CM_MD5_WINDOW so the
 * bookkeeping stays on the stack.
 *
 * Fallback. Without AVX-512F and AVX-512VL (checked once with __builtin_cpu_supports), or on
 * builds for other architectures, every context is OpenSSL's MD5 through cm_ck, and a batch runs
 * job after job.
 *
 * Threading: the CPU check is made once (pthread_once); everything else is on the caller's
 * contexts.
 */
#include "cm_md5.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MD5_X8 1
#include <immintrin.h>
#endif

#define CM_MD5_LANES 8
#define CM_MD5_WINDOW 64

static int md5_simd;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_cpu_check(void)
{
#ifdef MD5_X8
    __builtin_cpu_init();
    md5_simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
#endif
}

const char *cm_md5_impl(void)
{
    pthread_once(&md5_once, md5_cpu_check);
    return md5_simd ? "avx512vl-x8" : "openssl";
}

/* The RFC's T[i] = floor(2^32 * |sin(i + 1)|). */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static inline uint32_t rol32(uint32_t x, int s)
{
    return (x << s) | (x >> (32 - s));
}

/* One scalar step of the stream whose message words are W: a = b + rol(a + K[i] + W[g] + f, s).
 * The parts of f that do not need b (the newest value) are written apart so they leave the
 * chain: F and I put two operations after b, H one, and G is split into two disjoint terms,
 * (d & b) + (~d & c), the second added early. */
#define S_F(W, a, b, c, d, i, g, s) a = b + rol32(a + md5_k[i] + W[g] + (d ^ (b & (c ^ d))), s)
#define S_G(W, a, b, c, d, i, g, s) a = b + rol32(a + md5_k[i] + W[g] + (~d & c) + (d & b), s)
#define S_H(W, a, b, c, d, i, g, s) a = b + rol32(a + md5_k[i] + W[g] + (b ^ (c ^ d)), s)
#define S_I(W, a, b, c, d, i, g, s) a = b + rol32(a + md5_k[i] + W[g] + (c ^ (b | ~d)), s)
/* Four steps, then the 64 of a block. */
#define S_R4(S, i, g0, g1, g2, g3, s0, s1, s2, s3)                                                 \
    S(w, a, b, c, d, i, g0, s0);                                                                   \
    S(w, d, a, b, c, i + 1, g1, s1);                                                               \
    S(w, c, d, a, b, i + 2, g2, s2);                                                               \
    S(w, b, c, d, a, i + 3, g3, s3)
#define MD5_STEPS(R)                                                                               \
    R(S_F, 0, 0, 1, 2, 3, 7, 12, 17, 22);                                                          \
    R(S_F, 4, 4, 5, 6, 7, 7, 12, 17, 22);                                                          \
    R(S_F, 8, 8, 9, 10, 11, 7, 12, 17, 22);                                                        \
    R(S_F, 12, 12, 13, 14, 15, 7, 12, 17, 22);                                                     \
    R(S_G, 16, 1, 6, 11, 0, 5, 9, 14, 20);                                                         \
    R(S_G, 20, 5, 10, 15, 4, 5, 9, 14, 20);                                                        \
    R(S_G, 24, 9, 14, 3, 8, 5, 9, 14, 20);                                                         \
    R(S_G, 28, 13, 2, 7, 12, 5, 9, 14, 20);                                                        \
    R(S_H, 32, 5, 8, 11, 14, 4, 11, 16, 23);                                                       \
    R(S_H, 36, 1, 4, 7, 10, 4, 11, 16, 23);                                                        \
    R(S_H, 40, 13, 0, 3, 6, 4, 11, 16, 23);                                                        \
    R(S_H, 44, 9, 12, 15, 2, 4, 11, 16, 23);                                                       \
    R(S_I, 48, 0, 7, 14, 5, 6, 10, 15, 21);                                                        \
    R(S_I, 52, 12, 3, 10, 1, 6, 10, 15, 21);                                                       \
    R(S_I, 56, 8, 15, 6, 13, 6, 10, 15, 21);                                                       \
    R(S_I, 60, 4, 11, 2, 9, 6, 10, 15, 21)

static inline void md5_words(uint32_t w[16], const uint8_t *p)
{
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
}

/* nb blocks of one stream on the general registers: the same dependency chain as a lane's, but
 * with less latency per instruction, and no transpose or idle lanes (docs/performance.md,
 * "Thirteenth session", has the rates). */
static void md5_scalar(uint32_t h[4], const uint8_t *p, size_t nb)
{
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (size_t blk = 0; blk < nb; blk++, p += 64) {
        uint32_t w[16];
        md5_words(w, p);
        uint32_t sa = a, sb = b, sc = c, sd = d;
        MD5_STEPS(S_R4);
        a += sa;
        b += sb;
        c += sc;
        d += sd;
    }
    h[0] = a;
    h[1] = b;
    h[2] = c;
    h[3] = d;
}

#ifdef MD5_X8
static const uint8_t md5_zero_block[64]; /* what an idle lane reads */

#define X8_FN __attribute__((target("avx2,avx512f,avx512vl")))

/* rows[i] = 8 words of lane i; afterwards rows[j] = word j of every lane. */
X8_FN static void x8_transpose(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
        r[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
    }
}

#define X8_STEP(imm, a, b, c, d, i, g, s)                                                          \
    a = _mm256_add_epi32(                                                                          \
        b, _mm256_rol_epi32(                                                                       \
               _mm256_add_epi32(                                                                   \
                   _mm256_add_epi32(a, _mm256_add_epi32(w[g], _mm256_set1_epi32((int)md5_k[i]))),  \
                   _mm256_ternarylogic_epi32(b, c, d, imm)),                                       \
               s))
#define X8_R4(imm, i, g0, g1, g2, g3, s0, s1, s2, s3)                                              \
    X8_STEP(imm, a, b, c, d, i, g0, s0);                                                           \
    X8_STEP(imm, d, a, b, c, i + 1, g1, s1);                                                       \
    X8_STEP(imm, c, d, a, b, i + 2, g2, s2);                                                       \
    X8_STEP(imm, b, c, d, a, i + 3, g3, s3)

X8_FN static void md5_x8(uint32_t *h[CM_MD5_LANES], const uint8_t *p[CM_MD5_LANES],
                         const size_t step[CM_MD5_LANES], size_t nb)
{
    uint32_t v[4][CM_MD5_LANES];
    for (int i = 0; i < CM_MD5_LANES; i++)
        for (int j = 0; j < 4; j++)
            v[j][i] = h[i][j];
    __m256i a = _mm256_loadu_si256((const __m256i *)v[0]);
    __m256i b = _mm256_loadu_si256((const __m256i *)v[1]);
    __m256i c = _mm256_loadu_si256((const __m256i *)v[2]);
    __m256i d = _mm256_loadu_si256((const __m256i *)v[3]);
    const uint8_t *q[CM_MD5_LANES];
    memcpy(q, p, sizeof(q));
    for (size_t blk = 0; blk < nb; blk++) {
        __m256i w[16];
        for (int i = 0; i < CM_MD5_LANES; i++) {
            w[i] = _mm256_loadu_si256((const __m256i *)q[i]);
            w[i + 8] = _mm256_loadu_si256((const __m256i *)(q[i] + 32));
            q[i] += step[i];
        }
        x8_transpose(w);
        x8_transpose(w + 8);
        __m256i a0 = a, b0 = b, c0 = c, d0 = d;
        X8_R4(0xca, 0, 0, 1, 2, 3, 7, 12, 17, 22);
        X8_R4(0xca, 4, 4, 5, 6, 7, 7, 12, 17, 22);
        X8_R4(0xca, 8, 8, 9, 10, 11, 7, 12, 17, 22);
        X8_R4(0xca, 12, 12, 13, 14, 15, 7, 12, 17, 22);
        X8_R4(0xe4, 16, 1, 6, 11, 0, 5, 9, 14, 20);
        X8_R4(0xe4, 20, 5, 10, 15, 4, 5, 9, 14, 20);
        X8_R4(0xe4, 24, 9, 14, 3, 8, 5, 9, 14, 20);
        X8_R4(0xe4, 28, 13, 2, 7, 12, 5, 9, 14, 20);
        X8_R4(0x96, 32, 5, 8, 11, 14, 4, 11, 16, 23);
        X8_R4(0x96, 36, 1, 4, 7, 10, 4, 11, 16, 23);
        X8_R4(0x96, 40, 13, 0, 3, 6, 4, 11, 16, 23);
        X8_R4(0x96, 44, 9, 12, 15, 2, 4, 11, 16, 23);
        X8_R4(0x39, 48, 0, 7, 14, 5, 6, 10, 15, 21);
        X8_R4(0x39, 52, 12, 3, 10, 1, 6, 10, 15, 21);
        X8_R4(0x39, 56, 8, 15, 6, 13, 6, 10, 15, 21);
        X8_R4(0x39, 60, 4, 11, 2, 9, 6, 10, 15, 21);
        a = _mm256_add_epi32(a, a0);
        b = _mm256_add_epi32(b, b0);
        c = _mm256_add_epi32(c, c0);
        d = _mm256_add_epi32(d, d0);
    }
    _mm256_storeu_si256((__m256i *)v[0], a);
    _mm256_storeu_si256((__m256i *)v[1], b);
    _mm256_storeu_si256((__m256i *)v[2], c);
    _mm256_storeu_si256((__m256i *)v[3], d);
    for (int i = 0; i < CM_MD5_LANES; i++)
        for (int j = 0; j < 4; j++)
            h[i][j] = v[j][i];
}
#endif

static void simd_start(cm_md5 *m)
{
    memset(m, 0, sizeof(*m));
    m->simd = 1;
    m->h[0] = 0x67452301;
    m->h[1] = 0xefcdab89;
    m->h[2] = 0x98badcfe;
    m->h[3] = 0x10325476;
}

cm_err cm_md5_init(cm_md5 *m)
{
    pthread_once(&md5_once, md5_cpu_check);
    if (md5_simd) {
        simd_start(m);
        return CM_OK;
    }
    return cm_md5_init_openssl(m);
}

cm_err cm_md5_init_openssl(cm_md5 *m)
{
    memset(m, 0, sizeof(*m));
    return cm_ck_init(&m->ck, CM_CK_MD5);
}

/* Bytes up to the next block boundary of m's stream go to its buffer; a filled buffer is
 * compressed. Returns how many of the n bytes were taken. */
static size_t simd_align(cm_md5 *m, const uint8_t *p, size_t n)
{
    size_t fill = (size_t)(m->len % 64);
    if (fill == 0)
        return 0;
    size_t t = 64 - fill < n ? 64 - fill : n;
    memcpy(m->buf + fill, p, t);
    m->len += t;
    if (fill + t == 64)
        md5_scalar(m->h, m->buf, 1);
    return t;
}

/* Bytes after the last whole block wait in the buffer (m's stream is on a block boundary). */
static void simd_tail(cm_md5 *m, const uint8_t *p, size_t n)
{
    memcpy(m->buf, p, n);
    m->len += n;
}

void cm_md5_update(cm_md5 *m, const void *data, size_t n)
{
    if (!m->simd) {
        cm_ck_update(&m->ck, data, n);
        return;
    }
    const uint8_t *p = data;
    size_t t = simd_align(m, p, n);
    p += t;
    n -= t;
    if (n >= 64) {
        md5_scalar(m->h, p, n / 64);
        m->len += n / 64 * 64;
        p += n / 64 * 64;
        n %= 64;
    }
    if (n)
        simd_tail(m, p, n);
}

#ifdef MD5_X8
typedef struct {
    cm_md5 *m;        /* NULL: idle */
    int job;          /* index in the window */
    const uint8_t *p; /* whole blocks left of the job, from p */
    size_t nb;
} md5_lane;

/* Give lane l the job at index j: align it, and leave it busy only when whole blocks remain. */
static void lane_start(md5_lane *l, const cm_md5_job *jobs, int j)
{
    const uint8_t *p = jobs[j].p;
    size_t n = jobs[j].n;
    size_t t = simd_align(jobs[j].m, p, n);
    l->m = jobs[j].m;
    l->job = j;
    l->p = p + t;
    l->nb = (n - t) / 64;
}

/* The lane's job has no whole block left: its tail goes to the buffer. */
static void lane_end(md5_lane *l, const cm_md5_job *jobs)
{
    const uint8_t *end = (const uint8_t *)jobs[l->job].p + jobs[l->job].n;
    if (l->p < end)
        simd_tail(l->m, l->p, (size_t)(end - l->p));
}

static int lane_busy_with(const md5_lane *lanes, const cm_md5 *m)
{
    for (int i = 0; i < CM_MD5_LANES; i++)
        if (lanes[i].m == m)
            return 1;
    return 0;
}

/* The next job lane l may take: the next of its own context, else the first job not taken whose
 * context no lane holds and no earlier job of which is still waiting. -1: none. */
static int next_job(const md5_lane *lanes, const cm_md5_job *jobs, int n, const uint8_t *taken,
                    const cm_md5 *own)
{
    for (int j = 0; j < n; j++) {
        if (taken[j])
            continue;
        if (own && jobs[j].m == own)
            return j;
        if (!own && !lane_busy_with(lanes, jobs[j].m)) {
            int earlier = 0;
            for (int e = 0; e < j && !earlier; e++)
                earlier = !taken[e] && jobs[e].m == jobs[j].m;
            if (!earlier)
                return j;
        }
    }
    return -1;
}

/* Refill lanes until every lane is busy with whole blocks or no job is left; a lane first takes
 * the next job of the context it holds. */
static void lanes_fill(md5_lane *lanes, const cm_md5_job *jobs, int n, uint8_t *taken)
{
    for (int i = 0; i < CM_MD5_LANES; i++) {
        md5_lane *l = &lanes[i];
        while (!l->m || l->nb == 0) {
            int j = -1;
            if (l->m) {
                lane_end(l, jobs);
                j = next_job(lanes, jobs, n, taken, l->m);
                l->m = NULL;
            }
            if (j < 0)
                j = next_job(lanes, jobs, n, taken, NULL);
            if (j < 0)
                break;
            taken[j] = 1;
            lane_start(l, jobs, j);
        }
    }
}

static void md5_window(const cm_md5_job *jobs, int n)
{
    md5_lane lanes[CM_MD5_LANES];
    uint8_t taken[CM_MD5_WINDOW];
    uint32_t scratch[4];
    memset(lanes, 0, sizeof(lanes));
    memset(taken, 0, sizeof(taken));
    for (;;) {
        lanes_fill(lanes, jobs, n, taken);
        uint32_t *hs[CM_MD5_LANES];
        const uint8_t *ps[CM_MD5_LANES];
        size_t steps[CM_MD5_LANES];
        size_t nb = 0;
        int nbusy = 0, first = 0;
        for (int i = 0; i < CM_MD5_LANES; i++) {
            if (!lanes[i].m)
                continue;
            if (nbusy++ == 0)
                first = i;
            if (nb == 0 || lanes[i].nb < nb)
                nb = lanes[i].nb;
        }
        if (nb == 0)
            return;       /* no lane busy: every job is done */
        if (nbusy == 1) { /* one stream: the general registers beat a vector lane */
            md5_scalar(lanes[first].m->h, lanes[first].p, nb);
        } else {
            for (int i = 0; i < CM_MD5_LANES; i++) {
                int on = lanes[i].m != NULL;
                hs[i] = on ? lanes[i].m->h : scratch;
                ps[i] = on ? lanes[i].p : md5_zero_block;
                steps[i] = on ? 64 : 0;
            }
            md5_x8(hs, ps, steps, nb);
        }
        for (int i = 0; i < CM_MD5_LANES; i++) {
            if (!lanes[i].m)
                continue;
            lanes[i].p += nb * 64;
            lanes[i].nb -= nb;
            lanes[i].m->len += nb * 64;
        }
    }
}
#endif

void cm_md5_update_many(const cm_md5_job *jobs, int njobs)
{
    if (njobs <= 0)
        return;
#ifdef MD5_X8
    if (jobs[0].m->simd) {
        for (int off = 0; off < njobs; off += CM_MD5_WINDOW)
            md5_window(jobs + off, njobs - off < CM_MD5_WINDOW ? njobs - off : CM_MD5_WINDOW);
        return;
    }
#endif
    for (int j = 0; j < njobs; j++)
        cm_md5_update(jobs[j].m, jobs[j].p, jobs[j].n);
}

void cm_md5_final(cm_md5 *m, uint8_t out[16])
{
    if (!m->simd) {
        cm_ck_final(&m->ck, out);
        return;
    }
    uint8_t pad[72];
    uint64_t bits = m->len * 8;
    size_t padn = 64 - (size_t)(m->len % 64);
    if (padn < 9)
        padn += 64;
    memset(pad, 0, sizeof(pad));
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++)
        pad[padn - 8 + (size_t)i] = (uint8_t)(bits >> (8 * i));
    cm_md5_update(m, pad, padn);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++)
            out[4 * j + i] = (uint8_t)(m->h[j] >> (8 * i));
    m->simd = 0; /* released: a later release or final has nothing to free */
    memset(&m->ck, 0, sizeof(m->ck));
}

void cm_md5_release(cm_md5 *m)
{
    if (!m->simd)
        cm_ck_release(&m->ck);
}
