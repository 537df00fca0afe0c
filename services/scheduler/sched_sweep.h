#ifndef SCHED_SWEEP_H
#define SCHED_SWEEP_H

#include <stddef.h>

#include "casb/db.h"

/* Housekeeping the scheduler owns, run about once a minute. */

typedef struct {
    int abandoned;     /* running scans given up (their worker is gone) */
    int requeued;      /* scans queued again in their place */
    long outbox_purged; /* sent outbox rows past retention */
} sched_sweep_result;

/* A scan stays 'running' while its worker renews the lease; a worker that died leaves the
 * lease to expire, and Kafka's redelivery lets another worker take it over within minutes.
 * A lease expired for more than stale_after_s has no taker: the scan is marked failed
 * ("worker lost") and a new one queued for the integration unless it is paused, in the same
 * transaction. Sent outbox rows older than retention_s are deleted. 0 or -1 with err. */
int sched_sweep(casb_db *db, long stale_after_s, long retention_s, sched_sweep_result *out,
                char *err, size_t errlen);

#endif
