/* Unit tests for findings-api's webhook bodies, signatures and retry delays
 * (fa_webhook.c, fa_webhook_sender.c): what a POST or PATCH /v1/webhooks body may say, and
 * which member a refusal names; what is kept apart as secret; the signature receivers
 * verify; the backoff between attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_webhook.h"
#include "fa_webhook_sender.h"

static fa_catalogue *cat;
static char field[96], err[256];

static int load_catalogue(void **state)
{
    const char *src = getenv("CASB_SOURCE_DIR");
    char dir[1024];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/proto/findings", src ? src : CASB_SOURCE_DIR);
    return fa_catalogue_load_dir(&cat, dir, err, sizeof(err));
}

static int free_catalogue(void **state)
{
    (void)state;
    fa_catalogue_free(cat);
    return 0;
}

static json_t *body_of(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);

    if (!v)
        fail_msg("bad test JSON: %s", text);
    return v;
}

/* Parses text; 0 or -1 as fa_webhook_parse, in cleared by the caller. */
static int parse(fa_webhook_input *in, const char *text, int partial)
{
    json_t *body = body_of(text);
    int rc;

    field[0] = err[0] = '\0';
    rc = fa_webhook_parse(in, body, partial, cat, field, sizeof(field), err, sizeof(err));
    in->body = body; /* the strings of in borrow from it */
    return rc;
}

static void refused(const char *text, int partial, const char *want_field)
{
    fa_webhook_input in;

    if (parse(&in, text, partial) == 0)
        fail_msg("accepted: %s", text);
    if (strcmp(field, want_field) != 0)
        fail_msg("%s: refusal names \"%s\" (%s), not \"%s\"", text, field, err, want_field);
    fa_webhook_input_clear(&in);
}

static void test_full_body(void **state)
{
    fa_webhook_input in;

    (void)state;
    assert_int_equal(
        parse(&in,
              "{\"name\":\"SIEM\",\"url\":\"https://siem.example.com/in?x=1\","
              "\"auth\":{\"type\":\"bearer\",\"token\":\"tok-123\"},"
              "\"finding_types\":[\"github.repo.public\"],\"severities\":[\"critical\",\"high\"],"
              "\"integration_ids\":[\"0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b\"],\"enabled\":false}",
              0),
        0);
    assert_string_equal(in.name, "SIEM");
    assert_string_equal(in.url, "https://siem.example.com/in?x=1");
    assert_string_equal(in.auth_type, "bearer");
    assert_string_equal(casb_json_str(in.auth_secret, "token"), "tok-123");
    assert_int_equal(json_object_size(in.auth_public), 0);
    assert_int_equal(json_array_size(in.finding_types), 1);
    assert_int_equal(json_array_size(in.severities), 2);
    assert_int_equal(json_array_size(in.integration_ids), 1);
    assert_int_equal(in.enabled, 0);
    assert_int_equal(in.secret_generated, 0);
    fa_webhook_input_clear(&in);
}

/* What may be shown goes to auth_public, what may not to auth_secret, and never both. */
static void test_auth_kinds(void **state)
{
    fa_webhook_input in;
    char *shown;

    (void)state;
    assert_int_equal(
        parse(&in, "{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"none\"}}", 0),
        0);
    assert_null(in.auth_secret);
    fa_webhook_input_clear(&in);

    assert_int_equal(parse(&in,
                           "{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"basic\","
                           "\"username\":\"casb\",\"password\":\"pw-secret\"}}",
                           0),
                     0);
    assert_string_equal(casb_json_str(in.auth_public, "username"), "casb");
    assert_string_equal(casb_json_str(in.auth_secret, "password"), "pw-secret");
    shown = casb_json_dump(in.auth_public);
    assert_null(strstr(shown, "pw-secret"));
    free(shown);
    fa_webhook_input_clear(&in);

    assert_int_equal(parse(&in,
                           "{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
                           "\"headers\":{\"X-Api-Key\":\"k-secret\",\"Authorization\":\"x\"}}}",
                           0),
                     0);
    shown = casb_json_dump(in.auth_public);
    assert_non_null(strstr(shown, "X-Api-Key"));
    assert_null(strstr(shown, "k-secret"));
    free(shown);
    assert_string_equal(casb_json_path_str(in.auth_secret, "headers.X-Api-Key"), "k-secret");
    fa_webhook_input_clear(&in);
}

static void test_hmac_secret_made_or_given(void **state)
{
    fa_webhook_input in;
    const char *made;

    (void)state;
    assert_int_equal(parse(&in,
                           "{\"name\":\"a\",\"url\":\"http://h/\","
                           "\"auth\":{\"type\":\"hmac_sha256\"}}",
                           0),
                     0);
    assert_int_equal(in.secret_generated, 1);
    made = casb_json_str(in.auth_secret, "secret");
    assert_non_null(made);
    assert_int_equal(strncmp(made, "whsec_", 6), 0);
    assert_int_equal(strlen(made), 6 + 43); /* 32 bytes, base64url without padding */
    fa_webhook_input_clear(&in);

    assert_int_equal(parse(&in,
                           "{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":"
                           "\"hmac_sha256\",\"secret\":\"0123456789abcdef\"}}",
                           0),
                     0);
    assert_int_equal(in.secret_generated, 0);
    assert_string_equal(casb_json_str(in.auth_secret, "secret"), "0123456789abcdef");
    fa_webhook_input_clear(&in);
}

