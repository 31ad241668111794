/* s3 destination plugin, loaded from $BUILD/plugins/s3.so as the core would,
 * against moto with SigV4 checking on (tests/servers/moto.sh): the destination
 * contract through the kit (core/destkit, one test per check, a multipart put
 * broken by aborting its upload with the aws CLI), then what only s3 promises:
 * reads across part boundaries, abort leaving no multipart upload, key-length
 * and prefix refusals, batched multi-object delete, location, the credential
 * chain (environment, profile files, instance metadata with refresh, against
 * a fake IMDSv2 in this file), and the settings create refuses. Each test's
 * name says what it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fakehost.h"
#include "kitcase.h"

typedef struct s3_env {
    const arca_plugin *p;
    void *dl;
    int up;
    char why[PATH_MAX + 128];
    char dir[PATH_MAX];
    char endpoint[512], key[512], secret[512];
} s3_env;

static s3_env g;

typedef struct s3_case {
    fakehost *fh;
    void *cfg, *inst;
    size_t kit_check; /* kit tests: the check to run */
} s3_case;

static const char *repo_root(void)
{
    static char root[PATH_MAX];
    const char *build = getenv("BUILD");
    if (access("tests/servers/moto.sh", X_OK) == 0)
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
    FILE *f;
    g.p = fh_load_plugin("s3", &g.dl);
    if (!g.p)
        return -1;
    snprintf(g.dir, sizeof g.dir, "%.3000s/arca-s3unit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(cmd, sizeof cmd, "%s/tests/servers/moto.sh start %s/moto unit 2>%s/moto.err", repo_root(), g.dir, g.dir);
    if (!(f = popen(cmd, "r")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "S3_ENDPOINT=", 12))
            snprintf(g.endpoint, sizeof g.endpoint, "%s", line + 12);
        else if (!strncmp(line, "S3_KEY=", 7))
            snprintf(g.key, sizeof g.key, "%s", line + 7);
        else if (!strncmp(line, "S3_SECRET=", 10))
            snprintf(g.secret, sizeof g.secret, "%s", line + 10);
    }
    int rc = pclose(f);
    g.up = rc == 0 && g.endpoint[0] && g.key[0];
    if (!g.up) {
        /* the server script's own diagnostics (reason + log tail) into the failure */
        char path[PATH_MAX + 16];
        int k = snprintf(g.why, sizeof g.why, "moto did not start: ");
        snprintf(path, sizeof path, "%.4000s/moto.err", g.dir);
        FILE *ef = fopen(path, "r");
        if (ef) {
            size_t got = fread(g.why + k, 1, sizeof g.why - (size_t)k - 1, ef);
            g.why[(size_t)k + got] = '\0';
            fclose(ef);
        }
    }
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_CONFIG_FILE", "/dev/null", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "%s/tests/servers/moto.sh stop %s/moto; rm -rf %s", repo_root(), g.dir, g.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", cmd);
    fh_unload_plugin(g.dl);
    return 0;
}

/* A fresh instance; kv ends with NULL. with_keys adds the moto key pair;
 * `extra` may override upload_concurrency (3 otherwise). */
static s3_case *open_case(int with_keys, const char *const *extra)
{
    const char *kv[64];
    size_t n = 0;
    char err[1024];
    int own_concurrency = 0;
    s3_case *c = calloc(1, sizeof *c);
    assert_non_null(c);
    for (const char *const *e = extra; e && *e; e += 2)
        own_concurrency |= !strcmp(*e, "upload_concurrency");
    kv[n++] = "endpoint";
    kv[n++] = g.endpoint;
    kv[n++] = "bucket";
    kv[n++] = "unit";
    kv[n++] = "part_size";
    kv[n++] = "5M";
    if (!own_concurrency) {
        kv[n++] = "upload_concurrency";
        kv[n++] = "3";
    }
    if (with_keys) {
        kv[n++] = "access_key_id";
        kv[n++] = g.key;
        kv[n++] = "secret_access_key";
        kv[n++] = g.secret;
    }
    for (; extra && *extra; extra++)
        kv[n++] = *extra;
    kv[n] = NULL;
    c->fh = fh_new();
    c->cfg = fh_config(g.p->options, g.p->config_size, kv, err, sizeof err);
    if (!c->cfg)
        fail_msg("config: %s", err);
    int rc = g.p->create(fh_host(c->fh), c->cfg, &c->inst);
    if (rc)
        fail_msg("create: %d %s", rc, fh_last_error(c->fh));
    return c;
}

