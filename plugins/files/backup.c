/* files plugin: backup. Walks `path` with openat/fstatat in byte order of names,
 * never following a symlink, and emits one object per directory, file and link. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large reads keep syscalls rare; the core re-chunks to chunk_size anyway. */
#define FS_BLOCK ((size_t)1 << 20)
#define FS_CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"

typedef struct fs_walk {
    files_inst *fi;
    const arca_host *h;
    arca_sink *sink;
    const char *root;  /* `path` as configured */
    char *shown;       /* root without trailing '/': messages say shown/rel */
    char *buf;        /* the one read buffer, FS_BLOCK bytes */
    char *rel;        /* name of the entry being visited, relative to root */
    size_t rel_len, rel_cap;
    dev_t root_dev;
    uint64_t done;
} fs_walk;

static int fs_walk_dir(fs_walk *w, int dirfd);

static int fs_cancelled(const fs_walk *w)
{
    return w->h->cancelled && w->h->cancelled(w->h);
}

static int fs_rel_push(fs_walk *w, const char *name, size_t *mark)
{
    size_t n = strlen(name), need = w->rel_len + (w->rel_len ? 1 : 0) + n + 1;
    if (need > w->rel_cap) {
        size_t cap = w->rel_cap ? w->rel_cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(w->rel, cap);
        if (!p)
            return w->h->error(w->h, ARCA_ENOMEM, "out of memory");
        w->rel = p;
        w->rel_cap = cap;
    }
    *mark = w->rel_len;
    if (w->rel_len)
        w->rel[w->rel_len++] = '/';
    memcpy(w->rel + w->rel_len, name, n + 1);
    w->rel_len += n;
    return ARCA_OK;
}

static void fs_rel_pop(fs_walk *w, size_t mark)
{
    w->rel_len = mark;
    w->rel[mark] = '\0';
}

static int fs_excluded(const fs_walk *w, const char *base)
{
    for (size_t i = 0; i < w->fi->nexcludes; i++) {
        const char *pat = w->fi->excludes[i];
        int hit;
        if (pat[0] == '/')
            hit = fnmatch(pat + 1, w->rel, FNM_PATHNAME) == 0;
        else if (strchr(pat, '/'))
            hit = fnmatch(pat, w->rel, FNM_PATHNAME) == 0;
        else
            hit = fnmatch(pat, base, 0) == 0;
        if (hit)
            return 1;
    }
    return 0;
}

static int fs_is_cachedir(int dirfd)
{
    char sig[sizeof FS_CACHEDIR_SIG - 1];
    int fd = openat(dirfd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, sig, sizeof sig);
    close(fd);
    return n == (ssize_t)sizeof sig && memcmp(sig, FS_CACHEDIR_SIG, sizeof sig) == 0;
}

/* Begins the object for the entry at w->rel. With `out` the caller writes
 * data and ends it; without, the object is complete here. */
static int fs_emit(fs_walk *w, arca_obj_kind kind, const struct stat *st, const char *target,
                   arca_object **out)
{
    const arca_host *h = w->h;
    arca_object_info info = {
        .name = w->rel,
        .kind = kind,
        .mode = (uint32_t)(st->st_mode & 07777),
        .mtime_sec = (int64_t)st->st_mtim.tv_sec,
        .mtime_nsec = (int32_t)st->st_mtim.tv_nsec,
        .link_target = target,
    };
    arca_object *o = NULL;
    int rc = h->object_begin(w->sink, &info, &o);
    if (rc < 0)
        return rc;
    /* Owners ride along as metadata: restored only when the restore runs as root. */
    rc = h->object_meta_int(o, "uid", (int64_t)st->st_uid);
    if (rc == ARCA_OK)
        rc = h->object_meta_int(o, "gid", (int64_t)st->st_gid);
    if (rc < 0 || !out) {
        int end = h->object_end(o);
        return rc < 0 ? rc : end;
    }
    *out = o;
    return ARCA_OK;
}

static int fs_visit_dir(fs_walk *w, int dirfd, const char *name)
{
    const arca_host *h = w->h;
    const files_config *cfg = w->fi->cfg;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) {
            h->log(h, ARCA_LOG_WARN, "%s/%s vanished or changed type during the backup; skipped",
                   w->shown, w->rel);
            return ARCA_OK;
        }
        return h->error(h, ARCA_EFAIL, "cannot open directory %s/%s: %s", w->shown, w->rel,
                        strerror(errno));
    }
    /* Mode and mtime from the fd we will read, not from the earlier lstat. */
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0)
        rc = h->error(h, ARCA_EFAIL, "cannot stat %s/%s: %s", w->shown, w->rel, strerror(errno));
    else
        rc = fs_emit(w, ARCA_OBJ_DIR, &st, NULL, NULL);
    if (rc == ARCA_OK) {
        int descend = 1;
        if (cfg->one_file_system && st.st_dev != w->root_dev) {
            h->log(h, ARCA_LOG_INFO, "%s/%s is another file system; its contents are not backed up",
                   w->shown, w->rel);
            descend = 0;
        } else if (cfg->exclude_if_present &&
                   faccessat(fd, cfg->exclude_if_present, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            descend = 0;
        } else if (cfg->exclude_caches && fs_is_cachedir(fd)) {
            descend = 0;
        }
        if (descend)
            rc = fs_walk_dir(w, fd);
    }
    close(fd);
    return rc;
}

