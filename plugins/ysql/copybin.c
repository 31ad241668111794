/* ysql plugin: COPY text -> COPY binary for the loader (see pure.h).
 *
 * The text is read the way PostgreSQL 15's COPY FROM reads it (copyfromparse.c,
 * CopyReadLineText and CopyReadAttributesText): a backslash takes the next byte
 * with it, even a newline or a tab, so rows end at an unescaped newline and
 * fields at an unescaped tab; a field that is exactly \N is NULL (checked before
 * de-escaping); \b \f \n \r \t \v, \ooo (one to three octal digits) and \xh[h]
 * (without a hex digit: x) are decoded, any other escaped byte stands for
 * itself; "\." at the start of a row ends the data. Integers are read as
 * int2in/int4in/int8in read them (spaces around, a sign, decimal digits) and
 * booleans as boolin does. Text values go as they are: the server's receive
 * function applies the length limit of char(n)/varchar(n) and checks the
 * encoding, as its input function would. */
#include "pure.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ysql_copybin {
    unsigned char *kinds;
    size_t ncols, max_row;
    pc_buf carry;      /* a row begun in an earlier piece */
    pc_buf field;      /* a de-escaped field */
    int64_t rows;
    int esc;           /* the carried row ends with a backslash that takes the next byte */
    int header_sent, done;
};

int ysql_copybin_kind(unsigned oid, int typmod, size_t *max_text)
{
    enum { BOOLOID = 16, INT8OID = 20, INT2OID = 21, INT4OID = 23, BPCHAROID = 1042, VARCHAROID = 1043 };
    /* at most 4 bytes a character in any server encoding, at most 4 bytes of
     * text (\ooo) a byte, and room for spaces around numbers */
    *max_text = 64;
    switch (oid) {
    case BOOLOID: return YCB_BOOL;
    case INT2OID: return YCB_INT2;
    case INT4OID: return YCB_INT4;
    case INT8OID: return YCB_INT8;
    case BPCHAROID:
    case VARCHAROID:
        if (typmod < 4 + 1 || typmod > 4 + 65536)
            return 0;
        *max_text = (size_t)(typmod - 4) * 16 + 64;
        return YCB_TEXT;
    default: return 0;
    }
}

ysql_copybin *ysql_copybin_new(const unsigned char *kinds, size_t ncols, size_t max_row)
{
    if (!ncols)
        return NULL;
    ysql_copybin *c = calloc(1, sizeof *c);
    if (!c || !(c->kinds = malloc(ncols))) {
        free(c);
        return NULL;
    }
    memcpy(c->kinds, kinds, ncols);
    c->ncols = ncols;
    c->max_row = max_row;
    return c;
}

void ysql_copybin_free(ysql_copybin *c)
{
    if (!c)
        return;
    pc_buf_free(&c->carry);
    pc_buf_free(&c->field);
    free(c->kinds);
    free(c);
}

int64_t ysql_copybin_rows(const ysql_copybin *c)
{
    return c->rows;
}

