/* ysql plugin: the decisions that need no server (YugabyteDB behaviour as its
 * documentation describes it, names and patterns, the row digest, pg_dump
 * script sections, the catalog) compiled in directly, plus the descriptor and
 * the failure paths reachable without a server, through the fake host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakehost.h"

/* The pure part of the plugin, built into this test (it is hidden in the .so). */
#include "../../plugins/common/pc_buf.c"
#include "../../plugins/ysql/catalog.c"
#include "../../plugins/ysql/dbprops.c"
#include "../../plugins/ysql/digest.c"
#include "../../plugins/ysql/ident.c"
#include "../../plugins/ysql/sqlscan.c"
#include "../../plugins/ysql/toc.c"
#include "../../plugins/ysql/yb.c"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char alt[4096];
        snprintf(alt, sizeof alt, "../../%s", path);
        f = fopen(alt, "rb");
    }
    assert_non_null(f);
    pc_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        pc_buf_add(&b, tmp, n);
    fclose(f);
    *len = b.len;
    return pc_buf_take(&b);
}

/* ---- YugabyteDB behaviour ------------------------------------------------------------ */

static void yugabytedb_is_recognised_by_the_YB_marker_in_version(void **state)
{
    /* YugabyteDB's version() carries "-YB-" (ysql_dump prints "11.2-YB-2.21.0.0-b0") */
    assert_true(ybx_is_yugabyte("PostgreSQL 15.2-YB-2.25.0.0-b0 on x86_64-pc-linux-gnu, compiled by "
                                "clang version 17.0.6, 64-bit"));
    assert_true(ybx_is_yugabyte("PostgreSQL 11.2-YB-2.21.0.0-b0 on x86_64-pc-linux-gnu"));
    assert_false(ybx_is_yugabyte("PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu"));
    assert_false(ybx_is_yugabyte(""));
    assert_false(ybx_is_yugabyte(NULL));
}

static void as_of_accepts_microseconds_since_the_epoch(void **state)
{
    int64_t us = 0;
    char err[256];
    /* the time-travel documentation's example read time */
    assert_int_equal(ybx_parse_as_of("1741909726000000", &us, err, sizeof err), 0);
    assert_int_equal(us, 1741909726000000LL);
    assert_int_equal(ybx_parse_as_of("1741886500266607", &us, err, sizeof err), 0);
    assert_int_equal(us, 1741886500266607LL);
}

static void as_of_accepts_iso8601_utc(void **state)
{
    int64_t us = 0;
    char err[256];
    assert_int_equal(ybx_parse_as_of("2025-03-13T23:48:46Z", &us, err, sizeof err), 0);
    assert_int_equal(us, 1741909726000000LL);
    assert_int_equal(ybx_parse_as_of("2025-03-13 23:48:46.266607+00:00", &us, err, sizeof err), 0);
    assert_int_equal(us, 1741909726266607LL);
    assert_int_equal(ybx_parse_as_of("2024-02-29T00:00:00.5z", &us, err, sizeof err), 0);
    assert_int_equal(us, 1709164800500000LL);
    assert_int_equal(ybx_parse_as_of("1970-01-01T00:00:00+0000", &us, err, sizeof err), 0);
    assert_int_equal(us, 0);
}

static void as_of_refuses_what_it_cannot_read_exactly(void **state)
{
    int64_t us = 7;
    char err[256];
    /* seconds and milliseconds are not silently taken as microseconds */
    assert_int_equal(ybx_parse_as_of("1741909726", &us, err, sizeof err), -1);
    assert_non_null(strstr(err, "seconds or milliseconds"));
    assert_int_equal(ybx_parse_as_of("1741909726000", &us, err, sizeof err), -1);
    /* local times are ambiguous: only UTC */
    assert_int_equal(ybx_parse_as_of("2025-03-13T23:48:46+02:00", &us, err, sizeof err), -1);
    assert_int_equal(ybx_parse_as_of("2025-03-13T23:48:46", &us, err, sizeof err), -1);
    assert_int_equal(ybx_parse_as_of("2025-02-29T00:00:00Z", &us, err, sizeof err), -1);
    assert_int_equal(ybx_parse_as_of("2025-13-01T00:00:00Z", &us, err, sizeof err), -1);
    assert_int_equal(ybx_parse_as_of("2025-03-13T23:48:46.1234567Z", &us, err, sizeof err), -1);
    assert_int_equal(ybx_parse_as_of("yesterday", &us, err, sizeof err), -1);
    assert_non_null(strstr(err, "ISO-8601"));
    assert_int_equal(ybx_parse_as_of("", &us, err, sizeof err), -1);
    assert_int_equal(us, 7);
}

