/*
 * inspect_dedup.c — what `strata inspect` needs to show a dedup table's segments as
 * queries see them (engine/dedup.h): the rows of a segment that newer versions of their
 * key replaced, from the delete vector its partition's MANIFEST keeps for it, and the
 * table's `deleted` column, from the table's schema.json two directories up.
 *
 * A segment file is named by its id (manifest.h: 16 hex digits + ".seg"); a file that is
 * not in a table's layout (copied elsewhere, no MANIFEST beside it) has no such view and
 * is shown as it is.
 */
#include "tools/inspect.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dvec.h"
#include "engine/manifest.h"
#include "engine/schema_json.h"

void inspect_dedup_view(const char *seg_path, uint64_t seg_rows, const strata_schema *seg_schema,
                        inspect_dedup *out)
{
    memset(out, 0, sizeof *out);
    out->deleted_col = -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", seg_path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : seg_path;
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    char *end;
    uint64_t id = strtoull(name, &end, 16);
    if (end != name + 16 || strcmp(end, ".seg") != 0)
        return;
    manifest m;
    if (manifest_read(dir, &m, NULL) != 0)
        return;
    const manifest_dv *d = manifest_get_dv(&m, id);
    if (d)
        dvec_deserialize(d->data, d->len, seg_rows, &out->superseded, NULL);
    manifest_free(&m);
    char file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%.4000s/../../%s", dir, SCHEMA_JSON_FILE);
    strata_schema *sc = malloc(sizeof *sc);
    if (sc && schema_json_parse_file(file, sc, NULL) == 0 && sc->ndedup > 0 && sc->deleted_col >= 0) {
        const char *col = sc->cols[sc->deleted_col].name;
        for (int c = 0; c < seg_schema->ncols; c++)
            if (strcmp(seg_schema->cols[c].name, col) == 0 && seg_schema->cols[c].type == STRATA_BOOL)
                out->deleted_col = c;
    }
    free(sc);
}

void inspect_dedup_free(inspect_dedup *v)
{
    dvec_unref(v->superseded);
    v->superseded = NULL;
}

uint64_t inspect_manifest_superseded(const manifest *m, uint64_t seg_id, uint64_t seg_rows)
{
    const manifest_dv *d = manifest_get_dv(m, seg_id);
    dvec *dv = NULL;
    if (!d || dvec_deserialize(d->data, d->len, seg_rows, &dv, NULL) != 0)
        return 0;
    uint64_t n = dvec_count(dv);
    dvec_unref(dv);
    return n;
}
