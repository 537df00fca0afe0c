/* The Google service-account key a user pastes into an integration's credentials
 * (casb_google_key_parse): the JSON file as an object or as a string holding it, with its
 * PEM private key. The first input byte says which form the rest takes. Invariants: a
 * refusal names the member of credentials.service_account_key; an accepted key has every
 * required member, an RSA private key in PEM, and the clear wipes it. */
#include <string.h>

#include "casb/json.h"
#include "fuzz_common.h"
#include "google_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char field[128] = "", err[256] = "";
    casb_google_key key;
    json_t *credentials, *inner = NULL;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        /* The key file pasted as a string: the provider parses it itself. */
        inner = json_stringn_nocheck((const char *)data + 1, size - 1);
    } else {
        inner = casb_json_parse((const char *)data + 1, size - 1, 0, NULL, 0);
    }
    if (!inner)
        return 0;
    credentials = json_pack("{s:o}", "service_account_key", inner);
    FUZZ_CHECK(credentials != NULL);
    memset(&key, 0, sizeof(key));
    if (casb_google_key_parse(&key, credentials, field, sizeof(field), err, sizeof(err)) == 0) {
        FUZZ_CHECK(key.client_email && key.client_email[0]);
        FUZZ_CHECK(key.private_key_pem && strstr(key.private_key_pem, "PRIVATE KEY"));
        FUZZ_CHECK(key.token_uri && key.token_uri[0]);
    } else {
        FUZZ_CHECK(field[0] && err[0]);
        FUZZ_CHECK(strncmp(field, "credentials.service_account_key", 31) == 0);
    }
    casb_google_key_clear(&key);
    FUZZ_CHECK(!key.private_key_pem);
    json_decref(credentials);
    return 0;
}
