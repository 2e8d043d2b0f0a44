/*
 * test_order_gen.c — the order-event generator: schema, determinism and batching
 * independence, distributions, duplicates and late events, exact totals (recomputed here
 * with a hash map over every row), JSON text that jansson parses back to the same values,
 * and malformed events that a strict decoder must reject.
 */
#include <jansson.h>
#include <math.h>

#include "tools/order_gen.h"
#include "test.h"

static order_gen *mk(const order_gen_opts *o)
{
    strata_err err = {0};
    order_gen *g = order_gen_create(o, &err);
    if (!g)
        TEST_FAIL_("order_gen_create: %s", err.msg);
    return g;
}

static int find_str(const char *const *vals, int n, strata_str s)
{
    for (int k = 0; k < n; k++)
        if (strlen(vals[k]) == s.len && memcmp(vals[k], s.ptr, s.len) == 0)
            return k;
    return -1;
}

static int find_cstr(const char *const *vals, int n, const char *s)
{
    strata_str v = {s, (uint32_t)strlen(s)};
    return find_str(vals, n, v);
}

/* ---- a recomputation of the totals from rows -------------------------------------------- */

typedef struct rec {
    uint64_t event_id, version;
    int64_t ts, cents, quantity;
    int country, status;
} rec;

typedef struct key_slot {
    uint64_t event_id;
    uint64_t version;
    int status;
    bool used;
} key_slot;

typedef struct check {
    key_slot *tab;
    uint64_t mask;
    order_gen_totals t;
} check;

static void check_init(check *c, uint64_t expect)
{
    uint64_t n = 1024;
    while (n < expect * 2)
        n *= 2;
    c->tab = calloc(n, sizeof *c->tab);
    c->mask = n - 1;
    memset(&c->t, 0, sizeof c->t);
}

static key_slot *check_find(check *c, uint64_t id)
{
    uint64_t h = (id * 0x9e3779b97f4a7c15ULL) >> 20;
    for (uint64_t k = h & c->mask;; k = (k + 1) & c->mask)
        if (!c->tab[k].used || c->tab[k].event_id == id)
            return &c->tab[k];
}

static void check_add(check *c, const rec *r)
{
    order_gen_totals *t = &c->t;
    if (t->events == 0 || r->ts < t->ts_min)
        t->ts_min = r->ts;
    if (t->events == 0 || r->ts > t->ts_max)
        t->ts_max = r->ts;
    t->events++;
    if (r->version > 1)
        t->duplicates++;
    t->amount_cents_all += r->cents;
    t->country_events_all[r->country]++;
    t->country_cents_all[r->country] += r->cents;
    t->status_events_all[r->status]++;
    t->quantity_all += (uint64_t)r->quantity;
    key_slot *s = check_find(c, r->event_id);
    if (!s->used) {
        s->used = true;
        s->event_id = r->event_id;
        s->version = r->version;
        s->status = r->status;
        t->distinct_events++;
        t->amount_cents_latest += r->cents;
        t->country_events_latest[r->country]++;
        t->country_cents_latest[r->country] += r->cents;
        t->quantity_latest += (uint64_t)r->quantity;
        t->status_events_latest[r->status]++;
        return;
    }
    /* A later row of a known key must carry a greater version. */
    if (r->version <= s->version)
        TEST_FAIL_("event %llu: version %llu after %llu", (unsigned long long)r->event_id,
                   (unsigned long long)r->version, (unsigned long long)s->version);
    t->status_events_latest[s->status]--;
    t->status_events_latest[r->status]++;
    s->version = r->version;
    s->status = r->status;
}

static void check_compare(const check *c, const order_gen_totals *g)
{
    const order_gen_totals *t = &c->t;
    ASSERT_U64_EQ(g->events, t->events);
    ASSERT_U64_EQ(g->duplicates, t->duplicates);
    ASSERT_U64_EQ(g->distinct_events, t->distinct_events);
    ASSERT_EQ(g->ts_min, t->ts_min);
    ASSERT_EQ(g->ts_max, t->ts_max);
    ASSERT_EQ(g->amount_cents_all, t->amount_cents_all);
    ASSERT_EQ(g->amount_cents_latest, t->amount_cents_latest);
    ASSERT_U64_EQ(g->quantity_all, t->quantity_all);
    ASSERT_U64_EQ(g->quantity_latest, t->quantity_latest);
    for (int k = 0; k < ORDER_GEN_NCOUNTRIES; k++) {
        ASSERT_U64_EQ(g->country_events_all[k], t->country_events_all[k]);
        ASSERT_EQ(g->country_cents_all[k], t->country_cents_all[k]);
        ASSERT_U64_EQ(g->country_events_latest[k], t->country_events_latest[k]);
        ASSERT_EQ(g->country_cents_latest[k], t->country_cents_latest[k]);
    }
    for (int k = 0; k < ORDER_GEN_NSTATUSES; k++) {
        ASSERT_U64_EQ(g->status_events_all[k], t->status_events_all[k]);
        ASSERT_U64_EQ(g->status_events_latest[k], t->status_events_latest[k]);
    }
}

