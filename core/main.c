/* arca command line: parses arguments, loads the config, runs one command and maps
 * the outcome to the exit codes of DESIGN.md (0 ok, 1 failed, 2 usage, 3 integrity). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline.h"

extern int g_quiet;
static int g_json;
static int g_verbosity; /* -v count minus -q count; applied over the config's level */
static const char *g_config_arg;

static void usage(FILE *f)
{
    fputs("usage: arca [-c FILE] [--json] [-v|-q] COMMAND ...\n"
          "  backup PIPELINE                     run a backup, print its id\n"
          "  list PIPELINE                       backups at the pipeline's destinations\n"
          "  verify PIPELINE [ID|latest]         re-read and check every member\n"
          "  verify FILE.arca\n"
          "  inspect FILE.arca | PIPELINE ID     header and manifest summary\n"
          "  restore PIPELINE [ID|latest] [--into SOURCE] [source flags]\n"
          "  restore --from FILE.arca --into SOURCE [source flags]\n"
          "  delete PIPELINE ID\n"
          "  plugins [NAME]                      found plugins, their options\n"
          "  config check                        validate every section of the config\n"
          "Config: -c FILE, else $ARCA_CONFIG, else ./arca.ini, else /etc/arca/arca.ini.\n"
          "Exit codes: 0 ok, 1 failed, 2 usage or configuration, 3 integrity.\n",
          f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "arca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see arca --help)\n");
    return EXIT_USAGE;
}

static void print_errors(errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "arca: error: %s\n", e->msg[i]);
}

static int fail_msg(int status, char *msg)
{
    fprintf(stderr, "arca: error: %s\n", msg ? msg : "failed");
    free(msg);
    return exit_code_for(status);
}

static void apply_log_level(int config_level)
{
    int lvl = config_level + g_verbosity;
    g_log_level = lvl < 0 ? -1 : lvl > ARCA_LOG_DEBUG ? ARCA_LOG_DEBUG : lvl;
    g_quiet = g_verbosity < 0;
}

static session *open_session(int *rc)
{
    const char *path = cfg_locate(g_config_arg);
    if (!path) {
        fprintf(stderr, "arca: error: no config file: give -c FILE, set ARCA_CONFIG, or create ./arca.ini\n");
        *rc = EXIT_USAGE;
        return NULL;
    }
    errlist e = {0};
    session *s = session_open(path, &e);
    if (s)
        apply_log_level(s->g->log_level);
    if (e.n) {
        print_errors(&e);
        errlist_free(&e);
        session_close(s);
        *rc = EXIT_USAGE;
        return NULL;
    }
    return s;
}

/* Config plus one ready pipeline; NULL with *rc set (errors printed) otherwise. */
static pipeline *open_pipeline(const char *name, session **sp, int *rc)
{
    session *s = open_session(rc);
    *sp = s;
    if (!s)
        return NULL;
    errlist e = {0};
    pipeline *p = session_pipeline(s, name, &e);
    if (!p) {
        print_errors(&e);
        errlist_free(&e);
        session_close(s);
        *sp = NULL;
        *rc = EXIT_USAGE;
    }
    return p;
}

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void human_size(uint64_t b, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, n, "%" PRIu64 " B", b);
    else
        snprintf(buf, n, "%.1f %s", v, u[i]);
}

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
}

/* ---- destination helpers ------------------------------------------------------ */

typedef struct dget {
    inst *d;
    void *get;
} dget;

static int dget_read(void *ud, void *buf, size_t cap, size_t *got)
{
    dget *g = ud;
    return g->d->plug->desc->destination->get_read(g->get, buf, cap, got);
}

static char *dget_error(void *ud)
{
    dget *g = ud;
    return inst_take_error(g->d, ARCA_EFAIL, "read failed");
}

/* Stream archive `name` from destination `d` through the checked reader (verify
 * when target is NULL, restore into target otherwise). */
