/* ysql plugin: rows too big to come through COPY. libpq hands a COPY row over
 * whole - once in its input buffer, once in the copy it returns - so one row
 * of 800 MB of COPY text costs 1.6 GB of client memory. Tables that hold
 * values stored out of line (TOAST) are therefore copied with
 * `WHERE NOT <big>` and their rows over YSQL_BIG_ROW are built here, value by
 * value: small values through a one-row COPY (exact COPY text), big text and
 * bytea values in pieces of 16 MiB (substr / substring in the row's snapshot,
 * read in binary, escaped as COPY escapes them), other big values in pieces of
 * their output function's text. The bytes are the COPY line, so digests and
 * restores cannot tell the difference. */
#include "ysql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BR_PIECE ((int64_t)16 << 20) /* bytes of a big value per row of its query */
#define BR_INLINE ((int64_t)1 << 20) /* values up to this come through the one-row COPY */
#define BR_OUT ((size_t)256 << 10)   /* escaped bytes gathered before a write */

char *ysql_big_condition(const cat_table *t)
{
    if (!t->wide)
        return NULL;
    pc_buf q = {0};
    pc_buf_str(&q, "(0");
    for (size_t i = 0; t->columns[i]; i++) {
        char k = t->wide[i];
        if (k == 'f')
            continue;
        pc_buf_str(&q, k == 'v' ? " + coalesce(pg_catalog.pg_column_size(" : " + coalesce(pg_catalog.octet_length(");
        ysql_buf_ident(&q, t->columns[i]);
        pc_buf_printf(&q, ")::pg_catalog.int8%s, 0)", k == 'b' ? " * 2" : "");
    }
    pc_buf_printf(&q, ") > %" PRId64, YSQL_BIG_ROW);
    return pc_buf_take(&q);
}

typedef struct br {
    PGconn *c;
    ysql_err *e;
    const char *where;
    const cat_table *t;
    const char *encoding;
    ysql_hasher *h;
    ysql_digest *dg;
    ysql_write_fn write;
    void *ud;
    char *from;      /* ' FROM ONLY "s"."t" WHERE ctid = $1::pg_catalog.tid' */
    char **outfn;    /* per column, the type's output function, read when first needed */
    pc_buf out;      /* escaped bytes not yet written */
    int64_t line;    /* bytes of the current line */
} br;

static int br_emit(br *x, const void *p, size_t n)
{
    if (ysql_digest_update(x->h, p, n) < 0)
        return ysql_fail(x->e, ARCA_EFAIL, "cannot hash a row of %s (libcrypto)", x->where);
    x->line += (int64_t)n;
    if (!x->write)
        return ARCA_OK;
    pc_buf_add(&x->out, p, n);
    if (x->out.oom)
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    if (x->out.len < BR_OUT)
        return ARCA_OK;
    int rc = x->write(x->ud, x->out.p, x->out.len);
    x->out.len = 0;
    return rc;
}

/* COPY text escaping of raw bytes in the database's encoding (every server
 * encoding keeps ASCII bytes for ASCII characters, so bytes can be looked at
 * one by one, as COPY does). */
static int br_escaped(br *x, const unsigned char *p, size_t n)
{
    char tmp[8192];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        char esc = 0;
        switch (ch) {
        case '\\': esc = '\\'; break;
        case '\b': esc = 'b'; break;
        case '\f': esc = 'f'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        case '\v': esc = 'v'; break;
        default: break;
        }
        if (k + 2 > sizeof tmp) {
            int rc = br_emit(x, tmp, k);
            if (rc < 0)
                return rc;
            k = 0;
        }
        if (esc) {
            tmp[k++] = '\\';
            tmp[k++] = esc;
        } else {
            tmp[k++] = (char)ch;
        }
    }
    return k ? br_emit(x, tmp, k) : ARCA_OK;
}

static int br_hex(br *x, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[8192];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 2 > sizeof tmp) {
            int rc = br_emit(x, tmp, k);
            if (rc < 0)
                return rc;
            k = 0;
        }
        tmp[k++] = digits[p[i] >> 4];
        tmp[k++] = digits[p[i] & 15];
    }
    return k ? br_emit(x, tmp, k) : ARCA_OK;
}

