/* gcs plugin: the catalog side: object metadata, list page by page (pageToken,
 * delimiter '/' so that part objects under PREFIX.arca-tmp/ are never walked),
 * delete after a look at the object (a retention period or a hold that still
 * applies is refused with a message that says so, never reported as
 * deleted), deletes of many objects a few at a time, and the cleanup of part
 * objects that killed backups left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gcs.h"
#include "pc_buf.h"
#include "pc_name.h"

uint64_t gcs_json_u64(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    const char *s = json_string_value(v);
    return s ? strtoull(s, NULL, 10) : 0;
}

int gcs_stat(gcs_inst *in, const char *key, json_t **out, char *err, size_t errlen)
{
    char *url = gcs_object_url(in, key, NULL), what[1200];
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s'", in->cfg->bucket, key);
    gcs_request rq = {.method = "GET", .url = url, .missing_ok = 1, .what = what};
    gcs_response rs;
    *out = NULL;
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return ARCA_ENOMEM;
    }
    int rc = gcs_do(in, NULL, &rq, &rs, err, errlen);
    if (!rc && !(*out = gcs_json(&rs))) {
        snprintf(err, errlen, "GET %s: HTTP %ld without an object resource", what, rs.status);
        rc = ARCA_EFAIL;
    }
    if (!rc && gcs_json_u64(*out, "size") > GCS_MAX_OBJECT) {
        snprintf(err, errlen, "GET %s: the answer claims %llu bytes, more than a GCS object can hold", what,
                 (unsigned long long)gcs_json_u64(*out, "size"));
        json_decref(*out);
        *out = NULL;
        rc = ARCA_EINTEGRITY;
    }
    gcs_response_free(&rs);
    free(url);
    return rc;
}

int gcs_delete_key(gcs_inst *in, const char *key, int64_t generation, char *err, size_t errlen)
{
    char q[64] = "", what[1200];
    if (generation > 0)
        snprintf(q, sizeof q, "ifGenerationMatch=%lld", (long long)generation);
    char *url = gcs_object_url(in, key, q);
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s'", in->cfg->bucket, key);
    gcs_request rq = {.method = "DELETE", .url = url, .missing_ok = 1, .cleanup = 1, .what = what};
    gcs_response rs;
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return ARCA_ENOMEM;
    }
    int rc = gcs_do(in, NULL, &rq, &rs, err, errlen);
    gcs_response_free(&rs);
    free(url);
    return rc;
}

/* ---- work on several threads ------------------------------------------------------------ */

typedef struct runner {
    size_t n, next;
    gcs_task_fn fn;
    void *ud;
    pthread_mutex_t mu;
    int rc;
    char err[1400];
} runner;

static void *run_tasks(void *arg)
{
    runner *r = arg;
    char err[1400];
    for (;;) {
        pthread_mutex_lock(&r->mu);
        size_t i = r->next < r->n && !r->rc ? r->next++ : r->n;
        pthread_mutex_unlock(&r->mu);
        if (i >= r->n)
            return NULL;
        err[0] = 0;
        int rc = r->fn(r->ud, i, err, sizeof err);
        if (rc) {
            pthread_mutex_lock(&r->mu);
            if (!r->rc) {
                r->rc = rc;
                snprintf(r->err, sizeof r->err, "%s", err[0] ? err : "out of memory");
            }
            pthread_mutex_unlock(&r->mu);
        }
    }
}

int gcs_run_parallel(size_t n, int threads, gcs_task_fn fn, void *ud, char *err, size_t errlen)
{
    runner r = {.n = n, .fn = fn, .ud = ud};
    pthread_t t[GCS_RUN_THREADS];
    int nt = 0;
    pthread_mutex_init(&r.mu, NULL);
    for (int i = 0; i < threads && i < GCS_RUN_THREADS && (size_t)i < n; i++)
        if (!pthread_create(&t[nt], NULL, run_tasks, &r))
            nt++;
    if (!nt)
        run_tasks(&r);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&r.mu);
    if (r.rc)
        snprintf(err, errlen, "%s", r.err);
    return r.rc;
}

