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
#define BK_PACK_BATCH 250                 /* COPY statements sent in one query */
#define BK_SPOOL_MAX ((size_t)64 << 20)   /* pack bytes held while the schema dump runs */

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
    /* packs of at most per_pack tables: at least four per connection when there are
     * enough small tables, so that the connections finish together */
    size_t small = 0;
    for (size_t i = 0; i < b->cat.n; i++)
        small += b->cat.v[i].kind == 'r' && b->cat.v[i].bytes < BK_PACK_TABLE && b->toast[i] == 0;
    size_t per_pack = (small + (size_t)jobs * 4 - 1) / ((size_t)jobs * 4);
    per_pack = per_pack < 50 ? 50 : per_pack > BK_PACK_TABLES ? BK_PACK_TABLES : per_pack;
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
                b->slices[pack].ntables >= per_pack) {
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
    arca_object *o;   /* the object being written, or ... */
    int spooling;     /* ... a pack held in `spool` until the archive opens */
    pc_buf spool;
    char oname[64];   /* the pack's object name, to open it from the spool */
    int64_t written;  /* bytes written to it so far */
} bk_worker;

typedef struct bk_workers {
    bk_worker *w;
    size_t n;
} bk_workers;

/* The next object for a worker: while the archive is not open only packs
 * (spooled) and only within the budget, else the first one not taken
 * (largest first). 0 when there is nothing more, or the backup failed. */
static int bk_next_slice(bk *b, bk_worker *w, size_t *i, int *spool)
{
    /* while the dump runs (on about one core), one connection spools */
    int may_spool = w == &b->workers->w[0];
    pthread_mutex_lock(&b->mu);
    int have = 0;
    for (;;) {
        if (ysql_failed(&b->err) || b->stopping)
            break;
        while (b->next < b->nslices && b->slices[b->next].taken)
            b->next++;
        size_t k = b->next;
        if (!b->archive_open) {
            while (k < b->nslices && (b->slices[k].taken || b->slices[k].kind != BK_PACK))
                k++;
            if (may_spool && k < b->nslices && b->spooled < BK_SPOOL_MAX) {
                have = *spool = 1;
                *i = k;
                break;
            }
            pthread_cond_wait(&b->cv, &b->mu); /* until the archive opens */
            continue;
        }
        if (k < b->nslices) {
            have = 1;
            *spool = 0;
            *i = k;
        }
        break;
    }
    if (have)
        b->slices[*i].taken = 1;
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

static int bk_begin_object(bk_worker *w, const char *name);

/* A spooled pack becomes an ordinary object: the archive is open (or it
 * waits for it, holding its COPY, when the spool is full). */
static int bk_unspool(bk_worker *w)
{
    bk *b = w->b;
    pthread_mutex_lock(&b->mu);
    while (!b->archive_open && !b->stopping && !ysql_failed(&b->err))
        pthread_cond_wait(&b->cv, &b->mu);
    int go = !b->stopping && !ysql_failed(&b->err);
    b->spooled -= w->spool.len;
    pthread_mutex_unlock(&b->mu);
    pc_buf held = w->spool, out = w->out;
    w->spool = (pc_buf){0};
    w->spooling = 0;
    int rc = go ? ARCA_OK : ARCA_ECANCELED;
    if (rc == ARCA_OK) {
        rc = bk_begin_object(w, w->oname); /* clears out and written: both kept here */
        w->written = (int64_t)held.len;
        w->out = out;
    }
    if (rc == ARCA_OK && held.len)
        rc = b->h->object_write(w->o, held.p, held.len);
    if (rc == ARCA_OK)
        bk_progress(b, held.len);
    pc_buf_free(&held);
    return rc;
}

/* Writes the worker's buffer to its object, or to its spool while that is
 * within BK_SPOOL_MAX (bytes of every spool together): past it, or once the
 * archive is open, the spool turns into the object first. */
static int bk_flush(bk_worker *w)
{
    if (!w->out.len)
        return ARCA_OK;
    bk *b = w->b;
    int rc = ARCA_OK;
    if (w->spooling) {
        pthread_mutex_lock(&b->mu);
        int keep = !b->archive_open && b->spooled + w->out.len <= BK_SPOOL_MAX;
        if (keep)
            b->spooled += w->out.len;
        pthread_mutex_unlock(&b->mu);
        if (keep) {
            pc_buf_add(&w->spool, w->out.p, w->out.len);
            rc = w->spool.oom ? ARCA_ENOMEM : ARCA_OK;
        } else {
            rc = bk_unspool(w);
        }
    }
    if (rc == ARCA_OK && !w->spooling) {
        rc = b->h->object_write(w->o, w->out.p, w->out.len);
        bk_progress(b, w->out.len);
    }
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

static void bk_cancel(PGconn *c)
{
    PGcancel *k = PQgetCancel(c);
    char ebuf[256];
    if (k) {
        PQcancel(k, ebuf, sizeof ebuf);
        PQfreeCancel(k);
    }
}

/* Takes the results left of a query. A batch of COPYs stopped early may still
 * start the next one (the cancel of the first can arrive after it ended):
 * PQgetResult would return that COPY_OUT result forever, so it is cancelled
 * (which ends the rest of the batch too) and its rows read past. */
static void bk_drain(PGconn *c)
{
    PGresult *r;
    while ((r = PQgetResult(c))) {
        int copying = PQresultStatus(r) == PGRES_COPY_OUT;
        PQclear(r);
        if (copying) {
            bk_cancel(c);
            char *row = NULL;
            while (PQgetCopyData(c, &row, 0) > 0) {
                PQfreemem(row);
                row = NULL;
            }
        }
    }
}

/* Streams the rows of the COPY the connection is in (its COPY_OUT result
 * taken) into the object, then takes the COPY's own result. */
static int bk_copy_rows(bk_worker *w, ysql_digest *dg, const char *label)
{
    bk *b = w->b;
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
            if (rc < 0)
                bk_cancel(w->conn); /* stop the server sending the rest; the loop drains what is in flight */
        }
        PQfreemem(row);
    }
    PGresult *r = PQgetResult(w->conn);
    if (rc == ARCA_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char *m = ysql_pg_message(w->conn, r);
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s failed: %s", b->where, label, m ? m : "?");
        free(m);
    } else if (rc == ARCA_OK && strtoll(PQcmdTuples(r), NULL, 10) != rows) {
        rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s reported %s rows but sent %" PRId64, b->where,
                       label, PQcmdTuples(r), rows);
    }
    PQclear(r);
    return rc;
}

