/* gcs destination plugin, loaded from $BUILD/plugins/gcs.so as the core would,
 * against fake-gcs-server (tests/servers/gcs.sh): what create refuses
 * (offline), the destination contract through the kit (one test per check; a
 * write-once store: a second commit of a name is refused; a put broken by
 * deleting its part objects behind its back), then what only gcs promises:
 * reads across chunk boundaries in both upload modes, no part object left
 * after an abort, name limits, location without secrets, cleanup of part
 * objects an interrupted backup left. Each test's name says what it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fakehost.h"
#include "kitcase.h"

typedef struct gcs_env {
    const arca_plugin *p;
    void *dl;
    int up;
    char why[PATH_MAX + 128];
    char dir[PATH_MAX];
    char endpoint[512];
} gcs_env;

static gcs_env g;

typedef struct gcs_case {
    fakehost *fh;
    void *cfg, *inst;
    size_t kit_check;
} gcs_case;

static const char *repo_root(void)
{
    static char root[PATH_MAX];
    const char *build = getenv("BUILD");
    if (access("tests/servers/gcs.sh", X_OK) == 0)
        return ".";
    if (build && *build) {
        snprintf(root, sizeof root, "%s/..", build);
        return root;
    }
    return ".";
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(((i * 2654435761u) >> 13) ^ (i >> 20) ^ seed);
    return b;
}

static int group_setup(void **state)
{
    (void)state;
    char cmd[PATH_MAX * 4], line[512];
    g.p = fh_load_plugin("gcs", &g.dl);
    if (!g.p)
        return -1;
    snprintf(g.dir, sizeof g.dir, "%.3000s/arca-gcsunit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(cmd, sizeof cmd, "%s/tests/servers/gcs.sh start %s/gcs unit 2>%s/gcs.err", repo_root(), g.dir, g.dir);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "GCS_ENDPOINT=", 13))
            snprintf(g.endpoint, sizeof g.endpoint, "%s", line + 13);
    }
    g.up = pclose(f) == 0 && g.endpoint[0];
    if (!g.up) {
        char path[PATH_MAX + 16];
        int k = snprintf(g.why, sizeof g.why, "fake-gcs-server did not start: ");
        snprintf(path, sizeof path, "%.4000s/gcs.err", g.dir);
        FILE *ef = fopen(path, "r");
        if (ef) {
            size_t got = fread(g.why + k, 1, sizeof g.why - (size_t)k - 1, ef);
            g.why[(size_t)k + got] = '\0';
            fclose(ef);
        }
    }
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    setenv("CLOUDSDK_CONFIG", "/nonexistent", 1);
    setenv("GCE_METADATA_HOST", "127.0.0.1:9", 1); /* nothing there: a missing credential fails fast */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "%s/tests/servers/gcs.sh stop %s/gcs; rm -rf %s", repo_root(), g.dir, g.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", cmd);
    fh_unload_plugin(g.dl);
    return 0;
}

#define NEED_GCS()                 \
    do {                           \
        if (!g.up)                 \
            fail_msg("%s", g.why); \
    } while (0)

/* A fresh instance on bucket "unit" with a test token; `extra` ends with NULL. */
static gcs_case *open_case(const char *const *extra)
{
    const char *kv[64];
    size_t n = 0;
    char err[1024];
    gcs_case *c = calloc(1, sizeof *c);
    assert_non_null(c);
    kv[n++] = "endpoint";
    kv[n++] = g.endpoint;
    kv[n++] = "bucket";
    kv[n++] = "unit";
    kv[n++] = "access_token";
    kv[n++] = "unit-test-token";
    kv[n++] = "chunk_size";
    kv[n++] = "1M";
    kv[n++] = "retries";
    kv[n++] = "2";
    for (; extra && *extra; extra++)
        kv[n++] = *extra;
    kv[n] = NULL;
    c->fh = fh_new();
    if (!(c->cfg = fh_config(g.p->options, g.p->config_size, kv, err, sizeof err)))
        fail_msg("config: %s", err);
    int rc = g.p->create(fh_host(c->fh), c->cfg, &c->inst);
    if (rc)
        fail_msg("create: %d %s", rc, fh_last_error(c->fh));
    return c;
}

static void close_case(gcs_case *c)
{
    if (c->inst)
        g.p->destroy(c->inst);
    fh_config_free(g.p->options, c->cfg);
    fh_free(c->fh);
    free(c);
}

