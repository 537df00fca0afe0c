#include "fa_views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"

/* A column as a JSON string, or null when SQL NULL. */
static json_t *col_str(const PGresult *res, int row, const char *column)
{
    const char *v = casb_db_get(res, row, column);

    return v ? json_string(v) : json_null();
}

static json_t *finding_type_ref(const fa_finding_type *t, const char *type_id,
                                const char *severity)
{
    if (!t) {
        /* The type left the catalogue after the finding was stored: still show it. */
        return json_pack("{s:s, s:s, s:s, s:n}", "id", type_id, "title", type_id, "severity",
                         severity, "category");
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "id", t->id, "title", t->title, "severity",
                     t->severity, "category", t->category);
}

json_t *fa_view_finding(const PGresult *res, int row, const fa_catalogue *cat, int detailed)
{
    const char *type_id = casb_db_get(res, row, "finding_type");
    const char *severity = casb_db_get(res, row, "severity");
    const fa_finding_type *t = fa_catalogue_find(cat, type_id);
    json_t *f;

    f = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:o, s:o}", "id",
                  casb_db_get(res, row, "id"), "integration_id",
                  casb_db_get(res, row, "integration_id"), "provider",
                  casb_db_get(res, row, "provider"), "integration_name",
                  casb_db_get(res, row, "integration_name"), "finding_type",
                  finding_type_ref(t, type_id, severity), "severity", severity, "status",
                  casb_db_get(res, row, "status"), "instance_count",
                  (json_int_t)casb_db_get_int(res, row, "instance_count", 0), "first_seen_at",
                  col_str(res, row, "first_seen_at"), "last_seen_at",
                  col_str(res, row, "last_seen_at"));
    if (f) {
        /* A severity a user tuned survives scans; reset puts back the catalogue's. */
        json_object_set_new(f, "severity_tuned",
                            json_boolean(casb_db_get_bool(res, row, "severity_tuned")));
        json_object_set_new(f, "default_severity", t && t->severity
                                                       ? json_string(t->severity)
                                                       : json_null());
    }
    if (!f || !detailed || !t)
        return f;
    for (int i = 0; FA_DETAIL_MEMBERS[i]; i++) {
        json_t *v = json_object_get(t->doc, FA_DETAIL_MEMBERS[i]);
        if (v)
            json_object_set(f, FA_DETAIL_MEMBERS[i], v);
    }
    return f;
}

int fa_view_finding_append(casb_text *out, const PGresult *res, int row,
                           const fa_catalogue *cat)
{
    const fa_finding_type *t = fa_catalogue_find(cat, casb_db_get(res, row, "finding_type"));
    json_t *f = fa_view_finding(res, row, cat, 0);
    int rc = casb_text_append_object_with(out, f, t ? t->detail_json : "");

    json_decref(f);
    return rc;
}

/* An instance row without its details. */
static json_t *instance_without_details(const PGresult *res, int row)
{
    json_t *asset;

    asset = json_pack("{s:o, s:o, s:o, s:o}", "kind", col_str(res, row, "asset_kind"), "id",
                      col_str(res, row, "asset_id"), "name", col_str(res, row, "asset_name"),
                      "url", col_str(res, row, "asset_url"));
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     col_str(res, row, "id"), "finding_id", col_str(res, row, "finding_id"),
                     "integration_id", col_str(res, row, "integration_id"), "asset",
                     asset ? asset : json_null(), "state", col_str(res, row, "state"),
                     "first_seen_at", col_str(res, row, "first_seen_at"), "last_seen_at",
                     col_str(res, row, "last_seen_at"), "last_scan_id",
                     col_str(res, row, "last_scan_id"), "resolved_at",
                     col_str(res, row, "resolved_at"));
}

json_t *fa_view_instance(const PGresult *res, int row)
{
    const char *details_s = casb_db_get(res, row, "details");
    json_t *details = details_s ? json_loads(details_s, 0, NULL) : NULL;
    json_t *v = instance_without_details(res, row);

    if (v)
        json_object_set_new(v, "details", details ? details : json_object());
    else
        json_decref(details);
    return v;
}

int fa_view_instance_append(casb_text *out, const PGresult *res, int row)
{
    const char *details = casb_db_get(res, row, "details"); /* jsonb: JSON text */
    json_t *v = instance_without_details(res, row);
    int rc = casb_text_append_object_with_raw(out, v, "details", details ? details : "{}");

    json_decref(v);
    return rc;
}

static json_t *counts_new(void)
{
    return json_pack("{s:i, s:i}", "findings", 0, "instances", 0);
}

static void counts_add(json_t *counts, long long findings, long long instances)
{
    json_t *f = json_object_get(counts, "findings");
    json_t *i = json_object_get(counts, "instances");

    json_integer_set(f, json_integer_value(f) + findings);
    json_integer_set(i, json_integer_value(i) + instances);
}