static int fs_open_file(int dirfd, const char *name)
{
    /* O_NOATIME keeps the backup from touching atimes; only the owner (or
     * root) may ask for it. O_NONBLOCK: a fifo swapped in must not hang us. */
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = openat(dirfd, name, flags | O_NOATIME);
    if (fd < 0 && errno == EPERM)
        fd = openat(dirfd, name, flags);
    return fd;
}

static int fs_visit_file(fs_walk *w, int dirfd, const char *name)
{
    const arca_host *h = w->h;
    int fd = fs_open_file(dirfd, name);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP) {
            h->log(h, ARCA_LOG_WARN, "%s/%s vanished or changed type during the backup; skipped",
                   w->shown, w->rel);
            return ARCA_OK;
        }
        return h->error(h, ARCA_EFAIL, "cannot open %s/%s: %s", w->shown, w->rel, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return h->error(h, ARCA_EFAIL, "cannot stat %s/%s: %s", w->shown, w->rel, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        h->log(h, ARCA_LOG_WARN, "%s/%s changed type during the backup; skipped", w->shown, w->rel);
        return ARCA_OK;
    }
    arca_object *o = NULL;
    int rc = fs_emit(w, ARCA_OBJ_DATA, &st, NULL, &o);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    uint64_t got = 0;
    while (rc == ARCA_OK) {
        if (fs_cancelled(w)) {
            rc = h->error(h, ARCA_ECANCELED, "backup cancelled");
            break;
        }
        ssize_t n = read(fd, w->buf, FS_BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = h->error(h, ARCA_EFAIL, "cannot read %s/%s: %s", w->shown, w->rel,
                          strerror(errno));
            break;
        }
        if (n == 0)
            break;
        rc = h->object_write(o, w->buf, (size_t)n);
        got += (uint64_t)n;
        w->done += (uint64_t)n;
        if (h->progress)
            h->progress(h, w->done, 0);
    }
    struct stat after;
    if (rc == ARCA_OK && fstat(fd, &after) == 0 &&
        (got != (uint64_t)st.st_size || after.st_size != st.st_size ||
         after.st_mtim.tv_sec != st.st_mtim.tv_sec || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec))
        h->log(h, ARCA_LOG_WARN,
               "%s/%s changed while being read (size %lld, now %lld); kept the %llu bytes read",
               w->shown, w->rel, (long long)st.st_size, (long long)after.st_size,
               (unsigned long long)got);
    close(fd);
    /* There is no abort: ending the object frees it, and our failure fails the backup. */
    int end = h->object_end(o);
    return rc < 0 ? rc : end;
}

static int fs_visit_link(fs_walk *w, int dirfd, const char *name, const struct stat *st)
{
    const arca_host *h = w->h;
    /* st_size is the target's length on most file systems, 0 on some. */
    size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
    for (;;) {
        char *target = malloc(cap);
        if (!target)
            return h->error(h, ARCA_ENOMEM, "out of memory");
        ssize_t n = readlinkat(dirfd, name, target, cap);
        if (n < 0) {
            int err = errno;
            free(target);
            if (err == ENOENT || err == EINVAL) {
                h->log(h, ARCA_LOG_WARN, "%s/%s vanished or changed type during the backup; skipped",
                       w->shown, w->rel);
                return ARCA_OK;
            }
            return h->error(h, ARCA_EFAIL, "cannot read symlink %s/%s: %s", w->shown, w->rel,
                            strerror(err));
        }
        if ((size_t)n < cap) {
            target[n] = '\0';
            int rc = fs_emit(w, ARCA_OBJ_SYMLINK, st, target, NULL);
            free(target);
            return rc;
        }
        free(target);
        cap *= 2;
    }
}

static const char *fs_type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    default: return "special file";
    }
}

