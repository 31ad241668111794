/* ysql plugin: backup. One "master" session opens a REPEATABLE READ READ ONLY
 * transaction and exports its snapshot (YugabyteDB: or pins every session to
 * one yb_read_time); the table list, the schema dumps (--snapshot), the
 * sequence values and every data COPY read that one snapshot. Objects, in
 * archive order: schema/catalog.json, roles.sql, schema/pre-data.sql,
 * data/<schema>.<table>/part-NNNN..., schema/sequences.json, schema/post-data.sql. */
#include "backup.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- connection facts and the snapshot ---------------------------------------------- */

static int bk_server_facts(bk *b)
{
    PGresult *r = ysql_query(b->master, &b->err, "cannot read the server version",
                             "SELECT pg_catalog.version(), "
                             "pg_catalog.current_setting('server_version_num')::int, "
                             "pg_catalog.current_setting('server_version'), "
                             "pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype "
                             "FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()",
                             0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ysql_fail(&b->err, ARCA_EFAIL, "%s: cannot find the current database in pg_database",
                         b->where);
    }
    b->version = strdup(PQgetvalue(r, 0, 0));
    b->server_num = atoi(PQgetvalue(r, 0, 1));
    b->version_short = strdup(PQgetvalue(r, 0, 2));
    b->encoding = strdup(PQgetvalue(r, 0, 3));
    b->collate = strdup(PQgetvalue(r, 0, 4));
    b->ctype = strdup(PQgetvalue(r, 0, 5));
    PQclear(r);
    if (!b->version || !b->version_short || !b->encoding || !b->collate || !b->ctype)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    b->is_yb = ybx_is_yugabyte(b->version);
    return ARCA_OK;
}

static int bk_set_read_time(bk *b, PGconn *c)
{
    char *sql = ybx_read_time_sql(b->read_time);
    if (!sql)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int rc = ysql_exec(c, &b->err, "cannot set yb_read_time (is the time within the history "
                       "retention interval, and after the last DDL?)", sql);
    free(sql);
    return rc;
}

int bk_join_snapshot(bk *b, PGconn *c)
{
    if (b->read_time && bk_set_read_time(b, c) < 0)
        return ysql_failed(&b->err);
    int rc = ysql_exec(c, &b->err, "cannot start the export transaction",
                       "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    if (rc == ARCA_OK && b->snapshot) {
        pc_buf sql = {0};
        pc_buf_str(&sql, "SET TRANSACTION SNAPSHOT ");
        ysql_buf_literal(&sql, b->snapshot);
        char *s = pc_buf_take(&sql);
        rc = s ? ysql_exec(c, &b->err, "cannot import the backup's snapshot", s)
               : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        free(s);
    }
    return rc;
}

/* PostgreSQL: export the master's snapshot. YugabyteDB: as_of pins every
 * session to that time; otherwise the snapshot is exported too (YugabyteDB
 * 2.25 supports it when ysql_enable_pg_export_snapshot is on) and, when the
 * server refuses, every session reads at the time the backup started. */
static int bk_open_snapshot(bk *b)
{
    const arca_host *h = b->h;
    if (b->is_yb && b->yi->as_of_micros) {
        b->read_time = b->yi->as_of_micros;
        return bk_join_snapshot(b, b->master);
    }
    if (ysql_exec(b->master, &b->err, "cannot start the backup transaction",
                  "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") < 0)
        return ysql_failed(&b->err);
    PGresult *r = PQexec(b->master, "SELECT pg_catalog.pg_export_snapshot()");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        b->snapshot = strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        return b->snapshot ? ARCA_OK : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    char *m = ysql_pg_message(b->master, r);
    PQclear(r);
    if (!b->is_yb) {
        int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: cannot export a snapshot: %s", b->where,
                           m ? m : "out of memory");
        free(m);
        return rc;
    }
    h->log(h, ARCA_LOG_INFO, "%s: pg_export_snapshot() refused (%s); every session reads at the "
           "backup's start time instead", b->where, m ? m : "?");
    free(m);
    PQclear(PQexec(b->master, "ROLLBACK"));
    r = ysql_query(b->master, &b->err, "cannot read the server clock",
                   "SELECT (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    b->read_time = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return bk_join_snapshot(b, b->master);
}

