/* files plugin: restore. Writes the feed below `path` and nowhere else: every name
 * is resolved from the target's fd without following links, symlinks come last.
 * A file is written under a temporary name in its directory and renamed into
 * place once complete, so an interrupted restore never leaves a short file
 * under a real name. */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Chunks of different files interleave; keeping a few fds open saves a path
 * walk per chunk without letting a wide interleave exhaust descriptors. */
#define FS_MAX_OPEN 16

/* Mode, mtime and owner to apply once an object's content is complete. */
typedef struct fs_attrs {
    uint32_t mode;
    int64_t sec;
    int32_t nsec;
    long long uid, gid; /* -1: not recorded */
} fs_attrs;

/* A DATA object whose chunks are still arriving. */
typedef struct fs_pending {
    char *name;
    char tmp[32]; /* its temporary name in the same directory, until renamed */
    int fd; /* -1 while closed to stay under FS_MAX_OPEN */
    uint32_t next, chunks;
    uint64_t size, written, used;
    dev_t dev;
    ino_t ino;
    fs_attrs at;
} fs_pending;

/* A directory or symlink, finished after all data. */
typedef struct fs_later {
    char *name;
    char *target; /* symlinks only */
    fs_attrs at;
} fs_later;

typedef struct fs_laters {
    fs_later *v;
    size_t n, cap;
    int sorted;
} fs_laters;

typedef struct fs_restore {
    const arca_host *h;
    arca_feed *feed;
    const char *target;
    int root;
    int force, owner;
    fs_pending *pend;
    size_t npend, cappend, nopen;
    uint64_t tick, done;
    fs_laters dirs, links;
    size_t owner_failures;
    /* the directory of the last file, kept open: files mostly come directory by directory */
    char *pdir;
    size_t pdir_len;
    int pdir_fd;
} fs_restore;

static int fs_refuse(fs_restore *r, const char *name, const char *why)
{
    return r->h->error(r->h, ARCA_EINTEGRITY, "refusing archive entry '%s': %s", name ? name : "",
                       why);
}

static int fs_fail(fs_restore *r, const char *name, int err)
{
    if (err == ELOOP || err == ENOTDIR)
        return r->h->error(r->h, ARCA_EFAIL,
                           "cannot restore '%s' into %s: a path component is a symlink or not a "
                           "directory (%s)", name, r->target, strerror(err));
    return r->h->error(r->h, ARCA_EFAIL, "cannot restore '%s' into %s: %s", name, r->target,
                       strerror(err));
}

/* The directory holding `name`'s last component, opened without following
 * links (fs_open_parent) and cached for the next name in the same directory.
 * The fd is borrowed: callers do not close it. */
static int fs_parent(fs_restore *r, const char *name, int create, const char **leaf)
{
    const char *slash = strrchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : 0;
    if (r->pdir_fd >= 0 && len == r->pdir_len && (!len || !memcmp(r->pdir, name, len))) {
        *leaf = slash ? slash + 1 : name;
        return r->pdir_fd;
    }
    int fd = fs_open_parent(r->root, name, create, leaf);
    if (fd < 0)
        return fd;
    char *copy = len ? strndup(name, len) : NULL;
    if (len && !copy) {
        close(fd);
        return -ENOMEM;
    }
    if (r->pdir_fd >= 0)
        close(r->pdir_fd);
    free(r->pdir);
    r->pdir = copy;
    r->pdir_len = len;
    r->pdir_fd = fd;
    return fd;
}

static int fs_later_cmp(const void *a, const void *b)
{
    return strcmp(((const fs_later *)a)->name, ((const fs_later *)b)->name);
}

static int fs_later_add(fs_restore *r, fs_laters *l, const char *name, const char *target,
                        const fs_attrs *at)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        fs_later *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return r->h->error(r->h, ARCA_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    fs_later *x = &l->v[l->n];
    x->name = strdup(name);
    x->target = target ? strdup(target) : NULL;
    x->at = *at;
    if (!x->name || (target && !x->target)) {
        free(x->name);
        free(x->target);
        return r->h->error(r->h, ARCA_ENOMEM, "out of memory");
    }
    l->n++;
    l->sorted = 0;
    return ARCA_OK;
}

static void fs_laters_sort(fs_laters *l)
{
    if (!l->sorted && l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, fs_later_cmp);
    l->sorted = 1;
}

static void fs_laters_free(fs_laters *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].target);
    }
    free(l->v);
}

/* 1 when a proper prefix of `name` is a symlink of the archive: writing there
 * would go wherever that link points once it exists. */
