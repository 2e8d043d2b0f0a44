/*
 * signals.c — SIGINT and SIGTERM blocked for a synchronous wait. See signals.h.
 */
#include "src/signals.h"

#include <pthread.h>

void signals_block_stop(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}