/* ---- the table catalog ----------------------------------------------------------------- */

/* "(cond) OR (cond) ..." over the patterns, parameters appended to params. */
static int pattern_sql(bk *b, char **patterns, pc_buf *sql, char ***params, int *np,
                       const char *none)
{
    if (!patterns) {
        pc_buf_str(sql, none);
        return ARCA_OK;
    }
    pc_buf_str(sql, "(FALSE");
    for (char **p = patterns; *p; p++) {
        char *s = NULL, *t = NULL, err[256];
        if (ysql_pattern_regex(*p, &s, &t, err, sizeof err) < 0)
            return ysql_fail(&b->err, ARCA_ECONFIG, "%s", err);
        char **v = realloc(*params, (size_t)(*np + 3) * sizeof *v);
        if (!v) {
            free(s);
            free(t);
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        }
        *params = v;
        if (s) {
            v[(*np)++] = s;
            v[(*np)++] = t;
            pc_buf_printf(sql, " OR (nspname ~ $%d AND relname ~ $%d)", *np - 1, *np);
        } else {
            v[(*np)++] = t;
            pc_buf_printf(sql, " OR (pg_catalog.pg_table_is_visible(oid) AND relname ~ $%d)", *np);
        }
    }
    pc_buf_str(sql, ")");
    return ARCA_OK;
}

static const char CATALOG_SELECT[] =
    "SELECT pg_catalog.json_build_object("
    " 'oid', c.oid::pg_catalog.int8, 'schema', n.nspname, 'name', c.relname, 'kind', c.relkind,"
    " 'parent_schema', pn.nspname, 'parent_name', pc.relname,"
    " 'bytes', CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_relation_size(c.oid) ELSE 0 END,"
    " 'columns', (SELECT coalesce(pg_catalog.json_agg(a.attname ORDER BY a.attnum), '[]')"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
    "   AND NOT a.attisdropped AND a.attgenerated = ''),"
    " 'sequences', (SELECT coalesce(pg_catalog.json_agg(s.relname ORDER BY s.relname), '[]')"
    "   FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid"
    "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = c.oid"
    "   AND d.deptype IN ('a', 'i') AND s.relkind = 'S'),"
    " 'indexes', (SELECT coalesce(pg_catalog.json_agg(i.relname ORDER BY i.relname), '[]')"
    "   FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid"
    "   WHERE x.indrelid = c.oid),"
    " 'constraints', (SELECT coalesce(pg_catalog.json_agg(conname ORDER BY conname), '[]')"
    "   FROM pg_catalog.pg_constraint WHERE conrelid = c.oid),"
    " 'triggers', (SELECT coalesce(pg_catalog.json_agg(tgname ORDER BY tgname), '[]')"
    "   FROM pg_catalog.pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal),"
    " 'policies', (SELECT coalesce(pg_catalog.json_agg(polname ORDER BY polname), '[]')"
    "   FROM pg_catalog.pg_policy WHERE polrelid = c.oid),"
    " 'rules', (SELECT coalesce(pg_catalog.json_agg(rulename ORDER BY rulename), '[]')"
    "   FROM pg_catalog.pg_rewrite WHERE ev_class = c.oid AND rulename <> '_RETURN')"
    ")::text"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_inherits ih ON c.relispartition AND ih.inhrelid = c.oid"
    " LEFT JOIN pg_catalog.pg_class pc ON pc.oid = ih.inhparent"
    " LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace"
    " WHERE c.oid IN (SELECT oid FROM selx) AND c.oid NOT IN (SELECT oid FROM excx)"
    " ORDER BY n.nspname, c.relname";

static char **json_names(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    char **v = calloc(json_array_size(a) + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        if (!(v[i] = strdup(json_is_string(x) ? json_string_value(x) : ""))) {
            ysql_strv_free(v);
            return NULL;
        }
    }
    return v;
}

static char *json_dupstr(json_t *o, const char *key)
{
    json_t *s = json_object_get(o, key);
    return json_is_string(s) ? strdup(json_string_value(s)) : NULL;
}

