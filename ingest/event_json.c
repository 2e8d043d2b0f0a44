/*
 * event_json.c — JSON event -> row: the jansson path, and the entry points that try the
 * fast path (event_fast.c) first. Rules in event_json.h.
 *
 * The jansson path parses the whole event into a json_t tree, then adds the row with every
 * default and lets each field of the object overwrite its column; on any error the row is
 * popped again, so a batch never holds half an event. Every error message of event
 * decoding is written here: the fast path declines whatever is not a plain success.
 * Unknown fields are counted on the way and, only once the row is in, reported in a
 * second walk over the object's keys (jansson keeps them in the order of the text).
 *
 * A real (a number with '.', 'e' or 'E') for an integer column is judged on its text, not
 * on jansson's double: member_walk finds the text of the value (the k-th member of the
 * text is the k-th jansson iterates) and event_int_from_number (event_fast.c, shared with
 * the fast path) reads it exactly.
 *
 * "Did you mean": a key names a column likely when it equals the name but for ASCII
 * case, else when jutil_closest (ingest/json_util.c) finds the name within 2 edits; only
 * names whose length is within 2 of the key's are compared, which keeps a refused event
 * cheap on wide schemas.
 */
#include "ingest/event_json.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event_fast.h"
#include "engine/json_util.h"
#include "engine/units.h"

#define KEY_SHOWN_MAX 64    /* bytes of an event's key quoted in a message */
#define NUMBER_SHOWN_MAX 40 /* bytes of a number's text quoted in a message */

static const char *event_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a bool";
    default: return "null";
    }
}

/* ---- the text of a member's value ----------------------------------------------------- */

/* jansson keeps a real only as a double, which cannot tell 2.0000000000000001 from 2; an
 * integer column needs the number's text. member_walk finds it: it walks the top-level
 * members of the event's text (which jansson accepted, so only the shape is followed) in
 * the order jansson iterates them, forward only, so an event costs one pass however many
 * of its members are looked at. */
typedef struct member_walk {
    const char *p, *end; /* p: just after member next - 1 (or the '{') */
    int next;            /* index of the member that starts at p; -1: not started */
} member_walk;

static const char *walk_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at a string's opening quote; returns the byte after its closing quote. */
static const char *walk_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\' && p + 1 < end)
            p++;
    return p < end ? p + 1 : end;
}

/* p at a value; returns the byte after it. */
static const char *walk_value(const char *p, const char *end)
{
    if (*p == '"')
        return walk_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = walk_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p;
}

/* The text of member k's value (k at least the index last asked for) and of its key
 * (between the quotes, escapes as written). False if the text has no member k. */
static bool member_text(member_walk *w, int k, const char **key, size_t *klen,
                        const char **val, size_t *vlen)
{
    *key = *val = NULL;
    *klen = *vlen = 0;
    if (w->next < 0) {
        w->p = walk_ws(w->p, w->end);
        if (w->p == w->end || *w->p != '{')
            return false;
        w->p++;
        w->next = 0;
    }
    while (w->next <= k) {
        const char *p = walk_ws(w->p, w->end);
        if (p < w->end && *p == ',')
            p = walk_ws(p + 1, w->end);
        if (p == w->end || *p != '"')
            return false;
        const char *ks = p + 1;
        p = walk_string(p, w->end);
        const char *ke = p - 1; /* the closing quote, unless ':' is missing below */
        p = walk_ws(p, w->end);
        if (p == w->end || *p != ':')
            return false;
        *key = ks;
        *klen = (size_t)(ke - ks);
        p = walk_ws(p + 1, w->end);
        if (p == w->end)
            return false;
        *val = p;
        w->p = walk_value(p, w->end);
        *vlen = (size_t)(w->p - p);
        w->next++;
    }
    return w->next == k + 1;
}

/* The text of the value of member k, whose key jansson gave as key; NULL if it cannot be
 * found (never, for a text jansson accepted as an object). */
