/*
 * test_encode.c — round trips and malformed-input checks of the block encodings in
 * engine/encode.c (layout in encode.h).
 *
 * Every round trip encodes into a bytebuf, copies the block into a heap buffer of exactly
 * len + ENCODE_PAD bytes whose pad is filled with 0xA5 garbage (so a decoder that uses pad
 * bytes in its output shows up as a mismatch, and one that reads further shows up under
 * ASan), decodes into an array of exactly n values and compares bit for bit. The data
 * sets cover every encoding, every packing width 0..64, both `aligned` settings, signed
 * and unsigned ranges, and the float corner cases (-0.0, NaN payloads, infinities,
 * denormals, huge values, inexact decimals). Malformed blocks (every truncation, bad width
 * and scale bytes, random bytes) must give STRATA_ECORRUPT or 0 and never crash.
 *
 * Width bytes: bits 0..6 hold the width (0..64); bit 7 (0x80) marks byte planes, which
 * aligned (zstd-bound) blocks use for whole-byte widths 16..56 (engine/encode.c). The
 * tests pin that layout too, since encode.h does not describe it yet.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/encode.h"
#include "engine/error.h"
#include "test.h"

#define PAD_BYTE 0xA5

/* A heap copy of p[0..len) followed by ENCODE_PAD garbage bytes; caller frees. */
static uint8_t *padded_copy(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len + ENCODE_PAD);
    if (!q)
        abort();
    if (len)
        memcpy(q, p, len);
    memset(q + len, PAD_BYTE, ENCODE_PAD);
    return q;
}

/* Every strict prefix of a valid block must be refused (block lengths are exact). */
static void check_int_truncations(const uint8_t *blk, size_t len, uint32_t n)
{
    uint64_t *out = malloc(sizeof *out * n);
    for (size_t l = 0; l < len; l++) {
        uint8_t *q = padded_copy(blk, l);
        int rc = decode_ints(q, l, out, n);
        free(q);
        if (rc != STRATA_ECORRUPT) {
            free(out);
            TEST_FAIL_("int block of %zu bytes cut to %zu decoded with rc %d", len, l, rc);
        }
    }
    free(out);
}

static void check_float_truncations(const uint8_t *blk, size_t len, uint32_t n)
{
    double *out = malloc(sizeof *out * n);
    uint64_t *scratch = malloc(sizeof *scratch * n);
    for (size_t l = 0; l < len; l++) {
        uint8_t *q = padded_copy(blk, l);
        int rc = decode_floats(q, l, out, n, scratch);
        free(q);
        if (rc != STRATA_ECORRUPT) {
            free(out);
            free(scratch);
            TEST_FAIL_("float block of %zu bytes cut to %zu decoded with rc %d", len, l, rc);
        }
    }
    free(out);
    free(scratch);
}

/* Encodes v, decodes it back and compares; returns the encoding id. With truncate, also
 * checks every truncation (slow for big blocks: callers pick when). */
static int roundtrip_ints_ex(const uint64_t *v, uint32_t n, bool is_signed, bool aligned,
                             bool truncate, size_t *len_out)
{
    bytebuf b = {0};
    encode_ints(&b, v, n, is_signed, aligned);
    ASSERT(!b.oom);
    ASSERT_GE(b.len, 9);
    uint8_t *q = padded_copy(b.data, b.len);
    size_t len = b.len;
    buf_free(&b);
    uint64_t *out = malloc(sizeof *out * n);
    int rc = decode_ints(q, len, out, n);
    int enc = q[0];
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (out[i] != v[i]) {
            uint64_t got = out[i], want = v[i];
            free(out);
            free(q);
            TEST_FAIL_("%s block (n=%u signed=%d aligned=%d) value %u: got %016" PRIx64
                       " want %016" PRIx64,
                       encoding_name((uint8_t)enc), n, is_signed, aligned, i, got, want);
        }
    }
    free(out);
    if (rc == 0 && truncate)
        check_int_truncations(q, len, n);
    free(q);
    ASSERT_EQ(rc, 0);
    if (len_out)
        *len_out = len;
    return enc;
}

static int roundtrip_ints(const uint64_t *v, uint32_t n, bool is_signed, bool aligned)
{
    return roundtrip_ints_ex(v, n, is_signed, aligned, n <= 64, NULL);
}

/* Round trip under all four (is_signed, aligned) settings; returns the unaligned,
 * unsigned-flag-as-given encodings through enc[2][2] when non-NULL. */
static void roundtrip_ints_all(const uint64_t *v, uint32_t n, int enc[2][2])
{
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < 2; a++) {
            int e = roundtrip_ints(v, n, s, a);
            if (enc)
                enc[s][a] = e;
        }
}

