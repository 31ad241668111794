/* ysql plugin: state shared by the restore orchestration (restore.c), the
 * schema scripts and the database's properties (rsschema.c) and the parallel
 * loader and verifier (load.c). */
#ifndef YSQL_RESTORE_H
#define YSQL_RESTORE_H

#include "ysql.h"

/* What the restore knows and did about one table of the archive's catalog. */
typedef struct rs_table {
    int want;              /* part of this restore */
    int existed;           /* table-level restore: already in the target (then emptied, not created) */
    int slices_seen;       /* data objects (or pack segments) that arrived */
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
    char *encoding;        /* the archive's data encoding */
    char *psql_path;
    int jobs;
    int table_level;       /* --table, or an archive made with `tables` */
    int target_is_yb;
    int created_db;        /* this restore created (or re-created) the target database */
    int replica_role;      /* loads go into existing tables: skip their triggers and FK checks */
    int schema_applied, tables_loaded, post_applied; /* how far it got, for failure messages */
    int touched;           /* something was written to the target */

    catalog cat;
    rs_table *tt;          /* parallel to cat.v */
    char **new_schemas;    /* table-level: schemas of chosen tables the target lacks */
    pthread_mutex_t mu;    /* tt[].rows_loaded, lo_loaded */
    ld_pool *pool;
    PGconn *guard;         /* holds the big tables against autovacuum while they load */

    int want_lo;           /* the large objects' contents are restored */
    int lo_seen;           /* their object arrived */
    int64_t lo_expected, lo_loaded;
    ysql_digest lo_digest;
} rs;

/* One pack segment: a small table's COPY text and its "\." line. */
typedef struct ld_segment {
    size_t table;
    int64_t rows, bytes;
    int want;
} ld_segment;

/* What a loader connection does with one archive object. */
enum { LD_TABLE, LD_PACK, LD_LARGE_OBJECTS };
typedef struct ld_job {
    int kind;
    size_t table;          /* LD_TABLE */
    const char *name;      /* the object, for messages */
    ld_segment *segs;      /* LD_PACK (copied) */
    size_t nsegs;
    int freeze;            /* LD_TABLE: empty the table and COPY ... FREEZE in one transaction */
} ld_job;

/* load.c: `jobs` connections each running one object at a time. The feed is
 * read by one thread; the chunks of a data object go, in order, to the worker
 * that took its first chunk. A worker takes a new object only once the
 * previous one is complete, so when an archive interleaves more objects than
 * there are workers, the pool opens another connection instead of waiting
 * for chunks that lie further on in the feed. */
int ld_start(rs *r, ld_pool **out);
/* Starts loading an object; *slot for ld_chunk. */
int ld_begin(ld_pool *p, const ld_job *job, int *slot);
/* Queues one chunk (copied); the last chunk of the object completes it. */
int ld_chunk(ld_pool *p, int slot, const void *data, size_t len, int last);
/* Waits for every queued COPY (0 or the first failure, recorded in r->err). */
int ld_finish(ld_pool *p);
/* Stops at once: pending COPYs are aborted. */
void ld_abort(ld_pool *p);
void ld_free(ld_pool *p);

/* load.c: re-reads every loaded table (and the large objects) over `jobs`
 * connections and compares digests and row counts with the backup's. */
int ld_verify(rs *r);

/* rsschema.c: the schema scripts (filtered for a table-level restore,
 * --no-owner, --no-privileges, --no-large-objects) run through the restore
 * command; the post-data's index and constraint builds spread over `jobs`
 * sessions; the database's own properties; the roles check. */
int rs_check_roles(rs *r, PGconn *admin);
int rs_apply_roles(rs *r, const char *script, size_t len);
/* Applies a schema script; post: the post-data, built in parallel. */
int rs_apply_section(rs *r, const pc_buf *script, int post);
/* rspost.c: runs a post-data script's index builds (toc_post_split) on up to
 * `jobs` connections, `setup` first on each. */
int rs_run_builds(rs *r, const toc_script *toc, const char *setup, toc_build *v, size_t n);
int rs_apply_database(rs *r);

#endif
