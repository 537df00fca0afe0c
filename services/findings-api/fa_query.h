#ifndef FA_QUERY_H
#define FA_QUERY_H

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
    const char *include_resolved;
    const char *limit;
    const char *cursor;
} fa_findings_params;

/* Fills q (whose account_id the caller sets) from in. Strings of q borrow from in; q->limit
 * is the page size and q->types_json stays NULL: a category filter is resolved against the
 * catalogue by the caller (in->category has been checked to be a category). */
int fa_query_findings(fa_findings_query *q, const fa_findings_params *in, const char **param,
                      char *err, size_t errlen);

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

#endif
