/* Fake host for plugin unit tests: records what a source writes, replays what a
 * test wants a restore to see, loads plugin .so files and fills their config. */
#include "fakehost.h"
#include "options.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fh_entry {
    arca_entry e; /* name, link_target and data point into the fields below */
    char *name, *target;
    unsigned char *data;
    fh_kv *meta;
    size_t nmeta;
} fh_entry;

typedef struct fh_handle_msg {
    const void *handle; /* compared, never dereferenced */
    int code;
    char *text;
} fh_handle_msg;

typedef struct fh_log_line {
    int level;
    char *text;
} fh_log_line;

/* arca_sink and arca_feed are opaque to plugins; ours just lead back home. */
typedef struct fh_port {
    fakehost *fh;
} fh_port;

struct fakehost {
    arca_host host; /* first, so a host pointer is the fakehost pointer */
    pthread_mutex_t mu;
    int verbose;

    char last_error[4096];
    int last_code, nerrors;
    fh_handle_msg *hmsgs; /* one per handle, the last message wins */
    size_t nhmsgs;
    int nhandle_errors;
    fh_log_line *logs;
    size_t nlogs, caplogs;
    uint64_t progress_calls;
    long cancel_after, cancel_calls;

    fh_port sink, feed;
    fh_object **objs;
    size_t nobjs, capobjs;
    fh_kv *info;
    size_t ninfo;
    long sink_fail_after, begins;
    int sink_fail_code;

    fh_entry *entries;
    size_t nentries, capentries, pos;
    fh_kv *finfo;
    size_t nfinfo;
    size_t fail_at;
    int fail_code;
};

static void *fh_xalloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "fakehost: out of memory\n");
        abort();
    }
    return q;
}

static char *fh_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        fh_xalloc(NULL, SIZE_MAX); /* aborts */
    return d;
}

static fakehost *fh_of(const arca_host *h)
{
    return (fakehost *)h;
}

static const char *fh_kv_get(const fh_kv *kv, size_t n, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < n; i++) /* the last value set wins */
        if (!strcmp(kv[i].key, key))
            v = kv[i].value;
    return v;
}

static void fh_kv_add(fh_kv **kv, size_t *n, const char *key, const char *value)
{
    *kv = fh_xalloc(*kv, (*n + 1) * sizeof **kv);
    (*kv)[*n].key = fh_xstrdup(key);
    (*kv)[*n].value = fh_xstrdup(value);
    (*n)++;
}

static void fh_kv_free(fh_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* ---- host callbacks ---------------------------------------------------------- */

static void fh_cb_log(const arca_host *h, int level, const char *fmt, ...)
{
    fakehost *fh = fh_of(h);
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = fh_xstrdup("(log formatting failed)");
    va_end(ap);
    pthread_mutex_lock(&fh->mu);
    if (fh->nlogs == fh->caplogs) {
        fh->caplogs = fh->caplogs ? fh->caplogs * 2 : 16;
        fh->logs = fh_xalloc(fh->logs, fh->caplogs * sizeof *fh->logs);
    }
    fh->logs[fh->nlogs++] = (fh_log_line){level, text};
    if (fh->verbose)
        fprintf(stderr, "fakehost log[%d]: %s\n", level, text);
    pthread_mutex_unlock(&fh->mu);
}

static int fh_cb_error(const arca_host *h, int code, const char *fmt, ...)
{
    fakehost *fh = fh_of(h);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&fh->mu);
    vsnprintf(fh->last_error, sizeof fh->last_error, fmt, ap);
    fh->last_code = code;
    fh->nerrors++;
    if (fh->verbose)
        fprintf(stderr, "fakehost error %d: %s\n", code, fh->last_error);
    pthread_mutex_unlock(&fh->mu);
    va_end(ap);
    return code;
}

static int fh_cb_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...)
{
    fakehost *fh = fh_of(h);
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = fh_xstrdup("(message formatting failed)");
    va_end(ap);
    pthread_mutex_lock(&fh->mu);
    size_t i = 0;
    while (i < fh->nhmsgs && fh->hmsgs[i].handle != handle)
        i++;
    if (i == fh->nhmsgs) {
        fh->hmsgs = fh_xalloc(fh->hmsgs, (fh->nhmsgs + 1) * sizeof *fh->hmsgs);
        fh->hmsgs[fh->nhmsgs++] = (fh_handle_msg){handle, 0, NULL};
    }
    free(fh->hmsgs[i].text);
    fh->hmsgs[i].text = text;
    fh->hmsgs[i].code = code;
    fh->nhandle_errors++;
    if (fh->verbose)
        fprintf(stderr, "fakehost handle %p error %d: %s\n", handle, code, text);
    pthread_mutex_unlock(&fh->mu);
    return code;
}

