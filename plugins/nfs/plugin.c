/* nfs destination plugin: descriptor, option table, and the checks common to
 * both backends (exactly one of path/url, object names); the work is in
 * local.c (a mounted directory) and libnfs.c (nfs:// through libnfs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "nfs.h"
#include "pc_name.h"

#define NFS_PLUGIN_VERSION "1.0.0"

static const arca_option nfsp_options[] = {
    {"path", ARCA_OPT_STRING, 0, offsetof(nfs_config, path), NULL, NULL, 0, 0,
     "existing directory to store backups in (local disk or an NFS mount); exclusive with url"},
    {"url", ARCA_OPT_STRING, 0, offsetof(nfs_config, url), NULL, NULL, 0, 0,
     "nfs://host/export/dir[?uid=N&gid=N&nfsport=N&mountport=N]: NFSv3 through libnfs, no mount needed; exclusive with path"},
    {"fsync", ARCA_OPT_BOOL, 0, offsetof(nfs_config, fsync), "true", NULL, 0, 0,
     "flush each object to stable storage before it becomes visible (false trades crash safety for speed)"},
    {"file_mode", ARCA_OPT_STRING, 0, offsetof(nfs_config, file_mode), "0600", NULL, 0, 0,
     "octal permissions of stored objects, applied exactly (the umask is ignored)"},
    {"timeout", ARCA_OPT_INT, 0, offsetof(nfs_config, timeout), "60", NULL, 0, 3600,
     "url only: seconds before an unanswered NFS call fails (0 waits forever)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

/* The instance the core holds: the chosen backend and its own state. */
typedef struct nfsp_inst {
    const nfs_backend *be;
    void *impl;
    const arca_host *host;
} nfsp_inst;

/* The common name rules (pc_name.h), plus this store's own limit: the
 * temporary `.arca-tmp.NAME.<16 hex>` must fit in a file name. */
static int nfsp_check_name(const arca_host *h, const char *name)
{
    int rc = pc_check_name(h, name);
    if (!rc && strlen(name) > NFS_NAME_MAX) {
        char shown[128];
        pc_name_shown(name, shown, sizeof shown);
        rc = h->error(h, ARCA_ECONFIG, "object name '%s' refused: it is %zu bytes, a file name here allows %zu", shown,
                      strlen(name), (size_t)NFS_NAME_MAX);
    }
    return rc;
}

int nfsp_entry_add(nfs_entries *l, const char *name, uint64_t size, int64_t mtime)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        nfs_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n].name = strdup(name)))
        return -1;
    l->v[l->n].size = size;
    l->v[l->n].mtime = mtime;
    l->n++;
    return 0;
}

static int nfsp_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const nfs_entry *)a)->name, ((const nfs_entry *)b)->name);
}

void nfsp_entries_free(nfs_entries *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int nfsp_entries_emit(nfs_entries *l, arca_list_cb cb, void *ud)
{
    int rc = 0;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, nfsp_entry_cmp);
    for (size_t i = 0; i < l->n; i++) {
        arca_object_stat st = {.name = l->v[i].name, .size = l->v[i].size, .mtime_sec = l->v[i].mtime};
        int r = cb(ud, &st);
        if (r) { /* a stop request; a negative one is the callback's error */
            rc = r < 0 ? r : 0;
            break;
        }
    }
    nfsp_entries_free(l);
    return rc;
}

int nfsp_temp_owner(const char *entry, const char *prefix, char *name, size_t cap)
{
    size_t tl = sizeof(NFS_TMP_PREFIX) - 1, n = strlen(entry);
    if (n < tl + 18 || strncmp(entry, NFS_TMP_PREFIX, tl) || entry[n - 17] != '.' ||
        strspn(entry + n - 16, "0123456789abcdef") != 16)
        return 0;
    size_t nl = n - tl - 17;
    if (nl + 1 > cap)
        return 0;
    memcpy(name, entry + tl, nl);
    name[nl] = 0;
    return !strncmp(name, prefix ? prefix : "", strlen(prefix ? prefix : ""));
}

void nfsp_temp_name(const char *name, char *out, size_t cap)
{
    uint64_t r = 0;
    /* getrandom never fails for 8 bytes once the pool is ready; the fallback
     * only has to differ between puts of one process, which the stack address
     * and the clock give. */
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts;
    }
    snprintf(out, cap, "%s%s.%016llx", NFS_TMP_PREFIX, name, (unsigned long long)r);
}

static int nfsp_parse_mode(const arca_host *h, const char *text, unsigned *mode)
{
    char *end;
    unsigned long v;

    if (!text || !*text || strspn(text, "01234567") != strlen(text))
        return h->error(h, ARCA_ECONFIG, "file_mode '%s' is not an octal mode such as 0600 or 0640",
                        text ? text : "");
    v = strtoul(text, &end, 8);
    if (v > 07777)
        return h->error(h, ARCA_ECONFIG, "file_mode '%s' is larger than 07777", text);
    if (!(v & 0200))
        h->log(h, ARCA_LOG_WARN, "file_mode %s: objects are not writable by their owner", text);
    *mode = (unsigned)v;
    return 0;
}

