/* probe: a minimal host that loads dirstore.so the way arca does (dlopen, entry
 * symbol, option offsets) and pins the destination contract arca's CLI cannot
 * reach: ranged gets, invisibility before commit, abort, ENOENT, name refusal.
 * Usage: probe PLUGIN.so EMPTY_DIR. Prints "ok - NAME" / "not ok - NAME: why". */
#define _XOPEN_SOURCE 700

#include <arca/plugin.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The host table first, so that a plugin's `const arca_host *` is our probe. */
typedef struct probe_host {
    arca_host host;
    char err[1024];
    int failures;
} probe_host;

static void ph_log(const arca_host *h, int level, const char *fmt, ...)
{
    va_list ap;
    (void)h;
    va_start(ap, fmt);
    fprintf(stderr, "# plugin log %d: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int ph_error(const arca_host *h, int code, const char *fmt, ...)
{
    probe_host *ph = (probe_host *)(void *)h;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ph->err, sizeof ph->err, fmt, ap);
    va_end(ap);
    return code;
}

static int ph_cancelled(const arca_host *h)
{
    (void)h;
    return 0;
}

static void expect(probe_host *ph, int cond, const char *name, const char *why)
{
    if (cond) {
        printf("ok - %s\n", name);
    } else {
        printf("not ok - %s: %s (last plugin error: %s)\n", name, why, ph->err);
        ph->failures++;
    }
    ph->err[0] = 0;
}

/* Fill a config struct from the plugin's own option table, as the core does:
 * the plugin never parses text, it finds typed values at its offsets. */
static void *probe_config(const arca_plugin *d, const char *root, uint64_t fail_after)
{
    char *cfg = calloc(1, d->config_size);
    for (const arca_option *o = d->options; cfg && o->name; o++) {
        if (!strcmp(o->name, "root") && o->type == ARCA_OPT_STRING)
            memcpy(cfg + o->offset, &root, sizeof root);
        else if (!strcmp(o->name, "fail_after_bytes") && o->type == ARCA_OPT_SIZE)
            memcpy(cfg + o->offset, &fail_after, sizeof fail_after);
    }
    return cfg;
}

/* Every directory entry but . and .., hidden ones included. */
static int raw_entries(const char *dir, char *first_name, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            if (!n && first_name)
                snprintf(first_name, cap, "%s", de->d_name);
            n++;
        }
    closedir(d);
    return n;
}

typedef struct listing {
    int n, stop_after;
    char names[8][64];
    uint64_t sizes[8];
} listing;

static int collect(void *ud, const arca_object_stat *st)
{
    listing *l = ud;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[l->n], "%s", st->name);
        l->sizes[l->n] = st->size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int put_all(const arca_destination_ops *ops, void *inst, const char *name, const char *data, int commit)
{
    void *put = NULL;
    int rc = ops->put_open(inst, name, &put);
    if (rc)
        return rc;
    if ((rc = ops->put_write(put, data, strlen(data)))) {
        ops->put_abort(put);
        return rc;
    }
    if (!commit) {
        ops->put_abort(put);
        return 0;
    }
    return ops->put_commit(put);
}

