/* ysql plugin: what the backup reads from the catalogue in its snapshot -
 * the selected tables (a handful of set-wise queries, however many tables),
 * their ACCESS SHARE locks, the database's own properties, the number of
 * large objects and the roles the backup names. Names arrive in UTF-8
 * (client_encoding UTF8), whatever the database's encoding. */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bk_pattern_sql(bk *b, char **patterns, pc_buf *sql, char ***params, int *np, const char *none)
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

/* ---- tables ------------------------------------------------------------------------- */

/* Sizes: pg_relation_size opens the relation (about 25 us in a new session;
 * 0.26 s for 5,000 tables and their TOAST tables, beside the schema dump on
 * the same cores), so a small table is sized without it when the server
 * already knows: statistics current (analyzed, few changes since) -> relpages;
 * never analyzed, no page counted and fewer than 1,000 rows ever written in
 * the statistics -> one page. A TOAST table with no page, no tuple and no
 * insert counted is 0. An estimate that is off (statistics reset or lost
 * after a crash) costs speed only: a big table taken for small is copied in
 * one COPY inside a pack instead of in slices; the spool that holds packs
 * while the schema dump runs is bounded by bytes held, not by estimates, and
 * a row too big for one COPY message fails the backup, naming the table. */
static const char TABLES_SELECT[] =
    "SELECT c.oid, n.nspname, c.relname, c.relkind, pn.nspname, pc.relname,"
    " CASE WHEN c.relkind <> 'r' THEN 0"
    "  WHEN c.reltuples >= 0 AND c.relpages < 128"
    "   AND coalesce(pg_catalog.pg_stat_get_mod_since_analyze(c.oid), 0) < 1000"
    "  THEN c.relpages::pg_catalog.int8 * 8192"
    "  WHEN c.reltuples < 0 AND c.relpages = 0"
    "   AND coalesce(pg_catalog.pg_stat_get_tuples_inserted(c.oid), 0)"
    "    + coalesce(pg_catalog.pg_stat_get_tuples_updated(c.oid), 0) < 1000 THEN 8192"
    "  ELSE pg_catalog.pg_relation_size(c.oid) END,"
    " CASE WHEN c.relkind <> 'r' OR c.reltoastrelid = 0 THEN 0"
    "  WHEN tc.relpages = 0 AND tc.reltuples <= 0"
    "   AND coalesce(pg_catalog.pg_stat_get_tuples_inserted(tc.oid), 0) = 0 THEN 0"
    "  ELSE pg_catalog.pg_relation_size(c.reltoastrelid) END"
" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_class tc ON tc.oid = c.reltoastrelid"
    " LEFT JOIN pg_catalog.pg_inherits ih ON c.relispartition AND ih.inhrelid = c.oid"
    " LEFT JOIN pg_catalog.pg_class pc ON pc.oid = ih.inhparent"
    " LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace"
    " WHERE c.oid IN (SELECT oid FROM selx) AND c.oid NOT IN (SELECT oid FROM excx)"
    " ORDER BY n.nspname, c.relname";

/* copied columns, with what the big-row export needs to know of their type */
static const char COLUMNS_SELECT[] =
    "SELECT a.attrelid, a.attname,"
    " CASE WHEN a.attlen <> -1 THEN 'f'"
    "  WHEN coalesce(nullif(t.typbasetype, 0), t.oid) IN ('pg_catalog.text'::pg_catalog.regtype,"
    "   'pg_catalog.varchar'::pg_catalog.regtype) THEN 't'"
    "  WHEN coalesce(nullif(t.typbasetype, 0), t.oid) = 'pg_catalog.bytea'::pg_catalog.regtype THEN 'b'"
    "  ELSE 'v' END"
    " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
    " WHERE a.attrelid = ANY ($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped"
    " AND a.attgenerated = '' ORDER BY a.attrelid, a.attnum";

static const char SEQUENCES_SELECT[] =
    "SELECT d.refobjid, s.relname FROM pg_catalog.pg_depend d"
    " JOIN pg_catalog.pg_class s ON s.oid = d.objid"
    " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    " AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    " AND d.refobjid = ANY ($1::pg_catalog.oid[]) AND d.deptype IN ('a', 'i') AND s.relkind = 'S'"
    " ORDER BY 1, 2";

