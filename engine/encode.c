/*
 * encode.c — integer and float block encodings; the byte layout is in encode.h.
 *
 * Packing ORs each value into an 8-byte little-endian window at its bit offset (plus a
 * spill byte when it straddles the window); unpacking loads the same window and masks.
 * Byte-multiple widths have straight copy loops, which is what zstd-bound (aligned)
 * blocks hit. The host must be little-endian (checked at compile time).
 */
#include "encode.h"

#include <math.h>
#include <string.h>

#include "error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "strata's formats assume a little-endian host"
#endif

const char *encoding_name(uint8_t id)
{
    switch (id) {
    case ENC_INT_CONST: return "const";
    case ENC_INT_FOR: return "for";
    case ENC_INT_DELTA: return "delta";
    case ENC_INT_DOD: return "delta-of-delta";
    case ENC_FLOAT_CONST: return "float-const";
    case ENC_FLOAT_DECIMAL: return "decimal";
    case ENC_FLOAT_SHUFFLE: return "byte-shuffle";
    default: return "unknown";
    }
}

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void st64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static inline size_t packed_bytes(uint64_t count, unsigned w)
{
    return (size_t)((count * w + 7) / 8);
}

/* Appends x[i] - base for i in [0, n), w bits each. */
static void pack(bytebuf *out, const uint64_t *x, uint32_t n, uint64_t base, unsigned w)
{
    size_t nb = packed_bytes(n, w);
    if (!buf_reserve(out, nb + 9))
        return;
    uint8_t *dst = out->data + out->len;
    memset(dst, 0, nb + 9);
    if (w == 0) {
        /* nothing */
    } else if (w == 8) {
        for (uint32_t i = 0; i < n; i++)
            dst[i] = (uint8_t)(x[i] - base);
    } else if (w == 64) {
        for (uint32_t i = 0; i < n; i++)
            st64(dst + 8 * (size_t)i, x[i] - base);
    } else {
        uint64_t bit = 0;
        for (uint32_t i = 0; i < n; i++, bit += w) {
            uint64_t v = x[i] - base;
            uint8_t *p = dst + (bit >> 3);
            unsigned s = (unsigned)(bit & 7);
            st64(p, ld64(p) | (v << s));
            if (s + w > 64)
                p[8] |= (uint8_t)(v >> (64 - s));
        }
    }
    out->len += nb;
}

static void unpack(const uint8_t *in, unsigned w, uint32_t n, uint64_t base, uint64_t *out)
{
    if (w == 0) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = base;
    } else if (w == 8) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = base + in[i];
    } else if (w == 16) {
        for (uint32_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, in + 2 * (size_t)i, 2);
            out[i] = base + v;
        }
    } else if (w == 32) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, in + 4 * (size_t)i, 4);
            out[i] = base + v;
        }
    } else if (w == 64) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = base + ld64(in + 8 * (size_t)i);
    } else if (w <= 56) {
        const uint64_t mask = (UINT64_C(1) << w) - 1;
        uint64_t bit = 0;
        for (uint32_t i = 0; i < n; i++, bit += w)
            out[i] = base + ((ld64(in + (bit >> 3)) >> (bit & 7)) & mask);
    } else {
        const uint64_t mask = (UINT64_C(1) << w) - 1;
        uint64_t bit = 0;
        for (uint32_t i = 0; i < n; i++, bit += w) {
            const uint8_t *p = in + (bit >> 3);
            unsigned s = (unsigned)(bit & 7);
            uint64_t v = ld64(p) >> s;
            if (s)
                v |= (uint64_t)p[8] << (64 - s);
            out[i] = base + (v & mask);
        }
    }
}

static unsigned round_width(unsigned w, bool aligned)
{
    return aligned ? (w + 7) / 8 * 8 : w;
}

