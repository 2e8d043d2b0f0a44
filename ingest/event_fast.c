/*
 * event_fast.c — the fast path of JSON event decoding (rules in event_json.h): one pass over
 * the bytes of a flat object straight into a row, no tree and no allocation for ordinary
 * events. Also event_decoder, the per-schema column lookup it uses.
 * (Over 800 lines on purpose: the string scanner, the number reader and the row writer
 * share the cursor and are static, so the compiler inlines them into the one decoding
 * loop that bench_decode measures.)
 *
 * How it works:
 *   - event_decoder maps a key to its column with an open-addressing table of 256 one-byte
 *     slots (column index + 1), hashed on the key's length and three of its bytes, probed
 *     linearly; a hit is confirmed by length and memcmp. Equal column names keep the first
 *     column, as schema_column_index does. Built once per schema (event_decoder_create), or
 *     on the stack for a single call (no decoder given): ~ncols short hashes.
 *   - parse_event walks the object once: for each key that names a column it records the
 *     value's kind and bytes, with integers and reals already converted; for other keys it
 *     only validates the value and remembers the key for the duplicate check (a 256-bit
 *     Bloom filter in front of a list). Columns already seen are a 128-bit set.
 *   - store_event adds the row (every default, as the jansson path does), writes each
 *     recorded value with the jansson path's type rules, and on the first value that does
 *     not fit pops the row and restores the batch's byte count: the batch is as before.
 *   - then the remembered unknown keys (in the order of the text, as jansson keeps them)
 *     go to the caller's event_unknown_sink: a key's bytes are its value, since escaped
 *     keys are declined. Under STRATA_UNKNOWN_FIELDS_REJECT the first unknown key
 *     declines the event (the jansson path writes the error).
 * Anything else (see "declines" below) returns EVENT_JSON_DECLINED, and event_json.c runs
 * jansson on the same bytes, so every error message is jansson's.
 *
 * Why it is exact — each rule of jansson 2.14 (src/load.c, utf.c, strconv.c) that can
 * apply to what this path accepts:
 *   - syntax: ws* '{' ws* string ws* ':' ws* value (ws* ',' ws* string ws* ':' ws* value)*
 *     ws* '}' ws* and then the end of the input (jansson's end-of-file check), ws being
 *     exactly space, tab, CR, LF; values are strings, numbers, true, false, null. A literal
 *     followed by letters ("truex") is caught because the next byte must be ws, ',' or '}'.
 *   - strings: bytes 0x00-0x1F refused; bytes >= 0x80 must form UTF-8 sequences that
 *     jansson's utf8_check_first/utf8_check_full accept (no overlongs, no surrogates, at
 *     most U+10FFFF); escapes are \" \\ \/ \b \f \n \r \t and \u with four hex digits; a
 *     high surrogate must be followed at once by \u and a low surrogate, a lone low
 *     surrogate is refused. \u0000 decodes to a NUL byte (JSON_ALLOW_NUL).
 *   - keys: escaped keys are declined, so a key's bytes are its value: it holds no NUL
 *     (jansson refuses NUL in keys) and byte comparison is jansson's duplicate test.
 *   - numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; without '.', 'e' or 'E' an
 *     integer that must fit int64 (jansson's strtoll: "too big integer" otherwise; "-0" is
 *     0), else a real: strtod's correctly rounded value, refused when it overflows to
 *     +-HUGE_VAL (underflow to 0 or a subnormal is accepted, as jansson does). Reals with at
 *     most 19 significant digits w <= 2^53 and a decimal exponent within +-22 are computed
 *     as one exact-operand multiplication or division by an exact power of ten (Clinger's
 *     fast path), which rounds once and so equals strtod; zero mantissas give a signed
 *     zero; the rest go to strtod on a NUL-terminated copy of the validated token (tokens
 *     of 256 bytes or more are declined). If the locale's decimal point is not '.', strtod
 *     stops early and the event is declined. Needs FLT_EVAL_METHOD == 0 for the fast path.
 *   - unknown keys' values are validated exactly like the others (a too big integer or an
 *     overflowing real in an ignored field is still jansson's error).
 *   - column rules (event_json.c set_field): the same checks, in store_value; uint64
 *     strings use event_uint64_from_decimal, and a real (a number with '.', 'e' or 'E')
 *     for an integer column event_int_from_number on the real's token, which decides
 *     from the digits alone (not from the double) whether it is an integer in range —
 *     the very functions the jansson path calls.
 * Declines: everything jansson refuses, and also nested values, escaped keys, more than
 * UNKNOWN_KEYS_MAX unknown keys (any one under STRATA_UNKNOWN_FIELDS_REJECT), long reals
 * strtod would need, an empty object, inputs over EVENT_JSON_MAX_BYTES, schemas with an
 * unterminated column name or a bad time column, and out-of-memory.
 */
