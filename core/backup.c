/* Backup engine: sources write objects into a sink from any number of threads;
 * the core cuts them into chunks, a worker pool compresses (one zstd frame each)
 * and hashes them, and one writer thread puts them into a pax tar in submission
 * order, fanned out to every destination. Object and member records go to the
 * manifest writer's temporary files, so memory does not grow with the number
 * of objects: it is the chunk buffers (see docs/INTERNALS.md for the formula)
 * plus a 34-byte name key per object for refusing duplicates. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "catalog.h"
#include "dest.h"
#include "engine.h"
#include "hash.h"
#include "names.h"

#define OUTBUF_SIZE (1u << 20) /* coalesce tar output into 1 MiB writes */

/* One object while a source writes it and until its last chunk is in the tar. */
typedef struct bobj {
    arca_object_info info; /* name and link_target point into the strings below */
    char *name, *target;
    uint64_t size;
    uint32_t nchunks;
    json_t *meta;
    int refs; /* the source until object_end, plus each chunk not yet written */
} bobj;

typedef struct job {
    struct job *next;
    uint64_t seq;
    bobj *obj;
    uint32_t chunk;
    unsigned char *raw, *out;
    size_t raw_len, out_len, out_cap;
    unsigned char sha[32];
} job;

typedef struct bk {
    pipeline *p;
    int64_t created;
    char id[64];
    const char *ns;
    char *arname, *mfname;

    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done, cv_space;
    job *work_head, *work_tail; /* submitted, waiting for a worker */
    job *done;                  /* compressed, waiting for the writer (unordered) */
    job *free_jobs;             /* buffers to reuse */
    size_t nfree;
    uint64_t next_assign, next_write;
    size_t inflight, max_inflight;
    int failed, source_done, shutdown;
    char *err;
    int errcode;

    nmap names;          /* keys of every object name, to refuse duplicates */
    size_t open_objects; /* begun, not ended */
    struct objctx *open;
    uint64_t nobjs;
    mf_writer *mw;
    json_t *info;
    int info_frozen;

    /* writer state (writer thread only, until joined) */
    struct archive *ar;
    uint64_t ar_off; /* bytes of tar produced so far */
    unsigned char *outbuf;
    size_t outlen;
    int discard; /* after a failure: tar output (e.g. the trailer at free) goes nowhere */
    dest_put **puts; /* one open put per destination */
    uint64_t nmem, raw, stored;
    json_t *header;
    int header_written;

    pthread_t *workers, writer;
    int nworkers, writer_started;
    size_t committed, mcommitted; /* archives and catalogues made visible */
    double t0;
} bk;

typedef struct objctx {
    bk *b;
    bobj *obj;
    job *cur;
    struct objctx *prev, *next; /* in b->open, so a failed source's objects are freed */
} objctx;

/* ---- failure ------------------------------------------------------------- */

/* Record the first failure and wake everyone. Takes ownership of msg. */
static void bk_fail(bk *b, int code, char *msg)
{
    pthread_mutex_lock(&b->mu);
    if (!b->failed) {
        b->failed = 1;
        b->errcode = code;
        b->err = msg;
        msg = NULL;
        g_op_failed = 1;
    }
    pthread_cond_broadcast(&b->cv_work);
    pthread_cond_broadcast(&b->cv_done);
    pthread_cond_broadcast(&b->cv_space);
    pthread_mutex_unlock(&b->mu);
    free(msg);
}

static int bk_failed(bk *b)
{
    pthread_mutex_lock(&b->mu);
    int f = b->failed;
    pthread_mutex_unlock(&b->mu);
    return f || g_interrupted;
}

/* Source-facing failures: the source's own host gets the message too, so the
 * source sees why its call failed. */
static int src_error(bk *b, int code, const char *fmt, ...) ARCA_PRINTF(3, 4);
static int src_error(bk *b, int code, const char *fmt, ...)
{
    va_list ap;
    char *m;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    inst *s = b->p->source;
    s->host.error(&s->host, code, "%s", m);
    free(m);
    return code;
}

/* ---- objects and job buffers --------------------------------------------------- */

