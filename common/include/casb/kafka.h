#ifndef CASB_KAFKA_H
#define CASB_KAFKA_H

#include <stddef.h>
#include <stdint.h>

/* Kafka on librdkafka. Producers are idempotent (acks=all, no reordering, no duplicates on
 * retry). Consumers join a group with auto-commit of *stored* offsets only: an offset is
 * stored by casb_consumer_commit after the caller made the message's effect durable, so a
 * crash redelivers instead of losing (at-least-once). */

#define CASB_TOPIC_SCAN_JOBS "casb.scan.jobs"
#define CASB_TOPIC_SCAN_RESULTS "casb.scan.results"
#define CASB_TOPIC_INTEGRATION_EVENTS "casb.integration.events"
#define CASB_DLQ_SUFFIX ".dlq"

/* Every topic the product uses, with its partition count: the one list that
 * `casb-integration-manager create-topics` creates (deploy/local/lib.sh CASB_KAFKA_TOPICS
 * must match it; tests/deploy checks). A dead-letter twin has one partition: it is read by
 * people, not by consumer groups that need to scale. No topic sets configs of its own (the
 * broker's defaults apply). */
typedef struct {
    const char *name;
    int partitions;
} casb_kafka_topic_spec;

extern const casb_kafka_topic_spec casb_kafka_topics[];
extern const size_t casb_kafka_topics_count;

/* What casb_kafka_topics_create found for one topic. */
#define CASB_KAFKA_TOPIC_CREATED 1
#define CASB_KAFKA_TOPIC_EXISTING 2

/* Creates every topic of casb_kafka_topics through the Admin API (CreateTopics), each with
 * replication_factor replicas; a topic that already exists is left as it is (its partitions
 * are not checked) and counts as success, so that running it again is harmless. outcome has
 * room for casb_kafka_topics_count entries and receives CASB_KAFKA_TOPIC_CREATED or
 * CASB_KAFKA_TOPIC_EXISTING per topic. Waits up to timeout_ms for the brokers. Returns 0,
 * CASB_EINVALID when replication_factor or brokers is rejected, or -1 with err naming the
 * first topic that failed (e.g. more replicas than brokers) or the timeout. */
int casb_kafka_topics_create(const char *brokers, int replication_factor, int timeout_ms,
                             int *outcome, char *err, size_t errlen);

typedef struct casb_producer casb_producer;

int casb_producer_new(casb_producer **out, const char *brokers, const char *client_id,
                      char *err, size_t errlen);
/* Queues one message (copied). Blocks briefly while the local queue is full. */
int casb_producer_send(casb_producer *p, const char *topic, const char *key,
                       const void *value, size_t len, char *err, size_t errlen);
/* Waits until every queued message has its delivery report, up to timeout_ms. Returns 0 when
 * all were acknowledged by the broker since the previous flush, -1 (err says how many failed
 * or that the timeout passed) otherwise. This is the point where produced work is durable. */
int casb_producer_flush(casb_producer *p, int timeout_ms, char *err, size_t errlen);
/* Serves delivery reports without waiting; call regularly from idle loops. */
void casb_producer_poll(casb_producer *p);
/* Flushes (up to 10 s) and destroys. NULL-safe. */
void casb_producer_free(casb_producer *p);

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key; /* may be NULL */
    size_t key_len;
    const char *value; /* not NUL-terminated in general; value_len bytes */
    size_t value_len;
    void *internal_; /* the rd_kafka_message_t */
} casb_message;

typedef struct casb_consumer casb_consumer;

/* topics is NULL-terminated. max_poll_interval_ms bounds how long one message may be
 * processed before the group considers the member dead (0: librdkafka default). */
int casb_consumer_new(casb_consumer **out, const char *brokers, const char *group_id,
                      const char *const *topics, int max_poll_interval_ms,
                      char *err, size_t errlen);
/* Returns 1 and *out (free with casb_message_free), 0 when nothing arrived in timeout_ms,
 * -1 on a fatal consumer error. Transient broker errors are logged and reported as 0. */
int casb_consumer_poll(casb_consumer *c, casb_message **out, int timeout_ms);
/* For a message whose processing takes longer than max_poll_interval_ms allows: pause
 * fetching (every partition assigned now or later), keep calling casb_consumer_poll while
 * it is processed (it then delivers no message, but keeps the member in the group and
 * serves rebalances), then resume. The position stays at the held message's successor:
 * nothing is skipped or fetched twice. 0, or -1 (logged). */
int casb_consumer_pause(casb_consumer *c);
int casb_consumer_resume(casb_consumer *c);
/* Makes a casb_consumer_poll that blocks in another thread return now (with nothing; when
 * none blocks, the next one returns at once): for the thread that finishes a paused
 * message's processing, so that the polling thread resumes at once instead of at the end
 * of its poll timeout. Thread-safe. */
void casb_consumer_wake(casb_consumer *c);
/* Rewinds msg's partition to msg, so that it is delivered again (a message polled while
 * the application was not ready to take it). 0, or -1 (logged). */
int casb_consumer_seek_back(casb_consumer *c, const casb_message *msg);
/* Marks msg processed: stores offset+1 for the background committer. */
int casb_consumer_commit(casb_consumer *c, const casb_message *msg);
/* Synchronously commits stored offsets (used before shutdown and in tests). */
int casb_consumer_commit_sync(casb_consumer *c);
void casb_message_free(casb_message *msg);
/* The offset the next message produced to topic/partition will get (its high watermark), as
 * the broker says now. 0, or -1 with err set. */
int casb_consumer_end_offset(casb_consumer *c, const char *topic, int32_t partition,
                             int64_t *end, int timeout_ms, char *err, size_t errlen);
/* Leaves the group (committing stored offsets) and destroys. NULL-safe. */
void casb_consumer_close(casb_consumer *c);

/* Publishes msg to "<msg->topic>.dlq" with the same key and value, and headers
 * casb-dlq-reason, casb-dlq-source-topic, casb-dlq-source-partition, casb-dlq-source-offset.
 * Waits for the delivery report, so the caller may commit the original afterwards. */
int casb_dlq_publish(casb_producer *p, const casb_message *msg, const char *reason,
                     char *err, size_t errlen);

/* Metrics: casb_dlq_messages_total{topic} counts messages dead-lettered by casb_dlq_publish
 * (topic: the source topic); every consumer sets casb_kafka_consumer_lag{topic,partition}
 * from librdkafka's statistics every CASB_KAFKA_STATS_INTERVAL_MS (0 for partitions another
 * group member owns, so a sum over replicas is the group's lag). */
#define CASB_KAFKA_STATS_INTERVAL_MS 15000

/* Sets the lag gauges from one librdkafka statistics JSON document (exposed for tests).
 * Returns -1 when it does not parse. */
int casb_kafka_record_stats(const char *json, size_t len);

/* 1 when the brokers answer a metadata request within timeout_ms (for /readyz). */
int casb_kafka_reachable(casb_producer *p, int timeout_ms);

#endif
