/* arca plugin ABI: the one header a source or destination plugin needs.
 * Build out of tree with `pkg-config --cflags arca-plugin`; see docs/PLUGINS.md. */
#ifndef ARCA_PLUGIN_H
#define ARCA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A plugin built against another ABI major is refused. A later minor only
 * appends fields to the structs below; the core reads `size` to know which
 * fields a plugin has. */
#define ARCA_ABI_MAJOR 1
#define ARCA_ABI_MINOR 1

/* Nonzero when the struct at `ptr` (of type `type`, with a leading or known
 * `size` member) is large enough to hold `field`: a plugin checks this before
 * using a host field added by a later minor, the core before calling an
 * optional operation added by one. */
#define ARCA_HAS(type, ptr, field) \
    ((ptr) != NULL && (ptr)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* The one symbol a plugin exports. */
#define ARCA_PLUGIN_ENTRY_SYMBOL "arca_plugin_entry"

#if defined(__GNUC__)
#define ARCA_EXPORT __attribute__((visibility("default")))
#define ARCA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ARCA_EXPORT
#define ARCA_PRINTF(f, a)
#endif

/* ---- status codes: 0 ok, negative on failure ------------------------------ */
enum {
    ARCA_OK = 0,
    ARCA_EFAIL = -1,      /* the operation failed (I/O, server, remote error) */
    ARCA_ECONFIG = -2,    /* bad option or usage: the user must change something */
    ARCA_EINTEGRITY = -3, /* checksum, truncation, malformed data */
    ARCA_ENOENT = -4,     /* no such object */
    ARCA_ECANCELED = -5,  /* the host asked us to stop */
    ARCA_ENOMEM = -6,
    ARCA_EEXIST = -7      /* target exists / not empty */
};
/* A destination that cannot store an object under the name it is given (a
 * character its store refuses, a name that would escape its root or collide
 * with its temporaries) returns ARCA_ECONFIG: the user must change the name
 * (pipeline or prefix), retrying cannot help. */

/* ---- options: declared by the plugin, validated and filled by the core ---- */
typedef enum {
    ARCA_OPT_STRING = 1, /* const char *           */
    ARCA_OPT_INT,        /* int64_t                */
    ARCA_OPT_BOOL,       /* int (0 or 1): true/false/yes/no/on/off/1/0 */
    ARCA_OPT_SIZE,       /* uint64_t bytes: 4096, 64K, 8M, 1G, 2T */
    ARCA_OPT_ENUM        /* int: index into `choices` ("a|b|c") */
} arca_opt_type;

#define ARCA_OPT_REQUIRED 0x1u /* must be set (no default) */
#define ARCA_OPT_SECRET 0x2u   /* never printed; `NAME_file = PATH` reads it from a file */
#define ARCA_OPT_FLAG 0x4u     /* restore options only: a BOOL given as `--name` alone */

typedef struct arca_option {
    const char *name;    /* lowercase, [a-z0-9_]; NULL ends the table */
    arca_opt_type type;
    uint32_t flags;      /* ARCA_OPT_* */
    size_t offset;       /* where the value lands in the plugin's config struct */
    const char *def;     /* default as text, NULL for none */
    const char *choices; /* ARCA_OPT_ENUM: "a|b|c" */
    int64_t min, max;    /* INT and SIZE range; both 0 means unchecked */
    const char *help;    /* one line */
} arca_option;

/* ---- roles and object kinds ---------------------------------------------- */
#define ARCA_ROLE_SOURCE 0x1u
#define ARCA_ROLE_DESTINATION 0x2u

enum {
    ARCA_LOG_ERROR = 0,
    ARCA_LOG_WARN = 1,
    ARCA_LOG_INFO = 2,
    ARCA_LOG_DEBUG = 3
};

typedef enum {
    ARCA_OBJ_DATA = 1, /* bytes, chunked and compressed by the core */
    ARCA_OBJ_DIR,      /* no bytes; mode and mtime only */
    ARCA_OBJ_SYMLINK   /* no bytes; link_target */
} arca_obj_kind;

/* What a source says about one object it backs up (sink) or what the core
 * hands back on restore (feed). Names are relative, '/'-separated, never
 * absolute, never with "." or ".." components; the core prefixes the
 * source's namespace in the archive and strips it on restore. */
typedef struct arca_object_info {
    const char *name;
    arca_obj_kind kind;
    uint32_t mode;       /* permission bits (07777) */
    int64_t mtime_sec;
    int32_t mtime_nsec;
    const char *link_target; /* ARCA_OBJ_SYMLINK only */
} arca_object_info;

typedef struct arca_host arca_host;
typedef struct arca_sink arca_sink;     /* backup: where a source puts objects */
typedef struct arca_object arca_object; /* one object being written to a sink */
typedef struct arca_feed arca_feed;     /* restore: verified data handed back */

/* One step of a restore feed. For a DATA object the bytes of one chunk, after
 * its SHA-256 matched the manifest and it decompressed to the manifest's
 * size; chunks of one object come in order, chunks of different objects may
 * interleave. DIR and SYMLINK objects come first, once each, with no data. */
typedef struct arca_entry {
    arca_object_info info;
    uint64_t object_size;  /* raw size of the whole object */
    uint32_t chunk;        /* chunk index within the object, from 0 */
    uint32_t chunks;       /* number of chunks of the object (0 for DIR/SYMLINK) */
    const void *data;      /* valid until the next feed_next call */
    size_t len;
} arca_entry;

/* The host table: everything the core offers a plugin. Thread-safe unless
 * noted. Every function takes the host it was given at create time. */
struct arca_host {
    uint32_t abi_major, abi_minor, size, reserved;

    void (*log)(const arca_host *h, int level, const char *fmt, ...) ARCA_PRINTF(3, 4);
    /* Record why an operation failed (the object, URL, file:line ...), and
     * return `code` so that `return h->error(h, ARCA_EFAIL, "...")` reads well. */
    int (*error)(const arca_host *h, int code, const char *fmt, ...) ARCA_PRINTF(3, 4);
    /* Optional progress hint from a source: bytes done of an estimated total (0 = unknown). */
    void (*progress)(const arca_host *h, uint64_t done, uint64_t total);
    /* Nonzero once the operation is being cancelled: stop soon, return ARCA_ECANCELED. */
    int (*cancelled)(const arca_host *h);

    /* --- sink (backup). object_* calls for one object come from one thread;
     * different objects may be written from different threads at once. --- */
    /* Source-level facts for the archive header (database, server_version, mode, ...).
     * Call before the first object_begin. */
    int (*sink_info)(arca_sink *s, const char *key, const char *value);
    int (*object_begin)(arca_sink *s, const arca_object_info *info, arca_object **out);
    int (*object_write)(arca_object *o, const void *buf, size_t len);
    /* Per-object metadata kept in the manifest (table, row_count, ...). */
    int (*object_meta)(arca_object *o, const char *key, const char *value);
    int (*object_meta_int)(arca_object *o, const char *key, int64_t value);
    /* Finishes the object and frees `o`; after a failure the backup fails. */
    int (*object_end)(arca_object *o);

    /* --- feed (restore), one thread. Returns 1 and fills *e, 0 at the end,
     * or a negative code (the core has recorded the error). --- */
    int (*feed_next)(arca_feed *f, arca_entry *e);
    /* Metadata the source stored for the current entry's object; NULL if absent. */
    const char *(*feed_meta)(arca_feed *f, const char *key);
    /* Source-level facts recorded at backup time (sink_info); NULL if absent. */
    const char *(*feed_info)(arca_feed *f, const char *key);

    void *core; /* private to the core */

    /* --- ABI 1.1 (check ARCA_HAS(arca_host, h, handle_error) before use) --- */
    /* Like `error`, for one handle (a put or get): the core shows this message
     * for the failing call on that handle, so concurrent operations of one
     * instance never show each other's messages. Callable from any thread
     * (e.g. an upload worker of the handle). Returns `code`. */
    int (*handle_error)(const arca_host *h, const void *handle, int code, const char *fmt, ...) ARCA_PRINTF(4, 5);
};

/* ---- destination: an object store ----------------------------------------- */
typedef struct arca_object_stat {
    const char *name; /* relative to the destination's root */
    uint64_t size;
    int64_t mtime_sec;
} arca_object_stat;

/* Nonzero stops the listing: `list` then returns ARCA_OK for a positive value
 * and the value itself for a negative one. */
typedef int (*arca_list_cb)(void *ud, const arca_object_stat *st);

typedef struct arca_destination_ops {
    uint32_t size; /* sizeof(arca_destination_ops) the plugin was built with */
    /* Start writing `name`. Nothing is visible under `name` until put_commit. */
    int (*put_open)(void *inst, const char *name, void **put);
    int (*put_write)(void *put, const void *buf, size_t len);
    /* Atomically make the object visible; frees `put` whatever the result
     * (on failure nothing is visible and temporaries are gone). */
    int (*put_commit)(void *put);
    /* Drop the upload and everything temporary; frees `put`. */
    void (*put_abort)(void *put);
    /* Read `length` bytes from `offset` (length 0: to the end). ARCA_ENOENT if missing. */
    int (*get_open)(void *inst, const char *name, uint64_t offset, uint64_t length, void **get);
    int (*get_read)(void *get, void *buf, size_t cap, size_t *got); /* *got == 0 at the end */
    void (*get_close)(void *get);
    /* Call cb for each committed object whose name starts with prefix (never
     * for temporaries), in any order. See arca_list_cb for early stops. */
    int (*list)(void *inst, const char *prefix, arca_list_cb cb, void *ud);
    int (*remove)(void *inst, const char *name); /* ARCA_ENOENT if missing */

    /* --- ABI 1.1: optional, NULL when absent (the core checks ARCA_HAS first) --- */
    /* Remove several committed objects in as few requests as the store allows.
     * A missing name is not an error. ARCA_OK once every name is gone. */
    int (*remove_many)(void *inst, const char *const *names, size_t n);
    /* A canonical text for where this instance stores objects (e.g.
     * "s3://bucket/prefix/ at https://host"), so that the core can warn when two
     * pipelines write to one place. ARCA_OK with `buf` filled (NUL-terminated). */
    int (*location)(void *inst, char *buf, size_t cap);
    /* Leftovers of interrupted puts (temporaries, unfinished multipart uploads)
     * whose name starts with `prefix` and that were started before
     * or at `older_than` (Unix seconds): cb once for each (name as the put named it,
     * size so far, start time); removed unless `dry_run`. */
    int (*cleanup)(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud);
} arca_destination_ops;

/* ---- source --------------------------------------------------------------- */
typedef struct arca_source_ops {
    uint32_t size; /* sizeof(arca_source_ops) the plugin was built with */
    int (*backup)(void *inst, arca_sink *sink);
    /* `ropts` is the plugin's restore-option struct filled from command-line
     * flags (restore_options below); NULL when the plugin declares no restore
     * options, never NULL when it does (unset flags keep their defaults). */
    int (*restore)(void *inst, arca_feed *feed, const void *ropts);
} arca_source_ops;

/* ---- the descriptor --------------------------------------------------------- */
typedef struct arca_plugin {
    uint32_t abi_major; /* ARCA_ABI_MAJOR: these three fields never move */
    uint32_t abi_minor; /* ARCA_ABI_MINOR */
    uint32_t size;      /* sizeof(arca_plugin) the plugin was built with */
    uint32_t roles;     /* ARCA_ROLE_* */
    const char *name;   /* also the archive namespace of a source */
    const char *version;
    const char *description;

    const arca_option *options; /* config-file options, NULL-terminated */
    size_t config_size;         /* size of the struct the options land in */

    /* Called once per configured section. `config` stays valid until destroy.
     * Must not touch the network or disk beyond what validation needs. */
    int (*create)(const arca_host *host, const void *config, void **inst);
    void (*destroy)(void *inst);

    const arca_source_ops *source;           /* ARCA_ROLE_SOURCE */
    const arca_destination_ops *destination; /* ARCA_ROLE_DESTINATION */

    const arca_option *restore_options; /* `arca restore` flags, NULL-terminated or NULL */
    size_t restore_config_size;
} arca_plugin;

typedef const arca_plugin *(*arca_plugin_entry_fn)(void);

/* Define the entry point: ARCA_PLUGIN_DEFINE(my_descriptor); */
#define ARCA_PLUGIN_DEFINE(desc) \
    ARCA_EXPORT const arca_plugin *arca_plugin_entry(void); \
    ARCA_EXPORT const arca_plugin *arca_plugin_entry(void) { return &(desc); }

#ifdef __cplusplus
}
#endif
#endif
