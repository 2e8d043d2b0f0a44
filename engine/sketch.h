/*
 * sketch.h — mergeable approximate aggregate states: HyperLogLog for uniq (distinct
 * counts) and DDSketch for quantiles. Both merge exactly (merge(a, b) equals the sketch of
 * the union), which is what rollups and partial aggregation across threads rely on.
 *
 * HLL: 2^16 one-byte registers (64 KiB once dense), 64-bit hashes; relative standard error
 * 1.04/sqrt(65536) = 0.41% (2% is about 5 sigma), without a step anywhere: one estimator
 * (Ertl's improved estimator, see sketch.c) over the whole range, no switch between linear
 * counting and the raw estimate (the switch made uniq up to 3% high around 160k).
 * Measured by test_sketch's uniq_unbiased_from_1_to_10M (48 to 384 seeds per count): mean
 * error at most 0.11% and root mean square error 0.26-0.43% from 5k to 10M; below 5k it
 * behaves like linear counting (root mean square about 0.3% of n, since keys that share a
 * register are invisible to any estimator).
 * DDSketch: relative accuracy 0.5% — every quantile it returns is within 0.5% of the value
 * of some element of the right rank. Buckets are log-spaced (gamma = 1.01/0.99), kept in
 * two growable arrays (positive and negative magnitudes) plus a zero count.
 *
 * Ownership: *_create returns a heap object the caller frees with *_free.
 */
#ifndef STRATA_SKETCH_H
#define STRATA_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLL_P 16
#define HLL_REGISTERS (1u << HLL_P)

#define HLL_SPARSE_MAX 1024 /* sparse entries before going dense (4 KiB vs 64 KiB) */

/* Sparse while few registers are set (sorted entries register << 8 | rank), dense after:
 * small groups of a group-by cost 2 KiB at most, and the estimate is the same either way. */
typedef struct hll {
    uint8_t *reg;  /* HLL_REGISTERS bytes, or NULL while sparse */
    uint32_t *sp;
    uint32_t nsp, capsp;
    bool oom;      /* an allocation failed; the estimate may be low */
} hll;

hll *hll_create(void); /* NULL when out of memory */
/* Heap bytes the sketch holds, for memory limits. */
static inline uint64_t hll_bytes(const hll *h)
{
    return sizeof *h + (h->reg ? HLL_REGISTERS : (uint64_t)h->capsp * 4);
}
void hll_free(hll *h);
void hll_add_hash(hll *h, uint64_t hash);
void hll_merge(hll *dst, const hll *src);
/* The distinct count: 0 for an empty sketch; the same for a state whether it is sparse or
 * dense. Reads only; a histogram pass over the 64 KiB of registers once dense (about 40 us). */
uint64_t hll_estimate(const hll *h);
/* Hashes for values: the same value always gives the same hash. */
uint64_t sketch_hash_u64(uint64_t v);
uint64_t sketch_hash_bytes(const void *p, size_t n);

#define DDS_ALPHA 0.005
#define DDS_INV_LOG_GAMMA 99.99916666111281 /* 1 / log((1 + alpha) / (1 - alpha)) */

typedef struct ddsketch {
    uint64_t *pos, *neg; /* counts by bucket index - offset */
    int32_t pos_off, neg_off;
    uint32_t pos_n, neg_n;
    uint64_t zero, count;
    double min, max;
} ddsketch;

ddsketch *dds_create(void);
static inline uint64_t dds_bytes(const ddsketch *d)
{
    return sizeof *d + ((uint64_t)d->pos_n + d->neg_n) * 8;
}
void dds_free(ddsketch *d);
/* Adds a value (NaN is ignored). Returns false when out of memory. */
bool dds_add(ddsketch *d, double v);
/* Adds v[0..n): the same sketch as n dds_add calls, faster. False when out of memory. */
bool dds_add_n(ddsketch *d, const double *v, uint32_t n);
bool dds_merge(ddsketch *dst, const ddsketch *src);
/* The q-quantile (0 <= q <= 1) by the "lower" rank rule: the element of rank
 * floor(q * (count - 1)). NaN when empty. */
double dds_quantile(const ddsketch *d, double q);

/* Kept forms, for sketches that stay long and change no more (rollup buckets):
 * hll_shrink gives a sparse HLL's unused room back; dds_pack makes a DDSketch's packed
 * form, its non-empty buckets only (NULL when out of memory; the caller frees it with
 * free), and dds_merge_packed adds it to dst exactly as dds_merge would the sketch. */
void hll_shrink(hll *h);
typedef struct dds_packed dds_packed;
dds_packed *dds_pack(const ddsketch *d);
uint64_t dds_packed_bytes(const dds_packed *p);
bool dds_merge_packed(ddsketch *dst, const dds_packed *p);

/* ---- stored forms (rollup tier segments, engine/rollup_store.h) --------------------
 *
 * All integers little-endian, doubles as their IEEE-754 bits.
 * HLL: u8 form, then
 *   form 0 (sparse): u32 n (<= HLL_SPARSE_MAX), n x u32 entries register << 8 | rank,
 *                    registers strictly ascending, rank 1..64;
 *   form 1 (dense):  HLL_REGISTERS bytes, register i's rank (0..64).
 * Packed DDSketch: u64 zero, u64 count, f64 min, f64 max, u32 npos, u32 nneg, then
 *   npos + nneg x i32 bucket index (positive buckets first; ascending within each sign;
 *   |index| <= DDS_INDEX_LIMIT), then npos + nneg x u64 bucket count (each > 0).
 *   zero + the counts = count.
 * A stored form loads back to a sketch that estimates, merges and stores exactly as the
 * one stored. hll_store / dds_packed_store append to out (out->oom on failure); the
 * loaders return 0 with a new object the caller frees (hll_free; free for the packed
 * sketch), STRATA_ECORRUPT when the bytes break a rule above, or STRATA_ENOMEM. A sketch
 * whose allocation once failed (hll.oom) cannot be stored: hll_store refuses it (false). */
#define DDS_INDEX_LIMIT 72000 /* |log(DBL_MAX)| and |log(1e-300)| times DDS_INV_LOG_GAMMA, rounded up */
struct bytebuf;
bool hll_store(const hll *h, struct bytebuf *out);
int hll_load(const uint8_t *p, size_t n, hll **out /* OUT */);
void dds_packed_store(const dds_packed *p, struct bytebuf *out);
int dds_packed_load(const uint8_t *p, size_t n, dds_packed **out /* OUT */);

#endif
