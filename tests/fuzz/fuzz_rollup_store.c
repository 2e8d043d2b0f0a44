/*
 * fuzz_rollup_store.c — libFuzzer target for what rollup tiers read back from disk
 * (engine/rollup_store.h, engine/sketch.h): the first input byte picks the reader, the
 * rest is its input.
 *   0: hll_load — a sketch that loads stores back to the very same bytes;
 *   1: dds_packed_load — the same, and it merges into a sketch whose quantiles read;
 *   2: a TIER manifest, written into a tier directory and listed (rollup_store_list).
 * Any bytes must give a result or an error (with a message, for the manifest), never a
 * crash. Built like the other targets (tests/fuzz/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/buf.h"
#include "engine/rollup_store.h"
#include "engine/sketch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    bytebuf again = {0};
    switch (data[0] % 3) {
    case 0: {
        hll *h;
        if (hll_load(p, n, &h) == 0) {
            if (!hll_store(h, &again) || again.len != n || memcmp(again.data, p, n) != 0)
                abort();
            (void)hll_estimate(h);
            hll_free(h);
        }
        break;
    }
    case 1: {
        dds_packed *pk;
        if (dds_packed_load(p, n, &pk) == 0) {
            dds_packed_store(pk, &again);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                abort();
            ddsketch *d = dds_create();
            if (d && dds_merge_packed(d, pk))
                (void)dds_quantile(d, 0.5);
            dds_free(d);
            free(pk);
        }
        break;
    }
    default: {
        if (!dir[0]) {
            snprintf(dir, sizeof dir, "/tmp/fuzz-tier-XXXXXX");
            if (mkdtemp(dir) == NULL)
                abort();
        }
        char tdir[160], path[200];
        snprintf(tdir, sizeof tdir, "%s/rollup_1m", dir);
        mkdir(tdir, 0755);
        snprintf(path, sizeof path, "%s/TIER", tdir);
        FILE *f = fopen(path, "wb");
        if (!f || (n && fwrite(p, 1, n, f) != n))
            abort();
        fclose(f);
        rollup_store_entry *e = NULL;
        uint32_t ne = 0;
        strata_err err = {0};
        if (rollup_store_list(tdir, &e, &ne, &err) == 0) {
            for (uint32_t i = 0; i < ne; i++)
                if (e[i].from >= e[i].to || e[i].path[0] == 0)
                    abort();
            free(e);
        } else if (err.msg[0] == 0) {
            abort();
        }
        unlink(path);
        break;
    }
    }
    buf_free(&again);
    return 0;
}
