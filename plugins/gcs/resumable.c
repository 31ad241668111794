/* gcs plugin: one resumable upload session (what Google documents in "Resumable
 * uploads"). The session starts when the first chunk is full (POST
 * uploadType=resumable with the object's metadata and ifGenerationMatch=0);
 * one thread sends chunks in order with Content-Range "bytes A-B/ *" (the last
 * with the total) while the writer fills the next. A 308 answer's Range says
 * how much the server persisted, which may be less than was sent: the rest of
 * the chunk is sent again from there. After a reset, a stall, 408, 429 or 5xx
 * the session is asked (empty PUT, "bytes * / *") how much it has, after a
 * jittered backoff, and the upload resumes from that byte: never from the
 * start. A 404 or 410 means the session is gone: with a stream nothing can be
 * resent, so the backup fails (and nothing is visible). Also here: the plan,
 * chosen once per instance, between this and parallel composed parts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcsput.h"
#include "pc_error.h"

/* ---- the plan -------------------------------------------------------------------- */

/* May parts be composed for this instance's puts? 0 yes, 1 no (why says
 * why), <0 failure (err). Looks at the bucket once: its retention policy,
 * default event-based hold and class. */
static int compose_blocked(gcs_inst *in, char *why, size_t cap, char *err, size_t errlen)
{
    const gcs_config *c = in->cfg;
    const char *no = NULL;
    if (in->concurrency < 2)
        no = "upload_concurrency = 1";
    else if (c->composite_upload == GCS_COMPOSE_OFF)
        no = "composite_upload = false";
    else if (c->retention_mode != GCS_RET_NONE || c->event_based_hold || c->temporary_hold)
        no = "retention or a hold is asked for: the object is written directly, so that no part could be retained";
    else if (c->storage_class && *c->storage_class && strcasecmp(c->storage_class, "STANDARD"))
        no = "storage_class is not STANDARD: short-lived parts would be billed its minimum storage duration";
    if (no || c->composite_upload == GCS_COMPOSE_ON) {
        snprintf(why, cap, "%s", no ? no : "");
        return no != NULL;
    }
    char *url = gcs_bucket_url(in, NULL, "fields=retentionPolicy,defaultEventBasedHold,storageClass"), what[300];
    snprintf(what, sizeof what, "bucket '%s'", c->bucket);
    gcs_request rq = {.method = "GET", .url = url, .what = what};
    gcs_response rs;
    int rc = url ? gcs_do(in, NULL, &rq, &rs, err, errlen) : ARCA_ENOMEM;
    json_t *b = rc ? NULL : gcs_json(&rs);
    const char *sc = json_string_value(json_object_get(b, "storageClass"));
    if (rc && rs.status == 403) {
        in->host->log(in->host, ARCA_LOG_WARN, "cannot read bucket '%s' (storage.buckets.get): large objects go as "
                      "one resumable stream; set composite_upload = true if the bucket has no retention policy",
                      c->bucket);
        no = "the bucket's settings cannot be read (HTTP 403)";
        rc = 0;
    } else if (rc) {
        rc = rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
    } else if (json_object_get(b, "retentionPolicy")) {
        no = "the bucket has a retention policy: part objects could not be deleted after composing";
    } else if (json_is_true(json_object_get(b, "defaultEventBasedHold"))) {
        no = "the bucket holds new objects (default event-based hold): part objects could not be deleted";
    } else if (sc && strcasecmp(sc, "STANDARD") && !(c->storage_class && *c->storage_class)) {
        no = "the bucket's default class is not STANDARD: parts would be billed its minimum storage duration";
    }
    if (no)
        snprintf(why, cap, "%s", no);
    json_decref(b);
    if (url)
        gcs_response_free(&rs);
    free(url);
    return rc ? rc : no != NULL;
}

int upload_start(gcs_put *p)
{
    gcs_inst *in = p->in;
    char why[300] = "", err[1400] = "";
    int rc = 0;
    pthread_mutex_lock(&in->plan_lock);
    if (!in->plan) {
        rc = compose_blocked(in, why, sizeof why, err, sizeof err);
        if (rc >= 0) {
            in->plan = rc ? GCS_MODE_RESUMABLE : GCS_MODE_COMPOSE;
            snprintf(in->plan_why, sizeof in->plan_why, "%s", why);
            in->host->log(in->host, ARCA_LOG_INFO, "large objects go %s%s",
                          rc ? "as one resumable stream: " : "as parallel parts composed at commit", why);
            rc = 0;
        }
    }
    int plan = in->plan;
    pthread_mutex_unlock(&in->plan_lock);
    if (rc)
        return pc_handle_error(in->host, p, rc, "cannot upload '%s': %s", p->name, err);
    /* a part's name must fit GCS's limit too: else one stream */
    if (plan == GCS_MODE_COMPOSE && strlen(in->prefix) + strlen(GCS_TMP_DIR) + strlen(p->name) + 48 > GCS_MAX_NAME)
        plan = GCS_MODE_RESUMABLE;
    return plan == GCS_MODE_COMPOSE ? compose_start(p) : resumable_start(p);
}