static int roundtrip_floats_ex(const double *v, uint32_t n, bool aligned, bool truncate,
                               uint8_t *scale_out)
{
    bytebuf b = {0};
    uint64_t *scratch = malloc(sizeof *scratch * n);
    encode_floats(&b, v, n, aligned, scratch);
    ASSERT(!b.oom);
    uint8_t *q = padded_copy(b.data, b.len);
    size_t len = b.len;
    buf_free(&b);
    double *out = malloc(sizeof *out * n);
    int rc = decode_floats(q, len, out, n, scratch);
    int enc = q[0];
    if (scale_out)
        *scale_out = len > 1 ? q[1] : 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (memcmp(&out[i], &v[i], 8) != 0) {
            double got = out[i], want = v[i];
            free(out);
            free(q);
            free(scratch);
            TEST_FAIL_("%s block (n=%u aligned=%d) value %u: got %.17g want %.17g",
                       encoding_name((uint8_t)enc), n, aligned, i, got, want);
        }
    }
    free(out);
    free(scratch);
    if (rc == 0 && truncate)
        check_float_truncations(q, len, n);
    free(q);
    ASSERT_EQ(rc, 0);
    return enc;
}

static int roundtrip_floats(const double *v, uint32_t n, bool aligned)
{
    return roundtrip_floats_ex(v, n, aligned, n <= 64, NULL);
}

/* Round trip both aligned settings; both must choose the same encoding (alignment only
 * changes integer widths). */
static int roundtrip_floats_both(const double *v, uint32_t n)
{
    int e0 = roundtrip_floats(v, n, false);
    int e1 = roundtrip_floats(v, n, true);
    ASSERT_EQ(e0, e1);
    return e0;
}

#define WIDTH_PLANES 0x80

/* The width byte the encoder writes for packing width w (before rounding). */
static unsigned expected_width_byte(unsigned w, bool aligned)
{
    unsigned rw = aligned && w <= 56 ? (w + 7) / 8 * 8 : w;
    return aligned && rw >= 16 && rw <= 56 ? rw | WIDTH_PLANES : rw;
}

/* True when the decoders accept width byte wb. */
static bool width_byte_valid(unsigned wb)
{
    unsigned w = wb & ~WIDTH_PLANES;
    if (wb & WIDTH_PLANES)
        return w >= 16 && w <= 56 && w % 8 == 0;
    return w <= 64;
}

static const uint32_t sizes[] = {1, 2, 3, 8, 100, 8192};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- integers ------------------------------------------------------------------ */

TEST(encoding_names)
{
    ASSERT_STR_EQ(encoding_name(ENC_INT_CONST), "const");
    ASSERT_STR_EQ(encoding_name(ENC_INT_FOR), "for");
    ASSERT_STR_EQ(encoding_name(ENC_INT_DELTA), "delta");
    ASSERT_STR_EQ(encoding_name(ENC_INT_DOD), "delta-of-delta");
    ASSERT_STR_EQ(encoding_name(ENC_FLOAT_CONST), "float-const");
    ASSERT_STR_EQ(encoding_name(ENC_FLOAT_DECIMAL), "decimal");
    ASSERT_STR_EQ(encoding_name(ENC_FLOAT_SHUFFLE), "byte-shuffle");
    ASSERT_STR_EQ(encoding_name(0), "unknown");
    ASSERT_STR_EQ(encoding_name(5), "unknown");
    ASSERT_STR_EQ(encoding_name(255), "unknown");
}

TEST(bits_needed_edges)
{
    ASSERT_EQ(bits_needed(0), 0);
    ASSERT_EQ(bits_needed(1), 1);
    ASSERT_EQ(bits_needed(2), 2);
    ASSERT_EQ(bits_needed(255), 8);
    ASSERT_EQ(bits_needed(256), 9);
    ASSERT_EQ(bits_needed(UINT64_MAX), 64);
    ASSERT_EQ(bits_needed(UINT64_C(1) << 63), 64);
}

/* The documented byte layout, pinned: FOR of {10, 13, 11, 12} packs 0,3,1,2 in 2 bits. */
TEST(int_for_golden_bytes)
{
    const uint64_t v[] = {10, 13, 11, 12};
    bytebuf b = {0};
    encode_ints(&b, v, 4, false, false);
    const uint8_t want[] = {ENC_INT_FOR, 10, 0, 0, 0, 0, 0, 0, 0, 2, 0x9C};
    ASSERT_EQ(b.len, sizeof want);
    ASSERT_EQ(memcmp(b.data, want, sizeof want), 0);
    buf_free(&b);
    /* aligned: width rounded to 8, one byte per value */
    encode_ints(&b, v, 4, false, true);
    const uint8_t want_al[] = {ENC_INT_FOR, 10, 0, 0, 0, 0, 0, 0, 0, 8, 0, 3, 1, 2};
    ASSERT_EQ(b.len, sizeof want_al);
    ASSERT_EQ(memcmp(b.data, want_al, sizeof want_al), 0);
    buf_free(&b);
}

/* Aligned blocks of whole-byte widths 16..56 store byte planes: all low bytes of
 * v[i] - base, then all second bytes, and so on; the width byte carries 0x80. */
TEST(int_for_planes_layout)
{
    uint64_t seed = 8;
    for (unsigned k = 2; k <= 7; k++) {
        const uint32_t n = 200;
        uint64_t v[200];
        uint64_t mask = (UINT64_C(1) << (8 * k)) - 1;
        for (uint32_t i = 0; i < n; i++)
            v[i] = 5000 + (test_rand_next(&seed) & mask);
        v[0] = 5000;
        v[1] = 5000 + mask;
        bytebuf b = {0};
        encode_ints(&b, v, n, false, true);
        ASSERT_EQ(b.data[0], ENC_INT_FOR);
        ASSERT_EQ(b.data[9], (8 * k) | WIDTH_PLANES);
        ASSERT_EQ(b.len, 10 + (size_t)n * k);
        for (unsigned j = 0; j < k; j++)
            for (uint32_t i = 0; i < n; i++)
                ASSERT_EQ(b.data[10 + (size_t)j * n + i], (uint8_t)((v[i] - 5000) >> (8 * j)));
        buf_free(&b);
        roundtrip_ints(v, n, false, true);
        /* the same values unaligned: tight bits, no plane flag */
        encode_ints(&b, v, n, false, false);
        ASSERT_EQ(b.data[9], 8 * k);
        buf_free(&b);
    }
}

