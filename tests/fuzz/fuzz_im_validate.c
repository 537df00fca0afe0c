/* integration-manager's request bodies, after the HTTP layer's JSON limits: POST
 * /v1/integrations (im_validate_create over every registered provider, with each
 * provider's own validate(): GitHub App keys in PEM, Google service-account keys), PATCH
 * (im_validate_update), reauthorize and the OAuth start. The first input byte picks the
 * route. Invariants: a refusal says why; an accepted body has a known provider, a
 * name of 1..200 characters, an interval in range and object config and credentials. */
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "fuzz_common.h"
#include "im_validate.h"

#define ALLOWED_ENDPOINTS "http://127.0.0.1:8090,http://localhost:8091"

static void check_interval(long s)
{
    FUZZ_CHECK(s == 0 || (s >= IM_SCAN_INTERVAL_MIN_S && s <= IM_SCAN_INTERVAL_MAX_S));
}

static void check_name(const char *name)
{
    FUZZ_CHECK(!name || (name[0] && strlen(name) <= IM_NAME_MAX_CHARS * 4));
}

static int create(const json_t *body, char *field, char *err)
{
    im_create_request req;

    if (im_validate_create(&req, body, casb_provider_all(), ALLOWED_ENDPOINTS, field, 128, err,
                           256) != 0)
        return -1;
    FUZZ_CHECK(req.provider && req.name);
    FUZZ_CHECK(json_is_object(req.config) && json_is_object(req.credentials));
    FUZZ_CHECK(req.scan_interval_s >= IM_SCAN_INTERVAL_MIN_S);
    check_interval(req.scan_interval_s);
    check_name(req.name);
    return 0;
}

static int oauth_start(const json_t *body, char *field, char *err)
{
    const casb_provider *github = casb_provider_find("github");
    im_create_request req;
    int install = -1;

    if (im_validate_oauth_start(&req, &install, body, github, ALLOWED_ENDPOINTS, field, 128,
                                err, 256) != 0)
        return -1;
    FUZZ_CHECK(install == 0 || install == 1);
    FUZZ_CHECK(req.name && json_is_object(req.config) && !req.credentials);
    check_interval(req.scan_interval_s);
    check_name(req.name);
    return 0;
}

static int change(const json_t *body, int reauthorize, char *field, char *err)
{
    im_update_request req;
    int rc = reauthorize ? im_validate_reauthorize(&req, body, field, 128, err, 256)
                         : im_validate_update(&req, body, field, 128, err, 256);

    if (rc != 0)
        return -1;
    FUZZ_CHECK(!req.config || json_is_object(req.config));
    FUZZ_CHECK(!req.credentials || json_is_object(req.credentials));
    FUZZ_CHECK(reauthorize || req.name || req.scan_interval_s || req.config || req.credentials);
    check_interval(req.scan_interval_s);
    check_name(req.name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char field[128] = "", err[256] = "";
    json_t *body;
    int route, rc;

    if (size < 1)
        return 0;
    route = data[0] % 4;
    body = casb_json_parse((const char *)data + 1, size - 1, 32, NULL, 0);
    if (!body)
        return 0;
    if (route == 0)
        rc = create(body, field, err);
    else if (route == 1)
        rc = oauth_start(body, field, err);
    else
        rc = change(body, route == 3, field, err);
    /* A refusal says why (field may be "", the name of an unknown empty member). */
    FUZZ_CHECK(rc == 0 || err[0]);
    json_decref(body);
    return 0;
}
