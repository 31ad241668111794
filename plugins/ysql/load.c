/* ysql plugin: the parallel loader (COPY ... FROM STDIN over several
 * connections, fed from the single-threaded restore feed: whole tables,
 * slices of big ones, packs of small ones, the large objects) and the
 * verifier (re-reads loaded tables and compares digests). See restore.h. */
#include "restore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LD_QUEUE_MAX 4   /* chunks queued per worker (up to twice that: ld_full); memory is
                          * bounded by 2 x jobs x this x chunk_size */
#define LD_EXTRA_MAX 64  /* connections the pool may open beyond `jobs` for interleaved objects */
#define LD_BINARY_ROW_MAX (1u << 20) /* a converted row is held whole when it spans chunks */

enum { LD_START, LD_DATA, LD_END, LD_QUIT };

typedef struct ld_msg {
    struct ld_msg *next;
    int kind;
    ld_job job;  /* LD_START (name and segments owned by the message) */
    void *data;
    size_t len;
} ld_msg;

typedef struct ld_worker {
    ld_pool *p;
    pthread_t th;
    int started;
    PGconn *conn;
    ld_msg *head, *tail;
    size_t queued;
    pthread_cond_t cv;
    size_t index;
    int open; /* (main thread) an object is assigned whose last chunk is not queued yet */
} ld_worker;

struct ld_pool {
    rs *r;
    pthread_mutex_t mu;
    pthread_cond_t space;
    ld_worker **w;
    size_t n, cap, max;
    int stop;
};

static void job_free(ld_job *j)
{
    free((char *)j->name);
    free(j->segs);
    *j = (ld_job){0};
}

static void msg_free(ld_msg *m)
{
    if (!m)
        return;
    job_free(&m->job);
    free(m->data);
    free(m);
}

static char *copy_sql(const rs *r, const cat_table *t, const char *direction, const char *where,
                      int freeze, int binary)
{
    pc_buf q = {0};
    pc_buf_str(&q, "COPY ");
    if (where) {
        pc_buf_str(&q, "(SELECT ");
        for (char **c = t->columns; *c; c++) {
            if (c != t->columns)
                pc_buf_str(&q, ", ");
            ysql_buf_ident(&q, *c);
        }
        pc_buf_str(&q, " FROM ONLY ");
    }
    ysql_buf_ident(&q, t->schema);
    pc_buf_str(&q, ".");
    ysql_buf_ident(&q, t->name);
    if (where) {
        pc_buf_printf(&q, " WHERE %s)", where);
    } else if (t->columns[0]) {
        pc_buf_str(&q, " (");
        for (char **c = t->columns; *c; c++) {
            if (c != t->columns)
                pc_buf_str(&q, ", ");
            ysql_buf_ident(&q, *c);
        }
        pc_buf_str(&q, ")");
    }
    pc_buf_str(&q, direction);
    if (binary)
        pc_buf_str(&q, freeze ? " (FORMAT binary, FREEZE)" : " (FORMAT binary)");
    else
        ysql_copy_options(&q, r->encoding, freeze);
    return pc_buf_take(&q);
}

/* ---- workers ---------------------------------------------------------------------- */

/* What a worker is doing with its current object. */
typedef struct ld_state {
    ld_job job;
    int in_copy, in_tx;
    size_t table;         /* the table of the COPY in progress */
    size_t seg;           /* LD_PACK: the current segment */
    int64_t seg_off;      /* ... and the bytes of it consumed */
    ysql_lo_loader *lo;   /* LD_LARGE_OBJECTS */
    ysql_copybin *cb;     /* the COPY in progress takes binary, converted from the archive's text */
    pc_buf bin;           /* ... a piece of it */
} ld_state;

static int ld_copy_failed(rs *r, PGconn *c, PGresult *res, size_t table, const char *name)
{
    const cat_table *t = &r->cat.v[table];
    char *m = ysql_pg_message(c, res);
    char *label = ysql_qualified(t->schema, t->name);
    int rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: loading table %s (%s) failed: %s", r->where,
                       label ? label : t->name, name, m ? m : "out of memory");
    free(m);
    free(label);
    return rc;
}

static void ld_drain_results(PGconn *c)
{
    PGresult *res;
    while ((res = PQgetResult(c)))
        PQclear(res);
}

