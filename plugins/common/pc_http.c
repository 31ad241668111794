/* plugins/common: the curl handle pool, transport verdicts and TLS hints of the
 * HTTP object stores (s3, gcs). */
#include "pc_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *ud)
{
    pc_curl_pool *p = ud;
    (void)h, (void)a;
    pthread_mutex_lock(&p->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    pc_curl_pool *p = ud;
    (void)h;
    pthread_mutex_unlock(&p->share_lock[data]);
}

int pc_curl_pool_init(pc_curl_pool *p)
{
    pthread_mutex_init(&p->idle_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&p->share_lock[i], NULL);
    p->locks_ready = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return ARCA_EFAIL;
    p->curl_ready = 1;
    if (!(p->share = curl_share_init()))
        return ARCA_ENOMEM;
    curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return ARCA_OK;
}

void pc_curl_pool_destroy(pc_curl_pool *p)
{
    for (int i = 0; i < p->nidle; i++)
        curl_easy_cleanup(p->idle[i]);
    p->nidle = 0;
    if (p->share)
        curl_share_cleanup(p->share);
    p->share = NULL;
    if (p->curl_ready)
        curl_global_cleanup();
    p->curl_ready = 0;
    if (p->locks_ready) {
        pthread_mutex_destroy(&p->idle_lock);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&p->share_lock[i]);
        p->locks_ready = 0;
    }
}

CURL *pc_curl_get(pc_curl_pool *p)
{
    CURL *e = NULL;
    pthread_mutex_lock(&p->idle_lock);
    if (p->nidle)
        e = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->idle_lock);
    return e ? e : curl_easy_init();
}

void pc_curl_put(pc_curl_pool *p, CURL *easy)
{
    if (!easy)
        return;
    pthread_mutex_lock(&p->idle_lock);
    if (p->nidle < PC_CURL_IDLE_MAX) {
        p->idle[p->nidle++] = easy;
        easy = NULL;
    }
    pthread_mutex_unlock(&p->idle_lock);
    if (easy)
        curl_easy_cleanup(easy);
}

int pc_curl_transient(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_SEND_FAIL_REWIND: /* a reset while sending: the next attempt sends from the start */
        return 1;
    default:
        return 0;
    }
}

void pc_curl_describe(const char *errbuf, CURLcode cc, char *out, size_t cap)
{
    if (errbuf && errbuf[0])
        snprintf(out, cap, "%s (%s)", errbuf, curl_easy_strerror(cc));
    else
        snprintf(out, cap, "%s", curl_easy_strerror(cc));
}

const char *pc_curl_hint(int https, const char *e, CURLcode cc, int *rc)
{
    if (!e)
        e = "";
    *rc = ARCA_ECONFIG;
    if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) {
        if (strstr(e, "subject name") || strstr(e, "host name"))
            return "the server's certificate is not issued for this host name: connect by a name it lists "
                   "(see the certificate's subject alternative names)";
        if (cc == CURLE_SSL_CACERT_BADFILE)
            return "ca_file cannot be read as a PEM list of certificates";
        if (strstr(e, "expired"))
            return "the server's certificate has expired";
        return "the server's certificate is not signed by a CA this machine trusts: set ca_file to the CA that "
               "signed it (verify_tls = false only for a test server)";
    }
    if (https && cc == CURLE_SSL_CONNECT_ERROR &&
        (strstr(e, "wrong version number") || strstr(e, "packet length too long") || strstr(e, "record layer")))
        return "the endpoint answered in plain HTTP, not TLS: use http:// for this port, or the server's TLS port";
    if (!https && (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_WEIRD_SERVER_REPLY) &&
        (strstr(e, "HTTP/0.9") || strstr(e, "Unsupported HTTP") || strstr(e, "nsupported")))
        return "the endpoint did not answer in HTTP (a TLS port?): use https:// for this port";
    if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
        return "check the endpoint's scheme and host";
    return NULL;
}

int pc_check_ca_file(const arca_host *host, const char *path)
{
    if (!path || !*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return host->error(host, ARCA_ECONFIG, "ca_file '%s' cannot be read: %s", path, strerror(errno));
    int n = 0;
    X509 *x;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    fclose(f);
    if (!n)
        return host->error(host, ARCA_ECONFIG, "ca_file '%s' holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                           path);
    return 0;
}

void pc_curl_common(CURL *easy, pc_curl_pool *p, char *errbuf, int verify_tls, const char *ca_file)
{
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SHARE, p->share);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    errbuf[0] = 0;
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify_tls ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify_tls ? 2L : 0L);
    if (ca_file && *ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
}
