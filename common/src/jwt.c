#include "casb/jwt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"

#define JWT_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define MIN_RSA_BITS 2048
#define MAX_TOKEN_LEN (64 * 1024)

/* Refuses to prompt: an encrypted PEM without a passphrase must fail, not read the TTY. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int check_rsa(EVP_PKEY *pkey, char *err, size_t errlen)
{
    if (!EVP_PKEY_is_a(pkey, "RSA"))
        return casb_fail(err, errlen, CASB_EINVALID, "key is not an RSA key");
    if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
        return casb_fail(err, errlen, CASB_EINVALID, "RSA key shorter than %d bits",
                         MIN_RSA_BITS);
    return 0;
}

/* PEM_read_bio_PrivateKey reads both "RSA PRIVATE KEY" (PKCS#1) and "PRIVATE KEY" (PKCS#8). */
static EVP_PKEY *load_private_key(const char *pem, char *err, size_t errlen)
{
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    if (!pem || !pem[0]) {
        casb_fail(err, errlen, CASB_EINVALID, "no private key");
        return NULL;
    }
    bio = BIO_new_mem_buf(pem, -1);
    if (bio)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        casb_fail(err, errlen, CASB_EINVALID, "private key is not a PEM RSA key (PKCS#1 or PKCS#8)");
        return NULL;
    }
    if (check_rsa(pkey, err, errlen) != 0) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* Reads "PUBLIC KEY" (SubjectPublicKeyInfo), "RSA PUBLIC KEY" (PKCS#1), or a private key
 * PEM, from which the public half is used. */
static EVP_PKEY *load_public_key(const char *pem, char *err, size_t errlen)
{
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = NULL;

    if (!pem || !pem[0]) {
        casb_fail(err, errlen, CASB_EINVALID, "no public key");
        return NULL;
    }
    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        goto out;
    pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (pkey)
        goto out;
    /* Any PEM form of an RSA key, public or private (PKCS#1 "RSA PUBLIC KEY" included). */
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        goto out;
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA",
                                         EVP_PKEY_PUBLIC_KEY | EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx && OSSL_DECODER_from_bio(dctx, bio) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey) {
        casb_fail(err, errlen, CASB_EINVALID, "public key is not a PEM RSA key");
        return NULL;
    }
    if (check_rsa(pkey, err, errlen) != 0) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* The header: alg and typ, and kid when given (JSON-escaped by jansson). */
static char *jwt_header(const char *kid)
{
    json_t *h;
    char *s;

    if (!kid)
        return strdup(JWT_HEADER);
    h = json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", kid);
    s = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    return s;
}

int casb_jwt_sign_rs256(char **out, const json_t *claims, const char *private_key_pem,
                        char *err, size_t errlen)
{
    return casb_jwt_sign_rs256_kid(out, claims, NULL, private_key_pem, err, errlen);
}

struct casb_jwt_key {
    EVP_PKEY *pkey;
};

int casb_jwt_key_load(casb_jwt_key **out, const char *private_key_pem, char *err,
                      size_t errlen)
{
    casb_jwt_key *k;

    *out = NULL;
    k = calloc(1, sizeof(*k));
    if (!k)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    k->pkey = load_private_key(private_key_pem, err, errlen);
    if (!k->pkey) {
        free(k);
        return CASB_EINVALID;
    }
    *out = k;
    return 0;
}

void casb_jwt_key_free(casb_jwt_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey); /* clears the private components */
    free(k);
}

int casb_jwt_sign_rs256_kid(char **out, const json_t *claims, const char *kid,
                            const char *private_key_pem, char *err, size_t errlen)
{
    casb_jwt_key *key = NULL;
    int rc;

    *out = NULL;
    rc = casb_jwt_key_load(&key, private_key_pem, err, errlen);
    if (rc != 0)
        return rc;
    rc = casb_jwt_sign_rs256_key(out, claims, kid, key, err, errlen);
    casb_jwt_key_free(key);
    return rc;
}

