/* Kafka on librdkafka 2.0.2: an idempotent producer whose flush tells whether everything
 * sent since the previous flush was acknowledged, a group consumer that commits only the
 * offsets the caller stored after processing (at-least-once), and dead-letter publishing.
 * Message values are never logged (they may be large); topic/partition/offset are. */
#include "casb/kafka.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/timeutil.h"

/* How long casb_producer_send waits for room in a full local queue before failing. */
#define SEND_QUEUE_WAIT_MS 10000
/* How long casb_dlq_publish waits for the dead-letter message's delivery report. */
#define DLQ_DELIVERY_WAIT_MS 30000

struct casb_producer {
    rd_kafka_t *rk;
    /* Delivery reports may be served by any thread calling poll/flush. */
    atomic_int failed;   /* failed deliveries since the previous flush */
    atomic_int last_err; /* rd_kafka_resp_err_t of the latest failure */
    atomic_int fatal;    /* set once the idempotent producer hit a fatal error */
};

#define KAFKA_SEEK_TIMEOUT_MS 5000

struct casb_consumer {
    rd_kafka_t *rk;
    /* Set while the application holds a message for long (casb_consumer_pause): partitions
     * a rebalance assigns meanwhile are paused as they arrive. Only the polling thread
     * touches it (rebalances are served inside poll). */
    int paused;
};

/* The delivery outcome of one message whose sender waits for it (casb_dlq_publish). Shared
 * by the sender and the delivery report callback; whichever lets go last frees it, so a
 * sender that gave up waiting leaves no dangling pointer behind. */
struct delivery_wait {
    atomic_int refs;
    atomic_int done;
    atomic_int err;
};

static void delivery_wait_unref(struct delivery_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* librdkafka uses syslog levels. */
    int our = level <= 3 ? CASB_LOG_ERROR : level == 4 ? CASB_LOG_WARN
            : level <= 6 ? CASB_LOG_INFO : CASB_LOG_DEBUG;

    casb_log(our, "librdkafka", "client", rd_kafka_name(rk), "facility", fac, "detail", buf,
             (const char *)NULL);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    casb_producer *p = opaque;
    struct delivery_wait *w = m->_private;

    (void)rk;
    if (w) {
        atomic_store(&w->err, (int)m->err);
        atomic_store(&w->done, 1);
        delivery_wait_unref(w);
        return;
    }
    if (m->err) {
        char partition_s[16];

        snprintf(partition_s, sizeof partition_s, "%d", (int)m->partition);
        casb_log_error("kafka delivery failed", "topic", rd_kafka_topic_name(m->rkt),
                       "partition", partition_s, "error", rd_kafka_err2str(m->err));
        atomic_fetch_add(&p->failed, 1);
        atomic_store(&p->last_err, (int)m->err);
    }
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    casb_producer *p = opaque;
    char fatal_msg[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* The idempotence guarantee cannot be kept (e.g. the broker fenced the producer
         * id); produce calls fail from now on, and flush reports it. */
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal_msg, sizeof fatal_msg);

        atomic_store(&p->fatal, 1);
        atomic_store(&p->last_err, (int)orig);
        casb_log_error("kafka producer fatal error", "error", rd_kafka_err2name(orig),
                       "detail", fatal_msg);
        return;
    }
    /* Everything else is informational: librdkafka retries by itself. */
    casb_log_warn("kafka producer error", "error", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                  "detail", reason);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    char msg[256];

    if (rd_kafka_conf_set(conf, name, value, msg, sizeof msg) != RD_KAFKA_CONF_OK)
        return casb_fail(err, errlen, CASB_EINVALID, "kafka config %s: %s", name, msg);
    return 0;
}

/* Settings every client shares. CASB_KAFKA_DEBUG (e.g. "cgrp,topic,fetch") turns on
 * librdkafka's debug contexts when chasing a broker problem; the lines go to our log at
 * debug level, so CASB_LOG_LEVEL=debug is needed to see them. */
