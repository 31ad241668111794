/* gcs plugin: promises checked on the stored object, never assumed from a 200.
 * Size and CRC32C (and MD5, where GCS computes one: not for composite
 * objects) must equal what was sent. With retention, holds, a KMS key or a
 * storage class asked for, the object is read back: retention and holds the
 * server did not apply are applied (PATCH) and looked at again; if the object
 * is still not as asked, the put fails and the object is removed, since a
 * compliance bundle that is not retained is not what was asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcsput.h"
#include "pc_error.h"

static const char *str(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? s : "";
}

int check_hashes(gcs_put *p)
{
    char crc[9];
    json_t *o = p->final_obj;
    uint64_t size = gcs_json_u64(o, "size");
    gcs_crc32c_b64(p->crc, crc);
    const char *scrc = str(o, "crc32c"), *smd5 = str(o, "md5Hash");
    const char *bad = size != p->total ? "size" : strcmp(scrc, crc) ? "CRC32C"
                      : (*smd5 && p->md5_b64[0] && strcmp(smd5, p->md5_b64)) ? "MD5" : NULL;
    if (!bad)
        return 0;
    return pc_handle_error(p->in->host, p, ARCA_EINTEGRITY,
                           "'%s': the server stored %llu bytes with CRC32C %s%s%s, but %llu bytes with CRC32C %s%s%s "
                           "were sent (%s differs): the object was removed", p->name, (unsigned long long)size,
                           *scrc ? scrc : "(none)", *smd5 ? " MD5 " : "", smd5, (unsigned long long)p->total, crc,
                           p->md5_b64[0] ? " MD5 " : "", p->md5_b64, bad);
}

int stored_is_ours(gcs_put *p)
{
    char crc[9], err[1400];
    json_t *o = NULL;
    gcs_crc32c_b64(p->crc, crc);
    if (gcs_stat(p->in, p->key, &o, err, sizeof err))
        return 0;
    const char *smd5 = str(o, "md5Hash");
    int ours = gcs_json_u64(o, "size") == p->total && !strcmp(str(o, "crc32c"), crc) &&
               !(*smd5 && p->md5_b64[0] && strcmp(smd5, p->md5_b64));
    if (ours) {
        json_decref(p->final_obj);
        p->final_obj = o;
        p->created = 1;
        p->in->host->log(p->in->host, ARCA_LOG_INFO, "'%s': stored by an earlier attempt whose answer was lost",
                         p->name);
        return 1;
    }
    json_decref(o);
    return 0;
}

void remove_created(gcs_put *p, const char *why)
{
    char err[1400];
    int64_t gen = (int64_t)gcs_json_u64(p->final_obj, "generation");
    int rc = gcs_delete_key(p->in, p->key, gen, err, sizeof err);
    if (rc && rc != ARCA_ENOENT)
        p->in->host->log(p->in->host, ARCA_LOG_ERROR, "'%s' (%s) could not be removed: %s", p->name, why, err);
}

/* What the stored object lacks of what was asked, into why ("" when nothing). */
static void lacks(const gcs_put *p, json_t *o, char *why, size_t cap)
{
    const gcs_config *c = p->in->cfg;
    json_t *ret = json_object_get(o, "retention");
    why[0] = 0;
    if (c->retention_mode != GCS_RET_NONE) {
        const char *want = c->retention_mode == GCS_RET_LOCKED ? "Locked" : "Unlocked";
        int64_t until = gcs_parse_rfc3339(str(ret, "retainUntilTime")), need = gcs_parse_rfc3339(p->retain);
        if (strcasecmp(str(ret, "mode"), want) || until < 0 || until + 1 < need) {
            snprintf(why, cap, "retention %s until %s was asked for, the server reports %s%s%s", want, p->retain,
                     *str(ret, "mode") ? str(ret, "mode") : "no retention", until > 0 ? " until " : "",
                     until > 0 ? str(ret, "retainUntilTime") : "");
            return;
        }
    }
    if (c->event_based_hold && !json_is_true(json_object_get(o, "eventBasedHold")))
        snprintf(why, cap, "an event-based hold was asked for, the server reports none");
    else if (c->temporary_hold && !json_is_true(json_object_get(o, "temporaryHold")))
        snprintf(why, cap, "a temporary hold was asked for, the server reports none");
    else if (c->kms_key_name && *c->kms_key_name && strncmp(str(o, "kmsKeyName"), c->kms_key_name,
                                                            strlen(c->kms_key_name)))
        snprintf(why, cap, "kms_key_name %s was asked for, the server reports %s", c->kms_key_name,
                 *str(o, "kmsKeyName") ? str(o, "kmsKeyName") : "Google-managed encryption");
    else if (c->storage_class && *c->storage_class && strcasecmp(str(o, "storageClass"), c->storage_class))
        snprintf(why, cap, "storage class %s was asked for, the server reports %s", c->storage_class,
                 str(o, "storageClass"));
}