static int br_failed(br *x, PGresult *r, const char *what)
{
    char *m = ysql_pg_message(x->c, r);
    int rc = ysql_fail(x->e, ARCA_EFAIL, "%s: %s: %s", x->where, what, m ? m : "out of memory");
    free(m);
    return rc;
}

/* The output function of every column (for big values of other types). */
static int br_outfns(br *x)
{
    if (x->outfn)
        return ARCA_OK;
    size_t n = 0;
    while (x->t->columns[n])
        n++;
    if (!(x->outfn = calloc(n + 1, sizeof *x->outfn)))
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    char *rel = ysql_qualified(x->t->schema, x->t->name);
    if (!rel)
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    int rc = ARCA_OK;
    for (size_t i = 0; rc == ARCA_OK && i < n; i++) {
        const char *p[2] = {rel, x->t->columns[i]};
        PGresult *r = PQexecParams(x->c,
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)"
            " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            " JOIN pg_catalog.pg_proc p ON p.oid = t.typoutput"
            " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
            " WHERE a.attrelid = $1::pg_catalog.regclass AND a.attname = $2", 2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            rc = br_failed(x, r, "cannot find a column's output function");
        else if (!(x->outfn[i] = strdup(PQgetvalue(r, 0, 0))))
            rc = ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
        PQclear(r);
    }
    free(rel);
    return rc;
}

/* One big value in pieces: the server makes it once (bytea: its bytes;
 * text: its bytes in the database's encoding; other types: their output
 * function's text, so) and cuts it; the pieces come one row at a time
 * (single-row mode), so the client holds one piece. Slicing the stored
 * value piece by piece instead would decompress (or, in a multibyte
 * encoding, count the characters of) everything before each piece again. */
static int br_pieces(br *x, const char *ctid, size_t col)
{
    char k = x->t->wide[col];
    if (k == 'v' && br_outfns(x) < 0)
        return ysql_failed(x->e);
    pc_buf q = {0};
    pc_buf_printf(&q, "SELECT p.k, pg_catalog.substring(x.v, p.k::pg_catalog.int4, %" PRId64 ") FROM (SELECT ",
                  BR_PIECE);
    if (k == 'b') {
        ysql_buf_ident(&q, x->t->columns[col]);
        pc_buf_str(&q, " OPERATOR(pg_catalog.||) ''::pg_catalog.bytea");
    } else {
        pc_buf_str(&q, "pg_catalog.convert_to(");
        if (k == 'v')
            pc_buf_printf(&q, "pg_catalog.textin(%s(", x->outfn[col]);
        ysql_buf_ident(&q, x->t->columns[col]);
        pc_buf_str(&q, k == 'v' ? ")), $2)" : "::pg_catalog.text, $2)");
    }
    pc_buf_str(&q, " AS v");
    pc_buf_str(&q, x->from);
    pc_buf_printf(&q, " OFFSET 0) x, pg_catalog.generate_series(1::pg_catalog.int8,"
                  " pg_catalog.octet_length(x.v)::pg_catalog.int8, %" PRId64 ") p(k)", BR_PIECE);
    char *sql = pc_buf_take(&q);
    if (!sql)
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    const char *p[2] = {ctid, x->encoding};
    int rc = k == 'b' ? br_emit(x, "\\\\x", 3) : ARCA_OK;
    int sent = rc == ARCA_OK && PQsendQueryParams(x->c, sql, k == 'b' ? 1 : 2, NULL, p, NULL, NULL, 1) &&
               PQsetSingleRowMode(x->c);
    free(sql);
    if (rc == ARCA_OK && !sent)
        rc = br_failed(x, NULL, "cannot read a big value");
    int64_t next = 1;
    PGresult *r;
    while ((r = PQgetResult(x->c))) {
        ExecStatusType st = PQresultStatus(r);
        if (rc == ARCA_OK && st == PGRES_SINGLE_TUPLE) {
            /* binary: k as an int8 in network order, then the piece */
            const unsigned char *kb = (const unsigned char *)PQgetvalue(r, 0, 0);
            int64_t at = 0;
            for (int i = 0; i < 8; i++)
                at = at << 8 | kb[i];
            size_t len = (size_t)PQgetlength(r, 0, 1);
            const unsigned char *v = (const unsigned char *)PQgetvalue(r, 0, 1);
            if (at != next)
                rc = ysql_fail(x->e, ARCA_EFAIL, "%s: the pieces of a big value came out of order", x->where);
            else
                rc = k == 'b' ? br_hex(x, v, len) : br_escaped(x, v, len);
            next += BR_PIECE;
        } else if (rc == ARCA_OK && st != PGRES_TUPLES_OK) {
            rc = br_failed(x, r, "cannot read a big value");
        }
        PQclear(r);
    }
    return rc;
}

