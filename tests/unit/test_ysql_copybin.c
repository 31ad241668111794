/* ysql plugin: COPY text -> COPY binary (plugins/ysql/copybin.c), compiled in.
 * The expected bytes are written out by hand from PostgreSQL's documented
 * binary COPY format (header, int16 field count, int32 length or -1, network
 * byte order) and the receive formats of bool, int2/4/8 and text; the e2e
 * restores (ysql.sh, --verify-data) check the same conversion against a
 * real server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/common/pc_buf.c"
#include "../../plugins/ysql/copybin.c"

static const char HDR[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
#define HDR_LEN 19

/* Converts text in one piece; returns the binary (without header/trailer checks). */
static int convert(const unsigned char *kinds, size_t ncols, const char *text, size_t len, pc_buf *out,
                   char *err, size_t errlen)
{
    ysql_copybin *c = ysql_copybin_new(kinds, ncols, 4096);
    assert_non_null(c);
    int rc = ysql_copybin_feed(c, text, len, out, err, errlen);
    if (rc == 0)
        rc = ysql_copybin_end(c, out, err, errlen);
    ysql_copybin_free(c);
    return rc;
}

static void expect_rows(const unsigned char *kinds, size_t ncols, const char *text, const char *bin,
                        size_t binlen)
{
    pc_buf out = {0};
    char err[256] = "";
    int rc = convert(kinds, ncols, text, strlen(text), &out, err, sizeof err);
    if (rc)
        fail_msg("conversion failed: %s", err);
    assert_int_equal(out.len, HDR_LEN + binlen + 2);
    assert_memory_equal(out.p, HDR, HDR_LEN);
    assert_memory_equal(out.p + HDR_LEN, bin, binlen);
    assert_memory_equal(out.p + HDR_LEN + binlen, "\xff\xff", 2);
    pc_buf_free(&out);
}

