/* ysql plugin: connections. Every message names user@host:port/db; connection
 * failures get a hint for the usual causes. The password goes to libpq as a
 * connection parameter and never into a message. */
#include "ysql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ysql_err_init(ysql_err *e)
{
    pthread_mutex_init(&e->mu, NULL);
    e->code = 0;
    e->msg = NULL;
}

void ysql_err_destroy(ysql_err *e)
{
    free(e->msg);
    pthread_mutex_destroy(&e->mu);
}

int ysql_fail(ysql_err *e, int code, const char *fmt, ...)
{
    pthread_mutex_lock(&e->mu);
    if (!e->code) {
        va_list ap;
        va_start(ap, fmt);
        char *m = NULL;
        if (vasprintf(&m, fmt, ap) < 0)
            m = NULL;
        va_end(ap);
        e->code = code;
        e->msg = m;
    }
    pthread_mutex_unlock(&e->mu);
    return code;
}

int ysql_failed(ysql_err *e)
{
    pthread_mutex_lock(&e->mu);
    int c = e->code;
    pthread_mutex_unlock(&e->mu);
    return c;
}

int ysql_err_report(ysql_err *e, const arca_host *h)
{
    int code = ysql_failed(e);
    if (!code)
        return ARCA_OK;
    return h->error(h, code, "%s", e->msg ? e->msg : "out of memory");
}

static const char *sslmode_name(int i)
{
    static const char *const names[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                        "verify-full"};
    return i >= 0 && i < (int)(sizeof names / sizeof *names) ? names[i] : "prefer";
}

char *ysql_where(const ysql_inst *yi, const char *dbname)
{
    const ysql_config *c = yi->cfg;
    char *s = NULL;
    if (asprintf(&s, "%s@%s:%lld/%s", c->user, c->host, (long long)c->port,
                 dbname ? dbname : c->dbname) < 0)
        s = NULL;
    return s;
}

