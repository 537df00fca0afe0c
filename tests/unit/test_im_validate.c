/* Unit tests for the integration-manager's request validation (im_validate.c): everything a
 * POST /v1/integrations body is refused for before the provider is contacted, with the
 * field each refusal names. Uses a provider defined here, so it needs no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/oauth.h"
#include "im_validate.h"

/* A provider shaped like GitHub: config {organization, api_base_url}, credentials {token}. */
static int fake_validate(const json_t *config, const json_t *credentials, char *field,
                         size_t fieldlen, char *err, size_t errlen)
{
    if (!json_is_string(json_object_get(config, "organization"))) {
        snprintf(field, fieldlen, "config.organization");
        return casb_fail(err, errlen, CASB_EINVALID, "config.organization: required");
    }
    if (!casb_oauth_is_credentials(credentials) &&
        !json_is_string(json_object_get(credentials, "token"))) {
        snprintf(field, fieldlen, "credentials.token");
        return casb_fail(err, errlen, CASB_EINVALID, "credentials.token: required");
    }
    return 0;
}

static const char *const fake_methods[] = {"token", NULL};
static const casb_provider_field fake_config_fields[] = {
    {"organization", "string", 0, 1, NULL, "Organization login."},
    {"api_base_url", "string", 0, 0, NULL, "API base URL."},
    {NULL, NULL, 0, 0, NULL, NULL},
};
static const casb_provider_field fake_credential_fields[] = {
    {"token", "string", 1, 1, "token", "A token."},
    {NULL, NULL, 0, 0, NULL, NULL},
};
static const casb_provider fake = {
    .id = "fakehub",
    .display_name = "FakeHub",
    .default_api_base_url = "https://api.fakehub.example",
    .default_scan_interval_s = 21600,
    .auth_methods = fake_methods,
    .config_fields = fake_config_fields,
    .credential_fields = fake_credential_fields,
    .validate = fake_validate,
};
static const casb_provider *const registry[] = {&fake, NULL};

#define ALLOWED "http://127.0.0.1:8090"

typedef struct {
    im_create_request req;
    char field[128];
    char err[512];
} outcome;

/* Validates the JSON text; returns the code, details in *o. */
static int run(const char *text, outcome *o)
{
    json_error_t jerr;
    json_t *body = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    int rc;

    if (!body)
        fail_msg("test body does not parse: %s", jerr.text);
    memset(o, 0, sizeof(*o));
    rc = im_validate_create(&o->req, body, registry, ALLOWED, o->field, sizeof(o->field), o->err,
                            sizeof(o->err));
    json_decref(body);
    return rc;
}

/* Expects a refusal naming field. */
static void refused(const char *text, const char *field)
{
    outcome o;

    if (run(text, &o) != CASB_EINVALID)
        fail_msg("accepted: %s", text);
    if (strcmp(o.field, field) != 0)
        fail_msg("field \"%s\" instead of \"%s\" for %s (%s)", o.field, field, text, o.err);
    assert_true(o.err[0] != '\0');
}

#define VALID_REST "\"config\":{\"organization\":\"acme\"},\"credentials\":{\"token\":\"t\"}"

static void test_valid_body(void **state)
{
    json_t *body = json_pack("{s:s,s:s,s:{s:s},s:{s:s},s:i}", "provider", "fakehub", "name",
                             "Acme", "config", "organization", "acme", "credentials", "token",
                             "ghp_x", "scan_interval_s", 7200);
    im_create_request req;
    char field[64] = "";
    char err[256] = "";

    (void)state;
    assert_int_equal(im_validate_create(&req, body, registry, ALLOWED, field, sizeof(field), err,
                                        sizeof(err)),
                     0);
    assert_ptr_equal(req.provider, &fake);
    assert_string_equal(req.name, "Acme");
    assert_string_equal(json_string_value(json_object_get(req.config, "organization")), "acme");
    assert_string_equal(json_string_value(json_object_get(req.credentials, "token")), "ghp_x");
    assert_int_equal(req.scan_interval_s, 7200);
    json_decref(body);
}

