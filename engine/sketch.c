/*
 * sketch.c — HyperLogLog and DDSketch. See sketch.h for accuracy and layout. HLL registers
 * live as sorted sparse entries until HLL_SPARSE_MAX are set, then as a dense byte array;
 * the estimate reads only the histogram of register values (see "The estimate" below).
 */
#include "engine/sketch.h"

#include "engine/buf.h"
#include "engine/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

hll *hll_create(void)
{
    return calloc(1, sizeof(hll));
}

void hll_free(hll *h)
{
    if (!h)
        return;
    free(h->reg);
    free(h->sp);
    free(h);
}

static bool hll_densify(hll *h)
{
    if (h->reg)
        return true;
    h->reg = calloc(HLL_REGISTERS, 1);
    if (!h->reg) {
        h->oom = true;
        return false;
    }
    for (uint32_t i = 0; i < h->nsp; i++)
        h->reg[h->sp[i] >> 8] = (uint8_t)(h->sp[i] & 0xff);
    free(h->sp);
    h->sp = NULL;
    h->nsp = h->capsp = 0;
    return true;
}

static void hll_set(hll *h, uint32_t idx, uint8_t rank)
{
    if (!h->reg) {
        uint32_t lo = 0, hi = h->nsp;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if ((h->sp[mid] >> 8) < idx)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < h->nsp && (h->sp[lo] >> 8) == idx) {
            if (rank > (h->sp[lo] & 0xff))
                h->sp[lo] = idx << 8 | rank;
            return;
        }
        if (h->nsp < HLL_SPARSE_MAX) {
            if (h->nsp == h->capsp) {
                uint32_t cap = h->capsp ? h->capsp * 2 : 16;
                uint32_t *sp = realloc(h->sp, sizeof *sp * cap);
                if (!sp) {
                    if (!hll_densify(h))
                        return;
                    goto dense;
                }
                h->sp = sp;
                h->capsp = cap;
            }
            memmove(h->sp + lo + 1, h->sp + lo, sizeof *h->sp * (h->nsp - lo));
            h->sp[lo] = idx << 8 | rank;
            h->nsp++;
            return;
        }
        if (!hll_densify(h))
            return;
    }
dense:
    if (rank > h->reg[idx])
        h->reg[idx] = rank;
}

uint64_t sketch_hash_u64(uint64_t v)
{
    return XXH3_64bits(&v, sizeof v);
}

uint64_t sketch_hash_bytes(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

void hll_add_hash(hll *h, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> (64 - HLL_P));
    uint64_t rest = (hash << HLL_P) | (UINT64_C(1) << (HLL_P - 1)); /* guard bit: rank <= 51 */
    hll_set(h, idx, (uint8_t)(__builtin_clzll(rest) + 1));
}

/* dst[i] = max(dst[i], src[i]) over the HLL_REGISTERS registers: what merging dense
 * sketches is, and what a rollup query merging many buckets does most. 32 registers at
 * a time where the CPU has AVX2 (chosen once, at the first call), else 16 (SSE2), else
 * one. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void registers_max_avx2(uint8_t *dst, const uint8_t *src)
{
    for (uint32_t i = 0; i < HLL_REGISTERS; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(dst + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_max_epu8(a, b));
    }
}
#endif

static void registers_max(uint8_t *dst, const uint8_t *src)
{
#if defined(__x86_64__) && defined(__GNUC__)
    static _Atomic int avx2 = -1; /* every thread finds the same answer */
    int has = atomic_load_explicit(&avx2, memory_order_relaxed);
    if (has < 0) {
        has = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store_explicit(&avx2, has, memory_order_relaxed);
    }
    if (has) {
        registers_max_avx2(dst, src);
        return;
    }
#endif
#ifdef __SSE2__
    for (uint32_t i = 0; i < HLL_REGISTERS; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(dst + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_max_epu8(a, b));
    }
#else
    for (uint32_t i = 0; i < HLL_REGISTERS; i++)
        if (src[i] > dst[i])
            dst[i] = src[i];
#endif
}