static const char INDEXES_SELECT[] =
    "SELECT x.indrelid, i.relname FROM pg_catalog.pg_index x"
    " JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid"
    " WHERE x.indrelid = ANY ($1::pg_catalog.oid[]) ORDER BY 1, 2";

typedef struct oid_at {
    uint32_t oid;
    size_t at;
} oid_at;

static int oid_cmp(const void *a, const void *b)
{
    uint32_t x = ((const oid_at *)a)->oid, y = ((const oid_at *)b)->oid;
    return x < y ? -1 : x > y;
}

static cat_table *table_of(bk *b, const oid_at *map, const char *oidtext)
{
    oid_at key = {(uint32_t)strtoul(oidtext, NULL, 10), 0};
    const oid_at *hit = bsearch(&key, map, b->cat.n, sizeof *map, oid_cmp);
    return hit ? &b->cat.v[hit->at] : NULL;
}

/* Appends `value` to the NULL-terminated list *v of *n entries. */
static int strv_push(char ***v, size_t *n, const char *value)
{
    char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(value)))
        return -1;
    nv[++*n] = NULL;
    return 0;
}

/* Runs one per-table query (oid, name[, kind]) and hands each row to its table. */
static int per_table(bk *b, const oid_at *map, const char *sql, const char *what, const char *oids,
                     int field)
{
    const char *p[1] = {oids};
    PGresult *r = ysql_query(b->master, &b->err, what, sql, 1, p);
    if (!r)
        return ysql_failed(&b->err);
    int rc = ARCA_OK;
    size_t *count = calloc(b->cat.n + 1, sizeof *count);
    pc_buf *kinds = field == 0 ? calloc(b->cat.n + 1, sizeof *kinds) : NULL;
    if (!count || (field == 0 && !kinds))
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    for (int i = 0; rc == ARCA_OK && i < PQntuples(r); i++) {
        cat_table *t = table_of(b, map, PQgetvalue(r, i, 0));
        if (!t)
            continue;
        size_t at = (size_t)(t - b->cat.v);
        char ***list = field == 0 ? &t->columns : field == 1 ? &t->sequences : &t->indexes;
        if (strv_push(list, &count[at], PQgetvalue(r, i, 1)) < 0)
            rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        if (kinds)
            pc_buf_add(&kinds[at], PQgetvalue(r, i, 2), 1);
    }
    PQclear(r);
    for (size_t i = 0; kinds && i < b->cat.n; i++) {
        /* the letters matter only for tables that hold values stored out of line */
        if (rc == ARCA_OK && b->toast[i] > 0 && kinds[i].len && strpbrk(kinds[i].p, "tbv") &&
            !(b->cat.v[i].wide = pc_buf_take(&kinds[i])))
            rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        pc_buf_free(&kinds[i]);
    }
    free(kinds);
    free(count);
    return rc;
}

/* The selected tables (tables = / exclude_tables = patterns, partitions of
 * selected partitioned tables), one row each: NULL on failure (b->err set). */
static PGresult *tables_query(bk *b)
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
    rc = bk_pattern_sql(b, b->yi->tables, &sql, &params, &np, "TRUE");
    pc_buf_str(&sql, "), exc AS (SELECT oid FROM cand WHERE ");
    if (rc == ARCA_OK)
        rc = bk_pattern_sql(b, b->yi->exclude, &sql, &params, &np, "FALSE");
    /* pg_partition_tree only for partitioned tables: one call per table costs */
    pc_buf_str(&sql,
        "), selx AS (SELECT oid FROM sel UNION SELECT t.relid FROM sel, pg_catalog.pg_partition_tree(sel.oid) t"
        "  WHERE sel.oid IN (SELECT oid FROM pg_catalog.pg_class WHERE relkind = 'p')),"
        " excx AS (SELECT oid FROM exc UNION SELECT t.relid FROM exc, pg_catalog.pg_partition_tree(exc.oid) t"
        "  WHERE exc.oid IN (SELECT oid FROM pg_catalog.pg_class WHERE relkind = 'p')) ");
    pc_buf_str(&sql, TABLES_SELECT);
    char *q = pc_buf_take(&sql);
    PGresult *r = NULL;
    if (rc == ARCA_OK && !q)
        ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    else if (rc == ARCA_OK)
        r = ysql_query(b->master, &b->err, "cannot list the tables", q, np, (const char *const *)params);
    free(q);
    for (int i = 0; i < np; i++)
        free(params[i]);
    free(params);
    return r;
}

