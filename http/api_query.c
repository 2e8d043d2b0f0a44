/*
 * api_query.c — POST /query: the body, a query in the JSON language of query_parse.h, is
 * parsed against the schema of the table it names, run by the engine (query_run) under
 * the server's limits (time, groups, memory), and answered as query_answer.h writes it.
 *
 * The table is looked up first (query_parse_table_name) so a missing one is told apart
 * from a bad query; a query that meets a damaged segment logs the damage once. Every query
 * counts in /metrics: queries, errors, and the latency histogram of the answered ones.
 */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/query.h"
#include "engine/table.h"
#include "http/query_answer.h"
#include "http/query_parse.h"

const double api_query_latency_bounds_ms[API_QUERY_LATENCY_BUCKETS] = {1,   2,   5,    10,   25,
                                                                        50,  100, 250,  500,  1000,
                                                                        2500, 10000};

int api_query_run(strata_server *s, strata_table *t, const char *text, size_t len,
                  strata_query *q, query_result **out, strata_err *err)
{
    *out = NULL;
    int prc = query_parse_json(text, len, table_schema(t), clock_wall_ms(), q, err);
    if (prc != 0)
        return prc;
    q->timeout_ms = s->opts.query_timeout_ms;
    q->max_groups = s->opts.query_max_groups;
    q->max_memory = s->opts.query_max_memory;
    char before[512];
    table_damage(t, before, sizeof before);
    int rc = query_run(t, q, out, err);
    if (rc == STRATA_ECORRUPT && s->opts.log) {
        char now[512], line[1200];
        table_damage(t, now, sizeof now);
        if (strcmp(before, now) != 0) { /* each new damage once, not every query that meets it */
            snprintf(line, sizeof line, "table %s: DAMAGED SEGMENT met by a query: %s",
                     table_schema(t)->name, now);
            s->opts.log(line);
        }
    }
    if (rc) {
        query_free(q);
        /* Say which setting the limit is, so the operator knows what to raise. */
        const char *which = rc != STRATA_EFULL           ? NULL
                            : strstr(err->msg, "memory")  ? "strata serve --query-memory, or query_memory in the config"
                            : strstr(err->msg, "groups")  ? "query_max_groups in the config"
                            : strstr(err->msg, "time limit") ? "strata serve --query-timeout, or query_timeout in the config"
                                                         : NULL;
        if (which) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, " (the limit is %s)", which);
        }
    }
    return rc;
}

void api_query_count(strata_server *s, double t0, bool failed)
{
    atomic_fetch_add(&s->queries, 1);
    if (failed) {
        atomic_fetch_add(&s->query_errors, 1);
        return;
    }
    double el = clock_mono_ms_frac() - t0;
    int b = 0;
    while (b < API_QUERY_LATENCY_BUCKETS && el > api_query_latency_bounds_ms[b])
        b++;
    atomic_fetch_add(&s->query_latency[b], 1);
    atomic_fetch_add(&s->query_latency_sum_us, (uint64_t)(el * 1000));
}

enum MHD_Result api_query_post(strata_server *s, struct MHD_Connection *c, request *rq,
                               const char *method)
{
    (void)method;
    double t0 = clock_mono_ms_frac();
    strata_err err = {0};
    char name[STRATA_NAME_MAX + 1];
    const char *text = (const char *)rq->body.data;
    size_t len = rq->body.len;
    if (query_parse_table_name(text, len, name, sizeof name, &err) != 0) {
        api_query_count(s, t0, true);
        return reply_error(s, c, 400, "%s", err.msg);
    }
    strata_table *t = catalog_get(s->cat, name);
    if (!t) {
        api_query_count(s, t0, true);
        return api_tables_send_missing(s, c, name, "table: ");
    }
    strata_query q;
    query_result *r;
    int rc = api_query_run(s, t, text, len, &q, &r, &err);
    catalog_put(s->cat, t);
    if (rc) {
        api_query_count(s, t0, true);
        return reply_error(s, c, reply_status_of(rc), "%s", err.msg);
    }
    size_t out_len;
    char *out = query_answer_json(r, &q, &out_len);
    query_result_free(r);
    query_free(&q);
    api_query_count(s, t0, false);
    if (!out)
        return reply_error(s, c, 503, "out of memory writing the answer");
    return reply_json_text(s, c, 200, out, out_len);
}
