/* plugins/common: what HTTP object stores over libcurl share (s3, gcs): a pool
 * of idle curl handles whose connections are reused, with one curl share per
 * instance for DNS answers and TLS sessions; which transport failures are
 * worth another try; curl's own account of a failure and a hint for the ones
 * no retry can mend (certificate names, untrusted CAs, the wrong scheme); the
 * ca_file check. Linked only into plugins that use libcurl (their pkgs name it). */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <pthread.h>
#include <stddef.h>

#include <curl/curl.h>

#include <arca/plugin.h>

#define PC_CURL_IDLE_MAX 16

/* Zero-fill, then pc_curl_pool_init; pc_curl_pool_destroy balances it. */
typedef struct pc_curl_pool {
    pthread_mutex_t idle_lock;
    CURL *idle[PC_CURL_IDLE_MAX];
    int nidle;
    CURLSH *share; /* DNS cache and TLS sessions shared by every handle of the pool */
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
    int curl_ready; /* curl_global_init succeeded */
    int locks_ready;
} pc_curl_pool;

/* curl_global_init and the share. ARCA_OK, ARCA_ENOMEM or ARCA_EFAIL. */
int pc_curl_pool_init(pc_curl_pool *p);
void pc_curl_pool_destroy(pc_curl_pool *p);
/* An idle handle (its connection kept) or a new one; NULL on OOM. */
CURL *pc_curl_get(pc_curl_pool *p);
/* Back to the pool (or cleaned up when the pool is full); NULL is fine. */
void pc_curl_put(pc_curl_pool *p, CURL *easy);

/* What every request to an object store sets alike on a (reset) handle:
 * HTTP/1.1, no signals, the pool's share, TCP keep-alive, curl's error
 * buffer (errbuf: CURL_ERROR_SIZE bytes, emptied here), 512 KiB / 1 MiB
 * buffers, TLS verification (off only when verify_tls is 0) with ca_file
 * when given, http and https only, no redirects. */
void pc_curl_common(CURL *easy, pc_curl_pool *p, char *errbuf, int verify_tls, const char *ca_file);

/* Transport failures worth another attempt: the server or network may be fine next time. */
int pc_curl_transient(CURLcode c);
/* "ERRBUF (curl_easy_strerror)" or the latter alone. */
void pc_curl_describe(const char *errbuf, CURLcode cc, char *out, size_t cap);
/* A failure no retry can mend, with a hint that points the right way (*rc:
 * ARCA_ECONFIG); NULL for one worth retrying or without a better word.
 * `https`: the URL's scheme was https. */
const char *pc_curl_hint(int https, const char *errbuf, CURLcode cc, int *rc);

/* ca_file must be a readable PEM list of at least one certificate (NULL or ""
 * is fine): a wrong file is a setup error at create, not a TLS failure later. */
int pc_check_ca_file(const arca_host *host, const char *path);

#endif
