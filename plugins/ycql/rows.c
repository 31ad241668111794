/* ycql plugin: the archive's row format (see rows.h). */
#include "rows.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char MAGIC[4] = {'A', 'R', 'C', 'Q'};

int yr_write_header(cql_buf *b, const yr_col *cols, uint16_t ncols, int meta)
{
    cql_put_raw(b, MAGIC, sizeof MAGIC);
    cql_put_u8(b, 1);
    cql_put_u8(b, meta ? 1 : 0);
    cql_put_u16(b, ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        if (strlen(cols[i].name) > 65535 || strlen(cols[i].type) > 65535)
            return -1;
        cql_put_string(b, cols[i].name);
        cql_put_string(b, cols[i].type);
        cql_put_u8(b, (uint8_t)cols[i].kind);
        cql_put_u8(b, meta && cols[i].meta ? 1 : 0);
    }
    return b->oom ? -1 : 0;
}

void yr_write_row(cql_buf *b, const yr_col *cols, uint16_t ncols, const yr_cell *cells)
{
    cql_put_u8(b, 'R');
    for (uint16_t i = 0; i < ncols; i++) {
        cql_put_bytes(b, cells[i].p, cells[i].p ? cells[i].len : -1);
        if (cols[i].meta) {
            cql_put_i64(b, cells[i].writetime);
            cql_put_i32(b, cells[i].ttl);
        }
    }
}

void yr_write_end(cql_buf *b, int64_t rows)
{
    cql_put_u8(b, 'E');
    cql_put_i64(b, rows);
}

static int yr_fail(yr_reader *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return -1;
}

int yr_open(yr_reader *r, const void *p, size_t len)
{
    memset(r, 0, sizeof *r);
    cql_rd_init(&r->rd, p, len);
    const unsigned char *m = cql_get_raw(&r->rd, 4);
    if (!m || memcmp(m, MAGIC, 4))
        return yr_fail(r, "not an arca YCQL rows object (no ARCQ magic)");
    uint8_t version = cql_get_u8(&r->rd);
    uint8_t flags = cql_get_u8(&r->rd);
    if (r->rd.err)
        return yr_fail(r, "truncated header");
    if (version != 1)
        return yr_fail(r, "rows object of an unknown version (this arca reads version 1)");
    r->meta = flags & 1;
    r->ncols = cql_get_u16(&r->rd);
    if (r->rd.err || !r->ncols)
        return yr_fail(r, "a rows object without columns");
    if (!(r->cols = calloc(r->ncols, sizeof *r->cols)))
        return yr_fail(r, "out of memory");
    for (uint16_t i = 0; i < r->ncols; i++) {
        yr_col *c = &r->cols[i];
        c->name = cql_get_strdup(&r->rd);
        c->type = cql_get_strdup(&r->rd);
        c->kind = cql_get_u8(&r->rd);
        c->meta = cql_get_u8(&r->rd);
        if (r->rd.err || !c->name || !c->type)
            return yr_fail(r, r->rd.err ? "truncated header" : "out of memory");
        if (c->kind > YR_REGULAR || c->meta > 1 || (c->meta && !r->meta))
            return yr_fail(r, "a column of an unknown kind in the header");
    }
    return 0;
}

int yr_next(yr_reader *r, yr_cell *cells)
{
    if (r->err)
        return -1;
    if (r->ended)
        return 0;
    uint8_t tag = cql_get_u8(&r->rd);
    if (r->rd.err)
        return yr_fail(r, "the rows end without their end marker (a cut object)");
    if (tag == 'E') {
        int64_t n = cql_get_i64(&r->rd);
        if (r->rd.err)
            return yr_fail(r, "truncated end marker");
        if (n != r->rows)
            return yr_fail(r, "the end marker's row count differs from the rows read");
        if (r->rd.off != r->rd.len)
            return yr_fail(r, "bytes after the end marker");
        r->ended = 1;
        return 0;
    }
    if (tag != 'R')
        return yr_fail(r, "not a row (bad tag)");
    for (uint16_t i = 0; i < r->ncols; i++) {
        int32_t n;
        const unsigned char *v = cql_get_bytes(&r->rd, &n);
        cells[i].p = n >= 0 ? (v ? v : (const unsigned char *)"") : NULL;
        cells[i].len = n >= 0 ? n : 0;
        cells[i].writetime = YR_NO_WRITETIME;
        cells[i].ttl = 0;
        if (r->cols[i].meta) {
            cells[i].writetime = cql_get_i64(&r->rd);
            cells[i].ttl = cql_get_i32(&r->rd);
        }
        if (r->rd.err)
            return yr_fail(r, "a row cut short");
        if (n < -1 || cells[i].ttl < 0)
            return yr_fail(r, "a cell of a bad length or TTL");
    }
    r->rows++;
    return 1;
}

void yr_close(yr_reader *r)
{
    for (uint16_t i = 0; r->cols && i < r->ncols; i++) {
        free(r->cols[i].name);
        free(r->cols[i].type);
    }
    free(r->cols);
    r->cols = NULL;
}
