/* s3 destination plugin: what its files share. plugin.c (descriptor, options,
 * routing), client.c (endpoint, one signed request with retries), creds.c
 * (credential chain), write.c (single PUT or parallel multipart), read.c
 * (parallel ranged GETs), catalog.c (list, delete). The pure helpers they
 * use (SigV4, XML/INI/JSON scanning, retry policy, part sizing) are in s3util.h. */
#ifndef ARCA_S3_H
#define ARCA_S3_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include <arca/plugin.h>

#include "pc_http.h"
#include "s3util.h"

enum { S3_PATH_AUTO = 0, S3_PATH_ON = 1, S3_PATH_OFF = 2 };
enum { S3_SSE_NONE = 0, S3_SSE_AES256 = 1, S3_SSE_KMS = 2 };
enum { S3_LOCK_NONE = 0, S3_LOCK_GOVERNANCE = 1, S3_LOCK_COMPLIANCE = 2 };

/* The option struct the core fills from [destination NAME]; strings belong
 * to the core and stay valid until destroy. */
typedef struct s3_config {
    const char *endpoint; /* "" or NULL: https://s3.<region>.amazonaws.com */
    const char *region;   /* NULL: AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1 */
    const char *bucket;
    const char *prefix;
    int path_style;
    const char *access_key_id;
    const char *secret_access_key; /* secret */
    const char *session_token;     /* secret */
    const char *profile;
    const char *storage_class;
    int sse;
    const char *sse_kms_key_id;
    int object_lock_mode;
    const char *object_lock_retain_until;
    int content_md5;
    uint64_t part_size;
    int64_t upload_concurrency;
    int64_t retries;
    int64_t retry_time;
    int64_t timeout;
    int64_t list_max_keys;
    const char *ca_file;
    int verify_tls;
} s3_config;

/* Credentials in use; strings malloc'd, secrets wiped on free. */
typedef struct s3_creds {
    char *akid, *secret, *token; /* token may be NULL */
    time_t expires;              /* 0: never (static, env, files) */
    const char *source;          /* "config", "environment", "profile NAME", "instance metadata" */
} s3_creds;

/* Where credentials come from, resolved on first use (create must not touch
 * the network) and refreshed before they expire (instance metadata). */
typedef struct s3_cred_chain {
    pthread_mutex_t lock;
    int resolved;
    s3_creds cur;
    char source[160];
    char imds_role[256]; /* remembered once found */
} s3_cred_chain;

typedef struct s3_inst {
    const arca_host *host;
    const s3_config *cfg;
    char *scheme;     /* "http" or "https" */
    char *endpoint;   /* scheme://host[:port] without the bucket, lowercase: for location */
    char *authority;  /* what the Host header and the URL carry: [bucket.]host[:port] */
    char *base_path;  /* "" (virtual-hosted) or "/bucket" (path style) */
    char *region;
    char *prefix;     /* "" or as configured */
    char *profile;
    char *retain_until; /* ISO 8601 for x-amz-object-lock-retain-until-date, or NULL */
    int64_t retain_days; /* > 0: retain_until is computed per upload */
    uint64_t part_size;
    int concurrency;
    s3_cred_chain creds;
    /* idle curl handles (connections reused across calls) and their share */
    pc_curl_pool pool;
} s3_inst;

/* ---- client.c: one S3 request, signed, with retries ---------------------- */

typedef struct s3_request {
    const char *method;
    const char *key;             /* full object key (prefix included), NULL for the bucket */
    const s3_kv *query;          /* unencoded; signed sorted and encoded */
    size_t nquery;
    const s3_kv *headers;        /* lowercase names; sent and signed */
    size_t nheaders;
    const void *body;            /* request body, NULL for none */
    size_t body_len;
    const char *payload_sha256;  /* hex of body, NULL: computed here */
    /* Response bodies of 2xx answers go to sink when set (reset is called
     * before each retry); otherwise they are kept (at most 64 MiB). */
    size_t (*sink)(void *ud, const char *p, size_t n);
    void (*reset)(void *ud);
    void *ud;
    int cleanup;       /* abort/delete on a failure path: ignore host->cancelled */
    int missing_ok;    /* a 404 is an answer (ARCA_ENOENT), not an error to report */
    uint64_t expect;   /* bytes the answer should carry (a range), for the request's deadline */
} s3_request;

