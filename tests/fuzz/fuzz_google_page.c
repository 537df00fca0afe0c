/* The Google Workspace provider's reading of API pages: one response body ({"<list>":
 * [...]} as casb_google_paginate hands it over, or a bare array) turned into assets and run
 * through the check the collector would give it (casb_google_check_*), the users' OAuth
 * token grants accumulated (casb_google_add_token) and the tenant checks run over them
 * (casb_google_check_tenant). The first input byte picks the endpoint. Invariants
 * (fuzz_sink): every finding names a Google Workspace type and a non-empty asset, with
 * object details; the coverage names only those types. */
#include <string.h>

#include "casb/json.h"
#include "fuzz_common.h"
#include "google_internal.h"

typedef int (*check_fn)(casb_google_eval *ev, const json_t *asset);

static int add_token(casb_google_eval *ev, const json_t *token)
{
    const char *user = json_string_value(json_object_get(token, "userKey"));

    return casb_google_add_token(ev, token, user ? user : "someone@example.com");
}

/* What each list key of the API holds, and the check its items get. */
static const struct {
    const char *list_key;
    check_fn check;
} endpoints[] = {
    {"users", casb_google_check_user},
    {"files", casb_google_check_file},
    {"drives", casb_google_check_shared_drive},
    {"items", casb_google_check_calendar},
    {"delegates", casb_google_check_delegates},
    {"domains", casb_google_check_domain},
    {"items", add_token},
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sink sink;
    casb_google_eval ev;
    json_t *body, *items, *item;
    size_t i, e;

    if (size < 1)
        return 0;
    e = data[0] % NENDPOINTS;
    body = casb_json_parse((const char *)data + 1, size - 1, 0, NULL, 0);
    if (!body)
        return 0;
    items = json_is_array(body) ? body : json_object_get(body, endpoints[e].list_key);
    fuzz_sink_init(&sink, casb_google_finding_types);
    casb_google_eval_init(&ev, &sink.sink, 1764000000LL, "C01abcdef");
    FUZZ_CHECK(casb_google_eval_add_domain(&ev, "Example.com") == 0);
    json_array_foreach(items, i, item) {
        const char *domain = json_string_value(json_object_get(item, "domainName"));
        if (!json_is_object(item))
            continue;
        if (domain && endpoints[e].check == casb_google_check_domain)
            FUZZ_CHECK(casb_google_eval_add_domain(&ev, domain) == 0);
        FUZZ_CHECK(endpoints[e].check(&ev, item) == 0);
    }
    FUZZ_CHECK(casb_google_is_internal(&ev, "admin@EXAMPLE.com"));
    FUZZ_CHECK(casb_google_check_tenant(&ev) == 0);
    FUZZ_CHECK(ev.cov.findings == sink.findings);
    casb_google_eval_report(&ev);
    casb_google_eval_cleanup(&ev);
    json_decref(body);
    return 0;
}
