/* gcs plugin: where access tokens come from, in the order of Google's
 * Application Default Credentials: the access_token option (a token handed in
 * from outside, used as is); the credentials option (a key file's path or its
 * JSON); GOOGLE_APPLICATION_CREDENTIALS; gcloud's application default
 * credentials file; the metadata server (GCE, GKE workload identity; host
 * from GCE_METADATA_HOST). A service-account key signs an RS256 JWT and trades
 * it at its token_uri; an authorized_user file trades its refresh token; the
 * metadata server hands out its account's token. Tokens are cached and
 * fetched again before they expire, also in the middle of an upload; the
 * source is resolved on first use (create stays offline). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gcs.h"

#define GCS_REFRESH_MAX 225 /* refresh at most this long before expiry (as Google's libraries) */
#define GCS_METADATA_DEFAULT "169.254.169.254"

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void gcs_auth_init(gcs_inst *in)
{
    pthread_mutex_init(&in->auth.lock, NULL);
}

void gcs_auth_destroy(gcs_inst *in)
{
    gcs_keyfile_free(&in->auth.key);
    wipe_free(in->auth.token);
    in->auth.token = NULL;
    pthread_mutex_destroy(&in->auth.lock);
}

void gcs_auth_source(gcs_inst *in, char *out, size_t cap)
{
    pthread_mutex_lock(&in->auth.lock);
    snprintf(out, cap, "%s", in->auth.source[0] ? in->auth.source : "not resolved yet");
    pthread_mutex_unlock(&in->auth.lock);
}

/* A whole small file (at most 1 MiB), NULL with errno set. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (!f)
        return NULL;
    do {
        if (len + 4097 > cap) {
            char *b = cap > (1u << 20) ? NULL : realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!b) {
                wipe_free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            buf = b;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = 0;
    return buf;
}

/* Loads a credentials file (or the JSON itself) into the auth state. */
static int load_keyfile(gcs_inst *in, const char *what, const char *path_or_json, char *err, size_t errlen)
{
    gcs_auth *a = &in->auth;
    char why[300], *text;
    int is_json = path_or_json[strspn(path_or_json, " \t\r\n")] == '{';
    if (is_json)
        text = strdup(path_or_json);
    else if (!(text = slurp(path_or_json))) {
        snprintf(err, errlen, "%s: cannot read '%s': %s", what, path_or_json, strerror(errno));
        return ARCA_ECONFIG;
    }
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return ARCA_ENOMEM;
    }
    int rc = gcs_keyfile_parse(text, &a->key, why, sizeof why);
    wipe_free(text);
    if (rc) {
        snprintf(err, errlen, "%s%s%s: %s", what, is_json ? "" : " '", is_json ? "" : path_or_json, why);
        return ARCA_ECONFIG;
    }
    int sa = !strcmp(a->key.type, "service_account");
    a->kind = sa ? GCS_AUTH_SERVICE_ACCOUNT : GCS_AUTH_USER;
    snprintf(a->source, sizeof a->source, "%s%s%.200s%s (%s%.150s)", what, is_json ? "" : " ", is_json ? "" : path_or_json,
             "", sa ? "service account " : "authorized user, client ", sa ? a->key.client_email : a->key.client_id);
    return 0;
}

/* gcloud's ADC file: $CLOUDSDK_CONFIG/..., else ~/.config/gcloud/... */
static void adc_path(char *out, size_t cap)
{
    const char *cfg = getenv("CLOUDSDK_CONFIG"), *home = getenv("HOME");
    if (cfg && *cfg)
        snprintf(out, cap, "%s/application_default_credentials.json", cfg);
    else
        snprintf(out, cap, "%s/.config/gcloud/application_default_credentials.json", home && *home ? home : "/root");
}

