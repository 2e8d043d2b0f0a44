/*
 * fuzz_schema_json.c — libFuzzer target for the table schema JSON parser: any bytes must
 * give either a schema that passes schema_validate and survives dump -> parse unchanged,
 * or an error with a message; never a crash, a leak or undefined behaviour.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/schema_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    strata_schema *s = malloc(sizeof *s), *again = malloc(sizeof *again);
    strata_err err = {0};
    if (!s || !again)
        abort();
    if (schema_json_parse((const char *)data, size, s, &err) == 0) {
        if (schema_validate(s, &err) != 0)
            abort(); /* parse promised a valid schema */
        char *text = schema_json_dump(s);
        if (!text || schema_json_parse(text, strlen(text), again, &err) != 0)
            abort(); /* the canonical dump must parse back */
        char *text2 = schema_json_dump(again);
        if (!text2 || strcmp(text, text2) != 0)
            abort(); /* ... to the same schema */
        free(text);
        free(text2);
    } else if (err.msg[0] == 0) {
        abort(); /* every error says why */
    }
    free(s);
    free(again);
    return 0;
}
