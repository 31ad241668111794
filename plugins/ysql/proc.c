/* ysql plugin: the dump and restore commands. Which program to run (the
 * YugabyteDB tool, else PostgreSQL's, past Debian's pg_wrapper), and running it
 * through the common runner (plugins/common/pc_proc.c) with the password only
 * in its environment as PGPASSWORD, never on the command line. */
#include "ysql.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pc_proc.h"

/* Debian and Ubuntu put a Perl dispatcher, pg_wrapper, on PATH as pg_dump and
 * psql; starting Perl costs ~0.1 s per call (two calls per backup, two in a row
 * per restore). Without PGCLUSTER it runs the newest installed client unless a
 * local cluster listens on 5432, whose (possibly older) version it prefers; for
 * a dump or a script run against a server named in the connection string the
 * newest client is the right one anyway. So a pg_wrapper found on PATH is
 * replaced by the newest /usr/lib/postgresql/N/bin/NAME; PGCLUSTER keeps it. */
static char *skip_pg_wrapper(char *path, const char *name)
{
    char real[PATH_MAX];
    const char *base = realpath(path, real) ? strrchr(real, '/') : NULL;
    if (!base || strcmp(base, "/pg_wrapper") || getenv("PGCLUSTER"))
        return path;
    DIR *d = opendir("/usr/lib/postgresql");
    long best = -1;
    char *found = NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        char *cand = NULL;
        if (*end || end == de->d_name || v <= best ||
            asprintf(&cand, "/usr/lib/postgresql/%s/bin/%s", de->d_name, name) < 0)
            continue;
        struct stat st;
        if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            free(found);
            found = cand;
            best = v;
        } else {
            free(cand);
        }
    }
    if (d)
        closedir(d);
    if (!found)
        return path;
    free(path);
    return found;
}

char *ysql_resolve_command(const char *configured, const char *yb_name, const char *pg_name,
                           ysql_err *e, const char *option)
{
    char *path;
    if (configured && *configured) {
        if (!(path = pc_which(configured)))
            ysql_fail(e, ARCA_ECONFIG,
                      "%s '%s' is not an executable file%s\nhint: install it or set %s to its full path",
                      option, configured, strchr(configured, '/') ? "" : " on PATH", option);
        return path;
    }
    if ((path = pc_which(yb_name)))
        return path;
    if ((path = pc_which(pg_name)))
        return skip_pg_wrapper(path, pg_name);
    ysql_fail(e, ARCA_ECONFIG,
              "neither %s nor %s is on PATH\nhint: install the YugabyteDB or PostgreSQL client "
              "tools (Debian: postgresql-client), or set %s", yb_name, pg_name, option);
    return NULL;
}

int ysql_run(const arca_host *h, ysql_err *e, char *const argv[], const char *password,
             const char *input, size_t input_len, pc_buf *out, pc_buf *errout, int *status)
{
    static const char *const unset[] = {"PGPASSWORD", NULL};
    const char *set[2] = {NULL, NULL};
    char *pwenv = NULL, msg[1024];
    int st = 0, rc;

    if (password && *password) {
        if (asprintf(&pwenv, "PGPASSWORD=%s", password) < 0)
            return ysql_fail(e, ARCA_ENOMEM, "cannot run %s: out of memory", argv[0]);
        set[0] = pwenv;
    }
    pc_proc p = {
        .argv = argv, .env_unset = unset, .env_set = set, .input = input, .input_len = input_len,
        .out = out, .err = errout, .host = h,
    };
    rc = pc_proc_run(&p, &st, msg, sizeof msg);
    if (pwenv) {
        memset(pwenv, 0, strlen(pwenv));
        free(pwenv);
    }
    if (status)
        *status = st;
    return rc ? ysql_fail(e, rc, "%s", msg) : ARCA_OK;
}
