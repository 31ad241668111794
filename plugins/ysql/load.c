/* ysql plugin: the parallel loader (COPY ... FROM STDIN over several
 * connections, fed from the single-threaded restore feed) and the verifier
 * (re-reads loaded tables and compares digests). See restore.h. */
#include "restore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD_QUEUE_MAX 4   /* chunks queued per worker: memory is bounded by jobs x this x chunk_size */
#define LD_EXTRA_MAX 64  /* connections the pool may open beyond `jobs` for interleaved objects */

enum { LD_START, LD_DATA, LD_END, LD_QUIT };

typedef struct ld_msg {
    struct ld_msg *next;
    int kind;
    size_t table;
    char *name; /* LD_START: the object, for messages */
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

static void msg_free(ld_msg *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->data);
    free(m);
}

static char *copy_sql(const cat_table *t, const char *direction)
{
    pc_buf q = {0};
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
    pc_buf_str(&q, direction);
    return pc_buf_take(&q);
}

/* ---- workers ---------------------------------------------------------------------- */

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

static void *ld_main(void *arg)
{
    ld_worker *w = arg;
    ld_pool *p = w->p;
    rs *r = p->r;
    int in_copy = 0;
    size_t table = 0;
    char *name = NULL;
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
        if (stop || ysql_failed(&r->err)) { /* discard: the restore is failing */
            if (in_copy) {
                PQputCopyEnd(w->conn, "restore aborted");
                ld_drain_results(w->conn);
                in_copy = 0;
            }
            msg_free(m);
            continue;
        }
        if (m->kind == LD_START) {
            free(name);
            name = m->name;
            m->name = NULL;
            table = m->table;
            char *sql = copy_sql(&r->cat.v[table], " FROM STDIN");
            PGresult *res = sql ? PQexec(w->conn, sql) : NULL;
            free(sql);
            if (PQresultStatus(res) == PGRES_COPY_IN)
                in_copy = 1;
            else
                ld_copy_failed(r, w->conn, res, table, name ? name : "?");
            PQclear(res);
        } else if (m->kind == LD_DATA) {
            if (PQputCopyData(w->conn, m->data, (int)m->len) != 1) {
                ld_copy_failed(r, w->conn, NULL, table, name ? name : "?");
                ld_drain_results(w->conn);
                in_copy = 0;
            }
        } else if (m->kind == LD_END) {
            in_copy = 0;
            PGresult *res = NULL;
            if (PQputCopyEnd(w->conn, NULL) == 1)
                res = PQgetResult(w->conn);
            if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                int64_t rows = strtoll(PQcmdTuples(res), NULL, 10);
                pthread_mutex_lock(&r->mu);
                r->tt[table].rows_loaded += rows;
                pthread_mutex_unlock(&r->mu);
            } else {
                ld_copy_failed(r, w->conn, res, table, name ? name : "?");
            }
            PQclear(res);
            ld_drain_results(w->conn);
        }
        if (ysql_failed(&r->err)) { /* wake the feed thread if it waits for room */
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->space);
            pthread_mutex_unlock(&p->mu);
        }
        msg_free(m);
    }
    free(name);
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
    pthread_cond_init(&w->cv, NULL);
    w->conn = ysql_connect(r->yi, r->target_db, &r->err);
    if (w->conn && r->replica_role) {
        /* as pg_restore --disable-triggers: rows reloaded into existing tables come
         * from one consistent snapshot, but their slices arrive in any order */
        PGresult *res = PQexec(w->conn, "SET session_replication_role = replica");
        if (PQresultStatus(res) != PGRES_COMMAND_OK && p->n == 0)
            r->h->log(r->h, ARCA_LOG_WARN, "%s: cannot turn triggers off while reloading existing "
                      "tables (needs superuser): their triggers and foreign key checks fire", r->where);
        PQclear(res);
    }
    if (!w->conn || ysql_session_setup(w->conn, &r->err, r->encoding) < 0 ||
        ysql_exec(w->conn, &r->err, "cannot prepare a load session", "SET synchronous_commit = off") < 0 ||
        !(w->started = pthread_create(&w->th, NULL, ld_main, w) == 0)) {
        if (!ysql_failed(&r->err))
            ysql_fail(&r->err, ARCA_EFAIL, "cannot start a load thread");
        PQfinish(w->conn);
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

static int ld_push(ld_pool *p, ld_worker *w, ld_msg *m, int wait_for_room)
{
    rs *r = p->r;
    pthread_mutex_lock(&p->mu);
    while (wait_for_room && w->queued >= LD_QUEUE_MAX && !ysql_failed(&r->err) && !p->stop)
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

int ld_begin(ld_pool *p, size_t t, const char *name, int *slot)
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
                             "cannot load %s", p->max, name);
        if (ld_add_worker(p) < 0)
            return ysql_failed(&r->err);
        r->h->log(r->h, ARCA_LOG_DEBUG, "opened load connection %zu for interleaved objects", n + 1);
        best = p->w[n];
        at = n;
    }
    ld_msg *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name))) {
        free(m);
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    }
    m->kind = LD_START;
    m->table = t;
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
    pc_buf report; /* the first few mismatches */
} vf;

static int vf_table(vf *v, PGconn *c, ysql_hasher *hs, size_t i)
{
    rs *r = v->r;
    const cat_table *t = &r->cat.v[i];
    const rs_table *x = &r->tt[i];
    char *sql = copy_sql(t, " TO STDOUT");
    char *label = ysql_qualified(t->schema, t->name);
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
    if (rc == ARCA_OK && (got.rows != x->rows_expected || got.hi != x->expected.hi ||
                          got.lo != x->expected.lo)) {
        char want[64], have[64];
        ysql_digest_format(&x->expected, want);
        ysql_digest_format(&got, have);
        pthread_mutex_lock(&v->mu);
        if (v->mismatches++ < 5)
            pc_buf_printf(&v->report, "\n  %s: %" PRId64 " rows, %s; the backup has %" PRId64 " rows, %s",
                            label, got.rows, have, x->rows_expected, want);
        pthread_mutex_unlock(&v->mu);
    }
    free(label);
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
    if (c && ysql_session_setup(c, &r->err, r->encoding) == ARCA_OK) {
        for (;;) {
            pthread_mutex_lock(&v->mu);
            size_t i = v->next;
            while (i < r->cat.n && !(r->tt[i].want && r->cat.v[i].kind == 'r' && !r->tt[i].digest_missing))
                i++;
            v->next = i + 1;
            pthread_mutex_unlock(&v->mu);
            if (i >= r->cat.n || ysql_failed(&r->err) || vf_table(v, c, hs, i) < 0)
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
        r->h->log(r->h, ARCA_LOG_INFO, "%s: verify: every table matches the backup's row count and digest",
                  r->where);
    pc_buf_free(&v.report);
    pthread_mutex_destroy(&v.mu);
    return ysql_failed(&r->err);
}