/* ---- many deletes at once ------------------------------------------------------- */

typedef struct deleter {
    gcs_inst *in;
    const char *const *keys;
} deleter;

static int delete_one(void *ud, size_t i, char *err, size_t errlen)
{
    deleter *d = ud;
    int rc = gcs_delete_key(d->in, d->keys[i], 0, err, errlen);
    return rc == ARCA_ENOENT ? 0 : rc;
}

int gcs_delete_keys(gcs_inst *in, const char *const *keys, size_t n, int threads, char *err, size_t errlen)
{
    deleter d = {in, keys};
    return gcs_run_parallel(n, threads, delete_one, &d, err, errlen);
}

/* ---- list ----------------------------------------------------------------------- */

/* One page: its objects to cb; *token gets nextPageToken (NULL at the end). */
static int list_page(gcs_inst *in, json_t *page, arca_list_cb cb, void *ud, int *stop, char **token)
{
    size_t pl = strlen(in->prefix), i;
    json_t *item;
    int rc = 0;
    json_array_foreach(json_object_get(page, "items"), i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (!name || strncmp(name, in->prefix, pl) || !name[pl] || strchr(name + pl, '/'))
            continue; /* only flat names directly under the prefix are ours */
        int64_t t = gcs_parse_rfc3339(json_string_value(json_object_get(item, "updated")));
        arca_object_stat st = {name + pl, gcs_json_u64(item, "size"), t > 0 ? t : 0};
        int r = cb(ud, &st);
        if (r) {
            *stop = 1;
            rc = r < 0 ? r : 0;
            break;
        }
    }
    const char *next = json_string_value(json_object_get(page, "nextPageToken"));
    *token = !*stop && next && *next ? strdup(next) : NULL;
    return rc;
}