static rec rec_of(const row_batch *b, uint32_t r)
{
    rec x;
    x.event_id = (uint64_t)b->i[ORDER_COL_EVENT_ID][r];
    x.version = (uint64_t)b->i[ORDER_COL_VERSION][r];
    x.ts = b->i[ORDER_COL_TS][r];
    x.cents = (int64_t)llround(b->f[ORDER_COL_AMOUNT][r] * 100.0);
    x.quantity = b->i[ORDER_COL_QUANTITY][r];
    x.country = find_str(order_gen_countries, ORDER_GEN_NCOUNTRIES,
                         row_batch_get_str(b, ORDER_COL_COUNTRY, r));
    x.status = find_str(order_gen_statuses, ORDER_GEN_NSTATUSES,
                        row_batch_get_str(b, ORDER_COL_STATUS, r));
    return x;
}

/* ---- helpers --------------------------------------------------------------------------- */

static bool rows_equal(const row_batch *a, uint32_t ra, const row_batch *b, uint32_t rb)
{
    for (int c = 0; c < ORDER_NCOLS; c++) {
        strata_type t = a->schema->cols[c].type;
        if (strata_type_is_int(t)) {
            if (a->i[c][ra] != b->i[c][rb])
                return false;
        } else if (t == STRATA_FLOAT64) {
            if (memcmp(&a->f[c][ra], &b->f[c][rb], sizeof(double)) != 0)
                return false;
        } else {
            strata_str x = row_batch_get_str(a, c, ra), y = row_batch_get_str(b, c, rb);
            if (x.len != y.len || memcmp(x.ptr, y.ptr, x.len) != 0)
                return false;
        }
    }
    return true;
}

/* Generates everything of o into one batch, in chunks of `chunk` rows. */
static void gen_all(const order_gen_opts *o, uint32_t chunk, row_batch *b)
{
    order_gen *g = mk(o);
    uint32_t n;
    while ((n = order_gen_fill(g, b, chunk)) > 0)
        ASSERT_LE(n, chunk);
    order_gen_free(g);
}

/* What a strict decoder accepts: an object with an integer ts, integer event_id, user_id,
 * quantity and version, a number amount, and string country/category/status/device. */
static bool event_json_valid(const char *text, json_t **out)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return false;
    bool ok = json_is_object(j) && json_is_integer(json_object_get(j, "ts")) &&
              json_is_integer(json_object_get(j, "event_id")) &&
              json_is_integer(json_object_get(j, "user_id")) &&
              json_is_string(json_object_get(j, "country")) &&
              json_is_string(json_object_get(j, "category")) &&
              json_is_string(json_object_get(j, "status")) &&
              json_is_string(json_object_get(j, "device")) &&
              json_is_number(json_object_get(j, "amount")) &&
              json_is_integer(json_object_get(j, "quantity")) &&
              json_is_integer(json_object_get(j, "version"));
    if (ok && out)
        *out = j;
    else
        json_decref(j);
    return ok;
}