static int fs_below_link(fs_restore *r, const char *name)
{
    fs_laters *l = &r->links;
    if (!l->n || !strchr(name, '/'))
        return 0;
    fs_laters_sort(l);
    char *copy = strdup(name);
    if (!copy)
        return 1; /* refusing is the safe answer */
    int hit = 0;
    for (char *s = strchr(copy, '/'); s && !hit; s = strchr(s + 1, '/')) {
        *s = '\0';
        fs_later key = {.name = copy};
        hit = bsearch(&key, l->v, l->n, sizeof *l->v, fs_later_cmp) != NULL;
        *s = '/';
    }
    free(copy);
    return hit;
}

static long long fs_meta_id(fs_restore *r, const char *key)
{
    const char *v = r->h->feed_meta ? r->h->feed_meta(r->feed, key) : NULL;
    if (!v || !*v)
        return -1;
    char *end;
    errno = 0;
    long long id = strtoll(v, &end, 10);
    return errno || *end || id < 0 || id >= 0xffffffffLL ? -1 : id;
}

static void fs_entry_attrs(fs_restore *r, const arca_entry *e, fs_attrs *at)
{
    at->mode = e->info.mode & 07777;
    at->sec = e->info.mtime_sec;
    at->nsec = e->info.mtime_nsec;
    at->uid = r->owner ? fs_meta_id(r, "uid") : -1;
    at->gid = r->owner ? fs_meta_id(r, "gid") : -1;
}

static void fs_owner_failed(fs_restore *r, const char *name, int err)
{
    if (r->owner_failures++ == 0)
        r->h->log(r->h, ARCA_LOG_WARN, "cannot restore the owner of '%s': %s", name, strerror(err));
}

/* Owner first: chown clears set-id bits, so the mode must come after it. */
static int fs_apply_fd(fs_restore *r, int fd, const char *name, const fs_attrs *at)
{
    if (at->uid >= 0 && at->gid >= 0 && fchown(fd, (uid_t)at->uid, (gid_t)at->gid) < 0)
        fs_owner_failed(r, name, errno);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = at->sec, .tv_nsec = at->nsec}};
    if (fchmod(fd, (mode_t)at->mode) < 0 || futimens(fd, ts) < 0)
        return fs_fail(r, name, errno);
    return ARCA_OK;
}

/* ---- target --------------------------------------------------------------- */

static int fs_mkdir_p(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int rc = mkdir(path, 0700);
        *s = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int fs_open_target(fs_restore *r)
{
    const arca_host *h = r->h;
    char *copy = strdup(r->target);
    if (!copy)
        return h->error(h, ARCA_ENOMEM, "out of memory");
    int rc = fs_mkdir_p(copy);
    free(copy);
    if (rc < 0)
        return h->error(h, ARCA_EFAIL, "cannot create restore target %s: %s", r->target,
                        strerror(errno));
    r->root = open(r->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->root < 0)
        return h->error(h, ARCA_EFAIL, "cannot open restore target %s: %s", r->target,
                        strerror(errno));
    if (r->force)
        return ARCA_OK;
    int fd = fcntl(r->root, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return h->error(h, ARCA_EFAIL, "cannot read restore target %s: %s", r->target,
                        strerror(err));
    }
    int empty = 1;
    struct dirent *de;
    while (empty && (de = readdir(d)))
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    if (!empty)
        return h->error(h, ARCA_EEXIST,
                        "restore target %s is not empty\n"
                        "hint: restore into an empty directory, or pass --force to overwrite files in it",
                        r->target);
    return ARCA_OK;
}

/* ---- directories and symlinks --------------------------------------------- */

static int fs_restore_dir(fs_restore *r, const arca_entry *e)
{
    const char *name = e->info.name, *leaf;
    if (fs_below_link(r, name))
        return fs_refuse(r, name, "it lies below a symlink of the archive");
    int parent = fs_open_parent(r->root, name, 1, &leaf);
    if (parent < 0)
        return fs_fail(r, name, -parent);
    int err = 0;
    /* 0700 until the end: content still has to go in, whatever the final mode. */
    if (mkdirat(parent, leaf, 0700) < 0) {
        struct stat st;
        err = errno;
        if (err == EEXIST && fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode))
                err = 0;
            else if (r->force)
                err = unlinkat(parent, leaf, 0) == 0 && mkdirat(parent, leaf, 0700) == 0 ? 0 : errno;
        }
    }
    close(parent);
    if (err)
        return fs_fail(r, name, err);
    fs_attrs at;
    fs_entry_attrs(r, e, &at);
    return fs_later_add(r, &r->dirs, name, NULL, &at);
}

