/*
 * schema_json.h — the JSON form of a table schema: parsing (with validation and
 * messages that name the field at fault), the canonical dump, and the atomic save to
 * <table_dir>/schema.json.
 *
 * The same text is accepted as a table file named at start, as the body of
 * PUT /tables/{name} (which may leave out "name"), and as the schema.json stored in the
 * data directory (which schema_json_save writes with every setting spelled out).
 *
 * Format (version 1). Every key is optional unless marked required; a key whose value is
 * null is treated exactly as if it were left out. Unknown keys are refused at every level,
 * with a "did you mean" when one is close. Duplicate keys are refused.
 *
 *   key              | JSON type          | meaning, default
 *   -----------------+--------------------+----------------------------------------------------
 *   format_version   | integer            | 1 (the only version this build reads; others are
 *                    |                    | refused with STRATA_EVERSION). Written by dump.
 *   name             | string             | table name, required unless given by the caller
 *                    |                    | (schema_json_parse_named); letters, digits, '_',
 *                    |                    | not starting with a digit, at most 63 bytes
 *   columns          | array of objects   | required, 1..128 columns, in storage order:
 *     .name          | string             |   required, same rules as the table name, unique
 *     .type          | string             |   required: timestamp (int64 ms since epoch, UTC),
 *                    |                    |   int64, uint64, int32, float64, bool, string
 *     .default       | per type           |   value used when an event lacks the field:
 *                    |                    |   timestamp/int64: integer; int32: integer in
 *                    |                    |   int32 range; uint64: integer >= 0, or a decimal
 *                    |                    |   string for values above 2^63-1 (JSON integers
 *                    |                    |   are read as signed 64-bit); float64: number, or
 *                    |                    |   "NaN", "Infinity", "-Infinity"; bool: true/false;
 *                    |                    |   string: string of at most 255 bytes.
 *                    |                    |   An integer default may be written with a
 *                    |                    |   fraction or exponent (2.0, 1e3, -0.0) when it
 *                    |                    |   is an integer in range below 2^53 in magnitude
 *                    |                    |   (read as a double, exact there); 2.5 is refused
 *                    |                    |   ("... is not an integer"), 1e19 too ("write
 *                    |                    |   the default as an integer").
 *                    |                    |   Default 0 / 0.0 / false / "".
 *   time_column      | string             | required; a column of type timestamp
 *   partition_by     | string             | "hour", "day" or "month"; default "day"
 *   order_by         | array of strings   | sort key inside a segment, most significant first,
 *                    |                    | at least one column; default: every string column
 *                    |                    | except the dedup key, then the time column
 *   dedup_key        | string or array    | 1..8 columns (integer, timestamp or string) whose
 *                    | of strings         | latest row per value is the table's content; must
 *                    |                    | include the time column; default none
 *   version          | string             | integer or timestamp column; the greatest version
 *                    |                    | wins (ties: last ingested). Needs dedup_key
 *   deleted          | string             | bool column; a true row removes its key. Needs
 *                    |                    | dedup_key
 *   dedup_window     | duration string    | partitions older than this before the latest
 *                    |                    | event keep no key index in memory (their keys
 *                    |                    | are looked up on disk); default "2d". Needs
 *                    |                    | dedup_key
 *   rollups          | array of objects   | at most 4, default none:
 *     .interval      | duration string    |   required, "1m" or "1h", each at most once
 *     .dimensions    | array of strings   |   string columns; default none
 *     .metrics       | array of objects   |   required, 1..32:
 *       .fn          | string             |     required: count, sum, min, max, uniq, quantile
 *       .column      | string             |     required except for count (which takes none);
 *                    |                    |     numeric for sum/min/max/quantile, any for uniq
 *   retention        | object             | per tier, each a duration string > 0; absent or
 *     .raw .1m .1h   | duration string    | null keeps forever. raw: a partition whose end
 *                    |                    | is before now - raw is dropped whole by the
 *                    |                    | background sweep; rows arriving for one are
 *                    |                    | accepted and dropped by the next sweep
 *                    |                    | (engine/retention.h). 1m, 1h: not used yet
 *   lateness         | duration string    | allowed lateness behind the watermark; default "2m"
 *   late_policy      | string             | "update" (default) or "dead-letter"
 *   late_bound       | duration string    | > 0; events later than this go to dead letters
 *                    |                    | under "dead-letter"; default none
 *   unknown_fields   | string             | what ingest does with an event's fields that name
 *                    |                    | no column (keys of the event's top level; a
 *                    |                    | nested object is one field): "ignore" (default:
 *                    |                    | the event lands without them; the /ingest answer
 *                    |                    | and /metrics report them) or "reject" (the event
 *                    |                    | is refused, naming the first such field: a
 *                    |                    | rejected line over HTTP, a dead letter from Kafka)
 *   storage          | object             | every key optional:
 *     .compression   | string             |   "lz4" (default), "zstd" or "none"
 *     .memtable_rows | integer            |   flush at this many rows, 1..16777216; 1048576
 *     .memtable_bytes| integer or size    |   flush at this many bytes, >= 64KiB; "64MiB"
 *     .memtable_age  | duration string    |   flush when the oldest row is this old; "1s"
 *     .memory_budget | integer or size    |   all memtables together, >= memtable_bytes;
 *                    |                    |   "512MiB"
 *   kafka            | object             | when present the table consumes from Kafka:
 *     .brokers       | string             |   bootstrap servers, may be empty (given on the
 *                    |                    |   command line); at most 255 bytes
 *     .topic         | string             |   required; letters, digits, '.', '_', '-', at
 *                    |                    |   most 127 bytes
 *     .group         | string             |   consumer group; default "strata-<table name>"
 *     .start         | string             |   "earliest" (default) or "latest"
 *     .offset_reset  | string             |   when a partition's offsets went backwards
 *                    |                    |   (topic re-created, broker restarted empty):
 *                    |                    |   "stop" (default: that partition stops, the
 *                    |                    |   reason in /health) or "accept" (the new
 *                    |                    |   offsets are new data, read from the start)
 *     .properties    | object             |   librdkafka properties, at most 32; values are
 *                    |                    |   strings (numbers and booleans are converted)
 *
 * Durations and sizes use the grammar of engine/units.h ("500ms", "2m", "7d", "1y";
 * "65536", "64KiB", "64MB", "64m").
 *
 * Example:
 *   {"name": "orders",
 *    "columns": [{"name": "ts", "type": "timestamp"}, {"name": "event_id", "type": "uint64"},
 *                {"name": "country", "type": "string", "default": ""},
 *                {"name": "amount", "type": "float64", "default": 0}],
 *    "time_column": "ts", "dedup_key": ["event_id", "ts"],
 *    "rollups": [{"interval": "1m", "dimensions": ["country"],
 *                 "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]}],
 *    "retention": {"raw": "30d"},
 *    "kafka": {"topic": "orders"}}
 *
 * Error messages start with the path of the field at fault, then the reason:
 *   columns[3].type: unknown type 'int128' (expected one of timestamp, int64, ...)
 *   kafka.topic: expected a string, got an integer
 *   unknown field 'partiton_by' (did you mean 'partition_by'?)
 *   unknown_fields: unknown value 'drop' (expected one of ignore, reject)
 *   storage: unknown field 'compresion' (did you mean 'compression'?)
 *   malformed JSON at line 3 column 5: ...
 * Semantic rules are those of schema_validate() (engine/schema.h), whose messages are
 * passed on unchanged.
 */
