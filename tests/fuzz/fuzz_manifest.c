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

#include "manifest.h"

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
        if (manifest_write(dir, &m, &err) != 0 || manifest_read(dir, &again, &err) != 0)
            abort();
        if (again.nsegs != m.nsegs || again.ncps != m.ncps || again.generation != m.generation ||
            (m.nsegs && memcmp(again.segs, m.segs, sizeof *m.segs * m.nsegs) != 0))
            abort();
        manifest_free(&again);
        manifest_free(&m);
    } else if (err.msg[0] == 0) {
        abort();
    }
    unlink(path);
    return 0;
}
