/* Backup catalogue: records, JSON text, and the member name rules. */
#include "manifest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

int name_is_safe(const char *name)
{
    if (!name || !*name || name[0] == '/' || strlen(name) > ARCA_MAX_NAME)
        return 0;
    const char *c = name;
    while (*c) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
                return 0;
        if (!end)
            break;
        c = end + 1;
        if (!*c)
            return 0; /* trailing slash */
    }
    return 1;
}

char *member_name(const char *ns, const char *obj, uint32_t chunk)
{
    return xasprintf("%s/%s.%06" PRIu32 ".zst", ns, obj, chunk);
}

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
    if (!s) return -1;
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
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

/* Append a compact JSON value followed by `sep`. */
static void put_json(char **buf, size_t *len, size_t *cap, json_t *v, const char *sep)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    size_t sl = strlen(s), pl = strlen(sep);
    if (*len + sl + pl + 1 > *cap) {
        *cap = (*len + sl + pl + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, sl);
    memcpy(*buf + *len + sl, sep, pl + 1);
    *len += sl + pl;
    free(s);
}

static void put_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t sl = strlen(s);
    if (*len + sl + 1 > *cap) {
        *cap = (*len + sl + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, sl + 1);
    *len += sl;
}

char *manifest_text(json_t *header, mf_object **objs, size_t nobjs, mf_member *mem, size_t nmem)
{
    /* Written by hand one record per line, so a huge manifest is never a jansson
     * tree and stays readable with grep. */
    size_t cap = 4096 + nmem * 200 + nobjs * 160, len = 0;
    char *buf = xmalloc(cap);
    buf[0] = 0;
    const char *ns = json_string_value(json_object_get(json_object_get(header, "source"), "namespace"));
    put_raw(&buf, &len, &cap, "{\"format\":\"arca-manifest\",\"format_version\":1,\n\"header\":");
    put_json(&buf, &len, &cap, header, ",\n\"members\":[\n");
    uint64_t raw = 0, stored = 0;
    for (size_t i = 0; i < nmem; i++) {
        char hex[65];
        hex_encode(mem[i].sha, 32, hex);
        char *mn = member_name(ns, mem[i].obj->name, mem[i].chunk);
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "name", mn, "object", mem[i].obj->name, "chunk",
                              (json_int_t)mem[i].chunk, "raw_size", (json_int_t)mem[i].raw, "stored_size",
                              (json_int_t)mem[i].stored, "offset", (json_int_t)mem[i].offset, "sha256", hex);
        put_json(&buf, &len, &cap, o, i + 1 < nmem ? ",\n" : "\n");
        json_decref(o);
        free(mn);
        raw += mem[i].raw;
        stored += mem[i].stored;
    }
    put_raw(&buf, &len, &cap, "],\n\"objects\":[\n");
    for (size_t i = 0; i < nobjs; i++) {
        mf_object *ob = objs[i];
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "name", ob->name, "kind", kind_name(ob->kind), "size",
                              (json_int_t)ob->size, "chunks", (json_int_t)ob->nchunks, "mode", (json_int_t)ob->mode,
                              "mtime", (json_int_t)ob->mtime_sec, "mtime_nsec", (json_int_t)ob->mtime_nsec);
        if (ob->target)
            json_object_set_new(o, "target", json_string(ob->target));
        if (ob->meta)
            json_object_set(o, "meta", ob->meta);
        put_json(&buf, &len, &cap, o, i + 1 < nobjs ? ",\n" : "\n");
        json_decref(o);
    }
    json_t *tot = json_pack("{s:I,s:I,s:I,s:I}", "objects", (json_int_t)nobjs, "members", (json_int_t)nmem, "raw_bytes",
                            (json_int_t)raw, "stored_bytes", (json_int_t)stored);
    put_raw(&buf, &len, &cap, "],\n\"totals\":");
    put_json(&buf, &len, &cap, tot, "}\n");
    json_decref(tot);
    return buf;
}

mf_read_member *manifest_member(manifest *m, const char *name)
{
    if (!m->idx_cap)
        return NULL;
    for (size_t i = hash_str(name) & (m->idx_cap - 1);; i = (i + 1) & (m->idx_cap - 1)) {
        if (m->idx[i] == SIZE_MAX)
            return NULL;
        if (!strcmp(m->mem[m->idx[i]].member, name))
            return &m->mem[m->idx[i]];
    }
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nmem; i++)
        free(m->mem[i].member);
    for (size_t i = 0; i < m->nobj; i++) {
        free(m->obj[i].name);
        free(m->obj[i].target);
    }
    free(m->mem);
    free(m->obj);
    free(m->idx);
    json_decref(m->root);
    free(m);
}

