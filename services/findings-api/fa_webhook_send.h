#ifndef FA_WEBHOOK_SEND_H
#define FA_WEBHOOK_SEND_H

#include <libpq-fe.h>
#include <stddef.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/netguard.h"
#include "fa_catalogue.h"

/* One attempt of one delivery: the body, the headers (auth, signature, idempotency key) and
 * the POST, through the egress guard. Used by the senders (fa_webhook_sender) and by the
 * test-delivery route alike. */

typedef struct {
    const casb_keyring *keys;    /* opens the webhooks' sealed secrets */
    const casb_netguard *guard;  /* where deliveries may go */
    const fa_catalogue *catalogue;
    long timeout_ms;             /* one attempt */
} fa_webhook_env;

/* A client for deliveries: no retries of its own (the queue retries), no redirects, small
 * answers. */
int fa_webhook_client_new(casb_http_client **out, const fa_webhook_env *env, char *err,
                          size_t errlen);

typedef struct {
    const char *delivery_id; /* the idempotency key */
    const char *event_type;
    const char *url;
    const char *auth_type;
    const char *auth_sealed; /* NULL for none */
} fa_webhook_target;

typedef struct {
    int ok;            /* a 2xx answer */
    long status_code;  /* 0 when no answer came */
    long retry_after_s;/* the answer's Retry-After, -1 without */
    char error[256];   /* why it failed, for the delivery's last_error; never a secret */
} fa_webhook_result;

/* POSTs body to the target. Returns 0 with *out filled whatever the outcome. */
void fa_webhook_send(const fa_webhook_env *env, casb_http_client *http,
                     const fa_webhook_target *t, const char *body, fa_webhook_result *out);

/* The body of an instance event: {"id", "event_type", "occurred_at", "account_id",
 * "scan_id", "finding": the finding as the API shows it (with the finding type's
 * description and remediation), "instance": the instance as the API shows it}, from the
 * row `row` of fa_webhook_store_claim. NULL with err when the finding or instance is gone
 * (deleted with its integration). malloc'ed. */
char *fa_webhook_event_body(casb_db *db, const fa_catalogue *cat, const PGresult *claim,
                            int row, char *err, size_t errlen);

/* The body of a test delivery: {"id", "event_type": "webhook.test", "occurred_at",
 * "account_id", "webhook": {"id", "name"}}. malloc'ed. */
char *fa_webhook_test_body(const char *delivery_id, const char *account_id,
                           const char *webhook_id, const char *webhook_name);

#endif
