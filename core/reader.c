/* Reading an archive. Every tar member is checked against the manifest in
 * lockstep (the k-th payload member must be the manifest's k-th member: name,
 * size, offset, SHA-256 of the stored bytes, one zstd frame with the right
 * content size and checksum) before a source sees a byte; verify is the same
 * read with no source attached. An archive whose manifest is not known up front
 * (a pipe) is checked in one pass: what each member was is recorded in a
 * temporary file and compared with the manifest when it arrives at the end. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader */
#include <zstd.h>

#include "engine.h"
#include "names.h"

#define READBUF_SIZE (1u << 20)
#define OBJ_CACHE 64 /* objects whose chunks may interleave, kept decoded */

typedef struct cslot {
    mf_obj o;
    int used;
    uint64_t tick;
} cslot;

typedef struct rd {
    rd_stream *in;
    manifest *m;
    struct archive *ar;
    int io_failed;
    int copy_fd;          /* every byte read is also written here (restore from a pipe), or -1 */
    unsigned char *readbuf;
    unsigned char *stored, *raw;
    uint64_t chunk_size;
    size_t stored_cap;
    ZSTD_DCtx *dctx;
    EVP_MD_CTX *md;
    int nmembers, saw_manifest, at_end;
    mf_cursor *members;   /* lockstep with the payload members */
    int dirs;             /* restore: DIR/SYMLINK objects are handed out first */
    uint32_t next_dir;    /* ... the next object ordinal to look at */
    mf_mem mm;            /* the manifest member just verified */
    cslot cache[OBJ_CACHE];
    uint64_t tick;
    mf_obj *cur;          /* the object of the entry last handed out */
    mf_obj dirobj;
    char *given[8];       /* strings feed_meta/feed_info handed out since the last feed_next */
    size_t ngiven;
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
    if (g_interrupted) {
        r->io_failed = 1;
        archive_set_error(a, EINTR, "interrupted");
        return -1;
    }
    if (r->in->read(r->in->ud, r->readbuf, READBUF_SIZE, &got) != 0) {
        r->io_failed = 1;
        archive_set_error(a, EIO, "read failed");
        return -1;
    }
    if (r->copy_fd >= 0 && got && write_all(r->copy_fd, r->readbuf, got)) {
        rd_fail(r, ARCA_EFAIL, xasprintf("cannot write the temporary copy of %s: %s", r->in->where, strerror(errno)));
        r->io_failed = 1;
        archive_set_error(a, EIO, "temporary copy failed");
        return -1;
    }
    *buf = r->readbuf;
    r->st->archive_bytes += got;
    progress_add(got);
    return (la_ssize_t)got;
}

static la_int64_t ar_skip_cb(struct archive *a, void *ud, la_int64_t request)
{
    rd *r = ud;
    (void)a;
    int64_t n = r->in->skip(r->in->ud, request);
    if (n < 0) {
        r->io_failed = 1;
        return 0; /* libarchive then reads instead, and the read reports the error */
    }
    r->st->archive_bytes += (uint64_t)n;
    return n;
}

/* ---- file descriptors as streams --------------------------------------------------- */

static int fd_read(void *ud, void *buf, size_t cap, size_t *got)
{
    fd_stream *f = ud;
    for (;;) {
        ssize_t n = read(f->fd, buf, cap);
        if (n < 0 && errno == EINTR && !g_interrupted)
            continue;
        if (n < 0) {
            f->err = errno;
            return errno == EINTR ? ARCA_ECANCELED : ARCA_EFAIL;
        }
        *got = (size_t)n;
        return ARCA_OK;
    }
}

static char *fd_error(void *ud)
{
    fd_stream *f = ud;
    return xstrdup(f->err == EINTR ? "interrupted" : strerror(f->err));
}

static int64_t fd_skip(void *ud, int64_t n)
{
    fd_stream *f = ud;
    if (lseek(f->fd, n, SEEK_CUR) < 0) {
        f->err = errno;
        return -1;
    }
    return n;
}

void fd_stream_init(rd_stream *in, fd_stream *fs, int fd, const char *where, int seekable)
{
    fs->fd = fd;
    fs->err = 0;
    *in = (rd_stream){fd_read, fs, where, fd_error, seekable ? fd_skip : NULL};
}

