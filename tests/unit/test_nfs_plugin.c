/* nfs destination plugin, loaded from $BUILD/plugins/nfs.so as the core would,
 * against a directory (`path`) and over NFSv3 through nfs-ganesha (`url`): the
 * destination contract through the kit (core/destkit, one test per check, a put
 * broken by removing its temporary), then what only this plugin promises: the
 * directory behind its back (temporaries, modes, stale leftovers), names a
 * directory cannot hold, location, and url-mode failures. Each test's name says
 * the behaviour it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakehost.h"
#include "kitcase.h"

/* One backend under test: where its objects land on the local disk (so the
 * test can look behind the plugin's back) and how to configure it. */
typedef struct nfs_env {
    const arca_plugin *p;
    void *dl;
    int url_mode;
    int available;
    int not_root;      /* ganesha.sh exit 77: the VFS FSAL needs root, a real skip */
    char why[512];     /* why URL mode is unavailable */
    char top[1024];      /* temp dir owning everything */
    char root[1100];     /* the directory that receives objects */
    char url[1300];      /* base + query: what the tests configure */
    char base[1100];     /* nfs://127.0.0.1/<export>/sub */
    char query[100];     /* ?nfsport=N&mountport=N, or "" */
} nfs_env;

/* Per test: a fresh host and instance on the env's directory. */
typedef struct nfs_case {
    nfs_env *env;
    fakehost *fh;
    void *cfg;
    void *inst;
    size_t kit_check; /* kit tests: the check to run */
} nfs_case;

static nfs_env g_path_env, g_url_env;

/* ---- helpers ------------------------------------------------------------------ */

static unsigned char pattern_byte(uint64_t i, unsigned seed)
{
    return (unsigned char)(((i * 2654435761u) >> 13) ^ (i >> 20) ^ seed);
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(i, seed);
    return b;
}

/* The repository, for tests/servers/ganesha.sh: $ARCA_ROOT, the current
 * directory, or the parent of $BUILD (tests/run sets BUILD=$ROOT/build). */
static const char *repo_root(void)
{
    static char root[PATH_MAX];
    const char *env = getenv("ARCA_ROOT"), *build = getenv("BUILD");
    char probe[PATH_MAX + 64];

    if (env && *env)
        return env;
    if (access("tests/servers/ganesha.sh", X_OK) == 0)
        return ".";
    if (build && *build) {
        snprintf(root, sizeof root, "%s/..", build);
        snprintf(probe, sizeof probe, "%s/tests/servers/ganesha.sh", root);
        if (access(probe, X_OK) == 0)
            return root;
    }
    return ".";
}

/* Removes every entry of dir (files and empty dirs), not dir itself. */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[PATH_MAX * 2];
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
}

static int count_entries(const char *dir, int hidden_only)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!hidden_only || de->d_name[0] == '.')
            n++;
    }
    closedir(d);
    return n;
}

static void write_local(const char *dir, const char *name, const void *data, size_t len)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_local(const char *dir, const char *name, size_t *len)
{
    char p[PATH_MAX * 2];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (stat(p, &st) != 0)
        return NULL;
    unsigned char *b = malloc((size_t)st.st_size + 1);
    FILE *f = fopen(p, "rb");
    assert_non_null(b);
    assert_non_null(f);
    *len = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    assert_int_equal(*len, (size_t)st.st_size);
    return b;
}

static const arca_destination_ops *ops(nfs_case *c)
{
    return c->env->p->destination;
}

/* A config for the env's directory (or `where` instead: a path or URL), plus
 * extra key, value pairs. NULL and the reason in err if opt_fill refuses. */
static void *make_cfg(nfs_env *e, const char *where, const char *const *extra, char *err, size_t errlen)
{
    const char *kv[32];
    size_t n = 0;
    if (where || !extra || strcmp(extra[0] ? extra[0] : "", "-")) {
        kv[n++] = e->url_mode ? "url" : "path";
        kv[n++] = where ? where : e->url_mode ? e->url : e->root;
    }
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        if (strcmp(extra[i], "-"))
            kv[n++] = extra[i];
    kv[n] = NULL;
    return fh_config(e->p->options, e->p->config_size, kv, err, errlen);
}

/* Creates an instance; returns the create status. */
static int open_inst(nfs_case *c, const char *where, const char *const *extra)
{
    char err[1024] = "";
    c->cfg = make_cfg(c->env, where, extra, err, sizeof err);
    if (!c->cfg)
        fail_msg("config refused: %s", err);
    return c->env->p->create(fh_host(c->fh), c->cfg, &c->inst);
}