static rec rec_of_json(json_t *j)
{
    rec x;
    x.event_id = (uint64_t)json_integer_value(json_object_get(j, "event_id"));
    x.version = (uint64_t)json_integer_value(json_object_get(j, "version"));
    x.ts = json_integer_value(json_object_get(j, "ts"));
    x.cents = (int64_t)llround(json_number_value(json_object_get(j, "amount")) * 100.0);
    x.quantity = json_integer_value(json_object_get(j, "quantity"));
    x.country = find_cstr(order_gen_countries, ORDER_GEN_NCOUNTRIES,
                          json_string_value(json_object_get(j, "country")));
    x.status = find_cstr(order_gen_statuses, ORDER_GEN_NSTATUSES,
                         json_string_value(json_object_get(j, "status")));
    return x;
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST(schema_is_valid)
{
    strata_schema s;
    order_gen_schema(&s);
    strata_err err = {0};
    ASSERT_EQ(schema_validate(&s, &err), 0);
    ASSERT_STR_EQ(s.name, "orders");
    ASSERT_EQ(s.ncols, ORDER_NCOLS);
    ASSERT_EQ(s.time_col, ORDER_COL_TS);
    ASSERT_EQ(s.ndedup, 2);
    ASSERT_EQ(s.dedup_cols[0], schema_column_index(&s, "event_id"));
    ASSERT_EQ(s.dedup_cols[1], schema_column_index(&s, "ts"));
    ASSERT_EQ(s.version_col, schema_column_index(&s, "version"));
    ASSERT_EQ(s.partition_by, STRATA_PART_DAY);
    ASSERT_EQ(s.nrollups, 0);
    ASSERT(!s.kafka.enabled);
    static const char *const order[] = {"country", "category", "status", "device", "ts"};
    ASSERT_EQ(s.norder, 5);
    for (int k = 0; k < 5; k++)
        ASSERT_EQ(s.order_by[k], schema_column_index(&s, order[k]));
    ASSERT_EQ(s.cols[ORDER_COL_AMOUNT].type, STRATA_FLOAT64);
    ASSERT_EQ(s.cols[ORDER_COL_QUANTITY].type, STRATA_INT32);
    ASSERT_STR_EQ(order_gen_countries[0], "US");
    /* The country codes are 50 distinct two-letter codes. */
    for (int a = 0; a < ORDER_GEN_NCOUNTRIES; a++) {
        ASSERT_EQ(strlen(order_gen_countries[a]), 2);
        for (int b = a + 1; b < ORDER_GEN_NCOUNTRIES; b++)
            ASSERT(strcmp(order_gen_countries[a], order_gen_countries[b]) != 0);
    }
}

TEST(options_are_checked)
{
    order_gen_opts o;
    order_gen_opts_default(&o);
    ASSERT_EQ(o.count, 10000000);
    ASSERT_EQ(o.start_ms, 1704067200000LL);
    ASSERT_EQ(o.span_ms, 604800000LL);
    strata_err err = {0};
    o.duplicates = 1.5;
    ASSERT(order_gen_create(&o, &err) == NULL);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    o.duplicates = 0;
    o.bad = NAN;
    ASSERT(order_gen_create(&o, &err) == NULL);
    o.bad = 0;
    o.span_ms = -1;
    ASSERT(order_gen_create(&o, &err) == NULL);
    o.span_ms = 1000;
    o.late = 0.1;
    o.late_max_ms = 0;
    ASSERT(order_gen_create(&o, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "late_max_ms");
}

TEST(same_seed_same_rows_any_batching)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 10000;
    o.seed = 42;
    o.duplicates = 0.1;
    o.late = 0.05;
    row_batch a, b, c, d;
    ASSERT_EQ(row_batch_init(&a, &s, 0), 0);
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    ASSERT_EQ(row_batch_init(&c, &s, 0), 0);
    ASSERT_EQ(row_batch_init(&d, &s, 0), 0);
    gen_all(&o, 10000, &a);
    gen_all(&o, 1000, &b);
    ASSERT_EQ(a.nrows, 10000);
    ASSERT_EQ(b.nrows, 10000);
    /* Odd batch sizes, one row at a time for a while. */
    order_gen *g = mk(&o);
    uint32_t sizes[] = {1, 1, 7, 333, 1, 4096, 5000, 9999};
    for (int k = 0; k < 8; k++)
        order_gen_fill(g, &c, sizes[k]);
    ASSERT_EQ(order_gen_fill(g, &c, 100), 0);
    order_gen_free(g);
    ASSERT_EQ(c.nrows, 10000);
    for (uint32_t r = 0; r < a.nrows; r++) {
        if (!rows_equal(&a, r, &b, r) || !rows_equal(&a, r, &c, r))
            TEST_FAIL_("row %u differs between batchings", r);
    }
    /* Another seed gives other events. */
    o.seed = 43;
    gen_all(&o, 10000, &d);
    uint32_t same = 0;
    for (uint32_t r = 0; r < a.nrows; r++)
        same += a.i[ORDER_COL_EVENT_ID][r] == d.i[ORDER_COL_EVENT_ID][r];
    ASSERT_EQ(same, 0);
    row_batch_free(&a);
    row_batch_free(&b);
    row_batch_free(&c);
    row_batch_free(&d);
}

TEST(fill_stops_at_count)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 2500;
    order_gen *g = mk(&o);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    ASSERT_EQ(order_gen_fill(g, &b, 1000), 1000);
    ASSERT_EQ(order_gen_fill(g, &b, 1000), 1000);
    ASSERT_EQ(order_gen_fill(g, &b, 1000), 500);
    ASSERT_EQ(order_gen_fill(g, &b, 1000), 0);
    ASSERT_EQ(b.nrows, 2500);
    ASSERT_U64_EQ(order_gen_get_totals(g)->slots, 2500);
    ASSERT_U64_EQ(order_gen_get_totals(g)->events, 2500);
    ASSERT_U64_EQ(order_gen_get_totals(g)->distinct_events, 2500);
    order_gen_free(g);

    /* A batch of another schema gets nothing. */
    strata_schema other;
    schema_init(&other);
    other.ncols = 1;
    other.cols[0].type = STRATA_TIMESTAMP;
    row_batch ob;
    ASSERT_EQ(row_batch_init(&ob, &other, 0), 0);
    g = mk(&o);
    ASSERT_EQ(order_gen_fill(g, &ob, 10), 0);
    ASSERT_U64_EQ(order_gen_get_totals(g)->slots, 0);
    order_gen_free(g);
    row_batch_free(&ob);
    row_batch_free(&b);
}

