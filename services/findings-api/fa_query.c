#include "fa_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/query.h"
#include "fa_views.h"

#define PROVIDER_ID_MAX_CHARS 32 /* ^[a-z][a-z0-9_]{0,31}$, as in proto/messages */
#define TYPE_ID_MAX_CHARS 128    /* the catalogue's rule for type ids */

static int refuse(const char **param, const char *name, char *err, size_t errlen,
                  const char *expected)
{
    *param = name;
    return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", name, expected);
}

static int one_of(const char *v, const char *const *set)
{
    for (size_t i = 0; set[i]; i++) {
        if (strcmp(v, set[i]) == 0)
            return 1;
    }
    return 0;
}

static int provider_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > PROVIDER_ID_MAX_CHARS || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    }
    return 1;
}

static int type_id_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TYPE_ID_MAX_CHARS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '.'))
            return 0;
    }
    return 1;
}

static int limit_parse(const char *s, int *out, const char **param, char *err, size_t errlen)
{
    long v = 0;

    if (casb_query_limit(s, &v, err, errlen) != 0) {
        *param = "limit";
        return CASB_EINVALID;
    }
    *out = (int)v;
    return 0;
}

int fa_query_provider(const char *provider, const char **param, char *err, size_t errlen)
{
    *param = NULL;
    if (provider && !provider_valid(provider))
        return refuse(param, "provider", err, errlen, "expected a provider id such as github");
    return 0;
}

/* The ILIKE pattern of a text search: %text% with the pattern's own characters (% _ \)
 * escaped, so that the text matches literally. -1 when the text is empty, too long or has
 * control characters. */
static int search_pattern(const char *text, char *out, size_t outlen)
{
    size_t n = strlen(text), o = 0;

    if (n == 0 || n > FA_SEARCH_MAX_BYTES || outlen < 2 * n + 3)
        return -1;
    out[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return -1;
        if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
            out[o++] = '\\';
        out[o++] = text[i];
    }
    out[o++] = '%';
    out[o] = '\0';
    return 0;
}

int fa_query_findings(fa_findings_query *q, const fa_findings_params *in, const char **param,
                      char *err, size_t errlen)
{
    static const char *const statuses[] = {"active", "ignored", NULL};
    static const char *const booleans[] = {"true", "false", NULL};
    const char *account_id = q->account_id;

    memset(q, 0, sizeof(*q));
    q->account_id = account_id;
    *param = NULL;
    if (in->integration_id && !casb_uuid_valid(in->integration_id))
        return refuse(param, "integration_id", err, errlen, "expected an integration's UUID");
    if (fa_query_provider(in->provider, param, err, errlen) != 0)
        return CASB_EINVALID;
    if (in->severity && fa_severity_rank(in->severity) < 0)
        return refuse(param, "severity", err, errlen, "expected critical, high, medium or low");
    if (in->status && !one_of(in->status, statuses))
        return refuse(param, "status", err, errlen, "expected active or ignored");
    if (in->category && !fa_category_valid(in->category))
        return refuse(param, "category", err, errlen,
                      "expected misconfiguration, user_activity, data_exposure or shadow_it");
    if (in->finding_type && !type_id_valid(in->finding_type))
        return refuse(param, "finding_type", err, errlen,
                      "expected a finding type id such as github.org.member_2fa_disabled");
    if (in->q && search_pattern(in->q, q->search_like_buf, sizeof(q->search_like_buf)) != 0)
        return refuse(param, "q", err, errlen,
                      "expected 1 to 100 bytes of text without control characters");
    if (in->q)
        q->search_like = q->search_like_buf;
    if (in->include_resolved && !one_of(in->include_resolved, booleans))
        return refuse(param, "include_resolved", err, errlen, "expected true or false");
    if (limit_parse(in->limit, &q->limit, param, err, errlen) != 0)
        return CASB_EINVALID;
    if (in->sort) {
        static const char *const sorts[] = {"severity", "instance_count", "last_seen", NULL};
        int i;

        for (i = 0; sorts[i] && strcmp(sorts[i], in->sort) != 0; i++)
            ;
        if (!sorts[i])
            return refuse(param, "sort", err, errlen,
                          "expected severity, instance_count or last_seen");
        q->sort = i;
    }
    if (in->cursor) {
        if (fa_cursor_findings_decode(in->cursor, &q->cursor) != 0 || q->cursor.sort != q->sort)
            return refuse(param, "cursor", err, errlen, "not a next_cursor of this list");
        q->has_cursor = 1;
    }
    q->integration_id = in->integration_id;
    q->provider = in->provider;
    q->severity = in->severity;
    q->status = in->status;
    q->finding_type = in->finding_type;
    q->include_resolved = in->include_resolved && strcmp(in->include_resolved, "true") == 0;
    return 0;
}

int fa_query_instances(fa_instances_page *out, const fa_instances_params *in,
                       const char **param, char *err, size_t errlen)
{
    static const char *const states[] = {"active", "hidden", "resolved", "all", NULL};
    char *after = NULL;

    memset(out, 0, sizeof(*out));
    *param = NULL;
    out->state = "active";
    if (in->state) {
        if (!one_of(in->state, states))
            return refuse(param, "state", err, errlen,
                          "expected active, hidden, resolved or all");
        out->state = strcmp(in->state, "all") == 0 ? NULL : in->state;
    }
    if (limit_parse(in->limit, &out->limit, param, err, errlen) != 0)
        return CASB_EINVALID;
    if (in->cursor) {
        after = fa_cursor_instances_decode(in->cursor);
        if (!after || strlen(after) >= sizeof(out->after_asset_id)) {
            free(after);
            return refuse(param, "cursor", err, errlen, "not a next_cursor of this list");
        }
        snprintf(out->after_asset_id, sizeof(out->after_asset_id), "%s", after);
        free(after);
    }
    return 0;
}

