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

/* One run: the child, our ends of its pipes, and how it went. */
typedef struct run {
    const pc_proc *p;
    const char *cmd;
    int in[2], o[2], er[2];
    size_t keep, sent;
    long long deadline;
    char **env;
    posix_spawn_file_actions_t fa;
    int fa_ok, rc, stop;
    pid_t pid;
    char *err;
    size_t errlen;
} run;

static int run_fail(run *r, int rc, const char *fmt, const char *what)
{
    snprintf(r->err, r->errlen, fmt, r->cmd, what);
    r->rc = rc;
    r->stop = 1;
    return rc;
}

/* Pipes for what the child reads and writes, then posix_spawn (no shell). */
static int spawn_child(run *r)
{
    const pc_proc *p = r->p;
    const int want_out = p->out || p->on_out;
    if ((p->input && pipe2(r->in, O_CLOEXEC) < 0) || (want_out && pipe2(r->o, O_CLOEXEC) < 0) ||
        pipe2(r->er, O_CLOEXEC) < 0)
        return run_fail(r, ARCA_EFAIL, "cannot run %s: pipe: %s", strerror(errno));
    if (!(r->env = child_env(p)) || posix_spawn_file_actions_init(&r->fa) != 0)
        return run_fail(r, ARCA_ENOMEM, "cannot run %s: %s", "out of memory");
    r->fa_ok = 1;
    if (p->input)
        posix_spawn_file_actions_adddup2(&r->fa, r->in[0], 0);
    else
        posix_spawn_file_actions_addopen(&r->fa, 0, "/dev/null", O_RDONLY, 0);
    if (want_out)
        posix_spawn_file_actions_adddup2(&r->fa, r->o[1], 1);
    else
        posix_spawn_file_actions_addopen(&r->fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&r->fa, r->er[1], 2);
    int e = posix_spawn(&r->pid, r->cmd, &r->fa, NULL, p->argv, r->env);
    if (e) {
        r->pid = -1;
        return run_fail(r, ARCA_EFAIL, "cannot run %s: %s", strerror(e));
    }
    close_fd(&r->in[0]);
    close_fd(&r->o[1]);
    close_fd(&r->er[1]);
    nonblocking(r->in[1]);
    nonblocking(r->o[0]);
    nonblocking(r->er[0]);
    if (r->in[1] >= 0 && p->input_len == 0)
        close_fd(&r->in[1]);
    return 0;
}

/* What poll says is ready: input written, output and stderr taken. */
static void serve_ready(run *r, const struct pollfd *pf, int np)
{
    const pc_proc *p = r->p;
    for (int i = 0; i < np && !r->stop; i++) {
        if (!pf[i].revents)
            continue;
        if (pf[i].fd == r->in[1]) {
            ssize_t n = write(r->in[1], (const char *)p->input + r->sent, p->input_len - r->sent);
            if (n > 0)
                r->sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                close_fd(&r->in[1]); /* the child stopped reading (EPIPE): its status tells why */
            if (r->sent == p->input_len)
                close_fd(&r->in[1]);
        } else if (pf[i].fd == r->o[0]) {
            int rc = drain(&r->o[0], p->out, 0, p->on_out, p->ud);
            if (rc)
                run_fail(r, rc, "stopped %s: its output could not be taken%s", "");
        } else {
            drain(&r->er[0], p->err, r->keep, NULL, NULL);
        }
    }
    if (!r->stop && p->out && p->out->oom)
        run_fail(r, ARCA_ENOMEM, "out of memory reading the output of %s%s", "");
}

/* A cancellation or the deadline: nonzero (and r->stop) when the run must end. */
static int must_stop(run *r)
{
    const pc_proc *p = r->p;
    if (p->host && p->host->cancelled && p->host->cancelled(p->host))
        return run_fail(r, ARCA_ECANCELED, "cancelled while %s was running%s", "");
    if (r->deadline && now_ms() >= r->deadline) {
        snprintf(r->err, r->errlen, "%s did not finish within %d s: stopped", r->cmd, (p->timeout_ms + 999) / 1000);
        r->rc = ARCA_EFAIL;
        r->stop = 1;
        return 1;
    }
    return 0;
}

/* Feeds the input and takes the output until the child closes its streams. */
static void pump(run *r)
{
    /* A child that exits without reading all its input must not kill us with
     * SIGPIPE: block it in this thread (it is thread-directed) while writing. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    while (!r->stop && (r->in[1] >= 0 || r->o[0] >= 0 || r->er[0] >= 0) && !must_stop(r)) {
        int wait = POLL_MS;
        if (r->deadline && r->deadline - now_ms() < wait)
            wait = (int)(r->deadline - now_ms());
        struct pollfd pf[3];
        int np = 0;
        if (r->in[1] >= 0)
            pf[np++] = (struct pollfd){r->in[1], POLLOUT, 0};
        if (r->o[0] >= 0)
            pf[np++] = (struct pollfd){r->o[0], POLLIN, 0};
        if (r->er[0] >= 0)
            pf[np++] = (struct pollfd){r->er[0], POLLIN, 0};
        int pr = poll(pf, (nfds_t)np, wait > 0 ? wait : 0);
        if (pr < 0 && errno != EINTR)
            run_fail(r, ARCA_EFAIL, "cannot run %s: poll: %s", strerror(errno));
        else if (pr > 0)
            serve_ready(r, pf, np);
    }
    if (!sigismember(&old_set, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
            ;
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    }
}

/* The child's end: stopped if the run was, else waited for (still watching
 * for a cancellation or the deadline when there is one). */
static int reap(run *r)
{
    int st = 0;
    if (r->stop) {
        stop_child(r->pid, &st);
    } else if (r->p->host || r->deadline) {
        /* the child has closed its output and is usually gone within a millisecond
         * or two: naps of 1, 2, 4 ... up to 20 ms (a fixed 20 ms nap added 20 ms to
         * every run: two or three a restore) */
        int nap = 1;
        for (;;) {
            pid_t w = waitpid(r->pid, &st, WNOHANG);
            if (w == r->pid || (w < 0 && errno != EINTR))
                break;
            if (must_stop(r)) {
                stop_child(r->pid, &st);
                break;
            }
            sleep_ms(nap);
            nap = nap < 10 ? nap * 2 : 20;
        }
    } else {
        while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    return st;
}

int pc_proc_run(const pc_proc *p, int *status, char *err, size_t errlen)
{
    run r = {.p = p, .cmd = p->argv[0], .in = {-1, -1}, .o = {-1, -1}, .er = {-1, -1},
             .keep = p->err_keep ? p->err_keep : ERR_KEEP_DEFAULT,
             .deadline = p->timeout_ms > 0 ? now_ms() + p->timeout_ms : 0, .pid = -1, .err = err, .errlen = errlen};
    *status = 0;
    err[0] = '\0';
    /* Checked here because posix_spawn may report a failed exec only as exit
     * status 127 of the child (it does under valgrind): say it plainly. */
    if (access(r.cmd, X_OK) != 0) {
        snprintf(err, errlen, "cannot run %s: %s", r.cmd, strerror(errno));
        return ARCA_EFAIL;
    }
    if (spawn_child(&r) == 0)
        pump(&r);
    /* Our ends closed first: a stopped child blocked on a full pipe gets EPIPE. */
    int *fds[] = {&r.in[0], &r.in[1], &r.o[0], &r.o[1], &r.er[0], &r.er[1]};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        close_fd(fds[i]);
    if (r.pid > 0)
        *status = reap(&r);
    if (r.fa_ok)
        posix_spawn_file_actions_destroy(&r.fa);
    free(r.env);
    return r.rc;
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
