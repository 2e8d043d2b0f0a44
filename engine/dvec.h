/*
 * dvec.h — delete vectors: the rows of one source (a segment or a memtable) that newer
 * rows of the same key superseded (engine/dedup.h decides which).
 *
 * A dvec is immutable once made, so a reader holding one needs no lock: the writer makes a
 * new version for every change and swaps the pointer the source holds. Rows are kept as
 * chunks of 65,536 bits (8 KiB each, like roaring's containers); a new version shares every
 * chunk it did not touch with the old one (reference counted), so marking a few rows of a
 * 10M-row segment copies one or two chunks, not 1.2 MiB. NULL is the empty dvec for every
 * reader function.
 *
 * On disk (in the partition's MANIFEST, manifest.h) a dvec is a CRoaring bitmap in its
 * portable serialization: dvec_serialize / dvec_deserialize.
 *
 * Memory: every function that returns a dvec returns one reference the caller owns
 * (dvec_unref); dvec_ref adds one. Thread safety: any number of threads may read and
 * ref/unref the same dvec at once.
 */
#ifndef STRATA_DVEC_H
#define STRATA_DVEC_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/error.h"

typedef struct dvec dvec;

void dvec_ref(dvec *d);
void dvec_unref(dvec *d); /* NULL is fine */

/* Rows set. */
uint64_t dvec_count(const dvec *d);
bool dvec_test(const dvec *d, uint64_t row);
/* Clears mask[i] for every set row r0 + i, i < n. */
void dvec_mask(const dvec *d, uint64_t r0, uint32_t n, uint8_t *mask);
/* Calls fn(row, arg) for every set row in increasing order. */
void dvec_each(const dvec *d, void (*fn)(uint64_t row, void *arg), void *arg);

/* A new version: d (may be NULL) with rows[0..n) set too (rows below 2^32). Chunks d has
 * and no row touches are shared. NULL with err (STRATA_ENOMEM) on failure; with n == 0 a
 * new reference to d (may be NULL: then *out is NULL and 0 is returned). */
int dvec_with_rows(const dvec *d, const uint64_t *rows, uint64_t n, dvec **out /* OUT */,
                   strata_err *err);

/* Appends the portable roaring serialization of d's rows, except those in
 * skip[0..nskip) (sorted or not), to out. 0 or STRATA_ENOMEM. */
int dvec_serialize(const dvec *d, const uint64_t *skip, uint64_t nskip, bytebuf *out, strata_err *err);
/* Reads a dvec back; rows must be below max_rows. 0, or STRATA_ECORRUPT with err naming
 * what is wrong, or STRATA_ENOMEM. *out is NULL for an empty bitmap. */
int dvec_deserialize(const void *p, uint64_t len, uint64_t max_rows, dvec **out /* OUT */,
                     strata_err *err);

#endif
