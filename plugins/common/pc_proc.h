/* plugins/common: one child process run to completion. An argv and no shell,
 * an environment with additions, stdin from memory, stdout into a buffer or a
 * callback, the head of stderr kept for messages; one poll loop does all three,
 * so a chatty child never deadlocks against us. The child is stopped (SIGTERM,
 * then SIGKILL after a grace period) on cancellation or timeout. */
#ifndef PC_PROC_H
#define PC_PROC_H

#include <stddef.h>

#include <arca/plugin.h>

#include "pc_buf.h"

/* What to run and where its streams go. Everything is borrowed for the call. */
typedef struct pc_proc {
    char *const *argv;            /* argv[0] is the program's path (pc_which finds it); required */
    const char *const *env_unset; /* NULL-terminated names dropped from the inherited environment, or NULL */
    const char *const *env_set;   /* NULL-terminated "NAME=value" entries replacing any inherited NAME, or NULL */
    const void *input;            /* stdin; NULL: /dev/null (an empty input gives an empty stdin) */
    size_t input_len;
    pc_buf *out;                  /* stdout is collected here, or ... */
    /* ... handed to this callback piece by piece; a nonzero return stops the
     * child and is returned. Both NULL: stdout goes to /dev/null. */
    int (*on_out)(void *ud, const void *data, size_t len);
    void *ud;
    pc_buf *err;                  /* the first err_keep bytes of stderr; NULL: discarded */
    size_t err_keep;              /* 0: 64 KiB */
    int timeout_ms;               /* > 0: stopped after this long */
    const arca_host *host;        /* its cancelled() is polled; NULL: never cancelled */
} pc_proc;

/* Runs p->argv[0]. ARCA_OK once the child ran to its end, whatever its exit
 * status (in *status, a waitpid status). Otherwise a negative code and the
 * reason in err (it names argv[0]): ARCA_EFAIL (cannot start, timeout),
 * ARCA_ENOMEM, ARCA_ECANCELED (host->cancelled), or on_out's own code. */
int pc_proc_run(const pc_proc *p, int *status, char *err, size_t errlen);

/* A waitpid status as "exit status 3" or "killed by signal 9". */
void pc_proc_status_text(int status, char *buf, size_t n);

/* Nonzero when the status is a normal exit with code 0. */
int pc_proc_succeeded(int status);

/* The last `max` bytes of captured stderr, trimmed ("..." first when cut),
 * or "(no message on stderr)". Caller frees; NULL on oom. */
char *pc_proc_err_tail(const pc_buf *err, size_t max);

/* "<what> failed with <status text>: <stderr tail>" into out, for a child
 * that ran but did not succeed. */
void pc_proc_failure(const char *what, int status, const pc_buf *err, size_t tail_max, char *out, size_t cap);

/* Full path of an executable: `cmd` itself when it has a '/', else the first
 * match on $PATH. NULL when there is none (caller frees). */
char *pc_which(const char *cmd);

#endif
