/* ysql plugin: restore. The feed brings, in archive order: schema/catalog.json
 * (read first: it decides the target and the tables, and the roles it needs
 * are checked), roles.sql and schema/pre-data.sql (applied, through the
 * restore command, when the first data object arrives), data objects (tables,
 * slices, packs of small tables, the large objects: handed to the parallel
 * loader), then schema/sequences.json and schema/post-data.sql (applied once
 * every table is loaded, so indexes, constraints and triggers are built after
 * the load); the database's own properties come last. The first error stops
 * the restore; the message says what state the target is in. */
#include "restore.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* The small objects, gathered whole (they are schema, not data). */
enum { OBJ_CATALOG, OBJ_ROLES, OBJ_PRE, OBJ_SEQUENCES, OBJ_POST, OBJ_COUNT };
static const char *const obj_names[OBJ_COUNT] = {
    "schema/catalog.json", "roles.sql", "schema/pre-data.sql", "schema/sequences.json",
    "schema/post-data.sql",
};

/* A data object whose chunks are still arriving: its loader slot, or -1 when
 * the restore skips it (a table not chosen by --table). */
typedef struct rs_open {
    char *name;
    int slot;
} rs_open;

typedef struct rs_state {
    pc_buf obj[OBJ_COUNT];
    int done[OBJ_COUNT];
    rs_open *open;
    size_t nopen, capopen;
    const char *stage; /* what was running when the restore failed */
    double t0, t_schema, t_data, t_post; /* phase end times, for the summary */
    int64_t rows;      /* rows loaded, for the summary */
} rs_state;

/* ---- small helpers ----------------------------------------------------------------------- */

static PGconn *rs_connect_target(rs *r)
{
    return ysql_connect(r->yi, r->target_db, &r->err);
}

static char *ident_sql(const char *prefix, const char *name, const char *suffix)
{
    pc_buf b = {0};
    pc_buf_str(&b, prefix);
    ysql_buf_ident(&b, name);
    pc_buf_str(&b, suffix);
    return pc_buf_take(&b);
}

/* A connection to the cluster that is not the target database (CREATE and
 * DROP DATABASE cannot run inside it): the configured dbname when it differs,
 * else postgres, else template1. A failure is recorded in `e`. */
static PGconn *rs_admin_connect(rs *r, ysql_err *e)
{
    const char *cands[3];
    int n = 0;
    if (strcmp(r->yi->cfg->dbname, r->target_db))
        cands[n++] = r->yi->cfg->dbname;
    if (strcmp("postgres", r->target_db))
        cands[n++] = "postgres";
    if (strcmp("template1", r->target_db))
        cands[n++] = "template1";
    for (int i = 0; i < n; i++) {
        ysql_err tried;
        ysql_err_init(&tried);
        PGconn *c = ysql_connect(r->yi, cands[i], &tried);
        int missing = !c && tried.msg && strstr(tried.msg, "does not exist");
        if (!c && (!missing || i == n - 1))
            ysql_fail(e, tried.code, "%s", tried.msg ? tried.msg : "cannot connect");
        ysql_err_destroy(&tried);
        if (c || !missing)
            return c;
    }
    return NULL;
}

/* ---- choosing the target ---------------------------------------------------------------- */

static int rs_select_tables(rs *r)
{
    if (!(r->tt = calloc(r->cat.n + 1, sizeof *r->tt)))
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    if (!r->ro->table) {
        for (size_t i = 0; i < r->cat.n; i++)
            r->tt[i].want = 1;
        return ARCA_OK;
    }
    char *schema = NULL, *name = NULL, err[256];
    if (ysql_parse_qualified(r->ro->table, &schema, &name, err, sizeof err) < 0)
        return ysql_fail(&r->err, ARCA_ECONFIG, "--table: %s", err);
    size_t hits = 0, at = 0;
    for (size_t i = 0; i < r->cat.n; i++)
        if (!strcmp(r->cat.v[i].name, name) && (!schema || !strcmp(r->cat.v[i].schema, schema)))
            hits++, at = i;
    int rc = ARCA_OK;
    if (hits != 1) {
        pc_buf list = {0};
        for (size_t i = 0; i < r->cat.n && i < 20; i++) {
            char *q = ysql_qualified(r->cat.v[i].schema, r->cat.v[i].name);
            pc_buf_printf(&list, "%s%s", i ? ", " : "", q ? q : "");
            free(q);
        }
        rc = ysql_fail(&r->err, ARCA_ECONFIG, "--table %s: %s in this backup (it holds %zu tables: %s%s)",
                       r->ro->table, hits ? "ambiguous, give schema.name," : "no such table",
                       r->cat.n, list.p ? list.p : "", r->cat.n > 20 ? ", ..." : "");
        pc_buf_free(&list);
    } else {
        r->tt[at].want = 1;
        /* a partitioned table brings its partitions, at any depth */
        for (int changed = 1; changed;) {
            changed = 0;
            for (size_t i = 0; i < r->cat.n; i++) {
                cat_table *t = &r->cat.v[i];
                if (r->tt[i].want || !t->parent_name)
                    continue;
                cat_table *p = cat_find(&r->cat, t->parent_schema, t->parent_name);
                if (p && r->tt[p - r->cat.v].want)
                    r->tt[i].want = changed = 1;
            }
        }
    }
    free(schema);
    free(name);
    return rc;
}

