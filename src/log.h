/*
 * log.h — the log of `strata serve` (and of `strata demo`, which runs it): one line on
 * stderr per event, stamped with the wall-clock time, "2024-01-31T13:45:00.123Z strata: ...".
 * Usage errors of a command are not log lines: they go to stderr unstamped (src/cli.h).
 */
#ifndef STRATA_SRC_LOG_H
#define STRATA_SRC_LOG_H

/* Writes one stamped line (a newline is added) to stderr. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_line("%s", msg): the callback server_opts.log and kafka_ingest_opts.log take. */
void log_message(const char *msg);

#endif
