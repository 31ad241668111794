/* The catalogue (see catalog.h): naming, listing, resolving and loading backups. */
#include "catalog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dest.h"
#include "names.h"

#define HEAD_FIRST (64u << 10) /* a catalogue's header and totals fit in this, nearly always */
#define HEAD_READERS 8         /* catalogue starts read at once: a listing is latency, not bandwidth */

const char *pipeline_name_problem(const char *name)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    size_t n = name ? strlen(name) : 0;
    if (!n || n > 64)
        return "must be 1 to 64 characters";
    if (!strchr(first, name[0]) || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
        return "may use only letters, digits, '_', '-' and '.' (not first), since it names the backup's objects";
    return NULL;
}

char *cat_archive_name(const char *pl, const char *id)
{
    return pl ? xasprintf("%s.%s.arca", pl, id) : xasprintf("%s.arca", id);
}

char *cat_manifest_name(const char *pl, const char *id)
{
    return pl ? xasprintf("%s.%s.manifest.json", pl, id) : xasprintf("%s.manifest.json", id);
}

char *cat_entry_archive(const cat_entry *e) { return cat_archive_name(e->pipeline, e->id); }
char *cat_entry_manifest(const cat_entry *e) { return cat_manifest_name(e->pipeline, e->id); }

void cat_entry_clear(cat_entry *e)
{
    free(e->pipeline);
    free(e->owner);
    json_decref(e->header);
    json_decref(e->totals);
    memset(e, 0, sizeof *e);
}

void cat_list_free(cat_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        cat_entry_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- listing one destination -------------------------------------------------- */

typedef struct scan {
    cat_list *l;
    size_t dest;
} scan;

/* "P.ID" or "ID" -> pipeline (NULL for a format-1 name) and id; -1 if neither. */
static int split_stem(const char *stem, size_t len, char **pl, char *id)
{
    if (len < 32) {
        /* a format-1 name: the id alone */
        char buf[32];
        memcpy(buf, stem, len);
        buf[len] = 0;
        if (backup_id_valid(buf)) {
            *pl = NULL;
            strcpy(id, buf);
            return 0;
        }
    }
    for (size_t idl = 27; idl >= 23; idl -= 4) {
        if (len < idl + 2 || stem[len - idl - 1] != '.')
            continue;
        char buf[32];
        memcpy(buf, stem + len - idl, idl);
        buf[idl] = 0;
        char *p = strndup(stem, len - idl - 1);
        if (backup_id_valid(buf) && !pipeline_name_problem(p)) {
            *pl = p;
            strcpy(id, buf);
            return 0;
        }
        free(p);
    }
    return -1;
}

static int scan_cb(void *ud, const arca_object_stat *st)
{
    scan *s = ud;
    static const char mf[] = ".manifest.json", ar[] = ".arca";
    size_t n = strlen(st->name);
    int is_mf = n > sizeof mf - 1 && !strcmp(st->name + n - (sizeof mf - 1), mf);
    int is_ar = n > sizeof ar - 1 && !strcmp(st->name + n - (sizeof ar - 1), ar);
    if (!is_mf && !is_ar)
        return 0;
    cat_entry e = {0};
    if (split_stem(st->name, n - (is_mf ? sizeof mf - 1 : sizeof ar - 1), &e.pipeline, e.id))
        return 0; /* not a backup's name: someone else's object */
    e.dest = s->dest;
    if (is_mf)
        e.manifest_size = st->size + 1; /* +1: present, even when empty; undone when merging */
    else
        e.archive_size = st->size, e.has_archive = 1;
    cat_list *l = s->l;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = e;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const cat_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    if (x->dest != y->dest)
        return x->dest < y->dest ? -1 : 1;
    return strcmp(x->pipeline ? x->pipeline : "", y->pipeline ? y->pipeline : "");
}

/* Pairs each catalogue with its archive; a catalogue is what makes a backup. */
static void merge(cat_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, entry_cmp);
    size_t w = 0;
    for (size_t i = 0; i < l->n;) {
        cat_entry e = l->v[i];
        size_t j = i + 1;
        for (; j < l->n && !entry_cmp(&l->v[j], &e); j++) {
            if (l->v[j].manifest_size)
                e.manifest_size = l->v[j].manifest_size;
            if (l->v[j].has_archive)
                e.archive_size = l->v[j].archive_size, e.has_archive = 1;
            free(l->v[j].pipeline);
        }
        if (e.manifest_size) {
            e.manifest_size--;
            l->v[w++] = e;
        } else {
            free(e.pipeline);
        }
        i = j;
    }
    l->n = w;
}

