/* gcs plugin: the put side. Bytes are buffered into chunks of chunk_size.
 * - An object that fits in one chunk is one multipart/related request at
 *   commit, its CRC32C and MD5 declared so that the server checks them.
 * - A larger one is either one resumable session (chunks sent in order by one
 *   thread while the writer fills the next: on a reset or 5xx the session is
 *   asked how much it persisted and the upload resumes there, never from the
 *   start), or, when upload_concurrency > 1 and the bucket allows it (no
 *   retention policy, no default event-based hold, STANDARD class, no
 *   retention or holds asked for), parallel part objects under
 *   PREFIX.arca-tmp/ composed into the object at commit and removed on every
 *   path (compose.c).
 * Every commit is conditional on no object of the name existing
 * (ifGenerationMatch=0): a backup never overwrites. The stored object's CRC32C
 * (and MD5 where GCS has one) must equal what was sent, else it is removed and
 * the put fails. Memory: chunk_size x (upload_concurrency + 1) buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "gcs.h"
#include "gcsput.h"
#include "pc_error.h"
#include "pc_name.h"

int gcs_check_name(const gcs_inst *in, const char *name)
{
    int rc = pc_check_name(in->host, name);
    if (rc)
        return rc;
    size_t klen = strlen(in->prefix) + strlen(name);
    if (klen > GCS_MAX_NAME) {
        char shown[128];
        pc_name_shown(name, shown, sizeof shown);
        return in->host->error(in->host, ARCA_ECONFIG,
                               "object name '%s' refused: with prefix '%s' it is %zu bytes, more than GCS's %d", shown,
                               in->prefix, klen, GCS_MAX_NAME);
    }
    return 0;
}

void put_fail(gcs_put *p, int code, const char *msg)
{
    /* lock held: the first failure is the one worth reporting */
    if (!p->failed) {
        p->failed = 1;
        p->fail_code = code ? code : ARCA_EFAIL;
        snprintf(p->err, sizeof p->err, "%s", msg);
    }
    pthread_cond_broadcast(&p->cv);
}

int put_failed_error(gcs_put *p)
{
    return pc_handle_error(p->in->host, p, p->fail_code, "upload of '%s' failed: %s", p->name, p->err);
}

/* The metadata of the object being made: name, type, class, retention, holds. */
json_t *put_metadata(const gcs_put *p, const char *objname)
{
    const gcs_config *cfg = p->in->cfg;
    json_t *m = json_pack("{s:s, s:s}", "name", objname, "contentType", p->content_type);
    if (!m)
        return NULL;
    if (cfg->storage_class && *cfg->storage_class)
        json_object_set_new(m, "storageClass", json_string(cfg->storage_class));
    if (p->retain[0] && cfg->retention_mode != GCS_RET_NONE)
        json_object_set_new(m, "retention",
                            json_pack("{s:s, s:s}", "mode", cfg->retention_mode == GCS_RET_LOCKED ? "Locked" : "Unlocked",
                                      "retainUntilTime", p->retain));
    if (cfg->event_based_hold)
        json_object_set_new(m, "eventBasedHold", json_true());
    if (cfg->temporary_hold)
        json_object_set_new(m, "temporaryHold", json_true());
    return m;
}

/* "ifGenerationMatch=0[&kmsKeyName=K]" plus `more`, malloc'd. */
char *put_query(const gcs_put *p, const char *more)
{
    const char *kms = p->in->cfg->kms_key_name;
    char *enc = kms && *kms ? gcs_uri_encode(kms) : NULL;
    size_t n = (enc ? strlen(enc) : 0) + strlen(more) + 64;
    char *q = malloc(n);
    if (q)
        snprintf(q, n, "%s%sifGenerationMatch=0%s%s", more, *more ? "&" : "", enc ? "&kmsKeyName=" : "", enc ? enc : "");
    free(enc);
    return q;
}

/* ---- one request with the object's bytes: multipart/related -------------------------------- */

/* Stores `len` bytes as `objname` in one request, its CRC32C declared and its
 * MD5 too when `md5` is given (the server refuses the upload if they do not
 * match what it received). Part objects declare only the CRC32C: it checks
 * every byte as well, and MD5 costs a core 2 s a GiB here (sha256 and crc32c
 * have instructions for it, MD5 does not). The created object's resource in *out. */
