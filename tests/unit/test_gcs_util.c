/* gcs plugin, the parts that need no server: CRC32C against the iSCSI test
 * vectors and Google's own library's values, base64 and base64url, the RS256
 * JWT of a service-account key (decoded and its signature verified with the
 * public half of a key made here), credential files, token answers, GCS's
 * error documents and what they mean for retries, the Range header of
 * resumable sessions, dates and retain_until. Each test's name says what it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../../plugins/common/pc_retry.c"
#include "../../plugins/gcs/codes.c"
#include "../../plugins/gcs/jwt.c"
#include "../../plugins/gcs/util.c"

static void crc32c_matches_the_iscsi_vectors_and_googles_library(void **state)
{
    (void)state;
    unsigned char zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    assert_int_equal(gcs_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(gcs_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(gcs_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(gcs_crc32c(0, inc, 32), 0x46DD794Eu);
    /* google_crc32c.value(b'hello world') == 0xc99465aa, base64 yZRlqg== */
    char b64[9];
    gcs_crc32c_b64(gcs_crc32c(0, "hello world", 11), b64);
    assert_string_equal(b64, "yZRlqg==");
    gcs_crc32c_b64(0xE3069283u, b64);
    assert_string_equal(b64, "4waSgw==");
}

static void crc32c_continues_across_pieces_and_the_table_agrees_with_the_instruction(void **state)
{
    (void)state;
    size_t n = 1000003;
    unsigned char *d = malloc(n);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)((i * 2654435761u) >> 13);
    uint32_t whole = gcs_crc32c(0, d, n), parts = 0;
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1)
        parts = gcs_crc32c(parts, d + off, off + step > n ? n - off : step);
    assert_int_equal(whole, parts);
    assert_int_equal(whole, ~crc_soft(~0u, d + 0, n)); /* unaligned starts too */
    assert_int_equal(gcs_crc32c(0, d + 3, n - 3), ~crc_soft(~0u, d + 3, n - 3));
    free(d);
}

static void base64url_has_no_padding_and_url_safe_letters(void **state)
{
    (void)state;
    const unsigned char v[] = {0xfb, 0xff, 0xbf, 0x01};
    char *s = gcs_b64url(v, sizeof v), std[16];
    assert_string_equal(s, "-_-_AQ");
    gcs_b64(v, sizeof v, std);
    assert_string_equal(std, "+/+/AQ==");
    free(s);
    char *e = gcs_uri_encode("a b/c~d.e_f-%");
    assert_string_equal(e, "a%20b%2Fc~d.e_f-%25");
    free(e);
}

/* A fresh RSA key as a PEM string (caller frees) and its public half. */
static char *make_rsa_key(EVP_PKEY **pub)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL, *data;
    assert_non_null(k);
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    long n = BIO_get_mem_data(b, &data);
    pem = strndup(data, (size_t)n);
    BIO_free(b);
    *pub = k;
    return pem;
}

static unsigned char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
    char *t = calloc(n + 4, 1);
    memcpy(t, s, n);
    for (size_t i = 0; i < n; i++)
        t[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : t[i];
    while (n % 4)
        t[n++] = '=';
    unsigned char *out = malloc(n);
    int len = EVP_DecodeBlock(out, (unsigned char *)t, (int)n);
    assert_true(len >= 0);
    *outlen = (size_t)len - (t[n - 1] == '=') - (t[n - 2] == '=');
    free(t);
    return out;
}

