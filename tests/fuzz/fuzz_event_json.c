/*
 * fuzz_event_json.c — differential libFuzzer target: the fast event path (event_fast.c)
 * against the jansson path (event_json.c), which is the reference.
 *
 * Schema: every column type — the reference order columns (ts, event_id, user_id, country,
 * category, status, device, amount, quantity, version) plus i int64, n int32 (default 7),
 * u uint64, f float64 (default -1.5), b bool (default true), s string (default "none"),
 * t2 timestamp, two names that differ only in order (ab, ba) and a 63-byte name.
 *
 * Input: when the first byte is 0xFF (never in valid JSON) the rest drives a generator of
 * structured events (keys from the schema and outside it, values of every kind including
 * edge-case numbers, escapes, RFC 3339 and uint64 strings, nested and broken values,
 * whitespace, and an optional byte-level corruption), so the fuzzer reaches deep into
 * well-formed events; any other input is decoded as it is.
 *
 * Checks, aborting with both results printed on any difference, for the schema as it is
 * (unknown fields ignored and reported) and for a copy that rejects unknown fields:
 *   - event_json_decode_fast either declines with the batch unchanged (nrows, nbytes) and
 *     no unknown field reported, or returns 0 and then jansson also returns 0 with the
 *     same row: every int, the bits of every double, the bytes of every string (embedded
 *     NULs included), and the same unknown fields in the same order;
 *   - event_json_decode and event_decoder_decode (the combined paths) return what jansson
 *     returns, with the same error message, the same row and the same unknown fields;
 *   - a refused event reports no unknown field;
 *   - the two settings agree: an event that lands without unknown fields lands alike under
 *     "reject"; one that lands with some is refused under "reject", naming an unknown
 *     field; one refused under "ignore" is refused under "reject" too.
 * Every batch already holds one row, so decoding appends as it does in real use.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event_json.h"

#define NCOLS 20

/* One schema's decoder and batches: [0] unknown fields ignored, [1] rejected. */
typedef struct mode {
    strata_schema schema;
    event_decoder *decoder;
    row_batch jansson, fast, combined, with_decoder;
} mode;

static mode modes[2];
static const strata_schema *const schema_ = &modes[0].schema;

static void init_mode(mode *m)
{
    strata_err err = {0};
    m->decoder = event_decoder_create(&m->schema, &err);
    if (!m->decoder || row_batch_init(&m->jansson, &m->schema, 0) ||
        row_batch_init(&m->fast, &m->schema, 0) || row_batch_init(&m->combined, &m->schema, 0) ||
        row_batch_init(&m->with_decoder, &m->schema, 0))
        abort();
}

static void init(void)
{
    strata_schema schema;
    static const char *const names[NCOLS] = {
        "ts", "event_id", "user_id", "country", "category", "status", "device", "amount",
        "quantity", "version", "i", "n", "u", "f", "b", "s", "t2", "ab", "ba",
        "c23456789012345678901234567890123456789012345678901234567890123"};
    static const strata_type types[NCOLS] = {
        STRATA_TIMESTAMP, STRATA_UINT64, STRATA_UINT64, STRATA_STRING,    STRATA_STRING,
        STRATA_STRING,    STRATA_STRING, STRATA_FLOAT64, STRATA_INT32,    STRATA_UINT64,
        STRATA_INT64,     STRATA_INT32,  STRATA_UINT64,  STRATA_FLOAT64,  STRATA_BOOL,
        STRATA_STRING,    STRATA_TIMESTAMP, STRATA_INT64, STRATA_INT64,   STRATA_STRING};
    schema_init(&schema);
    strcpy(schema.name, "fuzz");
    for (int c = 0; c < NCOLS; c++) {
        strcpy(schema.cols[c].name, names[c]);
        schema.cols[c].type = types[c];
    }
    schema.ncols = NCOLS;
    schema.time_col = 0;
    schema.cols[11].def_i = 7;
    schema.cols[13].def_f = -1.5;
    schema.cols[14].def_i = 1;
    strcpy(schema.cols[15].def_s, "none");
    modes[0].schema = schema;
    schema.unknown_fields = STRATA_UNKNOWN_FIELDS_REJECT;
    modes[1].schema = schema;
    init_mode(&modes[0]);
    init_mode(&modes[1]);
}

/* ---- structured events ---------------------------------------------------------------- */

typedef struct input {
    const uint8_t *p;
    size_t n, at;
} input;

static unsigned take(input *in, unsigned mod)
{
    unsigned v = in->at < in->n ? in->p[in->at++] : 0;
    return mod ? v % mod : v;
}

typedef struct text {
    char buf[8192];
    size_t len;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->len + n >= sizeof t->buf)
        n = sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_ws(text *t, input *in)
{
    static const char *const ws[] = {"", "", "", "", " ", "\t", "\r\n", "  \n ", "\f", "\v"};
    puts_(t, ws[take(in, 10)]);
}

