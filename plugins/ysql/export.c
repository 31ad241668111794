/* ysql plugin: the data export. Tables bigger than slice_size are cut into
 * ranges of heap pages (PostgreSQL 14+ scans a ctid range directly), so that
 * several connections share one big table; small tables are packed, many to
 * an object (one manifest entry and one archive member for hundreds of tables
 * instead of one each); the large objects are one more object. `jobs` worker
 * threads, each with its own connection, take the objects largest first and,
 * each in a transaction of its own joined to the backup's snapshot (so that a
 * worker holds the locks of one object at a time), stream `COPY ... TO STDOUT`
 * row by row into the archive, hashing every row for the table digest. */
#include "backup.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BK_FLUSH ((size_t)256 << 10) /* bytes gathered before an object_write */
#define BK_PAGE 8192                 /* heap page size assumed when planning slices */
#define BK_MIN_SLICE ((int64_t)16 << 20) /* smallest slice made only to use every connection */
#define BK_PACK_TABLE ((int64_t)1 << 20) /* tables up to this size are packed */
#define BK_PACK_BYTES ((int64_t)32 << 20) /* ... into packs of about this much */
#define BK_PACK_TABLES 1000               /* ... and at most this many tables */

static int slice_cmp(const void *a, const void *b)
{
    const bk_slice *x = a, *y = b;
    if (x->est != y->est)
        return x->est > y->est ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return x->index - y->index;
}

static bk_slice *new_slice(bk *b, size_t *cap)
{
    if (b->nslices == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        bk_slice *v = realloc(b->slices, *cap * sizeof *v);
        if (!v)
            return NULL;
        b->slices = v;
    }
    bk_slice *s = &b->slices[b->nslices++];
    *s = (bk_slice){0};
    return s;
}

int bk_plan_slices(bk *b)
{
    uint64_t slice = b->yi->cfg->slice_size;
    /* ctid range scans exist from PostgreSQL 14; YugabyteDB tables have no heap pages */
    int can_slice = !b->is_yb && b->server_num >= 140000;
    int64_t jobs = b->yi->cfg->jobs;
    size_t cap = 0, pack = SIZE_MAX; /* the pack being filled (an index: slices move) */
    int npacks = 0;
    for (size_t i = 0; i < b->cat.n; i++) {
        cat_table *t = &b->cat.v[i];
        if (t->kind != 'r')
            continue;
        b->total += (uint64_t)t->bytes;
        int64_t pages = t->bytes / BK_PAGE;
        int count = 1;
        if (can_slice && (uint64_t)t->bytes > slice)
            count = (int)(((uint64_t)t->bytes + slice - 1) / slice);
        /* a table worth it gets a slice per connection, even below slice_size */
        int64_t worth = t->bytes / BK_MIN_SLICE;
        if (can_slice && worth >= 2 && count < jobs)
            count = (int)(worth < jobs ? worth : jobs);
        /* whole rounds of `jobs` slices: 3 slices on 2 connections would copy (and
         * restore) the last third on one connection while the other idles */
        if (can_slice && count > jobs && count % jobs && worth >= count + jobs - count % jobs)
            count += (int)(jobs - count % jobs);
        t->slices = count;
        if (count == 1 && t->bytes < BK_PACK_TABLE && b->toast[i] == 0) {
            /* a small table without values stored out of line: into the current pack */
            if (pack == SIZE_MAX || b->slices[pack].est >= BK_PACK_BYTES ||
                b->slices[pack].ntables >= BK_PACK_TABLES) {
                bk_slice *p = new_slice(b, &cap);
                if (!p)
                    return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
                *p = (bk_slice){.kind = BK_PACK, .index = npacks++, .from = -1, .to = -1};
                if (!(p->tables = calloc(BK_PACK_TABLES, sizeof *p->tables)))
                    return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
                pack = b->nslices - 1;
            }
            bk_slice *p = &b->slices[pack];
            p->tables[p->ntables++] = i;
            p->est += t->bytes > BK_PAGE ? t->bytes : BK_PAGE;
            continue;
        }
        int64_t per = count > 1 ? (pages + count - 1) / count : 0;
        for (int k = 0; k < count; k++) {
            bk_slice *s = new_slice(b, &cap);
            if (!s)
                return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
            *s = (bk_slice){.kind = BK_TABLE, .table = i, .index = k, .count = count, .from = -1,
                            .to = -1, .est = (t->bytes + b->toast[i]) / count};
            if (count > 1) {
                s->from = per * k;
                s->to = k == count - 1 ? -1 : per * (k + 1); /* the last range is open */
            }
        }
    }
    if (b->large_objects > 0) {
        bk_slice *s = new_slice(b, &cap);
        if (!s)
            return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        /* size unknown: first, so that many or big ones do not come last */
        *s = (bk_slice){.kind = BK_LARGE_OBJECTS, .from = -1, .to = -1, .est = INT64_MAX};
    }
    if (b->nslices > 1)
        qsort(b->slices, b->nslices, sizeof *b->slices, slice_cmp);
    return ARCA_OK;
}