static int fs_restore_link(fs_restore *r, const arca_entry *e)
{
    if (!e->info.link_target || !*e->info.link_target)
        return fs_refuse(r, e->info.name, "symlink without a target");
    fs_attrs at;
    fs_entry_attrs(r, e, &at);
    return fs_later_add(r, &r->links, e->info.name, e->info.link_target, &at);
}

static int fs_make_link(fs_restore *r, const fs_later *l)
{
    const char *leaf;
    int parent = fs_open_parent(r->root, l->name, 1, &leaf);
    if (parent < 0)
        return fs_fail(r, l->name, -parent);
    int err = 0;
    if (symlinkat(l->target, parent, leaf) < 0) {
        struct stat st;
        err = errno;
        if (err == EEXIST && r->force && fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISDIR(st.st_mode))
            err = unlinkat(parent, leaf, 0) == 0 && symlinkat(l->target, parent, leaf) == 0 ? 0
                                                                                           : errno;
    }
    if (!err) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = l->at.sec, .tv_nsec = l->at.nsec}};
        if (l->at.uid >= 0 && l->at.gid >= 0 &&
            fchownat(parent, leaf, (uid_t)l->at.uid, (gid_t)l->at.gid, AT_SYMLINK_NOFOLLOW) < 0)
            fs_owner_failed(r, l->name, errno);
        if (utimensat(parent, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
            err = errno;
    }
    close(parent);
    return err ? fs_fail(r, l->name, err) : ARCA_OK;
}

/* Last of all: nothing written afterwards can pass through these links. */
static int fs_make_links(fs_restore *r)
{
    fs_laters *l = &r->links;
    fs_laters_sort(l);
    for (size_t i = 0; i < l->n; i++) {
        if (fs_below_link(r, l->v[i].name))
            return fs_refuse(r, l->v[i].name, "it lies below a symlink of the archive");
        int rc = fs_make_link(r, &l->v[i]);
        if (rc < 0)
            return rc;
    }
    return ARCA_OK;
}

/* Deepest first (a descendant sorts after its ancestor), so restoring a
 * directory's mtime or a read-only mode never precedes writes inside it. */
static int fs_fix_dirs(fs_restore *r)
{
    fs_laters *l = &r->dirs;
    fs_laters_sort(l);
    for (size_t i = l->n; i-- > 0;) {
        const fs_later *d = &l->v[i];
        const char *leaf;
        int parent = fs_open_parent(r->root, d->name, 0, &leaf);
        if (parent < 0)
            return fs_fail(r, d->name, -parent);
        int fd = openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(parent);
        if (fd < 0)
            return fs_fail(r, d->name, err);
        int rc = fs_apply_fd(r, fd, d->name, &d->at);
        close(fd);
        if (rc < 0)
            return rc;
    }
    return ARCA_OK;
}

/* ---- data ------------------------------------------------------------------ */

static fs_pending *fs_find_pending(fs_restore *r, const char *name)
{
    for (size_t i = 0; i < r->npend; i++)
        if (!strcmp(r->pend[i].name, name))
            return &r->pend[i];
    return NULL;
}

static void fs_drop_pending(fs_restore *r, fs_pending *p)
{
    if (p->fd >= 0) {
        close(p->fd);
        r->nopen--;
    }
    free(p->name);
    *p = r->pend[--r->npend];
}

static void fs_make_room(fs_restore *r)
{
    if (r->nopen < FS_MAX_OPEN)
        return;
    fs_pending *lru = NULL;
    for (size_t i = 0; i < r->npend; i++)
        if (r->pend[i].fd >= 0 && (!lru || r->pend[i].used < lru->used))
            lru = &r->pend[i];
    if (lru) {
        close(lru->fd);
        lru->fd = -1;
        r->nopen--;
    }
}

/* A fresh file under a new temporary name in `parent`: 0600 and O_EXCL, an
 * inode nobody else can open until its mode is final. */
