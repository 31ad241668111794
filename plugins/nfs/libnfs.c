/* nfs plugin, `url` backend: NFSv3 straight to the server through libnfs's
 * synchronous API, no kernel mount. Same crash-safe put as the path backend:
 * a hidden temporary, COMMITted (nfs_fsync) and renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h> /* libnfs.h uses struct timeval without including it */
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "nfs.h"
#include "pc_error.h"
#include "pc_status.h"

/* libnfs 5 (LIBNFS_API_V2) moved buf and count ahead of the offset. */
#ifdef LIBNFS_API_V2
#define NFSN_PREAD(n, fh, off, cnt, buf) nfs_pread(n, fh, buf, cnt, off)
#define NFSN_PWRITE(n, fh, off, cnt, buf) nfs_pwrite(n, fh, buf, cnt, off)
#else
#define NFSN_PREAD(n, fh, off, cnt, buf) nfs_pread(n, fh, off, cnt, buf)
#define NFSN_PWRITE(n, fh, off, cnt, buf) nfs_pwrite(n, fh, off, cnt, buf)
#endif

/* Idle connections kept for reuse; more are closed when released. */
#define NFSN_IDLE_MAX 8

/* Concurrency: a libnfs context is not thread-safe, and its sync calls wait
 * for one reply at a time. One context behind a mutex would serialise every
 * put and get of the destination on one TCP connection. Instead each put, get,
 * list or remove borrows a mounted context from a small pool for its whole
 * lifetime, so concurrent streams run on their own connections in parallel,
 * nfs_get_error() text belongs to the one operation that failed, and a
 * connection broken by a timeout is dropped rather than shared. Creating a
 * connection costs a MOUNT call, paid once per concurrently used stream. */
typedef struct nfsn_conn {
    struct nfs_context *nfs;
    struct nfsn_conn *next;
    size_t wmax, rmax; /* per-call transfer sizes: server maximum, capped at NFS_IO_MAX */
    int broken;        /* a call failed without an answer: never reuse */
} nfsn_conn;

typedef struct nfsn_inst {
    const arca_host *host;
    const char *url; /* as configured (owned by the core) */
    char *base;      /* nfs://server/dir without query, for messages about objects */
    char *server;
    char *dirpath; /* the URL's path: export plus the directory below it */
    nfs_settings set;

    pthread_mutex_t lock; /* guards everything below */
    /* Where the export ends inside dirpath, found by the first mount: servers
     * differ on whether a directory below an export can be mounted. */
    char *export; /* NULL until known */
    char *subdir; /* "" or "/a/b": dirpath relative to the export root */
    nfsn_conn *idle;
    unsigned nidle;
} nfsn_inst;

typedef struct nfsn_put {
    const arca_destination_ops *ops; /* nfs_handle: must stay first */
    nfsn_inst *in;
    nfsn_conn *c;
    struct nfsfh *fh;
    uint64_t off;
    char *path, *tmp; /* absolute paths within the export */
    char name[256], tmpname[256];
} nfsn_put;

typedef struct nfsn_get {
    const arca_destination_ops *ops; /* nfs_handle: must stay first */
    nfsn_inst *in;
    nfsn_conn *c;
    struct nfsfh *fh;
    uint64_t pos, end, size;
    char name[256];
} nfsn_get;

static const arca_destination_ops nfsn_ops;

/* Codes that mean the server answered: the connection is still good. Anything
 * else (timeout, reset, RPC failure) retires it. */
static int nfsn_conn_ok(int rc)
{
    switch (-rc) {
    case 0: case ENOENT: case EEXIST: case EACCES: case EPERM: case ENOTDIR: case EISDIR:
    case ENOSPC: case EDQUOT: case EROFS: case ENOTEMPTY: case EINVAL: case ENAMETOOLONG: case EFBIG:
        return 1;
    default:
        return rc >= 0;
    }
}

/* Records "<what> <base>/<name>: <libnfs error>" on `handle` (the put or get
 * that failed; NULL for the instance's own operations) and returns the arca
 * code of libnfs's negative errno `rc`. */
