/*
 * buf.c — growable little-endian writer and bounds-checked reader. See buf.h.
 */
#include "engine/buf.h"

#include <stdlib.h>

void buf_free(bytebuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

bool buf_reserve(bytebuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void buf_put(bytebuf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

char *buf_take_cstr(bytebuf *b, size_t *len)
{
    if (!buf_reserve(b, 1)) {
        buf_free(b);
        return NULL;
    }
    b->data[b->len] = 0;
    char *s = (char *)b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return s;
}

void buf_put_u8(bytebuf *b, uint8_t v)
{
    buf_put(b, &v, 1);
}

void buf_put_u16(bytebuf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_put(b, t, 2);
}

void buf_put_u32(bytebuf *b, uint32_t v)
{
    uint8_t t[4];
    store_u32le(t, v);
    buf_put(b, t, 4);
}

void buf_put_u64(bytebuf *b, uint64_t v)
{
    uint8_t t[8];
    store_u64le(t, v);
    buf_put(b, t, 8);
}

const uint8_t *cursor_take(cursor *c, size_t n)
{
    if (c->bad || n > c->len - c->pos) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p + c->pos;
    c->pos += n;
    return p;
}

uint8_t cursor_u8(cursor *c)
{
    const uint8_t *p = cursor_take(c, 1);
    return p ? p[0] : 0;
}

uint16_t cursor_u16(cursor *c)
{
    const uint8_t *p = cursor_take(c, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

uint32_t cursor_u32(cursor *c)
{
    const uint8_t *p = cursor_take(c, 4);
    return p ? load_u32le(p) : 0;
}

uint64_t cursor_u64(cursor *c)
{
    const uint8_t *p = cursor_take(c, 8);
    return p ? load_u64le(p) : 0;
}
