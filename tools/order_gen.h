/*
 * order_gen.h — deterministic generator of the reference "order" events: the table that
 * benchmarks, tests, `strata demo` and `strata gen` all use.
 *
 * One generator produces `count` event slots. Slot i is, in order of preference:
 *   - with `duplicates` probability (once at least one event exists) a re-send of one of the
 *     last ORDER_GEN_RING originals: same event_id, ts, user, country, category, device,
 *     amount and quantity, version + 1 and possibly a status that moved on
 *     (paid -> shipped -> delivered, paid -> cancelled, delivered -> refunded);
 *   - else a new original (version 1) with ts = start_ms + floor(i * span_ms / count) + a
 *     jitter in [0, floor(span_ms / count / 2)), so originals are non-decreasing in ts and
 *     lie in [start_ms, start_ms + span_ms); with `late` probability its ts is then moved
 *     back by uniform [1, late_max_ms] (it may fall before start_ms);
 *   - only on the text path (order_gen_next_json), with `bad` probability the slot's event
 *     is replaced by a malformed one (see order_gen_bad_json). Whether a slot is bad is a
 *     pure function of (seed, i), and the replaced event is still generated (the sender
 *     "lost" it), so the good events of the text path are exactly those order_gen_fill
 *     gives for the same slots. Bad events count toward `count`, not toward the totals.
 * Re-sends keep their original's ts, so with duplicates (or late events) the stream is no
 * longer sorted by ts. A re-send of an event whose earlier versions were all replaced by
 * bad ones is the first version of that event_id a table sees; the totals account for that.
 *
 * Determinism: the same options always give the same events, however the caller batches
 * them (fill(1000) ten times == fill(10000) once) and however it mixes fill and next_json.
 * Events come from xoshiro256** seeded by splitmix64(seed); event_ids are a keyed 63-bit
 * bijection of the slot index, so they are random-looking, < 2^63 and never collide.
 * (Amounts go through libm's exp/log/sin/cos: a different libm could move a rare amount by
 * a cent; everything else is integer arithmetic.)
 *
 * Distributions: user_id Zipf(s = 1.0) over 1..1,000,000 (user_id = rank); country Zipf
 * (s = 1.2) over order_gen_countries ("US" first); category Zipf (s = 0.5) over
 * order_gen_categories; status 60/20/12/5/3 %; device 60/32/8 %; quantity 1..10 falling
 * (40 % are 1); amount lognormal with median 35.00 and sigma 1.0, in whole cents, at least
 * 0.01, stored as exactly (double)cents / 100.0. user_id is drawn by rejection-inversion
 * (exact Zipf, no table); the small discrete distributions use alias tables built once per
 * process (microseconds) and shared read-only by every generator.
 *
 * Totals: the generator keeps exact running totals of what it emitted, both over all rows
 * (what a table without dedup holds) and over the latest version of each event_id (what a
 * deduplicated table must show). Amounts are summed in integer cents, so they are exact;
 * a double sum over rows differs from cents / 100.0 only by rounding.
 *
 * Memory: the generator holds its ring of ORDER_GEN_RING recent originals (256 KiB)
 * and nothing that grows with count. Threads: a generator belongs to one thread at a time;
 * the shared tables are immutable after their one-time build.
 */
#ifndef STRATA_ORDER_GEN_H
#define STRATA_ORDER_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/row_batch.h"
#include "engine/schema.h"

/* Column indexes in order_gen_schema(). */
enum {
    ORDER_COL_TS = 0,       /* timestamp, the time column */
    ORDER_COL_EVENT_ID = 1, /* uint64, the dedup key */
    ORDER_COL_USER_ID = 2,  /* uint64 */
    ORDER_COL_COUNTRY = 3,  /* string */
    ORDER_COL_CATEGORY = 4, /* string */
    ORDER_COL_STATUS = 5,   /* string */
    ORDER_COL_DEVICE = 6,   /* string */
    ORDER_COL_AMOUNT = 7,   /* float64 */
    ORDER_COL_QUANTITY = 8, /* int32 */
    ORDER_COL_VERSION = 9,  /* uint64, the version column */
    ORDER_NCOLS = 10,
};

