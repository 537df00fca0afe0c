#ifndef CASB_JWT_H
#define CASB_JWT_H

#include <jansson.h>
#include <stddef.h>

/* RS256 JSON Web Tokens: signing for provider auth (GitHub App, Google service accounts),
 * verification for the SaaS simulator. */

/* Signs claims (borrowed) with a PEM RSA private key (PKCS#1 or PKCS#8). *out is malloc'ed. */
int casb_jwt_sign_rs256(char **out, const json_t *claims, const char *private_key_pem,
                        char *err, size_t errlen);
/* The same with a "kid" in the header (NULL: none), naming the key that signed. */
int casb_jwt_sign_rs256_kid(char **out, const json_t *claims, const char *kid,
                            const char *private_key_pem, char *err, size_t errlen);

/* Verifies signature and alg with a PEM public key and checks exp/iat against now with
 * leeway_s. On success *claims is a new reference. */
int casb_jwt_verify_rs256(json_t **claims, const char *token, const char *public_key_pem,
                          long leeway_s, char *err, size_t errlen);

#endif
