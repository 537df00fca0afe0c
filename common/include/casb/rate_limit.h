#ifndef CASB_RATE_LIMIT_H
#define CASB_RATE_LIMIT_H

#include <stdint.h>

/* Token buckets by key (an API token's id): each key may spend `burst` requests at once and
 * regains `per_second` of them every second. Thread-safe. The keys are the account's tokens,
 * a set the database bounds, so buckets are kept, not evicted. */
typedef struct casb_rate_limiter casb_rate_limiter;

/* per_second > 0, burst >= 1. Returns NULL when out of memory. */
casb_rate_limiter *casb_rate_limiter_new(double per_second, int burst);
void casb_rate_limiter_free(casb_rate_limiter *rl);

/* Spends one request of key at now_ms (a monotonic clock). Returns 1 when allowed; 0 when
 * the bucket is empty, with *retry_after_s set to the whole seconds until one is back. */
int casb_rate_limiter_take(casb_rate_limiter *rl, const char *key, int64_t now_ms,
                           int *retry_after_s);

#endif