static void as_of_becomes_set_yb_read_time_in_microseconds(void **state)
{
    char *sql = ybx_read_time_sql(1741909726000000LL);
    assert_string_equal(sql, "SET yb_read_time TO 1741909726000000");
    free(sql);
}

static void as_of_on_postgresql_is_an_error_never_ignored(void **state)
{
    const char *pg = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
    char *m = ybx_as_of_refusal(0, "2025-03-13T23:48:46Z", "postgres@127.0.0.1:5432/app", pg);
    assert_non_null(m);
    assert_non_null(strstr(m, "as_of = 2025-03-13T23:48:46Z"));
    assert_non_null(strstr(m, "postgres@127.0.0.1:5432/app"));
    assert_non_null(strstr(m, "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)"));
    assert_null(strstr(m, "x86_64")); /* the version, not the build details */
    assert_non_null(strstr(m, "hint:"));
    free(m);
    assert_null(ybx_as_of_refusal(1, "2025-03-13T23:48:46Z", "x", "PostgreSQL 15.2-YB-2.25.0.0-b0"));
    assert_null(ybx_as_of_refusal(0, NULL, "x", pg));
}

static void dump_gets_yb_metadata_read_time_and_snapshot(void **state)
{
    char *a[4] = {0};
    /* YugabyteDB with a read time: ysql_dump --include-yb-metadata --read-time=MICROS */
    int n = ybx_dump_args(1, 1741909726000000LL, NULL, a, 4);
    assert_int_equal(n, 2);
    assert_string_equal(a[0], "--include-yb-metadata");
    assert_string_equal(a[1], "--read-time=1741909726000000");
    for (int i = 0; i < n; i++)
        free(a[i]);
    /* YugabyteDB with an exported snapshot */
    n = ybx_dump_args(1, 0, "0a1b2c", a, 4);
    assert_int_equal(n, 2);
    assert_string_equal(a[0], "--include-yb-metadata");
    assert_string_equal(a[1], "--snapshot=0a1b2c");
    for (int i = 0; i < n; i++)
        free(a[i]);
    /* PostgreSQL: the snapshot only, never YugabyteDB flags */
    n = ybx_dump_args(0, 1741909726000000LL, "00000003-0000001B-1", a, 4);
    assert_int_equal(n, 1);
    assert_string_equal(a[0], "--snapshot=00000003-0000001B-1");
    free(a[0]);
    assert_int_equal(ybx_dump_args(0, 0, NULL, a, 4), 0);
}

static void catalog_version_change_retries_the_schema_then_fails(void **state)
{
    /* as YugabyteDB's own backup does: compare yb_catalog_version() around the dump */
    assert_int_equal(ybx_catalog_check(13, 13, YBX_PHASE_SCHEMA, 1, 3), YBX_CATALOG_OK);
    assert_int_equal(ybx_catalog_check(13, 14, YBX_PHASE_SCHEMA, 1, 3), YBX_CATALOG_RETRY);
    assert_int_equal(ybx_catalog_check(14, 15, YBX_PHASE_SCHEMA, 3, 3), YBX_CATALOG_RETRY);
    assert_int_equal(ybx_catalog_check(15, 16, YBX_PHASE_SCHEMA, 4, 3), YBX_CATALOG_FAIL);
    assert_int_equal(ybx_catalog_check(13, 14, YBX_PHASE_SCHEMA, 1, 0), YBX_CATALOG_FAIL);
    /* once data is in the archive there is nothing to retry */
    assert_int_equal(ybx_catalog_check(13, 13, YBX_PHASE_DATA, 1, 3), YBX_CATALOG_OK);
    assert_int_equal(ybx_catalog_check(13, 14, YBX_PHASE_DATA, 1, 3), YBX_CATALOG_FAIL);
    char *m = ybx_catalog_message(13, 14, YBX_PHASE_DATA, 1);
    assert_non_null(strstr(m, "from 13 to 14"));
    assert_non_null(strstr(m, "DDL"));
    assert_non_null(strstr(m, "discarded"));
    free(m);
    m = ybx_catalog_message(15, 16, YBX_PHASE_SCHEMA, 4);
    assert_non_null(strstr(m, "4 times"));
    assert_non_null(strstr(m, "catalog_retries"));
    free(m);
}

