/* gcs plugin: credential files (a service-account key, gcloud's authorized_user
 * file) read with jansson, the RS256-signed JWT a service account trades for
 * an access token (OpenSSL), and the token endpoint's answer. Secrets are
 * wiped when freed and never put into a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gcsutil.h"

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void gcs_keyfile_free(gcs_keyfile *k)
{
    free(k->type);
    free(k->client_email);
    wipe_free(k->private_key);
    free(k->private_key_id);
    free(k->token_uri);
    free(k->client_id);
    wipe_free(k->client_secret);
    wipe_free(k->refresh_token);
    free(k->quota_project);
    memset(k, 0, sizeof *k);
}

/* A copy of the string member `name`, NULL when absent or not a string; *oom on failure. */
static char *member(json_t *j, const char *name, int *oom)
{
    const char *v = json_string_value(json_object_get(j, name));
    char *c = v ? strdup(v) : NULL;
    if (v && !c)
        *oom = 1;
    return c;
}

/* jansson keeps its own copies of the strings: wipe them before the tree goes. */
static void wipe_tree(json_t *j)
{
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        const char *s = json_string_value(v);
        if (s)
            OPENSSL_cleanse((char *)s, strlen(s));
    }
    json_decref(j);
}

int gcs_keyfile_parse(const char *json, gcs_keyfile *k, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    int oom = 0;

    memset(k, 0, sizeof *k);
    if (!j || !json_is_object(j)) {
        snprintf(err, errlen, "not a JSON object (line %d: %s)", j ? 1 : je.line, j ? "not an object" : je.text);
        json_decref(j);
        return -1;
    }
    k->type = member(j, "type", &oom);
    k->client_email = member(j, "client_email", &oom);
    k->private_key = member(j, "private_key", &oom);
    k->private_key_id = member(j, "private_key_id", &oom);
    k->token_uri = member(j, "token_uri", &oom);
    k->client_id = member(j, "client_id", &oom);
    k->client_secret = member(j, "client_secret", &oom);
    k->refresh_token = member(j, "refresh_token", &oom);
    k->quota_project = member(j, "quota_project_id", &oom);
    wipe_tree(j);
    if (oom) {
        snprintf(err, errlen, "out of memory");
    } else if (!k->type) {
        snprintf(err, errlen, "no \"type\" (a service-account key or an authorized_user file was expected)");
    } else if (!strcmp(k->type, "service_account")) {
        if (k->client_email && k->private_key)
            goto ok;
        snprintf(err, errlen, "a service_account key without client_email or private_key");
    } else if (!strcmp(k->type, "authorized_user")) {
        if (k->client_id && k->client_secret && k->refresh_token)
            goto ok;
        snprintf(err, errlen, "an authorized_user file without client_id, client_secret or refresh_token");
    } else {
        snprintf(err, errlen, "credentials of type \"%.40s\" are not supported (service_account and authorized_user are)",
                 k->type);
    }
    gcs_keyfile_free(k);
    return -1;
ok:
    if (!k->token_uri && !(k->token_uri = strdup(GCS_TOKEN_URI))) {
        gcs_keyfile_free(k);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The JSON text of a small object, malloc'd. */
static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* RS256: SHA-256 then RSASSA-PKCS1-v1_5 with the PEM key. */
static int rs256(const char *pem, const char *input, unsigned char **sig, size_t *siglen, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;

    *sig = NULL;
    if (!key) {
        snprintf(err, errlen, "the key's private_key is not a PEM private key");
    } else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "the key's private_key is not an RSA key (RS256 needs one)");
    } else if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
               EVP_DigestSign(md, NULL, siglen, (const unsigned char *)input, strlen(input)) != 1 ||
               !(*sig = malloc(*siglen)) ||
               EVP_DigestSign(md, *sig, siglen, (const unsigned char *)input, strlen(input)) != 1) {
        snprintf(err, errlen, "signing the token request failed (OpenSSL)");
        free(*sig);
        *sig = NULL;
    } else {
        rc = 0;
    }
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

char *gcs_jwt_assertion(const gcs_keyfile *k, const char *scope, int64_t now, char *err, size_t errlen)
{
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (hdr && k->private_key_id && *k->private_key_id)
        json_object_set_new(hdr, "kid", json_string(k->private_key_id));
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", k->client_email, "scope", scope, "aud",
                               k->token_uri, "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    char *h = dump(hdr), *c = dump(claims), *h64 = NULL, *c64 = NULL, *input = NULL, *s64 = NULL, *out = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;

    if (!h || !c || !(h64 = gcs_b64url(h, strlen(h))) || !(c64 = gcs_b64url(c, strlen(c)))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    size_t n = strlen(h64) + strlen(c64) + 2;
    if (!(input = malloc(n))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    snprintf(input, n, "%s.%s", h64, c64);
    if (rs256(k->private_key, input, &sig, &siglen, err, errlen))
        goto done;
    if (!(s64 = gcs_b64url(sig, siglen)) || !(out = malloc(strlen(input) + strlen(s64) + 2))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    sprintf(out, "%s.%s", input, s64);
done:
    free(h);
    free(c);
    free(h64);
    free(c64);
    free(input);
    free(s64);
    free(sig);
    return out;
}

int gcs_token_answer(const char *json, size_t len, char **token, int64_t *expires_in, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(json ? json : "", json ? len : 0, JSON_REJECT_DUPLICATES, &je);
    const char *t = json_string_value(json_object_get(j, "access_token"));
    json_t *e = json_object_get(j, "expires_in");
    int rc = -1;

    *token = NULL;
    if (!j)
        snprintf(err, errlen, "the token answer is not JSON (%s)", je.text);
    else if (!t || !*t)
        snprintf(err, errlen, "the token answer has no access_token");
    else if (!(*token = strdup(t)))
        snprintf(err, errlen, "out of memory");
    else
        rc = 0;
    if (!rc) {
        /* a number, or a numeric string as some metadata servers send */
        json_int_t v = json_is_integer(e) ? json_integer_value(e) : json_is_string(e) ? atoll(json_string_value(e)) : 0;
        *expires_in = v > 0 ? (int64_t)v : 3600;
    }
    if (j)
        wipe_tree(j);
    return rc;
}
