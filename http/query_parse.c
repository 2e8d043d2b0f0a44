/*
 * query_parse.c — the JSON query language of POST /query (grammar in query_parse.h):
 * request text -> strata_query.
 *
 * Parsing: jansson loads the text (duplicate keys refused); every object is first checked
 * against its list of allowed keys (unknown keys get a "did you mean" from an edit
 * distance), then the sections are read in a fixed order — table, from, to, interval,
 * fill, where, group_by, select, order_by, limit — so that fill knows its buckets and
 * output names (time, group columns, aggregates) are known when select checks uniqueness
 * and order_by resolves names. The where list becomes a query_expr tree built in place:
 * nodes are zeroed before they are filled, so on any failure query_expr_free releases
 * exactly what was built. Messages start with the path of the field at fault
 * ("where[0].or[2].value: ...").
 *
 * Size: about 840 lines, a little over the ~800 the project aims at. It is one grammar
 * over one parser state (qparse): splitting the where tree off would only move that
 * state into another header, and every section reads the same helpers.
 */
#include "http/query_parse.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json_util.h"
#include "engine/text.h"
#include "engine/units.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* Longest field path: 16 levels of "or[12345]." plus the leaf key fit comfortably. */
#define PATHCAP 320
#define OUT_MAX (1 + QUERY_MAX_GROUP + QUERY_MAX_AGGS) /* output columns */

/* ---- small helpers ---------------------------------------------------------------------- */

/* A time for messages: RFC 3339 (without ".000" when whole seconds) inside the supported
 * range, else the epoch milliseconds. */
static void format_time(int64_t ms, char *buf, size_t cap)
{
    if (ms == INT64_MIN) {
        snprintf(buf, cap, "the beginning of time");
        return;
    }
    if (ms < STRATA_TS_MIN || ms > STRATA_TS_MAX) {
        snprintf(buf, cap, "%" PRId64 " ms", ms);
        return;
    }
    units_format_rfc3339_ms(ms, buf, cap);
    size_t n = strlen(buf);
    if (n >= 5 && strcmp(buf + n - 5, ".000Z") == 0)
        memcpy(buf + n - 5, "Z", 2);
}

/* Replaces every byte of err's message that is not part of valid UTF-8 with '?' (jansson's
 * messages quote input bytes, and %.64s may cut a character in two). */
static void scrub_message(strata_err *err)
{
    if (!err)
        return;
    err->msg[sizeof err->msg - 1] = 0; /* already so for every message set */
    text_utf8_scrub(err->msg);
}

/* ---- parser state ------------------------------------------------------------------------ */

typedef struct qparse {
    strata_err *err;
    const strata_schema *sc;
    int64_t now_ms;
    strata_query *q;
    int nout;                       /* output columns named so far */
    const char *out_names[OUT_MAX]; /* point into q or sc */
} qparse;

static const char *const top_keys[] = {"table", "from",     "to",       "interval", "fill",
                                       "select", "where", "group_by", "order_by", "limit", "source"};
static const char *const source_names[] = {"auto", "raw", "rollup"};
static const query_source source_values[] = {QUERY_SOURCE_AUTO, QUERY_SOURCE_RAW, QUERY_SOURCE_ROLLUP};
static const char *const select_keys[] = {"fn", "column", "q", "as"};
static const char *const pred_keys[] = {"column", "op", "value", "values"};
static const char *const order_keys[] = {"column", "desc"};

static const char *const fn_names[] = {"count", "sum", "min", "max", "avg", "uniq", "quantile"};
static const strata_agg fn_values[] = {STRATA_AGG_COUNT,   STRATA_AGG_SUM, STRATA_AGG_MIN,
                                       STRATA_AGG_MAX,     STRATA_AGG_AVG, STRATA_AGG_UNIQ,
                                       STRATA_AGG_QUANTILE};
static const char *const fill_names[] = {"none", "zero", "null"};
static const query_fill fill_values[] = {QUERY_FILL_NONE, QUERY_FILL_ZERO, QUERY_FILL_NULL};
static const char *const op_names[] = {"=", "!=", "<", "<=", ">", ">=", "in", "not_in"};
static const segment_pred_op op_values[] = {SEGMENT_PRED_EQ, SEGMENT_PRED_NE, SEGMENT_PRED_LT, SEGMENT_PRED_LE,
                                        SEGMENT_PRED_GT, SEGMENT_PRED_GE, SEGMENT_PRED_IN, SEGMENT_PRED_NOT_IN};

