/* ycql plugin, the archive's row format (plugins/ycql/rows.c): rows written and read
 * back cell for cell (null and empty apart, write time and TTL where kept), and every
 * cut, a wrong count, trailing bytes or a foreign object refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../plugins/ycql/cqlwire.c"
#include "../../plugins/ycql/rows.c"

static const yr_col cols[] = {
    {"k", "int", YR_PARTITION, 0},
    {"c", "text", YR_CLUSTERING, 0},
    {"v", "frozen<map<text, blob>>", YR_REGULAR, 1},
    {"s", "bigint", YR_STATIC, 1},
};

static void object(cql_buf *b)
{
    assert_int_equal(yr_write_header(b, cols, 4, 1), 0);
    static const unsigned char k1[4] = {0, 0, 0, 1}, s1[8] = {0, 0, 0, 0, 0, 0, 0x30, 0x39};
    yr_cell r1[4] = {{k1, 4, 0, 0}, {(const unsigned char *)"a\0b", 3, 0, 0},
                     {(const unsigned char *)"\x00\x00\x00\x00", 4, 1700000000123456, 3600},
                     {s1, 8, 1600000000000000, 0}};
    yr_cell r2[4] = {{k1, 4, 0, 0}, {(const unsigned char *)"", 0, 0, 0}, /* empty, not null */
                     {NULL, 0, YR_NO_WRITETIME, 0}, {NULL, 0, YR_NO_WRITETIME, 0}};
    yr_write_row(b, cols, 4, r1);
    yr_write_row(b, cols, 4, r2);
    yr_write_end(b, 2);
    assert_false(b->oom);
}

static void rows_come_back_cell_for_cell(void **state)
{
    (void)state;
    cql_buf b = {0};
    object(&b);
    yr_reader r;
    assert_int_equal(yr_open(&r, b.p, b.len), 0);
    assert_int_equal(r.ncols, 4);
    assert_true(r.meta);
    assert_string_equal(r.cols[2].type, "frozen<map<text, blob>>");
    assert_int_equal(r.cols[1].kind, YR_CLUSTERING);
    assert_int_equal(r.cols[3].meta, 1);
    yr_cell c[4];
    assert_int_equal(yr_next(&r, c), 1);
    assert_int_equal(c[1].len, 3);
    assert_memory_equal(c[1].p, "a\0b", 3);
    assert_true(c[2].writetime == 1700000000123456);
    assert_int_equal(c[2].ttl, 3600);
    assert_true(c[0].writetime == YR_NO_WRITETIME); /* key columns carry none */
    assert_int_equal(yr_next(&r, c), 1);
    assert_non_null(c[1].p);
    assert_int_equal(c[1].len, 0);
    assert_null(c[2].p);
    assert_true(c[3].writetime == YR_NO_WRITETIME);
    assert_int_equal(yr_next(&r, c), 0);
    assert_int_equal(r.rows, 2);
    assert_int_equal(yr_next(&r, c), 0);
    yr_close(&r);
    cql_buf_free(&b);
}

static void cut_miscounted_or_foreign_objects_are_refused(void **state)
{
    (void)state;
    cql_buf b = {0};
    object(&b);
    yr_cell c[4];
    for (size_t cut = 0; cut < b.len; cut++) { /* every cut: never a clean end */
        yr_reader r;
        int rc = yr_open(&r, b.p, cut);
        while (rc == 0 && (rc = yr_next(&r, c)) == 1)
            rc = 0;
        if (rc != -1)
            fail_msg("a cut at %zu of %zu bytes read as a whole object", cut, b.len);
        assert_non_null(r.err);
        yr_close(&r);
    }
    /* a wrong count in the end marker */
    b.p[b.len - 1] = 3;
    yr_reader r;
    assert_int_equal(yr_open(&r, b.p, b.len), 0);
    assert_int_equal(yr_next(&r, c), 1);
    assert_int_equal(yr_next(&r, c), 1);
    assert_int_equal(yr_next(&r, c), -1);
    assert_non_null(strstr(r.err, "count"));
    yr_close(&r);
    b.p[b.len - 1] = 2;
    /* bytes after the end */
    cql_put_u8(&b, 0);
    assert_int_equal(yr_open(&r, b.p, b.len), 0);
    while (yr_next(&r, c) == 1)
        ;
    assert_non_null(r.err);
    yr_close(&r);
    /* not ours */
    assert_int_equal(yr_open(&r, "PGCOPY\n", 7), -1);
    assert_non_null(strstr(r.err, "magic"));
    yr_close(&r);
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_come_back_cell_for_cell),
        cmocka_unit_test(cut_miscounted_or_foreign_objects_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
