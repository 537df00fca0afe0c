/* The Kafka wrapper against librdkafka's in-process mock cluster (the one place a mock
 * broker is allowed: it speaks the real protocol, including consumer groups and commits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/kafka.h"
#include "casb/metrics.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#define PRODUCE_API_KEY 0 /* Kafka protocol ApiKey of Produce */

static rd_kafka_t *mock_owner;
static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstraps;

static int setup_cluster(void **state)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    (void)state;
    /* This instance only owns the mock cluster; its "no bootstrap.servers" notice is noise. */
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    mock_owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!mock_owner)
        return -1;
    mcluster = rd_kafka_mock_cluster_new(mock_owner, 1);
    if (!mcluster)
        return -1;
    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    return 0;
}

static int teardown_cluster(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(mock_owner);
    return 0;
}

static void create_topic(const char *topic, int partitions)
{
    assert_int_equal(rd_kafka_mock_topic_create(mcluster, topic, partitions, 1), 0);
}

static casb_producer *new_producer(void)
{
    casb_producer *p = NULL;
    char err[256] = "";

    if (casb_producer_new(&p, bootstraps, "casb-test", err, sizeof err) != 0)
        fail_msg("casb_producer_new: %s", err);
    return p;
}

static casb_consumer *new_consumer(const char *group, const char *topic)
{
    const char *topics[2] = {topic, NULL};
    casb_consumer *c = NULL;
    char err[256] = "";

    if (casb_consumer_new(&c, bootstraps, group, topics, 0, err, sizeof err) != 0)
        fail_msg("casb_consumer_new: %s", err);
    return c;
}

/* Polls until a message arrives or wait_ms passed (group joins take seconds). */
static casb_message *poll_one(casb_consumer *c, int wait_ms)
{
    int64_t deadline_ms = casb_monotonic_ms() + wait_ms;
    casb_message *msg = NULL;

    while (casb_monotonic_ms() < deadline_ms) {
        int rc = casb_consumer_poll(c, &msg, 200);

        assert_int_not_equal(rc, -1);
        if (rc == 1)
            return msg;
    }
    return NULL;
}

static void send_ok(casb_producer *p, const char *topic, const char *key, const char *value)
{
    char err[256] = "";

    if (casb_producer_send(p, topic, key, value, strlen(value), err, sizeof err) != 0)
        fail_msg("send: %s", err);
}

static void assert_value(const casb_message *msg, const char *value)
{
    assert_non_null(msg);
    assert_int_equal(msg->value_len, strlen(value));
    assert_memory_equal(msg->value, value, msg->value_len);
}

static void test_produce_flush(void **state)
{
    casb_producer *p = new_producer();
    casb_consumer *c;
    char err[256] = "";
    int seen[10] = {0};
    int last_per_key[2] = {-1, -1};
    int i;

    (void)state;
    create_topic("t.produce", 2);
    for (i = 0; i < 10; i++) {
        char key[8], value[32];

        snprintf(key, sizeof key, "k%d", i % 2);
        snprintf(value, sizeof value, "{\"n\":%d}", i);
        send_ok(p, "t.produce", key, value);
    }
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);
    assert_int_equal(casb_kafka_reachable(p, 5000), 1);

    /* Everything flushed is really there, in order per key. */
    c = new_consumer("g-produce", "t.produce");
    for (i = 0; i < 10; i++) {
        casb_message *msg = poll_one(c, 15000);
        int n = -1, k;

        assert_non_null(msg);
        assert_int_equal(msg->key_len, 2);
        k = msg->key[1] - '0';
        assert_int_equal(sscanf(msg->value, "{\"n\":%d}", &n), 1);
        assert_int_equal(n % 2, k);
        assert_true(n > last_per_key[k]);
        last_per_key[k] = n;
        seen[n]++;
        casb_message_free(msg);
    }
    for (i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    casb_consumer_close(c);
    casb_producer_free(p);
}

