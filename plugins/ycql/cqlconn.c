/* ycql plugin: one connection to a CQL server (see cqlconn.h). Non-blocking socket,
 * every wait a poll() bounded by a deadline; TLS through OpenSSL on the same socket. */
#include "cqlconn.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define RBUF_CAP (64 * 1024)
#define MAX_STREAMS 32768

struct cql_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    uint8_t version;
    int broken;
    int request_timeout_ms;
    char where[300];
    unsigned char *rbuf; /* bytes read and not yet taken: rbuf[roff .. rlen) */
    size_t roff, rlen;
    uint8_t used[MAX_STREAMS / 8];
    int inflight, next_stream;
    cql_resp *pending; /* responses read while another was awaited, oldest first */
};

static void conn_err(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void conn_err(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* waits for `events` on the socket until the deadline: 1 ready, 0 timed out, -1 error */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    static __thread char buf[256];
    if (!e)
        return "the connection was closed during TLS";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* moves all of p out before the deadline; 0 or -1 with err */
static int io_write(cql_conn *c, const unsigned char *p, size_t n, int64_t deadline, char *err, size_t errlen)
{
    while (n) {
        short want = POLLOUT;
        ssize_t k;
        if (c->ssl) {
            int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r > 0) {
                k = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    conn_err(err, errlen, "%s: TLS write failed: %s", c->where, ssl_reason());
                    return -1;
                }
                want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                k = -1;
                errno = EAGAIN;
            }
        } else {
            k = send(c->fd, p, n, MSG_NOSIGNAL);
        }
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_err(err, errlen, "%s: write failed: %s", c->where, strerror(errno));
            return -1;
        }
        int w = wait_fd(c->fd, want, deadline);
        if (w <= 0) {
            conn_err(err, errlen, "%s: %s", c->where, w ? strerror(errno) : "no progress sending a request (timeout)");
            return -1;
        }
    }
    return 0;
}

/* reads at least `need` bytes into the buffer (it holds rlen - roff already) */
static int fill(cql_conn *c, size_t need, int64_t deadline, char *err, size_t errlen)
{
    while (c->rlen - c->roff < need) {
        if (c->roff && c->roff == c->rlen)
            c->roff = c->rlen = 0;
        if (c->rlen == RBUF_CAP) { /* move what is left to the front */
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
            c->rlen -= c->roff;
            c->roff = 0;
        }
        short want = POLLIN;
        ssize_t k;
        if (c->ssl) {
            int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(RBUF_CAP - c->rlen));
            if (r > 0) {
                k = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_ZERO_RETURN) {
                    k = 0;
                } else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                    k = -1;
                    errno = EAGAIN;
                } else {
                    conn_err(err, errlen, "%s: TLS read failed: %s", c->where, ssl_reason());
                    return -1;
                }
            }
        } else {
            k = recv(c->fd, c->rbuf + c->rlen, RBUF_CAP - c->rlen, 0);
        }
        if (k > 0) {
            c->rlen += (size_t)k;
            continue;
        }
        if (k == 0) {
            conn_err(err, errlen, "%s: the server closed the connection", c->where);
            return -1;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_err(err, errlen, "%s: read failed: %s", c->where, strerror(errno));
            return -1;
        }
        int w = wait_fd(c->fd, want, deadline);
        if (w <= 0) {
            conn_err(err, errlen, "%s: %s", c->where,
                w ? strerror(errno) : "no answer within the request timeout");
            return -1;
        }
    }
    return 0;
}

/* copies n bytes out of the stream into dst */
static int read_exact(cql_conn *c, unsigned char *dst, size_t n, int64_t deadline, char *err, size_t errlen)
{
    while (n) {
        size_t chunk = n < RBUF_CAP / 2 ? n : RBUF_CAP / 2;
        if (fill(c, chunk, deadline, err, errlen))
            return -1;
        size_t have = c->rlen - c->roff;
        size_t k = have < n ? have : n;
        memcpy(dst, c->rbuf + c->roff, k);
        c->roff += k;
        dst += k;
        n -= k;
    }
    return 0;
}

void cql_resp_free(cql_resp *r)
{
    if (r) {
        free(r->body);
        free(r->warnings);
        free(r);
    }
}