static void expect_error(const unsigned char *kinds, size_t ncols, const char *text, const char *want)
{
    pc_buf out = {0};
    char err[256] = "";
    assert_int_equal(convert(kinds, ncols, text, strlen(text), &out, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' does not say '%s'", err, want);
    pc_buf_free(&out);
}

static void test_integers(void **state)
{
    (void)state;
    const unsigned char k[] = {YCB_INT2, YCB_INT4, YCB_INT8};
    expect_rows(k, 3, "1\t-2\t3\n",
                "\0\3" "\0\0\0\2\0\1" "\0\0\0\4\xff\xff\xff\xfe" "\0\0\0\x08\0\0\0\0\0\0\0\3", 2 + 6 + 8 + 12);
    /* the ends of each range, spaces and a plus sign as int4in takes them */
    expect_rows(k, 3, "-32768\t 2147483647 \t-9223372036854775808\n",
                "\0\3" "\0\0\0\2\x80\0" "\0\0\0\4\x7f\xff\xff\xff" "\0\0\0\x08\x80\0\0\0\0\0\0\0", 28);
    expect_rows(k, 3, "+32767\t-2147483648\t9223372036854775807\n",
                "\0\3" "\0\0\0\2\x7f\xff" "\0\0\0\4\x80\0\0\0" "\0\0\0\x08\x7f\xff\xff\xff\xff\xff\xff\xff", 28);
    expect_error(k, 3, "32768\t0\t0\n", "out of range for type smallint");
    expect_error(k, 3, "0\t-2147483649\t0\n", "out of range for type integer");
    expect_error(k, 3, "0\t0\t9223372036854775808\n", "out of range for type bigint");
    expect_error(k, 3, "0\t0x10\t0\n", "invalid input syntax for type integer");
    expect_error(k, 3, "0\t\t0\n", "invalid input syntax for type integer");
    expect_error(k, 3, "0\t-\t0\n", "invalid input syntax");
    expect_error(k, 3, "0\t1 2\t0\n", "invalid input syntax");
    /* an escaped digit is a digit (the server de-escapes first) */
    expect_rows(k + 1, 1, "\\061\\x32\n", "\0\1" "\0\0\0\4\0\0\0\x0c", 10);
}

static void test_booleans(void **state)
{
    (void)state;
    const unsigned char k[] = {YCB_BOOL};
    const char *yes[] = {"t", "TRUE", "tru", "y", "Yes", "on", "1", " t "};
    const char *no[] = {"f", "false", "FA", "n", "no", "of", "OFF", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        char row[32];
        snprintf(row, sizeof row, "%s\n", yes[i]);
        expect_rows(k, 1, row, "\0\1\0\0\0\1\1", 7);
        snprintf(row, sizeof row, "%s\n", no[i]);
        expect_rows(k, 1, row, "\0\1\0\0\0\1\0", 7);
    }
    expect_error(k, 1, "o\n", "type boolean");
    expect_error(k, 1, "truee\n", "type boolean");
    expect_error(k, 1, "2\n", "type boolean");
    expect_error(k, 1, "\n", "type boolean");
}

static void test_text_escapes(void **state)
{
    (void)state;
    const unsigned char k[] = {YCB_TEXT, YCB_TEXT};
    /* \N alone is NULL; \\N is the text \N; "" is empty, not NULL */
    expect_rows(k, 2, "\\N\t\\\\N\n\t\n",
                "\0\2\xff\xff\xff\xff\0\0\0\2\\N" "\0\2\0\0\0\0\0\0\0\0", 12 + 10);
    /* every escape of COPY text */
    expect_rows(k + 1, 1, "\\b\\f\\n\\r\\t\\v\\\\\\q\\101\\0101\\7\\x41\\x4g\\xz\n",
                "\0\1\0\0\0\x11" "\b\f\n\r\t\v\\q" "A" "\x08" "1" "\x07" "A" "\x04g" "xz", 6 + 17);
    /* an escaped tab or newline (a backslash before the raw byte) is data */
    expect_rows(k, 2, "a\\\tb\tc\\\nd\n", "\0\2" "\0\0\0\3a\tb" "\0\0\0\3c\nd", 2 + 7 + 7);
    /* bytes >= 0x80 pass through (the server checks the encoding) */
    expect_rows(k + 1, 1, "\xc3\xa9t\xc3\xa9\n", "\0\1\0\0\0\5\xc3\xa9t\xc3\xa9", 11);
    /* a backslash ending the last row is dropped, as the server does */
    expect_rows(k + 1, 1, "ab\\", "\0\1\0\0\0\2ab", 8);
    expect_error(k, 2, "a\n", "missing data for column 2");
    expect_error(k, 2, "a\tb\tc\n", "extra data after the last expected column");
    expect_error(k, 2, "a\rb\tc\n", "literal carriage return");
    expect_rows(k, 2, "a\\\rb\tc\n", "\0\2\0\0\0\3a\rb\0\0\0\1c", 2 + 7 + 5);
}

static void test_rows_and_end(void **state)
{
    (void)state;
    const unsigned char k[] = {YCB_INT4};
    /* a last row without its newline counts; "\." ends the data, the rest is ignored */
    expect_rows(k, 1, "1\n2", "\0\1\0\0\0\4\0\0\0\1" "\0\1\0\0\0\4\0\0\0\2", 20);
    expect_rows(k, 1, "1\n\\.\nrubbish\n", "\0\1\0\0\0\4\0\0\0\1", 10);
    expect_rows(k, 1, "", "", 0);
    /* too long a row for its types is refused before it is held */
    ysql_copybin *c = ysql_copybin_new(k, 1, 8);
    pc_buf out = {0};
    char err[256];
    assert_int_equal(ysql_copybin_feed(c, "123", 3, &out, err, sizeof err), 0);
    assert_int_equal(ysql_copybin_feed(c, "4567890", 7, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "row 1:"));
    ysql_copybin_free(c);
    pc_buf_free(&out);
    /* the row number in messages counts from 1 */
    expect_error(k, 1, "1\n2\nx\n", "row 3: column 1");
}

/* The same text cut into pieces at every position (and byte by byte) converts
 * to the same bytes: rows, escapes and NULL markers spanning pieces. */
static void test_any_split(void **state)
{
    (void)state;
    const unsigned char k[] = {YCB_INT8, YCB_TEXT, YCB_BOOL, YCB_TEXT};
    const char *text = "1\tab\\\\\\\\\tt\t\\N\n-22\t\\\\N\\\n\\x41\\101\tfalse\tz\n333\t\t1\t\\\t\n\\.\n";
    size_t len = strlen(text);
    pc_buf whole = {0};
    char err[256];
    assert_int_equal(convert(k, 4, text, len, &whole, err, sizeof err), 0);
    for (size_t cut = 0; cut <= len; cut++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            ysql_copybin *c = ysql_copybin_new(k, 4, 4096);
            pc_buf out = {0};
            if (bytewise) {
                for (size_t i = 0; i < len; i++)
                    assert_int_equal(ysql_copybin_feed(c, text + i, 1, &out, err, sizeof err), 0);
            } else {
                assert_int_equal(ysql_copybin_feed(c, text, cut, &out, err, sizeof err), 0);
                assert_int_equal(ysql_copybin_feed(c, text + cut, len - cut, &out, err, sizeof err), 0);
            }
            assert_int_equal(ysql_copybin_end(c, &out, err, sizeof err), 0);
            assert_int_equal(ysql_copybin_rows(c), 3);
            assert_int_equal(out.len, whole.len);
            assert_memory_equal(out.p, whole.p, whole.len);
            ysql_copybin_free(c);
            pc_buf_free(&out);
        }
    }
    pc_buf_free(&whole);
}

static void test_kinds(void **state)
{
    (void)state;
    size_t max = 0;
    assert_int_equal(ysql_copybin_kind(23, -1, &max), YCB_INT4);
    assert_int_equal(ysql_copybin_kind(1042, 4 + 84, &max), YCB_TEXT);
    assert_true(max >= 84 * 4 * 4);
    assert_int_equal(ysql_copybin_kind(1043, -1, &max), 0);  /* varchar without a length */
    assert_int_equal(ysql_copybin_kind(25, -1, &max), 0);    /* text */
    assert_int_equal(ysql_copybin_kind(1700, -1, &max), 0);  /* numeric */
    assert_int_equal(ysql_copybin_kind(17, -1, &max), 0);    /* bytea */
    assert_null(ysql_copybin_new((const unsigned char *)"", 0, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),   cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_text_escapes), cmocka_unit_test(test_rows_and_end),
        cmocka_unit_test(test_any_split),  cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
