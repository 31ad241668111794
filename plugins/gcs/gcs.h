/* gcs destination plugin: what its files share. plugin.c (descriptor, options,
 * create/destroy, location), client.c (one JSON API request with a bearer
 * token, retries and GCS's errors), auth.c (Application Default Credentials and
 * the token cache), write.c (single request, resumable session, or parallel
 * parts composed at commit), read.c (parallel ranged GETs), catalog.c (object
 * metadata, list, delete, cleanup). The pure helpers are in gcsutil.h. */
#ifndef ARCA_GCS_H
#define ARCA_GCS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <arca/plugin.h>

#include "gcsutil.h"
#include "pc_http.h"

enum { GCS_RET_NONE = 0, GCS_RET_UNLOCKED = 1, GCS_RET_LOCKED = 2 };
enum { GCS_COMPOSE_AUTO = 0, GCS_COMPOSE_ON = 1, GCS_COMPOSE_OFF = 2 };

/* The option struct the core fills from [destination NAME]; strings belong to
 * the core and stay valid until destroy. */
typedef struct gcs_config {
    const char *bucket;
    const char *prefix;
    const char *endpoint;     /* default https://storage.googleapis.com */
    const char *credentials;  /* secret: a key file's path, or its JSON (credentials_file = PATH) */
    const char *access_token; /* secret */
    const char *user_project;
    const char *storage_class;
    const char *kms_key_name;
    int retention_mode;
    const char *retain_until;
    int event_based_hold;
    int temporary_hold;
    uint64_t chunk_size;
    int64_t upload_concurrency;
    int composite_upload;
    int64_t retries;
    int64_t retry_time;
    int64_t timeout;
    int64_t list_max_results;
    const char *ca_file;
    int verify_tls;
} gcs_config;

/* ---- auth.c: where access tokens come from ------------------------------------ */

enum { GCS_AUTH_NONE = 0, GCS_AUTH_TOKEN, GCS_AUTH_SERVICE_ACCOUNT, GCS_AUTH_USER, GCS_AUTH_METADATA };

typedef struct gcs_auth {
    pthread_mutex_t lock;
    int resolved;       /* the source below was found (first use, not create) */
    int kind;           /* GCS_AUTH_* */
    char source[900];   /* for messages: "credentials file /x.json (service account a@b)" */
    gcs_keyfile key;    /* service_account / authorized_user */
    char *token;        /* current access token (secret), NULL until fetched */
    time_t expires;     /* when it stops working (0: unknown, static token) */
    time_t fetched;
    unsigned fetches;   /* tokens fetched so far (for the log) */
    char metadata_host[256];
} gcs_auth;

typedef struct gcs_inst {
    const arca_host *host;
    const gcs_config *cfg;
    char *endpoint;  /* scheme://host[:port], no trailing slash, lowercase */
    char *prefix;
    char *bucket_enc;
    int https;
    uint64_t chunk;  /* chunk_size */
    int concurrency;
    int64_t retain_days; /* > 0: retain until each upload + days */
    int64_t retain_until; /* > 0: a fixed date */
    gcs_auth auth;
    pc_curl_pool pool;
    /* decided once, at the first large upload: may parts be composed? */
    pthread_mutex_t plan_lock;
    int plan;           /* 0 unknown, 1 compose, 2 one resumable stream */
    char plan_why[256];
} gcs_inst;

/* ---- client.c: one request ---------------------------------------------------------- */

typedef struct gcs_kv {
    const char *name;
    const char *value;
} gcs_kv;

/* A piece of a request body sent without copying it (multipart/related: the
 * metadata part, the object's bytes, the closing boundary). */
typedef struct gcs_piece {
    const void *p;
    size_t n;
} gcs_piece;

typedef struct gcs_request {
    const char *method;
    const char *url;           /* absolute: gcs_url() builds it */
    const gcs_kv *headers;     /* extra headers */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const gcs_piece *pieces; /* instead of body: sent in order (body_len is their sum) */
    size_t npieces;
    /* 2xx bodies go to sink when set (reset before each retry), else kept */
    size_t (*sink)(void *ud, const char *p, size_t n);
    void (*reset)(void *ud);
    void *ud;
    int cleanup;     /* on a failure path: ignore host->cancelled */
    int missing_ok;  /* a 404 is an answer (ARCA_ENOENT), not an error */
    int once;        /* one attempt: the caller retries (resumable chunks) */
    int no_auth;     /* no Authorization header (token endpoints) */
    int quick;       /* metadata server: 1 s to connect, 5 s in all, 2 retries */
    uint64_t expect; /* bytes the answer should carry, for the deadline */
    const char *what;/* "bucket 'b' object 'o'" for messages, NULL: the URL */
} gcs_request;

