#include "casb/crypto.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "casb/error.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_ID_LEN 8
#define ENVELOPE_VERSION "v1"

int casb_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;

        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

void casb_uuid_v4(char out[37])
{
    unsigned char b[16];

    /* Without randomness every id we hand out could collide; there is no sane fallback. */
    if (casb_random_bytes(b, sizeof(b)) != 0)
        abort();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int casb_uuid_valid(const char *s)
{
    if (!s)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[36] == '\0';
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int casb_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void casb_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        abort(); /* SHA-256 of memory cannot fail unless libcrypto is broken */
    hex_encode(md, 32, out);
}

void casb_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n,
                          char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (keylen > INT_MAX ||
        !HMAC(EVP_sha256(), key, (int)keylen, data, n, md, &mdlen) || mdlen != 32)
        abort(); /* as for SHA-256: only a broken libcrypto fails here */
    hex_encode(md, 32, out);
}

int casb_secure_equal(const char *a, const char *b)
{
    size_t na, nb;

    if (!a || !b)
        return 0;
    na = strlen(a);
    nb = strlen(b);
    if (na != nb)
        return 0;
    return CRYPTO_memcmp(a, b, na) == 0;
}

/* ---- base64 ---- */

char *casb_base64_encode(const void *data, size_t n)
{
    size_t outlen;
    char *out;

    if (n > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    outlen = 4 * ((n + 2) / 3);
    out = malloc(outlen + 1);
    if (!out)
        return NULL;
    /* EVP_EncodeBlock writes the padded encoding and a terminating NUL. */
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    out[outlen] = '\0';
    return out;
}

static int is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Decodes standard base64 in s[0..n) (already translated from base64url when needed).
 * Padding is optional, anything outside the alphabet is refused; EVP_DecodeBlock alone
 * would skip whitespace and report padding bytes as data. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *outlen)
{
    size_t pad = 0, data_len, padded_len;
    char *tmp = NULL;
    unsigned char *out = NULL;
    int got;

    while (pad < 2 && n > pad && s[n - pad - 1] == '=')
        pad++;
    data_len = n - pad;
    for (size_t i = 0; i < data_len; i++)
        if (!is_b64_char(s[i]))
            return NULL;
    if (data_len % 4 == 1)
        return NULL;
    if (pad > 0 && (data_len + pad) % 4 != 0)
        return NULL;
    if (data_len > (size_t)INT_MAX - 4)
        return NULL;
    padded_len = (data_len + 3) / 4 * 4;

    tmp = malloc(padded_len + 1);
    out = malloc(padded_len / 4 * 3 + 1);
    if (!tmp || !out)
        goto fail;
    memcpy(tmp, s, data_len);
    memset(tmp + data_len, '=', padded_len - data_len);
    tmp[padded_len] = '\0';
    got = padded_len ? EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded_len) : 0;
    if (got < 0)
        goto fail;
    *outlen = (size_t)got - (padded_len - data_len);
    out[*outlen] = '\0';
    free(tmp);
    return out;
fail:
    free(tmp);
    free(out);
    return NULL;
}

unsigned char *casb_base64_decode(const char *s, size_t *outlen)
{
    if (!s || !outlen)
        return NULL;
    return b64_decode(s, strlen(s), outlen);
}

char *casb_base64url_encode(const void *data, size_t n)
{
    char *out = casb_base64_encode(data, n);
    size_t len;

    if (!out)
        return NULL;
    len = strlen(out);
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

unsigned char *casb_base64url_decode(const char *s, size_t *outlen)
{
    size_t n;
    char *tmp;
    unsigned char *out;

    if (!s || !outlen)
        return NULL;
    n = strlen(s);
    tmp = malloc(n + 1);
    if (!tmp)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        /* '+' and '/' belong to the other alphabet: refuse them rather than guess. */
        if (s[i] == '+' || s[i] == '/') {
            free(tmp);
            return NULL;
        }
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    }
    tmp[n] = '\0';
    out = b64_decode(tmp, n, outlen);
    free(tmp);
    return out;
}

/* ---- keyring and sealed secrets ---- */

typedef struct {
    unsigned char key[KEY_LEN];
    char id[KEY_ID_LEN + 1];
    int present;
} master_key;

