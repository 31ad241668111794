/* s3 plugin: one S3 request over libcurl, signed with SigV4 (sigv4.c), sent
 * again on transient failures per the common retry policy (pc_retry.h) refined
 * by S3's codes (codes.c), within `retries` attempts and `retry_time` seconds.
 * Errors name the URL (never a credential), the HTTP status, S3's Code and
 * Message, and a hint. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pc_buf.h"
#include "pc_retry.h"
#include "s3.h"

#define S3_KEEP_MAX ((size_t)16 << 20) /* largest answer kept (a 1000-key listing is ~400 KB) */
#define S3_ERR_KEEP ((size_t)64 << 10) /* an error body is small: more is not S3 talking */
/* Every request ends by a deadline: 2 x timeout plus its bytes at this floor
 * rate, so a server dripping a byte every few seconds cannot hold a request
 * open forever (the stall check alone, which needs `timeout` seconds of
 * silence, would not notice). */
#define S3_FLOOR_RATE (64u << 10)

void s3_response_free(s3_response *rs)
{
    free(rs->body);
    memset(rs, 0, sizeof *rs);
}

CURL *s3_easy_get(s3_inst *in)
{
    return pc_curl_get(&in->pool);
}

void s3_easy_put(s3_inst *in, CURL *easy)
{
    pc_curl_put(&in->pool, easy);
}

char *s3_key_of(const s3_inst *in, const char *name)
{
    size_t n = strlen(in->prefix) + strlen(name) + 1;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s%s", in->prefix, name);
    return k;
}

/* The unencoded request path: /key (virtual-hosted) or /bucket/key. */
static char *path_of(const s3_inst *in, const char *key)
{
    size_t n = strlen(in->base_path) + (key ? strlen(key) : 0) + 3;
    char *p = malloc(n);
    if (!p)
        return NULL;
    if (key)
        snprintf(p, n, "%s/%s", in->base_path, key);
    else
        snprintf(p, n, "%s", *in->base_path ? in->base_path : "/");
    return p;
}

char *s3_url_of(const s3_inst *in, const char *key)
{
    char *path = path_of(in, key), *enc = path ? s3_uri_encode(path, 1) : NULL, *url = NULL;
    if (enc) {
        size_t n = strlen(in->scheme) + strlen(in->authority) + strlen(enc) + 8;
        if ((url = malloc(n)))
            snprintf(url, n, "%s://%s%s", in->scheme, in->authority, enc);
    }
    free(path);
    free(enc);
    return url;
}

/* ---- one transfer -------------------------------------------------------------- */

typedef struct xfer {
    s3_inst *in;
    const s3_request *rq;
    s3_response *rs;
    CURL *easy;
    size_t upos;       /* upload position in rq->body */
    pc_buf body;       /* kept answer */
    int overflow;      /* the answer was larger than we keep (or memory ran out) */
    int sink_failed;
    int too_big;       /* the answer passed its cap: the transfer was cut */
    int stalled;       /* no byte moved either way for `timeout` seconds */
    uint64_t moved;    /* bytes moved so far, both ways */
    uint64_t last_move_ms;
    char region[64];   /* x-amz-bucket-region */
    char request_id[96];
    char curl_err[CURL_ERROR_SIZE]; /* curl's own account of a failed transfer */
} xfer;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t want = size * nmemb, left = x->rq->body_len - x->upos;
    if (want > left)
        want = left;
    if (want)
        memcpy(dst, (const char *)x->rq->body + x->upos, want);
    x->upos += want;
    return want;
}

/* 0 when the answer grew past `limit`: the transfer is then cut, not read on. */
static int keep(xfer *x, const char *p, size_t n, size_t limit)
{
    if (x->body.len + n > limit) {
        x->overflow = x->too_big = 1;
        return 0;
    }
    pc_buf_add(&x->body, p, n);
    if (x->body.oom) {
        x->overflow = 1;
        return 0;
    }
    return 1;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && x->rq->sink) {
        size_t took = x->rq->sink(x->rq->ud, p, n);
        if (took != n)
            x->sink_failed = 1;
        return took;
    }
    return keep(x, p, n, (status >= 200 && status < 300) ? S3_KEEP_MAX : S3_ERR_KEEP) ? n : 0;
}

