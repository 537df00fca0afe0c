/* The scanner-worker's result sink (sw_sink): batching of findings into casb.scan.result/v1
 * messages, sequence numbers, coverage, the final messages, lease heartbeats and aborts.
 * The sink's send callback collects messages in memory: no Kafka is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/json.h"
#include "sw_sink.h"

#define SCAN_ID "7a1c1f2e-59e4-4d0e-9a57-7d1f3f0c2b11"
#define INTEGRATION_ID "0b7e4c5d-1111-4a2b-8c3d-222233334444"
#define ACCOUNT_ID "00000000-0000-0000-0000-000000000001"
#define STARTED_AT "2026-11-28T20:25:55.123456Z"
/* Not 1: the sink must carry the lease's attempt, not assume the first. */
#define ATTEMPT 3

typedef struct {
    json_t *messages; /* parsed messages, in send order */
    int fail_after;   /* sends after which send fails; -1 never */
    int heartbeats;
    int heartbeat_rc;
} capture;

static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
    return fake_now_ms;
}

static int capture_send(void *ud, const char *key, const char *value, size_t len, char *err,
                        size_t errlen)
{
    capture *c = ud;
    json_error_t jerr;
    json_t *msg;

    assert_string_equal(key, INTEGRATION_ID);
    if (c->fail_after >= 0 && (int)json_array_size(c->messages) >= c->fail_after) {
        snprintf(err, errlen, "broker down");
        return -1;
    }
    msg = json_loadb(value, len, 0, &jerr);
    assert_non_null(msg);
    /* Every message of every kind names the attempt it belongs to. */
    assert_int_equal(casb_json_int(msg, "attempt", -1), ATTEMPT);
    json_array_append_new(c->messages, msg);
    return 0;
}

static int capture_heartbeat(void *ud)
{
    capture *c = ud;

    c->heartbeats++;
    return c->heartbeat_rc;
}

static sw_sink *sink_new(capture *c, int batch_size, size_t max_bytes)
{
    sw_sink *s = NULL;
    char err[256] = "";
    sw_sink_opts o = {
        .scan_id = SCAN_ID,
        .integration_id = INTEGRATION_ID,
        .account_id = ACCOUNT_ID,
        .provider = "github",
        .attempt = ATTEMPT,
        .scan_started_at = STARTED_AT,
        .batch_size = batch_size,
        .max_batch_bytes = max_bytes,
        .send = capture_send,
        .send_ud = c,
        .heartbeat = capture_heartbeat,
        .heartbeat_ud = c,
        .heartbeat_interval_ms = 10000,
        .clock_ms = fake_clock,
    };

    memset(c, 0, sizeof(*c));
    c->messages = json_array();
    c->fail_after = -1;
    fake_now_ms = 1000000;
    assert_int_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    return s;
}

static int emit(sw_sink *s, const char *type, int i)
{
    casb_scan_sink *iface = sw_sink_iface(s);
    char id[64];

    snprintf(id, sizeof(id), "acme/repo-%d", i);
    return iface->finding(iface, type, "repository", id, id, NULL, json_pack("{s:i}", "i", i));
}

/* The members every message carries, with its attempt and sequence number. */
static void assert_envelope(const json_t *m, int seq, const char *kind)
{
    assert_true(json_is_integer(json_object_get(m, "attempt")));
    assert_int_equal(casb_json_int(m, "attempt", -1), ATTEMPT);
    assert_string_equal(casb_json_str(m, "schema"), "casb.scan.result/v1");
    assert_string_equal(casb_json_str(m, "scan_id"), SCAN_ID);
    assert_string_equal(casb_json_str(m, "integration_id"), INTEGRATION_ID);
    assert_string_equal(casb_json_str(m, "account_id"), ACCOUNT_ID);
    assert_string_equal(casb_json_str(m, "provider"), "github");
    assert_string_equal(casb_json_str(m, "scan_started_at"), STARTED_AT);
    assert_int_equal(casb_json_int(m, "seq", -1), seq);
    assert_string_equal(casb_json_str(m, "kind"), kind);
}

