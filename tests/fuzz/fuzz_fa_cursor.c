/* findings-api's cursor tokens (fa_views.c): findings, instances, all instances and
 * timeline events, decoded from what a client hands back. Invariants: an accepted cursor
 * holds what the SQL expects (a known sort, a UUID, bounded asset ids, a positive event
 * id) and re-encodes to a token that decodes to the same cursor. */
#include <string.h>

#include "casb/crypto.h"
#include "fa_views.h"
#include "fuzz_common.h"

static void check_findings(const char *token)
{
    fa_findings_cursor c, again;
    char *re;

    if (fa_cursor_findings_decode(token, &c) != 0)
        return;
    FUZZ_CHECK(c.sort >= FA_SORT_SEVERITY && c.sort <= FA_SORT_LAST_SEEN);
    FUZZ_CHECK(casb_uuid_valid(c.id));
    re = fa_cursor_findings_encode(&c);
    FUZZ_CHECK(re && fa_cursor_findings_decode(re, &again) == 0);
    FUZZ_CHECK(again.sort == c.sort && again.k1 == c.k1 && again.k2 == c.k2 &&
               strcmp(again.id, c.id) == 0);
    free(re);
}

static void check_instances(const char *token)
{
    char *asset = fa_cursor_instances_decode(token), *re, *again;

    if (!asset)
        return;
    FUZZ_CHECK(strlen(asset) < 2048);
    re = fa_cursor_instances_encode(asset);
    again = re ? fa_cursor_instances_decode(re) : NULL;
    FUZZ_CHECK(again && strcmp(again, asset) == 0);
    free(again);
    free(re);
    free(asset);
}

static void check_all_instances(const char *token)
{
    char finding[37], asset[2048], finding2[37], asset2[2048];
    char *re;

    if (fa_cursor_all_instances_decode(token, finding, asset, sizeof(asset)) != 0)
        return;
    FUZZ_CHECK(casb_uuid_valid(finding) && strlen(asset) < sizeof(asset));
    re = fa_cursor_all_instances_encode(finding, asset);
    FUZZ_CHECK(re && fa_cursor_all_instances_decode(re, finding2, asset2, sizeof(asset2)) == 0);
    FUZZ_CHECK(strcmp(finding, finding2) == 0 && strcmp(asset, asset2) == 0);
    free(re);
}

static void check_events(const char *token)
{
    long long id = fa_cursor_events_decode(token);
    char *re;

    if (id == -1)
        return;
    FUZZ_CHECK(id > 0);
    re = fa_cursor_events_encode(id);
    FUZZ_CHECK(re && fa_cursor_events_decode(re) == id);
    free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = fuzz_cstr(data, size);

    check_findings(token);
    check_instances(token);
    check_all_instances(token);
    check_events(token);
    free(token);
    return 0;
}
