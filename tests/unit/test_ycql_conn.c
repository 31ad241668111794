/* ycql plugin, one CQL connection (plugins/ycql/cqlconn.c) against a scripted loopback
 * server (a thread of this test that answers each request as the test says): the v4 to
 * v3 fallback on a new connection, answers out of order and events between them,
 * warnings kept, credentials asked for and refused, and the frames a connection must
 * refuse (an answer on a stream no request used, a compressed body, a connection closed
 * mid-frame). The real server (Cassandra 5.0) is in tests/e2e/cql_peers.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../plugins/ycql/cqlconn.c"
#include "../../plugins/ycql/cqlwire.c"

/* ---- the scripted server ---- */

typedef struct req {
    cql_header h;
    unsigned char body[512];
} req;

typedef struct server {
    int lfd, port;
    pthread_t t;
    void (*script)(struct server *s);
    int fd;               /* the accepted connection */
    uint8_t versions[4];  /* of each connection's first request */
    int nconn;
} server;

static int read_n(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int get_req(server *s, req *r)
{
    unsigned char h[CQL_HEADER_LEN];
    const char *why;
    if (read_n(s->fd, h, sizeof h) || cql_header_parse(h, &r->h, &why) || r->h.length > sizeof r->body)
        return -1;
    return read_n(s->fd, r->body, r->h.length);
}

/* a response frame: version, flags, stream, opcode, then the body bytes in b */
static void answer(server *s, uint8_t version, uint8_t flags, int16_t stream, uint8_t op, const cql_buf *body)
{
    cql_buf f = {0};
    cql_frame_begin(&f, (uint8_t)(0x80 | version), stream, op);
    f.p[1] = flags;
    if (body && body->len)
        cql_put_raw(&f, body->p, body->len);
    cql_frame_end(&f);
    assert_int_equal(write(s->fd, f.p, f.len), (ssize_t)f.len);
    cql_buf_free(&f);
}

static void accept_one(server *s)
{
    s->fd = accept(s->lfd, NULL, NULL);
    assert_true(s->fd >= 0);
}

static void *serve(void *arg)
{
    server *s = arg;
    s->script(s);
    return NULL;
}

static void start(server *s, void (*script)(server *))
{
    memset(s, 0, sizeof *s);
    s->script = script;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->t, NULL, serve, s);
}

static void finish(server *s)
{
    pthread_join(s->t, NULL);
    close(s->lfd);
}

static int open_to(server *s, const char *user, const char *password, cql_conn **c, char *err, size_t errlen)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    cql_conn_opts o = {.host = "127.0.0.1", .port = port, .user = user, .password = password,
                       .connect_timeout_ms = 3000, .request_timeout_ms = 3000};
    return cql_conn_open(&o, c, err, errlen);
}

/* ---- scripts ---- */

static void v4_refused_then_v3(server *s)
{
    req r;
    cql_buf b = {0};
    accept_one(s);
    assert_int_equal(get_req(s, &r), 0);
    s->versions[s->nconn++] = r.h.version;
    cql_put_i32(&b, 0x000A);
    cql_put_string(&b, "Invalid or unsupported protocol version (4); supported versions are (3/v3)");
    answer(s, 3, 0, r.h.stream, CQL_OP_ERROR, &b);
    cql_buf_free(&b);
    close(s->fd);
    accept_one(s);
    assert_int_equal(get_req(s, &r), 0);
    s->versions[s->nconn++] = r.h.version;
    answer(s, 3, 0, r.h.stream, CQL_OP_READY, NULL);
    assert_int_equal(get_req(s, &r), 0); /* a QUERY at v3 */
    s->versions[s->nconn++] = r.h.version;
    cql_put_i32(&b, CQL_RESULT_VOID);
    answer(s, 3, 0, r.h.stream, CQL_OP_RESULT, &b);
    cql_buf_free(&b);
    close(s->fd);
}

static void a_v4_server_that_refuses_v4_falls_back_to_v3_on_a_new_connection(void **state)
{
    (void)state;
    server s;
    cql_conn *c;
    char err[500];
    start(&s, v4_refused_then_v3);
    assert_int_equal(open_to(&s, NULL, NULL, &c, err, sizeof err), 0);
    assert_int_equal(cql_conn_version(c), 3);
    cql_buf b = {0};
    cql_params qp = {.consistency = CQL_QUORUM, .timestamp = 5};
    int st = cql_conn_stream(c);
    assert_int_equal(cql_req_query(&b, cql_conn_version(c), (int16_t)st, "INSERT", &qp), 0);
    cql_resp *r;
    assert_int_equal(cql_conn_call(c, &b, st, &r, err, sizeof err), 0);
    assert_int_equal(r->h.opcode, CQL_OP_RESULT);
    cql_resp_free(r);
    cql_buf_free(&b);
    cql_conn_close(c);
    finish(&s);
    assert_int_equal(s.nconn, 3);
    assert_int_equal(s.versions[0], 4);
    assert_int_equal(s.versions[1], 3);
    assert_int_equal(s.versions[2], 3);
}

