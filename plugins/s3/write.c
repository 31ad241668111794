/* s3 plugin: the put side. Bytes are buffered into a part; an object that
 * fits in one part is a single PUT at commit; a larger one becomes a
 * multipart upload whose parts go out from `upload_concurrency` worker
 * threads, each with its own curl handle (and so its own connection). The
 * writer blocks when every buffer is in use: memory stays at
 * part_size x (upload_concurrency + 1), no temporary file is written.
 * Any failure aborts the upload so that no orphan parts are left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_buf.h"
#include "pc_error.h"
#include "pc_name.h"
#include "s3.h"

typedef struct s3_part {
    char *buf;
    size_t len, cap, target; /* target: this part's size when full */
    uint32_t number;
    struct s3_part *next;
} s3_part;

typedef struct s3_put {
    s3_inst *in;
    char *name, *key;
    char *upload_id;         /* NULL until the object proves larger than one part */
    char retain[21];         /* object lock retain-until of this upload, "" if none */
    const char *content_type;
    s3_part *cur;            /* being filled by put_write */
    uint32_t next_number;
    uint64_t total;

    /* shared with the workers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s3_part *qhead, *qtail;  /* full parts waiting for a worker */
    s3_part *spare;          /* buffers back from the workers */
    int nbufs, maxbufs;
    int stop;                /* no more parts will come: workers exit once idle */
    int failed;
    int fail_code;
    char err[1200];
    char **etags;            /* etags[n-1] of part n */
    uint32_t netags;
    pthread_t threads[64];
    int nthreads;
} s3_put;

static void put_fail(s3_put *p, int code, const char *msg)
{
    /* with the lock held: the first failure is the one worth reporting */
    if (!p->failed) {
        p->failed = 1;
        p->fail_code = code ? code : ARCA_EFAIL;
        snprintf(p->err, sizeof p->err, "%s", msg);
    }
    pthread_cond_broadcast(&p->cv);
}

/* The common name rules, and S3's own limit: the key (prefix + name) has at
 * most 1024 bytes. */
int s3_check_name(const s3_inst *in, const char *name)
{
    int rc = pc_check_name(in->host, name);
    size_t klen;

    if (rc)
        return rc;
    klen = strlen(in->prefix) + strlen(name);
    if (klen > S3_MAX_KEY) {
        char shown[128];
        pc_name_shown(name, shown, sizeof shown);
        return in->host->error(in->host, ARCA_ECONFIG,
                               "object name '%s' refused: with prefix '%s' its key is %zu bytes, more than S3's %d",
                               shown, in->prefix, klen, S3_MAX_KEY);
    }
    return 0;
}

/* The headers that describe a new object: storage class, encryption, lock. */
static size_t object_headers(s3_put *p, s3_kv *hd)
{
    const s3_config *cfg = p->in->cfg;
    size_t n = 0;
    hd[n++] = (s3_kv){"content-type", p->content_type};
    if (cfg->storage_class && *cfg->storage_class)
        hd[n++] = (s3_kv){"x-amz-storage-class", cfg->storage_class};
    if (cfg->sse == S3_SSE_AES256)
        hd[n++] = (s3_kv){"x-amz-server-side-encryption", "AES256"};
    if (cfg->sse == S3_SSE_KMS) {
        hd[n++] = (s3_kv){"x-amz-server-side-encryption", "aws:kms"};
        if (cfg->sse_kms_key_id && *cfg->sse_kms_key_id)
            hd[n++] = (s3_kv){"x-amz-server-side-encryption-aws-kms-key-id", cfg->sse_kms_key_id};
    }
    if (cfg->object_lock_mode != S3_LOCK_NONE) {
        hd[n++] = (s3_kv){"x-amz-object-lock-mode", cfg->object_lock_mode == S3_LOCK_COMPLIANCE ? "COMPLIANCE"
                                                                                                  : "GOVERNANCE"};
        hd[n++] = (s3_kv){"x-amz-object-lock-retain-until-date", p->retain};
    }
    return n;
}

static int want_md5(const s3_inst *in)
{
    return in->cfg->content_md5 || in->cfg->object_lock_mode != S3_LOCK_NONE;
}

/* ---- workers ----------------------------------------------------------------- */

