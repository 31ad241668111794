/* gcs plugin: one JSON API request over libcurl with a bearer token (auth.c),
 * sent again on transient failures per the common retry policy (pc_retry.h)
 * refined by GCS's reasons (codes.c), within `retries` attempts and
 * `retry_time` seconds. A 401 gets one new token and one more try. Errors name
 * the bucket and object (never a credential), the HTTP status, GCS's reason
 * and message, and a hint. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "gcs.h"
#include "pc_buf.h"
#include "pc_retry.h"

#define GCS_KEEP_MAX ((size_t)16 << 20) /* largest answer kept (a 1000-object listing is ~1 MB) */
#define GCS_ERR_KEEP ((size_t)64 << 10) /* an error answer is small */
/* Every request ends by a deadline: 2 x timeout plus its bytes at this floor
 * rate, so that a server dripping a byte at a time cannot hold it forever. */
#define GCS_FLOOR_RATE (64u << 10)

void gcs_response_free(gcs_response *rs)
{
    free(rs->body);
    memset(rs, 0, sizeof *rs);
}

char *gcs_key_of(const gcs_inst *in, const char *name)
{
    size_t n = strlen(in->prefix) + strlen(name) + 1;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s%s", in->prefix, name);
    return k;
}

static char *join(const char *a, const char *b, const char *c, const char *q)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + (q ? strlen(q) + 1 : 0) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s%s", a, b, c, q && *q ? "?" : "", q && *q ? q : "");
    return s;
}

/* The query with userProject=... added for a requester-pays bucket. malloc'd. */
static char *query_of(const gcs_inst *in, const char *query)
{
    const char *up = in->cfg->user_project;
    char *enc = up && *up ? gcs_uri_encode(up) : NULL, *q;
    if (up && *up && !enc)
        return NULL;
    q = join(query ? query : "", query && *query && enc ? "&" : "", enc ? "userProject=" : "", NULL);
    if (q && enc) {
        char *q2 = join(q, enc, "", NULL);
        free(q);
        q = q2;
    }
    free(enc);
    return q;
}

char *gcs_bucket_url(const gcs_inst *in, const char *suffix, const char *query)
{
    char base[1024];
    snprintf(base, sizeof base, "%s/storage/v1/b/", in->endpoint);
    char *u = NULL, *b = join(base, in->bucket_enc, suffix ? suffix : "", NULL), *q = query_of(in, query);
    if (b && q)
        u = join(b, "", "", q);
    free(b);
    free(q);
    return u;
}

char *gcs_object_url(const gcs_inst *in, const char *objname, const char *query)
{
    char *enc = gcs_uri_encode(objname), *u = NULL;
    if (enc) {
        size_t n = strlen(enc) + 4;
        char *suffix = malloc(n);
        if (suffix) {
            snprintf(suffix, n, "/o/%s", enc);
            u = gcs_bucket_url(in, suffix, query);
        }
        free(suffix);
    }
    free(enc);
    return u;
}

char *gcs_upload_url(const gcs_inst *in, const char *query)
{
    char base[1024];
    snprintf(base, sizeof base, "%s/upload/storage/v1/b/", in->endpoint);
    char *q = query_of(in, query), *u = q ? join(base, in->bucket_enc, "/o", q) : NULL;
    free(q);
    return u;
}

json_t *gcs_json(const gcs_response *rs)
{
    return rs->body ? json_loadb(rs->body, rs->body_len, 0, NULL) : NULL;
}

/* ---- one transfer ------------------------------------------------------------------ */

typedef struct xfer {
    gcs_inst *in;
    const gcs_request *rq;
    gcs_response *rs;
    CURL *easy;
    size_t upos;
    pc_buf body;
    int too_big, sink_failed, stalled;
    uint64_t moved, last_move_ms;
    char curl_err[CURL_ERROR_SIZE];
} xfer;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    const gcs_request *rq = x->rq;
    size_t want = size * nmemb, left = rq->body_len - x->upos, done = 0;
    if (want > left)
        want = left;
    if (!rq->pieces) {
        if (want)
            memcpy(dst, (const char *)rq->body + x->upos, want);
        x->upos += want;
        return want;
    }
    /* the pieces as one body: find the one holding upos, copy across the next ones */
    size_t at = 0;
    for (size_t i = 0; i < rq->npieces && done < want; at += rq->pieces[i++].n) {
        const gcs_piece *pc = &rq->pieces[i];
        if (x->upos + done >= at + pc->n)
            continue;
        size_t off = x->upos + done - at, k = pc->n - off < want - done ? pc->n - off : want - done;
        memcpy(dst + done, (const char *)pc->p + off, k);
        done += k;
    }
    x->upos += done;
    return done;
}

