#include "fa_views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"
#include "casb/timeutil.h"

/* The views of list pages are written as text, straight from the rows: a page of 200
 * instances is 2,400 columns, and a jansson value for each (then serialised) was most of
 * findings-api's CPU in the query benchmark. Columns are found by name once per page. The
 * single-resource views parse the same text, so both forms are one. The rows come in
 * binary (fa_store.c) or text: each value is read by its column's format. */

/* A column as a JSON string, or null when SQL NULL. */
static json_t *col_str(const PGresult *res, int row, const char *column)
{
    const char *v = casb_db_get(res, row, column);

    return v ? json_string(v) : json_null();
}

/* A member of a view whose value is a column: member is the text before the value
 * (",\"key\":"). A string column becomes a JSON string (escaped), null for SQL NULL; a
 * uuid column the same without the escaping; a time column (a timestamptz, or seconds since
 * 1970) becomes RFC 3339 UTC; an integer column a JSON number and a JSON column its text,
 * with fallback for SQL NULL. */
typedef enum { COL_STRING, COL_UUID, COL_TIME, COL_INT, COL_JSON } column_kind;

typedef struct {
    const char *member;
    const char *column;
    column_kind kind;
    const char *fallback; /* raw columns only */
} column_member;

#define MAX_COLUMN_MEMBERS 16