/* Full restore: the target must hold no table, unless --clean replaces it. */
static int rs_check_empty(rs *r)
{
    PGconn *c = rs_connect_target(r);
    if (!c)
        return ysql_failed(&r->err);
    PGresult *res = ysql_query(c, &r->err, "cannot inspect the target database",
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname <> 'information_schema'"
        " AND n.nspname !~ '^pg_' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')"
        " ORDER BY 1, 2", 0, NULL);
    int rc = ysql_failed(&r->err);
    if (res && PQntuples(res) > 0) {
        pc_buf some = {0};
        for (int i = 0; i < PQntuples(res) && i < 3; i++) {
            char *q = ysql_qualified(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            pc_buf_printf(&some, "%s%s", i ? ", " : "", q ? q : "");
            free(q);
        }
        rc = ysql_fail(&r->err, ARCA_EEXIST,
                       "%s: the target database is not empty: it holds %d relations (%s%s)\n"
                       "hint: restore into a new database with --target-database NAME, or pass --clean "
                       "to drop and recreate \"%s\"", r->where, PQntuples(res), some.p ? some.p : "",
                       PQntuples(res) > 3 ? ", ..." : "", r->target_db);
        pc_buf_free(&some);
    }
    PQclear(res);
    PQfinish(c);
    return rc;
}

/* Table-level restore: the schemas of the chosen tables that the target lacks
 * are created from their SCHEMA entries (the tables' types and functions are
 * not: like pg_dump -t, a table-level restore expects them in place). */
static int rs_new_schemas(rs *r, PGconn *c)
{
    PGresult *res = ysql_query(c, &r->err, "cannot inspect the target database",
                               "SELECT nspname FROM pg_catalog.pg_namespace", 0, NULL);
    if (!res)
        return ysql_failed(&r->err);
    size_t n = 0;
    r->new_schemas = calloc(r->cat.n + 1, sizeof *r->new_schemas);
    for (size_t i = 0; r->new_schemas && i < r->cat.n; i++) {
        const char *s = r->cat.v[i].schema;
        int have = ysql_strv_has(r->new_schemas, s);
        for (int k = 0; !have && k < PQntuples(res); k++)
            have = !strcmp(PQgetvalue(res, k, 0), s);
        if (!have && r->tt[i].want && !(r->new_schemas[n++] = strdup(s)))
            break;
    }
    PQclear(res);
    if (!r->new_schemas || (n && !r->new_schemas[n - 1]))
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    return ARCA_OK;
}

/* Table-level restore: which chosen tables exist already. */
static int rs_mark_existing(rs *r)
{
    PGconn *c = rs_connect_target(r);
    if (!c)
        return ysql_failed(&r->err);
    PGresult *res = rs_new_schemas(r, c) < 0 ? NULL
        : ysql_query(c, &r->err, "cannot inspect the target database",
                     "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
                     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
                     0, NULL);
    PQfinish(c);
    if (!res)
        return ysql_failed(&r->err);
    pc_buf found = {0};
    size_t nfound = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        cat_table *t = cat_find(&r->cat, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        if (!t || !r->tt[t - r->cat.v].want)
            continue;
        r->tt[t - r->cat.v].existed = 1;
        if (nfound++ < 3) {
            char *q = ysql_qualified(t->schema, t->name);
            pc_buf_printf(&found, "%s%s", nfound > 1 ? ", " : "", q ? q : "");
            free(q);
        }
    }
    PQclear(res);
    int rc = ARCA_OK;
    if (nfound && !r->ro->clean)
        rc = ysql_fail(&r->err, ARCA_EEXIST,
                       "%s: %zu of the tables to restore already exist (%s%s)\n"
                       "hint: pass --clean to empty and reload them, or restore into another database "
                       "with --target-database NAME", r->where, nfound, found.p ? found.p : "",
                       nfound > 3 ? ", ..." : "");
    pc_buf_free(&found);
    return rc;
}

static int rs_create_database(rs *r, PGconn *admin)
{
    const char *collate = r->h->feed_info(r->feed, "lc_collate");
    const char *ctype = r->h->feed_info(r->feed, "lc_ctype");
    pc_buf q = {0};
    pc_buf_str(&q, "CREATE DATABASE ");
    ysql_buf_ident(&q, r->target_db);
    pc_buf_str(&q, " TEMPLATE template0 ENCODING ");
    ysql_buf_literal(&q, r->encoding);
    if (!r->target_is_yb && collate && ctype && *collate && *ctype) {
        pc_buf_str(&q, " LC_COLLATE ");
        ysql_buf_literal(&q, collate);
        pc_buf_str(&q, " LC_CTYPE ");
        ysql_buf_literal(&q, ctype);
    }
    char *sql = pc_buf_take(&q);
    int rc = sql ? ysql_exec(admin, &r->err, "cannot create the target database", sql)
                 : ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    free(sql);
    if (rc == ARCA_OK) {
        r->created_db = 1;
        r->h->log(r->h, ARCA_LOG_INFO, "created database \"%s\"", r->target_db);
    }
    return rc;
}

/* Decides and prepares the target database once the catalog is known. */
static int rs_prepare_target(rs *r, rs_state *st)
{
    PGconn *admin = rs_admin_connect(r, &r->err);
    if (!admin)
        return ysql_failed(&r->err);
    const char *p[1] = {r->target_db};
    PGresult *res = ysql_query(admin, &r->err, "cannot look the target database up",
                               "SELECT (SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1),"
                               " pg_catalog.version()", 1, p);
    int rc = ysql_failed(&r->err);
    int exists = 0;
    if (res) {
        exists = atoi(PQgetvalue(res, 0, 0)) > 0;
        r->target_is_yb = ybx_is_yugabyte(PQgetvalue(res, 0, 1));
        PQclear(res);
    }
    if (rc == ARCA_OK)
        rc = rs_check_roles(r, admin);
    if (rc == ARCA_OK && exists && !r->table_level) {
        if (!r->ro->clean) {
            rc = rs_check_empty(r);
        } else {
            char *sql = ident_sql("DROP DATABASE ", r->target_db, "");
            r->touched = 1;
            rc = sql ? ysql_exec(admin, &r->err, "--clean: cannot drop the target database (close "
                                 "its other sessions first)", sql)
                     : ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
            free(sql);
            if (rc == ARCA_OK) {
                r->h->log(r->h, ARCA_LOG_INFO, "--clean: dropped database \"%s\"", r->target_db);
                exists = 0;
            }
        }
    }
    if (rc == ARCA_OK && !exists)
        rc = rs_create_database(r, admin);
    PQfinish(admin);
    if (rc == ARCA_OK && r->table_level)
        rc = rs_mark_existing(r);
    return rc;
}

static int rs_catalog(rs *r, rs_state *st)
{
    char err[256];
    pc_buf *b = &st->obj[OBJ_CATALOG];
    if (cat_from_json(b->p ? b->p : "", b->len, &r->cat, err, sizeof err) < 0)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s", err);
    if (rs_select_tables(r) < 0)
        return ysql_failed(&r->err);
    r->want_lo = !r->table_level && !r->ro->no_large_objects && r->cat.large_objects > 0;
    st->stage = "preparing the target database";
    return rs_prepare_target(r, st);
}

/* ---- schema ------------------------------------------------------------------------------- */

/* Table-level --clean: the chosen tables that exist are emptied in one
 * statement (foreign keys between them are fine; one from another table is not). */
static int rs_truncate_existing(rs *r, rs_state *st)
{
    pc_buf q = {0};
    size_t n = 0;
    pc_buf_str(&q, "TRUNCATE TABLE ONLY ");
    for (size_t i = 0; i < r->cat.n; i++) {
        if (!r->tt[i].want || !r->tt[i].existed || r->cat.v[i].kind != 'r')
            continue;
        if (n++)
            pc_buf_str(&q, ", ");
        ysql_buf_ident(&q, r->cat.v[i].schema);
        pc_buf_str(&q, ".");
        ysql_buf_ident(&q, r->cat.v[i].name);
    }
    char *sql = pc_buf_take(&q);
    int rc = ARCA_OK;
    if (!sql)
        rc = ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    else if (n) {
        PGconn *c = rs_connect_target(r);
        r->touched = 1;
        rc = c ? ysql_exec(c, &r->err, "--clean: cannot empty the existing tables", sql)
               : ysql_failed(&r->err);
        PQfinish(c);
        if (rc == ARCA_OK)
            r->h->log(r->h, ARCA_LOG_INFO, "--clean: emptied %zu existing tables", n);
    }
    free(sql);
    return rc;
}

/* ---- keeping autovacuum off the tables being loaded ------------------------------------------ */

#define RS_GUARD_MIN_BYTES ((int64_t)8 << 20) /* smaller tables vacuum in no time */
#define RS_GUARD_MAX 128                       /* locks held by the guard, at most */

static int rs_guard_cmp(const void *a, const void *b, void *arg)
{
    const catalog *c = arg;
    int64_t x = c->v[*(const size_t *)a].bytes, y = c->v[*(const size_t *)b].bytes;
    return x > y ? -1 : x < y;
}

/* A table loaded in slices has committed rows while its other slices still load,
 * and many new rows once loaded: autovacuum picks it up, scans it beside the
 * loads, and the post-data's ALTER TABLE ... ADD PRIMARY KEY then waits
 * deadlock_timeout (1 s) before the server cancels the autovacuum (measured:
 * 3 restores in 17 at pgbench scale 50 lost that second). One more
 * session holds SHARE UPDATE EXCLUSIVE on the biggest tables from the first
 * load until the post-data starts: COPY's ROW EXCLUSIVE does not conflict with
 * it, and autovacuum skips tables it cannot lock at once, so the tables are
 * vacuumed after the restore, as after pg_restore. The guard is only an
 * optimisation: when it cannot have its locks at once, the restore goes on
 * without it. Not on YugabyteDB (no autovacuum, other lock modes). */
static void rs_guard_begin(rs *r)
{
    if (r->target_is_yb)
        return;
    size_t *idx = calloc(r->cat.n + 1, sizeof *idx), n = 0;
    for (size_t i = 0; idx && i < r->cat.n; i++)
        if (r->tt[i].want && r->cat.v[i].kind == 'r' && r->cat.v[i].bytes >= RS_GUARD_MIN_BYTES)
            idx[n++] = i;
    if (!n) {
        free(idx);
        return;
    }
    qsort_r(idx, n, sizeof *idx, rs_guard_cmp, &r->cat);
    pc_buf q = {0};
    pc_buf_str(&q, "SET lock_timeout = '100ms'; BEGIN; LOCK TABLE ");
    for (size_t k = 0; k < n && k < RS_GUARD_MAX; k++) {
        pc_buf_str(&q, k ? ", ONLY " : "ONLY ");
        ysql_buf_ident(&q, r->cat.v[idx[k]].schema);
        pc_buf_str(&q, ".");
        ysql_buf_ident(&q, r->cat.v[idx[k]].name);
    }
    pc_buf_str(&q, " IN SHARE UPDATE EXCLUSIVE MODE");
    free(idx);
    char *sql = pc_buf_take(&q);
    ysql_err e;
    ysql_err_init(&e);
    PGconn *c = sql ? ysql_connect(r->yi, r->target_db, &e) : NULL;
    if (c && ysql_exec(c, &e, "cannot lock the tables against autovacuum", sql) == ARCA_OK) {
        r->guard = c;
    } else {
        r->h->log(r->h, ARCA_LOG_DEBUG, "%s: loading without the autovacuum guard: %s", r->where,
                  e.msg ? e.msg : "out of memory");
        PQfinish(c);
    }
    ysql_err_destroy(&e);
    free(sql);
}

static void rs_guard_end(rs *r)
{
    if (!r->guard)
        return;
    PQclear(PQexec(r->guard, "COMMIT"));
    PQfinish(r->guard);
    r->guard = NULL;
}

/* Before the first data: roles, pre-data, table-level emptying, the loader. */
static int rs_apply_schema(rs *r, rs_state *st)
{
    if (r->schema_applied)
        return ARCA_OK;
    if (!st->done[OBJ_CATALOG] || !st->done[OBJ_PRE])
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "the archive has no complete %s before its data: "
                         "not a backup of this plugin", st->done[OBJ_CATALOG] ? obj_names[OBJ_PRE]
                                                                              : obj_names[OBJ_CATALOG]);
    /* the load connections open (on their threads) while the schema scripts run */
    for (size_t i = 0; i < r->cat.n; i++)
        r->replica_role |= r->tt[i].want && r->tt[i].existed;
    int rc = ld_start(r, &r->pool);
    if (rc == ARCA_OK && st->done[OBJ_ROLES] && st->obj[OBJ_ROLES].len && !r->ro->no_roles) {
        st->stage = "restoring roles";
        rc = rs_apply_roles(r, st->obj[OBJ_ROLES].p, st->obj[OBJ_ROLES].len);
    }
    pc_buf_free(&st->obj[OBJ_ROLES]);
    if (rc == ARCA_OK) {
        st->stage = "applying the pre-data schema";
        rc = rs_apply_section(r, &st->obj[OBJ_PRE], 0);
    }
    pc_buf_free(&st->obj[OBJ_PRE]);
    if (rc == ARCA_OK && r->table_level && r->ro->clean)
        rc = rs_truncate_existing(r, st);
    if (rc == ARCA_OK) {
        r->schema_applied = 1;
        st->t_schema = ysql_now();
        st->stage = "loading data";
    }
    if (rc == ARCA_OK)
        rs_guard_begin(r);
    return rc;
}