static int conf_set_int(rd_kafka_conf_t *conf, const char *name, int value, char *err,
                        size_t errlen)
{
    char v[16];

    snprintf(v, sizeof v, "%d", value);
    return conf_set(conf, name, v, err, errlen);
}

static int conf_common(rd_kafka_conf_t *conf, const char *brokers, char *err, size_t errlen)
{
    const char *debug = getenv("CASB_KAFKA_DEBUG");

    if (conf_set(conf, "bootstrap.servers", brokers, err, errlen) < 0)
        return CASB_EINVALID;
    if (debug && *debug && conf_set(conf, "debug", debug, err, errlen) < 0)
        return CASB_EINVALID;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return 0;
}

int casb_producer_new(casb_producer **out, const char *brokers, const char *client_id,
                      char *err, size_t errlen)
{
    casb_producer *p = NULL;
    rd_kafka_conf_t *conf = NULL;
    char msg[512];
    int rc = CASB_ERROR;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    conf = rd_kafka_conf_new();
    /* enable.idempotence implies acks=all, max.in.flight<=5, unlimited retries and no
     * reordering; setting any of those by hand could conflict, so we do not. */
    if (conf_common(conf, brokers, err, errlen) < 0 ||
        conf_set(conf, "client.id", client_id ? client_id : "casb", err, errlen) < 0 ||
        conf_set(conf, "enable.idempotence", "true", err, errlen) < 0 ||
        conf_set(conf, "linger.ms", "5", err, errlen) < 0 ||
        conf_set(conf, "compression.type", "lz4", err, errlen) < 0)
        goto out;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof msg);
    if (!p->rk) {
        casb_fail(err, errlen, CASB_ERROR, "kafka producer: %s", msg);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    *out = p;
    p = NULL;
    rc = 0;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(p);
    return rc;
}

/* Produces one copied message, waiting up to SEND_QUEUE_WAIT_MS for queue room. headers
 * (may be NULL) belong to librdkafka on success, to the caller on failure. */
static rd_kafka_resp_err_t produce(casb_producer *p, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t len,
                                   rd_kafka_headers_t *headers, void *msg_opaque)
{
    int64_t deadline_ms = casb_monotonic_ms() + SEND_QUEUE_WAIT_MS;
    rd_kafka_resp_err_t e;

    for (;;) {
        if (headers)
            e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                  RD_KAFKA_V_VALUE((void *)value, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(msg_opaque),
                                  RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                  RD_KAFKA_V_VALUE((void *)value, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || casb_monotonic_ms() >= deadline_ms)
            break;
        /* Delivery reports free room in the queue. */
        rd_kafka_poll(p->rk, 100);
    }
    rd_kafka_poll(p->rk, 0);
    return e;
}

int casb_producer_send(casb_producer *p, const char *topic, const char *key,
                       const void *value, size_t len, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e;

    e = produce(p, topic, key, key ? strlen(key) : 0, value, len, NULL, NULL);
    if (e)
        return casb_fail(err, errlen, CASB_ERROR, "kafka produce to %s: %s", topic,
                         rd_kafka_err2str(e));
    return 0;
}

int casb_producer_flush(casb_producer *p, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
    int failed = atomic_exchange(&p->failed, 0);

    if (atomic_load(&p->fatal))
        return casb_fail(err, errlen, CASB_ERROR, "kafka producer failed fatally: %s",
                         rd_kafka_err2str((rd_kafka_resp_err_t)atomic_load(&p->last_err)));
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                         "kafka flush timed out after %d ms with %d message(s) outstanding",
                         timeout_ms, rd_kafka_outq_len(p->rk));
    if (failed > 0)
        return casb_fail(err, errlen, CASB_ERROR,
                         "kafka: %d message(s) failed delivery since the last flush (last: %s)",
                         failed,
                         rd_kafka_err2str((rd_kafka_resp_err_t)atomic_load(&p->last_err)));
    return 0;
}

