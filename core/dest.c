/* The destination layer (see dest.h). */
#include "dest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct dest_put {
    inst *d;
    void *h;
    char *name;
};

struct dest_get {
    inst *d;
    void *h;
    char *name;
};

static const arca_destination_ops *ops(inst *d)
{
    return d->plug->desc->destination;
}

/* A plugin that returns a failure without a status of its own is a bug; a
 * plugin that returns ARCA_OK for an error would hide it. Both read as EFAIL. */
static int status(int rc)
{
    return rc > 0 ? ARCA_EFAIL : rc;
}

static int name_ok(inst *d, const char *name, char **err)
{
    if (!name || !*name || strchr(name, '/') || name[0] == '.') {
        *err = xasprintf("%s: internal error: unusable object name '%s'", d->label, name ? name : "(null)");
        return ARCA_EFAIL;
    }
    return ARCA_OK;
}

int dest_put_open(inst *d, const char *name, dest_put **out, char **err)
{
    *out = NULL;
    int rc = name_ok(d, name, err);
    if (rc)
        return rc;
    void *h = NULL;
    rc = status(ops(d)->put_open(d->state, name, &h));
    if (rc != ARCA_OK) {
        *err = inst_take_error(d, rc, "cannot start writing");
        return rc;
    }
    dest_put *p = xcalloc(1, sizeof *p);
    p->d = d;
    p->h = h;
    p->name = xstrdup(name);
    *out = p;
    return ARCA_OK;
}

int dest_put_write(dest_put *p, const void *buf, size_t len, char **err)
{
    int rc = status(ops(p->d)->put_write(p->h, buf, len));
    if (rc != ARCA_OK) {
        char *m = inst_take_handle_error(p->d, p->h, rc, "write failed");
        *err = xasprintf("%s (writing %s)", m, p->name);
        free(m);
    }
    return rc;
}

static void put_free(dest_put *p)
{
    inst_drop_handle(p->d, p->h);
    free(p->name);
    free(p);
}

int dest_put_commit(dest_put *p, char **err)
{
    int rc = status(ops(p->d)->put_commit(p->h));
    if (rc != ARCA_OK) {
        char *m = inst_take_handle_error(p->d, p->h, rc, "commit failed");
        *err = xasprintf("%s (committing %s)", m, p->name);
        free(m);
    }
    put_free(p);
    return rc;
}

void dest_put_abort(dest_put *p)
{
    if (!p)
        return;
    ops(p->d)->put_abort(p->h);
    put_free(p);
}

int dest_get_open(inst *d, const char *name, uint64_t offset, uint64_t length, dest_get **out, char **err)
{
    *out = NULL;
    int rc = name_ok(d, name, err);
    if (rc)
        return rc;
    void *h = NULL;
    rc = status(ops(d)->get_open(d->state, name, offset, length, &h));
    if (rc != ARCA_OK) {
        char *m = inst_take_error(d, rc, "cannot read");
        *err = rc == ARCA_ENOENT && !strstr(m, name) ? xasprintf("%s: %s not found", m, name) : xstrdup(m);
        free(m);
        return rc;
    }
    dest_get *g = xcalloc(1, sizeof *g);
    g->d = d;
    g->h = h;
    g->name = xstrdup(name);
    *out = g;
    return ARCA_OK;
}

int dest_get_read(dest_get *g, void *buf, size_t cap, size_t *got, char **err)
{
    *got = 0;
    int rc = status(ops(g->d)->get_read(g->h, buf, cap, got));
    if (rc == ARCA_OK && *got > cap)
        rc = ARCA_EFAIL, inst_drop_handle(g->d, g->h);
    if (rc != ARCA_OK) {
        char *m = inst_take_handle_error(g->d, g->h, rc, "read failed");
        *err = xasprintf("%s (reading %s)", m, g->name);
        free(m);
    }
    return rc;
}

void dest_get_close(dest_get *g)
{
    if (!g)
        return;
    ops(g->d)->get_close(g->h);
    inst_drop_handle(g->d, g->h);
    free(g->name);
    free(g);
}