/* one frame off the wire */
static int read_frame(cql_conn *c, int64_t deadline, cql_resp **out, char *err, size_t errlen)
{
    unsigned char h[CQL_HEADER_LEN];
    const char *why = NULL;
    if (read_exact(c, h, sizeof h, deadline, err, errlen))
        return -1;
    cql_resp *r = calloc(1, sizeof *r);
    if (!r) {
        conn_err(err, errlen, "out of memory");
        return -1;
    }
    if (cql_header_parse(h, &r->h, &why) || !r->h.response) {
        conn_err(err, errlen, "%s: not a CQL response frame (%s)", c->where, why ? why : "the response bit is clear");
        cql_resp_free(r);
        return -1;
    }
    if (r->h.flags & CQL_FLAG_COMPRESSION) {
        conn_err(err, errlen, "%s: a compressed frame, and no compression was asked for", c->where);
        cql_resp_free(r);
        return -1;
    }
    if (!(r->body = malloc(r->h.length ? r->h.length : 1))) {
        conn_err(err, errlen, "out of memory for a %u-byte frame", r->h.length);
        cql_resp_free(r);
        return -1;
    }
    if (read_exact(c, r->body, r->h.length, deadline, err, errlen)) {
        cql_resp_free(r);
        return -1;
    }
    cql_rd_init(&r->rd, r->body, r->h.length);
    if (r->h.flags & CQL_FLAG_TRACING)
        cql_get_raw(&r->rd, 16);
    if (r->h.flags & CQL_FLAG_WARNING) {
        uint16_t n = cql_get_u16(&r->rd);
        size_t total = 1;
        const char *w[64];
        size_t wl[64];
        for (uint16_t i = 0; i < n && !r->rd.err; i++) {
            size_t len;
            const char *s = cql_get_string(&r->rd, &len);
            if (i < 64) {
                w[i] = s;
                wl[i] = len;
                total += len + 2;
            }
        }
        if (!r->rd.err && n && (r->warnings = malloc(total))) {
            size_t at = 0;
            for (uint16_t i = 0; i < n && i < 64; i++) {
                memcpy(r->warnings + at, w[i], wl[i]);
                at += wl[i];
                if (i + 1 < n && i + 1 < 64) {
                    memcpy(r->warnings + at, "; ", 2);
                    at += 2;
                }
            }
            r->warnings[at] = 0;
        }
    }
    if (r->h.flags & CQL_FLAG_CUSTOM_PAYLOAD) {
        uint16_t n = cql_get_u16(&r->rd);
        for (uint16_t i = 0; i < n && !r->rd.err; i++) {
            size_t len;
            int32_t bl;
            cql_get_string(&r->rd, &len);
            cql_get_bytes(&r->rd, &bl);
        }
    }
    if (r->rd.err) {
        conn_err(err, errlen, "%s: a malformed response frame (%s)", c->where, r->rd.err);
        cql_resp_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

static void release(cql_conn *c, int stream)
{
    if (stream >= 0 && stream < MAX_STREAMS && (c->used[stream / 8] & (1u << (stream % 8)))) {
        c->used[stream / 8] &= (uint8_t) ~(1u << (stream % 8));
        c->inflight--;
    }
}

int cql_conn_stream(cql_conn *c)
{
    if (c->inflight >= MAX_STREAMS)
        return -1;
    for (int i = 0; i < MAX_STREAMS; i++) {
        int s = (c->next_stream + i) % MAX_STREAMS;
        if (!(c->used[s / 8] & (1u << (s % 8)))) {
            c->used[s / 8] |= (uint8_t)(1u << (s % 8));
            c->inflight++;
            c->next_stream = (s + 1) % MAX_STREAMS;
            return s;
        }
    }
    return -1;
}

int cql_conn_inflight(const cql_conn *c)
{
    return c->inflight;
}

int cql_conn_send(cql_conn *c, const cql_buf *b, char *err, size_t errlen)
{
    if (c->broken) {
        conn_err(err, errlen, "%s: the connection failed earlier", c->where);
        return -1;
    }
    if (b->oom) {
        conn_err(err, errlen, "a request could not be encoded (out of memory or over the protocol's limits)");
        return -1;
    }
    if (io_write(c, b->p, b->len, now_ms() + c->request_timeout_ms, err, errlen)) {
        c->broken = 1;
        return -1;
    }
    return 0;
}

int cql_conn_recv(cql_conn *c, int stream, cql_resp **out, char *err, size_t errlen)
{
    *out = NULL;
    for (cql_resp **pp = &c->pending; *pp; pp = &(*pp)->next)
        if (stream < 0 || (*pp)->h.stream == stream) {
            cql_resp *r = *pp;
            *pp = r->next;
            r->next = NULL;
            release(c, r->h.stream);
            *out = r;
            return 0;
        }
    if (c->broken) {
        conn_err(err, errlen, "%s: the connection failed earlier", c->where);
        return -1;
    }
    int64_t deadline = now_ms() + c->request_timeout_ms;
    for (;;) {
        cql_resp *r;
        if (read_frame(c, deadline, &r, err, errlen)) {
            c->broken = 1;
            return -1;
        }
        if (r->h.stream < 0) { /* an event: none were asked for */
            cql_resp_free(r);
            continue;
        }
        if (!(c->used[r->h.stream / 8] & (1u << (r->h.stream % 8)))) {
            conn_err(err, errlen, "%s: a response on stream %d, which no request used", c->where, r->h.stream);
            cql_resp_free(r);
            c->broken = 1;
            return -1;
        }
        if (stream < 0 || r->h.stream == stream) {
            release(c, r->h.stream);
            *out = r;
            return 0;
        }
        cql_resp **tail = &c->pending;
        while (*tail)
            tail = &(*tail)->next;
        *tail = r;
    }
}

int cql_resp_error(const cql_conn *c, cql_resp *r, char *err, size_t errlen)
{
    if (r->h.opcode != CQL_OP_ERROR)
        return -1;
    cql_rd rd = r->rd;
    int32_t code = 0;
    char msg[1200];
    cql_get_error(&rd, &code, msg, sizeof msg);
    conn_err(err, errlen, "%s: ERROR 0x%04x (%s): %s", c->where, (unsigned)code, cql_error_name(code), msg);
    return code;
}

int cql_conn_call(cql_conn *c, cql_buf *frame, int stream, cql_resp **out, char *err, size_t errlen)
{
    if (cql_conn_send(c, frame, err, errlen)) {
        release(c, stream);
        return -1;
    }
    return cql_conn_recv(c, stream, out, err, errlen);
}

uint8_t cql_conn_version(const cql_conn *c)
{
    return c->version;
}

const char *cql_conn_where(const cql_conn *c)
{
    return c->where;
}

void cql_conn_close(cql_conn *c)
{
    if (!c)
        return;
    while (c->pending) {
        cql_resp *r = c->pending;
        c->pending = r->next;
        cql_resp_free(r);
    }
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* best effort, non-blocking */
        SSL_free(c->ssl);
    }
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    free(c);
}

/* ---- opening ------------------------------------------------------------------------------ */

static int tcp_connect(cql_conn *c, const cql_conn_opts *o, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
    int rc = getaddrinfo(o->host, o->port, &hints, &ai);
    if (rc) {
        conn_err(err, errlen, "cannot resolve %s: %s", c->where, gai_strerror(rc));
        return -1;
    }
    int64_t deadline = now_ms() + o->connect_timeout_ms;
    char why[200] = "no address";
    for (a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            continue;
        }
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && !soerr) {
                r = 0;
            } else {
                snprintf(why, sizeof why, "%s", w == 0 ? "no answer within the connect timeout" : strerror(soerr ? soerr : errno));
                r = -1;
            }
        } else if (r) {
            snprintf(why, sizeof why, "%s", strerror(errno));
        }
        if (!r) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(ai);
            return 0;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    conn_err(err, errlen, "cannot connect to %s: %s", c->where, why);
    return -1;
}

