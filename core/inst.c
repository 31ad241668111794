/* A configured plugin instance with its own host table. */
#include "inst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "options.h"

volatile sig_atomic_t g_interrupted;
volatile int g_op_failed;

static void h_log(const arca_host *h, int level, const char *fmt, ...)
{
    inst *in = h->core;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, in->label, fmt, ap);
    va_end(ap);
}

static int h_error(const arca_host *h, int code, const char *fmt, ...)
{
    inst *in = h->core;
    va_list ap;
    char *m;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    pthread_mutex_lock(&in->mu);
    free(in->err);
    in->err = m;
    in->errcode = code;
    pthread_mutex_unlock(&in->mu);
    log_msg(ARCA_LOG_DEBUG, "%s: reported: %s", in->label, m ? m : "?");
    return code;
}

typedef struct herr {
    const void *handle;
    int code;
    char *msg;
    struct herr *next;
} herr;

static int h_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...)
{
    inst *in = h->core;
    va_list ap;
    char *m;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    pthread_mutex_lock(&in->mu);
    herr *e = in->herrs;
    while (e && e->handle != handle)
        e = e->next;
    if (!e) {
        e = xcalloc(1, sizeof *e);
        e->handle = handle;
        e->next = in->herrs;
        in->herrs = e;
    }
    free(e->msg);
    e->msg = m;
    e->code = code;
    pthread_mutex_unlock(&in->mu);
    log_msg(ARCA_LOG_DEBUG, "%s: reported for %p: %s", in->label, handle, m ? m : "?");
    return code;
}

static void h_progress(const arca_host *h, uint64_t done, uint64_t total)
{
    engine_progress_hint(done, total);
}

static int h_cancelled(const arca_host *h)
{
    return g_interrupted || g_op_failed;
}

inst *inst_create(plug *p, const char *kind, const char *name, void *cfg, char **err)
{
    inst *in = xcalloc(1, sizeof *in);
    in->host = (arca_host){
        .abi_major = ARCA_ABI_MAJOR,
        .abi_minor = ARCA_ABI_MINOR,
        .size = sizeof(arca_host),
        .log = h_log,
        .error = h_error,
        .progress = h_progress,
        .cancelled = h_cancelled,
        .sink_info = engine_sink_info,
        .object_begin = engine_object_begin,
        .object_write = engine_object_write,
        .object_meta = engine_object_meta,
        .object_meta_int = engine_object_meta_int,
        .object_end = engine_object_end,
        .feed_next = engine_feed_next,
        .feed_meta = engine_feed_meta,
        .feed_info = engine_feed_info,
        .core = in,
        .handle_error = h_handle_error,
    };
    in->kind = xstrdup(kind);
    in->name = xstrdup(name);
    in->label = xasprintf("%s '%s' (%s)", kind, name, p->desc->name);
    in->plug = p;
    in->cfg = cfg;
    pthread_mutex_init(&in->mu, NULL);
    int rc = p->desc->create(&in->host, cfg, &in->state);
    if (rc != ARCA_OK) {
        *err = inst_take_error(in, rc, "cannot be set up");
        in->state = NULL;
        inst_destroy(in);
        return NULL;
    }
    return in;
}

void inst_destroy(inst *in)
{
    if (!in)
        return;
    if (in->state)
        in->plug->desc->destroy(in->state);
    opt_free(in->plug->desc->options, in->cfg);
    pthread_mutex_destroy(&in->mu);
    while (in->herrs) {
        herr *e = in->herrs;
        in->herrs = e->next;
        free(e->msg);
        free(e);
    }
    free(in->err);
    free(in->kind);
    free(in->name);
    free(in->label);
    free(in);
}

char *inst_take_error(inst *in, int code, const char *what)
{
    pthread_mutex_lock(&in->mu);
    char *m = in->err;
    in->err = NULL;
    pthread_mutex_unlock(&in->mu);
    if (m) {
        char *r = xasprintf("%s: %s", in->label, m);
        free(m);
        return r;
    }
    return xasprintf("%s: %s (status %d)", in->label, what, code);
}

static char *take_handle_msg(inst *in, const void *handle)
{
    char *m = NULL;
    pthread_mutex_lock(&in->mu);
    for (herr **pp = &in->herrs; *pp; pp = &(*pp)->next)
        if ((*pp)->handle == handle) {
            herr *e = *pp;
            *pp = e->next;
            m = e->msg;
            free(e);
            break;
        }
    pthread_mutex_unlock(&in->mu);
    return m;
}

char *inst_take_handle_error(inst *in, const void *handle, int code, const char *what)
{
    char *m = handle ? take_handle_msg(in, handle) : NULL;
    if (!m)
        return inst_take_error(in, code, what);
    char *r = xasprintf("%s: %s", in->label, m);
    free(m);
    return r;
}

void inst_drop_handle(inst *in, const void *handle)
{
    free(take_handle_msg(in, handle));
}