static int read_dest(inst *d, const char *name, const char *where, manifest *m, inst *target, const void *ropts,
                     read_stats *st, char **err)
{
    dget g = {d, NULL};
    int rc = d->plug->desc->destination->get_open(d->state, name, 0, 0, &g.get);
    if (rc != ARCA_OK) {
        *err = inst_take_error(d, rc, "cannot read the archive");
        return rc;
    }
    rd_stream in = {dget_read, &g, where, dget_error};
    rc = engine_read(&in, m, target, ropts, st, err);
    d->plug->desc->destination->get_close(g.get);
    return rc;
}

/* Read a whole (small) object. */
static int dest_slurp(inst *d, const char *name, char **out, size_t *len, char **err)
{
    const arca_destination_ops *ops = d->plug->desc->destination;
    void *get = NULL;
    int rc = ops->get_open(d->state, name, 0, 0, &get);
    if (rc != ARCA_OK) {
        *err = inst_take_error(d, rc, "cannot read");
        return rc;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 65536)
            buf = xrealloc(buf, cap *= 2);
        size_t got = 0;
        rc = ops->get_read(get, buf + n, cap - n - 1, &got);
        if (rc != ARCA_OK) {
            *err = inst_take_error(d, rc, "read failed");
            break;
        }
        if (!got)
            break;
        n += got;
        if (n > (1ull << 31)) {
            rc = ARCA_EINTEGRITY;
            *err = xasprintf("%s: %s is impossibly large", d->label, name);
            break;
        }
    }
    ops->get_close(get);
    if (rc != ARCA_OK) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return ARCA_OK;
}

static int load_catalog(inst *d, const char *id, manifest **m, char **err)
{
    char *name = xasprintf("%s.manifest.json", id), *txt = NULL;
    size_t len = 0;
    int rc = dest_slurp(d, name, &txt, &len, err);
    if (rc == ARCA_OK) {
        char *where = xasprintf("%s: %s", d->label, name);
        *m = manifest_parse(txt, len, where, err);
        free(where);
        rc = *m ? ARCA_OK : ARCA_EINTEGRITY;
    }
    free(txt);
    free(name);
    return rc;
}

typedef struct idlist {
    char **ids;
    size_t n;
} idlist;

static int collect_id(void *ud, const arca_object_stat *st)
{
    idlist *l = ud;
    const char *suf = ".manifest.json";
    size_t nl = strlen(st->name), sl = strlen(suf);
    if (nl <= sl || strcmp(st->name + nl - sl, suf))
        return 0;
    l->ids = xrealloc(l->ids, (l->n + 1) * sizeof *l->ids);
    l->ids[l->n++] = strndup(st->name, nl - sl);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void idlist_free(idlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
}

static int dest_ids(inst *d, idlist *l, char **err)
{
    memset(l, 0, sizeof *l);
    int rc = d->plug->desc->destination->list(d->state, "", collect_id, l);
    if (rc != ARCA_OK) {
        *err = inst_take_error(d, rc, "listing failed");
        idlist_free(l);
        return rc;
    }
    if (l->n)
        qsort(l->ids, l->n, sizeof *l->ids, cmp_id);
    return ARCA_OK;
}


static int id_is_sane(const char *id)
{
    return *id && strlen(id) < 64 && strspn(id, "0123456789TZabcdef-.") == strlen(id);
}

/* Resolve ID or "latest" to a concrete id and the first destination holding it. */
static int resolve_id(pipeline *p, const char *want, char *id, size_t idn, size_t *dest_idx, char **err)
{
    int latest = !want || !strcmp(want, "latest");
    if (!latest && !id_is_sane(want)) {
        *err = xasprintf("'%s' is not a backup id (see arca list %s)", want, p->name);
        return ARCA_ECONFIG;
    }
    char best[64] = "";
    size_t best_d = 0;
    for (size_t i = 0; i < p->ndests; i++) {
        idlist l;
        char *e = NULL;
        if (dest_ids(p->dests[i], &l, &e) != ARCA_OK) {
            log_msg(ARCA_LOG_WARN, "%s", e);
            free(e);
            continue;
        }
        for (size_t k = 0; k < l.n; k++) {
            if (latest ? strcmp(l.ids[k], best) > 0 : !strcmp(l.ids[k], want)) {
                if (!latest && best[0])
                    continue;
                snprintf(best, sizeof best, "%s", l.ids[k]);
                best_d = i;
            }
        }
        idlist_free(&l);
    }
    if (!best[0]) {
        *err = latest ? xasprintf("pipeline '%s' has no backups", p->name)
                      : xasprintf("backup '%s' not found at any destination of pipeline '%s'", want, p->name);
        return ARCA_EFAIL;
    }
    snprintf(id, idn, "%s", best);
    *dest_idx = best_d;
    return ARCA_OK;
}

/* ---- commands ---------------------------------------------------------------- */

static int cmd_backup(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("backup takes one PIPELINE%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    backup_result r = {0};
    char *err = NULL;
    int st = engine_backup(p, &r, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, xasprintf("backup of pipeline '%s' failed: %s", p->name, err));
        free(err);
        if (g_interrupted)
            fprintf(stderr, "arca: interrupted: no destination shows this backup\n");
    } else {
        char a[32], raw[32];
        human_size(r.archive_bytes, a, sizeof a);
        human_size(r.raw_bytes, raw, sizeof raw);
        if (g_json) {
            json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f}", "id", r.id, "pipeline", p->name, "objects",
                                  (json_int_t)r.objects, "members", (json_int_t)r.members, "raw_bytes",
                                  (json_int_t)r.raw_bytes, "archive_bytes", (json_int_t)r.archive_bytes, "destinations",
                                  (json_int_t)p->ndests, "seconds", r.seconds);
            print_json(j);
            json_decref(j);
        } else {
            puts(r.id);
        }
        log_msg(ARCA_LOG_INFO, "backup %s: %zu objects, %s raw, %s archive, %.2f s", r.id, r.objects, raw, a, r.seconds);
    }
    pipeline_free(p);
    session_close(s);
    return rc;
}