static void bobj_unref_locked(bobj *o)
{
    if (--o->refs > 0)
        return;
    free(o->name);
    free(o->target);
    json_decref(o->meta);
    free(o);
}

static job *job_get(bk *b)
{
    pthread_mutex_lock(&b->mu);
    job *j = b->free_jobs;
    if (j) {
        b->free_jobs = j->next;
        b->nfree--;
    }
    pthread_mutex_unlock(&b->mu);
    if (!j) {
        j = xcalloc(1, sizeof *j);
        j->raw = xmalloc(b->p->chunk_size);
        j->out_cap = ZSTD_compressBound(b->p->chunk_size);
        j->out = xmalloc(j->out_cap);
    }
    j->next = NULL;
    j->raw_len = j->out_len = 0;
    j->obj = NULL;
    return j;
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->raw);
    free(j->out);
    free(j);
}

/* Caller holds b->mu. Keeps a few buffers for reuse, frees the rest, and lets
 * go of the job's object. */
static void job_put_locked(bk *b, job *j)
{
    if (j->obj)
        bobj_unref_locked(j->obj);
    j->obj = NULL;
    if (b->nfree < b->max_inflight + 2) {
        j->next = b->free_jobs;
        b->free_jobs = j;
        b->nfree++;
    } else {
        job_free(j);
    }
}

static void job_put(bk *b, job *j)
{
    pthread_mutex_lock(&b->mu);
    job_put_locked(b, j);
    pthread_mutex_unlock(&b->mu);
}

/* Hand a filled chunk to the workers; blocks while too many are in flight. */
static int job_submit(bk *b, job *j)
{
    pthread_mutex_lock(&b->mu);
    j->obj->refs++;
    while (!b->failed && !g_interrupted && b->inflight >= b->max_inflight)
        pthread_cond_wait(&b->cv_space, &b->mu);
    if (b->failed || g_interrupted) {
        job_put_locked(b, j);
        pthread_mutex_unlock(&b->mu);
        return ARCA_ECANCELED;
    }
    j->seq = b->next_assign++;
    b->inflight++;
    if (b->work_tail)
        b->work_tail->next = j;
    else
        b->work_head = j;
    b->work_tail = j;
    j->next = NULL;
    pthread_cond_signal(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    return ARCA_OK;
}

/* ---- workers: compress + hash ------------------------------------------------ */

static job *worker_take(bk *b)
{
    pthread_mutex_lock(&b->mu);
    while (!b->work_head && !b->shutdown && !b->failed)
        pthread_cond_wait(&b->cv_work, &b->mu);
    job *j = NULL;
    if (!b->failed && b->work_head) {
        j = b->work_head;
        b->work_head = j->next;
        if (!b->work_head)
            b->work_tail = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    return j;
}

static void *worker_main(void *arg)
{
    bk *b = arg;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!cc || !md) {
        bk_fail(b, ARCA_ENOMEM, xstrdup("cannot create a compression context"));
        ZSTD_freeCCtx(cc);
        EVP_MD_CTX_free(md);
        return NULL;
    }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, b->p->level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    job *j;
    while ((j = worker_take(b))) {
        size_t n = ZSTD_compress2(cc, j->out, j->out_cap, j->raw, j->raw_len);
        if (ZSTD_isError(n)) {
            char *shown = text_printable(j->obj->name);
            bk_fail(b, ARCA_EFAIL, xasprintf("zstd compression of '%s' failed: %s", shown, ZSTD_getErrorName(n)));
            free(shown);
            job_put(b, j);
            break;
        }
        j->out_len = n;
        unsigned int hl = 0;
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, j->out, n);
        EVP_DigestFinal_ex(md, j->sha, &hl);

        pthread_mutex_lock(&b->mu);
        j->next = b->done;
        b->done = j;
        pthread_cond_broadcast(&b->cv_done);
        pthread_mutex_unlock(&b->mu);
    }
    ZSTD_freeCCtx(cc);
    EVP_MD_CTX_free(md);
    return NULL;
}

/* ---- tar output, fanned out to every destination ------------------------------ */

