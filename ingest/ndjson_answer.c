/*
 * ndjson_answer.c — the per-request answer of NDJSON ingest (format in ndjson_answer.h).
 *
 * Unknown field names are kept as they will be shown (cut to NDJSON_ANSWER_NAME_SHOWN
 * bytes between UTF-8 characters, "..." added), in a small array searched linearly: at
 * most NDJSON_ANSWER_MAX_NAMES entries, compared by length first. Once a name did not fit,
 * the list is known to be cut and later names are not looked at, so a body whose every
 * line brings new names costs no more than one that repeats a few.
 */
#include "ingest/ndjson_answer.h"

#include <stdlib.h>
#include <string.h>

/* Length of name[0..len) as shown: at most NDJSON_ANSWER_NAME_SHOWN bytes, cut before a
 * UTF-8 continuation byte (names are valid UTF-8). */
static size_t shown_len(const char *name, size_t len)
{
    if (len <= NDJSON_ANSWER_NAME_SHOWN)
        return len;
    size_t n = NDJSON_ANSWER_NAME_SHOWN;
    while (n > 0 && ((uint8_t)name[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void note_unknown_key(void *ctx, const char *name, size_t len)
{
    ndjson_answer *a = ctx;
    a->line_unknown_keys++;
    if (a->names_truncated)
        return;
    char shown[NDJSON_ANSWER_NAME_SHOWN + 4];
    size_t n = shown_len(name, len);
    memcpy(shown, name, n);
    if (n < len) {
        memcpy(shown + n, "...", 3);
        n += 3;
    }
    shown[n] = 0;
    for (int k = 0; k < a->nnames; k++)
        if (a->name_len[k] == n && memcmp(a->names[k], shown, n) == 0)
            return;
    if (a->nnames == NDJSON_ANSWER_MAX_NAMES) {
        a->names_truncated = true;
        return;
    }
    memcpy(a->names[a->nnames], shown, n + 1);
    a->name_len[a->nnames++] = (uint8_t)n;
}

int ndjson_answer_init(ndjson_answer *a, strata_err *err)
{
    memset(a, 0, sizeof *a);
    if (!(a->errors = json_array()))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    a->sink.key = note_unknown_key;
    a->sink.ctx = a;
    return 0;
}

void ndjson_answer_free(ndjson_answer *a)
{
    json_decref(a->errors);
    a->errors = NULL;
}

void ndjson_answer_blank(ndjson_answer *a)
{
    a->blank++;
}

void ndjson_answer_reject(ndjson_answer *a, uint64_t line, const char *msg)
{
    a->rejected++;
    if (json_array_size(a->errors) >= NDJSON_ANSWER_MAX_ERRORS)
        return;
    json_t *text = json_string(msg);
    if (!text) {
        /* A message quoting a cut multi-byte character is not UTF-8: show '?' for every
         * byte outside ASCII rather than lose the entry. */
        char ascii[sizeof ((strata_err *)0)->msg];
        size_t n = 0;
        for (; msg[n] && n + 1 < sizeof ascii; n++)
            ascii[n] = (uint8_t)msg[n] < 0x80 ? msg[n] : '?';
        ascii[n] = 0;
        text = json_string(ascii);
    }
    json_array_append_new(a->errors, json_pack("{s:I, s:o}", "line", (json_int_t)line, "error", text));
}

const event_unknown_sink *ndjson_answer_sink(ndjson_answer *a)
{
    return &a->sink;
}

void ndjson_answer_landed(ndjson_answer *a, uint64_t line)
{
    if (!a->line_unknown_keys)
        return;
    a->line_unknown_keys = 0;
    if (a->unknown_lines++ == 0)
        a->unknown_first_line = line;
}

static int compare_names(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

json_t *ndjson_answer_json(const ndjson_answer *a, uint64_t ingested, const strata_schema *sc)
{
    const char *sorted[NDJSON_ANSWER_MAX_NAMES];
    for (int k = 0; k < a->nnames; k++)
        sorted[k] = a->names[k];
    qsort(sorted, (size_t)a->nnames, sizeof sorted[0], compare_names);
    json_t *names = json_array(), *near = json_object();
    for (int k = 0; names && near && k < a->nnames; k++) {
        const char *col = event_json_likely_column(sc, sorted[k]);
        if (json_array_append_new(names, json_string(sorted[k])) != 0 ||
            (col && json_object_set_new(near, sorted[k], json_string(col)) != 0)) {
            json_decref(names);
            names = NULL;
        }
    }
    json_t *unknown = json_pack("{s:I, s:o, s:o, s:b, s:o}", "lines", (json_int_t)a->unknown_lines,
                                "first_line",
                                a->unknown_lines ? json_integer((json_int_t)a->unknown_first_line)
                                                 : json_null(),
                                "names", names, "names_truncated", a->names_truncated,
                                "did_you_mean", near);
    return json_pack("{s:I, s:I, s:I, s:O, s:b, s:o}", "ingested", (json_int_t)ingested, "rejected",
                     (json_int_t)a->rejected, "blank", (json_int_t)a->blank, "errors", a->errors,
                     "errors_truncated", a->rejected > json_array_size(a->errors), "unknown_fields",
                     unknown);
}
