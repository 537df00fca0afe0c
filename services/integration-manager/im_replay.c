#include "im_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"
#include "casb/service.h"
#include "casb/timeutil.h"
#include "im_settings.h"

#define POLL_MS 500
#define KAFKA_TIMEOUT_MS 10000
#define MAX_PARTITIONS 64

int im_replay_source_topic(const char *dlq_topic, char *out, size_t outlen, char *err,
                           size_t errlen)
{
    for (size_t i = 0; dlq_topic && i < casb_kafka_topics_count; i++) {
        const char *name = casb_kafka_topics[i].name;
        size_t n = strlen(name);

        if (n > 4 && strcmp(name + n - 4, ".dlq") == 0 && strcmp(name, dlq_topic) == 0) {
            snprintf(out, outlen, "%.*s", (int)(n - 4), name);
            return 0;
        }
    }
    return casb_fail(err, errlen, CASB_EINVALID,
                     "CASB_DLQ_TOPIC: not one of the dead-letter topics (<topic>.dlq)");
}

/* Where the DLQ ended when the replay first saw each partition: what lies beyond came
 * later (a replayed message that failed again) and is left for the next run. */
typedef struct {
    int64_t end[MAX_PARTITIONS];
    int known[MAX_PARTITIONS];
} start_ends;

static int before_start(casb_consumer *c, start_ends *ends, const casb_message *msg,
                        char *err, size_t errlen)
{
    int32_t p = msg->partition;

    if (p < 0 || p >= MAX_PARTITIONS)
        return 0;
    if (!ends->known[p]) {
        if (casb_consumer_end_offset(c, msg->topic, p, &ends->end[p], KAFKA_TIMEOUT_MS, err,
                                     errlen) != 0)
            return -1;
        ends->known[p] = 1;
    }
    return msg->offset < ends->end[p];
}

/* Back to its topic with its key, delivered before the DLQ offset is committed. */
static int send_back(casb_producer *p, const char *topic, const casb_message *msg, char *err,
                     size_t errlen)
{
    char *key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
    int rc;

    if (msg->key && !key)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    rc = casb_producer_send(p, topic, key, msg->value, msg->value_len, err, errlen);
    if (rc == 0)
        rc = casb_producer_flush(p, KAFKA_TIMEOUT_MS, err, errlen);
    free(key);
    return rc;
}

int im_replay_run(const char *brokers, const char *dlq_topic, long max, long idle_ms,
                  im_replay_counts *counts, char *err, size_t errlen)
{
    const char *topics[] = {dlq_topic, NULL};
    char source[128];
    start_ends ends;
    casb_consumer *c = NULL;
    casb_producer *p = NULL;
    int64_t last_seen = casb_monotonic_ms();
    int rc;

    memset(counts, 0, sizeof(*counts));
    memset(&ends, 0, sizeof(ends));
    if ((rc = im_replay_source_topic(dlq_topic, source, sizeof(source), err, errlen)) != 0)
        return rc;
    if (casb_producer_new(&p, brokers, "casb-dlq-replay", err, errlen) != 0 ||
        casb_consumer_new(&c, brokers, IM_REPLAY_GROUP, topics, 0, err, errlen) != 0) {
        rc = -1;
        goto out;
    }
    while (!casb_service_stopping() && casb_monotonic_ms() - last_seen < idle_ms) {
        casb_message *msg = NULL;
        int polled = casb_consumer_poll(c, &msg, POLL_MS);
        int fresh;

        if (polled < 0) {
            rc = casb_fail(err, errlen, CASB_ERROR, "kafka consumer failed");
            break;
        }
        if (polled == 0)
            continue;
        last_seen = casb_monotonic_ms();
        fresh = before_start(c, &ends, msg, err, errlen);
        if (fresh < 0 || (fresh && (max == 0 || counts->replayed < max) &&
                          send_back(p, source, msg, err, errlen) != 0)) {
            casb_message_free(msg);
            rc = -1;
            break;
        }
        if (fresh && (max == 0 || counts->replayed < max)) {
            counts->replayed++;
            casb_consumer_commit(c, msg);
        } else {
            counts->left++; /* not committed: the next run sees it */
        }
        casb_message_free(msg);
    }
out:
    if (c) {
        casb_consumer_commit_sync(c);
        casb_consumer_close(c);
    }
    casb_producer_free(p);
    return rc;
}

int im_replay_main(int argc, char **argv)
{
    im_replay_settings st;
    im_replay_counts counts;
    char err[512] = "";
    int rc;

    im_replay_settings_load_or_exit(&st, argc, argv);
    casb_log_init("integration-manager", st.log_level);
    casb_service_signals_install();
    rc = im_replay_run(st.kafka_brokers, st.dlq_topic, st.max_messages, st.idle_ms, &counts,
                       err, sizeof(err));
    if (rc == CASB_EINVALID) {
        fprintf(stderr, "casb-integration-manager %s: %s\n", IM_REPLAY_COMMAND, err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    if (rc != 0)
        casb_log_error("replay failed", "topic", st.dlq_topic, "error", err);
    printf("{\"topic\": \"%s\", \"replayed\": %ld, \"left\": %ld}\n", st.dlq_topic,
           counts.replayed, counts.left);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}