/* ---- data ----------------------------------------------------------------------------------- */

static rs_open *rs_find_open(rs_state *st, const char *name)
{
    for (size_t i = 0; i < st->nopen; i++)
        if (!strcmp(st->open[i].name, name))
            return &st->open[i];
    return NULL;
}

static int meta_int(rs *r, const char *key, int64_t *v)
{
    const char *s = r->h->feed_meta(r->feed, key);
    char *end;
    if (!s || !*s)
        return -1;
    *v = strtoll(s, &end, 10);
    return *end ? -1 : 0;
}

/* Adds one slice (or pack segment) to what table i expects. */
static void rs_expect(rs *r, size_t i, int64_t rows, const char *digest)
{
    ysql_digest d = {0};
    rs_table *x = &r->tt[i];
    x->slices_seen++;
    x->rows_expected += rows;
    if (ysql_digest_parse(digest, &d) == 0)
        ysql_digest_merge(&x->expected, &d); /* d.rows is 0: counts travel in "rows" */
    else
        x->digest_missing = 1;
    x->expected.rows = x->rows_expected;
}

/* A pack's segments: "INDEX:ROWS:BYTES:DIGEST,..." */
static int rs_pack_start(rs *r, const arca_entry *e, const char *segs, rs_open *o)
{
    ld_job job = {.kind = LD_PACK, .name = e->info.name};
    size_t cap = 1;
    for (const char *p = segs; *p; p++)
        cap += *p == ',';
    job.segs = calloc(cap, sizeof *job.segs);
    if (!job.segs)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    int any = 0, rc = ARCA_OK;
    int64_t total = 0;
    for (const char *p = segs; *p && rc == ARCA_OK;) {
        char *end;
        unsigned long long idx = strtoull(p, &end, 10);
        long long rows = *end == ':' ? strtoll(end + 1, &end, 10) : -1;
        long long bytes = *end == ':' ? strtoll(end + 1, &end, 10) : -1;
        char digest[64];
        size_t dl = *end == ':' ? strcspn(end + 1, ",") : 0;
        if (idx >= r->cat.n || r->cat.v[idx].kind != 'r' || rows < 0 || bytes < 3 || dl != 32) {
            rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "data object %s: malformed segment %zu in its "
                           "manifest entry", e->info.name, job.nsegs + 1);
            break;
        }
        snprintf(digest, sizeof digest, "sha256-sum128:%.32s", end + 1);
        rs_expect(r, (size_t)idx, rows, digest);
        ld_segment *g = &job.segs[job.nsegs++];
        *g = (ld_segment){.table = (size_t)idx, .rows = rows, .bytes = bytes, .want = r->tt[idx].want};
        any |= g->want;
        total += bytes;
        p = end + 1 + dl;
        if (*p == ',')
            p++;
    }
    if (rc == ARCA_OK && (uint64_t)total != e->object_size)
        rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "data object %s: its segments add up to %" PRId64
                       " bytes, the object has %" PRIu64, e->info.name, total, e->object_size);
    if (rc == ARCA_OK && any)
        rc = ld_begin(r->pool, &job, &o->slot);
    free(job.segs);
    return rc;
}

