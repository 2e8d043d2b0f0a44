/*
 * test_sketch.c — HyperLogLog and DDSketch accuracy and merging: uniq within 2% on 1M
 * distinct values (the query API's promise), sparse and dense HLL estimates equal, merge
 * equals the sketch of the union; DDSketch quantiles within 0.5% of the exact rank value
 * on skewed, negative and mixed data.
 */
#include <math.h>
#include <string.h>

#include "sketch.h"
#include "test.h"

TEST(hll_one_million_distinct_within_two_percent)
{
    for (uint64_t trial = 0; trial < 3; trial++) {
        hll *h = hll_create();
        const uint64_t n = 1000000;
        for (uint64_t i = 0; i < n; i++)
            hll_add_hash(h, sketch_hash_u64(i * 7919 + trial * 1000003));
        for (uint64_t i = 0; i < n; i += 3) /* repeats change nothing */
            hll_add_hash(h, sketch_hash_u64(i * 7919 + trial * 1000003));
        double err = fabs((double)hll_estimate(h) - (double)n) / (double)n;
        if (err > 0.02)
            TEST_FAIL_("trial %llu: estimate %llu for %llu distinct", (unsigned long long)trial,
                       (unsigned long long)hll_estimate(h), (unsigned long long)n);
        hll_free(h);
    }
}

TEST(hll_small_counts_sparse_dense_and_merge)
{
    for (uint64_t n = 0; n < 3000; n += n < 20 ? 1 : 97) {
        hll *a = hll_create(), *b = hll_create(), *u = hll_create();
        for (uint64_t i = 0; i < n; i++) {
            uint64_t h = sketch_hash_u64(i);
            hll_add_hash(i % 2 ? a : b, h);
            hll_add_hash(u, h);
        }
        double err = fabs((double)hll_estimate(u) - (double)n);
        if (err > 0.02 * (double)n + 1)
            TEST_FAIL_("n=%llu: estimate %llu", (unsigned long long)n, (unsigned long long)hll_estimate(u));
        hll_merge(a, b);
        ASSERT_U64_EQ(hll_estimate(a), hll_estimate(u));
        /* the same registers dense give the same estimate */
        hll *d = hll_create();
        for (int i = 0; i < 4 * HLL_SPARSE_MAX; i++)
            hll_add_hash(d, sketch_hash_u64(UINT64_C(1) << 40 | (uint64_t)i));
        ASSERT(d->reg != NULL);
        hll *s = hll_create();
        hll_merge(d, u);
        hll_merge(s, u);
        for (int i = 0; i < 4 * HLL_SPARSE_MAX; i++)
            hll_add_hash(s, sketch_hash_u64(UINT64_C(1) << 40 | (uint64_t)i));
        ASSERT_U64_EQ(hll_estimate(d), hll_estimate(s));
        hll_free(a);
        hll_free(b);
        hll_free(u);
        hll_free(d);
        hll_free(s);
    }
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

TEST(ddsketch_quantiles_within_half_percent)
{
    enum { N = 200000 };
    static double v[N];
    uint64_t seed = 7;
    for (int kind = 0; kind < 3; kind++) {
        ddsketch *a = dds_create(), *b = dds_create();
        for (int i = 0; i < N; i++) {
            double u1 = ((double)(test_rand_next(&seed) >> 11) + 0.5) / 9007199254740992.0;
            double u2 = ((double)(test_rand_next(&seed) >> 11) + 0.5) / 9007199254740992.0;
            double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            v[i] = kind == 0 ? round(exp(3.55 + z) * 100) / 100 /* lognormal amounts */
                 : kind == 1 ? -exp(2 + 2 * z)                    /* negative, wide */
                             : (i % 10 == 0 ? 0 : z * 1000);      /* mixed with zeros */
            ASSERT(dds_add(i % 2 ? a : b, v[i]));
        }
        ASSERT(dds_merge(a, b));
        qsort(v, N, sizeof v[0], cmp_dbl);
        for (double q = 0; q <= 1.0; q += 0.01) {
            double want = v[(int)floor(q * (N - 1))];
            double got = dds_quantile(a, q);
            if (fabs(got - want) > 0.005 * fabs(want) + 1e-12)
                TEST_FAIL_("kind %d q %.2f: %.17g vs %.17g", kind, q, got, want);
        }
        ASSERT_DBL_EQ(dds_quantile(a, 0), v[0]);
        ASSERT_DBL_EQ(dds_quantile(a, 1), v[N - 1]);
        dds_free(a);
        dds_free(b);
    }
    ddsketch *e = dds_create();
    ASSERT(isnan(dds_quantile(e, 0.5)));
    ASSERT(dds_add(e, NAN)); /* ignored */
    ASSERT(isnan(dds_quantile(e, 0.5)));
    dds_free(e);
}

/* dds_add_n builds the very sketch dds_add does, for every kind of value. */
TEST(ddsketch_add_n_same_as_add)
{
    ASSERT(fabs(DDS_INV_LOG_GAMMA * log((1 + DDS_ALPHA) / (1 - DDS_ALPHA)) - 1) < 1e-15);
    uint64_t seed = 99;
    double v[5000];
    for (int i = 0; i < 5000; i++) {
        uint64_t r = test_rand_next(&seed);
        switch (r % 8) {
        case 0: v[i] = 0; break;
        case 1: v[i] = -(double)(r >> 20) / 100; break;
        case 2: v[i] = NAN; break;
        case 3: v[i] = (r & 256) ? INFINITY : 1e-310; break;
        default: v[i] = (double)(r >> 40) / 100 + 0.01; break;
        }
    }
    ddsketch *a = dds_create(), *b = dds_create();
    for (int i = 0; i < 5000; i++)
        ASSERT(dds_add(a, v[i]));
    ASSERT(dds_add_n(b, v, 1000));
    ASSERT(dds_add_n(b, v + 1000, 4000));
    ASSERT_EQ(a->count, b->count);
    ASSERT_EQ(a->zero, b->zero);
    ASSERT(a->min == b->min && a->max == b->max);
    ASSERT_EQ(a->pos_n, b->pos_n);
    ASSERT_EQ(a->neg_n, b->neg_n);
    ASSERT(memcmp(a->pos, b->pos, a->pos_n * 8) == 0 && memcmp(a->neg, b->neg, a->neg_n * 8) == 0);
    dds_free(a);
    dds_free(b);
}

TEST_LIST(T(ddsketch_add_n_same_as_add), T(hll_one_million_distinct_within_two_percent), T(hll_small_counts_sparse_dense_and_merge),
          T(ddsketch_quantiles_within_half_percent))
