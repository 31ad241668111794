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

/* ---- SQL statements and what they are about ----------------------------------------------- */

/* The statements of `text`, each trimmed of surrounding blanks, joined by "|". */
static char *statements(const char *text)
{
    pc_buf b = {0};
    size_t pos = 0, len = strlen(text);
    sql_stmt st;
    while (sql_next(text, len, &pos, &st)) {
        size_t e = st.end;
        while (e > st.start && (text[e - 1] == '\n' || text[e - 1] == ' '))
            e--;
        if (b.len)
            pc_buf_add(&b, "|", 1);
        pc_buf_add(&b, text + st.start, e - st.start);
    }
    return pc_buf_take(&b);
}

static void statements_are_cut_where_psql_cuts_them(void **state)
{
    char *got = statements(
        "\\restrict abc\n"
        "SET x = 'a;b';\n"
        "-- a comment; with a semicolon\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RETURN 1; END $f$;\n"
        "/* nested /* comment; */ still; */ SELECT E'it\\'s;', \"semi;colon\";\n"
        "CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO u VALUES (1); DELETE FROM u);\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\n"
        "SELECT $$x;$$, $1;\n");
    assert_string_equal(got,
        "\\restrict abc|SET x = 'a;b';|"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RETURN 1; END $f$;|"
        "SELECT E'it\\'s;', \"semi;colon\";|"
        "CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO u VALUES (1); DELETE FROM u);|"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;|"
        "SELECT $$x;$$, $1;");
    free(got);
}

/* "KIND schema.name[.sub]" for a statement's subject, "-" for none. */
static char *subject(const char *stmt)
{
    sql_subject j;
    assert_int_equal(sql_subject_of(stmt, strlen(stmt), &j), 0);
    static const char *const kinds[] = {"-", "rel", "index", "sequence", "schema", "database", "lo"};
    pc_buf b = {0};
    pc_buf_str(&b, kinds[j.kind]);
    if (j.kind)
        pc_buf_printf(&b, " %s.%s%s%s", j.schema ? j.schema : "?", j.name ? j.name : "?",
                      j.sub ? "." : "", j.sub ? j.sub : "");
    sql_subject_free(&j);
    return pc_buf_take(&b);
}