#ifndef STRATA_SCHEMA_JSON_H
#define STRATA_SCHEMA_JSON_H

#include <stddef.h>

#include "engine/error.h"
#include "engine/schema.h"

/* The words of the format for each enum setting, indexed by its value (shared by the
 * parser and the dump). */
extern const char *const schema_json_partition_names[3];
extern const char *const schema_json_codec_names[3];
extern const char *const schema_json_late_policy_names[2];
extern const char *const schema_json_unknown_fields_names[2];
extern const char *const schema_json_start_names[2];
extern const char *const schema_json_reset_names[2];

#define SCHEMA_JSON_FORMAT_VERSION 1
#define SCHEMA_JSON_FILE "schema.json"
#define SCHEMA_JSON_MAX_FILE (4u << 20) /* schema files larger than this are refused */

/* Parses and validates text[0..len) (need not be NUL-terminated). The result starts from
 * schema_init() defaults; when "order_by" is absent the default sort key is applied; the
 * result passed schema_validate(). Returns 0 and fills *out on success. On failure
 * returns STRATA_EINVAL (or STRATA_EVERSION for an unknown format_version, STRATA_ENOMEM)
 * with the message in err, and leaves *out unchanged. "name" is required. */
int schema_json_parse(const char *text, size_t len, strata_schema *out /* OUT */, strata_err *err);

/* As schema_json_parse, for a body whose table name is known from elsewhere (the URL of
 * PUT /tables/{name}). When name is non-NULL: a JSON without "name" gets this name, and a
 * JSON whose "name" differs is refused ("name: 'x' does not match the table name 'y' in
 * the path"). When name is NULL this is schema_json_parse. */
int schema_json_parse_named(const char *text, size_t len, const char *name,
                            strata_schema *out /* OUT */, strata_err *err);

/* Reads and parses the file at path. Errors as schema_json_parse, with the path in front
 * of the message; a missing file gives STRATA_ENOTFOUND, other read failures STRATA_EIO,
 * files above SCHEMA_JSON_MAX_FILE bytes STRATA_EINVAL. *out is unchanged on failure. */
int schema_json_parse_file(const char *path, strata_schema *out /* OUT */, strata_err *err);

/* The canonical JSON text of s: every setting written out, including defaults (unset
 * optional settings as null), keys in the order of the table above, two-space indent,
 * a final newline. schema_json_parse(dump(s)) gives back s field for field for every s
 * that schema_json_parse can produce (for a hand-built s: one that passes
 * schema_validate, has norder > 0, and zeroes the defaults that do not apply to a
 * column's type and the kafka fields when kafka is disabled).
 * Returns a NUL-terminated string the caller frees with free(), or NULL when memory
 * runs out or s holds something the format cannot express (an invalid type or function,
 * a column index out of range, a count above its array, a string that is not UTF-8). */
char *schema_json_dump(const strata_schema *s);

/* Validates s and writes its dump to table_dir/schema.json atomically: the text goes to
 * schema.json.tmp, which is fsynced and renamed over schema.json, then the directory is
 * fsynced. On failure returns STRATA_EINVAL (s fails schema_validate; nothing is
 * written), STRATA_ENOMEM, or STRATA_EIO (message names the file and the errno); the
 * temporary file is removed and any previous schema.json is left as it was. */
int schema_json_save(const char *table_dir, const strata_schema *s, strata_err *err);

#endif
