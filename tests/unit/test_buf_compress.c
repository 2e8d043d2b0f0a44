/*
 * test_buf_compress.c — the byte buffer / bounds-checked cursor, block compression
 * (round trips for every codec, the fall-back to "none" for incompressible bytes, and
 * refusal of damaged or mis-sized input), and the progress line's silence off a terminal.
 */
#include "engine/buf.h"
#include "engine/compress.h"
#include "engine/error.h"
#include "tools/progress.h"
#include "test.h"

TEST(buf_little_endian_and_cursor_bounds)
{
    bytebuf b = {0};
    buf_put_u8(&b, 0xab);
    buf_put_u16(&b, 0x1234);
    buf_put_u32(&b, 0xdeadbeef);
    buf_put_u64(&b, UINT64_C(0x0102030405060708));
    ASSERT(!b.oom);
    ASSERT_EQ(b.len, 15);
    ASSERT_EQ(b.data[1], 0x34); /* little-endian */
    ASSERT_EQ(b.data[14], 0x01);
    cursor c = cursor_make(b.data, b.len);
    ASSERT_EQ(cursor_u8(&c), 0xab);
    ASSERT_EQ(cursor_u16(&c), 0x1234);
    ASSERT_U64_EQ(cursor_u32(&c), 0xdeadbeef);
    ASSERT_U64_EQ(cursor_u64(&c), UINT64_C(0x0102030405060708));
    ASSERT_EQ(cursor_left(&c), 0);
    ASSERT(!c.bad);
    /* Reading past the end yields zeros and marks the cursor, never reads out of bounds. */
    ASSERT_EQ(cursor_u32(&c), 0);
    ASSERT(c.bad);
    ASSERT(cursor_take(&c, 1) == NULL);
    cursor d = cursor_make(b.data, 3);
    ASSERT_EQ(cursor_u32(&d), 0);
    ASSERT(d.bad);
    ASSERT(cursor_take(&d, SIZE_MAX) == NULL);
    buf_free(&b);
}

TEST(compress_round_trip_every_codec)
{
    compressor *z = compressor_create(3);
    ASSERT(z);
    static uint8_t text[100000], rnd[4096], out[100000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)"strata columnar store "[i % 22];
    uint64_t seed = 42;
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)test_rand_next(&seed);
    strata_codec codecs[] = {STRATA_CODEC_NONE, STRATA_CODEC_LZ4, STRATA_CODEC_ZSTD};
    for (int k = 0; k < 3; k++) {
        bytebuf b = {0};
        strata_codec used = compress_block(z, &b, text, sizeof text, codecs[k]);
        ASSERT_EQ(used, codecs[k]);
        if (codecs[k] != STRATA_CODEC_NONE)
            ASSERT_LT(b.len, sizeof text / 10);
        ASSERT_EQ(decompress_block(z, used, b.data, b.len, out, sizeof text), 0);
        ASSERT_EQ(memcmp(out, text, sizeof text), 0);
        /* A wrong expected size and truncation are refused (damage within a block is the
         * checksum's job: see test_segment_corrupt). */
        if (used != STRATA_CODEC_NONE) {
            ASSERT_EQ(decompress_block(z, used, b.data, b.len, out, sizeof text - 1), STRATA_ECORRUPT);
            ASSERT_EQ(decompress_block(z, used, b.data, b.len / 2, out, sizeof text), STRATA_ECORRUPT);
        }
        buf_free(&b);
        /* Incompressible bytes are stored as they are. */
        bytebuf r = {0};
        ASSERT_EQ(compress_block(z, &r, rnd, sizeof rnd, codecs[k]), STRATA_CODEC_NONE);
        ASSERT_EQ(r.len, sizeof rnd);
        buf_free(&r);
    }
    ASSERT_EQ(decompress_block(z, (strata_codec)9, text, 10, out, 10), STRATA_ECORRUPT);
    ASSERT_STR_EQ(compress_codec_name(STRATA_CODEC_ZSTD), "zstd");
    ASSERT_STR_EQ(compress_codec_name((strata_codec)9), "unknown");
    compressor_free(z);
}

TEST(error_messages_and_prefix)
{
    strata_err e = {0};
    ASSERT_EQ(strata_err_set(&e, STRATA_ECORRUPT, "column '%s' granule %d", "ts", 3), STRATA_ECORRUPT);
    strata_err_prefix(&e, "%s", "a.seg");
    ASSERT_STR_EQ(e.msg, "a.seg: column 'ts' granule 3");
    ASSERT_EQ(strata_err_set(NULL, STRATA_EIO, "ignored"), STRATA_EIO);
    ASSERT_STR_EQ(strata_strerror(STRATA_EVERSION), "unsupported version");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strata_err_prefix(&e, "%s", big); /* truncated, still terminated */
    ASSERT_LT(strlen(e.msg), sizeof e.msg);
}

TEST(progress_is_silent_when_not_a_terminal)
{
    /* ctest runs us with stderr on a pipe or file: progress must print nothing. */
    fflush(stderr);
    long before = ftell(stderr);
    progress p;
    progress_start(&p, "verify", 100, "rows", false);
    ASSERT(!p.enabled || isatty(2));
    for (uint64_t i = 0; i <= 100; i++)
        progress_update(&p, i);
    progress_finish(&p);
    if (!isatty(2) && before >= 0)
        ASSERT_EQ(ftell(stderr), before);
    progress_start(&p, "verify", 100, "rows", true); /* --quiet */
    ASSERT(!p.enabled);
}

TEST_LIST(T(buf_little_endian_and_cursor_bounds), T(compress_round_trip_every_codec),
          T(error_messages_and_prefix), T(progress_is_silent_when_not_a_terminal))
