/*
 * schema.h — a table's schema as the engine sees it: typed columns, the time column,
 * partitioning, sort key, dedup key/version, rollups, retention, what ingest does with
 * fields that name no column, storage and Kafka settings.
 *
 * The struct is plain data with fixed-size arrays, so it can be copied with memcpy and
 * freed with free(). The JSON form lives in ingest/schema_json.c (the engine does not
 * parse JSON); schema_validate() holds every semantic rule so both the JSON loader and
 * tests that build schemas by hand go through the same checks.
 *
 * Partitioning: a row's partition is the UTC hour, day or month containing its time
 * value; schema_partition_key() returns the partition's start in epoch ms and
 * schema_partition_name() its directory name (2024-01-31T13, 2024-01-31, 2024-01).
 */
#ifndef STRATA_SCHEMA_H
#define STRATA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

#define STRATA_MAX_COLUMNS 128
#define STRATA_MAX_DEDUP_COLS 8
#define STRATA_NAME_MAX 64        /* column and table names, including the NUL */
#define STRATA_DEFAULT_STR_MAX 256
#define STRATA_MAX_ROLLUPS 4
#define STRATA_MAX_ROLLUP_METRICS 32
#define STRATA_MAX_ROLLUP_DIMS 16   /* a query groups by at most 16 columns */
#define STRATA_MAX_ROLLUP_STATES 32 /* a tier's aggregate states (engine/rollup.h) */
#define STRATA_MAX_KAFKA_PROPS 32

/* Supported time values: 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z. Partition
 * names have four-digit years, so rows outside this range are refused at append. */
#define STRATA_TS_MIN INT64_C(-62167219200000)
#define STRATA_TS_MAX INT64_C(253402300799999)
/* Longest duration a schema may set (lateness, retention, ages): 1000 years. */
#define STRATA_DURATION_MAX INT64_C(31536000000000)

typedef enum strata_type {
    STRATA_TIMESTAMP = 1, /* int64 ms since epoch, UTC */
    STRATA_INT64 = 2,
    STRATA_UINT64 = 3,
    STRATA_INT32 = 4,
    STRATA_FLOAT64 = 5,
    STRATA_BOOL = 6,
    STRATA_STRING = 7,    /* dictionary-encoded in segments */
    STRATA_BYTES = 8,     /* opaque values (rollup states in tier segments); never a table column */
} strata_type;

/* True for the types stored in memory as int64 slots (uint64 as its bit pattern). */
static inline bool strata_type_is_int(strata_type t)
{
    return t == STRATA_TIMESTAMP || t == STRATA_INT64 || t == STRATA_UINT64 ||
           t == STRATA_INT32 || t == STRATA_BOOL;
}

/* "timestamp", "int64", ..., "bytes"; NULL for an invalid value. */
const char *strata_type_name(strata_type t);
/* Parses a type name; returns 0 when the name is unknown. */
strata_type strata_type_parse(const char *name);

typedef struct strata_column {
    char name[STRATA_NAME_MAX];
    strata_type type;
    /* Default used when an event lacks the field: def_i for int types (uint64 as bit
     * pattern, bool as 0/1), def_f for float64, def_s for string. */
    int64_t def_i;
    double def_f;
    char def_s[STRATA_DEFAULT_STR_MAX];
} strata_column;

typedef enum strata_partition_by {
    STRATA_PART_DAY = 0, /* default */
    STRATA_PART_HOUR = 1,
    STRATA_PART_MONTH = 2,
} strata_partition_by;

typedef enum strata_codec {
    STRATA_CODEC_NONE = 0,
    STRATA_CODEC_LZ4 = 1,
    STRATA_CODEC_ZSTD = 2,
} strata_codec;

typedef enum strata_agg {
    STRATA_AGG_COUNT = 1,
    STRATA_AGG_SUM,
    STRATA_AGG_MIN,
    STRATA_AGG_MAX,
    STRATA_AGG_AVG,
    STRATA_AGG_UNIQ,
    STRATA_AGG_QUANTILE,
} strata_agg;

/* "count", "sum", ...; NULL for an invalid value. */
const char *strata_agg_name(strata_agg a);
/* Returns 0 when the name is unknown. */
strata_agg strata_agg_parse(const char *name);

typedef struct strata_rollup_metric {
    strata_agg fn;
    int column; /* column index; -1 for count */
} strata_rollup_metric;

typedef struct strata_rollup {
    int64_t interval_ms; /* whole minutes, 1m to 24h: 60000 for 1m, 3600000 for 1h */
    int ndims;
    int dims[STRATA_MAX_COLUMNS];     /* string column indexes */
    int nmetrics;
    strata_rollup_metric metrics[STRATA_MAX_ROLLUP_METRICS];
} strata_rollup;

