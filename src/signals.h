/*
 * signals.h — how the commands that run until stopped (serve, demo, broker) take SIGINT and
 * SIGTERM: blocked in every thread, and waited for synchronously by the main thread
 * (sigwait / sigtimedwait on the set), so no handler runs inside librdkafka's or the HTTP
 * server's threads and the main loop decides what a stop does.
 */
#ifndef STRATA_SRC_SIGNALS_H
#define STRATA_SRC_SIGNALS_H

#include <signal.h>

/* Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts
 * afterwards: call it before any thread starts. *set gets the two, for sigwait. */
void signals_block_stop(sigset_t *set /* OUT */);

#endif
