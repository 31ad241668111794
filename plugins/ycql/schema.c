/* ycql plugin: a keyspace's schema from system_schema, and the DDL that recreates it
 * (see schema.h). */
#include "schema.h"

#include "pc_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text: pc_buf (plugins/common) ------------------------------------------------------- */

static void sb_name(pc_buf *b, const char *name)
{
    if (cql_name_is_bare(name)) {
        pc_buf_str(b, name);
        return;
    }
    pc_buf_add(b, "\"", 1);
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            pc_buf_add(b, "\"\"", 2);
        else
            pc_buf_add(b, c, 1);
    }
    pc_buf_add(b, "\"", 1);
}

static void sb_literal(pc_buf *b, const char *s) /* 'text' with ' doubled */
{
    pc_buf_add(b, "'", 1);
    for (const char *c = s; *c; c++) {
        pc_buf_add(b, c, 1);
        if (*c == '\'')
            pc_buf_add(b, "'", 1);
    }
    pc_buf_add(b, "'", 1);
}

int ycql_quote_name(char **buf, size_t *len, size_t *cap, const char *name)
{
    pc_buf b = {*buf, *len, *cap, 0};
    sb_name(&b, name);
    *buf = b.p;
    *len = b.len;
    *cap = b.cap;
    return b.oom ? -1 : 0;
}

/* ---- cells ----------------------------------------------------------------------------- */

static char *cell_text(const unsigned char *p, int32_t n)
{
    if (n < 0)
        return strdup("");
    if (memchr(p, 0, (size_t)n))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, (size_t)n);
        s[n] = 0;
    }
    return s;
}

static int32_t cell_int(const unsigned char *p, int32_t n)
{
    return n == 4 ? (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) : 0;
}