/* Which of the row's n values are big (big[i] = 1): their sizes, asked of the server. */
static int br_measure(br *x, const char *ctid, size_t n, char *big)
{
    const cat_table *t = x->t;
    pc_buf q = {0};
    pc_buf_str(&q, "SELECT 0");
    for (size_t i = 0; i < n; i++) {
        char k = t->wide[i];
        if (k == 'f') {
            pc_buf_str(&q, ", 0");
            continue;
        }
        pc_buf_str(&q, k == 'v' ? ", pg_catalog.pg_column_size(" : ", pg_catalog.octet_length(");
        ysql_buf_ident(&q, t->columns[i]);
        pc_buf_str(&q, ")::pg_catalog.int8");
    }
    pc_buf_str(&q, x->from);
    char *sql = pc_buf_take(&q);
    if (!sql)
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    const char *p[1] = {ctid};
    PGresult *r = PQexecParams(x->c, sql, 1, NULL, p, NULL, NULL, 0);
    free(sql);
    int rc = ARCA_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = br_failed(x, r, "cannot measure a big row");
    } else {
        for (size_t i = 0; i < n; i++) {
            int64_t size = PQgetisnull(r, 0, (int)i + 1) ? -1 : strtoll(PQgetvalue(r, 0, (int)i + 1), NULL, 10);
            big[i] = t->wide[i] != 'f' && size > BR_INLINE;
        }
    }
    PQclear(r);
    return rc;
}

/* The row's line as COPY writes it with NULL in the places of the big values
 * (*line: PQfreemem it; *len includes the newline). */
static int br_small_values(br *x, const char *ctid, size_t n, const char *big, char **line, int *len)
{
    const cat_table *t = x->t;
    pc_buf q = {0};
    pc_buf_str(&q, "COPY (SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            pc_buf_str(&q, ", ");
        if (big[i])
            pc_buf_str(&q, "NULL");
        else
            ysql_buf_ident(&q, t->columns[i]);
    }
    pc_buf_str(&q, " FROM ONLY ");
    ysql_buf_ident(&q, t->schema);
    pc_buf_str(&q, ".");
    ysql_buf_ident(&q, t->name);
    pc_buf_str(&q, " WHERE ctid = ");
    ysql_buf_literal(&q, ctid);
    pc_buf_str(&q, "::pg_catalog.tid) TO STDOUT");
    ysql_copy_options(&q, x->encoding, 0);
    char *sql = pc_buf_take(&q);
    PGresult *r = sql ? PQexec(x->c, sql) : NULL;
    free(sql);
    int rc = ARCA_OK;
    *line = NULL;
    *len = -1;
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        rc = br_failed(x, r, "cannot copy the small values of a big row");
        PQclear(r);
        return rc;
    }
    PQclear(r);
    char *row;
    int got;
    while ((got = PQgetCopyData(x->c, &row, 0)) >= 0) {
        if (!*line) {
            *line = row;
            *len = got;
        } else {
            PQfreemem(row);
        }
    }
    while ((r = PQgetResult(x->c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == ARCA_OK)
            rc = br_failed(x, r, "cannot copy the small values of a big row");
        PQclear(r);
    }
    if (rc == ARCA_OK && (!*line || *len < 1 || (*line)[*len - 1] != '\n'))
        rc = ysql_fail(x->e, ARCA_EFAIL, "%s: a big row vanished while it was copied", x->where);
    return rc;
}