TEST(distributions_look_right)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 200000;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    gen_all(&o, 8192, &b);
    ASSERT_EQ(b.nrows, 200000);

    uint64_t country[ORDER_GEN_NCOUNTRIES] = {0}, category[ORDER_GEN_NCATEGORIES] = {0};
    uint64_t status[ORDER_GEN_NSTATUSES] = {0}, device[ORDER_GEN_NDEVICES] = {0};
    uint64_t quantity[11] = {0}, user1 = 0, user10 = 0, user_small = 0, user_tail = 0;
    uint64_t below_median = 0;
    check ids;
    check_init(&ids, b.nrows);
    int64_t prev = INT64_MIN;
    for (uint32_t r = 0; r < b.nrows; r++) {
        int64_t ts = b.i[ORDER_COL_TS][r];
        ASSERT_GE(ts, prev);
        ASSERT_GE(ts, o.start_ms);
        ASSERT_LT(ts, o.start_ms + o.span_ms);
        prev = ts;
        uint64_t id = (uint64_t)b.i[ORDER_COL_EVENT_ID][r];
        ASSERT(id < (1ULL << 63));
        key_slot *sl = check_find(&ids, id);
        ASSERT(!sl->used); /* every original has its own id */
        sl->used = true;
        sl->event_id = id;
        uint64_t user = (uint64_t)b.i[ORDER_COL_USER_ID][r];
        ASSERT(user >= 1 && user <= ORDER_GEN_NUSERS);
        user1 += user == 1;
        user10 += user <= 10;
        user_tail += user > 500000;
        user_small += user <= 1000;
        int c = find_str(order_gen_countries, ORDER_GEN_NCOUNTRIES,
                         row_batch_get_str(&b, ORDER_COL_COUNTRY, r));
        int cat = find_str(order_gen_categories, ORDER_GEN_NCATEGORIES,
                           row_batch_get_str(&b, ORDER_COL_CATEGORY, r));
        int st = find_str(order_gen_statuses, ORDER_GEN_NSTATUSES,
                          row_batch_get_str(&b, ORDER_COL_STATUS, r));
        int dv = find_str(order_gen_devices, ORDER_GEN_NDEVICES,
                          row_batch_get_str(&b, ORDER_COL_DEVICE, r));
        ASSERT(c >= 0 && cat >= 0 && st >= 0 && dv >= 0);
        country[c]++;
        category[cat]++;
        status[st]++;
        device[dv]++;
        int64_t q = b.i[ORDER_COL_QUANTITY][r];
        ASSERT(q >= 1 && q <= 10);
        quantity[q]++;
        double amount = b.f[ORDER_COL_AMOUNT][r];
        ASSERT(amount >= 0.01);
        ASSERT_DBL_EQ(round(amount * 100) / 100, amount);
        ASSERT_DBL_EQ((double)llround(amount * 100) / 100.0, amount);
        below_median += amount < 35.0;
        ASSERT_EQ(b.i[ORDER_COL_VERSION][r], 1);
    }
    free(ids.tab);
    double n = b.nrows;
    /* Countries: US first and most common, Zipf-ish falling. */
    for (int k = 1; k < ORDER_GEN_NCOUNTRIES; k++)
        ASSERT_GT(country[0], country[k]);
    ASSERT_GT(country[1], country[10]);
    ASSERT_GT(country[10], country[49]);
    ASSERT_GT(country[49], 0);
    /* Zipf 1.2 over 50: P(US) = 1 / sum k^-1.2 ~ 0.302. */
    ASSERT(fabs(country[0] / n - 0.302) < 0.01);
    /* Categories mildly skewed (Zipf 0.5): P(first) ~ 0.132, P(last) ~ 0.029. */
    ASSERT(fabs(category[0] / n - 0.132) < 0.01);
    ASSERT(fabs(category[19] / n - 0.029) < 0.005);
    static const double status_share[] = {0.60, 0.20, 0.12, 0.05, 0.03};
    for (int k = 0; k < ORDER_GEN_NSTATUSES; k++)
        if (fabs(status[k] / n - status_share[k]) > 0.01)
            TEST_FAIL_("status %s: %.4f, want %.2f", order_gen_statuses[k], status[k] / n,
                       status_share[k]);
    static const double device_share[] = {0.60, 0.32, 0.08};
    for (int k = 0; k < ORDER_GEN_NDEVICES; k++)
        ASSERT(fabs(device[k] / n - device_share[k]) < 0.01);
    for (int q = 2; q <= 10; q++)
        ASSERT_GT(quantity[1], quantity[q]);
    ASSERT(fabs(quantity[1] / n - 0.40) < 0.01);
    /* Zipf 1.0 over 1M users: P(1) = 1 / H(1e6) ~ 0.0695, P(<= 1000) ~ 0.52. */
    ASSERT(fabs(user1 / n - 0.0695) < 0.005);
    ASSERT(fabs(user10 / n - 0.2035) < 0.005);
    ASSERT(fabs(user_tail / n - 0.0482) < 0.003); /* (H(1e6) - H(5e5)) / H(1e6) */
    ASSERT(fabs(user_small / n - 0.52) < 0.01);
    /* Lognormal median 35. */
    ASSERT(fabs(below_median / n - 0.5) < 0.01);
    row_batch_free(&b);
}