static void statements_name_their_subject_whatever_the_comment_says(void **state)
{
    const char *cases[][2] = {
        {"CREATE TABLE \"a\nb\".\"t\nx\" (id int);", "rel a\nb.t\nx"},
        {"CREATE UNLOGGED TABLE IF NOT EXISTS s.t (id int);", "rel s.t"},
        {"ALTER TABLE ONLY s.p ATTACH PARTITION s.\"Part 1\" FOR VALUES IN (1);", "rel s.Part 1"},
        {"ALTER TABLE ONLY \"S\".t\n    ADD CONSTRAINT \"pk\n1\" PRIMARY KEY (id);", "rel S.t"},
        {"ALTER TABLE s.t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME s.t_id_seq);", "rel s.t"},
        {"ALTER INDEX s.pidx ATTACH PARTITION s.cidx;", "index s.cidx"},
        {"CREATE UNIQUE INDEX \"i\nx\" ON ONLY s.t USING btree (a);", "rel s.t"},
        {"CREATE TRIGGER tg AFTER UPDATE OF a, \"on\" ON s.t FOR EACH ROW EXECUTE FUNCTION f();", "rel s.t"},
        {"CREATE CONSTRAINT TRIGGER tg AFTER INSERT ON s.t FROM s.u FOR EACH ROW EXECUTE FUNCTION f();", "rel s.t"},
        {"CREATE POLICY p ON s.t TO bob USING (true);", "rel s.t"},
        {"CREATE RULE r AS ON INSERT TO s.t DO INSTEAD NOTHING;", "rel s.t"},
        {"CREATE SEQUENCE s.seq START WITH 1;", "sequence s.seq"},
        {"ALTER SEQUENCE s.seq OWNED BY s.t.id;", "sequence s.seq"},
        {"COMMENT ON COLUMN s.t.\"c.d\" IS 'x';", "rel s.t.c.d"},
        {"COMMENT ON CONSTRAINT c ON s.t IS 'x';", "rel s.t.c"},
        {"COMMENT ON CONSTRAINT c ON DOMAIN s.d IS 'x';", "-"},
        {"COMMENT ON INDEX s.i IS 'x';", "index s.i"},
        {"SECURITY LABEL FOR dummy ON TABLE s.t IS 'x';", "rel s.t"},
        {"GRANT SELECT(a, \"on\"),UPDATE ON TABLE s.t TO bob;", "rel s.t"},
        {"REVOKE ALL ON SEQUENCE s.seq FROM PUBLIC;", "sequence s.seq"},
        {"CREATE SCHEMA \"a\nb\";", "schema ?.a\nb"},
        {"SELECT pg_catalog.lo_create('4242');", "lo ?.4242"},
        {"ALTER LARGE OBJECT 4242 OWNER TO bob;", "lo ?.4242"},
        {"GRANT SELECT ON LARGE OBJECT 4242 TO bob;", "lo ?.4242"},
        {"CREATE VIEW s.v AS SELECT 1;", "-"},
        {"SET search_path = s;", "-"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = subject(cases[i][0]);
        if (strcmp(got, cases[i][1]))
            fail_msg("%s: got '%s', want '%s'", cases[i][0], got, cases[i][1]);
        free(got);
    }
}

static int collect_role(void *ud, const char *role)
{
    pc_buf *b = ud;
    pc_buf_printf(b, "%s%s", b->len ? "," : "", role);
    return 0;
}

static void owner_and_grant_statements_name_their_roles(void **state)
{
    const char *owners[][2] = {
        {"ALTER TABLE s.t OWNER TO bob;", "bob"},
        {"ALTER FUNCTION s.f(integer) OWNER TO \"Mixed Role\";", "Mixed Role"},
        {"ALTER TABLE s.\"OWNER TO x\" ADD COLUMN c int;", NULL},
        {"COMMENT ON TABLE s.t IS 'OWNER TO bob';", NULL},
    };
    for (size_t i = 0; i < sizeof owners / sizeof *owners; i++) {
        char *got = sql_owner_of(owners[i][0], strlen(owners[i][0]));
        if (owners[i][1])
            assert_string_equal(got, owners[i][1]);
        else
            assert_null(got);
        free(got);
    }
    const char *grants[][2] = {
        {"GRANT SELECT ON TABLE s.t TO bob, \"Al Ice\" WITH GRANT OPTION;", "bob,Al Ice"},
        {"REVOKE ALL ON TABLE s.t FROM PUBLIC;", ""},
        {"SET SESSION AUTHORIZATION carol;", "carol"},
        {"ALTER DEFAULT PRIVILEGES FOR ROLE bob IN SCHEMA app GRANT SELECT ON TABLES TO alice;", "bob,alice"},
        {"CREATE POLICY p ON s.t TO dave, CURRENT_USER USING (true);", "dave"},
        {"GRANT SELECT(\"to\") ON TABLE s.t TO erin;", "erin"},
    };
    for (size_t i = 0; i < sizeof grants / sizeof *grants; i++) {
        pc_buf b = {0};
        pc_buf_add(&b, "", 0);
        assert_int_equal(sql_roles_granted(grants[i][0], strlen(grants[i][0]), collect_role, &b), 0);
        if (strcmp(b.p, grants[i][1]))
            fail_msg("%s: got '%s', want '%s'", grants[i][0], b.p, grants[i][1]);
        pc_buf_free(&b);
    }
}

/* sections-*.sql: pg_dump 15 of schema.sql + sections.sql, both sections at once and each alone */
static void one_dump_of_both_sections_is_cut_where_pg_dump_cuts(void **state)
{
    size_t lb, lp, lq;
    char *both = slurp("tests/fixtures/ysql/sections-both.sql", &lb);
    char *pre = slurp("tests/fixtures/ysql/sections-pre.sql", &lp);
    char *post = slurp("tests/fixtures/ysql/sections-post.sql", &lq);
    toc_script b, p, q;
    assert_int_equal(toc_parse(both, lb, &b), 0);
    assert_int_equal(toc_parse(pre, lp, &p), 0);
    assert_int_equal(toc_parse(post, lq, &q), 0);
    long cut = toc_post_data_start(&b);
    assert_true(cut > 0 && (size_t)cut < b.n);
    assert_int_equal(b.n, p.n + q.n);
    /* every entry lands in the section pg_dump files it under; the ACLs, which
     * a dump of both sections prints last, come after the post-data */
    for (size_t i = 0; i < b.n; i++) {
        const toc_entry *e = &b.v[i];
        size_t n = e->end - e->start;
        int in_pre = 0, in_post = 0;
        for (size_t k = 0; k < p.n; k++)
            in_pre |= p.v[k].end - p.v[k].start == n && !memcmp(pre + p.v[k].start, both + e->start, n);
        for (size_t k = 0; k < q.n; k++)
            in_post |= q.v[k].end - q.v[k].start == n && !memcmp(post + q.v[k].start, both + e->start, n);
        if (!strcmp(e->type, "ACL"))
            assert_true((size_t)cut <= i && (in_pre || in_post));
        else if ((size_t)cut <= i ? !in_post : !in_pre)
            fail_msg("entry %zu (%s %s) is on the wrong side of the cut at %ld", i, e->type, e->name, cut);
    }
    /* the post-data part starts with an index, constraint, ... never with a table */
    assert_true(toc_is_post_data(&b, &b.v[cut]));
    toc_free(&b);
    toc_free(&p);
    toc_free(&q);
    free(both);
    free(pre);
    free(post);

    /* a pre-data entry after the first post-data one: not cut (the dump goes section by section) */
    const char *odd = "SET x = 1;\n--\n-- Name: t_pkey; Type: INDEX; Schema: s; Owner: o\n--\n\nCREATE INDEX i ON s.t (a);\n"
                      "--\n-- Name: u; Type: TABLE; Schema: s; Owner: o\n--\n\nCREATE TABLE s.u (a int);\n";
    toc_script o;
    assert_int_equal(toc_parse(odd, strlen(odd), &o), 0);
    assert_int_equal(o.n, 2);
    assert_int_equal(toc_post_data_start(&o), -1);
    toc_free(&o);
}

/* the two tables whose "-- Name:" comments read alike: "a\nb"."t\nx" and "a b"."t x" */
static void table_restore_finds_a_name_with_a_newline_by_its_sql(void **state)
{
    catalog c = {0};
    c.n = 2;
    c.v = calloc(3, sizeof *c.v);
    const char *names[2][3] = {{"a\nb", "t\nx", "i\ndx"}, {"a b", "t x", "i dx"}};
    for (int i = 0; i < 2; i++) {
        cat_table *t = &c.v[i];
        t->schema = strdup(names[i][0]), t->name = strdup(names[i][1]), t->kind = 'r';
        t->columns = strv("id", "v", NULL);
        t->sequences = strv(NULL, NULL, NULL);
        t->indexes = strv(names[i][2], i ? "t x_pkey" : "pk\n1", NULL);
        t->slices = 1;
    }
    char want[2] = {1, 0};
    size_t len;
    char *both = slurp("tests/fixtures/ysql/sections-both.sql", &len);
    toc_script s;
    assert_int_equal(toc_parse(both, len, &s), 0);
    size_t kept = 0;
    for (size_t i = 0; i < s.n; i++) {
        int w = toc_entry_wanted(&s, &s.v[i], &c, want);
        assert_true(w >= 0);
        if (!w)
            continue;
        kept++;
        /* every entry kept names the newline table, none the other */
        const char *e = both + s.v[i].start;
        size_t n = s.v[i].end - s.v[i].start;
        assert_non_null(memmem(e, n, "\"a\nb\".\"t\nx\"", 11));
        assert_null(memmem(e, n, "\"a b\"", 5));
    }
    assert_int_equal(kept, 4); /* table, primary key, index, comment */
    /* and the other way round */
    want[0] = 0, want[1] = 1;
    kept = 0;
    for (size_t i = 0; i < s.n; i++)
        if (toc_entry_wanted(&s, &s.v[i], &c, want) == 1) {
            kept++;
            assert_null(memmem(both + s.v[i].start, s.v[i].end - s.v[i].start, "\"a\nb\"", 5));
        }
    assert_int_equal(kept, 4);
    toc_free(&s);
    free(both);
    cat_free(&c);
}

static void no_owner_drops_owner_statements_and_nothing_else(void **state)
{
    const char *script =
        "SET x = 1;\n"
        "--\n-- Name: f(); Type: FUNCTION; Schema: s; Owner: bob\n--\n\n"
        "CREATE FUNCTION s.f() RETURNS void LANGUAGE sql AS $$ALTER TABLE s.t OWNER TO eve;$$;\n\n\n"
        "ALTER FUNCTION s.f() OWNER TO bob;\n\n"
        "--\n-- Name: t; Type: TABLE; Schema: s; Owner: bob\n--\n\n"
        "CREATE TABLE s.t (a int);\n\n\nALTER TABLE s.t OWNER TO \"b\nob\";\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n";
    toc_script s;
    assert_int_equal(toc_parse(script, strlen(script), &s), 0);
    assert_int_equal(s.n, 2);
    pc_buf out = {0};
    assert_int_equal(toc_emit(&s, NULL, 1, &out), 2);
    assert_null(strstr(out.p, "OWNER TO bob"));
    assert_null(strstr(out.p, "OWNER TO \"b\nob\""));
    assert_non_null(strstr(out.p, "$$ALTER TABLE s.t OWNER TO eve;$$;")); /* a function body is not a statement */
    assert_non_null(strstr(out.p, "CREATE TABLE s.t (a int);"));
    assert_non_null(strstr(out.p, "dump complete"));
    pc_buf_free(&out);
    /* without no_owner the script comes out as it went in */
    assert_int_equal(toc_emit(&s, NULL, 0, &out), 2);
    assert_string_equal(out.p, script);
    pc_buf_free(&out);
    char keep[2] = {0, 1};
    assert_int_equal(toc_emit(&s, keep, 0, &out), 1);
    assert_null(strstr(out.p, "FUNCTION"));
    pc_buf_free(&out);
    toc_free(&s);
}

static void index_builds_are_told_from_other_statements(void **state)
{
    (void)state;
    static const struct { const char *sql; int kind; } cases[] = {
        {"CREATE INDEX i ON s.t USING btree (a);", SQL_BUILD_SHARED},
        {"CREATE UNIQUE INDEX \"I x\" ON \"s\".\"t\" USING btree (lower(b)) INCLUDE (c) WHERE (a > 0);",
         SQL_BUILD_SHARED},
        {"create index if not exists i on t (a);", SQL_BUILD_SHARED},
        {"CREATE INDEX i ON ONLY s.parent USING btree (a);", SQL_BUILD_NONE},
        {"CREATE INDEX CONCURRENTLY i ON s.t (a);", SQL_BUILD_NONE},
        {"ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);", SQL_BUILD_EXCLUSIVE},
        {"ALTER TABLE ONLY \"a\nb\".\"t\" ADD CONSTRAINT \"u 1\" UNIQUE (x, y) DEFERRABLE;", SQL_BUILD_EXCLUSIVE},
        {"ALTER TABLE ONLY s.t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX i;", SQL_BUILD_NONE},
        {"ALTER TABLE s.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);", SQL_BUILD_NONE}, /* recurses */
        {"ALTER TABLE ONLY s.t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s.u(a);", SQL_BUILD_NONE},
        {"ALTER TABLE ONLY s.t ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&);", SQL_BUILD_NONE},
        {"ALTER INDEX s.p_i ATTACH PARTITION s.c_i;", SQL_BUILD_NONE},
        {"CREATE TRIGGER tr AFTER INSERT ON s.t FOR EACH ROW EXECUTE FUNCTION s.f();", SQL_BUILD_NONE},
        {"COMMENT ON INDEX s.i IS 'CREATE INDEX x ON y (z)';", SQL_BUILD_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int k = sql_index_build(cases[i].sql, strlen(cases[i].sql));
        if (k != cases[i].kind)
            fail_msg("%s: %d, want %d", cases[i].sql, k, cases[i].kind);
    }
}

static catalog build_catalog(void)
{
    catalog c = {0};
    static const struct { const char *name; char kind; const char *parent; int64_t bytes; } t[] = {
        {"small", 'r', NULL, 10}, {"big", 'r', NULL, 1000}, {"parent", 'p', NULL, 0}, {"part", 'r', "parent", 50},
    };
    c.n = 4;
    c.v = calloc(5, sizeof *c.v);
    for (size_t i = 0; i < c.n; i++) {
        c.v[i].schema = strdup("s"), c.v[i].name = strdup(t[i].name), c.v[i].kind = t[i].kind;
        c.v[i].bytes = t[i].bytes;
        c.v[i].columns = strv("a", NULL, NULL);
        c.v[i].sequences = strv(NULL, NULL, NULL);
        c.v[i].indexes = strv(NULL, NULL, NULL);
        if (t[i].parent)
            c.v[i].parent_schema = strdup("s"), c.v[i].parent_name = strdup(t[i].parent);
    }
    return c;
}

#define ENTRY(name, type) "--\n-- Name: " name "; Type: " type "; Schema: s; Owner: -\n--\n\n"
static const char post_script[] =
    "\\restrict abc\n"
    "SET statement_timeout = 0;\n"
    "SELECT pg_catalog.set_config('search_path', '', false);\n"
    "SET default_tablespace = '';\n\n"
    ENTRY("big big_pkey", "CONSTRAINT") "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (a);\n\n\n"
    "SET default_tablespace = fast;\n\n"
    ENTRY("big_a", "INDEX") "CREATE INDEX big_a ON s.big USING btree (a);\n\n\n"
    "SET default_tablespace = '';\n\n"
    ENTRY("parent_a", "INDEX") "CREATE INDEX parent_a ON ONLY s.parent USING btree (a);\n\n\n"
    ENTRY("part_a", "INDEX") "CREATE INDEX part_a ON s.part USING btree (a);\n\n\n"
    ENTRY("small_a", "INDEX") "CREATE INDEX small_a ON s.small USING btree (a);\n\n\n"
    ENTRY("part_a", "INDEX ATTACH") "ALTER INDEX s.parent_a ATTACH PARTITION s.part_a;\n\n\n"
    ENTRY("small fk", "FK CONSTRAINT") "ALTER TABLE ONLY s.small\n    ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s.big(a);\n\n\n"
    ENTRY("INDEX big_a", "COMMENT") "COMMENT ON INDEX s.big_a IS 'x';\n\n\n"
    "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";

/* text[start, end) is exactly `want` */
#define assert_range(text, start, end, want)                                                       \
    do {                                                                                           \
        assert_int_equal((end) - (start), strlen(want));                                           \
        assert_memory_equal((text) + (start), want, strlen(want));                                 \
    } while (0)

static void post_data_index_builds_split_from_the_rest(void **state)
{
    (void)state;
    catalog c = build_catalog();
    toc_script s;
    assert_int_equal(toc_parse(post_script, strlen(post_script), &s), 0);
    assert_int_equal(s.n, 8);
    char keep[8];
    memset(keep, 1, sizeof keep);
    keep[4] = 0; /* small_a: not part of this restore */
    pc_buf setup = {0}, rest = {0};
    toc_build *b;
    size_t n;
    assert_int_equal(toc_post_split(&s, keep, &c, &setup, &b, &n), 0);
    /* the key and index of big; not the partitioned table's, not the partition's, not small_a */
    assert_int_equal(n, 2);
    assert_int_equal(b[0].entry, 0);
    assert_true(b[0].exclusive);
    assert_string_equal(b[0].table->name, "big");
    assert_range(post_script, b[0].start, b[0].end, "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (a);");
    assert_range(post_script, b[0].ts_start, b[0].ts_end, "SET default_tablespace = '';");
    assert_int_equal(b[1].entry, 1);
    assert_false(b[1].exclusive);
    assert_range(post_script, b[1].start, b[1].end, "CREATE INDEX big_a ON s.big USING btree (a);");
    assert_range(post_script, b[1].ts_start, b[1].ts_end, "SET default_tablespace = fast;");
    /* each build connection sets up as the preamble does, without psql's meta-commands */
    assert_string_equal(setup.p, "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
                                 "SET default_tablespace = '';\n");
    assert_int_equal(keep[0], 2);
    assert_int_equal(keep[1], 2);
    /* the rest keeps the SETs the builds' entries carried for the entries after them */
    assert_int_equal(toc_emit(&s, keep, 0, &rest), 5); /* parent_a, part_a, the attach, fk, comment */
    assert_null(strstr(rest.p, "big_pkey"));
    assert_null(strstr(rest.p, "CREATE INDEX big_a"));
    assert_null(strstr(rest.p, "small_a"));
    const char *ts = strstr(rest.p, "SET default_tablespace = fast;\nSET default_tablespace = '';\n");
    const char *parent = strstr(rest.p, "CREATE INDEX parent_a ON ONLY");
    assert_non_null(ts);
    assert_non_null(parent);
    assert_true(ts < parent);
    assert_non_null(strstr(rest.p, "CREATE INDEX part_a ON s.part"));
    assert_non_null(strstr(rest.p, "\\restrict abc"));
    assert_non_null(strstr(rest.p, "\\unrestrict abc"));
    pc_buf_free(&rest);
    free(b);
    pc_buf_free(&setup);
    toc_free(&s);

    /* a script that switches roles, or whose preamble does more than SET, stays whole */
    static const char *const whole[] = {
        "SET x = 1;\n" ENTRY("big_a", "INDEX") "SET SESSION AUTHORIZATION bob;\nCREATE INDEX big_a ON s.big (a);\n",
        "SET x = 1;\nCREATE TABLE s.y (a int);\n" ENTRY("big_a", "INDEX") "CREATE INDEX big_a ON s.big (a);\n",
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(toc_parse(whole[i], strlen(whole[i]), &s), 0);
        char k1[1] = {1};
        assert_int_equal(toc_post_split(&s, k1, &c, &setup, &b, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(k1[0], 1);
        toc_free(&s);
        pc_buf_free(&setup);
    }
    cat_free(&c);
}

static void grouped_scripts_commit_every_n_entries(void **state)
{
    (void)state;
    toc_script s;
    assert_int_equal(toc_parse(post_script, strlen(post_script), &s), 0);
    pc_buf out = {0};
    assert_int_equal(toc_emit_grouped(&s, NULL, 0, 3, &out), 8);
    size_t begins = 0, commits = 0;
    for (const char *p = out.p; (p = strstr(p, "BEGIN;\n")); p++)
        begins++;
    for (const char *p = out.p; (p = strstr(p, "COMMIT;\n")); p++)
        commits++;
    assert_int_equal(begins, 3); /* 3 + 3 + 2 entries */
    assert_int_equal(commits, 3);
    /* the first BEGIN after the preamble, the last COMMIT before the trailer */
    assert_true(strstr(out.p, "BEGIN;") > strstr(out.p, "SET default_tablespace = '';"));
    assert_true(strstr(out.p, "BEGIN;") < strstr(out.p, "big_pkey"));
    const char *last = out.p;
    for (const char *p = out.p; (p = strstr(p, "COMMIT;")); p++)
        last = p;
    assert_true(last > strstr(out.p, "COMMENT ON INDEX"));
    assert_true(last < strstr(out.p, "dump complete"));
    pc_buf_free(&out);
    /* per_tx 0: the script as it was */
    assert_int_equal(toc_emit_grouped(&s, NULL, 0, 0, &out), 8);
    assert_string_equal(out.p, post_script);
    pc_buf_free(&out);
    toc_free(&s);
}

static int collect_use(void *ud, const char *role, char use)
{
    return cat_role_use(ud, role, use);
}

static const char *uses_of(const catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nroles; i++)
        if (!strcmp(c->roles[i].name, name))
            return c->roles[i].uses;
    return "";
}

static void roles_a_dump_needs_are_collected_with_what_for(void **state)
{
    size_t len;
    char *both = slurp("tests/fixtures/ysql/sections-both.sql", &len);
    toc_script s;
    assert_int_equal(toc_parse(both, len, &s), 0);
    catalog c = {0};
    assert_int_equal(toc_roles(&s, collect_use, &c), 0);
    assert_non_null(strchr(uses_of(&c, "arca_bob"), 'o'));   /* owns app.atomic() */
    assert_non_null(strchr(uses_of(&c, "arca_bob"), 'a'));   /* GRANT ... TO arca_bob; default privileges */
    assert_non_null(strchr(uses_of(&c, "arca_bob"), 'p'));   /* policy p1 */
    assert_non_null(strchr(uses_of(&c, "arca_alice"), 'o')); /* owns app.nv */
    assert_non_null(strchr(uses_of(&c, "arca_alice"), 'a'));
    assert_non_null(strchr(uses_of(&c, "postgres"), 'o'));
    assert_null(strchr(uses_of(&c, "postgres"), 'a'));
    /* large objects: the BLOB entry, its comment and its ACL */
    size_t lo = 0;
    for (size_t i = 0; i < s.n; i++)
        lo += toc_is_large_object(&s, &s.v[i]) == 1;
    assert_int_equal(lo, 3);
    toc_free(&s);
    free(both);
    cat_free(&c);
}

static void catalog_format_2_carries_the_database_roles_and_large_objects(void **state)
{
    catalog c = {0}, back = {0};
    fixture_catalog(&c);
    c.v[0].wide = strdup("ftv");
    c.large_objects = 3;
    cat_database *d = &c.db;
    d->present = 1;
    d->owner = strdup("alice");
    d->comment = strdup("it's \"ours\"");
    d->connlimit = 7;
    d->nacl = 1;
    d->acl = calloc(1, sizeof *d->acl);
    d->acl[0] = (cat_acl){strdup("alice"), strdup(""), strdup("CONNECT"), 1};
    d->nsettings = 2;
    d->settings = calloc(2, sizeof *d->settings);
    d->settings[0] = (cat_setting){NULL, strdup("search_path"), strdup("\"$user\", public")};
    d->settings[1] = (cat_setting){strdup("bob"), strdup("work_mem"), strdup("64MB")};
    assert_int_equal(cat_role_use(&c, "alice", 'd'), 0);
    assert_int_equal(cat_role_use(&c, "alice", 'a'), 0);
    assert_int_equal(cat_role_use(&c, "alice", 'd'), 0);
    char *json = cat_to_json(&c);
    assert_non_null(json);
    assert_null(strchr(json, '\n')); /* compact: 20,000 tables make a big catalog */
    char err[256];
    assert_int_equal(cat_from_json(json, strlen(json), &back, err, sizeof err), 0);
    assert_int_equal(back.format, 2);
    assert_int_equal(back.large_objects, 3);
    assert_string_equal(cat_find(&back, "app", "child")->wide, "ftv");
    assert_null(cat_find(&back, "app", "parent")->wide);
    assert_true(back.db.present);
    assert_string_equal(back.db.owner, "alice");
    assert_string_equal(back.db.comment, "it's \"ours\"");
    assert_int_equal(back.db.connlimit, 7);
    assert_false(back.db.acl_default);
    assert_int_equal(back.db.nacl, 1);
    assert_string_equal(back.db.acl[0].grantee, "");
    assert_true(back.db.acl[0].grantable);
    assert_int_equal(back.db.nsettings, 2);
    assert_null(back.db.settings[0].role);
    assert_string_equal(back.db.settings[1].role, "bob");
    assert_int_equal(back.nroles, 1);
    assert_string_equal(back.roles[0].uses, "da");
    assert_ptr_equal(cat_find_index(&back, "app", "child_pkey"), cat_find(&back, "app", "child"));
    assert_ptr_equal(cat_find_sequence(&back, "app", "child_id_seq"), cat_find(&back, "app", "child"));
    assert_null(cat_find_index(&back, "other", "child_pkey"));
    cat_free(&back);
    free(json);
    cat_free(&c);
    /* a wide string that does not fit the columns is refused */
    const char *bad = "{\"format\":2,\"tables\":[{\"schema\":\"a\",\"name\":\"b\",\"kind\":\"r\",\"columns\":[\"x\"],"
                      "\"wide\":\"ff\",\"slices\":1,\"bytes\":0}]}";
    assert_int_equal(cat_from_json(bad, strlen(bad), &back, err, sizeof err), -1);
}

static void catalog_format_1_of_older_archives_is_still_read(void **state)
{
    const char *v1 = "{\"format\": 1, \"tables\": [{\"schema\": \"app\", \"name\": \"t\", \"kind\": \"r\","
                     " \"columns\": [\"a\"], \"sequences\": [], \"indexes\": [\"t_pkey\"], \"constraints\": [\"t_pkey\"],"
                     " \"triggers\": [], \"policies\": [], \"rules\": [], \"slices\": 1, \"bytes\": 8192}]}";
    catalog c;
    char err[256];
    assert_int_equal(cat_from_json(v1, strlen(v1), &c, err, sizeof err), 0);
    assert_int_equal(c.format, 1);
    assert_int_equal(c.large_objects, -1);
    assert_false(c.db.present);
    assert_ptr_equal(cat_find_index(&c, "app", "t_pkey"), &c.v[0]);
    cat_free(&c);
}

static void catalog_lookups_stay_fast_for_many_tables(void **state)
{
    catalog c = {0};
    c.n = 20000;
    c.v = calloc(c.n + 1, sizeof *c.v);
    char name[32];
    for (size_t i = 0; i < c.n; i++) {
        snprintf(name, sizeof name, "t%zu", i);
        c.v[i].schema = strdup("public");
        c.v[i].name = strdup(name);
        snprintf(name, sizeof name, "t%zu_pkey", i);
        c.v[i].indexes = strv(name, NULL, NULL);
    }
    for (size_t i = 0; i < c.n; i++) {
        snprintf(name, sizeof name, "t%zu", i);
        assert_ptr_equal(cat_find(&c, "public", name), &c.v[i]);
        snprintf(name, sizeof name, "t%zu_pkey", i);
        assert_ptr_equal(cat_find_index(&c, "public", name), &c.v[i]);
    }
    assert_null(cat_find(&c, "other", "t1"));
    cat_free(&c);
}

static void database_properties_become_sql_for_the_target_name(void **state)
{
    cat_database d = {.present = 1, .connlimit = 5};
    d.owner = "alice";
    d.comment = "it's ours";
    cat_acl acl[] = {{"alice", "", "CONNECT", 0}, {"alice", "alice", "CREATE", 0},
                     {"alice", "bob", "CONNECT", 1}, {"bob", "carol", "CONNECT", 0}};
    d.acl = acl;
    d.nacl = 4;
    cat_setting set[] = {{NULL, "search_path", "\"$user\", public, \"My Schema\""},
                         {NULL, "work_mem", "64MB"},
                         {NULL, "myapp.flag", "it's on"},
                         {"bob", "statement_timeout", "5s"}};
    d.settings = set;
    d.nsettings = 4;
    char *sql = db_props_sql(&d, "new \"db\"", 0, 0);
    assert_string_equal(sql,
        "ALTER DATABASE \"new \"\"db\"\"\" OWNER TO \"alice\";\n"
        "REVOKE ALL ON DATABASE \"new \"\"db\"\"\" FROM PUBLIC;\n"
        "REVOKE ALL ON DATABASE \"new \"\"db\"\"\" FROM \"alice\";\n"
        "GRANT CONNECT ON DATABASE \"new \"\"db\"\"\" TO PUBLIC;\n"
        "GRANT CREATE ON DATABASE \"new \"\"db\"\"\" TO \"alice\";\n"
        "GRANT CONNECT ON DATABASE \"new \"\"db\"\"\" TO \"bob\" WITH GRANT OPTION;\n"
        "SET ROLE \"bob\";\nGRANT CONNECT ON DATABASE \"new \"\"db\"\"\" TO \"carol\";\nRESET ROLE;\n"
        "COMMENT ON DATABASE \"new \"\"db\"\"\" IS 'it''s ours';\n"
        "ALTER DATABASE \"new \"\"db\"\"\" WITH CONNECTION LIMIT 5;\n"
        "ALTER DATABASE \"new \"\"db\"\"\" SET \"search_path\" TO '$user', 'public', 'My Schema';\n"
        "ALTER DATABASE \"new \"\"db\"\"\" SET \"work_mem\" TO '64MB';\n"
        "ALTER DATABASE \"new \"\"db\"\"\" SET \"myapp\".\"flag\" TO 'it''s on';\n"
        "ALTER ROLE \"bob\" IN DATABASE \"new \"\"db\"\"\" SET \"statement_timeout\" TO '5s';\n");
    free(sql);
    /* --no-owner --no-privileges: neither the owner nor a GRANT */
    sql = db_props_sql(&d, "t", 1, 1);
    assert_null(strstr(sql, "OWNER"));
    assert_null(strstr(sql, "GRANT"));
    assert_non_null(strstr(sql, "COMMENT ON DATABASE \"t\""));
    free(sql);
    /* default privileges, no limit, no settings: only the owner */
    cat_database plain = {.present = 1, .acl_default = 1, .connlimit = -1, .owner = "alice"};
    sql = db_props_sql(&plain, "t", 0, 0);
    assert_string_equal(sql, "ALTER DATABASE \"t\" OWNER TO \"alice\";\n");
    free(sql);
    cat_database none = {0};
    sql = db_props_sql(&none, "t", 0, 0);
    assert_string_equal(sql, "");
    free(sql);
    pc_buf b = {0};
    db_setting_value(&b, "search_path", "\"\"");
    assert_string_equal(b.p, "''");
    pc_buf_free(&b);
}

static void missing_roles_are_listed_with_what_they_are_for(void **state)
{
    catalog c = {0};
    cat_role_use(&c, "bob", 'o');
    cat_role_use(&c, "bob", 'd');
    cat_role_use(&c, "alice", 'a');
    cat_role_use(&c, "carol", 'p');
    cat_role_use(&c, "dave", 'o');
    cat_role_use(&c, "dave", 'r');
    cat_role_use(&c, "postgres", 'o');
    char *have[] = {"postgres", NULL};
    size_t n;
    char *m = db_missing_roles(&c, have, 0, 0, 0, &n);
    assert_int_equal(n, 4);
    assert_string_equal(m, "  \"bob\" (owns objects, owns the database)\n  \"alice\" (privileges)\n"
                           "  \"carol\" (policies)\n  \"dave\" (owns objects)");
    free(m);
    m = db_missing_roles(&c, have, 1, 1, 1, &n); /* --no-owner --no-privileges; roles.sql makes dave */
    assert_int_equal(n, 1);
    assert_string_equal(m, "  \"carol\" (policies)");
    free(m);
    cat_free(&c);
}

static void digest_of_a_row_in_pieces_is_the_digest_of_the_row(void **state)
{
    ysql_hasher *h = ysql_hasher_new();
    ysql_digest whole = {0}, pieces = {0};
    const char *row = "1\tsome text\\nwith escapes\t\\\\x00ff\n";
    assert_int_equal(ysql_digest_row(h, &whole, row, strlen(row)), 0);
    assert_int_equal(ysql_digest_begin(h), 0);
    for (const char *p = row; *p; p += 3)
        assert_int_equal(ysql_digest_update(h, p, strnlen(p, 3)), 0);
    assert_int_equal(ysql_digest_end(h, &pieces), 0);
    assert_true(whole.hi == pieces.hi && whole.lo == pieces.lo && pieces.rows == 1);
    ysql_hasher_free(h);
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
        cmocka_unit_test(statements_are_cut_where_psql_cuts_them),
        cmocka_unit_test(statements_name_their_subject_whatever_the_comment_says),
        cmocka_unit_test(owner_and_grant_statements_name_their_roles),
        cmocka_unit_test(one_dump_of_both_sections_is_cut_where_pg_dump_cuts),
        cmocka_unit_test(table_restore_finds_a_name_with_a_newline_by_its_sql),
        cmocka_unit_test(no_owner_drops_owner_statements_and_nothing_else),
        cmocka_unit_test(index_builds_are_told_from_other_statements),
        cmocka_unit_test(post_data_index_builds_split_from_the_rest),
        cmocka_unit_test(grouped_scripts_commit_every_n_entries),
        cmocka_unit_test(roles_a_dump_needs_are_collected_with_what_for),
        cmocka_unit_test(catalog_format_2_carries_the_database_roles_and_large_objects),
        cmocka_unit_test(catalog_format_1_of_older_archives_is_still_read),
        cmocka_unit_test(catalog_lookups_stay_fast_for_many_tables),
        cmocka_unit_test(database_properties_become_sql_for_the_target_name),
        cmocka_unit_test(missing_roles_are_listed_with_what_they_are_for),
        cmocka_unit_test(digest_of_a_row_in_pieces_is_the_digest_of_the_row),
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