#include "ingest/event_fast.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event_json.h"
#include "engine/text.h"
#include "engine/units.h"

/* ---- column lookup ------------------------------------------------------------------- */

#define LOOKUP_SLOTS 256 /* > 2 * STRATA_MAX_COLUMNS: a probe always ends at an empty slot */

struct event_decoder {
    const strata_schema *schema; /* borrowed */
    bool usable;                 /* false: the fast path declines everything */
    bool reject_unknown;         /* STRATA_UNKNOWN_FIELDS_REJECT: decline at an unknown key */
    uint8_t name_len[STRATA_MAX_COLUMNS];
    uint8_t slot[LOOKUP_SLOTS]; /* column index + 1; 0 = empty */
};

static unsigned key_slot(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    unsigned h = (unsigned)len * 151u + (uint8_t)p[0] * 31u + (uint8_t)p[len - 1] * 7u +
                 (uint8_t)p[len >> 1];
    return (h ^ (h >> 8)) & (LOOKUP_SLOTS - 1);
}

/* Column named p[0..len), or -1. */
static int decoder_column(const event_decoder *d, const char *p, size_t len)
{
    if (len >= STRATA_NAME_MAX)
        return -1;
    for (unsigned h = key_slot(p, len);; h = (h + 1) & (LOOKUP_SLOTS - 1)) {
        unsigned s = d->slot[h];
        if (s == 0)
            return -1;
        int c = (int)s - 1;
        if (d->name_len[c] == len && memcmp(d->schema->cols[c].name, p, len) == 0)
            return c;
    }
}

static void decoder_build(event_decoder *d, const strata_schema *sc)
{
    d->schema = sc;
    d->usable = sc && sc->ncols > 0 && sc->ncols <= STRATA_MAX_COLUMNS && sc->time_col >= 0 &&
                sc->time_col < sc->ncols;
    memset(d->slot, 0, sizeof d->slot);
    if (!d->usable)
        return;
    d->reject_unknown = sc->unknown_fields == STRATA_UNKNOWN_FIELDS_REJECT;
    for (int c = 0; c < sc->ncols; c++) {
        const char *name = sc->cols[c].name;
        size_t len = strnlen(name, STRATA_NAME_MAX);
        if (len == STRATA_NAME_MAX) {
            d->usable = false; /* not a C string: the jansson path's strcmp decides */
            return;
        }
        d->name_len[c] = (uint8_t)len;
        if (decoder_column(d, name, len) >= 0)
            continue; /* a second column of the same name is never matched */
        unsigned h = key_slot(name, len);
        while (d->slot[h])
            h = (h + 1) & (LOOKUP_SLOTS - 1);
        d->slot[h] = (uint8_t)(c + 1);
    }
}

event_decoder *event_decoder_create(const strata_schema *schema, strata_err *err)
{
    event_decoder *d = malloc(sizeof *d);
    if (!d) {
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        return NULL;
    }
    decoder_build(d, schema);
    return d;
}

void event_decoder_free(event_decoder *d)
{
    free(d);
}

/* ---- one pass over the object -------------------------------------------------------- */