/* ---- the session ------------------------------------------------------------------- */

/* The session URI must be on the endpoint (it receives the bearer token). */
static int same_origin(const gcs_inst *in, const char *uri)
{
    size_t n = strlen(in->endpoint);
    return !strncasecmp(uri, in->endpoint, n) && (uri[n] == '/' || uri[n] == '?');
}

static void *resumable_worker(void *arg);

int resumable_start(gcs_put *p)
{
    gcs_inst *in = p->in;
    char err[1400] = "", what[1200], *q = NULL, *enc = gcs_uri_encode(p->key), *url = NULL, *meta = NULL;
    json_t *m = put_metadata(p, p->key);
    int rc = ARCA_ENOMEM;
    size_t n = enc ? strlen(enc) + 64 : 0;
    char *more = enc ? malloc(n) : NULL;
    if (more) {
        snprintf(more, n, "uploadType=resumable&name=%s", enc);
        q = put_query(p, more);
    }
    url = q ? gcs_upload_url(in, q) : NULL;
    meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s' (new resumable session)", in->cfg->bucket, p->key);
    if (url && meta) {
        gcs_kv hd[2] = {{"Content-Type", "application/json; charset=UTF-8"}, {"X-Upload-Content-Type", p->content_type}};
        gcs_request rq = {.method = "POST", .url = url, .headers = hd, .nheaders = 2, .body = meta,
                          .body_len = strlen(meta), .what = what};
        gcs_response rs;
        rc = gcs_do(in, NULL, &rq, &rs, err, sizeof err);
        if (!rc && (!rs.location[0] || !same_origin(in, rs.location))) {
            snprintf(err, sizeof err, "POST %s: HTTP %ld %s", what, rs.status,
                     rs.location[0] ? "with a session URI on another host: refused (it would receive the token)"
                                    : "without a session URI (Location)");
            rc = ARCA_EFAIL;
        }
        if (!rc && !(p->session = strdup(rs.location)))
            rc = ARCA_ENOMEM;
        gcs_response_free(&rs);
    }
    json_decref(m);
    free(meta);
    free(more);
    free(enc);
    free(q);
    free(url);
    if (!rc && (!(p->md5 = EVP_MD_CTX_new()) || EVP_DigestInit_ex(p->md5, EVP_md5(), NULL) != 1))
        rc = ARCA_ENOMEM;
    if (rc)
        return pc_handle_error(in->host, p, rc, "cannot start the upload of '%s': %s", p->name,
                               err[0] ? err : "out of memory");
    p->mode = GCS_MODE_RESUMABLE;
    p->maxbufs = 2; /* one being sent, one being filled */
    if (pthread_create(&p->threads[0], NULL, resumable_worker, p))
        return pc_handle_error(in->host, p, ARCA_EFAIL, "cannot start the upload thread");
    p->nthreads = 1;
    return 0;
}

/* One request to the session: `len` bytes at `from` (0: a status query). */
static int session_put(gcs_put *p, CURL *easy, const gcs_part *c, uint64_t from, int final, gcs_response *rs,
                       char *err, size_t errlen)
{
    char range[96], total[32], what[260];
    uint64_t end = c->offset + c->len;
    size_t len = from < end ? (size_t)(end - from) : 0;
    int query = len == 0;
    snprintf(total, sizeof total, final ? "%llu" : "*", (unsigned long long)p->total);
    if (query && !final)
        snprintf(range, sizeof range, "bytes */*");
    else if (query)
        snprintf(range, sizeof range, "bytes */%s", total);
    else
        snprintf(range, sizeof range, "bytes %llu-%llu/%s", (unsigned long long)from, (unsigned long long)(end - 1), total);
    snprintf(what, sizeof what, "'%.100s' (%s of the resumable session)", p->name, range);
    gcs_kv hd[1] = {{"Content-Range", range}};
    gcs_request rq = {.method = "PUT", .url = p->session, .headers = hd, .nheaders = 1,
                      .body = query ? NULL : c->buf + (from - c->offset), .body_len = len, .once = 1, .what = what};
    return gcs_do(p->in, easy, &rq, rs, err, errlen);
}

/* What a 2xx or 308 answer says: 1 when the upload is complete (*obj set), 0
 * with p->persisted updated, <0 on nonsense. */