static void fh_cb_progress(const arca_host *h, uint64_t done, uint64_t total)
{
    fakehost *fh = fh_of(h);
    pthread_mutex_lock(&fh->mu);
    fh->progress_calls++;
    pthread_mutex_unlock(&fh->mu);
}

static int fh_cb_cancelled(const arca_host *h)
{
    fakehost *fh = fh_of(h);
    pthread_mutex_lock(&fh->mu);
    int yes = fh->cancel_after >= 0 && fh->cancel_calls++ >= fh->cancel_after;
    pthread_mutex_unlock(&fh->mu);
    return yes;
}

static int fh_cb_sink_info(arca_sink *s, const char *key, const char *value)
{
    fakehost *fh = ((fh_port *)s)->fh;
    if (!key || !value)
        return fh_cb_error(&fh->host, ARCA_EFAIL, "fakehost: sink_info with a NULL key or value");
    pthread_mutex_lock(&fh->mu);
    fh_kv_add(&fh->info, &fh->ninfo, key, value);
    pthread_mutex_unlock(&fh->mu);
    return ARCA_OK;
}

static int fh_cb_object_begin(arca_sink *s, const arca_object_info *info, arca_object **out)
{
    fakehost *fh = ((fh_port *)s)->fh;
    pthread_mutex_lock(&fh->mu);
    if (fh->sink_fail_after >= 0 && fh->begins >= fh->sink_fail_after) {
        pthread_mutex_unlock(&fh->mu);
        return fh_cb_error(&fh->host, fh->sink_fail_code, "fakehost: object_begin failed on purpose");
    }
    fh->begins++;
    fh_object *o = fh_xalloc(NULL, sizeof *o);
    memset(o, 0, sizeof *o);
    o->info = *info;
    o->info.name = fh_xstrdup(info->name);
    o->info.link_target = fh_xstrdup(info->link_target);
    if (fh->nobjs == fh->capobjs) {
        fh->capobjs = fh->capobjs ? fh->capobjs * 2 : 64;
        fh->objs = fh_xalloc(fh->objs, fh->capobjs * sizeof *fh->objs);
    }
    fh->objs[fh->nobjs++] = o;
    pthread_mutex_unlock(&fh->mu);
    *out = (arca_object *)o;
    return ARCA_OK;
}

static int fh_cb_object_write(arca_object *obj, const void *buf, size_t len)
{
    fh_object *o = (fh_object *)obj;
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + len)
            cap *= 2;
        o->data = fh_xalloc(o->data, cap);
        o->cap = cap;
    }
    if (len)
        memcpy(o->data + o->len, buf, len);
    o->len += len;
    o->writes++;
    return ARCA_OK;
}

static int fh_cb_object_meta(arca_object *obj, const char *key, const char *value)
{
    fh_object *o = (fh_object *)obj;
    fh_kv_add(&o->meta, &o->nmeta, key, value);
    return ARCA_OK;
}

static int fh_cb_object_meta_int(arca_object *obj, const char *key, int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    return fh_cb_object_meta(obj, key, buf);
}

static int fh_cb_object_end(arca_object *obj)
{
    ((fh_object *)obj)->ended = 1;
    return ARCA_OK;
}

static int fh_cb_feed_next(arca_feed *f, arca_entry *e)
{
    fakehost *fh = ((fh_port *)f)->fh;
    if (fh->fail_code && fh->pos == fh->fail_at)
        return fh_cb_error(&fh->host, fh->fail_code, "fakehost: feed failed on purpose");
    if (fh->pos >= fh->nentries)
        return 0;
    *e = fh->entries[fh->pos++].e;
    return 1;
}

static const char *fh_cb_feed_meta(arca_feed *f, const char *key)
{
    fakehost *fh = ((fh_port *)f)->fh;
    if (fh->pos == 0)
        return NULL;
    const fh_entry *cur = &fh->entries[fh->pos - 1];
    return fh_kv_get(cur->meta, cur->nmeta, key);
}