TEST(int_const_golden_bytes)
{
    const uint64_t v[] = {UINT64_C(0x0102030405060708), UINT64_C(0x0102030405060708)};
    bytebuf b = {0};
    encode_ints(&b, v, 2, true, false);
    const uint8_t want[] = {ENC_INT_CONST, 8, 7, 6, 5, 4, 3, 2, 1};
    ASSERT_EQ(b.len, sizeof want);
    ASSERT_EQ(memcmp(b.data, want, sizeof want), 0);
    buf_free(&b);
}

TEST(int_all_equal_is_const)
{
    const uint64_t vals[] = {0, 1, UINT64_MAX, (uint64_t)INT64_MIN, (uint64_t)INT64_MAX, 42};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        for (size_t si = 0; si < NSIZES; si++) {
            uint32_t n = sizes[si];
            uint64_t *v = malloc(sizeof *v * n);
            for (uint32_t i = 0; i < n; i++)
                v[i] = vals[k];
            int enc[2][2];
            roundtrip_ints_all(v, n, enc);
            free(v);
            for (int s = 0; s < 2; s++)
                for (int a = 0; a < 2; a++)
                    ASSERT_EQ(enc[s][a], ENC_INT_CONST);
        }
}

/* Random values spanning exactly w bits above a base: FOR at width w (rounded up to whole
 * bytes when aligned) is the smallest encoding, for every w in 1..64. */
TEST(int_every_width_for)
{
    uint64_t seed = 0x1234567;
    const uint32_t n = 1000;
    uint64_t *v = malloc(sizeof *v * n);
    for (unsigned w = 0; w <= 64; w++) {
        uint64_t mask = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;
        for (int s = 0; s < 2; s++) {
            uint64_t r = test_rand_next(&seed);
            /* off in [0, 2^64 - mask): base + mask does not pass the top of the order */
            uint64_t off = mask == 0 ? r : mask == UINT64_MAX ? 0 : r % (UINT64_MAX - mask + 1);
            /* in signed order, INT64_MIN + off is monotone in off */
            uint64_t base = s ? (UINT64_C(1) << 63) + off : off;
            v[0] = base;
            v[1] = base + mask;
            for (uint32_t i = 2; i < n; i++)
                v[i] = base + (test_rand_next(&seed) & mask);
            for (int a = 0; a < 2; a++) {
                bytebuf b = {0};
                encode_ints(&b, v, n, s, a);
                if (w == 0) {
                    ASSERT_EQ(b.data[0], ENC_INT_CONST);
                } else {
                    unsigned want_wb = expected_width_byte(w, a);
                    unsigned want_w = want_wb & ~WIDTH_PLANES;
                    ASSERT_EQ(b.data[0], ENC_INT_FOR);
                    ASSERT_EQ(b.data[9], want_wb);
                    ASSERT_EQ(b.len, 10 + ((size_t)n * want_w + 7) / 8);
                    uint64_t got_base;
                    memcpy(&got_base, b.data + 1, 8);
                    ASSERT_U64_EQ(got_base, base);
                }
                buf_free(&b);
                roundtrip_ints(v, n, s, a);
                /* small sizes at this width too, with truncations */
                for (uint32_t m = 2; m <= 9; m++)
                    roundtrip_ints(v, m, s, a);
            }
        }
    }
    free(v);
}

/* Deltas that span exactly w bits (random walk): round trip at every width, and for
 * every delta width check the whole block's truncations on a short run. */
TEST(int_every_width_delta)
{
    uint64_t seed = 99;
    const uint32_t n = 777;
    uint64_t *v = malloc(sizeof *v * n);
    for (unsigned w = 0; w <= 64; w++) {
        uint64_t mask = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;
        for (int s = 0; s < 2; s++) {
            v[0] = test_rand_next(&seed);
            for (uint32_t i = 1; i < n; i++)
                v[i] = v[i - 1] + (test_rand_next(&seed) & mask) - mask / 2;
            for (int a = 0; a < 2; a++) {
                roundtrip_ints(v, n, s, a);
                roundtrip_ints(v, 17, s, a);
            }
        }
    }
    free(v);
}

TEST(int_sorted_constant_step_is_delta)
{
    const uint32_t n = 8192;
    uint64_t *v = malloc(sizeof *v * n);
    for (uint32_t i = 0; i < n; i++)
        v[i] = (uint64_t)(INT64_C(1700000000000) + (int64_t)i * 1000);
    int enc[2][2];
    roundtrip_ints_all(v, n, enc);
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < 2; a++)
            ASSERT_EQ(enc[s][a], ENC_INT_DELTA);
    /* constant step: delta width 0, the block is just its 18-byte header */
    size_t len;
    roundtrip_ints_ex(v, n, true, false, true, &len);
    ASSERT_EQ(len, 18);
    /* reverse sorted, constant negative step */
    for (uint32_t i = 0; i < n; i++)
        v[i] = (uint64_t)(INT64_C(5000000) - (int64_t)i * 7);
    roundtrip_ints_all(v, n, enc);
    ASSERT_EQ(enc[1][0], ENC_INT_DELTA);
    free(v);
}