static void test_default_interval(void **state)
{
    outcome o;

    (void)state;
    assert_int_equal(run("{\"provider\":\"fakehub\",\"name\":\"a\"," VALID_REST "}", &o), 0);
    assert_int_equal(o.req.scan_interval_s, 21600);
    /* An explicit null means "the default" too. */
    assert_int_equal(
        run("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":null," VALID_REST "}",
            &o),
        0);
    assert_int_equal(o.req.scan_interval_s, 21600);
}

static void test_provider(void **state)
{
    (void)state;
    refused("[1]", "body");
    refused("{\"name\":\"a\"," VALID_REST "}", "provider");
    refused("{\"provider\":7,\"name\":\"a\"," VALID_REST "}", "provider");
    refused("{\"provider\":\"gitlab\",\"name\":\"a\"," VALID_REST "}", "provider");
    refused("{\"provider\":\"FAKEHUB\",\"name\":\"a\"," VALID_REST "}", "provider");
}

static void test_name(void **state)
{
    char body[2048];
    char name[1024];
    outcome o;

    (void)state;
    refused("{\"provider\":\"fakehub\"," VALID_REST "}", "name");
    refused("{\"provider\":\"fakehub\",\"name\":\"\"," VALID_REST "}", "name");
    refused("{\"provider\":\"fakehub\",\"name\":null," VALID_REST "}", "name");
    refused("{\"provider\":\"fakehub\",\"name\":[\"a\"]," VALID_REST "}", "name");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\\nb\"," VALID_REST "}", "name");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\\u0000b\"," VALID_REST "}", "name");

    /* 200 characters pass, 201 do not. */
    memset(name, 'x', 200);
    name[200] = '\0';
    snprintf(body, sizeof(body), "{\"provider\":\"fakehub\",\"name\":\"%s\"," VALID_REST "}", name);
    assert_int_equal(run(body, &o), 0);
    name[200] = 'x';
    name[201] = '\0';
    snprintf(body, sizeof(body), "{\"provider\":\"fakehub\",\"name\":\"%s\"," VALID_REST "}", name);
    refused(body, "name");

    /* Characters, not bytes: 200 two-byte characters pass. */
    name[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(name, "\xc3\xa9");
    snprintf(body, sizeof(body), "{\"provider\":\"fakehub\",\"name\":\"%s\"," VALID_REST "}", name);
    assert_int_equal(run(body, &o), 0);
}

static void test_objects(void **state)
{
    (void)state;
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"credentials\":{\"token\":\"t\"}}", "config");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":\"acme\","
            "\"credentials\":{\"token\":\"t\"}}",
            "config");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\"}}",
            "credentials");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\"},"
            "\"credentials\":\"ghp_x\"}",
            "credentials");
}

static void test_scan_interval(void **state)
{
    outcome o;

    (void)state;
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":3599," VALID_REST "}",
            "scan_interval_s");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":86401," VALID_REST "}",
            "scan_interval_s");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":-1," VALID_REST "}",
            "scan_interval_s");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":\"3600\"," VALID_REST "}",
            "scan_interval_s");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":3600.5," VALID_REST "}",
            "scan_interval_s");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":true," VALID_REST "}",
            "scan_interval_s");
    assert_int_equal(
        run("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":3600," VALID_REST "}", &o),
        0);
    assert_int_equal(o.req.scan_interval_s, 3600);
    assert_int_equal(
        run("{\"provider\":\"fakehub\",\"name\":\"a\",\"scan_interval_s\":86400," VALID_REST "}",
            &o),
        0);
    assert_int_equal(o.req.scan_interval_s, 86400);
}

static void test_config_fields(void **state)
{
    (void)state;
    /* A secret in the wrong object must not be stored in clear as configuration. */
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\","
            "\"token\":\"ghp_x\"},\"credentials\":{\"token\":\"t\"}}",
            "config.token");
}

static void test_provider_validate(void **state)
{
    (void)state;
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{},"
            "\"credentials\":{\"token\":\"t\"}}",
            "config.organization");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\"},"
            "\"credentials\":{}}",
            "credentials.token");
}

