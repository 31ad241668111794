/* ysql plugin: a plain pg_dump/ysql_dump script cut into its table-of-contents
 * entries, and the rule that picks the entries of chosen tables for a
 * table-level restore. pg_dump has printed the same entry header,
 *     --
 *     -- Name: NAME; Type: TYPE; Schema: SCHEMA; Owner: OWNER
 *     --
 * for every entry since long before PostgreSQL 11 (names with newlines are
 * printed with spaces), and ysql_dump inherits it. */
#include "pure.h"

#include <stdlib.h>
#include <string.h>

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl + 1 : end;
}

static int line_is(const char *p, const char *e, const char *want)
{
    size_t n = strlen(want);
    size_t len = (size_t)(e - p);
    if (len && p[len - 1] == '\n')
        len--;
    return len == n && !memcmp(p, want, n);
}

static char *dup_range(const char *b, const char *e)
{
    return strndup(b, (size_t)(e - b));
}

/* The last occurrence of `needle` in [b, e). */
static const char *find_last(const char *b, const char *e, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = e - (ptrdiff_t)n; p >= b; p--)
        if (!memcmp(p, needle, n))
            return p;
    return NULL;
}

static const char *find_first(const char *b, const char *e, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = b; p + n <= e; p++)
        if (!memcmp(p, needle, n))
            return p;
    return NULL;
}

/* Fills name/type/schema from "-- Name: ...". 0 ok, 1 not a header, -1 oom. */
static int parse_header(const char *b, const char *e, toc_entry *t)
{
    static const char pre[] = "-- Name: ";
    while (e > b && (e[-1] == '\n' || e[-1] == '\r'))
        e--;
    if ((size_t)(e - b) < sizeof pre - 1 || memcmp(b, pre, sizeof pre - 1))
        return 1;
    const char *name = b + sizeof pre - 1;
    const char *ty = find_last(name, e, "; Type: ");
    if (!ty)
        return 1;
    const char *sc = find_first(ty + 8, e, "; Schema: ");
    if (!sc)
        return 1;
    const char *ow = find_first(sc + 10, e, "; Owner:");
    t->name = dup_range(name, ty);
    t->type = dup_range(ty + 8, sc);
    t->schema = dup_range(sc + 10, ow ? ow : e);
    return t->name && t->type && t->schema ? 0 : -1;
}

static void entry_free(toc_entry *t)
{
    free(t->name);
    free(t->type);
    free(t->schema);
}

int toc_parse(const char *text, size_t len, toc_script *out)
{
    *out = (toc_script){.text = text, .len = len, .preamble_end = len, .trailer_start = len};
    const char *end = text + len;
    size_t cap = 0;
    for (const char *p = text; p < end;) {
        const char *l1 = line_end(p, end);
        if (!line_is(p, l1, "--") || l1 >= end) {
            p = l1;
            continue;
        }
        const char *l2 = line_end(l1, end), *l3 = line_end(l2, end);
        if (!line_is(l2, l3, "--") || l2 >= end) {
            p = l1;
            continue;
        }
        /* "--" / "-- something" / "--": a header block */
        if (find_first(l1, l2, "database dump complete")) {
            out->trailer_start = (size_t)(p - text);
            break;
        }
        toc_entry t = {0};
        int rc = parse_header(l1, l2, &t);
        if (rc < 0) {
            entry_free(&t);
            toc_free(out);
            return -1;
        }
        if (rc == 0) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 64;
                toc_entry *v = realloc(out->v, cap * sizeof *v);
                if (!v) {
                    entry_free(&t);
                    toc_free(out);
                    return -1;
                }
                out->v = v;
            }
            t.start = (size_t)(p - text);
            if (out->n)
                out->v[out->n - 1].end = t.start;
            else
                out->preamble_end = t.start;
            out->v[out->n++] = t;
        }
        p = l3;
    }
    if (out->n)
        out->v[out->n - 1].end = out->trailer_start;
    else
        out->preamble_end = out->trailer_start;
    return 0;
}

void toc_free(toc_script *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_free(&s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* "TABLE rest" with rest == t; "PREFIX t.column" with any column. */
static int is(const char *a, const char *b)
{
    return !strcmp(a, b);
}

/* name == `t` + " " + one of `list` */
static int table_pair(const char *name, const char *t, char *const *list)
{
    size_t n = strlen(t);
    return !strncmp(name, t, n) && name[n] == ' ' && ysql_strv_has(list, name + n + 1);
}

/* name == KIND + " " + x + " ON " + t with x in list */
static int on_table(const char *name, const char *kind, char *const *list, const char *t)
{
    size_t k = strlen(kind), tl = strlen(t), nl = strlen(name);
    if (strncmp(name, kind, k) || name[k] != ' ' || nl < k + 1 + 4 + tl)
        return 0;
    const char *tail = name + nl - tl - 4;
    if (memcmp(tail, " ON ", 4) || strcmp(tail + 4, t))
        return 0;
    char *x = strndup(name + k + 1, (size_t)(tail - (name + k + 1)));
    int hit = x && ysql_strv_has(list, x);
    free(x);
    return hit;
}

static int comment_or_acl_for(const char *name, const cat_table *t)
{
    size_t n;
    if (!strncmp(name, "TABLE ", 6))
        return is(name + 6, t->name);
    if (!strncmp(name, "SEQUENCE ", 9))
        return ysql_strv_has(t->sequences, name + 9);
    if (!strncmp(name, "INDEX ", 6))
        return ysql_strv_has(t->indexes, name + 6);
    if (!strncmp(name, "COLUMN ", 7)) {
        n = strlen(t->name);
        return !strncmp(name + 7, t->name, n) && name[7 + n] == '.';
    }
    return on_table(name, "CONSTRAINT", t->constraints, t->name) ||
           on_table(name, "TRIGGER", t->triggers, t->name) ||
           on_table(name, "POLICY", t->policies, t->name) ||
           on_table(name, "RULE", t->rules, t->name);
}

static int entry_for_table(const toc_entry *e, const cat_table *t)
{
    const char *ty = e->type, *nm = e->name;
    if (strcmp(e->schema, t->schema))
        return 0;
    if (is(ty, "TABLE") || is(ty, "TABLE ATTACH") || is(ty, "ROW SECURITY"))
        return is(nm, t->name);
    if (is(ty, "DEFAULT"))
        return table_pair(nm, t->name, t->columns);
    if (is(ty, "SEQUENCE") || is(ty, "SEQUENCE OWNED BY"))
        return ysql_strv_has(t->sequences, nm);
    if (is(ty, "CONSTRAINT") || is(ty, "FK CONSTRAINT") || is(ty, "CHECK CONSTRAINT"))
        return table_pair(nm, t->name, t->constraints);
    if (is(ty, "TRIGGER"))
        return table_pair(nm, t->name, t->triggers);
    if (is(ty, "POLICY"))
        return table_pair(nm, t->name, t->policies);
    if (is(ty, "RULE"))
        return table_pair(nm, t->name, t->rules);
    if (is(ty, "INDEX") || is(ty, "INDEX ATTACH"))
        return ysql_strv_has(t->indexes, nm);
    if (is(ty, "COMMENT") || is(ty, "ACL") || is(ty, "SECURITY LABEL"))
        return comment_or_acl_for(nm, t);
    return 0;
}

int toc_entry_wanted(const toc_entry *e, const catalog *c, const char *want)
{
    for (size_t i = 0; i < c->n; i++)
        if (want[i] && entry_for_table(e, &c->v[i]))
            return 1;
    return 0;
}
