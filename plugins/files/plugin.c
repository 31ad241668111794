/* files plugin: the descriptor, its option tables and the per-section instance.
 * Backs up a directory tree as DIR/DATA/SYMLINK objects and restores it. */
#include "files.h"

#include <stdlib.h>
#include <string.h>

#ifndef ARCA_VERSION
#define ARCA_VERSION "0.0.0"
#endif

#define OPT(field) offsetof(files_config, field)

static const arca_option files_options[] = {
    {"path", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, OPT(path), NULL, NULL, 0, 0,
     "directory tree to back up, and to restore into"},
    {"exclude", ARCA_OPT_STRING, 0, OPT(exclude), NULL, NULL, 0, 0,
     "comma-separated fnmatch patterns: without '/' a name at any depth, with '/' "
     "a path relative to `path` (e.g. *.tmp,/cache,build/*); a matching directory is skipped whole"},
    {"exclude_if_present", ARCA_OPT_STRING, 0, OPT(exclude_if_present), NULL, NULL, 0, 0,
     "file name (e.g. .nobackup) marking a directory whose contents are not backed up"},
    {"exclude_caches", ARCA_OPT_BOOL, 0, OPT(exclude_caches), "false", NULL, 0, 0,
     "skip the contents of directories tagged with a valid CACHEDIR.TAG"},
    {"one_file_system", ARCA_OPT_BOOL, 0, OPT(one_file_system), "false", NULL, 0, 0,
     "do not descend into mount points below `path` (they are kept as empty directories)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

#define ROPT(field) offsetof(files_restore_opts, field)

static const arca_option files_restore_options[] = {
    {"force", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(force), "false", NULL, 0, 0,
     "restore into a non-empty directory: replace existing files, reuse directories"},
    {"no_owner", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(no_owner), "false", NULL, 0, 0,
     "do not restore owners and groups (restored by default when running as root)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

static void files_free_excludes(files_inst *fi)
{
    for (size_t i = 0; i < fi->nexcludes; i++)
        free(fi->excludes[i]);
    free(fi->excludes);
    fi->excludes = NULL;
    fi->nexcludes = 0;
}

/* Splits "a, b ,,c" into trimmed, non-empty patterns (matched in backup.c). */
static int files_parse_excludes(files_inst *fi, const char *list)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    fi->excludes = calloc(cap, sizeof *fi->excludes);
    if (!fi->excludes)
        return ARCA_ENOMEM;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            char *pat = strndup(b, (size_t)(e - b));
            if (!pat)
                return ARCA_ENOMEM;
            fi->excludes[fi->nexcludes++] = pat;
        }
        p = *end ? end + 1 : end;
    }
    return ARCA_OK;
}

static int files_create(const arca_host *host, const void *config, void **inst)
{
    const files_config *cfg = config;
    *inst = NULL;
    if (!cfg->path || !*cfg->path)
        return host->error(host, ARCA_ECONFIG, "option 'path' must name a directory");
    if (cfg->exclude_if_present &&
        (!*cfg->exclude_if_present || strchr(cfg->exclude_if_present, '/')))
        return host->error(host, ARCA_ECONFIG,
                           "option 'exclude_if_present' must be a file name without '/', got '%s'",
                           cfg->exclude_if_present);

    files_inst *fi = calloc(1, sizeof *fi);
    if (!fi)
        return host->error(host, ARCA_ENOMEM, "out of memory");
    fi->host = host;
    fi->cfg = cfg;
    if (cfg->exclude && files_parse_excludes(fi, cfg->exclude) != ARCA_OK) {
        files_free_excludes(fi);
        free(fi);
        return host->error(host, ARCA_ENOMEM, "out of memory");
    }
    *inst = fi;
    return ARCA_OK;
}

static void files_destroy(void *inst)
{
    files_inst *fi = inst;
    if (!fi)
        return;
    files_free_excludes(fi);
    free(fi);
}

static const arca_source_ops files_source_ops = {
    .size = sizeof(arca_source_ops),
    .backup = files_backup,
    .restore = files_restore,
};

static const arca_plugin files_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_SOURCE,
    .name = "files",
    .version = ARCA_VERSION,
    .description = "a directory tree: files, directories and symlinks with modes and mtimes",
    .options = files_options,
    .config_size = sizeof(files_config),
    .create = files_create,
    .destroy = files_destroy,
    .source = &files_source_ops,
    .restore_options = files_restore_options,
    .restore_config_size = sizeof(files_restore_opts),
};

ARCA_PLUGIN_DEFINE(files_plugin)
