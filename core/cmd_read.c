/* The commands that read archives: verify, inspect, restore. An archive comes
 * from a pipeline's destination (its catalogue first), a local file (its own
 * manifest, found by a scan), or a pipe (checked in one pass). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "dest.h"
#include "names.h"

/* ---- byte streams: a file descriptor, a destination object ------------------------- */

typedef struct dstream {
    dest_get *g;
    char *err;
} dstream;

static int ds_read(void *ud, void *buf, size_t cap, size_t *got)
{
    dstream *s = ud;
    free(s->err);
    s->err = NULL;
    return dest_get_read(s->g, buf, cap, got, &s->err);
}

static char *ds_error(void *ud)
{
    dstream *s = ud;
    return xstrdup(s->err ? s->err : "read failed");
}

/* ---- where an archive comes from -------------------------------------------------- */

typedef struct source_file {
    int fd;         /* the archive (a file, or the temporary copy of a pipe) */
    int mfd;        /* where its manifest lives (== fd for a file) */
    manifest *m;
    uint64_t moff, mlen; /* the manifest's bytes in mfd */
    char *where;
} source_file;

static void source_file_close(source_file *f)
{
    mf_close(f->m);
    if (f->mfd >= 0 && f->mfd != f->fd)
        close(f->mfd);
    if (f->fd >= 0)
        close(f->fd);
    free(f->where);
    memset(f, 0, sizeof *f);
    f->fd = f->mfd = -1;
}

/* An archive file whose manifest is found inside it. */
static int open_archive_fd(int fd, const char *where, source_file *f, char **err)
{
    memset(f, 0, sizeof *f);
    f->fd = f->mfd = fd;
    f->where = xstrdup(where);
    json_t *hdr = NULL;
    int rc = engine_locate(fd, where, &hdr, &f->moff, &f->mlen, err);
    if (rc == ARCA_OK && !(f->m = mf_open(fd, f->moff, f->mlen, where, &rc, err)))
        rc = rc ? rc : ARCA_EINTEGRITY;
    if (rc == ARCA_OK && !json_equal(hdr, mf_header(f->m))) {
        *err = xasprintf("%s: arca.json does not match the header in MANIFEST.json", where);
        rc = ARCA_EINTEGRITY;
    }
    json_decref(hdr);
    if (rc != ARCA_OK)
        source_file_close(f);
    return rc;
}

static int read_fd(source_file *f, inst *target, const void *ropts, read_stats *st, char **err)
{
    if (lseek(f->fd, 0, SEEK_SET) < 0) {
        *err = xasprintf("%s: %s", f->where, strerror(errno));
        return ARCA_EFAIL;
    }
    fd_stream fs;
    rd_stream in;
    fd_stream_init(&in, &fs, f->fd, f->where, 0);
    return engine_read(&in, f->m, target, ropts, st, err);
}

/* "-" or anything that is not a regular file (a fifo, /dev/stdin) is read once, as a stream. */
static int is_stream(const char *path)
{
    struct stat sb;
    return !strcmp(path, "-") || (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode));
}

static int open_input(const char *path, int *fd, char **err)
{
    *fd = !strcmp(path, "-") ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        *err = xasprintf("%s: cannot open archive: %s", path, strerror(errno));
        return ARCA_EFAIL;
    }
    return ARCA_OK;
}

static const char *shown_path(const char *path)
{
    return !strcmp(path, "-") ? "(stdin)" : path;
}

/* One pass over a stream; with copy_fd >= 0 its bytes are kept there too. */
static int read_stream(const char *path, int copy_fd, read_stats *st, char **err)
{
    int fd;
    int rc = open_input(path, &fd, err);
    if (rc)
        return rc;
    fd_stream fs;
    rd_stream in;
    fd_stream_init(&in, &fs, fd, shown_path(path), 0);
    rc = engine_read_blind(&in, copy_fd, st, err);
    close(fd);
    return rc;
}

