/* s3 plugin: what S3's own error codes mean: which are transient on top of the
 * common HTTP policy (plugins/common/pc_retry.c), and the hints shown with
 * errors that will not go away by retrying. */
#include <string.h>

#include "s3util.h"

pc_verdict s3_classify(int transport, long status, const char *code)
{
    if (!code)
        code = "";
    if (!transport && status >= 200 && status < 300 && *code)
        /* a 2xx carrying an <Error> (CompleteMultipartUpload, CopyObject) */
        return !strcmp(code, "InternalError") || !strcmp(code, "SlowDown") || !strcmp(code, "ServiceUnavailable")
                   ? PC_RETRY_AGAIN
                   : PC_RETRY_FAIL;
    if (!transport && status == 400 &&
        (!strcmp(code, "RequestTimeout") || !strcmp(code, "ExpiredToken") || !strcmp(code, "TokenRefreshRequired")))
        return PC_RETRY_AGAIN; /* idle socket closed by S3; instance credentials about to be renewed */
    if (!transport && status == 403 && !strcmp(code, "ExpiredToken"))
        return PC_RETRY_AGAIN;
    return pc_http_classify(transport, status);
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