/* Row i of tables_query's answer into b->cat (and its oid into map and oids). */
static int table_row(bk *b, PGresult *r, size_t i, oid_at *map, pc_buf *oids)
{
    cat_table *t = &b->cat.v[b->cat.n++];
    int row = (int)i;
    b->oids[i] = (uint32_t)strtoul(PQgetvalue(r, row, 0), NULL, 10);
    map[i] = (oid_at){b->oids[i], i};
    pc_buf_printf(oids, "%s%s", i ? "," : "", PQgetvalue(r, row, 0));
    t->schema = strdup(PQgetvalue(r, row, 1));
    t->name = strdup(PQgetvalue(r, row, 2));
    t->kind = PQgetvalue(r, row, 3)[0];
    if (!PQgetisnull(r, row, 5)) {
        t->parent_schema = strdup(PQgetvalue(r, row, 4));
        t->parent_name = strdup(PQgetvalue(r, row, 5));
    }
    t->bytes = strtoll(PQgetvalue(r, row, 6), NULL, 10);
    b->toast[i] = strtoll(PQgetvalue(r, row, 7), NULL, 10);
    t->columns = calloc(1, sizeof *t->columns);
    t->sequences = calloc(1, sizeof *t->sequences);
    t->indexes = calloc(1, sizeof *t->indexes);
    if (!t->schema || !t->name || (!PQgetisnull(r, row, 5) && (!t->parent_schema || !t->parent_name)) ||
        !t->columns || !t->sequences || !t->indexes)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    return ARCA_OK;
}

int bk_read_catalog(bk *b)
{
    int rc = ARCA_OK;
    PGresult *r = tables_query(b);
    if (!r)
        return ysql_failed(&b->err);
    size_t n = (size_t)PQntuples(r);
    b->cat.v = calloc(n + 1, sizeof *b->cat.v);
    b->oids = calloc(n + 1, sizeof *b->oids);
    b->toast = calloc(n + 1, sizeof *b->toast);
    oid_at *map = calloc(n + 1, sizeof *map);
    pc_buf oids = {0};
    pc_buf_str(&oids, "{");
    if (!b->cat.v || !b->oids || !b->toast || !map)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    for (size_t i = 0; rc == ARCA_OK && i < n; i++)
        rc = table_row(b, r, i, map, &oids);
    PQclear(r);
    pc_buf_str(&oids, "}");
    if (rc == ARCA_OK && oids.oom)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK && n) {
        qsort(map, n, sizeof *map, oid_cmp);
        rc = per_table(b, map, COLUMNS_SELECT, "cannot list the columns", oids.p, 0);
        if (rc == ARCA_OK)
            rc = per_table(b, map, SEQUENCES_SELECT, "cannot list the owned sequences", oids.p, 1);
        if (rc == ARCA_OK)
            rc = per_table(b, map, INDEXES_SELECT, "cannot list the indexes", oids.p, 2);
    }
    free(map);
    pc_buf_free(&oids);
    if (rc == ARCA_OK && b->tables_mode && b->cat.n == 0)
        return ysql_fail(&b->err, ARCA_ECONFIG, "%s: no table matches tables = %s%s%s%s", b->where,
                         b->yi->cfg->tables, b->yi->cfg->exclude_tables ? " (after exclude_tables = " : "",
                         b->yi->cfg->exclude_tables ? b->yi->cfg->exclude_tables : "",
                         b->yi->cfg->exclude_tables ? ")" : "");
    return rc;
}

/* ---- locks ---------------------------------------------------------------------------- */

/* The lock table is max_locks_per_transaction x (max_connections +
 * max_prepared_transactions) entries; a backup holds one per table in its
 * own session and the dump tool one per table in its. */