TEST(duplicates_resend_recent_events)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 200000;
    o.duplicates = 0.1;
    o.seed = 7;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    gen_all(&o, 4096, &b);
    /* Index of the first row of each event_id, to compare re-sends with their original. */
    uint64_t mask = (1u << 20) - 1;
    uint64_t *keys = calloc(mask + 1, sizeof *keys);
    uint32_t *rows = calloc(mask + 1, sizeof *rows);
    uint64_t dups = 0, changed_status = 0;
    for (uint32_t r = 0; r < b.nrows; r++) {
        uint64_t id = (uint64_t)b.i[ORDER_COL_EVENT_ID][r] + 1; /* 0 marks empty */
        uint64_t k = (id * 0x9e3779b97f4a7c15ULL >> 20) & mask;
        while (keys[k] && keys[k] != id)
            k = (k + 1) & mask;
        uint64_t version = (uint64_t)b.i[ORDER_COL_VERSION][r];
        if (!keys[k]) {
            ASSERT_EQ(version, 1);
            keys[k] = id;
            rows[k] = r;
            continue;
        }
        dups++;
        uint32_t o0 = rows[k];
        ASSERT_GT(version, 1);
        /* Within the ring of recent originals. */
        ASSERT_LT(r - o0, 2 * ORDER_GEN_RING + 1000);
        for (int c = 0; c < ORDER_NCOLS; c++) {
            if (c == ORDER_COL_VERSION)
                continue;
            if (c == ORDER_COL_STATUS) {
                strata_str x = row_batch_get_str(&b, c, r), y = row_batch_get_str(&b, c, o0);
                changed_status += x.len != y.len || memcmp(x.ptr, y.ptr, x.len) != 0;
                continue;
            }
            if (s.cols[c].type == STRATA_STRING) {
                strata_str x = row_batch_get_str(&b, c, r), y = row_batch_get_str(&b, c, o0);
                ASSERT(x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0);
            } else if (s.cols[c].type == STRATA_FLOAT64) {
                ASSERT_DBL_EQ(b.f[c][r], b.f[c][o0]);
            } else {
                ASSERT_EQ(b.i[c][r], b.i[c][o0]);
            }
        }
    }
    ASSERT(fabs((double)dups / b.nrows - 0.1) < 0.005);
    ASSERT_GT(changed_status, dups / 5);
    ASSERT_LT(changed_status, dups);
    const order_gen_totals *t = NULL;
    order_gen *g = mk(&o);
    row_batch tmp;
    ASSERT_EQ(row_batch_init(&tmp, &s, 0), 0);
    while (order_gen_fill(g, &tmp, 65536) > 0)
        row_batch_clear(&tmp);
    t = order_gen_get_totals(g);
    ASSERT_U64_EQ(t->duplicates, dups);
    ASSERT_U64_EQ(t->events, b.nrows);
    ASSERT_U64_EQ(t->distinct_events, b.nrows - dups);
    order_gen_free(g);
    row_batch_free(&tmp);
    free(keys);
    free(rows);
    row_batch_free(&b);
}

TEST(late_events_move_back)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 100000;
    o.span_ms = 2 * 100000; /* 2 ms a slot: no jitter, so a late ts is below its slot's */
    o.late = 0.1;
    o.late_max_ms = 60000;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    order_gen *g = mk(&o);
    while (order_gen_fill(g, &b, 10000) > 0) {
    }
    uint64_t late = 0;
    for (uint32_t r = 0; r < b.nrows; r++) {
        int64_t base = o.start_ms + (int64_t)((uint64_t)r * (uint64_t)o.span_ms / o.count);
        int64_t ts = b.i[ORDER_COL_TS][r];
        if (ts < base) {
            late++;
            ASSERT_GE(ts, base - o.late_max_ms);
        } else {
            ASSERT_EQ(ts, base);
        }
    }
    ASSERT(fabs((double)late / b.nrows - 0.1) < 0.01);
    ASSERT_U64_EQ(order_gen_get_totals(g)->late, late);
    ASSERT_LT(order_gen_get_totals(g)->ts_min, o.start_ms + 1);
    order_gen_free(g);
    row_batch_free(&b);
}

TEST(totals_are_exact)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 200000;
    o.duplicates = 0.25;
    o.late = 0.05;
    o.seed = 99;
    order_gen *g = mk(&o);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    check c;
    check_init(&c, o.count);
    uint32_t n;
    while ((n = order_gen_fill(g, &b, 3000)) > 0) {
        for (uint32_t r = 0; r < b.nrows; r++) {
            rec x = rec_of(&b, r);
            ASSERT(x.country >= 0 && x.status >= 0);
            check_add(&c, &x);
        }
        row_batch_clear(&b);
    }
    const order_gen_totals *t = order_gen_get_totals(g);
    check_compare(&c, t);
    ASSERT_U64_EQ(t->slots, o.count);
    ASSERT_U64_EQ(t->events, o.count);
    ASSERT_U64_EQ(t->bad, 0);
    /* Re-sends moved some statuses on: fewer paid, more delivered in the latest view. */
    ASSERT_LT(t->status_events_latest[0], t->status_events_all[0]);
    ASSERT_GT(t->amount_cents_all, t->amount_cents_latest);
    free(c.tab);
    order_gen_free(g);
    row_batch_free(&b);
}

