/* Finds, loads and checks plugins: ABI major, descriptor size, roles. */
#ifndef ARCA_LOADER_H
#define ARCA_LOADER_H

#include "arca/plugin.h"
#include "util.h"

typedef struct plug {
    char *path;
    void *dl;
    const arca_plugin *desc;
} plug;

typedef struct loader {
    char **dirs; /* search order: config plugin_path, $ARCA_PLUGIN_PATH, install dir, build dir */
    char **untrusted; /* per dir: why it is not trusted (others can write to it), or NULL */
    size_t ndirs;
    plug **loaded;
    size_t nloaded;
} loader;

/* `config_path` is [arca] plugin_path (colon-separated, may be NULL). */
loader *loader_new(const char *config_path);
void loader_free(loader *l);
/* Load by name (searched as NAME.so in the dirs) or by path (contains '/').
 * Cached: the same file is opened once. On failure returns NULL and *err says
 * why, naming the file (dlerror text, missing symbol, ABI mismatch). */
plug *loader_open(loader *l, const char *name_or_path, char **err);
/* Every *.so in the search dirs, first occurrence of a name wins. */
typedef void (*loader_scan_cb)(void *ud, const char *path, plug *p, const char *err);
void loader_scan(loader *l, loader_scan_cb cb, void *ud);
const char *roles_name(uint32_t roles);

#endif
