/* s3 plugin: where the keys come from, first match wins: the options
 * (access_key_id, secret_access_key, session_token); the environment
 * (AWS_ACCESS_KEY_ID, ...); the shared credentials and config files for a
 * profile; the EC2 instance metadata service (IMDSv2, session token first),
 * whose temporary keys are refreshed five minutes before they expire.
 * Resolved on first use: create never touches the network. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "s3.h"

#define S3_REFRESH_BEFORE 300 /* seconds before expiry to fetch new instance keys */
#define S3_IMDS_DEFAULT "http://169.254.169.254"

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void s3_creds_free(s3_creds *c)
{
    wipe_free(c->akid);
    wipe_free(c->secret);
    wipe_free(c->token);
    memset(c, 0, sizeof *c);
}

static int creds_set(s3_creds *c, const char *akid, const char *secret, const char *token, time_t expires,
                     const char *source)
{
    s3_creds n = {dup_str(akid), dup_str(secret), token && *token ? dup_str(token) : NULL, expires, source};
    if (!n.akid || !n.secret || (token && *token && !n.token)) {
        s3_creds_free(&n);
        return ARCA_ENOMEM;
    }
    s3_creds_free(c);
    *c = n;
    return 0;
}

/* A whole small file, NULL if unreadable. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (!f)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!b || cap > (1u << 20)) {
                free(b ? b : buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (!buf)
        return NULL;
    buf[len] = 0;
    return buf;
}

static void aws_file(const char *env, const char *name, char *out, size_t cap)
{
    const char *e = getenv(env), *home = getenv("HOME");
    if (e && *e)
        snprintf(out, cap, "%s", e);
    else
        snprintf(out, cap, "%s/.aws/%s", home && *home ? home : "/root", name);
}

/* key in the profile: the credentials file's [NAME], then the config file's
 * [profile NAME] ([default] for the default profile). */
static int profile_get(const char *profile, const char *key, char *out, size_t cap)
{
    char path[4096], section[300];
    char *text;
    int found = 0;

    aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof path);
    if ((text = slurp(path))) {
        found = s3_ini_get(text, profile, key, out, cap);
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        if (found)
            return 1;
    }
    aws_file("AWS_CONFIG_FILE", "config", path, sizeof path);
    if ((text = slurp(path))) {
        snprintf(section, sizeof section, "profile %s", profile);
        found = s3_ini_get(text, section, key, out, cap) ||
                (!strcmp(profile, "default") && s3_ini_get(text, "default", key, out, cap));
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    return found;
}

char *s3_profile_region(const char *profile)
{
    char v[64];
    return profile_get(profile, "region", v, sizeof v) && *v ? strdup(v) : NULL;
}

/* ---- IMDSv2 --------------------------------------------------------------------- */

typedef struct membuf {
    char data[8192];
    size_t len;
} membuf;

static size_t mb_write(char *p, size_t size, size_t nmemb, void *ud)
{
    membuf *m = ud;
    size_t n = size * nmemb;
    if (m->len + n >= sizeof m->data)
        return 0;
    memcpy(m->data + m->len, p, n);
    m->len += n;
    m->data[m->len] = 0;
    return n;
}

/* One IMDS call; 0 and the answer in m on a 200. Short timeouts: off EC2 the
 * address does not answer, and that must not hold a backup up for long. */
