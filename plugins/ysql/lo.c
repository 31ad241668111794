/* ysql plugin: large objects. pg_dump's pre-data creates them (lo_create with
 * their OIDs, owners, comments; their grants come with the other ACLs); their
 * contents are data, carried in one archive object of records
 *     <oid> <size>\n<size bytes>
 * read in the backup's snapshot and written back into the created objects on
 * restore. Small objects come 256 at a time (lo_get of their first 64 KiB);
 * bigger ones are streamed through lo_read in 1 MiB reads, so memory stays
 * bounded whatever their size. Every record is hashed (one digest "row" per
 * object) like the rows of a table. */
#include "ysql.h"

#include <inttypes.h>
#include <libpq/libpq-fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LO_SMALL 65536         /* read with lo_get in batches */
#define LO_BATCH 256
#define LO_READ ((int)1 << 20) /* lo_read size for bigger ones */

typedef struct lo_out {
    PGconn *c;
    ysql_err *e;
    const char *where;
    ysql_hasher *h;
    ysql_write_fn write;
    void *ud;
} lo_out;

static int lo_emit(lo_out *o, const void *p, size_t n)
{
    if (ysql_digest_update(o->h, p, n) < 0)
        return ysql_fail(o->e, ARCA_EFAIL, "cannot hash a large object (libcrypto)");
    return o->write && n ? o->write(o->ud, p, n) : ARCA_OK;
}

static int lo_header(lo_out *o, const char *oid, int64_t size)
{
    char head[64];
    int n = snprintf(head, sizeof head, "%s %" PRId64 "\n", oid, size);
    if (ysql_digest_begin(o->h) < 0)
        return ysql_fail(o->e, ARCA_EFAIL, "cannot hash a large object (libcrypto)");
    return lo_emit(o, head, (size_t)n);
}

static int lo_conn_failed(lo_out *o, const char *what, const char *oid)
{
    char *m = ysql_pg_message(o->c, NULL);
    int rc = ysql_fail(o->e, ARCA_EFAIL, "%s: large object %s: %s: %s", o->where, oid, what,
                       m ? m : "out of memory");
    free(m);
    return rc;
}

/* An object bigger than LO_SMALL: its size first (the record's header), then
 * its bytes in LO_READ pieces. */
static int lo_stream(lo_out *o, const char *oidtext, ysql_digest *dg, int64_t *bytes)
{
    Oid oid = (Oid)strtoul(oidtext, NULL, 10);
    int fd = lo_open(o->c, oid, INV_READ);
    if (fd < 0)
        return lo_conn_failed(o, "cannot open it", oidtext);
    int64_t size = (int64_t)lo_lseek64(o->c, fd, 0, SEEK_END);
    if (size < 0 || lo_lseek64(o->c, fd, 0, SEEK_SET) < 0) {
        lo_close(o->c, fd);
        return lo_conn_failed(o, "cannot measure it", oidtext);
    }
    int rc = lo_header(o, oidtext, size);
    char *buf = rc == ARCA_OK ? malloc((size_t)LO_READ) : NULL;
    if (rc == ARCA_OK && !buf)
        rc = ysql_fail(o->e, ARCA_ENOMEM, "out of memory");
    for (int64_t done = 0; rc == ARCA_OK && done < size;) {
        int want = size - done < LO_READ ? (int)(size - done) : LO_READ;
        int got = lo_read(o->c, fd, buf, (size_t)want);
        if (got <= 0) {
            rc = got < 0 ? lo_conn_failed(o, "cannot read it", oidtext)
                         : ysql_fail(o->e, ARCA_EFAIL, "%s: large object %s ended early", o->where, oidtext);
            break;
        }
        rc = lo_emit(o, buf, (size_t)got);
        done += got;
    }
    free(buf);
    lo_close(o->c, fd);
    if (rc == ARCA_OK && ysql_digest_end(o->h, dg) < 0)
        rc = ysql_fail(o->e, ARCA_EFAIL, "cannot hash a large object (libcrypto)");
    *bytes += size;
    return rc;
}

int ysql_lo_export(PGconn *c, ysql_err *e, const char *where, ysql_hasher *h, ysql_digest *dg,
                   int64_t *bytes, ysql_write_fn write, void *ud)
{
    lo_out o = {c, e, where, h, write, ud};
    char last[16] = "0", limit[16], small[16];
    snprintf(limit, sizeof limit, "%d", LO_BATCH);
    snprintf(small, sizeof small, "%d", LO_SMALL + 1);
    *bytes = 0;
    int rc = ARCA_OK;
    for (;;) {
        const char *p[3] = {last, small, limit};
        PGresult *r = PQexecParams(c,
            "SELECT m.oid, pg_catalog.lo_get(m.oid, 0, $2::pg_catalog.int4)"
            " FROM pg_catalog.pg_largeobject_metadata m WHERE m.oid > $1::pg_catalog.oid"
            " ORDER BY m.oid LIMIT $3::pg_catalog.int8", 3, NULL, p, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char *m = ysql_pg_message(c, r);
            rc = ysql_fail(e, ARCA_EFAIL, "%s: cannot read the large objects: %s", where, m ? m : "?");
            free(m);
            PQclear(r);
            break;
        }
        int n = PQntuples(r);
        for (int i = 0; rc == ARCA_OK && i < n; i++) {
            /* binary results: the OID in network order */
            const unsigned char *ob = (const unsigned char *)PQgetvalue(r, i, 0);
            uint32_t oid = (uint32_t)ob[0] << 24 | (uint32_t)ob[1] << 16 | (uint32_t)ob[2] << 8 | ob[3];
            char oidtext[16];
            snprintf(oidtext, sizeof oidtext, "%" PRIu32, oid);
            snprintf(last, sizeof last, "%s", oidtext);
            int len = PQgetlength(r, i, 1);
            if (len > LO_SMALL) {
                rc = lo_stream(&o, oidtext, dg, bytes);
                continue;
            }
            rc = lo_header(&o, oidtext, len);
            if (rc == ARCA_OK)
                rc = lo_emit(&o, PQgetvalue(r, i, 1), (size_t)len);
            if (rc == ARCA_OK && ysql_digest_end(h, dg) < 0)
                rc = ysql_fail(e, ARCA_EFAIL, "cannot hash a large object (libcrypto)");
            *bytes += len;
        }
        PQclear(r);
        if (rc != ARCA_OK || n < LO_BATCH)
            break;
    }
    return rc;
}