static int cmd_list(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("list takes one PIPELINE%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    json_t *arr = json_array();
    int failed = 0;
    for (size_t i = 0; i < p->ndests; i++) {
        inst *d = p->dests[i];
        idlist l;
        char *err = NULL;
        if (dest_ids(d, &l, &err) != ARCA_OK) {
            fprintf(stderr, "arca: error: %s\n", err);
            free(err);
            failed = 1;
            continue;
        }
        for (size_t k = 0; k < l.n; k++) {
            manifest *m = NULL;
            json_t *row = json_pack("{s:s,s:s}", "id", l.ids[k], "destination", d->name);
            if (load_catalog(d, l.ids[k], &m, &err) == ARCA_OK) {
                json_t *tot = json_object_get(m->root, "totals");
                json_object_set(row, "created", json_object_get(m->header, "created"));
                json_object_set(row, "source", json_object_get(json_object_get(m->header, "source"), "plugin"));
                json_object_set(row, "objects", json_object_get(tot, "objects"));
                json_object_set(row, "raw_bytes", json_object_get(tot, "raw_bytes"));
                json_object_set(row, "archive_bytes", json_object_get(json_object_get(m->root, "archive"), "size"));
                manifest_free(m);
            } else {
                json_object_set_new(row, "error", json_string(err));
                free(err);
                err = NULL;
            }
            json_array_append_new(arr, row);
        }
        idlist_free(&l);
    }
    if (g_json) {
        print_json(arr);
    } else {
        size_t i;
        json_t *row;
        if (json_array_size(arr))
            printf("%-24s %-20s %-8s %8s %10s  %s\n", "ID", "CREATED", "SOURCE", "OBJECTS", "SIZE", "DESTINATION");
        json_array_foreach(arr, i, row)
        {
            char sz[32] = "?";
            json_t *as = json_object_get(row, "archive_bytes");
            if (json_is_integer(as))
                human_size((uint64_t)json_integer_value(as), sz, sizeof sz);
            if (json_object_get(row, "error"))
                printf("%-24s unreadable manifest: %s  %s\n", json_string_value(json_object_get(row, "id")),
                       json_string_value(json_object_get(row, "error")),
                       json_string_value(json_object_get(row, "destination")));
            else
                printf("%-24s %-20s %-8s %8" JSON_INTEGER_FORMAT " %10s  %s\n", json_string_value(json_object_get(row, "id")),
                       json_string_value(json_object_get(row, "created")) ?: "?",
                       json_string_value(json_object_get(row, "source")) ?: "?",
                       json_integer_value(json_object_get(row, "objects")), sz,
                       json_string_value(json_object_get(row, "destination")));
        }
    }
    json_decref(arr);
    pipeline_free(p);
    session_close(s);
    return failed ? EXIT_FAIL : EXIT_OK;
}

typedef struct fstream {
    int fd;
    const char *path;
    int err;
} fstream;

static int fs_read(void *ud, void *buf, size_t cap, size_t *got)
{
    fstream *f = ud;
    for (;;) {
        ssize_t n = read(f->fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            f->err = errno;
            return ARCA_EFAIL;
        }
        *got = (size_t)n;
        return ARCA_OK;
    }
}

static char *fs_error(void *ud)
{
    fstream *f = ud;
    return xstrdup(strerror(f->err));
}

static int is_file_arg(const char *a)
{
    struct stat st;
    size_t n = strlen(a);
    return strchr(a, '/') || (n > 5 && !strcmp(a + n - 5, ".arca")) || (stat(a, &st) == 0 && S_ISREG(st.st_mode));
}

/* Load the manifest of a local archive file (the catalogue lives inside it). */
static int file_manifest(const char *path, manifest **m, char **err)
{
    json_t *hdr = NULL;
    char *mt = NULL;
    size_t ml = 0;
    int rc = engine_scan_file(path, &hdr, &mt, &ml, err);
    if (rc != ARCA_OK)
        return rc;
    *m = manifest_parse(mt, ml, path, err);
    free(mt);
    if (*m && !json_equal(hdr, (*m)->header)) {
        *err = xasprintf("%s: arca.json does not match the header in MANIFEST.json", path);
        manifest_free(*m);
        *m = NULL;
    }
    json_decref(hdr);
    return *m ? ARCA_OK : ARCA_EINTEGRITY;
}

static int read_file(const char *path, manifest *m, inst *target, const void *ropts, read_stats *st, char **err)
{
    fstream f = {open(path, O_RDONLY | O_CLOEXEC), path, 0};
    if (f.fd < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return ARCA_EFAIL;
    }
    rd_stream in = {fs_read, &f, path, fs_error};
    int rc = engine_read(&in, m, target, ropts, st, err);
    close(f.fd);
    return rc;
}

static void report_read(const char *what, const char *where, read_stats *st)
{
    char raw[32], ar[32];
    human_size(st->raw_bytes, raw, sizeof raw);
    human_size(st->archive_bytes, ar, sizeof ar);
    if (g_json) {
        json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "result", "ok", "where", where, "objects",
                              (json_int_t)st->objects, "members", (json_int_t)st->members, "raw_bytes",
                              (json_int_t)st->raw_bytes, "archive_bytes", (json_int_t)st->archive_bytes);
        print_json(j);
        json_decref(j);
    } else {
        printf("%s ok: %s: %" PRIu64 " objects, %" PRIu64 " members, %s raw, %s read\n", what, where, st->objects,
               st->members, raw, ar);
    }
}

