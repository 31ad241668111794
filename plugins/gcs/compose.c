/* gcs plugin: parallel uploads as part objects composed at commit. Each full
 * chunk becomes a part object PREFIX.arca-tmp/NAME/ID/NNNNNN, stored in one
 * request by one of upload_concurrency threads (its CRC32C declared,
 * so that the server checks it); the parts are never listed (list shows flat
 * names only). At commit they are composed, at most 32 sources a request, into
 * intermediates (as few bytes as can be, several at once) and then into the
 * object itself, with ifGenerationMatch=0.
 * The parts and intermediates are deleted on every path: success, failure,
 * abort (and `arca cleanup` finds those a killed backup left). A composite
 * object has no MD5 (GCS computes none): its CRC32C is compared instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gcsput.h"
#include "pc_error.h"

#define GCS_PART_FMT "%06u"
#define GCS_MID_FMT "c%06u"

static char *tmp_name(const gcs_put *p, const char *fmt, uint32_t n)
{
    size_t len = strlen(p->tmp) + 16;
    char *s = malloc(len);
    if (s) {
        int k = snprintf(s, len, "%s", p->tmp);
        snprintf(s + k, len - (size_t)k, fmt, n);
    }
    return s;
}

static void mark_done(gcs_put *p, uint32_t number)
{
    /* lock held */
    if (number > p->ndone_cap) {
        uint32_t cap = p->ndone_cap ? p->ndone_cap : 256;
        while (cap < number)
            cap *= 2;
        uint8_t *d = realloc(p->done, cap);
        if (!d) {
            put_fail(p, ARCA_ENOMEM, "out of memory");
            return;
        }
        memset(d + p->ndone_cap, 0, cap - p->ndone_cap);
        p->done = d;
        p->ndone_cap = cap;
    }
    p->done[number - 1] = 1;
}

/* One part object, in one request; a 412 (an earlier attempt stored it and
 * its answer was lost) counts when the stored part has this part's CRC32C. */
static int upload_part(gcs_put *p, CURL *easy, gcs_part *c, char *err, size_t errlen)
{
    char *name = tmp_name(p, GCS_PART_FMT, c->number);
    json_t *meta = name ? json_pack("{s:s, s:s}", "name", name, "contentType", "application/octet-stream") : NULL, *obj = NULL;
    int rc = meta ? put_single(p, easy, name, c->buf, c->len, NULL, meta, &obj, err, errlen) : ARCA_ENOMEM;
    if (rc == ARCA_EEXIST) {
        char crc[9];
        gcs_crc32c_b64(gcs_crc32c(0, c->buf, c->len), crc);
        if (!gcs_stat(p->in, name, &obj, err, errlen) &&
            !strcmp(crc, json_string_value(json_object_get(obj, "crc32c")) ?: "") &&
            gcs_json_u64(obj, "size") == c->len)
            rc = 0;
    }
    if (rc == ARCA_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    json_decref(meta);
    json_decref(obj);
    free(name);
    return rc;
}

static void *compose_worker(void *arg)
{
    gcs_put *p = arg;
    CURL *easy = pc_curl_get(&p->in->pool);
    char err[1400];

    pthread_mutex_lock(&p->mu);
    if (!easy)
        put_fail(p, ARCA_ENOMEM, "cannot create a curl handle");
    for (;;) {
        while (!p->qhead && !p->stop && !p->failed)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->failed || !p->qhead)
            break;
        gcs_part *c = p->qhead;
        p->qhead = c->next;
        if (!p->qhead)
            p->qtail = NULL;
        pthread_mutex_unlock(&p->mu);

        err[0] = 0;
        int rc = upload_part(p, easy, c, err, sizeof err);

        pthread_mutex_lock(&p->mu);
        if (rc)
            put_fail(p, rc, err);
        else
            mark_done(p, c->number);
        part_recycle(p, c);
    }
    pthread_mutex_unlock(&p->mu);
    pc_curl_put(&p->in->pool, easy);
    return NULL;
}

int compose_start(gcs_put *p)
{
    gcs_inst *in = p->in;
    unsigned char rnd[8] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return pc_handle_error(in->host, p, ARCA_EFAIL, "no random bytes for an upload id");
    size_t n = strlen(in->prefix) + strlen(GCS_TMP_DIR) + strlen(p->name) + 48;
    if (!(p->tmp = malloc(n)))
        return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory");
    /* the id starts with the time, so that cleanup can tell old from new */
    snprintf(p->tmp, n, "%s%s%s/%010lld-%02x%02x%02x%02x%02x%02x/", in->prefix, GCS_TMP_DIR, p->name,
             (long long)time(NULL), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    p->mode = GCS_MODE_COMPOSE;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < in->concurrency && i < GCS_MAX_THREADS; i++) {
        if (pthread_create(&p->threads[i], NULL, compose_worker, p))
            break;
        p->nthreads++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!p->nthreads)
        return pc_handle_error(in->host, p, ARCA_EFAIL, "cannot start upload threads");
    return 0;
}

