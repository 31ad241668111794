/* Validates key=value pairs against a plugin's option table and fills its config struct:
 * the plugin declares, the core parses, so no plugin ever parses option strings. */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const arca_option *opt_find(const arca_option *table, const char *name)
{
    for (const arca_option *o = table; o && o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

const char *opt_type_name(arca_opt_type t)
{
    switch (t) {
    case ARCA_OPT_STRING: return "string";
    case ARCA_OPT_INT: return "integer";
    case ARCA_OPT_BOOL: return "bool";
    case ARCA_OPT_SIZE: return "size";
    case ARCA_OPT_ENUM: return "enum";
    }
    return "?";
}

/* "file:line: label" for a key, "file:line: label" for the section itself. */
static char *where(const char *file, int line, const char *label)
{
    if (file)
        return xasprintf("%s:%d: %s", file, line, label ? label : "");
    return xstrdup(label ? label : "");
}

static char *known_keys(const arca_option *table)
{
    size_t len = 1;
    for (const arca_option *o = table; o && o->name; o++)
        len += strlen(o->name) + 2;
    char *s = xmalloc(len);
    s[0] = 0;
    for (const arca_option *o = table; o && o->name; o++) {
        if (s[0])
            strcat(s, ", ");
        strcat(s, o->name);
    }
    return s;
}

static char *read_secret_file(const char *path, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 256, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = 0;
    return buf;
}

/* Parse one value into its slot. Returns NULL on success or an explanation. */
static const char *set_value(const arca_option *o, void *cfg, const char *v, char **owned)
{
    char *slot = (char *)cfg + o->offset;
    switch (o->type) {
    case ARCA_OPT_STRING: {
        char *copy = xstrdup(v);
        free(*owned);
        *owned = copy;
        memcpy(slot, &copy, sizeof copy);
        return NULL;
    }
    case ARCA_OPT_INT: {
        int64_t x;
        if (parse_int64(v, &x))
            return "not an integer";
        if ((o->min || o->max) && (x < o->min || x > o->max))
            return "out of range";
        memcpy(slot, &x, sizeof x);
        return NULL;
    }
    case ARCA_OPT_BOOL: {
        int b;
        if (parse_bool(v, &b))
            return "not a boolean (true/false, yes/no, on/off, 1/0)";
        memcpy(slot, &b, sizeof b);
        return NULL;
    }
    case ARCA_OPT_SIZE: {
        uint64_t x;
        if (parse_size(v, &x))
            return "not a size (e.g. 4096, 64K, 8M, 1G)";
        if ((o->min || o->max) && (x < (uint64_t)o->min || x > (uint64_t)o->max))
            return "out of range";
        memcpy(slot, &x, sizeof x);
        return NULL;
    }
    case ARCA_OPT_ENUM: {
        const char *c = o->choices ? o->choices : "";
        size_t vl = strlen(v);
        for (int idx = 0; *c; idx++) {
            const char *bar = strchr(c, '|');
            size_t l = bar ? (size_t)(bar - c) : strlen(c);
            if (l == vl && !strncasecmp(c, v, l)) {
                memcpy(slot, &idx, sizeof idx);
                return NULL;
            }
            c += l + (bar ? 1 : 0);
        }
        return "not one of the choices";
    }
    }
    return "unsupported option type";
}

static void range_hint(const arca_option *o, char *buf, size_t n)
{
    buf[0] = 0;
    if (o->type == ARCA_OPT_ENUM)
        snprintf(buf, n, " (choices: %s)", o->choices ? o->choices : "");
    else if ((o->type == ARCA_OPT_INT || o->type == ARCA_OPT_SIZE) && (o->min || o->max))
        snprintf(buf, n, " (from %" PRId64 " to %" PRId64 ")", o->min, o->max);
}

void *opt_fill(const arca_option *table, size_t size, const opt_kv *kv, size_t n,
               const char *section, errlist *errs)
{
    return opt_fill_at(table, size, kv, n, section, NULL, 0, errs);
}

void *opt_fill_at(const arca_option *table, size_t size, const opt_kv *kv, size_t n,
                  const char *section, const char *file, int line, errlist *errs)
{
    char *sw = where(file, line, section);
    size_t nopt = 0;
    for (const arca_option *o = table; o && o->name; o++)
        nopt++;
    void *cfg = xcalloc(1, size ? size : 1);
    char **owned = xcalloc(nopt + 1, sizeof *owned); /* string copies, by option index */
    int *seen = xcalloc(nopt + 1, sizeof *seen);
    size_t before = errs->n;
    char hint[160];

    for (size_t i = 0; i < nopt; i++) {
        const arca_option *o = &table[i];
        size_t slot = (o->type == ARCA_OPT_BOOL || o->type == ARCA_OPT_ENUM) ? sizeof(int) : 8;
        if (o->offset + slot > size) {
            /* a plugin bug, but never write past its struct */
            errlist_add(errs, "%s: plugin option '%s' lies outside its config struct", sw, o->name);
            continue;
        }
        if (o->def) {
            const char *why = set_value(o, cfg, o->def, &owned[i]);
            if (why)
                errlist_add(errs, "%s: plugin default for '%s' is %s", sw, o->name, why);
        }
    }

    for (size_t k = 0; k < n; k++) {
        const char *key = kv[k].key, *val = kv[k].value;
        const arca_option *o = opt_find(table, key);
        char *secret = NULL;
        char *w = kv[k].file ? where(kv[k].file, kv[k].line, section) : xstrdup(sw);
        if (!o) {
            size_t kl = strlen(key);
            if (kl > 5 && !strcmp(key + kl - 5, "_file")) {
                char base[256];
                snprintf(base, sizeof base, "%.*s", (int)(kl - 5), key);
                const arca_option *so = opt_find(table, base);
                if (so && (so->flags & ARCA_OPT_SECRET)) {
                    int err = 0;
                    secret = read_secret_file(val, &err);
                    if (!secret) {
                        errlist_add(errs, "%s: %s: cannot read secret file '%s': %s", w, key, val, strerror(err));
                        free(w);
                        continue;
                    }
                    o = so;
                    val = secret;
                }
            }
        }
        if (!o) {
            char *known = known_keys(table);
            errlist_add(errs, "%s: unknown key '%s' (known keys: %s)", w, key, known[0] ? known : "none");
            free(known);
            free(w);
            continue;
        }
        size_t idx = (size_t)(o - table);
        if (seen[idx]) {
            errlist_add(errs, "%s: key '%s' given twice", w, o->name);
        } else {
            seen[idx] = 1;
            const char *why = set_value(o, cfg, val, &owned[idx]);
            if (why) {
                range_hint(o, hint, sizeof hint);
                if (o->flags & ARCA_OPT_SECRET)
                    errlist_add(errs, "%s: %s: bad value: %s%s", w, o->name, why, hint);
                else
                    errlist_add(errs, "%s: %s = '%s': %s%s", w, o->name, val, why, hint);
            }
        }
        if (secret) {
            explicit_bzero(secret, strlen(secret));
            free(secret);
        }
        free(w);
    }

    for (size_t i = 0; i < nopt; i++)
        if ((table[i].flags & ARCA_OPT_REQUIRED) && !seen[i] && !table[i].def)
            errlist_add(errs, "%s: missing required key '%s' (%s)", sw, table[i].name,
                        table[i].help ? table[i].help : opt_type_name(table[i].type));

    free(sw);
    free(owned); /* the strings now belong to cfg; opt_free releases them */
    free(seen);
    if (errs->n != before) {
        opt_free(table, cfg);
        return NULL;
    }
    return cfg;
}

void opt_free(const arca_option *table, void *cfg)
{
    if (!cfg)
        return;
    for (const arca_option *o = table; o && o->name; o++) {
        if (o->type == ARCA_OPT_STRING) {
            char *s;
            memcpy(&s, (char *)cfg + o->offset, sizeof s);
            if (s && (o->flags & ARCA_OPT_SECRET))
                explicit_bzero(s, strlen(s));
            free(s);
        }
    }
    free(cfg);
}

char *opt_show(const arca_option *o, const void *cfg)
{
    const char *slot = (const char *)cfg + o->offset;
    switch (o->type) {
    case ARCA_OPT_STRING: {
        const char *s;
        memcpy(&s, slot, sizeof s);
        if (!s)
            return xstrdup("");
        return xstrdup((o->flags & ARCA_OPT_SECRET) ? "********" : s);
    }
    case ARCA_OPT_INT: { int64_t x; memcpy(&x, slot, sizeof x); return xasprintf("%" PRId64, x); }
    case ARCA_OPT_SIZE: { uint64_t x; memcpy(&x, slot, sizeof x); return xasprintf("%" PRIu64, x); }
    case ARCA_OPT_BOOL: { int b; memcpy(&b, slot, sizeof b); return xstrdup(b ? "true" : "false"); }
    case ARCA_OPT_ENUM: {
        int idx; memcpy(&idx, slot, sizeof idx);
        const char *c = o->choices ? o->choices : "";
        for (int i = 0; i < idx && c; i++) { c = strchr(c, '|'); if (c) c++; }
        if (!c) return xstrdup("?");
        const char *bar = strchr(c, '|');
        return bar ? strndup(c, (size_t)(bar - c)) : xstrdup(c);
    }
    }
    return xstrdup("?");
}

char *opt_flag_list(const arca_option *table)
{
    size_t len = 1;
    for (const arca_option *r = table; r && r->name; r++)
        len += strlen(r->name) + 4;
    char *known = xcalloc(1, len);
    for (const arca_option *r = table; r && r->name; r++) {
        strcat(known, known[0] ? ", --" : "--");
        size_t at = strlen(known);
        for (const char *c = r->name; *c; c++)
            known[at++] = *c == '_' ? '-' : *c;
        known[at] = 0;
    }
    return known;
}