/* A libarchive failure is an I/O error if our stream failed, else a malformed archive. */
static int ar_problem(rd *r, const char *ctx)
{
    if (r->io_failed) {
        if (g_interrupted)
            return rd_fail(r, ARCA_ECANCELED, xstrdup("interrupted"));
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
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is truncated (%zu of %zu bytes)", r->in->where,
                                                         name, done, len));
        done += (size_t)n;
    }
    return 0;
}

/* The rest of a member (MANIFEST.json) through `out`. */
static int read_through(rd *r, const char *name, uint64_t size, int (*out)(void *, const void *, size_t), void *ud)
{
    uint64_t left = size;
    while (left) {
        size_t want = left < READBUF_SIZE ? (size_t)left : READBUF_SIZE;
        int rc = read_exact(r, r->stored, want, name);
        if (rc)
            return rc;
        if (out(ud, r->stored, want))
            return rd_fail(r, ARCA_EFAIL, xasprintf("cannot keep %s from %s: %s", name, r->in->where, strerror(errno)));
        left -= want;
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

/* Next tar member: 1 with its name and size, 0 at the end, <0 on failure. Only
 * regular files are members of an arca archive. */
static int next_member(rd *r, const char **name, uint64_t *size)
{
    struct archive_entry *e;
    int ar = archive_read_next_header(r->ar, &e);
    if (ar == ARCHIVE_EOF)
        return 0;
    if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
        return ar_problem(r, r->nmembers ? "after the last good member" : "at the start");
    const char *n = archive_entry_pathname_utf8(e);
    if (!n)
        n = archive_entry_pathname(e);
    if (!n)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member %d has no readable name", r->in->where, r->nmembers + 1));
    r->nmembers++;
    char *shown = text_printable(n);
    int rc = 0;
    if (r->saw_manifest)
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' follows MANIFEST.json: refused", r->in->where, shown));
    else if (archive_entry_hardlink(e) || archive_entry_filetype(e) != AE_IFREG)
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is %s: refused", r->in->where, shown, type_name(e)));
    else if (archive_entry_size(e) < 0)
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' has no size", r->in->where, shown));
    else if (r->nmembers == 1 && strcmp(n, ARCA_HEADER_MEMBER))
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: not an arca archive: first member is '%s', not %s", r->in->where,
                                                   shown, ARCA_HEADER_MEMBER));
    free(shown);
    if (rc)
        return rc;
    *name = n;
    *size = (uint64_t)archive_entry_size(e);
    return 1;
}

/* arca.json: at most ARCA_MAX_HEADER bytes of JSON. *out: the parsed object. */
static int read_header(rd *r, uint64_t size, json_t **out)
{
    if (size > ARCA_MAX_HEADER)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s is too large", r->in->where, ARCA_HEADER_MEMBER));
    char *txt = xmalloc((size_t)size + 1);
    int rc = read_exact(r, txt, (size_t)size, ARCA_HEADER_MEMBER);
    *out = rc ? NULL : json_loadb(txt, (size_t)size, 0, NULL);
    free(txt);
    if (rc)
        return rc;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s is not a JSON object", r->in->where, ARCA_HEADER_MEMBER));
    }
    return 0;
}

/* Reads a payload member's data, compares its SHA-256 with `want_sha` (the
 * manifest's, hex; NULL when not known yet), checks it as one zstd frame with
 * content size and checksum and decompresses it into r->raw. want_raw: the
 * manifest's raw size, or UINT64_MAX. *sha receives SHA-256 of the stored bytes. */