static void close_case(s3_case *c)
{
    if (c->inst)
        g.p->destroy(c->inst);
    fh_config_free(g.p->options, c->cfg);
    fh_free(c->fh);
    free(c);
}

/* A test server that did not start is a failure, never a skip. */
#define NEED_MOTO()                 \
    do {                            \
        if (!g.up)                  \
            fail_msg("%s", g.why);  \
    } while (0)

static int put_all(s3_case *c, const char *name, const unsigned char *data, size_t n, size_t step)
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

/* Reads [off, off+len) of name; returns the code, the bytes in *out. */
static int get_range(s3_case *c, const char *name, uint64_t off, uint64_t len, unsigned char **out, size_t *outlen)
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
        if ((rc = d->get_read(get, buf + n, 65521, &got)) || !got) /* odd reads on purpose */
            break;
        n += got;
    }
    d->get_close(get);
    *out = buf;
    *outlen = n;
    return rc;
}

static int count_cb(void *ud, const arca_object_stat *st)
{
    (void)st;
    (*(int *)ud)++;
    return 0;
}

static int count_objects(s3_case *c, const char *prefix)
{
    int n = 0;
    assert_int_equal(g.p->destination->list(c->inst, prefix, count_cb, &n), 0);
    return n;
}

/* The keys of open multipart uploads, from Debian's aws CLI. */
static int open_uploads(void)
{
    char cmd[PATH_MAX * 2], line[512];
    int n = 0;
    snprintf(cmd, sizeof cmd,
             "%s/tests/servers/moto.sh aws %s/moto s3api list-multipart-uploads --bucket unit --output text "
             "--query 'Uploads[].Key'",
             repo_root(), g.dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "None", 4) && line[0] != '\n')
            n++;
    assert_int_equal(pclose(f), 0);
    return n;
}

/* ---- create refuses what cannot work, without touching the network ---- */

static void create_refuses_contradictory_or_unsafe_settings(void **state)
{
    (void)state;
    static const char *const bad[][6] = {
        {"endpoint", "http://user:pw@127.0.0.1:9", NULL},
        {"endpoint", "http://127.0.0.1:9/some/path", NULL},
        {"endpoint", "ftp://127.0.0.1", NULL},
        {"access_key_id", "AKIAONLY", NULL},
        {"object_lock_mode", "COMPLIANCE", NULL},
        {"object_lock_mode", "GOVERNANCE", "object_lock_retain_until", "2001-01-01T00:00:00Z", NULL},
        {"object_lock_retain_until", "30d", NULL},
        {"sse_kms_key_id", "k", NULL},
        {"storage_class", "standard ia", NULL},
        {"prefix", "/abs", NULL},
    };
    static const char *const expect[] = {"credentials", "path", "http", "secret_access_key", "retain_until",
                                         "past", "object_lock_mode", "aws:kms", "storage_class", "prefix"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[16] = {"bucket", "b", NULL};
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
        assert_null(inst);
        fh_config_free(g.p->options, cfg);
        fh_free(fh);
    }
}

/* ---- the destination contract, through the kit ---- */

#define KIT_KEY_PREFIX "kit-"

/* The kit's failure injection: an open multipart upload is aborted behind
 * the plugin's back, as a lifecycle rule or another client could; the
 * workers' next UploadPart (or the Complete) then fails. */