/* A converter for loading table t in COPY's binary format, or NULL for text:
 * into PostgreSQL (YugabyteDB keeps text), an archive and a target database in
 * UTF8 (the sessions' client encoding, which the binary text values are read
 * in), every copied column of a type copybin.c converts, and rows of bounded
 * size; ARCA_YSQL_TEXT_COPY=1 keeps text (a diagnostic). */
static ysql_copybin *ld_binary_plan(ld_worker *w, const cat_table *t)
{
    rs *r = w->p->r;
    const char *force_text = getenv("ARCA_YSQL_TEXT_COPY");
    if (r->target_is_yb || (force_text && *force_text && strcmp(force_text, "0")) || !t->columns[0] ||
        !r->encoding || strcasecmp(r->encoding, "UTF8"))
        return NULL;
    const char *params[2] = {t->schema, t->name};
    PGresult *res = PQexecParams(
        w->conn,
        "SELECT a.attname, a.atttypid::pg_catalog.int8, a.atttypmod, pg_catalog.getdatabaseencoding() "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        2, NULL, params, NULL, NULL, 0);
    size_t ncols = 0;
    while (t->columns[ncols])
        ncols++;
    unsigned char *kinds = calloc(ncols, 1);
    size_t max_row = 0;
    int ok = kinds && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
             !strcmp(PQgetvalue(res, 0, 3), "UTF8");
    for (size_t i = 0; ok && i < ncols; i++) {
        ok = 0;
        for (int row = 0; row < PQntuples(res); row++) {
            if (strcmp(PQgetvalue(res, row, 0), t->columns[i]))
                continue;
            size_t max_text = 0;
            kinds[i] = (unsigned char)ysql_copybin_kind((unsigned)strtoul(PQgetvalue(res, row, 1), NULL, 10),
                                                        atoi(PQgetvalue(res, row, 2)), &max_text);
            max_row += max_text + 1;
            ok = kinds[i] != 0;
            break;
        }
    }
    PQclear(res);
    ysql_copybin *cb = ok && max_row <= LD_BINARY_ROW_MAX ? ysql_copybin_new(kinds, ncols, max_row) : NULL;
    free(kinds);
    return cb;
}

static int ld_copy_begin(ld_worker *w, ld_state *st, size_t table, int freeze)
{
    rs *r = w->p->r;
    st->table = table;
    if (freeze) {
        /* the table is emptied in this transaction, so COPY may write its rows frozen */
        char *label = ysql_qualified(r->cat.v[table].schema, r->cat.v[table].name);
        pc_buf q = {0};
        pc_buf_printf(&q, "BEGIN; TRUNCATE ONLY %s", label ? label : "");
        char *sql = label ? pc_buf_take(&q) : (pc_buf_free(&q), NULL);
        free(label);
        int rc = sql ? ysql_exec(w->conn, &r->err, "cannot start a frozen load", sql)
                     : ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        free(sql);
        if (rc < 0)
            return rc;
        st->in_tx = 1;
    }
    /* a whole table or a slice of one goes in binary when its columns allow it */
    if (st->job.kind == LD_TABLE && (st->cb = ld_binary_plan(w, &r->cat.v[table])))
        r->h->log(r->h, ARCA_LOG_DEBUG, "%s: %s goes in COPY's binary format", r->where,
                  st->job.name ? st->job.name : "?");
    char *sql = copy_sql(r, &r->cat.v[table], " FROM STDIN", NULL, freeze, st->cb != NULL);
    PGresult *res = sql ? PQexec(w->conn, sql) : NULL;
    free(sql);
    int rc = ARCA_OK;
    if (PQresultStatus(res) == PGRES_COPY_IN)
        st->in_copy = 1;
    else
        rc = ld_copy_failed(r, w->conn, res, table, st->job.name ? st->job.name : "?");
    PQclear(res);
    return rc;
}

static int ld_conv_failed(ld_worker *w, ld_state *st, const char *why)
{
    rs *r = w->p->r;
    const cat_table *t = &r->cat.v[st->table];
    char *label = ysql_qualified(t->schema, t->name);
    int rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "%s: loading table %s (%s) failed: %s", r->where,
                       label ? label : t->name, st->job.name ? st->job.name : "?", why);
    free(label);
    return rc;
}

