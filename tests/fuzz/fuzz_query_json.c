/*
 * fuzz_query_json.c — libFuzzer target for the JSON query parser (http/query_parse.c) and
 * the JSON writers (http/query_answer.c), against a fixed table: orders(ts timestamp, country string,
 * amount float64, user_id uint64, qty int32, ok bool), now = 2024-06-01T12:00:00Z.
 *
 * Any bytes must give either a query that keeps every promise of query_parse.h (checked
 * field by field, the where tree node by node, then freed) or an error with a message;
 * never a crash, a leak or undefined behaviour. query_parse_table_name must agree with the
 * parser on "table". The error body for the message, and an answer holding the input
 * bytes as a string cell, must both be JSON that jansson reads back.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/query_answer.h"
#include "http/query_parse.h"

#define NOW INT64_C(1717243200000)

static strata_schema schema;

static void init_schema(void)
{
    static const char *const names[] = {"ts", "country", "amount", "user_id", "qty", "ok"};
    static const strata_type types[] = {STRATA_TIMESTAMP, STRATA_STRING, STRATA_FLOAT64,
                                        STRATA_UINT64,    STRATA_INT32,  STRATA_BOOL};
    schema_init(&schema);
    strcpy(schema.name, "orders");
    for (int i = 0; i < 6; i++) {
        strcpy(schema.cols[i].name, names[i]);
        schema.cols[i].type = types[i];
    }
    schema.ncols = 6;
    schema.time_col = 0;
}

/* Aborts unless e (at nesting depth) is a well-formed node. */
static void check_expr(const query_expr *e, int depth)
{
    if (depth > QUERY_PARSE_MAX_DEPTH)
        abort();
    if (e->kind == QX_AND || e->kind == QX_OR) {
        if (e->nkids < 1 || !e->kids || e->vals || e->strs || e->pred.nvals)
            abort();
        for (uint32_t i = 0; i < e->nkids; i++)
            check_expr(&e->kids[i], depth + 1);
        return;
    }
    if (e->kind != QX_PRED || e->kids || e->nkids)
        abort();
    const segment_pred *p = &e->pred;
    if (p->col < 0 || p->col >= schema.ncols || p->op > SEGMENT_PRED_NOT_IN || !e->vals ||
        p->vals != e->vals || p->nvals > QUERY_PARSE_MAX_IN_VALUES)
        abort();
    if (p->op != SEGMENT_PRED_IN && p->op != SEGMENT_PRED_NOT_IN && p->nvals != 1)
        abort();
    strata_type t = schema.cols[p->col].type;
    if ((t == STRATA_STRING) != (e->strs != NULL))
        abort();
    for (uint32_t i = 0; i < p->nvals; i++) {
        const segment_value *v = &p->vals[i];
        if (t == STRATA_STRING) {
            if (!e->strs[i] || v->s.ptr != e->strs[i] || strlen(e->strs[i]) != v->s.len)
                abort();
        } else if (t == STRATA_INT32 && (v->i < INT32_MIN || v->i > INT32_MAX)) {
            abort();
        } else if (t == STRATA_BOOL && v->i != 0 && v->i != 1) {
            abort();
        } else if (t == STRATA_FLOAT64 && !isfinite(v->f)) {
            abort();
        }
    }
}