/* PATCH the object's retention and holds (a server that dropped them at upload). */
static int patch_promises(gcs_put *p, int64_t gen, char *err, size_t errlen)
{
    json_t *m = put_metadata(p, p->key);
    char q[64], *text, *url, what[1200];
    json_object_del(m, "name");
    json_object_del(m, "contentType");
    json_object_del(m, "storageClass");
    snprintf(q, sizeof q, "ifGenerationMatch=%lld", (long long)gen);
    text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    url = gcs_object_url(p->in, p->key, q);
    snprintf(what, sizeof what, "bucket '%s' object '%.1000s' (retention and holds)", p->in->cfg->bucket, p->key);
    int rc = ARCA_ENOMEM;
    if (text && url) {
        gcs_kv hd[1] = {{"Content-Type", "application/json; charset=UTF-8"}};
        gcs_request rq = {.method = "PATCH", .url = url, .headers = hd, .nheaders = 1, .body = text,
                          .body_len = strlen(text), .what = what};
        gcs_response rs;
        rc = gcs_do(p->in, NULL, &rq, &rs, err, errlen);
        gcs_response_free(&rs);
    }
    json_decref(m);
    free(text);
    free(url);
    return rc;
}

int verify_stored(gcs_put *p)
{
    const gcs_config *c = p->in->cfg;
    char err[1400], why[600] = "";
    json_t *o = NULL;
    if (c->retention_mode == GCS_RET_NONE && !c->event_based_hold && !c->temporary_hold &&
        !(c->kms_key_name && *c->kms_key_name) && !(c->storage_class && *c->storage_class))
        return 0;
    int rc = gcs_stat(p->in, p->key, &o, err, sizeof err);
    if (rc)
        return pc_handle_error(p->in->host, p, rc == ARCA_ENOENT ? ARCA_EFAIL : rc,
                               "cannot check how '%s' was stored: %s", p->name, rc == ARCA_ENOENT ? "it is gone" : err);
    lacks(p, o, why, sizeof why);
    if (why[0] && (c->retention_mode != GCS_RET_NONE || c->event_based_hold || c->temporary_hold)) {
        /* apply what the server dropped, then look again */
        int64_t gen = (int64_t)gcs_json_u64(o, "generation");
        json_decref(o);
        o = NULL;
        rc = patch_promises(p, gen, err, sizeof err);
        if (!rc)
            rc = gcs_stat(p->in, p->key, &o, err, sizeof err);
        if (rc)
            snprintf(why + strlen(why), sizeof why - strlen(why), "; applying it failed: %.300s", err);
        else
            lacks(p, o, why, sizeof why);
        if (!why[0])
            p->in->host->log(p->in->host, ARCA_LOG_INFO, "'%s': retention and holds applied after the upload (the "
                             "server had not applied them)", p->name);
    }
    json_decref(o);
    if (!why[0])
        return 0;
    return pc_handle_error(p->in->host, p, ARCA_EFAIL, "'%s' was not stored as configured: %s; it was removed",
                           p->name, why);
}
