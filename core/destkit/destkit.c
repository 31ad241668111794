/* arca destination kit: the destination contract as named checks against a
 * plugin, with a minimal host of its own. Single-threaded; the host it lends
 * the plugin is thread-safe (a plugin may log or fail from its own threads).
 * Plain C11 plus POSIX's sched_yield, so that vendors compile it as is. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <arca/destkit.h>

#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DK_BIG_DEFAULT ((uint64_t)3 * 1024 * 1024 + 12345)
#define DK_BREAK_AFTER_DEFAULT ((uint64_t)64 * 1024)
#define DK_MSG 1024
#define DK_HANDLES 16
#define DK_TRACK 64
#define DK_PREFIX_MAX 64

/* ---- the host ------------------------------------------------------------ */

typedef struct dk_handle_msg {
    const void *handle; /* compared, never dereferenced */
    int code;
    char msg[DK_MSG];
} dk_handle_msg;

typedef struct dk_host {
    arca_host host; /* first: the plugin's host pointer is ours */
    atomic_flag lock;
    FILE *out;
    int verbose;
    int nerrors, last_code;
    char last[DK_MSG];
    dk_handle_msg hmsg[DK_HANDLES];
    int nhmsg, nhandle_errors;
} dk_host;

static dk_host *dk_of(const arca_host *h)
{
    return (dk_host *)(void *)h;
}

static void dk_lock(dk_host *k)
{
    while (atomic_flag_test_and_set_explicit(&k->lock, memory_order_acquire))
        sched_yield();
}

static void dk_unlock(dk_host *k)
{
    atomic_flag_clear_explicit(&k->lock, memory_order_release);
}

static void dk_log(const arca_host *h, int level, const char *fmt, ...)
{
    dk_host *k = dk_of(h);
    char msg[DK_MSG];
    va_list ap;
    if (!k->verbose)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dk_lock(k);
    fprintf(k->out, "# log %d: %s\n", level, msg);
    dk_unlock(k);
}

static int dk_error(const arca_host *h, int code, const char *fmt, ...)
{
    dk_host *k = dk_of(h);
    char msg[DK_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dk_lock(k);
    memcpy(k->last, msg, sizeof msg);
    k->last_code = code;
    k->nerrors++;
    dk_unlock(k);
    return code;
}

static int dk_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...)
{
    dk_host *k = dk_of(h);
    char msg[DK_MSG];
    va_list ap;
    int i;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dk_lock(k);
    for (i = 0; i < k->nhmsg && k->hmsg[i].handle != handle; i++)
        ;
    if (i == k->nhmsg && i < DK_HANDLES)
        k->nhmsg++;
    if (i < DK_HANDLES) { /* more handles than that in one check: the kit's own bug */
        k->hmsg[i].handle = handle;
        k->hmsg[i].code = code;
        memcpy(k->hmsg[i].msg, msg, sizeof msg);
    }
    k->nhandle_errors++;
    dk_unlock(k);
    return code;
}

static void dk_progress(const arca_host *h, uint64_t done, uint64_t total)
{
    (void)h, (void)done, (void)total;
}

static int dk_cancelled(const arca_host *h)
{
    (void)h;
    return 0;
}

/* A destination has no business with the sink or the feed. */
static int dk_sink_info(arca_sink *s, const char *key, const char *value)
{
    (void)s, (void)key, (void)value;
    return ARCA_EFAIL;
}
static int dk_object_begin(arca_sink *s, const arca_object_info *info, arca_object **out)
{
    (void)s, (void)info;
    *out = NULL;
    return ARCA_EFAIL;
}
static int dk_object_write(arca_object *o, const void *buf, size_t len)
{
    (void)o, (void)buf, (void)len;
    return ARCA_EFAIL;
}
static int dk_object_meta(arca_object *o, const char *key, const char *value)
{
    (void)o, (void)key, (void)value;
    return ARCA_EFAIL;
}
static int dk_object_meta_int(arca_object *o, const char *key, int64_t value)
{
    (void)o, (void)key, (void)value;
    return ARCA_EFAIL;
}
static int dk_object_end(arca_object *o)
{
    (void)o;
    return ARCA_EFAIL;
}
static int dk_feed_next(arca_feed *f, arca_entry *e)
{
    (void)f, (void)e;
    return ARCA_EFAIL;
}
static const char *dk_feed_str(arca_feed *f, const char *key)
{
    (void)f, (void)key;
    return NULL;
}

/* minor 1: this ABI's host, handle_error offered; 0: a host as a 1.0 core builds it. */
static void dk_host_init(dk_host *k, const arca_destkit_opts *o, int minor)
{
    memset(k, 0, sizeof *k);
    atomic_flag_clear(&k->lock);
    k->host = (arca_host){
        .abi_major = ARCA_ABI_MAJOR,
        .abi_minor = minor ? ARCA_ABI_MINOR : 0,
        .size = minor ? (uint32_t)sizeof(arca_host) : (uint32_t)offsetof(arca_host, handle_error),
        .log = dk_log,
        .error = dk_error,
        .progress = dk_progress,
        .cancelled = dk_cancelled,
        .sink_info = dk_sink_info,
        .object_begin = dk_object_begin,
        .object_write = dk_object_write,
        .object_meta = dk_object_meta,
        .object_meta_int = dk_object_meta_int,
        .object_end = dk_object_end,
        .feed_next = dk_feed_next,
        .feed_meta = dk_feed_str,
        .feed_info = dk_feed_str,
        .handle_error = minor ? dk_handle_error : NULL,
    };
    k->out = o && o->out ? o->out : stdout;
    k->verbose = o ? o->verbose : 0;
}

static const char *dk_handle_msg_of(dk_host *k, const void *handle)
{
    const char *m = NULL;
    dk_lock(k);
    for (int i = 0; i < k->nhmsg; i++)
        if (k->hmsg[i].handle == handle)
            m = k->hmsg[i].msg;
    dk_unlock(k);
    return m;
}

/* ---- one check's context ---------------------------------------------------- */

