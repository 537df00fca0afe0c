#ifndef SW_STORE_H
#define SW_STORE_H

#include <stddef.h>

#include "casb/db.h"

/* The scanner-worker's SQL: scan leases and the integration it scans. The worker never
 * finalises a scan (findings-api does when it ingests the last result message); it only
 * marks it running and holds the lease. */

/* Takes the lease of a queued scan, or of a running one whose lease has expired (its worker
 * died). Every lease taken starts a new attempt of the scan, which rescans from the start:
 * *attempt receives its number (1, 2, ...) and started_at (>= 40 bytes) the attempt's start,
 * RFC 3339 UTC with microseconds. Every message of the attempt carries both (attempt,
 * scan_started_at), so findings-api tells the attempts' sequences apart.
 * Returns 1 taken, 0 when the scan is finished, gone or leased by a live worker, -1 on a
 * database error. */
int sw_store_take_lease(casb_db *db, const char *scan_id, const char *integration_id,
                        const char *worker_id, long lease_s, int *attempt, char *started_at,
                        size_t started_at_len, char *err, size_t errlen);

/* Extends our lease, attempt being the one sw_store_take_lease gave us: a worker that lost
 * its lease never extends the attempt that took the scan over, even under the same worker
 * id. 1 renewed, 0 lost (taken over, finished or deleted), -1 error. */
int sw_store_renew_lease(casb_db *db, const char *scan_id, const char *worker_id, int attempt,
                         long lease_s, char *err, size_t errlen);

/* Whether the scan is running under a lease that has not expired yet (its worker may be
 * alive, or dead and its lease not yet lapsed): 1 with *left_ms the lease's remaining time,
 * 0 when it is not (queued, finished, gone, or its lease lapsed), -1 on a database error. */
int sw_store_lease_held(casb_db *db, const char *scan_id, long *left_ms, char *err,
                        size_t errlen);

/* Whether the scan row still exists (after a lost lease, to tell a deleted integration
 * from a takeover in the logs). 1 yes, 0 gone, -1 error. */
int sw_store_scan_exists(casb_db *db, const char *scan_id, char *err, size_t errlen);

/* Ends our lease (of that attempt) now, so the redelivered job can be taken at once by any
 * worker. */
int sw_store_release_lease(casb_db *db, const char *scan_id, const char *worker_id, int attempt,
                           char *err, size_t errlen);

/* The page cache of conditional requests (provider_page_cache; provider.h casb_page_cache).
 * URLs longer than SW_PAGE_CACHE_MAX_URL are never stored (an index entry must fit a page). */
#define SW_PAGE_CACHE_MAX_URL 2000

/* The entry of (integration, url), marked used now: 1 with *etag, *body (*body_len bytes) and
 * *next_url (NULL when none), malloc'ed and the caller's; 0 none; -1 error. */
int sw_store_page_get(casb_db *db, const char *integration_id, const char *url, char **etag,
                      char **body, size_t *body_len, char **next_url, char *err, size_t errlen);

/* Stores or replaces the entry (next_url may be NULL). 0, or -1 with err. */
int sw_store_page_put(casb_db *db, const char *integration_id, const char *url, const char *etag,
                      const char *body, const char *next_url, char *err, size_t errlen);

/* Deletes the integration's entries not used since `since` (a timestamptz literal, the
 * attempt's start): after a completed scan, what it did not ask for is gone upstream.
 * *deleted (may be NULL) gets the count. 0, or -1 with err. */
int sw_store_page_prune(casb_db *db, const char *integration_id, const char *since,
                        long *deleted, char *err, size_t errlen);



#endif
