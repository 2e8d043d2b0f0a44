/*
 * fuzz_manifest.c — libFuzzer target for the partition manifest reader: the input is
 * written as a MANIFEST file and read back; any bytes must give a manifest or an error
 * with a message, never a crash. A manifest that reads must also write and read back
 * identically.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/manifest.h"

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-manifest-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    char path[128];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    manifest m, again;
    strata_err err = {0};
    if (manifest_read(dir, &m, &err) == 0) {
        if (manifest_write(dir, &m, NULL, &err) != 0 || manifest_read(dir, &again, &err) != 0)
            abort();
        if (again.nsegs != m.nsegs || again.ncps != m.ncps || again.generation != m.generation)
            abort();
        for (uint32_t i = 0; i < m.nsegs; i++) { /* field by field: structs have padding */
            const manifest_segment *a = &m.segs[i], *b = &again.segs[i];
            if (a->id != b->id || a->rows != b->rows || a->bytes != b->bytes ||
                a->min_time != b->min_time || a->max_time != b->max_time || a->level != b->level)
                abort();
        }
        for (uint32_t i = 0; i < m.ncps; i++)
            if (strcmp(m.cps[i].source, again.cps[i].source) != 0 ||
                m.cps[i].partition != again.cps[i].partition ||
                m.cps[i].next_offset != again.cps[i].next_offset)
                abort();
        manifest_free(&again);
        manifest_free(&m);
    } else if (err.msg[0] == 0) {
        abort();
    }
    unlink(path);
    return 0;
}
