/*
 * grafana_target.c — a Grafana target into a strata query (the mapping is written down in
 * grafana_target.h).
 *
 * The query is built as a jansson object in the JSON language of query_parse.h and not
 * as a strata_query: the caller hands its text to query_parse_json, so every check and
 * every message of POST /query (unknown columns with a "did you mean", wrong types,
 * limits) holds for Grafana's panels too, and this file only decides what to ask.
 * Conditions are typed here by their column (a where value of an int64 column must be a
 * JSON integer), because Grafana sends every builder and ad hoc value as a string.
 */
#include "http/grafana_target.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json_util.h"
#include "engine/units.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define VALUE_MAX 1024 /* one condition's value text */

/* ---- buckets -------------------------------------------------------------------------- */

static const int64_t ladder_ms[] = {
    1000,     2000,     5000,     10000,    15000,    30000,    60000,     120000,    300000,
    600000,   900000,   1800000,  3600000,  7200000,  10800000, 21600000,  43200000,  86400000,
};

int64_t grafana_bucket_ms(const strata_schema *s, int64_t from_ms, int64_t to_ms,
                          int64_t interval_ms, int64_t max_points)
{
    int64_t want = interval_ms > 0 ? interval_ms : 1000;
    if (max_points > 0 && from_ms > INT64_MIN && to_ms < INT64_MAX && to_ms > from_ms) {
        int64_t per = (to_ms - from_ms + max_points - 1) / max_points;
        if (per > want)
            want = per;
    }
    int64_t b = ladder_ms[NELEM(ladder_ms) - 1];
    for (size_t i = 0; i < NELEM(ladder_ms); i++)
        if (ladder_ms[i] >= want) {
            b = ladder_ms[i];
            break;
        }
    /* The coarsest tier not coarser than the bucket serves it once the bucket is a
     * multiple of the tier's interval. */
    int64_t tier = 0;
    for (int i = 0; s && i < s->nrollups; i++)
        if (s->rollups[i].interval_ms <= b && s->rollups[i].interval_ms > tier)
            tier = s->rollups[i].interval_ms;
    if (tier > 0 && b % tier != 0) {
        int64_t up = (b / tier + 1) * tier;
        if (up <= ladder_ms[NELEM(ladder_ms) - 1])
            b = up;
    }
    /* A bucket finer than every tier takes the finest one when that at most halves the
     * points (30 s -> 1m): a tier answers, and the chart barely changes. */
    int64_t finest = 0;
    for (int i = 0; s && i < s->nrollups; i++)
        if (finest == 0 || s->rollups[i].interval_ms < finest)
            finest = s->rollups[i].interval_ms;
    if (tier == 0 && finest > b && finest <= 2 * b)
        b = finest;
    return b;
}

/* ---- Grafana's regex format -------------------------------------------------------------- */

void grafana_unescape(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (src[i] == '\\' && i + 1 < n)
            i++;
        out[o++] = src[i];
    }
    if (cap)
        out[o] = 0;
}

