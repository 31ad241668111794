/* ysql plugin: the decisions that need no server, kept free of libpq so that
 * tests/unit/test_ysql.c can compile them directly: names and quoting,
 * psql-style table patterns, YugabyteDB behaviour, the row digest, pg_dump
 * script sections, and the table catalog. */
#ifndef YSQL_PURE_H
#define YSQL_PURE_H

#include <stddef.h>
#include <stdint.h>

#include "pc_buf.h" /* the growable buffer (plugins/common) */

/* ---- names and quoting (ident.c) --------------------------------------------- */
/* "name" with embedded quotes doubled: always valid SQL, whatever the name. */
void ysql_buf_ident(pc_buf *b, const char *name);
/* 'text' with quotes doubled (standard_conforming_strings on; no E'' needed). */
void ysql_buf_literal(pc_buf *b, const char *text);
/* "schema"."name" as a new string (caller frees), NULL on oom. */
char *ysql_qualified(const char *schema, const char *name);
/* Appends `key='value'` to a libpq conninfo string (quotes and backslashes escaped). */
void ysql_buf_conninfo(pc_buf *b, const char *key, const char *value);

/* Parses `schema.name` the way psql and pg_dump read a name: unquoted parts are
 * folded to lower case, "quoted" parts are taken literally ("" is a quote).
 * Without a dot *schema is NULL. 0 ok, -1 malformed (why in err). */
int ysql_parse_qualified(const char *text, char **schema, char **name, char *err, size_t errlen);

/* psql/pg_dump table pattern -> two anchored POSIX regexes for nspname and relname
 * (*schema_re NULL when the pattern has no schema part: then only tables visible
 * in search_path match, as in pg_dump). Unquoted: lower-cased, * -> .*, ? -> .,
 * $ literal, other regex syntax kept; quoted: literal. 0 ok, -1 (err). */
int ysql_pattern_regex(const char *pattern, char **schema_re, char **name_re, char *err,
                       size_t errlen);

/* Splits a comma-separated list (commas inside "..." do not split; items are
 * trimmed; empty items dropped). Returns the count, -1 on oom or an unbalanced
 * quote; *items is a NULL-terminated array the caller frees with ysql_strv_free. */
int ysql_split_list(const char *list, char ***items);
void ysql_strv_free(char **v);

/* One archive path component for a table: schema.name with every byte outside
 * [A-Za-z0-9_-] written %XX, so the dot between the two is unambiguous and no
 * name can produce '/', "..", or a control character. Caller frees. */
char *ysql_object_component(const char *schema, const char *name);

/* ---- YugabyteDB behaviour (yb.c) ---------------------------------------------- */
/* 1 when a `SELECT version()` string is YugabyteDB's ("PostgreSQL 15.2-YB-2.25.0.0-b0 ..."). */
int ybx_is_yugabyte(const char *version);

/* as_of as given in the config: microseconds since the Unix epoch (digits,
 * at least 13 of them so that seconds or milliseconds are not mistaken for
 * microseconds) or an ISO-8601 UTC time `YYYY-MM-DD[T ]HH:MM:SS[.ffffff](Z|+00[:00])`.
 * 0 ok, -1 with the reason in err. */
int ybx_parse_as_of(const char *text, int64_t *micros, char *err, size_t errlen);

/* The statement that pins a YugabyteDB session's reads to one time (caller frees). */
char *ybx_read_time_sql(int64_t micros);

/* The error for as_of on a server that is not YugabyteDB (NULL when as_of is
 * fine there). `where` names the server; caller frees. */
char *ybx_as_of_refusal(int is_yb, const char *as_of, const char *where, const char *version);

/* Extra dump-command arguments: YugabyteDB gets --include-yb-metadata and, with
 * a read time, --read-time=MICROS; a snapshot id gives --snapshot=ID. Fills at
 * most `cap` new strings into args (caller frees each); returns the count. */
int ybx_dump_args(int is_yb, int64_t read_time_micros, const char *snapshot, char **args,
                  int cap);

