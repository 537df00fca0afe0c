#ifndef IM_OAUTH_H
#define IM_OAUTH_H

#include <jansson.h>
#include <stddef.h>

#include "casb/db.h"

/* The consent flows in progress (table oauth_states): one is saved when a user starts
 * installing (or reauthorizing) an integration by consent, and taken, once, when the
 * provider sends the user's browser back to the callback. The state itself is never stored,
 * only its SHA-256; the PKCE verifier is sealed. */

typedef struct {
    const char *state_sha256;    /* hex of SHA-256 of the state sent to the provider */
    const char *account_id;
    const char *actor;           /* the starting token's name: the audit log's "who" */
    const char *provider;
    const char *integration_id;  /* reauthorization of this integration; NULL: create one */
    const char *request_json;    /* {"name","config","scan_interval_s"}, no secrets */
    const char *redirect_uri;
    const char *verifier_sealed; /* NULL without PKCE */
    long ttl_s;
} im_oauth_flow_new;

/* Saves a flow that expires in ttl_s, and deletes flows that expired more than a day ago
 * (kept that long so a late callback is told "expired", not "unknown"). expires_at receives
 * the expiry in RFC 3339. CASB_ENOTFOUND when integration_id names no integration of the
 * account (deleted meanwhile); -1 with err on a database failure. */
int im_oauth_flow_save(casb_db *db, const im_oauth_flow_new *f, char expires_at[32], char *err,
                       size_t errlen);

/* A flow taken by its callback. */
typedef struct {
    char account_id[37];
    char actor[64];
    char provider[64];
    char integration_id[37]; /* "" when the flow creates an integration */
    json_t *request;         /* owned */
    char *redirect_uri;      /* malloc'ed */
    char *verifier_sealed;   /* malloc'ed; NULL without PKCE */
} im_oauth_flow;

/* Takes the flow whose state hashes to state_sha256, for provider, and marks it used in the
 * same transaction, so that a state works once even when what follows fails. Returns 0,
 * CASB_ENOTFOUND (no such state for this provider), CASB_ECONFLICT (used already),
 * CASB_EINVALID (expired), or -1 with err. */
int im_oauth_flow_take(casb_db *db, const char *state_sha256, const char *provider,
                       im_oauth_flow *out, char *err, size_t errlen);
void im_oauth_flow_clear(im_oauth_flow *f); /* safe on a zeroed struct */

#endif
