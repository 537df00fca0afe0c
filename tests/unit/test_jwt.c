/* Unit tests for jwt.c with RSA keys generated in the test: sign then verify, key formats,
 * and every rejection (tampering, expiry, iat, wrong key, alg, malformed tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/jwt.h"

typedef struct {
    char *priv_pkcs8;
    char *priv_pkcs1;
    char *pub_spki;
    char *pub_pkcs1;
    char *priv_encrypted;
} keyset;

static keyset key_a, key_b;

static char *bio_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);

    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(bio);
    return s;
}

static char *encode_pem(EVP_PKEY *pkey, int selection, const char *structure)
{
    BIO *bio = BIO_new(BIO_s_mem());
    OSSL_ENCODER_CTX *ectx =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", structure, NULL);

    assert_non_null(ectx);
    assert_int_equal(OSSL_ENCODER_to_bio(ectx, bio), 1);
    OSSL_ENCODER_CTX_free(ectx);
    return bio_string(bio);
}

static void make_keys(keyset *k, unsigned bits)
{
    EVP_PKEY *pkey = EVP_RSA_gen(bits);
    BIO *bio;

    assert_non_null(pkey);
    k->priv_pkcs8 = encode_pem(pkey, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    k->priv_pkcs1 = encode_pem(pkey, EVP_PKEY_KEYPAIR, "type-specific");
    k->pub_spki = encode_pem(pkey, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    k->pub_pkcs1 = encode_pem(pkey, EVP_PKEY_PUBLIC_KEY, "type-specific");
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, EVP_aes_128_cbc(),
                                              (unsigned char *)"passphrase", 10, NULL, NULL),
                     1);
    k->priv_encrypted = bio_string(bio);
    EVP_PKEY_free(pkey);
}

static void free_keys(keyset *k)
{
    free(k->priv_pkcs8);
    free(k->priv_pkcs1);
    free(k->pub_spki);
    free(k->pub_pkcs1);
    free(k->priv_encrypted);
}

static int group_setup(void **state)
{
    (void)state;
    make_keys(&key_a, 2048);
    make_keys(&key_b, 2048);
    /* The formats really differ, so both parser paths are exercised. */
    assert_non_null(strstr(key_a.priv_pkcs8, "BEGIN PRIVATE KEY"));
    assert_non_null(strstr(key_a.priv_pkcs1, "BEGIN RSA PRIVATE KEY"));
    assert_non_null(strstr(key_a.pub_spki, "BEGIN PUBLIC KEY"));
    assert_non_null(strstr(key_a.pub_pkcs1, "BEGIN RSA PUBLIC KEY"));
    assert_non_null(strstr(key_a.priv_encrypted, "ENCRYPTED"));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free_keys(&key_a);
    free_keys(&key_b);
    return 0;
}

static json_t *claims_at(long iat, long exp)
{
    return json_pack("{s:I,s:I,s:s}", "iat", (json_int_t)iat, "exp", (json_int_t)exp, "iss",
                     "1001");
}

static char *sign_ok(const json_t *claims, const char *pem)
{
    char *tok = NULL;
    char err[256] = "";

    if (casb_jwt_sign_rs256(&tok, claims, pem, err, sizeof(err)) != 0)
        fail_msg("sign failed: %s", err);
    assert_non_null(tok);
    return tok;
}

static void test_sign_verify_roundtrip(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now - 60, now + 540);
    json_t *got = NULL;
    char *tok, *dot, *header_b64;
    unsigned char *header;
    size_t n;
    char err[256] = "";

    (void)state;
    tok = sign_ok(claims, key_a.priv_pkcs8);
    dot = strchr(tok, '.');
    assert_non_null(dot);
    header_b64 = strndup(tok, (size_t)(dot - tok));
    header = casb_base64url_decode(header_b64, &n);
    assert_non_null(header);
    assert_string_equal((char *)header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    free(header);
    free(header_b64);
    assert_null(strchr(tok, '=')); /* base64url without padding */

    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)), 0);
    assert_non_null(got);
    assert_true(json_equal(got, claims));
    json_decref(got);
    free(tok);
    json_decref(claims);
}