struct casb_keyring {
    master_key current;
    master_key previous;
};

/* Accepts 64 hex characters or base64 of exactly 32 bytes, ignoring surrounding
 * whitespace (a trailing newline from a key file is common). */
static int parse_key(master_key *k, const char *text)
{
    const char *start = text;
    size_t n;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    char *copy;
    char idhex[65];

    while (*start && isspace((unsigned char)*start))
        start++;
    n = strlen(start);
    while (n > 0 && isspace((unsigned char)start[n - 1]))
        n--;

    if (n == 2 * KEY_LEN) {
        int ok = 1;

        for (size_t i = 0; i < KEY_LEN; i++) {
            int hi = casb_hex_value(start[2 * i]), lo = casb_hex_value(start[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                ok = 0;
                break;
            }
            k->key[i] = (unsigned char)(hi << 4 | lo);
        }
        if (!ok)
            return -1;
    } else {
        copy = strndup(start, n);
        if (!copy)
            return -1;
        raw = casb_base64_decode(copy, &rawlen);
        casb_secret_wipe(copy, n);
        free(copy);
        if (!raw)
            return -1;
        if (rawlen != KEY_LEN) {
            casb_secret_wipe(raw, rawlen);
            free(raw);
            return -1;
        }
        memcpy(k->key, raw, KEY_LEN);
        casb_secret_wipe(raw, rawlen);
        free(raw);
    }
    casb_sha256_hex(k->key, KEY_LEN, idhex);
    memcpy(k->id, idhex, KEY_ID_LEN);
    k->id[KEY_ID_LEN] = '\0';
    k->present = 1;
    return 0;
}

int casb_keyring_new(casb_keyring **out, const char *current, const char *previous,
                     char *err, size_t errlen)
{
    casb_keyring *kr;

    *out = NULL;
    if (!current || !current[0])
        return casb_fail(err, errlen, CASB_EINVALID, "master key is not set");
    kr = calloc(1, sizeof(*kr));
    if (!kr)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (parse_key(&kr->current, current) != 0) {
        casb_keyring_free(kr);
        return casb_fail(err, errlen, CASB_EINVALID,
                         "master key must be 32 bytes given as 64 hex characters or base64");
    }
    if (previous && previous[0]) {
        if (parse_key(&kr->previous, previous) != 0) {
            casb_keyring_free(kr);
            return casb_fail(err, errlen, CASB_EINVALID,
                             "previous master key must be 32 bytes given as 64 hex characters "
                             "or base64");
        }
        /* The same key given twice is simply the current key. */
        if (strcmp(kr->previous.id, kr->current.id) == 0) {
            casb_secret_wipe(&kr->previous, sizeof(kr->previous));
        }
    }
    *out = kr;
    return 0;
}

void casb_keyring_free(casb_keyring *kr)
{
    if (!kr)
        return;
    casb_secret_wipe(kr, sizeof(*kr));
    free(kr);
}

const char *casb_keyring_current_id(const casb_keyring *kr)
{
    return kr ? kr->current.id : NULL;
}

static const master_key *find_key(const casb_keyring *kr, const char *id)
{
    if (kr->current.present && strcmp(kr->current.id, id) == 0)
        return &kr->current;
    if (kr->previous.present && strcmp(kr->previous.id, id) == 0)
        return &kr->previous;
    return NULL;
}

int casb_secret_seal(const casb_keyring *kr, const void *plain, size_t n, char **out,
                     char *err, size_t errlen)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *blob = NULL;
    char *b64 = NULL;
    char *env = NULL;
    size_t blob_len, env_len;
    int len = 0, rc = CASB_ERROR;

    *out = NULL;
    if (!kr || (!plain && n > 0))
        return casb_fail(err, errlen, CASB_EINVALID, "nothing to seal");
    if (n > (size_t)INT_MAX - NONCE_LEN - TAG_LEN)
        return casb_fail(err, errlen, CASB_EINVALID, "secret too large");
    blob_len = NONCE_LEN + n + TAG_LEN;
    blob = malloc(blob_len);
    if (!blob) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    /* A fresh random 96-bit nonce per message; with one key this stays safe far beyond
     * the number of secrets we will ever seal. */
    if (casb_random_bytes(blob, NONCE_LEN) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "no randomness for the nonce");
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, kr->current.key, blob) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)kr->current.id,
                          KEY_ID_LEN) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "cipher setup failed");
        goto out;
    }
    if (n > 0 && EVP_EncryptUpdate(ctx, blob + NONCE_LEN, &len, plain, (int)n) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "encryption failed");
        goto out;
    }
    if (EVP_EncryptFinal_ex(ctx, blob + NONCE_LEN + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, blob + NONCE_LEN + n) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "encryption failed");
        goto out;
    }
    b64 = casb_base64url_encode(blob, blob_len);
    if (!b64) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    env_len = strlen(ENVELOPE_VERSION) + 1 + KEY_ID_LEN + 1 + strlen(b64) + 1;
    env = malloc(env_len);
    if (!env) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    snprintf(env, env_len, "%s.%s.%s", ENVELOPE_VERSION, kr->current.id, b64);
    *out = env;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    free(blob);
    free(b64);
    return rc;
}