typedef struct dk_ctx {
    const arca_plugin *p;
    const arca_destination_ops *d;
    const void *config;
    const arca_destkit_opts *o;
    char scope[DK_PREFIX_MAX + 16]; /* "<prefix>.<tag>.": every name and listing of the check */
    dk_host host;
    void *inst;
    int failed, skipped;
    char why[2048];
    /* what to undo whatever happens: open puts, open gets, stored names, memory */
    void *puts[DK_TRACK], *gets[DK_TRACK], *mem[DK_TRACK];
    char names[DK_TRACK][256];
    int nnames;
} dk_ctx;

/* The plugin's last error message, copied under the lock (a plugin thread may be writing it). */
static void dk_last(dk_ctx *c, char *out, size_t cap)
{
    dk_lock(&c->host);
    snprintf(out, cap, "%s", c->host.last);
    dk_unlock(&c->host);
}

static int dk_nerrors(dk_ctx *c)
{
    dk_lock(&c->host);
    int n = c->host.nerrors;
    dk_unlock(&c->host);
    return n;
}

static void dk_forget_last(dk_ctx *c)
{
    dk_lock(&c->host);
    c->host.last[0] = '\0';
    dk_unlock(&c->host);
}

static void dk_failf(dk_ctx *c, const char *fmt, ...) ARCA_PRINTF(2, 3);
static void dk_failf(dk_ctx *c, const char *fmt, ...)
{
    char last[DK_MSG];
    va_list ap;
    size_t n;
    if (c->failed)
        return;
    c->failed = 1;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    n = strlen(c->why);
    dk_last(c, last, sizeof last);
    if (last[0] && n + 20 < sizeof c->why)
        snprintf(c->why + n, sizeof c->why - n, " (plugin's last error: %s)", last);
}

/* The check fails (first reason wins) and returns. Everything it opened or
 * stored is undone by dk_finish. */
#define DK_REQUIRE(c, cond, ...)      \
    do {                              \
        if (!(cond)) {                \
            dk_failf((c), __VA_ARGS__); \
            return;                   \
        }                             \
    } while (0)

static void dk_track(void **slots, void *x)
{
    for (int i = 0; i < DK_TRACK; i++)
        if (!slots[i]) {
            slots[i] = x;
            return;
        }
}

static void dk_untrack(void **slots, void *x)
{
    for (int i = 0; i < DK_TRACK; i++)
        if (slots[i] == x) {
            slots[i] = NULL;
            return;
        }
}

static void *dk_alloc(dk_ctx *c, size_t n)
{
    void *m = malloc(n ? n : 1);
    if (m)
        dk_track(c->mem, m);
    return m;
}

/* "<prefix>.<tag>.<rest>" into buf. */
static const char *dk_name(dk_ctx *c, char *buf, size_t cap, const char *rest)
{
    size_t a = strlen(c->scope), b = strlen(rest);
    if (a + b >= cap) /* the kit's own names fit: prefix is at most DK_PREFIX_MAX */
        b = a < cap ? cap - 1 - a : 0;
    if (a >= cap)
        a = cap - 1;
    memcpy(buf, c->scope, a);
    memcpy(buf + a, rest, b);
    buf[a + b] = '\0';
    return buf;
}

static void dk_remember(dk_ctx *c, const char *name)
{
    for (int i = 0; i < c->nnames; i++)
        if (!strcmp(c->names[i], name))
            return;
    if (c->nnames < DK_TRACK)
        snprintf(c->names[c->nnames++], sizeof c->names[0], "%s", name);
}

static unsigned char dk_byte(uint64_t i, unsigned seed)
{
    return (unsigned char)(((i * 2654435761u) >> 13) ^ (i >> 20) ^ seed);
}

static unsigned char *dk_pattern(dk_ctx *c, uint64_t n, unsigned seed)
{
    unsigned char *b = dk_alloc(c, (size_t)n);
    for (uint64_t i = 0; b && i < n; i++)
        b[i] = dk_byte(i, seed);
    return b;
}

/* ---- operations through the plugin, tracked ------------------------------- */

static int dk_put_open(dk_ctx *c, const char *name, void **put)
{
    *put = NULL;
    int rc = c->d->put_open(c->inst, name, put);
    if (rc == ARCA_OK)
        dk_track(c->puts, *put);
    return rc;
}

/* `sizes` cycles through the write sizes; NULL: one write of everything. */
static int dk_put_write(dk_ctx *c, void *put, const unsigned char *data, uint64_t n, const size_t *sizes)
{
    uint64_t off = 0;
    for (size_t k = 0; off < n; k++) {
        size_t step = sizes ? sizes[k % 6] : (size_t)(n - off);
        if (step > n - off)
            step = (size_t)(n - off);
        int rc = c->d->put_write(put, data + off, step);
        if (rc != ARCA_OK)
            return rc;
        off += step;
    }
    return ARCA_OK;
}

static int dk_put_commit(dk_ctx *c, void *put, const char *name)
{
    dk_untrack(c->puts, put);
    dk_remember(c, name); /* even on failure: a broken commit may have left it */
    return c->d->put_commit(put);
}

static void dk_put_abort(dk_ctx *c, void *put)
{
    dk_untrack(c->puts, put);
    c->d->put_abort(put);
}

/* A whole object in one go; its name is remembered for cleanup. */
static int dk_store(dk_ctx *c, const char *name, const unsigned char *data, uint64_t n)
{
    void *put;
    int rc = dk_put_open(c, name, &put);
    if (rc)
        return rc;
    if (n && (rc = c->d->put_write(put, data, (size_t)n))) {
        dk_put_abort(c, put);
        return rc;
    }
    return dk_put_commit(c, put, name);
}

/* Reads [off, off+len) (len 0: to the end) with read sizes that change
 * from call to call; the bytes in a tracked buffer. */
