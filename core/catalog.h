/* The catalogue: which backups a destination holds and whose they are.
 *
 * A backup of pipeline P is two objects at each destination:
 *   P.ID.arca             the archive
 *   P.ID.manifest.json    its catalogue copy of the manifest, written last
 * so one listing tells every pipeline's backups apart, and a pipeline only ever
 * sees (lists, resolves `latest` to, restores, deletes) its own. Backups
 * written by arca 0.1 (format 1) are named ID.arca / ID.manifest.json; they
 * belong to the pipeline their header names, which is read to find out. */
#ifndef ARCA_CATALOG_H
#define ARCA_CATALOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* NULL when `name` can be a pipeline name (it becomes part of object names:
 * [A-Za-z0-9_-] first, then [A-Za-z0-9._-], at most 64), else why not. */
const char *pipeline_name_problem(const char *name);
char *cat_archive_name(const char *pl, const char *id);
char *cat_manifest_name(const char *pl, const char *id);

typedef struct cat_entry {
    char id[32];
    char *pipeline;        /* from the object name; NULL for a format-1 name (see `owner`) */
    char *owner;           /* the pipeline the header names (filled by cat_pipeline/cat_all) */
    size_t dest;           /* index of the destination in the pipeline */
    uint64_t manifest_size, archive_size;
    int has_archive;
    json_t *header, *totals; /* from the catalogue's start, when read */
} cat_entry;

typedef struct cat_list {
    cat_entry *v;
    size_t n, cap;
} cat_list;
void cat_list_free(cat_list *l);

/* The backups of pipeline `p` at its destinations (only `dest` if not NULL),
 * sorted by id, then destination. A destination that cannot be listed fails
 * the call (ARCA_E*, *err): "cannot list" is never "no backups". With
 * `heads`, every entry's header and totals are read too. */
int cat_pipeline(pipeline *p, const char *dest, int heads, cat_list *out, char **err);
/* Every backup at the pipeline's destinations, whatever pipeline made it. */
int cat_all(pipeline *p, int heads, cat_list *out, char **err);

/* `want` (an id, "latest" or NULL for latest) among the pipeline's backups:
 * the newest entry, or the first destination holding that id. */
int cat_resolve(pipeline *p, const char *want, const char *dest, cat_entry *out, char **err);
void cat_entry_clear(cat_entry *e);

/* The whole catalogue manifest of `e`, fetched to a temporary file (*fd, the
 * caller closes it after mf_close) and validated; its header must name the
 * pipeline `p` (a backup moved between pipelines is refused). */
int cat_open(pipeline *p, const cat_entry *e, int *fd, manifest **m, char **err);
/* Object names of an entry (archive, catalogue), caller frees. */
char *cat_entry_archive(const cat_entry *e);
char *cat_entry_manifest(const cat_entry *e);

#endif
