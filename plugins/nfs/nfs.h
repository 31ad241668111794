/* nfs destination plugin: what the descriptor (plugin.c) and its two backends,
 * a mounted directory (local.c) and an NFSv3 URL through libnfs (libnfs.c), share. */
#ifndef ARCA_NFS_H
#define ARCA_NFS_H

#include <stddef.h>
#include <stdint.h>

#include <arca/plugin.h>

/* The option struct the core fills from [destination NAME]; strings are owned
 * by the core and stay valid until destroy. */
typedef struct nfs_config {
    const char *path;      /* mounted directory ... */
    const char *url;       /* ... or nfs://host/export/dir: exactly one of the two */
    int fsync;
    const char *file_mode; /* octal text, checked by create */
    int64_t timeout;       /* seconds, url mode; 0 waits forever */
} nfs_config;

/* Validated settings both backends use. */
typedef struct nfs_settings {
    int fsync;
    unsigned mode;  /* permission bits of stored objects */
    int timeout_ms; /* -1: none */
} nfs_settings;

/* A backend fills the destination ops with its own put/get handles; each of
 * those handles starts with `const arca_destination_ops *ops` (nfs_handle) so
 * that the descriptor's ops can route a handle back to its backend. */
typedef struct nfs_handle {
    const arca_destination_ops *ops;
} nfs_handle;

typedef struct nfs_backend {
    const char *key; /* the option that selects it: "path" or "url" */
    /* `where` is the option's value; it stays valid until destroy. */
    int (*create)(const arca_host *h, const char *where, const nfs_settings *s, void **impl);
    void (*destroy)(void *impl);
    /* Object names are already validated; `location` and `cleanup` are
     * filled, remove_many is NULL. Failures of a put or get go on its handle. */
    const arca_destination_ops *ops;
} nfs_backend;

extern const nfs_backend nfsl_backend; /* local.c */
extern const nfs_backend nfsn_backend; /* libnfs.c */

/* Temporaries are `.arca-tmp.<name>.<16 hex>`: hidden, never a valid object
 * name, and unique per put so concurrent or crashed puts never collide. */
#define NFS_TMP_PREFIX ".arca-tmp."
#define NFS_TMP_EXTRA (sizeof(NFS_TMP_PREFIX) - 1 + 1 + 16)
/* Longest object name whose temporary still fits in NAME_MAX (255). */
#define NFS_NAME_MAX (255 - NFS_TMP_EXTRA)

/* A temporary this old is a leftover of an interrupted run, not a put in
 * progress: list warns about such leftovers (it never deletes them, since a
 * slow put from another host may still own one). */
#define NFS_STALE_TMP_SEC (24 * 3600)

/* Writes the temporary name for `name` into `out` (at least 256 bytes). */
void nfsp_temp_name(const char *name, char *out, size_t cap);
/* 1 when directory entry `entry` is a temporary of a put whose name starts
 * with `prefix`; that name goes to `name`. */
int nfsp_temp_owner(const char *entry, const char *prefix, char *name, size_t cap);

/* What list collects before it calls back: sorted by name, then handed over
 * with no directory open (nfsp_entries_emit frees it). */
typedef struct nfs_entry {
    char *name;
    uint64_t size;
    int64_t mtime;
} nfs_entry;
typedef struct nfs_entries {
    nfs_entry *v;
    size_t n, cap;
} nfs_entries;
/* 0, or -1 when out of memory. */
int nfsp_entry_add(nfs_entries *l, const char *name, uint64_t size, int64_t mtime);
/* Sorts, calls cb for each entry (a nonzero return stops: ARCA_OK for a
 * positive one, the value for a negative one), frees. */
int nfsp_entries_emit(nfs_entries *l, arca_list_cb cb, void *ud);
void nfsp_entries_free(nfs_entries *l);

/* Largest single write or read handed to the kernel or the server: big enough
 * to stream, small enough to stay within any NFS server's maximum transfer. */
#define NFS_IO_MAX ((size_t)1 << 20)

#endif
