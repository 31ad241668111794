/* The manifest: what a backup holds (header, objects, payload members). Written
 * by the backup engine through a writer that keeps its growing parts in
 * temporary files, read through a streaming reader that validates it whole and
 * keeps only a compact per-object index in memory. See docs/FORMAT.md. */
#ifndef ARCA_MANIFEST_H
#define ARCA_MANIFEST_H

#include <jansson.h>
#include <stdint.h>

#include "arca/plugin.h"

#define ARCA_FORMAT_NAME "arca"
#define ARCA_FORMAT_VERSION 2 /* what this arca writes; it reads 1 and 2 */
#define ARCA_HEADER_MEMBER "arca.json"
#define ARCA_MANIFEST_MEMBER "MANIFEST.json"

/* Limits shared by the writer's option tables and the reader's checks. */
#define ARCA_MIN_CHUNK (64u << 10)
#define ARCA_MAX_CHUNK (256u << 20)
#define ARCA_MAX_HEADER (1u << 20)          /* arca.json */
#define ARCA_MAX_MANIFEST (64ull << 30)     /* MANIFEST.json */

const char *kind_name(arca_obj_kind k);
int kind_parse(const char *s, arca_obj_kind *k);
/* "2026-11-21T05:38:00Z" */
void iso_time(int64_t t, char *buf, size_t n);
int64_t iso_parse(const char *s);
/* Tar member name of chunk `chunk` of object `name` (raw bytes) in format
 * `version`: "<ns>/<name>.<chunk %06u>.zst", the name percent-encoded from
 * version 2 on (caller frees). */
char *member_name(int version, const char *ns, const char *name, uint32_t chunk);
/* 1 when `id` is a backup id this arca writes or wrote:
 * YYYYMMDDTHHMMSS[.mmm]Z-hhhhhh. */
int backup_id_valid(const char *id);

/* ---- writing ------------------------------------------------------------- */

typedef struct mf_writer mf_writer;

/* A writer whose object and member records go to temporary files in `tmpdir`
 * (NULL: $TMPDIR, else /var/tmp). NULL with *err on failure. */
mf_writer *mfw_new(const char *tmpdir, char **err);
void mfw_free(mf_writer *w);
/* Appends one object record (name, kind, attributes, meta: raw bytes, encoded
 * here). Thread-safe. 0, or -1 with *err (a temporary file failed). */
int mfw_object(mf_writer *w, const arca_object_info *info, uint64_t size, uint32_t chunks, json_t *meta, char **err);
/* Appends one member record; called in archive order. */
int mfw_member(mf_writer *w, const char *ns, const char *obj_name, uint32_t chunk, uint64_t raw, uint64_t stored,
               uint64_t offset, const unsigned char sha[32], char **err);
/* Seals the document around `header` (arca.json's object); afterwards the
 * text is mfw_size() bytes and can be emitted any number of times. */
int mfw_finish(mf_writer *w, json_t *header, char **err);
uint64_t mfw_size(const mf_writer *w);
uint64_t mfw_objects(const mf_writer *w);
uint64_t mfw_members(const mf_writer *w);
/* Hands the whole text to `out` in pieces; stops at the first nonzero return. */
int mfw_emit(mf_writer *w, int (*out)(void *ud, const void *p, size_t n), void *ud, char **err);

/* ---- reading ------------------------------------------------------------- */

typedef struct manifest manifest;

/* One object record, decoded: info.name and info.link_target hold the raw bytes. */
typedef struct mf_obj {
    arca_object_info info;
    uint64_t size;
    uint32_t nchunks;
    uint32_t ord;       /* position in the objects list */
    json_t *meta;       /* owned reference, or NULL */
    char *name, *target;
} mf_obj;
void mf_obj_clear(mf_obj *o);

/* One member record; `member` is the tar name it must have. */
typedef struct mf_mem {
    char *member;
    uint32_t obj, chunk;
    uint64_t raw, stored, offset;
    char sha[65];
} mf_mem;
void mf_mem_clear(mf_mem *m);

/* Reads and validates the manifest held in bytes [off, off+len) of `fd` (the
 * fd stays the caller's and must stay open until mf_close). Every object and
 * member is checked before this returns; memory is the per-object index
 * (about 47 bytes an object, see docs/INTERNALS.md). NULL with *err naming
 * `where` and the problem (status in *code: ARCA_EINTEGRITY or ARCA_EFAIL). */
manifest *mf_open(int fd, uint64_t off, uint64_t len, const char *where, int *code, char **err);
void mf_close(manifest *m);

int mf_version(const manifest *m);
json_t *mf_header(const manifest *m);   /* borrowed */
json_t *mf_totals(const manifest *m);   /* borrowed; computed for version 1 */
const char *mf_id(const manifest *m);
const char *mf_ns(const manifest *m);
uint64_t mf_chunk_size(const manifest *m);
uint64_t mf_nobjects(const manifest *m);
uint64_t mf_nmembers(const manifest *m);
/* 32 bytes identifying the content: SHA-256 of the text for version 2, of
 * its records in canonical form for version 1 (whose catalogue copy differs in
 * layout from the archive's MANIFEST.json). */
const unsigned char *mf_digest(const manifest *m);

typedef struct mf_cursor mf_cursor;
mf_cursor *mf_objects(manifest *m);
mf_cursor *mf_members(manifest *m);
/* 1 and *o or *mm filled (cleared on the next call), 0 at the end, -1 on error
 * (the file changed under us: mf_cursor_error says so). */
int mf_next_object(mf_cursor *c, mf_obj *o);
int mf_next_member(mf_cursor *c, mf_mem *mm);
const char *mf_cursor_error(const mf_cursor *c);
void mf_cursor_free(mf_cursor *c);
/* Object record number `ord` (random access through the index). */
int mf_object_at(manifest *m, uint32_t ord, mf_obj *o, char **err);
/* The kind of object `ord`, from the index (no record is read). */
arca_obj_kind mf_object_kind(const manifest *m, uint32_t ord);

/* The start of a manifest only: its header and totals, read without touching
 * the lists (version 2 puts both first; a version-1 manifest has no totals
 * there, *totals is then NULL). 0, or -1 with *err. */
int mf_head(int fd, uint64_t off, uint64_t len, const char *where, json_t **header, json_t **totals, char **err);

#endif
