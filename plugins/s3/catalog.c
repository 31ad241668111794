/* s3 plugin: the catalog side: HEAD, ListObjectsV2 page by page with
 * continuation tokens, DELETE of one object (after a HEAD, since S3 answers
 * 204 for a missing key too, and so that a locked object is refused instead of
 * hidden behind a delete marker), multi-object delete 1000 keys a request, and
 * the cleanup of multipart uploads interrupted backups left behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_buf.h"
#include "pc_name.h"
#include "s3.h"

int s3_head_full(s3_inst *in, const char *key, s3_response *rs, char *err, size_t errlen)
{
    s3_request rq = {.method = "HEAD", .key = key, .missing_ok = 1};
    int rc = s3_do(in, NULL, &rq, rs, err, errlen);
    if (!rc && !rs->has_length) {
        snprintf(err, errlen, "HEAD %s: the answer has no Content-Length", key);
        rc = ARCA_EFAIL;
    }
    if (!rc && rs->content_length > S3_MAX_OBJECT) {
        snprintf(err, errlen, "HEAD %s: the answer claims %llu bytes, more than an S3 object can hold", key,
                 (unsigned long long)rs->content_length);
        rc = ARCA_EINTEGRITY;
    }
    return rc;
}

int s3_head(s3_inst *in, const char *key, uint64_t *size, char *etag, size_t etaglen, char *err, size_t errlen)
{
    s3_response rs;
    int rc = s3_head_full(in, key, &rs, err, errlen);
    if (!rc) {
        *size = rs.content_length;
        if (etag)
            snprintf(etag, etaglen, "%s", rs.etag);
    }
    s3_response_free(&rs);
    return rc;
}

/* ---- list --------------------------------------------------------------------------- */

typedef struct lister {
    s3_inst *in;
    arca_list_cb cb;
    void *ud;
    size_t pl; /* length of the configured prefix */
    int stop, rc;
} lister;

/* One page: 1 to go on (*next gets the continuation token), 0 at the end, <0 on failure. */
static int list_page(lister *l, s3x_doc *doc, char **next)
{
    s3_inst *in = l->in;
    const arca_host *h = in->host;
    if (strcmp(s3x_root_name(doc), "ListBucketResult"))
        return h->error(h, ARCA_EFAIL, "listing bucket '%s': the answer is not a ListBucketResult", in->cfg->bucket);
    for (s3x_node *c = s3x_child(doc, NULL, "Contents"); c && !l->stop; c = s3x_next(c)) {
        char *key = s3x_text(doc, c, "Key"), sz[32] = "", lm[64] = "";
        if (!key)
            return h->error(h, ARCA_EFAIL, "listing bucket '%s': an entry without Key", in->cfg->bucket);
        s3x_text_buf(doc, c, "Size", sz, sizeof sz);
        s3x_text_buf(doc, c, "LastModified", lm, sizeof lm);
        /* only flat names under the prefix are ours */
        if (strlen(key) > l->pl && !strncmp(key, in->prefix, l->pl) && !strchr(key + l->pl, '/')) {
            int64_t t = s3_parse_iso8601(lm);
            arca_object_stat st = {key + l->pl, strtoull(sz, NULL, 10), t > 0 ? t : 0};
            int r = l->cb(l->ud, &st);
            if (r) {
                l->rc = r < 0 ? r : 0;
                l->stop = 1;
            }
        }
        free(key);
    }
    char trunc[16] = "";
    s3x_text_buf(doc, NULL, "IsTruncated", trunc, sizeof trunc);
    if (l->stop || strcmp(trunc, "true"))
        return 0;
    *next = s3x_text(doc, NULL, "NextContinuationToken");
    if (!*next || !**next)
        return h->error(h, ARCA_EFAIL, "listing bucket '%s': truncated without NextContinuationToken", in->cfg->bucket);
    return 1;
}

int s3_list(void *inst, const char *prefix, arca_list_cb cb, void *ud)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char *full = NULL, *token = NULL, *prev = NULL, maxkeys[16], err[1200];
    lister l = {in, cb, ud, strlen(in->prefix), 0, 0};
    int rc = 0, more = 0;

    if ((rc = pc_check_prefix(h, prefix)))
        return rc;
    if (!(full = s3_key_of(in, prefix ? prefix : "")))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    snprintf(maxkeys, sizeof maxkeys, "%lld", (long long)in->cfg->list_max_keys);
    do {
        s3_kv q[4];
        size_t nq = 0;
        s3_response rs;
        q[nq++] = (s3_kv){"list-type", "2"};
        q[nq++] = (s3_kv){"max-keys", maxkeys};
        if (*full)
            q[nq++] = (s3_kv){"prefix", full};
        if (token)
            q[nq++] = (s3_kv){"continuation-token", token};
        s3_request rq = {.method = "GET", .key = NULL, .query = q, .nquery = nq};
        rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
        free(prev);
        prev = token;
        token = NULL;
        if (rc) {
            s3_response_free(&rs);
            rc = h->error(h, rc == ARCA_ENOENT ? ARCA_EFAIL : rc, "cannot list bucket '%s': %s", in->cfg->bucket, err);
            break;
        }
        s3x_doc *doc = s3x_parse(rs.body, rs.body_len);
        more = doc ? list_page(&l, doc, &token)
                   : h->error(h, ARCA_EFAIL, "listing bucket '%s': the answer is not well-formed XML (cut short?)",
                              in->cfg->bucket);
        s3x_free(doc);
        s3_response_free(&rs);
        if (more == 1 && prev && !strcmp(prev, token))
            more = h->error(h, ARCA_EFAIL, "listing bucket '%s': the server repeats the continuation token '%.64s': "
                                           "stopped instead of asking forever", in->cfg->bucket, token);
        rc = more < 0 ? more : l.rc;
    } while (more == 1 && !l.stop);
    free(token);
    free(prev);
    free(full);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------- */

