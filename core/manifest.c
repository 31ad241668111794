/* Reading a manifest: one validating pass over the whole text that keeps only a
 * compact index (object ordinal -> record offset, kind, chunk count; name key ->
 * ordinal), then cursors that stream objects and members back on demand. */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "hash.h"
#include "jscan.h"
#include "names.h"
#include "util.h"

/* ---- small shared helpers ------------------------------------------------------ */

const char *kind_name(arca_obj_kind k)
{
    switch (k) {
    case ARCA_OBJ_DATA: return "data";
    case ARCA_OBJ_DIR: return "dir";
    case ARCA_OBJ_SYMLINK: return "symlink";
    }
    return "?";
}

int kind_parse(const char *s, arca_obj_kind *k)
{
    if (!s)
        return -1;
    if (!strcmp(s, "data")) { *k = ARCA_OBJ_DATA; return 0; }
    if (!strcmp(s, "dir")) { *k = ARCA_OBJ_DIR; return 0; }
    if (!strcmp(s, "symlink")) { *k = ARCA_OBJ_SYMLINK; return 0; }
    return -1;
}

void iso_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t iso_parse(const char *s)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}

char *member_name(int version, const char *ns, const char *name, uint32_t chunk)
{
    if (version < 2)
        return xasprintf("%s/%s.%06" PRIu32 ".zst", ns, name, chunk);
    char *enc = name_encode(name);
    char *m = xasprintf("%s/%s.%06" PRIu32 ".zst", ns, enc, chunk);
    free(enc);
    return m;
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int backup_id_valid(const char *id)
{
    /* YYYYMMDDTHHMMSS[.mmm]Z-hhhhhh */
    size_t n = id ? strlen(id) : 0;
    if (n != 23 && n != 27)
        return 0;
    if (!all_digits(id, 8) || id[8] != 'T' || !all_digits(id + 9, 6))
        return 0;
    const char *p = id + 15;
    if (n == 27) {
        if (p[0] != '.' || !all_digits(p + 1, 3))
            return 0;
        p += 4;
    }
    if (p[0] != 'Z' || p[1] != '-')
        return 0;
    for (int i = 2; i < 8; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

void mf_obj_clear(mf_obj *o)
{
    free(o->name);
    free(o->target);
    json_decref(o->meta);
    memset(o, 0, sizeof *o);
}

void mf_mem_clear(mf_mem *m)
{
    free(m->member);
    memset(m, 0, sizeof *m);
}

/* ---- the manifest ------------------------------------------------------------------ */

struct manifest {
    int fd;
    uint64_t off, len;
    char *where;
    int version;
    json_t *header, *totals;
    const char *id, *ns;
    uint64_t chunk_size;
    uint64_t objs_at, mems_at; /* file offsets of the '[' of each list */
    uint64_t nobj, nmem;
    nmap names;                /* key of the raw name -> ordinal */
    uint64_t *obj_off;         /* ordinal -> offset of its record */
    uint32_t *obj_chunks;      /* ordinal -> chunks */
    unsigned char *obj_kind;   /* ordinal -> arca_obj_kind */
    unsigned char digest[32];
    jscan rnd;                 /* for mf_object_at: its buffer serves neighbouring records */
    int rnd_open;
};

int mf_version(const manifest *m) { return m->version; }
json_t *mf_header(const manifest *m) { return m->header; }
json_t *mf_totals(const manifest *m) { return m->totals; }
const char *mf_id(const manifest *m) { return m->id; }
const char *mf_ns(const manifest *m) { return m->ns; }
uint64_t mf_chunk_size(const manifest *m) { return m->chunk_size; }
uint64_t mf_nobjects(const manifest *m) { return m->nobj; }
uint64_t mf_nmembers(const manifest *m) { return m->nmem; }
const unsigned char *mf_digest(const manifest *m) { return m->digest; }

void mf_close(manifest *m)
{
    if (!m)
        return;
    free(m->where);
    json_decref(m->header);
    json_decref(m->totals);
    nmap_free(&m->names);
    free(m->obj_off);
    free(m->obj_chunks);
    free(m->obj_kind);
    if (m->rnd_open)
        js_free(&m->rnd);
    free(m);
}

/* What went wrong while opening: the first problem, with the manifest's place. */
typedef struct mf_err {
    int code;
    char *msg;
} mf_err;

static int bad(mf_err *e, const manifest *m, int code, const char *fmt, ...) ARCA_PRINTF(4, 5);
static int bad(mf_err *e, const manifest *m, int code, const char *fmt, ...)
{
    if (e->msg)
        return -1;
    va_list ap;
    char *what;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        abort();
    va_end(ap);
    e->msg = xasprintf("%s: %s", m->where, what);
    e->code = code;
    free(what);
    return -1;
}

static int io_or_syntax(mf_err *e, const manifest *m, const jscan *s, const char *what)
{
    if (s->ioerr)
        return bad(e, m, ARCA_EFAIL, "reading the manifest failed: %s", strerror(s->ioerr));
    return bad(e, m, ARCA_EINTEGRITY, "manifest is not valid JSON (%s, near byte %" PRIu64 ")", what, s->pos - m->off);
}

static int u64(const json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A record's name field, decoded per format version. NULL if malformed. */
static char *field_name(const manifest *m, const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (m->version >= 2) {
        char *raw;
        return name_decode(s, n, &raw) ? NULL : raw;
    }
    /* version 1: the name as is, no control characters */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return NULL;
    return xstrdup(s);
}

static int meta_ok(const json_t *meta)
{
    const char *k;
    json_t *v;
    if (!meta)
        return 1;
    if (!json_is_object(meta))
        return 0;
    json_object_foreach((json_t *)meta, k, v)
    {
        if (json_is_integer(v))
            continue;
        char *b = jbytes_get(v);
        if (!b)
            return 0;
        free(b);
    }
    return 1;
}

/* Decodes and checks one object record. 0, or -1 with e set. */
static int parse_object(manifest *m, const char *text, size_t len, uint64_t ord, mf_obj *o, mf_err *e)
{
    json_error_t je;
    memset(o, 0, sizeof *o);
    json_t *r = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(r)) {
        json_decref(r);
        return bad(e, m, ARCA_EINTEGRITY, "object %" PRIu64 " is not a JSON object", ord);
    }
    uint64_t mode = 0, nchunks = 0;
    json_t *mt = json_object_get(r, "mtime"), *mn = json_object_get(r, "mtime_nsec");
    o->ord = (uint32_t)ord;
    o->name = field_name(m, json_object_get(r, "name"));
    const char *why = o->name ? name_problem(o->name) : "is missing or badly encoded";
    if (why) {
        char *shown = text_printable(json_string_value(json_object_get(r, "name")));
        bad(e, m, ARCA_EINTEGRITY, "object %" PRIu64 " '%s': unsafe name: it %s: refused", ord, shown ? shown : "", why);
        free(shown);
        goto fail;
    }
    o->info.name = o->name;
    if (kind_parse(json_string_value(json_object_get(r, "kind")), &o->info.kind) || u64(r, "size", &o->size) ||
        u64(r, "chunks", &nchunks) || u64(r, "mode", &mode) || nchunks > UINT32_MAX || !json_is_integer(mt) ||
        mode > 07777 || (mn && (!json_is_integer(mn) || json_integer_value(mn) < 0 || json_integer_value(mn) > 999999999))) {
        bad(e, m, ARCA_EINTEGRITY, "object '%s' has a bad kind, size, chunks, mode or mtime", json_string_value(json_object_get(r, "name")));
        goto fail;
    }
    o->nchunks = (uint32_t)nchunks;
    o->info.mode = (uint32_t)mode;
    o->info.mtime_sec = json_integer_value(mt);
    o->info.mtime_nsec = (int32_t)json_integer_value(mn);
    if (o->info.kind == ARCA_OBJ_SYMLINK) {
        o->target = field_name(m, json_object_get(r, "target"));
        if (!o->target || !*o->target || strlen(o->target) > ARCA_MAX_NAME) {
            bad(e, m, ARCA_EINTEGRITY, "symlink object '%s' has no usable target", json_string_value(json_object_get(r, "name")));
            goto fail;
        }
        o->info.link_target = o->target;
    }
    if (o->info.kind != ARCA_OBJ_DATA && (nchunks || o->size)) {
        bad(e, m, ARCA_EINTEGRITY, "object '%s' of kind %s cannot have data", json_string_value(json_object_get(r, "name")),
            kind_name(o->info.kind));
        goto fail;
    }
    /* every chunk but the last is full: the chunk count follows from the size */
    uint64_t want = o->size ? (o->size - 1) / m->chunk_size + 1 : 1;
    if (o->info.kind == ARCA_OBJ_DATA && nchunks != want) {
        bad(e, m, ARCA_EINTEGRITY, "data object '%s' of %" PRIu64 " bytes lists %" PRIu64 " chunks, not %" PRIu64,
            json_string_value(json_object_get(r, "name")), o->size, nchunks, want);
        goto fail;
    }
    json_t *meta = json_object_get(r, "meta");
    if (!meta_ok(meta)) {
        bad(e, m, ARCA_EINTEGRITY, "object '%s' has malformed meta", json_string_value(json_object_get(r, "name")));
        goto fail;
    }
    o->meta = json_incref(meta);
    json_decref(r);
    return 0;
fail:
    json_decref(r);
    mf_obj_clear(o);
    return -1;
}

/* Decodes and checks one member record against the index. */
static int parse_member(manifest *m, const char *text, size_t len, uint64_t i, mf_mem *mm, mf_err *e)
{
    json_error_t je;
    memset(mm, 0, sizeof *mm);
    json_t *r = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    char *oname = r ? field_name(m, json_object_get(r, "object")) : NULL;
    const char *sha = json_string_value(json_object_get(r, "sha256"));
    const char *given = json_string_value(json_object_get(r, "name"));
    uint64_t chunk = 0, *ordp = oname ? nmap_get(&m->names, nkey_str(oname)) : NULL;
    int rc = -1;
    if (!json_is_object(r) || !oname || u64(r, "chunk", &chunk) || u64(r, "raw_size", &mm->raw) ||
        u64(r, "stored_size", &mm->stored) || u64(r, "offset", &mm->offset) || !sha || strlen(sha) != 64 ||
        strspn(sha, "0123456789abcdef") != 64 || chunk > UINT32_MAX || !given) {
        bad(e, m, ARCA_EINTEGRITY, "member %" PRIu64 " has a bad object, chunk, size, offset, name or sha256", i);
        goto out;
    }
    if (!ordp || m->obj_kind[*ordp] != ARCA_OBJ_DATA) {
        bad(e, m, ARCA_EINTEGRITY, "member %" PRIu64 " belongs to '%s', which is not a listed data object", i,
            json_string_value(json_object_get(r, "object")));
        goto out;
    }
    mm->obj = (uint32_t)*ordp;
    mm->chunk = (uint32_t)chunk;
    memcpy(mm->sha, sha, 65);
    mm->member = member_name(m->version, m->ns, oname, mm->chunk);
    if (strcmp(given, mm->member)) {
        bad(e, m, ARCA_EINTEGRITY, "member %" PRIu64 " is named '%s', expected '%s'", i, given, mm->member);
        goto out;
    }
    if (mm->stored > ZSTD_compressBound(m->chunk_size)) {
        bad(e, m, ARCA_EINTEGRITY, "member '%s' is larger than a chunk can compress to", mm->member);
        goto out;
    }
    rc = 0;
out:
    if (rc)
        mf_mem_clear(mm);
    free(oname);
    json_decref(r);
    return rc;
}

/* ---- opening: the top level -------------------------------------------------------- */

static int read_small(manifest *m, jscan *s, size_t max, json_t **out, mf_err *e, const char *what)
{
    char *t = NULL;
    size_t n = 0;
    json_error_t je;
    if (js_value(s, max, &t, &n, NULL))
        return io_or_syntax(e, m, s, what);
    *out = json_loadb(t, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    free(t);
    if (!*out)
        return bad(e, m, ARCA_EINTEGRITY, "manifest %s is not valid JSON (%s)", what, je.text);
    return 0;
}

/* The top-level keys; the lists are skipped and their places noted. */
static int scan_top(manifest *m, json_t **fmt, json_t **ver, mf_err *e)
{
    jscan s;
    js_init(&s, m->fd, m->off, m->len);
    int rc = 0, first = 1, seen_o = 0, seen_m = 0;
    if (js_expect(&s, '{')) {
        rc = io_or_syntax(e, m, &s, "it does not start with '{'");
        goto out;
    }
    for (;;) {
        int c = js_peek(&s);
        if (c == '}') {
            js_expect(&s, '}');
            break;
        }
        if (!first && js_expect(&s, ',')) {
            rc = io_or_syntax(e, m, &s, "expected ',' or '}'");
            goto out;
        }
        first = 0;
        json_t *key = NULL;
        if (read_small(m, &s, 256, &key, e, "key") || !json_is_string(key) || js_expect(&s, ':')) {
            json_decref(key);
            rc = e->msg ? -1 : io_or_syntax(e, m, &s, "expected a key");
            goto out;
        }
        const char *k = json_string_value(key);
        json_t **slot = !strcmp(k, "format") ? fmt : !strcmp(k, "format_version") ? ver
                      : !strcmp(k, "header") ? &m->header : !strcmp(k, "totals") ? &m->totals : NULL;
        int is_o = !strcmp(k, "objects"), is_m = !strcmp(k, "members");
        if ((slot && *slot) || (is_o && seen_o) || (is_m && seen_m)) {
            rc = bad(e, m, ARCA_EINTEGRITY, "manifest has the key '%s' twice", k);
            json_decref(key);
            goto out;
        }
        json_decref(key);
        if (slot)
            rc = read_small(m, &s, ARCA_MAX_HEADER, slot, e, "header");
        else if (is_o || is_m) {
            uint64_t at;
            if (js_peek(&s) != '[')
                rc = bad(e, m, ARCA_EINTEGRITY, "manifest %s is not a list", is_o ? "objects" : "members");
            else if (js_value(&s, 0, NULL, NULL, &at))
                rc = io_or_syntax(e, m, &s, "in a list");
            if (is_o)
                m->objs_at = at, seen_o = 1;
            else
                m->mems_at = at, seen_m = 1;
        } else if (js_value(&s, 0, NULL, NULL, NULL)) {
            rc = io_or_syntax(e, m, &s, "in a value");
        }
        if (rc)
            goto out;
    }
    if (js_at_end(&s))
        rc = io_or_syntax(e, m, &s, "text after the closing '}'");
    else if (!seen_o || !seen_m)
        rc = bad(e, m, ARCA_EINTEGRITY, "manifest lacks its objects or members list");
out:
    js_free(&s);
    return rc;
}

static int check_header(manifest *m, json_t *fmt, json_t *ver, mf_err *e)
{
    if (strcmp(json_string_value(fmt) ?: "", "arca-manifest") || !json_is_integer(ver))
        return bad(e, m, ARCA_EINTEGRITY, "not an arca manifest");
    m->version = (int)json_integer_value(ver);
    if (m->version < 1 || m->version > ARCA_FORMAT_VERSION)
        return bad(e, m, ARCA_EINTEGRITY, "manifest format version %d is not one this arca reads (1 to %d): written by a newer arca?",
                   m->version, ARCA_FORMAT_VERSION);
    json_t *h = m->header;
    if (!json_is_object(h) || strcmp(json_string_value(json_object_get(h, "format")) ?: "", ARCA_FORMAT_NAME) ||
        json_integer_value(json_object_get(h, "format_version")) != m->version)
        return bad(e, m, ARCA_EINTEGRITY, "archive header is not arca format version %d", m->version);
    m->id = json_string_value(json_object_get(h, "backup_id"));
    m->ns = json_string_value(json_object_get(json_object_get(h, "source"), "namespace"));
    int ns_ok = m->ns && *m->ns && strlen(m->ns) < 64 && strspn(m->ns, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(m->ns);
    if (!backup_id_valid(m->id) || !ns_ok || u64(h, "chunk_size", &m->chunk_size) || m->chunk_size < ARCA_MIN_CHUNK ||
        m->chunk_size > ARCA_MAX_CHUNK)
        return bad(e, m, ARCA_EINTEGRITY, "manifest header lacks a backup id, a source namespace or a chunk_size from %u to %u",
                   ARCA_MIN_CHUNK, ARCA_MAX_CHUNK);
    if (m->version >= 2 && !json_is_object(m->totals))
        return bad(e, m, ARCA_EINTEGRITY, "manifest lacks its totals");
    return 0;
}

/* ---- opening: the lists ---------------------------------------------------------------- */

/* Version 1 has no byte-identical catalogue: its digest is over canonical records. */
static void canon(EVP_MD_CTX *md, const json_t *v)
{
    if (!md)
        return;
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    EVP_DigestUpdate(md, t, strlen(t) + 1);
    free(t);
}

typedef struct pass {
    jscan s;
    int first;
    uint64_t i;
} pass;

static int pass_begin(manifest *m, pass *p, uint64_t at, mf_err *e)
{
    js_init(&p->s, m->fd, m->off, m->len);
    js_seek(&p->s, at);
    p->first = 1;
    p->i = 0;
    if (js_expect(&p->s, '['))
        return io_or_syntax(e, m, &p->s, "expected '['");
    return 0;
}

/* 1 with the next element's text, 0 at the end, -1 on error. */
static int pass_next(manifest *m, pass *p, char **t, size_t *n, uint64_t *at, mf_err *e)
{
    int r = js_next_elem(&p->s, p->first, ARCA_MAX_RECORD, t, n, at);
    p->first = 0;
    if (r < 0)
        return io_or_syntax(e, m, &p->s, "in a list, or a record over 4 MiB");
    return r;
}

/* Objects: each checked, its name indexed; *sizes (caller frees) gets every
 * object's size for check_members (8 bytes an object, only while opening). */
static int index_objects(manifest *m, EVP_MD_CTX *md, uint64_t **sizes, size_t *nlinks, mf_err *e)
{
    pass p;
    int rc = pass_begin(m, &p, m->objs_at, e);
    size_t cap = 0;
    char *t;
    size_t n;
    uint64_t at;
    while (!rc && (rc = pass_next(m, &p, &t, &n, &at, e)) == 1) {
        mf_obj o;
        rc = parse_object(m, t, n, m->nobj, &o, e);
        if (!rc && md) {
            json_t *r = json_loadb(t, n, 0, NULL);
            canon(md, r);
            json_decref(r);
        }
        free(t);
        if (rc)
            break;
        if (nmap_put(&m->names, nkey_str(o.name), m->nobj)) {
            char *shown = text_printable(o.name);
            rc = bad(e, m, ARCA_EINTEGRITY, "object '%s' is listed twice: refused", shown);
            free(shown);
            mf_obj_clear(&o);
            break;
        }
        if (m->nobj == cap) {
            cap = cap ? cap * 2 : 1024;
            m->obj_off = xrealloc(m->obj_off, cap * sizeof *m->obj_off);
            m->obj_chunks = xrealloc(m->obj_chunks, cap * sizeof *m->obj_chunks);
            m->obj_kind = xrealloc(m->obj_kind, cap);
            *sizes = xrealloc(*sizes, cap * sizeof **sizes);
        }
        m->obj_off[m->nobj] = at;
        m->obj_chunks[m->nobj] = o.nchunks;
        m->obj_kind[m->nobj] = (unsigned char)o.info.kind;
        (*sizes)[m->nobj] = o.size;
        *nlinks += o.info.kind == ARCA_OBJ_SYMLINK;
        m->nobj++;
        mf_obj_clear(&o);
    }
    js_free(&p.s);
    return rc < 0 ? -1 : 0;
}

/* No object may lie below a symlink object: writing it would go wherever the
 * link points (verify and restore refuse it alike). */
static int check_below_links(manifest *m, mf_err *e)
{
    pass p;
    int rc = pass_begin(m, &p, m->objs_at, e);
    char *t;
    size_t n;
    uint64_t at;
    while (!rc && (rc = pass_next(m, &p, &t, &n, &at, e)) == 1) {
        json_t *r = json_loadb(t, n, 0, NULL);
        char *name = field_name(m, json_object_get(r, "name"));
        json_decref(r);
        free(t);
        rc = 0;
        for (char *s = name ? strchr(name, '/') : NULL; s && !rc; s = strchr(s + 1, '/')) {
            *s = 0;
            uint64_t *ord = nmap_get(&m->names, nkey_str(name));
            if (ord && m->obj_kind[*ord] == ARCA_OBJ_SYMLINK) {
                char *shown = text_printable(name);
                *s = '/';
                char *full = text_printable(name);
                rc = bad(e, m, ARCA_EINTEGRITY, "object '%s' lies below the symlink '%s': refused", full, shown);
                free(shown);
                free(full);
                break;
            }
            *s = '/';
        }
        free(name);
    }
    js_free(&p.s);
    return rc < 0 ? -1 : 0;
}

/* Members: in archive order, each chunk of an object in turn, every chunk but
 * the last full, offsets increasing; then every data object complete. */
static int check_members(manifest *m, EVP_MD_CTX *md, const uint64_t *sizes, uint64_t *raw_total, uint64_t *stored_total,
                         mf_err *e)
{
    uint32_t *next = xcalloc(m->nobj + 1, sizeof *next);
    pass p;
    int rc = pass_begin(m, &p, m->mems_at, e);
    char *t;
    size_t n;
    uint64_t at, last_off = 0;
    while (!rc && (rc = pass_next(m, &p, &t, &n, &at, e)) == 1) {
        mf_mem mm;
        rc = parse_member(m, t, n, m->nmem, &mm, e);
        if (!rc && md) {
            json_t *r = json_loadb(t, n, 0, NULL);
            canon(md, r);
            json_decref(r);
        }
        free(t);
        if (rc)
            break;
        uint32_t o = mm.obj, nch = m->obj_chunks[o];
        /* every chunk but the last is full, so the last one's size makes the sum right */
        uint64_t want = mm.chunk + 1 < nch ? m->chunk_size : sizes[o] - (uint64_t)(nch - 1) * m->chunk_size;
        if (mm.chunk != next[o])
            rc = bad(e, m, ARCA_EINTEGRITY, "member '%s' is out of order or listed twice (expected chunk %u of its object)",
                     mm.member, next[o]);
        else if (mm.raw != want)
            rc = bad(e, m, ARCA_EINTEGRITY, "member '%s' holds %" PRIu64 " raw bytes, its object's size says %" PRIu64,
                     mm.member, mm.raw, want);
        else if (m->nmem && mm.offset <= last_off)
            rc = bad(e, m, ARCA_EINTEGRITY, "member '%s' does not come after the member before it", mm.member);
        next[o]++;
        last_off = mm.offset;
        *raw_total += mm.raw;
        *stored_total += mm.stored;
        m->nmem++;
        mf_mem_clear(&mm);
    }
    js_free(&p.s);
    for (uint64_t i = 0; rc == 0 && i < m->nobj; i++)
        if (m->obj_kind[i] == ARCA_OBJ_DATA && next[i] != m->obj_chunks[i]) {
            mf_obj o;
            char *err = NULL;
            const char *nm = "?";
            if (mf_object_at(m, (uint32_t)i, &o, &err) == 0)
                nm = o.name;
            char *shown = text_printable(nm);
            rc = bad(e, m, ARCA_EINTEGRITY, "object '%s' lists %u chunks but the members hold %u", shown, m->obj_chunks[i], next[i]);
            free(shown);
            free(err);
            mf_obj_clear(&o);
        }
    free(next);
    return rc < 0 ? -1 : 0;
}

static int check_totals(manifest *m, uint64_t raw, uint64_t stored, mf_err *e)
{
    uint64_t t_obj, t_mem, t_raw, t_stored;
    if (m->version < 2) {
        json_decref(m->totals);
        m->totals = json_pack("{s:I,s:I,s:I,s:I}", "objects", (json_int_t)m->nobj, "members", (json_int_t)m->nmem,
                              "raw_bytes", (json_int_t)raw, "stored_bytes", (json_int_t)stored);
        return 0;
    }
    if (u64(m->totals, "objects", &t_obj) || u64(m->totals, "members", &t_mem) || u64(m->totals, "raw_bytes", &t_raw) ||
        u64(m->totals, "stored_bytes", &t_stored) || t_obj != m->nobj || t_mem != m->nmem || t_raw != raw ||
        t_stored != stored)
        return bad(e, m, ARCA_EINTEGRITY, "manifest totals disagree with its lists");
    return 0;
}

static int raw_digest(manifest *m, mf_err *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char *buf = xmalloc(1 << 16);
    uint64_t pos = m->off, end = m->off + m->len;
    int rc = 0;
    while (pos < end) {
        size_t want = end - pos < (1 << 16) ? (size_t)(end - pos) : (1 << 16);
        ssize_t got = pread(m->fd, buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = bad(e, m, ARCA_EFAIL, "reading the manifest failed: %s", got < 0 ? strerror(errno) : "unexpected end");
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)got);
        pos += (uint64_t)got;
    }
    unsigned int hl = 0;
    EVP_DigestFinal_ex(md, m->digest, &hl);
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

manifest *mf_open(int fd, uint64_t off, uint64_t len, const char *where, int *code, char **err)
{
    manifest *m = xcalloc(1, sizeof *m);
    m->fd = fd;
    m->off = off;
    m->len = len;
    m->where = xstrdup(where);
    mf_err e = {0, NULL};
    json_t *fmt = NULL, *ver = NULL;
    size_t nlinks = 0;
    uint64_t raw = 0, stored = 0, *sizes = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = len > ARCA_MAX_MANIFEST ? bad(&e, m, ARCA_EINTEGRITY, "manifest is larger than 64 GiB") : 0;
    if (!rc)
        rc = scan_top(m, &fmt, &ver, &e);
    if (!rc)
        rc = check_header(m, fmt, ver, &e);
    if (!rc && m->version < 2) {
        md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        canon(md, fmt);
        canon(md, ver);
        canon(md, m->header);
    }
    if (!rc)
        rc = index_objects(m, md, &sizes, &nlinks, &e);
    if (!rc && nlinks)
        rc = check_below_links(m, &e);
    if (!rc)
        rc = check_members(m, md, sizes, &raw, &stored, &e);
    free(sizes);
    if (!rc)
        rc = check_totals(m, raw, stored, &e);
    if (!rc && md) {
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md, m->digest, &hl);
    } else if (!rc) {
        rc = raw_digest(m, &e);
    }
    EVP_MD_CTX_free(md);
    json_decref(fmt);
    json_decref(ver);
    if (rc) {
        *err = e.msg ? e.msg : xasprintf("%s: unreadable manifest", where);
        if (code)
            *code = e.code ? e.code : ARCA_EINTEGRITY;
        mf_close(m);
        return NULL;
    }
    return m;
}

/* ---- cursors ---------------------------------------------------------------------------- */

struct mf_cursor {
    manifest *m;
    pass p;
    int members, failed;
    char *err;
};

static mf_cursor *cursor(manifest *m, int members)
{
    mf_cursor *c = xcalloc(1, sizeof *c);
    c->m = m;
    c->members = members;
    mf_err e = {0, NULL};
    if (pass_begin(m, &c->p, members ? m->mems_at : m->objs_at, &e)) {
        c->failed = 1;
        c->err = e.msg;
    }
    return c;
}

mf_cursor *mf_objects(manifest *m) { return cursor(m, 0); }
mf_cursor *mf_members(manifest *m) { return cursor(m, 1); }

static int cursor_next(mf_cursor *c, mf_obj *o, mf_mem *mm)
{
    if (o)
        mf_obj_clear(o);
    if (mm)
        mf_mem_clear(mm);
    if (c->failed)
        return -1;
    mf_err e = {0, NULL};
    char *t;
    size_t n;
    uint64_t at;
    int r = pass_next(c->m, &c->p, &t, &n, &at, &e);
    if (r == 1) {
        r = o ? parse_object(c->m, t, n, c->p.i, o, &e) : parse_member(c->m, t, n, c->p.i, mm, &e);
        r = r ? -1 : 1;
        free(t);
        c->p.i++;
    }
    if (r < 0) {
        c->failed = 1;
        c->err = e.msg ? e.msg : xasprintf("%s: the manifest changed while it was read", c->m->where);
    }
    return r;
}

int mf_next_object(mf_cursor *c, mf_obj *o) { return cursor_next(c, o, NULL); }
int mf_next_member(mf_cursor *c, mf_mem *mm) { return cursor_next(c, NULL, mm); }
const char *mf_cursor_error(const mf_cursor *c) { return c->err ? c->err : "no error"; }

void mf_cursor_free(mf_cursor *c)
{
    if (!c)
        return;
    js_free(&c->p.s);
    free(c->err);
    free(c);
}

arca_obj_kind mf_object_kind(const manifest *m, uint32_t ord)
{
    return ord < m->nobj ? (arca_obj_kind)m->obj_kind[ord] : 0;
}

int mf_object_at(manifest *m, uint32_t ord, mf_obj *o, char **err)
{
    memset(o, 0, sizeof *o);
    if (ord >= m->nobj) {
        *err = xasprintf("%s: no object %u", m->where, ord);
        return -1;
    }
    if (!m->rnd_open) {
        js_init(&m->rnd, m->fd, m->off, m->len);
        m->rnd_open = 1;
    }
    js_seek(&m->rnd, m->obj_off[ord]);
    char *t = NULL;
    size_t n = 0;
    mf_err e = {0, NULL};
    int rc = js_value(&m->rnd, ARCA_MAX_RECORD, &t, &n, NULL) ? io_or_syntax(&e, m, &m->rnd, "object record")
                                                              : parse_object(m, t, n, ord, o, &e);
    free(t);
    if (rc)
        *err = e.msg;
    return rc;
}

int mf_head(int fd, uint64_t off, uint64_t len, const char *where, json_t **header, json_t **totals, char **err)
{
    manifest m0 = {.fd = fd, .off = off, .len = len, .where = (char *)where};
    mf_err e = {0, NULL};
    jscan s;
    js_init(&s, fd, off, len);
    *header = *totals = NULL;
    int rc = js_expect(&s, '{') ? io_or_syntax(&e, &m0, &s, "it does not start with '{'") : 0;
    for (int first = 1; !rc && js_peek(&s) != '}'; first = 0) {
        json_t *key = NULL;
        if ((!first && js_expect(&s, ',')) || read_small(&m0, &s, 256, &key, &e, "key") || !json_is_string(key) ||
            js_expect(&s, ':')) {
            json_decref(key);
            rc = e.msg ? -1 : io_or_syntax(&e, &m0, &s, "expected a key");
            break;
        }
        const char *k = json_string_value(key);
        if (!strcmp(k, "objects") || !strcmp(k, "members")) {
            json_decref(key);
            break; /* the lists: the head is over */
        }
        json_t **slot = !strcmp(k, "header") ? header : !strcmp(k, "totals") ? totals : NULL;
        json_decref(key);
        if (slot && !*slot)
            rc = read_small(&m0, &s, ARCA_MAX_HEADER, slot, &e, "header");
        else if (js_value(&s, ARCA_MAX_HEADER, NULL, NULL, NULL))
            rc = io_or_syntax(&e, &m0, &s, "in a value");
    }
    js_free(&s);
    if (!rc && !json_is_object(*header))
        rc = bad(&e, &m0, ARCA_EINTEGRITY, "manifest has no header at its start");
    if (rc) {
        json_decref(*header);
        json_decref(*totals);
        *header = *totals = NULL;
        *err = e.msg;
        return -1;
    }
    return 0;
}
