/* s3 plugin: AWS Signature Version 4 for S3 with a signed payload hash
 * (never aws-chunked, never trailers: many S3-compatible stores reject those).
 * OpenSSL only, so the unit tests compile this file directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/sha.h>

#include "s3util.h"

void s3_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

void s3_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, n, d);
    s3_hex(d, sizeof d, out);
}

void s3_md5_base64(const void *data, size_t n, char out[25])
{
    unsigned char d[16];
    unsigned int len = 0;
    EVP_Digest(data, n, d, &len, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

char *s3_uri_encode(const char *s, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = digits[*p >> 4];
            *o++ = digits[*p & 15];
        }
    }
    *o = 0;
    return out;
}

typedef struct enc_pair {
    char *name, *value;
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *s3_canonical_query(const s3_kv *q, size_t n)
{
    enc_pair *v = calloc(n ? n : 1, sizeof *v);
    size_t len = 1;
    char *out = NULL;
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i].name = s3_uri_encode(q[i].name, 0);
        v[i].value = s3_uri_encode(q[i].value ? q[i].value : "", 0);
        if (!v[i].name || !v[i].value)
            goto done;
        len += strlen(v[i].name) + strlen(v[i].value) + 2;
    }
    qsort(v, n, sizeof *v, pair_cmp);
    if (!(out = malloc(len)))
        goto done;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, "&");
        strcat(out, v[i].name);
        strcat(out, "=");
        strcat(out, v[i].value);
    }
done:
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
    return out;
}

typedef struct canon_header {
    char *name;  /* lowercase */
    char *value; /* trimmed, inner runs of spaces collapsed */
} canon_header;

static int header_cmp(const void *a, const void *b)
{
    return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

static char *canon_value(const char *v)
{
    size_t n = strlen(v);
    char *out = malloc(n + 1), *o = out;
    int space = 0;
    if (!out)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space && o > out)
            *o++ = ' ';
        space = 0;
        *o++ = *v;
    }
    *o = 0;
    return out;
}

/* A growable string; every append checks for OOM once at the end. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256);
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static char *sb_done(sbuf *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p ? b->p : strdup("");
}

char *s3_canonical_request(const s3_sign_input *in, char **signed_headers)
{
    canon_header *h = calloc(in->nheaders ? in->nheaders : 1, sizeof *h);
    sbuf b = {0}, sh = {0};
    char *path = NULL, *query = NULL, *out = NULL;

    *signed_headers = NULL;
    if (!h)
        return NULL;
    for (size_t i = 0; i < in->nheaders; i++) {
        h[i].name = strdup(in->headers[i].name);
        h[i].value = canon_value(in->headers[i].value ? in->headers[i].value : "");
        if (!h[i].name || !h[i].value)
            goto done;
        for (char *c = h[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
    qsort(h, in->nheaders, sizeof *h, header_cmp);
    if (!(path = s3_uri_encode(in->path && *in->path ? in->path : "/", 1)) ||
        !(query = s3_canonical_query(in->query, in->nquery)))
        goto done;

    sb_add(&b, in->method);
    sb_add(&b, "\n");
    sb_add(&b, path);
    sb_add(&b, "\n");
    sb_add(&b, query);
    sb_add(&b, "\n");
    for (size_t i = 0; i < in->nheaders; i++) {
        sb_add(&b, h[i].name);
        sb_add(&b, ":");
        sb_add(&b, h[i].value);
        sb_add(&b, "\n");
        if (i)
            sb_add(&sh, ";");
        sb_add(&sh, h[i].name);
    }
    sb_add(&b, "\n");
    sb_add(&b, sh.p ? sh.p : "");
    sb_add(&b, "\n");
    sb_add(&b, in->payload_hash);
    out = sb_done(&b);
    *signed_headers = sb_done(&sh);
    if (!out || !*signed_headers) {
        free(out);
        free(*signed_headers);
        out = NULL;
        *signed_headers = NULL;
    }
done:
    for (size_t i = 0; i < in->nheaders; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    free(path);
    free(query);
    return out;
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

void s3_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                    unsigned char out[32])
{
    size_t n = strlen(secret) + 5;
    unsigned char *k0 = malloc(n), k[32];
    if (!k0) {
        memset(out, 0, 32);
        return;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, n - 4);
    hmac(k0, n - 1, date8, k);
    OPENSSL_cleanse(k0, n);
    free(k0);
    hmac(k, 32, region, k);
    hmac(k, 32, service, k);
    hmac(k, 32, "aws4_request", out);
    OPENSSL_cleanse(k, sizeof k);
}

char *s3_string_to_sign(const char *amz_date, const char *region, const char *service,
                        const char *canonical_request)
{
    char hash[65], date8[9];
    size_t n;
    char *out;

    s3_sha256_hex(canonical_request, strlen(canonical_request), hash);
    snprintf(date8, sizeof date8, "%.8s", amz_date);
    n = strlen(amz_date) + strlen(region) + strlen(service) + 128;
    if (!(out = malloc(n)))
        return NULL;
    snprintf(out, n, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date8, region, service, hash);
    return out;
}

char *s3_authorization(const s3_sign_input *in, char *sig)
{
    char *signed_headers = NULL, *creq, *sts, *out = NULL, hex[65], date8[9];
    unsigned char key[32], mac[32];
    size_t n;

    if (!(creq = s3_canonical_request(in, &signed_headers)))
        return NULL;
    sts = s3_string_to_sign(in->amz_date, in->region, in->service, creq);
    free(creq);
    if (!sts) {
        free(signed_headers);
        return NULL;
    }
    snprintf(date8, sizeof date8, "%.8s", in->amz_date);
    s3_signing_key(in->secret_key, date8, in->region, in->service, key);
    hmac(key, sizeof key, sts, mac);
    OPENSSL_cleanse(key, sizeof key);
    free(sts);
    s3_hex(mac, sizeof mac, hex);
    if (sig)
        memcpy(sig, hex, sizeof hex);
    n = strlen(in->access_key) + strlen(in->region) + strlen(in->service) + strlen(signed_headers) + 200;
    if ((out = malloc(n)))
        snprintf(out, n, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                 in->access_key, date8, in->region, in->service, signed_headers, hex);
    free(signed_headers);
    return out;
}

void s3_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
