/* The GitHub provider's reading of API pages: one response body (an array page, or the
 * organization object) turned into assets and run through the check that the collector
 * would give it (casb_github_check_*), the ids and logins read with casb_github_parse_id
 * and casb_github_login_valid. The first input byte picks the endpoint; the rest is the
 * body, parsed as casb_github_request parses it. Invariants (fuzz_sink): every finding
 * names a GitHub finding type and a non-empty asset, with object details; the coverage
 * reported at the end names only GitHub's types. */
#include <string.h>

#include "casb/json.h"
#include "fuzz_common.h"
#include "github_internal.h"

typedef int (*check_fn)(casb_github_eval *ev, const json_t *asset);

static const check_fn checks[] = {
    casb_github_check_org,          casb_github_check_member,
    casb_github_check_repo,         casb_github_check_hook,
    casb_github_check_deploy_key,   casb_github_check_installation,
    casb_github_check_collaborator,
};
#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

static void read_ids(const json_t *item)
{
    long long id = 0;
    const char *login = json_string_value(json_object_get(item, "login"));

    if (casb_github_parse_id(json_object_get(item, "id"), &id) == 0)
        FUZZ_CHECK(id > 0);
    if (login && casb_github_login_valid(login))
        FUZZ_CHECK(strlen(login) >= 1 && strlen(login) <= 39 && login[0] != '-' &&
                   !strpbrk(login, "/?#%. "));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sink sink;
    casb_github_eval ev;
    check_fn check;
    json_t *body, *item;
    size_t i;

    if (size < 1)
        return 0;
    check = checks[data[0] % NCHECKS];
    body = casb_json_parse((const char *)data + 1, size - 1, 0, NULL, 0);
    if (!body)
        return 0;
    fuzz_sink_init(&sink, casb_github_finding_types);
    casb_github_eval_init(&ev, &sink.sink, 1764000000LL);
    if (json_is_array(body)) {
        json_array_foreach(body, i, item) {
            if (!json_is_object(item))
                continue;
            read_ids(item);
            FUZZ_CHECK(check(&ev, item) == 0);
        }
    } else if (json_is_object(body)) {
        read_ids(body);
        FUZZ_CHECK(check(&ev, body) == 0);
    }
    FUZZ_CHECK(ev.cov.findings == sink.findings);
    casb_github_eval_report(&ev);
    casb_github_eval_cleanup(&ev);
    json_decref(body);
    return 0;
}
