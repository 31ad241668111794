/* ysql plugin: the order-independent table digest (see pure.h). SHA-256 is not
 * needed for security here; it is used because libcrypto is already linked and
 * anyone can recompute the digest with standard tools. */
#include "pure.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ysql_hasher {
    EVP_MD_CTX *ctx;
    EVP_MD *md; /* fetched once: an implicit fetch per row costs more than the hashing */
};

ysql_hasher *ysql_hasher_new(void)
{
    ysql_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !h->md) {
        ysql_hasher_free(h);
        return NULL;
    }
    return h;
}

void ysql_hasher_free(ysql_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}

int ysql_digest_row(ysql_hasher *h, ysql_digest *d, const void *row, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 || EVP_DigestUpdate(h->ctx, row, len) != 1 ||
        EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen < 16)
        return -1;
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | md[i];
        lo = lo << 8 | md[8 + i];
    }
    ysql_digest one = {hi, lo, 1};
    ysql_digest_merge(d, &one);
    return 0;
}

void ysql_digest_merge(ysql_digest *into, const ysql_digest *add)
{
    uint64_t lo = into->lo + add->lo;
    into->hi += add->hi + (lo < into->lo);
    into->lo = lo;
    into->rows += add->rows;
}

#define DIGEST_PREFIX "sha256-sum128:"

void ysql_digest_format(const ysql_digest *d, char out[64])
{
    snprintf(out, 64, DIGEST_PREFIX "%016llx%016llx", (unsigned long long)d->hi,
             (unsigned long long)d->lo);
}

int ysql_digest_parse(const char *text, ysql_digest *d)
{
    size_t pl = strlen(DIGEST_PREFIX);
    if (!text || strncmp(text, DIGEST_PREFIX, pl) || strlen(text + pl) != 32 ||
        strspn(text + pl, "0123456789abcdef") != 32)
        return -1;
    char half[17] = {0};
    memcpy(half, text + pl, 16);
    d->hi = strtoull(half, NULL, 16);
    memcpy(half, text + pl + 16, 16);
    d->lo = strtoull(half, NULL, 16);
    return 0;
}