ARCA_PRINTF(5, 6)
static int nfsn_fail(nfsn_inst *in, const void *handle, nfsn_conn *c, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    const char *why = c ? nfs_get_error(c->nfs) : NULL;

    if (c && !nfsn_conn_ok(rc))
        c->broken = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!why || !*why)
        why = strerror(rc < 0 ? -rc : EIO);
    /* libnfs reports its own timeout as a cancelled call (EINTR). */
    if ((rc == -EINTR || rc == -ETIMEDOUT) && in->set.timeout_ms > 0)
        return pc_handle_error(in->host, handle, ARCA_EFAIL, "%s: %s (no answer within %d s: server down or "
                               "overloaded? see `timeout`)", msg, why, in->set.timeout_ms / 1000);
    return pc_handle_error(in->host, handle, pc_status_of_errno(rc < 0 ? -rc : EIO), "%s: %s", msg, why);
}

static char *nfsn_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s) {
        memcpy(s, a, la);
        s[la] = '/';
        memcpy(s + la + 1, b, lb + 1);
    }
    return s;
}

/* libnfs's URL parser ignores what it does not know; refuse NFSv4 here since
 * libnfs 4.0's v4 client fails writes over ~4 KiB. */
static int nfsn_check_query(const arca_host *h, const char *url)
{
    const char *q = strchr(url, '?');
    while (q && *q) {
        const char *arg = q + 1, *amp = strchr(arg, '&');
        size_t len = amp ? (size_t)(amp - arg) : strlen(arg);
        if (len >= 8 && strncmp(arg, "version=", 8) == 0 && !(len == 9 && arg[8] == '3'))
            return h->error(h, ARCA_ECONFIG,
                            "url '%s': only NFS version 3 is supported (libnfs's NFSv4 client fails large "
                            "writes); drop `version` or set version=3", url);
        q = amp;
    }
    return 0;
}

/* A context set up the way every connection of this instance is: our
 * defaults first, then the URL's own arguments (uid, gid, ports...). NULL when
 * out of memory (the URL itself was checked by create). */
static struct nfs_context *nfsn_context(nfsn_inst *in)
{
    struct nfs_context *nfs = nfs_init_context();
    struct nfs_url *u;

    if (!nfs)
        return NULL;
    nfs_set_timeout(nfs, in->set.timeout_ms);
    if (!(u = nfs_parse_url_dir(nfs, in->url))) {
        nfs_destroy_context(nfs);
        return NULL;
    }
    nfs_destroy_url(u);
    /* Other connections of this instance create and remove files: a cached
     * directory listing here would miss them. */
    nfs_set_dircache(nfs, 0);
    return nfs;
}

static void nfsn_conn_free(nfsn_conn *c, int umount)
{
    if (!c)
        return;
    if (umount)
        nfs_umount(c->nfs);
    nfs_destroy_context(c->nfs);
    free(c);
}

/* Records where the export ends (first writer wins: concurrent first mounts
 * of one instance find the same split). Takes `exp`; copies `rest`. */
static int nfsn_set_split(nfsn_inst *in, char *exp, const char *rest)
{
    char *sub = strdup(rest);
    int rc = 0;

    pthread_mutex_lock(&in->lock);
    if (!in->export && exp && sub) {
        in->export = exp;
        in->subdir = sub;
        exp = sub = NULL;
    } else if (!in->export) {
        rc = ARCA_ENOMEM;
    }
    pthread_mutex_unlock(&in->lock);
    free(exp);
    free(sub);
    return rc ? in->host->error(in->host, rc, "out of memory") : 0;
}

/* First mount of the instance: try the whole path (most servers, ganesha and
 * knfsd included, mount a directory below an export), else walk up to the
 * export and look the rest up inside it; that also turns the server's vague
 * "permission denied" for a missing directory into a precise message. */