/* A lock that still holds: mode and date, or a legal hold. NULL if none. */
static const char *still_locked(const s3_response *rs, char *why, size_t cap)
{
    if (!strcasecmp(rs->legal_hold, "ON")) {
        snprintf(why, cap, "under a legal hold");
        return why;
    }
    int64_t until = rs->lock_until[0] ? s3_parse_iso8601(rs->lock_until) : -1;
    if (rs->lock_mode[0] && until > (int64_t)time(NULL)) {
        snprintf(why, cap, "locked in %s mode until %s", rs->lock_mode, rs->lock_until);
        return why;
    }
    return NULL;
}

int s3_remove(void *inst, const char *name)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char *key, err[1200], why[160];
    s3_response head, rs;
    int rc;

    if ((rc = s3_check_name(in, name)))
        return rc;
    if (!(key = s3_key_of(in, name)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    rc = s3_head_full(in, key, &head, err, sizeof err);
    if (rc == ARCA_ENOENT) {
        char *url = s3_url_of(in, key);
        rc = h->error(h, ARCA_ENOENT, "'%s' does not exist (%s)", name, url ? url : key);
        free(url);
    } else if (!rc && still_locked(&head, why, sizeof why)) {
        /* a plain DELETE would only add a delete marker and report success */
        rc = h->error(h, ARCA_EFAIL, "'%s' is %s: not deleted (S3 keeps it until then)", name, why);
    } else if (!rc) {
        /* in a versioned bucket, delete this version for good, not hide it */
        int versioned = head.version_id[0] && strcmp(head.version_id, "null");
        s3_kv q[1] = {{"versionId", head.version_id}};
        s3_request rq = {.method = "DELETE", .key = key, .query = q, .nquery = versioned ? 1 : 0, .cleanup = 1};
        rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
        if (!rc && rs.delete_marker && !versioned)
            h->log(h, ARCA_LOG_WARN, "'%s': the bucket keeps versions: a delete marker now hides it, its data "
                                     "stays until a lifecycle rule expires noncurrent versions", name);
        s3_response_free(&rs);
        if (rc)
            rc = h->error(h, rc, "cannot remove '%s': %s", name, err);
    } else {
        rc = h->error(h, rc, "cannot remove '%s': %s", name, err);
    }
    s3_response_free(&head);
    free(key);
    return rc;
}

/* The keys a quiet DeleteObjects answer lists as not deleted: an error. */
static int delete_result(s3_inst *in, const s3_response *rs, char *err, size_t errlen)
{
    s3x_doc *doc = s3x_parse(rs->body, rs->body_len);
    int rc = 0;
    if (!doc || strcmp(s3x_root_name(doc), "DeleteResult")) {
        snprintf(err, errlen, "POST ?delete: HTTP %ld without a well-formed DeleteResult", rs->status);
        rc = ARCA_EFAIL;
    } else if (s3x_child(doc, NULL, "Error")) {
        s3x_node *e = s3x_child(doc, NULL, "Error");
        char key[1100] = "", code[96] = "", msg[256] = "";
        size_t n = 0;
        for (s3x_node *x = e; x; x = s3x_next(x))
            n++;
        s3x_text_buf(doc, e, "Key", key, sizeof key);
        s3x_text_buf(doc, e, "Code", code, sizeof code);
        s3x_text_buf(doc, e, "Message", msg, sizeof msg);
        const char *hint = s3_hint(0, code);
        snprintf(err, errlen, "%zu key%s not deleted, first '%s': %s%s%s%s%s%s", n, n == 1 ? "" : "s", key, code,
                 msg[0] ? ": " : "", msg, hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "");
        rc = ARCA_EFAIL;
    }
    (void)in;
    s3x_free(doc);
    return rc;
}

int s3_remove_many(void *inst, const char *const *names, size_t n)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char err[1200], md5[25];
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if ((rc = s3_check_name(in, names[i])))
            return rc;
    for (size_t at = 0; at < n && !rc; at += 1000) {
        size_t cnt = n - at < 1000 ? n - at : 1000, len;
        pc_buf body = {0};
        char *xml;
        pc_buf_str(&body, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
        for (size_t i = 0; i < cnt; i++) {
            char *key = s3_key_of(in, names[at + i]), *esc = key ? s3_xml_escape(key) : NULL;
            if (esc)
                pc_buf_printf(&body, "<Object><Key>%s</Key></Object>", esc);
            else
                body.oom = 1;
            free(esc);
            free(key);
        }
        pc_buf_str(&body, "</Delete>");
        len = body.len;
        if (!(xml = pc_buf_take(&body)))
            return h->error(h, ARCA_ENOMEM, "out of memory");
        /* Content-MD5 is mandatory for this call */
        s3_md5_base64(xml, len, md5);
        s3_kv q[1] = {{"delete", ""}};
        s3_kv hd[2] = {{"content-md5", md5}, {"content-type", "application/xml"}};
        s3_request rq = {.method = "POST", .key = NULL, .query = q, .nquery = 1, .headers = hd, .nheaders = 2,
                         .body = xml, .body_len = len, .cleanup = 1};
        s3_response rs;
        rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
        if (!rc)
            rc = delete_result(in, &rs, err, sizeof err);
        s3_response_free(&rs);
        free(xml);
        if (rc)
            rc = h->error(h, rc, "cannot remove %zu object%s from bucket '%s': %s", cnt, cnt == 1 ? "" : "s",
                          in->cfg->bucket, err);
    }
    return rc;
}

/* ---- cleanup: multipart uploads nobody will complete ------------------------------------ */

typedef struct upload {
    char *key, *id;
    int64_t started;
} upload;

static void abort_upload(s3_inst *in, const upload *u, char *err, size_t errlen, int *rc)
{
    s3_kv q[1] = {{"uploadId", u->id}};
    s3_request rq = {.method = "DELETE", .key = u->key, .query = q, .nquery = 1, .cleanup = 1, .missing_ok = 1};
    s3_response rs;
    int r = s3_do(in, NULL, &rq, &rs, err, errlen);
    s3_response_free(&rs);
    if (r && r != ARCA_ENOENT)
        *rc = r;
}

int s3_cleanup(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char *full = s3_key_of(in, prefix ? prefix : ""), *kmark = NULL, *umark = NULL, err[1200] = "";
    size_t pl = strlen(in->prefix);
    int rc = 0, more = 1;
    if (!full)
        return h->error(h, ARCA_ENOMEM, "out of memory");
    while (more && !rc) {
        s3_kv q[4];
        size_t nq = 0;
        q[nq++] = (s3_kv){"uploads", ""};
        if (*full)
            q[nq++] = (s3_kv){"prefix", full};
        if (kmark)
            q[nq++] = (s3_kv){"key-marker", kmark};
        if (umark)
            q[nq++] = (s3_kv){"upload-id-marker", umark};
        s3_request rq = {.method = "GET", .key = NULL, .query = q, .nquery = nq};
        s3_response rs;
        rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
        s3x_doc *doc = rc ? NULL : s3x_parse(rs.body, rs.body_len);
        s3_response_free(&rs);
        if (!rc && (!doc || strcmp(s3x_root_name(doc), "ListMultipartUploadsResult"))) {
            snprintf(err, sizeof err, "GET ?uploads: the answer is not a well-formed ListMultipartUploadsResult");
            rc = ARCA_EFAIL;
        }
        for (s3x_node *u = rc ? NULL : s3x_child(doc, NULL, "Upload"); u && !rc; u = s3x_next(u)) {
            char started[64] = "";
            upload up = {s3x_text(doc, u, "Key"), s3x_text(doc, u, "UploadId"), 0};
            s3x_text_buf(doc, u, "Initiated", started, sizeof started);
            up.started = s3_parse_iso8601(started);
            if (up.key && up.id && strlen(up.key) > pl && !strncmp(up.key, in->prefix, pl) && up.started > 0 &&
                up.started <= older_than) {
                arca_object_stat st = {up.key + pl, 0, up.started};
                if (cb && cb(ud, &st) < 0)
                    rc = ARCA_ECANCELED;
                if (!rc && !dry_run)
                    abort_upload(in, &up, err, sizeof err, &rc);
            }
            free(up.key);
            free(up.id);
        }
        char trunc[16] = "";
        if (!rc && s3x_text_buf(doc, NULL, "IsTruncated", trunc, sizeof trunc) && !strcmp(trunc, "true")) {
            char *nk = s3x_text(doc, NULL, "NextKeyMarker"), *nu = s3x_text(doc, NULL, "NextUploadIdMarker");
            if (!nk || (kmark && !strcmp(nk, kmark) && nu && umark && !strcmp(nu, umark))) {
                snprintf(err, sizeof err, "GET ?uploads: truncated without a new marker");
                rc = ARCA_EFAIL;
            }
            free(kmark);
            free(umark);
            kmark = nk;
            umark = nu;
        } else {
            more = 0;
        }
        s3x_free(doc);
    }
    free(kmark);
    free(umark);
    free(full);
    return rc ? h->error(h, rc, "cleanup of bucket '%s': %s", in->cfg->bucket, err) : 0;
}