static int cb_err(const ysql_copybin *c, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cb_err(const ysql_copybin *c, char *err, size_t errlen, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "row %" PRId64 ": ", c->rows + 1);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Writers in place: the caller reserved the room (pc_buf_reserve). */
static inline void put_be(pc_buf *out, uint64_t v, int bytes)
{
    char *b = out->p + out->len;
    if (bytes == 4) {
        uint32_t x = __builtin_bswap32((uint32_t)v);
        memcpy(b, &x, 4);
    } else if (bytes == 8) {
        uint64_t x = __builtin_bswap64(v);
        memcpy(b, &x, 8);
    } else if (bytes == 2) {
        uint16_t x = __builtin_bswap16((uint16_t)v);
        memcpy(b, &x, 2);
    } else {
        *b = (char)v;
    }
    out->len += (size_t)bytes;
}

static void put_mem(pc_buf *out, const void *p, size_t n)
{
    memcpy(out->p + out->len, p, n);
    out->len += n;
}

/* The same through a cursor kept in a local (a row is written through one and
 * its length added at the end: no reload of out->len after every store). */
static inline void wr_be(char **w, uint64_t v, int bytes)
{
    if (bytes == 4) {
        uint32_t x = __builtin_bswap32((uint32_t)v);
        memcpy(*w, &x, 4);
    } else if (bytes == 8) {
        uint64_t x = __builtin_bswap64(v);
        memcpy(*w, &x, 8);
    } else if (bytes == 2) {
        uint16_t x = __builtin_bswap16((uint16_t)v);
        memcpy(*w, &x, 2);
    } else {
        **w = (char)v;
    }
    *w += bytes;
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int hex_val(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* De-escapes s[0..n) into c->field. */
static void unescape(ysql_copybin *c, const char *s, size_t n)
{
    c->field.len = 0;
    const char *e = s + n;
    while (s < e) {
        const char *bs = memchr(s, '\\', (size_t)(e - s));
        if (!bs) {
            pc_buf_add(&c->field, s, (size_t)(e - s));
            break;
        }
        pc_buf_add(&c->field, s, (size_t)(bs - s));
        s = bs + 1;
        if (s >= e) /* a backslash ending the row is dropped, as the server does */
            break;
        unsigned char ch = (unsigned char)*s++;
        if (ch >= '0' && ch <= '7') {
            int v = ch - '0';
            for (int k = 0; k < 2 && s < e && *s >= '0' && *s <= '7'; k++)
                v = v * 8 + (*s++ - '0');
            ch = (unsigned char)(v & 0xff);
        } else if (ch == 'x' && s < e && hex_val((unsigned char)*s) >= 0) {
            int v = hex_val((unsigned char)*s++);
            if (s < e && hex_val((unsigned char)*s) >= 0)
                v = v * 16 + hex_val((unsigned char)*s++);
            ch = (unsigned char)v;
        } else {
            switch (ch) {
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'v': ch = '\v'; break;
            default: break;
            }
        }
        pc_buf_add(&c->field, &ch, 1);
    }
}

static int put_int(ysql_copybin *c, const char *s, size_t n, int kind, size_t col, char **out,
                   char *err, size_t errlen)
{
    static const char *const names[] = {[YCB_INT2] = "smallint", [YCB_INT4] = "integer", [YCB_INT8] = "bigint"};
    const char *p = s, *e = s + n;
    while (p < e && is_space((unsigned char)*p))
        p++;
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    const char *digits = p;
    uint64_t v = 0, lim = kind == YCB_INT2 ? 32767 : kind == YCB_INT4 ? 2147483647 : INT64_MAX;
    lim += (uint64_t)neg;
    int over = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        if (v > UINT64_MAX / 10 - 1) /* v * 10 + 9 would not fit: beyond every range */
            over = 1;
        else
            v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > lim)
        over = 1;
    const char *end_digits = p;
    while (p < e && is_space((unsigned char)*p))
        p++;
    if (end_digits == digits || p != e)
        return cb_err(c, err, errlen, "column %zu: invalid input syntax for type %s: \"%.*s\"", col + 1,
                      names[kind], (int)(n > 40 ? 40 : n), s);
    if (over)
        return cb_err(c, err, errlen, "column %zu: value \"%.*s\" is out of range for type %s", col + 1,
                      (int)(n > 40 ? 40 : n), s, names[kind]);
    int bytes = kind == YCB_INT2 ? 2 : kind == YCB_INT4 ? 4 : 8;
    wr_be(out, (uint64_t)bytes, 4);
    wr_be(out, neg ? (uint64_t)0 - v : v, bytes);
    return 0;
}

/* boolin: a case-insensitive prefix of true/false/yes/no (at least "on"/"of"
 * for on/off), or 1/0, with spaces around. */
static int put_bool(ysql_copybin *c, const char *s, size_t n, size_t col, char **out, char *err,
                    size_t errlen)
{
    const char *p = s, *e = s + n;
    while (p < e && is_space((unsigned char)*p))
        p++;
    while (e > p && is_space((unsigned char)e[-1]))
        e--;
    size_t len = (size_t)(e - p);
    int v = -1;
    if (len) {
        static const struct { const char *word; size_t min; int v; } w[] = {
            {"true", 1, 1}, {"false", 1, 0}, {"yes", 1, 1}, {"no", 1, 0}, {"on", 2, 1}, {"off", 2, 0}};
        for (size_t i = 0; v < 0 && i < sizeof w / sizeof w[0]; i++)
            if (len >= w[i].min && len <= strlen(w[i].word) && strncasecmp(p, w[i].word, len) == 0)
                v = w[i].v;
        if (len == 1 && (*p == '1' || *p == '0'))
            v = *p == '1';
    }
    if (v < 0)
        return cb_err(c, err, errlen, "column %zu: invalid input syntax for type boolean: \"%.*s\"",
                      col + 1, (int)(n > 40 ? 40 : n), s);
    wr_be(out, 1, 4);
    wr_be(out, (uint64_t)v, 1);
    return 0;
}

/* The end of the field starting at p: an unescaped tab, or e. *bs: it holds a
 * backslash (row_bs: the row holds none, so neither does the field). */
static const char *field_end(const char *p, const char *e, int row_bs, int *bs)
{
    *bs = 0;
    if (!row_bs) {
        /* numbers are short: a loop finds their end sooner than a call */
        const char *q = p, *stop = e - p > 16 ? p + 16 : e;
        for (; q < stop; q++)
            if (*q == '\t')
                return q;
        const char *t = q < e ? memchr(q, '\t', (size_t)(e - q)) : NULL;
        return t ? t : e;
    }
    for (;;) {
        const char *t = memchr(p, '\t', (size_t)(e - p));
        const char *b = memchr(p, '\\', (size_t)((t ? t : e) - p));
        if (!b)
            return t ? t : e;
        *bs = 1;
        p = b + 2; /* the escaped byte goes with its backslash */
        if (p >= e)
            return e;
    }
}

static int put_field(ysql_copybin *c, size_t col, const char *s, size_t n, int bs, char **out,
                     char *err, size_t errlen)
{
    if (n == 2 && s[0] == '\\' && s[1] == 'N') {
        wr_be(out, 0xffffffffu, 4);
        return 0;
    }
    if (bs) {
        unescape(c, s, n);
        if (c->field.oom)
            return cb_err(c, err, errlen, "out of memory");
        s = c->field.p ? c->field.p : "";
        n = c->field.len;
    }
    int kind = c->kinds[col];
    if (kind == YCB_BOOL)
        return put_bool(c, s, n, col, out, err, errlen);
    if (kind != YCB_TEXT)
        return put_int(c, s, n, kind, col, out, err, errlen);
    wr_be(out, (uint64_t)n, 4);
    memcpy(*out, s, n);
    *out += n;
    return 0;
}

/* A carriage return in s[0..n) that no backslash takes (an escaped one is data). */
static int raw_cr(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '\r')
            return 1;
    }
    return 0;
}