TEST(int_quadratic_is_delta_of_delta)
{
    const uint32_t n = 8192;
    uint64_t *v = malloc(sizeof *v * n);
    for (uint32_t i = 0; i < n; i++)
        v[i] = (uint64_t)i * i * 3 + 11;
    int enc[2][2];
    roundtrip_ints_all(v, n, enc);
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < 2; a++)
            ASSERT_EQ(enc[s][a], ENC_INT_DOD);
    size_t len;
    roundtrip_ints_ex(v, n, false, false, false, &len);
    ASSERT_EQ(len, 26);
    free(v);
}

/* Fills v[0..n) with one of the named patterns. */
enum { P_EQUAL, P_DISTINCT, P_SORTED, P_REVERSE, P_EXTREMES, P_ALT_SIGNED, P_ALT_UNSIGNED,
       P_SMALL, P_TIMESTAMPS_JITTER, P_WRAPPING, P_STEPS, P_COUNT };

static void fill_pattern(int p, uint64_t *v, uint32_t n, uint64_t *seed)
{
    static const uint64_t ext[] = {(uint64_t)INT64_MIN, (uint64_t)INT64_MAX, 0, UINT64_MAX, 1,
                                   (uint64_t)INT64_MIN + 1, (uint64_t)INT64_MAX - 1};
    for (uint32_t i = 0; i < n; i++) {
        uint64_t r = test_rand_next(seed);
        switch (p) {
        case P_EQUAL: v[i] = 77; break;
        case P_DISTINCT: v[i] = r; break;
        case P_SORTED: v[i] = i ? v[i - 1] + (r & 0xffff) : r >> 2; break;
        case P_REVERSE: v[i] = i ? v[i - 1] - (r & 0xffff) : r; break;
        case P_EXTREMES: v[i] = ext[r % (sizeof ext / sizeof ext[0])]; break;
        case P_ALT_SIGNED: v[i] = i % 2 ? (uint64_t)INT64_MAX : (uint64_t)INT64_MIN; break;
        case P_ALT_UNSIGNED: v[i] = i % 2 ? UINT64_MAX : 0; break;
        case P_SMALL: v[i] = (uint64_t)((int64_t)(r % 201) - 100); break;
        case P_TIMESTAMPS_JITTER:
            v[i] = (uint64_t)(INT64_C(1700000000000) + (int64_t)i * 1000 + (int64_t)(r % 7));
            break;
        case P_WRAPPING: v[i] = UINT64_MAX - 5 + i; break; /* wraps past 2^64 */
        case P_STEPS: v[i] = (uint64_t)i / 3 * (UINT64_C(1) << 40); break;
        }
    }
}

TEST(int_patterns_all_sizes)
{
    uint64_t seed = 42;
    for (int p = 0; p < P_COUNT; p++)
        for (size_t si = 0; si < NSIZES; si++) {
            uint32_t n = sizes[si];
            uint64_t *v = malloc(sizeof *v * n);
            fill_pattern(p, v, n, &seed);
            roundtrip_ints_all(v, n, NULL);
            free(v);
        }
}

TEST(int_extremes_single_values)
{
    const uint64_t vals[] = {0, 1, UINT64_MAX, (uint64_t)INT64_MIN, (uint64_t)INT64_MAX};
    size_t k = sizeof vals / sizeof vals[0];
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++)
            for (size_t c = 0; c < k; c++) {
                uint64_t v[3] = {vals[a], vals[b], vals[c]};
                for (uint32_t n = 1; n <= 3; n++)
                    roundtrip_ints_all(v, n, NULL);
            }
}

/* Random small blocks of random shapes, each with its truncations checked. */
TEST(int_random_small_blocks)
{
    uint64_t seed = 7;
    for (int iter = 0; iter < 3000; iter++) {
        uint32_t n = 1 + (uint32_t)(test_rand_next(&seed) % 40);
        unsigned w = (unsigned)(test_rand_next(&seed) % 65);
        uint64_t mask = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;
        uint64_t v[40];
        int mode = (int)(test_rand_next(&seed) % 3);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = test_rand_next(&seed) & mask;
            v[i] = mode == 0 ? r : mode == 1 ? (i ? v[i - 1] + r : r) : (uint64_t)i * i * r;
        }
        roundtrip_ints(v, n, iter & 1, iter & 2);
    }
}

/* ---- floats -------------------------------------------------------------------- */

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

TEST(float_all_equal_is_const)
{
    const double vals[] = {0.0, -0.0, 1.5, NAN, INFINITY, -INFINITY, 5e-324, 1e300, 0.1};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        for (size_t si = 0; si < NSIZES; si++) {
            uint32_t n = sizes[si];
            double *v = malloc(sizeof *v * n);
            for (uint32_t i = 0; i < n; i++)
                v[i] = vals[k];
            int e = roundtrip_floats_both(v, n);
            free(v);
            ASSERT_EQ(e, ENC_FLOAT_CONST);
        }
}

