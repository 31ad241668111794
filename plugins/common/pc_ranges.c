/* plugins/common: parallel ranged download handed out in order (pc_ranges.h).
 * Slot i % nslots holds range i; a worker takes the next range only while it
 * is fewer than nslots ahead of the one the reader is in, so a slot is free
 * again (read to its end) before it is reused. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_ranges.h"

#define PC_RANGES_MAX_THREADS 64

typedef struct slot {
    pc_range_buf b;
    uint64_t index;
    int state; /* 0 free, 1 being fetched, 2 ready */
} slot;

struct pc_ranges {
    pc_curl_pool *pool;
    pc_ranges_fetch fetch;
    void *ud;
    uint64_t start, end, chunk, nchunks;
    uint64_t cidx;     /* the range the reader is in */
    size_t cpos;       /* ... and where in it */
    uint64_t next_idx; /* the next range a worker takes */
    slot *slots;
    int nslots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int failed, fail_code, stop;
    char err[1400];
    pthread_t threads[PC_RANGES_MAX_THREADS];
    int nthreads;
};

size_t pc_range_buf_add(void *ud, const char *p, size_t n)
{
    pc_range_buf *b = ud;
    if (b->len + n > b->want) {
        b->too_much = 1;
        return 0;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return n;
}

void pc_range_buf_reset(void *ud)
{
    pc_range_buf *b = ud;
    b->len = 0;
    b->too_much = 0;
}

static void ranges_fail(pc_ranges *r, int code, const char *msg)
{
    /* lock held: the first failure is the one the reader gets */
    if (!r->failed) {
        r->failed = 1;
        r->fail_code = code;
        snprintf(r->err, sizeof r->err, "%s", msg);
    }
}

static void *worker(void *arg)
{
    pc_ranges *r = arg;
    CURL *easy = pc_curl_get(r->pool);
    char err[1400];

    pthread_mutex_lock(&r->mu);
    if (!easy)
        ranges_fail(r, ARCA_ENOMEM, "cannot create a curl handle");
    for (;;) {
        while (!r->stop && !r->failed && r->next_idx < r->nchunks && r->next_idx >= r->cidx + (uint64_t)r->nslots)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop || r->failed || r->next_idx >= r->nchunks)
            break;
        uint64_t idx = r->next_idx++;
        slot *s = &r->slots[idx % (uint64_t)r->nslots];
        uint64_t off = r->start + idx * r->chunk;
        s->state = 1;
        s->index = idx;
        s->b.len = 0;
        s->b.too_much = 0;
        s->b.want = (size_t)((r->end - off) < r->chunk ? r->end - off : r->chunk);
        pthread_mutex_unlock(&r->mu);

        err[0] = 0;
        int rc = r->fetch(r->ud, easy, off, &s->b, err, sizeof err);

        pthread_mutex_lock(&r->mu);
        if (rc)
            ranges_fail(r, rc, err[0] ? err : "a range could not be fetched");
        else
            s->state = 2;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    pc_curl_put(r->pool, easy);
    return NULL;
}

int pc_ranges_start(pc_curl_pool *pool, uint64_t start, uint64_t end, uint64_t chunk, int nslots,
                    pc_ranges_fetch fetch, void *ud, pc_ranges **out)
{
    *out = NULL;
    pc_ranges *r = calloc(1, sizeof *r);
    if (!r)
        return ARCA_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->pool = pool;
    r->fetch = fetch;
    r->ud = ud;
    r->start = start;
    r->end = end;
    r->chunk = chunk ? chunk : 1;
    r->nchunks = (end - start + r->chunk - 1) / r->chunk;
    r->nslots = nslots < 1 ? 1 : nslots > PC_RANGES_MAX_THREADS ? PC_RANGES_MAX_THREADS : nslots;
    if ((uint64_t)r->nslots > r->nchunks)
        r->nslots = (int)(r->nchunks ? r->nchunks : 1);
    size_t want = (size_t)((end - start) < r->chunk ? end - start : r->chunk);
    if (!(r->slots = calloc((size_t)r->nslots, sizeof *r->slots))) {
        pc_ranges_free(r);
        return ARCA_ENOMEM;
    }
    for (int i = 0; i < r->nslots; i++)
        if (!(r->slots[i].b.buf = malloc(want ? want : 1))) {
            pc_ranges_free(r);
            return ARCA_ENOMEM;
        }
    for (int i = 0; i < r->nslots && r->nchunks; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r))
            break;
        r->nthreads++;
    }
    if (r->nchunks && !r->nthreads) {
        pc_ranges_free(r);
        return ARCA_EFAIL;
    }
    *out = r;
    return ARCA_OK;
}

int pc_ranges_read(pc_ranges *r, void *buf, size_t cap, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    if (r->cidx >= r->nchunks || !cap)
        return ARCA_OK;
    slot *s = &r->slots[r->cidx % (uint64_t)r->nslots];
    pthread_mutex_lock(&r->mu);
    while (!r->failed && !(s->state == 2 && s->index == r->cidx))
        pthread_cond_wait(&r->cv, &r->mu);
    if (r->failed) {
        int rc = r->fail_code;
        snprintf(err, errlen, "%s", r->err);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    pthread_mutex_unlock(&r->mu);
    size_t n = s->b.len - r->cpos;
    if (n > cap)
        n = cap;
    memcpy(buf, s->b.buf + r->cpos, n);
    r->cpos += n;
    *got = n;
    if (r->cpos == s->b.len) {
        pthread_mutex_lock(&r->mu);
        s->state = 0;
        r->cidx++;
        r->cpos = 0;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return ARCA_OK;
}

void pc_ranges_free(pc_ranges *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
    for (int i = 0; r->slots && i < r->nslots; i++)
        free(r->slots[i].b.buf);
    free(r->slots);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
