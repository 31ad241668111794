/* ycql plugin: the CQL native protocol's wire format (see cqlwire.h). */
#include "cqlwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------------------------ */

void cql_buf_free(cql_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void cql_buf_wipe(cql_buf *b)
{
    if (b->p) {
        volatile unsigned char *v = b->p;
        for (size_t i = 0; i < b->cap; i++)
            v[i] = 0;
    }
    cql_buf_free(b);
}

static unsigned char *grow(cql_buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (n > SIZE_MAX - b->len) {
        b->oom = 1;
        return NULL;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        unsigned char *p = malloc(cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        if (b->len)
            memcpy(p, b->p, b->len);
        if (b->p) { /* not realloc: the old bytes may hold a password, wipe them */
            volatile unsigned char *v = b->p;
            for (size_t i = 0; i < b->cap; i++)
                v[i] = 0;
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    unsigned char *at = b->p + b->len;
    b->len += n;
    return at;
}

void cql_put_raw(cql_buf *b, const void *p, size_t n)
{
    unsigned char *at = n ? grow(b, n) : NULL;
    if (at)
        memcpy(at, p, n);
}

void cql_put_u8(cql_buf *b, uint8_t v)
{
    cql_put_raw(b, &v, 1);
}

void cql_put_u16(cql_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    cql_put_raw(b, x, 2);
}

void cql_put_i32(cql_buf *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char x[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16), (unsigned char)(u >> 8), (unsigned char)u};
    cql_put_raw(b, x, 4);
}

void cql_put_i64(cql_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(u >> (56 - 8 * i));
    cql_put_raw(b, x, 8);
}

void cql_put_string(cql_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        b->oom = 1; /* cannot be encoded: fail the frame */
        return;
    }
    cql_put_u16(b, (uint16_t)n);
    cql_put_raw(b, s, n);
}

void cql_put_long_string(cql_buf *b, const char *s, size_t n)
{
    if (n > INT32_MAX) {
        b->oom = 1;
        return;
    }
    cql_put_i32(b, (int32_t)n);
    cql_put_raw(b, s, n);
}

void cql_put_bytes(cql_buf *b, const void *p, int32_t n)
{
    cql_put_i32(b, n < 0 ? -1 : n);
    if (n > 0)
        cql_put_raw(b, p, (size_t)n);
}

void cql_put_short_bytes(cql_buf *b, const void *p, uint16_t n)
{
    cql_put_u16(b, n);
    cql_put_raw(b, p, n);
}

void cql_put_string_map(cql_buf *b, const char *const *kv, size_t pairs)
{
    cql_put_u16(b, (uint16_t)pairs);
    for (size_t i = 0; i < 2 * pairs; i++)
        cql_put_string(b, kv[i]);
}

void cql_frame_begin(cql_buf *b, uint8_t version, int16_t stream, uint8_t opcode)
{
    unsigned char h[CQL_HEADER_LEN] = {version, 0, (unsigned char)((uint16_t)stream >> 8), (unsigned char)stream,
                                       opcode, 0, 0, 0, 0};
    b->frame = b->len;
    cql_put_raw(b, h, sizeof h);
}

int cql_frame_end(cql_buf *b)
{
    if (b->oom || b->len < b->frame + CQL_HEADER_LEN)
        return -1;
    size_t body = b->len - b->frame - CQL_HEADER_LEN;
    if (body > CQL_MAX_BODY)
        return -1;
    unsigned char *h = b->p + b->frame;
    h[5] = (unsigned char)(body >> 24);
    h[6] = (unsigned char)(body >> 16);
    h[7] = (unsigned char)(body >> 8);
    h[8] = (unsigned char)body;
    return 0;
}

/* ---- requests ----------------------------------------------------------------------------- */

int cql_req_startup(cql_buf *b, uint8_t version, int16_t stream)
{
    static const char *const kv[] = {"CQL_VERSION", "3.0.0"};
    cql_frame_begin(b, version, stream, CQL_OP_STARTUP);
    cql_put_string_map(b, kv, 1);
    return cql_frame_end(b);
}

int cql_req_options(cql_buf *b, uint8_t version, int16_t stream)
{
    cql_frame_begin(b, version, stream, CQL_OP_OPTIONS);
    return cql_frame_end(b);
}

int cql_req_auth_plain(cql_buf *b, uint8_t version, int16_t stream, const char *user, const char *password)
{
    size_t u = strlen(user), p = strlen(password);
    if (u + p + 2 > INT32_MAX)
        return -1;
    cql_frame_begin(b, version, stream, CQL_OP_AUTH_RESPONSE);
    cql_put_i32(b, (int32_t)(u + p + 2));
    cql_put_u8(b, 0);
    cql_put_raw(b, user, u);
    cql_put_u8(b, 0);
    cql_put_raw(b, password, p);
    return cql_frame_end(b);
}

static void put_params(cql_buf *b, uint8_t version, const cql_params *qp)
{
    uint8_t flags = 0;
    if (qp->nvalues)
        flags |= CQL_QF_VALUES;
    if (qp->skip_metadata)
        flags |= CQL_QF_SKIP_METADATA;
    if (qp->page_size > 0)
        flags |= CQL_QF_PAGE_SIZE;
    if (qp->paging && qp->paging_len >= 0)
        flags |= CQL_QF_PAGING_STATE;
    if (qp->timestamp && version >= 3)
        flags |= CQL_QF_TIMESTAMP;
    cql_put_u16(b, qp->consistency);
    cql_put_u8(b, flags);
    if (flags & CQL_QF_VALUES) {
        cql_put_u16(b, qp->nvalues);
        cql_put_raw(b, qp->values->p, qp->values->len);
    }
    if (flags & CQL_QF_PAGE_SIZE)
        cql_put_i32(b, qp->page_size);
    if (flags & CQL_QF_PAGING_STATE)
        cql_put_bytes(b, qp->paging, qp->paging_len);
    if (flags & CQL_QF_TIMESTAMP)
        cql_put_i64(b, qp->timestamp);
}

int cql_req_query(cql_buf *b, uint8_t version, int16_t stream, const char *query, const cql_params *qp)
{
    cql_frame_begin(b, version, stream, CQL_OP_QUERY);
    cql_put_long_string(b, query, strlen(query));
    put_params(b, version, qp);
    return cql_frame_end(b);
}

int cql_req_prepare(cql_buf *b, uint8_t version, int16_t stream, const char *query)
{
    cql_frame_begin(b, version, stream, CQL_OP_PREPARE);
    cql_put_long_string(b, query, strlen(query));
    return cql_frame_end(b);
}

int cql_req_execute(cql_buf *b, uint8_t version, int16_t stream, const void *id, uint16_t idlen,
                    const cql_params *qp)
{
    cql_frame_begin(b, version, stream, CQL_OP_EXECUTE);
    cql_put_short_bytes(b, id, idlen);
    put_params(b, version, qp);
    return cql_frame_end(b);
}

/* BATCH (protocol v3/v4 section 4.1.7): <type><n><query_1>...<query_n>
 * <consistency><flags>[<serial_consistency>][<timestamp>], each query
 * <kind><string_or_id><n><value_1>...<value_n>. n is patched in at the end. */
void cql_batch_begin(cql_buf *b, uint8_t version, int16_t stream, uint8_t type)
{
    cql_frame_begin(b, version, stream, CQL_OP_BATCH);
    cql_put_u8(b, type);
    cql_put_u16(b, 0);
}

static void batch_values(cql_buf *b, uint16_t nvalues, const void *values, size_t len)
{
    cql_put_u16(b, nvalues);
    cql_put_raw(b, values, len);
}

void cql_batch_add_prepared(cql_buf *b, const void *id, uint16_t idlen, uint16_t nvalues, const void *values,
                            size_t len)
{
    cql_put_u8(b, 1);
    cql_put_short_bytes(b, id, idlen);
    batch_values(b, nvalues, values, len);
}

void cql_batch_add_query(cql_buf *b, const char *query, uint16_t nvalues, const void *values, size_t len)
{
    cql_put_u8(b, 0);
    cql_put_long_string(b, query, strlen(query));
    batch_values(b, nvalues, values, len);
}

int cql_batch_end(cql_buf *b, uint16_t count, uint16_t consistency, int64_t timestamp)
{
    if (b->oom || b->len < b->frame + CQL_HEADER_LEN + 3 || !count)
        return -1;
    unsigned char *n = b->p + b->frame + CQL_HEADER_LEN + 1;
    n[0] = (unsigned char)(count >> 8);
    n[1] = (unsigned char)count;
    cql_put_u16(b, consistency);
    cql_put_u8(b, timestamp ? CQL_QF_TIMESTAMP : 0);
    if (timestamp)
        cql_put_i64(b, timestamp);
    return cql_frame_end(b);
}

/* ---- reading ------------------------------------------------------------------------------ */

void cql_rd_init(cql_rd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = NULL;
}

static const unsigned char *take(cql_rd *r, size_t n, const char *what)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->off) {
        r->err = what;
        return NULL;
    }
    const unsigned char *at = r->p + r->off;
    r->off += n;
    return at;
}