TEST(json_parses_back_to_the_same_values)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 20000;
    o.duplicates = 0.1;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    gen_all(&o, 20000, &b);
    char buf[ORDER_GEN_JSON_MAX];
    for (uint32_t r = 0; r < b.nrows; r++) {
        int len = order_gen_format_json(&b, r, buf, sizeof buf);
        ASSERT_GT(len, 0);
        ASSERT_EQ(strlen(buf), len);
        ASSERT(buf[0] == '{' && buf[len - 1] == '}');
        ASSERT(!strchr(buf, '\n'));
        /* Exactly two decimals. */
        const char *a = strstr(buf, "\"amount\":");
        ASSERT(a);
        const char *dot = strchr(a, '.');
        ASSERT(dot && dot[1] >= '0' && dot[1] <= '9' && dot[2] >= '0' && dot[2] <= '9' &&
               dot[3] == ',');
        json_t *j = NULL;
        if (!event_json_valid(buf, &j))
            TEST_FAIL_("row %u: not a valid event: %s", r, buf);
        ASSERT_EQ(json_integer_value(json_object_get(j, "ts")), b.i[ORDER_COL_TS][r]);
        ASSERT_EQ(json_integer_value(json_object_get(j, "event_id")),
                  b.i[ORDER_COL_EVENT_ID][r]);
        ASSERT_EQ(json_integer_value(json_object_get(j, "user_id")), b.i[ORDER_COL_USER_ID][r]);
        ASSERT_EQ(json_integer_value(json_object_get(j, "quantity")),
                  b.i[ORDER_COL_QUANTITY][r]);
        ASSERT_EQ(json_integer_value(json_object_get(j, "version")), b.i[ORDER_COL_VERSION][r]);
        ASSERT_DBL_EQ(json_real_value(json_object_get(j, "amount")), b.f[ORDER_COL_AMOUNT][r]);
        static const int scols[] = {ORDER_COL_COUNTRY, ORDER_COL_CATEGORY, ORDER_COL_STATUS,
                                    ORDER_COL_DEVICE};
        for (int k = 0; k < 4; k++) {
            strata_str v = row_batch_get_str(&b, scols[k], r);
            const char *js = json_string_value(json_object_get(j, s.cols[scols[k]].name));
            ASSERT(js && strlen(js) == v.len && memcmp(js, v.ptr, v.len) == 0);
        }
        ASSERT_EQ(json_object_size(j), ORDER_NCOLS);
        json_decref(j);
        /* Too small a buffer: -1 for every size up to the length, fits at length + 1. */
        if (r < 20) {
            for (int cap = 0; cap <= len; cap++)
                ASSERT_EQ(order_gen_format_json(&b, r, buf, (size_t)cap), -1);
            ASSERT_EQ(order_gen_format_json(&b, r, buf, (size_t)len + 1), len);
        }
    }
    ASSERT_EQ(order_gen_format_json(&b, b.nrows, buf, sizeof buf), -1);
    row_batch_free(&b);
}

TEST(json_escapes_strings)
{
    strata_schema s;
    order_gen_schema(&s);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    int64_t r = row_batch_add_row(&b);
    ASSERT_EQ(r, 0);
    const char weird[] = "a\"b\\c\nd\x01";
    ASSERT_EQ(row_batch_set_str(&b, ORDER_COL_COUNTRY, 0, weird, sizeof weird - 1), 0);
    b.f[ORDER_COL_AMOUNT][0] = -3.5;
    char buf[ORDER_GEN_JSON_MAX];
    int len = order_gen_format_json(&b, 0, buf, sizeof buf);
    ASSERT_GT(len, 0);
    ASSERT_CONTAINS(buf, "\"amount\":-3.50,");
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    ASSERT(j);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "country")), weird);
    json_decref(j);
    row_batch_free(&b);
}

/* A batch's strings may hold any bytes; the text stays JSON (U+FFFD for the bad ones), also
 * when a string is longer than its worst-case escape leaves room for in the buffer. */
TEST(json_of_non_utf8_strings_is_valid)
{
    strata_schema s;
    order_gen_schema(&s);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    ASSERT_EQ(row_batch_add_row(&b), 0);
    const char bad[] = "D\xff\xc3";
    char longer[200];
    memset(longer, 'x', sizeof longer);
    longer[100] = '\xfe';
    ASSERT_EQ(row_batch_set_str(&b, ORDER_COL_COUNTRY, 0, bad, sizeof bad - 1), 0);
    ASSERT_EQ(row_batch_set_str(&b, ORDER_COL_CATEGORY, 0, longer, sizeof longer), 0);
    char buf[ORDER_GEN_JSON_MAX];
    int len = order_gen_format_json(&b, 0, buf, sizeof buf);
    ASSERT_GT(len, 0);
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    ASSERT(j);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "country")), "D\xef\xbf\xbd\xef\xbf\xbd");
    ASSERT_EQ(strlen(json_string_value(json_object_get(j, "category"))), sizeof longer + 2);
    json_decref(j);
    row_batch_free(&b);
}