/* Resolves the column name v (at path) to an index of the table's schema. */
static int get_column(qparse *p, json_t *v, const char *path, int *idx)
{
    if (!v)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: required", path);
    if (!json_is_string(v))
        return jutil_type_error(p->err, path, "a column name (a string)", v);
    const char *name = json_string_value(v);
    int i = schema_column_index(p->sc, name);
    if (i >= 0) {
        *idx = i;
        return 0;
    }
    const char *names[STRATA_MAX_COLUMNS];
    for (int c = 0; c < p->sc->ncols; c++)
        names[c] = p->sc->cols[c].name;
    const char *near = jutil_closest(name, names, (size_t)p->sc->ncols);
    if (near)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "%s: no column '%.64s' in table '%s' (did you mean '%s'?)", path,
                              name, p->sc->name, near);
    return strata_err_set(p->err, STRATA_EINVAL, "%s: no column '%.64s' in table '%s'", path, name,
                          p->sc->name);
}

/* Reads the required string key of v (at path), one of names[0..n), into *idx; expected
 * and what word the messages ("an operator (a string)", "unknown operator ..."). */
static int get_choice(qparse *p, json_t *v, const char *path, const char *key,
                      const char *expected, const char *what, const char *const *names, size_t n,
                      size_t *idx)
{
    char sub[PATHCAP];
    jutil_path_key(sub, PATHCAP, path, key);
    json_t *o = jutil_member(v, key);
    if (!o)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: required", sub);
    if (!json_is_string(o))
        return jutil_type_error(p->err, sub, expected, o);
    size_t i = 0;
    while (i < n && strcmp(json_string_value(o), names[i]) != 0)
        i++;
    if (i == n) {
        char list[128];
        jutil_join_names(names, n, list, sizeof list);
        return strata_err_set(p->err, STRATA_EINVAL, "%s: unknown %s '%.64s' (expected one of %s)",
                              sub, what, json_string_value(o), list);
    }
    *idx = i;
    return 0;
}

/* Parses a time (epoch ms integer, RFC 3339 text, "now[+-duration]") at path. */
static int parse_time(qparse *p, json_t *v, const char *path, int64_t *out)
{
    static const char expected[] =
        "RFC 3339 such as \"2024-01-01T00:00:00Z\", epoch milliseconds, \"now\" or \"now-1h\"";
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return strata_err_set(p->err, STRATA_EINVAL, "%s: expected a time (%s), got %s", path,
                              expected, jutil_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= 3 && memcmp(s, "now", 3) == 0 && strlen(s) == n) {
        int64_t d = 0, t = p->now_ms;
        bool ok = true;
        if (n > 3) {
            ok = (s[3] == '+' || s[3] == '-') && units_parse_duration_ms(s + 4, &d) == 0;
            if (ok)
                ok = s[3] == '+' ? !__builtin_add_overflow(t, d, &t)
                                 : !__builtin_sub_overflow(t, d, &t);
        }
        if (!ok)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "%s: '%.64s' is not a time (after \"now\" comes + or - and a "
                                  "duration such as \"15m\", \"1h\", \"7d\")",
                                  path, s);
        *out = t;
        return 0;
    }
    if (units_parse_rfc3339_ms(s, n, out) != 0)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: '%.64s' is not a time (expected %s)",
                              path, s, expected);
    return 0;
}

/* The array at key of root, of at most max entries (what names them in the message:
 * "group_by: 17 columns, at most 16 allowed") into *arr and *n; *arr NULL when the key is
 * left out. */
static int get_list(qparse *p, json_t *root, const char *key, const char *expected,
                    const char *what, size_t max, json_t **arr, size_t *n)
{
    *arr = jutil_member(root, key);
    *n = *arr ? json_array_size(*arr) : 0;
    if (*arr && !json_is_array(*arr))
        return jutil_type_error(p->err, key, expected, *arr);
    if (*n > max)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: %zu %s, at most %zu allowed", key, *n,
                              what, max);
    return 0;
}

/* ---- where ------------------------------------------------------------------------------- */

/* Reads v, a real compared with integer column c (timestamp, int64, int32, uint64), into
 * *out: an integral real such as 2.0, 1e3 or -0.0 is that integer, like ingest takes it.
 * jansson keeps only the double, which holds every integer below 2^53 exactly; from 2^53
 * on it is refused (9007199254740993.0 arrives as 9007199254740992), asking for an integer. */