/* POST .../o/DEST/compose of `n` sources; the result's resource in *out when wanted. */
static int compose_one(gcs_put *p, const char *dest, char *const *srcs, size_t n, int final, json_t **out,
                       char *err, size_t errlen)
{
    gcs_inst *in = p->in;
    json_t *list = json_array(), *body;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s}", "name", srcs[i]));
    body = json_pack("{s:o, s:{s:s}}", "sourceObjects", list, "destination", "contentType",
                     final ? p->content_type : "application/octet-stream");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL, *q = final ? put_query(p, "") : NULL, what[1200];
    char *url = text && (!final || q) ? gcs_object_url(in, dest, final ? q : NULL) : NULL;
    /* gcs_object_url gives .../o/NAME: compose is .../o/NAME/compose */
    char *curl_url = NULL;
    int rc = ARCA_ENOMEM;
    if (url) {
        char *qm = strchr(url, '?');
        size_t len = strlen(url) + 16;
        if ((curl_url = malloc(len)))
            snprintf(curl_url, len, "%.*s/compose%s", (int)(qm ? qm - url : (long)strlen(url)), url, qm ? qm : "");
    }
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s' (compose of %zu)", in->cfg->bucket, dest, n);
    if (curl_url) {
        gcs_kv hd[1] = {{"Content-Type", "application/json; charset=UTF-8"}};
        gcs_request rq = {.method = "POST", .url = curl_url, .headers = hd, .nheaders = 1, .body = text,
                          .body_len = strlen(text), .what = what};
        gcs_response rs;
        rc = gcs_do(in, NULL, &rq, &rs, err, errlen);
        if (!rc && out && !(*out = gcs_json(&rs))) {
            snprintf(err, errlen, "POST %s: HTTP %ld without an object resource", what, rs.status);
            rc = ARCA_EFAIL;
        }
        gcs_response_free(&rs);
    }
    if (rc == ARCA_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    json_decref(body);
    free(text);
    free(q);
    free(url);
    free(curl_url);
    return rc;
}

/* Names of the sources of the next level: parts, then intermediates. */
static char **level_names(gcs_put *p, uint32_t n, const char *fmt, uint32_t first)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    for (uint32_t i = 0; v && i < n; i++)
        if (!(v[i] = tmp_name(p, fmt, first + i))) {
            for (uint32_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return NULL;
        }
    return v;
}