static int case_setup(void **state, nfs_env *e)
{
    nfs_case *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->env = e;
    c->fh = fh_new();
    *state = c;
    if (e->available)
        empty_dir(e->root);
    return 0;
}
static int path_case(void **state) { return case_setup(state, &g_path_env); }
static int url_case(void **state) { return case_setup(state, &g_url_env); }

static int case_teardown(void **state)
{
    nfs_case *c = *state;
    if (c->inst)
        c->env->p->destroy(c->inst);
    fh_config_free(c->env->p->options, c->cfg);
    fh_free(c->fh);
    if (c->env->available)
        empty_dir(c->env->root);
    free(c);
    return 0;
}

/* A server that did not start fails the test; only "not root" is a skip. */
static void need_server(const nfs_env *e)
{
    if (e->available)
        return;
    if (e->not_root) {
        print_message("# skip: %s\n", e->why);
        skip();
    }
    fail_msg("%s", e->why);
}

/* Every shared test starts here. */
static nfs_case *begin(void **state, const char *const *extra)
{
    nfs_case *c = *state;
    need_server(c->env);
    int rc = open_inst(c, NULL, extra);
    if (rc)
        fail_msg("create failed (%d): %s", rc, fh_last_error(c->fh));
    return c;
}

static int put_object(nfs_case *c, const char *name, const void *data, size_t len)
{
    void *put = NULL;
    int rc = ops(c)->put_open(c->inst, name, &put);
    if (rc)
        return rc;
    if (len && (rc = ops(c)->put_write(put, data, len))) {
        ops(c)->put_abort(put);
        return rc;
    }
    return ops(c)->put_commit(put);
}

typedef struct listed {
    char names[16][300];
    uint64_t sizes[16];
    int n, stop_after;
} listed;

static int list_cb(void *ud, const arca_object_stat *st)
{
    listed *l = ud;
    if (l->n < 16) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", st->name);
        l->sizes[l->n] = st->size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int list_all(nfs_case *c, const char *prefix, listed *l)
{
    int stop = l->stop_after;
    memset(l, 0, sizeof *l);
    l->stop_after = stop;
    return ops(c)->list(c->inst, prefix, list_cb, l);
}

/* ---- tests shared by both backends ----------------------------------------- */

static void a_put_is_one_hidden_temporary_then_a_file_of_the_default_mode(void **state)
{
    nfs_case *c = begin(state, NULL);
    const size_t len = 3 * 1024 * 1024 + 12345;
    unsigned char *data = pattern(len, 7), *back;
    const size_t pieces[] = {1, 4095, 1024 * 1024 + 7, 2 * 1024 * 1024 + 1, 0};
    size_t off = 0, backlen;
    void *put = NULL;
    listed l = {0};
    struct stat st;
    char p[PATH_MAX * 2];

    assert_int_equal(ops(c)->put_open(c->inst, "20261121T053800Z-1a2b3c.arca", &put), 0);
    for (int i = 0; off < len; i++) {
        size_t n = pieces[i] && pieces[i] < len - off ? pieces[i] : len - off;
        assert_int_equal(ops(c)->put_write(put, data + off, n), 0);
        off += n;
    }
    /* Before commit: not listed, not under its name, one hidden temporary. */
    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 0);
    snprintf(p, sizeof p, "%s/20261121T053800Z-1a2b3c.arca", c->env->root);
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(count_entries(c->env->root, 1), 1);

    assert_int_equal(ops(c)->put_commit(put), 0);
    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], "20261121T053800Z-1a2b3c.arca");
    assert_int_equal(l.sizes[0], len);
    assert_int_equal(count_entries(c->env->root, 0), 1); /* no temporary left */
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600); /* the default file_mode */
    back = read_local(c->env->root, "20261121T053800Z-1a2b3c.arca", &backlen);
    assert_non_null(back);
    assert_int_equal(backlen, len);
    assert_memory_equal(back, data, len);
    free(back);
    free(data);
}

static void abort_removes_the_hidden_temporary_from_the_directory(void **state)
{
    nfs_case *c = begin(state, NULL);
    unsigned char *data = pattern(100000, 3);
    void *put = NULL;
    listed l = {0};

    assert_int_equal(ops(c)->put_open(c->inst, "x.arca", &put), 0);
    assert_int_equal(ops(c)->put_write(put, data, 100000), 0);
    assert_int_equal(count_entries(c->env->root, 1), 1);
    ops(c)->put_abort(put);
    assert_int_equal(count_entries(c->env->root, 0), 0);
    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 0);
    free(data);
}

