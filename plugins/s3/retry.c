/* s3 plugin: the retry policy (which answers are worth another try, how long
 * to wait) and the hints shown with errors that will not go away by retrying. */
#include <string.h>

#include "s3util.h"

s3_verdict s3_classify(int transport, long status, const char *code)
{
    if (!code)
        code = "";
    if (transport)
        return S3_RETRY; /* reset, timeout, refused, truncated answer */
    if (status >= 200 && status < 300)
        /* a 2xx carrying an <Error> (CompleteMultipartUpload, CopyObject) */
        return *code ? (!strcmp(code, "InternalError") || !strcmp(code, "SlowDown") ||
                                !strcmp(code, "ServiceUnavailable")
                            ? S3_RETRY
                            : S3_FAIL)
                     : S3_DONE;
    if (status >= 500 || status == 429)
        return S3_RETRY; /* 500 InternalError, 503 SlowDown, 502/504 from proxies, throttling */
    if (status == 408)
        return S3_RETRY;
    if (status == 400 && (!strcmp(code, "RequestTimeout") || !strcmp(code, "ExpiredToken") ||
                          !strcmp(code, "TokenRefreshRequired")))
        return S3_RETRY; /* idle socket closed by S3; instance credentials about to be renewed */
    if (status == 403 && !strcmp(code, "ExpiredToken"))
        return S3_RETRY;
    return S3_FAIL; /* 400, 403, 404, 409, 412 ...: the same request gets the same answer */
}

uint64_t s3_backoff_ms(unsigned attempt, uint32_t rnd)
{
    uint64_t cap = 100;
    for (unsigned i = 1; i < attempt && cap < 20000; i++)
        cap *= 2;
    if (cap > 20000)
        cap = 20000;
    /* jitter in [cap/2, cap]: parallel uploads that failed together do not
     * come back together, yet every wait still grows */
    return cap / 2 + (uint64_t)rnd % (cap / 2 + 1);
}

const char *s3_hint(long status, const char *code)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"SignatureDoesNotMatch", "check secret_access_key, and that this machine's clock is right"},
        {"InvalidAccessKeyId", "check access_key_id: the key is unknown to this endpoint (deleted, or for another service)"},
        {"AccessDenied", "the credentials lack a permission on this bucket (s3:PutObject, s3:GetObject, s3:ListBucket, "
                         "s3:DeleteObject, s3:AbortMultipartUpload), or a bucket policy or object lock denies it"},
        {"NoSuchBucket", "check bucket, endpoint and region"},
        {"RequestTimeTooSkewed", "this machine's clock is off by more than 15 minutes: fix it (NTP)"},
        {"AuthorizationHeaderMalformed", "the bucket lives in another region: set region"},
        {"PermanentRedirect", "the bucket lives in another region or behind another endpoint: set region or endpoint"},
        {"IllegalLocationConstraintException", "the bucket lives in another region: set region"},
        {"ExpiredToken", "the session token expired: renew the temporary credentials"},
        {"InvalidToken", "session_token is not valid for these keys"},
        {"InvalidStorageClass", "storage_class is not one this store accepts"},
        {"KMS.NotFoundException", "sse_kms_key_id does not name a KMS key in this region"},
        {"InvalidBucketState", "object lock needs a bucket created with object lock enabled"},
        {"InvalidRequest", "a header this store does not accept: check storage_class, sse and object_lock settings"},
        {"NotImplemented", "this store does not implement a feature in use (object lock, SSE, storage class?)"},
        {"XAmzContentSHA256Mismatch", "the data changed on the way (a proxy rewriting bodies?)"},
        {"BadDigest", "the data changed on the way (a proxy rewriting bodies?)"},
        {"EntityTooLarge", "an object or part is larger than this store accepts: lower part_size"},
        {"EntityTooSmall", "the store wants larger parts: raise part_size"},
        {"QuotaExceeded", "the bucket or account is over its quota"},
    };
    if (code && *code)
        for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
            if (!strcmp(code, hints[i].code))
                return hints[i].hint;
    if (status == 301 || status == 307)
        return "the bucket lives in another region or behind another endpoint: set region or endpoint";
    if (status == 403)
        return "check the credentials and the bucket's permissions";
    if (status == 404 && (!code || !*code))
        return "check bucket, endpoint and path_style";
    return NULL;
}