void hll_merge(hll *dst, const hll *src)
{
    dst->oom |= src->oom;
    if (src->reg) {
        if (!hll_densify(dst))
            return;
        registers_max(dst->reg, src->reg);
        return;
    }
    if (!dst->reg && src->nsp) {
        /* both sparse: one pass over the two sorted lists */
        uint32_t *m = malloc(sizeof *m * ((size_t)dst->nsp + src->nsp));
        if (!m) {
            if (!hll_densify(dst))
                return;
        } else {
            uint32_t i = 0, j = 0, n = 0;
            while (i < dst->nsp || j < src->nsp) {
                uint32_t a = i < dst->nsp ? dst->sp[i] : UINT32_MAX, b = j < src->nsp ? src->sp[j] : UINT32_MAX;
                if ((a >> 8) == (b >> 8)) {
                    m[n++] = (a & 0xff) >= (b & 0xff) ? a : b;
                    i++;
                    j++;
                } else if ((a >> 8) < (b >> 8)) {
                    m[n++] = a;
                    i++;
                } else {
                    m[n++] = b;
                    j++;
                }
            }
            free(dst->sp);
            dst->sp = m;
            dst->nsp = n;
            dst->capsp = i + j; /* the allocation's size: the two lists' lengths */
            if (n > HLL_SPARSE_MAX)
                hll_densify(dst); /* (on failure oom is set and the sparse list stays) */
            return;
        }
    }
    for (uint32_t i = 0; i < src->nsp; i++) { /* into dense registers */
        uint32_t idx = src->sp[i] >> 8;
        uint8_t rank = (uint8_t)(src->sp[i] & 0xff);
        if (rank > dst->reg[idx])
            dst->reg[idx] = rank;
    }
}

/* ---- The estimate -------------------------------------------------------------------
 *
 * Otmar Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017), written from the paper. With q = 64 - HLL_P hash bits after the index,
 * a register holds 0 (empty) up to q + 1 (no one-bit among the q bits: the guard bit). Let
 * C[k] be how many registers hold k. The raw HyperLogLog estimate alpha m^2 / sum(2^-reg)
 * is biased for small n, where most registers are 0, and (in theory) near 2^64, where many
 * hold q + 1; the old cure was linear counting below 2.5 m, and switching between two
 * estimators left a step of up to +3% around 160k. The improved estimator instead replaces
 * what the empty registers (C[0]) and the saturated ones (C[q+1]) add to the sum by terms
 * derived from the Poisson model, sigma and tau, which stay right at both ends:
 *
 *   n = alpha_inf m^2 / (m sigma(C[0]/m) + sum_{k=1..q} C[k] 2^-k + m tau(1 - C[q+1]/m) 2^-q)
 *
 *   alpha_inf = 1 / (2 ln 2)
 *   sigma(x)  = x + sum_{k>=1} x^(2^k) 2^(k-1)                          (infinite at x = 1)
 *   tau(x)    = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3           (0 at x = 0 and 1)
 *
 * One formula over the whole range: no switch, no empirical bias tables, and it behaves like
 * linear counting where that is exact. It depends on the registers only through the
 * histogram C, which the sparse and dense forms yield identically (integers, no rounding
 * order), so one state gives one estimate whatever its form. */

#define HLL_Q (64 - HLL_P) /* hash bits after the register index; ranks are 1..HLL_Q + 1 */

/* sigma(x) for 0 <= x < 1, summed until the terms no longer change the sum. */
static double hll_sigma(double x)
{
    double sum = x, weight = 1;
    for (;;) {
        x *= x;
        double next = sum + x * weight;
        if (next == sum)
            return sum;
        sum = next;
        weight *= 2;
    }
}

/* tau(x) for 0 <= x <= 1, summed until the terms no longer change the sum. */
static double hll_tau(double x)
{
    if (x == 0 || x == 1)
        return 0;
    double sum = 1 - x, weight = 1;
    for (;;) {
        x = sqrt(x);
        weight /= 2;
        double next = sum - (1 - x) * (1 - x) * weight;
        if (next == sum)
            return sum / 3;
        sum = next;
    }
}

