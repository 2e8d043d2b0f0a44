/*
 * error.h — error codes and the per-call error message every engine function fills.
 *
 * Functions return 0 on success or a negative STRATA_E* code (or -errno for system
 * failures). When they fail and the caller passed a non-NULL strata_err, a one-line
 * human message is written into it, naming the file, column or field at fault. Nothing
 * inside the engine prints; the caller decides what to show (HTTP answer, log, stderr).
 */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include <stddef.h>

enum {
    STRATA_OK = 0,
    STRATA_EINVAL = -1000,   /* bad argument or bad input (schema, event, query) */
    STRATA_ECORRUPT = -1001, /* a file failed a checksum, magic or bounds check */
    STRATA_EVERSION = -1002, /* a file has a format version this build does not read */
    STRATA_ENOMEM = -1003,   /* allocation failed */
    STRATA_EIO = -1004,      /* read/write/fsync failure (errno in the message) */
    STRATA_ENOTFOUND = -1005,
    STRATA_EEXIST = -1006,
    STRATA_EFULL = -1007,    /* a memory budget is exhausted; flush and retry */
};

typedef struct strata_err {
    int code;
    char msg[512];
} strata_err;

/* Sets err->code and err->msg (printf-style) when err is non-NULL; returns code so
 * callers can write `return strata_err_set(err, STRATA_EINVAL, "...")`. */
int strata_err_set(strata_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (used to add the file name on the way up). */
void strata_err_prefix(strata_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Static name of an error code, e.g. "corrupt". Never NULL. */
const char *strata_strerror(int code);

#endif