static void jwt_assertion_is_rs256_signed_with_the_key_and_claims_what_google_needs(void **state)
{
    (void)state;
    EVP_PKEY *pub;
    char *pem = make_rsa_key(&pub), err[300];
    gcs_keyfile k = {.type = "service_account", .client_email = "arca@p.iam.gserviceaccount.com", .private_key = pem,
                     .private_key_id = "kid-1", .token_uri = "http://127.0.0.1:1/token"};
    char *jwt = gcs_jwt_assertion(&k, GCS_SCOPE, 1900000000, err, sizeof err);
    assert_non_null(jwt);
    char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    size_t hl, cl, sl;
    unsigned char *h = b64url_decode(jwt, (size_t)(d1 - jwt), &hl), *c = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
    json_t *hj = json_loadb((char *)h, hl, 0, NULL), *cj = json_loadb((char *)c, cl, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(hj, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(hj, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hj, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(cj, "iss")), "arca@p.iam.gserviceaccount.com");
    assert_string_equal(json_string_value(json_object_get(cj, "aud")), "http://127.0.0.1:1/token");
    assert_string_equal(json_string_value(json_object_get(cj, "scope")), GCS_SCOPE);
    assert_int_equal(json_integer_value(json_object_get(cj, "iat")), 1900000000);
    assert_int_equal(json_integer_value(json_object_get(cj, "exp")), 1900003600);
    /* the signature verifies with the public half over "header.claims" */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, sl, (unsigned char *)jwt, (size_t)(d2 - jwt)), 1);
    /* and not over anything else */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, sl, (unsigned char *)jwt, (size_t)(d2 - jwt) - 1), 1);
    EVP_MD_CTX_free(md);
    json_decref(hj);
    json_decref(cj);
    free(h);
    free(c);
    free(sig);
    free(jwt);
    free(pem);
    EVP_PKEY_free(pub);
}