/* Sends COPY data as it is. */
static int ld_send(ld_worker *w, ld_state *st, const void *data, size_t len)
{
    if (!len)
        return ARCA_OK;
    if (PQputCopyData(w->conn, data, (int)len) == 1)
        return ARCA_OK;
    int rc = ld_copy_failed(w->p->r, w->conn, NULL, st->table, st->job.name ? st->job.name : "?");
    ld_drain_results(w->conn);
    st->in_copy = 0;
    return rc;
}

/* Sends COPY data from the archive (converted when the COPY takes binary). */
static int ld_put(ld_worker *w, ld_state *st, const void *data, size_t len)
{
    if (!len)
        return ARCA_OK;
    if (st->cb) {
        char why[256];
        st->bin.len = 0;
        if (ysql_copybin_feed(st->cb, data, len, &st->bin, why, sizeof why) < 0)
            return ld_conv_failed(w, st, why);
        data = st->bin.p;
        len = st->bin.len;
    }
    return ld_send(w, st, data, len);
}

static int ld_copy_end(ld_worker *w, ld_state *st, int64_t want_rows)
{
    rs *r = w->p->r;
    if (st->cb) { /* the last row and the trailer */
        char why[256];
        st->bin.len = 0;
        int conv = ysql_copybin_end(st->cb, &st->bin, why, sizeof why);
        ysql_copybin_free(st->cb);
        st->cb = NULL;
        if (conv < 0)
            return ld_conv_failed(w, st, why);
        if (ld_send(w, st, st->bin.p, st->bin.len) < 0)
            return ysql_failed(&r->err);
    }
    st->in_copy = 0;
    PGresult *res = NULL;
    if (PQputCopyEnd(w->conn, NULL) == 1)
        res = PQgetResult(w->conn);
    int rc = ARCA_OK;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        int64_t rows = strtoll(PQcmdTuples(res), NULL, 10);
        pthread_mutex_lock(&r->mu);
        r->tt[st->table].rows_loaded += rows;
        pthread_mutex_unlock(&r->mu);
        if (want_rows >= 0 && rows != want_rows) {
            const cat_table *t = &r->cat.v[st->table];
            char *label = ysql_qualified(t->schema, t->name);
            rc = ysql_fail(&r->err, ARCA_EINTEGRITY, "%s: table %s (%s): %" PRId64 " rows loaded, the "
                           "manifest says %" PRId64, r->where, label ? label : t->name, st->job.name,
                           rows, want_rows);
            free(label);
        }
    } else {
        rc = ld_copy_failed(r, w->conn, res, st->table, st->job.name ? st->job.name : "?");
    }
    PQclear(res);
    ld_drain_results(w->conn);
    if (rc == ARCA_OK && st->in_tx) {
        st->in_tx = 0;
        rc = ysql_exec(w->conn, &r->err, "cannot commit a load", "COMMIT");
    }
    return rc;
}

/* Pack segments: a COPY for the current one when it is wanted and has rows
 * (the bytes of the others, and every "\." line, are read past). */
static int ld_pack_next(ld_worker *w, ld_state *st)
{
    if (st->seg >= st->job.nsegs)
        return ARCA_OK;
    const ld_segment *s = &st->job.segs[st->seg];
    return s->want && s->rows > 0 ? ld_copy_begin(w, st, s->table, 0) : ARCA_OK;
}

static int ld_pack_data(ld_worker *w, ld_state *st, const char *p, size_t len)
{
    rs *r = w->p->r;
    while (len) {
        if (st->seg >= st->job.nsegs)
            return ysql_fail(&r->err, ARCA_EINTEGRITY, "%s holds more bytes than its segments say",
                             st->job.name);
        const ld_segment *s = &st->job.segs[st->seg];
        int64_t left = s->bytes - st->seg_off;
        size_t take = (int64_t)len < left ? len : (size_t)left;
        /* the segment's rows are its bytes but the final "\.\n" */
        int64_t data_end = s->bytes - 3;
        if (st->in_copy && st->seg_off < data_end) {
            size_t n = st->seg_off + (int64_t)take <= data_end ? take : (size_t)(data_end - st->seg_off);
            int rc = ld_put(w, st, p, n);
            if (rc < 0)
                return rc;
        }
        st->seg_off += (int64_t)take;
        p += take;
        len -= take;
        if (st->seg_off == s->bytes) {
            if (st->in_copy && ld_copy_end(w, st, s->rows) < 0)
                return ysql_failed(&r->err);
            st->seg++;
            st->seg_off = 0;
            if (ld_pack_next(w, st) < 0)
                return ysql_failed(&r->err);
        }
    }
    return ARCA_OK;
}