static int rs_data_start(rs *r, const arca_entry *e, rs_open *o)
{
    o->slot = -1;
    const char *segs = r->h->feed_meta(r->feed, "segments");
    if (segs)
        return rs_pack_start(r, e, segs, o);
    const char *schema = r->h->feed_meta(r->feed, "schema");
    const char *table = schema ? r->h->feed_meta(r->feed, "table") : NULL;
    /* feed_meta reuses its buffer for integers only; strings stay valid */
    cat_table *t = schema && table ? cat_find(&r->cat, schema, table) : NULL;
    if (!t)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "data object %s names a table the catalog does "
                         "not list", e->info.name);
    size_t i = (size_t)(t - r->cat.v);
    int64_t rows = 0;
    if (meta_int(r, "rows", &rows) < 0)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "data object %s has no row count", e->info.name);
    rs_expect(r, i, rows, r->h->feed_meta(r->feed, "digest"));
    if (!r->tt[i].want)
        return ARCA_OK;
    ld_job job = {.kind = LD_TABLE, .table = i, .name = e->info.name};
    return ld_begin(r->pool, &job, &o->slot);
}

static int rs_lo_start(rs *r, const arca_entry *e, rs_open *o)
{
    o->slot = -1;
    if (r->lo_seen++)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s appears twice in the archive", e->info.name);
    if (meta_int(r, "rows", &r->lo_expected) < 0 ||
        ysql_digest_parse(r->h->feed_meta(r->feed, "digest"), &r->lo_digest) < 0)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s has no count or digest", e->info.name);
    r->lo_digest.rows = r->lo_expected;
    if (!r->want_lo)
        return ARCA_OK;
    ld_job job = {.kind = LD_LARGE_OBJECTS, .name = e->info.name};
    return ld_begin(r->pool, &job, &o->slot);
}

