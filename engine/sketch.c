/*
 * sketch.c — HyperLogLog and DDSketch. See sketch.h for accuracy and layout.
 */
#include "sketch.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
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

void hll_merge(hll *dst, const hll *src)
{
    dst->oom |= src->oom;
    if (src->reg) {
        if (!hll_densify(dst))
            return;
        for (uint32_t i = 0; i < HLL_REGISTERS; i++)
            if (src->reg[i] > dst->reg[i])
                dst->reg[i] = src->reg[i];
        return;
    }
    for (uint32_t i = 0; i < src->nsp; i++)
        hll_set(dst, src->sp[i] >> 8, (uint8_t)(src->sp[i] & 0xff));
}

static double inv_pow2[65]; /* 2^-r; ranks are at most 64 - HLL_P + 1 */
static pthread_once_t inv_pow2_once = PTHREAD_ONCE_INIT;

static void inv_pow2_init(void)
{
    for (int r = 0; r <= 64; r++)
        inv_pow2[r] = ldexp(1.0, -r);
}

uint64_t hll_estimate(const hll *h)
{
    const double m = HLL_REGISTERS;
    pthread_once(&inv_pow2_once, inv_pow2_init);
    double sum = 0;
    uint32_t zeros = 0;
    if (h->reg) {
        for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
            sum += inv_pow2[h->reg[i] <= 64 ? h->reg[i] : 64];
            zeros += h->reg[i] == 0;
        }
    } else {
        zeros = HLL_REGISTERS - h->nsp;
        sum = zeros; /* 2^-0 for every empty register */
        for (uint32_t i = 0; i < h->nsp; i++)
            sum += inv_pow2[h->sp[i] & 0xff];
    }
    double alpha = 0.7213 / (1 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros) /* small range: linear counting is more exact */
        e = m * log(m / zeros);
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
    for (uint32_t i = 0; i < src->pos_n; i++)
        if (src->pos[i] &&
            !bins_add(&dst->pos, &dst->pos_off, &dst->pos_n, src->pos_off + (int32_t)i, src->pos[i]))
            return false;
    for (uint32_t i = 0; i < src->neg_n; i++)
        if (src->neg[i] &&
            !bins_add(&dst->neg, &dst->neg_off, &dst->neg_n, src->neg_off + (int32_t)i, src->neg[i]))
            return false;
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