static void names_a_directory_cannot_hold_are_refused_before_touching_it(void **state)
{
    nfs_case *c = begin(state, NULL);
    const char *bad[] = {".", "..", ".arca-tmp.x.arca.0123456789abcdef", "../x", "/abs", "a\nb"};
    char longname[300]; /* a valid name, but its temporary would not fit in NAME_MAX */

    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    for (size_t i = 0; i <= sizeof bad / sizeof *bad; i++) {
        const char *name = i < sizeof bad / sizeof *bad ? bad[i] : longname;
        void *h = (void *)1;
        assert_int_equal(ops(c)->put_open(c->inst, name, &h), ARCA_ECONFIG);
        assert_null(h);
        h = (void *)1;
        assert_int_equal(ops(c)->get_open(c->inst, name, 0, 0, &h), ARCA_ECONFIG);
        assert_null(h);
        assert_int_equal(ops(c)->remove(c->inst, name), ARCA_ECONFIG);
    }
    assert_non_null(strstr(fh_last_error(c->fh), "a file name here allows"));
    assert_int_equal(count_entries(c->env->root, 0), 0);
}

static void list_is_sorted_and_skips_directories_temporaries_and_dotfiles(void **state)
{
    nfs_case *c = begin(state, NULL);
    char p[PATH_MAX * 2];
    listed l = {0};

    assert_int_equal(put_object(c, "b.manifest.json", "bb", 2), 0);
    assert_int_equal(put_object(c, "a.arca", "aaaa", 4), 0);
    assert_int_equal(put_object(c, "a.manifest.json", "a", 1), 0);
    /* things that are not objects: a directory, a stray temporary, a dotfile */
    snprintf(p, sizeof p, "%s/a.dir", c->env->root);
    assert_int_equal(mkdir(p, 0755), 0);
    write_local(c->env->root, ".arca-tmp.a.arca.0000000000000000", "zz", 2);
    write_local(c->env->root, ".nfs000123", "zz", 2);

    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "a.arca");
    assert_int_equal(l.sizes[0], 4);
    assert_string_equal(l.names[1], "a.manifest.json");
    assert_string_equal(l.names[2], "b.manifest.json");
    assert_int_equal(l.sizes[2], 2);

    assert_int_equal(list_all(c, "a.", &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(list_all(c, "zzz", &l), 0);
    assert_int_equal(l.n, 0);

    l.stop_after = 1; /* a nonzero callback result stops the listing */
    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 1);
}

static void a_get_of_an_object_that_shrank_fails_on_its_own_handle(void **state)
{
    nfs_case *c = begin(state, NULL);
    unsigned char *data = pattern(100000, 9), buf[4096];
    char p[PATH_MAX * 2];
    void *get = NULL, *other = NULL;
    size_t got = 0;
    int rc;

    assert_int_equal(put_object(c, "shrinks.arca", data, 100000), 0);
    assert_int_equal(put_object(c, "stays.arca", data, 10), 0);
    /* an explicit length: path mode reads "to the end" as to the end at read time */
    assert_int_equal(ops(c)->get_open(c->inst, "shrinks.arca", 0, 100000, &get), 0);
    assert_int_equal(ops(c)->get_open(c->inst, "stays.arca", 0, 0, &other), 0);
    snprintf(p, sizeof p, "%s/shrinks.arca", c->env->root);
    assert_int_equal(truncate(p, 10), 0); /* behind the plugin's back */
    do
        rc = ops(c)->get_read(get, buf, sizeof buf, &got);
    while (rc == 0 && got);
    assert_int_equal(rc, ARCA_EINTEGRITY);
    assert_non_null(fh_handle_error(c->fh, get));
    assert_non_null(strstr(fh_handle_error(c->fh, get), "shrinks.arca"));
    assert_int_equal(fh_handle_code(c->fh, get), ARCA_EINTEGRITY);
    assert_int_equal(ops(c)->get_read(other, buf, sizeof buf, &got), 0);
    assert_int_equal(got, 10);
    assert_null(fh_handle_error(c->fh, other));
    assert_int_equal(fh_error_count(c->fh), 0); /* nothing on the instance */
    ops(c)->get_close(get);
    ops(c)->get_close(other);
    free(data);
}