int put_single(gcs_put *p, CURL *easy, const char *objname, const void *data, size_t len, const char *md5,
               json_t *meta, json_t **out, char *err, size_t errlen)
{
    gcs_inst *in = p->in;
    char crc[9], boundary[40], *mtext = NULL, *url = NULL, *q = NULL, *head = NULL, tail[64], ctype[80];
    int rc = ARCA_ENOMEM;

    uint32_t c = gcs_crc32c(0, data, len);
    gcs_crc32c_b64(c, crc);
    json_object_set_new(meta, "crc32c", json_string(crc));
    if (md5)
        json_object_set_new(meta, "md5Hash", json_string(md5));
    snprintf(boundary, sizeof boundary, "arca-%08x%08x", c, (unsigned)len);
    snprintf(ctype, sizeof ctype, "multipart/related; boundary=%s", boundary);
    mtext = json_dumps(meta, JSON_COMPACT);
    q = put_query(p, "uploadType=multipart");
    url = q ? gcs_upload_url(in, q) : NULL;
    size_t hn = mtext ? strlen(mtext) + 2 * strlen(boundary) + 200 : 0;
    if (mtext && url && (head = malloc(hn))) {
        /* the object's bytes are sent from the chunk itself, between the two small pieces */
        int k = snprintf(head, hn, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n--%s\r\n"
                         "Content-Type: %s\r\n\r\n", boundary, mtext, boundary, p->content_type);
        int t = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
        gcs_piece pieces[3] = {{head, (size_t)k}, {data, len}, {tail, (size_t)t}};
        char what[1200];
        snprintf(what, sizeof what, "bucket '%s' object '%.1000s'", in->cfg->bucket, objname);
        gcs_kv hd[1] = {{"Content-Type", ctype}};
        gcs_request rq = {.method = "POST", .url = url, .headers = hd, .nheaders = 1, .pieces = pieces, .npieces = 3,
                          .body_len = (size_t)k + len + (size_t)t, .what = what};
        gcs_response rs;
        rc = gcs_do(in, easy, &rq, &rs, err, errlen);
        if (!rc && !(*out = gcs_json(&rs))) {
            snprintf(err, errlen, "POST %s: HTTP %ld without an object resource", what, rs.status);
            rc = ARCA_EFAIL;
        }
        gcs_response_free(&rs);
    }
    if (rc == ARCA_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    free(head);
    free(mtext);
    free(url);
    free(q);
    return rc;
}

/* ---- buffers --------------------------------------------------------------------------------- */

void part_free(gcs_part *part)
{
    if (part) {
        free(part->buf);
        free(part);
    }
}

static void put_free(gcs_put *p)
{
    if (!p)
        return;
    part_free(p->cur);
    for (gcs_part *x = p->qhead, *n; x; x = n) {
        n = x->next;
        part_free(x);
    }
    for (gcs_part *x = p->spare, *n; x; x = n) {
        n = x->next;
        part_free(x);
    }
    json_decref(p->final_obj);
    if (p->md5)
        EVP_MD_CTX_free(p->md5);
    free(p->session);
    free(p->done);
    free(p->tmp);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->name);
    free(p->key);
    free(p);
}

