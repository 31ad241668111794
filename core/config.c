/* INI configuration: parse with inih through a reader that counts lines (Debian's
 * inih passes no line numbers to the handler), expand ${VAR}, keep file:line per key. */
#include "config.h"

#include "secure.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct parse_ctx {
    cfg_file *c;
    errlist *errs;
    FILE *f;
    int line;       /* line most recently handed to inih */
    int cur;        /* index of the section being filled, -1 before any */
} parse_ctx;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static const char *known_kinds[] = {"arca", "source", "destination", "pipeline"};

static void add_section(parse_ctx *p, char *header)
{
    cfg_file *c = p->c;
    char *h = trim(header);
    char *sp = h;
    while (*sp && !isspace((unsigned char)*sp))
        sp++;
    char *name = NULL;
    if (*sp) {
        *sp = 0;
        name = trim(sp + 1);
        if (!*name)
            name = NULL;
    }
    int known = 0;
    for (size_t i = 0; i < 4; i++)
        known |= !strcmp(h, known_kinds[i]);
    if (!known)
        errlist_add(p->errs, "%s:%d: unknown section [%s%s%s] (expected [arca], [source NAME], [destination NAME] or [pipeline NAME])",
                    c->path, p->line, h, name ? " " : "", name ? name : "");
    else if (!strcmp(h, "arca") && name)
        errlist_add(p->errs, "%s:%d: [arca] takes no name", c->path, p->line);
    else if (strcmp(h, "arca") && !name)
        errlist_add(p->errs, "%s:%d: [%s] needs a name, e.g. [%s main]", c->path, p->line, h, h);
    else if (name && strpbrk(name, " \t,"))
        errlist_add(p->errs, "%s:%d: section name '%s' may not contain spaces or commas", c->path, p->line, name);
    for (size_t i = 0; i < c->n; i++) {
        if (!strcmp(c->sec[i].kind, h) && ((!name && !c->sec[i].name) ||
                                           (name && c->sec[i].name && !strcmp(name, c->sec[i].name)))) {
            errlist_add(p->errs, "%s:%d: duplicate section [%s%s%s] (first at line %d)", c->path, p->line, h,
                        name ? " " : "", name ? name : "", c->sec[i].line);
            break;
        }
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->sec = xrealloc(c->sec, c->cap * sizeof *c->sec);
    }
    cfg_section *s = &c->sec[c->n];
    memset(s, 0, sizeof *s);
    s->kind = xstrdup(h);
    s->name = xstrdup(name);
    s->label = name ? xasprintf("[%s %s]", h, name) : xasprintf("[%s]", h);
    s->line = p->line;
    p->cur = (int)c->n++;
}

/* fgets-style reader for inih: counts lines and notices section headers itself,
 * so that empty sections exist and every key knows its line. */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    if (!fgets(str, num, p->f))
        return NULL;
    p->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(p->f)) {
        errlist_add(p->errs, "%s:%d: line longer than %d characters", p->c->path, p->line, num - 2);
        int ch;
        while ((ch = fgetc(p->f)) != EOF && ch != '\n')
            ;
        str[0] = '\n';
        str[1] = 0;
        return str;
    }
    char *s = str;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end) {
            char *hdr = strndup(s + 1, (size_t)(end - s - 1));
            add_section(p, hdr);
            free(hdr);
        }
    }
    return str;
}

/* Expand ${VAR} (and $$ to $). Returns NULL after recording an error. */
static char *expand(parse_ctx *p, const char *key, const char *v)
{
    size_t cap = strlen(v) + 64, n = 0;
    char *out = xmalloc(cap);
    for (const char *s = v; *s;) {
        const char *add = s;
        size_t alen = 1;
        char *var = NULL;
        if (s[0] == '$' && s[1] == '$') {
            alen = 1;
            s += 2;
        } else if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            if (!end) {
                errlist_add(p->errs, "%s:%d: %s: %s: unterminated ${ in value", p->c->path, p->line, p->c->sec[p->cur].label, key);
                free(out);
                return NULL;
            }
            var = strndup(s + 2, (size_t)(end - s - 2));
            add = getenv(var);
            if (!add) {
                errlist_add(p->errs, "%s:%d: %s: %s: environment variable '%s' is not set", p->c->path, p->line,
                            p->c->sec[p->cur].label, key, var);
                free(var);
                free(out);
                return NULL;
            }
            alen = strlen(add);
            s = end + 1;
        } else {
            s++;
        }
        free(var);
        if (n + alen + 1 > cap)
            out = xrealloc(out, cap = (n + alen + 1) * 2);
        memcpy(out + n, add, alen);
        n += alen;
    }
    out[n] = 0;
    return out;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    (void)section;
    if (p->cur < 0) {
        errlist_add(p->errs, "%s:%d: key '%s' outside any section", p->c->path, p->line, name);
        return 1;
    }
    char *v = expand(p, name, value ? value : "");
    if (!v)
        return 1;
    cfg_section *s = &p->c->sec[p->cur];
    if (s->nkv == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->kv = xrealloc(s->kv, s->cap * sizeof *s->kv);
    }
    s->kv[s->nkv++] = (opt_kv){xstrdup(name), v, p->c->path, p->line};
    return 1;
}

