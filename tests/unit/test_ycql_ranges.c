/* ycql plugin, the ranges an export reads (plugins/ycql/ranges.c): every token and
 * every 16-bit hash in exactly one range of a split, at the edges of the int64 and
 * hash spaces, for splits of 1 to 4,096 ranges and the largest; the WHERE clauses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../plugins/ycql/ranges.c"

/* the range of a split that holds token t (-1: none, -2: more than one) */
static int owner(const ycql_range *v, int n, int64_t t)
{
    int found = -1;
    for (int i = 0; i < n; i++) {
        int in = (v[i].lo_incl ? t >= v[i].lo : t > v[i].lo) && t <= v[i].hi;
        if (in)
            found = found == -1 ? i : -2;
    }
    return found;
}

static void token_splits_cover_every_token_once(void **state)
{
    (void)state;
    static ycql_range v[YCQL_SPLIT_MAX];
    static const int64_t probes[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
    for (int n = 1; n <= 4096; n = n < 16 ? n + 1 : n * 2 + 1) {
        assert_int_equal(ycql_split_tokens(n, v), 0);
        assert_true(v[0].lo == INT64_MIN && v[0].lo_incl);
        assert_true(v[n - 1].hi == INT64_MAX);
        for (int i = 0; i + 1 < n; i++) {
            assert_true(v[i].hi == v[i + 1].lo); /* adjacent: (lo, hi] chained */
            assert_false(v[i + 1].lo_incl);
            assert_true(v[i].hi > v[i].lo);
        }
        for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++)
            assert_true(owner(v, n, probes[k]) >= 0);
        for (int i = 0; i + 1 < n; i++) { /* a boundary and the token after it */
            assert_int_equal(owner(v, n, v[i].hi), i);
            assert_int_equal(owner(v, n, v[i].hi + 1), i + 1);
        }
    }
    assert_int_equal(ycql_split_tokens(YCQL_SPLIT_MAX, v), 0);
    assert_true(v[YCQL_SPLIT_MAX - 1].hi == INT64_MAX);
    assert_int_equal(ycql_split_tokens(0, v), -1);
    assert_int_equal(ycql_split_tokens(YCQL_SPLIT_MAX + 1, v), -1);
}

static void hash16_splits_cover_every_hash_once(void **state)
{
    (void)state;
    static ycql_range v[65536];
    static const int ns[] = {1, 2, 3, 7, 16, 100, 1000, 65535, 65536};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        assert_int_equal(ycql_split_hash16(n, v), 0);
        assert_int_equal(v[0].lo, 0);
        assert_int_equal(v[n - 1].hi, 65536);
        int64_t covered = 0;
        for (int i = 0; i < n; i++) {
            assert_true(v[i].hi > v[i].lo); /* never empty */
            if (i + 1 < n)
                assert_int_equal(v[i].hi, v[i + 1].lo);
            covered += v[i].hi - v[i].lo;
        }
        assert_int_equal(covered, 65536);
    }
    assert_int_equal(ycql_split_hash16(65537, v), -1);
}

static void where_clauses_read_one_range(void **state)
{
    (void)state;
    ycql_range v[2];
    ycql_split_tokens(2, v);
    char *w = ycql_range_where(&v[0], 0, "k, \"K2\"");
    assert_string_equal(w, " WHERE token(k, \"K2\") >= ? AND token(k, \"K2\") <= ?");
    free(w);
    w = ycql_range_where(&v[1], 0, "k");
    assert_string_equal(w, " WHERE token(k) > ? AND token(k) <= ?");
    free(w);
    ycql_split_hash16(2, v);
    w = ycql_range_where(&v[1], 1, "h1, h2");
    assert_string_equal(w, " WHERE partition_hash(h1, h2) >= ? AND partition_hash(h1, h2) < ?");
    assert_int_equal(v[1].lo, 32768);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_splits_cover_every_token_once),
        cmocka_unit_test(hash16_splits_cover_every_hash_once),
        cmocka_unit_test(where_clauses_read_one_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
