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
/* The same for a row that arrives in pieces: begin, any number of updates, end. */
int ysql_digest_begin(ysql_hasher *h);
int ysql_digest_update(ysql_hasher *h, const void *data, size_t len);
int ysql_digest_end(ysql_hasher *h, ysql_digest *d);
void ysql_digest_merge(ysql_digest *into, const ysql_digest *add);
/* "sha256-sum128:<32 hex>" (the row count travels separately). */
void ysql_digest_format(const ysql_digest *d, char out[64]);
int ysql_digest_parse(const char *text, ysql_digest *d); /* 0 / -1; rows untouched */

/* ---- SQL text of dump scripts (sqlscan.c) ------------------------------------ */
typedef enum { SQL_END, SQL_WORD, SQL_QUOTED, SQL_STRING, SQL_NUMBER, SQL_PUNCT } sql_kind;
typedef struct sql_tok {
    sql_kind kind;
    const char *p;
    size_t len;
} sql_tok;

/* One statement: [start, end) of the script, ';' included; `meta` for a psql
 * backslash command (one line). Cut where psql cuts: not inside quotes,
 * dollar quotes, comments, parentheses or a BEGIN ATOMIC body. */
typedef struct sql_stmt {
    size_t start, end;
    int meta;
} sql_stmt;
/* The next statement from *pos: 1 and *st filled, 0 at the end. */
int sql_next(const char *text, size_t len, size_t *pos, sql_stmt *st);
/* 1 when `t` is the unquoted keyword `word` (lower case), any case. */
int sql_is(const sql_tok *t, const char *word);
/* The name a word or "quoted" token stands for (unquoted: lower-cased). Caller frees. */
char *sql_ident_value(const sql_tok *t);

/* What a statement is about: the table of CREATE TABLE/INDEX/TRIGGER/POLICY/
 * RULE, ALTER TABLE (the partition of ... ATTACH PARTITION), COMMENT ON,
 * SECURITY LABEL ON, GRANT/REVOKE ON; an index, a sequence, a schema, a
 * database or a large object (SELECT pg_catalog.lo_create, ALTER LARGE
 * OBJECT, COMMENT ON LARGE OBJECT). */
enum { SQL_SUBJ_NONE, SQL_SUBJ_REL, SQL_SUBJ_INDEX, SQL_SUBJ_SEQUENCE, SQL_SUBJ_SCHEMA,
       SQL_SUBJ_DATABASE, SQL_SUBJ_LARGE_OBJECT };
typedef struct sql_subject {
    int kind;
    char *schema; /* NULL when the statement did not qualify the name */
    char *name;   /* large objects: the OID as text */
    char *sub;    /* COMMENT ON COLUMN t.c: c; ON CONSTRAINT/TRIGGER/POLICY/RULE x ON t: x */
} sql_subject;
/* 0 (s->kind SQL_SUBJ_NONE when the statement names none of these), -1 oom. */
int sql_subject_of(const char *stmt, size_t len, sql_subject *s);
void sql_subject_free(sql_subject *s);
/* Whether a post-data statement builds an index that may run on a connection
 * of its own: SQL_BUILD_SHARED for CREATE [UNIQUE] INDEX name ON table (not ON
 * ONLY, not CONCURRENTLY: SHARE lock, other such builds on the table may run
 * alongside), SQL_BUILD_EXCLUSIVE for ALTER TABLE ONLY t ADD CONSTRAINT c
 * PRIMARY KEY|UNIQUE (...) (ACCESS EXCLUSIVE: nothing else on the table
 * meanwhile), SQL_BUILD_NONE for anything else. */
enum { SQL_BUILD_NONE, SQL_BUILD_SHARED, SQL_BUILD_EXCLUSIVE };
int sql_index_build(const char *stmt, size_t len);
/* The role of `ALTER ... OWNER TO role;`, NULL for any other statement (caller frees). */
char *sql_owner_of(const char *stmt, size_t len);
/* Calls add() with each role a GRANT/REVOKE (grantees), ALTER DEFAULT
 * PRIVILEGES (FOR ROLE and grantees), SET SESSION AUTHORIZATION or CREATE
 * POLICY ... TO names (PUBLIC and CURRENT_USER-like words left out). 0 / -1. */
int sql_roles_granted(const char *stmt, size_t len, int (*add)(void *ud, const char *role), void *ud);

/* ---- pg_dump plain scripts (toc.c) --------------------------------------------- */
/* A plain-format script cut at its "-- Name: N; Type: T; Schema: S; Owner: O"
 * headers. The preamble (SET statements, \restrict ...) comes before the first
 * entry and the trailer ("... database dump complete", \unrestrict) after the
 * last; both belong to every filtered script. The header's names are only
 * for messages: entries are matched by the SQL they hold (sqlscan.c). */
