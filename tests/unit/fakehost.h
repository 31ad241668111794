/* Fake host for unit-testing plugins without the core: a host table whose sink
 * records everything a source writes, whose feed replays hand-made entries, and
 * which keeps errors per handle as well as per instance. */
#ifndef FAKEHOST_H
#define FAKEHOST_H

#include <arca/plugin.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fh_kv {
    char *key, *value;
} fh_kv;

/* One object a source wrote to the fake sink. All strings and bytes are
 * copies owned by the fakehost. */
typedef struct fh_object {
    arca_object_info info;
    unsigned char *data;
    size_t len, cap;
    fh_kv *meta;
    size_t nmeta;
    int ended;  /* object_end was called */
    int writes; /* object_write calls */
} fh_object;

typedef struct fakehost fakehost;

/* A fresh host; free with fh_free. Logs go to stderr too when $FH_VERBOSE is set. */
fakehost *fh_new(void);
void fh_free(fakehost *fh);

/* What to hand a plugin: the host table, the sink and the feed of this fakehost. */
const arca_host *fh_host(fakehost *fh);
arca_sink *fh_sink(fakehost *fh);
arca_feed *fh_feed(fakehost *fh);

/* ---- what the plugin reported ---- */
int fh_last_code(const fakehost *fh);        /* code of the last host->error, 0 if none */
const char *fh_last_error(const fakehost *fh); /* its message, "" if none */
int fh_error_count(const fakehost *fh);
/* What the plugin reported with handle_error (ABI 1.1) for `handle`: the last
 * message and its code, NULL and 0 if none. Handles are compared by address
 * only, so a message recorded while a put was being committed stays readable
 * after the handle was freed. */
const char *fh_handle_error(const fakehost *fh, const void *handle);
int fh_handle_code(const fakehost *fh, const void *handle);
int fh_handle_error_count(const fakehost *fh); /* handle_error calls in all */
/* Pretend to be a host of ABI 1.minor: 0 drops handle_error (size and
 * abi_minor as a 1.0 core has them), 1 restores it. */
void fh_set_abi_minor(fakehost *fh, unsigned minor);
size_t fh_log_count(const fakehost *fh, int level);
/* The first log line at `level` (-1: any) containing `needle`, or NULL. */
const char *fh_log_find(const fakehost *fh, int level, const char *needle);
uint64_t fh_progress_calls(const fakehost *fh);
/* host->cancelled answers 1 from its (n+1)-th call on; n < 0 never (the default). */
void fh_cancel_after(fakehost *fh, long n);

/* ---- the sink's recording ---- */
size_t fh_object_count(const fakehost *fh);
const fh_object *fh_object_at(const fakehost *fh, size_t i); /* in object_begin order */
const fh_object *fh_object_find(const fakehost *fh, const char *name);
const char *fh_object_meta(const fh_object *o, const char *key); /* NULL if absent */
const char *fh_sink_info_get(const fakehost *fh, const char *key); /* NULL if absent */
size_t fh_open_objects(const fakehost *fh); /* begun but not ended */
/* object_begin fails with `code` from its (n+1)-th call on; n < 0 never. */
void fh_sink_fail_after(fakehost *fh, long n, int code);

/* ---- the feed ---- */
/* Appends one entry, deep-copied (name, link_target, data). `meta` is NULL
 * or a NULL-terminated list of key, value, key, value, ... */
void fh_feed_add(fakehost *fh, const arca_entry *e, const char *const *meta);
/* Shorthands for hand-crafted entries. */
void fh_feed_dir(fakehost *fh, const char *name, uint32_t mode);
void fh_feed_symlink(fakehost *fh, const char *name, const char *target);
/* A whole DATA object as one chunk. */
void fh_feed_file(fakehost *fh, const char *name, uint32_t mode, const void *data, size_t len);
void fh_feed_info_set(fakehost *fh, const char *key, const char *value);
/* feed_next returns `code` instead of its (n+1)-th entry. */
void fh_feed_fail_at(fakehost *fh, size_t n, int code);
/* Replays what `src` recorded, as the core would: sink_info as feed_info,
 * DIR and SYMLINK objects first, then DATA objects in chunks of `chunk_size`
 * bytes (an empty object is one empty chunk); with `interleave`, chunks of
 * all DATA objects are dealt round-robin. */
void fh_feed_from_recording(fakehost *fh, const fakehost *src, size_t chunk_size, int interleave);
size_t fh_feed_remaining(const fakehost *fh);

/* ---- plugins and their config ---- */
/* dlopens $BUILD/plugins/NAME.so (BUILD defaults to "build") and returns its
 * descriptor; *handle is for fh_unload_plugin. NULL (reason on stderr) on failure. */
const arca_plugin *fh_load_plugin(const char *name, void **handle);
void fh_unload_plugin(void *handle);
/* Fills a config struct of `size` bytes from `table` with the core's opt_fill:
 * defaults, then the NULL-terminated key, value, ... list `kv`. Unknown keys,
 * missing required keys and bad values fail: NULL, the reasons in err (joined
 * with "; "). Free with fh_config_free. */
void *fh_config(const arca_option *table, size_t size, const char *const *kv, char *err,
                size_t errlen);
void fh_config_free(const arca_option *table, void *cfg);

#endif