static int dk_fetch(dk_ctx *c, const char *name, uint64_t off, uint64_t len, unsigned char **data, size_t *n)
{
    static const size_t caps[] = {1, 4097, 65537, 1048573, 3, 333331};
    size_t cap = 1 << 16, have = 0;
    unsigned char *buf = malloc(cap);
    void *get = NULL;
    int rc;

    *data = NULL;
    *n = 0;
    if (!buf)
        return ARCA_ENOMEM;
    if ((rc = c->d->get_open(c->inst, name, off, len, &get))) {
        free(buf);
        return rc;
    }
    dk_track(c->gets, get);
    for (size_t k = 0;; k++) {
        size_t want = caps[k % 6], got = 0;
        if (cap - have < want) {
            size_t ncap = cap;
            while (ncap - have < want)
                ncap *= 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = ARCA_ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        if ((rc = c->d->get_read(get, buf + have, want, &got)))
            break;
        if (got > want) {
            rc = ARCA_EFAIL;
            dk_failf(c, "get_read of '%s' returned %zu bytes for a buffer of %zu", name, got, want);
            break;
        }
        if (!got)
            break;
        have += got;
    }
    dk_untrack(c->gets, get);
    c->d->get_close(get);
    if (rc) {
        free(buf);
        return rc;
    }
    dk_track(c->mem, buf);
    *data = buf;
    *n = have;
    return ARCA_OK;
}

typedef struct dk_listing {
    int n, stop_at, stop_value;
    char names[8][256];
    uint64_t sizes[8];
    int dotted;            /* names starting with '.' */
    const char *contains;  /* count names containing this */
    int containing;
} dk_listing;

static int dk_collect(void *ud, const arca_object_stat *st)
{
    dk_listing *l = ud;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", st->name ? st->name : "(null)");
        l->sizes[l->n] = st->size;
    }
    l->n++;
    if (st->name && st->name[0] == '.')
        l->dotted++;
    if (l->contains && st->name && strstr(st->name, l->contains))
        l->containing++;
    return l->stop_at && l->n >= l->stop_at ? l->stop_value : 0;
}

static int dk_list(dk_ctx *c, const char *prefix, dk_listing *l)
{
    int stop_at = l->stop_at, stop_value = l->stop_value;
    const char *contains = l->contains;
    memset(l, 0, sizeof *l);
    l->stop_at = stop_at;
    l->stop_value = stop_value;
    l->contains = contains;
    return c->d->list(c->inst, prefix, dk_collect, l);
}

/* The index of `name` in a listing, -1 if absent. */
static int dk_listed(const dk_listing *l, const char *name)
{
    for (int i = 0; i < l->n && i < 8; i++)
        if (!strcmp(l->names[i], name))
            return i;
    return -1;
}

/* ---- the checks ------------------------------------------------------------- */

static const size_t dk_odd_writes[6] = {1, 4093, 65521, 1048583, 7, 333333};

static void ck_descriptor(dk_ctx *c)
{
    const arca_plugin *p = c->p;
    const arca_destination_ops *d = p->destination;
    DK_REQUIRE(c, p->abi_major == ARCA_ABI_MAJOR, "abi_major is %u, this kit speaks %d", p->abi_major,
               ARCA_ABI_MAJOR);
    DK_REQUIRE(c, p->size >= offsetof(arca_plugin, restore_config_size) + sizeof(size_t),
               "descriptor size %u is smaller than ABI 1.0's", p->size);
    DK_REQUIRE(c, p->roles & ARCA_ROLE_DESTINATION, "roles 0x%x lack ARCA_ROLE_DESTINATION", p->roles);
    DK_REQUIRE(c, p->name && *p->name && p->version && p->create && p->destroy,
               "name, version, create or destroy is missing");
    DK_REQUIRE(c, d != NULL, "destination ops are NULL");
    DK_REQUIRE(c, d->size >= offsetof(arca_destination_ops, remove) + sizeof(void *),
               "destination ops size %u is smaller than ABI 1.0's", d->size);
    DK_REQUIRE(c, d->put_open && d->put_write && d->put_commit && d->put_abort && d->get_open && d->get_read &&
                      d->get_close && d->list && d->remove,
               "one of the nine required operations is NULL");
}

static void ck_invisible_until_commit(dk_ctx *c)
{
    char name[256];
    unsigned char *data = dk_pattern(c, 200000, 1), *back;
    size_t n;
    void *put;
    dk_listing l = {0};
    int rc;

    dk_name(c, name, sizeof name, "x.arca");
    DK_REQUIRE(c, data, "out of memory");
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, data, 200000, dk_odd_writes)) == ARCA_OK, "put_write: %d", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 0, "list shows %d object(s) (first '%s') before the commit", l.n, l.names[0]);
    l.contains = name; /* a temporary is typically named after its object */
    DK_REQUIRE(c, (rc = dk_list(c, "", &l)) == ARCA_OK, "list of everything: %d", rc);
    DK_REQUIRE(c, l.containing == 0 && l.dotted == 0,
               "before the commit the full listing has %d name(s) containing '%s' and %d starting with '.'",
               l.containing, name, l.dotted);
    l.contains = NULL;
    rc = dk_fetch(c, name, 0, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "get before the commit gave %d, not ARCA_ENOENT (%zu bytes)", rc, n);
    DK_REQUIRE(c, (rc = dk_put_commit(c, put, name)) == ARCA_OK, "put_commit: %d", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && dk_listed(&l, name) == 0 && l.sizes[0] == 200000,
               "after the commit list shows %d object(s), not '%s' of 200000 bytes", l.n, name);
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get after the commit: %d", rc);
    DK_REQUIRE(c, n == 200000 && !memcmp(back, data, n), "get after the commit read %zu bytes, or other bytes", n);
}