static void stale_temporaries_are_reported_but_neither_listed_nor_deleted(void **state)
{
    nfs_case *c = begin(state, NULL);
    char p[PATH_MAX * 2];
    struct timespec old[2] = {{.tv_sec = time(NULL) - 2 * 86400}, {.tv_sec = time(NULL) - 2 * 86400}};
    listed l = {0};

    write_local(c->env->root, ".arca-tmp.fresh.arca.0000000000000001", "x", 1);
    assert_int_equal(list_all(c, "", &l), 0);
    assert_null(fh_log_find(c->fh, ARCA_LOG_WARN, "older than a day"));

    write_local(c->env->root, ".arca-tmp.crashed.arca.0000000000000002", "x", 1);
    snprintf(p, sizeof p, "%s/.arca-tmp.crashed.arca.0000000000000002", c->env->root);
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    assert_int_equal(list_all(c, "", &l), 0);
    assert_int_equal(l.n, 0);
    assert_non_null(fh_log_find(c->fh, ARCA_LOG_WARN, "1 temporaries"));
    assert_int_equal(count_entries(c->env->root, 1), 2);
}

static void fsync_off_still_commits(void **state)
{
    const char *extra[] = {"fsync", "false", NULL};
    nfs_case *c = begin(state, extra);
    unsigned char *back;
    size_t n;

    assert_int_equal(put_object(c, "nofsync.arca", "data", 4), 0);
    back = read_local(c->env->root, "nofsync.arca", &n);
    assert_non_null(back);
    assert_int_equal(n, 4);
    free(back);
}