static int scan_dest(pipeline *p, size_t di, cat_list *out, char **err)
{
    scan s = {out, di};
    size_t before = out->n;
    int rc = dest_list(p->dests[di], "", scan_cb, &s, err);
    if (rc != ARCA_OK) {
        for (size_t i = before; i < out->n; i++)
            cat_entry_clear(&out->v[i]);
        out->n = before;
    }
    return rc;
}

/* Header and totals from the start of an entry's catalogue. */
static int read_head(pipeline *p, cat_entry *e, char **err)
{
    inst *d = p->dests[e->dest];
    char *name = cat_entry_manifest(e), *where = xasprintf("%s: %s", d->label, name);
    uint64_t want = e->manifest_size < HEAD_FIRST ? e->manifest_size : HEAD_FIRST;
    int rc;
    for (;;) {
        int fd = -1;
        uint64_t len = 0;
        rc = dest_fetch(d, name, 0, want, &fd, &len, err);
        if (rc != ARCA_OK)
            break;
        char *e2 = NULL;
        rc = mf_head(fd, 0, len, where, &e->header, &e->totals, &e2) ? ARCA_EINTEGRITY : ARCA_OK;
        close(fd);
        if (rc == ARCA_OK || want >= e->manifest_size || want >= ARCA_MAX_HEADER * 2) {
            if (rc)
                *err = e2;
            else
                free(e2);
            break;
        }
        free(e2); /* a header longer than the first read: read more */
        want = e->manifest_size < ARCA_MAX_HEADER * 2 ? e->manifest_size : ARCA_MAX_HEADER * 2;
    }
    if (rc == ARCA_OK) {
        const char *owner = json_string_value(json_object_get(e->header, "pipeline"));
        e->owner = xstrdup(owner ? owner : "?");
    }
    free(name);
    free(where);
    return rc;
}

/* Reads the heads of the entries for which want() says so, HEAD_READERS at a
 * time; an entry whose head cannot be read keeps header == NULL (warned). */
typedef struct head_pool {
    pipeline *p;
    cat_list *l;
    int (*want)(const cat_entry *e, const void *arg);
    const void *arg;
    size_t next;
    pthread_mutex_t mu;
} head_pool;

static void *head_worker(void *arg)
{
    head_pool *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        size_t i = h->next;
        while (i < h->l->n && !h->want(&h->l->v[i], h->arg))
            i++;
        h->next = i + 1;
        pthread_mutex_unlock(&h->mu);
        if (i >= h->l->n || g_interrupted)
            return NULL;
        char *e2 = NULL;
        if (read_head(h->p, &h->l->v[i], &e2) != ARCA_OK) {
            log_msg(ARCA_LOG_WARN, "%s", e2);
            free(e2);
        }
    }
}

static void read_heads(pipeline *p, cat_list *l, int (*want)(const cat_entry *, const void *), const void *arg)
{
    head_pool h = {p, l, want, arg, 0, PTHREAD_MUTEX_INITIALIZER};
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += want(&l->v[i], arg) != 0;
    pthread_t th[HEAD_READERS];
    int started = 0;
    for (; n > 1 && started < HEAD_READERS && (size_t)started < n; started++)
        if (pthread_create(&th[started], NULL, head_worker, &h))
            break;
    head_worker(&h); /* this thread works too (and alone for a single entry) */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&h.mu);
}

typedef struct want_arg {
    const char *pipeline; /* NULL: every pipeline's */
    int heads;
} want_arg;

/* A format-1 entry is always read (its header says whose it is); others when
 * their heads were asked for. */
static int want_head(const cat_entry *e, const void *arg)
{
    const want_arg *w = arg;
    if (!e->pipeline)
        return 1;
    return w->heads && (!w->pipeline || !strcmp(e->pipeline, w->pipeline));
}

static void keep(cat_list *l, size_t *w, size_t i)
{
    l->v[(*w)++] = l->v[i];
}

