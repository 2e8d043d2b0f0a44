/*
 * json_util.c — helpers shared by the JSON parsers. See json_util.h.
 */
#include "engine/json_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *jutil_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL:
    default: return "null";
    }
}

int jutil_type_error(strata_err *err, const char *path, const char *expected, const json_t *v)
{
    return strata_err_set(err, STRATA_EINVAL, "%s: expected %s, got %s", path, expected, jutil_kind(v));
}

json_t *jutil_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return (v && json_is_null(v)) ? NULL : v;
}

void jutil_path_key(char *out, size_t cap, const char *parent, const char *key)
{
    if ((size_t)snprintf(out, cap, "%s%s%s", parent, parent[0] ? "." : "", key) >= cap)
        out[cap - 1] = 0;
}

void jutil_path_index(char *out, size_t cap, const char *parent, size_t i)
{
    if ((size_t)snprintf(out, cap, "%s[%zu]", parent, i) >= cap)
        out[cap - 1] = 0;
}

size_t jutil_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *jutil_closest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = jutil_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best && best_d <= 2 && best_d < wl ? best : NULL;
}

void jutil_join_names(const char *const *names, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int jutil_check_keys(strata_err *err, json_t *obj, const char *path, const char *const *allowed,
                     size_t n)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (ok)
            continue;
        const char *sep = path[0] ? ": " : "";
        const char *near = jutil_closest(key, allowed, n);
        if (near)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s%sunknown key '%.64s' (did you mean '%s'?)", path, sep, key,
                                  near);
        char list[320];
        jutil_join_names(allowed, n, list, sizeof list);
        return strata_err_set(err, STRATA_EINVAL, "%s%sunknown key '%.64s' (expected one of %s)",
                              path, sep, key, list);
    }
    return 0;
}

jutil_real_verdict jutil_real_integer(strata_type type, double d, int64_t *out)
{
    const double two53 = 9007199254740992.0, two63 = 9223372036854775808.0;
    if (!isfinite(d) || d != floor(d))
        return JUTIL_REAL_FRACTION;
    switch (type) {
    case STRATA_INT32:
        if (d < (double)INT32_MIN || d > (double)INT32_MAX)
            return JUTIL_REAL_RANGE;
        break;
    case STRATA_UINT64:
        if (d < 0)
            return JUTIL_REAL_NEGATIVE;
        if (d >= 2.0 * two63)
            return JUTIL_REAL_RANGE;
        break;
    case STRATA_TIMESTAMP:
    case STRATA_INT64:
        if (d < -two63 || d >= two63)
            return JUTIL_REAL_RANGE;
        break;
    default: return JUTIL_REAL_RANGE;
    }
    if (fabs(d) >= two53)
        return JUTIL_REAL_INEXACT;
    *out = (int64_t)d; /* -0.0 is 0 */
    return JUTIL_REAL_INT;
}

void jutil_real_text(double d, char *out, size_t cap)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* "1e+19" -> "1e19", "1e-05" -> "1e-5"; no '.' nor 'e' -> append ".0" */
    char buf[48];
    size_t n = 0;
    bool has_point = false, has_exp = false;
    for (const char *p = tmp; *p && n < sizeof buf - 3; p++) {
        if (*p == '.')
            has_point = true;
        if (*p == 'e') {
            has_exp = true;
            buf[n++] = 'e';
            p++;
            if (*p == '-')
                buf[n++] = '-';
            if (*p == '+' || *p == '-')
                p++;
            while (*p == '0' && p[1])
                p++;
            p--;
            continue;
        }
        buf[n++] = *p;
    }
    if (!has_point && !has_exp && isfinite(d)) {
        buf[n++] = '.';
        buf[n++] = '0';
    }
    buf[n] = 0;
    if ((size_t)snprintf(out, cap, "%s", buf) >= cap && cap)
        out[cap - 1] = 0;
}
