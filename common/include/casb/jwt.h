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

/* A private key parsed once for many signatures: parsing a PEM and setting up RSA blinding
 * cost more than the signature itself, so a signer that signs per request (one Google
 * assertion per impersonated user) keeps one. Signing with it from several threads at
 * once is safe (OpenSSL's EVP_PKEY is not modified by signing). */
typedef struct casb_jwt_key casb_jwt_key;

/* Loads a PEM RSA private key (PKCS#1 or PKCS#8, at least 2048 bits) into *out (free with
 * casb_jwt_key_free, which clears it). Returns 0, or CASB_EINVALID with err. */
int casb_jwt_key_load(casb_jwt_key **out, const char *private_key_pem, char *err,
                      size_t errlen);
void casb_jwt_key_free(casb_jwt_key *k);
/* casb_jwt_sign_rs256_kid with a loaded key (borrowed). */
int casb_jwt_sign_rs256_key(char **out, const json_t *claims, const char *kid,
                            const casb_jwt_key *key, char *err, size_t errlen);

/* Verifies signature and alg with a PEM public key and checks exp/iat against now with
 * leeway_s. On success *claims is a new reference. */
int casb_jwt_verify_rs256(json_t **claims, const char *token, const char *public_key_pem,
                          long leeway_s, char *err, size_t errlen);

#endif