static int ld_lo_begin(ld_worker *w, ld_state *st)
{
    rs *r = w->p->r;
    if (ysql_exec(w->conn, &r->err, "cannot start writing the large objects", "BEGIN") < 0)
        return ysql_failed(&r->err);
    st->in_tx = 1;
    return (st->lo = ysql_lo_loader_new(w->conn, &r->err, r->where)) ? ARCA_OK : ysql_failed(&r->err);
}

static int ld_lo_end(ld_worker *w, ld_state *st)
{
    rs *r = w->p->r;
    int64_t n = 0;
    int rc = ysql_lo_loader_end(st->lo, &n);
    ysql_lo_loader_free(st->lo);
    st->lo = NULL;
    if (rc == ARCA_OK) {
        st->in_tx = 0;
        rc = ysql_exec(w->conn, &r->err, "cannot commit the large objects", "COMMIT");
    }
    if (rc == ARCA_OK) {
        pthread_mutex_lock(&r->mu);
        r->lo_loaded += n;
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

/* Leaves the connection idle after a failure. */
static void ld_reset(ld_worker *w, ld_state *st)
{
    if (st->in_copy) {
        PQputCopyEnd(w->conn, "restore aborted");
        ld_drain_results(w->conn);
        st->in_copy = 0;
    }
    ysql_lo_loader_free(st->lo);
    st->lo = NULL;
    ysql_copybin_free(st->cb);
    st->cb = NULL;
    if (st->in_tx) {
        PQclear(PQexec(w->conn, "ROLLBACK"));
        st->in_tx = 0;
    }
}

static void ld_handle(ld_worker *w, ld_state *st, ld_msg *m)
{
    rs *r = w->p->r;
    if (m->kind == LD_START) {
        job_free(&st->job);
        st->job = m->job;
        m->job = (ld_job){0};
        st->seg = 0;
        st->seg_off = 0;
        if (st->job.kind == LD_TABLE)
            ld_copy_begin(w, st, st->job.table, st->job.freeze);
        else if (st->job.kind == LD_PACK)
            ld_pack_next(w, st);
        else
            ld_lo_begin(w, st);
    } else if (m->kind == LD_DATA) {
        if (st->job.kind == LD_TABLE)
            ld_put(w, st, m->data, m->len);
        else if (st->job.kind == LD_PACK)
            ld_pack_data(w, st, m->data, m->len);
        else if (ysql_lo_loader_feed(st->lo, m->data, m->len) < 0)
            ysql_failed(&r->err);
    } else if (m->kind == LD_END) {
        if (st->job.kind == LD_TABLE)
            ld_copy_end(w, st, -1);
        else if (st->job.kind == LD_PACK && st->seg < st->job.nsegs)
            ysql_fail(&r->err, ARCA_EINTEGRITY, "%s ends before its segment %zu", st->job.name, st->seg + 1);
        else if (st->job.kind == LD_LARGE_OBJECTS)
            ld_lo_end(w, st);
    }
}

/* Opens the worker's connection, on its own thread: the connections of the pool
 * open at once, while the main thread goes on (with the schema scripts). A
 * failure is recorded in r->err; the worker then discards what it is sent. */
static void ld_connect(ld_worker *w)
{
    rs *r = w->p->r;
    PGconn *c = ysql_connect(r->yi, r->target_db, &r->err);
    if (c && r->replica_role) {
        /* as pg_restore --disable-triggers: rows reloaded into existing tables come
         * from one consistent snapshot, but their slices arrive in any order */
        PGresult *res = PQexec(c, "SET session_replication_role = replica");
        if (PQresultStatus(res) != PGRES_COMMAND_OK && w->index == 0)
            r->h->log(r->h, ARCA_LOG_WARN, "%s: cannot turn triggers off while reloading existing "
                      "tables (needs superuser): their triggers and foreign key checks fire", r->where);
        PQclear(res);
    }
    if (c && (ysql_session_setup(c, &r->err) < 0 ||
              ysql_exec(c, &r->err, "cannot prepare a load session", "SET synchronous_commit = off") < 0)) {
        PQfinish(c);
        c = NULL;
    }
    w->conn = c;
}

static void *ld_main(void *arg)
{
    ld_worker *w = arg;
    ld_pool *p = w->p;
    rs *r = p->r;
    ld_state st = {0};
    ld_connect(w);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!w->head)
            pthread_cond_wait(&w->cv, &p->mu);
        ld_msg *m = w->head;
        w->head = m->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        int stop = p->stop;
        pthread_cond_broadcast(&p->space);
        pthread_mutex_unlock(&p->mu);

        if (m->kind == LD_QUIT) {
            msg_free(m);
            break;
        }
        if (stop || ysql_failed(&r->err)) /* discard: the restore is failing */
            ld_reset(w, &st);
        else
            ld_handle(w, &st, m);
        if (ysql_failed(&r->err)) { /* wake the feed thread if it waits for room */
            ld_reset(w, &st);
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->space);
            pthread_mutex_unlock(&p->mu);
        }
        msg_free(m);
    }
    ld_reset(w, &st);
    job_free(&st.job);
    pc_buf_free(&st.bin);
    return NULL;
}

