#ifndef SW_WORKER_H
#define SW_WORKER_H

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/kafka.h"
#include "sw_settings.h"

/* Runs one scan job from casb.scan.jobs to its last result message. */

typedef enum {
    SW_JOB_COMMIT = 0,    /* done (or nothing to do): commit the job's offset */
    SW_JOB_REDELIVER = 1, /* results could not be made durable: do not commit; the consumer
                           * must rejoin so that the job comes back */
    SW_JOB_SHUTDOWN = 2,  /* the process is stopping: do not commit; another worker rescans */
} sw_job_outcome;

typedef struct {
    const sw_settings *settings;
    const casb_keyring *keys;
    casb_db *db;              /* used by this thread only */
    casb_producer *producer;
    volatile int *cancel;     /* the running scan's cancel flag (HTTP waits watch it); also
                               * set by SIGTERM/SIGINT (casb_service_cancel_flag) */
} sw_worker;

/* Handles one job message: validation (invalid -> dead letter), the lease, the integration
 * and its credentials, the provider's scan, the result messages and their flush. A stop
 * request (casb_service_stopping) abandons the job with SW_JOB_SHUTDOWN. */
sw_job_outcome sw_worker_handle(sw_worker *w, const casb_message *msg);

/* Registers the worker's Prometheus metrics (call once at start). */
void sw_worker_metrics_init(void);

#endif