static int u64(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

#define BAD(...) do { *err = xasprintf(__VA_ARGS__); manifest_free(m); return NULL; } while (0)

manifest *manifest_parse(const char *text, size_t len, const char *where, char **err)
{
    json_error_t je;
    manifest *m = xcalloc(1, sizeof *m);
    m->root = json_loadb(text, len, 0, &je);
    if (!m->root)
        BAD("%s: manifest is not valid JSON (line %d: %s)", where, je.line, je.text);
    json_t *r = m->root;
    if (json_integer_value(json_object_get(r, "format_version")) != ARCA_FORMAT_VERSION ||
        strcmp(json_string_value(json_object_get(r, "format")) ?: "", "arca-manifest"))
        BAD("%s: not an arca manifest of format version %d", where, ARCA_FORMAT_VERSION);
    m->header = json_object_get(r, "header");
    if (strcmp(json_string_value(json_object_get(m->header, "format")) ?: "", ARCA_FORMAT_NAME) ||
        json_integer_value(json_object_get(m->header, "format_version")) != ARCA_FORMAT_VERSION)
        BAD("%s: archive header is not arca format version %d (written by a newer arca?)", where, ARCA_FORMAT_VERSION);
    m->id = json_string_value(json_object_get(m->header, "backup_id"));
    m->ns = json_string_value(json_object_get(json_object_get(m->header, "source"), "namespace"));
    if (!m->id || !m->ns || !name_is_safe(m->ns) || strchr(m->ns, '/') || u64(m->header, "chunk_size", &m->chunk_size) ||
        m->chunk_size == 0 || m->chunk_size > (1u << 30))
        BAD("%s: manifest header lacks backup_id, source namespace or a sane chunk_size", where);
    json_t *objs = json_object_get(r, "objects"), *mems = json_object_get(r, "members");
    if (!json_is_array(objs) || !json_is_array(mems))
        BAD("%s: manifest lacks its objects or members list", where);
    m->nobj = json_array_size(objs);
    m->obj = xcalloc(m->nobj + 1, sizeof *m->obj);
    /* object names must be unique: index them in a temporary table */
    size_t ocap = 16;
    while (ocap < m->nobj * 2)
        ocap <<= 1;
    size_t *oidx = xmalloc(ocap * sizeof *oidx);
    memset(oidx, 0xff, ocap * sizeof *oidx);
    for (size_t i = 0; i < m->nobj; i++) {
        json_t *o = json_array_get(objs, i);
        mf_read_object *ro = &m->obj[i];
        const char *name = json_string_value(json_object_get(o, "name"));
        uint64_t mode = 0, nchunks = 0;
        json_t *mt = json_object_get(o, "mtime"), *mn = json_object_get(o, "mtime_nsec");
        if (!name || !name_is_safe(name)) {
            free(oidx);
            BAD("%s: object %zu has an unsafe name '%s' (absolute, '..', or empty): refused", where, i, name ? name : "(none)");
        }
        if (kind_parse(json_string_value(json_object_get(o, "kind")), &ro->info.kind) || u64(o, "size", &ro->size) ||
            u64(o, "chunks", &nchunks) || u64(o, "mode", &mode) || nchunks > UINT32_MAX || !json_is_integer(mt) ||
            mode > 07777 || (mn && (!json_is_integer(mn) || json_integer_value(mn) < 0 || json_integer_value(mn) > 999999999))) {
            free(oidx);
            BAD("%s: object '%s' has a bad kind, size, chunks, mode or mtime", where, name);
        }
        for (size_t h = hash_str(name) & (ocap - 1);; h = (h + 1) & (ocap - 1)) {
            if (oidx[h] == SIZE_MAX) { oidx[h] = i; break; }
            if (!strcmp(m->obj[oidx[h]].name, name)) {
                free(oidx);
                BAD("%s: object '%s' is listed twice: refused", where, name);
            }
        }
        ro->name = xstrdup(name);
        ro->info.name = ro->name;
        ro->nchunks = (uint32_t)nchunks;
        ro->info.mode = (uint32_t)mode & 07777;
        ro->info.mtime_sec = json_integer_value(mt);
        ro->info.mtime_nsec = (int32_t)json_integer_value(mn);
        const char *t = json_string_value(json_object_get(o, "target"));
        if (ro->info.kind == ARCA_OBJ_SYMLINK) {
            if (!t || !*t) {
                free(oidx);
                BAD("%s: symlink object '%s' has no target", where, name);
            }
            ro->target = xstrdup(t);
            ro->info.link_target = ro->target;
        }
        if (ro->info.kind != ARCA_OBJ_DATA && nchunks) {
            free(oidx);
            BAD("%s: object '%s' of kind %s cannot have data", where, name, kind_name(ro->info.kind));
        }
        if (ro->info.kind == ARCA_OBJ_DATA && !nchunks) {
            free(oidx);
            BAD("%s: data object '%s' has no chunks", where, name);
        }
        ro->meta = json_object_get(o, "meta");
    }
    m->nmem = json_array_size(mems);
    m->mem = xcalloc(m->nmem + 1, sizeof *m->mem);
    m->idx_cap = 16;
    while (m->idx_cap < m->nmem * 2)
        m->idx_cap <<= 1;
    m->idx = xmalloc(m->idx_cap * sizeof *m->idx);
    memset(m->idx, 0xff, m->idx_cap * sizeof *m->idx);
    uint64_t *chunk_seen_raw = xcalloc(m->nobj + 1, sizeof *chunk_seen_raw);
    uint32_t *chunk_count = xcalloc(m->nobj + 1, sizeof *chunk_count);
    for (size_t i = 0; i < m->nmem; i++) {
        json_t *o = json_array_get(mems, i);
        mf_read_member *rm = &m->mem[i];
        const char *oname = json_string_value(json_object_get(o, "object"));
        const char *sha = json_string_value(json_object_get(o, "sha256"));
        uint64_t chunk = 0;
        size_t oi = SIZE_MAX;
        if (oname)
            for (size_t h = hash_str(oname) & (ocap - 1); oidx[h] != SIZE_MAX; h = (h + 1) & (ocap - 1))
                if (!strcmp(m->obj[oidx[h]].name, oname)) { oi = oidx[h]; break; }
        int bad = oi == SIZE_MAX || u64(o, "chunk", &chunk) || u64(o, "raw_size", &rm->raw) ||
                  u64(o, "stored_size", &rm->stored) || u64(o, "offset", &rm->offset) || !sha || strlen(sha) != 64 ||
                  strspn(sha, "0123456789abcdef") != 64 || rm->raw > m->chunk_size;
        if (!bad && (chunk >= m->obj[oi].nchunks || m->obj[oi].info.kind != ARCA_OBJ_DATA))
            bad = 1;
        if (bad) {
            free(oidx); free(chunk_seen_raw); free(chunk_count);
            BAD("%s: member %zu (object '%s') has a bad object, chunk, size, offset or sha256", where, i, oname ? oname : "?");
        }
        rm->obj = oi;
        rm->chunk = (uint32_t)chunk;
        memcpy(rm->sha, sha, 65);
        rm->member = member_name(m->ns, oname, rm->chunk);
        const char *given = json_string_value(json_object_get(o, "name"));
        if (!given || strcmp(given, rm->member)) {
            free(oidx); free(chunk_seen_raw); free(chunk_count);
            BAD("%s: member %zu is named '%s', expected '%s'", where, i, given ? given : "(none)", rm->member);
        }
        for (size_t h = hash_str(rm->member) & (m->idx_cap - 1);; h = (h + 1) & (m->idx_cap - 1)) {
            if (m->idx[h] == SIZE_MAX) { m->idx[h] = i; break; }
            if (!strcmp(m->mem[m->idx[h]].member, rm->member)) {
                free(oidx); free(chunk_seen_raw); free(chunk_count);
                BAD("%s: member '%s' is listed twice: refused", where, rm->member);
            }
        }
        chunk_seen_raw[oi] += rm->raw;
        chunk_count[oi]++;
    }
    for (size_t i = 0; i < m->nobj; i++) {
        if (chunk_count[i] != m->obj[i].nchunks || chunk_seen_raw[i] != m->obj[i].size) {
            const char *n = m->obj[i].name;
            free(oidx); free(chunk_seen_raw); free(chunk_count);
            BAD("%s: object '%s' lists %u chunks / %" PRIu64 " bytes but its members disagree", where, n,
                m->obj[i].nchunks, m->obj[i].size);
        }
    }
    free(oidx);
    free(chunk_seen_raw);
    free(chunk_count);
    return m;
}

int manifest_same(json_t *a, json_t *b)
{
    json_t *ca = json_copy(a), *cb = json_copy(b);
    json_object_del(ca, "archive");
    json_object_del(cb, "archive");
    int same = json_equal(ca, cb);
    json_decref(ca);
    json_decref(cb);
    return same;
}