/* Opens one more connection and its thread (main thread, pool unlocked). */
static int ld_add_worker(ld_pool *p)
{
    rs *r = p->r;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        ld_worker **v = realloc(p->w, cap * sizeof *v);
        if (!v)
            return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        p->w = v;
        p->cap = cap;
    }
    ld_worker *w = calloc(1, sizeof *w);
    if (!w)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    w->p = p;
    w->index = p->n;
    pthread_cond_init(&w->cv, NULL);
    if (!(w->started = pthread_create(&w->th, NULL, ld_main, w) == 0)) {
        ysql_fail(&r->err, ARCA_EFAIL, "cannot start a load thread");
        pthread_cond_destroy(&w->cv);
        free(w);
        return ysql_failed(&r->err);
    }
    pthread_mutex_lock(&p->mu);
    p->w[p->n++] = w;
    pthread_mutex_unlock(&p->mu);
    return ARCA_OK;
}

int ld_start(rs *r, ld_pool **out)
{
    ld_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    p->r = r;
    p->max = (size_t)r->jobs + LD_EXTRA_MAX;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->space, NULL);
    *out = p;
    for (int i = 0; i < r->jobs; i++)
        if (ld_add_worker(p) < 0)
            return ysql_failed(&r->err);
    return ARCA_OK;
}

/* The feed must wait before queueing another chunk for w (pool locked): w holds
 * LD_QUEUE_MAX chunks, or twice that while no other worker runs dry. Slices of
 * one table load at the same speed but lie in the archive in the order the
 * backup read them, so one may run ahead by a few chunks; a worker waiting for
 * chunks that lie past another's full queue would leave its core idle. */
static int ld_full(const ld_pool *p, const ld_worker *w)
{
    if (w->queued < LD_QUEUE_MAX)
        return 0;
    if (w->queued >= 2 * LD_QUEUE_MAX)
        return 1;
    for (size_t i = 0; i < p->n; i++)
        if (p->w[i] != w && p->w[i]->open && p->w[i]->queued == 0)
            return 0;
    return 1;
}