/* COPY statement of a table, a page range of it, or its rows that fit in a
 * COPY message (tables with values stored out of line). */
static char *copy_sql(const bk *b, const cat_table *t, const bk_slice *s)
{
    pc_buf q = {0};
    char *big = ysql_big_condition(t);
    int ranged = s && s->from >= 0;
    if (!ranged && !big) {
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
    } else {
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
        pc_buf_str(&q, " WHERE ");
        if (ranged) {
            pc_buf_printf(&q, "ctid >= '(%" PRId64 ",0)'::pg_catalog.tid", s->from);
            if (s->to >= 0)
                pc_buf_printf(&q, " AND ctid < '(%" PRId64 ",0)'::pg_catalog.tid", s->to);
        }
        if (big)
            pc_buf_printf(&q, "%sNOT coalesce(%s, false)", ranged ? " AND " : "", big);
        pc_buf_str(&q, ")");
    }
    free(big);
    pc_buf_str(&q, " TO STDOUT");
    ysql_copy_options(&q, b->encoding, 0);
    return pc_buf_take(&q);
}

static char *range_sql(const bk_slice *s)
{
    if (s->from < 0)
        return NULL;
    pc_buf q = {0};
    pc_buf_printf(&q, "ctid >= '(%" PRId64 ",0)'::pg_catalog.tid", s->from);
    if (s->to >= 0)
        pc_buf_printf(&q, " AND ctid < '(%" PRId64 ",0)'::pg_catalog.tid", s->to);
    return pc_buf_take(&q);
}

