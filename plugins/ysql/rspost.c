/* ysql plugin: the index builds of a restore's post-data (CREATE INDEX, ADD
 * PRIMARY KEY / UNIQUE on ordinary tables, picked by toc_post_split) run on
 * `jobs` connections at once, the biggest tables first, before the rest of
 * the post-data script goes through the restore command. As pg_restore -j
 * does, two builds never wait on each other's lock: builds of one table share
 * it (CREATE INDEX takes SHARE) unless one is an ALTER TABLE (ACCESS
 * EXCLUSIVE), which runs alone on its table. Each build commits on its own;
 * the first failure cancels the builds still running and names the entry,
 * its table and the server's message. */
#include "restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb_run {
    rs *r;
    const toc_script *toc;
    const char *setup;
    toc_build *v;
    size_t n;
    size_t *order;       /* builds, biggest table first */
    char *state;         /* per build: 0 waiting, 1 running, 2 done */
    int *shared, *excl;  /* per catalog table: builds running or in an open transaction */
    int *holder;         /* per table: the one connection holding it, -1 none, -2 several */
    PGcancel **cancels;  /* per worker while connected, to cancel a running build */
    size_t first;        /* order[] before this are all started */
    size_t left;         /* builds not committed */
    int waiting;         /* connections waiting for a table to be free */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pb_run;

typedef struct pb_worker {
    pb_run *run;
    int id;
} pb_worker;

static int pb_cmp_bytes(const void *a, const void *b, void *ud)
{
    const pb_run *p = ud;
    const toc_build *x = &p->v[*(const size_t *)a], *y = &p->v[*(const size_t *)b];
    if (x->table->bytes != y->table->bytes)
        return x->table->bytes > y->table->bytes ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* The next build for connection `w` whose table lock conflicts with no
 * other connection's (its own, in its open transaction, do not conflict),
 * or -1 (then the caller commits or waits). Called locked. */
static long pb_pick(pb_run *p, int w)
{
    while (p->first < p->n && p->state[p->order[p->first]])
        p->first++;
    for (size_t i = p->first; i < p->n; i++) {
        size_t b = p->order[i];
        if (p->state[b])
            continue;
        size_t t = (size_t)(p->v[b].table - p->r->cat.v);
        int others = p->holder[t] != -1 && p->holder[t] != w;
        if (others && (p->excl[t] || p->v[b].exclusive))
            continue;
        return (long)b;
    }
    return -1;
}

static void pb_hold(pb_run *p, size_t b, int w)
{
    size_t t = (size_t)(p->v[b].table - p->r->cat.v);
    p->holder[t] = !p->shared[t] && !p->excl[t] ? w : p->holder[t] == w ? w : -2;
    (p->v[b].exclusive ? p->excl : p->shared)[t]++;
}

static void pb_release(pb_run *p, size_t b)
{
    size_t t = (size_t)(p->v[b].table - p->r->cat.v);
    (p->v[b].exclusive ? p->excl : p->shared)[t]--;
    if (!p->shared[t] && !p->excl[t])
        p->holder[t] = -1;
}

static void pb_cancel_others(pb_run *p, int self)
{
    char buf[256];
    for (int i = 0; i < p->r->jobs; i++)
        if (i != self && p->cancels[i])
            PQcancel(p->cancels[i], buf, sizeof buf);
}

static int pb_build(pb_run *p, PGconn *c, const toc_build *b, size_t *ts_start, size_t *ts_end)
{
    rs *r = p->r;
    const char *text = p->toc->text;
    if (b->ts_end - b->ts_start != *ts_end - *ts_start ||
        memcmp(text + b->ts_start, text + *ts_start, b->ts_end - b->ts_start)) {
        /* before any SET default_tablespace of the script: the default, as pg_dump writes it */
        char *ts = b->ts_end > b->ts_start ? strndup(text + b->ts_start, b->ts_end - b->ts_start)
                                           : strdup("SET default_tablespace = ''");
        int rc = ts ? ysql_exec(c, &r->err, "cannot set the index's tablespace", ts)
                    : ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        free(ts);
        if (rc != ARCA_OK)
            return rc;
        *ts_start = b->ts_start;
        *ts_end = b->ts_end;
    }
    char *sql = strndup(text + b->start, b->end - b->start);
    if (!sql)
        return ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
    const toc_entry *e = &p->toc->v[b->entry];
    double t0 = ysql_now();
    PGresult *res = PQexec(c, sql);
    int rc = ARCA_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char *m = ysql_pg_message(c, res);
        rc = ysql_fail(&r->err, ARCA_EFAIL,
                       "%s: applying the post-data schema failed at %s %s (table %s.%s): %s\nstatement: %.300s",
                       r->where, e->type, e->name, b->table->schema, b->table->name, m ? m : "out of memory",
                       sql);
        free(m);
    } else {
        r->h->log(r->h, ARCA_LOG_DEBUG, "%s %s on %s.%s built in %.2f s", e->type, e->name, b->table->schema,
                  b->table->name, ysql_now() - t0);
    }
    PQclear(res);
    free(sql);
    return rc;
}

/* Builds of one connection share a transaction while they are small: up to
 * PB_GROUP_BUILDS builds or PB_GROUP_BYTES of tables, and no other
 * connection waiting for a table the group holds (its locks last until the
 * COMMIT, and so do its tables' counts in the scheduler). */
enum { PB_GROUP_BUILDS = 32 };
#define PB_GROUP_BYTES ((int64_t)64 << 20)

typedef struct pb_group {
    size_t *v;  /* builds in the open transaction */
    size_t n;
    int64_t bytes;
} pb_group;

