/* ysql plugin: the data export. Tables bigger than slice_size are cut into
 * ranges of heap pages (PostgreSQL 14+ scans a ctid range directly), so that
 * several connections share one big table; `jobs` worker threads, each with its
 * own connection joined to the backup's snapshot, take slices largest first and
 * stream `COPY ... TO STDOUT` (text format) row by row into one archive object
 * per slice, hashing every row for the table digest on the way. */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BK_FLUSH ((size_t)256 << 10) /* bytes gathered before an object_write */
#define BK_PAGE 8192                 /* heap page size assumed when planning slices */
#define BK_MIN_SLICE ((int64_t)16 << 20) /* smallest slice made only to use every connection */

static int slice_cmp(const void *a, const void *b)
{
    const bk_slice *x = a, *y = b;
    if (x->est != y->est)
        return x->est > y->est ? -1 : 1;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return x->index - y->index;
}

int bk_plan_slices(bk *b)
{
    uint64_t slice = b->yi->cfg->slice_size;
    /* ctid range scans exist from PostgreSQL 14; YugabyteDB tables have no heap pages */
    int can_slice = !b->is_yb && b->server_num >= 140000;
    size_t cap = 0;
    for (size_t i = 0; i < b->cat.n; i++) {
        cat_table *t = &b->cat.v[i];
        if (t->kind != 'r')
            continue;
        int64_t pages = t->bytes / BK_PAGE;
        int count = 1;
        if (can_slice && (uint64_t)t->bytes > slice)
            count = (int)(((uint64_t)t->bytes + slice - 1) / slice);
        /* a table worth it gets a slice per connection, even below slice_size */
        int64_t jobs = b->yi->cfg->jobs, worth = t->bytes / BK_MIN_SLICE;
        if (can_slice && worth >= 2 && count < jobs)
            count = (int)(worth < jobs ? worth : jobs);
        /* whole rounds of `jobs` slices: 3 slices on 2 connections would copy (and
         * restore) the last third on one connection while the other idles */
        if (can_slice && count > jobs && count % jobs && worth >= count + jobs - count % jobs)
            count += (int)(jobs - count % jobs);
        t->slices = count;
        if (b->nslices + (size_t)count > cap) {
            cap = (b->nslices + (size_t)count) * 2;
            bk_slice *v = realloc(b->slices, cap * sizeof *v);
            if (!v)
                return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
            b->slices = v;
        }
        int64_t per = count > 1 ? (pages + count - 1) / count : 0;
        for (int k = 0; k < count; k++) {
            bk_slice *s = &b->slices[b->nslices++];
            *s = (bk_slice){.table = i, .index = k, .count = count, .from = -1, .to = -1,
                            .est = t->bytes / count};
            if (count > 1) {
                s->from = per * k;
                s->to = k == count - 1 ? -1 : per * (k + 1); /* the last range is open */
            }
        }
        b->total += (uint64_t)t->bytes;
    }
    if (b->nslices > 1)
        qsort(b->slices, b->nslices, sizeof *b->slices, slice_cmp);
    return ARCA_OK;
}

/* COPY statement of one slice. */
static char *slice_copy_sql(const cat_table *t, const bk_slice *s)
{
    pc_buf q = {0};
    if (s->from < 0) {
        pc_buf_str(&q, "COPY ");
        ysql_buf_ident(&q, t->schema);
        pc_buf_str(&q, ".");
        ysql_buf_ident(&q, t->name);
        if (t->columns[0]) {
            pc_buf_str(&q, " (");
            for (char **c = t->columns; *c; c++) {
                if (c != t->columns)
                    pc_buf_str(&q, ", ");
                ysql_buf_ident(&q, *c);
            }
            pc_buf_str(&q, ")");
        }
        pc_buf_str(&q, " TO STDOUT");
        return pc_buf_take(&q);
    }
    pc_buf_str(&q, "COPY (SELECT ");
    for (char **c = t->columns; *c; c++) {
        if (c != t->columns)
            pc_buf_str(&q, ", ");
        ysql_buf_ident(&q, *c);
    }
    pc_buf_str(&q, " FROM ONLY ");
    ysql_buf_ident(&q, t->schema);
    pc_buf_str(&q, ".");
    ysql_buf_ident(&q, t->name);
    pc_buf_printf(&q, " WHERE ctid >= '(%" PRId64 ",0)'::pg_catalog.tid", s->from);
    if (s->to >= 0)
        pc_buf_printf(&q, " AND ctid < '(%" PRId64 ",0)'::pg_catalog.tid", s->to);
    pc_buf_str(&q, ") TO STDOUT");
    return pc_buf_take(&q);
}