/* Read [offset, offset+length) into buf; returns the status, *n the bytes. */
static int get_range(const arca_destination_ops *ops, void *inst, const char *name, uint64_t off, uint64_t len,
                     char *buf, size_t cap, size_t *n)
{
    void *get = NULL;
    size_t got;
    int rc = ops->get_open(inst, name, off, len, &get);
    *n = 0;
    if (rc)
        return rc;
    /* small reads on purpose: a range must come back whole across many calls */
    do {
        rc = ops->get_read(get, buf + *n, cap - *n < 3 ? cap - *n : 3, &got);
        *n += got;
    } while (!rc && got && *n < cap);
    ops->get_close(get);
    buf[*n] = 0;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: probe PLUGIN.so EMPTY_DIR\n");
        return 2;
    }
    const char *so = argv[1], *dir = argv[2];
    probe_host ph = {.host = {.abi_major = ARCA_ABI_MAJOR,
                              .abi_minor = ARCA_ABI_MINOR,
                              .size = sizeof(arca_host),
                              .log = ph_log,
                              .error = ph_error,
                              .cancelled = ph_cancelled}};
    const arca_host *h = &ph.host;
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        printf("not ok - load: %s\n", dlerror());
        return 1;
    }
    void *sym = dlsym(dl, ARCA_PLUGIN_ENTRY_SYMBOL);
    arca_plugin_entry_fn entry;
    if (!sym) {
        printf("not ok - load: no %s\n", ARCA_PLUGIN_ENTRY_SYMBOL);
        return 1;
    }
    memcpy(&entry, &sym, sizeof entry);
    const arca_plugin *d = entry();
    expect(&ph,
           d && d->abi_major == ARCA_ABI_MAJOR && d->size >= sizeof(arca_plugin) &&
               d->roles == ARCA_ROLE_DESTINATION && d->destination &&
               d->destination->size >= sizeof(arca_destination_ops),
           "descriptor: ABI 1, full size, destination role and ops", "descriptor mismatch");
    if (ph.failures)
        return 1;
    const arca_destination_ops *ops = d->destination;
    char buf[256], path[4096];
    size_t n;
    int rc;

    /* create validates root */
    snprintf(path, sizeof path, "%s/missing", dir);
    void *cfg_bad = probe_config(d, path, 0), *bad = NULL;
    rc = d->create(h, cfg_bad, &bad);
    expect(&ph, rc == ARCA_ECONFIG && strstr(ph.err, path) && strstr(ph.err, strerror(ENOENT)),
           "create refuses a missing root, naming it and the system error", "wrong status or message");
    free(cfg_bad);

    void *cfg = probe_config(d, dir, 0), *in = NULL;
    rc = d->create(h, cfg, &in);
    expect(&ph, rc == ARCA_OK && in, "create accepts an existing root", "create failed");
    if (rc)
        return 1;

    /* a put is invisible until commit, its temporary is hidden from list */
    void *put = NULL;
    listing l = {0};
    rc = ops->put_open(in, "obj", &put);
    if (!rc)
        rc = ops->put_write(put, "hello, world", 12);
    int raw = raw_entries(dir, buf, sizeof buf);
    ops->list(in, "", collect, &l);
    expect(&ph, rc == 0 && raw == 1 && buf[0] == '.' && l.n == 0,
           "an open put is a hidden temporary that list does not show", "visible before commit");
    rc = put ? ops->put_commit(put) : -1;
    memset(&l, 0, sizeof l);
    ops->list(in, "", collect, &l);
    raw = raw_entries(dir, buf, sizeof buf);
    expect(&ph, rc == 0 && l.n == 1 && !strcmp(l.names[0], "obj") && l.sizes[0] == 12 && raw == 1,
           "commit makes the object visible under its name and leaves no temporary", "wrong listing");

    /* ranged get */
    rc = get_range(ops, in, "obj", 7, 5, buf, sizeof buf - 1, &n);
    expect(&ph, rc == 0 && n == 5 && !strcmp(buf, "world"), "get of offset 7 length 5 reads exactly 'world'",
           "wrong bytes");
    rc = get_range(ops, in, "obj", 0, 0, buf, sizeof buf - 1, &n);
    expect(&ph, rc == 0 && n == 12 && !strcmp(buf, "hello, world"), "get with length 0 reads to the end",
           "wrong bytes");
    rc = get_range(ops, in, "obj", 7, 0, buf, sizeof buf - 1, &n);
    expect(&ph, rc == 0 && !strcmp(buf, "world"), "get from an offset with length 0 reads the tail", "wrong bytes");
    rc = get_range(ops, in, "obj", 5, 100, buf, sizeof buf - 1, &n);
    expect(&ph, rc == ARCA_EINTEGRITY && strstr(ph.err, "obj"), "a range past the end is an integrity error",
           "range accepted");

    /* abort */
    rc = put_all(ops, in, "gone", "partial data", 0);
    raw = raw_entries(dir, buf, sizeof buf);
    expect(&ph, rc == 0 && raw == 1 && !strcmp(buf, "obj"), "abort removes the temporary and shows nothing",
           "leftover after abort");

    /* prefix and stop */
    put_all(ops, in, "p1", "1", 1);
    put_all(ops, in, "p2", "22", 1);
    memset(&l, 0, sizeof l);
    rc = ops->list(in, "p", collect, &l);
    expect(&ph, rc == 0 && l.n == 2, "list with a prefix shows only the matching objects", "wrong count");
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    rc = ops->list(in, "", collect, &l);
    expect(&ph, rc == 0 && l.n == 1, "a callback returning nonzero stops the listing", "listing went on");

    /* remove and ENOENT */
    rc = ops->remove(in, "obj");
    expect(&ph, rc == 0, "remove deletes an object", "remove failed");
    ph.err[0] = 0;
    rc = ops->remove(in, "obj");
    snprintf(path, sizeof path, "%s/obj", dir);
    expect(&ph, rc == ARCA_ENOENT && strstr(ph.err, path) && strstr(ph.err, strerror(ENOENT)),
           "removing a missing object is ARCA_ENOENT, naming the path and the system error", "wrong status");
    void *get = NULL;
    rc = ops->get_open(in, "obj", 0, 0, &get);
    expect(&ph, rc == ARCA_ENOENT && !get, "getting a missing object is ARCA_ENOENT", "wrong status");

    /* names that could leave root or hit a temporary */
    const char *bad_names[] = {"a/b", "../escape", ".hidden", ""};
    int refused = 0, before = raw_entries(dir, NULL, 0);
    for (size_t i = 0; i < 4; i++) {
        put = NULL;
        rc = ops->put_open(in, bad_names[i], &put);
        refused += rc != 0 && !put && strstr(ph.err, bad_names[i]) != NULL;
    }
    rc = ops->get_open(in, "../etc", 0, 0, &get);
    refused += rc != 0 && rc != ARCA_ENOENT;
    refused += ops->remove(in, ".x") != 0;
    expect(&ph, refused == 6 && raw_entries(dir, NULL, 0) == before,
           "names with '/' or a leading '.' are refused, naming them", "a name was accepted");

    /* fail_after_bytes: the write fails, abort leaves nothing */
    void *cfg_fail = probe_config(d, dir, 4), *fin = NULL;
    before = raw_entries(dir, NULL, 0);
    rc = d->create(h, cfg_fail, &fin);
    put = NULL;
    if (!rc)
        rc = ops->put_open(fin, "f", &put);
    int rc1 = rc ? rc : ops->put_write(put, "abc", 3);
    int rc2 = rc ? rc : ops->put_write(put, "defg", 4);
    raw = raw_entries(dir, NULL, 0);
    expect(&ph, rc1 == 0 && rc2 == ARCA_EFAIL && strstr(ph.err, dir) && strstr(ph.err, "fail_after_bytes") &&
               raw == before + 1,
           "fail_after_bytes fails the write past the limit, naming the temporary", "no failure");
    if (put)
        ops->put_abort(put);
    raw = raw_entries(dir, NULL, 0);
    expect(&ph, raw == before, "abort after the injected failure leaves nothing behind", "leftover");

    ops->remove(in, "p1");
    ops->remove(in, "p2");
    if (fin)
        d->destroy(fin);
    d->destroy(in);
    free(cfg_fail);
    free(cfg);
    dlclose(dl);
    return ph.failures ? 1 : 0;
}
