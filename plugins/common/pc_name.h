/* plugins/common: which object names a destination accepts. The core names
 * objects `<pipeline>.<id>.arca` and `<pipeline>.<id>.manifest.json`, made of
 * [A-Za-z0-9._-] and never starting with '.'; a destination must take those and
 * refuse what could escape its root or hit its temporaries. */
#ifndef PC_NAME_H
#define PC_NAME_H

#include <stddef.h>

#include <arca/plugin.h>

/* Longest name accepted here; a store may allow less (a file name, a key
 * with a prefix) and refuse longer names itself. */
#define PC_NAME_MAX 1024

/* NULL when `name` is acceptable, else why not ("it contains '/'", ...):
 * empty, longer than PC_NAME_MAX, a '/', a leading '.', a control byte. */
const char *pc_name_problem(const char *name);

/* 0, or ARCA_ECONFIG (a retry cannot help: the name must change) with
 * "object name 'NAME' refused: WHY" recorded through h->error. */
int pc_check_name(const arca_host *h, const char *name);

/* 0 for a list prefix of flat names (NULL and "" included), else ARCA_ECONFIG. */
int pc_check_prefix(const arca_host *h, const char *prefix);

/* `name` fit for a message: control bytes as \xNN, cut to about 80 bytes with
 * "..." so a huge name does not drown the reason. Always NUL-terminated. */
void pc_name_shown(const char *name, char *out, size_t cap);

#endif