/* One row's text (without its newline); row_bs: it holds a backslash. */
static int put_row_bs(ysql_copybin *c, const char *s, size_t n, int row_bs, pc_buf *out, char *err,
                      size_t errlen)
{
    if (n > c->max_row)
        return cb_err(c, err, errlen, "%zu bytes, more than its columns' types allow", n);
    if (memchr(s, '\r', n) && (row_bs ? raw_cr(s, n) : 1))
        return cb_err(c, err, errlen, "literal carriage return found in data");
    /* a value's binary is at most its text (de-escaping only shortens), an
     * integer's at most 8 bytes; each has a 4-byte length */
    if (n > (size_t)-1 / 2 || pc_buf_reserve(out, 2 + c->ncols * 12 + n) < 0)
        return cb_err(c, err, errlen, "out of memory");
    char *w = out->p + out->len;
    wr_be(&w, (uint64_t)c->ncols, 2);
    const char *p = s, *e = s + n;
    for (size_t col = 0; col < c->ncols; col++) {
        int bs;
        const char *f = field_end(p, e, row_bs, &bs);
        if (f == e && col + 1 < c->ncols)
            return cb_err(c, err, errlen, "missing data for column %zu", col + 2);
        if (f < e && col + 1 == c->ncols)
            return cb_err(c, err, errlen, "extra data after the last expected column");
        if (put_field(c, col, p, (size_t)(f - p), bs, &w, err, errlen) < 0)
            return -1;
        p = f + 1;
    }
    out->len = (size_t)(w - out->p);
    c->rows++;
    return 0;
}