/* c[k] = how many registers hold k, for k = 0..HLL_Q + 1. */
static void hll_histogram(const hll *h, uint32_t c[HLL_Q + 2])
{
    memset(c, 0, sizeof(uint32_t) * (HLL_Q + 2));
    if (!h->reg) {
        c[0] = HLL_REGISTERS - h->nsp;
        for (uint32_t i = 0; i < h->nsp; i++) {
            uint32_t r = h->sp[i] & 0xff;
            c[r <= HLL_Q + 1 ? r : HLL_Q + 1]++;
        }
        return;
    }
    /* Four interleaved tallies, so that runs of equal registers do not wait on one
     * counter's store; 256 wide, so any byte indexes safely. */
    uint32_t t[4][256];
    memset(t, 0, sizeof t);
    for (uint32_t i = 0; i < HLL_REGISTERS; i += 4) {
        t[0][h->reg[i]]++;
        t[1][h->reg[i + 1]]++;
        t[2][h->reg[i + 2]]++;
        t[3][h->reg[i + 3]]++;
    }
    for (uint32_t r = 0; r < 256; r++)
        c[r <= HLL_Q + 1 ? r : HLL_Q + 1] += t[0][r] + t[1][r] + t[2][r] + t[3][r];
}

uint64_t hll_estimate(const hll *h)
{
    const double m = HLL_REGISTERS;
    uint32_t c[HLL_Q + 2];
    hll_histogram(h, c);
    if (c[0] == HLL_REGISTERS)
        return 0;
    if (c[HLL_Q + 1] == HLL_REGISTERS)
        return UINT64_MAX; /* every register saturated: beyond what 64-bit hashes tell */
    double z = m * hll_tau(1 - c[HLL_Q + 1] / m);
    for (int k = HLL_Q; k >= 1; k--) /* Horner: sum_k C[k] 2^-k + m tau 2^-q */
        z = 0.5 * (z + c[k]);
    z += m * hll_sigma(c[0] / m);
    double e = m * m / (2 * M_LN2) / z;
    if (!(e < 18446744073709549568.0)) /* the largest double below 2^64 */
        return UINT64_MAX;
    return (uint64_t)(e + 0.5);
}

/* ---- DDSketch --------------------------------------------------------------------- */

static double dds_gamma(void)
{
    return (1 + DDS_ALPHA) / (1 - DDS_ALPHA);
}

ddsketch *dds_create(void)
{
    ddsketch *d = calloc(1, sizeof *d);
    if (d) {
        d->min = INFINITY;
        d->max = -INFINITY;
    }
    return d;
}

void dds_free(ddsketch *d)
{
    if (!d)
        return;
    free(d->pos);
    free(d->neg);
    free(d);
}

/* Bucket i holds magnitudes in (gamma^(i-1), gamma^i]. */
static inline int32_t dds_index(double mag)
{
    if (!(mag <= DBL_MAX))
        mag = DBL_MAX; /* infinity: the last bucket */
    return (int32_t)ceil(log(mag) * DDS_INV_LOG_GAMMA);
}

static bool bins_add(uint64_t **bins, int32_t *off, uint32_t *n, int32_t idx, uint64_t cnt)
{
    if (*n == 0) {
        *bins = calloc(1, sizeof **bins);
        if (!*bins)
            return false;
        *off = idx;
        *n = 1;
    } else if (idx < *off || idx >= *off + (int32_t)*n) {
        int32_t lo = idx < *off ? idx : *off;
        int32_t hi = idx >= *off + (int32_t)*n ? idx : *off + (int32_t)*n - 1;
        uint32_t nn = (uint32_t)(hi - lo + 1);
        uint64_t *nb = calloc(nn, sizeof *nb);
        if (!nb)
            return false;
        memcpy(nb + (*off - lo), *bins, sizeof *nb * *n);
        free(*bins);
        *bins = nb;
        *off = lo;
        *n = nn;
    }
    (*bins)[idx - *off] += cnt;
    return true;
}