static int tls_start(cql_conn *c, const cql_conn_opts *o, char *err, size_t errlen)
{
    if (!(c->ctx = SSL_CTX_new(TLS_client_method()))) {
        conn_err(err, errlen, "%s: cannot create a TLS context: %s", c->where, ssl_reason());
        return -1;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    if (o->verify_tls) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        int ok = o->ca_file && *o->ca_file ? SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL)
                                           : SSL_CTX_set_default_verify_paths(c->ctx);
        if (ok != 1) {
            conn_err(err, errlen, "%s: cannot load the CA certificates%s%s: %s", c->where, o->ca_file ? " of " : "",
                o->ca_file ? o->ca_file : "", ssl_reason());
            return -1;
        }
    }
    if (!(c->ssl = SSL_new(c->ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_err(err, errlen, "%s: cannot start TLS: %s", c->where, ssl_reason());
        return -1;
    }
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = inet_pton(AF_INET, o->host, &a4) == 1 || inet_pton(AF_INET6, o->host, &a6) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, o->host);
    if (o->verify_tls) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, o->host) : X509_VERIFY_PARAM_set1_host(vp, o->host, 0)) != 1) {
            conn_err(err, errlen, "%s: cannot set the name to check in the certificate", c->where);
            return -1;
        }
    }
    int64_t deadline = now_ms() + o->connect_timeout_ms;
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            long v = SSL_get_verify_result(c->ssl);
            if (v != X509_V_OK)
                conn_err(err, errlen, "%s: the server's certificate is not trusted: %s (ca_file, or verify_tls = false "
                    "for a test server)", c->where, X509_verify_cert_error_string(v));
            else
                conn_err(err, errlen, "%s: TLS handshake failed: %s (is TLS on at the server? ssl = true asks for it)",
                    c->where, ssl_reason());
            return -1;
        }
        int w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w <= 0) {
            conn_err(err, errlen, "%s: TLS handshake: %s", c->where, w ? strerror(errno) : "no answer within the connect timeout");
            return -1;
        }
    }
}