void casb_producer_poll(casb_producer *p)
{
    rd_kafka_poll(p->rk, 0);
}

void casb_producer_free(casb_producer *p)
{
    char err[256];

    if (!p)
        return;
    if (casb_producer_flush(p, 10000, err, sizeof err) < 0)
        casb_log_error("kafka producer closed with undelivered messages", "error", err);
    rd_kafka_destroy(p->rk);
    free(p);
}

int casb_kafka_reachable(casb_producer *p, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    int ok;

    /* all_topics=0 and no topic: only the broker list, the cheapest round trip. */
    if (rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

/* Topic names are Kafka's [a-zA-Z0-9._-], never quotes or backslashes: safe label values.
 * The set is the few topics this service consumes. */
static casb_metric *dead_letter_counter(const char *topic)
{
    char labels[300];

    snprintf(labels, sizeof labels, "topic=\"%s\"", topic);
    return casb_metrics_counter("casb_dlq_messages_total",
                                "Messages sent to a dead-letter topic, by source topic.", labels);
}

static void count_dead_letter(const char *topic)
{
    casb_metric_add(dead_letter_counter(topic), 1);
}

int casb_dlq_publish(casb_producer *p, const casb_message *msg, const char *reason,
                     char *err, size_t errlen)
{
    rd_kafka_headers_t *headers = rd_kafka_headers_new(4);
    struct delivery_wait *w = NULL;
    char *dlq_topic = NULL;
    char partition_s[16], offset_s[32];
    int64_t deadline_ms;
    rd_kafka_resp_err_t e;
    int rc = CASB_ERROR;

    snprintf(partition_s, sizeof partition_s, "%d", (int)msg->partition);
    snprintf(offset_s, sizeof offset_s, "%lld", (long long)msg->offset);
    if (asprintf(&dlq_topic, "%s%s", msg->topic, CASB_DLQ_SUFFIX) < 0) {
        dlq_topic = NULL;
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    atomic_init(&w->refs, 2); /* ours and the delivery report's */
    rd_kafka_header_add(headers, "casb-dlq-reason", -1, reason ? reason : "", -1);
    rd_kafka_header_add(headers, "casb-dlq-source-topic", -1, msg->topic, -1);
    rd_kafka_header_add(headers, "casb-dlq-source-partition", -1, partition_s, -1);
    rd_kafka_header_add(headers, "casb-dlq-source-offset", -1, offset_s, -1);

    e = produce(p, dlq_topic, msg->key, msg->key ? msg->key_len : 0, msg->value,
                msg->value_len, headers, w);
    if (e) {
        atomic_store(&w->refs, 1); /* no delivery report will come */
        casb_fail(err, errlen, CASB_ERROR, "kafka produce to %s: %s", dlq_topic,
                  rd_kafka_err2str(e));
        goto out;
    }
    headers = NULL; /* owned by the message now */

    deadline_ms = casb_monotonic_ms() + DLQ_DELIVERY_WAIT_MS;
    while (!atomic_load(&w->done) && casb_monotonic_ms() < deadline_ms)
        rd_kafka_poll(p->rk, 100);
    if (!atomic_load(&w->done)) {
        casb_fail(err, errlen, CASB_EUNAVAILABLE, "kafka: no delivery report for %s within %d ms",
                  dlq_topic, DLQ_DELIVERY_WAIT_MS);
        goto out;
    }
    e = (rd_kafka_resp_err_t)atomic_load(&w->err);
    if (e) {
        casb_fail(err, errlen, CASB_ERROR, "kafka delivery to %s: %s", dlq_topic,
                  rd_kafka_err2str(e));
        goto out;
    }
    casb_log_warn("message dead-lettered", "topic", msg->topic, "partition", partition_s,
                  "offset", offset_s, "dlq_topic", dlq_topic, "reason", reason);
    count_dead_letter(msg->topic);
    rc = 0;
out:
    if (headers)
        rd_kafka_headers_destroy(headers);
    if (w)
        delivery_wait_unref(w);
    free(dlq_topic);
    return rc;
}

/* ---- consumer ---- */

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char count_s[16];

    snprintf(count_s, sizeof count_s, "%d", parts ? parts->cnt : 0);
    casb_log_info(what, "partitions", count_s);
}

/* The rebalance protocol of infra-notes §1b. Offsets the application stored are committed
 * synchronously before partitions go, so that the next owner starts right after the last
 * processed message instead of redelivering up to an auto-commit interval's worth. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        log_partitions("kafka partitions assigned", parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
        /* Either way explicitly: a partition paused when it was revoked (the broker went
         * away during a long job) keeps its pause in librdkafka when it is assigned again,
         * and casb_consumer_resume, which came in between, could not reach it. */
        if (!error && !e) {
            if (((casb_consumer *)opaque)->paused)
                rd_kafka_pause_partitions(rk, parts);
            else
                rd_kafka_resume_partitions(rk, parts);
        }
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        log_partitions("kafka partitions revoked", parts);
        /* NULL: the stored offsets of the current assignment (the list holds none).
         * After a lost assignment the commit fails harmlessly. */
        if (!rd_kafka_assignment_lost(rk)) {
            rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);

            if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
                casb_log_warn("kafka commit on revoke failed", "error", rd_kafka_err2str(ce));
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            e = rd_kafka_assign(rk, NULL);
        break;
    default:
        casb_log_warn("kafka rebalance failed", "error", rd_kafka_err2str(err));
        e = rd_kafka_assign(rk, NULL);
        break;
    }
    if (error) {
        casb_log_error("kafka assignment failed", "error", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e) {
        casb_log_error("kafka assignment failed", "error", rd_kafka_err2str(e));
    }
}

/* One partition of the statistics' topics.<t>.partitions: its consumer_lag when this member
 * has it assigned and the lag is known, else 0 (another member reports it). Partition -1 is
 * librdkafka's internal unassigned-messages partition. */
static void record_partition_lag(const char *topic, const char *partition, json_t *p)
{
    char labels[320];
    json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag"));

    if (strcmp(partition, "-1") == 0 || !json_is_integer(json_object_get(p, "consumer_lag")))
        return;
    if (!json_is_true(json_object_get(p, "assigned")) || lag < 0)
        lag = 0;
    snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%s\"", topic, partition);
    casb_metric_set(casb_metrics_gauge("casb_kafka_consumer_lag",
                                       "Messages behind the partition's high watermark, from "
                                       "the committed offset (librdkafka statistics).",
                                       labels),
                    (double)lag);
}