json_t *fa_view_summary(const PGresult *by_type, const PGresult *by_integration,
                        const fa_catalogue *cat)
{
    static const char *const healths[] = {"initializing", "healthy", "unhealthy",
                                          "needs_reauthorization", "paused", NULL};
    static const char *const cats[] = {"misconfiguration", "user_activity", "data_exposure",
                                       "shadow_it", NULL};
    json_t *by_severity = json_object();
    json_t *by_category = json_object();
    json_t *by_health = json_object();
    json_t *integrations = json_array();
    long long total_findings = 0, total_instances = 0;

    if (!by_severity || !by_category || !by_health || !integrations)
        goto fail;
    for (int i = 0; i < 4; i++)
        json_object_set_new(by_severity, fa_severity_name(i), counts_new());
    for (int i = 0; cats[i]; i++)
        json_object_set_new(by_category, cats[i], counts_new());
    for (int i = 0; healths[i]; i++)
        json_object_set_new(by_health, healths[i], json_integer(0));

    for (int r = 0; r < PQntuples(by_type); r++) {
        const char *type = casb_db_get(by_type, r, "finding_type");
        const fa_finding_type *t = fa_catalogue_find(cat, type);
        long long nf = casb_db_get_int(by_type, r, "findings", 0);
        long long ni = casb_db_get_int(by_type, r, "instances", 0);
        json_t *sev = json_object_get(by_severity, casb_db_get(by_type, r, "severity"));
        if (sev)
            counts_add(sev, nf, ni);
        if (t) {
            json_t *c = json_object_get(by_category, t->category);
            if (!c) {
                c = counts_new();
                json_object_set_new(by_category, t->category, c);
            }
            counts_add(c, nf, ni);
        }
        total_findings += nf;
        total_instances += ni;
    }
    for (int r = 0; r < PQntuples(by_integration); r++) {
        const char *health = casb_db_get(by_integration, r, "health");
        json_t *h = json_object_get(by_health, health);
        json_t *one = json_pack(
            "{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "integration_id",
            casb_db_get(by_integration, r, "id"), "name", casb_db_get(by_integration, r, "name"),
            "provider", casb_db_get(by_integration, r, "provider"), "health", health,
            "last_scan_at", col_str(by_integration, r, "last_scan_at"), "last_scan_status",
            col_str(by_integration, r, "last_scan_status"), "findings",
            (json_int_t)casb_db_get_int(by_integration, r, "findings", 0), "instances",
            (json_int_t)casb_db_get_int(by_integration, r, "instances", 0));
        if (h)
            json_integer_set(h, json_integer_value(h) + 1);
        if (!one || json_array_append_new(integrations, one) != 0)
            goto fail;
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:I}", "by_severity", by_severity,
                     "by_integration", integrations, "by_category", by_category,
                     "integrations_by_health", by_health, "total_findings",
                     (json_int_t)total_findings, "total_instances", (json_int_t)total_instances);
fail:
    json_decref(by_severity);
    json_decref(by_category);
    json_decref(by_health);
    json_decref(integrations);
    return NULL;
}

char *fa_cursor_findings_encode(const fa_findings_cursor *c)
{
    char buf[128];

    snprintf(buf, sizeof(buf), "f2:%d:%lld:%lld:%s", c->sort, c->k1, c->k2, c->id);
    return casb_base64url_encode(buf, strlen(buf));
}

int fa_cursor_findings_decode(const char *cursor, fa_findings_cursor *out)
{
    size_t n = 0;
    unsigned char *raw = casb_base64url_decode(cursor, &n);
    char text[128];
    char idbuf[64];
    fa_findings_cursor c;
    int used = 0;
    int rc = -1;

    if (!raw)
        return -1;
    if (n == 0 || n >= sizeof(text))
        goto out;
    memcpy(text, raw, n);
    text[n] = '\0';
    if (sscanf(text, "f2:%d:%lld:%lld:%63[0-9a-f-]%n", &c.sort, &c.k1, &c.k2, idbuf, &used) !=
            4 ||
        (size_t)used != n)
        goto out;
    if (c.sort < FA_SORT_SEVERITY || c.sort > FA_SORT_LAST_SEEN || !casb_uuid_valid(idbuf))
        goto out;
    memcpy(c.id, idbuf, sizeof(c.id)); /* a valid UUID: 36 characters and the NUL */
    *out = c;
    rc = 0;
out:
    free(raw);
    return rc;
}

char *fa_cursor_instances_encode(const char *asset_id)
{
    char *text = NULL;
    char *out;

    if (asprintf(&text, "i1:%s", asset_id) < 0)
        return NULL;
    out = casb_base64url_encode(text, strlen(text));
    free(text);
    return out;
}