static const char *fh_cb_feed_info(arca_feed *f, const char *key)
{
    fakehost *fh = ((fh_port *)f)->fh;
    return fh_kv_get(fh->finfo, fh->nfinfo, key);
}

/* ---- lifecycle ------------------------------------------------------------------ */

fakehost *fh_new(void)
{
    fakehost *fh = fh_xalloc(NULL, sizeof *fh);
    memset(fh, 0, sizeof *fh);
    fh->host = (arca_host){
        .abi_major = ARCA_ABI_MAJOR,
        .abi_minor = ARCA_ABI_MINOR,
        .size = sizeof(arca_host),
        .log = fh_cb_log,
        .error = fh_cb_error,
        .progress = fh_cb_progress,
        .cancelled = fh_cb_cancelled,
        .sink_info = fh_cb_sink_info,
        .object_begin = fh_cb_object_begin,
        .object_write = fh_cb_object_write,
        .object_meta = fh_cb_object_meta,
        .object_meta_int = fh_cb_object_meta_int,
        .object_end = fh_cb_object_end,
        .feed_next = fh_cb_feed_next,
        .feed_meta = fh_cb_feed_meta,
        .feed_info = fh_cb_feed_info,
        .handle_error = fh_cb_handle_error,
    };
    pthread_mutex_init(&fh->mu, NULL);
    fh->verbose = getenv("FH_VERBOSE") != NULL;
    fh->cancel_after = -1;
    fh->sink_fail_after = -1;
    fh->sink.fh = fh;
    fh->feed.fh = fh;
    return fh;
}

void fh_free(fakehost *fh)
{
    if (!fh)
        return;
    for (size_t i = 0; i < fh->nlogs; i++)
        free(fh->logs[i].text);
    free(fh->logs);
    for (size_t i = 0; i < fh->nhmsgs; i++)
        free(fh->hmsgs[i].text);
    free(fh->hmsgs);
    for (size_t i = 0; i < fh->nobjs; i++) {
        fh_object *o = fh->objs[i];
        free((char *)o->info.name);
        free((char *)o->info.link_target);
        free(o->data);
        fh_kv_free(o->meta, o->nmeta);
        free(o);
    }
    free(fh->objs);
    fh_kv_free(fh->info, fh->ninfo);
    for (size_t i = 0; i < fh->nentries; i++) {
        fh_entry *x = &fh->entries[i];
        free(x->name);
        free(x->target);
        free(x->data);
        fh_kv_free(x->meta, x->nmeta);
    }
    free(fh->entries);
    fh_kv_free(fh->finfo, fh->nfinfo);
    pthread_mutex_destroy(&fh->mu);
    free(fh);
}

const arca_host *fh_host(fakehost *fh) { return &fh->host; }
arca_sink *fh_sink(fakehost *fh) { return (arca_sink *)&fh->sink; }
arca_feed *fh_feed(fakehost *fh) { return (arca_feed *)&fh->feed; }

/* ---- queries ---------------------------------------------------------------------- */

int fh_last_code(const fakehost *fh) { return fh->last_code; }
const char *fh_last_error(const fakehost *fh) { return fh->last_error; }
int fh_error_count(const fakehost *fh) { return fh->nerrors; }
int fh_handle_error_count(const fakehost *fh) { return fh->nhandle_errors; }

static const fh_handle_msg *fh_hmsg(const fakehost *fh, const void *handle)
{
    for (size_t i = 0; i < fh->nhmsgs; i++)
        if (fh->hmsgs[i].handle == handle)
            return &fh->hmsgs[i];
    return NULL;
}

const char *fh_handle_error(const fakehost *fh, const void *handle)
{
    const fh_handle_msg *m = fh_hmsg(fh, handle);
    return m ? m->text : NULL;
}

int fh_handle_code(const fakehost *fh, const void *handle)
{
    const fh_handle_msg *m = fh_hmsg(fh, handle);
    return m ? m->code : 0;
}

void fh_set_abi_minor(fakehost *fh, unsigned minor)
{
    fh->host.abi_minor = minor;
    fh->host.size = minor ? (uint32_t)sizeof(arca_host) : (uint32_t)offsetof(arca_host, handle_error);
    fh->host.handle_error = minor ? fh_cb_handle_error : NULL;
}
uint64_t fh_progress_calls(const fakehost *fh) { return fh->progress_calls; }
void fh_cancel_after(fakehost *fh, long n) { fh->cancel_after = n; fh->cancel_calls = 0; }

