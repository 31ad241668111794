/* files plugin: shared declarations between the descriptor (plugin.c), the tree
 * walk (backup.c), the restore (restore.c) and the path guard (safepath.c). */
#ifndef FILES_H
#define FILES_H

#include <arca/plugin.h>
#include <stddef.h>

/* Where the core lands the config-file options (see files_options). */
typedef struct files_config {
    const char *path;
    const char *exclude;
    const char *exclude_if_present;
    int exclude_caches;
    int one_file_system;
} files_config;

/* Where the core lands `arca restore` flags (see files_restore_options). */
typedef struct files_restore_opts {
    int force;
    int no_owner;
} files_restore_opts;

/* One configured [source] section. Owns `excludes` (and the strings in it);
 * `cfg` and `host` belong to the core. */
typedef struct files_inst {
    const arca_host *host;
    const files_config *cfg;
    char **excludes;
    size_t nexcludes;
} files_inst;

int files_backup(void *inst, arca_sink *sink);
int files_restore(void *inst, arca_feed *feed, const void *ropts);

/* ---- safepath.c: names from an archive are hostile until proven otherwise ---- */

/* 1 when `name` is a relative, non-empty path without empty, "." or ".."
 * components (no leading, trailing or doubled '/'), else 0. */
int fs_name_ok(const char *name);

/* Opens the directory holding the last component of `name`, walking from the
 * directory fd `root` one component at a time with O_NOFOLLOW, so no
 * symlink (whoever made it) is ever traversed. With `create`, missing
 * directories on the way are made (mode 0700, whatever the umask).
 * Returns a new fd the caller closes, with *leaf pointing into `name` at
 * the last component; or -errno (ELOOP/ENOTDIR: a component is a symlink
 * or not a directory). `name` must have passed fs_name_ok. */
int fs_open_parent(int root, const char *name, int create, const char **leaf);

/* write(2) until all of `buf` is out; 0 or -errno. */
int fs_write_all(int fd, const void *buf, size_t len);

#endif