enum { V_NULL, V_FALSE, V_TRUE, V_INT, V_REAL, V_STRING };

typedef struct field_value {
    uint8_t kind;
    bool escaped;  /* V_STRING: holds a backslash, so it needs decoding */
    int col;
    uint32_t len;  /* V_STRING: bytes between the quotes; V_REAL: of the token */
    const char *p; /* V_STRING: first byte after the opening quote; V_REAL: the token */
    int64_t i;     /* V_INT */
    double f;      /* V_REAL */
} field_value;

#define UNKNOWN_KEYS_MAX 256
#define REAL_TOKEN_MAX 256

typedef struct unknown_key {
    const char *p;
    uint32_t len, hash;
} unknown_key;

typedef struct parsed_event {
    int nfields;
    int time_field; /* index in fields of the time column's value, or -1 */
    uint64_t seen[STRATA_MAX_COLUMNS / 64];
    field_value fields[STRATA_MAX_COLUMNS];
    int nunknown;
    uint64_t unknown_bloom[4];
    unknown_key unknown[UNKNOWN_KEYS_MAX];
} parsed_event;

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The exponent of a number, *pp at its 'e' or 'E' (nothing to read elsewhere: *exp stays
 * 0): *exp signed, its magnitude saturated once it reaches cap (a huge exponent stays huge
 * and exact comparisons still hold), *pp after it. False when 'e' has no digits. */
static bool scan_exponent(const char **pp, const char *end, int64_t cap, int64_t *exp)
{
    const char *p = *pp;
    *exp = 0;
    if (p == end || (*p != 'e' && *p != 'E'))
        return true;
    p++;
    bool neg = false;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    const char *digits = p;
    for (; p < end && is_digit(*p); p++)
        if (*exp < cap)
            *exp = *exp * 10 + (*p - '0');
    if (p == digits)
        return false;
    if (neg)
        *exp = -*exp;
    *pp = p;
    return true;
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Value of four hex digits at p, or -1. */
static int hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Scans a string body starting after its opening quote; returns the closing quote, or
 * NULL for anything jansson refuses. Sets *escaped when the body holds an escape. */
static const char *scan_string(const char *p, const char *end, bool *escaped)
{
    while (p < end) {
        uint8_t c = (uint8_t)*p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
        } else if (c == '"') {
            return p;
        } else if (c == '\\') {
            *escaped = true;
            if (end - p < 2)
                return NULL;
            char e = p[1];
            if (e == 'u') {
                if (end - p < 6)
                    return NULL;
                int v = hex4(p + 2);
                if (v < 0)
                    return NULL;
                p += 6;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                        return NULL;
                    int lo = hex4(p + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return NULL;
                    p += 6;
                } else if (v >= 0xDC00 && v <= 0xDFFF) {
                    return NULL;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                p += 2;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            size_t n = text_utf8_len((const unsigned char *)p, (size_t)(end - p));
            if (n == 0)
                return NULL;
            p += n;
        } else {
            return NULL; /* control character */
        }
    }
    return NULL;
}

/* Writes code point cp as UTF-8 at o; returns the byte count. */
static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escapes of a body scan_string accepted into out (at least len bytes: no
 * escape decodes to more bytes than it takes). Returns the decoded length. */
static uint32_t decode_string(const char *p, uint32_t len, char *out)
{
    const char *end = p + len;
    char *o = out;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t plain = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memcpy(o, p, plain);
        o += plain;
        p += plain;
        if (!bs)
            break;
        char e = p[1];
        if (e == 'u') {
            uint32_t cp = (uint32_t)hex4(p + 2);
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = (uint32_t)hex4(p + 2);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += utf8_put(cp, o);
            continue;
        }
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: *o++ = e; break; /* " \ / */
        }
        p += 2;
    }
    return (uint32_t)(o - out);
}