/* a list<text> / set<text> cell, or (pairs) a map<text, text>: its strings, malloc'd */
static char **cell_strings(const unsigned char *p, int32_t n, int pairs, size_t *count)
{
    cql_rd r;
    *count = 0;
    if (n < 0)
        return calloc(1, sizeof(char *));
    cql_rd_init(&r, p, (size_t)n);
    int32_t k = cql_get_i32(&r);
    if (r.err || k < 0 || (size_t)k > (size_t)n / 4)
        return NULL;
    size_t total = (size_t)k * (pairs ? 2 : 1);
    char **v = calloc(total + 1, sizeof *v);
    for (size_t i = 0; v && i < total; i++) {
        int32_t len;
        const unsigned char *s = cql_get_bytes(&r, &len);
        if (r.err || !(v[i] = cell_text(s, len))) {
            for (size_t j = 0; j <= i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
    }
    if (v)
        *count = total;
    return v;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

#define OOM(err, errlen) (snprintf(err, errlen, "out of memory"), -1)

/* ---- queries --------------------------------------------------------------------------- */

typedef int (*row_fn)(void *ud, const unsigned char *const *cells, const int32_t *lens, char *err, size_t errlen);

/* runs q with the keyspace bound to its one marker, every page, each row to fn */
static int each_row(cql_conn *c, const char *q, const char *ks, int ncols, row_fn fn, void *ud, char *err,
                    size_t errlen)
{
    unsigned char *state = NULL;
    int32_t state_len = -1;
    int rc = 0;
    do {
        cql_buf b = {0}, v = {0};
        cql_put_bytes(&v, ks, (int32_t)strlen(ks));
        int s = cql_conn_stream(c);
        cql_params qp = {.consistency = CQL_QUORUM, .nvalues = 1, .values = &v, .page_size = 5000,
                         .paging = state, .paging_len = state_len};
        cql_resp *r = NULL;
        if (s < 0 || cql_req_query(&b, cql_conn_version(c), (int16_t)s, q, &qp)) {
            snprintf(err, errlen, "cannot encode a query of system_schema");
            rc = -1;
        } else {
            rc = cql_conn_call(c, &b, s, &r, err, errlen);
        }
        cql_buf_free(&b);
        cql_buf_free(&v);
        free(state);
        state = NULL;
        state_len = -1;
        if (rc)
            break;
        if (cql_resp_error(c, r, err, errlen) >= 0 || r->h.opcode != CQL_OP_RESULT ||
            cql_get_i32(&r->rd) != CQL_RESULT_ROWS) {
            if (r->h.opcode != CQL_OP_ERROR)
                snprintf(err, errlen, "%s: not a Rows result for: %s", cql_conn_where(c), q);
            cql_resp_free(r);
            rc = -1;
            break;
        }
        cql_meta m;
        if (cql_get_meta(&r->rd, &m) || m.ncols != ncols) {
            snprintf(err, errlen, "%s: an unexpected answer to: %s (%s)", cql_conn_where(c), q,
                     r->rd.err ? r->rd.err : "column count");
            if (!r->rd.err)
                cql_meta_free(&m);
            cql_resp_free(r);
            rc = -1;
            break;
        }
        int32_t rows = cql_get_i32(&r->rd);
        const unsigned char *cells[8];
        int32_t lens[8];
        for (int32_t i = 0; !rc && i < rows && !r->rd.err; i++) {
            for (int k = 0; k < ncols; k++)
                cells[k] = cql_get_bytes(&r->rd, &lens[k]);
            if (!r->rd.err)
                rc = fn(ud, cells, lens, err, errlen);
        }
        if (!rc && r->rd.err) {
            snprintf(err, errlen, "%s: a malformed answer to: %s (%s)", cql_conn_where(c), q, r->rd.err);
            rc = -1;
        }
        if (!rc && m.paging_len >= 0) {
            if ((state = malloc(m.paging_len ? (size_t)m.paging_len : 1))) {
                memcpy(state, m.paging, (size_t)m.paging_len);
                state_len = m.paging_len;
            } else {
                rc = OOM(err, errlen);
            }
        }
        cql_meta_free(&m);
        cql_resp_free(r);
    } while (!rc && state_len >= 0);
    free(state);
    return rc;
}

static int ks_row(void *ud, const unsigned char *const *c, const int32_t *l, char *err, size_t errlen)
{
    ycql_schema *s = ud;
    size_t n;
    char **kv = cell_strings(c[1], l[1], 1, &n);
    if (!kv)
        return OOM(err, errlen);
    pc_buf b = {0};
    pc_buf_str(&b, "{");
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (i)
            pc_buf_str(&b, ", ");
        sb_literal(&b, kv[i]);
        pc_buf_str(&b, ": ");
        sb_literal(&b, kv[i + 1]);
    }
    pc_buf_str(&b, "}");
    free_strings(kv, n);
    char *text = pc_buf_take(&b);
    if (!text)
        return OOM(err, errlen);
    free(s->replication);
    s->replication = text;
    s->durable_writes = l[0] == 1 ? c[0][0] != 0 : 1;
    return 0;
}

static int type_row(void *ud, const unsigned char *const *c, const int32_t *l, char *err, size_t errlen)
{
    ycql_schema *s = ud;
    ycql_udt *t = realloc(s->types, (s->ntypes + 1) * sizeof *t);
    if (!t)
        return OOM(err, errlen);
    s->types = t;
    t = &s->types[s->ntypes];
    memset(t, 0, sizeof *t);
    size_t nf, nt;
    t->name = cell_text(c[0], l[0]);
    t->fields = cell_strings(c[1], l[1], 0, &nf);
    t->types = cell_strings(c[2], l[2], 0, &nt);
    s->ntypes++;
    t->n = nf < nt ? nf : nt;
    if (!t->name || !t->fields || !t->types || nf != nt)
        return snprintf(err, errlen, "a type of keyspace '%s' could not be read", s->keyspace), -1;
    return 0;
}

static int table_row(void *ud, const unsigned char *const *c, const int32_t *l, char *err, size_t errlen)
{
    ycql_schema *s = ud;
    ycql_table *t = realloc(s->tables, (s->ntables + 1) * sizeof *t);
    if (!t)
        return OOM(err, errlen);
    s->tables = t;
    t = &s->tables[s->ntables++];
    memset(t, 0, sizeof *t);
    t->name = cell_text(c[0], l[0]);
    t->comment = cell_text(c[1], l[1]);
    t->default_ttl = cell_int(c[2], l[2]);
    return t->name && t->comment ? 0 : OOM(err, errlen);
}

static ycql_table *find_table(ycql_schema *s, const char *name)
{
    for (size_t i = 0; i < s->ntables; i++)
        if (!strcmp(s->tables[i].name, name))
            return &s->tables[i];
    return NULL;
}

static int column_row(void *ud, const unsigned char *const *c, const int32_t *l, char *err, size_t errlen)
{
    ycql_schema *s = ud;
    char *table = cell_text(c[0], l[0]);
    ycql_table *t = table ? find_table(s, table) : NULL;
    free(table);
    if (!t)
        return 0; /* a column of something that is not a table (an index's, a view's) */
    ycql_column *v = realloc(t->cols, (t->ncols + 1) * sizeof *v);
    if (!v)
        return OOM(err, errlen);
    t->cols = v;
    v = &t->cols[t->ncols++];
    v->name = cell_text(c[1], l[1]);
    v->kind = cell_text(c[2], l[2]);
    v->position = cell_int(c[3], l[3]);
    v->order = cell_text(c[4], l[4]);
    v->type = cell_text(c[5], l[5]);
    return v->name && v->kind && v->order && v->type ? 0 : OOM(err, errlen);
}

static int index_row(void *ud, const unsigned char *const *c, const int32_t *l, char *err, size_t errlen)
{
    ycql_schema *s = ud;
    ycql_index *x = realloc(s->indexes, (s->nindexes + 1) * sizeof *x);
    if (!x)
        return OOM(err, errlen);
    s->indexes = x;
    x = &s->indexes[s->nindexes++];
    memset(x, 0, sizeof *x);
    x->table = cell_text(c[0], l[0]);
    x->name = cell_text(c[1], l[1]);
    x->kind = cell_text(c[2], l[2]);
    size_t n;
    char **kv = cell_strings(c[3], l[3], 1, &n);
    for (size_t i = 0; kv && i + 1 < n; i += 2)
        if (!strcmp(kv[i], "target"))
            x->target = strdup(kv[i + 1]);
        else if (!strcmp(kv[i], "class_name") && !strcmp(x->kind ? x->kind : "", "CUSTOM")) {
            free(x->kind);
            size_t kl = strlen(kv[i + 1]) + 8;
            if ((x->kind = malloc(kl)))
                snprintf(x->kind, kl, "CUSTOM:%s", kv[i + 1]);
        }
    free_strings(kv, n);
    return x->table && x->name && x->kind && x->target ? 0 : OOM(err, errlen);
}

static int kind_rank(const char *k)
{
    return !strcmp(k, "partition_key") ? 0 : !strcmp(k, "clustering") ? 1 : !strcmp(k, "static") ? 2 : 3;
}

int ycql_column_cmp(const void *a, const void *b)
{
    const ycql_column *x = a, *y = b;
    int kx = kind_rank(x->kind), ky = kind_rank(y->kind);
    if (kx != ky)
        return kx - ky;
    if (kx < 2)
        return x->position - y->position;
    return strcmp(x->name, y->name);
}

static int table_cmp(const void *a, const void *b)
{
    return strcmp(((const ycql_table *)a)->name, ((const ycql_table *)b)->name);
}

/* does type text `t` name the user type `name` (as an identifier, bare or quoted)? */
static int uses_type(const char *t, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = t; *p;) {
        if (*p == '"') {
            const char *q = strchr(p + 1, '"');
            if (!q)
                return 0;
            if ((size_t)(q - p - 1) == n && !strncmp(p + 1, name, n))
                return 1;
            p = q + 1;
        } else if ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9')) {
            const char *q = p;
            while ((*q >= 'a' && *q <= 'z') || *q == '_' || (*q >= '0' && *q <= '9'))
                q++;
            if ((size_t)(q - p) == n && !strncmp(p, name, n))
                return 1;
            p = q;
        } else {
            p++;
        }
    }
    return 0;
}

