/* ysql plugin: the schema dump. One dump tool run writes both sections
 * (--section=pre-data --section=post-data: the catalogue is read once, which
 * is most of a dump's time on a database of many tables) and is cut at its
 * first post-data entry; roles come from the dumpall tool beside it. A full
 * backup starts the dump right after the snapshot, so that it runs while the
 * catalogue is read and the tables locked. Scripts are written in UTF-8
 * (--encoding), the encoding of every name the plugin handles. */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bk_catalog_version(bk *b, int64_t *v)
{
    PGresult *r = ysql_query(b->master, &b->err, "cannot read yb_catalog_version()",
                             "SELECT pg_catalog.yb_catalog_version()", 0, NULL);
    if (!r)
        return ysql_failed(&b->err);
    *v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return ARCA_OK;
}

int bk_dump_needs_catalog(const bk *b)
{
    return b->tables_mode || b->yi->exclude;
}

static void *dump_run(void *arg)
{
    bk_dump *d = arg;
    bk *b = d->b;
    pc_buf errout = {0};
    int status = 0;
    d->t_start = ysql_now();
    int rc = ysql_run(b->h, &b->err, d->argv, b->yi->cfg->password, NULL, 0, &d->out, &errout, &status);
    d->t_end = ysql_now();
    if (rc == ARCA_OK && status != 0) {
        char st[64];
        pc_proc_status_text(status, st, sizeof st);
        char *tail = pc_proc_err_tail(&errout, 1500);
        pc_buf hint = {0};
        if (tail && strstr(tail, "server version mismatch"))
            pc_buf_str(&hint, "\nhint: set dump_command to a dump tool of the server's major version");
        else if (tail && (strstr(tail, "max_locks_per_transaction") || strstr(tail, "out of shared memory")))
            bk_lock_hint(b, &hint);
        ysql_fail(&b->err, ARCA_EFAIL, "%s: %s (%s dump) failed with %s: %s%s", b->where, d->argv[0],
                  d->what, st, tail ? tail : "", hint.p ? hint.p : "");
        free(tail);
        pc_buf_free(&hint);
    } else if (rc == ARCA_OK && errout.len) {
        char *tail = pc_proc_err_tail(&errout, 1000);
        b->h->log(b->h, ARCA_LOG_WARN, "%s (%s dump) said: %s", d->argv[0], d->what, tail ? tail : "");
        free(tail);
    }
    pc_buf_free(&errout);
    return NULL;
}

static void dump_free(bk_dump *d)
{
    ysql_strv_free(d->argv);
    pc_buf_free(&d->out);
    *d = (bk_dump){0};
}

static int join_all(bk *b);

void bk_dump_free_all(bk *b)
{
    join_all(b);
    for (int i = 0; i < b->ndumps; i++)
        dump_free(&b->dumps[i]);
    b->ndumps = 0;
}