cfg_file *cfg_load(const char *path, errlist *errs)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errlist_add(errs, "%s: cannot read config file: %s", path, strerror(errno));
        return NULL;
    }
    cfg_file *c = xcalloc(1, sizeof *c);
    c->path = xstrdup(path);
    parse_ctx p = {c, errs, f, 0, -1};
    /* Debian's inih reads into a fixed 200-byte buffer unless told to grow it. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_initial_alloc = 1024;
    ini_max_line = 65536;
    ini_allow_multiline = false;
    int rc = ini_parse_stream(reader, &p, handler, &p);
    fclose(f);
    if (rc > 0)
        errlist_add(errs, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
    else if (rc < 0)
        errlist_add(errs, "%s: cannot parse config file", path);
    for (size_t i = 0; i < c->n; i++) {
        /* the same key twice in one section is almost always a mistake */
        cfg_section *s = &c->sec[i];
        for (size_t a = 0; a < s->nkv; a++)
            for (size_t b = a + 1; b < s->nkv; b++)
                if (!strcmp(s->kv[a].key, s->kv[b].key)) {
                    errlist_add(errs, "%s:%d: %s: key '%s' given twice (first at line %d)", path, s->kv[b].line,
                                s->label, s->kv[b].key, s->kv[a].line);
                    break;
                }
    }
    return c;
}

void cfg_free(cfg_file *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        cfg_section *s = &c->sec[i];
        for (size_t k = 0; k < s->nkv; k++) {
            free((char *)s->kv[k].key);
            explicit_bzero((char *)s->kv[k].value, strlen(s->kv[k].value));
            free((char *)s->kv[k].value);
        }
        free(s->kv);
        free(s->kind);
        free(s->name);
        free(s->label);
    }
    free(c->sec);
    free(c->path);
    free(c);
}

cfg_section *cfg_find(cfg_file *c, const char *kind, const char *name)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->sec[i].kind, kind) &&
            ((!name && !c->sec[i].name) || (name && c->sec[i].name && !strcmp(c->sec[i].name, name))))
            return &c->sec[i];
    return NULL;
}

const opt_kv *cfg_get(const cfg_section *s, const char *key)
{
    const opt_kv *r = NULL;
    for (size_t i = 0; s && i < s->nkv; i++)
        if (!strcmp(s->kv[i].key, key))
            r = &s->kv[i];
    return r;
}

const char *cfg_locate(const char *explicit_path, errlist *errs)
{
    const char *path = explicit_path;
    if (!path) {
        const char *e = getenv("ARCA_CONFIG");
        if (e && *e)
            path = e;
        else if (access("arca.ini", F_OK) == 0)
            path = "arca.ini";
        else if (access("/etc/arca/arca.ini", F_OK) == 0)
            path = "/etc/arca/arca.ini";
        else
            return NULL;
    }
    if (access(path, F_OK) != 0)
        return path; /* cfg_load says why it cannot be read */
    /* it may name plugins to load and run: only its owner (root or us) may write it */
    char *why = path_untrusted(path, 0);
    if (why) {
        errlist_add(errs, "refusing config file %s: %s", path, why);
        free(why);
        return NULL;
    }
    return path;
}

char **cfg_split_list(const char *s, size_t *n)
{
    size_t cap = 4, k = 0;
    char **v = xmalloc(cap * sizeof *v);
    char *copy = xstrdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (!*t)
            continue;
        if (k + 2 > cap)
            v = xrealloc(v, (cap *= 2) * sizeof *v);
        v[k++] = xstrdup(t);
    }
    v[k] = NULL;
    free(copy);
    if (n)
        *n = k;
    return v;
}

void cfg_free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}
