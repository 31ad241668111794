/* ycql plugin: token and partition-hash ranges (see ranges.h). */
#include "ranges.h"

#include <stdio.h>
#include <stdlib.h>

int ycql_split_tokens(int n, ycql_range *out)
{
    if (n < 1 || n > YCQL_SPLIT_MAX)
        return -1;
    /* boundary i is MIN + floor(i * 2^64 / n); the last is MAX */
    const __int128 span = (__int128)1 << 64;
    for (int i = 0; i < n; i++) {
        __int128 lo = (__int128)INT64_MIN + span * i / n;
        __int128 hi = i + 1 == n ? (__int128)INT64_MAX : (__int128)INT64_MIN + span * (i + 1) / n;
        out[i] = (ycql_range){(int64_t)lo, (int64_t)hi, i == 0};
    }
    return 0;
}

int ycql_split_hash16(int n, ycql_range *out)
{
    if (n < 1 || n > 65536)
        return -1;
    for (int i = 0; i < n; i++)
        out[i] = (ycql_range){(int64_t)65536 * i / n, (int64_t)65536 * (i + 1) / n, 1};
    return 0;
}

char *ycql_range_where(const ycql_range *r, int yb, const char *pk)
{
    char *s = NULL;
    int n = yb ? asprintf(&s, " WHERE partition_hash(%s) >= ? AND partition_hash(%s) < ?", pk, pk)
               : asprintf(&s, " WHERE token(%s) %s ? AND token(%s) <= ?", pk, r->lo_incl ? ">=" : ">", pk);
    return n < 0 ? NULL : s;
}