static int put_all(gcs_case *c, const char *name, const unsigned char *data, size_t n, size_t step)
{
    const arca_destination_ops *d = g.p->destination;
    void *put;
    int rc = d->put_open(c->inst, name, &put);
    if (rc)
        return rc;
    for (size_t off = 0; off < n; off += step)
        if ((rc = d->put_write(put, data + off, n - off < step ? n - off : step))) {
            d->put_abort(put);
            return rc;
        }
    return d->put_commit(put);
}

static int get_range(gcs_case *c, const char *name, uint64_t off, uint64_t len, unsigned char **out, size_t *outlen)
{
    const arca_destination_ops *d = g.p->destination;
    void *get;
    size_t cap = 1 << 20, n = 0, got;
    unsigned char *buf = malloc(cap);
    int rc = d->get_open(c->inst, name, off, len, &get);
    *out = NULL;
    *outlen = 0;
    if (rc) {
        free(buf);
        return rc;
    }
    for (;;) {
        if (n + 65536 > cap)
            buf = realloc(buf, cap *= 2);
        if ((rc = d->get_read(get, buf + n, 65521, &got)) || !got)
            break;
        n += got;
    }
    d->get_close(get);
    *out = buf;
    *outlen = n;
    return rc;
}

/* Names of every object in bucket "unit" under a prefix (also the part objects), via the JSON API. */
static int server_objects(const char *prefix, char *names, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "curl -sf '%s/storage/v1/b/unit/o?prefix=%s' | python3 -c 'import json,sys; "
             "[print(i[\"name\"]) for i in json.load(sys.stdin).get(\"items\", [])]'", g.endpoint, prefix);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t got = fread(names, 1, cap - 1, f);
    names[got] = 0;
    assert_int_equal(pclose(f), 0);
    int n = 0;
    for (char *p = names; *p; p++)
        n += *p == '\n';
    return n;
}

/* ---- create refuses what cannot work, offline ---- */

static void create_refuses_contradictions_and_bad_values_offline(void **state)
{
    (void)state;
    static const char *const bad[][6] = {
        {"retention_mode", "Locked", "retain_until", "2001-01-01T00:00:00Z", NULL},
        {"retention_mode", "Unlocked", NULL},
        {"retain_until", "30d", NULL},
        {"chunk_size", "300K", NULL},
        {"credentials", "/nonexistent/key.json", "access_token", "t", NULL},
        {"credentials", "/nonexistent/key.json", NULL},
        {"credentials", "{\"type\":\"service_account\",\"private_key\":\"SECRET\"}", NULL},
        {"endpoint", "http://user:pw@127.0.0.1:9", NULL},
        {"endpoint", "http://127.0.0.1:9/some/path", NULL},
        {"endpoint", "ftp://127.0.0.1", NULL},
        {"kms_key_name", "mykey", NULL},
        {"storage_class", "near line", NULL},
        {"prefix", "/abs", NULL},
        {"ca_file", "/etc/hostname", NULL},
    };
    static const char *const expect[] = {"past", "retain_until", "retention_mode", "multiple of 256K",
                                         "both credentials and access_token", "cannot be read", "client_email",
                                         "credentials", "path", "http", "projects/", "storage_class", "prefix",
                                         "PEM"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[16] = {"bucket", "bkt", NULL};
        size_t n = 2;
        for (const char *const *p = bad[i]; *p; p++)
            kv[n++] = *p;
        kv[n] = NULL;
        char err[512];
        fakehost *fh = fh_new();
        void *cfg = fh_config(g.p->options, g.p->config_size, kv, err, sizeof err), *inst = NULL;
        assert_non_null(cfg);
        int rc = g.p->create(fh_host(fh), cfg, &inst);
        if (rc != ARCA_ECONFIG || !strstr(fh_last_error(fh), expect[i]))
            fail_msg("case %zu: rc %d, message '%s' (want '%s')", i, rc, fh_last_error(fh), expect[i]);
        assert_null(strstr(fh_last_error(fh), "SECRET"));
        assert_null(inst);
        fh_config_free(g.p->options, cfg);
        fh_free(fh);
    }
}

/* ---- the destination contract, through the kit ---- */

#define KIT_PREFIX "kit-"

/* The kit's failure injection: once the put's first part object is stored,
 * its part objects are deleted behind the plugin's back (as an operator or a
 * lifecycle rule could): composing them at commit fails. */