/* Takes the next result of a query and checks that it starts a COPY. */
static int bk_copy_started(bk_worker *w, PGresult *r, const char *label)
{
    bk *b = w->b;
    if (PQresultStatus(r) == PGRES_COPY_OUT) {
        PQclear(r);
        return ARCA_OK;
    }
    char *m = ysql_pg_message(w->conn, r);
    PQclear(r);
    int rc = ysql_fail(&b->err, ARCA_EFAIL, "%s: COPY %s failed: %s", b->where, label, m ? m : "?");
    free(m);
    return rc;
}

/* Streams one COPY (of a table or a slice) into the object. */
static int bk_copy(bk_worker *w, const cat_table *t, const bk_slice *s, ysql_digest *dg, const char *label)
{
    bk *b = w->b;
    char *sql = copy_sql(b, t, s);
    if (!sql)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    PGresult *r = PQexec(w->conn, sql);
    free(sql);
    int rc = bk_copy_started(w, r, label);
    if (rc == ARCA_OK)
        rc = bk_copy_rows(w, dg, label);
    bk_drain(w->conn);
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
static void pack_name(char *out, size_t n, const bk_slice *s)
{
    snprintf(out, n, "data/small/part-%04d", s->index);
}

static int pack_meta(bk *b, arca_object *o, const char *oname, const char *segments, size_t ntables,
                     int64_t rows)
{
    const arca_host *h = b->h;
    int rc = h->object_meta(o, "segments", segments);
    if (rc == ARCA_OK)
        rc = h->object_meta_int(o, "tables", (int64_t)ntables);
    if (rc == ARCA_OK)
        rc = h->object_meta_int(o, "rows", rows);
    return rc < 0 ? ysql_fail(&b->err, rc, "cannot describe %s in the manifest", oname) : ARCA_OK;
}

/* The COPYs of tables [k0, k1) of a pack, sent as one query (a round trip
 * and a statement's overhead per batch instead of per table), each table's
 * rows followed by "\." and its segment appended to `seg`. */
static int pack_batch(bk_worker *w, const bk_slice *s, size_t k0, size_t k1, pc_buf *seg, int64_t *rows)
{
    bk *b = w->b;
    pc_buf q = {0};
    for (size_t k = k0; k < k1; k++) {
        char *one = copy_sql(b, &b->cat.v[s->tables[k]], NULL);
        pc_buf_str(&q, one ? one : "");
        pc_buf_str(&q, ";\n");
        q.oom |= !one;
        free(one);
    }
    char *sql = pc_buf_take(&q);
    int sent = sql && PQsendQuery(w->conn, sql);
    free(sql);
    if (!sent)
        return sql ? ysql_fail(&b->err, ARCA_EFAIL, "%s: cannot send the COPYs of %s: %s", b->where, w->oname,
                               PQerrorMessage(w->conn))
                   : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int rc = ARCA_OK;
    for (size_t k = k0; rc == ARCA_OK && k < k1; k++) {
        const cat_table *t = &b->cat.v[s->tables[k]];
        char *label = ysql_qualified(t->schema, t->name);
        ysql_digest dg = {0};
        int64_t at = w->written + (int64_t)w->out.len;
        rc = label ? bk_copy_started(w, PQgetResult(w->conn), label)
                   : ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
        if (rc == ARCA_OK)
            rc = bk_copy_rows(w, &dg, label);
        if (rc == ARCA_OK)
            rc = bk_put(w, "\\.\n", 3);
        if (rc == ARCA_OK) {
            char digest[64];
            ysql_digest_format(&dg, digest);
            pc_buf_printf(seg, "%s%zu:%" PRId64 ":%" PRId64 ":%s", k ? "," : "", s->tables[k], dg.rows,
                          w->written + (int64_t)w->out.len - at, strchr(digest, ':') + 1);
            *rows += dg.rows;
        }
        free(label);
    }
    bk_drain(w->conn);
    return rc;
}

/* A pack that is still spooled when done goes to b->spools, for the main
 * thread to write once the archive opens; if it opened meanwhile, the worker
 * writes it itself (no spool is handed over after the opening). */
static int bk_hand_spool(bk_worker *w, size_t si, const pc_buf *seg, int64_t rows)
{
    bk *b = w->b;
    char *segments = strdup(seg->p ? seg->p : "");
    if (!segments)
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    int handed = 0;
    pthread_mutex_lock(&b->mu);
    bk_spool *v = b->archive_open ? NULL : realloc(b->spools, (b->nspools + 1) * sizeof *v);
    if (v) {
        b->spools = v;
        v[b->nspools++] = (bk_spool){.slice = si, .data = w->spool, .segments = segments, .rows = rows};
        handed = 1;
    }
    pthread_mutex_unlock(&b->mu);
    if (handed) {
        w->spool = (pc_buf){0};
        w->spooling = 0;
        return ARCA_OK;
    }
    free(segments);
    return bk_unspool(w);
}

/* A failure while spooling: the held bytes go. */
static void bk_drop_spool(bk_worker *w)
{
    pthread_mutex_lock(&w->b->mu);
    w->b->spooled -= w->spool.len;
    pthread_mutex_unlock(&w->b->mu);
    pc_buf_free(&w->spool);
    w->spooling = 0;
}

/* A pack into the archive, or into the spool while the archive is not open
 * (bk_next_slice says which; the spool may turn into the object midway). */
static int bk_export_pack(bk_worker *w, size_t si, int spool)
{
    bk *b = w->b;
    const bk_slice *s = &b->slices[si];
    pack_name(w->oname, sizeof w->oname, s);
    int rc = ARCA_OK;
    if (spool) {
        w->spooling = 1;
        w->written = 0;
        w->out.len = 0;
    } else if ((rc = bk_begin_object(w, w->oname)) < 0) {
        return rc;
    }
    pc_buf seg = {0};
    int64_t rows = 0;
    for (size_t k0 = 0; rc == ARCA_OK && k0 < s->ntables; k0 += BK_PACK_BATCH)
        rc = pack_batch(w, s, k0, k0 + BK_PACK_BATCH < s->ntables ? k0 + BK_PACK_BATCH : s->ntables, &seg,
                        &rows);
    if (rc == ARCA_OK && seg.oom)
        rc = ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    if (rc == ARCA_OK && w->spooling)
        rc = bk_flush(w);
    if (rc == ARCA_OK && w->spooling)
        rc = bk_hand_spool(w, si, &seg, rows);
    if (w->spooling)
        bk_drop_spool(w);
    if (rc == ARCA_OK && w->o)
        rc = pack_meta(b, w->o, w->oname, seg.p ? seg.p : "", s->ntables, rows);
    pc_buf_free(&seg);
    if (w->o)
        rc = bk_end_object(w, w->oname, rc);
    if (rc == ARCA_OK)
        b->h->log(b->h, ARCA_LOG_DEBUG, "%s %s: %zu tables, %" PRId64 " rows", spool ? "copied" : "exported",
                  w->oname, s->ntables, rows);
    return rc;
}

/* Main thread, once the archive is open: a spooled pack as an archive object. */
static int bk_write_spool(bk *b, bk_spool *sp)
{
    const bk_slice *s = &b->slices[sp->slice];
    char oname[64];
    pack_name(oname, sizeof oname, s);
    arca_object_info info = {.name = oname, .kind = ARCA_OBJ_DATA, .mode = 0600, .mtime_sec = b->started};
    arca_object *o = NULL;
    int rc = b->h->object_begin(b->sink, &info, &o);
    if (rc < 0)
        return ysql_fail(&b->err, rc, "cannot add %s to the archive", oname);
    for (size_t off = 0; rc == ARCA_OK && off < sp->data.len;) {
        size_t n = sp->data.len - off > BK_FLUSH ? BK_FLUSH : sp->data.len - off;
        rc = b->h->object_write(o, sp->data.p + off, n);
        off += n;
    }
    if (rc < 0)
        ysql_fail(&b->err, rc, "cannot add %s to the archive", oname);
    bk_progress(b, sp->data.len);
    if (rc == ARCA_OK)
        rc = pack_meta(b, o, oname, sp->segments, s->ntables, sp->rows);
    int end = b->h->object_end(o);
    if (rc == ARCA_OK && end < 0)
        rc = ysql_fail(&b->err, end, "cannot add %s to the archive", oname);
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
    if (ysql_session_setup(w->conn, &b->err) < 0)
        return NULL;
    size_t i;
    int spool = 0;
    while (bk_next_slice(b, w, &i, &spool)) {
        const bk_slice *s = &b->slices[i];
        /* one transaction per object: its locks go when it is done */
        if (bk_join_snapshot(b, w->conn) < 0)
            break;
        int rc = s->kind == BK_PACK ? bk_export_pack(w, i, spool)
                 : s->kind == BK_LARGE_OBJECTS ? bk_export_large_objects(w)
                 : bk_export_table_slice(w, s);
        if (rc < 0 || ysql_exec(w->conn, &b->err, "cannot finish an export transaction", "COMMIT") < 0)
            break;
    }
    /* a failure: wake the others (they may wait for the archive to open) */
    pthread_mutex_lock(&b->mu);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int bk_export_start(bk *b)
{
    size_t n = (size_t)b->yi->cfg->jobs;
    if (n > b->nslices)
        n = b->nslices;
    bk_workers *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->w = calloc(n + 1, sizeof *ws->w))) {
        free(ws);
        return ysql_fail(&b->err, ARCA_ENOMEM, "out of memory");
    }
    b->workers = ws;
    ws->n = n;
    /* connect up front, one after the other: a bad server fails once, clearly */
    for (size_t i = 0; i < n; i++) {
        ws->w[i].b = b;
        if (!(ws->w[i].conn = ysql_connect(b->yi, NULL, &b->err)))
            return ysql_failed(&b->err);
    }
    for (size_t i = 0; i < n; i++)
        if (!(ws->w[i].started = pthread_create(&ws->w[i].th, NULL, bk_worker_main, &ws->w[i]) == 0))
            return ysql_fail(&b->err, ARCA_EFAIL, "cannot start an export thread");
    return ARCA_OK;
}