void encode_ints(bytebuf *out, const uint64_t *v, uint32_t n, bool is_signed, bool aligned)
{
    /* Range for frame of reference. */
    uint64_t lo = v[0], hi = v[0];
    if (is_signed) {
        int64_t slo = (int64_t)v[0], shi = (int64_t)v[0];
        for (uint32_t i = 1; i < n; i++) {
            int64_t x = (int64_t)v[i];
            slo = x < slo ? x : slo;
            shi = x > shi ? x : shi;
        }
        lo = (uint64_t)slo;
        hi = (uint64_t)shi;
    } else {
        for (uint32_t i = 1; i < n; i++) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    }
    if (lo == hi) {
        buf_put_u8(out, ENC_INT_CONST);
        buf_put_u64(out, lo);
        return;
    }
    unsigned w_for = round_width(bits_needed(hi - lo), aligned);
    size_t best = 10 + packed_bytes(n, w_for);
    int enc = ENC_INT_FOR;

    /* Deltas and deltas of deltas, as signed 64-bit numbers modulo 2^64. */
    int64_t dmin = 0, dmax = 0, ddmin = 0, ddmax = 0;
    unsigned w_d = 64, w_dd = 64;
    if (n >= 2) {
        dmin = dmax = (int64_t)(v[1] - v[0]);
        int64_t prev = dmin;
        bool have_dd = false;
        for (uint32_t i = 2; i < n; i++) {
            int64_t d = (int64_t)(v[i] - v[i - 1]);
            int64_t dd = (int64_t)((uint64_t)d - (uint64_t)prev);
            prev = d;
            dmin = d < dmin ? d : dmin;
            dmax = d > dmax ? d : dmax;
            if (!have_dd) {
                ddmin = ddmax = dd;
                have_dd = true;
            } else {
                ddmin = dd < ddmin ? dd : ddmin;
                ddmax = dd > ddmax ? dd : ddmax;
            }
        }
        w_d = round_width(bits_needed((uint64_t)dmax - (uint64_t)dmin), aligned);
        size_t sz = 18 + packed_bytes(n - 1, w_d);
        if (sz < best) {
            best = sz;
            enc = ENC_INT_DELTA;
        }
        if (n >= 3) {
            w_dd = round_width(bits_needed((uint64_t)ddmax - (uint64_t)ddmin), aligned);
            sz = 26 + packed_bytes(n - 2, w_dd);
            if (sz < best) {
                best = sz;
                enc = ENC_INT_DOD;
            }
        }
    }

    buf_put_u8(out, (uint8_t)enc);
    if (enc == ENC_INT_FOR) {
        buf_put_u64(out, lo);
        buf_put_u8(out, (uint8_t)w_for);
        pack(out, v, n, lo, w_for);
        return;
    }
    /* Delta forms pack derived sequences computed on the fly, in one bit stream. */
    if (enc == ENC_INT_DELTA) {
        buf_put_u64(out, v[0]);
        buf_put_u64(out, (uint64_t)dmin);
        buf_put_u8(out, (uint8_t)w_d);
        size_t nb = packed_bytes(n - 1, w_d);
        if (!buf_reserve(out, nb + 9))
            return;
        uint8_t *dst = out->data + out->len;
        memset(dst, 0, nb + 9);
        uint64_t bit = 0;
        for (uint32_t i = 1; i < n; i++, bit += w_d) {
            if (w_d == 0)
                break;
            uint64_t x = (v[i] - v[i - 1]) - (uint64_t)dmin;
            uint8_t *p = dst + (bit >> 3);
            unsigned s = (unsigned)(bit & 7);
            st64(p, ld64(p) | (x << s));
            if (s + w_d > 64)
                p[8] |= (uint8_t)(x >> (64 - s));
        }
        out->len += nb;
        return;
    }
    /* ENC_INT_DOD */
    uint64_t d1 = v[1] - v[0];
    buf_put_u64(out, v[0]);
    buf_put_u64(out, d1);
    buf_put_u64(out, (uint64_t)ddmin);
    buf_put_u8(out, (uint8_t)w_dd);
    size_t nb = packed_bytes(n - 2, w_dd);
    if (!buf_reserve(out, nb + 9))
        return;
    uint8_t *dst = out->data + out->len;
    memset(dst, 0, nb + 9);
    uint64_t bit = 0, prev = d1;
    for (uint32_t i = 2; i < n; i++, bit += w_dd) {
        uint64_t d = v[i] - v[i - 1];
        uint64_t x = (d - prev) - (uint64_t)ddmin;
        prev = d;
        if (w_dd == 0)
            break;
        uint8_t *p = dst + (bit >> 3);
        unsigned s = (unsigned)(bit & 7);
        st64(p, ld64(p) | (x << s));
        if (s + w_dd > 64)
            p[8] |= (uint8_t)(x >> (64 - s));
    }
    out->len += nb;
}

int decode_ints(const uint8_t *in, size_t len, uint64_t *out, uint32_t n)
{
    if (len < 1 || n == 0)
        return STRATA_ECORRUPT;
    cursor c = cursor_make(in, len);
    uint8_t enc = cursor_u8(&c);
    switch (enc) {
    case ENC_INT_CONST: {
        uint64_t v = cursor_u64(&c);
        if (c.bad || cursor_left(&c) != 0)
            return STRATA_ECORRUPT;
        for (uint32_t i = 0; i < n; i++)
            out[i] = v;
        return 0;
    }
    case ENC_INT_FOR: {
        uint64_t base = cursor_u64(&c);
        unsigned w = cursor_u8(&c);
        if (c.bad || w > 64 || cursor_left(&c) != packed_bytes(n, w))
            return STRATA_ECORRUPT;
        unpack(in + c.pos, w, n, base, out);
        return 0;
    }
    case ENC_INT_DELTA: {
        uint64_t first = cursor_u64(&c);
        uint64_t dmin = cursor_u64(&c);
        unsigned w = cursor_u8(&c);
        if (c.bad || w > 64 || n < 2 || cursor_left(&c) != packed_bytes(n - 1, w))
            return STRATA_ECORRUPT;
        unpack(in + c.pos, w, n - 1, dmin, out + 1);
        out[0] = first;
        for (uint32_t i = 1; i < n; i++)
            out[i] += out[i - 1];
        return 0;
    }
    case ENC_INT_DOD: {
        uint64_t first = cursor_u64(&c);
        uint64_t d1 = cursor_u64(&c);
        uint64_t ddmin = cursor_u64(&c);
        unsigned w = cursor_u8(&c);
        if (c.bad || w > 64 || n < 3 || cursor_left(&c) != packed_bytes(n - 2, w))
            return STRATA_ECORRUPT;
        unpack(in + c.pos, w, n - 2, ddmin, out + 2);
        out[0] = first;
        out[1] = first + d1;
        uint64_t d = d1;
        for (uint32_t i = 2; i < n; i++) {
            d += out[i];
            out[i] = out[i - 1] + d;
        }
        return 0;
    }
    default: return STRATA_ECORRUPT;
    }
}

