#include "casb/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "casb/crypto.h"
#include "casb/error.h"

#define MIN_ADMIN_TOKEN_LEN 16
#define MAX_TOKEN_LEN 4096

/* Only the digest of the token is kept, so a memory dump does not reveal it, and comparing
 * fixed-size digests in constant time leaks neither content nor length. */
struct casb_auth {
    unsigned char admin_digest[32];
};

static int digest(const char *token, size_t n, unsigned char out[32])
{
    unsigned int len = 0;

    if (EVP_Digest(token, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -1;
    return 0;
}

int casb_auth_new(casb_auth **out, const char *admin_token, char *err, size_t errlen)
{
    casb_auth *a;
    size_t n;

    *out = NULL;
    if (!admin_token)
        return casb_fail(err, errlen, CASB_EINVALID, "admin token is not set");
    n = strlen(admin_token);
    if (n < MIN_ADMIN_TOKEN_LEN)
        return casb_fail(err, errlen, CASB_EINVALID, "admin token must be at least %d characters",
                         MIN_ADMIN_TOKEN_LEN);
    if (n > MAX_TOKEN_LEN)
        return casb_fail(err, errlen, CASB_EINVALID, "admin token is longer than %d characters",
                         MAX_TOKEN_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)admin_token[i];

        /* It travels in an HTTP header: visible ASCII only. */
        if (c <= 0x20 || c >= 0x7f)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "admin token must be printable ASCII without spaces");
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (digest(admin_token, n, a->admin_digest) != 0) {
        free(a);
        return casb_fail(err, errlen, CASB_ERROR, "SHA-256 failed");
    }
    *out = a;
    return 0;
}

void casb_auth_free(casb_auth *a)
{
    if (!a)
        return;
    casb_secret_wipe(a, sizeof(*a));
    free(a);
}

int casb_auth_check(const casb_auth *a, const char *authorization_header, casb_principal *who)
{
    const char *token;
    size_t n;
    unsigned char presented[32];

    if (!a || !authorization_header || !who)
        return CASB_EAUTH;
    /* The scheme is case-insensitive (RFC 7235); one or more spaces separate it. */
    if (strncasecmp(authorization_header, "Bearer ", 7) != 0)
        return CASB_EAUTH;
    token = authorization_header + 7;
    while (*token == ' ')
        token++;
    n = strlen(token);
    while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\t'))
        n--;
    if (n == 0 || n > MAX_TOKEN_LEN)
        return CASB_EAUTH;
    if (digest(token, n, presented) != 0)
        return CASB_EAUTH;
    if (CRYPTO_memcmp(presented, a->admin_digest, sizeof(presented)) != 0)
        return CASB_EAUTH;

    memset(who, 0, sizeof(*who));
    snprintf(who->account_id, sizeof(who->account_id), "%s", CASB_DEFAULT_ACCOUNT_ID);
    snprintf(who->token_name, sizeof(who->token_name), "%s", "bootstrap");
    who->role = CASB_ROLE_ADMIN;
    return 0;
}