TEST(float_const_golden_bytes)
{
    const double v[] = {1.0, 1.0, 1.0};
    bytebuf b = {0};
    uint64_t scratch[3];
    encode_floats(&b, v, 3, false, scratch);
    const uint8_t want[] = {ENC_FLOAT_CONST, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F};
    ASSERT_EQ(b.len, sizeof want);
    ASSERT_EQ(memcmp(b.data, want, sizeof want), 0);
    buf_free(&b);
}

/* Prices with two decimals use the decimal encoding with scale 2. */
TEST(float_prices_are_decimal_scale_2)
{
    uint64_t seed = 5;
    for (size_t si = 1; si < NSIZES; si++) {
        uint32_t n = sizes[si];
        double *v = malloc(sizeof *v * n);
        for (uint32_t i = 0; i < n; i++) {
            int64_t cents = (int64_t)(test_rand_next(&seed) % 1000000) - 1000;
            if (i == 0)
                cents = 1999; /* 19.99 needs both places */
            v[i] = (double)cents / 100.0;
        }
        uint8_t scale;
        int e = roundtrip_floats_ex(v, n, false, n <= 64, &scale);
        ASSERT_EQ(e, ENC_FLOAT_DECIMAL);
        ASSERT_EQ(scale, 2);
        e = roundtrip_floats_ex(v, n, true, n <= 64, &scale);
        ASSERT_EQ(e, ENC_FLOAT_DECIMAL);
        ASSERT_EQ(scale, 2);
        free(v);
    }
}

/* Decimals with exactly k places (k = 0..9) use scale k. */
TEST(float_decimals_every_scale)
{
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    uint64_t seed = 77;
    for (unsigned k = 0; k <= 9; k++)
        for (size_t si = 1; si < NSIZES; si++) {
            uint32_t n = sizes[si];
            double *v = malloc(sizeof *v * n);
            for (uint32_t i = 0; i < n; i++) {
                int64_t m = (int64_t)(test_rand_next(&seed) % 2000001) - 1000000;
                if (i == 0)
                    m = 123457; /* not a multiple of 10: needs all k places */
                v[i] = (double)m / p10[k];
            }
            uint8_t scale;
            for (int a = 0; a < 2; a++) {
                int e = roundtrip_floats_ex(v, n, a, n <= 64, &scale);
                ASSERT_EQ(e, ENC_FLOAT_DECIMAL);
                ASSERT_EQ(scale, k);
            }
            free(v);
        }
}

