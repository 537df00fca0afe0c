/* Unit tests for crypto.c: randomness and ids, SHA-256, encodings, and sealed secrets
 * (round trip, tampering, key rotation, unknown keys, no plaintext in the envelope). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"

/* 32-byte keys: as hex, and the same style as base64 (44 chars). */
#define KEY_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B_B64 "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=" /* 32 x 'B' */
#define KEY_C_HEX "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void test_random_and_uuid(void **state)
{
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    char u1[37], u2[37];

    (void)state;
    assert_int_equal(casb_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(casb_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));

    casb_uuid_v4(u1);
    casb_uuid_v4(u2);
    assert_int_equal(strlen(u1), 36);
    assert_string_not_equal(u1, u2);
    assert_true(casb_uuid_valid(u1));
    assert_int_equal(u1[14], '4');                  /* version */
    assert_non_null(strchr("89ab", u1[19]));        /* variant */
    for (int i = 0; i < 36; i++)
        assert_true(u1[i] == '-' || (u1[i] >= '0' && u1[i] <= '9') || (u1[i] >= 'a' && u1[i] <= 'f'));

    assert_true(casb_uuid_valid("00000000-0000-0000-0000-000000000001"));
    assert_true(casb_uuid_valid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"));
    assert_false(casb_uuid_valid("00000000-0000-0000-0000-00000000000"));
    assert_false(casb_uuid_valid("00000000-0000-0000-0000-0000000000011"));
    assert_false(casb_uuid_valid("00000000-0000-0000-0000_000000000001"));
    assert_false(casb_uuid_valid("g0000000-0000-0000-0000-000000000001"));
    assert_false(casb_uuid_valid("00000000000000000000000000000000"));
    assert_false(casb_uuid_valid(""));
    assert_false(casb_uuid_valid(NULL));
}

static void test_sha256_and_equal(void **state)
{
    char hex[65];

    (void)state;
    casb_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    casb_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    assert_true(casb_secure_equal("token-123", "token-123"));
    assert_true(casb_secure_equal("", ""));
    assert_false(casb_secure_equal("token-123", "token-124"));
    assert_false(casb_secure_equal("token-123", "token-1234"));
    assert_false(casb_secure_equal("token", NULL));
    assert_false(casb_secure_equal(NULL, NULL));
}

static void check_b64(const char *plain, const char *std, const char *url)
{
    char *e;
    unsigned char *d;
    size_t n = 99;

    e = casb_base64_encode(plain, strlen(plain));
    assert_string_equal(e, std);
    free(e);
    e = casb_base64url_encode(plain, strlen(plain));
    assert_string_equal(e, url);
    free(e);
    d = casb_base64_decode(std, &n);
    assert_non_null(d);
    assert_int_equal(n, strlen(plain));
    assert_memory_equal(d, plain, n);
    assert_int_equal(d[n], '\0');
    free(d);
    d = casb_base64url_decode(url, &n);
    assert_non_null(d);
    assert_int_equal(n, strlen(plain));
    assert_memory_equal(d, plain, n);
    free(d);
}

static void test_base64(void **state)
{
    static const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
    size_t n;
    char *e;
    unsigned char *d;

    (void)state;
    /* RFC 4648 test vectors. */
    check_b64("", "", "");
    check_b64("f", "Zg==", "Zg");
    check_b64("fo", "Zm8=", "Zm8");
    check_b64("foo", "Zm9v", "Zm9v");
    check_b64("foob", "Zm9vYg==", "Zm9vYg");
    check_b64("fooba", "Zm9vYmE=", "Zm9vYmE");
    check_b64("foobar", "Zm9vYmFy", "Zm9vYmFy");

    e = casb_base64_encode(bin, sizeof(bin));
    assert_string_equal(e, "+/+/AD4=");
    free(e);
    e = casb_base64url_encode(bin, sizeof(bin));
    assert_string_equal(e, "-_-_AD4");
    d = casb_base64url_decode(e, &n);
    assert_int_equal(n, sizeof(bin));
    assert_memory_equal(d, bin, n);
    free(d);
    free(e);

    /* Unpadded standard base64 and padded base64url are accepted. */
    d = casb_base64_decode("Zm8", &n);
    assert_non_null(d);
    assert_int_equal(n, 2);
    free(d);
    d = casb_base64url_decode("Zm8=", &n);
    assert_non_null(d);
    assert_int_equal(n, 2);
    free(d);

    /* Refused: foreign alphabet, junk, impossible lengths, misplaced padding. */
    assert_null(casb_base64_decode("-_-_AD4=", &n));
    assert_null(casb_base64url_decode("+/+/AD4=", &n));
    assert_null(casb_base64_decode("Zm9v YmFy", &n));
    assert_null(casb_base64_decode("Zm9vY", &n));
    assert_null(casb_base64_decode("Zm=v", &n));
    assert_null(casb_base64_decode("Zg===", &n));
    d = casb_base64_decode("Zm9=", &n); /* valid: padding completes the last group */
    assert_non_null(d);
    assert_int_equal(n, 2);
    free(d);
    assert_null(casb_base64_decode("Z===", &n));
    assert_null(casb_base64_decode(NULL, &n));
}

static void test_keyring_parse(void **state)
{
    casb_keyring *kr = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_keyring_new(&kr, KEY_A_HEX, NULL, err, sizeof(err)), 0);
    assert_non_null(kr);
    /* The id is the first 8 hex chars of SHA-256 of the raw key. */
    {
        unsigned char raw[32];
        char hex[65];

        for (int i = 0; i < 32; i++)
            raw[i] = (unsigned char)i;
        casb_sha256_hex(raw, 32, hex);
        hex[8] = '\0';
        assert_string_equal(casb_keyring_current_id(kr), hex);
    }
    casb_keyring_free(kr);

    assert_int_equal(casb_keyring_new(&kr, KEY_B_B64 "\n", NULL, err, sizeof(err)), 0);
    casb_keyring_free(kr);

    assert_int_equal(casb_keyring_new(&kr, "short", NULL, err, sizeof(err)), CASB_EINVALID);
    assert_null(kr);
    assert_null(strstr(err, "short"));
    /* 64 characters, not all hex. */
    assert_int_equal(casb_keyring_new(&kr,
                                      "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                      NULL, err, sizeof(err)),
                     CASB_EINVALID);
    /* base64 of 31 bytes */
    assert_int_equal(casb_keyring_new(&kr, "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQg==", NULL,
                                      err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_keyring_new(&kr, "", NULL, err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_keyring_new(&kr, NULL, NULL, err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_keyring_new(&kr, KEY_A_HEX, "nope", err, sizeof(err)), CASB_EINVALID);
    assert_non_null(strstr(err, "previous"));
    assert_null(kr);
    casb_keyring_free(NULL);
}

static void test_seal_open_roundtrip(void **state)
{
    const char *secret = "{\"token\":\"ghp_SuperSecretValue1234567890\"}";
    casb_keyring *kr = NULL;
    char err[256] = "";
    char *sealed = NULL, *sealed2 = NULL, *plain = NULL;
    size_t n = 0;
    char id[16];
    char prefix[16];

    (void)state;
    assert_int_equal(casb_keyring_new(&kr, KEY_A_HEX, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_seal(kr, secret, strlen(secret), &sealed, err, sizeof(err)), 0);
    snprintf(prefix, sizeof(prefix), "v1.%s.", casb_keyring_current_id(kr));
    assert_true(strncmp(sealed, prefix, strlen(prefix)) == 0);
    /* 12-byte nonce + ciphertext + 16-byte tag, base64url without padding. */
    assert_int_equal(strlen(sealed) - strlen(prefix), ((12 + strlen(secret) + 16) * 4 + 2) / 3);
    assert_null(strchr(sealed + strlen(prefix), '='));
    /* No trace of the plaintext in the envelope. */
    assert_null(strstr(sealed, "ghp_"));
    assert_null(strstr(sealed, "SuperSecret"));
    assert_null(strstr(sealed, "token"));

    assert_int_equal(casb_secret_key_id(sealed, id, sizeof(id)), 0);
    assert_string_equal(id, casb_keyring_current_id(kr));
    assert_int_equal(casb_secret_key_id(sealed, id, 8), -1);
    assert_int_equal(casb_secret_key_id("v2.abcdef01.xx", id, sizeof(id)), -1);

    assert_int_equal(casb_secret_open(kr, sealed, &plain, &n, err, sizeof(err)), 0);
    assert_int_equal(n, strlen(secret));
    assert_string_equal(plain, secret);
    casb_secret_wipe(plain, n);
    assert_int_equal(plain[0], '\0');
    free(plain);

    /* A fresh nonce each time: the same plaintext seals differently. */
    assert_int_equal(casb_secret_seal(kr, secret, strlen(secret), &sealed2, err, sizeof(err)), 0);
    assert_string_not_equal(sealed, sealed2);
    free(sealed2);

    /* Empty and binary plaintexts. */
    assert_int_equal(casb_secret_seal(kr, "", 0, &sealed2, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_open(kr, sealed2, &plain, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    assert_string_equal(plain, "");
    free(plain);
    free(sealed2);
    {
        unsigned char bin[300];

        for (size_t i = 0; i < sizeof(bin); i++)
            bin[i] = (unsigned char)(i * 7);
        assert_int_equal(casb_secret_seal(kr, bin, sizeof(bin), &sealed2, err, sizeof(err)), 0);
        assert_int_equal(casb_secret_open(kr, sealed2, &plain, &n, err, sizeof(err)), 0);
        assert_int_equal(n, sizeof(bin));
        assert_memory_equal(plain, bin, n);
        free(plain);
        free(sealed2);
    }

    free(sealed);
    casb_keyring_free(kr);
}

static void test_tampering_fails(void **state)
{
    casb_keyring *kr = NULL, *other = NULL;
    char err[256] = "";
    char *sealed = NULL, *plain = (char *)"untouched";
    size_t n = 5, len, body;

    (void)state;
    assert_int_equal(casb_keyring_new(&kr, KEY_A_HEX, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_seal(kr, "hello world", 11, &sealed, err, sizeof(err)), 0);
    len = strlen(sealed);
    body = strlen("v1.") + 8 + 1;

    /* Flip each payload character in turn: every change must be detected. */
    for (size_t i = body; i < len; i++) {
        char saved = sealed[i];
        int rc;

        sealed[i] = saved == 'A' ? 'B' : 'A';
        rc = casb_secret_open(kr, sealed, &plain, &n, err, sizeof(err));
        /* The last char carries only some bits; changing unused bits may decode the same. */
        if (i + 1 < len) {
            assert_true(rc < 0);
            assert_null(plain);
            assert_int_equal(n, 0);
        } else if (rc == 0) {
            assert_string_equal(plain, "hello world");
            free(plain);
        }
        sealed[i] = saved;
    }
    assert_int_equal(casb_secret_open(kr, sealed, &plain, &n, err, sizeof(err)), 0);
    free(plain);

    /* Truncated. */
    sealed[len - 4] = '\0';
    assert_true(casb_secret_open(kr, sealed, &plain, &n, err, sizeof(err)) < 0);
    assert_null(plain);

    /* Garbage and the wrong version. */
    assert_int_equal(casb_secret_open(kr, "v1.zz.AAAA", &plain, &n, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_secret_open(kr, "v1.", &plain, &n, err, sizeof(err)), CASB_EINVALID);
    assert_int_equal(casb_secret_open(kr, "plaintext", &plain, &n, err, sizeof(err)),
                     CASB_EINVALID);
    free(sealed);

    /* Rewriting the key id to another key's id is caught by the AAD / tag. */
    assert_int_equal(casb_keyring_new(&other, KEY_C_HEX, KEY_A_HEX, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_seal(kr, "hello", 5, &sealed, err, sizeof(err)), 0);
    memcpy(sealed + 3, casb_keyring_current_id(other), 8);
    assert_int_equal(casb_secret_open(other, sealed, &plain, &n, err, sizeof(err)), CASB_EAUTH);
    assert_non_null(strstr(err, "authentication"));
    free(sealed);
    casb_keyring_free(other);
    casb_keyring_free(kr);
}

static void test_rotation(void **state)
{
    casb_keyring *old_kr = NULL, *new_kr = NULL, *other = NULL;
    char err[256] = "";
    char *sealed_old = NULL, *sealed_new = NULL, *plain = NULL;
    char old_id[9];
    size_t n = 0;

    (void)state;
    assert_int_equal(casb_keyring_new(&old_kr, KEY_A_HEX, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_seal(old_kr, "old secret", 10, &sealed_old, err, sizeof(err)), 0);
    snprintf(old_id, sizeof(old_id), "%s", casb_keyring_current_id(old_kr));

    /* Rotated: current = B, previous = A. Old envelopes still open. */
    assert_int_equal(casb_keyring_new(&new_kr, KEY_B_B64, KEY_A_HEX, err, sizeof(err)), 0);
    assert_string_not_equal(casb_keyring_current_id(new_kr), old_id);
    assert_int_equal(casb_secret_open(new_kr, sealed_old, &plain, &n, err, sizeof(err)), 0);
    assert_string_equal(plain, "old secret");
    free(plain);

    /* New envelopes use the current key, which the old keyring does not know. */
    assert_int_equal(casb_secret_seal(new_kr, "new secret", 10, &sealed_new, err, sizeof(err)), 0);
    assert_true(strncmp(sealed_new + 3, casb_keyring_current_id(new_kr), 8) == 0);
    assert_int_equal(casb_secret_open(old_kr, sealed_new, &plain, &n, err, sizeof(err)),
                     CASB_EAUTH);
    assert_null(plain);
    assert_non_null(strstr(err, "unknown key id"));

    /* A keyring that knows neither key. */
    assert_int_equal(casb_keyring_new(&other, KEY_C_HEX, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_secret_open(other, sealed_old, &plain, &n, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "unknown key id"));
    assert_non_null(strstr(err, old_id));

    free(sealed_old);
    free(sealed_new);
    casb_keyring_free(old_kr);
    casb_keyring_free(new_kr);
    casb_keyring_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_and_uuid),
        cmocka_unit_test(test_sha256_and_equal),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_keyring_parse),
        cmocka_unit_test(test_seal_open_roundtrip),
        cmocka_unit_test(test_tampering_fails),
        cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