/* libpq's message on one line: "connection to server ... failed: FATAL:  x" -> "x". */
static void one_line(char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    for (char *p = m; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

static const char *connect_hint(const char *m)
{
    if (strstr(m, "password authentication failed") || strstr(m, "no password supplied") ||
        strstr(m, "SCRAM"))
        return "check password / password_file (and user) in the source section";
    if (strstr(m, "Connection refused") || strstr(m, "could not connect") ||
        strstr(m, "timeout expired") || strstr(m, "No route to host"))
        return "check host and port, and that the server is running and accepts TCP connections";
    if (strstr(m, "could not translate host name") || strstr(m, "Name or service not known"))
        return "check the host name";
    if (strstr(m, "does not exist") && strstr(m, "database"))
        return "check dbname (or create the database)";
    if (strstr(m, "pg_hba.conf"))
        return "the server's pg_hba.conf does not let this user in from here";
    if (strstr(m, "SSL") || strstr(m, "certificate"))
        return "check sslmode and sslrootcert";
    return NULL;
}

PGconn *ysql_connect(const ysql_inst *yi, const char *dbname, ysql_err *e)
{
    const ysql_config *c = yi->cfg;
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%lld", (long long)c->port);
    snprintf(timeout, sizeof timeout, "%lld", (long long)c->connect_timeout);
    const char *keys[16], *vals[16];
    int n = 0;
    keys[n] = "host", vals[n++] = c->host;
    keys[n] = "port", vals[n++] = port;
    keys[n] = "user", vals[n++] = c->user;
    keys[n] = "dbname", vals[n++] = dbname ? dbname : c->dbname;
    keys[n] = "sslmode", vals[n++] = sslmode_name(c->sslmode);
    keys[n] = "connect_timeout", vals[n++] = timeout;
    keys[n] = "application_name", vals[n++] = "arca";
    if (c->password && *c->password)
        keys[n] = "password", vals[n++] = c->password;
    if (c->sslrootcert && *c->sslrootcert)
        keys[n] = "sslrootcert", vals[n++] = c->sslrootcert;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    char *m = strdup(conn ? PQerrorMessage(conn) : "out of memory");
    char *where = ysql_where(yi, dbname);
    if (m)
        one_line(m);
    const char *hint = m ? connect_hint(m) : NULL;
    ysql_fail(e, ARCA_EFAIL, "cannot connect to %s: %s%s%s", where ? where : c->host,
              m ? m : "out of memory", hint ? "\nhint: " : "", hint ? hint : "");
    free(m);
    free(where);
    PQfinish(conn);
    return NULL;
}

char *ysql_child_conninfo(const ysql_inst *yi, const char *dbname, const char *appname)
{
    const ysql_config *c = yi->cfg;
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%lld", (long long)c->port);
    snprintf(timeout, sizeof timeout, "%lld", (long long)c->connect_timeout);
    pc_buf b = {0};
    ysql_buf_conninfo(&b, "host", c->host);
    ysql_buf_conninfo(&b, "port", port);
    ysql_buf_conninfo(&b, "user", c->user);
    ysql_buf_conninfo(&b, "dbname", dbname ? dbname : c->dbname);
    ysql_buf_conninfo(&b, "sslmode", sslmode_name(c->sslmode));
    ysql_buf_conninfo(&b, "connect_timeout", timeout);
    ysql_buf_conninfo(&b, "application_name", appname);
    if (c->sslrootcert && *c->sslrootcert)
        ysql_buf_conninfo(&b, "sslrootcert", c->sslrootcert);
    return pc_buf_take(&b);
}

char *ysql_pg_message(PGconn *c, const PGresult *r)
{
    pc_buf b = {0};
    const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (prim) {
        const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
        const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
        const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
        pc_buf_printf(&b, "%s: %s", sev ? sev : "ERROR", prim);
        if (detail)
            pc_buf_printf(&b, " (%s)", detail);
        if (ctx)
            pc_buf_printf(&b, " [%s]", ctx);
        if (hint)
            pc_buf_printf(&b, "\nhint: %s", hint);
    } else {
        pc_buf_str(&b, PQerrorMessage(c));
    }
    char *m = pc_buf_take(&b);
    if (m) {
        size_t n = strlen(m);
        while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
    }
    return m;
}

int ysql_exec(PGconn *c, ysql_err *e, const char *what, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return ARCA_OK;
    }
    char *m = ysql_pg_message(c, r);
    PQclear(r);
    int rc = ysql_fail(e, ARCA_EFAIL, "%s: %s", what, m ? m : "out of memory");
    free(m);
    return rc;
}

PGresult *ysql_query(PGconn *c, ysql_err *e, const char *what, const char *sql, int nparams,
                     const char *const *params)
{
    PGresult *r = nparams ? PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0)
                          : PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    char *m = ysql_pg_message(c, r);
    PQclear(r);
    ysql_fail(e, ARCA_EFAIL, "%s: %s", what, m ? m : "out of memory");
    free(m);
    return NULL;
}

int ysql_session_setup(PGconn *c, ysql_err *e)
{
    /* names travel in UTF-8 whatever the database's encoding (JSON needs it, and
     * every encoding a server keeps converts to it); COPY data does not convert */
    if (PQsetClientEncoding(c, "UTF8") != 0)
        return ysql_fail(e, ARCA_EFAIL, "cannot set client_encoding to UTF8: %s", PQerrorMessage(c));
    return ysql_exec(c, e, "cannot prepare the session",
                     "SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; "
                     "SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET bytea_output = 'hex'; "
                     "SET standard_conforming_strings = on; SET row_security = off; "
                     "SET statement_timeout = 0; SET lock_timeout = 0; "
                     "SET idle_in_transaction_session_timeout = 0");
}

void ysql_copy_options(pc_buf *b, const char *encoding, int freeze)
{
    pc_buf_str(b, " (ENCODING ");
    ysql_buf_literal(b, encoding && *encoding ? encoding : "UTF8");
    if (freeze)
        pc_buf_str(b, ", FREEZE");
    pc_buf_str(b, ")");
}

double ysql_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
