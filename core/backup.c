/* Backup engine: sources write objects into a sink from any number of threads; the
 * core cuts them into chunks, a worker pool compresses (one zstd frame each) and
 * hashes them, and one writer thread puts them into a pax tar in submission order,
 * fanned out to every destination. Memory: (in-flight jobs + open objects) x 2 chunks. */
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
#include <zstd.h>

#include "engine.h"

#define OUTBUF_SIZE (1u << 20) /* coalesce tar output into 1 MiB writes */

typedef struct job {
    struct job *next;
    uint64_t seq;
    mf_object *obj;
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

    /* objects, in order of object_begin */
    mf_object **objs;
    size_t nobjs, objs_cap;
    size_t *oidx; /* hash of names -> index, to refuse duplicates */
    size_t oidx_cap;
    json_t *info;
    int info_frozen;

    /* writer state (writer thread only, until joined) */
    struct archive *ar;
    uint64_t ar_off; /* bytes of tar produced so far */
    unsigned char *outbuf;
    size_t outlen;
    int discard; /* after a failure: tar output (e.g. the trailer at free) goes nowhere */
    void **puts; /* one open put per destination */
    mf_member *mem;
    size_t nmem, mem_cap;
    json_t *header;
    int header_written;
} bk;

typedef struct objctx {
    bk *b;
    mf_object *obj;
    job *cur;
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

/* ---- job buffers ----------------------------------------------------------- */

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

/* Caller holds b->mu. Keeps a few buffers for reuse, frees the rest. */
static void job_put_locked(bk *b, job *j)
{
    if (b->nfree < b->max_inflight + 2) {
        j->next = b->free_jobs;
        b->free_jobs = j;
        b->nfree++;
    } else {
        job_free(j);
    }
}

/* Hand a filled chunk to the workers; blocks while too many are in flight. */
static int job_submit(bk *b, job *j)
{
    pthread_mutex_lock(&b->mu);
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
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!b->work_head && !b->shutdown && !b->failed)
            pthread_cond_wait(&b->cv_work, &b->mu);
        if (b->failed || (!b->work_head && b->shutdown)) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        job *j = b->work_head;
        b->work_head = j->next;
        if (!b->work_head)
            b->work_tail = NULL;
        pthread_mutex_unlock(&b->mu);

        size_t n = ZSTD_compress2(cc, j->out, j->out_cap, j->raw, j->raw_len);
        if (ZSTD_isError(n)) {
            bk_fail(b, ARCA_EFAIL, xasprintf("zstd compression of '%s' failed: %s", j->obj->name, ZSTD_getErrorName(n)));
            pthread_mutex_lock(&b->mu);
            job_put_locked(b, j);
            pthread_mutex_unlock(&b->mu);
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
        inst *d = b->p->dests[i];
        int rc = d->plug->desc->destination->put_write(b->puts[i], b->outbuf, b->outlen);
        if (rc != ARCA_OK) {
            bk_fail(b, rc, inst_take_error(d, rc, "write failed"));
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

/* Write one tar member; *data_off receives where its bytes start in the archive. */
static int ar_member(bk *b, const char *name, const void *data, size_t len, uint64_t *data_off)
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
        goto fail;
    if (data_off)
        *data_off = b->ar_off;
    if (len && archive_write_data(b->ar, data, len) != (la_ssize_t)len)
        goto fail;
    return 0;
fail:
    if (!bk_failed(b))
        bk_fail(b, ARCA_EFAIL, xasprintf("writing archive member '%s': %s", name, archive_error_string(b->ar)));
    return -1;
}

static json_t *make_header(bk *b)
{
    char ts[32], comp[32];
    iso_time(b->created, ts, sizeof ts);
    snprintf(comp, sizeof comp, "zstd:%d", b->p->level);
    inst *s = b->p->source;
    json_t *src = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", s->name, "plugin", s->plug->desc->name, "plugin_version",
                            s->plug->desc->version, "namespace", b->ns, "mode",
                            json_string_value(json_object_get(b->info, "mode")) ?: "full");
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

static void *writer_main(void *arg)
{
    bk *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        job *j = NULL;
        while (!b->failed && !(j = take_next_done(b)) && !(b->source_done && b->next_write == b->next_assign))
            pthread_cond_wait(&b->cv_done, &b->mu);
        int stop = b->failed || (!j);
        pthread_mutex_unlock(&b->mu);
        if (stop) {
            if (j) {
                pthread_mutex_lock(&b->mu);
                job_put_locked(b, j);
                pthread_mutex_unlock(&b->mu);
            }
            break;
        }
        if (!b->header_written && write_header(b))
            j->obj = NULL;
        if (j->obj) {
            if (b->nmem == b->mem_cap) {
                b->mem_cap = b->mem_cap ? b->mem_cap * 2 : 1024;
                b->mem = xrealloc(b->mem, b->mem_cap * sizeof *b->mem);
            }
            mf_member *m = &b->mem[b->nmem];
            m->obj = j->obj;
            m->chunk = j->chunk;
            m->raw = j->raw_len;
            m->stored = j->out_len;
            memcpy(m->sha, j->sha, 32);
            char *name = member_name(b->ns, j->obj->name, j->chunk);
            if (ar_member(b, name, j->out, j->out_len, &m->offset) == 0)
                b->nmem++;
            free(name);
        }
        pthread_mutex_lock(&b->mu);
        job_put_locked(b, j);
        b->inflight--;
        b->next_write++;
        pthread_cond_broadcast(&b->cv_space);
        pthread_mutex_unlock(&b->mu);
    }
    if (bk_failed(b))
        return NULL;
    /* Everything is in: header (if no data came), manifest last, close. */
    if (!b->header_written && write_header(b))
        return NULL;
    char *mtext = manifest_text(b->header, b->objs, b->nobjs, b->mem, b->nmem);
    if (ar_member(b, ARCA_MANIFEST_MEMBER, mtext, strlen(mtext), NULL) == 0) {
        if (archive_write_close(b->ar) != ARCHIVE_OK)
            bk_fail(b, ARCA_EFAIL, xasprintf("closing archive: %s", archive_error_string(b->ar)));
        else
            flush_out(b);
    }
    free(mtext);
    return NULL;
}

/* ---- sink entry points (called by sources through the host table) ------------ */

/* Caller holds b->mu. 0 if added, -1 if the name exists. */
static int oidx_add(bk *b, size_t idx)
{
    if ((b->nobjs + 1) * 2 > b->oidx_cap) {
        size_t nc = b->oidx_cap ? b->oidx_cap * 2 : 1024;
        size_t *ni = xmalloc(nc * sizeof *ni);
        memset(ni, 0xff, nc * sizeof *ni);
        for (size_t i = 0; i < b->oidx_cap; i++)
            if (b->oidx[i] != SIZE_MAX)
                for (size_t h = hash_str(b->objs[b->oidx[i]]->name) & (nc - 1);; h = (h + 1) & (nc - 1))
                    if (ni[h] == SIZE_MAX) { ni[h] = b->oidx[i]; break; }
        free(b->oidx);
        b->oidx = ni;
        b->oidx_cap = nc;
    }
    const char *name = b->objs[idx]->name;
    for (size_t h = hash_str(name) & (b->oidx_cap - 1);; h = (h + 1) & (b->oidx_cap - 1)) {
        if (b->oidx[h] == SIZE_MAX) {
            b->oidx[h] = idx;
            return 0;
        }
        if (!strcmp(b->objs[b->oidx[h]]->name, name))
            return -1;
    }
}

int engine_sink_info(arca_sink *s, const char *key, const char *value)
{
    bk *b = (bk *)s;
    inst *src = b->p->source;
    pthread_mutex_lock(&b->mu);
    int frozen = b->info_frozen;
    if (!frozen && key && value)
        json_object_set_new(b->info, key, json_string(value));
    pthread_mutex_unlock(&b->mu);
    if (frozen)
        return src->host.error(&src->host, ARCA_EFAIL, "sink_info('%s') after the first object: too late for the archive header", key);
    return ARCA_OK;
}

int engine_object_begin(arca_sink *s, const arca_object_info *info, arca_object **out)
{
    bk *b = (bk *)s;
    inst *src = b->p->source;
    *out = NULL;
    if (bk_failed(b))
        return ARCA_ECANCELED;
    if (!info || !name_is_safe(info->name))
        return src->host.error(&src->host, ARCA_EFAIL, "object name '%s' is not a safe relative name", info && info->name ? info->name : "(null)");
    if (info->kind != ARCA_OBJ_DATA && info->kind != ARCA_OBJ_DIR && info->kind != ARCA_OBJ_SYMLINK)
        return src->host.error(&src->host, ARCA_EFAIL, "object '%s' has an unknown kind %d", info->name, (int)info->kind);
    if (info->kind == ARCA_OBJ_SYMLINK && (!info->link_target || !*info->link_target))
        return src->host.error(&src->host, ARCA_EFAIL, "symlink object '%s' has no target", info->name);
    mf_object *o = xcalloc(1, sizeof *o);
    o->name = xstrdup(info->name);
    o->kind = info->kind;
    o->mode = info->mode & 07777;
    o->mtime_sec = info->mtime_sec;
    o->mtime_nsec = info->mtime_nsec;
    o->target = info->kind == ARCA_OBJ_SYMLINK ? xstrdup(info->link_target) : NULL;
    pthread_mutex_lock(&b->mu);
    b->info_frozen = 1;
    if (b->nobjs == b->objs_cap) {
        b->objs_cap = b->objs_cap ? b->objs_cap * 2 : 1024;
        b->objs = xrealloc(b->objs, b->objs_cap * sizeof *b->objs);
    }
    b->objs[b->nobjs] = o;
    int dup = oidx_add(b, b->nobjs);
    if (!dup)
        b->nobjs++;
    pthread_mutex_unlock(&b->mu);
    if (dup) {
        int rc = src->host.error(&src->host, ARCA_EFAIL, "object '%s' written twice", o->name);
        free(o->name);
        free(o->target);
        free(o);
        return rc;
    }
    objctx *c = xcalloc(1, sizeof *c);
    c->b = b;
    c->obj = o;
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
    if (c->obj->kind != ARCA_OBJ_DATA && len)
        return b->p->source->host.error(&b->p->source->host, ARCA_EFAIL, "object '%s' is a %s and takes no data",
                                        c->obj->name, kind_name(c->obj->kind));
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
        return ARCA_EFAIL;
    }
    if (!c->obj->meta)
        c->obj->meta = json_object();
    json_object_set_new(c->obj->meta, key, v);
    return ARCA_OK;
}