/* orders the types so that each comes after the types its fields use */
static int order_types(ycql_schema *s, char *err, size_t errlen)
{
    size_t done = 0;
    while (done < s->ntypes) {
        size_t pick = s->ntypes;
        for (size_t i = done; i < s->ntypes && pick == s->ntypes; i++) {
            int ready = 1;
            for (size_t j = done; j < s->ntypes && ready; j++)
                for (size_t f = 0; j != i && f < s->types[i].n && ready; f++)
                    ready = !uses_type(s->types[i].types[f], s->types[j].name);
            if (ready)
                pick = i;
        }
        if (pick == s->ntypes) {
            snprintf(err, errlen, "the types of keyspace '%s' refer to each other in a cycle", s->keyspace);
            return -1;
        }
        ycql_udt t = s->types[pick];
        memmove(&s->types[done + 1], &s->types[done], (pick - done) * sizeof t);
        s->types[done++] = t;
    }
    return 0;
}

int ycql_schema_read(cql_conn *c, const char *ks, ycql_schema *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!(s->keyspace = strdup(ks)))
        return OOM(err, errlen);
    int rc = each_row(c, "SELECT durable_writes, replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
                      ks, 2, ks_row, s, err, errlen);
    if (!rc && !s->replication) {
        snprintf(err, errlen, "%s: keyspace '%s' does not exist", cql_conn_where(c), ks);
        rc = -1;
    }
    if (!rc)
        rc = each_row(c, "SELECT type_name, field_names, field_types FROM system_schema.types WHERE keyspace_name = ?",
                      ks, 3, type_row, s, err, errlen);
    if (!rc)
        rc = each_row(c, "SELECT table_name, comment, default_time_to_live FROM system_schema.tables "
                      "WHERE keyspace_name = ?", ks, 3, table_row, s, err, errlen);
    if (!rc)
        rc = each_row(c, "SELECT table_name, column_name, kind, position, clustering_order, type "
                      "FROM system_schema.columns WHERE keyspace_name = ?", ks, 6, column_row, s, err, errlen);
    if (!rc)
        rc = each_row(c, "SELECT table_name, index_name, kind, options FROM system_schema.indexes "
                      "WHERE keyspace_name = ?", ks, 4, index_row, s, err, errlen);
    if (!rc)
        rc = order_types(s, err, errlen);
    if (!rc) {
        qsort(s->tables, s->ntables, sizeof *s->tables, table_cmp);
        for (size_t i = 0; i < s->ntables; i++)
            qsort(s->tables[i].cols, s->tables[i].ncols, sizeof *s->tables[i].cols, ycql_column_cmp);
    }
    if (rc)
        ycql_schema_free(s);
    return rc;
}