/* ---- names, quoting, patterns -------------------------------------------------------- */

static char *ident(const char *s)
{
    pc_buf b = {0};
    ysql_buf_ident(&b, s);
    return pc_buf_take(&b);
}

static void identifiers_and_literals_are_always_quoted(void **state)
{
    char *s = ident("Mixed \"Case\".x");
    assert_string_equal(s, "\"Mixed \"\"Case\"\".x\"");
    free(s);
    pc_buf b = {0};
    ysql_buf_literal(&b, "it's \\ fine");
    s = pc_buf_take(&b);
    assert_string_equal(s, "'it''s \\ fine'");
    free(s);
    s = ysql_qualified("My Schema", "t.1");
    assert_string_equal(s, "\"My Schema\".\"t.1\"");
    free(s);
    ysql_buf_conninfo(&b, "host", "127.0.0.1");
    ysql_buf_conninfo(&b, "dbname", "a b'c\\d");
    s = pc_buf_take(&b);
    assert_string_equal(s, "host='127.0.0.1' dbname='a b\\'c\\\\d'");
    free(s);
}

static void qualified_names_fold_like_psql(void **state)
{
    char *s = NULL, *n = NULL, err[256];
    assert_int_equal(ysql_parse_qualified("\"My Schema\".\"Mixed Case.Table\"", &s, &n, err, sizeof err), 0);
    assert_string_equal(s, "My Schema");
    assert_string_equal(n, "Mixed Case.Table");
    free(s), free(n);
    assert_int_equal(ysql_parse_qualified("App.Big", &s, &n, err, sizeof err), 0);
    assert_string_equal(s, "app");
    assert_string_equal(n, "big");
    free(s), free(n);
    assert_int_equal(ysql_parse_qualified("\"a\"\"b\"", &s, &n, err, sizeof err), 0);
    assert_null(s);
    assert_string_equal(n, "a\"b");
    free(n);
    assert_int_equal(ysql_parse_qualified("a.b.c", &s, &n, err, sizeof err), -1);
    assert_int_equal(ysql_parse_qualified("\"open", &s, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "double quote"));
    assert_int_equal(ysql_parse_qualified("app.", &s, &n, err, sizeof err), -1);
}

static void patterns_become_anchored_regexes_like_pg_dump(void **state)
{
    char *s = NULL, *n = NULL, err[256];
    assert_int_equal(ysql_pattern_regex("app.*", &s, &n, err, sizeof err), 0);
    assert_string_equal(s, "^(app)$");
    assert_string_equal(n, "^(.*)$");
    free(s), free(n);
    assert_int_equal(ysql_pattern_regex("Events_20?$", &s, &n, err, sizeof err), 0);
    assert_null(s);
    assert_string_equal(n, "^(events_20.\\$)$");
    free(n);
    assert_int_equal(ysql_pattern_regex("\"My Schema\".\"Mixed Case.T*\"", &s, &n, err, sizeof err), 0);
    assert_string_equal(s, "^(My Schema)$");
    assert_string_equal(n, "^(Mixed Case\\.T\\*)$");
    free(s), free(n);
    assert_int_equal(ysql_pattern_regex("(east|west)*gsm", &s, &n, err, sizeof err), 0);
    assert_string_equal(n, "^((east|west).*gsm)$");
    free(n);
    assert_int_equal(ysql_pattern_regex("db.app.t", &s, &n, err, sizeof err), -1);
}

