#ifndef SCHED_CLAIM_H
#define SCHED_CLAIM_H

#include <stddef.h>

#include "casb/db.h"

typedef struct {
    int claimed;  /* due integrations whose next_scan_at moved forward */
    int enqueued; /* scans queued for them (fewer when one was queued or running already) */
} sched_claim_result;

/* Claims up to batch due integrations (not paused, next_scan_at <= now()) in one
 * transaction: moves each one's next_scan_at to now + interval * (1 + jitter), and queues a
 * 'scheduled' scan with its outbox job (casb_enqueue_scan). Rows another replica holds are
 * skipped (FOR UPDATE SKIP LOCKED), so replicas never claim one integration twice. Returns 0
 * or -1 with err (the transaction is rolled back: nothing claimed). */
int sched_claim_due(casb_db *db, long batch, long jitter_pct, sched_claim_result *out,
                    char *err, size_t errlen);

#endif