static int read_chunk(rd *r, const char *name, uint64_t stored, const char *want_sha, uint64_t want_raw,
                      unsigned char sha[32], size_t *rawlen)
{
    char *shown = text_printable(name);
    int rc = 0;
    if (stored > r->stored_cap) {
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is larger than any chunk can compress to", r->in->where, shown));
        goto out;
    }
    if ((rc = read_exact(r, r->stored, (size_t)stored, shown)))
        goto out;
    unsigned int hl = 0;
    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
    EVP_DigestUpdate(r->md, r->stored, (size_t)stored);
    EVP_DigestFinal_ex(r->md, sha, &hl);
    char hex[65];
    hex_encode(sha, 32, hex);
    if (want_sha && strcmp(hex, want_sha)) {
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': checksum mismatch (sha256 %s, manifest %s)",
                                                   r->in->where, shown, hex, want_sha));
        goto out;
    }
    ZSTD_frameHeader fh;
    if (ZSTD_getFrameHeader(&fh, r->stored, (size_t)stored) != 0 || fh.frameType != ZSTD_frame || !fh.checksumFlag ||
        ZSTD_findFrameCompressedSize(r->stored, (size_t)stored) != stored) {
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is not exactly one zstd frame with a content checksum",
                                                   r->in->where, shown));
        goto out;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(r->stored, (size_t)stored);
    if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR || fcs > r->chunk_size ||
        (want_raw != UINT64_MAX && fcs != want_raw)) {
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': zstd frame content size disagrees with the manifest",
                                                   r->in->where, shown));
        goto out;
    }
    size_t n = ZSTD_decompressDCtx(r->dctx, r->raw, r->chunk_size, r->stored, (size_t)stored);
    if (ZSTD_isError(n) || n != fcs) {
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': zstd frame is corrupt: %s", r->in->where, shown,
                                                   ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
        goto out;
    }
    *rawlen = n;
    r->st->members++;
    r->st->raw_bytes += n;
    r->st->stored_bytes += stored;
out:
    free(shown);
    return rc;
}

/* ---- reading against a known manifest -------------------------------------------- */

static int sha_out(void *ud, const void *p, size_t n)
{
    EVP_DigestUpdate(ud, p, n);
    return 0;
}

static int fd_out(void *ud, const void *p, size_t n)
{
    return write_all(*(int *)ud, p, n);
}

/* The archive's own MANIFEST.json must be the manifest we read against. */
static int check_own_manifest(rd *r, uint64_t size)
{
    unsigned char got[32];
    int rc;
    if (mf_version(r->m) >= 2) {
        /* version 2: the catalogue copy is byte-identical */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        rc = read_through(r, ARCA_MANIFEST_MEMBER, size, sha_out, md);
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md, got, &hl);
        EVP_MD_CTX_free(md);
    } else {
        /* version 1: its catalogue differs in layout; compare the content */
        char *e = NULL;
        int fd = tmp_open(NULL, &e);
        if (fd < 0)
            return rd_fail(r, ARCA_EFAIL, e);
        rc = read_through(r, ARCA_MANIFEST_MEMBER, size, fd_out, &fd);
        manifest *own = rc ? NULL : mf_open(fd, 0, size, r->in->where, &rc, &e);
        if (!rc && !own)
            rc = rd_fail(r, rc ? rc : ARCA_EINTEGRITY, e);
        if (own)
            memcpy(got, mf_digest(own), 32);
        mf_close(own);
        close(fd);
    }
    if (rc)
        return rc;
    if (memcmp(got, mf_digest(r->m), 32))
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: the archive's MANIFEST.json differs from the catalogue manifest",
                                                     r->in->where));
    r->saw_manifest = 1;
    return 0;
}

static int check_arca_json(rd *r, uint64_t size)
{
    json_t *h = NULL;
    int rc = read_header(r, size, &h);
    if (rc)
        return rc;
    int same = json_equal(h, mf_header(r->m));
    json_decref(h);
    if (!same)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s does not match the manifest's header (another backup's archive?)",
                                                     r->in->where, ARCA_HEADER_MEMBER));
    return 0;
}

/* Next verified data chunk: 1 (r->mm describes it, r->raw holds its bytes), 0 at
 * the end of a complete archive, <0 on failure. */