/* A file, or a stream copied to a temporary file while it is checked. */
static int open_local(const char *path, source_file *f, read_stats *st, int *checked, char **err)
{
    int fd;
    *checked = 0;
    if (is_stream(path)) {
        if ((fd = tmp_open(NULL, err)) < 0)
            return ARCA_EFAIL;
        int rc = read_stream(path, fd, st, err);
        if (rc != ARCA_OK) {
            close(fd);
            return rc;
        }
        *checked = 1;
        return open_archive_fd(fd, shown_path(path), f, err);
    }
    int rc = open_input(path, &fd, err);
    return rc ? rc : open_archive_fd(fd, path, f, err);
}

static int read_dest(pipeline *p, const cat_entry *e, manifest *m, inst *target, const void *ropts, read_stats *st,
                     char **where, char **err)
{
    inst *d = p->dests[e->dest];
    char *ar = cat_entry_archive(e);
    *where = xasprintf("%s: %s", d->label, ar);
    dstream ds = {NULL, NULL};
    int rc = dest_get_open(d, ar, 0, 0, &ds.g, err);
    if (rc == ARCA_OK) {
        rd_stream in = {ds_read, &ds, *where, ds_error, NULL};
        rc = engine_read(&in, m, target, ropts, st, err);
        dest_get_close(ds.g);
    }
    free(ds.err);
    free(ar);
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

/* Pulls "--destination NAME" out of argv; returns the remaining count. */
static int take_destination(int argc, char **argv, const char **dest)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--destination") && i + 1 < argc)
            *dest = argv[++i];
        else if (!strncmp(argv[i], "--destination=", 14))
            *dest = argv[i] + 14;
        else
            argv[n++] = argv[i];
    }
    return n;
}

/* ---- verify ---------------------------------------------------------------------------- */

static int verify_local(const char *path)
{
    read_stats st;
    char *err = NULL;
    int rc;
    if (is_stream(path)) {
        rc = read_stream(path, -1, &st, &err);
    } else {
        source_file f = {.fd = -1, .mfd = -1};
        int checked;
        rc = open_local(path, &f, &st, &checked, &err);
        if (rc == ARCA_OK)
            rc = read_fd(&f, NULL, NULL, &st, &err);
        source_file_close(&f);
    }
    if (rc != ARCA_OK) {
        int code = fail_msg(rc, xasprintf("verify failed: %s", err));
        free(err);
        return code;
    }
    report_read("verify", shown_path(path), &st);
    return EXIT_OK;
}

static int verify_entry(pipeline *p, const cat_entry *e)
{
    int fd = -1, rc;
    manifest *m = NULL;
    char *err = NULL, *where = NULL;
    read_stats st;
    rc = cat_open(p, e, &fd, &m, &err);
    if (rc == ARCA_OK)
        rc = read_dest(p, e, m, NULL, NULL, &st, &where, &err);
    if (rc != ARCA_OK)
        fprintf(stderr, "arca: error: verify %s failed: %s\n", e->id, err);
    else
        report_read("verify", where, &st);
    free(err);
    free(where);
    mf_close(m);
    if (fd >= 0)
        close(fd);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    const char *dest = NULL;
    argc = take_destination(argc, argv, &dest);
    if (argc < 1 || argc > 2)
        return usage_error("verify takes PIPELINE [ID|latest] [--destination NAME], FILE.arca or -%s", "");
    if (argc == 1 && !dest && (!strcmp(argv[0], "-") || strchr(argv[0], '/') || access(argv[0], F_OK) == 0))
        return verify_local(argv[0]);
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    cat_entry want;
    char *err = NULL;
    int st = cat_resolve(p, argc == 2 ? argv[1] : "latest", dest, &want, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, err);
        close_pipeline(p, s);
        return rc;
    }
    /* every destination that holds the backup is checked */
    cat_list l;
    st = cat_pipeline(p, dest, 0, &l, &err);
    int worst = st;
    if (st != ARCA_OK)
        fprintf(stderr, "arca: error: %s\n", err), free(err);
    for (size_t i = 0; st == ARCA_OK && i < l.n; i++) {
        if (strcmp(l.v[i].id, want.id))
            continue;
        int r2 = verify_entry(p, &l.v[i]);
        if (r2 != ARCA_OK && worst != ARCA_EINTEGRITY)
            worst = r2;
    }
    if (st == ARCA_OK)
        cat_list_free(&l);
    cat_entry_clear(&want);
    close_pipeline(p, s);
    return exit_code_for(worst);
}

