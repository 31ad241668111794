/* gcs destination plugin: descriptor, option table, create/destroy (endpoint,
 * settings checked once and offline) and location; the work is in write.c,
 * read.c and catalog.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "gcs.h"

#define GCS_PLUGIN_VERSION "1.0.0"
#define GCS_ENDPOINT_DEFAULT "https://storage.googleapis.com"

static const arca_option gcs_options[] = {
    {"bucket", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(gcs_config, bucket), NULL, NULL, 0, 0,
     "existing bucket that receives the backups"},
    {"prefix", ARCA_OPT_STRING, 0, offsetof(gcs_config, prefix), "", NULL, 0, 0,
     "put before every object name, as is (end it with / for a folder)"},
    {"endpoint", ARCA_OPT_STRING, 0, offsetof(gcs_config, endpoint), GCS_ENDPOINT_DEFAULT, NULL, 0, 0,
     "scheme://host[:port] of the JSON API (a test server, a private endpoint)"},
    {"credentials", ARCA_OPT_STRING, ARCA_OPT_SECRET, offsetof(gcs_config, credentials), NULL, NULL, 0, 0,
     "service-account key (or authorized_user file): its path, or its JSON via credentials_file; unset: "
     "GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials, the metadata server"},
    {"access_token", ARCA_OPT_STRING, ARCA_OPT_SECRET, offsetof(gcs_config, access_token), NULL, NULL, 0, 0,
     "an OAuth access token handed in from outside (used as is, never renewed)"},
    {"user_project", ARCA_OPT_STRING, 0, offsetof(gcs_config, user_project), NULL, NULL, 0, 0,
     "project billed for a requester-pays bucket (userProject)"},
    {"storage_class", ARCA_OPT_STRING, 0, offsetof(gcs_config, storage_class), NULL, NULL, 0, 0,
     "storage class of stored objects (STANDARD, NEARLINE, COLDLINE, ARCHIVE); default: the bucket's"},
    {"kms_key_name", ARCA_OPT_STRING, 0, offsetof(gcs_config, kms_key_name), NULL, NULL, 0, 0,
     "Cloud KMS key for CMEK: projects/P/locations/L/keyRings/R/cryptoKeys/K"},
    {"retention_mode", ARCA_OPT_ENUM, 0, offsetof(gcs_config, retention_mode), "none", "none|Unlocked|Locked", 0, 0,
     "object retention of stored objects (the bucket must have object retention enabled); checked on each"},
    {"retain_until", ARCA_OPT_STRING, 0, offsetof(gcs_config, retain_until), NULL, NULL, 0, 0,
     "with retention_mode: a date (2031-12-31T00:00:00Z) or days from each upload (365d)"},
    {"event_based_hold", ARCA_OPT_BOOL, 0, offsetof(gcs_config, event_based_hold), "false", NULL, 0, 0,
     "place an event-based hold on stored objects (checked on each)"},
    {"temporary_hold", ARCA_OPT_BOOL, 0, offsetof(gcs_config, temporary_hold), "false", NULL, 0, 0,
     "place a temporary hold on stored objects (checked on each)"},
    {"chunk_size", ARCA_OPT_SIZE, 0, offsetof(gcs_config, chunk_size), "16M", NULL, 256 << 10, 1LL << 30,
     "bytes per resumable chunk or composite part, a multiple of 256K; also the size of ranged reads"},
    {"upload_concurrency", ARCA_OPT_INT, 0, offsetof(gcs_config, upload_concurrency), "4", NULL, 1, 64,
     "parts uploaded (ranges downloaded) at once; memory is chunk_size x (this + 2)"},
    {"composite_upload", ARCA_OPT_ENUM, 0, offsetof(gcs_config, composite_upload), "auto", "auto|true|false", 0, 0,
     "parallel parts composed at commit: auto looks at the bucket (no retention policy or default hold, STANDARD)"},
    {"retries", ARCA_OPT_INT, 0, offsetof(gcs_config, retries), "10", NULL, 0, 100,
     "retries of one request after a reset, a stall, 408, 429 or 5xx"},
    {"retry_time", ARCA_OPT_INT, 0, offsetof(gcs_config, retry_time), "300", NULL, 1, 86400,
     "seconds one request may spend on retries (exponential backoff with jitter)"},
    {"timeout", ARCA_OPT_INT, 0, offsetof(gcs_config, timeout), "60", NULL, 1, 3600,
     "seconds without any progress before a request is abandoned (and retried)"},
    {"list_max_results", ARCA_OPT_INT, 0, offsetof(gcs_config, list_max_results), "1000", NULL, 1, 1000,
     "objects per listing page"},
    {"ca_file", ARCA_OPT_STRING, 0, offsetof(gcs_config, ca_file), NULL, NULL, 0, 0,
     "PEM file of the CA that signed the endpoint's certificate; default: the system's"},
    {"verify_tls", ARCA_OPT_BOOL, 0, offsetof(gcs_config, verify_tls), "true", NULL, 0, 0,
     "check the endpoint's certificate and name (false only for test servers)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

static void gcs_destroy(void *inst);

/* GCS bucket names: 3-63 (222 with dots) of a-z 0-9 - _ ., starting and ending alphanumeric. */
static int bucket_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n < 3 || n > 222 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
        return 0;
    for (const char *p = b; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

static int word_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
            return 0;
    return 1;
}