static void copy_header_value(const char *v, size_t n, char *out, size_t cap)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    snprintf(out, cap, "%.*s", (int)n, v);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (n > 5 && !strncmp(p, "HTTP/", 5)) { /* a new answer (after a 100 or a redirect) */
        s3_response *r = x->rs;
        r->etag[0] = r->sse[0] = r->lock_mode[0] = r->lock_until[0] = r->legal_hold[0] = r->version_id[0] = 0;
        r->has_length = r->delete_marker = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - p), vl = n - nl - 1;
    if (nl == 4 && !strncasecmp(p, "etag", 4)) {
        copy_header_value(colon + 1, vl, x->rs->etag, sizeof x->rs->etag);
    } else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
        char tmp[32];
        copy_header_value(colon + 1, vl, tmp, sizeof tmp);
        x->rs->content_length = strtoull(tmp, NULL, 10);
        x->rs->has_length = 1;
    } else if (nl == 19 && !strncasecmp(p, "x-amz-bucket-region", 19)) {
        copy_header_value(colon + 1, vl, x->region, sizeof x->region);
    } else if (nl == 16 && !strncasecmp(p, "x-amz-request-id", 16)) {
        copy_header_value(colon + 1, vl, x->request_id, sizeof x->request_id);
    } else if (nl == 28 && !strncasecmp(p, "x-amz-server-side-encryption", 28)) {
        copy_header_value(colon + 1, vl, x->rs->sse, sizeof x->rs->sse);
    } else if (nl == 22 && !strncasecmp(p, "x-amz-object-lock-mode", 22)) {
        copy_header_value(colon + 1, vl, x->rs->lock_mode, sizeof x->rs->lock_mode);
    } else if (nl == 35 && !strncasecmp(p, "x-amz-object-lock-retain-until-date", 35)) {
        copy_header_value(colon + 1, vl, x->rs->lock_until, sizeof x->rs->lock_until);
    } else if (nl == 28 && !strncasecmp(p, "x-amz-object-lock-legal-hold", 28)) {
        copy_header_value(colon + 1, vl, x->rs->legal_hold, sizeof x->rs->legal_hold);
    } else if (nl == 16 && !strncasecmp(p, "x-amz-version-id", 16)) {
        copy_header_value(colon + 1, vl, x->rs->version_id, sizeof x->rs->version_id);
    } else if (nl == 19 && !strncasecmp(p, "x-amz-delete-marker", 19)) {
        char tmp[8];
        copy_header_value(colon + 1, vl, tmp, sizeof tmp);
        x->rs->delete_marker = !strcasecmp(tmp, "true");
    }
    return n;
}

/* curl calls this at least once a second, also while nothing moves: the
 * place to notice a stall (precisely, unlike LOW_SPEED_TIME, whose average
 * over a window of several seconds hides a stall after a burst) and a
 * cancellation. */
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

typedef struct hdrs {
    struct curl_slist *list;
    int oom;
} hdrs;

static void hdr_add(hdrs *h, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    struct curl_slist *l;
    if (!line) {
        h->oom = 1;
        return;
    }
    snprintf(line, n, "%s: %s", name, value);
    if (!(l = curl_slist_append(h->list, line)))
        h->oom = 1;
    else
        h->list = l;
    explicit_bzero(line, n);
    free(line);
}

static void fmt(char *err, size_t errlen, const char *f, ...) ARCA_PRINTF(3, 4);
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

/* One attempt: sign with fresh credentials and date, send, read the answer.
 * Returns the curl code; *cred_rc gets a credential failure (then nothing was sent). */
