#ifndef CASB_INTEGRATION_H
#define CASB_INTEGRATION_H

#include <jansson.h>
#include <stddef.h>

#include "casb/db.h"

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

#endif
