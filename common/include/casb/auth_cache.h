#ifndef CASB_AUTH_CACHE_H
#define CASB_AUTH_CACHE_H

#include <stddef.h>

#include "casb/auth.h"

/* Tokens that authenticated recently, remembered so that a request does not spend a
 * database round trip on its token (one of a list request's two statements). casb_auth uses
 * one when casb_auth_cache_tokens was called; this header is its interface.
 *
 * It is correct only while it hears of every change. Migration 0015's trigger notifies
 * channel casb_api_tokens whenever a token row changes (its last use aside) or goes, and
 * the cache listens on a connection of its own and forgets everything when notified. A
 * revocation thus reaches every replica in the time PostgreSQL takes to deliver a
 * notification: milliseconds. Without that connection (before it is made, once it breaks,
 * until it is made again) nothing is remembered and every check asks the database.
 *
 * An entry is also forgotten CASB_AUTH_CACHE_TTL_S after it was stored (so a token's last
 * use is still recorded about once a minute), when its token expires, and when its set is
 * full (the oldest of the set). */

#define CASB_AUTH_CACHE_TTL_S 60

typedef struct casb_auth_cache casb_auth_cache;

/* Starts the listener (its thread connects in the background, and again after a failure). */
int casb_auth_cache_new(casb_auth_cache **out, const char *database_url, char *err,
                        size_t errlen);
void casb_auth_cache_free(casb_auth_cache *c); /* NULL-safe */

/* 1 with *who when the token of digest (hex SHA-256) is remembered and valid now, else 0. */
int casb_auth_cache_get(casb_auth_cache *c, const char *digest, casb_principal *who);

/* Taken before asking the database: put stores the answer only if nothing was notified (and
 * the listener stayed connected) since, so that a row read before a revocation is never
 * remembered after it. 0: the cache is not listening, nothing will be stored. */
unsigned long long casb_auth_cache_ticket(casb_auth_cache *c);
/* expires_at: the token's expiry in seconds since 1970, rounded down; 0 for none. */
void casb_auth_cache_put(casb_auth_cache *c, unsigned long long ticket, const char *digest,
                         const casb_principal *who, long long expires_at);

/* Forgets everything now: a change this process made need not wait for its notification. */
void casb_auth_cache_clear(casb_auth_cache *c);

/* 1 while the listener is connected and listening (tests, readiness of the cache). */
int casb_auth_cache_listening(casb_auth_cache *c);

#endif
