/* gcs plugin: the get side. Without a length, the object's metadata gives its
 * size and generation; the range is then fetched as ranged GETs (alt=media,
 * Range) of chunk_size bytes by up to upload_concurrency threads, at most that
 * many ranges ahead of the reader, each pinned to the generation
 * (ifGenerationMatch) so that a replaced object is noticed, not mixed. A range
 * that fails is fetched again on its own: a reset costs one range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs.h"
#include "pc_error.h"

typedef struct gcs_slot {
    char *buf;
    size_t len, want;
    uint64_t index;
    int state; /* 0 free, 1 being fetched, 2 ready */
} gcs_slot;

typedef struct gcs_get {
    gcs_inst *in;
    char *name, *key;
    char generation[32];
    uint64_t start, end, chunk, nchunks, cidx, next_idx;
    size_t cpos;
    gcs_slot *slots;
    int nslots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int failed, fail_code, stop;
    char err[1400];
    pthread_t threads[64];
    int nthreads;
} gcs_get;

typedef struct range_sink {
    gcs_slot *slot;
} range_sink;

static size_t sink_range(void *ud, const char *p, size_t n)
{
    gcs_slot *s = ((range_sink *)ud)->slot;
    if (s->len + n > s->want)
        return 0;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return n;
}

static void sink_reset(void *ud)
{
    ((range_sink *)ud)->slot->len = 0;
}

static int fetch_range(gcs_get *g, CURL *easy, gcs_slot *slot, uint64_t off, char *err, size_t errlen)
{
    char range[64], gen[32], q[96], what[1200];
    range_sink sk = {slot};
    gcs_response rs;

    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + slot->want - 1));
    pthread_mutex_lock(&g->mu);
    snprintf(gen, sizeof gen, "%s", g->generation);
    pthread_mutex_unlock(&g->mu);
    snprintf(q, sizeof q, "alt=media%s%s", gen[0] ? "&ifGenerationMatch=" : "", gen);
    char *url = gcs_object_url(g->in, g->key, q);
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return ARCA_ENOMEM;
    }
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s' (%s)", g->in->cfg->bucket, g->key, range);
    gcs_kv hd[1] = {{"Range", range}};
    gcs_request rq = {.method = "GET", .url = url, .headers = hd, .nheaders = 1, .sink = sink_range,
                      .reset = sink_reset, .ud = &sk, .expect = slot->want, .what = what};
    int rc = gcs_do(g->in, easy, &rq, &rs, err, errlen);
    free(url);
    if (rc && rs.status == 416) {
        snprintf(err, errlen, "GET %s: the object is shorter than that range", what);
        rc = ARCA_EINTEGRITY;
    } else if (rc && (rs.status == 412 || (rs.status == 404 && gen[0]))) {
        snprintf(err, errlen, "'%s' was replaced or removed while it was being read (generation %s)", g->name, gen);
        rc = ARCA_EINTEGRITY;
    }
    if (!rc && rs.status != 206 && !(rs.status == 200 && off == 0 && slot->want == g->end)) {
        snprintf(err, errlen, "GET %s: HTTP %ld instead of 206: the server ignored the range", what, rs.status);
        rc = ARCA_EFAIL;
    }
    if (!rc && slot->len != slot->want) {
        snprintf(err, errlen, "GET %s: %zu bytes instead of %zu: the object is shorter than it was", what, slot->len,
                 slot->want);
        rc = ARCA_EINTEGRITY;
    }
    if (!rc && rs.generation[0]) {
        /* without a metadata look the first range tells the generation; the others must agree */
        pthread_mutex_lock(&g->mu);
        if (!g->generation[0])
            snprintf(g->generation, sizeof g->generation, "%s", rs.generation);
        else if (strcmp(g->generation, rs.generation)) {
            snprintf(err, errlen, "'%s' was replaced while it was being read (its generation changed)", g->name);
            rc = ARCA_EINTEGRITY;
        }
        pthread_mutex_unlock(&g->mu);
    }
    gcs_response_free(&rs);
    return rc;
}

static void *get_worker(void *arg)
{
    gcs_get *g = arg;
    CURL *easy = pc_curl_get(&g->in->pool);
    char err[1400];

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
        gcs_slot *slot = &g->slots[idx % (uint64_t)g->nslots];
        uint64_t off = g->start + idx * g->chunk;
        slot->state = 1;
        slot->index = idx;
        slot->len = 0;
        slot->want = (size_t)((g->end - off) < g->chunk ? g->end - off : g->chunk);
        pthread_mutex_unlock(&g->mu);

        int rc = fetch_range(g, easy, slot, off, err, sizeof err);

        pthread_mutex_lock(&g->mu);
        if (rc && !g->failed) {
            g->failed = 1;
            g->fail_code = rc;
            snprintf(g->err, sizeof g->err, "%s", err);
        } else if (!rc) {
            slot->state = 2;
        }
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    pc_curl_put(&g->in->pool, easy);
    return NULL;
}

