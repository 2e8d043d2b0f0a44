/*
 * late_events.c — the late policy check of late_events.h: one comparison against the
 * table's latest event time (table_latest_time: never past the wall clock plus a skew
 * allowance), as it stands when the event is decoded.
 */
#include "ingest/late_events.h"

#include <inttypes.h>

#include "engine/clock.h"
#include "engine/units.h"

int late_event_check(strata_table *t, int64_t ts, strata_err *err)
{
    const strata_schema *sc = table_schema(t);
    if (sc->late_policy != STRATA_LATE_DEAD_LETTER || sc->late_bound_ms <= 0)
        return 0;
    int64_t latest = table_latest_time(t, clock_wall_ms());
    if (latest == INT64_MIN || ts >= latest - sc->late_bound_ms)
        return 0;
    char bound[32], late[32], at[40], newest[40];
    units_format_duration_ms(sc->late_bound_ms, bound, sizeof bound);
    int64_t gap = latest - ts; /* said in whole units: "3d", "5h", "42m", "17s" */
    int64_t unit = gap >= 86400000 ? 86400000 : gap >= 3600000 ? 3600000 : gap >= 60000 ? 60000 : 1000;
    units_format_duration_ms(gap / unit * unit, late, sizeof late);
    units_format_rfc3339_ms(ts, at, sizeof at);
    units_format_rfc3339_ms(latest, newest, sizeof newest);
    return strata_err_set(err, STRATA_EINVAL,
                          "late event: its time %s is over %s before the newest event time %s (taken as no later "
                          "than the clock + 5m), past late_bound %s (late_policy dead-letter)",
                          at, late, newest, bound);
}