typedef enum strata_late_policy {
    STRATA_LATE_UPDATE = 0,      /* default: late events update their bucket */
    STRATA_LATE_DEAD_LETTER = 1, /* events later than late_bound_ms go to dead letters */
} strata_late_policy;

/* What ingest does with an event's fields that name no column (after the JSON form's
 * "unknown_fields"). Either way the event's other fields are decoded as usual; keys are
 * matched at the top level of the event only. */
typedef enum strata_unknown_fields {
    STRATA_UNKNOWN_FIELDS_IGNORE = 0, /* default: the event lands without them (reported) */
    STRATA_UNKNOWN_FIELDS_REJECT = 1, /* the event is refused, like a field of a wrong type */
} strata_unknown_fields;

typedef struct strata_kafka_prop {
    char key[128];
    char value[256];
} strata_kafka_prop;

typedef struct strata_kafka {
    bool enabled;
    char brokers[256];
    char topic[STRATA_NAME_MAX * 2];
    char group[STRATA_NAME_MAX * 2];
    bool start_latest; /* false: earliest offset the broker has */
    bool reset_accept; /* offsets that went backwards are new data (else: stop the partition) */
    int nprops;
    strata_kafka_prop props[STRATA_MAX_KAFKA_PROPS];
} strata_kafka;

typedef struct strata_schema {
    char name[STRATA_NAME_MAX];
    int ncols;
    strata_column cols[STRATA_MAX_COLUMNS];
    int time_col;
    strata_partition_by partition_by;
    int norder;
    /* Column indexes, most significant first. Segments sort rows by the hour of the time
     * column first (segment.h's SEGMENT_SORT_BUCKET_MS), then by these. */
    int order_by[STRATA_MAX_COLUMNS];
    /* Dedup (engine/dedup.h): the key's columns (ndedup 0: no dedup). The time column is
     * always one of them, so a key never moves between time partitions. */
    int ndedup;
    int dedup_cols[STRATA_MAX_DEDUP_COLS];
    int version_col; /* column index or -1 (ties: last ingested wins) */
    int64_t dedup_window_ms; /* partitions this far before the latest event keep no
                              * in-memory key index (dedup.h); default 2 days */
    int deleted_col; /* bool column index or -1 */
    int nrollups;
    strata_rollup rollups[STRATA_MAX_ROLLUPS];
    /* Retention per tier in ms; 0 keeps forever. */
    int64_t retention_raw_ms, retention_1m_ms, retention_1h_ms;
    int64_t lateness_ms;     /* allowed lateness for the watermark; default 120000 */
    strata_late_policy late_policy;
    int64_t late_bound_ms;   /* with STRATA_LATE_DEAD_LETTER; 0 = no bound */
    strata_unknown_fields unknown_fields; /* default STRATA_UNKNOWN_FIELDS_IGNORE */
    /* Storage. */
    strata_codec codec;           /* fresh segments; merged segments use zstd */
    uint64_t memtable_max_rows;   /* flush a memtable at this many rows */
    uint64_t memtable_max_bytes;  /* ... or at this many bytes */
    int64_t memtable_max_age_ms;  /* ... or when its oldest row is this old */
    uint64_t memory_budget_bytes; /* all memtables of the table together */
    strata_kafka kafka;
} strata_schema;

/* Fills s with the defaults of every optional setting, no columns, no name. */
void schema_init(strata_schema *s);

/* True when a and b have the same number of columns with the same types, in order (what a
 * row_batch's arrays depend on). */
bool schema_same_types(const strata_schema *a, const strata_schema *b);

/* Checks every semantic rule: names (letters, digits, '_', not starting with a digit,
 * unique), types, the time column is a timestamp, order_by/dedup/version/deleted refer to
 * existing columns of fitting types, rollup dimensions are string columns and metrics
 * name numeric columns, sizes are sane. On failure returns STRATA_EINVAL with a message
 * naming the field and the reason; s is unchanged either way. */
int schema_validate(const strata_schema *s, strata_err *err);

/* If s->norder is 0, sets the default sort key: every string column except the dedup
 * key, then time. */
void schema_apply_default_order(strata_schema *s);

/* Index of the column called name, or -1. */
int schema_column_index(const strata_schema *s, const char *name);

/* Start (epoch ms, UTC) of the partition containing ts. */
int64_t schema_partition_key(strata_partition_by by, int64_t ts_ms);
/* Start of the partition after the one starting at key. */
int64_t schema_partition_next(strata_partition_by by, int64_t key);
/* Writes the partition's directory name into out (at least 32 bytes). */
void schema_partition_name(strata_partition_by by, int64_t key, char *out, size_t cap);
/* Parses a directory name written by schema_partition_name; 0 on success. */
int schema_partition_parse(strata_partition_by by, const char *name, int64_t *key /* OUT */);

/* Civil-time helpers (proleptic Gregorian, UTC). */
int64_t strata_days_from_civil(int64_t y, unsigned m, unsigned d);
void strata_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