static CURLcode attempt(s3_inst *in, CURL *easy, const s3_request *rq, const char *path, const char *query,
                        const char *payload_hash, xfer *x, int *cred_rc, char *err, size_t errlen)
{
    const s3_config *cfg = in->cfg;
    s3_creds cr = {0};
    char amz_date[17], *auth = NULL, *url = NULL, *upath = NULL;
    s3_kv *sh = NULL;
    size_t nsh = 0;
    hdrs h = {0};
    CURLcode cc = CURLE_OUT_OF_MEMORY;

    *cred_rc = 0;
    if ((*cred_rc = s3_creds_get(in, &cr, err, errlen)))
        return CURLE_OK;
    s3_amz_date(time(NULL), amz_date);

    /* every header we send is signed, except Content-Length, which curl writes */
    if (!(sh = calloc(rq->nheaders + 4, sizeof *sh)))
        goto done;
    sh[nsh++] = (s3_kv){"host", in->authority};
    sh[nsh++] = (s3_kv){"x-amz-content-sha256", payload_hash};
    sh[nsh++] = (s3_kv){"x-amz-date", amz_date};
    if (cr.token && *cr.token)
        sh[nsh++] = (s3_kv){"x-amz-security-token", cr.token};
    for (size_t i = 0; i < rq->nheaders; i++)
        sh[nsh++] = rq->headers[i];
    s3_sign_input si = {
        .method = rq->method, .path = path, .query = rq->query, .nquery = rq->nquery,
        .headers = sh, .nheaders = nsh, .payload_hash = payload_hash, .region = in->region,
        .service = "s3", .amz_date = amz_date, .access_key = cr.akid, .secret_key = cr.secret,
    };
    if (!(auth = s3_authorization(&si, NULL)))
        goto done;
    for (size_t i = 0; i < nsh; i++)
        hdr_add(&h, sh[i].name, sh[i].value);
    hdr_add(&h, "authorization", auth);
    /* no 100-continue round trip per part; curl then sends the body at once */
    struct curl_slist *l = curl_slist_append(h.list, "Expect:");
    if (l)
        h.list = l;
    if (h.oom || !l)
        goto done;

    upath = s3_uri_encode(path, 1);
    if (!upath)
        goto done;
    size_t ulen = strlen(in->scheme) + strlen(in->authority) + strlen(upath) + strlen(query) + 8;
    if (!(url = malloc(ulen)))
        goto done;
    snprintf(url, ulen, "%s://%s%s%s%s", in->scheme, in->authority, upath, *query ? "?" : "", query);

    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    pc_curl_common(easy, &in->pool, x->curl_err, cfg->verify_tls, cfg->ca_file);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h.list);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "arca-s3/" "1.0");
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)(cfg->timeout < 30 ? cfg->timeout : 30));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long)((2 * (uint64_t)cfg->timeout + (rq->body_len + rq->expect) / S3_FLOOR_RATE) * 1000));
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST")) {
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(easy, CURLOPT_READDATA, x);
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
        if (strcmp(rq->method, "PUT"))
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, rq->method);
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    cc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->rs->status);
    /* the handle keeps pointers to these until the next reset */
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
done:
    curl_slist_free_all(h.list);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free(sh);
    free(url);
    free(upath);
    s3_creds_free(&cr);
    return cc;
}

/* What went wrong below HTTP, in curl's words (its error buffer says more than
 * curl_easy_strerror: which name a certificate lacks, what the TLS library saw). */
static void describe_curl(const xfer *x, CURLcode cc, char *out, size_t cap)
{
    pc_curl_describe(x->curl_err, cc, out, cap);
}

/* A failure no retry can mend, with a hint that points the right way; NULL
 * for one worth retrying or without a better word. *rc gets its status. */
static const char *config_failure(const s3_inst *in, const xfer *x, CURLcode cc, int *rc)
{
    return pc_curl_hint(!strcmp(in->scheme, "https"), x->curl_err, cc, rc);
}

/* The outcome of one attempt. */
enum { S3_DONE = 0, S3_RETRY = 1 };

/* A transfer that ended below HTTP or was cut: final (S3_DONE with *rc and
 * err set) unless it is worth another try (S3_RETRY, `last` describes it). */