static void test_key_formats(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    json_t *got = NULL;
    char *tok;
    char err[256] = "";

    (void)state;
    /* PKCS#1 private key signs; PKCS#1 public key and the private PEM itself verify. */
    tok = sign_ok(claims, key_a.priv_pkcs1);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_pkcs1, 0, err, sizeof(err)), 0);
    json_decref(got);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.priv_pkcs1, 0, err, sizeof(err)), 0);
    json_decref(got);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)), 0);
    json_decref(got);
    free(tok);

    /* RSASSA-PKCS1-v1_5 is deterministic: both private formats give the same token. */
    {
        char *t1 = sign_ok(claims, key_a.priv_pkcs1);
        char *t8 = sign_ok(claims, key_a.priv_pkcs8);

        assert_string_equal(t1, t8);
        free(t1);
        free(t8);
    }
    json_decref(claims);
}

static void test_bad_keys(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    json_t *arr = json_array();
    json_t *got = NULL;
    char *tok = NULL;
    char err[256] = "";
    keyset small = {0};
    EVP_PKEY *ec;
    char *ec_pem;

    (void)state;
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, "not a pem", err, sizeof(err)),
                     CASB_EINVALID);
    assert_null(tok);
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, NULL, err, sizeof(err)), CASB_EINVALID);
    /* A public key cannot sign. */
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, key_a.pub_spki, err, sizeof(err)),
                     CASB_EINVALID);
    /* An encrypted key fails instead of prompting for a passphrase. */
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, key_a.priv_encrypted, err, sizeof(err)),
                     CASB_EINVALID);
    /* Claims must be an object. */
    assert_int_equal(casb_jwt_sign_rs256(&tok, arr, key_a.priv_pkcs8, err, sizeof(err)),
                     CASB_EINVALID);

    /* Short RSA keys are refused. */
    make_keys(&small, 1024);
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, small.priv_pkcs8, err, sizeof(err)),
                     CASB_EINVALID);
    assert_non_null(strstr(err, "2048"));
    free_keys(&small);

    /* Non-RSA keys are refused. */
    ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    ec_pem = encode_pem(ec, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    assert_int_equal(casb_jwt_sign_rs256(&tok, claims, ec_pem, err, sizeof(err)),
                     CASB_EINVALID);
    assert_non_null(strstr(err, "RSA"));
    free(ec_pem);
    EVP_PKEY_free(ec);

    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, "garbage", 0, err, sizeof(err)),
                     CASB_EINVALID);
    assert_null(got);
    free(tok);
    json_decref(arr);
    json_decref(claims);
}

typedef struct {
    const casb_jwt_key *key;
    const json_t *claims;
    int failures;
} sign_job;

static void *sign_many(void *arg)
{
    sign_job *j = arg;
    char err[256];

    for (int i = 0; i < 20; i++) {
        char *tok = NULL;
        json_t *got = NULL;

        if (casb_jwt_sign_rs256_key(&tok, j->claims, "kid-1", j->key, err, sizeof(err)) != 0 ||
            casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)) != 0)
            j->failures++;
        json_decref(got);
        free(tok);
    }
    return NULL;
}

