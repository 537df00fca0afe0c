#include "sw_loop.h"

#include <stddef.h>

#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/service.h"

#define SW_GROUP_ID "casb-scanner-worker"
/* One job is processed for as long as its scan runs, without polling in between. Scans of
 * large tenants take many minutes, so the group must not evict a worker that is busy: 30
 * minutes for now. Longer scans are handled by a later change (pausing the partitions and
 * polling while scanning); meanwhile the scan lease keeps a second worker off the scan. */
#define SW_MAX_POLL_INTERVAL_MS (30 * 60 * 1000)
/* Wait between two attempts to join the group, and before rejoining it. */
#define SW_REJOIN_WAIT_MS 5000
#define SW_POLL_TIMEOUT_MS 500

/* Returns a consumer in the group, or NULL once a stop is requested. */
static casb_consumer *join_group(const char *brokers)
{
    static const char *const topics[] = {CASB_TOPIC_SCAN_JOBS, NULL};
    casb_consumer *c = NULL;
    char err[256];

    while (!casb_service_stopping()) {
        if (casb_consumer_new(&c, brokers, SW_GROUP_ID, topics, SW_MAX_POLL_INTERVAL_MS, err,
                              sizeof(err)) == 0)
            return c;
        casb_log_error("cannot create the job consumer; retrying", "error", err);
        casb_service_sleep_ms(SW_REJOIN_WAIT_MS);
    }
    return NULL;
}

int sw_loop_run(sw_worker *w)
{
    casb_consumer *consumer = join_group(w->settings->kafka_brokers);
    int rc = 0;

    while (consumer && !casb_service_stopping()) {
        casb_message *msg = NULL;
        int polled = casb_consumer_poll(consumer, &msg, SW_POLL_TIMEOUT_MS);

        if (polled < 0) {
            casb_log_error("fatal consumer error; exiting");
            rc = -1;
            break;
        }
        if (polled == 0) {
            casb_producer_poll(w->producer);
            continue;
        }
        sw_job_outcome outcome = sw_worker_handle(w, msg);
        if (outcome == SW_JOB_COMMIT) {
            casb_consumer_commit(consumer, msg);
        } else if (outcome == SW_JOB_REDELIVER) {
            /* Leaving and rejoining the group rewinds to the last committed offset, so the
             * job comes back; moving on to the next message would commit past it. */
            casb_message_free(msg);
            msg = NULL;
            casb_consumer_close(consumer);
            casb_service_sleep_ms(SW_REJOIN_WAIT_MS);
            consumer = join_group(w->settings->kafka_brokers);
        }
        casb_message_free(msg);
    }
    casb_consumer_close(consumer);
    return rc;
}
