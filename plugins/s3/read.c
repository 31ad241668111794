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
#include "pc_ranges.h"
#include "s3.h"

typedef struct s3_get {
    s3_inst *in;
    char *name, *key;
    pthread_mutex_t mu; /* etag */
    char etag[160];
    uint64_t start, end;
    pc_ranges *ranges;
} s3_get;

/* pc_ranges_fetch: one ranged GET, pinned to the ETag once it is known */
static int fetch_range(void *ud, CURL *easy, uint64_t off, pc_range_buf *slot, char *err, size_t errlen)
{
    s3_get *g = ud;
    char range[64], etag[160];
    s3_kv hd[2];
    size_t nh = 0;
    s3_response rs;
    int rc;

    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + slot->want - 1));
    pthread_mutex_lock(&g->mu);
    snprintf(etag, sizeof etag, "%s", g->etag);
    pthread_mutex_unlock(&g->mu);
    hd[nh++] = (s3_kv){"if-match", etag};
    hd[nh++] = (s3_kv){"range", range};
    s3_request rq = {.method = "GET", .key = g->key, .headers = hd, .nheaders = etag[0] ? 2 : 1,
                     .sink = pc_range_buf_add, .reset = pc_range_buf_reset, .ud = slot, .expect = slot->want};
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

static void get_free(s3_get *g)
{
    if (!g)
        return;
    pc_ranges_free(g->ranges); /* joins its threads, which use g */
    pthread_mutex_destroy(&g->mu);
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
    rc = pc_ranges_start(&in->pool, g->start, g->end, in->part_size, in->concurrency, fetch_range, g, &g->ranges);
    if (rc) {
        get_free(g);
        return h->error(h, rc, rc == ARCA_ENOMEM ? "out of memory" : "cannot start download threads");
    }
    *out = g;
    return 0;
}

int s3_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    s3_get *g = get;
    char err[1400];
    int rc = pc_ranges_read(g->ranges, buf, cap, got, err, sizeof err);
    /* a download worker's failure, on the handle it belongs to */
    return rc ? pc_handle_error(g->in->host, g, rc, "cannot read '%s': %s", g->name, err) : 0;
}

void s3_get_close(void *get)
{
    get_free(get);
}
