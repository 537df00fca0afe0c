#include "sw_loop.h"

#include <pthread.h>
#include <stddef.h>

#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/service.h"

#define SW_GROUP_ID "casb-scanner-worker"
/* A scan runs for minutes or hours on a thread of its own while this loop keeps polling with
 * the partitions paused, so the group never takes a busy worker for a dead one: the poll
 * interval only has to cover one poll, not one scan. */
#define SW_MAX_POLL_INTERVAL_MS (5 * 60 * 1000)
/* Wait between two attempts to join the group, and before rejoining it. */
#define SW_REJOIN_WAIT_MS 5000
#define SW_POLL_TIMEOUT_MS 500

/* One job on its thread; done is set (under mu) when sw_worker_handle has returned. */
typedef struct {
    sw_worker *w;
    casb_consumer *consumer;
    const casb_message *msg;
    sw_job_outcome outcome;
    int done;
    pthread_mutex_t mu;
} job_run;

static void *run_job(void *arg)
{
    job_run *j = arg;
    sw_job_outcome outcome = sw_worker_handle(j->w, j->msg);

    pthread_mutex_lock(&j->mu);
    j->outcome = outcome;
    j->done = 1;
    pthread_mutex_unlock(&j->mu);
    /* The polling thread would otherwise notice only at the end of its poll timeout: the
     * next job waited up to SW_POLL_TIMEOUT_MS (500 ms) behind a scan of 10 ms. */
    casb_consumer_wake(j->consumer);
    return NULL;
}

static int job_done(job_run *j)
{
    int done;

    pthread_mutex_lock(&j->mu);
    done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

/* Handles msg on a thread while the group membership is kept alive: fetching is paused, and
 * polls (which then deliver nothing) serve heartbeats, rebalances and delivery reports until
 * the job is done. A partition revoked meanwhile is then simply not committed: its new owner
 * gets the job again and the scan's lease or finished state tells it what to do. */
static sw_job_outcome handle_polling(sw_worker *w, casb_consumer *consumer,
                                     const casb_message *msg)
{
    job_run j = {.w = w, .consumer = consumer, .msg = msg, .outcome = SW_JOB_REDELIVER};
    pthread_t thread;

    pthread_mutex_init(&j.mu, NULL);
    if (pthread_create(&thread, NULL, run_job, &j) != 0) {
        casb_log_error("cannot start a scan thread; handling the job inline");
        j.outcome = sw_worker_handle(w, msg);
        goto out;
    }
    casb_consumer_pause(consumer);
    while (!job_done(&j)) {
        casb_message *stray = NULL;

        /* Paused: nothing arrives; if a message does (a partition assigned before the
         * pause took effect), it is not ours to take now: it comes back after resume. */
        if (casb_consumer_poll(consumer, &stray, SW_POLL_TIMEOUT_MS) > 0) {
            casb_consumer_seek_back(consumer, stray);
            casb_message_free(stray);
        }
        casb_producer_poll(w->producer);
    }
    pthread_join(thread, NULL);
    casb_consumer_resume(consumer);
out:
    pthread_mutex_destroy(&j.mu);
    return j.outcome;
}

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
        sw_job_outcome outcome = handle_polling(w, consumer, msg);
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
