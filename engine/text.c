/*
 * text.c — UTF-8 validation, JSON string escaping, shortest doubles and decimal parsing.
 * See text.h. The JSON escaper reserves the worst case (6 output bytes per input byte)
 * once, then writes without further checks: it is on the answer path of every query.
 */
#include "engine/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t text_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool text_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = text_utf8_len(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void text_utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = text_utf8_len(p + i, n - i);
        if (l == 0) {
            p[i++] = '?';
            continue;
        }
        i += l;
    }
}

void text_json_string(bytebuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    if (n > (SIZE_MAX - 2) / 6) {
        b->oom = true;
        return;
    }
    if (!buf_reserve(b, 6 * n + 2))
        return;
    uint8_t *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (uint8_t)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = (uint8_t)hex[c >> 4];
                *o++ = (uint8_t)hex[c & 15];
            }
            i++;
            continue;
        }
        size_t l = text_utf8_len(s + i, n - i);
        if (l == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD: 3 bytes for 1 input byte */
            o += 3;
            i++;
        } else if (l == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8) {
            memcpy(o, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 3;
        } else {
            memcpy(o, s + i, l);
            o += l;
            i += l;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

size_t text_double_shortest(double d, char *out, size_t cap)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap ? cap - 1 : 0;
}

void text_put_u64(bytebuf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_put(b, tmp + i, sizeof tmp - i);
}

void text_put_i64(bytebuf *b, int64_t v)
{
    if (v < 0) {
        buf_put(b, "-", 1);
        text_put_u64(b, (uint64_t)0 - (uint64_t)v); /* exact for INT64_MIN too */
    } else {
        text_put_u64(b, (uint64_t)v);
    }
}

void text_put_json_double(bytebuf *b, double d)
{
    if (!isfinite(d)) {
        buf_put(b, "null", 4);
        return;
    }
    char tmp[40];
    buf_put(b, tmp, text_double_shortest(d, tmp, sizeof tmp));
}

bool text_parse_u64(const char *p, uint64_t *out)
{
    if (!*p)
        return false;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}