static int rs_data(rs *r, rs_state *st, const arca_entry *e)
{
    int rc = rs_apply_schema(r, st);
    if (rc < 0)
        return rc;
    int last = e->chunk + 1 >= e->chunks;
    rs_open *o = rs_find_open(st, e->info.name);
    if (!o) {
        if (e->chunk != 0)
            return ysql_fail(&r->err, ARCA_EINTEGRITY, "chunk %u of %s arrived before its first chunk",
                             e->chunk, e->info.name);
        if (st->nopen == st->capopen) {
            size_t cap = st->capopen ? st->capopen * 2 : 16;
            rs_open *v = realloc(st->open, cap * sizeof *v);
            if (!v)
                return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
            st->open = v;
            st->capopen = cap;
        }
        o = &st->open[st->nopen];
        o->slot = -1;
        if (!(o->name = strdup(e->info.name)))
            return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        st->nopen++;
        rc = strncmp(e->info.name, "data/", 5) ? rs_lo_start(r, e, o) : rs_data_start(r, e, o);
        if (rc < 0)
            return rc;
    }
    if (o->slot >= 0)
        rc = ld_chunk(r->pool, o->slot, e->data, e->len, last);
    if (last) {
        free(o->name);
        *o = st->open[--st->nopen];
    }
    return rc;
}