static int bk_table_from_json(bk *b, const char *text, cat_table *t, uint32_t *oid)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!o)
        return ysql_fail(&b->err, ARCA_EFAIL, "%s: unreadable table catalog row: %s", b->where, je.text);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    *oid = (uint32_t)json_integer_value(json_object_get(o, "oid"));
    t->schema = json_dupstr(o, "schema");
    t->name = json_dupstr(o, "name");
    t->kind = kind ? kind[0] : 'r';
    t->parent_schema = json_dupstr(o, "parent_schema");
    t->parent_name = json_dupstr(o, "parent_name");
    t->bytes = (int64_t)json_integer_value(json_object_get(o, "bytes"));
    t->columns = json_names(o, "columns");
    t->sequences = json_names(o, "sequences");
    t->indexes = json_names(o, "indexes");
    t->constraints = json_names(o, "constraints");
    t->triggers = json_names(o, "triggers");
    t->policies = json_names(o, "policies");
    t->rules = json_names(o, "rules");
    json_decref(o);
    if (!t->schema || !t->name || !t->columns || !t->sequences || !t->indexes || !t->constraints ||
        !t->triggers || !t->policies || !t->rules)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    return ARCA_OK;
}

static int bk_read_catalog(bk *b)
{
    pc_buf sql = {0};
    char **params = NULL;
    int np = 0, rc;
    pc_buf_str(&sql,
        "WITH cand AS (SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'"
        " AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid"
        "  AND d.deptype = 'e')),"
        " sel AS (SELECT oid FROM cand WHERE ");
    rc = pattern_sql(b, b->yi->tables, &sql, &params, &np, "TRUE");
    pc_buf_str(&sql, "), exc AS (SELECT oid FROM cand WHERE ");
    if (rc == ARCA_OK)
        rc = pattern_sql(b, b->yi->exclude, &sql, &params, &np, "FALSE");
    pc_buf_str(&sql,
        "), selx AS (SELECT oid FROM sel UNION"
        "  SELECT t.relid FROM sel, pg_catalog.pg_partition_tree(sel.oid) t),"
        " excx AS (SELECT oid FROM exc UNION"
        "  SELECT t.relid FROM exc, pg_catalog.pg_partition_tree(exc.oid) t) ");
    pc_buf_str(&sql, CATALOG_SELECT);
    char *q = pc_buf_take(&sql);
    PGresult *r = NULL;
    if (rc == ARCA_OK && !q)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK)
        r = ysql_query(b->master, &b->err, "cannot list the tables", q, np,
                       (const char *const *)params);
    free(q);
    for (int i = 0; i < np; i++)
        free(params[i]);
    free(params);
    if (rc != ARCA_OK || !r)
        return ysql_failed(&b->err);
    int n = PQntuples(r);
    b->cat.v = calloc((size_t)n + 1, sizeof *b->cat.v);
    b->oids = calloc((size_t)n + 1, sizeof *b->oids);
    if (!b->cat.v || !b->oids) {
        PQclear(r);
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n && rc == ARCA_OK; i++) {
        rc = bk_table_from_json(b, PQgetvalue(r, i, 0), &b->cat.v[i], &b->oids[i]);
        b->cat.n++;
    }
    PQclear(r);
    if (rc == ARCA_OK && b->tables_mode && b->cat.n == 0)
        return ysql_fail(&b->err, ARCA_ECONFIG, "%s: no table matches tables = %s%s%s", b->where,
                         b->yi->cfg->tables, b->yi->cfg->exclude_tables ? " (after exclude_tables = " : "",
                         b->yi->cfg->exclude_tables ? b->yi->cfg->exclude_tables : "");
    return rc;
}

/* pg_dump takes the same locks; they keep a concurrent DROP or ALTER from
 * pulling a table away between the snapshot and its COPY. YugabyteDB guards
 * against DDL with the catalog version instead. */