#define ORDER_GEN_NCOUNTRIES 50
#define ORDER_GEN_NCATEGORIES 20
#define ORDER_GEN_NSTATUSES 5
#define ORDER_GEN_NDEVICES 3
#define ORDER_GEN_NUSERS 1000000
#define ORDER_GEN_RING 4096  /* duplicates re-send one of this many latest originals */
#define ORDER_GEN_JSON_MAX 512 /* buffer size order_gen_next_json requires */

/* The string values, in the order the totals index them. Static, never freed. */
extern const char *const order_gen_countries[ORDER_GEN_NCOUNTRIES];   /* "US" first */
extern const char *const order_gen_categories[ORDER_GEN_NCATEGORIES]; /* "electronics" first */
extern const char *const order_gen_statuses[ORDER_GEN_NSTATUSES];     /* "paid" first */
extern const char *const order_gen_devices[ORDER_GEN_NDEVICES];       /* "mobile" first */

/* Fills out with the "orders" schema: the columns above, time column ts, dedup_key
 * event_id, version column version, partition by day, the default sort key (the string
 * columns, then ts), no rollups, Kafka disabled. out passes schema_validate. */
void order_gen_schema(strata_schema *out /* OUT */);

typedef struct order_gen_opts {
    uint64_t seed;
    uint64_t count;      /* event slots to produce, duplicates and bad events included */
    int64_t start_ms;    /* time of slot 0 */
    int64_t span_ms;     /* slots spread evenly over [start_ms, start_ms + span_ms) */
    double duplicates;   /* probability that a slot re-sends a recent event, in [0, 1] */
    double late;         /* probability that an original is late, in [0, 1] */
    int64_t late_max_ms; /* a late event's ts moves back by uniform [1, late_max_ms] */
    double bad;          /* probability that a text slot is malformed, in [0, 1] */
} order_gen_opts;

/* seed 1, count 10,000,000, start 2024-01-01T00:00:00Z, span 7 days, no duplicates, no late
 * events, late_max_ms 600,000 (10 minutes), no bad events. */
void order_gen_opts_default(order_gen_opts *o /* OUT */);

typedef struct order_gen_totals {
    uint64_t slots;           /* slots produced so far, good and bad (== count at the end) */
    uint64_t events;          /* good events emitted: the rows of a table without dedup */
    uint64_t bad;             /* malformed events emitted (text path only) */
    uint64_t duplicates;      /* good events that were re-sends (version > 1) */
    uint64_t late;            /* good events emitted with a late ts (originals or re-sends) */
    uint64_t distinct_events; /* distinct event_ids among good events: rows after dedup */
    int64_t ts_min, ts_max;   /* over good events; 0 / 0 while events == 0 */
    /* Over all good events. */
    int64_t amount_cents_all;
    uint64_t country_events_all[ORDER_GEN_NCOUNTRIES];
    int64_t country_cents_all[ORDER_GEN_NCOUNTRIES];
    uint64_t status_events_all[ORDER_GEN_NSTATUSES];
    uint64_t quantity_all;    /* sum of quantity */
    /* Over the latest emitted version of each event_id. Amount, country and quantity are
     * the same in every version; status is the latest version's. */
    int64_t amount_cents_latest;
    uint64_t country_events_latest[ORDER_GEN_NCOUNTRIES];
    int64_t country_cents_latest[ORDER_GEN_NCOUNTRIES];
    uint64_t status_events_latest[ORDER_GEN_NSTATUSES];
    uint64_t quantity_latest;
} order_gen_totals;

typedef struct order_gen order_gen;

/* Checks o (probabilities in [0, 1], span_ms >= 0, late_max_ms >= 1 when late > 0) and
 * makes a generator; the first call in the process also builds the shared tables.
 * Returns NULL with err filled (STRATA_EINVAL or STRATA_ENOMEM) on failure. The caller
 * frees the generator with order_gen_free. */
