/*
 * inspect.h — the library behind `strata inspect`: read-only, scriptable inspection of
 * segment files and data directories, in the manner of LMDB's mdb_stat.
 *
 * A segment file (inspect.c): format version, schema, rows, time range, and per column the
 * encodings used, compressed and raw bytes, ratio, min/max, dictionary size and bitmap
 * index bytes (json: the same as one JSON object); rows >= 0 prints that many rows as JSON
 * lines (json: in the summary, as "first_rows"); verify checks every checksum and decodes
 * every block.
 * A directory (inspect_dir.c: a data dir, table dir, its raw/ folder or a partition dir):
 * one line per live segment, as listed by the partition manifests, with totals; verify
 * checks every segment. Each table's schema.json is loaded with the server's parser; one
 * that cannot be loaded, or is missing, is a problem like a damaged segment.
 *
 * The report goes to out; problems are printed on stderr ("strata inspect: ...") as they
 * are found. Both calls return the exit status of the command: 0 sound, 1 damage found or
 * an error. Nothing here writes to the files inspected.
 */
#ifndef STRATA_INSPECT_H
#define STRATA_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/dvec.h"
#include "engine/manifest.h"
#include "engine/schema.h"

typedef struct inspect_opts {
    bool verify;    /* check every checksum and decode every block */
    bool json;      /* the report as JSON */
    long long rows; /* a segment: print its first `rows` rows; -1 for none */
    bool quiet;     /* a directory: no progress line on stderr */
    bool all_rows;  /* --rows: also the rows queries skip (superseded, deleted) */
} inspect_opts;

/* Reports on the segment file at path. */
int inspect_segment(const char *path, const inspect_opts *o, FILE *out);

/* Reports on the directory at path (o->rows is not used). */
int inspect_dir(const char *path, const inspect_opts *o, FILE *out);

/* Whether path names a directory (following links). */
bool inspect_is_dir(const char *path);

/* A dedup table's segment as queries see it (inspect_dedup.c): the rows its MANIFEST
 * marks as superseded (NULL: none) and the table's deleted column in the segment (-1:
 * none). Missing pieces (no MANIFEST beside the file, no schema.json) leave both empty.
 * Free with inspect_dedup_free. */
typedef struct inspect_dedup {
    dvec *superseded;
    int deleted_col;
} inspect_dedup;
void inspect_dedup_view(const char *seg_path, uint64_t seg_rows, const strata_schema *seg_schema,
                        inspect_dedup *out /* OUT */);
void inspect_dedup_free(inspect_dedup *v);
/* Rows of segment seg_id that m marks as superseded (0 when none or unreadable). */
uint64_t inspect_manifest_superseded(const manifest *m, uint64_t seg_id, uint64_t seg_rows);

/* Writes s[0..n) to out as a JSON string, quotes included. */
void inspect_json_string(FILE *out, const char *s, size_t n);

#endif