/* Settings that contradict each other or cannot be right: refused before anything is made. */
static int check_settings(const arca_host *h, const gcs_config *c)
{
    if (!bucket_ok(c->bucket))
        return h->error(h, ARCA_ECONFIG, "bucket '%s' is not a bucket name (3-63 of a-z, 0-9, -, _ and .)",
                        c->bucket ? c->bucket : "");
    if (c->prefix && c->prefix[0] == '/')
        return h->error(h, ARCA_ECONFIG, "prefix '%s' starts with '/': object names have no leading slash", c->prefix);
    if (c->credentials && *c->credentials && c->access_token && *c->access_token)
        return h->error(h, ARCA_ECONFIG, "both credentials and access_token are set: give one of them");
    if (c->chunk_size % GCS_CHUNK_UNIT)
        return h->error(h, ARCA_ECONFIG, "chunk_size %llu is not a multiple of 256K (262144 bytes), as resumable "
                        "uploads require: use e.g. %lluK", (unsigned long long)c->chunk_size,
                        (unsigned long long)((c->chunk_size / GCS_CHUNK_UNIT + 1) * 256));
    if (c->storage_class && *c->storage_class && !word_ok(c->storage_class, "_"))
        return h->error(h, ARCA_ECONFIG, "storage_class '%s' is not a storage class (STANDARD, NEARLINE, COLDLINE, "
                        "ARCHIVE)", c->storage_class);
    if (c->kms_key_name && *c->kms_key_name &&
        (strncmp(c->kms_key_name, "projects/", 9) || !strstr(c->kms_key_name, "/cryptoKeys/")))
        return h->error(h, ARCA_ECONFIG, "kms_key_name '%s' is not of the form projects/P/locations/L/keyRings/R/"
                        "cryptoKeys/K", c->kms_key_name);
    if (c->user_project && *c->user_project && !word_ok(c->user_project, "-:."))
        return h->error(h, ARCA_ECONFIG, "user_project '%s' is not a project id", c->user_project);
    if (c->retention_mode == GCS_RET_NONE && c->retain_until && *c->retain_until)
        return h->error(h, ARCA_ECONFIG, "retain_until is set but retention_mode is none: set retention_mode = "
                        "Unlocked or Locked");
    if (c->retention_mode != GCS_RET_NONE && (!c->retain_until || !*c->retain_until))
        return h->error(h, ARCA_ECONFIG, "retention_mode needs retain_until (a date or days such as 365d)");
    if (!c->verify_tls)
        h->log(h, ARCA_LOG_WARN, "verify_tls = false: the endpoint's certificate is not checked");
    return 0;
}