static void test_endpoint_guard(void **state)
{
    outcome o;

    (void)state;
    /* The provider's own endpoint and the allow-listed simulator pass. */
    assert_int_equal(run("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":"
                         "\"acme\",\"api_base_url\":\"https://api.fakehub.example\"},"
                         "\"credentials\":{\"token\":\"t\"}}",
                         &o),
                     0);
    assert_int_equal(run("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":"
                         "\"acme\",\"api_base_url\":\"http://127.0.0.1:8090\"},"
                         "\"credentials\":{\"token\":\"t\"}}",
                         &o),
                     0);
    /* Anything else is refused: another port, the metadata service, userinfo tricks. */
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\","
            "\"api_base_url\":\"http://127.0.0.1:8091\"},\"credentials\":{\"token\":\"t\"}}",
            "config.api_base_url");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\","
            "\"api_base_url\":\"http://169.254.169.254/latest\"},\"credentials\":{\"token\":\"t\"}}",
            "config.api_base_url");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\","
            "\"api_base_url\":\"http://127.0.0.1:8090@evil.example\"},"
            "\"credentials\":{\"token\":\"t\"}}",
            "config.api_base_url");
    refused("{\"provider\":\"fakehub\",\"name\":\"a\",\"config\":{\"organization\":\"acme\","
            "\"api_base_url\":42},\"credentials\":{\"token\":\"t\"}}",
            "config.api_base_url");
}

static void test_no_allowlist(void **state)
{
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "provider", "fakehub", "name", "a",
                             "config", "organization", "acme", "api_base_url",
                             "http://127.0.0.1:8090", "credentials", "token", "t");
    im_create_request req;
    char field[64] = "";
    char err[256] = "";

    (void)state;
    /* Without CASB_ALLOWED_ENDPOINTS the simulator is just another foreign host. */
    assert_int_equal(im_validate_create(&req, body, registry, NULL, field, sizeof(field), err,
                                        sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "config.api_base_url");
    json_decref(body);
}

/* PATCH and reauthorize bodies (im_validate_update, im_validate_reauthorize). The request
 * borrows from the body, so the last one parsed lives until the next call or
 * drop_change_body(). */
static json_t *change_body;

static void drop_change_body(void)
{
    json_decref(change_body);
    change_body = NULL;
}

static int run_change(const char *text, int reauthorize, im_update_request *req, char *field,
                      size_t fieldlen)
{
    json_error_t jerr;
    json_t *body = json_loads(text, JSON_DECODE_ANY, &jerr);
    char err[512] = "";
    int rc;

    if (!body)
        fail_msg("test body does not parse: %s", jerr.text);
    drop_change_body();
    change_body = body;
    rc = reauthorize ? im_validate_reauthorize(req, body, field, fieldlen, err, sizeof(err))
                     : im_validate_update(req, body, field, fieldlen, err, sizeof(err));
    if (rc != 0 && !err[0])
        fail_msg("refusal of %s without a detail", text);
    return rc;
}

static void change_refused(const char *text, int reauthorize, const char *field)
{
    im_update_request req;
    char got[128] = "";

    if (run_change(text, reauthorize, &req, got, sizeof(got)) != CASB_EINVALID)
        fail_msg("accepted: %s", text);
    if (strcmp(got, field) != 0)
        fail_msg("field \"%s\" instead of \"%s\" for %s", got, field, text);
}

static void test_update_accepts(void **state)
{
    im_update_request req;
    char field[128] = "";

    (void)state;
    assert_int_equal(run_change("{\"name\":\"New name\"}", 0, &req, field, sizeof(field)), 0);
    assert_string_equal(req.name, "New name");
    assert_int_equal(req.scan_interval_s, 0);
    assert_null(req.config);
    assert_null(req.credentials);

    assert_int_equal(run_change("{\"scan_interval_s\":3600,\"config\":{\"organization\":\"b\"},"
                                "\"credentials\":{\"token\":\"t2\"}}",
                                0, &req, field, sizeof(field)),
                     0);
    assert_null(req.name);
    assert_int_equal(req.scan_interval_s, 3600);
    assert_non_null(req.config);
    assert_non_null(req.credentials);
    assert_int_equal(run_change("{\"scan_interval_s\":86400}", 0, &req, field, sizeof(field)),
                     0);
    assert_int_equal(req.scan_interval_s, 86400);
    drop_change_body();
}