static int nfsn_resolve(nfsn_inst *in, nfsn_conn *c)
{
    char *first_err;
    int rc;

    rc = nfs_mount(c->nfs, in->server, in->dirpath);
    if (rc == 0)
        return nfsn_set_split(in, strdup(in->dirpath), "");
    if (!(first_err = strdup(nfs_get_error(c->nfs))))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    /* A transport failure (server down, timeout) will not get better higher
     * up the tree. */
    if (!nfsn_conn_ok(rc)) {
        rc = in->host->error(in->host, ARCA_EFAIL,
                             "cannot mount '%s': %s (is the server up and the export listed by `showmount -e %s`?)",
                             in->url, first_err, in->server);
        free(first_err);
        return rc;
    }
    /* cut indexes the '/' that starts the part below a candidate export. */
    for (size_t cut = strlen(in->dirpath); cut > 1;) {
        struct nfs_context *nfs;
        struct nfs_stat_64 st;
        const char *rest;
        char *exp;

        while (cut > 1 && in->dirpath[cut - 1] != '/')
            cut--;
        if (cut-- <= 1)
            break;
        rest = in->dirpath + cut;
        if (!(exp = strndup(in->dirpath, cut))) {
            free(first_err);
            return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
        }
        /* A failed mount leaves the context half set up: start afresh. */
        if (!(nfs = nfsn_context(in))) {
            free(exp);
            free(first_err);
            return in->host->error(in->host, ARCA_ENOMEM, "cannot create an NFS context for '%s'", in->url);
        }
        nfs_destroy_context(c->nfs);
        c->nfs = nfs;
        if (nfs_mount(c->nfs, in->server, exp) != 0) {
            free(exp);
            continue;
        }
        if (nfs_stat64(c->nfs, rest, &st) != 0 || !S_ISDIR(st.nfs_mode)) {
            rc = in->host->error(in->host, ARCA_ECONFIG,
                                 "url '%s': directory '%s' does not exist in '%s' on %s: create it or fix the url",
                                 in->url, rest + 1, exp, in->server);
            free(exp);
            free(first_err);
            return rc;
        }
        free(first_err);
        return nfsn_set_split(in, exp, rest);
    }
    rc = in->host->error(in->host, ARCA_EFAIL, "cannot mount '%s': %s (is it exported? `showmount -e %s`)", in->url,
                         first_err, in->server);
    free(first_err);
    return rc;
}

/* Borrows a mounted connection: an idle one, else a new one. `quiet` is for
 * cleanup after an error already recorded: fail without recording another. */
static int nfsn_acquire(nfsn_inst *in, nfsn_conn **out, int quiet)
{
    nfsn_conn *c;
    char *exp;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&in->lock);
    if ((c = in->idle)) {
        in->idle = c->next;
        in->nidle--;
    }
    exp = in->export; /* set once, freed only by destroy */
    pthread_mutex_unlock(&in->lock);
    if (c) {
        *out = c;
        return 0;
    }
    /* Mounting is slow: done outside the lock so other streams go on. */
    if (!(c = calloc(1, sizeof *c)) || !(c->nfs = nfsn_context(in))) {
        free(c);
        return quiet ? ARCA_ENOMEM
                     : in->host->error(in->host, ARCA_ENOMEM, "cannot create an NFS context for '%s'", in->url);
    }
    if (exp) {
        if ((rc = nfs_mount(c->nfs, in->server, exp)) != 0) {
            rc = quiet ? ARCA_EFAIL
                       : nfsn_fail(in, NULL, c, rc, "cannot mount '%s' (export '%s' of %s)", in->url, exp, in->server);
            nfsn_conn_free(c, 0);
            return rc;
        }
    } else if (quiet) {
        nfsn_conn_free(c, 0);
        return ARCA_EFAIL;
    } else if ((rc = nfsn_resolve(in, c))) {
        nfsn_conn_free(c, 0);
        return rc;
    }
    c->wmax = (size_t)nfs_get_writemax(c->nfs);
    c->rmax = (size_t)nfs_get_readmax(c->nfs);
    if (!c->wmax || c->wmax > NFS_IO_MAX)
        c->wmax = NFS_IO_MAX;
    if (!c->rmax || c->rmax > NFS_IO_MAX)
        c->rmax = NFS_IO_MAX;
    in->host->log(in->host, ARCA_LOG_DEBUG, "connected to %s (read %zu, write %zu bytes per call)", in->url,
                  c->rmax, c->wmax);
    *out = c;
    return 0;
}