int casb_kafka_record_stats(const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    json_t *topics, *t;
    const char *tname;

    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    topics = json_object_get(root, "topics");
    json_object_foreach(topics, tname, t) {
        json_t *parts = json_object_get(t, "partitions");
        json_t *p;
        const char *pname;

        json_object_foreach(parts, pname, p)
            record_partition_lag(tname, pname, p);
    }
    json_decref(root);
    return 0;
}

/* Served by casb_consumer_poll (the consumer's one queue). 0: librdkafka frees json. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (casb_kafka_record_stats(json, json_len) != 0)
        casb_log_warn("kafka statistics did not parse");
    return 0;
}

int casb_consumer_new(casb_consumer **out, const char *brokers, const char *group_id,
                      const char *const *topics, int max_poll_interval_ms,
                      char *err, size_t errlen)
{
    casb_consumer *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t e;
    char msg[512];
    int rc = CASB_ERROR;
    int n = 0;

    *out = NULL;
    while (topics && topics[n])
        n++;
    if (n == 0)
        return casb_fail(err, errlen, CASB_EINVALID, "kafka consumer: no topics");
    c = calloc(1, sizeof *c);
    if (!c)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    conf = rd_kafka_conf_new();
    /* Stored offsets only: the background committer commits what casb_consumer_commit
     * stored, never what was merely handed out by poll. */
    if (conf_common(conf, brokers, err, errlen) < 0 ||
        conf_set(conf, "group.id", group_id, err, errlen) < 0 ||
        conf_set(conf, "client.id", group_id, err, errlen) < 0 ||
        conf_set(conf, "enable.auto.commit", "true", err, errlen) < 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
        conf_set(conf, "auto.offset.reset", "earliest", err, errlen) < 0 ||
        /* Kafka's pre-3.0 default instead of 45 s: a crashed member's partitions (heart-
         * beats come from librdkafka's own thread) move to a live one within seconds. */
        conf_set(conf, "session.timeout.ms", "10000", err, errlen) < 0)
        goto out;
    if (max_poll_interval_ms > 0 &&
        conf_set_int(conf, "max.poll.interval.ms", max_poll_interval_ms, err, errlen) < 0)
        goto out;
    if (conf_set_int(conf, "statistics.interval.ms", CASB_KAFKA_STATS_INTERVAL_MS, err,
                     errlen) < 0)
        goto out;
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof msg);
    if (!c->rk) {
        casb_fail(err, errlen, CASB_ERROR, "kafka consumer: %s", msg);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    /* One queue: consumer_poll then also serves rebalances, errors and logs. */
    rd_kafka_poll_set_consumer(c->rk);
    subs = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
        /* Shown at 0 from the start: an alert on its rate needs the series to exist. */
        dead_letter_counter(topics[i]);
    }
    e = rd_kafka_subscribe(c->rk, subs);
    if (e) {
        casb_fail(err, errlen, CASB_ERROR, "kafka subscribe: %s", rd_kafka_err2str(e));
        goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (subs)
        rd_kafka_topic_partition_list_destroy(subs);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c) {
        if (c->rk)
            rd_kafka_destroy(c->rk);
        free(c);
    }
    return rc;
}

