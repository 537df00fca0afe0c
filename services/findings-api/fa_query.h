#ifndef FA_QUERY_H
#define FA_QUERY_H

#include <jansson.h>
#include <stddef.h>

#include "fa_catalogue.h"
#include "fa_store.h"

/* Validation of the list endpoints' query values, without network or database. Values are
 * as decoded from the URL (casb/query.h has already refused unknown, repeated and empty
 * parameters); NULL means absent. Enumerated values must be one of their set; identifiers
 * (integration_id, provider, finding_type) must be well-formed and simply match nothing
 * when unknown. On refusal the functions return CASB_EINVALID with *param naming the
 * parameter and err the detail of the 400 answer. */

/* GET /v1/findings. */
typedef struct {
    const char *integration_id;
    const char *provider;
    const char *severity;
    const char *status;
    const char *category;
    const char *finding_type;
    const char *q;                /* text search in titles and asset names */
    const char *include_resolved;
    const char *sort;             /* severity (default) | instance_count | last_seen */
    const char *limit;
    const char *cursor;
} fa_findings_params;

/* The query parameters of the finding filters, shared by the list and the exports: entries
 * of a casb_query_param table reading into the fa_findings_params p. */
#define FA_FINDINGS_FILTER_PARAMS(p)                                                           \
    {"integration_id", &(p).integration_id}, {"provider", &(p).provider},                     \
        {"severity", &(p).severity}, {"status", &(p).status}, {"category", &(p).category},    \
        {"finding_type", &(p).finding_type}, {"q", &(p).q}

/* Fills q (whose account_id the caller sets) from in. Strings of q borrow from in; q->limit
 * is the page size and q->types_json stays NULL: a category filter is resolved against the
 * catalogue by the caller (in->category has been checked to be a category). */
int fa_query_findings(fa_findings_query *q, const fa_findings_params *in, const char **param,
                      char *err, size_t errlen);

/* Resolves what needs the catalogue: the category's type ids and the types whose title
 * matches the text search (case-insensitive). Free with fa_findings_query_clear. 0, or -1
 * when out of memory. */
int fa_query_resolve(fa_findings_query *q, const fa_findings_params *in,
                     const fa_catalogue *cat);

/* GET /v1/findings/{id}/instances. */
typedef struct {
    const char *state;
    const char *limit;
    const char *cursor;
} fa_instances_params;

typedef struct {
    const char *state; /* active (default), hidden or resolved; NULL: every state */
    int limit;
    char after_asset_id[2048]; /* "" : from the start (an instances cursor holds less) */
} fa_instances_page;

int fa_query_instances(fa_instances_page *out, const fa_instances_params *in,
                       const char **param, char *err, size_t errlen);

/* GET /v1/finding-types: the provider filter, NULL when absent. */
int fa_query_provider(const char *provider, const char **param, char *err, size_t errlen);

/* The 10 parameters of FA_SQL_FINDING_FILTERS (fa_store.h) from a checked and resolved
 * query; p8 is the statement's own $8. */
void fa_query_filter_params(const fa_findings_query *q, const char *p8, const char *out[10]);

/* GET /v1/instances: the finding filters (fa_query_findings, without cursor), plus state
 * (active by default; all) and a cursor of this list. */
typedef struct {
    const char *state;        /* NULL: every state */
    char after_finding[37];   /* "": from the start */
    char after_asset[2048];
} fa_all_instances_page;

int fa_query_all_instances(fa_all_instances_page *out, const char *state, const char *cursor,
                           const char **param, char *err, size_t errlen);

/* GET /v1/findings/{id}/history: limit and cursor. before_id 0: from the newest. */
typedef struct {
    int limit;
    long long before_id;
} fa_history_page;

int fa_query_history(fa_history_page *out, const char *limit, const char *cursor,
                     const char **param, char *err, size_t errlen);

/* GET /v1/trend: integration_id (optional UUID) and days (1..365, default 30). */
#define FA_TREND_DAYS_DEFAULT 30
#define FA_TREND_DAYS_MAX 365

typedef struct {
    const char *integration_id;
    int days;
} fa_trend_params;

int fa_query_trend(fa_trend_params *out, const char *integration_id, const char *days,
                   const char **param, char *err, size_t errlen);

/* The body of a bulk action, {"ids": [1..FA_BULK_IDS_MAX UUIDs]} and nothing else, as a
 * PostgreSQL array literal of the distinct ids (malloc'ed; *distinct: how many); NULL with
 * err (CASB_EINVALID) otherwise. */
#define FA_BULK_IDS_MAX 500
char *fa_query_ids(const json_t *body, long *distinct, char *err, size_t errlen);

#endif
