/* The destination layer: the only caller of a destination plugin's operations.
 * It checks arguments, labels every message with the destination, takes a
 * failing handle's own message (ABI 1.1 handle_error) and calls optional
 * operations only when the plugin has them. Every function returns an arca
 * status; on failure *err holds the message (caller frees). */
#ifndef ARCA_DEST_H
#define ARCA_DEST_H

#include <stddef.h>
#include <stdint.h>

#include "inst.h"

typedef struct dest_put dest_put;
typedef struct dest_get dest_get;

int dest_put_open(inst *d, const char *name, dest_put **out, char **err);
int dest_put_write(dest_put *p, const void *buf, size_t len, char **err);
/* Makes the object visible; frees p whatever the result. */
int dest_put_commit(dest_put *p, char **err);
/* Drops the upload; frees p. NULL is fine. */
void dest_put_abort(dest_put *p);

int dest_get_open(inst *d, const char *name, uint64_t offset, uint64_t length, dest_get **out, char **err);
/* *got == 0 at the end. */
int dest_get_read(dest_get *g, void *buf, size_t cap, size_t *got, char **err);
void dest_get_close(dest_get *g);

int dest_list(inst *d, const char *prefix, arca_list_cb cb, void *ud, char **err);
/* ARCA_ENOENT (with a message) when the object is missing. */
int dest_remove(inst *d, const char *name, char **err);
/* Several objects: the plugin's remove_many when it has one, else one by one;
 * missing ones are fine. */
int dest_remove_many(inst *d, const char *const *names, size_t n, char **err);
/* The plugin's canonical location text, or NULL when it offers none (caller frees). */
char *dest_location(inst *d);
/* Stale temporaries and unfinished uploads (ARCA_ECONFIG when the plugin
 * cannot list them). */
int dest_cleanup(inst *d, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud, char **err);

/* Whole small object (at most `max` bytes) into a NUL-terminated buffer. */
int dest_slurp(inst *d, const char *name, size_t max, char **out, size_t *len, char **err);
/* Bytes [offset, offset+length) of an object (length 0: to the end) into a new
 * unlinked temporary file (*fd, *len; caller closes). */
int dest_fetch(inst *d, const char *name, uint64_t offset, uint64_t length, int *fd, uint64_t *len, char **err);

#endif
