#ifndef IM_REPLAY_H
#define IM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "casb/kafka.h"

/* `replay-dlq`: sends a dead-letter topic's messages back to the topic they came from (see
 * IM_REPLAY_SUMMARY in im_settings.c). */

#define IM_REPLAY_COMMAND "replay-dlq"
#define IM_REPLAY_GROUP "casb-dlq-replay"

/* The topic a dead-letter topic's messages return to: dlq_topic without ".dlq", when it is
 * the DLQ of one of casb_kafka_topics. Returns 0, or CASB_EINVALID with err. */
int im_replay_source_topic(const char *dlq_topic, char *out, size_t outlen, char *err,
                           size_t errlen);

typedef struct {
    long replayed;
    long left; /* came after the start (failed again?) or beyond the maximum */
} im_replay_counts;

/* Replays what the DLQ held at the start, up to max (0: all), stopping after idle_ms
 * without a message. 0, or -1 with err (Kafka failed; what was replayed is committed). */
int im_replay_run(const char *brokers, const char *dlq_topic, long max, long idle_ms,
                  im_replay_counts *counts, char *err, size_t errlen);

/* argv[0] is the subcommand. Returns the process exit status. */
int im_replay_main(int argc, char **argv);

#endif