json_t *grafana_alternatives(const char *src)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    size_t n = strlen(src);
    char one[VALUE_MAX];
    if (n >= 2 && src[0] == '(' && src[n - 1] == ')') {
        /* (a|b|c): split at the bars no backslash escapes */
        size_t start = 1;
        for (size_t i = 1; i < n; i++) {
            if (src[i] == '\\') {
                i++;
                continue;
            }
            if (src[i] == '|' || i == n - 1) {
                grafana_unescape(src + start, i - start, one, sizeof one);
                if (json_array_append_new(a, json_string(one)) != 0) {
                    json_decref(a);
                    return NULL;
                }
                start = i + 1;
            }
        }
        return a;
    }
    grafana_unescape(src, n, one, sizeof one);
    if (json_array_append_new(a, json_string(one)) != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* ---- typed values and conditions --------------------------------------------------------- */

static int find_column(const strata_schema *s, const char *name)
{
    for (int i = 0; i < s->ncols; i++)
        if (strcmp(s->cols[i].name, name) == 0)
            return i;
    return -1;
}

/* The text of a condition's value as the JSON value query_parse wants for column col. */
static int typed_value(const strata_schema *s, int col, const char *text, const char *where,
                       json_t **out, strata_err *err)
{
    const strata_column *c = &s->cols[col];
    char *end;
    errno = 0;
    switch (c->type) {
    case STRATA_STRING:
        *out = json_string(text);
        break;
    case STRATA_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            *out = json_boolean(text[0] == 't');
        else
            return strata_err_set(err, STRATA_EINVAL, "%s: column '%s' is bool, got '%s' (true or "
                                  "false)", where, c->name, text);
        break;
    case STRATA_FLOAT64: {
        double d = strtod(text, &end);
        if (!*text || *end || errno)
            return strata_err_set(err, STRATA_EINVAL, "%s: column '%s' is float64, got '%s'", where,
                                  c->name, text);
        *out = json_real(d);
        break;
    }
    case STRATA_UINT64:
        if (!*text || strspn(text, "0123456789") != strlen(text))
            return strata_err_set(err, STRATA_EINVAL, "%s: column '%s' is uint64, got '%s'", where,
                                  c->name, text);
        *out = json_string(text); /* query_parse reads uint64 from decimal text */
        break;
    case STRATA_TIMESTAMP:
        if (*text && strspn(text + (text[0] == '-'), "0123456789") == strlen(text + (text[0] == '-')))
            *out = json_integer(strtoll(text, NULL, 10));
        else
            *out = json_string(text); /* RFC 3339 or "now-1h": query_parse checks it */
        break;
    default: { /* int64, int32 */
        long long v = strtoll(text, &end, 10);
        if (*text && *end && !errno) { /* "3.0", "1e3": a whole number written as a float */
            char *dend;
            double d = strtod(text, &dend);
            if (!*dend && d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d) {
                v = (long long)d;
                end = dend;
            }
        }
        if (!*text || *end || errno)
            return strata_err_set(err, STRATA_EINVAL, "%s: column '%s' is %s, got '%s'", where,
                                  c->name, strata_type_name(c->type), text);
        *out = json_integer(v);
        break;
    }
    }
    return *out ? 0 : strata_err_set(err, STRATA_ENOMEM, "out of memory");
}

/* {"column": c, "op": op, "value": v} or, with values, {"column", "op": in/not_in,
 * "values": [...]}: each value text typed for the column. */
static int cond_of(const strata_schema *s, int col, const char *op, json_t *texts /* strings */,
                   const char *where, json_t **out, strata_err *err)
{
    json_t *c = json_object();
    if (!c)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    json_object_set_new(c, "column", json_string(s->cols[col].name));
    size_t n = json_array_size(texts);
    bool list = n != 1 && (strcmp(op, "=") == 0 || strcmp(op, "!=") == 0);
    if (!list && n != 1) {
        json_decref(c);
        return strata_err_set(err, STRATA_EINVAL, "%s: '%s' takes one value, got %zu", where, op, n);
    }
    json_object_set_new(c, "op", json_string(list ? (op[0] == '=' ? "in" : "not_in") : op));
    json_t *vals = list ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = NULL;
        int rc = typed_value(s, col, json_string_value(json_array_get(texts, i)), where, &v, err);
        if (rc) {
            json_decref(vals);
            json_decref(c);
            return rc;
        }
        if (list)
            json_array_append_new(vals, v);
        else
            json_object_set_new(c, "value", v);
    }
    if (list)
        json_object_set_new(c, "values", vals);
    *out = c;
    return 0;
}

/* col =~ pattern (negate: !~): the column's values in the range that the whole pattern
 * matches, as an in (not_in) condition. */