static int judge_transport(const s3_inst *in, const s3_request *rq, xfer *x, CURLcode cc, const char *shown, int *rc,
                           char *last, size_t lastlen, char *err, size_t errlen)
{
    long status = x->rs->status;
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        fmt(err, errlen, "%s: cancelled", shown);
        *rc = ARCA_ECANCELED;
        return S3_DONE;
    }
    if (cc == CURLE_WRITE_ERROR && x->sink_failed) {
        fmt(err, errlen, "%s: the answer did not match the request (more data than asked for?)", shown);
        *rc = ARCA_EINTEGRITY;
        return S3_DONE;
    }
    if (cc == CURLE_WRITE_ERROR && x->too_big) {
        fmt(err, errlen, "%s: HTTP %ld with an answer longer than %zu KiB, cut off (not an S3 server?)", shown,
            status, (status >= 200 && status < 300 ? S3_KEEP_MAX : S3_ERR_KEEP) >> 10);
        *rc = ARCA_EFAIL;
        return S3_DONE;
    }
    const char *cfg_hint = config_failure(in, x, cc, rc);
    char why[CURL_ERROR_SIZE + 128];
    describe_curl(x, cc, why, sizeof why);
    if (cfg_hint || !pc_curl_transient(cc)) {
        fmt(err, errlen, "%s: %s%s%s%s", shown, why, cfg_hint ? " (hint: " : "", cfg_hint ? cfg_hint : "",
            cfg_hint ? ")" : "");
        if (!cfg_hint)
            *rc = cc == CURLE_OUT_OF_MEMORY ? ARCA_ENOMEM : ARCA_EFAIL;
        return S3_DONE;
    }
    if (x->stalled)
        fmt(last, lastlen, "%s: no progress for %lld s (timeout)", shown, (long long)in->cfg->timeout);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        fmt(last, lastlen, "%s: not answered within its deadline (%lld s for %llu bytes)", shown,
            (long long)(2 * in->cfg->timeout + (long long)((rq->body_len + rq->expect) / S3_FLOOR_RATE)),
            (unsigned long long)(rq->body_len + rq->expect));
    else
        fmt(last, lastlen, "%s: %s", shown, why);
    return S3_RETRY;
}

/* An HTTP answer: success, an answer the caller expects (a 404 it asked to
 * see), a failure to report, or one worth retrying. */
static int judge_answer(s3_inst *in, const s3_request *rq, s3_response *rs, xfer *x, const char *shown, int *rc,
                        char *last, size_t lastlen, char *err, size_t errlen)
{
    long status = rs->status;
    char message[512] = "";
    /* the answer's S3 error code and message, if it is an <Error> document */
    if (x->body.len) {
        s3x_doc *doc = s3x_parse(x->body.p, x->body.len);
        if (doc && !strcmp(s3x_root_name(doc), "Error")) {
            s3x_text_buf(doc, NULL, "Code", rs->code, sizeof rs->code);
            s3x_text_buf(doc, NULL, "Message", message, sizeof message);
        }
        s3x_free(doc);
    }
    if (status >= 200 && status < 300 && !rs->code[0]) {
        rs->body_len = x->body.len;
        rs->body = x->body.p; /* the answer's body now belongs to rs */
        memset(&x->body, 0, sizeof x->body);
        *rc = 0;
        return S3_DONE;
    }
    if (status == 404 && rq->missing_ok) {
        *rc = ARCA_ENOENT;
        return S3_DONE;
    }
    if (!rs->code[0] && !strcmp(rq->method, "HEAD"))
        snprintf(rs->code, sizeof rs->code, "%s", status == 404 ? "NotFound" : status == 403 ? "Forbidden" : "");
    const char *hint = s3_hint(status, rs->code);
    fmt(last, lastlen, "%s: HTTP %ld%s%s%s%s%s%s%s%s%s%s", shown, status, rs->code[0] ? " " : "", rs->code,
        message[0] ? ": " : "", message, x->region[0] ? " (bucket region: " : "", x->region, x->region[0] ? ")" : "",
        hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "");
    if (x->request_id[0])
        snprintf(last + strlen(last), lastlen - strlen(last), " [request id %s]", x->request_id);
    if (s3_classify(0, status, rs->code) == PC_RETRY_FAIL) {
        fmt(err, errlen, "%s", last);
        *rc = status == 404 ? ARCA_ENOENT : ARCA_EFAIL;
        return S3_DONE;
    }
    if (!strcmp(rs->code, "ExpiredToken"))
        s3_creds_invalidate(in);
    return S3_RETRY;
}

