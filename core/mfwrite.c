/* Writing a manifest: object and member records go to two unlinked temporary
 * files as they happen, so a backup of any number of objects keeps none of
 * them in memory; the document is assembled from those files when the backup
 * ends, once for the archive's MANIFEST.json and once per catalogue copy. */
#include "manifest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names.h"
#include "util.h"

typedef struct spool {
    FILE *f;
    uint64_t n;     /* records */
    uint64_t bytes; /* text written */
} spool;

struct mf_writer {
    pthread_mutex_t mu;
    spool objs, mems;
    uint64_t raw, stored;
    char *head, *mid, *tail; /* the document's fixed parts, after mfw_finish */
    uint64_t size;
};

static int spool_open(spool *s, const char *tmpdir, char **err)
{
    int fd = tmp_open(tmpdir, err);
    if (fd < 0)
        return -1;
    s->f = fdopen(fd, "w+");
    if (!s->f) {
        *err = xasprintf("cannot open a temporary file: %s", strerror(errno));
        close(fd);
        return -1;
    }
    setvbuf(s->f, NULL, _IOFBF, 1 << 16);
    return 0;
}

mf_writer *mfw_new(const char *tmpdir, char **err)
{
    mf_writer *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    if (spool_open(&w->objs, tmpdir, err) || spool_open(&w->mems, tmpdir, err)) {
        mfw_free(w);
        return NULL;
    }
    return w;
}

void mfw_free(mf_writer *w)
{
    if (!w)
        return;
    if (w->objs.f)
        fclose(w->objs.f);
    if (w->mems.f)
        fclose(w->mems.f);
    free(w->head);
    free(w->mid);
    free(w->tail);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* One compact record, ",\n"-separated from the one before. Caller holds mu. */
static int spool_put(spool *s, json_t *rec, char **err)
{
    char *t = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    size_t n = strlen(t);
    int bad = (s->n && fputs(",\n", s->f) == EOF) || fwrite(t, 1, n, s->f) != n;
    free(t);
    if (bad) {
        *err = xasprintf("cannot write the manifest's temporary file: %s", strerror(errno));
        return -1;
    }
    s->bytes += n + (s->n ? 2 : 0);
    s->n++;
    return 0;
}

int mfw_object(mf_writer *w, const arca_object_info *info, uint64_t size, uint32_t chunks, json_t *meta, char **err)
{
    char *name = name_encode(info->name);
    json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "name", name, "kind", kind_name(info->kind), "size",
                          (json_int_t)size, "chunks", (json_int_t)chunks, "mode", (json_int_t)(info->mode & 07777), "mtime",
                          (json_int_t)info->mtime_sec, "mtime_nsec", (json_int_t)info->mtime_nsec);
    free(name);
    if (info->kind == ARCA_OBJ_SYMLINK) {
        char *t = name_encode(info->link_target);
        json_object_set_new(r, "target", json_string(t));
        free(t);
    }
    if (meta && json_object_size(meta))
        json_object_set(r, "meta", meta);
    pthread_mutex_lock(&w->mu);
    int rc = spool_put(&w->objs, r, err);
    pthread_mutex_unlock(&w->mu);
    json_decref(r);
    return rc;
}

int mfw_member(mf_writer *w, const char *ns, const char *obj_name, uint32_t chunk, uint64_t raw, uint64_t stored,
               uint64_t offset, const unsigned char sha[32], char **err)
{
    char hex[65], *mn = member_name(ARCA_FORMAT_VERSION, ns, obj_name, chunk), *on = name_encode(obj_name);
    hex_encode(sha, 32, hex);
    json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "name", mn, "object", on, "chunk", (json_int_t)chunk,
                          "raw_size", (json_int_t)raw, "stored_size", (json_int_t)stored, "offset", (json_int_t)offset,
                          "sha256", hex);
    free(mn);
    free(on);
    pthread_mutex_lock(&w->mu);
    int rc = spool_put(&w->mems, r, err);
    w->raw += raw;
    w->stored += stored;
    pthread_mutex_unlock(&w->mu);
    json_decref(r);
    return rc;
}

int mfw_finish(mf_writer *w, json_t *header, char **err)
{
    if (fflush(w->objs.f) || fflush(w->mems.f)) {
        *err = xasprintf("cannot write the manifest's temporary file: %s", strerror(errno));
        return -1;
    }
    char *h = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_t *tot = json_pack("{s:I,s:I,s:I,s:I}", "objects", (json_int_t)w->objs.n, "members", (json_int_t)w->mems.n,
                            "raw_bytes", (json_int_t)w->raw, "stored_bytes", (json_int_t)w->stored);
    char *t = json_dumps(tot, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(tot);
    /* header and totals first: `list` reads only the start of a catalogue */
    w->head = xasprintf("{\"format\":\"arca-manifest\",\"format_version\":%d,\n\"header\":%s,\n\"totals\":%s,\n"
                        "\"objects\":[\n",
                        ARCA_FORMAT_VERSION, h, t);
    w->mid = xstrdup("\n],\n\"members\":[\n");
    w->tail = xstrdup("\n]}\n");
    free(h);
    free(t);
    w->size = strlen(w->head) + w->objs.bytes + strlen(w->mid) + w->mems.bytes + strlen(w->tail);
    return 0;
}

uint64_t mfw_size(const mf_writer *w) { return w->size; }
uint64_t mfw_objects(const mf_writer *w) { return w->objs.n; }
uint64_t mfw_members(const mf_writer *w) { return w->mems.n; }

static int emit_spool(spool *s, int (*out)(void *, const void *, size_t), void *ud, char **err)
{
    char buf[1 << 16];
    uint64_t left = s->bytes;
    int fd = fileno(s->f);
    off_t pos = 0;
    while (left) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        ssize_t got = pread(fd, buf, want, pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            *err = xasprintf("cannot read the manifest's temporary file: %s", got < 0 ? strerror(errno) : "short file");
            return -1;
        }
        if (out(ud, buf, (size_t)got))
            return 1;
        left -= (uint64_t)got;
        pos += got;
    }
    return 0;
}

int mfw_emit(mf_writer *w, int (*out)(void *ud, const void *p, size_t n), void *ud, char **err)
{
    int rc;
    if ((rc = out(ud, w->head, strlen(w->head))) || (rc = emit_spool(&w->objs, out, ud, err)) ||
        (rc = out(ud, w->mid, strlen(w->mid))) || (rc = emit_spool(&w->mems, out, ud, err)) ||
        (rc = out(ud, w->tail, strlen(w->tail))))
        return rc;
    return 0;
}
