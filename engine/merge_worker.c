/*
 * merge_worker.c — the thread of merge_worker.h: passes over the catalog's tables, each a
 * retention sweep then the best merge, paced by a condition variable the stop signals.
 * Per table (by name) it keeps the run of failing merges and when to try again.
 */
#include "engine/merge_worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/retention.h"
#include "engine/rollup_build.h"
#include "engine/units.h"

/* A table whose merges fail: how many in a row, and when to try again. */
typedef struct failing {
    char name[STRATA_NAME_MAX];
    uint64_t count;
    int64_t retry_at_ms; /* monotonic */
} failing;

struct merge_worker {
    strata_catalog *cat;
    merge_worker_opts o;
    merge_policy policy;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    failing *fails;
    size_t nfails;
    uint64_t rollup_failures; /* in a row, over all tables */
    uint64_t rollup_save_failures;
};

static void tell(merge_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell(merge_worker *w, const char *fmt, ...)
{
    if (!w->o.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->o.log(line);
}

static failing *failing_of(merge_worker *w, const char *name, bool make)
{
    for (size_t i = 0; i < w->nfails; i++)
        if (strcmp(w->fails[i].name, name) == 0)
            return &w->fails[i];
    if (!make)
        return NULL;
    failing *nf = realloc(w->fails, sizeof *nf * (w->nfails + 1));
    if (!nf)
        return NULL;
    w->fails = nf;
    failing *f = &nf[w->nfails++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static void sweep(merge_worker *w, strata_table *t)
{
    const char *name = table_schema(t)->name;
    retention_report rr;
    strata_err err = {0};
    int rc = retention_sweep(t, clock_wall_ms(), &rr, &err);
    if (rr.partitions) {
        char keep[32];
        units_format_duration_ms(table_schema(t)->retention_raw_ms, keep, sizeof keep);
        if (rr.partitions == 1)
            tell(w, "table %s: retention (raw %s) dropped partition %s, %" PRIu64 " rows", name, keep,
                 rr.first, rr.rows);
        else
            tell(w, "table %s: retention (raw %s) dropped %u partitions (%s .. %s), %" PRIu64 " rows",
                 name, keep, rr.partitions, rr.first, rr.last, rr.rows);
    }
    if (rc && rc != STRATA_ENOTFOUND)
        tell(w, "table %s: retention failed (will retry): %s", name, err.msg);
}

/* Seals and rebuilds of t's rollup tiers (a few jobs a pass). True when one ran. */
static bool rollups_advance(merge_worker *w, strata_table *t)
{
    rollup_advance_report rep;
    strata_err err = {0};
    int rc = rollup_advance(t, &w->stop, 4, &rep, &err);
    if (rc && !atomic_load(&w->stop)) {
        uint64_t n = ++w->rollup_failures;
        if ((n & (n - 1)) == 0)
            tell(w, "table %s: rollup build failed (%" PRIu64 " in a row; will retry): %s", table_schema(t)->name, n,
                 err.msg);
    } else if (rc == 0 && rep.jobs) {
        w->rollup_failures = 0;
    }
    return rep.jobs > 0;
}

/* Saves what t's rollup tiers built since their last save, every ROLLUP_SAVE_EVERY_MS. */
static void rollups_save(merge_worker *w, strata_table *t)
{
    strata_err err = {0};
    if (table_rollups_save_due(t, ROLLUP_SAVE_EVERY_MS, &err) != 0 && !atomic_load(&w->stop)) {
        uint64_t n = ++w->rollup_save_failures;
        if ((n & (n - 1)) == 0)
            tell(w, "table %s: saving rollup tiers failed (%" PRIu64 " in a row; will retry): %s", table_schema(t)->name,
                 n, err.msg);
    } else {
        w->rollup_save_failures = 0;
    }
}

/* The table's best merge, unless it is backing off. True when something was merged. */
static bool merge_one(merge_worker *w, strata_table *t)
{
    const char *name = table_schema(t)->name;
    int64_t now = clock_mono_ms();
    failing *f = failing_of(w, name, false);
    if (f && f->count && now < f->retry_at_ms)
        return false;
    merge_report rep;
    strata_err err = {0};
    merge_opts mo = {.stop = &w->stop, .skip_if_busy = true};
    int rc = merge_table_once(t, &w->policy, &mo, &rep, &err);
    if (rc == 0) {
        if (f && f->count) {
            tell(w, "table %s: merges work again after %" PRIu64 " failure(s)", name, f->count);
            f->count = 0;
        }
        return rep.merged;
    }
    if (atomic_load(&w->stop) || rc == STRATA_ENOTFOUND)
        return false;
    /* Said once, like a query that meets it first (http/api_query.c); a query meeting it
     * later says nothing more. */
    if (rc == STRATA_ECORRUPT && table_report_damage(t, err.msg))
        tell(w, "table %s: DAMAGED SEGMENT met by a merge: %s", name, err.msg);
    if (!f)
        f = failing_of(w, name, true);
    if (f) {
        uint64_t n = ++f->count;
        int64_t backoff = n >= 7 ? 60000 : (int64_t)1000 << (n - 1);
        f->retry_at_ms = now + (backoff > 60000 ? 60000 : backoff);
        if ((n & (n - 1)) == 0 || n % 64 == 0)
            tell(w, "table %s: merge failed (%" PRIu64 " in a row; will retry): %s", name, n, err.msg);
    }
    return false;
}

static void *worker_main(void *arg)
{
    merge_worker *w = arg;
    if (w->o.nice > 0)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->o.nice); /* best effort */
    while (!atomic_load(&w->stop)) {
        bool merged = false;
        strata_table *t;
        for (size_t i = 0; !atomic_load(&w->stop) && (t = catalog_at(w->cat, i)) != NULL; i++) {
            if (!table_failure(t, NULL, 0)) { /* a failed table refuses both; /health says why */
                sweep(w, t);
                if (!atomic_load(&w->stop))
                    merged |= rollups_advance(w, t);
                if (!atomic_load(&w->stop))
                    rollups_save(w, t);
                if (!atomic_load(&w->stop))
                    merged |= merge_one(w, t);
            }
            catalog_put(w->cat, t);
        }
        int64_t wait_ms = merged ? w->o.pause_ms : w->o.interval_ms;
        struct timespec until = clock_after_ms(CLOCK_MONOTONIC, wait_ms);
        pthread_mutex_lock(&w->mu);
        while (!atomic_load(&w->stop) && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

int merge_worker_start(strata_catalog *cat, const merge_worker_opts *o, merge_worker **out,
                       strata_err *err)
{
    *out = NULL;
    merge_worker *w = calloc(1, sizeof *w);
    if (!w)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    w->cat = cat;
    if (o)
        w->o = *o;
    if (w->o.interval_ms <= 0)
        w->o.interval_ms = 500;
    if (w->o.pause_ms <= 0)
        w->o.pause_ms = 50;
    if (w->o.nice == 0)
        w->o.nice = 10;
    if (w->o.policy)
        w->policy = *w->o.policy;
    else
        merge_policy_default(&w->policy);
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc == 0)
        pthread_setname_np(w->thread, "merge");
    if (rc) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return strata_err_set(err, STRATA_EIO, "cannot start the merge thread: %s", strerror(rc));
    }
    *out = w;
    return 0;
}

void merge_worker_stop(merge_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, true);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->fails);
    free(w);
}