#if FLT_EVAL_METHOD == 0
/* Powers of ten that doubles hold exactly. */
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Appends the digits p..e to the mantissa *w; false once it would hold more than 19
 * significant digits (it might not fit, and the fast conversion would not apply). The
 * count starts at the first non-zero digit, not at a non-zero *w: 18446744073709551616
 * (2^64) used to wrap *w to 0 uncounted, and 18446744073709551616.0 became 0.0. */
static bool add_digits(const char *p, const char *e, uint64_t *w, int *sig)
{
    for (; p < e; p++) {
        if ((*sig != 0 || *p != '0') && ++*sig > 19)
            return false;
        *w = *w * 10 + (uint64_t)(*p - '0');
    }
    return true;
}
#endif

/* The double of a validated real token tok[0..toklen), as strtod gives it: digits are the
 * integer digits ip..ie and fraction digits fp..fe (fp == fe: none), exp the (saturated)
 * exponent. Returns 0, or -1 when it overflows or cannot be converted here. */
static int real_value(const char *tok, size_t toklen, bool neg, const char *ip, const char *ie,
                      const char *fp, const char *fe, int64_t exp, double *out)
{
#if FLT_EVAL_METHOD == 0
    uint64_t w = 0;
    int sig = 0; /* digits from the first non-zero one */
    if (add_digits(ip, ie, &w, &sig) && add_digits(fp, fe, &w, &sig)) {
        int64_t e10 = exp - (fe - fp);
        if (w == 0) {
            *out = neg ? -0.0 : 0.0;
            return 0;
        }
        if (w <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
            double d = (double)w;
            d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
            *out = neg ? -d : d;
            return 0;
        }
    }
#else
    (void)neg, (void)ip, (void)ie, (void)fp, (void)fe, (void)exp;
#endif
    char buf[REAL_TOKEN_MAX];
    if (toklen >= sizeof buf)
        return -1;
    memcpy(buf, tok, toklen);
    buf[toklen] = 0;
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + toklen)
        return -1; /* a locale whose decimal point is not '.' */
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return -1; /* jansson: "real number overflow" */
    *out = d;
    return 0;
}

/* Scans a number at p (a '-' or a digit); returns the byte after it with v filled, or NULL
 * for anything jansson refuses or this path does not convert. */
static const char *scan_number(const char *p, const char *end, field_value *v)
{
    const char *tok = p;
    bool neg = *p == '-';
    if (neg && ++p == end)
        return NULL;
    const char *ip = p;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return NULL; /* leading zero */
    } else if (is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    const char *ie = p;
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        if (ie - ip > 19)
            return NULL; /* >= 10^19: too big for int64 */
        uint64_t m = 0;
        for (const char *q = ip; q < ie; q++)
            m = m * 10 + (uint64_t)(*q - '0');
        if (m > (uint64_t)INT64_MAX + neg)
            return NULL; /* jansson: "too big integer" */
        v->kind = V_INT;
        v->i = !neg ? (int64_t)m : m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
        return p;
    }
    const char *fp = p, *fe = p;
    if (*p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        fp = p;
        while (p < end && is_digit(*p))
            p++;
        fe = p;
    }
    int64_t exp = 0;
    if (!scan_exponent(&p, end, 1000000 /* far past any double */, &exp))
        return NULL;
    v->kind = V_REAL;
    v->p = tok;
    v->len = (uint32_t)(p - tok); /* < EVENT_JSON_MAX_BYTES */
    if (real_value(tok, (size_t)(p - tok), neg, ip, ie, fp, fe, exp, &v->f) != 0)
        return NULL;
    return p;
}

/* Scans one value at p (not at the end); returns the byte after it, or NULL. */
static const char *scan_value(const char *p, const char *end, field_value *v)
{
    switch (*p) {
    case '"': {
        bool escaped = false;
        const char *q = scan_string(p + 1, end, &escaped);
        if (!q)
            return NULL;
        v->kind = V_STRING;
        v->escaped = escaped;
        v->p = p + 1;
        v->len = (uint32_t)(q - (p + 1));
        return q + 1;
    }
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            return NULL;
        v->kind = V_TRUE;
        return p + 4;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            return NULL;
        v->kind = V_FALSE;
        return p + 5;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return NULL;
        v->kind = V_NULL;
        return p + 4;
    default:
        if (*p == '-' || is_digit(*p))
            return scan_number(p, end, v);
        return NULL; /* nested values and everything jansson refuses */
    }
}