static int nfsp_create(const arca_host *host, const void *config, void **out)
{
    const nfs_config *cfg = config;
    const int has_path = cfg->path && *cfg->path, has_url = cfg->url && *cfg->url;
    nfs_settings s;
    nfsp_inst *in;
    int rc;

    *out = NULL;
    if (has_path == has_url)
        return host->error(host, ARCA_ECONFIG,
                           has_path ? "both `path` and `url` are set: keep exactly one"
                                    : "neither `path` nor `url` is set: give exactly one "
                                      "(path = /mounted/dir or url = nfs://host/export/dir)");
    s.fsync = cfg->fsync ? 1 : 0;
    if ((rc = nfsp_parse_mode(host, cfg->file_mode ? cfg->file_mode : "0600", &s.mode)))
        return rc;
    if (cfg->timeout < 0 || cfg->timeout > 3600)
        return host->error(host, ARCA_ECONFIG, "timeout %lld is outside 0..3600 seconds",
                           (long long)cfg->timeout);
    s.timeout_ms = cfg->timeout ? (int)cfg->timeout * 1000 : -1;

    if (!(in = calloc(1, sizeof *in)))
        return host->error(host, ARCA_ENOMEM, "out of memory");
    in->host = host;
    in->be = has_path ? &nfsl_backend : &nfsn_backend;
    if ((rc = in->be->create(host, has_path ? cfg->path : cfg->url, &s, &in->impl))) {
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

static void nfsp_destroy(void *inst)
{
    nfsp_inst *in = inst;
    if (!in)
        return;
    in->be->destroy(in->impl);
    free(in);
}

/* ---- routing: validate names here once, then hand over to the backend ---- */

static int nfsp_put_open(void *inst, const char *name, void **put)
{
    nfsp_inst *in = inst;
    int rc;
    *put = NULL;
    if ((rc = nfsp_check_name(in->host, name)))
        return rc;
    return in->be->ops->put_open(in->impl, name, put);
}

static int nfsp_put_write(void *put, const void *buf, size_t len)
{
    return ((nfs_handle *)put)->ops->put_write(put, buf, len);
}

static int nfsp_put_commit(void *put)
{
    return ((nfs_handle *)put)->ops->put_commit(put);
}

static void nfsp_put_abort(void *put)
{
    if (put)
        ((nfs_handle *)put)->ops->put_abort(put);
}

static int nfsp_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **get)
{
    nfsp_inst *in = inst;
    int rc;
    *get = NULL;
    if ((rc = nfsp_check_name(in->host, name)))
        return rc;
    if (length && offset + length < offset)
        return in->host->error(in->host, ARCA_ECONFIG, "read range of '%s' overflows", name);
    return in->be->ops->get_open(in->impl, name, offset, length, get);
}

static int nfsp_get_read(void *get, void *buf, size_t cap, size_t *got)
{
    return ((nfs_handle *)get)->ops->get_read(get, buf, cap, got);
}

static void nfsp_get_close(void *get)
{
    if (get)
        ((nfs_handle *)get)->ops->get_close(get);
}

static int nfsp_list(void *inst, const char *prefix, arca_list_cb cb, void *ud)
{
    nfsp_inst *in = inst;
    int rc;
    if ((rc = pc_check_prefix(in->host, prefix)))
        return rc;
    return in->be->ops->list(in->impl, prefix ? prefix : "", cb, ud);
}

static int nfsp_remove(void *inst, const char *name)
{
    nfsp_inst *in = inst;
    int rc;
    if ((rc = nfsp_check_name(in->host, name)))
        return rc;
    return in->be->ops->remove(in->impl, name);
}

static int nfsp_location(void *inst, char *buf, size_t cap)
{
    nfsp_inst *in = inst;
    return in->be->ops->location(in->impl, buf, cap);
}

static int nfsp_cleanup(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud)
{
    nfsp_inst *in = inst;
    return in->be->ops->cleanup(in->impl, prefix ? prefix : "", older_than, dry_run, cb, ud);
}

static const arca_destination_ops nfsp_destination_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = nfsp_put_open,
    .put_write = nfsp_put_write,
    .put_commit = nfsp_put_commit,
    .put_abort = nfsp_put_abort,
    .get_open = nfsp_get_open,
    .get_read = nfsp_get_read,
    .get_close = nfsp_get_close,
    .list = nfsp_list,
    .remove = nfsp_remove,
    .remove_many = NULL,
    .location = nfsp_location,
    .cleanup = nfsp_cleanup,
};

static const arca_plugin nfsp_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_DESTINATION,
    .name = "nfs",
    .version = NFS_PLUGIN_VERSION,
    .description = "store backups in a directory: a mounted path, or NFSv3 by URL without a mount",
    .options = nfsp_options,
    .config_size = sizeof(nfs_config),
    .create = nfsp_create,
    .destroy = nfsp_destroy,
    .destination = &nfsp_destination_ops,
};

ARCA_PLUGIN_DEFINE(nfsp_plugin)