typedef struct bk_worker {
    bk *b;
    pthread_t th;
    int started;
    PGconn *conn;
    ysql_hasher *hasher;
    pc_buf out;
    arca_object *o;   /* the object being written */
    int64_t written;  /* bytes written to it so far */
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

static int bk_flush(bk_worker *w)
{
    if (!w->out.len)
        return ARCA_OK;
    int rc = w->b->h->object_write(w->o, w->out.p, w->out.len);
    bk_progress(w->b, w->out.len);
    w->written += (int64_t)w->out.len;
    w->out.len = 0;
    return rc;
}

/* Appends to the object (through the worker's buffer); a write callback. */
static int bk_put(void *ud, const void *data, size_t len)
{
    bk_worker *w = ud;
    bk *b = w->b;
    pc_buf_add(&w->out, data, len);
    if (w->out.oom)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int rc = w->out.len >= BK_FLUSH ? bk_flush(w) : ARCA_OK;
    if (rc == ARCA_OK && w->out.len == 0 &&
        ((b->h->cancelled && b->h->cancelled(b->h)) || ysql_failed(&b->err)))
        rc = ARCA_ECANCELED; /* interrupted, or another object failed: stop early */
    return rc < 0 ? ysql_fail(&b->err, rc, "%s", rc == ARCA_ECANCELED ? "backup cancelled"
                                                                      : "cannot write to the archive")
                  : ARCA_OK;
}

/* Streams one COPY (of a slice, or of a table of a pack) into the object. */
static int bk_copy(bk_worker *w, const cat_table *t, const bk_slice *s, ysql_digest *dg, const char *label)
{
    bk *b = w->b;
    char *sql = copy_sql(b, t, s);
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
    int64_t rows = 0;
    for (;;) {
        char *row = NULL;
        int n = PQgetCopyData(w->conn, &row, 0);
        if (n < 0)
            break;
        if (rc == ARCA_OK) {
            rows++;
            if (ysql_digest_row(w->hasher, dg, row, (size_t)n) < 0)
                rc = ysql_fail(&b->err, ARCA_EFAIL, "cannot hash a row of %s (libcrypto)", label);
            else
                rc = bk_put(w, row, (size_t)n);
            if (rc < 0) {
                /* stop the server sending the rest; the loop drains what is in flight */
                PGcancel *c = PQgetCancel(w->conn);
                char ebuf[256];
                if (c) {
                    PQcancel(c, ebuf, sizeof ebuf);
                    PQfreeCancel(c);
                }
            }
        }
        PQfreemem(row);
    }
    r = PQgetResult(w->conn);
    if (rc == ARCA_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char *m = ysql_pg_message(w->conn, r);
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s failed: %s", b->where, label, m ? m : "?");
        free(m);
    } else if (rc == ARCA_OK && strtoll(PQcmdTuples(r), NULL, 10) != rows) {
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s reported %s rows but sent %" PRId64, b->where,
                       label, PQcmdTuples(r), rows);
    }
    PQclear(r);
    while ((r = PQgetResult(w->conn)))
        PQclear(r);
    if (rc == ARCA_OK && t->wide) {
        /* the rows too big for one COPY message, value by value */
        char *range = s ? range_sql(s) : NULL;
        rc = ysql_copy_big_rows(w->conn, &b->err, label, t, range, b->encoding, w->hasher, dg, bk_put, w);
        free(range);
    }
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot export %s", label) : ARCA_OK;
}

static int bk_begin_object(bk_worker *w, const char *name)
{
    bk *b = w->b;
    arca_object_info info = {.name = name, .kind = ARCA_OBJ_DATA, .mode = 0600, .mtime_sec = b->started};
    w->written = 0;
    w->out.len = 0;
    int rc = b->h->object_begin(b->sink, &info, &w->o);
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot add %s to the archive", name) : ARCA_OK;
}

static int bk_end_object(bk_worker *w, const char *name, int rc)
{
    bk *b = w->b;
    if (rc == ARCA_OK)
        rc = bk_flush(w);
    int end = b->h->object_end(w->o);
    w->o = NULL;
    if (rc == ARCA_OK && end < 0)
        rc = ysql_fail(&b->err, end, "cannot add %s to the archive", name);
    return rc;
}

static int bk_export_table_slice(bk_worker *w, const bk_slice *s)
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
    int rc = !oname || !label ? ysql_fail(&b->err, ARCA_ENOMEM, "out of memory") : bk_begin_object(w, oname);
    if (rc < 0) {
        free(oname);
        free(label);
        return rc;
    }
    ysql_digest dg = {0};
    rc = bk_copy(w, t, s, &dg, label);
    if (rc == ARCA_OK) {
        char digest[64], pages[64];
        ysql_digest_format(&dg, digest);
        if (s->from >= 0 && s->to >= 0)
            snprintf(pages, sizeof pages, "%" PRId64 "-%" PRId64, s->from, s->to);
        else
            snprintf(pages, sizeof pages, "%" PRId64 "-", s->from);
        rc = h->object_meta(w->o, "schema", t->schema);
        if (rc == ARCA_OK)
            rc = h->object_meta(w->o, "table", t->name);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "slice", s->index);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "slices", s->count);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "rows", dg.rows);
        if (rc == ARCA_OK)
            rc = h->object_meta(w->o, "digest", digest);
        if (rc == ARCA_OK && s->from >= 0)
            rc = h->object_meta(w->o, "pages", pages);
        if (rc < 0)
            ysql_fail(&b->err, rc, "cannot describe %s in the manifest", oname);
    }
    rc = bk_end_object(w, oname, rc);
    if (rc == ARCA_OK)
        h->log(h, ARCA_LOG_DEBUG, "exported %s slice %d/%d: %" PRId64 " rows", label, s->index + 1,
               s->count, dg.rows);
    free(oname);
    free(label);
    return rc;
}