static const char *real_text(member_walk *w, int k, const char *key, size_t *len)
{
    const char *ks, *val;
    size_t klen;
    if (!member_text(w, k, &ks, &klen, &val, len) || *len == 0)
        return NULL;
    /* an unescaped key must be the one jansson gave: a check on the order */
    if (!memchr(ks, '\\', klen) && (strlen(key) != klen || memcmp(ks, key, klen) != 0))
        return NULL;
    return val;
}

/* The error for the real written t[0..len), which event_int_from_number refused (why) for
 * column col. */
static int integral_error(const strata_column *col, event_int_verdict why, const char *t,
                          size_t len, strata_err *err)
{
    const char *f = col->name;
    int shown = len > NUMBER_SHOWN_MAX ? NUMBER_SHOWN_MAX : (int)len;
    const char *cut = len > NUMBER_SHOWN_MAX ? "..." : "";
    switch (why) {
    case EVENT_INT_FRACTION:
        if (col->type == STRATA_TIMESTAMP)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %.*s%s is not an integer (epoch milliseconds)", f, shown, t,
                                  cut);
        return strata_err_set(err, STRATA_EINVAL, "%s: %.*s%s is not an integer", f, shown, t, cut);
    case EVENT_INT_NEGATIVE:
        return strata_err_set(err, STRATA_EINVAL, "%s: %.*s%s is negative, the column is uint64", f,
                              shown, t, cut);
    case EVENT_INT_RANGE:
        switch (col->type) {
        case STRATA_TIMESTAMP:
            return strata_err_set(err, STRATA_EINVAL, "%s: %.*s%s ms is outside years 0000-9999",
                                  f, shown, t, cut);
        case STRATA_INT32:
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %.*s%s is out of int32 range (-2147483648 to 2147483647)",
                                  f, shown, t, cut);
        case STRATA_UINT64:
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %.*s%s is out of uint64 range (0 to 18446744073709551615)",
                                  f, shown, t, cut);
        default:
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %.*s%s is out of int64 range (-9223372036854775808 to "
                                  "9223372036854775807)",
                                  f, shown, t, cut);
        }
    default: return strata_err_set(err, STRATA_EINVAL, "%s: expected an integer, got a number", f);
    }
}

/* The value for integer column col of the real that is member k of the event (key key):
 * event_int_from_number on its text, as the fast path does. */
static int integral_real(const strata_column *col, member_walk *w, int k, const char *key,
                         int64_t *out, strata_err *err)
{
    size_t len;
    const char *t = real_text(w, k, key, &len);
    if (!t)
        return strata_err_set(err, STRATA_EINVAL, "%s: expected an integer, got a number", col->name);
    event_int_verdict why = event_int_from_number(col->type, t, len, out);
    return why == EVENT_INT_OK ? 0 : integral_error(col, why, t, len, err);
}

/* ---- values into columns --------------------------------------------------------------- */

static int parse_time(const char *field, const json_t *v, int64_t *out, strata_err *err)
{
    if (json_is_integer(v)) {
        json_int_t t = json_integer_value(v);
        if (t < STRATA_TS_MIN || t > STRATA_TS_MAX)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %lld ms is outside years 0000-9999", field, (long long)t);
        *out = t;
        return 0;
    }
    if (json_is_string(v)) {
        if (units_parse_rfc3339_ms(json_string_value(v), json_string_length(v), out) != 0)
            return strata_err_set(err, STRATA_EINVAL, "%s: '%.64s' is not an RFC 3339 time", field,
                                  json_string_value(v));
        return 0;
    }
    return strata_err_set(err, STRATA_EINVAL,
                          "%s: expected epoch milliseconds or an RFC 3339 string, got %s", field,
                          event_kind(v));
}