int casb_consumer_poll(casb_consumer *c, casb_message **out, int timeout_ms)
{
    rd_kafka_message_t *rkm;
    casb_message *msg;

    *out = NULL;
    rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!rkm)
        return 0;
    if (rkm->err) {
        char fatal_msg[256];
        rd_kafka_resp_err_t e = rkm->err;

        rd_kafka_message_destroy(rkm);
        if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return 0;
        if (rd_kafka_fatal_error(c->rk, fatal_msg, sizeof fatal_msg)) {
            casb_log_error("kafka consumer fatal error", "error", fatal_msg);
            return -1;
        }
        casb_log_warn("kafka consumer error", "error", rd_kafka_err2str(e));
        return 0;
    }
    msg = calloc(1, sizeof *msg);
    if (!msg) {
        /* Not stored, so it is redelivered after a restart; the caller sees a fatal error. */
        rd_kafka_message_destroy(rkm);
        casb_log_error("kafka consumer: out of memory");
        return -1;
    }
    msg->topic = rd_kafka_topic_name(rkm->rkt);
    msg->partition = rkm->partition;
    msg->offset = rkm->offset;
    msg->key = rkm->key;
    msg->key_len = rkm->key ? rkm->key_len : 0;
    msg->value = rkm->payload;
    msg->value_len = rkm->payload ? rkm->len : 0;
    msg->internal_ = rkm;
    *out = msg;
    return 1;
}

