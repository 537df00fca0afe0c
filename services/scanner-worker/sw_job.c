#include "sw_job.h"

#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"

#define SW_JOB_SCHEMA "casb.scan.job/v1"

static int copy_uuid(char dst[37], const json_t *obj, const char *key, char *reason,
                     size_t reasonlen)
{
    const char *v = casb_json_str(obj, key);

    if (!v || !casb_uuid_valid(v))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: missing or not a UUID", key);
    memcpy(dst, v, 37);
    return 0;
}

static int known_reason(const char *r)
{
    static const char *const reasons[] = {"scheduled", "manual", "first", "resume", NULL};

    for (int i = 0; reasons[i]; i++) {
        if (strcmp(r, reasons[i]) == 0)
            return 1;
    }
    return 0;
}

int sw_job_parse(sw_job *out, const char *buf, size_t len, char *reason, size_t reasonlen)
{
    char perr[160];
    json_t *root = NULL;
    const char *v;
    int rc = CASB_EINVALID;

    memset(out, 0, sizeof(*out));
    root = casb_json_parse(buf, len, 16, perr, sizeof(perr));
    if (!root) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "not JSON: %s", perr);
        goto out;
    }
    if (!json_is_object(root)) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "not a JSON object");
        goto out;
    }
    v = casb_json_str(root, "schema");
    if (!v || strcmp(v, SW_JOB_SCHEMA) != 0) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "schema: expected " SW_JOB_SCHEMA);
        goto out;
    }
    if (copy_uuid(out->job_id, root, "job_id", reason, reasonlen) < 0 ||
        copy_uuid(out->scan_id, root, "scan_id", reason, reasonlen) < 0 ||
        copy_uuid(out->account_id, root, "account_id", reason, reasonlen) < 0 ||
        copy_uuid(out->integration_id, root, "integration_id", reason, reasonlen) < 0)
        goto out;
    v = casb_json_str(root, "provider");
    if (!v || !v[0] || strlen(v) >= sizeof(out->provider)) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "provider: missing or too long");
        goto out;
    }
    strcpy(out->provider, v);
    v = casb_json_str(root, "reason");
    if (!v || !known_reason(v)) {
        casb_fail(reason, reasonlen, CASB_EINVALID,
                  "reason: expected scheduled, manual, first or resume");
        goto out;
    }
    strcpy(out->reason, v);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