typedef struct s3_response {
    long status;
    char etag[160];
    uint64_t content_length;
    int has_length;
    char *body; /* malloc'd, NUL-terminated; NULL when streamed or empty */
    size_t body_len;
    char code[96]; /* S3 error Code, "" if none */
    /* what the server says it did with an object (PUT, HEAD, DELETE answers) */
    char sse[32];          /* x-amz-server-side-encryption */
    char lock_mode[32];    /* x-amz-object-lock-mode */
    char lock_until[40];   /* x-amz-object-lock-retain-until-date */
    char legal_hold[8];    /* x-amz-object-lock-legal-hold: ON/OFF */
    char version_id[160];  /* x-amz-version-id */
    int delete_marker;     /* x-amz-delete-marker: true */
} s3_response;

void s3_response_free(s3_response *rs);

/* Runs one request with the retry policy: 0 for 2xx, ARCA_ENOENT for a 404
 * when rq->missing_ok, else a negative code with the reason (URL, status,
 * S3 Code and Message, hint) in err. Borrows a curl handle when easy is NULL. */
int s3_do(s3_inst *in, CURL *easy, const s3_request *rq, s3_response *rs, char *err, size_t errlen);

CURL *s3_easy_get(s3_inst *in);
void s3_easy_put(s3_inst *in, CURL *easy);

/* "scheme://authority/base/key" without a query, for messages. Caller frees. */
char *s3_url_of(const s3_inst *in, const char *key);
/* prefix + name, malloc'd. */
char *s3_key_of(const s3_inst *in, const char *name);

/* ---- creds.c -------------------------------------------------------------- */
int s3_creds_init(s3_inst *in, char *err, size_t errlen);
/* A copy of the current credentials (refreshed if they expire soon). */
int s3_creds_get(s3_inst *in, s3_creds *out, char *err, size_t errlen);
/* After an ExpiredToken answer: forget cached instance credentials. */
void s3_creds_invalidate(s3_inst *in);
void s3_creds_free(s3_creds *c);
void s3_creds_destroy(s3_inst *in);
/* The region a profile of the shared config files names, malloc'd, or NULL. */
char *s3_profile_region(const char *profile);

/* ---- write.c / read.c / catalog.c ---------------------------------------- */
/* The common name rules (pc_name.h), and a key (prefix + name) of at most
 * S3_MAX_KEY bytes; ARCA_ECONFIG otherwise. */
int s3_check_name(const s3_inst *in, const char *name);
int s3_put_open(void *inst, const char *name, void **put);
int s3_put_write(void *put, const void *buf, size_t len);
int s3_put_commit(void *put);
void s3_put_abort(void *put);
int s3_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **get);
int s3_get_read(void *get, void *buf, size_t cap, size_t *got);
void s3_get_close(void *get);
int s3_list(void *inst, const char *prefix, arca_list_cb cb, void *ud);
int s3_remove(void *inst, const char *name);
/* Multi-object delete, 1000 keys a request; names relative to the prefix.
 * Missing objects are not an error. */
int s3_remove_many(void *inst, const char *const *names, size_t n);
/* "s3://BUCKET/PREFIX at SCHEME://HOST[:PORT] (region REGION)". */
int s3_location(void *inst, char *buf, size_t cap);
/* HEAD: size and ETag, ARCA_ENOENT if missing (no error reported then). */
int s3_head(s3_inst *in, const char *key, uint64_t *size, char *etag, size_t etaglen, char *err,
            size_t errlen);
/* HEAD with the whole answer (encryption, lock, version) in *rs (caller frees). */
int s3_head_full(s3_inst *in, const char *key, s3_response *rs, char *err, size_t errlen);
/* Leftovers of interrupted puts: multipart uploads under prefix started before older_than. */
int s3_cleanup(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud);

#endif
