#ifndef FA_WEBHOOK_SENDER_H
#define FA_WEBHOOK_SENDER_H

#include <stddef.h>

#include "fa_webhook_send.h"

/* The delivery threads: each claims due deliveries from webhook_deliveries (shared with the
 * senders of every replica through SKIP LOCKED), sends them one at a time and records the
 * outcome: succeeded, due again after a backoff, or failed after max_attempts. A delivery
 * whose sender dies mid-attempt is due again when its lease ends: at-least-once, with the
 * delivery id as the receiver's idempotency key. */

typedef struct fa_webhook_sender fa_webhook_sender;

typedef struct {
    const char *database_url;
    fa_webhook_env env;       /* borrowed members; must outlive the sender */
    int threads;
    long max_attempts;
    long retry_base_ms;
    long retry_max_s;
} fa_webhook_sender_opts;

int fa_webhook_sender_start(fa_webhook_sender **out, const fa_webhook_sender_opts *o,
                            char *err, size_t errlen);
/* Stops taking deliveries, lets each thread finish its attempt in progress, frees. An
 * attempt cut short is retried by whoever claims it after its lease. NULL-safe. */
void fa_webhook_sender_stop(fa_webhook_sender *s);

/* The wait before the next attempt of a delivery that failed its attempts-th attempt:
 * base_ms doubled per earlier attempt, times jitter (0.8..1.2, drawn by the caller), at
 * least the destination's Retry-After (retry_after_s >= 0), never more than max_s. */
long long fa_webhook_retry_delay_ms(long attempts, long base_ms, long max_s,
                                    long retry_after_s, double jitter);

/* The metrics the senders and the test route count (registered once). */
void fa_webhook_metrics_init(void);
void fa_webhook_metrics_count(const char *outcome); /* succeeded | retried | failed */

#endif
