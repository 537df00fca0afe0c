#ifndef CASB_INTEGRATION_H
#define CASB_INTEGRATION_H

#include <jansson.h>
#include <stddef.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/http_client.h"
#include "casb/oauth.h"

/* The stored form of one integration, as every service that acts on it reads it:
 * integration-manager (checking a change against what is stored) and scanner-worker (a scan).
 * Credentials stay sealed here; opening them is the caller's, with its keyring. */
typedef struct {
    char provider[64];
    int paused;
    json_t *config;           /* a JSON object, owned */
    char *credentials_sealed; /* the envelope (crypto.h), malloc'ed */
} casb_integration_stored;

/* Loads integration id of account_id. Returns 0 (free with casb_integration_stored_clear),
 * CASB_ENOTFOUND (absent, deleted, or another account's), CASB_EINVALID (the row is damaged:
 * config not a JSON object; retrying will not help), or -1 (database) with err set. */
int casb_integration_load(casb_integration_stored *out, casb_db *db, const char *account_id,
                          const char *id, char *err, size_t errlen);
void casb_integration_stored_clear(casb_integration_stored *s); /* safe on a zeroed struct */

/* Opens a sealed credentials envelope into a JSON object (*out, new reference; wipe it with
 * casb_integration_credentials_free). The plaintext is wiped at once. Returns 0, or -1 with
 * err (a key given in neither CASB_MASTER_KEY variable, a damaged envelope). */
int casb_integration_credentials_open(const casb_keyring *keys, const char *sealed, json_t **out,
                                      char *err, size_t errlen);
/* Overwrites every string of an opened credentials object, then releases it. NULL-safe. */
void casb_integration_credentials_free(json_t *credentials);

/* Renews the OAuth credentials (oauth.h) of integration id with their refresh token and
 * stores the new ones sealed under the current key, holding the row's lock meanwhile, so that
 * two processes never spend the same refresh token (providers that rotate refresh tokens
 * refuse the second). credentials is the caller's opened object; it is updated in place.
 * When the stored credentials changed since the caller opened them (renewed by another
 * process, or reauthorized) and stay valid for a minute more, those are taken and nothing is
 * sent: renewing again would spend a refresh token for nothing and, with providers that
 * revoke the previous access token on refresh (GitHub), break the other process's calls. Returns 0, CASB_ENOTFOUND (the integration is gone), CASB_EAUTH (no
 * refresh token, or the provider refused it: the integration needs reauthorization),
 * CASB_EUNAVAILABLE (the provider could not be reached), or -1 with err. */
int casb_integration_renew_oauth(casb_db *db, const casb_keyring *keys, casb_http_client *http,
                                 const casb_oauth_client *client, const char *id,
                                 json_t *credentials, char *err, size_t errlen);

#endif