int engine_object_meta(arca_object *o, const char *key, const char *value)
{
    return meta_set((objctx *)o, key, json_string(value ? value : ""));
}

int engine_object_meta_int(arca_object *o, const char *key, int64_t value)
{
    return meta_set((objctx *)o, key, json_integer((json_int_t)value));
}

int engine_object_end(arca_object *o)
{
    objctx *c = (objctx *)o;
    int rc = ARCA_OK;
    if (c->obj->kind == ARCA_OBJ_DATA) {
        if (!c->cur)
            c->cur = job_get(c->b); /* an empty object still has one (empty) frame */
        rc = submit_cur(c);
    }
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

static void remove_everywhere(pipeline *p, const char *name, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        inst *d = p->dests[i];
        int rc = d->plug->desc->destination->remove(d->state, name);
        if (rc == ARCA_ENOENT)
            free(inst_take_error(d, rc, ""));
        else if (rc != ARCA_OK) {
            char *m = inst_take_error(d, rc, "remove failed");
            log_msg(ARCA_LOG_WARN, "cleanup: %s (remove '%s' by hand)", m, name);
            free(m);
        }
    }
}

/* Store the catalogue copy of the manifest at every destination. */
static int put_small(pipeline *p, size_t di, const char *name, const char *data, size_t len, char **err)
{
    inst *d = p->dests[di];
    const arca_destination_ops *ops = d->plug->desc->destination;
    void *put = NULL;
    int rc = ops->put_open(d->state, name, &put);
    if (rc == ARCA_OK) {
        rc = ops->put_write(put, data, len);
        if (rc == ARCA_OK)
            rc = ops->put_commit(put);
        else
            ops->put_abort(put);
    }
    if (rc != ARCA_OK)
        *err = inst_take_error(d, rc, "storing the manifest failed");
    return rc;
}