/* The first source of the ADC order that is there. Lock held. */
static int resolve(gcs_inst *in, char *err, size_t errlen)
{
    const gcs_config *cfg = in->cfg;
    gcs_auth *a = &in->auth;
    const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
    char path[4096];
    int rc = 0;

    if (cfg->access_token && *cfg->access_token) {
        a->kind = GCS_AUTH_TOKEN;
        snprintf(a->source, sizeof a->source, "the access_token option");
        if (!(a->token = strdup(cfg->access_token)))
            rc = ARCA_ENOMEM;
    } else if (cfg->credentials && *cfg->credentials) {
        rc = load_keyfile(in, "the credentials option", cfg->credentials, err, errlen);
    } else if (env && *env) {
        rc = load_keyfile(in, "GOOGLE_APPLICATION_CREDENTIALS", env, err, errlen);
    } else if (adc_path(path, sizeof path), access(path, R_OK) == 0) {
        rc = load_keyfile(in, "gcloud's application default credentials", path, err, errlen);
    } else {
        env = getenv("GCE_METADATA_HOST");
        snprintf(a->metadata_host, sizeof a->metadata_host, "%s", env && *env ? env : GCS_METADATA_DEFAULT);
        a->kind = GCS_AUTH_METADATA;
        snprintf(a->source, sizeof a->source, "the metadata server at %s (the instance's default service account; "
                 "none of access_token, credentials, GOOGLE_APPLICATION_CREDENTIALS or %.200s was given)",
                 a->metadata_host, path);
    }
    if (!rc)
        a->resolved = 1;
    return rc;
}

/* Form-encoded value, malloc'd. */
static char *form(const char *v)
{
    return gcs_uri_encode(v ? v : "");
}

/* POST the token request `body` to uri (no Authorization), parse the answer. */
static int token_post(gcs_inst *in, const char *uri, const char *body, char **token, int64_t *life, char *err,
                      size_t errlen)
{
    gcs_kv hd[1] = {{"Content-Type", "application/x-www-form-urlencoded"}};
    char what[600];
    snprintf(what, sizeof what, "%.500s (token endpoint)", uri);
    gcs_request rq = {.method = "POST", .url = uri, .headers = hd, .nheaders = 1, .body = body,
                      .body_len = strlen(body), .no_auth = 1, .what = what};
    gcs_response rs;
    char e2[1200];
    int rc = gcs_do(in, NULL, &rq, &rs, e2, sizeof e2);
    if (!rc && gcs_token_answer(rs.body, rs.body_len, token, life, e2, sizeof e2))
        rc = ARCA_EFAIL;
    if (rc)
        snprintf(err, errlen, "%s", e2);
    gcs_response_free(&rs);
    return rc;
}