static int imds_call(CURL *e, const char *method, const char *url, const char *header, membuf *m, long *status)
{
    struct curl_slist *h = NULL;
    CURLcode cc;
    m->len = 0;
    m->data[0] = 0;
    *status = 0;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mb_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
    if (header)
        h = curl_slist_append(h, header);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (!strcmp(method, "PUT")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    return (cc == CURLE_OK && *status == 200) ? 0 : -1;
}

/* The role's answer (JSON, through jansson): Code, AccessKeyId,
 * SecretAccessKey, Token, Expiration. */
static int imds_keys(s3_inst *in, const char *json, s3_creds *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    const char *code = json_string_value(json_object_get(j, "Code"));
    const char *akid = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(j, "Token"));
    const char *expiration = json_string_value(json_object_get(j, "Expiration"));
    int rc;
    if (code && strcmp(code, "Success")) {
        snprintf(err, errlen, "instance metadata: role '%s' answered Code %s", in->creds.imds_role, code);
        rc = ARCA_EFAIL;
    } else if (!akid || !secret || !token) {
        snprintf(err, errlen, "instance metadata: the answer for role '%s' lacks AccessKeyId, SecretAccessKey or Token",
                 in->creds.imds_role);
        rc = ARCA_EFAIL;
    } else {
        int64_t exp = expiration ? s3_parse_iso8601(expiration) : -1;
        rc = creds_set(out, akid, secret, token, exp > 0 ? (time_t)exp : time(NULL) + 3600, "instance metadata");
    }
    /* the tree's own copies of the secrets are wiped before it is freed */
    if (secret)
        OPENSSL_cleanse((char *)secret, strlen(secret));
    if (token)
        OPENSSL_cleanse((char *)token, strlen(token));
    json_decref(j);
    return rc;
}

static int imds_fetch(s3_inst *in, s3_creds *out, char *err, size_t errlen)
{
    const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char url[1024], hdr[1200];
    char *session = NULL;
    membuf *m = calloc(1, sizeof *m);
    CURL *e = curl_easy_init();
    long status = 0;
    int rc = ARCA_ECONFIG;

    if (!base || !*base)
        base = S3_IMDS_DEFAULT;
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    if (!m || !e) {
        rc = ARCA_ENOMEM;
        goto done;
    }
    snprintf(url, sizeof url, "%.*s/latest/api/token", (int)bl, base);
    if (imds_call(e, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", m, &status)) {
        snprintf(err, errlen, "instance metadata at %.*s: no session token (status %ld)", (int)bl, base, status);
        goto done;
    }
    if (!(session = strdup(m->data)))
        goto done;
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", session);
    if (!in->creds.imds_role[0]) {
        snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/", (int)bl, base);
        if (imds_call(e, "GET", url, hdr, m, &status) || !m->len) {
            snprintf(err, errlen, "instance metadata at %.*s: no IAM role attached to this instance (status %ld)",
                     (int)bl, base, status);
            goto done;
        }
        char *nl = strchr(m->data, '\n');
        if (nl)
            *nl = 0;
        snprintf(in->creds.imds_role, sizeof in->creds.imds_role, "%.255s", m->data);
    }
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl, base,
             in->creds.imds_role);
    if (imds_call(e, "GET", url, hdr, m, &status)) {
        snprintf(err, errlen, "instance metadata: cannot read the keys of role '%s' (status %ld)",
                 in->creds.imds_role, status);
        in->creds.imds_role[0] = 0;
        rc = ARCA_EFAIL;
        goto done;
    }
    rc = imds_keys(in, m->data, out, err, errlen);
done:
    if (m)
        OPENSSL_cleanse(m, sizeof *m);
    free(m);
    OPENSSL_cleanse(hdr, sizeof hdr);
    wipe_free(session);
    if (e)
        curl_easy_cleanup(e);
    return rc;
}

/* ---- the chain ----------------------------------------------------------------------- */

int s3_creds_init(s3_inst *in, char *err, size_t errlen)
{
    const s3_config *cfg = in->cfg;
    int has_id = cfg->access_key_id && *cfg->access_key_id;
    int has_secret = cfg->secret_access_key && *cfg->secret_access_key;
    memset(&in->creds, 0, sizeof in->creds);
    if (has_id != has_secret) {
        snprintf(err, errlen, "%s is set but %s is not: give both, or neither to use the environment, a profile or "
                              "instance metadata", has_id ? "access_key_id" : "secret_access_key",
                 has_id ? "secret_access_key" : "access_key_id");
        return ARCA_ECONFIG;
    }
    if (cfg->session_token && *cfg->session_token && !has_id) {
        snprintf(err, errlen, "session_token is set without access_key_id and secret_access_key");
        return ARCA_ECONFIG;
    }
    if (pthread_mutex_init(&in->creds.lock, NULL)) {
        snprintf(err, errlen, "cannot create a mutex");
        return ARCA_EFAIL;
    }
    return 0;
}

