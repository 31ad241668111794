/* s3 plugin: pure helpers with no network and no curl, so that unit tests can
 * compile them directly: SigV4 (sigv4.c, OpenSSL only), S3's XML (libxml2), the
 * AWS INI files (inih) and IMDS JSON (jansson), dates, part sizing (parse.c),
 * and what S3 error codes mean for retries and hints (codes.c). */
#ifndef ARCA_S3UTIL_H
#define ARCA_S3UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pc_retry.h"

/* A name/value pair: query parameters and request headers. */
typedef struct s3_kv {
    const char *name;
    const char *value;
} s3_kv;

/* ---- sigv4.c ---------------------------------------------------------------- */

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

void s3_hex(const unsigned char *in, size_t n, char *out); /* out: 2n+1 bytes */
void s3_sha256_hex(const void *data, size_t n, char out[65]);
/* Base64 of the MD5 of data (Content-MD5), out: 25 bytes. */
void s3_md5_base64(const void *data, size_t n, char out[25]);

/* SigV4 URI encoding: every byte but A-Z a-z 0-9 - _ . ~ becomes %XX
 * (uppercase hex); '/' is kept when keep_slash (paths). malloc'd, NULL on OOM. */
char *s3_uri_encode(const char *s, int keep_slash);
/* The canonical query string: names and values encoded, sorted by name then
 * value, joined with '&'; a parameter without value gives "name=". Also the
 * query string to send, so that what is signed is what is sent. malloc'd. */
char *s3_canonical_query(const s3_kv *q, size_t n);

typedef struct s3_sign_input {
    const char *method;
    const char *path;     /* unencoded absolute path, e.g. "/bucket/a b.txt" */
    const s3_kv *query;   /* unencoded */
    size_t nquery;
    const s3_kv *headers; /* every header to sign, host and x-amz-date included */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body or UNSIGNED-PAYLOAD */
    const char *region;
    const char *service;
    const char *amz_date; /* YYYYMMDDTHHMMSSZ */
    const char *access_key;
    const char *secret_key;
} s3_sign_input;

/* The canonical request; *signed_headers (malloc'd) gets "a;b;c". NULL on OOM. */
char *s3_canonical_request(const s3_sign_input *in, char **signed_headers);
/* kSigning = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request". */
void s3_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                    unsigned char out[32]);
/* The string to sign for a canonical request. malloc'd. */
char *s3_string_to_sign(const char *amz_date, const char *region, const char *service,
                        const char *canonical_request);
/* The Authorization header value. malloc'd, NULL on OOM. When sig is not
 * NULL it receives the hex signature (65 bytes). */
char *s3_authorization(const s3_sign_input *in, char *sig);
/* t as YYYYMMDDTHHMMSSZ (UTC). */
void s3_amz_date(time_t t, char out[17]);

/* ---- parse.c ---------------------------------------------------------------- */

/* S3's XML answers, through libxml2 (no DTD, no external entities, no network). */
typedef struct _xmlDoc s3x_doc;
typedef struct _xmlNode s3x_node;
/* The whole answer as a document; NULL when it is not one complete,
 * well-formed XML document (cut short, garbage, empty, over 64 MiB). */
s3x_doc *s3x_parse(const char *body, size_t len);
void s3x_free(s3x_doc *doc);
/* The root element's name ("" without one): "Error", "ListBucketResult", ... */
const char *s3x_root_name(s3x_doc *doc);
/* The first child element `name` of `parent` (NULL: of the root), matched by
 * local name whatever its namespace; NULL if none. */
s3x_node *s3x_child(s3x_doc *doc, s3x_node *parent, const char *name);
/* The next sibling element with the same name as `node`. */
s3x_node *s3x_next(s3x_node *node);
/* The text of child `name` of `parent` (entities decoded), malloc'd; NULL if absent. */
char *s3x_text(s3x_doc *doc, s3x_node *parent, const char *name);
/* The same into out (truncated to cap-1). 1 if found, 0 if not. */
int s3x_text_buf(s3x_doc *doc, s3x_node *parent, const char *name, char *out, size_t cap);
/* s with & < > " ' escaped, malloc'd. */
char *s3_xml_escape(const char *s);

/* "2013-05-24T00:00:00Z" or with fractional seconds or "+00:00": seconds since
 * the epoch; -1 if malformed. */
int64_t s3_parse_iso8601(const char *s);
/* t as 2030-01-01T00:00:00Z. */
void s3_format_iso8601(time_t t, char out[21]);

/* AWS shared config/credentials files (inih): the value of key in [section]
 * (the section text between the brackets). 1 if found. */
int s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t cap);
/* A JSON object (jansson): the string value of "key" into out. 1 if found. */
int s3_json_str(const char *json, const char *key, char *out, size_t cap);

#define S3_MAX_PARTS 10000u
#define S3_MIN_PART ((uint64_t)5 << 20)
#define S3_MAX_PART ((uint64_t)5 << 30)
#define S3_MAX_OBJECT ((uint64_t)5 << 40)
#define S3_MAX_KEY 1024 /* bytes of an object key, prefix included */
/* Parts per size step: the size doubles every S3_PART_STEP parts, which keeps
 * 10,000 parts enough for 5 TiB even from the 5 MiB minimum. */
#define S3_PART_STEP 900u
/* Size of part `n` (1-based) for a configured base size: base, doubled every
 * S3_PART_STEP parts, capped at 5 GiB. */
uint64_t s3_part_size_for(uint64_t base, uint32_t n);

/* ---- codes.c ---------------------------------------------------------------- */

/* What to do with an answer (the common HTTP policy refined by S3's codes):
 * `transport` is nonzero when no complete answer came; else HTTP status and
 * S3 error code ("" if none). 2xx with an error body (CompleteMultipartUpload)
 * is passed as status 200 with its code. */
pc_verdict s3_classify(int transport, long status, const char *code);
/* One line the user can act on for an S3 error, or NULL. */
const char *s3_hint(long status, const char *code);

#endif