typedef struct gcs_response {
    long status;
    char *body;      /* malloc'd and NUL-terminated (kept answers), or NULL */
    size_t body_len;
    char reason[96]; /* GCS's error reason, "" if none */
    char message[512];
    char location[2048]; /* Location header (resumable session URI) */
    char range[96];      /* Range header of a 308 */
    char generation[32]; /* x-goog-generation of a media answer */
    int transport;       /* no complete answer came (reset, timeout ...) */
    int retry;           /* with `once`: worth another try */
} gcs_response;

void gcs_response_free(gcs_response *rs);

/* Runs one request with the retry policy (or once): 0 for 2xx (and 308 when
 * rq->once), ARCA_ENOENT for a 404 with missing_ok, else a negative code with
 * the reason (what failed, HTTP status, GCS reason and message, a hint) in err. */
int gcs_do(gcs_inst *in, CURL *easy, const gcs_request *rq, gcs_response *rs, char *err, size_t errlen);

/* URLs: "ENDPOINT/storage/v1/b/BUCKET/o/ENC(name)" + "?query" (query may be
 * NULL); gcs_upload_url: ENDPOINT/upload/storage/v1/b/BUCKET/o?query. malloc'd. */
char *gcs_object_url(const gcs_inst *in, const char *objname, const char *query);
char *gcs_bucket_url(const gcs_inst *in, const char *suffix, const char *query);
char *gcs_upload_url(const gcs_inst *in, const char *query);
/* prefix + name, malloc'd. */
char *gcs_key_of(const gcs_inst *in, const char *name);
/* The parsed 2xx answer (an object resource ...), NULL if not JSON. */
json_t *gcs_json(const gcs_response *rs);

/* ---- auth.c ------------------------------------------------------------------------- */
void gcs_auth_init(gcs_inst *in);
void gcs_auth_destroy(gcs_inst *in);
/* "Authorization: Bearer ..." into hdr (wiped by the caller); fetches or
 * refreshes the token when it expires within a few minutes. 0 or a code with err. */
int gcs_auth_header(gcs_inst *in, char *hdr, size_t cap, char *err, size_t errlen);
/* After a 401: forget the token so that the next header fetches a new one.
 * 1 when a new token can be had (a refreshable source), 0 for a fixed one. */
int gcs_auth_invalidate(gcs_inst *in, const char *rejected_header);
/* Where the token came from, for messages. */
void gcs_auth_source(gcs_inst *in, char *out, size_t cap);

/* ---- write.c / read.c / catalog.c -------------------------------------------------- */
int gcs_check_name(const gcs_inst *in, const char *name);
int gcs_put_open(void *inst, const char *name, void **put);
int gcs_put_write(void *put, const void *buf, size_t len);
int gcs_put_commit(void *put);
void gcs_put_abort(void *put);
int gcs_get_open(void *inst, const char *name, uint64_t offset, uint64_t length, void **get);
int gcs_get_read(void *get, void *buf, size_t cap, size_t *got);
void gcs_get_close(void *get);
int gcs_list(void *inst, const char *prefix, arca_list_cb cb, void *ud);
int gcs_remove(void *inst, const char *name);
int gcs_remove_many(void *inst, const char *const *names, size_t n);
int gcs_cleanup(void *inst, const char *prefix, int64_t older_than, int dry_run, arca_list_cb cb, void *ud);

/* Object metadata (GET without alt=media): ARCA_ENOENT if missing (no message
 * then), else 0 and the resource in *out (json_decref). */
int gcs_stat(gcs_inst *in, const char *key, json_t **out, char *err, size_t errlen);
/* DELETE of one object (a generation, when nonzero); ARCA_ENOENT when missing. */
int gcs_delete_key(gcs_inst *in, const char *key, int64_t generation, char *err, size_t errlen);
/* DELETE of many objects, `threads` at a time; missing ones are fine. */
int gcs_delete_keys(gcs_inst *in, const char *const *keys, size_t n, int threads, char *err, size_t errlen);
/* fn(ud, i, ...) for every i below n, on up to `threads` threads (GCS_RUN_THREADS at
 * most); no new task starts after one fails. 0, or the first failure's code with its
 * message in err. */
#define GCS_RUN_THREADS 64
typedef int (*gcs_task_fn)(void *ud, size_t i, char *err, size_t errlen);
int gcs_run_parallel(size_t n, int threads, gcs_task_fn fn, void *ud, char *err, size_t errlen);
/* A number GCS sends as a string ("size", "generation"); 0 if absent. */
uint64_t gcs_json_u64(json_t *obj, const char *name);
/* Where part objects of composite uploads live: PREFIX.arca-tmp/ (never
 * listed: list shows only flat names). */
#define GCS_TMP_DIR ".arca-tmp/"

#endif