static void file_mode_is_applied_exactly(void **state)
{
    const char *extra[] = {"file_mode", "0640", NULL};
    nfs_case *c = begin(state, extra);
    char p[PATH_MAX * 2];
    struct stat st;
    mode_t old = umask(077);

    assert_int_equal(put_object(c, "m.arca", "x", 1), 0);
    umask(old);
    snprintf(p, sizeof p, "%s/m.arca", c->env->root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
}

typedef struct worker {
    nfs_case *c;
    int id, rc;
    char what[200];
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    const size_t len = 1536 * 1024 + (size_t)w->id * 4097;
    unsigned char *data = malloc(len), *back = NULL;
    char name[64];
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        data[i] = pattern_byte(i, (unsigned)w->id);
    snprintf(name, sizeof name, "w%d.arca", w->id);
    for (int round = 0; round < 3 && !w->rc; round++) {
        void *put = NULL, *get = NULL;
        size_t got;
        if ((w->rc = ops(w->c)->put_open(w->c->inst, name, &put))) {
            snprintf(w->what, sizeof w->what, "put_open");
            break;
        }
        /* the core streams MiB buffers: write in 256 KiB pieces */
        for (size_t off = 0; off < len && !w->rc; off += 256 * 1024)
            w->rc = ops(w->c)->put_write(put, data + off, len - off < 256 * 1024 ? len - off : 256 * 1024);
        if (w->rc) {
            ops(w->c)->put_abort(put);
            snprintf(w->what, sizeof w->what, "put_write");
            break;
        }
        if ((w->rc = ops(w->c)->put_commit(put))) {
            snprintf(w->what, sizeof w->what, "put_commit");
            break;
        }
        back = realloc(back, len);
        n = 0;
        if ((w->rc = ops(w->c)->get_open(w->c->inst, name, 0, 0, &get))) {
            snprintf(w->what, sizeof w->what, "get_open");
            break;
        }
        while (!(w->rc = ops(w->c)->get_read(get, back + n, len - n < 300000 ? len - n : 300000, &got)) && got)
            n += got;
        ops(w->c)->get_close(get);
        if (!w->rc && (n != len || memcmp(back, data, len))) {
            w->rc = -100;
            snprintf(w->what, sizeof w->what, "read back %zu of %zu bytes, or different bytes", n, len);
        }
    }
    free(back);
    free(data);
    return NULL;
}

static void concurrent_puts_and_gets_do_not_interfere(void **state)
{
    nfs_case *c = begin(state, NULL);
    enum { N = 6 };
    pthread_t t[N];
    worker w[N];
    listed l = {0};

    for (int i = 0; i < N; i++) {
        w[i] = (worker){.c = c, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        if (w[i].rc)
            fail_msg("worker %d: %s failed (%d): %s", i, w[i].what, w[i].rc, fh_last_error(c->fh));
    assert_int_equal(list_all(c, "w", &l), 0);
    assert_int_equal(l.n, N);
    assert_int_equal(count_entries(c->env->root, 1), 0);
}

/* ---- the destination contract, through the kit ------------------------------ */

/* The kit's failure injection: the put's temporary is removed behind the
 * plugin's back (also through the export's directory in url mode), so its
 * commit cannot rename it into place. */
static int break_put_by_removing_its_temporary(void *ud, const char *name)
{
    nfs_env *e = ud;
    char want[300], p[PATH_MAX * 2];
    int n = 0;
    DIR *d = opendir(e->root);
    struct dirent *de;

    snprintf(want, sizeof want, ".arca-tmp.%s.", name);
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, want, strlen(want))) {
            snprintf(p, sizeof p, "%s/%s", e->root, de->d_name);
            n += unlink(p) == 0;
        }
    if (d)
        closedir(d);
    return n == 1 ? 0 : -1;
}

static int kit_case(void **state, nfs_env *e)
{
    kit_slot *slot = *state;
    if (case_setup(state, e))
        return -1;
    ((nfs_case *)*state)->kit_check = slot->check;
    return 0;
}
static int kit_path_case(void **state) { return kit_case(state, &g_path_env); }
static int kit_url_case(void **state) { return kit_case(state, &g_url_env); }

static void destination_kit_check(void **state)
{
    nfs_case *c = *state;
    char err[1024] = "";
    arca_destkit_opts o = ARCA_DESTKIT_OPTS_INIT;

    need_server(c->env);
    if (!(c->cfg = make_cfg(c->env, NULL, NULL, err, sizeof err)))
        fail_msg("config refused: %s", err);
    o.prefix = "kit";
    o.break_put = break_put_by_removing_its_temporary;
    o.ud = c->env;
    o.verbose = getenv("FH_VERBOSE") != NULL;
    kit_assert(c->env->p, c->cfg, &o, c->kit_check);
    assert_int_equal(count_entries(c->env->root, 0), 0); /* the kit left nothing, temporaries included */
}

/* ---- location ---------------------------------------------------------------- */

static void path_location_is_the_real_path_of_the_directory(void **state)
{
    nfs_case *c = *state;
    char link[PATH_MAX + 32], want[PATH_MAX], got[PATH_MAX + 64];

    snprintf(link, sizeof link, "%s/via-link", c->env->top);
    assert_int_equal(symlink(c->env->root, link), 0);
    strcat(link, "//"); /* and two trailing slashes */
    assert_int_equal(open_inst(c, link, NULL), 0);
    assert_non_null(realpath(c->env->root, want));
    assert_int_equal(ops(c)->location(c->inst, got, sizeof got), 0);
    assert_string_equal(got, want);
    link[strlen(link) - 2] = '\0';
    unlink(link);
}

static void url_location_keeps_host_dir_and_nfsport_and_drops_other_query_values(void **state)
{
    nfs_case *c = *state;
    char url[PATH_MAX + 256], want[PATH_MAX + 64], got[PATH_MAX + 64];
    const char *port = strstr(c->env->query, "nfsport=");

    need_server(c->env);
    assert_non_null(port);
    /* uid and gid, and a trailing slash on the directory */
    snprintf(url, sizeof url, "%s/?uid=0&gid=0&%s", c->env->base, c->env->query + 1);
    assert_int_equal(open_inst(c, url, NULL), 0);
    snprintf(want, sizeof want, "%s?nfsport=%.*s", c->env->base, (int)strspn(port + 8, "0123456789"), port + 8);
    assert_int_equal(ops(c)->location(c->inst, got, sizeof got), 0);
    assert_string_equal(got, want);
    assert_null(strstr(got, "uid"));
}

/* ---- path mode only --------------------------------------------------------- */

static void descriptor_is_a_destination_with_documented_options(void **state)
{
    const arca_plugin *p = g_path_env.p;
    (void)state;
    assert_int_equal(p->abi_major, ARCA_ABI_MAJOR);
    assert_int_equal(p->size, sizeof(arca_plugin));
    assert_int_equal(p->roles, ARCA_ROLE_DESTINATION);
    assert_string_equal(p->name, "nfs");
    assert_non_null(p->destination);
    assert_null(p->source);
    assert_int_equal(p->destination->size, sizeof(arca_destination_ops));
    for (const arca_option *o = p->options; o->name; o++) {
        assert_non_null(o->help);
        assert_true(strlen(o->help) > 10);
        assert_null(strchr(o->help, '\n'));
    }
}

static void create_needs_exactly_one_of_path_and_url(void **state)
{
    nfs_case *c = *state;
    const char *both[] = {"url", "nfs://127.0.0.1/x", NULL};
    const char *neither[] = {"-", NULL};

    assert_int_equal(open_inst(c, NULL, both), ARCA_ECONFIG);
    assert_null(c->inst);
    assert_non_null(strstr(fh_last_error(c->fh), "path"));
    assert_non_null(strstr(fh_last_error(c->fh), "url"));
    fh_config_free(c->env->p->options, c->cfg);
    c->cfg = NULL;
    assert_int_equal(open_inst(c, NULL, neither), ARCA_ECONFIG);
    assert_null(c->inst);
    assert_non_null(strstr(fh_last_error(c->fh), "path"));
    assert_non_null(strstr(fh_last_error(c->fh), "url"));
}

static void create_names_a_missing_directory(void **state)
{
    nfs_case *c = *state;
    char missing[PATH_MAX + 32];

    snprintf(missing, sizeof missing, "%s/does-not-exist", c->env->top);
    assert_int_equal(open_inst(c, missing, NULL), ARCA_ECONFIG);
    assert_null(c->inst);
    assert_non_null(strstr(fh_last_error(c->fh), missing));
}

static void create_refuses_a_bad_file_mode(void **state)
{
    nfs_case *c = *state;
    const char *extra[] = {"file_mode", "rw-r--r--", NULL};
    assert_int_equal(open_inst(c, NULL, extra), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(c->fh), "file_mode"));
}