/* Full mode with exclude_tables: the excluded tables, partitions included. */
static int exclude_args(bk *b, char ***v, size_t *n, size_t *cap)
{
    if (b->tables_mode || !b->yi->exclude)
        return ARCA_OK;
    pc_buf sql = {0};
    char **params = NULL;
    int np = 0;
    pc_buf_str(&sql,
        "WITH cand AS (SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'),"
        " exc AS (SELECT oid FROM cand WHERE ");
    int rc = bk_pattern_sql(b, b->yi->exclude, &sql, &params, &np, "FALSE");
    pc_buf_str(&sql, "), excx AS (SELECT oid FROM exc UNION"
                       " SELECT t.relid FROM exc, pg_catalog.pg_partition_tree(exc.oid) t)"
                       " SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
                       " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                       " WHERE c.oid IN (SELECT oid FROM excx)");
    char *q = pc_buf_take(&sql);
    PGresult *r = NULL;
    if (rc == ARCA_OK && q)
        r = ysql_query(b->master, &b->err, "cannot list the excluded tables", q, np,
                       (const char *const *)params);
    free(q);
    for (int i = 0; i < np; i++)
        free(params[i]);
    free(params);
    if (!r)
        return ysql_failed(&b->err) ? ysql_failed(&b->err) : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int nx = PQntuples(r);
    char **nv = realloc(*v, (*cap + (size_t)nx) * sizeof *nv);
    if (!nv) {
        PQclear(r);
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    *v = nv;
    *cap += (size_t)nx;
    for (int i = 0; i < nx; i++) {
        pc_buf t = {0};
        pc_buf_str(&t, "--exclude-table=");
        ysql_buf_ident(&t, PQgetvalue(r, i, 0));
        pc_buf_str(&t, ".");
        ysql_buf_ident(&t, PQgetvalue(r, i, 1));
        if (!(nv[(*n)++] = pc_buf_take(&t))) {
            PQclear(r);
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        }
    }
    PQclear(r);
    return ARCA_OK;
}

/* argv of a schema dump of `sections` (NULL-terminated), or of the roles. */
static int dump_argv(bk *b, bk_dump *d, const char *const *sections)
{
    size_t cap = 20 + (b->tables_mode ? b->cat.n : 0), n = 0;
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int oom = 0;
#define ADD(s) do { if (!(v[n++] = (s))) oom = 1; } while (0)
    if (sections) {
        ADD(strdup(b->dump_path));
        for (const char *const *s = sections; *s; s++) {
            pc_buf sec = {0};
            pc_buf_printf(&sec, "--section=%s", *s);
            ADD(pc_buf_take(&sec));
        }
        ADD(strdup("--no-password"));
        ADD(strdup("--encoding=UTF8"));
        if (!b->yi->cfg->large_objects && !b->is_yb)
            ADD(strdup("--no-blobs"));
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
        ADD(strdup("--encoding=UTF8"));
    }
#undef ADD
    d->argv = v;
    if (oom)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (sections && exclude_args(b, &d->argv, &n, &cap) < 0)
        return ysql_failed(&b->err);
    v = d->argv;
    if (n + 3 > cap) {
        char **nv = realloc(v, (n + 3) * sizeof *nv);
        if (!nv)
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        d->argv = v = nv;
    }
    v[n++] = strdup(sections ? "-d" : "--dbname");
    v[n++] = ysql_child_conninfo(b->yi, NULL, "arca-dump");
    v[n] = NULL;
    return v[n - 1] && v[n - 2] ? ARCA_OK : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
}

static int start_one(bk *b, const char *what, const char *const *sections)
{
    bk_dump *d = &b->dumps[b->ndumps++];
    *d = (bk_dump){.b = b, .what = what};
    if (dump_argv(b, d, sections) < 0)
        return ysql_failed(&b->err);
    d->started = pthread_create(&d->th, NULL, dump_run, d) == 0;
    return d->started ? ARCA_OK : ysql_fail(&b->err, ARCA_EFAIL, "cannot start a thread for the %s dump", what);
}

static int join_all(bk *b)
{
    for (int i = 0; i < b->ndumps; i++)
        if (b->dumps[i].started) {
            pthread_join(b->dumps[i].th, NULL);
            b->dumps[i].started = 0;
        }
    return ysql_failed(&b->err);
}

static const char *const BOTH[] = {"pre-data", "post-data", NULL};
static const char *const PRE[] = {"pre-data", NULL};
static const char *const POST[] = {"post-data", NULL};

int bk_dump_start(bk *b)
{
    if (b->is_yb && bk_catalog_version(b, &b->cv_before) < 0)
        return ysql_failed(&b->err);
    if (start_one(b, "schema", BOTH) < 0)
        return ysql_failed(&b->err);
    if (b->yi->cfg->include_roles && start_one(b, "roles", NULL) < 0)
        return ysql_failed(&b->err);
    return ARCA_OK;
}

static bk_dump *dump_of(bk *b, const char *what)
{
    for (int i = 0; i < b->ndumps; i++)
        if (!strcmp(b->dumps[i].what, what))
            return &b->dumps[i];
    return NULL;
}

/* Cuts the two-section dump into b->pre and b->post. 1 when the script is not
 * ordered as expected (the caller then dumps the sections one by one). */
static int split_sections(bk *b, const pc_buf *all)
{
    toc_script toc;
    if (toc_parse(all->p ? all->p : "", all->len, &toc) < 0)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    long cut = toc_post_data_start(&toc);
    if (cut < 0) {
        toc_free(&toc);
        return 1;
    }
    char *keep = calloc(toc.n + 1, 1);
    pc_buf pre = {0}, post = {0};
    if (keep) {
        memset(keep, 1, (size_t)cut);
        toc_emit(&toc, keep, 0, &pre);
        for (size_t i = 0; i < toc.n; i++)
            keep[i] = !keep[i];
        toc_emit(&toc, keep, 0, &post);
    }
    free(keep);
    toc_free(&toc);
    b->pre_len = pre.len;
    b->post_len = post.len;
    b->pre = pc_buf_take(&pre);
    b->post = pc_buf_take(&post);
    return b->pre && b->post ? ARCA_OK : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
}

int bk_dump_finish(bk *b)
{
    const ysql_config *cfg = b->yi->cfg;
    for (int attempt = 1;; attempt++) {
        if (join_all(b) < 0)
            return ysql_failed(&b->err);
        if (!b->is_yb)
            break;
        int64_t after = 0;
        if (bk_catalog_version(b, &after) < 0)
            return ysql_failed(&b->err);
        b->catalog_version = after;
        ybx_catalog_verdict v = ybx_catalog_check(b->cv_before, after, YBX_PHASE_SCHEMA, attempt,
                                                  (int)cfg->catalog_retries);
        if (v == YBX_CATALOG_OK)
            break;
        if (v == YBX_CATALOG_FAIL) {
            char *m = ybx_catalog_message(b->cv_before, after, YBX_PHASE_SCHEMA, attempt);
            int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: %s", b->where, m ? m : "catalog changed");
            free(m);
            return rc;
        }
        b->h->log(b->h, ARCA_LOG_WARN, "%s: catalog version moved from %" PRId64 " to %" PRId64
                  " while dumping the schema (a DDL ran); dumping again", b->where, b->cv_before, after);
        bk_dump_free_all(b);
        if (bk_dump_start(b) < 0)
            return ysql_failed(&b->err);
    }
    bk_dump *all = dump_of(b, "schema");
    int rc = split_sections(b, &all->out);
    if (rc <= 0)
        return rc;
    /* not ordered as this cut expects: the sections one by one, as the dump tool cuts them */
    b->h->log(b->h, ARCA_LOG_WARN, "%s: the schema dump is not ordered pre-data first; dumping the "
              "sections separately", b->where);
    int n0 = b->ndumps;
    if (start_one(b, "pre-data", PRE) < 0 || start_one(b, "post-data", POST) < 0 || join_all(b) < 0)
        return ysql_failed(&b->err);
    bk_dump *pre = &b->dumps[n0], *post = &b->dumps[n0 + 1];
    b->pre_len = pre->out.len;
    b->post_len = post->out.len;
    b->pre = pc_buf_take(&pre->out);
    b->post = pc_buf_take(&post->out);
    return b->pre && b->post ? ARCA_OK : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
}
