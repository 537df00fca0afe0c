/* The bodies of findings-api's triage routes: a bulk action {"ids": [...]} (fa_query_ids,
 * after the JSON limits of the HTTP layer: casb_json_parse with the server's depth) and a
 * severity {"severity": ...} (fa_severity_rank). Invariants: an accepted id list is a
 * PostgreSQL array literal of 1..FA_BULK_IDS_MAX distinct canonical UUIDs, exactly as many
 * as *distinct says; a severity rank maps back to its name. */
#include <string.h>

#include "casb/crypto.h"
#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_query.h"
#include "fuzz_common.h"

static void check_ids(const char *lit, long distinct)
{
    size_t len = strlen(lit);
    long n = 0;

    FUZZ_CHECK(distinct >= 1 && distinct <= FA_BULK_IDS_MAX);
    FUZZ_CHECK(len == (size_t)distinct * 37 + 1 && lit[0] == '{' && lit[len - 1] == '}');
    for (const char *p = lit + 1; p < lit + len - 1; p += 37) {
        char id[37];
        memcpy(id, p, 36);
        id[36] = '\0';
        FUZZ_CHECK(casb_uuid_valid(id));
        FUZZ_CHECK(p[36] == ',' || p + 36 == lit + len - 1);
        /* Distinct: the id occurs once in the literal (ids may differ only in case). */
        FUZZ_CHECK(strcasestr(p + 36, id) == NULL);
        n++;
    }
    FUZZ_CHECK(n == distinct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    long distinct = -1;
    json_t *body = casb_json_parse((const char *)data, size, 32, err, sizeof(err));
    const char *severity;
    char *lit;

    if (!body)
        return 0;
    lit = fa_query_ids(body, &distinct, err, sizeof(err));
    if (lit)
        check_ids(lit, distinct);
    else
        FUZZ_CHECK(err[0] && distinct == 0);
    severity = json_string_value(json_object_get(body, "severity"));
    if (severity && fa_severity_rank(severity) >= 0)
        FUZZ_CHECK(strcmp(fa_severity_name(fa_severity_rank(severity)), severity) == 0);
    free(lit);
    json_decref(body);
    return 0;
}