static void test_update_refuses(void **state)
{
    (void)state;
    change_refused("{}", 0, "body");
    change_refused("[]", 0, "body");
    change_refused("{\"provider\":\"fakehub\"}", 0, "provider");
    change_refused("{\"name\":\"ok\",\"paused\":true}", 0, "paused");
    change_refused("{\"name\":\"\"}", 0, "name");
    change_refused("{\"name\":null}", 0, "name");
    change_refused("{\"name\":\"a\\u0001b\"}", 0, "name");
    change_refused("{\"scan_interval_s\":3599}", 0, "scan_interval_s");
    change_refused("{\"scan_interval_s\":86401}", 0, "scan_interval_s");
    change_refused("{\"scan_interval_s\":\"3600\"}", 0, "scan_interval_s");
    change_refused("{\"scan_interval_s\":3600.5}", 0, "scan_interval_s");
    change_refused("{\"scan_interval_s\":null}", 0, "scan_interval_s");
    change_refused("{\"config\":\"x\"}", 0, "config");
    change_refused("{\"credentials\":[]}", 0, "credentials");
    /* An unknown member is named even when valid ones come with it. */
    change_refused("{\"scan_interval_s\":7200,\"health\":\"healthy\"}", 0, "health");
    drop_change_body();
}

static void test_reauthorize_body(void **state)
{
    im_update_request req;
    char field[128] = "";

    (void)state;
    assert_int_equal(run_change("{\"credentials\":{\"token\":\"t\"}}", 1, &req, field,
                                sizeof(field)),
                     0);
    assert_non_null(req.credentials);
    assert_null(req.config);
    assert_int_equal(run_change("{\"credentials\":{\"token\":\"t\"},\"config\":{}}", 1, &req,
                                field, sizeof(field)),
                     0);
    assert_non_null(req.config);
    /* Without credentials the route reauthorizes by consent (OAuth). */
    assert_int_equal(run_change("{}", 1, &req, field, sizeof(field)), 0);
    assert_null(req.credentials);
    assert_int_equal(run_change("{\"config\":{}}", 1, &req, field, sizeof(field)), 0);
    assert_null(req.credentials);
    assert_non_null(req.config);
    /* Consent-flow tokens are never accepted from a user. */
    change_refused("{\"credentials\":{\"oauth\":true,\"access_token\":\"t\"}}", 1,
                   "credentials.oauth");
    change_refused("{\"credentials\":{\"oauth\":true,\"access_token\":\"t\"}}", 0,
                   "credentials.oauth");
    change_refused("{\"credentials\":{\"token\":\"t\"},\"name\":\"x\"}", 1, "name");
    change_refused("{\"credentials\":\"t\"}", 1, "credentials");
    drop_change_body();
}