const unsigned char *cql_get_raw(cql_rd *r, size_t n)
{
    return take(r, n, "truncated");
}

uint8_t cql_get_u8(cql_rd *r)
{
    const unsigned char *x = take(r, 1, "truncated (a byte)");
    return x ? x[0] : 0;
}

uint16_t cql_get_u16(cql_rd *r)
{
    const unsigned char *x = take(r, 2, "truncated (a short)");
    return x ? (uint16_t)(x[0] << 8 | x[1]) : 0;
}

int32_t cql_get_i32(cql_rd *r)
{
    const unsigned char *x = take(r, 4, "truncated (an int)");
    return x ? (int32_t)((uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3]) : 0;
}

int64_t cql_get_i64(cql_rd *r)
{
    const unsigned char *x = take(r, 8, "truncated (a long)");
    uint64_t u = 0;
    for (int i = 0; x && i < 8; i++)
        u = u << 8 | x[i];
    return (int64_t)u;
}

const char *cql_get_string(cql_rd *r, size_t *n)
{
    uint16_t k = cql_get_u16(r);
    const unsigned char *s = take(r, k, "truncated (a string)");
    *n = s ? k : 0;
    return (const char *)s;
}

const char *cql_get_long_string(cql_rd *r, size_t *n)
{
    int32_t k = cql_get_i32(r);
    if (k < 0 && !r->err)
        r->err = "a negative long string length";
    const unsigned char *s = r->err ? NULL : take(r, (size_t)k, "truncated (a long string)");
    *n = s ? (size_t)k : 0;
    return (const char *)s;
}