/* ---- after the data ------------------------------------------------------------------------ */

static int rs_check_counts(rs *r, rs_state *st)
{
    for (size_t i = 0; i < r->cat.n; i++) {
        const cat_table *t = &r->cat.v[i];
        rs_table *x = &r->tt[i];
        if (!x->want || t->kind != 'r')
            continue;
        st->rows += x->rows_loaded;
        char *q = NULL;
        if (x->slices_seen != t->slices) {
            q = ysql_qualified(t->schema, t->name);
            int rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "the archive holds %d of the %d data objects "
                               "of table %s", x->slices_seen, t->slices, q ? q : t->name);
            free(q);
            return rc;
        }
        if (x->rows_loaded != x->rows_expected) {
            q = ysql_qualified(t->schema, t->name);
            int rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "%s: table %s: %" PRId64 " rows loaded, the "
                               "manifest says %" PRId64, r->where, q ? q : t->name, x->rows_loaded,
                               x->rows_expected);
            free(q);
            return rc;
        }
    }
    if (r->want_lo && r->cat.large_objects > 0 && !r->lo_seen)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "the archive lacks large-objects/part-0000 (the "
                         "catalog says %" PRId64 " large objects)", r->cat.large_objects);
    if (r->want_lo && r->lo_seen && r->lo_loaded != r->lo_expected)
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s: %" PRId64 " large objects written, the manifest "
                         "says %" PRId64, r->where, r->lo_loaded, r->lo_expected);
    return ARCA_OK;
}

static int seq_wanted(rs *r, const char *schema, const char *name)
{
    if (!r->table_level)
        return 1;
    for (size_t i = 0; i < r->cat.n; i++)
        if (r->tt[i].want && !strcmp(r->cat.v[i].schema, schema) &&
            ysql_strv_has(r->cat.v[i].sequences, name))
            return 1;
    return 0;
}

static int rs_sequences(rs *r, rs_state *st)
{
    pc_buf *b = &st->obj[OBJ_SEQUENCES];
    if (!st->done[OBJ_SEQUENCES])
        return ARCA_OK;
    json_error_t je;
    json_t *arr = json_loadb(b->p ? b->p : "", b->len, 0, &je);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "schema/sequences.json is malformed");
    }
    pc_buf q = {0};
    size_t n = 0, i;
    json_t *o;
    int rc = ARCA_OK;
    json_array_foreach(arr, i, o) {
        const char *schema = json_string_value(json_object_get(o, "schema"));
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *value = json_string_value(json_object_get(o, "value"));
        json_t *called = json_object_get(o, "called");
        if (!schema || !name || !value || !*value || strspn(value, "-0123456789") != strlen(value) ||
            !json_is_boolean(called)) {
            rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "schema/sequences.json: entry %zu is malformed", i);
            break;
        }
        if (!seq_wanted(r, schema, name))
            continue;
        char *qn = ysql_qualified(schema, name);
        pc_buf_str(&q, n++ ? "; SELECT pg_catalog.setval(" : "SELECT pg_catalog.setval(");
        ysql_buf_literal(&q, qn ? qn : "");
        pc_buf_printf(&q, ", %s, %s)", value, json_is_true(called) ? "true" : "false");
        free(qn);
    }
    json_decref(arr);
    char *sql = pc_buf_take(&q);
    if (rc == ARCA_OK && n) {
        PGconn *c = sql ? rs_connect_target(r) : NULL;
        rc = !sql ? ysql_fail(&r->err, ARCA_ENOMEM, "out of memory")
             : c  ? ysql_exec(c, &r->err, "cannot set the sequences to their backed-up values", sql)
                  : ysql_failed(&r->err);
        PQfinish(c);
    }
    free(sql);
    return rc;
}

