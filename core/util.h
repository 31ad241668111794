/* Small shared helpers for the core: error lists, logging, allocation, strings. */
#ifndef ARCA_UTIL_H
#define ARCA_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "arca/plugin.h"

/* Exit codes (README, "The commands"). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INTEGRITY = 3 };

/* A list of user-facing error messages (config check reports all of them). */
typedef struct errlist {
    char **msg;
    size_t n, cap;
} errlist;
void errlist_add(errlist *e, const char *fmt, ...) ARCA_PRINTF(2, 3);
void errlist_free(errlist *e);

/* Process-wide log level and sink (stderr). */
extern int g_log_level;
void log_msg(int level, const char *fmt, ...) ARCA_PRINTF(2, 3);
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap);

/* Allocation that aborts on failure: out of memory is not recoverable here. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) ARCA_PRINTF(1, 2);

/* Map an arca status code to the process exit code. */
int exit_code_for(int status);

/* Parse "64K", "8M", "1G", "2T" or plain bytes. 0 ok, -1 bad syntax/overflow. */
int parse_size(const char *s, uint64_t *out);
int parse_int64(const char *s, int64_t *out);
/* "90", "90s", "30m", "24h", "7d", "2w" in seconds. 0 ok, -1 bad syntax. */
int parse_age(const char *s, int64_t *seconds);
int parse_bool(const char *s, int *out);

/* Hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* An unlinked temporary file for the core's spools (manifest records, an
 * archive read from a pipe) in `dir`, else $TMPDIR, else /var/tmp: /var/tmp
 * because /tmp is often memory. -1 with *err on failure. */
int tmp_open(const char *dir, char **err);

/* Time as seconds with nanoseconds, monotonic. */
double now_mono(void);

/* Write all of buf to fd; 0 or -1 with errno. */
int write_all(int fd, const void *buf, size_t len);

#endif
