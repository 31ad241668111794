/* files plugin: the restore's path guard. Names come from an archive, so every
 * one is checked, then resolved from the target's fd without following links. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_name_ok(const char *name)
{
    if (!name || !*name || *name == '/')
        return 0;
    for (const char *p = name;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (!end)
            return 1;
        p = end + 1;
    }
}

static int fs_open_dir_at(int dir, const char *comp, int create)
{
    for (int attempt = 0;; attempt++) {
        int fd = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT || !create || attempt > 0)
            return -errno;
        /* EEXIST: someone made it between our open and mkdir; the reopen
         * with O_NOFOLLOW decides whether it is usable. */
        /* 0700: a directory the archive does not list gets no more than its
         * owner needs, whatever the umask; listed ones get their own mode */
        if (mkdirat(dir, comp, 0700) < 0 && errno != EEXIST)
            return -errno;
    }
}

int fs_open_parent(int root, const char *name, int create, const char **leaf)
{
    char comp[NAME_MAX + 1];
    int cur = fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (cur < 0)
        return -errno;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            *leaf = p;
            return cur;
        }
        size_t n = (size_t)(slash - p);
        if (n > NAME_MAX) {
            close(cur);
            return -ENAMETOOLONG;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int next = fs_open_dir_at(cur, comp, create);
        close(cur);
        if (next < 0)
            return next;
        cur = next;
        p = slash + 1;
    }
}

int fs_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