static int cmd_verify(int argc, char **argv)
{
    if (argc < 1 || argc > 2)
        return usage_error("verify takes PIPELINE [ID|latest] or FILE.arca%s", "");
    char *err = NULL;
    read_stats st;
    if (argc == 1 && is_file_arg(argv[0])) {
        manifest *m = NULL;
        int rc = file_manifest(argv[0], &m, &err);
        if (rc == ARCA_OK)
            rc = read_file(argv[0], m, NULL, NULL, &st, &err);
        manifest_free(m);
        if (rc != ARCA_OK) {
            int code = fail_msg(rc, xasprintf("verify failed: %s", err));
            free(err);
            return code;
        }
        report_read("verify", argv[0], &st);
        return EXIT_OK;
    }
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    char id[64];
    size_t di;
    int st_rc = resolve_id(p, argc == 2 ? argv[1] : "latest", id, sizeof id, &di, &err);
    int worst = ARCA_OK, checked = 0;
    if (st_rc != ARCA_OK) {
        rc = fail_msg(st_rc, err);
    } else {
        /* every destination that holds the backup is checked */
        for (size_t i = 0; i < p->ndests; i++) {
            inst *d = p->dests[i];
            manifest *m = NULL;
            idlist l;
            if (dest_ids(d, &l, &err) != ARCA_OK) {
                fprintf(stderr, "arca: error: %s\n", err);
                free(err);
                worst = worst ? worst : ARCA_EFAIL;
                continue;
            }
            int has = 0;
            for (size_t k = 0; k < l.n; k++)
                has |= !strcmp(l.ids[k], id);
            idlist_free(&l);
            if (!has)
                continue;
            checked++;
            int r2 = load_catalog(d, id, &m, &err);
            char *arname = xasprintf("%s.arca", id), *where = xasprintf("%s: %s", d->label, arname);
            if (r2 == ARCA_OK)
                r2 = read_dest(d, arname, where, m, NULL, NULL, &st, &err);
            if (r2 != ARCA_OK) {
                fprintf(stderr, "arca: error: verify %s failed: %s\n", id, err);
                free(err);
                err = NULL;
                if (worst != ARCA_EINTEGRITY)
                    worst = r2;
            } else {
                report_read("verify", where, &st);
            }
            manifest_free(m);
            free(arname);
            free(where);
        }
        rc = exit_code_for(worst);
    }
    pipeline_free(p);
    session_close(s);
    return rc;
}