/* ---- url mode only ---------------------------------------------------------- */

static void url_with_a_missing_directory_fails_naming_it(void **state)
{
    nfs_case *c = *state;
    char url[PATH_MAX + 128];
    void *put = NULL;

    need_server(c->env);
    snprintf(url, sizeof url, "%s/no-such-dir%s", c->env->base, c->env->query);
    /* create does not connect: the error comes with the first operation */
    assert_int_equal(open_inst(c, url, NULL), 0);
    assert_int_not_equal(ops(c)->put_open(c->inst, "x.arca", &put), 0);
    assert_null(put);
    assert_non_null(strstr(fh_last_error(c->fh), "no-such-dir"));
}

static void url_refuses_nfs4_and_other_schemes(void **state)
{
    nfs_case *c = *state;
    const char *bad[] = {"nfs://127.0.0.1/export?version=4", "http://127.0.0.1/export", "nfs://"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(open_inst(c, bad[i], NULL), ARCA_ECONFIG);
        assert_null(c->inst);
        assert_non_null(strstr(fh_last_error(c->fh), "url"));
        fh_config_free(c->env->p->options, c->cfg);
        c->cfg = NULL;
    }
}

static void url_to_a_server_that_is_down_fails_naming_the_url(void **state)
{
    nfs_case *c = *state;
    void *put = NULL;
    const char *url = "nfs://127.0.0.1/srv/backups?nfsport=1&mountport=1";

    assert_int_equal(open_inst(c, url, NULL), 0);
    assert_int_equal(ops(c)->put_open(c->inst, "x.arca", &put), ARCA_EFAIL);
    assert_non_null(strstr(fh_last_error(c->fh), "nfs://127.0.0.1/srv/backups"));
}

static pid_t ganesha_pid(void)
{
    char p[PATH_MAX + 32];
    long pid = 0;
    snprintf(p, sizeof p, "%s/ganesha.pid", g_url_env.top);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* kill(SIGSTOP) returns before every thread has stopped: a thread busy on
 * another CPU could still answer. Wait until /proc shows all of them stopped. */
static int wait_all_threads_stopped(pid_t pid)
{
    char dir[64], stat[PATH_MAX], buf[512];
    for (int tries = 0; tries < 200; tries++) {
        int running = 0;
        snprintf(dir, sizeof dir, "/proc/%ld/task", (long)pid);
        DIR *d = opendir(dir);
        struct dirent *de;
        if (!d)
            return -1;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(stat, sizeof stat, "%s/%s/stat", dir, de->d_name);
            FILE *f = fopen(stat, "r");
            if (!f)
                continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *close_paren = strrchr(buf, ')'); /* state follows "(comm) " */
            if (close_paren && close_paren[1] == ' ' && close_paren[2] != 'T' && close_paren[2] != 't')
                running++;
        }
        closedir(d);
        if (!running)
            return 0;
        usleep(10000);
    }
    return -1;
}

