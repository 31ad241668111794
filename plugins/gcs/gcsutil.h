/* gcs plugin: pure helpers with no network and no curl, so that unit tests can
 * compile them directly: CRC32C and base64 (util.c), the RS256 JWT of a
 * service-account key and the credential files (jwt.c, OpenSSL and jansson),
 * GCS's JSON error answers, its Range header, dates, and what its answers mean
 * for retries and hints (codes.c). */
#ifndef ARCA_GCSUTIL_H
#define ARCA_GCSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pc_retry.h"

/* Every chunk of a resumable upload but the last is a multiple of this. */
#define GCS_CHUNK_UNIT ((uint64_t)256 << 10)
#define GCS_MAX_OBJECT ((uint64_t)5 << 40) /* 5 TiB */
#define GCS_MAX_NAME 1024                  /* bytes of an object name, prefix included */
#define GCS_COMPOSE_MAX 32                 /* sources of one compose request */

/* ---- util.c ----------------------------------------------------------------- */

/* CRC32C (Castagnoli) of data, continuing `crc` (0 to start), as zlib's crc32:
 * gcs_crc32c(gcs_crc32c(0, a, n), b, m) is the CRC of a then b. Uses the
 * SSE 4.2 instruction where the CPU has it. */
uint32_t gcs_crc32c(uint32_t crc, const void *data, size_t n);
/* How one round of composing brings n sources towards max (the sources of one
 * compose request): *groups intermediates made of the first *covered sources
 * (0 and 0 when n <= max). Up to max x max sources one round is enough and
 * leaves exactly max sources for the last compose; beyond, every source goes
 * into a group of max (the last one smaller) and another round follows. */
void gcs_compose_plan(uint32_t n, uint32_t max, uint32_t *groups, uint32_t *covered);
/* The form GCS reports: base64 of the CRC's 4 bytes, big-endian (9 bytes with NUL). */
void gcs_crc32c_b64(uint32_t crc, char out[9]);
/* Standard base64 with padding; out needs 4 * ((n + 2) / 3) + 1 bytes. */
void gcs_b64(const void *data, size_t n, char *out);
/* base64url without padding (JWT segments), malloc'd; NULL on OOM. */
char *gcs_b64url(const void *data, size_t n);
/* MD5 of data as GCS reports it (base64), out: 25 bytes. */
void gcs_md5_b64(const unsigned char digest[16], char out[25]);

/* Percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (object names in paths
 * and query values). malloc'd, NULL on OOM. */
char *gcs_uri_encode(const char *s);

/* RFC 3339 ("2031-12-31T00:00:00Z", fractions and offsets allowed) to Unix
 * seconds; -1 if malformed. */
int64_t gcs_parse_rfc3339(const char *s);
/* t as 2031-12-31T00:00:00Z. */
void gcs_format_rfc3339(time_t t, char out[21]);

/* A resumable session's Range answer "bytes=0-N": *persisted = N + 1.
 * 0 when parsed, -1 when malformed or not starting at 0. */
int gcs_parse_range(const char *value, uint64_t *persisted);

/* retain_until: "365d" (days from each upload) or a date. 0 and one of
 * *days / *until set; -1 with the reason in err. `now` decides "in the past". */
int gcs_parse_retain(const char *v, time_t now, int64_t *days, int64_t *until, char *err, size_t errlen);

/* ---- jwt.c ---------------------------------------------------------------- */

/* A credentials file (JSON): a service-account key or gcloud's authorized_user
 * file. Strings malloc'd; secrets wiped by gcs_keyfile_free. */
typedef struct gcs_keyfile {
    char *type;           /* "service_account" or "authorized_user" */
    char *client_email;   /* service_account */
    char *private_key;    /* service_account: PEM (secret) */
    char *private_key_id; /* service_account: the JWT's kid, may be NULL */
    char *token_uri;      /* where to trade the JWT or refresh token */
    char *client_id;      /* authorized_user */
    char *client_secret;  /* authorized_user (secret) */
    char *refresh_token;  /* authorized_user (secret) */
    char *quota_project;  /* quota_project_id, may be NULL */
} gcs_keyfile;

#define GCS_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_SCOPE "https://www.googleapis.com/auth/devstorage.read_write"

/* Parses a credentials file. 0, or -1 with the reason (never a secret) in err. */
int gcs_keyfile_parse(const char *json, gcs_keyfile *out, char *err, size_t errlen);
void gcs_keyfile_free(gcs_keyfile *k);

/* The signed assertion a service account trades for an access token: JWT
 * header {"alg":"RS256","typ":"JWT"[,"kid"]} and claims iss, scope, aud,
 * iat = now, exp = now + 3600, signed RS256 with the key's PEM private key.
 * malloc'd; NULL with the reason in err. */
char *gcs_jwt_assertion(const gcs_keyfile *k, const char *scope, int64_t now, char *err, size_t errlen);

/* An OAuth token answer {"access_token","expires_in","token_type"}: the token
 * (malloc'd) and its lifetime in seconds. 0, or -1 with the reason in err. */
int gcs_token_answer(const char *json, size_t len, char **token, int64_t *expires_in, char *err, size_t errlen);

/* ---- codes.c -------------------------------------------------------------- */

/* GCS's JSON error {"error":{"code","message","errors":[{"reason"}]}}: reason
 * and message copied out (empty when absent). 1 when it was such a document. */
int gcs_error_parse(const char *body, size_t len, char *reason, size_t rcap, char *message, size_t mcap);
/* The common HTTP policy refined by GCS's reasons: `transport` nonzero when
 * no complete answer came. */
pc_verdict gcs_classify(int transport, long status, const char *reason);
/* One line the user can act on, or NULL. */
const char *gcs_hint(long status, const char *reason);

#endif
