/* ysql plugin: child processes (the dump and restore commands). posix_spawn with
 * an argv - no shell - and an environment that carries the password as
 * PGPASSWORD, never the command line. One poll loop feeds stdin and drains
 * stdout and stderr, so a chatty child never deadlocks against us. */
#include "ysql.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define STDERR_KEEP (64u << 10)
#define POLL_MS 200

char *ysql_which(const char *cmd)
{
    if (!cmd || !*cmd)
        return NULL;
    struct stat st;
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0 && stat(cmd, &st) == 0 && S_ISREG(st.st_mode) ? strdup(cmd)
                                                                                    : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *full = NULL;
        if (asprintf(&full, "%.*s/%s", (int)n, n ? p : ".", cmd) < 0)
            return NULL;
        if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            return full;
        free(full);
        if (!end)
            return NULL;
        p = end + 1;
    }
}

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
        if (!(path = ysql_which(configured)))
            ysql_fail(e, ARCA_ECONFIG,
                      "%s '%s' is not an executable file%s\nhint: install it or set %s to its full path",
                      option, configured, strchr(configured, '/') ? "" : " on PATH", option);
        return path;
    }
    if ((path = ysql_which(yb_name)))
        return path;
    if ((path = ysql_which(pg_name)))
        return skip_pg_wrapper(path, pg_name);
    ysql_fail(e, ARCA_ECONFIG,
              "neither %s nor %s is on PATH\nhint: install the YugabyteDB or PostgreSQL client "
              "tools (Debian: postgresql-client), or set %s", yb_name, pg_name, option);
    return NULL;
}

/* environ without PGPASSWORD, plus PGPASSWORD=password when given. */
static char **child_env(const char *password, char **owned)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PGPASSWORD=", 11))
            env[k++] = environ[i];
    *owned = NULL;
    if (password && *password) {
        if (asprintf(owned, "PGPASSWORD=%s", password) < 0) {
            free(env);
            return NULL;
        }
        env[k++] = *owned;
    }
    env[k] = NULL;
    return env;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void drain(int *fd, ysql_buf *into, size_t keep)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (into) {
                size_t take = (size_t)n;
                if (keep && into->len + take > keep)
                    take = into->len < keep ? keep - into->len : 0;
                ysql_buf_add(into, buf, take);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN)
            close_fd(fd);
        return;
    }
}

int ysql_run(const arca_host *h, ysql_err *e, char *const argv[], const char *password,
             const char *input, size_t input_len, ysql_buf *out, ysql_buf *errout, int *status)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1}, er[2] = {-1, -1};
    char *pwenv = NULL;
    char **env = NULL;
    posix_spawn_file_actions_t fa;
    int fa_ok = 0, rc = ARCA_OK;
    pid_t pid = -1;

    if ((input && pipe2(in, O_CLOEXEC) < 0) || (out && pipe2(o, O_CLOEXEC) < 0) ||
        pipe2(er, O_CLOEXEC) < 0) {
        rc = ysql_fail(e, ARCA_EFAIL, "cannot run %s: pipe: %s", argv[0], strerror(errno));
        goto out;
    }
    if (!(env = child_env(password, &pwenv)) || posix_spawn_file_actions_init(&fa) != 0) {
        rc = ysql_fail(e, ARCA_ENOMEM, "cannot run %s: out of memory", argv[0]);
        goto out;
    }
    fa_ok = 1;
    if (input)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out)
        posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
    if (err) {
        pid = -1;
        rc = ysql_fail(e, ARCA_EFAIL, "cannot run %s: %s", argv[0], strerror(err));
        goto out;
    }
    close_fd(&in[0]);
    close_fd(&o[1]);
    close_fd(&er[1]);
    if (in[1] >= 0)
        fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    if (o[0] >= 0)
        fcntl(o[0], F_SETFL, fcntl(o[0], F_GETFL) | O_NONBLOCK);
    fcntl(er[0], F_SETFL, fcntl(er[0], F_GETFL) | O_NONBLOCK);

    /* A child that exits without reading all its input must not kill us with
     * SIGPIPE: block it in this thread (it is thread-directed) while writing. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    size_t sent = 0;
    if (in[1] >= 0 && input_len == 0)
        close_fd(&in[1]);
    while (in[1] >= 0 || o[0] >= 0 || er[0] >= 0) {
        if (h->cancelled && h->cancelled(h)) {
            kill(pid, SIGTERM);
            rc = ysql_fail(e, ARCA_ECANCELED, "cancelled while %s was running", argv[0]);
            break;
        }
        struct pollfd pf[3];
        int np = 0;
        if (in[1] >= 0)
            pf[np++] = (struct pollfd){in[1], POLLOUT, 0};
        if (o[0] >= 0)
            pf[np++] = (struct pollfd){o[0], POLLIN, 0};
        if (er[0] >= 0)
            pf[np++] = (struct pollfd){er[0], POLLIN, 0};
        int pr = poll(pf, (nfds_t)np, POLL_MS);
        if (pr < 0 && errno != EINTR) {
            kill(pid, SIGTERM);
            rc = ysql_fail(e, ARCA_EFAIL, "cannot run %s: poll: %s", argv[0], strerror(errno));
            break;
        }
        if (pr <= 0)
            continue;
        for (int i = 0; i < np; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == in[1]) {
                ssize_t n = write(in[1], input + sent, input_len - sent);
                if (n > 0)
                    sent += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    close_fd(&in[1]); /* the child stopped reading (EPIPE): its status tells why */
                if (sent == input_len)
                    close_fd(&in[1]);
            } else if (pf[i].fd == o[0]) {
                drain(&o[0], out, 0);
            } else {
                drain(&er[0], errout, STDERR_KEEP);
            }
        }
    }
    if (!sigismember(&old_set, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
            ;
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    }
    if (out && out->oom && rc == ARCA_OK) {
        kill(pid, SIGTERM);
        rc = ysql_fail(e, ARCA_ENOMEM, "out of memory reading the output of %s", argv[0]);
    }
out:
    if (pid > 0) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (status)
            *status = st;
    }
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&o[0]);
    close_fd(&o[1]);
    close_fd(&er[0]);
    close_fd(&er[1]);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (pwenv) {
        memset(pwenv, 0, strlen(pwenv));
        free(pwenv);
    }
    return rc;
}

void ysql_status_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, n, "status %d", status);
}

char *ysql_stderr_tail(const ysql_buf *errout, size_t max)
{
    const char *p = errout->p ? errout->p : "";
    size_t n = errout->len;
    while (n && (p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\r'))
        n--;
    size_t from = n > max ? n - max : 0;
    ysql_buf b = {0};
    if (from)
        ysql_buf_str(&b, "...");
    ysql_buf_add(&b, p + from, n - from);
    if (!b.len)
        ysql_buf_str(&b, "(no message on stderr)");
    return ysql_buf_take(&b);
}