/* curl rewinds the body when it must send it again on a new connection (a
 * reset of a reused one): from the start of this attempt's body. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > x->rq->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->upos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    int ok = status >= 200 && status < 300;
    if (ok && x->rq->sink) {
        size_t took = x->rq->sink(x->rq->ud, p, n);
        if (took != n)
            x->sink_failed = 1;
        return took;
    }
    if (x->body.len + n > (ok ? GCS_KEEP_MAX : GCS_ERR_KEEP)) {
        x->too_big = 1;
        return 0;
    }
    pc_buf_add(&x->body, p, n);
    return x->body.oom ? 0 : n;
}

static void header_value(const char *v, size_t n, char *out, size_t cap)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    snprintf(out, cap, "%.*s", (int)n, v);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (n > 5 && !strncmp(p, "HTTP/", 5)) { /* a new answer: forget the last one's headers */
        x->rs->location[0] = x->rs->range[0] = x->rs->generation[0] = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - p), vl = n - nl - 1;
    if (nl == 8 && !strncasecmp(p, "location", 8))
        header_value(colon + 1, vl, x->rs->location, sizeof x->rs->location);
    else if (nl == 5 && !strncasecmp(p, "range", 5))
        header_value(colon + 1, vl, x->rs->range, sizeof x->rs->range);
    else if (nl == 17 && !strncasecmp(p, "x-goog-generation", 17))
        header_value(colon + 1, vl, x->rs->generation, sizeof x->rs->generation);
    return n;
}

/* At least once a second: stalls (precisely, unlike LOW_SPEED_TIME) and cancellation. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    xfer *x = ud;
    uint64_t moved = (uint64_t)dn + (uint64_t)un, now = pc_now_ms();
    (void)dt, (void)ut;
    if (!x->rq->cleanup && x->in->host->cancelled(x->in->host))
        return 1;
    if (moved != x->moved || !x->last_move_ms) {
        x->moved = moved;
        x->last_move_ms = now;
    } else if (now - x->last_move_ms > (uint64_t)x->in->cfg->timeout * 1000) {
        x->stalled = 1;
        return 1;
    }
    return 0;
}

static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return -1;
    *l = n;
    return 0;
}

/* The header list of one attempt: Authorization (unless no_auth), the
 * request's own, and no Expect: 100-continue round trip. NULL with *rc set. */
static struct curl_slist *headers_of(gcs_inst *in, const gcs_request *rq, int *rc, char *err, size_t errlen)
{
    struct curl_slist *l = NULL;
    char line[4096];
    int bad = 0;
    *rc = 0;
    if (!rq->no_auth) {
        if ((*rc = gcs_auth_header(in, line, sizeof line, err, errlen)))
            return NULL;
        bad |= add_header(&l, line);
        OPENSSL_cleanse(line, sizeof line);
    }
    for (size_t i = 0; i < rq->nheaders; i++) {
        snprintf(line, sizeof line, "%s: %s", rq->headers[i].name, rq->headers[i].value);
        bad |= add_header(&l, line);
    }
    bad |= add_header(&l, "Expect:");
    if (bad) {
        curl_slist_free_all(l);
        snprintf(err, errlen, "out of memory");
        *rc = ARCA_ENOMEM;
        return NULL;
    }
    return l;
}

static void set_options(gcs_inst *in, CURL *e, const gcs_request *rq, xfer *x, struct curl_slist *hl)
{
    const gcs_config *cfg = in->cfg;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    pc_curl_common(e, &in->pool, x->curl_err, cfg->verify_tls, cfg->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "arca-gcs/1.0");
    if (rq->quick) { /* the metadata server: off GCE nothing answers, and that must show soon */
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    } else {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)(cfg->timeout < 30 ? cfg->timeout : 30));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)((2 * (uint64_t)cfg->timeout + (rq->body_len + rq->expect) / GCS_FLOOR_RATE) * 1000));
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST") || !strcmp(rq->method, "PATCH")) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
        if (strcmp(rq->method, "PUT"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    } else if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
}