/* Remembers a key that names no column; -1 when it was seen before (jansson: "duplicate
 * object key") or there are too many to remember. */
static int note_unknown_key(parsed_event *ev, const char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t k = 0; k < len; k++)
        h = (h ^ (uint8_t)p[k]) * 16777619u;
    uint64_t bit = UINT64_C(1) << (h & 63);
    uint64_t *word = &ev->unknown_bloom[(h >> 6) & 3];
    if (*word & bit)
        for (int k = 0; k < ev->nunknown; k++)
            if (ev->unknown[k].hash == h && ev->unknown[k].len == len &&
                memcmp(ev->unknown[k].p, p, len) == 0)
                return -1;
    if (ev->nunknown == UNKNOWN_KEYS_MAX)
        return -1;
    *word |= bit;
    ev->unknown[ev->nunknown++] = (unknown_key){p, (uint32_t)len, h};
    return 0;
}

/* Parses the whole input as one flat object; 0, or -1 to decline. */
static int parse_event(const event_decoder *d, const char *p, const char *end, parsed_event *ev)
{
    ev->nfields = 0;
    ev->time_field = -1;
    memset(ev->seen, 0, sizeof ev->seen);
    ev->nunknown = 0;
    memset(ev->unknown_bloom, 0, sizeof ev->unknown_bloom);
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (p == end || *p != '"')
            return -1; /* also the empty object: it has no time field */
        const char *key = ++p;
        bool escaped = false;
        p = scan_string(p, end, &escaped);
        if (!p || escaped)
            return -1;
        size_t klen = (size_t)(p - key);
        p++;
        field_value ignored, *v = &ignored;
        int c = decoder_column(d, key, klen);
        if (c >= 0) {
            uint64_t bit = UINT64_C(1) << (c & 63);
            if (ev->seen[c >> 6] & bit)
                return -1; /* duplicate key */
            ev->seen[c >> 6] |= bit;
            if (c == d->schema->time_col)
                ev->time_field = ev->nfields;
            v = &ev->fields[ev->nfields++];
            v->col = c;
        } else if (d->reject_unknown || note_unknown_key(ev, key, klen) != 0) {
            return -1; /* the jansson path writes the error */
        }
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        if (p == end || !(p = scan_value(p, end, v)))
            return -1;
        p = skip_ws(p, end);
        if (p == end)
            return -1;
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (*p != '}')
            return -1;
        return skip_ws(p + 1, end) == end ? 0 : -1; /* jansson's end-of-file check */
    }
}

/* ---- the row ------------------------------------------------------------------------- */

#define STRING_STACK_BYTES 512

/* The bytes of string value v, decoded when escaped (into stack, or into *heap, which the
 * caller frees, for longer ones). NULL when out of memory. */
static const char *string_bytes(const field_value *v, char *stack, char **heap, uint32_t *len)
{
    if (!v->escaped) {
        *len = v->len;
        return v->p;
    }
    char *out = stack;
    if (v->len > STRING_STACK_BYTES) {
        free(*heap);
        if (!(*heap = malloc(v->len)))
            return NULL;
        out = *heap;
    }
    *len = decode_string(v->p, v->len, out);
    return out;
}

