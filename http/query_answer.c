/*
 * query_answer.c — a query_result as JSON answer text, and the {"error": ...} body (formats
 * in query_answer.h).
 *
 * A small growable text buffer, not jansson, since answers can hold 100k rows: integers
 * digit by digit (all of uint64 and int64 exactly), floats in their shortest round-trip
 * form, strings escaped with invalid UTF-8 replaced by U+FFFD.
 */
#include "http/query_answer.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text.h"

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

/* Makes room for extra more bytes (and a NUL); false (and oom set) when memory runs out. */
static bool jb_reserve(jbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra < b->cap - b->len) /* b->cap > b->len always once allocated */
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (!jb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_puts(jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void jb_u64(jbuf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_put(b, tmp + i, sizeof tmp - i);
}

static void jb_i64(jbuf *b, int64_t v)
{
    if (v < 0) {
        jb_put(b, "-", 1);
        jb_u64(b, (uint64_t)0 - (uint64_t)v); /* exact for INT64_MIN too */
    } else {
        jb_u64(b, (uint64_t)v);
    }
}

static void jb_double(jbuf *b, double d)
{
    if (!isfinite(d)) {
        jb_put(b, "null", 4);
        return;
    }
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (n <= 0 || (size_t)n >= sizeof tmp) {
            b->oom = true; /* cannot happen for a finite double */
            return;
        }
        if (strtod(tmp, NULL) == d)
            break;
    }
    jb_put(b, tmp, (size_t)n);
}

/* Writes s[0..n) as a JSON string: quotes, backslashes and control characters escaped,
 * U+2028/U+2029 escaped (JavaScript line terminators), every byte that does not belong to
 * a valid UTF-8 sequence replaced by U+FFFD. */
static void jb_str(jbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    if (n > (SIZE_MAX - 2) / 6 || !jb_reserve(b, 6 * n + 2)) {
        b->oom = true;
        return;
    }
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
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
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
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
    b->len = (size_t)(o - b->p);
}

/* NUL-terminates and hands the text over; NULL (and the buffer freed) after a failure. */
static char *jb_finish(jbuf *b, size_t *len)
{
    if (!jb_reserve(b, 0)) {
        free(b->p);
        return NULL;
    }
    b->p[b->len] = 0;
    if (len)
        *len = b->len;
    return b->p;
}

static void jb_cell(jbuf *b, const query_cell *c)
{
    switch (c->kind) {
    case QC_INT: jb_i64(b, c->v.i); break;
    case QC_UINT: jb_u64(b, c->v.u); break;
    case QC_FLOAT: jb_double(b, c->v.f); break;
    case QC_STR: jb_str(b, c->v.s.ptr ? c->v.s.ptr : "", c->v.s.ptr ? c->v.s.len : 0); break;
    case QC_BOOL: jb_puts(b, c->v.b ? "true" : "false"); break;
    case QC_NULL:
    default: jb_put(b, "null", 4); break;
    }
}

char *query_answer_json(const query_result *r, const strata_query *q, size_t *len)
{
    jbuf b = {0};
    (void)q;
    int ncols = r->ncols < 0 ? 0 : r->ncols;
    jb_puts(&b, "{\"columns\":[");
    for (int c = 0; c < ncols; c++) {
        jb_puts(&b, c ? ",{\"name\":" : "{\"name\":");
        jb_str(&b, r->names[c], strnlen(r->names[c], QUERY_NAME_MAX));
        jb_puts(&b, ",\"type\":");
        if (r->types[c])
            jb_str(&b, r->types[c], strlen(r->types[c]));
        else
            jb_puts(&b, "null");
        jb_puts(&b, "}");
    }
    jb_puts(&b, "],\"rows\":[");
    for (uint64_t row = 0; row < r->nrows && !b.oom; row++) {
        jb_puts(&b, row ? ",[" : "[");
        for (int c = 0; c < ncols; c++) {
            if (c)
                jb_put(&b, ",", 1);
            jb_cell(&b, query_result_cell(r, row, c));
        }
        jb_put(&b, "]", 1);
    }
    jb_puts(&b, "],\"stats\":{\"rows_read\":");
    jb_u64(&b, r->rows_read);
    jb_puts(&b, ",\"segments_read\":");
    jb_u64(&b, r->segments_read);
    jb_puts(&b, ",\"elapsed_ms\":");
    jb_double(&b, round(r->elapsed_ms * 1000) / 1000); /* microseconds are plenty */
    jb_puts(&b, ",\"source\":\"raw\"}}");
    return jb_finish(&b, len);
}

char *query_answer_error(const char *message, size_t *len)
{
    jbuf b = {0};
    if (!message)
        message = "unknown error";
    jb_puts(&b, "{\"error\":");
    jb_str(&b, message, strlen(message));
    jb_puts(&b, "}");
    return jb_finish(&b, len);
}
