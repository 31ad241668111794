/* Finds, loads and checks plugins. The three leading descriptor fields (major,
 * minor, size) never move, so any plugin can be judged before we touch the rest. */
#include "loader.h"

#include "secure.h"

#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add_dir(loader *l, const char *d)
{
    if (!d || !*d)
        return;
    for (size_t i = 0; i < l->ndirs; i++)
        if (!strcmp(l->dirs[i], d))
            return;
    l->dirs = xrealloc(l->dirs, (l->ndirs + 1) * sizeof *l->dirs);
    l->untrusted = xrealloc(l->untrusted, (l->ndirs + 1) * sizeof *l->untrusted);
    l->dirs[l->ndirs] = xstrdup(d);
    /* a directory anyone else can write to could hand us their code to run */
    l->untrusted[l->ndirs] = access(d, F_OK) == 0 ? path_untrusted(d, 1) : NULL;
    l->ndirs++;
}

static void add_path_list(loader *l, const char *list)
{
    if (!list)
        return;
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
        add_dir(l, t);
    free(copy);
}

loader *loader_new(const char *config_path)
{
    loader *l = xcalloc(1, sizeof *l);
    add_path_list(l, config_path);
    add_path_list(l, getenv("ARCA_PLUGIN_PATH"));
    /* Relative to the binary, so an install under any PREFIX and the build tree
     * both work without configuration: PREFIX/bin/arca -> PREFIX/lib/arca/plugins,
     * build/arca -> build/plugins. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char *d = xasprintf("%s/../lib/arca/plugins", exe);
            char real[PATH_MAX];
            if (realpath(d, real))
                add_dir(l, real);
            free(d);
            d = xasprintf("%s/plugins", exe);
            if (realpath(d, real))
                add_dir(l, real);
            free(d);
        }
    }
    return l;
}

void loader_free(loader *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->ndirs; i++) {
        free(l->dirs[i]);
        free(l->untrusted[i]);
    }
    free(l->dirs);
    free(l->untrusted);
    for (size_t i = 0; i < l->nloaded; i++) {
        /* Plugins are not dlclose'd: their threads or atexit handlers (libcurl,
         * libnfs) may still refer to their code at process exit. */
        free(l->loaded[i]->path);
        free(l->loaded[i]);
    }
    free(l->loaded);
    free(l);
}

const char *roles_name(uint32_t roles)
{
    switch (roles & (ARCA_ROLE_SOURCE | ARCA_ROLE_DESTINATION)) {
    case ARCA_ROLE_SOURCE: return "source";
    case ARCA_ROLE_DESTINATION: return "destination";
    case ARCA_ROLE_SOURCE | ARCA_ROLE_DESTINATION: return "source+destination";
    }
    return "none";
}

/* The smallest structs an ABI 1.x plugin can have: everything of 1.0. Later
 * minors append, so a 1.0 plugin stays loadable by a 1.x core. */
#define SRC_OPS_MIN_SIZE (offsetof(arca_source_ops, restore) + sizeof(void *))
#define DEST_OPS_MIN_SIZE (offsetof(arca_destination_ops, remove) + sizeof(void *))
#define DESC_MIN_SIZE (offsetof(arca_plugin, restore_config_size) + sizeof(size_t))

