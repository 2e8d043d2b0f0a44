/*
 * error.c — filling strata_err messages. See error.h for the contract.
 */
#include "engine/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int strata_err_set(strata_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void strata_err_prefix(strata_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable: the message is for people, and the tail is the least
     * important part. */
    size_t n = strnlen(prefix, sizeof prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t oldn = strnlen(old, room);
    memcpy(err->msg + n + 2, old, oldn);
    err->msg[n + 2 + oldn] = 0;
}

const char *strata_strerror(int code)
{
    switch (code) {
    case STRATA_OK: return "ok";
    case STRATA_EINVAL: return "invalid";
    case STRATA_ECORRUPT: return "corrupt";
    case STRATA_EVERSION: return "unsupported version";
    case STRATA_ENOMEM: return "out of memory";
    case STRATA_EIO: return "i/o error";
    case STRATA_ENOTFOUND: return "not found";
    case STRATA_EEXIST: return "exists";
    case STRATA_EFULL: return "memory budget exhausted";
    default: return code < 0 && code > -4096 ? strerror(-code) : "unknown error";
    }
}