int dest_list(inst *d, const char *prefix, arca_list_cb cb, void *ud, char **err)
{
    int rc = status(ops(d)->list(d->state, prefix ? prefix : "", cb, ud));
    if (rc != ARCA_OK)
        *err = inst_take_error(d, rc, "listing failed");
    return rc;
}

int dest_remove(inst *d, const char *name, char **err)
{
    int rc = name_ok(d, name, err);
    if (rc)
        return rc;
    rc = status(ops(d)->remove(d->state, name));
    if (rc != ARCA_OK)
        *err = inst_take_error(d, rc, "remove failed");
    return rc;
}

int dest_remove_many(inst *d, const char *const *names, size_t n, char **err)
{
    for (size_t i = 0; i < n; i++)
        if (name_ok(d, names[i], err))
            return ARCA_EFAIL;
    if (ARCA_HAS(arca_destination_ops, ops(d), remove_many) && ops(d)->remove_many) {
        int rc = status(ops(d)->remove_many(d->state, names, n));
        if (rc != ARCA_OK)
            *err = inst_take_error(d, rc, "remove failed");
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = dest_remove(d, names[i], err);
        if (rc == ARCA_ENOENT) {
            free(*err);
            *err = NULL;
            continue;
        }
        if (rc != ARCA_OK)
            return rc;
    }
    return ARCA_OK;
}

char *dest_location(inst *d)
{
    if (!ARCA_HAS(arca_destination_ops, ops(d), location) || !ops(d)->location)
        return NULL;
    char buf[1024] = "";
    if (ops(d)->location(d->state, buf, sizeof buf) != ARCA_OK) {
        free(inst_take_error(d, ARCA_EFAIL, ""));
        return NULL;
    }
    buf[sizeof buf - 1] = 0;
    return buf[0] ? xstrdup(buf) : NULL;
}

int dest_cleanup(inst *d, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud, char **err)
{
    if (!ARCA_HAS(arca_destination_ops, ops(d), cleanup) || !ops(d)->cleanup) {
        *err = xasprintf("%s: the plugin cannot list its leftovers (no cleanup operation)", d->label);
        return ARCA_ECONFIG;
    }
    int rc = status(ops(d)->cleanup(d->state, prefix ? prefix : "", older_than, dry_run, cb, ud));
    if (rc != ARCA_OK)
        *err = inst_take_error(d, rc, "cleanup failed");
    return rc;
}

int dest_slurp(inst *d, const char *name, size_t max, char **out, size_t *len, char **err)
{
    dest_get *g;
    int rc = dest_get_open(d, name, 0, 0, &g, err);
    if (rc)
        return rc;
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                rc = ARCA_EINTEGRITY;
                *err = xasprintf("%s: %s is larger than %zu bytes", d->label, name, max);
                break;
            }
            cap = cap * 2 > max ? max : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        size_t got = 0;
        if ((rc = dest_get_read(g, buf + n, cap - n, &got, err)) != ARCA_OK || !got)
            break;
        n += got;
    }
    dest_get_close(g);
    if (rc != ARCA_OK) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return ARCA_OK;
}

int dest_fetch(inst *d, const char *name, uint64_t offset, uint64_t length, int *fdp, uint64_t *lenp, char **err)
{
    int fd = tmp_open(NULL, err);
    if (fd < 0)
        return ARCA_EFAIL;
    dest_get *g;
    int rc = dest_get_open(d, name, offset, length, &g, err);
    char *buf = xmalloc(1 << 20);
    uint64_t total = 0;
    while (rc == ARCA_OK) {
        size_t got = 0;
        if ((rc = dest_get_read(g, buf, 1 << 20, &got, err)) != ARCA_OK || !got)
            break;
        if (g_interrupted) {
            rc = ARCA_ECANCELED;
            *err = xstrdup("interrupted");
            break;
        }
        if (write_all(fd, buf, got)) {
            rc = ARCA_EFAIL;
            *err = xasprintf("cannot write a temporary copy of %s: %s", name, strerror(errno));
            break;
        }
        total += got;
    }
    free(buf);
    dest_get_close(g);
    if (rc != ARCA_OK) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    *lenp = total;
    return ARCA_OK;
}
