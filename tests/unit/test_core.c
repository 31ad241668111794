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

#include <fcntl.h>
#include <sys/stat.h>

#include "catalog.h"
#include "config.h"
#include "hash.h"
#include "manifest.h"
#include "names.h"
#include "options.h"
#include "secure.h"

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

static void siphash_matches_the_reference_vectors(void **state)
{
    unsigned char k[16], m[15];
    for (int i = 0; i < 16; i++)
        k[i] = (unsigned char)i;
    for (int i = 0; i < 15; i++)
        m[i] = (unsigned char)i;
    assert_true(siphash24(k, m, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(siphash24(k, m, 15) == 0xa129ca6149be45e5ULL);
}

static void name_map_finds_every_key_and_refuses_duplicates(void **state)
{
    nmap m = {0};
    char buf[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(buf, sizeof buf, "dir/%d", i);
        assert_int_equal(nmap_put(&m, nkey_str(buf), (uint64_t)i), 0);
    }
    assert_int_equal(m.n, 50000);
    assert_true(m.n * 10 <= m.cap * 7);
    for (int i = 0; i < 50000; i += 7) {
        snprintf(buf, sizeof buf, "dir/%d", i);
        uint64_t *v = nmap_get(&m, nkey_str(buf));
        assert_non_null(v);
        assert_int_equal(*v, (uint64_t)i);
    }
    assert_int_equal(nmap_put(&m, nkey_str("dir/17"), 99), 1);
    assert_int_equal(*nmap_get(&m, nkey_str("dir/17")), 17);
    assert_null(nmap_get(&m, nkey_str("dir/50000")));
    /* keyed: the same name hashes differently from an unkeyed 64-bit hash of it */
    nkey a = nkey_str("x"), b = nkey_str("x");
    assert_true(a.a == b.a && a.b == b.b && a.b != 0);
    nmap_free(&m);
}

static void names_need_relative_clean_components_and_nothing_else(void **state)
{
    assert_null(name_problem("a"));
    assert_null(name_problem("a/b c/d é.txt"));
    assert_null(name_problem("..hidden/x.."));
    assert_null(name_problem("new\nline/\x1b[31mred"));
    assert_null(name_problem("latin1 \xe9t\xe9"));
    assert_non_null(name_problem(""));
    assert_non_null(name_problem("/etc/passwd"));
    assert_non_null(name_problem("../x"));
    assert_non_null(name_problem("a/../../x"));
    assert_non_null(name_problem("a/./b"));
    assert_non_null(name_problem("a//b"));
    assert_non_null(name_problem("a/"));
    assert_non_null(name_problem("a/.."));
    char *longname = malloc(ARCA_MAX_NAME + 2);
    memset(longname, 'x', ARCA_MAX_NAME + 1);
    longname[ARCA_MAX_NAME + 1] = 0;
    assert_non_null(name_problem(longname));
    longname[ARCA_MAX_NAME] = 0;
    assert_null(name_problem(longname));
    free(longname);
}

static void name_encoding_round_trips_every_byte_and_is_canonical(void **state)
{
    char raw[512];
    size_t n = 0;
    for (int c = 1; c < 256; c++)
        raw[n++] = (char)c;
    raw[n++] = '\xc3'; /* valid UTF-8 é kept as is */
    raw[n++] = '\xa9';
    raw[n] = 0;
    char *enc = name_encode(raw), *dec = NULL;
    for (const char *p = enc; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f); /* one printable line */
    assert_non_null(strstr(enc, "%0A"));
    assert_non_null(strstr(enc, "%25"));
    assert_non_null(strstr(enc, "%C2%9B") == NULL ? "" : NULL); /* a lone 0x9b is not UTF-8: %9B */
    assert_non_null(strstr(enc, "%9B"));
    assert_non_null(strstr(enc, "\xc3\xa9"));
    assert_int_equal(name_decode(enc, strlen(enc), &dec), 0);
    assert_int_equal(strlen(dec), n);
    assert_memory_equal(dec, raw, n);
    free(dec);
    free(enc);
    /* C1 controls are escaped even as valid UTF-8 */
    enc = name_encode("a\xc2\x9b" "b");
    assert_string_equal(enc, "a%C2%9Bb");
    free(enc);
    /* only the canonical spelling decodes */
    const char *bad[] = {"%41", "%c3%a9", "%C3%A9", "a%", "a%4", "%00", "%zz", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dec = NULL;
        if (name_decode(bad[i], strlen(bad[i]), &dec) == 0)
            fail_msg("'%s' decoded", bad[i]);
    }
    assert_int_equal(name_decode("100%25", 6, &dec), 0);
    assert_string_equal(dec, "100%");
    free(dec);
}

static void byte_strings_in_json_round_trip(void **state)
{
    json_t *u = jbytes_new("plain é"), *b = jbytes_new("latin1 \xe9\n");
    assert_true(json_is_string(u));
    assert_true(json_is_object(b));
    char *x = jbytes_get(u), *y = jbytes_get(b);
    assert_string_equal(x, "plain é");
    assert_string_equal(y, "latin1 \xe9\n");
    free(x);
    free(y);
    json_t *nul = json_pack("{s:s}", "hex", "6100");
    assert_null(jbytes_get(nul));
    json_decref(nul);
    json_decref(u);
    json_decref(b);
    char *t = text_printable("ok \x1b[2J\x07 \xc2\x9b é \xff");
    assert_string_equal(t, "ok \\x1b[2J\\x07 \\xc2\\x9b é \\xff");
    free(t);
}

static void member_names_map_one_to_one(void **state)
{
    char *a = member_name(2, "files", "foo", 0), *b = member_name(2, "files", "foo.000000", 0),
         *c = member_name(2, "files", "foo", 1234567), *d = member_name(2, "files", "a\nb%", 0),
         *e = member_name(1, "files", "x%y", 3);
    assert_string_equal(a, "files/foo.000000.zst");
    assert_string_equal(b, "files/foo.000000.000000.zst");
    assert_string_equal(c, "files/foo.1234567.zst");
    assert_string_equal(d, "files/a%0Ab%25.000000.zst");
    assert_string_equal(e, "files/x%y.000003.zst");
    assert_string_not_equal(a, b);
    free(a); free(b); free(c); free(d); free(e);
}

static void backup_ids_are_recognised_exactly(void **state)
{
    assert_true(backup_id_valid("20261121T054601Z-e88853"));
    assert_true(backup_id_valid("20261121T054601.123Z-e88853"));
    assert_false(backup_id_valid("hello"));
    assert_false(backup_id_valid("20261121T054601Z-E88853"));
    assert_false(backup_id_valid("20261121T054601.12Z-e88853"));
    assert_false(backup_id_valid("2026112XT054601Z-e88853"));
    assert_false(backup_id_valid("20261121T054601Z-e888533"));
    assert_null(pipeline_name_problem("nightly"));
    assert_null(pipeline_name_problem("db-1.prod_x"));
    assert_non_null(pipeline_name_problem(".hidden"));
    assert_non_null(pipeline_name_problem("a/b"));
    assert_non_null(pipeline_name_problem(""));
}

/* A version-2 manifest as the writer lays it out; variants replace one piece. */
static const char *good_manifest =
    "{\"format\":\"arca-manifest\",\"format_version\":2,\n"
    "\"header\":{\"format\":\"arca\",\"format_version\":2,\"backup_id\":\"20261121T054601.123Z-e88853\",\"pipeline\":\"p\","
    "\"chunk_size\":65536,\"source\":{\"name\":\"s\",\"namespace\":\"files\"}},\n"
    "\"totals\":{\"objects\":4,\"members\":3,\"raw_bytes\":65541,\"stored_bytes\":60},\n"
    "\"objects\":[\n"
    "{\"name\":\"a\",\"kind\":\"data\",\"size\":65541,\"chunks\":2,\"mode\":420,\"mtime\":1,\"mtime_nsec\":0},\n"
    "{\"name\":\"d\",\"kind\":\"dir\",\"size\":0,\"chunks\":0,\"mode\":493,\"mtime\":1},\n"
    "{\"name\":\"l\",\"kind\":\"symlink\",\"size\":0,\"chunks\":0,\"mode\":511,\"mtime\":1,\"target\":\"a\"},\n"
    "{\"name\":\"n%0A\",\"kind\":\"data\",\"size\":0,\"chunks\":1,\"mode\":420,\"mtime\":1,\"meta\":{\"k\":{\"hex\":\"e9\"}}}\n"
    "],\n\"members\":[\n"
    "{\"name\":\"files/a.000000.zst\",\"object\":\"a\",\"chunk\":0,\"raw_size\":65536,\"stored_size\":20,\"offset\":1536,"
    "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"},\n"
    "{\"name\":\"files/n%0A.000000.zst\",\"object\":\"n%0A\",\"chunk\":0,\"raw_size\":0,\"stored_size\":20,\"offset\":2560,"
    "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"},\n"
    "{\"name\":\"files/a.000001.zst\",\"object\":\"a\",\"chunk\":1,\"raw_size\":5,\"stored_size\":20,\"offset\":3584,"
    "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n"
    "]}\n";

