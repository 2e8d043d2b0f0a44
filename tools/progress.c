/*
 * progress.c — terminal progress lines with rate and ETA. See progress.h.
 */
#include "tools/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "engine/clock.h"

/* Monotonic seconds. */
static double now_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

void progress_start(progress *p, const char *what, uint64_t total, const char *unit, bool quiet)
{
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->start = now_s();
    p->last_draw = 0;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->drawn = false;
}

static void human(double v, char *out, size_t cap)
{
    if (v >= 1e9)
        snprintf(out, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

static void draw(progress *p, double t)
{
    double el = t - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char d[32], tot[32], r[32], eta[32] = "";
    human((double)p->done, d, sizeof d);
    human((double)p->total, tot, sizeof tot);
    human(rate, r, sizeof r);
    if (p->total && rate > 0 && p->done < p->total)
        snprintf(eta, sizeof eta, ", ETA %.0fs", (double)(p->total - p->done) / rate);
    if (p->total)
        fprintf(stderr, "\r%s: %s/%s %s (%.0f%%), %s %s/s%s\033[K", p->what, d, tot, p->unit,
                100.0 * (double)p->done / (double)p->total, r, p->unit, eta);
    else
        fprintf(stderr, "\r%s: %s %s, %s %s/s\033[K", p->what, d, p->unit, r, p->unit);
    fflush(stderr);
    p->drawn = true;
    p->last_draw = t;
}

void progress_update(progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    double t = now_s();
    if (t - p->last_draw >= 0.25)
        draw(p, t);
}

void progress_clear(progress *p)
{
    if (p->enabled && p->drawn) {
        fprintf(stderr, "\r\033[K");
        p->drawn = false;
    }
}

void progress_finish(progress *p)
{
    if (!p->enabled)
        return;
    draw(p, now_s());
    fputc('\n', stderr);
}