static int cond_regex(const strata_schema *s, int col, const char *pattern, bool negate,
                      const grafana_ctx *ctx, const char *where, json_t **out, strata_err *err)
{
    if (s->cols[col].type != STRATA_STRING)
        return strata_err_set(err, STRATA_EINVAL, "%s: %s needs a string column; '%s' is %s", where,
                              negate ? "!~" : "=~", s->cols[col].name,
                              strata_type_name(s->cols[col].type));
    if (!ctx->values)
        return strata_err_set(err, STRATA_EINVAL, "%s: regular expressions are not taken here", where);
    size_t plen = strlen(pattern);
    char *anchored = malloc(plen + 5);
    if (!anchored)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    snprintf(anchored, plen + 5, "^(%s)$", pattern);
    regex_t re;
    int rrc = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rrc != 0) {
        char why[128];
        regerror(rrc, &re, why, sizeof why);
        return strata_err_set(err, STRATA_EINVAL, "%s: bad regular expression '%s': %s", where,
                              pattern, why);
    }
    json_t *all;
    strata_err verr = {0};
    int rc = ctx->values(ctx->values_arg, s->cols[col].name, &all, &verr);
    if (rc) {
        regfree(&re);
        return strata_err_set(err, rc, "%s: %s", where, verr.msg);
    }
    json_t *vals = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v)
    {
        if (regexec(&re, json_string_value(v), 0, NULL, 0) == 0)
            json_array_append(vals, v);
    }
    regfree(&re);
    json_decref(all);
    json_t *c = json_object();
    if (!vals || !c) {
        json_decref(vals);
        json_decref(c);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    json_object_set_new(c, "column", json_string(s->cols[col].name));
    json_object_set_new(c, "op", json_string(negate ? "not_in" : "in"));
    json_object_set_new(c, "values", vals);
    *out = c;
    return 0;
}

static const char *const ops[] = {"!=", "<=", ">=", "=~", "!~", "=", "<", ">"};

/* One condition: column col, operator op, value text val; regex_format: the value is in
 * Grafana's regex format (builder payloads), else raw (ad hoc filters). */
static int condition(const strata_schema *s, int col, const char *op, const char *val,
                     bool regex_format, const grafana_ctx *ctx, const char *where, json_t **out,
                     strata_err *err)
{
    if (strcmp(op, "=~") == 0 || strcmp(op, "!~") == 0)
        return cond_regex(s, col, val, op[0] == '!', ctx, where, out, err);
    json_t *texts;
    if (regex_format && (strcmp(op, "=") == 0 || strcmp(op, "!=") == 0)) {
        texts = grafana_alternatives(val);
    } else {
        char one[VALUE_MAX];
        if (regex_format)
            grafana_unescape(val, strlen(val), one, sizeof one);
        else
            snprintf(one, sizeof one, "%s", val);
        texts = json_pack("[s]", one);
    }
    if (!texts)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    int rc = cond_of(s, col, op, texts, where, out, err);
    json_decref(texts);
    return rc;
}

/* ---- the builder's where text ------------------------------------------------------------- */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Whether p starts a condition: spaces, a name, spaces, an operator. */
static bool starts_condition(const char *p)
{
    p = skip_space(p);
    const char *q = p;
    while (isalnum((unsigned char)*q) || *q == '_')
        q++;
    if (q == p)
        return false;
    q = skip_space(q);
    for (size_t i = 0; i < NELEM(ops); i++)
        if (strncmp(q, ops[i], strlen(ops[i])) == 0)
            return true;
    return false;
}

/* Where the condition starting at p ends: at a comma or the word "and" (any case) outside
 * quotes and parentheses, when a condition follows it (so "env = US,DE" is one value);
 * *next is where the next condition starts (the end of text when none). */
static const char *condition_end(const char *p, const char **next)
{
    char quote = 0;
    int depth = 0;
    for (const char *e = p; *e; e++) {
        if (*e == '\\' && e[1]) {
            e++;
            continue;
        }
        if (quote) {
            quote = *e == quote ? 0 : quote;
            continue;
        }
        if (*e == '\'' || *e == '"')
            quote = *e;
        else if (*e == '(')
            depth++;
        else if (*e == ')' && depth > 0)
            depth--;
        else if (depth == 0 && *e == ',' && (starts_condition(e + 1) || !*skip_space(e + 1))) {
            *next = e + 1;
            return e;
        } else if (depth == 0 && (*e == ' ' || *e == '\t') && strncasecmp(e + 1, "and", 3) == 0 &&
                   (e[4] == ' ' || e[4] == '\t') && starts_condition(e + 4)) {
            *next = e + 4;
            return e;
        }
    }
    *next = p + strlen(p);
    return *next;
}

