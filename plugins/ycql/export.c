/* ycql plugin: exporting a range of a table (see export.h). */
#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kind_of(const char *k)
{
    return !strcmp(k, "partition_key") ? YR_PARTITION
           : !strcmp(k, "clustering")  ? YR_CLUSTERING
           : !strcmp(k, "static")      ? YR_STATIC
                                       : YR_REGULAR;
}

/* WRITETIME/TTL take one cell: not a counter, not a collection or user type of many cells */
static int has_meta(const ycql_schema *s, const ycql_column *c)
{
    if (kind_of(c->kind) < YR_STATIC || !strcmp(c->type, "counter"))
        return 0;
    if (!strncmp(c->type, "list<", 5) || !strncmp(c->type, "set<", 4) || !strncmp(c->type, "map<", 4))
        return 0;
    /* a non-frozen user type: its name as CQL writes it (a frozen one reads frozen<name>) */
    int udt = 0;
    for (size_t i = 0; i < s->ntypes && !udt; i++) {
        char *q = NULL;
        size_t len = 0, cap = 0;
        udt = ycql_quote_name(&q, &len, &cap, s->types[i].name) < 0 || !strcmp(c->type, q);
        free(q);
    }
    return !udt;
}

void ycql_row_columns_free(yr_col *v, uint16_t n)
{
    for (uint16_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].type);
    }
    free(v);
}

yr_col *ycql_row_columns(const ycql_schema *s, const ycql_table *t, int writetime_ttl, uint16_t *n)
{
    if (!t->ncols || t->ncols > 65535)
        return NULL;
    ycql_column *order = malloc(t->ncols * sizeof *order);
    yr_col *v = calloc(t->ncols, sizeof *v);
    if (!order || !v) {
        free(order);
        free(v);
        return NULL;
    }
    memcpy(order, t->cols, t->ncols * sizeof *order); /* shallow: names stay t's */
    qsort(order, t->ncols, sizeof *order, ycql_column_cmp);
    int oom = 0;
    for (size_t i = 0; i < t->ncols; i++) {
        v[i].name = strdup(order[i].name);
        v[i].type = strdup(order[i].type);
        v[i].kind = kind_of(order[i].kind);
        v[i].meta = writetime_ttl && has_meta(s, &order[i]);
        oom |= !v[i].name || !v[i].type;
    }
    free(order);
    if (oom) {
        ycql_row_columns_free(v, (uint16_t)t->ncols);
        return NULL;
    }
    *n = (uint16_t)t->ncols;
    return v;
}

static int add(char **b, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 256) + n;
        char *p = realloc(*b, c);
        if (!p)
            return -1;
        *b = p;
        *cap = c;
    }
    memcpy(*b + *len, s, n + 1);
    *len += n;
    return 0;
}

char *ycql_select(const char *ks, const ycql_table *t, const yr_col *cols, uint16_t n, const ycql_range *r,
                  int yb)
{
    char *b = NULL, *pk = NULL;
    size_t len = 0, cap = 0, pklen = 0, pkcap = 0;
    int bad = add(&b, &len, &cap, "SELECT ");
    for (uint16_t i = 0; i < n && !bad; i++)
        bad = (i && add(&b, &len, &cap, ", ")) || ycql_quote_name(&b, &len, &cap, cols[i].name);
    for (uint16_t i = 0; i < n && !bad; i++) {
        if (!cols[i].meta)
            continue;
        bad = add(&b, &len, &cap, ", writetime(") || ycql_quote_name(&b, &len, &cap, cols[i].name) ||
              add(&b, &len, &cap, "), ttl(") || ycql_quote_name(&b, &len, &cap, cols[i].name) ||
              add(&b, &len, &cap, ")");
    }
    bad = bad || add(&b, &len, &cap, " FROM ") || ycql_quote_name(&b, &len, &cap, ks) ||
          add(&b, &len, &cap, ".") || ycql_quote_name(&b, &len, &cap, t->name);
    for (uint16_t i = 0; i < n && !bad; i++)
        if (cols[i].kind == YR_PARTITION)
            bad = (pklen && add(&pk, &pklen, &pkcap, ", ")) || ycql_quote_name(&pk, &pklen, &pkcap, cols[i].name);
    char *where = bad || !pk ? NULL : ycql_range_where(r, yb, pk);
    bad = bad || !where || add(&b, &len, &cap, where);
    free(where);
    free(pk);
    if (bad) {
        free(b);
        return NULL;
    }
    return b;
}

