/* plugins/common: the child-process runner. posix_spawn with an argv (no shell)
 * and an environment built here; one poll loop feeds stdin and drains stdout
 * and stderr. */
#include "pc_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#define ERR_KEEP_DEFAULT (64u << 10)
#define POLL_MS 200
/* After SIGTERM a child gets this long to exit before SIGKILL. */
#define KILL_GRACE_MS 5000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

char *pc_which(const char *cmd)
{
    struct stat st;

    if (!cmd || !*cmd)
        return NULL;
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0 && stat(cmd, &st) == 0 && S_ISREG(st.st_mode) ? strdup(cmd) : NULL;
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

/* Length of the NAME in "NAME=value" (the whole string without '='). */
static size_t env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static int env_listed(const char *entry, const char *const *names, int entries)
{
    size_t n = env_name_len(entry);
    for (; names && *names; names++) {
        size_t m = entries ? env_name_len(*names) : strlen(*names);
        if (m == n && !strncmp(entry, *names, n))
            return 1;
    }
    return 0;
}

/* environ without the dropped and the replaced names, then env_set. The
 * strings are borrowed; only the array is allocated. */
static char **child_env(const pc_proc *p)
{
    size_t n = 0, k = 0, add = 0;
    while (environ[n])
        n++;
    for (const char *const *s = p->env_set; s && *s; s++)
        add++;
    char **env = calloc(n + add + 1, sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!env_listed(environ[i], p->env_unset, 0) && !env_listed(environ[i], p->env_set, 1))
            env[k++] = environ[i];
    for (const char *const *s = p->env_set; s && *s; s++)
        env[k++] = (char *)*s;
    env[k] = NULL;
    return env;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void nonblocking(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Reads what is there. Returns 0, or the callback's nonzero code. */
static int drain(int *fd, pc_buf *into, size_t keep, int (*cb)(void *, const void *, size_t), void *ud)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (cb) {
                int r = cb(ud, buf, (size_t)n);
                if (r)
                    return r;
            } else if (into) {
                size_t take = (size_t)n;
                if (keep && into->len + take > keep)
                    take = into->len < keep ? keep - into->len : 0;
                pc_buf_add(into, buf, take);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN)
            close_fd(fd);
        return 0;
    }
}

/* Stops a child that is still running: SIGTERM, then SIGKILL once the grace
 * period is over. Returns with the child reaped. */
static void stop_child(pid_t pid, int *status)
{
    long long give_up = now_ms() + KILL_GRACE_MS;
    kill(pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (now_ms() >= give_up) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        sleep_ms(20);
    }
}

int pc_proc_run(const pc_proc *p, int *status, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1}, er[2] = {-1, -1};
    const char *cmd = p->argv[0];
    const int want_out = p->out || p->on_out;
    const size_t keep = p->err_keep ? p->err_keep : ERR_KEEP_DEFAULT;
    const long long deadline = p->timeout_ms > 0 ? now_ms() + p->timeout_ms : 0;
    char **env = NULL;
    posix_spawn_file_actions_t fa;
    int fa_ok = 0, rc = ARCA_OK, stop = 0, st = 0;
    pid_t pid = -1;

    *status = 0;
    err[0] = '\0';
    /* Checked here because posix_spawn may report a failed exec only as exit
     * status 127 of the child (it does under valgrind): say it plainly. */
    if (access(cmd, X_OK) != 0) {
        snprintf(err, errlen, "cannot run %s: %s", cmd, strerror(errno));
        return ARCA_EFAIL;
    }
    if ((p->input && pipe2(in, O_CLOEXEC) < 0) || (want_out && pipe2(o, O_CLOEXEC) < 0) ||
        pipe2(er, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot run %s: pipe: %s", cmd, strerror(errno));
        rc = ARCA_EFAIL;
        goto out;
    }
    if (!(env = child_env(p)) || posix_spawn_file_actions_init(&fa) != 0) {
        snprintf(err, errlen, "cannot run %s: out of memory", cmd);
        rc = ARCA_ENOMEM;
        goto out;
    }
    fa_ok = 1;
    if (p->input)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (want_out)
        posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    int e = posix_spawn(&pid, cmd, &fa, NULL, p->argv, env);
    if (e) {
        pid = -1;
        snprintf(err, errlen, "cannot run %s: %s", cmd, strerror(e));
        rc = ARCA_EFAIL;
        goto out;
    }
    close_fd(&in[0]);
    close_fd(&o[1]);
    close_fd(&er[1]);
    nonblocking(in[1]);
    nonblocking(o[0]);
    nonblocking(er[0]);

    /* A child that exits without reading all its input must not kill us with
     * SIGPIPE: block it in this thread (it is thread-directed) while writing. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    size_t sent = 0;
    if (in[1] >= 0 && p->input_len == 0)
        close_fd(&in[1]);
    while (!stop && (in[1] >= 0 || o[0] >= 0 || er[0] >= 0)) {
        if (p->host && p->host->cancelled && p->host->cancelled(p->host)) {
            snprintf(err, errlen, "cancelled while %s was running", cmd);
            rc = ARCA_ECANCELED;
            stop = 1;
            break;
        }
        int wait = POLL_MS;
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                snprintf(err, errlen, "%s did not finish within %d s: stopped", cmd, (p->timeout_ms + 999) / 1000);
                rc = ARCA_EFAIL;
                stop = 1;
                break;
            }
            if (left < wait)
                wait = (int)left;
        }
        struct pollfd pf[3];
        int np = 0;
        if (in[1] >= 0)
            pf[np++] = (struct pollfd){in[1], POLLOUT, 0};
        if (o[0] >= 0)
            pf[np++] = (struct pollfd){o[0], POLLIN, 0};
        if (er[0] >= 0)
            pf[np++] = (struct pollfd){er[0], POLLIN, 0};
        int pr = poll(pf, (nfds_t)np, wait);
        if (pr < 0 && errno != EINTR) {
            snprintf(err, errlen, "cannot run %s: poll: %s", cmd, strerror(errno));
            rc = ARCA_EFAIL;
            stop = 1;
            break;
        }
        if (pr <= 0)
            continue;
        for (int i = 0; i < np && !stop; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == in[1]) {
                ssize_t n = write(in[1], (const char *)p->input + sent, p->input_len - sent);
                if (n > 0)
                    sent += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    close_fd(&in[1]); /* the child stopped reading (EPIPE): its status tells why */
                if (sent == p->input_len)
                    close_fd(&in[1]);
            } else if (pf[i].fd == o[0]) {
                int r = drain(&o[0], p->out, 0, p->on_out, p->ud);
                if (r) {
                    snprintf(err, errlen, "stopped %s: its output could not be taken", cmd);
                    rc = r;
                    stop = 1;
                }
            } else {
                drain(&er[0], p->err, keep, NULL, NULL);
            }
        }
        if (!stop && p->out && p->out->oom) {
            snprintf(err, errlen, "out of memory reading the output of %s", cmd);
            rc = ARCA_ENOMEM;
            stop = 1;
        }
    }
    if (!sigismember(&old_set, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
            ;
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    }
out:
    /* Our ends closed first: a stopped child blocked on a full pipe gets EPIPE. */
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&o[0]);
    close_fd(&o[1]);
    close_fd(&er[0]);
    close_fd(&er[1]);
    if (pid > 0) {
        if (stop) {
            stop_child(pid, &st);
        } else if (p->host || deadline) {
            /* the streams are closed but the child may still run: keep watching */
            for (;;) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid || (r < 0 && errno != EINTR))
                    break;
                if (p->host && p->host->cancelled && p->host->cancelled(p->host)) {
                    snprintf(err, errlen, "cancelled while %s was running", cmd);
                    rc = ARCA_ECANCELED;
                    stop_child(pid, &st);
                    break;
                }
                if (deadline && now_ms() >= deadline) {
                    snprintf(err, errlen, "%s did not finish within %d s: stopped", cmd,
                             (p->timeout_ms + 999) / 1000);
                    rc = ARCA_EFAIL;
                    stop_child(pid, &st);
                    break;
                }
                sleep_ms(20);
            }
        } else {
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        }
        *status = st;
    }
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    free(env);
    return rc;
}

void pc_proc_status_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, n, "status %d", status);
}

int pc_proc_succeeded(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

char *pc_proc_err_tail(const pc_buf *err, size_t max)
{
    const char *p = err && err->p ? err->p : "";
    size_t n = err ? err->len : 0;
    while (n && (p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\r'))
        n--;
    size_t from = n > max ? n - max : 0;
    pc_buf b = {0};
    if (from)
        pc_buf_str(&b, "...");
    pc_buf_add(&b, p + from, n - from);
    if (!b.len)
        pc_buf_str(&b, "(no message on stderr)");
    return pc_buf_take(&b);
}

void pc_proc_failure(const char *what, int status, const pc_buf *err, size_t tail_max, char *out, size_t cap)
{
    char st[64];
    char *tail = pc_proc_err_tail(err, tail_max);
    pc_proc_status_text(status, st, sizeof st);
    snprintf(out, cap, "%s failed with %s: %s", what, st, tail ? tail : "(out of memory)");
    free(tail);
}