/* ---- inspect --------------------------------------------------------------------------- */

static void print_field(const char *label, const char *value)
{
    printf("%-14s", label);
    print_text(stdout, value ? value : "?");
    printf("\n");
}

static int copy_out(int fd, uint64_t off, uint64_t len)
{
    char buf[1 << 16];
    while (len) {
        size_t want = len < sizeof buf ? (size_t)len : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
            return -1;
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

static void inspect_objects(manifest *m)
{
    mf_cursor *c = mf_objects(m);
    mf_obj o = {0};
    size_t shown = 0;
    while (shown < 20 && mf_next_object(c, &o) == 1) {
        char sz[32] = "";
        if (o.info.kind == ARCA_OBJ_DATA)
            human_size(o.size, sz, sizeof sz);
        printf("  %-8s %10s  ", kind_name(o.info.kind), sz);
        print_text(stdout, o.name);
        if (o.target) {
            printf(" -> ");
            print_text(stdout, o.target);
        }
        printf("\n");
        shown++;
    }
    mf_obj_clear(&o);
    mf_cursor_free(c);
    if (mf_nobjects(m) > shown)
        printf("  ... and %" PRIu64 " more (--json prints the whole manifest)\n", mf_nobjects(m) - shown);
}

static void inspect_print(manifest *m, const char *where)
{
    json_t *h = mf_header(m), *src = json_object_get(h, "source"), *tot = mf_totals(m);
    char raw[32], stored[32], buf[256];
    human_size((uint64_t)json_integer_value(json_object_get(tot, "raw_bytes")), raw, sizeof raw);
    human_size((uint64_t)json_integer_value(json_object_get(tot, "stored_bytes")), stored, sizeof stored);
    print_field("archive:", where);
    snprintf(buf, sizeof buf, "%s v%d", ARCA_FORMAT_NAME, mf_version(m));
    print_field("format:", buf);
    print_field("backup id:", mf_id(m));
    print_field("created:", json_string_value(json_object_get(h, "created")));
    print_field("arca version:", json_string_value(json_object_get(h, "arca_version")));
    print_field("pipeline:", json_string_value(json_object_get(h, "pipeline")));
    snprintf(buf, sizeof buf, "%s (plugin %s %s, mode %s)", json_string_value(json_object_get(src, "name")) ?: "?",
             json_string_value(json_object_get(src, "plugin")) ?: "?",
             json_string_value(json_object_get(src, "plugin_version")) ?: "?",
             json_string_value(json_object_get(src, "mode")) ?: "?");
    print_field("source:", buf);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(src, "info"), k, v)
    {
        char *val = jbytes_get(v);
        printf("  ");
        print_text(stdout, k);
        printf("%*s", (int)(15 - (strlen(k) < 15 ? strlen(k) : 15)), "");
        print_text(stdout, val ? val : "(unreadable)");
        printf("\n");
        free(val);
    }
    snprintf(buf, sizeof buf, "%s, chunk size %" PRIu64, json_string_value(json_object_get(h, "compression")) ?: "?",
             mf_chunk_size(m));
    print_field("compression:", buf);
    printf("%-14s%" PRIu64 " objects, %" PRIu64 " members, %s raw, %s stored\n", "contents:", mf_nobjects(m),
           mf_nmembers(m), raw, stored);
    inspect_objects(m);
}

static int inspect_show(manifest *m, int mfd, uint64_t off, uint64_t len, const char *where)
{
    if (!g_json) {
        inspect_print(m, where);
        return EXIT_OK;
    }
    /* the manifest document as stored: streamed, whatever its size */
    if (copy_out(mfd, off, len) < 0) {
        fprintf(stderr, "arca: error: %s: cannot print the manifest: %s\n", where, strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    char *err = NULL;
    if (argc == 1) {
        int fd, rc = open_input(argv[0], &fd, &err);
        source_file f = {.fd = -1, .mfd = -1};
        if (rc == ARCA_OK)
            rc = open_archive_fd(fd, argv[0], &f, &err);
        if (rc != ARCA_OK)
            return fail_msg(rc, err);
        rc = inspect_show(f.m, f.fd, f.moff, f.mlen, argv[0]);
        source_file_close(&f);
        return rc;
    }
    if (argc != 2)
        return usage_error("inspect takes FILE.arca or PIPELINE ID%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    cat_entry e;
    int fd = -1;
    manifest *m = NULL;
    int st = cat_resolve(p, argv[1], NULL, &e, &err);
    if (st == ARCA_OK)
        st = cat_open(p, &e, &fd, &m, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, err);
    } else {
        char *ar = cat_entry_archive(&e), *where = xasprintf("%s: %s", p->dests[e.dest]->label, ar);
        struct stat sb;
        rc = inspect_show(m, fd, 0, fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0, where);
        free(ar);
        free(where);
    }
    mf_close(m);
    if (fd >= 0)
        close(fd);
    cat_entry_clear(&e);
    close_pipeline(p, s);
    return rc;
}

/* ---- restore ----------------------------------------------------------------------------- */

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
        char *key = xstrdup(a + 2), *val = NULL, *eq = strchr(key, '=');
        if (eq) {
            *eq = 0;
            val = xstrdup(eq + 1);
        }
        for (char *c = key; *c; c++)
            *c = *c == '-' ? '_' : *c;
        const arca_option *o = opt_find(d->restore_options, key);
        if (!o) {
            char *known = opt_flag_list(d->restore_options);
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

typedef struct restore_args {
    const char *from, *into, *pname, *want, *dest;
    char **rest; /* source flags, judged by the plugin's table */
    int nrest;
} restore_args;

static int restore_parse(int argc, char **argv, restore_args *a)
{
    int i = 0;
    memset(a, 0, sizeof *a);
    a->rest = xcalloc((size_t)argc + 1, sizeof *a->rest);
    if (i < argc && strncmp(argv[i], "--", 2))
        a->pname = argv[i++];
    if (a->pname && i < argc && strncmp(argv[i], "--", 2))
        a->want = argv[i++];
    for (; i < argc; i++) {
        const char **slot = !strcmp(argv[i], "--from") ? &a->from : !strcmp(argv[i], "--into") ? &a->into
                          : !strcmp(argv[i], "--destination") ? &a->dest : NULL;
        if (slot && i + 1 < argc)
            *slot = argv[++i];
        else if (!strncmp(argv[i], "--from=", 7))
            a->from = argv[i] + 7;
        else if (!strncmp(argv[i], "--into=", 7))
            a->into = argv[i] + 7;
        else if (!strncmp(argv[i], "--destination=", 14))
            a->dest = argv[i] + 14;
        else
            a->rest[a->nrest++] = argv[i];
    }
    if (a->from && a->pname)
        return usage_error("restore takes either PIPELINE or --from FILE, not both (got '%s')", a->pname);
    if (a->from && !a->into)
        return usage_error("restore --from FILE needs --into SOURCE%s", "");
    if (a->from && a->dest)
        return usage_error("restore --from FILE takes no --destination%s", "");
    if (!a->from && !a->pname)
        return usage_error("restore takes PIPELINE [ID|latest] [--into SOURCE] or --from FILE --into SOURCE%s", "");
    return 0;
}

/* The archive's namespace must be the target plugin's. */
static int check_target(manifest *m, inst *target, const char *what, char **err)
{
    if (strcmp(mf_ns(m), target->plug->desc->name)) {
        char *shown = text_printable(mf_ns(m));
        *err = xasprintf("%s holds a '%s' backup; %s cannot restore it", what, shown, target->label);
        free(shown);
        return ARCA_ECONFIG;
    }
    return ARCA_OK;
}

static int restore_local(restore_args *a, inst *target, const void *ro)
{
    source_file f = {.fd = -1, .mfd = -1};
    read_stats st;
    char *err = NULL;
    int checked = 0;
    int rc = open_local(a->from, &f, &st, &checked, &err);
    if (rc == ARCA_OK)
        rc = check_target(f.m, target, shown_path(a->from), &err);
    /* checked whole before anything is written: a bad archive writes nothing */
    if (rc == ARCA_OK && !checked)
        rc = read_fd(&f, NULL, NULL, &st, &err);
    if (rc == ARCA_OK)
        rc = read_fd(&f, target, ro, &st, &err);
    source_file_close(&f);
    if (rc != ARCA_OK) {
        int code = fail_msg(rc, xasprintf("restore from %s failed: %s", shown_path(a->from), err));
        free(err);
        return code;
    }
    report_read("restore", shown_path(a->from), &st);
    return EXIT_OK;
}

static int restore_pipeline(restore_args *a, pipeline *p, inst *target, const void *ro)
{
    cat_entry e;
    int fd = -1;
    manifest *m = NULL;
    char *err = NULL, *where = NULL;
    read_stats st;
    int rc = cat_resolve(p, a->want, a->dest, &e, &err);
    if (rc == ARCA_OK)
        rc = cat_open(p, &e, &fd, &m, &err);
    if (rc == ARCA_OK)
        rc = check_target(m, target, e.id, &err);
    if (rc == ARCA_OK && !a->into) {
        /* the pipeline's source, unless the backup came from another one */
        const char *from = json_string_value(json_object_get(json_object_get(mf_header(m), "source"), "name"));
        if (!from || strcmp(from, target->name)) {
            err = xasprintf("backup %s was made from source '%s', and this pipeline's source is now '%s': "
                            "say --into %s to restore it there anyway",
                            e.id, from ? from : "?", target->name, target->name);
            rc = ARCA_ECONFIG;
        }
    }
    if (rc == ARCA_OK)
        rc = read_dest(p, &e, m, target, ro, &st, &where, &err);
    int code = EXIT_OK;
    if (rc != ARCA_OK) {
        code = fail_msg(rc, xasprintf("restore failed: %s", err));
        free(err);
    } else {
        report_read("restore", where, &st);
    }
    free(where);
    mf_close(m);
    if (fd >= 0)
        close(fd);
    cat_entry_clear(&e);
    return code;
}

int cmd_restore(int argc, char **argv)
{
    restore_args a;
    int rc = restore_parse(argc, argv, &a);
    if (rc) {
        free(a.rest);
        return rc;
    }
    session *s = open_session(&rc);
    if (!s) {
        free(a.rest);
        return rc;
    }
    errlist e = {0};
    pipeline *p = a.pname ? session_pipeline(s, a.pname, &e) : NULL;
    inst *target = p && !a.into ? p->source : NULL, *own = NULL;
    if (a.into && !e.n)
        target = own = session_instance(s, "source", a.into, &e);
    void *ro = NULL;
    int bad = 0;
    if (e.n) {
        print_errors(&e);
        rc = EXIT_USAGE;
    } else if ((ro = restore_flags(target, a.nrest, a.rest, &bad)), bad) {
        rc = EXIT_USAGE;
    } else {
        rc = a.from ? restore_local(&a, target, ro) : restore_pipeline(&a, p, target, ro);
    }
    errlist_free(&e);
    if (ro)
        opt_free(target->plug->desc->restore_options, ro);
    inst_destroy(own);
    close_pipeline(p, s);
    free(a.rest);
    return rc;
}
