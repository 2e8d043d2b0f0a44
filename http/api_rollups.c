/*
 * api_rollups.c — how a table's rollup tiers (engine/rollup.h) show over HTTP: the
 * "rollups" list of GET /tables/{name} and the strata_rollup_* lines of /metrics.
 *
 * A tier is named by its interval and dimensions (two tiers may share an interval); it
 * says its interval and dimensions, whether it is built yet (or still catching up with
 * the watermark), the range it knows
 * (built_from to sealed_through: the buckets a query may take from it, dirty ones
 * excepted), its buckets with rows, their rows and memory, its dirty buckets, its
 * builds since start, and its files (engine/rollup_store.h): segments, rows and bytes on
 * disk, saves and merges since start, and when it was last saved.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/rollup.h"
#include "engine/rollup_store.h"
#include "engine/table.h"
#include "engine/units.h"
#include "http/api.h"

static json_t *time_or_null(int64_t ms)
{
    if (ms == INT64_MIN)
        return json_null();
    char t[40];
    units_format_rfc3339_ms(ms, t, sizeof t);
    return json_string(t);
}

json_t *api_rollups_json(strata_table *t)
{
    const strata_schema *sc = table_schema(t);
    struct rollup_set *rs = table_rollups(t);
    json_t *arr = json_array();
    for (int i = 0; arr && i < sc->nrollups; i++) {
        const strata_rollup *r = &sc->rollups[i];
        rollup_tier_stats st;
        if (rs)
            rollup_get_stats(rs, i, &st);
        else
            memset(&st, 0, sizeof st), st.built_from = st.sealed_through = INT64_MIN;
        char iv[32];
        units_format_duration_ms(r->interval_ms, iv, sizeof iv);
        json_t *dims = json_array();
        for (int d = 0; dims && d < r->ndims; d++)
            json_array_append_new(dims, json_string(sc->cols[r->dims[d]].name));
        /* catching up: more than two buckets (or a minute) behind the watermark, as after a
         * start or a bulk load, or building back to older rows, while the background thread
         * builds */
        int64_t latest = table_latest_time(t, clock_wall_ms());
        int64_t lag = latest == INT64_MIN || st.sealed_through == INT64_MIN
                          ? 0
                          : latest - sc->lateness_ms - st.sealed_through;
        int64_t slack = 2 * r->interval_ms > 60000 ? 2 * r->interval_ms : 60000;
        const char *state = !rs                         ? "off (out of memory at open)"
                            : !st.valid                  ? "not built yet"
                            : lag > slack || st.backfill ? "catching up"
                                                         : "built";
        json_t *o = json_pack("{s:s, s:o*, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "interval", iv,
                              "dimensions", dims, "state", state,
                              "built_from", time_or_null(st.built_from), "sealed_through",
                              time_or_null(st.sealed_through), "buckets", (json_int_t)st.buckets, "rows",
                              (json_int_t)st.rows, "bytes", (json_int_t)st.bytes, "dirty_buckets",
                              (json_int_t)st.dirty, "builds", (json_int_t)st.builds, "rebuilt_buckets",
                              (json_int_t)st.rebuilt_buckets, "build_seconds", (double)st.build_ns / 1e9);
        if (o && rs) {
            json_object_set_new(o, "memory_limit", json_integer((json_int_t)st.memory_limit));
            json_object_set_new(o, "forgotten_for_memory", json_integer((json_int_t)st.forgotten_for_memory));
            rollup_store_tier_stats fs;
            table_rollup_store_stats(t, i, &fs);
            char dir[64];
            rollup_store_dir_name(sc, i, dir, sizeof dir);
            json_object_set_new(o, "files", json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:b}", "directory", dir,
                                                      "segments", (json_int_t)fs.segments, "rows", (json_int_t)fs.rows,
                                                      "bytes", (json_int_t)fs.bytes, "saves", (json_int_t)fs.saves,
                                                      "merges", (json_int_t)fs.merges, "last_save",
                                                      fs.last_save_ms ? time_or_null(fs.last_save_ms) : json_null(),
                                                      "unsaved", rollup_unsaved(rs, i)));
        }
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void api_rollups_metrics(struct strata_server *s, bytebuf *b)
{
    static const char *const names[] = {"strata_rollup_buckets", "strata_rollup_rows", "strata_rollup_bytes",
                                        "strata_rollup_dirty_buckets", "strata_rollup_sealed_through_seconds",
                                        "strata_rollup_builds_total", "strata_rollup_rebuilt_buckets_total",
                                        "strata_rollup_build_seconds_total", "strata_rollup_disk_bytes",
                                        "strata_rollup_disk_segments", "strata_rollup_saves_total"};
    static const char *const help[] = {
        "Materialized buckets (with rows) of a rollup tier.", "Rows (bucket, dimensions) of those buckets.",
        "Memory a tier holds (buckets, sketches, dictionaries).",
        "Buckets changed after sealing, answered from raw rows until rebuilt.",
        "The end of the time a tier has sealed (epoch seconds; 0: not built yet).",
        "Seals and rebuilds since start.", "Dirty buckets rebuilt since start.", "Time spent building since start.",
        "Bytes of a tier's segment files.", "Segment files of a tier.", "Saves of a tier's new buckets since start."};
    char line[1536];
    for (int m = 0; m < 11; m++) {
        int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", names[m], help[m], names[m],
                         (m >= 5 && m <= 7) || m == 10 ? "counter" : "gauge");
        buf_put(b, line, (size_t)n);
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            struct rollup_set *rs = table_rollups(t);
            for (int ti = 0; rs && ti < rollup_set_ntiers(rs); ti++) {
                rollup_tier_stats st;
                rollup_get_stats(rs, ti, &st);
                char iv[32], dims[1024];
                units_format_duration_ms(st.interval_ms, iv, sizeof iv);
                rollup_dims_text(table_schema(t), ti, dims, sizeof dims);
                rollup_store_tier_stats fs;
                table_rollup_store_stats(t, ti, &fs);
                double v[11] = {(double)st.buckets, (double)st.rows, (double)st.bytes, (double)st.dirty,
                                st.sealed_through == INT64_MIN ? 0 : (double)st.sealed_through / 1000.0,
                                (double)st.builds, (double)st.rebuilt_buckets, (double)st.build_ns / 1e9,
                                (double)fs.bytes, (double)fs.segments, (double)fs.saves};
                n = snprintf(line, sizeof line, "%s{table=\"%s\",tier=\"%s\",dimensions=\"%s\"} %.17g\n", names[m],
                             table_schema(t)->name, iv, dims, v[m]);
                buf_put(b, line, (size_t)n);
            }
            catalog_put(s->cat, t);
        }
    }
}