static const double pow10_table[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
#define DECIMAL_MAX_SCALE 9

/* True if v == (double)m / 10^k bit for bit, for m = round(v * 10^k), |m| < 2^53. */
static bool decimal_fits(double v, unsigned k, int64_t *m)
{
    double scaled = v * pow10_table[k];
    if (!(scaled > -9007199254740992.0 && scaled < 9007199254740992.0))
        return false; /* also rejects NaN and infinities */
    int64_t r = (int64_t)llround(scaled);
    double back = (double)r / pow10_table[k];
    if (memcmp(&back, &v, sizeof v) != 0)
        return false; /* inexact, or -0.0 */
    *m = r;
    return true;
}

void encode_floats(bytebuf *out, const double *v, uint32_t n, bool aligned, uint64_t *scratch)
{
    uint64_t first;
    memcpy(&first, &v[0], 8);
    bool all_same = true;
    for (uint32_t i = 1; i < n && all_same; i++) {
        uint64_t b;
        memcpy(&b, &v[i], 8);
        all_same = b == first;
    }
    if (all_same) {
        buf_put_u8(out, ENC_FLOAT_CONST);
        buf_put_u64(out, first);
        return;
    }
    /* Find the smallest scale at which every value is an exact decimal. If v fits at k it
     * fits at every larger k (both are the correctly rounded value of one rational), so
     * one pass that raises k as needed, then one checking pass, suffice. */
    unsigned k = 0;
    bool ok = true;
    for (uint32_t i = 0; i < n && ok; i++) {
        int64_t m;
        while (!decimal_fits(v[i], k, &m)) {
            if (++k > DECIMAL_MAX_SCALE) {
                ok = false;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < n && ok; i++) {
        int64_t m = 0;
        ok = decimal_fits(v[i], k, &m);
        scratch[i] = (uint64_t)m;
    }
    if (ok) {
        buf_put_u8(out, ENC_FLOAT_DECIMAL);
        buf_put_u8(out, (uint8_t)k);
        encode_ints(out, scratch, n, true, aligned);
        return;
    }
    buf_put_u8(out, ENC_FLOAT_SHUFFLE);
    if (!buf_reserve(out, (size_t)n * 8))
        return;
    uint8_t *dst = out->data + out->len;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &v[i], 8);
        for (int j = 0; j < 8; j++)
            dst[(size_t)j * n + i] = (uint8_t)(b >> (8 * j));
    }
    out->len += (size_t)n * 8;
}

int decode_floats(const uint8_t *in, size_t len, double *out, uint32_t n, uint64_t *scratch)
{
    if (len < 1 || n == 0)
        return STRATA_ECORRUPT;
    switch (in[0]) {
    case ENC_FLOAT_CONST: {
        if (len != 9)
            return STRATA_ECORRUPT;
        double v;
        memcpy(&v, in + 1, 8);
        for (uint32_t i = 0; i < n; i++)
            out[i] = v;
        return 0;
    }
    case ENC_FLOAT_DECIMAL: {
        if (len < 3 || in[1] > DECIMAL_MAX_SCALE)
            return STRATA_ECORRUPT;
        int rc = decode_ints(in + 2, len - 2, scratch, n);
        if (rc)
            return rc;
        double p = pow10_table[in[1]];
        for (uint32_t i = 0; i < n; i++)
            out[i] = (double)(int64_t)scratch[i] / p;
        return 0;
    }
    case ENC_FLOAT_SHUFFLE: {
        if (len != 1 + (size_t)n * 8)
            return STRATA_ECORRUPT;
        const uint8_t *src = in + 1;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t b = 0;
            for (int j = 0; j < 8; j++)
                b |= (uint64_t)src[(size_t)j * n + i] << (8 * j);
            memcpy(&out[i], &b, 8);
        }
        return 0;
    }
    default: return STRATA_ECORRUPT;
    }
}