void bk_lock_hint(bk *b, pc_buf *hint)
{
    /* a connection of its own (the failed session's transaction is aborted), and
     * the tables counted there: the dump tool may fail before the list is read */
    ysql_err e;
    ysql_err_init(&e);
    PGconn *c = ysql_connect(b->yi, NULL, &e);
    PGresult *r = c ? ysql_query(c, &e, "settings",
                                 "SELECT pg_catalog.current_setting('max_locks_per_transaction')::int,"
                                 " pg_catalog.current_setting('max_connections')::int,"
                                 " pg_catalog.current_setting('max_prepared_transactions')::int,"
                                 " (SELECT count(*) FROM pg_catalog.pg_class c"
                                 "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                 "  WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'"
                                 "  AND n.nspname !~ '^pg_')", 0, NULL)
                    : NULL;
    if (r) {
        long per = atol(PQgetvalue(r, 0, 0)), conns = atol(PQgetvalue(r, 0, 1)),
             prep = atol(PQgetvalue(r, 0, 2)), tables = atol(PQgetvalue(r, 0, 3));
        long slots = conns + prep > 0 ? conns + prep : 1;
        long need = (2 * tables + 200) / slots + 1;
        pc_buf_printf(hint, "\nhint: the server's lock table holds max_locks_per_transaction (%ld) x "
                      "(max_connections (%ld) + max_prepared_transactions (%ld)) = %ld locks; this "
                      "backup takes one per table in arca's session and one per table in the dump "
                      "tool's (2 x %ld): set max_locks_per_transaction to %ld or more and restart "
                      "the server", per, conns, prep, per * slots, tables, need > per ? need : per * 2);
        PQclear(r);
    } else {
        pc_buf_str(hint, "\nhint: raise max_locks_per_transaction (a backup locks each table twice: "
                   "in arca's session and in the dump tool's)");
    }
    PQfinish(c);
    ysql_err_destroy(&e);
}

int bk_lock_tables(bk *b)
{
    if (b->is_yb)
        return ARCA_OK; /* YugabyteDB guards against DDL with the catalog version */
    for (size_t i = 0; i < b->cat.n;) {
        pc_buf sql = {0};
        pc_buf_str(&sql, "LOCK TABLE ");
        for (size_t k = 0; i < b->cat.n && k < 1000; i++, k++) {
            if (k)
                pc_buf_str(&sql, ", ");
            ysql_buf_ident(&sql, b->cat.v[i].schema);
            pc_buf_str(&sql, ".");
            ysql_buf_ident(&sql, b->cat.v[i].name);
        }
        pc_buf_str(&sql, " IN ACCESS SHARE MODE");
        char *s = pc_buf_take(&sql);
        if (!s)
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        PGresult *r = PQexec(b->master, s);
        free(s);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char *m = ysql_pg_message(b->master, r);
            pc_buf hint = {0};
            if (m && (strstr(m, "max_locks_per_transaction") || strstr(m, "out of shared memory")))
                bk_lock_hint(b, &hint);
            PQclear(r);
            int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: cannot lock the %zu tables to back up: %s%s",
                               b->where, b->cat.n, m ? m : "out of memory", hint.p ? hint.p : "");
            free(m);
            pc_buf_free(&hint);
            return rc;
        }
        PQclear(r);
    }
    return ARCA_OK;
}

/* ---- the database itself ---------------------------------------------------------------- */

static char *dup_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* Owner, comment, connection limit, privileges and settings: what CREATE
 * DATABASE does not bring and pg_dump --create would. */