/* Aborts unless q keeps every promise of query_parse_json. */
static void check_query(const strata_query *q)
{
    if (q->from_ms >= q->to_ms || q->timeout_ms != 0 || q->max_groups != 0 || q->limit < -1)
        abort();
    if (q->interval_ms != 0 && (q->interval_ms < QUERY_PARSE_MIN_INTERVAL_MS ||
                                q->interval_ms > QUERY_PARSE_MAX_INTERVAL_MS))
        abort();
    if (q->fill != QUERY_FILL_NONE && q->fill != QUERY_FILL_ZERO && q->fill != QUERY_FILL_NULL)
        abort();
    if (q->fill != QUERY_FILL_NONE &&
        (q->interval_ms <= 0 || q->from_ms == INT64_MIN || q->to_ms == INT64_MAX))
        abort(); /* the engine would refuse it: fill needs buckets and bounds */
    if (q->ngroup < 0 || q->ngroup > QUERY_MAX_GROUP || q->naggs < 1 || q->naggs > QUERY_MAX_AGGS ||
        q->norder < 0 || q->norder > QUERY_MAX_ORDER)
        abort();
    const char *names[1 + QUERY_MAX_GROUP + QUERY_MAX_AGGS];
    int nout = 0;
    if (q->interval_ms > 0)
        names[nout++] = "time";
    for (int g = 0; g < q->ngroup; g++) {
        if (q->group_cols[g] < 0 || q->group_cols[g] >= schema.ncols)
            abort();
        names[nout++] = schema.cols[q->group_cols[g]].name;
    }
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *ag = &q->aggs[a];
        size_t len = strnlen(ag->name, QUERY_NAME_MAX);
        if (len == 0 || len == QUERY_NAME_MAX)
            abort();
        if (ag->fn == STRATA_AGG_COUNT) {
            if (ag->col != -1)
                abort();
        } else {
            if (ag->fn < STRATA_AGG_SUM || ag->fn > STRATA_AGG_QUANTILE || ag->col < 0 ||
                ag->col >= schema.ncols)
                abort();
            if (schema.cols[ag->col].type == STRATA_STRING && ag->fn != STRATA_AGG_UNIQ)
                abort();
        }
        if (ag->fn == STRATA_AGG_QUANTILE && !(ag->q >= 0 && ag->q <= 1))
            abort();
        names[nout++] = ag->name;
    }
    for (int i = 0; i < nout; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                abort(); /* output names are unique */
    for (int o = 0; o < q->norder; o++)
        if (q->order[o].output_col < 0 || q->order[o].output_col >= nout)
            abort();
    if (q->where)
        check_expr(q->where, 1);
}

/* Aborts unless text[0..len) is JSON jansson reads (NULs allowed in strings). */
static void check_json(const char *text, size_t len)
{
    if (!text || strlen(text) != len)
        abort();
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (!j)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schema.ncols)
        init_schema();
    const char *text = (const char *)data;
    strata_query q;
    strata_err err = {0};
    char name[STRATA_NAME_MAX + 1];
    strata_err name_err = {0};
    int name_rc = query_parse_table_name(text, size, name, sizeof name, &name_err);
    if (name_rc != 0 && name_err.msg[0] == 0)
        abort();
    if (query_parse_json(text, size, &schema, NOW, &q, &err) == 0) {
        if (name_rc != 0 || strcmp(name, "orders") != 0)
            abort(); /* the parser accepted a table name the extractor refused */
        check_query(&q);
        query_free(&q);
        if (q.where)
            abort();
    } else if (err.msg[0] == 0 || (err.code != STRATA_EINVAL && err.code != STRATA_ENOMEM)) {
        abort(); /* every error says why */
    } else {
        json_t *m = json_string(err.msg); /* NULL when not valid UTF-8 */
        if (!m)
            abort();
        json_decref(m);
    }

    /* the error body for the message, or for the input (NUL-terminated copy) */
    size_t n = size < UINT32_MAX ? size : UINT32_MAX;
    char *copy = malloc(n + 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    copy[n] = 0;
    size_t len;
    char *body = query_answer_error(err.msg[0] ? err.msg : copy, &len);
    check_json(body, len);
    free(body);

    /* the input bytes as a string cell, as a column name, and as a float */
    query_result *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->ncols = 2;
    r->nrows = 1;
    r->cells = calloc(2, sizeof *r->cells);
    if (!r->cells)
        abort();
    r->cells[0].kind = QC_STR;
    r->cells[0].v.s.ptr = copy;
    r->cells[0].v.s.len = (uint32_t)n;
    r->cells[1].kind = QC_FLOAT;
    if (size >= 8)
        memcpy(&r->cells[1].v.f, data, 8);
    size_t nl = size < QUERY_NAME_MAX - 1 ? size : QUERY_NAME_MAX - 1;
    memcpy(r->names[0], data, nl);
    r->types[0] = "string";
    strcpy(r->names[1], "f");
    r->types[1] = "float64";
    char *answer = query_answer_json(r, NULL, &len);
    check_json(answer, len);
    free(answer);
    query_result_free(r);
    return 0;
}
