/* Progress line on stderr: bytes, rate and ETA, only when stderr is a TTY. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "engine.h"

int g_quiet;
static pthread_mutex_t pg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int on;
    const char *what;
    uint64_t bytes, hint_done, hint_total;
    double t0, last;
} pg;

static void fmt_bytes(double b, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, n, "%.1f %s", b, u[i]);
}

static void draw(int final)
{
    double t = now_mono(), el = t - pg.t0;
    if (!final && t - pg.last < 0.25)
        return;
    pg.last = t;
    char b[32], r[32], eta[32] = "";
    fmt_bytes((double)pg.bytes, b, sizeof b);
    fmt_bytes(el > 0 ? pg.bytes / el : 0, r, sizeof r);
    if (pg.hint_total && pg.hint_done && pg.hint_done <= pg.hint_total && el > 1) {
        double left = el * ((double)pg.hint_total / (double)pg.hint_done - 1);
        snprintf(eta, sizeof eta, ", ETA %dm%02ds", (int)left / 60, (int)left % 60);
    }
    fprintf(stderr, "\r\033[K%s: %s, %s/s%s", pg.what, b, r, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

void progress_start(const char *what)
{
    pthread_mutex_lock(&pg_mu);
    pg.on = !g_quiet && isatty(2);
    pg.what = what;
    pg.bytes = pg.hint_done = pg.hint_total = 0;
    pg.t0 = pg.last = now_mono();
    pthread_mutex_unlock(&pg_mu);
}

void progress_add(uint64_t bytes)
{
    pthread_mutex_lock(&pg_mu);
    pg.bytes += bytes;
    if (pg.on)
        draw(0);
    pthread_mutex_unlock(&pg_mu);
}

void engine_progress_hint(uint64_t done, uint64_t total)
{
    pthread_mutex_lock(&pg_mu);
    pg.hint_done = done;
    pg.hint_total = total;
    pthread_mutex_unlock(&pg_mu);
}

void progress_end(void)
{
    pthread_mutex_lock(&pg_mu);
    if (pg.on)
        draw(1);
    pg.on = 0;
    pthread_mutex_unlock(&pg_mu);
}