/* ---- the export ---- */

static int be_i64(const unsigned char *p, int32_t len, int64_t *v)
{
    if (len != 8)
        return -1;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *v = (int64_t)x;
    return 0;
}

static int be_i32(const unsigned char *p, int32_t len, int32_t *v)
{
    if (len != 4)
        return -1;
    *v = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    return 0;
}

typedef struct ex {
    cql_conn *c;
    const char *ks, *table, *sql;
    char *err;
    size_t errlen;
} ex;

static int ex_fail(ex *x, const char *what)
{
    snprintf(x->err, x->errlen, "%s: exporting %s.%s: %s (statement: %.300s)", cql_conn_where(x->c), x->ks,
             x->table, what, x->sql);
    return -1;
}

/* Sends a built frame, returns its answer unless it is an ERROR (err then says which). */
static cql_resp *ex_call(ex *x, cql_buf *b, int s)
{
    cql_resp *r = NULL;
    char why[1500];
    if (cql_conn_call(x->c, b, s, &r, why, sizeof why)) {
        ex_fail(x, why);
        return NULL;
    }
    if (cql_resp_error(x->c, r, why, sizeof why) >= 0) {
        ex_fail(x, why);
        cql_resp_free(r);
        return NULL;
    }
    return r;
}

static int ex_prepare(ex *x, unsigned char **id, uint16_t *idlen)
{
    cql_buf b = {0};
    int s = cql_conn_stream(x->c);
    if (s < 0 || cql_req_prepare(&b, cql_conn_version(x->c), (int16_t)s, x->sql)) {
        cql_buf_free(&b);
        return ex_fail(x, "cannot build PREPARE");
    }
    cql_resp *r = ex_call(x, &b, s);
    cql_buf_free(&b);
    if (!r)
        return -1;
    cql_prepared p;
    int rc = r->h.opcode == CQL_OP_RESULT && cql_get_i32(&r->rd) == CQL_RESULT_PREPARED &&
                     cql_get_prepared(&r->rd, &p) == 0
                 ? 0
                 : ex_fail(x, "PREPARE did not answer with a prepared statement");
    if (rc == 0) {
        *idlen = p.idlen;
        *id = malloc(p.idlen ? p.idlen : 1);
        if (*id)
            memcpy(*id, p.id, p.idlen);
        else
            rc = ex_fail(x, "out of memory");
        cql_prepared_free(&p);
    }
    cql_resp_free(r);
    return rc;
}

/* The rows of one page into out: n columns, then writetime and ttl of each meta column. */
static int ex_page(ex *x, cql_rd *rd, const cql_meta *m, const yr_col *cols, uint16_t n, yr_cell *cells,
                   cql_buf *out, int64_t *rows)
{
    uint16_t metas = 0;
    for (uint16_t i = 0; i < n; i++)
        metas += (uint16_t)cols[i].meta;
    if (m->ncols != (int32_t)n + 2 * metas)
        return ex_fail(x, "the server answered with other columns than asked for");
    int32_t count = cql_get_i32(rd);
    for (int32_t k = 0; k < count && !rd->err; k++) {
        for (uint16_t i = 0; i < n; i++) {
            int32_t len;
            const unsigned char *v = cql_get_bytes(rd, &len);
            cells[i] = (yr_cell){len >= 0 ? (v ? v : (const unsigned char *)"") : NULL, len > 0 ? len : 0,
                                 YR_NO_WRITETIME, 0};
        }
        for (uint16_t i = 0; i < n && !rd->err; i++) {
            if (!cols[i].meta)
                continue;
            int32_t wl, tl;
            const unsigned char *w = cql_get_bytes(rd, &wl), *t = cql_get_bytes(rd, &tl);
            if (rd->err)
                break;
            if ((wl >= 0 && be_i64(w, wl, &cells[i].writetime)) || (tl >= 0 && be_i32(t, tl, &cells[i].ttl)))
                return ex_fail(x, "a write time or TTL of an unexpected size");
        }
        if (rd->err)
            break;
        yr_write_row(out, cols, n, cells);
        (*rows)++;
    }
    if (rd->err || rd->off != rd->len)
        return ex_fail(x, rd->err ? rd->err : "bytes left after the rows of a page");
    return out->oom ? ex_fail(x, "out of memory") : 0;
}

