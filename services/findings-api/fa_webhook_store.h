#ifndef FA_WEBHOOK_STORE_H
#define FA_WEBHOOK_STORE_H

#include <libpq-fe.h>

#include "casb/db.h"
#include "fa_webhook.h"

/* SQL of webhooks and their deliveries. Every statement of the API is scoped by the
 * caller's account; the senders' statements work on delivery ids they claimed. Results are
 * the caller's to PQclear; NULL means err is set. */

/* ---- webhooks (rows in the columns fa_webhook_view reads) ---- */

PGresult *fa_webhook_store_get(casb_db *db, const char *account_id, const char *id, char *err,
                               size_t errlen);
/* The account's webhooks in creation order after after_id (NULL: from the first), up to
 * limit + 1 rows. */
PGresult *fa_webhook_store_list(casb_db *db, const char *account_id, const char *after_id,
                                int limit, char *err, size_t errlen);

/* Where and how to deliver: url, auth_type, auth_sealed (0 or 1 row). */
PGresult *fa_webhook_store_target(casb_db *db, const char *account_id, const char *id,
                                  char *err, size_t errlen);

/* The first of ids (a JSON array of UUIDs) that is not an integration of the account: 1 and
 * its id in out, 0 when all are, -1 on error. */
int fa_webhook_store_unknown_integration(casb_db *db, const char *account_id,
                                         const json_t *ids, char out[37], char *err,
                                         size_t errlen);

/* Inserts in (complete: a checked POST body) with its sealed secrets (NULL for auth none). */
int fa_webhook_store_insert(casb_db *db, const char *account_id, const char *id,
                            const fa_webhook_input *in, const char *sealed, const char *key_id,
                            const char *actor, char *err, size_t errlen);
/* Changes the members in->present names; *found 0 when the account has no such webhook. */
int fa_webhook_store_update(casb_db *db, const char *account_id, const char *id,
                            const fa_webhook_input *in, const char *sealed, const char *key_id,
                            int *found, char *err, size_t errlen);
/* Deletes it with its deliveries; *found as above. */
int fa_webhook_store_delete(casb_db *db, const char *account_id, const char *id, int *found,
                            char *err, size_t errlen);

/* ---- deliveries (rows in the columns fa_webhook_delivery_view reads) ---- */

/* The webhook's deliveries newest first, with seq < before_seq (0: from the newest) and
 * status (NULL: any), up to limit + 1 rows, each with its seq. */
PGresult *fa_webhook_store_deliveries(casb_db *db, const char *account_id,
                                      const char *webhook_id, const char *status,
                                      long long before_seq, int limit, char *err,
                                      size_t errlen);
PGresult *fa_webhook_store_delivery(casb_db *db, const char *account_id, const char *webhook_id,
                                    const char *delivery_id, char *err, size_t errlen);
/* Puts a delivery that is not pending back in the queue with a fresh set of attempts; test
 * deliveries are not queued. Returns the delivery row when it was requeued; 0 rows when the
 * account has no such delivery or it cannot be (see fa_webhook_store_delivery to tell). */
PGresult *fa_webhook_store_redeliver(casb_db *db, const char *account_id,
                                     const char *webhook_id, const char *delivery_id,
                                     char *err, size_t errlen);

/* A test delivery, recorded as one attempt in progress (leased for lease_s). */
int fa_webhook_store_insert_test(casb_db *db, const char *account_id, const char *webhook_id,
                                 const char *delivery_id, long lease_s, char *err,
                                 size_t errlen);

/* ---- the senders' queue ---- */

/* Claims up to batch due pending deliveries of enabled webhooks (SKIP LOCKED, so that
 * senders of any replica share the queue) by counting the attempt and moving
 * next_attempt_at lease_s ahead: the lease. Columns: id, account_id, webhook_id, event_type,
 * finding_id, instance_id, attempts, occurred_at, scan_id, url, auth_type, auth_sealed. */
PGresult *fa_webhook_store_claim(casb_db *db, int batch, long lease_s, char *err,
                                 size_t errlen);

/* The outcome of an attempt: status_code 0 when no response came. retry_in_ms < 0 fails the
 * delivery for good; otherwise it is due again then. ok marks it succeeded. */
typedef struct {
    int ok;
    long status_code;
    const char *error; /* NULL when ok */
    long long retry_in_ms;
} fa_webhook_outcome;
int fa_webhook_store_record(casb_db *db, const char *delivery_id, const fa_webhook_outcome *o,
                            char *err, size_t errlen);

#endif
