/* files plugin through the fake host: what a backup records, what a restore
 * rebuilds, and that a hostile feed never writes outside the restore target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakehost.h"

#define BIG_SIZE (5u << 20)
#define MANY 40
#define MANY_SIZE 150000u

typedef struct fx {
    void *dl;
    const arca_plugin *p;
} fx;

/* One configured instance bound to its own fake host. */
typedef struct inst {
    fakehost *fh;
    void *cfg;
    void *inst;
} inst;

/* ---- helpers -------------------------------------------------------------------- */

static char *tmp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/arca-files-test.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    assert_int_equal(chmod(d, 0755), 0);
    return strdup(d);
}

static char *join(const char *a, const char *b)
{
    char *s = NULL;
    assert_true(asprintf(&s, "%s/%s", a, b) > 0);
    return s;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

static void put_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
    char *p = join(dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    if (len)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    free(p);
}

static void put_dir(const char *dir, const char *name, mode_t mode)
{
    char *p = join(dir, name);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

static void put_link(const char *dir, const char *name, const char *target)
{
    char *p = join(dir, name);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    ssize_t n;
    while ((n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    close(fd);
    *len = got;
    return buf;
}

static void pseudo_random(unsigned char *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
}

/* Gives every entry a distinct mtime with nanoseconds, children before parents. */
static long g_stamp;
static int stamp_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (ftw->level == 0)
        return 0;
    struct timespec ts[2] = {{.tv_sec = 1600000000, .tv_nsec = 0},
                             {.tv_sec = 1500000000 + g_stamp * 61, .tv_nsec = 1000 * g_stamp + 7}};
    g_stamp++;
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void stamp_tree(const char *root)
{
    g_stamp = 1;
    assert_int_equal(nftw(root, stamp_one, 64, FTW_DEPTH | FTW_PHYS), 0);
}

/* The tree every backup/restore test starts from. */
static char *make_tree(void)
{
    char *root = tmp_dir();
    unsigned char *big = malloc(BIG_SIZE);
    pseudo_random(big, BIG_SIZE, 42);
    put_file(root, "empty", "", 0, 0644);
    put_dir(root, "emptydir", 0755);
    put_dir(root, "a", 0755);
    put_dir(root, "a/b", 0750);
    put_dir(root, "a/b/c", 0700);
    put_file(root, "a/b/c/deep.txt", "deep\n", 5, 0640);
    put_dir(root, "a/ro", 0700);
    put_file(root, "a/ro/inside", "read only\n", 10, 0444);
    char *ro = join(root, "a/ro");
    assert_int_equal(chmod(ro, 0555), 0);
    free(ro);
    put_file(root, "big.bin", big, BIG_SIZE, 0600);
    put_file(root, "exec.sh", "#!/bin/sh\n", 10, 04755);
    put_link(root, "passwd", "/etc/passwd");
    put_link(root, "dangling", "does/not/exist");
    put_link(root, "a/up", "../emptydir");
    put_file(root, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93.txt", "unicode\n", 8, 0644);
    put_dir(root, "with space", 0755);
    put_file(root, "with space/file name.txt", "spaces\n", 7, 0644);
    put_dir(root, "many", 0755);
    for (int i = 0; i < MANY; i++) {
        char name[32];
        snprintf(name, sizeof name, "many/f%02d", i);
        pseudo_random(big, MANY_SIZE, (uint32_t)i);
        put_file(root, name, big, MANY_SIZE, 0644);
    }
    char *fifo = join(root, "fifo");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    free(fifo);
    free(big);
    stamp_tree(root);
    return root;
}

static void inst_open(const fx *f, inst *in, const char *path, const char *const *extra)
{
    const char *kv[32] = {"path", path};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        kv[n++] = extra[i];
    kv[n] = NULL;
    char err[512] = "";
    in->cfg = fh_config(f->p->options, f->p->config_size, kv, err, sizeof err);
    if (!in->cfg)
        fail_msg("config: %s", err);
    in->fh = fh_new();
    in->inst = NULL;
    assert_int_equal(f->p->create(fh_host(in->fh), in->cfg, &in->inst), ARCA_OK);
}

static void inst_close(const fx *f, inst *in)
{
    f->p->destroy(in->inst);
    fh_config_free(f->p->options, in->cfg);
    fh_free(in->fh);
}

static int run_backup(const fx *f, inst *in)
{
    return f->p->source->backup(in->inst, fh_sink(in->fh));
}

static int run_restore(const fx *f, inst *in, const char *const *flags)
{
    char err[512] = "";
    void *ro = fh_config(f->p->restore_options, f->p->restore_config_size, flags, err, sizeof err);
    if (!ro)
        fail_msg("restore flags: %s", err);
    int rc = f->p->source->restore(in->inst, fh_feed(in->fh), ro);
    fh_config_free(f->p->restore_options, ro);
    return rc;
}

static const char *const FORCE[] = {"force", "true", NULL};

/* Backs up `root` and returns the instance holding the recording. */
static void backup_of(const fx *f, inst *src, const char *root, const char *const *extra)
{
    inst_open(f, src, root, extra);
    int rc = run_backup(f, src);
    if (rc != ARCA_OK)
        fail_msg("backup: %d %s", rc, fh_last_error(src->fh));
}

static size_t g_count;
static int count_entries(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    g_count += ftw->level > 0;
    return 0;
}

/* Every recorded object exists under `target` as recorded, and nothing else does. */
static void assert_restored(const fakehost *rec, const char *target)
{
    for (size_t i = 0; i < fh_object_count(rec); i++) {
        const fh_object *o = fh_object_at(rec, i);
        char *p = join(target, o->info.name);
        struct stat st;
        if (lstat(p, &st) != 0)
            fail_msg("%s: not restored: %s", o->info.name, strerror(errno));
        if (st.st_mtim.tv_sec != o->info.mtime_sec || st.st_mtim.tv_nsec != o->info.mtime_nsec)
            fail_msg("%s: mtime %lld.%09ld, want %lld.%09d", o->info.name, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, (long long)o->info.mtime_sec, o->info.mtime_nsec);
        switch (o->info.kind) {
        case ARCA_OBJ_DIR:
            assert_true(S_ISDIR(st.st_mode));
            assert_int_equal(st.st_mode & 07777, o->info.mode);
            break;
        case ARCA_OBJ_DATA: {
            assert_true(S_ISREG(st.st_mode));
            assert_int_equal(st.st_mode & 07777, o->info.mode);
            size_t len;
            unsigned char *data = slurp(p, &len);
            assert_int_equal(len, o->len);
            if (len && memcmp(data, o->data, len))
                fail_msg("%s: restored bytes differ", o->info.name);
            free(data);
            break;
        }
        case ARCA_OBJ_SYMLINK: {
            assert_true(S_ISLNK(st.st_mode));
            char buf[4096];
            ssize_t n = readlink(p, buf, sizeof buf - 1);
            assert_true(n >= 0);
            buf[n] = '\0';
            assert_string_equal(buf, o->info.link_target);
            break;
        }
        }
        free(p);
    }
    g_count = 0;
    assert_int_equal(nftw(target, count_entries, 64, FTW_PHYS), 0);
    assert_int_equal(g_count, fh_object_count(rec));
}

/* ---- descriptor and config ------------------------------------------------------ */

static void test_descriptor_is_a_source_named_files(void **state)
{
    const fx *f = *state;
    assert_int_equal(f->p->abi_major, ARCA_ABI_MAJOR);
    assert_int_equal(f->p->size, sizeof(arca_plugin));
    assert_string_equal(f->p->name, "files");
    assert_int_equal(f->p->roles, ARCA_ROLE_SOURCE);
    assert_non_null(f->p->source);
    assert_null(f->p->destination);
    int has_path = 0, has_force = 0;
    for (const arca_option *o = f->p->options; o->name; o++)
        has_path |= !strcmp(o->name, "path") && (o->flags & ARCA_OPT_REQUIRED);
    for (const arca_option *o = f->p->restore_options; o->name; o++)
        has_force |= !strcmp(o->name, "force") && o->type == ARCA_OPT_BOOL &&
                     (o->flags & ARCA_OPT_FLAG);
    assert_true(has_path);
    assert_true(has_force);
}

static void test_config_without_path_is_refused(void **state)
{
    const fx *f = *state;
    const char *kv[] = {"exclude", "*.tmp", NULL};
    char err[512] = "";
    assert_null(fh_config(f->p->options, f->p->config_size, kv, err, sizeof err));
    assert_non_null(strstr(err, "path"));
}

static void test_create_refuses_exclude_if_present_with_a_slash(void **state)
{
    const fx *f = *state;
    const char *kv[] = {"path", "/tmp", "exclude_if_present", "a/.nobackup", NULL};
    char err[512] = "";
    void *cfg = fh_config(f->p->options, f->p->config_size, kv, err, sizeof err);
    assert_non_null(cfg);
    fakehost *fh = fh_new();
    void *in = (void *)1;
    assert_int_equal(f->p->create(fh_host(fh), cfg, &in), ARCA_ECONFIG);
    assert_null(in);
    assert_non_null(strstr(fh_last_error(fh), "exclude_if_present"));
    fh_free(fh);
    fh_config_free(f->p->options, cfg);
}

/* ---- backup ------------------------------------------------------------------------ */

static void test_backup_records_every_object_with_kind_mode_and_data(void **state)
{
    const fx *f = *state;
    char *root = make_tree();
    inst src;
    backup_of(f, &src, root, NULL);
    fakehost *fh = src.fh;

    assert_string_equal(fh_sink_info_get(fh, "path"), root);
    assert_string_equal(fh_sink_info_get(fh, "mode"), "full");
    assert_int_equal(fh_open_objects(fh), 0);
    /* 7 directories, 7 + MANY files, 3 symlinks: neither the root nor the fifo */
    assert_int_equal(fh_object_count(fh), 7 + 7 + MANY + 3);
    assert_null(fh_object_find(fh, ""));
    assert_null(fh_object_find(fh, "fifo"));
    assert_non_null(fh_log_find(fh, ARCA_LOG_WARN, "fifo"));

    const fh_object *o = fh_object_find(fh, "empty");
    assert_non_null(o);
    assert_int_equal(o->info.kind, ARCA_OBJ_DATA);
    assert_int_equal(o->len, 0);
    assert_int_equal(o->info.mode, 0644);

    o = fh_object_find(fh, "emptydir");
    assert_int_equal(o->info.kind, ARCA_OBJ_DIR);
    assert_int_equal(o->len, 0);

    o = fh_object_find(fh, "a/b");
    assert_int_equal(o->info.kind, ARCA_OBJ_DIR);
    assert_int_equal(o->info.mode, 0750);
    o = fh_object_find(fh, "a/b/c/deep.txt");
    assert_int_equal(o->info.kind, ARCA_OBJ_DATA);
    assert_int_equal(o->info.mode, 0640);
    assert_int_equal(o->len, 5);
    assert_memory_equal(o->data, "deep\n", 5);
    assert_int_equal(fh_object_find(fh, "exec.sh")->info.mode, 04755);
    assert_int_equal(fh_object_find(fh, "a/ro")->info.mode, 0555);

    o = fh_object_find(fh, "passwd");
    assert_int_equal(o->info.kind, ARCA_OBJ_SYMLINK);
    assert_string_equal(o->info.link_target, "/etc/passwd");
    assert_int_equal(o->len, 0);
    assert_string_equal(fh_object_find(fh, "dangling")->info.link_target, "does/not/exist");
    assert_string_equal(fh_object_find(fh, "a/up")->info.link_target, "../emptydir");

    assert_non_null(fh_object_find(fh, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93.txt"));
    o = fh_object_find(fh, "with space/file name.txt");
    assert_non_null(o);
    assert_memory_equal(o->data, "spaces\n", 7);

    o = fh_object_find(fh, "big.bin");
    assert_int_equal(o->len, BIG_SIZE);
    unsigned char *big = malloc(BIG_SIZE);
    pseudo_random(big, BIG_SIZE, 42);
    assert_memory_equal(o->data, big, BIG_SIZE);
    free(big);
    /* Large reads: a 5 MiB file goes out in a handful of writes, not thousands. */
    assert_true(o->writes >= 5 && o->writes <= 10);
    assert_true(fh_progress_calls(fh) > 0);

    char *deep = join(root, "a/b/c/deep.txt");
    struct stat st;
    assert_int_equal(lstat(deep, &st), 0);
    o = fh_object_find(fh, "a/b/c/deep.txt");
    assert_int_equal(o->info.mtime_sec, st.st_mtim.tv_sec);
    assert_int_equal(o->info.mtime_nsec, st.st_mtim.tv_nsec);
    char uid[32];
    snprintf(uid, sizeof uid, "%u", (unsigned)st.st_uid);
    assert_string_equal(fh_object_meta(o, "uid"), uid);
    assert_non_null(fh_object_meta(o, "gid"));
    free(deep);

    inst_close(f, &src);
    rm_rf(root);
    free(root);
}

static void test_backup_order_is_sorted_parent_first_and_repeatable(void **state)
{
    const fx *f = *state;
    char *root = make_tree();
    inst one, two;
    backup_of(f, &one, root, NULL);
    backup_of(f, &two, root, NULL);
    assert_int_equal(fh_object_count(one.fh), fh_object_count(two.fh));
    for (size_t i = 0; i < fh_object_count(one.fh); i++) {
        const char *name = fh_object_at(one.fh, i)->info.name;
        assert_string_equal(name, fh_object_at(two.fh, i)->info.name);
        /* A parent comes before its children; siblings in byte order. */
        const char *slash = strrchr(name, '/');
        if (slash) {
            char *parent = strndup(name, (size_t)(slash - name));
            int seen = 0;
            for (size_t j = 0; j < i; j++)
                seen |= !strcmp(fh_object_at(one.fh, j)->info.name, parent);
            assert_true(seen);
            free(parent);
        }
    }
    assert_string_equal(fh_object_at(one.fh, 0)->info.name, "a");
    assert_string_equal(fh_object_at(one.fh, 1)->info.name, "a/b");
    inst_close(f, &one);
    inst_close(f, &two);
    rm_rf(root);
    free(root);
}

static void test_backup_skips_excluded_names_and_paths(void **state)
{
    const fx *f = *state;
    char *root = make_tree();
    put_file(root, "scratch.tmp", "x", 1, 0644);
    put_file(root, "a/b/c/also.tmp", "x", 1, 0644);
    const char *extra[] = {"exclude", " *.tmp , many/* ,/a/b/c,", NULL};
    inst src;
    backup_of(f, &src, root, extra);
    assert_null(fh_object_find(src.fh, "scratch.tmp"));
    assert_null(fh_object_find(src.fh, "a/b/c"));
    assert_null(fh_object_find(src.fh, "a/b/c/deep.txt"));
    assert_null(fh_object_find(src.fh, "many/f00"));
    assert_non_null(fh_object_find(src.fh, "many")); /* that pattern empties the dir but keeps it */
    assert_non_null(fh_object_find(src.fh, "a/b"));
    assert_non_null(fh_object_find(src.fh, "big.bin"));
    inst_close(f, &src);
    rm_rf(root);
    free(root);
}

static void test_backup_keeps_tagged_directories_empty(void **state)
{
    const fx *f = *state;
    char *root = tmp_dir();
    put_dir(root, "keep", 0755);
    put_file(root, "keep/file", "k", 1, 0644);
    put_dir(root, "private", 0755);
    put_file(root, "private/.nobackup", "", 0, 0644);
    put_file(root, "private/secret", "s", 1, 0644);
    put_dir(root, "cache", 0755);
    const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n# cache\n";
    put_file(root, "cache/CACHEDIR.TAG", tag, sizeof tag - 1, 0644);
    put_file(root, "cache/blob", "b", 1, 0644);
    put_dir(root, "fake", 0755);
    put_file(root, "fake/CACHEDIR.TAG", "not a tag", 9, 0644);
    const char *extra[] = {"exclude_if_present", ".nobackup", "exclude_caches", "yes", NULL};
    inst src;
    backup_of(f, &src, root, extra);
    assert_non_null(fh_object_find(src.fh, "keep/file"));
    assert_non_null(fh_object_find(src.fh, "private"));
    assert_null(fh_object_find(src.fh, "private/secret"));
    assert_non_null(fh_object_find(src.fh, "cache"));
    assert_null(fh_object_find(src.fh, "cache/blob"));
    assert_non_null(fh_object_find(src.fh, "fake/CACHEDIR.TAG"));
    inst_close(f, &src);
    rm_rf(root);
    free(root);
}

static void test_backup_one_file_system_stays_off_mount_points(void **state)
{
    const fx *f = *state;
    char *root = tmp_dir();
    put_dir(root, "mnt", 0755);
    char *mnt = join(root, "mnt");
    if (mount("arca-test", mnt, "tmpfs", 0, "size=1m") != 0) {
        free(mnt);
        rm_rf(root);
        free(root);
        print_message("# skip: mounting a tmpfs needs CAP_SYS_ADMIN\n");
        skip();
    }
    put_file(root, "mnt/other", "o", 1, 0644);
    put_file(root, "here", "h", 1, 0644);
    inst all, one;
    backup_of(f, &all, root, NULL);
    const char *extra[] = {"one_file_system", "true", NULL};
    backup_of(f, &one, root, extra);
    umount2(mnt, MNT_DETACH);
    assert_non_null(fh_object_find(all.fh, "mnt/other"));
    assert_non_null(fh_object_find(one.fh, "mnt"));
    assert_non_null(fh_object_find(one.fh, "here"));
    assert_null(fh_object_find(one.fh, "mnt/other"));
    inst_close(f, &all);
    inst_close(f, &one);
    free(mnt);
    rm_rf(root);
    free(root);
}

static void test_backup_of_a_missing_path_fails_naming_it(void **state)
{
    const fx *f = *state;
    inst src;
    inst_open(f, &src, "/nonexistent/arca-files-test", NULL);
    assert_int_equal(run_backup(f, &src), ARCA_EFAIL);
    assert_non_null(strstr(fh_last_error(src.fh), "/nonexistent/arca-files-test"));
    assert_non_null(strstr(fh_last_error(src.fh), strerror(ENOENT)));
    assert_int_equal(fh_object_count(src.fh), 0);
    inst_close(f, &src);
}

/* Root reads everything, so the unreadable case runs as nobody in a child. */
static void test_backup_of_an_unreadable_file_fails_naming_it(void **state)
{
    const fx *f = *state;
    if (geteuid() != 0) {
        print_message("# skip: needs root\n");
        skip();
    }
    char *root = tmp_dir();
    put_file(root, "a-ok", "fine", 4, 0644);
    put_file(root, "b-secret", "hidden", 6, 0000);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
            _exit(2);
        const char *kv[] = {"path", root, NULL};
        char err[256];
        void *cfg = fh_config(f->p->options, f->p->config_size, kv, err, sizeof err);
        fakehost *fh = fh_new();
        void *in = NULL;
        if (!cfg || f->p->create(fh_host(fh), cfg, &in) != ARCA_OK)
            _exit(3);
        int rc = f->p->source->backup(in, fh_sink(fh));
        int ok = rc == ARCA_EFAIL && strstr(fh_last_error(fh), "b-secret") &&
                 strstr(fh_last_error(fh), strerror(EACCES)) &&
                 fh_object_find(fh, "a-ok") && fh_object_find(fh, "a-ok")->len == 4 &&
                 fh_open_objects(fh) == 0;
        if (!ok)
            fprintf(stderr, "child: rc %d, error '%s'\n", rc, fh_last_error(fh));
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    rm_rf(root);
    free(root);
}

static void test_backup_stops_when_cancelled(void **state)
{
    const fx *f = *state;
    char *root = make_tree();
    inst src;
    inst_open(f, &src, root, NULL);
    fh_cancel_after(src.fh, 3);
    assert_int_equal(run_backup(f, &src), ARCA_ECANCELED);
    assert_int_equal(fh_open_objects(src.fh), 0);
    assert_true(fh_object_count(src.fh) < 10);
    inst_close(f, &src);
    rm_rf(root);
    free(root);
}

static void test_backup_stops_when_the_sink_fails(void **state)
{
    const fx *f = *state;
    char *root = make_tree();
    inst src;
    inst_open(f, &src, root, NULL);
    fh_sink_fail_after(src.fh, 2, ARCA_EFAIL);
    assert_int_equal(run_backup(f, &src), ARCA_EFAIL);
    assert_int_equal(fh_object_count(src.fh), 2);
    assert_int_equal(fh_open_objects(src.fh), 0);
    inst_close(f, &src);
    rm_rf(root);
    free(root);
}

/* ---- restore ------------------------------------------------------------------------ */

static void round_trip(const fx *f, size_t chunk, int interleave)
{
    char *root = make_tree();
    char *base = tmp_dir();
    char *target = join(base, "new/target"); /* missing: the restore makes it */
    inst src, dst;
    backup_of(f, &src, root, NULL);
    inst_open(f, &dst, target, NULL);
    fh_feed_from_recording(dst.fh, src.fh, chunk, interleave);
    int rc = run_restore(f, &dst, NULL);
    if (rc != ARCA_OK)
        fail_msg("restore: %d %s", rc, fh_last_error(dst.fh));
    assert_int_equal(fh_feed_remaining(dst.fh), 0);
    assert_restored(src.fh, target);
    inst_close(f, &src);
    inst_close(f, &dst);
    rm_rf(root);
    rm_rf(base);
    free(root);
    free(base);
    free(target);
}

static void test_restore_reproduces_the_tree_from_interleaved_chunks(void **state)
{
    round_trip(*state, 64 * 1024, 1);
}

static void test_restore_reproduces_the_tree_from_sequential_chunks(void **state)
{
    round_trip(*state, 1 << 20, 0);
}

static void test_restore_refuses_a_non_empty_target_without_force(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    put_file(target, "old", "old", 3, 0644);
    inst dst;
    inst_open(f, &dst, target, NULL);
    fh_feed_file(dst.fh, "new", 0644, "new", 3);
    assert_int_equal(run_restore(f, &dst, NULL), ARCA_EEXIST);
    assert_non_null(strstr(fh_last_error(dst.fh), target));
    assert_non_null(strstr(fh_last_error(dst.fh), "--force"));
    char *p = join(target, "new");
    assert_false(exists(p));
    free(p);
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

static void test_restore_with_force_replaces_files_and_reuses_dirs(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    put_file(target, "file", "old content", 11, 0600);
    put_dir(target, "dir", 0700);
    put_file(target, "dir/kept", "kept", 4, 0644);
    put_link(target, "link", "/old/target");
    put_link(target, "was-link", "/etc");
    put_file(target, "was-file", "x", 1, 0644);
    inst dst;
    inst_open(f, &dst, target, NULL);
    fh_feed_dir(dst.fh, "dir", 0755);
    fh_feed_dir(dst.fh, "was-link", 0755); /* a directory replaces a symlink */
    fh_feed_symlink(dst.fh, "link", "/new/target");
    fh_feed_symlink(dst.fh, "was-file", "file");
    fh_feed_file(dst.fh, "file", 0644, "new", 3);
    fh_feed_file(dst.fh, "dir/new", 0644, "n", 1);
    fh_feed_file(dst.fh, "was-link/inside", 0644, "i", 1);
    int rc = run_restore(f, &dst, FORCE);
    if (rc != ARCA_OK)
        fail_msg("restore: %d %s", rc, fh_last_error(dst.fh));
    size_t len;
    char *p = join(target, "file");
    unsigned char *data = slurp(p, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "new", 3);
    free(data);
    free(p);
    p = join(target, "dir/kept");
    assert_true(exists(p));
    free(p);
    char buf[64];
    p = join(target, "link");
    ssize_t n = readlink(p, buf, sizeof buf);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "/new/target", 11);
    free(p);
    struct stat st;
    p = join(target, "was-link");
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(p);
    p = join(target, "was-file");
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    free(p);
    assert_false(exists("/etc/inside"));
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

static void test_restore_turns_a_zero_chunk_data_object_into_an_empty_file(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    inst dst;
    inst_open(f, &dst, target, NULL);
    arca_entry e = {.info = {.name = "nothing", .kind = ARCA_OBJ_DATA, .mode = 0640}};
    fh_feed_add(dst.fh, &e, NULL);
    assert_int_equal(run_restore(f, &dst, NULL), ARCA_OK);
    char *p = join(target, "nothing");
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    free(p);
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

static void test_restore_applies_owners_as_root_unless_no_owner(void **state)
{
    const fx *f = *state;
    if (geteuid() != 0) {
        print_message("# skip: needs root\n");
        skip();
    }
    for (int no_owner = 0; no_owner <= 1; no_owner++) {
        char *target = tmp_dir();
        inst dst;
        inst_open(f, &dst, target, NULL);
        const char *meta[] = {"uid", "12345", "gid", "23456", NULL};
        arca_entry d = {.info = {.name = "d", .kind = ARCA_OBJ_DIR, .mode = 0750}};
        arca_entry l = {.info = {.name = "d/l", .kind = ARCA_OBJ_SYMLINK, .link_target = "x"}};
        arca_entry e = {.info = {.name = "d/f", .kind = ARCA_OBJ_DATA, .mode = 06750},
                        .object_size = 2, .chunks = 1, .data = "ab", .len = 2};
        fh_feed_add(dst.fh, &d, meta);
        fh_feed_add(dst.fh, &l, meta);
        fh_feed_add(dst.fh, &e, meta);
        const char *flags[] = {"no_owner", "true", NULL};
        assert_int_equal(run_restore(f, &dst, no_owner ? flags : NULL), ARCA_OK);
        const char *names[] = {"d", "d/l", "d/f"};
        for (int i = 0; i < 3; i++) {
            char *p = join(target, names[i]);
            struct stat st;
            assert_int_equal(lstat(p, &st), 0);
            assert_int_equal(st.st_uid, no_owner ? 0 : 12345);
            assert_int_equal(st.st_gid, no_owner ? 0 : 23456);
            if (i == 2) /* set-id bits survive the chown */
                assert_int_equal(st.st_mode & 07777, 06750);
            free(p);
        }
        inst_close(f, &dst);
        rm_rf(target);
        free(target);
    }
}

static void test_restore_stops_when_cancelled(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    inst dst;
    inst_open(f, &dst, target, NULL);
    fh_feed_file(dst.fh, "a", 0644, "a", 1);
    fh_feed_file(dst.fh, "b", 0644, "b", 1);
    fh_cancel_after(dst.fh, 1);
    assert_int_equal(run_restore(f, &dst, NULL), ARCA_ECANCELED);
    char *p = join(target, "b");
    assert_false(exists(p));
    free(p);
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

/* ---- hostile feeds ---------------------------------------------------------------- */

/* A restore of the feed built by `build` into base/target fails with `want`
 * (0: any failure) and leaves no trace at base/`outside`. */
typedef void (*feed_builder)(fakehost *fh, const char *base);

static void expect_refused(const fx *f, feed_builder build, int force, int want,
                           const char *outside, const char *named)
{
    char *base = tmp_dir();
    char *target = join(base, "target");
    put_dir(base, "target", 0755);
    put_dir(base, "somewhere", 0755); /* a real directory a link could aim at */
    if (force)
        put_link(target, "pre", base); /* planted in the target before the restore */
    inst dst;
    inst_open(f, &dst, target, NULL);
    build(dst.fh, base);
    int rc = run_restore(f, &dst, force ? FORCE : NULL);
    char *out = join(base, outside);
    if (exists(out))
        fail_msg("%s was written outside the target", out);
    free(out);
    if (want)
        assert_int_equal(rc, want);
    else
        assert_true(rc < 0);
    if (named && !strstr(fh_last_error(dst.fh), named))
        fail_msg("error '%s' does not name '%s'", fh_last_error(dst.fh), named);
    inst_close(f, &dst);
    rm_rf(base);
    free(base);
    free(target);
}

static void feed_dotdot(fakehost *fh, const char *base)
{
    fh_feed_file(fh, "../x", 0644, "evil", 4);
}

static void feed_absolute(fakehost *fh, const char *base)
{
    char *abs = join(base, "x");
    fh_feed_file(fh, abs, 0644, "evil", 4);
    free(abs);
}

static void feed_dotdot_inside(fakehost *fh, const char *base)
{
    fh_feed_dir(fh, "a", 0755);
    fh_feed_file(fh, "a/../../x", 0644, "evil", 4);
}

static void feed_link_then_data(fakehost *fh, const char *base)
{
    char *where = join(base, "somewhere");
    fh_feed_symlink(fh, "lnk", where);
    fh_feed_file(fh, "lnk/evil", 0644, "evil", 4);
    free(where);
}

static void feed_link_then_dir(fakehost *fh, const char *base)
{
    char *where = join(base, "somewhere");
    fh_feed_symlink(fh, "lnk", where);
    fh_feed_dir(fh, "lnk/evil", 0755);
    free(where);
}

static void feed_link_below_link(fakehost *fh, const char *base)
{
    char *where = join(base, "somewhere");
    fh_feed_symlink(fh, "lnk", where);
    fh_feed_symlink(fh, "lnk/evil", "/etc/passwd");
    free(where);
}

static void feed_data_then_link(fakehost *fh, const char *base)
{
    /* Out of the promised order: the data arrives before the link over its parent. */
    char *where = join(base, "somewhere");
    fh_feed_file(fh, "lnk/evil", 0644, "evil", 4);
    fh_feed_symlink(fh, "lnk", where);
    free(where);
}

static void feed_through_planted_link(fakehost *fh, const char *base)
{
    fh_feed_file(fh, "pre/somewhere/evil", 0644, "evil", 4);
}

static void feed_dir_through_planted_link(fakehost *fh, const char *base)
{
    fh_feed_dir(fh, "pre/somewhere/evil", 0755);
}

static void test_restore_refuses_dotdot_names(void **state)
{
    expect_refused(*state, feed_dotdot, 0, ARCA_EINTEGRITY, "x", "../x");
    expect_refused(*state, feed_dotdot_inside, 0, ARCA_EINTEGRITY, "x", "a/../../x");
}

static void test_restore_refuses_absolute_names(void **state)
{
    expect_refused(*state, feed_absolute, 0, ARCA_EINTEGRITY, "x", "/x");
}

static void test_restore_refuses_malformed_names(void **state)
{
    const fx *f = *state;
    const char *bad[] = {"", "./x", "a//b", "x/", "a/./b", "..", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *target = tmp_dir();
        inst dst;
        inst_open(f, &dst, target, NULL);
        fh_feed_file(dst.fh, bad[i], 0644, "evil", 4);
        assert_int_equal(run_restore(f, &dst, NULL), ARCA_EINTEGRITY);
        g_count = 0;
        nftw(target, count_entries, 8, FTW_PHYS);
        assert_int_equal(g_count, 0);
        inst_close(f, &dst);
        rm_rf(target);
        free(target);
    }
}

static void test_restore_never_writes_through_an_archive_symlink(void **state)
{
    expect_refused(*state, feed_link_then_data, 0, ARCA_EINTEGRITY, "somewhere/evil", "lnk/evil");
    expect_refused(*state, feed_link_then_dir, 0, ARCA_EINTEGRITY, "somewhere/evil", "lnk/evil");
    expect_refused(*state, feed_link_below_link, 0, ARCA_EINTEGRITY, "somewhere/evil", "lnk/evil");
    expect_refused(*state, feed_data_then_link, 0, 0, "somewhere/evil", "lnk");
    expect_refused(*state, feed_data_then_link, 1, 0, "somewhere/evil", "lnk");
}

static void test_restore_never_writes_through_a_symlink_already_in_the_target(void **state)
{
    expect_refused(*state, feed_through_planted_link, 1, ARCA_EFAIL, "somewhere/evil", "pre/");
    expect_refused(*state, feed_dir_through_planted_link, 1, ARCA_EFAIL, "somewhere/evil", "pre/");
}

static void test_restore_refuses_chunks_out_of_order(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    inst dst;
    inst_open(f, &dst, target, NULL);
    arca_entry e = {.info = {.name = "f", .kind = ARCA_OBJ_DATA, .mode = 0644},
                    .object_size = 6, .chunks = 3, .data = "ab", .len = 2};
    fh_feed_add(dst.fh, &e, NULL);
    e.chunk = 2;
    fh_feed_add(dst.fh, &e, NULL);
    assert_int_equal(run_restore(f, &dst, NULL), ARCA_EINTEGRITY);
    assert_non_null(strstr(fh_last_error(dst.fh), "'f'"));
    char *p = join(target, "f");
    assert_false(exists(p)); /* the partial file is removed */
    free(p);
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

static void test_restore_refuses_a_truncated_or_oversized_object(void **state)
{
    const fx *f = *state;
    for (int oversized = 0; oversized <= 1; oversized++) {
        char *target = tmp_dir();
        inst dst;
        inst_open(f, &dst, target, NULL);
        arca_entry e = {.info = {.name = "f", .kind = ARCA_OBJ_DATA, .mode = 0644},
                        .object_size = oversized ? 3 : 6, .chunks = 2, .data = "ab", .len = 2};
        fh_feed_add(dst.fh, &e, NULL);
        if (oversized) {
            e.chunk = 1;
            fh_feed_add(dst.fh, &e, NULL);
        }
        assert_int_equal(run_restore(f, &dst, NULL), ARCA_EINTEGRITY);
        char *p = join(target, "f");
        assert_false(exists(p));
        free(p);
        inst_close(f, &dst);
        rm_rf(target);
        free(target);
    }
}

static void test_restore_passes_on_a_feed_failure_and_removes_partial_files(void **state)
{
    const fx *f = *state;
    char *target = tmp_dir();
    inst dst;
    inst_open(f, &dst, target, NULL);
    fh_feed_file(dst.fh, "done", 0644, "d", 1);
    arca_entry e = {.info = {.name = "half", .kind = ARCA_OBJ_DATA, .mode = 0644},
                    .object_size = 4, .chunks = 2, .data = "ab", .len = 2};
    fh_feed_add(dst.fh, &e, NULL);
    fh_feed_fail_at(dst.fh, 2, ARCA_EINTEGRITY);
    assert_int_equal(run_restore(f, &dst, NULL), ARCA_EINTEGRITY);
    char *p = join(target, "half");
    assert_false(exists(p));
    free(p);
    inst_close(f, &dst);
    rm_rf(target);
    free(target);
}

/* ---- main --------------------------------------------------------------------------- */

static int load(void **state)
{
    static fx f;
    f.p = fh_load_plugin("files", &f.dl);
    if (!f.p)
        return -1;
    *state = &f;
    return 0;
}

static int unload(void **state)
{
    fx *f = *state;
    fh_unload_plugin(f->dl);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_source_named_files),
        cmocka_unit_test(test_config_without_path_is_refused),
        cmocka_unit_test(test_create_refuses_exclude_if_present_with_a_slash),
        cmocka_unit_test(test_backup_records_every_object_with_kind_mode_and_data),
        cmocka_unit_test(test_backup_order_is_sorted_parent_first_and_repeatable),
        cmocka_unit_test(test_backup_skips_excluded_names_and_paths),
        cmocka_unit_test(test_backup_keeps_tagged_directories_empty),
        cmocka_unit_test(test_backup_one_file_system_stays_off_mount_points),
        cmocka_unit_test(test_backup_of_a_missing_path_fails_naming_it),
        cmocka_unit_test(test_backup_of_an_unreadable_file_fails_naming_it),
        cmocka_unit_test(test_backup_stops_when_cancelled),
        cmocka_unit_test(test_backup_stops_when_the_sink_fails),
        cmocka_unit_test(test_restore_reproduces_the_tree_from_interleaved_chunks),
        cmocka_unit_test(test_restore_reproduces_the_tree_from_sequential_chunks),
        cmocka_unit_test(test_restore_refuses_a_non_empty_target_without_force),
        cmocka_unit_test(test_restore_with_force_replaces_files_and_reuses_dirs),
        cmocka_unit_test(test_restore_turns_a_zero_chunk_data_object_into_an_empty_file),
        cmocka_unit_test(test_restore_applies_owners_as_root_unless_no_owner),
        cmocka_unit_test(test_restore_stops_when_cancelled),
        cmocka_unit_test(test_restore_refuses_dotdot_names),
        cmocka_unit_test(test_restore_refuses_absolute_names),
        cmocka_unit_test(test_restore_refuses_malformed_names),
        cmocka_unit_test(test_restore_never_writes_through_an_archive_symlink),
        cmocka_unit_test(test_restore_never_writes_through_a_symlink_already_in_the_target),
        cmocka_unit_test(test_restore_refuses_chunks_out_of_order),
        cmocka_unit_test(test_restore_refuses_a_truncated_or_oversized_object),
        cmocka_unit_test(test_restore_passes_on_a_feed_failure_and_removes_partial_files),
    };
    return cmocka_run_group_tests_name("files plugin", tests, load, unload);
}