static void test_flush_reports_timeout_and_failures(void **state)
{
    casb_producer *p = new_producer();
    char err[256] = "";
    int rc;

    (void)state;
    create_topic("t.flaky", 1);
    send_ok(p, "t.flaky", "k", "warm-up");
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);

    /* Broker down: the message cannot be acknowledged within the flush timeout. */
    assert_int_equal(rd_kafka_mock_broker_set_down(mcluster, 1), 0);
    send_ok(p, "t.flaky", "k", "while-down");
    rc = casb_producer_flush(p, 500, err, sizeof err);
    assert_int_equal(rc, CASB_EUNAVAILABLE);
    assert_non_null(strstr(err, "timed out"));
    assert_int_equal(casb_kafka_reachable(p, 500), 0);
    /* Back up: the idempotent producer delivers it, and the next flush says so. */
    assert_int_equal(rd_kafka_mock_broker_set_up(mcluster, 1), 0);
    rc = casb_producer_flush(p, 20000, err, sizeof err);
    if (rc != 0)
        fail_msg("flush after broker came back: %s", err);

    /* A permanent broker error fails the message: flush reports it once, then is clean. */
    rd_kafka_mock_push_request_errors(mcluster, PRODUCE_API_KEY, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    send_ok(p, "t.flaky", "k", "refused");
    rc = casb_producer_flush(p, 10000, err, sizeof err);
    assert_int_equal(rc, CASB_ERROR);
    assert_non_null(strstr(err, "1 message(s) failed"));
    send_ok(p, "t.flaky", "k", "accepted");
    rc = casb_producer_flush(p, 10000, err, sizeof err);
    if (rc != 0)
        fail_msg("flush after a failed one: %s", err);

    /* A message over message.max.bytes is refused at once. */
    {
        size_t big_len = 2 * 1024 * 1024;
        char *big = calloc(1, big_len);

        assert_non_null(big);
        assert_int_equal(casb_producer_send(p, "t.flaky", "k", big, big_len, err, sizeof err),
                         CASB_ERROR);
        free(big);
    }
    casb_producer_free(p);
}

/* At-least-once: what was committed is not seen again by the group; what was received but
 * not committed is redelivered to the next member. */
static void test_group_commit_and_redelivery(void **state)
{
    casb_producer *p = new_producer();
    casb_consumer *c;
    casb_message *msgs[3];
    casb_message *msg;
    char err[256] = "";
    int i;

    (void)state;
    create_topic("t.group", 1);
    send_ok(p, "t.group", "i-1", "m0");
    send_ok(p, "t.group", "i-1", "m1");
    send_ok(p, "t.group", "i-1", "m2");
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);

    c = new_consumer("g-group", "t.group");
    for (i = 0; i < 3; i++) {
        char expect[4];

        msgs[i] = poll_one(c, 15000);
        snprintf(expect, sizeof expect, "m%d", i);
        assert_value(msgs[i], expect);
        assert_string_equal(msgs[i]->topic, "t.group");
        assert_int_equal(msgs[i]->partition, 0);
        assert_int_equal(msgs[i]->offset, i);
    }
    /* m0 and m1 processed; m2 "crashed" before its effect was durable. */
    assert_int_equal(casb_consumer_commit(c, msgs[0]), 0);
    assert_int_equal(casb_consumer_commit(c, msgs[1]), 0);
    assert_int_equal(casb_consumer_commit_sync(c), 0);
    /* Storing an offset of a partition we do not own fails. */
    {
        casb_message other = *msgs[1];

        other.partition = 7;
        assert_int_equal(casb_consumer_commit(c, &other), CASB_ERROR);
    }
    for (i = 0; i < 3; i++)
        casb_message_free(msgs[i]);
    casb_consumer_close(c);

    /* The next member of the group resumes at m2, and only m2. */
    c = new_consumer("g-group", "t.group");
    msg = poll_one(c, 20000);
    assert_value(msg, "m2");
    assert_int_equal(msg->offset, 2);
    assert_int_equal(casb_consumer_commit(c, msg), 0);
    casb_message_free(msg);
    assert_null(poll_one(c, 1500));
    casb_consumer_close(c); /* commits the stored offset on the way out */

    /* Everything is committed now: a later member gets nothing. */
    c = new_consumer("g-group", "t.group");
    assert_null(poll_one(c, 6000));
    casb_consumer_close(c);

    /* A different group starts from the beginning (auto.offset.reset=earliest). */
    c = new_consumer("g-other", "t.group");
    msg = poll_one(c, 15000);
    assert_value(msg, "m0");
    casb_message_free(msg);
    casb_consumer_close(c);
    casb_producer_free(p);
}

