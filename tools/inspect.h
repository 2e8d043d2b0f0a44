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
#include <stdio.h>

typedef struct inspect_opts {
    bool verify;    /* check every checksum and decode every block */
    bool json;      /* the report as JSON */
    long long rows; /* a segment: print its first `rows` rows; -1 for none */
    bool quiet;     /* a directory: no progress line on stderr */
} inspect_opts;

/* Reports on the segment file at path. */
int inspect_segment(const char *path, const inspect_opts *o, FILE *out);

/* Reports on the directory at path (o->rows is not used). */
int inspect_dir(const char *path, const inspect_opts *o, FILE *out);

/* Whether path names a directory (following links). */
bool inspect_is_dir(const char *path);

/* Writes s[0..n) to out as a JSON string, quotes included. */
void inspect_json_string(FILE *out, const char *s, size_t n);

#endif