void ycql_schema_free(ycql_schema *s)
{
    for (size_t i = 0; i < s->ntypes; i++) {
        free(s->types[i].name);
        free_strings(s->types[i].fields, s->types[i].n);
        free_strings(s->types[i].types, s->types[i].n);
    }
    for (size_t i = 0; i < s->ntables; i++) {
        for (size_t k = 0; k < s->tables[i].ncols; k++) {
            ycql_column *v = &s->tables[i].cols[k];
            free(v->name);
            free(v->kind);
            free(v->type);
            free(v->order);
        }
        free(s->tables[i].cols);
        free(s->tables[i].name);
        free(s->tables[i].comment);
    }
    for (size_t i = 0; i < s->nindexes; i++) {
        free(s->indexes[i].name);
        free(s->indexes[i].table);
        free(s->indexes[i].kind);
        free(s->indexes[i].target);
    }
    free(s->types);
    free(s->tables);
    free(s->indexes);
    free(s->keyspace);
    free(s->replication);
    memset(s, 0, sizeof *s);
}

/* ---- DDL ------------------------------------------------------------------------------- */

static void table_ddl(pc_buf *b, const char *ks, const ycql_table *t)
{
    pc_buf_str(b, "CREATE TABLE ");
    sb_name(b, ks);
    pc_buf_str(b, ".");
    sb_name(b, t->name);
    pc_buf_str(b, " (\n");
    size_t npk = 0, nck = 0;
    for (size_t i = 0; i < t->ncols; i++) {
        const ycql_column *v = &t->cols[i];
        npk += !strcmp(v->kind, "partition_key");
        nck += !strcmp(v->kind, "clustering");
        pc_buf_str(b, "    ");
        sb_name(b, v->name);
        pc_buf_str(b, " ");
        pc_buf_str(b, v->type);
        if (!strcmp(v->kind, "static"))
            pc_buf_str(b, " STATIC");
        pc_buf_str(b, ",\n");
    }
    pc_buf_str(b, "    PRIMARY KEY (");
    if (npk > 1)
        pc_buf_str(b, "(");
    for (size_t i = 0; i < npk; i++) {
        if (i)
            pc_buf_str(b, ", ");
        sb_name(b, t->cols[i].name);
    }
    if (npk > 1)
        pc_buf_str(b, ")");
    for (size_t i = npk; i < npk + nck; i++) {
        pc_buf_str(b, ", ");
        sb_name(b, t->cols[i].name);
    }
    pc_buf_str(b, ")\n) WITH ");
    if (nck) {
        pc_buf_str(b, "CLUSTERING ORDER BY (");
        for (size_t i = npk; i < npk + nck; i++) {
            if (i > npk)
                pc_buf_str(b, ", ");
            sb_name(b, t->cols[i].name);
            pc_buf_str(b, !strcmp(t->cols[i].order, "desc") ? " DESC" : " ASC");
        }
        pc_buf_str(b, ")\n    AND ");
    }
    pc_buf_printf(b, "default_time_to_live = %d\n    AND comment = ", t->default_ttl);
    sb_literal(b, t->comment);
    pc_buf_str(b, ";\n");
}

