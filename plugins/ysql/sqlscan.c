/* ysql plugin: reading the SQL of dump scripts - statements cut where psql
 * would cut them, tokens, and what a statement is about (its subject: the
 * table an ALTER TABLE, CREATE INDEX, COMMENT or GRANT names), so that script
 * entries are matched to tables by the names in their SQL, never by pg_dump's
 * "-- Name:" comments (which print a newline in a name as a space). */
#include "pure.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int ident_cont(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Length of a dollar-quote delimiter ($tag$ or $$) at p, 0 when there is none. */
static size_t dollar_tag(const char *p, const char *end)
{
    if (p >= end || *p != '$')
        return 0;
    const char *q = p + 1;
    if (q < end && ident_start((unsigned char)*q) && *q != '$') {
        while (q < end && ident_cont((unsigned char)*q) && *q != '$')
            q++;
    }
    return q < end && *q == '$' ? (size_t)(q - p + 1) : 0;
}

/* Skips whitespace and comments; returns the new position. */
static const char *skip_blank(const char *p, const char *end)
{
    for (;;) {
        while (p < end && is_space(*p))
            p++;
        if (p + 1 < end && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
            continue;
        }
        if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            int depth = 1;
            p += 2;
            while (p < end && depth) {
                if (p + 1 < end && p[0] == '/' && p[1] == '*')
                    depth++, p += 2;
                else if (p + 1 < end && p[0] == '*' && p[1] == '/')
                    depth--, p += 2;
                else
                    p++;
            }
            continue;
        }
        return p;
    }
}

