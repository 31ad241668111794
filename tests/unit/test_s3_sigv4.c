/* s3 plugin, pure parts compiled straight from plugins/s3: SigV4 against the
 * worked examples AWS publishes (the general SigV4 test suite and IAM example,
 * and the four S3 examples of "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk"), the XML/INI/JSON
 * scanners, the retry policy and the part size schedule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/s3/parse.c"
#include "../../plugins/common/pc_retry.c"
#include "../../plugins/s3/codes.c"
#include "../../plugins/s3/sigv4.c"

/* The general suite's credentials and date (service "service", us-east-1). */
#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
/* The S3 examples' credentials and date. */
#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static char *sign(const char *method, const char *path, const s3_kv *q, size_t nq, const s3_kv *h, size_t nh,
                  const char *payload, const char *region, const char *service, const char *date, const char *key,
                  const char *secret, char sig[65])
{
    s3_sign_input in = {method, path, q, nq, h, nh, payload, region, service, date, key, secret};
    char *auth = s3_authorization(&in, sig);
    assert_non_null(auth);
    return auth;
}

/* ---- the general Signature Version 4 test suite ---- */

static void sigv4_suite_get_vanilla(void **state)
{
    (void)state;
    s3_kv h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
    char sig[65];
    char *auth = sign("GET", "/", NULL, 0, h, 2, S3_EMPTY_SHA256, "us-east-1", "service", SUITE_DATE, SUITE_KEY,
                      SUITE_SECRET, sig);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                              "SignedHeaders=host;x-amz-date, "
                              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    free(auth);
}

