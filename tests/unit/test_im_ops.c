/* Unit tests for the deployment subcommands' pieces: the topic table every deployment creates
 * (casb_kafka_topics: names, partitions, a .dlq twin per topic), the create-topics summary,
 * and the subcommands' configuration tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/kafka.h"
#include "im_ops.h"
#include "im_settings.h"

static const casb_kafka_topic_spec *find_topic(const char *name)
{
    for (size_t i = 0; i < casb_kafka_topics_count; i++)
        if (strcmp(casb_kafka_topics[i].name, name) == 0)
            return &casb_kafka_topics[i];
    return NULL;
}

static void test_topic_table(void **state)
{
    (void)state;
    assert_int_equal(casb_kafka_topics_count, 6);
    assert_int_equal(find_topic(CASB_TOPIC_SCAN_JOBS)->partitions, 6);
    assert_int_equal(find_topic(CASB_TOPIC_SCAN_RESULTS)->partitions, 6);
    assert_int_equal(find_topic(CASB_TOPIC_INTEGRATION_EVENTS)->partitions, 3);
}

/* Every topic that is not a dead-letter topic has its .dlq twin with one partition, and no
 * name appears twice. */
static void test_every_topic_has_a_dlq(void **state)
{
    size_t suffix = strlen(CASB_DLQ_SUFFIX);

    (void)state;
    for (size_t i = 0; i < casb_kafka_topics_count; i++) {
        const char *name = casb_kafka_topics[i].name;
        size_t len = strlen(name);
        char dlq[256];

        assert_true(casb_kafka_topics[i].partitions >= 1);
        for (size_t j = i + 1; j < casb_kafka_topics_count; j++)
            assert_string_not_equal(name, casb_kafka_topics[j].name);
        if (len > suffix && strcmp(name + len - suffix, CASB_DLQ_SUFFIX) == 0) {
            assert_int_equal(casb_kafka_topics[i].partitions, 1);
            continue;
        }
        snprintf(dlq, sizeof(dlq), "%s%s", name, CASB_DLQ_SUFFIX);
        assert_non_null(find_topic(dlq));
    }
}

static void test_topics_summary(void **state)
{
    int outcome[6] = {CASB_KAFKA_TOPIC_CREATED, CASB_KAFKA_TOPIC_EXISTING,
                      CASB_KAFKA_TOPIC_EXISTING, CASB_KAFKA_TOPIC_CREATED,
                      CASB_KAFKA_TOPIC_EXISTING, CASB_KAFKA_TOPIC_EXISTING};
    char *s;

    (void)state;
    assert_int_equal(casb_kafka_topics_count, 6);
    s = im_topics_summary(outcome);
    assert_non_null(s);
    assert_string_equal(s, "{\"created\":[\"casb.scan.jobs\",\"casb.scan.jobs.dlq\"],"
                           "\"existing\":[\"casb.scan.results\",\"casb.integration.events\","
                           "\"casb.scan.results.dlq\",\"casb.integration.events.dlq\"]}");
    free(s);
}

static void test_topics_settings(void **state)
{
    im_topics_settings s;
    casb_cfg_var vars[IM_TOPICS_SETTINGS_COUNT];
    size_t n = im_topics_settings_table(&s, vars, IM_TOPICS_SETTINGS_COUNT);
    char err[256];

    (void)state;
    setenv("CASB_KAFKA_BROKERS", "127.0.0.1:19092", 1);
    unsetenv("CASB_KAFKA_REPLICATION_FACTOR");
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), 0);
    assert_int_equal(s.replication_factor, 1);
    setenv("CASB_KAFKA_REPLICATION_FACTOR", "0", 1);
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CASB_KAFKA_REPLICATION_FACTOR"));
    unsetenv("CASB_KAFKA_REPLICATION_FACTOR");
    unsetenv("CASB_KAFKA_BROKERS");
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CASB_KAFKA_BROKERS"));
}

static void test_migrate_settings(void **state)
{
    im_migrate_settings s;
    casb_cfg_var vars[IM_MIGRATE_SETTINGS_COUNT];
    size_t n = im_migrate_settings_table(&s, vars, IM_MIGRATE_SETTINGS_COUNT);
    char err[256];

    (void)state;
    unsetenv("CASB_DATABASE_URL");
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CASB_DATABASE_URL"));
    setenv("CASB_DATABASE_URL", "postgresql://casb@127.0.0.1:55432/casb", 1);
    assert_int_equal(casb_config_load(vars, n, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_table),
        cmocka_unit_test(test_every_topic_has_a_dlq),
        cmocka_unit_test(test_topics_summary),
        cmocka_unit_test(test_topics_settings),
        cmocka_unit_test(test_migrate_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