typedef struct toc_entry {
    char *name, *type, *schema, *owner; /* as printed in the header ("-" for none) */
    size_t start, end;          /* byte range of the entry, header included */
    int subject_done;           /* subject filled in (toc_entry_subject) */
    sql_subject subject;        /* of the entry's first statement that has one */
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
/* Fills e->subject once. 0 / -1 (oom). */
int toc_entry_subject(const toc_script *s, toc_entry *e);
/* 1 for an entry pg_dump puts in its post-data section (indexes, constraints,
 * triggers, rules, policies, materialized view data, ...), by its type. */
int toc_is_post_data(const toc_script *s, const toc_entry *e);
/* A dump of both sections (--section=pre-data --section=post-data): the
 * index of its first post-data entry (n when there is none). pg_dump sorts
 * every pre-data object before every post-data one, with the ACLs of all of
 * them last. -1 when an entry of a pre-data type follows the cut (the caller
 * then dumps the sections separately). */
long toc_post_data_start(const toc_script *s);
/* 1 for an entry that creates a large object or comments on, labels or grants on one. */
int toc_is_large_object(const toc_script *s, toc_entry *e);

/* Writes the preamble, the entries whose keep[i] is 1 (keep NULL: all), of
 * those whose keep[i] is 2 only their SET statements,
 * and the trailer into out; no_owner drops every ALTER ... OWNER TO
 * statement (as pg_restore --no-owner). Returns the number of entries kept. */
size_t toc_emit(const toc_script *s, const char *keep, int no_owner, pc_buf *out);
/* The same with the entries in transactions of `per_tx` entries each (BEGIN
 * before the first, COMMIT; BEGIN between groups, COMMIT after the last);
 * per_tx 0: none. */
size_t toc_emit_grouped(const toc_script *s, const char *keep, int no_owner, size_t per_tx, pc_buf *out);

/* Calls add(ud, role, use) for every role a script needs: 'o' the owner in
 * an entry's header or an OWNER TO; 'a' one named by an ACL or DEFAULT ACL
 * entry (grantee, grantor, FOR ROLE); 'p' a role of a policy. 0 / -1. */
int toc_roles(const toc_script *s, int (*add)(void *ud, const char *role, char use), void *ud);

/* ---- the table catalog (catalog.c) --------------------------------------------- */
/* What the backup knew about each table it selected: written as
 * schema/catalog.json before anything else and read back first on restore. */
typedef struct cat_table {
    char *schema, *name;
    char kind;        /* 'r' ordinary table or partition, 'p' partitioned table */
    char *parent_schema, *parent_name; /* direct partition parent, or NULL */
    char **columns;   /* copied columns in order (generated and dropped ones left out) */
    char *wide;       /* NULL, or (tables with TOAST data) one letter per column: f fixed
                       * size, t text-like, b bytea, v other variable size */
    char **sequences; /* owned sequences (serial and identity), names in `schema` */
    char **indexes;   /* its indexes, names in `schema` */
    int slices;       /* data objects of the table (0 for 'p') */
    int64_t bytes;    /* on-disk size at backup time, for ordering and progress */
} cat_table;

/* One privilege of the database's ACL (aclexplode). */
typedef struct cat_acl {
    char *grantor, *grantee; /* grantee "" is PUBLIC */
    char *privilege;         /* CONNECT, CREATE, TEMPORARY */
    int grantable;
} cat_acl;

/* ALTER DATABASE ... SET (role NULL) or ALTER ROLE role IN DATABASE ... SET. */
typedef struct cat_setting {
    char *role, *name, *value;
} cat_setting;

typedef struct cat_database {
    int present;            /* format 2 catalogs carry the database's properties */
    char *owner, *comment;  /* comment NULL: none */
    int acl_default;        /* datacl NULL: the default privileges, nothing to grant */
    cat_acl *acl;
    size_t nacl;
    int64_t connlimit;      /* -1: none */
    cat_setting *settings;
    size_t nsettings;
} cat_database;

/* A role the backup names, with what for: o owns objects, a privileges, p
 * policies, d owns the database, s settings; r: roles.sql creates it. */
typedef struct cat_role {
    char *name;
    char uses[8];
} cat_role;

typedef struct cat_index cat_index; /* lookup by name (catalog.c) */

typedef struct catalog {
    int format;             /* 1 (arca before large objects and packs) or 2 */
    cat_table *v;
    size_t n;
    cat_database db;
    cat_role *roles;
    size_t nroles;
    int64_t large_objects;  /* large objects backed up (0: none), -1 for format 1 */
    cat_index *idx;         /* built by cat_find on first use */
} catalog;

/* JSON text of the catalog (caller frees), NULL on oom. */
char *cat_to_json(const catalog *c);
/* Parses what cat_to_json wrote (format 1 or 2). 0 ok, -1 malformed (why in err). */
int cat_from_json(const char *text, size_t len, catalog *c, char *err, size_t errlen);
void cat_free(catalog *c);
void cat_table_free(cat_table *t);
/* The table, by name, through a hash index built on first use (the catalog
 * must not change afterwards). NULL when absent or out of memory. */
cat_table *cat_find(catalog *c, const char *schema, const char *name);
/* The table that owns index (or sequence) schema.name, NULL if none. */
cat_table *cat_find_index(catalog *c, const char *schema, const char *name);
cat_table *cat_find_sequence(catalog *c, const char *schema, const char *name);
/* Adds `use` to role `name` (added when new). 0 / -1 oom. */
int cat_role_use(catalog *c, const char *name, char use);
/* 1 when `s` is in the NULL-terminated list. */
int ysql_strv_has(char *const *v, const char *s);

/* For a table-level restore: 1 when the entry belongs to one of the tables
 * marked in `want` (parallel to c->v): the statement it holds creates,
 * alters, comments on, labels, grants on or indexes that table or one of its
 * owned sequences or indexes. -1 on oom. */
int toc_entry_wanted(const toc_script *s, toc_entry *e, catalog *c, const char *want);

/* One index build of a post-data script that a restore runs on a connection
 * of its own, before the rest of the script (toc_post_split). */
typedef struct toc_build {
    size_t entry;            /* in s->v */
    size_t start, end;       /* the statement, ';' included */
    size_t ts_start, ts_end; /* the SET default_tablespace in effect there (empty: none) */
    cat_table *table;        /* an ordinary table of the catalog */
    int exclusive;           /* ALTER TABLE ... ADD CONSTRAINT: alone on its table */
} toc_build;
/* Picks the index builds of a post-data script that may run in parallel:
 * entries kept (keep[i] == 1; keep not NULL) of type INDEX or CONSTRAINT
 * holding one CREATE INDEX / ADD PRIMARY KEY|UNIQUE (sql_index_build) on an
 * ordinary table of the catalog (not partitioned, not a partition). Their
 * keep[i] become 2: toc_emit then writes only their SET statements, and the
 * rest of the script runs after the builds. `setup` gets the preamble's
 * statements (SETs; psql meta-commands left out) for each build connection.
 * No builds when a preamble statement is not a SET, or a statement anywhere
 * switches roles (SET ROLE / SESSION AUTHORIZATION). 0 / -1 oom. */
int toc_post_split(const toc_script *s, char *keep, catalog *c, pc_buf *setup, toc_build **builds,
                   size_t *nbuilds);

/* ---- database properties and roles on restore (dbprops.c) ------------------------ */
/* SQL that gives database `target` the backed-up owner (unless no_owner),
 * privileges (unless no_privileges), comment, connection limit and
 * settings. Caller frees; NULL on oom. "" when there is nothing to do. */
char *db_props_sql(const cat_database *d, const char *target, int no_owner, int no_privileges);
/* A list-valued setting (search_path, ...) as SQL literals: "'a', 'b'". */
void db_setting_value(pc_buf *b, const char *name, const char *value);

/* The roles the restore needs that `have` (NULL-terminated names) lacks,
 * given the flags; one line per role: "name" (what for). "" when none.
 * Caller frees; NULL on oom. */
char *db_missing_roles(const catalog *c, char *const *have, int no_owner, int no_privileges,
                       int roles_restored, size_t *count);

/* ---- COPY text -> COPY binary (copybin.c) ------------------------------------------ */
/* A restore may send a table's rows in COPY's binary format instead of the
 * archive's text: the server then skips its text parsing (about a fifth of a
 * load's server time on integer and char(n) columns). Only types whose binary
 * form follows from their text without server knowledge are converted; a
 * table with any other column stays in text. */
enum { YCB_BOOL = 1, YCB_INT2, YCB_INT4, YCB_INT8, YCB_TEXT };
/* The kind of a column of type `oid` with `typmod`, and the most bytes one of
 * its values may take in COPY text (*max_text); 0 when not converted: other
 * types, and text or varchar/char without a length (a value of any size would
 * have to be held whole, since its binary form starts with its length). */
int ysql_copybin_kind(unsigned oid, int typmod, size_t *max_text);
typedef struct ysql_copybin ysql_copybin;
/* kinds: one per column, in the COPY's column order (ncols >= 1); max_row:
 * the most bytes a row's text may take (the sum of the columns' max_text).
 * NULL on oom. */
ysql_copybin *ysql_copybin_new(const unsigned char *kinds, size_t ncols, size_t max_row);
/* Converts the next piece of COPY text (rows may span pieces) and appends the
 * binary of every complete row to out (the file header first). 0 ok; -1 bad
 * input (why in err, naming the row and column); a "\." line ends the data
 * (what follows is ignored, as the server does). */
int ysql_copybin_feed(ysql_copybin *c, const char *p, size_t n, pc_buf *out, char *err, size_t errlen);
/* Ends the data: the trailer, or -1 if a row is incomplete. */
int ysql_copybin_end(ysql_copybin *c, pc_buf *out, char *err, size_t errlen);
/* Rows converted so far. */
int64_t ysql_copybin_rows(const ysql_copybin *c);
void ysql_copybin_free(ysql_copybin *c);

#endif
