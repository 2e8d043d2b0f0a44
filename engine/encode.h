/*
 * encode.h — per-block value encodings of segment columns (before LZ4/zstd).
 *
 * An encoded block is a run of bytes whose first byte names its encoding. The value
 * count n is not stored: the segment footer knows each block's row count and the
 * decoder checks that the block's length is exactly what n and the parameters imply.
 *
 * Integer blocks (timestamps, ints, bools, dictionary codes) — all values are 64-bit;
 * `is_signed` only affects how min/max are found, the arithmetic is modulo 2^64:
 *   INT_CONST  1  [u8 1][u64 value]
 *   INT_FOR    2  [u8 2][u64 base][u8 width][ceil(n*width/8) bytes: v[i]-base, bit-packed]
 *   INT_DELTA  3  [u8 3][u64 first][u64 dmin][u8 width][packed d[i]-dmin for i=1..n-1]
 *                 where d[i] = v[i]-v[i-1]
 *   INT_DOD    4  [u8 4][u64 first][u64 d1][u64 ddmin][u8 width]
 *                 [packed dd[i]-ddmin for i=2..n-1] where dd[i] = d[i]-d[i-1]
 * Float blocks:
 *   FLOAT_CONST    16 [u8 16][u64 IEEE-754 bits]
 *   FLOAT_DECIMAL  17 [u8 17][u8 scale k][an integer block of m[i]] where every value is
 *                     exactly (double)m[i] / 10^k (bit-for-bit, checked at encode time)
 *   FLOAT_SHUFFLE  18 [u8 18][8 planes of n bytes: plane j holds byte j of every value]
 *
 * The width byte: bits 0-6 are the width w (0..64). Without bit 7 the values are bit-packed
 * little-endian: value i occupies bits [i*w, (i+1)*w) of the byte run, bit 0 being the
 * least significant bit of byte 0. With bit 7 (0x80, "byte planes"; w is then 16, 24, 32,
 * 40, 48 or 56) the values are w/8 planes of n bytes each: plane j holds byte j (least
 * significant first) of every value. Either way the run is ceil(count*w/8) bytes.
 *
 * Choice: the encoder tries every integer encoding and keeps the cheapest. For LZ4 and
 * uncompressed blocks (`aligned` false) that is the fewest bytes, tightly packed. For zstd
 * blocks (`aligned` true) widths up to 56 are rounded up to whole bytes and stored as byte
 * planes, and the cost is the order-0 entropy of the planes: zstd's entropy stage then
 * codes each plane near its entropy, which beats tight packing (widths above 56 stay
 * tightly packed: such values are near-random). Decoders accept any valid choice.
 *
 * Decoders read up to ENCODE_PAD bytes past the end of their input: callers give input
 * buffers with that much readable slack. Decoders never read past len+ENCODE_PAD and never
 * write past n values, whatever the input bytes are.
 */
#ifndef STRATA_ENCODE_H
#define STRATA_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"

#define ENCODE_PAD 16

enum {
    ENC_INT_CONST = 1,
    ENC_INT_FOR = 2,
    ENC_INT_DELTA = 3,
    ENC_INT_DOD = 4,
    ENC_FLOAT_CONST = 16,
    ENC_FLOAT_DECIMAL = 17,
    ENC_FLOAT_SHUFFLE = 18,
};

/* "for", "delta", ...; "unknown" for an invalid id. */
const char *encoding_name(uint8_t id);

/* Appends the smallest integer encoding of v[0..n) to out (n >= 1). Allocation failure
 * is reported through out->oom. */
void encode_ints(bytebuf *out, const uint64_t *v, uint32_t n, bool is_signed, bool aligned);
/* Decodes exactly n values. Returns 0, or STRATA_ECORRUPT when the bytes are not a
 * well-formed integer block of n values. */
int decode_ints(const uint8_t *in, size_t len, uint64_t *out, uint32_t n);

/* Appends the smallest float encoding of v[0..n) to out; scratch holds n values. */
void encode_floats(bytebuf *out, const double *v, uint32_t n, bool aligned, uint64_t *scratch);
/* Decodes exactly n values; scratch holds n values. 0 or STRATA_ECORRUPT. */
int decode_floats(const uint8_t *in, size_t len, double *out, uint32_t n, uint64_t *scratch);

/* Number of bits needed for x (0 for 0). */
static inline unsigned bits_needed(uint64_t x)
{
    return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

#endif
