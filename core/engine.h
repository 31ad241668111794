/* The pipeline engine: backup (sink -> chunk -> compress/hash pool -> ordered tar
 * writer -> every destination) and reading (archive -> checks -> feed or verify). */
#ifndef ARCA_ENGINE_H
#define ARCA_ENGINE_H

#include <jansson.h>

#include "inst.h"
#include "manifest.h"
#include "util.h"

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
    const char *where; /* file path or "destination 'd' (nfs): P.ID.arca" for messages */
    char *(*error)(void *ud); /* message for the last failed read (caller frees) */
    /* optional: skip n bytes without reading them (a seekable file); bytes skipped or -1 */
    int64_t (*skip)(void *ud, int64_t n);
} rd_stream;

/* A file descriptor as an rd_stream (skips by seeking when `seekable`). */
typedef struct fd_stream {
    int fd;
    int err;
} fd_stream;
void fd_stream_init(rd_stream *in, fd_stream *fs, int fd, const char *where, int seekable);

typedef struct read_stats {
    uint64_t members, objects, raw_bytes, stored_bytes, archive_bytes;
} read_stats;

/* Read a whole archive, checking every member against `m` in lockstep: the k-th
 * payload member is the manifest's k-th member (name, size, offset, SHA-256,
 * one zstd frame of the right content size); arca.json equals the manifest's
 * header and MANIFEST.json is the manifest itself. If `target` is given,
 * directories and symlinks, then verified data, are fed to its restore.
 * Returns 0, ARCA_EINTEGRITY (member named in *err) or another status. */
int engine_read(rd_stream *in, manifest *m, inst *target, const void *ropts, read_stats *st, char **err);

/* The same checks in one pass over an archive whose manifest comes last (a
 * pipe): what each member was is kept in a temporary file until MANIFEST.json
 * arrives. With copy_fd >= 0 every byte read is also written there, so that a
 * restore can follow from that copy once everything checked. */
int engine_read_blind(rd_stream *in, int copy_fd, read_stats *st, char **err);

/* In an archive file: arca.json's object, and where MANIFEST.json's bytes are. */
int engine_locate(int fd, const char *where, json_t **header, uint64_t *moff, uint64_t *mlen, char **err);

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