static int bk_lock_tables(bk *b)
{
    if (b->is_yb)
        return ARCA_OK;
    for (size_t i = 0; i < b->cat.n;) {
        pc_buf sql = {0};
        pc_buf_str(&sql, "LOCK TABLE ");
        for (size_t k = 0; i < b->cat.n && k < 500; i++, k++) {
            if (k)
                pc_buf_str(&sql, ", ");
            ysql_buf_ident(&sql, b->cat.v[i].schema);
            pc_buf_str(&sql, ".");
            ysql_buf_ident(&sql, b->cat.v[i].name);
        }
        pc_buf_str(&sql, " IN ACCESS SHARE MODE");
        char *s = pc_buf_take(&sql);
        int rc = s ? ysql_exec(b->master, &b->err, "cannot lock the tables", s)
                   : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        free(s);
        if (rc < 0)
            return rc;
    }
    return ARCA_OK;
}

/* Large objects are data pg_dump keeps outside tables; this plugin does not
 * carry them (YugabyteDB has none). Say so rather than restore them empty. */
static void bk_warn_large_objects(bk *b)
{
    if (b->is_yb || b->tables_mode)
        return;
    PGresult *r = PQexec(b->master, "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0"))
        b->h->log(b->h, ARCA_LOG_WARN, "%s holds %s large objects: their contents are not backed up "
                  "(use pg_dump for them)", b->where, PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* ---- schema dumps --------------------------------------------------------------------- */

typedef struct bk_dump {
    bk *b;
    const char *what; /* "pre-data", "post-data", "roles" */
    char **argv;
    pc_buf out;
    pthread_t th;
    int started;
} bk_dump;

static void *bk_dump_run(void *arg)
{
    bk_dump *d = arg;
    bk *b = d->b;
    pc_buf errout = {0};
    int status = 0;
    int rc = ysql_run(b->h, &b->err, d->argv, b->yi->cfg->password, NULL, 0, &d->out, &errout,
                      &status);
    if (rc == ARCA_OK && status != 0) {
        char st[64];
        pc_proc_status_text(status, st, sizeof st);
        char *tail = pc_proc_err_tail(&errout, 1500);
        const char *hint = tail && strstr(tail, "server version mismatch")
                               ? "\nhint: set dump_command to a dump tool of the server's major version"
                               : "";
        ysql_fail(&b->err, ARCA_EFAIL, "%s: %s (%s dump) failed with %s: %s%s", b->where, d->argv[0],
                  d->what, st, tail ? tail : "", hint);
        free(tail);
    } else if (rc == ARCA_OK && errout.len) {
        char *tail = pc_proc_err_tail(&errout, 1000);
        b->h->log(b->h, ARCA_LOG_WARN, "%s (%s dump) said: %s", d->argv[0], d->what, tail ? tail : "");
        free(tail);
    }
    pc_buf_free(&errout);
    return NULL;
}

static void bk_dump_free(bk_dump *d)
{
    ysql_strv_free(d->argv);
    pc_buf_free(&d->out);
}

/* argv of one dump: tool, fixed flags, YugabyteDB flags, table selection, -d conninfo. */
static int bk_dump_argv(bk *b, bk_dump *d, const char *section)
{
    size_t cap = 16 + b->cat.n;
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    size_t n = 0;
    int oom = 0;
#define ADD(s) do { if (!(v[n++] = (s))) oom = 1; } while (0)
    if (section) {
        ADD(strdup(b->dump_path));
        pc_buf sec = {0};
        pc_buf_printf(&sec, "--section=%s", section);
        ADD(pc_buf_take(&sec));
        ADD(strdup("--no-password"));
        n += (size_t)ybx_dump_args(b->is_yb, b->read_time, b->snapshot, v + n, 3);
        for (size_t i = 0; i < b->cat.n && b->tables_mode; i++) {
            pc_buf t = {0};
            pc_buf_str(&t, "--table=");
            ysql_buf_ident(&t, b->cat.v[i].schema);
            pc_buf_str(&t, ".");
            ysql_buf_ident(&t, b->cat.v[i].name);
            ADD(pc_buf_take(&t));
        }
    } else {
        ADD(strdup(b->dumpall_path));
        ADD(strdup("--roles-only"));
        ADD(strdup("--no-role-passwords"));
        ADD(strdup("--no-password"));
    }
    ADD(strdup(section ? "-d" : "--dbname"));
    ADD(ysql_child_conninfo(b->yi, NULL, "arca-dump"));
#undef ADD
    d->argv = v;
    return oom ? ysql_fail(&b->err, ARCA_ENOMEM, "out of memory") : ARCA_OK;
}

/* Full mode with exclude_tables: the excluded tables are named to the dump tool. */
static int bk_exclude_argv(bk *b, bk_dump *d)
{
    if (b->tables_mode || !b->yi->exclude)
        return ARCA_OK;
    PGresult *r = NULL;
    pc_buf sql = {0};
    char **params = NULL;
    int np = 0;
    pc_buf_str(&sql,
        "WITH cand AS (SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'),"
        " exc AS (SELECT oid FROM cand WHERE ");
    int rc = pattern_sql(b, b->yi->exclude, &sql, &params, &np, "FALSE");
    pc_buf_str(&sql, "), excx AS (SELECT oid FROM exc UNION"
                       " SELECT t.relid FROM exc, pg_catalog.pg_partition_tree(exc.oid) t)"
                       " SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
                       " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                       " WHERE c.oid IN (SELECT oid FROM excx)");
    char *q = pc_buf_take(&sql);
    if (rc == ARCA_OK && q)
        r = ysql_query(b->master, &b->err, "cannot list the excluded tables", q, np,
                       (const char *const *)params);
    free(q);
    for (int i = 0; i < np; i++)
        free(params[i]);
    free(params);
    if (!r)
        return ysql_failed(&b->err) ? ysql_failed(&b->err) : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    size_t have = 0;
    while (d->argv[have])
        have++;
    int nx = PQntuples(r);
    char **v = realloc(d->argv, (have + (size_t)nx + 1) * sizeof *v);
    if (!v) {
        PQclear(r);
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    d->argv = v;
    /* keep "-d conninfo" last */
    char *dflag = v[have - 2], *conn = v[have - 1];
    have -= 2;
    for (int i = 0; i < nx; i++) {
        pc_buf t = {0};
        pc_buf_str(&t, "--exclude-table=");
        ysql_buf_ident(&t, PQgetvalue(r, i, 0));
        pc_buf_str(&t, ".");
        ysql_buf_ident(&t, PQgetvalue(r, i, 1));
        v[have++] = pc_buf_take(&t);
    }
    v[have++] = dflag;
    v[have++] = conn;
    v[have] = NULL;
    PQclear(r);
    return ARCA_OK;
}

static int bk_catalog_version(bk *b, int64_t *v)
{
    PGresult *r = ysql_query(b->master, &b->err, "cannot read yb_catalog_version()",
                             "SELECT pg_catalog.yb_catalog_version()", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    *v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return ARCA_OK;
}

/* Runs the pre-data, post-data (and roles) dumps side by side. On YugabyteDB
 * the catalog version is read around them and the dumps are redone while a
 * DDL moved it (nothing is written to the archive before this settles). */
static int bk_dump_schema(bk *b, bk_dump *dumps, int *ndumps, int64_t *catalog_version)
{
    const ysql_config *cfg = b->yi->cfg;
    for (int attempt = 1;; attempt++) {
        int64_t before = 0, after = 0;
        if (b->is_yb && bk_catalog_version(b, &before) < 0)
            return ysql_failed(&b->err);
        int n = 0;
        dumps[n++] = (bk_dump){.b = b, .what = "pre-data"};
        dumps[n++] = (bk_dump){.b = b, .what = "post-data"};
        if (cfg->include_roles)
            dumps[n++] = (bk_dump){.b = b, .what = "roles"};
        *ndumps = n;
        for (int i = 0; i < n; i++)
            if (bk_dump_argv(b, &dumps[i], strcmp(dumps[i].what, "roles") ? dumps[i].what : NULL) < 0 ||
                (strcmp(dumps[i].what, "roles") && bk_exclude_argv(b, &dumps[i]) < 0))
                return ysql_failed(&b->err);
        for (int i = 0; i < n; i++)
            dumps[i].started = pthread_create(&dumps[i].th, NULL, bk_dump_run, &dumps[i]) == 0;
        for (int i = 0; i < n; i++) {
            if (dumps[i].started)
                pthread_join(dumps[i].th, NULL);
            else
                ysql_fail(&b->err, ARCA_EFAIL, "cannot start a thread for the %s dump", dumps[i].what);
        }
        if (ysql_failed(&b->err))
            return ysql_failed(&b->err);
        if (!b->is_yb)
            return ARCA_OK;
        if (bk_catalog_version(b, &after) < 0)
            return ysql_failed(&b->err);
        *catalog_version = after;
        switch (ybx_catalog_check(before, after, YBX_PHASE_SCHEMA, attempt, (int)cfg->catalog_retries)) {
        case YBX_CATALOG_OK:
            return ARCA_OK;
        case YBX_CATALOG_RETRY:
            b->h->log(b->h, ARCA_LOG_WARN, "%s: catalog version moved from %" PRId64 " to %" PRId64
                      " while dumping the schema (a DDL ran); dumping again", b->where, before, after);
            for (int i = 0; i < n; i++)
                bk_dump_free(&dumps[i]);
            *ndumps = 0;
            continue;
        case YBX_CATALOG_FAIL: {
            char *m = ybx_catalog_message(before, after, YBX_PHASE_SCHEMA, attempt);
            int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: %s", b->where, m ? m : "catalog changed");
            free(m);
            return rc;
        }
        }
    }
}

/* ---- objects ---------------------------------------------------------------------------- */

int bk_write_object(bk *b, const char *name, const char *data, size_t len, const char *const *meta)
{
    const arca_host *h = b->h;
    arca_object_info info = {.name = name, .kind = ARCA_OBJ_DATA, .mode = 0600,
                             .mtime_sec = b->started};
    arca_object *o = NULL;
    int rc = h->object_begin(b->sink, &info, &o);
    if (rc < 0)
        return ysql_fail(&b->err, rc, "cannot add %s to the archive", name);
    for (size_t off = 0; rc == ARCA_OK && off < len;) {
        size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
        rc = h->object_write(o, data + off, n);
        off += n;
    }
    for (size_t i = 0; rc == ARCA_OK && meta && meta[i] && meta[i + 1]; i += 2)
        rc = h->object_meta(o, meta[i], meta[i + 1]);
    int end = h->object_end(o);
    if (rc == ARCA_OK)
        rc = end;
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot add %s to the archive", name) : ARCA_OK;
}

static int bk_sink_info(bk *b, int64_t catalog_version)
{
    const arca_host *h = b->h;
    char num[32], tables[32], jobs[32], cv[32], rt[32];
    snprintf(num, sizeof num, "%d", b->server_num);
    snprintf(tables, sizeof tables, "%zu", b->cat.n);
    snprintf(jobs, sizeof jobs, "%lld", (long long)b->yi->cfg->jobs);
    snprintf(cv, sizeof cv, "%" PRId64, catalog_version);
    snprintf(rt, sizeof rt, "%" PRId64, b->read_time);
    char *hostport = NULL;
    if (asprintf(&hostport, "%s:%lld", b->yi->cfg->host, (long long)b->yi->cfg->port) < 0)
        hostport = NULL;
    const char *slash = strrchr(b->dump_path, '/');
    const char *kv[] = {
        "database", b->yi->cfg->dbname,
        "server", hostport ? hostport : b->yi->cfg->host,
        "server_version", b->version_short,
        "server_version_num", num,
        "yugabytedb", b->is_yb ? "true" : "false",
        "mode", b->tables_mode ? "tables" : "full",
        "encoding", b->encoding,
        "lc_collate", b->collate,
        "lc_ctype", b->ctype,
        "tables", tables,
        "jobs", jobs,
        "dump_command", slash ? slash + 1 : b->dump_path,
        "ysql_format", "1",
        "snapshot", b->snapshot ? b->snapshot : "",
        b->read_time ? "read_time" : NULL, rt,
        b->is_yb ? "catalog_version" : NULL, cv,
        NULL, NULL,
    };
    int rc = ARCA_OK;
    for (size_t i = 0; rc == ARCA_OK && i + 1 < sizeof kv / sizeof *kv; i += 2)
        if (kv[i])
            rc = h->sink_info(b->sink, kv[i], kv[i + 1]);
    if (rc == ARCA_OK && b->yi->cfg->as_of)
        rc = h->sink_info(b->sink, "as_of", b->yi->cfg->as_of);
    if (rc == ARCA_OK && b->yi->cfg->tables)
        rc = h->sink_info(b->sink, "table_patterns", b->yi->cfg->tables);
    if (rc == ARCA_OK && b->yi->cfg->exclude_tables)
        rc = h->sink_info(b->sink, "exclude_patterns", b->yi->cfg->exclude_tables);
    free(hostport);
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot record the archive header") : ARCA_OK;
}

/* ---- sequences ------------------------------------------------------------------------- */

/* Sequence values as JSON [{schema, name, value, called}]: in full mode every
 * sequence not owned by a left-out table, in tables mode the selected tables'
 * own sequences. Read here, set by the restore after the data. */
static int bk_sequences(bk *b, char **json_out)
{
    PGresult *r = ysql_query(b->master, &b->err, "cannot list the sequences",
        "SELECT n.nspname, s.relname, coalesce((SELECT d.refobjid FROM pg_catalog.pg_depend d"
        "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.oid"
        "  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')"
        "  LIMIT 1), 0)"
        " FROM pg_catalog.pg_class s JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace"
        " WHERE s.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.oid"
        "  AND d.deptype = 'e')"
        " ORDER BY 1, 2", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    int n = PQntuples(r);
    json_t *arr = json_array();
    int *keep = calloc((size_t)n + 1, sizeof *keep);
    int rc = arr && keep ? ARCA_OK : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    for (int i = 0; rc == ARCA_OK && i < n; i++) {
        uint32_t owner = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
        keep[i] = owner == 0 && !b->tables_mode;
        for (size_t k = 0; owner && !keep[i] && k < b->cat.n; k++)
            keep[i] = b->oids[k] == owner;
    }
    /* one round trip per 200 sequences: SELECT i, last_value, is_called FROM s UNION ALL ... */
    for (int i = 0; rc == ARCA_OK && i < n;) {
        pc_buf sql = {0};
        int k = 0;
        for (; i < n && k < 200; i++) {
            if (!keep[i])
                continue;
            pc_buf_printf(&sql, "%sSELECT %d, last_value, is_called FROM ", k++ ? " UNION ALL " : "", i);
            ysql_buf_ident(&sql, PQgetvalue(r, i, 0));
            pc_buf_str(&sql, ".");
            ysql_buf_ident(&sql, PQgetvalue(r, i, 1));
        }
        if (!k) {
            pc_buf_free(&sql);
            break;
        }
        char *q = pc_buf_take(&sql);
        PGresult *v = q ? ysql_query(b->master, &b->err, "cannot read the sequence values", q, 0, NULL) : NULL;
        free(q);
        if (!v) {
            rc = ysql_failed(&b->err) ? ysql_failed(&b->err) : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < PQntuples(v); j++) {
            int at = atoi(PQgetvalue(v, j, 0));
            json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "schema", PQgetvalue(r, at, 0), "name",
                                  PQgetvalue(r, at, 1), "value", PQgetvalue(v, j, 1), "called",
                                  PQgetvalue(v, j, 2)[0] == 't');
            if (!o || json_array_append_new(arr, o) < 0)
                rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        }
        PQclear(v);
    }
    PQclear(r);
    free(keep);
    if (rc == ARCA_OK && !(*json_out = json_dumps(arr, JSON_INDENT(1) | JSON_ENSURE_ASCII)))
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    json_decref(arr);
    return rc;
}

/* ---- the whole backup --------------------------------------------------------------------- */

static void bk_free(bk *b)
{
    if (b->master)
        PQfinish(b->master);
    free(b->where);
    free(b->version);
    free(b->version_short);
    free(b->encoding);
    free(b->collate);
    free(b->ctype);
    free(b->snapshot);
    free(b->dump_path);
    free(b->dumpall_path);
    cat_free(&b->cat);
    free(b->oids);
    free(b->slices);
    pthread_mutex_destroy(&b->mu);
    ysql_err_destroy(&b->err);
}

static int bk_run(bk *b)
{
    const ysql_config *cfg = b->yi->cfg;
    const arca_host *h = b->h;
    bk_dump dumps[3];
    int ndumps = 0, rc;
    int64_t catalog_version = 0;
    char *seqs = NULL;

    if (!(b->dump_path = ysql_resolve_command(cfg->dump_command, "ysql_dump", "pg_dump", &b->err,
                                              "dump_command")))
        return ysql_failed(&b->err);
    if (cfg->include_roles &&
        !(b->dumpall_path = ysql_resolve_command(cfg->dumpall_command, "ysql_dumpall", "pg_dumpall",
                                                 &b->err, "dumpall_command")))
        return ysql_failed(&b->err);
    if (!(b->master = ysql_connect(b->yi, NULL, &b->err)) || bk_server_facts(b) < 0)
        return ysql_failed(&b->err);
    char *refusal = ybx_as_of_refusal(b->is_yb, cfg->as_of, b->where, b->version);
    if (refusal) {
        rc = ysql_fail(&b->err, ARCA_ECONFIG, "%s", refusal);
        free(refusal);
        return rc;
    }
    if (ysql_session_setup(b->master, &b->err, b->encoding) < 0 || bk_open_snapshot(b) < 0 ||
        bk_read_catalog(b) < 0 || bk_lock_tables(b) < 0 || bk_plan_slices(b) < 0)
        return ysql_failed(&b->err);
    bk_warn_large_objects(b);
    h->log(h, ARCA_LOG_INFO, "%s: %zu tables in %zu data objects, snapshot %s%s", b->where, b->cat.n,
           b->nslices, b->snapshot ? b->snapshot : "(read time)", b->is_yb ? ", YugabyteDB" : "");

    rc = bk_dump_schema(b, dumps, &ndumps, &catalog_version);
    char *catjson = rc == ARCA_OK ? cat_to_json(&b->cat) : NULL;
    if (rc == ARCA_OK && !catjson)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK)
        rc = bk_sink_info(b, catalog_version);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/catalog.json", catjson, strlen(catjson), NULL);
    free(catjson);
    for (int i = 0; rc == ARCA_OK && i < ndumps; i++) {
        if (!strcmp(dumps[i].what, "roles"))
            rc = bk_write_object(b, "roles.sql", dumps[i].out.p ? dumps[i].out.p : "", dumps[i].out.len,
                                 NULL);
    }
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/pre-data.sql", dumps[0].out.p ? dumps[0].out.p : "",
                             dumps[0].out.len, NULL);
    pc_buf_free(&dumps[0].out); /* the post-data script is kept for the end */
    if (rc == ARCA_OK)
        rc = bk_sequences(b, &seqs);
    if (rc == ARCA_OK)
        rc = bk_export_data(b);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/sequences.json", seqs, strlen(seqs), NULL);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/post-data.sql", dumps[1].out.p ? dumps[1].out.p : "",
                             dumps[1].out.len, NULL);
    if (rc == ARCA_OK && b->is_yb) {
        int64_t now = 0;
        if (bk_catalog_version(b, &now) == ARCA_OK &&
            ybx_catalog_check(catalog_version, now, YBX_PHASE_DATA, 1, 0) != YBX_CATALOG_OK) {
            char *m = ybx_catalog_message(catalog_version, now, YBX_PHASE_DATA, 1);
            ysql_fail(&b->err, ARCA_EFAIL, "%s: %s", b->where, m ? m : "catalog changed");
            free(m);
        }
        rc = ysql_failed(&b->err);
    }
    if (rc == ARCA_OK)
        rc = ysql_exec(b->master, &b->err, "cannot finish the backup transaction", "COMMIT");
    free(seqs);
    for (int i = 0; i < ndumps; i++)
        bk_dump_free(&dumps[i]);
    return rc < 0 ? rc : ysql_failed(&b->err);
}

int ysql_backup(void *inst, arca_sink *sink)
{
    ysql_inst *yi = inst;
    bk b = {.yi = yi, .h = yi->host, .sink = sink, .started = (int64_t)time(NULL),
            .tables_mode = yi->tables != NULL};
    ysql_err_init(&b.err);
    pthread_mutex_init(&b.mu, NULL);
    b.where = ysql_where(yi, NULL);
    int rc = b.where ? bk_run(&b) : ysql_fail(&b.err, ARCA_ENOMEM, "out of memory");
    if (rc < 0 || ysql_failed(&b.err))
        rc = ysql_err_report(&b.err, b.h);
    bk_free(&b);
    return rc;
}