static void lists_split_on_commas_outside_quotes(void **state)
{
    char **v = NULL;
    assert_int_equal(ysql_split_list(" app.* , \"a,b\".c ,, d ", &v), 3);
    assert_string_equal(v[0], "app.*");
    assert_string_equal(v[1], "\"a,b\".c");
    assert_string_equal(v[2], "d");
    assert_null(v[3]);
    ysql_strv_free(v);
    assert_int_equal(ysql_split_list("\"x, y", &v), -1);
    assert_int_equal(ysql_split_list(" , ", &v), 0);
    ysql_strv_free(v);
}

static void archive_names_are_safe_and_unambiguous(void **state)
{
    char *a = ysql_object_component("My Schema", "Mixed Case.Table");
    assert_string_equal(a, "My%20Schema.Mixed%20Case%2ETable");
    free(a);
    a = ysql_object_component("a.b", "c");
    char *b = ysql_object_component("a", "b.c");
    assert_string_not_equal(a, b);
    free(a), free(b);
    a = ysql_object_component("x", "../../etc/passwd\n");
    assert_null(strchr(a, '/'));
    assert_null(strchr(a, '\n'));
    assert_null(strstr(a, ".."));
    free(a);
    a = ysql_object_component("s", "ünï");
    assert_string_equal(a, "s.%C3%BCn%C3%AF");
    free(a);
}

/* ---- the row digest ---------------------------------------------------------------- */

static ysql_digest digest_rows(ysql_hasher *h, const char *const *rows, size_t n)
{
    ysql_digest d = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ysql_digest_row(h, &d, rows[i], strlen(rows[i])), 0);
    return d;
}

static void digest_is_sha256_sum_and_order_independent(void **state)
{
    ysql_hasher *h = ysql_hasher_new();
    assert_non_null(h);
    const char *one[] = {"a\n"};
    ysql_digest d = digest_rows(h, one, 1);
    char text[64];
    ysql_digest_format(&d, text);
    /* sha256("a\n") = 87428fc522803d31065e7bce3cf03fe4 75096631e5e07bbd7a0fde60c4cf25c7 */
    assert_string_equal(text, "sha256-sum128:87428fc522803d31065e7bce3cf03fe4");
    assert_int_equal(d.rows, 1);

    const char *abc[] = {"1\tx\n", "2\t\\N\n", "3\t\n"}, *cab[] = {"3\t\n", "1\tx\n", "2\t\\N\n"};
    ysql_digest x = digest_rows(h, abc, 3), y = digest_rows(h, cab, 3);
    assert_true(x.hi == y.hi && x.lo == y.lo && x.rows == 3 && y.rows == 3);
    /* NULL (\N) and empty differ; duplicates count */
    const char *dup[] = {"1\tx\n", "1\tx\n"}, *single[] = {"1\tx\n"};
    ysql_digest p = digest_rows(h, dup, 2), q = digest_rows(h, single, 1);
    assert_false(p.hi == q.hi && p.lo == q.lo);
    /* slices add up to the whole table */
    ysql_digest s1 = digest_rows(h, abc, 1), s2 = digest_rows(h, abc + 1, 2);
    ysql_digest_merge(&s1, &s2);
    assert_true(s1.hi == x.hi && s1.lo == x.lo && s1.rows == 3);
    ysql_hasher_free(h);
}

static void digest_text_round_trips_and_carries(void **state)
{
    ysql_digest a = {0x1, 0xffffffffffffffffULL, 1}, b = {0, 1, 1};
    ysql_digest_merge(&a, &b);
    assert_true(a.hi == 2 && a.lo == 0 && a.rows == 2);
    ysql_digest m = {0xffffffffffffffffULL, 0xffffffffffffffffULL, 0}, one = {0, 1, 0};
    ysql_digest_merge(&m, &one); /* modulo 2^128 */
    assert_true(m.hi == 0 && m.lo == 0);
    char text[64];
    ysql_digest c = {0x0123456789abcdefULL, 0xfedcba9876543210ULL, 5}, back = {0};
    ysql_digest_format(&c, text);
    assert_int_equal(ysql_digest_parse(text, &back), 0);
    assert_true(back.hi == c.hi && back.lo == c.lo);
    assert_int_equal(ysql_digest_parse("sha256-sum128:0123", &back), -1);
    assert_int_equal(ysql_digest_parse("md5:0123456789abcdeffedcba9876543210", &back), -1);
    assert_int_equal(ysql_digest_parse(NULL, &back), -1);
}