/* One token from *pp (after blanks and comments). */
static sql_tok lex(const char **pp, const char *end)
{
    const char *p = skip_blank(*pp, end);
    sql_tok t = {.kind = SQL_END, .p = p, .len = 0};
    if (p >= end) {
        *pp = p;
        return t;
    }
    const char *s = p;
    unsigned char c = (unsigned char)*p;
    if ((c == 'E' || c == 'e') && p + 1 < end && p[1] == '\'') {
        /* E'...': backslash escapes */
        p += 2;
        while (p < end && *p != '\'') {
            if (*p == '\\' && p + 1 < end)
                p++;
            p++;
            if (p < end && *p == '\'' && p + 1 < end && p[1] == '\'')
                p += 2;
        }
        t.kind = SQL_STRING;
        p = p < end ? p + 1 : p;
    } else if (c == '\'') {
        for (p++; p < end; p++)
            if (*p == '\'') {
                if (p + 1 < end && p[1] == '\'')
                    p++;
                else
                    break;
            }
        t.kind = SQL_STRING;
        p = p < end ? p + 1 : p;
    } else if (c == '"') {
        for (p++; p < end; p++)
            if (*p == '"') {
                if (p + 1 < end && p[1] == '"')
                    p++;
                else
                    break;
            }
        t.kind = SQL_QUOTED;
        p = p < end ? p + 1 : p;
    } else if (c == '$' && dollar_tag(p, end)) {
        size_t n = dollar_tag(p, end);
        const char *q = p + n;
        while (q < end && !(*q == '$' && (size_t)(end - q) >= n && !memcmp(q, p, n)))
            q++;
        t.kind = SQL_STRING;
        p = q < end ? q + n : end;
    } else if (ident_start(c)) {
        while (p < end && ident_cont((unsigned char)*p))
            p++;
        t.kind = SQL_WORD;
    } else if (c >= '0' && c <= '9') {
        while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
                           (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            p++;
        t.kind = SQL_NUMBER;
    } else if (c == '$') {
        for (p++; p < end && *p >= '0' && *p <= '9';)
            p++;
        t.kind = SQL_PUNCT;
    } else {
        p++;
        t.kind = SQL_PUNCT;
    }
    t.len = (size_t)(p - s);
    *pp = p;
    return t;
}

int sql_is(const sql_tok *t, const char *word)
{
    if (t->kind != SQL_WORD || strlen(word) != t->len)
        return 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

static int punct(const sql_tok *t, char c)
{
    return t->kind == SQL_PUNCT && t->len == 1 && t->p[0] == c;
}

int sql_next(const char *text, size_t len, size_t *pos, sql_stmt *st)
{
    const char *end = text + len, *p = skip_blank(text + *pos, end);
    if (p >= end) {
        *pos = len;
        return 0;
    }
    st->start = (size_t)(p - text);
    st->meta = *p == '\\';
    if (st->meta) { /* a psql meta-command: to the end of its line */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
        st->end = *pos = (size_t)(p - text);
        return 1;
    }
    /* CREATE [OR REPLACE] FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END: the
     * semicolons of the body do not end the statement (as in psql) */
    int depth = 0, routine = 0, begins = 0, ntok = 0;
    for (;;) {
        sql_tok t = lex(&p, end);
        if (t.kind == SQL_END)
            break;
        ntok++;
        if (ntok <= 4 && (sql_is(&t, "function") || sql_is(&t, "procedure")))
            routine = 1;
        if (routine && (sql_is(&t, "begin") || sql_is(&t, "case")))
            begins++;
        else if (routine && begins && sql_is(&t, "end"))
            begins--;
        if (punct(&t, '('))
            depth++;
        else if (punct(&t, ')') && depth)
            depth--;
        else if (punct(&t, ';') && !depth && !begins)
            break;
        else if (punct(&t, '\\') && !depth) {
            p = t.p; /* a meta-command ends the statement before it */
            break;
        }
    }
    st->end = *pos = (size_t)(p - text);
    return 1;
}

char *sql_ident_value(const sql_tok *t)
{
    if (t->kind == SQL_QUOTED) {
        char *v = malloc(t->len), *o = v;
        if (!v)
            return NULL;
        for (size_t i = 1; i + 1 < t->len; i++) {
            *o++ = t->p[i];
            if (t->p[i] == '"' && t->p[i + 1] == '"')
                i++;
        }
        *o = '\0';
        return v;
    }
    if (t->kind != SQL_WORD)
        return NULL;
    char *v = strndup(t->p, t->len);
    for (char *c = v; v && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return v;
}

/* ---- statements as token streams ------------------------------------------------ */

typedef struct cur {
    const char *p, *end;
    sql_tok t; /* current token */
} cur;

static void adv(cur *c)
{
    c->t = lex(&c->p, c->end);
}

static void cur_init(cur *c, const char *s, size_t len)
{
    c->p = s;
    c->end = s + len;
    adv(c);
}

static int accept(cur *c, const char *word)
{
    if (!sql_is(&c->t, word))
        return 0;
    adv(c);
    return 1;
}

static int is_name(const sql_tok *t)
{
    return t->kind == SQL_WORD || t->kind == SQL_QUOTED;
}

/* A dotted name of up to three parts at the cursor. */
static int take_name(cur *c, char *parts[3], int *n)
{
    *n = 0;
    while (is_name(&c->t) && *n < 3) {
        if (!(parts[(*n)++] = sql_ident_value(&c->t)))
            return -1;
        adv(c);
        if (!punct(&c->t, '.'))
            break;
        adv(c);
    }
    return 0;
}

/* Moves to the first keyword `word` at parenthesis depth 0; 0 when none. */
static int seek_word(cur *c, const char *word)
{
    int depth = 0;
    for (; c->t.kind != SQL_END; adv(c)) {
        if (punct(&c->t, '('))
            depth++;
        else if (punct(&c->t, ')'))
            depth--;
        else if (!depth && sql_is(&c->t, word))
            return 1;
        else if (!depth && punct(&c->t, ';'))
            return 0;
    }
    return 0;
}

void sql_subject_free(sql_subject *s)
{
    free(s->schema);
    free(s->name);
    free(s->sub);
    *s = (sql_subject){0};
}

/* subject from a dotted name: schema.name[.sub] or name */
static int set_name(sql_subject *s, int kind, char *parts[3], int n, int has_sub)
{
    int base = has_sub ? n - 1 : n;
    s->kind = kind;
    if (base == 2) {
        s->schema = parts[0];
        s->name = parts[1];
    } else if (base == 1) {
        s->name = parts[0];
    } else {
        for (int i = 0; i < n; i++)
            free(parts[i]);
        s->kind = SQL_SUBJ_NONE;
        return 0;
    }
    if (has_sub && n > base)
        s->sub = parts[n - 1];
    for (int i = base + (has_sub ? 1 : 0); i < n; i++)
        free(parts[i]);
    return 0;
}

static int name_at(cur *c, sql_subject *s, int kind, int has_sub)
{
    char *parts[3] = {0};
    int n = 0;
    if (take_name(c, parts, &n) < 0) {
        for (int i = 0; i < n; i++)
            free(parts[i]);
        return -1;
    }
    return set_name(s, kind, parts, n, has_sub);
}

/* The kind of object after COMMENT ON / SECURITY LABEL ON / GRANT ... ON. */
static int object_clause(cur *c, sql_subject *s)
{
    if (accept(c, "table") || accept(c, "view"))
        return name_at(c, s, SQL_SUBJ_REL, 0);
    if (accept(c, "column"))
        return name_at(c, s, SQL_SUBJ_REL, 1);
    if (accept(c, "index"))
        return name_at(c, s, SQL_SUBJ_INDEX, 0);
    if (accept(c, "sequence"))
        return name_at(c, s, SQL_SUBJ_SEQUENCE, 0);
    if (accept(c, "schema"))
        return name_at(c, s, SQL_SUBJ_SCHEMA, 0);
    if (accept(c, "database"))
        return name_at(c, s, SQL_SUBJ_DATABASE, 0);
    if (sql_is(&c->t, "large")) {
        adv(c);
        if (accept(c, "object") && c->t.kind == SQL_NUMBER) {
            s->kind = SQL_SUBJ_LARGE_OBJECT;
            s->name = strndup(c->t.p, c->t.len);
            return s->name ? 0 : -1;
        }
        return 0;
    }
    if (accept(c, "constraint") || accept(c, "trigger") || accept(c, "policy") || accept(c, "rule")) {
        if (!is_name(&c->t))
            return 0;
        char *obj = sql_ident_value(&c->t);
        if (!obj)
            return -1;
        adv(c);
        if (!accept(c, "on") || sql_is(&c->t, "domain")) {
            free(obj);
            return 0;
        }
        int rc = name_at(c, s, SQL_SUBJ_REL, 0);
        if (rc == 0 && s->kind)
            s->sub = obj;
        else
            free(obj);
        return rc;
    }
    return 0;
}

/* "IF NOT EXISTS", skipped where it may stand */
static void skip_if_not_exists(cur *c)
{
    if (accept(c, "if")) {
        accept(c, "not");
        accept(c, "exists");
    }
}

/* CREATE ... (the word CREATE taken) */
static int create_subject(cur *c, sql_subject *s)
{
    if (accept(c, "or"))
        accept(c, "replace");
    accept(c, "unique");
    accept(c, "unlogged");
    accept(c, "constraint");
    int kind = accept(c, "table") ? SQL_SUBJ_REL
               : accept(c, "sequence") ? SQL_SUBJ_SEQUENCE
               : accept(c, "schema") ? SQL_SUBJ_SCHEMA
               : 0;
    if (kind) {
        skip_if_not_exists(c);
        return name_at(c, s, kind, 0);
    }
    if (accept(c, "index") || accept(c, "trigger") || accept(c, "policy")) {
        if (!seek_word(c, "on"))
            return 0;
        adv(c);
        accept(c, "only");
        return name_at(c, s, SQL_SUBJ_REL, 0);
    }
    if (accept(c, "rule")) {
        if (!seek_word(c, "to"))
            return 0;
        adv(c);
        return name_at(c, s, SQL_SUBJ_REL, 0);
    }
    return 0;
}

/* ALTER ... (the word ALTER taken) */
static int alter_subject(cur *c, sql_subject *s)
{
    int kind = accept(c, "table") ? SQL_SUBJ_REL
               : accept(c, "index") ? SQL_SUBJ_INDEX
               : accept(c, "sequence") ? SQL_SUBJ_SEQUENCE
               : 0;
    if (!kind) {
        if (accept(c, "large") && accept(c, "object") && c->t.kind == SQL_NUMBER) {
            s->kind = SQL_SUBJ_LARGE_OBJECT;
            s->name = strndup(c->t.p, c->t.len);
            return s->name ? 0 : -1;
        }
        return 0;
    }
    if (accept(c, "if"))
        accept(c, "exists");
    accept(c, "only");
    if (name_at(c, s, kind, 0) < 0)
        return -1;
    if (s->kind && accept(c, "attach") && accept(c, "partition")) {
        /* the attached partition (or its index) is what the entry is about */
        sql_subject_free(s);
        return name_at(c, s, kind, 0);
    }
    return 0;
}

/* SELECT ... (the word SELECT taken): pg_dump creates a large object with
 * SELECT pg_catalog.lo_create('OID') */
static int select_subject(cur *c, sql_subject *s)
{
    if (accept(c, "pg_catalog") && punct(&c->t, '.')) {
        adv(c);
        if (accept(c, "lo_create") && punct(&c->t, '(')) {
            adv(c);
            if (c->t.kind == SQL_STRING && c->t.len > 2) {
                s->kind = SQL_SUBJ_LARGE_OBJECT;
                s->name = strndup(c->t.p + 1, c->t.len - 2);
                return s->name ? 0 : -1;
            }
        }
    }
    return 0;
}

int sql_subject_of(const char *stmt, size_t len, sql_subject *s)
{
    *s = (sql_subject){0};
    cur c;
    cur_init(&c, stmt, len);
    if (accept(&c, "create"))
        return create_subject(&c, s);
    if (accept(&c, "alter"))
        return alter_subject(&c, s);
    if (accept(&c, "comment"))
        return accept(&c, "on") ? object_clause(&c, s) : 0;
    if (accept(&c, "security")) {
        if (!accept(&c, "label") || !seek_word(&c, "on"))
            return 0;
        adv(&c);
        return object_clause(&c, s);
    }
    if (accept(&c, "grant") || accept(&c, "revoke")) {
        if (!seek_word(&c, "on"))
            return 0;
        adv(&c);
        return object_clause(&c, s);
    }
    if (accept(&c, "select"))
        return select_subject(&c, s);
    return 0;
}

/* ---- roles ---------------------------------------------------------------------- */

char *sql_owner_of(const char *stmt, size_t len)
{
    cur c;
    cur_init(&c, stmt, len);
    if (!sql_is(&c.t, "alter"))
        return NULL;
    /* ALTER <object> ... OWNER TO role; the last three tokens */
    sql_tok a = {0}, b = {0}, d = {0};
    for (; c.t.kind != SQL_END && !punct(&c.t, ';'); adv(&c)) {
        a = b;
        b = d;
        d = c.t;
    }
    if (!sql_is(&a, "owner") || !sql_is(&b, "to") || !is_name(&d))
        return NULL;
    return sql_ident_value(&d);
}

/* Adds each role name of a comma-separated list at the cursor (PUBLIC and
 * CURRENT_USER-like words left out) by calling add. */
static int role_list(cur *c, int (*add)(void *ud, const char *role), void *ud)
{
    for (;;) {
        accept(c, "group");
        if (!is_name(&c->t))
            return 0;
        if (c->t.kind == SQL_WORD && (sql_is(&c->t, "public") || sql_is(&c->t, "current_user") ||
                                      sql_is(&c->t, "session_user") || sql_is(&c->t, "current_role"))) {
            adv(c);
        } else {
            char *r = sql_ident_value(&c->t);
            int rc = r ? add(ud, r) : -1;
            free(r);
            if (rc < 0)
                return -1;
            adv(c);
        }
        if (!punct(&c->t, ','))
            return 0;
        adv(c);
    }
}

int sql_roles_granted(const char *stmt, size_t len, int (*add)(void *ud, const char *role), void *ud)
{
    cur c;
    cur_init(&c, stmt, len);
    if (accept(&c, "set")) { /* SET SESSION AUTHORIZATION grantor (grants by another role) */
        if (accept(&c, "session") && accept(&c, "authorization"))
            return role_list(&c, add, ud);
        if (accept(&c, "role"))
            return role_list(&c, add, ud);
        return 0;
    }
    if (accept(&c, "alter")) { /* ALTER DEFAULT PRIVILEGES FOR ROLE r ... GRANT ... TO r */
        if (!accept(&c, "default") || !accept(&c, "privileges"))
            return 0;
        if (accept(&c, "for")) {
            if (!accept(&c, "role"))
                accept(&c, "user");
            if (role_list(&c, add, ud) < 0)
                return -1;
        }
        int grant = seek_word(&c, "grant");
        cur g = c;
        if (!grant) {
            cur_init(&g, stmt, len);
            if (!seek_word(&g, "revoke"))
                return 0;
        }
        if (!seek_word(&g, grant ? "to" : "from"))
            return 0;
        adv(&g);
        return role_list(&g, add, ud);
    }
    if (accept(&c, "grant")) {
        if (!seek_word(&c, "to"))
            return 0;
        adv(&c);
        return role_list(&c, add, ud);
    }
    if (accept(&c, "revoke")) {
        if (!seek_word(&c, "from"))
            return 0;
        adv(&c);
        return role_list(&c, add, ud);
    }
    if (accept(&c, "create") && accept(&c, "policy")) { /* ... TO role, ... */
        if (!seek_word(&c, "to"))
            return 0;
        adv(&c);
        return role_list(&c, add, ud);
    }
    return 0;
}

/* ---- index builds that may run on their own connection ------------------------------ */

int sql_index_build(const char *stmt, size_t len)
{
    cur c;
    cur_init(&c, stmt, len);
    if (accept(&c, "create")) {
        accept(&c, "unique");
        if (!accept(&c, "index") || sql_is(&c.t, "concurrently"))
            return SQL_BUILD_NONE;
        skip_if_not_exists(&c);
        if (!is_name(&c.t))
            return SQL_BUILD_NONE;
        adv(&c);
        if (!accept(&c, "on") || sql_is(&c.t, "only") || !is_name(&c.t))
            return SQL_BUILD_NONE; /* ON ONLY: a partitioned table's own index */
        return SQL_BUILD_SHARED;
    }
    if (!accept(&c, "alter") || !accept(&c, "table") || !accept(&c, "only"))
        return SQL_BUILD_NONE;
    char *parts[3] = {0};
    int n = 0;
    int rc = take_name(&c, parts, &n);
    for (int i = 0; i < n; i++)
        free(parts[i]);
    if (rc < 0 || !n || !accept(&c, "add") || !accept(&c, "constraint") || !is_name(&c.t))
        return SQL_BUILD_NONE;
    adv(&c);
    int key = (accept(&c, "primary") && accept(&c, "key")) || accept(&c, "unique");
    /* a column list must follow: not USING INDEX (an index that exists already) */
    return key && punct(&c.t, '(') ? SQL_BUILD_EXCLUSIVE : SQL_BUILD_NONE;
}