static const char *check_desc(const arca_plugin *d, char *buf, size_t n)
{
    if (!d)
        return "its entry point returned no descriptor";
    if (d->abi_major != ARCA_ABI_MAJOR) {
        snprintf(buf, n, "plugin built for arca plugin ABI %u.%u, but this arca speaks ABI %d.%d; rebuild it against this arca's plugin.h",
                 d->abi_major, d->abi_minor, ARCA_ABI_MAJOR, ARCA_ABI_MINOR);
        return buf;
    }
    if (d->size < DESC_MIN_SIZE) {
        snprintf(buf, n, "descriptor is %u bytes, ABI %d.0 needs at least %zu", d->size, ARCA_ABI_MAJOR, (size_t)DESC_MIN_SIZE);
        return buf;
    }
    if (!d->name || !*d->name || !d->version || !d->create || !d->destroy)
        return "descriptor lacks a name, version, create or destroy";
    for (const char *c = d->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return "plugin name must use only a-z, 0-9, '_' and '-'";
    if (!(d->roles & (ARCA_ROLE_SOURCE | ARCA_ROLE_DESTINATION)))
        return "plugin declares no role";
    if ((d->roles & ARCA_ROLE_SOURCE) &&
        (!d->source || d->source->size < SRC_OPS_MIN_SIZE || !d->source->backup || !d->source->restore))
        return "source plugin lacks complete source operations";
    if ((d->roles & ARCA_ROLE_DESTINATION) &&
        (!d->destination || d->destination->size < DEST_OPS_MIN_SIZE || !d->destination->put_open ||
         !d->destination->put_write || !d->destination->put_commit || !d->destination->put_abort ||
         !d->destination->get_open || !d->destination->get_read || !d->destination->get_close ||
         !d->destination->list || !d->destination->remove))
        return "destination plugin lacks complete destination operations";
    return NULL;
}

static plug *open_file(loader *l, const char *path, char **err)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        *err = xasprintf("%s: cannot load plugin: %s", path, strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < l->nloaded; i++)
        if (!strcmp(l->loaded[i]->path, real))
            return l->loaded[i];
    char *why = path_untrusted(real, 0);
    if (why) {
        *err = xasprintf("%s: refusing to load plugin: %s", real, why);
        free(why);
        return NULL;
    }
    void *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        *err = xasprintf("%s: cannot load plugin: %s", real, e ? e : "unknown dlopen error");
        return NULL;
    }
    dlerror();
    void *sym = dlsym(dl, ARCA_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        const char *e = dlerror();
        *err = xasprintf("%s: not an arca plugin: no symbol %s (%s)", real, ARCA_PLUGIN_ENTRY_SYMBOL, e ? e : "");
        dlclose(dl);
        return NULL;
    }
    arca_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const arca_plugin *d = entry();
    char buf[256];
    const char *bad = check_desc(d, buf, sizeof buf);
    if (bad) {
        *err = xasprintf("%s: plugin refused: %s", real, bad);
        dlclose(dl);
        return NULL;
    }
    plug *p = xcalloc(1, sizeof *p);
    p->path = xstrdup(real);
    p->dl = dl;
    p->desc = d;
    l->loaded = xrealloc(l->loaded, (l->nloaded + 1) * sizeof *l->loaded);
    l->loaded[l->nloaded++] = p;
    return p;
}

plug *loader_open(loader *l, const char *name, char **err)
{
    *err = NULL;
    if (strchr(name, '/'))
        return open_file(l, name, err);
    for (size_t i = 0; i < l->ndirs; i++) {
        char *path = xasprintf("%s/%s.so", l->dirs[i], name);
        if (access(path, F_OK) == 0) {
            plug *p = NULL;
            if (l->untrusted[i])
                *err = xasprintf("%s: refusing to load plugin from directory %s: %s", path, l->dirs[i], l->untrusted[i]);
            else
                p = open_file(l, path, err);
            free(path);
            return p;
        }
        free(path);
    }
    size_t len = 1;
    for (size_t i = 0; i < l->ndirs; i++)
        len += strlen(l->dirs[i]) + 2;
    char *dirs = xcalloc(1, len);
    for (size_t i = 0; i < l->ndirs; i++) {
        if (i)
            strcat(dirs, ":");
        strcat(dirs, l->dirs[i]);
    }
    *err = xasprintf("plugin '%s' not found (looked for %s.so in %s); set plugin_path in [arca] or ARCA_PLUGIN_PATH",
                     name, name, l->ndirs ? dirs : "no directories");
    free(dirs);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void loader_scan(loader *l, loader_scan_cb cb, void *ud)
{
    char **seen = NULL;
    size_t nseen = 0;
    for (size_t i = 0; i < l->ndirs; i++) {
        DIR *d = opendir(l->dirs[i]);
        if (!d)
            continue;
        if (l->untrusted[i]) {
            /* not even opened: dlopen runs a library's constructors */
            char *why = xasprintf("skipping plugin directory %s: %s", l->dirs[i], l->untrusted[i]);
            cb(ud, l->dirs[i], NULL, why);
            free(why);
            closedir(d);
            continue;
        }
        char **names = NULL;
        size_t nn = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len > 3 && !strcmp(e->d_name + len - 3, ".so")) {
                names = xrealloc(names, (nn + 1) * sizeof *names);
                names[nn++] = xstrdup(e->d_name);
            }
        }
        closedir(d);
        if (nn)
            qsort(names, nn, sizeof *names, cmp_str);
        for (size_t k = 0; k < nn; k++) {
            int dup = 0;
            for (size_t s = 0; s < nseen; s++)
                dup |= !strcmp(seen[s], names[k]);
            if (dup) {
                free(names[k]);
                continue;
            }
            seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
            seen[nseen++] = names[k];
            char *path = xasprintf("%s/%s", l->dirs[i], names[k]);
            char *err = NULL;
            plug *p = open_file(l, path, &err);
            cb(ud, path, p, err);
            free(err);
            free(path);
        }
        free(names);
    }
    for (size_t s = 0; s < nseen; s++)
        free(seen[s]);
    free(seen);
}
