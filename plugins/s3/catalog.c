/* s3 plugin: the catalog side: HEAD, ListObjectsV2 page by page with
 * continuation tokens, DELETE of one object (after a HEAD, since S3 answers
 * 204 for a missing key too), and multi-object delete, 1000 keys a request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_buf.h"
#include "pc_name.h"
#include "s3.h"

int s3_head(s3_inst *in, const char *key, uint64_t *size, char *etag, size_t etaglen, char *err, size_t errlen)
{
    s3_response rs;
    s3_request rq = {.method = "HEAD", .key = key, .missing_ok = 1};
    int rc = s3_do(in, NULL, &rq, &rs, err, errlen);
    if (!rc) {
        *size = rs.content_length;
        if (etag)
            snprintf(etag, etaglen, "%s", rs.etag);
        if (!rs.has_length) {
            snprintf(err, errlen, "HEAD %s: the answer has no Content-Length", key);
            rc = ARCA_EFAIL;
        }
    }
    s3_response_free(&rs);
    return rc;
}

int s3_list(void *inst, const char *prefix, arca_list_cb cb, void *ud)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char *full = NULL, *token = NULL, maxkeys[16], err[1200];
    int rc = 0, stop = 0;
    size_t pl = strlen(in->prefix);

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
        free(token);
        token = NULL;
        if (rc) {
            s3_response_free(&rs);
            rc = h->error(h, rc == ARCA_ENOENT ? ARCA_EFAIL : rc, "cannot list bucket '%s': %s", in->cfg->bucket,
                          err);
            break;
        }
        const char *p = rs.body ? rs.body : "", *end = p + rs.body_len, *v;
        size_t vn;
        if (!s3_xml_elem(p, end, "ListBucketResult", &v, &vn)) {
            s3_response_free(&rs);
            rc = h->error(h, ARCA_EFAIL, "listing bucket '%s': the answer is not a ListBucketResult",
                          in->cfg->bucket);
            break;
        }
        while (!stop && (p = s3_xml_elem(p, end, "Contents", &v, &vn))) {
            char *key = s3_xml_text_dup(v, v + vn, "Key"), sz[32] = "", lm[64] = "";
            if (!key) {
                rc = h->error(h, ARCA_EFAIL, "listing bucket '%s': an entry without Key", in->cfg->bucket);
                stop = 1;
                break;
            }
            s3_xml_text(v, v + vn, "Size", sz, sizeof sz);
            s3_xml_text(v, v + vn, "LastModified", lm, sizeof lm);
            /* only flat names under the prefix are ours */
            if (strlen(key) > pl && !strncmp(key, in->prefix, pl) && !strchr(key + pl, '/')) {
                int64_t t = s3_parse_iso8601(lm);
                arca_object_stat st = {key + pl, strtoull(sz, NULL, 10), t > 0 ? t : 0};
                int r = cb(ud, &st);
                if (r) {
                    rc = r < 0 ? r : 0;
                    stop = 1;
                }
            }
            free(key);
        }
        char trunc[16] = "";
        s3_xml_text(rs.body, end, "IsTruncated", trunc, sizeof trunc);
        if (!stop && !strcmp(trunc, "true")) {
            token = s3_xml_text_dup(rs.body, end, "NextContinuationToken");
            if (!token || !*token) {
                free(token);
                token = NULL;
                rc = h->error(h, ARCA_EFAIL, "listing bucket '%s': truncated without NextContinuationToken",
                              in->cfg->bucket);
            }
        }
        s3_response_free(&rs);
    } while (token && !rc && !stop);
    free(token);
    free(full);
    return rc;
}

int s3_remove(void *inst, const char *name)
{
    s3_inst *in = inst;
    const arca_host *h = in->host;
    char *key, err[1200];
    uint64_t size;
    s3_response rs;
    int rc;

    if ((rc = s3_check_name(in, name)))
        return rc;
    if (!(key = s3_key_of(in, name)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    rc = s3_head(in, key, &size, NULL, 0, err, sizeof err);
    if (rc == ARCA_ENOENT) {
        char *url = s3_url_of(in, key);
        rc = h->error(h, ARCA_ENOENT, "'%s' does not exist (%s)", name, url ? url : key);
        free(url);
        free(key);
        return rc;
    }
    if (!rc) {
        s3_request rq = {.method = "DELETE", .key = key, .cleanup = 1};
        rc = s3_do(in, NULL, &rq, &rs, err, sizeof err);
        s3_response_free(&rs);
    }
    if (rc)
        rc = h->error(h, rc, "cannot remove '%s': %s", name, err);
    free(key);
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
        if (!rc && !(rs.body && strstr(rs.body, "DeleteResult"))) {
            snprintf(err, sizeof err, "POST ?delete: HTTP %ld without a DeleteResult", rs.status);
            rc = ARCA_EFAIL;
        }
        const char *ev;
        size_t en;
        if (!rc && s3_xml_elem(rs.body, rs.body + rs.body_len, "Error", &ev, &en)) {
            /* quiet mode lists only the keys it could not delete: those are not gone */
            char key[1100] = "", code[96] = "", msg[256] = "";
            s3_xml_text(ev, ev + en, "Key", key, sizeof key);
            s3_xml_text(ev, ev + en, "Code", code, sizeof code);
            s3_xml_text(ev, ev + en, "Message", msg, sizeof msg);
            const char *hint = s3_hint(0, code);
            snprintf(err, sizeof err, "'%s': %s%s%s%s%s%s", key, code, msg[0] ? ": " : "", msg, hint ? " (hint: " : "",
                     hint ? hint : "", hint ? ")" : "");
            rc = ARCA_EFAIL;
        }
        s3_response_free(&rs);
        free(xml);
        if (rc)
            rc = h->error(h, rc, "cannot remove %zu object%s from bucket '%s': %s", cnt, cnt == 1 ? "" : "s",
                          in->cfg->bucket, err);
    }
    return rc;
}