static int flush_out(bk *b)
{
    if (!b->outlen)
        return 0;
    for (size_t i = 0; i < b->p->ndests; i++) {
        char *e = NULL;
        int rc = dest_put_write(b->puts[i], b->outbuf, b->outlen, &e);
        if (rc != ARCA_OK) {
            bk_fail(b, rc, e);
            return -1;
        }
    }
    progress_add(b->outlen);
    b->outlen = 0;
    return 0;
}

static la_ssize_t ar_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    bk *b = ud;
    if (b->discard)
        return (la_ssize_t)len;
    const unsigned char *p = buf;
    size_t left = len;
    while (left) {
        size_t n = OUTBUF_SIZE - b->outlen < left ? OUTBUF_SIZE - b->outlen : left;
        memcpy(b->outbuf + b->outlen, p, n);
        b->outlen += n;
        p += n;
        left -= n;
        if (b->outlen == OUTBUF_SIZE && flush_out(b)) {
            archive_set_error(a, EIO, "destination write failed");
            return -1;
        }
    }
    b->ar_off += len;
    return (la_ssize_t)len;
}

static int ar_fail(bk *b, const char *name)
{
    if (!bk_failed(b)) {
        char *shown = text_printable(name);
        bk_fail(b, ARCA_EFAIL, xasprintf("writing archive member '%s': %s", shown, archive_error_string(b->ar)));
        free(shown);
    }
    return -1;
}

/* Start one tar member of `len` bytes; *data_off receives where its bytes start. */
static int ar_begin(bk *b, const char *name, uint64_t len, uint64_t *data_off)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname_utf8(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, b->created, 0);
    int rc = archive_write_header(b->ar, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
        return ar_fail(b, name);
    if (data_off)
        *data_off = b->ar_off;
    return 0;
}

static int ar_member(bk *b, const char *name, const void *data, size_t len, uint64_t *data_off)
{
    if (ar_begin(b, name, len, data_off))
        return -1;
    if (len && archive_write_data(b->ar, data, len) != (la_ssize_t)len)
        return ar_fail(b, name);
    return 0;
}

static json_t *make_header(bk *b)
{
    char ts[32], comp[32];
    iso_time(b->created, ts, sizeof ts);
    snprintf(comp, sizeof comp, "zstd:%d", b->p->level);
    inst *s = b->p->source;
    json_t *mode = json_object_get(b->info, "mode");
    json_t *src = json_pack("{s:s,s:s,s:s,s:s}", "name", s->name, "plugin", s->plug->desc->name, "plugin_version",
                            s->plug->desc->version, "namespace", b->ns);
    json_object_set_new(src, "mode", json_is_string(mode) ? json_incref(mode) : json_string("full"));
    json_object_set(src, "info", b->info);
    return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:o,s:s,s:I,s:s}", "format", ARCA_FORMAT_NAME, "format_version",
                     ARCA_FORMAT_VERSION, "backup_id", b->id, "created", ts, "arca_version", ARCA_VERSION, "pipeline",
                     b->p->name, "source", src, "compression", comp, "chunk_size", (json_int_t)b->p->chunk_size,
                     "hash", "sha256");
}