char *fa_cursor_instances_decode(const char *cursor)
{
    size_t n = 0;
    unsigned char *raw = casb_base64url_decode(cursor, &n);
    char *out = NULL;

    if (!raw)
        return NULL;
    if (n > 3 && n <= 2048 && memcmp(raw, "i1:", 3) == 0 && !memchr(raw, '\0', n)) {
        out = strndup((const char *)raw + 3, n - 3);
    }
    free(raw);
    return out;
}

json_t *fa_view_event(const PGresult *res, int row)
{
    const char *details_s = casb_db_get(res, row, "details");
    json_t *details = details_s ? json_loads(details_s, 0, NULL) : NULL;

    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)casb_db_get_int(res, row, "id", 0), "event",
                     col_str(res, row, "event"), "at", col_str(res, row, "at"), "actor",
                     col_str(res, row, "actor"), "scan_id", col_str(res, row, "scan_id"),
                     "instance_id", col_str(res, row, "instance_id"), "asset_name",
                     col_str(res, row, "asset_name"), "details",
                     details ? details : json_null());
}

json_t *fa_view_trend(const PGresult *res)
{
    json_t *days = json_array();

    for (int i = 0; days && i < PQntuples(res); i++)
        json_array_append_new(
            days, json_pack("{s:o, s:I, s:I, s:I, s:I}", "day", col_str(res, i, "day"),
                            "critical", (json_int_t)casb_db_get_int(res, i, "critical", 0),
                            "high", (json_int_t)casb_db_get_int(res, i, "high", 0), "medium",
                            (json_int_t)casb_db_get_int(res, i, "medium", 0), "low",
                            (json_int_t)casb_db_get_int(res, i, "low", 0)));
    return json_pack("{s:o}", "days", days ? days : json_array());
}

char *fa_cursor_events_encode(long long id)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "e1:%lld", id);
    return casb_base64url_encode(buf, strlen(buf));
}

long long fa_cursor_events_decode(const char *cursor)
{
    size_t n = 0;
    unsigned char *raw = casb_base64url_decode(cursor, &n);
    char text[32];
    long long id = -1;
    int used = 0;

    if (raw && n > 3 && n < sizeof(text)) {
        memcpy(text, raw, n);
        text[n] = '\0';
        if (sscanf(text, "e1:%lld%n", &id, &used) != 1 || (size_t)used != n || id <= 0)
            id = -1;
    }
    free(raw);
    return id;
}

char *fa_cursor_all_instances_encode(const char *finding_id, const char *asset_id)
{
    char *text = NULL;
    char *out;

    if (asprintf(&text, "a1:%s:%s", finding_id, asset_id) < 0)
        return NULL;
    out = casb_base64url_encode(text, strlen(text));
    free(text);
    return out;
}

int fa_cursor_all_instances_decode(const char *cursor, char finding_id[37], char *asset_id,
                                   size_t asset_len)
{
    size_t n = 0;
    unsigned char *raw = casb_base64url_decode(cursor, &n);
    int rc = -1;

    if (raw && n > 3 + 36 + 1 && memcmp(raw, "a1:", 3) == 0 && raw[39] == ':' &&
        !memchr(raw, '\0', n) && n - 40 < asset_len) {
        memcpy(finding_id, raw + 3, 36);
        finding_id[36] = '\0';
        memcpy(asset_id, raw + 40, n - 40);
        asset_id[n - 40] = '\0';
        rc = casb_uuid_valid(finding_id) ? 0 : -1;
    }
    free(raw);
    return rc;
}

/* Adds the instance's finding type, severity and finding status to v (NULL-safe). */
static json_t *with_finding(json_t *v, const PGresult *res, int row, const fa_catalogue *cat)
{
    const char *type_id = casb_db_get(res, row, "finding_type");
    const char *severity = casb_db_get(res, row, "severity");

    if (v) {
        json_object_set_new(v, "finding_type",
                            finding_type_ref(fa_catalogue_find(cat, type_id), type_id,
                                             severity));
        json_object_set_new(v, "severity", json_string(severity));
        json_object_set_new(v, "finding_status", col_str(res, row, "finding_status"));
    }
    return v;
}

json_t *fa_view_instance_of(const PGresult *res, int row, const fa_catalogue *cat)
{
    return with_finding(fa_view_instance(res, row), res, row, cat);
}

int fa_view_instance_of_append(casb_text *out, const PGresult *res, int row,
                               const fa_catalogue *cat)
{
    const char *details = casb_db_get(res, row, "details");
    json_t *v = with_finding(instance_without_details(res, row), res, row, cat);
    int rc = casb_text_append_object_with_raw(out, v, "details", details ? details : "{}");

    json_decref(v);
    return rc;
}