static void jwt_refuses_keys_that_are_not_rsa_or_not_pem_without_showing_them(void **state)
{
    (void)state;
    char err[300];
    gcs_keyfile k = {.type = "service_account", .client_email = "a@b", .token_uri = "u",
                     .private_key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETGARBAGE\n-----END PRIVATE KEY-----\n"};
    assert_null(gcs_jwt_assertion(&k, GCS_SCOPE, 1, err, sizeof err));
    assert_non_null(strstr(err, "not a PEM private key"));
    assert_null(strstr(err, "TOPSECRET"));
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
    long n = BIO_get_mem_data(b, &data);
    char *pem = strndup(data, (size_t)n);
    k.private_key = pem;
    assert_null(gcs_jwt_assertion(&k, GCS_SCOPE, 1, err, sizeof err));
    assert_non_null(strstr(err, "not an RSA key"));
    free(pem);
    BIO_free(b);
    EVP_PKEY_free(ec);
}

static void credential_files_parse_and_errors_never_show_secrets(void **state)
{
    (void)state;
    gcs_keyfile k;
    char err[300];
    assert_int_equal(gcs_keyfile_parse("{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"PK\","
                                       "\"private_key_id\":\"id\"}", &k, err, sizeof err), 0);
    assert_string_equal(k.token_uri, GCS_TOKEN_URI); /* Google's, unless the key names another */
    assert_string_equal(k.client_email, "a@b");
    gcs_keyfile_free(&k);
    assert_int_equal(gcs_keyfile_parse("{\"type\":\"authorized_user\",\"client_id\":\"c\",\"client_secret\":\"S3CRET\","
                                       "\"refresh_token\":\"R\",\"token_uri\":\"http://t\"}", &k, err, sizeof err), 0);
    assert_string_equal(k.token_uri, "http://t");
    gcs_keyfile_free(&k);
    assert_int_equal(gcs_keyfile_parse("{\"type\":\"service_account\",\"private_key\":\"S3CRET\"}", &k, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "client_email"));
    assert_null(strstr(err, "S3CRET"));
    assert_int_equal(gcs_keyfile_parse("{\"type\":\"external_account\"}", &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "not supported"));
    assert_int_equal(gcs_keyfile_parse("{\"type\":", &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a JSON object"));
}

static void token_answers_give_the_token_and_its_life(void **state)
{
    (void)state;
    char *t, err[200];
    int64_t life;
    const char *ok = "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    assert_int_equal(gcs_token_answer(ok, strlen(ok), &t, &life, err, sizeof err), 0);
    assert_string_equal(t, "ya29.x");
    assert_int_equal(life, 3599);
    free(t);
    assert_int_equal(gcs_token_answer("{\"token_type\":\"Bearer\"}", 23, &t, &life, err, sizeof err), -1);
    assert_non_null(strstr(err, "no access_token"));
    assert_int_equal(gcs_token_answer("<html>", 6, &t, &life, err, sizeof err), -1);
}

static void gcs_errors_give_reason_and_message_and_decide_retries(void **state)
{
    (void)state;
    char r[96], m[512];
    const char *doc = "{\"error\":{\"code\":403,\"message\":\"Object 'b/o' is subject to bucket's retention policy or "
                      "object retention and cannot be deleted or overwritten\",\"errors\":[{\"reason\":"
                      "\"retentionPolicyNotMet\"}]}}";
    assert_int_equal(gcs_error_parse(doc, strlen(doc), r, sizeof r, m, sizeof m), 1);
    assert_string_equal(r, "retentionPolicyNotMet");
    assert_non_null(strstr(m, "retention"));
    const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
    assert_int_equal(gcs_error_parse(oauth, strlen(oauth), r, sizeof r, m, sizeof m), 1);
    assert_string_equal(r, "invalid_grant");
    assert_string_equal(m, "Invalid JWT Signature.");
    assert_int_equal(gcs_error_parse("nope", 4, r, sizeof r, m, sizeof m), 0);
    assert_int_equal(gcs_classify(1, 0, ""), PC_RETRY_AGAIN);
    assert_int_equal(gcs_classify(0, 503, "backendError"), PC_RETRY_AGAIN);
    assert_int_equal(gcs_classify(0, 429, "rateLimitExceeded"), PC_RETRY_AGAIN);
    assert_int_equal(gcs_classify(0, 408, ""), PC_RETRY_AGAIN);
    assert_int_equal(gcs_classify(0, 403, "rateLimitExceeded"), PC_RETRY_AGAIN);
    assert_int_equal(gcs_classify(0, 403, "forbidden"), PC_RETRY_FAIL);
    assert_int_equal(gcs_classify(0, 401, "authError"), PC_RETRY_FAIL);
    assert_int_equal(gcs_classify(0, 412, "conditionNotMet"), PC_RETRY_FAIL);
    assert_int_equal(gcs_classify(0, 404, "notFound"), PC_RETRY_FAIL);
    assert_non_null(strstr(gcs_hint(400, "userProjectMissing"), "user_project"));
    assert_non_null(strstr(gcs_hint(404, ""), "bucket"));
    assert_non_null(strstr(gcs_hint(412, "conditionNotMet"), "never overwrite"));
}

static void resumable_range_answers_and_dates_parse_strictly(void **state)
{
    (void)state;
    uint64_t n = 0;
    assert_int_equal(gcs_parse_range("bytes=0-262143", &n), 0);
    assert_int_equal(n, 262144);
    assert_int_equal(gcs_parse_range("bytes=0-0", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gcs_parse_range("bytes=5-10", &n), -1);
    assert_int_equal(gcs_parse_range("bytes=0-", &n), -1);
    assert_int_equal(gcs_parse_range("0-10", &n), -1);
    assert_int_equal(gcs_parse_range("bytes=0-10 junk", &n), -1);
    assert_int_equal(gcs_parse_rfc3339("2031-12-31T00:00:00Z"), 1956441600);
    assert_int_equal(gcs_parse_rfc3339("2031-12-31T00:00:00.123456Z"), 1956441600);
    assert_int_equal(gcs_parse_rfc3339("2031-12-31T02:00:00+02:00"), 1956441600);
    assert_int_equal(gcs_parse_rfc3339("2031-12-31"), -1);
    assert_int_equal(gcs_parse_rfc3339("2031-13-01T00:00:00Z"), -1);
    char out[21];
    gcs_format_rfc3339(1956441600, out);
    assert_string_equal(out, "2031-12-31T00:00:00Z");
}

static void retain_until_takes_days_or_a_future_date(void **state)
{
    (void)state;
    int64_t days, until;
    char err[200];
    assert_int_equal(gcs_parse_retain("365d", 1000, &days, &until, err, sizeof err), 0);
    assert_int_equal(days, 365);
    assert_int_equal(gcs_parse_retain("2031-12-31T00:00:00Z", 1000, &days, &until, err, sizeof err), 0);
    assert_int_equal(until, 1956441600);
    assert_int_equal(gcs_parse_retain("2031-12-31T00:00:00Z", 1956441600, &days, &until, err, sizeof err), -1);
    assert_non_null(strstr(err, "in the past"));
    assert_int_equal(gcs_parse_retain("0d", 1000, &days, &until, err, sizeof err), -1);
    assert_int_equal(gcs_parse_retain("-5d", 1000, &days, &until, err, sizeof err), -1);
    assert_int_equal(gcs_parse_retain("soon", 1000, &days, &until, err, sizeof err), -1);
    assert_non_null(strstr(err, "neither a date"));
}

/* Composing n parts: every round's groups hold 2..32 sources (split evenly as
 * compose.c splits them), the last compose gets at most 32, and up to 32 x 32
 * parts one round recomposes the fewest parts that can bring the count to 32. */
static void compose_plan_needs_the_fewest_bytes_composed_twice(void **state)
{
    (void)state;
    uint32_t groups, covered;
    gcs_compose_plan(32, 32, &groups, &covered);
    assert_int_equal(groups, 0);
    gcs_compose_plan(33, 32, &groups, &covered); /* two parts into one: 32 left */
    assert_int_equal(groups, 1);
    assert_int_equal(covered, 2);
    gcs_compose_plan(64, 32, &groups, &covered); /* 1 GiB in 16 MiB parts: 34 composed twice, not 64 */
    assert_int_equal(groups, 2);
    assert_int_equal(covered, 34);
    gcs_compose_plan(1024, 32, &groups, &covered);
    assert_int_equal(groups, 32);
    assert_int_equal(covered, 1024);
    for (uint32_t n = 1; n <= 40000; n++) {
        uint32_t left = n, rounds = 0, twice = 0;
        while (left > 32) {
            gcs_compose_plan(left, 32, &groups, &covered);
            assert_true(groups >= 1 && covered <= left);
            for (uint32_t k = 0; k < groups; k++) {
                uint32_t size = (uint32_t)((uint64_t)covered * (k + 1) / groups - (uint64_t)covered * k / groups);
                if (size < 2 || size > 32)
                    fail_msg("n=%u: a group of %u sources", left, size);
            }
            twice += covered;
            left = groups + (left - covered);
            rounds++;
        }
        if (n > 32 && n <= 1024 && (rounds != 1 || left != 32 || twice != n - 32 + (n - 32 + 30) / 31))
            fail_msg("n=%u: %u rounds, %u left, %u composed twice", n, rounds, left, twice);
        if (n > 1024 && rounds > 3)
            fail_msg("n=%u: %u rounds", n, rounds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_iscsi_vectors_and_googles_library),
        cmocka_unit_test(crc32c_continues_across_pieces_and_the_table_agrees_with_the_instruction),
        cmocka_unit_test(base64url_has_no_padding_and_url_safe_letters),
        cmocka_unit_test(jwt_assertion_is_rs256_signed_with_the_key_and_claims_what_google_needs),
        cmocka_unit_test(jwt_refuses_keys_that_are_not_rsa_or_not_pem_without_showing_them),
        cmocka_unit_test(credential_files_parse_and_errors_never_show_secrets),
        cmocka_unit_test(token_answers_give_the_token_and_its_life),
        cmocka_unit_test(gcs_errors_give_reason_and_message_and_decide_retries),
        cmocka_unit_test(resumable_range_answers_and_dates_parse_strictly),
        cmocka_unit_test(retain_until_takes_days_or_a_future_date),
        cmocka_unit_test(compose_plan_needs_the_fewest_bytes_composed_twice),
    };
    return cmocka_run_group_tests_name("gcs_util", tests, NULL, NULL);
}