/* ---- pg_dump scripts and the catalog --------------------------------------------------- */

static char **strv(const char *a, const char *b, const char *c)
{
    char **v = calloc(4, sizeof *v);
    const char *in[] = {a, b, c};
    for (int i = 0, k = 0; i < 3; i++)
        if (in[i])
            v[k++] = strdup(in[i]);
    return v;
}

/* app.child and app.parent as the backup's catalog query describes them. */
static void fixture_catalog(catalog *c)
{
    c->n = 2;
    c->v = calloc(3, sizeof *c->v);
    cat_table *t = &c->v[0];
    t->schema = strdup("app"), t->name = strdup("child"), t->kind = 'r';
    t->columns = strv("id", "parent_id", "note");
    t->sequences = strv("child_id_seq", NULL, NULL);
    t->indexes = strv("child_parent_idx", "child_pkey", NULL);
    t->slices = 1;
    t = &c->v[1];
    t->schema = strdup("app"), t->name = strdup("parent"), t->kind = 'r';
    t->columns = strv("id", "name", NULL);
    t->sequences = strv(NULL, NULL, NULL);
    t->indexes = strv("parent_name_key", "parent_pkey", NULL);
    t->slices = 1;
}

static int has_entry(const toc_script *s, const char *type, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].type, type) && !strcmp(s->v[i].name, name))
            return (int)i;
    return -1;
}

static void toc_cuts_a_real_pg_dump_script_at_its_entries(void **state)
{
    size_t len;
    char *text = slurp("tests/fixtures/ysql/pre-data.sql", &len);
    toc_script s;
    assert_int_equal(toc_parse(text, len, &s), 0);
    assert_int_equal(s.n, 40);
    /* the preamble carries the SETs and psql's \restrict, the trailer \unrestrict */
    assert_non_null(memmem(text, s.preamble_end, "\\restrict", 9));
    assert_non_null(memmem(text, s.preamble_end, "SET client_encoding", 19));
    assert_non_null(memmem(text + s.trailer_start, len - s.trailer_start, "\\unrestrict", 11));
    int i = has_entry(&s, "TABLE", "Mixed Case.Table");
    assert_true(i >= 0);
    assert_string_equal(s.v[i].schema, "My Schema");
    assert_true(has_entry(&s, "DEFAULT", "child id") >= 0);
    assert_true(has_entry(&s, "SEQUENCE OWNED BY", "child_id_seq") >= 0);
    assert_true(has_entry(&s, "COMMENT", "COLUMN everything.t_text") >= 0);
    i = has_entry(&s, "EXTENSION", "pgcrypto");
    assert_string_equal(s.v[i].schema, "-");
    /* entries tile the script between preamble and trailer */
    assert_int_equal(s.v[0].start, s.preamble_end);
    for (size_t k = 1; k < s.n; k++)
        assert_int_equal(s.v[k].start, s.v[k - 1].end);
    assert_int_equal(s.v[s.n - 1].end, s.trailer_start);
    toc_free(&s);
    free(text);
}