static void free_names(char **v, uint32_t n)
{
    for (uint32_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* One round of intermediates: group k is src[start[k] .. start[k + 1]), composed into the
 * intermediate numbered first + k. */
typedef struct grouping {
    gcs_put *p;
    char **src;
    const uint32_t *start;
    uint32_t first;
} grouping;

static int compose_group(void *ud, size_t k, char *err, size_t errlen)
{
    grouping *g = ud;
    char *dest = tmp_name(g->p, GCS_MID_FMT, g->first + (uint32_t)k);
    int rc = dest ? compose_one(g->p, dest, g->src + g->start[k], g->start[k + 1] - g->start[k], 0, NULL, err, errlen)
                  : ARCA_ENOMEM;
    free(dest);
    return rc;
}

/* Brings the `*n` sources in `src` down towards GCS_COMPOSE_MAX, replacing
 * groups of them by intermediates as gcs_compose_plan says, the groups of even
 * size (fake-gcs-server's cost grows faster than the size of what it composes)
 * and composed at once. src's names are replaced in place; *n updated. */
static int compose_round(gcs_put *p, char **src, uint32_t *n, char *err, size_t errlen)
{
    uint32_t groups, covered;
    gcs_compose_plan(*n, GCS_COMPOSE_MAX, &groups, &covered);
    uint32_t *start = malloc(((size_t)groups + 1) * sizeof *start);
    if (!start) {
        snprintf(err, errlen, "out of memory");
        return ARCA_ENOMEM;
    }
    for (uint32_t k = 0; k <= groups; k++)
        start[k] = (uint32_t)((uint64_t)covered * k / groups);
    p->in->host->log(p->in->host, ARCA_LOG_DEBUG, "'%s': %u sources to compose: %u intermediates of the first %u",
                     p->name, *n, groups, covered);
    grouping g = {.p = p, .src = src, .start = start, .first = p->intermediates + 1};
    p->intermediates += groups; /* cleanup removes them, made or not */
    int rc = gcs_run_parallel(groups, p->in->concurrency, compose_group, &g, err, errlen);
    for (uint32_t k = 0; !rc && k < groups; k++) { /* src becomes: intermediates, then the sources left */
        char *name = tmp_name(p, GCS_MID_FMT, g.first + k);
        if (!name) {
            snprintf(err, errlen, "out of memory");
            rc = ARCA_ENOMEM;
            break;
        }
        for (uint32_t i = start[k]; i < start[k + 1]; i++) {
            free(src[i]);
            src[i] = NULL;
        }
        src[k] = name;
    }
    if (!rc) {
        memmove(src + groups, src + covered, (size_t)(*n - covered) * sizeof *src);
        for (uint32_t i = groups + (*n - covered); i < *n; i++)
            src[i] = NULL; /* moved */
        *n = groups + (*n - covered);
    }
    free(start);
    return rc;
}

int compose_commit(gcs_put *p)
{
    gcs_inst *in = p->in;
    uint32_t n = p->next_number - 1;
    char err[1400] = "";
    json_t *existing = NULL;
    int rc;

    /* compose has no create-only guard on some servers: look first (GCS itself honours ifGenerationMatch) */
    rc = gcs_stat(in, p->key, &existing, err, sizeof err);
    json_decref(existing);
    if (rc == 0)
        return pc_handle_error(in->host, p, ARCA_EEXIST, "cannot store '%s': an object of that name exists already "
                               "in bucket '%s', and backups never overwrite", p->name, in->cfg->bucket);
    if (rc != ARCA_ENOENT)
        return pc_handle_error(in->host, p, rc, "cannot store '%s': %s", p->name, err);
    for (uint32_t i = 0; i < n; i++)
        if (i >= p->ndone_cap || !p->done[i])
            return pc_handle_error(in->host, p, ARCA_EFAIL, "upload of '%s': part %u is missing", p->name, i + 1);
    uint32_t total = n;
    char **src = level_names(p, n, GCS_PART_FMT, 1);
    rc = src ? 0 : ARCA_ENOMEM;
    while (!rc && n > GCS_COMPOSE_MAX)
        rc = compose_round(p, src, &n, err, sizeof err);
    if (rc) {
        free_names(src, total);
        return pc_handle_error(in->host, p, rc, "cannot compose '%s': %s", p->name, err[0] ? err : "out of memory");
    }
    rc = compose_one(p, p->key, src, n, 1, &p->final_obj, err, sizeof err);
    free_names(src, total);
    if (rc == ARCA_EEXIST)
        return pc_handle_error(in->host, p, rc, "cannot store '%s': an object of that name exists already in bucket "
                               "'%s', and backups never overwrite (%s)", p->name, in->cfg->bucket, err);
    if (rc)
        return pc_handle_error(in->host, p, rc, "cannot compose '%s': %s", p->name, err[0] ? err : "out of memory");
    p->created = 1;
    compose_cleanup(p); /* the parts are not needed any more */
    return 0;
}

void compose_cleanup(gcs_put *p)
{
    gcs_inst *in = p->in;
    uint32_t nparts = p->ndone_cap, n = 0;
    if (!p->tmp)
        return;
    char **keys = calloc((size_t)nparts + p->intermediates + 1, sizeof *keys);
    for (uint32_t i = 0; keys && i < nparts; i++)
        if (p->done[i] && (keys[n] = tmp_name(p, GCS_PART_FMT, i + 1)))
            n++;
    for (uint32_t i = 0; keys && i < p->intermediates; i++)
        if ((keys[n] = tmp_name(p, GCS_MID_FMT, i + 1)))
            n++;
    char err[1400] = "";
    int rc = keys ? gcs_delete_keys(in, (const char *const *)keys, n, in->concurrency, err, sizeof err) : ARCA_ENOMEM;
    if (rc)
        in->host->log(in->host, ARCA_LOG_ERROR, "cannot remove the part objects of '%s' under '%s': %s; `arca cleanup` "
                      "removes them later", p->name, p->tmp, err[0] ? err : "out of memory");
    free_names(keys, n);
    if (p->done)
        memset(p->done, 0, p->ndone_cap);
    p->intermediates = 0;
}
