/*
 * reply.c — how every endpoint answers (declared in api.h): text or JSON bodies with their
 * content type and extra headers, the {"error": ...} body with its final newline, the
 * status for an engine error code; each answer counted by status class for /metrics.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "http/query_answer.h"

/* Sends text (taken over) with its content type and the extra headers (NULL, or name,
 * value, ..., NULL). */
enum MHD_Result reply_text_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                char *text, size_t len, const char *ctype,
                                const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    for (int i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    if (atomic_load(&s->stopping) && !MHD_get_response_header(r, "Connection"))
        MHD_add_response_header(r, "Connection", "close"); /* no next request on it: we stop */
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&s->status_count[status / 100], 1);
    return ok;
}

enum MHD_Result reply_static(strata_server *s, struct MHD_Connection *c, unsigned status,
                             const void *data, size_t len, const char *ctype,
                             const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    for (int i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&s->status_count[status / 100], 1);
    return ok;
}

enum MHD_Result reply_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 char *text, size_t len, const char *ctype)
{
    return reply_text_with(s, c, status, text, len, ctype, NULL);
}

/* reply_json_text with extra headers (name, value, ..., NULL). */
static enum MHD_Result send_json_text_with(strata_server *s, struct MHD_Connection *c,
                                           unsigned status, char *text, size_t len,
                                           const char *const *headers)
{
    char *nl = realloc(text, len + 2);
    if (nl) {
        text = nl;
        text[len++] = '\n';
        text[len] = 0;
    }
    return reply_text_with(s, c, status, text, len, "application/json", headers);
}

enum MHD_Result reply_json_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                      char *text, size_t len)
{
    return send_json_text_with(s, c, status, text, len, NULL);
}

enum MHD_Result reply_json(strata_server *s, struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_json_text_with(s, c, status, text, strlen(text), NULL);
}

enum MHD_Result reply_json_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                json_t *j, const char *const *headers)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return reply_error_with(s, c, 503, headers, "out of memory writing the answer");
    return send_json_text_with(s, c, status, text, strlen(text), headers);
}

static enum MHD_Result send_error_v(strata_server *s, struct MHD_Connection *c, unsigned status,
                                    const char *const *headers, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len;
    char *body = query_answer_error(msg, &len);
    if (!body)
        return MHD_NO;
    return send_json_text_with(s, c, status, body, len, headers);
}

enum MHD_Result reply_error(strata_server *s, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(s, c, status, NULL, fmt, ap);
    va_end(ap);
    return r;
}

enum MHD_Result reply_error_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *const *headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(s, c, status, headers, fmt, ap);
    va_end(ap);
    return r;
}

unsigned reply_status_of(int code)
{
    switch (code) {
    case STRATA_EINVAL: return 400;
    case STRATA_ENOTFOUND: return 404;
    case STRATA_EEXIST: return 409;
    case STRATA_EFULL: return 422;
    case STRATA_ENOMEM: return 503;
    default: return 500;
    }
}
