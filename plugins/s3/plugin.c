/* s3 destination plugin: descriptor, option table, create/destroy (endpoint,
 * addressing style, region, settings checked once), and the destination ops
 * table; the work is in write.c, read.c and catalog.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3.h"

#define S3_PLUGIN_VERSION "1.0.0"

static const arca_option s3_options[] = {
    {"endpoint", ARCA_OPT_STRING, 0, offsetof(s3_config, endpoint), NULL, NULL, 0, 0,
     "https://host[:port] of the S3 API (MinIO, Ceph RGW, GCS, Wasabi ...); default https://s3.<region>.amazonaws.com"},
    {"region", ARCA_OPT_STRING, 0, offsetof(s3_config, region), NULL, NULL, 0, 0,
     "signing region; default $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region, else us-east-1"},
    {"bucket", ARCA_OPT_STRING, ARCA_OPT_REQUIRED, offsetof(s3_config, bucket), NULL, NULL, 0, 0,
     "existing bucket that receives the backups"},
    {"prefix", ARCA_OPT_STRING, 0, offsetof(s3_config, prefix), "", NULL, 0, 0,
     "key prefix put before every object name, used as is (end it with / for a folder)"},
    {"path_style", ARCA_OPT_ENUM, 0, offsetof(s3_config, path_style), "auto", "auto|true|false", 0, 0,
     "true: https://host/bucket/key; false: https://bucket.host/key; auto: virtual-hosted on amazonaws.com, "
     "path style elsewhere"},
    {"access_key_id", ARCA_OPT_STRING, 0, offsetof(s3_config, access_key_id), NULL, NULL, 0, 0,
     "access key id; unset: environment, shared credentials file, then instance metadata"},
    {"secret_access_key", ARCA_OPT_STRING, ARCA_OPT_SECRET, offsetof(s3_config, secret_access_key), NULL, NULL, 0,
     0, "secret access key (with access_key_id)"},
    {"session_token", ARCA_OPT_STRING, ARCA_OPT_SECRET, offsetof(s3_config, session_token), NULL, NULL, 0, 0,
     "session token of temporary credentials"},
    {"profile", ARCA_OPT_STRING, 0, offsetof(s3_config, profile), NULL, NULL, 0, 0,
     "profile of ~/.aws/credentials and ~/.aws/config; default $AWS_PROFILE, else default"},
    {"storage_class", ARCA_OPT_STRING, 0, offsetof(s3_config, storage_class), NULL, NULL, 0, 0,
     "x-amz-storage-class of stored objects (STANDARD, STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE ...); default: the "
     "bucket's"},
    {"sse", ARCA_OPT_ENUM, 0, offsetof(s3_config, sse), "none", "none|AES256|aws:kms", 0, 0,
     "server-side encryption of stored objects"},
    {"sse_kms_key_id", ARCA_OPT_STRING, 0, offsetof(s3_config, sse_kms_key_id), NULL, NULL, 0, 0,
     "KMS key id or ARN for sse = aws:kms; default: the account's aws/s3 key"},
    {"object_lock_mode", ARCA_OPT_ENUM, 0, offsetof(s3_config, object_lock_mode), "none",
     "none|GOVERNANCE|COMPLIANCE", 0, 0,
     "object lock retention of stored objects (the bucket must have object lock enabled)"},
    {"object_lock_retain_until", ARCA_OPT_STRING, 0, offsetof(s3_config, object_lock_retain_until), NULL, NULL, 0,
     0, "with object_lock_mode: a date (2031-12-31T00:00:00Z) or a number of days from the upload (365d)"},
    {"content_md5", ARCA_OPT_BOOL, 0, offsetof(s3_config, content_md5), "false", NULL, 0, 0,
     "also send Content-MD5 with each upload (always on with object lock, which requires it)"},
    {"part_size", ARCA_OPT_SIZE, 0, offsetof(s3_config, part_size), "16M", NULL, 5LL << 20, 5LL << 30,
     "multipart part size (5M..5G); it doubles every 900 parts so that 10,000 parts reach 5 TiB"},
    {"upload_concurrency", ARCA_OPT_INT, 0, offsetof(s3_config, upload_concurrency), "4", NULL, 1, 64,
     "parts uploaded (and ranges downloaded) at once; memory is part_size x (this + 1)"},
    {"retries", ARCA_OPT_INT, 0, offsetof(s3_config, retries), "10", NULL, 0, 100,
     "retries of one request after a reset, a timeout, 5xx, 429 or 503 SlowDown"},
    {"retry_time", ARCA_OPT_INT, 0, offsetof(s3_config, retry_time), "300", NULL, 1, 86400,
     "seconds one request may spend on retries (exponential backoff with jitter)"},
    {"timeout", ARCA_OPT_INT, 0, offsetof(s3_config, timeout), "60", NULL, 1, 3600,
     "seconds without any progress before a request is abandoned (and retried)"},
    {"list_max_keys", ARCA_OPT_INT, 0, offsetof(s3_config, list_max_keys), "1000", NULL, 1, 1000,
     "keys per ListObjectsV2 page"},
    {"ca_file", ARCA_OPT_STRING, 0, offsetof(s3_config, ca_file), NULL, NULL, 0, 0,
     "PEM file of the CA that signed the endpoint's certificate; default: the system's"},
    {"verify_tls", ARCA_OPT_BOOL, 0, offsetof(s3_config, verify_tls), "true", NULL, 0, 0,
     "check the endpoint's certificate and name (false only for test servers)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

static int lower_dns_name(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-')
        return 0;
    for (const char *p = b; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
            return 0;
    return 1;
}

static void s3_destroy(void *inst);

/* endpoint → scheme and host[:port]; refuses user:password@ and paths. */
static int parse_endpoint(const arca_host *h, const char *ep, char **scheme, char **hostport)
{
    const char *rest = ep;
    *scheme = strdup("https");
    if (!strncasecmp(ep, "https://", 8)) {
        rest = ep + 8;
    } else if (!strncasecmp(ep, "http://", 7)) {
        free(*scheme);
        *scheme = strdup("http");
        rest = ep + 7;
    } else if (strstr(ep, "://")) {
        return h->error(h, ARCA_ECONFIG, "endpoint '%s': only http:// and https:// are supported", ep);
    }
    size_t n = strcspn(rest, "/?#");
    if (!n)
        return h->error(h, ARCA_ECONFIG, "endpoint '%s' has no host", ep);
    if (memchr(rest, '@', n))
        return h->error(h, ARCA_ECONFIG,
                        "endpoint must not carry credentials (user@host): use access_key_id and secret_access_key");
    if (rest[n] && strcmp(rest + n, "/"))
        return h->error(h, ARCA_ECONFIG, "endpoint '%s' has a path: give only scheme://host[:port] (use prefix for "
                                         "a folder inside the bucket)", ep);
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)rest[i]))
            return h->error(h, ARCA_ECONFIG, "endpoint '%s' contains a space", ep);
    *hostport = strndup(rest, n);
    return (*scheme && *hostport) ? 0 : h->error(h, ARCA_ENOMEM, "out of memory");
}