bool dds_add(ddsketch *d, double v)
{
    if (isnan(v))
        return true;
    /* Magnitudes below 1e-300 count as zero: their log buckets would be meaningless. */
    double mag = fabs(v);
    bool ok = true;
    if (mag < 1e-300)
        d->zero++;
    else if (v > 0)
        ok = bins_add(&d->pos, &d->pos_off, &d->pos_n, dds_index(mag), 1);
    else
        ok = bins_add(&d->neg, &d->neg_off, &d->neg_n, dds_index(mag), 1);
    if (!ok)
        return false;
    d->count++;
    d->min = v < d->min ? v : d->min;
    d->max = v > d->max ? v : d->max;
    return true;
}

bool dds_add_n(ddsketch *d, const double *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        double x = v[i], mag = fabs(x);
        if (mag >= 1e-300 && x > 0 && d->pos_n) {
            /* the common case: a positive value inside the bins already there */
            int32_t k = dds_index(mag) - d->pos_off;
            if (k >= 0 && k < (int32_t)d->pos_n) {
                d->pos[k]++;
                d->count++;
                d->min = x < d->min ? x : d->min;
                d->max = x > d->max ? x : d->max;
                continue;
            }
        }
        if (!dds_add(d, x))
            return false;
    }
    return true;
}

bool dds_merge(ddsketch *dst, const ddsketch *src)
{
    /* dst's bins grown once to src's range, then added in place */
    if (src->pos_n && (!bins_add(&dst->pos, &dst->pos_off, &dst->pos_n, src->pos_off, 0) ||
                       !bins_add(&dst->pos, &dst->pos_off, &dst->pos_n, src->pos_off + (int32_t)src->pos_n - 1, 0)))
        return false;
    for (uint32_t i = 0; i < src->pos_n; i++)
        dst->pos[src->pos_off + (int32_t)i - dst->pos_off] += src->pos[i];
    if (src->neg_n && (!bins_add(&dst->neg, &dst->neg_off, &dst->neg_n, src->neg_off, 0) ||
                       !bins_add(&dst->neg, &dst->neg_off, &dst->neg_n, src->neg_off + (int32_t)src->neg_n - 1, 0)))
        return false;
    for (uint32_t i = 0; i < src->neg_n; i++)
        dst->neg[src->neg_off + (int32_t)i - dst->neg_off] += src->neg[i];
    dst->zero += src->zero;
    dst->count += src->count;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
    return true;
}

static double bucket_value(int32_t idx)
{
    double g = dds_gamma();
    return 2 * pow(g, idx) / (g + 1);
}

double dds_quantile(const ddsketch *d, double q)
{
    if (d->count == 0)
        return NAN;
    if (q <= 0)
        return d->min;
    if (q >= 1)
        return d->max;
    uint64_t rank = (uint64_t)floor(q * (double)(d->count - 1));
    uint64_t seen = 0;
    double v = NAN;
    /* Negative values, most negative first: the largest magnitude bucket first. */
    for (int32_t i = (int32_t)d->neg_n - 1; i >= 0 && isnan(v); i--) {
        seen += d->neg[i];
        if (seen > rank)
            v = -bucket_value(d->neg_off + i);
    }
    if (isnan(v)) {
        seen += d->zero;
        if (seen > rank)
            v = 0;
    }
    for (uint32_t i = 0; i < d->pos_n && isnan(v); i++) {
        seen += d->pos[i];
        if (seen > rank)
            v = bucket_value(d->pos_off + (int32_t)i);
    }
    if (isnan(v))
        v = d->max;
    /* Never outside the observed range. */
    return v < d->min ? d->min : v > d->max ? d->max : v;
}

/* ---- Kept sketches --------------------------------------------------------------------
 *
 * A packed DDSketch is its non-empty buckets only: a header, then npos + nneg bucket
 * indexes (int32), then their counts (uint64), positive buckets first, in one
 * allocation. Merging it adds exactly what dds_merge of the sketch would add. */
struct dds_packed {
    uint64_t zero, count;
    double min, max;
    uint32_t npos, nneg;
    uint64_t bytes;
    /* int32_t idx[npos + nneg]; (padding to 8) uint64_t cnt[npos + nneg]; */
};

