/*
 * kafka_consumer.c — what the files of a Kafka consumer share (kafka_consumer.h): its
 * partition table, grown on demand; its degraded state, a lasting problem /health reports;
 * and its log lines, through the registry's callback kept in the consumer.
 */
#include "ingest/kafka_consumer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kafka_consumer_log(kafka_consumer *c, const char *fmt, ...)
{
    if (!c->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->log(line);
}

kafka_part *kafka_consumer_part(kafka_consumer *c, int32_t kp)
{
    if (kp < 0 || kp > 1 << 20)
        return NULL;
    if (kp >= c->nparts) {
        int32_t n = kp + 1 > c->nparts * 2 ? kp + 1 : c->nparts * 2;
        kafka_part *np = realloc(c->parts, sizeof *np * (size_t)n);
        if (!np)
            return NULL;
        memset(np + c->nparts, 0, sizeof *np * (size_t)(n - c->nparts));
        for (int32_t i = c->nparts; i < n; i++) {
            np[i].pos = np[i].next = np[i].committed = -1;
            snprintf(np[i].source, sizeof np[i].source, "%s", c->source);
        }
        c->parts = np;
        c->nparts = n;
    }
    return &c->parts[kp];
}

void kafka_consumer_degrade(kafka_consumer *c, const char *fmt, ...)
{
    pthread_mutex_lock(&c->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->degraded, sizeof c->degraded, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&c->mu);
}