/* One attempt. The curl code; *auth_rc gets a credential failure (nothing sent then). */
static CURLcode attempt(gcs_inst *in, CURL *e, const gcs_request *rq, xfer *x, int *auth_rc, char *err, size_t errlen)
{
    struct curl_slist *hl = headers_of(in, rq, auth_rc, err, errlen);
    if (*auth_rc)
        return CURLE_OK;
    set_options(in, e, rq, x, hl);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->rs->status);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL); /* the handle keeps these pointers until then */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    /* the header list held the bearer token: wipe it before it is freed */
    for (struct curl_slist *l = hl; l; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(hl);
    return cc;
}

static void fmt(char *err, size_t errlen, const char *f, ...) ARCA_PRINTF(3, 4);
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

enum { GCS_DONE = 0, GCS_RETRY = 1 };

/* Below HTTP: final (with *rc and err) or worth another try (`last` says why). */
static int judge_transport(gcs_inst *in, const gcs_request *rq, xfer *x, CURLcode cc, const char *shown, int *rc,
                           char *last, size_t lastlen, char *err, size_t errlen)
{
    char why[CURL_ERROR_SIZE + 128];
    if (cc == CURLE_ABORTED_BY_CALLBACK && !x->stalled) {
        fmt(err, errlen, "%s: cancelled", shown);
        *rc = ARCA_ECANCELED;
        return GCS_DONE;
    }
    if (cc == CURLE_WRITE_ERROR && x->sink_failed) {
        fmt(err, errlen, "%s: the answer did not match the request (more data than asked for?)", shown);
        *rc = ARCA_EINTEGRITY;
        return GCS_DONE;
    }
    if (cc == CURLE_WRITE_ERROR && x->too_big) {
        fmt(err, errlen, "%s: HTTP %ld with an answer longer than we keep, cut off (not a GCS server?)", shown,
            x->rs->status);
        *rc = ARCA_EFAIL;
        return GCS_DONE;
    }
    const char *hint = pc_curl_hint(in->https, x->curl_err, cc, rc);
    pc_curl_describe(x->curl_err, cc, why, sizeof why);
    if (hint || (!x->stalled && !pc_curl_transient(cc))) {
        fmt(err, errlen, "%s: %s%s%s%s", shown, why, hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "");
        if (!hint)
            *rc = cc == CURLE_OUT_OF_MEMORY ? ARCA_ENOMEM : ARCA_EFAIL;
        return GCS_DONE;
    }
    x->rs->transport = 1;
    if (x->stalled)
        fmt(last, lastlen, "%s: no progress for %lld s (timeout)", shown, (long long)in->cfg->timeout);
    else
        fmt(last, lastlen, "%s: %s", shown, why);
    (void)rq;
    return GCS_RETRY;
}

/* An HTTP answer: success, an expected 404, a failure, or worth another try. */
static int judge_answer(gcs_inst *in, const gcs_request *rq, gcs_response *rs, xfer *x, const char *shown, int *rc,
                        char *last, size_t lastlen, char *err, size_t errlen)
{
    long st = rs->status;
    if ((st >= 200 && st < 300) || (st == 308 && rq->once)) {
        rs->body_len = x->body.len;
        rs->body = x->body.p; /* now the response's */
        memset(&x->body, 0, sizeof x->body);
        *rc = 0;
        return GCS_DONE;
    }
    if (st == 404 && rq->missing_ok) {
        *rc = ARCA_ENOENT;
        return GCS_DONE;
    }
    gcs_error_parse(x->body.p, x->body.len, rs->reason, sizeof rs->reason, rs->message, sizeof rs->message);
    const char *hint = gcs_hint(st, rs->reason);
    fmt(last, lastlen, "%s: HTTP %ld%s%s%s%s%s%s%s", shown, st, rs->reason[0] ? " " : "", rs->reason,
        rs->message[0] ? ": " : "", rs->message, hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "");
    if (gcs_classify(0, st, rs->reason) == PC_RETRY_FAIL) {
        fmt(err, errlen, "%s", last);
        *rc = st == 404 ? ARCA_ENOENT : st == 412 ? ARCA_EEXIST : ARCA_EFAIL;
        return GCS_DONE;
    }
    return GCS_RETRY;
}