/* A pack: each table's COPY text followed by a "\." line (as in a plain
 * pg_dump script); the manifest's `segments` say, per table, its catalog
 * index, rows, bytes (its "\." line included) and digest:
 * "INDEX:ROWS:BYTES:DIGEST,..." (digest as 32 hex digits). */
static int bk_export_pack(bk_worker *w, const bk_slice *s)
{
    bk *b = w->b;
    const arca_host *h = b->h;
    char oname[64];
    snprintf(oname, sizeof oname, "data/small/part-%04d", s->index);
    int rc = bk_begin_object(w, oname);
    if (rc < 0)
        return rc;
    pc_buf seg = {0};
    int64_t rows = 0;
    for (size_t k = 0; rc == ARCA_OK && k < s->ntables; k++) {
        const cat_table *t = &b->cat.v[s->tables[k]];
        char *label = ysql_qualified(t->schema, t->name);
        ysql_digest dg = {0};
        int64_t at = w->written + (int64_t)w->out.len;
        rc = label ? bk_copy(w, t, NULL, &dg, label) : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        if (rc == ARCA_OK)
            rc = bk_put(w, "\\.\n", 3);
        if (rc == ARCA_OK) {
            char digest[64];
            ysql_digest_format(&dg, digest);
            pc_buf_printf(&seg, "%s%zu:%" PRId64 ":%" PRId64 ":%s", k ? "," : "", s->tables[k], dg.rows,
                          w->written + (int64_t)w->out.len - at, strchr(digest, ':') + 1);
            rows += dg.rows;
        }
        free(label);
    }
    if (rc == ARCA_OK && seg.oom)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK) {
        rc = h->object_meta(w->o, "segments", seg.p ? seg.p : "");
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "tables", (int64_t)s->ntables);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "rows", rows);
        if (rc < 0)
            ysql_fail(&b->err, rc, "cannot describe %s in the manifest", oname);
    }
    pc_buf_free(&seg);
    rc = bk_end_object(w, oname, rc);
    if (rc == ARCA_OK)
        h->log(h, ARCA_LOG_DEBUG, "exported %s: %zu tables, %" PRId64 " rows", oname, s->ntables, rows);
    return rc;
}

static int bk_export_large_objects(bk_worker *w)
{
    bk *b = w->b;
    const arca_host *h = b->h;
    const char *oname = "large-objects/part-0000";
    int rc = bk_begin_object(w, oname);
    if (rc < 0)
        return rc;
    ysql_digest dg = {0};
    int64_t bytes = 0;
    rc = ysql_lo_export(w->conn, &b->err, b->where, w->hasher, &dg, &bytes, bk_put, w);
    if (rc == ARCA_OK) {
        char digest[64];
        ysql_digest_format(&dg, digest);
        rc = h->object_meta_int(w->o, "rows", dg.rows);
        if (rc == ARCA_OK)
            rc = h->object_meta_int(w->o, "bytes", bytes);
        if (rc == ARCA_OK)
            rc = h->object_meta(w->o, "digest", digest);
        if (rc < 0)
            ysql_fail(&b->err, rc, "cannot describe %s in the manifest", oname);
    }
    rc = bk_end_object(w, oname, rc);
    if (rc == ARCA_OK)
        h->log(h, ARCA_LOG_INFO, "%s: %" PRId64 " large objects, %" PRId64 " bytes", b->where, dg.rows, bytes);
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
    if (ysql_session_setup(w->conn, &b->err) < 0)
        return NULL;
    size_t i;
    while (bk_next_slice(b, &i)) {
        const bk_slice *s = &b->slices[i];
        /* one transaction per object: its locks go when it is done */
        if (bk_join_snapshot(b, w->conn) < 0)
            break;
        int rc = s->kind == BK_PACK ? bk_export_pack(w, s)
                 : s->kind == BK_LARGE_OBJECTS ? bk_export_large_objects(w)
                 : bk_export_table_slice(w, s);
        if (rc < 0 || ysql_exec(w->conn, &b->err, "cannot finish an export transaction", "COMMIT") < 0)
            break;
    }
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