static const column_member FINDING_HEAD[] = {
    {"{\"id\":", "id", COL_UUID, NULL},
    {",\"integration_id\":", "integration_id", COL_UUID, NULL},
    {",\"provider\":", "provider", COL_STRING, NULL},
    {",\"integration_name\":", "integration_name", COL_STRING, NULL},
};
/* After the finding_type object. */
static const column_member FINDING_TAIL[] = {
    {",\"severity\":", "severity", COL_STRING, NULL},
    {",\"status\":", "status", COL_STRING, NULL},
    {",\"instance_count\":", "instance_count", COL_INT, "0"},
    {",\"first_seen_at\":", "first_seen_at", COL_TIME, NULL},
    {",\"last_seen_at\":", "last_seen_at", COL_TIME, NULL},
};
static const column_member INSTANCE[] = {
    {"{\"id\":", "id", COL_UUID, NULL},
    {",\"finding_id\":", "finding_id", COL_UUID, NULL},
    {",\"integration_id\":", "integration_id", COL_UUID, NULL},
    {",\"asset\":{\"kind\":", "asset_kind", COL_STRING, NULL},
    {",\"id\":", "asset_id", COL_STRING, NULL},
    {",\"name\":", "asset_name", COL_STRING, NULL},
    {",\"url\":", "asset_url", COL_STRING, NULL},
    {"},\"state\":", "state", COL_STRING, NULL},
    {",\"first_seen_at\":", "first_seen_at", COL_TIME, NULL},
    {",\"last_seen_at\":", "last_seen_at", COL_TIME, NULL},
    {",\"last_scan_id\":", "last_scan_id", COL_UUID, NULL},
    {",\"resolved_at\":", "resolved_at", COL_TIME, NULL},
    /* The json's text, as PostgreSQL returns it: not parsed and serialised again. */
    {",\"details\":", "details", COL_JSON, "{}"},
};
/* An instance of GET /v1/instances: its finding's, after the instance's. */
static const column_member FINDING_OF_INSTANCE[] = {
    {",\"severity\":", "severity", COL_STRING, NULL},
    {",\"finding_status\":", "finding_status", COL_STRING, NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(COUNT(FINDING_HEAD) <= MAX_COLUMN_MEMBERS &&
                   COUNT(FINDING_TAIL) <= MAX_COLUMN_MEMBERS &&
                   COUNT(INSTANCE) <= MAX_COLUMN_MEMBERS &&
                   COUNT(FINDING_OF_INSTANCE) <= MAX_COLUMN_MEMBERS,
               "a view's column numbers fit page_columns");

/* A column of a page: its number in the result (-1 for one it lacks: SQL NULL), and its
 * format and type, read once for all the page's rows. */
typedef struct {
    int col;
    casb_db_format format;
} view_column;

static view_column view_column_of(const PGresult *res, const char *name)
{
    view_column c = {PQfnumber(res, name), {0, 0}};

    c.format = casb_db_column_format(res, c.col);
    return c;
}

static void find_columns(view_column *cols, const column_member *members, size_t n,
                         const PGresult *res)
{
    for (size_t i = 0; i < n; i++)
        cols[i] = view_column_of(res, members[i].column);
}

static const char *value_at(const PGresult *res, int row, int col)
{
    return col < 0 || PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int bool_at(const PGresult *res, int row, view_column c)
{
    const char *v = value_at(res, row, c.col);

    return casb_db_decode_bool(c.format, v, v ? PQgetlength(res, row, c.col) : 0);
}

/* The JSON string of a time, or null. */
static void put_time(casb_text *t, casb_db_format f, const char *v, int len)
{
    char buf[40];
    long long secs;

    if (casb_db_decode_time(f, v, len, &secs) != 0) {
        casb_text_append(t, "null", 4);
        return;
    }
    buf[0] = '"';
    casb_time_rfc3339(buf + 1, sizeof buf - 2, (time_t)secs);
    strcat(buf, "\"");
    casb_text_append_str(t, buf);
}

static void put_uuid(casb_text *t, casb_db_format f, const char *v, int len)
{
    char id[37];

    if (!casb_db_decode_uuid(f, v, len, id)) {
        casb_text_append(t, "null", 4);
        return;
    }
    casb_text_append(t, "\"", 1);
    casb_text_append(t, id, 36);
    casb_text_append(t, "\"", 1);
}

static void put_int(casb_text *t, casb_db_format f, const char *v, int len, const char *fallback)
{
    char buf[24];
    long long n;

    if (casb_db_decode_int(f, v, len, &n) != 0) {
        casb_text_append_str(t, fallback);
        return;
    }
    casb_text_append(t, buf, (size_t)snprintf(buf, sizeof buf, "%lld", n));
}

/* header: a row whose values stand in for the row's SQL NULLs (fa_store_list_instances'
 * finding row, NULL where the instances have values), or -1. */
static void put_members(casb_text *t, const column_member *members, const view_column *cols,
                        size_t n, const PGresult *res, int row, int header)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = value_at(res, row, cols[i].col);
        int from = row, len;

        if (!v && header >= 0) {
            from = header;
            v = value_at(res, header, cols[i].col);
        }
        len = v ? PQgetlength(res, from, cols[i].col) : 0;

        casb_text_append_str(t, members[i].member);
        switch (members[i].kind) {
        case COL_JSON:
            casb_text_append_str(t, v ? v : members[i].fallback);
            break;
        case COL_INT:
            put_int(t, cols[i].format, v, len, members[i].fallback);
            break;
        case COL_TIME:
            put_time(t, cols[i].format, v, len);
            break;
        case COL_UUID:
            put_uuid(t, cols[i].format, v, len);
            break;
        case COL_STRING:
            casb_text_append_json_str(t, v);
            break;
        }
    }
}

static void finding_type_ref(casb_text *t, const fa_finding_type *ft, const char *type_id,
                             const char *severity)
{
    /* A type that left the catalogue after the finding was stored is still shown. */
    casb_text_append_str(t, ",\"finding_type\":{\"id\":");
    casb_text_append_json_str(t, ft ? ft->id : type_id);
    casb_text_append_str(t, ",\"title\":");
    casb_text_append_json_str(t, ft ? ft->title : type_id);
    casb_text_append_str(t, ",\"severity\":");
    casb_text_append_json_str(t, ft ? ft->severity : severity);
    casb_text_append_str(t, ",\"category\":");
    casb_text_append_json_str(t, ft ? ft->category : NULL);
    casb_text_append(t, "}", 1);
}

/* The columns of a page of findings or instances in res. */
typedef struct {
    view_column head[MAX_COLUMN_MEMBERS], tail[MAX_COLUMN_MEMBERS];
    int finding_type, severity;
    view_column severity_tuned;
    int header; /* instances: the row standing in for their NULLs (put_members), or -1 */
} page_columns;

static void finding_columns(page_columns *c, const PGresult *res)
{
    find_columns(c->head, FINDING_HEAD, COUNT(FINDING_HEAD), res);
    find_columns(c->tail, FINDING_TAIL, COUNT(FINDING_TAIL), res);
    c->finding_type = PQfnumber(res, "finding_type");
    c->severity = PQfnumber(res, "severity");
    c->severity_tuned = view_column_of(res, "severity_tuned");
}

/* The finding of row; detailed adds the catalogue's description, impact, remediation and
 * evidence, serialised once per type (fa_finding_type.detail_json). */
static int finding_text(casb_text *t, const page_columns *c, const PGresult *res, int row,
                        const fa_catalogue *cat, int detailed)
{
    const char *type_id = value_at(res, row, c->finding_type);
    const fa_finding_type *ft = fa_catalogue_find(cat, type_id);

    put_members(t, FINDING_HEAD, c->head, COUNT(FINDING_HEAD), res, row, -1);
    finding_type_ref(t, ft, type_id, value_at(res, row, c->severity));
    put_members(t, FINDING_TAIL, c->tail, COUNT(FINDING_TAIL), res, row, -1);
    /* A severity a user tuned survives scans; reset puts back the catalogue's. */
    casb_text_append_str(t, bool_at(res, row, c->severity_tuned) ? ",\"severity_tuned\":true"
                                                                 : ",\"severity_tuned\":false");
    casb_text_append_str(t, ",\"default_severity\":");
    casb_text_append_json_str(t, ft ? ft->severity : NULL);
    if (detailed && ft && ft->detail_json[0]) {
        casb_text_append(t, ",", 1);
        casb_text_append_str(t, ft->detail_json);
    }
    return casb_text_append(t, "}", 1);
}

static void instance_columns(page_columns *c, const PGresult *res, int header)
{
    c->header = header;
    find_columns(c->head, INSTANCE, COUNT(INSTANCE), res);
    find_columns(c->tail, FINDING_OF_INSTANCE, COUNT(FINDING_OF_INSTANCE), res);
    c->finding_type = PQfnumber(res, "finding_type");
    c->severity = PQfnumber(res, "severity");
}

/* The instance of row; of_finding adds its finding's type, severity and status. */
static int instance_text(casb_text *t, const page_columns *c, const PGresult *res, int row,
                         const fa_catalogue *cat, int of_finding)
{
    put_members(t, INSTANCE, c->head, COUNT(INSTANCE), res, row, c->header);
    if (of_finding) {
        const char *type_id = value_at(res, row, c->finding_type);

        finding_type_ref(t, fa_catalogue_find(cat, type_id), type_id,
                         value_at(res, row, c->severity));
        put_members(t, FINDING_OF_INSTANCE, c->tail, COUNT(FINDING_OF_INSTANCE), res, row, -1);
    }
    return casb_text_append(t, "}", 1);
}

/* Parses the text a view wrote (NULL when out of memory). */
static json_t *parsed(casb_text *t, int rc)
{
    json_t *v = rc == 0 ? casb_json_parse(t->data, t->len, 0, NULL, 0) : NULL;

    casb_text_free(t);
    return v;
}

json_t *fa_view_finding(const PGresult *res, int row, const fa_catalogue *cat, int detailed)
{
    casb_text t = {0};
    page_columns c;

    finding_columns(&c, res);
    return parsed(&t, finding_text(&t, &c, res, row, cat, detailed));
}

json_t *fa_view_instance(const PGresult *res, int row)
{
    casb_text t = {0};
    page_columns c;

    instance_columns(&c, res, -1);
    return parsed(&t, instance_text(&t, &c, res, row, NULL, 0));
}

int fa_view_findings_append(casb_text *out, const PGresult *res, int n,
                            const fa_catalogue *cat)
{
    page_columns c;
    int rc = 0;

    finding_columns(&c, res);
    for (int i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            casb_text_append(out, ",", 1);
        rc = finding_text(out, &c, res, i, cat, 1);
    }
    return rc;
}

/* n instances of res from row first, comma-separated; header: see page_columns;
 * of_finding: see instance_text. */
static int instances_append(casb_text *out, const PGresult *res, int first, int n, int header,
                            const fa_catalogue *cat, int of_finding)
{
    page_columns c;
    int rc = 0;

    instance_columns(&c, res, header);
    for (int i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            casb_text_append(out, ",", 1);
        rc = instance_text(out, &c, res, first + i, cat, of_finding);
    }
    return rc;
}

int fa_view_instances_append(casb_text *out, const PGresult *res, int n)
{
    return instances_append(out, res, 1, n, 0, NULL, 0);
}

int fa_view_instances_of_append(casb_text *out, const PGresult *res, int n,
                                const fa_catalogue *cat)
{
    return instances_append(out, res, 0, n, -1, cat, 1);
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

/* Adds a by-type row of the summary counts to the severity and category totals. */
static void add_type_counts(json_t *by_severity, json_t *by_category, const PGresult *counts,
                            int r, const fa_catalogue *cat)
{
    const fa_finding_type *t = fa_catalogue_find(cat, casb_db_get(counts, r, "finding_type"));
    long long nf = casb_db_get_int(counts, r, "findings", 0);
    long long ni = casb_db_get_int(counts, r, "instances", 0);
    json_t *sev = json_object_get(by_severity, casb_db_get(counts, r, "severity"));

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
}

json_t *fa_view_summary(const PGresult *counts, const PGresult *integrations,
                        const fa_catalogue *cat)
{
    static const char *const healths[] = {"initializing", "healthy", "unhealthy",
                                          "needs_reauthorization", "paused", NULL};
    static const char *const cats[] = {"misconfiguration", "user_activity", "data_exposure",
                                       "shadow_it", NULL};
    json_t *by_severity = json_object();
    json_t *by_category = json_object();
    json_t *by_health = json_object();
    json_t *by_integration = json_array();
    json_t *of_integration = json_object(); /* integration id -> row of counts */
    long long total_findings = 0, total_instances = 0;

    if (!by_severity || !by_category || !by_health || !by_integration || !of_integration)
        goto fail;
    for (int i = 0; i < 4; i++)
        json_object_set_new(by_severity, fa_severity_name(i), counts_new());
    for (int i = 0; cats[i]; i++)
        json_object_set_new(by_category, cats[i], counts_new());
    for (int i = 0; healths[i]; i++)
        json_object_set_new(by_health, healths[i], json_integer(0));

    for (int r = 0; r < PQntuples(counts); r++) {
        const char *integration = casb_db_get(counts, r, "integration_id");

        if (integration) {
            json_object_set_new(of_integration, integration, json_integer(r));
            continue;
        }
        add_type_counts(by_severity, by_category, counts, r, cat);
        total_findings += casb_db_get_int(counts, r, "findings", 0);
        total_instances += casb_db_get_int(counts, r, "instances", 0);
    }
    for (int r = 0; r < PQntuples(integrations); r++) {
        const char *health = casb_db_get(integrations, r, "health");
        json_t *h = json_object_get(by_health, health);
        json_t *at = json_object_get(of_integration, casb_db_get(integrations, r, "id"));
        int c = at ? (int)json_integer_value(at) : -1;
        json_t *one = json_pack(
            "{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "integration_id",
            casb_db_get(integrations, r, "id"), "name", casb_db_get(integrations, r, "name"),
            "provider", casb_db_get(integrations, r, "provider"), "health", health,
            "last_scan_at", col_str(integrations, r, "last_scan_at"), "last_scan_status",
            col_str(integrations, r, "last_scan_status"), "findings",
            (json_int_t)(c < 0 ? 0 : casb_db_get_int(counts, c, "findings", 0)), "instances",
            (json_int_t)(c < 0 ? 0 : casb_db_get_int(counts, c, "instances", 0)));
        if (h)
            json_integer_set(h, json_integer_value(h) + 1);
        if (!one || json_array_append_new(by_integration, one) != 0)
            goto fail;
    }
    json_decref(of_integration);
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:I}", "by_severity", by_severity,
                     "by_integration", by_integration, "by_category", by_category,
                     "integrations_by_health", by_health, "total_findings",
                     (json_int_t)total_findings, "total_instances", (json_int_t)total_instances);
fail:
    json_decref(by_severity);
    json_decref(by_category);
    json_decref(by_health);
    json_decref(by_integration);
    json_decref(of_integration);
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