int casb_consumer_commit(casb_consumer *c, const casb_message *msg)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp;
    rd_kafka_resp_err_t e;
    char partition_s[16], offset_s[32];

    /* The committed offset is the next one to read, hence +1. */
    tp = rd_kafka_topic_partition_list_add(list, msg->topic, msg->partition);
    tp->offset = msg->offset + 1;
    e = rd_kafka_offsets_store(c->rk, list);
    if (!e)
        e = tp->err;
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        /* Typically __STATE: the partition was revoked while the message was processed;
         * its new owner receives it again, which the processing must tolerate anyway. */
        snprintf(partition_s, sizeof partition_s, "%d", (int)msg->partition);
        snprintf(offset_s, sizeof offset_s, "%lld", (long long)msg->offset);
        casb_log_warn("kafka offset not stored; the message will be redelivered", "topic",
                      msg->topic, "partition", partition_s, "offset", offset_s, "error",
                      rd_kafka_err2str(e));
        return CASB_ERROR;
    }
    return 0;
}

int casb_consumer_commit_sync(casb_consumer *c)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);

    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        casb_log_warn("kafka commit failed", "error", rd_kafka_err2str(e));
        return CASB_ERROR;
    }
    return 0;
}

/* Pauses or resumes every partition assigned now; rebalance_cb covers later ones. */
static int set_paused(casb_consumer *c, int paused)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &parts);

    c->paused = paused;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        e = paused ? rd_kafka_pause_partitions(c->rk, parts)
                   : rd_kafka_resume_partitions(c->rk, parts);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        casb_log_warn(paused ? "kafka pause failed" : "kafka resume failed", "error",
                      rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int casb_consumer_pause(casb_consumer *c)
{
    return set_paused(c, 1);
}

int casb_consumer_resume(casb_consumer *c)
{
    return set_paused(c, 0);
}

void casb_consumer_wake(casb_consumer *c)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(c->rk);

    if (!q)
        return;
    rd_kafka_queue_yield(q);
    rd_kafka_queue_destroy(q);
}

int casb_consumer_seek_back(casb_consumer *c, const casb_message *msg)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;
    int rc = 0;

    rd_kafka_topic_partition_list_add(list, msg->topic, msg->partition)->offset = msg->offset;
    error = rd_kafka_seek_partitions(c->rk, list, KAFKA_SEEK_TIMEOUT_MS);
    if (error) {
        casb_log_warn("kafka seek failed; the message comes back after a rebalance", "error",
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int casb_consumer_end_offset(casb_consumer *c, const char *topic, int32_t partition,
                             int64_t *end, int timeout_ms, char *err, size_t errlen)
{
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, &low, &high, timeout_ms);

    if (e)
        return casb_fail(err, errlen, CASB_ERROR, "kafka: end offset of %s/%d: %s", topic,
                         (int)partition, rd_kafka_err2str(e));
    *end = high;
    return 0;
}

void casb_message_free(casb_message *msg)
{
    if (!msg)
        return;
    rd_kafka_message_destroy(msg->internal_);
    free(msg);
}

void casb_consumer_close(casb_consumer *c)
{
    rd_kafka_resp_err_t e;

    if (!c)
        return;
    /* Leaves the group (revoke -> commit of stored offsets) before the member would
     * otherwise linger until session.timeout.ms. */
    e = rd_kafka_consumer_close(c->rk);
    if (e)
        casb_log_warn("kafka consumer close", "error", rd_kafka_err2str(e));
    rd_kafka_destroy(c->rk);
    free(c);
}

/* ------------------------------------------------------------------------------------------
 * Topic creation (Admin API), for `casb-integration-manager create-topics`. */

const casb_kafka_topic_spec casb_kafka_topics[] = {
    {CASB_TOPIC_SCAN_JOBS, 6},
    {CASB_TOPIC_SCAN_RESULTS, 6},
    {CASB_TOPIC_INTEGRATION_EVENTS, 3},
    {CASB_TOPIC_SCAN_JOBS CASB_DLQ_SUFFIX, 1},
    {CASB_TOPIC_SCAN_RESULTS CASB_DLQ_SUFFIX, 1},
    {CASB_TOPIC_INTEGRATION_EVENTS CASB_DLQ_SUFFIX, 1},
};
const size_t casb_kafka_topics_count = sizeof(casb_kafka_topics) / sizeof(casb_kafka_topics[0]);

static rd_kafka_NewTopic_t **new_topics(int replication_factor, char *err, size_t errlen)
{
    rd_kafka_NewTopic_t **topics = calloc(casb_kafka_topics_count, sizeof(*topics));
    char msg[256];

    if (!topics) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < casb_kafka_topics_count; i++) {
        topics[i] = rd_kafka_NewTopic_new(casb_kafka_topics[i].name,
                                          casb_kafka_topics[i].partitions, replication_factor,
                                          msg, sizeof msg);
        if (!topics[i]) {
            casb_fail(err, errlen, CASB_EINVALID, "topic %s: %s", casb_kafka_topics[i].name,
                      msg);
            rd_kafka_NewTopic_destroy_array(topics, i);
            free(topics);
            return NULL;
        }
    }
    return topics;
}

