/* arca list PIPELINE [--all] and arca delete PIPELINE ID: the catalogue commands. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "dest.h"
#include "names.h"

static json_t *list_row(pipeline *p, const cat_entry *e, int all)
{
    json_t *h = e->header, *src = json_object_get(h, "source"), *tot = e->totals;
    json_t *row = json_pack("{s:s,s:s}", "id", e->id, "destination", p->dests[e->dest]->name);
    json_object_set(row, "created", json_object_get(h, "created"));
    json_object_set(row, "pipeline", json_object_get(h, "pipeline"));
    json_object_set(row, "source", json_object_get(src, "name"));
    json_object_set(row, "source_plugin", json_object_get(src, "plugin"));
    json_object_set(row, "format_version", json_object_get(h, "format_version"));
    if (tot) {
        json_object_set(row, "objects", json_object_get(tot, "objects"));
        json_object_set(row, "raw_bytes", json_object_get(tot, "raw_bytes"));
    }
    if (e->has_archive)
        json_object_set_new(row, "archive_bytes", json_integer((json_int_t)e->archive_size));
    if (!h)
        json_object_set_new(row, "error", json_string("unreadable catalogue"));
    if (all)
        json_object_set_new(row, "other_pipeline", json_boolean(!e->owner || strcmp(e->owner, p->name)));
    return row;
}

static void list_print(json_t *arr, int all)
{
    size_t i;
    json_t *row;
    if (!json_array_size(arr))
        return;
    printf("%-28s %-20s %-16s %8s %10s  %s%s\n", "ID", "CREATED", "SOURCE", "OBJECTS", "SIZE", "DESTINATION",
           all ? "  PIPELINE" : "");
    json_array_foreach(arr, i, row)
    {
        char sz[32] = "?", obj[32] = "?", srcs[160];
        json_t *as = json_object_get(row, "archive_bytes"), *ob = json_object_get(row, "objects");
        if (json_is_integer(as))
            human_size((uint64_t)json_integer_value(as), sz, sizeof sz);
        if (json_is_integer(ob))
            snprintf(obj, sizeof obj, "%" JSON_INTEGER_FORMAT, json_integer_value(ob));
        snprintf(srcs, sizeof srcs, "%s (%s)", json_string_value(json_object_get(row, "source")) ?: "?",
                 json_string_value(json_object_get(row, "source_plugin")) ?: "?");
        printf("%-28s ", json_string_value(json_object_get(row, "id")));
        print_text(stdout, json_string_value(json_object_get(row, "created")) ?: "?");
        printf(" ");
        print_text(stdout, srcs);
        printf(" %8s %10s  %s", obj, sz, json_string_value(json_object_get(row, "destination")));
        if (all) {
            printf("  ");
            print_text(stdout, json_string_value(json_object_get(row, "pipeline")) ?: "?");
            if (json_is_true(json_object_get(row, "other_pipeline")))
                printf(" (other pipeline)");
        }
        if (json_object_get(row, "error"))
            printf("  [unreadable catalogue]");
        printf("\n");
    }
}

int cmd_list(int argc, char **argv)
{
    int all = argc == 2 && !strcmp(argv[1], "--all");
    if (argc < 1 || argc > 2 || (argc == 2 && !all))
        return usage_error("list takes PIPELINE [--all]%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    cat_list l;
    char *err = NULL;
    int st = all ? cat_all(p, 1, &l, &err) : cat_pipeline(p, NULL, 1, &l, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, xasprintf("cannot list pipeline '%s': %s", p->name, err));
        free(err);
        close_pipeline(p, s);
        return rc;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, list_row(p, &l.v[i], all));
    if (g_json)
        print_json(arr);
    else
        list_print(arr, all);
    json_decref(arr);
    cat_list_free(&l);
    close_pipeline(p, s);
    return EXIT_OK;
}

/* Catalogue first: once it is gone the backup is gone, even if the archive's
 * removal then fails and leaves a file to clean up. */
static int delete_one(pipeline *p, const cat_entry *e)
{
    inst *d = p->dests[e->dest];
    char *mf = cat_entry_manifest(e), *ar = cat_entry_archive(e), *err = NULL;
    int rc = dest_remove(d, mf, &err);
    if (rc != ARCA_OK) {
        fprintf(stderr, "arca: error: %s\n", err);
    } else {
        free(err);
        err = NULL;
        int r2 = dest_remove(d, ar, &err);
        if (r2 != ARCA_OK && r2 != ARCA_ENOENT)
            fprintf(stderr, "arca: warning: %s (the backup is deleted; remove %s by hand)\n", err, ar);
        if (!g_json)
            printf("deleted %s from %s\n", e->id, d->label);
    }
    free(err);
    free(mf);
    free(ar);
    return rc;
}