static void inspect_print(manifest *m, const char *where)
{
    if (g_json) {
        print_json(m->root);
        return;
    }
    json_t *h = m->header, *src = json_object_get(h, "source"), *tot = json_object_get(m->root, "totals");
    char raw[32], stored[32];
    human_size((uint64_t)json_integer_value(json_object_get(tot, "raw_bytes")), raw, sizeof raw);
    human_size((uint64_t)json_integer_value(json_object_get(tot, "stored_bytes")), stored, sizeof stored);
    printf("archive:      %s\n", where);
    printf("format:       %s v%" JSON_INTEGER_FORMAT "\n", json_string_value(json_object_get(h, "format")),
           json_integer_value(json_object_get(h, "format_version")));
    printf("backup id:    %s\n", m->id);
    printf("created:      %s\n", json_string_value(json_object_get(h, "created")));
    printf("arca version: %s\n", json_string_value(json_object_get(h, "arca_version")));
    printf("pipeline:     %s\n", json_string_value(json_object_get(h, "pipeline")));
    printf("source:       %s (plugin %s %s, mode %s)\n", json_string_value(json_object_get(src, "name")),
           json_string_value(json_object_get(src, "plugin")), json_string_value(json_object_get(src, "plugin_version")),
           json_string_value(json_object_get(src, "mode")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(src, "info"), k, v)
    {
        if (json_is_string(v))
            printf("  %-15s %s\n", k, json_string_value(v));
    }
    printf("compression:  %s, chunk size %" JSON_INTEGER_FORMAT "\n", json_string_value(json_object_get(h, "compression")),
           json_integer_value(json_object_get(h, "chunk_size")));
    printf("contents:     %zu objects, %zu members, %s raw, %s stored\n", m->nobj, m->nmem, raw, stored);
    size_t shown = 0;
    for (size_t i = 0; i < m->nobj && shown < 20; i++, shown++) {
        mf_read_object *o = &m->obj[i];
        char sz[32];
        human_size(o->size, sz, sizeof sz);
        printf("  %-8s %10s  %s%s%s\n", kind_name(o->info.kind), o->info.kind == ARCA_OBJ_DATA ? sz : "", o->name,
               o->target ? " -> " : "", o->target ? o->target : "");
    }
    if (m->nobj > shown)
        printf("  ... and %zu more (--json lists everything)\n", m->nobj - shown);
}

static int cmd_inspect(int argc, char **argv)
{
    char *err = NULL;
    if (argc == 1) {
        manifest *m = NULL;
        int rc = file_manifest(argv[0], &m, &err);
        if (rc != ARCA_OK)
            return fail_msg(rc, err);
        inspect_print(m, argv[0]);
        manifest_free(m);
        return EXIT_OK;
    }
    if (argc != 2)
        return usage_error("inspect takes FILE.arca or PIPELINE ID%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    char id[64];
    size_t di;
    int st = resolve_id(p, argv[1], id, sizeof id, &di, &err);
    manifest *m = NULL;
    if (st == ARCA_OK)
        st = load_catalog(p->dests[di], id, &m, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, err);
    } else {
        char *where = xasprintf("%s: %s.arca", p->dests[di]->label, id);
        inspect_print(m, where);
        free(where);
    }
    manifest_free(m);
    pipeline_free(p);
    session_close(s);
    return rc;
}

/* Parse --name[=value] / --name value flags against the target's restore options;
 * a switch (BOOL with ARCA_OPT_FLAG) never takes the next word. NULL with *bad = 0
 * when the plugin declares no restore options and none were given. */
static void *restore_flags(inst *target, int argc, char **argv, int *bad)
{
    const arca_plugin *d = target->plug->desc;
    opt_kv *kv = xcalloc((size_t)argc + 1, sizeof *kv);
    char **owned = xcalloc((size_t)argc * 2 + 1, sizeof *owned);
    size_t n = 0, no = 0;
    *bad = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "arca: error: unexpected argument '%s'\n", a);
            *bad = 1;
            continue;
        }
        char *key = xstrdup(a + 2), *val = NULL;
        char *eq = strchr(key, '=');
        if (eq) {
            *eq = 0;
            val = xstrdup(eq + 1);
        }
        for (char *c = key; *c; c++)
            if (*c == '-')
                *c = '_';
        const arca_option *o = opt_find(d->restore_options, key);
        if (!o) {
            size_t len = 1;
            for (const arca_option *r = d->restore_options; r && r->name; r++)
                len += strlen(r->name) + 4;
            char *known = xcalloc(1, len);
            for (const arca_option *r = d->restore_options; r && r->name; r++) {
                strcat(known, known[0] ? ", --" : "--");
                size_t at = strlen(known);
                for (const char *c = r->name; *c; c++)
                    known[at++] = *c == '_' ? '-' : *c;
                known[at] = 0;
            }
            fprintf(stderr, "arca: error: unknown restore flag '--%s' for %s (known: %s)\n", a + 2, target->label,
                    known[0] ? known : "none");
            free(known);
            free(key);
            free(val);
            *bad = 1;
            continue;
        }
        if (!val) {
            if (o->type == ARCA_OPT_BOOL && (o->flags & ARCA_OPT_FLAG))
                val = xstrdup("true");
            else if (i + 1 < argc)
                val = xstrdup(argv[++i]);
            else {
                fprintf(stderr, "arca: error: --%s needs a value\n", a + 2);
                *bad = 1;
                free(key);
                continue;
            }
        }
        owned[no++] = key;
        owned[no++] = val;
        kv[n++] = (opt_kv){key, val, NULL, 0};
    }
    void *ro = NULL;
    if (!*bad && d->restore_options && d->restore_options->name) {
        errlist e = {0};
        char *label = xasprintf("restore flags for %s", target->label);
        ro = opt_fill(d->restore_options, d->restore_config_size, kv, n, label, &e);
        print_errors(&e);
        *bad = ro == NULL;
        errlist_free(&e);
        free(label);
    }
    for (size_t i = 0; i < no; i++)
        free(owned[i]);
    free(owned);
    free(kv);
    return ro;
}

