/* Validation of casb.scan.job/v1 messages by the scanner-worker (sw_job). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "casb/error.h"
#include "sw_job.h"

#define JOB_FMT                                                                                 \
    "{\"schema\":%s,\"job_id\":\"5f0c3a57-6a3e-4a8e-9d7e-1c2b3a4d5e6f\","                      \
    "\"scan_id\":%s,\"account_id\":\"00000000-0000-0000-0000-000000000001\","                  \
    "\"integration_id\":\"0b7e4c5d-1111-4a2b-8c3d-222233334444\",\"provider\":%s,"             \
    "\"reason\":%s,\"requested_at\":\"2026-11-28T20:25:55Z\"}"

static int parse(const char *schema, const char *scan_id, const char *provider,
                 const char *reason_v, sw_job *job, char *reason, size_t reasonlen)
{
    char buf[1024];

    snprintf(buf, sizeof(buf), JOB_FMT, schema, scan_id, provider, reason_v);
    return sw_job_parse(job, buf, strlen(buf), reason, reasonlen);
}

static void test_valid_job(void **state)
{
    sw_job job;
    char reason[256] = "";

    assert_int_equal(parse("\"casb.scan.job/v1\"", "\"7a1c1f2e-59e4-4d0e-9a57-7d1f3f0c2b11\"",
                           "\"github\"", "\"manual\"", &job, reason, sizeof(reason)),
                     0);
    assert_string_equal(job.scan_id, "7a1c1f2e-59e4-4d0e-9a57-7d1f3f0c2b11");
    assert_string_equal(job.integration_id, "0b7e4c5d-1111-4a2b-8c3d-222233334444");
    assert_string_equal(job.account_id, "00000000-0000-0000-0000-000000000001");
    assert_string_equal(job.job_id, "5f0c3a57-6a3e-4a8e-9d7e-1c2b3a4d5e6f");
    assert_string_equal(job.provider, "github");
    assert_string_equal(job.reason, "manual");
}

static void test_invalid_jobs(void **state)
{
    sw_job job;
    char reason[256];
    const char *good_scan = "\"7a1c1f2e-59e4-4d0e-9a57-7d1f3f0c2b11\"";

    reason[0] = '\0';
    assert_int_equal(parse("\"casb.scan.job/v2\"", good_scan, "\"github\"", "\"manual\"", &job,
                           reason, sizeof(reason)),
                     CASB_EINVALID);
    assert_non_null(strstr(reason, "schema"));
    assert_int_equal(parse("\"casb.scan.job/v1\"", "\"not-a-uuid\"", "\"github\"", "\"manual\"",
                           &job, reason, sizeof(reason)),
                     CASB_EINVALID);
    assert_non_null(strstr(reason, "scan_id"));
    assert_int_equal(parse("\"casb.scan.job/v1\"", "42", "\"github\"", "\"manual\"", &job, reason,
                           sizeof(reason)),
                     CASB_EINVALID);
    assert_int_equal(parse("\"casb.scan.job/v1\"", good_scan, "\"\"", "\"manual\"", &job, reason,
                           sizeof(reason)),
                     CASB_EINVALID);
    assert_non_null(strstr(reason, "provider"));
    assert_int_equal(parse("\"casb.scan.job/v1\"", good_scan, "\"github\"", "\"whenever\"", &job,
                           reason, sizeof(reason)),
                     CASB_EINVALID);
    assert_non_null(strstr(reason, "reason"));
    assert_int_equal(sw_job_parse(&job, "{", 1, reason, sizeof(reason)), CASB_EINVALID);
    assert_non_null(strstr(reason, "not JSON"));
    assert_int_equal(sw_job_parse(&job, "[1]", 3, reason, sizeof(reason)), CASB_EINVALID);
    /* Not NUL-terminated input is read by length only. */
    assert_int_equal(sw_job_parse(&job, "{}garbage", 2, reason, sizeof(reason)), CASB_EINVALID);
    assert_non_null(strstr(reason, "schema"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_job),
        cmocka_unit_test(test_invalid_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