static inline int32_t *packed_idx(const dds_packed *p) { return (int32_t *)(void *)((char *)(p + 1)); }
static inline uint64_t *packed_cnt(const dds_packed *p)
{
    size_t n = (size_t)p->npos + p->nneg;
    return (uint64_t *)(void *)((char *)(p + 1) + ((n * 4 + 7) & ~(size_t)7));
}

dds_packed *dds_pack(const ddsketch *d)
{
    uint32_t np = 0, nn = 0;
    for (uint32_t i = 0; i < d->pos_n; i++)
        np += d->pos[i] != 0;
    for (uint32_t i = 0; i < d->neg_n; i++)
        nn += d->neg[i] != 0;
    size_t n = (size_t)np + nn;
    size_t bytes = sizeof(dds_packed) + ((n * 4 + 7) & ~(size_t)7) + n * 8;
    dds_packed *p = malloc(bytes);
    if (!p)
        return NULL;
    *p = (dds_packed){d->zero, d->count, d->min, d->max, np, nn, bytes};
    int32_t *idx = packed_idx(p);
    uint64_t *cnt = packed_cnt(p);
    size_t k = 0;
    for (uint32_t i = 0; i < d->pos_n; i++)
        if (d->pos[i]) {
            idx[k] = d->pos_off + (int32_t)i;
            cnt[k++] = d->pos[i];
        }
    for (uint32_t i = 0; i < d->neg_n; i++)
        if (d->neg[i]) {
            idx[k] = d->neg_off + (int32_t)i;
            cnt[k++] = d->neg[i];
        }
    return p;
}

uint64_t dds_packed_bytes(const dds_packed *p) { return p ? p->bytes : 0; }

bool dds_merge_packed(ddsketch *dst, const dds_packed *p)
{
    const int32_t *idx = packed_idx(p);
    const uint64_t *cnt = packed_cnt(p);
    /* Indexes ascend within each sign: grow dst's bins once to the first and the last,
     * then add in place (growing per index would copy the bins again and again). */
    if (p->npos && (!bins_add(&dst->pos, &dst->pos_off, &dst->pos_n, idx[0], 0) ||
                    !bins_add(&dst->pos, &dst->pos_off, &dst->pos_n, idx[p->npos - 1], 0)))
        return false;
    for (uint32_t k = 0; k < p->npos; k++)
        dst->pos[idx[k] - dst->pos_off] += cnt[k];
    uint32_t n = p->npos + p->nneg;
    if (p->nneg && (!bins_add(&dst->neg, &dst->neg_off, &dst->neg_n, idx[p->npos], 0) ||
                    !bins_add(&dst->neg, &dst->neg_off, &dst->neg_n, idx[n - 1], 0)))
        return false;
    for (uint32_t k = p->npos; k < n; k++)
        dst->neg[idx[k] - dst->neg_off] += cnt[k];
    dst->zero += p->zero;
    dst->count += p->count;
    dst->min = p->min < dst->min ? p->min : dst->min;
    dst->max = p->max > dst->max ? p->max : dst->max;
    return true;
}

void hll_shrink(hll *h)
{
    if (h->reg || h->nsp == h->capsp)
        return;
    uint32_t *sp = h->nsp ? realloc(h->sp, sizeof *sp * h->nsp) : NULL;
    if (h->nsp == 0) {
        free(h->sp);
        h->sp = NULL;
        h->capsp = 0;
    } else if (sp) {
        h->sp = sp;
        h->capsp = h->nsp;
    }
}

/* ---- Stored forms (sketch.h) ----------------------------------------------------------- */


bool hll_store(const hll *h, bytebuf *out)
{
    if (h->oom)
        return false;
    if (h->reg) {
        buf_put_u8(out, 1);
        buf_put(out, h->reg, HLL_REGISTERS);
    } else {
        buf_put_u8(out, 0);
        buf_put_u32(out, h->nsp);
        for (uint32_t i = 0; i < h->nsp; i++)
            buf_put_u32(out, h->sp[i]);
    }
    return true;
}

