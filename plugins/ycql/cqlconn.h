/* ycql plugin: one connection to a CQL server (YugabyteDB's YCQL, Cassandra).
 *
 * Opening it: TCP with a connect timeout (every address the name resolves to, in
 * turn), TLS when asked (OpenSSL: TLS 1.2 or later, the server's certificate checked
 * against ca_file or the system's CAs and the host name, unless verify_tls is off),
 * STARTUP at protocol v4, and at v3 on a new connection when the server refuses v4
 * with a protocol error; then PasswordAuthenticator's SASL PLAIN when the server asks
 * (the buffer that held the password is wiped).
 *
 * Requests: several may be in flight, each on a stream id of its own
 * (cql_conn_stream); responses are read as they come and kept until asked for
 * (cql_conn_recv). Every wait is bounded by the request timeout: no answer within it
 * fails the request with a message that names the server. One thread uses a
 * connection at a time (the plugin gives each loader thread its own). */
#ifndef ARCA_YCQL_CQLCONN_H
#define ARCA_YCQL_CQLCONN_H

#include "cqlwire.h"

typedef struct cql_conn_opts {
    const char *host, *port;
    const char *user, *password; /* user NULL: no credentials to offer */
    int ssl, verify_tls;
    const char *ca_file; /* NULL: the system's CAs */
    int connect_timeout_ms, request_timeout_ms;
} cql_conn_opts;

/* One response: its header and body, the reader past the tracing id, warnings and
 * custom payload (warnings kept as text in `warnings`, NULL when none). */
typedef struct cql_resp {
    cql_header h;
    unsigned char *body;
    cql_rd rd;
    char *warnings;
    struct cql_resp *next;
} cql_resp;

typedef struct cql_conn cql_conn;

/* 0, or -1 with err set ("cannot connect to 10.0.0.1:9042: ...", "... refused the
 * password of user 'u': ..."). */
int cql_conn_open(const cql_conn_opts *o, cql_conn **out, char *err, size_t errlen);
void cql_conn_close(cql_conn *c);
uint8_t cql_conn_version(const cql_conn *c);
const char *cql_conn_where(const cql_conn *c); /* "host:port" */

/* A free stream id (0..32767), now in use until its response is received; -1 when all are. */
int cql_conn_stream(cql_conn *c);
int cql_conn_inflight(const cql_conn *c);
/* Writes b's frames (whole). 0 or -1 with err. */
int cql_conn_send(cql_conn *c, const cql_buf *b, char *err, size_t errlen);
/* The response to `stream` (or to any request when stream < 0), waiting at most the
 * request timeout. The stream id is free again once it is returned. 0 with *out, or -1
 * with err (timeout, connection lost, a malformed frame: the connection is then unusable). */
int cql_conn_recv(cql_conn *c, int stream, cql_resp **out, char *err, size_t errlen);
void cql_resp_free(cql_resp *r);

/* A response that is an ERROR: "HOST:PORT: ERROR 0x2200 (invalid): MESSAGE" into err,
 * returns the code; a response that is not an ERROR: returns -1 and leaves err alone. */
int cql_resp_error(const cql_conn *c, cql_resp *r, char *err, size_t errlen);

/* send one request frame built by `build` on a free stream, wait for its answer */
int cql_conn_call(cql_conn *c, cql_buf *frame, int stream, cql_resp **out, char *err, size_t errlen);

#endif