/* Writes one value into row r; 0, or -1 when the jansson path would refuse it. */
static int store_value(row_batch *b, uint32_t r, const field_value *v, char *stack, char **heap)
{
    int c = v->col;
    const char *s;
    uint32_t len;
    strata_type type = b->schema->cols[c].type;
    if (v->kind == V_REAL && type != STRATA_FLOAT64) { /* an integral number, or refused */
        if (type == STRATA_BOOL || type == STRATA_STRING ||
            event_int_from_number(type, v->p, v->len, &b->i[c][r]) != EVENT_INT_OK)
            return -1;
        return 0;
    }
    switch (type) {
    case STRATA_TIMESTAMP:
        if (v->kind == V_INT) {
            if (v->i < STRATA_TS_MIN || v->i > STRATA_TS_MAX)
                return -1;
            b->i[c][r] = v->i;
            return 0;
        }
        if (v->kind != V_STRING || !(s = string_bytes(v, stack, heap, &len)))
            return -1;
        return units_parse_rfc3339_ms(s, len, &b->i[c][r]) == 0 ? 0 : -1;
    case STRATA_INT64:
        if (v->kind != V_INT)
            return -1;
        b->i[c][r] = v->i;
        return 0;
    case STRATA_INT32:
        if (v->kind != V_INT || v->i < INT32_MIN || v->i > INT32_MAX)
            return -1;
        b->i[c][r] = v->i;
        return 0;
    case STRATA_UINT64: {
        if (v->kind == V_INT) {
            if (v->i < 0)
                return -1;
            b->i[c][r] = v->i;
            return 0;
        }
        uint64_t u;
        if (v->kind != V_STRING || !(s = string_bytes(v, stack, heap, &len)) ||
            event_uint64_from_decimal(s, len, &u) != 0)
            return -1;
        b->i[c][r] = (int64_t)u;
        return 0;
    }
    case STRATA_FLOAT64:
        if (v->kind == V_INT)
            b->f[c][r] = (double)v->i;
        else if (v->kind == V_REAL)
            b->f[c][r] = v->f;
        else
            return -1;
        return 0;
    case STRATA_BOOL:
        if (v->kind != V_TRUE && v->kind != V_FALSE)
            return -1;
        b->i[c][r] = v->kind == V_TRUE;
        return 0;
    case STRATA_STRING:
        if (v->kind != V_STRING || !(s = string_bytes(v, stack, heap, &len)))
            return -1;
        return row_batch_set_str(b, c, r, s, len) == 0 ? 0 : -1;
    case STRATA_BYTES: break; /* never a table column */
    }
    return -1;
}

/* Adds the row of a parsed event to b; 0, or -1 with b as before. */
static int store_event(const parsed_event *ev, row_batch *b)
{
    if (ev->time_field < 0 || ev->fields[ev->time_field].kind == V_NULL)
        return -1; /* jansson: "the time field is missing" */
    uint64_t nbytes = b->nbytes;
    int64_t r = row_batch_add_row(b);
    if (r < 0) {
        b->nbytes = nbytes;
        return -1;
    }
    char stack[STRING_STACK_BYTES];
    char *heap = NULL;
    for (int k = 0; k < ev->nfields; k++) {
        const field_value *v = &ev->fields[k];
        if (v->kind == V_NULL)
            continue; /* the column keeps its default */
        if (store_value(b, (uint32_t)r, v, stack, &heap) != 0) {
            free(heap);
            row_batch_pop_row(b);
            b->nbytes = nbytes;
            return -1;
        }
    }
    free(heap);
    return 0;
}

int event_json_decode_fast(const event_decoder *d, const char *text, size_t len, row_batch *b)
{
    return event_json_decode_fast_reporting(d, text, len, b, NULL);
}

int event_json_decode_fast_reporting(const event_decoder *d, const char *text, size_t len,
                                     row_batch *b, const event_unknown_sink *unknown)
{
    event_decoder local;
    if (!d || d->schema != b->schema) {
        decoder_build(&local, b->schema);
        d = &local;
    }
    if (!d->usable || !text || len > EVENT_JSON_MAX_BYTES)
        return EVENT_JSON_DECLINED;
    parsed_event ev;
    if (parse_event(d, text, text + len, &ev) != 0 || store_event(&ev, b) != 0)
        return EVENT_JSON_DECLINED;
    if (ev.nunknown && unknown && unknown->key)
        for (int k = 0; k < ev.nunknown; k++)
            unknown->key(unknown->ctx, ev.unknown[k].p, ev.unknown[k].len);
    return 0;
}