static void table_restore_picks_the_tables_entries_only(void **state)
{
    catalog c = {0};
    fixture_catalog(&c);
    char want[2] = {1, 0}; /* app.child */
    size_t len;
    char *pre = slurp("tests/fixtures/ysql/pre-data.sql", &len);
    toc_script s;
    assert_int_equal(toc_parse(pre, len, &s), 0);
    const char *yes[][2] = {{"TABLE", "child"}, {"SEQUENCE", "child_id_seq"},
                            {"SEQUENCE OWNED BY", "child_id_seq"}, {"DEFAULT", "child id"}};
    const char *no[][2] = {{"TABLE", "parent"}, {"TABLE", "big"}, {"VIEW", "child_view"},
                           {"MATERIALIZED VIEW", "child_counts"}, {"FUNCTION", "touch()"},
                           {"SCHEMA", "app"}, {"DEFAULT", "everything serial_col"}};
    for (size_t k = 0; k < sizeof yes / sizeof *yes; k++)
        assert_int_equal(toc_entry_wanted(&s, &s.v[has_entry(&s, yes[k][0], yes[k][1])], &c, want), 1);
    for (size_t k = 0; k < sizeof no / sizeof *no; k++)
        assert_int_equal(toc_entry_wanted(&s, &s.v[has_entry(&s, no[k][0], no[k][1])], &c, want), 0);
    toc_free(&s);
    free(pre);

    char *post = slurp("tests/fixtures/ysql/post-data.sql", &len);
    assert_int_equal(toc_parse(post, len, &s), 0);
    const char *pyes[][2] = {{"CONSTRAINT", "child child_pkey"}, {"INDEX", "child_parent_idx"},
                             {"TRIGGER", "child child_touch"}, {"FK CONSTRAINT", "child child_parent_id_fkey"}};
    const char *pno[][2] = {{"CONSTRAINT", "parent parent_pkey"}, {"INDEX", "child_counts_idx"},
                            {"MATERIALIZED VIEW DATA", "child_counts"}, {"INDEX", "events_payload_idx"}};
    for (size_t k = 0; k < sizeof pyes / sizeof *pyes; k++)
        assert_int_equal(toc_entry_wanted(&s, &s.v[has_entry(&s, pyes[k][0], pyes[k][1])], &c, want), 1);
    for (size_t k = 0; k < sizeof pno / sizeof *pno; k++)
        assert_int_equal(toc_entry_wanted(&s, &s.v[has_entry(&s, pno[k][0], pno[k][1])], &c, want), 0);
    toc_free(&s);
    free(post);
    cat_free(&c);
}

