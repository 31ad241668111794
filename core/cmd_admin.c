/* arca plugins [NAME] and arca config check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dest.h"

/* Where each [destination] section stores objects: the plugin's own answer,
 * else the section itself (so only literally shared sections are caught). */
static char *location_of(session *s, const char *dname)
{
    errlist e = {0};
    inst *d = session_instance(s, "destination", dname, &e);
    errlist_free(&e);
    char *loc = d ? dest_location(d) : NULL;
    if (!loc)
        loc = xasprintf("[destination %s]", dname);
    inst_destroy(d);
    return loc;
}

/* Two pipelines writing to one place keep apart (objects are named after the
 * pipeline), but their retention and cleanup act on one store: say so. */
static void warn_shared_locations(session *s)
{
    cfg_file *c = s->cfg;
    char **loc = xcalloc(c->n + 1, sizeof *loc);
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->sec[i].kind, "destination") && c->sec[i].name)
            loc[i] = location_of(s, c->sec[i].name);
    /* (pipeline, location) pairs */
    size_t np = 0, cap = 16;
    struct pl { const char *pipeline, *dest, *loc; } *v = xmalloc(cap * sizeof *v);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->sec[i].kind, "pipeline") || !c->sec[i].name)
            continue;
        const opt_kv *dk = cfg_get(&c->sec[i], "destination");
        char **dl = dk ? cfg_split_list(dk->value, NULL) : NULL;
        for (size_t k = 0; dl && dl[k]; k++)
            for (size_t j = 0; j < c->n; j++)
                if (loc[j] && !strcmp(c->sec[j].name, dl[k])) {
                    if (np == cap)
                        v = xrealloc(v, (cap *= 2) * sizeof *v);
                    v[np++] = (struct pl){c->sec[i].name, c->sec[j].name, loc[j]};
                }
        cfg_free_list(dl);
    }
    for (size_t a = 0; a < np; a++)
        for (size_t b = a + 1; b < np; b++)
            if (strcmp(v[a].pipeline, v[b].pipeline) && !strcmp(v[a].loc, v[b].loc))
                fprintf(stderr,
                        "arca: warning: %s: pipelines '%s' (destination '%s') and '%s' (destination '%s') both write to %s; "
                        "each lists and restores only its own backups, but they share the space, the retention and "
                        "`arca cleanup` of that place\n",
                        c->path, v[a].pipeline, v[a].dest, v[b].pipeline, v[b].dest, v[a].loc);
    free(v);
    for (size_t i = 0; i < c->n; i++)
        free(loc[i]);
    free(loc);
}

static void print_options(const char *title, const arca_option *t, int as_flags)
{
    if (!t || !t->name)
        return;
    printf("%s:\n", title);
    for (const arca_option *o = t; o->name; o++) {
        char shown[96];
        if (as_flags) {
            snprintf(shown, sizeof shown, "--%s", o->name);
            for (char *c = shown + 2; *c; c++)
                *c = *c == '_' ? '-' : *c;
        } else {
            snprintf(shown, sizeof shown, "%s", o->name);
        }
        if (as_flags && o->type == ARCA_OPT_BOOL && (o->flags & ARCA_OPT_FLAG)) {
            printf("  %-22s switch\n      %s\n", shown, o->help ? o->help : "");
            continue;
        }
        printf("  %-22s %-8s", shown, opt_type_name(o->type));
        if (o->flags & ARCA_OPT_REQUIRED)
            printf(" required");
        if (o->def)
            printf(" default=%s", o->def);
        if (o->flags & ARCA_OPT_SECRET)
            printf(" secret (or %s_file = PATH)", o->name);
        if (o->type == ARCA_OPT_ENUM)
            printf(" [%s]", o->choices);
        printf("\n      %s\n", o->help ? o->help : "");
    }
}

static json_t *options_json(const arca_option *t)
{
    json_t *a = json_array();
    for (const arca_option *o = t; o && o->name; o++) {
        json_t *j = json_pack("{s:s,s:s,s:b,s:b,s:s}", "name", o->name, "type", opt_type_name(o->type), "required",
                              (o->flags & ARCA_OPT_REQUIRED) != 0, "secret", (o->flags & ARCA_OPT_SECRET) != 0, "help",
                              o->help ? o->help : "");
        if (o->def)
            json_object_set_new(j, "default", json_string(o->def));
        if (o->choices)
            json_object_set_new(j, "choices", json_string(o->choices));
        json_array_append_new(a, j);
    }
    return a;
}