static void three_answers_reversed_with_an_event_and_a_warning(server *s)
{
    req r[3];
    cql_buf b = {0}, ev = {0};
    accept_one(s);
    assert_int_equal(get_req(s, &r[0]), 0);
    answer(s, 4, 0, r[0].h.stream, CQL_OP_READY, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(get_req(s, &r[i]), 0);
    cql_put_string(&ev, "TOPOLOGY_CHANGE");
    answer(s, 4, 0, -1, CQL_OP_EVENT, &ev);
    for (int i = 2; i >= 0; i--) {
        cql_buf_free(&b);
        if (i == 1) { /* a warning list before the body */
            cql_put_u16(&b, 2);
            cql_put_string(&b, "Aggregation query used without partition key");
            cql_put_string(&b, "second");
        }
        cql_put_i32(&b, CQL_RESULT_SET_KEYSPACE);
        cql_put_string(&b, i == 0 ? "k0" : i == 1 ? "k1" : "k2");
        answer(s, 4, i == 1 ? CQL_FLAG_WARNING : 0, r[i].h.stream, CQL_OP_RESULT, &b);
    }
    cql_buf_free(&b);
    cql_buf_free(&ev);
    assert_true(read(s->fd, r[0].body, 1) <= 0); /* the client closes */
    close(s->fd);
}

static void answers_come_in_any_order_and_each_goes_to_its_request(void **state)
{
    (void)state;
    server s;
    cql_conn *c;
    char err[500];
    start(&s, three_answers_reversed_with_an_event_and_a_warning);
    assert_int_equal(open_to(&s, NULL, NULL, &c, err, sizeof err), 0);
    cql_buf b = {0};
    int st[3];
    cql_params qp = {.consistency = CQL_ONE};
    for (int i = 0; i < 3; i++) {
        st[i] = cql_conn_stream(c);
        assert_int_equal(cql_req_query(&b, 4, (int16_t)st[i], "USE k", &qp), 0);
    }
    assert_int_equal(cql_conn_send(c, &b, err, sizeof err), 0);
    cql_buf_free(&b);
    assert_int_equal(cql_conn_inflight(c), 3);
    cql_resp *r;
    assert_int_equal(cql_conn_recv(c, st[1], &r, err, sizeof err), 0); /* the second, read past the third */
    assert_int_equal(r->h.stream, st[1]);
    assert_string_equal(r->warnings, "Aggregation query used without partition key; second");
    assert_int_equal(cql_get_i32(&r->rd), CQL_RESULT_SET_KEYSPACE);
    size_t n;
    const char *ks = cql_get_string(&r->rd, &n);
    assert_memory_equal(ks, "k1", 2);
    cql_resp_free(r);
    assert_int_equal(cql_conn_recv(c, -1, &r, err, sizeof err), 0); /* kept while the second was awaited */
    assert_int_equal(r->h.stream, st[2]);
    assert_null(r->warnings);
    cql_resp_free(r);
    assert_int_equal(cql_conn_recv(c, st[0], &r, err, sizeof err), 0);
    cql_resp_free(r);
    assert_int_equal(cql_conn_inflight(c), 0);
    cql_conn_close(c);
    finish(&s);
}

static int bad_kind;

static void ready_then_a_bad_frame(server *s)
{
    req r;
    cql_buf b = {0};
    accept_one(s);
    assert_int_equal(get_req(s, &r), 0);
    answer(s, 4, 0, r.h.stream, CQL_OP_READY, NULL);
    assert_int_equal(get_req(s, &r), 0);
    cql_put_i32(&b, CQL_RESULT_VOID);
    if (bad_kind == 0) {
        answer(s, 4, 0, 999, CQL_OP_RESULT, &b);
    } else if (bad_kind == 1) {
        answer(s, 4, CQL_FLAG_COMPRESSION, r.h.stream, CQL_OP_RESULT, &b);
    } else { /* a header that promises 100 bytes, then the end */
        unsigned char h[CQL_HEADER_LEN] = {0x84, 0, (unsigned char)(r.h.stream >> 8), (unsigned char)r.h.stream,
                                           CQL_OP_RESULT, 0, 0, 0, 100};
        assert_int_equal(write(s->fd, h, sizeof h), (ssize_t)sizeof h);
        assert_int_equal(write(s->fd, "abc", 3), 3);
    }
    cql_buf_free(&b);
    close(s->fd);
}

static void frames_a_connection_must_refuse_fail_it_with_the_reason(void **state)
{
    (void)state;
    const char *want[] = {"a response on stream 999, which no request used", "a compressed frame",
                          "the server closed the connection"};
    for (bad_kind = 0; bad_kind < 3; bad_kind++) {
        server s;
        cql_conn *c;
        char err[500];
        start(&s, ready_then_a_bad_frame);
        assert_int_equal(open_to(&s, NULL, NULL, &c, err, sizeof err), 0);
        cql_buf b = {0};
        cql_params qp = {.consistency = CQL_ONE};
        int st = cql_conn_stream(c);
        cql_req_query(&b, 4, (int16_t)st, "SELECT", &qp);
        cql_resp *r;
        assert_int_equal(cql_conn_call(c, &b, st, &r, err, sizeof err), -1);
        if (!strstr(err, want[bad_kind]))
            fail_msg("case %d: %s", bad_kind, err);
        assert_non_null(strstr(err, "127.0.0.1:"));
        /* and the connection stays failed */
        assert_int_equal(cql_conn_send(c, &b, err, sizeof err), -1);
        assert_non_null(strstr(err, "failed earlier"));
        cql_buf_free(&b);
        cql_conn_close(c);
        finish(&s);
    }
}

static int auth_ok;

static void asks_for_a_password(server *s)
{
    req r;
    cql_buf b = {0};
    accept_one(s);
    assert_int_equal(get_req(s, &r), 0);
    cql_put_string(&b, "org.apache.cassandra.auth.PasswordAuthenticator");
    answer(s, 4, 0, r.h.stream, CQL_OP_AUTHENTICATE, &b);
    cql_buf_free(&b);
    if (get_req(s, &r) == 0) {
        assert_int_equal(r.h.opcode, CQL_OP_AUTH_RESPONSE);
        static const unsigned char plain[] = {0, 0, 0, 7, 0, 'u', 0, 's', 'e', 'c', 'r'};
        assert_int_equal(r.h.length, sizeof plain);
        assert_memory_equal(r.body, plain, sizeof plain);
        if (auth_ok) {
            cql_put_bytes(&b, NULL, -1);
            answer(s, 4, 0, r.h.stream, CQL_OP_AUTH_SUCCESS, &b);
        } else {
            cql_put_i32(&b, 0x0100);
            cql_put_string(&b, "Provided username u and/or password are incorrect");
            answer(s, 4, 0, r.h.stream, CQL_OP_ERROR, &b);
        }
        cql_buf_free(&b);
    }
    close(s->fd);
}

static void credentials_are_sent_when_asked_and_a_refusal_names_the_user(void **state)
{
    (void)state;
    server s;
    cql_conn *c = NULL;
    char err[600];
    auth_ok = 1;
    start(&s, asks_for_a_password);
    assert_int_equal(open_to(&s, "u", "secr", &c, err, sizeof err), 0);
    cql_conn_close(c);
    finish(&s);
    auth_ok = 0;
    start(&s, asks_for_a_password);
    assert_int_equal(open_to(&s, "u", "secr", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "refused user 'u'"));
    assert_non_null(strstr(err, "ERROR 0x0100 (bad credentials): Provided username u"));
    assert_null(strstr(err, "secr"));
    finish(&s);
    start(&s, asks_for_a_password);
    assert_int_equal(open_to(&s, NULL, NULL, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "asks for credentials (org.apache.cassandra.auth.PasswordAuthenticator): set user"));
    finish(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_v4_server_that_refuses_v4_falls_back_to_v3_on_a_new_connection),
        cmocka_unit_test(answers_come_in_any_order_and_each_goes_to_its_request),
        cmocka_unit_test(frames_a_connection_must_refuse_fail_it_with_the_reason),
        cmocka_unit_test(credentials_are_sent_when_asked_and_a_refusal_names_the_user),
    };
    return cmocka_run_group_tests_name("ycql_conn", tests, NULL, NULL);
}