static void url_timeout_fails_the_put_on_its_handle_and_later_puts_reconnect(void **state)
{
    const char *extra[] = {"timeout", "2", NULL};
    nfs_case *c = begin(state, extra);
    unsigned char *data = pattern(1 << 20, 5);
    void *put = NULL;
    pid_t pid = ganesha_pid();
    time_t t0;
    int rc;

    assert_true(pid > 0);
    assert_int_equal(ops(c)->put_open(c->inst, "slow.arca", &put), 0);
    assert_int_equal(ops(c)->put_write(put, data, 1 << 20), 0);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    if (wait_all_threads_stopped(pid) != 0) {
        kill(pid, SIGCONT);
        fail_msg("nfs-ganesha (pid %ld) did not stop", (long)pid);
    }
    t0 = time(NULL);
    rc = ops(c)->put_write(put, data, 1 << 20);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(rc, ARCA_EFAIL);
    assert_true(time(NULL) - t0 < 15);
    /* the timeout is this put's failure: on its handle, with the hint */
    assert_non_null(fh_handle_error(c->fh, put));
    assert_non_null(strstr(fh_handle_error(c->fh, put), "slow.arca"));
    assert_non_null(strstr(fh_handle_error(c->fh, put), "see `timeout`"));
    assert_int_equal(fh_handle_code(c->fh, put), ARCA_EFAIL);
    ops(c)->put_abort(put); /* cleans up on a fresh connection */
    assert_int_equal(count_entries(c->env->root, 0), 0);
    /* the broken connection was dropped, not pooled */
    assert_int_equal(put_object(c, "after.arca", data, 1 << 20), 0);
    assert_int_equal(count_entries(c->env->root, 0), 1);
    free(data);
}

/* ---- groups ----------------------------------------------------------------- */

static int load(nfs_env *e)
{
    e->p = fh_load_plugin("nfs", &e->dl);
    if (!e->p)
        return -1;
    snprintf(e->top, sizeof e->top, "%s/arca-nfs-unit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(e->top))
        return -1;
    return 0;
}

static int path_group_setup(void **state)
{
    nfs_env *e = &g_path_env;
    (void)state;
    if (load(e))
        return -1;
    if (snprintf(e->root, sizeof e->root, "%s/dest", e->top) >= (int)sizeof e->root || mkdir(e->root, 0755) != 0)
        return -1;
    e->available = 1;
    return 0;
}

static int rm_rf(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static int path_group_teardown(void **state)
{
    (void)state;
    rm_rf(g_path_env.top);
    fh_unload_plugin(g_path_env.dl);
    return 0;
}

/* Copies at most cap-1 bytes of src: truncation is fine for messages. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int url_group_setup(void **state)
{
    nfs_env *e = &g_url_env;
    char cmd[PATH_MAX * 2], line[1024], out[400] = "";
    FILE *f;
    int rc;

    (void)state;
    e->url_mode = 1;
    if (load(e))
        return -1;
    snprintf(cmd, sizeof cmd, "%s/tests/servers/ganesha.sh start '%s' 2>&1", repo_root(), e->top);
    if (!(f = popen(cmd, "r")))
        return -1;
    /* the URL is the last line; diagnostics come before it */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "nfs://", 6) == 0)
            copy_str(e->base, sizeof e->base - 8, line); /* room for "/sub" */
        else if (strlen(out) + strlen(line) + 3 < sizeof out)
            strcat(strcat(out, out[0] ? "; " : ""), line);
    }
    rc = pclose(f);
    if (rc != 0 || !e->base[0]) {
        e->not_root = WIFEXITED(rc) && WEXITSTATUS(rc) == 77;
        strcpy(e->why, "URL mode: nfs-ganesha did not start: ");
        copy_str(e->why + strlen(e->why), sizeof e->why - strlen(e->why), out[0] ? out : "no output");
        print_message("# %s\n", e->why);
        return 0;
    }
    if (snprintf(e->root, sizeof e->root, "%s/export/sub", e->top) >= (int)sizeof e->root ||
        mkdir(e->root, 0755) != 0)
        return -1;
    strcat(e->base, "/sub");
    /* This server's own ports: independent of whichever ganesha rpcbind knows. */
    snprintf(cmd, sizeof cmd, "%s/query", e->top);
    if ((f = fopen(cmd, "r"))) {
        if (fgets(line, sizeof line, f) && line[0] == '?')
            copy_str(e->query, sizeof e->query, strtok(line, "\n"));
        fclose(f);
    }
    snprintf(e->url, sizeof e->url, "%s%s", e->base, e->query);
    e->available = 1;
    return 0;
}

static int url_group_teardown(void **state)
{
    char cmd[PATH_MAX * 2];
    (void)state;
    snprintf(cmd, sizeof cmd, "%s/tests/servers/ganesha.sh stop '%s' >/dev/null 2>&1", repo_root(), g_url_env.top);
    if (system(cmd) != 0)
        fprintf(stderr, "# ganesha.sh stop failed\n");
    rm_rf(g_url_env.top);
    fh_unload_plugin(g_url_env.dl);
    return 0;
}

