/* cqlprobe: arca's CQL wire format (plugins/ycql/cqlwire.c) against a real server, with
 * the least code around it: one blocking connection, STARTUP, PasswordAuthenticator's
 * SASL PLAIN, then one QUERY paged PAGE_SIZE rows at a time.
 *   cqlprobe HOST PORT USER PASSWORD PAGE_SIZE QUERY
 * Prints "col NAME TYPE" per result column (the type as cql_type_format writes it),
 * then one line per row: the cells as hex, "-" for null, "" for empty, joined by '|',
 * then "pages N rows M". A server ERROR: "error 0xCODE (name): message", exit 1.
 * Built by tests/e2e/cql_peers.sh. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../plugins/ycql/cqlwire.h"

static int fd = -1;

static void die(const char *what)
{
    fprintf(stderr, "cqlprobe: %s\n", what);
    exit(2);
}

static void send_all(const cql_buf *b)
{
    for (size_t off = 0; off < b->len;) {
        ssize_t n = write(fd, b->p + off, b->len - off);
        if (n <= 0)
            die("write failed");
        off += (size_t)n;
    }
}

static void read_all(unsigned char *p, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = read(fd, p + off, len - off);
        if (n <= 0)
            die("the server closed the connection");
        off += (size_t)n;
    }
}

/* one response: its header in *h, its body (malloc'd) with the reader past warnings */
static unsigned char *response(cql_header *h, cql_rd *r)
{
    unsigned char head[CQL_HEADER_LEN];
    const char *why;
    read_all(head, sizeof head);
    if (cql_header_parse(head, h, &why) || !h->response)
        die(why ? why : "not a response");
    unsigned char *body = malloc(h->length ? h->length : 1);
    if (!body)
        die("out of memory");
    read_all(body, h->length);
    cql_rd_init(r, body, h->length);
    if (h->flags & CQL_FLAG_TRACING)
        cql_get_raw(r, 16); /* the tracing session's uuid */
    if (h->flags & CQL_FLAG_WARNING) {
        uint16_t n = cql_get_u16(r);
        size_t len;
        for (uint16_t i = 0; i < n; i++)
            cql_get_string(r, &len);
    }
    if (h->flags & CQL_FLAG_CUSTOM_PAYLOAD) {
        uint16_t n = cql_get_u16(r);
        size_t len;
        int32_t bl;
        for (uint16_t i = 0; i < n; i++) {
            cql_get_string(r, &len);
            cql_get_bytes(r, &bl);
        }
    }
    if (r->err)
        die(r->err);
    if (h->opcode == CQL_OP_ERROR) {
        int32_t code;
        char msg[2400];
        cql_get_error(r, &code, msg, sizeof msg);
        printf("error 0x%04x (%s): %s\n", (unsigned)code, cql_error_name(code), msg);
        exit(1);
    }
    return body;
}

int main(int argc, char **argv)
{
    if (argc != 7)
        die("usage: cqlprobe HOST PORT USER PASSWORD PAGE_SIZE QUERY");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) || !ai)
        die("cannot resolve the host");
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen))
        die("cannot connect");
    freeaddrinfo(ai);

    cql_buf b = {0};
    cql_header h;
    cql_rd r;
    if (cql_req_startup(&b, 4, 0))
        die("cannot encode STARTUP");
    send_all(&b);
    cql_buf_free(&b);
    unsigned char *body = response(&h, &r);
    if (h.opcode == CQL_OP_AUTHENTICATE) {
        free(body);
        if (cql_req_auth_plain(&b, 4, 1, argv[3], argv[4]))
            die("cannot encode AUTH_RESPONSE");
        send_all(&b);
        cql_buf_wipe(&b);
        body = response(&h, &r);
        if (h.opcode != CQL_OP_AUTH_SUCCESS)
            die("no AUTH_SUCCESS");
    } else if (h.opcode != CQL_OP_READY) {
        die("neither READY nor AUTHENTICATE");
    }
    free(body);

    unsigned char *state = NULL;
    int32_t state_len = -1;
    long pages = 0, rows = 0;
    do {
        cql_params qp = {.consistency = CQL_QUORUM, .page_size = atoi(argv[5]), .paging = state,
                         .paging_len = state_len};
        if (cql_req_query(&b, 4, 2, argv[6], &qp))
            die("cannot encode QUERY");
        send_all(&b);
        cql_buf_free(&b);
        body = response(&h, &r);
        if (h.opcode != CQL_OP_RESULT || cql_get_i32(&r) != CQL_RESULT_ROWS)
            die("not a Rows result");
        cql_meta m;
        if (cql_get_meta(&r, &m))
            die(r.err);
        if (!pages++) {
            char t[1024];
            for (int32_t i = 0; i < m.ncols; i++) {
                cql_type_format(m.cols[i].type, t, sizeof t);
                printf("col %s %s\n", m.cols[i].name, t);
            }
        }
        int32_t n = cql_get_i32(&r);
        for (int32_t k = 0; k < n && !r.err; k++, rows++) {
            for (int32_t i = 0; i < m.ncols && !r.err; i++) {
                int32_t len;
                const unsigned char *c = cql_get_bytes(&r, &len);
                printf("%s", i ? "|" : "");
                if (len < 0)
                    printf("-");
                for (int32_t j = 0; c && j < len; j++)
                    printf("%02x", c[j]);
            }
            printf("\n");
        }
        if (r.err || r.off != r.len)
            die(r.err ? r.err : "bytes left after the rows");
        free(state);
        state = NULL;
        state_len = m.paging_len;
        if (state_len >= 0) {
            if (!(state = malloc(state_len ? (size_t)state_len : 1)))
                die("out of memory");
            memcpy(state, m.paging, (size_t)state_len);
        }
        cql_meta_free(&m);
        free(body);
    } while (state_len >= 0);
    printf("pages %ld rows %ld\n", pages, rows);
    close(fd);
    return 0;
}