int hll_load(const uint8_t *p, size_t n, hll **out)
{
    *out = NULL;
    if (n < 1 || p[0] > 1)
        return STRATA_ECORRUPT;
    hll *h = hll_create();
    if (!h)
        return STRATA_ENOMEM;
    if (p[0] == 1) {
        if (n != 1 + HLL_REGISTERS)
            goto corrupt;
        for (uint32_t i = 0; i < HLL_REGISTERS; i++)
            if (p[1 + i] > 64)
                goto corrupt;
        if (!(h->reg = malloc(HLL_REGISTERS)))
            goto oom;
        memcpy(h->reg, p + 1, HLL_REGISTERS);
    } else {
        if (n < 5)
            goto corrupt;
        uint32_t k = load_u32le(p + 1);
        if (k > HLL_SPARSE_MAX || n != 5 + (size_t)k * 4)
            goto corrupt;
        if (k && !(h->sp = malloc(sizeof *h->sp * k)))
            goto oom;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t e = load_u32le(p + 5 + (size_t)i * 4), rank = e & 0xff;
            if (rank < 1 || rank > 64 || (e >> 8) >= HLL_REGISTERS || (i && (e >> 8) <= (h->sp[i - 1] >> 8)))
                goto corrupt;
            h->sp[i] = e;
        }
        h->nsp = h->capsp = k;
    }
    *out = h;
    return 0;
corrupt:
    hll_free(h);
    return STRATA_ECORRUPT;
oom:
    hll_free(h);
    return STRATA_ENOMEM;
}

void dds_packed_store(const dds_packed *p, bytebuf *out)
{
    uint64_t bits;
    buf_put_u64(out, p->zero);
    buf_put_u64(out, p->count);
    memcpy(&bits, &p->min, 8);
    buf_put_u64(out, bits);
    memcpy(&bits, &p->max, 8);
    buf_put_u64(out, bits);
    buf_put_u32(out, p->npos);
    buf_put_u32(out, p->nneg);
    uint32_t k = p->npos + p->nneg;
    const int32_t *idx = packed_idx(p);
    const uint64_t *cnt = packed_cnt(p);
    for (uint32_t i = 0; i < k; i++)
        buf_put_u32(out, (uint32_t)idx[i]);
    for (uint32_t i = 0; i < k; i++)
        buf_put_u64(out, cnt[i]);
}

int dds_packed_load(const uint8_t *b, size_t n, dds_packed **out)
{
    *out = NULL;
    if (n < 40)
        return STRATA_ECORRUPT;
    uint64_t zero = load_u64le(b), count = load_u64le(b + 8), mn = load_u64le(b + 16), mx = load_u64le(b + 24);
    uint32_t np = load_u32le(b + 32), nn = load_u32le(b + 36);
    uint64_t k = (uint64_t)np + nn;
    if (k > 2 * (uint64_t)DDS_INDEX_LIMIT + 2 || n != 40 + k * 12)
        return STRATA_ECORRUPT;
    size_t bytes = sizeof(dds_packed) + (((size_t)k * 4 + 7) & ~(size_t)7) + (size_t)k * 8;
    dds_packed *p = malloc(bytes);
    if (!p)
        return STRATA_ENOMEM;
    *p = (dds_packed){zero, count, 0, 0, np, nn, bytes};
    memcpy(&p->min, &mn, 8);
    memcpy(&p->max, &mx, 8);
    int32_t *idx = packed_idx(p);
    uint64_t *cnt = packed_cnt(p);
    uint64_t sum = zero;
    bool bad = false;
    for (uint32_t i = 0; i < k && !bad; i++) {
        idx[i] = (int32_t)load_u32le(b + 40 + (size_t)i * 4);
        cnt[i] = load_u64le(b + 40 + (size_t)k * 4 + (size_t)i * 8);
        bool first_of_sign = i == 0 || i == np;
        bad = idx[i] < -DDS_INDEX_LIMIT || idx[i] > DDS_INDEX_LIMIT || cnt[i] == 0 ||
              (!first_of_sign && idx[i] <= idx[i - 1]) || __builtin_add_overflow(sum, cnt[i], &sum);
    }
    if (bad || sum != count || (count > 0 && !(p->min <= p->max))) {
        free(p);
        return STRATA_ECORRUPT;
    }
    *out = p;
    return 0;
}