#define OWN(setup)                                                                                        \
    cmocka_unit_test_setup_teardown(a_put_is_one_hidden_temporary_then_a_file_of_the_default_mode, setup,      \
                                    case_teardown),                                                           \
    cmocka_unit_test_setup_teardown(abort_removes_the_hidden_temporary_from_the_directory, setup, case_teardown), \
    cmocka_unit_test_setup_teardown(names_a_directory_cannot_hold_are_refused_before_touching_it, setup,       \
                                    case_teardown),                                                           \
    cmocka_unit_test_setup_teardown(list_is_sorted_and_skips_directories_temporaries_and_dotfiles, setup,      \
                                    case_teardown),                                                           \
    cmocka_unit_test_setup_teardown(stale_temporaries_are_reported_but_neither_listed_nor_deleted, setup,      \
                                    case_teardown),                                                           \
    cmocka_unit_test_setup_teardown(a_get_of_an_object_that_shrank_fails_on_its_own_handle, setup, case_teardown), \
    cmocka_unit_test_setup_teardown(fsync_off_still_commits, setup, case_teardown),                            \
    cmocka_unit_test_setup_teardown(file_mode_is_applied_exactly, setup, case_teardown),                       \
    cmocka_unit_test_setup_teardown(concurrent_puts_and_gets_do_not_interfere, setup, case_teardown)

/* The group's own tests, then one test per kit check that applies. */
static int run_group(const char *name, const struct CMUnitTest *own, size_t nown, const arca_plugin *p, nfs_env *e,
                     CMFixtureFunction kit_setup, CMFixtureFunction setup, CMFixtureFunction teardown)
{
    size_t cap = nown + arca_destkit_count();
    struct CMUnitTest *t = calloc(cap, sizeof *t);
    kit_slot *slots = calloc(arca_destkit_count(), sizeof *slots);
    int failed;

    if (!t || !slots)
        return 1;
    memcpy(t, own, nown * sizeof *t);
    size_t n = nown + kit_add_tests(t + nown, slots, "kit", p, e, destination_kit_check, kit_setup, case_teardown);
    failed = _cmocka_run_group_tests(name, t, n, setup, teardown);
    free(t);
    free(slots);
    return failed;
}

int main(void)
{
    const struct CMUnitTest path_tests[] = {
        cmocka_unit_test(descriptor_is_a_destination_with_documented_options),
        cmocka_unit_test_setup_teardown(create_needs_exactly_one_of_path_and_url, path_case, case_teardown),
        cmocka_unit_test_setup_teardown(create_names_a_missing_directory, path_case, case_teardown),
        cmocka_unit_test_setup_teardown(create_refuses_a_bad_file_mode, path_case, case_teardown),
        cmocka_unit_test_setup_teardown(path_location_is_the_real_path_of_the_directory, path_case, case_teardown),
        OWN(path_case),
    };
    const struct CMUnitTest url_tests[] = {
        OWN(url_case),
        cmocka_unit_test_setup_teardown(url_location_keeps_host_dir_and_nfsport_and_drops_other_query_values,
                                        url_case, case_teardown),
        cmocka_unit_test_setup_teardown(url_with_a_missing_directory_fails_naming_it, url_case, case_teardown),
        cmocka_unit_test_setup_teardown(url_refuses_nfs4_and_other_schemes, url_case, case_teardown),
        cmocka_unit_test_setup_teardown(url_to_a_server_that_is_down_fails_naming_the_url, url_case, case_teardown),
        cmocka_unit_test_setup_teardown(url_timeout_fails_the_put_on_its_handle_and_later_puts_reconnect, url_case,
                                        case_teardown),
    };
    void *dl = NULL;
    /* loaded here too: which kit checks apply depends on the descriptor */
    const arca_plugin *p = fh_load_plugin("nfs", &dl);
    if (!p)
        return 1;
    int failed = run_group("nfs path", path_tests, sizeof path_tests / sizeof *path_tests, p, &g_path_env,
                           kit_path_case, path_group_setup, path_group_teardown);
    failed += run_group("nfs url", url_tests, sizeof url_tests / sizeof *url_tests, p, &g_url_env, kit_url_case,
                        url_group_setup, url_group_teardown);
    fh_unload_plugin(dl);
    return failed ? 1 : 0;
}