/* Random bit patterns (including NaNs with payloads) are not decimals: byte shuffle. */
TEST(float_random_doubles_are_shuffle)
{
    uint64_t seed = 31337;
    for (size_t si = 1; si < NSIZES; si++) {
        uint32_t n = sizes[si];
        double *v = malloc(sizeof *v * n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = bits_to_double(test_rand_next(&seed));
        int e = roundtrip_floats_both(v, n);
        ASSERT_EQ(e, ENC_FLOAT_SHUFFLE);
        /* and random doubles in a normal range */
        for (uint32_t i = 0; i < n; i++)
            v[i] = (double)(test_rand_next(&seed) >> 11) / 9007199254740992.0 * 1000.0;
        e = roundtrip_floats_both(v, n);
        ASSERT_EQ(e, ENC_FLOAT_SHUFFLE);
        free(v);
    }
}

/* Values that are not exact decimals at any scale <= 9 force the byte shuffle, even
 * when mixed with exact ones; special values too. */
TEST(float_special_values_force_shuffle)
{
    const double specials[] = {
        -0.0, NAN, -NAN, INFINITY, -INFINITY, 5e-324, -5e-324, DBL_MIN / 2, DBL_MIN,
        1e300, -1e300, DBL_MAX, 0.1 + 0.2, 1.0 / 3.0, 1e-10, 9007199254740993.0,
        bits_to_double(UINT64_C(0x7ff0000000000001)), /* signalling NaN payload */
        bits_to_double(UINT64_C(0xfff8dead0000beef)), /* negative NaN with payload */
    };
    size_t k = sizeof specials / sizeof specials[0];
    for (size_t i = 0; i < k; i++) {
        for (uint32_t n = 2; n <= 8; n++) {
            double v[8];
            for (uint32_t j = 0; j < n; j++)
                v[j] = (double)j * 0.25; /* exact decimals */
            v[n / 2] = specials[i];
            int e = roundtrip_floats_both(v, n);
            ASSERT_EQ(e, ENC_FLOAT_SHUFFLE);
        }
    }
}

TEST(float_mixtures_round_trip)
{
    uint64_t seed = 2024;
    const double specials[] = {-0.0, 0.0, NAN, INFINITY, -INFINITY, 5e-324, 1e300, -1e300,
                               0.1, 0.30000000000000004, 12.34, -7.0, 1e-9, 123456789.123456789};
    size_t k = sizeof specials / sizeof specials[0];
    for (size_t si = 0; si < NSIZES; si++) {
        uint32_t n = sizes[si];
        double *v = malloc(sizeof *v * n);
        for (int mode = 0; mode < 4; mode++) {
            for (uint32_t i = 0; i < n; i++) {
                uint64_t r = test_rand_next(&seed);
                switch (mode) {
                case 0: v[i] = specials[r % k]; break;
                case 1: v[i] = (double)(int64_t)(r % 100000) / 1000.0; break;
                case 2: v[i] = r % 50 ? (double)(int64_t)(r % 1000) / 10.0 : specials[r % k]; break;
                default: v[i] = (double)i; break;
                }
            }
            roundtrip_floats_both(v, n);
        }
        free(v);
    }
}

/* Huge integral doubles (>= 2^53) do not fit the decimal form. */
TEST(float_large_integers)
{
    double v[4] = {9007199254740992.0, 1.0, 2.0, 3.0};
    ASSERT_EQ(roundtrip_floats_both(v, 4), ENC_FLOAT_SHUFFLE);
    v[0] = 9007199254740991.0; /* 2^53 - 1 fits */
    ASSERT_EQ(roundtrip_floats_both(v, 4), ENC_FLOAT_DECIMAL);
    v[0] = -9007199254740991.0;
    ASSERT_EQ(roundtrip_floats_both(v, 4), ENC_FLOAT_DECIMAL);
}

/* ---- malformed input ------------------------------------------------------------ */

static int decode_ints_padded(const uint8_t *p, size_t len, uint32_t n)
{
    uint8_t *q = padded_copy(p, len);
    uint64_t *out = malloc(sizeof *out * (n ? n : 1));
    int rc = decode_ints(q, len, out, n);
    free(out);
    free(q);
    return rc;
}

static int decode_floats_padded(const uint8_t *p, size_t len, uint32_t n)
{
    uint8_t *q = padded_copy(p, len);
    double *out = malloc(sizeof *out * (n ? n : 1));
    uint64_t *scratch = malloc(sizeof *scratch * (n ? n : 1));
    int rc = decode_floats(q, len, out, n, scratch);
    free(scratch);
    free(out);
    free(q);
    return rc;
}

/* Width bytes outside 0..64, and plane widths other than 16..56 in steps of 8, are
 * refused whatever the payload length. */
TEST(int_invalid_width_bytes_are_corrupt)
{
    int invalid = 0;
    for (unsigned w = 0; w <= 255; w++) {
        if (width_byte_valid(w))
            continue;
        invalid++;
        for (uint32_t n = 1; n <= 5; n++) {
            /* FOR: [2][base][w][packed]; try every plausible payload length */
            uint8_t blk[10 + 8 * 6 + 40] = {ENC_INT_FOR};
            blk[9] = (uint8_t)w;
            for (size_t payload = 0; payload <= 40; payload++)
                ASSERT_EQ(decode_ints_padded(blk, 10 + payload, n), STRATA_ECORRUPT);
            uint8_t d[18 + 40] = {ENC_INT_DELTA};
            d[17] = (uint8_t)w;
            for (size_t payload = 0; payload <= 40; payload++)
                ASSERT_EQ(decode_ints_padded(d, 18 + payload, n), STRATA_ECORRUPT);
            uint8_t dd[26 + 40] = {ENC_INT_DOD};
            dd[25] = (uint8_t)w;
            for (size_t payload = 0; payload <= 40; payload++)
                ASSERT_EQ(decode_ints_padded(dd, 26 + payload, n), STRATA_ECORRUPT);
        }
    }
    ASSERT_EQ(invalid, 256 - 65 - 6); /* 0..64 and six plane widths are valid */
}

/* Every valid width byte decodes a block of exactly the implied length and no other. */
TEST(int_valid_width_bytes_exact_length)
{
    for (unsigned wb = 0; wb <= 255; wb++) {
        if (!width_byte_valid(wb))
            continue;
        unsigned w = wb & ~WIDTH_PLANES;
        for (uint32_t n = 3; n <= 9; n++) {
            uint8_t blk[26 + 80] = {ENC_INT_FOR};
            blk[9] = (uint8_t)wb;
            size_t need = ((size_t)n * w + 7) / 8;
            for (size_t payload = 0; payload <= 80; payload++)
                ASSERT_EQ(decode_ints_padded(blk, 10 + payload, n),
                          payload == need ? 0 : STRATA_ECORRUPT);
            uint8_t dd[26 + 80] = {ENC_INT_DOD};
            dd[25] = (uint8_t)wb;
            need = ((size_t)(n - 2) * w + 7) / 8;
            for (size_t payload = 0; payload <= 80; payload++)
                ASSERT_EQ(decode_ints_padded(dd, 26 + payload, n),
                          payload == need ? 0 : STRATA_ECORRUPT);
        }
    }
}

TEST(int_malformed_shapes_are_corrupt)
{
    uint8_t blk[64] = {0};
    /* empty input, n = 0 */
    ASSERT_EQ(decode_ints_padded(blk, 0, 1), STRATA_ECORRUPT);
    blk[0] = ENC_INT_CONST;
    ASSERT_EQ(decode_ints_padded(blk, 9, 0), STRATA_ECORRUPT);
    ASSERT_EQ(decode_ints_padded(blk, 9, 3), 0);
    ASSERT_EQ(decode_ints_padded(blk, 10, 3), STRATA_ECORRUPT); /* trailing byte */
    /* unknown encodings */
    for (int e = 0; e < 256; e++) {
        if (e >= ENC_INT_CONST && e <= ENC_INT_DOD)
            continue;
        blk[0] = (uint8_t)e;
        for (size_t l = 1; l < sizeof blk; l++)
            ASSERT_EQ(decode_ints_padded(blk, l, 4), STRATA_ECORRUPT);
    }
    /* delta needs n >= 2, delta-of-delta n >= 3 */
    memset(blk, 0, sizeof blk);
    blk[0] = ENC_INT_DELTA;
    ASSERT_EQ(decode_ints_padded(blk, 18, 1), STRATA_ECORRUPT);
    ASSERT_EQ(decode_ints_padded(blk, 18, 2), 0);
    blk[0] = ENC_INT_DOD;
    ASSERT_EQ(decode_ints_padded(blk, 26, 2), STRATA_ECORRUPT);
    ASSERT_EQ(decode_ints_padded(blk, 26, 3), 0);
    /* FOR payload one byte short / long for its n and width */
    blk[0] = ENC_INT_FOR;
    blk[9] = 12;
    ASSERT_EQ(decode_ints_padded(blk, 10 + 6, 4), 0);
    ASSERT_EQ(decode_ints_padded(blk, 10 + 5, 4), STRATA_ECORRUPT);
    ASSERT_EQ(decode_ints_padded(blk, 10 + 7, 4), STRATA_ECORRUPT);
}

TEST(float_malformed_shapes_are_corrupt)
{
    uint8_t blk[80] = {0};
    ASSERT_EQ(decode_floats_padded(blk, 0, 1), STRATA_ECORRUPT);
    blk[0] = ENC_FLOAT_CONST;
    ASSERT_EQ(decode_floats_padded(blk, 9, 0), STRATA_ECORRUPT);
    ASSERT_EQ(decode_floats_padded(blk, 9, 5), 0);
    ASSERT_EQ(decode_floats_padded(blk, 8, 5), STRATA_ECORRUPT);
    ASSERT_EQ(decode_floats_padded(blk, 10, 5), STRATA_ECORRUPT);
    /* decimal: scale over 9, or a bad inner integer block */
    blk[0] = ENC_FLOAT_DECIMAL;
    blk[2] = ENC_INT_CONST;
    for (int k = 0; k < 256; k++) {
        blk[1] = (uint8_t)k;
        ASSERT_EQ(decode_floats_padded(blk, 11, 3), k <= 9 ? 0 : STRATA_ECORRUPT);
    }
    blk[1] = 2;
    blk[2] = ENC_FLOAT_DECIMAL; /* a float encoding inside is not an integer block */
    ASSERT_EQ(decode_floats_padded(blk, 11, 3), STRATA_ECORRUPT);
    blk[2] = ENC_INT_FOR;
    blk[11] = 99; /* width byte of the inner FOR block */
    ASSERT_EQ(decode_floats_padded(blk, 12 + 40, 3), STRATA_ECORRUPT);
    ASSERT_EQ(decode_floats_padded(blk, 2, 3), STRATA_ECORRUPT);
    /* shuffle: exactly 1 + 8n bytes */
    blk[0] = ENC_FLOAT_SHUFFLE;
    ASSERT_EQ(decode_floats_padded(blk, 1 + 8 * 4, 4), 0);
    ASSERT_EQ(decode_floats_padded(blk, 8 * 4, 4), STRATA_ECORRUPT);
    ASSERT_EQ(decode_floats_padded(blk, 2 + 8 * 4, 4), STRATA_ECORRUPT);
    /* integer encodings are not float blocks */
    for (int e = 0; e < 256; e++) {
        if (e >= ENC_FLOAT_CONST && e <= ENC_FLOAT_SHUFFLE)
            continue;
        blk[0] = (uint8_t)e;
        for (size_t l = 1; l < sizeof blk; l++)
            ASSERT_EQ(decode_floats_padded(blk, l, 4), STRATA_ECORRUPT);
    }
}

/* Random bytes, mostly starting with a real encoding id, at random lengths and counts:
 * 0 or STRATA_ECORRUPT, never a crash or an out-of-bounds access (ASan). */
TEST(random_bytes_never_crash)
{
    static const uint8_t ids[] = {ENC_INT_CONST, ENC_INT_FOR, ENC_INT_DELTA, ENC_INT_DOD,
                                  ENC_FLOAT_CONST, ENC_FLOAT_DECIMAL, ENC_FLOAT_SHUFFLE};
    uint64_t seed = 0xfeedface;
    int ok = 0, corrupt = 0;
    for (int iter = 0; iter < 200000; iter++) {
        uint8_t blk[300];
        size_t len = (size_t)(test_rand_next(&seed) % sizeof blk);
        for (size_t i = 0; i < len; i++)
            blk[i] = (uint8_t)test_rand_next(&seed);
        uint64_t r = test_rand_next(&seed);
        if (len > 0 && r % 8 != 0)
            blk[0] = ids[(r >> 8) % sizeof ids];
        /* width bytes: favour legal values so the unpackers get exercised */
        /* width bytes: favour legal values (tight or planes) so the unpackers run */
        size_t wpos = blk[0] == ENC_INT_FOR ? 9 : blk[0] == ENC_INT_DELTA ? 17 : 25;
        if (len > wpos && blk[0] >= ENC_INT_FOR && blk[0] <= ENC_INT_DOD && (r >> 40) % 4)
            blk[wpos] = (r >> 44) % 3 ? (uint8_t)(blk[wpos] % 65)
                                      : (uint8_t)(WIDTH_PLANES | (16 + 8 * (blk[wpos] % 6)));
        if (len > 1 && blk[0] == ENC_FLOAT_DECIMAL)
            blk[1] %= 11;
        uint32_t n = 1 + (uint32_t)((r >> 16) % 300);
        /* choose n to match the block length half the time, so decoding succeeds */
        if (r & (1u << 30)) {
            if (len > 10 && blk[0] == ENC_INT_FOR && (blk[9] & ~WIDTH_PLANES))
                n = (uint32_t)((len - 10) * 8 / (blk[9] & ~WIDTH_PLANES));
            else if (len > 1 && blk[0] == ENC_FLOAT_SHUFFLE)
                n = (uint32_t)((len - 1) / 8);
            if (n == 0)
                n = 1;
        }
        int rc = decode_ints_padded(blk, len, n);
        ASSERT(rc == 0 || rc == STRATA_ECORRUPT);
        ok += rc == 0;
        corrupt += rc != 0;
        rc = decode_floats_padded(blk, len, n);
        ASSERT(rc == 0 || rc == STRATA_ECORRUPT);
        ok += rc == 0;
        corrupt += rc != 0;
    }
    ASSERT_GT(ok, 1000); /* the generator does reach the decoding paths */
    ASSERT_GT(corrupt, 1000);
}

/* Truncations of big valid blocks of each encoding (the small ones are checked in every
 * round trip above). */
TEST(truncations_of_large_blocks)
{
    const uint32_t n = 300;
    uint64_t v[300];
    uint64_t seed = 3;
    for (int enc = ENC_INT_CONST; enc <= ENC_INT_DOD; enc++) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = test_rand_next(&seed);
            switch (enc) {
            case ENC_INT_CONST: v[i] = 5; break;
            case ENC_INT_FOR: v[i] = r; break;
            case ENC_INT_DELTA: v[i] = 1000 * (uint64_t)i + (r & 1); break;
            default: v[i] = (uint64_t)i * i * 1000 + (r & 1); break;
            }
        }
        for (int a = 0; a < 2; a++) {
            int got = roundtrip_ints_ex(v, n, true, a, true, NULL);
            ASSERT_EQ(got, enc);
        }
    }
    double f[300];
    for (uint32_t i = 0; i < n; i++)
        f[i] = (double)(int64_t)(test_rand_next(&seed) % 100000) / 100.0;
    ASSERT_EQ(roundtrip_floats_ex(f, n, false, true, NULL), ENC_FLOAT_DECIMAL);
    for (uint32_t i = 0; i < n; i++)
        f[i] = bits_to_double(test_rand_next(&seed));
    ASSERT_EQ(roundtrip_floats_ex(f, n, false, true, NULL), ENC_FLOAT_SHUFFLE);
}

