/* Is a config file or a plugin directory/file safe to trust? See secure.c. */
#ifndef ARCA_SECURE_H
#define ARCA_SECURE_H

/* NULL when `path` (a regular file, or a directory with want_dir) and every
 * directory above it can be changed only by root or the user running arca;
 * else a message naming the culprit and the fix (caller frees). */
char *path_untrusted(const char *path, int want_dir);

#endif
