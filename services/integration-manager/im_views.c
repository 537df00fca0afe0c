#include "im_views.h"

#include <stdio.h>

#include "casb/db.h"
#include "casb/json.h"

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A jsonb column's text as JSON; null when SQL NULL or (never expected) unparsable. */
static json_t *jsonb_column(const PGresult *res, int row, const char *column)
{
    const char *text = casb_db_get(res, row, column);
    json_t *v = NULL;

    if (!text)
        return json_null();
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

/* The last_scan member: exactly its documented keys, whatever the column carried. */
static json_t *last_scan(const PGresult *res, int row)
{
    static const char *const keys[] = {"id", "status", "reason", "finished_at", "error", NULL};
    json_t *v = jsonb_column(res, row, "last_scan");
    json_t *o = NULL;

    if (!json_is_object(v)) {
        json_decref(v);
        return json_null();
    }
    o = json_object();
    for (size_t i = 0; keys[i]; i++) {
        json_t *m = json_object_get(v, keys[i]);

        json_object_set(o, keys[i], json_is_string(m) ? m : json_null());
    }
    json_decref(v);
    return o;
}

json_t *im_view_integration(const PGresult *res, int row)
{
    json_t *o = json_object();
    json_t *config = jsonb_column(res, row, "config");

    if (!json_is_object(config)) {
        json_decref(config);
        config = json_object();
    }
    json_object_set_new(o, "id", string_or_null(casb_db_get(res, row, "id")));
    json_object_set_new(o, "provider", string_or_null(casb_db_get(res, row, "provider")));
    json_object_set_new(o, "name", string_or_null(casb_db_get(res, row, "name")));
    json_object_set_new(o, "config", config);
    json_object_set_new(o, "health", string_or_null(casb_db_get(res, row, "health")));
    json_object_set_new(o, "health_reason",
                        string_or_null(casb_db_get(res, row, "health_reason")));
    json_object_set_new(o, "paused", json_boolean(casb_db_get_bool(res, row, "paused")));
    json_object_set_new(o, "scan_interval_s",
                        json_integer(casb_db_get_int(res, row, "scan_interval_s", 0)));
    json_object_set_new(o, "last_scan_at", string_or_null(casb_db_get(res, row, "last_scan_at")));
    json_object_set_new(o, "last_scan_status",
                        string_or_null(casb_db_get(res, row, "last_scan_status")));
    json_object_set_new(o, "last_scan", last_scan(res, row));
    json_object_set_new(o, "next_scan_at", string_or_null(casb_db_get(res, row, "next_scan_at")));
    json_object_set_new(o, "created_at", string_or_null(casb_db_get(res, row, "created_at")));
    json_object_set_new(o, "updated_at", string_or_null(casb_db_get(res, row, "updated_at")));
    return o;
}

json_t *im_view_scan(const PGresult *res, int row)
{
    json_t *o = json_object();
    const char *duration = casb_db_get(res, row, "duration_ms");

    json_object_set_new(o, "id", string_or_null(casb_db_get(res, row, "id")));
    json_object_set_new(o, "integration_id",
                        string_or_null(casb_db_get(res, row, "integration_id")));
    json_object_set_new(o, "status", string_or_null(casb_db_get(res, row, "status")));
    json_object_set_new(o, "reason", string_or_null(casb_db_get(res, row, "reason")));
    json_object_set_new(o, "queued_at", string_or_null(casb_db_get(res, row, "queued_at")));
    json_object_set_new(o, "started_at", string_or_null(casb_db_get(res, row, "started_at")));
    json_object_set_new(o, "finished_at", string_or_null(casb_db_get(res, row, "finished_at")));
    json_object_set_new(o, "duration_ms",
                        duration ? json_integer(casb_db_get_int(res, row, "duration_ms", 0))
                                 : json_null());
    json_object_set_new(o, "stats", jsonb_column(res, row, "stats"));
    json_object_set_new(o, "coverage", jsonb_column(res, row, "coverage"));
    json_object_set_new(o, "error", string_or_null(casb_db_get(res, row, "error")));
    return o;
}

static json_t *field_list(const casb_provider_field *fields, int credentials)
{
    json_t *a = json_array();

    for (const casb_provider_field *f = fields; f && f->name; f++) {
        json_t *o = json_object();

        json_object_set_new(o, "name", json_string(f->name));
        json_object_set_new(o, "type", string_or_null(f->type));
        /* Everything in credentials is sealed, whatever a field says. */
        json_object_set_new(o, "secret", json_boolean(credentials || f->secret));
        json_object_set_new(o, "required", json_boolean(f->required));
        json_object_set_new(o, "auth_method", string_or_null(f->auth_method));
        json_object_set_new(o, "help", string_or_null(f->help));
        json_array_append_new(a, o);
    }
    return a;
}

/* The consent flow of a provider: how to start it and what the operator must set up.
 * "configured" is the route's to fill (it depends on the service's settings). */
static json_t *oauth_view(const casb_provider *p)
{
    char start[128];

    if (!p->oauth)
        return json_null();
    snprintf(start, sizeof(start), "/v1/integrations/oauth/%s/start", p->id);
    return json_pack("{s:s, s:b, s:s?, s:s?, s:b}", "start", start, "pkce", p->oauth->pkce,
                     "scope", p->oauth->scope, "setup", p->oauth->setup_help, "configured", 0);
}

json_t *im_view_provider(const casb_provider *p)
{
    json_t *o = json_object();
    json_t *methods = json_array();
    json_t *perms = json_array();
    long types = 0;

    for (size_t i = 0; p->auth_methods && p->auth_methods[i]; i++)
        json_array_append_new(methods, json_string(p->auth_methods[i]));
    for (const casb_provider_permission *q = p->permissions; q && q->name; q++) {
        json_t *perm = json_object();

        json_object_set_new(perm, "name", json_string(q->name));
        json_object_set_new(perm, "reason", string_or_null(q->reason));
        json_array_append_new(perms, perm);
    }
    for (size_t i = 0; p->finding_types && p->finding_types[i]; i++)
        types++;

    json_object_set_new(o, "id", json_string(p->id));
    json_object_set_new(o, "name", string_or_null(p->display_name));
    json_object_set_new(o, "default_api_base_url", string_or_null(p->default_api_base_url));
    json_object_set_new(o, "auth_methods", methods);
    json_object_set_new(o, "config_fields", field_list(p->config_fields, 0));
    json_object_set_new(o, "credential_fields", field_list(p->credential_fields, 1));
    json_object_set_new(o, "permissions", perms);
    json_object_set_new(o, "default_scan_interval_s", json_integer(p->default_scan_interval_s));
    json_object_set_new(o, "finding_types_count", json_integer(types));
    json_object_set_new(o, "oauth", oauth_view(p));
    return o;
}

json_t *im_view_providers(const casb_provider *const *all)
{
    json_t *list = json_array();
    json_t *o = json_object();

    for (size_t i = 0; all && all[i]; i++)
        json_array_append_new(list, im_view_provider(all[i]));
    json_object_set_new(o, "providers", list);
    json_object_set_new(o, "next_cursor", json_null());
    return o;
}

json_t *im_view_audit_entry(const PGresult *res, int row)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(casb_db_get_int(res, row, "id", 0)));
    json_object_set_new(o, "at", string_or_null(casb_db_get(res, row, "at")));
    json_object_set_new(o, "actor", string_or_null(casb_db_get(res, row, "actor")));
    json_object_set_new(o, "action", string_or_null(casb_db_get(res, row, "action")));
    json_object_set_new(o, "integration_id",
                        string_or_null(casb_db_get(res, row, "integration_id")));
    json_object_set_new(o, "outcome", string_or_null(casb_db_get(res, row, "outcome")));
    json_object_set_new(o, "status_code",
                        json_integer(casb_db_get_int(res, row, "status_code", 0)));
    json_object_set_new(o, "details", jsonb_column(res, row, "details"));
    return o;
}

json_t *im_view_token(const PGresult *res, int row)
{
    static const char *const columns[] = {"id",         "name",         "role",
                                          "status",     "created_by",   "created_at",
                                          "expires_at", "last_used_at", "revoked_at"};
    json_t *o = json_object();

    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
        json_object_set_new(o, columns[i], string_or_null(casb_db_get(res, row, columns[i])));
    return o;
}