char *ycql_schema_ddl(const ycql_schema *s, const char *as_keyspace, int with_indexes)
{
    const char *ks = as_keyspace ? as_keyspace : s->keyspace;
    pc_buf b = {0};
    if (with_indexes != 2) {
        pc_buf_str(&b, "CREATE KEYSPACE ");
        sb_name(&b, ks);
        pc_buf_printf(&b, " WITH replication = %s AND durable_writes = %s;\n", s->replication,
                  s->durable_writes ? "true" : "false");
        for (size_t i = 0; i < s->ntypes; i++) {
            const ycql_udt *t = &s->types[i];
            pc_buf_str(&b, "CREATE TYPE ");
            sb_name(&b, ks);
            pc_buf_str(&b, ".");
            sb_name(&b, t->name);
            pc_buf_str(&b, " (");
            for (size_t f = 0; f < t->n; f++) {
                if (f)
                    pc_buf_str(&b, ", ");
                sb_name(&b, t->fields[f]);
                pc_buf_str(&b, " ");
                pc_buf_str(&b, t->types[f]);
            }
            pc_buf_str(&b, ");\n");
        }
        for (size_t i = 0; i < s->ntables; i++)
            table_ddl(&b, ks, &s->tables[i]);
    }
    for (size_t i = 0; with_indexes && i < s->nindexes; i++) {
        const ycql_index *x = &s->indexes[i];
        int custom = !strncmp(x->kind, "CUSTOM:", 7);
        pc_buf_str(&b, custom ? "CREATE CUSTOM INDEX " : "CREATE INDEX ");
        sb_name(&b, x->name);
        pc_buf_str(&b, " ON ");
        sb_name(&b, ks);
        pc_buf_str(&b, ".");
        sb_name(&b, x->table);
        pc_buf_str(&b, " (");
        pc_buf_str(&b, x->target);
        pc_buf_str(&b, ")");
        if (custom) {
            pc_buf_str(&b, " USING ");
            sb_literal(&b, x->kind + 7);
        }
        pc_buf_str(&b, ";\n");
    }
    return pc_buf_take(&b);
}