static int rs_after_data(rs *r, rs_state *st)
{
    int rc = rs_apply_schema(r, st); /* a backup without any data object */
    if (rc == ARCA_OK)
        rc = ld_finish(r->pool);
    if (rc == ARCA_OK) {
        r->tables_loaded = 1;
        st->t_data = ysql_now();
        st->stage = "checking row counts";
        rc = rs_check_counts(r, st);
    }
    if (rc == ARCA_OK) {
        st->stage = "setting sequences";
        rc = rs_sequences(r, st);
    }
    if (rc == ARCA_OK && !st->done[OBJ_POST])
        rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "the archive has no schema/post-data.sql");
    rs_guard_end(r);
    if (rc == ARCA_OK) {
        st->stage = "applying the post-data schema (indexes, constraints, triggers)";
        rc = rs_apply_section(r, &st->obj[OBJ_POST], 1);
    }
    if (rc == ARCA_OK) {
        r->post_applied = 1;
        st->t_post = ysql_now();
        if (r->ro->verify_data) {
            st->stage = "verifying the data";
            rc = ld_verify(r);
        }
    }
    if (rc == ARCA_OK) {
        /* last: a connection limit or a read-only default must not get in the restore's way */
        st->stage = "giving the database its owner, privileges, comment and settings";
        rc = rs_apply_database(r);
    }
    return rc;
}

/* ---- the feed ------------------------------------------------------------------------------- */

static int rs_small_object(rs *r, rs_state *st, const arca_entry *e, int k)
{
    if (st->done[k] || (e->chunk == 0 && st->obj[k].len))
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s appears twice in the archive", obj_names[k]);
    pc_buf_add(&st->obj[k], e->data, e->len);
    if (st->obj[k].oom)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    if (e->chunk + 1 < e->chunks)
        return ARCA_OK;
    st->done[k] = 1;
    if (k == OBJ_CATALOG)
        return rs_catalog(r, st);
    return ARCA_OK;
}

static int rs_entry(rs *r, rs_state *st, const arca_entry *e)
{
    const char *name = e->info.name;
    if (e->info.kind != ARCA_OBJ_DATA) {
        r->h->log(r->h, ARCA_LOG_WARN, "ignoring archive entry %s: not a data object", name);
        return ARCA_OK;
    }
    if (!strncmp(name, "data/", 5) || !strcmp(name, "large-objects/part-0000")) {
        if (!st->done[OBJ_CATALOG])
            return ysql_fail(&r->err, ARCA_EINTEGRITY, "data object %s arrived before "
                             "schema/catalog.json: not a backup of this plugin", name);
        return rs_data(r, st, e);
    }
    for (int k = 0; k < OBJ_COUNT; k++)
        if (!strcmp(name, obj_names[k])) {
            if (k != OBJ_CATALOG && !st->done[OBJ_CATALOG])
                return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s arrived before schema/catalog.json: "
                                 "not a backup of this plugin", name);
            return rs_small_object(r, st, e, k);
        }
    r->h->log(r->h, ARCA_LOG_WARN, "ignoring archive entry %s: unknown to this version", name);
    return ARCA_OK;
}

static int rs_run(rs *r, rs_state *st)
{
    const arca_host *h = r->h;
    const char *fmt = h->feed_info(r->feed, "ysql_format");
    if (!fmt || (strcmp(fmt, "1") && strcmp(fmt, "2")))
        return ysql_fail(&r->err, ARCA_ECONFIG, "this archive was written in ysql format %s; this "
                         "arca reads formats 1 and 2", fmt ? fmt : "(none)");
    const char *mode = h->feed_info(r->feed, "mode");
    const char *enc = h->feed_info(r->feed, "encoding");
    r->table_level = r->ro->table != NULL || (mode && !strcmp(mode, "tables"));
    if (!(r->encoding = strdup(enc && *enc ? enc : "UTF8")))
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    if (!(r->psql_path = ysql_resolve_command(r->yi->cfg->restore_command, "ysqlsh", "psql", &r->err,
                                              "restore_command")))
        return ysql_failed(&r->err);
    st->stage = "reading the archive";
    arca_entry e;
    int n;
    while ((n = h->feed_next(r->feed, &e)) > 0) {
        if (h->cancelled && h->cancelled(h))
            return ysql_fail(&r->err, ARCA_ECANCELED, "restore cancelled");
        if (rs_entry(r, st, &e) < 0)
            return ysql_failed(&r->err);
    }
    if (n < 0)
        return n; /* the core recorded why */
    if (!st->done[OBJ_CATALOG])
        return ysql_fail(&r->err, ARCA_EINTEGRITY, "the archive has no schema/catalog.json");
    return rs_after_data(r, st);
}

