/* ysql plugin: a growable byte buffer; an allocation failure is remembered in
 * the buffer instead of being checked at every append. */
#include "pure.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(ysql_buf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ysql_buf_add(ysql_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void ysql_buf_str(ysql_buf *b, const char *s)
{
    ysql_buf_add(b, s, strlen(s));
}

void ysql_buf_printf(ysql_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ysql_buf_free(ysql_buf *b)
{
    free(b->p);
    *b = (ysql_buf){0};
}

char *ysql_buf_take(ysql_buf *b)
{
    if (b->oom) {
        ysql_buf_free(b);
        return NULL;
    }
    if (!b->p)
        ysql_buf_add(b, "", 0);
    char *p = b->oom ? NULL : b->p;
    if (!p)
        free(b->p);
    *b = (ysql_buf){0};
    return p;
}