/* ---- restore --------------------------------------------------------------------------- */

struct ysql_lo_loader {
    PGconn *c;
    ysql_err *e;
    const char *where;
    char head[64];     /* the header line being read */
    size_t headlen;
    int fd;            /* the object being written, -1 between records */
    char oid[24];
    int64_t left;      /* its bytes still to come */
    int64_t count;
};

ysql_lo_loader *ysql_lo_loader_new(PGconn *c, ysql_err *e, const char *where)
{
    ysql_lo_loader *l = calloc(1, sizeof *l);
    if (!l) {
        ysql_fail(e, ARCA_ENOMEM, "out of memory");
        return NULL;
    }
    l->c = c;
    l->e = e;
    l->where = where;
    l->fd = -1;
    return l;
}

static int ll_failed(ysql_lo_loader *l, const char *what)
{
    char *m = ysql_pg_message(l->c, NULL);
    int rc = ysql_fail(l->e, ARCA_EFAIL, "%s: large object %s: %s: %s", l->where, l->oid, what,
                       m ? m : "out of memory");
    free(m);
    return rc;
}

static int ll_close(ysql_lo_loader *l)
{
    int fd = l->fd;
    l->fd = -1;
    l->count++;
    return lo_close(l->c, fd) < 0 ? ll_failed(l, "cannot close it") : ARCA_OK;
}

/* A complete header line: "<oid> <size>". */
static int ll_begin(ysql_lo_loader *l)
{
    l->head[l->headlen - 1] = '\0';
    char *sp = strchr(l->head, ' '), *end = NULL;
    unsigned long oid = sp ? strtoul(l->head, &end, 10) : 0;
    long long size = sp ? strtoll(sp + 1, &end, 10) : -1;
    if (!sp || sp == l->head || strspn(l->head, "0123456789") != (size_t)(sp - l->head) || !end ||
        *end || size < 0 || !oid || oid > 0xFFFFFFFFUL)
        return ysql_fail(l->e, ARCA_EINTEGRITY, "large-objects/part-0000: malformed record header "
                         "after %" PRId64 " objects", l->count);
    snprintf(l->oid, sizeof l->oid, "%lu", oid);
    l->headlen = 0;
    l->left = size;
    l->fd = lo_open(l->c, (Oid)oid, INV_WRITE);
    if (l->fd < 0)
        return ll_failed(l, "cannot open it for writing (the pre-data schema creates it)");
    /* objects restored over existing ones (none in a new database) lose what they held */
    if (lo_truncate64(l->c, l->fd, 0) < 0)
        return ll_failed(l, "cannot empty it");
    return size == 0 ? ll_close(l) : ARCA_OK;
}

int ysql_lo_loader_feed(ysql_lo_loader *l, const void *data, size_t len)
{
    const char *p = data, *end = p + len;
    while (p < end) {
        if (l->fd < 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            if (l->headlen + take > sizeof l->head)
                return ysql_fail(l->e, ARCA_EINTEGRITY, "large-objects/part-0000: malformed record "
                                 "header after %" PRId64 " objects", l->count);
            memcpy(l->head + l->headlen, p, take);
            l->headlen += take;
            p += take;
            if (nl && ll_begin(l) < 0)
                return ysql_failed(l->e);
            continue;
        }
        size_t take = (int64_t)(end - p) < l->left ? (size_t)(end - p) : (size_t)l->left;
        for (size_t off = 0; off < take;) {
            size_t n = take - off > (size_t)LO_READ ? (size_t)LO_READ : take - off;
            if (lo_write(l->c, l->fd, p + off, n) != (int)n)
                return ll_failed(l, "cannot write it");
            off += n;
        }
        p += take;
        l->left -= (int64_t)take;
        if (!l->left && ll_close(l) < 0)
            return ysql_failed(l->e);
    }
    return ARCA_OK;
}

int ysql_lo_loader_end(ysql_lo_loader *l, int64_t *count)
{
    *count = l->count;
    if (l->fd >= 0 || l->headlen)
        return ysql_fail(l->e, ARCA_EINTEGRITY, "large-objects/part-0000 ends inside a record "
                         "(large object %s)", l->fd >= 0 ? l->oid : "?");
    return ARCA_OK;
}

void ysql_lo_loader_free(ysql_lo_loader *l)
{
    if (l && l->fd >= 0)
        lo_close(l->c, l->fd);
    free(l);
}