/* GET .../o?prefix=&delimiter=&maxResults=&pageToken= */
static int list_get(gcs_inst *in, const char *full, const char *delim, const char *token, json_t **page, char *err,
                    size_t errlen)
{
    char *p = gcs_uri_encode(full), *t = token ? gcs_uri_encode(token) : NULL, *q = NULL, *url = NULL, what[300];
    size_t n = (p ? strlen(p) : 0) + (t ? strlen(t) : 0) + 128;
    int rc = ARCA_ENOMEM;
    if (p && (!token || t) && (q = malloc(n))) {
        snprintf(q, n, "prefix=%s%s%s&maxResults=%lld%s%s", p, delim ? "&delimiter=" : "", delim ? delim : "",
                 (long long)in->cfg->list_max_results, t ? "&pageToken=" : "", t ? t : "");
        url = gcs_bucket_url(in, "/o", q);
    }
    snprintf(what, sizeof what, "bucket '%s' (listing)", in->cfg->bucket);
    if (url) {
        gcs_request rq = {.method = "GET", .url = url, .what = what};
        gcs_response rs;
        rc = gcs_do(in, NULL, &rq, &rs, err, errlen);
        if (!rc && !(*page = gcs_json(&rs))) {
            snprintf(err, errlen, "GET %s: HTTP %ld, the answer is not JSON (cut short?)", what, rs.status);
            rc = ARCA_EFAIL;
        }
        gcs_response_free(&rs);
    }
    if (rc == ARCA_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    free(p);
    free(t);
    free(q);
    free(url);
    return rc;
}

int gcs_list(void *inst, const char *prefix, arca_list_cb cb, void *ud)
{
    gcs_inst *in = inst;
    const arca_host *h = in->host;
    char *full, *token = NULL, *prev = NULL, err[1400] = "";
    int rc, stop = 0;

    if ((rc = pc_check_prefix(h, prefix)))
        return rc;
    if (!(full = gcs_key_of(in, prefix ? prefix : "")))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    do {
        json_t *page = NULL;
        rc = list_get(in, full, "%2F", token, &page, err, sizeof err);
        free(prev);
        prev = token;
        token = NULL;
        if (rc) {
            rc = h->error(h, rc == ARCA_ENOENT ? ARCA_EFAIL : rc, "cannot list bucket '%s': %s", in->cfg->bucket, err);
            break;
        }
        rc = list_page(in, page, cb, ud, &stop, &token);
        json_decref(page);
        if (token && prev && !strcmp(prev, token))
            rc = h->error(h, ARCA_EFAIL, "listing bucket '%s': the server repeats the page token '%.64s': stopped "
                          "instead of asking forever", in->cfg->bucket, token);
    } while (!rc && token && !stop);
    free(token);
    free(prev);
    free(full);
    return rc;
}

/* ---- delete --------------------------------------------------------------------- */

/* A hold or retention that still applies to the object, or NULL. */
static const char *still_retained(json_t *o, char *why, size_t cap)
{
    time_t now = time(NULL);
    json_t *ret = json_object_get(o, "retention");
    int64_t until = gcs_parse_rfc3339(json_string_value(json_object_get(ret, "retainUntilTime")));
    int64_t policy = gcs_parse_rfc3339(json_string_value(json_object_get(o, "retentionExpirationTime")));
    if (json_is_true(json_object_get(o, "temporaryHold")))
        snprintf(why, cap, "under a temporary hold (release it first: gcloud storage objects update --no-temporary-hold)");
    else if (json_is_true(json_object_get(o, "eventBasedHold")))
        snprintf(why, cap, "under an event-based hold (release it first: gcloud storage objects update "
                 "--no-event-based-hold)");
    else if (until > (int64_t)now)
        snprintf(why, cap, "retained (%s mode) until %s", json_string_value(json_object_get(ret, "mode")) ?: "object",
                 json_string_value(json_object_get(ret, "retainUntilTime")));
    else if (policy > (int64_t)now)
        snprintf(why, cap, "under the bucket's retention policy until %s",
                 json_string_value(json_object_get(o, "retentionExpirationTime")));
    else
        return NULL;
    return why;
}

int gcs_remove(void *inst, const char *name)
{
    gcs_inst *in = inst;
    const arca_host *h = in->host;
    char *key, err[1400], why[300];
    json_t *o = NULL;
    int rc;

    if ((rc = gcs_check_name(in, name)))
        return rc;
    if (!(key = gcs_key_of(in, name)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    rc = gcs_stat(in, key, &o, err, sizeof err);
    if (rc == ARCA_ENOENT) {
        rc = h->error(h, ARCA_ENOENT, "'%s' does not exist (gs://%s/%s)", name, in->cfg->bucket, key);
    } else if (!rc && still_retained(o, why, sizeof why)) {
        rc = h->error(h, ARCA_EFAIL, "'%s' is %s: not deleted", name, why);
    } else if (!rc) {
        rc = gcs_delete_key(in, key, (int64_t)gcs_json_u64(o, "generation"), err, sizeof err);
        if (rc == ARCA_ENOENT)
            rc = h->error(h, ARCA_ENOENT, "'%s' does not exist any more (gs://%s/%s)", name, in->cfg->bucket, key);
        else if (rc && strstr(err, "retention"))
            rc = h->error(h, rc, "'%s' is retained: not deleted (%s)", name, err);
        else if (rc)
            rc = h->error(h, rc, "cannot remove '%s': %s", name, err);
    } else {
        rc = h->error(h, rc, "cannot remove '%s': %s", name, err);
    }
    json_decref(o);
    free(key);
    return rc;
}

int gcs_remove_many(void *inst, const char *const *names, size_t n)
{
    gcs_inst *in = inst;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if ((rc = gcs_check_name(in, names[i])))
            return rc;
    /* each one is looked at first (retention, holds): a retained object is
     * refused, never reported as gone */
    for (size_t i = 0; i < n && !rc; i++) {
        rc = gcs_remove(in, names[i]);
        if (rc == ARCA_ENOENT)
            rc = 0;
    }
    return rc;
}

/* ---- cleanup: part objects of composite uploads nobody will compose ------------------ */

typedef struct leftover {
    char upload[1100]; /* PREFIX.arca-tmp/NAME/ID/ */
    char **keys;
    size_t n, cap;
    uint64_t bytes;
    int64_t started;
} leftover;

static int flush_leftover(gcs_inst *in, leftover *l, int64_t older_than, int dry_run, arca_list_cb cb, void *ud,
                          char *err, size_t errlen)
{
    int rc = 0;
    if (l->n && l->started > 0 && l->started <= older_than) {
        /* the name as the put named it: between the tmp dir and the id */
        size_t base = strlen(in->prefix) + strlen(GCS_TMP_DIR), len = strlen(l->upload);
        char name[1100];
        const char *id = len > 1 ? memrchr(l->upload, '/', len - 1) : NULL;
        snprintf(name, sizeof name, "%.*s", id ? (int)(id - l->upload - (long)base) : 0, l->upload + base);
        arca_object_stat st = {name, l->bytes, l->started};
        if (cb && cb(ud, &st) < 0)
            rc = ARCA_ECANCELED;
        if (!rc && !dry_run)
            rc = gcs_delete_keys(in, (const char *const *)l->keys, l->n, in->concurrency, err, errlen);
    }
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    l->n = 0;
    l->bytes = 0;
    l->started = 0;
    return rc;
}

/* Adds one part object to its upload's group (flushing the previous group). */
static int gather(gcs_inst *in, leftover *l, json_t *item, int64_t older_than, int dry_run, arca_list_cb cb, void *ud,
                  char *err, size_t errlen)
{
    const char *key = json_string_value(json_object_get(item, "name"));
    size_t base = strlen(in->prefix) + strlen(GCS_TMP_DIR);
    const char *slash = key && strlen(key) > base ? strrchr(key, '/') : NULL;
    int rc = 0;
    if (!slash || (size_t)(slash - key) + 2 > sizeof l->upload)
        return 0;
    size_t ul = (size_t)(slash - key) + 1;
    if (strlen(l->upload) != ul || strncmp(l->upload, key, ul)) {
        rc = flush_leftover(in, l, older_than, dry_run, cb, ud, err, errlen);
        snprintf(l->upload, sizeof l->upload, "%.*s", (int)ul, key);
    }
    if (l->n == l->cap) {
        char **k = realloc(l->keys, (l->cap = l->cap ? 2 * l->cap : 64) * sizeof *k);
        if (!k)
            return ARCA_ENOMEM;
        l->keys = k;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return ARCA_ENOMEM;
    l->n++;
    l->bytes += gcs_json_u64(item, "size");
    int64_t t = gcs_parse_rfc3339(json_string_value(json_object_get(item, "timeCreated")));
    if (t > 0 && (!l->started || t < l->started))
        l->started = t;
    return rc;
}

int gcs_cleanup(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud)
{
    gcs_inst *in = inst;
    char full[2200], *token = NULL, *prev = NULL, err[1400] = "";
    leftover l = {0};
    int rc = 0;
    snprintf(full, sizeof full, "%s%s%s", in->prefix, GCS_TMP_DIR, prefix ? prefix : "");
    do {
        json_t *page = NULL, *item;
        size_t i;
        rc = list_get(in, full, NULL, token, &page, err, sizeof err);
        free(prev);
        prev = token;
        token = NULL;
        json_array_foreach(rc ? NULL : json_object_get(page, "items"), i, item)
            if (!rc)
                rc = gather(in, &l, item, older_than, dry_run, cb, ud, err, sizeof err);
        const char *next = json_string_value(json_object_get(page, "nextPageToken"));
        if (!rc && next && *next && !(prev && !strcmp(prev, next)))
            token = strdup(next);
        json_decref(page);
    } while (!rc && token);
    if (!rc)
        rc = flush_leftover(in, &l, older_than, dry_run, cb, ud, err, sizeof err);
    for (size_t i = 0; i < l.n; i++)
        free(l.keys[i]);
    free(l.keys);
    free(token);
    free(prev);
    return rc ? in->host->error(in->host, rc, "cleanup of bucket '%s': %s", in->cfg->bucket,
                                err[0] ? err : "out of memory") : 0;
}
