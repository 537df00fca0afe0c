/* The query strings of the list endpoints: casb_query_parse (percent-decoding, unknown,
 * repeated and empty parameters) feeding the findings-api's value checks (fa_query_*) and
 * the integration-manager's paging (im_page_parse). The first input byte picks the route;
 * the rest is the query as sent. Invariants: a refusal names a printable parameter; every
 * accepted value is a declared parameter's, within the decoding buffer; the checked values
 * are in their ranges. */
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/query.h"
#include "fa_catalogue.h"
#include "fa_query.h"
#include "fuzz_common.h"
#include "im_cursor.h"

/* Every *value set by casb_query_parse points into text and is a C string inside it. */
static void check_values(const casb_query_param *params, const casb_query_text *text)
{
    for (const casb_query_param *p = params; p->name; p++) {
        const char *v = *p->value;
        if (!v)
            continue;
        FUZZ_CHECK(v >= text->bytes && v < text->bytes + sizeof(text->bytes));
        FUZZ_CHECK(v[0] != '\0' && memchr(v, '\0', text->bytes + sizeof(text->bytes) - v));
    }
}

static int parse(const char *query, const casb_query_param *params, casb_query_text *text)
{
    char name[32], err[256];
    int rc = casb_query_parse(query, params, text, name, sizeof(name), err, sizeof(err));

    if (rc != 0) {
        FUZZ_CHECK(rc == CASB_EINVALID && err[0]);
        for (const char *c = name; *c; c++)
            FUZZ_CHECK(*c >= 0x20 && *c < 0x7f);
        return -1;
    }
    check_values(params, text);
    return 0;
}

static void findings_list(const char *query, casb_query_text *text)
{
    fa_findings_params in = {0};
    const casb_query_param params[] = {FA_FINDINGS_FILTER_PARAMS(in),
                                       {"include_resolved", &in.include_resolved},
                                       {"sort", &in.sort},
                                       {"limit", &in.limit},
                                       {"cursor", &in.cursor},
                                       {NULL, NULL}};
    fa_findings_query q = {.account_id = "00000000-0000-4000-8000-000000000001"};
    const char *param, *filters[10];
    char err[256];

    if (parse(query, params, text) != 0)
        return;
    if (fa_query_findings(&q, &in, &param, err, sizeof(err)) != 0) {
        FUZZ_CHECK(param && err[0]);
        return;
    }
    FUZZ_CHECK(q.limit >= 1 && q.limit <= CASB_QUERY_LIMIT_MAX);
    FUZZ_CHECK(q.sort >= FA_SORT_SEVERITY && q.sort <= FA_SORT_LAST_SEEN);
    FUZZ_CHECK(!q.integration_id || casb_uuid_valid(q.integration_id));
    FUZZ_CHECK(!q.search_like || strlen(q.search_like) < sizeof(q.search_like_buf));
    FUZZ_CHECK(fa_query_resolve(&q, &in, fuzz_catalogue()) == 0);
    fa_query_filter_params(&q, "$8", filters);
    fa_findings_query_clear(&q);
}

static void instances(const char *query, casb_query_text *text)
{
    fa_instances_params in = {0};
    const casb_query_param params[] = {
        {"state", &in.state}, {"limit", &in.limit}, {"cursor", &in.cursor}, {NULL, NULL}};
    fa_instances_page page;
    const char *param;
    char err[256];

    if (parse(query, params, text) != 0 ||
        fa_query_instances(&page, &in, &param, err, sizeof(err)) != 0)
        return;
    FUZZ_CHECK(page.limit >= 1 && page.limit <= CASB_QUERY_LIMIT_MAX);
    FUZZ_CHECK(memchr(page.after_asset_id, '\0', sizeof(page.after_asset_id)));
}

static void all_instances(const char *query, casb_query_text *text)
{
    const char *state = NULL, *cursor = NULL, *param;
    const casb_query_param params[] = {{"state", &state}, {"cursor", &cursor}, {NULL, NULL}};
    fa_all_instances_page page;
    char err[256];

    if (parse(query, params, text) != 0 ||
        fa_query_all_instances(&page, state, cursor, &param, err, sizeof(err)) != 0)
        return;
    FUZZ_CHECK(!page.after_finding[0] || casb_uuid_valid(page.after_finding));
    FUZZ_CHECK(memchr(page.after_asset, '\0', sizeof(page.after_asset)));
}

static void history_and_trend(const char *query, casb_query_text *text)
{
    const char *limit = NULL, *cursor = NULL, *integration_id = NULL, *days = NULL, *param;
    const casb_query_param params[] = {{"limit", &limit},
                                       {"cursor", &cursor},
                                       {"integration_id", &integration_id},
                                       {"days", &days},
                                       {NULL, NULL}};
    fa_history_page history;
    fa_trend_params trend;
    im_page page;
    char err[256];

    if (parse(query, params, text) != 0)
        return;
    if (fa_query_history(&history, limit, cursor, &param, err, sizeof(err)) == 0)
        FUZZ_CHECK(history.limit >= 1 && history.limit <= CASB_QUERY_LIMIT_MAX &&
                   history.before_id >= 0);
    if (fa_query_trend(&trend, integration_id, days, &param, err, sizeof(err)) == 0)
        FUZZ_CHECK(trend.days >= 1 && trend.days <= FA_TREND_DAYS_MAX &&
                   (!trend.integration_id || casb_uuid_valid(trend.integration_id)));
    if (im_page_parse(&page, limit, cursor, &param, err, sizeof(err)) == 0)
        FUZZ_CHECK(page.limit >= 1 && page.limit <= CASB_QUERY_LIMIT_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    casb_query_text text;
    char *query;

    if (size < 1)
        return 0;
    query = fuzz_cstr(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        findings_list(query, &text);
        break;
    case 1:
        instances(query, &text);
        break;
    case 2:
        all_instances(query, &text);
        break;
    default:
        history_and_trend(query, &text);
        break;
    }
    free(query);
    return 0;
}
