/*
 * buf.h — little-endian byte buffers: a growable writer (buf) and a bounds-checked
 * reader (cursor) used by every on-disk format.
 *
 * The writer records allocation failure in buf.oom instead of returning codes from
 * every put, so a format writer checks once at the end. The cursor never reads past its
 * end: a short read sets cursor.bad and yields zeros, and the parser checks bad once per
 * structure. Ownership: buf owns buf.data (buf_free); a cursor borrows its bytes.
 * A writer may also be lent memory it does not own ({.data = p, .cap = room}): buf_reserve
 * never moves data while the room suffices, so puts that fit stay in p; the lender checks
 * that they fit and never calls buf_free on it.
 */
#ifndef STRATA_BUF_H
#define STRATA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct bytebuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} bytebuf;

void buf_free(bytebuf *b);
/* Makes room for extra more bytes; false (and b->oom) when out of memory. */
bool buf_reserve(bytebuf *b, size_t extra);
void buf_put(bytebuf *b, const void *p, size_t n);
void buf_put_u8(bytebuf *b, uint8_t v);
void buf_put_u16(bytebuf *b, uint16_t v);
void buf_put_u32(bytebuf *b, uint32_t v);
void buf_put_u64(bytebuf *b, uint64_t v);
/* NUL-terminates the bytes and hands them over as a C string (the caller frees it with
 * free()); *len, when given, gets their length without the NUL. The buffer is left empty.
 * After any failed put (b->oom) the bytes are freed and NULL is returned. */
char *buf_take_cstr(bytebuf *b, size_t *len /* OUT, may be NULL */);

static inline void store_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void store_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t load_u32le(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t load_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

typedef struct cursor {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} cursor;

static inline cursor cursor_make(const void *p, size_t len)
{
    cursor c = {p, len, 0, false};
    return c;
}
/* Returns a pointer to the next n bytes and advances, or NULL (and c->bad) if short. */
const uint8_t *cursor_take(cursor *c, size_t n);
uint8_t cursor_u8(cursor *c);
uint16_t cursor_u16(cursor *c);
uint32_t cursor_u32(cursor *c);
uint64_t cursor_u64(cursor *c);
static inline size_t cursor_left(const cursor *c)
{
    return c->len - c->pos;
}

#endif