static int break_put_by_aborting_its_upload(void *ud, const char *name)
{
    char cmd[PATH_MAX * 2], id[512];
    int aborted = 0;
    (void)ud;
    snprintf(cmd, sizeof cmd,
             "%s/tests/servers/moto.sh aws %s/moto s3api list-multipart-uploads --bucket unit --prefix '%s%s' "
             "--output text --query 'Uploads[].UploadId'",
             repo_root(), g.dir, KIT_KEY_PREFIX, name);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    if (!fgets(id, sizeof id, f))
        id[0] = '\0';
    if (pclose(f) != 0)
        return -1;
    id[strcspn(id, " \t\n")] = '\0';
    if (id[0] && strcmp(id, "None")) {
        snprintf(cmd, sizeof cmd,
                 "%s/tests/servers/moto.sh aws %s/moto s3api abort-multipart-upload --bucket unit --key '%s%s' "
                 "--upload-id '%s'",
                 repo_root(), g.dir, KIT_KEY_PREFIX, name, id);
        aborted = system(cmd) == 0;
    }
    return aborted ? 0 : -1;
}

static int kit_setup(void **state)
{
    kit_slot *slot = *state;
    s3_case *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->kit_check = slot->check;
    *state = c;
    return 0;
}

static int kit_teardown(void **state)
{
    s3_case *c = *state;
    fh_config_free(g.p->options, c->cfg);
    free(c);
    return 0;
}

static void destination_kit_check(void **state)
{
    s3_case *c = *state;
    const char *kv[] = {"endpoint", g.endpoint, "bucket", "unit", "prefix", KIT_KEY_PREFIX, "part_size", "5M",
                        "upload_concurrency", "3", "access_key_id", g.key, "secret_access_key", g.secret, NULL};
    arca_destkit_opts o = ARCA_DESTKIT_OPTS_INIT;
    char err[1024];

    NEED_MOTO();
    if (!(c->cfg = fh_config(g.p->options, g.p->config_size, kv, err, sizeof err)))
        fail_msg("config: %s", err);
    o.prefix = "kit";
    o.big_size = 11 * 1024 * 1024 + 12345;   /* three parts of 5 MiB */
    o.break_after = 5 * 1024 * 1024 + 1;     /* the upload has started, a worker holds part 1 */
    o.break_put = break_put_by_aborting_its_upload;
    o.verbose = getenv("FH_VERBOSE") != NULL;
    kit_assert(g.p, c->cfg, &o, c->kit_check);
    assert_int_equal(open_uploads(), 0); /* nothing left half-uploaded */
}

/* ---- what only s3 promises ---- */

static void a_multipart_object_reads_back_across_part_boundaries(void **state)
{
    (void)state;
    NEED_MOTO();
    s3_case *c = open_case(1, (const char *const[]){"prefix", "ranged-", NULL});
    size_t n = 12 * 1024 * 1024 + 12345; /* 3 parts */
    unsigned char *data = pattern(n, 7), *got;
    size_t glen;

    assert_int_equal(put_all(c, "x.arca", data, n, 999983), 0);
    assert_int_equal(get_range(c, "x.arca", 0, 0, &got, &glen), 0);
    assert_int_equal(glen, n);
    assert_memory_equal(got, data, n);
    free(got);
    /* a slice across the part boundary at 5 MiB, and one across 10 MiB */
    for (uint64_t boundary = 5; boundary <= 10; boundary += 5) {
        uint64_t off = boundary * 1024 * 1024 - 3, len = 1024 * 1024 + 7;
        assert_int_equal(get_range(c, "x.arca", off, len, &got, &glen), 0);
        assert_int_equal(glen, len);
        assert_memory_equal(got, data + off, len);
        free(got);
    }
    assert_int_equal(g.p->destination->remove(c->inst, "x.arca"), 0);
    free(data);
    close_case(c);
}