/* A key loaded once signs like the PEM does, from several threads at once. */
static void test_loaded_key(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    casb_jwt_key *key = NULL;
    sign_job jobs[4];
    pthread_t tids[4];
    char *tok = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_jwt_key_load(&key, "not a pem", err, sizeof(err)), CASB_EINVALID);
    assert_null(key);
    assert_int_equal(casb_jwt_sign_rs256_key(&tok, claims, NULL, NULL, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_jwt_key_load(&key, key_a.priv_pkcs1, err, sizeof(err)), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (sign_job){key, claims, 0};
        assert_int_equal(pthread_create(&tids[i], NULL, sign_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(tids[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    casb_jwt_key_free(key);
    casb_jwt_key_free(NULL);
    json_decref(claims);
}

static void test_wrong_key_fails(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    json_t *got = NULL;
    char *tok;
    char err[256] = "";

    (void)state;
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_b.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_null(got);
    assert_string_equal(err, "bad token signature");
    free(tok);
    json_decref(claims);
}

/* Replaces the payload segment of tok with the base64url of payload_json. */
static char *with_payload(const char *tok, const char *payload_json)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    char *p64 = casb_base64url_encode(payload_json, strlen(payload_json));
    size_t n = (size_t)(d1 - tok) + 1 + strlen(p64) + strlen(d2) + 1;
    char *out = malloc(n);

    assert_non_null(out);
    snprintf(out, n, "%.*s.%s%s", (int)(d1 - tok), tok, p64, d2);
    free(p64);
    return out;
}

static void test_tampering_fails(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    json_t *got = NULL;
    char *tok, *forged, *evil_payload;
    char err[256] = "";
    size_t len;

    (void)state;
    tok = sign_ok(claims, key_a.priv_pkcs8);

    /* A different issuer in the payload, signature kept. */
    json_object_set_new(claims, "iss", json_string("1002"));
    evil_payload = json_dumps(claims, JSON_COMPACT);
    forged = with_payload(tok, evil_payload);
    assert_int_equal(casb_jwt_verify_rs256(&got, forged, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_null(got);
    free(forged);
    free(evil_payload);

    /* One character of the signature changed. */
    len = strlen(tok);
    tok[len - 5] = tok[len - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_null(got);
    free(tok);
    json_decref(claims);
}

static void test_alg_checked(void **state)
{
    long now = (long)time(NULL);
    json_t *claims = claims_at(now, now + 600);
    json_t *got = NULL;
    char *tok, *payload, *forged;
    const char *none_json = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    const char *hs_json = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *h_none = casb_base64url_encode(none_json, strlen(none_json));
    char *h_hs = casb_base64url_encode(hs_json, strlen(hs_json));
    char err[256] = "";
    size_t n;

    (void)state;
    tok = sign_ok(claims, key_a.priv_pkcs8);
    payload = strchr(tok, '.'); /* ".<payload>.<sig>" */
    n = strlen(h_none) + strlen(payload) + 1;
    forged = malloc(n);
    snprintf(forged, n, "%s%s", h_none, payload);
    assert_int_equal(casb_jwt_verify_rs256(&got, forged, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "alg"));
    free(forged);
    n = strlen(h_hs) + strlen(payload) + 1;
    forged = malloc(n);
    snprintf(forged, n, "%s%s", h_hs, payload);
    assert_int_equal(casb_jwt_verify_rs256(&got, forged, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "alg"));
    /* "alg":"none" with an empty signature. */
    *strrchr(forged, '.') = '\0';
    {
        char *nosig = malloc(strlen(forged) + 2);

        snprintf(nosig, strlen(forged) + 2, "%s.", forged);
        assert_int_equal(casb_jwt_verify_rs256(&got, nosig, key_a.pub_spki, 0, err, sizeof(err)),
                         CASB_EAUTH);
        free(nosig);
    }
    assert_null(got);
    free(forged);
    free(tok);
    free(h_none);
    free(h_hs);
    json_decref(claims);
}

static void test_time_claims(void **state)
{
    long now = (long)time(NULL);
    json_t *claims;
    json_t *got = NULL;
    char *tok;
    char err[256] = "";

    (void)state;
    /* Expired a minute ago. */
    claims = claims_at(now - 660, now - 60);
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_string_equal(err, "token expired");
    assert_null(got);
    /* ... but within a 120 s leeway it passes. */
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 120, err, sizeof(err)), 0);
    json_decref(got);
    free(tok);
    json_decref(claims);

    /* Issued five minutes in the future. */
    claims = claims_at(now + 300, now + 900);
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 60, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "iat"));
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 600, err, sizeof(err)), 0);
    json_decref(got);
    free(tok);
    json_decref(claims);

    /* exp and iat are required, and must be numbers. */
    claims = json_pack("{s:I}", "iat", (json_int_t)now);
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "exp"));
    free(tok);
    json_decref(claims);
    claims = json_pack("{s:I}", "exp", (json_int_t)(now + 60));
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "iat"));
    free(tok);
    json_decref(claims);
    claims = json_pack("{s:s,s:I}", "exp", "tomorrow", "iat", (json_int_t)now);
    tok = sign_ok(claims, key_a.priv_pkcs8);
    assert_int_equal(casb_jwt_verify_rs256(&got, tok, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
    free(tok);
    json_decref(claims);
}

static void test_malformed_tokens(void **state)
{
    static const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "...", "!!!.###.$$$", "eyJhbGciOiJSUzI1NiJ9..",
    };
    json_t *got = NULL;
    char err[256] = "";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(casb_jwt_verify_rs256(&got, bad[i], key_a.pub_spki, 0, err, sizeof(err)),
                         CASB_EAUTH);
        assert_null(got);
    }
    assert_int_equal(casb_jwt_verify_rs256(&got, NULL, key_a.pub_spki, 0, err, sizeof(err)),
                     CASB_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_roundtrip),
        cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_loaded_key),
        cmocka_unit_test(test_wrong_key_fails),
        cmocka_unit_test(test_tampering_fails),
        cmocka_unit_test(test_alg_checked),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_malformed_tokens),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