static int parse_retain(const arca_host *h, s3_inst *in, const char *v)
{
    char *end;
    if (!v || !*v)
        return h->error(h, ARCA_ECONFIG, "object_lock_mode needs object_lock_retain_until (a date or a number of "
                                         "days such as 365d)");
    long long days = strtoll(v, &end, 10);
    if (end != v && (!strcmp(end, "d") || !strcmp(end, "D"))) {
        if (days < 1 || days > 36500)
            return h->error(h, ARCA_ECONFIG, "object_lock_retain_until '%s': days must be 1..36500", v);
        in->retain_days = days;
        return 0;
    }
    int64_t t = s3_parse_iso8601(v);
    if (t < 0)
        return h->error(h, ARCA_ECONFIG, "object_lock_retain_until '%s' is neither a date like 2031-12-31T00:00:00Z "
                                         "nor a number of days like 365d", v);
    if (t <= (int64_t)time(NULL))
        return h->error(h, ARCA_ECONFIG, "object_lock_retain_until '%s' is in the past", v);
    char iso[21];
    s3_format_iso8601((time_t)t, iso);
    in->retain_until = strdup(iso);
    return in->retain_until ? 0 : h->error(h, ARCA_ENOMEM, "out of memory");
}

/* Settings that contradict each other or cannot be right, before anything is made. */
static int check_settings(const arca_host *host, const s3_config *cfg)
{
    if (!cfg->bucket || !*cfg->bucket || strpbrk(cfg->bucket, "/ \t?#") || strlen(cfg->bucket) > 255)
        return host->error(host, ARCA_ECONFIG, "bucket '%s' is not a bucket name", cfg->bucket ? cfg->bucket : "");
    if (cfg->prefix && cfg->prefix[0] == '/')
        return host->error(host, ARCA_ECONFIG, "prefix '%s' starts with '/': keys have no leading slash",
                           cfg->prefix);
    if (cfg->storage_class && *cfg->storage_class)
        for (const char *p = cfg->storage_class; *p; p++)
            if (!(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
                return host->error(host, ARCA_ECONFIG,
                                   "storage_class '%s' is not a storage class (STANDARD, STANDARD_IA, ...)",
                                   cfg->storage_class);
    if (cfg->sse_kms_key_id && *cfg->sse_kms_key_id && cfg->sse != S3_SSE_KMS)
        return host->error(host, ARCA_ECONFIG, "sse_kms_key_id is set but sse is not aws:kms");
    if (cfg->object_lock_mode == S3_LOCK_NONE && cfg->object_lock_retain_until && *cfg->object_lock_retain_until)
        return host->error(host, ARCA_ECONFIG, "object_lock_retain_until is set but object_lock_mode is none");
    if (!cfg->verify_tls)
        host->log(host, ARCA_LOG_WARN, "verify_tls = false: the endpoint's certificate is not checked");
    return 0;
}

/* profile and region: option, environment, the profile's config, us-east-1. */
static int resolve_region(s3_inst *in)
{
    const s3_config *cfg = in->cfg;
    const char *env = getenv("AWS_PROFILE");
    in->profile = strdup(cfg->profile && *cfg->profile ? cfg->profile : env && *env ? env : "default");
    in->prefix = strdup(cfg->prefix ? cfg->prefix : "");
    if (cfg->region && *cfg->region)
        in->region = strdup(cfg->region);
    else if ((env = getenv("AWS_REGION")) && *env)
        in->region = strdup(env);
    else if ((env = getenv("AWS_DEFAULT_REGION")) && *env)
        in->region = strdup(env);
    else if (in->profile && !(in->region = s3_profile_region(in->profile)))
        in->region = strdup("us-east-1");
    if (!in->profile || !in->prefix || !in->region)
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    for (const char *p = in->region; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
            return in->host->error(in->host, ARCA_ECONFIG, "region '%s' is not a region name such as eu-west-1",
                                   in->region);
    return 0;
}

/* Virtual-hosted (bucket.host) or path-style (host/bucket) addressing. */
static int wants_virtual_host(const arca_host *host, const s3_config *cfg, const char *scheme, const char *hostport)
{
    char hostonly[512];
    snprintf(hostonly, sizeof hostonly, "%s", hostport);
    char *colon = hostonly[0] == '[' ? NULL : strrchr(hostonly, ':');
    if (colon)
        *colon = 0;
    size_t hl = strlen(hostonly);
    int aws = hl > 14 && !strcasecmp(hostonly + hl - 14, ".amazonaws.com");
    int virtual_host = cfg->path_style == S3_PATH_OFF ||
                       (cfg->path_style == S3_PATH_AUTO && aws && lower_dns_name(cfg->bucket));
    if (virtual_host && cfg->path_style == S3_PATH_OFF && strchr(cfg->bucket, '.') && !strcmp(scheme, "https"))
        host->log(host, ARCA_LOG_WARN, "bucket '%s' has dots: its virtual-hosted name will not match a "
                                       "wildcard certificate; consider path_style = true", cfg->bucket);
    return virtual_host;
}

/* scheme, endpoint (for messages and location), authority and base path. */
static int resolve_endpoint(s3_inst *in)
{
    const s3_config *cfg = in->cfg;
    char *scheme = NULL, *hostport = NULL;
    int rc;
    if (cfg->endpoint && *cfg->endpoint) {
        if ((rc = parse_endpoint(in->host, cfg->endpoint, &scheme, &hostport))) {
            free(scheme);
            free(hostport);
            return rc;
        }
    } else {
        scheme = strdup("https");
        size_t n = strlen(in->region) + 32;
        if ((hostport = malloc(n)))
            snprintf(hostport, n, "s3.%s.amazonaws.com", in->region);
    }
    if (!scheme || !hostport) {
        free(scheme);
        free(hostport);
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    }
    in->scheme = scheme;
    size_t n = strlen(scheme) + strlen(hostport) + 4;
    if ((in->endpoint = malloc(n))) {
        snprintf(in->endpoint, n, "%s://%s", scheme, hostport);
        for (char *c = in->endpoint; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    if (wants_virtual_host(in->host, cfg, scheme, hostport)) {
        n = strlen(cfg->bucket) + strlen(hostport) + 2;
        if ((in->authority = malloc(n)))
            snprintf(in->authority, n, "%s.%s", cfg->bucket, hostport);
        in->base_path = strdup("");
        free(hostport);
    } else {
        in->authority = hostport;
        n = strlen(cfg->bucket) + 2;
        if ((in->base_path = malloc(n)))
            snprintf(in->base_path, n, "/%s", cfg->bucket);
    }
    if (!in->authority || !in->base_path || !in->endpoint)
        return in->host->error(in->host, ARCA_ENOMEM, "out of memory");
    return 0;
}

static int s3_create(const arca_host *host, const void *config, void **out)
{
    const s3_config *cfg = config;
    s3_inst *in;
    char err[512];
    int rc;

    *out = NULL;
    if ((rc = check_settings(host, cfg)) || (rc = pc_check_ca_file(host, cfg->ca_file)))
        return rc;
    if (!(in = calloc(1, sizeof *in)))
        return host->error(host, ARCA_ENOMEM, "out of memory");
    in->host = host;
    in->cfg = cfg;
    in->part_size = cfg->part_size;
    in->concurrency = (int)cfg->upload_concurrency;
    if ((rc = s3_creds_init(in, err, sizeof err))) {
        free(in);
        return host->error(host, rc, "%s", err);
    }
    if ((rc = pc_curl_pool_init(&in->pool))) {
        s3_destroy(in);
        return host->error(host, rc, "cannot initialise libcurl");
    }
    if ((rc = resolve_region(in)) || (rc = resolve_endpoint(in)) ||
        (cfg->object_lock_mode != S3_LOCK_NONE && (rc = parse_retain(host, in, cfg->object_lock_retain_until)))) {
        s3_destroy(in);
        return rc;
    }
    *out = in;
    return 0;
}

static void s3_destroy(void *inst)
{
    s3_inst *in = inst;
    if (!in)
        return;
    pc_curl_pool_destroy(&in->pool);
    s3_creds_destroy(in);
    free(in->scheme);
    free(in->endpoint);
    free(in->authority);
    free(in->base_path);
    free(in->region);
    free(in->prefix);
    free(in->profile);
    free(in->retain_until);
    free(in);
}

int s3_location(void *inst, char *buf, size_t cap)
{
    s3_inst *in = inst;
    int n = snprintf(buf, cap, "s3://%s/%s at %s (region %s)", in->cfg->bucket, in->prefix, in->endpoint, in->region);
    if (n < 0 || (size_t)n >= cap)
        return in->host->error(in->host, ARCA_EFAIL, "the location of bucket '%s' needs %d bytes, %zu given",
                               in->cfg->bucket, n + 1, cap);
    return 0;
}

static const arca_destination_ops s3_destination_ops = {
    .size = sizeof(arca_destination_ops),
    .put_open = s3_put_open,
    .put_write = s3_put_write,
    .put_commit = s3_put_commit,
    .put_abort = s3_put_abort,
    .get_open = s3_get_open,
    .get_read = s3_get_read,
    .get_close = s3_get_close,
    .list = s3_list,
    .remove = s3_remove,
    .remove_many = s3_remove_many,
    .location = s3_location,
    .cleanup = s3_cleanup,
};

static const arca_plugin s3_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_DESTINATION,
    .name = "s3",
    .version = S3_PLUGIN_VERSION,
    .description = "store backups in an S3 bucket (AWS, MinIO, Ceph RGW, GCS XML API, Wasabi ...)",
    .options = s3_options,
    .config_size = sizeof(s3_config),
    .create = s3_create,
    .destroy = s3_destroy,
    .destination = &s3_destination_ops,
};

ARCA_PLUGIN_DEFINE(s3_plugin)
