/* s3 plugin: the get side. A HEAD gives the size and ETag; the requested
 * range is then fetched as ranged GETs of part_size bytes by up to
 * `upload_concurrency` threads, at most that many ranges ahead of the reader,
 * each pinned to the ETag (If-Match) so that a replaced object is noticed.
 * A range that fails is fetched again on its own: a reset mid-download costs
 * one range, not the whole archive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_error.h"
#include "s3.h"

typedef struct s3_slot {
    char *buf;
    size_t len, want;
    uint64_t index;
    int state; /* 0 free, 1 being fetched, 2 ready */
} s3_slot;

typedef struct s3_get {
    s3_inst *in;
    char *name, *key;
    char etag[160];
    uint64_t start, end, chunk, nchunks;
    uint64_t cidx; /* the range the reader is in */
    size_t cpos;
    uint64_t next_idx; /* the next range a worker takes */
    s3_slot *slots;
    int nslots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int failed, fail_code, stop;
    char err[1200];
    pthread_t threads[64];
    int nthreads;
} s3_get;

typedef struct range_sink {
    s3_slot *slot;
    int too_much;
} range_sink;

static size_t sink_range(void *ud, const char *p, size_t n)
{
    range_sink *rs = ud;
    s3_slot *s = rs->slot;
    if (s->len + n > s->want) {
        rs->too_much = 1;
        return 0;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return n;
}

static void sink_reset(void *ud)
{
    ((range_sink *)ud)->slot->len = 0;
}

static int fetch_range(s3_get *g, CURL *easy, s3_slot *slot, uint64_t off, char *err, size_t errlen)
{
    char range[64], etag[160];
    s3_kv hd[2];
    size_t nh = 0;
    s3_response rs;
    range_sink sk = {slot, 0};
    int rc;

    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + slot->want - 1));
    pthread_mutex_lock(&g->mu);
    snprintf(etag, sizeof etag, "%s", g->etag);
    pthread_mutex_unlock(&g->mu);
    hd[nh++] = (s3_kv){"if-match", etag};
    hd[nh++] = (s3_kv){"range", range};
    s3_request rq = {.method = "GET", .key = g->key, .headers = hd, .nheaders = etag[0] ? 2 : 1,
                     .sink = sink_range, .reset = sink_reset, .ud = &sk, .expect = slot->want};
    if (!etag[0])
        hd[0] = hd[1];
    rc = s3_do(g->in, easy, &rq, &rs, err, errlen);
    if (rc && rs.status == 416) {
        snprintf(err, errlen, "GET %s (%s): the object is shorter than that range", g->key, range);
        rc = ARCA_EINTEGRITY;
    }
    if (!rc && rs.status != 206 && !(rs.status == 200 && off == 0 && slot->want == g->end && g->start == 0)) {
        snprintf(err, errlen, "GET %s (%s): HTTP %ld instead of 206: the server ignored the range", g->key, range,
                 rs.status);
        rc = ARCA_EFAIL;
    }
    if (!rc && slot->len != slot->want) {
        snprintf(err, errlen, "GET %s (%s): %zu bytes instead of %zu: the object is shorter than it was", g->key,
                 range, slot->len, slot->want);
        rc = ARCA_EINTEGRITY;
    }
    if (rc && !strcmp(rs.code, "PreconditionFailed")) {
        snprintf(err, errlen, "'%s' was replaced while it was being read (its ETag changed)", g->key);
        rc = ARCA_EINTEGRITY;
    }
    if (!rc && rs.etag[0]) {
        /* without a HEAD the first range tells the ETag; every other range must agree */
        pthread_mutex_lock(&g->mu);
        if (!g->etag[0])
            snprintf(g->etag, sizeof g->etag, "%s", rs.etag);
        else if (strcmp(g->etag, rs.etag)) {
            snprintf(err, errlen, "'%s' was replaced while it was being read (its ETag changed)", g->key);
            rc = ARCA_EINTEGRITY;
        }
        pthread_mutex_unlock(&g->mu);
    }
    s3_response_free(&rs);
    return rc;
}

static void *get_worker(void *arg)
{
    s3_get *g = arg;
    CURL *easy = s3_easy_get(g->in);
    char err[1200];

    pthread_mutex_lock(&g->mu);
    if (!easy && !g->failed) {
        g->failed = 1;
        g->fail_code = ARCA_ENOMEM;
        snprintf(g->err, sizeof g->err, "cannot create a curl handle");
    }
    for (;;) {
        while (!g->stop && !g->failed && g->next_idx < g->nchunks && g->next_idx >= g->cidx + (uint64_t)g->nslots)
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->stop || g->failed || g->next_idx >= g->nchunks)
            break;
        uint64_t idx = g->next_idx++;
        s3_slot *slot = &g->slots[idx % (uint64_t)g->nslots];
        uint64_t off = g->start + idx * g->chunk;
        slot->state = 1;
        slot->index = idx;
        slot->len = 0;
        slot->want = (size_t)((g->end - off) < g->chunk ? g->end - off : g->chunk);
        pthread_mutex_unlock(&g->mu);

        int rc = slot->buf ? 0 : ARCA_ENOMEM;
        if (rc)
            snprintf(err, sizeof err, "out of memory");
        else
            rc = fetch_range(g, easy, slot, off, err, sizeof err);

        pthread_mutex_lock(&g->mu);
        if (rc) {
            if (!g->failed) {
                g->failed = 1;
                g->fail_code = rc;
                snprintf(g->err, sizeof g->err, "%s", err);
            }
        } else {
            slot->state = 2;
        }
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    s3_easy_put(g->in, easy);
    return NULL;
}