int cat_pipeline(pipeline *p, const char *dest, int heads, cat_list *out, char **err)
{
    memset(out, 0, sizeof *out);
    int found = 0;
    for (size_t di = 0; di < p->ndests; di++) {
        if (dest && strcmp(p->dests[di]->name, dest))
            continue;
        found = 1;
        int rc = scan_dest(p, di, out, err);
        if (rc != ARCA_OK) {
            cat_list_free(out);
            return rc;
        }
    }
    if (dest && !found) {
        *err = xasprintf("pipeline '%s' has no destination '%s'", p->name, dest);
        return ARCA_ECONFIG;
    }
    merge(out);
    want_arg wa = {p->name, heads};
    read_heads(p, out, want_head, &wa);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        cat_entry *e = &out->v[i];
        int mine = e->pipeline ? !strcmp(e->pipeline, p->name) : e->owner && !strcmp(e->owner, p->name);
        if (mine)
            keep(out, &w, i);
        else
            cat_entry_clear(e);
    }
    out->n = w;
    return ARCA_OK;
}

int cat_all(pipeline *p, int heads, cat_list *out, char **err)
{
    memset(out, 0, sizeof *out);
    for (size_t di = 0; di < p->ndests; di++) {
        int rc = scan_dest(p, di, out, err);
        if (rc != ARCA_OK) {
            cat_list_free(out);
            return rc;
        }
    }
    merge(out);
    want_arg wa = {NULL, heads};
    read_heads(p, out, want_head, &wa);
    for (size_t i = 0; i < out->n; i++)
        if (!out->v[i].owner && out->v[i].pipeline)
            out->v[i].owner = xstrdup(out->v[i].pipeline);
    return ARCA_OK;
}

int cat_resolve(pipeline *p, const char *want, const char *dest, cat_entry *out, char **err)
{
    int latest = !want || !strcmp(want, "latest");
    memset(out, 0, sizeof *out);
    if (!latest && !backup_id_valid(want)) {
        char *shown = text_printable(want);
        *err = xasprintf("'%s' is not a backup id (see arca list %s)", shown, p->name);
        free(shown);
        return ARCA_ECONFIG;
    }
    cat_list l;
    int rc = cat_pipeline(p, dest, 0, &l, err);
    if (rc != ARCA_OK)
        return rc;
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < l.n; i++) {
        if (latest ? (pick == SIZE_MAX || strcmp(l.v[i].id, l.v[pick].id) > 0) : (!strcmp(l.v[i].id, want) && pick == SIZE_MAX))
            pick = i;
    }
    if (pick == SIZE_MAX) {
        *err = latest ? xasprintf("pipeline '%s' has no backups%s%s", p->name, dest ? " at destination " : "", dest ? dest : "")
                      : xasprintf("backup '%s' not found at %s of pipeline '%s' (see arca list %s)", want,
                                  dest ? "that destination" : "any destination", p->name, p->name);
        cat_list_free(&l);
        return ARCA_EFAIL;
    }
    *out = l.v[pick];
    memset(&l.v[pick], 0, sizeof l.v[pick]);
    cat_list_free(&l);
    return ARCA_OK;
}

int cat_open(pipeline *p, const cat_entry *e, int *fdp, manifest **mp, char **err)
{
    inst *d = p->dests[e->dest];
    char *name = cat_entry_manifest(e), *where = xasprintf("%s: %s", d->label, name);
    int fd = -1, rc;
    uint64_t len = 0;
    manifest *m = NULL;
    /* the listing gave the size: a read of that length needs no HEAD, and a
     * catalogue that is not that long is refused by the reader */
    rc = dest_fetch(d, name, 0, e->manifest_size, &fd, &len, err);
    if (rc == ARCA_OK && !(m = mf_open(fd, 0, len, where, &rc, err)))
        rc = rc ? rc : ARCA_EINTEGRITY;
    if (rc == ARCA_OK) {
        const char *owner = json_string_value(json_object_get(mf_header(m), "pipeline"));
        if (!owner || strcmp(owner, p->name) || strcmp(mf_id(m), e->id)) {
            *err = xasprintf("%s: backup %s belongs to pipeline '%s', not '%s': refused", where, mf_id(m),
                             owner ? owner : "?", p->name);
            rc = ARCA_EINTEGRITY;
        }
    }
    if (rc != ARCA_OK) {
        mf_close(m);
        if (fd >= 0)
            close(fd);
    } else {
        *fdp = fd;
        *mp = m;
    }
    free(name);
    free(where);
    return rc;
}