static int upload_part(s3_put *p, CURL *easy, s3_part *part, char *etag, size_t etaglen, char *err, size_t errlen)
{
    char num[16], sha[65], md5[25];
    s3_kv q[2], hd[1];
    size_t nh = 0;
    s3_response rs;
    int rc;

    snprintf(num, sizeof num, "%u", part->number);
    q[0] = (s3_kv){"partNumber", num};
    q[1] = (s3_kv){"uploadId", p->upload_id};
    s3_sha256_hex(part->buf, part->len, sha); /* the signed payload hash: S3 checks it */
    if (want_md5(p->in)) {
        s3_md5_base64(part->buf, part->len, md5);
        hd[nh++] = (s3_kv){"content-md5", md5};
    }
    s3_request rq = {.method = "PUT", .key = p->key, .query = q, .nquery = 2, .headers = hd, .nheaders = nh,
                     .body = part->buf, .body_len = part->len, .payload_sha256 = sha};
    rc = s3_do(p->in, easy, &rq, &rs, err, errlen);
    if (!rc) {
        if (!rs.etag[0]) {
            snprintf(err, errlen, "PUT part %u of '%s': the answer has no ETag", part->number, p->key);
            rc = ARCA_EFAIL;
        } else {
            snprintf(etag, etaglen, "%s", rs.etag);
        }
    }
    s3_response_free(&rs);
    return rc;
}

static void *worker(void *arg)
{
    s3_put *p = arg;
    CURL *easy = curl_easy_init();
    char err[1200], etag[160];

    pthread_mutex_lock(&p->mu);
    if (!easy)
        put_fail(p, ARCA_ENOMEM, "cannot create a curl handle");
    for (;;) {
        while (!p->qhead && !p->stop && !p->failed)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->failed || !p->qhead)
            break;
        s3_part *part = p->qhead;
        p->qhead = part->next;
        if (!p->qhead)
            p->qtail = NULL;
        pthread_mutex_unlock(&p->mu);

        int rc = upload_part(p, easy, part, etag, sizeof etag, err, sizeof err);

        pthread_mutex_lock(&p->mu);
        if (rc) {
            put_fail(p, rc, err);
        } else if (!(p->etags[part->number - 1] = strdup(etag))) {
            put_fail(p, ARCA_ENOMEM, "out of memory");
        }
        part->len = 0;
        part->next = p->spare;
        p->spare = part;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (easy)
        s3_easy_put(p->in, easy); /* its connection serves later requests */
    return NULL;
}

/* ---- multipart control ---------------------------------------------------------- */

static int start_multipart(s3_put *p)
{
    s3_inst *in = p->in;
    s3_kv q[1] = {{"uploads", ""}}, hd[8];
    s3_response rs;
    char err[1200];
    size_t nh = object_headers(p, hd);
    s3_request rq = {.method = "POST", .key = p->key, .query = q, .nquery = 1, .headers = hd, .nheaders = nh};
    int rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);

    if (!rc) {
        s3x_doc *doc = s3x_parse(rs.body, rs.body_len);
        p->upload_id = doc ? s3x_text(doc, NULL, "UploadId") : NULL;
        s3x_free(doc);
        if (!p->upload_id || !*p->upload_id) {
            snprintf(err, sizeof err, "POST %s?uploads: the answer has no UploadId", p->key);
            free(p->upload_id);
            p->upload_id = NULL;
            rc = ARCA_EFAIL;
        }
    }
    s3_response_free(&rs);
    if (rc)
        return pc_handle_error(in->host, p, rc, "cannot start the multipart upload of '%s': %s", p->name, err);
    if (!(p->etags = calloc(S3_MAX_PARTS, sizeof *p->etags)))
        return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory");
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < in->concurrency && i < 64; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p))
            break;
        p->nthreads++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!p->nthreads)
        return pc_handle_error(in->host, p, ARCA_EFAIL, "cannot start upload threads");
    return 0;
}

