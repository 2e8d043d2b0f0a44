/*
 * merge_select.c — which adjacent segments of a partition to merge: the tiered selector
 * of merge.h (the policy, its numbers and why are written there). A pure function of a
 * manifest's segment list, so it is tested on its own (tests/unit/test_merge.c).
 *
 * Every run of 2..max_fan_in adjacent segments is looked at, growing each run from its
 * first segment while it stays within the bounds: O(n * max_fan_in) for n segments.
 */
#include "engine/merge.h"

void merge_policy_default(merge_policy *p)
{
    p->max_fan_in = 10;
    p->max_rows = UINT64_C(16) << 20;
    p->max_bytes = UINT64_C(1) << 30;
    p->max_size_ratio = 4.0;
    p->small_bytes = UINT64_C(256) << 10;
    p->small_rows = 16384;
    p->big_run_bytes = UINT64_C(64) << 20;
    p->big_min_fan_in = 4;
    p->fixed_cost_bytes = UINT64_C(1) << 20;
}

bool merge_select(const manifest_segment *segs, uint32_t n, const merge_policy *pol,
                  merge_pick *out)
{
    bool found = false;
    uint32_t max_fan_in = pol->max_fan_in < 2 ? 2 : pol->max_fan_in;
    for (uint32_t first = 0; first + 1 < n; first++) {
        uint64_t rows = 0, bytes = 0, lo = UINT64_MAX, hi = 0, rlo = UINT64_MAX, rhi = 0;
        double esum = 0, rsum = 0; /* effective sizes, for the balance rule */
        uint32_t level = 0;
        for (uint32_t k = 1; k <= max_fan_in && first + k <= n; k++) {
            const manifest_segment *s = &segs[first + k - 1];
            uint64_t eff = s->bytes < pol->small_bytes ? pol->small_bytes : s->bytes;
            uint64_t reff = s->rows < pol->small_rows ? pol->small_rows : s->rows;
            rlo = reff < rlo ? reff : rlo;
            rhi = reff > rhi ? reff : rhi;
            esum += (double)eff;
            rsum += (double)reff;
            rows += s->rows;
            bytes += s->bytes;
            lo = eff < lo ? eff : lo;
            hi = eff > hi ? eff : hi;
            level = s->level > level ? s->level : level;
            if (rows > pol->max_rows || bytes > pol->max_bytes)
                break; /* longer runs only grow */
            if ((double)hi > pol->max_size_ratio * (double)lo ||
                (double)rhi > pol->max_size_ratio * (double)rlo)
                break; /* nor does the spread shrink, in bytes or in rows */
            if (k < 2 || (bytes > pol->big_run_bytes && k < pol->big_min_fan_in))
                continue;
            /* Balanced: no input is over 1.5 times the rest of the run (in bytes and in
             * rows), so a segment is rewritten only when at least 2/3 of its size joins
             * it: each row is rewritten about log1.67 of its segment's growth, never once
             * per flush. */
            if ((double)hi > 1.5 * (esum - (double)hi) || (double)rhi > 1.5 * (rsum - (double)rhi))
                continue;
            double score = ((double)bytes + (double)pol->fixed_cost_bytes * k) / (double)(k - 1);
            if (!found || score < out->score) {
                found = true;
                *out = (merge_pick){.first = first, .count = k,
                                    .level = level + 1 > MERGE_MAX_LEVEL ? MERGE_MAX_LEVEL : level + 1,
                                    .rows = rows, .bytes = bytes, .score = score};
            }
        }
    }
    return found;
}