/* Joins the workers and frees them, and any spool left (a failure). */
static void bk_export_join(bk *b)
{
    bk_workers *ws = b->workers;
    for (size_t i = 0; ws && i < ws->n; i++) {
        if (ws->w[i].started)
            pthread_join(ws->w[i].th, NULL);
        if (ws->w[i].conn)
            PQfinish(ws->w[i].conn);
        ysql_hasher_free(ws->w[i].hasher);
        pc_buf_free(&ws->w[i].out);
        pc_buf_free(&ws->w[i].spool);
    }
    if (ws)
        free(ws->w);
    free(ws);
    b->workers = NULL;
    for (size_t i = 0; i < b->nspools; i++) {
        pc_buf_free(&b->spools[i].data);
        free(b->spools[i].segments);
    }
    free(b->spools);
    b->spools = NULL;
    b->nspools = 0;
}

void bk_export_stop(bk *b)
{
    if (!b->workers)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1; /* workers waiting for the archive (or spooling) stop */
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    bk_export_join(b);
}

/* Opens the archive to data: the spools handed over so far are written here
 * (no more come after this), then the workers carry on to the end. */
int bk_export_data(bk *b)
{
    if (!b->workers && bk_export_start(b) < 0) {
        bk_export_stop(b);
        return ysql_failed(&b->err);
    }
    pthread_mutex_lock(&b->mu);
    b->archive_open = 1;
    pthread_cond_broadcast(&b->cv);
    bk_spool *sp = b->spools;
    size_t n = b->nspools;
    b->spools = NULL;
    b->nspools = 0;
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < n; i++) {
        if (!ysql_failed(&b->err))
            bk_write_spool(b, &sp[i]);
        pthread_mutex_lock(&b->mu);
        b->spooled -= sp[i].data.len;
        pthread_mutex_unlock(&b->mu);
        pc_buf_free(&sp[i].data);
        free(sp[i].segments);
    }
    free(sp);
    if (n)
        b->h->log(b->h, ARCA_LOG_DEBUG, "%s: %zu packs were copied while the schema was dumped", b->where, n);
    bk_export_join(b);
    return ysql_failed(&b->err);
}
