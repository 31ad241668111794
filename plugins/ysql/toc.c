/* ysql plugin: a plain pg_dump/ysql_dump script cut into its table-of-contents
 * entries, and the rule that picks the entries of chosen tables for a
 * table-level restore. pg_dump has printed the same entry header,
 *     --
 *     -- Name: NAME; Type: TYPE; Schema: SCHEMA; Owner: OWNER
 *     --
 * for every entry since long before PostgreSQL 11, and ysql_dump inherits it.
 * The header prints a newline in a name as a space, so it only cuts the
 * script and names entries in messages: which table an entry belongs to is
 * read from its SQL (sqlscan.c). */
#include "pure.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    const char *ts = ow ? find_first(ow, e, "; Tablespace: ") : NULL;
    t->owner = ow ? dup_range(ow + (ow + 9 <= e ? 9 : 8), ts ? ts : e) : strdup("");
    return t->name && t->type && t->schema && t->owner ? 0 : -1;
}

static void entry_free(toc_entry *t)
{
    free(t->name);
    free(t->type);
    free(t->schema);
    free(t->owner);
    sql_subject_free(&t->subject);
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

static int is(const char *a, const char *b)
{
    return !strcmp(a, b);
}

/* SET ... and SELECT pg_catalog.set_config(...) set up a session; they are not what an entry is about */
static int setup_statement(const char *p, size_t n)
{
    return (n >= 4 && !strncasecmp(p, "SET ", 4)) || (n >= 6 && !strncasecmp(p, "RESET ", 6)) ||
           (n >= 29 && !strncmp(p, "SELECT pg_catalog.set_config(", 29));
}

int toc_entry_subject(const toc_script *s, toc_entry *e)
{
    if (e->subject_done)
        return 0;
    size_t pos = e->start;
    sql_stmt st;
    while (sql_next(s->text, e->end, &pos, &st)) {
        const char *p = s->text + st.start;
        size_t n = st.end - st.start;
        if (st.meta || setup_statement(p, n))
            continue;
        if (sql_subject_of(p, n, &e->subject) < 0)
            return -1;
        if (e->subject.kind != SQL_SUBJ_NONE)
            break;
    }
    if (e->subject.kind != SQL_SUBJ_NONE && !e->subject.schema && strcmp(e->schema, "-") &&
        e->subject.kind != SQL_SUBJ_SCHEMA && e->subject.kind != SQL_SUBJ_LARGE_OBJECT &&
        e->subject.kind != SQL_SUBJ_DATABASE && !(e->subject.schema = strdup(e->schema)))
        return -1;
    e->subject_done = 1;
    return 0;
}

/* The types pg_dump (11 to 17) files under post-data; CHECK CONSTRAINT is a
 * NOT VALID check dumped apart from its table or domain. */
static const char *const post_types[] = {
    "INDEX", "INDEX ATTACH", "STATISTICS", "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "TRIGGER",
    "EVENT TRIGGER", "RULE", "POLICY", "ROW SECURITY", "MATERIALIZED VIEW DATA", "PUBLICATION",
    "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "SUBSCRIPTION TABLE",
    "DEFAULT ACL", NULL,
};

/* ... and types that only ever are pre-data: one of them after the cut means
 * the script is not ordered the way the cut assumes. */
static const char *const pre_types[] = {
    "SCHEMA", "EXTENSION", "TYPE", "DOMAIN", "FUNCTION", "PROCEDURE", "AGGREGATE", "TABLE",
    "TABLE ATTACH", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "SEQUENCE OWNED BY", "DEFAULT",
    "FOREIGN TABLE", "COLLATION", "CONVERSION", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY",
    "CAST", "TRANSFORM", "PROCEDURAL LANGUAGE", "SERVER", "FOREIGN DATA WRAPPER", "USER MAPPING",
    "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER",
    "TEXT SEARCH TEMPLATE", "ACCESS METHOD", "BLOB", "LARGE OBJECT", NULL,
};

static int in_list(const char *const *list, const char *t)
{
    for (; *list; list++)
        if (is(*list, t))
            return 1;
    return 0;
}

int toc_is_post_data(const toc_script *s, const toc_entry *e)
{
    (void)s;
    return in_list(post_types, e->type);
}

long toc_post_data_start(const toc_script *s)
{
    size_t cut = s->n;
    for (size_t i = 0; i < s->n && cut == s->n; i++)
        if (toc_is_post_data(s, &s->v[i]))
            cut = i;
    for (size_t i = cut; i < s->n; i++)
        if (in_list(pre_types, s->v[i].type))
            return -1;
    return (long)cut;
}

int toc_is_large_object(const toc_script *s, toc_entry *e)
{
    if (is(e->type, "BLOB") || is(e->type, "LARGE OBJECT") || is(e->type, "BLOBS"))
        return 1;
    if (!is(e->type, "COMMENT") && !is(e->type, "ACL") && !is(e->type, "SECURITY LABEL"))
        return 0;
    if (toc_entry_subject(s, e) < 0)
        return -1;
    return e->subject.kind == SQL_SUBJ_LARGE_OBJECT;
}

/* Appends an entry's SET statements only (what it sets up for the entries after it). */
static void emit_setup_only(const toc_script *s, const toc_entry *e, pc_buf *out)
{
    size_t pos = e->start;
    sql_stmt st;
    while (sql_next(s->text, e->end, &pos, &st))
        if (!st.meta && setup_statement(s->text + st.start, st.end - st.start)) {
            pc_buf_add(out, s->text + st.start, st.end - st.start);
            pc_buf_str(out, "\n");
        }
}

size_t toc_emit(const toc_script *s, const char *keep, int no_owner, pc_buf *out)
{
    return toc_emit_grouped(s, keep, no_owner, 0, out);
}

size_t toc_emit_grouped(const toc_script *s, const char *keep, int no_owner, size_t per_tx, pc_buf *out)
{
    size_t kept = 0;
    pc_buf_add(out, s->text, s->preamble_end);
    for (size_t i = 0; i < s->n; i++) {
        const toc_entry *e = &s->v[i];
        if (keep && !keep[i])
            continue;
        if (keep && keep[i] == 2) {
            emit_setup_only(s, e, out);
            continue;
        }
        if (per_tx && kept % per_tx == 0)
            pc_buf_str(out, kept ? "\nCOMMIT;\nBEGIN;\n" : "\nBEGIN;\n");
        kept++;
        if (!no_owner) {
            pc_buf_add(out, s->text + e->start, e->end - e->start);
            continue;
        }
        /* copy the entry but its OWNER TO statements (whitespace between statements kept) */
        size_t pos = e->start, from = e->start;
        sql_stmt st;
        while (sql_next(s->text, e->end, &pos, &st)) {
            char *owner = st.meta ? NULL : sql_owner_of(s->text + st.start, st.end - st.start);
            if (owner) {
                pc_buf_add(out, s->text + from, st.start - from);
                from = st.end;
                free(owner);
            }
        }
        pc_buf_add(out, s->text + from, e->end - from);
    }
    if (per_tx && kept)
        pc_buf_str(out, "\nCOMMIT;\n");
    pc_buf_add(out, s->text + s->trailer_start, s->len - s->trailer_start);
    return kept;
}

/* ---- index builds apart from the rest of the post-data ------------------------------ */

static int prefix_ci(const char *p, size_t n, const char *want)
{
    size_t w = strlen(want);
    return n >= w && !strncasecmp(p, want, w);
}

/* A statement that changes who runs what follows: the script then stays whole. */
static int role_switch(const char *p, size_t n)
{
    return prefix_ci(p, n, "SET ROLE") || prefix_ci(p, n, "SET SESSION AUTHORIZATION") ||
           prefix_ci(p, n, "RESET ROLE") || prefix_ci(p, n, "RESET SESSION AUTHORIZATION") ||
           prefix_ci(p, n, "SET SESSION ROLE") || prefix_ci(p, n, "SET LOCAL ROLE");
}

/* The one statement of an index or constraint entry that builds an index on
 * an ordinary table of the catalog (not partitioned, not a partition): 1 and
 * *b filled, 0 when the entry is not such a build, -1 oom. */
static int entry_build(const toc_script *s, toc_entry *e, catalog *c, toc_build *b)
{
    if (strcmp(e->type, "INDEX") && strcmp(e->type, "CONSTRAINT"))
        return 0;
    size_t pos = e->start, mains = 0;
    sql_stmt st, main = {0};
    while (sql_next(s->text, e->end, &pos, &st)) {
        if (st.meta)
            return 0;
        if (!setup_statement(s->text + st.start, st.end - st.start) && mains++ == 0)
            main = st;
    }
    if (mains != 1)
        return 0;
    int kind = sql_index_build(s->text + main.start, main.end - main.start);
    if (kind == SQL_BUILD_NONE)
        return 0;
    if (toc_entry_subject(s, e) < 0)
        return -1;
    if (e->subject.kind != SQL_SUBJ_REL || !e->subject.schema || !e->subject.name)
        return 0;
    cat_table *t = cat_find(c, e->subject.schema, e->subject.name);
    if (!t || t->kind != 'r' || t->parent_name)
        return 0;
    b->start = main.start;
    b->end = main.end;
    b->table = t;
    b->exclusive = kind == SQL_BUILD_EXCLUSIVE;
    return 1;
}

int toc_post_split(const toc_script *s, char *keep, catalog *c, pc_buf *setup, toc_build **builds,
                   size_t *nbuilds)
{
    *builds = NULL;
    *nbuilds = 0;
    /* every statement of the preamble sets the session up; nobody switches roles */
    size_t pos = 0;
    sql_stmt st;
    while (sql_next(s->text, s->len, &pos, &st)) {
        const char *p = s->text + st.start;
        size_t n = st.end - st.start;
        if (role_switch(p, n) || (st.end <= s->preamble_end && !st.meta && !setup_statement(p, n)))
            return 0;
    }
    toc_build *v = calloc(s->n ? s->n : 1, sizeof *v);
    if (!v)
        return -1;
    size_t nv = 0, ts_start = 0, ts_end = 0;
    pos = 0;
    /* statements in script order: the SET default_tablespace in effect before each build */
    for (size_t i = 0; i <= s->n; i++) {
        size_t upto = i < s->n ? s->v[i].start : s->len;
        while (sql_next(s->text, upto, &pos, &st))
            if (!st.meta && prefix_ci(s->text + st.start, st.end - st.start, "SET default_tablespace"))
                ts_start = st.start, ts_end = st.end;
        if (i == s->n || keep[i] != 1)
            continue;
        int k = entry_build(s, &s->v[i], c, &v[nv]);
        if (k < 0) {
            free(v);
            return -1;
        }
        if (k) {
            v[nv].entry = i;
            v[nv].ts_start = ts_start;
            v[nv].ts_end = ts_end;
            nv++;
        }
    }
    for (size_t i = 0; i < nv; i++)
        keep[v[i].entry] = 2;
    for (pos = 0; sql_next(s->text, s->preamble_end, &pos, &st);)
        if (!st.meta) {
            pc_buf_add(setup, s->text + st.start, st.end - st.start);
            pc_buf_str(setup, "\n");
        }
    if (setup->oom) {
        free(v);
        return -1;
    }
    *builds = v;
    *nbuilds = nv;
    return 0;
}

typedef struct role_sink {
    int (*add)(void *ud, const char *role, char use);
    void *ud;
    char use;
} role_sink;

static int role_add(void *ud, const char *role)
{
    role_sink *r = ud;
    return r->add(r->ud, role, r->use);
}

int toc_roles(const toc_script *s, int (*add)(void *ud, const char *role, char use), void *ud)
{
    for (size_t i = 0; i < s->n; i++) {
        const toc_entry *e = &s->v[i];
        int acl = is(e->type, "ACL") || is(e->type, "DEFAULT ACL");
        int policy = is(e->type, "POLICY");
        /* the header's owner is the object's owner: it gets an OWNER TO (or owns the ACL's object) */
        if (*e->owner && strcmp(e->owner, "-") && !acl && add(ud, e->owner, 'o') < 0)
            return -1;
        size_t pos = e->start;
        sql_stmt st;
        while (sql_next(s->text, e->end, &pos, &st)) {
            if (st.meta)
                continue;
            const char *p = s->text + st.start;
            size_t n = st.end - st.start;
            char *owner = sql_owner_of(p, n);
            int rc = owner ? add(ud, owner, 'o') : 0;
            free(owner);
            role_sink rs = {add, ud, acl ? 'a' : 'p'};
            if (rc == 0 && (acl || policy))
                rc = sql_roles_granted(p, n, role_add, &rs);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int is_table_type(const char *ty)
{
    static const char *const types[] = {
        "TABLE", "TABLE ATTACH", "ROW SECURITY", "DEFAULT", "SEQUENCE", "SEQUENCE OWNED BY",
        "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "TRIGGER", "POLICY", "RULE", "INDEX",
        "INDEX ATTACH", "COMMENT", "ACL", "SECURITY LABEL", NULL,
    };
    return in_list(types, ty);
}

int toc_entry_wanted(const toc_script *s, toc_entry *e, catalog *c, const char *want)
{
    if (!is_table_type(e->type))
        return 0;
    if (toc_entry_subject(s, e) < 0)
        return -1;
    const sql_subject *j = &e->subject;
    if (!j->schema || !j->name)
        return 0;
    cat_table *t = NULL;
    switch (j->kind) {
    case SQL_SUBJ_REL:
        t = cat_find(c, j->schema, j->name);
        break;
    case SQL_SUBJ_INDEX:
        t = cat_find_index(c, j->schema, j->name);
        break;
    case SQL_SUBJ_SEQUENCE:
        t = cat_find_sequence(c, j->schema, j->name);
        break;
    default:
        return 0;
    }
    return t && want[t - c->v];
}
