/* INI configuration: parse (inih, with file:line for every key), ${VAR} expansion,
 * and validation of every section against the core's and the plugins' option tables. */
#ifndef ARCA_CONFIG_H
#define ARCA_CONFIG_H

#include "options.h"
#include "util.h"

typedef struct cfg_section {
    char *kind; /* "arca", "source", "destination", "pipeline", or what the user wrote */
    char *name; /* NULL for [arca] */
    char *label; /* "[source s]" */
    int line;
    opt_kv *kv; /* key/value strings owned by the section */
    size_t nkv, cap;
} cfg_section;

typedef struct cfg_file {
    char *path;
    cfg_section *sec;
    size_t n, cap;
} cfg_file;

/* Parse `path`. Syntax errors, unknown section kinds, duplicate sections and unset
 * ${VAR}s are appended to errs (all of them). Returns NULL only if the file cannot
 * be read at all. */
cfg_file *cfg_load(const char *path, errlist *errs);
void cfg_free(cfg_file *c);
cfg_section *cfg_find(cfg_file *c, const char *kind, const char *name);
/* The value of `key` in a section (last one wins), or NULL. */
const opt_kv *cfg_get(const cfg_section *s, const char *key);

/* Which file to use: -c, $ARCA_CONFIG, ./arca.ini, /etc/arca/arca.ini. NULL if
 * none exists, or (with a message in errs) when the one found could be changed
 * by someone other than root or the user running arca. */
const char *cfg_locate(const char *explicit_path, errlist *errs);

/* Split "a, b ,c" into a NULL-terminated array of trimmed strings. */
char **cfg_split_list(const char *s, size_t *n);
void cfg_free_list(char **v);

#endif
