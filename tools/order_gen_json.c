/*
 * order_gen_json.c — one order event as a line of JSON: the text path of the generator
 * (order_gen_next_json, which `strata gen`, the demo and the Kafka tests send) and
 * order_gen_format_json. See order_gen_json.h.
 *
 * A bounded writer into the caller's buffer: no allocation, no snprintf on the way (the
 * text path runs at millions of events per second), the fields in a fixed order, amounts
 * with exactly two decimals. A write that does not fit sets a flag and the event is
 * refused whole (-1), never cut.
 */
#include "tools/order_gen_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/buf.h"
#include "engine/text.h"

/* A bounded writer: appends fail softly and set ovf. */
typedef struct jw {
    char *p, *end; /* end leaves room for the NUL */
    bool ovf;
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->ovf || (size_t)(w->end - w->p) < n) {
        w->ovf = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static void jw_u64(jw *w, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_raw(w, tmp + sizeof tmp - n, n);
}

static void jw_i64(jw *w, int64_t v)
{
    if (v < 0) {
        jw_raw(w, "-", 1);
        jw_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        jw_u64(w, (uint64_t)v);
    }
}

/* A string through engine/text.h's escaper, the one strata's JSON writers share (control
 * characters and quotes escaped, bytes that are not UTF-8 as U+FFFD). text_json_string
 * reserves its worst case, 6 bytes an input byte + 2, before writing. When the rest of buf
 * holds that (always for the generator's own values, 11 bytes at most), it writes straight
 * into buf through a bytebuf lent buf's room: buf_reserve finds the room there and never
 * reallocates. Otherwise (a long string of a row batch) the text is made in a heap buffer
 * and copied if it fits. */
static void jw_str(jw *w, const char *s, size_t n)
{
    if (w->ovf)
        return;
    size_t room = (size_t)(w->end - w->p);
    if (room >= 2 && n <= (room - 2) / 6) {
        bytebuf b = {.data = (uint8_t *)w->p, .len = 0, .cap = room};
        text_json_string(&b, s, n);
        w->p += b.len;
        return;
    }
    bytebuf b = {0};
    text_json_string(&b, s, n);
    if (b.oom)
        w->ovf = true;
    else
        jw_raw(w, (const char *)b.data, b.len);
    buf_free(&b);
}

/* Amount with exactly two decimals: the value is cents / 100 for every generated row;
 * others are rounded to the nearest cent. */
static void jw_amount(jw *w, double amount)
{
    if (!isfinite(amount)) {
        jw_raw(w, "null", 4);
        return;
    }
    if (fabs(amount) >= 9e15) {
        char tmp[400];
        int n = snprintf(tmp, sizeof tmp, "%.2f", amount);
        jw_raw(w, tmp, (size_t)n);
        return;
    }
    int64_t cents = (int64_t)llround(amount * 100.0);
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    if (cents < 0)
        jw_raw(w, "-", 1);
    jw_u64(w, mag / 100);
    char frac[3] = {'.', (char)('0' + mag % 100 / 10), (char)('0' + mag % 10)};
    jw_raw(w, frac, 3);
}

int order_gen_fields_json(const order_gen_fields *v, char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    jw w = {buf, buf + cap - 1, false};
    jw_raw(&w, "{\"ts\":", 6);
    jw_i64(&w, v->ts);
    jw_raw(&w, ",\"event_id\":", 12);
    jw_u64(&w, v->event_id);
    jw_raw(&w, ",\"user_id\":", 11);
    jw_u64(&w, v->user_id);
    jw_raw(&w, ",\"country\":", 11);
    jw_str(&w, v->country.ptr, v->country.len);
    jw_raw(&w, ",\"category\":", 12);
    jw_str(&w, v->category.ptr, v->category.len);
    jw_raw(&w, ",\"status\":", 10);
    jw_str(&w, v->status.ptr, v->status.len);
    jw_raw(&w, ",\"device\":", 10);
    jw_str(&w, v->device.ptr, v->device.len);
    jw_raw(&w, ",\"amount\":", 10);
    jw_amount(&w, v->amount);
    jw_raw(&w, ",\"quantity\":", 12);
    jw_i64(&w, v->quantity);
    jw_raw(&w, ",\"version\":", 11);
    jw_u64(&w, v->version);
    jw_raw(&w, "}", 1);
    if (w.ovf)
        return -1;
    *w.p = '\0';
    return (int)(w.p - buf);
}