static void a_download_worker_failure_lands_on_its_get_handle(void **state)
{
    (void)state;
    NEED_MOTO();
    const arca_destination_ops *d = g.p->destination;
    /* one range in flight at a time: the worker fetches range 1 only once the
     * reader has finished range 0, after the object was replaced */
    s3_case *c = open_case(1, (const char *const[]){"prefix", "replaced-", "upload_concurrency", "1", NULL});
    size_t n = 11 * 1024 * 1024, got = 0;
    unsigned char *data = pattern(n, 5), *buf = malloc(1 << 20);
    void *get = NULL;
    int rc;

    assert_non_null(buf);
    assert_int_equal(put_all(c, "r.arca", data, n, 1 << 20), 0);
    assert_int_equal(d->get_open(c->inst, "r.arca", 0, 0, &get), 0);
    assert_int_equal(d->get_read(get, buf, 1 << 20, &got), 0);
    assert_true(got > 0);
    assert_int_equal(put_all(c, "r.arca", data + 1, n - 1, 1 << 20), 0); /* replaced: a new ETag */
    do
        rc = d->get_read(get, buf, 1 << 20, &got);
    while (rc == 0 && got);
    assert_int_equal(rc, ARCA_EINTEGRITY);
    assert_non_null(fh_handle_error(c->fh, get));
    assert_non_null(strstr(fh_handle_error(c->fh, get), "replaced while it was being read"));
    assert_int_equal(fh_error_count(c->fh), 0); /* nothing on the instance */
    d->get_close(get);
    assert_int_equal(d->remove(c->inst, "r.arca"), 0);
    free(buf);
    free(data);
    close_case(c);
}

static void abort_mid_multipart_leaves_no_upload_and_nothing_visible(void **state)
{
    (void)state;
    NEED_MOTO();
    const arca_destination_ops *d = g.p->destination;
    s3_case *c = open_case(1, (const char *const[]){"prefix", "abort-", NULL});
    size_t n = 16 * 1024 * 1024;
    unsigned char *data = pattern(n, 3);
    void *put;
    assert_int_equal(d->put_open(c->inst, "y.arca", &put), 0);
    assert_int_equal(d->put_write(put, data, n), 0); /* three parts handed to the workers */
    d->put_abort(put);
    assert_int_equal(count_objects(c, ""), 0);
    assert_int_equal(open_uploads(), 0);
    free(data);
    close_case(c);
}

static void keys_over_1024_bytes_and_list_prefixes_with_a_slash_are_refused(void **state)
{
    (void)state;
    NEED_MOTO();
    const arca_destination_ops *d = g.p->destination;
    char prefix[200], name[1000];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    s3_case *c = open_case(1, (const char *const[]){"prefix", prefix, NULL});
    void *h = NULL;
    /* 999 bytes are a fine name, but with the 199-byte prefix the key is 1198 */
    assert_int_equal(d->put_open(c->inst, name, &h), ARCA_ECONFIG);
    assert_null(h);
    assert_non_null(strstr(fh_last_error(c->fh), "more than S3's 1024"));
    assert_int_equal(d->get_open(c->inst, name, 0, 0, &h), ARCA_ECONFIG);
    assert_int_equal(d->remove(c->inst, name), ARCA_ECONFIG);
    assert_int_equal(d->list(c->inst, "a/", count_cb, &(int){0}), ARCA_ECONFIG);
    close_case(c);
}

static void remove_many_sends_batches_of_1000_and_the_old_extension_symbol_is_gone(void **state)
{
    (void)state;
    NEED_MOTO();
    const arca_destination_ops *d = g.p->destination;
    assert_true(ARCA_HAS(arca_destination_ops, d, remove_many));
    assert_non_null(d->remove_many);
    assert_null(dlsym(g.dl, "arca_s3_extensions_entry"));
    s3_case *c = open_case(1, (const char *const[]){"prefix", "many-", NULL});
    enum { N = 1003 };
    char(*names)[32] = calloc(N, sizeof *names);
    const char **v = calloc(N, sizeof *v);
    assert_non_null(names);
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "n%04d.arca", i);
        v[i] = names[i];
    }
    /* one object in the first batch, two in the second: most names were never stored */
    assert_int_equal(put_all(c, v[0], (const unsigned char *)"a", 1, 1), 0);
    assert_int_equal(put_all(c, v[1000], (const unsigned char *)"b", 1, 1), 0);
    assert_int_equal(put_all(c, v[1002], (const unsigned char *)"c", 1, 1), 0);
    assert_int_equal(count_objects(c, ""), 3);
    assert_int_equal(d->remove_many(c->inst, v, N), 0);
    assert_int_equal(count_objects(c, ""), 0);
    free(v);
    free(names);
    close_case(c);
}

