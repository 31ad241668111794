/* ysql plugin: backup. One "master" session opens a REPEATABLE READ READ ONLY
 * transaction and exports its snapshot (YugabyteDB: or pins every session to
 * one yb_read_time); the table list, the schema dump (--snapshot), the
 * sequence values, the large objects and every data COPY read that one
 * snapshot. Objects, in archive order: schema/catalog.json, roles.sql,
 * schema/pre-data.sql, data/<schema>.<table>/part-NNNN, data/small/part-NNNN
 * (packs of small tables) and large-objects/part-0000 in any order,
 * schema/sequences.json, schema/post-data.sql. */
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
    char num[32], tables[32], jobs[32], cv[32], rt[32], los[32];
    snprintf(los, sizeof los, "%" PRId64, b->large_objects);
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
        "large_objects", los,
        "jobs", jobs,
        "dump_command", slash ? slash + 1 : b->dump_path,
        "ysql_format", "2",
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
    bk_export_stop(b);   /* joins workers still spooling */
    bk_dump_free_all(b); /* waits for a dump still running */
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
    free(b->pre);
    free(b->post);
    cat_free(&b->cat);
    free(b->oids);
    free(b->toast);
    for (size_t i = 0; i < b->nslices; i++)
        free(b->slices[i].tables);
    free(b->slices);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    ysql_err_destroy(&b->err);
}

/* Connects, checks the server, opens the snapshot. */
static int bk_open(bk *b)
{
    const ysql_config *cfg = b->yi->cfg;
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
        int rc = ysql_fail(&b->err, ARCA_ECONFIG, "%s", refusal);
        free(refusal);
        return rc;
    }
    if (ysql_session_setup(b->master, &b->err) < 0 || bk_open_snapshot(b) < 0)
        return ysql_failed(&b->err);
    return ARCA_OK;
}

/* What is read in the snapshot before anything is written: the schema dump
 * runs meanwhile when its arguments do not depend on the table list. */
static int bk_prepare(bk *b)
{
    int early = !bk_dump_needs_catalog(b);
    if (early && bk_dump_start(b) < 0)
        return ysql_failed(&b->err);
    if (bk_read_catalog(b) < 0 || bk_lock_tables(b) < 0 || bk_read_database(b) < 0 ||
        bk_count_large_objects(b) < 0 || bk_plan_slices(b) < 0)
        return ysql_failed(&b->err);
    b->t_catalog = ysql_now();
    if (!early && bk_dump_start(b) < 0)
        return ysql_failed(&b->err);
    /* small tables are copied (and held) while the dump runs */
    if (bk_export_start(b) < 0)
        return ysql_failed(&b->err);
    b->h->log(b->h, ARCA_LOG_INFO, "%s: %zu tables in %zu data objects, %" PRId64 " large objects, "
              "snapshot %s%s", b->where, b->cat.n, b->nslices, b->large_objects,
              b->snapshot ? b->snapshot : "(read time)", b->is_yb ? ", YugabyteDB" : "");
    if (bk_dump_finish(b) < 0)
        return ysql_failed(&b->err);
    b->t_dump_run[0] = b->dumps[0].t_start - b->t0;
    b->t_dump_run[1] = b->dumps[0].t_end - b->t0;
    if (bk_collect_roles(b) < 0)
        return ysql_failed(&b->err);
    b->t_dump = ysql_now();
    return ARCA_OK;
}

static int bk_run(bk *b)
{
    char *seqs = NULL, *catjson = NULL;
    if (bk_open(b) < 0 || bk_prepare(b) < 0)
        return ysql_failed(&b->err);
    int rc = (catjson = cat_to_json(&b->cat))
                 ? ARCA_OK
                 : ysql_fail(&b->err, ARCA_ENOMEM, "%s: cannot write the catalog (out of memory, or a "
                             "name that is not valid UTF-8 in a SQL_ASCII database)", b->where);
    if (rc == ARCA_OK)
        rc = bk_sink_info(b, b->catalog_version);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/catalog.json", catjson, strlen(catjson), NULL);
    free(catjson);
    for (int i = 0; rc == ARCA_OK && i < b->ndumps; i++)
        if (!strcmp(b->dumps[i].what, "roles"))
            rc = bk_write_object(b, "roles.sql", b->dumps[i].out.p ? b->dumps[i].out.p : "",
                                 b->dumps[i].out.len, NULL);
    bk_dump_free_all(b);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/pre-data.sql", b->pre, b->pre_len, NULL);
    free(b->pre);
    b->pre = NULL;
    if (rc == ARCA_OK)
        rc = bk_sequences(b, &seqs);
    if (rc == ARCA_OK)
        rc = bk_export_data(b);
    b->t_data = ysql_now();
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/sequences.json", seqs, strlen(seqs), NULL);
    if (rc == ARCA_OK)
        rc = bk_write_object(b, "schema/post-data.sql", b->post, b->post_len, NULL);
    if (rc == ARCA_OK && b->is_yb) {
        int64_t now = 0;
        if (bk_catalog_version(b, &now) == ARCA_OK &&
            ybx_catalog_check(b->catalog_version, now, YBX_PHASE_DATA, 1, 0) != YBX_CATALOG_OK) {
            char *m = ybx_catalog_message(b->catalog_version, now, YBX_PHASE_DATA, 1);
            ysql_fail(&b->err, ARCA_EFAIL, "%s: %s", b->where, m ? m : "catalog changed");
            free(m);
        }
        rc = ysql_failed(&b->err);
    }
    if (rc == ARCA_OK)
        rc = ysql_exec(b->master, &b->err, "cannot finish the backup transaction", "COMMIT");
    if (rc == ARCA_OK)
        b->h->log(b->h, ARCA_LOG_INFO, "%s: backed up %zu tables in %.2f s: catalogue %.2f s, schema dump "
                  "tool ran %.2f-%.2f s, cut at %.2f s, data %.2f s more", b->where, b->cat.n, ysql_now() - b->t0,
                  b->t_catalog - b->t0, b->t_dump_run[0], b->t_dump_run[1], b->t_dump - b->t0,
                  b->t_data - b->t_dump);
    free(seqs);
    return rc < 0 ? rc : ysql_failed(&b->err);
}

int ysql_backup(void *inst, arca_sink *sink)
{
    ysql_inst *yi = inst;
    bk b = {.yi = yi, .h = yi->host, .sink = sink, .started = (int64_t)time(NULL), .t0 = ysql_now(),
            .tables_mode = yi->tables != NULL};
    ysql_err_init(&b.err);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    b.where = ysql_where(yi, NULL);
    int rc = b.where ? bk_run(&b) : ysql_fail(&b.err, ARCA_ENOMEM, "out of memory");
    if (rc < 0 || ysql_failed(&b.err))
        rc = ysql_err_report(&b.err, b.h);
    bk_free(&b);
    return rc;
}
