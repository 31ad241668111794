/* probe: a vendor's test program for dirstore.so, built out of tree against
 * the installed header and destination kit:
 *   cc $(pkg-config --cflags arca-plugin) probe.c $(pkg-config --variable=destkit arca-plugin) -ldl
 * It loads the plugin the way arca does (dlopen, entry symbol, option
 * offsets), checks what is dirstore's own (create validates root,
 * fail_after_bytes), then runs the whole destination contract through the kit.
 * Usage: probe PLUGIN.so EMPTY_DIR. Prints "ok - NAME" / "not ok - NAME: why"
 * for its own checks and the kit's TAP lines; exits 1 if anything failed. */
#define _XOPEN_SOURCE 700

#include <arca/destkit.h>
#include <arca/plugin.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The probe's own host for dirstore's own checks (the kit brings its own):
 * the host table first, so that a plugin's `const arca_host *` is our probe. */
typedef struct probe_host {
    arca_host host;
    char err[1024];        /* the last error or handle_error message */
    const void *err_handle; /* the handle it came with, NULL for error */
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
    ph->err_handle = NULL;
    return code;
}

static int ph_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...)
{
    probe_host *ph = (probe_host *)(void *)h;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ph->err, sizeof ph->err, fmt, ap);
    va_end(ap);
    ph->err_handle = handle;
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
    ph->err_handle = NULL;
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
static int raw_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* The kit's failure injection: remove the put's temporary behind dirstore's
 * back, so that its commit cannot rename it into place. */
static int break_put(void *ud, const char *name)
{
    const char *dir = ud;
    char want[512], path[4096];
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    snprintf(want, sizeof want, ".dirstore-tmp.%s.", name);
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, want, strlen(want))) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            n += unlink(path) == 0;
        }
    if (d)
        closedir(d);
    return n == 1 ? 0 : -1;
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
                              .cancelled = ph_cancelled,
                              .handle_error = ph_handle_error}};
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
    expect(&ph, d && d->abi_major == ARCA_ABI_MAJOR && d->abi_minor == ARCA_ABI_MINOR && d->destination,
           "descriptor: built for this ABI, with destination ops", "descriptor mismatch");
    if (ph.failures)
        return 1;
    const arca_destination_ops *ops = d->destination;
    char path[4096];
    int rc;

    /* ---- dirstore's own: create validates root ---- */
    snprintf(path, sizeof path, "%s/missing", dir);
    void *cfg_bad = probe_config(d, path, 0), *bad = NULL;
    rc = d->create(h, cfg_bad, &bad);
    expect(&ph, rc == ARCA_ECONFIG && strstr(ph.err, path) && strstr(ph.err, strerror(ENOENT)),
           "create refuses a missing root, naming it and the system error", "wrong status or message");
    free(cfg_bad);

    /* ---- dirstore's own: fail_after_bytes, reported on the put's handle ---- */
    void *cfg_fail = probe_config(d, dir, 4), *fin = NULL, *put = NULL;
    rc = d->create(h, cfg_fail, &fin);
    if (!rc)
        rc = ops->put_open(fin, "f", &put);
    int rc1 = rc ? rc : ops->put_write(put, "abc", 3);
    int rc2 = rc ? rc : ops->put_write(put, "defg", 4);
    expect(&ph, rc1 == 0 && rc2 == ARCA_EFAIL && ph.err_handle == put && strstr(ph.err, dir) &&
               strstr(ph.err, "fail_after_bytes") && raw_entries(dir) == 1,
           "fail_after_bytes fails the write past the limit, on the put's handle, naming the temporary",
           "no failure, or not on the handle");
    if (put)
        ops->put_abort(put);
    expect(&ph, raw_entries(dir) == 0, "abort after the injected failure leaves nothing behind", "leftover");
    if (fin)
        d->destroy(fin);
    free(cfg_fail);

    /* ---- the destination contract: the kit ---- */
    void *cfg = probe_config(d, dir, 0);
    arca_destkit_opts o = ARCA_DESTKIT_OPTS_INIT;
    o.prefix = "probe";
    o.break_put = break_put;
    o.ud = (void *)dir;
    o.verbose = getenv("PROBE_VERBOSE") != NULL;
    int kit_failed = arca_destkit_run(d, cfg, &o);
    expect(&ph, raw_entries(dir) == 0, "the kit leaves the directory empty, temporaries included", "leftover");
    free(cfg);
    dlclose(dl);
    return ph.failures || kit_failed ? 1 : 0;
}
