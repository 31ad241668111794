/* ysql plugin: shared declarations of the descriptor (plugin.c), connections
 * (conn.c), child processes (proc.c), rows too big for one COPY message
 * (bigrow.c), large objects (lo.c), backup (backup.c, bkcat.c, bkdump.c,
 * export.c) and restore (restore.c, load.c). The libpq-free decisions are in
 * pure.h. */
#ifndef YSQL_H
#define YSQL_H

#include <arca/plugin.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "pc_proc.h"
#include "pure.h"

/* Where the core lands the config-file options (see ysql_options). */
typedef struct ysql_config {
    const char *host;
    int64_t port;
    const char *user;
    const char *password; /* secret */
    const char *dbname;
    int sslmode;          /* index into YSQL_SSLMODES */
    const char *sslrootcert;
    int64_t jobs;
    const char *tables;
    const char *exclude_tables;
    int include_roles;
    int large_objects;
    const char *dump_command;
    const char *dumpall_command;
    const char *restore_command;
    const char *as_of;
    uint64_t slice_size;
    int64_t catalog_retries;
    int64_t connect_timeout;
} ysql_config;

#define YSQL_SSLMODES "disable|allow|prefer|require|verify-ca|verify-full"

/* Where the core lands `arca restore` flags (see ysql_restore_options). */
typedef struct ysql_restore_opts {
    const char *target_database;
    int clean;
    const char *table;
    int drop_on_failure;
    int verify_data;
    int no_roles;
    int no_owner;
    int no_privileges;
    int no_large_objects;
    int64_t jobs;
} ysql_restore_opts;

/* One configured [source] section; read-only after create. */
typedef struct ysql_inst {
    const arca_host *host;
    const ysql_config *cfg;
    int64_t as_of_micros; /* 0 when as_of is unset */
    char **tables;        /* include patterns (NULL-terminated), NULL for all */
    char **exclude;       /* exclude patterns, NULL for none */
} ysql_inst;

/* The first failure of an operation that runs on several threads: later
 * failures (usually consequences) are dropped. */
typedef struct ysql_err {
    pthread_mutex_t mu;
    int code;
    char *msg;
} ysql_err;

void ysql_err_init(ysql_err *e);
void ysql_err_destroy(ysql_err *e);
/* Records (code, message) unless a failure is already recorded; returns code. */
int ysql_fail(ysql_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ysql_failed(ysql_err *e); /* the recorded code, 0 if none */
/* Hands the recorded failure to the host (host->error) and returns its code. */
int ysql_err_report(ysql_err *e, const arca_host *h);

/* ---- conn.c --------------------------------------------------------------------- */
/* "user@host:port/dbname" for messages (caller frees). */
char *ysql_where(const ysql_inst *yi, const char *dbname);
/* Connects to `dbname` (the configured one when NULL). NULL on failure with a
 * message naming the server and a hint recorded in `e` (ARCA_EFAIL). */
PGconn *ysql_connect(const ysql_inst *yi, const char *dbname, ysql_err *e);
/* libpq conninfo for a child process: everything but the password (caller frees). */
char *ysql_child_conninfo(const ysql_inst *yi, const char *dbname, const char *appname);
/* Runs a statement that returns no rows; on failure records `what` and the
 * server's message. */
int ysql_exec(PGconn *c, ysql_err *e, const char *what, const char *sql);
/* Runs a query; NULL on failure (recorded). Caller PQclear()s. */
PGresult *ysql_query(PGconn *c, ysql_err *e, const char *what, const char *sql, int nparams,
                     const char *const *params);
/* The server's error as one trimmed line plus DETAIL/HINT when present (caller frees). */
char *ysql_pg_message(PGconn *c, const PGresult *r);
/* Settings every session uses so that COPY text is the same on both ends:
 * client_encoding UTF8 (the names in SQL; COPY data keeps the database's
 * encoding through its ENCODING option, see ysql_copy_options), DateStyle
 * ISO, IntervalStyle postgres, extra_float_digits 3, TimeZone UTC,
 * bytea_output hex, row_security off, no timeouts. */
int ysql_session_setup(PGconn *c, ysql_err *e);
/* Seconds on a monotonic clock, for the phase times in log lines. */
double ysql_now(void);
/* " (ENCODING 'enc')" for COPY: the data in the database's encoding, byte for
 * byte, whatever the session's client_encoding. */
void ysql_copy_options(pc_buf *b, const char *encoding, int freeze);

/* ---- bigrow.c: rows too big to come through COPY in one message ------------------ */
/* A row whose values add up to more than this (bytea counted twice, its COPY
 * text is hex) is copied value by value, in pieces, instead of by COPY. */
#define YSQL_BIG_ROW ((int64_t)16 << 20)
typedef int (*ysql_write_fn)(void *ud, const void *data, size_t len);
/* The SQL condition true for a row of `t` (t->wide set) bigger than
 * YSQL_BIG_ROW; caller frees. */
char *ysql_big_condition(const cat_table *t);
/* The COPY text line of every row of `t` matching `where` (a condition on the
 * table, "AND"-ed with the big-row condition), made piece by piece: written
 * through write (NULL: only hashed) and added to dg. Memory stays within a
 * few pieces of 16 MiB whatever the row's size. */
int ysql_copy_big_rows(PGconn *c, ysql_err *e, const char *where, const cat_table *t,
                       const char *range, const char *encoding, ysql_hasher *h, ysql_digest *dg,
                       ysql_write_fn write, void *ud);

/* ---- lo.c: large objects --------------------------------------------------------- */
/* Every large object the session sees, as records "<oid> <size>\n<bytes>",
 * each hashed into dg (one "row" per object), through write (NULL: only
 * hashed); *bytes gets the contents' total. */
int ysql_lo_export(PGconn *c, ysql_err *e, const char *where, ysql_hasher *h, ysql_digest *dg,
                   int64_t *bytes, ysql_write_fn write, void *ud);
/* Writes the records of an archive object into the large objects that the
 * pre-data schema created (lo_create), in the session's transaction. */
typedef struct ysql_lo_loader ysql_lo_loader;
ysql_lo_loader *ysql_lo_loader_new(PGconn *c, ysql_err *e, const char *where);
int ysql_lo_loader_feed(ysql_lo_loader *l, const void *data, size_t len);
/* Checks that the last record is complete; *count gets the objects written. */
int ysql_lo_loader_end(ysql_lo_loader *l, int64_t *count);
void ysql_lo_loader_free(ysql_lo_loader *l);

/* ---- proc.c --------------------------------------------------------------------- */
/* One child process run to completion through pc_proc_run: argv (no shell), the
 * password only in its environment as PGPASSWORD, `input` on its stdin (or
 * /dev/null), stdout into `out` (or /dev/null), stderr into `errout` (its first
 * 64 KiB). The child is stopped when host->cancelled() says so. Returns 0 with
 * *status from waitpid, or a negative code (recorded in e). Exit status texts
 * and stderr tails: pc_proc_status_text, pc_proc_err_tail (pc_proc.h). */
int ysql_run(const arca_host *h, ysql_err *e, char *const argv[], const char *password,
             const char *input, size_t input_len, pc_buf *out, pc_buf *errout, int *status);

/* ---- backup.c / restore.c ---------------------------------------------------------- */
int ysql_backup(void *inst, arca_sink *sink);
int ysql_restore(void *inst, arca_feed *feed, const void *ropts);

/* Default command names: the YugabyteDB tool when on PATH, else PostgreSQL's. */
char *ysql_resolve_command(const char *configured, const char *yb_name, const char *pg_name,
                           ysql_err *e, const char *option);

#endif
