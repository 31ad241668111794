/* gcs plugin: the put handle and what write.c (buffers, single request,
 * commit), resumable.c (one resumable session), compose.c (parallel parts
 * composed at commit) and verify.c (hashes, retention, holds, CMEK checked on
 * the stored object) share. */
#ifndef ARCA_GCSPUT_H
#define ARCA_GCSPUT_H

#include <openssl/evp.h>

#include "gcs.h"

enum { GCS_MODE_SINGLE = 0, GCS_MODE_RESUMABLE = 1, GCS_MODE_COMPOSE = 2 };

typedef struct gcs_part {
    char *buf;
    size_t len, cap;
    uint32_t number; /* 1-based */
    uint64_t offset; /* of its first byte in the object */
    int final;       /* the last chunk: its request carries the total */
    struct gcs_part *next;
} gcs_part;

#define GCS_MAX_THREADS 64

typedef struct gcs_put {
    gcs_inst *in;
    char *name, *key;
    char retain[21];          /* retain-until of this upload ("" without retention) */
    const char *content_type;
    int mode;                 /* GCS_MODE_*: decided when the first chunk fills */
    gcs_part *cur;            /* being filled by put_write */
    uint32_t next_number;
    uint64_t total;
    uint32_t crc;             /* CRC32C of everything written */
    char md5_b64[25];         /* MD5 of everything sent ("" when none: composite objects have none) */
    json_t *final_obj;        /* the stored object's resource, once created */
    int created;              /* an object under `key` was made by this put */

    /* resumable: the session URI and how far the server has persisted */
    char *session;
    uint64_t persisted;
    EVP_MD_CTX *md5;

    /* compose: part objects under tmp ("PREFIX.arca-tmp/NAME/ID/") */
    char *tmp;
    uint8_t *done;            /* done[n-1]: part n was stored */
    uint32_t ndone_cap;
    uint32_t intermediates;   /* composed intermediate objects c000001... */

    /* shared with the workers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gcs_part *qhead, *qtail;
    gcs_part *spare;
    int nbufs, maxbufs;
    int stop, failed, fail_code;
    char err[1600];
    pthread_t threads[GCS_MAX_THREADS];
    int nthreads;
} gcs_put;

/* write.c */
void put_fail(gcs_put *p, int code, const char *msg);
int put_failed_error(gcs_put *p);
json_t *put_metadata(const gcs_put *p, const char *objname);
char *put_query(const gcs_put *p, const char *more);
int put_single(gcs_put *p, CURL *easy, const char *objname, const void *data, size_t len, const char *md5,
               json_t *meta, json_t **out, char *err, size_t errlen);
void part_free(gcs_part *part);
void join_workers(gcs_put *p);
/* Hands a finished buffer back to the writer. Lock held. */
void part_recycle(gcs_put *p, gcs_part *part);

/* resumable.c / compose.c: start the upload chosen by the plan (sets mode, starts workers) */
int upload_start(gcs_put *p);
int resumable_start(gcs_put *p);
int resumable_commit(gcs_put *p);
int compose_start(gcs_put *p);
int compose_commit(gcs_put *p);
/* After a failure or abort: the session cancelled, parts and a half-made object removed. */
void upload_cleanup(gcs_put *p);
void compose_cleanup(gcs_put *p);

/* verify.c */
/* The stored object (final_obj) has our size and CRC32C, and our MD5 if it has one. */
int check_hashes(gcs_put *p);
/* Retention, holds, CMEK and storage class, as asked, on the stored object. */
int verify_stored(gcs_put *p);
/* After a 412 on create: the object there is this upload's (size, CRC32C): a lost answer. */
int stored_is_ours(gcs_put *p);
/* Removes the object this put created (its generation), saying so when it cannot. */
void remove_created(gcs_put *p, const char *why);

#endif
