/* ysql plugin: identifiers, literals, conninfo values, psql-style names and
 * patterns, and the archive names of tables. */
#include "pure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ysql_buf_ident(pc_buf *b, const char *name)
{
    pc_buf_add(b, "\"", 1);
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            pc_buf_add(b, "\"", 1);
        pc_buf_add(b, p, 1);
    }
    pc_buf_add(b, "\"", 1);
}

void ysql_buf_literal(pc_buf *b, const char *text)
{
    pc_buf_add(b, "'", 1);
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            pc_buf_add(b, "'", 1);
        pc_buf_add(b, p, 1);
    }
    pc_buf_add(b, "'", 1);
}

char *ysql_qualified(const char *schema, const char *name)
{
    pc_buf b = {0};
    ysql_buf_ident(&b, schema);
    pc_buf_add(&b, ".", 1);
    ysql_buf_ident(&b, name);
    return pc_buf_take(&b);
}

void ysql_buf_conninfo(pc_buf *b, const char *key, const char *value)
{
    if (b->len)
        pc_buf_add(b, " ", 1);
    pc_buf_str(b, key);
    pc_buf_add(b, "='", 2);
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            pc_buf_add(b, "\\", 1);
        pc_buf_add(b, p, 1);
    }
    pc_buf_add(b, "'", 1);
}

static void set_err(char *err, size_t errlen, const char *msg, const char *text)
{
    if (errlen)
        snprintf(err, errlen, "%s in '%s'", msg, text);
}

/* One dot-separated part of a name or pattern starting at *pp; stops at an
 * unquoted '.' or the end. `regex` selects pattern translation. */
static int scan_part(const char **pp, pc_buf *out, int regex)
{
    const char *p = *pp;
    int inquotes = 0;
    if (regex)
        pc_buf_str(out, "^(");
    for (; *p; p++) {
        char ch = *p;
        if (ch == '"') {
            if (inquotes && p[1] == '"') {
                pc_buf_add(out, "\"", 1);
                p++;
            } else {
                inquotes = !inquotes;
            }
        } else if (!inquotes && ch == '.') {
            break;
        } else if (inquotes || !regex) {
            if (!inquotes && ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (regex && strchr("|*+?()[]{}.^$\\", ch))
                pc_buf_add(out, "\\", 1);
            pc_buf_add(out, &ch, 1);
        } else if (ch == '*') {
            pc_buf_str(out, ".*");
        } else if (ch == '?') {
            pc_buf_add(out, ".", 1);
        } else if (ch == '$') {
            pc_buf_str(out, "\\$");
        } else {
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            pc_buf_add(out, &ch, 1);
        }
    }
    if (regex)
        pc_buf_str(out, ")$");
    *pp = p;
    return inquotes ? -1 : 0;
}

/* Shared by names and patterns: one or two parts. */
static int split_two(const char *text, int regex, char **first, char **second, char *err,
                     size_t errlen)
{
    *first = *second = NULL;
    pc_buf a = {0}, b = {0};
    const char *p = text;
    const char *why = NULL;
    int two = 0;
    size_t empty_len = regex ? 4 : 0; /* "^()$" */
    if (scan_part(&p, &a, regex) < 0)
        why = "unbalanced double quote";
    else if (*p == '.') {
        two = 1;
        p++;
        if (scan_part(&p, &b, regex) < 0)
            why = "unbalanced double quote";
        else if (*p == '.')
            why = "too many dotted names (use schema.table)";
        else if (a.len == empty_len || b.len == empty_len)
            why = "empty schema or table name";
    } else if (a.len == empty_len) {
        why = "empty name";
    }
    if (!why && (a.oom || b.oom))
        why = "out of memory";
    if (why) {
        set_err(err, errlen, why, text);
        pc_buf_free(&a);
        pc_buf_free(&b);
        return -1;
    }
    if (two) {
        *first = pc_buf_take(&a);
        *second = pc_buf_take(&b);
    } else {
        *second = pc_buf_take(&a);
    }
    return 0;
}

int ysql_parse_qualified(const char *text, char **schema, char **name, char *err, size_t errlen)
{
    return split_two(text, 0, schema, name, err, errlen);
}

int ysql_pattern_regex(const char *pattern, char **schema_re, char **name_re, char *err,
                       size_t errlen)
{
    return split_two(pattern, 1, schema_re, name_re, err, errlen);
}

void ysql_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int ysql_strv_has(char *const *v, const char *s)
{
    for (; v && *v; v++)
        if (!strcmp(*v, s))
            return 1;
    return 0;
}

int ysql_split_list(const char *list, char ***items)
{
    size_t cap = 2, n = 0;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    const char *p = list;
    while (*p) {
        const char *b = p;
        int inq = 0;
        while (*p && (inq || *p != ','))
            inq ^= *p++ == '"';
        if (inq) {
            ysql_strv_free(v);
            return -1;
        }
        const char *e = p;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b && !(v[n++] = strndup(b, (size_t)(e - b)))) {
            ysql_strv_free(v);
            return -1;
        }
        if (*p)
            p++;
    }
    *items = v;
    return (int)n;
}

static void buf_component(pc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_' || *p == '-') {
            pc_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            pc_buf_add(b, e, 3);
        }
    }
}

char *ysql_object_component(const char *schema, const char *name)
{
    pc_buf b = {0};
    buf_component(&b, schema);
    pc_buf_add(&b, ".", 1);
    buf_component(&b, name);
    return pc_buf_take(&b);
}