static void toc_of_a_script_without_entries_is_all_preamble(void **state)
{
    const char *t = "--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
    toc_script s;
    assert_int_equal(toc_parse(t, strlen(t), &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.preamble_end, s.trailer_start);
    assert_non_null(strstr(t + s.trailer_start, "dump complete"));
    toc_free(&s);
}

static void catalog_round_trips_through_json(void **state)
{
    catalog c = {0}, back = {0};
    fixture_catalog(&c);
    c.v[1].parent_schema = strdup("app");
    c.v[1].parent_name = strdup("root\"x");
    c.v[1].bytes = 123456789012LL;
    c.v[1].slices = 7;
    char *json = cat_to_json(&c);
    assert_non_null(json);
    char err[256];
    assert_int_equal(cat_from_json(json, strlen(json), &back, err, sizeof err), 0);
    assert_int_equal(back.n, 2);
    cat_table *t = cat_find(&back, "app", "parent");
    assert_non_null(t);
    assert_string_equal(t->parent_name, "root\"x");
    assert_int_equal(t->slices, 7);
    assert_int_equal(t->bytes, 123456789012LL);
    assert_true(ysql_strv_has(t->indexes, "parent_name_key"));
    assert_string_equal(cat_find(&back, "app", "child")->columns[2], "note");
    assert_null(cat_find(&back, "app", "nope"));
    cat_free(&back);
    free(json);
    cat_free(&c);
    assert_int_equal(cat_from_json("{\"format\": 3, \"tables\": []}", 27, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "format"));
    assert_int_equal(cat_from_json("{\"format\":1,\"tables\":[{\"schema\":\"a\"}]}", 39, &back, err, sizeof err), -1);
    assert_int_equal(cat_from_json("not json", 8, &back, err, sizeof err), -1);
}

/* ---- the plugin through the fake host ---------------------------------------------------- */

typedef struct fx {
    void *dl;
    const arca_plugin *p;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->p = fh_load_plugin("ysql", &f->dl);
    if (!f->p) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    fh_unload_plugin(f->dl);
    free(f);
    return 0;
}

static const arca_option *find_opt(const arca_option *t, const char *name)
{
    for (; t && t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

static void descriptor_declares_a_source_with_its_options(void **state)
{
    fx *f = *state;
    assert_string_equal(f->p->name, "ysql");
    assert_int_equal(f->p->roles, ARCA_ROLE_SOURCE);
    const char *names[] = {"host", "port", "user", "password", "dbname", "sslmode", "sslrootcert", "jobs",
                           "tables", "exclude_tables", "include_roles", "dump_command", "restore_command",
                           "as_of"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        assert_non_null(find_opt(f->p->options, names[i]));
    assert_true(find_opt(f->p->options, "password")->flags & ARCA_OPT_SECRET);
    const char *flags[] = {"clean", "drop_on_failure", "verify_data"};
    for (size_t i = 0; i < 3; i++)
        assert_true(find_opt(f->p->restore_options, flags[i])->flags & ARCA_OPT_FLAG);
    assert_non_null(find_opt(f->p->restore_options, "target_database"));
    assert_non_null(find_opt(f->p->restore_options, "table"));
}

typedef struct yconf {
    const char *host;
    int64_t port;
    const char *user, *password, *dbname;
    int sslmode;
    const char *sslrootcert;
    int64_t jobs;
} yconf; /* the leading fields of ysql_config */

static void defaults_fit_yugabytedb(void **state)
{
    fx *f = *state;
    char err[512];
    const char *kv[] = {NULL};
    void *cfg = fh_config(f->p->options, f->p->config_size, kv, err, sizeof err);
    assert_non_null(cfg);
    const yconf *y = cfg;
    assert_string_equal(y->host, "127.0.0.1");
    assert_int_equal(y->port, 5433);
    assert_string_equal(y->user, "yugabyte");
    assert_string_equal(y->dbname, "yugabyte");
    assert_int_equal(y->jobs, 2);
    fh_config_free(f->p->options, cfg);
}

static int create_with(fx *f, fakehost *fh, const char *const *kv, void **inst, void **cfg)
{
    char err[512];
    *cfg = fh_config(f->p->options, f->p->config_size, kv, err, sizeof err);
    assert_non_null(*cfg);
    return f->p->create(fh_host(fh), *cfg, inst);
}

static void create_refuses_bad_as_of_and_patterns(void **state)
{
    fx *f = *state;
    void *inst = NULL, *cfg = NULL;
    fakehost *fh = fh_new();
    const char *bad_time[] = {"as_of", "1741909726", NULL};
    assert_int_equal(create_with(f, fh, bad_time, &inst, &cfg), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(fh), "as_of"));
    fh_config_free(f->p->options, cfg);
    const char *bad_pat[] = {"tables", "app.\"x", NULL};
    assert_int_equal(create_with(f, fh, bad_pat, &inst, &cfg), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(fh), "tables"));
    fh_config_free(f->p->options, cfg);
    const char *good[] = {"as_of", "2025-03-13T23:48:46Z", "tables", "app.*, \"My Schema\".*", NULL};
    assert_int_equal(create_with(f, fh, good, &inst, &cfg), ARCA_OK);
    f->p->destroy(inst);
    fh_config_free(f->p->options, cfg);
    fh_free(fh);
}

static void backup_of_an_unreachable_server_names_it_and_hints(void **state)
{
    fx *f = *state;
    void *inst = NULL, *cfg = NULL;
    fakehost *fh = fh_new();
    /* port 1 on loopback: nothing listens there */
    const char *kv[] = {"port", "1", "user", "arca", "dbname", "app", "password", "s3cr3t-XYZ",
                        "dump_command", "/bin/true", "connect_timeout", "5", NULL};
    assert_int_equal(create_with(f, fh, kv, &inst, &cfg), ARCA_OK);
    int rc = f->p->source->backup(inst, fh_sink(fh));
    assert_int_equal(rc, ARCA_EFAIL);
    assert_non_null(strstr(fh_last_error(fh), "arca@127.0.0.1:1/app"));
    assert_non_null(strstr(fh_last_error(fh), "hint: check host and port"));
    assert_null(strstr(fh_last_error(fh), "s3cr3t"));
    assert_int_equal(fh_object_count(fh), 0);
    f->p->destroy(inst);
    fh_config_free(f->p->options, cfg);
    fh_free(fh);
}

static void backup_without_a_dump_command_is_a_config_error(void **state)
{
    fx *f = *state;
    void *inst = NULL, *cfg = NULL;
    fakehost *fh = fh_new();
    const char *kv[] = {"port", "1", "dump_command", "/nonexistent/pg_dump", NULL};
    assert_int_equal(create_with(f, fh, kv, &inst, &cfg), ARCA_OK);
    assert_int_equal(f->p->source->backup(inst, fh_sink(fh)), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(fh), "/nonexistent/pg_dump"));
    assert_non_null(strstr(fh_last_error(fh), "dump_command"));
    f->p->destroy(inst);
    fh_config_free(f->p->options, cfg);
    fh_free(fh);
}

static void restore_refuses_an_archive_of_another_format(void **state)
{
    fx *f = *state;
    void *inst = NULL, *cfg = NULL;
    fakehost *fh = fh_new();
    const char *kv[] = {"port", "1", NULL};
    assert_int_equal(create_with(f, fh, kv, &inst, &cfg), ARCA_OK);
    fh_feed_info_set(fh, "ysql_format", "3");
    fh_feed_file(fh, "schema/catalog.json", 0600, "{}", 2);
    char err[512];
    const char *rkv[] = {NULL};
    void *ro = fh_config(f->p->restore_options, f->p->restore_config_size, rkv, err, sizeof err);
    assert_int_equal(f->p->source->restore(inst, fh_feed(fh), ro), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(fh), "format 3"));
    fh_config_free(f->p->restore_options, ro);
    f->p->destroy(inst);
    fh_config_free(f->p->options, cfg);
    fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(yugabytedb_is_recognised_by_the_YB_marker_in_version),
        cmocka_unit_test(as_of_accepts_microseconds_since_the_epoch),
        cmocka_unit_test(as_of_accepts_iso8601_utc),
        cmocka_unit_test(as_of_refuses_what_it_cannot_read_exactly),
        cmocka_unit_test(as_of_becomes_set_yb_read_time_in_microseconds),
        cmocka_unit_test(as_of_on_postgresql_is_an_error_never_ignored),
        cmocka_unit_test(dump_gets_yb_metadata_read_time_and_snapshot),
        cmocka_unit_test(catalog_version_change_retries_the_schema_then_fails),
        cmocka_unit_test(identifiers_and_literals_are_always_quoted),
        cmocka_unit_test(qualified_names_fold_like_psql),
        cmocka_unit_test(patterns_become_anchored_regexes_like_pg_dump),
        cmocka_unit_test(lists_split_on_commas_outside_quotes),
        cmocka_unit_test(archive_names_are_safe_and_unambiguous),
        cmocka_unit_test(digest_is_sha256_sum_and_order_independent),
        cmocka_unit_test(digest_text_round_trips_and_carries),
        cmocka_unit_test(toc_cuts_a_real_pg_dump_script_at_its_entries),
        cmocka_unit_test(table_restore_picks_the_tables_entries_only),
        cmocka_unit_test(toc_of_a_script_without_entries_is_all_preamble),
        cmocka_unit_test(catalog_round_trips_through_json),
    };
    const struct CMUnitTest plugin[] = {
        cmocka_unit_test(descriptor_declares_a_source_with_its_options),
        cmocka_unit_test(defaults_fit_yugabytedb),
        cmocka_unit_test(create_refuses_bad_as_of_and_patterns),
        cmocka_unit_test(backup_of_an_unreachable_server_names_it_and_hints),
        cmocka_unit_test(backup_without_a_dump_command_is_a_config_error),
        cmocka_unit_test(restore_refuses_an_archive_of_another_format),
    };
    int failed = cmocka_run_group_tests_name("ysql pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("ysql plugin", plugin, fx_setup, fx_teardown);
    return failed;
}