static int break_put_by_deleting_its_parts(void *ud, const char *name)
{
    char cmd[4096], names[65536];
    (void)ud;
    for (int i = 0; i < 100; i++) {
        snprintf(cmd, sizeof cmd, KIT_PREFIX ".arca-tmp/%s/", name);
        if (server_objects(cmd, names, sizeof names) > 0)
            break;
        usleep(50000);
    }
    if (!names[0])
        return -1;
    for (char *line = strtok(names, "\n"); line; line = strtok(NULL, "\n")) {
        char *enc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&enc, &len);
        for (const char *p = line; *p; p++)
            fprintf(m, (*p == '/' || *p == '.') ? "%%%02X" : "%c", (unsigned char)*p);
        fclose(m);
        snprintf(cmd, sizeof cmd, "curl -sf -X DELETE '%s/storage/v1/b/unit/o/%s'", g.endpoint, enc);
        free(enc);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static int kit_setup(void **state)
{
    kit_slot *slot = *state;
    gcs_case *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->kit_check = slot->check;
    *state = c;
    return 0;
}

static int kit_teardown(void **state)
{
    gcs_case *c = *state;
    fh_config_free(g.p->options, c->cfg);
    free(c);
    return 0;
}

static void destination_kit_check(void **state)
{
    gcs_case *c = *state;
    const char *kv[] = {"endpoint", g.endpoint, "bucket", "unit", "prefix", KIT_PREFIX, "chunk_size", "1M",
                        "upload_concurrency", "3", "access_token", "unit-test-token", "retries", "2", "retry_time", "5",
                        NULL};
    arca_destkit_opts o = ARCA_DESTKIT_OPTS_INIT;
    char err[1024], names[65536];

    NEED_GCS();
    if (!(c->cfg = fh_config(g.p->options, g.p->config_size, kv, err, sizeof err)))
        fail_msg("config: %s", err);
    o.prefix = "kit";
    o.big_size = 3 * 1024 * 1024 + 12345; /* four parts of 1 MiB */
    o.break_after = 1024 * 1024 + 1;      /* the first part is on its way */
    o.break_put = break_put_by_deleting_its_parts;
    o.write_once = 1;                     /* ifGenerationMatch=0: never replaces */
    o.verbose = getenv("FH_VERBOSE") != NULL;
    kit_assert(g.p, c->cfg, &o, c->kit_check);
    int left = server_objects(KIT_PREFIX ".arca-tmp/", names, sizeof names);
    if (left)
        fail_msg("part objects left: %s", names);
}

/* ---- what only gcs promises ---- */

static void objects_read_back_across_chunk_boundaries_in_both_upload_modes(void **state)
{
    (void)state;
    NEED_GCS();
    static const char *const modes[][5] = {
        {"prefix", "one-stream-", "upload_concurrency", "1", NULL},
        {"prefix", "composed-", "upload_concurrency", "4", NULL},
    };
    size_t n = 5 * 1024 * 1024 + 12345;
    unsigned char *data = pattern(n, 7), *got;
    size_t glen;
    char names[65536];
    for (int m = 0; m < 2; m++) {
        gcs_case *c = open_case(modes[m]);
        assert_int_equal(put_all(c, "x.arca", data, n, 999983), 0);
        assert_non_null(fh_log_find(c->fh, -1, m ? "parallel parts composed" : "one resumable session"));
        assert_int_equal(get_range(c, "x.arca", 0, 0, &got, &glen), 0);
        assert_int_equal(glen, n);
        assert_memory_equal(got, data, n);
        free(got);
        uint64_t off = 2 * 1024 * 1024 - 3, len = 1024 * 1024 + 7;
        assert_int_equal(get_range(c, "x.arca", off, len, &got, &glen), 0);
        assert_int_equal(glen, len);
        assert_memory_equal(got, data + off, len);
        free(got);
        /* a second commit of the name is refused: backups never overwrite */
        assert_int_equal(put_all(c, "x.arca", data, 1000, 1000), ARCA_EEXIST);
        assert_int_equal(g.p->destination->remove(c->inst, "x.arca"), 0);
        assert_int_equal(server_objects(modes[m][1], names, sizeof names), 0);
        close_case(c);
    }
    free(data);
}

static void abort_mid_upload_leaves_no_part_object_and_nothing_visible(void **state)
{
    (void)state;
    NEED_GCS();
    const arca_destination_ops *d = g.p->destination;
    gcs_case *c = open_case((const char *const[]){"prefix", "aborted-", "upload_concurrency", "3", NULL});
    size_t n = 4 * 1024 * 1024 + 5;
    unsigned char *data = pattern(n, 3);
    char names[65536];
    void *put;
    assert_int_equal(d->put_open(c->inst, "a.arca", &put), 0);
    assert_int_equal(d->put_write(put, data, n), 0);
    for (int i = 0; i < 100 && !server_objects("aborted-.arca-tmp/", names, sizeof names); i++)
        usleep(50000);
    assert_true(names[0] != 0); /* parts were stored... */
    d->put_abort(put);
    assert_int_equal(server_objects("aborted-", names, sizeof names), 0); /* ...and are gone */
    free(data);
    close_case(c);
}

static void names_past_1024_bytes_with_the_prefix_are_refused(void **state)
{
    (void)state;
    NEED_GCS();
    char name[1100];
    memset(name, 'n', 1020);
    name[1020] = 0;
    gcs_case *c = open_case((const char *const[]){"prefix", "long-prefix-", NULL});
    void *put = NULL;
    assert_int_equal(g.p->destination->put_open(c->inst, name, &put), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(c->fh), "more than GCS's 1024"));
    close_case(c);
}

