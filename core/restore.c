/* Reading an archive: every member is checked against the manifest (name, type,
 * duplicates, size, SHA-256 of the stored bytes, zstd content size and frame
 * checksum) before anything is handed to a source; verify is the same read with
 * no source attached. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader */
#include <zstd.h>

#include "engine.h"

#define READBUF_SIZE (1u << 20)
#define MAX_HEADER_SIZE (1u << 20)
#define MAX_MANIFEST_SIZE (1ull << 31)

typedef struct rd {
    rd_stream *in;
    manifest *m;
    struct archive *ar;
    int io_failed;
    unsigned char *readbuf;
    unsigned char *stored, *raw;
    size_t stored_cap;
    ZSTD_DCtx *dctx;
    EVP_MD_CTX *md;
    int nmembers_read, saw_manifest, at_end;
    size_t nd_next; /* next DIR/SYMLINK object to hand out */
    mf_read_object *cur;
    char metabuf[32];
    read_stats *st;
    char *err;
    int errcode;
} rd;

static int rd_fail(rd *r, int code, char *msg)
{
    if (!r->err) {
        r->err = msg;
        r->errcode = code;
    } else {
        free(msg);
    }
    return code;
}

static la_ssize_t ar_read_cb(struct archive *a, void *ud, const void **buf)
{
    rd *r = ud;
    size_t got = 0;
    if (r->in->read(r->in->ud, r->readbuf, READBUF_SIZE, &got) != 0) {
        r->io_failed = 1;
        archive_set_error(a, EIO, "read failed");
        return -1;
    }
    *buf = r->readbuf;
    r->st->archive_bytes += got;
    progress_add(got);
    return (la_ssize_t)got;
}

/* A libarchive failure is an I/O error if our stream failed, else a malformed archive. */
static int ar_problem(rd *r, const char *ctx)
{
    if (r->io_failed) {
        char *why = r->in->error ? r->in->error(r->in->ud) : NULL;
        int rc = rd_fail(r, ARCA_EFAIL, xasprintf("%s: reading failed%s%s", r->in->where, why ? ": " : "", why ? why : ""));
        free(why);
        return rc;
    }
    return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s: %s (truncated or malformed archive)", r->in->where, ctx,
                                                 archive_error_string(r->ar) ? archive_error_string(r->ar) : "unexpected end"));
}

/* Read exactly `len` bytes of the current member's data. */
static int read_exact(rd *r, void *buf, size_t len, const char *name)
{
    size_t done = 0;
    while (done < len) {
        la_ssize_t n = archive_read_data(r->ar, (char *)buf + done, len - done);
        if (n < 0) {
            char *ctx = xasprintf("member '%s'", name);
            int rc = ar_problem(r, ctx);
            free(ctx);
            return rc;
        }
        if (n == 0)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is truncated (%zu of %zu bytes)", r->in->where, name, done, len));
        done += (size_t)n;
    }
    return 0;
}

static const char *type_name(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return "a hard link";
    switch (archive_entry_filetype(e)) {
    case AE_IFLNK: return "a symbolic link";
    case AE_IFDIR: return "a directory";
    case AE_IFCHR: case AE_IFBLK: return "a device";
    case AE_IFIFO: return "a fifo";
    case AE_IFSOCK: return "a socket";
    }
    return "not a regular file";
}

static int unsafe_member_name(const char *name)
{
    /* our own two members are the only names without a namespace directory */
    size_t n = strlen(name);
    return !name_is_safe(name) && !(n > 1 && name[n - 1] == '/'); /* a directory is refused as such below */
}