static const char *const keys[] = {
    "ts", "event_id", "user_id", "country", "category", "status", "device", "amount",
    "quantity", "version", "i", "n", "u", "f", "b", "s", "t2", "ab", "ba",
    "c23456789012345678901234567890123456789012345678901234567890123",
    "c234567890123456789012345678901234567890123456789012345678901234", "extra", "x", "",
    "t\\u0073", "s\\u0000", "\xc3\xa9t\xc3\xa9", "TS", "ts ", "a", "bb", "event_i"};

static const char *const ints[] = {
    "0", "-0", "1", "-1", "2147483647", "2147483648", "-2147483648", "-2147483649",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "12345678901234567890123", "01", "-",
    "00", "1704067200123", "253402300799999", "253402300800000", "-62167219200000",
    "-62167219200001", "007", "1x", "--1", "+1", "0x10", "1 2"};

static const char *const reals[] = {
    "1.5", "-0.0", "0.0", "1e308", "1e309", "-1e309", "0.1e-400", "4.9e-324", "2.4e-324",
    "2.5e-324", "1.7976931348623157e308", "1.7976931348623159e308", "0.1", "12.34",
    "9007199254740993.0", "9007199254740993e0", "1e22", "1e23", "123456789012345678e-10",
    "0.30000000000000004", "1.", ".5", "1e", "1e+", "1E-2", "1.0e+00", "2.2250738585072011e-308",
    "2.2250738585072012e-308", "1e-22", "8.98846567431158e307", "100000000000000000000000.0",
    "0.000000000000000000000000000001", "1e99999999999999999999", "1e-99999999999999999999",
    "3.141592653589793238462643383279", "NaN", "Infinity", "-Infinity"};

static const char *const strs[] = {
    "", "US", "books", "paid", "mobile", "h\\u00e9", "\\ud83d\\ude00", "\\ud83d", "\\ude00",
    "\\ud83dx", "\\ud83d\\u0041", "\\u0000", "a\\u0000b", "\\\"\\\\\\/\\b\\f\\n\\r\\t", "\\x",
    "\\u12G4", "\\u00", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc0\x80", "\xed\xa0\x80",
    "\xf4\x90\x80\x80", "\xff", "\xe2\x82", "\x01", "\x7f", "2024-01-01T00:00:00Z",
    "2024-01-01", "2024-02-29T12:00:00.123+01:00", "2023-02-29", "2016-12-31T23:59:60Z",
    "9999-12-31T23:59:59.999Z", "18446744073709551615", "18446744073709551616", "0", "007",
    "-1", "+1", " 1", "\\t1", "1\\u0000", "12x", "\\u0031\\u0032", "2024-01-01T00:00:00\\u005a"};

static const char *const odd_values[] = {"true", "false", "null", "tru", "nul", "falsey",
                                         "True", "{}", "[]", "[1, 2]", "{\"a\": 1}",
                                         "\"open", "", "truex", "nullnull", "[", "{"};

/* A number assembled from input bytes: sign, digits, fraction, exponent. */
static void put_composed_number(text *t, input *in)
{
    char num[96];
    size_t k = 0;
    if (take(in, 3) == 0)
        num[k++] = '-';
    unsigned nd = 1 + take(in, take(in, 2) ? 17 : 24); /* mostly what fits 2^53 */
    for (unsigned d = 0; d < nd && k < 40; d++)
        num[k++] = (char)('0' + take(in, 10));
    unsigned shape = take(in, 4);
    if (shape & 1) {
        num[k++] = '.';
        unsigned nf = 1 + take(in, take(in, 2) ? 8 : 24);
        for (unsigned d = 0; d < nf && k < 70; d++)
            num[k++] = (char)('0' + take(in, 10));
    }
    if (shape & 2) {
        num[k++] = take(in, 2) ? 'e' : 'E';
        unsigned sign = take(in, 3);
        if (sign)
            num[k++] = sign == 1 ? '-' : '+';
        /* mostly near the edge of exact powers of ten (1e22), else up to past 1e308 */
        unsigned e = take(in, 0);
        k += (size_t)snprintf(num + k, sizeof num - k, "%u", e < 192 ? e % 48 : (e - 192) * 6);
    }
    put(t, num, k);
}

