#ifndef SCHED_RELAY_H
#define SCHED_RELAY_H

#include <stddef.h>

#include "casb/db.h"
#include "casb/kafka.h"

/* The outbox relay: publishes unsent scan_outbox rows to casb.scan.jobs (key = integration
 * id) and marks them sent once the broker acknowledged them. Delivery is at-least-once: a
 * crash or failure between the acknowledgement and the commit sends the rows again, which
 * the worker's scan lease makes harmless. */

/* One round: waits (up to flush_timeout_ms) for anything a failed round left queued in the
 * producer, locks up to limit unsent rows in id order (SKIP LOCKED: replicas relay disjoint
 * rows), produces them, flushes (up to flush_timeout_ms) and, only when every one was
 * acknowledged, marks them sent and commits. *sent receives the number published.
 * Returns 0, or -1 with err (rolled back: the rows stay unsent and are retried). */
int sched_relay_once(casb_db *db, casb_producer *p, long limit, int flush_timeout_ms, int *sent,
                     char *err, size_t errlen);

/* How far the relay is behind: unsent rows and the age of the oldest one (0 when none). */
int sched_relay_backlog(casb_db *db, long *pending, double *oldest_age_s, char *err,
                        size_t errlen);

/* The PostgreSQL array literal "{1,2,3}" of n bigint ids given as decimal text, for
 * "= ANY($1::bigint[])". Returns a malloc'ed string, or NULL when an id is not a plain
 * non-negative decimal number. */
char *sched_relay_id_array(const char *const *ids, size_t n);

#endif
