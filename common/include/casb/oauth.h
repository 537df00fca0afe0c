#ifndef CASB_OAUTH_H
#define CASB_OAUTH_H

#include <jansson.h>
#include <stddef.h>

#include "casb/http_client.h"

/* The OAuth 2.0 authorization-code grant (RFC 6749 §4.1) with PKCE (RFC 7636, method S256)
 * and the refresh grant (§6), as the providers that install by consent speak them. The
 * client authenticates in the form body (client_secret_post), which GitHub, Slack and the
 * Microsoft identity platform all accept. Quirks handled here, not by callers: GitHub
 * answers form-encoded unless asked for JSON (we send Accept: application/json), and it
 * reports a refused grant with 200 and {"error": ...} instead of 400.
 *
 * Tokens, secrets and verifiers never reach a log line; the functions that hold them wipe
 * them when freed. */

/* One OAuth client registration at a provider. All borrowed. */
typedef struct {
    const char *token_url;     /* "https://github.com/login/oauth/access_token" */
    const char *client_id;
    const char *client_secret;
} casb_oauth_client;

/* What a token endpoint granted. Strings are malloc'ed (wiped by casb_oauth_tokens_clear). */
typedef struct {
    char *access_token;
    char *refresh_token;          /* NULL: the provider issued none (tokens that never expire) */
    long long expires_at;         /* epoch seconds; 0: the access token does not expire */
    long long refresh_expires_at; /* epoch seconds; 0: not said */
    char *scope;                  /* as granted; NULL when not said */
} casb_oauth_tokens;

/* Length of the random values below: 32 random bytes in base64url without padding. */
#define CASB_OAUTH_RANDOM_LEN 43

/* A fresh unguessable value for a state or a PKCE code verifier: 32 bytes from the CSPRNG,
 * base64url (43 characters, NUL-terminated). Returns 0, or -1 when no randomness is had. */
int casb_oauth_random(char out[CASB_OAUTH_RANDOM_LEN + 1]);

/* The PKCE S256 challenge of verifier: BASE64URL(SHA256(verifier)), 43 characters. */
void casb_oauth_pkce_challenge(const char *verifier, char out[CASB_OAUTH_RANDOM_LEN + 1]);

/* The URL the user's browser is sent to: authorize_url with response_type=code, client_id,
 * redirect_uri, state, scope (omitted when NULL or empty; GitHub Apps take their
 * permissions from the App), and code_challenge with code_challenge_method=S256 (omitted
 * when code_challenge is NULL). extra is appended as is when not NULL ("user_scope=...",
 * already encoded). Every value is percent-encoded. malloc'ed; NULL when out of memory. */
char *casb_oauth_authorize_url(const char *authorize_url, const char *client_id,
                               const char *redirect_uri, const char *state, const char *scope,
                               const char *code_challenge, const char *extra);

/* grant_type=authorization_code with code, redirect_uri and code_verifier (omitted when
 * NULL). now_s turns expires_in into expires_at. Returns 0 with *out filled,
 * CASB_EAUTH when the provider refused the grant (err: "<error>: <error_description>",
 * e.g. "bad_verification_code: The code passed is incorrect or expired."),
 * CASB_EUNAVAILABLE when it could not be reached or answered 5xx, or CASB_ERROR for an
 * answer that is not a token response. */
int casb_oauth_exchange_code(casb_http_client *http, const casb_oauth_client *client,
                             const char *code, const char *redirect_uri,
                             const char *code_verifier, long long now_s, casb_oauth_tokens *out,
                             char *err, size_t errlen);

/* grant_type=refresh_token. Same returns. When the answer carries no new refresh token the
 * old one stays valid and is copied into *out (RFC 6749 §6 lets the server keep it). */
int casb_oauth_refresh(casb_http_client *http, const casb_oauth_client *client,
                       const char *refresh_token, long long now_s, casb_oauth_tokens *out,
                       char *err, size_t errlen);

/* Wipes and frees the strings; safe on a zeroed struct. */
void casb_oauth_tokens_clear(casb_oauth_tokens *t);

/* The stored form of an OAuth integration's credentials, a JSON object:
 *   {"oauth": true, "access_token": "...", "refresh_token": "...",
 *    "expires_at": "RFC 3339", "refresh_token_expires_at": "RFC 3339", "scope": "..."}
 * Members that are not known are left out. "oauth": true tells providers these came from
 * the consent flow. New reference; NULL when out of memory. */
json_t *casb_oauth_credentials(const casb_oauth_tokens *t);

/* 1 when credentials are the stored form above. */
int casb_oauth_is_credentials(const json_t *credentials);

/* Epoch seconds of credentials' expires_at; 0 when absent (never expires) or unreadable. */
long long casb_oauth_expires_at(const json_t *credentials);

#endif