static void sigv4_suite_query_parameters_are_sorted(void **state)
{
    (void)state;
    s3_kv h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
    s3_kv q[] = {{"Param2", "value2"}, {"Param1", "value1"}}; /* get-vanilla-query-order-key-case */
    char sig[65];
    free(sign("GET", "/", q, 2, h, 2, S3_EMPTY_SHA256, "us-east-1", "service", SUITE_DATE, SUITE_KEY, SUITE_SECRET,
              sig));
    assert_string_equal(sig, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void sigv4_suite_post_vanilla(void **state)
{
    (void)state;
    s3_kv h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
    char sig[65];
    free(sign("POST", "/", NULL, 0, h, 2, S3_EMPTY_SHA256, "us-east-1", "service", SUITE_DATE, SUITE_KEY,
              SUITE_SECRET, sig));
    assert_string_equal(sig, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

/* "Examples of the complete Version 4 signing process": IAM ListUsers. */
static void sigv4_iam_example_signing_key_canonical_request_and_signature(void **state)
{
    (void)state;
    unsigned char key[32];
    char hex[65], sig[65], *signed_headers = NULL;
    s3_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                 {"Host", "iam.amazonaws.com"},
                 {"X-Amz-Date", SUITE_DATE}};
    s3_kv q[] = {{"Action", "ListUsers"}, {"Version", "2010-05-08"}};
    s3_sign_input in = {"GET", "/", q, 2, h, 3, S3_EMPTY_SHA256, "us-east-1", "iam", SUITE_DATE, SUITE_KEY,
                        SUITE_SECRET};

    s3_signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam", key);
    s3_hex(key, 32, hex);
    assert_string_equal(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");

    char *creq = s3_canonical_request(&in, &signed_headers);
    assert_string_equal(creq, "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
                              "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
                              "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                              "content-type;host;x-amz-date\n" S3_EMPTY_SHA256);
    assert_string_equal(signed_headers, "content-type;host;x-amz-date");
    s3_sha256_hex(creq, strlen(creq), hex);
    assert_string_equal(hex, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    char *sts = s3_string_to_sign(SUITE_DATE, "us-east-1", "iam", creq);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
                             "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    free(sts);
    free(creq);
    free(signed_headers);
    free(s3_authorization(&in, sig));
    assert_string_equal(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

/* ---- the S3 examples ---- */

static void sigv4_s3_example_get_object_with_range(void **state)
{
    (void)state;
    s3_kv h[] = {{"host", S3_HOST}, {"range", "bytes=0-9"}, {"x-amz-content-sha256", S3_EMPTY_SHA256},
                 {"x-amz-date", S3_DATE}};
    s3_sign_input in = {"GET", "/test.txt", NULL, 0, h, 4, S3_EMPTY_SHA256, "us-east-1", "s3", S3_DATE, S3_KEY,
                        S3_SECRET};
    char *sh = NULL, *creq = s3_canonical_request(&in, &sh), sig[65];
    assert_string_equal(creq, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                              "x-amz-content-sha256:" S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                              "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256);
    free(creq);
    free(sh);
    char *auth = s3_authorization(&in, sig);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    free(auth);
}

static void sigv4_s3_example_put_object_encodes_the_key_and_signs_the_payload(void **state)
{
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char hash[65], sig[65];
    s3_sha256_hex(body, strlen(body), hash);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    s3_kv h[] = {{"Host", S3_HOST},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-date", S3_DATE},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                 {"x-amz-content-sha256", hash}};
    s3_sign_input in = {"PUT", "/test$file.text", NULL, 0, h, 5, hash, "us-east-1", "s3", S3_DATE, S3_KEY,
                        S3_SECRET};
    char *sh = NULL, *creq = s3_canonical_request(&in, &sh), chash[65];
    assert_non_null(strstr(creq, "PUT\n/test%24file.text\n\n"));
    assert_string_equal(sh, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    s3_sha256_hex(creq, strlen(creq), chash);
    assert_string_equal(chash, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    free(creq);
    free(sh);
    free(s3_authorization(&in, sig));
    assert_string_equal(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void sigv4_s3_example_get_bucket_lifecycle_query_without_value(void **state)
{
    (void)state;
    s3_kv h[] = {{"host", S3_HOST}, {"x-amz-content-sha256", S3_EMPTY_SHA256}, {"x-amz-date", S3_DATE}};
    s3_kv q[] = {{"lifecycle", ""}};
    char sig[65];
    s3_sign_input in = {"GET", "/", q, 1, h, 3, S3_EMPTY_SHA256, "us-east-1", "s3", S3_DATE, S3_KEY, S3_SECRET};
    char *sh = NULL, *creq = s3_canonical_request(&in, &sh);
    assert_non_null(strstr(creq, "GET\n/\nlifecycle=\n"));
    free(creq);
    free(sh);
    free(s3_authorization(&in, sig));
    assert_string_equal(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void sigv4_s3_example_list_objects_sorts_the_query(void **state)
{
    (void)state;
    s3_kv h[] = {{"host", S3_HOST}, {"x-amz-content-sha256", S3_EMPTY_SHA256}, {"x-amz-date", S3_DATE}};
    s3_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}}; /* given out of order */
    char sig[65];
    free(sign("GET", "/", q, 2, h, 3, S3_EMPTY_SHA256, "us-east-1", "s3", S3_DATE, S3_KEY, S3_SECRET, sig));
    assert_string_equal(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void sigv4_a_different_secret_gives_a_different_signature(void **state)
{
    (void)state;
    s3_kv h[] = {{"host", S3_HOST}, {"x-amz-content-sha256", S3_EMPTY_SHA256}, {"x-amz-date", S3_DATE}};
    char a[65], b[65];
    free(sign("GET", "/k", NULL, 0, h, 3, S3_EMPTY_SHA256, "us-east-1", "s3", S3_DATE, S3_KEY, S3_SECRET, a));
    free(sign("GET", "/k", NULL, 0, h, 3, S3_EMPTY_SHA256, "us-east-1", "s3", S3_DATE, S3_KEY, "other", b));
    assert_string_not_equal(a, b);
}

/* ---- encoding ---- */

static void uri_encode_keeps_only_unreserved_bytes_and_optionally_slashes(void **state)
{
    (void)state;
    char *a = s3_uri_encode("a b/c+d=\xc3\xa9~-_.!*'()", 0), *b = s3_uri_encode("dir/a b+1", 1);
    assert_string_equal(a, "a%20b%2Fc%2Bd%3D%C3%A9~-_.%21%2A%27%28%29");
    assert_string_equal(b, "dir/a%20b%2B1");
    free(a);
    free(b);
}

static void canonical_query_encodes_values_sorts_and_keeps_empty_values(void **state)
{
    (void)state;
    s3_kv q[] = {{"uploadId", "a/b+c="}, {"partNumber", "10"}, {"uploads", ""}, {"list-type", "2"},
                 {"prefix", "backups/x y"}};
    char *s = s3_canonical_query(q, 5);
    assert_string_equal(s, "list-type=2&partNumber=10&prefix=backups%2Fx%20y&uploadId=a%2Fb%2Bc%3D&uploads=");
    free(s);
    s = s3_canonical_query(NULL, 0);
    assert_string_equal(s, "");
    free(s);
}

static void canonical_headers_are_lowercased_trimmed_and_collapsed(void **state)
{
    (void)state;
    s3_kv h[] = {{"X-Amz-Meta-Note", "  two   words  here "}, {"Host", "h"}};
    s3_sign_input in = {"GET", "/", NULL, 0, h, 2, S3_EMPTY_SHA256, "r", "s3", S3_DATE, "k", "s"};
    char *sh = NULL, *creq = s3_canonical_request(&in, &sh);
    assert_non_null(strstr(creq, "\nhost:h\nx-amz-meta-note:two words here\n\nhost;x-amz-meta-note\n"));
    free(creq);
    free(sh);
}

static void content_md5_is_base64_of_the_digest(void **state)
{
    (void)state;
    char m[25];
    s3_md5_base64("", 0, m);
    assert_string_equal(m, "1B2M2Y8AsgTpgAmY7PhCfg==");
}

/* ---- what S3 answers ---- */

static void xml_list_page_gives_keys_sizes_dates_and_the_continuation_token(void **state)
{
    (void)state;
    const char *x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                    "<Prefix>p-</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
                    "<Contents><Key>p-a&amp;b.arca</Key><LastModified>2026-11-21T06:01:23.000Z</LastModified>"
                    "<ETag>&quot;abc&quot;</ETag><Size>3008512</Size><StorageClass>STANDARD</StorageClass></Contents>"
                    "<Contents><Key>p-c.manifest.json</Key><LastModified>2026-11-21T06:01:24Z</LastModified>"
                    "<Size>10</Size></Contents>"
                    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
                    "</ListBucketResult>";
    char key[64], size[32], tok[128], etag[32];
    s3x_doc *doc = s3x_parse(x, strlen(x));
    assert_non_null(doc);
    assert_string_equal(s3x_root_name(doc), "ListBucketResult");
    s3x_node *c = s3x_child(doc, NULL, "Contents");
    assert_non_null(c);
    assert_true(s3x_text_buf(doc, c, "Key", key, sizeof key));
    assert_string_equal(key, "p-a&b.arca");
    assert_true(s3x_text_buf(doc, c, "Size", size, sizeof size));
    assert_string_equal(size, "3008512");
    assert_true(s3x_text_buf(doc, c, "ETag", etag, sizeof etag));
    assert_string_equal(etag, "\"abc\"");
    c = s3x_next(c);
    assert_non_null(c);
    assert_true(s3x_text_buf(doc, c, "Key", key, sizeof key));
    assert_string_equal(key, "p-c.manifest.json");
    assert_null(s3x_next(c));
    assert_true(s3x_text_buf(doc, NULL, "NextContinuationToken", tok, sizeof tok));
    assert_string_equal(tok, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    s3x_free(doc);
    /* an answer cut short is no answer at all */
    assert_null(s3x_parse(x, strlen(x) - 20));
    const char *cut = "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket><Key>k</Key><ETag>";
    assert_null(s3x_parse(cut, strlen(cut)));
    /* no entities from outside, no network */
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r><k>&e;</k></r>";
    doc = s3x_parse(xxe, strlen(xxe));
    char k[64] = "?";
    if (doc)
        s3x_text_buf(doc, NULL, "k", k, sizeof k);
    assert_null(strstr(k, "root:"));
    s3x_free(doc);
    assert_int_equal(s3_parse_iso8601("2026-11-21T06:01:23.000Z"), 1795240883);
    assert_int_equal(s3_parse_iso8601("2013-05-24T00:00:00Z"), 1369353600);
    assert_int_equal(s3_parse_iso8601("2013-05-24T02:00:00+02:00"), 1369353600);
    assert_int_equal(s3_parse_iso8601("yesterday"), -1);
}

static void xml_error_body_gives_code_and_message_even_inside_a_200(void **state)
{
    (void)state;
    /* CompleteMultipartUpload may answer 200 and fail in the body */
    const char *x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>"
                    "<Message>We encountered an internal error. Please try again.</Message>"
                    "<RequestId>656c76696e6727732072657175657374</RequestId></Error>";
    char code[64], msg[128];
    s3x_doc *doc = s3x_parse(x, strlen(x));
    assert_non_null(doc);
    assert_string_equal(s3x_root_name(doc), "Error");
    assert_true(s3x_text_buf(doc, NULL, "Code", code, sizeof code));
    assert_string_equal(code, "InternalError");
    assert_true(s3x_text_buf(doc, NULL, "Message", msg, sizeof msg));
    assert_string_equal(msg, "We encountered an internal error. Please try again.");
    s3x_free(doc);
    assert_int_equal(s3_classify(0, 200, code), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 200, "AccessDenied"), PC_RETRY_FAIL);
    assert_int_equal(s3_classify(0, 200, ""), PC_RETRY_DONE);
    /* an empty element and a self-closing one */
    const char *y = "<R><Prefix></Prefix><Marker/></R>";
    doc = s3x_parse(y, strlen(y));
    assert_true(s3x_text_buf(doc, NULL, "Prefix", msg, sizeof msg));
    assert_string_equal(msg, "");
    assert_true(s3x_text_buf(doc, NULL, "Marker", msg, sizeof msg));
    assert_false(s3x_text_buf(doc, NULL, "Absent", msg, sizeof msg));
    s3x_free(doc);
    char *e = s3_xml_escape("a<b>&\"'");
    assert_string_equal(e, "a&lt;b&gt;&amp;&quot;&apos;");
    free(e);
    const char *ent = "<R><K>&#233;&#x41;&lt;</K></R>";
    doc = s3x_parse(ent, strlen(ent));
    assert_true(s3x_text_buf(doc, NULL, "K", msg, sizeof msg));
    assert_string_equal(msg, "\xc3\xa9" "A<");
    s3x_free(doc);
}

static void shared_files_give_the_profile_section_and_imds_json_the_keys(void **state)
{
    (void)state;
    const char *cred = "# comment\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=sdef\n\n"
                       "[ backup ]\r\naws_access_key_id =AKBACKUP\r\naws_secret_access_key = s b \r\n";
    const char *conf = "[profile backup]\nregion = eu-west-3\n[default]\nregion=us-west-2\n";
    char v[64];
    assert_true(s3_ini_get(cred, "backup", "aws_access_key_id", v, sizeof v));
    assert_string_equal(v, "AKBACKUP");
    assert_true(s3_ini_get(cred, "backup", "aws_secret_access_key", v, sizeof v));
    assert_string_equal(v, "s b");
    assert_true(s3_ini_get(cred, "default", "aws_access_key_id", v, sizeof v));
    assert_string_equal(v, "AKDEFAULT");
    assert_false(s3_ini_get(cred, "backup", "aws_session_token", v, sizeof v));
    assert_true(s3_ini_get(conf, "profile backup", "region", v, sizeof v));
    assert_string_equal(v, "eu-west-3");
    assert_false(s3_ini_get(conf, "backup", "region", v, sizeof v));

    const char *imds = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-11-21T06:00:00Z\",\n"
                       "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
                       "  \"SecretAccessKey\" : \"sec\\/ret\",\n  \"Token\" : \"tok==\",\n"
                       "  \"Expiration\" : \"2026-11-21T12:00:00Z\"\n}";
    assert_true(s3_json_str(imds, "AccessKeyId", v, sizeof v));
    assert_string_equal(v, "ASIAEXAMPLE");
    assert_true(s3_json_str(imds, "SecretAccessKey", v, sizeof v));
    assert_string_equal(v, "sec/ret");
    assert_true(s3_json_str(imds, "Expiration", v, sizeof v));
    assert_string_equal(v, "2026-11-21T12:00:00Z");
    assert_false(s3_json_str(imds, "Nope", v, sizeof v));
}

/* ---- policy ---- */

static void retry_policy_retries_transient_failures_and_fails_fast_on_client_errors(void **state)
{
    (void)state;
    assert_int_equal(s3_classify(1, 0, ""), PC_RETRY_AGAIN);                 /* reset, timeout */
    assert_int_equal(s3_classify(0, 503, "SlowDown"), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 500, "InternalError"), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 502, ""), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 429, ""), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 400, "RequestTimeout"), PC_RETRY_AGAIN);
    assert_int_equal(s3_classify(0, 403, "SignatureDoesNotMatch"), PC_RETRY_FAIL);
    assert_int_equal(s3_classify(0, 403, "AccessDenied"), PC_RETRY_FAIL);
    assert_int_equal(s3_classify(0, 404, "NoSuchKey"), PC_RETRY_FAIL);
    assert_int_equal(s3_classify(0, 400, "InvalidArgument"), PC_RETRY_FAIL);
    assert_int_equal(s3_classify(0, 204, ""), PC_RETRY_DONE);
    const char *hint = s3_hint(403, "SignatureDoesNotMatch");
    assert_non_null(strstr(hint, "secret_access_key"));
    assert_non_null(strstr(hint, "clock"));
    assert_non_null(s3_hint(403, "InvalidAccessKeyId"));
    assert_non_null(s3_hint(301, ""));
    assert_null(s3_hint(500, "InternalError"));
}

static void backoff_grows_exponentially_with_jitter_and_a_ceiling(void **state)
{
    (void)state;
    for (uint32_t r = 0; r < 2000; r += 97) {
        assert_in_range(pc_backoff_ms(1, r), 50, 100);
        assert_in_range(pc_backoff_ms(2, r), 100, 200);
        assert_in_range(pc_backoff_ms(5, r), 800, 1600);
        assert_in_range(pc_backoff_ms(30, r), 10000, 20000);
    }
    assert_true(pc_backoff_ms(1, 0) != pc_backoff_ms(1, 37)); /* jitter */
}

static void part_sizes_reach_5_tib_within_10000_parts_even_from_5_mib(void **state)
{
    (void)state;
    uint64_t bases[] = {S3_MIN_PART, (uint64_t)16 << 20, (uint64_t)100 << 20, S3_MAX_PART};
    for (size_t b = 0; b < 4; b++) {
        uint64_t sum = 0, prev = 0;
        for (uint32_t n = 1; n <= S3_MAX_PARTS; n++) {
            uint64_t s = s3_part_size_for(bases[b], n);
            assert_true(s >= S3_MIN_PART && s <= S3_MAX_PART);
            assert_true(s >= prev); /* never shrinks */
            prev = s;
            sum += s;
        }
        assert_true(sum >= S3_MAX_OBJECT);
    }
    /* the configured size holds for the first 900 parts: 14 GiB at 16 MiB */
    assert_int_equal(s3_part_size_for((uint64_t)16 << 20, 1), (uint64_t)16 << 20);
    assert_int_equal(s3_part_size_for((uint64_t)16 << 20, 900), (uint64_t)16 << 20);
    assert_int_equal(s3_part_size_for((uint64_t)16 << 20, 901), (uint64_t)32 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigv4_suite_get_vanilla),
        cmocka_unit_test(sigv4_suite_query_parameters_are_sorted),
        cmocka_unit_test(sigv4_suite_post_vanilla),
        cmocka_unit_test(sigv4_iam_example_signing_key_canonical_request_and_signature),
        cmocka_unit_test(sigv4_s3_example_get_object_with_range),
        cmocka_unit_test(sigv4_s3_example_put_object_encodes_the_key_and_signs_the_payload),
        cmocka_unit_test(sigv4_s3_example_get_bucket_lifecycle_query_without_value),
        cmocka_unit_test(sigv4_s3_example_list_objects_sorts_the_query),
        cmocka_unit_test(sigv4_a_different_secret_gives_a_different_signature),
        cmocka_unit_test(uri_encode_keeps_only_unreserved_bytes_and_optionally_slashes),
        cmocka_unit_test(canonical_query_encodes_values_sorts_and_keeps_empty_values),
        cmocka_unit_test(canonical_headers_are_lowercased_trimmed_and_collapsed),
        cmocka_unit_test(content_md5_is_base64_of_the_digest),
        cmocka_unit_test(xml_list_page_gives_keys_sizes_dates_and_the_continuation_token),
        cmocka_unit_test(xml_error_body_gives_code_and_message_even_inside_a_200),
        cmocka_unit_test(shared_files_give_the_profile_section_and_imds_json_the_keys),
        cmocka_unit_test(retry_policy_retries_transient_failures_and_fails_fast_on_client_errors),
        cmocka_unit_test(backoff_grows_exponentially_with_jitter_and_a_ceiling),
        cmocka_unit_test(part_sizes_reach_5_tib_within_10000_parts_even_from_5_mib),
    };
    return cmocka_run_group_tests_name("s3_sigv4", tests, NULL, NULL);
}
