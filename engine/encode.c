/*
 * encode.c — integer and float block encodings; the byte layout is in encode.h.
 *
 * Packing ORs each value into an 8-byte little-endian window at its bit offset (plus a
 * spill byte when it straddles the window); unpacking loads the same window and masks.
 * Byte-multiple widths have straight copy loops, which is what zstd-bound (aligned)
 * blocks hit. The host must be little-endian (checked at compile time).
 */
#include "engine/encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

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
    case 0x42: return "bytes"; /* SEGMENT_ENC_BYTES (segment_format.h) */
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

/* Width actually used. Aligned (zstd-bound) blocks round up to whole bytes, which are
 * then laid out as byte planes; above 56 bits the values are near-random and rounding
 * would only add bytes, so they stay tightly packed. */
static unsigned round_width(unsigned w, bool aligned)
{
    return aligned && w <= 56 ? (w + 7) / 8 * 8 : w;
}

/* The width byte of a block: the width, with WIDTH_PLANES set when the values are stored
 * as byte planes (plane j holds byte j of every value: all low bytes first). */
#define WIDTH_PLANES 0x80

static uint8_t width_byte(unsigned w, bool aligned)
{
    return (uint8_t)(aligned && w >= 16 && w % 8 == 0 && w <= 56 ? (w | WIDTH_PLANES) : w);
}

static void pack_planes(bytebuf *out, const uint64_t *x, uint32_t n, uint64_t base, unsigned w)
{
    unsigned k = w / 8;
    if (!buf_reserve(out, (size_t)n * k))
        return;
    uint8_t *dst = out->data + out->len;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = x[i] - base;
        for (unsigned j = 0; j < k; j++)
            dst[(size_t)j * n + i] = (uint8_t)(v >> (8 * j));
    }
    out->len += (size_t)n * k;
}

static void unpack_planes(const uint8_t *in, unsigned w, uint32_t n, uint64_t base, uint64_t *out)
{
    unsigned k = w / 8;
    for (uint32_t i = 0; i < n; i++)
        out[i] = in[i];
    for (unsigned j = 1; j < k; j++) {
        const uint8_t *plane = in + (size_t)j * n;
        for (uint32_t i = 0; i < n; i++)
            out[i] |= (uint64_t)plane[i] << (8 * j);
    }
    for (uint32_t i = 0; i < n; i++)
        out[i] += base;
}

/* Packs x[i] - base with the layout width byte wb names. */
static void pack_any(bytebuf *out, const uint64_t *x, uint32_t n, uint64_t base, uint8_t wb)
{
    if (wb & WIDTH_PLANES)
        pack_planes(out, x, n, base, wb & ~WIDTH_PLANES);
    else
        pack(out, x, n, base, wb);
}

/* Parses a width byte: 0 and sets *w / *planes, or -1 when invalid. */
static int parse_width(uint8_t wb, unsigned *w, bool *planes)
{
    *planes = (wb & WIDTH_PLANES) != 0;
    *w = wb & ~WIDTH_PLANES;
    if (*w > 64 || (*planes && (*w < 16 || *w % 8 != 0 || *w > 56)))
        return -1;
    return 0;
}

static void unpack_any(const uint8_t *in, unsigned w, bool planes, uint32_t n, uint64_t base,
                       uint64_t *out)
{
    if (planes)
        unpack_planes(in, w, n, base, out);
    else
        unpack(in, w, n, base, out);
}

/* Expected stored bytes of x[i] - base packed at width w. Tightly packed bits are what
 * LZ4 stores; byte-aligned planes go to zstd, whose entropy stage pays about the order-0
 * entropy of each plane, so that is the estimate there (plus a table per plane). */