static int write_header(bk *b)
{
    pthread_mutex_lock(&b->mu);
    b->info_frozen = 1;
    b->header = make_header(b);
    pthread_mutex_unlock(&b->mu);
    char *txt = json_dumps(b->header, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    int rc = ar_member(b, ARCA_HEADER_MEMBER, txt, strlen(txt), NULL);
    free(txt);
    b->header_written = 1;
    return rc;
}

static job *take_next_done(bk *b)
{
    for (job **pp = &b->done; *pp; pp = &(*pp)->next)
        if ((*pp)->seq == b->next_write) {
            job *j = *pp;
            *pp = j->next;
            return j;
        }
    return NULL;
}

/* One compressed chunk into the tar, its member record into the manifest. */
static void write_chunk(bk *b, job *j)
{
    uint64_t off = 0;
    char *name = member_name(ARCA_FORMAT_VERSION, b->ns, j->obj->name, j->chunk), *e = NULL;
    if (ar_member(b, name, j->out, j->out_len, &off) == 0) {
        if (mfw_member(b->mw, b->ns, j->obj->name, j->chunk, j->raw_len, j->out_len, off, j->sha, &e))
            bk_fail(b, ARCA_EFAIL, e);
        b->nmem++;
        b->raw += j->raw_len;
        b->stored += j->out_len;
    }
    free(name);
}

static int emit_to_tar(void *ud, const void *p, size_t n)
{
    bk *b = ud;
    return archive_write_data(b->ar, p, n) == (la_ssize_t)n ? 0 : -1;
}

/* Header (if no data came), manifest last, close. */
static void write_trailer(bk *b)
{
    char *e = NULL;
    if (!b->header_written && write_header(b))
        return;
    if (mfw_finish(b->mw, b->header, &e)) {
        bk_fail(b, ARCA_EFAIL, e);
        return;
    }
    if (ar_begin(b, ARCA_MANIFEST_MEMBER, mfw_size(b->mw), NULL))
        return;
    int rc = mfw_emit(b->mw, emit_to_tar, b, &e);
    if (rc < 0)
        bk_fail(b, ARCA_EFAIL, e);
    else if (rc > 0)
        ar_fail(b, ARCA_MANIFEST_MEMBER);
    else if (archive_write_close(b->ar) != ARCHIVE_OK)
        bk_fail(b, ARCA_EFAIL, xasprintf("closing archive: %s", archive_error_string(b->ar)));
    else
        flush_out(b);
}

static void *writer_main(void *arg)
{
    bk *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        job *j = NULL;
        while (!b->failed && !(j = take_next_done(b)) && !(b->source_done && b->next_write == b->next_assign))
            pthread_cond_wait(&b->cv_done, &b->mu);
        int stop = b->failed || !j;
        pthread_mutex_unlock(&b->mu);
        if (stop) {
            if (j)
                job_put(b, j);
            break;
        }
        if (b->header_written || write_header(b) == 0)
            write_chunk(b, j);
        pthread_mutex_lock(&b->mu);
        job_put_locked(b, j);
        b->inflight--;
        b->next_write++;
        pthread_cond_broadcast(&b->cv_space);
        pthread_mutex_unlock(&b->mu);
    }
    if (!bk_failed(b))
        write_trailer(b);
    return NULL;
}

/* ---- sink entry points (called by sources through the host table) ------------ */

int engine_sink_info(arca_sink *s, const char *key, const char *value)
{
    bk *b = (bk *)s;
    if (!key || !*key || !value)
        return src_error(b, ARCA_EFAIL, "sink_info needs a key and a value");
    pthread_mutex_lock(&b->mu);
    int frozen = b->info_frozen;
    if (!frozen)
        json_object_set_new(b->info, key, jbytes_new(value));
    pthread_mutex_unlock(&b->mu);
    if (frozen)
        return src_error(b, ARCA_EFAIL, "sink_info('%s') after the first object: too late for the archive header", key);
    return ARCA_OK;
}

static int object_check(bk *b, const arca_object_info *info)
{
    if (!info || !info->name)
        return src_error(b, ARCA_EFAIL, "object_begin without a name");
    const char *why = name_problem(info->name);
    if (why) {
        char *shown = text_printable(info->name);
        int rc = src_error(b, ARCA_EFAIL, "object name '%s' cannot be stored: it %s", shown, why);
        free(shown);
        return rc;
    }
    if (info->kind != ARCA_OBJ_DATA && info->kind != ARCA_OBJ_DIR && info->kind != ARCA_OBJ_SYMLINK)
        return src_error(b, ARCA_EFAIL, "object has an unknown kind %d", (int)info->kind);
    if (info->kind == ARCA_OBJ_SYMLINK &&
        (!info->link_target || !*info->link_target || strlen(info->link_target) > ARCA_MAX_NAME))
        return src_error(b, ARCA_EFAIL, "symlink object has no target or one longer than 256 KiB");
    return ARCA_OK;
}