int event_uint64_from_decimal(const char *s, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t u = 0;
    for (size_t k = 0; k < len; k++) {
        if (!is_digit(s[k]))
            return -1;
        unsigned dgt = (unsigned)(s[k] - '0');
        if (u > (UINT64_MAX - dgt) / 10)
            return -1;
        u = u * 10 + dgt;
    }
    *out = u;
    return 0;
}

/* ---- integral numbers for integer columns ----------------------------------------------- */

#define EXPONENT_CAP INT64_C(1000000000000000) /* 10^15: saturated, see event_fast.h */

/* Digit k of the digits a[0..na) followed by b. */
static inline char digit_at(const char *a, size_t na, const char *b, size_t k)
{
    return k < na ? a[k] : b[k - na];
}

event_int_verdict event_int_from_number(strata_type type, const char *s, size_t len, int64_t *out)
{
    const char *p = s, *end = s + len;
    bool neg = p < end && *p == '-';
    p += neg;
    const char *ip = p;
    while (p < end && is_digit(*p))
        p++;
    const char *ie = p, *fp = p, *fe = p;
    if (ie == ip)
        return EVENT_INT_INVALID;
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && is_digit(*p))
            p++;
        fe = p;
        if (fe == fp)
            return EVENT_INT_INVALID;
    }
    int64_t exp = 0;
    if (!scan_exponent(&p, end, EXPONENT_CAP, &exp))
        return EVENT_INT_INVALID;
    if (p != end)
        return EVENT_INT_INVALID;
    if (type != STRATA_TIMESTAMP && type != STRATA_INT64 && type != STRATA_INT32 &&
        type != STRATA_UINT64)
        return EVENT_INT_INVALID;

    /* The value is D * 10^(exp - nf), D the digits of both parts; from D's first and last
     * non-zero digits it is sig * 10^e, sig of nsig digits not ending in 0. */
    size_t ni = (size_t)(ie - ip), nf = (size_t)(fe - fp), n = ni + nf;
    size_t first = 0, last = n;
    while (first < n && digit_at(ip, ni, fp, first) == '0')
        first++;
    uint64_t mag = 0;
    if (first < n) {
        while (digit_at(ip, ni, fp, last - 1) == '0')
            last--;
        int64_t e = exp - (int64_t)nf + (int64_t)(n - last);
        if (e < 0)
            return EVENT_INT_FRACTION; /* sig does not end in 0: never a multiple of 10^-e */
        if (neg && type == STRATA_UINT64)
            return EVENT_INT_NEGATIVE;
        if ((int64_t)(last - first) + e > 20)
            return EVENT_INT_RANGE; /* >= 10^20 > 2^64 */
        for (size_t k = first; k < last + (size_t)e; k++) {
            unsigned dgt = k < last ? (unsigned)(digit_at(ip, ni, fp, k) - '0') : 0;
            if (mag > (UINT64_MAX - dgt) / 10)
                return EVENT_INT_RANGE;
            mag = mag * 10 + dgt;
        }
    }
    uint64_t lo, hi; /* the column's range, as magnitudes below and above zero */
    switch (type) {
    case STRATA_TIMESTAMP: lo = (uint64_t)-STRATA_TS_MIN, hi = (uint64_t)STRATA_TS_MAX; break;
    case STRATA_INT64: lo = (uint64_t)INT64_MAX + 1, hi = (uint64_t)INT64_MAX; break;
    case STRATA_INT32: lo = (uint64_t)INT32_MAX + 1, hi = (uint64_t)INT32_MAX; break;
    default: lo = 0, hi = UINT64_MAX; break; /* uint64 */
    }
    if (mag > (neg ? lo : hi))
        return EVENT_INT_RANGE;
    *out = !neg || mag == 0 ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return EVENT_INT_OK;
}