void s3_creds_destroy(s3_inst *in)
{
    s3_creds_free(&in->creds.cur);
    pthread_mutex_destroy(&in->creds.lock);
}

/* Called with the lock held. */
static int resolve(s3_inst *in, char *err, size_t errlen)
{
    const s3_config *cfg = in->cfg;
    const char *ek = getenv("AWS_ACCESS_KEY_ID"), *es = getenv("AWS_SECRET_ACCESS_KEY");
    const char *et = getenv("AWS_SESSION_TOKEN"), *off = getenv("AWS_EC2_METADATA_DISABLED");
    s3_cred_chain *ch = &in->creds;
    char akid[256], secret[256], token[4096], imds_err[512] = "";
    int rc;

    if (cfg->access_key_id && *cfg->access_key_id)
        return creds_set(&ch->cur, cfg->access_key_id, cfg->secret_access_key, cfg->session_token, 0,
                         "the access_key_id and secret_access_key options");
    if (ek && *ek && es && *es)
        return creds_set(&ch->cur, ek, es, et, 0, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    if (profile_get(in->profile, "aws_access_key_id", akid, sizeof akid) &&
        profile_get(in->profile, "aws_secret_access_key", secret, sizeof secret)) {
        if (!profile_get(in->profile, "aws_session_token", token, sizeof token))
            token[0] = 0;
        snprintf(ch->source, sizeof ch->source, "profile '%s' of the AWS shared files", in->profile);
        rc = creds_set(&ch->cur, akid, secret, token, 0, ch->source);
        OPENSSL_cleanse(secret, sizeof secret);
        OPENSSL_cleanse(token, sizeof token);
        return rc;
    }
    if (!(off && !strcasecmp(off, "true"))) {
        s3_creds fresh = {0};
        rc = imds_fetch(in, &fresh, imds_err, sizeof imds_err);
        if (!rc) {
            s3_creds_free(&ch->cur);
            ch->cur = fresh;
            return 0;
        }
        if (rc == ARCA_ENOMEM)
            return rc;
        /* temporary keys still valid: keep them through a metadata hiccup */
        if (ch->cur.akid && ch->cur.expires > time(NULL) + 30) {
            in->host->log(in->host, ARCA_LOG_WARN, "cannot refresh instance credentials (%s): using the current ones "
                                                   "until they expire", imds_err);
            return 0;
        }
        if (rc == ARCA_EFAIL) {
            snprintf(err, errlen, "%s", imds_err);
            return rc;
        }
    }
    snprintf(err, errlen,
             "no credentials found: set access_key_id and secret_access_key (secret_access_key_file = PATH keeps it out "
             "of the file), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile '%s' in ~/.aws/credentials, "
             "or run with an instance role%s%s",
             in->profile, imds_err[0] ? "; " : "", imds_err);
    return ARCA_ECONFIG;
}

int s3_creds_get(s3_inst *in, s3_creds *out, char *err, size_t errlen)
{
    s3_cred_chain *ch = &in->creds;
    int rc = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ch->lock);
    if (!ch->resolved || (ch->cur.expires && ch->cur.expires - time(NULL) < S3_REFRESH_BEFORE)) {
        if (!(rc = resolve(in, err, errlen))) {
            if (!ch->resolved)
                in->host->log(in->host, ARCA_LOG_DEBUG, "credentials from %s (key id %.4s...)", ch->cur.source,
                              ch->cur.akid);
            ch->resolved = 1;
        }
    }
    if (!rc)
        rc = creds_set(out, ch->cur.akid, ch->cur.secret, ch->cur.token, ch->cur.expires, ch->cur.source);
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

void s3_creds_invalidate(s3_inst *in)
{
    pthread_mutex_lock(&in->creds.lock);
    if (in->creds.cur.expires) /* only temporary keys can be fetched again */
        in->creds.resolved = 0;
    pthread_mutex_unlock(&in->creds.lock);
}