static int rd_next_chunk(rd *r, size_t *rawlen)
{
    const char *name;
    uint64_t size;
    int k;
    while ((k = next_member(r, &name, &size)) == 1) {
        if (r->nmembers == 1) {
            if ((k = check_arca_json(r, size)))
                return k;
            continue;
        }
        if (!strcmp(name, ARCA_MANIFEST_MEMBER)) {
            if ((k = check_own_manifest(r, size)))
                return k;
            continue;
        }
        char *shown = text_printable(name);
        int more = mf_next_member(r->members, &r->mm);
        k = 0;
        if (more < 0)
            k = rd_fail(r, ARCA_EFAIL, xstrdup(mf_cursor_error(r->members)));
        else if (more == 0)
            k = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' comes after the manifest's last member: "
                                                      "unlisted or duplicated: refused", r->in->where, shown));
        else if (strcmp(name, r->mm.member))
            k = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is not the member the manifest lists next ('%s'): "
                                                      "unlisted, duplicated or out of order: refused",
                                                      r->in->where, shown, r->mm.member));
        else if (size != r->mm.stored)
            k = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is %" PRIu64 " bytes, the manifest says %" PRIu64,
                                                      r->in->where, shown, size, r->mm.stored));
        else if ((uint64_t)archive_filter_bytes(r->ar, 0) != r->mm.offset)
            k = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' starts at byte %" PRIu64 ", the manifest says %" PRIu64,
                                                      r->in->where, shown, (uint64_t)archive_filter_bytes(r->ar, 0), r->mm.offset));
        free(shown);
        if (k)
            return k;
        unsigned char sha[32];
        if ((k = read_chunk(r, name, size, r->mm.sha, r->mm.raw, sha, rawlen)))
            return k;
        return 1;
    }
    if (k < 0)
        return k;
    if (!r->saw_manifest)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: archive ends before its MANIFEST.json: truncated", r->in->where));
    r->at_end = 1;
    return 0;
}

/* After the stream: the manifest listed nothing the archive lacked. */
static int rd_check_complete(rd *r)
{
    mf_mem extra = {0};
    int more = mf_next_member(r->members, &extra);
    int rc = 0;
    if (more < 0)
        rc = rd_fail(r, ARCA_EFAIL, xstrdup(mf_cursor_error(r->members)));
    else if (more)
        rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' listed in the manifest is missing", r->in->where,
                                                   extra.member));
    mf_mem_clear(&extra);
    return rc;
}

/* ---- the restore feed -------------------------------------------------------------- */

static void drop_given(rd *r)
{
    for (size_t i = 0; i < r->ngiven; i++)
        free(r->given[i]);
    r->ngiven = 0;
}

static const char *give(rd *r, char *s)
{
    if (!s)
        return NULL;
    if (r->ngiven == sizeof r->given / sizeof *r->given) {
        free(r->given[0]);
        memmove(r->given, r->given + 1, (r->ngiven - 1) * sizeof *r->given);
        r->ngiven--;
    }
    r->given[r->ngiven++] = s;
    return s;
}

/* The decoded record of object `ord`, from a small LRU cache. */
static mf_obj *obj_get(rd *r, uint32_t ord)
{
    cslot *victim = &r->cache[0];
    for (size_t i = 0; i < OBJ_CACHE; i++) {
        cslot *c = &r->cache[i];
        if (c->used && c->o.ord == ord) {
            c->tick = ++r->tick;
            return &c->o;
        }
        if (!c->used || (victim->used && c->tick < victim->tick))
            victim = c;
    }
    mf_obj_clear(&victim->o);
    char *e = NULL;
    if (mf_object_at(r->m, ord, &victim->o, &e)) {
        victim->used = 0;
        rd_fail(r, ARCA_EFAIL, e);
        return NULL;
    }
    victim->used = 1;
    victim->tick = ++r->tick;
    return &victim->o;
}