/* "METHOD URL?query" for messages (never a credential). */
static char *shown_request(const s3_inst *in, const s3_request *rq, const char *query)
{
    char *u = s3_url_of(in, rq->key), *shown;
    size_t n = (u ? strlen(u) : 0) + strlen(query) + 32;
    if ((shown = malloc(n)))
        snprintf(shown, n, "%s %s%s%s", rq->method, u ? u : "?", *query ? "?" : "", query);
    free(u);
    return shown;
}

int s3_do(s3_inst *in, CURL *easy, const s3_request *rq, s3_response *rs, char *err, size_t errlen)
{
    const s3_config *cfg = in->cfg;
    const arca_host *h = in->host;
    char hash[65], *path = NULL, *query = NULL, *shown = NULL, last[1024] = "", msg[768];
    const char *payload_hash = rq->payload_sha256;
    pc_retry budget;
    CURL *own = NULL;
    int rc = ARCA_EFAIL;

    memset(rs, 0, sizeof *rs);
    err[0] = 0;
    if (!easy && !(easy = own = s3_easy_get(in))) {
        fmt(err, errlen, "cannot create a curl handle");
        return ARCA_ENOMEM;
    }
    if (!payload_hash) {
        s3_sha256_hex(rq->body ? rq->body : "", rq->body ? rq->body_len : 0, hash);
        payload_hash = hash;
    }
    if (!(path = path_of(in, rq->key)) || !(query = s3_canonical_query(rq->query, rq->nquery)) ||
        !(shown = shown_request(in, rq, query))) {
        fmt(err, errlen, "out of memory");
        rc = ARCA_ENOMEM;
        goto out;
    }
    pc_retry_start(&budget, cfg->retries, cfg->retry_time);
    for (;;) {
        xfer x = {.in = in, .rq = rq, .rs = rs, .easy = easy};
        int cred_rc = 0, verdict;
        uint64_t wait;

        pc_retry_attempt(&budget);
        s3_response_free(rs);
        if (rq->reset)
            rq->reset(rq->ud);
        CURLcode cc = attempt(in, easy, rq, path, query, payload_hash, &x, &cred_rc, msg, sizeof msg);
        if (cred_rc) {
            fmt(err, errlen, "%s", msg);
            rc = cred_rc;
            pc_buf_free(&x.body);
            goto out;
        }
        if (cc == CURLE_ABORTED_BY_CALLBACK && x.stalled)
            cc = CURLE_OPERATION_TIMEDOUT; /* transient: retried below */
        verdict = cc != CURLE_OK ? judge_transport(in, rq, &x, cc, shown, &rc, last, sizeof last, err, errlen)
                                 : judge_answer(in, rq, rs, &x, shown, &rc, last, sizeof last, err, errlen);
        pc_buf_free(&x.body);
        if (verdict == S3_DONE)
            goto out;
        /* retry, if the budget allows */
        if (!pc_retry_next(&budget, &wait)) {
            /* an empty reply every time from a plain-HTTP endpoint: likely a TLS port */
            int tls_port = cc == CURLE_GOT_NOTHING && !strcmp(in->scheme, "http");
            fmt(err, errlen, "%s (gave up after %u attempt%s in %.1f s)%s", last, budget.tries,
                budget.tries == 1 ? "" : "s", pc_retry_elapsed(&budget),
                tls_port ? " (hint: the port sent no HTTP answer at all: if it speaks TLS, use https://)" : "");
            rc = ARCA_EFAIL;
            goto out;
        }
        h->log(h, ARCA_LOG_INFO, "%s; retry %u in %.1f s", last, budget.tries, (double)wait / 1000.0);
        if (pc_retry_sleep(rq->cleanup ? NULL : h, wait) == ARCA_ECANCELED) {
            fmt(err, errlen, "%s: cancelled", shown);
            rc = ARCA_ECANCELED;
            goto out;
        }
    }
out:
    free(path);
    free(query);
    free(shown);
    if (own)
        s3_easy_put(in, own);
    return rc;
}