/* Writes v, member k (key key) of the event walked by w, into column c of row r. */
static int set_field(row_batch *b, uint32_t r, int c, const json_t *v, member_walk *w, int k,
                     const char *key, strata_err *err)
{
    const strata_column *col = &b->schema->cols[c];
    const char *f = col->name;
    if (json_is_real(v) && col->type != STRATA_FLOAT64 && col->type != STRATA_BOOL &&
        col->type != STRATA_STRING) /* an integer column: integral numbers are fine */
        return integral_real(col, w, k, key, &b->i[c][r], err);
    switch (col->type) {
    case STRATA_TIMESTAMP: return parse_time(f, v, &b->i[c][r], err);
    case STRATA_INT64:
    case STRATA_INT32:
        if (!json_is_integer(v))
            return strata_err_set(err, STRATA_EINVAL, "%s: expected an integer, got %s", f,
                                  event_kind(v));
        if (col->type == STRATA_INT32 &&
            (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX))
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: %lld is out of int32 range (-2147483648 to 2147483647)", f,
                                  (long long)json_integer_value(v));
        b->i[c][r] = json_integer_value(v);
        return 0;
    case STRATA_UINT64:
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0)
                return strata_err_set(err, STRATA_EINVAL, "%s: %lld is negative, the column is uint64",
                                      f, (long long)json_integer_value(v));
            b->i[c][r] = json_integer_value(v);
            return 0;
        }
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            uint64_t u;
            if (event_uint64_from_decimal(s, json_string_length(v), &u) != 0)
                return strata_err_set(err, STRATA_EINVAL, "%s: '%.40s' is not a uint64", f, s);
            b->i[c][r] = (int64_t)u;
            return 0;
        }
        return strata_err_set(err, STRATA_EINVAL, "%s: expected a non-negative integer, got %s", f,
                              event_kind(v));
    case STRATA_FLOAT64:
        if (!json_is_number(v))
            return strata_err_set(err, STRATA_EINVAL, "%s: expected a number, got %s", f, event_kind(v));
        b->f[c][r] = json_number_value(v);
        return 0;
    case STRATA_BOOL:
        if (!json_is_boolean(v))
            return strata_err_set(err, STRATA_EINVAL, "%s: expected true or false, got %s", f,
                                  event_kind(v));
        b->i[c][r] = json_is_true(v);
        return 0;
    case STRATA_STRING:
        if (!json_is_string(v))
            return strata_err_set(err, STRATA_EINVAL, "%s: expected a string, got %s", f, event_kind(v));
        if (row_batch_set_str(b, c, r, json_string_value(v), (uint32_t)json_string_length(v)) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        return 0;
    case STRATA_BYTES: break; /* never a table column */
    }
    return strata_err_set(err, STRATA_EINVAL, "%s: unknown column type", f);
}