order_gen *order_gen_create(const order_gen_opts *o, strata_err *err);
void order_gen_free(order_gen *g);

/* Appends the next min(max_rows, slots left) events to b, whose schema must be (a copy
 * of) order_gen_schema's. Returns the number of rows appended: fewer than max_rows only at
 * the end, 0 when the generator is done. Ignores opts.bad (a row batch cannot hold a
 * malformed event). If b cannot grow (out of memory) it stops early and returns the rows
 * appended so far; the slot that failed is not consumed. */
uint32_t order_gen_fill(order_gen *g, row_batch *b, uint32_t max_rows);

/* One event of the text path. */
typedef struct order_gen_msg {
    size_t len;        /* bytes written to buf, NUL not counted; 0 for an empty-line event */
    bool bad;          /* a malformed event */
    uint64_t event_id; /* the event's key (e.g. a Kafka message key); 0 when bad */
    int64_t ts;        /* the event's time (for pacing); 0 when bad */
} order_gen_msg;

/* Writes the next slot as one line of JSON text without a newline, NUL-terminated, as
 * order_gen_format_json would, or as a malformed event with probability opts.bad.
 * Returns 1 when an event was written, 0 when the generator is done, STRATA_EINVAL (with
 * nothing consumed) when cap < ORDER_GEN_JSON_MAX. */
int order_gen_next_json(order_gen *g, char *buf, size_t cap, order_gen_msg *msg /* OUT */);

/* Formats row of b (an order_gen_schema batch) as one flat JSON object without newline:
 * {"ts":1704067200123,"event_id":...,"user_id":...,"country":"US","category":"books",
 *  "status":"paid","device":"mobile","amount":12.34,"quantity":2,"version":1}
 * with amount printed with exactly 2 decimals. Strings are JSON-escaped. Returns the
 * length (buf is NUL-terminated), or -1 when it does not fit in cap bytes. */
int order_gen_format_json(const row_batch *b, uint32_t row, char *buf, size_t cap);

/* Kinds of malformed events, each something a decoder must send to the dead letters. */
typedef enum order_gen_bad_kind {
    ORDER_BAD_NOT_JSON = 0,    /* plain text */
    ORDER_BAD_TRUNCATED = 1,   /* an object cut off mid-way */
    ORDER_BAD_NO_TS = 2,       /* a complete event without the time field */
    ORDER_BAD_AMOUNT_TYPE = 3, /* "amount":"abc" */
    ORDER_BAD_COUNTRY_TYPE = 4,/* "country":42 */
    ORDER_BAD_ARRAY = 5,       /* a JSON array instead of an object */
    ORDER_BAD_TS_STRING = 6,   /* "ts":"2024-13-45T25:61:00Z" */
    ORDER_BAD_EMPTY = 7,       /* an empty message (an NDJSON reader may skip it instead) */
    ORDER_BAD_NKINDS = 8,
} order_gen_bad_kind;

/* Static name of a kind ("not_json", ...); "unknown" for an invalid value. */
const char *order_gen_bad_kind_name(order_gen_bad_kind k);

/* Writes a malformed event of kind k (n varies its field values) into buf, NUL-terminated,
 * no newline. Returns its length (0 for ORDER_BAD_EMPTY), or -1 when cap is too small or
 * k is invalid. Never longer than ORDER_GEN_JSON_MAX - 1. */
int order_gen_format_bad(order_gen_bad_kind k, uint64_t n, char *buf, size_t cap);

/* Writes the generator's next malformed event, rotating through the kinds in order. Does
 * not consume a slot or change the totals (order_gen_next_json does both for its own bad
 * events, which use the same rotation). Returns as order_gen_format_bad; on -1 the
 * rotation does not advance. */
int order_gen_bad_json(order_gen *g, char *buf, size_t cap);

/* Running totals; the pointer is valid until order_gen_free and reflects every later call. */
const order_gen_totals *order_gen_get_totals(const order_gen *g);

#endif
