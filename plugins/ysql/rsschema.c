/* ysql plugin: what a restore does with the schema - the roles check before
 * anything is written, the scripts (whole, or filtered: a table-level restore
 * keeps the entries of its tables, --no-owner drops OWNER TO statements,
 * --no-privileges the ACL entries, --no-large-objects the large objects'),
 * run through the restore command (dump scripts hold psql meta-commands),
 * and at the end the database's own properties. */
#include "restore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ROLE_HINT[] =
    "hint: create the roles first, or restore with --no-owner (objects then belong to the "
    "user restoring) and --no-privileges (no GRANT or REVOKE)";

/* ---- roles -------------------------------------------------------------------------------- */

int rs_check_roles(rs *r, PGconn *admin)
{
    if (r->table_level || !r->cat.nroles)
        return ARCA_OK; /* format 1 archives do not list their roles; table-level: see the scripts */
    PGresult *res = ysql_query(admin, &r->err, "cannot list the target cluster's roles",
                               "SELECT rolname FROM pg_catalog.pg_roles", 0, NULL);
    if (!res)
        return ysql_failed(&r->err);
    char **have = calloc((size_t)PQntuples(res) + 1, sizeof *have);
    int oom = !have;
    for (int i = 0; !oom && i < PQntuples(res); i++)
        oom = !(have[i] = strdup(PQgetvalue(res, i, 0)));
    PQclear(res);
    size_t missing = 0;
    int in_archive = 0;
    for (size_t i = 0; i < r->cat.nroles; i++)
        in_archive |= strchr(r->cat.roles[i].uses, 'r') != NULL;
    char *list = oom ? NULL : db_missing_roles(&r->cat, have, r->ro->no_owner, r->ro->no_privileges,
                                               in_archive && !r->ro->no_roles, &missing);
    ysql_strv_free(have);
    if (!list)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    int rc = ARCA_OK;
    if (missing)
        rc = ysql_fail(&r->err, ARCA_EFAIL,
                       "%s: the target cluster lacks %zu role%s that this backup names:\n%s\n%s%s",
                       r->where, missing, missing == 1 ? "" : "s", list, ROLE_HINT,
                       in_archive && r->ro->no_roles ? "; or drop --no-roles: the backup holds them"
                       : in_archive ? ""
                                    : "; a backup made with include_roles = true carries them");
    free(list);
    return rc;
}

/* ---- the restore command ---------------------------------------------------------------- */

/* A script runs in one transaction where that keeps a failure from leaving
 * half of it behind: on PostgreSQL, into a database that existed before the
 * restore. A database this restore created is left whole or dropped after a
 * failure anyway, and one transaction would hold a lock on every object the
 * script touches: a few thousand tables exceed max_locks_per_transaction
 * (pg_restore runs statement by statement too). */
static int rs_one_transaction(const rs *r)
{
    return !r->target_is_yb && !r->created_db;
}

/* Entries of a script per transaction when it does not run in one: few
 * enough locks (an entry takes one or two) for the default lock table, few
 * enough commits to cost nothing. */
enum { RS_ENTRIES_PER_TX = 200 };

/* Runs a schema script through psql/ysqlsh. `strict`: stop at the first error
 * (ON_ERROR_STOP), in one transaction where rs_one_transaction says so.
 * Without it every statement runs and the caller judges stderr. */
static int rs_psql(rs *r, const char *what, const char *script, size_t len, int strict,
                   pc_buf *errout, int *status)
{
    char *conninfo = ysql_child_conninfo(r->yi, r->target_db, "arca-restore");
    if (!conninfo)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    const char *argv[16];
    int n = 0;
    argv[n++] = r->psql_path;
    argv[n++] = "-X";
    argv[n++] = "-q";
    argv[n++] = "--no-password";
    argv[n++] = "-b"; /* echo failed statements: the error names the statement */
    if (strict) {
        argv[n++] = "-v";
        argv[n++] = "ON_ERROR_STOP=1";
        if (rs_one_transaction(r))
            argv[n++] = "--single-transaction";
    }
    argv[n++] = "-d";
    argv[n++] = conninfo;
    argv[n++] = "-f";
    argv[n++] = "-";
    argv[n] = NULL;
    r->h->log(r->h, ARCA_LOG_DEBUG, "applying %s (%zu bytes) with %s", what, len, r->psql_path);
    int rc = ysql_run(r->h, &r->err, (char *const *)argv, r->yi->cfg->password, script ? script : "",
                      len, NULL, errout, status);
    free(conninfo);
    return rc;
}