/* One row: the small values through a one-row COPY (NULL in the places of
 * the big ones), then the line put together field by field. */
static int br_row(br *x, const char *ctid)
{
    size_t n = 0;
    while (x->t->columns[n])
        n++;
    char *big = calloc(n + 1, 1), *line = NULL;
    int len = -1;
    if (!big)
        return ysql_fail(x->e, ARCA_ENOMEM, "out of memory");
    int rc = br_measure(x, ctid, n, big);
    if (rc == ARCA_OK)
        rc = br_small_values(x, ctid, n, big, &line, &len);
    /* fields are separated by tabs (COPY escapes those in values) */
    const char *f = line;
    const char *end = line ? line + len - 1 : NULL;
    x->line = 0;
    if (rc == ARCA_OK && ysql_digest_begin(x->h) < 0)
        rc = ysql_fail(x->e, ARCA_EFAIL, "cannot hash a row of %s (libcrypto)", x->where);
    for (size_t i = 0; rc == ARCA_OK && i < n; i++) {
        const char *tab = memchr(f, '\t', (size_t)(end - f));
        const char *fe = tab ? tab : end;
        if (i && (rc = br_emit(x, "\t", 1)) < 0)
            break;
        if (big[i])
            rc = br_pieces(x, ctid, i);
        else
            rc = br_emit(x, f, (size_t)(fe - f));
        f = tab ? tab + 1 : end;
    }
    if (rc == ARCA_OK)
        rc = br_emit(x, "\n", 1);
    if (rc == ARCA_OK && ysql_digest_end(x->h, x->dg) < 0)
        rc = ysql_fail(x->e, ARCA_EFAIL, "cannot hash a row of %s (libcrypto)", x->where);
    PQfreemem(line);
    free(big);
    return rc;
}

int ysql_copy_big_rows(PGconn *c, ysql_err *e, const char *where, const cat_table *t,
                       const char *range, const char *encoding, ysql_hasher *h, ysql_digest *dg,
                       ysql_write_fn write, void *ud)
{
    char *cond = ysql_big_condition(t);
    if (!cond)
        return t->wide ? ysql_fail(e, ARCA_ENOMEM, "out of memory") : ARCA_OK;
    br x = {.c = c, .e = e, .where = where, .t = t, .encoding = encoding, .h = h, .dg = dg,
            .write = write, .ud = ud};
    pc_buf q = {0};
    pc_buf_str(&q, " FROM ONLY ");
    ysql_buf_ident(&q, t->schema);
    pc_buf_str(&q, ".");
    ysql_buf_ident(&q, t->name);
    pc_buf_str(&q, " WHERE ctid = $1::pg_catalog.tid");
    x.from = pc_buf_take(&q);
    pc_buf_str(&q, "SELECT ctid FROM ONLY ");
    ysql_buf_ident(&q, t->schema);
    pc_buf_str(&q, ".");
    ysql_buf_ident(&q, t->name);
    pc_buf_printf(&q, " WHERE %s%s%s", range ? range : "", range ? " AND " : "", cond);
    char *sql = pc_buf_take(&q);
    free(cond);
    int rc = ARCA_OK;
    PGresult *r = x.from && sql ? PQexec(c, sql) : NULL;
    free(sql);
    if (!x.from || !r)
        rc = ysql_fail(e, ARCA_ENOMEM, "out of memory");
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = br_failed(&x, r, "cannot list the big rows");
    /* a handful of rows: their ctids (each a few bytes) stay in the result */
    for (int i = 0; rc == ARCA_OK && i < PQntuples(r); i++)
        rc = br_row(&x, PQgetvalue(r, i, 0));
    PQclear(r);
    if (rc == ARCA_OK && x.write && x.out.len)
        rc = x.write(x.ud, x.out.p, x.out.len);
    pc_buf_free(&x.out);
    free(x.from);
    ysql_strv_free(x.outfn);
    return rc < 0 ? ysql_failed(e) ? ysql_failed(e) : rc : ARCA_OK;
}
