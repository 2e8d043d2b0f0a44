/*
 * cmd_inspect.c — `strata inspect PATH`: reads a segment file or a directory of them offline
 * and reports (tools/inspect.h), read-only and scriptable, like LMDB's mdb_stat.
 * Exit status: 0 sound, 1 damage found or an error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/cli.h"
#include "src/commands.h"
#include "tools/inspect.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata inspect PATH [--verify] [--json] [--rows N [--all-rows]] [--quiet]\n\n"
            "PATH is a segment file (*.seg) or a directory: a data directory, a table\n"
            "directory, a partition directory or a rollup tier directory (rollup_1m). A\n"
            "table's listing holds its rollup tiers' segments too (partition rollup_1m/2024-01),\n"
            "and a tier segment's rows show what each sketch says.\n\n"
            "  --verify   check every checksum and decode every block; exit 1 on damage\n"
            "  --json     print the summary as JSON\n"
            "  --rows N   print the first N rows of a segment as JSON lines (with --json: in\n"
            "             the summary, as \"first_rows\"); in a table with a dedup_key, the rows\n"
            "             queries see: older versions its MANIFEST marks and deletions are\n"
            "             left out (counted on stderr)\n"
            "  --all-rows with --rows: every stored row, older versions and deletions too\n"
            "  --quiet    no progress output\n"
            "  --help     this text\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"verify", no_argument, 0, 'v'}, {"json", no_argument, 0, 'j'},
        {"rows", required_argument, 0, 'r'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},   {"all-rows", no_argument, 0, 'a'}, {0, 0, 0, 0},
    };
    inspect_opts o = {.rows = -1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vjr:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'v': o.verify = true; break;
        case 'j': o.json = true; break;
        case 'q': o.quiet = true; break;
        case 'a': o.all_rows = true; break;
        case 'r': {
            char *end;
            errno = 0;
            o.rows = strtoll(optarg, &end, 10);
            if (errno || *end || o.rows < 0) {
                fprintf(stderr, "strata inspect: --rows takes a non-negative number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':': return cli_bad_usage("inspect", "%s needs a value", argv[optind - 1]);
        default: return cli_bad_usage("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (o.all_rows && o.rows < 0)
        return cli_bad_usage("inspect", "--all-rows goes with --rows N (it shows every stored row)");
    const char *path = argv[optind];
    if (inspect_is_dir(path)) {
        if (o.rows >= 0) {
            fprintf(stderr, "strata inspect: --rows needs a segment file, %s is a directory\n", path);
            return 2;
        }
        return inspect_dir(path, &o, stdout);
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "strata inspect: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return inspect_segment(path, &o, stdout);
}