static int cmd_restore(int argc, char **argv)
{
    const char *from = NULL, *into = NULL, *pname = NULL, *want = NULL;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, i = 0;
    /* arca restore PIPELINE [ID|latest] [flags] | arca restore --from FILE --into SOURCE [flags] */
    if (i < argc && strncmp(argv[i], "--", 2))
        pname = argv[i++];
    if (pname && i < argc && strncmp(argv[i], "--", 2))
        want = argv[i++];
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--from") && i + 1 < argc)
            from = argv[++i];
        else if (!strncmp(argv[i], "--from=", 7))
            from = argv[i] + 7;
        else if (!strcmp(argv[i], "--into") && i + 1 < argc)
            into = argv[++i];
        else if (!strncmp(argv[i], "--into=", 7))
            into = argv[i] + 7;
        else
            rest[nrest++] = argv[i]; /* source flags and their values, judged by the plugin's table */
    }
    if (from && pname) {
        free(rest);
        return usage_error("restore takes either PIPELINE or --from FILE, not both (got '%s')", pname);
    }
    if (from && !into) {
        free(rest);
        return usage_error("restore --from FILE needs --into SOURCE%s", "");
    }
    if (!from && !pname) {
        free(rest);
        return usage_error("restore takes PIPELINE [ID|latest] [--into SOURCE] or --from FILE --into SOURCE%s", "");
    }
    int rc = 0;
    session *s = open_session(&rc);
    if (!s) {
        free(rest);
        return rc;
    }
    errlist e = {0};
    pipeline *p = NULL;
    inst *target = NULL;
    int own_target = 0;
    if (pname) {
        p = session_pipeline(s, pname, &e);
        if (p && !into)
            target = p->source;
    }
    if (into && !e.n) {
        target = session_instance(s, "source", into, &e);
        own_target = 1;
    }
    char *err = NULL;
    manifest *m = NULL;
    void *ro = NULL;
    int bad = 0;
    if (e.n) {
        print_errors(&e);
        rc = EXIT_USAGE;
        goto out;
    }
    ro = restore_flags(target, nrest, rest, &bad);
    if (bad) {
        rc = EXIT_USAGE;
        goto out;
    }
    read_stats st;
    if (from) {
        int r2 = file_manifest(from, &m, &err);
        if (r2 == ARCA_OK && strcmp(m->ns, target->plug->desc->name))
            r2 = ARCA_ECONFIG, err = xasprintf("%s holds a '%s' backup; %s cannot restore it", from, m->ns, target->label);
        /* a local file is checked whole before anything is written */
        if (r2 == ARCA_OK)
            r2 = read_file(from, m, NULL, NULL, &st, &err);
        if (r2 == ARCA_OK)
            r2 = read_file(from, m, target, ro, &st, &err);
        if (r2 != ARCA_OK) {
            rc = fail_msg(r2, xasprintf("restore from %s failed: %s", from, err));
            free(err);
            goto out;
        }
        report_read("restore", from, &st);
        goto out;
    }
    char id[64];
    size_t di;
    int r2 = resolve_id(p, want, id, sizeof id, &di, &err);
    inst *d = r2 == ARCA_OK ? p->dests[di] : NULL;
    if (r2 == ARCA_OK)
        r2 = load_catalog(d, id, &m, &err);
    if (r2 == ARCA_OK && strcmp(m->ns, target->plug->desc->name))
        r2 = ARCA_ECONFIG, err = xasprintf("backup %s holds '%s' data; %s cannot restore it", id, m->ns, target->label);
    char *arname = xasprintf("%s.arca", id), *where = d ? xasprintf("%s: %s", d->label, arname) : xstrdup(arname);
    if (r2 == ARCA_OK)
        r2 = read_dest(d, arname, where, m, target, ro, &st, &err);
    if (r2 != ARCA_OK) {
        rc = fail_msg(r2, xasprintf("restore failed: %s", err));
        free(err);
    } else {
        report_read("restore", where, &st);
    }
    free(arname);
    free(where);
