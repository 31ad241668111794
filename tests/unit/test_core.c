/* Unit tests for the core's pure parts: option tables, names, manifests, config parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "manifest.h"
#include "options.h"

typedef struct tcfg {
    const char *s, *secret;
    int64_t i;
    int b;
    uint64_t size;
    int e;
} tcfg;

static const arca_option topts[] = {
    {"s", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(tcfg, s), NULL, NULL, 0, 0, "a string"},
    {"secret", ARCA_OPT_STRING, ARCA_OPT_SECRET, offsetof(tcfg, secret), NULL, NULL, 0, 0, "a secret"},
    {"i", ARCA_OPT_INT, 0, offsetof(tcfg, i), "7", NULL, 1, 100, "an int"},
    {"b", ARCA_OPT_BOOL, 0, offsetof(tcfg, b), "false", NULL, 0, 0, "a bool"},
    {"size", ARCA_OPT_SIZE, 0, offsetof(tcfg, size), "4M", NULL, 0, 0, "a size"},
    {"e", ARCA_OPT_ENUM, 0, offsetof(tcfg, e), "two", "one|two|three", 0, 0, "an enum"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

static int has_msg(errlist *e, const char *needle)
{
    for (size_t i = 0; i < e->n; i++)
        if (strstr(e->msg[i], needle))
            return 1;
    return 0;
}

static void options_fill_defaults_and_values(void **state)
{
    opt_kv kv[] = {{"s", "hello", "f.ini", 3}, {"b", "yes", "f.ini", 4}, {"size", "64K", "f.ini", 5}, {"e", "THREE", "f.ini", 6}};
    errlist e = {0};
    tcfg *c = opt_fill_at(topts, sizeof(tcfg), kv, 4, "[source x]", "f.ini", 2, &e);
    assert_non_null(c);
    assert_int_equal(e.n, 0);
    assert_string_equal(c->s, "hello");
    assert_int_equal(c->i, 7);
    assert_int_equal(c->b, 1);
    assert_int_equal(c->size, 65536);
    assert_int_equal(c->e, 2);
    assert_null(c->secret);
    opt_free(topts, c);
}

static void options_report_every_error_with_file_line(void **state)
{
    opt_kv kv[] = {{"i", "500", "f.ini", 3}, {"b", "maybe", "f.ini", 4}, {"bogus", "1", "f.ini", 5}, {"size", "3X", "f.ini", 6},
                   {"e", "four", "f.ini", 7}};
    errlist e = {0};
    void *c = opt_fill_at(topts, sizeof(tcfg), kv, 5, "[source x]", "f.ini", 2, &e);
    assert_null(c);
    assert_true(has_msg(&e, "f.ini:3: [source x]: i = '500': out of range (from 1 to 100)"));
    assert_true(has_msg(&e, "f.ini:4: [source x]: b = 'maybe': not a boolean"));
    assert_true(has_msg(&e, "f.ini:5: [source x]: unknown key 'bogus' (known keys: s, secret, i, b, size, e)"));
    assert_true(has_msg(&e, "f.ini:6: [source x]: size = '3X': not a size"));
    assert_true(has_msg(&e, "f.ini:7: [source x]: e = 'four': not one of the choices (choices: one|two|three)"));
    assert_true(has_msg(&e, "f.ini:2: [source x]: missing required key 's'"));
    assert_int_equal(e.n, 6);
    errlist_free(&e);
}

static void options_secret_from_file_and_never_in_messages(void **state)
{
    char path[] = "/tmp/arca-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hunter2\n\n", 9), 9);
    close(fd);
    opt_kv kv[] = {{"s", "x", "f.ini", 3}, {"secret_file", path, "f.ini", 4}};
    errlist e = {0};
    tcfg *c = opt_fill(topts, sizeof(tcfg), kv, 2, "[d]", &e);
    assert_non_null(c);
    assert_string_equal(c->secret, "hunter2");
    char *shown = opt_show(&topts[1], c);
    assert_string_equal(shown, "********");
    free(shown);
    opt_free(topts, c);
    unlink(path);
    /* a bad value of a secret option is reported without the value */
    static const arca_option sec_int[] = {{"tok", ARCA_OPT_INT, ARCA_OPT_SECRET, 0, NULL, NULL, 0, 0, ""}, {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL}};
    opt_kv kv2[] = {{"tok", "topsecretvalue", "f.ini", 9}};
    assert_null(opt_fill(sec_int, 8, kv2, 1, "[d]", &e));
    assert_true(e.n == 1 && !strstr(e.msg[0], "topsecretvalue"));
    errlist_free(&e);
    opt_kv kv3[] = {{"s", "x", "f.ini", 3}, {"secret_file", "/nonexistent/secret", "f.ini", 4}};
    assert_null(opt_fill(topts, sizeof(tcfg), kv3, 2, "[d]", &e));
    assert_true(has_msg(&e, "f.ini:4: [d]: secret_file: cannot read secret file '/nonexistent/secret'"));
    errlist_free(&e);
}

static void sizes_parse_with_suffixes(void **state)
{
    uint64_t v;
    assert_int_equal(parse_size("4096", &v), 0); assert_int_equal(v, 4096);
    assert_int_equal(parse_size("8M", &v), 0); assert_int_equal(v, 8u << 20);
    assert_int_equal(parse_size("1GiB", &v), 0); assert_int_equal(v, 1u << 30);
    assert_int_equal(parse_size("2T", &v), 0); assert_int_equal(v, 2ull << 40);
    assert_int_equal(parse_size("-1", &v), -1);
    assert_int_equal(parse_size("1Q", &v), -1);
    assert_int_equal(parse_size("99999999999999999999T", &v), -1);
}

