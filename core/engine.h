/* The pipeline engine: backup (sink -> chunk -> compress/hash pool -> ordered tar
 * writer -> every destination) and reading (archive -> checks -> feed or verify). */
#ifndef ARCA_ENGINE_H
#define ARCA_ENGINE_H

#include <jansson.h>

#include "inst.h"
#include "manifest.h"

typedef struct pipeline {
    char *name;
    inst *source;
    inst **dests;
    size_t ndests;
    int level;           /* zstd level */
    uint64_t chunk_size; /* raw bytes per member */
    int workers;         /* compression/hash threads */
} pipeline;

typedef struct backup_result {
    char id[64];
    uint64_t archive_bytes, raw_bytes, stored_bytes;
    size_t objects, members;
    double seconds;
} backup_result;

/* Run a backup. 0 and *r filled, or a negative status and *err (caller frees). */
int engine_backup(pipeline *p, backup_result *r, char **err);

/* A sequential byte source for reading an archive. */
typedef struct rd_stream {
    int (*read)(void *ud, void *buf, size_t cap, size_t *got); /* 0 ok, <0 error with *err set by ud */
    void *ud;
    const char *where; /* file path or "destination 'd' object X" for messages */
    char *(*error)(void *ud); /* message for the last failed read (caller frees) */
} rd_stream;

typedef struct read_stats {
    uint64_t members, objects, raw_bytes, stored_bytes, archive_bytes;
} read_stats;

/* Read a whole archive, checking every member against `m`: name, no links,
 * no duplicates, size, SHA-256, zstd content size; the embedded manifest must
 * equal `m`. If `target` is given, verified data is fed to its restore.
 * Returns 0, ARCA_EINTEGRITY (member named in *err) or another status. */
int engine_read(rd_stream *in, manifest *m, inst *target, const void *ropts, read_stats *st, char **err);

/* Scan an archive for its arca.json and MANIFEST.json without checking data
 * (skips payload; seeks when the stream is a file). */
int engine_scan_file(const char *path, json_t **header, char **manifest_text, size_t *manifest_len, char **err);

/* Host-table entry points (inst.c wires them into every host table). */
int engine_sink_info(arca_sink *s, const char *key, const char *value);
int engine_object_begin(arca_sink *s, const arca_object_info *info, arca_object **out);
int engine_object_write(arca_object *o, const void *buf, size_t len);
int engine_object_meta(arca_object *o, const char *key, const char *value);
int engine_object_meta_int(arca_object *o, const char *key, int64_t value);
int engine_object_end(arca_object *o);
int engine_feed_next(arca_feed *f, arca_entry *e);
const char *engine_feed_meta(arca_feed *f, const char *key);
const char *engine_feed_info(arca_feed *f, const char *key);
void engine_progress_hint(uint64_t done, uint64_t total);

/* Progress line on stderr (only when it is a TTY and not quiet). */
void progress_start(const char *what);
void progress_add(uint64_t bytes);
void progress_end(void);

/* New backup id: UTC time plus random suffix, sortable. */
void backup_new_id(char *buf, size_t n, int64_t when, int ms);

#endif