static manifest *open_text(const char *text, int *fdp, char **err)
{
    char path[] = "/tmp/arca-mf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    *fdp = fd;
    int code = 0;
    *err = NULL;
    return mf_open(fd, 0, strlen(text), "t", &code, err);
}

static manifest *open_variant(const char *from, const char *to, int *fd, char **err)
{
    static char buf[8192];
    const char *at = strstr(good_manifest, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good_manifest), good_manifest, to, at + strlen(from));
    return open_text(buf, fd, err);
}

static void manifest_reader_streams_what_it_validated(void **state)
{
    int fd;
    char *err = NULL;
    manifest *m = open_text(good_manifest, &fd, &err);
    if (!m)
        fail_msg("%s", err);
    assert_int_equal(mf_version(m), 2);
    assert_int_equal(mf_nobjects(m), 4);
    assert_int_equal(mf_nmembers(m), 3);
    mf_cursor *c = mf_members(m);
    mf_mem mm = {0};
    assert_int_equal(mf_next_member(c, &mm), 1);
    assert_string_equal(mm.member, "files/a.000000.zst");
    assert_int_equal(mf_next_member(c, &mm), 1);
    assert_string_equal(mm.member, "files/n%0A.000000.zst");
    assert_int_equal(mm.obj, 3);
    mf_obj o = {0};
    assert_int_equal(mf_object_at(m, mm.obj, &o, &err), 0);
    assert_string_equal(o.name, "n\n"); /* decoded */
    json_t *k = json_object_get(o.meta, "k");
    char *kv = jbytes_get(k);
    assert_string_equal(kv, "\xe9");
    free(kv);
    mf_obj_clear(&o);
    assert_int_equal(mf_next_member(c, &mm), 1);
    assert_int_equal(mf_next_member(c, &mm), 0);
    mf_mem_clear(&mm);
    mf_cursor_free(c);
    json_t *h = NULL, *t = NULL;
    assert_int_equal(mf_head(fd, 0, 400, "t", &h, &t, &err), 0); /* only the start is needed */
    assert_int_equal(json_integer_value(json_object_get(t, "objects")), 4);
    json_decref(h);
    json_decref(t);
    mf_close(m);
    close(fd);
}