static int session_answer(gcs_put *p, gcs_response *rs, json_t **obj, char *err, size_t errlen)
{
    if (rs->status == 200 || rs->status == 201) {
        if (!(*obj = gcs_json(rs))) {
            snprintf(err, errlen, "'%s': the completed upload's answer is not an object resource", p->name);
            return ARCA_EFAIL;
        }
        return 1;
    }
    uint64_t persisted = 0;
    if (rs->range[0] && gcs_parse_range(rs->range, &persisted)) {
        snprintf(err, errlen, "'%s': the session answered Range '%.60s'", p->name, rs->range);
        return ARCA_EFAIL;
    }
    if (persisted < p->persisted) {
        snprintf(err, errlen, "'%s': the session now has %llu bytes after confirming %llu: data it had confirmed is "
                 "gone, and a stream cannot be sent again", p->name, (unsigned long long)persisted,
                 (unsigned long long)p->persisted);
        return ARCA_EFAIL;
    }
    p->persisted = persisted;
    return 0;
}

/* Sends chunk c until the server has all of it (and, for the last one, the
 * object is complete). Resumes from what the server persisted. */
static int send_chunk(gcs_put *p, CURL *easy, gcs_part *c, char *err, size_t errlen)
{
    const arca_host *h = p->in->host;
    uint64_t end = c->offset + c->len, wait;
    int asking = 0; /* the next request is a status query */
    pc_retry budget;
    pc_retry_start(&budget, p->in->cfg->retries, p->in->cfg->retry_time);
    for (;;) {
        gcs_response rs;
        json_t *obj = NULL;
        uint64_t before = p->persisted;
        if (p->persisted < c->offset || p->persisted > end) {
            snprintf(err, errlen, "'%s': the session has %llu bytes, outside chunk %u (%llu-%llu)", p->name,
                     (unsigned long long)p->persisted, c->number, (unsigned long long)c->offset,
                     (unsigned long long)end);
            return ARCA_EFAIL;
        }
        if (p->persisted == end && !c->final)
            return 0;
        pc_retry_attempt(&budget);
        int rc = session_put(p, easy, c, asking ? end : p->persisted, c->final, &rs, err, errlen);
        int done = rc ? rc : session_answer(p, &rs, &obj, err, errlen);
        int retry = rc && rs.retry;
        gcs_response_free(&rs);
        if (done == 1 && !c->final) {
            json_decref(obj);
            snprintf(err, errlen, "'%s': the session completed before its last chunk", p->name);
            return ARCA_EFAIL;
        }
        if (done == 1) {
            p->final_obj = obj;
            p->created = 1;
            return 0;
        }
        if (done == 0) {
            asking = 0;
            if (p->persisted > before)
                pc_retry_start(&budget, p->in->cfg->retries, p->in->cfg->retry_time); /* progress: a fresh budget */
            else if (p->persisted == end) /* the last chunk all there but not complete: ask */
                asking = 1;
            continue;
        }
        if (!retry)
            return done;
        if (!pc_retry_next(&budget, &wait)) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (gave up after %u attempts in %.1f s)", budget.tries,
                     pc_retry_elapsed(&budget));
            return ARCA_EFAIL;
        }
        h->log(h, ARCA_LOG_INFO, "%s; retry %u in %.1f s, resuming from what the session has", err, budget.tries,
               (double)wait / 1000.0);
        if (pc_retry_sleep(h, wait) == ARCA_ECANCELED)
            return ARCA_ECANCELED;
        asking = 1;
    }
}

static void *resumable_worker(void *arg)
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

        EVP_DigestUpdate(p->md5, c->buf, c->len);
        err[0] = 0;
        int rc = send_chunk(p, easy, c, err, sizeof err);

        pthread_mutex_lock(&p->mu);
        if (rc)
            put_fail(p, rc, err);
        part_recycle(p, c);
    }
    pthread_mutex_unlock(&p->mu);
    pc_curl_put(&p->in->pool, easy);
    return NULL;
}

int resumable_commit(gcs_put *p)
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!p->final_obj)
        return pc_handle_error(p->in->host, p, ARCA_EFAIL, "upload of '%s': the session did not complete", p->name);
    if (EVP_DigestFinal_ex(p->md5, dig, &n) == 1 && n == 16)
        gcs_md5_b64(dig, p->md5_b64);
    return 0;
}

void upload_cleanup(gcs_put *p)
{
    gcs_inst *in = p->in;
    if (p->created) {
        remove_created(p, "the upload failed after the object was made");
        p->created = 0;
    }
    if (p->mode == GCS_MODE_COMPOSE) {
        compose_cleanup(p);
    } else if (p->session) {
        /* cancel the session: nothing it holds becomes visible (GCS answers 499) */
        char err[1400];
        gcs_request rq = {.method = "DELETE", .url = p->session, .cleanup = 1, .missing_ok = 1, .once = 1,
                          .what = "the resumable session"};
        gcs_response rs;
        int rc = gcs_do(in, NULL, &rq, &rs, err, sizeof err);
        if (rc && rc != ARCA_ENOENT && rs.status != 499 && rs.status != 410)
            in->host->log(in->host, ARCA_LOG_INFO, "cancelling the session of '%s': %s (an unfinished session "
                          "holds nothing visible and expires after a week)", p->name, err);
        gcs_response_free(&rs);
    }
    free(p->session);
    p->session = NULL;
}