static int ld_push(ld_pool *p, ld_worker *w, ld_msg *m, int wait_for_room)
{
    rs *r = p->r;
    pthread_mutex_lock(&p->mu);
    while (wait_for_room && ld_full(p, w) && !ysql_failed(&r->err) && !p->stop)
        pthread_cond_wait(&p->space, &p->mu);
    int failed = ysql_failed(&r->err) || p->stop;
    if (!failed || m->kind == LD_QUIT) {
        if (w->tail)
            w->tail->next = m;
        else
            w->head = m;
        w->tail = m;
        w->queued++;
        pthread_cond_signal(&w->cv);
        m = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    msg_free(m);
    return failed ? ysql_failed(&r->err) ? ysql_failed(&r->err) : ARCA_ECANCELED : ARCA_OK;
}

int ld_begin(ld_pool *p, const ld_job *job, int *slot)
{
    rs *r = p->r;
    ld_worker *best = NULL;
    size_t at = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        if (!p->w[i]->open && (!best || p->w[i]->queued < best->queued))
            best = p->w[i], at = i;
    size_t n = p->n;
    pthread_mutex_unlock(&p->mu);
    if (!best) {
        if (n >= p->max)
            return ysql_fail(&r->err, ARCA_EFAIL, "the archive interleaves more than %zu data objects; "
                             "cannot load %s", p->max, job->name);
        if (ld_add_worker(p) < 0)
            return ysql_failed(&r->err);
        r->h->log(r->h, ARCA_LOG_DEBUG, "opened load connection %zu for interleaved objects", n + 1);
        best = p->w[n];
        at = n;
    }
    ld_msg *m = calloc(1, sizeof *m);
    if (m) {
        m->job = *job;
        m->job.name = strdup(job->name);
        m->job.segs = NULL;
        if (job->nsegs && (m->job.segs = malloc(job->nsegs * sizeof *job->segs)))
            memcpy(m->job.segs, job->segs, job->nsegs * sizeof *job->segs);
    }
    if (!m || !m->job.name || (job->nsegs && !m->job.segs)) {
        msg_free(m);
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    }
    m->kind = LD_START;
    best->open = 1;
    *slot = (int)at;
    return ld_push(p, best, m, 0);
}

int ld_chunk(ld_pool *p, int slot, const void *data, size_t len, int last)
{
    rs *r = p->r;
    ld_worker *w = p->w[slot];
    if (len) {
        ld_msg *m = calloc(1, sizeof *m);
        if (!m || !(m->data = malloc(len))) {
            free(m);
            return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        }
        memcpy(m->data, data, len);
        m->len = len;
        m->kind = LD_DATA;
        int rc = ld_push(p, w, m, 1);
        if (rc < 0)
            return rc;
    }
    if (!last)
        return ARCA_OK;
    ld_msg *m = calloc(1, sizeof *m);
    if (!m)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    m->kind = LD_END;
    w->open = 0;
    return ld_push(p, w, m, 0);
}

static void ld_join(ld_pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        ld_worker *w = p->w[i];
        ld_msg *m = calloc(1, sizeof *m);
        if (m) {
            m->kind = LD_QUIT;
            ld_push(p, w, m, 0);
        } else {
            /* no memory for a message: stop the worker through the flag */
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            pthread_mutex_unlock(&p->mu);
        }
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->w[i]->started) {
            pthread_join(p->w[i]->th, NULL);
            p->w[i]->started = 0;
        }
}

int ld_finish(ld_pool *p)
{
    ld_join(p);
    return ysql_failed(&p->r->err);
}

void ld_abort(ld_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->mu);
    ld_join(p);
}

void ld_free(ld_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        ld_worker *w = p->w[i];
        while (w->head) {
            ld_msg *m = w->head;
            w->head = m->next;
            msg_free(m);
        }
        PQfinish(w->conn);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
    free(p->w);
    pthread_cond_destroy(&p->space);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- verification --------------------------------------------------------------------- */

typedef struct vf {
    rs *r;
    pthread_mutex_t mu;
    size_t next, mismatches;
    int lo_taken;
    pc_buf report; /* the first few mismatches */
} vf;

static void vf_mismatch(vf *v, const char *label, const ysql_digest *got, int64_t rows_want,
                        const ysql_digest *want_dg)
{
    char want[64], have[64];
    ysql_digest_format(want_dg, want);
    ysql_digest_format(got, have);
    pthread_mutex_lock(&v->mu);
    if (v->mismatches++ < 5)
        pc_buf_printf(&v->report, "\n  %s: %" PRId64 " rows, %s; the backup has %" PRId64 " rows, %s",
                      label, got->rows, have, rows_want, want);
    pthread_mutex_unlock(&v->mu);
}

static int vf_table(vf *v, PGconn *c, ysql_hasher *hs, size_t i)
{
    rs *r = v->r;
    const cat_table *t = &r->cat.v[i];
    const rs_table *x = &r->tt[i];
    char *big = ysql_big_condition(t), *where = NULL;
    if (big) {
        pc_buf w = {0};
        pc_buf_printf(&w, "NOT coalesce(%s, false)", big);
        where = pc_buf_take(&w);
    }
    char *sql = copy_sql(r, t, " TO STDOUT", where, 0, 0);
    char *label = ysql_qualified(t->schema, t->name);
    free(big);
    free(where);
    if (!sql || !label) {
        free(sql);
        free(label);
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    }
    PGresult *res = PQexec(c, sql);
    free(sql);
    int rc = ARCA_OK;
    ysql_digest got = {0};
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        char *m = ysql_pg_message(c, res);
        rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: verify: cannot read %s: %s", r->where, label, m ? m : "?");
        free(m);
    }
    PQclear(res);
    if (rc == ARCA_OK) {
        char *row;
        int n;
        while ((n = PQgetCopyData(c, &row, 0)) >= 0) {
            if (ysql_digest_row(hs, &got, row, (size_t)n) < 0 && rc == ARCA_OK)
                rc = ysql_fail(&r->err, ARCA_EFAIL, "verify: cannot hash a row of %s", label);
            PQfreemem(row);
        }
        res = PQgetResult(c);
        if (rc == ARCA_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            char *m = ysql_pg_message(c, res);
            rc = ysql_fail(&r->err, ARCA_EFAIL, "%s: verify: cannot read %s: %s", r->where, label, m ? m : "?");
            free(m);
        }
        PQclear(res);
        ld_drain_results(c);
    }
    if (rc == ARCA_OK && t->wide)
        rc = ysql_copy_big_rows(c, &r->err, label, t, NULL, r->encoding, hs, &got, NULL, NULL);
    if (rc == ARCA_OK && (got.rows != x->rows_expected || got.hi != x->expected.hi ||
                          got.lo != x->expected.lo))
        vf_mismatch(v, label, &got, x->rows_expected, &x->expected);
    free(label);
    return rc;
}

