/* Forward JSON scanner over a file region (see jscan.h). It only finds where a
 * value ends: strings (with escapes) and nesting are tracked, everything else
 * is left to jansson, which parses each value the scanner hands it. */
#include "jscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define JS_BUF (64u << 10)

void js_init(jscan *s, int fd, uint64_t off, uint64_t len)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->pos = off;
    s->end = off + len;
    s->buf = xmalloc(JS_BUF);
    s->bstart = off;
}

void js_free(jscan *s)
{
    free(s->buf);
    s->buf = NULL;
}

void js_seek(jscan *s, uint64_t pos)
{
    s->pos = pos;
    s->ioerr = 0;
    if (pos < s->bstart || pos > s->bstart + s->blen) {
        s->bstart = pos;
        s->blen = 0;
    }
}

/* Makes s->pos readable from the buffer: 1, 0 at the end of the region, -1 on error. */
static int fill(jscan *s)
{
    if (s->pos >= s->end)
        return 0;
    if (s->pos >= s->bstart && s->pos < s->bstart + s->blen)
        return 1;
    uint64_t want = s->end - s->pos;
    size_t n = want < JS_BUF ? (size_t)want : JS_BUF;
    ssize_t got;
    do
        got = pread(s->fd, s->buf, n, (off_t)s->pos);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        s->ioerr = got < 0 ? errno : EIO;
        return -1;
    }
    s->bstart = s->pos;
    s->blen = (size_t)got;
    return 1;
}

static int getb(jscan *s)
{
    if (fill(s) <= 0)
        return -1;
    int c = s->buf[s->pos - s->bstart];
    s->pos++;
    return c;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int js_peek(jscan *s)
{
    for (;;) {
        if (fill(s) <= 0)
            return -1;
        int c = s->buf[s->pos - s->bstart];
        if (!is_space(c))
            return c;
        getb(s);
    }
}

int js_expect(jscan *s, int c)
{
    if (js_peek(s) != c)
        return -1;
    getb(s);
    return 0;
}

int js_at_end(jscan *s)
{
    int c = js_peek(s);
    if (c == -1 && !s->ioerr)
        return 0;
    return -1;
}

typedef struct grow {
    char *p;
    size_t n, cap, max;
    int keep;
} grow;

static int put(grow *g, int c)
{
    if (!g->keep)
        return 0;
    if (g->n + 2 > g->max)
        return -1;
    if (g->n + 2 > g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        if (g->cap > g->max + 1)
            g->cap = g->max + 1;
        g->p = xrealloc(g->p, g->cap);
    }
    g->p[g->n++] = (char)c;
    return 0;
}

/* A string whose opening quote was consumed (and kept). */
static int scan_string(jscan *s, grow *g)
{
    for (;;) {
        int c = getb(s);
        if (c < 0 || c < 0x20 || put(g, c))
            return -1;
        if (c == '"')
            return 0;
        if (c == '\\') {
            c = getb(s);
            if (c < 0 || put(g, c))
                return -1;
        }
    }
}

int js_value(jscan *s, size_t max, char **text, size_t *len, uint64_t *at)
{
    grow g = {NULL, 0, 0, max, text != NULL};
    int c = js_peek(s);
    if (c < 0)
        return -1;
    if (at)
        *at = s->pos;
    int depth = 0, rc = 0;
    if (c == '"') {
        getb(s);
        rc = put(&g, c) ? -1 : scan_string(s, &g);
    } else if (c == '{' || c == '[') {
        for (;;) {
            c = getb(s);
            if (c < 0 || put(&g, c)) {
                rc = -1;
                break;
            }
            if (c == '"') {
                if (scan_string(s, &g)) {
                    rc = -1;
                    break;
                }
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    break;
            }
        }
    } else {
        /* number, true, false, null: up to the next delimiter */
        for (;;) {
            if (fill(s) <= 0)
                break;
            c = s->buf[s->pos - s->bstart];
            if (is_space(c) || c == ',' || c == '}' || c == ']' || c == ':')
                break;
            getb(s);
            if (put(&g, c)) {
                rc = -1;
                break;
            }
        }
        if (!rc && g.keep && g.n == 0)
            rc = -1;
    }
    if (rc || s->ioerr) {
        free(g.p);
        return -1;
    }
    if (text) {
        if (!g.p)
            g.p = xmalloc(1);
        g.p[g.n] = 0;
        *text = g.p;
        if (len)
            *len = g.n;
    }
    return 0;
}

int js_next_elem(jscan *s, int first, size_t max, char **text, size_t *len, uint64_t *at)
{
    int c = js_peek(s);
    if (c == ']') {
        getb(s);
        return 0;
    }
    if (!first) {
        if (c != ',')
            return -1;
        getb(s);
    }
    return js_value(s, max, text, len, at) ? -1 : 1;
}