out:
    errlist_free(&e);
    if (ro)
        opt_free(target->plug->desc->restore_options, ro);
    manifest_free(m);
    if (own_target)
        inst_destroy(target);
    pipeline_free(p);
    session_close(s);
    free(rest);
    return rc;
}

static int cmd_delete(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("delete takes PIPELINE ID%s", "");
    if (!strcmp(argv[1], "latest") || !id_is_sane(argv[1]))
        return usage_error("delete needs an explicit backup id, not '%s'", argv[1]);
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    char *mf = xasprintf("%s.manifest.json", argv[1]), *ar = xasprintf("%s.arca", argv[1]);
    int found = 0, failed = 0;
    for (size_t i = 0; i < p->ndests; i++) {
        inst *d = p->dests[i];
        const arca_destination_ops *ops = d->plug->desc->destination;
        /* the manifest goes first: from then on the backup is gone, even if the
         * archive's removal fails and leaves a file to clean up */
        int r1 = ops->remove(d->state, mf);
        if (r1 == ARCA_ENOENT) {
            free(inst_take_error(d, r1, ""));
            continue;
        }
        if (r1 != ARCA_OK) {
            char *m = inst_take_error(d, r1, "remove failed");
            fprintf(stderr, "arca: error: %s\n", m);
            free(m);
            failed = 1;
            continue;
        }
        found++;
        int r2 = ops->remove(d->state, ar);
        if (r2 != ARCA_OK && r2 != ARCA_ENOENT) {
            char *m = inst_take_error(d, r2, "remove failed");
            fprintf(stderr, "arca: warning: %s (the backup is deleted; remove %s by hand)\n", m, ar);
            free(m);
        }
        if (!g_json)
            printf("deleted %s from %s\n", argv[1], d->label);
    }
    if (!found && !failed) {
        fprintf(stderr, "arca: error: backup '%s' not found at any destination of pipeline '%s'\n", argv[1], p->name);
        failed = 1;
    }
    free(mf);
    free(ar);
    pipeline_free(p);
    session_close(s);
    return failed ? EXIT_FAIL : EXIT_OK;
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

static int cmd_plugins(int argc, char **argv)
{
    if (argc > 1)
        return usage_error("plugins takes at most one NAME%s", "");
    const char *path = cfg_locate(g_config_arg);
    errlist e = {0};
    session *s = path ? session_open(path, &e) : NULL;
    errlist_free(&e); /* config errors belong to `config check`; listing still works */
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

static int cmd_config(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "check"))
        return usage_error("usage: arca config check%s", "");
    const char *path = cfg_locate(g_config_arg);
    if (!path) {
        fprintf(stderr, "arca: error: no config file: give -c FILE, set ARCA_CONFIG, or create ./arca.ini\n");
        return EXIT_USAGE;
    }
    errlist e = {0};
    session *s = session_open(path, &e);
    if (s)
        session_check_all(s, &e);
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

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_log_level = ARCA_LOG_WARN;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") && i + 1 < argc)
            g_config_arg = argv[++i];
        else if (!strncmp(a, "--config=", 9))
            g_config_arg = a + 9;
        else if (!strcmp(a, "--json"))
            g_json = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            g_verbosity--;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            g_verbosity++;
        else if (!strcmp(a, "-vv"))
            g_verbosity += 2;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("arca %s (plugin ABI %d.%d)\n", ARCA_VERSION, ARCA_ABI_MAJOR, ARCA_ABI_MINOR);
            return EXIT_OK;
        } else
            return usage_error("unknown option '%s'", a);
    }
    apply_log_level(ARCA_LOG_WARN);
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    int n = argc - i;
    char **args = argv + i;
    if (!strcmp(cmd, "backup")) return cmd_backup(n, args);
    if (!strcmp(cmd, "list")) return cmd_list(n, args);
    if (!strcmp(cmd, "verify")) return cmd_verify(n, args);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(n, args);
    if (!strcmp(cmd, "restore")) return cmd_restore(n, args);
    if (!strcmp(cmd, "delete")) return cmd_delete(n, args);
    if (!strcmp(cmd, "plugins")) return cmd_plugins(n, args);
    if (!strcmp(cmd, "config")) return cmd_config(n, args);
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    return usage_error("unknown command '%s'", cmd);
}
