/* ysql plugin: state shared by the backup orchestration (backup.c), the
 * catalog reading (bkcat.c), the schema dump (bkdump.c) and the parallel data
 * export (export.c, with bigrow.c and lo.c). */
#ifndef YSQL_BACKUP_H
#define YSQL_BACKUP_H

#include "ysql.h"

/* One data object: a whole table, a range of its heap pages, a pack of small
 * tables, or the large objects. */
enum { BK_TABLE, BK_PACK, BK_LARGE_OBJECTS };
typedef struct bk_slice {
    int kind;
    size_t table;       /* BK_TABLE: index into bk.cat */
    int index, count;   /* slice index and the table's number of slices (BK_PACK: pack number) */
    int64_t from, to;   /* pages [from, to); from < 0: whole table; to < 0: to the end */
    int64_t est;        /* estimated bytes, for ordering */
    size_t *tables;     /* BK_PACK: the tables, in order */
    size_t ntables;
    int taken;          /* a worker has it (under bk.mu) */
} bk_slice;

/* A pack exported while the schema dump still runs: the archive cannot take
 * data before the pre-data script, so its bytes wait here (bounded). */
typedef struct bk_spool {
    size_t slice;
    pc_buf data;
    char *segments;
    int64_t rows;
} bk_spool;

/* A schema dump run by a thread (pre-data and post-data at once, or one section). */
typedef struct bk_dump {
    struct bk *b;
    const char *what; /* "schema", "pre-data", "post-data", "roles" */
    char **argv;
    pc_buf out;
    pthread_t th;
    int started;
    double t_start, t_end; /* the tool's run, for the phase times */
} bk_dump;

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
    int64_t *toast;     /* parallel to cat.v: TOAST bytes (values stored out of line) */
    int64_t large_objects; /* to back up (0: none or left out) */

    bk_dump dumps[4];
    int ndumps;
    int64_t cv_before, catalog_version; /* YugabyteDB: around the schema dump */
    char *pre, *post;   /* the schema scripts */
    size_t pre_len, post_len;

    bk_slice *slices;
    size_t nslices, next;
    pthread_mutex_t mu; /* next, taken, done, spools, spooled, archive_open, stopping */
    pthread_cond_t cv;  /* archive_open, stopping or a failure */
    uint64_t done, total;
    int archive_open;   /* pre-data written: data objects may follow */
    int stopping;       /* a failure: workers stop, even waiting ones */
    bk_spool *spools;
    size_t nspools, spooled; /* spooled: bytes held */
    struct bk_workers *workers;
    double t0, t_catalog, t_dump, t_data; /* phase end times, for the summary */
    double t_dump_run[2];                 /* the schema dump tool's start and end, from t0 */
} bk;

/* bkcat.c: the selected tables (in the snapshot), their locks, the database's
 * properties, large objects and the roles the backup names. */
int bk_read_catalog(bk *b);
int bk_lock_tables(bk *b);
int bk_read_database(bk *b);
int bk_count_large_objects(bk *b);
int bk_collect_roles(bk *b);
/* The hint for a lock table that is too small for this backup. */
void bk_lock_hint(bk *b, pc_buf *hint);
/* "(FALSE OR (nspname ~ $1 AND relname ~ $2) ...)" over the patterns. */
int bk_pattern_sql(bk *b, char **patterns, pc_buf *sql, char ***params, int *np, const char *none);

/* bkdump.c: the schema dump. Started as early as its arguments are known
 * (right after the snapshot for a full backup), waited for, then cut into
 * the pre-data and post-data scripts (b->pre, b->post). */
int bk_dump_needs_catalog(const bk *b);
int bk_dump_start(bk *b);
int bk_dump_finish(bk *b);
/* YugabyteDB: yb_catalog_version() in the master session. */
int bk_catalog_version(bk *b, int64_t *v);
void bk_dump_free_all(bk *b);

/* export.c: plans the data objects (slices of big tables, packs of small
 * ones, the large objects) and copies them over `jobs` connections that all
 * read the backup's snapshot. */
int bk_plan_slices(bk *b);
/* Starts the workers: while the archive is not open they spool packs of small
 * tables (up to a memory budget); bk_export_data opens it, writes what they
 * spooled and waits for everything else. */
int bk_export_start(bk *b);
int bk_export_data(bk *b);
/* Stops and joins workers started by bk_export_start (failure paths). */
void bk_export_stop(bk *b);
/* Joins a session to the backup's snapshot (or read time) in a new transaction. */
int bk_join_snapshot(bk *b, PGconn *c);
/* Writes one complete DATA object with string metadata pairs (NULL-terminated). */
int bk_write_object(bk *b, const char *name, const char *data, size_t len,
                    const char *const *meta);

#endif