/* Commits the open transaction and releases its tables. Called locked; unlocks meanwhile. */
static int pb_commit(pb_run *p, PGconn *c, pb_group *g, int rc)
{
    if (!g->n)
        return rc;
    pthread_mutex_unlock(&p->mu);
    if (rc == ARCA_OK)
        rc = ysql_exec(c, &p->r->err, "cannot commit index builds", "COMMIT");
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < g->n; i++) {
        pb_release(p, g->v[i]);
        p->state[g->v[i]] = 2;
        p->left--;
    }
    g->n = 0;
    g->bytes = 0;
    pthread_cond_broadcast(&p->cv);
    return rc;
}

static void *pb_main(void *arg)
{
    pb_worker *w = arg;
    pb_run *p = w->run;
    rs *r = p->r;
    PGconn *c = ysql_connect(r->yi, r->target_db, &r->err);
    int ok = c && ysql_exec(c, &r->err, "cannot prepare a session for the post-data", p->setup) == ARCA_OK;
    PGcancel *cancel = ok ? PQgetCancel(c) : NULL;
    pb_group g = {.v = calloc(PB_GROUP_BUILDS, sizeof *g.v)};
    if (ok && !g.v)
        ok = ysql_fail(&r->err, ARCA_ENOMEM, "out of memory") == ARCA_OK;
    pthread_mutex_lock(&p->mu);
    p->cancels[w->id] = cancel;
    if (!ok)
        p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    size_t ts_start = 0, ts_end = 0;
    int rc = ARCA_OK;
    while (!p->stop && p->left) {
        long b = pb_pick(p, w->id);
        if (b < 0) {
            if (g.n) {
                rc = pb_commit(p, c, &g, rc);
            } else {
                p->waiting++;
                pthread_cond_wait(&p->cv, &p->mu);
                p->waiting--;
            }
            if (rc != ARCA_OK)
                break;
            continue;
        }
        toc_build *x = &p->v[b];
        p->state[b] = 1;
        pb_hold(p, (size_t)b, w->id);
        g.v[g.n++] = (size_t)b;
        g.bytes += x->table->bytes;
        int begin = g.n == 1;
        pthread_mutex_unlock(&p->mu);
        if (r->h->cancelled && r->h->cancelled(r->h))
            rc = ysql_fail(&r->err, ARCA_ECANCELED, "restore cancelled");
        if (rc == ARCA_OK && begin)
            rc = ysql_exec(c, &r->err, "cannot begin index builds", "BEGIN");
        if (rc == ARCA_OK)
            rc = pb_build(p, c, x, &ts_start, &ts_end);
        pthread_mutex_lock(&p->mu);
        if (rc != ARCA_OK)
            break;
        if (p->waiting || g.n == PB_GROUP_BUILDS || g.bytes >= PB_GROUP_BYTES || pb_pick(p, w->id) < 0)
            rc = pb_commit(p, c, &g, rc);
        if (rc != ARCA_OK)
            break;
    }
    if (rc != ARCA_OK && !p->stop) {
        p->stop = 1;
        pb_cancel_others(p, w->id);
    }
    p->cancels[w->id] = NULL;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    free(g.v);
    PQfreeCancel(cancel);
    PQfinish(c);
    return NULL;
}

int rs_run_builds(rs *r, const toc_script *toc, const char *setup, toc_build *v, size_t n)
{
    pb_run p = {.r = r, .toc = toc, .setup = setup, .v = v, .n = n, .left = n};
    int workers = r->jobs < (int)n ? r->jobs : (int)n;
    p.order = calloc(n, sizeof *p.order);
    p.state = calloc(n, 1);
    p.shared = calloc(r->cat.n + 1, sizeof *p.shared);
    p.excl = calloc(r->cat.n + 1, sizeof *p.excl);
    p.holder = malloc((r->cat.n + 1) * sizeof *p.holder);
    p.cancels = calloc((size_t)r->jobs, sizeof *p.cancels);
    pthread_t *th = calloc((size_t)workers, sizeof *th);
    pb_worker *w = calloc((size_t)workers, sizeof *w);
    if (!p.order || !p.state || !p.shared || !p.excl || !p.holder || !p.cancels || !th || !w) {
        ysql_fail(&r->err, ARCA_ENOMEM, "out of memory");
        workers = 0;
    }
    for (size_t i = 0; workers && i < n; i++)
        p.order[i] = i;
    for (size_t i = 0; workers && i <= r->cat.n; i++)
        p.holder[i] = -1;
    if (workers)
        qsort_r(p.order, n, sizeof *p.order, pb_cmp_bytes, &p);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    double t0 = ysql_now();
    int started = 0;
    for (int i = 0; i < workers; i++) {
        w[i] = (pb_worker){.run = &p, .id = i};
        if (pthread_create(&th[i], NULL, pb_main, &w[i]) != 0) {
            ysql_fail(&r->err, ARCA_EFAIL, "cannot start a thread for the post-data");
            break;
        }
        started++;
    }
    if (started < workers) {
        pthread_mutex_lock(&p.mu);
        p.stop = 1;
        pb_cancel_others(&p, -1);
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (!ysql_failed(&r->err))
        r->h->log(r->h, ARCA_LOG_INFO, "%s: %zu indexes and keys built on %d connection%s in %.2f s", r->where, n,
                  workers, workers == 1 ? "" : "s", ysql_now() - t0);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    free(p.order);
    free(p.state);
    free(p.shared);
    free(p.excl);
    free(p.holder);
    free(p.cancels);
    free(th);
    free(w);
    return ysql_failed(&r->err);
}