static int put_row(ysql_copybin *c, const char *s, size_t n, pc_buf *out, char *err, size_t errlen)
{
    return put_row_bs(c, s, n, memchr(s, '\\', n) != NULL, out, err, errlen);
}

/* The row ending at the first unescaped newline of p[0..n): its length, or n
 * when the piece ends first (*esc: the piece ended with an unconsumed backslash,
 * carried in and out; *bs: the row holds a backslash). */
static size_t row_end(const char *p, size_t n, int *esc, int *bs)
{
    size_t i = 0;
    *bs = 0;
    if (*esc && n) {
        *esc = 0;
        i = 1;
    }
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        const char *b = memchr(p + i, '\\', (size_t)((nl ? nl : p + n) - (p + i)));
        if (!b)
            return nl ? (size_t)(nl - p) : n;
        *bs = 1;
        i = (size_t)(b - p) + 2;
        if (i > n)
            *esc = 1;
    }
    return n;
}

static int is_end_marker(const char *s, size_t n)
{
    return n == 2 && s[0] == '\\' && s[1] == '.';
}

int ysql_copybin_feed(ysql_copybin *c, const char *p, size_t n, pc_buf *out, char *err, size_t errlen)
{
    if (!c->header_sent) {
        if (pc_buf_reserve(out, 19) < 0)
            return cb_err(c, err, errlen, "out of memory");
        put_mem(out, "PGCOPY\n\377\r\n\0", 11);
        put_be(out, 0, 4); /* flags */
        put_be(out, 0, 4); /* header extension */
        c->header_sent = 1;
    }
    while (n && !c->done) {
        int bs;
        size_t len = row_end(p, n, &c->esc, &bs);
        if (len == n) { /* no complete row: keep it for the next piece */
            if (c->carry.len + n > c->max_row + 1)
                return cb_err(c, err, errlen, "more than %zu bytes, more than its columns' types allow",
                              c->max_row);
            pc_buf_add(&c->carry, p, n);
            break;
        }
        const char *row = p;
        size_t rlen = len;
        if (c->carry.len) {
            pc_buf_add(&c->carry, p, len);
            row = c->carry.p;
            rlen = c->carry.len;
        }
        if (c->carry.oom)
            return cb_err(c, err, errlen, "out of memory");
        if (is_end_marker(row, rlen))
            c->done = 1;
        else if ((row == p ? put_row_bs(c, row, rlen, bs, out, err, errlen)
                           : put_row(c, row, rlen, out, err, errlen)) < 0)
            return -1;
        c->carry.len = 0;
        c->esc = 0;
        p += len + 1;
        n -= len + 1;
    }
    if (out->oom)
        return cb_err(c, err, errlen, "out of memory");
    out->p[out->len] = '\0';
    return 0;
}

int ysql_copybin_end(ysql_copybin *c, pc_buf *out, char *err, size_t errlen)
{
    if (ysql_copybin_feed(c, "", 0, out, err, errlen) < 0)
        return -1;
    /* a last row without its newline counts, as it does for the server */
    if (!c->done && c->carry.len && !is_end_marker(c->carry.p, c->carry.len) &&
        put_row(c, c->carry.p, c->carry.len, out, err, errlen) < 0)
        return -1;
    c->carry.len = 0;
    c->done = 1;
    if (pc_buf_reserve(out, 2) < 0)
        return cb_err(c, err, errlen, "out of memory");
    put_be(out, 0xffff, 2);
    out->p[out->len] = '\0';
    return out->oom ? cb_err(c, err, errlen, "out of memory") : 0;
}