static void location_names_bucket_prefix_endpoint_and_region_and_no_secret(void **state)
{
    (void)state;
    NEED_MOTO();
    s3_case *c = open_case(1, (const char *const[]){"prefix", "backups/", "region", "eu-west-3", NULL});
    char got[1024], want[1024], ep[512];
    snprintf(ep, sizeof ep, "%s", g.endpoint);
    for (char *p = ep; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (ep[strlen(ep) - 1] == '/')
        ep[strlen(ep) - 1] = '\0';
    snprintf(want, sizeof want, "s3://unit/backups/ at %s (region eu-west-3)", ep);
    assert_int_equal(g.p->destination->location(c->inst, got, sizeof got), 0);
    assert_string_equal(got, want);
    assert_null(strstr(got, g.key));
    assert_null(strstr(got, g.secret));
    close_case(c);
}

/* ---- credentials ---- */

static void credentials_come_from_the_environment_then_the_profile_files(void **state)
{
    (void)state;
    NEED_MOTO();
    char path[PATH_MAX + 32];
    s3_case *c;

    setenv("AWS_ACCESS_KEY_ID", g.key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", g.secret, 1);
    c = open_case(0, (const char *const[]){"prefix", "env-", NULL});
    assert_int_equal(count_objects(c, ""), 0);
    close_case(c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    snprintf(path, sizeof path, "%s/credentials", g.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = x\n\n"
               "[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n", g.key, g.secret);
    fclose(f);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    c = open_case(0, (const char *const[]){"prefix", "profile-", "profile", "backup", NULL});
    assert_int_equal(put_all(c, "p.arca", (const unsigned char *)"abc", 3, 3), 0);
    assert_int_equal(g.p->destination->remove(c->inst, "p.arca"), 0);
    close_case(c);

    /* a profile that is not there, no environment, no instance metadata */
    c = open_case(0, (const char *const[]){"profile", "nosuch", NULL});
    int n = 0;
    assert_int_equal(g.p->destination->list(c->inst, "", count_cb, &n), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(c->fh), "no credentials"));
    close_case(c);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
}

/* A fake instance metadata service: IMDSv2 token, role name, keys that expire
 * in 200 s (inside the 5-minute refresh window, so every use refreshes). */
typedef struct imds {
    int fd, port;
    pthread_t t;
    int tokens, keys, untokened;
} imds;

static void *imds_main(void *arg)
{
    imds *m = arg;
    for (;;) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096] = "", body[2048], exp[32], resp[3072];
        size_t n = 0;
        ssize_t r;
        while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
            n += (size_t)r;
            req[n] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        time_t t = time(NULL) + 200;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int has_token = strstr(req, "X-aws-ec2-metadata-token: tok-") != NULL;
        if (!strncmp(req, "PUT /latest/api/token", 21)) {
            m->tokens++;
            snprintf(body, sizeof body, "tok-%d", m->tokens);
        } else if (!has_token) {
            m->untokened++;
            snprintf(body, sizeof body, "missing token");
        } else if (strstr(req, "GET /latest/meta-data/iam/security-credentials/arca-role ")) {
            m->keys++;
            snprintf(body, sizeof body,
                     "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
                     "\"Token\":\"session-token-%d\",\"Expiration\":\"%s\"}",
                     g.key, g.secret, m->keys, exp);
        } else if (strstr(req, "GET /latest/meta-data/iam/security-credentials/ ")) {
            snprintf(body, sizeof body, "arca-role");
        } else {
            snprintf(body, sizeof body, "not found");
        }
        int ok = !strstr(body, "not found") && !strstr(body, "missing");
        snprintf(resp, sizeof resp, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 ok ? "200 OK" : (has_token ? "404 Not Found" : "401 Unauthorized"), strlen(body), body);
        if (write(c, resp, strlen(resp)) < 0)
            perror("imds write");
        close(c);
    }
}