static void assert_header(const rd_kafka_message_t *rkm, const char *name, const char *value)
{
    rd_kafka_headers_t *headers = NULL;
    const void *v = NULL;
    size_t len = 0;

    assert_int_equal(rd_kafka_message_headers(rkm, &headers), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (rd_kafka_header_get_last(headers, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("header %s missing", name);
    assert_int_equal(len, strlen(value));
    assert_memory_equal(v, value, len);
}

static void assert_rendered(const char *series)
{
    char *out = NULL;

    assert_int_equal(casb_metrics_render(&out, NULL), 0);
    if (!strstr(out, series))
        fail_msg("%s not in:\n%s", series, out);
    free(out);
}

/* The lag gauges from a statistics document shaped like librdkafka 2.0's: assigned
 * partitions with a known lag report it; unassigned ones and unknown lags (-1) report 0;
 * the internal partition -1 none. */
static void test_consumer_lag_from_stats(void **state)
{
    static const char stats[] =
        "{\"name\":\"c#consumer-1\",\"type\":\"consumer\",\"topics\":{"
        "\"casb.scan.jobs\":{\"topic\":\"casb.scan.jobs\",\"partitions\":{"
        "\"0\":{\"partition\":0,\"assigned\":true,\"consumer_lag\":42},"
        "\"1\":{\"partition\":1,\"assigned\":false,\"consumer_lag\":7},"
        "\"2\":{\"partition\":2,\"assigned\":true,\"consumer_lag\":-1},"
        "\"-1\":{\"partition\":-1,\"assigned\":false,\"consumer_lag\":-1}}}}}";
    char *out = NULL;

    (void)state;
    assert_int_equal(casb_kafka_record_stats(stats, sizeof stats - 1), 0);
    assert_rendered("# TYPE casb_kafka_consumer_lag gauge\n");
    assert_rendered("casb_kafka_consumer_lag{topic=\"casb.scan.jobs\",partition=\"0\"} 42\n");
    assert_rendered("casb_kafka_consumer_lag{topic=\"casb.scan.jobs\",partition=\"1\"} 0\n");
    assert_rendered("casb_kafka_consumer_lag{topic=\"casb.scan.jobs\",partition=\"2\"} 0\n");
    assert_int_equal(casb_metrics_render(&out, NULL), 0);
    assert_null(strstr(out, "partition=\"-1\""));
    free(out);
    assert_int_equal(casb_kafka_record_stats("not json", 8), -1);
}

static void test_dlq_publish(void **state)
{
    static const char bad_value[] = "{\"schema\":\0broken"; /* binary-safe: embedded NUL */
    const char *reason = "invalid JSON: unexpected end of input";
    casb_producer *p = new_producer();
    casb_consumer *c;
    casb_message *msg;
    char err[256] = "";

    (void)state;
    create_topic("t.in", 1);
    create_topic("t.in" CASB_DLQ_SUFFIX, 1);
    send_ok(p, "t.in", "i-1", "{\"schema\":\"good/v1\"}");
    assert_int_equal(casb_producer_send(p, "t.in", "integration-7", bad_value,
                                        sizeof bad_value - 1, err, sizeof err), 0);
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);

    c = new_consumer("g-in", "t.in");
    msg = poll_one(c, 15000);
    assert_value(msg, "{\"schema\":\"good/v1\"}");
    assert_int_equal(casb_consumer_commit(c, msg), 0);
    casb_message_free(msg);
    msg = poll_one(c, 15000);
    assert_non_null(msg);
    assert_int_equal(msg->offset, 1);
    if (casb_dlq_publish(p, msg, reason, err, sizeof err) != 0)
        fail_msg("casb_dlq_publish: %s", err);
    assert_rendered("casb_dlq_messages_total{topic=\"t.in\"} 1\n");
    assert_int_equal(casb_consumer_commit(c, msg), 0);
    casb_message_free(msg);
    casb_consumer_close(c);

    c = new_consumer("g-dlq", "t.in" CASB_DLQ_SUFFIX);
    msg = poll_one(c, 15000);
    assert_non_null(msg);
    assert_string_equal(msg->topic, "t.in.dlq");
    assert_int_equal(msg->key_len, strlen("integration-7"));
    assert_memory_equal(msg->key, "integration-7", msg->key_len);
    assert_int_equal(msg->value_len, sizeof bad_value - 1);
    assert_memory_equal(msg->value, bad_value, msg->value_len);
    assert_header(msg->internal_, "casb-dlq-reason", reason);
    assert_header(msg->internal_, "casb-dlq-source-topic", "t.in");
    assert_header(msg->internal_, "casb-dlq-source-partition", "0");
    assert_header(msg->internal_, "casb-dlq-source-offset", "1");
    casb_message_free(msg);
    assert_null(poll_one(c, 1000)); /* only the bad message went there */
    casb_consumer_close(c);
    casb_producer_free(p);
}

static void test_unreachable_brokers(void **state)
{
    casb_producer *p = NULL;
    casb_consumer *c = NULL;
    const char *topics[] = {NULL};
    char err[256] = "";

    (void)state;
    /* Nothing listens on port 1: not reachable, yet creating the client is fine (it
     * connects lazily), as a service starting before Kafka needs. */
    assert_int_equal(casb_producer_new(&p, "127.0.0.1:1", "casb-test", err, sizeof err), 0);
    assert_int_equal(casb_kafka_reachable(p, 300), 0);
    casb_producer_free(p);
    assert_int_equal(casb_consumer_new(&c, bootstraps, "g", topics, 0, err, sizeof err),
                     CASB_EINVALID);
    assert_null(c);
}

/* Holds msg for hold_ms, polling the paused consumer meanwhile (polling) or not at all, then
 * reports whether the member still owns the partition: storing msg's offset succeeds. */
static int still_owned_after_hold(casb_consumer *c, const casb_message *msg, int hold_ms,
                                  int polling)
{
    int64_t until = casb_monotonic_ms() + hold_ms;

    assert_int_equal(casb_consumer_pause(c), 0);
    while (casb_monotonic_ms() < until) {
        casb_message *stray = NULL;

        if (polling) {
            assert_int_not_equal(casb_consumer_poll(c, &stray, 200), -1);
            assert_null(stray); /* paused: nothing is delivered */
        } else {
            casb_sleep_ms(200);
        }
    }
    assert_int_equal(casb_consumer_resume(c), 0);
    /* An eviction (max.poll.interval.ms is the client's own check) shows in the polls
     * after it: an error, then the lost assignment's revocation. */
    for (int i = 0; i < 10; i++) {
        casb_message *next = NULL;

        if (casb_consumer_poll(c, &next, 300) == 1) {
            casb_consumer_seek_back(c, next);
            casb_message_free(next);
            break;
        }
    }
    return casb_consumer_commit(c, msg) == 0;
}

/* A message held longer than max.poll.interval.ms (a long scan): polling with fetching
 * paused keeps the member in the group and the position where it was; not polling loses
 * the partition. seek_back delivers a message again. */
static void test_pause_keeps_the_member_through_a_long_hold(void **state)
{
    const char *topics[2] = {"t.pause", NULL};
    casb_producer *p = new_producer();
    casb_consumer *c = NULL;
    casb_message *held, *next, *again;
    char err[256] = "";

    (void)state;
    create_topic("t.pause", 1);
    send_ok(p, "t.pause", "k", "m0");
    send_ok(p, "t.pause", "k", "m1");
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);
    assert_int_equal(casb_consumer_new(&c, bootstraps, "g-pause", topics, 10000, err, sizeof err),
                     0);
    held = poll_one(c, 15000);
    assert_value(held, "m0");
    assert_true(still_owned_after_hold(c, held, 12000, 1));
    next = poll_one(c, 5000);
    assert_value(next, "m1"); /* neither m0 again nor anything skipped */
    assert_int_equal(casb_consumer_seek_back(c, next), 0);
    again = poll_one(c, 5000);
    assert_value(again, "m1");
    assert_int_equal(again->offset, next->offset);
    /* Without polling, the same hold costs the partition. */
    assert_false(still_owned_after_hold(c, again, 12000, 0));
    casb_message_free(held);
    casb_message_free(next);
    casb_message_free(again);
    casb_consumer_close(c);
    casb_producer_free(p);
}

static void *wake_later(void *arg)
{
    casb_sleep_ms(200);
    casb_consumer_wake(arg);
    return NULL;
}

/* A poll blocked in one thread returns as soon as another thread wakes the consumer (the
 * worker's job thread, when a scan ends while the loop polls with fetching paused); a wake
 * with nobody polling makes the next poll return at once. */
static void test_wake_ends_a_blocked_poll(void **state)
{
    casb_producer *p = new_producer();
    casb_consumer *c = new_consumer("g-wake", "t.wake");
    casb_message *msg = NULL;
    pthread_t thread;
    char err[256] = "";
    int64_t t0;

    (void)state;
    create_topic("t.wake", 1);
    send_ok(p, "t.wake", "k", "m0");
    assert_int_equal(casb_producer_flush(p, 10000, err, sizeof err), 0);
    msg = poll_one(c, 15000); /* in the group, nothing more to fetch */
    assert_value(msg, "m0");
    casb_message_free(msg);
    msg = NULL;

    assert_int_equal(pthread_create(&thread, NULL, wake_later, c), 0);
    t0 = casb_monotonic_ms();
    assert_int_equal(casb_consumer_poll(c, &msg, 5000), 0);
    assert_true(casb_monotonic_ms() - t0 < 2000);
    assert_int_equal(pthread_join(thread, NULL), 0);

    casb_consumer_wake(c);
    t0 = casb_monotonic_ms();
    assert_int_equal(casb_consumer_poll(c, &msg, 5000), 0);
    assert_true(casb_monotonic_ms() - t0 < 2000);
    assert_null(msg);
    casb_consumer_close(c);
    casb_producer_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_flush),
        cmocka_unit_test(test_flush_reports_timeout_and_failures),
        cmocka_unit_test(test_group_commit_and_redelivery),
        cmocka_unit_test(test_pause_keeps_the_member_through_a_long_hold),
        cmocka_unit_test(test_wake_ends_a_blocked_poll),
        cmocka_unit_test(test_dlq_publish),
        cmocka_unit_test(test_consumer_lag_from_stats),
        cmocka_unit_test(test_unreachable_brokers),
    };

    casb_log_init("test_kafka", getenv("TEST_LOG_DEBUG") ? CASB_LOG_DEBUG : CASB_LOG_ERROR);
    return cmocka_run_group_tests(tests, setup_cluster, teardown_cluster);
}
