#ifndef CASB_AUTH_H
#define CASB_AUTH_H

#include <stddef.h>

#include "casb/db.h"

/* Bearer-token authentication of API callers. Every caller is one of an account's API tokens
 * (table api_tokens), stored as its SHA-256 only and compared in constant time. Tokens are
 * issued by an admin through POST /v1/tokens, or by the operator's `integration-manager
 * create-account | create-token`; the configured bootstrap token (CASB_ADMIN_TOKEN) is
 * written into the default account at its first start only (casb_auth_seed_bootstrap), and
 * is from then on an ordinary, revocable admin token. */

#define CASB_DEFAULT_ACCOUNT_ID "00000000-0000-0000-0000-000000000001"

/* Issued tokens: "casb_" and 32 random bytes in base64url, 48 characters. The prefix lets
 * secret scanners recognise a leaked one. */
#define CASB_TOKEN_PREFIX "casb_"
#define CASB_TOKEN_SIZE 49 /* with the NUL */
#define CASB_TOKEN_NAME_MAX 100 /* characters; up to 4 bytes each in UTF-8 */

typedef enum { CASB_ROLE_READ_ONLY = 0, CASB_ROLE_ANALYST = 1, CASB_ROLE_ADMIN = 2 } casb_role;

typedef struct {
    char account_id[37];
    char token_id[37]; /* "bootstrap" when checked without a database */
    char token_name[4 * CASB_TOKEN_NAME_MAX + 1];
    casb_role role;
} casb_principal;

/* "admin", "analyst", "read_only"; and back (returns 0, or -1 for an unknown name). */
const char *casb_role_name(casb_role role);
int casb_role_parse(const char *name, casb_role *out);

typedef struct casb_auth casb_auth;

/* bootstrap_token may be NULL (then casb_auth_connect must follow). Until casb_auth_connect,
 * the bootstrap token is the only token, an admin of the default account: tools and tests
 * without a database use it so. CASB_EINVALID for a malformed token (message in err). */
int casb_auth_new(casb_auth **out, const char *bootstrap_token, char *err, size_t errlen);
void casb_auth_free(casb_auth *a);

/* Switches a to the tokens of api_tokens (pool is borrowed) and writes the bootstrap token
 * into the default account unless it already had one, even revoked: configuration seeds the
 * first start only. A configured token that differs from the stored one is ignored, with a
 * warning in the log. */
int casb_auth_connect(casb_auth *a, casb_db_pool *pool, char *err, size_t errlen);

/* Remembers the tokens that authenticate, so that checking one again costs no database
 * round trip, with what makes that safe: a revocation, expiry or any other change of a
 * token is heard of from PostgreSQL (LISTEN) and makes the cache forget everything, on every
 * replica, within milliseconds; an entry lives 60 s at most (casb/auth_cache.h). Call after
 * casb_auth_connect; the listener connects in the background. */
int casb_auth_cache_tokens(casb_auth *a, const char *database_url, char *err, size_t errlen);
/* After this process changed a token (revoked it): forget now, not at the notification. */
void casb_auth_forget_tokens(const casb_auth *a);
/* 1 while the cache hears of token changes, and so remembers tokens. */
int casb_auth_caching(const casb_auth *a);

/* Authenticates an Authorization header value ("Bearer <token>"). Returns 0 and fills *who;
 * CASB_EAUTH for a missing, malformed, unknown, expired or revoked token; CASB_EUNAVAILABLE
 * when the database cannot be asked. Records the token's last use (at most once a minute). */
int casb_auth_check(const casb_auth *a, const char *authorization_header, casb_principal *who);
/* casb_auth_check that, when it returns 0 after asking the database, leaves the pooled
 * connection it used in *keep instead of releasing it (NULL otherwise): the request's
 * handler then runs on it without queueing for the pool a second time. Give it back with
 * casb_auth_release (or to the pool casb_auth_connect was given). */
int casb_auth_check_keep(const casb_auth *a, const char *authorization_header,
                         casb_principal *who, casb_db **keep);
void casb_auth_release(const casb_auth *a, casb_db *db); /* NULL-safe */

/* A token to issue. expires_at is RFC 3339 or NULL (never expires). */
typedef struct {
    const char *account_id;
    const char *name;
    casb_role role;
    const char *expires_at;
    const char *created_by;
} casb_token_spec;

/* Issues a new token: stores its digest and returns the secret (once: it is nowhere else)
 * in token, its id in id. CASB_EINVALID for a bad spec (message in err). */
int casb_auth_issue(casb_db *db, const casb_token_spec *spec, char token[CASB_TOKEN_SIZE],
                    char id[37], char *err, size_t errlen);

#endif