static void put_value(text *t, input *in)
{
    char tmp[64];
    switch (take(in, 9)) {
    case 0: puts_(t, ints[take(in, sizeof ints / sizeof ints[0])]); break;
    case 1: puts_(t, reals[take(in, sizeof reals / sizeof reals[0])]); break;
    case 2: put_composed_number(t, in); break;
    case 3:
    case 4:
        puts_(t, "\"");
        puts_(t, strs[take(in, sizeof strs / sizeof strs[0])]);
        puts_(t, "\"");
        break;
    case 5: { /* raw input bytes as a string body */
        puts_(t, "\"");
        unsigned n = take(in, 16);
        for (unsigned k = 0; k < n; k++) {
            char c = (char)take(in, 0);
            put(t, &c, 1);
        }
        puts_(t, "\"");
        break;
    }
    case 6: { /* a 64-bit integer from input bytes */
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | take(in, 0);
        if (take(in, 2))
            snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        else
            snprintf(tmp, sizeof tmp, "\"%llu\"", (unsigned long long)v);
        puts_(t, tmp);
        break;
    }
    case 7: puts_(t, odd_values[take(in, 3)]); break; /* true, false, null */
    default: puts_(t, odd_values[take(in, sizeof odd_values / sizeof odd_values[0])]); break;
    }
}

static void build_event(text *t, input *in)
{
    t->len = 0;
    put_ws(t, in);
    puts_(t, "{");
    unsigned nfields = take(in, 14);
    bool ts_first = take(in, 4) != 0;
    for (unsigned k = 0; k < nfields + ts_first; k++) {
        if (k)
            puts_(t, take(in, 32) ? "," : ";");
        put_ws(t, in);
        const char *key = k == 0 && ts_first ? "ts" : keys[take(in, sizeof keys / sizeof keys[0])];
        puts_(t, "\"");
        puts_(t, key);
        puts_(t, "\"");
        put_ws(t, in);
        puts_(t, ":");
        put_ws(t, in);
        put_value(t, in);
        put_ws(t, in);
    }
    puts_(t, take(in, 32) ? "}" : "},");
    put_ws(t, in);
    unsigned tail = take(in, 16);
    if (tail == 1)
        puts_(t, "x");
    else if (tail == 2)
        puts_(t, "{}");
    if (take(in, 8) == 0 && t->len) { /* one corrupted byte */
        size_t at = take(in, 0) * t->len / 256;
        t->buf[at] = (char)take(in, 0);
    }
    if (take(in, 16) == 0 && t->len) /* cut short */
        t->len = take(in, 0) * t->len / 256;
}

/* ---- comparison --------------------------------------------------------------------- */

static void dump(const char *what, const char *txt, size_t len)
{
    fprintf(stderr, "%s: input (%zu bytes): '", what, len);
    fwrite(txt, 1, len, stderr);
    fprintf(stderr, "'\n");
}

/* Aborts unless row ra of a equals row rb of b, column by column. */
static void same_row(const row_batch *a, uint32_t ra, const row_batch *b, uint32_t rb,
                     const char *what, const char *txt, size_t len)
{
    for (int c = 0; c < schema_->ncols; c++) {
        strata_type t = schema_->cols[c].type;
        int same;
        if (strata_type_is_int(t)) {
            same = a->i[c][ra] == b->i[c][rb];
        } else if (t == STRATA_FLOAT64) {
            same = memcmp(&a->f[c][ra], &b->f[c][rb], sizeof(double)) == 0;
        } else {
            strata_str x = row_batch_get_str(a, c, ra), y = row_batch_get_str(b, c, rb);
            same = x.len == y.len && (x.len == 0 || memcmp(x.ptr, y.ptr, x.len) == 0);
        }
        if (!same) {
            dump(what, txt, len);
            fprintf(stderr, "column %s differs\n", schema_->cols[c].name);
            abort();
        }
    }
}

static void reset(row_batch *b)
{
    row_batch_clear(b);
    if (row_batch_add_row(b) < 0) /* the row already there */
        abort();
}

/* The unknown fields one decode reported, as "<len>:<bytes>;" each, in order. */
typedef struct key_list {
    char buf[16384];
    size_t len;
    unsigned n;
    bool overflow;
} key_list;

static void record_key(void *ctx, const char *name, size_t len)
{
    key_list *l = ctx;
    char head[24];
    int h = snprintf(head, sizeof head, "%zu:", len);
    l->n++;
    if (l->len + (size_t)h + len + 1 > sizeof l->buf) {
        l->overflow = true;
        return;
    }
    memcpy(l->buf + l->len, head, (size_t)h);
    memcpy(l->buf + l->len + h, name, len);
    l->len += (size_t)h + len;
    l->buf[l->len++] = ';';
}

static event_unknown_sink key_list_start(key_list *l)
{
    l->len = 0;
    l->n = 0;
    l->overflow = false;
    return (event_unknown_sink){record_key, l};
}

static bool key_list_same(const key_list *a, const key_list *b)
{
    return a->n == b->n && a->len == b->len && a->overflow == b->overflow &&
           memcmp(a->buf, b->buf, a->len) == 0;
}