/* The provider-specific checks PATCH runs on the resulting config and credentials. */
static void test_settings(void **state)
{
    json_t *config = json_pack("{s:s}", "organization", "acme");
    json_t *creds = json_pack("{s:s}", "token", "t");
    json_t *bad_config = json_pack("{s:s,s:s}", "organization", "acme", "token", "t");
    json_t *no_token = json_object();
    json_t *foreign = json_pack("{s:s,s:s}", "organization", "acme", "api_base_url",
                                "http://10.1.2.3");
    char field[128] = "";
    char err[256] = "";

    (void)state;
    assert_int_equal(im_validate_settings(&fake, config, creds, ALLOWED, field, sizeof(field),
                                          err, sizeof(err)),
                     0);
    assert_int_equal(im_validate_settings(&fake, bad_config, creds, ALLOWED, field,
                                          sizeof(field), err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "config.token");
    assert_int_equal(im_validate_settings(&fake, config, no_token, ALLOWED, field, sizeof(field),
                                          err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "credentials.token");
    assert_int_equal(im_validate_settings(&fake, foreign, creds, ALLOWED, field, sizeof(field),
                                          err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "config.api_base_url");
    json_decref(config);
    json_decref(creds);
    json_decref(bad_config);
    json_decref(no_token);
    json_decref(foreign);
}

/* The start of a consent flow: like a create without credentials, plus install. The body
 * lives until the next call (*req borrows from it). */
static json_t *start_body;

static int run_start(const char *text, im_create_request *req, int *install, char *field,
                     size_t fieldlen)
{
    char err[512] = "";
    int rc;

    json_decref(start_body);
    start_body = json_loads(text, 0, NULL);
    if (!start_body)
        fail_msg("test body does not parse: %s", text);
    rc = im_validate_oauth_start(req, install, start_body, &fake, ALLOWED, field, fieldlen, err,
                                 sizeof(err));
    if (rc != 0 && !err[0])
        fail_msg("refusal of %s without a detail", text);
    return rc;
}

static void test_oauth_start_body(void **state)
{
    static const struct {
        const char *body;
        const char *field;
    } refused[] = {
        {"{\"config\":{\"organization\":\"a\"}}", "name"},
        {"{\"name\":\"n\"}", "config"},
        {"{\"name\":\"n\",\"config\":{\"organization\":\"a\"},\"credentials\":{}}",
         "credentials"},
        {"{\"name\":\"n\",\"config\":{\"organization\":\"a\"},\"install\":\"yes\"}",
         "install"},
        {"{\"name\":\"n\",\"config\":{\"organization\":\"a\"},\"scan_interval_s\":60}",
         "scan_interval_s"},
        {"{\"name\":\"n\",\"config\":{}}", "config.organization"},
        {"{\"name\":\"n\",\"config\":{\"organization\":\"a\",\"api_base_url\":"
         "\"http://10.0.0.1\"}}",
         "config.api_base_url"},
        {"{\"name\":\"n\",\"config\":{\"organization\":\"a\",\"token\":\"t\"}}",
         "config.token"},
    };
    im_create_request req;
    char field[128];
    int install = -1;

    (void)state;
    assert_int_equal(run_start("{\"name\":\"n\",\"config\":{\"organization\":\"a\"}}", &req,
                               &install, field, sizeof(field)),
                     0);
    assert_int_equal(install, 0);
    assert_string_equal(req.name, "n");
    assert_int_equal(req.scan_interval_s, 21600); /* the provider's default */
    assert_null(req.credentials);
    assert_int_equal(run_start("{\"name\":\"n\",\"config\":{\"organization\":\"a\"},"
                               "\"install\":true,\"scan_interval_s\":3600}",
                               &req, &install, field, sizeof(field)),
                     0);
    assert_int_equal(install, 1);
    assert_int_equal(req.scan_interval_s, 3600);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        field[0] = '\0';
        if (run_start(refused[i].body, &req, &install, field, sizeof(field)) != CASB_EINVALID)
            fail_msg("accepted: %s", refused[i].body);
        if (strcmp(field, refused[i].field) != 0)
            fail_msg("field \"%s\" instead of \"%s\" for %s", field, refused[i].field,
                     refused[i].body);
    }
    json_decref(start_body);
    start_body = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_body),        cmocka_unit_test(test_default_interval),
        cmocka_unit_test(test_provider),          cmocka_unit_test(test_name),
        cmocka_unit_test(test_objects),           cmocka_unit_test(test_scan_interval),
        cmocka_unit_test(test_config_fields),     cmocka_unit_test(test_provider_validate),
        cmocka_unit_test(test_endpoint_guard),    cmocka_unit_test(test_no_allowlist),
        cmocka_unit_test(test_update_accepts),    cmocka_unit_test(test_update_refuses),
        cmocka_unit_test(test_reauthorize_body),  cmocka_unit_test(test_settings),
        cmocka_unit_test(test_oauth_start_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
