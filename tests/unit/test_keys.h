/* RSA keys in PEM for the tests that sign or verify JWTs (GitHub App, Google service
 * account, the simulator). Header-only, included after cmocka.h. */
#ifndef CASB_TEST_KEYS_H
#define CASB_TEST_KEYS_H

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <string.h>

/* key as PEM: selection OSSL_KEYMGMT_SELECT_KEYPAIR with structure "PrivateKeyInfo"
 * (PKCS#8) or "type-specific" (PKCS#1), or OSSL_KEYMGMT_SELECT_PUBLIC_KEY with
 * "SubjectPublicKeyInfo". malloc'ed; NULL on failure. */
static char *pem_of(EVP_PKEY *key, int selection, const char *structure)
{
    OSSL_ENCODER_CTX *ectx;
    unsigned char *data = NULL;
    size_t len = 0;
    char *out = NULL;

    ectx = OSSL_ENCODER_CTX_new_for_pkey(key, selection, "PEM", structure, NULL);
    if (ectx && OSSL_ENCODER_to_data(ectx, &data, &len) == 1) {
        out = strndup((const char *)data, len);
        OPENSSL_free(data);
    }
    OSSL_ENCODER_CTX_free(ectx);
    return out;
}

static char *private_pem_of(EVP_PKEY *key)
{
    return pem_of(key, OSSL_KEYMGMT_SELECT_KEYPAIR, "PrivateKeyInfo");
}

static char *public_pem_of(EVP_PKEY *key)
{
    return pem_of(key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY, "SubjectPublicKeyInfo");
}

#endif