int engine_feed_next(arca_feed *f, arca_entry *e)
{
    rd *r = (rd *)f;
    memset(e, 0, sizeof *e);
    drop_given(r);
    if (r->err)
        return r->errcode;
    if (g_interrupted)
        return rd_fail(r, ARCA_ECANCELED, xstrdup("interrupted"));
    /* directories and symlinks first, straight from the manifest */
    while (r->dirs && r->next_dir < mf_nobjects(r->m)) {
        uint32_t ord = r->next_dir++;
        if (mf_object_kind(r->m, ord) == ARCA_OBJ_DATA)
            continue; /* known from the index: its record is not even read */
        char *e2 = NULL;
        mf_obj_clear(&r->dirobj);
        if (mf_object_at(r->m, ord, &r->dirobj, &e2))
            return rd_fail(r, ARCA_EFAIL, e2);
        r->cur = &r->dirobj;
        e->info = r->dirobj.info;
        r->st->objects++;
        return 1;
    }
    if (r->at_end)
        return 0;
    size_t len = 0;
    int rc = rd_next_chunk(r, &len);
    if (rc <= 0)
        return rc;
    mf_obj *ob = obj_get(r, r->mm.obj);
    if (!ob)
        return r->errcode;
    r->cur = ob;
    if (r->mm.chunk == 0)
        r->st->objects++;
    e->info = ob->info;
    e->object_size = ob->size;
    e->chunk = r->mm.chunk;
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
    if (json_is_integer(v))
        return give(r, xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
    return give(r, jbytes_get(v));
}

const char *engine_feed_info(arca_feed *f, const char *key)
{
    rd *r = (rd *)f;
    json_t *info = json_object_get(json_object_get(mf_header(r->m), "source"), "info");
    return give(r, jbytes_get(json_object_get(info, key)));
}

/* ---- driving a read ----------------------------------------------------------- */

static int rd_open(rd *r)
{
    if (r->in->skip && r->copy_fd < 0)
        archive_read_set_skip_callback(r->ar, ar_skip_cb);
    if (archive_read_open2(r->ar, r, NULL, ar_read_cb, NULL, NULL) != ARCHIVE_OK)
        return ar_problem(r, "opening");
    return 0;
}

static void rd_init(rd *r, rd_stream *in, uint64_t chunk_size, read_stats *st)
{
    memset(r, 0, sizeof *r);
    memset(st, 0, sizeof *st);
    r->in = in;
    r->st = st;
    r->copy_fd = -1;
    r->chunk_size = chunk_size;
    r->readbuf = xmalloc(READBUF_SIZE);
    r->stored_cap = ZSTD_compressBound(chunk_size);
    r->stored = xmalloc(r->stored_cap > READBUF_SIZE ? r->stored_cap : READBUF_SIZE);
    r->raw = xmalloc(chunk_size);
    r->dctx = ZSTD_createDCtx();
    r->md = EVP_MD_CTX_new();
    r->ar = archive_read_new();
    archive_read_support_format_tar(r->ar);
    g_op_failed = 0;
}

static int rd_done(rd *r, char **err)
{
    int rc = ARCA_OK;
    if (r->err) {
        rc = r->errcode;
        *err = r->err;
        r->err = NULL;
    }
    drop_given(r);
    for (size_t i = 0; i < OBJ_CACHE; i++)
        mf_obj_clear(&r->cache[i].o);
    mf_obj_clear(&r->dirobj);
    mf_mem_clear(&r->mm);
    mf_cursor_free(r->members);
    archive_read_free(r->ar);
    ZSTD_freeDCtx(r->dctx);
    EVP_MD_CTX_free(r->md);
    free(r->readbuf);
    free(r->stored);
    free(r->raw);
    return rc;
}

/* Reads what is left, checking every member (a source that stopped early). */
static void rd_drain(rd *r)
{
    size_t len = 0;
    while (!r->err && !r->at_end && rd_next_chunk(r, &len) > 0 && !g_interrupted)
        ;
    if (g_interrupted && !r->err)
        rd_fail(r, ARCA_ECANCELED, xstrdup("interrupted"));
    if (!r->err)
        rd_check_complete(r);
}

int engine_read(rd_stream *in, manifest *m, inst *target, const void *ropts, read_stats *st, char **err)
{
    rd r;
    rd_init(&r, in, mf_chunk_size(m), st);
    r.m = m;
    r.members = mf_members(m);
    rd_open(&r);
    progress_start(target ? "restore" : "verify");
    if (!r.err && target) {
        r.dirs = 1;
        int rc = target->plug->desc->source->restore(target->state, (arca_feed *)&r, ropts);
        if (rc != ARCA_OK && !r.err)
            rd_fail(&r, rc, inst_take_error(target, rc, "restore failed"));
        else if (rc != ARCA_OK) {
            char *m2 = inst_take_error(target, rc, "restore failed");
            log_msg(ARCA_LOG_INFO, "%s", m2);
            free(m2);
        }
    }
    rd_drain(&r);
    progress_end();
    if (!r.err)
        st->objects = mf_nobjects(m);
    return rd_done(&r, err);
}

/* ---- one pass, manifest last (a pipe) -------------------------------------------- */

/* What one payload member was, recorded until the manifest arrives. */
typedef struct seen {
    uint64_t offset, stored, raw;
    unsigned char sha[32];
    uint32_t namelen;
} seen;

static int seen_put(FILE *f, const seen *s, const char *name)
{
    return fwrite(s, sizeof *s, 1, f) != 1 || fwrite(name, 1, s->namelen, f) != s->namelen;
}

static int seen_get(FILE *f, seen *s, char **name)
{
    if (fread(s, sizeof *s, 1, f) != 1 || s->namelen > ARCA_MAX_NAME * 3 + 64)
        return -1;
    *name = xmalloc(s->namelen + 1);
    if (fread(*name, 1, s->namelen, f) != s->namelen) {
        free(*name);
        return -1;
    }
    (*name)[s->namelen] = 0;
    return 0;
}

/* Compares what was seen with the manifest, member by member. */
static int blind_compare(rd *r, FILE *seenf, uint64_t nseen)
{
    r->members = mf_members(r->m);
    rewind(seenf);
    for (uint64_t i = 0; i < nseen; i++) {
        seen s;
        char *name = NULL, hex[65];
        if (seen_get(seenf, &s, &name))
            return rd_fail(r, ARCA_EFAIL, xasprintf("%s: cannot read back the temporary member list", r->in->where));
        int more = mf_next_member(r->members, &r->mm);
        char *shown = text_printable(name);
        hex_encode(s.sha, 32, hex);
        int rc = 0;
        if (more <= 0)
            rc = rd_fail(r, more < 0 ? ARCA_EFAIL : ARCA_EINTEGRITY,
                         more < 0 ? xstrdup(mf_cursor_error(r->members))
                                  : xasprintf("%s: member '%s' comes after the manifest's last member: "
                                              "unlisted or duplicated: refused", r->in->where, shown));
        else if (strcmp(name, r->mm.member))
            rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' is not the member the manifest lists next ('%s'): "
                                                       "unlisted, duplicated or out of order: refused",
                                                       r->in->where, shown, r->mm.member));
        else if (s.stored != r->mm.stored || s.raw != r->mm.raw || s.offset != r->mm.offset)
            rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s' disagrees with the manifest on its size or offset",
                                                       r->in->where, shown));
        else if (strcmp(hex, r->mm.sha))
            rc = rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member '%s': checksum mismatch (sha256 %s, manifest %s)",
                                                       r->in->where, shown, hex, r->mm.sha));
        free(shown);
        free(name);
        if (rc)
            return rc;
    }
    return rd_check_complete(r);
}

