/*
 * order_gen_json.h — the JSON text of one order event from its field values, shared by
 * the generator's text path (its own events) and order_gen_format_json (rows of a batch).
 * Internal to tools/order_gen*.c: callers use order_gen.h.
 */
#ifndef STRATA_ORDER_GEN_JSON_H
#define STRATA_ORDER_GEN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "engine/row_batch.h"

/* The fields of one event as text sees them. */
typedef struct order_gen_fields {
    int64_t ts;
    uint64_t event_id, user_id, version;
    strata_str country, category, status, device;
    double amount;
    int64_t quantity;
} order_gen_fields;

/* Writes v as order_gen_format_json documents (one flat object, no newline, strings
 * JSON-escaped, amount with two decimals) into buf, NUL-terminated. Returns the length,
 * or -1 when it does not fit in cap bytes (buf's content is then undefined). */
int order_gen_fields_json(const order_gen_fields *v, char *buf, size_t cap);

#endif
