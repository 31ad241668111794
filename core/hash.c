/* Keyed name hashing (SipHash-2-4, written from the paper by Aumasson and
 * Bernstein) and the name map. See hash.h for why the index holds hashes. */
#include "hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                                                        \
    do {                                                                                                \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                     \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                         \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                         \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                     \
    } while (0)

uint64_t siphash24(const unsigned char k[16], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t k0 = load64(k), k1 = load64(k + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)p[full + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static unsigned char g_keys[32];
static pthread_once_t g_keys_once = PTHREAD_ONCE_INIT;

static void keys_init(void)
{
    size_t got = 0;
    while (got < sizeof g_keys) {
        ssize_t n = getrandom(g_keys + got, sizeof g_keys - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof g_keys) {
        /* no entropy source: still distinct per run, if no longer secret */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed[4] = {(uint64_t)ts.tv_nsec, (uint64_t)ts.tv_sec, (uint64_t)getpid(), (uint64_t)(uintptr_t)&ts};
        memcpy(g_keys, seed, sizeof g_keys);
    }
}

nkey nkey_of(const void *p, size_t len)
{
    pthread_once(&g_keys_once, keys_init);
    nkey k = {siphash24(g_keys, p, len), siphash24(g_keys + 16, p, len) | 1};
    return k;
}

nkey nkey_str(const char *s)
{
    return nkey_of(s, strlen(s));
}

static size_t slot_of(const nmap *m, nkey k)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)k.a & mask;; i = (i + 1) & mask)
        if (m->keys[i].b == 0 || (m->keys[i].a == k.a && m->keys[i].b == k.b))
            return i;
}

static void grow(nmap *m)
{
    nmap n = {0};
    n.cap = m->cap ? m->cap * 2 : 1024;
    n.keys = xcalloc(n.cap, sizeof *n.keys);
    n.vals = xmalloc(n.cap * sizeof *n.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i].b) {
            size_t s = slot_of(&n, m->keys[i]);
            n.keys[s] = m->keys[i];
            n.vals[s] = m->vals[i];
        }
    n.n = m->n;
    free(m->keys);
    free(m->vals);
    *m = n;
}

int nmap_put(nmap *m, nkey k, uint64_t v)
{
    if ((m->n + 1) * 10 > m->cap * 7)
        grow(m);
    size_t s = slot_of(m, k);
    if (m->keys[s].b)
        return 1;
    m->keys[s] = k;
    m->vals[s] = v;
    m->n++;
    return 0;
}

uint64_t *nmap_get(const nmap *m, nkey k)
{
    if (!m->cap)
        return NULL;
    size_t s = slot_of(m, k);
    return m->keys[s].b ? &m->vals[s] : NULL;
}

void nmap_free(nmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