typedef struct scan_ctx {
    const char *want;
    json_t *arr;
    int found, bad;
} scan_ctx;

static void scan_cb(void *ud, const char *path, plug *p, const char *err)
{
    scan_ctx *c = ud;
    if (!p) {
        if (!c->want)
            fprintf(stderr, "arca: warning: %s\n", err);
        c->bad++;
        return;
    }
    const arca_plugin *d = p->desc;
    if (c->want && strcmp(c->want, d->name))
        return;
    c->found++;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", d->name, "version", d->version, "role", roles_name(d->roles),
                          "description", d->description ? d->description : "", "path", p->path);
    json_object_set_new(j, "abi", json_sprintf("%u.%u", d->abi_major, d->abi_minor));
    if (c->want) {
        json_object_set_new(j, "options", options_json(d->options));
        json_object_set_new(j, "restore_options", options_json(d->restore_options));
    }
    json_array_append_new(c->arr, j);
    if (!g_json) {
        if (c->want) {
            printf("%s %s (%s, ABI %u.%u)\n  %s\n  %s\n", d->name, d->version, roles_name(d->roles), d->abi_major,
                   d->abi_minor, d->description ? d->description : "", p->path);
            print_options("options", d->options, 0);
            print_options("restore flags", d->restore_options, 1);
        } else {
            printf("%-10s %-8s %-12s ABI %u.%u  %s\n", d->name, d->version, roles_name(d->roles), d->abi_major,
                   d->abi_minor, d->description ? d->description : "");
        }
    }
}

int cmd_plugins(int argc, char **argv)
{
    if (argc > 1)
        return usage_error("plugins takes at most one NAME%s", "");
    errlist e = {0};
    const char *path = cfg_locate(g_config_arg, &e);
    session *s = path ? session_open(path, &e) : NULL;
    if (path && e.n && !s)
        print_errors(&e);
    errlist_free(&e); /* other config errors belong to `config check`; listing still works */
    loader *l = s ? s->ld : loader_new(NULL);
    scan_ctx c = {argc ? argv[0] : NULL, json_array(), 0, 0};
    if (argc && strchr(argv[0], '/')) {
        char *err = NULL;
        plug *p = loader_open(l, argv[0], &err);
        if (!p) {
            fprintf(stderr, "arca: error: %s\n", err);
            free(err);
            c.bad = 1;
        } else {
            c.want = p->desc->name;
            scan_cb(&c, p->path, p, NULL);
        }
    } else {
        loader_scan(l, scan_cb, &c);
    }
    if (g_json)
        print_json(c.want ? json_array_get(c.arr, 0) ? json_array_get(c.arr, 0) : json_null() : c.arr);
    int rc = EXIT_OK;
    if (c.want && !c.found) {
        if (!strchr(c.want, '/'))
            fprintf(stderr, "arca: error: plugin '%s' not found\n", c.want);
        rc = EXIT_FAIL;
    }
    json_decref(c.arr);
    if (s)
        session_close(s);
    else
        loader_free(l);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "check"))
        return usage_error("usage: arca config check%s", "");
    errlist e = {0};
    const char *path = cfg_locate(g_config_arg, &e);
    if (!path) {
        if (!e.n)
            errlist_add(&e, "no config file: give -c FILE, set ARCA_CONFIG, or create /etc/arca/arca.ini");
        print_errors(&e);
        errlist_free(&e);
        return EXIT_USAGE;
    }
    session *s = session_open(path, &e);
    if (s)
        session_check_all(s, &e);
    if (s && !e.n)
        warn_shared_locations(s);
    int rc = EXIT_OK;
    if (e.n) {
        print_errors(&e);
        fprintf(stderr, "arca: %s: %zu error%s\n", path, e.n, e.n == 1 ? "" : "s");
        rc = EXIT_USAGE;
    } else {
        size_t np = 0;
        for (size_t i = 0; i < s->cfg->n; i++)
            np += !strcmp(s->cfg->sec[i].kind, "pipeline");
        if (g_json) {
            json_t *j = json_pack("{s:s,s:s,s:I,s:I}", "result", "ok", "file", path, "sections", (json_int_t)s->cfg->n,
                                  "pipelines", (json_int_t)np);
            print_json(j);
            json_decref(j);
        } else {
            printf("%s: ok (%zu sections, %zu pipelines)\n", path, s->cfg->n, np);
        }
    }
    errlist_free(&e);
    session_close(s);
    return rc;
}