/* What a catalog-version change means for the backup. */
typedef enum { YBX_CATALOG_OK, YBX_CATALOG_RETRY, YBX_CATALOG_FAIL } ybx_catalog_verdict;
typedef enum {
    YBX_PHASE_SCHEMA, /* the schema was dumped but nothing written yet: can retry */
    YBX_PHASE_DATA    /* data is already in the archive: can only fail */
} ybx_phase;
/* attempt counts from 1; max_retries is how many extra schema attempts are allowed. */
ybx_catalog_verdict ybx_catalog_check(int64_t before, int64_t after, ybx_phase phase, int attempt,
                                      int max_retries);
/* The message for a FAIL verdict (caller frees). */
char *ybx_catalog_message(int64_t before, int64_t after, ybx_phase phase, int attempts);

/* ---- row digest (digest.c) ------------------------------------------------------ */
/* Order-independent table digest: the sum modulo 2^128 of the first 16 bytes
 * (big-endian) of SHA-256 of every row's COPY text line, newline included. A
 * multiset hash: duplicates count, slices add up, row order does not matter. */
typedef struct ysql_digest {
    uint64_t hi, lo;
    int64_t rows;
} ysql_digest;

typedef struct ysql_hasher ysql_hasher; /* one per thread */
ysql_hasher *ysql_hasher_new(void);
void ysql_hasher_free(ysql_hasher *h);
int ysql_digest_row(ysql_hasher *h, ysql_digest *d, const void *row, size_t len); /* 0 / -1 */
void ysql_digest_merge(ysql_digest *into, const ysql_digest *add);
/* "sha256-sum128:<32 hex>" (the row count travels separately). */
void ysql_digest_format(const ysql_digest *d, char out[64]);
int ysql_digest_parse(const char *text, ysql_digest *d); /* 0 / -1; rows untouched */

/* ---- pg_dump plain scripts (toc.c) --------------------------------------------- */
/* A plain-format script cut at its "-- Name: N; Type: T; Schema: S; Owner: O"
 * headers. The preamble (SET statements, \restrict ...) comes before the first
 * entry and the trailer ("... database dump complete", \unrestrict) after the
 * last; both belong to every filtered script. */
typedef struct toc_entry {
    char *name, *type, *schema; /* as printed in the header ("-" for none) */
    size_t start, end;          /* byte range of the entry, header included */
} toc_entry;

typedef struct toc_script {
    const char *text;
    size_t len;
    size_t preamble_end, trailer_start;
    toc_entry *v;
    size_t n;
} toc_script;

int toc_parse(const char *text, size_t len, toc_script *out); /* 0 / -1 (oom) */
void toc_free(toc_script *s);

/* ---- the table catalog (catalog.c) --------------------------------------------- */
/* What the backup knew about each table it selected: written as
 * schema/catalog.json before anything else and read back first on restore. */
typedef struct cat_table {
    char *schema, *name;
    char kind;        /* 'r' ordinary table or partition, 'p' partitioned table */
    char *parent_schema, *parent_name; /* direct partition parent, or NULL */
    char **columns;   /* copied columns in order (generated and dropped ones left out) */
    char **sequences; /* owned sequences (serial and identity), names in `schema` */
    char **indexes, **constraints, **triggers, **policies, **rules;
    int slices;       /* data objects of the table (0 for 'p') */
    int64_t bytes;    /* on-disk size at backup time, for ordering and progress */
} cat_table;

typedef struct catalog {
    cat_table *v;
    size_t n;
} catalog;

/* JSON text of the catalog (caller frees), NULL on oom. */
char *cat_to_json(const catalog *c);
/* Parses what cat_to_json wrote. 0 ok, -1 malformed (why in err). */
int cat_from_json(const char *text, size_t len, catalog *c, char *err, size_t errlen);
void cat_free(catalog *c);
cat_table *cat_find(const catalog *c, const char *schema, const char *name);
/* 1 when `s` is in the NULL-terminated list. */
int ysql_strv_has(char *const *v, const char *s);

/* For a table-level restore: 1 when the entry belongs to one of the tables
 * marked in `want` (parallel to c->v), i.e. it creates, alters, comments,
 * grants on or indexes that table or one of its owned sequences. */
int toc_entry_wanted(const toc_entry *e, const catalog *c, const char *want);

#endif