/* "METHOD what-or-URL" for messages; a session URI's upload_id is not shown
 * whole (it authorises the upload). */
static void shown_of(const gcs_request *rq, char *out, size_t cap)
{
    if (rq->what) {
        snprintf(out, cap, "%s %s", rq->method, rq->what);
        return;
    }
    const char *q = strstr(rq->url, "upload_id=");
    if (q)
        snprintf(out, cap, "%s %.*supload_id=%.8s...", rq->method, (int)(q - rq->url), rq->url, q + 10);
    else
        snprintf(out, cap, "%s %.900s", rq->method, rq->url);
}

/* After a 401: one new token and one more try, then a clear error. 1 to retry. */
static int after_401(gcs_inst *in, gcs_response *rs, int *refreshed, const char *last, char *err, size_t errlen)
{
    char src[600];
    if (rs->status != 401)
        return 0;
    if (!*refreshed && gcs_auth_invalidate(in, NULL)) {
        *refreshed = 1;
        in->host->log(in->host, ARCA_LOG_INFO, "%s; fetching a new access token and trying again", last);
        return 1;
    }
    gcs_auth_source(in, src, sizeof src);
    fmt(err, errlen, "%s [credentials: %s]%s", last, src,
        *refreshed ? " (a new token was refused too)" : " (a fixed token cannot be renewed: give a fresh access_token)");
    return 0;
}

int gcs_do(gcs_inst *in, CURL *easy, const gcs_request *rq, gcs_response *rs, char *err, size_t errlen)
{
    const arca_host *h = in->host;
    char shown[1024], last[1400] = "", msg[768];
    pc_retry budget;
    CURL *own = NULL;
    int rc = ARCA_EFAIL, refreshed = 0;

    memset(rs, 0, sizeof *rs);
    err[0] = 0;
    if (!easy && !(easy = own = pc_curl_get(&in->pool))) {
        fmt(err, errlen, "cannot create a curl handle");
        return ARCA_ENOMEM;
    }
    shown_of(rq, shown, sizeof shown);
    pc_retry_start(&budget, rq->once ? 0 : rq->quick ? 2 : in->cfg->retries, rq->quick ? 5 : in->cfg->retry_time);
    for (;;) {
        xfer x = {.in = in, .rq = rq, .rs = rs, .easy = easy};
        int auth_rc = 0, verdict;
        uint64_t wait;

        pc_retry_attempt(&budget);
        gcs_response_free(rs);
        if (rq->reset)
            rq->reset(rq->ud);
        CURLcode cc = attempt(in, easy, rq, &x, &auth_rc, msg, sizeof msg);
        if (auth_rc) {
            fmt(err, errlen, "%s", msg);
            pc_buf_free(&x.body);
            rc = auth_rc;
            break;
        }
        verdict = cc != CURLE_OK ? judge_transport(in, rq, &x, cc, shown, &rc, last, sizeof last, err, errlen)
                                 : judge_answer(in, rq, rs, &x, shown, &rc, last, sizeof last, err, errlen);
        pc_buf_free(&x.body);
        if (verdict == GCS_DONE) {
            if (rs->status == 401 && !rq->no_auth && after_401(in, rs, &refreshed, last, err, errlen))
                continue; /* not counted against the budget's verdict: one refresh only */
            break;
        }
        rs->retry = 1;
        if (rq->once || !pc_retry_next(&budget, &wait)) {
            fmt(err, errlen, "%s", last);
            if (!rq->once)
                fmt(err, errlen, "%s (gave up after %u attempt%s in %.1f s)", last, budget.tries,
                    budget.tries == 1 ? "" : "s", pc_retry_elapsed(&budget));
            rc = ARCA_EFAIL;
            break;
        }
        h->log(h, ARCA_LOG_INFO, "%s; retry %u in %.1f s", last, budget.tries, (double)wait / 1000.0);
        if (pc_retry_sleep(rq->cleanup ? NULL : h, wait) == ARCA_ECANCELED) {
            fmt(err, errlen, "%s: cancelled", shown);
            rc = ARCA_ECANCELED;
            break;
        }
    }
    if (own)
        pc_curl_put(&in->pool, own);
    return rc;
}
