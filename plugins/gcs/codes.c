/* gcs plugin: what GCS's JSON error answers say, which of them a retry can
 * mend on top of the common HTTP policy (plugins/common/pc_retry.c), and the
 * hints shown with the ones it cannot. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "gcsutil.h"

int gcs_error_parse(const char *body, size_t len, char *reason, size_t rcap, char *message, size_t mcap)
{
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    reason[0] = message[0] = 0;
    if (!json_is_object(e)) {
        /* OAuth token endpoints: {"error":"invalid_grant","error_description":"..."} */
        const char *s = json_string_value(e), *d = json_string_value(json_object_get(j, "error_description"));
        if (s)
            snprintf(reason, rcap, "%s", s);
        if (d)
            snprintf(message, mcap, "%s", d);
        json_decref(j);
        return s != NULL;
    }
    const char *m = json_string_value(json_object_get(e, "message"));
    const char *r = json_string_value(json_object_get(json_array_get(json_object_get(e, "errors"), 0), "reason"));
    if (!r)
        r = json_string_value(json_object_get(e, "status"));
    snprintf(reason, rcap, "%s", r ? r : "");
    snprintf(message, mcap, "%s", m ? m : "");
    json_decref(j);
    return 1;
}

pc_verdict gcs_classify(int transport, long status, const char *reason)
{
    if (!reason)
        reason = "";
    /* 401 gets one refresh of the token and one more try, decided by the caller */
    if (!transport && status == 403 && (!strcmp(reason, "rateLimitExceeded") || !strcmp(reason, "userRateLimitExceeded")))
        return PC_RETRY_AGAIN; /* older answers throttle with 403 */
    return pc_http_classify(transport, status);
}

const char *gcs_hint(long status, const char *reason)
{
    static const struct {
        const char *reason, *hint;
    } hints[] = {
        {"authError", "the access token is not valid: check credentials (or renew access_token)"},
        {"required", "the request carried no credentials the server accepts: set credentials or access_token"},
        {"userProjectMissing", "the bucket is requester-pays: set user_project to the project to bill"},
        {"userProjectInvalid", "user_project does not name a project you may bill"},
        {"retentionPolicyNotMet", "the object is under retention or a hold: it cannot change until they end"},
        {"conditionNotMet", "an object of that name exists already (backups never overwrite)"},
        {"invalid", "the server refused a setting: check storage_class, kms_key_name and the retention options"},
        {"invalidArgument", "the server refused a setting: check storage_class, kms_key_name and the retention options"},
        {"rateLimitExceeded", "too many changes to one object per second"},
        {"accountDisabled", "the project's billing or the account is disabled"},
        {"keyInvalid", "the API key or project is not valid"},
    };
    if (reason && *reason)
        for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
            if (!strcmp(reason, hints[i].reason))
                return hints[i].hint;
    if (status == 401)
        return "the access token was refused: check credentials, or renew access_token";
    if (status == 403)
        return "the account lacks a permission on this bucket (roles/storage.objectAdmin covers backups; "
               "storage.buckets.get is needed for composite uploads), or a retention rule forbids the change";
    if (status == 404)
        return "check bucket and endpoint (the bucket must exist)";
    return NULL;
}
