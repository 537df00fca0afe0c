/* findings-api's webhook bodies, after the HTTP layer's JSON limits: fa_webhook_parse of a
 * POST (partial 0) or PATCH (partial 1) /v1/webhooks body, chosen by the first input byte.
 * Invariants: a refusal says why; an accepted body has an http(s) URL within
 * bounds, a known auth type whose secret part matches it, header names and values that
 * cannot split a request, and list filters that are arrays. */
#include <string.h>
#include <strings.h>

#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_webhook.h"
#include "fuzz_common.h"

static void check_headers(const json_t *headers)
{
    const char *name;
    json_t *v;

    FUZZ_CHECK(json_is_object(headers) && json_object_size(headers) >= 1 &&
               json_object_size(headers) <= FA_WEBHOOK_HEADERS_MAX);
    json_object_foreach((json_t *)headers, name, v) {
        FUZZ_CHECK(name[0] && !strpbrk(name, "\r\n: "));
        FUZZ_CHECK(json_is_string(v) && !strpbrk(json_string_value(v), "\r\n"));
    }
}

static void check_accepted(const fa_webhook_input *in, int partial)
{
    FUZZ_CHECK(in->present != 0);
    if (!partial)
        FUZZ_CHECK((in->present & (FA_WEBHOOK_NAME | FA_WEBHOOK_URL | FA_WEBHOOK_AUTH)) ==
                   (FA_WEBHOOK_NAME | FA_WEBHOOK_URL | FA_WEBHOOK_AUTH));
    if (in->present & FA_WEBHOOK_URL) {
        FUZZ_CHECK(in->url && strlen(in->url) <= FA_WEBHOOK_URL_MAX);
        FUZZ_CHECK(!strncasecmp(in->url, "http://", 7) || !strncasecmp(in->url, "https://", 8));
        FUZZ_CHECK(!strpbrk(in->url, "\r\n #"));
    }
    if (in->present & FA_WEBHOOK_AUTH) {
        const char *t = in->auth_type;
        FUZZ_CHECK(t);
        FUZZ_CHECK(!strcmp(t, "none") == !in->auth_secret);
        if (!strcmp(t, "headers"))
            check_headers(json_object_get(in->auth_secret, "headers"));
        if (!strcmp(t, "basic")) {
            const char *user = json_string_value(json_object_get(in->auth_secret, "username"));
            FUZZ_CHECK(user && !strchr(user, ':'));
        }
        if (!strcmp(t, "hmac_sha256")) {
            const char *secret = json_string_value(json_object_get(in->auth_secret, "secret"));
            FUZZ_CHECK(secret && strlen(secret) >= FA_WEBHOOK_SECRET_MIN);
        }
    }
    FUZZ_CHECK(!(in->present & FA_WEBHOOK_FINDING_TYPES) || json_is_array(in->finding_types));
    FUZZ_CHECK(!(in->present & FA_WEBHOOK_SEVERITIES) || json_is_array(in->severities));
    FUZZ_CHECK(!(in->present & FA_WEBHOOK_INTEGRATIONS) || json_is_array(in->integration_ids));
    FUZZ_CHECK(in->enabled == 0 || in->enabled == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char field[128] = "", err[256] = "";
    fa_webhook_input in;
    json_t *body;
    int partial;

    if (size < 1)
        return 0;
    partial = data[0] & 1;
    body = casb_json_parse((const char *)data + 1, size - 1, 32, NULL, 0);
    if (!body)
        return 0;
    memset(&in, 0, sizeof(in));
    if (fa_webhook_parse(&in, body, partial, fuzz_catalogue(), field, sizeof(field), err,
                         sizeof(err)) == 0)
        check_accepted(&in, partial);
    else
        FUZZ_CHECK(err[0]); /* field may be "", the name of an unknown empty member */
    fa_webhook_input_clear(&in);
    json_decref(body);
    return 0;
}