int bk_read_database(bk *b)
{
    cat_database *d = &b->cat.db;
    PGresult *r = ysql_query(b->master, &b->err, "cannot read the database's properties",
        "SELECT pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.shobj_description(d.oid, 'pg_database'),"
        " d.datconnlimit, d.datacl IS NULL"
        " FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    d->present = 1;
    d->owner = dup_or_null(r, 0, 0);
    d->comment = dup_or_null(r, 0, 1);
    d->connlimit = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    d->acl_default = PQgetvalue(r, 0, 3)[0] == 't';
    PQclear(r);
    int rc = ARCA_OK;
    if (!d->acl_default) {
        r = ysql_query(b->master, &b->err, "cannot read the database's privileges",
            "SELECT pg_catalog.pg_get_userbyid(a.grantor),"
            " CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,"
            " a.privilege_type, a.is_grantable"
            " FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a"
            " WHERE d.datname = pg_catalog.current_database()", 0, NULL);
        if (!r)
            return ysql_failed(&b->err);
        d->acl = calloc((size_t)PQntuples(r) + 1, sizeof *d->acl);
        if (!d->acl)
            rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        for (int i = 0; rc == ARCA_OK && i < PQntuples(r); i++) {
            cat_acl *a = &d->acl[d->nacl++];
            a->grantor = strdup(PQgetvalue(r, i, 0));
            a->grantee = strdup(PQgetvalue(r, i, 1));
            a->privilege = strdup(PQgetvalue(r, i, 2));
            a->grantable = PQgetvalue(r, i, 3)[0] == 't';
            if (!a->grantor || !a->grantee || !a->privilege)
                rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        }
        PQclear(r);
    }
    if (rc != ARCA_OK)
        return rc;
    r = ysql_query(b->master, &b->err, "cannot read the database's settings",
        "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c.cfg"
        " FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) WITH ORDINALITY c(cfg, i)"
        " WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database"
        "  WHERE datname = pg_catalog.current_database())"
        " ORDER BY s.setrole, c.i", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    d->settings = calloc((size_t)PQntuples(r) + 1, sizeof *d->settings);
    if (!d->settings)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    for (int i = 0; rc == ARCA_OK && i < PQntuples(r); i++) {
        const char *cfg = PQgetvalue(r, i, 1), *eq = strchr(cfg, '=');
        if (!eq)
            continue;
        cat_setting *s = &d->settings[d->nsettings++];
        s->role = dup_or_null(r, i, 0);
        s->name = strndup(cfg, (size_t)(eq - cfg));
        s->value = strdup(eq + 1);
        if ((!PQgetisnull(r, i, 0) && !s->role) || !s->name || !s->value)
            rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    PQclear(r);
    return rc;
}

/* ---- large objects and roles -------------------------------------------------------------- */

int bk_count_large_objects(bk *b)
{
    b->large_objects = 0;
    if (b->is_yb || b->tables_mode || !b->yi->cfg->large_objects)
        return ARCA_OK; /* YugabyteDB has none; pg_dump -t leaves them out too */
    PGresult *r = ysql_query(b->master, &b->err, "cannot count the large objects",
                             "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    b->large_objects = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    b->cat.large_objects = b->large_objects;
    return ARCA_OK;
}

static int add_role(void *ud, const char *role, char use)
{
    return cat_role_use(ud, role, use);
}

/* The roles a restore will need (owners, grantees, policies, the database's
 * owner, privileges and settings), so that it can check them before it
 * touches anything; with include_roles, which of them roles.sql creates. */
int bk_collect_roles(bk *b)
{
    catalog *c = &b->cat;
    const char *texts[2] = {b->pre, b->post};
    size_t lens[2] = {b->pre_len, b->post_len};
    for (int k = 0; k < 2; k++) {
        toc_script toc;
        if (toc_parse(texts[k] ? texts[k] : "", lens[k], &toc) < 0)
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        int rc = toc_roles(&toc, add_role, c);
        toc_free(&toc);
        if (rc < 0)
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    const cat_database *d = &c->db;
    int oom = d->owner && cat_role_use(c, d->owner, 'd') < 0;
    for (size_t i = 0; !oom && i < d->nacl; i++)
        oom = cat_role_use(c, d->acl[i].grantor, 'a') < 0 ||
              (*d->acl[i].grantee && cat_role_use(c, d->acl[i].grantee, 'a') < 0);
    for (size_t i = 0; !oom && i < d->nsettings; i++)
        oom = d->settings[i].role && cat_role_use(c, d->settings[i].role, 's') < 0;
    if (oom)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (!b->yi->cfg->include_roles)
        return ARCA_OK;
    PGresult *r = ysql_query(b->master, &b->err, "cannot list the roles",
                             "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_'", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    for (int i = 0; !oom && i < PQntuples(r); i++) {
        /* only the roles the backup names matter to a restore */
        for (size_t k = 0; k < c->nroles && !oom; k++)
            if (!strcmp(c->roles[k].name, PQgetvalue(r, i, 0)))
                oom = cat_role_use(c, c->roles[k].name, 'r') < 0;
    }
    PQclear(r);
    return oom ? ysql_fail(&b->err, ARCA_ENOMEM, "out of memory") : ARCA_OK;
}
