/* ysql plugin: state shared by the backup orchestration (backup.c) and the
 * parallel data export (export.c). */
#ifndef YSQL_BACKUP_H
#define YSQL_BACKUP_H

#include "ysql.h"

/* One data object: a whole table, or a range of its heap pages. */
typedef struct bk_slice {
    size_t table;       /* index into bk.cat */
    int index, count;   /* slice index and the table's number of slices */
    int64_t from, to;   /* pages [from, to); from < 0: whole table; to < 0: to the end */
    int64_t est;        /* estimated bytes, for ordering */
} bk_slice;

typedef struct bk {
    ysql_inst *yi;
    const arca_host *h;
    arca_sink *sink;
    ysql_err err;

    PGconn *master;     /* holds the snapshot open until the end */
    char *where;        /* user@host:port/db */
    char *version;      /* SELECT version() */
    char *version_short; /* server_version, e.g. "15.18 (Debian ...)" or "15.2-YB-2.25.0.0-b0" */
    int server_num;     /* server_version_num */
    int is_yb;
    char *encoding, *collate, *ctype;
    char *snapshot;     /* exported snapshot id, NULL when reads are pinned by read_time */
    int64_t read_time;  /* YugabyteDB: yb_read_time of every session, 0 when unused */
    int tables_mode;    /* `tables` was given */
    int64_t started;    /* mtime of the objects */

    char *dump_path, *dumpall_path;
    catalog cat;
    uint32_t *oids;     /* parallel to cat.v */

    bk_slice *slices;
    size_t nslices, next;
    pthread_mutex_t mu; /* next, done */
    uint64_t done, total;
} bk;

/* export.c: plans the slices of every table and copies them over `jobs`
 * connections that all read the backup's snapshot. */
int bk_plan_slices(bk *b);
int bk_export_data(bk *b);
/* Joins a session to the backup's snapshot (or read time). */
int bk_join_snapshot(bk *b, PGconn *c);
/* Writes one complete DATA object with string metadata pairs (NULL-terminated). */
int bk_write_object(bk *b, const char *name, const char *data, size_t len,
                    const char *const *meta);

#endif
