/*
 * fault.c — failure injection for tests. See fault.h.
 *
 * Each site has an `armed` flag checked first (relaxed), so an unarmed site costs one
 * load; an armed site counts calls with atomics and fails those in [skip, skip+count).
 */
#include "engine/fault.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct fault_state {
    _Atomic bool armed;
    _Atomic uint64_t calls, skip, count, failures;
} fault_state;

static fault_state sites[FAULT_NSITES];

static const char *const site_names[FAULT_NSITES] = {
    [FAULT_FSYNC_DIR] = "fsync_dir",
    [FAULT_MEMTABLE_ALLOC] = "memtable_alloc",
    [FAULT_RENAME_DROP] = "rename_drop",
    [FAULT_DEAD_LETTER_SYNC] = "dead_letter_sync",
    [FAULT_WAL_SYNC] = "wal_sync",
};

void fault_arm(fault_site site, uint64_t skip, uint64_t count)
{
    fault_state *s = &sites[site];
    atomic_store(&s->armed, false);
    atomic_store(&s->calls, 0);
    atomic_store(&s->skip, skip);
    atomic_store(&s->count, count);
    atomic_store(&s->failures, 0);
    atomic_store(&s->armed, count > 0);
}

void fault_reset(void)
{
    for (int i = 0; i < FAULT_NSITES; i++)
        fault_arm((fault_site)i, 0, 0);
}

bool fault_hit(fault_site site)
{
    fault_state *s = &sites[site];
    if (!atomic_load_explicit(&s->armed, memory_order_relaxed))
        return false;
    uint64_t n = atomic_fetch_add(&s->calls, 1);
    uint64_t skip = atomic_load(&s->skip), count = atomic_load(&s->count);
    if (n < skip || n - skip >= count)
        return false;
    atomic_fetch_add(&s->failures, 1);
    return true;
}

uint64_t fault_failures(fault_site site)
{
    return atomic_load(&sites[site].failures);
}

int fault_arm_from_env(strata_err *err)
{
    const char *env = getenv("STRATA_FAULTS");
    if (!env || !*env)
        return 0;
    const char *p = env;
    while (*p) {
        size_t n = strcspn(p, ",");
        char entry[128];
        if (n >= sizeof entry)
            return strata_err_set(err, STRATA_EINVAL, "STRATA_FAULTS: entry too long");
        memcpy(entry, p, n);
        entry[n] = 0;
        char *c1 = strchr(entry, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2)
            return strata_err_set(err, STRATA_EINVAL, "STRATA_FAULTS: '%s' is not site:skip:count", entry);
        *c1 = *c2 = 0;
        int site = -1;
        for (int i = 0; i < FAULT_NSITES; i++)
            if (strcmp(entry, site_names[i]) == 0)
                site = i;
        char *e1, *e2;
        unsigned long long skip = strtoull(c1 + 1, &e1, 10), count = strtoull(c2 + 1, &e2, 10);
        if (site < 0 || *e1 || *e2 || e1 == c1 + 1 || e2 == c2 + 1)
            return strata_err_set(err, STRATA_EINVAL, "STRATA_FAULTS: '%s' is not site:skip:count with "
                                  "a known site", entry);
        fault_arm((fault_site)site, skip, count);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}