static int parse_integral_real(qparse *p, json_t *v, const char *path, const strata_column *c,
                               int64_t *out)
{
    const char *tn = strata_type_name(c->type);
    char num[32];
    jutil_real_text(json_real_value(v), num, sizeof num);
    switch (jutil_real_integer(c->type, json_real_value(v), out)) {
    case JUTIL_REAL_INT: return 0;
    case JUTIL_REAL_FRACTION:
        return strata_err_set(p->err, STRATA_EINVAL, "%s: %s is not an integer (column '%s' is %s)",
                              path, num, c->name, tn);
    case JUTIL_REAL_NEGATIVE:
    case JUTIL_REAL_RANGE:
        return strata_err_set(p->err, STRATA_EINVAL, "%s: %s is out of range for %s column '%s'",
                              path, num, tn, c->name);
    case JUTIL_REAL_INEXACT:
    default:
        return strata_err_set(p->err, STRATA_EINVAL,
                              "%s: %s is too large to be read exactly from a number with a "
                              "fraction or exponent (2^53 or more; column '%s' is %s); write the "
                              "value as an integer%s",
                              path, num, c->name, tn,
                              c->type == STRATA_UINT64 ? " or a decimal string" : "");
    }
}

/* Reads v, a value compared with column col, into *val; string copies go to *str. */
static int parse_value(qparse *p, json_t *v, const char *path, int col, segment_value *val, char **str)
{
    const strata_column *c = &p->sc->cols[col];
    const char *tn = strata_type_name(c->type);
    if (json_is_real(v) && (c->type == STRATA_TIMESTAMP || c->type == STRATA_INT64 ||
                            c->type == STRATA_INT32 || c->type == STRATA_UINT64))
        return parse_integral_real(p, v, path, c, &val->i);
    switch (c->type) {
    case STRATA_TIMESTAMP:
        if (json_is_integer(v) || json_is_string(v))
            return parse_time(p, v, path, &val->i);
        break;
    case STRATA_INT64:
    case STRATA_INT32:
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            if (c->type == STRATA_INT32 && (x < INT32_MIN || x > INT32_MAX))
                return strata_err_set(p->err, STRATA_EINVAL,
                                      "%s: %" JSON_INTEGER_FORMAT " is out of range for int32 "
                                      "column '%s'",
                                      path, x, c->name);
            val->i = x;
            return 0;
        }
        break;
    case STRATA_UINT64:
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0)
                return strata_err_set(p->err, STRATA_EINVAL,
                                      "%s: %" JSON_INTEGER_FORMAT " is out of range for uint64 "
                                      "column '%s'",
                                      path, json_integer_value(v), c->name);
            val->i = json_integer_value(v);
            return 0;
        }
        if (json_is_string(v)) {
            uint64_t u;
            if (strlen(json_string_value(v)) != json_string_length(v) ||
                !text_parse_u64(json_string_value(v), &u))
                return strata_err_set(
                    p->err, STRATA_EINVAL,
                    "%s: '%.64s' is not a uint64 for column '%s' (decimal digits, "
                    "at most 18446744073709551615)",
                    path, json_string_value(v), c->name);
            val->i = (int64_t)u;
            return 0;
        }
        break;
    case STRATA_FLOAT64:
        if (json_is_number(v)) {
            val->f = json_number_value(v);
            return 0;
        }
        break;
    case STRATA_BOOL:
        if (json_is_boolean(v)) {
            val->i = json_is_true(v) ? 1 : 0;
            return 0;
        }
        break;
    case STRATA_STRING:
        if (json_is_string(v)) {
            size_t n = json_string_length(v);
            if (n > UINT32_MAX)
                return strata_err_set(p->err, STRATA_EINVAL, "%s: string too long", path);
            char *copy = malloc(n + 1);
            if (!copy)
                return strata_err_set(p->err, STRATA_ENOMEM, "%s: out of memory", path);
            memcpy(copy, json_string_value(v), n + 1);
            *str = copy;
            val->s.ptr = copy;
            val->s.len = (uint32_t)n;
            return 0;
        }
        break;
    case STRATA_BYTES: break; /* never a table column */
    }
    return strata_err_set(p->err, STRATA_EINVAL, "%s: column '%s' is %s, got %s", path, c->name,
                          tn ? tn : "of an unknown type", jutil_kind(v));
}

static int parse_cond(qparse *p, json_t *v, const char *path, int depth, query_expr *out);

