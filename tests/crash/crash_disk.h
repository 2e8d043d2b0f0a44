/*
 * crash_disk.h — what a crash left in a partition directory, read without recovering it.
 *
 * The crash tests look at a partition directory twice: right after the SIGKILL, before
 * anything opens the table (table_open deletes what a cut-short flush left, so only then
 * can a test see that its kills landed inside flushes), and after recovery (where nothing
 * of the kind may remain). Header-only: each crash test is one source file.
 */
#ifndef STRATA_CRASH_DISK_H
#define STRATA_CRASH_DISK_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/manifest.h"
#include "engine/segment.h"

typedef struct crash_disk {
    int manifest_rc;  /* manifest_read's result: 0, STRATA_ENOTFOUND, or a damage code */
    int tmp;          /* files named *.tmp (MANIFEST.tmp: a commit cut short) */
    int unlisted;     /* *.seg files the manifest does not list (a flush cut short) */
    int listed;       /* segments the manifest lists */
    int listed_bad;   /* listed segments that are missing, do not open, or whose row count
                       * differs from the manifest's (checked only when asked) */
    char first_stray[64]; /* the name of one *.tmp or unlisted *.seg, for messages */
    char bad_msg[300];    /* why the first listed_bad segment is bad */
} crash_disk;

/* Scans pdir. m (may be NULL) receives its manifest (zeroed when there is none); the
 * caller frees it with manifest_free. With open_listed, opens every listed segment and
 * compares its row count with the manifest's. Returns 0, or -1 when pdir cannot be read
 * (a partition that does not exist yet counts as empty: 0, manifest_rc STRATA_ENOTFOUND). */
static inline int crash_disk_scan(const char *pdir, bool open_listed, crash_disk *out /* OUT */,
                                  manifest *m /* OUT */)
{
    memset(out, 0, sizeof *out);
    manifest local;
    manifest *man = m ? m : &local;
    out->manifest_rc = manifest_read(pdir, man, NULL);
    DIR *d = opendir(pdir);
    if (!d) {
        if (!m)
            manifest_free(&local);
        return out->manifest_rc == STRATA_ENOTFOUND ? 0 : -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *fn = de->d_name;
        size_t n = strlen(fn);
        bool stray = false;
        if (n > 4 && strcmp(fn + n - 4, ".tmp") == 0) {
            out->tmp++;
            stray = true;
        } else if (n > 4 && strcmp(fn + n - 4, ".seg") == 0) {
            stray = true;
            for (uint32_t i = 0; i < man->nsegs && stray; i++) {
                char want[32];
                manifest_segment_name(man->segs[i].id, want, sizeof want);
                stray = strcmp(want, fn) != 0;
            }
            out->unlisted += stray;
        }
        if (stray && !out->first_stray[0])
            snprintf(out->first_stray, sizeof out->first_stray, "%.60s", fn);
    }
    closedir(d);
    out->listed = (int)man->nsegs;
    for (uint32_t i = 0; open_listed && i < man->nsegs; i++) {
        char name[32], path[4400];
        manifest_segment_name(man->segs[i].id, name, sizeof name);
        snprintf(path, sizeof path, "%.4000s/%s", pdir, name);
        strata_err err = {0};
        segment *seg;
        if (segment_open(path, &seg, &err) != 0) {
            if (!out->listed_bad++)
                snprintf(out->bad_msg, sizeof out->bad_msg, "%.290s", err.msg);
            continue;
        }
        if (segment_nrows(seg) != man->segs[i].rows && !out->listed_bad++)
            snprintf(out->bad_msg, sizeof out->bad_msg,
                     "%s holds %llu rows, the manifest lists %llu", name,
                     (unsigned long long)segment_nrows(seg), (unsigned long long)man->segs[i].rows);
        segment_close(seg);
    }
    if (!m)
        manifest_free(&local);
    return 0;
}

#endif