static int fs_visit(fs_walk *w, int dirfd, const char *name)
{
    const arca_host *h = w->h;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) {
            h->log(h, ARCA_LOG_WARN, "%s/%s vanished during the backup; skipped", w->shown, w->rel);
            return ARCA_OK;
        }
        return h->error(h, ARCA_EFAIL, "cannot stat %s/%s: %s", w->shown, w->rel, strerror(errno));
    }
    if (fs_excluded(w, name)) {
        h->log(h, ARCA_LOG_DEBUG, "excluded %s/%s", w->shown, w->rel);
        return ARCA_OK;
    }
    if (w->fi->cfg->one_file_system && !S_ISDIR(st.st_mode) && st.st_dev != w->root_dev) {
        h->log(h, ARCA_LOG_INFO, "%s/%s is on another file system; skipped", w->shown, w->rel);
        return ARCA_OK;
    }
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
        return fs_visit_dir(w, dirfd, name);
    case S_IFREG:
        return fs_visit_file(w, dirfd, name);
    case S_IFLNK:
        return fs_visit_link(w, dirfd, name, &st);
    default:
        h->log(h, ARCA_LOG_WARN, "skipped %s %s/%s: only files, directories and symlinks are backed up",
               fs_type_name(st.st_mode), w->shown, w->rel);
        return ARCA_OK;
    }
}

static int fs_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fs_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Reads every name of the directory, sorted so that archives are deterministic. */
static int fs_list_dir(fs_walk *w, int dirfd, char ***out, size_t *count)
{
    const arca_host *h = w->h;
    /* The root directory is named as configured, anything below as shown/rel. */
    const char *pre = w->rel_len ? w->shown : w->root, *sep = w->rel_len ? "/" : "";
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return h->error(h, ARCA_EFAIL, "cannot read directory %s%s%s: %s", pre, sep, w->rel,
                        strerror(err));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = ARCA_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = h->error(h, ARCA_EFAIL, "cannot read directory %s%s%s: %s", pre, sep,
                              w->rel, strerror(errno));
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **p = realloc(names, ncap * sizeof *names);
            if (!p) {
                rc = h->error(h, ARCA_ENOMEM, "out of memory");
                break;
            }
            names = p;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = h->error(h, ARCA_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        fs_free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, fs_name_cmp);
    *out = names;
    *count = n;
    return ARCA_OK;
}

static int fs_walk_dir(fs_walk *w, int dirfd)
{
    char **names = NULL;
    size_t n = 0;
    int rc = fs_list_dir(w, dirfd, &names, &n);
    for (size_t i = 0; rc == ARCA_OK && i < n; i++) {
        size_t mark = 0;
        if (fs_cancelled(w))
            rc = w->h->error(w->h, ARCA_ECANCELED, "backup cancelled");
        else if ((rc = fs_rel_push(w, names[i], &mark)) == ARCA_OK) {
            rc = fs_visit(w, dirfd, names[i]);
            fs_rel_pop(w, mark);
        }
    }
    fs_free_names(names, n);
    return rc;
}

static int fs_sink_facts(fs_walk *w)
{
    const arca_host *h = w->h;
    char *abs = realpath(w->root, NULL);
    if (!abs)
        return h->error(h, ARCA_EFAIL, "cannot resolve %s: %s", w->root, strerror(errno));
    int rc = h->sink_info(w->sink, "path", abs);
    free(abs);
    if (rc == ARCA_OK)
        rc = h->sink_info(w->sink, "mode", "full");
    char host[256];
    if (rc == ARCA_OK && gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        rc = h->sink_info(w->sink, "hostname", host);
    }
    if (rc == ARCA_OK && w->fi->cfg->exclude && w->fi->nexcludes)
        rc = h->sink_info(w->sink, "exclude", w->fi->cfg->exclude);
    return rc;
}

int files_backup(void *inst, arca_sink *sink)
{
    files_inst *fi = inst;
    const arca_host *h = fi->host;
    fs_walk w = {.fi = fi, .h = h, .sink = sink, .root = fi->cfg->path};

    /* The root itself may be a symlink (/data -> /mnt/data): the user named it. */
    int root = open(w.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return h->error(h, ARCA_EFAIL, "cannot open directory %s: %s", w.root, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(root, &st) < 0) {
        rc = h->error(h, ARCA_EFAIL, "cannot stat %s: %s", w.root, strerror(errno));
        goto out;
    }
    w.root_dev = st.st_dev;
    if ((rc = fs_sink_facts(&w)) < 0)
        goto out;
    if (!(w.buf = malloc(FS_BLOCK)) || !(w.rel = calloc(1, 256)) || !(w.shown = strdup(w.root))) {
        rc = h->error(h, ARCA_ENOMEM, "out of memory");
        goto out;
    }
    w.rel_cap = 256;
    for (size_t n = strlen(w.shown); n > 0 && w.shown[n - 1] == '/'; n--)
        w.shown[n - 1] = '\0';
    rc = fs_walk_dir(&w, root);
out:
    free(w.buf);
    free(w.rel);
    free(w.shown);
    close(root);
    return rc;
}
