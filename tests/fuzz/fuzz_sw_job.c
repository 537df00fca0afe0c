/* scanner-worker's decoder of casb.scan.jobs messages (sw_job_parse). Invariants: a refused
 * job says why; an accepted one holds canonical UUIDs, a bounded provider and a known
 * reason, and re-encoded it is accepted again as the same job. */
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "fuzz_common.h"
#include "sw_job.h"

static void check_round_trip(const sw_job *j)
{
    char reason[256];
    sw_job again;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "schema", "casb.scan.job/v1",
                          "job_id", j->job_id, "scan_id", j->scan_id, "account_id",
                          j->account_id, "integration_id", j->integration_id, "provider",
                          j->provider, "reason", j->reason);
    char *text = casb_json_dump(o);

    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(sw_job_parse(&again, text, strlen(text), reason, sizeof(reason)) == 0);
    FUZZ_CHECK(memcmp(&again, j, sizeof(again)) == 0);
    free(text);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[256] = "";
    sw_job j;
    int rc = sw_job_parse(&j, (const char *)data, size, reason, sizeof(reason));

    if (rc != 0) {
        FUZZ_CHECK(rc == CASB_EINVALID);
        FUZZ_CHECK(reason[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(casb_uuid_valid(j.job_id) && casb_uuid_valid(j.scan_id) &&
               casb_uuid_valid(j.account_id) && casb_uuid_valid(j.integration_id));
    FUZZ_CHECK(j.provider[0] != '\0' && memchr(j.provider, '\0', sizeof(j.provider)));
    FUZZ_CHECK(strcmp(j.reason, "scheduled") == 0 || strcmp(j.reason, "manual") == 0 ||
               strcmp(j.reason, "first") == 0 || strcmp(j.reason, "resume") == 0);
    check_round_trip(&j);
    return 0;
}