const unsigned char *cql_get_bytes(cql_rd *r, int32_t *n)
{
    int32_t k = cql_get_i32(r);
    *n = -1;
    if (r->err)
        return NULL;
    if (k < 0) {
        if (k < -2)
            r->err = "a [bytes] length below -2";
        else
            *n = k;
        return NULL;
    }
    const unsigned char *s = take(r, (size_t)k, "truncated (a [bytes])");
    if (s)
        *n = k;
    return s;
}

const unsigned char *cql_get_short_bytes(cql_rd *r, uint16_t *n)
{
    uint16_t k = cql_get_u16(r);
    const unsigned char *s = take(r, k, "truncated (a [short bytes])");
    *n = s ? k : 0;
    return s;
}

char *cql_get_strdup(cql_rd *r)
{
    size_t n;
    const char *s = cql_get_string(r, &n);
    if (!s)
        return NULL;
    if (memchr(s, 0, n)) {
        r->err = "a NUL inside a string";
        return NULL;
    }
    char *d = malloc(n + 1);
    if (!d) {
        r->err = "out of memory";
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int cql_header_parse(const unsigned char h[CQL_HEADER_LEN], cql_header *out, const char **why)
{
    out->response = h[0] & 0x80;
    out->version = h[0] & 0x7f;
    out->flags = h[1];
    out->stream = (int16_t)(uint16_t)(h[2] << 8 | h[3]);
    out->opcode = h[4];
    out->length = (uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
    if (out->version != 3 && out->version != 4) {
        *why = "a protocol version other than 3 or 4";
        return -1;
    }
    if (out->length > CQL_MAX_BODY) {
        *why = "a frame body over 256 MiB";
        return -1;
    }
    return 0;
}

/* ---- types -------------------------------------------------------------------------------- */

void cql_type_free(cql_type *t)
{
    if (!t)
        return;
    for (uint16_t i = 0; i < t->n; i++) {
        if (t->sub)
            cql_type_free(t->sub[i]);
        if (t->fields)
            free(t->fields[i]);
    }
    free(t->sub);
    free(t->fields);
    free(t->custom);
    free(t->ks);
    free(t->name);
    free(t);
}

static cql_type *get_type(cql_rd *r, int depth)
{
    if (depth > CQL_TYPE_DEPTH) {
        if (!r->err)
            r->err = "types nested too deep";
        return NULL;
    }
    uint16_t id = cql_get_u16(r);
    if (r->err)
        return NULL;
    cql_type *t = calloc(1, sizeof *t);
    if (!t) {
        r->err = "out of memory";
        return NULL;
    }
    t->id = id;
    uint16_t n = 0;
    switch (id) {
    case CQL_T_CUSTOM:
        t->custom = cql_get_strdup(r);
        break;
    case CQL_T_LIST:
    case CQL_T_SET:
        n = 1;
        break;
    case CQL_T_MAP:
        n = 2;
        break;
    case CQL_T_UDT:
        t->ks = cql_get_strdup(r);
        t->name = cql_get_strdup(r);
        n = cql_get_u16(r);
        break;
    case CQL_T_TUPLE:
        n = cql_get_u16(r);
        break;
    default:
        if (id > CQL_T_DURATION && id != CQL_T_JSONB) {
            r->err = "an unknown type option id";
        } else if (id == 0x000A) {
            r->err = "type option 0x000A (text, removed from the protocol)";
        }
        break;
    }
    if (!r->err && n) {
        t->sub = calloc(n, sizeof *t->sub);
        if (id == CQL_T_UDT)
            t->fields = calloc(n, sizeof *t->fields);
        if (!t->sub || (id == CQL_T_UDT && !t->fields)) {
            r->err = "out of memory";
        } else {
            t->n = n;
            for (uint16_t i = 0; i < n && !r->err; i++) {
                if (id == CQL_T_UDT)
                    t->fields[i] = cql_get_strdup(r);
                t->sub[i] = get_type(r, depth + 1);
            }
        }
    }
    if (r->err) {
        cql_type_free(t);
        return NULL;
    }
    return t;
}

cql_type *cql_get_type(cql_rd *r)
{
    return get_type(r, 0);
}

static const char *native_name(uint16_t id)
{
    switch (id) {
    case CQL_T_ASCII: return "ascii";
    case CQL_T_BIGINT: return "bigint";
    case CQL_T_BLOB: return "blob";
    case CQL_T_BOOLEAN: return "boolean";
    case CQL_T_COUNTER: return "counter";
    case CQL_T_DECIMAL: return "decimal";
    case CQL_T_DOUBLE: return "double";
    case CQL_T_FLOAT: return "float";
    case CQL_T_INT: return "int";
    case CQL_T_TIMESTAMP: return "timestamp";
    case CQL_T_UUID: return "uuid";
    case CQL_T_VARCHAR: return "text";
    case CQL_T_VARINT: return "varint";
    case CQL_T_TIMEUUID: return "timeuuid";
    case CQL_T_INET: return "inet";
    case CQL_T_DATE: return "date";
    case CQL_T_TIME: return "time";
    case CQL_T_SMALLINT: return "smallint";
    case CQL_T_TINYINT: return "tinyint";
    case CQL_T_DURATION: return "duration";
    case CQL_T_JSONB: return "jsonb";
    default: return NULL;
    }
}

typedef struct fmt {
    char *out;
    size_t cap, len;
} fmt;

static void fput(fmt *f, const char *s)
{
    size_t n = strlen(s);
    if (f->len < f->cap) {
        size_t k = f->cap - f->len - 1 < n ? f->cap - f->len - 1 : n;
        memcpy(f->out + f->len, s, k);
        f->out[f->len + k] = 0;
    }
    f->len += n;
}

int cql_name_is_bare(const char *s)
{
    int bare = *s && !(*s >= '0' && *s <= '9');
    for (const char *c = s; *c && bare; c++)
        bare = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    return bare;
}

/* a name as CQL needs it */
static void fname(fmt *f, const char *s)
{
    if (cql_name_is_bare(s)) {
        fput(f, s);
        return;
    }
    fput(f, "\"");
    for (const char *c = s; *c; c++) {
        char one[2] = {*c, 0};
        fput(f, *c == '"' ? "\"\"" : one);
    }
    fput(f, "\"");
}

static int is_collection(const cql_type *t)
{
    return t->id == CQL_T_LIST || t->id == CQL_T_SET || t->id == CQL_T_MAP || t->id == CQL_T_UDT ||
           t->id == CQL_T_TUPLE;
}

static void ftype(fmt *f, const cql_type *t, int inner)
{
    const char *n = native_name(t->id);
    if (n) {
        fput(f, n);
        return;
    }
    int frozen = inner && is_collection(t) && t->id != CQL_T_TUPLE; /* tuples are always frozen */
    if (frozen)
        fput(f, "frozen<");
    switch (t->id) {
    case CQL_T_CUSTOM:
        fput(f, "'");
        fput(f, t->custom ? t->custom : "");
        fput(f, "'");
        break;
    case CQL_T_LIST:
    case CQL_T_SET:
    case CQL_T_MAP:
    case CQL_T_TUPLE:
        fput(f, t->id == CQL_T_LIST ? "list<" : t->id == CQL_T_SET ? "set<" : t->id == CQL_T_MAP ? "map<" : "tuple<");
        for (uint16_t i = 0; i < t->n; i++) {
            if (i)
                fput(f, ", ");
            ftype(f, t->sub[i], 1);
        }
        fput(f, ">");
        break;
    case CQL_T_UDT:
        fname(f, t->ks ? t->ks : "");
        fput(f, ".");
        fname(f, t->name ? t->name : "");
        break;
    default:
        fput(f, "?");
    }
    if (frozen)
        fput(f, ">");
}

size_t cql_type_format(const cql_type *t, char *out, size_t cap)
{
    fmt f = {out, cap, 0};
    if (cap)
        out[0] = 0;
    ftype(&f, t, 0);
    return f.len;
}

/* ---- results ------------------------------------------------------------------------------ */

static void cols_free(cql_col *c, int32_t n)
{
    for (int32_t i = 0; c && i < n; i++) {
        free(c[i].ks);
        free(c[i].table);
        free(c[i].name);
        cql_type_free(c[i].type);
    }
    free(c);
}

/* n column specs, each with its keyspace and table unless a global spec gave them */
static cql_col *get_cols(cql_rd *r, int32_t n, int global, const char *gks, const char *gtable)
{
    if (n < 0 || (size_t)n > (r->len - r->off) / 3) { /* each spec takes at least 3 bytes */
        if (!r->err)
            r->err = "a column count the frame cannot hold";
        return NULL;
    }
    cql_col *c = calloc(n ? (size_t)n : 1, sizeof *c);
    if (!c) {
        r->err = "out of memory";
        return NULL;
    }
    for (int32_t i = 0; i < n && !r->err; i++) {
        if (global) {
            c[i].ks = strdup(gks);
            c[i].table = strdup(gtable);
            if (!c[i].ks || !c[i].table)
                r->err = "out of memory";
        } else {
            c[i].ks = cql_get_strdup(r);
            c[i].table = cql_get_strdup(r);
        }
        c[i].name = cql_get_strdup(r);
        c[i].type = cql_get_type(r);
    }
    if (r->err) {
        cols_free(c, n);
        return NULL;
    }
    return c;
}

void cql_meta_free(cql_meta *m)
{
    cols_free(m->cols, m->ncols);
    memset(m, 0, sizeof *m);
}

int cql_get_meta(cql_rd *r, cql_meta *m)
{
    memset(m, 0, sizeof *m);
    m->paging_len = -1;
    m->flags = cql_get_i32(r);
    m->ncols = cql_get_i32(r);
    if (!r->err && (m->flags & CQL_RF_HAS_MORE_PAGES)) {
        m->paging = cql_get_bytes(r, &m->paging_len);
        if (!r->err && m->paging_len < 0)
            r->err = "has_more_pages without a paging state";
    }
    if (!r->err && !(m->flags & CQL_RF_NO_METADATA)) {
        char *gks = NULL, *gtable = NULL;
        int global = m->flags & CQL_RF_GLOBAL_SPEC;
        if (global) {
            gks = cql_get_strdup(r);
            gtable = cql_get_strdup(r);
        }
        if (!r->err)
            m->cols = get_cols(r, m->ncols, global, gks, gtable);
        free(gks);
        free(gtable);
    }
    if (!r->err && m->ncols < 0)
        r->err = "a negative column count";
    if (r->err) {
        cql_meta_free(m);
        return -1;
    }
    return 0;
}

void cql_prepared_free(cql_prepared *p)
{
    cols_free(p->bind, p->nbind);
    free(p->pk);
    cql_meta_free(&p->result);
    memset(p, 0, sizeof *p);
}

int cql_get_prepared(cql_rd *r, cql_prepared *p)
{
    memset(p, 0, sizeof *p);
    p->id = cql_get_short_bytes(r, &p->idlen);
    int32_t flags = cql_get_i32(r);
    p->nbind = cql_get_i32(r);
    p->npk = cql_get_i32(r);
    if (!r->err && (p->npk < 0 || p->nbind < 0 || p->npk > p->nbind))
        r->err = "bad bind marker counts in a Prepared result";
    if (!r->err && p->npk) {
        if (!(p->pk = calloc((size_t)p->npk, sizeof *p->pk)))
            r->err = "out of memory";
        for (int32_t i = 0; !r->err && i < p->npk; i++)
            p->pk[i] = cql_get_u16(r);
    }
    if (!r->err) {
        char *gks = NULL, *gtable = NULL;
        int global = flags & CQL_RF_GLOBAL_SPEC;
        if (global) {
            gks = cql_get_strdup(r);
            gtable = cql_get_strdup(r);
        }
        if (!r->err)
            p->bind = get_cols(r, p->nbind, global, gks, gtable);
        free(gks);
        free(gtable);
    }
    if (!r->err)
        cql_get_meta(r, &p->result);
    if (r->err) {
        int32_t nb = p->bind ? p->nbind : 0;
        p->nbind = nb;
        cql_prepared_free(p);
        return -1;
    }
    return 0;
}

/* ---- errors ------------------------------------------------------------------------------- */

const char *cql_consistency_name(uint16_t c)
{
    static const char *const n[] = {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
                                    "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"};
    return c < sizeof n / sizeof *n ? n[c] : "?";
}

const char *cql_error_name(int32_t code)
{
    switch (code) {
    case 0x0000: return "server error";
    case 0x000A: return "protocol error";
    case 0x0100: return "bad credentials";
    case 0x1000: return "unavailable";
    case 0x1001: return "overloaded";
    case 0x1002: return "is bootstrapping";
    case 0x1003: return "truncate error";
    case 0x1100: return "write timeout";
    case 0x1200: return "read timeout";
    case 0x1300: return "read failure";
    case 0x1400: return "function failure";
    case 0x1500: return "write failure";
    case 0x2000: return "syntax error";
    case 0x2100: return "unauthorized";
    case 0x2200: return "invalid";
    case 0x2300: return "configuration error";
    case 0x2400: return "already exists";
    case 0x2500: return "unprepared";
    default: return "error";
    }
}

int cql_get_error(cql_rd *r, int32_t *code, char *msg, size_t cap)
{
    size_t n;
    *code = cql_get_i32(r);
    const char *s = cql_get_string(r, &n);
    if (!s) {
        if (cap)
            snprintf(msg, cap, "(an ERROR frame cut short: %s)", r->err ? r->err : "?");
        return -1;
    }
    int k = snprintf(msg, cap, "%.*s", (int)(n > 2000 ? 2000 : n), s);
    size_t used = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap;
    char extra[200] = "";
    switch (*code) {
    case 0x1000: { /* unavailable: cl, required, alive */
        uint16_t cl = cql_get_u16(r);
        int32_t req = cql_get_i32(r), alive = cql_get_i32(r);
        if (!r->err)
            snprintf(extra, sizeof extra, " (consistency %s: %d replicas required, %d alive)", cql_consistency_name(cl),
                     req, alive);
        break;
    }
    case 0x1100:   /* write timeout: cl, received, blockfor, writeType */
    case 0x1200: { /* read timeout: cl, received, blockfor, data_present */
        uint16_t cl = cql_get_u16(r);
        int32_t got = cql_get_i32(r), need = cql_get_i32(r);
        if (!r->err)
            snprintf(extra, sizeof extra, " (consistency %s: %d of %d replicas responded)", cql_consistency_name(cl),
                     got, need);
        break;
    }
    case 0x2400: { /* already exists: keyspace, table */
        size_t kn, tn;
        const char *ks = cql_get_string(r, &kn), *t = ks ? cql_get_string(r, &tn) : NULL;
        if (ks && t)
            snprintf(extra, sizeof extra, " (%.*s%s%.*s)", (int)(kn > 90 ? 90 : kn), ks, tn ? "." : "",
                     (int)(tn > 90 ? 90 : tn), t);
        break;
    }
    default:
        break;
    }
    if (extra[0] && used < cap)
        snprintf(msg + used, cap - used, "%s", extra);
    return 0;
}