TEST(text_path_matches_fill_and_totals)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 100000;
    o.duplicates = 0.2;
    o.late = 0.02;
    o.bad = 0.1;
    o.seed = 5;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    gen_all(&o, 100000, &b); /* fill ignores bad: every slot a row */
    ASSERT_EQ(b.nrows, o.count);

    order_gen *g = mk(&o);
    char buf[ORDER_GEN_JSON_MAX], want[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    ASSERT_EQ(order_gen_next_json(g, buf, ORDER_GEN_JSON_MAX - 1, &msg), STRATA_EINVAL);
    check c;
    check_init(&c, o.count);
    uint64_t slot = 0, bad = 0, empty = 0;
    int rc;
    while ((rc = order_gen_next_json(g, buf, sizeof buf, &msg)) == 1) {
        ASSERT_LT(slot, o.count);
        ASSERT_EQ(strlen(buf), msg.len);
        if (msg.bad) {
            bad++;
            empty += msg.len == 0;
            if (event_json_valid(buf, NULL))
                TEST_FAIL_("slot %llu: bad event is valid: %s", (unsigned long long)slot, buf);
        } else {
            /* The same event fill produced for this slot. */
            ASSERT_EQ(order_gen_format_json(&b, (uint32_t)slot, want, sizeof want), msg.len);
            ASSERT_STR_EQ(buf, want);
            ASSERT_EQ(msg.ts, b.i[ORDER_COL_TS][slot]);
            ASSERT_U64_EQ(msg.event_id, (uint64_t)b.i[ORDER_COL_EVENT_ID][slot]);
            json_t *j = NULL;
            ASSERT(event_json_valid(buf, &j));
            rec x = rec_of_json(j);
            json_decref(j);
            check_add(&c, &x);
        }
        slot++;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_U64_EQ(slot, o.count);
    ASSERT(fabs((double)bad / o.count - 0.1) < 0.01);
    ASSERT_GT(empty, 0);
    const order_gen_totals *t = order_gen_get_totals(g);
    ASSERT_U64_EQ(t->bad, bad);
    ASSERT_U64_EQ(t->slots, o.count);
    ASSERT_U64_EQ(t->events + t->bad, o.count);
    check_compare(&c, t);
    ASSERT_EQ(order_gen_next_json(g, buf, sizeof buf, &msg), 0);
    free(c.tab);
    order_gen_free(g);
    row_batch_free(&b);
}

TEST(mixing_fill_and_text_keeps_the_events)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 20000;
    o.duplicates = 0.3;
    o.late = 0.1;
    o.bad = 0.3;
    row_batch ref, one;
    ASSERT_EQ(row_batch_init(&ref, &s, 0), 0);
    ASSERT_EQ(row_batch_init(&one, &s, 0), 0);
    gen_all(&o, 20000, &ref);
    order_gen *g = mk(&o);
    char buf[ORDER_GEN_JSON_MAX], want[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    uint64_t bad = 0;
    for (uint32_t slot = 0; slot < o.count; slot++) {
        if (slot % 3 == 0) {
            row_batch_clear(&one);
            ASSERT_EQ(order_gen_fill(g, &one, 1), 1);
            if (!rows_equal(&ref, slot, &one, 0))
                TEST_FAIL_("slot %u differs when filled between text slots", slot);
        } else {
            ASSERT_EQ(order_gen_next_json(g, buf, sizeof buf, &msg), 1);
            if (msg.bad) {
                bad++;
                continue;
            }
            ASSERT_GT(order_gen_format_json(&ref, slot, want, sizeof want), 0);
            ASSERT_STR_EQ(buf, want);
        }
    }
    ASSERT_EQ(order_gen_fill(g, &one, 1), 0);
    ASSERT_U64_EQ(order_gen_get_totals(g)->bad, bad);
    ASSERT_U64_EQ(order_gen_get_totals(g)->events + bad, o.count);
    order_gen_free(g);
    row_batch_free(&ref);
    row_batch_free(&one);
}

TEST(bad_events_are_not_valid_events)
{
    char buf[ORDER_GEN_JSON_MAX];
    for (int k = 0; k < ORDER_BAD_NKINDS; k++) {
        for (uint64_t n = 0; n < 100; n++) {
            int len = order_gen_format_bad((order_gen_bad_kind)k, n * 7919, buf, sizeof buf);
            ASSERT_GE(len, 0);
            ASSERT_LT(len, ORDER_GEN_JSON_MAX);
            ASSERT(!strchr(buf, '\n'));
            if (event_json_valid(buf, NULL))
                TEST_FAIL_("kind %s is a valid event: %s",
                           order_gen_bad_kind_name((order_gen_bad_kind)k), buf);
        }
        ASSERT(strcmp(order_gen_bad_kind_name((order_gen_bad_kind)k), "unknown") != 0);
    }
    ASSERT_EQ(order_gen_format_bad(ORDER_BAD_NKINDS, 0, buf, sizeof buf), -1);
    ASSERT_STR_EQ(order_gen_bad_kind_name(ORDER_BAD_NKINDS), "unknown");
    /* Kinds one by one: each breaks the rule it is named after. */
    json_error_t jerr;
    json_t *j;
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_NOT_JSON, 1, buf, sizeof buf), 0);
    ASSERT(json_loads(buf, 0, &jerr) == NULL);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_TRUNCATED, 1, buf, sizeof buf), 0);
    ASSERT(buf[0] == '{' && json_loads(buf, 0, &jerr) == NULL);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_NO_TS, 1, buf, sizeof buf), 0);
    ASSERT((j = json_loads(buf, 0, &jerr)) != NULL);
    ASSERT(json_is_object(j) && !json_object_get(j, "ts"));
    json_decref(j);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_AMOUNT_TYPE, 1, buf, sizeof buf), 0);
    ASSERT((j = json_loads(buf, 0, &jerr)) != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "amount")), "abc");
    json_decref(j);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_COUNTRY_TYPE, 1, buf, sizeof buf), 0);
    ASSERT((j = json_loads(buf, 0, &jerr)) != NULL);
    ASSERT(json_is_integer(json_object_get(j, "country")));
    json_decref(j);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_ARRAY, 1, buf, sizeof buf), 0);
    ASSERT((j = json_loads(buf, 0, &jerr)) != NULL);
    ASSERT(json_is_array(j));
    json_decref(j);
    ASSERT_GT(order_gen_format_bad(ORDER_BAD_TS_STRING, 1, buf, sizeof buf), 0);
    ASSERT((j = json_loads(buf, 0, &jerr)) != NULL);
    ASSERT(json_is_string(json_object_get(j, "ts")));
    json_decref(j);
    ASSERT_EQ(order_gen_format_bad(ORDER_BAD_EMPTY, 1, buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "");
    /* Too small: -1. */
    ASSERT_EQ(order_gen_format_bad(ORDER_BAD_NO_TS, 1, buf, 10), -1);
    ASSERT_EQ(order_gen_format_bad(ORDER_BAD_EMPTY, 1, buf, 0), -1);

    /* The generator's rotation: deterministic, every kind in turn, no slot consumed. */
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 10;
    order_gen *g1 = mk(&o), *g2 = mk(&o);
    char b2[ORDER_GEN_JSON_MAX];
    for (int k = 0; k < 2 * ORDER_BAD_NKINDS; k++) {
        int l1 = order_gen_bad_json(g1, buf, sizeof buf);
        int l2 = order_gen_bad_json(g2, b2, sizeof b2);
        ASSERT_EQ(l1, l2);
        ASSERT_STR_EQ(buf, b2);
        ASSERT_EQ((k % ORDER_BAD_NKINDS) == ORDER_BAD_EMPTY, l1 == 0);
    }
    ASSERT_U64_EQ(order_gen_get_totals(g1)->slots, 0);
    ASSERT_U64_EQ(order_gen_get_totals(g1)->bad, 0);
    order_gen_free(g1);
    order_gen_free(g2);
}