/* Whether a value in Grafana's regex format holds a character of a regular expression
 * that is not escaped (".*", "prod.*"): it came in raw (a custom All value, ${v:raw}),
 * so it is matched as a regular expression. The (a|b) of a multi-value does not count. */
static bool raw_regex(const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' && v[1]) {
            v++;
            continue;
        }
        if (strchr("^$*+?.[]{}", *v))
            return true;
    }
    return false;
}

static int where_text(const strata_schema *s, const char *text, const grafana_ctx *ctx,
                      const char *label, json_t *list, strata_err *err)
{
    const char *p = text;
    for (int k = 0;; k++) {
        p = skip_space(p);
        if (!*p)
            return 0;
        const char *next;
        const char *end = condition_end(p, &next);
        char where[128];
        snprintf(where, sizeof where, "%s, condition %d", label, k + 1);
        const char *q = p;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        char name[STRATA_NAME_MAX];
        if (q == p || (size_t)(q - p) >= sizeof name)
            return strata_err_set(err, STRATA_EINVAL, "%s: expected 'column op value' (such as "
                                  "status = paid), got '%.*s'", where, (int)(end - p), p);
        memcpy(name, p, (size_t)(q - p));
        name[q - p] = 0;
        int col = find_column(s, name);
        if (col < 0) {
            const char *names[STRATA_MAX_COLUMNS];
            for (int i = 0; i < s->ncols; i++)
                names[i] = s->cols[i].name;
            const char *near = jutil_closest(name, names, (size_t)s->ncols);
            return strata_err_set(err, STRATA_EINVAL, "%s: no column '%s' in table '%s'%s%s%s", where,
                                  name, s->name, near ? " (did you mean '" : "", near ? near : "",
                                  near ? "'?)" : "");
        }
        q = skip_space(q);
        const char *op = NULL;
        for (size_t i = 0; i < NELEM(ops) && !op; i++)
            if (strncmp(q, ops[i], strlen(ops[i])) == 0)
                op = ops[i];
        if (!op)
            return strata_err_set(err, STRATA_EINVAL, "%s: expected an operator (= != < <= > >= =~ "
                                  "!~) after '%s'", where, name);
        if (strcmp(op, "=") == 0 && q[1] == '=')
            return strata_err_set(err, STRATA_EINVAL, "%s: '==' is not an operator here: write '='", where);
        q = skip_space(q + strlen(op));
        const char *ve = end;
        while (ve > q && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\n' || ve[-1] == '\r'))
            ve--;
        bool quoted = ve - q >= 2 && (*q == '\'' || *q == '"') && ve[-1] == *q;
        if (quoted) {
            q++;
            ve--;
        }
        char val[VALUE_MAX];
        if ((size_t)(ve - q) >= sizeof val)
            return strata_err_set(err, STRATA_EINVAL, "%s: value over %d bytes", where, VALUE_MAX - 1);
        memcpy(val, q, (size_t)(ve - q));
        val[ve - q] = 0;
        if (!quoted && !val[0])
            return strata_err_set(err, STRATA_EINVAL, "%s: '%s %s' needs a value", where, name, op);
        json_t *c;
        int rc;
        if ((strcmp(op, "=") == 0 || strcmp(op, "!=") == 0) && s->cols[col].type == STRATA_STRING &&
            raw_regex(val))
            rc = cond_regex(s, col, val, op[0] == '!', ctx, where, &c, err);
        else
            rc = condition(s, col, op, val, true, ctx, where, &c, err);
        if (rc)
            return rc;
        json_array_append_new(list, c);
        p = next;
    }
}

int grafana_where_text(const strata_schema *s, const char *text, const grafana_ctx *ctx,
                       const char *label, json_t *list, strata_err *err)
{
    return where_text(s, text, ctx, label, list, err);
}

/* Appends to list the conditions of the builder's where text. */
static int builder_where(const strata_schema *s, const char *text, const grafana_ctx *ctx,
                         const char *refid, json_t *list, strata_err *err)
{
    char label[64];
    snprintf(label, sizeof label, "target %s: payload.where", refid);
    return where_text(s, text, ctx, label, list, err);
}

/* ---- ad hoc filters ---------------------------------------------------------------------- */

static int adhoc_filters(const strata_schema *s, const grafana_ctx *ctx, const char *refid,
                         json_t *list, strata_err *err)
{
    size_t i;
    json_t *f;
    json_array_foreach(ctx->filters, i, f)
    {
        const char *key = json_string_value(json_object_get(f, "key"));
        const char *op = json_string_value(json_object_get(f, "operator"));
        json_t *value = json_object_get(f, "value");
        json_t *values = json_object_get(f, "values");
        char where[96];
        snprintf(where, sizeof where, "target %s: ad hoc filter %zu", refid, i + 1);
        if (!key || !op)
            return strata_err_set(err, STRATA_EINVAL, "%s: needs \"key\" and \"operator\"", where);
        int col = find_column(s, key);
        if (col < 0)
            continue; /* a dashboard's filter on a column this table does not have */
        char valtext[VALUE_MAX];
        if (json_is_string(value))
            snprintf(valtext, sizeof valtext, "%s", json_string_value(value));
        else if (json_is_integer(value))
            snprintf(valtext, sizeof valtext, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        else if (json_is_real(value))
            snprintf(valtext, sizeof valtext, "%.17g", json_real_value(value));
        else if (json_is_boolean(value))
            snprintf(valtext, sizeof valtext, "%s", json_is_true(value) ? "true" : "false");
        else
            valtext[0] = 0;
        json_t *c = NULL;
        int rc;
        if ((strcmp(op, "=|") == 0 || strcmp(op, "!=|") == 0) && json_is_array(values)) {
            /* the multi-value operators of newer Grafana: any of values */
            json_t *texts = json_array();
            size_t j;
            json_t *v;
            json_array_foreach(values, j, v)
            {
                if (json_is_string(v))
                    json_array_append(texts, v);
            }
            rc = cond_of(s, col, op[0] == '!' ? "!=" : "=", texts, where, &c, err);
            json_decref(texts);
        } else {
            bool known = false;
            for (size_t k = 0; k < NELEM(ops); k++)
                known |= strcmp(op, ops[k]) == 0;
            if (!known)
                return strata_err_set(err, STRATA_EINVAL, "%s: unknown operator '%s' (expected one "
                                      "of = != < <= > >= =~ !~)", where, op);
            rc = condition(s, col, op, valtext, false, ctx, where, &c, err);
        }
        if (rc)
            return rc;
        json_array_append_new(list, c);
    }
    return 0;
}

/* ---- code payloads: multi-values in where ---------------------------------------------------- */

void grafana_where_lists(json_t *conds)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (!json_is_object(c))
            continue;
        grafana_where_lists(json_object_get(c, "or"));
        grafana_where_lists(json_object_get(c, "and"));
        json_t *v = json_object_get(c, "value");
        const char *op = json_string_value(json_object_get(c, "op"));
        if (json_is_array(v) && op && (strcmp(op, "=") == 0 || strcmp(op, "!=") == 0)) {
            json_object_set(c, "values", v);
            json_object_del(c, "value");
            json_object_set_new(c, "op", json_string(op[0] == '=' ? "in" : "not_in"));
        }
    }
}