static int rs_apply_script(rs *r, const char *what, const char *script, size_t len)
{
    pc_buf errout = {0};
    int status = 0;
    r->touched = 1;
    int rc = rs_psql(r, what, script, len, 1, &errout, &status);
    if (rc == ARCA_OK && status != 0) {
        char stext[64];
        pc_proc_status_text(status, stext, sizeof stext);
        char *tail = pc_proc_err_tail(&errout, 2000);
        int role = tail && strstr(tail, "role \"") && strstr(tail, "does not exist");
        int locks = tail && strstr(tail, "max_locks_per_transaction") && rs_one_transaction(r);
        rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: applying the %s failed (%s %s): %s%s%s%s%s", r->where, what,
                       r->psql_path, stext, tail ? tail : "",
                       rs_one_transaction(r) ? "\n(the script ran in one transaction: none of it was applied)" : "",
                       role ? "\n" : "", role ? ROLE_HINT : "",
                       locks ? "\nhint: into a database that exists, the script runs in one transaction, which "
                               "locks every table it touches: raise max_locks_per_transaction, or let the restore "
                               "create the database (then it runs statement by statement)"
                             : "");
        free(tail);
    } else if (rc == ARCA_OK && errout.len) {
        char *tail = pc_proc_err_tail(&errout, 1000);
        r->h->log(r->h, ARCA_LOG_INFO, "%s said: %s", r->psql_path, tail ? tail : "");
        free(tail);
    }
    pc_buf_free(&errout);
    return rc;
}

/* Roles are cluster-wide: the ones that exist already are kept as they are;
 * any other error fails the restore. */
int rs_apply_roles(rs *r, const char *script, size_t len)
{
    pc_buf errout = {0};
    int status = 0;
    r->touched = 1;
    int rc = rs_psql(r, "roles", script, len, 0, &errout, &status);
    if (rc == ARCA_OK) {
        pc_buf bad = {0};
        size_t kept = 0;
        for (char *line = errout.p; line && *line;) {
            char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            char *err = memmem(line, n, "ERROR:", 6);
            if (err && !memmem(line, n, "already exists", 14)) {
                pc_buf_add(&bad, "\n  ", 3);
                pc_buf_add(&bad, line, n);
            } else if (err) {
                kept++;
            }
            line = nl ? nl + 1 : NULL;
        }
        if (bad.len)
            rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: restoring roles failed:%s", r->where, bad.p);
        else if (status != 0 && !bad.len && !kept) {
            char stext[64];
            pc_proc_status_text(status, stext, sizeof stext);
            char *tail = pc_proc_err_tail(&errout, 1500);
            rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: restoring roles failed (%s %s): %s", r->where,
                           r->psql_path, stext, tail ? tail : "");
            free(tail);
        } else if (kept) {
            r->h->log(r->h, ARCA_LOG_INFO, "%s: %zu roles already existed and were kept as they are",
                      r->where, kept);
        }
        pc_buf_free(&bad);
    }
    pc_buf_free(&errout);
    return rc;
}

/* ---- filtered scripts ------------------------------------------------------------------------ */

/* Which entries of a script this restore applies (keep[i]); NULL on oom. */
static char *rs_keep(rs *r, toc_script *toc, int pre_data, size_t *blobs)
{
    char *keep = calloc(toc->n + 1, 1);
    char *want = calloc(r->cat.n + 1, 1);
    if (!keep || !want) {
        free(keep);
        free(want);
        return NULL;
    }
    for (size_t i = 0; i < r->cat.n; i++)
        want[i] = (char)(r->tt[i].want && !r->tt[i].existed);
    *blobs = 0;
    int oom = 0;
    for (size_t i = 0; i < toc->n && !oom; i++) {
        toc_entry *e = &toc->v[i];
        int k = 1;
        if (r->table_level) {
            int w = toc_entry_wanted(toc, e, &r->cat, want);
            oom = w < 0;
            k = w > 0;
            if (!k && pre_data && !strcmp(e->type, "SCHEMA")) {
                oom = toc_entry_subject(toc, e) < 0;
                k = !oom && e->subject.kind == SQL_SUBJ_SCHEMA && e->subject.name &&
                    ysql_strv_has(r->new_schemas, e->subject.name);
            }
        }
        if (k && r->ro->no_privileges && (!strcmp(e->type, "ACL") || !strcmp(e->type, "DEFAULT ACL")))
            k = 0;
        if (k && !r->table_level) {
            int lo = toc_is_large_object(toc, e);
            oom = lo < 0;
            if (lo > 0 && !strcmp(e->type, "BLOB"))
                (*blobs)++;
            if (lo > 0 && r->ro->no_large_objects)
                k = 0;
        }
        keep[i] = (char)k;
    }
    free(want);
    if (oom) {
        free(keep);
        return NULL;
    }
    return keep;
}