/* Gives a connection back; `rc` is the last libnfs result on it. */
static void nfsn_release(nfsn_inst *in, nfsn_conn *c, int rc)
{
    if (!c)
        return;
    if (!c->broken && nfsn_conn_ok(rc)) {
        pthread_mutex_lock(&in->lock);
        if (in->nidle < NFSN_IDLE_MAX) {
            c->next = in->idle;
            in->idle = c;
            in->nidle++;
            c = NULL;
        }
        pthread_mutex_unlock(&in->lock);
    }
    nfsn_conn_free(c, 0);
}

/* Path of `name` inside the export. Caller frees. */
static char *nfsn_path(nfsn_inst *in, const char *name)
{
    const char *sub;
    pthread_mutex_lock(&in->lock);
    sub = in->subdir; /* set once by the first mount, freed only by destroy */
    pthread_mutex_unlock(&in->lock);
    return nfsn_join(sub ? sub : "", name);
}

static int nfsn_create(const arca_host *h, const char *where, const nfs_settings *s, void **out)
{
    nfsn_inst *in;
    struct nfs_context *nfs;
    struct nfs_url *u;
    size_t n;
    int rc;

    *out = NULL;
    if (strncmp(where, "nfs://", 6) != 0)
        return h->error(h, ARCA_ECONFIG, "url '%s' does not start with nfs://", where);
    if ((rc = nfsn_check_query(h, where)))
        return rc;
    if (!(in = calloc(1, sizeof *in)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    in->host = h;
    in->url = where;
    in->set = *s;
    if (pthread_mutex_init(&in->lock, NULL) != 0) {
        free(in);
        return h->error(h, ARCA_EFAIL, "cannot create a mutex");
    }
    /* Parse only (no network: create must not connect); libnfs does the
     * splitting so that the URL means what it means to nfs-cp and friends. */
    if (!(nfs = nfs_init_context())) {
        rc = h->error(h, ARCA_ENOMEM, "cannot create an NFS context for '%s'", where);
        goto fail;
    }
    u = nfs_parse_url_dir(nfs, where);
    if (!u || !u->server || !*u->server || !u->path || u->path[0] != '/') {
        rc = h->error(h, ARCA_ECONFIG, "url '%s' is not valid (%s): use nfs://host/export/dir", where,
                      u ? "no server or path" : nfs_get_error(nfs));
        if (u)
            nfs_destroy_url(u);
        nfs_destroy_context(nfs);
        goto fail;
    }
    in->server = strdup(u->server);
    in->dirpath = strdup(u->path);
    nfs_destroy_url(u);
    nfs_destroy_context(nfs);
    if (!in->server || !in->dirpath) {
        rc = h->error(h, ARCA_ENOMEM, "out of memory");
        goto fail;
    }
    for (n = strlen(in->dirpath); n > 1 && in->dirpath[n - 1] == '/';)
        in->dirpath[--n] = '\0';
    n = strlen(in->server) + strlen(in->dirpath) + 7;
    if (!(in->base = malloc(n))) {
        rc = h->error(h, ARCA_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(in->base, n, "nfs://%s%s", in->server, strcmp(in->dirpath, "/") ? in->dirpath : "");
    *out = in;
    return 0;
fail:
    free(in->server);
    free(in->dirpath);
    pthread_mutex_destroy(&in->lock);
    free(in);
    return rc;
}

static void nfsn_destroy(void *impl)
{
    nfsn_inst *in = impl;
    if (!in)
        return;
    while (in->idle) {
        nfsn_conn *c = in->idle;
        in->idle = c->next;
        nfsn_conn_free(c, 1); /* tell mountd we are gone */
    }
    pthread_mutex_destroy(&in->lock);
    free(in->export);
    free(in->subdir);
    free(in->server);
    free(in->dirpath);
    free(in->base);
    free(in);
}

static int nfsn_put_open(void *impl, const char *name, void **out)
{
    nfsn_inst *in = impl;
    nfsn_put *p;
    int rc;

    if (!(p = calloc(1, sizeof *p)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    p->ops = &nfsn_ops;
    p->in = in;
    snprintf(p->name, sizeof p->name, "%s", name);
    nfsp_temp_name(name, p->tmpname, sizeof p->tmpname);
    if ((rc = nfsn_acquire(in, &p->c, 0)))
        goto fail;
    if (!(p->path = nfsn_path(in, name)) || !(p->tmp = nfsn_path(in, p->tmpname))) {
        rc = in->host->error(in->host, ARCA_ENOMEM, "out of memory");
        goto fail;
    }
    /* O_EXCL: exclusive CREATE, so no leftover is ever reused. The mode is set
     * by the server, no umask involved. */
    if ((rc = nfs_create(p->c->nfs, p->tmp, O_EXCL, (int)in->set.mode, &p->fh)) != 0) {
        rc = nfsn_fail(in, NULL, p->c, rc, "cannot create temporary '%s/%s'", in->base, p->tmpname);
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (p->c)
        nfsn_release(in, p->c, 0);
    free(p->path);
    free(p->tmp);
    free(p);
    return rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
}

static int nfsn_put_write(void *put, const void *buf, size_t len)
{
    nfsn_put *p = put;
    const char *b = buf;

    while (len) {
        size_t n = len < p->c->wmax ? len : p->c->wmax;
        int rc = NFSN_PWRITE(p->c->nfs, p->fh, p->off, n, b);
        if (rc < 0)
            return nfsn_fail(p->in, p, p->c, rc, "cannot write '%s/%s' at byte %llu", p->in->base, p->name,
                             (unsigned long long)p->off);
        if (rc == 0) /* no progress: the server would have said why; do not spin */
            return pc_handle_error(p->in->host, p, ARCA_EFAIL, "cannot write '%s/%s': the server accepted 0 bytes",
                                   p->in->base, p->name);
        b += rc;
        len -= (size_t)rc;
        p->off += (uint64_t)rc;
    }
    return 0;
}

/* Closes the handle if open, removes the temporary if asked, gives the
 * connection back (dropping it if `rc` says it is broken), frees p. */
static void nfsn_put_free(nfsn_put *p, int unlink_tmp, int rc)
{
    nfsn_inst *in = p->in;
    nfsn_conn *c = p->c;

    if (p->fh) {
        int r = nfs_close(c->nfs, p->fh);
        if (rc >= 0 && r < 0)
            rc = r;
    }
    if (unlink_tmp && (c->broken || !nfsn_conn_ok(rc))) {
        /* The temporary is hidden and never listed, but it takes space: try
         * once more on a fresh connection before giving up on it. */
        nfsn_release(in, c, rc);
        c = NULL;
        rc = nfsn_acquire(in, &c, 1) ? -EIO : 0;
    }
    if (unlink_tmp && c && (rc = nfs_unlink(c->nfs, p->tmp)) != 0 && rc != -ENOENT)
        in->host->log(in->host, ARCA_LOG_WARN, "cannot remove temporary '%s/%s': %s; remove it by hand",
                      in->base, p->tmpname, nfs_get_error(c->nfs));
    else if (unlink_tmp && !c)
        in->host->log(in->host, ARCA_LOG_WARN, "temporary '%s/%s' is left on the server; remove it by hand",
                      in->base, p->tmpname);
    nfsn_release(in, c, rc);
    free(p->path);
    free(p->tmp);
    free(p);
}

static int nfsn_put_commit(void *put)
{
    nfsn_put *p = put;
    nfsn_inst *in = p->in;
    nfsn_conn *c = p->c;
    int rc, ret;

    /* WRITEs are sent UNSTABLE; COMMIT makes them durable on the server. NFSv3
     * servers commit RENAME before replying, so no directory sync exists or is
     * needed. */
    if (in->set.fsync && (rc = nfs_fsync(c->nfs, p->fh)) != 0) {
        ret = nfsn_fail(in, p, c, rc, "cannot commit '%s/%s' to stable storage", in->base, p->name);
        nfsn_put_free(p, 1, rc);
        return ret;
    }
    rc = nfs_close(c->nfs, p->fh);
    p->fh = NULL;
    if (rc != 0) {
        ret = nfsn_fail(in, p, c, rc, "cannot close '%s/%s'", in->base, p->name);
        nfsn_put_free(p, 1, rc);
        return ret;
    }
    if ((rc = nfs_rename(c->nfs, p->tmp, p->path)) != 0) {
        ret = nfsn_fail(in, p, c, rc, "cannot rename temporary to '%s/%s'", in->base, p->name);
        nfsn_put_free(p, 1, rc);
        return ret;
    }
    nfsn_put_free(p, 0, 0);
    return 0;
}

static void nfsn_put_abort(void *put)
{
    nfsn_put_free(put, 1, 0);
}

static int nfsn_get_open(void *impl, const char *name, uint64_t offset, uint64_t length, void **out)
{
    nfsn_inst *in = impl;
    struct nfs_stat_64 st;
    nfsn_get *g;
    char *path = NULL;
    int rc, nrc = 0;

    if (!(g = calloc(1, sizeof *g)))
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    g->ops = &nfsn_ops;
    g->in = in;
    snprintf(g->name, sizeof g->name, "%s", name);
    if ((rc = nfsn_acquire(in, &g->c, 0)))
        goto fail;
    if (!(path = nfsn_path(in, name))) {
        rc = in->host->error(in->host, ARCA_ENOMEM, "out of memory");
        goto fail;
    }
    if ((nrc = nfs_open(g->c->nfs, path, O_RDONLY, &g->fh)) != 0) {
        rc = nfsn_fail(in, NULL, g->c, nrc, "cannot open '%s/%s'", in->base, name);
        goto fail;
    }
    if ((nrc = nfs_fstat64(g->c->nfs, g->fh, &st)) != 0) {
        rc = nfsn_fail(in, NULL, g->c, nrc, "cannot stat '%s/%s'", in->base, name);
        goto fail;
    }
    if (!S_ISREG(st.nfs_mode)) {
        rc = in->host->error(in->host, ARCA_EFAIL, "'%s/%s' is not a regular file", in->base, name);
        goto fail;
    }
    if (offset > st.nfs_size || (length && offset + length > st.nfs_size)) {
        rc = in->host->error(in->host, ARCA_EINTEGRITY,
                             "'%s/%s' is %llu bytes: the range %llu+%llu is past its end (truncated?)", in->base,
                             name, (unsigned long long)st.nfs_size, (unsigned long long)offset,
                             (unsigned long long)length);
        goto fail;
    }
    free(path);
    g->pos = offset;
    g->end = length ? offset + length : st.nfs_size;
    g->size = st.nfs_size;
    *out = g;
    return 0;
fail:
    free(path);
    if (g->fh)
        nfs_close(g->c->nfs, g->fh);
    if (g->c)
        nfsn_release(in, g->c, nrc);
    free(g);
    return rc;
}

static int nfsn_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    nfsn_get *g = get;
    uint64_t want = g->end - g->pos;
    int rc;

    *got = 0;
    if (want == 0 || cap == 0)
        return 0;
    if (want > cap)
        want = cap;
    if (want > g->c->rmax)
        want = g->c->rmax;
    rc = NFSN_PREAD(g->c->nfs, g->fh, g->pos, want, buf);
    if (rc < 0)
        return nfsn_fail(g->in, g, g->c, rc, "cannot read '%s/%s' at byte %llu", g->in->base, g->name,
                         (unsigned long long)g->pos);
    /* The end was fixed at open from the file's size: an early EOF means the
     * object shrank under us. */
    if (rc == 0)
        return pc_handle_error(g->in->host, g, ARCA_EINTEGRITY,
                                  "'%s/%s' ended at byte %llu, before the %llu expected (it was %llu bytes at open)",
                                  g->in->base, g->name, (unsigned long long)g->pos, (unsigned long long)g->end,
                                  (unsigned long long)g->size);
    g->pos += (uint64_t)rc;
    *got = (size_t)rc;
    return 0;
}

static void nfsn_get_close(void *get)
{
    nfsn_get *g = get;
    int rc = nfs_close(g->c->nfs, g->fh);
    nfsn_release(g->in, g->c, rc);
    free(g);
}

/* One directory entry: a regular file's size and mtime (asked for when
 * READDIRPLUS gave no attributes), or 0 for anything else or a file gone. */
static int nfsn_regular(struct nfs_context *nfs, const char *dir, struct nfsdirent *de, uint64_t *size, int64_t *mtime)
{
    *size = de->size;
    *mtime = (int64_t)de->mtime.tv_sec;
    uint32_t type = de->type;
    if (type == 0) {
        struct nfs_stat_64 st;
        char *p = nfsn_join(dir, de->name);
        int r = p ? nfs_lstat64(nfs, p, &st) : -ENOMEM;
        free(p);
        if (r != 0)
            return 0; /* removed while we listed */
        type = S_ISREG(st.nfs_mode) ? NF3REG : NF3DIR;
        *size = st.nfs_size;
        *mtime = (int64_t)st.nfs_mtime;
    }
    return type == NF3REG;
}

/* Collects, sorts by name, then calls back with the connection released. */
static int nfsn_list(void *impl, const char *prefix, arca_list_cb cb, void *ud)
{
    nfsn_inst *in = impl;
    nfs_entries l = {0};
    size_t plen = strlen(prefix);
    struct nfsdirent *de;
    struct nfsdir *dir = NULL;
    nfsn_conn *c;
    char *path;
    int rc, nrc = 0;
    unsigned stale = 0;
    const time_t stale_before = time(NULL) - NFS_STALE_TMP_SEC;

    if ((rc = nfsn_acquire(in, &c, 0)))
        return rc;
    if (!(path = nfsn_path(in, ""))) {
        nfsn_release(in, c, 0);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    if ((nrc = nfs_opendir(c->nfs, path, &dir)) != 0) {
        rc = nfsn_fail(in, NULL, c, nrc, "cannot list '%s'", in->base);
        free(path);
        nfsn_release(in, c, nrc);
        return rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
    }
    while (!rc && (de = nfs_readdir(c->nfs, dir))) {
        uint64_t size;
        int64_t mtime;
        /* Hidden names are temporaries (ours or anyone's), never objects. */
        if (de->name[0] == '.') {
            if (!strncmp(de->name, NFS_TMP_PREFIX, strlen(NFS_TMP_PREFIX)) && de->mtime.tv_sec < stale_before)
                stale++;
            continue;
        }
        if (strncmp(de->name, prefix, plen) != 0 || !nfsn_regular(c->nfs, path, de, &size, &mtime))
            continue;
        if (nfsp_entry_add(&l, de->name, size, mtime))
            rc = in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    nfs_closedir(c->nfs, dir);
    nfsn_release(in, c, 0);
    free(path);
    if (stale)
        in->host->log(in->host, ARCA_LOG_WARN, "%u temporaries (%s*) older than a day in '%s': left by interrupted "
                      "backups; `arca cleanup PIPELINE` removes them", stale, NFS_TMP_PREFIX, in->base);
    if (rc) {
        nfsp_entries_free(&l);
        return rc;
    }
    return nfsp_entries_emit(&l, cb, ud);
}

/* Temporaries of puts named `prefix`... last written before older_than. */
static int nfsn_cleanup(void *impl, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud)
{
    nfsn_inst *in = impl;
    struct nfsdirent *de;
    struct nfsdir *dir = NULL;
    nfsn_conn *c;
    char *path, name[256];
    int rc, nrc;
    if ((rc = nfsn_acquire(in, &c, 0)))
        return rc;
    if (!(path = nfsn_path(in, ""))) {
        nfsn_release(in, c, 0);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    if ((nrc = nfs_opendir(c->nfs, path, &dir)) != 0) {
        rc = nfsn_fail(in, NULL, c, nrc, "cannot list '%s'", in->base);
        free(path);
        nfsn_release(in, c, nrc);
        return rc == ARCA_ENOENT ? ARCA_EFAIL : rc;
    }
    while (!rc && (de = nfs_readdir(c->nfs, dir))) {
        if (!nfsp_temp_owner(de->name, prefix, name, sizeof name) || (int64_t)de->mtime.tv_sec > older_than)
            continue;
        arca_object_stat os = {.name = name, .size = de->size, .mtime_sec = (int64_t)de->mtime.tv_sec};
        if (cb && cb(ud, &os) < 0) {
            rc = ARCA_ECANCELED;
            break;
        }
        char *p = dry_run ? NULL : nfsn_join(path, de->name);
        if (p && (nrc = nfs_unlink(c->nfs, p)) != 0 && nrc != -ENOENT)
            rc = nfsn_fail(in, NULL, c, nrc, "cannot remove '%s'", p);
        free(p);
    }
    nfs_closedir(c->nfs, dir);
    nfsn_release(in, c, 0);
    free(path);
    return rc;
}

static int nfsn_remove(void *impl, const char *name)
{
    nfsn_inst *in = impl;
    nfsn_conn *c;
    char *path;
    int rc, nrc;

    if ((rc = nfsn_acquire(in, &c, 0)))
        return rc;
    if (!(path = nfsn_path(in, name))) {
        nfsn_release(in, c, 0);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    if ((nrc = nfs_unlink(c->nfs, path)) != 0)
        rc = nfsn_fail(in, NULL, c, nrc, "cannot remove '%s/%s'", in->base, name);
    nfsn_release(in, c, nrc);
    free(path);
    return rc;
}

/* nfs://server/dir as libnfs parsed it (trailing slashes dropped), and of the
 * query only nfsport, which picks the server: uid, gid and whatever else the
 * URL carries are never echoed. */
static int nfsn_location(void *impl, char *buf, size_t cap)
{
    nfsn_inst *in = impl;
    const char *q = strchr(in->url, '?');
    char port[32] = "";
    int n;

    while (q && *q) {
        const char *arg = q + 1, *amp = strchr(arg, '&');
        size_t len = amp ? (size_t)(amp - arg) : strlen(arg);
        if (len > 8 && len < 8 + 6 && !strncmp(arg, "nfsport=", 8) && strspn(arg + 8, "0123456789") == len - 8)
            snprintf(port, sizeof port, "?nfsport=%.*s", (int)(len - 8), arg + 8);
        q = amp;
    }
    n = snprintf(buf, cap, "%s%s", in->base, port);
    if (n < 0 || (size_t)n >= cap)
        return in->host->error(in->host, ARCA_EFAIL, "the location of '%s' needs %d bytes, %zu given", in->base,
                               n + 1, cap);
    return 0;
}

static const arca_destination_ops nfsn_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = nfsn_put_open,
    .put_write = nfsn_put_write,
    .put_commit = nfsn_put_commit,
    .put_abort = nfsn_put_abort,
    .get_open = nfsn_get_open,
    .get_read = nfsn_get_read,
    .get_close = nfsn_get_close,
    .list = nfsn_list,
    .remove = nfsn_remove,
    .location = nfsn_location,
    .cleanup = nfsn_cleanup,
};

const nfs_backend nfsn_backend = {
    .key = "url",
    .create = nfsn_create,
    .destroy = nfsn_destroy,
    .ops = &nfsn_ops,
};