/* Stops the workers (after the queue drains, unless failed) and waits for them. */
static void join_workers(s3_put *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

static void abort_multipart(s3_put *p)
{
    s3_inst *in = p->in;
    s3_kv q[1];
    s3_response rs;
    char err[1200];
    if (!p->upload_id)
        return;
    q[0] = (s3_kv){"uploadId", p->upload_id};
    s3_request rq = {.method = "DELETE", .key = p->key, .query = q, .nquery = 1, .cleanup = 1, .missing_ok = 1};
    int rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
    s3_response_free(&rs);
    if (rc && rc != ARCA_ENOENT)
        in->host->log(in->host, ARCA_LOG_ERROR,
                      "cannot abort the multipart upload %s of '%s': %s; remove it with "
                      "`aws s3api abort-multipart-upload --bucket %s --key %s --upload-id %s` or a lifecycle rule",
                      p->upload_id, p->key, err, in->cfg->bucket, p->key, p->upload_id);
    free(p->upload_id);
    p->upload_id = NULL;
}

static void free_part(s3_part *part)
{
    if (part) {
        free(part->buf);
        free(part);
    }
}

static void put_free(s3_put *p)
{
    if (!p)
        return;
    free_part(p->cur);
    for (s3_part *x = p->qhead, *n; x; x = n) {
        n = x->next;
        free_part(x);
    }
    for (s3_part *x = p->spare, *n; x; x = n) {
        n = x->next;
        free_part(x);
    }
    if (p->etags) {
        for (uint32_t i = 0; i < S3_MAX_PARTS; i++)
            free(p->etags[i]);
        free(p->etags);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->upload_id);
    free(p->name);
    free(p->key);
    free(p);
}

/* ---- the ops -------------------------------------------------------------------- */

int s3_put_open(void *inst, const char *name, void **out)
{
    s3_inst *in = inst;
    s3_put *p;
    int rc;

    *out = NULL;
    if ((rc = s3_check_name(in, name)))
        return rc;
    if (!(p = calloc(1, sizeof *p)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->in = in;
    p->name = strdup(name);
    p->key = s3_key_of(in, name);
    p->next_number = 1;
    p->maxbufs = in->concurrency + 1;
    size_t nl = strlen(name);
    p->content_type = (nl > 5 && !strcmp(name + nl - 5, ".json")) ? "application/json" : "application/octet-stream";
    if (in->retain_until)
        snprintf(p->retain, sizeof p->retain, "%s", in->retain_until);
    else if (in->retain_days)
        s3_format_iso8601(time(NULL) + (time_t)in->retain_days * 86400, p->retain);
    if (!p->name || !p->key) {
        put_free(p);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

/* A buffer for the next part: a spare one, a new one while under the bound,
 * else wait for a worker to hand one back. */
static int next_buffer(s3_put *p)
{
    s3_inst *in = p->in;
    s3_part *part = NULL;
    uint64_t target = s3_part_size_for(in->part_size, p->next_number);

    pthread_mutex_lock(&p->mu);
    while (!p->failed && !p->spare && p->nbufs >= p->maxbufs)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return pc_handle_error(in->host, p, p->fail_code, "upload of '%s' failed: %s", p->name, p->err);
    }
    if (p->spare) {
        part = p->spare;
        p->spare = part->next;
    } else {
        p->nbufs++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!part && !(part = calloc(1, sizeof *part)))
        return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory");
    if (part->cap < target && p->next_number > 1) {
        /* parts after the first are full size at once: no realloc churn */
        char *b = realloc(part->buf, (size_t)target);
        if (!b) {
            free_part(part);
            return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory for a %llu-byte part",
                                   (unsigned long long)target);
        }
        part->buf = b;
        part->cap = (size_t)target;
    }
    part->len = 0;
    part->target = (size_t)target;
    part->number = p->next_number++;
    part->next = NULL;
    p->cur = part;
    return 0;
}

/* Hands the full current part to the workers (starting the upload first). */
static int flush_part(s3_put *p)
{
    int rc;
    if (p->next_number - 1 >= S3_MAX_PARTS)
        return pc_handle_error(p->in->host, p, ARCA_EFAIL, "'%s' needs more than %u parts (over 5 TiB?)", p->name,
                                  S3_MAX_PARTS);
    if (!p->upload_id && (rc = start_multipart(p)))
        return rc;
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return pc_handle_error(p->in->host, p, p->fail_code, "upload of '%s' failed: %s", p->name, p->err);
    }
    if (p->qtail)
        p->qtail->next = p->cur;
    else
        p->qhead = p->cur;
    p->qtail = p->cur;
    p->cur = NULL;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int s3_put_write(void *put, const void *buf, size_t len)
{
    s3_put *p = put;
    const char *src = buf;
    int rc;

    while (len) {
        if (!p->cur && (rc = next_buffer(p)))
            return rc;
        s3_part *c = p->cur;
        if (c->len == c->target) {
            /* full, and more data is coming: it is not the last part */
            if ((rc = flush_part(p)))
                return rc;
            continue;
        }
        size_t n = c->target - c->len;
        if (n > len)
            n = len;
        if (c->len + n > c->cap) { /* the first buffer grows: small objects stay small */
            size_t cap = c->cap ? c->cap : 256 * 1024;
            while (cap < c->len + n)
                cap *= 2;
            if (cap > c->target)
                cap = c->target;
            char *b = realloc(c->buf, cap);
            if (!b)
                return pc_handle_error(p->in->host, p, ARCA_ENOMEM, "out of memory");
            c->buf = b;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, src, n);
        c->len += n;
        p->total += n;
        src += n;
        len -= n;
    }
    return 0;
}

static int single_put(s3_put *p)
{
    s3_inst *in = p->in;
    s3_kv hd[9];
    s3_response rs;
    char err[1200], md5[25];
    const char *body = p->cur ? p->cur->buf : "";
    size_t len = p->cur ? p->cur->len : 0;
    size_t nh = object_headers(p, hd);
    if (want_md5(in)) {
        s3_md5_base64(body, len, md5);
        hd[nh++] = (s3_kv){"content-md5", md5};
    }
    s3_request rq = {.method = "PUT", .key = p->key, .headers = hd, .nheaders = nh, .body = body, .body_len = len};
    int rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
    s3_response_free(&rs);
    if (rc)
        return pc_handle_error(in->host, p, rc, "cannot store '%s': %s", p->name, err);
    return 0;
}

/* After CompleteMultipartUpload got no clear answer: is the object there, whole? */
static int completed_anyway(s3_put *p, uint32_t nparts)
{
    uint64_t size = 0;
    char etag[160], err[1200], suffix[24];
    if (s3_head(p->in, p->key, &size, etag, sizeof etag, err, sizeof err))
        return 0;
    snprintf(suffix, sizeof suffix, "-%u\"", nparts);
    size_t el = strlen(etag), sl = strlen(suffix);
    return size == p->total && el > sl && !strcmp(etag + el - sl, suffix);
}

/* 1 when the answer is one whole, well-formed result document that names an
 * ETag; 2 when it is whole but its ETag is empty (Ceph RGW 16 answers so), and
 * then the stored object must prove the completion; 0 otherwise. */
static int complete_result_ok(const s3_response *rs)
{
    s3x_doc *doc = s3x_parse(rs->body, rs->body_len);
    char etag[160] = "";
    int ok = doc && !strncmp(s3x_root_name(doc), "CompleteMultipartUpload", 23) &&
             s3x_text_buf(doc, NULL, "ETag", etag, sizeof etag);
    s3x_free(doc);
    return ok ? (etag[0] ? 1 : 2) : 0;
}

static int complete_multipart(s3_put *p)
{
    s3_inst *in = p->in;
    uint32_t nparts = p->next_number - 1;
    pc_buf body = {0};
    char err[1200];
    s3_kv q[1] = {{"uploadId", p->upload_id}}, hd[1] = {{"content-type", "application/xml"}};
    s3_response rs;
    int rc;

    pc_buf_str(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (uint32_t i = 0; i < nparts; i++) {
        if (!p->etags[i]) {
            pc_buf_free(&body);
            return pc_handle_error(in->host, p, ARCA_EFAIL, "upload of '%s': part %u has no ETag", p->name, i + 1);
        }
        pc_buf_printf(&body, "<Part><PartNumber>%u</PartNumber><ETag>%.150s</ETag></Part>", i + 1, p->etags[i]);
    }
    pc_buf_str(&body, "</CompleteMultipartUpload>");
    size_t len = body.len;
    char *xml = pc_buf_take(&body);
    if (!xml)
        return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory");
    s3_request rq = {.method = "POST", .key = p->key, .query = q, .nquery = 1, .headers = hd, .nheaders = 1,
                     .body = xml, .body_len = len};
    rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
    free(xml);
    int shape = rc ? 0 : complete_result_ok(&rs);
    if (shape == 2 && completed_anyway(p, nparts))
        shape = 1; /* size and the parts' ETag suffix on the stored object agree */
    if (!rc && shape != 1) {
        /* a 200 must carry the whole result (S3: ...Result, moto: ...Response) with
         * its ETag; an empty, cut or malformed answer completed nothing we can rely on */
        char *url = s3_url_of(in, p->key);
        snprintf(err, sizeof err, "POST %s?uploadId=%s: HTTP %ld %s", url ? url : p->key, p->upload_id, rs.status,
                 shape == 2 ? "with an empty ETag, and the stored object's size or ETag does not match the parts"
                            : "without a complete CompleteMultipartUploadResult");
        free(url);
        rc = ARCA_EFAIL;
    }
    if (rc == ARCA_ENOENT && !strcmp(rs.code, "NoSuchUpload") && completed_anyway(p, nparts)) {
        /* an earlier attempt completed it and its answer was lost */
        in->host->log(in->host, ARCA_LOG_INFO, "'%s': completed by an earlier attempt whose answer was lost",
                      p->name);
        rc = 0;
    }
    s3_response_free(&rs);
    if (rc)
        return pc_handle_error(in->host, p, rc == ARCA_ENOENT ? ARCA_EFAIL : rc,
                               "cannot complete the multipart upload of '%s': %s", p->name, err);
    return 0;
}

/* ---- after the commit: what was asked is what the server did ------------------ */

static const char *sse_name(int sse)
{
    return sse == S3_SSE_AES256 ? "AES256" : sse == S3_SSE_KMS ? "aws:kms" : "";
}

/* 1 when the stored object is locked in the configured mode until at least this upload's date. */
static int lock_holds(const s3_put *p, const s3_response *hd)
{
    const char *mode = p->in->cfg->object_lock_mode == S3_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE";
    int64_t until = hd->lock_until[0] ? s3_parse_iso8601(hd->lock_until) : -1, want = s3_parse_iso8601(p->retain);
    return !strcasecmp(hd->lock_mode, mode) && until > 0 && until + 1 >= want;
}

/* PutObjectRetention: some servers (Ceph RGW 16) drop the lock headers of
 * CreateMultipartUpload, so the retention is applied to the finished object. */
static int put_retention(s3_put *p, const char *version, char *err, size_t errlen)
{
    s3_inst *in = p->in;
    char body[256], md5[25];
    int n = snprintf(body, sizeof body,
                     "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s</Mode>"
                     "<RetainUntilDate>%s</RetainUntilDate></Retention>",
                     in->cfg->object_lock_mode == S3_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE", p->retain);
    s3_md5_base64(body, (size_t)n, md5);
    s3_kv q[2] = {{"retention", ""}, {"versionId", version}};
    s3_kv hd[2] = {{"content-md5", md5}, {"content-type", "application/xml"}};
    s3_request rq = {.method = "PUT", .key = p->key, .query = q, .nquery = version[0] ? 2 : 1, .headers = hd,
                     .nheaders = 2, .body = body, .body_len = (size_t)n};
    s3_response rs;
    int rc = s3_do(in, NULL, &rq, &rs, err, errlen);
    s3_response_free(&rs);
    return rc;
}

/* Removes an object that did not turn out as asked; says so when it cannot. */
static void remove_unwanted(s3_put *p, const char *version)
{
    s3_inst *in = p->in;
    char err[1200];
    s3_kv q[1] = {{"versionId", version}};
    s3_request rq = {.method = "DELETE", .key = p->key, .query = q, .nquery = version[0] ? 1 : 0, .cleanup = 1,
                     .missing_ok = 1};
    s3_response rs;
    int rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
    s3_response_free(&rs);
    if (rc && rc != ARCA_ENOENT)
        in->host->log(in->host, ARCA_LOG_ERROR, "'%s' could not be removed again: %s", p->name, err);
}

/* Encryption and retention are checked on the stored object (HEAD), never
 * assumed from a 200: a compliance bundle that is not locked, or a backup
 * stored in clear, is a failure, and the object goes. */
static int verify_stored(s3_put *p)
{
    s3_inst *in = p->in;
    const s3_config *cfg = in->cfg;
    s3_response hd;
    char err[1200], why[400] = "";
    int rc;
    if (cfg->sse == S3_SSE_NONE && cfg->object_lock_mode == S3_LOCK_NONE)
        return 0;
    if ((rc = s3_head_full(in, p->key, &hd, err, sizeof err))) {
        s3_response_free(&hd);
        return pc_handle_error(in->host, p, rc, "cannot check how '%s' was stored: %s", p->name, err);
    }
    char version[160];
    snprintf(version, sizeof version, "%s", strcmp(hd.version_id, "null") ? hd.version_id : "");
    if (cfg->sse != S3_SSE_NONE && strcasecmp(hd.sse, sse_name(cfg->sse)))
        snprintf(why, sizeof why, "sse = %s was asked for, but the server stored it %s%s", sse_name(cfg->sse),
                 hd.sse[0] ? "with " : "without server-side encryption", hd.sse);
    if (!why[0] && cfg->object_lock_mode != S3_LOCK_NONE && !lock_holds(p, &hd)) {
        /* not locked as asked: apply the retention to the object, then look again */
        rc = put_retention(p, version, err, sizeof err);
        s3_response_free(&hd);
        if (!rc)
            rc = s3_head_full(in, p->key, &hd, err, sizeof err);
        if (rc)
            snprintf(why, sizeof why, "the server did not lock it, and setting its retention failed: %.300s", err);
        else if (!lock_holds(p, &hd))
            snprintf(why, sizeof why, "the server reports %s%s%s after PutObjectRetention, not %s until %s",
                     hd.lock_mode[0] ? hd.lock_mode : "no lock", hd.lock_until[0] ? " until " : "", hd.lock_until,
                     cfg->object_lock_mode == S3_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE", p->retain);
        else
            in->host->log(in->host, ARCA_LOG_INFO, "'%s': locked by PutObjectRetention (the upload's lock headers "
                                                   "were not applied by the server)", p->name);
    }
    s3_response_free(&hd);
    if (!why[0])
        return 0;
    remove_unwanted(p, version);
    return pc_handle_error(in->host, p, ARCA_EFAIL, "'%s' was not stored as configured: %s; it was removed", p->name,
                           why);
}

int s3_put_commit(void *put)
{
    s3_put *p = put;
    s3_inst *in = p->in;
    int rc;

    if (!p->upload_id) {
        rc = single_put(p);
        if (!rc)
            rc = verify_stored(p);
        put_free(p);
        return rc;
    }
    if (p->cur && p->cur->len)
        rc = flush_part(p);
    else
        rc = 0;
    join_workers(p);
    if (!rc && p->failed)
        rc = pc_handle_error(in->host, p, p->fail_code, "upload of '%s' failed: %s", p->name, p->err);
    if (!rc && (rc = complete_multipart(p))) {
        /* it may still have become visible (an ambiguous answer): make sure it is not */
        char err[1200];
        s3_response rs = {0};
        s3_request rq = {.method = "DELETE", .key = p->key, .cleanup = 1, .missing_ok = 1};
        if (completed_anyway(p, p->next_number - 1) && s3_do(in, NULL, &rq, &rs, err, sizeof err) == 0)
            in->host->log(in->host, ARCA_LOG_INFO, "removed '%s', completed despite the failure", p->name);
        s3_response_free(&rs);
    }
    if (rc)
        abort_multipart(p);
    else
        in->host->log(in->host, ARCA_LOG_INFO, "'%s': %llu bytes in %u parts", p->name,
                      (unsigned long long)p->total, p->next_number - 1);
    if (!rc)
        rc = verify_stored(p);
    put_free(p);
    return rc;
}

void s3_put_abort(void *put)
{
    s3_put *p = put;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (!p->failed)
        put_fail(p, ARCA_ECANCELED, "aborted");
    pthread_mutex_unlock(&p->mu);
    join_workers(p);
    abort_multipart(p);
    put_free(p);
}
