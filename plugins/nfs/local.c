/* nfs plugin, `path` backend: objects are files in an existing directory (a
 * local disk or a kernel NFS mount). Puts go to a hidden temporary that is
 * fsynced and renamed into place, so a crash never leaves a partial object
 * under its final name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nfs.h"
#include "pc_error.h"
#include "pc_status.h"

/* Shared by every put and get of the destination; immutable after create, so
 * concurrent operations need no lock: each has its own file descriptor and the
 * directory is only used through the *at() calls relative to `dirfd`. */
typedef struct nfsl_inst {
    const arca_host *host;
    char *path; /* as configured, trailing slashes dropped: for messages */
    int dirfd;  /* O_DIRECTORY, held so every call targets the same directory */
    nfs_settings set;
} nfsl_inst;

typedef struct nfsl_put {
    const arca_destination_ops *ops; /* nfs_handle: must stay first */
    nfsl_inst *in;
    int fd;
    uint64_t written, flushed; /* bytes written; bytes handed to writeback */
    char name[256];
    char tmp[256];
} nfsl_put;

/* Writeback is started every NFSL_FLUSH_STEP bytes while the object is written, so
 * the disk works while the core compresses and the commit's fsync has little left;
 * the window before last is waited for and dropped from the page cache, which also
 * keeps a backup from evicting the machine's working set. */
#define NFSL_FLUSH_STEP (8u << 20)

typedef struct nfsl_get {
    const arca_destination_ops *ops; /* nfs_handle: must stay first */
    nfsl_inst *in;
    int fd;
    uint64_t pos, end; /* end is UINT64_MAX when reading to the end of the file */
    uint64_t size;     /* at open time, for the truncation message */
    char name[256];
} nfsl_get;

static const arca_destination_ops nfsl_ops;

/* Reports a failed system call on `name`; `handle` is the put or get it
 * belongs to (NULL for the instance's own operations). */
static int nfsl_fail(nfsl_inst *in, const void *handle, int err, const char *what, const char *name)
{
    return pc_handle_error(in->host, handle, pc_status_of_errno(err), "%s '%s/%s': %s", what, in->path, name,
                           strerror(err));
}

/* fsync of a directory is refused by a few filesystems (EINVAL): there the
 * rename is as durable as the filesystem makes it, nothing more we can do. */
static int nfsl_sync_dir(nfsl_inst *in, const void *handle)
{
    if (!in->set.fsync || fsync(in->dirfd) == 0 || errno == EINVAL || errno == EROFS)
        return 0;
    return pc_handle_error(in->host, handle, ARCA_EFAIL, "cannot fsync directory '%s': %s", in->path,
                           strerror(errno));
}

static int nfsl_create(const arca_host *h, const char *where, const nfs_settings *s, void **out)
{
    nfsl_inst *in;
    size_t n = strlen(where);
    int fd;

    *out = NULL;
    /* Opening the directory is the validation the brief asks for: it must
     * exist and be a directory now, not at the first backup hours later. */
    fd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return h->error(h, ARCA_ECONFIG, "destination directory '%s' does not exist: create it or fix `path`",
                            where);
        if (e == ENOTDIR)
            return h->error(h, ARCA_ECONFIG, "destination path '%s' is not a directory", where);
        return h->error(h, e == EACCES ? ARCA_ECONFIG : ARCA_EFAIL, "cannot open destination directory '%s': %s",
                        where, strerror(e));
    }
    if (!(in = calloc(1, sizeof *in)) || !(in->path = strdup(where))) {
        free(in);
        close(fd);
        return h->error(h, ARCA_ENOMEM, "out of memory");
    }
    while (n > 1 && in->path[n - 1] == '/')
        in->path[--n] = '\0';
    in->host = h;
    in->dirfd = fd;
    in->set = *s;
    *out = in;
    return 0;
}

static void nfsl_destroy(void *impl)
{
    nfsl_inst *in = impl;
    if (!in)
        return;
    close(in->dirfd);
    free(in->path);
    free(in);
}