/* Bytes of key (valid UTF-8) to quote: at most KEY_SHOWN_MAX, cut between characters. */
static int key_shown_len(const char *key)
{
    size_t n = strlen(key);
    if (n <= KEY_SHOWN_MAX)
        return (int)n;
    n = KEY_SHOWN_MAX;
    while (n > 0 && ((uint8_t)key[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

static bool ascii_case_equal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

const char *event_json_likely_column(const strata_schema *sc, const char *key)
{
    const char *near[STRATA_MAX_COLUMNS];
    size_t n = 0, klen = strlen(key);
    for (int c = 0; c < sc->ncols && c < STRATA_MAX_COLUMNS; c++) {
        const char *name = sc->cols[c].name;
        if (ascii_case_equal(name, key))
            return name;
        size_t nlen = strnlen(name, STRATA_NAME_MAX);
        if (nlen < STRATA_NAME_MAX && nlen + 2 >= klen && klen + 2 >= nlen)
            near[n++] = name;
    }
    return jutil_closest(key, near, n);
}

/* The error for key, which names no column, under STRATA_UNKNOWN_FIELDS_REJECT. */
static int unknown_field_error(const strata_schema *sc, const char *key, strata_err *err)
{
    const char *near = event_json_likely_column(sc, key);
    int shown = key_shown_len(key);
    const char *cut = key[shown] ? "..." : "";
    if (near)
        return strata_err_set(err, STRATA_EINVAL,
                              "%.*s%s: unknown field (did you mean '%s'?); this table rejects events "
                              "with unknown fields (unknown_fields: reject)",
                              shown, key, cut, near);
    return strata_err_set(err, STRATA_EINVAL,
                          "%.*s%s: unknown field; this table rejects events with unknown fields "
                          "(unknown_fields: reject)",
                          shown, key, cut);
}

/* The error for an event without its time field; names a key of root that looks like
 * the time column's name, if one does. */
static int missing_time_error(const strata_schema *sc, json_t *root, strata_err *err)
{
    const char *tname = sc->cols[sc->time_col].name;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (schema_column_index(sc, key) < 0 && event_json_likely_column(sc, key) == tname)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: the time field is missing (the event has '%.*s': did you "
                                  "mean '%s'?)",
                                  tname, key_shown_len(key), key, tname);
    }
    return strata_err_set(err, STRATA_EINVAL, "%s: the time field is missing", tname);
}

int event_json_decode_jansson(const char *text, size_t len, row_batch *b, strata_err *err)
{
    return event_json_decode_jansson_reporting(text, len, b, NULL, err);
}

int event_json_decode_jansson_reporting(const char *text, size_t len, row_batch *b,
                                        const event_unknown_sink *unknown, strata_err *err)
{
    if (len > EVENT_JSON_MAX_BYTES)
        return strata_err_set(err, STRATA_EINVAL, "event of %zu bytes is over the limit of %u",
                              len, EVENT_JSON_MAX_BYTES);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!root)
        return strata_err_set(err, STRATA_EINVAL, "malformed JSON at column %d: %s", je.column,
                              je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = strata_err_set(err, STRATA_EINVAL, "expected a JSON object, got %s", event_kind(root));
        goto done;
    }
    const strata_schema *sc = b->schema;
    const char *tname = sc->cols[sc->time_col].name;
    json_t *tv = json_object_get(root, tname);
    if (!tv || json_is_null(tv)) {
        rc = missing_time_error(sc, root, err);
        goto done;
    }
    int64_t r = row_batch_add_row(b);
    if (r < 0) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *v;
    size_t nunknown = 0;
    member_walk walk = {text, text + len, -1};
    int k = -1; /* index of the member, in the order of the text */
    json_object_foreach(root, key, v) {
        k++;
        int c = schema_column_index(sc, key);
        if (c < 0) {
            if (sc->unknown_fields == STRATA_UNKNOWN_FIELDS_REJECT) {
                rc = unknown_field_error(sc, key, err);
                row_batch_pop_row(b);
                goto done;
            }
            nunknown++;
            continue;
        }
        if (json_is_null(v))
            continue;
        if ((rc = set_field(b, (uint32_t)r, c, v, &walk, k, key, err)) != 0) {
            row_batch_pop_row(b);
            goto done;
        }
    }
    if (nunknown && unknown && unknown->key)
        json_object_foreach(root, key, v) {
            if (schema_column_index(sc, key) < 0)
                unknown->key(unknown->ctx, key, strlen(key));
        }
done:
    json_decref(root);
    return rc;
}

int event_decoder_decode(const event_decoder *d, const char *text, size_t len, row_batch *b,
                         strata_err *err)
{
    return event_decoder_decode_reporting(d, text, len, b, NULL, err);
}

int event_decoder_decode_reporting(const event_decoder *d, const char *text, size_t len,
                                   row_batch *b, const event_unknown_sink *unknown,
                                   strata_err *err)
{
    if (event_json_decode_fast_reporting(d, text, len, b, unknown) == 0)
        return 0;
    return event_json_decode_jansson_reporting(text, len, b, unknown, err);
}

int event_json_decode(const char *text, size_t len, row_batch *b, strata_err *err)
{
    return event_decoder_decode(NULL, text, len, b, err);
}