/* STARTUP and authentication at c->version; 1 when the server refused the version */
static int handshake(cql_conn *c, const cql_conn_opts *o, char *err, size_t errlen)
{
    cql_buf b = {0};
    cql_resp *r = NULL;
    int s = cql_conn_stream(c);
    if (cql_req_startup(&b, c->version, (int16_t)s) || cql_conn_call(c, &b, s, &r, err, errlen)) {
        cql_buf_free(&b);
        return -1;
    }
    cql_buf_free(&b);
    int rc = 0;
    if (r->h.opcode == CQL_OP_ERROR) {
        int code = cql_resp_error(c, r, err, errlen);
        cql_resp_free(r);
        return code == 0x000A ? 1 : -1;
    }
    if (r->h.opcode == CQL_OP_AUTHENTICATE) {
        size_t n;
        const char *cls = cql_get_string(&r->rd, &n);
        char who[200];
        snprintf(who, sizeof who, "%.*s", cls ? (int)(n > 150 ? 150 : n) : 0, cls ? cls : "");
        cql_resp_free(r);
        r = NULL;
        if (!o->user || !*o->user) {
            conn_err(err, errlen, "%s asks for credentials (%s): set user and password", c->where, who);
            return -1;
        }
        s = cql_conn_stream(c);
        rc = cql_req_auth_plain(&b, c->version, (int16_t)s, o->user, o->password ? o->password : "");
        if (!rc)
            rc = cql_conn_call(c, &b, s, &r, err, errlen);
        cql_buf_wipe(&b);
        if (rc)
            return -1;
        if (r->h.opcode == CQL_OP_ERROR) {
            char why[1400];
            cql_resp_error(c, r, why, sizeof why);
            conn_err(err, errlen, "%s refused user '%s': %s", c->where, o->user, why);
            rc = -1;
        } else if (r->h.opcode != CQL_OP_AUTH_SUCCESS) {
            conn_err(err, errlen, "%s: authentication (%s) asked for more than a password (opcode 0x%02x): not supported",
                c->where, who, r->h.opcode);
            rc = -1;
        }
    } else if (r->h.opcode != CQL_OP_READY) {
        conn_err(err, errlen, "%s answered STARTUP with opcode 0x%02x", c->where, r->h.opcode);
        rc = -1;
    }
    cql_resp_free(r);
    return rc;
}

int cql_conn_open(const cql_conn_opts *o, cql_conn **out, char *err, size_t errlen)
{
    *out = NULL;
    for (uint8_t version = 4; version >= 3; version--) {
        cql_conn *c = calloc(1, sizeof *c);
        if (!c || !(c->rbuf = malloc(RBUF_CAP))) {
            free(c);
            conn_err(err, errlen, "out of memory");
            return -1;
        }
        c->fd = -1;
        c->version = version;
        c->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 12000;
        snprintf(c->where, sizeof c->where, strchr(o->host, ':') ? "[%.200s]:%.20s" : "%.200s:%.20s", o->host, o->port);
        cql_conn_opts oo = *o;
        if (oo.connect_timeout_ms <= 0)
            oo.connect_timeout_ms = 5000;
        int rc = tcp_connect(c, &oo, err, errlen);
        if (!rc && o->ssl)
            rc = tls_start(c, &oo, err, errlen);
        if (!rc)
            rc = handshake(c, &oo, err, errlen);
        if (rc == 0) {
            *out = c;
            return 0;
        }
        cql_conn_close(c);
        if (rc < 0)
            return -1;
        /* the server refused this version: try the one below on a new connection */
    }
    return -1;
}
