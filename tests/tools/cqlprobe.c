/* cqlprobe: arca's CQL client code (plugins/ycql/cqlwire.c, cqlconn.c) against a real
 * server, with the least code around it.
 *   cqlprobe [OPTIONS] HOST PORT USER PASSWORD query PAGE_SIZE QUERY
 *       prints "col NAME TYPE" per result column (the type as cql_type_format writes it),
 *       then one line per row: the cells as hex, "-" for null, "" for empty, joined by '|',
 *       then "pages N rows M"
 *   cqlprobe [OPTIONS] HOST PORT USER PASSWORD pipeline N QUERY
 *       sends QUERY N times on N streams before reading any answer, then reads them in
 *       whatever order they come: "pipelined N, at most K in flight, answers out of order: yes|no"
 *   cqlprobe [OPTIONS] HOST PORT USER PASSWORD version
 *       "protocol vN"
 *   cqlprobe [OPTIONS] HOST PORT USER PASSWORD ddl KEYSPACE [AS_KEYSPACE]
 *       the DDL plugins/ycql/schema.c writes for KEYSPACE (renamed to AS_KEYSPACE)
 *   cqlprobe [OPTIONS] HOST PORT USER PASSWORD export KEYSPACE N PAGE_SIZE DIR
 *       every table of KEYSPACE in N token ranges, each range into DIR/TABLE.I.rows in the
 *       archive's row format (plugins/ycql/export.c, rows.c; write time and TTL kept):
 *       "TABLE ranges N rows M" per table
 * OPTIONS: --ssl, --ca FILE, --no-verify, --timeout MS (connect and request).
 * A failure: its message on stderr, exit 1 (a server ERROR also on stdout as
 * "error 0xCODE (name): message"). Built by tests/e2e/cql_peers.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/ycql/cqlconn.h"
#include "../../plugins/ycql/export.h"
#include "../../plugins/ycql/schema.h"

static void fail(const char *what)
{
    fprintf(stderr, "cqlprobe: %s\n", what);
    exit(1);
}

static cql_resp *call(cql_conn *c, cql_buf *b, int s)
{
    char err[2000];
    cql_resp *r;
    if (cql_conn_call(c, b, s, &r, err, sizeof err))
        fail(err);
    cql_buf_free(b);
    if (r->h.opcode == CQL_OP_ERROR) {
        cql_rd rd = r->rd;
        int32_t code;
        char msg[1500];
        cql_get_error(&rd, &code, msg, sizeof msg);
        printf("error 0x%04x (%s): %s\n", (unsigned)code, cql_error_name(code), msg);
        cql_resp_error(c, r, err, sizeof err);
        fail(err);
    }
    return r;
}

static int query(cql_conn *c, int page_size, const char *q)
{
    unsigned char *state = NULL;
    int32_t state_len = -1;
    long pages = 0, rows = 0;
    do {
        cql_buf b = {0};
        int s = cql_conn_stream(c);
        cql_params qp = {.consistency = CQL_QUORUM, .page_size = page_size, .paging = state, .paging_len = state_len};
        if (cql_req_query(&b, cql_conn_version(c), (int16_t)s, q, &qp))
            fail("cannot encode QUERY");
        cql_resp *r = call(c, &b, s);
        if (r->h.opcode != CQL_OP_RESULT || cql_get_i32(&r->rd) != CQL_RESULT_ROWS)
            fail("not a Rows result");
        cql_meta m;
        if (cql_get_meta(&r->rd, &m))
            fail(r->rd.err);
        if (!pages++) {
            char t[1024];
            for (int32_t i = 0; i < m.ncols; i++) {
                cql_type_format(m.cols[i].type, t, sizeof t);
                printf("col %s %s\n", m.cols[i].name, t);
            }
        }
        int32_t n = cql_get_i32(&r->rd);
        for (int32_t k = 0; k < n && !r->rd.err; k++, rows++) {
            for (int32_t i = 0; i < m.ncols && !r->rd.err; i++) {
                int32_t len;
                const unsigned char *cell = cql_get_bytes(&r->rd, &len);
                printf("%s", i ? "|" : "");
                if (len < 0)
                    printf("-");
                for (int32_t j = 0; cell && j < len; j++)
                    printf("%02x", cell[j]);
            }
            printf("\n");
        }
        if (r->rd.err || r->rd.off != r->rd.len)
            fail(r->rd.err ? r->rd.err : "bytes left after the rows");
        free(state);
        state = NULL;
        state_len = m.paging_len;
        if (state_len >= 0) {
            if (!(state = malloc(state_len ? (size_t)state_len : 1)))
                fail("out of memory");
            memcpy(state, m.paging, (size_t)state_len);
        }
        cql_meta_free(&m);
        cql_resp_free(r);
    } while (state_len >= 0);
    printf("pages %ld rows %ld\n", pages, rows);
    return 0;
}

static int to_file(void *ud, const void *p, size_t n)
{
    return fwrite(p, 1, n, ud) == n ? 0 : -1;
}

static int export_keyspace(cql_conn *c, const char *ks, int n, int page_size, const char *dir)
{
    ycql_schema s;
    char err[2000];
    if (ycql_schema_read(c, ks, &s, err, sizeof err))
        fail(err);
    ycql_range *ranges = calloc((size_t)n, sizeof *ranges);
    if (!ranges || ycql_split_tokens(n, ranges))
        fail("bad number of ranges");
    ycql_export_opts o = {.consistency = CQL_QUORUM, .page_size = page_size, .writetime_ttl = 1};
    for (size_t t = 0; t < s.ntables; t++) {
        uint16_t ncols;
        yr_col *cols = ycql_row_columns(&s, &s.tables[t], 1, &ncols);
        if (!cols)
            fail("out of memory");
        int64_t total = 0;
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.%d.rows", dir, s.tables[t].name, i);
            FILE *f = fopen(path, "wb");
            if (!f)
                fail(path);
            int64_t rows;
            if (ycql_export_range(c, ks, &s.tables[t], cols, ncols, &ranges[i], &o, to_file, f, &rows, err,
                                  sizeof err))
                fail(err);
            if (fclose(f))
                fail(path);
            total += rows;
        }
        printf("%s ranges %d rows %lld\n", s.tables[t].name, n, (long long)total);
        ycql_row_columns_free(cols, ncols);
    }
    free(ranges);
    ycql_schema_free(&s);
    return 0;
}

static int pipeline(cql_conn *c, int n, const char *q)
{
    cql_buf b = {0};
    int *streams = calloc((size_t)n, sizeof *streams), most = 0, out_of_order = 0;
    char err[2000];
    if (!streams)
        fail("out of memory");
    cql_params qp = {.consistency = CQL_QUORUM};
    for (int i = 0; i < n; i++) {
        streams[i] = cql_conn_stream(c);
        if (streams[i] < 0 || cql_req_query(&b, cql_conn_version(c), (int16_t)streams[i], q, &qp))
            fail("no stream id or cannot encode");
    }
    if (cql_conn_send(c, &b, err, sizeof err))
        fail(err);
    cql_buf_free(&b);
    most = cql_conn_inflight(c);
    int *seen = calloc(32768, sizeof *seen);
    if (!seen)
        fail("out of memory");
    for (int i = 0; i < n; i++) {
        cql_resp *r;
        if (cql_conn_recv(c, -1, &r, err, sizeof err))
            fail(err);
        if (r->h.opcode != CQL_OP_RESULT)
            fail("an answer that is not a RESULT");
        if (seen[r->h.stream]++)
            fail("two answers on one stream");
        if (r->h.stream != streams[i])
            out_of_order = 1;
        cql_resp_free(r);
    }
    for (int i = 0; i < n; i++)
        if (seen[streams[i]] != 1)
            fail("a stream without its answer");
    if (cql_conn_inflight(c))
        fail("stream ids still in use after every answer");
    printf("pipelined %d, at most %d in flight, answers out of order: %s\n", n, most, out_of_order ? "yes" : "no");
    free(seen);
    free(streams);
    return 0;
}

int main(int argc, char **argv)
{
    cql_conn_opts o = {.verify_tls = 1, .connect_timeout_ms = 5000, .request_timeout_ms = 12000};
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--ssl"))
            o.ssl = 1;
        else if (!strcmp(argv[i], "--no-verify"))
            o.verify_tls = 0;
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
            o.ca_file = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            o.connect_timeout_ms = o.request_timeout_ms = atoi(argv[++i]);
        else
            fail("unknown option");
    }
    if (argc - i < 5)
        fail("usage: cqlprobe [--ssl] [--ca FILE] [--no-verify] [--timeout MS] HOST PORT USER PASSWORD "
             "query PAGE_SIZE QUERY | pipeline N QUERY | version | ddl KEYSPACE [AS] | export KEYSPACE N PAGE DIR");
    o.host = argv[i];
    o.port = argv[i + 1];
    o.user = argv[i + 2];
    o.password = argv[i + 3];
    const char *cmd = argv[i + 4];
    cql_conn *c;
    char err[2000];
    if (cql_conn_open(&o, &c, err, sizeof err))
        fail(err);
    int rc;
    if (!strcmp(cmd, "version") && argc - i == 5) {
        printf("protocol v%d\n", cql_conn_version(c));
        rc = 0;
    } else if (!strcmp(cmd, "query") && argc - i == 7) {
        rc = query(c, atoi(argv[i + 5]), argv[i + 6]);
    } else if (!strcmp(cmd, "ddl") && (argc - i == 6 || argc - i == 7)) {
        ycql_schema s;
        if (ycql_schema_read(c, argv[i + 5], &s, err, sizeof err))
            fail(err);
        char *ddl = ycql_schema_ddl(&s, argc - i == 7 ? argv[i + 6] : NULL, 1);
        if (!ddl)
            fail("out of memory");
        fputs(ddl, stdout);
        free(ddl);
        ycql_schema_free(&s);
        rc = 0;
    } else if (!strcmp(cmd, "export") && argc - i == 9) {
        rc = export_keyspace(c, argv[i + 5], atoi(argv[i + 6]), atoi(argv[i + 7]), argv[i + 8]);
    } else if (!strcmp(cmd, "pipeline") && argc - i == 7) {
        rc = pipeline(c, atoi(argv[i + 5]), argv[i + 6]);
    } else {
        fail("unknown command or wrong arguments");
    }
    cql_conn_close(c);
    return rc;
}
