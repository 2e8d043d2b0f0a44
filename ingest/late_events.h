/*
 * late_events.h — a table's late policy at ingest (schema: late_policy, late_bound).
 *
 * With late_policy "dead-letter" and a late_bound, an event whose time lies more than
 * late_bound before the latest event time the table has seen (but never later than the
 * wall clock plus five minutes: table_latest_time) is refused, with the reason, instead
 * of landing; corrections and deletions too, since they are events. The latest time is
 * the table's when the request (or Kafka batch) is decoded: Kafka sends it to the dead-letter topic, POST /ingest
 * answers it as a rejected line. With "update" (the default) every event lands, and a
 * late one dirties the rollup buckets it touches (engine/rollup.h), rebuilt from raw rows.
 */
#ifndef STRATA_LATE_EVENTS_H
#define STRATA_LATE_EVENTS_H

#include <stdint.h>

#include "engine/error.h"
#include "engine/table.h"

/* 0 when an event of time ts may land in t; STRATA_EINVAL with the reason in err when
 * the table's policy refuses it as too late. */
int late_event_check(strata_table *t, int64_t ts, strata_err *err);

#endif