static void get_free(gcs_get *g)
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

/* Size and generation from the object's metadata; ARCA_ENOENT (with a message) if missing. */
static int look(gcs_get *g, uint64_t *size)
{
    const arca_host *h = g->in->host;
    char err[1400];
    json_t *o = NULL;
    int rc = gcs_stat(g->in, g->key, &o, err, sizeof err);
    if (rc == ARCA_ENOENT)
        return h->error(h, ARCA_ENOENT, "'%s' does not exist (gs://%s/%s)", g->name, g->in->cfg->bucket, g->key);
    if (rc)
        return h->error(h, rc, "cannot read '%s': %s", g->name, err);
    *size = gcs_json_u64(o, "size");
    snprintf(g->generation, sizeof g->generation, "%llu", (unsigned long long)gcs_json_u64(o, "generation"));
    if (!strcmp(g->generation, "0"))
        g->generation[0] = 0;
    json_decref(o);
    return 0;
}

static int start_workers(gcs_get *g)
{
    g->nslots = g->in->concurrency;
    if ((uint64_t)g->nslots > g->nchunks)
        g->nslots = (int)(g->nchunks ? g->nchunks : 1);
    if (!(g->slots = calloc((size_t)g->nslots, sizeof *g->slots)))
        return ARCA_ENOMEM;
    for (int i = 0; i < g->nslots; i++) {
        size_t want = (size_t)((g->end - g->start) < g->chunk ? g->end - g->start : g->chunk);
        if (!(g->slots[i].buf = malloc(want ? want : 1)))
            return ARCA_ENOMEM;
    }
    for (int i = 0; i < g->nslots && g->nchunks; i++) {
        if (pthread_create(&g->threads[i], NULL, get_worker, g))
            break;
        g->nthreads++;
    }
    return g->nchunks && !g->nthreads ? ARCA_EFAIL : 0;
}

int gcs_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **out)
{
    gcs_inst *in = inst;
    const arca_host *h = in->host;
    gcs_get *g;
    uint64_t size = 0;
    int rc;

    *out = NULL;
    if ((rc = gcs_check_name(in, name)))
        return rc;
    if (length && offset + length < offset)
        return h->error(h, ARCA_ECONFIG, "read range of '%s' overflows", name);
    if (!(g = calloc(1, sizeof *g)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->in = in;
    g->name = strdup(name);
    g->key = gcs_key_of(in, name);
    if (!g->name || !g->key) {
        get_free(g);
        return h->error(h, ARCA_ENOMEM, "out of memory");
    }
    /* a range of known length needs no metadata look (the listing gave the size) */
    if (length)
        size = offset + length;
    else if ((rc = look(g, &size))) {
        get_free(g);
        return rc;
    }
    if (offset > size) {
        rc = h->error(h, ARCA_EINTEGRITY, "'%s' has %llu bytes: the range %llu+%llu is past its end", name,
                      (unsigned long long)size, (unsigned long long)offset, (unsigned long long)length);
        get_free(g);
        return rc;
    }
    g->start = offset;
    g->end = length ? offset + length : size;
    g->chunk = in->chunk;
    g->nchunks = (g->end - g->start + g->chunk - 1) / g->chunk;
    if ((rc = start_workers(g))) {
        get_free(g);
        return h->error(h, rc, rc == ARCA_ENOMEM ? "out of memory" : "cannot start download threads");
    }
    *out = g;
    return 0;
}

int gcs_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    gcs_get *g = get;
    *got = 0;
    if (g->cidx >= g->nchunks || !cap)
        return 0;
    gcs_slot *slot = &g->slots[g->cidx % (uint64_t)g->nslots];
    pthread_mutex_lock(&g->mu);
    while (!g->failed && !(slot->state == 2 && slot->index == g->cidx))
        pthread_cond_wait(&g->cv, &g->mu);
    if (g->failed) {
        pthread_mutex_unlock(&g->mu);
        return pc_handle_error(g->in->host, g, g->fail_code, "cannot read '%s': %s", g->name, g->err);
    }
    pthread_mutex_unlock(&g->mu);
    size_t n = slot->len - g->cpos;
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

void gcs_get_close(void *get)
{
    get_free(get);
}