static int topic_index(const char *name)
{
    for (size_t i = 0; i < casb_kafka_topics_count; i++)
        if (strcmp(casb_kafka_topics[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Reads the per-topic results of a CreateTopics event into outcome. */
static int topics_outcome(rd_kafka_event_t *ev, int *outcome, char *err, size_t errlen)
{
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    const rd_kafka_topic_result_t **results;
    size_t n = 0;

    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return casb_fail(err, errlen, CASB_ERROR, "creating topics: %s",
                         rd_kafka_event_error_string(ev));
    if (!res)
        return casb_fail(err, errlen, CASB_ERROR, "creating topics: unexpected event %s",
                         rd_kafka_event_name(ev));
    results = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_topic_result_name(results[i]);
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        int at = topic_index(name);

        if (at < 0)
            continue;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            outcome[at] = CASB_KAFKA_TOPIC_CREATED;
        else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            outcome[at] = CASB_KAFKA_TOPIC_EXISTING;
        else
            return casb_fail(err, errlen, CASB_ERROR, "topic %s: %s", name,
                             rd_kafka_topic_result_error_string(results[i])
                                 ? rd_kafka_topic_result_error_string(results[i])
                                 : rd_kafka_err2str(e));
    }
    for (size_t i = 0; i < casb_kafka_topics_count; i++)
        if (!outcome[i])
            return casb_fail(err, errlen, CASB_ERROR, "topic %s: no result from the broker",
                             casb_kafka_topics[i].name);
    return 0;
}

int casb_kafka_topics_create(const char *brokers, int replication_factor, int timeout_ms,
                             int *outcome, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t **topics = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    char msg[512];
    int rc;

    memset(outcome, 0, casb_kafka_topics_count * sizeof(*outcome));
    rc = conf_common(conf, brokers, err, errlen);
    if (rc != 0)
        goto out;
    rc = CASB_ERROR;
    /* A plain (non-idempotent) handle: it only sends admin requests. */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof msg);
    if (!rk) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "kafka admin client: %s", msg);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    topics = new_topics(replication_factor, err, errlen);
    if (!topics) {
        rc = CASB_EINVALID;
        goto out;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, msg, sizeof msg) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, msg, sizeof msg)) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "kafka admin options: %s", msg);
        goto out;
    }
    queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, casb_kafka_topics_count, opts, queue);
    /* The request times out by itself; the margin covers the broker lookup before it. */
    ev = rd_kafka_queue_poll(queue, timeout_ms + 5000);
    if (!ev) {
        rc = casb_fail(err, errlen, CASB_EUNAVAILABLE, "no answer from %s in %d ms", brokers,
                       timeout_ms);
        goto out;
    }
    rc = topics_outcome(ev, outcome, err, errlen);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (queue)
        rd_kafka_queue_destroy(queue);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (topics) {
        rd_kafka_NewTopic_destroy_array(topics, casb_kafka_topics_count);
        free(topics);
    }
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rc;
}