int cmd_delete(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("delete takes PIPELINE ID%s", "");
    if (!backup_id_valid(argv[1]))
        return usage_error("delete needs an explicit backup id, not '%s'", argv[1]);
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(argv[0], &s, &rc);
    if (!p)
        return rc;
    cat_list l;
    char *err = NULL;
    int st = cat_pipeline(p, NULL, 0, &l, &err);
    if (st != ARCA_OK) {
        rc = fail_msg(st, xasprintf("cannot list pipeline '%s': %s", p->name, err));
        free(err);
        close_pipeline(p, s);
        return rc;
    }
    int found = 0, failed = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!strcmp(l.v[i].id, argv[1])) {
            found++;
            failed |= delete_one(p, &l.v[i]) != ARCA_OK;
        }
    if (!found) {
        fprintf(stderr, "arca: error: backup '%s' not found at any destination of pipeline '%s'\n", argv[1], p->name);
        failed = 1;
    }
    cat_list_free(&l);
    close_pipeline(p, s);
    return failed ? EXIT_FAIL : EXIT_OK;
}

/* ---- cleanup: leftovers of interrupted backups ------------------------------------ */

typedef struct cleanup_ctx {
    inst *d;
    int dry_run;
    size_t n;
    json_t *rows;
} cleanup_ctx;

static int cleanup_cb(void *ud, const arca_object_stat *st)
{
    cleanup_ctx *c = ud;
    char when[32] = "?", sz[32];
    if (st->mtime_sec > 0)
        iso_time(st->mtime_sec, when, sizeof when);
    human_size(st->size, sz, sizeof sz);
    c->n++;
    if (g_json) {
        json_array_append_new(c->rows, json_pack("{s:s,s:s,s:s,s:I,s:b}", "destination", c->d->name, "name", st->name,
                                                 "started", when, "bytes", (json_int_t)st->size, "removed", !c->dry_run));
        return 0;
    }
    printf("%s %s: ", c->dry_run ? "would remove" : "removed", c->d->label);
    print_text(stdout, st->name);
    printf(" (started %s, %s so far)\n", when, sz);
    return 0;
}

/* arca cleanup PIPELINE [--older-than AGE] [--dry-run]: temporaries and
 * unfinished uploads that interrupted backups of this pipeline left behind. */
int cmd_cleanup(int argc, char **argv)
{
    int64_t age = 24 * 3600;
    int dry = 0;
    const char *pname = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run"))
            dry = 1;
        else if (!strcmp(argv[i], "--older-than") && i + 1 < argc) {
            if (parse_age(argv[++i], &age))
                return usage_error("--older-than takes an age such as 90m, 24h or 7d, not '%s'", argv[i]);
        } else if (!strncmp(argv[i], "--older-than=", 13)) {
            if (parse_age(argv[i] + 13, &age))
                return usage_error("--older-than takes an age such as 90m, 24h or 7d, not '%s'", argv[i] + 13);
        } else if (argv[i][0] != '-' && !pname)
            pname = argv[i];
        else
            return usage_error("cleanup takes PIPELINE [--older-than AGE] [--dry-run], not '%s'", argv[i]);
    }
    if (!pname)
        return usage_error("cleanup takes PIPELINE [--older-than AGE] [--dry-run]%s", "");
    int rc = 0;
    session *s;
    pipeline *p = open_pipeline(pname, &s, &rc);
    if (!p)
        return rc;
    char *prefix = xasprintf("%s.", p->name);
    int64_t before = (int64_t)time(NULL) - age;
    int failed = 0;
    json_t *rows = json_array();
    for (size_t i = 0; i < p->ndests; i++) {
        cleanup_ctx c = {p->dests[i], dry, 0, rows};
        char *err = NULL;
        int st = dest_cleanup(p->dests[i], prefix, before, dry, cleanup_cb, &c, &err);
        if (st != ARCA_OK) {
            fprintf(stderr, "arca: error: %s\n", err);
            failed = 1;
        } else if (!g_json && !c.n) {
            printf("nothing to clean up at %s\n", p->dests[i]->label);
        }
        free(err);
    }
    if (g_json)
        print_json(rows);
    json_decref(rows);
    free(prefix);
    close_pipeline(p, s);
    return failed ? EXIT_FAIL : EXIT_OK;
}