/* Decoding a valid block with the wrong value count never writes past the count given:
 * out has exactly n slots (ASan checks), and the result is 0 or STRATA_ECORRUPT. */
TEST(wrong_counts_stay_in_bounds)
{
    uint64_t seed = 11;
    uint64_t v[64];
    for (int iter = 0; iter < 400; iter++) {
        uint32_t n = 1 + (uint32_t)(test_rand_next(&seed) % 64);
        unsigned w = (unsigned)(test_rand_next(&seed) % 65);
        uint64_t mask = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;
        for (uint32_t i = 0; i < n; i++)
            v[i] = iter % 3 == 0 ? test_rand_next(&seed) & mask
                                 : (i ? v[i - 1] : 0) + (test_rand_next(&seed) & mask);
        bytebuf b = {0};
        encode_ints(&b, v, n, iter & 1, iter & 2);
        for (uint32_t m = 1; m <= 70; m++) {
            int rc = decode_ints_padded(b.data, b.len, m);
            ASSERT(rc == 0 || rc == STRATA_ECORRUPT);
            if (m == n)
                ASSERT_EQ(rc, 0);
        }
        buf_free(&b);
    }
}

TEST_LIST(T(encoding_names), T(bits_needed_edges), T(int_for_golden_bytes), T(int_for_planes_layout),
          T(int_const_golden_bytes), T(int_all_equal_is_const), T(int_every_width_for),
          T(int_every_width_delta), T(int_sorted_constant_step_is_delta),
          T(int_quadratic_is_delta_of_delta), T(int_patterns_all_sizes),
          T(int_extremes_single_values), T(int_random_small_blocks),
          T(float_all_equal_is_const), T(float_const_golden_bytes),
          T(float_prices_are_decimal_scale_2), T(float_decimals_every_scale),
          T(float_random_doubles_are_shuffle), T(float_special_values_force_shuffle),
          T(float_mixtures_round_trip), T(float_large_integers),
          T(int_invalid_width_bytes_are_corrupt), T(int_valid_width_bytes_exact_length),
          T(int_malformed_shapes_are_corrupt),
          T(float_malformed_shapes_are_corrupt), T(random_bytes_never_crash),
          T(truncations_of_large_blocks), T(wrong_counts_stay_in_bounds))