static int fetch_service_account(gcs_inst *in, char **token, int64_t *life, char *err, size_t errlen)
{
    char why[300];
    char *jwt = gcs_jwt_assertion(&in->auth.key, GCS_SCOPE, (int64_t)time(NULL), why, sizeof why), *enc, *body;
    if (!jwt) {
        snprintf(err, errlen, "%s", why);
        return ARCA_ECONFIG;
    }
    enc = form(jwt);
    wipe_free(jwt);
    size_t n = (enc ? strlen(enc) : 0) + 96;
    if (!enc || !(body = malloc(n))) {
        free(enc);
        return ARCA_ENOMEM;
    }
    snprintf(body, n, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", enc);
    wipe_free(enc);
    int rc = token_post(in, in->auth.key.token_uri, body, token, life, err, errlen);
    wipe_free(body);
    return rc;
}

static int fetch_user(gcs_inst *in, char **token, int64_t *life, char *err, size_t errlen)
{
    gcs_keyfile *k = &in->auth.key;
    char *id = form(k->client_id), *secret = form(k->client_secret), *refresh = form(k->refresh_token), *body = NULL;
    int rc = ARCA_ENOMEM;
    if (id && secret && refresh) {
        size_t n = strlen(id) + strlen(secret) + strlen(refresh) + 96;
        if ((body = malloc(n))) {
            snprintf(body, n, "grant_type=refresh_token&client_id=%s&client_secret=%s&refresh_token=%s", id, secret,
                     refresh);
            rc = token_post(in, k->token_uri, body, token, life, err, errlen);
        }
    }
    free(id);
    wipe_free(secret);
    wipe_free(refresh);
    wipe_free(body);
    return rc;
}

static int fetch_metadata(gcs_inst *in, char **token, int64_t *life, char *err, size_t errlen)
{
    char url[512], e2[1200], what[600];
    gcs_kv hd[1] = {{"Metadata-Flavor", "Google"}};
    snprintf(url, sizeof url, "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
             in->auth.metadata_host);
    snprintf(what, sizeof what, "%s (metadata server)", url);
    gcs_request rq = {.method = "GET", .url = url, .headers = hd, .nheaders = 1, .no_auth = 1, .quick = 1,
                      .what = what};
    gcs_response rs;
    int rc = gcs_do(in, NULL, &rq, &rs, e2, sizeof e2);
    if (!rc && gcs_token_answer(rs.body, rs.body_len, token, life, e2, sizeof e2))
        rc = ARCA_EFAIL;
    if (rc)
        snprintf(err, errlen, "%s", e2);
    gcs_response_free(&rs);
    return rc;
}

/* A new token from the resolved source. Lock held. */
static int refresh(gcs_inst *in, char *err, size_t errlen)
{
    gcs_auth *a = &in->auth;
    char *tok = NULL, why[1200] = "";
    int64_t life = 0;
    int rc;
    switch (a->kind) {
    case GCS_AUTH_SERVICE_ACCOUNT:
        rc = fetch_service_account(in, &tok, &life, why, sizeof why);
        break;
    case GCS_AUTH_USER:
        rc = fetch_user(in, &tok, &life, why, sizeof why);
        break;
    case GCS_AUTH_METADATA:
        rc = fetch_metadata(in, &tok, &life, why, sizeof why);
        break;
    default:
        snprintf(why, sizeof why, "no way to renew the token");
        rc = ARCA_EFAIL;
    }
    if (rc) {
        snprintf(err, errlen, "cannot get an access token from %s: %s%s", a->source, why,
                 a->kind == GCS_AUTH_METADATA
                     ? " (hint: off Google Cloud, give credentials = KEY.json, access_token, or run "
                       "`gcloud auth application-default login`)"
                     : a->kind == GCS_AUTH_SERVICE_ACCOUNT
                           ? " (hint: the key may be deleted, disabled or not this account's: create a new key)"
                           : " (hint: run `gcloud auth application-default login` again)");
        return rc == ARCA_ECANCELED ? rc : ARCA_EFAIL;
    }
    wipe_free(a->token);
    a->token = tok;
    a->fetched = time(NULL);
    a->expires = a->fetched + (time_t)life;
    a->fetches++;
    in->host->log(in->host, ARCA_LOG_DEBUG, "access token %u from %s, valid for %lld s", a->fetches, a->source,
                  (long long)life);
    return 0;
}

/* Refresh before expiry: at most 225 s before, at least half the token's life. */
static int expiring(const gcs_auth *a, time_t now)
{
    if (!a->token)
        return 1;
    if (a->kind == GCS_AUTH_TOKEN || !a->expires)
        return 0;
    time_t life = a->expires - a->fetched, margin = life / 2 < GCS_REFRESH_MAX ? life / 2 : GCS_REFRESH_MAX;
    return now >= a->expires - margin;
}

int gcs_auth_header(gcs_inst *in, char *hdr, size_t cap, char *err, size_t errlen)
{
    gcs_auth *a = &in->auth;
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    if (!a->resolved)
        rc = resolve(in, err, errlen);
    if (!rc && expiring(a, time(NULL)))
        rc = refresh(in, err, errlen);
    if (!rc && (size_t)snprintf(hdr, cap, "Authorization: Bearer %s", a->token) >= cap) {
        snprintf(err, errlen, "the access token is too long");
        rc = ARCA_EFAIL;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int gcs_auth_invalidate(gcs_inst *in, const char *rejected)
{
    gcs_auth *a = &in->auth;
    int can;
    (void)rejected;
    pthread_mutex_lock(&a->lock);
    can = a->kind != GCS_AUTH_TOKEN;
    if (can) {
        wipe_free(a->token);
        a->token = NULL;
    }
    pthread_mutex_unlock(&a->lock);
    return can;
}