int rs_apply_section(rs *r, const pc_buf *script, int post)
{
    const char *what = post ? "post-data schema" : "pre-data schema";
    /* PostgreSQL: the post-data's index builds run on `jobs` connections first (rspost.c);
     * YugabyteDB builds indexes its own way (backfill), there the script stays whole */
    int parallel = post && r->jobs > 1 && !r->target_is_yb;
    /* statement by statement (rs_one_transaction), yet not a commit (and a WAL flush) each:
     * entries go in transactions of RS_ENTRIES_PER_TX */
    size_t per_tx = !r->target_is_yb && !rs_one_transaction(r) ? RS_ENTRIES_PER_TX : 0;
    int filter = parallel || per_tx || r->table_level || r->ro->no_owner || r->ro->no_privileges ||
                 r->ro->no_large_objects || r->cat.format == 1;
    if (!filter)
        return rs_apply_script(r, what, script->p, script->len);
    toc_script toc;
    if (toc_parse(script->p ? script->p : "", script->len, &toc) < 0)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    size_t blobs = 0, nbuilds = 0;
    char *keep = rs_keep(r, &toc, !post, &blobs);
    toc_build *builds = NULL;
    pc_buf setup = {0};
    int oom = !keep || (parallel && toc_post_split(&toc, keep, &r->cat, &setup, &builds, &nbuilds) < 0);
    pc_buf out = {0};
    size_t kept = 0;
    if (!oom) {
        pc_buf_add(&out, toc.text, toc.preamble_end);
        /* pg_dump -t leaves schemas out: create the missing ones it has no entry for */
        for (char **s = r->new_schemas; !post && s && *s; s++) {
            int entry = 0;
            for (size_t i = 0; i < toc.n && !entry; i++)
                entry = keep[i] && !strcmp(toc.v[i].type, "SCHEMA") && toc.v[i].subject.name &&
                        !strcmp(toc.v[i].subject.name, *s);
            if (!entry) {
                pc_buf_str(&out, "\nCREATE SCHEMA ");
                ysql_buf_ident(&out, *s);
                pc_buf_str(&out, ";\n");
                kept++;
            }
        }
        toc_script body = toc;
        body.preamble_end = 0; /* the preamble is in `out` already */
        pc_buf rest = {0};
        kept += toc_emit_grouped(&body, keep, r->ro->no_owner, per_tx, &rest);
        pc_buf_add(&out, rest.p ? rest.p : "", rest.len);
        if (rest.oom)
            out.oom = 1;
        pc_buf_free(&rest);
    }
    int rc = ARCA_OK;
    if (oom || out.oom)
        rc = ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK && r->cat.format == 1 && blobs && !r->ro->no_large_objects)
        r->h->log(r->h, ARCA_LOG_WARN, "%s: this archive (written by an arca without large object "
                  "support) creates %zu large objects but holds none of their contents: they are "
                  "restored empty", r->where, blobs);
    if (rc == ARCA_OK && nbuilds) {
        r->touched = 1;
        rc = rs_run_builds(r, &toc, setup.p, builds, nbuilds);
    }
    if (rc == ARCA_OK && kept)
        rc = rs_apply_script(r, nbuilds ? "rest of the post-data schema (after its index builds)" : what, out.p,
                             out.len);
    free(keep);
    free(builds);
    pc_buf_free(&setup);
    toc_free(&toc);
    pc_buf_free(&out);
    return rc;
}

/* ---- the database itself ------------------------------------------------------------------ */

int rs_apply_database(rs *r)
{
    if (r->table_level || !r->cat.db.present)
        return ARCA_OK;
    char *sql = db_props_sql(&r->cat.db, r->target_db, r->ro->no_owner, r->ro->no_privileges);
    if (!sql)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    int rc = ARCA_OK;
    if (*sql) {
        PGconn *c = ysql_connect(r->yi, r->target_db, &r->err);
        r->touched = 1;
        if (!c) {
            rc = ysql_failed(&r->err);
        } else if (ysql_session_setup(c, &r->err) == ARCA_OK) {
            PGresult *res = PQexec(c, sql);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                char *m = ysql_pg_message(c, res);
                int role = m && strstr(m, "role \"") && strstr(m, "does not exist");
                rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: cannot give the database its owner, privileges, "
                               "comment, connection limit and settings: %s%s%s", r->where,
                               m ? m : "out of memory", role ? "\n" : "", role ? ROLE_HINT : "");
                free(m);
            }
            PQclear(res);
        } else {
            rc = ysql_failed(&r->err);
        }
        PQfinish(c);
    }
    if (rc == ARCA_OK && *sql)
        r->h->log(r->h, ARCA_LOG_INFO, "%s: the database's own properties restored", r->where);
    free(sql);
    return rc;
}
