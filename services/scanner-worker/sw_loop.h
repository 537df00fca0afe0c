#ifndef SW_LOOP_H
#define SW_LOOP_H

#include "sw_worker.h"

/* The scanner-worker's consume loop: joins the consumer group casb-scanner-worker on
 * casb.scan.jobs (retrying until it succeeds or a stop is requested), hands each job to
 * sw_worker_handle and commits its offset when the outcome says so. The job runs on a thread
 * of its own while the loop keeps polling with fetching paused, so a scan of any length keeps
 * the worker in the group (no rebalance, no second delivery). A job that must come back
 * (SW_JOB_REDELIVER) makes the worker leave and rejoin the group, which rewinds to the last
 * committed offset. Returns once a stop is requested (0) or on a fatal consumer error (-1),
 * having left the group. */
int sw_loop_run(sw_worker *w);

#endif
