/* ysql plugin: YugabyteDB-only behaviour, decided from what the server reports.
 * Sources (docs.yugabyte.com and yugabyte/yugabyte-db) are cited in docs/YSQL.md:
 * yb_read_time takes Unix microseconds and pins a session's reads; ysql_dump
 * takes --include-yb-metadata and --read-time=MICROS; a yb_catalog_version()
 * change during a dump means the dump may not match the data. */
#include "pure.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Microseconds before 2001-09-09 are almost surely seconds or milliseconds. */
#define YBX_MIN_MICROS 1000000000000000LL

int ybx_is_yugabyte(const char *version)
{
    return version && strstr(version, "-YB-") != NULL;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_iso(const char *s, int64_t *micros)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int Y, M, D, h, mi, sec, frac = 0;
    const char *p = s;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)p[n]))
            n++;
        if (n < 1 || n > 6)
            return -1;
        for (int i = 0; i < 6; i++)
            frac = frac * 10 + (i < n ? p[i] - '0' : 0);
        p += n;
    }
    /* UTC only, and said so: a time without a zone would be read in someone's local time */
    if (strcmp(p, "Z") && strcmp(p, "z") && strcmp(p, "+00:00") && strcmp(p, "+00") &&
        strcmp(p, "+0000"))
        return -1;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || sec > 59)
        return -1;
    if (D > mdays[M - 1] + (M == 2 && is_leap(Y)))
        return -1;
    int64_t secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec;
    *micros = secs * 1000000 + frac;
    return 0;
}

int ybx_parse_as_of(const char *text, int64_t *micros, char *err, size_t errlen)
{
    const char *s = text ? text : "";
    size_t n = strlen(s);
    if (n && strspn(s, "0123456789") == n) {
        if (n > 18) {
            snprintf(err, errlen, "as_of '%s' is too large for microseconds since the epoch", s);
            return -1;
        }
        long long v = strtoll(s, NULL, 10);
        if (v < YBX_MIN_MICROS) {
            snprintf(err, errlen,
                     "as_of '%s' is not microseconds since the Unix epoch (seconds or "
                     "milliseconds? multiply by 1000000 or 1000)", s);
            return -1;
        }
        *micros = v;
        return 0;
    }
    if (parse_iso(s, micros) == 0)
        return 0;
    snprintf(err, errlen,
             "as_of '%s' is neither microseconds since the Unix epoch nor an ISO-8601 UTC time "
             "like 2025-03-13T09:48:46Z or 2025-03-13 09:48:46.123456+00:00", s);
    return -1;
}

char *ybx_read_time_sql(int64_t micros)
{
    pc_buf b = {0};
    pc_buf_printf(&b, "SET yb_read_time TO %" PRId64, micros);
    return pc_buf_take(&b);
}

char *ybx_as_of_refusal(int is_yb, const char *as_of, const char *where, const char *version)
{
    if (!as_of || !*as_of || is_yb)
        return NULL;
    const char *v = version ? version : "a server that is not YugabyteDB";
    const char *on = strstr(v, " on ");
    int vlen = on ? (int)(on - v) : (int)strlen(v);
    pc_buf b = {0};
    pc_buf_printf(&b,
                    "as_of = %s needs YugabyteDB time travel (yb_read_time), but %s runs %.*s\n"
                    "hint: remove as_of to back up the current state; PostgreSQL cannot read the past",
                    as_of, where, vlen, v);
    return pc_buf_take(&b);
}

int ybx_dump_args(int is_yb, int64_t read_time_micros, const char *snapshot, char **args, int cap)
{
    int n = 0;
    pc_buf b = {0};
    if (is_yb && n < cap) {
        pc_buf_str(&b, "--include-yb-metadata");
        args[n++] = pc_buf_take(&b);
    }
    if (is_yb && read_time_micros > 0 && n < cap) {
        pc_buf_printf(&b, "--read-time=%" PRId64, read_time_micros);
        args[n++] = pc_buf_take(&b);
    }
    if (snapshot && *snapshot && n < cap) {
        pc_buf_printf(&b, "--snapshot=%s", snapshot);
        args[n++] = pc_buf_take(&b);
    }
    return n;
}

ybx_catalog_verdict ybx_catalog_check(int64_t before, int64_t after, ybx_phase phase, int attempt,
                                      int max_retries)
{
    if (before == after)
        return YBX_CATALOG_OK;
    if (phase == YBX_PHASE_SCHEMA && attempt <= max_retries)
        return YBX_CATALOG_RETRY;
    return YBX_CATALOG_FAIL;
}

char *ybx_catalog_message(int64_t before, int64_t after, ybx_phase phase, int attempts)
{
    pc_buf b = {0};
    pc_buf_printf(&b, "the YSQL catalog version changed from %" PRId64 " to %" PRId64 " during the "
                    "backup: a DDL statement ran concurrently", before, after);
    if (phase == YBX_PHASE_SCHEMA)
        pc_buf_printf(&b, " (schema dumped %d times, changed every time)\n"
                        "hint: run the backup when no DDL is running, or raise catalog_retries",
                        attempts);
    else
        pc_buf_str(&b, ", so the data may not match the dumped schema; the backup is discarded\n"
                     "hint: run the backup again when no DDL is running");
    return pc_buf_take(&b);
}