/* A write-once store: the second commit of a name is refused, the first object stays. */
static void ck_commit_write_once(dk_ctx *c, const char *name, const unsigned char *v1, const unsigned char *v2)
{
    unsigned char *back;
    size_t n;
    void *put;
    dk_listing l = {0};
    int rc;
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open of the second version: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, v2, 1234, NULL)) == ARCA_OK, "put_write: %d", rc);
    rc = dk_put_commit(c, put, name);
    const char *msg = dk_handle_msg_of(&c->host, put);
    DK_REQUIRE(c, rc == ARCA_EEXIST, "a write-once store's second commit of '%s' gave %d, not ARCA_EEXIST", name, rc);
    DK_REQUIRE(c, msg && strstr(msg, name), "the refused commit's message does not name the object: '%s'",
               msg ? msg : "(none on its handle)");
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get after the refused commit: %d", rc);
    DK_REQUIRE(c, n == 70000 && !memcmp(back, v1, n), "after the refused commit get read %zu bytes, not the first "
               "version's 70000", n);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && l.sizes[0] == 70000, "list shows %d object(s), first of %llu bytes: want one of 70000",
               l.n, (unsigned long long)l.sizes[0]);
    l.contains = name;
    DK_REQUIRE(c, (rc = dk_list(c, "", &l)) == ARCA_OK, "list of everything: %d", rc);
    DK_REQUIRE(c, l.containing == 1 && l.dotted == 0, "after the refused commit the full listing has %d name(s) "
               "containing '%s' and %d starting with '.'", l.containing, name, l.dotted);
}

static void ck_commit_replaces(dk_ctx *c)
{
    char name[256];
    unsigned char *v1 = dk_pattern(c, 70000, 2), *v2 = dk_pattern(c, 1234, 3), *back;
    size_t n;
    void *put;
    dk_listing l = {0};
    int rc;

    dk_name(c, name, sizeof name, "same.manifest.json");
    DK_REQUIRE(c, v1 && v2, "out of memory");
    DK_REQUIRE(c, (rc = dk_store(c, name, v1, 70000)) == ARCA_OK, "storing the first version: %d", rc);
    if (c->o && ARCA_HAS(arca_destkit_opts, c->o, write_once) && c->o->write_once) {
        ck_commit_write_once(c, name, v1, v2);
        return;
    }
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open of the second version: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, v2, 1234, NULL)) == ARCA_OK, "put_write: %d", rc);
    /* until the commit, readers see the old object whole */
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get during the second put: %d", rc);
    DK_REQUIRE(c, n == 70000 && !memcmp(back, v1, n), "during the second put get read %zu bytes, not the first "
               "version's 70000", n);
    DK_REQUIRE(c, (rc = dk_put_commit(c, put, name)) == ARCA_OK, "put_commit of the second version: %d", rc);
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get after the commit: %d", rc);
    DK_REQUIRE(c, n == 1234 && !memcmp(back, v2, n), "after the commit get read %zu bytes, not the second "
               "version's 1234", n);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && l.sizes[0] == 1234, "list shows %d object(s), first of %llu bytes: want one of 1234",
               l.n, (unsigned long long)l.sizes[0]);
}

static void ck_abort(dk_ctx *c)
{
    char name[256];
    unsigned char *data = dk_pattern(c, 100000, 4), *back;
    size_t n;
    void *put;
    dk_listing l = {0};
    int rc;

    dk_name(c, name, sizeof name, "gone.arca");
    DK_REQUIRE(c, data, "out of memory");
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, data, 100000, dk_odd_writes)) == ARCA_OK, "put_write: %d", rc);
    dk_put_abort(c, put);
    rc = dk_fetch(c, name, 0, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "get after the abort gave %d, not ARCA_ENOENT", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 0, "after the abort list shows '%s'", l.names[0]);
    l.contains = name;
    DK_REQUIRE(c, (rc = dk_list(c, "", &l)) == ARCA_OK, "list of everything: %d", rc);
    DK_REQUIRE(c, l.containing == 0 && l.dotted == 0,
               "after the abort the full listing has %d name(s) containing '%s' and %d starting with '.'",
               l.containing, name, l.dotted);
}

static void ck_empty(dk_ctx *c)
{
    char name[256];
    unsigned char *back;
    size_t n = 99;
    dk_listing l = {0};
    int rc;

    dk_name(c, name, sizeof name, "empty.manifest.json");
    DK_REQUIRE(c, (rc = dk_store(c, name, NULL, 0)) == ARCA_OK, "put of an empty object: %d", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && l.sizes[0] == 0, "list shows %d object(s), first of %llu bytes", l.n,
               (unsigned long long)l.sizes[0]);
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get: %d", rc);
    DK_REQUIRE(c, n == 0, "get read %zu bytes of an empty object", n);
}

static void ck_big(dk_ctx *c)
{
    char name[256];
    const uint64_t size = c->o && c->o->big_size ? c->o->big_size : DK_BIG_DEFAULT;
    unsigned char *data = dk_pattern(c, size, 5), *back;
    size_t n, at = 0;
    void *put;
    dk_listing l = {0};
    int rc;

    dk_name(c, name, sizeof name, "big.arca");
    DK_REQUIRE(c, data, "out of memory for %llu bytes", (unsigned long long)size);
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, data, size, dk_odd_writes)) == ARCA_OK, "put_write: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_commit(c, put, name)) == ARCA_OK, "put_commit: %d", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && l.sizes[0] == size, "list shows %d object(s), first of %llu bytes, not %llu", l.n,
               (unsigned long long)l.sizes[0], (unsigned long long)size);
    DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK, "get: %d", rc);
    while (at < n && at < size && back[at] == data[at])
        at++;
    DK_REQUIRE(c, n == size && at == n, "read back %zu of %llu bytes, the first difference at byte %zu", n,
               (unsigned long long)size, at);
}