/* What the target looks like after a failure, and --drop-on-failure. */
static char *rs_state_note(rs *r, rs_state *st)
{
    pc_buf b = {0};
    if (r->created_db && r->ro->drop_on_failure) {
        ysql_err e;
        ysql_err_init(&e);
        PGconn *admin = rs_admin_connect(r, &e);
        char *sql = ident_sql("DROP DATABASE ", r->target_db, "");
        int rc = admin && sql ? ysql_exec(admin, &e, "cannot drop it", sql) : ARCA_EFAIL;
        if (rc == ARCA_OK)
            pc_buf_printf(&b, "database \"%s\", created by this restore, was dropped (--drop-on-failure)",
                            r->target_db);
        else
            pc_buf_printf(&b, "database \"%s\" was created by this restore, but dropping it failed: %s",
                            r->target_db, e.msg ? e.msg : "out of memory");
        free(sql);
        PQfinish(admin);
        ysql_err_destroy(&e);
    } else if (r->created_db) {
        pc_buf_printf(&b, "database \"%s\" was created by this restore and is left as it is for "
                        "inspection (failed while %s)\nhint: drop it with DROP DATABASE \"%s\", or "
                        "restore with --drop-on-failure", r->target_db, st->stage, r->target_db);
    } else if (r->touched) {
        const char *done = r->post_applied     ? ", after everything was restored"
                           : r->tables_loaded  ? ", after the data was loaded"
                           : r->schema_applied ? ", after the pre-data schema was applied"
                                               : "";
        pc_buf_printf(&b, "database \"%s\" existed before and may now hold a partial restore "
                        "(failed while %s%s)", r->target_db, st->stage, done);
    }
    return b.len ? pc_buf_take(&b) : (pc_buf_free(&b), NULL);
}

int ysql_restore(void *inst, arca_feed *feed, const void *ropts)
{
    ysql_inst *yi = inst;
    static const ysql_restore_opts none = {0};
    rs r = {.yi = yi, .h = yi->host, .feed = feed, .ro = ropts ? ropts : &none};
    rs_state st = {.stage = "starting", .t0 = ysql_now()};
    ysql_err_init(&r.err);
    pthread_mutex_init(&r.mu, NULL);
    r.target_db = r.ro->target_database && *r.ro->target_database ? r.ro->target_database
                                                                   : yi->cfg->dbname;
    r.jobs = (int)(r.ro->jobs > 0 ? r.ro->jobs : yi->cfg->jobs);
    r.where = ysql_where(yi, r.target_db);
    int rc = r.where ? rs_run(&r, &st) : ysql_fail(&r.err, ARCA_ENOMEM, "out of memory");
    if (rc < 0 && r.pool)
        ld_abort(r.pool);
    ld_free(r.pool);
    rs_guard_end(&r);
    if (rc < 0) {
        char *note = rs_state_note(&r, &st);
        if (ysql_failed(&r.err)) {
            rc = r.h->error(r.h, r.err.code, "%s%s%s", r.err.msg ? r.err.msg : "out of memory",
                           note ? "\n" : "", note ? note : "");
        } else if (note) {
            /* the feed failed: the core reports its own error; say what the target holds */
            r.h->log(r.h, ARCA_LOG_WARN, "%s", note);
        }
        free(note);
    } else {
        size_t n = 0;
        for (size_t i = 0; i < r.cat.n; i++)
            n += r.tt[i].want;
        r.h->log(r.h, ARCA_LOG_INFO, "restored %zu tables (%" PRId64 " rows) into %s in %.2f s: "
                 "schema %.2f s, data %.2f s, post-data %.2f s%s", n, st.rows, r.where, ysql_now() - st.t0,
                 st.t_schema - st.t0, st.t_data - st.t_schema, st.t_post - st.t_data,
                 r.ro->verify_data ? ", then verified" : "");
    }
    for (int k = 0; k < OBJ_COUNT; k++)
        pc_buf_free(&st.obj[k]);
    for (size_t i = 0; i < st.nopen; i++)
        free(st.open[i].name);
    free(st.open);
    cat_free(&r.cat);
    free(r.tt);
    ysql_strv_free(r.new_schemas);
    free(r.where);
    free(r.encoding);
    free(r.psql_path);
    pthread_mutex_destroy(&r.mu);
    ysql_err_destroy(&r.err);
    return rc;
}