int engine_object_begin(arca_sink *s, const arca_object_info *info, arca_object **out)
{
    bk *b = (bk *)s;
    *out = NULL;
    if (bk_failed(b))
        return ARCA_ECANCELED;
    int rc = object_check(b, info);
    if (rc)
        return rc;
    nkey k = nkey_str(info->name);
    pthread_mutex_lock(&b->mu);
    b->info_frozen = 1;
    int dup = nmap_put(&b->names, k, 0);
    if (!dup) {
        b->open_objects++;
        b->nobjs++;
    }
    pthread_mutex_unlock(&b->mu);
    if (dup) {
        char *shown = text_printable(info->name);
        rc = src_error(b, ARCA_EFAIL, "object '%s' written twice", shown);
        free(shown);
        return rc;
    }
    bobj *o = xcalloc(1, sizeof *o);
    o->name = xstrdup(info->name);
    o->target = info->kind == ARCA_OBJ_SYMLINK ? xstrdup(info->link_target) : NULL;
    o->info = *info;
    o->info.name = o->name;
    o->info.link_target = o->target;
    o->info.mode &= 07777;
    o->refs = 1;
    objctx *c = xcalloc(1, sizeof *c);
    c->b = b;
    c->obj = o;
    pthread_mutex_lock(&b->mu);
    c->next = b->open;
    if (b->open)
        b->open->prev = c;
    b->open = c;
    pthread_mutex_unlock(&b->mu);
    *out = (arca_object *)c;
    return ARCA_OK;
}

static int submit_cur(objctx *c)
{
    job *j = c->cur;
    c->cur = NULL;
    j->obj = c->obj;
    j->chunk = c->obj->nchunks++;
    c->obj->size += j->raw_len;
    return job_submit(c->b, j);
}

int engine_object_write(arca_object *o, const void *buf, size_t len)
{
    objctx *c = (objctx *)o;
    bk *b = c->b;
    if (c->obj->info.kind != ARCA_OBJ_DATA && len)
        return src_error(b, ARCA_EFAIL, "a %s object takes no data", kind_name(c->obj->info.kind));
    const unsigned char *p = buf;
    while (len) {
        if (!c->cur)
            c->cur = job_get(b);
        if (c->cur->raw_len == b->p->chunk_size) {
            /* a full chunk is sent only once more data proves it is not the last */
            int rc = submit_cur(c);
            if (rc)
                return rc;
            continue;
        }
        size_t n = b->p->chunk_size - c->cur->raw_len;
        if (n > len)
            n = len;
        memcpy(c->cur->raw + c->cur->raw_len, p, n);
        c->cur->raw_len += n;
        p += n;
        len -= n;
    }
    return bk_failed(b) ? ARCA_ECANCELED : ARCA_OK;
}

static int meta_set(objctx *c, const char *key, json_t *v)
{
    if (!key || !*key) {
        json_decref(v);
        return src_error(c->b, ARCA_EFAIL, "object_meta needs a key");
    }
    if (!c->obj->meta)
        c->obj->meta = json_object();
    json_object_set_new(c->obj->meta, key, v);
    return ARCA_OK;
}

int engine_object_meta(arca_object *o, const char *key, const char *value)
{
    return meta_set((objctx *)o, key, jbytes_new(value ? value : ""));
}

int engine_object_meta_int(arca_object *o, const char *key, int64_t value)
{
    return meta_set((objctx *)o, key, json_integer((json_int_t)value));
}

int engine_object_end(arca_object *o)
{
    objctx *c = (objctx *)o;
    bk *b = c->b;
    bobj *ob = c->obj;
    int rc = ARCA_OK;
    if (ob->info.kind == ARCA_OBJ_DATA) {
        if (!c->cur)
            c->cur = job_get(b); /* an empty object still has one (empty) frame */
        rc = submit_cur(c);
    } else if (c->cur) {
        job_put(b, c->cur);
    }
    char *e = NULL;
    if (rc == ARCA_OK && mfw_object(b->mw, &ob->info, ob->size, ob->nchunks, ob->meta, &e)) {
        bk_fail(b, ARCA_EFAIL, e);
        rc = ARCA_EFAIL;
    }
    pthread_mutex_lock(&b->mu);
    b->open_objects--;
    bobj_unref_locked(ob);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->open = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&b->mu);
    free(c);
    return rc;
}

/* ---- driving a backup ------------------------------------------------------- */

