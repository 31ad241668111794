/* ycql plugin: the ranges an export splits a table into, and the WHERE clause that
 * reads one. Cassandra (Murmur3Partitioner) places a partition at token(pk), a
 * signed 64-bit value; an export reads [MIN, b1], (b1, b2], ..., (bn-1, MAX] with
 * `token(pk) >= ? AND token(pk) <= ?` / `token(pk) > ? AND token(pk) <= ?`.
 * YugabyteDB hashes a partition to 16 bits (0..65535): `partition_hash(pk)` returns
 * it, and its token() is that hash moved to the top of the 64 bits, so only 65,536
 * token values exist; ranges there are [lo, hi) of the hash, read with
 * `partition_hash(pk) >= ? AND partition_hash(pk) < ?`. Every partition falls in
 * exactly one range of a split, whatever n (unit-tested at the edges). */
#ifndef ARCA_YCQL_RANGES_H
#define ARCA_YCQL_RANGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct ycql_range {
    int64_t lo, hi;
    int lo_incl;   /* token ranges: the first one includes its low end */
} ycql_range;

enum { YCQL_SPLIT_MAX = 65536 };

/* n (1..YCQL_SPLIT_MAX) equal token ranges covering every int64; 0 / -1 bad n. */
int ycql_split_tokens(int n, ycql_range *out);
/* n (1..65536) equal ranges [lo, hi) of YugabyteDB's 16-bit hash; 0 / -1 bad n. */
int ycql_split_hash16(int n, ycql_range *out);
/* " WHERE token(pk) > ? AND token(pk) <= ?" (yb: partition_hash, >= and <),
 * pk: the partition key columns, quoted and comma-separated. Bound values:
 * lo then hi, as bigint. Caller frees; NULL on oom. */
char *ycql_range_where(const ycql_range *r, int yb, const char *pk);

#endif
