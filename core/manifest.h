/* Backup catalogue: object and member records, arca.json and MANIFEST.json text,
 * and the name rules every archive member must obey. See docs/FORMAT.md. */
#ifndef ARCA_MANIFEST_H
#define ARCA_MANIFEST_H

#include <jansson.h>
#include <stdint.h>

#include "arca/plugin.h"

#define ARCA_FORMAT_NAME "arca"
#define ARCA_FORMAT_VERSION 1
#define ARCA_HEADER_MEMBER "arca.json"
#define ARCA_MANIFEST_MEMBER "MANIFEST.json"
#define ARCA_MAX_NAME 4096

typedef struct mf_object {
    char *name; /* relative to the namespace */
    arca_obj_kind kind;
    uint32_t mode;
    int64_t mtime_sec;
    int32_t mtime_nsec;
    char *target;
    uint64_t size;
    uint32_t nchunks;
    json_t *meta; /* object of strings/integers, or NULL */
} mf_object;

typedef struct mf_member {
    mf_object *obj;
    uint32_t chunk;
    uint64_t raw, stored, offset;
    unsigned char sha[32];
} mf_member;

/* Nonzero if `name` is relative, non-empty, has no empty, "." or ".." component
 * and no control characters. */
int name_is_safe(const char *name);
/* "<ns>/<name>.<chunk>.zst": the suffix is fixed in shape, so the mapping is one-to-one. */
char *member_name(const char *ns, const char *obj, uint32_t chunk);
const char *kind_name(arca_obj_kind k);
int kind_parse(const char *s, arca_obj_kind *k);
/* "2026-11-21T05:38:00Z" */
void iso_time(int64_t t, char *buf, size_t n);
int64_t iso_parse(const char *s);

/* MANIFEST.json text for the archive (caller frees). `header` is arca.json's object. */
char *manifest_text(json_t *header, mf_object **objs, size_t nobjs, mf_member *mem, size_t nmem);

/* A parsed, validated manifest for reading an archive. */
typedef struct mf_read_member {
    char *member;      /* archive member name */
    size_t obj;        /* index into objects */
    uint32_t chunk;
    uint64_t raw, stored, offset;
    char sha[65];
    int seen;
} mf_read_member;

typedef struct mf_read_object {
    arca_object_info info;
    char *name, *target;
    uint64_t size;
    uint32_t nchunks, next_chunk;
    json_t *meta;
} mf_read_object;

typedef struct manifest {
    json_t *root;          /* the whole document */
    json_t *header;        /* root.header: same content as arca.json */
    const char *id, *ns;
    uint64_t chunk_size;
    mf_read_object *obj;
    size_t nobj;
    mf_read_member *mem;
    size_t nmem;
    /* open-addressing index of members by name */
    size_t *idx;
    size_t idx_cap;
} manifest;

/* Parse and check a manifest document; on failure NULL and *err names the problem
 * (with `where`, e.g. the file or URL it came from). */
manifest *manifest_parse(const char *text, size_t len, const char *where, char **err);
void manifest_free(manifest *m);
mf_read_member *manifest_member(manifest *m, const char *name);
/* Compare two manifest documents ignoring the catalogue-only "archive" key. */
int manifest_same(json_t *a, json_t *b);

#endif