static void ck_ranges(dk_ctx *c)
{
    char name[256];
    const uint64_t size = c->o && c->o->big_size ? c->o->big_size : DK_BIG_DEFAULT;
    unsigned char *data = dk_pattern(c, size, 6), *back;
    const uint64_t mid = size / 2 - 3, midlen = size / 2 < 1048583 ? size / 2 : 1048583;
    const struct {
        uint64_t off, len, want;
    } r[] = {
        {0, 1, 1}, {7, 5, 5}, {mid, midlen, midlen}, {size - 10, 0, 10}, {size - 1, 1, 1}, {size, 0, 0},
    };
    size_t n;
    void *put;
    int rc;

    dk_name(c, name, sizeof name, "ranges.arca");
    DK_REQUIRE(c, data && size > 20, "out of memory, or big_size below 20");
    DK_REQUIRE(c, (rc = dk_put_open(c, name, &put)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, data, size, NULL)) == ARCA_OK, "put_write: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_commit(c, put, name)) == ARCA_OK, "put_commit: %d", rc);
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        DK_REQUIRE(c, (rc = dk_fetch(c, name, r[i].off, r[i].len, &back, &n)) == ARCA_OK,
                   "get of offset %llu length %llu: %d", (unsigned long long)r[i].off, (unsigned long long)r[i].len,
                   rc);
        DK_REQUIRE(c, n == r[i].want && (!n || !memcmp(back, data + r[i].off, n)),
                   "get of offset %llu length %llu read %zu bytes (want %llu), or other bytes",
                   (unsigned long long)r[i].off, (unsigned long long)r[i].len, n, (unsigned long long)r[i].want);
    }
}

static void ck_past_end(dk_ctx *c)
{
    char name[256];
    unsigned char *back;
    size_t n;
    int rc;

    dk_name(c, name, sizeof name, "short.arca");
    DK_REQUIRE(c, (rc = dk_store(c, name, (const unsigned char *)"0123456789", 10)) == ARCA_OK, "put: %d", rc);
    rc = dk_fetch(c, name, 5, 6, &back, &n);
    DK_REQUIRE(c, rc == ARCA_EINTEGRITY, "offset 5 length 6 of a 10-byte object gave %d (%zu bytes), not "
               "ARCA_EINTEGRITY", rc, n);
    rc = dk_fetch(c, name, 11, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_EINTEGRITY, "offset 11 of a 10-byte object gave %d, not ARCA_EINTEGRITY", rc);
}

static void ck_get_missing(dk_ctx *c)
{
    char name[256], last[DK_MSG];
    unsigned char *back;
    size_t n;
    dk_name(c, name, sizeof name, "nope.arca");
    dk_forget_last(c);
    int rc = dk_fetch(c, name, 0, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "get_open gave %d, not ARCA_ENOENT", rc);
    dk_last(c, last, sizeof last);
    DK_REQUIRE(c, strstr(last, name) != NULL, "the error does not name '%s': '%s'", name, last);
}

static void ck_remove_missing(dk_ctx *c)
{
    char name[256];
    dk_name(c, name, sizeof name, "nope.arca");
    int rc = c->d->remove(c->inst, name);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "remove gave %d, not ARCA_ENOENT", rc);
}

static void ck_remove(dk_ctx *c)
{
    char a[256], b[256];
    unsigned char *back;
    size_t n;
    dk_listing l = {0};
    int rc;

    dk_name(c, a, sizeof a, "d.arca");
    dk_name(c, b, sizeof b, "d.manifest.json");
    DK_REQUIRE(c, (rc = dk_store(c, a, (const unsigned char *)"abc", 3)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_store(c, b, (const unsigned char *)"{}", 2)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = c->d->remove(c->inst, a)) == ARCA_OK, "remove: %d", rc);
    rc = dk_fetch(c, a, 0, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "get after remove gave %d, not ARCA_ENOENT", rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && dk_listed(&l, b) == 0, "list after remove shows %d object(s), first '%s'", l.n,
               l.names[0]);
}