static void test_refusals_name_the_member(void **state)
{
    (void)state;
#define OK_AUTH "\"auth\":{\"type\":\"none\"}"
    refused("{\"url\":\"http://h/\"," OK_AUTH "}", 0, "name");
    refused("{\"name\":\"a\"," OK_AUTH "}", 0, "url");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"}", 0, "auth");
    refused("{\"name\":\"\",\"url\":\"http://h/\"," OK_AUTH "}", 0, "name");
    refused("{\"name\":\"a\\u0001\",\"url\":\"http://h/\"," OK_AUTH "}", 0, "name");
    refused("{\"name\":\"a\",\"url\":\"ftp://h/\"," OK_AUTH "}", 0, "url");
    refused("{\"name\":\"a\",\"url\":\"https://u:p@h/\"," OK_AUTH "}", 0, "url");
    refused("{\"name\":\"a\",\"url\":\"https:///x\"," OK_AUTH "}", 0, "url");
    refused("{\"name\":\"a\",\"url\":\"https://h/#frag\"," OK_AUTH "}", 0, "url");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"magic\"}}", 0,
            "auth.type");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"basic\","
            "\"username\":\"u\"}}",
            0, "auth.password");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"basic\","
            "\"username\":\"u:v\",\"password\":\"p\"}}",
            0, "auth.username");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"bearer\","
            "\"token\":\"t\",\"password\":\"p\"}}",
            0, "auth.password");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
            "\"headers\":{\"X-CASB-Event\":\"x\"}}}",
            0, "auth.headers.X-CASB-Event");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
            "\"headers\":{\"content-type\":\"x\"}}}",
            0, "auth.headers.content-type");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
            "\"headers\":{\"X-Key\":\"a\\r\\nInjected: 1\"}}}",
            0, "auth.headers.X-Key");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
            "\"headers\":{\"Bad Name\":\"a\"}}}",
            0, "auth.headers.Bad Name");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"headers\","
            "\"headers\":{}}}",
            0, "auth.headers");
    refused("{\"name\":\"a\",\"url\":\"http://h/\",\"auth\":{\"type\":\"hmac_sha256\","
            "\"secret\":\"short\"}}",
            0, "auth.secret");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH ",\"finding_types\":[\"no.such\"]}",
            0, "finding_types");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH ",\"severities\":[\"urgent\"]}", 0,
            "severities");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH
            ",\"severities\":[\"high\",\"high\"]}",
            0, "severities");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH ",\"integration_ids\":[\"x\"]}", 0,
            "integration_ids");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH ",\"enabled\":1}", 0, "enabled");
    refused("{\"name\":\"a\",\"url\":\"http://h/\"," OK_AUTH ",\"colour\":\"red\"}", 0,
            "colour");
    refused("{}", 1, "body");
#undef OK_AUTH
}

static void test_patch_members(void **state)
{
    fa_webhook_input in;

    (void)state;
    assert_int_equal(parse(&in, "{\"enabled\":false}", 1), 0);
    assert_int_equal(in.present, FA_WEBHOOK_ENABLED);
    assert_int_equal(in.enabled, 0);
    assert_null(in.url);
    assert_null(in.auth_type);
    fa_webhook_input_clear(&in);
}

/* The value receivers recompute: HMAC-SHA256(secret, "<t>.<body>") in hex, checked against
 * Python's hmac module for the same input. */
static void test_signature(void **state)
{
    char sig[FA_WEBHOOK_SIGNATURE_LEN];
    const char body[] = "{\"a\":1}";

    (void)state;
    assert_int_equal(fa_webhook_sign("whsec_0123456789abcdef", 1700000000LL, body,
                                     strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_equal(
        sig, "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2");
    assert_int_equal(fa_webhook_sign("k", 1, body, strlen(body), sig, 10), -1);
}

static void test_retry_delay(void **state)
{
    (void)state;
    assert_int_equal(fa_webhook_retry_delay_ms(1, 10000, 3600, -1, 1.0), 10000);
    assert_int_equal(fa_webhook_retry_delay_ms(2, 10000, 3600, -1, 1.0), 20000);
    assert_int_equal(fa_webhook_retry_delay_ms(4, 10000, 3600, -1, 1.0), 80000);
    /* capped, even after many attempts (no overflow) */
    assert_int_equal(fa_webhook_retry_delay_ms(11, 10000, 3600, -1, 1.0), 3600000);
    assert_int_equal(fa_webhook_retry_delay_ms(90, 10000, 3600, -1, 1.2), 3600000);
    /* jitter scales the delay */
    assert_int_equal(fa_webhook_retry_delay_ms(1, 10000, 3600, -1, 0.8), 8000);
    /* Retry-After is a floor, and the cap still holds */
    assert_int_equal(fa_webhook_retry_delay_ms(1, 300, 3600, 5, 1.0), 5000);
    assert_int_equal(fa_webhook_retry_delay_ms(1, 300, 60, 7200, 1.0), 60000);
    assert_int_equal(fa_webhook_retry_delay_ms(3, 300, 3600, 0, 1.0), 1200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_body),
        cmocka_unit_test(test_auth_kinds),
        cmocka_unit_test(test_hmac_secret_made_or_given),
        cmocka_unit_test(test_refusals_name_the_member),
        cmocka_unit_test(test_patch_members),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_retry_delay),
    };

    return cmocka_run_group_tests(tests, load_catalogue, free_catalogue);
}