/* ---- the target ------------------------------------------------------------------------------ */

static int builder_select(const strata_schema *s, const json_t *payload, const char *refid,
                          json_t *q, strata_err *err)
{
    const char *fn = json_string_value(json_object_get(payload, "fn"));
    const char *column = json_string_value(json_object_get(payload, "column"));
    if (!fn || !*fn)
        fn = "count";
    json_t *agg = json_object();
    if (!agg)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    json_object_set_new(q, "select", json_pack("[o]", agg));
    static const char *const quantiles[] = {"p50", "p90", "p95", "p99"};
    static const double qs[] = {0.5, 0.9, 0.95, 0.99};
    for (size_t i = 0; i < NELEM(quantiles); i++)
        if (strcmp(fn, quantiles[i]) == 0) {
            if (!column || !*column)
                return strata_err_set(err, STRATA_EINVAL, "target %s: %s needs a column", refid, fn);
            char as[STRATA_NAME_MAX + 8];
            snprintf(as, sizeof as, "%s_%s", fn, column);
            json_object_set_new(agg, "fn", json_string("quantile"));
            json_object_set_new(agg, "column", json_string(column));
            json_object_set_new(agg, "q", json_real(qs[i]));
            json_object_set_new(agg, "as", json_string(as));
            return 0;
        }
    json_object_set_new(agg, "fn", json_string(fn));
    if (strcmp(fn, "count") != 0) {
        if (!column || !*column)
            return strata_err_set(err, STRATA_EINVAL, "target %s: %s needs a column", refid, fn);
        json_object_set_new(agg, "column", json_string(column));
    }
    (void)s;
    return 0;
}