static int fs_create_tmp(int parent, char tmp[32])
{
    for (int tries = 0; tries < 16; tries++) {
        unsigned char r[8];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return -EIO;
        snprintf(tmp, 32, ".arca-tmp.%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        int fd = openat(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

static int fs_create_file(fs_restore *r, const arca_entry *e, fs_pending *p, struct stat *st)
{
    const char *name = e->info.name, *leaf;
    int parent = fs_parent(r, name, 1, &leaf);
    if (parent < 0)
        return fs_fail(r, name, -parent);
    struct stat old;
    int err = 0;
    /* with --force a directory in the way is an error; without, the rename into
     * place refuses whatever is there */
    if (r->force && fstatat(parent, leaf, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(old.st_mode))
        err = EISDIR;
    int fd = err ? -err : fs_create_tmp(parent, p->tmp);
    if (fd < 0)
        return fs_fail(r, name, -fd);
    if (fstat(fd, st) < 0) {
        err = errno;
        close(fd);
        return fs_fail(r, name, err);
    }
    p->fd = fd;
    return ARCA_OK;
}

static int fs_start_file(fs_restore *r, const arca_entry *e, fs_pending **out)
{
    const char *name = e->info.name;
    if (e->chunk != 0)
        return fs_refuse(r, name, "a chunk arrived before the object's first chunk");
    if (fs_below_link(r, name))
        return fs_refuse(r, name, "it lies below a symlink of the archive");
    if (r->npend == r->cappend) {
        size_t cap = r->cappend ? r->cappend * 2 : 16;
        fs_pending *v = realloc(r->pend, cap * sizeof *v);
        if (!v)
            return r->h->error(r->h, ARCA_ENOMEM, "out of memory");
        r->pend = v;
        r->cappend = cap;
    }
    fs_make_room(r);
    fs_pending p = {.chunks = e->chunks, .size = e->object_size, .fd = -1};
    if (!(p.name = strdup(name)))
        return r->h->error(r->h, ARCA_ENOMEM, "out of memory");
    struct stat st;
    int rc = fs_create_file(r, e, &p, &st);
    if (rc < 0) {
        free(p.name);
        return rc;
    }
    p.dev = st.st_dev;
    p.ino = st.st_ino;
    fs_entry_attrs(r, e, &p.at);
    r->nopen++;
    r->pend[r->npend] = p;
    *out = &r->pend[r->npend++];
    return ARCA_OK;
}

/* Reopens a file closed by fs_make_room, checking it is still the inode we made. */
static int fs_reopen(fs_restore *r, fs_pending *p)
{
    fs_make_room(r);
    const char *leaf;
    int parent = fs_parent(r, p->name, 0, &leaf);
    if (parent < 0)
        return fs_fail(r, p->name, -parent);
    (void)leaf;
    int fd = openat(parent, p->tmp, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    if (fd < 0)
        return fs_fail(r, p->name, err);
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino ||
        (uint64_t)st.st_size != p->written) {
        close(fd);
        return r->h->error(r->h, ARCA_EFAIL, "cannot restore '%s' into %s: the file was changed by "
                           "someone else during the restore", p->name, r->target);
    }
    p->fd = fd;
    r->nopen++;
    return ARCA_OK;
}

/* The complete file takes its real name: atomically, and without --force
 * never over something that appeared there meanwhile. */
static int fs_rename_into_place(fs_restore *r, fs_pending *p)
{
    const char *leaf;
    int parent = fs_parent(r, p->name, 0, &leaf);
    if (parent < 0)
        return fs_fail(r, p->name, -parent);
    struct stat st;
    int err = 0;
    if (fstatat(parent, p->tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != p->dev || st.st_ino != p->ino)
        err = ESTALE; /* someone replaced our temporary file */
    else if (r->force)
        err = fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) ? EISDIR
              : renameat(parent, p->tmp, parent, leaf) < 0 ? errno : 0;
    else
        err = renameat2(parent, p->tmp, parent, leaf, RENAME_NOREPLACE) < 0 ? errno : 0;
    if (err == ESTALE)
        return r->h->error(r->h, ARCA_EFAIL, "cannot restore '%s' into %s: its temporary file was changed by "
                           "someone else during the restore", p->name, r->target);
    if (err)
        return fs_fail(r, p->name, err);
    p->tmp[0] = 0;
    return ARCA_OK;
}

static int fs_finish_file(fs_restore *r, fs_pending *p)
{
    int rc = ARCA_OK;
    if (p->written != p->size)
        rc = fs_refuse(r, p->name, "its chunks do not add up to the object's size");
    else if (p->fd < 0)
        rc = fs_reopen(r, p);
    if (rc == ARCA_OK)
        rc = fs_apply_fd(r, p->fd, p->name, &p->at);
    if (rc < 0)
        return rc;
    /* close() is where NFS and friends report deferred write errors. */
    int fd = p->fd;
    p->fd = -1;
    r->nopen--;
    if (close(fd) < 0)
        return fs_fail(r, p->name, errno);
    if ((rc = fs_rename_into_place(r, p)) < 0)
        return rc;
    fs_drop_pending(r, p);
    return ARCA_OK;
}

static int fs_restore_data(fs_restore *r, const arca_entry *e)
{
    fs_pending *p = fs_find_pending(r, e->info.name);
    int rc;
    if (!p) {
        if ((rc = fs_start_file(r, e, &p)) < 0)
            return rc;
    } else if (e->chunk != p->next || e->chunks != p->chunks || e->object_size != p->size) {
        return fs_refuse(r, e->info.name, "its chunks arrived out of order or disagree on the size");
    } else if (p->fd < 0 && (rc = fs_reopen(r, p)) < 0) {
        return rc;
    }
    if (e->len > p->size - p->written)
        return fs_refuse(r, p->name, "its chunks exceed the object's size");
    if (e->len && (rc = fs_write_all(p->fd, e->data, e->len)) < 0)
        return fs_fail(r, p->name, -rc);
    p->written += e->len;
    p->used = ++r->tick;
    p->next++;
    r->done += e->len;
    if (r->h->progress)
        r->h->progress(r->h, r->done, 0);
    /* chunks == 0 "cannot happen", but it can only mean an empty file. */
    return p->next >= p->chunks ? fs_finish_file(r, p) : ARCA_OK;
}

/* ---- the feed loop ---------------------------------------------------------- */

static int fs_restore_entry(fs_restore *r, const arca_entry *e)
{
    if (!fs_name_ok(e->info.name))
        return fs_refuse(r, e->info.name, "not a relative name without '.' or '..' components");
    switch (e->info.kind) {
    case ARCA_OBJ_DIR:
        return fs_restore_dir(r, e);
    case ARCA_OBJ_SYMLINK:
        return fs_restore_link(r, e);
    case ARCA_OBJ_DATA:
        return fs_restore_data(r, e);
    default:
        return fs_refuse(r, e->info.name, "unknown object kind");
    }
}

/* A failed restore leaves no half-written file that looks like a good one. */
static void fs_remove_partial(fs_restore *r)
{
    while (r->npend > 0) {
        fs_pending *p = &r->pend[r->npend - 1];
        const char *leaf;
        int parent = p->tmp[0] ? fs_open_parent(r->root, p->name, 0, &leaf) : -1;
        struct stat st;
        if (parent >= 0) {
            if (fstatat(parent, p->tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == p->dev &&
                st.st_ino == p->ino)
                unlinkat(parent, p->tmp, 0);
            close(parent);
        }
        fs_drop_pending(r, p);
    }
}

int files_restore(void *inst, arca_feed *feed, const void *ropts)
{
    files_inst *fi = inst;
    const files_restore_opts *ro = ropts;
    fs_restore r = {
        .h = fi->host,
        .feed = feed,
        .target = fi->cfg->path,
        .root = -1,
        .pdir_fd = -1,
        .force = ro && ro->force,
        .owner = geteuid() == 0 && !(ro && ro->no_owner),
    };
    const arca_host *h = r.h;
    int rc = fs_open_target(&r);
    while (rc == ARCA_OK) {
        if (h->cancelled && h->cancelled(h)) {
            rc = h->error(h, ARCA_ECANCELED, "restore cancelled");
            break;
        }
        arca_entry e;
        memset(&e, 0, sizeof e);
        int more = h->feed_next(feed, &e);
        if (more <= 0) {
            rc = more;
            break;
        }
        rc = fs_restore_entry(&r, &e);
    }
    if (rc == ARCA_OK && r.npend > 0)
        rc = fs_refuse(&r, r.pend[0].name, "the archive ended before its last chunk");
    if (rc == ARCA_OK)
        rc = fs_make_links(&r);
    if (rc == ARCA_OK)
        rc = fs_fix_dirs(&r);
    if (rc == ARCA_OK && syncfs(r.root) < 0)
        rc = h->error(h, ARCA_EFAIL, "cannot flush %s to disk: %s", r.target, strerror(errno));
    if (r.owner_failures > 1)
        h->log(h, ARCA_LOG_WARN, "could not restore the owner of %zu objects", r.owner_failures);
    if (rc < 0 && r.root >= 0)
        fs_remove_partial(&r);
    while (r.npend > 0)
        fs_drop_pending(&r, &r.pend[r.npend - 1]);
    free(r.pend);
    fs_laters_free(&r.dirs);
    fs_laters_free(&r.links);
    if (r.pdir_fd >= 0)
        close(r.pdir_fd);
    free(r.pdir);
    if (r.root >= 0)
        close(r.root);
    return rc;
}