/* endpoint: http(s)://host[:port], no credentials, no path. */
static int parse_endpoint(gcs_inst *in, const char *ep)
{
    const arca_host *h = in->host;
    const char *rest;
    if (!strncasecmp(ep, "https://", 8)) {
        in->https = 1;
        rest = ep + 8;
    } else if (!strncasecmp(ep, "http://", 7)) {
        rest = ep + 7;
    } else {
        return h->error(h, ARCA_ECONFIG, "endpoint '%s': only http:// and https:// URLs are supported", ep);
    }
    size_t n = strcspn(rest, "/?#");
    if (!n)
        return h->error(h, ARCA_ECONFIG, "endpoint '%s' has no host", ep);
    if (memchr(rest, '@', n))
        return h->error(h, ARCA_ECONFIG, "endpoint must not carry credentials (user@host): use credentials");
    if (rest[n] && strcmp(rest + n, "/"))
        return h->error(h, ARCA_ECONFIG, "endpoint '%s' has a path: give only scheme://host[:port] (prefix is for "
                        "a folder in the bucket)", ep);
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)rest[i]))
            return h->error(h, ARCA_ECONFIG, "endpoint '%s' contains a space", ep);
    size_t len = (size_t)(rest - ep) + n;
    if (!(in->endpoint = strndup(ep, len)))
        return h->error(h, ARCA_ENOMEM, "out of memory");
    for (char *c = in->endpoint; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

/* A credentials option naming a file is read now, so that `config check`
 * finds a wrong path or a broken key; the key itself is kept only in memory. */
static int check_credentials(const arca_host *h, const gcs_config *c)
{
    if (!c->credentials || !*c->credentials)
        return 0;
    const char *v = c->credentials + strspn(c->credentials, " \t\r\n");
    gcs_keyfile k;
    char why[300], *text = NULL;
    if (*v != '{') {
        FILE *f = fopen(v, "rb");
        if (!f)
            return h->error(h, ARCA_ECONFIG, "credentials file '%s' cannot be read: %s", v, strerror(errno));
        fclose(f);
        return 0; /* parsed at first use, with the same checks */
    }
    text = strdup(v);
    if (!text)
        return h->error(h, ARCA_ENOMEM, "out of memory");
    int rc = gcs_keyfile_parse(text, &k, why, sizeof why);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (rc)
        return h->error(h, ARCA_ECONFIG, "credentials: %s", why);
    gcs_keyfile_free(&k);
    return 0;
}

static int gcs_create(const arca_host *host, const void *config, void **out)
{
    const gcs_config *cfg = config;
    gcs_inst *in;
    char err[300];
    int rc;

    *out = NULL;
    if ((rc = check_settings(host, cfg)) || (rc = pc_check_ca_file(host, cfg->ca_file)) ||
        (rc = check_credentials(host, cfg)))
        return rc;
    if (!(in = calloc(1, sizeof *in)))
        return host->error(host, ARCA_ENOMEM, "out of memory");
    in->host = host;
    in->cfg = cfg;
    in->chunk = cfg->chunk_size;
    in->concurrency = (int)cfg->upload_concurrency;
    pthread_mutex_init(&in->plan_lock, NULL);
    gcs_auth_init(in);
    if (cfg->retention_mode != GCS_RET_NONE &&
        gcs_parse_retain(cfg->retain_until, time(NULL), &in->retain_days, &in->retain_until, err, sizeof err)) {
        gcs_destroy(in);
        return host->error(host, ARCA_ECONFIG, "%s", err);
    }
    if ((rc = parse_endpoint(in, cfg->endpoint && *cfg->endpoint ? cfg->endpoint : GCS_ENDPOINT_DEFAULT))) {
        gcs_destroy(in);
        return rc;
    }
    in->prefix = strdup(cfg->prefix ? cfg->prefix : "");
    in->bucket_enc = gcs_uri_encode(cfg->bucket);
    if (!in->prefix || !in->bucket_enc) {
        gcs_destroy(in);
        return host->error(host, ARCA_ENOMEM, "out of memory");
    }
    if ((rc = pc_curl_pool_init(&in->pool))) {
        gcs_destroy(in);
        return host->error(host, rc, "cannot initialise libcurl");
    }
    *out = in;
    return 0;
}

static void gcs_destroy(void *inst)
{
    gcs_inst *in = inst;
    if (!in)
        return;
    pc_curl_pool_destroy(&in->pool);
    gcs_auth_destroy(in);
    pthread_mutex_destroy(&in->plan_lock);
    free(in->endpoint);
    free(in->prefix);
    free(in->bucket_enc);
    free(in);
}

static int gcs_location(void *inst, char *buf, size_t cap)
{
    gcs_inst *in = inst;
    int n = snprintf(buf, cap, "gs://%s/%s at %s", in->cfg->bucket, in->prefix, in->endpoint);
    if (n < 0 || (size_t)n >= cap)
        return in->host->error(in->host, ARCA_EFAIL, "the location of bucket '%s' needs %d bytes, %zu given",
                               in->cfg->bucket, n + 1, cap);
    return 0;
}

static const arca_destination_ops gcs_destination_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = gcs_put_open,
    .put_write = gcs_put_write,
    .put_commit = gcs_put_commit,
    .put_abort = gcs_put_abort,
    .get_open = gcs_get_open,
    .get_read = gcs_get_read,
    .get_close = gcs_get_close,
    .list = gcs_list,
    .remove = gcs_remove,
    .remove_many = gcs_remove_many,
    .location = gcs_location,
    .cleanup = gcs_cleanup,
};

static const arca_plugin gcs_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_DESTINATION,
    .name = "gcs",
    .version = GCS_PLUGIN_VERSION,
    .description = "store backups in a Google Cloud Storage bucket (JSON API; resumable and parallel composite uploads)",
    .options = gcs_options,
    .config_size = sizeof(gcs_config),
    .create = gcs_create,
    .destroy = gcs_destroy,
    .destination = &gcs_destination_ops,
};

ARCA_PLUGIN_DEFINE(gcs_plugin)