void backup_new_id(char *buf, size_t n, int64_t when, int ms)
{
    unsigned char r[3] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r[0] = (unsigned char)ts.tv_nsec;
        r[1] = (unsigned char)(ts.tv_nsec >> 8);
        r[2] = (unsigned char)getpid();
    }
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    /* milliseconds keep `latest` right for backups taken in the same second */
    snprintf(buf, n, "%s.%03dZ-%02x%02x%02x", ts, ms, r[0], r[1], r[2]);
}

static void bk_init(bk *b, pipeline *p)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    b->created = (int64_t)now.tv_sec;
    backup_new_id(b->id, sizeof b->id, b->created, (int)(now.tv_nsec / 1000000));
    b->arname = cat_archive_name(p->name, b->id);
    b->mfname = cat_manifest_name(p->name, b->id);
    b->ns = p->source->plug->desc->name;
    b->info = json_object();
    b->max_inflight = (size_t)p->workers * 2 + 2;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv_work, NULL);
    pthread_cond_init(&b->cv_done, NULL);
    pthread_cond_init(&b->cv_space, NULL);
    b->outbuf = xmalloc(OUTBUF_SIZE);
    b->puts = xcalloc(p->ndests, sizeof *b->puts);
    b->workers = xcalloc((size_t)p->workers, sizeof *b->workers);
    g_op_failed = 0;
    b->t0 = now_mono();
}

/* The manifest writer, a put at every destination, the tar writer, the threads. */
static void bk_start(bk *b)
{
    char *e = NULL;
    if (!(b->mw = mfw_new(NULL, &e))) {
        bk_fail(b, ARCA_EFAIL, e);
        return;
    }
    for (size_t i = 0; i < b->p->ndests; i++) {
        int rc = dest_put_open(b->p->dests[i], b->arname, &b->puts[i], &e);
        if (rc != ARCA_OK) {
            bk_fail(b, rc, e);
            return;
        }
    }
    b->ar = archive_write_new();
    archive_write_set_format_pax_restricted(b->ar);
    archive_write_set_bytes_per_block(b->ar, 0); /* unblocked: offsets are exact */
    if (archive_write_open2(b->ar, b, NULL, ar_write_cb, NULL, NULL) != ARCHIVE_OK) {
        bk_fail(b, ARCA_EFAIL, xasprintf("cannot start the archive: %s", archive_error_string(b->ar)));
        return;
    }
    for (; b->nworkers < b->p->workers; b->nworkers++)
        if (pthread_create(&b->workers[b->nworkers], NULL, worker_main, b)) {
            bk_fail(b, ARCA_EFAIL, xstrdup("cannot start worker threads"));
            return;
        }
    if (pthread_create(&b->writer, NULL, writer_main, b))
        bk_fail(b, ARCA_EFAIL, xstrdup("cannot start the writer thread"));
    else
        b->writer_started = 1;
}

static void bk_run_source(bk *b)
{
    if (b->failed)
        return;
    inst *s = b->p->source;
    int rc = s->plug->desc->source->backup(s->state, (arca_sink *)b);
    if (rc != ARCA_OK && !b->failed)
        bk_fail(b, rc, g_interrupted ? xstrdup("interrupted") : inst_take_error(s, rc, "backup failed"));
    else if (rc == ARCA_OK && g_interrupted)
        bk_fail(b, ARCA_ECANCELED, xstrdup("interrupted"));
    else if (rc == ARCA_OK && b->open_objects)
        bk_fail(b, ARCA_EFAIL, xasprintf("%s: the source returned with %zu objects begun but not ended", s->label,
                                         b->open_objects));
}

/* Lets the writer finish (or stop), then the workers. */
static void bk_drain(bk *b)
{
    pthread_mutex_lock(&b->mu);
    b->source_done = 1;
    pthread_cond_broadcast(&b->cv_done);
    pthread_mutex_unlock(&b->mu);
    if (b->writer_started)
        pthread_join(b->writer, NULL);
    pthread_mutex_lock(&b->mu);
    b->shutdown = 1;
    pthread_cond_broadcast(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->nworkers; i++)
        pthread_join(b->workers[i], NULL);
}