int casb_jwt_sign_rs256_key(char **out, const json_t *claims, const char *kid,
                            const casb_jwt_key *key, char *err, size_t errlen)
{
    EVP_MD_CTX *md = NULL;
    char *payload_json = NULL, *header_b64 = NULL, *payload_b64 = NULL, *sig_b64 = NULL;
    char *input = NULL, *token = NULL, *header = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0, input_len, token_len;
    int rc = CASB_ERROR;

    *out = NULL;
    if (!json_is_object(claims))
        return casb_fail(err, errlen, CASB_EINVALID, "claims must be a JSON object");
    if (!key || !key->pkey)
        return casb_fail(err, errlen, CASB_EINVALID, "no private key");

    payload_json = casb_json_dump(claims);
    header = jwt_header(kid);
    header_b64 = header ? casb_base64url_encode(header, strlen(header)) : NULL;
    payload_b64 = payload_json ? casb_base64url_encode(payload_json, strlen(payload_json)) : NULL;
    if (!header_b64 || !payload_b64) {
        casb_fail(err, errlen, CASB_ERROR, "cannot encode the token");
        goto out;
    }
    input_len = strlen(header_b64) + 1 + strlen(payload_b64);
    input = malloc(input_len + 1);
    if (!input) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    snprintf(input, input_len + 1, "%s.%s", header_b64, payload_b64);

    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, input_len) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "cannot set up RS256 signing");
        goto out;
    }
    sig = malloc(sig_len);
    if (!sig ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, input_len) != 1) {
        casb_fail(err, errlen, CASB_ERROR, "RS256 signing failed");
        goto out;
    }
    sig_b64 = casb_base64url_encode(sig, sig_len);
    if (!sig_b64) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    token_len = input_len + 1 + strlen(sig_b64) + 1;
    token = malloc(token_len);
    if (!token) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    snprintf(token, token_len, "%s.%s", input, sig_b64);
    *out = token;
    rc = 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(payload_json);
    free(header);
    free(header_b64);
    free(payload_b64);
    free(sig_b64);
    free(input);
    free(sig);
    return rc;
}

/* Decodes one base64url segment as a JSON object. */
static json_t *decode_segment(const char *seg, size_t n)
{
    char *copy = strndup(seg, n);
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_t *v = NULL;

    if (!copy)
        return NULL;
    raw = casb_base64url_decode(copy, &raw_len);
    free(copy);
    if (!raw)
        return NULL;
    v = casb_json_parse((const char *)raw, raw_len, 16, NULL, 0);
    free(raw);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* A NumericDate claim: a JSON number of seconds. Returns 0 and *out, or -1 when absent or
 * not a number. */
static int numeric_date(const json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);

    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

/* exp and iat are both required: GitHub requires them of App JWTs, and a token without
 * an expiry would be valid forever. */
int casb_jwt_verify_rs256(json_t **claims, const char *token, const char *public_key_pem,
                          long leeway_s, char *err, size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    json_t *header = NULL, *payload = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const char *dot1, *dot2, *alg;
    double exp_s, iat_s, now_s;
    int rc = CASB_EAUTH;

    *claims = NULL;
    if (!token || strlen(token) > MAX_TOKEN_LEN)
        return casb_fail(err, errlen, CASB_EAUTH, "malformed token");
    dot1 = strchr(token, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return casb_fail(err, errlen, CASB_EAUTH, "malformed token: expected three segments");

    header = decode_segment(token, (size_t)(dot1 - token));
    if (!header) {
        casb_fail(err, errlen, CASB_EAUTH, "malformed token header");
        goto out;
    }
    alg = casb_json_str(header, "alg");
    if (!alg || strcmp(alg, "RS256") != 0) {
        casb_fail(err, errlen, CASB_EAUTH, "unsupported alg (only RS256 is accepted)");
        goto out;
    }
    sig = casb_base64url_decode(dot2 + 1, &sig_len);
    if (!sig || sig_len == 0) {
        casb_fail(err, errlen, CASB_EAUTH, "malformed token signature");
        goto out;
    }
    pkey = load_public_key(public_key_pem, err, errlen);
    if (!pkey) {
        rc = CASB_EINVALID;
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1) {
        rc = casb_fail(err, errlen, CASB_ERROR, "cannot set up RS256 verification");
        goto out;
    }
    if (EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)token,
                         (size_t)(dot2 - token)) != 1) {
        casb_fail(err, errlen, CASB_EAUTH, "bad token signature");
        goto out;
    }

    /* Only now that the signature holds is the payload worth parsing. */
    payload = decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload) {
        casb_fail(err, errlen, CASB_EAUTH, "malformed token payload");
        goto out;
    }
    now_s = (double)time(NULL);
    if (numeric_date(payload, "exp", &exp_s) != 0) {
        casb_fail(err, errlen, CASB_EAUTH, "token has no exp claim");
        goto out;
    }
    if (numeric_date(payload, "iat", &iat_s) != 0) {
        casb_fail(err, errlen, CASB_EAUTH, "token has no iat claim");
        goto out;
    }
    if (now_s >= exp_s + (double)leeway_s) {
        casb_fail(err, errlen, CASB_EAUTH, "token expired");
        goto out;
    }
    if (iat_s > now_s + (double)leeway_s) {
        casb_fail(err, errlen, CASB_EAUTH, "token issued in the future (iat)");
        goto out;
    }
    *claims = payload;
    payload = NULL;
    rc = 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    json_decref(header);
    json_decref(payload);
    free(sig);
    return rc;
}