/* The payload of a blind read: members recorded, MANIFEST.json kept in *mfd. */
static int blind_members(rd *r, FILE *seenf, uint64_t *nseen, int *mfd, uint64_t *mlen, json_t **hdr)
{
    const char *name;
    uint64_t size;
    int k;
    while ((k = next_member(r, &name, &size)) == 1) {
        if (r->nmembers == 1) {
            uint64_t cs = 0;
            if ((k = read_header(r, size, hdr)))
                return k;
            json_t *c = json_object_get(*hdr, "chunk_size");
            cs = json_is_integer(c) && json_integer_value(c) > 0 ? (uint64_t)json_integer_value(c) : 0;
            if (cs < ARCA_MIN_CHUNK || cs > ARCA_MAX_CHUNK)
                return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: %s has no chunk_size from %u to %u", r->in->where,
                                                             ARCA_HEADER_MEMBER, ARCA_MIN_CHUNK, ARCA_MAX_CHUNK));
            r->chunk_size = cs;
            r->stored_cap = ZSTD_compressBound(cs);
            r->stored = xrealloc(r->stored, r->stored_cap > READBUF_SIZE ? r->stored_cap : READBUF_SIZE);
            r->raw = xrealloc(r->raw, cs);
            continue;
        }
        if (!strcmp(name, ARCA_MANIFEST_MEMBER)) {
            char *e = NULL;
            if ((*mfd = tmp_open(NULL, &e)) < 0)
                return rd_fail(r, ARCA_EFAIL, e);
            if ((k = read_through(r, ARCA_MANIFEST_MEMBER, size, fd_out, mfd)))
                return k;
            *mlen = size;
            r->saw_manifest = 1;
            continue;
        }
        seen s = {.offset = (uint64_t)archive_filter_bytes(r->ar, 0), .stored = size, .namelen = (uint32_t)strlen(name)};
        size_t raw;
        if (s.namelen > ARCA_MAX_NAME * 3 + 64)
            return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: member %d has an impossibly long name", r->in->where, r->nmembers));
        if ((k = read_chunk(r, name, size, NULL, UINT64_MAX, s.sha, &raw)))
            return k;
        s.raw = raw;
        if (seen_put(seenf, &s, name))
            return rd_fail(r, ARCA_EFAIL, xasprintf("cannot write the temporary member list: %s", strerror(errno)));
        (*nseen)++;
    }
    if (k < 0)
        return k;
    if (!r->saw_manifest)
        return rd_fail(r, ARCA_EINTEGRITY, xasprintf("%s: archive ends before its MANIFEST.json: truncated", r->in->where));
    return 0;
}