/* group_by of a builder payload: an array, "a,b", or a multi-value "(a|b)". */
static json_t *builder_group_by(const json_t *g)
{
    if (json_is_array(g))
        return json_deep_copy(g);
    json_t *out = json_array();
    const char *t = json_string_value(g);
    if (!t || !*t || !out)
        return out;
    if (t[0] == '(') {
        json_decref(out);
        return grafana_alternatives(t);
    }
    while (*t) {
        size_t n = strcspn(t, ",");
        char one[STRATA_NAME_MAX * 2];
        const char *a = skip_space(t);
        size_t m = n - (size_t)(a - t);
        while (m && a[m - 1] == ' ')
            m--;
        if (m && m < sizeof one) {
            grafana_unescape(a, m, one, sizeof one);
            json_array_append_new(out, json_string(one));
        }
        t += n + (t[n] == ',');
    }
    return out;
}

int grafana_target_query(const strata_schema *s, const json_t *target, const grafana_ctx *ctx,
                         json_t **out, grafana_shape *shape, strata_err *err)
{
    memset(shape, 0, sizeof *shape);
    grafana_format *fmt = &shape->format;
    const char *refid = json_string_value(json_object_get(target, "refId"));
    if (!refid)
        refid = "?";
    json_t *payload = json_object_get(target, "payload");
    if (payload && !json_is_object(payload))
        payload = NULL;
    json_t *q = payload ? json_deep_copy(payload) : json_object();
    if (!q)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    const char *form = json_string_value(json_object_get(q, "format"));
    *fmt = form && strcmp(form, "table") == 0 ? GRAFANA_TABLE : GRAFANA_SERIES;
    if (form && strcmp(form, "table") != 0 && strcmp(form, "time_series") != 0) {
        strata_err_set(err, STRATA_EINVAL, "target %s: payload.format: '%.64s' is not time_series "
                       "or table", refid, form);
        json_decref(q); /* form is q's */
        return STRATA_EINVAL;
    }
    json_object_del(q, "format");
    const char *mode = json_string_value(json_object_get(target, "editorMode"));
    bool code = json_object_get(q, "select") || json_is_array(json_object_get(q, "where")) ||
                (mode && strcmp(mode, "code") == 0);
    if (code && json_object_size(q) == 0) {
        /* The plugin sends {} for a code payload that was not JSON once the variables were
         * put in (a multi-value inside quotes, a value holding a quote): not "count". */
        json_decref(q);
        return strata_err_set(err, STRATA_EINVAL, "target %s: the code payload is empty, or was not "
                              "valid JSON after Grafana put the variables in (write a multi-value "
                              "without quotes: \"value\": $country)", refid);
    }
    static const char *const builder_keys[] = {"fn", "column", "group_by", "where", "as", "fill",
                                               "interval", "table"};
    if (!code && jutil_check_keys(err, q, "payload", builder_keys, NELEM(builder_keys)) != 0) {
        json_decref(q);
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return strata_err_set(err, STRATA_EINVAL, "target %s: %s", refid, msg);
    }
    int rc = 0;
    json_t *conds = json_array();
    if (!conds) {
        json_decref(q);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    if (code) {
        json_t *w = json_object_get(q, "where");
        if (json_is_array(w)) {
            grafana_where_lists(w);
            json_array_extend(conds, w);
        } else if (w && !json_is_null(w)) {
            rc = strata_err_set(err, STRATA_EINVAL, "target %s: payload.where: expected a list of "
                                "conditions", refid);
        }
        if (!json_object_get(q, "select"))
            json_object_set_new(q, "select", json_pack("[{s:s}]", "fn", "count"));
    } else {
        json_t *g = json_object_get(q, "group_by");
        json_t *w = json_object_get(q, "where");
        json_t *b = json_object();
        if (!b) {
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        } else {
            json_t *groups = builder_group_by(g);
            if (groups && json_array_size(groups))
                json_object_set_new(b, "group_by", groups);
            else
                json_decref(groups);
            json_t *iv = json_object_get(q, "interval");
            if (iv)
                json_object_set(b, "interval", iv);
            json_t *fill = json_object_get(q, "fill");
            if (json_is_string(fill) && strcmp(json_string_value(fill), "none") != 0 &&
                ctx->from_ms > INT64_MIN)
                json_object_set(b, "fill", fill); /* query_parse checks the word */
            rc = builder_select(s, q, refid, b, err);
            const char *as = json_string_value(json_object_get(q, "as"));
            if (!rc && as && *as) {
                json_object_set_new(json_array_get(json_object_get(b, "select"), 0), "as", json_string(as));
                snprintf(shape->legend, sizeof shape->legend, "%s", as);
            }
            if (!rc && json_is_string(w))
                rc = builder_where(s, json_string_value(w), ctx, refid, conds, err);
            else if (!rc && w && !json_is_null(w) && !(json_is_string(w)))
                rc = strata_err_set(err, STRATA_EINVAL, "target %s: payload.where: expected text "
                                    "such as \"status = paid, amount > 100\"", refid);
        }
        json_decref(q);
        q = b;
    }
    if (!rc && ctx->filters)
        rc = adhoc_filters(s, ctx, refid, conds, err);
    if (rc) {
        json_decref(conds);
        json_decref(q);
        return rc;
    }
    if (json_array_size(conds))
        json_object_set_new(q, "where", conds);
    else {
        json_decref(conds);
        json_object_del(q, "where");
    }
    json_object_set_new(q, "table", json_string(s->name));
    if (!json_object_get(q, "from") && ctx->from_ms > INT64_MIN)
        json_object_set_new(q, "from", json_integer(ctx->from_ms));
    if (!json_object_get(q, "to") && ctx->to_ms < INT64_MAX)
        json_object_set_new(q, "to", json_integer(ctx->to_ms));
    json_t *iv = json_object_get(q, "interval");
    bool automatic = json_is_string(iv) && strcmp(json_string_value(iv), "auto") == 0;
    if ((*fmt == GRAFANA_SERIES && (!iv || json_is_null(iv))) || automatic) {
        int64_t from = ctx->from_ms, to = ctx->to_ms;
        int64_t b = grafana_bucket_ms(s, from, to, ctx->interval_ms, ctx->max_points);
        char text[32];
        units_format_duration_ms(b, text, sizeof text);
        json_object_set_new(q, "interval", json_string(text));
    } else if (json_is_null(iv)) {
        json_object_del(q, "interval");
    }
    *out = q;
    return 0;
}