int ycql_export_range(cql_conn *c, const char *ks, const ycql_table *t, const yr_col *cols, uint16_t n,
                      const ycql_range *r, const ycql_export_opts *o, ycql_sink sink, void *ud, int64_t *rows,
                      char *err, size_t errlen)
{
    char *sql = ycql_select(ks, t, cols, n, r, o->yb);
    ex x = {c, ks, t->name, sql ? sql : "", err, errlen};
    *rows = 0;
    if (!sql)
        return ex_fail(&x, "out of memory");
    unsigned char *id = NULL, *state = NULL;
    uint16_t idlen = 0;
    int32_t state_len = -1;
    yr_cell *cells = calloc(n, sizeof *cells);
    cql_buf out = {0}, vals = {0};
    int rc = cells ? ex_prepare(&x, &id, &idlen) : ex_fail(&x, "out of memory");
    if (rc == 0 && (yr_write_header(&out, cols, n, o->writetime_ttl) || sink(ud, out.p, out.len)))
        rc = ex_fail(&x, "cannot write the object's header");
    out.len = 0;
    unsigned char lo[8], hi[8];
    for (int i = 0; i < 8; i++) {
        lo[i] = (unsigned char)((uint64_t)r->lo >> (56 - 8 * i));
        hi[i] = (unsigned char)((uint64_t)r->hi >> (56 - 8 * i));
    }
    cql_put_bytes(&vals, lo, 8);
    cql_put_bytes(&vals, hi, 8);
    while (rc == 0) {
        cql_buf b = {0};
        int s = cql_conn_stream(c);
        cql_params qp = {.consistency = o->consistency, .nvalues = 2, .values = &vals, .page_size = o->page_size,
                         .paging = state, .paging_len = state_len};
        if (s < 0 || cql_req_execute(&b, cql_conn_version(c), (int16_t)s, id, idlen, &qp)) {
            cql_buf_free(&b);
            rc = ex_fail(&x, "cannot build EXECUTE");
            break;
        }
        cql_resp *resp = ex_call(&x, &b, s);
        cql_buf_free(&b);
        if (!resp) {
            rc = -1;
            break;
        }
        cql_meta m;
        if (resp->h.opcode != CQL_OP_RESULT || cql_get_i32(&resp->rd) != CQL_RESULT_ROWS ||
            cql_get_meta(&resp->rd, &m)) {
            cql_resp_free(resp);
            rc = ex_fail(&x, "the answer is not rows");
            break;
        }
        rc = ex_page(&x, &resp->rd, &m, cols, n, cells, &out, rows);
        if (rc == 0 && out.len && sink(ud, out.p, out.len))
            rc = ex_fail(&x, "cannot write rows");
        out.len = 0;
        free(state);
        state = NULL;
        state_len = rc == 0 ? m.paging_len : -1;
        if (state_len == 0) /* more pages, yet nothing to ask for them with: it would never end */
            rc = ex_fail(&x, "the server said more pages follow but sent an empty paging state"), state_len = -1;
        if (state_len > 0 && !(state = malloc((size_t)state_len)))
            rc = ex_fail(&x, "out of memory");
        else if (state_len > 0)
            memcpy(state, m.paging, (size_t)state_len);
        cql_meta_free(&m);
        cql_resp_free(resp);
        if (state_len < 0)
            break;
    }
    if (rc == 0) {
        yr_write_end(&out, *rows);
        if (out.oom || sink(ud, out.p, out.len))
            rc = ex_fail(&x, "cannot write the object's end");
    }
    free(state);
    free(id);
    free(cells);
    cql_buf_free(&out);
    cql_buf_free(&vals);
    free(sql);
    return rc;
}