static void ck_list_prefix(dk_ctx *c)
{
    char a1[256], a2[256], b1[256], a3[256], pa[256];
    unsigned char *data = dk_pattern(c, 5000, 7);
    void *put;
    dk_listing l = {0};
    int rc;

    dk_name(c, a1, sizeof a1, "a1.arca");
    dk_name(c, a2, sizeof a2, "a2.manifest.json");
    dk_name(c, b1, sizeof b1, "b1.arca");
    dk_name(c, a3, sizeof a3, "a3.arca");
    dk_name(c, pa, sizeof pa, "a");
    DK_REQUIRE(c, data, "out of memory");
    DK_REQUIRE(c, (rc = dk_store(c, a1, data, 11)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_store(c, a2, data, 22)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_store(c, b1, data, 33)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_open(c, a3, &put)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_write(c, put, data, 5000, NULL)) == ARCA_OK, "put_write: %d", rc);
    DK_REQUIRE(c, (rc = dk_list(c, pa, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 2, "list of prefix '%s' shows %d object(s), want the 2 committed ones", pa, l.n);
    int i1 = dk_listed(&l, a1), i2 = dk_listed(&l, a2);
    DK_REQUIRE(c, i1 >= 0 && i2 >= 0 && l.sizes[i1] == 11 && l.sizes[i2] == 22,
               "list of prefix '%s' shows '%s' and '%s', want '%s' (11 bytes) and '%s' (22 bytes)", pa, l.names[0],
               l.names[1], a1, a2);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 3 && dk_listed(&l, b1) >= 0, "list of '%s' shows %d object(s), want 3", c->scope, l.n);
    dk_put_abort(c, put);
}

static void ck_list_stop(dk_ctx *c)
{
    char name[256];
    dk_listing l = {0};
    int rc;
    for (int i = 0; i < 3; i++) {
        char rest[16];
        snprintf(rest, sizeof rest, "s%d.arca", i);
        DK_REQUIRE(c, (rc = dk_store(c, dk_name(c, name, sizeof name, rest), (const unsigned char *)"x", 1)) == 0,
                   "put: %d", rc);
    }
    l.stop_at = 1;
    l.stop_value = 1;
    rc = dk_list(c, c->scope, &l);
    DK_REQUIRE(c, rc == ARCA_OK && l.n == 1, "a callback returning 1 at the first object: list gave %d after %d "
               "call(s), want ARCA_OK after 1", rc, l.n);
    l.stop_value = -42;
    rc = dk_list(c, c->scope, &l);
    DK_REQUIRE(c, rc == -42 && l.n == 1, "a callback returning -42 at the first object: list gave %d after %d "
               "call(s), want -42 after 1", rc, l.n);
}

static void ck_refused_names(dk_ctx *c)
{
    static const char *const bad[] = {"a/b", ".hidden", ""};
    char last[DK_MSG];
    dk_listing l = {0};
    int rc;
    l.contains = "hidden";
    for (size_t i = 0; i < 3; i++) {
        void *h = NULL;
        dk_forget_last(c);
        rc = c->d->put_open(c->inst, bad[i], &h);
        if (rc == ARCA_OK)
            dk_track(c->puts, h);
        DK_REQUIRE(c, rc == ARCA_ECONFIG, "put_open('%s') gave %d, not ARCA_ECONFIG", bad[i], rc);
        dk_last(c, last, sizeof last);
        DK_REQUIRE(c, !*bad[i] || strstr(last, bad[i]), "the refusal of '%s' does not name it: '%s'", bad[i], last);
        h = NULL;
        rc = c->d->get_open(c->inst, bad[i], 0, 0, &h);
        if (rc == ARCA_OK)
            dk_track(c->gets, h);
        DK_REQUIRE(c, rc == ARCA_ECONFIG, "get_open('%s') gave %d, not ARCA_ECONFIG", bad[i], rc);
        rc = c->d->remove(c->inst, bad[i]);
        DK_REQUIRE(c, rc == ARCA_ECONFIG, "remove('%s') gave %d, not ARCA_ECONFIG", bad[i], rc);
    }
    DK_REQUIRE(c, (rc = dk_list(c, "", &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.containing == 0, "a refused name shows up in the listing");
}

static void ck_accepted_names(dk_ctx *c)
{
    /* every character class the core's names use, and a long pipeline name */
    static const char *const rest[] = {
        "Nightly_DB-2.20261129T170128.123Z-0a1b2c.arca",
        "Nightly_DB-2.20261129T170128.123Z-0a1b2c.manifest.json",
        "a-very-long-pipeline-name-of-the-kind-people-write-when-they-mean-it_0123456789."
        "20261129T170128.123Z-ffffff.manifest.json",
    };
    char name[256];
    unsigned char *back;
    size_t n;
    int rc;
    for (size_t i = 0; i < 3; i++) {
        dk_name(c, name, sizeof name, rest[i]);
        DK_REQUIRE(c, (rc = dk_store(c, name, (const unsigned char *)"ok", 2)) == ARCA_OK, "put of '%s': %d", name,
                   rc);
        DK_REQUIRE(c, (rc = dk_fetch(c, name, 0, 0, &back, &n)) == ARCA_OK && n == 2 && !memcmp(back, "ok", 2),
                   "get of '%s': %d, %zu bytes", name, rc, n);
        DK_REQUIRE(c, (rc = c->d->remove(c->inst, name)) == ARCA_OK, "remove of '%s': %d", name, rc);
    }
}

/* Two puts of one instance in flight, one of them broken by the caller's
 * hook: with handle_error each failure is on its own handle; on a 1.0 host
 * it must still be reported, through error. */
static void dk_inflight(dk_ctx *c, int with_handle_error)
{
    const arca_destkit_opts *o = c->o;
    const uint64_t first = o->break_after ? o->break_after : DK_BREAK_AFTER_DEFAULT, tail = 65536;
    char a[256], b[256], last[DK_MSG];
    unsigned char *data = dk_pattern(c, first + tail, 8), *back;
    void *pa = NULL, *pb = NULL;
    size_t n;
    int rc, errors_before;

    dk_name(c, a, sizeof a, "broken.arca");
    dk_name(c, b, sizeof b, "fine.arca");
    DK_REQUIRE(c, data, "out of memory");
    DK_REQUIRE(c, (rc = dk_put_open(c, a, &pa)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, (rc = dk_put_open(c, b, &pb)) == ARCA_OK, "put_open: %d", rc);
    DK_REQUIRE(c, pa && pb && pa != pb, "the two puts got the handles %p and %p", pa, pb);
    for (uint64_t off = 0; off < first; off += 65536) {
        size_t step = first - off < 65536 ? (size_t)(first - off) : 65536;
        DK_REQUIRE(c, (rc = c->d->put_write(pa, data + off, step)) == ARCA_OK, "put_write to '%s': %d", a, rc);
        DK_REQUIRE(c, (rc = c->d->put_write(pb, data + off, step)) == ARCA_OK, "put_write to '%s': %d", b, rc);
    }
    errors_before = dk_nerrors(c);
    DK_REQUIRE(c, (rc = o->break_put(o->ud, a)) == 0, "break_put('%s') could not arm the failure: %d", a, rc);
    rc = c->d->put_write(pa, data + first, (size_t)tail);
    if (rc != ARCA_OK)
        dk_put_abort(c, pa);
    else
        rc = dk_put_commit(c, pa, a);
    DK_REQUIRE(c, rc < 0, "the broken put of '%s' neither failed a write nor its commit", a);
    DK_REQUIRE(c, (rc = c->d->put_write(pb, data + first, (size_t)tail)) == ARCA_OK, "put_write to '%s' after the "
               "other put failed: %d", b, rc);
    DK_REQUIRE(c, (rc = dk_put_commit(c, pb, b)) == ARCA_OK, "put_commit of '%s' after the other put failed: %d", b,
               rc);
    dk_last(c, last, sizeof last);
    if (with_handle_error) {
        const char *ma = dk_handle_msg_of(&c->host, pa), *mb = dk_handle_msg_of(&c->host, pb);
        DK_REQUIRE(c, ma != NULL, "no handle_error message for the failed put of '%s' (error said: '%s')", a, last);
        DK_REQUIRE(c, strstr(ma, a) != NULL, "the failed put's message does not name '%s': '%s'", a, ma);
        DK_REQUIRE(c, mb == NULL, "the put of '%s' that succeeded has a message: '%s'", b, mb ? mb : "");
        DK_REQUIRE(c, dk_nerrors(c) == errors_before, "the failure also went to error, not only to its handle: "
                   "'%s'", last);
    } else {
        DK_REQUIRE(c, dk_nerrors(c) > errors_before, "the failed put of '%s' reported nothing through error", a);
        DK_REQUIRE(c, strstr(last, a) != NULL, "the error does not name '%s': '%s'", a, last);
    }
    DK_REQUIRE(c, (rc = dk_fetch(c, b, 0, 0, &back, &n)) == ARCA_OK, "get of '%s': %d", b, rc);
    DK_REQUIRE(c, n == first + tail && !memcmp(back, data, n), "'%s' reads back as %zu bytes, or other bytes", b, n);
    rc = dk_fetch(c, a, 0, 0, &back, &n);
    DK_REQUIRE(c, rc == ARCA_ENOENT, "the failed put's '%s' is readable (%d)", a, rc);
}

static void ck_inflight(dk_ctx *c)
{
    dk_inflight(c, 1);
}

static void ck_inflight_1_0(dk_ctx *c)
{
    dk_inflight(c, 0);
}

static void ck_remove_many(dk_ctx *c)
{
    char n0[256], n1[256], n2[256], keep[256];
    const char *names[3];
    dk_listing l = {0};
    int rc;

    names[0] = dk_name(c, n0, sizeof n0, "m.arca");
    names[1] = dk_name(c, n1, sizeof n1, "m.manifest.json");
    names[2] = dk_name(c, n2, sizeof n2, "never-stored.arca");
    dk_name(c, keep, sizeof keep, "keep.arca");
    DK_REQUIRE(c, (rc = dk_store(c, n0, (const unsigned char *)"m", 1)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_store(c, n1, (const unsigned char *)"{}", 2)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = dk_store(c, keep, (const unsigned char *)"k", 1)) == ARCA_OK, "put: %d", rc);
    DK_REQUIRE(c, (rc = c->d->remove_many(c->inst, names, 3)) == ARCA_OK, "remove_many with a missing name: %d",
               rc);
    DK_REQUIRE(c, (rc = dk_list(c, c->scope, &l)) == ARCA_OK, "list: %d", rc);
    DK_REQUIRE(c, l.n == 1 && dk_listed(&l, keep) == 0, "after remove_many list shows %d object(s), first '%s'", l.n,
               l.names[0]);
    DK_REQUIRE(c, (rc = c->d->remove_many(c->inst, names, 0)) == ARCA_OK, "remove_many of no names: %d", rc);
}

static void ck_location(dk_ctx *c)
{
    char a[4096], b[4096], small[16];
    void *other = NULL;
    int rc;

    memset(a, 'X', sizeof a);
    DK_REQUIRE(c, (rc = c->d->location(c->inst, a, sizeof a)) == ARCA_OK, "location: %d", rc);
    DK_REQUIRE(c, memchr(a, 0, sizeof a) != NULL && a[0], "location gave no NUL-terminated text");
    DK_REQUIRE(c, (rc = c->p->create(&c->host.host, c->config, &other)) == ARCA_OK, "a second create: %d", rc);
    rc = c->d->location(other, b, sizeof b);
    c->p->destroy(other);
    DK_REQUIRE(c, rc == ARCA_OK && !strcmp(a, b), "two instances of one config give '%s' and '%s'", a, b);
    /* too small a buffer: whatever the status, nothing is written past it */
    memset(small, 'Z', sizeof small);
    rc = c->d->location(c->inst, small, 8);
    DK_REQUIRE(c, !memcmp(small + 8, "ZZZZZZZZ", 8), "location wrote past the 8 bytes it was given");
    DK_REQUIRE(c, rc != ARCA_OK || memchr(small, 0, 8), "location returned ARCA_OK without a NUL within 8 bytes");
}

/* ---- the table -------------------------------------------------------------- */

enum { NEED_NOTHING, NEED_BREAK, NEED_REMOVE_MANY, NEED_LOCATION };

static const struct dk_check {
    const char *name, *tag;
    int need;
    void (*run)(dk_ctx *c);
} dk_checks[] = {
    {"descriptor: a destination with the nine required operations", "descriptor", NEED_NOTHING, ck_descriptor},
    {"put is invisible to list and get until commit", "invisible", NEED_NOTHING, ck_invisible_until_commit},
    {"commit replaces an older object atomically (a write-once store refuses it, keeping the old one whole)",
     "replace", NEED_NOTHING, ck_commit_replaces},
    {"abort leaves nothing visible and no temporary in list", "abort", NEED_NOTHING, ck_abort},
    {"an empty object round-trips", "empty", NEED_NOTHING, ck_empty},
    {"a multi-MiB object written in odd-sized writes reads back byte-identical", "big", NEED_NOTHING, ck_big},
    {"ranged gets: offset/length, length 0 to the end, a slice in the middle", "ranges", NEED_NOTHING, ck_ranges},
    {"a range past the end is ARCA_EINTEGRITY", "pastend", NEED_NOTHING, ck_past_end},
    {"get of a missing object is ARCA_ENOENT naming it", "getmissing", NEED_NOTHING, ck_get_missing},
    {"remove of a missing object is ARCA_ENOENT", "rmmissing", NEED_NOTHING, ck_remove_missing},
    {"remove deletes: get is ARCA_ENOENT and list omits it", "remove", NEED_NOTHING, ck_remove},
    {"list filters by prefix and shows only committed objects", "list", NEED_NOTHING, ck_list_prefix},
    {"list stops early: a positive callback value gives ARCA_OK, a negative one is returned", "stop",
     NEED_NOTHING, ck_list_stop},
    {"refused names (a/b, .hidden, empty) are ARCA_ECONFIG for put, get and remove", "refused", NEED_NOTHING,
     ck_refused_names},
    {"names of [A-Za-z0-9._-] not starting with '.' are accepted", "accepted", NEED_NOTHING, ck_accepted_names},
    {"two puts in flight, one failing: each message on its own handle", "inflight", NEED_BREAK, ck_inflight},
    {"on a 1.0 host (no handle_error) a failing put reports through error", "fallback", NEED_BREAK,
     ck_inflight_1_0},
    {"remove_many removes committed objects and ignores missing names", "many", NEED_REMOVE_MANY, ck_remove_many},
    {"location is one NUL-terminated text per config, never past the buffer", "location", NEED_LOCATION,
     ck_location},
};

#define DK_NCHECKS (sizeof dk_checks / sizeof dk_checks[0])

size_t arca_destkit_count(void)
{
    return DK_NCHECKS;
}

const char *arca_destkit_name(size_t i)
{
    return i < DK_NCHECKS ? dk_checks[i].name : NULL;
}

static int dk_has_remove_many(const arca_plugin *p)
{
    return p->destination && ARCA_HAS(arca_destination_ops, p->destination, remove_many) &&
           p->destination->remove_many;
}

static int dk_has_location(const arca_plugin *p)
{
    return p->destination && ARCA_HAS(arca_destination_ops, p->destination, location) && p->destination->location;
}

int arca_destkit_applies(const arca_plugin *p, size_t i, char *why, size_t cap)
{
    if (i >= DK_NCHECKS) {
        snprintf(why, cap, "no check %zu", i);
        return 0;
    }
    if (dk_checks[i].need == NEED_REMOVE_MANY && !dk_has_remove_many(p)) {
        snprintf(why, cap, "remove_many: not offered (an optional operation)");
        return 0;
    }
    if (dk_checks[i].need == NEED_LOCATION && !dk_has_location(p)) {
        snprintf(why, cap, "location: not offered (an optional operation)");
        return 0;
    }
    return 1;
}

static int dk_valid_prefix(const char *s)
{
    if (!*s || strlen(s) > DK_PREFIX_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* Removes what an interrupted earlier run may have left under this check's names. */
static int dk_sweep_cb(void *ud, const arca_object_stat *st)
{
    dk_ctx *c = ud;
    if (st->name)
        dk_remember(c, st->name);
    return 0;
}

static void dk_finish(dk_ctx *c)
{
    for (int i = 0; i < DK_TRACK; i++) {
        if (c->puts[i])
            c->d->put_abort(c->puts[i]);
        if (c->gets[i])
            c->d->get_close(c->gets[i]);
        free(c->mem[i]);
    }
    if (c->inst) {
        for (int i = 0; i < c->nnames; i++)
            c->d->remove(c->inst, c->names[i]); /* ARCA_ENOENT is fine: it is gone */
        c->p->destroy(c->inst);
    }
}

int arca_destkit_check(const arca_plugin *p, const void *config, const arca_destkit_opts *o, size_t i, char *why,
                       size_t cap)
{
    dk_ctx *c;
    int rc, result;

    if (cap)
        why[0] = '\0';
    if (!o || o->size < sizeof(arca_destkit_opts)) {
        snprintf(why, cap, "the options are not an arca_destkit_opts of this kit (set size)");
        return ARCA_DESTKIT_FAIL;
    }
    if (!arca_destkit_applies(p, i, why, cap))
        return ARCA_DESTKIT_SKIP;
    if (o->prefix && !dk_valid_prefix(o->prefix)) {
        snprintf(why, cap, "prefix '%s' must be 1 to %d of [A-Za-z0-9_-]", o->prefix, DK_PREFIX_MAX);
        return ARCA_DESTKIT_FAIL;
    }
    if (dk_checks[i].need == NEED_BREAK && !o->break_put) {
        snprintf(why, cap, "no failure injection given (arca_destkit_opts.break_put)");
        return ARCA_DESTKIT_SKIP;
    }
    if (!(c = calloc(1, sizeof *c))) {
        snprintf(why, cap, "out of memory");
        return ARCA_DESTKIT_FAIL;
    }
    c->p = p;
    c->d = p->destination;
    c->config = config;
    c->o = o;
    snprintf(c->scope, sizeof c->scope, "%s.%s.", o->prefix ? o->prefix : "destkit", dk_checks[i].tag);
    dk_host_init(&c->host, o, dk_checks[i].run == ck_inflight_1_0 ? 0 : 1);
    if (dk_checks[i].run == ck_descriptor) {
        ck_descriptor(c);
    } else if (!c->d || !p->create) {
        dk_failf(c, "the plugin has no destination ops or no create");
    } else if ((rc = p->create(&c->host.host, config, &c->inst)) != ARCA_OK) {
        c->inst = NULL;
        dk_failf(c, "create failed with %d", rc);
    } else {
        c->d->list(c->inst, c->scope, dk_sweep_cb, c);
        for (int k = 0; k < c->nnames; k++)
            c->d->remove(c->inst, c->names[k]);
        c->nnames = 0;
        dk_forget_last(c);
        dk_checks[i].run(c);
    }
    dk_finish(c);
    result = c->failed ? ARCA_DESTKIT_FAIL : ARCA_DESTKIT_PASS;
    if (c->failed)
        snprintf(why, cap, "%s", c->why);
    free(c);
    return result;
}

int arca_destkit_run(const arca_plugin *p, const void *config, const arca_destkit_opts *o)
{
    FILE *out = o && o->out ? o->out : stdout;
    char why[2048];
    size_t planned = 0, n = 0;
    int failed = 0;

    for (size_t i = 0; i < DK_NCHECKS; i++)
        planned += (size_t)arca_destkit_applies(p, i, why, sizeof why);
    fprintf(out, "# arca destination kit: %s %s\n", p && p->name ? p->name : "?", p && p->version ? p->version : "?");
    fprintf(out, "1..%zu\n", planned);
    for (size_t i = 0; i < DK_NCHECKS; i++) {
        if (!arca_destkit_applies(p, i, why, sizeof why)) {
            fprintf(out, "# %s\n", why);
            continue;
        }
        int r = arca_destkit_check(p, config, o, i, why, sizeof why);
        n++;
        if (r == ARCA_DESTKIT_PASS)
            fprintf(out, "ok %zu - %s\n", n, dk_checks[i].name);
        else if (r == ARCA_DESTKIT_SKIP)
            fprintf(out, "ok %zu - %s # SKIP %s\n", n, dk_checks[i].name, why);
        else
            fprintf(out, "not ok %zu - %s: %s\n", n, dk_checks[i].name, why);
        fflush(out);
        failed += r == ARCA_DESTKIT_FAIL;
    }
    return failed;
}
