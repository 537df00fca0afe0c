#ifndef CASB_CRYPTO_H
#define CASB_CRYPTO_H

#include <stddef.h>

/* Cryptography on OpenSSL's libcrypto: randomness, ids, hashes, encodings, and the
 * keyring that seals secrets at rest with AES-256-GCM. */

int casb_random_bytes(void *buf, size_t n); /* 0 or -1 */
void casb_uuid_v4(char out[37]);            /* lower-case, NUL-terminated */
int casb_uuid_valid(const char *s);         /* 1 when s is a canonical 36-char UUID */

void casb_sha256_hex(const void *data, size_t n, char out[65]);
/* HMAC-SHA256 of data keyed with key, as 64 lower-case hex characters (webhook signatures). */
void casb_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n,
                          char out[65]);
int casb_hex_value(char c); /* the value of a hex digit (either case), or -1 */
/* Constant-time comparison of two NUL-terminated strings (length leaks, content does not). */
int casb_secure_equal(const char *a, const char *b);

/* Encodings. Results are malloc'ed and NUL-terminated; decode sets *outlen. NULL on error. */
char *casb_base64_encode(const void *data, size_t n);
unsigned char *casb_base64_decode(const char *s, size_t *outlen);
char *casb_base64url_encode(const void *data, size_t n); /* no padding */
unsigned char *casb_base64url_decode(const char *s, size_t *outlen);

/* A keyring holds the current master key and optionally the previous one, each with a short
 * id derived from the key (first 8 hex chars of SHA-256 of the key). Sealing always uses the
 * current key; opening picks the key by the id stored in the envelope, so CASB_MASTER_KEY can
 * be rotated while old ciphertexts stay readable. */
typedef struct casb_keyring casb_keyring;

/* Keys are 32 bytes given as 64 hex chars or as base64 (44 chars). previous may be NULL. */
int casb_keyring_new(casb_keyring **out, const char *current, const char *previous,
                     char *err, size_t errlen);
void casb_keyring_free(casb_keyring *kr);
const char *casb_keyring_current_id(const casb_keyring *kr);

/* Envelope: "v1.<key id>.<base64url(12-byte nonce | ciphertext | 16-byte tag)>". The key id
 * is bound as additional authenticated data. *out is malloc'ed (caller frees). */
int casb_secret_seal(const casb_keyring *kr, const void *plain, size_t n, char **out,
                     char *err, size_t errlen);
/* *plain is malloc'ed, NUL-terminated for convenience, *n excludes the NUL; callers should
 * wipe it with casb_secret_wipe before free. Fails on unknown key id or tampering. */
int casb_secret_open(const casb_keyring *kr, const char *sealed, char **plain, size_t *n,
                     char *err, size_t errlen);
/* The key id recorded in an envelope, copied into out (>= 9 bytes). 0 or -1. */
int casb_secret_key_id(const char *sealed, char *out, size_t outlen);
void casb_secret_wipe(void *p, size_t n);

#endif