static void names_are_safe_only_when_relative_and_clean(void **state)
{
    assert_true(name_is_safe("a"));
    assert_true(name_is_safe("a/b c/d é.txt"));
    assert_true(name_is_safe("..hidden/x.."));
    assert_false(name_is_safe(""));
    assert_false(name_is_safe("/etc/passwd"));
    assert_false(name_is_safe("../x"));
    assert_false(name_is_safe("a/../../x"));
    assert_false(name_is_safe("a/./b"));
    assert_false(name_is_safe("a//b"));
    assert_false(name_is_safe("a/"));
    assert_false(name_is_safe("a/.."));
    assert_false(name_is_safe("new\nline"));
}

static void member_names_map_one_to_one(void **state)
{
    char *a = member_name("files", "foo", 0), *b = member_name("files", "foo.000000", 0), *c = member_name("files", "foo", 1234567);
    assert_string_equal(a, "files/foo.000000.zst");
    assert_string_equal(b, "files/foo.000000.000000.zst");
    assert_string_equal(c, "files/foo.1234567.zst");
    assert_string_not_equal(a, b);
    free(a); free(b); free(c);
}

static const char *good_manifest =
    "{\"format\":\"arca-manifest\",\"format_version\":1,"
    "\"header\":{\"format\":\"arca\",\"format_version\":1,\"backup_id\":\"X\",\"chunk_size\":1048576,\"source\":{\"namespace\":\"files\"}},"
    "\"members\":[{\"name\":\"files/a.000000.zst\",\"object\":\"a\",\"chunk\":0,\"raw_size\":5,\"stored_size\":18,\"offset\":1536,"
    "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}],"
    "\"objects\":[{\"name\":\"a\",\"kind\":\"data\",\"size\":5,\"chunks\":1,\"mode\":420,\"mtime\":1,\"mtime_nsec\":0},"
    "{\"name\":\"d\",\"kind\":\"dir\",\"size\":0,\"chunks\":0,\"mode\":493,\"mtime\":1,\"mtime_nsec\":0}],\"totals\":{}}";

static manifest *parse_variant(const char *from, const char *to, char **err)
{
    char buf[4096];
    const char *at = strstr(good_manifest, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good_manifest), good_manifest, to, at + strlen(from));
    *err = NULL;
    return manifest_parse(buf, strlen(buf), "t", err);
}

static void manifest_parse_accepts_good_and_refuses_bad(void **state)
{
    char *err = NULL;
    manifest *m = manifest_parse(good_manifest, strlen(good_manifest), "t", &err);
    assert_non_null(m);
    assert_int_equal(m->nobj, 2);
    assert_non_null(manifest_member(m, "files/a.000000.zst"));
    assert_null(manifest_member(m, "files/b.000000.zst"));
    manifest_free(m);
    struct { const char *from, *to, *why; } bad[] = {
        {"\"name\":\"a\",\"kind\"", "\"name\":\"../a\",\"kind\"", "unsafe name"},
        {"\"name\":\"d\"", "\"name\":\"/etc\"", "unsafe name"},
        {"\"name\":\"d\"", "\"name\":\"a\"", "listed twice"},
        {"\"raw_size\":5", "\"raw_size\":4", "disagree"},
        {"\"chunk\":0", "\"chunk\":1", "bad object, chunk"},
        {"\"name\":\"files/a.000000.zst\"", "\"name\":\"files/../../x\"", "expected 'files/a.000000.zst'"},
        {"\"format_version\":1,\"backup_id\"", "\"format_version\":2,\"backup_id\"", "format version 1"},
        {"\"mode\":420", "\"mode\":70000", "bad kind, size"},
        {"\"kind\":\"dir\"", "\"kind\":\"fifo\"", "bad kind, size"},
        {"\"sha256\":\"0000", "\"sha256\":\"zz00", "sha256"},
        {"\"chunk_size\":1048576", "\"chunk_size\":0", "chunk_size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = parse_variant(bad[i].from, bad[i].to, &err);
        if (m || !err || !strstr(err, bad[i].why))
            fail_msg("variant %zu (%s): %s", i, bad[i].why, err ? err : "accepted");
        free(err);
    }
}

static void config_keeps_lines_expands_env_and_finds_empty_sections(void **state)
{
    char path[] = "/tmp/arca-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "; comment\n[arca]\nworkers = 2\n\n[source s]\nplugin = files\npath = ${ARCA_UT_DIR}/x$$y\n[pipeline empty]\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("ARCA_UT_DIR", "/data", 1);
    errlist e = {0};
    cfg_file *c = cfg_load(path, &e);
    assert_non_null(c);
    assert_int_equal(e.n, 0);
    assert_int_equal(c->n, 3);
    cfg_section *s = cfg_find(c, "source", "s");
    assert_non_null(s);
    assert_int_equal(s->line, 5);
    const opt_kv *p = cfg_get(s, "path");
    assert_string_equal(p->value, "/data/x$y");
    assert_int_equal(p->line, 7);
    cfg_section *pe = cfg_find(c, "pipeline", "empty");
    assert_non_null(pe);
    assert_int_equal(pe->line, 8);
    assert_int_equal(pe->nkv, 0);
    cfg_free(c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_fill_defaults_and_values),
        cmocka_unit_test(options_report_every_error_with_file_line),
        cmocka_unit_test(options_secret_from_file_and_never_in_messages),
        cmocka_unit_test(sizes_parse_with_suffixes),
        cmocka_unit_test(names_are_safe_only_when_relative_and_clean),
        cmocka_unit_test(member_names_map_one_to_one),
        cmocka_unit_test(manifest_parse_accepts_good_and_refuses_bad),
        cmocka_unit_test(config_keeps_lines_expands_env_and_finds_empty_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