static void manifest_reader_refuses_every_inconsistency(void **state)
{
    struct { const char *from, *to, *why; } bad[] = {
        {"\"name\":\"a\",\"kind\"", "\"name\":\"../a\",\"kind\"", "unsafe name"},
        {"\"name\":\"d\"", "\"name\":\"/etc\"", "unsafe name"},
        {"\"name\":\"d\"", "\"name\":\"a\"", "listed twice"},
        {"\"name\":\"d\"", "\"name\":\"%61\"", "unsafe name"},          /* non-canonical spelling of "a" */
        {"\"name\":\"d\",\"kind\":\"dir\"", "\"name\":\"l/x\",\"kind\":\"dir\"", "below the symlink"},
        {"\"raw_size\":5", "\"raw_size\":4", "object's size says 5"},
        {"\"raw_size\":65536", "\"raw_size\":65535", "object's size says 65536"},
        {"\"chunks\":2", "\"chunks\":3", "not 2"},
        {"\"name\":\"files/a.000001.zst\",\"object\":\"a\",\"chunk\":1",
         "\"name\":\"files/a.000000.zst\",\"object\":\"a\",\"chunk\":0", "out of order or listed twice"},
        {"\"offset\":3584", "\"offset\":2000", "does not come after"},
        {"\"name\":\"files/a.000000.zst\"", "\"name\":\"files/../../x\"", "expected 'files/a.000000.zst'"},
        {"\"object\":\"a\",\"chunk\":0", "\"object\":\"d\",\"chunk\":0", "not a listed data object"},
        {"\"format_version\":2,\"backup_id\"", "\"format_version\":1,\"backup_id\"", "format version 2"},
        {"\"format_version\":2,\n\"header\"", "\"format_version\":9,\n\"header\"", "written by a newer arca"},
        {"\"mode\":420", "\"mode\":70000", "bad kind, size"},
        {"\"kind\":\"dir\"", "\"kind\":\"fifo\"", "bad kind, size"},
        {"\"sha256\":\"0000", "\"sha256\":\"zz00", "sha256"},
        {"\"chunk_size\":65536", "\"chunk_size\":1073741824", "chunk_size from"},
        {"\"chunk_size\":65536", "\"chunk_size\":1024", "chunk_size from"},
        {"\"objects\":4", "\"objects\":5", "totals disagree"},
        {"\"backup_id\":\"2026", "\"backup_id\":\"hello2026", "backup id"},
        {"{\"hex\":\"e9\"}", "{\"hex\":\"zz\"}", "malformed meta"},
        {"\"mtime\":1,\"mtime_nsec\":0}", "\"mtime\":1,\"mtime_nsec\":0,\"mode\":1}", "not a JSON object"},
        {"]}\n", "]} x\n", "after the closing"},
        {"]}\n", "]", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd;
        char *err = NULL;
        manifest *m = open_variant(bad[i].from, bad[i].to, &fd, &err);
        if (m || !err || !strstr(err, bad[i].why))
            fail_msg("variant %zu (%s): %s", i, bad[i].why, err ? err : "accepted");
        mf_close(m);
        free(err);
        close(fd);
    }
}

/* A version-1 manifest (arca 0.1): members before objects, names as they are. */
static void manifest_reader_reads_version_1(void **state)
{
    const char *v1 =
        "{\"format\":\"arca-manifest\",\"format_version\":1,"
        "\"header\":{\"format\":\"arca\",\"format_version\":1,\"backup_id\":\"20261121T054601Z-e88853\",\"chunk_size\":1048576,"
        "\"source\":{\"namespace\":\"files\"}},"
        "\"members\":[{\"name\":\"files/50%.000000.zst\",\"object\":\"50%\",\"chunk\":0,\"raw_size\":5,\"stored_size\":18,"
        "\"offset\":1536,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}],"
        "\"objects\":[{\"name\":\"50%\",\"kind\":\"data\",\"size\":5,\"chunks\":1,\"mode\":420,\"mtime\":1,\"mtime_nsec\":0}],"
        "\"totals\":{\"objects\":1},\"archive\":{\"name\":\"x.arca\",\"size\":1}}";
    int fd;
    char *err = NULL;
    manifest *m = open_text(v1, &fd, &err);
    if (!m)
        fail_msg("%s", err);
    assert_int_equal(mf_version(m), 1);
    mf_obj o = {0};
    assert_int_equal(mf_object_at(m, 0, &o, &err), 0);
    assert_string_equal(o.name, "50%");
    mf_obj_clear(&o);
    mf_close(m);
    close(fd);
}

static void untrusted_paths_are_named_with_the_fix(void **state)
{
    char dir[] = "/tmp/arca-sec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[64];
    snprintf(file, sizeof file, "%s/arca.ini", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    chmod(dir, 0755);
    char *why = path_untrusted(file, 0);
    if (why)
        fail_msg("trusted file refused: %s", why);
    chmod(file, 0666);
    why = path_untrusted(file, 0);
    assert_non_null(why);
    assert_non_null(strstr(why, "writable by everyone"));
    free(why);
    chmod(file, 0600);
    chmod(dir, 0777);
    why = path_untrusted(file, 0);
    assert_non_null(why);
    assert_non_null(strstr(why, dir));
    free(why);
    chmod(dir, 01777); /* sticky, as /tmp: others cannot replace what is ours */
    why = path_untrusted(dir, 1);
    assert_null(why);
    unlink(file);
    rmdir(dir);
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
        cmocka_unit_test(siphash_matches_the_reference_vectors),
        cmocka_unit_test(name_map_finds_every_key_and_refuses_duplicates),
        cmocka_unit_test(names_need_relative_clean_components_and_nothing_else),
        cmocka_unit_test(name_encoding_round_trips_every_byte_and_is_canonical),
        cmocka_unit_test(byte_strings_in_json_round_trip),
        cmocka_unit_test(member_names_map_one_to_one),
        cmocka_unit_test(backup_ids_are_recognised_exactly),
        cmocka_unit_test(manifest_reader_streams_what_it_validated),
        cmocka_unit_test(manifest_reader_refuses_every_inconsistency),
        cmocka_unit_test(manifest_reader_reads_version_1),
        cmocka_unit_test(untrusted_paths_are_named_with_the_fix),
        cmocka_unit_test(config_keeps_lines_expands_env_and_finds_empty_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