static void location_names_bucket_prefix_and_endpoint_and_no_token(void **state)
{
    (void)state;
    NEED_GCS();
    char buf[1024], want[1024];
    gcs_case *c = open_case((const char *const[]){"prefix", "loc/", NULL});
    assert_int_equal(g.p->destination->location(c->inst, buf, sizeof buf), 0);
    snprintf(want, sizeof want, "gs://unit/loc/ at %s", g.endpoint);
    assert_string_equal(buf, want);
    assert_null(strstr(buf, "unit-test-token"));
    close_case(c);
}

static void cleanup_finds_and_removes_part_objects_an_interrupted_put_left(void **state)
{
    (void)state;
    NEED_GCS();
    char cmd[2048], names[65536];
    /* what a killed backup leaves: part objects of an upload nobody composes */
    for (int i = 1; i <= 3; i++) {
        snprintf(cmd, sizeof cmd, "head -c 1000 /dev/urandom | curl -sf -o /dev/null -X POST --data-binary @- "
                 "'%s/upload/storage/v1/b/unit/o?uploadType=media&name=left-.arca-tmp/p.X.arca/0000000001-abcdef/%06d'",
                 g.endpoint, i);
        assert_int_equal(system(cmd), 0);
    }
    gcs_case *c = open_case((const char *const[]){"prefix", "left-", NULL});
    assert_int_equal(g.p->destination->cleanup(c->inst, "p.", 0, 1, NULL, NULL), 0); /* nothing that old */
    assert_int_equal(server_objects("left-", names, sizeof names), 3);
    assert_int_equal(g.p->destination->cleanup(c->inst, "p.", (int64_t)time(NULL) + 60, 1, NULL, NULL), 0);
    assert_int_equal(server_objects("left-", names, sizeof names), 3); /* dry run */
    assert_int_equal(g.p->destination->cleanup(c->inst, "p.", (int64_t)time(NULL) + 60, 0, NULL, NULL), 0);
    assert_int_equal(server_objects("left-", names, sizeof names), 0);
    close_case(c);
}

int main(void)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(create_refuses_contradictions_and_bad_values_offline),
        cmocka_unit_test(objects_read_back_across_chunk_boundaries_in_both_upload_modes),
        cmocka_unit_test(abort_mid_upload_leaves_no_part_object_and_nothing_visible),
        cmocka_unit_test(names_past_1024_bytes_with_the_prefix_are_refused),
        cmocka_unit_test(location_names_bucket_prefix_and_endpoint_and_no_token),
        cmocka_unit_test(cleanup_finds_and_removes_part_objects_an_interrupted_put_left),
    };
    size_t nown = sizeof own / sizeof *own;
    struct CMUnitTest *t = calloc(nown + arca_destkit_count(), sizeof *t);
    kit_slot *slots = calloc(arca_destkit_count(), sizeof *slots);
    void *dl = NULL;
    const arca_plugin *p = fh_load_plugin("gcs", &dl);
    if (!t || !slots || !p)
        return 1;
    memcpy(t, own, sizeof own);
    size_t n = nown + kit_add_tests(t + nown, slots, "kit", p, NULL, destination_kit_check, kit_setup, kit_teardown);
    int failed = _cmocka_run_group_tests("gcs_plugin", t, n, group_setup, group_teardown);
    fh_unload_plugin(dl);
    free(t);
    free(slots);
    return failed ? 1 : 0;
}