static void get_free(s3_get *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < g->nthreads; i++)
        pthread_join(g->threads[i], NULL);
    for (int i = 0; g->slots && i < g->nslots; i++)
        free(g->slots[i].buf);
    free(g->slots);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->name);
    free(g->key);
    free(g);
}

int s3_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **out)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    s3_get *g;
    uint64_t size = 0;
    char err[1200];
    int rc;

    *out = NULL;
    if ((rc = s3_check_name(in, name)))
        return rc;
    if (length && offset + length < offset)
        return h->error(h, ARCA_ECONFIG, "read range of '%s' overflows", name);
    if (!(g = calloc(1, sizeof *g)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->in = in;
    g->name = strdup(name);
    g->key = s3_key_of(in, name);
    if (!g->name || !g->key) {
        get_free(g);
        return h->error(h, ARCA_ENOMEM, "out of memory");
    }
    /* a range of known length needs no HEAD (the catalogue's list already gave
     * the size); a whole object does */
    rc = length ? 0 : s3_head(in, g->key, &size, g->etag, sizeof g->etag, err, sizeof err);
    if (length)
        size = offset + length;
    if (rc == ARCA_ENOENT) {
        char *url = s3_url_of(in, g->key);
        rc = h->error(h, ARCA_ENOENT, "'%s' does not exist (%s)", name, url ? url : g->key);
        free(url);
        get_free(g);
        return rc;
    }
    if (rc) {
        get_free(g);
        return h->error(h, rc, "cannot read '%s': %s", name, err);
    }
    if (offset > size || (length && offset + length > size)) {
        rc = h->error(h, ARCA_EINTEGRITY, "'%s' has %llu bytes: the range %llu+%llu is past its end", name,
                      (unsigned long long)size, (unsigned long long)offset, (unsigned long long)length);
        get_free(g);
        return rc;
    }
    g->start = offset;
    g->end = length ? offset + length : size;
    g->chunk = in->part_size;
    g->nchunks = (g->end - g->start + g->chunk - 1) / g->chunk;
    g->nslots = in->concurrency;
    if ((uint64_t)g->nslots > g->nchunks)
        g->nslots = (int)(g->nchunks ? g->nchunks : 1);
    if (!(g->slots = calloc((size_t)g->nslots, sizeof *g->slots))) {
        get_free(g);
        return h->error(h, ARCA_ENOMEM, "out of memory");
    }
    for (int i = 0; i < g->nslots; i++) {
        size_t want = (size_t)((g->end - g->start) < g->chunk ? g->end - g->start : g->chunk);
        if (!(g->slots[i].buf = malloc(want ? want : 1))) {
            get_free(g);
            return h->error(h, ARCA_ENOMEM, "out of memory");
        }
    }
    for (int i = 0; i < g->nslots && g->nchunks; i++) {
        if (pthread_create(&g->threads[i], NULL, get_worker, g))
            break;
        g->nthreads++;
    }
    if (g->nchunks && !g->nthreads) {
        get_free(g);
        return h->error(h, ARCA_EFAIL, "cannot start download threads");
    }
    *out = g;
    return 0;
}

int s3_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    s3_get *g = get;
    s3_slot *slot;
    size_t n;

    *got = 0;
    if (g->cidx >= g->nchunks || !cap)
        return 0;
    slot = &g->slots[g->cidx % (uint64_t)g->nslots];
    pthread_mutex_lock(&g->mu);
    while (!g->failed && !(slot->state == 2 && slot->index == g->cidx))
        pthread_cond_wait(&g->cv, &g->mu);
    if (g->failed) {
        pthread_mutex_unlock(&g->mu);
        /* a download worker's failure, on the handle it belongs to */
        return pc_handle_error(g->in->host, g, g->fail_code, "cannot read '%s': %s", g->name, g->err);
    }
    pthread_mutex_unlock(&g->mu);
    n = slot->len - g->cpos;
    if (n > cap)
        n = cap;
    memcpy(buf, slot->buf + g->cpos, n);
    g->cpos += n;
    *got = n;
    if (g->cpos == slot->len) {
        pthread_mutex_lock(&g->mu);
        slot->state = 0;
        g->cidx++;
        g->cpos = 0;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    return 0;
}

void s3_get_close(void *get)
{
    get_free(get);
}