static int vf_large_objects(vf *v, PGconn *c, ysql_hasher *hs)
{
    rs *r = v->r;
    ysql_digest got = {0};
    int64_t bytes = 0;
    int rc = ysql_exec(c, &r->err, "verify: cannot start reading the large objects", "BEGIN");
    if (rc == ARCA_OK)
        rc = ysql_lo_export(c, &r->err, r->where, hs, &got, &bytes, NULL, NULL);
    PQclear(PQexec(c, "COMMIT"));
    if (rc == ARCA_OK && (got.rows != r->lo_expected || got.hi != r->lo_digest.hi || got.lo != r->lo_digest.lo))
        vf_mismatch(v, "large objects", &got, r->lo_expected, &r->lo_digest);
    return rc;
}

static void *vf_main(void *arg)
{
    vf *v = arg;
    rs *r = v->r;
    ysql_hasher *hs = ysql_hasher_new();
    PGconn *c = hs ? ysql_connect(r->yi, r->target_db, &r->err) : NULL;
    if (!hs)
        ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    if (c && ysql_session_setup(c, &r->err) == ARCA_OK) {
        for (;;) {
            pthread_mutex_lock(&v->mu);
            int lo = r->want_lo && r->lo_seen && !v->lo_taken;
            v->lo_taken |= lo;
            size_t i = v->next;
            while (!lo && i < r->cat.n && !(r->tt[i].want && r->cat.v[i].kind == 'r' && !r->tt[i].digest_missing))
                i++;
            if (!lo)
                v->next = i + 1;
            pthread_mutex_unlock(&v->mu);
            if (ysql_failed(&r->err) || (!lo && i >= r->cat.n))
                break;
            if ((lo ? vf_large_objects(v, c, hs) : vf_table(v, c, hs, i)) < 0)
                break;
        }
    }
    PQfinish(c);
    ysql_hasher_free(hs);
    return NULL;
}

int ld_verify(rs *r)
{
    vf v = {.r = r};
    pthread_mutex_init(&v.mu, NULL);
    int n = r->jobs;
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int *ok = calloc((size_t)n, sizeof *ok);
    if (!th || !ok)
        ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    for (int i = 0; th && ok && i < n; i++)
        ok[i] = pthread_create(&th[i], NULL, vf_main, &v) == 0;
    for (int i = 0; th && ok && i < n; i++)
        if (ok[i])
            pthread_join(th[i], NULL);
    free(th);
    free(ok);
    if (!ysql_failed(&r->err) && v.mismatches)
        ysql_fail(&r->err, ARCA_EINTEGRITY,
                  "%s: verify: %zu table%s differ%s from the backup:%s%s", r->where, v.mismatches,
                  v.mismatches == 1 ? "" : "s", v.mismatches == 1 ? "s" : "",
                  v.report.p ? v.report.p : "", v.mismatches > 5 ? "\n  ..." : "");
    else if (!ysql_failed(&r->err))
        r->h->log(r->h, ARCA_LOG_INFO, "%s: verify: every table%s matches the backup's row count and digest",
                  r->where, r->want_lo && r->lo_seen ? " and the large objects" : "");
    pc_buf_free(&v.report);
    pthread_mutex_destroy(&v.mu);
    return ysql_failed(&r->err);
}