size_t fh_log_count(const fakehost *fh, int level)
{
    size_t n = 0;
    for (size_t i = 0; i < fh->nlogs; i++)
        n += fh->logs[i].level == level;
    return n;
}

const char *fh_log_find(const fakehost *fh, int level, const char *needle)
{
    for (size_t i = 0; i < fh->nlogs; i++)
        if ((level < 0 || fh->logs[i].level == level) && strstr(fh->logs[i].text, needle))
            return fh->logs[i].text;
    return NULL;
}

size_t fh_object_count(const fakehost *fh) { return fh->nobjs; }

const fh_object *fh_object_at(const fakehost *fh, size_t i)
{
    return i < fh->nobjs ? fh->objs[i] : NULL;
}

const fh_object *fh_object_find(const fakehost *fh, const char *name)
{
    for (size_t i = 0; i < fh->nobjs; i++)
        if (!strcmp(fh->objs[i]->info.name, name))
            return fh->objs[i];
    return NULL;
}

const char *fh_object_meta(const fh_object *o, const char *key)
{
    return fh_kv_get(o->meta, o->nmeta, key);
}

const char *fh_sink_info_get(const fakehost *fh, const char *key)
{
    return fh_kv_get(fh->info, fh->ninfo, key);
}

size_t fh_open_objects(const fakehost *fh)
{
    size_t n = 0;
    for (size_t i = 0; i < fh->nobjs; i++)
        n += !fh->objs[i]->ended;
    return n;
}

void fh_sink_fail_after(fakehost *fh, long n, int code)
{
    fh->sink_fail_after = n;
    fh->sink_fail_code = code;
}

/* ---- feed building ------------------------------------------------------------------- */

void fh_feed_add(fakehost *fh, const arca_entry *e, const char *const *meta)
{
    if (fh->nentries == fh->capentries) {
        fh->capentries = fh->capentries ? fh->capentries * 2 : 64;
        fh->entries = fh_xalloc(fh->entries, fh->capentries * sizeof *fh->entries);
    }
    fh_entry *x = &fh->entries[fh->nentries++];
    memset(x, 0, sizeof *x);
    x->e = *e;
    x->name = fh_xstrdup(e->info.name);
    x->target = fh_xstrdup(e->info.link_target);
    if (e->len) {
        x->data = fh_xalloc(NULL, e->len);
        memcpy(x->data, e->data, e->len);
    }
    x->e.info.name = x->name;
    x->e.info.link_target = x->target;
    x->e.data = x->data;
    for (size_t i = 0; meta && meta[i] && meta[i + 1]; i += 2)
        fh_kv_add(&x->meta, &x->nmeta, meta[i], meta[i + 1]);
}

void fh_feed_dir(fakehost *fh, const char *name, uint32_t mode)
{
    arca_entry e = {.info = {.name = name, .kind = ARCA_OBJ_DIR, .mode = mode}};
    fh_feed_add(fh, &e, NULL);
}

void fh_feed_symlink(fakehost *fh, const char *name, const char *target)
{
    arca_entry e = {.info = {.name = name, .kind = ARCA_OBJ_SYMLINK, .mode = 0777,
                             .link_target = target}};
    fh_feed_add(fh, &e, NULL);
}

void fh_feed_file(fakehost *fh, const char *name, uint32_t mode, const void *data, size_t len)
{
    arca_entry e = {.info = {.name = name, .kind = ARCA_OBJ_DATA, .mode = mode},
                    .object_size = len, .chunk = 0, .chunks = 1, .data = data, .len = len};
    fh_feed_add(fh, &e, NULL);
}

void fh_feed_info_set(fakehost *fh, const char *key, const char *value)
{
    fh_kv_add(&fh->finfo, &fh->nfinfo, key, value);
}

void fh_feed_fail_at(fakehost *fh, size_t n, int code)
{
    fh->fail_at = n;
    fh->fail_code = code;
}

size_t fh_feed_remaining(const fakehost *fh) { return fh->nentries - fh->pos; }

