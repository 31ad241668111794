/* Trust in files arca reads code or configuration from, judged as OpenSSH's
 * StrictModes does: the file and every directory above it must be owned by
 * root or by the user running arca, and writable by nobody else. A directory
 * others may write to is fine only with the sticky bit (as /tmp), which keeps
 * them from replacing what they do not own. A group-writable entry is fine
 * when the group is root's or the owner's own private group (Debian's default
 * umask 002 gives those). */
#include "secure.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* 1 when nobody but `uid` is in group `gid`. */
static int private_group(gid_t gid, uid_t uid)
{
    if (gid == 0)
        return 1;
    struct passwd *pw = getpwuid(uid);
    struct group *gr = getgrgid(gid);
    if (!pw || !gr || pw->pw_gid != gid)
        return 0;
    for (char **m = gr->gr_mem; *m; m++)
        if (strcmp(*m, pw->pw_name))
            return 0;
    return 1;
}

static char *judge(const char *path, const struct stat *st, int is_dir)
{
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me)
        return xasprintf("%s is owned by uid %u, not by root or you (uid %u): fix with chown", path,
                         (unsigned)st->st_uid, (unsigned)me);
    int sticky = is_dir && (st->st_mode & S_ISVTX);
    if ((st->st_mode & S_IWOTH) && !sticky)
        return xasprintf("%s is writable by everyone: fix with chmod o-w %s", path, path);
    if ((st->st_mode & S_IWGRP) && !sticky && !private_group(st->st_gid, st->st_uid))
        return xasprintf("%s is writable by its group (gid %u): fix with chmod g-w %s", path, (unsigned)st->st_gid, path);
    return NULL;
}

char *path_untrusted(const char *path, int want_dir)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return xasprintf("%s: %s", path, strerror(errno));
    struct stat st;
    if (stat(real, &st) != 0)
        return xasprintf("%s: %s", real, strerror(errno));
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return xasprintf("%s is not a %s", real, want_dir ? "directory" : "regular file");
    char *why = judge(real, &st, want_dir);
    /* every directory above it, up to / */
    for (char *slash = strrchr(real, '/'); !why && slash; slash = strrchr(real, '/')) {
        if (slash == real)
            slash[1] = 0;
        else
            *slash = 0;
        if (stat(real, &st) != 0)
            return xasprintf("%s: %s", real, strerror(errno));
        why = judge(real, &st, 1);
        if (!strcmp(real, "/"))
            break;
    }
    return why;
}
