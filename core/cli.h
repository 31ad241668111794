/* What the command modules (cmd_*.c) share: global flags, opening the config
 * and a pipeline, and output helpers. Every command returns an exit code
 * (util.h: EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTEGRITY). */
#ifndef ARCA_CLI_H
#define ARCA_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "pipeline.h"

extern int g_json;
extern const char *g_config_arg;

/* "arca: <fmt with arg>" and a hint to --help; returns EXIT_USAGE. */
int usage_error(const char *fmt, const char *arg);
/* Prints "arca: error: msg", frees it, returns the exit code for `status`. */
int fail_msg(int status, char *msg);
void print_errors(errlist *e);
/* The config (NULL with *rc set and errors printed). */
session *open_session(int *rc);
/* The config plus one ready pipeline (NULL with *rc set and errors printed). */
pipeline *open_pipeline(const char *name, session **sp, int *rc);
void close_pipeline(pipeline *p, session *s);

void human_size(uint64_t b, char *buf, size_t n);
void print_json(json_t *v);
/* Text from an archive, a manifest or a server, safe for a terminal. */
void print_text(FILE *f, const char *s);

int cmd_backup(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_config(int argc, char **argv);

#endif