/* Next verified data chunk: 1 with *out set, 0 at the end, <0 on failure. */
static int rd_next_chunk(rd *r, mf_read_member **out, size_t *rawlen)
{
    struct archive_entry *e;
    for (;;) {
        int ar = archive_read_next_header(r->ar, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
            return ar_problem(r, r->nmembers_read ? "after the last good member" : "at the start");
        const char *name = archive_entry_pathname_utf8(e);
        if (!name)
            name = archive_entry_pathname(e);
        if (!name)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member %d has no readable name", r->in->where, r->nmembers_read + 1));
        r->nmembers_read++;
        if (r->saw_manifest)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' follows MANIFEST.json: refused", r->in->where, name));
        if (unsafe_member_name(name))
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' has an unsafe name (absolute, '..' or empty): refused", r->in->where, name));
        if (archive_entry_hardlink(e) || archive_entry_filetype(e) != AE_IFREG)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is %s: refused", r->in->where, name, type_name(e)));
        la_int64_t size = archive_entry_size(e);
        if (r->nmembers_read == 1) {
            if (strcmp(name, ARCA_HEADER_MEMBER))
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: not an arca archive: first member is '%s', not %s", r->in->where, name, ARCA_HEADER_MEMBER));
            if (size < 0 || size > MAX_HEADER_SIZE)
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s is too large", r->in->where, name));
            char *txt = xmalloc((size_t)size + 1);
            int rc = read_exact(r, txt, (size_t)size, name);
            json_t *h = rc ? NULL : json_loadb(txt, (size_t)size, 0, NULL);
            free(txt);
            if (rc)
                return rc;
            int same = h && json_equal(h, r->m->header);
            json_decref(h);
            if (!same)
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s does not match the manifest's header (another backup's archive?)", r->in->where, name));
            continue;
        }
        if (!strcmp(name, ARCA_MANIFEST_MEMBER)) {
            if (size < 0 || (uint64_t)size > MAX_MANIFEST_SIZE)
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s is too large", r->in->where, name));
            char *txt = xmalloc((size_t)size + 1);
            int rc = read_exact(r, txt, (size_t)size, name);
            json_t *doc = rc ? NULL : json_loadb(txt, (size_t)size, 0, NULL);
            free(txt);
            if (rc)
                return rc;
            int same = doc && manifest_same(doc, r->m->root);
            json_decref(doc);
            if (!same)
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: the archive's MANIFEST.json differs from the catalogue manifest", r->in->where));
            r->saw_manifest = 1;
            continue;
        }
        mf_read_member *mm = manifest_member(r->m, name);
        if (!mm)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is not in the manifest: refused", r->in->where, name));
        if (mm->seen)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' appears twice: refused", r->in->where, name));
        if (size < 0 || (uint64_t)size != mm->stored)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is %" PRId64 " bytes, the manifest says %" PRIu64, r->in->where, name, (int64_t)size, mm->stored));
        mf_read_object *ob = &r->m->obj[mm->obj];
        if (mm->chunk != ob->next_chunk)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is out of order (expected chunk %u of '%s')", r->in->where, name, ob->next_chunk, ob->name));
        if (mm->stored > r->stored_cap)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is larger than any chunk can compress to", r->in->where, name));
        /* with the "none" filter, bytes consumed so far is where this member's data starts */
        uint64_t at = (uint64_t)archive_filter_bytes(r->ar, 0);
        if (at != mm->offset)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' starts at byte %" PRIu64 ", the manifest says %" PRIu64, r->in->where, name, at, mm->offset));
        int rc = read_exact(r, r->stored, (size_t)mm->stored, name);
        if (rc)
            return rc;
        unsigned char sha[32];
        unsigned int hl = 0;
        char hex[65];
        EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
        EVP_DigestUpdate(r->md, r->stored, (size_t)mm->stored);
        EVP_DigestFinal_ex(r->md, sha, &hl);
        hex_encode(sha, 32, hex);
        if (strcmp(hex, mm->sha))
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': checksum mismatch (sha256 %s, manifest %s)", r->in->where, name, hex, mm->sha));
        ZSTD_frameHeader fh;
        if (ZSTD_getFrameHeader(&fh, r->stored, (size_t)mm->stored) != 0 || fh.frameType != ZSTD_frame || !fh.checksumFlag ||
            ZSTD_findFrameCompressedSize(r->stored, (size_t)mm->stored) != mm->stored)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is not exactly one zstd frame with a content checksum", r->in->where, name));
        unsigned long long fcs = ZSTD_getFrameContentSize(r->stored, (size_t)mm->stored);
        if (fcs != mm->raw)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': zstd frame content size disagrees with the manifest", r->in->where, name));
        size_t n = ZSTD_decompressDCtx(r->dctx, r->raw, r->m->chunk_size, r->stored, (size_t)mm->stored);
        if (ZSTD_isError(n) || n != mm->raw)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': zstd frame is corrupt: %s", r->in->where, name, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
        mm->seen = 1;
        ob->next_chunk++;
        r->st->members++;
        r->st->raw_bytes += mm->raw;
        r->st->stored_bytes += mm->stored;
        *out = mm;
        *rawlen = n;
        return 1;
    }
    /* end of the tar stream */
    if (!r->saw_manifest)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: archive ends before its MANIFEST.json: truncated", r->in->where));
    for (size_t i = 0; i < r->m->nmem; i++)
        if (!r->m->mem[i].seen)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' listed in the manifest is missing", r->in->where, r->m->mem[i].member));
    r->at_end = 1;
    return 0;
}

