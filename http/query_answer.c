/*
 * query_answer.c — a query_result as JSON answer text, and the {"error": ...} body (formats
 * in query_answer.h).
 *
 * Written into a bytebuf (engine/buf.h) with engine/text.h, not jansson, since answers can
 * hold 100k rows: integers digit by digit (all of uint64 and int64 exactly), floats in
 * their shortest round-trip form, strings escaped with invalid UTF-8 replaced by U+FFFD.
 * A failed allocation is noted in the buffer and checked once, when the text is taken.
 */
#include "http/query_answer.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/buf.h"
#include "engine/text.h"
#include "engine/units.h"

/* Appends the NUL-terminated s (for the literals below, strlen is a constant). */
static inline void put(bytebuf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void put_cell(bytebuf *b, const query_cell *c)
{
    switch (c->kind) {
    case QC_INT: text_put_i64(b, c->v.i); break;
    case QC_UINT: text_put_u64(b, c->v.u); break;
    case QC_FLOAT: text_put_json_double(b, c->v.f); break;
    case QC_STR: text_json_string(b, c->v.s.ptr ? c->v.s.ptr : "", c->v.s.ptr ? c->v.s.len : 0); break;
    case QC_BOOL: put(b, c->v.b ? "true" : "false"); break;
    case QC_NULL:
    default: put(b, "null"); break;
    }
}

char *query_answer_json(const query_result *r, const strata_query *q, size_t *len)
{
    bytebuf b = {0};
    (void)q;
    int ncols = r->ncols < 0 ? 0 : r->ncols;
    put(&b, "{\"columns\":[");
    for (int c = 0; c < ncols; c++) {
        put(&b, c ? ",{\"name\":" : "{\"name\":");
        text_json_string(&b, r->names[c], strnlen(r->names[c], QUERY_NAME_MAX));
        put(&b, ",\"type\":");
        if (r->types[c])
            text_json_string(&b, r->types[c], strlen(r->types[c]));
        else
            put(&b, "null");
        put(&b, "}");
    }
    put(&b, "],\"rows\":[");
    for (uint64_t row = 0; row < r->nrows && !b.oom; row++) {
        put(&b, row ? ",[" : "[");
        for (int c = 0; c < ncols; c++) {
            if (c)
                put(&b, ",");
            put_cell(&b, query_result_cell(r, row, c));
        }
        put(&b, "]");
    }
    put(&b, "],\"stats\":{\"rows_read\":");
    text_put_u64(&b, r->rows_read);
    put(&b, ",\"segments_read\":");
    text_put_u64(&b, r->segments_read);
    put(&b, ",\"elapsed_ms\":");
    text_put_json_double(&b, round(r->elapsed_ms * 1000) / 1000); /* microseconds are plenty */
    if (r->raw_expired) {
        /* retention dropped the raw rows before it: say so, and whether a tier answered */
        char te[40];
        units_format_rfc3339_ms(r->raw_expired_before, te, sizeof te);
        put(&b, ",\"raw_expired_before\":");
        text_json_string(&b, te, strlen(te));
    }
    if (r->rollup_interval_ms <= 0) {
        put(&b, ",\"source\":\"raw\"");
        if (r->rollup_skipped) {
            put(&b, ",\"rollup_skipped\":");
            text_json_string(&b, r->rollup_skipped, strlen(r->rollup_skipped));
        }
        put(&b, "}}");
        return buf_take_cstr(&b, len);
    }
    /* which served what: the tier its clean buckets in [from, to), raw rows the rest */
    put(&b, r->raw_ranges ? ",\"source\":\"rollup+raw\"" : ",\"source\":\"rollup\"");
    char iv[32], t0[40], t1[40];
    units_format_duration_ms(r->rollup_interval_ms, iv, sizeof iv);
    units_format_rfc3339_ms(r->rollup_from, t0, sizeof t0);
    units_format_rfc3339_ms(r->rollup_to, t1, sizeof t1);
    put(&b, ",\"rollup\":{\"tier\":");
    text_json_string(&b, iv, strlen(iv));
    put(&b, ",\"dimensions\":[");
    for (const char *d = r->rollup_dims; *d;) {
        size_t n = strcspn(d, ",");
        if (d != r->rollup_dims)
            put(&b, ",");
        text_json_string(&b, d, n);
        d += n + (d[n] == ',');
    }
    put(&b, "],\"from\":");
    text_json_string(&b, t0, strlen(t0));
    put(&b, ",\"to\":");
    text_json_string(&b, t1, strlen(t1));
    put(&b, ",\"buckets\":");
    text_put_u64(&b, r->rollup_buckets);
    put(&b, ",\"rows\":");
    text_put_u64(&b, r->rollup_rows);
    put(&b, ",\"dirty_buckets\":");
    text_put_u64(&b, r->rollup_dirty);
    put(&b, ",\"raw_ranges\":");
    text_put_u64(&b, r->raw_ranges);
    put(&b, "}}}");
    return buf_take_cstr(&b, len);
}

char *query_answer_error(const char *message, size_t *len)
{
    bytebuf b = {0};
    if (!message)
        message = "unknown error";
    put(&b, "{\"error\":");
    text_json_string(&b, message, strlen(message));
    put(&b, "}");
    return buf_take_cstr(&b, len);
}