typedef struct bk_worker {
    bk *b;
    pthread_t th;
    int started;
    PGconn *conn;
    ysql_hasher *hasher;
    pc_buf out;
} bk_worker;

static int bk_next_slice(bk *b, size_t *i)
{
    pthread_mutex_lock(&b->mu);
    int have = b->next < b->nslices && !ysql_failed(&b->err);
    if (have)
        *i = b->next++;
    pthread_mutex_unlock(&b->mu);
    return have;
}

static void bk_progress(bk *b, size_t bytes)
{
    pthread_mutex_lock(&b->mu);
    b->done += bytes;
    uint64_t done = b->done, total = b->total > done ? b->total : done;
    pthread_mutex_unlock(&b->mu);
    if (b->h->progress)
        b->h->progress(b->h, done, total);
}

static int bk_flush(bk_worker *w, arca_object *o)
{
    if (!w->out.len)
        return ARCA_OK;
    int rc = w->b->h->object_write(o, w->out.p, w->out.len);
    bk_progress(w->b, w->out.len);
    w->out.len = 0;
    return rc;
}

/* Streams the COPY of one slice into object `o`. */
static int bk_copy_slice(bk_worker *w, const cat_table *t, const bk_slice *s, arca_object *o,
                         ysql_digest *dg, const char *label)
{
    bk *b = w->b;
    const arca_host *h = b->h;
    char *sql = slice_copy_sql(t, s);
    if (!sql)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    PGresult *r = PQexec(w->conn, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        char *m = ysql_pg_message(w->conn, r);
        PQclear(r);
        int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s failed: %s", b->where, label, m ? m : "?");
        free(m);
        return rc;
    }
    PQclear(r);
    int rc = ARCA_OK;
    for (;;) {
        char *row = NULL;
        int n = PQgetCopyData(w->conn, &row, 0);
        if (n < 0)
            break;
        if (rc == ARCA_OK) {
            if (ysql_digest_row(w->hasher, dg, row, (size_t)n) < 0)
                rc = ysql_fail(&b->err, ARCA_EFAIL, "cannot hash a row of %s (libcrypto)", label);
            pc_buf_add(&w->out, row, (size_t)n);
            if (w->out.oom)
                rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        }
        PQfreemem(row);
        if (rc == ARCA_OK && w->out.len >= BK_FLUSH) {
            rc = bk_flush(w, o);
            if (rc == ARCA_OK && ((h->cancelled && h->cancelled(h)) || ysql_failed(&b->err)))
                rc = ARCA_ECANCELED; /* interrupted, or another slice failed: stop early */
            if (rc < 0) {
                ysql_fail(&b->err, rc, "%s", rc == ARCA_ECANCELED ? "backup cancelled"
                                                                  : "cannot write to the archive");
                /* stop the server sending the rest; the loop drains what is in flight */
                PGcancel *c = PQgetCancel(w->conn);
                char ebuf[256];
                if (c) {
                    PQcancel(c, ebuf, sizeof ebuf);
                    PQfreeCancel(c);
                }
            }
        }
    }
    if (rc == ARCA_OK)
        rc = bk_flush(w, o);
    r = PQgetResult(w->conn);
    if (rc == ARCA_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char *m = ysql_pg_message(w->conn, r);
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s failed: %s", b->where, label, m ? m : "?");
        free(m);
    } else if (rc == ARCA_OK && strtoll(PQcmdTuples(r), NULL, 10) != dg->rows) {
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s reported %s rows but sent %" PRId64, b->where,
                       label, PQcmdTuples(r), dg->rows);
    }
    PQclear(r);
    while ((r = PQgetResult(w->conn)))
        PQclear(r);
    w->out.len = 0;
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot export %s", label) : ARCA_OK;
}

