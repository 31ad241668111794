/* Turns a config file into validated sections and ready pipelines. */
#include "pipeline.h"

#include "catalog.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

const arca_option arca_global_options[] = {
    {"plugin_path", ARCA_OPT_STRING, 0, offsetof(arca_globals, plugin_path), NULL, NULL, 0, 0,
     "colon-separated directories searched for NAME.so before $ARCA_PLUGIN_PATH and the install dir"},
    {"log_level", ARCA_OPT_ENUM, 0, offsetof(arca_globals, log_level), "warn", "error|warn|info|debug", 0, 0,
     "diagnostics on stderr at this level and above (-v/-q override)"},
    {"workers", ARCA_OPT_INT, 0, offsetof(arca_globals, workers), "0", NULL, 0, 256,
     "compression/hash threads; 0 = number of CPUs"},
    {"chunk_size", ARCA_OPT_SIZE, 0, offsetof(arca_globals, chunk_size), "4M", NULL, ARCA_MIN_CHUNK, ARCA_MAX_CHUNK,
     "raw bytes per archive member (one zstd frame each); memory grows with it (docs/INTERNALS.md)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

const arca_option pipeline_options[] = {
    {"source", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(pipeline_cfg, source), NULL, NULL, 0, 0,
     "name of a [source NAME] section"},
    {"destination", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(pipeline_cfg, destination), NULL, NULL, 0, 0,
     "comma-separated [destination NAME] sections; one read of the source feeds them all"},
    {"compression", ARCA_OPT_STRING, 0, offsetof(pipeline_cfg, compression), "zstd:3", NULL, 0, 0,
     "zstd:LEVEL, LEVEL from 1 (fast) to 22 (small); 3 is a good default"},
    {"chunk_size", ARCA_OPT_SIZE, 0, offsetof(pipeline_cfg, chunk_size), NULL, NULL, ARCA_MIN_CHUNK, ARCA_MAX_CHUNK,
     "override [arca] chunk_size for this pipeline (unset: inherit)"},
    {"workers", ARCA_OPT_INT, 0, offsetof(pipeline_cfg, workers), "0", NULL, 0, 256,
     "override [arca] workers for this pipeline (0 = inherit)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

int parse_compression(const char *s, int *level)
{
    if (!strcmp(s, "zstd")) {
        *level = 3;
        return 0;
    }
    int64_t l;
    if (strncmp(s, "zstd:", 5) || parse_int64(s + 5, &l) || l < 1 || l > ZSTD_maxCLevel())
        return -1;
    *level = (int)l;
    return 0;
}

static void *fill_section(cfg_file *c, cfg_section *sec, const arca_option *table, size_t size, const char *skip,
                          errlist *errs)
{
    opt_kv *kv = xcalloc(sec->nkv + 1, sizeof *kv);
    size_t n = 0;
    for (size_t i = 0; i < sec->nkv; i++) {
        if (skip && !strcmp(sec->kv[i].key, skip))
            continue;
        int later = 0; /* a repeated key was reported by cfg_load; the last one counts */
        for (size_t k = i + 1; k < sec->nkv; k++)
            later |= !strcmp(sec->kv[k].key, sec->kv[i].key);
        if (!later)
            kv[n++] = sec->kv[i];
    }
    void *cfg = opt_fill_at(table, size, kv, n, sec->label, c->path, sec->line, errs);
    free(kv);
    return cfg;
}

session *session_open(const char *path, errlist *errs)
{
    cfg_file *c = cfg_load(path, errs);
    if (!c)
        return NULL;
    session *s = xcalloc(1, sizeof *s);
    s->cfg = c;
    cfg_section *a = cfg_find(c, "arca", NULL);
    if (a) {
        s->g = fill_section(c, a, arca_global_options, sizeof(arca_globals), NULL, errs);
    } else {
        opt_kv none = {0};
        s->g = opt_fill(arca_global_options, sizeof(arca_globals), &none, 0, "[arca]", errs);
    }
    if (!s->g) {
        errlist e2 = {0};
        opt_kv none = {0};
        s->g = opt_fill(arca_global_options, sizeof(arca_globals), &none, 0, "[arca]", &e2);
        errlist_free(&e2);
    }
    if (s->g->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->g->workers = n > 0 ? n : 2;
    }
    s->ld = loader_new(s->g->plugin_path);
    return s;
}

void session_close(session *s)
{
    if (!s)
        return;
    opt_free(arca_global_options, s->g);
    loader_free(s->ld);
    cfg_free(s->cfg);
    free(s);
}

/* Load the plugin a [source]/[destination] section names and validate its keys.
 * On success *cfg_out holds the filled option struct. */
static plug *section_plugin(session *s, cfg_section *sec, void **cfg_out, errlist *errs)
{
    *cfg_out = NULL;
    const opt_kv *pk = cfg_get(sec, "plugin");
    if (!pk) {
        errlist_add(errs, "%s:%d: %s: missing required key 'plugin' (a plugin name such as files, nfs, or a path to a .so)",
                    s->cfg->path, sec->line, sec->label);
        return NULL;
    }
    char *e = NULL;
    plug *p = loader_open(s->ld, pk->value, &e);
    if (!p) {
        errlist_add(errs, "%s:%d: %s: %s", pk->file, pk->line, sec->label, e);
        free(e);
        return NULL;
    }
    uint32_t want = !strcmp(sec->kind, "source") ? ARCA_ROLE_SOURCE : ARCA_ROLE_DESTINATION;
    if (!(p->desc->roles & want)) {
        errlist_add(errs, "%s:%d: %s: plugin '%s' is a %s plugin, not a %s", pk->file, pk->line, sec->label, p->desc->name,
                    roles_name(p->desc->roles), sec->kind);
        return NULL;
    }
    *cfg_out = fill_section(s->cfg, sec, p->desc->options, p->desc->config_size, "plugin", errs);
    return *cfg_out ? p : NULL;
}

static pipeline *resolve_pipeline(session *s, const char *name, int instantiate, errlist *errs);

void session_check_all(session *s, errlist *errs)
{
    cfg_file *c = s->cfg;
    for (size_t i = 0; i < c->n; i++) {
        cfg_section *sec = &c->sec[i];
        if (!strcmp(sec->kind, "source") || !strcmp(sec->kind, "destination")) {
            if (!sec->name)
                continue;
            inst *in = session_instance(s, sec->kind, sec->name, errs);
            inst_destroy(in);
        } else if (!strcmp(sec->kind, "pipeline") && sec->name) {
            pipeline *p = resolve_pipeline(s, sec->name, 0, errs);
            pipeline_free(p);
        }
    }
}

inst *session_instance(session *s, const char *kind, const char *name, errlist *errs)
{
    cfg_section *sec = cfg_find(s->cfg, kind, name);
    if (!sec) {
        errlist_add(errs, "%s: no [%s %s] section", s->cfg->path, kind, name);
        return NULL;
    }
    void *cfg;
    plug *p = section_plugin(s, sec, &cfg, errs);
    if (!p)
        return NULL;
    char *e = NULL;
    inst *in = inst_create(p, kind, name, cfg, &e);
    if (!in) {
        errlist_add(errs, "%s:%d: %s", s->cfg->path, sec->line, e);
        free(e);
    }
    return in;
}

pipeline *session_pipeline(session *s, const char *name, errlist *errs)
{
    return resolve_pipeline(s, name, 1, errs);
}

/* With instantiate = 0 only the pipeline's own keys and references are checked
 * (config check validates each section once, on its own). */
static pipeline *resolve_pipeline(session *s, const char *name, int instantiate, errlist *errs)
{
    cfg_section *sec = cfg_find(s->cfg, "pipeline", name);
    if (!sec) {
        errlist_add(errs, "%s: no [pipeline %s] section", s->cfg->path, name);
        return NULL;
    }
    size_t before = errs->n;
    pipeline_cfg *pc = fill_section(s->cfg, sec, pipeline_options, sizeof(pipeline_cfg), NULL, errs);
    if (!pc)
        return NULL;
    pipeline *p = xcalloc(1, sizeof *p);
    p->name = xstrdup(name);
    p->chunk_size = pc->chunk_size ? pc->chunk_size : s->g->chunk_size;
    p->workers = (int)(pc->workers ? pc->workers : s->g->workers);
    const opt_kv *ck = cfg_get(sec, "compression");
    if (parse_compression(pc->compression, &p->level))
        errlist_add(errs, "%s:%d: %s: compression = '%s': expected zstd:LEVEL with LEVEL from 1 to %d", s->cfg->path,
                    ck ? ck->line : sec->line, sec->label, pc->compression, ZSTD_maxCLevel());
    const char *why = pipeline_name_problem(name);
    if (why)
        errlist_add(errs, "%s:%d: %s: the pipeline name %s", s->cfg->path, sec->line, sec->label, why);
    const opt_kv *sk = cfg_get(sec, "source"), *dk = cfg_get(sec, "destination");
    if (!cfg_find(s->cfg, "source", pc->source))
        errlist_add(errs, "%s:%d: %s: source = '%s': no [source %s] section", s->cfg->path, sk->line, sec->label,
                    pc->source, pc->source);
    else if (instantiate)
        p->source = session_instance(s, "source", pc->source, errs);
    size_t nd;
    char **dl = cfg_split_list(pc->destination, &nd);
    if (!nd)
        errlist_add(errs, "%s:%d: %s: destination is empty", s->cfg->path, dk->line, sec->label);
    p->dests = xcalloc(nd + 1, sizeof *p->dests);
    for (size_t i = 0; i < nd; i++) {
        int dup = 0;
        for (size_t k = 0; k < i; k++)
            dup |= !strcmp(dl[k], dl[i]);
        if (dup) {
            errlist_add(errs, "%s:%d: %s: destination '%s' named twice", s->cfg->path, dk->line, sec->label, dl[i]);
            continue;
        }
        if (!cfg_find(s->cfg, "destination", dl[i])) {
            errlist_add(errs, "%s:%d: %s: destination '%s': no [destination %s] section", s->cfg->path, dk->line,
                        sec->label, dl[i], dl[i]);
            continue;
        }
        inst *d = instantiate ? session_instance(s, "destination", dl[i], errs) : NULL;
        if (d)
            p->dests[p->ndests++] = d;
    }
    cfg_free_list(dl);
    opt_free(pipeline_options, pc);
    if (errs->n != before) {
        pipeline_free(p);
        return NULL;
    }
    return p;
}

void pipeline_free(pipeline *p)
{
    if (!p)
        return;
    inst_destroy(p->source);
    for (size_t i = 0; i < p->ndests; i++)
        inst_destroy(p->dests[i]);
    free(p->dests);
    free(p->name);
    free(p);
}