int engine_backup(pipeline *p, backup_result *r, char **err)
{
    bk b;
    memset(&b, 0, sizeof b);
    b.p = p;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    b.created = (int64_t)now.tv_sec;
    backup_new_id(b.id, sizeof b.id, b.created, (int)(now.tv_nsec / 1000000));
    b.ns = p->source->plug->desc->name;
    b.info = json_object();
    b.max_inflight = (size_t)p->workers * 2 + 2;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv_work, NULL);
    pthread_cond_init(&b.cv_done, NULL);
    pthread_cond_init(&b.cv_space, NULL);
    b.outbuf = xmalloc(OUTBUF_SIZE);
    b.puts = xcalloc(p->ndests, sizeof *b.puts);
    g_op_failed = 0;
    double t0 = now_mono();
    char *arname = xasprintf("%s.arca", b.id), *mfname = xasprintf("%s.manifest.json", b.id);
    int rc = ARCA_OK;
    size_t nopen = 0;

    for (; nopen < p->ndests; nopen++) {
        inst *d = p->dests[nopen];
        rc = d->plug->desc->destination->put_open(d->state, arname, &b.puts[nopen]);
        if (rc != ARCA_OK) {
            bk_fail(&b, rc, inst_take_error(d, rc, "cannot start writing the archive"));
            break;
        }
    }

    pthread_t *workers = xcalloc((size_t)p->workers, sizeof *workers);
    pthread_t writer;
    int nworkers = 0, writer_started = 0;
    if (!b.failed) {
        b.ar = archive_write_new();
        archive_write_set_format_pax_restricted(b.ar);
        archive_write_set_bytes_per_block(b.ar, 0); /* unblocked: offsets are exact */
        if (archive_write_open2(b.ar, &b, NULL, ar_write_cb, NULL, NULL) != ARCHIVE_OK)
            bk_fail(&b, ARCA_EFAIL, xasprintf("cannot start the archive: %s", archive_error_string(b.ar)));
    }
    if (!b.failed) {
        for (; nworkers < p->workers; nworkers++)
            if (pthread_create(&workers[nworkers], NULL, worker_main, &b)) {
                bk_fail(&b, ARCA_EFAIL, xstrdup("cannot start worker threads"));
                break;
            }
        if (!b.failed && !pthread_create(&writer, NULL, writer_main, &b))
            writer_started = 1;
        else if (!b.failed)
            bk_fail(&b, ARCA_EFAIL, xstrdup("cannot start the writer thread"));
    }

    progress_start("backup");
    if (!b.failed) {
        inst *s = p->source;
        rc = s->plug->desc->source->backup(s->state, (arca_sink *)&b);
        if (rc != ARCA_OK && !b.failed)
            bk_fail(&b, rc, g_interrupted ? xstrdup("interrupted") : inst_take_error(s, rc, "backup failed"));
        else if (rc == ARCA_OK && g_interrupted)
            bk_fail(&b, ARCA_ECANCELED, xstrdup("interrupted"));
    }
    pthread_mutex_lock(&b.mu);
    b.source_done = 1;
    pthread_cond_broadcast(&b.cv_done);
    pthread_mutex_unlock(&b.mu);
    if (writer_started)
        pthread_join(writer, NULL);
    pthread_mutex_lock(&b.mu);
    b.shutdown = 1;
    pthread_cond_broadcast(&b.cv_work);
    pthread_mutex_unlock(&b.mu);
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    progress_end();

    /* Commit: archives everywhere, then the catalogue manifests everywhere. A
     * backup exists only with its manifest, so a failure removes what committed. */
    size_t committed = 0;
    if (!b.failed) {
        for (size_t i = 0; i < p->ndests; i++) {
            inst *d = p->dests[i];
            void *put = b.puts[i];
            b.puts[i] = NULL;
            rc = d->plug->desc->destination->put_commit(put);
            if (rc != ARCA_OK) {
                bk_fail(&b, rc, inst_take_error(d, rc, "committing the archive failed"));
                break;
            }
            committed++;
        }
    }
    if (b.failed)
        b.discard = 1;
    for (size_t i = 0; i < nopen; i++)
        if (b.puts[i]) {
            p->dests[i]->plug->desc->destination->put_abort(b.puts[i]);
            b.puts[i] = NULL;
        }
    size_t mcommitted = 0;
    if (!b.failed) {
        char *mtext = manifest_text(b.header, b.objs, b.nobjs, b.mem, b.nmem);
        json_t *doc = json_loads(mtext, 0, NULL);
        json_object_set_new(doc, "archive", json_pack("{s:s,s:I}", "name", arname, "size", (json_int_t)b.ar_off));
        char *cat = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(doc);
        free(mtext);
        for (size_t i = 0; i < p->ndests && !b.failed; i++) {
            char *e = NULL;
            rc = put_small(p, i, mfname, cat, strlen(cat), &e);
            if (rc != ARCA_OK)
                bk_fail(&b, rc, e);
            else
                mcommitted++;
        }
        free(cat);
    }
    if (b.failed) {
        remove_everywhere(p, mfname, mcommitted);
        remove_everywhere(p, arname, committed);
    }

    if (b.ar) {
        b.discard = 1; /* a failed archive is never closed into a destination */
        archive_write_free(b.ar);
    }
    rc = b.failed ? (b.errcode ? b.errcode : ARCA_EFAIL) : ARCA_OK;
    if (b.failed) {
        *err = b.err ? b.err : xstrdup("backup failed");
        b.err = NULL;
    } else {
        snprintf(r->id, sizeof r->id, "%s", b.id);
        r->archive_bytes = b.ar_off;
        r->objects = b.nobjs;
        r->members = b.nmem;
        for (size_t i = 0; i < b.nmem; i++) {
            r->raw_bytes += b.mem[i].raw;
            r->stored_bytes += b.mem[i].stored;
        }
        r->seconds = now_mono() - t0;
    }
    free(b.err);
    while (b.free_jobs) {
        job *j = b.free_jobs;
        b.free_jobs = j->next;
        job_free(j);
    }
    for (job *j = b.done, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (job *j = b.work_head, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < b.nobjs; i++) {
        free(b.objs[i]->name);
        free(b.objs[i]->target);
        json_decref(b.objs[i]->meta);
        free(b.objs[i]);
    }
    free(b.objs);
    free(b.oidx);
    free(b.mem);
    free(b.puts);
    free(b.outbuf);
    json_decref(b.info);
    json_decref(b.header);
    free(arname);
    free(mfname);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv_work);
    pthread_cond_destroy(&b.cv_done);
    pthread_cond_destroy(&b.cv_space);
    return rc;
}