/* {"or": [...]} / {"and": [...]}: arr (at path) into out, a zeroed node. */
static int parse_group(qparse *p, json_t *arr, const char *path, int depth, query_expr_kind k,
                       query_expr *out)
{
    if (!json_is_array(arr))
        return jutil_type_error(p->err, path, "an array of conditions", arr);
    size_t n = json_array_size(arr);
    if (n == 0)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: needs at least one condition", path);
    if (n > UINT32_MAX)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: too many conditions", path);
    out->kind = k;
    out->kids = calloc(n, sizeof *out->kids);
    if (!out->kids)
        return strata_err_set(p->err, STRATA_ENOMEM, "%s: out of memory", path);
    out->nkids = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        char sub[PATHCAP];
        jutil_path_index(sub, PATHCAP, path, i);
        int rc = parse_cond(p, json_array_get(arr, i), sub, depth + 1, &out->kids[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* {"column": c, "op": o, "value": v | "values": [...]} at path into out, a zeroed node. */
static int parse_pred(qparse *p, json_t *v, const char *path, query_expr *out)
{
    char sub[PATHCAP];
    int rc, col;
    if ((rc = jutil_check_keys(p->err, v, path, pred_keys, NELEM(pred_keys))) < 0)
        return rc;
    jutil_path_key(sub, PATHCAP, path, "column");
    if ((rc = get_column(p, jutil_member(v, "column"), sub, &col)) < 0)
        return rc;
    size_t oi;
    if ((rc = get_choice(p, v, path, "op", "an operator (a string)", "operator", op_names,
                         NELEM(op_names), &oi)) < 0)
        return rc;
    segment_pred_op op = op_values[oi];
    bool list = op == SEGMENT_PRED_IN || op == SEGMENT_PRED_NOT_IN;
    json_t *one = json_object_get(v, "value"), *many = jutil_member(v, "values");
    size_t n = 1;
    /* in and not_in take "values", the others "value"; the other key is refused. */
    jutil_path_key(sub, PATHCAP, path, list ? "values" : "value");
    if (list ? one != NULL : many != NULL)
        return strata_err_set(p->err, STRATA_EINVAL,
                              list ? "%s.value: operator '%s' takes a list in \"values\""
                                   : "%s.values: operator '%s' compares with one \"value\"",
                              path, op_names[oi]);
    if (!(list ? many : one))
        return strata_err_set(p->err, STRATA_EINVAL, "%s: required with operator '%s'", sub,
                              op_names[oi]);
    if (list && !json_is_array(many))
        return jutil_type_error(p->err, sub, "an array of values", many);
    if (list)
        n = json_array_size(many);
    if (n > QUERY_PARSE_MAX_IN_VALUES)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: %zu values, at most %d allowed", sub, n,
                              QUERY_PARSE_MAX_IN_VALUES);
    out->kind = QX_PRED;
    out->pred.col = col;
    out->pred.op = op;
    out->vals = calloc(n ? n : 1, sizeof *out->vals);
    if (!out->vals)
        return strata_err_set(p->err, STRATA_ENOMEM, "%s: out of memory", path);
    if (p->sc->cols[col].type == STRATA_STRING) {
        out->strs = calloc(n ? n : 1, sizeof *out->strs);
        if (!out->strs)
            return strata_err_set(p->err, STRATA_ENOMEM, "%s: out of memory", path);
    }
    /* From here query_expr_free frees strs[0..nvals), the NULLs included. */
    out->pred.nvals = (uint32_t)n;
    out->pred.vals = out->vals;
    for (size_t i = 0; i < n; i++) {
        char vpath[PATHCAP];
        json_t *x = one;
        if (list) {
            jutil_path_index(vpath, PATHCAP, sub, i);
            x = json_array_get(many, i);
        } else {
            memcpy(vpath, sub, sizeof vpath);
        }
        char *dummy = NULL;
        rc = parse_value(p, x, vpath, col, &out->vals[i], out->strs ? &out->strs[i] : &dummy);
        free(dummy); /* only string columns make copies, and they have strs */
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* One condition v at path and nesting depth into out, a zeroed node. On failure out may
 * hold part of a tree: the caller frees it with query_expr_free. */
static int parse_cond(qparse *p, json_t *v, const char *path, int depth, query_expr *out)
{
    if (depth > QUERY_PARSE_MAX_DEPTH)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: conditions nested more than %d deep",
                              path, QUERY_PARSE_MAX_DEPTH);
    if (!json_is_object(v))
        return jutil_type_error(p->err, path, "a condition (an object)", v);
    json_t *any = json_object_get(v, "or"), *all = json_object_get(v, "and");
    if (!any && !all)
        return parse_pred(p, v, path, out);
    if (json_object_size(v) != 1)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "%s: an \"or\" or \"and\" condition has no other keys", path);
    char sub[PATHCAP];
    jutil_path_key(sub, PATHCAP, path, any ? "or" : "and");
    return parse_group(p, any ? any : all, sub, depth, any ? QX_OR : QX_AND, out);
}

static int parse_where(qparse *p, json_t *root)
{
    json_t *w;
    size_t n;
    int rc = get_list(p, root, "where", "an array of conditions", "conditions", SIZE_MAX, &w, &n);
    if (rc < 0 || n == 0)
        return rc;
    query_expr *e = calloc(1, sizeof *e);
    if (!e)
        return strata_err_set(p->err, STRATA_ENOMEM, "where: out of memory");
    if (n == 1)
        rc = parse_cond(p, json_array_get(w, 0), "where[0]", 1, e);
    else
        rc = parse_group(p, w, "where", 0, QX_AND, e);
    if (rc < 0) {
        query_expr_free(e);
        free(e);
        return rc;
    }
    p->q->where = e;
    return 0;
}

/* ---- select, group_by, order_by ----------------------------------------------------------- */

/* Index of output column name, or -1. */
static int out_index(const qparse *p, const char *name)
{
    for (int i = 0; i < p->nout; i++)
        if (strcmp(p->out_names[i], name) == 0)
            return i;
    return -1;
}

static int parse_group_by(qparse *p, json_t *root)
{
    json_t *g;
    size_t n;
    int rc = get_list(p, root, "group_by", "an array of column names", "columns", QUERY_MAX_GROUP,
                      &g, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char path[PATHCAP];
        int col;
        jutil_path_index(path, PATHCAP, "group_by", i);
        if ((rc = get_column(p, json_array_get(g, i), path, &col)) < 0)
            return rc;
        const char *name = p->sc->cols[col].name;
        if (out_index(p, name) >= 0)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: '%s' %s", path, name,
                                  strcmp(name, "time") == 0 && p->q->interval_ms > 0
                                      ? "is also the name of the time bucket column"
                                      : "is listed twice");
        p->q->group_cols[p->q->ngroup++] = col;
        p->out_names[p->nout++] = name;
    }
    return 0;
}

static int parse_agg(qparse *p, json_t *v, const char *path, query_agg *a)
{
    char sub[PATHCAP];
    int rc;
    if (!json_is_object(v))
        return jutil_type_error(p->err, path, "an aggregate (an object such as {\"fn\": \"count\"})", v);
    if ((rc = jutil_check_keys(p->err, v, path, select_keys, NELEM(select_keys))) < 0)
        return rc;
    size_t fi;
    if ((rc = get_choice(p, v, path, "fn", "a function name (a string)", "function", fn_names,
                         NELEM(fn_names), &fi)) < 0)
        return rc;
    a->fn = fn_values[fi];
    a->col = -1;
    json_t *col = jutil_member(v, "column");
    jutil_path_key(sub, PATHCAP, path, "column");
    if (a->fn == STRATA_AGG_COUNT) {
        if (col)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "%s: count takes no column (it counts rows)", sub);
    } else {
        if (!col)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: required for %s", sub, fn_names[fi]);
        if ((rc = get_column(p, col, sub, &a->col)) < 0)
            return rc;
        const strata_column *c = &p->sc->cols[a->col];
        if (c->type == STRATA_STRING && a->fn != STRATA_AGG_UNIQ)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "%s: %s needs a numeric column, '%s' is a string", sub,
                                  fn_names[fi], c->name);
    }
    json_t *q = jutil_member(v, "q");
    jutil_path_key(sub, PATHCAP, path, "q");
    if (a->fn == STRATA_AGG_QUANTILE) {
        if (!q)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "%s: required for quantile (0.5 for the median, 0.99, ...)", sub);
        if (!json_is_number(q))
            return jutil_type_error(p->err, sub, "a number between 0 and 1", q);
        a->q = json_number_value(q);
        if (!(a->q >= 0 && a->q <= 1))
            return strata_err_set(p->err, STRATA_EINVAL, "%s: %g is not between 0 and 1", sub,
                                  a->q);
    } else if (q) {
        return strata_err_set(p->err, STRATA_EINVAL, "%s: only quantile takes q", sub);
    }
    json_t *as = jutil_member(v, "as");
    jutil_path_key(sub, PATHCAP, path, "as");
    if (as) {
        if (!json_is_string(as))
            return jutil_type_error(p->err, sub, "an output name (a string)", as);
        size_t n = json_string_length(as);
        if (n == 0)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: must not be empty", sub);
        if (n >= QUERY_NAME_MAX)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: too long (%zu bytes, at most %d)",
                                  sub, n, QUERY_NAME_MAX - 1);
        if (strlen(json_string_value(as)) != n)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: must not hold a NUL character", sub);
        memcpy(a->name, json_string_value(as), n + 1);
    } else if (a->fn == STRATA_AGG_COUNT) {
        memcpy(a->name, "count", sizeof "count");
    } else {
        int w = snprintf(a->name, sizeof a->name, "%s_%s", fn_names[fi], p->sc->cols[a->col].name);
        if (w < 0 || (size_t)w >= sizeof a->name)
            return strata_err_set(
                p->err, STRATA_EINVAL,
                "%s: the default name '%s_%s' is longer than %d bytes; set \"as\"", sub,
                fn_names[fi], p->sc->cols[a->col].name, QUERY_NAME_MAX - 1);
    }
    int taken = out_index(p, a->name);
    if (taken == 0 && p->q->interval_ms > 0) /* output column 0 is then "time" */
        return strata_err_set(p->err, STRATA_EINVAL,
                              "%s: 'time' is the name of the time bucket column that interval "
                              "adds; choose another name",
                              sub);
    if (taken >= 0)
        return strata_err_set(p->err, STRATA_EINVAL, "%s: '%s' is used twice%s", sub, a->name,
                              as ? "" : " (it is the default name; set \"as\")");
    p->out_names[p->nout++] = a->name;
    return 0;
}

