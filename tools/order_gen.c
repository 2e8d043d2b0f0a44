/*
 * order_gen.c — the reference "order" event generator. See order_gen.h for the contract.
 *
 * How it works:
 *   - One xoshiro256** stream drives every draw; a slot is generated on a copy of the
 *     stream state (the "cursor") and committed only once its row or text is written, so a
 *     batch that cannot grow leaves the generator where it was.
 *   - user_id: Zipf by rejection-inversion (see zipf1_sample), which needs no table; an
 *     alias table over 1M users was tried first and cost one cache miss per row (8 MiB
 *     of cells), which halved the row rate.
 *   - The small discrete distributions sample Vose alias tables: one 64-bit draw, the high
 *     half picks a cell (multiply-shift), the low half decides between the cell and its
 *     alias. They are built once per process under pthread_once (microseconds) and never
 *     change afterwards.
 *   - Amounts: Box-Muller normals (the second of each pair is kept for the next draw),
 *     cents = llround(3500 * exp(z)), at least 1.
 *   - event_id: a keyed bijection of the 63-bit slot index (xor, odd multiplies and
 *     xor-shifts, all mod 2^63), so ids never collide and need no set to check.
 *   - Slot times advance incrementally (quotient and remainder of span / count), which
 *     never overflows however large count and span are.
 *   - Duplicates re-send an entry of a ring holding the last ORDER_GEN_RING originals;
 *     each entry remembers the status of the latest version emitted so far (or none, when
 *     all its versions went out as bad events), which is all the latest-version totals
 *     need: amount, country and quantity never change between versions.
 *   - Whether a text slot is bad is a hash of (seed, slot), independent of the stream.
 *   - The JSON text of a good event is written by order_gen_json.c; the malformed kinds are
 *     formatted here (they are made from the generator's values, not from a row).
 */
#include "tools/order_gen.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/order_gen_json.h"

const char *const order_gen_countries[ORDER_GEN_NCOUNTRIES] = {
    "US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "IT", "ES", "MX", "NL",
    "KR", "SE", "PL", "TR", "ID", "CH", "BE", "AR", "AT", "NO", "DK", "IE", "FI",
    "PT", "CZ", "RO", "GR", "IL", "SG", "HK", "TW", "TH", "MY", "PH", "VN", "ZA",
    "NG", "EG", "SA", "AE", "CL", "CO", "PE", "NZ", "HU", "UA", "KE",
};
const char *const order_gen_categories[ORDER_GEN_NCATEGORIES] = {
    "electronics", "books",  "clothing", "home",   "beauty", "sports", "toys",
    "grocery",     "garden", "automotive", "health", "jewelry", "music", "movies",
    "office",      "pets",   "shoes",    "tools",  "games",  "baby",
};
const char *const order_gen_statuses[ORDER_GEN_NSTATUSES] = {
    "paid", "shipped", "delivered", "cancelled", "refunded",
};
const char *const order_gen_devices[ORDER_GEN_NDEVICES] = {"mobile", "desktop", "tablet"};

enum { ST_PAID = 0, ST_SHIPPED = 1, ST_DELIVERED = 2, ST_CANCELLED = 3, ST_REFUNDED = 4 };

#define NQUANTITY 10
#define AMOUNT_MEDIAN_CENTS 3500.0
#define AMOUNT_SIGMA 1.0
#define MASK63 0x7fffffffffffffffULL

/* ---- random numbers --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The per-slot state: the stream, the spare normal, the time of the next slot. */
typedef struct cursor {
    uint64_t s[4];
    double spare;
    bool has_spare;
    int64_t base;  /* start_ms + floor(slot * span / count) */
    uint64_t acc;  /* slot * (span % count) mod count */
    uint64_t slot; /* next slot index */
} cursor;

static inline uint64_t next_u64(cursor *c)
{
    uint64_t *s = c->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1). */
