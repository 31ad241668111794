/* plugins/common: the growable byte buffer. */
#include "pc_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(pc_buf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    if (more > (size_t)-1 / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
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

int pc_buf_reserve(pc_buf *b, size_t more)
{
    return buf_reserve(b, more);
}

void pc_buf_add(pc_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void pc_buf_str(pc_buf *b, const char *s)
{
    pc_buf_add(b, s, strlen(s));
}

void pc_buf_printf(pc_buf *b, const char *fmt, ...)
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

void pc_buf_free(pc_buf *b)
{
    free(b->p);
    *b = (pc_buf){0};
}

char *pc_buf_take(pc_buf *b)
{
    if (!b->oom && !b->p)
        pc_buf_add(b, "", 0);
    if (b->oom) {
        pc_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    *b = (pc_buf){0};
    return p;
}