TEST(huge_count_and_span_do_not_overflow)
{
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 4000000000000ULL;       /* 4e12 slots */
    o.span_ms = 3000000000000000LL;   /* ~95,000 years: i * span would overflow int64 */
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    order_gen *g = mk(&o);
    ASSERT_EQ(order_gen_fill(g, &b, 1000), 1000);
    for (uint32_t r = 0; r < 1000; r++) {
        int64_t base = o.start_ms + (int64_t)r * 750;
        ASSERT_GE(b.i[ORDER_COL_TS][r], base);
        ASSERT_LT(b.i[ORDER_COL_TS][r], base + 375);
    }
    order_gen_free(g);
    row_batch_free(&b);

    /* More slots than milliseconds: all in [start, start + span), non-decreasing. */
    o.count = 5000;
    o.span_ms = 1000;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    gen_all(&o, 777, &b);
    for (uint32_t r = 0; r < b.nrows; r++) {
        ASSERT_EQ(b.i[ORDER_COL_TS][r], o.start_ms + (int64_t)r * 1000 / 5000);
    }
    row_batch_free(&b);

    /* Zero slots. */
    o.count = 0;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    g = mk(&o);
    ASSERT_EQ(order_gen_fill(g, &b, 10), 0);
    order_gen_free(g);
    row_batch_free(&b);
}

TEST_LIST(T(schema_is_valid), T(options_are_checked), T(same_seed_same_rows_any_batching),
          T(fill_stops_at_count), T(distributions_look_right), T(duplicates_resend_recent_events),
          T(late_events_move_back), T(totals_are_exact), T(json_parses_back_to_the_same_values),
          T(json_escapes_strings), T(json_of_non_utf8_strings_is_valid), T(text_path_matches_fill_and_totals),
          T(mixing_fill_and_text_keeps_the_events),
          T(bad_events_are_not_valid_events), T(huge_count_and_span_do_not_overflow))