static inline double unit(uint64_t r)
{
    return (double)(r >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n >= 1. */
static inline uint64_t bounded(uint64_t r, uint64_t n)
{
    if (n <= 0xffffffffULL)
        return ((r >> 32) * n) >> 32;
    return r % n;
}

static double next_normal(cursor *c)
{
    if (c->has_spare) {
        c->has_spare = false;
        return c->spare;
    }
    double u1 = (double)((next_u64(c) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    double u2 = unit(next_u64(c));
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    c->spare = rad * sin(th);
    c->has_spare = true;
    return rad * cos(th);
}

/* ---- alias tables (shared, built once) ----------------------------------------------------- */

typedef struct alias_cell {
    uint32_t thr;   /* take this cell when the low 32 bits of the draw are below thr */
    uint32_t alias; /* else this one */
} alias_cell;

static inline uint32_t alias_sample(const alias_cell *t, uint32_t n, uint64_t r)
{
    uint32_t k = (uint32_t)(((r >> 32) * n) >> 32);
    return (uint32_t)r < t[k].thr ? k : t[k].alias;
}

/* Vose's method. p (n entries, scratch) receives the weights scaled to mean 1; stack has
 * room for n indexes. Cells left at the end have probability 1 and alias themselves, so
 * the 32-bit threshold's rounding cannot matter for them. */
static void alias_build(alias_cell *out, const double *w, uint32_t n, double *p, uint32_t *stack)
{
    double sum = 0;
    for (uint32_t k = 0; k < n; k++)
        sum += w[k];
    uint32_t nsmall = 0, nlarge = 0; /* smalls grow up from 0, larges down from n */
    for (uint32_t k = 0; k < n; k++) {
        p[k] = w[k] * n / sum;
        if (p[k] < 1.0)
            stack[nsmall++] = k;
        else
            stack[n - 1 - nlarge++] = k;
    }
    while (nsmall > 0 && nlarge > 0) {
        uint32_t s = stack[--nsmall];
        uint32_t l = stack[n - nlarge]; /* top of the larges */
        out[s].thr = (uint32_t)(p[s] * 4294967296.0);
        out[s].alias = l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0) {
            nlarge--;
            stack[nsmall++] = l;
        }
    }
    while (nsmall > 0) {
        uint32_t s = stack[--nsmall];
        out[s].thr = UINT32_MAX;
        out[s].alias = s;
    }
    while (nlarge > 0) {
        uint32_t l = stack[n - nlarge--];
        out[l].thr = UINT32_MAX;
        out[l].alias = l;
    }
}

/* Zipf with exponent 1 over 1..n by rejection-inversion (Hoermann and Derflinger, 1996):
 * with h(x) = 1/x and its integral H(x) = log x, draw u uniformly in
 * (H(1.5) - h(1), H(n + 0.5)], x = H^-1(u) = exp(u), k = round(x); accept k when
 * k - x <= zipf_sdiv (true most of the time, a cheap test) or u >= H(k + 0.5) - h(k).
 * Each k then owns an interval of length h(k) of u, so P(k) is exactly proportional to
 * 1/k. No table: one exp, rarely a log, per draw. */
static double zipf_sdiv; /* 2 - H^-1(H(2.5) - h(2)), set with the tables */
static double zipf_hx1;  /* H(1.5) - h(1) */
static double zipf_hn;   /* H(ORDER_GEN_NUSERS + 0.5) */

static uint64_t zipf1_sample(cursor *c)
{
    const uint64_t n = ORDER_GEN_NUSERS;
    for (;;) {
        double u = zipf_hn + unit(next_u64(c)) * (zipf_hx1 - zipf_hn);
        double x = exp(u);
        double kd = floor(x + 0.5);
        uint64_t k = kd < 1.0 ? 1 : kd > (double)n ? n : (uint64_t)kd;
        if ((double)k - x <= zipf_sdiv || u >= log((double)k + 0.5) - 1.0 / (double)k)
            return k;
    }
}

static struct {
    alias_cell countries[ORDER_GEN_NCOUNTRIES];
    alias_cell categories[ORDER_GEN_NCATEGORIES];
    alias_cell statuses[ORDER_GEN_NSTATUSES];
    alias_cell devices[ORDER_GEN_NDEVICES];
    alias_cell quantity[NQUANTITY];
    uint8_t country_len[ORDER_GEN_NCOUNTRIES];
    uint8_t category_len[ORDER_GEN_NCATEGORIES];
    uint8_t status_len[ORDER_GEN_NSTATUSES];
    uint8_t device_len[ORDER_GEN_NDEVICES];
} tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void zipf_weights(double *w, uint32_t n, double s)
{
    for (uint32_t k = 0; k < n; k++)
        w[k] = s == 1.0 ? 1.0 / (double)(k + 1) : pow((double)(k + 1), -s);
}

static void tables_build(void)
{
    double w[ORDER_GEN_NCOUNTRIES], p[ORDER_GEN_NCOUNTRIES];
    uint32_t stack[ORDER_GEN_NCOUNTRIES];
    zipf_weights(w, ORDER_GEN_NCOUNTRIES, 1.2);
    alias_build(tables.countries, w, ORDER_GEN_NCOUNTRIES, p, stack);
    zipf_weights(w, ORDER_GEN_NCATEGORIES, 0.5);
    alias_build(tables.categories, w, ORDER_GEN_NCATEGORIES, p, stack);
    static const double status_w[ORDER_GEN_NSTATUSES] = {60, 20, 12, 5, 3};
    alias_build(tables.statuses, status_w, ORDER_GEN_NSTATUSES, p, stack);
    static const double device_w[ORDER_GEN_NDEVICES] = {60, 32, 8};
    alias_build(tables.devices, device_w, ORDER_GEN_NDEVICES, p, stack);
    static const double quantity_w[NQUANTITY] = {40, 22, 12, 8, 6, 4, 3, 2, 2, 1};
    alias_build(tables.quantity, quantity_w, NQUANTITY, p, stack);

    for (int k = 0; k < ORDER_GEN_NCOUNTRIES; k++)
        tables.country_len[k] = (uint8_t)strlen(order_gen_countries[k]);
    for (int k = 0; k < ORDER_GEN_NCATEGORIES; k++)
        tables.category_len[k] = (uint8_t)strlen(order_gen_categories[k]);
    for (int k = 0; k < ORDER_GEN_NSTATUSES; k++)
        tables.status_len[k] = (uint8_t)strlen(order_gen_statuses[k]);
    for (int k = 0; k < ORDER_GEN_NDEVICES; k++)
        tables.device_len[k] = (uint8_t)strlen(order_gen_devices[k]);
    zipf_sdiv = 2.0 - exp(log(2.5) - 0.5);
    zipf_hx1 = log(1.5) - 1.0;
    zipf_hn = log((double)ORDER_GEN_NUSERS + 0.5);
}

/* ---- the generator ------------------------------------------------------------------------- */

/* One event; also a ring entry (the latest version generated of a recent original). */
typedef struct event {
    int64_t ts;
    uint64_t event_id, user_id, version;
    int64_t cents;
    int32_t quantity;
    uint8_t country, category, status, device;
    int8_t seen_status; /* status of the latest version emitted as a good event; -1: none */
    bool late;
} event;

struct order_gen {
    order_gen_opts o;
    cursor cur;
    uint64_t q, rem;     /* span / count, span % count */
    uint64_t jitter_max; /* q / 2: jitter in [0, jitter_max) */
    uint64_t id_key0, id_key1, bad_key;
    uint64_t bad_next;   /* rotation of malformed kinds */
    uint32_t ring_n, ring_pos;
    order_gen_totals t;
    event ring[ORDER_GEN_RING];
};

void order_gen_schema(strata_schema *out)
{
    static const struct {
        const char *name;
        strata_type type;
    } cols[ORDER_NCOLS] = {
        {"ts", STRATA_TIMESTAMP},   {"event_id", STRATA_UINT64}, {"user_id", STRATA_UINT64},
        {"country", STRATA_STRING}, {"category", STRATA_STRING}, {"status", STRATA_STRING},
        {"device", STRATA_STRING},  {"amount", STRATA_FLOAT64},  {"quantity", STRATA_INT32},
        {"version", STRATA_UINT64},
    };
    schema_init(out);
    snprintf(out->name, sizeof out->name, "orders");
    out->ncols = ORDER_NCOLS;
    for (int c = 0; c < ORDER_NCOLS; c++) {
        snprintf(out->cols[c].name, sizeof out->cols[c].name, "%s", cols[c].name);
        out->cols[c].type = cols[c].type;
    }
    out->time_col = ORDER_COL_TS;
    out->ndedup = 2;
    out->dedup_cols[0] = ORDER_COL_EVENT_ID;
    out->dedup_cols[1] = ORDER_COL_TS;
    out->version_col = ORDER_COL_VERSION;
    out->partition_by = STRATA_PART_DAY;
    out->norder = 0;
    schema_apply_default_order(out);
}

void order_gen_opts_default(order_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->count = 10000000;
    o->start_ms = 1704067200000LL; /* 2024-01-01T00:00:00Z */
    o->span_ms = 7LL * 24 * 3600 * 1000;
    o->duplicates = 0;
    o->late = 0;
    o->late_max_ms = 600000;
    o->bad = 0;
}

static bool prob_ok(double p)
{
    return p >= 0.0 && p <= 1.0; /* false for NaN too */
}

order_gen *order_gen_create(const order_gen_opts *o, strata_err *err)
{
    if (!prob_ok(o->duplicates) || !prob_ok(o->late) || !prob_ok(o->bad)) {
        strata_err_set(err, STRATA_EINVAL,
                       "order_gen: duplicates, late and bad must be probabilities in [0, 1] "
                       "(got %g, %g, %g)",
                       o->duplicates, o->late, o->bad);
        return NULL;
    }
    if (o->span_ms < 0) {
        strata_err_set(err, STRATA_EINVAL, "order_gen: span_ms must not be negative (got %lld)",
                       (long long)o->span_ms);
        return NULL;
    }
    if (o->late > 0 && o->late_max_ms < 1) {
        strata_err_set(err, STRATA_EINVAL,
                       "order_gen: late_max_ms must be at least 1 when late > 0 (got %lld)",
                       (long long)o->late_max_ms);
        return NULL;
    }
    pthread_once(&tables_once, tables_build);
    order_gen *g = calloc(1, sizeof *g);
    if (!g) {
        strata_err_set(err, STRATA_ENOMEM, "order_gen: out of memory");
        return NULL;
    }
    g->o = *o;
    uint64_t sm = o->seed;
    for (int k = 0; k < 4; k++)
        g->cur.s[k] = splitmix64(&sm);
    g->id_key0 = splitmix64(&sm) & MASK63;
    g->id_key1 = splitmix64(&sm) & MASK63;
    g->bad_key = splitmix64(&sm);
    g->cur.base = o->start_ms;
    if (o->count > 0) {
        g->q = (uint64_t)o->span_ms / o->count;
        g->rem = (uint64_t)o->span_ms % o->count;
    }
    g->jitter_max = g->q / 2;
    return g;
}

void order_gen_free(order_gen *g)
{
    free(g);
}

const order_gen_totals *order_gen_get_totals(const order_gen *g)
{
    return &g->t;
}

/* A keyed bijection of [0, 2^63): every step is invertible mod 2^63. */
static uint64_t event_id_of(const order_gen *g, uint64_t slot)
{
    uint64_t x = (slot ^ g->id_key0) & MASK63;
    x = (x * 0xbf58476d1ce4e5b9ULL) & MASK63;
    x ^= x >> 31;
    x = (x + g->id_key1) & MASK63;
    x = (x * 0x94d049bb133111ebULL) & MASK63;
    x ^= x >> 29;
    x = (x * 0xd6e8feb86659fd93ULL) & MASK63;
    x ^= x >> 32;
    return x;
}

static bool slot_is_bad(const order_gen *g, uint64_t slot)
{
    if (!(g->o.bad > 0))
        return false;
    uint64_t h = g->bad_key ^ (slot * 0x9e3779b97f4a7c15ULL);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return unit(h) < g->o.bad;
}

/* Where a re-sent event's status goes: half the time nowhere, else one step on. */
static uint8_t next_status(uint8_t st, uint64_t r)
{
    double u = unit(r);
    if (u < 0.5)
        return st;
    u = (u - 0.5) * 2.0;
    switch (st) {
    case ST_PAID:
        return u < 0.85 ? ST_SHIPPED : ST_CANCELLED;
    case ST_SHIPPED:
        return ST_DELIVERED;
    case ST_DELIVERED:
        return u < 0.2 ? ST_REFUNDED : ST_DELIVERED;
    default:
        return st;
    }
}

/* Generates the event of slot c->slot on cursor c (a copy the caller commits) into *ev;
 * *ring_idx is the ring entry ev replaces once committed. Nothing in g changes. */
static void gen_event(const order_gen *g, cursor *c, event *ev, uint32_t *ring_idx)
{
    const order_gen_opts *o = &g->o;
    bool dup = false;
    if (o->duplicates > 0 && g->ring_n > 0)
        dup = unit(next_u64(c)) < o->duplicates;
    if (dup) {
        uint32_t k = (uint32_t)bounded(next_u64(c), g->ring_n);
        *ev = g->ring[k];
        ev->version++;
        ev->status = next_status(ev->status, next_u64(c));
        *ring_idx = k;
    } else {
        int64_t ts = c->base;
        if (g->jitter_max > 0)
            ts += (int64_t)bounded(next_u64(c), g->jitter_max);
        ev->event_id = event_id_of(g, c->slot);
        ev->user_id = zipf1_sample(c);
        ev->country = (uint8_t)alias_sample(tables.countries, ORDER_GEN_NCOUNTRIES, next_u64(c));
        ev->category =
            (uint8_t)alias_sample(tables.categories, ORDER_GEN_NCATEGORIES, next_u64(c));
        ev->status = (uint8_t)alias_sample(tables.statuses, ORDER_GEN_NSTATUSES, next_u64(c));
        ev->device = (uint8_t)alias_sample(tables.devices, ORDER_GEN_NDEVICES, next_u64(c));
        ev->quantity = (int32_t)alias_sample(tables.quantity, NQUANTITY, next_u64(c)) + 1;
        double z = next_normal(c);
        int64_t cents = (int64_t)llround(AMOUNT_MEDIAN_CENTS * exp(AMOUNT_SIGMA * z));
        ev->cents = cents < 1 ? 1 : cents;
        ev->late = false;
        if (o->late > 0 && unit(next_u64(c)) < o->late) {
            ts -= 1 + (int64_t)bounded(next_u64(c), (uint64_t)o->late_max_ms);
            ev->late = true;
        }
        ev->ts = ts;
        ev->version = 1;
        ev->seen_status = -1;
        *ring_idx = g->ring_n < ORDER_GEN_RING ? g->ring_n : g->ring_pos;
    }
    /* The next slot's time. */
    c->slot++;
    c->base += (int64_t)g->q;
    c->acc += g->rem;
    if (c->acc >= o->count && o->count > 0) {
        c->acc -= o->count;
        c->base++;
    }
}

/* Makes the slot generated on c final: the cursor moves on and ev enters the ring. */
static event *commit(order_gen *g, const cursor *c, const event *ev, uint32_t ring_idx)
{
    g->cur = *c;
    g->t.slots++;
    g->ring[ring_idx] = *ev;
    if (ev->version == 1) {
        if (g->ring_n < ORDER_GEN_RING)
            g->ring_n++;
        else
            g->ring_pos = (g->ring_pos + 1) % ORDER_GEN_RING;
    }
    return &g->ring[ring_idx];
}

/* Counts a committed ring entry as emitted as a good event. */
static void emit(order_gen *g, event *e)
{
    order_gen_totals *t = &g->t;
    if (t->events == 0 || e->ts < t->ts_min)
        t->ts_min = e->ts;
    if (t->events == 0 || e->ts > t->ts_max)
        t->ts_max = e->ts;
    t->events++;
    if (e->version > 1)
        t->duplicates++;
    if (e->late)
        t->late++;
    t->amount_cents_all += e->cents;
    t->country_events_all[e->country]++;
    t->country_cents_all[e->country] += e->cents;
    t->status_events_all[e->status]++;
    t->quantity_all += (uint64_t)e->quantity;
    if (e->seen_status < 0) {
        t->distinct_events++;
        t->amount_cents_latest += e->cents;
        t->country_events_latest[e->country]++;
        t->country_cents_latest[e->country] += e->cents;
        t->quantity_latest += (uint64_t)e->quantity;
    } else {
        t->status_events_latest[e->seen_status]--;
    }
    t->status_events_latest[e->status]++;
    e->seen_status = (int8_t)e->status;
}

static bool batch_fits(const row_batch *b)
{
    static const strata_type types[ORDER_NCOLS] = {
        STRATA_TIMESTAMP, STRATA_UINT64, STRATA_UINT64,  STRATA_STRING, STRATA_STRING,
        STRATA_STRING,    STRATA_STRING, STRATA_FLOAT64, STRATA_INT32,  STRATA_UINT64,
    };
    const strata_schema *s = b->schema;
    if (!s || s->ncols != ORDER_NCOLS)
        return false;
    for (int c = 0; c < ORDER_NCOLS; c++)
        if (s->cols[c].type != types[c])
            return false;
    return true;
}

uint32_t order_gen_fill(order_gen *g, row_batch *b, uint32_t max_rows)
{
    if (!batch_fits(b))
        return 0;
    uint64_t left = g->o.count - g->cur.slot;
    uint32_t n = left < max_rows ? (uint32_t)left : max_rows;
    uint32_t done = 0;
    for (; done < n; done++) {
        cursor c = g->cur;
        event ev;
        uint32_t ring_idx;
        gen_event(g, &c, &ev, &ring_idx);
        int64_t r64 = row_batch_add_row(b);
        if (r64 < 0)
            break;
        uint32_t r = (uint32_t)r64;
        if (row_batch_set_str(b, ORDER_COL_COUNTRY, r, order_gen_countries[ev.country],
                              tables.country_len[ev.country]) != 0 ||
            row_batch_set_str(b, ORDER_COL_CATEGORY, r, order_gen_categories[ev.category],
                              tables.category_len[ev.category]) != 0 ||
            row_batch_set_str(b, ORDER_COL_STATUS, r, order_gen_statuses[ev.status],
                              tables.status_len[ev.status]) != 0 ||
            row_batch_set_str(b, ORDER_COL_DEVICE, r, order_gen_devices[ev.device],
                              tables.device_len[ev.device]) != 0) {
            row_batch_pop_row(b);
            break;
        }
        b->i[ORDER_COL_TS][r] = ev.ts;
        b->i[ORDER_COL_EVENT_ID][r] = (int64_t)ev.event_id;
        b->i[ORDER_COL_USER_ID][r] = (int64_t)ev.user_id;
        b->f[ORDER_COL_AMOUNT][r] = (double)ev.cents / 100.0;
        b->i[ORDER_COL_QUANTITY][r] = ev.quantity;
        b->i[ORDER_COL_VERSION][r] = (int64_t)ev.version;
        emit(g, commit(g, &c, &ev, ring_idx));
    }
    return done;
}

/* ---- JSON text (the writer is order_gen_json.c) ---------------------------------------------- */

int order_gen_format_json(const row_batch *b, uint32_t row, char *buf, size_t cap)
{
    if (!batch_fits(b) || row >= b->nrows)
        return -1;
    order_gen_fields v = {
        .ts = b->i[ORDER_COL_TS][row],
        .event_id = (uint64_t)b->i[ORDER_COL_EVENT_ID][row],
        .user_id = (uint64_t)b->i[ORDER_COL_USER_ID][row],
        .version = (uint64_t)b->i[ORDER_COL_VERSION][row],
        .country = row_batch_get_str(b, ORDER_COL_COUNTRY, row),
        .category = row_batch_get_str(b, ORDER_COL_CATEGORY, row),
        .status = row_batch_get_str(b, ORDER_COL_STATUS, row),
        .device = row_batch_get_str(b, ORDER_COL_DEVICE, row),
        .amount = b->f[ORDER_COL_AMOUNT][row],
        .quantity = b->i[ORDER_COL_QUANTITY][row],
    };
    return order_gen_fields_json(&v, buf, cap);
}

static strata_str sstr(const char *s, uint8_t len)
{
    strata_str r = {s, len};
    return r;
}

static int format_event(const event *e, char *buf, size_t cap)
{
    order_gen_fields v = {
        .ts = e->ts,
        .event_id = e->event_id,
        .user_id = e->user_id,
        .version = e->version,
        .country = sstr(order_gen_countries[e->country], tables.country_len[e->country]),
        .category = sstr(order_gen_categories[e->category], tables.category_len[e->category]),
        .status = sstr(order_gen_statuses[e->status], tables.status_len[e->status]),
        .device = sstr(order_gen_devices[e->device], tables.device_len[e->device]),
        .amount = (double)e->cents / 100.0,
        .quantity = e->quantity,
    };
    return order_gen_fields_json(&v, buf, cap);
}

const char *order_gen_bad_kind_name(order_gen_bad_kind k)
{
    static const char *const names[ORDER_BAD_NKINDS] = {
        "not_json",     "truncated", "no_ts",     "amount_type",
        "country_type", "array",     "ts_string", "empty",
    };
    return (unsigned)k < ORDER_BAD_NKINDS ? names[k] : "unknown";
}

int order_gen_format_bad(order_gen_bad_kind k, uint64_t n, char *buf, size_t cap)
{
    uint64_t x = n;
    unsigned long long id = (unsigned long long)(splitmix64(&x) & MASK63);
    long long ts = 1704067200000LL + (long long)(n % 604800000ULL);
    unsigned long long user = (unsigned long long)(n % ORDER_GEN_NUSERS + 1);
    const char *country = order_gen_countries[n % ORDER_GEN_NCOUNTRIES];
    const char *category = order_gen_categories[n % ORDER_GEN_NCATEGORIES];
    int len;
    switch (k) {
    case ORDER_BAD_NOT_JSON:
        len = snprintf(buf, cap, "order %llu from %s: not json at all", id, country);
        break;
    case ORDER_BAD_TRUNCATED:
        len = snprintf(buf, cap,
                       "{\"ts\":%lld,\"event_id\":%llu,\"user_id\":%llu,\"country\":\"%s\",\"categ",
                       ts, id, user, country);
        break;
    case ORDER_BAD_NO_TS:
        len = snprintf(buf, cap,
                       "{\"event_id\":%llu,\"user_id\":%llu,\"country\":\"%s\",\"category\":\"%s\","
                       "\"status\":\"paid\",\"device\":\"mobile\",\"amount\":12.34,\"quantity\":1,"
                       "\"version\":1}",
                       id, user, country, category);
        break;
    case ORDER_BAD_AMOUNT_TYPE:
        len = snprintf(buf, cap,
                       "{\"ts\":%lld,\"event_id\":%llu,\"user_id\":%llu,\"country\":\"%s\","
                       "\"category\":\"%s\",\"status\":\"paid\",\"device\":\"mobile\","
                       "\"amount\":\"abc\",\"quantity\":1,\"version\":1}",
                       ts, id, user, country, category);
        break;
    case ORDER_BAD_COUNTRY_TYPE:
        len = snprintf(buf, cap,
                       "{\"ts\":%lld,\"event_id\":%llu,\"user_id\":%llu,\"country\":42,"
                       "\"category\":\"%s\",\"status\":\"paid\",\"device\":\"mobile\","
                       "\"amount\":12.34,\"quantity\":1,\"version\":1}",
                       ts, id, user, category);
        break;
    case ORDER_BAD_ARRAY:
        len = snprintf(buf, cap,
                       "[{\"ts\":%lld,\"event_id\":%llu,\"user_id\":%llu,\"country\":\"%s\","
                       "\"category\":\"%s\",\"status\":\"paid\",\"device\":\"mobile\","
                       "\"amount\":12.34,\"quantity\":1,\"version\":1}]",
                       ts, id, user, country, category);
        break;
    case ORDER_BAD_TS_STRING:
        len = snprintf(buf, cap,
                       "{\"ts\":\"2024-13-45T25:61:00Z\",\"event_id\":%llu,\"user_id\":%llu,"
                       "\"country\":\"%s\",\"category\":\"%s\",\"status\":\"paid\","
                       "\"device\":\"mobile\",\"amount\":12.34,\"quantity\":1,\"version\":1}",
                       id, user, country, category);
        break;
    case ORDER_BAD_EMPTY:
        if (cap == 0)
            return -1;
        buf[0] = '\0';
        len = 0;
        break;
    default:
        return -1;
    }
    if (len < 0 || (size_t)len >= cap)
        return -1;
    return len;
}

int order_gen_bad_json(order_gen *g, char *buf, size_t cap)
{
    int len = order_gen_format_bad((order_gen_bad_kind)(g->bad_next % ORDER_BAD_NKINDS),
                                   g->bad_next, buf, cap);
    if (len >= 0)
        g->bad_next++;
    return len;
}

int order_gen_next_json(order_gen *g, char *buf, size_t cap, order_gen_msg *msg)
{
    if (cap < ORDER_GEN_JSON_MAX)
        return STRATA_EINVAL;
    if (g->cur.slot >= g->o.count)
        return 0;
    cursor c = g->cur;
    event ev;
    uint32_t ring_idx;
    bool bad = slot_is_bad(g, c.slot);
    gen_event(g, &c, &ev, &ring_idx);
    event *e = commit(g, &c, &ev, ring_idx);
    memset(msg, 0, sizeof *msg);
    if (bad) {
        int len = order_gen_bad_json(g, buf, cap); /* fits: cap >= ORDER_GEN_JSON_MAX */
        msg->len = len > 0 ? (size_t)len : 0;
        msg->bad = true;
        g->t.bad++;
        return 1;
    }
    int len = format_event(e, buf, cap); /* fits: at most ~300 bytes */
    msg->len = len > 0 ? (size_t)len : 0;
    msg->event_id = e->event_id;
    msg->ts = e->ts;
    emit(g, e);
    return 1;
}
