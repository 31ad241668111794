/* dirstore: the example destination plugin a storage vendor would write. Each
 * object is one file in the directory `root`; an upload goes to a hidden
 * temporary that is renamed into place on commit, so a reader never sees half
 * an object. Built out of tree against the installed <arca/plugin.h> only.
 * ABI 1.1: failures of a put or get are reported on that handle when the host
 * offers handle_error (with a fallback for 1.0 hosts), and `location` says
 * where the objects go. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: mkstemp, pread, fsync, fstatat, dirfd */

#include <arca/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_VERSION "1.1.0"
/* Temporaries start with '.', object names may not: the two never collide and
 * list() can skip every temporary, even one a crash left behind. */
#define DS_TMP_PREFIX ".dirstore-tmp."

/* The option struct: the core fills it from [destination NAME] using the
 * offsets below. Its strings belong to the core and stay valid until destroy. */
typedef struct ds_config {
    const char *root;
    uint64_t fail_after_bytes;
} ds_config;

static const arca_option ds_options[] = {
    {"root", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(ds_config, root), NULL, NULL, 0, 0,
     "existing directory that holds the objects, one file each"},
    {"fail_after_bytes", ARCA_OPT_SIZE, 0, offsetof(ds_config, fail_after_bytes), "0", NULL, 0, 0,
     "testing aid: every upload fails once it has written this many bytes (0 = never)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

/* One configured destination. Immutable after create, so any number of puts,
 * gets and lists may run at once without a lock. */
typedef struct ds_inst {
    const arca_host *host;
    const ds_config *cfg;
} ds_inst;

typedef struct ds_put {
    ds_inst *in;
    int fd;
    uint64_t written;
    char tmp[PATH_MAX];  /* root/.dirstore-tmp.NAME.XXXXXX */
    char path[PATH_MAX]; /* root/NAME */
} ds_put;

typedef struct ds_get {
    ds_inst *in;
    int fd;
    uint64_t pos, end;
    char path[PATH_MAX];
} ds_get;

/* Report why an operation on `handle` (a put or get; NULL for none) failed,
 * and return `code`. A 1.1 host shows the message with the failing call on
 * that handle, so concurrent puts never show each other's messages; a 1.0
 * host has no handle_error (ARCA_HAS says so by its size), and then the
 * instance's error is the place. */
static int ds_report(const ds_inst *in, const void *handle, int code, const char *fmt, ...)
{
    const arca_host *h = in->host;
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (handle && ARCA_HAS(arca_host, h, handle_error) && h->handle_error)
        return h->handle_error(h, handle, code, "%s", msg);
    return h->error(h, code, "%s", msg);
}

/* Report a failed system call on `path`; a missing file is ARCA_ENOENT. */
static int ds_fail(const ds_inst *in, const void *handle, int err, const char *what, const char *path)
{
    return ds_report(in, handle, err == ENOENT ? ARCA_ENOENT : ARCA_EFAIL, "%s '%s': %s", what, path,
                     strerror(err));
}

/* Object names are flat: a '/' could leave `root`, a leading '.' could hit a
 * temporary, a control byte has no business in a file name. Anything else the
 * core may use (it names objects <pipeline>.<id>.arca from [A-Za-z0-9._-]) is
 * accepted. A refused name is ARCA_ECONFIG: the user must change it. Writes
 * root/NAME into out. */
static int ds_path(const ds_inst *in, const char *name, char *out, size_t cap)
{
    const char *why = NULL;
    if (!name || !*name)
        why = "it is empty";
    else if (name[0] == '.')
        why = "it starts with '.'";
    else if (strchr(name, '/'))
        why = "it contains '/'";
    else if (strlen(name) > 1024)
        why = "it is longer than 1024 bytes";
    for (const char *c = name; !why && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            why = "it contains a control byte";
    if (why)
        return in->host->error(in->host, ARCA_ECONFIG, "object name '%.80s' refused: %s", name ? name : "", why);
    if ((size_t)snprintf(out, cap, "%s/%s", in->cfg->root, name) >= cap)
        return in->host->error(in->host, ARCA_ECONFIG, "'%s/%s': %s", in->cfg->root, name, strerror(ENAMETOOLONG));
    return ARCA_OK;
}

/* Make a rename or unlink in `root` durable. Some filesystems refuse to fsync
 * a directory (EINVAL); there the rename is as durable as they make it. */
static int ds_sync_root(const ds_inst *in, const void *handle)
{
    int fd = open(in->cfg->root, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return ds_fail(in, handle, errno, "cannot open directory", in->cfg->root);
    int rc = fsync(fd) == 0 || errno == EINVAL ? ARCA_OK
                                               : ds_fail(in, handle, errno, "cannot fsync directory", in->cfg->root);
    close(fd);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Validation only: `root` must be an existing directory now, not at the first
 * backup hours later. */
static int ds_create(const arca_host *host, const void *config, void **out)
{
    const ds_config *cfg = config;
    struct stat st;
    ds_inst *in;

    *out = NULL;
    if (!cfg->root || !*cfg->root)
        return host->error(host, ARCA_ECONFIG, "root is empty: give an existing directory");
    if (stat(cfg->root, &st) != 0)
        return host->error(host, ARCA_ECONFIG, "root '%s': %s (create the directory first)", cfg->root,
                           strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return host->error(host, ARCA_ECONFIG, "root '%s': %s", cfg->root, strerror(ENOTDIR));
    if (!(in = calloc(1, sizeof *in)))
        return host->error(host, ARCA_ENOMEM, "out of memory");
    in->host = host;
    in->cfg = cfg;
    if (cfg->fail_after_bytes)
        host->log(host, ARCA_LOG_WARN, "fail_after_bytes = %llu: every upload to '%s' will fail (testing aid)",
                  (unsigned long long)cfg->fail_after_bytes, cfg->root);
    *out = in;
    return ARCA_OK;
}

static void ds_destroy(void *inst)
{
    free(inst);
}

/* ---- put: temporary file, renamed on commit ------------------------------- */

static int ds_put_open(void *inst, const char *name, void **out)
{
    ds_inst *in = inst;
    ds_put *p;
    int rc;

    *out = NULL;
    if (!(p = calloc(1, sizeof *p)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    p->in = in;
    if ((rc = ds_path(in, name, p->path, sizeof p->path))) {
        free(p);
        return rc;
    }
    if ((size_t)snprintf(p->tmp, sizeof p->tmp, "%s/" DS_TMP_PREFIX "%s.XXXXXX", in->cfg->root, name) >= sizeof p->tmp) {
        rc = in->host->error(in->host, ARCA_ECONFIG, "'%s': %s", p->path, strerror(ENAMETOOLONG));
        free(p);
        return rc;
    }
    /* mkstemp: a unique name per upload, so concurrent puts of one name and
     * leftovers of a crashed run never collide. */
    if ((p->fd = mkstemp(p->tmp)) < 0) {
        int e = errno;
        free(p);
        rc = ds_fail(in, NULL, e, "cannot create temporary in", in->cfg->root);
        return rc == ARCA_ENOENT ? ARCA_EFAIL : rc; /* ENOENT is for missing objects only */
    }
    fcntl(p->fd, F_SETFD, FD_CLOEXEC);
    *out = p;
    return ARCA_OK;
}

static int ds_put_write(void *put, const void *buf, size_t len)
{
    ds_put *p = put;
    const ds_inst *in = p->in;
    const uint64_t limit = in->cfg->fail_after_bytes;
    const char *b = buf;
    int inject = 0;

    /* The injected failure writes up to the limit first, so the temporary
     * really holds data when abort has to remove it. */
    if (limit && p->written + len > limit) {
        len = (size_t)(limit - p->written);
        inject = 1;
    }
    while (len) {
        ssize_t n = write(p->fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ds_fail(in, p, n < 0 ? errno : ENOSPC, "cannot write", p->tmp);
        b += n;
        len -= (size_t)n;
        p->written += (uint64_t)n;
    }
    if (inject)
        return ds_report(in, p, ARCA_EFAIL, "cannot write '%s': %s (fail_after_bytes = %llu reached)", p->tmp,
                         strerror(EIO), (unsigned long long)limit);
    return ARCA_OK;
}

static void ds_put_free(ds_put *p, int unlink_tmp)
{
    if (p->fd >= 0)
        close(p->fd);
    if (unlink_tmp)
        unlink(p->tmp);
    free(p);
}

/* fsync, close, rename, fsync the directory. Any failure leaves nothing
 * behind: not the temporary, and not the object if the rename happened but
 * could not be made durable. Frees `p` in every case. */
static int ds_put_commit(void *put)
{
    ds_put *p = put;
    const ds_inst *in = p->in;
    int fd = p->fd, rc;

    p->fd = -1;
    /* The handle is freed below whatever happens, but the message is reported
     * first, while the host can still tell which put it belongs to. */
    if (fsync(fd) != 0) {
        rc = ds_fail(in, p, errno, "cannot fsync", p->tmp);
        close(fd);
        ds_put_free(p, 1);
        return rc;
    }
    if (close(fd) != 0) {
        rc = ds_fail(in, p, errno, "cannot close", p->tmp);
        ds_put_free(p, 1);
        return rc;
    }
    if (rename(p->tmp, p->path) != 0) {
        rc = ds_report(in, p, ARCA_EFAIL, "cannot rename '%s' to '%s': %s", p->tmp, p->path, strerror(errno));
        ds_put_free(p, 1);
        return rc;
    }
    if ((rc = ds_sync_root(in, p)) != ARCA_OK) {
        unlink(p->path);
        rc = rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
    }
    ds_put_free(p, 0);
    return rc;
}

static void ds_put_abort(void *put)
{
    if (put)
        ds_put_free(put, 1);
}

/* ---- get: a byte range of one object -------------------------------------- */

static int ds_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **out)
{
    ds_inst *in = inst;
    struct stat st;
    ds_get *g;
    int rc;

    *out = NULL;
    if (!(g = calloc(1, sizeof *g)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    g->in = in;
    if ((rc = ds_path(in, name, g->path, sizeof g->path))) {
        free(g);
        return rc;
    }
    if ((g->fd = open(g->path, O_RDONLY)) < 0) {
        rc = ds_fail(in, NULL, errno, "cannot open", g->path);
        free(g);
        return rc;
    }
    if (fstat(g->fd, &st) != 0)
        rc = ds_fail(in, NULL, errno, "cannot stat", g->path);
    else if (!S_ISREG(st.st_mode))
        rc = ds_fail(in, NULL, EISDIR, "cannot read", g->path);
    /* A range past the end means the object is shorter than the caller knows
     * it to be: truncated, an integrity problem rather than an I/O error. */
    else if (offset > (uint64_t)st.st_size || (length && length > (uint64_t)st.st_size - offset))
        rc = in->host->error(in->host, ARCA_EINTEGRITY, "'%s' is %llu bytes: the range %llu+%llu lies past its end",
                             g->path, (unsigned long long)st.st_size, (unsigned long long)offset,
                             (unsigned long long)length);
    if (rc != ARCA_OK) {
        close(g->fd);
        free(g);
        return rc;
    }
    g->pos = offset;
    g->end = length ? offset + length : (uint64_t)st.st_size;
    *out = g;
    return ARCA_OK;
}

static int ds_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    ds_get *g = get;
    uint64_t want = g->end - g->pos;
    ssize_t n;

    *got = 0;
    if (want > cap)
        want = cap;
    if (want == 0)
        return ARCA_OK;
    do
        n = pread(g->fd, buf, (size_t)want, (off_t)g->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return ds_fail(g->in, g, errno, "cannot read", g->path);
    if (n == 0)
        return ds_report(g->in, g, ARCA_EINTEGRITY, "'%s' ended at byte %llu, before byte %llu: truncated", g->path,
                         (unsigned long long)g->pos, (unsigned long long)g->end);
    g->pos += (uint64_t)n;
    *got = (size_t)n;
    return ARCA_OK;
}

static void ds_get_close(void *get)
{
    ds_get *g = get;
    if (!g)
        return;
    close(g->fd);
    free(g);
}

/* ---- list and remove ----------------------------------------------------- */

static int ds_list(void *inst, const char *prefix, arca_list_cb cb, void *ud)
{
    ds_inst *in = inst;
    size_t plen = prefix ? strlen(prefix) : 0;
    struct dirent *de;
    int rc = ARCA_OK;
    DIR *d;

    if (!(d = opendir(in->cfg->root)))
        return ds_fail(in, NULL, errno, "cannot list", in->cfg->root);
    for (;;) {
        struct stat st;
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                rc = ds_fail(in, NULL, errno, "cannot list", in->cfg->root);
            break;
        }
        /* '.', '..' and every temporary start with '.': none is an object */
        if (de->d_name[0] == '.' || (plen && strncmp(de->d_name, prefix, plen)))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) /* removed while we listed */
                continue;
            rc = ds_fail(in, NULL, errno, "cannot stat object in", in->cfg->root);
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        arca_object_stat os = {.name = de->d_name, .size = (uint64_t)st.st_size, .mtime_sec = (int64_t)st.st_mtime};
        int r = cb(ud, &os);
        if (r) { /* the caller asked to stop; a negative value is its error */
            rc = r < 0 ? r : ARCA_OK;
            break;
        }
    }
    closedir(d);
    return rc;
}

static int ds_remove(void *inst, const char *name)
{
    ds_inst *in = inst;
    char path[PATH_MAX];
    int rc;

    if ((rc = ds_path(in, name, path, sizeof path)))
        return rc;
    if (unlink(path) != 0)
        return ds_fail(in, NULL, errno, "cannot remove", path);
    return ds_sync_root(in, NULL);
}

/* ---- location (ABI 1.1, optional) ----------------------------------------- */

/* The directory as the system resolves it (symlinks, "..", extra slashes
 * gone), so that two spellings of one directory are one place. */
static int ds_location(void *inst, char *buf, size_t cap)
{
    ds_inst *in = inst;
    char real[PATH_MAX];

    if (!realpath(in->cfg->root, real))
        return in->host->error(in->host, ARCA_EFAIL, "cannot resolve '%s': %s", in->cfg->root, strerror(errno));
    if ((size_t)snprintf(buf, cap, "%s", real) >= cap)
        return in->host->error(in->host, ARCA_EFAIL, "the location '%s' does not fit in %zu bytes", real, cap);
    return ARCA_OK;
}

/* ---- the descriptor ------------------------------------------------------ */

static const arca_destination_ops ds_destination_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = ds_put_open,
    .put_write = ds_put_write,
    .put_commit = ds_put_commit,
    .put_abort = ds_put_abort,
    .get_open = ds_get_open,
    .get_read = ds_get_read,
    .get_close = ds_get_close,
    .list = ds_list,
    .remove = ds_remove,
    /* ABI 1.1, optional: NULL says "not offered" (the core checks with ARCA_HAS) */
    .remove_many = NULL,
    .location = ds_location,
    .cleanup = NULL,
};

static const arca_plugin ds_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_DESTINATION,
    .name = "dirstore",
    .version = DS_VERSION,
    .description = "example vendor destination: one file per object in a directory",
    .options = ds_options,
    .config_size = sizeof(ds_config),
    .create = ds_create,
    .destroy = ds_destroy,
    .destination = &ds_destination_ops,
};

ARCA_PLUGIN_DEFINE(ds_plugin)