static int parse_select(qparse *p, json_t *root)
{
    json_t *s;
    size_t n;
    int rc = get_list(p, root, "select", "an array of aggregates", "aggregates", QUERY_MAX_AGGS, &s,
                      &n);
    if (rc < 0)
        return rc;
    if (!s)
        return strata_err_set(
            p->err, STRATA_EINVAL,
            "select: required (a list of aggregates such as [{\"fn\": \"count\"}])");
    if (n == 0)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "select: needs at least one aggregate, such as {\"fn\": \"count\"}");
    for (size_t i = 0; i < n; i++) {
        char path[PATHCAP];
        jutil_path_index(path, PATHCAP, "select", i);
        rc = parse_agg(p, json_array_get(s, i), path, &p->q->aggs[i]);
        if (rc < 0)
            return rc;
        p->q->naggs = (int)i + 1;
    }
    return 0;
}

static int parse_order_by(qparse *p, json_t *root)
{
    json_t *o;
    size_t n;
    int rc = get_list(p, root, "order_by", "an array of {\"column\": ..., \"desc\": ...}", "entries",
                      QUERY_MAX_ORDER, &o, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char path[PATHCAP], sub[PATHCAP];
        jutil_path_index(path, PATHCAP, "order_by", i);
        json_t *e = json_array_get(o, i);
        if (!json_is_object(e))
            return jutil_type_error(p->err, path,
                              "an object such as {\"column\": \"count\", \"desc\": true}", e);
        if ((rc = jutil_check_keys(p->err, e, path, order_keys, NELEM(order_keys))) < 0)
            return rc;
        jutil_path_key(sub, PATHCAP, path, "column");
        json_t *c = jutil_member(e, "column");
        if (!c)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: required", sub);
        if (!json_is_string(c))
            return jutil_type_error(p->err, sub, "an output column name (a string)", c);
        int oc = out_index(p, json_string_value(c));
        if (oc < 0) {
            const char *near = jutil_closest(json_string_value(c), p->out_names, (size_t)p->nout);
            if (near)
                return strata_err_set(p->err, STRATA_EINVAL,
                                      "%s: no output column '%.64s' (did you mean '%s'?)", sub,
                                      json_string_value(c), near);
            char list[256];
            jutil_join_names(p->out_names, (size_t)p->nout, list, sizeof list);
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "%s: no output column '%.64s' (the output columns are %s)", sub,
                                  json_string_value(c), list);
        }
        json_t *d = jutil_member(e, "desc");
        jutil_path_key(sub, PATHCAP, path, "desc");
        if (d && !json_is_boolean(d))
            return jutil_type_error(p->err, sub, "true or false", d);
        p->q->order[i].output_col = oc;
        p->q->order[i].desc = d && json_is_true(d);
        p->q->norder = (int)i + 1;
    }
    return 0;
}