static int bk_export_slice(bk_worker *w, const bk_slice *s)
{
    bk *b = w->b;
    const arca_host *h = b->h;
    const cat_table *t = &b->cat.v[s->table];
    char *comp = ysql_object_component(t->schema, t->name);
    char *label = ysql_qualified(t->schema, t->name);
    pc_buf name = {0};
    pc_buf_printf(&name, "data/%s/part-%04d", comp ? comp : "", s->index);
    char *oname = pc_buf_take(&name);
    free(comp);
    if (!oname || !label) {
        free(oname);
        free(label);
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    arca_object_info info = {.name = oname, .kind = ARCA_OBJ_DATA, .mode = 0600,
                             .mtime_sec = b->started};
    arca_object *o = NULL;
    int rc = h->object_begin(b->sink, &info, &o);
    if (rc < 0) {
        ysql_fail(&b->err, rc, "cannot add %s to the archive", oname);
        free(oname);
        free(label);
        return rc;
    }
    ysql_digest dg = {0};
    rc = bk_copy_slice(w, t, s, o, &dg, label);
    if (rc == ARCA_OK) {
        char digest[64], pages[64];
        ysql_digest_format(&dg, digest);
        if (s->from >= 0 && s->to >= 0)
            snprintf(pages, sizeof pages, "%" PRId64 "-%" PRId64, s->from, s->to);
        else
            snprintf(pages, sizeof pages, "%" PRId64 "-", s->from);
        rc = h->object_meta(o, "schema", t->schema);
        if (rc == ARCA_OK)
            rc = h->object_meta(o, "table", t->name);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(o, "slice", s->index);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(o, "slices", s->count);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(o, "rows", dg.rows);
        if (rc == ARCA_OK)
            rc = h->object_meta(o, "digest", digest);
        if (rc == ARCA_OK && s->from >= 0)
            rc = h->object_meta(o, "pages", pages);
        if (rc < 0)
            ysql_fail(&b->err, rc, "cannot describe %s in the manifest", oname);
    }
    int end = h->object_end(o);
    if (rc == ARCA_OK && end < 0)
        rc = ysql_fail(&b->err, end, "cannot add %s to the archive", oname);
    if (rc == ARCA_OK)
        h->log(h, ARCA_LOG_DEBUG, "exported %s slice %d/%d: %" PRId64 " rows", label, s->index + 1,
               s->count, dg.rows);
    free(oname);
    free(label);
    return rc;
}

static void *bk_worker_main(void *arg)
{
    bk_worker *w = arg;
    bk *b = w->b;
    if (!(w->hasher = ysql_hasher_new())) {
        ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        return NULL;
    }
    if (!w->conn && !(w->conn = ysql_connect(b->yi, NULL, &b->err)))
        return NULL;
    if (ysql_session_setup(w->conn, &b->err, b->encoding) < 0 || bk_join_snapshot(b, w->conn) < 0)
        return NULL;
    size_t i;
    while (bk_next_slice(b, &i))
        if (bk_export_slice(w, &b->slices[i]) < 0)
            break;
    if (!ysql_failed(&b->err))
        ysql_exec(w->conn, &b->err, "cannot finish an export transaction", "COMMIT");
    return NULL;
}

int bk_export_data(bk *b)
{
    size_t n = (size_t)b->yi->cfg->jobs;
    if (n > b->nslices)
        n = b->nslices;
    if (n == 0)
        return ARCA_OK;
    bk_worker *w = calloc(n, sizeof *w);
    if (!w)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    /* connect up front, one after the other: a bad server fails once, clearly */
    for (size_t i = 0; i < n; i++) {
        w[i].b = b;
        if (!(w[i].conn = ysql_connect(b->yi, NULL, &b->err)))
            break;
    }
    for (size_t i = 0; i < n && !ysql_failed(&b->err); i++)
        w[i].started = pthread_create(&w[i].th, NULL, bk_worker_main, &w[i]) == 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i].started)
            pthread_join(w[i].th, NULL);
        else if (!ysql_failed(&b->err))
            ysql_fail(&b->err, ARCA_EFAIL, "cannot start an export thread");
        if (w[i].conn)
            PQfinish(w[i].conn);
        ysql_hasher_free(w[i].hasher);
        pc_buf_free(&w[i].out);
    }
    free(w);
    return ysql_failed(&b->err);
}