static void credentials_come_from_instance_metadata_and_are_refreshed_before_expiry(void **state)
{
    (void)state;
    NEED_MOTO();
    imds m = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    char ep[64];
    m.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(m.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(m.fd, 8), 0);
    getsockname(m.fd, (struct sockaddr *)&a, &al);
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&m.t, NULL, imds_main, &m), 0);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");

    s3_case *c = open_case(0, (const char *const[]){"prefix", "imds-", NULL});
    assert_int_equal(m.tokens, 0); /* create touches no network */
    /* moto checks session tokens against its own STS, whose keys it then
     * refuses with auth on: so the proof that the instance keys and their
     * token were used is moto's InvalidToken (not "no credentials", not
     * InvalidAccessKeyId) */
    void *put = NULL;
    assert_int_equal(g.p->destination->put_open(c->inst, "i.arca", &put), 0);
    assert_int_equal(g.p->destination->put_write(put, "abc", 3), 0);
    assert_int_equal(g.p->destination->put_commit(put), ARCA_EFAIL);
    assert_non_null(fh_handle_error(c->fh, put)); /* the put's failure, on its handle */
    assert_non_null(strstr(fh_handle_error(c->fh, put), "InvalidToken"));
    int n = 0;
    assert_int_equal(g.p->destination->list(c->inst, "", count_cb, &n), ARCA_EFAIL);
    assert_non_null(strstr(fh_last_error(c->fh), "InvalidToken"));
    close_case(c);
    assert_true(m.tokens >= 2); /* keys expiring within 5 minutes were fetched again */
    assert_true(m.keys >= 2);
    assert_int_equal(m.untokened, 0); /* IMDSv2: never asked without a session token */

    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    shutdown(m.fd, SHUT_RDWR);
    close(m.fd);
    pthread_join(m.t, NULL);
}

int main(void)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(create_refuses_contradictory_or_unsafe_settings),
        cmocka_unit_test(a_multipart_object_reads_back_across_part_boundaries),
        cmocka_unit_test(a_download_worker_failure_lands_on_its_get_handle),
        cmocka_unit_test(abort_mid_multipart_leaves_no_upload_and_nothing_visible),
        cmocka_unit_test(keys_over_1024_bytes_and_list_prefixes_with_a_slash_are_refused),
        cmocka_unit_test(remove_many_sends_batches_of_1000_and_the_old_extension_symbol_is_gone),
        cmocka_unit_test(location_names_bucket_prefix_endpoint_and_region_and_no_secret),
        cmocka_unit_test(credentials_come_from_the_environment_then_the_profile_files),
        cmocka_unit_test(credentials_come_from_instance_metadata_and_are_refreshed_before_expiry),
    };
    size_t nown = sizeof own / sizeof *own;
    struct CMUnitTest *t = calloc(nown + arca_destkit_count(), sizeof *t);
    kit_slot *slots = calloc(arca_destkit_count(), sizeof *slots);
    void *dl = NULL;
    /* loaded here too: which kit checks apply depends on the descriptor */
    const arca_plugin *p = fh_load_plugin("s3", &dl);
    if (!t || !slots || !p)
        return 1;
    memcpy(t, own, sizeof own);
    size_t n = nown + kit_add_tests(t + nown, slots, "kit", p, NULL, destination_kit_check, kit_setup, kit_teardown);
    int failed = _cmocka_run_group_tests("s3_plugin", t, n, group_setup, group_teardown);
    fh_unload_plugin(dl);
    free(t);
    free(slots);
    return failed ? 1 : 0;
}