static void test_batches_by_size_with_increasing_seq(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 3, 0);
    char err[256] = "";

    for (int i = 0; i < 7; i++)
        assert_int_equal(emit(s, "github.repo.public", i), 0);
    /* Two full batches went out as soon as they filled; one finding waits. */
    assert_int_equal(json_array_size(c.messages), 2);
    assert_int_equal(sw_sink_messages(s), 2);
    assert_int_equal(sw_sink_complete(s, NULL, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(c.messages), 4);

    int expected_sizes[] = {3, 3, 1};
    int next_i = 0;
    for (int m = 0; m < 3; m++) {
        json_t *msg = json_array_get(c.messages, m);
        json_t *findings = json_object_get(msg, "findings");
        assert_envelope(msg, m + 1, "findings");
        assert_int_equal(json_array_size(findings), expected_sizes[m]);
        for (size_t k = 0; k < json_array_size(findings); k++) {
            json_t *f = json_array_get(findings, k);
            assert_string_equal(casb_json_str(f, "finding_type"), "github.repo.public");
            assert_string_equal(casb_json_path_str(f, "asset.kind"), "repository");
            assert_int_equal(casb_json_int(json_object_get(f, "details"), "i", -1), next_i);
            next_i++;
        }
        assert_null(json_object_get(msg, "total_messages"));
    }
    json_t *last = json_array_get(c.messages, 3);
    assert_envelope(last, 4, "completed");
    assert_int_equal(casb_json_int(last, "total_messages", -1), 4);
    assert_int_equal(casb_json_int(json_object_get(last, "stats"), "findings", -1), 7);
    assert_int_equal(sw_sink_findings(s), 7);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_never_more_than_500_per_message(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 500, 64 * 1024 * 1024);
    char err[256] = "";

    for (int i = 0; i < 1201; i++)
        assert_int_equal(emit(s, "github.repo.public", i), 0);
    assert_int_equal(sw_sink_complete(s, NULL, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(c.messages), 4);
    assert_int_equal(json_array_size(json_object_get(json_array_get(c.messages, 0), "findings")), 500);
    assert_int_equal(json_array_size(json_object_get(json_array_get(c.messages, 1), "findings")), 500);
    assert_int_equal(json_array_size(json_object_get(json_array_get(c.messages, 2), "findings")), 201);
    assert_int_equal(casb_json_int(json_array_get(c.messages, 3), "total_messages", -1), 4);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_byte_limit_splits_batches(void **state)
{
    capture c;
    /* Each serialized finding is ~120 bytes: 1000 bytes hold a handful, not 50. */
    sw_sink *s = sink_new(&c, 50, 1000);
    char err[256] = "";

    for (int i = 0; i < 40; i++)
        assert_int_equal(emit(s, "github.repo.public", i), 0);
    assert_int_equal(sw_sink_complete(s, NULL, err, sizeof(err)), 0);
    size_t n = json_array_size(c.messages);
    assert_true(n > 3);
    size_t total = 0;
    for (size_t m = 0; m + 1 < n; m++) {
        json_t *findings = json_object_get(json_array_get(c.messages, m), "findings");
        char *text = json_dumps(findings, JSON_COMPACT);
        assert_true(strlen(text) <= 1000 + 8);
        free(text);
        total += json_array_size(findings);
        assert_int_equal(casb_json_int(json_array_get(c.messages, m), "seq", -1), (int)m + 1);
    }
    assert_int_equal(total, 40);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_coverage_ran_and_skipped(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 500, 0);
    casb_scan_sink *iface = sw_sink_iface(s);
    sw_sink_http_stats st = {.api_calls = 42, .rate_limit_waits = 2, .retries = 3, .wait_ms = 900};
    char err[256] = "";

    iface->check_ran(iface, "github.repo.public");
    iface->check_ran(iface, "github.repo.public"); /* reported twice: listed once */
    iface->check_ran(iface, "github.org.member_2fa_disabled");
    iface->check_skipped(iface, "github.org.member_2fa_disabled", "needs organization owner");
    iface->check_ran(iface, "github.org.member_2fa_disabled"); /* skipped wins */
    iface->check_skipped(iface, "github.org.app_broad_permissions", "no permission");
    iface->asset_seen(iface, "repository");
    iface->asset_seen(iface, "repository");
    assert_int_equal(sw_sink_complete(s, &st, err, sizeof(err)), 0);

    /* No findings: the completed message is the only one, seq 1. */
    assert_int_equal(json_array_size(c.messages), 1);
    json_t *m = json_array_get(c.messages, 0);
    assert_envelope(m, 1, "completed");
    assert_int_equal(casb_json_int(m, "total_messages", -1), 1);
    json_t *ran = casb_json_path(m, "coverage.ran");
    assert_int_equal(json_array_size(ran), 1);
    assert_string_equal(json_string_value(json_array_get(ran, 0)), "github.repo.public");
    json_t *skipped = casb_json_path(m, "coverage.skipped");
    assert_int_equal(json_array_size(skipped), 2);
    assert_string_equal(casb_json_str(json_array_get(skipped, 0), "finding_type"),
                        "github.org.member_2fa_disabled");
    assert_string_equal(casb_json_str(json_array_get(skipped, 0), "reason"),
                        "needs organization owner");
    json_t *stats = json_object_get(m, "stats");
    assert_int_equal(casb_json_int(stats, "api_calls", -1), 42);
    assert_int_equal(casb_json_int(stats, "assets_seen", -1), 2);
    assert_int_equal(casb_json_int(stats, "findings", -1), 0);
    assert_int_equal(casb_json_int(stats, "rate_limit_waits", -1), 2);
    assert_int_equal(casb_json_int(stats, "retries", -1), 3);
    assert_int_equal(sw_sink_checks_ran(s), 1);
    assert_int_equal(sw_sink_checks_skipped(s), 2);
    /* The end message goes out once. */
    assert_int_not_equal(sw_sink_complete(s, &st, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(c.messages), 1);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_failed_sends_pending_then_failed(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 10, 0);
    char err[256] = "";

    for (int i = 0; i < 4; i++)
        assert_int_equal(emit(s, "github.repo.public", i), 0);
    assert_int_equal(sw_sink_fail(s, "GitHub answered 401", "auth", NULL, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(c.messages), 2);
    assert_envelope(json_array_get(c.messages, 0), 1, "findings");
    json_t *m = json_array_get(c.messages, 1);
    assert_envelope(m, 2, "failed");
    assert_string_equal(casb_json_str(m, "error"), "GitHub answered 401");
    assert_string_equal(casb_json_str(m, "error_kind"), "auth");
    assert_int_equal(casb_json_int(m, "total_messages", -1), 2);
    assert_null(json_object_get(m, "coverage"));
    assert_non_null(json_object_get(m, "stats"));
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_finding_shape_and_defaults(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 10, 0);
    casb_scan_sink *iface = sw_sink_iface(s);
    char err[256] = "";

    /* No name: the id stands in. No details: an empty object. A non-object is wrapped. */
    assert_int_equal(iface->finding(iface, "github.org.member_2fa_disabled", "member", "alice",
                                    NULL, "https://github.com/alice", NULL), 0);
    assert_int_equal(iface->finding(iface, "github.repo.public", "repository", "acme/api",
                                    "acme/api", "", json_string("public")), 0);
    /* A finding without asset id is a provider bug: dropped, not sent, scan goes on. */
    assert_int_equal(iface->finding(iface, "github.repo.public", "repository", NULL, NULL, NULL,
                                    json_object()), 0);
    /* Oversized details are replaced by a marker. */
    char *big = malloc(100 * 1024);
    memset(big, 'x', 100 * 1024 - 1);
    big[100 * 1024 - 1] = '\0';
    assert_int_equal(iface->finding(iface, "github.repo.public", "repository", "acme/big",
                                    "acme/big", NULL, json_pack("{s:s}", "blob", big)), 0);
    free(big);
    assert_int_equal(sw_sink_complete(s, NULL, err, sizeof(err)), 0);

    json_t *findings = json_object_get(json_array_get(c.messages, 0), "findings");
    assert_int_equal(json_array_size(findings), 3);
    json_t *f0 = json_array_get(findings, 0);
    assert_string_equal(casb_json_path_str(f0, "asset.id"), "alice");
    assert_string_equal(casb_json_path_str(f0, "asset.name"), "alice");
    assert_string_equal(casb_json_path_str(f0, "asset.url"), "https://github.com/alice");
    assert_true(json_is_object(json_object_get(f0, "details")));
    assert_int_equal(json_object_size(json_object_get(f0, "details")), 0);
    json_t *f1 = json_array_get(findings, 1);
    assert_true(json_is_null(casb_json_path(f1, "asset.url")));
    assert_string_equal(casb_json_path_str(f1, "details.value"), "public");
    json_t *f2 = json_array_get(findings, 2);
    assert_true(casb_json_bool(json_object_get(f2, "details"), "truncated", 0));
    assert_int_equal(sw_sink_findings(s), 3);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_heartbeat_at_most_every_interval(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 500, 0);
    casb_scan_sink *iface = sw_sink_iface(s);

    for (int i = 0; i < 100; i++)
        iface->asset_seen(iface, "repository");
    assert_int_equal(c.heartbeats, 0);
    fake_now_ms += 9999;
    iface->asset_seen(iface, "repository");
    assert_int_equal(c.heartbeats, 0);
    fake_now_ms += 1;
    iface->asset_seen(iface, "repository");
    iface->asset_seen(iface, "repository");
    assert_int_equal(c.heartbeats, 1);
    fake_now_ms += 10000;
    assert_int_equal(emit(s, "github.repo.public", 1), 0);
    assert_int_equal(c.heartbeats, 2);
    assert_int_equal(sw_sink_assets_seen(s), 103);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_lost_lease_aborts_the_scan(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 500, 0);

    c.heartbeat_rc = -1;
    assert_int_equal(emit(s, "github.repo.public", 1), 0);
    fake_now_ms += 10000;
    /* The renewal fails during this call: the provider is told to stop. */
    assert_int_equal(emit(s, "github.repo.public", 2), -1);
    assert_true(sw_sink_lease_lost(s));
    assert_int_equal(emit(s, "github.repo.public", 3), -1);
    assert_int_equal(c.heartbeats, 1);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_send_failure_aborts_the_scan(void **state)
{
    capture c;
    sw_sink *s = sink_new(&c, 2, 0);
    char err[256] = "";

    c.fail_after = 1; /* the first message goes out, the second does not */
    assert_int_equal(emit(s, "github.repo.public", 1), 0);
    assert_int_equal(emit(s, "github.repo.public", 2), 0);
    assert_int_equal(emit(s, "github.repo.public", 3), 0);
    assert_int_equal(emit(s, "github.repo.public", 4), -1);
    assert_true(sw_sink_send_failed(s));
    assert_int_equal(sw_sink_messages(s), 1);
    assert_int_equal(emit(s, "github.repo.public", 5), -1);
    /* No end message can follow a hole in the sequence. */
    assert_int_not_equal(sw_sink_complete(s, NULL, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(c.messages), 1);
    sw_sink_free(s);
    json_decref(c.messages);
}

static void test_rejects_bad_options(void **state)
{
    capture c = {0};
    sw_sink *s = NULL;
    char err[256] = "";
    sw_sink_opts o = {
        .scan_id = SCAN_ID,
        .integration_id = INTEGRATION_ID,
        .account_id = ACCOUNT_ID,
        .provider = "github",
        .attempt = ATTEMPT,
        .scan_started_at = STARTED_AT,
        .batch_size = 501,
        .send = capture_send,
        .send_ud = &c,
    };

    assert_int_not_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    assert_null(s);
    o.batch_size = 0;
    assert_int_not_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    o.batch_size = 1;
    o.send = NULL;
    assert_int_not_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    /* Every message must name a real attempt (a lease was taken: >= 1). */
    o.send = capture_send;
    o.attempt = 0;
    assert_int_not_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    assert_null(s);
    assert_non_null(strstr(err, "attempt"));
    o.attempt = -1;
    assert_int_not_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    o.attempt = 1;
    assert_int_equal(sw_sink_new(&s, &o, err, sizeof(err)), 0);
    sw_sink_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_by_size_with_increasing_seq),
        cmocka_unit_test(test_never_more_than_500_per_message),
        cmocka_unit_test(test_byte_limit_splits_batches),
        cmocka_unit_test(test_coverage_ran_and_skipped),
        cmocka_unit_test(test_failed_sends_pending_then_failed),
        cmocka_unit_test(test_finding_shape_and_defaults),
        cmocka_unit_test(test_heartbeat_at_most_every_interval),
        cmocka_unit_test(test_lost_lease_aborts_the_scan),
        cmocka_unit_test(test_send_failure_aborts_the_scan),
        cmocka_unit_test(test_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