static const char **fh_meta_list(const fh_object *o)
{
    const char **m = fh_xalloc(NULL, (2 * o->nmeta + 1) * sizeof *m);
    for (size_t i = 0; i < o->nmeta; i++) {
        m[2 * i] = o->meta[i].key;
        m[2 * i + 1] = o->meta[i].value;
    }
    m[2 * o->nmeta] = NULL;
    return m;
}

static uint32_t fh_chunks_of(const fh_object *o, size_t chunk_size)
{
    return o->len == 0 ? 1 : (uint32_t)((o->len + chunk_size - 1) / chunk_size);
}

static void fh_feed_chunk(fakehost *fh, const fh_object *o, size_t chunk_size, uint32_t k)
{
    size_t off = (size_t)k * chunk_size;
    size_t len = o->len - off < chunk_size ? o->len - off : chunk_size;
    arca_entry e = {.info = o->info, .object_size = o->len, .chunk = k,
                    .chunks = fh_chunks_of(o, chunk_size), .data = o->data + off, .len = len};
    const char **meta = fh_meta_list(o);
    fh_feed_add(fh, &e, meta);
    free(meta);
}

void fh_feed_from_recording(fakehost *fh, const fakehost *src, size_t chunk_size, int interleave)
{
    for (size_t i = 0; i < src->ninfo; i++)
        fh_feed_info_set(fh, src->info[i].key, src->info[i].value);
    for (size_t i = 0; i < src->nobjs; i++) {
        const fh_object *o = src->objs[i];
        if (o->info.kind == ARCA_OBJ_DATA)
            continue;
        arca_entry e = {.info = o->info};
        const char **meta = fh_meta_list(o);
        fh_feed_add(fh, &e, meta);
        free(meta);
    }
    if (!interleave) {
        for (size_t i = 0; i < src->nobjs; i++) {
            const fh_object *o = src->objs[i];
            if (o->info.kind == ARCA_OBJ_DATA)
                for (uint32_t k = 0; k < fh_chunks_of(o, chunk_size); k++)
                    fh_feed_chunk(fh, o, chunk_size, k);
        }
        return;
    }
    for (uint32_t k = 0;; k++) {
        int any = 0;
        for (size_t i = 0; i < src->nobjs; i++) {
            const fh_object *o = src->objs[i];
            if (o->info.kind == ARCA_OBJ_DATA && k < fh_chunks_of(o, chunk_size)) {
                fh_feed_chunk(fh, o, chunk_size, k);
                any = 1;
            }
        }
        if (!any)
            return;
    }
}

/* ---- plugins ------------------------------------------------------------------------- */

const arca_plugin *fh_load_plugin(const char *name, void **handle)
{
    const char *build = getenv("BUILD");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/%s.so", build && *build ? build : "build", name);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "fakehost: cannot load %s: %s\n", path, dlerror());
        return NULL;
    }
    arca_plugin_entry_fn entry = (arca_plugin_entry_fn)dlsym(dl, ARCA_PLUGIN_ENTRY_SYMBOL);
    const arca_plugin *p = entry ? entry() : NULL;
    if (!p) {
        fprintf(stderr, "fakehost: %s has no %s\n", path, ARCA_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    *handle = dl;
    return p;
}

void fh_unload_plugin(void *handle)
{
    if (handle)
        dlclose(handle);
}

/* The core's own option parser: a plugin's table is tested as the CLI would use it. */
void *fh_config(const arca_option *table, size_t size, const char *const *kv, char *err,
                size_t errlen)
{
    size_t n = 0;
    while (kv && kv[2 * n])
        n++;
    opt_kv *pairs = fh_xalloc(NULL, (n ? n : 1) * sizeof *pairs);
    for (size_t i = 0; i < n; i++)
        pairs[i] = (opt_kv){.key = kv[2 * i], .value = kv[2 * i + 1]};
    errlist errs = {0};
    void *cfg = opt_fill(table, size, pairs, n, "[fakehost]", &errs);
    free(pairs);
    if (!cfg && errlen) {
        err[0] = '\0';
        for (size_t i = 0; i < errs.n; i++) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, "%s%s", i ? "; " : "", errs.msg[i]);
        }
    }
    errlist_free(&errs);
    return cfg;
}

void fh_config_free(const arca_option *table, void *cfg)
{
    if (cfg)
        opt_free(table, cfg);
}