static double cost_bytes(const uint64_t *x, uint32_t n, uint64_t base, unsigned w, bool aligned)
{
    if (!aligned || w % 8 != 0 || w > 56 || n < 64)
        return (double)packed_bytes(n, w);
    double bits = 0;
    for (unsigned j = 0; j < w / 8; j++) {
        uint32_t cnt[256] = {0};
        for (uint32_t i = 0; i < n; i++)
            cnt[(uint8_t)((x[i] - base) >> (8 * j))]++;
        for (int b = 0; b < 256; b++)
            if (cnt[b])
                bits += (double)cnt[b] * log2((double)n / (double)cnt[b]);
        bits += 8 * 24; /* roughly what a Huffman table costs */
    }
    return bits / 8;
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
    /* Derived sequences for the delta forms (one allocation per block: cheap next to
     * encoding and compressing 8192 values, and nothing outlives the call). */
    uint64_t *dbuf = malloc(sizeof *dbuf * 2 * (size_t)n);
    if (!dbuf) {
        out->oom = true;
        return;
    }
    uint64_t *ddbuf = dbuf + n;
    unsigned w_for = round_width(bits_needed(hi - lo), aligned);
    double best = cost_bytes(v, n, lo, w_for, aligned) + 10;
    int enc = ENC_INT_FOR;

    /* Deltas and deltas of deltas, as signed 64-bit numbers modulo 2^64. */
    int64_t dmin = 0, dmax = 0, ddmin = 0, ddmax = 0;
    unsigned w_d = 64, w_dd = 64;
    if (n >= 2) {
        for (uint32_t i = 1; i < n; i++)
            dbuf[i - 1] = v[i] - v[i - 1];
        dmin = dmax = (int64_t)dbuf[0];
        for (uint32_t i = 1; i < n - 1; i++) {
            int64_t d = (int64_t)dbuf[i];
            dmin = d < dmin ? d : dmin;
            dmax = d > dmax ? d : dmax;
        }
        w_d = round_width(bits_needed((uint64_t)dmax - (uint64_t)dmin), aligned);
        double c = cost_bytes(dbuf, n - 1, (uint64_t)dmin, w_d, aligned) + 18;
        if (c < best) {
            best = c;
            enc = ENC_INT_DELTA;
        }
    }
    if (n >= 3) {
        for (uint32_t i = 1; i < n - 1; i++)
            ddbuf[i - 1] = dbuf[i] - dbuf[i - 1];
        ddmin = ddmax = (int64_t)ddbuf[0];
        for (uint32_t i = 1; i < n - 2; i++) {
            int64_t dd = (int64_t)ddbuf[i];
            ddmin = dd < ddmin ? dd : ddmin;
            ddmax = dd > ddmax ? dd : ddmax;
        }
        w_dd = round_width(bits_needed((uint64_t)ddmax - (uint64_t)ddmin), aligned);
        double c = cost_bytes(ddbuf, n - 2, (uint64_t)ddmin, w_dd, aligned) + 26;
        if (c < best) {
            best = c;
            enc = ENC_INT_DOD;
        }
    }

    buf_put_u8(out, (uint8_t)enc);
    if (enc == ENC_INT_FOR) {
        uint8_t wb = width_byte(w_for, aligned);
        buf_put_u64(out, lo);
        buf_put_u8(out, wb);
        pack_any(out, v, n, lo, wb);
    } else if (enc == ENC_INT_DELTA) {
        uint8_t wb = width_byte(w_d, aligned);
        buf_put_u64(out, v[0]);
        buf_put_u64(out, (uint64_t)dmin);
        buf_put_u8(out, wb);
        pack_any(out, dbuf, n - 1, (uint64_t)dmin, wb);
    } else {
        uint8_t wb = width_byte(w_dd, aligned);
        buf_put_u64(out, v[0]);
        buf_put_u64(out, dbuf[0]);
        buf_put_u64(out, (uint64_t)ddmin);
        buf_put_u8(out, wb);
        pack_any(out, ddbuf, n - 2, (uint64_t)ddmin, wb);
    }
    free(dbuf);
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
        unsigned w;
        bool planes;
        if (parse_width(cursor_u8(&c), &w, &planes) != 0 || c.bad ||
            cursor_left(&c) != packed_bytes(n, w))
            return STRATA_ECORRUPT;
        unpack_any(in + c.pos, w, planes, n, base, out);
        return 0;
    }
    case ENC_INT_DELTA: {
        uint64_t first = cursor_u64(&c);
        uint64_t dmin = cursor_u64(&c);
        unsigned w;
        bool planes;
        if (parse_width(cursor_u8(&c), &w, &planes) != 0 || c.bad || n < 2 ||
            cursor_left(&c) != packed_bytes(n - 1, w))
            return STRATA_ECORRUPT;
        unpack_any(in + c.pos, w, planes, n - 1, dmin, out + 1);
        out[0] = first;
        for (uint32_t i = 1; i < n; i++)
            out[i] += out[i - 1];
        return 0;
    }
    case ENC_INT_DOD: {
        uint64_t first = cursor_u64(&c);
        uint64_t d1 = cursor_u64(&c);
        uint64_t ddmin = cursor_u64(&c);
        unsigned w;
        bool planes;
        if (parse_width(cursor_u8(&c), &w, &planes) != 0 || c.bad || n < 3 ||
            cursor_left(&c) != packed_bytes(n - 2, w))
            return STRATA_ECORRUPT;
        unpack_any(in + c.pos, w, planes, n - 2, ddmin, out + 2);
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