/* What the jansson path gave under one setting. */
typedef struct outcome {
    int rc;
    strata_err err;
    key_list keys;
} outcome;

static void check_mode(mode *m, const char *txt, size_t len, outcome *out)
{
    static key_list kf, kd;
    reset(&m->jansson);
    reset(&m->fast);
    reset(&m->combined);
    reset(&m->with_decoder);
    strata_err ec = {0}, ed = {0};
    memset(&out->err, 0, sizeof out->err);
    event_unknown_sink sj = key_list_start(&out->keys);
    int rj = out->rc = event_json_decode_jansson_reporting(txt, len, &m->jansson, &sj, &out->err);
    const strata_err *ej = &out->err;
    if (rj != 0 && (ej->msg[0] == 0 || m->jansson.nrows != 1)) {
        dump("jansson error without message or with a row", txt, len);
        abort();
    }
    if (rj != 0 && out->keys.n != 0) {
        dump("jansson refused the event but reported unknown fields", txt, len);
        abort();
    }

    uint64_t nbytes = m->fast.nbytes;
    event_unknown_sink sf = key_list_start(&kf);
    int rf = event_json_decode_fast_reporting(m->decoder, txt, len, &m->fast, &sf);
    if (rf == EVENT_JSON_DECLINED) {
        if (m->fast.nrows != 1 || m->fast.nbytes != nbytes || kf.n != 0) {
            dump("fast path declined but changed the batch or reported unknown fields", txt, len);
            abort();
        }
    } else if (rf != 0 || rj != 0) {
        dump("fast path accepted what jansson refused", txt, len);
        fprintf(stderr, "fast %d, jansson %d (%s)\n", rf, rj, ej->msg);
        abort();
    } else {
        if (m->fast.nrows != 2)
            abort();
        same_row(&m->jansson, 1, &m->fast, 1, "fast path row", txt, len);
        if (!key_list_same(&kf, &out->keys)) {
            dump("fast path reported other unknown fields", txt, len);
            fprintf(stderr, "fast '%.*s', jansson '%.*s'\n", (int)kf.len, kf.buf,
                    (int)out->keys.len, out->keys.buf);
            abort();
        }
    }

    /* event_json_decode builds the lookup per call and reports nothing. */
    int rc = event_json_decode(txt, len, &m->combined, &ec);
    event_unknown_sink sd = key_list_start(&kd);
    int rd = event_decoder_decode_reporting(m->decoder, txt, len, &m->with_decoder, &sd, &ed);
    if (rc != rj || rd != rj || (rj != 0 && (strcmp(ec.msg, ej->msg) || strcmp(ed.msg, ej->msg)))) {
        dump("combined path differs", txt, len);
        fprintf(stderr, "jansson %d '%s', event_json_decode %d '%s', decoder %d '%s'\n", rj,
                ej->msg, rc, ec.msg, rd, ed.msg);
        abort();
    }
    if (!key_list_same(&kd, &out->keys)) {
        dump("combined path reported other unknown fields", txt, len);
        abort();
    }
    if (m->combined.nrows != m->jansson.nrows || m->with_decoder.nrows != m->jansson.nrows)
        abort();
    if (rj == 0) {
        same_row(&m->jansson, 1, &m->combined, 1, "event_json_decode row", txt, len);
        same_row(&m->jansson, 1, &m->with_decoder, 1, "event_decoder_decode row", txt, len);
    }
}

static void check(const char *txt, size_t len)
{
    static outcome ignore, reject;
    check_mode(&modes[0], txt, len, &ignore);
    check_mode(&modes[1], txt, len, &reject);
    bool agree;
    if (ignore.rc != 0)
        agree = reject.rc != 0;
    else if (ignore.keys.n == 0)
        agree = reject.rc == 0 && reject.keys.n == 0;
    else
        agree = reject.rc != 0 && strstr(reject.err.msg, ": unknown field") != NULL;
    if (!agree) {
        dump("the unknown_fields settings disagree", txt, len);
        fprintf(stderr, "ignore %d '%s' (%u unknown), reject %d '%s'\n", ignore.rc, ignore.err.msg,
                ignore.keys.n, reject.rc, reject.err.msg);
        abort();
    }
    if (ignore.rc == 0 && reject.rc == 0)
        same_row(&modes[0].jansson, 1, &modes[1].jansson, 1, "ignore against reject", txt, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!modes[0].decoder)
        init();
    const char *src = (const char *)data;
    static text t;
    if (size > 0 && data[0] == 0xFF) {
        input in = {data + 1, size - 1, 0};
        build_event(&t, &in);
        src = t.buf;
        size = t.len;
    }
    /* A copy of exactly size bytes, so reading one past the event is caught by ASan. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, src, size);
    check(copy, size);
    free(copy);
    return 0;
}