int gcs_put_open(void *inst, const char *name, void **out)
{
    gcs_inst *in = inst;
    gcs_put *p;
    int rc;

    *out = NULL;
    if ((rc = gcs_check_name(in, name)))
        return rc;
    if (!(p = calloc(1, sizeof *p)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->in = in;
    p->name = strdup(name);
    p->key = gcs_key_of(in, name);
    p->next_number = 1;
    p->maxbufs = in->concurrency + 1;
    size_t nl = strlen(name);
    p->content_type = nl > 5 && !strcmp(name + nl - 5, ".json") ? "application/json" : "application/octet-stream";
    if (in->retain_until)
        gcs_format_rfc3339((time_t)in->retain_until, p->retain);
    else if (in->retain_days)
        gcs_format_rfc3339(time(NULL) + (time_t)in->retain_days * 86400, p->retain);
    if (!p->name || !p->key) {
        put_free(p);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

/* The next buffer: a spare one, a new one under the bound, else wait for a worker. */
static int next_buffer(gcs_put *p)
{
    gcs_inst *in = p->in;
    gcs_part *part = NULL;

    pthread_mutex_lock(&p->mu);
    while (!p->failed && !p->spare && p->nbufs >= p->maxbufs)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return put_failed_error(p);
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
    if (part->cap < in->chunk && p->next_number > 1) {
        char *b = realloc(part->buf, (size_t)in->chunk); /* later chunks are full size at once */
        if (!b) {
            part_free(part);
            return pc_handle_error(in->host, p, ARCA_ENOMEM, "out of memory for a %llu-byte chunk",
                                   (unsigned long long)in->chunk);
        }
        part->buf = b;
        part->cap = (size_t)in->chunk;
    }
    part->len = 0;
    part->number = p->next_number++;
    part->offset = p->total;
    part->final = 0;
    part->next = NULL;
    p->cur = part;
    return 0;
}

/* Queues the current chunk for the workers (starting the upload first). */
static int flush_chunk(gcs_put *p, int final)
{
    int rc;
    if (!p->mode && (rc = upload_start(p)))
        return rc;
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        pthread_mutex_unlock(&p->mu);
        return put_failed_error(p);
    }
    p->cur->final = final;
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

int gcs_put_write(void *put, const void *buf, size_t len)
{
    gcs_put *p = put;
    const char *src = buf;
    int rc;

    while (len) {
        if (!p->cur && (rc = next_buffer(p)))
            return rc;
        gcs_part *c = p->cur;
        if (c->len == p->in->chunk) { /* full, and more is coming: not the last chunk */
            if ((rc = flush_chunk(p, 0)))
                return rc;
            continue;
        }
        size_t n = (size_t)p->in->chunk - c->len;
        if (n > len)
            n = len;
        if (c->len + n > c->cap) { /* the first buffer grows: small objects stay small */
            size_t cap = c->cap ? c->cap : 64 * 1024;
            while (cap < c->len + n)
                cap *= 2;
            if (cap > p->in->chunk)
                cap = (size_t)p->in->chunk;
            char *b = realloc(c->buf, cap);
            if (!b)
                return pc_handle_error(p->in->host, p, ARCA_ENOMEM, "out of memory");
            c->buf = b;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, src, n);
        p->crc = gcs_crc32c(p->crc, src, n);
        c->len += n;
        p->total += n;
        src += n;
        len -= n;
    }
    return 0;
}

/* Stops the workers (after the queue drains, unless failed) and waits for them. */
void join_workers(gcs_put *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

/* The whole object in one request (it fits in one chunk). */
static int commit_single(gcs_put *p)
{
    char err[1400] = "";
    json_t *meta = put_metadata(p, p->key);
    const char *data = p->cur ? p->cur->buf : "";
    size_t len = p->cur ? p->cur->len : 0;
    unsigned char dig[16];
    unsigned int dlen = 0;
    EVP_Digest(data, len, dig, &dlen, EVP_md5(), NULL);
    gcs_md5_b64(dig, p->md5_b64);
    int rc = meta ? put_single(p, NULL, p->key, data, len, p->md5_b64, meta, &p->final_obj, err, sizeof err) : ARCA_ENOMEM;
    json_decref(meta);
    if (rc == ARCA_EEXIST && stored_is_ours(p))
        return 0; /* an earlier attempt stored it and its answer was lost */
    if (rc == ARCA_EEXIST)
        return pc_handle_error(p->in->host, p, ARCA_EEXIST, "cannot store '%s': an object of that name exists "
                               "already in bucket '%s', and backups never overwrite (%s)", p->name, p->in->cfg->bucket,
                               err);
    if (rc)
        return pc_handle_error(p->in->host, p, rc, "cannot store '%s': %s", p->name, err[0] ? err : "out of memory");
    p->created = 1;
    return 0;
}

int gcs_put_commit(void *put)
{
    gcs_put *p = put;
    int rc;

    if (!p->mode) {
        rc = commit_single(p);
    } else {
        rc = p->cur && p->cur->len ? flush_chunk(p, 1) : 0;
        join_workers(p);
        if (!rc && p->failed)
            rc = put_failed_error(p);
        if (!rc)
            rc = p->mode == GCS_MODE_COMPOSE ? compose_commit(p) : resumable_commit(p);
    }
    if (!rc)
        rc = check_hashes(p);
    if (!rc)
        rc = verify_stored(p);
    if (rc)
        upload_cleanup(p);
    else
        p->in->host->log(p->in->host, ARCA_LOG_INFO, "'%s': %llu bytes, %s", p->name, (unsigned long long)p->total,
                         p->mode == GCS_MODE_COMPOSE     ? "parallel parts composed"
                         : p->mode == GCS_MODE_RESUMABLE ? "one resumable session"
                                                         : "one request");
    put_free(p);
    return rc;
}

void gcs_put_abort(void *put)
{
    gcs_put *p = put;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (!p->failed)
        put_fail(p, ARCA_ECANCELED, "aborted");
    pthread_mutex_unlock(&p->mu);
    join_workers(p);
    upload_cleanup(p);
    put_free(p);
}

void part_recycle(gcs_put *p, gcs_part *part)
{
    part->len = 0;
    part->next = p->spare;
    p->spare = part;
    pthread_cond_broadcast(&p->cv);
}