int fa_query_history(fa_history_page *out, const char *limit, const char *cursor,
                     const char **param, char *err, size_t errlen)
{
    out->before_id = 0;
    if (limit_parse(limit, &out->limit, param, err, errlen) != 0)
        return CASB_EINVALID;
    if (cursor) {
        out->before_id = fa_cursor_events_decode(cursor);
        if (out->before_id <= 0)
            return refuse(param, "cursor", err, errlen, "not a cursor of this list");
    }
    return 0;
}

int fa_query_trend(fa_trend_params *out, const char *integration_id, const char *days,
                   const char **param, char *err, size_t errlen)
{
    char *end = NULL;
    long v;

    out->integration_id = integration_id;
    out->days = FA_TREND_DAYS_DEFAULT;
    if (integration_id && !casb_uuid_valid(integration_id))
        return refuse(param, "integration_id", err, errlen, "expected a UUID");
    if (days) {
        v = strtol(days, &end, 10);
        if (!end || *end || v < 1 || v > FA_TREND_DAYS_MAX)
            return refuse(param, "days", err, errlen, "expected an integer from 1 to 365");
        out->days = (int)v;
    }
    return 0;
}

/* 1 when ids[0..i) holds the same UUID as ids[i] (at most FA_BULK_IDS_MAX of them). */
static int seen_before(const json_t *ids, size_t i)
{
    const char *id = json_string_value(json_array_get(ids, i));

    for (size_t j = 0; j < i; j++)
        if (strcasecmp(json_string_value(json_array_get(ids, j)), id) == 0)
            return 1;
    return 0;
}

char *fa_query_ids(const json_t *body, long *distinct, char *err, size_t errlen)
{
    const json_t *ids = json_object_get(body, "ids");
    const char *key;
    json_t *v;
    size_t i, n = json_array_size(ids);
    char *out, *p;

    *distinct = 0;
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "ids") != 0) {
            casb_fail(err, errlen, CASB_EINVALID, "%.*s: unknown field",
                      casb_utf8_prefix_len(key, 64), key);
            return NULL;
        }
    }
    if (!json_is_array(ids) || n == 0 || n > FA_BULK_IDS_MAX) {
        casb_fail(err, errlen, CASB_EINVALID,
                  "ids: expected an array of 1 to %d ids", FA_BULK_IDS_MAX);
        return NULL;
    }
    json_array_foreach(ids, i, v) {
        if (!json_is_string(v) || !casb_uuid_valid(json_string_value(v))) {
            casb_fail(err, errlen, CASB_EINVALID, "ids[%zu]: expected a UUID", i);
            return NULL;
        }
    }
    /* A PostgreSQL array literal of the distinct validated UUIDs, "{id,id,...}", bound as a
     * parameter. A repeated id counts once, so that not_found stays exact. */
    out = malloc(n * 37 + 2);
    if (!out) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        return NULL;
    }
    p = out;
    *p++ = '{';
    json_array_foreach(ids, i, v) {
        if (seen_before(ids, i))
            continue;
        if (*distinct > 0)
            *p++ = ',';
        memcpy(p, json_string_value(v), 36);
        p += 36;
        (*distinct)++;
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

/* The JSON text of an id array (stolen), malloc'ed; NULL when out of memory. */
static char *dump_ids(json_t *ids)
{
    char *s = ids ? json_dumps(ids, JSON_COMPACT) : NULL;

    json_decref(ids);
    return s;
}

int fa_query_resolve(fa_findings_query *q, const fa_findings_params *in,
                     const fa_catalogue *cat)
{
    if (in->category) {
        q->types_owned = dump_ids(fa_catalogue_ids_in_category(cat, in->category));
        if (!q->types_owned)
            return -1;
        q->types_json = q->types_owned;
    }
    if (in->q) {
        q->search_types_json = dump_ids(fa_catalogue_ids_with_title(cat, in->q));
        if (!q->search_types_json)
            return -1;
    }
    return 0;
}

void fa_query_filter_params(const fa_findings_query *q, const char *p8, const char *out[10])
{
    out[0] = q->account_id;
    out[1] = q->integration_id;
    out[2] = q->provider;
    out[3] = q->severity;
    out[4] = q->status;
    out[5] = q->types_json;
    out[6] = q->finding_type;
    out[7] = p8;
    out[8] = q->search_like;
    out[9] = q->search_types_json;
}

int fa_query_all_instances(fa_all_instances_page *out, const char *state, const char *cursor,
                           const char **param, char *err, size_t errlen)
{
    static const char *const states[] = {"active", "hidden", "resolved", "all", NULL};

    memset(out, 0, sizeof(*out));
    out->state = "active";
    if (state) {
        if (!one_of(state, states))
            return refuse(param, "state", err, errlen,
                          "expected active, hidden, resolved or all");
        out->state = strcmp(state, "all") == 0 ? NULL : state;
    }
    if (cursor && fa_cursor_all_instances_decode(cursor, out->after_finding,
                                                 out->after_asset,
                                                 sizeof(out->after_asset)) != 0)
        return refuse(param, "cursor", err, errlen, "not a next_cursor of this list");
    return 0;
}