static int emit_to_put(void *ud, const void *p, size_t n)
{
    void **a = ud;
    return dest_put_write(a[0], p, n, (char **)a[1]) != ARCA_OK;
}

/* Archives everywhere, then the catalogue copies everywhere: a backup exists
 * only with its catalogue, so a failure removes what committed. */
static void bk_commit(bk *b)
{
    char *e = NULL;
    for (size_t i = 0; i < b->p->ndests && !b->failed; i++) {
        dest_put *put = b->puts[i];
        b->puts[i] = NULL;
        int rc = dest_put_commit(put, &e);
        if (rc != ARCA_OK)
            bk_fail(b, rc, e);
        else
            b->committed++;
    }
    for (size_t i = 0; i < b->p->ndests && !b->failed; i++) {
        dest_put *put = NULL;
        int rc = dest_put_open(b->p->dests[i], b->mfname, &put, &e);
        if (rc == ARCA_OK) {
            void *ud[2] = {put, &e};
            rc = mfw_emit(b->mw, emit_to_put, ud, &e);
            if (rc == 0)
                rc = dest_put_commit(put, &e);
            else {
                dest_put_abort(put);
                rc = ARCA_EFAIL;
            }
        }
        if (rc != ARCA_OK)
            bk_fail(b, rc, e);
        else
            b->mcommitted++;
    }
}

static void remove_everywhere(pipeline *p, const char *name, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        char *e = NULL;
        int rc = dest_remove(p->dests[i], name, &e);
        if (rc != ARCA_OK && rc != ARCA_ENOENT)
            log_msg(ARCA_LOG_WARN, "cleanup: %s (remove '%s' by hand)", e, name);
        free(e);
    }
}

/* A failed backup leaves nothing: open puts aborted, committed objects removed
 * (catalogue first). */
static void bk_undo(bk *b)
{
    b->discard = 1;
    for (size_t i = 0; i < b->p->ndests; i++) {
        dest_put_abort(b->puts[i]);
        b->puts[i] = NULL;
    }
    remove_everywhere(b->p, b->mfname, b->mcommitted);
    remove_everywhere(b->p, b->arname, b->committed);
}

static void bk_free(bk *b)
{
    if (b->ar) {
        b->discard = 1; /* a failed archive is never closed into a destination */
        archive_write_free(b->ar);
    }
    free(b->err);
    /* threads are joined: what a failure left behind is ours to free */
    for (job *lists[3] = {b->free_jobs, b->done, b->work_head}, **l = lists; l < lists + 3; l++)
        for (job *j = *l, *n; j; j = n) {
            n = j->next;
            if (j->obj)
                bobj_unref_locked(j->obj);
            job_free(j);
        }
    for (objctx *c = b->open, *n; c; c = n) {
        n = c->next;
        job_free(c->cur);
        bobj_unref_locked(c->obj);
        free(c);
    }
    nmap_free(&b->names);
    mfw_free(b->mw);
    free(b->puts);
    free(b->workers);
    free(b->outbuf);
    free(b->arname);
    free(b->mfname);
    json_decref(b->info);
    json_decref(b->header);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv_work);
    pthread_cond_destroy(&b->cv_done);
    pthread_cond_destroy(&b->cv_space);
}

int engine_backup(pipeline *p, backup_result *r, char **err)
{
    bk b;
    bk_init(&b, p);
    bk_start(&b);
    progress_start("backup");
    bk_run_source(&b);
    bk_drain(&b);
    progress_end();
    if (!b.failed)
        bk_commit(&b);
    if (b.failed)
        bk_undo(&b);
    int rc = ARCA_OK;
    if (b.failed) {
        rc = b.errcode ? b.errcode : ARCA_EFAIL;
        *err = b.err ? b.err : xstrdup("backup failed");
        b.err = NULL;
    } else {
        snprintf(r->id, sizeof r->id, "%s", b.id);
        r->archive_bytes = b.ar_off;
        r->objects = (size_t)b.nobjs;
        r->members = (size_t)b.nmem;
        r->raw_bytes = b.raw;
        r->stored_bytes = b.stored;
        r->seconds = now_mono() - b.t0;
    }
    bk_free(&b);
    return rc;
}