/* ---- feed entry points ----------------------------------------------------- */

int engine_feed_next(arca_feed *f, arca_entry *e)
{
    rd *r = (rd *)f;
    memset(e, 0, sizeof *e);
    if (r->err)
        return r->errcode;
    if (g_interrupted)
        return rd_fail(r, ARCA_ECANCELED, xstrdup("interrupted"));
    while (r->nd_next < r->m->nobj) {
        mf_read_object *ob = &r->m->obj[r->nd_next++];
        if (ob->info.kind == ARCA_OBJ_DATA)
            continue;
        r->cur = ob;
        e->info = ob->info;
        r->st->objects++;
        return 1;
    }
    if (r->at_end)
        return 0;
    mf_read_member *mm;
    size_t len;
    int rc = rd_next_chunk(r, &mm, &len);
    if (rc <= 0)
        return rc;
    mf_read_object *ob = &r->m->obj[mm->obj];
    r->cur = ob;
    if (mm->chunk == 0)
        r->st->objects++;
    e->info = ob->info;
    e->object_size = ob->size;
    e->chunk = mm->chunk;
    e->chunks = ob->nchunks;
    e->data = r->raw;
    e->len = len;
    return 1;
}

const char *engine_feed_meta(arca_feed *f, const char *key)
{
    rd *r = (rd *)f;
    if (!r->cur || !r->cur->meta || !key)
        return NULL;
    json_t *v = json_object_get(r->cur->meta, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(r->metabuf, sizeof r->metabuf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return r->metabuf;
    }
    return NULL;
}

const char *engine_feed_info(arca_feed *f, const char *key)
{
    rd *r = (rd *)f;
    json_t *info = json_object_get(json_object_get(r->m->header, "source"), "info");
    return json_string_value(json_object_get(info, key));
}

/* ---- driving a read ----------------------------------------------------------- */

int engine_read(rd_stream *in, manifest *m, inst *target, const void *ropts, read_stats *st, char **err)
{
    rd r;
    memset(&r, 0, sizeof r);
    memset(st, 0, sizeof *st);
    r.in = in;
    r.m = m;
    r.st = st;
    for (size_t i = 0; i < m->nmem; i++)
        m->mem[i].seen = 0;
    for (size_t i = 0; i < m->nobj; i++)
        m->obj[i].next_chunk = 0;
    r.readbuf = xmalloc(READBUF_SIZE);
    r.stored_cap = ZSTD_compressBound(m->chunk_size);
    r.stored = xmalloc(r.stored_cap);
    r.raw = xmalloc(m->chunk_size);
    r.dctx = ZSTD_createDCtx();
    r.md = EVP_MD_CTX_new();
    r.ar = archive_read_new();
    archive_read_support_format_tar(r.ar);
    int rc = ARCA_OK;
    g_op_failed = 0;
    if (archive_read_open2(r.ar, &r, NULL, ar_read_cb, NULL, NULL) != ARCHIVE_OK)
        rc = ar_problem(&r, "opening");
    progress_start(target ? "restore" : "verify");
    if (rc == ARCA_OK && target) {
        rc = target->plug->desc->source->restore(target->state, (arca_feed *)&r, ropts);
        if (rc != ARCA_OK && !r.err)
            rd_fail(&r, rc, inst_take_error(target, rc, "restore failed"));
        else if (rc != ARCA_OK) {
            char *m2 = inst_take_error(target, rc, "restore failed");
            log_msg(ARCA_LOG_INFO, "%s", m2);
            free(m2);
        }
        /* A source that stopped early still gets the rest of the archive checked. */
        while (rc == ARCA_OK && !r.err && !r.at_end) {
            mf_read_member *mm;
            size_t len;
            if (rd_next_chunk(&r, &mm, &len) < 0)
                break;
        }
    } else if (rc == ARCA_OK) {
        while (!r.err && !r.at_end) {
            mf_read_member *mm;
            size_t len;
            if (rd_next_chunk(&r, &mm, &len) < 0 || g_interrupted)
                break;
        }
        if (g_interrupted && !r.err)
            rd_fail(&r, ARCA_ECANCELED, xstrdup("interrupted"));
    }
    progress_end();
    if (r.err) {
        rc = r.errcode;
        *err = r.err;
    } else {
        rc = ARCA_OK;
        st->objects = m->nobj;
    }
    archive_read_free(r.ar);
    ZSTD_freeDCtx(r.dctx);
    EVP_MD_CTX_free(r.md);
    free(r.readbuf);
    free(r.stored);
    free(r.raw);
    return rc;
}

int engine_scan_file(const char *path, json_t **header, char **mtext, size_t *mlen, char **err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_format_tar(a);
    *header = NULL;
    *mtext = NULL;
    int rc = ARCA_OK, n = 0;
    if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
        /* a file we cannot open is an I/O failure; one we cannot parse is malformed */
        int io = archive_errno(a) == ENOENT || archive_errno(a) == EACCES || archive_errno(a) == EISDIR;
        *err = xasprintf("%s: %s: %s", path, io ? "cannot open archive" : "not an arca archive", archive_error_string(a));
        archive_read_free(a);
        return io ? ARCA_EFAIL : ARCA_EINTEGRITY;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            *err = xasprintf("%s: %s (truncated or malformed archive)", path, archive_error_string(a));
            rc = ARCA_EINTEGRITY;
            break;
        }
        const char *name = archive_entry_pathname_utf8(e) ? archive_entry_pathname_utf8(e) : archive_entry_pathname(e);
        n++;
        int is_h = n == 1 && name && !strcmp(name, ARCA_HEADER_MEMBER);
        int is_m = name && !strcmp(name, ARCA_MANIFEST_MEMBER);
        if (n == 1 && !is_h) {
            *err = xasprintf("%s: not an arca archive: first member is '%s', not %s", path, name ? name : "?", ARCA_HEADER_MEMBER);
            rc = ARCA_EINTEGRITY;
            break;
        }
        if (!is_h && !is_m)
            continue; /* payload: skipped (seeks) */
        la_int64_t size = archive_entry_size(e);
        if (size < 0 || (uint64_t)size > (is_h ? MAX_HEADER_SIZE : MAX_MANIFEST_SIZE)) {
            *err = xasprintf("%s: %s has an impossible size", path, name);
            rc = ARCA_EINTEGRITY;
            break;
        }
        char *buf = xmalloc((size_t)size + 1);
        la_ssize_t got = 0, k;
        while (got < size && (k = archive_read_data(a, buf + got, (size_t)(size - got))) > 0)
            got += k;
        buf[got] = 0;
        if (got != size) {
            free(buf);
            *err = xasprintf("%s: %s is truncated", path, name);
            rc = ARCA_EINTEGRITY;
            break;
        }
        if (is_h) {
            *header = json_loadb(buf, (size_t)size, 0, NULL);
            free(buf);
            if (!*header) {
                *err = xasprintf("%s: %s is not valid JSON", path, name);
                rc = ARCA_EINTEGRITY;
                break;
            }
        } else {
            free(*mtext);
            *mtext = buf;
            *mlen = (size_t)size;
        }
    }
    if (rc == ARCA_OK && !*mtext) {
        *err = xasprintf("%s: archive has no MANIFEST.json: truncated or unfinished backup", path);
        rc = ARCA_EINTEGRITY;
    }
    if (rc == ARCA_OK && !*header) {
        *err = xasprintf("%s: archive is empty", path);
        rc = ARCA_EINTEGRITY;
    }
    archive_read_free(a);
    if (rc != ARCA_OK) {
        json_decref(*header);
        *header = NULL;
        free(*mtext);
        *mtext = NULL;
    }
    return rc;
}