/* ---- top level ---------------------------------------------------------------------------- */

/* Loads text as a JSON object; NULL with the message in err otherwise. */
static json_t *load_object(const char *text, size_t len, strata_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        const char *hint = json_error_code(&jerr) == json_error_numeric_overflow
                               ? " (write integers above 9223372036854775807 as decimal strings)"
                               : "";
        if (jerr.line > 0)
            strata_err_set(err, STRATA_EINVAL, "malformed JSON at line %d column %d: %s%s",
                           jerr.line, jerr.column, jerr.text, hint);
        else
            strata_err_set(err, STRATA_EINVAL, "malformed JSON: %s%s", jerr.text, hint);
        return NULL;
    }
    if (!json_is_object(root)) {
        strata_err_set(err, STRATA_EINVAL, "expected a query (a JSON object), got %s", jutil_kind(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

/* The "table" string of root, or NULL with the message in err. */
static const char *table_of(json_t *root, strata_err *err)
{
    json_t *t = jutil_member(root, "table");
    if (!t) {
        strata_err_set(err, STRATA_EINVAL, "table: required");
        return NULL;
    }
    if (!json_is_string(t)) {
        jutil_type_error(err, "table", "a table name (a string)", t);
        return NULL;
    }
    if (json_string_length(t) == 0) {
        strata_err_set(err, STRATA_EINVAL, "table: must not be empty");
        return NULL;
    }
    if (strlen(json_string_value(t)) != json_string_length(t)) {
        strata_err_set(err, STRATA_EINVAL, "table: must not hold a NUL character");
        return NULL;
    }
    return json_string_value(t);
}

int query_parse_table_name(const char *text, size_t len, char *name, size_t cap, strata_err *err)
{
    json_t *root = load_object(text, len, err);
    if (!root) {
        scrub_message(err);
        return STRATA_EINVAL;
    }
    int rc = 0;
    const char *t = table_of(root, err);
    if (!t) {
        rc = STRATA_EINVAL;
    } else if (strlen(t) >= cap) {
        rc = strata_err_set(err, STRATA_EINVAL, "table: name too long (%zu bytes, at most %zu)",
                            strlen(t), cap ? cap - 1 : 0);
    } else {
        memcpy(name, t, strlen(t) + 1);
    }
    json_decref(root);
    if (rc < 0)
        scrub_message(err);
    return rc;
}

/* The value of root's key, one of names[0..n): 1 and its index in *out, 0 when the key
 * is left out, or an error naming the key, the choices and the nearest one. */
static int parse_choice(qparse *p, json_t *root, const char *key, const char *const *names, size_t n,
                        size_t *out)
{
    json_t *v = jutil_member(root, key);
    if (!v)
        return 0;
    char quoted[128] = "one of ", plain[96] = "";
    for (size_t i = 0; i < n; i++) {
        size_t lq = strlen(quoted), lp = strlen(plain);
        snprintf(quoted + lq, sizeof quoted - lq, "%s\"%s\"", i ? ", " : "", names[i]);
        snprintf(plain + lp, sizeof plain - lp, "%s%s", i ? ", " : "", names[i]);
    }
    if (!json_is_string(v))
        return jutil_type_error(p->err, key, quoted, v);
    const char *f = json_string_value(v);
    size_t i = strlen(f) == json_string_length(v) ? 0 : n; /* a NUL inside */
    while (i < n && strcmp(f, names[i]) != 0)
        i++;
    if (i == n) {
        const char *near = jutil_closest(f, names, n);
        if (near)
            return strata_err_set(p->err, STRATA_EINVAL, "%s: unknown %s '%.64s' (did you mean '%s'?)", key, key, f,
                                  near);
        return strata_err_set(p->err, STRATA_EINVAL, "%s: unknown %s '%.64s' (expected one of %s)", key, key, f,
                              plain);
    }
    *out = i;
    return 1;
}

/* "fill", after from, to and interval: it needs an interval and a from. */
static int parse_fill(qparse *p, json_t *root)
{
    size_t fi;
    int rc = parse_choice(p, root, "fill", fill_names, NELEM(fill_names), &fi);
    if (rc <= 0)
        return rc;
    const char *f = fill_names[fi];
    strata_query *q = p->q;
    if (fill_values[fi] != QUERY_FILL_NONE && q->interval_ms <= 0)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "fill: \"%s\" needs \"interval\", the time buckets it fills "
                              "(such as \"interval\": \"1h\")",
                              f);
    if (fill_values[fi] != QUERY_FILL_NONE && q->from_ms == INT64_MIN)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "fill: \"%s\" needs \"from\" (filling starts at the bucket "
                              "holding from, such as \"from\": \"now-1d\"; without it the "
                              "query starts at the beginning of time)",
                              f);
    if (fill_values[fi] != QUERY_FILL_NONE && q->to_ms == INT64_MAX)
        return strata_err_set(p->err, STRATA_EINVAL,
                              "fill: \"%s\" needs \"to\" before the end of time (leave "
                              "\"to\" out for now)",
                              f);
    q->fill = fill_values[fi];
    return 0;
}

/* "source": what may answer (query.h's query_source). */
static int parse_source(qparse *p, json_t *root)
{
    size_t i;
    int rc = parse_choice(p, root, "source", source_names, NELEM(source_names), &i);
    if (rc > 0)
        p->q->source = source_values[i];
    return rc < 0 ? rc : 0;
}

static int parse_root(qparse *p, json_t *root)
{
    strata_query *q = p->q;
    int rc;
    if ((rc = jutil_check_keys(p->err, root, "", top_keys, NELEM(top_keys))) < 0)
        return rc;
    const char *t = table_of(root, p->err);
    if (!t)
        return STRATA_EINVAL;
    if (strcmp(t, p->sc->name) != 0)
        return strata_err_set(p->err, STRATA_EINVAL, "table: '%.64s' is not the table '%s' queried",
                              t, p->sc->name);
    json_t *v;
    q->to_ms = p->now_ms;
    if ((v = jutil_member(root, "from")) && (rc = parse_time(p, v, "from", &q->from_ms)) < 0)
        return rc;
    if ((v = jutil_member(root, "to")) && (rc = parse_time(p, v, "to", &q->to_ms)) < 0)
        return rc;
    if (q->from_ms >= q->to_ms) {
        char a[48], b[48];
        format_time(q->from_ms, a, sizeof a);
        format_time(q->to_ms, b, sizeof b);
        return strata_err_set(p->err, STRATA_EINVAL, "from: %s is not before to: %s%s", a, b,
                              jutil_member(root, "to") ? "" : " (now)");
    }
    if ((v = jutil_member(root, "interval"))) {
        if (!json_is_string(v))
            return jutil_type_error(p->err, "interval", "a duration string such as \"1m\"", v);
        if (units_parse_duration_ms(json_string_value(v), &q->interval_ms) != 0 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return strata_err_set(
                p->err, STRATA_EINVAL,
                "interval: '%.64s' is not a duration (a whole number and one unit "
                "of ms, s, m, h, d, such as \"1m\")",
                json_string_value(v));
        if (q->interval_ms < QUERY_PARSE_MIN_INTERVAL_MS ||
            q->interval_ms > QUERY_PARSE_MAX_INTERVAL_MS)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "interval: '%.64s' is out of range (from 1s to 1d)",
                                  json_string_value(v));
        p->out_names[p->nout++] = "time";
    }
    if ((rc = parse_source(p, root)) < 0)
        return rc;
    if ((rc = parse_fill(p, root)) < 0)
        return rc;
    if ((rc = parse_where(p, root)) < 0 || (rc = parse_group_by(p, root)) < 0 ||
        (rc = parse_select(p, root)) < 0 || (rc = parse_order_by(p, root)) < 0)
        return rc;
    if ((v = jutil_member(root, "limit"))) {
        if (!json_is_integer(v))
            return jutil_type_error(p->err, "limit", "a non-negative integer", v);
        if (json_integer_value(v) < 0)
            return strata_err_set(p->err, STRATA_EINVAL,
                                  "limit: %" JSON_INTEGER_FORMAT " is negative (leave it out for "
                                  "no limit)",
                                  json_integer_value(v));
        q->limit = json_integer_value(v);
    }
    return 0;
}

int query_parse_json(const char *text, size_t len, const strata_schema *schema, int64_t now_ms,
                     strata_query *out, strata_err *err)
{
    json_t *root = load_object(text, len, err);
    if (!root) {
        scrub_message(err);
        return STRATA_EINVAL;
    }
    strata_query *q = malloc(sizeof *q);
    if (!q) {
        json_decref(root);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    query_init(q);
    qparse p = {.err = err, .sc = schema, .now_ms = now_ms, .q = q};
    int rc = parse_root(&p, root);
    json_decref(root);
    if (rc < 0) {
        query_free(q);
        free(q);
        scrub_message(err);
        return rc;
    }
    /* Output names point into q->aggs; copying q keeps nothing but the tree pointer. */
    memcpy(out, q, sizeof *q);
    free(q);
    return 0;
}
