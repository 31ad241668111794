/* arca backup PIPELINE */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_backup(int argc, char **argv)
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
    close_pipeline(p, s);
    return rc;
}
