/* Keyed name hashing and the one map the core indexes names with.
 *
 * Every index of names (objects in a backup, objects of a manifest being read)
 * stores the 128-bit keyed hash of the name instead of the name: SipHash-2-4
 * under two random 128-bit keys drawn once per process. Equal names always give
 * equal keys; two different names share a key with probability 2^-127, and
 * since nobody outside the process knows the keys, nobody can choose names that
 * fall into one probe chain (the unkeyed FNV-1a index it replaces took 276 s
 * for 200k crafted names). A slot costs 24 bytes and the map stays at most 70 %
 * full, so an index costs about 34 bytes per name, whatever the name's length. */
#ifndef ARCA_HASH_H
#define ARCA_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct nkey {
    uint64_t a, b; /* b is never 0: {0,0}-free keys let a zero slot mean "empty" */
} nkey;

/* The keyed hash of `len` bytes. */
nkey nkey_of(const void *p, size_t len);
/* The same for a NUL-terminated string. */
nkey nkey_str(const char *s);
/* SipHash-2-4 of `len` bytes under `k` (16 bytes): exposed for the unit test
 * that checks it against the reference vectors. */
uint64_t siphash24(const unsigned char k[16], const void *p, size_t len);

/* Open addressing with linear probing over keyed hashes; values are 64-bit. */
typedef struct nmap {
    nkey *keys;
    uint64_t *vals;
    size_t cap, n; /* cap is a power of two, or 0 */
} nmap;

/* Inserts k -> v. 0 if inserted, 1 if k was already there (its value unchanged). */
int nmap_put(nmap *m, nkey k, uint64_t v);
/* The value slot of k, or NULL. The pointer is valid until the next nmap_put. */
uint64_t *nmap_get(const nmap *m, nkey k);
void nmap_free(nmap *m);

#endif
