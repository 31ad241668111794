/* ysql plugin: state shared by the restore orchestration (restore.c) and the
 * parallel loader and verifier (load.c). */
#ifndef YSQL_RESTORE_H
#define YSQL_RESTORE_H

#include "ysql.h"

/* What the restore knows and did about one table of the archive's catalog. */
typedef struct rs_table {
    int want;              /* part of this restore */
    int existed;           /* table-level restore: already in the target (then emptied, not created) */
    int slices_seen;       /* data objects that arrived */
    int64_t rows_expected; /* sum of the slices' row counts in the manifest */
    int64_t rows_loaded;   /* sum of what COPY FROM reported */
    ysql_digest expected;  /* sum of the slices' digests */
    int digest_missing;    /* a slice had no usable digest */
} rs_table;

typedef struct ld_pool ld_pool;

typedef struct rs {
    ysql_inst *yi;
    const arca_host *h;
    arca_feed *feed;
    const ysql_restore_opts *ro;
    ysql_err err;

    const char *target_db;
    char *where;           /* user@host:port/target */
    char *encoding;        /* the archive's client encoding */
    char *psql_path;
    int jobs;
    int table_level;       /* --table, or an archive made with `tables` */
    int target_is_yb;
    int created_db;        /* this restore created (or re-created) the target database */
    int replica_role;      /* loads go into existing tables: skip their triggers and FK checks */
    int schema_applied, tables_loaded, post_applied; /* how far it got, for failure messages */

    catalog cat;
    rs_table *tt;          /* parallel to cat.v */
    char **new_schemas;    /* table-level: schemas of chosen tables the target lacks */
    pthread_mutex_t mu;    /* tt[].rows_loaded */
    ld_pool *pool;
    PGconn *guard;         /* holds the big tables against autovacuum while they load */
} rs;

/* load.c: `jobs` connections each running one COPY ... FROM STDIN at a time.
 * The feed is read by one thread; the chunks of a data object go, in order, to
 * the worker that took its first chunk. A worker takes a new object only once
 * the previous one is complete, so when an archive interleaves more objects
 * than there are workers, the pool opens another connection instead of
 * waiting for chunks that lie further on in the feed. */
int ld_start(rs *r, ld_pool **out);
/* Starts loading object `name` (one slice of table `t`); *slot for ld_chunk. */
int ld_begin(ld_pool *p, size_t t, const char *name, int *slot);
/* Queues one chunk (copied); the last chunk of the object completes it. */
int ld_chunk(ld_pool *p, int slot, const void *data, size_t len, int last);
/* Waits for every queued COPY (0 or the first failure, recorded in r->err). */
int ld_finish(ld_pool *p);
/* Stops at once: pending COPYs are aborted. */
void ld_abort(ld_pool *p);
void ld_free(ld_pool *p);

/* load.c: re-reads every loaded table over `jobs` connections and compares its
 * digest and row count with the backup's. */
int ld_verify(rs *r);

#endif