/* Splits "v1.<id>.<payload>": copies the id and points *payload at the rest. */
static int split_envelope(const char *sealed, char id[KEY_ID_LEN + 1], const char **payload)
{
    const char *p;

    if (!sealed || strncmp(sealed, ENVELOPE_VERSION ".", 3) != 0)
        return -1;
    p = sealed + 3;
    for (int i = 0; i < KEY_ID_LEN; i++) {
        if (casb_hex_value(p[i]) < 0)
            return -1;
        id[i] = p[i];
    }
    id[KEY_ID_LEN] = '\0';
    if (p[KEY_ID_LEN] != '.')
        return -1;
    if (payload)
        *payload = p + KEY_ID_LEN + 1;
    return 0;
}

int casb_secret_key_id(const char *sealed, char *out, size_t outlen)
{
    char id[KEY_ID_LEN + 1];

    if (!out || outlen < KEY_ID_LEN + 1 || split_envelope(sealed, id, NULL) != 0)
        return -1;
    memcpy(out, id, KEY_ID_LEN + 1);
    return 0;
}

int casb_secret_open(const casb_keyring *kr, const char *sealed, char **plain, size_t *n,
                     char *err, size_t errlen)
{
    EVP_CIPHER_CTX *ctx = NULL;
    const master_key *key;
    const char *payload = NULL;
    char id[KEY_ID_LEN + 1];
    unsigned char *blob = NULL;
    char *pt = NULL;
    size_t blob_len = 0, ct_len;
    int len = 0, rc = CASB_ERROR;

    *plain = NULL;
    *n = 0;
    if (!kr || split_envelope(sealed, id, &payload) != 0)
        return casb_fail(err, errlen, CASB_EINVALID, "not a v1 sealed secret");
    key = find_key(kr, id);
    if (!key)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "sealed with unknown key id %s (current key id %s)", id,
                         kr->current.id);
    blob = casb_base64url_decode(payload, &blob_len);
    if (!blob || blob_len < NONCE_LEN + TAG_LEN) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "sealed secret is malformed");
        goto out;
    }
    ct_len = blob_len - NONCE_LEN - TAG_LEN;
    pt = malloc(ct_len + 1);
    if (!pt) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->key, blob) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)id, KEY_ID_LEN) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "cipher setup failed");
        goto out;
    }
    if (ct_len > 0 &&
        EVP_DecryptUpdate(ctx, (unsigned char *)pt, &len, blob + NONCE_LEN, (int)ct_len) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "decryption failed");
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                            blob + NONCE_LEN + ct_len) != 1 ||
        EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + ct_len, &len) != 1) {
        /* Wrong key material or altered bytes: nothing of the plaintext is released. */
        rc = casb_fail(err, errlen, CASB_EAUTH, "sealed secret failed authentication");
        goto out;
    }
    pt[ct_len] = '\0';
    *plain = pt;
    *n = ct_len;
    pt = NULL;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (pt) {
        casb_secret_wipe(pt, ct_len);
        free(pt);
    }
    free(blob);
    return rc;
}

void casb_secret_wipe(void *p, size_t n)
{
    if (p && n > 0)
        OPENSSL_cleanse(p, n);
}