int engine_read_blind(rd_stream *in, int copy_fd, read_stats *st, char **err)
{
    rd r;
    rd_init(&r, in, ARCA_MIN_CHUNK, st);
    r.copy_fd = copy_fd;
    char *e = NULL;
    int sfd = tmp_open(NULL, &e), mfd = -1;
    FILE *seenf = sfd >= 0 ? fdopen(sfd, "w+") : NULL;
    uint64_t nseen = 0, mlen = 0;
    json_t *hdr = NULL;
    if (!seenf)
        rd_fail(&r, ARCA_EFAIL, e ? e : xasprintf("cannot open a temporary file: %s", strerror(errno)));
    else
        rd_open(&r);
    progress_start("verify");
    if (!r.err)
        blind_members(&r, seenf, &nseen, &mfd, &mlen, &hdr);
    progress_end();
    if (!r.err && fflush(seenf))
        rd_fail(&r, ARCA_EFAIL, xasprintf("cannot write the temporary member list: %s", strerror(errno)));
    int code = 0;
    if (!r.err && !(r.m = mf_open(mfd, 0, mlen, in->where, &code, &e)))
        rd_fail(&r, code, e);
    if (!r.err && !json_equal(hdr, mf_header(r.m)))
        rd_fail(&r, ARCA_EINTEGRITY, xasprintf("%s: %s does not match the manifest's header", in->where, ARCA_HEADER_MEMBER));
    if (!r.err)
        blind_compare(&r, seenf, nseen);
    if (!r.err)
        st->objects = mf_nobjects(r.m);
    manifest *m = r.m;
    int rc = rd_done(&r, err);
    mf_close(m);
    json_decref(hdr);
    if (seenf)
        fclose(seenf);
    else if (sfd >= 0)
        close(sfd);
    if (mfd >= 0)
        close(mfd);
    return rc;
}

/* ---- locating the header and the manifest in a file ------------------------------- */

/* The same member checks as every read, skipping the payload by seeking. */
int engine_locate(int fd, const char *where, json_t **header, uint64_t *moff, uint64_t *mlen, char **err)
{
    fd_stream fs;
    rd_stream in;
    read_stats st;
    rd r;
    fd_stream_init(&in, &fs, fd, where, 1);
    rd_init(&r, &in, ARCA_MIN_CHUNK, &st);
    *header = NULL;
    int found = 0;
    if (lseek(fd, 0, SEEK_SET) < 0)
        rd_fail(&r, ARCA_EFAIL, xasprintf("%s: %s", where, strerror(errno)));
    else
        rd_open(&r);
    const char *name;
    uint64_t size;
    int k = 0;
    while (!r.err && (k = next_member(&r, &name, &size)) == 1) {
        if (r.nmembers == 1)
            read_header(&r, size, header);
        else if (!strcmp(name, ARCA_MANIFEST_MEMBER)) {
            /* bytes consumed so far is where its data starts */
            *moff = (uint64_t)archive_filter_bytes(r.ar, 0);
            *mlen = size;
            r.saw_manifest = found = 1;
        }
    }
    if (!r.err && !found)
        rd_fail(&r, ARCA_EINTEGRITY, xasprintf("%s: archive has no MANIFEST.json: truncated or unfinished backup", where));
    int rc = rd_done(&r, err);
    if (rc != ARCA_OK) {
        json_decref(*header);
        *header = NULL;
    }
    return rc;
}