static int nfsl_put_open(void *impl, const char *name, void **out)
{
    nfsl_inst *in = impl;
    nfsl_put *p;

    if (!(p = calloc(1, sizeof *p)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    p->ops = &nfsl_ops;
    p->in = in;
    snprintf(p->name, sizeof p->name, "%s", name);
    nfsp_temp_name(name, p->tmp, sizeof p->tmp);
    /* O_EXCL: a leftover of a crashed run, however unlikely the name, is never
     * reused or truncated behind someone's back. */
    p->fd = openat(in->dirfd, p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, in->set.mode);
    if (p->fd < 0) {
        int rc = nfsl_fail(in, NULL, errno, "cannot create temporary", p->tmp);
        free(p);
        return rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
    }
    /* open() applied the umask: backups get exactly the configured mode.
     * Some filesystems (CIFS, some FUSE) refuse chmod; the data is still fine. */
    if (fchmod(p->fd, in->set.mode) != 0)
        in->host->log(in->host, ARCA_LOG_WARN, "cannot set mode %04o on '%s/%s': %s", in->set.mode, in->path,
                      p->tmp, strerror(errno));
    *out = p;
    return 0;
}

static int nfsl_put_write(void *put, const void *buf, size_t len)
{
    nfsl_put *p = put;
    const char *b = buf;

    while (len) {
        ssize_t n = write(p->fd, b, len < NFS_IO_MAX ? len : NFS_IO_MAX);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return nfsl_fail(p->in, p, errno, "cannot write", p->tmp);
        }
        if (n == 0) /* a zero-byte write would loop forever: treat it as full */
            return nfsl_fail(p->in, p, ENOSPC, "cannot write", p->tmp);
        b += n;
        len -= (size_t)n;
        p->written += (uint64_t)n;
    }
    if (p->in->set.fsync && p->written - p->flushed >= NFSL_FLUSH_STEP) {
        uint64_t start = p->flushed, step = p->written - p->flushed;
        /* errors here are not fatal: the commit's fsync reports them */
        sync_file_range(p->fd, (off_t)start, (off_t)step, SYNC_FILE_RANGE_WRITE);
        if (start >= NFSL_FLUSH_STEP) {
            uint64_t old = start - NFSL_FLUSH_STEP;
            sync_file_range(p->fd, (off_t)old, NFSL_FLUSH_STEP,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            posix_fadvise(p->fd, (off_t)old, NFSL_FLUSH_STEP, POSIX_FADV_DONTNEED);
        }
        p->flushed = p->written;
    }
    return 0;
}

static void nfsl_put_free(nfsl_put *p, int unlink_tmp)
{
    if (p->fd >= 0)
        close(p->fd);
    if (unlink_tmp)
        unlinkat(p->in->dirfd, p->tmp, 0);
    free(p);
}

static int nfsl_put_commit(void *put)
{
    nfsl_put *p = put;
    nfsl_inst *in = p->in;
    int rc, fd = p->fd;

    if (in->set.fsync && fsync(fd) != 0) {
        rc = nfsl_fail(in, p, errno, "cannot fsync", p->tmp);
        nfsl_put_free(p, 1);
        return rc;
    }
    /* close() is where NFS reports deferred write errors: check it. */
    p->fd = -1;
    if (close(fd) != 0 && errno != EINTR) {
        rc = nfsl_fail(in, p, errno, "cannot close", p->tmp);
        nfsl_put_free(p, 1);
        return rc;
    }
    if (renameat(in->dirfd, p->tmp, in->dirfd, p->name) != 0) {
        int e = errno;
        rc = pc_handle_error(in->host, p, ARCA_EFAIL, "cannot rename '%s/%s' to '%s': %s", in->path, p->tmp,
                             p->name, strerror(e));
        nfsl_put_free(p, 1);
        return rc;
    }
    /* Without the directory fsync the rename may not survive a crash; then the
     * contract says nothing may be visible, so take the object back. */
    if ((rc = nfsl_sync_dir(in, p))) {
        unlinkat(in->dirfd, p->name, 0);
        nfsl_put_free(p, 0);
        return rc;
    }
    nfsl_put_free(p, 0);
    return 0;
}

static void nfsl_put_abort(void *put)
{
    nfsl_put_free(put, 1);
}

static int nfsl_get_open(void *impl, const char *name, uint64_t offset, uint64_t length, void **out)
{
    nfsl_inst *in = impl;
    struct stat st;
    nfsl_get *g;
    int rc, fd;

    fd = openat(in->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nfsl_fail(in, NULL, errno, "cannot open", name);
    if (fstat(fd, &st) != 0) {
        rc = nfsl_fail(in, NULL, errno, "cannot stat", name);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return in->host->error(in->host, ARCA_EFAIL, "'%s/%s' is not a regular file", in->path, name);
    }
    if (offset > (uint64_t)st.st_size || (length && offset + length > (uint64_t)st.st_size)) {
        close(fd);
        return in->host->error(in->host, ARCA_EINTEGRITY,
                               "'%s/%s' is %llu bytes: the range %llu+%llu is past its end (truncated?)", in->path,
                               name, (unsigned long long)st.st_size, (unsigned long long)offset,
                               (unsigned long long)length);
    }
    if (!(g = calloc(1, sizeof *g))) {
        close(fd);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_SEQUENTIAL);
    g->ops = &nfsl_ops;
    g->in = in;
    g->fd = fd;
    g->pos = offset;
    g->end = length ? offset + length : UINT64_MAX;
    g->size = (uint64_t)st.st_size;
    snprintf(g->name, sizeof g->name, "%s", name);
    *out = g;
    return 0;
}

static int nfsl_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    nfsl_get *g = get;
    uint64_t want = g->end - g->pos;
    ssize_t n;

    *got = 0;
    if (want == 0 || cap == 0)
        return 0;
    if (want > cap)
        want = cap;
    if (want > NFS_IO_MAX)
        want = NFS_IO_MAX;
    do
        n = pread(g->fd, buf, (size_t)want, (off_t)g->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return nfsl_fail(g->in, g, errno, "cannot read", g->name);
    if (n == 0 && g->end != UINT64_MAX)
        return pc_handle_error(g->in->host, g, ARCA_EINTEGRITY,
                                  "'%s/%s' ended at byte %llu, before the %llu asked for (it was %llu bytes at open)",
                                  g->in->path, g->name, (unsigned long long)g->pos, (unsigned long long)g->end,
                                  (unsigned long long)g->size);
    g->pos += (uint64_t)n;
    *got = (size_t)n;
    return 0;
}

static void nfsl_get_close(void *get)
{
    nfsl_get *g = get;
    close(g->fd);
    free(g);
}

/* Collects first, then calls back in name order: the same order an object
 * store lists in, and the callback never runs with the directory open. */
static int nfsl_list(void *impl, const char *prefix, arca_list_cb cb, void *ud)
{
    nfsl_inst *in = impl;
    nfs_entries l = {0};
    size_t plen = strlen(prefix);
    struct dirent *de;
    DIR *d;
    int rc = 0, fd;
    unsigned stale = 0;
    const time_t stale_before = time(NULL) - NFS_STALE_TMP_SEC;

    /* A fresh descriptor per listing: readdir moves the offset of the one it
     * is given, and lists may run concurrently. */
    if ((fd = openat(in->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || !(d = fdopendir(fd))) {
        rc = in->host->error(in->host, ARCA_EFAIL, "cannot list '%s': %s", in->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    while (!rc) {
        struct stat st;
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                rc = in->host->error(in->host, ARCA_EFAIL, "cannot list '%s': %s", in->path, strerror(errno));
            break;
        }
        /* Hidden names are temporaries (ours or anyone's), never objects. */
        if (de->d_name[0] == '.') {
            if (!strncmp(de->d_name, NFS_TMP_PREFIX, strlen(NFS_TMP_PREFIX)) &&
                fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime < stale_before)
                stale++;
            continue;
        }
        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) /* else removed while we listed */
                rc = nfsl_fail(in, NULL, errno, "cannot stat", de->d_name);
            continue;
        }
        if (S_ISREG(st.st_mode) && nfsp_entry_add(&l, de->d_name, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec))
            rc = in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    closedir(d);
    if (stale)
        in->host->log(in->host, ARCA_LOG_WARN, "%u temporaries (%s*) older than a day in '%s': left by interrupted "
                      "backups; `arca cleanup PIPELINE` removes them", stale, NFS_TMP_PREFIX, in->path);
    if (rc) {
        nfsp_entries_free(&l);
        return rc;
    }
    return nfsp_entries_emit(&l, cb, ud);
}

static int nfsl_remove(void *impl, const char *name)
{
    nfsl_inst *in = impl;
    if (unlinkat(in->dirfd, name, 0) != 0)
        return nfsl_fail(in, NULL, errno, "cannot remove", name);
    return nfsl_sync_dir(in, NULL);
}

/* The directory as the system resolves it now (symlinks and ".." gone), so
 * that two spellings of one directory give one location. */
static int nfsl_location(void *impl, char *buf, size_t cap)
{
    nfsl_inst *in = impl;
    char *real = realpath(in->path, NULL);
    int n;

    if (!real)
        return in->host->error(in->host, ARCA_EFAIL, "cannot resolve '%s': %s", in->path, strerror(errno));
    n = snprintf(buf, cap, "%s", real);
    free(real);
    if (n < 0 || (size_t)n >= cap)
        return in->host->error(in->host, ARCA_EFAIL, "the location of '%s' needs %d bytes, %zu given", in->path,
                               n + 1, cap);
    return 0;
}

/* Temporaries of puts named `prefix`... that were last written before
 * older_than: reported under the name their put had, then removed. */
static int nfsl_cleanup(void *impl, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud)
{
    nfsl_inst *in = impl;
    char name[256];
    struct dirent *de;
    DIR *d;
    int rc = 0, fd;
    if ((fd = openat(in->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || !(d = fdopendir(fd))) {
        rc = in->host->error(in->host, ARCA_EFAIL, "cannot list '%s': %s", in->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    while (!rc && (de = readdir(d))) {
        struct stat st;
        if (!nfsp_temp_owner(de->d_name, prefix, name, sizeof name) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            (int64_t)st.st_mtime > older_than)
            continue;
        arca_object_stat os = {.name = name, .size = (uint64_t)st.st_size, .mtime_sec = (int64_t)st.st_mtime};
        if (cb && cb(ud, &os) < 0)
            rc = ARCA_ECANCELED;
        else if (!dry_run && unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
            rc = nfsl_fail(in, NULL, errno, "cannot remove", de->d_name);
    }
    closedir(d);
    return rc;
}

static const arca_destination_ops nfsl_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = nfsl_put_open,
    .put_write = nfsl_put_write,
    .put_commit = nfsl_put_commit,
    .put_abort = nfsl_put_abort,
    .get_open = nfsl_get_open,
    .get_read = nfsl_get_read,
    .get_close = nfsl_get_close,
    .list = nfsl_list,
    .remove = nfsl_remove,
    .location = nfsl_location,
    .cleanup = nfsl_cleanup,
};

const nfs_backend nfsl_backend = {
    .key = "path",
    .create = nfsl_create,
    .destroy = nfsl_destroy,
    .ops = &nfsl_ops,
};
