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
#include "pc_ranges.h"

typedef struct gcs_get {
    gcs_inst *in;
    char *name, *key;
    pthread_mutex_t mu; /* generation */
    char generation[32];
    uint64_t start, end;
    pc_ranges *ranges;
} gcs_get;

/* pc_ranges_fetch: one ranged GET, pinned to the generation once it is known */
static int fetch_range(void *ud, CURL *easy, uint64_t off, pc_range_buf *slot, char *err, size_t errlen)
{
    gcs_get *g = ud;
    char range[64], gen[32], q[96], what[1200];
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
    gcs_request rq = {.method = "GET", .url = url, .headers = hd, .nheaders = 1, .sink = pc_range_buf_add,
                      .reset = pc_range_buf_reset, .ud = slot, .expect = slot->want, .what = what};
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

static void get_free(gcs_get *g)
{
    if (!g)
        return;
    pc_ranges_free(g->ranges); /* joins its threads, which use g */
    pthread_mutex_destroy(&g->mu);
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
    if ((rc = pc_ranges_start(&in->pool, g->start, g->end, in->chunk, in->concurrency, fetch_range, g, &g->ranges))) {
        get_free(g);
        return h->error(h, rc, rc == ARCA_ENOMEM ? "out of memory" : "cannot start download threads");
    }
    *out = g;
    return 0;
}

int gcs_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    gcs_get *g = get;
    char err[1400];
    int rc = pc_ranges_read(g->ranges, buf, cap, got, err, sizeof err);
    return rc ? pc_handle_error(g->in->host, g, rc, "cannot read '%s': %s", g->name, err) : 0;
}

void gcs_get_close(void *get)
{
    get_free(get);
}
