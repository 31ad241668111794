/* Validates key=value pairs against a plugin's option table and fills its config struct. */
#ifndef ARCA_OPTIONS_H
#define ARCA_OPTIONS_H

#include "arca/plugin.h"
#include "util.h"

/* One key=value from a config file (file/line) or a command-line flag (file NULL). */
typedef struct opt_kv {
    const char *key, *value, *file;
    int line;
} opt_kv;

/* Returns a new zeroed struct of `size` bytes holding defaults overridden by `kv`,
 * or NULL after appending every problem (unknown key, duplicate, missing required,
 * bad value) to `errs`. `section` prefixes messages that have no line of their own,
 * e.g. "arca.ini:12: [destination d]". A SECRET option NAME may be given as
 * `NAME_file = PATH`: its value is the file's content without trailing newlines.
 * Free with opt_free. */
void *opt_fill(const arca_option *table, size_t size, const opt_kv *kv, size_t n,
               const char *section, errlist *errs);
/* The same, with the section's own location for messages about the section as a
 * whole (missing keys); `section` is then just its label, e.g. "[destination d]". */
void *opt_fill_at(const arca_option *table, size_t size, const opt_kv *kv, size_t n,
                  const char *section, const char *file, int line, errlist *errs);
void opt_free(const arca_option *table, void *cfg);

const arca_option *opt_find(const arca_option *table, const char *name);
const char *opt_type_name(arca_opt_type t);
/* Value of option `o` in `cfg` as text for display; secrets come back as "********". */
char *opt_show(const arca_option *o, const void *cfg);
/* "--a, --b-c" for a restore-option table (caller frees). */
char *opt_flag_list(const arca_option *table);

#endif
